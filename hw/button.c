#include "hw/button.h"

#include <string.h>

/* Phases inside an arm.  HELD: the button was (or may have been) down before
 * arming and has to come up first; READY: up, waiting for a press; PRESSED: a
 * press that began after arming is down, waiting for its release. */
enum { P_IDLE, P_HELD, P_READY, P_PRESSED, P_CONFIRMED, P_EXPIRED };

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static int is_final(const struct button *b)
{
	return b->phase == P_IDLE || b->phase == P_CONFIRMED || b->phase == P_EXPIRED;
}

/* The raw level has held for the debounce time: it becomes the stable level,
 * dated from the edge that started it (raw_ns). */
static void settle(struct button *b)
{
	b->stable = b->raw;
	if (b->stable) {
		if (b->phase == P_READY)
			b->phase = b->raw_ns >= b->arm_ns ? P_PRESSED : P_HELD;
	} else if (b->phase == P_HELD) {
		b->phase = P_READY;
	} else if (b->phase == P_PRESSED) {
		b->phase = P_CONFIRMED;
	}
}

/* Move time forward to `t` (never backwards), settling a pending level when
 * its debounce time falls inside the window, then expiring. */
static void advance(struct button *b, uint64_t t)
{
	if (t < b->now_ns)
		t = b->now_ns;
	if (b->raw != b->stable) {
		uint64_t at = add_sat(b->raw_ns, b->debounce_ns);

		if (at <= t && at <= b->deadline_ns)
			settle(b);
	}
	if (!is_final(b) && t > b->deadline_ns)
		b->phase = P_EXPIRED;
	b->now_ns = t;
}

void button_init(struct button *b, uint64_t debounce_ns)
{
	memset(b, 0, sizeof *b);
	b->debounce_ns = debounce_ns;
	b->phase = P_IDLE;
}

void button_arm(struct button *b, uint64_t now_ns, uint64_t timeout_ns, int pressed)
{
	b->arm_ns = now_ns;
	b->deadline_ns = add_sat(now_ns, timeout_ns);
	b->now_ns = now_ns;
	b->raw = b->stable = pressed ? 1 : 0;
	b->raw_ns = now_ns;
	b->phase = pressed ? P_HELD : P_READY;
}

enum button_status button_edge(struct button *b, uint64_t ts_ns, int pressed)
{
	int before_arm = ts_ns < b->arm_ns;

	pressed = pressed ? 1 : 0;
	if (is_final(b))
		return button_status(b);
	/* Anything due before this edge happens first, at its own time. */
	advance(b, ts_ns);
	if (is_final(b))
		return button_status(b);
	/* A press dated before arming is a stale press that slipped past the
	 * drain: whatever we thought, the button was down at arming.  Start
	 * over exactly as if it had been held at arming. */
	if (before_arm && pressed) {
		b->phase = P_HELD;
		b->raw = b->stable = 1;
		b->raw_ns = b->now_ns;
		return button_status(b);
	}
	if (pressed != b->raw) {
		b->raw = pressed;
		b->raw_ns = b->now_ns;  /* ts_ns, unless it went backwards */
	}
	return button_status(b);
}

enum button_status button_tick(struct button *b, uint64_t now_ns)
{
	if (!is_final(b))
		advance(b, now_ns);
	return button_status(b);
}

enum button_status button_status(const struct button *b)
{
	switch (b->phase) {
	case P_IDLE:      return BUTTON_IDLE;
	case P_CONFIRMED: return BUTTON_CONFIRMED;
	case P_EXPIRED:   return BUTTON_EXPIRED;
	default:          return BUTTON_WAITING;
	}
}

uint64_t button_next_ns(const struct button *b)
{
	uint64_t next = add_sat(b->deadline_ns, 1);

	if (b->raw != b->stable) {
		uint64_t at = add_sat(b->raw_ns, b->debounce_ns);

		if (at < next)
			next = at;
	}
	return next;
}

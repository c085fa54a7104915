#include "hw/hw.h"

#include <string.h>
#include <time.h>

#include "hw/backend.h"
#include "hw/button.h"

/* Edges reach us a little after they happen (kernel thread, socket).  The
 * state machine is told "no edge before T" only for T this far in the past,
 * so a glitch's second edge still in flight is never mistaken for silence. */
#define HW_EDGE_LATENCY_NS (10ull * 1000 * 1000)
/* An edge stamped further ahead of our clock than this is on another clock
 * (the v1 GPIO uAPI used CLOCK_REALTIME before Linux 5.7). */
#define HW_FUTURE_SLACK_NS (1000ull * 1000 * 1000)

uint64_t hw_now_ns(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail on Linux with a valid pointer. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int hw_open(const char *spec, struct hw **out, struct sbx_err *e)
{
	if (out == NULL)
		return sbx_fail(e, SBX_EINVAL, "hw_open: no output pointer");
	*out = NULL;
	if (spec == NULL || spec[0] == '\0')
		return sbx_fail(e, SBX_EINVAL, "no GPIO backend given (expected sim:SOCKET or chip:NAME[,...])");
	if (strncmp(spec, "chip:", 5) == 0)
		return hw_gpiod_open(spec + 5, out, e);
	if (strncmp(spec, "sim:", 4) == 0) {
#ifdef SBX_RELEASE
		return sbx_fail(e, SBX_EINVAL, "GPIO backend \"sim:\" is not available in a release build: "
				"only the real button can confirm (use chip:NAME)");
#else
		return hw_sim_open(spec + 4, out, e);
#endif
	}
	return sbx_fail(e, SBX_EINVAL, "unknown GPIO backend \"%.64s\" (expected sim:SOCKET or chip:NAME[,...])", spec);
}

void hw_close(struct hw *hw)
{
	if (hw == NULL)
		return;
	hw->ops->close(hw->ctx);
}

int hw_led(struct hw *hw, enum hw_color color, enum hw_led_state state, struct sbx_err *e)
{
	if (hw == NULL || (unsigned)color > HW_RED || (unsigned)state > HW_LED_BLINK)
		return sbx_fail(e, SBX_EINVAL, "hw_led: bad argument");
	return hw->ops->led(hw->ctx, color, state, e);
}

int hw_confirm(struct hw *hw, unsigned timeout_ms, struct sbx_err *e)
{
	struct button b;
	struct hw_edge ev;
	int r = SBX_EINVAL, pressed = 0;

	if (hw == NULL || timeout_ms == 0)
		return sbx_fail(e, SBX_EINVAL, "hw_confirm: bad argument (timeout must be > 0)");
	button_init(&b, BUTTON_DEBOUNCE_NS_DEFAULT);
	r = hw->ops->drain(hw->ctx, &pressed, e);
	if (r < 0)
		goto out;
	/* Arm only after the drain: whatever happened before this instant,
	 * including a press that is still down, cannot confirm. */
	button_arm(&b, hw_now_ns(), (uint64_t)timeout_ms * 1000000u, pressed);
	/* Blinking only once armed: whoever presses after seeing it blink is
	 * sure to be counted. */
	r = hw_led(hw, HW_AMBER, HW_LED_BLINK, e);
	if (r < 0)
		goto out;
	while (button_status(&b) == BUTTON_WAITING) {
		uint64_t next = button_next_ns(&b), now;
		uint64_t until = next > UINT64_MAX - HW_EDGE_LATENCY_NS ? UINT64_MAX : next + HW_EDGE_LATENCY_NS;

		r = hw->ops->wait(hw->ctx, until, &ev, e);
		if (r < 0)
			goto out;
		now = hw_now_ns();
		if (r == 1) {
			if (ev.ts_ns > now + HW_FUTURE_SLACK_NS) {
				r = sbx_fail(e, SBX_EIO, "button edge stamped %llu ms in the future: "
					     "the GPIO event clock is not CLOCK_MONOTONIC (kernel older than 5.7?)",
					     (unsigned long long)((ev.ts_ns - now) / 1000000u));
				goto out;
			}
			button_edge(&b, ev.ts_ns, ev.pressed);
		} else {
			button_tick(&b, now > HW_EDGE_LATENCY_NS ? now - HW_EDGE_LATENCY_NS : 0);
		}
	}
	if (button_status(&b) != BUTTON_CONFIRMED) {
		r = sbx_fail(e, SBX_ECANCELED, "no fresh button press and release within %u ms", timeout_ms);
		goto out;
	}
	r = 0;
out:
	return r;
}

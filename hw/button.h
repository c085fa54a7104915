/* The confirmation button as a pure state machine.
 *
 * No clock, no I/O: the caller feeds edges (timestamp, level) and the passing
 * of time, both in nanoseconds on one monotonic clock, and asks for the
 * status.  hw.c drives it from either backend; the unit tests drive it with
 * synthetic timestamps.
 *
 * The rules (docs: hw/README.md):
 *  - Debounce: a level counts only once it has held for the debounce time; it
 *    then counts from the edge that started it.  A glitch shorter than the
 *    debounce never counts, in either direction.
 *  - Arming starts one confirmation window [arm, arm + timeout].  Edges before
 *    arming never count; an edge stamped before arming that arrives later can
 *    only make the machine more careful (the button must be released and
 *    pressed again).  A button held at arming must be released and pressed
 *    again.
 *  - A press confirms when it is released: its press edge must come at or
 *    after arming and its release must have settled (release edge + debounce)
 *    no later than the deadline.  A press that is still down, or whose release
 *    has not settled, at the deadline does not confirm: "no" by default.
 *  - Exactly one confirmation per arm: CONFIRMED and EXPIRED are final until
 *    the next button_arm. */
#ifndef SBX_HW_BUTTON_H
#define SBX_HW_BUTTON_H

#include <stdint.h>

#define BUTTON_DEBOUNCE_NS_DEFAULT (30ull * 1000 * 1000)

enum button_status {
	BUTTON_IDLE,        /* never armed: edges are ignored */
	BUTTON_WAITING,     /* armed, no confirmation yet */
	BUTTON_CONFIRMED,   /* final for this arm */
	BUTTON_EXPIRED,     /* final for this arm: the deadline passed */
};

/* Plain data so that it can live on the stack; fields are private. */
struct button {
	uint64_t debounce_ns;
	uint64_t arm_ns, deadline_ns;
	uint64_t now_ns;        /* latest time seen; edges never go back before it */
	uint64_t raw_ns;        /* when the raw level last changed */
	int raw, stable;        /* 1 = pressed */
	int phase;
};

void button_init(struct button *b, uint64_t debounce_ns);

/* Start a confirmation window at `now_ns` lasting `timeout_ns`; `pressed` is
 * the button's level read at arming (after the caller drained stale edges). */
void button_arm(struct button *b, uint64_t now_ns, uint64_t timeout_ns, int pressed);

/* An edge: the level became `pressed` at `ts_ns`.  Repeated levels are
 * ignored (an edge whose opposite was lost is a glitch). */
enum button_status button_edge(struct button *b, uint64_t ts_ns, int pressed);

/* Time has reached `now_ns` and every edge before it has been fed. */
enum button_status button_tick(struct button *b, uint64_t now_ns);

enum button_status button_status(const struct button *b);

/* The earliest time at which button_tick could change the status, so that a
 * caller can sleep until then (or until an edge arrives).  Only meaningful
 * while WAITING. */
uint64_t button_next_ns(const struct button *b);

#endif

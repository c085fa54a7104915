/* Inside hw/: what a backend provides to hw.c.  Not for use outside hw/. */
#ifndef SBX_HW_BACKEND_H
#define SBX_HW_BACKEND_H

#include <stdint.h>

#include "hw/hw.h"

struct hw_edge {
	uint64_t ts_ns;   /* CLOCK_MONOTONIC, as hw_now_ns */
	int pressed;
};

struct hw_ops {
	int (*led)(void *ctx, enum hw_color color, enum hw_led_state state,
		   struct sbx_err *e);
	/* Throw away every queued edge, then report the button's level now. */
	int (*drain)(void *ctx, int *pressed, struct sbx_err *e);
	/* Wait for the next edge until `until_ns`: 1 with *ev filled, 0 when
	 * the time came first, < 0 on error. */
	int (*wait)(void *ctx, uint64_t until_ns, struct hw_edge *ev,
		    struct sbx_err *e);
	void (*close)(void *ctx);
};

struct hw {
	const struct hw_ops *ops;
	void *ctx;
};

uint64_t hw_now_ns(void);

/* `args` is the spec after "chip:" / "sim:". */
int hw_gpiod_open(const char *args, struct hw **out, struct sbx_err *e);
#ifndef SBX_RELEASE
int hw_sim_open(const char *args, struct hw **out, struct sbx_err *e);
#endif

#endif

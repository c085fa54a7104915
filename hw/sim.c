/* The simulator backend: the appliance's side of a connection to
 * sealbox-gpiosim.  The server stamps each button edge with CLOCK_MONOTONIC
 * and pushes it to us (WATCH), so the same state machine judges simulated
 * presses as real ones.  Not built with RELEASE=1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hw/backend.h"
#include "hw/simproto.h"

struct sim {
	struct hw hw;
	struct simproto_conn conn;
	/* Edges that came in while we waited for a reply (the LED request in
	 * hw_confirm comes after arming: those edges may count). */
	struct simproto_edges q;
};

static int sim_expect(struct sim *s, const char *req, const char *want, struct sbx_err *e)
{
	char reply[SIMPROTO_LINE_MAX];
	int r = simproto_request(&s->conn, req, &s->q, reply, e);

	if (r < 0)
		return r;
	if (strcmp(reply, want) != 0)
		return sbx_fail(e, SBX_EFORMAT, "GPIO simulator at %s answered \"%s\" with \"%.64s\"",
				s->conn.path, req, reply);
	return 0;
}

static int sim_led(void *ctx, enum hw_color color, enum hw_led_state state, struct sbx_err *e)
{
	char req[64];

	snprintf(req, sizeof req, "LED %s %s", simproto_color_name(color), simproto_state_name(state));
	return sim_expect(ctx, req, "OK", e);
}

static int sim_drain(void *ctx, int *pressed, struct sbx_err *e)
{
	struct sim *s = ctx;
	char reply[SIMPROTO_LINE_MAX];
	int r;

	/* Drop what we queued and every EDGE sent before the reply: that is
	 * the drain.  The reply is the level after them. */
	s->q.n = 0;
	r = simproto_request(&s->conn, "LEVEL", NULL, reply, e);
	if (r < 0)
		return r;
	if (strcmp(reply, "LEVEL 0") == 0)
		*pressed = 0;
	else if (strcmp(reply, "LEVEL 1") == 0)
		*pressed = 1;
	else
		return sbx_fail(e, SBX_EFORMAT, "GPIO simulator at %s answered LEVEL with \"%.64s\"",
				s->conn.path, reply);
	return 0;
}

static int sim_wait(void *ctx, uint64_t until_ns, struct hw_edge *ev, struct sbx_err *e)
{
	struct sim *s = ctx;
	char line[SIMPROTO_LINE_MAX];
	int r;

	if (s->q.n > 0) {
		ev->ts_ns = s->q.ts_ns[0];
		ev->pressed = s->q.pressed[0];
		s->q.n--;
		memmove(s->q.ts_ns, s->q.ts_ns + 1, s->q.n * sizeof s->q.ts_ns[0]);
		memmove(s->q.pressed, s->q.pressed + 1, s->q.n * sizeof s->q.pressed[0]);
		return 1;
	}
	r = simproto_read_line(&s->conn, until_ns, line, e);
	if (r <= 0)
		return r;
	if (simproto_parse_edge(line, &ev->ts_ns, &ev->pressed) < 0)
		return sbx_fail(e, SBX_EFORMAT, "GPIO simulator at %s sent \"%.64s\" where an edge was expected",
				s->conn.path, line);
	return 1;
}

static void sim_close(void *ctx)
{
	struct sim *s = ctx;

	simproto_close(&s->conn);
	free(s);
}

static const struct hw_ops sim_ops = {
	.led = sim_led,
	.drain = sim_drain,
	.wait = sim_wait,
	.close = sim_close,
};

int hw_sim_open(const char *args, struct hw **out, struct sbx_err *e)
{
	struct sim *s = NULL;
	int r = SBX_ENOMEM;

	s = calloc(1, sizeof *s);
	if (s == NULL) {
		r = sbx_fail(e, SBX_ENOMEM, "out of memory");
		goto out;
	}
	s->conn.fd = -1;
	r = simproto_connect(&s->conn, args, e);
	if (r < 0)
		goto out;
	r = sim_expect(s, "WATCH", "OK", e);
	if (r < 0)
		goto out;
	s->hw.ops = &sim_ops;
	s->hw.ctx = s;
	*out = &s->hw;
	s = NULL; /* transferred */
	r = 0;
out:
	if (s != NULL)
		sim_close(s);
	return r;
}

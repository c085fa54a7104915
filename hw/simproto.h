/* The GPIO simulator's wire protocol, shared by the client backend (sim.c)
 * and the server (cmd/sealbox-gpiosim.c).  Left out of release builds.
 *
 * Line-based text over a unix SOCK_STREAM socket.  Every message is one line
 * of printable ASCII (0x20-0x7e) ended by '\n', at most SIMPROTO_LINE_MAX
 * bytes including the newline, words separated by exactly one space.
 *
 *   request                           reply
 *   LEVEL                             LEVEL 0|1
 *   BUTTON 0|1                        OK          (1 = pressed)
 *   LED green|amber|red off|on|blink  OK
 *   LEDS                              LEDS green=S amber=S red=S
 *   WATCH                             OK          (start receiving EDGE lines)
 *
 * A watching client also receives, between replies, at any time:
 *   EDGE NS 0|1    the button changed level at NS (CLOCK_MONOTONIC, ns)
 * Anything malformed gets "ERR <reason>" and the server hangs up. */
#ifndef SBX_HW_SIMPROTO_H
#define SBX_HW_SIMPROTO_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/err.h"
#include "hw/hw.h"

#define SIMPROTO_LINE_MAX 256
#define SIMPROTO_MAX_WORDS 4

const char *simproto_color_name(enum hw_color c);
const char *simproto_state_name(enum hw_led_state s);
int simproto_color_parse(const char *s, enum hw_color *c);
int simproto_state_parse(const char *s, enum hw_led_state *st);

/* Strict unsigned decimal: digits only, no sign or spaces, no leading zero
 * unless "0", at most `max`. */
int simproto_parse_u64(const char *s, uint64_t max, uint64_t *v);

/* Split `line` in place at single spaces into at most SIMPROTO_MAX_WORDS
 * words; returns the count, or -1 on an empty word, too many words or a
 * character outside 0x21-0x7e. */
int simproto_split(char *line, char *w[SIMPROTO_MAX_WORDS]);

int simproto_parse_edge(char *line, uint64_t *ts_ns, int *pressed);

/* Client side of one connection, blocking with deadlines. */
struct simproto_conn {
	int fd;
	size_t len;
	char buf[SIMPROTO_LINE_MAX];
	char path[108];
};

int simproto_connect(struct simproto_conn *c, const char *path, struct sbx_err *e);
void simproto_close(struct simproto_conn *c);

/* Next line without its newline: 1, 0 when `until_ns` (hw_now_ns clock)
 * passed first, < 0 on error or a malformed line. */
int simproto_read_line(struct simproto_conn *c, uint64_t until_ns,
		       char line[SIMPROTO_LINE_MAX], struct sbx_err *e);

/* Edges received while waiting for a reply.  Like the kernel's per-line
 * queue: 16 entries, newer edges dropped when full. */
#define SIMPROTO_EDGES_MAX 16
struct simproto_edges {
	unsigned n;
	uint64_t ts_ns[SIMPROTO_EDGES_MAX];
	int pressed[SIMPROTO_EDGES_MAX];
};

/* Send `req` and return its reply in `reply`.  EDGE lines before the reply
 * go to `q`, or are dropped when `q` is NULL.  "ERR ..." is an error. */
int simproto_request(struct simproto_conn *c, const char *req, struct simproto_edges *q,
		     char reply[SIMPROTO_LINE_MAX], struct sbx_err *e);

#endif

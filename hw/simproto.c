#include "hw/simproto.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "hw/backend.h"

/* How long a client waits for a reply before calling the server stuck. */
#define SIMPROTO_REPLY_NS (2000ull * 1000 * 1000)

static const char *const color_names[] = { "green", "amber", "red" };
static const char *const state_names[] = { "off", "on", "blink" };

const char *simproto_color_name(enum hw_color c)
{
	return (unsigned)c <= HW_RED ? color_names[c] : "?";
}

const char *simproto_state_name(enum hw_led_state s)
{
	return (unsigned)s <= HW_LED_BLINK ? state_names[s] : "?";
}

int simproto_color_parse(const char *s, enum hw_color *c)
{
	for (unsigned i = 0; i <= HW_RED; i++) {
		if (strcmp(s, color_names[i]) == 0) {
			*c = (enum hw_color)i;
			return 0;
		}
	}
	return SBX_EFORMAT;
}

int simproto_state_parse(const char *s, enum hw_led_state *st)
{
	for (unsigned i = 0; i <= HW_LED_BLINK; i++) {
		if (strcmp(s, state_names[i]) == 0) {
			*st = (enum hw_led_state)i;
			return 0;
		}
	}
	return SBX_EFORMAT;
}

int simproto_parse_u64(const char *s, uint64_t max, uint64_t *v)
{
	uint64_t x = 0;

	if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0'))
		return SBX_EFORMAT;
	for (const char *p = s; *p != '\0'; p++) {
		unsigned d;

		if (*p < '0' || *p > '9')
			return SBX_EFORMAT;
		d = (unsigned)(*p - '0');
		if (d > max || x > (max - d) / 10)
			return SBX_EFORMAT;
		x = x * 10 + d;
	}
	*v = x;
	return 0;
}

int simproto_split(char *line, char *w[SIMPROTO_MAX_WORDS])
{
	int n = 0;
	char *p = line;

	for (;;) {
		char *start = p;

		while (*p > 0x20 && *p < 0x7f)
			p++;
		if (p == start || n == SIMPROTO_MAX_WORDS)
			return -1;
		w[n++] = start;
		if (*p == '\0')
			return n;
		if (*p != ' ')
			return -1;
		*p++ = '\0';
	}
}

int simproto_parse_edge(char *line, uint64_t *ts_ns, int *pressed)
{
	char *w[SIMPROTO_MAX_WORDS];
	uint64_t ts, level;

	if (simproto_split(line, w) != 3 || strcmp(w[0], "EDGE") != 0)
		return SBX_EFORMAT;
	if (simproto_parse_u64(w[1], UINT64_MAX, &ts) < 0 || simproto_parse_u64(w[2], 1, &level) < 0)
		return SBX_EFORMAT;
	*ts_ns = ts;
	*pressed = (int)level;
	return 0;
}

int simproto_connect(struct simproto_conn *c, const char *path, struct sbx_err *e)
{
	struct sockaddr_un sa;
	struct timeval tv = { .tv_sec = 2 };
	size_t n = strlen(path);
	int r = SBX_EIO;

	memset(c, 0, sizeof *c);
	c->fd = -1;
	if (n == 0)
		return sbx_fail(e, SBX_EINVAL, "GPIO simulator: empty socket path");
	if (n >= sizeof sa.sun_path || n >= sizeof c->path)
		return sbx_fail(e, SBX_EINVAL, "GPIO simulator socket path too long (%zu bytes, at most %zu)",
				n, sizeof sa.sun_path - 1);
	memcpy(c->path, path, n + 1);
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, n + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		r = sbx_fail(e, SBX_EIO, "GPIO simulator: socket: %s", strerror(errno));
		goto out;
	}
	/* A stuck server must not hang a client that writes to it. */
	if (setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0) {
		r = sbx_fail(e, SBX_EIO, "GPIO simulator: setsockopt: %s", strerror(errno));
		goto out;
	}
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int err = errno;

		if (err == ENOENT || err == ECONNREFUSED)
			r = sbx_fail(e, SBX_EIO, "no GPIO simulator at %s (%s): start it with "
				     "`sealbox-gpiosim serve %s`", path, strerror(err), path);
		else
			r = sbx_fail(e, SBX_EIO, "cannot connect to the GPIO simulator at %s: %s",
				     path, strerror(err));
		goto out;
	}
	r = 0;
out:
	if (r < 0)
		simproto_close(c);
	return r;
}

void simproto_close(struct simproto_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->len = 0;
}

/* One complete line in the buffer: take it out.  1, 0 when none yet. */
static int take_line(struct simproto_conn *c, char line[SIMPROTO_LINE_MAX], struct sbx_err *e)
{
	char *nl = memchr(c->buf, '\n', c->len);
	size_t n;

	if (nl == NULL) {
		if (c->len == sizeof c->buf)
			return sbx_fail(e, SBX_EFORMAT, "GPIO simulator at %s sent a line longer than %d bytes",
					c->path, SIMPROTO_LINE_MAX);
		return 0;
	}
	n = (size_t)(nl - c->buf);
	for (size_t i = 0; i < n; i++) {
		if (c->buf[i] < 0x20 || c->buf[i] > 0x7e)
			return sbx_fail(e, SBX_EFORMAT, "GPIO simulator at %s sent a non-printable byte", c->path);
	}
	memcpy(line, c->buf, n);
	line[n] = '\0';
	c->len -= n + 1;
	memmove(c->buf, nl + 1, c->len);
	return 1;
}

int simproto_read_line(struct simproto_conn *c, uint64_t until_ns,
		       char line[SIMPROTO_LINE_MAX], struct sbx_err *e)
{
	for (;;) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		uint64_t now;
		ssize_t got;
		int r = take_line(c, line, e), ms;

		if (r != 0)
			return r;
		now = hw_now_ns();
		if (now >= until_ns)
			return 0;
		/* Round up so that we never wake just before the deadline. */
		ms = until_ns - now > 60000ull * 1000000u ? 60000 : (int)((until_ns - now + 999999u) / 1000000u);
		r = poll(&pfd, 1, ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return sbx_fail(e, SBX_EIO, "GPIO simulator at %s: poll: %s", c->path, strerror(errno));
		if (r == 0)
			continue;
		got = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got < 0)
			return sbx_fail(e, SBX_EIO, "GPIO simulator at %s: read: %s", c->path, strerror(errno));
		if (got == 0)
			return sbx_fail(e, SBX_EIO, "GPIO simulator at %s closed the connection", c->path);
		c->len += (size_t)got;
	}
}

int simproto_request(struct simproto_conn *c, const char *req, struct simproto_edges *q,
		     char reply[SIMPROTO_LINE_MAX], struct sbx_err *e)
{
	char msg[SIMPROTO_LINE_MAX];
	size_t n = strlen(req), off = 0;
	uint64_t until;
	int r;

	if (n + 1 > sizeof msg)
		return sbx_fail(e, SBX_EINVAL, "GPIO simulator request too long");
	memcpy(msg, req, n);
	msg[n++] = '\n';
	while (off < n) {
		ssize_t w = send(c->fd, msg + off, n - off, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return sbx_fail(e, SBX_EIO, "GPIO simulator at %s: send: %s", c->path, strerror(errno));
		off += (size_t)w;
	}
	until = hw_now_ns() + SIMPROTO_REPLY_NS;
	for (;;) {
		r = simproto_read_line(c, until, reply, e);
		if (r < 0)
			return r;
		if (r == 0)
			return sbx_fail(e, SBX_EIO, "GPIO simulator at %s did not answer \"%s\"", c->path, req);
		if (strncmp(reply, "EDGE ", 5) != 0)
			break;
		if (q == NULL)
			continue;
		if (q->n == SIMPROTO_EDGES_MAX)
			continue;
		if (simproto_parse_edge(reply, &q->ts_ns[q->n], &q->pressed[q->n]) < 0)
			return sbx_fail(e, SBX_EFORMAT, "GPIO simulator at %s sent a malformed edge", c->path);
		q->n++;
	}
	if (strncmp(reply, "ERR", 3) == 0)
		return sbx_fail(e, SBX_EFORMAT, "GPIO simulator at %s refused \"%s\": %s", c->path, req, reply);
	return 0;
}

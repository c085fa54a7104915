/* sealbox-gpiosim: plays the box's board (one button, three LEDs) for
 * development and tests, over the protocol in hw/simproto.h.  Not built in
 * release builds.  See docs/man/sealbox-gpiosim.1. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "hw/backend.h"
#include "hw/hw.h"
#include "hw/simproto.h"

enum { EXIT_USAGE = 2, EXIT_TIMEOUT = 3 };

#define MAX_CLIENTS 16
#define OUT_MAX 4096
#define PRESS_HOLD_MS_DEFAULT 150u
#define WAIT_LED_TIMEOUT_MS_DEFAULT 30000u
#define WAIT_LED_POLL_MS 20u
#define MS_MAX 3600000u

static const char usage_text[] =
	"usage: sealbox-gpiosim serve SOCKET [--quiet]\n"
	"       sealbox-gpiosim press SOCKET [--hold-ms N]\n"
	"       sealbox-gpiosim button SOCKET pressed|released\n"
	"       sealbox-gpiosim leds SOCKET\n"
	"       sealbox-gpiosim wait-led SOCKET COLOR=STATE... [--timeout-ms N]\n"
	"       sealbox-gpiosim confirm SOCKET [--timeout-ms N]\n"
	"\n"
	"Simulates the sealbox board (one push button, green/amber/red LEDs) on a\n"
	"unix socket; the appliance uses it with --gpio sim:SOCKET.\n"
	"  serve     play the board until SIGINT/SIGTERM (socket: owner only)\n"
	"  press     press the button, hold it N ms (default 150), release it\n"
	"  button    press or release the button and leave it so\n"
	"  leds      print one line: green=S amber=S red=S (S: on, off, blink)\n"
	"  wait-led  wait until every COLOR=STATE holds (default 30000 ms)\n"
	"  confirm   act as the appliance: arm, blink amber, wait for a\n"
	"            confirmation (default 60000 ms), then amber off\n"
	"Exit status: 0 ok, 1 error, 2 usage, 3 timed out (wait-led, confirm).\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "sealbox-gpiosim: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n(see sealbox-gpiosim --help)\n");
	va_end(ap);
	return EXIT_USAGE;
}

static int fail_err(const struct sbx_err *e)
{
	fprintf(stderr, "sealbox-gpiosim: %s\n", e->msg[0] != '\0' ? e->msg : sbx_strerror(e->code));
	return EXIT_FAILURE;
}

static void sleep_ms(unsigned ms)
{
	struct timespec t = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&t, &t) < 0 && errno == EINTR)
		;
}

/* ---- the server ---- */

struct client {
	int fd;
	int watch, hangup;
	size_t inlen, outlen;
	char in[SIMPROTO_LINE_MAX];
	char out[OUT_MAX];
};

struct server {
	const char *path;
	int lfd, sfd, quiet, bound;
	dev_t dev;
	ino_t ino;
	int level;
	enum hw_led_state led[3];
	struct client c[MAX_CLIENTS];
};

static void logf_(const struct server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(const struct server *s, const char *fmt, ...)
{
	va_list ap;

	if (s->quiet)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "sealbox-gpiosim: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void client_close(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static void client_flush(struct client *c)
{
	while (c->fd >= 0 && c->outlen > 0) {
		ssize_t w = send(c->fd, c->out, c->outlen, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (w <= 0) {
			client_close(c);
			return;
		}
		c->outlen -= (size_t)w;
		memmove(c->out, c->out + w, c->outlen);
	}
	if (c->fd >= 0 && c->hangup && c->outlen == 0)
		client_close(c);
}

/* Queue one line.  A client too slow to take a reply is dropped; one too
 * slow to take an edge loses the edge, as the kernel's full event queue
 * does (the appliance drains and re-reads the level when it arms). */
static void client_send(struct server *s, struct client *c, const char *line, int is_edge)
{
	size_t n = strlen(line);

	if (c->fd < 0)
		return;
	if (c->outlen + n + 1 > sizeof c->out) {
		if (is_edge) {
			logf_(s, "client too slow: edge dropped");
			return;
		}
		logf_(s, "client too slow: disconnected");
		client_close(c);
		return;
	}
	memcpy(c->out + c->outlen, line, n);
	c->out[c->outlen + n] = '\n';
	c->outlen += n + 1;
	client_flush(c);
}

static void client_refuse(struct server *s, struct client *c, const char *why)
{
	char line[SIMPROTO_LINE_MAX];

	logf_(s, "client refused: %s", why);
	snprintf(line, sizeof line, "ERR %s", why);
	client_send(s, c, line, 0);
	c->hangup = 1;
	client_flush(c);
}

static void set_level(struct server *s, int level)
{
	char line[SIMPROTO_LINE_MAX];

	if (level == s->level)
		return;
	s->level = level;
	snprintf(line, sizeof line, "EDGE %llu %d", (unsigned long long)hw_now_ns(), level);
	logf_(s, "button %s", level ? "pressed" : "released");
	for (int i = 0; i < MAX_CLIENTS; i++) {
		if (s->c[i].fd >= 0 && s->c[i].watch && !s->c[i].hangup)
			client_send(s, &s->c[i], line, 1);
	}
}

static void handle_line(struct server *s, struct client *c, char *line)
{
	char *w[SIMPROTO_MAX_WORDS], reply[SIMPROTO_LINE_MAX];
	int n = simproto_split(line, w);
	enum hw_color color;
	enum hw_led_state state;

	if (n < 0) {
		client_refuse(s, c, "malformed request");
	} else if (strcmp(w[0], "LEVEL") == 0 && n == 1) {
		snprintf(reply, sizeof reply, "LEVEL %d", s->level);
		client_send(s, c, reply, 0);
	} else if (strcmp(w[0], "BUTTON") == 0 && n == 2 &&
		   (strcmp(w[1], "0") == 0 || strcmp(w[1], "1") == 0)) {
		set_level(s, w[1][0] == '1');
		client_send(s, c, "OK", 0);
	} else if (strcmp(w[0], "LED") == 0 && n == 3 && simproto_color_parse(w[1], &color) == 0 &&
		   simproto_state_parse(w[2], &state) == 0) {
		if (s->led[color] != state)
			logf_(s, "%s LED %s", simproto_color_name(color), simproto_state_name(state));
		s->led[color] = state;
		client_send(s, c, "OK", 0);
	} else if (strcmp(w[0], "LEDS") == 0 && n == 1) {
		snprintf(reply, sizeof reply, "LEDS green=%s amber=%s red=%s",
			 simproto_state_name(s->led[HW_GREEN]), simproto_state_name(s->led[HW_AMBER]),
			 simproto_state_name(s->led[HW_RED]));
		client_send(s, c, reply, 0);
	} else if (strcmp(w[0], "WATCH") == 0 && n == 1) {
		c->watch = 1;
		client_send(s, c, "OK", 0);
	} else {
		client_refuse(s, c, "unknown request or bad arguments");
	}
}

static void client_read(struct server *s, struct client *c)
{
	ssize_t got = read(c->fd, c->in + c->inlen, sizeof c->in - c->inlen);

	if (got < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (got <= 0) {
		client_close(c);
		return;
	}
	c->inlen += (size_t)got;
	while (c->fd >= 0 && !c->hangup) {
		char *nl = memchr(c->in, '\n', c->inlen);
		char line[SIMPROTO_LINE_MAX];
		size_t n;

		if (nl == NULL) {
			if (c->inlen == sizeof c->in)
				client_refuse(s, c, "line too long");
			return;
		}
		n = (size_t)(nl - c->in);
		memcpy(line, c->in, n);
		line[n] = '\0';
		c->inlen -= n + 1;
		memmove(c->in, nl + 1, c->inlen);
		/* simproto_split rejects NUL (a short line) and bytes outside
		 * 0x21-0x7e other than single spaces. */
		if (memchr(line, '\0', n) != NULL)
			client_refuse(s, c, "malformed request");
		else
			handle_line(s, c, line);
	}
}

static void server_accept(struct server *s)
{
	int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;   /* EAGAIN, ECONNABORTED, EMFILE ...: the server goes on */
	for (int i = 0; i < MAX_CLIENTS; i++) {
		if (s->c[i].fd < 0) {
			memset(&s->c[i], 0, sizeof s->c[i]);
			s->c[i].fd = fd;
			return;
		}
	}
	(void)send(fd, "ERR too many clients\n", 21, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
	logf_(s, "client refused: too many clients");
}

/* Bind SOCKET, replacing a stale socket file but never a live server's or a
 * file that is not a socket. */
static int server_listen(struct server *s, struct sbx_err *e)
{
	struct sockaddr_un sa;
	struct stat st;
	size_t n = strlen(s->path);
	mode_t old;
	int r;

	if (n == 0 || n >= sizeof sa.sun_path)
		return sbx_fail(e, SBX_EINVAL, "socket path must be 1 to %zu bytes", sizeof sa.sun_path - 1);
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, s->path, n + 1);
	if (lstat(s->path, &st) == 0) {
		int fd, err;

		if (!S_ISSOCK(st.st_mode))
			return sbx_fail(e, SBX_EEXIST, "%s exists and is not a socket", s->path);
		/* Stale only if nobody listens: connection refused.  Anything
		 * else (someone serving, no permission) is left alone. */
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return sbx_fail(e, SBX_EIO, "socket: %s", strerror(errno));
		err = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 ? 0 : errno;
		close(fd);
		if (err == 0)
			return sbx_fail(e, SBX_EEXIST, "a simulator is already serving %s", s->path);
		if (err != ECONNREFUSED)
			return sbx_fail(e, SBX_EEXIST, "%s exists and cannot be probed: %s", s->path, strerror(err));
		if (unlink(s->path) < 0)
			return sbx_fail(e, SBX_EIO, "cannot remove the stale socket %s: %s", s->path, strerror(errno));
	}
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0)
		return sbx_fail(e, SBX_EIO, "socket: %s", strerror(errno));
	/* Whoever can connect can press the button: owner only. */
	old = umask(077);
	r = bind(s->lfd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (r < 0)
		return sbx_fail(e, SBX_EIO, "cannot bind %s: %s", s->path, strerror(errno));
	if (stat(s->path, &st) < 0)
		return sbx_fail(e, SBX_EIO, "%s: %s", s->path, strerror(errno));
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->bound = 1;
	if (listen(s->lfd, 8) < 0)
		return sbx_fail(e, SBX_EIO, "listen on %s: %s", s->path, strerror(errno));
	return 0;
}

static void server_unlink(const struct server *s)
{
	struct stat st;

	/* Only our own socket: another server may have replaced it. */
	if (s->bound && stat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
}

static int cmd_serve(const char *path, int quiet)
{
	struct server s;
	struct sbx_err e = { 0 };
	sigset_t mask;
	int rc = EXIT_FAILURE;

	memset(&s, 0, sizeof s);
	s.path = path;
	s.quiet = quiet;
	s.lfd = s.sfd = -1;
	for (int i = 0; i < MAX_CLIENTS; i++)
		s.c[i].fd = -1;
	/* Signals arrive as readable data in the poll loop: no handler, no
	 * global flag. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
	    (s.sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		sbx_fail(&e, SBX_EIO, "signalfd: %s", strerror(errno));
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	if (server_listen(&s, &e) < 0)
		goto out;
	logf_(&s, "serving on %s", path);

	for (;;) {
		struct pollfd pfd[2 + MAX_CLIENTS];
		int slot[2 + MAX_CLIENTS], np = 2;

		pfd[0] = (struct pollfd){ .fd = s.sfd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = s.lfd, .events = POLLIN };
		for (int i = 0; i < MAX_CLIENTS; i++) {
			if (s.c[i].fd < 0)
				continue;
			pfd[np] = (struct pollfd){ .fd = s.c[i].fd,
				.events = (short)((s.c[i].hangup ? 0 : POLLIN) | (s.c[i].outlen ? POLLOUT : 0)) };
			slot[np++] = i;
		}
		if (poll(pfd, (nfds_t)np, -1) < 0) {
			if (errno == EINTR)
				continue;
			sbx_fail(&e, SBX_EIO, "poll: %s", strerror(errno));
			goto out;
		}
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(s.sfd, &si, sizeof si) == (ssize_t)sizeof si) {
				logf_(&s, "stopping (%s)", strsignal((int)si.ssi_signo));
				break;
			}
		}
		if (pfd[1].revents & POLLIN)
			server_accept(&s);
		for (int k = 2; k < np; k++) {
			struct client *c = &s.c[slot[k]];

			if (c->fd != pfd[k].fd)
				continue;   /* closed meanwhile */
			if (pfd[k].revents & POLLOUT)
				client_flush(c);
			if (c->fd >= 0 && (pfd[k].revents & (POLLIN | POLLHUP | POLLERR))) {
				if (c->hangup)
					client_close(c);
				else
					client_read(&s, c);
			}
		}
	}
	rc = 0;
out:
	for (int i = 0; i < MAX_CLIENTS; i++)
		client_close(&s.c[i]);
	if (s.lfd >= 0)
		close(s.lfd);
	server_unlink(&s);
	if (s.sfd >= 0)
		close(s.sfd);
	if (rc != 0)
		fail_err(&e);
	return rc;
}

/* ---- clients ---- */

static int request_ok(struct simproto_conn *c, const char *req, struct sbx_err *e)
{
	char reply[SIMPROTO_LINE_MAX];
	int r = simproto_request(c, req, NULL, reply, e);

	if (r == 0 && strcmp(reply, "OK") != 0)
		r = sbx_fail(e, SBX_EFORMAT, "simulator answered \"%s\" with \"%.64s\"", req, reply);
	return r;
}

static int get_leds(struct simproto_conn *c, enum hw_led_state st[3], struct sbx_err *e)
{
	static const char *const prefix[3] = { "green=", "amber=", "red=" };
	char reply[SIMPROTO_LINE_MAX], copy[SIMPROTO_LINE_MAX], *w[SIMPROTO_MAX_WORDS];
	int r = simproto_request(c, "LEDS", NULL, reply, e);

	if (r < 0)
		return r;
	memcpy(copy, reply, sizeof copy);
	if (simproto_split(copy, w) != 4 || strcmp(w[0], "LEDS") != 0)
		goto bad;
	for (int i = 0; i < 3; i++) {
		size_t n = strlen(prefix[i]);

		if (strncmp(w[i + 1], prefix[i], n) != 0 || simproto_state_parse(w[i + 1] + n, &st[i]) < 0)
			goto bad;
	}
	return 0;
bad:
	return sbx_fail(e, SBX_EFORMAT, "simulator answered LEDS with \"%.64s\"", reply);
}

static void print_leds(FILE *f, const enum hw_led_state st[3])
{
	fprintf(f, "green=%s amber=%s red=%s", simproto_state_name(st[0]), simproto_state_name(st[1]),
		simproto_state_name(st[2]));
}

static int cmd_press(const char *path, unsigned hold_ms)
{
	struct simproto_conn c;
	struct sbx_err e = { 0 };
	int rc = EXIT_FAILURE;

	if (simproto_connect(&c, path, &e) < 0)
		return fail_err(&e);
	if (request_ok(&c, "BUTTON 1", &e) < 0)
		goto out;
	sleep_ms(hold_ms);
	if (request_ok(&c, "BUTTON 0", &e) < 0)
		goto out;
	rc = 0;
out:
	simproto_close(&c);
	return rc == 0 ? 0 : fail_err(&e);
}

static int cmd_button(const char *path, const char *how)
{
	struct simproto_conn c;
	struct sbx_err e = { 0 };
	int rc;

	if (strcmp(how, "pressed") != 0 && strcmp(how, "released") != 0)
		return usage_error("button: expected pressed or released, not \"%.32s\"", how);
	if (simproto_connect(&c, path, &e) < 0)
		return fail_err(&e);
	rc = request_ok(&c, how[0] == 'p' ? "BUTTON 1" : "BUTTON 0", &e) < 0 ? fail_err(&e) : 0;
	simproto_close(&c);
	return rc;
}

static int cmd_leds(const char *path)
{
	struct simproto_conn c;
	struct sbx_err e = { 0 };
	enum hw_led_state st[3] = { HW_LED_OFF, HW_LED_OFF, HW_LED_OFF };
	int rc;

	if (simproto_connect(&c, path, &e) < 0)
		return fail_err(&e);
	rc = get_leds(&c, st, &e) < 0 ? fail_err(&e) : 0;
	simproto_close(&c);
	if (rc == 0) {
		print_leds(stdout, st);
		putchar('\n');
	}
	return rc;
}

static int cmd_wait_led(const char *path, char **cond, int ncond, unsigned timeout_ms)
{
	struct simproto_conn c;
	struct sbx_err e = { 0 };
	enum hw_led_state want[3] = { HW_LED_OFF, HW_LED_OFF, HW_LED_OFF }, st[3] = { HW_LED_OFF, HW_LED_OFF, HW_LED_OFF };
	int care[3] = { 0 }, rc = EXIT_FAILURE;
	uint64_t until;

	if (ncond == 0)
		return usage_error("wait-led: no COLOR=STATE given");
	for (int i = 0; i < ncond; i++) {
		char buf[32], *eq;
		enum hw_color col;
		enum hw_led_state s;

		if (strlen(cond[i]) >= sizeof buf)
			return usage_error("wait-led: bad condition \"%.32s\" (expected COLOR=STATE)", cond[i]);
		strcpy(buf, cond[i]);
		eq = strchr(buf, '=');
		if (eq == NULL)
			return usage_error("wait-led: bad condition \"%.32s\" (expected COLOR=STATE)", cond[i]);
		*eq = '\0';
		if (simproto_color_parse(buf, &col) < 0 || simproto_state_parse(eq + 1, &s) < 0)
			return usage_error("wait-led: bad condition \"%.32s\" (COLOR: green, amber, red; "
					   "STATE: on, off, blink)", cond[i]);
		if (care[col])
			return usage_error("wait-led: %s given twice", simproto_color_name(col));
		care[col] = 1;
		want[col] = s;
	}
	if (simproto_connect(&c, path, &e) < 0)
		return fail_err(&e);
	until = hw_now_ns() + (uint64_t)timeout_ms * 1000000u;
	for (;;) {
		int match = 1;

		if (get_leds(&c, st, &e) < 0) {
			rc = fail_err(&e);
			goto out;
		}
		for (int i = 0; i < 3; i++)
			match = match && (!care[i] || st[i] == want[i]);
		if (match) {
			rc = 0;
			goto out;
		}
		if (hw_now_ns() >= until)
			break;
		sleep_ms(WAIT_LED_POLL_MS);
	}
	fprintf(stderr, "sealbox-gpiosim: timed out after %u ms waiting for", timeout_ms);
	for (int i = 0; i < ncond; i++)
		fprintf(stderr, " %s", cond[i]);
	fprintf(stderr, " (now: ");
	print_leds(stderr, st);
	fprintf(stderr, ")\n");
	rc = EXIT_TIMEOUT;
out:
	simproto_close(&c);
	return rc;
}

static int cmd_confirm(const char *path, unsigned timeout_ms)
{
	struct hw *hw = NULL;
	struct sbx_err e = { 0 }, why = { 0 };
	char spec[4 + 108];
	int r, rc = EXIT_FAILURE;

	if (strlen(path) >= sizeof spec - 4)
		return usage_error("socket path too long: %.32s...", path);
	snprintf(spec, sizeof spec, "sim:%s", path);
	if (hw_open(spec, &hw, &e) < 0)
		goto out;
	r = hw_confirm(hw, timeout_ms, &why);
	if (r < 0 && r != SBX_ECANCELED) {
		e = why;
		goto out;
	}
	if (hw_led(hw, HW_AMBER, HW_LED_OFF, &e) < 0)
		goto out;
	if (r == 0) {
		printf("confirmed\n");
		rc = 0;
	} else {
		printf("not confirmed: %s\n", why.msg);
		rc = EXIT_TIMEOUT;
	}
out:
	hw_close(hw);
	return rc == EXIT_FAILURE ? fail_err(&e) : rc;
}

/* ---- command line ---- */

static int parse_ms(const char *opt, const char *v, unsigned min, unsigned *out)
{
	uint64_t x;

	if (v == NULL || simproto_parse_u64(v, MS_MAX, &x) < 0 || x < min) {
		fprintf(stderr, "sealbox-gpiosim: %s needs a number of milliseconds, %u to %u\n", opt, min, MS_MAX);
		return -1;
	}
	*out = (unsigned)x;
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd, *opt_hold = NULL, *opt_timeout = NULL;
	char *pos[8];
	int npos = 0, quiet = 0;
	unsigned hold_ms = PRESS_HOLD_MS_DEFAULT, timeout_ms;

	if (argc < 2)
		return usage_error("no command");
	cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(usage_text, stdout);
			return 0;
		} else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
			quiet = 1;
		} else if (strcmp(a, "--hold-ms") == 0) {
			if (i + 1 >= argc)
				return usage_error("%s needs a value", a);
			opt_hold = argv[++i];
		} else if (strcmp(a, "--timeout-ms") == 0) {
			if (i + 1 >= argc)
				return usage_error("%s needs a value", a);
			opt_timeout = argv[++i];
		} else if (strncmp(a, "--hold-ms=", 10) == 0) {
			opt_hold = a + 10;
		} else if (strncmp(a, "--timeout-ms=", 13) == 0) {
			opt_timeout = a + 13;
		} else if (a[0] == '-' && a[1] != '\0') {
			return usage_error("unknown option %s", a);
		} else if (npos < (int)(sizeof pos / sizeof pos[0])) {
			pos[npos++] = argv[i];
		} else {
			return usage_error("too many arguments");
		}
	}
	if (opt_hold != NULL && strcmp(cmd, "press") != 0)
		return usage_error("--hold-ms is for press, not %s", cmd);
	if (opt_timeout != NULL && strcmp(cmd, "wait-led") != 0 && strcmp(cmd, "confirm") != 0)
		return usage_error("--timeout-ms is for wait-led and confirm, not %s", cmd);
	if (quiet && strcmp(cmd, "serve") != 0)
		return usage_error("--quiet is for serve, not %s", cmd);
	if (npos < 1)
		return usage_error("%s: no SOCKET given", cmd);
	if (opt_hold != NULL && parse_ms("--hold-ms", opt_hold, 0, &hold_ms) < 0)
		return EXIT_USAGE;

	if (strcmp(cmd, "serve") == 0 && npos == 1)
		return cmd_serve(pos[0], quiet);
	if (strcmp(cmd, "press") == 0 && npos == 1)
		return cmd_press(pos[0], hold_ms);
	if (strcmp(cmd, "button") == 0 && npos == 2)
		return cmd_button(pos[0], pos[1]);
	if (strcmp(cmd, "leds") == 0 && npos == 1)
		return cmd_leds(pos[0]);
	if (strcmp(cmd, "wait-led") == 0) {
		timeout_ms = WAIT_LED_TIMEOUT_MS_DEFAULT;
		if (opt_timeout != NULL && parse_ms("--timeout-ms", opt_timeout, 0, &timeout_ms) < 0)
			return EXIT_USAGE;
		return cmd_wait_led(pos[0], pos + 1, npos - 1, timeout_ms);
	}
	if (strcmp(cmd, "confirm") == 0 && npos == 1) {
		timeout_ms = HW_CONFIRM_TIMEOUT_MS_DEFAULT;
		if (opt_timeout != NULL && parse_ms("--timeout-ms", opt_timeout, 1, &timeout_ms) < 0)
			return EXIT_USAGE;
		return cmd_confirm(pos[0], timeout_ms);
	}
	if (strcmp(cmd, "serve") == 0 || strcmp(cmd, "press") == 0 || strcmp(cmd, "button") == 0 ||
	    strcmp(cmd, "leds") == 0 || strcmp(cmd, "confirm") == 0)
		return usage_error("%s: wrong number of arguments", cmd);
	return usage_error("unknown command \"%.32s\"", cmd);
}

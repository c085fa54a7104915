/* The production backend: libgpiod v1.6 (Debian 12) on a GPIO chip.
 *
 * The button line is requested for both-edge events: the kernel stamps each
 * edge (CLOCK_MONOTONIC since Linux 5.7) and queues up to 16 per line,
 * dropping newer ones when full, so arming drains the queue before reading the
 * level.  With both edges requested the kernel reports the line's logical
 * level at the time it handles the interrupt, so two edges of the same kind
 * can follow each other; the state machine treats the repeat as nothing.
 *
 * LEDs are outputs.  A blinking LED is toggled by a thread owned by the
 * handle (started by hw_open, stopped by hw_close), all LED writes under one
 * mutex; every blinking LED shares one phase. */
#include <errno.h>
#include <gpiod.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hw/backend.h"

#define GHW_CONSUMER "sealbox"
#define GHW_HALF_PERIOD_NS (250ull * 1000 * 1000)   /* 2 Hz blink */
#define GHW_SPEC_MAX 256
#define GHW_DRAIN_ROUNDS 64

enum { GHW_BUTTON, GHW_GREEN, GHW_AMBER, GHW_RED, GHW_NLINES };

static const char *const role_key[GHW_NLINES] = { "button", "green", "amber", "red" };
static const char *const role_default[GHW_NLINES] = { "BUTTON", "LED_GREEN", "LED_AMBER", "LED_RED" };

struct ghw {
	struct hw hw;
	struct gpiod_chip *chip;
	struct gpiod_line *line[GHW_NLINES];
	char chip_name[64];

	/* Blinking: everything below is under mu. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int have_mu, have_cv, have_thread;
	enum hw_led_state led[3];
	int phase, stop, blink_errno;
	struct timespec next_toggle;
};

static struct timespec ts_add_ns(struct timespec t, uint64_t ns)
{
	uint64_t n = (uint64_t)t.tv_nsec + ns;

	t.tv_sec += (time_t)(n / 1000000000u);
	t.tv_nsec = (long)(n % 1000000000u);
	return t;
}

static int ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static int any_blinking(const struct ghw *g)
{
	return g->led[0] == HW_LED_BLINK || g->led[1] == HW_LED_BLINK || g->led[2] == HW_LED_BLINK;
}

/* Under mu. */
static void write_blinking(struct ghw *g)
{
	for (int i = 0; i < 3; i++) {
		if (g->led[i] != HW_LED_BLINK)
			continue;
		if (gpiod_line_set_value(g->line[GHW_GREEN + i], g->phase) < 0 && g->blink_errno == 0)
			g->blink_errno = errno;
	}
}

static void *blink_main(void *arg)
{
	struct ghw *g = arg;

	pthread_mutex_lock(&g->mu);
	while (!g->stop) {
		struct timespec now;

		if (!any_blinking(g)) {
			pthread_cond_wait(&g->cv, &g->mu);
			continue;
		}
		pthread_cond_timedwait(&g->cv, &g->mu, &g->next_toggle);
		if (g->stop || !any_blinking(g))
			continue;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (ts_before(&now, &g->next_toggle))
			continue;   /* woken by hw_led, not by the clock */
		g->phase = !g->phase;
		write_blinking(g);
		g->next_toggle = ts_add_ns(g->next_toggle, GHW_HALF_PERIOD_NS);
		if (ts_before(&g->next_toggle, &now))   /* we were descheduled: do not race to catch up */
			g->next_toggle = ts_add_ns(now, GHW_HALF_PERIOD_NS);
	}
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

static int ghw_led(void *ctx, enum hw_color color, enum hw_led_state state, struct sbx_err *e)
{
	struct ghw *g = ctx;
	int r = SBX_EIO, was_blinking, err;

	pthread_mutex_lock(&g->mu);
	was_blinking = any_blinking(g);
	g->led[color] = state;
	if (state == HW_LED_BLINK && !was_blinking) {
		/* Start a fresh phase, lit, so the change is visible at once. */
		clock_gettime(CLOCK_MONOTONIC, &g->next_toggle);
		g->next_toggle = ts_add_ns(g->next_toggle, GHW_HALF_PERIOD_NS);
		g->phase = 1;
	}
	if (gpiod_line_set_value(g->line[GHW_GREEN + color],
				 state == HW_LED_BLINK ? g->phase : state == HW_LED_ON) < 0) {
		r = sbx_fail(e, SBX_EIO, "GPIO chip \"%s\": setting the %s LED: %s", g->chip_name,
			     role_key[GHW_GREEN + color], strerror(errno));
		goto out;
	}
	pthread_cond_signal(&g->cv);
	/* The blink thread cannot report; its first failure surfaces here. */
	if (g->blink_errno != 0) {
		err = g->blink_errno;
		g->blink_errno = 0;
		r = sbx_fail(e, SBX_EIO, "GPIO chip \"%s\": blinking an LED failed: %s", g->chip_name, strerror(err));
		goto out;
	}
	r = 0;
out:
	pthread_mutex_unlock(&g->mu);
	return r;
}

static int ghw_drain(void *ctx, int *pressed, struct sbx_err *e)
{
	struct ghw *g = ctx;
	struct gpiod_line_event ev[16];
	const struct timespec zero = { 0, 0 };
	int v;

	/* Read the kernel queue empty: the events in it are stale, and while it
	 * is full new edges are dropped.  A button chattering faster than we
	 * read stops the drain after a bound; what is left is dated before
	 * arming and only makes the state machine stricter. */
	for (int round = 0; round < GHW_DRAIN_ROUNDS; round++) {
		int r = gpiod_line_event_wait(g->line[GHW_BUTTON], &zero);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return sbx_fail(e, SBX_EIO, "GPIO chip \"%s\": waiting for button events: %s",
					g->chip_name, strerror(errno));
		if (r == 0)
			break;
		if (gpiod_line_event_read_multiple(g->line[GHW_BUTTON], ev, 16) < 0)
			return sbx_fail(e, SBX_EIO, "GPIO chip \"%s\": reading button events: %s",
					g->chip_name, strerror(errno));
	}
	v = gpiod_line_get_value(g->line[GHW_BUTTON]);
	if (v < 0)
		return sbx_fail(e, SBX_EIO, "GPIO chip \"%s\": reading the button: %s", g->chip_name, strerror(errno));
	*pressed = v;
	return 0;
}

static int ghw_wait(void *ctx, uint64_t until_ns, struct hw_edge *out, struct sbx_err *e)
{
	struct ghw *g = ctx;
	struct gpiod_line_event ev;

	for (;;) {
		uint64_t now = hw_now_ns(), left = until_ns > now ? until_ns - now : 0;
		struct timespec t = { (time_t)(left / 1000000000u), (long)(left % 1000000000u) };
		int r = gpiod_line_event_wait(g->line[GHW_BUTTON], &t);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return sbx_fail(e, SBX_EIO, "GPIO chip \"%s\": waiting for button events: %s",
					g->chip_name, strerror(errno));
		if (r == 0) {
			if (left == 0)
				return 0;
			continue;   /* recompute: returns 0 once the time has come */
		}
		if (gpiod_line_event_read(g->line[GHW_BUTTON], &ev) < 0)
			return sbx_fail(e, SBX_EIO, "GPIO chip \"%s\": reading a button event: %s",
					g->chip_name, strerror(errno));
		if (ev.ts.tv_sec < 0)
			return sbx_fail(e, SBX_EIO, "GPIO chip \"%s\": button event with a negative timestamp",
					g->chip_name);
		out->ts_ns = (uint64_t)ev.ts.tv_sec * 1000000000u + (uint64_t)ev.ts.tv_nsec;
		out->pressed = ev.event_type == GPIOD_LINE_EVENT_RISING_EDGE;
		return 1;
	}
}

static void ghw_close(void *ctx)
{
	struct ghw *g = ctx;

	if (g->have_thread) {
		pthread_mutex_lock(&g->mu);
		g->stop = 1;
		pthread_cond_signal(&g->cv);
		pthread_mutex_unlock(&g->mu);
		pthread_join(g->thread, NULL);
	}
	if (g->have_cv)
		pthread_cond_destroy(&g->cv);
	if (g->have_mu)
		pthread_mutex_destroy(&g->mu);
	if (g->chip != NULL)
		gpiod_chip_close(g->chip);   /* releases the requested lines */
	free(g);
}

static const struct hw_ops ghw_ops = {
	.led = ghw_led,
	.drain = ghw_drain,
	.wait = ghw_wait,
	.close = ghw_close,
};

/* The blink thread sleeps until absolute CLOCK_MONOTONIC times, immune to
 * wall-clock steps. */
static int cond_init_monotonic(pthread_cond_t *cv)
{
	pthread_condattr_t ca;
	int r;

	if (pthread_condattr_init(&ca) != 0)
		return -1;
	r = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (r == 0)
		r = pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
	return r == 0 ? 0 : -1;
}

/* Digits only: an offset; anything else: a line name. */
static int is_offset(const char *s, unsigned *off)
{
	unsigned long v = 0;

	if (s[0] == '\0')
		return 0;
	for (const char *p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		/* saturate: the range check against the chip reports it */
		v = v > 100000000 ? v : v * 10 + (unsigned long)(*p - '0');
	}
	*off = (unsigned)v;
	return 1;
}

static int active_low_parse(const char *key, const char *v, int *low, struct sbx_err *e)
{
	if (strcmp(v, "high") == 0)
		*low = 0;
	else if (strcmp(v, "low") == 0)
		*low = 1;
	else
		return sbx_fail(e, SBX_EINVAL, "GPIO spec: %s must be high or low, not \"%.32s\"", key, v);
	return 0;
}

static int find_line(struct ghw *g, int role, const char *ref, struct sbx_err *e)
{
	unsigned off;

	errno = 0;
	if (is_offset(ref, &off)) {
		if (off >= gpiod_chip_num_lines(g->chip))
			return sbx_fail(e, SBX_EINVAL, "GPIO chip \"%s\" has %u lines: no offset %u (%s)",
					g->chip_name, gpiod_chip_num_lines(g->chip), off, role_key[role]);
		g->line[role] = gpiod_chip_get_line(g->chip, off);
	} else {
		g->line[role] = gpiod_chip_find_line(g->chip, ref);
	}
	if (g->line[role] == NULL)
		return sbx_fail(e, SBX_ENOENT, "GPIO chip \"%s\": no line \"%s\" for the %s%s%s",
				g->chip_name, ref, role_key[role], errno != 0 && errno != ENOENT ? ": " : "",
				errno != 0 && errno != ENOENT ? strerror(errno) : "");
	for (int i = 0; i < role; i++) {
		if (gpiod_line_offset(g->line[i]) == gpiod_line_offset(g->line[role]))
			return sbx_fail(e, SBX_EINVAL, "GPIO chip \"%s\": the %s and the %s are the same line %u",
					g->chip_name, role_key[i], role_key[role], gpiod_line_offset(g->line[role]));
	}
	return 0;
}

int hw_gpiod_open(const char *args, struct hw **out, struct sbx_err *e)
{
	char buf[GHW_SPEC_MAX], *rest, *name, *opt;
	const char *ref[GHW_NLINES];
	int seen[GHW_NLINES + 2] = { 0 }, button_low = 0, led_low = 0;
	struct ghw *g = NULL;
	int r = SBX_EINVAL;

	for (int i = 0; i < GHW_NLINES; i++)
		ref[i] = role_default[i];
	if (strlen(args) >= sizeof buf)
		return sbx_fail(e, SBX_EINVAL, "GPIO spec too long (at most %zu bytes)", sizeof buf - 1);
	strcpy(buf, args);
	rest = buf;
	name = strsep(&rest, ",");
	if (name[0] == '\0')
		return sbx_fail(e, SBX_EINVAL, "GPIO spec: no chip name (expected chip:NAME[,button=LINE,...])");
	while ((opt = strsep(&rest, ",")) != NULL) {
		char *val = strchr(opt, '=');
		int k;

		if (val == NULL || val == opt || val[1] == '\0')
			return sbx_fail(e, SBX_EINVAL, "GPIO spec: expected KEY=VALUE, not \"%.32s\"", opt);
		*val++ = '\0';
		for (k = 0; k < GHW_NLINES; k++) {
			if (strcmp(opt, role_key[k]) == 0)
				break;
		}
		if (k == GHW_NLINES && strcmp(opt, "button_active") != 0 && strcmp(opt, "led_active") != 0)
			return sbx_fail(e, SBX_EINVAL, "GPIO spec: unknown key \"%.32s\" (button, green, amber, red, "
					"button_active, led_active)", opt);
		if (k == GHW_NLINES)
			k = strcmp(opt, "button_active") == 0 ? GHW_NLINES : GHW_NLINES + 1;
		if (seen[k]++)
			return sbx_fail(e, SBX_EINVAL, "GPIO spec: \"%s\" given twice", opt);
		if (k < GHW_NLINES)
			ref[k] = val;
		else if ((r = active_low_parse(opt, val, k == GHW_NLINES ? &button_low : &led_low, e)) < 0)
			return r;
	}

	g = calloc(1, sizeof *g);
	if (g == NULL)
		return sbx_fail(e, SBX_ENOMEM, "out of memory");
	snprintf(g->chip_name, sizeof g->chip_name, "%s", name);
	errno = 0;
	g->chip = gpiod_chip_open_lookup(name);
	if (g->chip == NULL) {
		r = sbx_fail(e, SBX_ENOENT, "cannot open GPIO chip \"%s\": %s", name,
			     errno != 0 ? strerror(errno) : "not found");
		goto out;
	}
	for (int i = 0; i < GHW_NLINES; i++) {
		r = find_line(g, i, ref[i], e);
		if (r < 0)
			goto out;
	}
	if (gpiod_line_request_both_edges_events_flags(g->line[GHW_BUTTON], GHW_CONSUMER,
			button_low ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0) < 0) {
		r = sbx_fail(e, SBX_EIO, "GPIO chip \"%s\": requesting the button line \"%s\" for events: %s",
			     g->chip_name, ref[GHW_BUTTON], strerror(errno));
		goto out;
	}
	for (int i = GHW_GREEN; i <= GHW_RED; i++) {
		if (gpiod_line_request_output_flags(g->line[i], GHW_CONSUMER,
				led_low ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0, 0) < 0) {
			r = sbx_fail(e, SBX_EIO, "GPIO chip \"%s\": requesting the %s LED line \"%s\" as output: %s",
				     g->chip_name, role_key[i], ref[i], strerror(errno));
			goto out;
		}
	}

	if (pthread_mutex_init(&g->mu, NULL) != 0) {
		r = sbx_fail(e, SBX_ENOMEM, "pthread_mutex_init failed");
		goto out;
	}
	g->have_mu = 1;
	if (cond_init_monotonic(&g->cv) != 0) {
		r = sbx_fail(e, SBX_ENOMEM, "pthread_cond_init failed");
		goto out;
	}
	g->have_cv = 1;
	if (pthread_create(&g->thread, NULL, blink_main, g) != 0) {
		r = sbx_fail(e, SBX_ENOMEM, "cannot start the LED blink thread");
		goto out;
	}
	g->have_thread = 1;

	g->hw.ops = &ghw_ops;
	g->hw.ctx = g;
	*out = &g->hw;
	g = NULL; /* transferred */
	r = 0;
out:
	if (g != NULL)
		ghw_close(g);
	return r;
}

/* The confirmation button's state machine (hw/button.c), with synthetic
 * timestamps only: nothing here reads a clock or sleeps.
 *
 * Named cases for each rule, then a randomized comparison against an
 * offline oracle that computes the debounced signal from the whole edge list
 * at once (a different method from the machine's incremental one). */
#include <stdint.h>
#include <string.h>

#include "hw/button.h"
#include "tests/unit/check.h"

#define MS (1000ull * 1000)
#define DEB (30 * MS)
#define T0 (1000 * MS)          /* arming time in most cases */
#define TIMEOUT (60000 * MS)

static struct button armed(int pressed_at_arm)
{
	struct button b;

	button_init(&b, DEB);
	button_arm(&b, T0, TIMEOUT, pressed_at_arm);
	return b;
}

/* press at `at` ms after arming, release `hold` ms later */
static enum button_status press(struct button *b, uint64_t at_ms, uint64_t hold_ms)
{
	button_edge(b, T0 + at_ms * MS, 1);
	return button_edge(b, T0 + (at_ms + hold_ms) * MS, 0);
}

static enum button_status finish(struct button *b)
{
	return button_tick(b, T0 + TIMEOUT + 1);
}

static void test_idle(void)
{
	struct button b;

	button_init(&b, DEB);
	CHECK(button_status(&b) == BUTTON_IDLE);
	CHECK_MSG(press(&b, 10, 100) == BUTTON_IDLE, "never armed: a press does nothing");
	CHECK(button_tick(&b, T0 + 10 * TIMEOUT) == BUTTON_IDLE);
}

static void test_simple_confirm(void)
{
	struct button b = armed(0);
	int confirms = 0;

	CHECK(button_status(&b) == BUTTON_WAITING);
	button_edge(&b, T0 + 500 * MS, 1);
	CHECK_MSG(button_tick(&b, T0 + 600 * MS) == BUTTON_WAITING, "held down: not yet (act on release)");
	button_edge(&b, T0 + 650 * MS, 0);
	CHECK_MSG(button_tick(&b, T0 + 650 * MS + DEB - 1) == BUTTON_WAITING,
		  "release not settled yet: not yet");
	CHECK_MSG(button_tick(&b, T0 + 650 * MS + DEB) == BUTTON_CONFIRMED,
		  "press and release after arming: confirmed once the release settled");

	/* Exactly one confirmation per arm: count transitions into CONFIRMED
	 * over more presses. */
	b = armed(0);
	for (int i = 0; i < 10; i++) {
		enum button_status before = button_status(&b), after;

		press(&b, 100 + (uint64_t)i * 1000, 200);
		after = button_tick(&b, T0 + (1000 + (uint64_t)i * 1000) * MS);
		confirms += before != BUTTON_CONFIRMED && after == BUTTON_CONFIRMED;
	}
	CHECK_MSG(confirms == 1, "ten presses in one arm: exactly one confirmation");
	CHECK_MSG(finish(&b) == BUTTON_CONFIRMED, "confirmation stays final until the next arm");
}

static void test_presses_before_arming(void)
{
	struct button b;

	button_init(&b, DEB);
	for (int i = 0; i < 100; i++)
		press(&b, (uint64_t)i * 5, 3);   /* before any arm, at T0.. */
	button_arm(&b, T0 + 10000 * MS, TIMEOUT, 0);
	CHECK_MSG(button_tick(&b, T0 + 10000 * MS + TIMEOUT + 1) == BUTTON_EXPIRED,
		  "100 presses before arming: no confirmation");

	/* The same presses, dated before arming but delivered after it (a drain
	 * that missed them): still nothing. */
	button_init(&b, DEB);
	button_arm(&b, T0, TIMEOUT, 0);
	for (int i = 0; i < 100; i++) {
		button_edge(&b, T0 - (900 - (uint64_t)i * 8) * MS, 1);
		button_edge(&b, T0 - (900 - (uint64_t)i * 8 - 4) * MS, 0);
	}
	CHECK_MSG(button_tick(&b, T0 + 5000 * MS) == BUTTON_WAITING, "stale presses delivered late: no confirmation");
	CHECK_MSG(finish(&b) == BUTTON_EXPIRED, "stale presses delivered late: expires");

	/* ... and they do not block a real press afterwards. */
	button_init(&b, DEB);
	button_arm(&b, T0, TIMEOUT, 0);
	for (int i = 0; i < 100; i++) {
		button_edge(&b, T0 - 500 * MS + (uint64_t)i * MS, i % 2 == 0);
	}
	CHECK_MSG(press(&b, 1000, 200) == BUTTON_WAITING && button_tick(&b, T0 + 2000 * MS) == BUTTON_CONFIRMED,
		  "a fresh press after stale ones confirms");

	/* A stale press that is still down when it arrives: must be released
	 * and pressed again. */
	b = armed(0);
	button_edge(&b, T0 - 5 * MS, 1);
	button_edge(&b, T0 + 300 * MS, 0);
	CHECK_MSG(button_tick(&b, T0 + 1000 * MS) == BUTTON_WAITING,
		  "press begun before arming, released after: no confirmation");
	CHECK_MSG(press(&b, 2000, 150) == BUTTON_WAITING && button_tick(&b, T0 + 3000 * MS) == BUTTON_CONFIRMED,
		  "then a fresh press confirms");
}

static void test_held_at_arming(void)
{
	struct button b = armed(1);

	CHECK_MSG(button_tick(&b, T0 + 5000 * MS) == BUTTON_WAITING, "held at arming: nothing while held");
	button_edge(&b, T0 + 5000 * MS, 0);
	CHECK_MSG(button_tick(&b, T0 + 6000 * MS) == BUTTON_WAITING, "held at arming, released: no confirmation");
	CHECK_MSG(finish(&b) == BUTTON_EXPIRED, "held at arming, released only: expires");

	b = armed(1);
	button_edge(&b, T0 + 5000 * MS, 0);
	CHECK_MSG(press(&b, 6000, 150) == BUTTON_WAITING && button_tick(&b, T0 + 7000 * MS) == BUTTON_CONFIRMED,
		  "held at arming: released, then pressed again -> confirmed");

	/* The release must itself be real, not a glitch. */
	b = armed(1);
	button_edge(&b, T0 + 100 * MS, 0);
	button_edge(&b, T0 + 110 * MS, 1);   /* 10 ms up-glitch, still held */
	button_edge(&b, T0 + 500 * MS, 0);
	CHECK_MSG(button_tick(&b, T0 + 1000 * MS) == BUTTON_WAITING,
		  "held at arming with a release glitch, then released: no confirmation");
}

static void test_glitches(void)
{
	struct button b = armed(0);

	press(&b, 100, 10);
	CHECK_MSG(finish(&b) == BUTTON_EXPIRED, "10 ms glitch: no confirmation");

	b = armed(0);
	for (int i = 0; i < 1000; i++)
		press(&b, 100 + (uint64_t)i * 50, 29);
	CHECK_MSG(finish(&b) == BUTTON_EXPIRED, "1000 glitches of 29 ms: no confirmation");

	b = armed(0);
	button_edge(&b, T0 + 100 * MS, 1);
	button_edge(&b, T0 + 100 * MS + DEB - 1, 0);
	CHECK_MSG(finish(&b) == BUTTON_EXPIRED, "press of debounce - 1 ns: no confirmation");

	b = armed(0);
	button_edge(&b, T0 + 100 * MS, 1);
	button_edge(&b, T0 + 100 * MS + DEB, 0);
	CHECK_MSG(finish(&b) == BUTTON_CONFIRMED, "press of exactly the debounce: confirmed");

	/* A real, bouncy press: contacts chatter on the way down and up. */
	b = armed(0);
	for (int i = 0; i < 6; i++)
		button_edge(&b, T0 + (100 + (uint64_t)i) * MS, i % 2 == 0);
	button_edge(&b, T0 + 106 * MS, 1);
	for (int i = 0; i < 6; i++)
		button_edge(&b, T0 + (300 + (uint64_t)i) * MS, i % 2 != 0);
	button_edge(&b, T0 + 306 * MS, 0);
	CHECK_MSG(button_tick(&b, T0 + 306 * MS + DEB - 1) == BUTTON_WAITING, "bouncy press: not before the last bounce settled");
	CHECK_MSG(button_tick(&b, T0 + 306 * MS + DEB) == BUTTON_CONFIRMED, "bouncy press: confirmed once");

	/* A short release glitch while held is not a release. */
	b = armed(0);
	button_edge(&b, T0 + 100 * MS, 1);
	button_edge(&b, T0 + 200 * MS, 0);
	button_edge(&b, T0 + 205 * MS, 1);
	CHECK_MSG(button_tick(&b, T0 + 1000 * MS) == BUTTON_WAITING, "5 ms release glitch while held: not a release");
	button_edge(&b, T0 + 1500 * MS, 0);
	CHECK_MSG(button_tick(&b, T0 + 2000 * MS) == BUTTON_CONFIRMED, "then the real release confirms");
}

static void test_deadline(void)
{
	struct button b = armed(0);

	press(&b, 60000 + 100, 200);
	CHECK_MSG(finish(&b) == BUTTON_EXPIRED, "press after the timeout: no confirmation");

	b = armed(0);
	CHECK_MSG(button_edge(&b, T0 + TIMEOUT + 1, 1) == BUTTON_EXPIRED,
		  "an edge after the deadline expires the arm without a tick");

	b = armed(0);
	button_edge(&b, T0 + TIMEOUT - 500 * MS, 1);
	button_edge(&b, T0 + TIMEOUT + 100 * MS, 0);
	CHECK_MSG(finish(&b) == BUTTON_EXPIRED, "pressed before the deadline, released after: no confirmation");

	b = armed(0);
	button_edge(&b, T0 + TIMEOUT - 500 * MS, 1);
	button_edge(&b, T0 + TIMEOUT - DEB + 1, 0);
	CHECK_MSG(finish(&b) == BUTTON_EXPIRED,
		  "released before the deadline but settling after it: no confirmation");

	b = armed(0);
	button_edge(&b, T0 + TIMEOUT - 500 * MS, 1);
	button_edge(&b, T0 + TIMEOUT - DEB, 0);
	CHECK_MSG(finish(&b) == BUTTON_CONFIRMED, "release settling exactly at the deadline: confirmed");

	b = armed(0);
	CHECK_MSG(button_tick(&b, T0 + TIMEOUT) == BUTTON_WAITING, "the deadline instant is still inside the window");
	CHECK_MSG(button_tick(&b, T0 + TIMEOUT + 1) == BUTTON_EXPIRED, "one ns later it is not");

	b = armed(0);
	button_edge(&b, T0 + TIMEOUT - 500 * MS, 1);
	CHECK_MSG(finish(&b) == BUTTON_EXPIRED, "still held at the deadline: no confirmation");
	button_edge(&b, T0 + TIMEOUT + 2, 0);
	CHECK_MSG(button_tick(&b, T0 + 2 * TIMEOUT) == BUTTON_EXPIRED, "expired stays expired");

	/* A press right at arming counts (it is not before arming). */
	b = armed(0);
	button_edge(&b, T0, 1);
	button_edge(&b, T0 + 100 * MS, 0);
	CHECK_MSG(finish(&b) == BUTTON_CONFIRMED, "press at the arming instant: confirmed");

	/* Huge timeout: the deadline saturates instead of wrapping. */
	button_init(&b, DEB);
	button_arm(&b, UINT64_MAX - 10 * MS, TIMEOUT, 0);
	CHECK_MSG(button_tick(&b, UINT64_MAX - 5 * MS) == BUTTON_WAITING, "deadline near the clock's end: no wrap");
}

static void test_two_arms(void)
{
	struct button b = armed(0);
	uint64_t t2 = T0 + 10000 * MS;

	press(&b, 100, 200);
	CHECK(button_tick(&b, T0 + 1000 * MS) == BUTTON_CONFIRMED);
	button_arm(&b, t2, TIMEOUT, 0);
	CHECK_MSG(button_status(&b) == BUTTON_WAITING, "second arm starts waiting");
	CHECK_MSG(button_tick(&b, t2 + TIMEOUT + 1) == BUTTON_EXPIRED,
		  "second arm without its own press: no confirmation");

	/* The first arm's press, delivered again after the second arm (dated
	 * before it), does not count for the second. */
	button_init(&b, DEB);
	button_arm(&b, T0, TIMEOUT, 0);
	press(&b, 100, 200);
	CHECK(button_tick(&b, T0 + 1000 * MS) == BUTTON_CONFIRMED);
	button_arm(&b, t2, TIMEOUT, 0);
	button_edge(&b, T0 + 100 * MS, 1);
	button_edge(&b, T0 + 300 * MS, 0);
	CHECK_MSG(button_tick(&b, t2 + TIMEOUT + 1) == BUTTON_EXPIRED,
		  "the first arm's press replayed into the second: no confirmation");

	button_arm(&b, t2 + 2 * TIMEOUT, TIMEOUT, 0);
	button_edge(&b, t2 + 2 * TIMEOUT + 100 * MS, 1);
	button_edge(&b, t2 + 2 * TIMEOUT + 300 * MS, 0);
	CHECK_MSG(button_tick(&b, t2 + 2 * TIMEOUT + 400 * MS) == BUTTON_CONFIRMED,
		  "a third arm with its own press: confirmed");
}

static void test_details(void)
{
	struct button b = armed(0);

	CHECK_MSG(button_next_ns(&b) == T0 + TIMEOUT + 1, "next wake-up: the deadline when nothing is pending");
	button_edge(&b, T0 + 100 * MS, 1);
	CHECK_MSG(button_next_ns(&b) == T0 + 100 * MS + DEB, "next wake-up: when a pending level settles");

	/* A repeated level (the kernel missed the opposite edge) does not
	 * restart the debounce. */
	b = armed(0);
	button_edge(&b, T0 + 100 * MS, 1);
	button_edge(&b, T0 + 120 * MS, 1);
	button_edge(&b, T0 + 140 * MS, 0);
	CHECK_MSG(button_tick(&b, T0 + 170 * MS) == BUTTON_CONFIRMED, "repeated press edge: debounce not restarted");

	/* Timestamps never go back: an edge dated before the previous one is
	 * taken at the previous one's time. */
	b = armed(0);
	button_edge(&b, T0 + 100 * MS, 1);
	button_edge(&b, T0 + 50 * MS, 0);
	CHECK_MSG(finish(&b) == BUTTON_EXPIRED, "release dated before its press: a zero-length glitch");

	/* The confirmation is seen by the next edge even without a tick. */
	b = armed(0);
	press(&b, 100, 200);
	CHECK_MSG(button_edge(&b, T0 + 500 * MS, 1) == BUTTON_CONFIRMED, "settled release noticed at the next edge");

	/* Debounce 0: every edge counts at once. */
	button_init(&b, 0);
	button_arm(&b, T0, TIMEOUT, 0);
	button_edge(&b, T0 + 1, 1);
	button_edge(&b, T0 + 2, 0);
	CHECK_MSG(button_tick(&b, T0 + 2) == BUTTON_CONFIRMED, "debounce 0: a 1 ns press counts");
}

/* ---- randomized comparison with an offline oracle ---- */

static uint64_t rng = 0x5eab0c5eab0c5ull;

static uint64_t rnd(uint64_t n)
{
	/* xorshift64*: deterministic, so a failure reproduces. */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (rng * 0x2545F4914F6CDD1Dull >> 11) % n;
}

#define MAXE 24

/* From the whole raw signal: a raw level held for at least the debounce (or
 * to the end) becomes stable at start + debounce; count the stable changes
 * settled by the deadline.  Starting from up, confirmation needs up->down->up
 * (2 changes); starting from down (held at arming), 3. */
static int oracle(int level0, const uint64_t *ts, const int *lv, int n, uint64_t arm, uint64_t deadline,
		  uint64_t deb)
{
	uint64_t st[MAXE + 1];
	int level[MAXE + 1], m = 0, stable = level0, changes = 0;

	st[m] = arm;
	level[m++] = level0;
	for (int i = 0; i < n; i++) {
		if (lv[i] == level[m - 1])
			continue;
		st[m] = ts[i];
		level[m++] = lv[i];
	}
	for (int i = 0; i < m; i++) {
		int holds = i + 1 == m || st[i + 1] - st[i] >= deb;

		if (holds && level[i] != stable && st[i] + deb <= deadline) {
			stable = level[i];
			changes++;
		}
	}
	return changes >= (level0 ? 3 : 2);
}

static void test_random(void)
{
	static const uint64_t gaps[] = { 0, 1, 5 * MS, 29 * MS, DEB - 1, DEB, DEB + 1, 31 * MS, 100 * MS, 400 * MS };
	const uint64_t timeout = 2000 * MS;
	int mismatches = 0, confirmed = 0, runs = 200000;

	for (int run = 0; run < runs; run++) {
		uint64_t ts[MAXE], t = T0;
		int lv[MAXE], n = 1 + (int)rnd(MAXE), level0 = (int)rnd(4) == 0, level = level0;
		struct button b;
		enum button_status got, want;

		for (int i = 0; i < n; i++) {
			t += gaps[rnd(sizeof gaps / sizeof gaps[0])] + (rnd(3) == 0 ? rnd(50 * MS) : 0);
			/* mostly alternating, sometimes a repeated level */
			level = rnd(8) == 0 ? level : !level;
			ts[i] = t;
			lv[i] = level;
		}
		button_init(&b, DEB);
		button_arm(&b, T0, timeout, level0);
		for (int i = 0; i < n; i++) {
			/* ticks may come at any time up to (not past) the next edge */
			if (rnd(2) == 0 && ts[i] > b.now_ns)
				button_tick(&b, b.now_ns + rnd(ts[i] - b.now_ns + 1));
			button_edge(&b, ts[i], lv[i]);
		}
		got = button_tick(&b, T0 + timeout + 1);
		want = oracle(level0, ts, lv, n, T0, T0 + timeout, DEB) ? BUTTON_CONFIRMED : BUTTON_EXPIRED;
		confirmed += want == BUTTON_CONFIRMED;
		if (got != want && mismatches++ < 5) {
			printf("# mismatch run %d: level0=%d got %d want %d:", run, level0, got, want);
			for (int i = 0; i < n; i++)
				printf(" %llu:%d", (unsigned long long)((ts[i] - T0) / 1000), lv[i]);
			printf(" (us)\n");
		}
	}
	printf("# random: %d runs, %d confirmed\n", runs, confirmed);
	CHECK_MSG(mismatches == 0, "200000 random edge sequences agree with the offline oracle");
	CHECK_MSG(confirmed > runs / 10 && confirmed < runs - runs / 10, "random sequences cover both outcomes");
}

/* Edges dated before arming but delivered after it act as "held at
 * arming" if the last says pressed, and as nothing otherwise: a clean press
 * then confirms exactly when the stale ones ended released. */
static void test_random_stale(void)
{
	const uint64_t arm = 10000 * MS;
	int mismatches = 0, runs = 20000;

	for (int run = 0; run < runs; run++) {
		struct button b;
		int n = 1 + (int)rnd(40), level = (int)rnd(2), level0 = (int)rnd(2);
		uint64_t t = arm - 2000 * MS;
		enum button_status want, got;

		button_init(&b, DEB);
		button_arm(&b, arm, TIMEOUT, level0);
		for (int i = 0; i < n; i++) {
			t += rnd(40 * MS);
			level = rnd(8) == 0 ? level : !level;
			button_edge(&b, t, level);
		}
		if (button_tick(&b, arm + 1000 * MS) != BUTTON_WAITING && mismatches++ < 3)
			printf("# stale run %d: not waiting after stale edges\n", run);
		button_edge(&b, arm + 2000 * MS, 1);
		button_edge(&b, arm + 2200 * MS, 0);
		got = button_tick(&b, arm + 3000 * MS);
		want = level ? BUTTON_WAITING : BUTTON_CONFIRMED;
		if (got != want && mismatches++ < 3)
			printf("# stale run %d: level0=%d n=%d last=%d: got %d\n", run, level0, n, level, got);
	}
	CHECK_MSG(mismatches == 0, "20000 random stale sequences: never confirm by themselves, "
		  "a clean press confirms iff they ended released");
}

int main(void)
{
	test_idle();
	test_simple_confirm();
	test_presses_before_arming();
	test_held_at_arming();
	test_glitches();
	test_deadline();
	test_two_arms();
	test_details();
	test_random();
	test_random_stale();
	return check_done();
}

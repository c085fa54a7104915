/* Minimal test reporting for the unit test programs.  Each check prints one
 * TAP-style line ("ok N - what" / "not ok N - what"); tests/run.sh counts
 * them.  CHECK evaluates to the condition and never returns or jumps. */
#ifndef SBX_CHECK_H
#define SBX_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int check_n, check_failed;

static inline int check_report(const char *file, int line, const char *what, int cond)
{
	check_n++;
	if (cond) {
		printf("ok %d - %s\n", check_n, what);
	} else {
		check_failed++;
		printf("not ok %d - %s (%s:%d)\n", check_n, what, file, line);
	}
	fflush(stdout);
	return cond;
}

#define CHECK(cond) check_report(__FILE__, __LINE__, #cond, (cond) ? 1 : 0)
#define CHECK_MSG(cond, msg) check_report(__FILE__, __LINE__, (msg), (cond) ? 1 : 0)

/* Call at the end of main: exit status 1 if anything failed. */
static inline int check_done(void)
{
	printf("# %d checks, %d failed\n", check_n, check_failed);
	return check_failed ? 1 : 0;
}

#endif

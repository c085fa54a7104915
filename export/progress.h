/* A one-line progress report on a terminal, for work that takes minutes
 * (an export of tens of GB): rewritten in place at most twice a second,
 * erased when the work ends, so that the result lines stay as they are.
 * Off (f NULL) unless the caller's stderr is a terminal and no --json.
 * Core library (sealbox ingest, sealbox-open): libc only. */
#ifndef SBX_PROGRESS_H
#define SBX_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

struct progress {
	FILE *f;                /* NULL: off */
	uint64_t next_ms;
	int shown;
};

void progress_init(struct progress *p, FILE *f);
/* Shows the line now if `force`, else only if half a second has passed. */
void progress_show(struct progress *p, int force, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Erases the line, if one is shown. */
void progress_end(struct progress *p);

#endif

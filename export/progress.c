#include "export/progress.h"

#include <stdarg.h>
#include <time.h>

#define PROGRESS_EVERY_MS 500

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void progress_init(struct progress *p, FILE *f)
{
	p->f = f;
	p->next_ms = 0;
	p->shown = 0;
}

void progress_show(struct progress *p, int force, const char *fmt, ...)
{
	uint64_t now;
	va_list ap;

	if (p->f == NULL)
		return;
	now = mono_ms();
	if (!force && now < p->next_ms)
		return;
	p->next_ms = now + PROGRESS_EVERY_MS;
	/* Carriage return, the text, erase to the end of the line. */
	fputc('\r', p->f);
	va_start(ap, fmt);
	vfprintf(p->f, fmt, ap);
	va_end(ap);
	fputs("\033[K", p->f);
	fflush(p->f);
	p->shown = 1;
}

void progress_end(struct progress *p)
{
	if (p->f == NULL || !p->shown)
		return;
	fputs("\r\033[K", p->f);
	fflush(p->f);
	p->shown = 0;
}

#include "export/worker.h"

#include <signal.h>

int worker_start(pthread_t *th, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int started;

	/* The new thread inherits the mask in force while it is created. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	started = pthread_create(th, NULL, fn, arg) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return started;
}

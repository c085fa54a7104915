/* Starting a helper thread of the recipient programs and the box's
 * writers (hashing, flushing, writing files).  Signals stay the starting
 * thread's business: sealbox-open blocks and polls them, so a helper must
 * never take one.  Core library: pthreads. */
#ifndef SBX_WORKER_H
#define SBX_WORKER_H

#include <pthread.h>

/* 1 if the thread runs (with every signal blocked), 0 if it could not be
 * started; the callers then do the work inline. */
int worker_start(pthread_t *th, void *(*fn)(void *), void *arg);

#endif

#include "export/bundle_read_hash.h"

#include <pthread.h>
#include <stdlib.h>

#include "crypto/err.h"
#include "crypto/hash.h"
#include "export/worker.h"

struct piece {
	const uint8_t *p;
	size_t n;
};

struct readhash {
	struct hash_ctx *h;             /* the worker's while it runs */
	size_t bufsize;
	uint8_t *buf[READHASH_SLOTS];
	int threaded, finished;

	/* Pieces done .. posted-1 are queued, piece k in q[k % READHASH_SLOTS].
	 * Guarded by mu once the worker runs. */
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct piece q[READHASH_SLOTS];
	uint64_t posted, done;
	int stop, quit, err;
};

static void *worker_main(void *arg)
{
	struct readhash *h = arg;

	pthread_mutex_lock(&h->mu);
	for (;;) {
		struct piece pc;
		int r = 0;

		while (h->done == h->posted && !h->stop)
			pthread_cond_wait(&h->cv, &h->mu);
		if (h->done == h->posted)
			break;
		pc = h->q[h->done % READHASH_SLOTS];
		/* After a failure or on quit the queue drains unhashed, so the
		 * reader never waits on a piece that is not coming back. */
		if (h->err == 0 && !h->quit) {
			pthread_mutex_unlock(&h->mu);
			r = hash_update(h->h, pc.p, pc.n);
			pthread_mutex_lock(&h->mu);
		}
		if (r != 0 && h->err == 0)
			h->err = SBX_ECRYPTO;
		h->done++;
		pthread_cond_broadcast(&h->cv);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

/* 1 if the worker runs; 0 leaves h inline. */
static int start_worker(struct readhash *h)
{
	int started;

	if (pthread_mutex_init(&h->mu, NULL) != 0)
		return 0;
	if (pthread_cond_init(&h->cv, NULL) != 0) {
		pthread_mutex_destroy(&h->mu);
		return 0;
	}
	started = worker_start(&h->th, worker_main, h);
	if (!started) {
		pthread_cond_destroy(&h->cv);
		pthread_mutex_destroy(&h->mu);
	}
	return started;
}

int readhash_new(size_t bufsize, int threaded, struct readhash **out)
{
	struct readhash *h = calloc(1, sizeof *h);

	*out = NULL;
	if (h == NULL)
		return SBX_ENOMEM;
	h->bufsize = bufsize;
	h->h = hash_new();
	if (h->h == NULL) {
		free(h);
		return SBX_ENOMEM;
	}
	/* No thread (resources): the same digest, inline. */
	h->threaded = threaded && start_worker(h);
	*out = h;
	return 0;
}

/* Until fewer than READHASH_SLOTS pieces are queued. */
static void wait_room(struct readhash *h)
{
	pthread_mutex_lock(&h->mu);
	while (h->posted - h->done >= READHASH_SLOTS)
		pthread_cond_wait(&h->cv, &h->mu);
	pthread_mutex_unlock(&h->mu);
}

uint8_t *readhash_buf(struct readhash *h)
{
	uint8_t **b;

	if (h->threaded)
		wait_room(h);
	/* Inline, a piece is hashed before push returns: one buffer does. */
	b = &h->buf[h->threaded ? h->posted % READHASH_SLOTS : 0];
	if (*b == NULL)
		*b = malloc(h->bufsize);
	return *b;
}

int readhash_push(struct readhash *h, const uint8_t *p, size_t n)
{
	int r;

	if (!h->threaded) {
		if (h->err == 0 && hash_update(h->h, p, n) != 0)
			h->err = SBX_ECRYPTO;
		return h->err;
	}
	wait_room(h);
	pthread_mutex_lock(&h->mu);
	h->q[h->posted % READHASH_SLOTS] = (struct piece){ p, n };
	h->posted++;
	pthread_cond_broadcast(&h->cv);
	r = h->err;
	pthread_mutex_unlock(&h->mu);
	return r;
}

static void worker_stop(struct readhash *h, int quit)
{
	if (!h->threaded || h->finished)
		return;
	pthread_mutex_lock(&h->mu);
	h->stop = 1;
	h->quit = quit;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->th, NULL);
	h->finished = 1;
}

int readhash_final(struct readhash *h, uint8_t out[static 32])
{
	worker_stop(h, 0);
	if (h->err == 0 && hash_final(h->h, out) != 0)
		h->err = SBX_ECRYPTO;
	return h->err;
}

void readhash_free(struct readhash *h)
{
	if (h == NULL)
		return;
	worker_stop(h, 1);
	if (h->threaded) {
		pthread_cond_destroy(&h->cv);
		pthread_mutex_destroy(&h->mu);
	}
	for (int i = 0; i < READHASH_SLOTS; i++)
		free(h->buf[i]);
	hash_free(h->h);
	free(h);
}

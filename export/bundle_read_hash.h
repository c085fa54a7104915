/* SHA-256 of payload.enc on a worker thread while the reading thread
 * decrypts the very same bytes (export/bundle_read.c): so an opener makes
 * one pass over the ciphertext, and on two cores the hash costs no time on
 * the critical path.  Internal to the bundle module.
 *
 * The two threads share the pieces read-only.  A ring of READHASH_SLOTS
 * pieces lets the reader run at most that far ahead of the hash, and
 * readhash_buf hands out a buffer only once the worker has finished with
 * it: the digest is over exactly the bytes the reader used, never over a
 * second read of the file.
 *
 * Without a thread (asked for, or none could be started) everything
 * happens in readhash_push on the caller's thread; the digest is the same. */
#ifndef SBX_BUNDLE_READ_HASH_H
#define SBX_BUNDLE_READ_HASH_H

#include <stddef.h>
#include <stdint.h>

#define READHASH_SLOTS 4

struct readhash;

/* bufsize: the size of the buffers readhash_buf hands out (allocated when
 * first asked for).  threaded: hash on a worker thread, which starts with
 * every signal blocked.  0 or SBX_ENOMEM. */
int readhash_new(size_t bufsize, int threaded, struct readhash **out);
/* A buffer of bufsize bytes to read the next piece into, one the worker is
 * done with (waits for that).  NULL when out of memory. */
uint8_t *readhash_buf(struct readhash *h);
/* Queues p[0..n) after the pieces before it.  p is the buffer the last
 * readhash_buf returned, or memory that stays unchanged until
 * readhash_final.  0, or SBX_ECRYPTO if hashing (this or an earlier
 * piece) failed. */
int readhash_push(struct readhash *h, const uint8_t *p, size_t n);
/* Waits for the worker: the digest of everything pushed.  0 or SBX_ECRYPTO. */
int readhash_final(struct readhash *h, uint8_t out[static 32]);
/* Stops the worker (without hashing what is still queued) and frees. */
void readhash_free(struct readhash *h);

#endif

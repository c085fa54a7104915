#include "crypto/stream.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "crypto/kdf.h"

#define STREAM_VERSION      1
#define STREAM_NONCE_LEN    12
#define STREAM_PREFIX_LEN   8       /* header bytes before the salt */
#define STREAM_MIN_SHIFT    4
#define STREAM_MAX_SHIFT    20
#define STREAM_KDF_LABEL    "sealbox-stream-v1"

/* Pipelined encryptor: slots of STREAM_PIPE_BATCH chunks (1 MiB at the
 * format's chunk size); one being filled by the caller, one being sealed by
 * the worker, one absorbing jitter between the two. */
#define STREAM_SLOTS        3
#define STREAM_PIPE_BATCH   16

static const uint8_t stream_magic[4] = { 'S', 'B', 'X', 'S' };

static EVP_CIPHER *cipher_gcm, *cipher_chacha;
static pthread_once_t cipher_once = PTHREAD_ONCE_INIT;

static void fetch_ciphers(void)
{
	cipher_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	cipher_chacha = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
}

static const EVP_CIPHER *suite_cipher(int suite)
{
	pthread_once(&cipher_once, fetch_ciphers);
	switch (suite) {
	case STREAM_AES256GCM:        return cipher_gcm;
	case STREAM_CHACHA20POLY1305: return cipher_chacha;
	default:                      return NULL;
	}
}

static int resolve_params(const struct stream_params *p, unsigned *shift,
                          uint64_t *max_chunks)
{
	*shift = STREAM_CHUNK_SHIFT;
	*max_chunks = STREAM_MAX_CHUNKS;
	if (p == NULL)
		return 0;
	if (p->chunk_shift != 0) {
		if (p->chunk_shift < STREAM_MIN_SHIFT || p->chunk_shift > STREAM_MAX_SHIFT)
			return SBX_EINVAL;
		*shift = p->chunk_shift;
	}
	if (p->max_chunks > STREAM_MAX_CHUNKS)
		return SBX_EINVAL;      /* tests may only lower the limit */
	if (p->max_chunks != 0)
		*max_chunks = p->max_chunks;
	return 0;
}

/* nonce = 88-bit big-endian chunk counter | final flag.  The counter is
 * below 2^64, so the top three bytes are always zero. */
static void make_nonce(uint8_t nonce[static STREAM_NONCE_LEN], uint64_t ctr, int final)
{
	memset(nonce, 0, STREAM_NONCE_LEN);
	for (int i = 0; i < 8; i++)
		nonce[10 - i] = (uint8_t)(ctr >> (8 * i));
	nonce[11] = final ? 0x01 : 0x00;
}

/* The per-stream key: the salt makes it unique to this stream, and binding
 * the header's fixed fields means a changed suite, chunk size or version
 * yields a different key rather than a misread stream. */
static int derive_key(const uint8_t cek[static STREAM_KEY_LEN],
                      const uint8_t header[static STREAM_HEADER_LEN],
                      uint8_t out[static STREAM_KEY_LEN])
{
	uint8_t info[sizeof STREAM_KDF_LABEL + STREAM_PREFIX_LEN];

	memcpy(info, STREAM_KDF_LABEL, sizeof STREAM_KDF_LABEL);   /* with its NUL */
	memcpy(info + sizeof STREAM_KDF_LABEL, header, STREAM_PREFIX_LEN);
	return kdf_hkdf_sha256(cek, STREAM_KEY_LEN, header + STREAM_PREFIX_LEN,
	                       STREAM_SALT_LEN, info, sizeof info, out, STREAM_KEY_LEN);
}

static int aead_new(int suite, const uint8_t key[static STREAM_KEY_LEN], int enc,
                    EVP_CIPHER_CTX **out)
{
	const EVP_CIPHER *ciph = suite_cipher(suite);
	EVP_CIPHER_CTX *c = NULL;

	*out = NULL;
	if (ciph == NULL)
		return SBX_ECRYPTO;
	c = EVP_CIPHER_CTX_new();
	if (c == NULL || EVP_CipherInit_ex2(c, ciph, key, NULL, enc, NULL) != 1) {
		EVP_CIPHER_CTX_free(c);
		return SBX_ECRYPTO;
	}
	*out = c;
	return 0;
}

/* out receives len ciphertext bytes and the tag; in == out is allowed. */
static int aead_seal(EVP_CIPHER_CTX *c, uint64_t ctr, int final,
                     const uint8_t *ad, size_t adlen,
                     const uint8_t *in, size_t len, uint8_t *out)
{
	uint8_t nonce[STREAM_NONCE_LEN];
	int n = 0;

	make_nonce(nonce, ctr, final);
	if (EVP_EncryptInit_ex2(c, NULL, NULL, nonce, NULL) != 1)
		return SBX_ECRYPTO;
	if (adlen > 0 && EVP_EncryptUpdate(c, NULL, &n, ad, (int)adlen) != 1)
		return SBX_ECRYPTO;
	if (len > 0 && (EVP_EncryptUpdate(c, out, &n, in, (int)len) != 1 || n != (int)len))
		return SBX_ECRYPTO;
	if (EVP_EncryptFinal_ex(c, out + len, &n) != 1 || n != 0)
		return SBX_ECRYPTO;
	if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, STREAM_TAG_LEN, out + len) != 1)
		return SBX_ECRYPTO;
	return 0;
}

/* in holds ctlen bytes: ciphertext then tag.  Writes ctlen - tag bytes to
 * out only if the tag verifies; otherwise out is wiped and SBX_EVERIFY
 * returned.  OpenSSL compares the tag in constant time. */
static int aead_open(EVP_CIPHER_CTX *c, uint64_t ctr, int final,
                     const uint8_t *ad, size_t adlen,
                     const uint8_t *in, size_t ctlen, uint8_t *out)
{
	uint8_t nonce[STREAM_NONCE_LEN];
	size_t len = ctlen - STREAM_TAG_LEN;
	int n = 0, r = SBX_ECRYPTO;

	make_nonce(nonce, ctr, final);
	if (EVP_DecryptInit_ex2(c, NULL, NULL, nonce, NULL) != 1)
		goto out;
	if (adlen > 0 && EVP_DecryptUpdate(c, NULL, &n, ad, (int)adlen) != 1)
		goto out;
	if (len > 0 && (EVP_DecryptUpdate(c, out, &n, in, (int)len) != 1 || n != (int)len))
		goto out;
	if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, STREAM_TAG_LEN,
	                        (void *)(in + len)) != 1)
		goto out;
	r = SBX_EVERIFY;
	if (EVP_DecryptFinal_ex(c, out + len, &n) != 1 || n != 0)
		goto out;
	r = 0;
out:
	if (r != 0) {
		OPENSSL_cleanse(out, len);
		ERR_clear_error();
	}
	return r;
}

/* ---- encryptor ---------------------------------------------------------- */

/* A slot holds up to `batch` chunks laid out as they will be emitted:
 * chunk j's plaintext at j * (chunk + tag), sealed in place with its tag
 * right behind it, so the sealed slot is one contiguous run of ciphertext.
 * The single-threaded writer uses one slot of one chunk; the pipelined
 * writer hands whole slots of STREAM_PIPE_BATCH chunks to its worker, so
 * the two threads meet once per megabyte rather than once per chunk. */
struct slot {
	uint8_t *buf;
	size_t used;            /* plaintext bytes in the slot */
	uint64_t first_ctr;
	int final;              /* its last chunk is the stream's last */
};

struct stream_enc {
	EVP_CIPHER_CTX *c;              /* used only by whoever seals */
	uint8_t header[STREAM_HEADER_LEN];
	int header_sent;                /* sealer only */
	uint8_t ad[STREAM_MAX_AD];
	size_t adlen;
	size_t chunk, batch, slotcap;
	uint64_t max_chunks, next_ctr;
	stream_emit_fn emit;
	void *arg;
	int err;                        /* sticky, caller's thread */
	int done;
	struct slot slots[STREAM_SLOTS];
	unsigned fill;                  /* slot the caller fills */

	/* Pipeline: slots qhead .. qhead+nq-1 (mod STREAM_SLOTS) are queued for
	 * the worker, in counter order.  Guarded by mu. */
	int pipeline, running;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned qhead, nq;
	int stop, abort;
	int werr;
	struct sbx_err we;
};

static int emit_header(struct stream_enc *s, struct sbx_err *e)
{
	int r;

	if (s->header_sent)
		return 0;
	r = s->emit(s->arg, s->header, STREAM_HEADER_LEN);
	if (r != 0)
		return sbx_fail(e, r, "stream: writing the header failed");
	s->header_sent = 1;
	return 0;
}

static size_t slot_chunks(const struct stream_enc *s, const struct slot *sl)
{
	return sl->used == 0 ? 1 : (sl->used - 1) / s->chunk + 1;
}

/* Seals every chunk of the slot in place and emits them in one call. */
static int seal_slot(struct stream_enc *s, struct slot *sl, struct sbx_err *e)
{
	size_t n = slot_chunks(s, sl), stride = s->chunk + STREAM_TAG_LEN;
	int r = emit_header(s, e);

	for (size_t j = 0; r == 0 && j < n; j++) {
		size_t len = j + 1 < n ? s->chunk : sl->used - j * s->chunk;
		uint8_t *p = sl->buf + j * stride;

		r = aead_seal(s->c, sl->first_ctr + j, sl->final && j + 1 == n,
		              s->ad, s->adlen, p, len, p);
		if (r != 0)
			return sbx_fail_ssl(e, r, "stream: sealing chunk %llu failed",
			                    (unsigned long long)(sl->first_ctr + j));
	}
	if (r != 0)
		return r;
	r = s->emit(s->arg, sl->buf, sl->used + n * STREAM_TAG_LEN);
	if (r != 0)
		return sbx_fail(e, r, "stream: writing chunks %llu..%llu failed",
		                (unsigned long long)sl->first_ctr,
		                (unsigned long long)(sl->first_ctr + n - 1));
	return 0;
}

static void *worker_main(void *p)
{
	struct stream_enc *s = p;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		struct slot *sl;
		struct sbx_err le = { 0 };
		int r = 0;

		while (s->nq == 0 && !s->stop)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->nq == 0 || s->abort)
			break;
		sl = &s->slots[s->qhead];
		/* After a failure the queue is drained without sealing, so the
		 * caller never waits on a slot that will not come back. */
		if (s->werr == 0) {
			pthread_mutex_unlock(&s->mu);
			r = seal_slot(s, sl, &le);
			pthread_mutex_lock(&s->mu);
		}
		if (r != 0 && s->werr == 0) {
			s->werr = r;
			s->we = le;
		}
		sl->used = 0;
		s->qhead = (s->qhead + 1) % STREAM_SLOTS;
		s->nq--;
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void worker_stop(struct stream_enc *s, int abort)
{
	if (!s->running)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = 1;
	s->abort = abort;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->th, NULL);
	s->running = 0;
}

/* The worker's first error, copied to the caller's thread. */
static int worker_error(struct stream_enc *s, struct sbx_err *e)
{
	int r;

	pthread_mutex_lock(&s->mu);
	r = s->werr;
	if (r != 0)
		sbx_fail(e, r, "%s", s->we.msg);
	pthread_mutex_unlock(&s->mu);
	return r;
}

/* Reserves n consecutive chunk counters. */
static int take_counters(struct stream_enc *s, size_t n, uint64_t *first, struct sbx_err *e)
{
	if (s->next_ctr > s->max_chunks || n > s->max_chunks - s->next_ctr)
		return sbx_fail(e, SBX_EINVAL, "stream: more than %llu chunks",
		                (unsigned long long)s->max_chunks);
	*first = s->next_ctr;
	s->next_ctr += n;
	return 0;
}

/* Hands the filled slot on: sealed here, or queued for the worker, after
 * which the caller gets the next free slot. */
static int submit(struct stream_enc *s, int final, struct sbx_err *e)
{
	struct slot *sl = &s->slots[s->fill];
	int r;

	r = take_counters(s, slot_chunks(s, sl), &sl->first_ctr, e);
	if (r != 0)
		return r;
	sl->final = final;
	if (!s->pipeline) {
		r = seal_slot(s, sl, e);
		sl->used = 0;
		return r;
	}
	pthread_mutex_lock(&s->mu);
	s->nq++;
	pthread_cond_broadcast(&s->cv);
	s->fill = (s->fill + 1) % STREAM_SLOTS;
	while (s->nq == STREAM_SLOTS && s->werr == 0)
		pthread_cond_wait(&s->cv, &s->mu);
	r = s->werr;
	if (r != 0)
		sbx_fail(e, r, "%s", s->we.msg);
	pthread_mutex_unlock(&s->mu);
	return r;
}

int stream_enc_new(int suite, const uint8_t key[static STREAM_KEY_LEN],
                   const uint8_t *salt, const uint8_t *ad, size_t adlen,
                   const struct stream_params *params,
                   stream_emit_fn emit, void *arg,
                   struct stream_enc **out, struct sbx_err *e)
{
	struct stream_enc *s = NULL;
	uint8_t skey[STREAM_KEY_LEN];
	unsigned shift;
	int nslots, r = SBX_EINVAL;

	*out = NULL;
	if (emit == NULL || adlen > STREAM_MAX_AD || (adlen > 0 && ad == NULL) ||
	    (suite != STREAM_AES256GCM && suite != STREAM_CHACHA20POLY1305)) {
		r = sbx_fail(e, SBX_EINVAL, "stream: bad suite, context or callback");
		goto out;
	}
	s = calloc(1, sizeof *s);
	if (s == NULL) {
		r = sbx_fail(e, SBX_ENOMEM, "stream: out of memory");
		goto out;
	}
	r = resolve_params(params, &shift, &s->max_chunks);
	if (r != 0) {
		sbx_fail(e, r, "stream: chunk size 2^%u out of range", params->chunk_shift);
		goto out;
	}
	s->chunk = (size_t)1 << shift;
	s->pipeline = params != NULL && params->pipeline;
	s->batch = s->pipeline ? STREAM_PIPE_BATCH : 1;
	s->slotcap = s->batch * (s->chunk + STREAM_TAG_LEN);
	s->emit = emit;
	s->arg = arg;
	if (adlen > 0)
		memcpy(s->ad, ad, adlen);
	s->adlen = adlen;

	memcpy(s->header, stream_magic, sizeof stream_magic);
	s->header[4] = STREAM_VERSION;
	s->header[5] = (uint8_t)suite;
	s->header[6] = (uint8_t)shift;
	s->header[7] = 0;
	if (salt != NULL) {
		memcpy(s->header + STREAM_PREFIX_LEN, salt, STREAM_SALT_LEN);
	} else if (RAND_bytes(s->header + STREAM_PREFIX_LEN, STREAM_SALT_LEN) != 1) {
		r = sbx_fail_ssl(e, SBX_ECRYPTO, "stream: no randomness for the salt");
		goto out;
	}
	r = derive_key(key, s->header, skey);
	if (r != 0) {
		sbx_fail(e, r, "stream: key derivation failed");
		goto out;
	}
	r = aead_new(suite, skey, 1, &s->c);
	if (r != 0) {
		sbx_fail_ssl(e, r, "stream: cipher suite %d unavailable", suite);
		goto out;
	}
	nslots = s->pipeline ? STREAM_SLOTS : 1;
	for (int i = 0; i < nslots; i++) {
		s->slots[i].buf = malloc(s->slotcap);
		if (s->slots[i].buf == NULL) {
			r = sbx_fail(e, SBX_ENOMEM, "stream: out of memory");
			goto out;
		}
	}
	if (s->pipeline) {
		if (pthread_mutex_init(&s->mu, NULL) != 0) {
			s->pipeline = 0;    /* nothing to destroy */
			r = sbx_fail(e, SBX_ENOMEM, "stream: cannot create a mutex");
			goto out;
		}
		if (pthread_cond_init(&s->cv, NULL) != 0) {
			pthread_mutex_destroy(&s->mu);
			s->pipeline = 0;
			r = sbx_fail(e, SBX_ENOMEM, "stream: cannot create a condition variable");
			goto out;
		}
		if (pthread_create(&s->th, NULL, worker_main, s) != 0) {
			r = sbx_fail(e, SBX_ENOMEM, "stream: cannot start the worker thread");
			goto out;
		}
		s->running = 1;
	}
	*out = s;
	s = NULL;   /* transferred */
	r = 0;
out:
	OPENSSL_cleanse(skey, sizeof skey);
	stream_enc_free(s);
	return r;
}

int stream_enc_push(struct stream_enc *s, const void *buf, size_t len,
                    struct sbx_err *e)
{
	const uint8_t *in = buf;
	size_t full = 0;
	int r = 0;

	if (s == NULL || (len > 0 && buf == NULL))
		return sbx_fail(e, SBX_EINVAL, "stream: bad push");
	if (s->err != 0)
		return sbx_fail(e, s->err, "stream: already failed");
	if (s->done)
		return sbx_fail(e, SBX_EINVAL, "stream: push after final");
	if (s->pipeline && (r = worker_error(s, e)) != 0)
		goto out;
	full = s->batch * s->chunk;
	while (len > 0) {
		struct slot *sl = &s->slots[s->fill];
		size_t off, n;

		/* A full slot is sealed only once more data shows that its last
		 * chunk is not the stream's last. */
		if (sl->used == full) {
			r = submit(s, 0, e);
			if (r != 0)
				goto out;
			sl = &s->slots[s->fill];
		}
		if (!s->pipeline && sl->used == 0 && len > s->chunk) {
			/* Whole chunks straight from the caller's buffer, no copy. */
			uint64_t ctr = 0;

			r = take_counters(s, 1, &ctr, e);
			if (r == 0)
				r = emit_header(s, e);
			if (r != 0)
				goto out;
			r = aead_seal(s->c, ctr, 0, s->ad, s->adlen, in, s->chunk, sl->buf);
			if (r != 0) {
				sbx_fail_ssl(e, r, "stream: sealing chunk %llu failed",
				             (unsigned long long)ctr);
				goto out;
			}
			r = s->emit(s->arg, sl->buf, s->chunk + STREAM_TAG_LEN);
			if (r != 0) {
				sbx_fail(e, r, "stream: writing chunk %llu failed",
				         (unsigned long long)ctr);
				goto out;
			}
			in += s->chunk;
			len -= s->chunk;
			continue;
		}
		/* Copy up to the end of the current chunk inside the slot. */
		off = sl->used % s->chunk;
		n = s->chunk - off;
		if (n > len)
			n = len;
		memcpy(sl->buf + (sl->used / s->chunk) * (s->chunk + STREAM_TAG_LEN) + off, in, n);
		sl->used += n;
		in += n;
		len -= n;
	}
out:
	if (r != 0)
		s->err = r;
	return r;
}

int stream_enc_final(struct stream_enc *s, struct sbx_err *e)
{
	int r;

	if (s == NULL)
		return sbx_fail(e, SBX_EINVAL, "stream: bad final");
	if (s->err != 0)
		return sbx_fail(e, s->err, "stream: already failed");
	if (s->done)
		return sbx_fail(e, SBX_EINVAL, "stream: final called twice");
	s->done = 1;
	/* The slot holds 1..batch*chunk bytes, or 0 when the plaintext was empty. */
	r = submit(s, 1, e);
	if (s->pipeline) {
		worker_stop(s, r != 0);
		if (r == 0)
			r = worker_error(s, e);
	}
	if (r != 0)
		s->err = r;
	return r;
}

/* Returns after the worker has stopped: no emit runs once this returns. */
void stream_enc_free(struct stream_enc *s)
{
	if (s == NULL)
		return;
	worker_stop(s, 1);
	if (s->pipeline) {
		pthread_cond_destroy(&s->cv);
		pthread_mutex_destroy(&s->mu);
	}
	for (int i = 0; i < STREAM_SLOTS; i++)
		if (s->slots[i].buf != NULL)
			OPENSSL_clear_free(s->slots[i].buf, s->slotcap);
	EVP_CIPHER_CTX_free(s->c);
	OPENSSL_cleanse(s, sizeof *s);
	free(s);
}

/* ---- decryptor ---------------------------------------------------------- */

struct stream_dec {
	EVP_CIPHER_CTX *c;
	uint8_t cek[STREAM_KEY_LEN];    /* until the header arrives, then wiped */
	uint8_t header[STREAM_HEADER_LEN];
	size_t hdrlen;
	uint8_t ad[STREAM_MAX_AD];
	size_t adlen;
	unsigned shift;
	size_t chunk, ctchunk;
	uint64_t max_chunks, ctr;
	uint8_t *ct;                    /* pending ciphertext, up to ctchunk */
	size_t ctlen;
	uint8_t *pt;                    /* one chunk of plaintext */
	stream_emit_fn emit;
	void *arg;
	int err, done;
};

int stream_dec_new(const uint8_t key[static STREAM_KEY_LEN],
                   const uint8_t *ad, size_t adlen,
                   const struct stream_params *params,
                   stream_emit_fn emit, void *arg,
                   struct stream_dec **out, struct sbx_err *e)
{
	struct stream_dec *d = NULL;
	int r = SBX_EINVAL;

	*out = NULL;
	if (emit == NULL || adlen > STREAM_MAX_AD || (adlen > 0 && ad == NULL)) {
		r = sbx_fail(e, SBX_EINVAL, "stream: bad context or callback");
		goto out;
	}
	d = calloc(1, sizeof *d);
	if (d == NULL) {
		r = sbx_fail(e, SBX_ENOMEM, "stream: out of memory");
		goto out;
	}
	r = resolve_params(params, &d->shift, &d->max_chunks);
	if (r != 0) {
		sbx_fail(e, r, "stream: chunk size 2^%u out of range", params->chunk_shift);
		goto out;
	}
	d->chunk = (size_t)1 << d->shift;
	d->ctchunk = d->chunk + STREAM_TAG_LEN;
	d->ct = malloc(d->ctchunk);
	d->pt = malloc(d->chunk);
	if (d->ct == NULL || d->pt == NULL) {
		r = sbx_fail(e, SBX_ENOMEM, "stream: out of memory");
		goto out;
	}
	memcpy(d->cek, key, STREAM_KEY_LEN);
	if (adlen > 0)
		memcpy(d->ad, ad, adlen);
	d->adlen = adlen;
	d->emit = emit;
	d->arg = arg;
	*out = d;
	d = NULL;   /* transferred */
	r = 0;
out:
	stream_dec_free(d);
	return r;
}

static int parse_header(struct stream_dec *d, struct sbx_err *e)
{
	uint8_t skey[STREAM_KEY_LEN];
	const uint8_t *h = d->header;
	int r = SBX_EFORMAT;

	if (memcmp(h, stream_magic, sizeof stream_magic) != 0) {
		sbx_fail(e, r, "stream: header magic is not SBXS");
		goto out;
	}
	if (h[4] != STREAM_VERSION) {
		sbx_fail(e, r, "stream: unsupported version %u", h[4]);
		goto out;
	}
	if (h[5] != STREAM_AES256GCM && h[5] != STREAM_CHACHA20POLY1305) {
		sbx_fail(e, r, "stream: unknown suite %u", h[5]);
		goto out;
	}
	if (h[6] != d->shift) {
		sbx_fail(e, r, "stream: chunk size 2^%u, expected 2^%u", h[6], d->shift);
		goto out;
	}
	if (h[7] != 0) {
		sbx_fail(e, r, "stream: reserved header byte is %u, not 0", h[7]);
		goto out;
	}
	r = derive_key(d->cek, h, skey);
	if (r != 0) {
		sbx_fail(e, r, "stream: key derivation failed");
		goto out;
	}
	r = aead_new(h[5], skey, 0, &d->c);
	if (r != 0)
		sbx_fail_ssl(e, r, "stream: cipher suite %u unavailable", h[5]);
out:
	OPENSSL_cleanse(d->cek, sizeof d->cek);
	OPENSSL_cleanse(skey, sizeof skey);
	return r;
}

/* Opens chunk d->ctr from `in` (ctlen bytes, tag included) and emits it.
 * On failure, a second try with the other final flag turns "does not
 * authenticate" into a precise reason; its output is never emitted. */
static int open_chunk(struct stream_dec *d, const uint8_t *in, size_t ctlen,
                      int final, struct sbx_err *e)
{
	unsigned long long i = (unsigned long long)d->ctr;
	size_t len;
	int r;

	if (d->ctr >= d->max_chunks)
		return sbx_fail(e, SBX_EFORMAT, "stream: more than %llu chunks",
		                (unsigned long long)d->max_chunks);
	if (ctlen < STREAM_TAG_LEN)
		return sbx_fail(e, SBX_EVERIFY, "stream: truncated inside chunk %llu", i);
	len = ctlen - STREAM_TAG_LEN;
	r = aead_open(d->c, d->ctr, final, d->ad, d->adlen, in, ctlen, d->pt);
	if (r == SBX_EVERIFY) {
		int other = ctlen == d->ctchunk &&
		            aead_open(d->c, d->ctr, !final, d->ad, d->adlen, in, ctlen, d->pt) == 0;

		OPENSSL_cleanse(d->pt, len);
		if (other && !final)
			return sbx_fail(e, r, "stream: data after the final chunk (%llu)", i);
		if (other && final)
			return sbx_fail(e, r, "stream: truncated, chunk %llu is not the final chunk", i);
		if (final && ctlen < d->ctchunk)
			return sbx_fail(e, r, "stream: chunk %llu does not authenticate "
			                "(truncated, altered, wrong key or context)", i);
		return sbx_fail(e, r, "stream: chunk %llu does not authenticate "
		                "(altered, reordered, wrong key or context)", i);
	}
	if (r != 0)
		return sbx_fail_ssl(e, r, "stream: opening chunk %llu failed", i);
	if (final && len == 0 && d->ctr > 0)
		return sbx_fail(e, SBX_EFORMAT, "stream: empty final chunk %llu", i);
	d->ctr++;
	if (len > 0) {
		/* Authenticated plaintext, about to be written out by the caller:
		 * the next chunk overwrites it and free wipes the buffer. */
		r = d->emit(d->arg, d->pt, len);
		if (r != 0)
			return sbx_fail(e, r, "stream: writing plaintext of chunk %llu failed", i);
	}
	return 0;
}

int stream_dec_push(struct stream_dec *d, const void *buf, size_t len,
                    struct sbx_err *e)
{
	const uint8_t *in = buf;
	int r = 0;

	if (d == NULL || (len > 0 && buf == NULL))
		return sbx_fail(e, SBX_EINVAL, "stream: bad push");
	if (d->err != 0)
		return sbx_fail(e, d->err, "stream: already failed");
	if (d->done)
		return sbx_fail(e, SBX_EINVAL, "stream: push after final");
	if (d->hdrlen < STREAM_HEADER_LEN && len > 0) {
		size_t n = STREAM_HEADER_LEN - d->hdrlen;

		if (n > len)
			n = len;
		memcpy(d->header + d->hdrlen, in, n);
		d->hdrlen += n;
		in += n;
		len -= n;
		if (d->hdrlen == STREAM_HEADER_LEN && (r = parse_header(d, e)) != 0)
			goto out;
	}
	while (len > 0) {
		size_t n;

		/* A full chunk followed by more input cannot be the last. */
		if (d->ctlen == d->ctchunk) {
			r = open_chunk(d, d->ct, d->ctlen, 0, e);
			d->ctlen = 0;
			if (r != 0)
				goto out;
		}
		if (d->ctlen == 0 && len > d->ctchunk) {
			r = open_chunk(d, in, d->ctchunk, 0, e);
			if (r != 0)
				goto out;
			in += d->ctchunk;
			len -= d->ctchunk;
			continue;
		}
		n = d->ctchunk - d->ctlen;
		if (n > len)
			n = len;
		memcpy(d->ct + d->ctlen, in, n);
		d->ctlen += n;
		in += n;
		len -= n;
	}
out:
	if (r != 0)
		d->err = r;
	return r;
}

int stream_dec_final(struct stream_dec *d, struct sbx_err *e)
{
	int r;

	if (d == NULL)
		return sbx_fail(e, SBX_EINVAL, "stream: bad final");
	if (d->err != 0)
		return sbx_fail(e, d->err, "stream: already failed");
	if (d->done)
		return sbx_fail(e, SBX_EINVAL, "stream: final called twice");
	d->done = 1;
	if (d->hdrlen < STREAM_HEADER_LEN)
		r = sbx_fail(e, SBX_EVERIFY, "stream: truncated inside the header (%zu bytes)",
		             d->hdrlen);
	else if (d->ctlen == 0)
		r = sbx_fail(e, SBX_EVERIFY, "stream: truncated, no final chunk after chunk %llu",
		             (unsigned long long)d->ctr);
	else
		r = open_chunk(d, d->ct, d->ctlen, 1, e);
	d->ctlen = 0;
	if (r != 0)
		d->err = r;
	return r;
}

void stream_dec_free(struct stream_dec *d)
{
	if (d == NULL)
		return;
	if (d->ct != NULL)
		OPENSSL_clear_free(d->ct, d->ctchunk);
	if (d->pt != NULL)
		OPENSSL_clear_free(d->pt, d->chunk);
	EVP_CIPHER_CTX_free(d->c);
	OPENSSL_cleanse(d, sizeof *d);
	free(d);
}

/* ---- sizes -------------------------------------------------------------- */

int stream_ciphertext_size(uint64_t plain_len, const struct stream_params *params,
                           uint64_t *out)
{
	unsigned shift;
	uint64_t maxc, n, overhead;

	*out = 0;
	if (resolve_params(params, &shift, &maxc) != 0)
		return SBX_EINVAL;
	n = plain_len == 0 ? 1 : ((plain_len - 1) >> shift) + 1;
	if (n > maxc)
		return SBX_EINVAL;
	overhead = STREAM_HEADER_LEN + n * STREAM_TAG_LEN;   /* n < 2^60: no overflow */
	if (plain_len > UINT64_MAX - overhead)
		return SBX_EINVAL;
	*out = plain_len + overhead;
	return 0;
}

int stream_plaintext_size(uint64_t ct_len, const struct stream_params *params,
                          uint64_t *out)
{
	unsigned shift;
	uint64_t maxc, body, ctc, n, last;

	*out = 0;
	if (resolve_params(params, &shift, &maxc) != 0)
		return SBX_EINVAL;
	if (ct_len < STREAM_HEADER_LEN + STREAM_TAG_LEN)
		return SBX_EFORMAT;
	body = ct_len - STREAM_HEADER_LEN;
	ctc = ((uint64_t)1 << shift) + STREAM_TAG_LEN;
	n = (body - 1) / ctc + 1;
	last = body - (n - 1) * ctc;
	if (n > maxc || last < STREAM_TAG_LEN || (last == STREAM_TAG_LEN && n > 1))
		return SBX_EFORMAT;
	*out = body - n * STREAM_TAG_LEN;
	return 0;
}

/* Chunked AEAD stream for bundle payloads (format in docs/CRYPTO.md,
 * "Payload stream").  In the spirit of age's STREAM:
 *
 *   header  = "SBXS" | version 1 | suite | chunk_shift | 0x00 | salt[32]
 *   key     = HKDF-SHA256(ikm = content key, salt = salt,
 *                         info = "sealbox-stream-v1" 0x00 | header[0..8])
 *   chunk i = AEAD(key, nonce = i as 11-byte big-endian | final flag,
 *                  ad = caller context, plaintext[i])
 *
 * Every chunk but the last holds exactly 2^chunk_shift plaintext bytes; the
 * last has the final flag 0x01 and holds 1..2^chunk_shift bytes (0 only when
 * the whole plaintext is empty).  The decryptor therefore detects
 * truncation, reordering, duplication, appended data and a final flag on an
 * earlier chunk.
 *
 * Both directions stream in constant memory.  The decryptor hands plaintext
 * to its callback chunk by chunk as each chunk authenticates, BEFORE the
 * stream as a whole is known to be complete: a caller must write it only to
 * a staging area and commit after stream_dec_final() returned 0.
 *
 * Errors: SBX_EINVAL (usage), SBX_EFORMAT (header not version 1, unknown
 * suite, chunk size other than the one expected, stream longer than the
 * limit), SBX_EVERIFY (a chunk fails to authenticate, truncation, data after
 * the final chunk), SBX_ECRYPTO/SBX_ENOMEM, or the callback's own code.
 * Errors are sticky: every later call fails with the same code. */
#ifndef SBX_STREAM_H
#define SBX_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/err.h"

#define STREAM_KEY_LEN      32
#define STREAM_SALT_LEN     32
#define STREAM_HEADER_LEN   40
#define STREAM_TAG_LEN      16
#define STREAM_CHUNK_SHIFT  16                  /* 64 KiB: fixed by format v1 */
#define STREAM_MAX_CHUNKS   ((uint64_t)1 << 32) /* 256 TiB at 64 KiB chunks */
#define STREAM_MAX_AD       1024

enum stream_suite {
	STREAM_AES256GCM         = 1,
	STREAM_CHACHA20POLY1305  = 2,
};

/* Receives, in order and never concurrently with itself: from the
 * encryptor the header, then ciphertext (whole chunks, one per call, or up
 * to 16 per call when pipelined); from the decryptor the plaintext of each
 * chunk once it authenticated.  Return 0, or a negative SBX_E* code that
 * aborts the stream and is returned to the caller. */
typedef int (*stream_emit_fn)(void *arg, const uint8_t *buf, size_t len);

/* NULL: the format's values, single-threaded.  Production code sets only
 * `pipeline`; chunk_shift and max_chunks exist for tests. */
struct stream_params {
	unsigned chunk_shift;   /* 0: STREAM_CHUNK_SHIFT; tests may use 4..20 */
	uint64_t max_chunks;    /* 0: STREAM_MAX_CHUNKS; tests lower it (never raise) */
	int pipeline;           /* encryptor: seal and emit on a worker thread (see below) */
};

struct stream_enc;
struct stream_dec;

/* key: the 32-byte content key (not kept: only the derived stream key,
 * inside OpenSSL's cipher context, which wipes it when freed).  salt: NULL
 * for 32 fresh random bytes; fixed only for test vectors.  A content key may
 * encrypt several streams as long as their salts differ.
 *
 * With params->pipeline set, a worker thread seals slots of 16 chunks and
 * calls `emit` while the caller goes on pushing (and hashing or reading) the
 * next slot: `emit` then runs on that worker thread, so it must not touch
 * state the pushing thread uses without a lock.  Its errors surface from the
 * next stream_enc_push() or from stream_enc_final(), which returns only
 * after the last emit.  The ciphertext is the same bytes either way. */
int stream_enc_new(int suite, const uint8_t key[static STREAM_KEY_LEN],
                   const uint8_t *salt, const uint8_t *ad, size_t adlen,
                   const struct stream_params *params,
                   stream_emit_fn emit, void *arg,
                   struct stream_enc **out, struct sbx_err *e);
int stream_enc_push(struct stream_enc *s, const void *buf, size_t len,
                    struct sbx_err *e);
/* Seals the final chunk; emit has seen the whole stream when this returns 0. */
int stream_enc_final(struct stream_enc *s, struct sbx_err *e);
void stream_enc_free(struct stream_enc *s);

/* The suite is read from the header (both are accepted); the chunk size
 * must equal params' (format: 64 KiB). */
int stream_dec_new(const uint8_t key[static STREAM_KEY_LEN],
                   const uint8_t *ad, size_t adlen,
                   const struct stream_params *params,
                   stream_emit_fn emit, void *arg,
                   struct stream_dec **out, struct sbx_err *e);
/* Ciphertext in pieces of any size. */
int stream_dec_push(struct stream_dec *d, const void *buf, size_t len,
                    struct sbx_err *e);
/* End of input: 0 only if the last chunk carried the final flag and
 * authenticated.  Only then is the emitted plaintext complete and genuine. */
int stream_dec_final(struct stream_dec *d, struct sbx_err *e);
void stream_dec_free(struct stream_dec *d);

/* Exact sizes, for archive headers and for checking a payload's length
 * before decrypting it.  stream_plaintext_size fails with SBX_EFORMAT if no
 * stream has that ciphertext length. */
int stream_ciphertext_size(uint64_t plain_len, const struct stream_params *params,
                           uint64_t *out);
int stream_plaintext_size(uint64_t ct_len, const struct stream_params *params,
                          uint64_t *out);

#endif

/* SHA-256 through OpenSSL EVP, with the algorithm fetched once per process
 * (an implicit fetch per call halves throughput on small records). */
#ifndef SBX_HASH_H
#define SBX_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_LEN 32

struct hash_ctx;

int hash_sha256(const void *data, size_t len, uint8_t out[static HASH_LEN]);
/* SHA-256 over the concatenation of two buffers (prefix-framed hashing). */
int hash_sha256_2(const void *a, size_t alen, const void *b, size_t blen,
                  uint8_t out[static HASH_LEN]);

struct hash_ctx *hash_new(void);
int hash_update(struct hash_ctx *h, const void *data, size_t len);
/* Writes the digest and resets the context for reuse. */
int hash_final(struct hash_ctx *h, uint8_t out[static HASH_LEN]);
void hash_free(struct hash_ctx *h);

/* Lower-case hex; out must hold 2*len+1 bytes. */
void hash_hex(const uint8_t *b, size_t len, char *out);
/* Exact-length hex decode: 0, or SBX_EFORMAT if not exactly 2*len hex digits. */
int hash_unhex(const char *hex, uint8_t *out, size_t len);

#endif

/* HKDF-SHA256 (RFC 5869) through OpenSSL's EVP_KDF, the algorithm fetched
 * once per process.  Used by the stream (per-stream key) and key wrap (KEK)
 * constructions; docs/CRYPTO.md gives the exact inputs of each. */
#ifndef SBX_KDF_H
#define SBX_KDF_H

#include <stddef.h>
#include <stdint.h>

/* OpenSSL 3.0 caps the HKDF info at 1024 bytes; callers stay below this. */
#define KDF_MAX_INFO 1024

/* Extract-then-expand.  salt may be NULL with saltlen 0 (RFC 5869 then uses
 * HashLen zero bytes); outlen at most 255*32.  Returns 0, SBX_EINVAL or
 * SBX_ECRYPTO; on failure `out` is zeroed. */
int kdf_hkdf_sha256(const uint8_t *ikm, size_t ikmlen,
                    const uint8_t *salt, size_t saltlen,
                    const uint8_t *info, size_t infolen,
                    uint8_t *out, size_t outlen);

#endif

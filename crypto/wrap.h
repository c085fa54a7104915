/* Key transport of a bundle's 32-byte content key (CEK) to one recipient
 * (format in docs/CRYPTO.md, "Key wrap").
 *
 *   ECDH P-256 / P-384: a fresh ephemeral key on the recipient's curve;
 *     KEK = HKDF-SHA256(ikm  = shared X coordinate,
 *                       salt = ephemeral point | recipient point (uncompressed),
 *                       info = "sealbox-wrap-v1" 0x00 | alg | context)
 *     wrapped = AES-256-GCM(KEK, nonce = 12 zero bytes, ad = empty, CEK)
 *     (the KEK is used exactly once, so a fixed nonce never repeats).
 *   RSA >= 3072: RSA-OAEP, SHA-256, MGF1-SHA-256,
 *     label = "sealbox-wrap-v1" 0x00 | alg | context.
 *
 *   blob = "SBXW" | u8 version 1 | u8 alg
 *          | ECDH: bytes32 ephemeral point (65 or 97) | bytes32 wrapped (48)
 *          | RSA:  bytes32 OAEP ciphertext (modulus size)
 *
 * `context` binds the wrap to its use (e.g. bundle id and recipient
 * fingerprint): unwrapping under any other context fails.  RSA below 3072
 * bits, other curves, RSA-PSS keys and PKCS#1 v1.5 are never used.
 *
 * Unwrap errors: SBX_EFORMAT (blob malformed: length, magic, version,
 * algorithm, a point not on the curve), SBX_EVERIFY (wrong key, wrong
 * context, altered blob, blob for another key type), SBX_EPOLICY (key type or
 * size not allowed), SBX_EINVAL (usage), SBX_ECRYPTO, or the ECDH callback's
 * code.  On any failure `cek` is left untouched: nothing partial is written. */
#ifndef SBX_WRAP_H
#define SBX_WRAP_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

#include "crypto/err.h"

#define WRAP_CEK_LEN        32
#define WRAP_MAX_CONTEXT    512
#define WRAP_MIN_RSA_BITS   3072
#define WRAP_MAX_RSA_BITS   16384
#define WRAP_MAX_BLOB       (6 + 4 + WRAP_MAX_RSA_BITS / 8)
#define WRAP_MAX_SHARED     48      /* P-384 X coordinate */

enum wrap_alg {
	WRAP_ECDH_P256 = 1,
	WRAP_ECDH_P384 = 2,
	WRAP_RSA_OAEP  = 3,
};

/* Raw ECDH with the recipient's private key held elsewhere (the box's TPM:
 * TPM2_ECDH_ZGen).  peer_point: the ephemeral public point, uncompressed
 * (0x04 | X | Y), already checked to lie on the curve.  shared: room for
 * *shared_len bytes (the field size); write the shared point's X coordinate
 * and set *shared_len (shorter values are left-padded with zeros).  Return
 * 0 or a negative SBX_E* code. */
typedef int (*wrap_ecdh_fn)(void *arg, const uint8_t *peer_point, size_t len,
                            uint8_t *shared, size_t *shared_len);

/* The algorithm a recipient key would use: 0, or SBX_EPOLICY (with the
 * reason in `e`) if the key is not one sealbox wraps to. */
int wrap_key_alg(EVP_PKEY *key, int *alg, struct sbx_err *e);

/* Wraps `cek` to `recipient` (public key; a private key works too).  *blob
 * is malloc'd; the caller frees it. */
int wrap_cek(EVP_PKEY *recipient, const uint8_t cek[static WRAP_CEK_LEN],
             const uint8_t *context, size_t ctxlen,
             uint8_t **blob, size_t *bloblen, struct sbx_err *e);
/* Same with a caller-given ephemeral EC key on the recipient's curve: only
 * for reproducible test vectors.  A reused ephemeral key reuses the KEK. */
int wrap_cek_ephemeral(EVP_PKEY *recipient, EVP_PKEY *ephemeral,
                       const uint8_t cek[static WRAP_CEK_LEN],
                       const uint8_t *context, size_t ctxlen,
                       uint8_t **blob, size_t *bloblen, struct sbx_err *e);

/* Unwraps with a software private key (EC or RSA). */
int wrap_unwrap(const uint8_t *blob, size_t len, EVP_PKEY *priv,
                const uint8_t *context, size_t ctxlen,
                uint8_t cek[static WRAP_CEK_LEN], struct sbx_err *e);
/* Unwraps an ECDH blob whose private key is behind `ecdh`; `recipient` is
 * the matching public key (it enters the KDF salt). */
int wrap_unwrap_ecdh(const uint8_t *blob, size_t len, EVP_PKEY *recipient,
                     wrap_ecdh_fn ecdh, void *arg,
                     const uint8_t *context, size_t ctxlen,
                     uint8_t cek[static WRAP_CEK_LEN], struct sbx_err *e);

/* The blob's structure, pointing into it (no crypto, no key needed). */
struct wrap_blob {
	int alg;
	const uint8_t *epk;     /* ECDH: ephemeral point; RSA: NULL */
	size_t epklen;
	const uint8_t *ct;      /* ECDH: wrapped CEK and tag; RSA: OAEP ciphertext */
	size_t ctlen;
};
/* 0, or SBX_EFORMAT with the reason in `e`.  Exact: rejects trailing bytes. */
int wrap_parse(const uint8_t *blob, size_t len, struct wrap_blob *out,
               struct sbx_err *e);

#endif

/* Namespaced signatures.  Every signed object is signed as
 *     SHA-256( namespace || 0x00 || message )
 * with ECDSA P-256 (DER-encoded), so a signature made for one purpose
 * (a tree head, a bundle manifest, a release record) can never be replayed
 * as another.  Stock openssl checks one with
 *     printf 'NAMESPACE\0' | cat - MESSAGE > signed.bin
 *     openssl dgst -sha256 -verify key.pem -signature sig.der signed.bin */
#ifndef SBX_SIG_H
#define SBX_SIG_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

#define SIG_NS_STH      "sealbox-sth-v1"
#define SIG_NS_BUNDLE   "sealbox-bundle-v1"
#define SIG_NS_RELEASE  "sealbox-release-v1"
#define SIG_MAX_DER     80

/* The digest the TPM signs. */
int sig_digest(const char *ns, const uint8_t *msg, size_t len, uint8_t out[static 32]);

/* 0 if `sig` is a valid DER ECDSA signature by `pub` over the namespaced
 * message, SBX_EVERIFY otherwise. */
int sig_verify(EVP_PKEY *pub, const char *ns, const uint8_t *msg, size_t len,
               const uint8_t *sig, size_t siglen);

/* Parses a DER SubjectPublicKeyInfo; exact length, EC P-256 only. */
int sig_pubkey_from_spki(const uint8_t *der, size_t len, EVP_PKEY **out);

/* Constant-time equality for hashes and other secrets-adjacent values. */
int sig_equal(const void *a, const void *b, size_t n);

#endif

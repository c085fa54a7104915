/* Fingerprints that name a recipient in release records and wrap contexts.
 * Stock tools give the same bytes:
 *     openssl x509 -in cert.pem -outform DER | sha256sum          (certificate)
 *     openssl pkey -pubin -in pub.pem -outform DER | sha256sum    (public key) */
#ifndef SBX_X509FP_H
#define SBX_X509FP_H

#include <stdint.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#define X509FP_LEN 32

/* SHA-256 of the certificate's DER encoding. */
int x509fp_cert(X509 *cert, uint8_t out[static X509FP_LEN]);
/* SHA-256 of the key's DER SubjectPublicKeyInfo. */
int x509fp_spki(EVP_PKEY *key, uint8_t out[static X509FP_LEN]);

#endif

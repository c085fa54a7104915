#include "crypto/x509fp.h"

#include <string.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "crypto/err.h"
#include "crypto/hash.h"

int x509fp_cert(X509 *cert, uint8_t out[static X509FP_LEN])
{
	unsigned char *der = NULL;
	int len, r = SBX_EINVAL;

	memset(out, 0, X509FP_LEN);
	if (cert == NULL)
		return SBX_EINVAL;
	len = i2d_X509(cert, &der);
	if (len <= 0) {
		r = SBX_ECRYPTO;
		goto out;
	}
	r = hash_sha256(der, (size_t)len, out);
out:
	ERR_clear_error();
	OPENSSL_free(der);
	return r;
}

int x509fp_spki(EVP_PKEY *key, uint8_t out[static X509FP_LEN])
{
	unsigned char *der = NULL;
	int len, r = SBX_EINVAL;

	memset(out, 0, X509FP_LEN);
	if (key == NULL)
		return SBX_EINVAL;
	len = i2d_PUBKEY(key, &der);
	if (len <= 0) {
		r = SBX_ECRYPTO;
		goto out;
	}
	r = hash_sha256(der, (size_t)len, out);
out:
	ERR_clear_error();
	OPENSSL_free(der);
	return r;
}

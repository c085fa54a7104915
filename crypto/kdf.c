#include "crypto/kdf.h"

#include <pthread.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "crypto/err.h"

static EVP_KDF *hkdf;
static pthread_once_t hkdf_once = PTHREAD_ONCE_INIT;

static void fetch_hkdf(void)
{
	hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
}

int kdf_hkdf_sha256(const uint8_t *ikm, size_t ikmlen,
                    const uint8_t *salt, size_t saltlen,
                    const uint8_t *info, size_t infolen,
                    uint8_t *out, size_t outlen)
{
	static const uint8_t empty[1];
	EVP_KDF_CTX *kc = NULL;
	OSSL_PARAM params[5], *p = params;
	int r = SBX_EINVAL;

	if (out == NULL || outlen == 0 || outlen > 255 * 32)
		return SBX_EINVAL;
	memset(out, 0, outlen);
	if (ikm == NULL || ikmlen == 0 || (saltlen > 0 && salt == NULL) ||
	    (infolen > 0 && info == NULL) || infolen > KDF_MAX_INFO)
		goto out;
	r = SBX_ECRYPTO;
	pthread_once(&hkdf_once, fetch_hkdf);
	if (hkdf == NULL)
		goto out;
	kc = EVP_KDF_CTX_new(hkdf);
	if (kc == NULL)
		goto out;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikmlen);
	/* An empty octet string needs a non-NULL pointer for OpenSSL to take it. */
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
	                                         (void *)(saltlen ? salt : empty), saltlen);
	if (infolen > 0)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
		                                         (void *)info, infolen);
	*p = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kc, out, outlen, params) != 1) {
		OPENSSL_cleanse(out, outlen);
		goto out;
	}
	r = 0;
out:
	ERR_clear_error();
	EVP_KDF_CTX_free(kc);   /* the provider wipes its copy of the key */
	return r;
}

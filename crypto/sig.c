#include "crypto/sig.h"

#include <string.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/x509.h>

#include "crypto/err.h"
#include "crypto/hash.h"

int sig_digest(const char *ns, const uint8_t *msg, size_t len, uint8_t out[static 32])
{
	struct hash_ctx *h = hash_new();
	int r = SBX_ECRYPTO;

	if (h == NULL)
		goto out;
	if (hash_update(h, ns, strlen(ns) + 1) != 0)   /* includes the NUL separator */
		goto out;
	if (len > 0 && hash_update(h, msg, len) != 0)
		goto out;
	r = hash_final(h, out);
out:
	hash_free(h);
	return r;
}

int sig_verify(EVP_PKEY *pub, const char *ns, const uint8_t *msg, size_t len,
               const uint8_t *sig, size_t siglen)
{
	uint8_t dg[32];
	EVP_PKEY_CTX *pc = NULL;
	ECDSA_SIG *es = NULL;
	const uint8_t *p = sig;
	uint8_t *re = NULL;
	int relen, r = SBX_EVERIFY;

	if (pub == NULL || sig == NULL || siglen == 0 || siglen > SIG_MAX_DER)
		goto out;
	/* Accept only canonical DER: re-encode and compare, so a signature has
	 * exactly one valid byte form (no malleable padding). */
	es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
	if (es == NULL || (size_t)(p - sig) != siglen)
		goto out;
	relen = i2d_ECDSA_SIG(es, &re);
	if (relen < 0 || (size_t)relen != siglen || memcmp(re, sig, siglen) != 0)
		goto out;
	if (sig_digest(ns, msg, len, dg) != 0)
		goto out;
	pc = EVP_PKEY_CTX_new(pub, NULL);
	if (pc == NULL || EVP_PKEY_verify_init(pc) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) != 1)
		goto out;
	if (EVP_PKEY_verify(pc, sig, siglen, dg, sizeof dg) == 1)
		r = 0;
out:
	ERR_clear_error();
	OPENSSL_free(re);
	ECDSA_SIG_free(es);
	EVP_PKEY_CTX_free(pc);
	return r;
}

int sig_pubkey_from_spki(const uint8_t *der, size_t len, EVP_PKEY **out)
{
	const uint8_t *p = der;
	EVP_PKEY *k = NULL;
	char group[64];
	size_t glen = 0;
	int r = SBX_EFORMAT;

	*out = NULL;
	if (der == NULL || len == 0 || len > 4096)
		goto out;
	k = d2i_PUBKEY(NULL, &p, (long)len);
	if (k == NULL || (size_t)(p - der) != len)
		goto out;
	if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC)
		goto out;
	if (EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof group, &glen) != 1 ||
	    strcmp(group, "prime256v1") != 0)
		goto out;
	*out = k;
	k = NULL;   /* transferred */
	r = 0;
out:
	ERR_clear_error();
	EVP_PKEY_free(k);
	return r;
}

int sig_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

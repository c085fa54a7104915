#include "crypto/hash.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "crypto/err.h"

struct hash_ctx {
	EVP_MD_CTX *md;
};

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *md(void)
{
	pthread_once(&sha256_once, fetch_sha256);
	return sha256_md;
}

struct hash_ctx *hash_new(void)
{
	struct hash_ctx *h = NULL;

	if (md() == NULL)
		return NULL;
	h = calloc(1, sizeof *h);
	if (h == NULL)
		return NULL;
	h->md = EVP_MD_CTX_new();
	if (h->md == NULL || EVP_DigestInit_ex2(h->md, md(), NULL) != 1) {
		hash_free(h);
		return NULL;
	}
	return h;
}

int hash_update(struct hash_ctx *h, const void *data, size_t len)
{
	return EVP_DigestUpdate(h->md, data, len) == 1 ? 0 : SBX_ECRYPTO;
}

int hash_final(struct hash_ctx *h, uint8_t out[static HASH_LEN])
{
	unsigned int n = 0;

	if (EVP_DigestFinal_ex(h->md, out, &n) != 1 || n != HASH_LEN)
		return SBX_ECRYPTO;
	return EVP_DigestInit_ex2(h->md, md(), NULL) == 1 ? 0 : SBX_ECRYPTO;
}

void hash_free(struct hash_ctx *h)
{
	if (h == NULL)
		return;
	EVP_MD_CTX_free(h->md);
	free(h);
}

int hash_sha256_2(const void *a, size_t alen, const void *b, size_t blen,
                  uint8_t out[static HASH_LEN])
{
	EVP_MD_CTX *c = NULL;
	unsigned int n = 0;
	int r = SBX_ECRYPTO;

	if (md() == NULL)
		goto out;
	c = EVP_MD_CTX_new();
	if (c == NULL || EVP_DigestInit_ex2(c, md(), NULL) != 1)
		goto out;
	if (alen > 0 && EVP_DigestUpdate(c, a, alen) != 1)
		goto out;
	if (blen > 0 && EVP_DigestUpdate(c, b, blen) != 1)
		goto out;
	if (EVP_DigestFinal_ex(c, out, &n) != 1 || n != HASH_LEN)
		goto out;
	r = 0;
out:
	EVP_MD_CTX_free(c);
	return r;
}

int hash_sha256(const void *data, size_t len, uint8_t out[static HASH_LEN])
{
	return hash_sha256_2(data, len, NULL, 0, out);
}

void hash_hex(const uint8_t *b, size_t len, char *out)
{
	static const char hx[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hx[b[i] >> 4];
		out[2 * i + 1] = hx[b[i] & 15];
	}
	out[2 * len] = '\0';
}

static int nib(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hash_unhex(const char *hex, uint8_t *out, size_t len)
{
	if (strlen(hex) != 2 * len)
		return SBX_EFORMAT;
	for (size_t i = 0; i < len; i++) {
		int hi = nib(hex[2 * i]), lo = nib(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return SBX_EFORMAT;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

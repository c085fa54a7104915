/* Small fixtures the unit tests share: whole-file read and write, and a
 * self-signed P-256 recipient certificate.  static inline so that a test
 * that uses only some of them builds warning-free. */
#ifndef SBX_TEST_FIXTURES_H
#define SBX_TEST_FIXTURES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* The whole file, NUL-terminated (text files are then strings); NULL on
 * any error. */
static inline uint8_t *fx_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b = NULL;
	long n;

	*len = 0;
	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (b = malloc((size_t)n + 1)) != NULL && fread(b, 1, (size_t)n, f) == (size_t)n) {
		*len = (size_t)n;
		b[n] = 0;
	} else {
		free(b);
		b = NULL;
	}
	fclose(f);
	return b;
}

static inline int fx_spit(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (f == NULL)
		return -1;
	ok = fwrite(p, 1, n, f) == n;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* A self-signed P-256 certificate for O=Denver DA, CN=cn, valid for a day:
 * its key, the certificate and its DER (malloc'd).  -1 on failure (the
 * caller frees what was set). */
static inline int fx_recipient_cert(const char *cn, long serial, EVP_PKEY **key, X509 **x,
                                    uint8_t **der, size_t *der_len)
{
	X509_NAME *n;
	unsigned char *p = NULL;
	int len;

	*key = EVP_EC_gen("P-256");
	*x = X509_new();
	*der = NULL;
	*der_len = 0;
	if (*key == NULL || *x == NULL)
		return -1;
	X509_set_version(*x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(*x), serial);
	X509_gmtime_adj(X509_getm_notBefore(*x), 0);
	X509_gmtime_adj(X509_getm_notAfter(*x), 86400);
	X509_set_pubkey(*x, *key);
	n = X509_get_subject_name(*x);
	X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"Denver DA", -1, -1, 0);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(*x, n);
	if (X509_sign(*x, *key, EVP_sha256()) <= 0)
		return -1;
	len = i2d_X509(*x, &p);
	if (len <= 0)
		return -1;
	*der = malloc((size_t)len);
	if (*der == NULL) {
		OPENSSL_free(p);
		return -1;
	}
	memcpy(*der, p, (size_t)len);
	*der_len = (size_t)len;
	OPENSSL_free(p);
	return 0;
}

#endif

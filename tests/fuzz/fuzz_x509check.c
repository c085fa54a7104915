/* libFuzzer harness for the certificate checks (appliance/x509check.c)
 * against a fixed small trust store: a court root, its issuing CA (given as
 * the chain, and in the pool) and that CA's CRL; the box's clock fixed at
 * 2030-01-01.  The first byte picks the entry point:
 *   0 the rest as a recipient certificate (chain: the issuing CA)
 *   1 the rest as a trust anchor candidate
 *   2 the rest as a CRL
 *   3 the rest as a trust.conf
 *   4 the rest as a certificate (byte 1 even) or CRL (odd) file, PEM or DER
 *   5 bytes 1-2 a length L, then L bytes of certificate, the rest its chain
 * Invariants: only 0, SBX_EFORMAT or SBX_EPOLICY come back; a failure has
 * a one-line message and a verdict that matches its code; an accepted
 * recipient is signed by the issuing CA's key and an accepted anchor by
 * its own (nobody without those keys gets past the checks); a split file
 * re-parses.
 *
 * Build and run (60 s):
 *   make fuzz FUZZ_TIME=60   (or build/fuzz/fuzz_x509check tests/fuzz/corpus/fuzz_x509check)
 * The store was made with the openssl command line (test use only). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "appliance/x509check.h"
#include "crypto/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW_MS 1893456000000ull    /* 2030-01-01T00:00:00Z */

static const char pem_root[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBhDCCASqgAwIBAgICEAAwCgYIKoZIzj0EAwIwKTETMBEGA1UECgwKRnV6eiBD\n"
	"b3VydDESMBAGA1UEAwwJRnV6eiBSb290MB4XDTI2MDEwMTAwMDAwMFoXDTQ2MDEw\n"
	"MTAwMDAwMFowKTETMBEGA1UECgwKRnV6eiBDb3VydDESMBAGA1UEAwwJRnV6eiBS\n"
	"b290MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEcnr8cQKV6S5jk6aIEUX9FBrR\n"
	"uymX0JHC3uZPNczTvrHUqV3GB99MFbpW7zRspjUpbONyF1LxRf/eb1rGgaTwtaNC\n"
	"MEAwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYwHQYDVR0OBBYEFOLt\n"
	"GfFIDXty53GxDkuRcHoE3oRoMAoGCCqGSM49BAMCA0gAMEUCIQCVNN6RxOp7ZsZc\n"
	"15Xr+JT/728U1W+OT1YQhL5Zd8vDcQIgWmcZ5ryxkWP+PwsTM0/5IZ9xs/wVpe3M\n"
	"D18zgCCre0Y=\n"
	"-----END CERTIFICATE-----\n";

static const char pem_int[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBrjCCAVSgAwIBAgICEAEwCgYIKoZIzj0EAwIwKTETMBEGA1UECgwKRnV6eiBD\n"
	"b3VydDESMBAGA1UEAwwJRnV6eiBSb290MB4XDTI2MDEwMTAwMDAwMFoXDTQ2MDEw\n"
	"MTAwMDAwMFowLzETMBEGA1UECgwKRnV6eiBDb3VydDEYMBYGA1UEAwwPRnV6eiBJ\n"
	"c3N1aW5nIENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAElBvHIc7hA6N7mwwN\n"
	"wQdaXB7Oy4HdRkRirDCnqRnniqMZdX9xk5h5qwrx8P6FrzJbBkMMQv0xDt5oQb2r\n"
	"3Eu9rqNmMGQwEgYDVR0TAQH/BAgwBgEB/wIBADAOBgNVHQ8BAf8EBAMCAQYwHQYD\n"
	"VR0OBBYEFAwgY7XuVDx3ggfe2NY6jL4um2MJMB8GA1UdIwQYMBaAFOLtGfFIDXty\n"
	"53GxDkuRcHoE3oRoMAoGCCqGSM49BAMCA0gAMEUCIQCiU7o/pC6X4/ybBrpYwOLq\n"
	"ypQzE1AmYH7Hl0d4YAZVuwIgUUrPy6PDm/TvaZkb3XjVKbQXrI2iqXvQu5xpHjY/\n"
	"V4Q=\n"
	"-----END CERTIFICATE-----\n";

static const char pem_crl[] =
	"-----BEGIN X509 CRL-----\n"
	"MIHeMIGFAgEBMAoGCCqGSM49BAMCMC8xEzARBgNVBAoMCkZ1enogQ291cnQxGDAW\n"
	"BgNVBAMMD0Z1enogSXNzdWluZyBDQRcNMjYxMTI2MDY0NTM0WhcNNDYxMTIxMDY0\n"
	"NTM0WjAVMBMCAhADFw0yNjExMjYwNjQ1MzRaoA4wDDAKBgNVHRQEAwIBATAKBggq\n"
	"hkjOPQQDAgNIADBFAiBKiw8fVA2YVw7UNYsw7RZ9qpG40cmoOJlo0kO/G9CpTgIh\n"
	"AKwZY2XwDws0xTHiaPaQlXHVctpr8qSHYmECqxm1/TIH\n"
	"-----END X509 CRL-----\n";

static struct x509check_trust *trust;
static X509 *root, *inter;
static uint8_t *int_der;
static size_t int_len;

static void must(int cond)
{
	if (!cond)
		abort();
}

static void setup(void)
{
	BIO *b;
	X509_CRL *crl;
	uint8_t *der = NULL;
	int n;

	b = BIO_new_mem_buf(pem_root, -1);
	root = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	b = BIO_new_mem_buf(pem_int, -1);
	inter = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	b = BIO_new_mem_buf(pem_crl, -1);
	crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);
	BIO_free(b);
	must(root != NULL && inter != NULL && crl != NULL);
	trust = x509check_trust_new();
	must(trust != NULL);
	n = i2d_X509(root, &der);
	must(n > 0 && x509check_trust_add_anchor(trust, "court", der, (size_t)n, NULL) == 0);
	OPENSSL_free(der);
	der = NULL;
	n = i2d_X509_CRL(crl, &der);
	must(n > 0 && x509check_trust_add_crl(trust, der, (size_t)n, NULL) == 0);
	OPENSSL_free(der);
	n = i2d_X509(inter, &int_der);
	must(n > 0);
	int_len = (size_t)n;
	must(x509check_trust_add_pool(trust, int_der, int_len, NULL) == 0);
	X509_CRL_free(crl);
}

static void check_failure(int r, const struct sbx_err *e)
{
	must(r == SBX_EFORMAT || r == SBX_EPOLICY);
	must(e->code == r && e->msg[0] != '\0' && strchr(e->msg, '\n') == NULL);
}

static void check_cert(int r, const struct x509check_info *info, const struct sbx_err *e,
                       const uint8_t *der, size_t len, EVP_PKEY *signer)
{
	X509 *x;

	if (r != 0) {
		check_failure(r, e);
		must(info->verdict != X509CHECK_OK);
		must((r == SBX_EFORMAT) == (info->verdict == X509CHECK_MALFORMED));
		return;
	}
	must(info->verdict == X509CHECK_OK);
	x = x509check_parse_cert(der, len);
	must(x != NULL);
	must(X509_verify(x, signer != NULL ? signer : X509_get0_pubkey(x)) == 1);
	must(strchr(info->subject, '\n') == NULL && strchr(info->notes, '\n') == NULL);
	X509_free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct x509check_info info;
	struct x509check_crl_info ci;
	struct x509check_file f;
	struct sbx_err e = { 0 };
	const uint8_t *p;
	size_t n, l;
	int r;

	if (trust == NULL)
		setup();
	if (size < 1 || size > 65536)
		return 0;
	p = data + 1;
	n = size - 1;
	switch (data[0] % 6) {
	case 0:
		r = x509check_recipient(trust, "court", p, n, int_der, int_len, FUZZ_NOW_MS, &info, &e);
		check_cert(r, &info, &e, p, n, X509_get0_pubkey(inter));
		break;
	case 1:
		r = x509check_anchor(trust, "court", p, n, FUZZ_NOW_MS, &info, &e);
		check_cert(r, &info, &e, p, n, NULL);
		break;
	case 2:
		r = x509check_crl(trust, p, n, NULL, 0, FUZZ_NOW_MS, &ci, &e);
		if (r != 0)
			check_failure(r, &e);
		else
			must(strchr(ci.issuer, '\n') == NULL && ci.this_update_ms <= FUZZ_NOW_MS);
		break;
	case 3: {
		struct x509check_trust *t = x509check_trust_new();

		must(t != NULL);
		r = x509check_trust_conf(t, p, n, &e);
		if (r != 0)
			check_failure(r, &e);
		x509check_trust_free(t);
		break;
	}
	case 4:
		if (n < 1)
			return 0;
		r = x509check_file_split(p + 1, n - 1, p[0] & 1, &f, &e);
		if (r != 0) {
			check_failure(r, &e);
			must(f.certs == NULL && f.crl == NULL);
			break;
		}
		must(f.n_certs > 0 || f.crl != NULL);
		for (size_t off = 0, i = 0; i < f.n_certs; i++) {
			X509 *x;
			const uint8_t *q = f.certs + off;

			x = d2i_X509(NULL, &q, (long)(f.certs_len - off));
			must(x != NULL && (i > 0 || (size_t)(q - f.certs) == f.first_len));
			off = (size_t)(q - f.certs);
			must(i + 1 < f.n_certs || off == f.certs_len);
			X509_free(x);
		}
		x509check_file_free(&f);
		break;
	default:
		if (n < 2)
			return 0;
		l = (size_t)p[0] << 8 | p[1];
		if (l > n - 2)
			return 0;
		r = x509check_recipient(trust, "court", p + 2, l, p + 2 + l, n - 2 - l, FUZZ_NOW_MS,
		                        &info, &e);
		if (r == 0) {
			X509 *x = x509check_parse_cert(p + 2, l);

			/* Signed by an issuer that chains to the root: the issuing
			 * CA or, for a chain the fuzzer found, someone holding a key
			 * the store trusts - only the seeds have those. */
			must(x != NULL);
			must(X509_verify(x, X509_get0_pubkey(inter)) == 1 ||
			     X509_verify(x, X509_get0_pubkey(root)) == 1);
			X509_free(x);
		} else {
			check_failure(r, &e);
			must(info.verdict != X509CHECK_OK);
		}
		break;
	}
	ERR_clear_error();
	return 0;
}

/* libFuzzer harness for the key-wrap blob parser and unwrap
 * (crypto/wrap.c) under fixed test keys and context.  The first input byte
 * picks the key: 0 P-256, 1 P-384, 2 RSA-3072, 3 P-256 through the ECDH
 * callback (the TPM path).  The rest is the blob.  Invariants: a blob that
 * parses re-encodes to exactly the input (one encoding per blob); a refused
 * blob gives SBX_EFORMAT or SBX_EVERIFY with a one-line message and leaves
 * the output key untouched; the callback only ever sees points on the
 * curve; an accepted blob parsed, and came from a seed (nobody without the
 * key's owner can make the unwrap produce a key the fuzzer did not wrap).
 *
 * Build and run (60 s):
 *   clang -std=c17 -D_GNU_SOURCE -I. -g -O1 -fsanitize=fuzzer,address,undefined \
 *     tests/fuzz/fuzz_wrap.c crypto/wrap.c crypto/kdf.c crypto/err.c export/wire.c \
 *     -lcrypto -lpthread -o fuzz_wrap
 *   ./fuzz_wrap -max_total_time=60 tests/fuzz/corpus/fuzz_wrap */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>

#include "crypto/err.h"
#include "crypto/wrap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Test keys (test use only), the same as in tests/unit/test_wrap.c. */
static const char pem_r256[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgapjDFDszD1X3FBgV\n"
	"LIypp5ADyDvKuiKkXoti+BnoU/KhRANCAAQujuO1b2TF7uA2wVoDkML5gBVuWKhK\n"
	"ujoX13MFOYIRRtDD+5hXdBFh8w50DgFES2UXItcklsthTha/x0oTMNDF\n"
	"-----END PRIVATE KEY-----\n";
static const char pem_r384[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDCFcI+bv3mrYyxT08Zx\n"
	"ga47/lTmK+7gmwa6wt5W0DkwjBBzYivG+BhhS2SAizW5N+ehZANiAAQzgaonf4eR\n"
	"ksHjEGCbLjDqTAhj2R1ClgwSflr+ynmkB1Whpi04A/jWFJWLWvx7b7gqMbEk+2jC\n"
	"TGYTNtU/vBfrilrNJWB6djI7+Vaz9WSK/hH85ZRFqtm/LXh0yaZbTNk=\n"
	"-----END PRIVATE KEY-----\n";
static const char pem_rsa3072[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIIG/QIBADANBgkqhkiG9w0BAQEFAASCBucwggbjAgEAAoIBgQDUI0dfXTjM3OXS\n"
	"ra3xtUgRwDkncWHJwVdk9q/g5jGGd4aHbTvpjzo2ff0w9bJNC4AY4qRdqS1YCr3p\n"
	"XtO3steOciY8pKQAOfiXjaED8tMqsdSU9t/eXWFGEKPofCTh2lCT67k5nFoHdrvK\n"
	"Q4mEJse/fPSLjszPwyIvd7cLYn0xuMX3AhdG3iWXzwoC3XWAVoMa21P3TAGTWupI\n"
	"rAsQu6kcC3lSl/E8P0wvt7O1tAhJDtlDkrM2mIELBDUoWns7M3EXhRzVixxe8oVI\n"
	"d5uBPL6Lb4i7J5IDt9LlwO6+J8Z0LHn1mj+XSK3lDFgnbZBT+utP2fEMcUNk1YHH\n"
	"p0fx21fuvmKs7V8ceRFgYUQqKp/6wy0JHMIJw75oCWNpicqpyOX7TSaRggliBBoP\n"
	"r31Heifhf2t2iL4qBNASnvbwbrIP+Elb/q+CUROdAwH5JE13Lq4ZQVGU+5piOkpH\n"
	"P6n99xRXdEVVpiQqTbw0o/TFj+0QNMUGA1/HsjttM/PJmgjZwT0CAwEAAQKCAYAK\n"
	"lLwXkShT+MFCcSHDAHI42nAVwmjCSrFS5DmkQgirc5Spw0r9kxFWmV5yqpEEzHay\n"
	"89w6N+w+uJukEBptm1v3kaqyrY0CXhUP01AtVX3VYq6fA7JP+DN+iAMMH0pEQdXX\n"
	"jvNVIL731NY4i2y73MBSHrr6DaEaTGbmqOkf7JiggISCFcaQWErvoVn9oX5EUx+L\n"
	"P4nWxNTmSYUnVn3fZr2gXCBZle6oVq+0e8xY2ylq1XTReasUZWZrixkiRMl7pWZ4\n"
	"SBhk80BlZsMI53Xm/w2C6pNzWWDlD3/hEvGO/KYKErnfanHYe8cdfqqHCqs9HraX\n"
	"2rNn40x8JOG5lZezS2Ok5zLoAH4hn6OISiS3IW2f8WglU9vrQ21DXUCoiARgEA55\n"
	"Cm5AEX1paJ9+dk7cM09uE8M5byjpP0Mx7gtHCYrMDIEKp6J0N0vL+k81VO9QrLQ7\n"
	"N1EiVY/88lNEj+yY9oidAYRrRIVRrEjlXtXYwipoKNYwrQ+TnQc0VHg2eur6iYkC\n"
	"gcEA/cw1XPHosWu5BbidtCUuuc1ZeelEuUvShwijfU5lRzfYIKayjUKIUXmK2Q9a\n"
	"oVHJaD31SJFLVUuydIan9Jbx4KQo8JAREg/0zdlVkjjn+WpHjA7Hsdxk036w2rii\n"
	"ponmXVvwLyrUdUTKEbt56FwVG/EClmxK20r79ShIXvLt9UjAE7LfR3CBSyea4nyH\n"
	"+XT6+Qf313vF9VNkBtBQF2F/xLINHH6TpCSQz/2EC574ZnNvWlouampQ4GhT3oxU\n"
	"oh6JAoHBANX6hrWXKnzCWYYp9RuOMViTP6PrAa2tw2tktbBYfJiNJqSaLExf41b7\n"
	"iun57c47N1+Xn9sEQCNy163+tjtXKO9LOvwf7UD4mJH6EmKxxi66c01yT7p8qcmJ\n"
	"TDyWk39oeqtshCWotvKINbbt3BqPFVppAp2pfwDZ/T8p1LCIqGysb4wibFjULF0O\n"
	"O/AH60UAFbkPT6AxsnOezi+9JAVgFNGepqIH6CCyEwtsZVT9Addv1g8l9s5tGEkK\n"
	"D9eS/dNAFQKBwQCeVKgxzMTC8pYhyJOxz8R/q2kXkfwKsQ+sqCn+QUsTi/YsIHKh\n"
	"h5EtaurBEUAUBcblXknINMRPeQLiiSL8hrJs11ym/ul3YDbzuJMWvqORSMlLyeiw\n"
	"v/KysoW4XZky1jK9qV6Evm5+niSFvXSHDfMpVEit+O8WMYhP4AqOGXV0ISea4mtC\n"
	"0SAH97Q7eT8G1ADCHUNzzcaojpaHXaupemzQE9f0H88RhrJE3z5iVZFXsMoWDs6I\n"
	"Gr1L0ioIW3ltDikCgcB1bDGYXQgXxp9SHJxBLtqtfMCjt0cIhB6FRJLf3u8g1/So\n"
	"x2If107uYMNuepShY6WTc6Vpjv+TdGYfOXPPRJlWF7aavPp5ePJgyRZlyqCy6+Zy\n"
	"TZSrBdY2nn2Tkh4HANKwV7B86gTbOxwe8pCiknppTs78rhLf6MAsdUweRCAI4uej\n"
	"wxAp/uUJe9IwemgFSXKiR2CuzBbdk/wZ/nVR7dP+5E0VBbnAl3gUALvq05y7GMgj\n"
	"L/YseXmmOztOVX+s+bECgcAnCRXvlIBk7pjrwtIcXIyOHWn8fTZtcj7Prq+H0cOt\n"
	"BLy5RTsfsu6XsEcm7q6RO1Ne0jApElcFxPFXD3Ngz32Irj+XBxQD+2DFRDkHJtoD\n"
	"cfI8N0UbwyD9HffJBWFXOzKlVcn3tSlhAFPRpzv3YokGvlpTdA1rhFji6jXxF8eO\n"
	"Wt7jAijWNYVuYz+WC11a1dLcLthkEW+t6ybGgYBMqopTG2vT2jkRiX1TydXiyYvC\n"
	"FpMB/QosCrKPDcKSpszwF/M=\n"
	"-----END PRIVATE KEY-----\n";

static const uint8_t fuzz_ctx[] = "fuzz-context";
#define FUZZ_CTXLEN 12

static void must(int cond)
{
	if (!cond)
		abort();
}

static EVP_PKEY *load_pem(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	must(k != NULL);
	return k;
}

static EVP_PKEY *keys[3];

/* The TPM stand-in: checks the point itself, then software ECDH. */
static int fake_ecdh(void *arg, const uint8_t *pt, size_t len, uint8_t *shared, size_t *shared_len)
{
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL), *dc = NULL;
	EVP_PKEY *peer = NULL;
	OSSL_PARAM ps[3];
	int r = SBX_ETPM;

	ps[0] = OSSL_PARAM_construct_utf8_string("group", (char *)"prime256v1", 0);
	ps[1] = OSSL_PARAM_construct_octet_string("pub", (void *)pt, len);
	ps[2] = OSSL_PARAM_construct_end();
	/* wrap.c promised a point on the curve */
	must(pc != NULL && EVP_PKEY_fromdata_init(pc) == 1 &&
	     EVP_PKEY_fromdata(pc, &peer, EVP_PKEY_PUBLIC_KEY, ps) == 1);
	dc = EVP_PKEY_CTX_new(arg, NULL);
	if (dc != NULL && EVP_PKEY_derive_init(dc) == 1 && EVP_PKEY_derive_set_peer(dc, peer) == 1 &&
	    EVP_PKEY_derive(dc, shared, shared_len) == 1)
		r = 0;
	EVP_PKEY_CTX_free(dc);
	EVP_PKEY_CTX_free(pc);
	EVP_PKEY_free(peer);
	return r;
}

static void put32(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);  p[3] = (uint8_t)v;
}

/* Parsing is exact: the fields re-encode to the input. */
static void check_parse(const uint8_t *blob, size_t len)
{
	struct wrap_blob wb;
	struct sbx_err e = { 0 };
	uint8_t re[WRAP_MAX_BLOB];
	size_t o = 6;
	int r = wrap_parse(blob, len, &wb, &e);

	if (r != 0) {
		must(r == SBX_EFORMAT && e.code == r && strchr(e.msg, '\n') == NULL);
		return;
	}
	memcpy(re, "SBXW\x01", 5);
	re[5] = (uint8_t)wb.alg;
	if (wb.epk != NULL) {
		put32(re + o, wb.epklen);
		memcpy(re + o + 4, wb.epk, wb.epklen);
		o += 4 + wb.epklen;
	}
	put32(re + o, wb.ctlen);
	memcpy(re + o + 4, wb.ct, wb.ctlen);
	o += 4 + wb.ctlen;
	must(o == len && memcmp(re, blob, len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t sentinel[WRAP_CEK_LEN] = { 0xaa, 0xaa, 0xaa, 0xaa };
	uint8_t cek[WRAP_CEK_LEN];
	struct sbx_err e = { 0 };
	const uint8_t *blob;
	size_t len;
	int r, which;

	if (keys[0] == NULL) {
		keys[0] = load_pem(pem_r256);
		keys[1] = load_pem(pem_r384);
		keys[2] = load_pem(pem_rsa3072);
	}
	if (size < 1 || size > 4096)
		return 0;
	blob = data + 1;
	len = size - 1;
	which = data[0] & 3;
	check_parse(blob, len);
	memcpy(cek, sentinel, sizeof cek);
	if (which == 3)
		r = wrap_unwrap_ecdh(blob, len, keys[0], fake_ecdh, keys[0], fuzz_ctx, FUZZ_CTXLEN,
		                     cek, &e);
	else
		r = wrap_unwrap(blob, len, keys[which], fuzz_ctx, FUZZ_CTXLEN, cek, &e);
	if (r == 0) {
		must(wrap_parse(blob, len, &(struct wrap_blob){ 0 }, NULL) == 0);
		/* every seed wraps the key 0x00..0x1f */
		for (int i = 0; i < WRAP_CEK_LEN; i++)
			must(cek[i] == i);
	} else {
		must(r == SBX_EFORMAT || r == SBX_EVERIFY);
		must(e.code == r && e.msg[0] != '\0' && strchr(e.msg, '\n') == NULL);
		must(memcmp(cek, sentinel, sizeof cek) == 0);
	}
	return 0;
}

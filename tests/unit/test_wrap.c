/* Key wrap: known answers for ECDH P-256 and P-384 re-derived here from
 * the written construction with raw EVP calls (ECDH, HKDF through EVP_KDF,
 * AES-256-GCM), RSA-OAEP checked both ways against raw EVP with the
 * documented label, round trips, the TPM-style ECDH callback against the
 * software key (including a shared X with a leading zero byte returned
 * short), refusals (RSA-2048, other curves and key types, PKCS#1 v1.5,
 * OAEP-SHA1), wrong recipient, wrong context, every byte of each blob
 * flipped, every truncation, off-curve points, and the fingerprints. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "crypto/err.h"
#include "crypto/hash.h"
#include "crypto/wrap.h"
#include "crypto/x509fp.h"
#include "tests/unit/check.h"

/* Committed test keys (test use only; generated with openssl genpkey). */
static const char pem_r256[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgapjDFDszD1X3FBgV\n"
	"LIypp5ADyDvKuiKkXoti+BnoU/KhRANCAAQujuO1b2TF7uA2wVoDkML5gBVuWKhK\n"
	"ujoX13MFOYIRRtDD+5hXdBFh8w50DgFES2UXItcklsthTha/x0oTMNDF\n"
	"-----END PRIVATE KEY-----\n";
static const char pem_e256[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgpr9dpm1telIgBcv2\n"
	"lLrOJWklT5DBO6gVVqy78p9P/UqhRANCAAScTX/Wjw4PLOmL/xfg9emS1biyfljb\n"
	"heUMJkWcHPwknFYm95IK7P+Ei+jZuh82aFEsaJaWtIuQwVCU+skUnfFz\n"
	"-----END PRIVATE KEY-----\n";
static const char pem_r384[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDCFcI+bv3mrYyxT08Zx\n"
	"ga47/lTmK+7gmwa6wt5W0DkwjBBzYivG+BhhS2SAizW5N+ehZANiAAQzgaonf4eR\n"
	"ksHjEGCbLjDqTAhj2R1ClgwSflr+ynmkB1Whpi04A/jWFJWLWvx7b7gqMbEk+2jC\n"
	"TGYTNtU/vBfrilrNJWB6djI7+Vaz9WSK/hH85ZRFqtm/LXh0yaZbTNk=\n"
	"-----END PRIVATE KEY-----\n";
static const char pem_e384[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDA2GIuTpk6KGWNSZO6+\n"
	"Ubz9gJEzyk056VEZu1OBuG6thaZUFqtk12/bFJ8RVqA9nquhZANiAAQ572kbKrtr\n"
	"Xe/2QESAmv6yMsvRpnS/EfNEv4AdEX+0tCVnshryjsFAjRmudG+tjCQQGJ0gYJGQ\n"
	"WTjMAkP0YyiIIyhT9+9hlB7iJMkbJr5AugmxresvYZPK5ilvhQH/FFo=\n"
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
static const char pem_rsa3072b[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIIG/gIBADANBgkqhkiG9w0BAQEFAASCBugwggbkAgEAAoIBgQDMo56Rl/WNDHmW\n"
	"+U4BGoNI0Uv6tlCBr1kxBOXpRkSrN4AhosT8RE183XzmMnDiUrzu8Q51hALPiHJ+\n"
	"S1aJC/1Sy7zsfzRVWCYMgLnIBvRmPJBijOhRxoo01htz3kzFvpb4dz8vIi+9flCD\n"
	"J95AGJVR3v+xHIeXHw+qt5koJAjLqba6xofm8KhVPTY0WHJme6eSpvfFOH9PnQa/\n"
	"C8wJ1uZQjbIFB3P+IJcx8dcVCq3TIiEG7d5W/F18t/8MWmpVTAZ9ia+75laxr8Wj\n"
	"pnsYEmsKOO6666mcGpMa6k+qbcyLtYxV9O4gOvlsfTckeSFm93XCxw/GYrOqGLK6\n"
	"pqNJ2HOs77c+uH3MTzwsbklJEMheq4dG3UUIR10XUNOHjK0q2C1A2SEcfn4j9FPu\n"
	"oJj+f2bI19EEKBg6P6WXjCloN08pG6pPpwJJJ5+pqeF3ZBzuUVQytNgsWVxGl+Ln\n"
	"/ND0io9vJ4PrHUFBnesqPRtTsbuSIM21mb7RK4V+BwX8GoHDBFMCAwEAAQKCAYAL\n"
	"O7IRIOvQPc6Q3IeNJPTu8to+XXKm48a8G545Q2uykF3eus4gYOl2ALyB8GPk8JDB\n"
	"dwcJqWD0HnPWffE2natet6NbwhHP24JfLlPEaKlS0WFFn6GDF6hvhQ9FuX6yXidw\n"
	"ZS9ZOYGwX7YwtOgM0aykrV6QzNWelIxqHSDxpKS89Uh8ETjVkwFSiIUos3A4MvJ8\n"
	"aODx+Qt4BdEgfJfLNHo5EsYiY4nY+dYC3lklpQvsqpNwi28ojDrfhUQhW/c5Tm51\n"
	"nIQPNEslBWayUQX5K0S7Ql8lbLiFGW4rj+/8X0rdKw0q0ca43jF8BUOWea7579Lj\n"
	"PjlJJjiFRuMwnTOXtDDvBTHm2PBqt+XgYVqP7SlGXYDpH5X7oEWSzNStJeaoOaS5\n"
	"blz1qLwCwFWSuMbGHliHTfVduZE4UoBLbAYcxW9AUyauitq3BAUsK7kvZ3GNVz7J\n"
	"hW+85CLtr9Ur2nzT35xCiKbMWEDMmjVB0usDOIU6PVcga5Fzq4Pnq82nwjdsKrkC\n"
	"gcEA8YaA557BB9WIhSFH+oaWadakPZqXvZnKvSvWNWC0+0YRNxAwxZdKS74z5khP\n"
	"D4frejY+zJE6t9I6WjSpZlXkzZQByh0Gf53Soq8LUpDiAV1rz6GKNtkqjzPW0dh+\n"
	"o9nNPI2jpGUV+QzWFhN3hhk0mgmYosI1Rmkkx9ghqAx0BK52yzewIrSj/AcfhTsr\n"
	"Jnb/t6dzNCwwg62XAHfsCpM6yZumD/flyWs3nDoHYWV37InBp7VA/5Xj8Teox69b\n"
	"aZ3JAoHBANjnNGZPvkYVCZVg2gI9K3C8ERPUpkmIMyShS5J95ndbfx1nNaQDDLlw\n"
	"X2D4CfsDLNhNUYlQIEfRF+IJSMbiHez58JY98TjRG4a97f59QKpRCnMI/BfBKAfI\n"
	"M3gk/CwZqzFMNaGJVJBayL0F2tnYU7ltW84r7iHvJufN0tJhk6283W9VSx1S6XKU\n"
	"du8FDA3jpJaljYHzwdn8/HnZdKHrpp0DbaLasx0u53/o5wjIQ+Cc5ErmGgjg6d8X\n"
	"o9PBj7XvOwKBwQCbPpZqyttOes2WrQ7EFHBoNWQ6iLzSTSFIuP2mL7QE80Orfger\n"
	"ahSCXQ6lDYNr+zS7yFRTT2JLt6B0TPc55Sn9jg4caM29h6dVlGgVuTTcJb1fp3jc\n"
	"yngVtf91wM+d6CiIrI4r5CHchIizhe3EzzzFajenHmf6CyluHxl7GA4W2EFZXEEl\n"
	"/bCOFdIH5EFXJxQ1azecqG7CpPizf2HEZmBaKGb0SqZz8iu7in0l+H++FcnZT6Mo\n"
	"5aKvcNRXDfsXBykCgcEA0xJS5IkPMSXBuLKSFAGwpzjsKW8TDpVSp3+qifiocFgC\n"
	"X/uSsHMjS8V1m2hkVfcmCatcABKQBzMLWbQNNTTPSE+E9r96YP7kGX/z/GWoqtTI\n"
	"JV+F6hvWN5RzuaPMHaIw/H0b54E7YGpn08HB0aH4/4XTA9OuHSmbo5GgaYf47OXQ\n"
	"WkoXGYcYk560Ci7QJyfyf4LFLMOnTdkpW+3n2LX34e13IDZQfMKrFsbvJJW1r/sd\n"
	"EWHPzfoIvEdF7of6sGIHAoHARxtHChdOqKwCCnceiF55qJmA4yxa4uxrjMO8qe2A\n"
	"brQEHRiXZaOZsdnCNgbDXtLRX/HwpqjDozdQlX9KABkoCWWUzQKhC+51Ioi5aI01\n"
	"6G0giKyaeMX9ZjrToqMwYqV1qpUqzxljl2WEKLOk0PvH39zNz3au1G7oZoAQIVNH\n"
	"XHWYCDv+jyKuunqkx2IacGGW8+uQrBhqfW/o/HrBkl/P4QlqOrSvwxUFb6INI8C3\n"
	"wbkzHc2pTvfkDGwcofhZow4e\n"
	"-----END PRIVATE KEY-----\n";

static const uint8_t test_cek[32] = {
	0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f,
	0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f,
};
#define CTX     ((const uint8_t *)"bundle=0123abcd;recipient=fedc9876")
#define CTXLEN  (sizeof "bundle=0123abcd;recipient=fedc9876" - 1)

/* SHA-256 of the known-answer blobs (P-256 and P-384, fixed ephemeral keys). */
#define KAT_P256 "140f86890338d10ee38610158c190f95a0b3ca740b6862adbdd42d6ac26f0a74"
#define KAT_P384 "19a5de6457a47e57e3ba040429db72c2d43941d38b52ab7de0f7838f6f2e360f"

static EVP_PKEY *load_pem(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return k;
}

/* The public half only, as a recipient certificate would give it. */
static EVP_PKEY *public_only(EVP_PKEY *k)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	int n = i2d_PUBKEY(k, &der);
	EVP_PKEY *pub;

	p = der;
	pub = n > 0 ? d2i_PUBKEY(NULL, &p, n) : NULL;
	OPENSSL_free(der);
	return pub;
}

/* ---- the construction, written again from docs/CRYPTO.md --------------- */

static size_t ref_point(EVP_PKEY *k, uint8_t *out)
{
	size_t n = 0;

	if (EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
	                                    out, 133, &n) != 1)
		return 0;
	return n;
}

static size_t ref_ecdh(EVP_PKEY *priv, EVP_PKEY *peer, uint8_t *z)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(priv, NULL);
	size_t n = 64;
	int ok = c && EVP_PKEY_derive_init(c) == 1 && EVP_PKEY_derive_set_peer(c, peer) == 1 &&
	         EVP_PKEY_derive(c, z, &n) == 1;

	EVP_PKEY_CTX_free(c);
	return ok ? n : 0;
}

static int ref_hkdf(const uint8_t *ikm, size_t ikmlen, const uint8_t *salt, size_t saltlen,
                    const uint8_t *info, size_t infolen, uint8_t *out)
{
	EVP_KDF *k = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *c = k ? EVP_KDF_CTX_new(k) : NULL;
	OSSL_PARAM ps[5];
	int ok;

	ps[0] = OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0);
	ps[1] = OSSL_PARAM_construct_octet_string("key", (void *)ikm, ikmlen);
	ps[2] = OSSL_PARAM_construct_octet_string("salt", (void *)salt, saltlen);
	ps[3] = OSSL_PARAM_construct_octet_string("info", (void *)info, infolen);
	ps[4] = OSSL_PARAM_construct_end();
	ok = c != NULL && EVP_KDF_derive(c, out, 32, ps) == 1;
	EVP_KDF_CTX_free(c);
	EVP_KDF_free(k);
	return ok;
}

static size_t ref_label(int alg, const uint8_t *ctx, size_t ctxlen, uint8_t *out)
{
	memcpy(out, "sealbox-wrap-v1", 16);     /* 15 characters and the NUL */
	out[16] = (uint8_t)alg;
	memcpy(out + 17, ctx, ctxlen);
	return 17 + ctxlen;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);  p[3] = (uint8_t)v;
}

/* The whole ECDH blob from the recipient and ephemeral keys. */
static size_t ref_blob_ec(int alg, EVP_PKEY *recip, EVP_PKEY *eph, const uint8_t cek[32],
                          const uint8_t *ctx, size_t ctxlen, uint8_t *out)
{
	uint8_t epk[133], rpk[133], salt[266], z[64], info[600], kek[32], nonce[12] = { 0 };
	size_t elen = ref_point(eph, epk), rlen = ref_point(recip, rpk), zlen, ilen, o = 0;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, ok;

	zlen = ref_ecdh(eph, recip, z);
	memcpy(salt, epk, elen);
	memcpy(salt + elen, rpk, rlen);
	ilen = ref_label(alg, ctx, ctxlen, info);
	if (elen == 0 || zlen == 0 || !ref_hkdf(z, zlen, salt, elen + rlen, info, ilen, kek))
		return 0;
	memcpy(out, "SBXW", 4);
	out[4] = 1;
	out[5] = (uint8_t)alg;
	o = 6;
	put32(out + o, (uint32_t)elen);
	memcpy(out + o + 4, epk, elen);
	o += 4 + elen;
	put32(out + o, 48);
	o += 4;
	ok = c && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, kek, nonce) == 1 &&
	     EVP_EncryptUpdate(c, out + o, &n, cek, 32) == 1 &&
	     EVP_EncryptFinal_ex(c, out + o + 32, &n) == 1 &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, out + o + 32) == 1;
	EVP_CIPHER_CTX_free(c);
	return ok ? o + 48 : 0;
}

/* RSA-OAEP through raw EVP with a chosen digest and padding. */
static size_t ref_rsa(int enc, EVP_PKEY *k, int padding, const char *md,
                      const uint8_t *label, size_t llen, const uint8_t *in, size_t inlen,
                      uint8_t *out)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k, NULL);
	size_t n = 2048;
	int ok = c && (enc ? EVP_PKEY_encrypt_init(c) : EVP_PKEY_decrypt_init(c)) == 1 &&
	         EVP_PKEY_CTX_set_rsa_padding(c, padding) == 1;

	if (ok && padding == RSA_PKCS1_OAEP_PADDING) {
		uint8_t *l = OPENSSL_memdup(label, llen);

		ok = EVP_PKEY_CTX_set_rsa_oaep_md_name(c, md, NULL) == 1 &&
		     EVP_PKEY_CTX_set_rsa_mgf1_md_name(c, md, NULL) == 1 &&
		     EVP_PKEY_CTX_set0_rsa_oaep_label(c, l, (int)llen) == 1;
		if (!ok)
			OPENSSL_free(l);
	}
	ok = ok && (enc ? EVP_PKEY_encrypt(c, out, &n, in, inlen)
	                : EVP_PKEY_decrypt(c, out, &n, in, inlen)) == 1;
	EVP_PKEY_CTX_free(c);
	return ok ? n : 0;
}

/* An RSA blob around a given ciphertext. */
static size_t rsa_blob(const uint8_t *ct, size_t ctlen, uint8_t *out)
{
	memcpy(out, "SBXW\x01\x03", 6);
	put32(out + 6, (uint32_t)ctlen);
	memcpy(out + 10, ct, ctlen);
	return 10 + ctlen;
}

/* ---- the TPM stand-in --------------------------------------------------- */

struct fake_tpm {
	EVP_PKEY *priv;
	int calls;
	int fail;               /* return SBX_ETPM */
	int strip;              /* return X without its leading zero bytes */
	int stripped;           /* set when a short X was returned */
	int garbage;            /* return a wrong shared secret */
	int offcurve_seen;      /* a point that does not import was passed */
	uint8_t seen[133];
	size_t seenlen;
};

static int fake_ecdh(void *arg, const uint8_t *pt, size_t len, uint8_t *shared, size_t *shared_len)
{
	struct fake_tpm *t = arg;
	char group[64];
	EVP_PKEY_CTX *pc = NULL;
	EVP_PKEY *peer = NULL;
	OSSL_PARAM ps[3];
	uint8_t z[64];
	size_t zlen = 0, off = 0;
	int r = SBX_ETPM;

	t->calls++;
	memcpy(t->seen, pt, len < sizeof t->seen ? len : sizeof t->seen);
	t->seenlen = len;
	if (t->fail)
		return SBX_ETPM;
	EVP_PKEY_get_utf8_string_param(t->priv, "group", group, sizeof group, NULL);
	ps[0] = OSSL_PARAM_construct_utf8_string("group", group, 0);
	ps[1] = OSSL_PARAM_construct_octet_string("pub", (void *)pt, len);
	ps[2] = OSSL_PARAM_construct_end();
	pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (pc == NULL || EVP_PKEY_fromdata_init(pc) != 1 ||
	    EVP_PKEY_fromdata(pc, &peer, EVP_PKEY_PUBLIC_KEY, ps) != 1) {
		t->offcurve_seen++;
		goto out;
	}
	zlen = ref_ecdh(t->priv, peer, z);
	if (zlen == 0 || zlen > *shared_len)
		goto out;
	if (t->strip)
		while (off < zlen - 1 && z[off] == 0)
			off++;
	if (off > 0)
		t->stripped = 1;
	if (t->garbage)
		z[zlen - 1] ^= 1;
	memcpy(shared, z + off, zlen - off);
	*shared_len = zlen - off;
	r = 0;
out:
	EVP_PKEY_free(peer);
	EVP_PKEY_CTX_free(pc);
	return r;
}

/* ---- tests -------------------------------------------------------------- */

static EVP_PKEY *r256, *e256, *r384, *e384, *rsa3072, *rsa3072b, *rsa2048, *other256;

static int cek_is(const uint8_t *cek, uint8_t v)
{
	for (int i = 0; i < 32; i++)
		if (cek[i] != v)
			return 0;
	return 1;
}

static void test_kat(void)
{
	struct { int alg; EVP_PKEY **r, **e; const char *want; const char *name; } kats[] = {
		{ WRAP_ECDH_P256, &r256, &e256, KAT_P256, "P-256" },
		{ WRAP_ECDH_P384, &r384, &e384, KAT_P384, "P-384" },
	};

	for (size_t i = 0; i < 2; i++) {
		EVP_PKEY *pub = public_only(*kats[i].r);
		uint8_t *blob = NULL, ref[400], dg[32], cek[32];
		size_t len = 0, rlen;
		char h[65], msg[128];

		CHECK(wrap_cek_ephemeral(pub, *kats[i].e, test_cek, CTX, CTXLEN, &blob, &len, NULL) == 0);
		rlen = ref_blob_ec(kats[i].alg, pub, *kats[i].e, test_cek, CTX, CTXLEN, ref);
		snprintf(msg, sizeof msg, "KAT %s: module blob == independent EVP derivation", kats[i].name);
		CHECK_MSG(rlen > 0 && len == rlen && memcmp(blob, ref, rlen) == 0, msg);
		hash_sha256(blob, len, dg);
		hash_hex(dg, 32, h);
		printf("# kat %s blob sha256 %s\n", kats[i].name, h);
		snprintf(msg, sizeof msg, "KAT %s: blob hash", kats[i].name);
		CHECK_MSG(strcmp(h, kats[i].want) == 0, msg);
		memset(cek, 0, 32);
		CHECK(wrap_unwrap(blob, len, *kats[i].r, CTX, CTXLEN, cek, NULL) == 0 &&
		      memcmp(cek, test_cek, 32) == 0);
		free(blob);
		EVP_PKEY_free(pub);
	}
}

static void roundtrip(const char *name, EVP_PKEY *priv, int alg)
{
	EVP_PKEY *pub = public_only(priv);
	uint8_t *a = NULL, *b = NULL, cek[32];
	size_t alen = 0, blen = 0;
	struct sbx_err e = { 0 };
	struct wrap_blob wb;
	int got = 0;
	char msg[128];

	CHECK(wrap_key_alg(pub, &got, NULL) == 0 && got == alg);
	snprintf(msg, sizeof msg, "%s: wrap to the public key", name);
	CHECK_MSG(wrap_cek(pub, test_cek, CTX, CTXLEN, &a, &alen, &e) == 0, msg);
	CHECK(wrap_cek(pub, test_cek, CTX, CTXLEN, &b, &blen, NULL) == 0);
	snprintf(msg, sizeof msg, "%s: two wraps of one key differ", name);
	CHECK_MSG(alen == blen && memcmp(a, b, alen) != 0, msg);
	CHECK(wrap_parse(a, alen, &wb, NULL) == 0 && wb.alg == alg);
	memset(cek, 0, 32);
	snprintf(msg, sizeof msg, "%s: unwrap gives the content key", name);
	CHECK_MSG(wrap_unwrap(a, alen, priv, CTX, CTXLEN, cek, &e) == 0 &&
	          memcmp(cek, test_cek, 32) == 0, msg);
	memset(cek, 0, 32);
	CHECK(wrap_unwrap(b, blen, priv, CTX, CTXLEN, cek, NULL) == 0 && memcmp(cek, test_cek, 32) == 0);
	free(a);
	free(b);
	EVP_PKEY_free(pub);
}

static void test_roundtrips(void)
{
	uint8_t *blob = NULL, cek[32];
	size_t len = 0;

	roundtrip("P-256", r256, WRAP_ECDH_P256);
	roundtrip("P-384", r384, WRAP_ECDH_P384);
	roundtrip("RSA-3072", rsa3072, WRAP_RSA_OAEP);
	/* an empty context is a context too */
	CHECK(wrap_cek(r256, test_cek, NULL, 0, &blob, &len, NULL) == 0);
	CHECK(wrap_unwrap(blob, len, r256, NULL, 0, cek, NULL) == 0 && memcmp(cek, test_cek, 32) == 0);
	CHECK_MSG(wrap_unwrap(blob, len, r256, CTX, CTXLEN, cek, NULL) == SBX_EVERIFY,
	          "blob made with an empty context refused under another");
	free(blob);
}

static void test_rsa(void)
{
	EVP_PKEY *pub = public_only(rsa3072);
	uint8_t *blob = NULL, label[600], pt[512], ct[512], m[600], cek[32];
	size_t len = 0, llen = ref_label(WRAP_RSA_OAEP, CTX, CTXLEN, label), n, ml;
	struct sbx_err e = { 0 };

	CHECK(wrap_cek(pub, test_cek, CTX, CTXLEN, &blob, &len, NULL) == 0);
	CHECK_MSG(len == 10 + 384, "RSA-3072 blob is header + 384-byte ciphertext");
	n = ref_rsa(0, rsa3072, RSA_PKCS1_OAEP_PADDING, "SHA256", label, llen, blob + 10, len - 10, pt);
	CHECK_MSG(n == 32 && memcmp(pt, test_cek, 32) == 0,
	          "RSA: raw EVP OAEP-SHA256 with the documented label decrypts the blob");
	n = ref_rsa(0, rsa3072, RSA_PKCS1_OAEP_PADDING, "SHA256", label, 16, blob + 10, len - 10, pt);
	CHECK_MSG(n == 0, "RSA: the label really contains the context");
	n = ref_rsa(1, pub, RSA_PKCS1_OAEP_PADDING, "SHA256", label, llen, test_cek, 32, ct);
	ml = rsa_blob(ct, n, m);
	memset(cek, 0, 32);
	CHECK_MSG(n == 384 && wrap_unwrap(m, ml, rsa3072, CTX, CTXLEN, cek, NULL) == 0 &&
	          memcmp(cek, test_cek, 32) == 0, "RSA: a raw EVP OAEP blob unwraps");
	memset(cek, 0xaa, 32);
	n = ref_rsa(1, pub, RSA_PKCS1_PADDING, NULL, NULL, 0, test_cek, 32, ct);
	ml = rsa_blob(ct, n, m);
	CHECK_MSG(n == 384 && wrap_unwrap(m, ml, rsa3072, CTX, CTXLEN, cek, &e) == SBX_EVERIFY &&
	          cek_is(cek, 0xaa), "RSA: PKCS#1 v1.5 ciphertext refused");
	printf("# %s\n", e.msg);
	n = ref_rsa(1, pub, RSA_PKCS1_OAEP_PADDING, "SHA1", label, llen, test_cek, 32, ct);
	ml = rsa_blob(ct, n, m);
	CHECK_MSG(n == 384 && wrap_unwrap(m, ml, rsa3072, CTX, CTXLEN, cek, NULL) == SBX_EVERIFY &&
	          cek_is(cek, 0xaa), "RSA: OAEP with SHA-1 refused");
	n = ref_rsa(1, pub, RSA_PKCS1_OAEP_PADDING, "SHA256", label, llen, test_cek, 31, ct);
	ml = rsa_blob(ct, n, m);
	CHECK_MSG(n == 384 && wrap_unwrap(m, ml, rsa3072, CTX, CTXLEN, cek, NULL) == SBX_EVERIFY &&
	          cek_is(cek, 0xaa), "RSA: a 31-byte key inside valid OAEP refused");
	free(blob);
	EVP_PKEY_free(pub);
}

static void test_refusals(void)
{
	uint8_t *blob = NULL, cek[32], ct[512], m[600], label[600];
	size_t len = 0, n, ml, llen;
	struct sbx_err e = { 0 };
	EVP_PKEY *k;
	int alg = 0;

	CHECK_MSG(wrap_cek(rsa2048, test_cek, CTX, CTXLEN, &blob, &len, &e) == SBX_EPOLICY &&
	          blob == NULL, "RSA-2048: wrap refused");
	printf("# %s\n", e.msg);
	/* a blob for a 2048-bit key is malformed, and the key is refused anyway */
	llen = ref_label(WRAP_RSA_OAEP, CTX, CTXLEN, label);
	n = ref_rsa(1, rsa2048, RSA_PKCS1_OAEP_PADDING, "SHA256", label, llen, test_cek, 32, ct);
	ml = rsa_blob(ct, n, m);
	memset(cek, 0xaa, 32);
	CHECK_MSG(wrap_unwrap(m, ml, rsa2048, CTX, CTXLEN, cek, NULL) == SBX_EPOLICY && cek_is(cek, 0xaa),
	          "RSA-2048: unwrap refused");
	CHECK(wrap_parse(m, ml, &(struct wrap_blob){ 0 }, NULL) == SBX_EFORMAT);

	{
		static const char *const bad[][2] = {
			{ "EC", "P-521" }, { "EC", "secp256k1" }, { "X25519", NULL }, { "ED25519", NULL },
		};

		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			char msg[64];

			k = bad[i][1] ? EVP_PKEY_Q_keygen(NULL, NULL, bad[i][0], bad[i][1])
			              : EVP_PKEY_Q_keygen(NULL, NULL, bad[i][0]);
			snprintf(msg, sizeof msg, "%s %s refused", bad[i][0], bad[i][1] ? bad[i][1] : "");
			CHECK_MSG(k != NULL && wrap_key_alg(k, &alg, NULL) == SBX_EPOLICY &&
			          wrap_cek(k, test_cek, NULL, 0, &blob, &len, NULL) == SBX_EPOLICY, msg);
			EVP_PKEY_free(k);
		}
	}
	k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA-PSS", (size_t)3072);
	CHECK_MSG(k == NULL || wrap_key_alg(k, &alg, NULL) == SBX_EPOLICY, "RSA-PSS key refused");
	EVP_PKEY_free(k);
	CHECK(wrap_key_alg(NULL, &alg, NULL) == SBX_EINVAL);
	{
		uint8_t big[WRAP_MAX_CONTEXT + 1] = { 0 };

		CHECK_MSG(wrap_cek(r256, test_cek, big, sizeof big, &blob, &len, NULL) == SBX_EINVAL,
		          "context above the limit refused");
		CHECK(wrap_cek(r256, test_cek, big, WRAP_MAX_CONTEXT, &blob, &len, NULL) == 0);
		CHECK(wrap_unwrap(blob, len, r256, big, WRAP_MAX_CONTEXT, cek, NULL) == 0);
		free(blob);
	}
	CHECK_MSG(wrap_cek_ephemeral(r256, e384, test_cek, NULL, 0, &blob, &len, NULL) == SBX_EINVAL,
	          "ephemeral key on another curve refused");
}

static void test_wrong(void)
{
	struct { const char *name; EVP_PKEY *k; EVP_PKEY *wrong[3]; } cases[] = {
		{ "P-256", NULL, { NULL } }, { "P-384", NULL, { NULL } }, { "RSA", NULL, { NULL } },
	};

	cases[0].k = r256; cases[0].wrong[0] = other256; cases[0].wrong[1] = r384; cases[0].wrong[2] = rsa3072;
	cases[1].k = r384; cases[1].wrong[0] = e384; cases[1].wrong[1] = r256; cases[1].wrong[2] = rsa3072;
	cases[2].k = rsa3072; cases[2].wrong[0] = rsa3072b; cases[2].wrong[1] = r256; cases[2].wrong[2] = r384;
	for (size_t i = 0; i < 3; i++) {
		uint8_t *blob = NULL, cek[32];
		size_t len = 0;
		struct sbx_err e = { 0 };
		char msg[96];
		int ok = 1;

		CHECK(wrap_cek(cases[i].k, test_cek, CTX, CTXLEN, &blob, &len, NULL) == 0);
		memset(cek, 0xaa, 32);
		for (int w = 0; w < 3; w++)
			ok &= wrap_unwrap(blob, len, cases[i].wrong[w], CTX, CTXLEN, cek, NULL) == SBX_EVERIFY;
		snprintf(msg, sizeof msg, "%s: wrong recipients (same type, other types) refused", cases[i].name);
		CHECK_MSG(ok && cek_is(cek, 0xaa), msg);
		ok = wrap_unwrap(blob, len, cases[i].k, CTX, CTXLEN - 1, cek, &e) == SBX_EVERIFY &&
		     wrap_unwrap(blob, len, cases[i].k, NULL, 0, cek, NULL) == SBX_EVERIFY &&
		     wrap_unwrap(blob, len, cases[i].k, (const uint8_t *)"bundle=0123abcd;recipient=fedc9877",
		                 CTXLEN, cek, NULL) == SBX_EVERIFY;
		printf("# %s\n", e.msg);
		snprintf(msg, sizeof msg, "%s: wrong context refused", cases[i].name);
		CHECK_MSG(ok && cek_is(cek, 0xaa), msg);
		free(blob);
	}
}

static void test_callback(void)
{
	struct fake_tpm t = { 0 };
	EVP_PKEY *pub256 = public_only(r256), *pub384 = public_only(r384);
	uint8_t *blob = NULL, cek[32], cek2[32];
	size_t len = 0;
	struct wrap_blob wb;
	int tries = 0, bad = 0;

	t.priv = r256;
	CHECK(wrap_cek(pub256, test_cek, CTX, CTXLEN, &blob, &len, NULL) == 0);
	memset(cek, 0, 32);
	memset(cek2, 0, 32);
	CHECK_MSG(wrap_unwrap_ecdh(blob, len, pub256, fake_ecdh, &t, CTX, CTXLEN, cek, NULL) == 0 &&
	          wrap_unwrap(blob, len, r256, CTX, CTXLEN, cek2, NULL) == 0 &&
	          memcmp(cek, test_cek, 32) == 0 && memcmp(cek2, cek, 32) == 0,
	          "P-256: callback ECDH unwraps the same key as the software key");
	CHECK(wrap_parse(blob, len, &wb, NULL) == 0);
	CHECK_MSG(t.calls == 1 && t.seenlen == 65 && memcmp(t.seen, wb.epk, 65) == 0,
	          "callback called once with the blob's ephemeral point");
	t.fail = 1;
	memset(cek, 0xaa, 32);
	CHECK_MSG(wrap_unwrap_ecdh(blob, len, pub256, fake_ecdh, &t, CTX, CTXLEN, cek, NULL) == SBX_ETPM &&
	          cek_is(cek, 0xaa), "callback failure returned as is, nothing written");
	t.fail = 0;
	t.garbage = 1;
	CHECK_MSG(wrap_unwrap_ecdh(blob, len, pub256, fake_ecdh, &t, CTX, CTXLEN, cek, NULL) == SBX_EVERIFY &&
	          cek_is(cek, 0xaa), "wrong shared secret from the callback refused");
	t.garbage = 0;
	CHECK_MSG(wrap_unwrap_ecdh(blob, len, pub384, fake_ecdh, &t, CTX, CTXLEN, cek, NULL) == SBX_EVERIFY,
	          "callback with the wrong public key refused");
	CHECK(wrap_unwrap_ecdh(blob, len, pub256, NULL, NULL, CTX, CTXLEN, cek, NULL) == SBX_EINVAL);
	free(blob);

	/* A shared X with a leading zero byte, returned short by the "TPM":
	 * about one wrap in 256. */
	t.strip = 1;
	t.stripped = 0;
	while (!t.stripped && tries < 20000) {
		tries++;
		memset(cek, 0, 32);
		if (wrap_cek(pub256, test_cek, CTX, CTXLEN, &blob, &len, NULL) != 0 ||
		    wrap_unwrap_ecdh(blob, len, pub256, fake_ecdh, &t, CTX, CTXLEN, cek, NULL) != 0 ||
		    memcmp(cek, test_cek, 32) != 0)
			bad++;
		free(blob);
		blob = NULL;
	}
	printf("# short shared X after %d wraps\n", tries);
	CHECK_MSG(t.stripped && bad == 0, "a short shared X from the callback is left-padded");
	t.strip = 0;

	t.priv = r384;
	CHECK(wrap_cek(pub384, test_cek, CTX, CTXLEN, &blob, &len, NULL) == 0);
	memset(cek, 0, 32);
	CHECK_MSG(wrap_unwrap_ecdh(blob, len, pub384, fake_ecdh, &t, CTX, CTXLEN, cek, NULL) == 0 &&
	          memcmp(cek, test_cek, 32) == 0, "P-384: callback ECDH unwraps");
	free(blob);
	CHECK(wrap_cek(rsa3072, test_cek, CTX, CTXLEN, &blob, &len, NULL) == 0);
	CHECK_MSG(wrap_unwrap_ecdh(blob, len, rsa3072, fake_ecdh, &t, CTX, CTXLEN, cek, NULL) == SBX_EINVAL,
	          "callback refuses an RSA blob");
	free(blob);
	EVP_PKEY_free(pub256);
	EVP_PKEY_free(pub384);
}

/* Flips `bits` bits of every byte (8: all of them; RSA uses 1, a
 * different bit per byte, to keep the test fast). */
static void flip_all(const char *name, EVP_PKEY *priv, int use_cb, int bits)
{
	EVP_PKEY *pub = public_only(priv);
	struct fake_tpm t = { .priv = priv };
	uint8_t *blob = NULL, cek[32];
	size_t len = 0;
	int accepted = 0, written = 0, codes_bad = 0, total = 0;
	char msg[128];

	CHECK(wrap_cek(pub, test_cek, CTX, CTXLEN, &blob, &len, NULL) == 0);
	for (size_t i = 0; i < len; i++) {
		for (int k = 0; k < bits; k++) {
			int bit = (int)((i + (size_t)k) % 8), r;

			blob[i] ^= (uint8_t)(1u << bit);
			memset(cek, 0xaa, 32);
			r = use_cb ? wrap_unwrap_ecdh(blob, len, pub, fake_ecdh, &t, CTX, CTXLEN, cek, NULL)
			           : wrap_unwrap(blob, len, priv, CTX, CTXLEN, cek, NULL);
			blob[i] ^= (uint8_t)(1u << bit);
			total++;
			if (r == 0)
				accepted++;
			if (!cek_is(cek, 0xaa))
				written++;
			if (r != SBX_EVERIFY && r != SBX_EFORMAT)
				codes_bad++;
		}
	}
	printf("# %s: %d single-bit flips\n", name, total);
	snprintf(msg, sizeof msg, "%s: every bit of the blob flipped: all refused, nothing written", name);
	CHECK_MSG(accepted == 0 && written == 0 && codes_bad == 0, msg);
	if (use_cb) {
		snprintf(msg, sizeof msg, "%s: the callback never saw a point off the curve", name);
		CHECK_MSG(t.offcurve_seen == 0, msg);
	}
	/* every truncation, and one trailing byte */
	codes_bad = 0;
	for (size_t L = 0; L < len; L++)
		if (wrap_unwrap(blob, L, priv, CTX, CTXLEN, cek, NULL) != SBX_EFORMAT)
			codes_bad++;
	{
		uint8_t *longer = malloc(len + 1);

		memcpy(longer, blob, len);
		longer[len] = 0;
		if (wrap_unwrap(longer, len + 1, priv, CTX, CTXLEN, cek, NULL) != SBX_EFORMAT)
			codes_bad++;
		free(longer);
	}
	snprintf(msg, sizeof msg, "%s: every truncation and a trailing byte: SBX_EFORMAT", name);
	CHECK_MSG(codes_bad == 0 && cek_is(cek, 0xaa), msg);
	free(blob);
	EVP_PKEY_free(pub);
}

static void test_points(void)
{
	uint8_t *blob = NULL, *m, cek[32];
	size_t len = 0;
	struct fake_tpm t = { .priv = r256 };
	struct sbx_err e = { 0 };

	CHECK(wrap_cek(r256, test_cek, CTX, CTXLEN, &blob, &len, NULL) == 0);
	m = malloc(len);
	memcpy(m, blob, len);
	m[10 + 64] ^= 1;        /* last byte of Y */
	CHECK_MSG(wrap_unwrap_ecdh(m, len, r256, fake_ecdh, &t, CTX, CTXLEN, cek, &e) == SBX_EFORMAT &&
	          t.calls == 0, "point off the curve refused before the callback runs");
	printf("# %s\n", e.msg);
	memcpy(m, blob, len);
	memset(m + 11, 0, 64);
	CHECK_MSG(wrap_unwrap(m, len, r256, CTX, CTXLEN, cek, NULL) == SBX_EFORMAT, "zero point refused");
	memcpy(m, blob, len);
	m[10] = 0x02;
	CHECK_MSG(wrap_unwrap(m, len, r256, CTX, CTXLEN, cek, NULL) == SBX_EFORMAT,
	          "non-uncompressed point encoding refused");
	memcpy(m, blob, len);
	m[4] = 2;
	CHECK_MSG(wrap_parse(m, len, &(struct wrap_blob){ 0 }, NULL) == SBX_EFORMAT, "version 2 refused");
	memcpy(m, blob, len);
	m[5] = 4;
	CHECK_MSG(wrap_parse(m, len, &(struct wrap_blob){ 0 }, NULL) == SBX_EFORMAT, "unknown algorithm refused");
	free(m);
	free(blob);
}

static void test_fingerprints(void)
{
	X509 *x = X509_new();
	X509_NAME *nm;
	unsigned char *der = NULL;
	uint8_t fp[32], want[32];
	int n;

	n = i2d_PUBKEY(r256, &der);
	hash_sha256(der, (size_t)n, want);
	OPENSSL_free(der);
	der = NULL;
	CHECK_MSG(x509fp_spki(r256, fp) == 0 && memcmp(fp, want, 32) == 0,
	          "SPKI fingerprint = SHA-256 of the DER SubjectPublicKeyInfo");
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, r256);
	nm = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"test", -1, -1, 0);
	X509_set_issuer_name(x, nm);
	CHECK(X509_sign(x, r256, EVP_sha256()) > 0);
	n = i2d_X509(x, &der);
	hash_sha256(der, (size_t)n, want);
	OPENSSL_free(der);
	CHECK_MSG(x509fp_cert(x, fp) == 0 && memcmp(fp, want, 32) == 0,
	          "certificate fingerprint = SHA-256 of the DER certificate");
	CHECK(x509fp_cert(NULL, fp) == SBX_EINVAL);
	X509_free(x);
}

int main(void)
{
	r256 = load_pem(pem_r256);
	e256 = load_pem(pem_e256);
	r384 = load_pem(pem_r384);
	e384 = load_pem(pem_e384);
	rsa3072 = load_pem(pem_rsa3072);
	rsa3072b = load_pem(pem_rsa3072b);
	rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	other256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (!CHECK_MSG(r256 && e256 && r384 && e384 && rsa3072 && rsa3072b && rsa2048 && other256,
	               "test keys load"))
		return check_done();

	test_kat();
	test_roundtrips();
	test_rsa();
	test_refusals();
	test_wrong();
	test_callback();
	flip_all("P-256", r256, 0, 8);
	flip_all("P-256 callback", r256, 1, 8);
	flip_all("P-384", r384, 0, 8);
	flip_all("RSA-3072", rsa3072, 0, 1);
	test_points();
	test_fingerprints();

	EVP_PKEY_free(r256);
	EVP_PKEY_free(e256);
	EVP_PKEY_free(r384);
	EVP_PKEY_free(e384);
	EVP_PKEY_free(rsa3072);
	EVP_PKEY_free(rsa3072b);
	EVP_PKEY_free(rsa2048);
	EVP_PKEY_free(other256);
	return check_done();
}

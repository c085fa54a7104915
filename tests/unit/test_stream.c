/* Chunked AEAD stream: known answers re-derived here from the written
 * construction with raw EVP calls (HKDF through EVP_KDF, AES-GCM and
 * ChaCha20-Poly1305 per chunk), round trips at the chunk-size edges with
 * every way of splitting the input, and every attack the format must stop:
 * truncation at every length, reordered, duplicated, dropped and appended
 * chunks, a final flag on an earlier chunk, an empty final chunk, every
 * bit of a 3-chunk stream flipped, wrong key, wrong context, bad header,
 * counter limit, failing callbacks.  Both suites; with and without the
 * pipelined encryptor.
 *
 * SBX_BENCH_MB=N also measures throughput over N MiB (not run by default). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "crypto/err.h"
#include "crypto/hash.h"
#include "crypto/kdf.h"
#include "crypto/stream.h"
#include "tests/unit/check.h"

/* ---- growable buffer as emit target ------------------------------------- */

struct buf {
	uint8_t *p;
	size_t len, cap;
	int calls;
	int fail_at;            /* fail the n-th call (1-based) with SBX_EIO; 0 never */
};

static int buf_put(void *arg, const uint8_t *b, size_t n)
{
	struct buf *o = arg;

	o->calls++;
	if (o->fail_at != 0 && o->calls == o->fail_at)
		return SBX_EIO;
	if (o->len + n > o->cap) {
		size_t cap = o->cap ? o->cap : 1024;
		uint8_t *np;

		while (cap < o->len + n)
			cap *= 2;
		np = realloc(o->p, cap);
		if (np == NULL)
			return SBX_ENOMEM;
		o->p = np;
		o->cap = cap;
	}
	memcpy(o->p + o->len, b, n);
	o->len += n;
	return 0;
}

static void buf_free(struct buf *o)
{
	free(o->p);
	memset(o, 0, sizeof *o);
}

static const uint8_t test_key[32] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};
static const uint8_t test_salt[32] = {
	0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f,
	0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f,
};
static const char test_ad[] = "sealbox-kat-context";

static uint8_t *pattern(size_t n, unsigned seed)
{
	uint8_t *p = malloc(n ? n : 1);

	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + 3 + seed * 131 + (i >> 8));
	return p;
}

/* Encrypts pt pushing `step` bytes at a time (0: all at once). */
static int enc_buf(int suite, const uint8_t *key, const uint8_t *salt,
                   const void *ad, size_t adlen, const struct stream_params *p,
                   const uint8_t *pt, size_t len, size_t step, struct buf *out)
{
	struct stream_enc *s = NULL;
	struct sbx_err e = { 0 };
	int r;

	r = stream_enc_new(suite, key, salt, ad, adlen, p, buf_put, out, &s, &e);
	for (size_t off = 0; r == 0 && off < len; ) {
		size_t n = step == 0 || step > len - off ? len - off : step;

		r = stream_enc_push(s, pt + off, n, &e);
		off += n;
	}
	if (r == 0)
		r = stream_enc_final(s, &e);
	stream_enc_free(s);
	return r;
}

static int dec_buf_msg(const uint8_t *key, const void *ad, size_t adlen,
                       const struct stream_params *p, const uint8_t *ct, size_t len,
                       size_t step, struct buf *out, struct sbx_err *e)
{
	struct stream_dec *d = NULL;
	int r;

	r = stream_dec_new(key, ad, adlen, p, buf_put, out, &d, e);
	for (size_t off = 0; r == 0 && off < len; ) {
		size_t n = step == 0 || step > len - off ? len - off : step;

		r = stream_dec_push(d, ct + off, n, e);
		off += n;
	}
	if (r == 0)
		r = stream_dec_final(d, e);
	stream_dec_free(d);
	return r;
}

static int dec_buf(const uint8_t *key, const void *ad, size_t adlen,
                   const struct stream_params *p, const uint8_t *ct, size_t len,
                   size_t step, struct buf *out)
{
	struct sbx_err e = { 0 };

	return dec_buf_msg(key, ad, adlen, p, ct, len, step, out, &e);
}

/* ---- the construction, written again from docs/CRYPTO.md --------------- */

static int ref_hkdf(const uint8_t *ikm, size_t ikmlen, const uint8_t *salt, size_t saltlen,
                    const uint8_t *info, size_t infolen, uint8_t *out, size_t outlen)
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
	ok = c != NULL && EVP_KDF_derive(c, out, outlen, ps) == 1;
	EVP_KDF_CTX_free(c);
	EVP_KDF_free(k);
	return ok;
}

/* Seals one chunk with an explicit counter and flag (also used to forge
 * well-keyed streams of the wrong shape). */
static size_t ref_chunk(int suite, const uint8_t skey[32], uint64_t ctr, int final,
                        const void *ad, size_t adlen, const uint8_t *pt, size_t len,
                        uint8_t *out)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	const EVP_CIPHER *ciph = suite == STREAM_AES256GCM ? EVP_aes_256_gcm()
	                                                   : EVP_chacha20_poly1305();
	uint8_t nonce[12] = { 0 };
	int n = 0, ok;

	for (int i = 0; i < 8; i++)
		nonce[10 - i] = (uint8_t)(ctr >> (8 * i));
	nonce[11] = (uint8_t)final;
	ok = c != NULL && EVP_EncryptInit_ex(c, ciph, NULL, skey, nonce) == 1 &&
	     EVP_EncryptUpdate(c, NULL, &n, ad, (int)adlen) == 1 &&
	     (len == 0 || EVP_EncryptUpdate(c, out, &n, pt, (int)len) == 1) &&
	     EVP_EncryptFinal_ex(c, out + len, &n) == 1 &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, out + len) == 1;
	EVP_CIPHER_CTX_free(c);
	return ok ? len + 16 : 0;
}

static void ref_header(int suite, unsigned shift, const uint8_t salt[32], uint8_t h[40])
{
	memcpy(h, "SBXS", 4);
	h[4] = 1;
	h[5] = (uint8_t)suite;
	h[6] = (uint8_t)shift;
	h[7] = 0;
	memcpy(h + 8, salt, 32);
}

static int ref_key(const uint8_t cek[32], const uint8_t h[40], uint8_t skey[32])
{
	uint8_t info[18 + 8];

	memcpy(info, "sealbox-stream-v1", 18);   /* 17 characters and the NUL */
	memcpy(info + 18, h, 8);
	return ref_hkdf(cek, 32, h + 8, 32, info, sizeof info, skey, 32);
}

/* The whole stream; out must hold the ciphertext size. */
static size_t ref_stream(int suite, const uint8_t cek[32], const uint8_t salt[32],
                         unsigned shift, const void *ad, size_t adlen,
                         const uint8_t *pt, size_t len, uint8_t *out)
{
	size_t chunk = (size_t)1 << shift, o = 40, off = 0;
	uint8_t skey[32];
	uint64_t ctr = 0;

	ref_header(suite, shift, salt, out);
	if (!ref_key(cek, out, skey))
		return 0;
	do {
		size_t n = len - off > chunk ? chunk : len - off;
		int final = off + n == len;

		o += ref_chunk(suite, skey, ctr++, final, ad, adlen, pt + off, n, out + o);
		off += n;
	} while (off < len);
	return o;
}

/* SHA-256 of the known-answer ciphertexts below. */
#define KAT_GCM_SMALL    "f4fe6830736b1d562affcb262c6e490ba30243d30a1b914351b836d861998097"
#define KAT_CHACHA_SMALL "eb8b6b235786fc39364fb3989b214bbba6b9582780e4eb317c294b064897ae71"
#define KAT_GCM_LARGE    "983131cf52758fb9abc19316448d3d99ac407d564c0040944e4c9213b0d69468"

static void hex(const uint8_t *b, size_t n, char *out)
{
	hash_hex(b, n, out);
}

/* ---- tests -------------------------------------------------------------- */

static void test_hkdf(void)
{
	/* RFC 5869 A.1 and A.3. */
	uint8_t ikm[22], salt[13], info[10], okm[42];
	char h[85];

	memset(ikm, 0x0b, sizeof ikm);
	for (int i = 0; i < 13; i++)
		salt[i] = (uint8_t)i;
	for (int i = 0; i < 10; i++)
		info[i] = (uint8_t)(0xf0 + i);
	CHECK(kdf_hkdf_sha256(ikm, 22, salt, 13, info, 10, okm, 42) == 0);
	hex(okm, 42, h);
	CHECK_MSG(strcmp(h, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
	                    "34007208d5b887185865") == 0, "HKDF: RFC 5869 A.1");
	CHECK(kdf_hkdf_sha256(ikm, 22, NULL, 0, NULL, 0, okm, 42) == 0);
	hex(okm, 42, h);
	CHECK_MSG(strcmp(h, "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
	                    "9d201395faa4b61a96c8") == 0, "HKDF: RFC 5869 A.3 (no salt, no info)");
	CHECK(kdf_hkdf_sha256(ikm, 22, NULL, 0, NULL, 0, okm, 0) == SBX_EINVAL);
	CHECK(kdf_hkdf_sha256(NULL, 0, NULL, 0, NULL, 0, okm, 32) == SBX_EINVAL);
}

static void test_kat(void)
{
	/* Computed once with this module and checked against ref_stream (an
	 * independent implementation of the written construction). */
	static const char kat_small[] =
	    "5342585301010600808182838485868788898a8b8c8d8e8f90919293949596979899"
	    "9a9b9c9d9e9f";
	struct stream_params p6 = { .chunk_shift = 6 };
	uint8_t *pt = pattern(150, 0), *ref = malloc(1 << 18);
	struct buf ct = { 0 };
	uint8_t digest[32];
	char h[2 * 512 + 1];
	size_t rlen;
	uint64_t want;

	/* 150 bytes in 64-byte chunks: 64 + 64 + 22 (final). */
	CHECK(enc_buf(STREAM_AES256GCM, test_key, test_salt, test_ad, strlen(test_ad), &p6,
	              pt, 150, 0, &ct) == 0);
	rlen = ref_stream(STREAM_AES256GCM, test_key, test_salt, 6, test_ad, strlen(test_ad),
	                  pt, 150, ref);
	CHECK_MSG(rlen == 40 + 150 + 3 * 16 && ct.len == rlen && memcmp(ct.p, ref, rlen) == 0,
	          "KAT AES-GCM 3 chunks: module == independent EVP derivation");
	hex(ct.p, ct.len < 40 ? ct.len : 40, h);
	CHECK_MSG(strcmp(h, kat_small) == 0, "KAT header bytes");
	hash_sha256(ct.p, ct.len, digest);
	hex(digest, 32, h);
	printf("# kat gcm/6/150 sha256 %s\n", h);
	CHECK_MSG(strcmp(h, KAT_GCM_SMALL) == 0, "KAT AES-GCM 3 chunks: ciphertext hash");
	buf_free(&ct);

	CHECK(enc_buf(STREAM_CHACHA20POLY1305, test_key, test_salt, test_ad, strlen(test_ad),
	              &p6, pt, 150, 0, &ct) == 0);
	rlen = ref_stream(STREAM_CHACHA20POLY1305, test_key, test_salt, 6, test_ad,
	                  strlen(test_ad), pt, 150, ref);
	CHECK_MSG(ct.len == rlen && memcmp(ct.p, ref, rlen) == 0,
	          "KAT ChaCha20-Poly1305 3 chunks: module == independent EVP derivation");
	hash_sha256(ct.p, ct.len, digest);
	hex(digest, 32, h);
	printf("# kat chacha/6/150 sha256 %s\n", h);
	CHECK_MSG(strcmp(h, KAT_CHACHA_SMALL) == 0, "KAT ChaCha20-Poly1305: ciphertext hash");
	buf_free(&ct);
	free(pt);

	/* Production chunk size: 64 KiB + 100 bytes, two chunks. */
	pt = pattern(65536 + 100, 1);
	CHECK(enc_buf(STREAM_AES256GCM, test_key, test_salt, test_ad, strlen(test_ad), NULL,
	              pt, 65536 + 100, 4096, &ct) == 0);
	rlen = ref_stream(STREAM_AES256GCM, test_key, test_salt, 16, test_ad, strlen(test_ad),
	                  pt, 65536 + 100, ref);
	CHECK_MSG(ct.len == rlen && memcmp(ct.p, ref, rlen) == 0,
	          "KAT AES-GCM 64 KiB chunks: module == independent EVP derivation");
	CHECK(stream_ciphertext_size(65536 + 100, NULL, &want) == 0 && want == ct.len);
	hash_sha256(ct.p, ct.len, digest);
	hex(digest, 32, h);
	printf("# kat gcm/16/65636 sha256 %s\n", h);
	CHECK_MSG(strcmp(h, KAT_GCM_LARGE) == 0, "KAT AES-GCM 64 KiB chunks: ciphertext hash");
	buf_free(&ct);

	/* Empty plaintext: one empty final chunk, 40 + 16 bytes. */
	CHECK(enc_buf(STREAM_AES256GCM, test_key, test_salt, NULL, 0, NULL, pt, 0, 0, &ct) == 0);
	rlen = ref_stream(STREAM_AES256GCM, test_key, test_salt, 16, NULL, 0, pt, 0, ref);
	CHECK_MSG(ct.len == 56 && rlen == 56 && memcmp(ct.p, ref, 56) == 0,
	          "KAT empty plaintext: header and one empty final chunk");
	buf_free(&ct);
	free(pt);
	free(ref);
}

static void test_roundtrips(void)
{
	static const unsigned shifts[] = { 4, 16 };
	static const int suites[] = { STREAM_AES256GCM, STREAM_CHACHA20POLY1305 };
	int bad = 0, n = 0;

	for (size_t si = 0; si < 2; si++) {
		size_t c = (size_t)1 << shifts[si];
		/* the pipelined writer works in slots of 16 chunks */
		size_t sizes[] = { 0, 1, c - 1, c, c + 1, 2 * c, 10 * c + 7,
		                   16 * c, 16 * c + 1, 48 * c, 50 * c + 3 };

		for (size_t zi = 0; zi < sizeof sizes / sizeof sizes[0]; zi++) {
			size_t len = sizes[zi];
			size_t steps[] = { 0, 1, 7, c - 1, c, c + 1, c + 16, c + 17, 3 * c + 5 };
			uint8_t *pt = pattern(len, (unsigned)zi);
			uint8_t *ref[2];
			size_t reflen[2];

			for (size_t ui = 0; ui < 2; ui++) {
				ref[ui] = malloc(len + 40 + 16 * (len / c + 1));
				reflen[ui] = ref_stream(suites[ui], test_key, test_salt, shifts[si],
				                        "ad", 2, pt, len, ref[ui]);
			}
			for (size_t ui = 0; ui < 2; ui++)
			for (int pipe = 0; pipe <= 1; pipe++)
			for (size_t ti = 0; ti < sizeof steps / sizeof steps[0]; ti++) {
				struct stream_params p = { .chunk_shift = shifts[si], .pipeline = pipe };
				struct stream_params dp = { .chunk_shift = shifts[si] };
				struct buf ct = { 0 }, out = { 0 };
				uint64_t want = 0, back = 0;
				size_t step = steps[ti];
				int ok;

				/* Small pushes over megabytes are slow and add nothing
				 * the 16-byte chunks do not already cover. */
				if (shifts[si] == 16 && step != 0 && step < 64)
					continue;
				if (shifts[si] == 16 && len > 2 * c && step != 0 && step != 3 * c + 5)
					continue;
				ok = enc_buf(suites[ui], test_key, test_salt, "ad", 2, &p, pt, len, step, &ct) == 0 &&
				     ct.len == reflen[ui] && memcmp(ct.p, ref[ui], ct.len) == 0 &&
				     stream_ciphertext_size(len, &dp, &want) == 0 && want == ct.len &&
				     stream_plaintext_size(ct.len, &dp, &back) == 0 && back == len &&
				     dec_buf(test_key, "ad", 2, &dp, ct.p, ct.len, steps[(ti + 3) % 9], &out) == 0 &&
				     out.len == len && (len == 0 || memcmp(out.p, pt, len) == 0);
				if (!ok) {
					bad++;
					printf("# round trip failed: shift %u size %zu suite %d pipe %d step %zu\n",
					       shifts[si], len, suites[ui], pipe, step);
				}
				n++;
				buf_free(&ct);
				buf_free(&out);
			}
			free(ref[0]);
			free(ref[1]);
			free(pt);
		}
	}
	printf("# %d round trips\n", n);
	CHECK_MSG(bad == 0, "round trips: sizes 0, 1, c-1, c, c+1, 2c, 10c+7, 16c, 16c+1, 48c, "
	          "50c+3; both suites; pipelined and not; many push splits; ciphertext equals the "
	          "reference construction byte for byte");
}

static void test_sizes(void)
{
	struct stream_params p4 = { .chunk_shift = 4 };
	uint64_t v = 0;
	int bad = 0;

	/* Every ciphertext length up to 12 chunks: valid exactly when some
	 * plaintext length maps to it. */
	for (uint64_t L = 0; L < 40 + 12 * 32; L++) {
		int r = stream_plaintext_size(L, &p4, &v);
		uint64_t back = 0;

		if (r == 0 && (stream_ciphertext_size(v, &p4, &back) != 0 || back != L))
			bad++;
		if (r != 0 && r != SBX_EFORMAT)
			bad++;
	}
	for (uint64_t n = 0; n < 12 * 16; n++) {
		uint64_t ct = 0;

		if (stream_ciphertext_size(n, &p4, &ct) != 0 ||
		    stream_plaintext_size(ct, &p4, &v) != 0 || v != n)
			bad++;
	}
	CHECK_MSG(bad == 0, "ciphertext/plaintext size functions are exact inverses");
	CHECK(stream_plaintext_size(40 + 16 + 16, &p4, &v) == 0 && v == 16);
	CHECK_MSG(stream_plaintext_size(40 + 32 + 16, &p4, &v) == SBX_EFORMAT,
	          "size with an empty chunk after a full one is impossible");
	CHECK(stream_plaintext_size(55, NULL, &v) == SBX_EFORMAT);
	CHECK(stream_ciphertext_size(UINT64_MAX, NULL, &v) == SBX_EINVAL);
	CHECK(stream_ciphertext_size(0, &(struct stream_params){ .chunk_shift = 3 }, &v) == SBX_EINVAL);
	CHECK_MSG(stream_ciphertext_size(0, &(struct stream_params){
	                                     .max_chunks = STREAM_MAX_CHUNKS + 1 }, &v) == SBX_EINVAL,
	          "the chunk limit can be lowered, never raised");
}

/* Small stream for the attack tests: shift 4 (16-byte chunks). */
#define A_SHIFT 4
#define A_CHUNK 16
#define A_CT    (A_CHUNK + 16)

static const struct stream_params a_params = { .chunk_shift = A_SHIFT };

static int rejects(const uint8_t *ct, size_t len, size_t step)
{
	struct buf out = { 0 };
	int r = dec_buf(test_key, "ad", 2, &a_params, ct, len, step, &out);

	buf_free(&out);
	return r != 0;
}

static void test_truncation(void)
{
	size_t len = 10 * A_CHUNK + 7;
	uint8_t *pt = pattern(len, 9);
	struct buf ct = { 0 };
	int bad = 0, boundary_bad = 0;

	CHECK(enc_buf(STREAM_AES256GCM, test_key, NULL, "ad", 2, &a_params, pt, len, 0, &ct) == 0);
	for (size_t L = 0; L < ct.len; L++) {
		struct buf out = { 0 };
		struct sbx_err e = { 0 };
		int r = dec_buf_msg(test_key, "ad", 2, &a_params, ct.p, L, 5, &out, &e);

		if (r != SBX_EVERIFY)
			bad++;
		/* Cut after k whole chunks: chunks 0..k-2 came out, chunk k-1
		 * failed for lack of the final flag, nothing partial. */
		if (L >= 40 + A_CT && (L - 40) % A_CT == 0 &&
		    out.len != ((L - 40) / A_CT - 1) * A_CHUNK)
			boundary_bad++;
		if (out.len % A_CHUNK != 0)
			boundary_bad++;
		if (L == 40 + 3 * A_CT)
			printf("# truncated at chunk 3: %s\n", e.msg);
		buf_free(&out);
	}
	CHECK_MSG(bad == 0, "every truncation (all lengths) rejected with SBX_EVERIFY");
	CHECK_MSG(boundary_bad == 0, "truncated streams emitted only whole authenticated chunks");
	CHECK(!rejects(ct.p, ct.len, 5));
	buf_free(&ct);
	free(pt);
}

static void test_reorder(void)
{
	size_t len = 4 * A_CHUNK + 5;       /* chunks 0..3 full, 4 final */
	uint8_t *pt = pattern(len, 3);
	struct buf ct = { 0 };
	uint8_t *m = malloc(4096);
	size_t n;
	const uint8_t *c0;

	CHECK(enc_buf(STREAM_AES256GCM, test_key, NULL, "ad", 2, &a_params, pt, len, 0, &ct) == 0);
	c0 = ct.p + 40;
	/* swap chunks 1 and 2 */
	memcpy(m, ct.p, ct.len);
	memcpy(m + 40 + A_CT, c0 + 2 * A_CT, A_CT);
	memcpy(m + 40 + 2 * A_CT, c0 + A_CT, A_CT);
	CHECK_MSG(rejects(m, ct.len, 0), "chunks 1 and 2 swapped");
	/* duplicate chunk 1 */
	memcpy(m, ct.p, 40 + 2 * A_CT);
	memcpy(m + 40 + 2 * A_CT, c0 + A_CT, ct.len - 40 - A_CT);
	CHECK_MSG(rejects(m, ct.len + A_CT, 0), "chunk 1 duplicated");
	/* drop chunk 2 */
	memcpy(m, ct.p, 40 + 2 * A_CT);
	memcpy(m + 40 + 2 * A_CT, c0 + 3 * A_CT, ct.len - 40 - 3 * A_CT);
	CHECK_MSG(rejects(m, ct.len - A_CT, 0), "chunk 2 dropped");
	/* final chunk moved first */
	n = ct.len - 40 - 4 * A_CT;
	memcpy(m, ct.p, 40);
	memcpy(m + 40, c0 + 4 * A_CT, n);
	memcpy(m + 40 + n, c0, 4 * A_CT);
	CHECK_MSG(rejects(m, ct.len, 0), "final chunk moved to the front");
	/* appended: 1 byte, 16 bytes, a copy of chunk 0, the final chunk again */
	memcpy(m, ct.p, ct.len);
	m[ct.len] = 0;
	CHECK_MSG(rejects(m, ct.len + 1, 0), "one byte appended");
	memset(m + ct.len, 0, 16);
	CHECK_MSG(rejects(m, ct.len + 16, 0), "16 bytes appended");
	memcpy(m + ct.len, c0, A_CT);
	CHECK_MSG(rejects(m, ct.len + A_CT, 3), "chunk 0 appended");
	memcpy(m + ct.len, c0 + 4 * A_CT, n);
	CHECK_MSG(rejects(m, ct.len + n, 0), "final chunk appended again");
	/* chunks from another stream under the same key (different salt) */
	{
		struct buf other = { 0 };

		CHECK(enc_buf(STREAM_AES256GCM, test_key, NULL, "ad", 2, &a_params, pt, len, 0,
		              &other) == 0);
		memcpy(m, ct.p, ct.len);
		memcpy(m + 40 + A_CT, other.p + 40 + A_CT, A_CT);
		CHECK_MSG(rejects(m, ct.len, 0), "chunk spliced in from another stream, same key");
		buf_free(&other);
	}
	buf_free(&ct);
	free(pt);
	free(m);
}

/* Streams sealed correctly under the right key but with the wrong shape,
 * built with the reference sealer: only the structure rules stop them. */
static void test_forged_shapes(void)
{
	uint8_t skey[32], pt[3 * A_CHUNK], m[1024];
	size_t o;
	struct buf out = { 0 };
	struct sbx_err e = { 0 };
	int r;

	memset(pt, 0x5a, sizeof pt);
	ref_header(STREAM_AES256GCM, A_SHIFT, test_salt, m);
	CHECK(ref_key(test_key, m, skey));

	/* final flag on chunk 1 of 3 */
	o = 40;
	o += ref_chunk(STREAM_AES256GCM, skey, 0, 0, "ad", 2, pt, A_CHUNK, m + o);
	o += ref_chunk(STREAM_AES256GCM, skey, 1, 1, "ad", 2, pt, A_CHUNK, m + o);
	o += ref_chunk(STREAM_AES256GCM, skey, 2, 1, "ad", 2, pt, 5, m + o);
	r = dec_buf_msg(test_key, "ad", 2, &a_params, m, o, 0, &out, &e);
	printf("# final flag on chunk 1: %s\n", e.msg);
	CHECK_MSG(r == SBX_EVERIFY, "final flag on an earlier chunk rejected");
	CHECK_MSG(out.len == A_CHUNK, "only chunk 0 was emitted before the rejection");
	buf_free(&out);

	/* last chunk not flagged final (a clean truncation) */
	o = 40;
	o += ref_chunk(STREAM_AES256GCM, skey, 0, 0, "ad", 2, pt, A_CHUNK, m + o);
	o += ref_chunk(STREAM_AES256GCM, skey, 1, 0, "ad", 2, pt, 5, m + o);
	CHECK_MSG(rejects(m, o, 0), "stream whose last chunk is not final rejected");
	o = 40;
	o += ref_chunk(STREAM_AES256GCM, skey, 0, 0, "ad", 2, pt, A_CHUNK, m + o);
	o += ref_chunk(STREAM_AES256GCM, skey, 1, 0, "ad", 2, pt, A_CHUNK, m + o);
	sbx_err_clear(&e);
	r = dec_buf_msg(test_key, "ad", 2, &a_params, m, o, 0, &out, &e);
	printf("# full last chunk not final: %s\n", e.msg);
	CHECK_MSG(r == SBX_EVERIFY, "full-size last chunk without the final flag rejected");
	buf_free(&out);

	/* empty final chunk after a full chunk (the writer never makes one) */
	o = 40;
	o += ref_chunk(STREAM_AES256GCM, skey, 0, 0, "ad", 2, pt, A_CHUNK, m + o);
	o += ref_chunk(STREAM_AES256GCM, skey, 1, 1, "ad", 2, pt, 0, m + o);
	CHECK_MSG(rejects(m, o, 0), "empty final chunk after a full chunk rejected");

	/* short non-final chunk followed by more */
	o = 40;
	o += ref_chunk(STREAM_AES256GCM, skey, 0, 0, "ad", 2, pt, 5, m + o);
	o += ref_chunk(STREAM_AES256GCM, skey, 1, 1, "ad", 2, pt, 5, m + o);
	CHECK_MSG(rejects(m, o, 0), "short chunk in the middle rejected");

	/* counter starting at 1 */
	o = 40;
	o += ref_chunk(STREAM_AES256GCM, skey, 1, 1, "ad", 2, pt, 5, m + o);
	CHECK_MSG(rejects(m, o, 0), "stream starting at counter 1 rejected");

	/* the forger's own well-shaped stream is accepted: the tests above
	 * fail for their shape, not for a broken reference sealer */
	o = 40;
	o += ref_chunk(STREAM_AES256GCM, skey, 0, 0, "ad", 2, pt, A_CHUNK, m + o);
	o += ref_chunk(STREAM_AES256GCM, skey, 1, 1, "ad", 2, pt, 5, m + o);
	CHECK_MSG(!rejects(m, o, 0), "control: a well-formed reference stream is accepted");
}

static void test_bitflips(void)
{
	size_t len = 2 * A_CHUNK + 9;       /* 3 chunks */
	uint8_t *pt = pattern(len, 5);
	struct buf ct = { 0 };
	int accepted = 0, leaked = 0, total = 0;

	CHECK(enc_buf(STREAM_AES256GCM, test_key, NULL, "ad", 2, &a_params, pt, len, 0, &ct) == 0);
	for (size_t i = 0; i < ct.len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			struct buf out = { 0 };
			int r;

			ct.p[i] ^= (uint8_t)(1u << bit);
			r = dec_buf(test_key, "ad", 2, &a_params, ct.p, ct.len, 0, &out);
			ct.p[i] ^= (uint8_t)(1u << bit);
			total++;
			if (r == 0)
				accepted++;
			/* nothing from the altered chunk or after it comes out */
			if (i >= 40 && out.len > (i - 40) / A_CT * A_CHUNK)
				leaked++;
			buf_free(&out);
		}
	}
	printf("# %d single-bit flips\n", total);
	CHECK_MSG(accepted == 0, "every bit of a 3-chunk stream flipped: all rejected");
	CHECK_MSG(leaked == 0, "no plaintext from an altered chunk was emitted");
	buf_free(&ct);
	free(pt);
}

static void test_wrong_inputs(void)
{
	size_t len = 3 * A_CHUNK;
	uint8_t *pt = pattern(len, 7), key2[32];
	struct buf ct = { 0 }, out = { 0 };
	struct sbx_err e = { 0 };
	uint8_t *m;

	CHECK(enc_buf(STREAM_AES256GCM, test_key, NULL, "ad", 2, &a_params, pt, len, 0, &ct) == 0);
	m = malloc(ct.len);
	memcpy(key2, test_key, 32);
	key2[31] ^= 1;
	CHECK_MSG(dec_buf(key2, "ad", 2, &a_params, ct.p, ct.len, 0, &out) == SBX_EVERIFY &&
	          out.len == 0, "wrong key rejected, nothing emitted");
	buf_free(&out);
	CHECK_MSG(dec_buf(test_key, "ae", 2, &a_params, ct.p, ct.len, 0, &out) == SBX_EVERIFY,
	          "wrong context rejected");
	buf_free(&out);
	CHECK_MSG(dec_buf(test_key, NULL, 0, &a_params, ct.p, ct.len, 0, &out) == SBX_EVERIFY,
	          "missing context rejected");
	buf_free(&out);
	CHECK_MSG(dec_buf(test_key, "ad", 2, NULL, ct.p, ct.len, 0, &out) == SBX_EFORMAT,
	          "production decryptor refuses a stream with another chunk size");
	buf_free(&out);

	memcpy(m, ct.p, ct.len);
	m[4] = 2;
	CHECK_MSG(dec_buf_msg(test_key, "ad", 2, &a_params, m, ct.len, 0, &out, &e) == SBX_EFORMAT,
	          "version 2 rejected as a format error");
	printf("# %s\n", e.msg);
	buf_free(&out);
	memcpy(m, ct.p, ct.len);
	m[5] = 3;
	CHECK_MSG(rejects(m, ct.len, 0), "unknown suite rejected");
	memcpy(m, ct.p, ct.len);
	m[5] = STREAM_CHACHA20POLY1305;
	CHECK_MSG(rejects(m, ct.len, 0), "suite changed to ChaCha20-Poly1305 rejected");
	memcpy(m, ct.p, ct.len);
	m[7] = 1;
	CHECK_MSG(rejects(m, ct.len, 0), "reserved byte set rejected");
	memcpy(m, ct.p, ct.len);
	m[0] = 'X';
	CHECK_MSG(rejects(m, ct.len, 0), "bad magic rejected");
	CHECK_MSG(rejects(ct.p, 0, 0), "empty input rejected");
	buf_free(&ct);

	/* random salts: same key and plaintext, different streams */
	{
		struct buf a = { 0 }, b = { 0 };

		CHECK(enc_buf(STREAM_AES256GCM, test_key, NULL, NULL, 0, NULL, pt, len, 0, &a) == 0);
		CHECK(enc_buf(STREAM_AES256GCM, test_key, NULL, NULL, 0, NULL, pt, len, 0, &b) == 0);
		CHECK_MSG(a.len == b.len && memcmp(a.p + 8, b.p + 8, 32) != 0 &&
		          memcmp(a.p + 40, b.p + 40, a.len - 40) != 0,
		          "fresh salt per stream: same key and plaintext give unrelated ciphertext");
		buf_free(&a);
		buf_free(&b);
	}
	free(m);
	free(pt);
}

static void test_limits_and_errors(void)
{
	struct stream_params lim = { .chunk_shift = A_SHIFT, .max_chunks = 3 };
	struct stream_params limp = { .chunk_shift = A_SHIFT, .max_chunks = 3, .pipeline = 1 };
	uint8_t *pt = pattern(8 * A_CHUNK, 2);
	struct buf ct = { 0 }, out = { 0 };
	struct stream_enc *s = NULL;
	struct stream_dec *d = NULL;
	struct sbx_err e = { 0 };
	uint8_t key0[32] = { 0 };

	CHECK_MSG(enc_buf(STREAM_AES256GCM, test_key, NULL, "ad", 2, &lim, pt, 3 * A_CHUNK, 0, &ct) == 0,
	          "exactly max_chunks chunks is allowed");
	CHECK(dec_buf(test_key, "ad", 2, &lim, ct.p, ct.len, 0, &out) == 0 && out.len == 3 * A_CHUNK);
	buf_free(&ct);
	buf_free(&out);
	CHECK_MSG(enc_buf(STREAM_AES256GCM, test_key, NULL, "ad", 2, &lim, pt, 3 * A_CHUNK + 1, 0, &ct) == SBX_EINVAL,
	          "counter limit: one more byte is refused by the encryptor");
	buf_free(&ct);
	CHECK_MSG(enc_buf(STREAM_AES256GCM, test_key, NULL, "ad", 2, &limp, pt, 8 * A_CHUNK, 3, &ct) == SBX_EINVAL,
	          "counter limit: pipelined encryptor refuses too");
	buf_free(&ct);
	CHECK(enc_buf(STREAM_AES256GCM, test_key, NULL, "ad", 2, &a_params, pt, 4 * A_CHUNK, 0, &ct) == 0);
	CHECK_MSG(dec_buf(test_key, "ad", 2, &lim, ct.p, ct.len, 0, &out) == SBX_EFORMAT,
	          "counter limit: decryptor refuses a longer stream");
	buf_free(&out);

	/* callbacks that fail, at each call: the error comes back.  The
	 * pipelined writer emits 16 chunks per call: 64 chunks make 5 calls. */
	for (int pipe = 0; pipe <= 1; pipe++) {
		uint8_t *big = pattern(64 * A_CHUNK, 4);
		int calls = pipe ? 5 : 65, bad = 0;

		for (int at = 1; at <= calls; at++) {
			struct stream_params p = { .chunk_shift = A_SHIFT, .pipeline = pipe };
			struct buf o = { .fail_at = at };

			if (enc_buf(STREAM_AES256GCM, test_key, NULL, NULL, 0, &p, big,
			            64 * A_CHUNK, 7, &o) != SBX_EIO || o.calls != at)
				bad++;
			buf_free(&o);
		}
		CHECK_MSG(bad == 0, pipe ? "pipelined: a failing emit at any call is returned, "
		                           "and nothing is emitted after it"
		                         : "a failing emit at any call is returned, and nothing "
		                           "is emitted after it");
		free(big);
	}
	{
		struct buf o = { .fail_at = 2 };

		CHECK_MSG(dec_buf(test_key, "ad", 2, &a_params, ct.p, ct.len, 0, &o) == SBX_EIO,
		          "decryptor: emit failure returned");
		buf_free(&o);
	}
	CHECK(stream_dec_new(test_key, (const uint8_t *)"ad", 2, &a_params, buf_put, &out, &d, &e) == 0);
	CHECK(stream_dec_push(d, ct.p, 41, &e) == 0);
	ct.p[41] ^= 1;
	CHECK(stream_dec_push(d, ct.p + 41, ct.len - 41, &e) == SBX_EVERIFY);
	ct.p[41] ^= 1;
	CHECK_MSG(stream_dec_push(d, ct.p, 1, &e) == SBX_EVERIFY &&
	          stream_dec_final(d, &e) == SBX_EVERIFY, "decryptor errors are sticky");
	stream_dec_free(d);
	buf_free(&out);
	buf_free(&ct);

	/* usage */
	CHECK(stream_enc_new(9, key0, NULL, NULL, 0, NULL, buf_put, &ct, &s, &e) == SBX_EINVAL && s == NULL);
	CHECK(stream_enc_new(STREAM_AES256GCM, key0, NULL, NULL, STREAM_MAX_AD + 1, NULL, buf_put,
	                     &ct, &s, &e) == SBX_EINVAL);
	CHECK(stream_enc_new(STREAM_AES256GCM, key0, NULL, NULL, 0, NULL, NULL, NULL, &s, &e) == SBX_EINVAL);
	CHECK(stream_enc_new(STREAM_AES256GCM, key0, NULL, NULL, 0, NULL, buf_put, &ct, &s, &e) == 0);
	CHECK(stream_enc_final(s, &e) == 0);
	CHECK_MSG(stream_enc_push(s, pt, 1, &e) == SBX_EINVAL, "push after final refused");
	CHECK(stream_enc_final(s, &e) == SBX_EINVAL);
	stream_enc_free(s);
	buf_free(&ct);
	/* freeing a pipelined encryptor mid-stream joins its worker cleanly */
	{
		struct stream_params p = { .pipeline = 1 };

		CHECK(stream_enc_new(STREAM_AES256GCM, key0, NULL, NULL, 0, &p, buf_put, &ct, &s, &e) == 0);
		CHECK(stream_enc_push(s, pt, 8 * A_CHUNK, &e) == 0);
		stream_enc_free(s);
		buf_free(&ct);
	}
	free(pt);
}

/* ---- benchmark ---------------------------------------------------------- */

struct sink {
	struct hash_ctx *h;     /* hashes what it is given, like the bundle writer */
	size_t n;
};

static int sink_put(void *arg, const uint8_t *b, size_t n)
{
	struct sink *k = arg;

	k->n += n;
	return k->h ? hash_update(k->h, b, n) : 0;
}

static double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double now(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

/* Prints wall-clock throughput, and the throughput the CPU time allows on
 * two otherwise idle cores: total for one thread, the busier of the two
 * threads when pipelined (the machine this runs on is often shared). */
static void bench_enc(int suite, size_t mb, int pipe, int hash_both)
{
	struct stream_params p = { .pipeline = pipe };
	struct sink k = { .h = hash_both ? hash_new() : NULL };
	struct hash_ctx *ph = hash_new();
	struct stream_enc *s = NULL;
	size_t piece = 1 << 20, total = mb << 20;
	uint8_t *pt = pattern(piece, 1), dg[32];
	double t0 = now(), p0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	double m0 = clock_s(CLOCK_THREAD_CPUTIME_ID), dt, cpu, mcpu, bound;

	if (stream_enc_new(suite, test_key, NULL, NULL, 0, &p, sink_put, &k, &s, NULL) != 0)
		return;
	for (size_t off = 0; off < total; off += piece) {
		pt[0] = (uint8_t)off;
		if (hash_both)
			hash_update(ph, pt, piece);     /* the caller's plaintext item hashing */
		stream_enc_push(s, pt, piece, NULL);
	}
	stream_enc_final(s, NULL);
	dt = now() - t0;
	mcpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - m0;
	cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - p0;
	bound = pipe ? (mcpu > cpu - mcpu ? mcpu : cpu - mcpu) : cpu;
	if (hash_both) {
		hash_final(ph, dg);
		hash_final(k.h, dg);
	}
	printf("# bench %-17s %-28s %-9s wall %5.0f MB/s  cpu-bound %5.0f MB/s"
	       "  (cpu s: caller %.2f, worker %.2f)\n",
	       suite == STREAM_AES256GCM ? "aes-256-gcm" : "chacha20-poly1305",
	       hash_both ? "hash pt + encrypt + hash ct" : "encrypt", pipe ? "pipelined" : "single",
	       (double)total / dt / 1e6, (double)total / bound / 1e6, mcpu, cpu - mcpu);
	stream_enc_free(s);
	hash_free(ph);
	hash_free(k.h);
	free(pt);
}

static void bench(size_t mb)
{
	printf("# bench: %zu MiB, MB/s = 10^6 bytes/s of plaintext\n", mb);
	for (int suite = STREAM_AES256GCM; suite <= STREAM_CHACHA20POLY1305; suite++) {
		bench_enc(suite, mb, 0, 0);
		bench_enc(suite, mb, 1, 0);
		bench_enc(suite, mb, 0, 1);
		bench_enc(suite, mb, 1, 1);
	}
	/* decrypt: encrypt 64 MiB once, decrypt it repeatedly */
	for (int suite = STREAM_AES256GCM; suite <= STREAM_CHACHA20POLY1305; suite++) {
		size_t n = 64 << 20, reps = mb / 64 ? mb / 64 : 1, piece = 1 << 20;
		uint8_t *pt = pattern(n, 2);
		struct buf ct = { 0 };
		struct sink k = { 0 };
		double t0, c0, dt, cpu;

		enc_buf(suite, test_key, NULL, NULL, 0, NULL, pt, n, 0, &ct);
		t0 = now();
		c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
		for (size_t i = 0; i < reps; i++) {
			struct stream_dec *d = NULL;

			stream_dec_new(test_key, NULL, 0, NULL, sink_put, &k, &d, NULL);
			for (size_t off = 0; off < ct.len; off += piece)
				stream_dec_push(d, ct.p + off, ct.len - off < piece ? ct.len - off : piece, NULL);
			if (stream_dec_final(d, NULL) != 0)
				printf("# bench decrypt failed\n");
			stream_dec_free(d);
		}
		dt = now() - t0;
		cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
		printf("# bench %-17s %-28s %-9s wall %5.0f MB/s  cpu-bound %5.0f MB/s\n",
		       suite == STREAM_AES256GCM ? "aes-256-gcm" : "chacha20-poly1305",
		       "decrypt", "single", (double)(reps * n) / dt / 1e6,
		       (double)(reps * n) / cpu / 1e6);
		buf_free(&ct);
		free(pt);
	}
}

int main(void)
{
	const char *b = getenv("SBX_BENCH_MB");

	test_hkdf();
	test_kat();
	test_roundtrips();
	test_sizes();
	test_truncation();
	test_reorder();
	test_forged_shapes();
	test_bitflips();
	test_wrong_inputs();
	test_limits_and_errors();
	if (b != NULL && atoi(b) > 0)
		bench((size_t)atoi(b));
	return check_done();
}

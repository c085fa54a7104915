/* libFuzzer harness for the stream decryptor (crypto/stream.c), under a
 * fixed test key and context.  The first input byte picks the mode:
 *
 *   bit 0 clear: the rest is a ciphertext stream.  Bit 1 picks the chunk
 *     size (16 bytes or the format's 64 KiB), bits 2..7 the push size
 *     (0: all at once).  Either it is refused with SBX_EFORMAT/SBX_EVERIFY
 *     and a one-line message, having emitted whole chunks only, or it is
 *     accepted and then it is the one canonical encoding: its length is
 *     what stream_plaintext_size says, and sealing the emitted plaintext
 *     again with the header's suite and salt gives back exactly the input.
 *   bit 0 set: the rest is plaintext, encrypted (bit 1: pipelined) and
 *     decrypted with push sizes from the mode byte; the round trip must
 *     give the plaintext back, and a flipped byte must be refused.
 *
 * Build and run (60 s):
 *   clang -std=c17 -D_GNU_SOURCE -I. -g -O1 -fsanitize=fuzzer,address,undefined \
 *     tests/fuzz/fuzz_stream.c crypto/stream.c crypto/kdf.c crypto/err.c \
 *     -lcrypto -lpthread -o fuzz_stream
 *   ./fuzz_stream -max_total_time=60 tests/fuzz/corpus/fuzz_stream */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/err.h"
#include "crypto/stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Seeds in the corpus are sealed under this key and context. */
static const uint8_t fuzz_key[32] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};
static const uint8_t fuzz_ad[] = "fuzz";
#define FUZZ_ADLEN 4
#define FUZZ_MAX   (1 << 20)

static void must(int cond)
{
	if (!cond)
		abort();
}

struct out {
	uint8_t *p;
	size_t len, cap;
};

static int out_put(void *arg, const uint8_t *b, size_t n)
{
	struct out *o = arg;

	if (n > o->cap - o->len)
		return SBX_ENOMEM;
	memcpy(o->p + o->len, b, n);
	o->len += n;
	return 0;
}

static int decrypt(const struct stream_params *p, const uint8_t *ct, size_t len,
                   size_t step, struct out *o, struct sbx_err *e)
{
	struct stream_dec *d = NULL;
	int r = stream_dec_new(fuzz_key, fuzz_ad, FUZZ_ADLEN, p, out_put, o, &d, e);

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

static int encrypt(int suite, const uint8_t *salt, const struct stream_params *p,
                   const uint8_t *pt, size_t len, size_t step, struct out *o)
{
	struct stream_enc *s = NULL;
	int r = stream_enc_new(suite, fuzz_key, salt, fuzz_ad, FUZZ_ADLEN, p, out_put, o, &s, NULL);

	for (size_t off = 0; r == 0 && off < len; ) {
		size_t n = step == 0 || step > len - off ? len - off : step;

		r = stream_enc_push(s, pt + off, n, NULL);
		off += n;
	}
	if (r == 0)
		r = stream_enc_final(s, NULL);
	stream_enc_free(s);
	return r;
}

static void fuzz_decrypt(uint8_t mode, const uint8_t *ct, size_t len)
{
	struct stream_params p = { .chunk_shift = (mode & 2) ? 4 : 16 };
	size_t chunk = (size_t)1 << p.chunk_shift, step = mode >> 2;
	struct out pt = { .p = malloc(len + 1), .cap = len + 1 };
	struct out re = { 0 };
	struct sbx_err e = { 0 };
	uint64_t want = 0;
	int r;

	r = decrypt(&p, ct, len, step, &pt, &e);
	if (r != 0) {
		must(r == SBX_EFORMAT || r == SBX_EVERIFY);
		must(e.code == r && e.msg[0] != '\0' && strchr(e.msg, '\n') == NULL);
		must(pt.len % chunk == 0);
		free(pt.p);
		return;
	}
	must(stream_plaintext_size(len, &p, &want) == 0 && want == pt.len);
	re.cap = len;
	re.p = malloc(len);
	must(encrypt(ct[5], ct + 8, &p, pt.p, pt.len, 0, &re) == 0);
	must(re.len == len && memcmp(re.p, ct, len) == 0);
	free(re.p);
	free(pt.p);
}

static void fuzz_roundtrip(uint8_t mode, const uint8_t *pt, size_t len)
{
	static const uint8_t salt[32] = { 1 };
	struct stream_params p = { .chunk_shift = 4, .pipeline = (mode >> 1) & 1 };
	size_t enc_step = (mode >> 2) & 7, dec_step = (mode >> 5) * 5;
	uint64_t ctlen = 0;
	struct out ct = { 0 }, back = { 0 };
	int suite = (mode & 0x80) ? STREAM_CHACHA20POLY1305 : STREAM_AES256GCM;

	must(stream_ciphertext_size(len, &p, &ctlen) == 0);
	ct.cap = (size_t)ctlen;
	ct.p = malloc(ct.cap);
	back.cap = len + 1;
	back.p = malloc(back.cap);
	must(encrypt(suite, salt, &p, pt, len, enc_step * 3, &ct) == 0 && ct.len == ctlen);
	must(decrypt(&p, ct.p, ct.len, dec_step, &back, NULL) == 0);
	must(back.len == len && memcmp(back.p, pt, len) == 0);
	/* one flipped byte, position from the data */
	if (ct.len > 0) {
		size_t i = (len > 0 ? pt[0] * 131u + pt[len - 1] : 7u) % ct.len;
		int r;

		ct.p[i] ^= 0x20;
		back.len = 0;
		r = decrypt(&p, ct.p, ct.len, dec_step, &back, NULL);
		must(r == SBX_EFORMAT || r == SBX_EVERIFY);
	}
	free(ct.p);
	free(back.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > FUZZ_MAX)
		return 0;
	if (data[0] & 1)
		fuzz_roundtrip(data[0], data + 1, size - 1);
	else
		fuzz_decrypt(data[0], data + 1, size - 1);
	return 0;
}

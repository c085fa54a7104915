#include "export/wire.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "crypto/err.h"

/* A single encoded object never needs more; anything larger is a bug or an
 * attack, so refuse rather than grow without bound. */
#define WIRE_MAX_OBJECT ((size_t)1 << 30)

void wire_w_init(struct wire_w *w)
{
	memset(w, 0, sizeof *w);
}

void wire_w_free(struct wire_w *w)
{
	if (w->p != NULL) {
		OPENSSL_cleanse(w->p, w->cap);
		free(w->p);
	}
	memset(w, 0, sizeof *w);
}

void wire_w_reset(struct wire_w *w)
{
	w->len = 0;
	w->err = 0;
}

static int reserve(struct wire_w *w, size_t n)
{
	size_t cap;
	uint8_t *np;

	if (w->err != 0)
		return -1;
	if (n > WIRE_MAX_OBJECT - w->len) {
		w->err = SBX_EFORMAT;
		return -1;
	}
	if (w->len + n <= w->cap)
		return 0;
	cap = w->cap ? w->cap : 256;
	while (cap < w->len + n)
		cap *= 2;
	np = malloc(cap);
	if (np == NULL) {
		w->err = SBX_ENOMEM;
		return -1;
	}
	/* Copy instead of realloc so the old buffer can be wiped. */
	if (w->p != NULL) {
		memcpy(np, w->p, w->len);
		OPENSSL_cleanse(w->p, w->cap);
		free(w->p);
	}
	w->p = np;
	w->cap = cap;
	return 0;
}

void wire_put_raw(struct wire_w *w, const void *b, size_t n)
{
	if (reserve(w, n) != 0)
		return;
	if (n > 0)
		memcpy(w->p + w->len, b, n);
	w->len += n;
}

void wire_put_u8(struct wire_w *w, uint8_t v)
{
	wire_put_raw(w, &v, 1);
}

void wire_put_u16(struct wire_w *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	wire_put_raw(w, b, 2);
}

void wire_put_u32(struct wire_w *w, uint32_t v)
{
	uint8_t b[4];

	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (24 - 8 * i));
	wire_put_raw(w, b, 4);
}

void wire_put_u64(struct wire_w *w, uint64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (56 - 8 * i));
	wire_put_raw(w, b, 8);
}

void wire_put_str16(struct wire_w *w, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n > 0xffff || !wire_utf8_valid((const uint8_t *)s, n)) {
		if (w->err == 0)
			w->err = SBX_EFORMAT;
		return;
	}
	wire_put_u16(w, (uint16_t)n);
	wire_put_raw(w, s, n);
}

void wire_put_bytes32(struct wire_w *w, const void *b, size_t n)
{
	if (n > 0xffffffffu) {
		if (w->err == 0)
			w->err = SBX_EFORMAT;
		return;
	}
	wire_put_u32(w, (uint32_t)n);
	wire_put_raw(w, b, n);
}

int wire_w_take(struct wire_w *w, uint8_t **out, size_t *outlen)
{
	int r = w->err;

	if (r != 0) {
		wire_w_free(w);
		return r;
	}
	if (w->p == NULL && reserve(w, 1) != 0)
		return w->err;
	*out = w->p;
	*outlen = w->len;
	memset(w, 0, sizeof *w);
	return 0;
}

void wire_r_init(struct wire_r *r, const void *p, size_t len)
{
	r->p = p;
	r->len = p ? len : 0;
	r->off = 0;
	r->err = 0;
}

const uint8_t *wire_get_raw(struct wire_r *r, size_t n)
{
	const uint8_t *p;

	if (r->err != 0 || n > r->len - r->off) {
		r->err = SBX_EFORMAT;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

void wire_get_fixed(struct wire_r *r, void *out, size_t n)
{
	const uint8_t *p = wire_get_raw(r, n);

	if (p != NULL)
		memcpy(out, p, n);
	else
		memset(out, 0, n);
}

static uint64_t get_be(struct wire_r *r, size_t n)
{
	const uint8_t *p = wire_get_raw(r, n);
	uint64_t v = 0;

	if (p == NULL)
		return 0;
	for (size_t i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

uint8_t wire_get_u8(struct wire_r *r)   { return (uint8_t)get_be(r, 1); }
uint16_t wire_get_u16(struct wire_r *r) { return (uint16_t)get_be(r, 2); }
uint32_t wire_get_u32(struct wire_r *r) { return (uint32_t)get_be(r, 4); }
uint64_t wire_get_u64(struct wire_r *r) { return get_be(r, 8); }

void wire_get_str16(struct wire_r *r, char *out, size_t maxlen)
{
	uint16_t n = wire_get_u16(r);
	const uint8_t *p;

	out[0] = '\0';
	if (r->err != 0)
		return;
	if (n > maxlen) {
		r->err = SBX_EFORMAT;
		return;
	}
	p = wire_get_raw(r, n);
	if (p == NULL)
		return;
	if (!wire_utf8_valid(p, n)) {
		r->err = SBX_EFORMAT;
		return;
	}
	memcpy(out, p, n);
	out[n] = '\0';
}

const uint8_t *wire_get_bytes32(struct wire_r *r, size_t maxlen, size_t *outlen)
{
	uint32_t n = wire_get_u32(r);

	*outlen = 0;
	if (r->err != 0)
		return NULL;
	if (n > maxlen) {
		r->err = SBX_EFORMAT;
		return NULL;
	}
	*outlen = n;
	return wire_get_raw(r, n);
}

int wire_r_end(const struct wire_r *r)
{
	return (r->err == 0 && r->off == r->len) ? 0 : SBX_EFORMAT;
}

int wire_utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		size_t need;
		uint32_t cp, min;

		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			need = 1; cp = c & 0x1f; min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			need = 2; cp = c & 0x0f; min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			need = 3; cp = c & 0x07; min = 0x10000;
		} else {
			return 0;
		}
		if (need > n - i - 1)
			return 0;
		for (size_t k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += need + 1;
	}
	return 1;
}

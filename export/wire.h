/* Exact, bounds-checked binary encoding used by every sealbox format
 * (custody records, tree heads, log export, bundle fields).
 *
 * Integers are big-endian.  A "str16" is a u16 length then that many bytes
 * of UTF-8 without NUL; "bytes32" is a u32 length then the bytes.  Readers
 * check every length against what remains and never read past the end;
 * wire_r_end() fails unless every byte was consumed (no trailing bytes). */
#ifndef SBX_WIRE_H
#define SBX_WIRE_H

#include <stddef.h>
#include <stdint.h>

struct wire_w {
	uint8_t *p;
	size_t len, cap;
	int err;        /* sticky: once set every put is a no-op */
};

struct wire_r {
	const uint8_t *p;
	size_t len, off;
	int err;        /* sticky SBX_EFORMAT */
};

void wire_w_init(struct wire_w *w);
void wire_w_free(struct wire_w *w);          /* wipes, then frees */
/* Empties the writer, keeping its buffer (no allocation per message). */
void wire_w_reset(struct wire_w *w);
void wire_put_u8(struct wire_w *w, uint8_t v);
void wire_put_u16(struct wire_w *w, uint16_t v);
void wire_put_u32(struct wire_w *w, uint32_t v);
void wire_put_u64(struct wire_w *w, uint64_t v);
void wire_put_raw(struct wire_w *w, const void *b, size_t n);
void wire_put_str16(struct wire_w *w, const char *s);          /* NUL-terminated s */
void wire_put_bytes32(struct wire_w *w, const void *b, size_t n);
/* Hand the buffer to the caller (who frees it); returns 0 or the sticky error. */
int wire_w_take(struct wire_w *w, uint8_t **out, size_t *outlen);

void wire_r_init(struct wire_r *r, const void *p, size_t len);
uint8_t  wire_get_u8(struct wire_r *r);
uint16_t wire_get_u16(struct wire_r *r);
uint32_t wire_get_u32(struct wire_r *r);
uint64_t wire_get_u64(struct wire_r *r);
/* Points into the input; NULL (and err set) if fewer than n bytes remain. */
const uint8_t *wire_get_raw(struct wire_r *r, size_t n);
void wire_get_fixed(struct wire_r *r, void *out, size_t n);
/* Copies a str16 into out (NUL-terminated).  Fails if it is longer than
 * maxlen, holds a NUL or is not valid UTF-8. */
void wire_get_str16(struct wire_r *r, char *out, size_t maxlen);
/* A bytes32 field: *out points into the input.  Fails above maxlen. */
const uint8_t *wire_get_bytes32(struct wire_r *r, size_t maxlen, size_t *outlen);
/* 0 if no error and every byte consumed, else SBX_EFORMAT. */
int wire_r_end(const struct wire_r *r);

/* Strict UTF-8 check (no overlongs, no surrogates, no NUL). */
int wire_utf8_valid(const uint8_t *s, size_t n);

#endif

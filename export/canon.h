/* Canonical JSON for the documents sealbox signs (the bundle manifest, the
 * release statement; docs/FORMAT.md sections 3 and 10).
 *
 * Writer: members in the caller's fixed order, one per line, indented two
 * spaces per level, `"key": value`, a final newline; integers as unsigned
 * decimal (no sign, fraction, exponent or leading zero); strings escaped
 * only where JSON requires: `\"`, `\\` and control characters below 0x20
 * as `\u00xx` (lower-case hex); everything else, DEL and non-ASCII UTF-8
 * included, as it is.  Strings must be valid UTF-8 without NUL.
 *
 * Reader side: parse strictly with json_parse (export/json.h), pull each
 * field out with the typed getters below (which name the field on
 * failure), rebuild the document with the writer and compare bytes with
 * canon_compare: anything not exactly canonical (spacing, escapes, key
 * order, extra keys, number forms) is then rejected without a rule of its
 * own.  Core library: libc only. */
#ifndef SBX_CANON_H
#define SBX_CANON_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/err.h"
#include "export/json.h"

#define CANON_MAX_DEPTH 8

struct canon_w {
	char *p;
	size_t len, cap;
	int err;                        /* sticky SBX_E* */
	unsigned depth;
	uint8_t count[CANON_MAX_DEPTH + 1];
};

void canon_init(struct canon_w *w);
void canon_free(struct canon_w *w);
/* key NULL only for the top-level object. */
void canon_obj_open(struct canon_w *w, const char *key);
void canon_obj_close(struct canon_w *w);
/* s NUL-terminated; SBX_EFORMAT (sticky) if longer than max bytes or not
 * valid UTF-8. */
void canon_str(struct canon_w *w, const char *key, const char *s, size_t max);
void canon_u64(struct canon_w *w, const char *key, uint64_t v);
/* Lower-case hex of b[0..n). */
void canon_hex(struct canon_w *w, const char *key, const uint8_t *b, size_t n);
/* The finished document (NUL-terminated, malloc'd), or the sticky error.
 * w is empty afterwards. */
int canon_take(struct canon_w *w, char **out, size_t *len);

/* Typed getters: `what` names the document ("statement") in messages.
 * Missing member, wrong type or a value out of range: SBX_EFORMAT. */
int canon_get_obj(const struct json_doc *d, const struct json_val *obj, const char *key,
                  const struct json_val **out, const char *what, struct sbx_err *e);
/* Copies the string into out[0..cap) (so at most cap-1 bytes). */
int canon_get_str(const struct json_doc *d, const struct json_val *obj, const char *key,
                  char *out, size_t cap, const char *what, struct sbx_err *e);
/* A decimal integer 0..2^64-1. */
int canon_get_u64(const struct json_doc *d, const struct json_val *obj, const char *key,
                  uint64_t *out, const char *what, struct sbx_err *e);
/* Exactly 2*n lower-case hex digits. */
int canon_get_hex(const struct json_doc *d, const struct json_val *obj, const char *key,
                  uint8_t *out, size_t n, const char *what, struct sbx_err *e);

/* 0 if the text equals the canonical rebuild byte for byte; SBX_EFORMAT
 * naming the first differing line otherwise. */
int canon_compare(const char *text, size_t len, const char *canon, size_t canon_len,
                  const char *what, struct sbx_err *e);

#endif

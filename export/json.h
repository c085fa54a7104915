/* A strict, small JSON (RFC 8259) parser and an escaping writer.
 *
 * The parser takes one whole document and refuses, with the byte offset:
 * duplicate keys in an object, nesting deeper than the limit (at most 32),
 * numbers whose magnitude leaves the range of an IEEE double or whose text
 * is longer than JSON_NUM_MAX, invalid UTF-8, raw control characters, lone
 * or reversed surrogate escapes, \u0000, and anything but white space after
 * the value.  Numbers are kept as their validated text; callers convert them
 * exactly (json_num_i64) instead of through a locale-dependent strtod.
 *
 * A parsed document owns its values; a json_doc can be reused for the next
 * document (JSON Lines) without freeing its buffers.
 *
 * The writer builds compact JSON into a growing buffer or a fixed one, puts
 * commas itself, and escapes ", \, the C0 controls and DEL.  Errors are
 * sticky: check json_w_error() (or json_w_take()) once at the end. */
#ifndef SBX_JSON_H
#define SBX_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/err.h"

#define JSON_MAX_DEPTH  32      /* hard ceiling of json_limits.max_depth */
#define JSON_NUM_MAX    64      /* characters of one number */

enum json_type {
	JSON_NULL = 1,
	JSON_FALSE,
	JSON_TRUE,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

struct json_limits {
	unsigned max_depth;     /* arrays/objects inside each other; default 32 */
	size_t max_bytes;       /* input length; default 1 MiB */
	size_t max_values;      /* values in the document; default 65536 */
	size_t max_string;      /* bytes of one decoded string or key; default 65536 */
};

struct json_doc;
struct json_val;

void json_limits_default(struct json_limits *l);

struct json_doc *json_doc_new(void);
void json_doc_free(struct json_doc *d);

/* Parses text[0..len) into d (replacing what d held).  lim NULL: defaults.
 * On failure d holds no document and e says "byte N: what". */
int json_parse(struct json_doc *d, const char *text, size_t len,
               const struct json_limits *lim, struct sbx_err *e);

/* Access.  Every pointer stays valid until the next json_parse or free. */
const struct json_val *json_root(const struct json_doc *d);
enum json_type json_type_of(const struct json_val *v);
const char *json_type_name(enum json_type t);
/* Member of an object by key (exact bytes), or NULL. */
const struct json_val *json_get(const struct json_doc *d, const struct json_val *obj,
                                const char *key, size_t klen);
/* Element i of an array, or NULL. */
const struct json_val *json_at(const struct json_doc *d, const struct json_val *arr, size_t i);
/* Number of elements or members; 0 for scalars. */
size_t json_count(const struct json_val *v);
/* Iteration over an array's elements or an object's members (in order). */
const struct json_val *json_first(const struct json_doc *d, const struct json_val *v);
const struct json_val *json_next(const struct json_doc *d, const struct json_val *v);
/* The key of an object member (NUL-terminated, UTF-8), or NULL. */
const char *json_key(const struct json_doc *d, const struct json_val *member, size_t *len);
/* Decoded string (NUL-terminated; never contains NUL), or NULL if not a string. */
const char *json_str(const struct json_doc *d, const struct json_val *v, size_t *len);
/* The number's text as written (NUL-terminated), or NULL if not a number. */
const char *json_num(const struct json_doc *d, const struct json_val *v, size_t *len);
/* Exact integer conversion: 0, or SBX_EFORMAT if v is not a number written
 * as an integer (no fraction, no exponent) or does not fit an int64. */
int json_num_i64(const struct json_doc *d, const struct json_val *v, int64_t *out);

/* Writer. */
struct json_w {
	char *p;
	size_t len, cap;
	int fixed;              /* p is the caller's buffer: never grown or freed */
	int err;                /* sticky SBX_E* */
	unsigned depth;
	uint8_t first[JSON_MAX_DEPTH + 1];      /* nothing written yet at this depth */
	uint8_t after_key;
};

void json_w_init(struct json_w *w);
void json_w_init_fixed(struct json_w *w, char *buf, size_t cap);
void json_w_reset(struct json_w *w);    /* empty again, buffer kept */
void json_w_free(struct json_w *w);
void json_w_obj(struct json_w *w);
void json_w_obj_end(struct json_w *w);
void json_w_arr(struct json_w *w);
void json_w_arr_end(struct json_w *w);
void json_w_key(struct json_w *w, const char *k);
void json_w_str(struct json_w *w, const char *s);
void json_w_strn(struct json_w *w, const char *s, size_t n);
void json_w_i64(struct json_w *w, int64_t v);
void json_w_u64(struct json_w *w, uint64_t v);
void json_w_bool(struct json_w *w, int v);
void json_w_null(struct json_w *w);
/* A number from its text, which must match the JSON number grammar. */
void json_w_number(struct json_w *w, const char *text);
/* Bytes appended verbatim, e.g. the "\n" between JSON Lines. */
void json_w_raw(struct json_w *w, const char *s, size_t n);
int json_w_error(const struct json_w *w);
/* Hands over the NUL-terminated text (growing writers only; caller frees). */
int json_w_take(struct json_w *w, char **out, size_t *len);

/* Appends s[0..n) JSON-escaped (without quotes) to out[0..cap); returns the
 * length it needs, so a result >= cap means it did not fit.  (size_t)-1 if
 * s is not valid UTF-8 or holds a NUL. */
size_t json_escape(char *out, size_t cap, const char *s, size_t n);

#endif

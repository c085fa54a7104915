#include "export/canon.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/wire.h"

/* The signed documents are small (manifest 64 KiB, statement 16 KiB); this
 * only stops a runaway caller. */
#define CANON_MAX_OUT ((size_t)1 << 24)

void canon_init(struct canon_w *w)
{
	memset(w, 0, sizeof *w);
}

void canon_free(struct canon_w *w)
{
	free(w->p);
	memset(w, 0, sizeof *w);
}

static void put(struct canon_w *w, const char *s, size_t n)
{
	size_t cap;
	char *np;

	if (w->err != 0)
		return;
	if (n > CANON_MAX_OUT - w->len) {
		w->err = SBX_EFORMAT;
		return;
	}
	if (w->len + n + 1 > w->cap) {
		cap = w->cap ? w->cap : 1024;
		while (cap < w->len + n + 1)
			cap *= 2;
		np = realloc(w->p, cap);
		if (np == NULL) {
			w->err = SBX_ENOMEM;
			return;
		}
		w->p = np;
		w->cap = cap;
	}
	memcpy(w->p + w->len, s, n);
	w->len += n;
	w->p[w->len] = '\0';
}

static void puts_(struct canon_w *w, const char *s)
{
	put(w, s, strlen(s));
}

/* The quoted string with the canonical escapes. */
static void put_quoted(struct canon_w *w, const char *s, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	size_t i = 0, run;

	if (w->err == 0 && !wire_utf8_valid((const uint8_t *)s, n)) {
		w->err = SBX_EFORMAT;
		return;
	}
	put(w, "\"", 1);
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		char esc[6];

		for (run = i; run < n; run++) {
			c = (unsigned char)s[run];
			if (c < 0x20 || c == '"' || c == '\\')
				break;
		}
		put(w, s + i, run - i);
		if (run == n)
			break;
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put(w, esc, 2);
		} else {
			memcpy(esc, "\\u00", 4);
			esc[4] = hx[c >> 4];
			esc[5] = hx[c & 15];
			put(w, esc, 6);
		}
		i = run + 1;
	}
	put(w, "\"", 1);
}

/* Separator, newline and indentation before a member, then its key. */
static void member(struct canon_w *w, const char *key)
{
	if (w->err != 0)
		return;
	if (w->depth == 0) {
		if (key != NULL || w->len != 0)
			w->err = SBX_EINVAL;    /* one top-level object, no key */
		return;
	}
	if (key == NULL) {
		w->err = SBX_EINVAL;
		return;
	}
	if (w->count[w->depth]++ > 0)
		put(w, ",", 1);
	put(w, "\n", 1);
	for (unsigned i = 0; i < w->depth; i++)
		put(w, "  ", 2);
	put_quoted(w, key, strlen(key));
	put(w, ": ", 2);
}

void canon_obj_open(struct canon_w *w, const char *key)
{
	member(w, key);
	if (w->err == 0 && w->depth >= CANON_MAX_DEPTH)
		w->err = SBX_EINVAL;
	put(w, "{", 1);
	if (w->err == 0) {
		w->depth++;
		w->count[w->depth] = 0;
	}
}

void canon_obj_close(struct canon_w *w)
{
	if (w->err == 0 && w->depth == 0)
		w->err = SBX_EINVAL;
	if (w->err != 0)
		return;
	/* An empty object stays "{}"; sealbox's documents have none. */
	if (w->count[w->depth] > 0) {
		put(w, "\n", 1);
		for (unsigned i = 1; i < w->depth; i++)
			put(w, "  ", 2);
	}
	put(w, "}", 1);
	w->depth--;
	if (w->depth == 0)
		put(w, "\n", 1);
}

void canon_str(struct canon_w *w, const char *key, const char *s, size_t max)
{
	size_t n = strlen(s);

	member(w, key);
	if (w->err == 0 && n > max)
		w->err = SBX_EFORMAT;
	put_quoted(w, s, n);
}

void canon_u64(struct canon_w *w, const char *key, uint64_t v)
{
	char buf[24];

	member(w, key);
	snprintf(buf, sizeof buf, "%" PRIu64, v);
	puts_(w, buf);
}

void canon_hex(struct canon_w *w, const char *key, const uint8_t *b, size_t n)
{
	static const char hx[] = "0123456789abcdef";

	member(w, key);
	put(w, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		char two[2] = { hx[b[i] >> 4], hx[b[i] & 15] };

		put(w, two, 2);
	}
	put(w, "\"", 1);
}

int canon_take(struct canon_w *w, char **out, size_t *len)
{
	int r = w->err;

	if (r == 0 && (w->depth != 0 || w->len == 0))
		r = SBX_EINVAL;
	if (r != 0) {
		canon_free(w);
		return r;
	}
	*out = w->p;
	*len = w->len;
	w->p = NULL; /* transferred */
	canon_free(w);
	return 0;
}

/* ---- reading ------------------------------------------------------------- */

static const struct json_val *get(const struct json_doc *d, const struct json_val *obj,
                                  const char *key, enum json_type want, const char *what,
                                  struct sbx_err *e)
{
	const struct json_val *m = json_get(d, obj, key, strlen(key));

	if (m == NULL) {
		sbx_fail(e, SBX_EFORMAT, "%s: \"%s\" is missing", what, key);
		return NULL;
	}
	if (json_type_of(m) != want) {
		sbx_fail(e, SBX_EFORMAT, "%s: \"%s\" is a %s, not a %s", what, key,
		         json_type_name(json_type_of(m)), json_type_name(want));
		return NULL;
	}
	return m;
}

int canon_get_obj(const struct json_doc *d, const struct json_val *obj, const char *key,
                  const struct json_val **out, const char *what, struct sbx_err *e)
{
	*out = get(d, obj, key, JSON_OBJECT, what, e);
	return *out != NULL ? 0 : SBX_EFORMAT;
}

int canon_get_str(const struct json_doc *d, const struct json_val *obj, const char *key,
                  char *out, size_t cap, const char *what, struct sbx_err *e)
{
	const struct json_val *m = get(d, obj, key, JSON_STRING, what, e);
	const char *s;
	size_t n = 0;

	if (cap > 0)
		out[0] = '\0';
	if (m == NULL)
		return SBX_EFORMAT;
	s = json_str(d, m, &n);
	if (s == NULL || cap == 0 || n >= cap)
		return sbx_fail(e, SBX_EFORMAT, "%s: \"%s\" is longer than %zu bytes", what, key,
		                cap > 0 ? cap - 1 : 0);
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

int canon_get_u64(const struct json_doc *d, const struct json_val *obj, const char *key,
                  uint64_t *out, const char *what, struct sbx_err *e)
{
	const struct json_val *m = get(d, obj, key, JSON_NUMBER, what, e);
	const char *t;
	uint64_t acc = 0;
	size_t n = 0;

	*out = 0;
	if (m == NULL)
		return SBX_EFORMAT;
	t = json_num(d, m, &n);
	if (t == NULL || n == 0 || (n > 1 && t[0] == '0'))
		return sbx_fail(e, SBX_EFORMAT, "%s: \"%s\" is not an unsigned integer", what, key);
	for (size_t i = 0; i < n; i++) {
		unsigned dg;

		if (t[i] < '0' || t[i] > '9')
			return sbx_fail(e, SBX_EFORMAT, "%s: \"%s\" is not an unsigned integer",
			                what, key);
		dg = (unsigned)(t[i] - '0');
		if (acc > (UINT64_MAX - dg) / 10)
			return sbx_fail(e, SBX_EFORMAT, "%s: \"%s\" is above 2^64-1", what, key);
		acc = acc * 10 + dg;
	}
	*out = acc;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int canon_get_hex(const struct json_doc *d, const struct json_val *obj, const char *key,
                  uint8_t *out, size_t n, const char *what, struct sbx_err *e)
{
	const struct json_val *m = get(d, obj, key, JSON_STRING, what, e);
	const char *s;
	size_t len = 0;

	memset(out, 0, n);
	if (m == NULL)
		return SBX_EFORMAT;
	s = json_str(d, m, &len);
	if (s == NULL || len != 2 * n)
		return sbx_fail(e, SBX_EFORMAT, "%s: \"%s\" is not %zu hex digits", what, key, 2 * n);
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			memset(out, 0, n);
			return sbx_fail(e, SBX_EFORMAT, "%s: \"%s\" is not lower-case hex", what, key);
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int canon_compare(const char *text, size_t len, const char *canon, size_t canon_len,
                  const char *what, struct sbx_err *e)
{
	size_t i, line = 1;

	if (len == canon_len && memcmp(text, canon, len) == 0)
		return 0;
	for (i = 0; i < len && i < canon_len && text[i] == canon[i]; i++)
		if (text[i] == '\n')
			line++;
	return sbx_fail(e, SBX_EFORMAT, "%s: not in canonical form (first difference at byte %zu,"
	                " line %zu)", what, i, line);
}

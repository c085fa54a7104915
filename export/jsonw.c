#include "export/jsonw.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "export/wire.h"

void jsonw_init(struct jsonw *w, FILE *f)
{
	memset(w, 0, sizeof *w);
	w->f = f;
}

void jsonw_quote(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		switch (c) {
		case '"':  fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (c < 0x20 || c == 0x7f)
				fprintf(f, "\\u%04x", c);
			else
				fputc(c, f);
		}
	}
	fputc('"', f);
}

/* Comma, newline and indentation before a member; then "key": */
static void member(struct jsonw *w, const char *key)
{
	if (w->depth > 0) {
		if (w->count[w->depth]++ > 0)
			fputc(',', w->f);
		fputc('\n', w->f);
		for (int i = 0; i < w->depth; i++)
			fputs("  ", w->f);
	}
	if (key != NULL) {
		jsonw_quote(w->f, key, strlen(key));
		fputs(": ", w->f);
	}
}

static void open_(struct jsonw *w, const char *key, char c)
{
	member(w, key);
	fputc(c, w->f);
	if (w->depth + 1 < JSONW_MAX_DEPTH) {
		w->depth++;
		w->count[w->depth] = 0;
	}
}

static void close_(struct jsonw *w, char c)
{
	int had = w->count[w->depth] > 0;

	if (w->depth > 0)
		w->depth--;
	if (had) {
		fputc('\n', w->f);
		for (int i = 0; i < w->depth; i++)
			fputs("  ", w->f);
	}
	fputc(c, w->f);
	if (w->depth == 0)
		fputc('\n', w->f);
}

void jsonw_obj_open(struct jsonw *w, const char *key) { open_(w, key, '{'); }
void jsonw_obj_close(struct jsonw *w) { close_(w, '}'); }
void jsonw_arr_open(struct jsonw *w, const char *key) { open_(w, key, '['); }
void jsonw_arr_close(struct jsonw *w) { close_(w, ']'); }

void jsonw_strn(struct jsonw *w, const char *key, const char *v, size_t n)
{
	member(w, key);
	jsonw_quote(w->f, v, n);
}

void jsonw_str(struct jsonw *w, const char *key, const char *v)
{
	if (v == NULL) {
		jsonw_null(w, key);
		return;
	}
	jsonw_strn(w, key, v, strlen(v));
}

void jsonw_text(struct jsonw *w, const char *key, const char *v)
{
	size_t n;
	char *copy;

	if (v == NULL) {
		jsonw_null(w, key);
		return;
	}
	n = strlen(v);
	if (wire_utf8_valid((const uint8_t *)v, n)) {
		jsonw_strn(w, key, v, n);
		return;
	}
	copy = strdup(v);
	if (copy == NULL) {
		jsonw_null(w, key);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)copy[i] >= 0x80)
			copy[i] = '?';
	jsonw_strn(w, key, copy, n);
	free(copy);
}

void jsonw_u64(struct jsonw *w, const char *key, uint64_t v)
{
	member(w, key);
	fprintf(w->f, "%" PRIu64, v);
}

void jsonw_i64(struct jsonw *w, const char *key, int64_t v)
{
	member(w, key);
	fprintf(w->f, "%" PRId64, v);
}

void jsonw_bool(struct jsonw *w, const char *key, int v)
{
	member(w, key);
	fputs(v ? "true" : "false", w->f);
}

void jsonw_null(struct jsonw *w, const char *key)
{
	member(w, key);
	fputs("null", w->f);
}

void jsonw_hex(struct jsonw *w, const char *key, const uint8_t *b, size_t n)
{
	static const char hx[] = "0123456789abcdef";

	member(w, key);
	fputc('"', w->f);
	for (size_t i = 0; i < n; i++) {
		fputc(hx[b[i] >> 4], w->f);
		fputc(hx[b[i] & 15], w->f);
	}
	fputc('"', w->f);
}

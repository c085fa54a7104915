/* A small streaming JSON writer for --json output and reports.  Keys and
 * strings are escaped per RFC 8259; output is deterministic (callers choose
 * the key order).  Pass key = NULL inside arrays and at the top level. */
#ifndef SBX_JSONW_H
#define SBX_JSONW_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JSONW_MAX_DEPTH 32

struct jsonw {
	FILE *f;
	int depth;
	int count[JSONW_MAX_DEPTH];
};

void jsonw_init(struct jsonw *w, FILE *f);
void jsonw_obj_open(struct jsonw *w, const char *key);
void jsonw_obj_close(struct jsonw *w);
void jsonw_arr_open(struct jsonw *w, const char *key);
void jsonw_arr_close(struct jsonw *w);
void jsonw_str(struct jsonw *w, const char *key, const char *v);
void jsonw_strn(struct jsonw *w, const char *key, const char *v, size_t n);
void jsonw_u64(struct jsonw *w, const char *key, uint64_t v);
void jsonw_i64(struct jsonw *w, const char *key, int64_t v);
void jsonw_bool(struct jsonw *w, const char *key, int v);
void jsonw_null(struct jsonw *w, const char *key);
void jsonw_hex(struct jsonw *w, const char *key, const uint8_t *b, size_t n);
/* A string that may not be UTF-8 (a path from the command line): bytes
 * that are not valid UTF-8 make every non-ASCII byte '?'; NULL is null. */
void jsonw_text(struct jsonw *w, const char *key, const char *v);
/* Writes a JSON string literal (quoted, escaped) to f. */
void jsonw_quote(FILE *f, const char *s, size_t n);

#endif

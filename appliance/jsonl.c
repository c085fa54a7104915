#include "appliance/jsonl.h"

#include <stdlib.h>
#include <string.h>

#include "export/json.h"

struct jsonl_reads {
	char *label;
	const struct mapping *m;
	reads_fn fn;
	void *ctx;
	struct json_doc *doc;
	struct json_limits lim;
	char *line;
	size_t len, max;
	uint64_t lineno, nreads, pos;
	int failed, checked;
	struct read r;
};

struct jsonl_reads *jsonl_reads_new(const char *label, const struct mapping *m, size_t max_line,
                                    reads_fn fn, void *ctx)
{
	struct jsonl_reads *jr = calloc(1, sizeof *jr);

	if (jr == NULL)
		return NULL;
	jr->max = max_line ? max_line : JSONL_MAX_LINE_DEFAULT;
	jr->label = strdup(label != NULL ? label : "jsonl");
	jr->doc = json_doc_new();
	jr->line = malloc(jr->max + 1);
	if (jr->label == NULL || jr->doc == NULL || jr->line == NULL) {
		jsonl_reads_free(jr);
		return NULL;
	}
	json_limits_default(&jr->lim);
	jr->lim.max_bytes = jr->max;
	jr->m = m;
	jr->fn = fn;
	jr->ctx = ctx;
	return jr;
}

void jsonl_reads_free(struct jsonl_reads *jr)
{
	if (jr == NULL)
		return;
	free(jr->label);
	json_doc_free(jr->doc);
	free(jr->line);
	free(jr);
}

uint64_t jsonl_reads_count(const struct jsonl_reads *jr)
{
	return jr->nreads;
}

static int jfail(struct jsonl_reads *jr, struct sbx_err *e, const char *what)
{
	jr->failed = 1;
	return sbx_fail(e, SBX_EFORMAT, "%s line %llu: %s", jr->label,
	                (unsigned long long)jr->lineno, what);
}

static int ffail(struct jsonl_reads *jr, struct sbx_err *e, int f, const char *what)
{
	jr->failed = 1;
	return sbx_fail(e, SBX_EFORMAT, "%s line %llu, field %s (key \"%s\"): %s", jr->label,
	                (unsigned long long)jr->lineno, mapping_field_name(f),
	                jr->m->src[f].text, what);
}

/* Follows a key path from the root.  NULL when a step is missing or null;
 * *bad set when a step meets the wrong type. */
static const struct json_val *resolve(const struct json_doc *d, const struct json_val *v,
                                      const struct mapping_src *s, const char **bad)
{
	for (uint8_t i = 0; i < s->nseg && v != NULL; i++) {
		const struct mapping_seg *g = &s->seg[i];

		if (json_type_of(v) == JSON_NULL)
			return NULL;
		if (json_type_of(v) != JSON_OBJECT) {
			*bad = "a step of the key path is not an object";
			return NULL;
		}
		v = json_get(d, v, s->text + g->key_off, g->key_len);
		if (v == NULL || g->sel == 0 || json_type_of(v) == JSON_NULL)
			continue;
		if (json_type_of(v) != JSON_ARRAY) {
			*bad = "a step of the key path is not an array";
			return NULL;
		}
		if (g->sel == 1) {
			v = json_at(d, v, (size_t)g->index);
			continue;
		}
		{
			const struct json_val *el = json_first(d, v);

			for (; el != NULL; el = json_next(d, el)) {
				size_t n;
				const char *t;

				if (json_type_of(el) != JSON_OBJECT)
					continue;
				t = json_str(d, json_get(d, el, s->text + g->mk_off, g->mk_len), &n);
				if (t != NULL && n == g->mv_len && memcmp(t, s->text + g->mv_off, n) == 0)
					break;
			}
			v = el;
		}
	}
	if (v != NULL && json_type_of(v) == JSON_NULL)
		return NULL;
	return v;
}

static int numeric_field(int f)
{
	return f == READ_F_CAPTURED_AT || f == READ_F_LATITUDE || f == READ_F_LONGITUDE ||
	       f == READ_F_HEADING || f == READ_F_CONFIDENCE;
}

static int do_line(struct jsonl_reads *jr, const char *p, size_t n, struct sbx_err *e)
{
	struct sbx_err je;
	const struct json_val *root;
	struct mapping_vals vals;
	const char *why = "";
	int field = 0, rc;

	if (n > 0 && p[n - 1] == '\r')
		n--;
	if (n == 0)
		return jfail(jr, e, "blank line");
	sbx_err_clear(&je);
	if (json_parse(jr->doc, p, n, &jr->lim, &je) != 0) {
		jr->failed = 1;
		return sbx_fail(e, je.code, "%s line %llu: JSON %s", jr->label,
		                (unsigned long long)jr->lineno, je.msg);
	}
	root = json_root(jr->doc);
	if (json_type_of(root) != JSON_OBJECT)
		return jfail(jr, e, "not a JSON object");
	for (int f = 0; f < MAPPING_F_COUNT; f++) {
		const struct mapping_src *s = &jr->m->src[f];
		const struct json_val *v;
		const char *bad = NULL;
		int64_t iv;

		vals.v[f] = NULL;
		vals.n[f] = 0;
		if (s->len == 0)
			continue;
		v = resolve(jr->doc, root, s, &bad);
		if (bad != NULL)
			return ffail(jr, e, f, bad);
		if (v == NULL)
			continue;
		switch (json_type_of(v)) {
		case JSON_STRING:
			vals.v[f] = json_str(jr->doc, v, &vals.n[f]);
			break;
		case JSON_NUMBER:
			if (!numeric_field(f) && f != READ_F_VENDOR_ID && f != READ_F_CAMERA_ID)
				return ffail(jr, e, f, "must be a string, not a number");
			if (!numeric_field(f) && json_num_i64(jr->doc, v, &iv) != 0)
				return ffail(jr, e, f, "a numeric identifier must be an integer");
			vals.v[f] = json_num(jr->doc, v, &vals.n[f]);
			break;
		default:
			return ffail(jr, e, f, json_type_of(v) == JSON_OBJECT ? "must be a value, not an object"
			                       : json_type_of(v) == JSON_ARRAY ? "must be a value, not an array"
			                       : "must be a value, not a boolean");
		}
	}
	if (mapping_read(jr->m, &vals, &jr->r, &field, &why) != 0) {
		if (jr->m->src[field].len > 0)
			return ffail(jr, e, field, why);
		jr->failed = 1;
		return sbx_fail(e, SBX_EFORMAT, "%s line %llu, field %s: %s", jr->label,
		                (unsigned long long)jr->lineno, mapping_field_name(field), why);
	}
	jr->nreads++;
	rc = jr->fn(jr->ctx, &jr->r, jr->lineno, e);
	if (rc != 0)
		jr->failed = 1;
	return rc;
}

static int check_mapping(struct jsonl_reads *jr, struct sbx_err *e)
{
	for (int f = 0; f < MAPPING_F_COUNT; f++)
		if (jr->m->src[f].len > 0 && jr->m->src[f].nseg == 0) {
			jr->failed = 1;
			return sbx_fail(e, SBX_EINVAL, "%s: mapping source \"%s\" for %s is not a key path",
			                jr->label, jr->m->src[f].text, mapping_field_name(f));
		}
	jr->checked = 1;
	return 0;
}

int jsonl_reads_feed(struct jsonl_reads *jr, const void *buf, size_t n, struct sbx_err *e)
{
	const char *p = buf;
	size_t i = 0;
	int rc;

	if (jr->failed)
		return SBX_EFORMAT;
	if (!jr->checked && check_mapping(jr, e) != 0)
		return SBX_EINVAL;
	while (jr->pos < 3 && i < n) {
		static const unsigned char bom[3] = { 0xef, 0xbb, 0xbf };

		if ((unsigned char)p[i] != bom[jr->pos]) {
			if (jr->pos > 0) {
				jr->lineno = 1;
				return jfail(jr, e, "JSON byte 0: invalid UTF-8");
			}
			jr->pos = 3;
			break;
		}
		jr->pos++;
		i++;
	}
	while (i < n) {
		const char *nl = memchr(p + i, '\n', n - i);
		size_t k = nl != NULL ? (size_t)(nl - (p + i)) : n - i;

		if (k > jr->max - jr->len) {
			jr->lineno++;
			return jfail(jr, e, "line too long");
		}
		memcpy(jr->line + jr->len, p + i, k);
		jr->len += k;
		i += k;
		if (nl == NULL)
			break;
		i++;
		jr->lineno++;
		rc = do_line(jr, jr->line, jr->len, e);
		if (rc != 0)
			return rc;
		jr->len = 0;
	}
	return 0;
}

int jsonl_reads_end(struct jsonl_reads *jr, struct sbx_err *e)
{
	if (jr->failed)
		return SBX_EFORMAT;
	if (!jr->checked && check_mapping(jr, e) != 0)
		return SBX_EINVAL;
	if (jr->len > 0) {
		int rc;

		jr->lineno++;
		rc = do_line(jr, jr->line, jr->len, e);
		if (rc != 0)
			return rc;
		jr->len = 0;
	}
	if (jr->lineno == 0)
		return sbx_fail(e, SBX_EFORMAT, "%s: empty (no reads)", jr->label);
	return 0;
}

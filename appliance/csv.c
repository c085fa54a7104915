#include "appliance/csv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "export/wire.h"

enum {
	S_START,        /* at the start of a field */
	S_PLAIN,        /* inside an unquoted field */
	S_QUOTED,       /* inside a quoted field */
	S_QUOTE,        /* a quote inside a quoted field: closing, or the first of "" */
	S_CR,           /* a CR outside quotes: only LF may follow */
};

struct csv {
	char *label;
	struct csv_limits lim;
	csv_record_fn fn;
	void *ctx;
	char *buf;                      /* the record's fields, each NUL-terminated */
	size_t blen, bcap;
	const char **fp;
	size_t *fl, *fo;                /* field lengths and offsets */
	size_t nf, fcap;
	size_t fstart;                  /* offset of the current field in buf */
	int state, quoted, eol, dirty, failed;
	uint64_t line, rec_line, pos;
};

void csv_limits_default(struct csv_limits *l)
{
	l->max_field = 4096;
	l->max_fields = 256;
	l->max_record = 65536;
}

struct csv *csv_new(const char *label, const struct csv_limits *lim, csv_record_fn fn, void *ctx)
{
	struct csv *c = calloc(1, sizeof *c);

	if (c == NULL)
		return NULL;
	if (lim != NULL)
		c->lim = *lim;
	else
		csv_limits_default(&c->lim);
	c->label = strdup(label != NULL ? label : "csv");
	c->bcap = c->lim.max_record + 2 * c->lim.max_fields + 16;
	c->buf = malloc(c->bcap);
	c->fcap = c->lim.max_fields + 1;
	c->fp = calloc(c->fcap, sizeof *c->fp);
	c->fl = calloc(c->fcap, sizeof *c->fl);
	c->fo = calloc(c->fcap, sizeof *c->fo);
	if (c->label == NULL || c->buf == NULL || c->fp == NULL || c->fl == NULL || c->fo == NULL) {
		csv_free(c);
		return NULL;
	}
	c->fn = fn;
	c->ctx = ctx;
	c->line = 1;
	c->rec_line = 1;
	return c;
}

void csv_free(struct csv *c)
{
	if (c == NULL)
		return;
	free(c->label);
	free(c->buf);
	free((void *)c->fp);
	free(c->fl);
	free(c->fo);
	free(c);
}

static int cfail(struct csv *c, struct sbx_err *e, uint64_t line, const char *what)
{
	c->failed = 1;
	return sbx_fail(e, SBX_EFORMAT, "%s line %llu: %s", c->label, (unsigned long long)line, what);
}

static int ascii_or_utf8(const char *s, size_t n)
{
	size_t i = 0;

	/* Most fields are ASCII: check 8 bytes at a time first. */
	for (; i + 8 <= n; i += 8) {
		uint64_t w;

		memcpy(&w, s + i, 8);
		if (w & 0x8080808080808080ULL)
			break;
	}
	for (; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return wire_utf8_valid((const uint8_t *)s + i, n - i);
	return 1;
}

static int append(struct csv *c, struct sbx_err *e, const char *p, size_t n)
{
	if (c->blen - c->fstart + n > c->lim.max_field)
		return cfail(c, e, c->line, "field too long");
	if (c->blen + n > c->lim.max_record)
		return cfail(c, e, c->line, "record too long");
	memcpy(c->buf + c->blen, p, n);
	c->blen += n;
	c->dirty = 1;
	return 0;
}

static int end_field(struct csv *c, struct sbx_err *e)
{
	size_t n = c->blen - c->fstart;

	if (c->nf >= c->lim.max_fields)
		return cfail(c, e, c->rec_line, "too many fields");
	if (!ascii_or_utf8(c->buf + c->fstart, n)) {
		char msg[64];

		snprintf(msg, sizeof msg, "field %zu is not valid UTF-8", c->nf + 1);
		return cfail(c, e, c->rec_line, msg);
	}
	c->fo[c->nf] = c->fstart;
	c->fl[c->nf] = n;
	c->nf++;
	c->buf[c->blen++] = '\0';
	c->fstart = c->blen;
	c->quoted = 0;
	c->state = S_START;
	return 0;
}

static int end_record(struct csv *c, struct sbx_err *e, int eol)
{
	int r;

	if (c->nf == 0 && c->blen == c->fstart && !c->quoted)
		return cfail(c, e, c->rec_line, "blank line");
	if (end_field(c, e) != 0)
		return SBX_EFORMAT;
	if (eol != 0) {
		if (c->eol == 0)
			c->eol = eol;
		else if (c->eol != eol)
			return cfail(c, e, c->rec_line, "mixed line endings (CRLF and LF)");
	}
	for (size_t i = 0; i < c->nf; i++)
		c->fp[i] = c->buf + c->fo[i];
	r = c->fn(c->ctx, c->rec_line, c->fp, c->fl, c->nf, e);
	if (r != 0) {
		c->failed = 1;
		return r;
	}
	c->nf = 0;
	c->blen = 0;
	c->fstart = 0;
	c->dirty = 0;
	c->rec_line = c->line;
	return 0;
}

static const unsigned char plain_stop[256] = {
	[0] = 1, [','] = 1, ['\n'] = 1, ['\r'] = 1, ['"'] = 1,
};

int csv_feed(struct csv *c, const void *data, size_t n, struct sbx_err *e)
{
	const char *p = data;
	size_t i = 0;

	if (c->failed)
		return SBX_EFORMAT;
	/* A UTF-8 byte order mark (Excel writes one) is not part of the data. */
	while (c->pos < 3 && i < n) {
		static const unsigned char bom[3] = { 0xef, 0xbb, 0xbf };

		if ((unsigned char)p[i] != bom[c->pos]) {
			if (c->pos > 0)
				return cfail(c, e, 1, "field 1 is not valid UTF-8");
			c->pos = 3;
			break;
		}
		c->pos++;
		i++;
	}
	while (i < n) {
		char ch = p[i];
		size_t j;

		switch (c->state) {
		case S_START:
			if (ch == '"') {
				c->quoted = 1;
				c->dirty = 1;
				c->state = S_QUOTED;
				i++;
				continue;
			}
			c->state = S_PLAIN;
			continue;       /* the same byte, now inside a plain field */
		case S_PLAIN:
			j = i;
			while (j < n && !plain_stop[(unsigned char)p[j]])
				j++;
			if (j > i && append(c, e, p + i, j - i) != 0)
				return SBX_EFORMAT;
			i = j;
			if (i == n)
				break;
			ch = p[i++];
			if (ch == ',') {
				if (end_field(c, e) != 0)
					return SBX_EFORMAT;
			} else if (ch == '\n') {
				c->line++;
				if (end_record(c, e, 1) != 0)
					return SBX_EFORMAT;
			} else if (ch == '\r') {
				c->state = S_CR;
			} else if (ch == '"') {
				return cfail(c, e, c->line, "quote inside an unquoted field");
			} else {
				return cfail(c, e, c->line, "NUL byte");
			}
			break;
		case S_QUOTED:
			j = i;
			while (j < n && p[j] != '"' && p[j] != '\0') {
				if (p[j] == '\n')
					c->line++;
				j++;
			}
			if (j > i && append(c, e, p + i, j - i) != 0)
				return SBX_EFORMAT;
			i = j;
			if (i == n)
				break;
			if (p[i] == '\0')
				return cfail(c, e, c->line, "NUL byte");
			c->state = S_QUOTE;
			i++;
			break;
		case S_QUOTE:
			i++;
			if (ch == '"') {
				if (append(c, e, "\"", 1) != 0)
					return SBX_EFORMAT;
				c->state = S_QUOTED;
			} else if (ch == ',') {
				if (end_field(c, e) != 0)
					return SBX_EFORMAT;
			} else if (ch == '\n') {
				c->line++;
				if (end_record(c, e, 1) != 0)
					return SBX_EFORMAT;
			} else if (ch == '\r') {
				c->state = S_CR;
			} else {
				return cfail(c, e, c->line, ch == '\0' ? "NUL byte" : "text after a closing quote");
			}
			break;
		case S_CR:
			i++;
			if (ch != '\n')
				return cfail(c, e, c->line, "bare CR (lines must end in CRLF or LF)");
			c->line++;
			if (end_record(c, e, 2) != 0)
				return SBX_EFORMAT;
			break;
		}
	}
	return 0;
}

int csv_end(struct csv *c, struct sbx_err *e)
{
	if (c->failed)
		return SBX_EFORMAT;
	switch (c->state) {
	case S_QUOTED:
		return cfail(c, e, c->rec_line, "unterminated quoted field");
	case S_CR:
		return cfail(c, e, c->line, "bare CR (lines must end in CRLF or LF)");
	default:
		break;
	}
	if (c->state == S_START && c->nf == 0 && !c->dirty)
		return 0;
	return end_record(c, e, 0);
}

/* ---- reads from CSV ---- */

struct csv_reads {
	struct csv *c;
	const struct mapping *m;
	char *label;
	reads_fn fn;
	void *ctx;
	int have_header;
	int col[MAPPING_F_COUNT];
	size_t ncols;
	uint64_t nreads;
	struct read r;
};

static int header(struct csv_reads *cr, uint64_t line, const char *const *f, const size_t *len,
                  size_t n, struct sbx_err *e)
{
	const struct mapping *m = cr->m;

	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (len[i] == len[j] && strncasecmp(f[i], f[j], len[i]) == 0)
				return sbx_fail(e, SBX_EFORMAT, "%s line %llu: duplicate column \"%.64s\"",
				                cr->label, (unsigned long long)line, f[j]);
	for (int k = 0; k < MAPPING_F_COUNT; k++) {
		const struct mapping_src *s = &m->src[k];

		cr->col[k] = -1;
		if (s->len == 0)
			continue;
		for (size_t i = 0; i < n; i++)
			if (len[i] == s->len && strncasecmp(f[i], s->text, s->len) == 0) {
				cr->col[k] = (int)i;
				break;
			}
		if (cr->col[k] < 0 && (k == READ_F_VENDOR_ID || k == READ_F_PLATE ||
		                       k == READ_F_CAMERA_ID || k == READ_F_CAPTURED_AT ||
		                       k == MAPPING_F_DATE || k == MAPPING_F_TIME))
			return sbx_fail(e, SBX_EFORMAT, "%s line %llu: missing column \"%s\" (field %s)",
			                cr->label, (unsigned long long)line, s->text,
			                mapping_field_name(k));
	}
	cr->ncols = n;
	cr->have_header = 1;
	return 0;
}

static int on_record(void *ctx, uint64_t line, const char *const *f, const size_t *len,
                     size_t n, struct sbx_err *e)
{
	struct csv_reads *cr = ctx;
	struct mapping_vals vals;
	const char *why = "";
	int field = 0;

	if (!cr->have_header)
		return header(cr, line, f, len, n, e);
	if (n != cr->ncols)
		return sbx_fail(e, SBX_EFORMAT, "%s line %llu: %zu fields, the header has %zu (missing or extra columns)",
		                cr->label, (unsigned long long)line, n, cr->ncols);
	for (int k = 0; k < MAPPING_F_COUNT; k++) {
		vals.v[k] = cr->col[k] >= 0 ? f[cr->col[k]] : NULL;
		vals.n[k] = cr->col[k] >= 0 ? len[cr->col[k]] : 0;
	}
	if (mapping_read(cr->m, &vals, &cr->r, &field, &why) != 0) {
		if (cr->m->src[field].len > 0 && cr->col[field] >= 0)
			return sbx_fail(e, SBX_EFORMAT, "%s line %llu, field %s (column \"%s\"): %s",
			                cr->label, (unsigned long long)line, mapping_field_name(field),
			                cr->m->src[field].text, why);
		return sbx_fail(e, SBX_EFORMAT, "%s line %llu, field %s: %s", cr->label,
		                (unsigned long long)line, mapping_field_name(field), why);
	}
	cr->nreads++;
	return cr->fn(cr->ctx, &cr->r, line, e);
}

struct csv_reads *csv_reads_new(const char *label, const struct mapping *m,
                                reads_fn fn, void *ctx)
{
	struct csv_reads *cr = calloc(1, sizeof *cr);

	if (cr == NULL)
		return NULL;
	cr->label = strdup(label != NULL ? label : "csv");
	cr->c = csv_new(label, NULL, on_record, cr);
	if (cr->label == NULL || cr->c == NULL) {
		csv_reads_free(cr);
		return NULL;
	}
	cr->m = m;
	cr->fn = fn;
	cr->ctx = ctx;
	return cr;
}

int csv_reads_feed(struct csv_reads *cr, const void *buf, size_t n, struct sbx_err *e)
{
	return csv_feed(cr->c, buf, n, e);
}

int csv_reads_end(struct csv_reads *cr, struct sbx_err *e)
{
	int r = csv_end(cr->c, e);

	if (r != 0)
		return r;
	if (!cr->have_header)
		return sbx_fail(e, SBX_EFORMAT, "%s: empty (no header line)", cr->label);
	return 0;
}

uint64_t csv_reads_count(const struct csv_reads *cr)
{
	return cr->nreads;
}

void csv_reads_free(struct csv_reads *cr)
{
	if (cr == NULL)
		return;
	csv_free(cr->c);
	free(cr->label);
	free(cr);
}

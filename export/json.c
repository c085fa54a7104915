#include "export/json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/wire.h"

/* A value.  Indices are 1-based into doc->v so that 0 means "none"; they
 * stay valid while the array grows during the parse. */
struct json_val {
	uint8_t type;
	uint8_t member;         /* an object member: key_off/key_len are set */
	uint32_t next;          /* next sibling */
	uint32_t child;         /* first element or member */
	uint32_t count;
	uint32_t key_off, key_len;      /* members: the key in doc->s */
	uint32_t off, len;              /* strings and numbers: text in doc->s */
};

struct json_doc {
	struct json_val *v;
	size_t nv, capv;
	char *s;
	size_t ns, caps;
	int ok;
};

#define JSON_MAX_TOTAL ((size_t)1 << 30)

void json_limits_default(struct json_limits *l)
{
	l->max_depth = JSON_MAX_DEPTH;
	l->max_bytes = (size_t)1 << 20;
	l->max_values = 65536;
	l->max_string = 65536;
}

struct json_doc *json_doc_new(void)
{
	return calloc(1, sizeof(struct json_doc));
}

void json_doc_free(struct json_doc *d)
{
	if (d == NULL)
		return;
	free(d->v);
	free(d->s);
	free(d);
}

/* ---- parser ---- */

struct ps {
	const unsigned char *p;
	size_t n, i;
	struct json_doc *d;
	struct json_limits lim;
	unsigned depth;
	struct sbx_err *e;
	int r;                  /* first error code */
};

static int pfail(struct ps *s, int code, const char *what)
{
	if (s->r == 0) {
		s->r = code;
		sbx_fail(s->e, code, "byte %zu: %s", s->i, what);
	}
	return code;
}

static void skip_ws(struct ps *s)
{
	while (s->i < s->n) {
		unsigned char c = s->p[s->i];

		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		s->i++;
	}
}

static int new_val(struct ps *s, uint8_t type, uint32_t *idx)
{
	struct json_doc *d = s->d;

	if (d->nv >= s->lim.max_values)
		return pfail(s, SBX_EFORMAT, "too many values");
	if (d->nv == d->capv) {
		size_t cap = d->capv ? d->capv * 2 : 64;
		struct json_val *nv = realloc(d->v, cap * sizeof *nv);

		if (nv == NULL)
			return pfail(s, SBX_ENOMEM, "out of memory");
		d->v = nv;
		d->capv = cap;
	}
	memset(&d->v[d->nv], 0, sizeof d->v[0]);
	d->v[d->nv].type = type;
	*idx = (uint32_t)++d->nv;
	return 0;
}

static int sreserve(struct ps *s, size_t n)
{
	struct json_doc *d = s->d;
	size_t cap;
	char *np;

	if (n <= d->caps - d->ns)
		return 0;
	if (n > JSON_MAX_TOTAL - d->ns)
		return pfail(s, SBX_EFORMAT, "document too large");
	cap = d->caps ? d->caps : 256;
	while (cap - d->ns < n)
		cap *= 2;
	np = realloc(d->s, cap);
	if (np == NULL)
		return pfail(s, SBX_ENOMEM, "out of memory");
	d->s = np;
	d->caps = cap;
	return 0;
}

static int sput(struct ps *s, const void *b, size_t n)
{
	if (sreserve(s, n) != 0)
		return s->r;
	memcpy(s->d->s + s->d->ns, b, n);
	s->d->ns += n;
	return 0;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int read_u4(struct ps *s, uint32_t *out)
{
	uint32_t v = 0;

	if (s->n - s->i < 4)
		return pfail(s, SBX_EFORMAT, "truncated \\u escape");
	for (int k = 0; k < 4; k++) {
		int h = hexval(s->p[s->i + k]);

		if (h < 0)
			return pfail(s, SBX_EFORMAT, "bad \\u escape");
		v = (v << 4) | (uint32_t)h;
	}
	s->i += 4;
	*out = v;
	return 0;
}

static size_t utf8_put(uint32_t cp, unsigned char b[4])
{
	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | (cp >> 6));
		b[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | (cp >> 12));
		b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	b[0] = (unsigned char)(0xf0 | (cp >> 18));
	b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	b[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Length of the valid UTF-8 sequence at p[0..n) (lead byte >= 0x80), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t need;
	uint32_t cp, min;

	if ((c & 0xe0) == 0xc0) {
		need = 1; cp = c & 0x1f; min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		need = 2; cp = c & 0x0f; min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		need = 3; cp = c & 0x07; min = 0x10000;
	} else {
		return 0;
	}
	if (n < need + 1)
		return 0;
	for (size_t k = 1; k <= need; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return need + 1;
}

/* At the opening quote.  Appends the decoded, NUL-terminated string to d->s. */
static int parse_string(struct ps *s, uint32_t *off, uint32_t *len)
{
	size_t start;

	s->i++;         /* the quote */
	if (s->d->ns > UINT32_MAX - 1)
		return pfail(s, SBX_EFORMAT, "document too large");
	start = s->d->ns;
	for (;;) {
		size_t run = s->i;
		unsigned char c;

		while (run < s->n) {
			c = s->p[run];
			if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80)
				break;
			run++;
		}
		if (run > s->i && sput(s, s->p + s->i, run - s->i) != 0)
			return s->r;
		s->i = run;
		if (s->i >= s->n)
			return pfail(s, SBX_EFORMAT, "unterminated string");
		c = s->p[s->i];
		if (c == '"') {
			s->i++;
			break;
		}
		if (c < 0x20)
			return pfail(s, SBX_EFORMAT, "control character in string");
		if (c >= 0x80) {
			size_t k = utf8_seq(s->p + s->i, s->n - s->i);

			if (k == 0)
				return pfail(s, SBX_EFORMAT, "invalid UTF-8");
			if (sput(s, s->p + s->i, k) != 0)
				return s->r;
			s->i += k;
		} else {        /* backslash */
			unsigned char b[4];
			uint32_t cp = 0, lo = 0;
			char ch;

			if (s->n - s->i < 2)
				return pfail(s, SBX_EFORMAT, "unterminated string");
			ch = (char)s->p[s->i + 1];
			s->i += 2;
			switch (ch) {
			case '"':  b[0] = '"'; break;
			case '\\': b[0] = '\\'; break;
			case '/':  b[0] = '/'; break;
			case 'b':  b[0] = '\b'; break;
			case 'f':  b[0] = '\f'; break;
			case 'n':  b[0] = '\n'; break;
			case 'r':  b[0] = '\r'; break;
			case 't':  b[0] = '\t'; break;
			case 'u':
				if (read_u4(s, &cp) != 0)
					return s->r;
				if (cp == 0)
					return pfail(s, SBX_EFORMAT, "\\u0000 in string");
				if (cp >= 0xdc00 && cp <= 0xdfff)
					return pfail(s, SBX_EFORMAT, "lone low surrogate");
				if (cp >= 0xd800 && cp <= 0xdbff) {
					if (s->n - s->i < 2 || s->p[s->i] != '\\' || s->p[s->i + 1] != 'u')
						return pfail(s, SBX_EFORMAT, "lone high surrogate");
					s->i += 2;
					if (read_u4(s, &lo) != 0)
						return s->r;
					if (lo < 0xdc00 || lo > 0xdfff)
						return pfail(s, SBX_EFORMAT, "lone high surrogate");
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				}
				if (sput(s, b, utf8_put(cp, b)) != 0)
					return s->r;
				goto next;
			default:
				return pfail(s, SBX_EFORMAT, "bad escape");
			}
			if (sput(s, b, 1) != 0)
				return s->r;
		}
next:
		if (s->d->ns - start > s->lim.max_string)
			return pfail(s, SBX_EFORMAT, "string too long");
	}
	if (s->d->ns - start > s->lim.max_string)
		return pfail(s, SBX_EFORMAT, "string too long");
	*off = (uint32_t)start;
	*len = (uint32_t)(s->d->ns - start);
	return sput(s, "", 1);
}

/* Scans a number at p[0..n): its length in *used; NULL, or what is wrong. */
static const char *num_scan(const unsigned char *p, size_t n, size_t *used)
{
	size_t i = 0, intd = 0, fracz = 0;
	long m = 0, ex = 0;
	int nonzero = 0, eneg = 0;

	if (i < n && p[i] == '-')
		i++;
	if (i >= n || p[i] < '0' || p[i] > '9')
		return "bad number";
	if (p[i] == '0') {
		i++;
	} else {
		nonzero = 1;
		while (i < n && p[i] >= '0' && p[i] <= '9') {
			i++;
			intd++;
		}
	}
	if (i < n && p[i] == '.') {
		size_t fd = 0;

		i++;
		while (i < n && p[i] >= '0' && p[i] <= '9') {
			if (!nonzero) {
				if (p[i] != '0')
					nonzero = 2;
				else
					fracz++;
			}
			i++;
			fd++;
		}
		if (fd == 0)
			return "bad number";
	}
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		size_t ed = 0;

		i++;
		if (i < n && (p[i] == '+' || p[i] == '-'))
			eneg = p[i++] == '-';
		while (i < n && p[i] >= '0' && p[i] <= '9') {
			if (ex < 100000)
				ex = ex * 10 + (p[i] - '0');
			i++;
			ed++;
		}
		if (ed == 0)
			return "bad number";
	}
	*used = i;
	if (i > JSON_NUM_MAX)
		return "number too long";
	if (nonzero) {
		/* Decimal exponent of the leading digit: outside what a double
		 * holds (normal range) is refused rather than rounded to inf or 0. */
		m = nonzero == 1 ? (long)intd - 1 : -(long)fracz - 1;
		m += eneg ? -ex : ex;
		if (m > 308 || m < -307)
			return "number out of range";
	}
	return NULL;
}

static int parse_number(struct ps *s, uint32_t idx)
{
	size_t used = 0;
	const char *why = num_scan(s->p + s->i, s->n - s->i, &used);
	struct json_val *v;

	if (why != NULL)
		return pfail(s, SBX_EFORMAT, why);
	if (s->d->ns > UINT32_MAX - used - 1)
		return pfail(s, SBX_EFORMAT, "document too large");
	v = &s->d->v[idx - 1];
	v->off = (uint32_t)s->d->ns;
	v->len = (uint32_t)used;
	if (sput(s, s->p + s->i, used) != 0 || sput(s, "", 1) != 0)
		return s->r;
	s->i += used;
	return 0;
}

static int literal(struct ps *s, const char *word)
{
	size_t n = strlen(word);

	if (s->n - s->i < n || memcmp(s->p + s->i, word, n) != 0)
		return pfail(s, SBX_EFORMAT, "unexpected character");
	s->i += n;
	return 0;
}

static int key_cmp(const void *a, const void *b, void *ctx)
{
	const struct json_doc *d = ctx;
	const struct json_val *x = &d->v[*(const uint32_t *)a - 1];
	const struct json_val *y = &d->v[*(const uint32_t *)b - 1];

	if (x->key_len != y->key_len)
		return x->key_len < y->key_len ? -1 : 1;
	return memcmp(d->s + x->key_off, d->s + y->key_off, x->key_len);
}

static int same_key(const struct json_doc *d, uint32_t a, uint32_t b)
{
	return key_cmp(&a, &b, (void *)d) == 0;
}

static int check_dup_keys(struct ps *s, uint32_t obj)
{
	struct json_doc *d = s->d;
	uint32_t n = d->v[obj - 1].count, k = 0;
	uint32_t *ix;
	int r = 0;

	if (n < 2)
		return 0;
	if (n <= 16) {
		for (uint32_t a = d->v[obj - 1].child; a != 0; a = d->v[a - 1].next)
			for (uint32_t b = d->v[a - 1].next; b != 0; b = d->v[b - 1].next)
				if (same_key(d, a, b))
					return pfail(s, SBX_EFORMAT, "duplicate key");
		return 0;
	}
	ix = malloc(n * sizeof *ix);
	if (ix == NULL)
		return pfail(s, SBX_ENOMEM, "out of memory");
	for (uint32_t a = d->v[obj - 1].child; a != 0; a = d->v[a - 1].next)
		ix[k++] = a;
	qsort_r(ix, n, sizeof *ix, key_cmp, d);
	for (uint32_t i = 1; i < n; i++)
		if (same_key(d, ix[i - 1], ix[i])) {
			r = pfail(s, SBX_EFORMAT, "duplicate key");
			break;
		}
	free(ix);
	return r;
}

static int parse_value(struct ps *s, uint32_t *out);

static int parse_container(struct ps *s, uint32_t idx, int is_obj)
{
	char close = is_obj ? '}' : ']';
	uint32_t prev = 0;

	if (++s->depth > s->lim.max_depth)
		return pfail(s, SBX_EFORMAT, "nesting too deep");
	s->i++;
	skip_ws(s);
	if (s->i < s->n && s->p[s->i] == (unsigned char)close) {
		s->i++;
		s->depth--;
		return 0;
	}
	for (;;) {
		uint32_t koff = 0, klen = 0, child = 0;

		skip_ws(s);
		if (is_obj) {
			if (s->i >= s->n || s->p[s->i] != '"')
				return pfail(s, SBX_EFORMAT, "expected a key");
			if (parse_string(s, &koff, &klen) != 0)
				return s->r;
			skip_ws(s);
			if (s->i >= s->n || s->p[s->i] != ':')
				return pfail(s, SBX_EFORMAT, "expected ':'");
			s->i++;
		}
		if (parse_value(s, &child) != 0)
			return s->r;
		s->d->v[child - 1].key_off = koff;
		s->d->v[child - 1].key_len = klen;
		s->d->v[child - 1].member = (uint8_t)is_obj;
		if (prev == 0)
			s->d->v[idx - 1].child = child;
		else
			s->d->v[prev - 1].next = child;
		prev = child;
		s->d->v[idx - 1].count++;
		skip_ws(s);
		if (s->i >= s->n)
			return pfail(s, SBX_EFORMAT, is_obj ? "unterminated object" : "unterminated array");
		if (s->p[s->i] == ',') {
			s->i++;
			continue;
		}
		if (s->p[s->i] == (unsigned char)close) {
			s->i++;
			break;
		}
		return pfail(s, SBX_EFORMAT, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
	}
	s->depth--;
	return is_obj ? check_dup_keys(s, idx) : 0;
}

static int parse_value(struct ps *s, uint32_t *out)
{
	uint32_t idx = 0;
	unsigned char c;

	skip_ws(s);
	if (s->i >= s->n)
		return pfail(s, SBX_EFORMAT, "expected a value");
	c = s->p[s->i];
	switch (c) {
	case '{':
		if (new_val(s, JSON_OBJECT, &idx) != 0 || parse_container(s, idx, 1) != 0)
			return s->r;
		break;
	case '[':
		if (new_val(s, JSON_ARRAY, &idx) != 0 || parse_container(s, idx, 0) != 0)
			return s->r;
		break;
	case '"':
		if (new_val(s, JSON_STRING, &idx) != 0)
			return s->r;
		{
			uint32_t off = 0, len = 0;

			if (parse_string(s, &off, &len) != 0)
				return s->r;
			s->d->v[idx - 1].off = off;
			s->d->v[idx - 1].len = len;
		}
		break;
	case 't':
		if (new_val(s, JSON_TRUE, &idx) != 0 || literal(s, "true") != 0)
			return s->r;
		break;
	case 'f':
		if (new_val(s, JSON_FALSE, &idx) != 0 || literal(s, "false") != 0)
			return s->r;
		break;
	case 'n':
		if (new_val(s, JSON_NULL, &idx) != 0 || literal(s, "null") != 0)
			return s->r;
		break;
	default:
		if (c != '-' && (c < '0' || c > '9'))
			return pfail(s, SBX_EFORMAT, "unexpected character");
		if (new_val(s, JSON_NUMBER, &idx) != 0 || parse_number(s, idx) != 0)
			return s->r;
		break;
	}
	*out = idx;
	return 0;
}

int json_parse(struct json_doc *d, const char *text, size_t len,
               const struct json_limits *lim, struct sbx_err *e)
{
	struct ps s;
	uint32_t root;

	memset(&s, 0, sizeof s);
	if (lim != NULL)
		s.lim = *lim;
	else
		json_limits_default(&s.lim);
	if (s.lim.max_depth > JSON_MAX_DEPTH)
		s.lim.max_depth = JSON_MAX_DEPTH;
	if (s.lim.max_values > UINT32_MAX - 1)
		s.lim.max_values = UINT32_MAX - 1;
	if (d == NULL || (text == NULL && len > 0))
		return sbx_fail(e, SBX_EINVAL, "json_parse: bad arguments");
	d->nv = 0;
	d->ns = 0;
	d->ok = 0;
	s.p = (const unsigned char *)text;
	s.n = len;
	s.d = d;
	s.e = e;
	if (len > s.lim.max_bytes)
		return sbx_fail(e, SBX_EFORMAT, "JSON document longer than %zu bytes", s.lim.max_bytes);
	if (parse_value(&s, &root) != 0) {
		d->nv = 0;
		return s.r;
	}
	skip_ws(&s);
	if (s.i != s.n) {
		d->nv = 0;
		return pfail(&s, SBX_EFORMAT, "trailing bytes after the JSON value");
	}
	d->ok = 1;
	return 0;
}

/* ---- access ---- */

const struct json_val *json_root(const struct json_doc *d)
{
	return d != NULL && d->ok && d->nv > 0 ? &d->v[0] : NULL;
}

enum json_type json_type_of(const struct json_val *v)
{
	return v != NULL ? (enum json_type)v->type : JSON_NULL;
}

const char *json_type_name(enum json_type t)
{
	switch (t) {
	case JSON_NULL:   return "null";
	case JSON_FALSE:
	case JSON_TRUE:   return "boolean";
	case JSON_NUMBER: return "number";
	case JSON_STRING: return "string";
	case JSON_ARRAY:  return "array";
	case JSON_OBJECT: return "object";
	}
	return "?";
}

const struct json_val *json_first(const struct json_doc *d, const struct json_val *v)
{
	if (v == NULL || (v->type != JSON_ARRAY && v->type != JSON_OBJECT) || v->child == 0)
		return NULL;
	return &d->v[v->child - 1];
}

const struct json_val *json_next(const struct json_doc *d, const struct json_val *v)
{
	return v != NULL && v->next != 0 ? &d->v[v->next - 1] : NULL;
}

const struct json_val *json_get(const struct json_doc *d, const struct json_val *obj,
                                const char *key, size_t klen)
{
	if (obj == NULL || obj->type != JSON_OBJECT)
		return NULL;
	for (const struct json_val *m = json_first(d, obj); m != NULL; m = json_next(d, m))
		if (m->key_len == klen && memcmp(d->s + m->key_off, key, klen) == 0)
			return m;
	return NULL;
}

const struct json_val *json_at(const struct json_doc *d, const struct json_val *arr, size_t i)
{
	const struct json_val *m;

	if (arr == NULL || arr->type != JSON_ARRAY || i >= arr->count)
		return NULL;
	for (m = json_first(d, arr); m != NULL && i > 0; i--)
		m = json_next(d, m);
	return m;
}

size_t json_count(const struct json_val *v)
{
	return v != NULL ? v->count : 0;
}

const char *json_key(const struct json_doc *d, const struct json_val *m, size_t *len)
{
	if (m == NULL || !m->member)
		return NULL;
	if (len != NULL)
		*len = m->key_len;
	return d->s + m->key_off;
}

const char *json_str(const struct json_doc *d, const struct json_val *v, size_t *len)
{
	if (v == NULL || v->type != JSON_STRING)
		return NULL;
	if (len != NULL)
		*len = v->len;
	return d->s + v->off;
}

const char *json_num(const struct json_doc *d, const struct json_val *v, size_t *len)
{
	if (v == NULL || v->type != JSON_NUMBER)
		return NULL;
	if (len != NULL)
		*len = v->len;
	return d->s + v->off;
}

int json_num_i64(const struct json_doc *d, const struct json_val *v, int64_t *out)
{
	size_t n, i = 0;
	const char *t = json_num(d, v, &n);
	uint64_t acc = 0, lim;
	int neg = 0;

	if (t == NULL)
		return SBX_EFORMAT;
	if (t[0] == '-') {
		neg = 1;
		i = 1;
	}
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < n; i++) {
		unsigned dg;

		if (t[i] < '0' || t[i] > '9')
			return SBX_EFORMAT;     /* fraction or exponent */
		dg = (unsigned)(t[i] - '0');
		if (acc > (lim - dg) / 10)
			return SBX_EFORMAT;
		acc = acc * 10 + dg;
	}
	*out = neg ? (int64_t)(0 - acc) : (int64_t)acc;
	return 0;
}

/* ---- writer ---- */

size_t json_escape(char *out, size_t cap, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0, i = 0;

	/* Printable ASCII without quote or backslash, the common case, is
	 * copied as it is. */
	while (i < n && p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\')
		i++;
	if (i == n) {
		if (out != NULL && n > 0)    /* s may be NULL when n is 0 */
			memcpy(out, s, n < cap ? n : cap);
		return n;
	}
	i = 0;
	if (!wire_utf8_valid(p, n))
		return (size_t)-1;
	while (i < n) {
		unsigned char c = p[i++];
		char esc[8];
		size_t k = 0;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			k = 2;
		} else if (c < 0x20 || c == 0x7f) {
			switch (c) {
			case '\b': memcpy(esc, "\\b", 2); k = 2; break;
			case '\f': memcpy(esc, "\\f", 2); k = 2; break;
			case '\n': memcpy(esc, "\\n", 2); k = 2; break;
			case '\r': memcpy(esc, "\\r", 2); k = 2; break;
			case '\t': memcpy(esc, "\\t", 2); k = 2; break;
			default:
				snprintf(esc, sizeof esc, "\\u%04x", c);
				k = 6;
				break;
			}
		} else {
			if (o < cap)
				out[o] = (char)c;
			o++;
			continue;
		}
		for (size_t j = 0; j < k; j++, o++)
			if (o < cap)
				out[o] = esc[j];
	}
	return o;
}

void json_w_init(struct json_w *w)
{
	memset(w, 0, sizeof *w);
	w->first[0] = 1;
}

void json_w_init_fixed(struct json_w *w, char *buf, size_t cap)
{
	json_w_init(w);
	w->p = buf;
	w->cap = cap;
	w->fixed = 1;
	if (cap == 0)
		w->err = SBX_EINVAL;
}

void json_w_reset(struct json_w *w)
{
	w->len = 0;
	w->err = w->fixed && w->cap == 0 ? SBX_EINVAL : 0;
	w->depth = 0;
	w->after_key = 0;
	w->first[0] = 1;
}

void json_w_free(struct json_w *w)
{
	if (!w->fixed)
		free(w->p);
	memset(w, 0, sizeof *w);
}

static int wreserve(struct json_w *w, size_t n)
{
	size_t cap;
	char *np;

	if (w->err != 0)
		return -1;
	if (w->p != NULL && n + 1 <= w->cap - w->len)    /* +1 keeps room for a final NUL */
		return 0;
	if (w->fixed || n > JSON_MAX_TOTAL - w->len) {
		w->err = SBX_EFORMAT;
		return -1;
	}
	cap = w->cap ? w->cap : 256;
	while (cap - w->len < n + 1)
		cap *= 2;
	np = realloc(w->p, cap);
	if (np == NULL) {
		w->err = SBX_ENOMEM;
		return -1;
	}
	w->p = np;
	w->cap = cap;
	return 0;
}

void json_w_raw(struct json_w *w, const char *s, size_t n)
{
	if (wreserve(w, n) != 0)
		return;
	if (n > 0)
		memcpy(w->p + w->len, s, n);
	w->len += n;
	w->p[w->len] = '\0';
}

/* Comma before a value or key; the first element at each depth gets none. */
static void sep(struct json_w *w, int is_key)
{
	if (w->err != 0)
		return;
	if (w->after_key && !is_key) {
		w->after_key = 0;
		return;
	}
	if (w->after_key) {             /* a key after a key */
		w->err = SBX_EINVAL;
		return;
	}
	if (w->depth > 0 && !w->first[w->depth])
		json_w_raw(w, ",", 1);
	w->first[w->depth] = 0;
}

static void put_escaped(struct json_w *w, const char *s, size_t n)
{
	size_t need;

	if (w->err != 0)
		return;
	/* Escape straight into the free space when it fits (the usual case);
	 * otherwise grow by what it needs and escape again. */
	need = w->cap - w->len > 2 ? json_escape(w->p + w->len + 1, w->cap - w->len - 2, s, n)
	                           : json_escape(NULL, 0, s, n);
	if (need == (size_t)-1) {
		w->err = SBX_EFORMAT;
		return;
	}
	if (need + 3 > w->cap - w->len) {
		if (wreserve(w, need + 2) != 0)
			return;
		json_escape(w->p + w->len + 1, need, s, n);
	}
	w->p[w->len++] = '"';
	w->len += need;
	w->p[w->len++] = '"';
	w->p[w->len] = '\0';
}

static void open_c(struct json_w *w, char c)
{
	sep(w, 0);
	if (w->err != 0)
		return;
	if (w->depth >= JSON_MAX_DEPTH) {
		w->err = SBX_EINVAL;
		return;
	}
	json_w_raw(w, &c, 1);
	w->depth++;
	w->first[w->depth] = 1;
}

static void close_c(struct json_w *w, char c)
{
	if (w->err != 0)
		return;
	if (w->depth == 0 || w->after_key) {
		w->err = SBX_EINVAL;
		return;
	}
	w->depth--;
	json_w_raw(w, &c, 1);
}

void json_w_obj(struct json_w *w)     { open_c(w, '{'); }
void json_w_obj_end(struct json_w *w) { close_c(w, '}'); }
void json_w_arr(struct json_w *w)     { open_c(w, '['); }
void json_w_arr_end(struct json_w *w) { close_c(w, ']'); }

void json_w_key(struct json_w *w, const char *k)
{
	if (w->err == 0 && w->depth == 0)
		w->err = SBX_EINVAL;
	sep(w, 1);
	put_escaped(w, k, k != NULL ? strlen(k) : 0);
	json_w_raw(w, ":", 1);
	if (w->err == 0)
		w->after_key = 1;
}

void json_w_strn(struct json_w *w, const char *s, size_t n)
{
	sep(w, 0);
	put_escaped(w, s, n);
}

void json_w_str(struct json_w *w, const char *s)
{
	json_w_strn(w, s, s != NULL ? strlen(s) : 0);
}

void json_w_i64(struct json_w *w, int64_t v)
{
	char b[24];
	int n = snprintf(b, sizeof b, "%" PRId64, v);

	sep(w, 0);
	json_w_raw(w, b, (size_t)n);
}

void json_w_u64(struct json_w *w, uint64_t v)
{
	char b[24];
	int n = snprintf(b, sizeof b, "%" PRIu64, v);

	sep(w, 0);
	json_w_raw(w, b, (size_t)n);
}

void json_w_bool(struct json_w *w, int v)
{
	sep(w, 0);
	json_w_raw(w, v ? "true" : "false", v ? 4 : 5);
}

void json_w_null(struct json_w *w)
{
	sep(w, 0);
	json_w_raw(w, "null", 4);
}

void json_w_number(struct json_w *w, const char *text)
{
	size_t n = text != NULL ? strlen(text) : 0, used = 0;

	if (w->err == 0 && (n == 0 || num_scan((const unsigned char *)text, n, &used) != NULL || used != n))
		w->err = SBX_EFORMAT;
	sep(w, 0);
	json_w_raw(w, text, n);
}

int json_w_error(const struct json_w *w)
{
	if (w->err != 0)
		return w->err;
	return w->depth != 0 || w->after_key ? SBX_EINVAL : 0;
}

int json_w_take(struct json_w *w, char **out, size_t *len)
{
	int r = json_w_error(w);

	if (r == 0 && w->fixed)
		r = SBX_EINVAL;
	if (r == 0 && w->p == NULL)
		json_w_raw(w, "", 0);
	if (r == 0)
		r = w->err;
	if (r != 0) {
		json_w_free(w);
		return r;
	}
	*out = w->p;
	*len = w->len;
	memset(w, 0, sizeof *w);
	return 0;
}

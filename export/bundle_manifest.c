/* The public manifest (docs/FORMAT.md section 3): canonical encoding, and a
 * strict parse that re-encodes what it read and compares bytes, so every
 * manifest has exactly one accepted form (and so one bundle id). */
#include "export/bundle.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/hash.h"
#include "crypto/stream.h"
#include "export/json.h"
#include "export/wire.h"

#define FORMAT_NAME "sealbox-bundle"

/* ---- the field rules ------------------------------------------------------ */

static int str_ok(const char *s, size_t cap, int may_be_empty)
{
	size_t n = strnlen(s, cap);

	if (n == cap || (n == 0 && !may_be_empty))
		return 0;
	return wire_utf8_valid((const uint8_t *)s, n);
}

int bundle_manifest_check(const struct bundle_manifest *m, struct sbx_err *e)
{
	uint64_t ct;

	if (m->version != BUNDLE_VERSION)
		return sbx_fail(e, SBX_EFORMAT, "manifest: unsupported version %u", m->version);
	if (!str_ok(m->case_id, sizeof m->case_id, 0))
		return sbx_fail(e, SBX_EFORMAT, "manifest: case must be 1-%zu bytes of UTF-8",
		                sizeof m->case_id - 1);
	if (!str_ok(m->source, sizeof m->source, 1))
		return sbx_fail(e, SBX_EFORMAT, "manifest: source must be 0-%zu bytes of UTF-8",
		                sizeof m->source - 1);
	if (!str_ok(m->operator_id, sizeof m->operator_id, 0))
		return sbx_fail(e, SBX_EFORMAT, "manifest: operator must be 1-%zu bytes of UTF-8",
		                sizeof m->operator_id - 1);
	if (!str_ok(m->authority, sizeof m->authority, 0))
		return sbx_fail(e, SBX_EFORMAT, "manifest: hold.authority must be 1-%zu bytes of UTF-8",
		                sizeof m->authority - 1);
	if (!str_ok(m->purpose, sizeof m->purpose, 0))
		return sbx_fail(e, SBX_EFORMAT, "manifest: hold.purpose must be 1-%zu bytes of UTF-8",
		                sizeof m->purpose - 1);
	if (m->reads == 0) {
		if (m->cameras != 0 || m->first_captured_ms != 0 || m->last_captured_ms != 0)
			return sbx_fail(e, SBX_EFORMAT, "manifest: no reads, but cameras or a time range");
	} else if (m->cameras == 0 || m->cameras > m->reads ||
	           m->first_captured_ms > m->last_captured_ms) {
		return sbx_fail(e, SBX_EFORMAT, "manifest: reads.cameras must be 1..count and "
		                "first_captured_ms <= last_captured_ms");
	}
	if (m->items > BUNDLE_MAX_ITEMS || m->items < 2 || m->images != m->items - 2)
		return sbx_fail(e, SBX_EFORMAT, "manifest: payload.items must be reads.images + 2 "
		                "(at most %u)", BUNDLE_MAX_ITEMS);
	if (m->ciphertext_bytes > BUNDLE_MAX_PAYLOAD ||
	    stream_ciphertext_size(m->plaintext_bytes, NULL, &ct) != 0 || ct != m->ciphertext_bytes)
		return sbx_fail(e, SBX_EFORMAT, "manifest: ciphertext_bytes %" PRIu64 " is not the "
		                "stream size of %" PRIu64 " plaintext bytes (at most 2^48)",
		                m->ciphertext_bytes, m->plaintext_bytes);
	return 0;
}

/* ---- encoding -------------------------------------------------------------- */

struct sbuf {
	char *p;
	size_t len, cap;
	int err;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (b->err != 0)
		return;
	if (n >= b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 2048;
		char *np;

		while (n >= cap - b->len)
			cap *= 2;
		np = realloc(b->p, cap);
		if (np == NULL) {
			b->err = SBX_ENOMEM;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

/* Escapes only what JSON requires: '"', '\' and C0 controls as \u00xx. */
static void sb_jstr(struct sbuf *b, const char *s)
{
	static const char hx[] = "0123456789abcdef";
	size_t n = strlen(s);

	sb_put(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			char esc[2] = { '\\', (char)c };

			sb_put(b, esc, 2);
		} else if (c < 0x20) {
			char esc[6] = { '\\', 'u', '0', '0', hx[c >> 4], hx[c & 15] };

			sb_put(b, esc, 6);
		} else {
			sb_put(b, s + i, 1);
		}
	}
	sb_put(b, "\"", 1);
}

/* `indent` spaces, the key, ": ". */
static void sb_key(struct sbuf *b, int indent, const char *k)
{
	sb_put(b, "        ", (size_t)indent);
	sb_jstr(b, k);
	sb_put(b, ": ", 2);
}

static void f_str(struct sbuf *b, int indent, const char *k, const char *v, int last)
{
	sb_key(b, indent, k);
	sb_jstr(b, v);
	sb_str(b, last ? "\n" : ",\n");
}

static void f_u64(struct sbuf *b, int indent, const char *k, uint64_t v, int last)
{
	char num[24];

	snprintf(num, sizeof num, "%" PRIu64, v);
	sb_key(b, indent, k);
	sb_str(b, num);
	sb_str(b, last ? "\n" : ",\n");
}

static void f_hex(struct sbuf *b, int indent, const char *k, const uint8_t v[32], int last)
{
	char hex[65];

	hash_hex(v, 32, hex);
	f_str(b, indent, k, hex, last);
}

int bundle_manifest_encode(const struct bundle_manifest *m, char **out, size_t *len)
{
	struct sbuf b = { 0 };

	*out = NULL;
	*len = 0;
	if (bundle_manifest_check(m, NULL) != 0)
		return SBX_EINVAL;
	sb_str(&b, "{\n");
	f_str(&b, 2, "format", FORMAT_NAME, 0);
	f_u64(&b, 2, "version", m->version, 0);
	f_hex(&b, 2, "appliance_id", m->appliance_id, 0);
	f_hex(&b, 2, "identity_sha256", m->identity_sha256, 0);
	f_str(&b, 2, "case", m->case_id, 0);
	f_str(&b, 2, "source", m->source, 0);
	f_str(&b, 2, "operator", m->operator_id, 0);
	f_u64(&b, 2, "sealed_at_ms", m->sealed_at_ms, 0);
	f_hex(&b, 2, "policy_hash", m->policy_hash, 0);
	sb_key(&b, 2, "hold");
	sb_str(&b, "{\n");
	f_str(&b, 4, "authority", m->authority, 0);
	f_str(&b, 4, "purpose", m->purpose, 1);
	sb_str(&b, "  },\n");
	sb_key(&b, 2, "reads");
	sb_str(&b, "{\n");
	f_u64(&b, 4, "count", m->reads, 0);
	f_u64(&b, 4, "images", m->images, 0);
	f_u64(&b, 4, "cameras", m->cameras, 0);
	f_u64(&b, 4, "first_captured_ms", m->first_captured_ms, 0);
	f_u64(&b, 4, "last_captured_ms", m->last_captured_ms, 1);
	sb_str(&b, "  },\n");
	sb_key(&b, 2, "payload");
	sb_str(&b, "{\n");
	f_str(&b, 4, "suite", BUNDLE_SUITE, 0);
	f_u64(&b, 4, "plaintext_bytes", m->plaintext_bytes, 0);
	f_u64(&b, 4, "ciphertext_bytes", m->ciphertext_bytes, 0);
	f_hex(&b, 4, "ciphertext_sha256", m->ciphertext_sha256, 0);
	f_u64(&b, 4, "items", m->items, 0);
	f_hex(&b, 4, "index_sha256", m->index_sha256, 1);
	sb_str(&b, "  }\n}\n");
	if (b.err == 0 && b.len > BUNDLE_MAX_MANIFEST)
		b.err = SBX_EINVAL;
	if (b.err != 0) {
		free(b.p);
		return b.err;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}

/* ---- parsing --------------------------------------------------------------- */

/* Walks an object's members in the one allowed order. */
struct walk {
	const struct json_doc *d;
	const struct json_val *m;       /* next member */
	const char *where;              /* "", "hold.", ... for messages */
	struct sbx_err *e;
	int r;
};

static const struct json_val *next_key(struct walk *w, const char *key, enum json_type t)
{
	const char *k;

	if (w->r != 0)
		return NULL;
	if (w->m == NULL) {
		w->r = sbx_fail(w->e, SBX_EFORMAT, "manifest: key %s%s missing", w->where, key);
		return NULL;
	}
	k = json_key(w->d, w->m, NULL);
	if (k == NULL || strcmp(k, key) != 0) {
		w->r = sbx_fail(w->e, SBX_EFORMAT, "manifest: key %s%.64s where %s%s is due",
		                w->where, k ? k : "?", w->where, key);
		return NULL;
	}
	if (json_type_of(w->m) != t) {
		w->r = sbx_fail(w->e, SBX_EFORMAT, "manifest: %s%s is a %s, not a %s", w->where, key,
		                json_type_name(json_type_of(w->m)), json_type_name(t));
		return NULL;
	}
	{
		const struct json_val *v = w->m;

		w->m = json_next(w->d, w->m);
		return v;
	}
}

static void end_obj(struct walk *w)
{
	if (w->r == 0 && w->m != NULL) {
		const char *k = json_key(w->d, w->m, NULL);

		w->r = sbx_fail(w->e, SBX_EFORMAT, "manifest: unexpected key %s%.64s", w->where,
		                k ? k : "?");
	}
}

static void get_str(struct walk *w, const char *key, char *out, size_t cap)
{
	const struct json_val *v = next_key(w, key, JSON_STRING);
	const char *s;
	size_t n = 0;

	if (v == NULL)
		return;
	s = json_str(w->d, v, &n);
	if (s == NULL || n >= cap) {
		w->r = sbx_fail(w->e, SBX_EFORMAT, "manifest: %s%s longer than %zu bytes", w->where,
		                key, cap - 1);
		return;
	}
	memcpy(out, s, n + 1);
}

static void get_hex(struct walk *w, const char *key, uint8_t out[32])
{
	char hex[66];

	get_str(w, key, hex, sizeof hex);
	if (w->r == 0 && hash_unhex(hex, out, 32) != 0)
		w->r = sbx_fail(w->e, SBX_EFORMAT, "manifest: %s%s is not 64 hex digits", w->where, key);
}

/* Unsigned decimal integers only: no sign, fraction or exponent. */
static void get_u64(struct walk *w, const char *key, uint64_t *out)
{
	const struct json_val *v = next_key(w, key, JSON_NUMBER);
	const char *t;
	size_t n = 0;
	uint64_t acc = 0;

	if (v == NULL)
		return;
	t = json_num(w->d, v, &n);
	for (size_t i = 0; t != NULL && i < n; i++) {
		unsigned dg = (unsigned)(t[i] - '0');

		if (t[i] < '0' || t[i] > '9' || acc > (UINT64_MAX - dg) / 10) {
			t = NULL;
			break;
		}
		acc = acc * 10 + dg;
	}
	if (t == NULL || n == 0) {
		w->r = sbx_fail(w->e, SBX_EFORMAT, "manifest: %s%s is not an unsigned 64-bit integer",
		                w->where, key);
		return;
	}
	*out = acc;
}

static const struct json_val *get_obj(struct walk *w, const char *key)
{
	return next_key(w, key, JSON_OBJECT);
}

static void walk_obj(struct walk *sub, const struct walk *parent, const struct json_val *obj,
                     const char *where)
{
	*sub = *parent;
	sub->where = where;
	sub->m = obj != NULL ? json_first(parent->d, obj) : NULL;
}

static int parse_fields(const struct json_doc *d, struct bundle_manifest *m, struct sbx_err *e)
{
	struct walk w = { d, NULL, "", e, 0 }, sub;
	const struct json_val *root = json_root(d), *o;
	char fmt[32], suite[32];
	uint64_t version = 0;

	if (root == NULL || json_type_of(root) != JSON_OBJECT)
		return sbx_fail(e, SBX_EFORMAT, "manifest: not a JSON object");
	w.m = json_first(d, root);
	get_str(&w, "format", fmt, sizeof fmt);
	if (w.r == 0 && strcmp(fmt, FORMAT_NAME) != 0)
		return sbx_fail(e, SBX_EFORMAT, "manifest: format is not \"%s\"", FORMAT_NAME);
	get_u64(&w, "version", &version);
	if (w.r == 0 && version != BUNDLE_VERSION)
		return sbx_fail(e, SBX_EFORMAT, "manifest: unsupported version %" PRIu64
		                " (this reader knows version %d)", version, BUNDLE_VERSION);
	m->version = (unsigned)version;
	get_hex(&w, "appliance_id", m->appliance_id);
	get_hex(&w, "identity_sha256", m->identity_sha256);
	get_str(&w, "case", m->case_id, sizeof m->case_id);
	get_str(&w, "source", m->source, sizeof m->source);
	get_str(&w, "operator", m->operator_id, sizeof m->operator_id);
	get_u64(&w, "sealed_at_ms", &m->sealed_at_ms);
	get_hex(&w, "policy_hash", m->policy_hash);

	o = get_obj(&w, "hold");
	walk_obj(&sub, &w, o, "hold.");
	get_str(&sub, "authority", m->authority, sizeof m->authority);
	get_str(&sub, "purpose", m->purpose, sizeof m->purpose);
	end_obj(&sub);
	w.r = w.r != 0 ? w.r : sub.r;

	o = get_obj(&w, "reads");
	walk_obj(&sub, &w, o, "reads.");
	get_u64(&sub, "count", &m->reads);
	get_u64(&sub, "images", &m->images);
	get_u64(&sub, "cameras", &m->cameras);
	get_u64(&sub, "first_captured_ms", &m->first_captured_ms);
	get_u64(&sub, "last_captured_ms", &m->last_captured_ms);
	end_obj(&sub);
	w.r = w.r != 0 ? w.r : sub.r;

	o = get_obj(&w, "payload");
	walk_obj(&sub, &w, o, "payload.");
	get_str(&sub, "suite", suite, sizeof suite);
	if (sub.r == 0 && strcmp(suite, BUNDLE_SUITE) != 0)
		sub.r = sbx_fail(e, SBX_EFORMAT, "manifest: payload.suite is not \"%s\"", BUNDLE_SUITE);
	get_u64(&sub, "plaintext_bytes", &m->plaintext_bytes);
	get_u64(&sub, "ciphertext_bytes", &m->ciphertext_bytes);
	get_hex(&sub, "ciphertext_sha256", m->ciphertext_sha256);
	get_u64(&sub, "items", &m->items);
	get_hex(&sub, "index_sha256", m->index_sha256);
	end_obj(&sub);
	w.r = w.r != 0 ? w.r : sub.r;
	end_obj(&w);
	return w.r;
}

int bundle_manifest_parse(const char *text, size_t len, struct bundle_manifest *m,
                          struct sbx_err *e)
{
	struct json_doc *d = NULL;
	struct json_limits lim;
	struct sbx_err je = { 0 };
	char *re = NULL;
	size_t relen = 0;
	int r = SBX_EFORMAT;

	memset(m, 0, sizeof *m);
	if (len > BUNDLE_MAX_MANIFEST) {
		sbx_fail(e, r, "manifest: %zu bytes, more than %d", len, BUNDLE_MAX_MANIFEST);
		goto out;
	}
	d = json_doc_new();
	if (d == NULL) {
		r = sbx_fail(e, SBX_ENOMEM, "manifest: out of memory");
		goto out;
	}
	json_limits_default(&lim);
	lim.max_depth = 2;
	lim.max_bytes = BUNDLE_MAX_MANIFEST;
	lim.max_values = 64;
	r = json_parse(d, text, len, &lim, &je);
	if (r != 0) {
		r = sbx_fail(e, r == SBX_ENOMEM ? r : SBX_EFORMAT, "manifest: not strict JSON: %s",
		             je.msg);
		goto out;
	}
	r = parse_fields(d, m, e);
	if (r == 0)
		r = bundle_manifest_check(m, e);
	if (r != 0) {
		r = SBX_EFORMAT;
		goto out;
	}
	r = bundle_manifest_encode(m, &re, &relen);
	if (r != 0) {
		r = sbx_fail(e, r == SBX_ENOMEM ? r : SBX_EFORMAT, "manifest: cannot be re-encoded");
		goto out;
	}
	if (relen != len || memcmp(re, text, len) != 0) {
		size_t i = 0;

		while (i < len && i < relen && re[i] == text[i])
			i++;
		r = sbx_fail(e, SBX_EFORMAT, "manifest: not in canonical form (byte %zu differs)", i);
		goto out;
	}
	r = 0;
out:
	if (r != 0)
		memset(m, 0, sizeof *m);
	free(re);
	json_doc_free(d);
	return r;
}

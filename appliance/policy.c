#include "appliance/policy.h"

#include <stdio.h>
#include <string.h>

#include "crypto/err.h"
#include "crypto/hash.h"

/* Changing this text changes the default policy's hash: keep
 * docs/examples/policy-denver.conf byte-identical (test_policy checks). */
static const char default_text[] =
	"# sealbox policy: Denver, Colorado (the built-in default).\n"
	"# Format and rules: docs/POLICY.md.  The SHA-256 of these exact bytes is\n"
	"# recorded in every custody record made while this policy is in force.\n"
	"sealbox-policy = 1\n"
	"name = denver-2026\n"
	"\n"
	"# Reads captured more than 21 days before they arrive are accepted only\n"
	"# under an open hold.\n"
	"retention_days = 21\n"
	"# A hold not renewed within 90 days expires and its evidence is purged.\n"
	"hold_max_days = 90\n"
	"\n"
	"# Recipients are courts and prosecutors.  There is never a federal role.\n"
	"roles = court, prosecutor\n"
	"\n"
	"# The allowlist.  Always denied, whatever this file says:\n"
	"# civil-immigration-enforcement, reproductive-health-investigation,\n"
	"# commercial, ai-training.\n"
	"purpose = criminal-investigation roles=prosecutor\n"
	"purpose = prosecution roles=prosecutor\n"
	"purpose = court-order roles=court,prosecutor\n";

const char *policy_default_text(void)
{
	return default_text;
}

const char *const policy_forbidden[] = {
	"civil-immigration-enforcement",
	"reproductive-health-investigation",
	"commercial",
	"ai-training",
	NULL
};

static const char why_immigration[] =
	"by law (C.R.S. 24-74, as amended by SB 25-276: "
	"no use for civil immigration enforcement)";
static const char why_reproductive[] =
	"by law (SB 23-188 and SB 25-129: no investigation of "
	"legally protected reproductive health care)";
static const char why_commercial[] =
	"by the city's LPR terms (the city owns the data; no commercial use)";
static const char why_ai[] =
	"by the city's LPR terms (no training of AI on the data)";

/* Parallel to policy_forbidden. */
static const char *const forbidden_why[] = {
	why_immigration, why_reproductive, why_commercial, why_ai
};

/* A code with one of these words as a '-'-separated part names a forbidden
 * subject under another code ("immigration-enforcement", "abortion-case"),
 * so renaming cannot re-enable it. */
static const struct {
	const char *word;
	const char *why;
} forbidden_words[] = {
	{ "immigration", why_immigration },
	{ "immigrant", why_immigration },
	{ "deportation", why_immigration },
	{ "reproductive", why_reproductive },
	{ "abortion", why_reproductive },
	{ "commercial", why_commercial },
	{ "ai", why_ai },
};

/* The only recipient roles there can ever be; a policy may enable a subset. */
static const char *const role_names[] = { "court", "prosecutor" };
#define N_ROLE_NAMES (sizeof role_names / sizeof role_names[0])

enum { K_VERSION, K_NAME, K_RETENTION, K_HOLD, K_ROLES, K_PURPOSE, K_COUNT };
static const char *const key_names[K_COUNT] = {
	"sealbox-policy", "name", "retention_days", "hold_max_days", "roles", "purpose"
};

#define DEFAULT_RETENTION_DAYS 21
#define DEFAULT_HOLD_MAX_DAYS  90

/* Room for a quoted, escaped rendering of at most SHOW_BYTES input bytes. */
#define SHOW_BYTES 64
#define SHOW_MAX   (SHOW_BYTES * 4 + 8)

struct parse {
	struct policy *p;
	struct sbx_err *e;
	size_t line;                    /* current line, 1-based */
	size_t seen[K_COUNT];           /* line of first occurrence, 0 = none */
	size_t purpose_line[POLICY_MAX_PURPOSES];
	unsigned purpose_want[POLICY_MAX_PURPOSES];     /* bits over role_names; 0 = all */
};

/* Renders untrusted text for a one-line error message: quoted, printable
 * ASCII only, cut after SHOW_BYTES bytes. */
static const char *show(char out[static SHOW_MAX], const char *s)
{
	size_t o = 0;

	out[o++] = '\'';
	for (size_t i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (i == SHOW_BYTES) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
			out[o++] = (char)c;
		} else {
			snprintf(out + o, 5, "\\x%02x", c);
			o += 4;
		}
	}
	out[o++] = '\'';
	out[o] = '\0';
	return out;
}

int policy_code_valid(const char *code)
{
	size_t n;

	if (code == NULL)
		return 0;
	for (n = 0; code[n] != '\0'; n++) {
		char c = code[n];

		if (n == POLICY_MAX_CODE)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return 0;
	}
	return n > 0;
}

/* For a valid code: the reason it is forbidden, and in *word the part of
 * the code that made it so when it is not itself on the list. */
static const char *forbidden_match(const char *code, const char **word)
{
	*word = NULL;
	for (size_t i = 0; policy_forbidden[i] != NULL; i++)
		if (strcmp(code, policy_forbidden[i]) == 0)
			return forbidden_why[i];
	for (const char *s = code; *s != '\0';) {
		size_t n = strcspn(s, "-");

		for (size_t w = 0; w < sizeof forbidden_words / sizeof forbidden_words[0]; w++) {
			if (strlen(forbidden_words[w].word) == n &&
			    memcmp(forbidden_words[w].word, s, n) == 0) {
				*word = forbidden_words[w].word;
				return forbidden_words[w].why;
			}
		}
		s += n;
		if (*s == '-')
			s++;
	}
	return NULL;
}

const char *policy_forbidden_reason(const char *code)
{
	const char *word;

	if (!policy_code_valid(code))
		return NULL;
	return forbidden_match(code, &word);
}

static int role_index(const char *role)
{
	for (size_t i = 0; i < N_ROLE_NAMES; i++)
		if (strcmp(role, role_names[i]) == 0)
			return (int)i;
	return -1;
}

static size_t n_roles(const struct policy *p)
{
	return p->n_roles < POLICY_MAX_ROLES ? p->n_roles : POLICY_MAX_ROLES;
}

static int declared_index(const struct policy *p, const char *role)
{
	for (size_t i = 0; i < n_roles(p); i++)
		if (strcmp(p->roles[i], role) == 0)
			return (int)i;
	return -1;
}

int policy_role_known(const struct policy *p, const char *role)
{
	if (p == NULL || role == NULL)
		return 0;
	return declared_index(p, role) >= 0;
}

const struct policy_purpose *policy_find_purpose(const struct policy *p, const char *code)
{
	size_t n;

	if (p == NULL || code == NULL)
		return NULL;
	n = p->n_purposes < POLICY_MAX_PURPOSES ? p->n_purposes : POLICY_MAX_PURPOSES;
	for (size_t i = 0; i < n; i++)
		if (strcmp(p->purposes[i].code, code) == 0)
			return &p->purposes[i];
	return NULL;
}

/* ---- parsing ---- */

/* Length of the strict UTF-8 sequence at s (no overlong forms, no
 * surrogates, nothing above U+10FFFF), or 0 if invalid. */
static size_t utf8_next(const uint8_t *s, size_t n, uint32_t *cp)
{
	uint8_t c = s[0], lo = 0x80, hi = 0xbf;
	size_t len;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c < 0xc2 || c > 0xf4)
		return 0;
	if (c < 0xe0) {
		len = 2;
		*cp = c & 0x1f;
	} else if (c < 0xf0) {
		len = 3;
		*cp = c & 0x0f;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else {
		len = 4;
		*cp = c & 0x07;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		uint8_t b = s[i];

		if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xbf))
			return 0;
		*cp = *cp << 6 | (b & 0x3f);
	}
	return len;
}

/* Characters that would let a file look different from what it says: a
 * byte-order mark, line separators and direction overrides. */
static int invisible(uint32_t cp)
{
	return cp == 0xfeff || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
	       cp == 0x2028 || cp == 0x2029 ||
	       (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* Byte-level rules, over the whole file before any line is read. */
static int scan_bytes(const uint8_t *t, size_t len, struct sbx_err *e)
{
	size_t line = 1, start = 0;

	for (size_t i = 0; i < len;) {
		uint8_t c = t[i];
		uint32_t cp;
		size_t n;

		if (c == '\n') {
			if (i - start > POLICY_MAX_LINE)
				goto toolong;
			line++;
			start = ++i;
			continue;
		}
		if (i - start >= POLICY_MAX_LINE + 1)
			goto toolong;
		if (c == '\0')
			return sbx_fail(e, SBX_EFORMAT, "policy line %zu: NUL byte", line);
		if (c == '\r')
			return sbx_fail(e, SBX_EFORMAT, "policy line %zu: carriage return: "
			                "policy files use LF line endings only", line);
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return sbx_fail(e, SBX_EFORMAT, "policy line %zu: control character "
			                "0x%02x", line, c);
		n = utf8_next(t + i, len - i, &cp);
		if (n == 0)
			return sbx_fail(e, SBX_EFORMAT, "policy line %zu: invalid UTF-8 at "
			                "byte %zu of the line", line, i - start + 1);
		if (cp >= 0x80 && cp <= 0x9f)
			return sbx_fail(e, SBX_EFORMAT, "policy line %zu: control character "
			                "U+%04X", line, (unsigned)cp);
		if (invisible(cp))
			return sbx_fail(e, SBX_EFORMAT, "policy line %zu: invisible or "
			                "direction-changing character U+%04X", line, (unsigned)cp);
		i += n;
	}
	if (len - start > POLICY_MAX_LINE)
		goto toolong;
	if (t[len - 1] != '\n')
		return sbx_fail(e, SBX_EFORMAT, "policy line %zu: last line has no newline "
		                "(truncated file?)", line);
	return 0;
toolong:
	return sbx_fail(e, SBX_EFORMAT, "policy line %zu: longer than %d bytes",
	                line, POLICY_MAX_LINE);
}

static char *skip_ws(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

static void trim_right(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
}

/* A decimal number without sign or leading zeros, in [lo, hi]. */
static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	unsigned v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 9 || (s[0] == '0' && n > 1))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* "court, prosecutor": each role once, only the roles there can ever be.
 * Fills order[] with indices into role_names in the order written. */
static int parse_role_list(struct parse *ps, char *s, unsigned *bits,
                           int order[static N_ROLE_NAMES], size_t *n_order)
{
	char q[SHOW_MAX];

	*bits = 0;
	*n_order = 0;
	for (;;) {
		char *item = skip_ws(s), *end = item + strcspn(item, ",");
		int last = *end == '\0', idx;

		*end = '\0';
		trim_right(item);
		if (*item == '\0')
			return sbx_fail(ps->e, SBX_EFORMAT, "policy line %zu: empty role in "
			                "role list", ps->line);
		if (!policy_code_valid(item))
			return sbx_fail(ps->e, SBX_EFORMAT, "policy line %zu: malformed role %s",
			                ps->line, show(q, item));
		idx = role_index(item);
		if (idx < 0)
			return sbx_fail(ps->e, SBX_EPOLICY, "policy line %zu: role '%s' is not "
			                "allowed: sealbox releases only to 'court' and "
			                "'prosecutor' (there is never a federal role)",
			                ps->line, item);
		if (*bits & 1u << idx)
			return sbx_fail(ps->e, SBX_EFORMAT, "policy line %zu: role '%s' listed "
			                "twice", ps->line, item);
		*bits |= 1u << idx;
		order[(*n_order)++] = idx;
		if (last)
			return 0;
		s = end + 1;
	}
}

static int parse_days(struct parse *ps, const char *key, const char *val, unsigned *out)
{
	char q[SHOW_MAX];

	if (parse_uint(val, POLICY_MIN_DAYS, POLICY_MAX_DAYS, out) != 0)
		return sbx_fail(ps->e, SBX_EFORMAT, "policy line %zu: %s must be a whole "
		                "number of days from %d to %d (got %s)", ps->line, key,
		                POLICY_MIN_DAYS, POLICY_MAX_DAYS, show(q, val));
	return 0;
}

static int parse_version(struct parse *ps, const char *val)
{
	char q[SHOW_MAX];
	unsigned v;

	if (parse_uint(val, 0, 999999999, &v) != 0)
		return sbx_fail(ps->e, SBX_EFORMAT, "policy line %zu: malformed version %s",
		                ps->line, show(q, val));
	if (v != POLICY_VERSION)
		return sbx_fail(ps->e, SBX_EFORMAT, "policy line %zu: unsupported policy "
		                "version %u (this sealbox reads version %d)", ps->line, v,
		                POLICY_VERSION);
	ps->p->version = v;
	return 0;
}

static int parse_name(struct parse *ps, const char *val)
{
	size_t n = strlen(val);

	if (n >= sizeof ps->p->name)
		return sbx_fail(ps->e, SBX_EFORMAT, "policy line %zu: name is longer than "
		                "%zu bytes", ps->line, sizeof ps->p->name - 1);
	if (strchr(val, '\t') != NULL)
		return sbx_fail(ps->e, SBX_EFORMAT, "policy line %zu: tab in name", ps->line);
	memcpy(ps->p->name, val, n + 1);
	return 0;
}

static int parse_roles(struct parse *ps, char *val)
{
	int order[N_ROLE_NAMES];
	unsigned bits;
	size_t n;
	int r = parse_role_list(ps, val, &bits, order, &n);

	if (r != 0)
		return r;
	for (size_t i = 0; i < n; i++)
		strcpy(ps->p->roles[i], role_names[order[i]]);
	ps->p->n_roles = n;
	return 0;
}

/* "CODE" or "CODE roles=ROLE[,ROLE...]". */
static int parse_purpose(struct parse *ps, char *val)
{
	struct policy *p = ps->p;
	char q[SHOW_MAX], *rest = val + strcspn(val, " \t");
	const char *why, *word;
	const struct policy_purpose *dup;
	int order[N_ROLE_NAMES];
	unsigned bits = 0;
	size_t n;

	if (*rest != '\0')
		*rest++ = '\0';
	rest = skip_ws(rest);
	if (!policy_code_valid(val))
		return sbx_fail(ps->e, SBX_EFORMAT, "policy line %zu: malformed purpose code "
		                "%s: codes are 1 to %d lower-case letters, digits and '-'",
		                ps->line, show(q, val), POLICY_MAX_CODE);
	why = forbidden_match(val, &word);
	if (why != NULL && word == NULL)
		return sbx_fail(ps->e, SBX_EPOLICY, "policy line %zu: purpose '%s' is "
		                "forbidden %s and no policy can allow it", ps->line, val, why);
	if (why != NULL)
		return sbx_fail(ps->e, SBX_EPOLICY, "policy line %zu: purpose '%s' names "
		                "'%s', which is forbidden %s and no policy can allow it",
		                ps->line, val, word, why);
	dup = policy_find_purpose(p, val);
	if (dup != NULL)
		return sbx_fail(ps->e, SBX_EFORMAT, "policy line %zu: duplicate purpose '%s' "
		                "(first on line %zu)", ps->line, val,
		                ps->purpose_line[dup - p->purposes]);
	if (p->n_purposes == POLICY_MAX_PURPOSES)
		return sbx_fail(ps->e, SBX_EFORMAT, "policy line %zu: more than %d purposes",
		                ps->line, POLICY_MAX_PURPOSES);
	if (*rest != '\0') {
		int r;

		if (strncmp(rest, "roles", 5) != 0 || *(rest = skip_ws(rest + 5)) != '=')
			return sbx_fail(ps->e, SBX_EFORMAT, "policy line %zu: unexpected text "
			                "after purpose '%s' (expected 'roles=ROLE[,ROLE]')",
			                ps->line, val);
		r = parse_role_list(ps, rest + 1, &bits, order, &n);
		if (r != 0)
			return r;
	}
	strcpy(p->purposes[p->n_purposes].code, val);
	ps->purpose_line[p->n_purposes] = ps->line;
	ps->purpose_want[p->n_purposes] = bits;
	p->n_purposes++;
	return 0;
}

static int parse_line(struct parse *ps, char *l)
{
	char q[SHOW_MAX], *key, *keyend, *val;
	int k;

	l = skip_ws(l);
	trim_right(l);
	if (*l == '\0' || *l == '#')
		return 0;
	key = l;
	keyend = key + strcspn(key, " \t=");
	val = skip_ws(keyend);
	if (*val != '=')
		return sbx_fail(ps->e, SBX_EFORMAT, "policy line %zu: expected 'key = value'",
		                ps->line);
	*keyend = '\0';
	val = skip_ws(val + 1);
	for (k = 0; k < K_COUNT; k++)
		if (strcmp(key, key_names[k]) == 0)
			break;
	if (ps->seen[K_VERSION] == 0 && k != K_VERSION)
		return sbx_fail(ps->e, SBX_EFORMAT, "policy line %zu: the first setting must "
		                "be 'sealbox-policy = %d' (found %s)", ps->line,
		                POLICY_VERSION, show(q, key));
	if (k == K_COUNT)
		return sbx_fail(ps->e, SBX_EFORMAT, "policy line %zu: unknown key %s",
		                ps->line, show(q, key));
	if (k != K_PURPOSE && ps->seen[k] != 0)
		return sbx_fail(ps->e, SBX_EFORMAT, "policy line %zu: duplicate '%s' (first on "
		                "line %zu)", ps->line, key_names[k], ps->seen[k]);
	if (ps->seen[k] == 0)
		ps->seen[k] = ps->line;
	if (*val == '\0')
		return sbx_fail(ps->e, SBX_EFORMAT, "policy line %zu: '%s' has no value",
		                ps->line, key_names[k]);
	switch (k) {
	case K_VERSION:
		return parse_version(ps, val);
	case K_NAME:
		return parse_name(ps, val);
	case K_RETENTION:
		return parse_days(ps, key_names[k], val, &ps->p->retention_days);
	case K_HOLD:
		return parse_days(ps, key_names[k], val, &ps->p->hold_max_days);
	case K_ROLES:
		return parse_roles(ps, val);
	default:
		return parse_purpose(ps, val);
	}
}

/* After the last line: required settings, and each purpose's roles turned
 * into bits over the roles the policy declares. */
static int finish(struct parse *ps)
{
	struct policy *p = ps->p;
	size_t eof = ps->line - 1;

	if (ps->seen[K_VERSION] == 0)
		return sbx_fail(ps->e, SBX_EFORMAT, "policy line %zu (end of file): no "
		                "'sealbox-policy = %d' line: not a sealbox policy", eof,
		                POLICY_VERSION);
	if (ps->seen[K_NAME] == 0)
		return sbx_fail(ps->e, SBX_EFORMAT, "policy line %zu (end of file): no 'name' "
		                "line", eof);
	if (ps->seen[K_ROLES] == 0)
		return sbx_fail(ps->e, SBX_EFORMAT, "policy line %zu (end of file): no 'roles' "
		                "line", eof);
	if (p->n_purposes == 0)
		return sbx_fail(ps->e, SBX_EFORMAT, "policy line %zu (end of file): the "
		                "purpose allowlist is empty (add 'purpose = CODE' lines)", eof);
	if (ps->seen[K_RETENTION] == 0)
		p->retention_days = DEFAULT_RETENTION_DAYS;
	if (ps->seen[K_HOLD] == 0)
		p->hold_max_days = DEFAULT_HOLD_MAX_DAYS;
	for (size_t i = 0; i < p->n_purposes; i++) {
		unsigned want = ps->purpose_want[i];

		if (want == 0) {
			p->purposes[i].roles_mask = (1u << p->n_roles) - 1;
			continue;
		}
		for (size_t b = 0; b < N_ROLE_NAMES; b++) {
			int d;

			if (!(want & 1u << b))
				continue;
			d = declared_index(p, role_names[b]);
			if (d < 0)
				return sbx_fail(ps->e, SBX_EFORMAT, "policy line %zu: purpose '%s' "
				                "names role '%s', which 'roles' (line %zu) does not "
				                "declare", ps->purpose_line[i], p->purposes[i].code,
				                role_names[b], ps->seen[K_ROLES]);
			p->purposes[i].roles_mask |= 1u << d;
		}
	}
	return 0;
}

int policy_parse(const uint8_t *text, size_t len, struct policy *p, struct sbx_err *e)
{
	struct parse ps;
	char buf[POLICY_MAX_LINE + 1];
	size_t start = 0;
	int r = SBX_EINVAL;

	if (p == NULL || (text == NULL && len > 0))
		return sbx_fail(e, SBX_EINVAL, "policy_parse: no input or no output");
	memset(p, 0, sizeof *p);
	memset(&ps, 0, sizeof ps);
	ps.p = p;
	ps.e = e;
	ps.line = 1;
	if (len > POLICY_MAX_BYTES) {
		r = sbx_fail(e, SBX_EFORMAT, "policy is %zu bytes; the limit is %d", len,
		             POLICY_MAX_BYTES);
		goto out;
	}
	if (len == 0) {
		r = sbx_fail(e, SBX_EFORMAT, "policy is empty");
		goto out;
	}
	r = scan_bytes(text, len, e);
	if (r != 0)
		goto out;
	/* scan_bytes has refused NULs, long lines and a missing final LF; the
	 * loop checks again rather than trust that at a distance. */
	while (start < len) {
		const uint8_t *nl = memchr(text + start, '\n', len - start);
		size_t n = nl != NULL ? (size_t)(nl - (text + start)) : len - start;

		if (nl == NULL || n > POLICY_MAX_LINE) {
			r = sbx_fail(e, SBX_EFORMAT, "policy line %zu: unterminated or "
			             "overlong line", ps.line);
			goto out;
		}
		memcpy(buf, text + start, n);
		buf[n] = '\0';
		r = parse_line(&ps, buf);
		if (r != 0)
			goto out;
		start += n + 1;
		ps.line++;
	}
	r = finish(&ps);
	if (r != 0)
		goto out;
	if (hash_sha256(text, len, p->hash) != 0) {
		r = sbx_fail(e, SBX_ECRYPTO, "policy: SHA-256 failed");
		goto out;
	}
	r = 0;
out:
	if (r != 0)
		memset(p, 0, sizeof *p);
	return r;
}

/* ---- checks ---- */

int policy_check_purpose(const struct policy *p, const char *code, struct sbx_err *e)
{
	char q[SHOW_MAX];
	const char *why, *word;

	if (p == NULL || code == NULL)
		return sbx_fail(e, SBX_EINVAL, "purpose check: no policy or no purpose");
	if (!policy_code_valid(code))
		return sbx_fail(e, SBX_EPOLICY, "purpose %s is malformed: codes are 1 to %d "
		                "lower-case letters, digits and '-'", show(q, code),
		                POLICY_MAX_CODE);
	why = forbidden_match(code, &word);
	if (why != NULL && word == NULL)
		return sbx_fail(e, SBX_EPOLICY, "purpose '%s' is forbidden %s", code, why);
	if (why != NULL)
		return sbx_fail(e, SBX_EPOLICY, "purpose '%s' names '%s', which is forbidden %s",
		                code, word, why);
	if (policy_find_purpose(p, code) == NULL)
		return sbx_fail(e, SBX_EPOLICY, "purpose '%s' is not in the policy's allowlist",
		                code);
	return 0;
}

int policy_check_release(const struct policy *p, const char *code, const char *role,
                         struct sbx_err *e)
{
	char q[SHOW_MAX], allowed[POLICY_MAX_ROLES * (POLICY_MAX_CODE + 2) + 1] = "";
	const struct policy_purpose *pp;
	int r, d;

	r = policy_check_purpose(p, code, e);
	if (r != 0)
		return r;
	if (role == NULL)
		return sbx_fail(e, SBX_EINVAL, "release check: no role");
	if (!policy_code_valid(role))
		return sbx_fail(e, SBX_EPOLICY, "role %s is malformed", show(q, role));
	if (role_index(role) < 0)
		return sbx_fail(e, SBX_EPOLICY, "role '%s' may never receive evidence: sealbox "
		                "releases only to 'court' and 'prosecutor'", role);
	d = declared_index(p, role);
	if (d < 0)
		return sbx_fail(e, SBX_EPOLICY, "role '%s' is not enabled by the policy", role);
	pp = policy_find_purpose(p, code);
	if (pp == NULL)         /* policy_check_purpose found it; checked again, not assumed */
		return sbx_fail(e, SBX_EPOLICY, "purpose '%s' is not in the policy's allowlist",
		                code);
	if (pp->roles_mask & 1u << d)
		return 0;
	for (size_t i = 0; i < n_roles(p); i++) {
		if (!(pp->roles_mask & 1u << i))
			continue;
		if (allowed[0] != '\0')
			strcat(allowed, ",");
		strncat(allowed, p->roles[i], POLICY_MAX_CODE);
	}
	return sbx_fail(e, SBX_EPOLICY, "purpose '%s' does not allow release to role '%s' "
	                "(allowed: %s)", code, role, allowed[0] != '\0' ? allowed : "none");
}

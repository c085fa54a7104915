#include "appliance/x509check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "crypto/hash.h"
#include "crypto/wrap.h"
#include "crypto/x509fp.h"
#include "export/wire.h"

const char *const x509check_roles[] = { "court", "prosecutor", NULL };
#define N_ROLES 2

/* Anchors need not wrap anything, but they sign: below these the chain is
 * as weak as its weakest signature.  Matches verification's auth level 2. */
#define ANCHOR_MIN_RSA_BITS 2048
#define VERIFY_AUTH_LEVEL   2
#define VERIFY_MAX_DEPTH    8

/* The built-in federal markers (docs/TRUST.md).  trust.conf can
 * add to them, never remove. */
static const char *const default_domains[] = {
	"fed.us", "mil",
	"dhs.gov", "ice.dhs.gov", "cbp.dhs.gov", "uscis.dhs.gov", "uscis.gov", "ice.gov",
	"cbp.gov", "tsa.gov", "secretservice.gov", "fema.gov",
	"fbi.gov", "ic.fbi.gov", "leo.gov", "usdoj.gov", "justice.gov", "dea.gov",
	"atf.gov", "usmarshals.gov", "bop.gov", "uscourts.gov", "treasury.gov", "irs.gov",
	"state.gov", "usps.gov", "uspis.gov", "nsa.gov", "cia.gov", "odni.gov", "dni.gov",
	"dod.gov", "defense.gov", "disa.mil", NULL
};
static const char *const default_orgs[] = { "U.S. Government", "United States Government", NULL };
static const char *const default_arcs[] = {
	"2.16.840.1.101.3.2.1",     /* Federal PKI policies (Common, FBCA, ECA, ...) */
	"2.16.840.1.101.2.1",       /* DoD PKI policies */
	NULL
};

struct list {
	size_t n;
	char *v[X509CHECK_MAX_MARKERS];
};

struct x509check_trust {
	STACK_OF(X509) *anchors[N_ROLES];
	STACK_OF(X509) *pool;
	STACK_OF(X509_CRL) *crls;
	unsigned flags;
	struct list domains, orgs, arcs;
};

int x509check_role_valid(const char *role)
{
	for (size_t i = 0; role != NULL && x509check_roles[i] != NULL; i++)
		if (strcmp(role, x509check_roles[i]) == 0)
			return 1;
	return 0;
}

static int role_index(const char *role)
{
	for (int i = 0; role != NULL && i < N_ROLES; i++)
		if (strcmp(role, x509check_roles[i]) == 0)
			return i;
	return -1;
}

const char *x509check_verdict_name(int v)
{
	static const char *const names[] = {
		"ok", "malformed", "federal", "self-signed", "key-type", "key-usage",
		"not-yet-valid", "expired", "unknown-ca", "wrong-role", "revoked", "no-crl",
		"chain", "not-ca", "not-root",
	};

	return v >= 0 && (size_t)v < sizeof names / sizeof names[0] ? names[v] : "unknown";
}

/* ---- small helpers ------------------------------------------------------ */

static void fmt_ms(uint64_t ms, char out[32])
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;

	if (gmtime_r(&s, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "?");
}

static int asn1_ms(const ASN1_TIME *t, uint64_t *ms)
{
	struct tm tm;
	time_t s;

	*ms = 0;
	memset(&tm, 0, sizeof tm);
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
		ERR_clear_error();
		return -1;
	}
	s = timegm(&tm);
	*ms = s < 0 ? 0 : (uint64_t)s * 1000u;
	return 0;
}

/* RFC 2253 with control and non-ASCII bytes escaped: one line, ASCII. */
static void name_str(const X509_NAME *n, char *out, size_t outlen)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL;
	long len;

	snprintf(out, outlen, "?");
	if (b == NULL || n == NULL)
		goto out;
	if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_UTF8_CONVERT) < 0)
		goto out;
	len = BIO_get_mem_data(b, &p);
	if (len < 0 || p == NULL)
		goto out;
	if ((size_t)len >= outlen) {
		memcpy(out, p, outlen - 4);
		memcpy(out + outlen - 4, "...", 4);
	} else {
		memcpy(out, p, (size_t)len);
		out[len] = '\0';
	}
	for (char *c = out; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
out:
	ERR_clear_error();
	BIO_free(b);
}

static void note_add(char *notes, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note_add(char *notes, const char *fmt, ...)
{
	char one[X509CHECK_MAX_NOTES];
	size_t have = strlen(notes);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(one, sizeof one, fmt, ap);
	va_end(ap);
	if (strstr(notes, one) != NULL)
		return;
	snprintf(notes + have, X509CHECK_MAX_NOTES - have, "%s%s", have ? "; " : "", one);
}

X509 *x509check_parse_cert(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	unsigned char *re = NULL;
	X509 *x;
	int n;

	if (der == NULL || len == 0 || len > X509CHECK_MAX_CERT)
		return NULL;
	x = d2i_X509(NULL, &p, (long)len);
	/* Exact and canonical: the fingerprint names these bytes only. */
	if (x != NULL && (size_t)(p - der) != len)
		goto bad;
	if (x != NULL) {
		n = i2d_X509(x, &re);
		if (n <= 0 || (size_t)n != len || memcmp(re, der, len) != 0)
			goto bad;
	}
	OPENSSL_free(re);
	ERR_clear_error();
	return x;
bad:
	OPENSSL_free(re);
	X509_free(x);
	ERR_clear_error();
	return NULL;
}

/* Concatenated DER certificates into a stack (appended to *sk). */
static int parse_ders(const uint8_t *b, size_t len, STACK_OF(X509) *sk, size_t max,
                      const char *what, struct sbx_err *e)
{
	size_t off = 0, count = 0;

	while (off < len) {
		const unsigned char *p = b + off;
		X509 *x = d2i_X509(NULL, &p, (long)(len - off));
		size_t used = x ? (size_t)(p - (b + off)) : 0;
		X509 *exact;

		X509_free(x);
		ERR_clear_error();
		exact = used ? x509check_parse_cert(b + off, used) : NULL;
		if (exact == NULL)
			return sbx_fail(e, SBX_EFORMAT, "%s %zu is not an exact DER certificate",
			                what, count + 1);
		if (++count > max || !sk_X509_push(sk, exact)) {
			X509_free(exact);
			return count > max ? sbx_fail(e, SBX_EFORMAT, "more than %zu %ss", max, what)
			                   : SBX_ENOMEM;
		}
		off += used;
	}
	return 0;
}

/* ---- the trust set ------------------------------------------------------ */

static int list_add(struct list *l, const char *s, size_t n)
{
	char *c;

	for (size_t i = 0; i < l->n; i++)
		if (strlen(l->v[i]) == n && memcmp(l->v[i], s, n) == 0)
			return 0;
	if (l->n == X509CHECK_MAX_MARKERS)
		return SBX_EFORMAT;
	c = malloc(n + 1);
	if (c == NULL)
		return SBX_ENOMEM;
	memcpy(c, s, n);
	c[n] = '\0';
	l->v[l->n++] = c;
	return 0;
}

static void list_free(struct list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
}

/* Organizations compare as their lower-case letters and digits only:
 * "U.S. Government" and "US GOVERNMENT" are one marker. */
static size_t org_norm(const char *s, size_t n, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 1 < outlen; i++) {
		char c = s[i];

		if (c >= 'A' && c <= 'Z')
			out[o++] = (char)(c - 'A' + 'a');
		else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			out[o++] = c;
	}
	out[o] = '\0';
	return o;
}

static int add_org(struct x509check_trust *t, const char *s)
{
	char norm[256];
	size_t n = org_norm(s, strlen(s), norm, sizeof norm);

	return n == 0 ? SBX_EFORMAT : list_add(&t->orgs, norm, n);
}

static int add_domain(struct x509check_trust *t, const char *s)
{
	char low[254];
	size_t n = strlen(s);

	if (n == 0 || n >= sizeof low)
		return SBX_EFORMAT;
	for (size_t i = 0; i <= n; i++)
		low[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
	return list_add(&t->domains, low, n);
}

struct x509check_trust *x509check_trust_new(void)
{
	struct x509check_trust *t = calloc(1, sizeof *t);
	int ok = t != NULL;

	for (int i = 0; ok && i < N_ROLES; i++)
		ok = (t->anchors[i] = sk_X509_new_null()) != NULL;
	ok = ok && (t->pool = sk_X509_new_null()) != NULL;
	ok = ok && (t->crls = sk_X509_CRL_new_null()) != NULL;
	for (size_t i = 0; ok && default_domains[i] != NULL; i++)
		ok = add_domain(t, default_domains[i]) == 0;
	for (size_t i = 0; ok && default_orgs[i] != NULL; i++)
		ok = add_org(t, default_orgs[i]) == 0;
	for (size_t i = 0; ok && default_arcs[i] != NULL; i++)
		ok = list_add(&t->arcs, default_arcs[i], strlen(default_arcs[i])) == 0;
	if (!ok) {
		x509check_trust_free(t);
		return NULL;
	}
	return t;
}

void x509check_trust_free(struct x509check_trust *t)
{
	if (t == NULL)
		return;
	for (int i = 0; i < N_ROLES; i++)
		sk_X509_pop_free(t->anchors[i], X509_free);
	sk_X509_pop_free(t->pool, X509_free);
	sk_X509_CRL_pop_free(t->crls, X509_CRL_free);
	list_free(&t->domains);
	list_free(&t->orgs);
	list_free(&t->arcs);
	free(t);
}

int x509check_trust_add_anchor(struct x509check_trust *t, const char *role,
                               const uint8_t *der, size_t len, struct sbx_err *e)
{
	int ri = role_index(role);
	X509 *x;

	if (ri < 0)
		return sbx_fail(e, SBX_EINVAL, "no role '%s'", role ? role : "");
	x = x509check_parse_cert(der, len);
	if (x == NULL)
		return sbx_fail(e, SBX_EFORMAT, "a stored %s trust anchor is not an exact DER "
		                "certificate", role);
	if (!sk_X509_push(t->anchors[ri], x)) {
		X509_free(x);
		return SBX_ENOMEM;
	}
	return 0;
}

static X509_CRL *parse_crl(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	unsigned char *re = NULL;
	X509_CRL *c;
	int n;

	if (der == NULL || len == 0 || len > X509CHECK_MAX_CRL)
		return NULL;
	c = d2i_X509_CRL(NULL, &p, (long)len);
	if (c != NULL && (size_t)(p - der) != len)
		goto bad;
	if (c != NULL) {
		n = i2d_X509_CRL(c, &re);
		if (n <= 0 || (size_t)n != len || memcmp(re, der, len) != 0)
			goto bad;
	}
	OPENSSL_free(re);
	ERR_clear_error();
	return c;
bad:
	OPENSSL_free(re);
	X509_CRL_free(c);
	ERR_clear_error();
	return NULL;
}

int x509check_trust_add_crl(struct x509check_trust *t, const uint8_t *der, size_t len,
                            struct sbx_err *e)
{
	X509_CRL *c = parse_crl(der, len);

	if (c == NULL)
		return sbx_fail(e, SBX_EFORMAT, "a stored CRL is not exact DER");
	if (!sk_X509_CRL_push(t->crls, c)) {
		X509_CRL_free(c);
		return SBX_ENOMEM;
	}
	return 0;
}

int x509check_trust_add_pool(struct x509check_trust *t, const uint8_t *ders, size_t len,
                             struct sbx_err *e)
{
	return parse_ders(ders, len, t->pool, 1024, "pool certificate", e);
}

unsigned x509check_trust_flags(const struct x509check_trust *t)
{
	return t->flags;
}

size_t x509check_trust_markers(const struct x509check_trust *t, int kind,
                               const char *const **list)
{
	const struct list *l = kind == 0 ? &t->domains : kind == 1 ? &t->orgs : &t->arcs;

	*list = (const char *const *)l->v;
	return l->n;
}

/* ---- trust.conf --------------------------------------------------------- */

static int domain_valid(const char *s)
{
	size_t n = strlen(s), label = 0;

	if (n == 0 || n > 253)
		return 0;
	for (size_t i = 0; i <= n; i++) {
		char c = s[i];

		if (c == '.' || c == '\0') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return 0;
		if (label == 0 && c == '-')
			return 0;
		if (++label > 63)
			return 0;
	}
	return 1;
}

static int arc_valid(const char *s)
{
	size_t n = strlen(s), parts = 1, digits = 0;

	if (n == 0 || n > 127)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (digits == 0)
				return 0;
			parts++;
			digits = 0;
		} else if (s[i] >= '0' && s[i] <= '9') {
			digits++;
		} else {
			return 0;
		}
	}
	return digits > 0 && parts >= 2;
}

int x509check_trust_conf(struct x509check_trust *t, const uint8_t *text, size_t len,
                         struct sbx_err *e)
{
	char line[1025];
	size_t off = 0, lineno = 0;

	if (len > X509CHECK_MAX_CONF)
		return sbx_fail(e, SBX_EFORMAT, "trust.conf is larger than %d bytes", X509CHECK_MAX_CONF);
	if (!wire_utf8_valid(text, len))
		return sbx_fail(e, SBX_EFORMAT, "trust.conf is not UTF-8");
	while (off < len) {
		const uint8_t *nl = memchr(text + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (text + off)) : len - off;
		const char *val;
		int r = 0;

		lineno++;
		if (n >= sizeof line)
			return sbx_fail(e, SBX_EFORMAT, "trust.conf line %zu: longer than %zu bytes",
			                lineno, sizeof line - 1);
		memcpy(line, text + off, n);
		line[n] = '\0';
		off += n + (nl ? 1 : 0);
		if (memchr(line, '\0', n) != NULL)
			return sbx_fail(e, SBX_EFORMAT, "trust.conf line %zu: a NUL byte", lineno);
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
				return sbx_fail(e, SBX_EFORMAT, "trust.conf line %zu: a control character",
				                lineno);
		if (n == 0 || line[0] == '#')
			continue;
		val = strchr(line, ' ');
		if (val == NULL || val[1] == '\0' || val[1] == ' ' || line[n - 1] == ' ')
			return sbx_fail(e, SBX_EFORMAT, "trust.conf line %zu: expected 'KEY VALUE' with "
			                "one space", lineno);
		line[val - line] = '\0';
		val++;
		if (strcmp(line, "federal-domain") == 0) {
			if (!domain_valid(val))
				return sbx_fail(e, SBX_EFORMAT, "trust.conf line %zu: not a domain name",
				                lineno);
			r = add_domain(t, val);
		} else if (strcmp(line, "federal-organization") == 0) {
			if (strlen(val) > 128)
				return sbx_fail(e, SBX_EFORMAT, "trust.conf line %zu: organization longer "
				                "than 128 bytes", lineno);
			r = add_org(t, val);
		} else if (strcmp(line, "federal-policy-arc") == 0) {
			if (!arc_valid(val))
				return sbx_fail(e, SBX_EFORMAT, "trust.conf line %zu: not a dotted OID arc",
				                lineno);
			r = list_add(&t->arcs, val, strlen(val));
		} else if (strcmp(line, "require-crl") == 0) {
			if (strcmp(val, "yes") == 0)
				t->flags |= X509CHECK_REQUIRE_CRL;
			else if (strcmp(val, "no") != 0)
				return sbx_fail(e, SBX_EFORMAT, "trust.conf line %zu: require-crl is yes "
				                "or no", lineno);
		} else {
			return sbx_fail(e, SBX_EFORMAT, "trust.conf line %zu: unknown key (expected "
			                "federal-domain, federal-organization, federal-policy-arc or "
			                "require-crl)", lineno);
		}
		if (r == SBX_ENOMEM)
			return r;
		if (r != 0)
			return sbx_fail(e, SBX_EFORMAT, "trust.conf line %zu: too many entries or an "
			                "empty organization", lineno);
	}
	return 0;
}

/* ---- the federal rule --------------------------------------------------- */

/* A name equal to a listed domain or inside it ("x.ice.dhs.gov" under
 * "dhs.gov"), case-insensitively; a wildcard or trailing dot changes
 * nothing. */
static const char *domain_denied(const struct x509check_trust *t, const char *s, size_t n)
{
	const char *at = memrchr(s, '@', n);

	if (at != NULL) {
		n -= (size_t)(at + 1 - s);
		s = at + 1;
	}
	while (n > 0 && s[n - 1] == '.')
		n--;
	for (size_t i = 0; i < t->domains.n; i++) {
		const char *d = t->domains.v[i];
		size_t m = strlen(d);

		if (n == m && strncasecmp(s, d, m) == 0)
			return d;
		if (n > m && s[n - m - 1] == '.' && strncasecmp(s + n - m, d, m) == 0)
			return d;
	}
	return NULL;
}

static int looks_like_domain(const char *s, size_t n)
{
	if (memchr(s, '.', n) == NULL)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '*' || c == '_'))
			return 0;
	}
	return 1;
}

struct fedctx {
	const struct x509check_trust *t;
	const char *who;         /* "the certificate" or "issuer 'X'" */
	struct sbx_err *e;
	int *verdict;
};

static int fed_hit(struct fedctx *f, const char *what, const char *value, const char *listed)
{
	*f->verdict = X509CHECK_FEDERAL;
	return sbx_fail(f->e, SBX_EPOLICY, "federal marking in %s: %s '%.200s' (listed: %s)",
	                f->who, what, value, listed);
}

static int fed_malformed(struct fedctx *f, const char *what)
{
	*f->verdict = X509CHECK_MALFORMED;
	return sbx_fail(f->e, SBX_EFORMAT, "%s: %s", f->who, what);
}

/* A string that names an address or host: domain-checked.  A NUL inside a
 * name is how a checker is fooled; it makes the certificate malformed. */
static int fed_name(struct fedctx *f, const char *what, const unsigned char *data, int len)
{
	char buf[512];
	const char *hit;
	size_t n;

	if (data == NULL || len <= 0)
		return 0;
	n = (size_t)len;
	if (memchr(data, 0, n) != NULL)
		return fed_malformed(f, "a name contains a NUL byte");
	hit = domain_denied(f->t, (const char *)data, n);
	if (hit == NULL)
		return 0;
	snprintf(buf, sizeof buf, "%.*s", (int)(n < 200 ? n : 200), (const char *)data);
	for (char *c = buf; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f || *c == '\'')
			*c = '?';
	return fed_hit(f, what, buf, hit);
}

/* The host of a URI "scheme://[userinfo@]host[:port][/...]". */
static int fed_uri(struct fedctx *f, const unsigned char *data, int len)
{
	const char *s = (const char *)data, *p, *end, *at;
	size_t n = len > 0 ? (size_t)len : 0;

	if (n == 0)
		return 0;
	if (memchr(s, 0, n) != NULL)
		return fed_malformed(f, "a URI contains a NUL byte");
	p = memmem(s, n, "://", 3);
	if (p == NULL)
		return 0;
	p += 3;
	end = p;
	while (end < s + n && *end != '/' && *end != '?' && *end != '#')
		end++;
	at = memrchr(p, '@', (size_t)(end - p));
	if (at != NULL)
		p = at + 1;
	if (p < end && *p == '[')
		return 0;
	for (const char *c = p; c < end; c++)
		if (*c == ':') {
			end = c;
			break;
		}
	return fed_name(f, "URI host", (const unsigned char *)p, (int)(end - p));
}

static int fed_gens(struct fedctx *f, X509 *x, int nid)
{
	GENERAL_NAMES *gens;
	int crit = -1, r = 0;

	gens = X509_get_ext_d2i(x, nid, &crit, NULL);
	if (gens == NULL) {
		ERR_clear_error();
		return crit == -1 ? 0 : fed_malformed(f, "an alternative-name extension does not "
		                                       "decode or is repeated");
	}
	for (int i = 0; r == 0 && i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		switch (g->type) {
		case GEN_EMAIL:
			r = fed_name(f, "email", ASN1_STRING_get0_data(g->d.rfc822Name),
			             ASN1_STRING_length(g->d.rfc822Name));
			break;
		case GEN_DNS:
			r = fed_name(f, "DNS name", ASN1_STRING_get0_data(g->d.dNSName),
			             ASN1_STRING_length(g->d.dNSName));
			break;
		case GEN_URI:
			r = fed_uri(f, ASN1_STRING_get0_data(g->d.uniformResourceIdentifier),
			            ASN1_STRING_length(g->d.uniformResourceIdentifier));
			break;
		default:
			break;
		}
	}
	GENERAL_NAMES_free(gens);
	return r;
}

static const char *arc_denied(const struct x509check_trust *t, const ASN1_OBJECT *o,
                              char *buf, size_t buflen)
{
	int n = OBJ_obj2txt(buf, (int)buflen, o, 1);

	if (n <= 0)
		return NULL;
	for (size_t i = 0; i < t->arcs.n; i++) {
		size_t m = strlen(t->arcs.v[i]);

		if (strncmp(buf, t->arcs.v[i], m) == 0 && (buf[m] == '\0' || buf[m] == '.'))
			return t->arcs.v[i];
	}
	return NULL;
}

static int fed_policies(struct fedctx *f, X509 *x)
{
	CERTIFICATEPOLICIES *cp;
	POLICY_MAPPINGS *pm;
	const char *hit;
	char oid[256];
	int crit = -1, r = 0;

	cp = X509_get_ext_d2i(x, NID_certificate_policies, &crit, NULL);
	if (cp == NULL && crit != -1) {
		ERR_clear_error();
		return fed_malformed(f, "certificatePolicies does not decode or is repeated");
	}
	for (int i = 0; r == 0 && i < sk_POLICYINFO_num(cp); i++) {
		hit = arc_denied(f->t, sk_POLICYINFO_value(cp, i)->policyid, oid, sizeof oid);
		if (hit != NULL)
			r = fed_hit(f, "certificate policy", oid, hit);
	}
	CERTIFICATEPOLICIES_free(cp);
	if (r != 0)
		return r;
	crit = -1;
	pm = X509_get_ext_d2i(x, NID_policy_mappings, &crit, NULL);
	if (pm == NULL && crit != -1) {
		ERR_clear_error();
		return fed_malformed(f, "policyMappings does not decode or is repeated");
	}
	for (int i = 0; r == 0 && i < sk_POLICY_MAPPING_num(pm); i++) {
		POLICY_MAPPING *m = sk_POLICY_MAPPING_value(pm, i);

		hit = arc_denied(f->t, m->issuerDomainPolicy, oid, sizeof oid);
		if (hit == NULL)
			hit = arc_denied(f->t, m->subjectDomainPolicy, oid, sizeof oid);
		if (hit != NULL)
			r = fed_hit(f, "mapped certificate policy", oid, hit);
	}
	sk_POLICY_MAPPING_pop_free(pm, POLICY_MAPPING_free);
	return r;
}

/* DC= components as one domain name, both ways round: DER order is most
 * significant first (DC=gov, DC=dhs, DC=ice: "ice.dhs.gov"), but a
 * certificate written the other way round must not slip through. */
struct dcname {
	char fwd[512], rev[512];
	size_t n;
};

static int dc_add(struct dcname *d, const char *s, size_t len)
{
	char tmp[512];

	if (d->n + len + 1 >= sizeof d->fwd)
		return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (d->n > 0) {
		tmp[len] = '.';
		memcpy(tmp + len + 1, d->fwd, d->n + 1);
		d->rev[d->n] = '.';
		memcpy(d->rev + d->n + 1, s, len);
		d->n += len + 1;
	} else {
		memcpy(d->rev, s, len);
		d->n = len;
	}
	d->rev[d->n] = '\0';
	memcpy(d->fwd, tmp, d->n + 1);
	return 0;
}

/* O= of a name, email and CN-as-host, DC= components as a domain. */
static int fed_dn(struct fedctx *f, const X509_NAME *n, const char *which)
{
	struct dcname dc = { .n = 0 };
	char what[64];
	int r = 0;

	for (int i = 0; r == 0 && i < X509_NAME_entry_count(n); i++) {
		const X509_NAME_ENTRY *ent = X509_NAME_get_entry(n, i);
		int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(ent));
		unsigned char *u = NULL;
		int len;

		if (nid != NID_organizationName && nid != NID_pkcs9_emailAddress &&
		    nid != NID_commonName && nid != NID_domainComponent)
			continue;
		len = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(ent));
		if (len < 0) {
			ERR_clear_error();
			return fed_malformed(f, "a name attribute does not decode");
		}
		if (memchr(u, 0, (size_t)len) != NULL) {
			OPENSSL_free(u);
			return fed_malformed(f, "a name attribute contains a NUL byte");
		}
		if (nid == NID_organizationName) {
			char norm[256];
			size_t k = org_norm((const char *)u, (size_t)len, norm, sizeof norm);

			for (size_t j = 0; r == 0 && k > 0 && j < f->t->orgs.n; j++)
				if (strcmp(norm, f->t->orgs.v[j]) == 0) {
					char shown[201];

					snprintf(shown, sizeof shown, "%.*s", len > 200 ? 200 : len,
					         (const char *)u);
					for (char *c = shown; *c != '\0'; c++)
						if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f ||
						    *c == '\'')
							*c = '?';
					snprintf(what, sizeof what, "%s organization", which);
					r = fed_hit(f, what, shown, f->t->orgs.v[j]);
				}
		} else if (nid == NID_pkcs9_emailAddress ||
		           (nid == NID_commonName && (memchr(u, '@', (size_t)len) != NULL ||
		                                      looks_like_domain((const char *)u, (size_t)len)))) {
			snprintf(what, sizeof what, "%s %s", which,
			         nid == NID_commonName ? "common name" : "email");
			r = fed_name(f, what, u, len);
		} else if (nid == NID_domainComponent && dc_add(&dc, (const char *)u, (size_t)len) != 0) {
			r = fed_malformed(f, "the domain components are longer than 500 bytes");
		}
		OPENSSL_free(u);
	}
	snprintf(what, sizeof what, "%s domain components", which);
	if (r == 0 && dc.n > 0)
		r = fed_name(f, what, (const unsigned char *)dc.fwd, (int)dc.n);
	if (r == 0 && dc.n > 0)
		r = fed_name(f, what, (const unsigned char *)dc.rev, (int)dc.n);
	return r;
}

/* 0, or SBX_EPOLICY (FEDERAL) / SBX_EFORMAT (MALFORMED) with the reason. */
static int fed_check(const struct x509check_trust *t, X509 *x, const char *who,
                     int *verdict, struct sbx_err *e)
{
	struct fedctx f = { .t = t, .who = who, .e = e, .verdict = verdict };
	int r = fed_policies(&f, x);

	if (r == 0)
		r = fed_dn(&f, X509_get_subject_name(x), "subject");
	if (r == 0)
		r = fed_dn(&f, X509_get_issuer_name(x), "issuer");
	if (r == 0)
		r = fed_gens(&f, x, NID_subject_alt_name);
	if (r == 0)
		r = fed_gens(&f, x, NID_issuer_alt_name);
	return r;
}

/* ---- shared certificate facts ------------------------------------------ */

static int describe(X509 *x, struct x509check_info *info, struct sbx_err *e)
{
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der), r = 0;

	if (n <= 0 || hash_sha256(der, (size_t)n, info->sha256) != 0)
		r = sbx_fail(e, SBX_ECRYPTO, "cannot encode the certificate");
	OPENSSL_free(der);
	name_str(X509_get_subject_name(x), info->subject, sizeof info->subject);
	name_str(X509_get_issuer_name(x), info->issuer, sizeof info->issuer);
	if (r == 0 && (asn1_ms(X509_get0_notBefore(x), &info->not_before_ms) != 0 ||
	               asn1_ms(X509_get0_notAfter(x), &info->not_after_ms) != 0))
		r = sbx_fail(e, SBX_EFORMAT, "the validity dates do not decode");
	if (r == 0 && (X509_get_extension_flags(x) & EXFLAG_INVALID))
		r = sbx_fail(e, SBX_EFORMAT, "an extension does not decode or is repeated");
	if (r == 0 && X509_get0_pubkey(x) == NULL)
		r = sbx_fail(e, SBX_EFORMAT, "the public key does not decode");
	ERR_clear_error();
	return r;
}

/* Validity at now, with RFC 5280's inclusive bounds (as OpenSSL). */
static int check_time(X509 *x, time_t now, const char *who, int *verdict, struct sbx_err *e)
{
	uint64_t ms;
	char when[32];

	if (ASN1_TIME_cmp_time_t(X509_get0_notBefore(x), now) > 0) {
		asn1_ms(X509_get0_notBefore(x), &ms);
		fmt_ms(ms, when);
		*verdict = X509CHECK_NOT_YET_VALID;
		return sbx_fail(e, SBX_EPOLICY, "%s is not valid before %s", who, when);
	}
	if (ASN1_TIME_cmp_time_t(X509_get0_notAfter(x), now) < 0) {
		asn1_ms(X509_get0_notAfter(x), &ms);
		fmt_ms(ms, when);
		*verdict = X509CHECK_EXPIRED;
		return sbx_fail(e, SBX_EPOLICY, "%s expired on %s", who, when);
	}
	return 0;
}

/* Issued by itself: the same name, or its own key verifies it. */
static int self_signed(X509 *x)
{
	EVP_PKEY *k = X509_get0_pubkey(x);
	int r = X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) == 0 ||
	        (k != NULL && X509_verify(x, k) == 1);

	ERR_clear_error();
	return r;
}

/* ---- chain verification ------------------------------------------------- */

struct vstate {
	unsigned flags;
	char *notes;
};

static int is_no_issuer(int err)
{
	return err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
	       err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
	       err == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
	       err == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
	       err == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE;
}

static int is_crl_state(int err)
{
	return err == X509_V_ERR_UNABLE_TO_GET_CRL || err == X509_V_ERR_CRL_HAS_EXPIRED ||
	       err == X509_V_ERR_CRL_NOT_YET_VALID;
}

/* A missing or out-of-date CRL is allowed and reported, unless trust.conf
 * requires CRLs.  The anchor is never looked up in a CRL: an anchor is
 * withdrawn by removing it, and a root's CRL does not list the root. */
static int verify_cb(int ok, X509_STORE_CTX *ctx)
{
	struct vstate *vs = X509_STORE_CTX_get_app_data(ctx);
	int err = X509_STORE_CTX_get_error(ctx);
	int depth = X509_STORE_CTX_get_error_depth(ctx);
	STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
	X509 *cur = X509_STORE_CTX_get_current_cert(ctx);
	char issuer[X509CHECK_MAX_NAME + 1];

	if (ok || vs == NULL || !is_crl_state(err))
		return ok;
	if (err == X509_V_ERR_UNABLE_TO_GET_CRL && chain != NULL &&
	    depth == sk_X509_num(chain) - 1)
		return 1;
	if (vs->flags & X509CHECK_REQUIRE_CRL)
		return 0;
	name_str(cur ? X509_get_issuer_name(cur) : NULL, issuer, sizeof issuer);
	if (err == X509_V_ERR_UNABLE_TO_GET_CRL)
		note_add(vs->notes, "no CRL loaded for issuer '%.300s'", issuer);
	else if (err == X509_V_ERR_CRL_HAS_EXPIRED)
		note_add(vs->notes, "the CRL of '%.300s' is past its nextUpdate", issuer);
	else
		note_add(vs->notes, "the CRL of '%.300s' is not yet valid", issuer);
	return 1;
}

/* Only "no issuer found" stops this one: it asks where a chain leads. */
static int reach_cb(int ok, X509_STORE_CTX *ctx)
{
	return ok || !is_no_issuer(X509_STORE_CTX_get_error(ctx));
}

static X509_STORE *store_for(const struct x509check_trust *t, int ri, int with_crls)
{
	X509_STORE *st = X509_STORE_new();

	for (int i = 0; st != NULL && i < N_ROLES; i++) {
		if (ri >= 0 && i != ri)
			continue;
		for (int k = 0; k < sk_X509_num(t->anchors[i]); k++)
			if (X509_STORE_add_cert(st, sk_X509_value(t->anchors[i], k)) != 1)
				goto fail;
	}
	for (int k = 0; st != NULL && with_crls && k < sk_X509_CRL_num(t->crls); k++)
		if (X509_STORE_add_crl(st, sk_X509_CRL_value(t->crls, k)) != 1)
			goto fail;
	return st;
fail:
	X509_STORE_free(st);
	return NULL;
}

static X509_STORE_CTX *ctx_for(X509_STORE *st, X509 *x, STACK_OF(X509) *untrusted,
                               time_t when, unsigned long flags)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509_VERIFY_PARAM *p;

	if (ctx == NULL || X509_STORE_CTX_init(ctx, st, x, untrusted) != 1) {
		X509_STORE_CTX_free(ctx);
		return NULL;
	}
	p = X509_STORE_CTX_get0_param(ctx);
	/* Never partial chains: a chain ends at a self-signed anchor. */
	X509_VERIFY_PARAM_clear_flags(p, X509_V_FLAG_PARTIAL_CHAIN);
	X509_VERIFY_PARAM_set_flags(p, flags);
	X509_VERIFY_PARAM_set_time(p, when);
	X509_VERIFY_PARAM_set_depth(p, VERIFY_MAX_DEPTH);
	X509_VERIFY_PARAM_set_auth_level(p, VERIFY_AUTH_LEVEL);
	return ctx;
}

/* 1 if x chains to an anchor of role ri (any error but a missing issuer
 * ignored): tells "wrong role" from "unknown CA". */
static int reaches(const struct x509check_trust *t, int ri, X509 *x, STACK_OF(X509) *inter,
                   time_t when)
{
	X509_STORE *st = store_for(t, ri, 0);
	X509_STORE_CTX *ctx = st ? ctx_for(st, x, inter, when, 0) : NULL;
	int ok = 0;

	if (ctx != NULL) {
		X509_STORE_CTX_set_verify_cb(ctx, reach_cb);
		ok = X509_verify_cert(ctx) == 1;
	}
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	ERR_clear_error();
	return ok;
}

static int verify_chain(const struct x509check_trust *t, int ri, X509 *leaf,
                        STACK_OF(X509) *inter, time_t when, struct x509check_info *info,
                        struct sbx_err *e)
{
	X509_STORE *st = store_for(t, ri, 1);
	X509_STORE_CTX *ctx = NULL;
	STACK_OF(X509) *chain;
	struct vstate vs = { .flags = t->flags, .notes = info->notes };
	char who[X509CHECK_MAX_NAME + 32], sub[X509CHECK_MAX_NAME + 1];
	int r = SBX_ENOMEM, err, depth;
	X509 *cur;

	if (st == NULL || (ctx = ctx_for(st, leaf, inter, when, X509_V_FLAG_CRL_CHECK |
	                                 X509_V_FLAG_CRL_CHECK_ALL)) == NULL)
		goto out;
	X509_STORE_CTX_set_app_data(ctx, &vs);
	X509_STORE_CTX_set_verify_cb(ctx, verify_cb);
	if (X509_verify_cert(ctx) == 1) {
		chain = X509_STORE_CTX_get0_chain(ctx);
		cur = sk_X509_value(chain, sk_X509_num(chain) - 1);
		name_str(X509_get_subject_name(cur), info->anchor, sizeof info->anchor);
		r = x509fp_cert(cur, info->anchor_sha256);
		for (int i = 1; r == 0 && i < sk_X509_num(chain); i++) {
			X509 *c = sk_X509_value(chain, i);

			name_str(X509_get_subject_name(c), sub, sizeof sub);
			snprintf(who, sizeof who, "issuer '%.300s'", sub);
			r = fed_check(t, c, who, &info->verdict, e);
		}
		goto out;
	}
	err = X509_STORE_CTX_get_error(ctx);
	depth = X509_STORE_CTX_get_error_depth(ctx);
	cur = X509_STORE_CTX_get_current_cert(ctx);
	name_str(cur ? X509_get_subject_name(cur) : NULL, sub, sizeof sub);
	if (depth <= 0)
		snprintf(who, sizeof who, "the certificate");
	else
		snprintf(who, sizeof who, "issuer '%.300s'", sub);
	r = SBX_EPOLICY;
	if (err == X509_V_ERR_CERT_REVOKED) {
		char iss[X509CHECK_MAX_NAME + 1];

		name_str(cur ? X509_get_issuer_name(cur) : NULL, iss, sizeof iss);
		info->verdict = X509CHECK_REVOKED;
		sbx_fail(e, r, "%s is revoked by the CRL of '%.300s'", who, iss);
	} else if (err == X509_V_ERR_CERT_HAS_EXPIRED || err == X509_V_ERR_CERT_NOT_YET_VALID) {
		r = check_time(cur, when, who, &info->verdict, e);
		if (r == 0) {
			info->verdict = X509CHECK_CHAIN;
			r = sbx_fail(e, SBX_EPOLICY, "%s: %s", who, X509_verify_cert_error_string(err));
		}
	} else if (is_crl_state(err)) {
		char iss[X509CHECK_MAX_NAME + 1];

		name_str(cur ? X509_get_issuer_name(cur) : NULL, iss, sizeof iss);
		info->verdict = X509CHECK_NO_CRL;
		sbx_fail(e, r, "no current CRL of '%.300s' (%s), and trust.conf requires one for "
		         "every issuer", iss, err == X509_V_ERR_UNABLE_TO_GET_CRL ? "none loaded" :
		         err == X509_V_ERR_CRL_HAS_EXPIRED ? "past its nextUpdate" : "not yet valid");
	} else if (is_no_issuer(err)) {
		int other = -1;

		for (int i = 0; i < N_ROLES && other < 0; i++)
			if (i != ri && reaches(t, i, leaf, inter, when))
				other = i;
		if (other >= 0) {
			info->verdict = X509CHECK_WRONG_ROLE;
			sbx_fail(e, r, "the certificate chains to a %s trust anchor, not to a %s one",
			         x509check_roles[other], x509check_roles[ri]);
		} else {
			info->verdict = X509CHECK_UNKNOWN_CA;
			sbx_fail(e, r, "the certificate does not chain to any trust anchor (%s '%.300s' "
			         "is not a %s anchor or issued by one)", depth <= 0 ? "issuer" : "CA",
			         depth <= 0 ? info->issuer : sub, x509check_roles[ri]);
		}
	} else {
		info->verdict = X509CHECK_CHAIN;
		sbx_fail(e, r, "chain check failed at %s: %s", who, X509_verify_cert_error_string(err));
	}
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	ERR_clear_error();
	return r;
}

/* ---- recipients --------------------------------------------------------- */

static int refuse(struct x509check_info *info, int verdict, struct sbx_err *e,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int refuse(struct x509check_info *info, int verdict, struct sbx_err *e,
                  const char *fmt, ...)
{
	char msg[sizeof e->msg];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	info->verdict = verdict;
	return sbx_fail(e, verdict == X509CHECK_MALFORMED ? SBX_EFORMAT : SBX_EPOLICY, "%s", msg);
}

/* Checks every intermediate given with a certificate for markings: they are
 * part of what the box would trust, whether or not the chain uses them. */
static int fed_all(const struct x509check_trust *t, X509 *x, STACK_OF(X509) *more,
                   const char *who, struct x509check_info *info, struct sbx_err *e)
{
	char sub[X509CHECK_MAX_NAME + 1], w[X509CHECK_MAX_NAME + 32];
	int r = fed_check(t, x, who, &info->verdict, e);

	for (int i = 0; r == 0 && i < sk_X509_num(more); i++) {
		X509 *c = sk_X509_value(more, i);

		name_str(X509_get_subject_name(c), sub, sizeof sub);
		snprintf(w, sizeof w, "certificate '%.300s' given with it", sub);
		r = fed_check(t, c, w, &info->verdict, e);
	}
	return r;
}

int x509check_recipient(const struct x509check_trust *t, const char *role,
                        const uint8_t *der, size_t len,
                        const uint8_t *chain, size_t chainlen,
                        uint64_t now_ms, struct x509check_info *info, struct sbx_err *e)
{
	STACK_OF(X509) *inter = NULL;
	X509 *leaf = NULL;
	time_t when = (time_t)(now_ms / 1000);
	struct sbx_err tmp = { 0 };
	uint32_t ku;
	int ri = role_index(role), r, alg = 0;

	memset(info, 0, sizeof *info);
	info->verdict = X509CHECK_MALFORMED;
	if (ri < 0)
		return refuse(info, X509CHECK_WRONG_ROLE, e, "there is no role '%.64s': recipients "
		              "are court or prosecutor", role ? role : "");
	leaf = x509check_parse_cert(der, len);
	if (leaf == NULL) {
		r = refuse(info, X509CHECK_MALFORMED, e, "not one exact DER certificate (at most "
		           "%d bytes)", X509CHECK_MAX_CERT);
		goto out;
	}
	r = describe(leaf, info, e);
	if (r != 0)
		goto out;
	inter = sk_X509_new_null();
	if (inter == NULL) {
		r = SBX_ENOMEM;
		goto out;
	}
	r = parse_ders(chain, chainlen, inter, X509CHECK_MAX_CHAIN - 1, "intermediate certificate", e);
	if (r != 0)
		goto out;
	r = fed_all(t, leaf, inter, "the certificate", info, e);
	if (r != 0)
		goto out;
	if (self_signed(leaf)) {
		r = refuse(info, X509CHECK_SELF_SIGNED, e, "the certificate is self-signed: a "
		           "recipient's certificate must be issued by a trust anchor's CA");
		goto out;
	}
	if (wrap_key_alg(X509_get0_pubkey(leaf), &alg, &tmp) != 0) {
		const char *why = strncmp(tmp.msg, "wrap: ", 6) == 0 ? tmp.msg + 6 : tmp.msg;

		r = refuse(info, X509CHECK_KEY_TYPE, e, "the certificate's key cannot be wrapped to: "
		           "%s", why);
		goto out;
	}
	info->wrap_alg = alg;
	if (X509_get_extension_flags(leaf) & EXFLAG_CA) {
		r = refuse(info, X509CHECK_KEY_USAGE, e, "the certificate is a CA certificate "
		           "(basicConstraints CA:TRUE), not a recipient's");
		goto out;
	}
	ku = X509_get_key_usage(leaf);
	if (ku != UINT32_MAX && alg == WRAP_RSA_OAEP && !(ku & KU_KEY_ENCIPHERMENT)) {
		r = refuse(info, X509CHECK_KEY_USAGE, e, "keyUsage does not allow keyEncipherment "
		           "(needed to wrap to an RSA key)");
		goto out;
	}
	if (ku != UINT32_MAX && alg != WRAP_RSA_OAEP && !(ku & KU_KEY_AGREEMENT)) {
		r = refuse(info, X509CHECK_KEY_USAGE, e, "keyUsage does not allow keyAgreement "
		           "(needed to wrap to an EC key)");
		goto out;
	}
	r = check_time(leaf, when, "the certificate", &info->verdict, e);
	if (r != 0)
		goto out;
	r = verify_chain(t, ri, leaf, inter, when, info, e);
	if (r == 0)
		info->verdict = X509CHECK_OK;
out:
	if (r == SBX_EFORMAT)
		info->verdict = X509CHECK_MALFORMED;
	sk_X509_pop_free(inter, X509_free);
	X509_free(leaf);
	ERR_clear_error();
	return r;
}

/* ---- trust anchors ------------------------------------------------------ */

static int anchor_key_ok(EVP_PKEY *k, char *why, size_t whylen)
{
	char group[64];
	size_t glen = 0;
	int bits;

	switch (k ? EVP_PKEY_get_base_id(k) : 0) {
	case EVP_PKEY_RSA:
		bits = EVP_PKEY_get_bits(k);
		if (bits >= ANCHOR_MIN_RSA_BITS && bits <= WRAP_MAX_RSA_BITS)
			return 1;
		snprintf(why, whylen, "RSA key of %d bits (allowed %d..%d)", bits,
		         ANCHOR_MIN_RSA_BITS, WRAP_MAX_RSA_BITS);
		return 0;
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof group, &glen) == 1 &&
		    (!strcmp(group, "prime256v1") || !strcmp(group, "secp384r1") ||
		     !strcmp(group, "secp521r1")))
			return 1;
		ERR_clear_error();
		snprintf(why, whylen, "EC key not on P-256, P-384 or P-521");
		return 0;
	default:
		snprintf(why, whylen, "key type is not RSA or EC");
		return 0;
	}
}

int x509check_anchor(const struct x509check_trust *t, const char *role,
                     const uint8_t *der, size_t len, uint64_t now_ms,
                     struct x509check_info *info, struct sbx_err *e)
{
	X509 *x = NULL;
	char why[128];
	uint32_t ku;
	int r;

	memset(info, 0, sizeof *info);
	info->verdict = X509CHECK_MALFORMED;
	if (!x509check_role_valid(role))
		return refuse(info, X509CHECK_WRONG_ROLE, e, "there is no role '%.64s' and never a "
		              "trust anchor for it: anchors are for court or prosecutor",
		              role ? role : "");
	x = x509check_parse_cert(der, len);
	if (x == NULL) {
		r = refuse(info, X509CHECK_MALFORMED, e, "not one exact DER certificate (at most "
		           "%d bytes)", X509CHECK_MAX_CERT);
		goto out;
	}
	r = describe(x, info, e);
	if (r == 0)
		r = fed_check(t, x, "the CA certificate", &info->verdict, e);
	if (r != 0)
		goto out;
	if (!(X509_get_extension_flags(x) & EXFLAG_CA)) {
		r = refuse(info, X509CHECK_NOT_CA, e, "not a CA certificate (basicConstraints "
		           "CA:TRUE is missing)");
		goto out;
	}
	ku = X509_get_key_usage(x);
	if (ku != UINT32_MAX && !(ku & KU_KEY_CERT_SIGN)) {
		r = refuse(info, X509CHECK_NOT_CA, e, "keyUsage does not allow keyCertSign");
		goto out;
	}
	if (X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) != 0 ||
	    X509_verify(x, X509_get0_pubkey(x)) != 1) {
		r = refuse(info, X509CHECK_NOT_ROOT, e, "not a self-signed root CA (issued by "
		           "'%.300s'); intermediates come with each recipient's certificate",
		           info->issuer);
		goto out;
	}
	if (!anchor_key_ok(X509_get0_pubkey(x), why, sizeof why)) {
		r = refuse(info, X509CHECK_KEY_TYPE, e, "the CA's key is too weak: %s", why);
		goto out;
	}
	r = check_time(x, (time_t)(now_ms / 1000), "the CA certificate", &info->verdict, e);
	if (r != 0)
		goto out;
	snprintf(info->anchor, sizeof info->anchor, "%s", info->subject);
	memcpy(info->anchor_sha256, info->sha256, 32);
	info->verdict = X509CHECK_OK;
out:
	if (r == SBX_EFORMAT)
		info->verdict = X509CHECK_MALFORMED;
	X509_free(x);
	ERR_clear_error();
	return r;
}

/* ---- CRLs --------------------------------------------------------------- */

static int crl_fail(struct x509check_crl_info *info, int code, struct sbx_err *e,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int crl_fail(struct x509check_crl_info *info, int code, struct sbx_err *e,
                    const char *fmt, ...)
{
	char msg[sizeof e->msg];
	va_list ap;

	(void)info;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return sbx_fail(e, code, "%s", msg);
}

/* Exact-format checks a CRL must pass before its signature is looked at. */
static int crl_shape(X509_CRL *crl, struct x509check_crl_info *info, struct sbx_err *e)
{
	STACK_OF(X509_REVOKED) *rev;
	ASN1_INTEGER *num;
	BIGNUM *bn = NULL;
	char *dec = NULL;
	int crit = -1, r = 0;

	for (int i = 0; i < X509_CRL_get_ext_count(crl); i++) {
		X509_EXTENSION *ext = X509_CRL_get_ext(crl, i);
		int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));

		if (nid == NID_delta_crl)
			return crl_fail(info, SBX_EPOLICY, e, "delta CRLs are not supported: load the "
			                "issuer's full CRL");
		if (nid == NID_issuing_distribution_point)
			return crl_fail(info, SBX_EPOLICY, e, "partitioned or indirect CRLs "
			                "(issuingDistributionPoint) are not supported: load the "
			                "issuer's full CRL");
		if (nid != NID_undef && X509_CRL_get_ext_by_NID(crl, nid, i) >= 0)
			return crl_fail(info, SBX_EFORMAT, e, "a CRL extension is repeated");
		if (X509_EXTENSION_get_critical(ext) && nid != NID_authority_key_identifier &&
		    nid != NID_crl_number)
			return crl_fail(info, SBX_EPOLICY, e, "the CRL has an unhandled critical "
			                "extension");
	}
	num = X509_CRL_get_ext_d2i(crl, NID_crl_number, &crit, NULL);
	if (num == NULL && crit != -1) {
		ERR_clear_error();
		return crl_fail(info, SBX_EFORMAT, e, "cRLNumber does not decode");
	}
	if (num != NULL) {
		bn = ASN1_INTEGER_to_BN(num, NULL);
		dec = bn ? BN_bn2dec(bn) : NULL;
		if (dec == NULL || BN_is_negative(bn) || strlen(dec) >= sizeof info->number)
			r = crl_fail(info, SBX_EFORMAT, e, "cRLNumber is negative or too large");
		else
			snprintf(info->number, sizeof info->number, "%s", dec);
	}
	OPENSSL_free(dec);
	BN_free(bn);
	ASN1_INTEGER_free(num);
	if (r != 0)
		return r;
	rev = X509_CRL_get_REVOKED(crl);
	for (int i = 0; i < sk_X509_REVOKED_num(rev); i++) {
		const STACK_OF(X509_EXTENSION) *ex =
			X509_REVOKED_get0_extensions(sk_X509_REVOKED_value(rev, i));

		for (int k = 0; k < sk_X509_EXTENSION_num(ex); k++)
			if (X509_EXTENSION_get_critical(sk_X509_EXTENSION_value(ex, k)))
				return crl_fail(info, SBX_EPOLICY, e, "CRL entry %d has a critical "
				                "extension (indirect CRLs are not supported)", i + 1);
	}
	info->revoked = (uint64_t)sk_X509_REVOKED_num(rev);
	return 0;
}

static int can_sign_crl(X509 *x)
{
	uint32_t ku = X509_get_key_usage(x);

	return ku == UINT32_MAX || (ku & KU_CRL_SIGN);
}

/* A CA certificate outside the anchors that chains to one at `when`, with
 * no federal marking anywhere on the way. */
static int pool_cert_ok(const struct x509check_trust *t, X509 *x, STACK_OF(X509) *untrusted,
                        time_t when, struct sbx_err *e)
{
	X509_STORE *st = store_for(t, -1, 0);
	X509_STORE_CTX *ctx = NULL;
	struct sbx_err tmp = { 0 };
	int ok = 0, verdict = 0;

	if (!(X509_get_extension_flags(x) & EXFLAG_CA) || st == NULL)
		goto out;
	ctx = ctx_for(st, x, untrusted, when, 0);
	if (ctx == NULL || X509_verify_cert(ctx) != 1)
		goto out;
	ok = 1;
	for (int i = 0; ok && i < sk_X509_num(X509_STORE_CTX_get0_chain(ctx)); i++)
		ok = fed_check(t, sk_X509_value(X509_STORE_CTX_get0_chain(ctx), i), "the CRL's issuer",
		               &verdict, &tmp) == 0;
	if (!ok)
		sbx_fail(e, SBX_EPOLICY, "%s", tmp.msg);
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	ERR_clear_error();
	return ok;
}

int x509check_crl(const struct x509check_trust *t, const uint8_t *der, size_t len,
                  const uint8_t *extra, size_t extralen, uint64_t now_ms,
                  struct x509check_crl_info *info, struct sbx_err *e)
{
	STACK_OF(X509) *untrusted = NULL;
	X509_CRL *crl = NULL;
	const X509_NAME *iss;
	unsigned char *nder = NULL;
	time_t when = (time_t)(now_ms / 1000);
	char t1[32], t2[32];
	X509 *signer = NULL;
	int r, n;

	memset(info, 0, sizeof *info);
	crl = parse_crl(der, len);
	if (crl == NULL) {
		r = sbx_fail(e, SBX_EFORMAT, "not one exact DER CRL (at most %u bytes)",
		             X509CHECK_MAX_CRL);
		goto out;
	}
	iss = X509_CRL_get_issuer(crl);
	name_str(iss, info->issuer, sizeof info->issuer);
	n = i2d_X509_NAME(iss, &nder);
	if (n <= 0 || hash_sha256(nder, (size_t)n, info->issuer_key) != 0 ||
	    hash_sha256(der, len, info->sha256) != 0) {
		r = sbx_fail(e, SBX_ECRYPTO, "cannot encode the CRL's issuer");
		goto out;
	}
	if (asn1_ms(X509_CRL_get0_lastUpdate(crl), &info->this_update_ms) != 0 ||
	    (X509_CRL_get0_nextUpdate(crl) != NULL &&
	     asn1_ms(X509_CRL_get0_nextUpdate(crl), &info->next_update_ms) != 0)) {
		r = sbx_fail(e, SBX_EFORMAT, "the CRL's dates do not decode");
		goto out;
	}
	r = crl_shape(crl, info, e);
	if (r != 0)
		goto out;
	if (ASN1_TIME_cmp_time_t(X509_CRL_get0_lastUpdate(crl), when) > 0) {
		fmt_ms(info->this_update_ms, t1);
		fmt_ms(now_ms, t2);
		r = sbx_fail(e, SBX_EPOLICY, "the CRL is not valid before %s (the box's clock says %s)",
		             t1, t2);
		goto out;
	}
	if (X509_CRL_get0_nextUpdate(crl) != NULL &&
	    ASN1_TIME_cmp_time_t(X509_CRL_get0_nextUpdate(crl), when) < 0) {
		fmt_ms(info->next_update_ms, t1);
		note_add(info->notes, "the CRL was due to be replaced on %s", t1);
	}
	untrusted = sk_X509_new_null();
	if (untrusted == NULL) {
		r = SBX_ENOMEM;
		goto out;
	}
	for (int i = 0; i < sk_X509_num(t->pool); i++)
		if (!sk_X509_push(untrusted, sk_X509_value(t->pool, i)) ||
		    !X509_up_ref(sk_X509_value(t->pool, i))) {
			r = SBX_ENOMEM;
			goto out;
		}
	r = parse_ders(extra, extralen, untrusted, (size_t)sk_X509_num(t->pool) + X509CHECK_MAX_CHAIN,
	               "issuer certificate", e);
	if (r != 0)
		goto out;
	for (int ri = 0; signer == NULL && ri < N_ROLES; ri++)
		for (int k = 0; signer == NULL && k < sk_X509_num(t->anchors[ri]); k++) {
			X509 *a = sk_X509_value(t->anchors[ri], k);

			if (X509_NAME_cmp(X509_get_subject_name(a), iss) == 0 &&
			    X509_CRL_verify(crl, X509_get0_pubkey(a)) == 1 && can_sign_crl(a))
				signer = a;
		}
	for (int k = 0; signer == NULL && k < sk_X509_num(untrusted); k++) {
		X509 *c = sk_X509_value(untrusted, k);

		if (X509_NAME_cmp(X509_get_subject_name(c), iss) == 0 &&
		    X509_CRL_verify(crl, X509_get0_pubkey(c)) == 1 && can_sign_crl(c) &&
		    pool_cert_ok(t, c, untrusted, when, e))
			signer = c;
	}
	ERR_clear_error();
	if (signer == NULL) {
		r = sbx_fail(e, SBX_EPOLICY, "the CRL of '%.300s' is not signed by a trust anchor or "
		             "by a CA certificate that chains to one", info->issuer);
		goto out;
	}
	name_str(X509_get_subject_name(signer), info->signer, sizeof info->signer);
	r = 0;
out:
	OPENSSL_free(nder);
	sk_X509_pop_free(untrusted, X509_free);
	X509_CRL_free(crl);
	ERR_clear_error();
	return r;
}

static int dec_cmp(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la != lb)
		return la < lb ? -1 : 1;
	return strcmp(a, b);
}

int x509check_crl_newer(const struct x509check_crl_info *cur,
                        const struct x509check_crl_info *next, struct sbx_err *e)
{
	char a[32], b[32];

	if (CRYPTO_memcmp(cur->issuer_key, next->issuer_key, 32) != 0) {
		sbx_fail(e, SBX_EINVAL, "internal: CRLs of different issuers compared");
		return 0;
	}
	if (CRYPTO_memcmp(cur->sha256, next->sha256, 32) == 0) {
		sbx_fail(e, SBX_EEXIST, "this CRL of '%.300s' is already loaded", next->issuer);
		return 0;
	}
	fmt_ms(cur->this_update_ms, a);
	fmt_ms(next->this_update_ms, b);
	if (cur->number[0] != '\0' && next->number[0] != '\0') {
		if (dec_cmp(next->number, cur->number) <= 0) {
			sbx_fail(e, SBX_EPOLICY, "CRL number %s of '%.300s' is not newer than the loaded "
			         "CRL number %s", next->number, next->issuer, cur->number);
			return 0;
		}
		if (next->this_update_ms < cur->this_update_ms) {
			sbx_fail(e, SBX_EPOLICY, "the CRL of '%.300s' issued %s is older than the loaded "
			         "one (issued %s)", next->issuer, b, a);
			return 0;
		}
		return 1;
	}
	if (next->this_update_ms <= cur->this_update_ms) {
		sbx_fail(e, SBX_EPOLICY, "the CRL of '%.300s' issued %s is not newer than the loaded "
		         "one (issued %s)", next->issuer, b, a);
		return 0;
	}
	return 1;
}

/* ---- files -------------------------------------------------------------- */

static int grow(uint8_t **buf, size_t *len, const uint8_t *p, size_t n)
{
	uint8_t *nb = realloc(*buf, *len + n);

	if (nb == NULL)
		return SBX_ENOMEM;
	memcpy(nb + *len, p, n);
	*buf = nb;
	*len += n;
	return 0;
}

static int add_object(struct x509check_file *f, int is_crl, const uint8_t *der, size_t len,
                      struct sbx_err *e)
{
	if (is_crl) {
		X509_CRL *c = parse_crl(der, len);
		int ok = c != NULL;

		X509_CRL_free(c);
		if (!ok)
			return sbx_fail(e, SBX_EFORMAT, "the CRL is not exact DER (at most %u bytes)",
			                X509CHECK_MAX_CRL);
		if (f->crl != NULL)
			return sbx_fail(e, SBX_EFORMAT, "more than one CRL");
		f->crl = malloc(len);
		if (f->crl == NULL)
			return SBX_ENOMEM;
		memcpy(f->crl, der, len);
		f->crl_len = len;
		return 0;
	} else {
		X509 *x = x509check_parse_cert(der, len);
		int ok = x != NULL;

		X509_free(x);
		if (!ok)
			return sbx_fail(e, SBX_EFORMAT, "certificate %zu is not exact DER (at most %d "
			                "bytes)", f->n_certs + 1, X509CHECK_MAX_CERT);
		if (f->n_certs == X509CHECK_MAX_CHAIN)
			return sbx_fail(e, SBX_EFORMAT, "more than %d certificates", X509CHECK_MAX_CHAIN);
		if (f->n_certs == 0)
			f->first_len = len;
		f->n_certs++;
		return grow(&f->certs, &f->certs_len, der, len);
	}
}

int x509check_file_split(const uint8_t *buf, size_t len, int want_crl,
                         struct x509check_file *out, struct sbx_err *e)
{
	BIO *bio = NULL;
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	long dlen = 0;
	int r = SBX_EFORMAT;

	memset(out, 0, sizeof *out);
	if (buf == NULL || len == 0)
		return sbx_fail(e, SBX_EFORMAT, "empty file");
	if (len > X509CHECK_MAX_CRL + 65536)
		return sbx_fail(e, SBX_EFORMAT, "file too large");
	/* DER is one SEQUENCE; PEM is text ('0' is 0x30 too, hence the BEGIN look). */
	if (buf[0] == 0x30 && memmem(buf, len, "-----BEGIN ", 11) == NULL) {
		r = add_object(out, want_crl, buf, len, e);
		goto out;
	}
	bio = BIO_new_mem_buf(buf, (int)len);
	if (bio == NULL) {
		r = SBX_ENOMEM;
		goto out;
	}
	for (;;) {
		unsigned long err;

		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(data);
		name = header = NULL;
		data = NULL;
		ERR_clear_error();
		if (PEM_read_bio(bio, &name, &header, &data, &dlen) != 1) {
			err = ERR_peek_last_error();
			if (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE)
				break;
			r = sbx_fail(e, SBX_EFORMAT, "a PEM block is malformed");
			goto out;
		}
		if (header != NULL && header[0] != '\0') {
			r = sbx_fail(e, SBX_EFORMAT, "PEM headers (encryption) are not accepted");
			goto out;
		}
		if (strcmp(name, PEM_STRING_X509) == 0) {
			r = add_object(out, 0, data, (size_t)dlen, e);
		} else if (want_crl && strcmp(name, PEM_STRING_X509_CRL) == 0) {
			r = add_object(out, 1, data, (size_t)dlen, e);
		} else {
			r = sbx_fail(e, SBX_EFORMAT, "unexpected PEM block '%.40s' (expected %s)", name,
			             want_crl ? "X509 CRL or CERTIFICATE" : "CERTIFICATE");
		}
		if (r != 0)
			goto out;
	}
	r = 0;
out:
	if (r == 0 && want_crl && out->crl == NULL)
		r = sbx_fail(e, SBX_EFORMAT, "no CRL found (PEM 'X509 CRL' or DER expected)");
	if (r == 0 && !want_crl && out->n_certs == 0)
		r = sbx_fail(e, SBX_EFORMAT, "no certificate found (PEM or DER expected)");
	if (r != 0)
		x509check_file_free(out);
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(data);
	BIO_free(bio);
	ERR_clear_error();
	return r;
}

void x509check_file_free(struct x509check_file *f)
{
	if (f == NULL)
		return;
	free(f->certs);
	free(f->crl);
	memset(f, 0, sizeof *f);
}

/* The recipient, trust-anchor and CRL checks (appliance/x509check.c) on a
 * test PKI built here with OpenSSL: court and prosecutor roots, a court
 * intermediate, an unknown root, and leaves for every verdict (good EC
 * P-256 and RSA-3072; RSA-2048, expired, not yet valid, revoked, wrong role,
 * unknown CA, self-signed, federal by policy OID / organization / email /
 * DNS / domain components / intermediate, digitalSignature-only, CA as
 * recipient, malformed), each asserting the exact verdict; anchors; CRLs
 * (issuer lookup, replacement order, future and expired CRLs, revoked
 * intermediate); trust.conf; file splitting. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/conf.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "appliance/x509check.h"
#include "crypto/err.h"
#include "crypto/wrap.h"
#include "tests/unit/check.h"

#define NOW   1767225600L            /* 2026-01-01T00:00:00Z */
#define DAY   86400L
#define NOWMS ((uint64_t)NOW * 1000u)

static void must(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "test setup failed: %s\n", what);
		exit(2);
	}
}

static EVP_PKEY *ec_key(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	must(k != NULL, "EC keygen");
	return k;
}

static EVP_PKEY *rsa_key(size_t bits)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits);

	must(k != NULL, "RSA keygen");
	return k;
}

struct spec {
	const char *cn;
	const char *o;           /* organization, or NULL */
	const char *dc;          /* "gov,dhs": DC components in DER order, or NULL */
	const char *bc;          /* basicConstraints, or NULL */
	const char *ku;          /* keyUsage, or NULL */
	const char *san;         /* subjectAltName, or NULL */
	const char *policy;      /* certificatePolicies, or NULL */
	long nb, na;             /* validity relative to NOW, seconds */
	long serial;
};

static CONF *ext_conf;

static void add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *val)
{
	X509_EXTENSION *ext;

	if (val == NULL)
		return;
	/* certificatePolicies wants a config database, even an empty one. */
	ext = X509V3_EXT_nconf_nid(ext_conf, ctx, nid, val);
	must(ext != NULL && X509_add_ext(x, ext, -1) == 1, val);
	X509_EXTENSION_free(ext);
}

/* issuer NULL: self-signed with `key`. */
static X509 *make_cert(const struct spec *s, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	X509V3_CTX ctx;

	must(x != NULL && n != NULL, "X509_new");
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), s->serial);
	if (s->dc != NULL) {
		char buf[128], *save = NULL;

		snprintf(buf, sizeof buf, "%s", s->dc);
		for (char *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save))
			X509_NAME_add_entry_by_NID(n, NID_domainComponent, MBSTRING_ASC,
			                           (unsigned char *)p, -1, -1, 0);
	}
	if (s->o != NULL)
		X509_NAME_add_entry_by_NID(n, NID_organizationName, MBSTRING_ASC,
		                           (const unsigned char *)s->o, -1, -1, 0);
	X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_ASC,
	                           (const unsigned char *)s->cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509_NAME_free(n);
	ASN1_TIME_set(X509_getm_notBefore(x), NOW + s->nb);
	ASN1_TIME_set(X509_getm_notAfter(x), NOW + s->na);
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	if (ext_conf == NULL)
		ext_conf = NCONF_new(NULL);
	must(ext_conf != NULL, "NCONF_new");
	X509V3_set_nconf(&ctx, ext_conf);
	add_ext(x, &ctx, NID_basic_constraints, s->bc);
	add_ext(x, &ctx, NID_key_usage, s->ku);
	add_ext(x, &ctx, NID_subject_key_identifier, "hash");
	if (issuer != NULL)
		add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
	add_ext(x, &ctx, NID_subject_alt_name, s->san);
	add_ext(x, &ctx, NID_certificate_policies, s->policy);
	must(X509_sign(x, issuer ? ikey : key, EVP_sha256()) > 0, "X509_sign");
	return x;
}

static X509_CRL *make_crl(X509 *issuer, EVP_PKEY *key, const long *serials, size_t n,
                          long this_off, long next_off, long number)
{
	X509_CRL *c = X509_CRL_new();
	ASN1_TIME *t1 = ASN1_TIME_set(NULL, NOW + this_off);
	ASN1_TIME *t2 = ASN1_TIME_set(NULL, NOW + next_off);

	must(c && t1 && t2, "CRL alloc");
	X509_CRL_set_version(c, 1);
	X509_CRL_set_issuer_name(c, X509_get_subject_name(issuer));
	X509_CRL_set1_lastUpdate(c, t1);
	X509_CRL_set1_nextUpdate(c, t2);
	for (size_t i = 0; i < n; i++) {
		X509_REVOKED *rv = X509_REVOKED_new();
		ASN1_INTEGER *sn = ASN1_INTEGER_new();

		ASN1_INTEGER_set(sn, serials[i]);
		X509_REVOKED_set_serialNumber(rv, sn);
		X509_REVOKED_set_revocationDate(rv, t1);
		X509_CRL_add0_revoked(c, rv);
		ASN1_INTEGER_free(sn);
	}
	if (number >= 0) {
		ASN1_INTEGER *num = ASN1_INTEGER_new();

		ASN1_INTEGER_set(num, number);
		X509_CRL_add1_ext_i2d(c, NID_crl_number, num, 0, 0);
		ASN1_INTEGER_free(num);
	}
	X509_CRL_sort(c);
	must(X509_CRL_sign(c, key, EVP_sha256()) > 0, "X509_CRL_sign");
	ASN1_TIME_free(t1);
	ASN1_TIME_free(t2);
	return c;
}

struct der {
	uint8_t *p;
	size_t n;
};

static struct der der_of(X509 *x)
{
	struct der d = { NULL, 0 };
	int n = i2d_X509(x, &d.p);

	must(n > 0, "i2d_X509");
	d.n = (size_t)n;
	return d;
}

static struct der der_of_crl(X509_CRL *c)
{
	struct der d = { NULL, 0 };
	int n = i2d_X509_CRL(c, &d.p);

	must(n > 0, "i2d_X509_CRL");
	d.n = (size_t)n;
	return d;
}

static void der_free(struct der *d)
{
	OPENSSL_free(d->p);
	d->p = NULL;
}

/* The PKI. */
static EVP_PKEY *k_court_root, *k_court_int, *k_pros_root, *k_unknown, *k_leaf_ec, *k_rsa3072,
                *k_rsa2048, *k_fed_int;
static X509 *court_root, *court_int, *pros_root, *unknown_root, *fed_int;

static const char *const CA_KU = "critical,keyCertSign,cRLSign";
static const char *const CA_BC = "critical,CA:TRUE";
static const char *const EC_KU = "critical,keyAgreement";

static void make_pki(void)
{
	struct spec s;

	k_court_root = ec_key();
	k_court_int = ec_key();
	k_pros_root = ec_key();
	k_unknown = ec_key();
	k_leaf_ec = ec_key();
	k_fed_int = ec_key();
	k_rsa3072 = rsa_key(3072);
	k_rsa2048 = rsa_key(2048);
	s = (struct spec){ .cn = "Test Court Root", .o = "Colorado Judicial Branch", .bc = CA_BC,
	                   .ku = CA_KU, .nb = -365 * DAY, .na = 3650 * DAY, .serial = 1 };
	court_root = make_cert(&s, k_court_root, NULL, NULL);
	s = (struct spec){ .cn = "Test Court Issuing CA", .o = "Colorado Judicial Branch",
	                   .bc = CA_BC, .ku = CA_KU, .nb = -300 * DAY, .na = 1800 * DAY,
	                   .serial = 2 };
	court_int = make_cert(&s, k_court_int, court_root, k_court_root);
	s = (struct spec){ .cn = "Test Prosecutor Root", .o = "Denver District Attorney",
	                   .bc = CA_BC, .ku = CA_KU, .nb = -365 * DAY, .na = 3650 * DAY,
	                   .serial = 1 };
	pros_root = make_cert(&s, k_pros_root, NULL, NULL);
	s = (struct spec){ .cn = "Unknown Root", .bc = CA_BC, .ku = CA_KU, .nb = -DAY,
	                   .na = 3650 * DAY, .serial = 1 };
	unknown_root = make_cert(&s, k_unknown, NULL, NULL);
	s = (struct spec){ .cn = "Court Bridge CA", .o = "Colorado Judicial Branch", .bc = CA_BC,
	                   .ku = CA_KU, .policy = "2.16.840.1.101.3.2.1.3.13", .nb = -DAY,
	                   .na = 1800 * DAY, .serial = 3 };
	fed_int = make_cert(&s, k_fed_int, court_root, k_court_root);
}

static struct x509check_trust *trust_base(void)
{
	struct x509check_trust *t = x509check_trust_new();
	struct der a = der_of(court_root), b = der_of(pros_root);

	must(t != NULL, "trust_new");
	must(x509check_trust_add_anchor(t, "court", a.p, a.n, NULL) == 0, "add court anchor");
	must(x509check_trust_add_anchor(t, "prosecutor", b.p, b.n, NULL) == 0, "add pros anchor");
	der_free(&a);
	der_free(&b);
	return t;
}

/* Leaf under the court intermediate (chain = the intermediate). */
static X509 *court_leaf(struct spec s, EVP_PKEY *k)
{
	return make_cert(&s, k, court_int, k_court_int);
}

static int run(struct x509check_trust *t, const char *role, X509 *leaf, X509 *inter,
               uint64_t now, struct x509check_info *info, struct sbx_err *e)
{
	struct der l = der_of(leaf), c = { NULL, 0 };
	int r;

	if (inter != NULL)
		c = der_of(inter);
	sbx_err_clear(e);
	r = x509check_recipient(t, role, l.p, l.n, c.p, c.n, now, info, e);
	der_free(&l);
	der_free(&c);
	return r;
}

/* Asserts code and verdict, and that the reason names `word`. */
static void expect(struct x509check_trust *t, const char *what, const char *role, X509 *leaf,
                   X509 *inter, int code, int verdict, const char *word)
{
	struct x509check_info info;
	struct sbx_err e = { 0 };
	char msg[1024];
	int r = run(t, role, leaf, inter, NOWMS, &info, &e);

	snprintf(msg, sizeof msg, "%s: code %d verdict %s (%s)", what, r,
	         x509check_verdict_name(info.verdict), e.msg);
	CHECK_MSG(r == code && info.verdict == verdict, msg);
	if (word != NULL) {
		snprintf(msg, sizeof msg, "%s: the reason mentions '%s'", what, word);
		CHECK_MSG(strstr(e.msg, word) != NULL && strchr(e.msg, '\n') == NULL, msg);
	}
	X509_free(leaf);
}

static void test_recipients(void)
{
	struct x509check_trust *t = trust_base();
	struct x509check_info info;
	struct sbx_err e = { 0 };
	struct spec base = { .cn = "Clerk A", .o = "Denver County Court", .ku = EC_KU,
	                     .nb = -DAY, .na = 365 * DAY, .serial = 100 };
	struct spec s;
	X509 *leaf;
	int r;

	/* good EC P-256 */
	leaf = court_leaf(base, k_leaf_ec);
	r = run(t, "court", leaf, court_int, NOWMS, &info, &e);
	CHECK_MSG(r == 0 && info.verdict == X509CHECK_OK, "good EC P-256 court recipient is usable");
	CHECK_MSG(info.wrap_alg == WRAP_ECDH_P256, "it wraps with ECDH P-256");
	CHECK_MSG(strstr(info.anchor, "Test Court Root") != NULL, "the anchor reached is the court root");
	CHECK_MSG(strstr(info.subject, "CN=Clerk A") != NULL, "the subject is reported");
	CHECK_MSG(strstr(info.notes, "no CRL loaded for issuer") != NULL &&
	          strstr(info.notes, "Test Court Issuing CA") != NULL,
	          "a missing CRL is allowed and reported, naming the issuer");
	CHECK_MSG(strstr(info.notes, "Test Court Root'") == NULL ||
	          strstr(info.notes, "issuer 'CN=Test Court Root") != NULL,
	          "the anchor itself is not looked up in a CRL");
	CHECK_MSG(info.not_after_ms == NOWMS + 365ull * DAY * 1000, "notAfter in ms");
	expect(t, "good EC as prosecutor", "prosecutor", court_leaf(base, k_leaf_ec), court_int,
	       SBX_EPOLICY, X509CHECK_WRONG_ROLE, "court trust anchor");
	expect(t, "the same certificate for a 'federal' role", "federal",
	       court_leaf(base, k_leaf_ec), court_int, SBX_EPOLICY, X509CHECK_WRONG_ROLE, "no role");
	X509_free(leaf);

	/* good RSA-3072 straight under the prosecutor root */
	s = (struct spec){ .cn = "DDA Smith", .o = "Denver District Attorney",
	                   .ku = "critical,keyEncipherment", .nb = -DAY, .na = 365 * DAY, .serial = 7 };
	leaf = make_cert(&s, k_rsa3072, pros_root, k_pros_root);
	r = run(t, "prosecutor", leaf, NULL, NOWMS, &info, &e);
	CHECK_MSG(r == 0 && info.verdict == X509CHECK_OK, "good RSA-3072 prosecutor recipient is usable");
	CHECK_MSG(info.wrap_alg == WRAP_RSA_OAEP, "it wraps with RSA-OAEP");
	expect(t, "RSA prosecutor as court (wrong role)", "court", leaf, NULL, SBX_EPOLICY,
	       X509CHECK_WRONG_ROLE, "prosecutor");

	s = base;
	s.ku = "critical,keyEncipherment";
	expect(t, "RSA-2048", "court", court_leaf(s, k_rsa2048), court_int, SBX_EPOLICY,
	       X509CHECK_KEY_TYPE, "2048");
	s = base;
	s.ku = "critical,keyAgreement";
	s.cn = "RSA with keyAgreement only";
	s.serial = 101;
	expect(t, "RSA-3072 whose keyUsage lacks keyEncipherment", "court",
	       court_leaf(s, k_rsa3072), court_int, SBX_EPOLICY, X509CHECK_KEY_USAGE,
	       "keyEncipherment");

	s = base;
	s.nb = -400 * DAY;
	s.na = -DAY;
	expect(t, "expired", "court", court_leaf(s, k_leaf_ec), court_int, SBX_EPOLICY,
	       X509CHECK_EXPIRED, "expired on 2025-12-31");
	s = base;
	s.nb = DAY;
	expect(t, "not yet valid", "court", court_leaf(s, k_leaf_ec), court_int, SBX_EPOLICY,
	       X509CHECK_NOT_YET_VALID, "not valid before 2026-01-02");

	s = (struct spec){ .cn = "Stranger", .ku = EC_KU, .nb = -DAY, .na = DAY, .serial = 9 };
	expect(t, "unknown CA", "court", make_cert(&s, k_leaf_ec, unknown_root, k_unknown), NULL,
	       SBX_EPOLICY, X509CHECK_UNKNOWN_CA, "Unknown Root");
	expect(t, "the court intermediate not given: its issuer is not found", "court",
	       court_leaf(base, k_leaf_ec), NULL, SBX_EPOLICY, X509CHECK_UNKNOWN_CA,
	       "does not chain");
	s = (struct spec){ .cn = "Self Made", .ku = EC_KU, .nb = -DAY, .na = DAY, .serial = 9 };
	expect(t, "self-signed", "court", make_cert(&s, k_leaf_ec, NULL, NULL), NULL, SBX_EPOLICY,
	       X509CHECK_SELF_SIGNED, "self-signed");

	s = base;
	s.policy = "2.16.840.1.101.3.2.1.3.13";
	expect(t, "federal by certificate policy OID", "court", court_leaf(s, k_leaf_ec), court_int,
	       SBX_EPOLICY, X509CHECK_FEDERAL, "2.16.840.1.101.3.2.1.3.13");
	s = base;
	s.policy = "2.16.840.1.101.2.1.11.39";
	expect(t, "federal by DoD policy OID", "court", court_leaf(s, k_leaf_ec), court_int,
	       SBX_EPOLICY, X509CHECK_FEDERAL, "2.16.840.1.101.2.1");
	s = base;
	s.policy = "2.16.840.1.1010.1";
	expect(t, "an OID that only shares a prefix string is not federal", "court",
	       court_leaf(s, k_leaf_ec), court_int, 0, X509CHECK_OK, NULL);
	s = base;
	s.o = "U.S. Government";
	expect(t, "federal by O=U.S. Government", "court", court_leaf(s, k_leaf_ec), court_int,
	       SBX_EPOLICY, X509CHECK_FEDERAL, "organization");
	s = base;
	s.o = "US GOVERNMENT";
	expect(t, "federal by O=US GOVERNMENT (normalized)", "court", court_leaf(s, k_leaf_ec),
	       court_int, SBX_EPOLICY, X509CHECK_FEDERAL, "US GOVERNMENT");
	s = base;
	s.san = "email:agent.doe@ice.dhs.gov";
	expect(t, "federal by email domain", "court", court_leaf(s, k_leaf_ec), court_int,
	       SBX_EPOLICY, X509CHECK_FEDERAL, "ice.dhs.gov");
	s = base;
	s.san = "email:Agent@FBI.GOV";
	expect(t, "federal by email domain, any case", "court", court_leaf(s, k_leaf_ec),
	       court_int, SBX_EPOLICY, X509CHECK_FEDERAL, "fbi.gov");
	s = base;
	s.san = "DNS:gateway.region1.fed.us";
	expect(t, "federal by DNS name under fed.us", "court", court_leaf(s, k_leaf_ec), court_int,
	       SBX_EPOLICY, X509CHECK_FEDERAL, "fed.us");
	s = base;
	s.san = "URI:https://user@portal.usmarshals.gov:8443/x";
	expect(t, "federal by URI host", "court", court_leaf(s, k_leaf_ec), court_int,
	       SBX_EPOLICY, X509CHECK_FEDERAL, "usmarshals.gov");
	s = base;
	s.dc = "gov,dhs";
	expect(t, "federal by DC=dhs,DC=gov", "court", court_leaf(s, k_leaf_ec), court_int,
	       SBX_EPOLICY, X509CHECK_FEDERAL, "dhs.gov");
	s = base;
	s.dc = "ice,dhs,gov";
	expect(t, "federal by DC components in reverse order", "court", court_leaf(s, k_leaf_ec),
	       court_int, SBX_EPOLICY, X509CHECK_FEDERAL, "dhs.gov");
	s = base;
	s.cn = "intake@cbp.dhs.gov";
	expect(t, "federal by an email address in the CN", "court", court_leaf(s, k_leaf_ec),
	       court_int, SBX_EPOLICY, X509CHECK_FEDERAL, "cbp.dhs.gov");
	s = base;
	s.san = "email:clerk@notdhs.gov";
	expect(t, "a domain that merely ends in the same letters is not federal", "court",
	       court_leaf(s, k_leaf_ec), court_int, 0, X509CHECK_OK, NULL);
	s = base;
	s.san = "email:clerk@denvergov.org,email:records@coloradojudicial.gov";
	expect(t, "city and state addresses are not federal", "court", court_leaf(s, k_leaf_ec),
	       court_int, 0, X509CHECK_OK, NULL);
	s = base;
	expect(t, "federal by the intermediate's policy OID", "court",
	       make_cert(&s, k_leaf_ec, fed_int, k_fed_int), fed_int, SBX_EPOLICY,
	       X509CHECK_FEDERAL, "Court Bridge CA");

	s = base;
	s.ku = "critical,digitalSignature";
	expect(t, "keyUsage digitalSignature only", "court", court_leaf(s, k_leaf_ec), court_int,
	       SBX_EPOLICY, X509CHECK_KEY_USAGE, "keyAgreement");
	s = base;
	s.ku = NULL;
	expect(t, "no keyUsage at all is allowed", "court", court_leaf(s, k_leaf_ec), court_int, 0,
	       X509CHECK_OK, NULL);
	s = base;
	s.bc = "critical,CA:TRUE";
	s.ku = "critical,keyAgreement,keyCertSign";
	expect(t, "a CA certificate as recipient", "court", court_leaf(s, k_leaf_ec), court_int,
	       SBX_EPOLICY, X509CHECK_KEY_USAGE, "CA certificate");

	/* malformed input */
	{
		struct der d;

		leaf = court_leaf(base, k_leaf_ec);
		d = der_of(leaf);
		r = x509check_recipient(t, "court", d.p, d.n - 1, NULL, 0, NOWMS, &info, &e);
		CHECK_MSG(r == SBX_EFORMAT && info.verdict == X509CHECK_MALFORMED, "truncated DER is malformed");
		d.p = OPENSSL_realloc(d.p, d.n + 1);
		d.p[d.n] = 0;
		r = x509check_recipient(t, "court", d.p, d.n + 1, NULL, 0, NOWMS, &info, &e);
		CHECK_MSG(r == SBX_EFORMAT && info.verdict == X509CHECK_MALFORMED, "a trailing byte is malformed");
		r = x509check_recipient(t, "court", d.p, d.n, d.p, d.n - 1, NOWMS, &info, &e);
		CHECK_MSG(r == SBX_EFORMAT && info.verdict == X509CHECK_MALFORMED, "a truncated chain is malformed");
		r = x509check_recipient(t, "court", (const uint8_t *)"", 0, NULL, 0, NOWMS, &info, &e);
		CHECK_MSG(r == SBX_EFORMAT, "empty input is malformed");
		der_free(&d);
		X509_free(leaf);
	}
	x509check_trust_free(t);
}

static void test_crls(void)
{
	struct x509check_trust *t = trust_base();
	struct x509check_crl_info ci, ci2;
	struct x509check_info info;
	struct sbx_err e = { 0 };
	struct spec base = { .cn = "Clerk B", .ku = EC_KU, .nb = -DAY, .na = 365 * DAY,
	                     .serial = 0x2a };
	long revoked[] = { 0x2a };
	X509_CRL *crl1, *crl2, *crl_root, *crl_unknown, *crl_future, *crl_old;
	struct der d1, d2, di, dr, du, df, dold;
	X509 *leaf = court_leaf(base, k_leaf_ec), *other;
	int r;

	crl1 = make_crl(court_int, k_court_int, revoked, 1, -DAY, 7 * DAY, 1);
	crl2 = make_crl(court_int, k_court_int, revoked, 1, -3600, 7 * DAY, 2);
	crl_old = make_crl(court_int, k_court_int, NULL, 0, -2 * DAY, 7 * DAY, -1);
	crl_unknown = make_crl(unknown_root, k_unknown, NULL, 0, -DAY, DAY, 1);
	crl_future = make_crl(court_int, k_court_int, NULL, 0, DAY, 7 * DAY, 3);
	d1 = der_of_crl(crl1);
	d2 = der_of_crl(crl2);
	du = der_of_crl(crl_unknown);
	df = der_of_crl(crl_future);
	dold = der_of_crl(crl_old);
	di = der_of(court_int);

	r = x509check_crl(t, d1.p, d1.n, NULL, 0, NOWMS, &ci, &e);
	CHECK_MSG(r == SBX_EPOLICY, "a CRL whose issuer is not known to the box is refused");
	sbx_err_clear(&e);
	r = x509check_crl(t, d1.p, d1.n, di.p, di.n, NOWMS, &ci, &e);
	CHECK_MSG(r == 0, "the CRL verifies with its issuer given alongside (chaining to an anchor)");
	CHECK_MSG(strstr(ci.signer, "Test Court Issuing CA") != NULL && strcmp(ci.number, "1") == 0 &&
	          ci.revoked == 1, "signer, number and count are reported");
	CHECK(x509check_trust_add_pool(t, di.p, di.n, NULL) == 0);
	sbx_err_clear(&e);
	r = x509check_crl(t, d2.p, d2.n, NULL, 0, NOWMS, &ci2, &e);
	CHECK_MSG(r == 0, "the CRL verifies with its issuer from the pool");
	CHECK_MSG(x509check_crl_newer(&ci, &ci2, &e) == 1, "CRL 2 replaces CRL 1");
	sbx_err_clear(&e);
	CHECK_MSG(x509check_crl_newer(&ci2, &ci, &e) == 0 && e.code == SBX_EPOLICY,
	          "CRL 1 does not replace CRL 2");
	sbx_err_clear(&e);
	CHECK_MSG(x509check_crl_newer(&ci2, &ci2, &e) == 0 && e.code == SBX_EEXIST,
	          "the same CRL again is reported as already loaded");
	sbx_err_clear(&e);
	r = x509check_crl(t, dold.p, dold.n, NULL, 0, NOWMS, &ci, &e);
	CHECK_MSG(r == 0 && x509check_crl_newer(&ci2, &ci, &e) == 0,
	          "an older CRL without a number does not replace a newer one");
	sbx_err_clear(&e);
	r = x509check_crl(t, du.p, du.n, NULL, 0, NOWMS, &ci, &e);
	CHECK_MSG(r == SBX_EPOLICY, "a CRL from an unknown CA is refused");
	sbx_err_clear(&e);
	r = x509check_crl(t, df.p, df.n, NULL, 0, NOWMS, &ci, &e);
	CHECK_MSG(r == SBX_EPOLICY && strstr(e.msg, "not valid before") != NULL,
	          "a CRL from the future is refused");
	sbx_err_clear(&e);
	r = x509check_crl(t, d1.p, d1.n - 1, NULL, 0, NOWMS, &ci, &e);
	CHECK_MSG(r == SBX_EFORMAT, "a truncated CRL is malformed");
	sbx_err_clear(&e);
	r = x509check_crl(t, d1.p, d1.n, NULL, 0, NOWMS + 30ull * DAY * 1000, &ci, &e);
	CHECK_MSG(r == 0 && strstr(ci.notes, "due to be replaced") != NULL,
	          "a CRL past nextUpdate loads, with a note");

	/* revocation through the CRL */
	CHECK(x509check_trust_add_crl(t, d2.p, d2.n, NULL) == 0);
	expect(t, "revoked via the CRL", "court", court_leaf(base, k_leaf_ec), court_int, SBX_EPOLICY,
	       X509CHECK_REVOKED, "revoked");
	base.serial = 0x2b;
	other = court_leaf(base, k_leaf_ec);
	r = run(t, "court", other, court_int, NOWMS, &info, &e);
	CHECK_MSG(r == 0 && strstr(info.notes, "Issuing CA") == NULL,
	          "a certificate not on the CRL is usable, no note for its issuer");
	r = run(t, "court", other, court_int, NOWMS + 30ull * DAY * 1000, &info, &e);
	CHECK_MSG(r == 0 && strstr(info.notes, "past its nextUpdate") != NULL,
	          "with the CRL out of date: usable, reported");
	X509_free(other);

	/* the root revokes the intermediate */
	{
		long inter[] = { 2 };
		struct x509check_trust *t2 = trust_base();

		crl_root = make_crl(court_root, k_court_root, inter, 1, -DAY, 30 * DAY, 1);
		dr = der_of_crl(crl_root);
		sbx_err_clear(&e);
		r = x509check_crl(t2, dr.p, dr.n, NULL, 0, NOWMS, &ci, &e);
		CHECK_MSG(r == 0 && strstr(ci.signer, "Test Court Root") != NULL,
		          "a root's CRL verifies under the anchor");
		CHECK(x509check_trust_add_crl(t2, dr.p, dr.n, NULL) == 0);
		base.serial = 0x2c;
		expect(t2, "a leaf under a revoked intermediate", "court", court_leaf(base, k_leaf_ec),
		       court_int, SBX_EPOLICY, X509CHECK_REVOKED, "Test Court Issuing CA");
		x509check_trust_free(t2);
		der_free(&dr);
		X509_CRL_free(crl_root);
	}

	/* require-crl */
	{
		struct x509check_trust *t3 = trust_base();
		const char conf[] = "# local\nrequire-crl yes\n";

		CHECK(x509check_trust_conf(t3, (const uint8_t *)conf, sizeof conf - 1, NULL) == 0);
		base.serial = 0x2d;
		expect(t3, "require-crl and no CRL", "court", court_leaf(base, k_leaf_ec), court_int,
		       SBX_EPOLICY, X509CHECK_NO_CRL, "requires one");
		CHECK(x509check_trust_add_crl(t3, d2.p, d2.n, NULL) == 0);
		expect(t3, "require-crl and only the intermediate's CRL", "court",
		       court_leaf(base, k_leaf_ec), court_int, SBX_EPOLICY, X509CHECK_NO_CRL,
		       "Test Court Root");
		crl_root = make_crl(court_root, k_court_root, NULL, 0, -DAY, 30 * DAY, 1);
		dr = der_of_crl(crl_root);
		CHECK(x509check_trust_add_crl(t3, dr.p, dr.n, NULL) == 0);
		expect(t3, "require-crl and both CRLs loaded", "court", court_leaf(base, k_leaf_ec),
		       court_int, 0, X509CHECK_OK, NULL);
		der_free(&dr);
		X509_CRL_free(crl_root);
		x509check_trust_free(t3);
	}

	X509_free(leaf);
	der_free(&d1);
	der_free(&d2);
	der_free(&di);
	der_free(&du);
	der_free(&df);
	der_free(&dold);
	X509_CRL_free(crl1);
	X509_CRL_free(crl2);
	X509_CRL_free(crl_old);
	X509_CRL_free(crl_unknown);
	X509_CRL_free(crl_future);
	x509check_trust_free(t);
}

static void expect_anchor(struct x509check_trust *t, const char *what, const char *role, X509 *x,
                          uint64_t now, int code, int verdict)
{
	struct x509check_info info;
	struct sbx_err e = { 0 };
	struct der d = der_of(x);
	char msg[1024];
	int r = x509check_anchor(t, role, d.p, d.n, now, &info, &e);

	snprintf(msg, sizeof msg, "anchor %s: code %d verdict %s (%s)", what, r,
	         x509check_verdict_name(info.verdict), e.msg);
	CHECK_MSG(r == code && info.verdict == verdict, msg);
	der_free(&d);
}

static void test_anchors(void)
{
	struct x509check_trust *t = x509check_trust_new();
	struct spec s;
	X509 *x;

	expect_anchor(t, "court root", "court", court_root, NOWMS, 0, X509CHECK_OK);
	expect_anchor(t, "prosecutor root", "prosecutor", pros_root, NOWMS, 0, X509CHECK_OK);
	expect_anchor(t, "for a federal role", "federal", court_root, NOWMS, SBX_EPOLICY,
	              X509CHECK_WRONG_ROLE);
	expect_anchor(t, "an intermediate", "court", court_int, NOWMS, SBX_EPOLICY,
	              X509CHECK_NOT_ROOT);
	expect_anchor(t, "after the root expired", "court", court_root,
	              NOWMS + 4000ull * DAY * 1000, SBX_EPOLICY, X509CHECK_EXPIRED);
	s = (struct spec){ .cn = "Federal Common Policy CA", .o = "U.S. Government", .bc = CA_BC,
	                   .ku = CA_KU, .nb = -DAY, .na = DAY, .serial = 1 };
	x = make_cert(&s, k_unknown, NULL, NULL);
	expect_anchor(t, "O=U.S. Government", "court", x, NOWMS, SBX_EPOLICY, X509CHECK_FEDERAL);
	X509_free(x);
	s = (struct spec){ .cn = "Some Root", .bc = CA_BC, .ku = CA_KU,
	                   .policy = "2.16.840.1.101.3.2.1.3.6", .nb = -DAY, .na = DAY, .serial = 1 };
	x = make_cert(&s, k_unknown, NULL, NULL);
	expect_anchor(t, "carrying a federal policy OID", "prosecutor", x, NOWMS, SBX_EPOLICY,
	              X509CHECK_FEDERAL);
	X509_free(x);
	s = (struct spec){ .cn = "Not A CA", .ku = EC_KU, .nb = -DAY, .na = DAY, .serial = 1 };
	x = make_cert(&s, k_unknown, NULL, NULL);
	expect_anchor(t, "a self-signed end-entity", "court", x, NOWMS, SBX_EPOLICY, X509CHECK_NOT_CA);
	X509_free(x);
	s = (struct spec){ .cn = "CA Without CertSign", .bc = CA_BC, .ku = "critical,cRLSign",
	                   .nb = -DAY, .na = DAY, .serial = 1 };
	x = make_cert(&s, k_unknown, NULL, NULL);
	expect_anchor(t, "keyUsage without keyCertSign", "court", x, NOWMS, SBX_EPOLICY,
	              X509CHECK_NOT_CA);
	X509_free(x);
	x509check_trust_free(t);
}

static void test_conf(void)
{
	struct x509check_trust *t = trust_base();
	struct spec s = { .cn = "Clerk C", .ku = EC_KU, .san = "email:a@records.example-fed.org",
	                  .nb = -DAY, .na = DAY, .serial = 300 };
	const char good[] = "# added locally\n\nfederal-domain example-fed.org\n"
	                    "federal-organization Department of Justice\n"
	                    "federal-policy-arc 1.2.3.4\nrequire-crl no";
	const char *bad[] = {
		"federal-domain bad..domain\n", "unknown-key x\n", "federal-domain  two-spaces.org\n",
		"federal-policy-arc 1\n", "federal-domain x.org \n", "require-crl maybe\n",
		"federal-domain a.org\r\n",
	};
	const char *const *list;
	struct sbx_err e = { 0 };
	size_t n;

	expect(t, "before trust.conf", "court", court_leaf(s, k_leaf_ec), court_int, 0,
	       X509CHECK_OK, NULL);
	CHECK(x509check_trust_conf(t, (const uint8_t *)good, sizeof good - 1, &e) == 0);
	expect(t, "a domain added by trust.conf", "court", court_leaf(s, k_leaf_ec), court_int,
	       SBX_EPOLICY, X509CHECK_FEDERAL, "example-fed.org");
	s.san = NULL;
	s.o = "Department of Justice";
	expect(t, "an organization added by trust.conf", "court", court_leaf(s, k_leaf_ec),
	       court_int, SBX_EPOLICY, X509CHECK_FEDERAL, "Department of Justice");
	s.o = NULL;
	s.policy = "1.2.3.4.5";
	expect(t, "a policy arc added by trust.conf", "court", court_leaf(s, k_leaf_ec), court_int,
	       SBX_EPOLICY, X509CHECK_FEDERAL, "1.2.3.4.5");
	n = x509check_trust_markers(t, 0, &list);
	CHECK_MSG(n > 10 && strcmp(list[0], "fed.us") == 0, "the built-in domains stay in force");
	CHECK(x509check_trust_flags(t) == 0);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char msg[128];

		sbx_err_clear(&e);
		snprintf(msg, sizeof msg, "trust.conf refuses bad line %zu with its line number", i);
		CHECK_MSG(x509check_trust_conf(t, (const uint8_t *)bad[i], strlen(bad[i]), &e) ==
		          SBX_EFORMAT && strstr(e.msg, "line 1") != NULL, msg);
	}
	x509check_trust_free(t);
}

static void test_files(void)
{
	struct x509check_file f;
	struct sbx_err e = { 0 };
	BIO *b = BIO_new(BIO_s_mem());
	char *pem = NULL;
	long n;
	struct der d = der_of(court_int);

	BIO_puts(b, "Certificate:\n    Data: (text openssl prints before the PEM)\n");
	PEM_write_bio_X509(b, court_int);
	PEM_write_bio_X509(b, court_root);
	n = BIO_get_mem_data(b, &pem);
	CHECK(x509check_file_split((uint8_t *)pem, (size_t)n, 0, &f, &e) == 0);
	CHECK_MSG(f.n_certs == 2 && f.first_len == d.n && memcmp(f.certs, d.p, d.n) == 0,
	          "PEM with leading text: two certificates, in order");
	x509check_file_free(&f);
	CHECK_MSG(x509check_file_split(d.p, d.n, 0, &f, &e) == 0 && f.n_certs == 1,
	          "a DER certificate");
	x509check_file_free(&f);
	sbx_err_clear(&e);
	CHECK_MSG(x509check_file_split(d.p, d.n, 1, &f, &e) == SBX_EFORMAT,
	          "a certificate is not a CRL");
	PEM_write_bio_PrivateKey(b, k_leaf_ec, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(b, &pem);
	sbx_err_clear(&e);
	CHECK_MSG(x509check_file_split((uint8_t *)pem, (size_t)n, 0, &f, &e) == SBX_EFORMAT &&
	          strstr(e.msg, "PRIVATE KEY") != NULL, "a private key in a certificate file is refused");
	sbx_err_clear(&e);
	CHECK_MSG(x509check_file_split((const uint8_t *)"hello\n", 6, 0, &f, &e) == SBX_EFORMAT,
	          "text without a certificate is refused");
	sbx_err_clear(&e);
	CHECK_MSG(x509check_file_split((const uint8_t *)"-----BEGIN CERTIFICATE-----\nAAAA\n"
	                               "-----END CERTIFICATE-----\n", 60, 0, &f, &e) == SBX_EFORMAT,
	          "a PEM block that is not a certificate is refused");
	BIO_free(b);
	der_free(&d);
}

int main(void)
{
	make_pki();
	test_recipients();
	test_crls();
	test_anchors();
	test_conf();
	test_files();
	X509_free(court_root);
	X509_free(court_int);
	X509_free(pros_root);
	X509_free(unknown_root);
	X509_free(fed_int);
	EVP_PKEY_free(k_court_root);
	EVP_PKEY_free(k_court_int);
	EVP_PKEY_free(k_pros_root);
	EVP_PKEY_free(k_unknown);
	EVP_PKEY_free(k_leaf_ec);
	EVP_PKEY_free(k_fed_int);
	EVP_PKEY_free(k_rsa3072);
	EVP_PKEY_free(k_rsa2048);
	NCONF_free(ext_conf);
	return check_done();
}

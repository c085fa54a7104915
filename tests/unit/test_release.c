/* needs: swtpm
 *
 * Release files and release_verify (docs/FORMAT.md section 10) on real
 * TPM-signed material: a TPM provisioned on swtpm signs two bundles, their
 * custody tree heads and the release statements, exactly as the box does;
 * the recipients' keys and certificates are made here.  Every forgery must
 * fail: truncations, trailing bytes, a flip of any byte, each statement
 * field changed (with the box's signature kept, and, where a check exists
 * for it, with a fresh signature), a release moved onto another bundle, a
 * content key re-wrapped outside the box. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "crypto/err.h"
#include "crypto/hash.h"
#include "crypto/merkle.h"
#include "crypto/sig.h"
#include "crypto/tpm.h"
#include "crypto/tpm_ident.h"
#include "crypto/wrap.h"
#include "export/bundle.h"
#include "export/canon.h"
#include "export/identity.h"
#include "export/logrec.h"
#include "export/release.h"
#include "export/sth.h"
#include "tests/unit/check.h"
#include "tests/unit/fixtures.h"

static char tmpdir[] = "/tmp/sbx-test-release.XXXXXX";

struct recipient {
	EVP_PKEY *key;
	uint8_t *der;
	size_t der_len;
	X509 *x;
};

/* The world the tests forge against. */
static struct tpm *tpm;
static struct identity ident;
static struct recipient alice, bob;
static struct bundle *bd_a, *bd_b;
static uint8_t bid_a[32], bid_b[32], cek_a[32], cek_b[32];

/* ---- Setup: a TPM-backed box in miniature -------------------------------------- */

static int tsign(void *arg, const uint8_t dg[32], uint8_t *sig, size_t *siglen,
                 struct sbx_err *e)
{
	return tpm_sign(arg, dg, sig, siglen, e);
}

static int make_recipient(struct recipient *r, const char *cn)
{
	return fx_recipient_cert(cn, 7, &r->key, &r->x, &r->der, &r->der_len);
}

static void free_recipient(struct recipient *r)
{
	EVP_PKEY_free(r->key);
	X509_free(r->x);
	free(r->der);
}

static int make_bundle(const char *case_id, struct bundle **bd, uint8_t bid[32], uint8_t cek[32])
{
	struct bundle_manifest m, mo;
	struct bundle_writer *w = NULL;
	struct sbx_err e = { 0 };
	uint8_t *idb = NULL, img[600];
	size_t idlen = 0;
	char path[512];
	const char *jl = "{\"id\":\"r1\",\"plate\":\"ABC123\"}\n", *csv = "r1,ABC123\r\n";

	memset(&m, 0, sizeof m);
	m.version = BUNDLE_VERSION;
	memcpy(m.appliance_id, ident.appliance_id, 32);
	snprintf(m.case_id, sizeof m.case_id, "%s", case_id);
	snprintf(m.source, sizeof m.source, "unit");
	snprintf(m.operator_id, sizeof m.operator_id, "tech1");
	m.sealed_at_ms = 1795671685669ull;
	memset(m.policy_hash, 0x42, 32);
	snprintf(m.authority, sizeof m.authority, "W-1");
	snprintf(m.purpose, sizeof m.purpose, "criminal-investigation");
	memset(img, 0x5a, sizeof img);
	img[0] = 0xff;
	img[1] = 0xd8;
	img[2] = 0xff;
	if (identity_encode(&ident, &idb, &idlen) != 0 ||
	    bundle_writer_new(tmpdir, &m, idb, idlen, &w, &e) != 0 ||
	    bundle_add_csv_header(w, "id,plate\r\n", 10, &e) != 0 ||
	    bundle_add_read(w, jl, strlen(jl), csv, strlen(csv), 1795000000000, "cam1", &e) != 0 ||
	    bundle_add_image(w, "images/r1.plate.jpg", img, sizeof img, &e) != 0 ||
	    bundle_writer_finish(w, tsign, tpm, cek, bid, &mo, path, sizeof path, &e) != 0 ||
	    bundle_open(path, bd, &e) != 0) {
		printf("# make_bundle: %s\n", e.msg);
		free(idb);
		return -1;
	}
	free(idb);
	return 0;
}

/* ---- Custody files ------------------------------------------------------------- */

static void rec_fill(struct logrec *r, uint64_t seq, const char *event, const char *op,
                     const char *case_id, const uint8_t *bid, const char *detail)
{
	memset(r, 0, sizeof *r);
	r->seq = seq;
	r->time_ms = 1795671685669ull + seq;
	r->tpm_clock_ms = 1000 + seq;
	memcpy(r->appliance_id, ident.appliance_id, 32);
	memset(r->policy_hash, 0x42, 32);
	snprintf(r->event, sizeof r->event, "%s", event);
	snprintf(r->outcome, sizeof r->outcome, "ok");
	snprintf(r->operator_id, sizeof r->operator_id, "%s", op);
	snprintf(r->case_id, sizeof r->case_id, "%s", case_id);
	if (bid != NULL)
		hash_hex(bid, 32, r->bundle_id);
	snprintf(r->detail, sizeof r->detail, "%s", detail);
}

/* A log of four records (a provision, the bundle's ingest, its
 * release.confirm unless `confirm` is 0, a view) under a head with
 * `counter`, signed by the TPM; the custody file carries the bundle's. */
static int make_custody(const uint8_t bid[32], const struct release_statement *st, int confirm,
                        const char *confirm_op, uint64_t counter, uint8_t **out, size_t *len)
{
	struct bundle_custody *c = calloc(1, sizeof *c);
	struct logrec *r = calloc(1, sizeof *r);
	uint8_t leaves[4][32], *enc[4] = { 0 }, dg[32];
	size_t elen[4] = { 0 };
	char detail[1024], cert[65], wsha[65];
	struct sth h;
	int rc = -1;

	if (c == NULL || r == NULL)
		goto out;
	hash_hex(st->cert_sha256, 32, cert);
	hash_hex(st->wrapped_key_sha256, 32, wsha);
	snprintf(detail, sizeof detail, "recipient=%s\nrole=%s\ncertificate_sha256=%s\npurpose=%s\n"
	         "authority=%s\nconfirmation=%s\nwrapped_key_sha256=%s", st->recipient_name,
	         st->role, cert, st->purpose, st->authority, st->confirmation, wsha);
	for (uint64_t i = 0; i < 4; i++) {
		if (i == 0)
			rec_fill(r, i, "provision", "tech1", "", NULL, "");
		else if (i == 1)
			rec_fill(r, i, "ingest", "tech1", st->case_id, bid, "reads=1");
		else if (i == 2)
			rec_fill(r, i, confirm ? "release.confirm" : "view", confirm_op, st->case_id,
			         bid, detail);
		else
			rec_fill(r, i, "view", "auditor", "", NULL, "");
		if (logrec_encode(r, &enc[i], &elen[i]) != 0 ||
		    merkle_leaf_hash(enc[i], elen[i], leaves[i]) != 0)
			goto out;
	}
	memcpy(c->bundle_id, bid, 32);
	c->n = 2;
	for (size_t k = 0; k < 2; k++) {
		c->rec[k].record = enc[k + 1];
		enc[k + 1] = NULL;
		c->rec[k].record_len = elen[k + 1];
		c->rec[k].leaf_index = k + 1;
		if (merkle_inclusion_proof((const uint8_t (*)[32])leaves, 4, k + 1, c->rec[k].proof,
		                           &c->rec[k].n_hashes) != 0)
			goto out;
	}
	memset(&h, 0, sizeof h);
	memcpy(h.appliance_id, ident.appliance_id, 32);
	h.tree_size = 4;
	h.timestamp_ms = 1795671685700ull;
	h.counter = counter;
	if (merkle_root((const uint8_t (*)[32])leaves, 4, h.root) != 0)
		goto out;
	sth_encode(&h, c->head);
	c->siglen = sizeof c->sig;
	if (sig_digest(SIG_NS_STH, c->head, STH_ENCODED_LEN, dg) != 0 ||
	    tpm_sign(tpm, dg, c->sig, &c->siglen, NULL) != 0)
		goto out;
	rc = bundle_custody_encode(c, out, len);
out:
	for (int i = 0; i < 4; i++)
		free(enc[i]);
	if (c != NULL)
		bundle_custody_free(c);
	free(c);
	free(r);
	return rc;
}

/* ---- Releases ------------------------------------------------------------------ */

/* What a release is made of; release_build signs the statement with the
 * TPM unless `sig` is given. */
struct parts {
	uint8_t bid[32];                /* the file's bundle id */
	struct release_statement st;
	uint8_t *wrapped;
	size_t wrapped_len;
	const uint8_t *cert;
	size_t cert_len;
	uint8_t *custody;
	size_t custody_len;
	const uint8_t *sig;             /* keep this signature (a forgery) */
	size_t sig_len;
};

static void parts_free(struct parts *p)
{
	free(p->wrapped);
	free(p->custody);
	memset(p, 0, sizeof *p);
}

/* A genuine release of bundle (bd, bid, cek) to recipient r. */
static int parts_make(struct parts *p, const uint8_t bid[32], const uint8_t cek[32],
                      const struct recipient *r, const char *case_id)
{
	struct release_statement *st = &p->st;
	uint8_t ctx[128];
	size_t ctxlen;

	memset(p, 0, sizeof *p);
	memcpy(p->bid, bid, 32);
	st->version = RELEASE_VERSION;
	memcpy(st->bundle_id, bid, 32);
	memcpy(st->appliance_id, ident.appliance_id, 32);
	snprintf(st->case_id, sizeof st->case_id, "%s", case_id);
	snprintf(st->recipient_name, sizeof st->recipient_name, "da-office");
	snprintf(st->role, sizeof st->role, "prosecutor");
	if (release_cert_info(r->der, r->der_len, st->cert_sha256, st->subject, sizeof st->subject,
	                      NULL) != 0)
		return -1;
	snprintf(st->purpose, sizeof st->purpose, "prosecution");
	snprintf(st->authority, sizeof st->authority, "COURT-ORDER-7");
	snprintf(st->attestation, sizeof st->attestation, "ATTEST-2026-01");
	snprintf(st->operator_id, sizeof st->operator_id, "clerk1");
	st->released_at_ms = 1795671685690ull;
	st->counter = 42;
	snprintf(st->confirmation, sizeof st->confirmation, "K7Q-4MZX");
	release_wrap_context(bid, st->cert_sha256, ctx, &ctxlen);
	if (wrap_cek(r->key, cek, ctx, ctxlen, &p->wrapped, &p->wrapped_len, NULL) != 0)
		return -1;
	hash_sha256(p->wrapped, p->wrapped_len, st->wrapped_key_sha256);
	p->cert = r->der;
	p->cert_len = r->der_len;
	return make_custody(bid, st, 1, st->operator_id, 42, &p->custody, &p->custody_len);
}

static int release_build(const struct parts *p, uint8_t **out, size_t *len)
{
	struct release_file f;
	char *text = NULL;
	size_t tlen = 0;
	uint8_t dg[32], sig[SIG_MAX_DER];
	size_t siglen = sizeof sig;
	int r;

	memset(&f, 0, sizeof f);
	r = release_statement_encode(&p->st, &text, &tlen);
	if (r != 0)
		return r;
	if (p->sig == NULL) {
		r = sig_digest(SIG_NS_RELEASE, (const uint8_t *)text, tlen, dg);
		if (r == 0)
			r = tpm_sign(tpm, dg, sig, &siglen, NULL);
		if (r != 0)
			goto out;
	}
	memcpy(f.bundle_id, p->bid, 32);
	f.statement = (uint8_t *)text;
	f.statement_len = tlen;
	f.sig = p->sig != NULL ? (uint8_t *)p->sig : sig;
	f.sig_len = p->sig != NULL ? p->sig_len : siglen;
	f.wrapped = p->wrapped;
	f.wrapped_len = p->wrapped_len;
	f.cert = (uint8_t *)p->cert;
	f.cert_len = p->cert_len;
	f.custody = p->custody;
	f.custody_len = p->custody_len;
	r = release_file_encode(&f, out, len);
out:
	free(text);
	return r;
}

/* decode + release_verify against bundle bd: 0 or the error. */
static int verify_bytes(struct bundle *bd, const uint8_t *b, size_t len, struct sbx_err *e)
{
	struct release_file f;
	struct release_statement st;
	int r;

	sbx_err_clear(e);
	r = release_file_decode(b, len, &f, e);
	if (r != 0)
		return r;
	r = release_verify(bd, &f, &st, e);
	release_file_free(&f);
	return r;
}

/* Builds p (re-signed or with the kept signature) and verifies it. */
static int verify_parts(struct bundle *bd, const struct parts *p, struct sbx_err *e)
{
	uint8_t *b = NULL;
	size_t len = 0;
	int r = release_build(p, &b, &len);

	if (r == 0)
		r = verify_bytes(bd, b, len, e);
	free(b);
	return r;
}

/* ---- The statement --------------------------------------------------------------- */

static char *replace(const char *s, const char *from, const char *to)
{
	const char *at = strstr(s, from);
	size_t n = strlen(s), fl = strlen(from), tl = strlen(to);
	char *out;

	if (at == NULL)
		return NULL;
	out = malloc(n - fl + tl + 1);
	memcpy(out, s, (size_t)(at - s));
	memcpy(out + (at - s), to, tl);
	memcpy(out + (at - s) + tl, at + fl, n - (size_t)(at - s) - fl + 1);
	return out;
}

static int parse_text(const char *t, struct sbx_err *e)
{
	struct release_statement st;

	sbx_err_clear(e);
	return release_statement_parse(t, strlen(t), &st, e);
}

static void test_statement(const struct parts *good)
{
	struct release_statement st = good->st, back;
	struct sbx_err e = { 0 };
	char *text = NULL, *t2;
	size_t len = 0;
	struct {
		const char *from, *to, *what;
	} bad[] = {
		{ "{\n  \"format\"", "{\n   \"format\"", "an extra space of indentation" },
		{ "\"version\": 1", "\"version\":1", "no space after a colon" },
		{ "\"version\": 1,\n", "\"version\": 1,\n  \"extra\": 1,\n", "an unknown key" },
		{ "  \"case\": \"C-7\",\n  \"recipient\"", "  \"recipient\"", "a missing key" },
		{ "\"purpose\": \"prosecution\",\n  \"authority\": \"COURT-ORDER-7\"",
		  "\"authority\": \"COURT-ORDER-7\",\n  \"purpose\": \"prosecution\"", "two keys swapped" },
		{ "\"version\": 1", "\"version\": 2", "version 2" },
		{ "\"version\": 1", "\"version\": 1.0", "version 1.0" },
		{ "\"counter\": 42", "\"counter\": 042", "a leading zero" },
		{ "\"counter\": 42", "\"counter\": -42", "a negative counter" },
		{ "\"counter\": 42", "\"counter\": 18446744073709551616", "a counter above 2^64-1" },
		{ "\"counter\": 42", "\"counter\": \"42\"", "a number as a string" },
		{ "\"format\": \"sealbox-release\"", "\"format\": \"sealbox-bundle\"", "another format" },
		{ "\"role\": \"prosecutor\"", "\"role\": \"prosecutor\", \"role\": \"court\"",
		  "a duplicate key" },
		{ "\"case\": \"C-7\"", "\"case\": \"C\\u002d7\"", "an escape JSON does not need" },
		{ "\"case\": \"C-7\"", "\"case\": \"C\\u00007\"", "an escaped NUL" },
		{ "\"case\": \"C-7\"", "\"case\": 7", "a string field as a number" },
		{ "\"recipient\": {", "\"recipient\": [", "an array for an object" },
		{ "}\n", "}\n\n", "a second final newline" },
		{ "}\n", "} ", "no final newline" },
		{ "}\n", "}\n{}", "a second document" },
	};
	int all_bad = 1;

	CHECK(release_statement_encode(&st, &text, &len) == 0);
	CHECK_MSG(text != NULL && len > 0 && text[len - 1] == '\n' && strncmp(text, "{\n  \"format\": "
	          "\"sealbox-release\",\n  \"version\": 1,\n  \"bundle_id\": \"", 64) == 0,
	          "statement encodes canonically (two-space indentation, key order of FORMAT.md)");
	CHECK(release_statement_parse(text, len, &back, &e) == 0 && memcmp(&back, &st, sizeof st) == 0);
	CHECK_MSG(strstr(text, "\"recipient\": {\n    \"name\": \"da-office\",\n    \"role\": "
	                 "\"prosecutor\",\n") != NULL, "the recipient object is nested canonically");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		t2 = replace(text, bad[i].from, bad[i].to);
		if (t2 == NULL || parse_text(t2, &e) == 0) {
			printf("# accepted: %s\n", bad[i].what);
			all_bad = 0;
		}
		if (t2 != NULL && strcmp(bad[i].what, "version 2") == 0)
			CHECK_MSG(strstr(e.msg, "version 2") != NULL, "a version 2 statement is named as such");
		free(t2);
	}
	CHECK_MSG(all_bad, "the parser refuses every non-canonical or malformed variant");
	t2 = replace(text, "bundle_id\": \"", "bundle_id\": \"A");
	if (t2 != NULL) {
		/* Upper-case hex of the right length. */
		char *u = strstr(t2, "bundle_id\": \"A") + 13;

		memmove(u, u + 1, strlen(u));
		for (int k = 0; k < 64; k++)
			u[k] = (char)(u[k] >= 'a' && u[k] <= 'f' ? u[k] - 32 : u[k]);
		CHECK_MSG(parse_text(t2, &e) == SBX_EFORMAT, "upper-case hex is refused");
	}
	free(t2);
	CHECK_MSG(release_statement_parse(text, len - 1, &back, &e) != 0,
	          "a statement cut by one byte is refused");
	free(text);

	/* Escapes: only what JSON requires, control characters as \u00xx. */
	snprintf(st.authority, sizeof st.authority, "ref \"7\"\\a\nb\x01\x7f");
	CHECK(release_statement_encode(&st, &text, &len) == 0);
	CHECK_MSG(text != NULL && strstr(text, "\"authority\": \"ref \\\"7\\\"\\\\a\\u000ab\\u0001\x7f\"")
	          != NULL, "quote, backslash and controls escaped exactly as the manifest does");
	CHECK(text != NULL && release_statement_parse(text, len, &back, &e) == 0 &&
	      strcmp(back.authority, st.authority) == 0);
	t2 = text != NULL ? replace(text, "\\u000a", "\\n") : NULL;
	CHECK_MSG(t2 != NULL && parse_text(t2, &e) == SBX_EFORMAT, "the short escape \\n is not canonical");
	free(t2);
	free(text);

	st = good->st;
	memset(st.case_id, 'c', sizeof st.case_id - 1);
	st.case_id[sizeof st.case_id - 1] = '\0';
	CHECK_MSG(release_statement_encode(&st, &text, &len) == 0, "a 128-byte case encodes");
	t2 = text != NULL ? replace(text, "\"case\": \"", "\"case\": \"c") : NULL;
	CHECK_MSG(t2 != NULL && parse_text(t2, &e) == SBX_EFORMAT, "a 129-byte case is refused");
	free(t2);
	free(text);
	st = good->st;
	st.version = 2;
	CHECK_MSG(release_statement_encode(&st, &text, &len) == SBX_EFORMAT, "encode refuses version 2");
	st = good->st;
	memcpy(st.purpose, "\xc3\x28", 3);
	CHECK_MSG(release_statement_encode(&st, &text, &len) == SBX_EFORMAT,
	          "encode refuses invalid UTF-8");
	text = malloc(RELEASE_MAX_STATEMENT + 2);
	memset(text, ' ', RELEASE_MAX_STATEMENT + 1);
	text[RELEASE_MAX_STATEMENT + 1] = '\0';
	CHECK_MSG(release_statement_parse(text, RELEASE_MAX_STATEMENT + 1, &back, &e) == SBX_EFORMAT,
	          "a statement over 16 KiB is refused before parsing");
	free(text);
}

/* ---- The file ---------------------------------------------------------------------- */

static void test_file(const uint8_t *b, size_t len, const struct parts *p)
{
	struct release_file f, g;
	struct sbx_err e = { 0 };
	uint8_t *buf = malloc(len + 1), *enc = NULL;
	size_t bad = 0, elen = 0;

	CHECK(release_file_decode(b, len, &f, &e) == 0);
	CHECK_MSG(memcmp(f.bundle_id, p->bid, 32) == 0 && f.wrapped_len == p->wrapped_len &&
	          memcmp(f.wrapped, p->wrapped, p->wrapped_len) == 0 && f.cert_len == p->cert_len &&
	          memcmp(f.cert, p->cert, p->cert_len) == 0 && f.custody_len == p->custody_len &&
	          memcmp(f.custody, p->custody, p->custody_len) == 0,
	          "release_file_decode returns the fields that were encoded");
	CHECK_MSG(release_file_encode(&f, &enc, &elen) == 0 && elen == len && memcmp(enc, b, len) == 0,
	          "decode then encode gives the same bytes");
	free(enc);
	for (size_t n = 0; n < len; n++)
		if (release_file_decode(b, n, &g, &e) != SBX_EFORMAT)
			bad++;
	CHECK_MSG(bad == 0, "release_file_decode refuses every truncation");
	memcpy(buf, b, len);
	buf[len] = 0;
	sbx_err_clear(&e);
	CHECK_MSG(release_file_decode(buf, len + 1, &g, &e) == SBX_EFORMAT && strstr(e.msg, "after"),
	          "release_file_decode refuses a trailing byte");
	buf[0] = 'X';
	CHECK_MSG(release_file_decode(buf, len, &g, &e) == SBX_EFORMAT, "a wrong magic is refused");
	buf[0] = 'S';
	buf[4] = 2;
	sbx_err_clear(&e);
	CHECK_MSG(release_file_decode(buf, len, &g, &e) == SBX_EFORMAT && strstr(e.msg, "version 2"),
	          "version 2 is refused and named");
	buf[4] = 1;
	/* The statement's length field: over the cap. */
	buf[37] = 0;
	buf[38] = 0;
	buf[39] = 0x40;
	buf[40] = 0x01;
	sbx_err_clear(&e);
	CHECK_MSG(release_file_decode(buf, len, &g, &e) == SBX_EFORMAT && strstr(e.msg, "more than"),
	          "a statement length above 16 KiB is refused by its cap");
	g = f;
	g.sig_len = 0;
	CHECK_MSG(release_file_encode(&g, &enc, &elen) == SBX_EFORMAT, "encode refuses an empty field");
	g = f;
	g.cert_len = RELEASE_MAX_CERT + 1;
	CHECK_MSG(release_file_encode(&g, &enc, &elen) == SBX_EFORMAT, "encode refuses a field over its cap");
	release_file_free(&f);
	CHECK(f.statement == NULL);
	free(buf);
}

/* ---- Verification -------------------------------------------------------------------- */

static void test_verify_good(const uint8_t *b, size_t len, const struct parts *p)
{
	struct release_file f;
	struct release_statement st;
	struct release_report rep;
	struct sbx_err e = { 0 };
	int all = 1;

	CHECK(release_file_decode(b, len, &f, &e) == 0);
	CHECK_MSG(release_verify_report(bd_a, &f, &st, &rep, &e) == 0, "a genuine release verifies");
	if (e.msg[0])
		printf("# %s\n", e.msg);
	for (int c = 0; c < RELEASE_N_CHECKS; c++)
		all = all && rep.status[c] == RELEASE_PASS;
	CHECK_MSG(all, "every release check passed");
	CHECK(memcmp(&st, &p->st, sizeof st) == 0);
	CHECK_MSG(rep.custody_decoded && rep.n_records == 2 && rep.head.counter == 42 &&
	          rep.confirm_leaf == 2, "the report names the custody head and the confirm record");
	CHECK_MSG(release_match_recipient(&f, NULL, alice.key, &e) == 0, "alice's key matches");
	CHECK_MSG(release_match_recipient(&f, alice.x, alice.key, &e) == 0, "alice's cert and key match");
	sbx_err_clear(&e);
	CHECK_MSG(release_match_recipient(&f, NULL, bob.key, &e) == SBX_EVERIFY &&
	          strstr(e.msg, "another recipient"), "bob's key is refused: the release is alice's");
	sbx_err_clear(&e);
	CHECK_MSG(release_match_recipient(&f, bob.x, alice.key, &e) == SBX_EVERIFY,
	          "a certificate other than the release's is refused");
	{
		uint8_t cek[32] = { 0 };
		struct release_statement other = st;

		CHECK_MSG(release_unwrap(&f, &st, alice.key, cek, &e) == 0 &&
		          memcmp(cek, cek_a, 32) == 0, "alice unwraps the bundle's content key");
		memset(cek, 0, sizeof cek);
		CHECK_MSG(release_unwrap(&f, &st, bob.key, cek, &e) != 0 && cek[0] == 0 && cek[31] == 0,
		          "bob cannot unwrap it, and nothing is written");
		memcpy(other.bundle_id, bid_b, 32);
		CHECK_MSG(release_unwrap(&f, &other, alice.key, cek, &e) != 0,
		          "under another bundle's context the key does not unwrap");
	}
	release_file_free(&f);
}

static void test_flips(const uint8_t *b, size_t len)
{
	uint8_t *buf = malloc(len);
	struct sbx_err e;
	size_t missed = 0;

	memcpy(buf, b, len);
	for (size_t i = 0; i < len; i++) {
		buf[i] ^= 0x01;
		if (verify_bytes(bd_a, buf, len, &e) == 0) {
			if (missed++ < 3)
				printf("# flip at byte %zu not detected\n", i);
		}
		buf[i] ^= 0x01;
	}
	CHECK_MSG(missed == 0, "a flipped bit anywhere in the release file is refused");
	CHECK(verify_bytes(bd_a, buf, len, &e) == 0);
	free(buf);
}

/* Each statement field changed, the box's signature kept: the signature
 * check refuses every one. */
static void test_field_mutations(const struct parts *good)
{
	struct sbx_err e;
	uint8_t sig[SIG_MAX_DER], *b = NULL;
	size_t siglen, len = 0;
	struct release_file f;
	int missed = 0, n = 0;

	CHECK(release_build(good, &b, &len) == 0 && release_file_decode(b, len, &f, &e) == 0);
	siglen = f.sig_len;
	memcpy(sig, f.sig, siglen);
	release_file_free(&f);
	free(b);
	for (int k = 0; k < 16; k++) {
		struct parts p = *good;
		struct release_statement *s = &p.st;

		p.sig = sig;
		p.sig_len = siglen;
		switch (k) {
		case 0: s->bundle_id[0] ^= 1; break;
		case 1: s->appliance_id[5] ^= 1; break;
		case 2: s->case_id[0] ^= 1; break;
		case 3: s->recipient_name[0] ^= 1; break;
		case 4: snprintf(s->role, sizeof s->role, "court"); break;
		case 5: s->cert_sha256[31] ^= 1; break;
		case 6: s->subject[3] ^= 1; break;
		case 7: s->purpose[0] ^= 1; break;
		case 8: s->authority[0] ^= 1; break;
		case 9: s->attestation[0] ^= 1; break;
		case 10: s->operator_id[0] ^= 1; break;
		case 11: s->released_at_ms++; break;
		case 12: s->counter--; break;
		case 13: s->confirmation[0] ^= 1; break;
		case 14: s->wrapped_key_sha256[0] ^= 1; break;
		case 15: break;
		}
		n++;
		if (k == 15) {
			CHECK_MSG(verify_parts(bd_a, &p, &e) == 0, "the unchanged statement still verifies");
			continue;
		}
		if (verify_parts(bd_a, &p, &e) == 0 || strstr(e.msg, "signature") == NULL) {
			printf("# field %d: %s\n", k, e.msg);
			missed++;
		}
	}
	CHECK_MSG(missed == 0 && n == 16, "changing any statement field breaks the box's signature");
}

/* The box signs something inconsistent (or someone holding the box's key
 * tries): the checks behind the signature refuse each case. */
static const struct {
	const char *what, *word;
} signed_cases[] = {
	{ "a signed statement naming another bundle is refused", "statement" },
	{ "a signed statement naming another appliance is refused", "statement" },
	{ "a signed statement naming another case is refused", "statement" },
	{ "a signed statement for role 'auditor' is refused", "statement" },
	{ "a signed statement with an empty purpose is refused", "statement" },
	{ "canonical and signed, but another certificate hash: refused", "certificate" },
	{ "a signed statement with another subject is refused", "certificate" },
	{ "a signed statement with another wrapped-key hash is refused", "wrapped-key" },
	{ "a statement whose operator is not the release.confirm record's is refused", "custody" },
	{ "a statement whose confirmation code disagrees with the record is refused", "custody" },
	{ "a statement whose purpose disagrees with the record is refused", "custody" },
	{ "a statement anchored after the custody head (counter) is refused", "counter" },
	{ "the recipient certificate replaced by another is refused", "certificate" },
};

static void mutate_signed(struct parts *p, size_t k)
{
	struct release_statement *s = &p->st;

	switch (k) {
	case 0: memcpy(s->bundle_id, bid_b, 32); break;
	case 1: s->appliance_id[0] ^= 1; break;
	case 2: snprintf(s->case_id, sizeof s->case_id, "C-8"); break;
	case 3: snprintf(s->role, sizeof s->role, "auditor"); break;
	case 4: s->purpose[0] = '\0'; break;
	case 5: s->cert_sha256[0] ^= 0x80; break;
	case 6: snprintf(s->subject, sizeof s->subject, "CN=Somebody Else"); break;
	case 7: s->wrapped_key_sha256[3] ^= 1; break;
	case 8: snprintf(s->operator_id, sizeof s->operator_id, "mallory"); break;
	case 9: snprintf(s->confirmation, sizeof s->confirmation, "AAA-0000"); break;
	case 10: snprintf(s->purpose, sizeof s->purpose, "court-order"); break;
	case 11: s->counter = 43; break;
	case 12: p->cert = bob.der; p->cert_len = bob.der_len; break;
	}
}

static void test_signed_mutations(const struct parts *good)
{
	struct sbx_err e;
	struct parts p;
	uint8_t *cust = NULL;
	size_t clen = 0;

	for (size_t k = 0; k < sizeof signed_cases / sizeof signed_cases[0]; k++) {
		p = *good;
		mutate_signed(&p, k);
		sbx_err_clear(&e);
		CHECK_MSG(verify_parts(bd_a, &p, &e) != 0 && strstr(e.msg, signed_cases[k].word) != NULL,
		          signed_cases[k].what);
		printf("#   %s\n", e.msg);
	}

	/* Custody without the release's record, or for another bundle. */
	p = *good;
	CHECK(make_custody(bid_a, &p.st, 0, p.st.operator_id, 42, &cust, &clen) == 0);
	p.custody = cust;
	p.custody_len = clen;
	sbx_err_clear(&e);
	CHECK_MSG(verify_parts(bd_a, &p, &e) != 0 && strstr(e.msg, "release.confirm"),
	          "custody without a release.confirm record is refused");
	free(cust);
	p = *good;
	CHECK(make_custody(bid_b, &p.st, 1, p.st.operator_id, 42, &cust, &clen) == 0);
	p.custody = cust;
	p.custody_len = clen;
	sbx_err_clear(&e);
	CHECK_MSG(verify_parts(bd_a, &p, &e) != 0 && strstr(e.msg, "custody"),
	          "the custody file of another bundle is refused");
	free(cust);
}

static void test_moved_and_rewrapped(const uint8_t *b, size_t len, const struct parts *good)
{
	struct sbx_err e = { 0 };
	struct release_file f;
	struct release_statement st;
	struct release_report rep;
	struct parts p;
	uint8_t *buf = malloc(len), ctx[128], cek[32];
	size_t ctxlen;

	/* The release of bundle A placed beside bundle B. */
	sbx_err_clear(&e);
	CHECK_MSG(verify_bytes(bd_b, b, len, &e) == SBX_EVERIFY && strstr(e.msg, "not for this bundle"),
	          "a release moved onto another bundle is refused");
	/* ... with its outer bundle id rewritten to B's as well. */
	memcpy(buf, b, len);
	memcpy(buf + 5, bid_b, 32);
	CHECK(release_file_decode(buf, len, &f, &e) == 0);
	CHECK_MSG(release_verify_report(bd_b, &f, &st, &rep, &e) != 0 &&
	          rep.status[RELEASE_CHK_BUNDLE] == RELEASE_PASS &&
	          rep.status[RELEASE_CHK_STATEMENT] == RELEASE_FAIL &&
	          rep.status[RELEASE_CHK_CUSTODY] == RELEASE_FAIL,
	          "and with its bundle id rewritten: the signed statement and custody still name A");
	release_file_free(&f);

	/* A valid wrap of the right key to the right recipient, made outside
	 * the box: it unwraps, but the statement does not sign it. */
	p = *good;
	release_wrap_context(bid_a, p.st.cert_sha256, ctx, &ctxlen);
	p.wrapped = NULL;
	CHECK(wrap_cek(alice.key, cek_a, ctx, ctxlen, &p.wrapped, &p.wrapped_len, NULL) == 0);
	{
		uint8_t *rb = NULL;
		size_t rlen = 0;

		CHECK(release_build(&p, &rb, &rlen) == 0 && release_file_decode(rb, rlen, &f, &e) == 0);
		sbx_err_clear(&e);
		CHECK_MSG(release_verify(bd_a, &f, &st, &e) == SBX_EVERIFY && strstr(e.msg, "wrapped-key"),
		          "a content key re-wrapped outside the box is refused");
		CHECK_MSG(release_unwrap(&f, &st, alice.key, cek, &e) == 0 && memcmp(cek, cek_a, 32) == 0,
		          "(although that wrap does unwrap: the statement's hash is what refuses it)");
		release_file_free(&f);
		free(rb);
	}
	free(p.wrapped);
	OPENSSL_cleanse(cek, sizeof cek);
	free(buf);
}

static void test_cert_info(void)
{
	uint8_t sha[32], *buf = malloc(alice.der_len + 1);
	char subject[256];
	struct sbx_err e = { 0 };

	CHECK(release_cert_info(alice.der, alice.der_len, sha, subject, sizeof subject, &e) == 0 &&
	      strcmp(subject, "CN=alice,O=Denver DA") == 0);
	memcpy(buf, alice.der, alice.der_len);
	buf[alice.der_len] = 0;
	CHECK_MSG(release_cert_info(buf, alice.der_len + 1, sha, subject, sizeof subject, &e) ==
	          SBX_EFORMAT, "a certificate with a trailing byte is refused");
	CHECK_MSG(release_cert_info(buf, 10, sha, subject, sizeof subject, &e) == SBX_EFORMAT,
	          "a truncated certificate is refused");
	CHECK_MSG(release_cert_info(alice.der, alice.der_len, sha, subject, 8, &e) == SBX_EFORMAT,
	          "a subject that does not fit is refused");
	free(buf);
}

static void test_canon(void)
{
	struct canon_w w;
	char *out = NULL;
	size_t len = 0;
	uint8_t h[2] = { 0xab, 0x01 };

	canon_init(&w);
	canon_obj_open(&w, NULL);
	canon_str(&w, "a", "x", 8);
	canon_obj_open(&w, "o");
	canon_u64(&w, "n", UINT64_MAX);
	canon_hex(&w, "h", h, 2);
	canon_obj_close(&w);
	canon_obj_close(&w);
	CHECK_MSG(canon_take(&w, &out, &len) == 0 && strcmp(out, "{\n  \"a\": \"x\",\n  \"o\": {\n"
	          "    \"n\": 18446744073709551615,\n    \"h\": \"ab01\"\n  }\n}\n") == 0,
	          "canon writes the canonical layout");
	free(out);
	canon_init(&w);
	canon_obj_open(&w, NULL);
	canon_str(&w, "a", "too long", 3);
	canon_obj_close(&w);
	CHECK_MSG(canon_take(&w, &out, &len) == SBX_EFORMAT, "canon refuses a string over its cap");
	canon_init(&w);
	canon_obj_open(&w, NULL);
	CHECK_MSG(canon_take(&w, &out, &len) == SBX_EINVAL, "canon refuses an unclosed object");
}

int main(void)
{
	const char *tcti = getenv("SEALBOX_TCTI");
	struct tpm_identity *tid = calloc(1, sizeof *tid);
	struct sbx_err e = { 0 };
	struct parts good;
	uint8_t nonce[32], *rel = NULL;
	size_t rel_len = 0;
	char cmd[300];

	test_canon();
	if (!CHECK_MSG(tcti != NULL && tid != NULL, "SEALBOX_TCTI set (run under with-swtpm.sh)"))
		return check_done();
	if (!CHECK(mkdtemp(tmpdir) != NULL))
		return check_done();
	CHECK(RAND_bytes(nonce, sizeof nonce) == 1);
	if (!CHECK(tpm_open(tcti, &tpm, &e) == 0 && tpm_provision(tpm, nonce, tid, &e) == 0)) {
		printf("# %s\n", e.msg);
		return check_done();
	}
	CHECK(tpm_identity_export(tid, &ident) == 0);
	if (!CHECK(make_recipient(&alice, "alice") == 0 && make_recipient(&bob, "bob") == 0 &&
	           make_bundle("C-7", &bd_a, bid_a, cek_a) == 0 &&
	           make_bundle("C-8", &bd_b, bid_b, cek_b) == 0))
		goto out;
	if (!CHECK(parts_make(&good, bid_a, cek_a, &alice, "C-7") == 0 &&
	           release_build(&good, &rel, &rel_len) == 0))
		goto out;
	printf("# release file: %zu bytes\n", rel_len);

	test_cert_info();
	test_statement(&good);
	test_file(rel, rel_len, &good);
	test_verify_good(rel, rel_len, &good);
	test_flips(rel, rel_len);
	test_field_mutations(&good);
	test_signed_mutations(&good);
	test_moved_and_rewrapped(rel, rel_len, &good);
	parts_free(&good);
out:
	free(rel);
	bundle_close(bd_a);
	bundle_close(bd_b);
	free_recipient(&alice);
	free_recipient(&bob);
	tpm_close(tpm);
	OPENSSL_cleanse(cek_a, 32);
	OPENSSL_cleanse(cek_b, 32);
	snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
	CHECK(system(cmd) == 0);
	free(tid);
	return check_done();
}

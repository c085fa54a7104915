/* Release files (docs/FORMAT.md section 10): the statement (canonical JSON,
 * signed by the box), the file that carries it with the wrapped content
 * key, the recipient's certificate and the custody proofs, and the checks
 * an opener makes before it decrypts anything. */
#include "export/release.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "crypto/hash.h"
#include "crypto/x509fp.h"
#include "export/canon.h"
#include "export/identity.h"
#include "export/json.h"
#include "export/logrec.h"
#include "export/wire.h"

#define FORMAT_NAME "sealbox-release"

/* ---- The statement ------------------------------------------------------- */

/* Field caps: one less than the struct's arrays (room for the NUL). */
#define CAP(field) (sizeof(((struct release_statement *)0)->field) - 1)

int release_statement_encode(const struct release_statement *s, char **out, size_t *len)
{
	struct canon_w w;

	*out = NULL;
	*len = 0;
	if (s->version != RELEASE_VERSION)
		return SBX_EFORMAT;
	canon_init(&w);
	canon_obj_open(&w, NULL);
	canon_str(&w, "format", FORMAT_NAME, sizeof FORMAT_NAME);
	canon_u64(&w, "version", s->version);
	canon_hex(&w, "bundle_id", s->bundle_id, 32);
	canon_hex(&w, "appliance_id", s->appliance_id, 32);
	canon_str(&w, "case", s->case_id, CAP(case_id));
	canon_obj_open(&w, "recipient");
	canon_str(&w, "name", s->recipient_name, CAP(recipient_name));
	canon_str(&w, "role", s->role, CAP(role));
	canon_hex(&w, "certificate_sha256", s->cert_sha256, 32);
	canon_str(&w, "subject", s->subject, CAP(subject));
	canon_obj_close(&w);
	canon_str(&w, "purpose", s->purpose, CAP(purpose));
	canon_str(&w, "authority", s->authority, CAP(authority));
	canon_str(&w, "attestation", s->attestation, CAP(attestation));
	canon_str(&w, "operator", s->operator_id, CAP(operator_id));
	canon_u64(&w, "released_at_ms", s->released_at_ms);
	canon_u64(&w, "counter", s->counter);
	canon_str(&w, "confirmation", s->confirmation, CAP(confirmation));
	canon_hex(&w, "wrapped_key_sha256", s->wrapped_key_sha256, 32);
	canon_obj_close(&w);
	if (w.err == 0 && w.len > RELEASE_MAX_STATEMENT)
		w.err = SBX_EFORMAT;
	return canon_take(&w, out, len);
}

int release_statement_parse(const char *text, size_t len, struct release_statement *s,
                            struct sbx_err *e)
{
	static const char what[] = "statement";
	struct sbx_err je = { 0 };
	struct json_doc *d = NULL;
	struct json_limits lim;
	const struct json_val *root, *rcp;
	char format[32], *canon = NULL;
	size_t canon_len = 0;
	uint64_t version = 0;
	int r = SBX_EFORMAT;

	memset(s, 0, sizeof *s);
	if (len > RELEASE_MAX_STATEMENT) {
		r = sbx_fail(e, SBX_EFORMAT, "statement: %zu bytes, more than %d allowed", len,
		             RELEASE_MAX_STATEMENT);
		goto out;
	}
	d = json_doc_new();
	if (d == NULL) {
		r = sbx_fail(e, SBX_ENOMEM, "statement: out of memory");
		goto out;
	}
	json_limits_default(&lim);
	lim.max_depth = 2;
	lim.max_bytes = RELEASE_MAX_STATEMENT;
	lim.max_values = 64;
	lim.max_string = 2048;
	r = json_parse(d, text, len, &lim, &je);
	if (r != 0) {
		r = sbx_fail(e, SBX_EFORMAT, "statement: not JSON as the format allows (%.400s)",
		             je.msg);
		goto out;
	}
	root = json_root(d);
	if (json_type_of(root) != JSON_OBJECT) {
		r = sbx_fail(e, SBX_EFORMAT, "statement: not a JSON object");
		goto out;
	}
	/* Format and version first, so a newer statement is named as such
	 * rather than as "not canonical". */
	if ((r = canon_get_str(d, root, "format", format, sizeof format, what, e)) != 0)
		goto out;
	if (strcmp(format, FORMAT_NAME) != 0) {
		r = sbx_fail(e, SBX_EFORMAT, "statement: format is not \"" FORMAT_NAME "\"");
		goto out;
	}
	if ((r = canon_get_u64(d, root, "version", &version, what, e)) != 0)
		goto out;
	if (version != RELEASE_VERSION) {
		r = sbx_fail(e, SBX_EFORMAT, "statement: version %" PRIu64 " (this reader knows"
		             " version %d only)", version, RELEASE_VERSION);
		goto out;
	}
	s->version = (unsigned)version;
	if ((r = canon_get_hex(d, root, "bundle_id", s->bundle_id, 32, what, e)) != 0 ||
	    (r = canon_get_hex(d, root, "appliance_id", s->appliance_id, 32, what, e)) != 0 ||
	    (r = canon_get_str(d, root, "case", s->case_id, sizeof s->case_id, what, e)) != 0 ||
	    (r = canon_get_obj(d, root, "recipient", &rcp, what, e)) != 0 ||
	    (r = canon_get_str(d, rcp, "name", s->recipient_name, sizeof s->recipient_name,
	                       "statement recipient", e)) != 0 ||
	    (r = canon_get_str(d, rcp, "role", s->role, sizeof s->role,
	                       "statement recipient", e)) != 0 ||
	    (r = canon_get_hex(d, rcp, "certificate_sha256", s->cert_sha256, 32,
	                       "statement recipient", e)) != 0 ||
	    (r = canon_get_str(d, rcp, "subject", s->subject, sizeof s->subject,
	                       "statement recipient", e)) != 0 ||
	    (r = canon_get_str(d, root, "purpose", s->purpose, sizeof s->purpose, what, e)) != 0 ||
	    (r = canon_get_str(d, root, "authority", s->authority, sizeof s->authority,
	                       what, e)) != 0 ||
	    (r = canon_get_str(d, root, "attestation", s->attestation, sizeof s->attestation,
	                       what, e)) != 0 ||
	    (r = canon_get_str(d, root, "operator", s->operator_id, sizeof s->operator_id,
	                       what, e)) != 0 ||
	    (r = canon_get_u64(d, root, "released_at_ms", &s->released_at_ms, what, e)) != 0 ||
	    (r = canon_get_u64(d, root, "counter", &s->counter, what, e)) != 0 ||
	    (r = canon_get_str(d, root, "confirmation", s->confirmation, sizeof s->confirmation,
	                       what, e)) != 0 ||
	    (r = canon_get_hex(d, root, "wrapped_key_sha256", s->wrapped_key_sha256, 32,
	                       what, e)) != 0)
		goto out;
	r = release_statement_encode(s, &canon, &canon_len);
	if (r != 0) {
		r = sbx_fail(e, SBX_EFORMAT, "statement: cannot be re-encoded");
		goto out;
	}
	r = canon_compare(text, len, canon, canon_len, what, e);
out:
	if (r != 0)
		memset(s, 0, sizeof *s);
	free(canon);
	json_doc_free(d);
	return r;
}

/* ---- The release file ---------------------------------------------------- */

static int field_ok(const uint8_t *p, size_t n, size_t cap)
{
	return p != NULL && n > 0 && n <= cap;
}

int release_file_encode(const struct release_file *f, uint8_t **out, size_t *len)
{
	struct wire_w w;

	*out = NULL;
	*len = 0;
	if (!field_ok(f->statement, f->statement_len, RELEASE_MAX_STATEMENT) ||
	    !field_ok(f->sig, f->sig_len, RELEASE_MAX_SIG) ||
	    !field_ok(f->wrapped, f->wrapped_len, RELEASE_MAX_WRAPPED) ||
	    !field_ok(f->cert, f->cert_len, RELEASE_MAX_CERT) ||
	    !field_ok(f->custody, f->custody_len, RELEASE_MAX_CUSTODY))
		return SBX_EFORMAT;
	wire_w_init(&w);
	wire_put_raw(&w, RELEASE_MAGIC, 4);
	wire_put_u8(&w, RELEASE_VERSION);
	wire_put_raw(&w, f->bundle_id, 32);
	wire_put_bytes32(&w, f->statement, f->statement_len);
	wire_put_bytes32(&w, f->sig, f->sig_len);
	wire_put_bytes32(&w, f->wrapped, f->wrapped_len);
	wire_put_bytes32(&w, f->cert, f->cert_len);
	wire_put_bytes32(&w, f->custody, f->custody_len);
	return wire_w_take(&w, out, len);
}

struct field_spec {
	const char *name;
	size_t cap;
};

static const struct field_spec file_fields[5] = {
	{ "statement", RELEASE_MAX_STATEMENT },
	{ "statement_sig", RELEASE_MAX_SIG },
	{ "wrapped_key", RELEASE_MAX_WRAPPED },
	{ "recipient_cert", RELEASE_MAX_CERT },
	{ "custody", RELEASE_MAX_CUSTODY },
};

int release_file_decode(const uint8_t *b, size_t len, struct release_file *f,
                        struct sbx_err *e)
{
	const uint8_t *p[5];
	size_t n[5], total = 0, off = 0;
	uint8_t *copy = NULL;
	struct wire_r rd;
	uint8_t magic[4], version;
	int r = SBX_EFORMAT;

	memset(f, 0, sizeof *f);
	if (len > RELEASE_MAX_FILE) {
		r = sbx_fail(e, SBX_EFORMAT, "release file: %zu bytes, more than %zu allowed", len,
		             (size_t)RELEASE_MAX_FILE);
		goto out;
	}
	wire_r_init(&rd, b, len);
	wire_get_fixed(&rd, magic, 4);
	if (rd.err != 0 || memcmp(magic, RELEASE_MAGIC, 4) != 0) {
		r = sbx_fail(e, SBX_EFORMAT, "release file: no \"" RELEASE_MAGIC "\" magic: not a"
		             " sealbox release");
		goto out;
	}
	version = wire_get_u8(&rd);
	if (rd.err != 0) {
		r = sbx_fail(e, SBX_EFORMAT, "release file: truncated after the magic");
		goto out;
	}
	if (version != RELEASE_VERSION) {
		r = sbx_fail(e, SBX_EFORMAT, "release file: version %u (this reader knows version"
		             " %d only)", version, RELEASE_VERSION);
		goto out;
	}
	wire_get_fixed(&rd, f->bundle_id, 32);
	if (rd.err != 0) {
		r = sbx_fail(e, SBX_EFORMAT, "release file: truncated in the bundle id");
		goto out;
	}
	for (int i = 0; i < 5; i++) {
		size_t before = rd.off;

		p[i] = wire_get_bytes32(&rd, file_fields[i].cap, &n[i]);
		if (rd.err != 0) {
			/* Tell an over-long field from a truncated one. */
			uint32_t want = 0;

			if (len - before >= 4)
				want = (uint32_t)b[before] << 24 | (uint32_t)b[before + 1] << 16 |
				       (uint32_t)b[before + 2] << 8 | b[before + 3];
			if (len - before >= 4 && want > file_fields[i].cap)
				r = sbx_fail(e, SBX_EFORMAT, "release file: %s of %" PRIu32 " bytes, more"
				             " than %zu allowed", file_fields[i].name, want,
				             file_fields[i].cap);
			else
				r = sbx_fail(e, SBX_EFORMAT, "release file: truncated in %s (at byte %zu"
				             " of %zu)", file_fields[i].name, before, len);
			goto out;
		}
		if (n[i] == 0) {
			r = sbx_fail(e, SBX_EFORMAT, "release file: %s is empty", file_fields[i].name);
			goto out;
		}
		total += n[i];
	}
	if (wire_r_end(&rd) != 0) {
		r = sbx_fail(e, SBX_EFORMAT, "release file: %zu bytes after the custody field"
		             " (nothing may follow it)", len - rd.off);
		goto out;
	}
	/* One allocation, statement first, so release_file_free frees it by
	 * f->statement. */
	copy = malloc(total);
	if (copy == NULL) {
		r = sbx_fail(e, SBX_ENOMEM, "release file: out of memory");
		goto out;
	}
	for (int i = 0; i < 5; i++) {
		memcpy(copy + off, p[i], n[i]);
		off += n[i];
	}
	f->statement = copy;
	f->statement_len = n[0];
	f->sig = copy + n[0];
	f->sig_len = n[1];
	f->wrapped = f->sig + n[1];
	f->wrapped_len = n[2];
	f->cert = f->wrapped + n[2];
	f->cert_len = n[3];
	f->custody = f->cert + n[3];
	f->custody_len = n[4];
	copy = NULL; /* transferred */
	r = 0;
out:
	free(copy);
	if (r != 0)
		memset(f, 0, sizeof *f);
	return r;
}

void release_file_free(struct release_file *f)
{
	if (f == NULL)
		return;
	free(f->statement);
	memset(f, 0, sizeof *f);
}

void release_wrap_context(const uint8_t bundle_id[static 32], const uint8_t cert_sha256[static 32],
                          uint8_t out[static 128], size_t *len)
{
	size_t n = sizeof RELEASE_NS_WRAP;    /* with its NUL: the 0x00 separator */

	memcpy(out, RELEASE_NS_WRAP, n);
	memcpy(out + n, bundle_id, 32);
	memcpy(out + n + 32, cert_sha256, 32);
	*len = n + 64;
}

/* ---- Certificates -------------------------------------------------------- */

/* Exactly one DER certificate, in its canonical encoding. */
static int cert_parse(const uint8_t *der, size_t len, X509 **out, struct sbx_err *e)
{
	const unsigned char *p = der;
	unsigned char *re = NULL;
	X509 *x = NULL;
	int relen, r = SBX_EFORMAT;

	*out = NULL;
	if (len == 0 || len > RELEASE_MAX_CERT || len > (size_t)INT32_MAX) {
		r = sbx_fail(e, SBX_EFORMAT, "recipient certificate: %zu bytes (1..%d allowed)",
		             len, RELEASE_MAX_CERT);
		goto out;
	}
	x = d2i_X509(NULL, &p, (long)len);
	if (x == NULL) {
		r = sbx_fail(e, SBX_EFORMAT, "recipient certificate: not a DER X.509 certificate");
		goto out;
	}
	if (p != der + len) {
		r = sbx_fail(e, SBX_EFORMAT, "recipient certificate: %zu bytes after the certificate",
		             (size_t)(der + len - p));
		goto out;
	}
	relen = i2d_X509(x, &re);
	if (relen <= 0 || (size_t)relen != len || memcmp(re, der, len) != 0) {
		r = sbx_fail(e, SBX_EFORMAT, "recipient certificate: not in canonical DER");
		goto out;
	}
	*out = x;
	x = NULL; /* transferred */
	r = 0;
out:
	ERR_clear_error();
	OPENSSL_free(re);
	X509_free(x);
	return r;
}

static int subject_of(X509 *x, char *out, size_t cap, struct sbx_err *e)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p = NULL;
	long n;
	int r = SBX_EFORMAT;

	if (cap > 0)
		out[0] = '\0';
	if (bio == NULL) {
		r = sbx_fail(e, SBX_ENOMEM, "recipient certificate: out of memory");
		goto out;
	}
	/* The flags the box uses when it records a recipient (appliance/
	 * x509check.c): ASCII out, every other byte escaped as \XX. */
	if (X509_NAME_print_ex(bio, X509_get_subject_name(x), 0,
	                       XN_FLAG_RFC2253 & ~ASN1_STRFLGS_UTF8_CONVERT) < 0) {
		r = sbx_fail_ssl(e, SBX_EFORMAT, "recipient certificate: its subject cannot be printed");
		goto out;
	}
	n = BIO_get_mem_data(bio, &p);
	if (n < 0 || (size_t)n >= cap || (n > 0 && memchr(p, 0, (size_t)n) != NULL) ||
	    !wire_utf8_valid((const uint8_t *)p, (size_t)n)) {
		r = sbx_fail(e, SBX_EFORMAT, "recipient certificate: subject longer than %zu bytes"
		             " or not text", cap > 0 ? cap - 1 : 0);
		goto out;
	}
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	r = 0;
out:
	BIO_free(bio);
	return r;
}

int release_cert_info(const uint8_t *der, size_t len, uint8_t sha256[static 32],
                      char *subject, size_t cap, struct sbx_err *e)
{
	X509 *x = NULL;
	int r;

	memset(sha256, 0, 32);
	r = cert_parse(der, len, &x, e);
	if (r != 0)
		goto out;
	r = subject_of(x, subject, cap, e);
	if (r != 0)
		goto out;
	if (hash_sha256(der, len, sha256) != 0)
		r = sbx_fail(e, SBX_ECRYPTO, "recipient certificate: hashing failed");
out:
	X509_free(x);
	return r;
}

static void hex16(const uint8_t b[static 32], char out[static 17])
{
	char full[65];

	hash_hex(b, 32, full);
	memcpy(out, full, 16);
	out[16] = '\0';
}

int release_match_recipient(const struct release_file *f, X509 *own, EVP_PKEY *priv,
                            struct sbx_err *e)
{
	X509 *rc = NULL;
	uint8_t theirs[32], mine[32];
	char a[17], b[17];
	int r;

	r = cert_parse(f->cert, f->cert_len, &rc, e);
	if (r != 0)
		goto out;
	if (hash_sha256(f->cert, f->cert_len, theirs) != 0) {
		r = sbx_fail(e, SBX_ECRYPTO, "hashing the recipient certificate failed");
		goto out;
	}
	if (own != NULL) {
		if (x509fp_cert(own, mine) != 0) {
			r = sbx_fail(e, SBX_ECRYPTO, "hashing your certificate failed");
			goto out;
		}
		if (CRYPTO_memcmp(theirs, mine, 32) != 0) {
			hex16(theirs, a);
			hex16(mine, b);
			r = sbx_fail(e, SBX_EVERIFY, "the release is for another recipient: it names"
			             " certificate %s..., yours is %s...", a, b);
			goto out;
		}
	}
	if (priv == NULL || EVP_PKEY_eq(X509_get0_pubkey(rc), priv) != 1) {
		hex16(theirs, a);
		r = sbx_fail(e, SBX_EVERIFY, "the release is for another recipient: its certificate"
		             " (%s...) does not hold your key's public key", a);
		goto out;
	}
	r = 0;
out:
	ERR_clear_error();
	X509_free(rc);
	return r;
}

int release_unwrap(const struct release_file *f, const struct release_statement *st,
                   EVP_PKEY *priv, uint8_t cek[static 32], struct sbx_err *e)
{
	uint8_t ctx[128];
	size_t ctxlen = 0;
	int r;

	release_wrap_context(st->bundle_id, st->cert_sha256, ctx, &ctxlen);
	r = wrap_unwrap(f->wrapped, f->wrapped_len, priv, ctx, ctxlen, cek, e);
	if (r != 0)
		sbx_fail(e, r, "the content key does not unwrap with your key for this bundle");
	return r;
}

/* ---- Verification -------------------------------------------------------- */

static const char *const check_names[RELEASE_N_CHECKS] = {
	[RELEASE_CHK_BUNDLE]    = "bundle",
	[RELEASE_CHK_SIGNATURE] = "signature",
	[RELEASE_CHK_STATEMENT] = "statement",
	[RELEASE_CHK_CERT]      = "certificate",
	[RELEASE_CHK_WRAPPED]   = "wrapped-key",
	[RELEASE_CHK_CUSTODY]   = "custody",
};

const char *release_check_name(enum release_check c)
{
	return ((int)c >= 0 && (int)c < RELEASE_N_CHECKS) ? check_names[c] : "unknown";
}

__attribute__((format(printf, 5, 6)))
static int set(struct release_report *rep, enum release_check c, int code,
               struct sbx_err *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rep->why[c], sizeof rep->why[c], fmt, ap);
	va_end(ap);
	if (code == 0) {
		rep->status[c] = RELEASE_PASS;
		return 0;
	}
	rep->status[c] = RELEASE_FAIL;
	return sbx_fail(e, code, "release %s: %s", check_names[c], rep->why[c]);
}

static void not_run(struct release_report *rep, enum release_check c, const char *why)
{
	rep->status[c] = RELEASE_NOT_RUN;
	snprintf(rep->why[c], sizeof rep->why[c], "%s", why);
}

static int check_bundle(const struct bundle *b, const struct release_file *f,
                        struct release_report *rep, struct sbx_err *e)
{
	uint8_t id[32];
	char a[17], c[17];

	bundle_id(b, id);
	hex16(f->bundle_id, a);
	if (CRYPTO_memcmp(id, f->bundle_id, 32) != 0) {
		hex16(id, c);
		return set(rep, RELEASE_CHK_BUNDLE, SBX_EVERIFY, e, "the release is for bundle"
		           " %s..., not for this bundle (%s...)", a, c);
	}
	return set(rep, RELEASE_CHK_BUNDLE, 0, e, "the release is for this bundle (%s...)", a);
}

static int check_statement(const struct bundle *b, const struct release_file *f,
                           struct release_statement *st, struct release_report *rep,
                           struct sbx_err *e)
{
	const struct bundle_manifest *m = bundle_manifest(b);
	struct sbx_err pe = { 0 };
	uint8_t id[32];
	const char *empty = NULL;
	int r;

	r = release_statement_parse((const char *)f->statement, f->statement_len, st, &pe);
	if (r != 0)
		return set(rep, RELEASE_CHK_STATEMENT, r, e, "%s", pe.msg);
	rep->statement_parsed = 1;
	bundle_id(b, id);
	if (CRYPTO_memcmp(st->bundle_id, f->bundle_id, 32) != 0 ||
	    CRYPTO_memcmp(st->bundle_id, id, 32) != 0)
		return set(rep, RELEASE_CHK_STATEMENT, SBX_EVERIFY, e, "the statement names another"
		           " bundle than the release file and the bundle");
	if (CRYPTO_memcmp(st->appliance_id, m->appliance_id, 32) != 0)
		return set(rep, RELEASE_CHK_STATEMENT, SBX_EVERIFY, e, "the statement names another"
		           " appliance than the bundle's");
	if (strcmp(st->case_id, m->case_id) != 0)
		return set(rep, RELEASE_CHK_STATEMENT, SBX_EVERIFY, e, "the statement names another"
		           " case than the bundle's");
	if (strcmp(st->role, "court") != 0 && strcmp(st->role, "prosecutor") != 0)
		return set(rep, RELEASE_CHK_STATEMENT, SBX_EVERIFY, e, "recipient role is neither"
		           " court nor prosecutor");
	if (st->recipient_name[0] == '\0')
		empty = "recipient name";
	else if (st->purpose[0] == '\0')
		empty = "purpose";
	else if (st->authority[0] == '\0')
		empty = "authority";
	else if (st->attestation[0] == '\0')
		empty = "attestation";
	else if (st->operator_id[0] == '\0')
		empty = "operator";
	else if (st->confirmation[0] == '\0')
		empty = "confirmation";
	if (empty != NULL)
		return set(rep, RELEASE_CHK_STATEMENT, SBX_EVERIFY, e, "the statement's %s is empty",
		           empty);
	return set(rep, RELEASE_CHK_STATEMENT, 0, e, "canonical, version 1; this bundle, its"
	           " appliance and case; role %s", st->role);
}

static int check_signature(const struct bundle *b, const struct release_file *f,
                           struct release_report *rep, struct sbx_err *e)
{
	EVP_PKEY *pk = NULL;
	int r;

	if (identity_sign_pkey(bundle_identity(b), &pk) != 0) {
		r = set(rep, RELEASE_CHK_SIGNATURE, SBX_EVERIFY, e, "the bundle identity's signing"
		        " key cannot be read");
		goto out;
	}
	if (sig_verify(pk, SIG_NS_RELEASE, f->statement, f->statement_len, f->sig,
	               f->sig_len) != 0)
		r = set(rep, RELEASE_CHK_SIGNATURE, SBX_EVERIFY, e, "statement_sig does not verify"
		        " under the box's signing key: the statement was altered or not signed by"
		        " this box");
	else
		r = set(rep, RELEASE_CHK_SIGNATURE, 0, e, "the statement is signed by the box's"
		        " signing key (namespace " SIG_NS_RELEASE ")");
out:
	EVP_PKEY_free(pk);
	ERR_clear_error();
	return r;
}

static int check_cert(const struct release_file *f, const struct release_statement *st,
                      int *cert_alg, struct release_report *rep, struct sbx_err *e)
{
	struct sbx_err ce = { 0 };
	X509 *x = NULL;
	uint8_t sha[32];
	char *subject = NULL;
	int r;

	*cert_alg = 0;
	subject = malloc(sizeof st->subject);
	if (subject == NULL) {
		r = set(rep, RELEASE_CHK_CERT, SBX_ENOMEM, e, "out of memory");
		goto out;
	}
	r = release_cert_info(f->cert, f->cert_len, sha, subject, sizeof st->subject, &ce);
	if (r != 0) {
		r = set(rep, RELEASE_CHK_CERT, r, e, "%s", ce.msg);
		goto out;
	}
	if (CRYPTO_memcmp(sha, st->cert_sha256, 32) != 0) {
		r = set(rep, RELEASE_CHK_CERT, SBX_EVERIFY, e, "the certificate's SHA-256 is not the"
		        " one the statement signs: the certificate was replaced");
		goto out;
	}
	if (strcmp(subject, st->subject) != 0) {
		r = set(rep, RELEASE_CHK_CERT, SBX_EVERIFY, e, "the certificate's subject is not the"
		        " statement's");
		goto out;
	}
	r = cert_parse(f->cert, f->cert_len, &x, &ce);
	if (r == 0)
		r = wrap_key_alg(X509_get0_pubkey(x), cert_alg, &ce);
	if (r != 0) {
		r = set(rep, RELEASE_CHK_CERT, SBX_EVERIFY, e, "%s", ce.msg);
		goto out;
	}
	r = set(rep, RELEASE_CHK_CERT, 0, e, "the certificate is the statement's (SHA-256 and"
	        " subject); its key is one sealbox wraps to");
out:
	ERR_clear_error();
	X509_free(x);
	free(subject);
	return r;
}

static int check_wrapped(const struct release_file *f, const struct release_statement *st,
                         int cert_alg, struct release_report *rep, struct sbx_err *e)
{
	struct sbx_err we = { 0 };
	struct wrap_blob wb;
	uint8_t sha[32];
	int r;

	r = wrap_parse(f->wrapped, f->wrapped_len, &wb, &we);
	if (r != 0)
		return set(rep, RELEASE_CHK_WRAPPED, r, e, "%s", we.msg);
	if (hash_sha256(f->wrapped, f->wrapped_len, sha) != 0)
		return set(rep, RELEASE_CHK_WRAPPED, SBX_ECRYPTO, e, "hashing failed");
	if (CRYPTO_memcmp(sha, st->wrapped_key_sha256, 32) != 0)
		return set(rep, RELEASE_CHK_WRAPPED, SBX_EVERIFY, e, "the wrapped key's SHA-256 is not"
		           " the one the statement signs: the key was wrapped again outside the box");
	if (cert_alg != 0 && wb.alg != cert_alg)
		return set(rep, RELEASE_CHK_WRAPPED, SBX_EVERIFY, e, "the key is wrapped for another"
		           " key type than the certificate's");
	return set(rep, RELEASE_CHK_WRAPPED, 0, e, "well-formed; the SHA-256 the statement signs");
}

/* The value of `key` in a record's "key=value" detail lines, or NULL. */
static const char *detail_get(const char *detail, const char *key, size_t *len)
{
	size_t klen = strlen(key);
	const char *p = detail;

	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);

		if (n > klen && memcmp(p, key, klen) == 0 && p[klen] == '=') {
			*len = n - klen - 1;
			return p + klen + 1;
		}
		p += n;
		if (*p == '\n')
			p++;
	}
	return NULL;
}

static int detail_agrees(const char *detail, const char *key, const char *want)
{
	size_t n = 0;
	const char *v = detail_get(detail, key, &n);

	return v == NULL || (n == strlen(want) && memcmp(v, want, n) == 0);
}

/* A release.confirm record naming this bundle, its case and the releasing
 * operator; any of the statement's values its detail carries must agree. */
static int record_matches(const struct logrec *lr, const struct release_statement *st,
                          const char *bundle_hex)
{
	char cert[65], wrapped[65], counter[24];

	if (strcmp(lr->event, "release.confirm") != 0 || strcmp(lr->outcome, "ok") != 0 ||
	    strcmp(lr->bundle_id, bundle_hex) != 0 || strcmp(lr->case_id, st->case_id) != 0 ||
	    strcmp(lr->operator_id, st->operator_id) != 0)
		return 0;
	hash_hex(st->cert_sha256, 32, cert);
	hash_hex(st->wrapped_key_sha256, 32, wrapped);
	snprintf(counter, sizeof counter, "%" PRIu64, st->counter);
	return detail_agrees(lr->detail, "certificate_sha256", cert) &&
	       detail_agrees(lr->detail, "wrapped_key_sha256", wrapped) &&
	       detail_agrees(lr->detail, "recipient", st->recipient_name) &&
	       detail_agrees(lr->detail, "role", st->role) &&
	       detail_agrees(lr->detail, "purpose", st->purpose) &&
	       detail_agrees(lr->detail, "authority", st->authority) &&
	       detail_agrees(lr->detail, "attestation", st->attestation) &&
	       detail_agrees(lr->detail, "confirmation", st->confirmation) &&
	       detail_agrees(lr->detail, "counter", counter);
}

static int check_custody(const struct bundle *b, const struct release_file *f,
                         const struct release_statement *st, struct release_report *rep,
                         struct sbx_err *e)
{
	struct bundle_custody *c = calloc(1, sizeof *c);
	struct logrec *lr = malloc(sizeof *lr);
	struct sbx_err ce = { 0 };
	char hex[65];
	size_t found = 0;
	uint8_t id[32];
	int r;

	if (c == NULL || lr == NULL) {
		r = set(rep, RELEASE_CHK_CUSTODY, SBX_ENOMEM, e, "out of memory");
		goto out;
	}
	r = bundle_custody_decode(f->custody, f->custody_len, c, &ce);
	if (r != 0) {
		r = set(rep, RELEASE_CHK_CUSTODY, r, e, "%s", ce.msg);
		goto out;
	}
	rep->custody_decoded = 1;
	rep->n_records = c->n;
	if (sth_decode(c->head, STH_ENCODED_LEN, &rep->head) != 0)
		memset(&rep->head, 0, sizeof rep->head);
	r = bundle_custody_verify(b, c, &rep->head, &ce);
	if (r != 0) {
		r = set(rep, RELEASE_CHK_CUSTODY, r, e, "%s", ce.msg);
		goto out;
	}
	bundle_id(b, id);
	hash_hex(id, 32, hex);
	for (size_t i = 0; i < c->n; i++) {
		if (logrec_decode(c->rec[i].record, c->rec[i].record_len, lr) != 0)
			continue;       /* bundle_custody_verify checked the bytes; only the shape */
		if (record_matches(lr, st, hex)) {
			rep->confirm_leaf = c->rec[i].leaf_index;
			found++;
		}
	}
	if (found == 0) {
		r = set(rep, RELEASE_CHK_CUSTODY, SBX_EVERIFY, e, "no release.confirm record of this"
		        " bundle, case and operator agreeing with the statement among the %zu custody"
		        " records", c->n);
		goto out;
	}
	if (rep->head.counter < st->counter) {
		r = set(rep, RELEASE_CHK_CUSTODY, SBX_EVERIFY, e, "the custody tree head (counter %"
		        PRIu64 ") is older than the release (counter %" PRIu64 ")",
		        rep->head.counter, st->counter);
		goto out;
	}
	r = set(rep, RELEASE_CHK_CUSTODY, 0, e, "%zu record%s in the box's log under a signed tree"
	        " head of %" PRIu64 " records (counter %" PRIu64 "), with the release.confirm"
	        " record (leaf %" PRIu64 ")", c->n, c->n == 1 ? "" : "s", rep->head.tree_size,
	        rep->head.counter, rep->confirm_leaf);
out:
	if (c != NULL)
		bundle_custody_free(c);
	free(c);
	free(lr);
	return r;
}

int release_verify_report(const struct bundle *b, const struct release_file *f,
                          struct release_statement *st, struct release_report *rep,
                          struct sbx_err *e)
{
	int first = 0, r, cert_alg = 0;

	memset(rep, 0, sizeof *rep);
	memset(st, 0, sizeof *st);
	for (int c = 0; c < RELEASE_N_CHECKS; c++)
		rep->status[c] = RELEASE_NOT_RUN;
	if (b == NULL || f == NULL || f->statement == NULL)
		return sbx_fail(e, SBX_EINVAL, "release_verify: no bundle or release");

	/* The signature before the statement's contents: a statement the box
	 * did not sign is reported as that, not as whatever it claims. */
	r = check_bundle(b, f, rep, e);
	first = first ? first : r;
	r = check_signature(b, f, rep, e);
	first = first ? first : r;
	r = check_statement(b, f, st, rep, e);
	first = first ? first : r;
	if (!rep->statement_parsed) {
		not_run(rep, RELEASE_CHK_CERT, "the statement could not be read");
		not_run(rep, RELEASE_CHK_WRAPPED, "the statement could not be read");
		not_run(rep, RELEASE_CHK_CUSTODY, "the statement could not be read");
		return first;
	}
	r = check_cert(f, st, &cert_alg, rep, e);
	first = first ? first : r;
	r = check_wrapped(f, st, cert_alg, rep, e);
	first = first ? first : r;
	r = check_custody(b, f, st, rep, e);
	first = first ? first : r;
	return first;
}

int release_verify(const struct bundle *b, const struct release_file *f,
                   struct release_statement *st, struct sbx_err *e)
{
	struct release_report *rep = malloc(sizeof *rep);
	int r;

	if (rep == NULL)
		return sbx_fail(e, SBX_ENOMEM, "release_verify: out of memory");
	r = release_verify_report(b, f, st, rep, e);
	free(rep);
	return r;
}

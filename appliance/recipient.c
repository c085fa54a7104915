#include "appliance/recipient.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "appliance/custody.h"
#include "appliance/db.h"
#include "appliance/trust.h"
#include "crypto/hash.h"
#include "crypto/wrap.h"
#include "export/wire.h"

void recipient_info_free(struct recipient_info *ri)
{
	if (ri == NULL)
		return;
	free(ri->cert_der);
	ri->cert_der = NULL;
	ri->cert_len = 0;
	EVP_PKEY_free(ri->pkey);
	ri->pkey = NULL;
}

int recipient_name_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > RECIPIENT_MAX_NAME)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			continue;
		if (i == 0 || strchr("._@-", c) == NULL)
			return 0;
	}
	return 1;
}

/* Same syntax as an authority reference (sealbox(1) IDENTIFIERS). */
static int ref_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > RECIPIENT_MAX_REF || !wire_utf8_valid((const uint8_t *)s, n))
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return s[0] != ' ' && s[n - 1] != ' ';
}

/* A stored recipient, as read from the database. */
struct row {
	char name[RECIPIENT_MAX_NAME + 1];
	char role[16];
	char attestation[RECIPIENT_MAX_REF + 1];
	char operator_id[129];
	uint64_t added_ms;
	const uint8_t *cert, *chain;   /* point into the statement's row */
	size_t cert_len, chain_len;
};

#define ROW_COLS "name, role, cert, chain, attestation, operator, added_ms"

static void text_col(char *dst, size_t n, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	snprintf(dst, n, "%s", t ? (const char *)t : "");
}

static void row_read(sqlite3_stmt *st, struct row *w)
{
	memset(w, 0, sizeof *w);
	text_col(w->name, sizeof w->name, st, 0);
	text_col(w->role, sizeof w->role, st, 1);
	w->cert = sqlite3_column_blob(st, 2);
	w->cert_len = (size_t)sqlite3_column_bytes(st, 2);
	w->chain = sqlite3_column_blob(st, 3);
	w->chain_len = (size_t)sqlite3_column_bytes(st, 3);
	text_col(w->attestation, sizeof w->attestation, st, 4);
	text_col(w->operator_id, sizeof w->operator_id, st, 5);
	w->added_ms = (uint64_t)sqlite3_column_int64(st, 6);
}

/* Judges one recipient at `now`: 0 usable, SBX_EPOLICY with the reason
 * ("recipient 'X' is not usable: ..."), or a failure of the checks. */
static int evaluate(struct box *b, const struct x509check_trust *t, const uint8_t conf[32],
                    const struct row *w, uint64_t now, struct recipient_info *out,
                    struct sbx_err *e)
{
	struct x509check_info *xi = calloc(1, sizeof *xi);
	struct sbx_err tmp = { 0 };
	X509 *x = NULL;
	int r;

	memset(out, 0, sizeof *out);
	if (xi == NULL)
		return SBX_ENOMEM;
	snprintf(out->name, sizeof out->name, "%s", w->name);
	snprintf(out->role, sizeof out->role, "%s", w->role);
	snprintf(out->attestation, sizeof out->attestation, "%s", w->attestation);
	snprintf(out->operator_id, sizeof out->operator_id, "%s", w->operator_id);
	out->added_ms = w->added_ms;
	memcpy(out->trust_conf_sha256, conf, 32);
	out->cert_der = malloc(w->cert_len ? w->cert_len : 1);
	if (out->cert_der == NULL) {
		r = SBX_ENOMEM;
		goto out;
	}
	memcpy(out->cert_der, w->cert, w->cert_len);
	out->cert_len = w->cert_len;
	r = hash_sha256(w->cert, w->cert_len, out->cert_sha256);
	if (r != 0)
		goto out;
	x = x509check_parse_cert(w->cert, w->cert_len);
	if (x == NULL || (out->pkey = X509_get_pubkey(x)) == NULL) {
		r = sbx_fail(e, SBX_EFORMAT, "recipient '%s': the stored certificate does not parse",
		             w->name);
		goto out;
	}
	r = x509check_recipient(t, w->role, w->cert, w->cert_len, w->chain, w->chain_len, now,
	                        xi, &tmp);
	snprintf(out->subject, sizeof out->subject, "%s", xi->subject);
	snprintf(out->issuer, sizeof out->issuer, "%s", xi->issuer);
	snprintf(out->notes, sizeof out->notes, "%s", xi->notes);
	out->not_before_ms = xi->not_before_ms;
	out->not_after_ms = xi->not_after_ms;
	out->wrap_alg = xi->wrap_alg;
	out->verdict = xi->verdict;
	if (r == 0 && !policy_role_known(&b->policy, w->role)) {
		out->verdict = X509CHECK_WRONG_ROLE;
		sbx_fail(&tmp, SBX_EPOLICY, "the policy in force does not allow releases to role '%s'",
		         w->role);
		r = SBX_EPOLICY;
	}
	if (r == SBX_EPOLICY || r == SBX_EFORMAT) {
		snprintf(out->reason, sizeof out->reason, "%s", tmp.msg);
		r = sbx_fail(e, SBX_EPOLICY, "recipient '%s' is not usable: %s", w->name, tmp.msg);
		goto out;
	}
	if (r != 0) {
		r = sbx_fail(e, r, "recipient '%s': %s", w->name, tmp.msg);
		goto out;
	}
	snprintf(out->anchor, sizeof out->anchor, "%s", xi->anchor);
	memcpy(out->anchor_sha256, xi->anchor_sha256, 32);
	out->usable = 1;
out:
	X509_free(x);
	ERR_clear_error();
	free(xi);
	return r;
}

int recipient_usable(struct box *b, const char *name, uint64_t now,
                     struct recipient_info *out, struct sbx_err *e)
{
	struct x509check_trust *t = NULL;
	sqlite3_stmt *st = NULL;
	struct row w;
	uint8_t conf[32];
	int r, rc;

	memset(out, 0, sizeof *out);
	r = db_prepare(b->db, "SELECT " ROW_COLS " FROM recipients WHERE name = ?1", &st, e);
	if (r != 0)
		return r;
	sqlite3_bind_text(st, 1, name ? name : "", -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		r = sbx_fail(e, SBX_ENOENT, "no recipient named '%.64s' (see 'sealbox recipient list')",
		             name ? name : "");
		goto out;
	}
	if (rc != SQLITE_ROW) {
		r = sbx_fail(e, SBX_EIO, "database: %s", sqlite3_errmsg(b->db));
		goto out;
	}
	row_read(st, &w);
	r = trust_load(b, &t, conf, e);
	if (r == 0)
		r = evaluate(b, t, conf, &w, now, out, e);
out:
	/* On a refusal the caller keeps the facts to show and log, and owns
	 * nothing. */
	if (r != 0)
		recipient_info_free(out);
	sqlite3_finalize(st);
	x509check_trust_free(t);
	return r;
}

int recipient_foreach(struct box *b, uint64_t now,
                      int (*fn)(void *, const struct recipient_info *), void *arg,
                      struct sbx_err *e)
{
	struct x509check_trust *t = NULL;
	struct recipient_info *ri = calloc(1, sizeof *ri);
	sqlite3_stmt *st = NULL;
	struct row w;
	uint8_t conf[32];
	int r, rc;

	if (ri == NULL)
		return SBX_ENOMEM;
	r = trust_load(b, &t, conf, e);
	if (r != 0)
		goto out;
	r = db_prepare(b->db, "SELECT " ROW_COLS " FROM recipients ORDER BY name", &st, e);
	if (r != 0)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct sbx_err tmp = { 0 };

		row_read(st, &w);
		r = evaluate(b, t, conf, &w, now, ri, &tmp);
		if (r != 0 && r != SBX_EPOLICY) {
			r = sbx_fail(e, r, "%s", tmp.msg);
			goto out;
		}
		r = fn(arg, ri);
		recipient_info_free(ri);
		if (r != 0)
			goto out;
	}
	if (rc != SQLITE_DONE)
		r = sbx_fail(e, SBX_EIO, "database: %s", sqlite3_errmsg(b->db));
out:
	sqlite3_finalize(st);
	x509check_trust_free(t);
	recipient_info_free(ri);
	free(ri);
	return r;
}

/* ---- changes ------------------------------------------------------------ */

static int refuse(struct box *b, const char *event, const char *operator_id, int code,
                  struct sbx_err *e)
{
	int r = custody_deny(b, event, operator_id, NULL, e->msg, NULL);

	return r != 0 ? r : code;
}

static int name_state(struct box *b, const char *name, const uint8_t *sha, int *found,
                      char *holder, size_t holderlen, struct sbx_err *e)
{
	sqlite3_stmt *st = NULL;
	int r = db_prepare(b->db, "SELECT name FROM recipients WHERE name = ?1 OR cert_sha256 = ?2 "
	                   "ORDER BY name = ?1 DESC LIMIT 1", &st, e), rc;

	*found = 0;
	if (r != 0)
		return r;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sha != NULL)
		sqlite3_bind_blob(st, 2, sha, 32, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 2);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*found = 1;
		text_col(holder, holderlen, st, 0);
	} else if (rc != SQLITE_DONE) {
		r = sbx_fail(e, SBX_EIO, "database: %s", sqlite3_errmsg(b->db));
	}
	sqlite3_finalize(st);
	return r;
}

struct put {
	const char *name, *role, *attestation, *operator_id, *subject;
	const uint8_t *cert, *chain, *sha;
	size_t cert_len, chain_len;
	uint64_t now;
};

static int apply_add(struct box *b, void *arg, struct sbx_err *e)
{
	struct put *p = arg;
	sqlite3_stmt *st = NULL;
	int r = db_prepare(b->db, "INSERT INTO recipients(name, role, cert, chain, cert_sha256, "
	                   "subject, attestation, operator, added_ms, record_seq) VALUES (?1, ?2, "
	                   "?3, ?4, ?5, ?6, ?7, ?8, ?9, (SELECT count(*) FROM records))", &st, e);

	if (r != 0)
		return r;
	sqlite3_bind_text(st, 1, p->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, p->role, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, p->cert, (int)p->cert_len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, p->chain_len ? p->chain : (const uint8_t *)"",
	                  (int)p->chain_len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, p->sha, 32, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, p->subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, p->attestation, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, p->operator_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)p->now);
	r = db_step_done(b->db, st, e);
	sqlite3_finalize(st);
	return r;
}

static const char *alg_name(int alg)
{
	switch (alg) {
	case WRAP_ECDH_P256: return "ECDH P-256";
	case WRAP_ECDH_P384: return "ECDH P-384";
	case WRAP_RSA_OAEP:  return "RSA-OAEP";
	default:             return "none";
	}
}

int recipient_add(struct box *b, const char *name, const char *path, const char *role,
                  const char *attestation, const char *operator_id,
                  struct recipient_info *out, struct sbx_err *e)
{
	struct x509check_trust *t = NULL;
	struct x509check_file f = { 0 };
	struct logrec *rec = NULL;
	struct row w;
	struct put p;
	struct sbx_err tmp = { 0 };
	uint8_t *buf = NULL, conf[32];
	size_t len = 0;
	char fp[65], ah[65], ch[65], holder[RECIPIENT_MAX_NAME + 1];
	uint64_t now = box_now_ms();
	int r, found = 0;
	static const uint8_t zero[32];

	memset(out, 0, sizeof *out);
	if (!recipient_name_valid(name)) {
		sbx_fail(e, SBX_EINVAL, "invalid recipient name (1-%d of A-Z a-z 0-9 . _ @ -, "
		         "starting with a letter or digit)", RECIPIENT_MAX_NAME);
		return refuse(b, "recipient.add", operator_id, SBX_EINVAL, e);
	}
	if (!x509check_role_valid(role)) {
		sbx_fail(e, SBX_EPOLICY, "recipient '%s': there is no role '%.64s': recipients are "
		         "court or prosecutor", name, role ? role : "");
		return refuse(b, "recipient.add", operator_id, SBX_EPOLICY, e);
	}
	if (!policy_role_known(&b->policy, role)) {
		sbx_fail(e, SBX_EPOLICY, "recipient '%s': the policy in force does not allow "
		         "releases to role '%s'", name, role);
		return refuse(b, "recipient.add", operator_id, SBX_EPOLICY, e);
	}
	if (attestation == NULL || *attestation == '\0') {
		sbx_fail(e, SBX_EPOLICY, "recipient '%s': an attestation reference is required "
		         "(--attestation: the recipient's signed statement under C.R.S. 24-74-105 "
		         "that the data will not be used for immigration enforcement)", name);
		return refuse(b, "recipient.add", operator_id, SBX_EPOLICY, e);
	}
	if (!ref_valid(attestation)) {
		sbx_fail(e, SBX_EINVAL, "recipient '%s': invalid attestation reference (1-256 "
		         "printable characters)", name);
		return refuse(b, "recipient.add", operator_id, SBX_EINVAL, e);
	}
	r = name_state(b, name, NULL, &found, holder, sizeof holder, e);
	if (r != 0)
		return r;
	if (found) {
		sbx_fail(e, SBX_EEXIST, "a recipient named '%s' already exists (remove it first)", name);
		return refuse(b, "recipient.add", operator_id, SBX_EEXIST, e);
	}
	r = trust_read_file(path, "certificate file", TRUST_MAX_CERT_FILE, &buf, &len, e);
	if (r == 0 && x509check_file_split(buf, len, 0, &f, &tmp) != 0)
		r = sbx_fail(e, SBX_EFORMAT, "certificate file %s: %s", path, tmp.msg);
	if (r != 0) {
		if (r == SBX_ENOENT)
			r = SBX_EIO;
		r = r == SBX_ENOMEM ? r : refuse(b, "recipient.add", operator_id, r, e);
		goto out;
	}
	r = trust_load(b, &t, conf, e);
	if (r != 0)
		goto out;
	memset(&w, 0, sizeof w);
	snprintf(w.name, sizeof w.name, "%s", name);
	snprintf(w.role, sizeof w.role, "%s", role);
	snprintf(w.attestation, sizeof w.attestation, "%s", attestation);
	snprintf(w.operator_id, sizeof w.operator_id, "%s", operator_id);
	w.added_ms = now;
	w.cert = f.certs;
	w.cert_len = f.first_len;
	w.chain = f.certs + f.first_len;
	w.chain_len = f.certs_len - f.first_len;
	sbx_err_clear(&tmp);
	r = evaluate(b, t, conf, &w, now, out, &tmp);
	if (r == SBX_EPOLICY || r == SBX_EFORMAT) {
		sbx_fail(e, r, "recipient '%s' (%s) refused: %s", name, path, out->reason[0] ?
		         out->reason : tmp.msg);
		r = refuse(b, "recipient.add", operator_id, r, e);
		goto out;
	}
	if (r != 0) {
		r = sbx_fail(e, r, "%s", tmp.msg);
		goto out;
	}
	r = name_state(b, name, out->cert_sha256, &found, holder, sizeof holder, e);
	if (r != 0)
		goto out;
	if (found) {
		sbx_fail(e, SBX_EEXIST, "recipient '%s': this certificate is already registered as "
		         "recipient '%s'", name, holder);
		r = refuse(b, "recipient.add", operator_id, SBX_EEXIST, e);
		goto out;
	}
	rec = calloc(1, sizeof *rec);
	if (rec == NULL) {
		r = SBX_ENOMEM;
		goto out;
	}
	hash_hex(out->cert_sha256, 32, fp);
	hash_hex(out->anchor_sha256, 32, ah);
	if (memcmp(conf, zero, 32) == 0)
		snprintf(ch, sizeof ch, "none");
	else
		hash_hex(conf, 32, ch);
	snprintf(rec->event, sizeof rec->event, "recipient.add");
	snprintf(rec->outcome, sizeof rec->outcome, "ok");
	snprintf(rec->operator_id, sizeof rec->operator_id, "%s", operator_id);
	snprintf(rec->detail, sizeof rec->detail, "name=%s\nrole=%s\ncert_sha256=%s\nsubject=%s\n"
	         "issuer=%s\nanchor=%s\nanchor_sha256=%s\nkey=%s\nnot_before_ms=%" PRIu64 "\n"
	         "not_after_ms=%" PRIu64 "\nattestation=%s\nintermediates=%zu\nnotes=%s\n"
	         "trust_conf_sha256=%s", name, role, fp, out->subject, out->issuer, out->anchor, ah,
	         alg_name(out->wrap_alg), out->not_before_ms, out->not_after_ms, attestation,
	         f.n_certs - 1, out->notes[0] ? out->notes : "none", ch);
	p = (struct put){ .name = name, .role = role, .attestation = attestation,
	                  .operator_id = operator_id, .subject = out->subject, .cert = w.cert,
	                  .cert_len = w.cert_len, .chain = w.chain, .chain_len = w.chain_len,
	                  .sha = out->cert_sha256, .now = now };
	r = custody_append(b, rec, 1, apply_add, &p, e);
out:
	if (r != 0)
		recipient_info_free(out);
	free(rec);
	free(buf);
	x509check_file_free(&f);
	x509check_trust_free(t);
	return r;
}

struct del {
	const char *name;
	uint8_t sha[32];
};

static int apply_remove(struct box *b, void *arg, struct sbx_err *e)
{
	struct del *d = arg;
	sqlite3_stmt *st = NULL;
	int r = db_prepare(b->db, "DELETE FROM recipients WHERE name = ?1 AND cert_sha256 = ?2",
	                   &st, e);

	if (r != 0)
		return r;
	sqlite3_bind_text(st, 1, d->name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, d->sha, 32, SQLITE_STATIC);
	r = db_step_done(b->db, st, e);
	if (r == 0 && sqlite3_changes(b->db) != 1)
		r = sbx_fail(e, SBX_ESTATE, "recipient '%s' changed underneath", d->name);
	sqlite3_finalize(st);
	return r;
}

int recipient_remove(struct box *b, const char *name, const char *operator_id,
                     struct sbx_err *e)
{
	sqlite3_stmt *st = NULL;
	struct logrec *rec = NULL;
	struct del d = { .name = name };
	char fp[65], role[16] = "", subject[X509CHECK_MAX_NAME + 1] = "";
	int r, rc;

	r = db_prepare(b->db, "SELECT cert_sha256, role, subject FROM recipients WHERE name = ?1",
	               &st, e);
	if (r != 0)
		return r;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32) {
		memcpy(d.sha, sqlite3_column_blob(st, 0), 32);
		text_col(role, sizeof role, st, 1);
		text_col(subject, sizeof subject, st, 2);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE) {
		sbx_fail(e, SBX_ENOENT, "no recipient named '%.64s'", name);
		return refuse(b, "recipient.remove", operator_id, SBX_ENOENT, e);
	}
	if (rc != SQLITE_ROW)
		return sbx_fail(e, SBX_EIO, "database: %s", sqlite3_errmsg(b->db));
	rec = calloc(1, sizeof *rec);
	if (rec == NULL)
		return SBX_ENOMEM;
	hash_hex(d.sha, 32, fp);
	snprintf(rec->event, sizeof rec->event, "recipient.remove");
	snprintf(rec->outcome, sizeof rec->outcome, "ok");
	snprintf(rec->operator_id, sizeof rec->operator_id, "%s", operator_id);
	snprintf(rec->detail, sizeof rec->detail, "name=%s\nrole=%s\ncert_sha256=%s\nsubject=%s",
	         name, role, fp, subject);
	r = custody_append(b, rec, 1, apply_remove, &d, e);
	free(rec);
	return r;
}

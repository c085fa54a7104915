#include "appliance/trust.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "appliance/custody.h"
#include "appliance/db.h"
#include "crypto/hash.h"

int trust_read_file(const char *path, const char *what, size_t max, uint8_t **buf,
                    size_t *len, struct sbx_err *e)
{
	uint8_t *b = NULL;
	size_t n = 0;
	struct stat sb;
	int fd, r = SBX_EIO;

	*buf = NULL;
	*len = 0;
	/* O_NONBLOCK: opening a FIFO must not hang the command. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return sbx_fail(e, errno == ENOENT ? SBX_ENOENT : SBX_EIO, "cannot open %s %s: %s",
		                what, path, strerror(errno));
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		r = sbx_fail(e, SBX_EFORMAT, "%s %s is not a regular file", what, path);
		goto out;
	}
	if ((uint64_t)sb.st_size > max) {
		r = sbx_fail(e, SBX_EFORMAT, "%s %s is larger than %zu bytes", what, path, max);
		goto out;
	}
	b = malloc((size_t)sb.st_size + 1);
	if (b == NULL) {
		r = SBX_ENOMEM;
		goto out;
	}
	/* Read to EOF rather than trusting st_size: the file may change. */
	for (;;) {
		ssize_t k = read(fd, b + n, (size_t)sb.st_size + 1 - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = sbx_fail(e, SBX_EIO, "cannot read %s %s: %s", what, path, strerror(errno));
			goto out;
		}
		if (k == 0)
			break;
		n += (size_t)k;
		if (n > (size_t)sb.st_size) {
			r = sbx_fail(e, SBX_EFORMAT, "%s %s changed while being read", what, path);
			goto out;
		}
	}
	*buf = b;
	*len = n;
	b = NULL;   /* transferred */
	r = 0;
out:
	close(fd);
	free(b);
	return r;
}

/* Re-words an inner error as "PREFIX: message" with the inner code. */
static int fail_with(struct sbx_err *e, int code, const char *prefix, const struct sbx_err *in)
{
	return sbx_fail(e, code, "%s: %s", prefix, in->msg[0] ? in->msg : sbx_strerror(code));
}

static int load_conf(struct box *b, struct x509check_trust *t, uint8_t sha[static 32],
                     struct sbx_err *e)
{
	char path[4300];
	uint8_t *text = NULL;
	size_t len = 0;
	struct sbx_err tmp = { 0 };
	int r;

	memset(sha, 0, 32);
	snprintf(path, sizeof path, "%s/%s", b->state_dir, TRUST_CONF_NAME);
	r = trust_read_file(path, "trust configuration", X509CHECK_MAX_CONF, &text, &len, &tmp);
	if (r == SBX_ENOENT)
		return 0;
	if (r == 0)
		r = hash_sha256(text, len, sha);
	if (r == 0 && x509check_trust_conf(t, text, len, &tmp) != 0)
		r = sbx_fail(e, SBX_EFORMAT, "%s: %s", path, tmp.msg);
	else if (r != 0)
		r = sbx_fail(e, r, "%s", tmp.msg);
	free(text);
	return r;
}

/* Runs `sql` (no parameters) and hands column 0 of every row (a blob) to
 * `add`, with column 1 as text (may be NULL). */
static int load_blobs(struct box *b, const char *sql, struct x509check_trust *t,
                      int (*add)(struct x509check_trust *, const char *, const uint8_t *,
                                 size_t, struct sbx_err *),
                      struct sbx_err *e)
{
	sqlite3_stmt *st = NULL;
	int r = db_prepare(b->db, sql, &st, e), rc;

	if (r != 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const uint8_t *p = sqlite3_column_blob(st, 0);
		size_t n = (size_t)sqlite3_column_bytes(st, 0);
		const char *s = (const char *)sqlite3_column_text(st, 1);

		r = add(t, s, p, n, e);
		if (r != 0)
			goto out;
	}
	if (rc != SQLITE_DONE)
		r = sbx_fail(e, SBX_EIO, "database: %s", sqlite3_errmsg(b->db));
out:
	sqlite3_finalize(st);
	return r;
}

static int add_anchor(struct x509check_trust *t, const char *role, const uint8_t *p, size_t n,
                      struct sbx_err *e)
{
	return x509check_trust_add_anchor(t, role, p, n, e);
}

static int add_crl(struct x509check_trust *t, const char *unused, const uint8_t *p, size_t n,
                   struct sbx_err *e)
{
	return x509check_trust_add_crl(t, p, n, e);
}

static int add_pool(struct x509check_trust *t, const char *unused, const uint8_t *p, size_t n,
                    struct sbx_err *e)
{
	return n == 0 ? 0 : x509check_trust_add_pool(t, p, n, e);
}

int trust_load(struct box *b, struct x509check_trust **out, uint8_t conf_sha256[static 32],
               struct sbx_err *e)
{
	struct x509check_trust *t = x509check_trust_new();
	int r = SBX_ENOMEM;

	*out = NULL;
	if (t == NULL)
		goto out;
	r = load_blobs(b, "SELECT cert, role FROM trust_anchors ORDER BY role, added_ms", t,
	               add_anchor, e);
	if (r == 0)
		r = load_blobs(b, "SELECT crl, NULL FROM crls ORDER BY issuer_key", t, add_crl, e);
	if (r == 0)
		r = load_blobs(b, "SELECT chain, NULL FROM recipients ORDER BY name", t, add_pool, e);
	if (r == 0)
		r = load_conf(b, t, conf_sha256, e);
	if (r != 0)
		goto out;
	*out = t;
	t = NULL;   /* transferred */
out:
	x509check_trust_free(t);
	return r;
}

/* Refuses and logs the refusal; returns the refusal's code (or the logging
 * failure's, which is worse). */
static int refuse(struct box *b, const char *event, const char *operator_id, int code,
                  struct sbx_err *e)
{
	int r = custody_deny(b, event, operator_id, NULL, e->msg, NULL);

	return r != 0 ? r : code;
}

static void conf_hex(const uint8_t sha[32], char out[65])
{
	static const uint8_t zero[32];

	if (memcmp(sha, zero, 32) == 0)
		snprintf(out, 65, "none");
	else
		hash_hex(sha, 32, out);
}

/* Reads and splits a file for trust_add / trust_crl, logging a refusal. */
static int read_split(struct box *b, const char *event, const char *operator_id,
                      const char *path, const char *what, size_t max, int want_crl,
                      struct x509check_file *f, struct sbx_err *e)
{
	struct sbx_err tmp = { 0 };
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	memset(f, 0, sizeof *f);
	r = trust_read_file(path, what, max, &buf, &len, e);
	if (r == 0 && x509check_file_split(buf, len, want_crl, f, &tmp) != 0)
		r = sbx_fail(e, SBX_EFORMAT, "%s %s: %s", what, path, tmp.msg);
	free(buf);
	if (r == SBX_ENOMEM)
		return r;
	if (r == SBX_ENOENT)
		r = SBX_EIO;    /* a missing file is an I/O error, as for policy files */
	return r != 0 ? refuse(b, event, operator_id, r, e) : 0;
}

struct anchor_row {
	const char *role, *operator_id;
	const uint8_t *der;
	size_t len;
	const struct x509check_info *info;
	uint64_t now;
};

static int apply_anchor(struct box *b, void *arg, struct sbx_err *e)
{
	struct anchor_row *a = arg;
	sqlite3_stmt *st = NULL;
	int r = db_prepare(b->db, "INSERT INTO trust_anchors(role, cert_sha256, cert, subject, "
	                   "not_before_ms, not_after_ms, added_ms, operator, record_seq) VALUES "
	                   "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, (SELECT count(*) FROM records))", &st, e);

	if (r != 0)
		return r;
	sqlite3_bind_text(st, 1, a->role, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, a->info->sha256, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, a->der, (int)a->len, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, a->info->subject, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)a->info->not_before_ms);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)a->info->not_after_ms);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)a->now);
	sqlite3_bind_text(st, 8, a->operator_id, -1, SQLITE_STATIC);
	r = db_step_done(b->db, st, e);
	sqlite3_finalize(st);
	return r;
}

static int anchor_exists(struct box *b, const char *role, const uint8_t sha[32], int *found,
                         struct sbx_err *e)
{
	sqlite3_stmt *st = NULL;
	int r = db_prepare(b->db, "SELECT 1 FROM trust_anchors WHERE role = ?1 AND cert_sha256 = ?2",
	                   &st, e), rc;

	if (r != 0)
		return r;
	sqlite3_bind_text(st, 1, role, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, sha, 32, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*found = rc == SQLITE_ROW;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = sbx_fail(e, SBX_EIO, "database: %s", sqlite3_errmsg(b->db));
	sqlite3_finalize(st);
	return r;
}

int trust_add(struct box *b, const char *role, const char *path, const char *operator_id,
              struct x509check_info *info, struct sbx_err *e)
{
	struct x509check_trust *t = NULL;
	struct x509check_file f = { 0 };
	struct logrec *rec = NULL;
	struct anchor_row a;
	struct sbx_err tmp = { 0 };
	uint8_t conf_sha[32];
	char fp[65], ch[65];
	uint64_t now = box_now_ms();
	int r, found = 0;

	memset(info, 0, sizeof *info);
	if (!x509check_role_valid(role)) {
		sbx_fail(e, SBX_EPOLICY, "there is no role '%.64s' and never a trust anchor for it: "
		         "anchors are for court or prosecutor", role ? role : "");
		return refuse(b, "trust.add", operator_id, SBX_EPOLICY, e);
	}
	if (!policy_role_known(&b->policy, role)) {
		sbx_fail(e, SBX_EPOLICY, "the policy in force does not allow releases to role '%s'",
		         role);
		return refuse(b, "trust.add", operator_id, SBX_EPOLICY, e);
	}
	r = read_split(b, "trust.add", operator_id, path, "CA certificate file", TRUST_MAX_CERT_FILE,
	               0, &f, e);
	if (r != 0)
		goto out;
	if (f.n_certs != 1) {
		r = sbx_fail(e, SBX_EFORMAT, "CA certificate file %s holds %zu certificates; give "
		             "the root CA certificate alone", path, f.n_certs);
		r = refuse(b, "trust.add", operator_id, r, e);
		goto out;
	}
	r = trust_load(b, &t, conf_sha, e);
	if (r != 0)
		goto out;
	r = x509check_anchor(t, role, f.certs, f.certs_len, now, info, &tmp);
	if (r == SBX_EPOLICY || r == SBX_EFORMAT) {
		fail_with(e, r, path, &tmp);
		r = refuse(b, "trust.add", operator_id, r, e);
		goto out;
	}
	if (r != 0) {
		r = fail_with(e, r, path, &tmp);
		goto out;
	}
	hash_hex(info->sha256, 32, fp);
	r = anchor_exists(b, role, info->sha256, &found, e);
	if (r != 0)
		goto out;
	if (found) {
		sbx_fail(e, SBX_EEXIST, "%s is already a %s trust anchor (sha256 %s)", path, role, fp);
		r = refuse(b, "trust.add", operator_id, SBX_EEXIST, e);
		goto out;
	}
	rec = calloc(1, sizeof *rec);
	if (rec == NULL) {
		r = SBX_ENOMEM;
		goto out;
	}
	conf_hex(conf_sha, ch);
	snprintf(rec->event, sizeof rec->event, "trust.add");
	snprintf(rec->outcome, sizeof rec->outcome, "ok");
	snprintf(rec->operator_id, sizeof rec->operator_id, "%s", operator_id);
	snprintf(rec->detail, sizeof rec->detail, "role=%s\ncert_sha256=%s\nsubject=%s\n"
	         "not_before_ms=%" PRIu64 "\nnot_after_ms=%" PRIu64 "\ntrust_conf_sha256=%s",
	         role, fp, info->subject, info->not_before_ms, info->not_after_ms, ch);
	a = (struct anchor_row){ .role = role, .operator_id = operator_id, .der = f.certs,
	                         .len = f.certs_len, .info = info, .now = now };
	r = custody_append(b, rec, 1, apply_anchor, &a, e);
out:
	free(rec);
	x509check_file_free(&f);
	x509check_trust_free(t);
	return r;
}

/* ---- CRLs --------------------------------------------------------------- */

#define CRL_COLS "issuer_key, issuer, crl_sha256, signer, this_update_ms, next_update_ms, " \
                 "crl_number, revoked, loaded_ms, operator"

static void row_to_crl(sqlite3_stmt *st, struct trust_crl_row *c)
{
	const void *p;

	memset(c, 0, sizeof *c);
	p = sqlite3_column_blob(st, 0);
	if (p != NULL && sqlite3_column_bytes(st, 0) == 32)
		memcpy(c->info.issuer_key, p, 32);
	snprintf(c->info.issuer, sizeof c->info.issuer, "%s", sqlite3_column_text(st, 1));
	p = sqlite3_column_blob(st, 2);
	if (p != NULL && sqlite3_column_bytes(st, 2) == 32)
		memcpy(c->info.sha256, p, 32);
	snprintf(c->info.signer, sizeof c->info.signer, "%s", sqlite3_column_text(st, 3));
	c->info.this_update_ms = (uint64_t)sqlite3_column_int64(st, 4);
	c->info.next_update_ms = (uint64_t)sqlite3_column_int64(st, 5);
	snprintf(c->info.number, sizeof c->info.number, "%s", sqlite3_column_text(st, 6));
	c->info.revoked = (uint64_t)sqlite3_column_int64(st, 7);
	c->loaded_ms = (uint64_t)sqlite3_column_int64(st, 8);
	snprintf(c->operator_id, sizeof c->operator_id, "%s", sqlite3_column_text(st, 9));
}

static int crl_current(struct box *b, const uint8_t key[32], struct trust_crl_row *c,
                       int *found, struct sbx_err *e)
{
	sqlite3_stmt *st = NULL;
	int r = db_prepare(b->db, "SELECT " CRL_COLS " FROM crls WHERE issuer_key = ?1", &st, e), rc;

	*found = 0;
	if (r != 0)
		return r;
	sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		row_to_crl(st, c);
		*found = 1;
	} else if (rc != SQLITE_DONE) {
		r = sbx_fail(e, SBX_EIO, "database: %s", sqlite3_errmsg(b->db));
	}
	sqlite3_finalize(st);
	return r;
}

struct crl_put {
	const struct x509check_crl_info *info;
	const uint8_t *der;
	size_t len;
	const char *operator_id;
	uint64_t now;
	int replace;
	uint64_t old_this_update;
};

static int apply_crl(struct box *b, void *arg, struct sbx_err *e)
{
	struct crl_put *c = arg;
	sqlite3_stmt *st = NULL;
	/* The WHERE guards the replacement order inside the transaction too. */
	int r = db_prepare(b->db, c->replace ?
	                   "UPDATE crls SET issuer = ?2, crl = ?3, crl_sha256 = ?4, signer = ?5, "
	                   "this_update_ms = ?6, next_update_ms = ?7, crl_number = ?8, revoked = ?9, "
	                   "loaded_ms = ?10, operator = ?11, record_seq = (SELECT count(*) FROM records) "
	                   "WHERE issuer_key = ?1 AND this_update_ms = ?12" :
	                   "INSERT INTO crls(issuer_key, issuer, crl, crl_sha256, signer, "
	                   "this_update_ms, next_update_ms, crl_number, revoked, loaded_ms, operator, "
	                   "record_seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
	                   "(SELECT count(*) FROM records))", &st, e);

	if (r != 0)
		return r;
	sqlite3_bind_blob(st, 1, c->info->issuer_key, 32, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c->info->issuer, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, c->der, (int)c->len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, c->info->sha256, 32, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, c->info->signer, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)c->info->this_update_ms);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)c->info->next_update_ms);
	sqlite3_bind_text(st, 8, c->info->number, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)c->info->revoked);
	sqlite3_bind_int64(st, 10, (sqlite3_int64)c->now);
	sqlite3_bind_text(st, 11, c->operator_id, -1, SQLITE_STATIC);
	if (c->replace)
		sqlite3_bind_int64(st, 12, (sqlite3_int64)c->old_this_update);
	r = db_step_done(b->db, st, e);
	if (r == 0 && sqlite3_changes(b->db) != 1)
		r = sbx_fail(e, SBX_ESTATE, "the CRL of '%.300s' changed underneath", c->info->issuer);
	sqlite3_finalize(st);
	return r;
}

int trust_crl(struct box *b, const char *path, const char *operator_id,
              struct x509check_crl_info *info, int *replaced, struct sbx_err *e)
{
	struct x509check_trust *t = NULL;
	struct x509check_file f = { 0 };
	struct trust_crl_row *cur = NULL;
	struct logrec *rec = NULL;
	struct crl_put put;
	struct sbx_err tmp = { 0 };
	uint8_t conf_sha[32];
	char fp[65], ch[65], old[65] = "none", t1[32], t2[32];
	uint64_t now = box_now_ms();
	int r, found = 0;

	memset(info, 0, sizeof *info);
	*replaced = 0;
	r = read_split(b, "trust.crl", operator_id, path, "CRL file", TRUST_MAX_CRL_FILE, 1, &f, e);
	if (r != 0)
		goto out;
	r = trust_load(b, &t, conf_sha, e);
	if (r != 0)
		goto out;
	r = x509check_crl(t, f.crl, f.crl_len, f.certs, f.certs_len, now, info, &tmp);
	if (r == SBX_EPOLICY || r == SBX_EFORMAT) {
		if (strstr(tmp.msg, "not signed by") != NULL)
			sbx_fail(e, r, "%s: %s (add the trust anchor first; for an intermediate's CRL, "
			         "append the intermediate's certificate to the file)", path, tmp.msg);
		else
			fail_with(e, r, path, &tmp);
		r = refuse(b, "trust.crl", operator_id, r, e);
		goto out;
	}
	if (r != 0) {
		r = fail_with(e, r, path, &tmp);
		goto out;
	}
	cur = calloc(1, sizeof *cur);
	rec = calloc(1, sizeof *rec);
	if (cur == NULL || rec == NULL) {
		r = SBX_ENOMEM;
		goto out;
	}
	r = crl_current(b, info->issuer_key, cur, &found, e);
	if (r != 0)
		goto out;
	if (found && !x509check_crl_newer(&cur->info, info, &tmp)) {
		r = fail_with(e, tmp.code ? tmp.code : SBX_EPOLICY, path, &tmp);
		r = refuse(b, "trust.crl", operator_id, r, e);
		goto out;
	}
	if (found)
		hash_hex(cur->info.sha256, 32, old);
	hash_hex(info->sha256, 32, fp);
	conf_hex(conf_sha, ch);
	snprintf(rec->event, sizeof rec->event, "trust.crl");
	snprintf(rec->outcome, sizeof rec->outcome, "ok");
	snprintf(rec->operator_id, sizeof rec->operator_id, "%s", operator_id);
	snprintf(t1, sizeof t1, "%" PRIu64, info->this_update_ms);
	snprintf(t2, sizeof t2, "%" PRIu64, info->next_update_ms);
	snprintf(rec->detail, sizeof rec->detail, "issuer=%s\ncrl_sha256=%s\nsigner=%s\n"
	         "this_update_ms=%s\nnext_update_ms=%s\ncrl_number=%s\nrevoked=%" PRIu64 "\n"
	         "replaces=%s\ntrust_conf_sha256=%s", info->issuer, fp, info->signer, t1,
	         info->next_update_ms ? t2 : "none", info->number[0] ? info->number : "none",
	         info->revoked, old, ch);
	put = (struct crl_put){ .info = info, .der = f.crl, .len = f.crl_len,
	                        .operator_id = operator_id, .now = now, .replace = found,
	                        .old_this_update = found ? cur->info.this_update_ms : 0 };
	r = custody_append(b, rec, 1, apply_crl, &put, e);
	if (r == 0)
		*replaced = found;
out:
	free(cur);
	free(rec);
	x509check_file_free(&f);
	x509check_trust_free(t);
	return r;
}

int trust_foreach_anchor(struct box *b, int (*fn)(void *, const struct trust_anchor *),
                         void *arg, struct sbx_err *e)
{
	sqlite3_stmt *st = NULL;
	struct trust_anchor a;
	int r = db_prepare(b->db, "SELECT role, cert_sha256, subject, not_before_ms, not_after_ms, "
	                   "added_ms, operator FROM trust_anchors ORDER BY role, added_ms", &st, e);
	int rc;

	if (r != 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *p = sqlite3_column_blob(st, 1);

		memset(&a, 0, sizeof a);
		snprintf(a.role, sizeof a.role, "%s", sqlite3_column_text(st, 0));
		if (p != NULL && sqlite3_column_bytes(st, 1) == 32)
			memcpy(a.sha256, p, 32);
		snprintf(a.subject, sizeof a.subject, "%s", sqlite3_column_text(st, 2));
		a.not_before_ms = (uint64_t)sqlite3_column_int64(st, 3);
		a.not_after_ms = (uint64_t)sqlite3_column_int64(st, 4);
		a.added_ms = (uint64_t)sqlite3_column_int64(st, 5);
		snprintf(a.operator_id, sizeof a.operator_id, "%s", sqlite3_column_text(st, 6));
		r = fn(arg, &a);
		if (r != 0)
			goto out;
	}
	if (rc != SQLITE_DONE)
		r = sbx_fail(e, SBX_EIO, "database: %s", sqlite3_errmsg(b->db));
out:
	sqlite3_finalize(st);
	return r;
}

int trust_foreach_crl(struct box *b, int (*fn)(void *, const struct trust_crl_row *),
                      void *arg, struct sbx_err *e)
{
	sqlite3_stmt *st = NULL;
	struct trust_crl_row *c = malloc(sizeof *c);
	int r, rc;

	if (c == NULL)
		return SBX_ENOMEM;
	r = db_prepare(b->db, "SELECT " CRL_COLS " FROM crls ORDER BY issuer", &st, e);
	if (r != 0)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_to_crl(st, c);
		r = fn(arg, c);
		if (r != 0)
			goto out;
	}
	if (rc != SQLITE_DONE)
		r = sbx_fail(e, SBX_EIO, "database: %s", sqlite3_errmsg(b->db));
out:
	sqlite3_finalize(st);
	free(c);
	return r;
}

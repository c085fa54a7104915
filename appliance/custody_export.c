/* Exporting and verifying the custody log.  Verification on the box runs the
 * auditor's own export verifier (export/logexport.c) over an export built in
 * memory, then adds what only the box can check: the TPM's key and counter
 * and the database's index columns.  One verifier serves both. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "appliance/custody.h"
#include "appliance/db.h"
#include "crypto/hash.h"
#include "crypto/merkle.h"
#include "crypto/sig.h"
#include "crypto/tpm.h"
#include "export/atomic.h"
#include "export/logexport.h"
#include "export/sth.h"

static int count(sqlite3 *db, const char *sql, uint64_t *n, struct sbx_err *e)
{
	sqlite3_stmt *st = NULL;
	int r = db_prepare(db, sql, &st, e);

	if (r != 0)
		return r;
	if (sqlite3_step(st) == SQLITE_ROW)
		*n = (uint64_t)sqlite3_column_int64(st, 0);
	else
		r = sbx_fail(e, SBX_EIO, "database: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return r;
}

/* Streams the whole log into fd in the export format.  Only signed heads
 * are exported (an unsigned one exists only between a crash and the next
 * start). */
static int write_export(struct box *b, int fd, uint64_t *n_records, uint64_t *n_heads,
                        struct sbx_err *e)
{
	struct logexport_writer *w = NULL;
	uint8_t *idb = NULL;
	size_t idlen = 0;
	sqlite3_stmt *st = NULL;
	int r, rc;

	r = count(b->db, "SELECT count(*) FROM records", n_records, e);
	if (r == 0)
		r = count(b->db, "SELECT count(*) FROM heads WHERE sig IS NOT NULL", n_heads, e);
	if (r == 0)
		r = db_meta_get(b->db, "identity", &idb, &idlen, e);
	if (r != 0)
		goto out;
	r = logexport_writer_open(fd, idb, idlen, *n_records, *n_heads, &w, e);
	if (r != 0)
		goto out;
	r = db_prepare(b->db, "SELECT body FROM records ORDER BY seq", &st, e);
	if (r != 0)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = logexport_writer_put_record(w, sqlite3_column_blob(st, 0),
		                                (size_t)sqlite3_column_bytes(st, 0), e);
		if (r != 0)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		r = sbx_fail(e, SBX_EIO, "database: reading the records: %s", sqlite3_errmsg(b->db));
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	r = db_prepare(b->db, "SELECT body, sig FROM heads WHERE sig IS NOT NULL "
	                      "ORDER BY tree_size", &st, e);
	if (r != 0)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((size_t)sqlite3_column_bytes(st, 0) != STH_ENCODED_LEN) {
			r = sbx_fail(e, SBX_EINTEGRITY, "custody log: a tree head has the wrong size");
			goto out;
		}
		r = logexport_writer_put_sth(w, sqlite3_column_blob(st, 0),
		                             sqlite3_column_blob(st, 1),
		                             (size_t)sqlite3_column_bytes(st, 1), e);
		if (r != 0)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		r = sbx_fail(e, SBX_EIO, "database: reading the tree heads: %s", sqlite3_errmsg(b->db));
		goto out;
	}
	r = logexport_writer_finish(w, e);
	w = NULL;
out:
	logexport_writer_free(w);
	sqlite3_finalize(st);
	free(idb);
	return r;
}

static int read_fd(int fd, uint8_t **buf, size_t *len, struct sbx_err *e)
{
	struct stat sb;
	uint8_t *p;
	size_t off = 0;

	if (fstat(fd, &sb) != 0 || lseek(fd, 0, SEEK_SET) != 0)
		return sbx_fail(e, SBX_EIO, "cannot read back the export: %s", strerror(errno));
	p = malloc((size_t)sb.st_size + 1);
	if (p == NULL)
		return SBX_ENOMEM;
	while (off < (size_t)sb.st_size) {
		ssize_t k = read(fd, p + off, (size_t)sb.st_size - off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			free(p);
			return sbx_fail(e, SBX_EIO, "cannot read back the export");
		}
		off += (size_t)k;
	}
	*buf = p;
	*len = off;
	return 0;
}

static void problem(struct custody_report *rep, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void problem(struct custody_report *rep, const char *fmt, ...)
{
	va_list ap;

	if (rep->problems < sizeof rep->problem / sizeof rep->problem[0]) {
		va_start(ap, fmt);
		vsnprintf(rep->problem[rep->problems], sizeof rep->problem[0], fmt, ap);
		va_end(ap);
	}
	rep->problems++;
}

/* The database's index columns must say what the canonical bytes say. */
static void check_index(struct box *b, struct custody_report *rep, struct sbx_err *e)
{
	sqlite3_stmt *st = NULL;
	struct logrec *rec = malloc(sizeof *rec);
	uint8_t leaf[32];
	int rc;

	rep->index_ok = 1;
	if (rec == NULL || db_prepare(b->db, "SELECT seq, body, leaf, time_ms, event, outcome, "
	                              "case_id, bundle_id FROM records ORDER BY seq", &st, e) != 0) {
		rep->index_ok = 0;
		problem(rep, "cannot read the records table");
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const uint8_t *body = sqlite3_column_blob(st, 1);
		size_t len = (size_t)sqlite3_column_bytes(st, 1);
		long long seq = sqlite3_column_int64(st, 0);

		if (logrec_decode(body, len, rec) != 0)
			continue;   /* reported by the export verifier */
		merkle_leaf_hash(body, len, leaf);
		if (sqlite3_column_bytes(st, 2) != 32 ||
		    memcmp(sqlite3_column_blob(st, 2), leaf, 32) != 0 ||
		    (uint64_t)seq != rec->seq ||
		    (uint64_t)sqlite3_column_int64(st, 3) != rec->time_ms ||
		    strcmp((const char *)sqlite3_column_text(st, 4), rec->event) != 0 ||
		    strcmp((const char *)sqlite3_column_text(st, 5), rec->outcome) != 0 ||
		    strcmp((const char *)sqlite3_column_text(st, 6), rec->case_id) != 0 ||
		    strcmp((const char *)sqlite3_column_text(st, 7), rec->bundle_id) != 0) {
			rep->index_ok = 0;
			problem(rep, "record %lld: the database index disagrees with the record bytes", seq);
		}
	}
	if (rc != SQLITE_DONE) {
		rep->index_ok = 0;
		problem(rep, "reading the records table failed: %s", sqlite3_errmsg(b->db));
	}
	sqlite3_finalize(st);
	st = NULL;
	if (db_prepare(b->db, "SELECT tree_size, counter, body FROM heads", &st, e) != 0)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct sth h;

		if ((size_t)sqlite3_column_bytes(st, 2) != STH_ENCODED_LEN ||
		    sth_decode(sqlite3_column_blob(st, 2), STH_ENCODED_LEN, &h) != 0 ||
		    h.tree_size != (uint64_t)sqlite3_column_int64(st, 0) ||
		    h.counter != (uint64_t)sqlite3_column_int64(st, 1)) {
			rep->index_ok = 0;
			problem(rep, "tree head %lld: the database index disagrees with the head bytes",
			        (long long)sqlite3_column_int64(st, 0));
		}
	}
	if (rc != SQLITE_DONE) {
		rep->index_ok = 0;
		problem(rep, "reading the heads table failed: %s", sqlite3_errmsg(b->db));
	}
out:
	sqlite3_finalize(st);
	free(rec);
}

int custody_verify_full(struct box *b, struct custody_report *rep,
                        struct logexport_report *xrep, struct sbx_err *e)
{
	struct logexport_opts o = { .keep_going = 1 };
	struct tpm_blob *pub = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	uint64_t unsigned_heads = 0;
	int fd = -1, r;

	memset(rep, 0, sizeof *rep);
	memset(xrep, 0, sizeof *xrep);
	fd = memfd_create("sealbox-verify", MFD_CLOEXEC);
	if (fd < 0)
		return sbx_fail(e, SBX_EIO, "memfd_create: %s", strerror(errno));
	r = write_export(b, fd, &rep->records, &rep->heads, e);
	if (r != 0)
		goto out;
	r = read_fd(fd, &buf, &len, e);
	if (r != 0)
		goto out;
	o.pin_appliance_id = b->id.appliance_id;
	(void)logexport_verify(buf, len, &o, xrep, NULL);
	for (int c = 0; c < LOGEXPORT_N_CHECKS; c++)
		if (xrep->check[c].status == LOGEXPORT_FAIL)
			problem(rep, "%s: %s", logexport_check_name((enum logexport_check)c),
			        xrep->check[c].why);
	rep->identity_ok = xrep->check[LOGEXPORT_IDENTITY].status == LOGEXPORT_PASS;
	rep->records_ok = xrep->check[LOGEXPORT_RECORDS].status == LOGEXPORT_PASS &&
	                  xrep->check[LOGEXPORT_COMPLETE].status == LOGEXPORT_PASS;
	rep->heads_ok = xrep->check[LOGEXPORT_HEADS].status == LOGEXPORT_PASS &&
	                xrep->check[LOGEXPORT_ROOTS].status == LOGEXPORT_PASS &&
	                xrep->check[LOGEXPORT_SIGNATURES].status == LOGEXPORT_PASS;

	if (count(b->db, "SELECT count(*) FROM heads WHERE sig IS NULL", &unsigned_heads, e) == 0 &&
	    unsigned_heads != 0)
		problem(rep, "%" PRIu64 " tree head(s) unsigned (restart the box to roll forward)",
		        unsigned_heads);

	/* The key in the TPM is the one the heads must be signed by: a
	 * database whose identity was swapped for another key shows here. */
	pub = calloc(1, sizeof *pub);
	if (pub == NULL) {
		r = SBX_ENOMEM;
		goto out;
	}
	if (b->tpm != NULL) {
		struct sbx_err te = { 0 };

		if (tpm_read_public(b->tpm, TPM_HANDLE_SIGN, pub, &te) != 0) {
			problem(rep, "cannot read the TPM's signing key: %s", te.msg);
		} else if (pub->len == b->id.sign_pub.len &&
		           memcmp(pub->b, b->id.sign_pub.b, pub->len) == 0) {
			rep->tpm_key_ok = 1;
		} else {
			problem(rep, "the database's identity is not this TPM's signing key");
		}
		if (tpm_counter_read(b->tpm, &rep->counter_tpm, &te) != 0) {
			problem(rep, "cannot read the TPM counter: %s", te.msg);
		} else {
			rep->counter_log = xrep->have_last_head ? xrep->last_head.counter : 0;
			rep->counter_ok = xrep->have_last_head && rep->counter_tpm == rep->counter_log;
			if (!rep->counter_ok)
				problem(rep, "TPM counter is %" PRIu64 ", the newest signed head is "
				        "anchored at %" PRIu64 "%s", rep->counter_tpm, rep->counter_log,
				        rep->counter_tpm > rep->counter_log ?
				        " (the database is older than the TPM: a restored copy?)" : "");
		}
	}
	check_index(b, rep, e);
	r = rep->problems == 0 ? 0 : SBX_EVERIFY;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(pub);
	return r;
}

int custody_verify(struct box *b, struct custody_report *rep, struct sbx_err *e)
{
	struct logexport_report *x = malloc(sizeof *x);
	int r;

	if (x == NULL)
		return SBX_ENOMEM;
	r = custody_verify_full(b, rep, x, e);
	free(x);
	return r;
}


int custody_export(struct box *b, const char *path, const char *operator_id,
                   struct custody_export_info *info, struct sbx_err *e)
{
	struct atomic_file af = { .fd = -1 };
	char hex[65];
	struct logrec *rec = NULL;
	uint8_t *buf = NULL, digest[32];
	size_t len = 0;
	uint64_t nr = 0, nh = 0;
	int r;

	rec = calloc(1, sizeof *rec);
	if (rec == NULL) {
		r = SBX_ENOMEM;
		goto out;
	}
	r = atomic_begin(&af, path, 0644, e);
	if (r != 0)
		goto out;
	r = write_export(b, af.fd, &nr, &nh, e);
	if (r != 0)
		goto out;
	/* Durable before its record names it. */
	if (fsync(af.fd) != 0) {
		r = sbx_fail(e, SBX_EIO, "fsync of the export %s failed: %s", path, strerror(errno));
		goto out;
	}
	r = read_fd(af.fd, &buf, &len, e);
	if (r != 0)
		goto out;
	hash_sha256(buf, len, digest);
	hash_hex(digest, 32, hex);
	/* The export's own record names the file's hash; it is the first
	 * record of the next export. */
	snprintf(rec->event, sizeof rec->event, "log.export");
	snprintf(rec->outcome, sizeof rec->outcome, "ok");
	snprintf(rec->operator_id, sizeof rec->operator_id, "%s", operator_id);
	snprintf(rec->detail, sizeof rec->detail, "tree_size=%" PRIu64 "\nheads=%" PRIu64
	         "\nsha256=%s", nr, nh, hex);
	r = custody_append(b, rec, 0, NULL, NULL, e);
	if (r != 0) {
		struct sbx_err ignore = { 0 };

		/* A record that may be in force names this file: keep it. */
		if (b->last_append != APPEND_NOT_COMMITTED)
			(void)atomic_commit(&af, &ignore);
		goto out;
	}
	r = atomic_commit(&af, e);
	if (r == 0 && info != NULL) {
		*info = (struct custody_export_info){ .records = nr, .heads = nh, .bytes = len,
		                                      .seq = rec->seq };
		memcpy(info->sha256, digest, 32);
	}
out:
	atomic_abort(&af);
	free(buf);
	free(rec);
	return r;
}

#include "appliance/custody.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "appliance/db.h"
#include "crypto/hash.h"
#include "crypto/merkle.h"
#include "crypto/sig.h"
#include "crypto/tpm.h"
#include "export/sth.h"

static int count_records(sqlite3 *db, uint64_t *n, struct sbx_err *e)
{
	sqlite3_stmt *st = NULL;
	int r = db_prepare(db, "SELECT count(*) FROM records", &st, e);

	if (r != 0)
		return r;
	if (sqlite3_step(st) == SQLITE_ROW)
		*n = (uint64_t)sqlite3_column_int64(st, 0);
	else
		r = sbx_fail(e, SBX_EIO, "database: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return r;
}

/* The leaf hashes of the first n records, recomputed from the canonical
 * bytes (the stored leaf column is an index, not trusted here). */
static int load_leaves(sqlite3 *db, uint64_t n, uint8_t (**out)[32], struct sbx_err *e)
{
	sqlite3_stmt *st = NULL;
	uint8_t (*leaves)[32] = NULL;
	uint64_t i = 0;
	int r, rc;

	*out = NULL;
	leaves = malloc((size_t)(n ? n : 1) * 32);
	if (leaves == NULL)
		return SBX_ENOMEM;
	r = db_prepare(db, "SELECT body FROM records WHERE seq < ?1 ORDER BY seq", &st, e);
	if (r != 0)
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)n);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && i < n) {
		r = merkle_leaf_hash(sqlite3_column_blob(st, 0),
		                     (size_t)sqlite3_column_bytes(st, 0), leaves[i]);
		if (r != 0)
			goto out;
		i++;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		r = sbx_fail(e, SBX_EIO, "database: reading the custody log: %s", sqlite3_errmsg(db));
		goto out;
	}
	if (i != n) {
		r = sbx_fail(e, SBX_EINTEGRITY, "custody log: expected %" PRIu64
		             " records, found %" PRIu64, n, i);
		goto out;
	}
	*out = leaves;
	leaves = NULL;   /* transferred */
	r = 0;
out:
	sqlite3_finalize(st);
	free(leaves);
	return r;
}

struct head_row {
	uint64_t tree_size, counter;
	int has_sig;
	struct sth sth;
	uint8_t body[STH_ENCODED_LEN];
	uint8_t sig[SIG_MAX_DER];
	size_t siglen;
};

/* The newest head; SBX_ENOENT if there is none. */
static int last_head(sqlite3 *db, struct head_row *h, struct sbx_err *e)
{
	sqlite3_stmt *st = NULL;
	int r = db_prepare(db, "SELECT tree_size, counter, body, sig FROM heads "
	                       "ORDER BY tree_size DESC LIMIT 1", &st, e);
	int rc;

	memset(h, 0, sizeof *h);
	if (r != 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		r = SBX_ENOENT;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		r = sbx_fail(e, SBX_EIO, "database: %s", sqlite3_errmsg(db));
		goto out;
	}
	h->tree_size = (uint64_t)sqlite3_column_int64(st, 0);
	h->counter = (uint64_t)sqlite3_column_int64(st, 1);
	if ((size_t)sqlite3_column_bytes(st, 2) != STH_ENCODED_LEN ||
	    sth_decode(sqlite3_column_blob(st, 2), STH_ENCODED_LEN, &h->sth) != 0) {
		r = sbx_fail(e, SBX_EINTEGRITY, "custody log: newest tree head is malformed");
		goto out;
	}
	memcpy(h->body, sqlite3_column_blob(st, 2), STH_ENCODED_LEN);
	if (sqlite3_column_type(st, 3) != SQLITE_NULL) {
		size_t n = (size_t)sqlite3_column_bytes(st, 3);

		if (n == 0 || n > SIG_MAX_DER) {
			r = sbx_fail(e, SBX_EINTEGRITY, "custody log: newest head signature is malformed");
			goto out;
		}
		memcpy(h->sig, sqlite3_column_blob(st, 3), n);
		h->siglen = n;
		h->has_sig = 1;
	}
	r = 0;
out:
	sqlite3_finalize(st);
	return r;
}

/* The counter value the log is anchored at: the newest head's, or the value
 * provisioning started from. */
static int log_counter(struct box *b, uint64_t *c, struct sbx_err *e)
{
	struct head_row h;
	int r = last_head(b->db, &h, e);

	if (r == 0) {
		*c = h.counter;
		return 0;
	}
	if (r != SBX_ENOENT)
		return r;
	return db_meta_get_u64(b->db, "counter_base", c, e);
}

/* The newest head's timestamp, 0 if there is none. */
static int last_time(struct box *b, uint64_t *ms, struct sbx_err *e)
{
	struct head_row h;
	int r = last_head(b->db, &h, e);

	*ms = 0;
	if (r == SBX_ENOENT)
		return 0;
	if (r == 0)
		*ms = h.sth.timestamp_ms;
	return r;
}

int custody_counter(struct box *b, uint64_t *counter, struct sbx_err *e)
{
	return log_counter(b, counter, e);
}

static int sign_head(struct box *b, uint64_t tree_size, const uint8_t body[STH_ENCODED_LEN],
                     struct sbx_err *e)
{
	uint8_t dg[32], sig[SIG_MAX_DER];
	size_t siglen = sizeof sig;
	sqlite3_stmt *st = NULL;
	int r;

	r = sig_digest(SIG_NS_STH, body, STH_ENCODED_LEN, dg);
	if (r != 0)
		return r;
	r = tpm_sign(b->tpm, dg, sig, &siglen, e);
	if (r != 0)
		return r;
	r = db_prepare(b->db, "UPDATE heads SET sig = ?1 WHERE tree_size = ?2", &st, e);
	if (r != 0)
		return r;
	sqlite3_bind_blob(st, 1, sig, (int)siglen, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)tree_size);
	r = db_step_done(b->db, st, e);
	sqlite3_finalize(st);
	return r;
}

static int insert_record(struct box *b, struct logrec *rec, uint64_t *tree_size,
                         uint8_t leaf[32], struct sbx_err *e)
{
	uint8_t *body = NULL;
	size_t len = 0;
	sqlite3_stmt *st = NULL;
	int r;

	r = count_records(b->db, &rec->seq, e);
	if (r != 0)
		goto out;
	r = logrec_encode(rec, &body, &len);
	if (r != 0) {
		r = sbx_fail(e, SBX_EINVAL, "custody record for %s cannot be encoded "
		             "(a field is too long or not UTF-8)", rec->event);
		goto out;
	}
	r = merkle_leaf_hash(body, len, leaf);
	if (r != 0)
		goto out;
	r = db_prepare(b->db, "INSERT INTO records(seq, body, leaf, time_ms, event, outcome,"
	                      " case_id, bundle_id) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)", &st, e);
	if (r != 0)
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)rec->seq);
	sqlite3_bind_blob(st, 2, body, (int)len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, leaf, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)rec->time_ms);
	sqlite3_bind_text(st, 5, rec->event, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, rec->outcome, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, rec->case_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, rec->bundle_id, -1, SQLITE_STATIC);
	r = db_step_done(b->db, st, e);
	*tree_size = rec->seq + 1;
out:
	sqlite3_finalize(st);
	free(body);
	return r;
}

/* The compact tree of the log so far, kept in meta so an append costs
 * O(log n), not a pass over every record.  It is only a cache: a head
 * built from a wrong frontier has a root that `log verify`, which
 * recomputes every root from the record bytes, rejects.  Absent (or of the
 * wrong size) it is rebuilt from the records. */
static int frontier_load(struct box *b, uint64_t n, struct merkle_frontier *f,
                         struct sbx_err *e)
{
	uint8_t *v = NULL, (*leaves)[32] = NULL;
	size_t len = 0;
	int r = db_meta_get(b->db, "frontier", &v, &len, e);

	if (r == 0 && len == sizeof *f) {
		memcpy(f, v, sizeof *f);
		free(v);
		if (f->size == n)
			return 0;
	} else {
		free(v);
		if (r != 0 && r != SBX_ENOENT)
			return r;
	}
	merkle_frontier_init(f);
	r = load_leaves(b->db, n, &leaves, e);
	if (r == 0)
		r = merkle_frontier_append_many(f, (const uint8_t (*)[32])leaves, n);
	free(leaves);
	return r;
}

static int insert_head(struct box *b, uint64_t tree_size, const uint8_t leaf[32],
                       uint64_t counter, uint64_t now, uint8_t body[STH_ENCODED_LEN],
                       struct sbx_err *e)
{
	struct merkle_frontier *f = malloc(sizeof *f);
	struct sth h;
	sqlite3_stmt *st = NULL;
	int r;

	memset(&h, 0, sizeof h);
	if (f == NULL)
		return SBX_ENOMEM;
	r = frontier_load(b, tree_size - 1, f, e);
	if (r == 0)
		r = merkle_frontier_append(f, leaf);
	if (r == 0)
		r = merkle_frontier_root(f, h.root);
	if (r == 0)
		r = db_meta_set(b->db, "frontier", f, sizeof *f, e);
	if (r != 0)
		goto out;
	memcpy(h.appliance_id, b->id.appliance_id, 32);
	h.tree_size = tree_size;
	h.timestamp_ms = now;
	h.counter = counter;
	sth_encode(&h, body);
	r = db_prepare(b->db, "INSERT INTO heads(tree_size, body, sig, counter) "
	                      "VALUES (?1, ?2, NULL, ?3)", &st, e);
	if (r != 0)
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)tree_size);
	sqlite3_bind_blob(st, 2, body, STH_ENCODED_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)counter);
	r = db_step_done(b->db, st, e);
out:
	sqlite3_finalize(st);
	free(f);
	return r;
}

/* anchor: 0 the counter stays, 1 it moves by one, REBASE it moves to one past
 * the TPM's current value (an auditor clearing an integrity alarm). */
#define ANCHOR_REBASE 2

static int append_internal(struct box *b, struct logrec *rec, int anchor,
                           int (*apply)(struct box *, void *, struct sbx_err *), void *arg,
                           struct sbx_err *e)
{
	uint8_t leaf[32], body[STH_ENCODED_LEN];
	uint64_t tree_size = 0, counter = 0, prev_ms = 0;
	int r;

	if (b->last_append != APPEND_NOT_COMMITTED)
		/* The previous record of this run may be in force without its
		 * counter step or signature: appending after it would anchor the
		 * wrong counter value.  The next start completes it first
		 * (custody_recover).  Found by the I/O-fault campaign. */
		return sbx_fail(e, SBX_ESTATE, "an earlier record of this run is incomplete; "
		                "the next start of the box completes it");
	if (b->tpm == NULL)
		return sbx_fail(e, SBX_EINVAL, "internal: custody_append without a TPM");
	/* An alarm freezes the box: only the refusal itself is recorded. */
	if (b->alarm && strcmp(rec->outcome, "ok") == 0 && anchor != ANCHOR_REBASE)
		return sbx_fail(e, SBX_EINTEGRITY, "integrity alarm: %s; the box refuses every "
		                "change until an auditor clears it", b->alarm_reason);
	/* Under an alarm the log and the counter already disagree: records
	 * (refusals, the alarm itself) are still signed, but only the
	 * auditor's clearing moves the counter again. */
	if (b->alarm && anchor != ANCHOR_REBASE)
		anchor = 0;
	rec->time_ms = box_now_ms();
	r = tpm_clock(b->tpm, &rec->tpm_clock_ms, &rec->tpm_reset_count,
	              &rec->tpm_restart_count, e);
	if (r != 0)
		return r;
	memcpy(rec->appliance_id, b->id.appliance_id, 32);
	memcpy(rec->policy_hash, b->policy.hash, 32);

	r = db_begin(b->db, e);
	if (r != 0)
		return r;
	if (apply != NULL) {
		r = apply(b, arg, e);
		if (r != 0)
			goto fail;
	}
	r = log_counter(b, &counter, e);
	if (r != 0)
		goto fail;
	/* Record times never go backwards: a wall clock stepped back (NTP,
	 * an operator) is held at the last recorded time until it catches up.
	 * The TPM clock in each record shows the true elapsed time. */
	r = last_time(b, &prev_ms, e);
	if (r != 0)
		goto fail;
	if (rec->time_ms < prev_ms)
		rec->time_ms = prev_ms;
	if (anchor == ANCHOR_REBASE) {
		r = tpm_counter_read(b->tpm, &counter, e);
		if (r != 0)
			goto fail;
	}
	if (anchor)
		counter++;
	r = insert_record(b, rec, &tree_size, leaf, e);
	if (r != 0)
		goto fail;
	r = insert_head(b, tree_size, leaf, counter, rec->time_ms, body, e);
	if (r != 0)
		goto fail;
	r = db_commit(b->db, e);
	if (r != 0) {
		/* After a failed COMMIT (a failed journal sync, say) SQLite may or
		 * may not have committed; never retried, never assumed undone. */
		b->last_append = APPEND_UNDECIDED;
		sbx_err_note(e, "the change may or may not be in force: the next sealbox command "
		             "settles it (sealbox log show tells which)");
		goto fail;
	}
	b->last_append = APPEND_COMMITTED;

	/* The record is durable.  From here a failure is rolled forward at the
	 * next start, never rolled back. */
	/* The new value is not read back (one TPM command less per
	 * operation): every start compares the counter with the newest head
	 * (custody_recover) before it changes anything, so a counter moved
	 * by anyone else raises the alarm there. */
	if (anchor) {
		r = tpm_counter_bump(b->tpm, e);
		if (r != 0)
			goto recorded;
	}
	r = sign_head(b, tree_size, body, e);
	if (r == 0)
		b->last_append = APPEND_NOT_COMMITTED;   /* complete: appending may go on */
recorded:
	if (r != 0)
		sbx_err_note(e, "the change is recorded and in force; the next sealbox command "
		             "completes its record");
	return r;
fail:
	db_rollback(b->db);
	return r;
}

int custody_append(struct box *b, struct logrec *rec, int anchor,
                   int (*apply)(struct box *, void *, struct sbx_err *), void *arg,
                   struct sbx_err *e)
{
	return append_internal(b, rec, anchor ? 1 : 0, apply, arg, e);
}

int custody_rebase(struct box *b, struct logrec *rec, struct sbx_err *e)
{
	int r = append_internal(b, rec, ANCHOR_REBASE, NULL, NULL, e);

	if (r == 0) {
		b->alarm = 0;
		b->alarm_reason[0] = '\0';
	}
	return r;
}

int custody_deny(struct box *b, const char *event, const char *operator_id,
                 const char *case_id, const char *reason, struct sbx_err *e)
{
	struct logrec *rec = calloc(1, sizeof *rec);
	int r;

	if (rec == NULL)
		return SBX_ENOMEM;
	snprintf(rec->event, sizeof rec->event, "%s", event);
	snprintf(rec->outcome, sizeof rec->outcome, "denied");
	snprintf(rec->operator_id, sizeof rec->operator_id, "%s", operator_id ? operator_id : "");
	snprintf(rec->case_id, sizeof rec->case_id, "%s", case_id ? case_id : "");
	snprintf(rec->reason, sizeof rec->reason, "%s", reason ? reason : "");
	r = custody_append(b, rec, 1, NULL, NULL, e);
	free(rec);
	return r;
}

static void raise_alarm(struct box *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void raise_alarm(struct box *b, const char *fmt, ...)
{
	va_list ap;

	b->alarm = 1;
	va_start(ap, fmt);
	vsnprintf(b->alarm_reason, sizeof b->alarm_reason, fmt, ap);
	va_end(ap);
}

int custody_recover(struct box *b, struct sbx_err *e)
{
	struct head_row h;
	uint64_t n = 0, tpmc = 0, got = 0;
	int r;

	r = count_records(b->db, &n, e);
	if (r != 0)
		return r;
	r = last_head(b->db, &h, e);
	if (r == SBX_ENOENT) {
		if (n != 0)
			raise_alarm(b, "%" PRIu64 " records but no tree head", n);
		return 0;   /* provisioning appends the first record */
	}
	if (r != 0)
		return r;
	if (h.tree_size != n) {
		raise_alarm(b, "the newest tree head covers %" PRIu64 " records, the log holds %" PRIu64,
		            h.tree_size, n);
		return 0;
	}
	r = tpm_counter_read(b->tpm, &tpmc, e);
	if (r != 0)
		return r;
	if (!h.has_sig && h.counter == tpmc + 1) {
		/* Crashed after the commit, before the increment: roll forward. */
		r = tpm_counter_increment(b->tpm, &got, e);
		if (r != 0)
			return r;
		tpmc = got;
	}
	if (h.counter < tpmc) {
		raise_alarm(b, "TPM counter is %" PRIu64 " but the log's newest head is anchored at %"
		            PRIu64 ": the database is older than the TPM (restored copy?)", tpmc, h.counter);
		return 0;
	}
	if (h.counter > tpmc) {
		raise_alarm(b, "TPM counter is %" PRIu64 ", behind the log's %" PRIu64
		            " (a different or reset TPM?)", tpmc, h.counter);
		return 0;
	}
	if (!h.has_sig)
		return sign_head(b, h.tree_size, h.body, e);
	return 0;
}

int custody_foreach(struct box *b, int (*fn)(void *, const struct logrec *, const uint8_t leaf[32]),
                    void *arg, struct sbx_err *e)
{
	sqlite3_stmt *st = NULL;
	struct logrec *rec = NULL;
	uint8_t leaf[32];
	int r, rc;

	rec = malloc(sizeof *rec);
	if (rec == NULL)
		return SBX_ENOMEM;
	r = db_prepare(b->db, "SELECT seq, body FROM records ORDER BY seq", &st, e);
	if (r != 0)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const uint8_t *body = sqlite3_column_blob(st, 1);
		size_t len = (size_t)sqlite3_column_bytes(st, 1);

		if (logrec_decode(body, len, rec) != 0) {
			r = sbx_fail(e, SBX_EINTEGRITY, "custody log: record %lld is malformed",
			             (long long)sqlite3_column_int64(st, 0));
			goto out;
		}
		merkle_leaf_hash(body, len, leaf);
		r = fn(arg, rec, leaf);
		if (r != 0)
			goto out;
	}
	if (rc != SQLITE_DONE)
		r = sbx_fail(e, SBX_EIO, "database: %s", sqlite3_errmsg(b->db));
out:
	sqlite3_finalize(st);
	free(rec);
	return r;
}

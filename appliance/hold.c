#include "appliance/hold.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/bundles.h"
#include "appliance/custody.h"
#include "appliance/db.h"
#include "export/logrec.h"

const char *hold_status(const struct hold *h, uint64_t now)
{
	if (h->closed)
		return "closed";
	return now >= h->expires_ms ? "expired" : "open";
}

static void copy_text(char *dst, size_t n, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	snprintf(dst, n, "%s", t ? (const char *)t : "");
}

static void row_to_hold(sqlite3_stmt *st, struct hold *h)
{
	memset(h, 0, sizeof *h);
	copy_text(h->case_id, sizeof h->case_id, st, 0);
	copy_text(h->authority, sizeof h->authority, st, 1);
	copy_text(h->purpose, sizeof h->purpose, st, 2);
	copy_text(h->operator_id, sizeof h->operator_id, st, 3);
	h->opened_ms = (uint64_t)sqlite3_column_int64(st, 4);
	h->expires_ms = (uint64_t)sqlite3_column_int64(st, 5);
	h->renewed_ms = (uint64_t)sqlite3_column_int64(st, 6);
	h->closed_ms = (uint64_t)sqlite3_column_int64(st, 7);
	h->closed = strcmp((const char *)sqlite3_column_text(st, 8), "closed") == 0;
}

#define HOLD_COLS "case_id, authority, purpose, operator, opened_ms, expires_ms, " \
                  "renewed_ms, closed_ms, state"

int hold_get(struct box *b, const char *case_id, struct hold *h, struct sbx_err *e)
{
	sqlite3_stmt *st = NULL;
	int r = db_prepare(b->db, "SELECT " HOLD_COLS " FROM holds WHERE case_id = ?1", &st, e);
	int rc;

	if (r != 0)
		return r;
	sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		row_to_hold(st, h);
	else if (rc == SQLITE_DONE)
		r = sbx_fail(e, SBX_ENOENT, "no hold for case '%s'", case_id);
	else
		r = sbx_fail(e, SBX_EIO, "database: %s", sqlite3_errmsg(b->db));
	sqlite3_finalize(st);
	return r;
}

int hold_require_open(struct box *b, const char *case_id, uint64_t now, struct hold *h,
                      struct sbx_err *e)
{
	int r = hold_get(b, case_id, h, e);

	if (r != 0)
		return r;
	if (h->closed)
		return sbx_fail(e, SBX_EPOLICY, "the hold on case '%s' is closed", case_id);
	if (now >= h->expires_ms)
		return sbx_fail(e, SBX_EPOLICY, "the hold on case '%s' expired; renew it with "
		                "'sealbox hold renew' or close it", case_id);
	return 0;
}

int hold_foreach(struct box *b, int (*fn)(void *, const struct hold *), void *arg,
                 struct sbx_err *e)
{
	sqlite3_stmt *st = NULL;
	struct hold h;
	int r = db_prepare(b->db, "SELECT " HOLD_COLS " FROM holds ORDER BY opened_ms, case_id",
	                   &st, e);
	int rc;

	if (r != 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_to_hold(st, &h);
		r = fn(arg, &h);
		if (r != 0)
			goto out;
	}
	if (rc != SQLITE_DONE)
		r = sbx_fail(e, SBX_EIO, "database: %s", sqlite3_errmsg(b->db));
out:
	sqlite3_finalize(st);
	return r;
}

/* Refuses and logs the refusal; returns the refusal's code (or the logging
 * failure's, which is worse). */
static int refuse(struct box *b, const char *event, const char *operator_id,
                  const char *case_id, int code, struct sbx_err *e)
{
	int r = custody_deny(b, event, operator_id, case_id, e->msg, NULL);

	return r != 0 ? r : code;
}

struct hold_change {
	const char *sql;
	const char *case_id, *authority, *purpose, *operator_id;
	uint64_t now, expires;
};

static int apply_change(struct box *b, void *arg, struct sbx_err *e)
{
	struct hold_change *c = arg;
	sqlite3_stmt *st = NULL;
	int r = db_prepare(b->db, c->sql, &st, e);

	if (r != 0)
		return r;
	sqlite3_bind_text(st, 1, c->case_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c->authority, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, c->purpose, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, c->operator_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)c->now);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)c->expires);
	r = db_step_done(b->db, st, e);
	if (r == 0 && sqlite3_changes(b->db) != 1)
		r = sbx_fail(e, SBX_ESTATE, "hold on case '%s' changed underneath", c->case_id);
	sqlite3_finalize(st);
	return r;
}

static int record(struct box *b, const char *event, const char *operator_id,
                  const char *case_id, const char *detail, struct hold_change *c,
                  struct sbx_err *e)
{
	struct logrec *rec = calloc(1, sizeof *rec);
	int r;

	if (rec == NULL)
		return SBX_ENOMEM;
	snprintf(rec->event, sizeof rec->event, "%s", event);
	snprintf(rec->outcome, sizeof rec->outcome, "ok");
	snprintf(rec->operator_id, sizeof rec->operator_id, "%s", operator_id);
	snprintf(rec->case_id, sizeof rec->case_id, "%s", case_id);
	snprintf(rec->detail, sizeof rec->detail, "%s", detail);
	r = custody_append(b, rec, 1, apply_change, c, e);
	free(rec);
	return r;
}

static int check_days(struct box *b, unsigned days, struct sbx_err *e)
{
	if (days == 0 || days > b->policy.hold_max_days)
		return sbx_fail(e, SBX_EPOLICY, "a hold lasts 1 to %u days under the policy in force "
		                "(asked for %u)", b->policy.hold_max_days, days);
	return 0;
}

int hold_open(struct box *b, const char *case_id, const char *authority, const char *purpose,
              const char *operator_id, unsigned days, struct sbx_err *e)
{
	struct hold h;
	struct hold_change c = { 0 };
	struct sbx_err tmp = { 0 };
	uint64_t now = box_now_ms();
	char detail[512];
	int r;

	if (days == 0)
		days = b->policy.hold_max_days;
	if (authority == NULL || *authority == '\0') {
		sbx_fail(e, SBX_EPOLICY, "a hold needs a legal authority (--authority: warrant or "
		         "court-order reference)");
		return refuse(b, "hold.open", operator_id, case_id, SBX_EPOLICY, e);
	}
	r = policy_check_purpose(&b->policy, purpose, e);
	if (r != 0)
		return refuse(b, "hold.open", operator_id, case_id, SBX_EPOLICY, e);
	r = check_days(b, days, e);
	if (r != 0)
		return refuse(b, "hold.open", operator_id, case_id, SBX_EPOLICY, e);
	r = hold_get(b, case_id, &h, &tmp);
	if (r == 0) {
		if (h.closed)
			sbx_fail(e, SBX_ESTATE, "case '%s' was closed and its evidence purged; a closed "
			         "case is never reopened (use a new case number)", case_id);
		else
			sbx_fail(e, SBX_ESTATE, "case '%s' already has an open hold (renew it instead)",
			         case_id);
		return refuse(b, "hold.open", operator_id, case_id, SBX_ESTATE, e);
	}
	if (r != SBX_ENOENT)
		return sbx_fail(e, r, "%s", tmp.msg);
	c.sql = "INSERT INTO holds(case_id, authority, purpose, operator, opened_ms, expires_ms,"
	        " state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open')";
	c.case_id = case_id;
	c.authority = authority;
	c.purpose = purpose;
	c.operator_id = operator_id;
	c.now = now;
	c.expires = now + (uint64_t)days * HOLD_DAY_MS;
	snprintf(detail, sizeof detail, "authority=%s\npurpose=%s\ndays=%u\nexpires_ms=%" PRIu64,
	         authority, purpose, days, c.expires);
	return record(b, "hold.open", operator_id, case_id, detail, &c, e);
}

int hold_renew(struct box *b, const char *case_id, const char *authority,
               const char *operator_id, unsigned days, struct sbx_err *e)
{
	struct hold h;
	struct hold_change c = { 0 };
	uint64_t now = box_now_ms();
	char detail[512];
	int r;

	if (days == 0)
		days = b->policy.hold_max_days;
	r = hold_get(b, case_id, &h, e);
	if (r != 0)
		return r == SBX_ENOENT ? refuse(b, "hold.renew", operator_id, case_id, r, e) : r;
	if (authority == NULL || *authority == '\0') {
		sbx_fail(e, SBX_EPOLICY, "renewing a hold needs a legal authority (--authority)");
		return refuse(b, "hold.renew", operator_id, case_id, SBX_EPOLICY, e);
	}
	/* A closed hold is a state, as for a second close (exit 5); an
	 * expired one a refusal by policy: it is not revived, its evidence is
	 * due for purging. */
	if (h.closed) {
		sbx_fail(e, SBX_ESTATE, "the hold on case '%s' is closed; a closed case cannot be "
		         "renewed", case_id);
		return refuse(b, "hold.renew", operator_id, case_id, SBX_ESTATE, e);
	}
	r = hold_require_open(b, case_id, now, &h, e);
	if (r != 0)
		return refuse(b, "hold.renew", operator_id, case_id, r, e);
	r = policy_check_purpose(&b->policy, h.purpose, e);
	if (r != 0)
		return refuse(b, "hold.renew", operator_id, case_id, r, e);
	r = check_days(b, days, e);
	if (r != 0)
		return refuse(b, "hold.renew", operator_id, case_id, r, e);
	c.sql = "UPDATE holds SET authority = ?2, renewed_ms = ?5, expires_ms = ?6 "
	        "WHERE case_id = ?1 AND state = 'open' AND ?3 IS NOT NULL AND ?4 IS NOT NULL";
	c.case_id = case_id;
	c.authority = authority;
	c.purpose = h.purpose;
	c.operator_id = operator_id;
	c.now = now;
	c.expires = now + (uint64_t)days * HOLD_DAY_MS;
	snprintf(detail, sizeof detail, "authority=%s\nprevious_authority=%s\ndays=%u\n"
	         "expires_ms=%" PRIu64, authority, h.authority, days, c.expires);
	return record(b, "hold.renew", operator_id, case_id, detail, &c, e);
}

struct close_ctx {
	struct hold_change c;
};

/* Closing a hold and destroying the case's keys are one transaction: the
 * record of the close is also the record of the crypto-erase. */
static int apply_close(struct box *b, void *arg, struct sbx_err *e)
{
	struct close_ctx *cc = arg;
	int r = apply_change(b, &cc->c, e);

	if (r == 0)
		r = bundles_purge_keys(b, cc->c.case_id, cc->c.now, e);
	return r;
}

struct purge_item {
	char id[65], ct[65];
	uint64_t reads;
};

/* The case's purged bundles that have no purge record yet, oldest first:
 * after a close, all of them; after a close that crashed on the way, the
 * rest.  One query serves both. */
static int unrecorded_purges(struct box *b, const char *case_id, struct purge_item **out,
                             size_t *n, struct sbx_err *e)
{
	sqlite3_stmt *st = NULL;
	struct purge_item *items = NULL;
	size_t cap = 0;
	int r, rc;

	*out = NULL;
	*n = 0;
	r = db_prepare(b->db, "SELECT id, ciphertext_sha256, reads FROM bundles b "
	                      "WHERE case_id = ?1 AND state = 'purged' AND NOT EXISTS "
	                      "(SELECT 1 FROM records r WHERE r.case_id = ?1 AND "
	                      "r.event = 'purge' AND r.bundle_id = b.id) ORDER BY sealed_ms, id",
	               &st, e);
	if (r != 0)
		return r;
	sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			struct purge_item *more = realloc(items, (cap ? 2 * cap : 16) * sizeof *items);

			if (more == NULL) {
				r = SBX_ENOMEM;
				goto out;
			}
			items = more;
			cap = cap ? 2 * cap : 16;
		}
		copy_text(items[*n].id, sizeof items[*n].id, st, 0);
		copy_text(items[*n].ct, sizeof items[*n].ct, st, 1);
		items[*n].reads = (uint64_t)sqlite3_column_int64(st, 2);
		(*n)++;
	}
	if (rc != SQLITE_DONE)
		r = sbx_fail(e, SBX_EIO, "database: %s", sqlite3_errmsg(b->db));
out:
	sqlite3_finalize(st);
	if (r == 0) {
		*out = items;
	} else {
		free(items);
		*n = 0;
	}
	return r;
}

/* One "purge" record per bundle: its id, hashes and counts, never content. */
static int record_purges(struct box *b, const char *case_id, const char *operator_id,
                         const struct purge_item *items, size_t n, struct sbx_err *e)
{
	struct logrec *rec = calloc(1, sizeof *rec);
	int r = 0;

	if (rec == NULL)
		return SBX_ENOMEM;
	for (size_t i = 0; r == 0 && i < n; i++) {
		memset(rec, 0, sizeof *rec);
		snprintf(rec->event, sizeof rec->event, "purge");
		snprintf(rec->outcome, sizeof rec->outcome, "ok");
		snprintf(rec->operator_id, sizeof rec->operator_id, "%s", operator_id);
		snprintf(rec->case_id, sizeof rec->case_id, "%s", case_id);
		snprintf(rec->bundle_id, sizeof rec->bundle_id, "%s", items[i].id);
		snprintf(rec->detail, sizeof rec->detail, "ciphertext_sha256=%s\nreads=%" PRIu64 "\n"
		         "method=crypto-erase (wrapped content key destroyed, then file deleted)",
		         items[i].ct, items[i].reads);
		/* Anchor the last one: the close itself is already anchored. */
		r = custody_append(b, rec, i + 1 == n, NULL, NULL, e);
	}
	free(rec);
	return r;
}

/* After the crypto-erase committed: delete the files, then record each
 * purge.  The close and the recovery after a crash share it. */
static int finish_purge(struct box *b, const char *case_id, const char *operator_id,
                        struct sbx_err *e)
{
	struct purge_item *items = NULL;
	size_t n = 0;
	int r = bundles_delete_purged_files(b, case_id, e);

	if (r == 0)
		r = unrecorded_purges(b, case_id, &items, &n, e);
	if (r == 0)
		r = record_purges(b, case_id, operator_id, items, n, e);
	free(items);
	return r;
}

int hold_close(struct box *b, const char *case_id, const char *operator_id, struct sbx_err *e)
{
	struct hold h;
	struct close_ctx cc;
	struct logrec *rec = NULL;
	uint64_t now = box_now_ms();
	int r;

	memset(&cc, 0, sizeof cc);
	r = hold_get(b, case_id, &h, e);
	if (r != 0)
		return r == SBX_ENOENT ? refuse(b, "hold.close", operator_id, case_id, r, e) : r;
	if (h.closed) {
		sbx_fail(e, SBX_ESTATE, "the hold on case '%s' is already closed", case_id);
		return refuse(b, "hold.close", operator_id, case_id, SBX_ESTATE, e);
	}
	cc.c.sql = "UPDATE holds SET state = 'closed', closed_ms = ?5 "
	           "WHERE case_id = ?1 AND state = 'open' AND ?2 IS NOT NULL AND ?3 IS NOT NULL "
	           "AND ?4 IS NOT NULL AND ?6 IS NOT NULL";
	cc.c.case_id = case_id;
	cc.c.authority = h.authority;
	cc.c.purpose = h.purpose;
	cc.c.operator_id = operator_id;
	cc.c.now = now;
	cc.c.expires = h.expires_ms;
	rec = calloc(1, sizeof *rec);
	if (rec == NULL)
		return SBX_ENOMEM;
	snprintf(rec->event, sizeof rec->event, "hold.close");
	snprintf(rec->outcome, sizeof rec->outcome, "ok");
	snprintf(rec->operator_id, sizeof rec->operator_id, "%s", operator_id);
	snprintf(rec->case_id, sizeof rec->case_id, "%s", case_id);
	snprintf(rec->detail, sizeof rec->detail, "status_before=%s", hold_status(&h, now));
	r = custody_append(b, rec, 1, apply_close, &cc, e);
	free(rec);
	if (r != 0)
		goto out;
	/* The keys are gone and that is committed; the rest is the
	 * roll-forward the next start would also do. */
	r = finish_purge(b, case_id, operator_id, e);
out:
	return r;
}

/* The close's operator, from its own record (the holds table keeps only the
 * operator who opened the hold). */
static int close_operator(struct box *b, const char *case_id, char *out, size_t outlen,
                          struct sbx_err *e)
{
	sqlite3_stmt *st = NULL;
	struct logrec *rec = NULL;
	int r, rc;

	r = db_prepare(b->db, "SELECT body FROM records WHERE case_id = ?1 AND "
	                      "event = 'hold.close' AND outcome = 'ok' ORDER BY seq DESC LIMIT 1",
	               &st, e);
	if (r != 0)
		return r;
	sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = sbx_fail(e, SBX_ESTATE, "case '%s': purged bundles but no hold.close record",
		             case_id);
		goto out;
	}
	rec = malloc(sizeof *rec);
	if (rec == NULL) {
		r = SBX_ENOMEM;
		goto out;
	}
	if (logrec_decode(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
	                  rec) != 0) {
		r = sbx_fail(e, SBX_EFORMAT, "case '%s': the hold.close record does not decode",
		             case_id);
		goto out;
	}
	snprintf(out, outlen, "%s", rec->operator_id);
	r = 0;
out:
	sqlite3_finalize(st);
	free(rec);
	return r;
}

/* A close commits the crypto-erase first and appends the purge records
 * after deleting the files; a crash in between leaves purged bundles with
 * no purge record.  The next start finishes it.  Nothing can be appended
 * in between (recovery runs before any command), so only the newest
 * non-purge record can be such a close: the check costs a short walk back
 * over purge records and one indexed look-up. */
int hold_recover_purges(struct box *b, struct sbx_err *e)
{
	sqlite3_stmt *st = NULL;
	char case_id[LOGREC_MAX_SHORT + 1] = "", op[LOGREC_MAX_SHORT + 1];
	struct purge_item *items = NULL;
	size_t n = 0;
	int r, rc;

	r = db_prepare(b->db, "SELECT event, case_id FROM records WHERE event != 'purge' "
	                      "ORDER BY seq DESC LIMIT 1", &st, e);
	if (r != 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "hold.close") == 0)
		copy_text(case_id, sizeof case_id, st, 1);
	sqlite3_finalize(st);
	if (case_id[0] == '\0')
		return 0;
	r = unrecorded_purges(b, case_id, &items, &n, e);
	if (r == 0 && n > 0)
		r = close_operator(b, case_id, op, sizeof op, e);
	if (r == 0 && n > 0)
		r = finish_purge(b, case_id, op, e);
	free(items);
	return r;
}

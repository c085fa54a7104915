#include "export/verify_link.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "crypto/hash.h"
#include "crypto/merkle.h"
#include "crypto/sig.h"
#include "export/logexport.h"
#include "export/logrec.h"
#include "export/wire.h"

/* Where the records and the heads start in an export.  The export has
 * already passed logexport_verify, but every length is checked again: this
 * walk must be safe on any bytes. */
struct layout {
	uint64_t n_records, n_heads;
	size_t records_off, heads_off;
};

#define EXPORT_TRAILER 32

static int walk(const uint8_t *b, size_t len, struct layout *l, struct sbx_err *e)
{
	struct wire_r r;
	size_t n;
	uint8_t magic[4];

	if (len < 5 + EXPORT_TRAILER)
		return sbx_fail(e, SBX_EFORMAT, "log export: too short");
	wire_r_init(&r, b, len - EXPORT_TRAILER);
	wire_get_fixed(&r, magic, 4);
	if (r.err != 0 || memcmp(magic, "SBXL", 4) != 0 || wire_get_u8(&r) != LOGEXPORT_VERSION)
		return sbx_fail(e, SBX_EFORMAT, "log export: not a version 1 export");
	wire_get_bytes32(&r, LOGEXPORT_MAX_IDENTITY, &n);
	l->n_records = wire_get_u64(&r);
	l->records_off = r.off;
	if (r.err != 0 || l->n_records > LOGEXPORT_MAX_RECORDS)
		return sbx_fail(e, SBX_EFORMAT, "log export: bad record count");
	for (uint64_t i = 0; i < l->n_records && r.err == 0; i++)
		wire_get_bytes32(&r, LOGREC_MAX_ENCODED, &n);
	l->n_heads = wire_get_u64(&r);
	l->heads_off = r.off;
	if (r.err != 0 || l->n_heads > LOGEXPORT_MAX_HEADS)
		return sbx_fail(e, SBX_EFORMAT, "log export: bad head count");
	for (uint64_t i = 0; i < l->n_heads && r.err == 0; i++) {
		wire_get_raw(&r, STH_ENCODED_LEN);
		wire_get_bytes32(&r, SIG_MAX_DER, &n);
	}
	if (wire_r_end(&r) != 0)
		return sbx_fail(e, SBX_EFORMAT, "log export: layout does not add up");
	return 0;
}

__attribute__((format(printf, 3, 4)))
static void say(char *what, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (cap == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(what, cap, fmt, ap);
	va_end(ap);
}

int vlink_head(const uint8_t *exp, size_t exp_len, const uint8_t head[static STH_ENCODED_LEN],
               char *what, size_t what_cap, struct sbx_err *e)
{
	struct layout l;
	struct wire_r r;
	struct merkle_frontier *fr = NULL;
	struct sth h, first, last;
	const uint8_t *lastp = NULL;
	uint8_t root[32];
	size_t n;
	int r_ = SBX_EVERIFY, have_first = 0;

	say(what, what_cap, "%s", "");
	if (sth_decode(head, STH_ENCODED_LEN, &h) != 0) {
		r_ = sbx_fail(e, SBX_EFORMAT, "the custody head does not decode");
		goto out;
	}
	r_ = walk(exp, exp_len, &l, e);
	if (r_ != 0)
		goto out;
	wire_r_init(&r, exp, exp_len - EXPORT_TRAILER);
	r.off = l.heads_off;
	for (uint64_t i = 0; i < l.n_heads; i++) {
		const uint8_t *p = wire_get_raw(&r, STH_ENCODED_LEN);

		wire_get_bytes32(&r, SIG_MAX_DER, &n);
		if (p == NULL)
			break;
		lastp = p;
		if (!have_first) {
			have_first = sth_decode(p, STH_ENCODED_LEN, &first) == 0;
			if (have_first && CRYPTO_memcmp(first.appliance_id, h.appliance_id, 32) != 0) {
				r_ = sbx_fail(e, SBX_EVERIFY, "the custody head is from another box than the log export");
				goto out;
			}
		}
		if (memcmp(p, head, STH_ENCODED_LEN) == 0) {
			say(what, what_cap, "the custody head (%" PRIu64 " records, counter %" PRIu64
			    ") is tree head %" PRIu64 " of the export's %" PRIu64, h.tree_size,
			    h.counter, i + 1, l.n_heads);
			r_ = 0;
			goto out;
		}
	}
	if (h.tree_size == 0) {
		r_ = sbx_fail(e, SBX_EVERIFY, "the custody head covers no record");
		goto out;
	}
	/* A head that covers more records than the export but is behind the
	 * export's last head (a lower counter, an earlier time) is not newer:
	 * the box signed a longer history and the export has lost it. */
	if (h.tree_size > l.n_records && lastp != NULL &&
	    sth_decode(lastp, STH_ENCODED_LEN, &last) == 0 &&
	    (h.counter < last.counter || h.timestamp_ms < last.timestamp_ms)) {
		r_ = sbx_fail(e, SBX_EVERIFY, "the custody head covers %" PRIu64 " records (counter %"
		              PRIu64 "), but the export's later head (counter %" PRIu64 ") covers only %"
		              PRIu64 ": the log was rolled back or forked", h.tree_size, h.counter,
		              last.counter, l.n_records);
		goto out;
	}
	/* Newer than the export: nothing to compare it with, which says
	 * nothing against either file. */
	if (h.tree_size > l.n_records) {
		r_ = sbx_fail(e, SBX_ESTATE, "the custody file is newer than the log export (its head"
		              " covers %" PRIu64 " records, the export %" PRIu64 "): verify against an"
		              " export made after the custody file", h.tree_size, l.n_records);
		goto out;
	}
	/* Not among the heads: it is still consistent with the export if it
	 * commits to the same first tree_size records. */
	fr = malloc(sizeof *fr);
	if (fr == NULL) {
		r_ = sbx_fail(e, SBX_ENOMEM, "out of memory");
		goto out;
	}
	merkle_frontier_init(fr);
	wire_r_init(&r, exp, exp_len - EXPORT_TRAILER);
	r.off = l.records_off;
	for (uint64_t i = 0; i < h.tree_size; i++) {
		const uint8_t *p = wire_get_bytes32(&r, LOGREC_MAX_ENCODED, &n);
		uint8_t leaf[32];

		if (p == NULL || merkle_leaf_hash(p, n, leaf) != 0 ||
		    merkle_frontier_append(fr, leaf) != 0) {
			r_ = sbx_fail(e, SBX_EFORMAT, "log export: record %" PRIu64 " unreadable", i);
			goto out;
		}
	}
	if (merkle_frontier_root(fr, root) != 0) {
		r_ = sbx_fail(e, SBX_ECRYPTO, "hashing failed");
		goto out;
	}
	if (CRYPTO_memcmp(root, h.root, 32) != 0) {
		r_ = sbx_fail(e, SBX_EVERIFY, "the custody head's root is not the tree of the export's"
		              " first %" PRIu64 " records: the bundle's log and this log disagree",
		              h.tree_size);
		goto out;
	}
	say(what, what_cap, "the custody head (%" PRIu64 " records) is not one of the export's heads,"
	    " but its root is the tree of the export's first %" PRIu64 " records", h.tree_size,
	    h.tree_size);
	r_ = 0;
out:
	free(fr);
	return r_;
}

int vlink_records(const uint8_t *exp, size_t exp_len, const struct bundle_custody *c,
                  int within, size_t *beyond, char *what, size_t what_cap, struct sbx_err *e)
{
	struct layout l;
	struct wire_r r;
	size_t matched = 0, want = 0;
	int rc;

	say(what, what_cap, "%s", "");
	*beyond = 0;
	rc = walk(exp, exp_len, &l, e);
	if (rc != 0)
		return rc;
	for (size_t k = 0; k < c->n; k++) {
		if (c->rec[k].leaf_index < l.n_records) {
			want++;
		} else if (within) {
			(*beyond)++;
		} else {
			return sbx_fail(e, SBX_EVERIFY, "custody record %zu is at leaf %" PRIu64
			                ", beyond the export's %" PRIu64 " records", k + 1,
			                c->rec[k].leaf_index, l.n_records);
		}
	}
	wire_r_init(&r, exp, exp_len - EXPORT_TRAILER);
	r.off = l.records_off;
	for (uint64_t i = 0; i < l.n_records && matched < want; i++) {
		size_t n;
		const uint8_t *p = wire_get_bytes32(&r, LOGREC_MAX_ENCODED, &n);

		if (p == NULL)
			return sbx_fail(e, SBX_EFORMAT, "log export: record %" PRIu64 " unreadable", i);
		for (size_t k = 0; k < c->n; k++) {
			if (c->rec[k].leaf_index != i)
				continue;
			if (n != c->rec[k].record_len || memcmp(p, c->rec[k].record, n) != 0)
				return sbx_fail(e, SBX_EVERIFY, "custody record %zu differs from the export's"
				                " record %" PRIu64, k + 1, i);
			matched++;
		}
	}
	if (matched != want)
		return sbx_fail(e, SBX_EVERIFY, "only %zu of %zu custody records found in the export",
		                matched, want);
	say(what, what_cap, "%zu custody record%s identical to the export's at the same index%s",
	    want, want == 1 ? "" : "s", want == 1 ? "" : "es");
	return 0;
}

int vlink_ingest(const uint8_t *exp, size_t exp_len, const uint8_t bundle_id[static 32],
                 const struct bundle_manifest *m, char *what, size_t what_cap,
                 struct sbx_err *e)
{
	struct layout l;
	struct wire_r r;
	struct logrec *rec = NULL;
	char idhex[65];
	uint64_t found = 0, seq = 0;
	int rc;

	say(what, what_cap, "%s", "");
	hash_hex(bundle_id, 32, idhex);
	rc = walk(exp, exp_len, &l, e);
	if (rc != 0)
		goto out;
	rec = malloc(sizeof *rec);
	if (rec == NULL) {
		rc = sbx_fail(e, SBX_ENOMEM, "out of memory");
		goto out;
	}
	wire_r_init(&r, exp, exp_len - EXPORT_TRAILER);
	r.off = l.records_off;
	for (uint64_t i = 0; i < l.n_records; i++) {
		size_t n;
		const uint8_t *p = wire_get_bytes32(&r, LOGREC_MAX_ENCODED, &n);

		if (p == NULL || logrec_decode(p, n, rec) != 0) {
			rc = sbx_fail(e, SBX_EFORMAT, "log export: record %" PRIu64 " unreadable", i);
			goto out;
		}
		if (strcmp(rec->event, "ingest") != 0 || strcmp(rec->outcome, "ok") != 0 ||
		    strcmp(rec->bundle_id, idhex) != 0)
			continue;
		if (found++ > 0) {
			rc = sbx_fail(e, SBX_EVERIFY, "the bundle was recorded as sealed twice (records %"
			              PRIu64 " and %" PRIu64 "); a bundle is sealed once", seq, rec->seq);
			goto out;
		}
		seq = rec->seq;
		if (strcmp(rec->case_id, m->case_id) != 0) {
			rc = sbx_fail(e, SBX_EVERIFY, "ingest record %" PRIu64 " is for another case than"
			              " the manifest", seq);
			goto out;
		}
		if (CRYPTO_memcmp(rec->policy_hash, m->policy_hash, 32) != 0) {
			rc = sbx_fail(e, SBX_EVERIFY, "ingest record %" PRIu64 " binds another policy hash"
			              " than the manifest", seq);
			goto out;
		}
	}
	if (found == 0) {
		/* SBX_ENOENT: the caller may know the export to be older than
		 * the sealing; every other failure is a contradiction. */
		rc = sbx_fail(e, SBX_ENOENT, "no ingest record for this bundle among the export's %"
		              PRIu64 " records", l.n_records);
		goto out;
	}
	say(what, what_cap, "record %" PRIu64 " records the sealing of this bundle (same case and"
	    " policy)", seq);
	rc = 0;
out:
	free(rec);
	return rc;
}

#include "appliance/ingest.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "appliance/bundles.h"
#include "appliance/custody.h"
#include "appliance/db.h"
#include "appliance/hold.h"
#include "export/progress.h"
#include "appliance/reads.h"
#include "crypto/hash.h"
#include "crypto/tpm.h"

/* Reads stamped more than this far ahead of the box's clock are refused:
 * a camera or export with a broken clock, not evidence of the future. */
#define INGEST_FUTURE_SLACK_MS (24ull * 3600 * 1000)

struct sink_ctx {
	struct bundle_writer *w;
	/* What the writer is made from, at the first read or image. */
	const char *dir;
	const struct bundle_manifest *m;
	const uint8_t *idb;
	size_t idlen;
	uint64_t now, retention_ms, older, n, images, image_bytes;
	struct progress *progress;
	char jl[READ_LINE_MAX + 1];
	char csv[READ_LINE_MAX + 1];
};

/* The writer (and its encryption worker thread) starts only once the
 * parser child exists: a child forked while another thread runs can inherit
 * a lock held by that thread (GCC 12's libasan does not take its own locks
 * across fork()), and then dies under its seccomp filter on futex(). */
static int writer_ready(struct sink_ctx *c, struct sbx_err *e)
{
	int r;

	if (c->w != NULL)
		return 0;
	r = bundle_writer_new(c->dir, c->m, c->idb, c->idlen, &c->w, e);
	if (r == 0)
		r = bundle_add_csv_header(c->w, reads_csv_header(), strlen(reads_csv_header()), e);
	return r;
}

static int on_read(void *arg, const struct read *r, struct sbx_err *e)
{
	struct sink_ctx *c = arg;
	size_t jlen = 0, clen = 0;
	int rc = writer_ready(c, e);

	if (rc != 0)
		return rc;

	if (r->captured_at_ms > 0 && (uint64_t)r->captured_at_ms > c->now + INGEST_FUTURE_SLACK_MS)
		return sbx_fail(e, SBX_EPOLICY, "read '%s' was captured in the future "
		                "(more than a day after the box's clock)", r->vendor_id);
	if (r->captured_at_ms >= 0 && c->now > c->retention_ms &&
	    (uint64_t)r->captured_at_ms < c->now - c->retention_ms)
		c->older++;
	if (reads_to_jsonl(r, c->jl, sizeof c->jl, &jlen) != 0)
		return sbx_fail(e, SBX_EFORMAT, "read '%s' cannot be serialized", r->vendor_id);
	if (reads_to_csv(r, c->csv, sizeof c->csv, &clen) != 0)
		return sbx_fail(e, SBX_EFORMAT, "read '%s' cannot be serialized", r->vendor_id);
	rc = bundle_add_read(c->w, c->jl, jlen, c->csv, clen, r->captured_at_ms, r->camera_id, e);
	c->n++;
	/* The clock is read once per 4096 reads: a million reads take ~2 s. */
	if ((c->n & 4095) == 0)
		progress_show(c->progress, 0, "ingest: %" PRIu64 " reads sealed so far", c->n);
	return rc;
}

static int on_image(void *arg, const char *read_id, enum ingest_image_kind kind,
                    const char *name, const uint8_t *bytes, size_t len, struct sbx_err *e)
{
	struct sink_ctx *c = arg;
	char path[BUNDLE_MAX_PATH + 1];
	int magic = reads_image_magic(bytes, len), r = writer_ready(c, e);

	if (r != 0)
		return r;
	if (magic == READS_IMG_NONE)
		return sbx_fail(e, SBX_EFORMAT, "image %s of read '%s' is neither JPEG nor PNG",
		                name, read_id);
	if (bundle_image_name(read_id, kind == INGEST_IMAGE_PLATE ? "plate" : "overview",
	                      magic == READS_IMG_PNG ? "png" : "jpg", path, sizeof path) != 0)
		return sbx_fail(e, SBX_EFORMAT, "read id '%s' cannot name an image", read_id);
	c->images++;
	c->image_bytes += len;
	progress_show(c->progress, 0, "ingest: %" PRIu64 " reads, %" PRIu64 " images (%" PRIu64
	              " MB) sealed so far", c->n, c->images, c->image_bytes >> 20);
	return bundle_add_image(c->w, path, bytes, len, e);
}

static int tpm_sign_cb(void *arg, const uint8_t digest[32], uint8_t *sig, size_t *siglen,
                       struct sbx_err *e)
{
	struct box *b = arg;

	return tpm_sign(b->tpm, digest, sig, siglen, e);
}

struct insert_ctx {
	const struct ingest_result *res;
	const char *case_id;
	const uint8_t *wrapped;
	size_t wrapped_len;
	uint64_t bytes;
};

static int apply_insert(struct box *b, void *arg, struct sbx_err *e)
{
	struct insert_ctx *c = arg;
	sqlite3_stmt *st = NULL;
	char ct[65];
	int r;

	hash_hex(c->res->m.ciphertext_sha256, 32, ct);
	r = db_prepare(b->db, "INSERT INTO bundles(id, case_id, sealed_ms, reads, images, bytes,"
	                      " ciphertext_sha256, wrapped_key, record_seq, state) VALUES"
	                      " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
	                      "  (SELECT count(*) FROM records), 'sealed')", &st, e);
	if (r != 0)
		return r;
	sqlite3_bind_text(st, 1, c->res->bundle_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c->case_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)c->res->m.sealed_at_ms);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)c->res->m.reads);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)c->res->m.images);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)c->bytes);
	sqlite3_bind_text(st, 7, ct, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 8, c->wrapped, (int)c->wrapped_len, SQLITE_STATIC);
	r = db_step_done(b->db, st, e);
	sqlite3_finalize(st);
	return r;
}

/* A refused or failed batch is a custody event too; the operation's own
 * error is what the caller sees. */
static int record_failure(struct box *b, const char *case_id, const char *operator_id,
                          int code, struct sbx_err *e)
{
	struct logrec *rec = calloc(1, sizeof *rec);
	int r;

	if (rec == NULL)
		return SBX_ENOMEM;
	snprintf(rec->event, sizeof rec->event, "ingest");
	snprintf(rec->outcome, sizeof rec->outcome, code == SBX_EPOLICY ? "denied" : "failed");
	snprintf(rec->operator_id, sizeof rec->operator_id, "%s", operator_id);
	snprintf(rec->case_id, sizeof rec->case_id, "%s", case_id);
	snprintf(rec->reason, sizeof rec->reason, "%s", e->msg);
	r = custody_append(b, rec, 1, NULL, NULL, NULL);
	free(rec);
	return r != 0 ? r : code;
}

int ingest_batch(struct box *b, const char *case_id, const char *const *paths, size_t n,
                 const char *operator_id, const char *source, const struct ingest_opts *o,
                 FILE *progress_to, struct ingest_result *res, struct sbx_err *e)
{
	struct progress pg;
	struct sink_ctx *c = NULL;
	struct ingest_sink sink;
	struct ingest_summary sum;
	struct bundle_manifest *m = NULL;
	struct logrec *rec = NULL;
	struct insert_ctx ic = { 0 };
	struct hold h;
	uint8_t *idb = NULL, *wrapped = NULL, cek[32], bid[32];
	size_t idlen = 0, wlen = 0;
	char dir[4200];
	int r, sealed = 0;

	memset(res, 0, sizeof *res);
	memset(cek, 0, sizeof cek);
	progress_init(&pg, progress_to);
	c = calloc(1, sizeof *c);
	m = calloc(1, sizeof *m);
	rec = calloc(1, sizeof *rec);
	if (c == NULL || m == NULL || rec == NULL) {
		r = SBX_ENOMEM;
		goto out;
	}
	/* Policy at the door: evidence exists on the box only under a hold. */
	c->now = box_now_ms();
	r = hold_require_open(b, case_id, c->now, &h, e);
	if (r != 0) {
		r = record_failure(b, case_id, operator_id, r == SBX_ENOENT ? SBX_EPOLICY : r, e);
		goto out;
	}
	c->retention_ms = (uint64_t)b->policy.retention_days * HOLD_DAY_MS;
	r = bundles_dir(b, dir, sizeof dir, e);
	if (r != 0)
		goto out;
	r = identity_encode(&b->id, &idb, &idlen);
	if (r != 0)
		goto out;
	memcpy(m->appliance_id, b->id.appliance_id, 32);
	snprintf(m->case_id, sizeof m->case_id, "%s", case_id);
	snprintf(m->source, sizeof m->source, "%s", source ? source : "");
	snprintf(m->operator_id, sizeof m->operator_id, "%s", operator_id);
	m->sealed_at_ms = c->now;
	memcpy(m->policy_hash, b->policy.hash, 32);
	snprintf(m->authority, sizeof m->authority, "%s", h.authority);
	snprintf(m->purpose, sizeof m->purpose, "%s", h.purpose);
	c->dir = dir;
	c->m = m;
	c->idb = idb;
	c->idlen = idlen;
	sink.ctx = c;
	sink.on_read = on_read;
	sink.on_image = on_image;
	c->progress = &pg;
	/* The parser reads everything once before the first read arrives. */
	progress_show(&pg, 1, "ingest: checking the whole export first (nothing is sealed unless"
	              " all of it is valid)");
	r = ingest_run(paths, n, o, &sink, &sum, e);
	if (r == 0)
		progress_show(&pg, 1, "ingest: %" PRIu64 " reads, %" PRIu64 " images; signing and"
		              " writing the bundle", c->n, c->images);
	if (r == 0 && sum.reads == 0)
		r = sbx_fail(e, SBX_EFORMAT, "the export holds no reads");
	if (r != 0) {
		if (c->w != NULL)
			bundle_writer_abort(c->w);
		c->w = NULL;
		r = record_failure(b, case_id, operator_id, r, e);
		goto out;
	}
	r = bundle_writer_finish(c->w, tpm_sign_cb, b, cek, bid, &res->m, res->path,
	                         sizeof res->path, e);
	c->w = NULL;   /* freed by finish */
	if (r != 0)
		goto out;
	sealed = 1;
	hash_hex(bid, 32, res->bundle_id);
	res->older_than_retention = c->older;
	r = bundles_wrap_key(b, bid, cek, &wrapped, &wlen, e);
	OPENSSL_cleanse(cek, sizeof cek);
	if (r != 0)
		goto out;
	{
		FILE *f = fopen(res->path, "rb");

		if (f != NULL && fseek(f, 0, SEEK_END) == 0)
			ic.bytes = (uint64_t)ftell(f);
		if (f != NULL)
			fclose(f);
	}
	ic.res = res;
	ic.case_id = case_id;
	ic.wrapped = wrapped;
	ic.wrapped_len = wlen;
	snprintf(rec->event, sizeof rec->event, "ingest");
	snprintf(rec->outcome, sizeof rec->outcome, "ok");
	snprintf(rec->operator_id, sizeof rec->operator_id, "%s", operator_id);
	snprintf(rec->case_id, sizeof rec->case_id, "%s", case_id);
	snprintf(rec->bundle_id, sizeof rec->bundle_id, "%s", res->bundle_id);
	{
		char ct[65], ix[65];

		hash_hex(res->m.ciphertext_sha256, 32, ct);
		hash_hex(res->m.index_sha256, 32, ix);
		snprintf(rec->detail, sizeof rec->detail,
		         "source=%s\nreads=%" PRIu64 "\nimages=%" PRIu64 "\ncameras=%" PRIu64
		         "\nfirst_captured_ms=%" PRIu64 "\nlast_captured_ms=%" PRIu64
		         "\nolder_than_retention=%" PRIu64 "\nciphertext_sha256=%s"
		         "\nindex_sha256=%s\nbytes=%" PRIu64, m->source, res->m.reads,
		         res->m.images, res->m.cameras, res->m.first_captured_ms,
		         res->m.last_captured_ms, c->older, ct, ix, ic.bytes);
	}
	/* The bundle is durable (fsynced, renamed, directory fsynced) before its
	 * record commits: never a record without its bundle. */
	r = custody_append(b, rec, 1, apply_insert, &ic, e);
	if (r == 0 || b->last_append != APPEND_NOT_COMMITTED)
		sealed = 0;   /* kept: recorded, or for the next start to decide */
out:
	progress_end(&pg);
	if (sealed)
		unlink(res->path);   /* never a bundle without its record */
	if (c != NULL && c->w != NULL)
		bundle_writer_abort(c->w);
	OPENSSL_cleanse(cek, sizeof cek);
	free(idb);
	free(wrapped);
	free(c);
	free(m);
	free(rec);
	return r;
}

#include "appliance/bundles.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "appliance/db.h"
#include "crypto/hash.h"
#include "crypto/merkle.h"
#include "crypto/tpm.h"
#include "crypto/wrap.h"
#include "export/atomic.h"
#include "export/logrec.h"

#define ROW_COLS "id, case_id, sealed_ms, reads, images, bytes, ciphertext_sha256, " \
                 "record_seq, state, purged_ms"

int bundles_dir(struct box *b, char *out, size_t cap, struct sbx_err *e)
{
	snprintf(out, cap, "%s/bundles", b->state_dir);
	if (mkdir(out, 0700) != 0 && errno != EEXIST)
		return sbx_fail(e, SBX_EIO, "cannot create %s: %s", out, strerror(errno));
	return 0;
}

void bundles_path(const struct box *b, const char *id, char *out, size_t cap)
{
	snprintf(out, cap, "%s/bundles/%s.sbx", b->state_dir, id);
}

static void text(char *dst, size_t n, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	snprintf(dst, n, "%s", t ? (const char *)t : "");
}

static void to_row(sqlite3_stmt *st, struct bundle_row *r)
{
	memset(r, 0, sizeof *r);
	text(r->id, sizeof r->id, st, 0);
	text(r->case_id, sizeof r->case_id, st, 1);
	r->sealed_ms = (uint64_t)sqlite3_column_int64(st, 2);
	r->reads = (uint64_t)sqlite3_column_int64(st, 3);
	r->images = (uint64_t)sqlite3_column_int64(st, 4);
	r->bytes = (uint64_t)sqlite3_column_int64(st, 5);
	text(r->ciphertext_sha256, sizeof r->ciphertext_sha256, st, 6);
	r->record_seq = (uint64_t)sqlite3_column_int64(st, 7);
	r->purged = strcmp((const char *)sqlite3_column_text(st, 8), "purged") == 0;
	r->purged_ms = (uint64_t)sqlite3_column_int64(st, 9);
}

int bundles_get(struct box *b, const char *id, struct bundle_row *row, struct sbx_err *e)
{
	sqlite3_stmt *st = NULL;
	int r = db_prepare(b->db, "SELECT " ROW_COLS " FROM bundles WHERE id = ?1", &st, e);
	int rc;

	if (r != 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		to_row(st, row);
	else if (rc == SQLITE_DONE)
		r = sbx_fail(e, SBX_ENOENT, "no bundle %s on this box", id);
	else
		r = sbx_fail(e, SBX_EIO, "database: %s", sqlite3_errmsg(b->db));
	sqlite3_finalize(st);
	return r;
}

int bundles_foreach(struct box *b, const char *case_id,
                    int (*fn)(void *, const struct bundle_row *), void *arg,
                    struct sbx_err *e)
{
	sqlite3_stmt *st = NULL;
	struct bundle_row row;
	int r, rc;

	r = db_prepare(b->db, case_id ?
	               "SELECT " ROW_COLS " FROM bundles WHERE case_id = ?1 ORDER BY sealed_ms, id" :
	               "SELECT " ROW_COLS " FROM bundles ORDER BY sealed_ms, id", &st, e);
	if (r != 0)
		return r;
	if (case_id)
		sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		to_row(st, &row);
		r = fn(arg, &row);
		if (r != 0)
			goto out;
	}
	if (rc != SQLITE_DONE)
		r = sbx_fail(e, SBX_EIO, "database: %s", sqlite3_errmsg(b->db));
out:
	sqlite3_finalize(st);
	return r;
}

/* A name the bundle writer could have left: "<64 hex>.sbx". */
static int is_bundle_name(const char *n, char id[65])
{
	size_t len = strlen(n);
	uint8_t tmp[32];

	if (len != 68 || strcmp(n + 64, ".sbx") != 0)
		return 0;
	memcpy(id, n, 64);
	id[64] = '\0';
	return hash_unhex(id, tmp, 32) == 0;
}

int bundles_recover(struct box *b, struct sbx_err *e)
{
	char dir[4200], path[4600], id[65];
	struct bundle_row row;
	sqlite3_stmt *st = NULL;
	DIR *d = NULL;
	struct dirent *de;
	int r, changed = 0, rc;

	r = bundles_dir(b, dir, sizeof dir, e);
	if (r != 0)
		return r;
	d = opendir(dir);
	if (d == NULL)
		return sbx_fail(e, SBX_EIO, "cannot read %s: %s", dir, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		struct sbx_err ignore = { 0 };

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		if (!is_bundle_name(de->d_name, id)) {
			/* A seal that crashed leaves only temporary files: roll back. */
			if (strstr(de->d_name, ".tmp") != NULL) {
				unlink(path);
				changed = 1;
			}
			continue;
		}
		r = bundles_get(b, id, &row, &ignore);
		if (r == SBX_ENOENT || (r == 0 && row.purged)) {
			/* No record: the seal never committed (roll back).  Purged: the
			 * keys are gone, the file is due for deletion (roll forward). */
			unlink(path);
			changed = 1;
		} else if (r != 0) {
			r = sbx_fail(e, r, "%s", ignore.msg);
			goto out;
		}
	}
	if (changed) {
		r = atomic_fsync_dir(dir, e);
		if (r != 0)
			goto out;
	}
	/* Never a record without its bundle. */
	r = db_prepare(b->db, "SELECT id FROM bundles WHERE state = 'sealed'", &st, e);
	if (r != 0)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct stat sb;

		bundles_path(b, (const char *)sqlite3_column_text(st, 0), path, sizeof path);
		if (stat(path, &sb) != 0 && !b->alarm) {
			b->alarm = 1;
			snprintf(b->alarm_reason, sizeof b->alarm_reason,
			         "sealed bundle %.64s is missing from the bundles directory",
			         sqlite3_column_text(st, 0));
		}
	}
	r = rc == SQLITE_DONE ? 0 : sbx_fail(e, SBX_EIO, "database: %s", sqlite3_errmsg(b->db));
out:
	sqlite3_finalize(st);
	if (d != NULL)
		closedir(d);
	return r;
}

static int atrest_context(const uint8_t id[static 32], uint8_t ctx[64], size_t *len)
{
	size_t n = strlen(BUNDLE_NS_ATREST) + 1;

	memcpy(ctx, BUNDLE_NS_ATREST, n);
	memcpy(ctx + n, id, 32);
	*len = n + 32;
	return 0;
}

int bundles_wrap_key(struct box *b, const uint8_t id[static 32], const uint8_t cek[static 32],
                     uint8_t **blob, size_t *bloblen, struct sbx_err *e)
{
	EVP_PKEY *pub = NULL;
	uint8_t ctx[64];
	size_t ctxlen = 0;
	int r;

	r = identity_decrypt_pkey(&b->id, &pub);
	if (r != 0)
		return sbx_fail(e, SBX_EINTEGRITY, "the box's decrypt key cannot be read from its identity");
	atrest_context(id, ctx, &ctxlen);
	r = wrap_cek(pub, cek, ctx, ctxlen, blob, bloblen, e);
	EVP_PKEY_free(pub);
	return r;
}

static int tpm_ecdh_cb(void *arg, const uint8_t *peer, size_t len, uint8_t *shared,
                       size_t *shared_len)
{
	struct box *b = arg;

	if (*shared_len < 32 || tpm_ecdh(b->tpm, peer, len, shared, NULL) != 0)
		return SBX_ETPM;
	*shared_len = 32;
	return 0;
}

int bundles_unwrap_key(struct box *b, const char *id, uint8_t cek[static 32],
                       struct sbx_err *e)
{
	sqlite3_stmt *st = NULL;
	EVP_PKEY *pub = NULL;
	uint8_t bid[32], ctx[64];
	size_t ctxlen = 0;
	int r, rc;

	if (b->tpm == NULL)
		return sbx_fail(e, SBX_EINVAL, "internal: unwrapping needs the TPM");
	if (hash_unhex(id, bid, 32) != 0)
		return sbx_fail(e, SBX_EINVAL, "'%s' is not a bundle id", id);
	r = db_prepare(b->db, "SELECT wrapped_key FROM bundles WHERE id = ?1 AND state = 'sealed'",
	               &st, e);
	if (r != 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW || sqlite3_column_type(st, 0) == SQLITE_NULL) {
		r = sbx_fail(e, SBX_ENOENT, "bundle %s has no content key on this box "
		             "(purged or never sealed here)", id);
		goto out;
	}
	r = identity_decrypt_pkey(&b->id, &pub);
	if (r != 0) {
		r = sbx_fail(e, SBX_EINTEGRITY, "the box's decrypt key cannot be read from its identity");
		goto out;
	}
	atrest_context(bid, ctx, &ctxlen);
	r = wrap_unwrap_ecdh(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
	                     pub, tpm_ecdh_cb, b, ctx, ctxlen, cek, e);
out:
	EVP_PKEY_free(pub);
	sqlite3_finalize(st);
	return r;
}

int bundles_custody(struct box *b, const char *id, uint8_t **out, size_t *len,
                    struct sbx_err *e)
{
	struct bundle_custody *c = calloc(1, sizeof *c);
	uint8_t (*leaves)[32] = NULL;
	sqlite3_stmt *st = NULL;
	uint64_t n = 0;
	int r, rc;

	if (c == NULL)
		return SBX_ENOMEM;
	if (hash_unhex(id, c->bundle_id, 32) != 0) {
		r = sbx_fail(e, SBX_EINVAL, "'%s' is not a bundle id", id);
		goto out;
	}
	/* The newest signed head. */
	r = db_prepare(b->db, "SELECT tree_size, body, sig FROM heads WHERE sig IS NOT NULL "
	                      "ORDER BY tree_size DESC LIMIT 1", &st, e);
	if (r != 0)
		goto out;
	if (sqlite3_step(st) != SQLITE_ROW ||
	    (size_t)sqlite3_column_bytes(st, 1) != STH_ENCODED_LEN ||
	    (size_t)sqlite3_column_bytes(st, 2) > sizeof c->sig) {
		r = sbx_fail(e, SBX_EINTEGRITY, "custody log: no usable signed tree head");
		goto out;
	}
	n = (uint64_t)sqlite3_column_int64(st, 0);
	memcpy(c->head, sqlite3_column_blob(st, 1), STH_ENCODED_LEN);
	c->siglen = (size_t)sqlite3_column_bytes(st, 2);
	memcpy(c->sig, sqlite3_column_blob(st, 2), c->siglen);
	sqlite3_finalize(st);
	st = NULL;

	leaves = malloc((size_t)(n ? n : 1) * 32);
	if (leaves == NULL) {
		r = SBX_ENOMEM;
		goto out;
	}
	r = db_prepare(b->db, "SELECT seq, body, bundle_id FROM records WHERE seq < ?1 ORDER BY seq",
	               &st, e);
	if (r != 0)
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)n);
	for (uint64_t i = 0; (rc = sqlite3_step(st)) == SQLITE_ROW; i++) {
		const uint8_t *body = sqlite3_column_blob(st, 1);
		size_t blen = (size_t)sqlite3_column_bytes(st, 1);

		if (i >= n || (uint64_t)sqlite3_column_int64(st, 0) != i) {
			r = sbx_fail(e, SBX_EINTEGRITY, "custody log: records out of sequence");
			goto out;
		}
		merkle_leaf_hash(body, blen, leaves[i]);
		if (strcmp((const char *)sqlite3_column_text(st, 2), id) != 0)
			continue;
		if (c->n >= BUNDLE_MAX_CUSTODY) {
			r = sbx_fail(e, SBX_EFORMAT, "bundle %s has more than %d custody records",
			             id, BUNDLE_MAX_CUSTODY);
			goto out;
		}
		c->rec[c->n].record = malloc(blen);
		if (c->rec[c->n].record == NULL) {
			r = SBX_ENOMEM;
			goto out;
		}
		memcpy(c->rec[c->n].record, body, blen);
		c->rec[c->n].record_len = blen;
		c->rec[c->n].leaf_index = i;
		c->n++;
	}
	if (rc != SQLITE_DONE) {
		r = sbx_fail(e, SBX_EIO, "database: reading the custody log: %s",
		             sqlite3_errmsg(b->db));
		goto out;
	}
	if (c->n == 0) {
		r = sbx_fail(e, SBX_ENOENT, "no custody record names bundle %s", id);
		goto out;
	}
	for (size_t k = 0; k < c->n; k++) {
		r = merkle_inclusion_proof((const uint8_t (*)[32])leaves, n, c->rec[k].leaf_index,
		                           c->rec[k].proof, &c->rec[k].n_hashes);
		if (r != 0)
			goto out;
	}
	r = bundle_custody_encode(c, out, len);
out:
	sqlite3_finalize(st);
	free(leaves);
	bundle_custody_free(c);
	free(c);
	return r;
}

int bundles_purge_keys(struct box *b, const char *case_id, uint64_t now, struct sbx_err *e)
{
	sqlite3_stmt *st = NULL;
	int r;

	/* Overwrite, then drop, the wrapped keys: with secure_delete on, SQLite
	 * zeroes the freed content too.  (Flash may keep old copies: the keys
	 * are useless without this TPM's decrypt key, and that is the point of
	 * wrapping them.) */
	r = db_prepare(b->db, "UPDATE bundles SET wrapped_key = zeroblob(length(wrapped_key)) "
	                      "WHERE case_id = ?1 AND state = 'sealed'", &st, e);
	if (r == 0) {
		sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
		r = db_step_done(b->db, st, e);
		sqlite3_finalize(st);
		st = NULL;
	}
	if (r == 0)
		r = db_prepare(b->db, "UPDATE bundles SET wrapped_key = NULL, state = 'purged', "
		                      "purged_ms = ?2 WHERE case_id = ?1 AND state = 'sealed'", &st, e);
	if (r == 0) {
		sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
		r = db_step_done(b->db, st, e);
	}
	sqlite3_finalize(st);
	return r;
}

int bundles_delete_purged_files(struct box *b, const char *case_id, struct sbx_err *e)
{
	sqlite3_stmt *st = NULL;
	char dir[4200], path[4400];
	int r, rc;

	r = bundles_dir(b, dir, sizeof dir, e);
	if (r != 0)
		return r;
	r = db_prepare(b->db, "SELECT id FROM bundles WHERE case_id = ?1 AND state = 'purged'",
	               &st, e);
	if (r != 0)
		return r;
	sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		bundles_path(b, (const char *)sqlite3_column_text(st, 0), path, sizeof path);
		if (unlink(path) != 0 && errno != ENOENT) {
			r = sbx_fail(e, SBX_EIO, "cannot delete %s: %s", path, strerror(errno));
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		r = sbx_fail(e, SBX_EIO, "database: listing purged bundles: %s", sqlite3_errmsg(b->db));
		goto out;
	}
	r = atomic_fsync_dir(dir, e);
out:
	sqlite3_finalize(st);
	return r;
}

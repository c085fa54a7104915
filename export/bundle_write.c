/* Sealing a bundle (docs/FORMAT.md): one pass, constant memory.
 *
 *   reads, images -> framing (bundle_payload.c) -> chunked AEAD (pipelined:
 *   a worker seals and writes while the caller frames and hashes the next
 *   megabyte) -> spool file in DIR, hashed as it is written.
 *   finish: index, manifest, signature (the caller's callback: the TPM),
 *   then the tar assembled by libarchive into DIR/sbx-*.sbx.tmp from the
 *   spool (write-back started every 64 MiB, so the fsync finds little
 *   left), fsync, re-opened and checked like any reader would (minisign
 *   verifies what it signed before writing it), renamed to DIR/<id>.sbx,
 *   DIR fsynced.
 *
 * The ciphertext is hashed once, as the encryptor emits it; the copy into
 * the tar is not hashed again.  The spool is an unlinked file only this
 * process holds, and what reaches the disk is covered by the fsync (its
 * error fails the seal) and the self-check of the written file.
 *
 * Temporary files: the spools are unlinked as soon as they are created, so
 * nothing of them survives a crash; the tar is "sbx-<random>.sbx.tmp" until
 * the rename (the appliance's recovery removes leftovers named *.tmp) and
 * is unlinked on every failure path. */
#include "export/bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "crypto/hash.h"
#include "crypto/sig.h"
#include "crypto/stream.h"
#include "export/atomic.h"
#include "export/bundle_payload.h"
#include "export/bundle_tar.h"

#define COPY_BUF    (1024 * 1024)
/* Write-back of the tar starts every SYNC_WINDOW bytes, and the window
 * before is waited for: at most two windows are dirty at a time. */
#define SYNC_WINDOW ((uint64_t)64 << 20)

/* Steps of bundle_writer_finish at which tests inject a failure. */
enum {
	STEP_PAYLOAD = 1, STEP_SIGNED, STEP_TAR_CREATED, STEP_TAR_WRITTEN, STEP_FSYNCED,
	STEP_CHECKED, STEP_RENAMED,
};

struct bundle_writer {
	char *dir;
	int dirfd;
	struct bundle_manifest m;
	uint8_t *ident;
	size_t ident_len;
	EVP_PKEY *sign_pub;
	uint8_t cek[32];
	struct bundle_writer_test_params tp;
	struct stream_enc *enc;
	struct payload_w *pw;
	/* The ciphertext spool.  In pipelined mode these are touched only by
	 * the stream's worker (in emit) until stream_enc_final returns. */
	int spool_fd;
	struct hash_ctx *ct_hash;
	uint64_t ct_len;
	int spool_errno;
	/* The manifest's counts. */
	struct payload_set *cameras;
	uint64_t reads, first_ms, last_ms;
	int csv_header_ok;      /* no read yet */
	int failed;             /* sticky: an add failed, finish refuses */
};

/* Stream output: hashed, appended to the spool. */
static int spool_emit(void *arg, const uint8_t *buf, size_t len)
{
	struct bundle_writer *w = arg;

	if (hash_update(w->ct_hash, buf, len) != 0)
		return SBX_ECRYPTO;
	if (atomic_write_all(w->spool_fd, buf, len) != 0) {
		w->spool_errno = errno;
		return SBX_EIO;
	}
	w->ct_len += len;
	return 0;
}

/* The stream reports only that its output failed; the errno (ENOSPC, EIO)
 * is what a person needs to read, so it replaces that message. */
static void spool_error(const struct bundle_writer *w, struct sbx_err *e)
{
	sbx_err_clear(e);
	sbx_fail(e, SBX_EIO, "bundle: writing the spool in %s failed: %s", w->dir,
	         strerror(w->spool_errno));
}

/* Framing output: into the encryptor. */
static int frame_out(void *arg, const void *p, size_t n, struct sbx_err *e)
{
	struct bundle_writer *w = arg;
	int r = stream_enc_push(w->enc, p, n, e);

	if (r == SBX_EIO && w->spool_errno != 0)
		spool_error(w, e);
	return r;
}

/* A fresh file "sbx-<random>.<what>.tmp" in DIR; its name in *name. */
static int tmp_create(struct bundle_writer *w, const char *what, char **name, int *fd,
                      struct sbx_err *e)
{
	uint8_t rnd[8];
	char hex[17];

	*name = NULL;
	*fd = -1;
	if (RAND_bytes(rnd, sizeof rnd) != 1)
		return sbx_fail(e, SBX_ECRYPTO, "bundle: no randomness for a temporary name");
	hash_hex(rnd, sizeof rnd, hex);
	if (asprintf(name, "sbx-%s.%s.tmp", hex, what) < 0) {
		*name = NULL;
		return sbx_fail(e, SBX_ENOMEM, "bundle: out of memory");
	}
	*fd = openat(w->dirfd, *name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (*fd < 0) {
		int r = sbx_fail(e, SBX_EIO, "bundle: cannot create %s/%s: %s", w->dir, *name,
		                 strerror(errno));

		free(*name);
		*name = NULL;
		return r;
	}
	return 0;
}

static int check_descr(const struct bundle_manifest *m, struct sbx_err *e)
{
	struct bundle_manifest t = *m;

	/* The writer fills in what it measures; the rest must already be valid. */
	t.version = BUNDLE_VERSION;
	t.reads = t.images = t.cameras = t.first_captured_ms = t.last_captured_ms = 0;
	t.items = 2;
	t.plaintext_bytes = 0;
	stream_ciphertext_size(0, NULL, &t.ciphertext_bytes);
	return bundle_manifest_check(&t, e);
}

int bundle_writer_new_test(const char *dir, const struct bundle_manifest *m,
                           const uint8_t *identity, size_t identity_len,
                           const struct bundle_writer_test_params *tp,
                           struct bundle_writer **out, struct sbx_err *e)
{
	struct bundle_writer *w = NULL;
	struct identity *id = NULL;
	struct stream_params sp = { 0 };
	uint8_t ad[PAYLOAD_MAX_AD];
	size_t adlen = 0;
	char *name = NULL;
	int r = SBX_EINVAL;

	*out = NULL;
	if (dir == NULL || m == NULL || identity == NULL || identity_len == 0 ||
	    identity_len > BUNDLE_MAX_IDENTITY) {
		r = sbx_fail(e, SBX_EINVAL, "bundle: bad writer arguments");
		goto fail;
	}
	r = check_descr(m, e);
	if (r != 0) {
		r = SBX_EINVAL;
		goto fail;
	}
	id = malloc(sizeof *id);
	w = calloc(1, sizeof *w);
	if (id == NULL || w == NULL) {
		r = sbx_fail(e, SBX_ENOMEM, "bundle: out of memory");
		goto fail;
	}
	w->dirfd = w->spool_fd = -1;
	if (identity_decode(identity, identity_len, id) != 0 ||
	    CRYPTO_memcmp(id->appliance_id, m->appliance_id, 32) != 0 ||
	    identity_sign_pkey(id, &w->sign_pub) != 0) {
		r = sbx_fail(e, SBX_EINVAL, "bundle: the identity does not decode or is not the "
		             "manifest's appliance");
		goto fail;
	}
	w->m = *m;
	w->m.version = BUNDLE_VERSION;
	if (tp != NULL)
		w->tp = *tp;
	w->dir = strdup(dir);
	w->ident = malloc(identity_len);
	w->ct_hash = hash_new();
	w->cameras = payload_set_new();
	if (w->dir == NULL || w->ident == NULL || w->ct_hash == NULL || w->cameras == NULL) {
		r = sbx_fail(e, SBX_ENOMEM, "bundle: out of memory");
		goto fail;
	}
	memcpy(w->ident, identity, identity_len);
	w->ident_len = identity_len;
	if (hash_sha256(identity, identity_len, w->m.identity_sha256) != 0) {
		r = sbx_fail(e, SBX_ECRYPTO, "bundle: hashing the identity failed");
		goto fail;
	}
	w->csv_header_ok = 1;
	w->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dirfd < 0) {
		r = sbx_fail(e, SBX_EIO, "bundle: cannot open directory %s: %s", dir, strerror(errno));
		goto fail;
	}
	if (w->tp.cek != NULL) {
		memcpy(w->cek, w->tp.cek, 32);
	} else if (RAND_bytes(w->cek, sizeof w->cek) != 1) {
		r = sbx_fail(e, SBX_ECRYPTO, "bundle: no randomness for the content key");
		goto fail;
	}
	r = tmp_create(w, "payload", &name, &w->spool_fd, e);
	if (r != 0)
		goto fail;
	if (unlinkat(w->dirfd, name, 0) != 0) {
		r = sbx_fail(e, SBX_EIO, "bundle: cannot unlink %s/%s: %s", dir, name, strerror(errno));
		goto fail;
	}
	r = payload_ad(&w->m, ad, &adlen);
	if (r != 0)
		goto fail;
	sp.pipeline = !w->tp.single_thread;
	r = stream_enc_new(STREAM_AES256GCM, w->cek, w->tp.salt, ad, adlen, &sp, spool_emit, w,
	                   &w->enc, e);
	if (r != 0)
		goto fail;
	r = payload_w_new(dir, frame_out, w, &w->pw, e);
	if (r != 0)
		goto fail;
	*out = w;
	w = NULL;   /* transferred */
	r = 0;
fail:
	free(name);
	free(id);
	bundle_writer_abort(w);
	return r;
}

int bundle_writer_new(const char *dir, const struct bundle_manifest *m,
                      const uint8_t *identity, size_t identity_len,
                      struct bundle_writer **out, struct sbx_err *e)
{
	return bundle_writer_new_test(dir, m, identity, identity_len, NULL, out, e);
}

void bundle_writer_abort(struct bundle_writer *w)
{
	if (w == NULL)
		return;
	/* The encryptor first: its worker may still be writing to the spool. */
	stream_enc_free(w->enc);
	payload_w_free(w->pw);
	if (w->spool_fd >= 0)
		close(w->spool_fd);
	if (w->dirfd >= 0)
		close(w->dirfd);
	hash_free(w->ct_hash);
	payload_set_free(w->cameras);
	EVP_PKEY_free(w->sign_pub);
	free(w->ident);
	free(w->dir);
	OPENSSL_cleanse(w, sizeof *w);
	free(w);
}

static int usable(struct bundle_writer *w, struct sbx_err *e)
{
	if (w == NULL)
		return sbx_fail(e, SBX_EINVAL, "bundle: no writer");
	if (w->failed)
		return sbx_fail(e, SBX_EINVAL, "bundle: the writer already failed");
	return 0;
}

int bundle_add_csv_header(struct bundle_writer *w, const char *csv, size_t len,
                          struct sbx_err *e)
{
	int r = usable(w, e);

	if (r != 0)
		return r;
	if (!w->csv_header_ok || csv == NULL || len == 0)
		return sbx_fail(e, SBX_EINVAL, "bundle: the CSV header comes once, before any read");
	w->csv_header_ok = 0;
	r = payload_w_text(w->pw, NULL, 0, csv, len, e);
	if (r != 0)
		w->failed = 1;
	return r;
}

int bundle_add_read(struct bundle_writer *w, const char *jsonl, size_t jsonl_len,
                    const char *csv, size_t csv_len, int64_t captured_ms,
                    const char *camera_id, struct sbx_err *e)
{
	int r = usable(w, e);

	if (r != 0)
		return r;
	if (jsonl == NULL || jsonl_len == 0 || csv == NULL || csv_len == 0 || camera_id == NULL ||
	    captured_ms < 0)
		return sbx_fail(e, SBX_EINVAL, "bundle: a read needs its JSONL and CSV lines, a camera "
		                "and a capture time >= 0");
	w->csv_header_ok = 0;
	r = payload_w_text(w->pw, jsonl, jsonl_len, csv, csv_len, e);
	if (r != 0)
		goto out;
	r = payload_set_add(w->cameras, camera_id, strlen(camera_id));
	if (r == SBX_EEXIST)
		r = 0;
	if (r != 0) {
		sbx_fail(e, r, "bundle: out of memory");
		goto out;
	}
	if (w->reads == 0 || (uint64_t)captured_ms < w->first_ms)
		w->first_ms = (uint64_t)captured_ms;
	if (w->reads == 0 || (uint64_t)captured_ms > w->last_ms)
		w->last_ms = (uint64_t)captured_ms;
	w->reads++;
out:
	if (r != 0)
		w->failed = 1;
	return r;
}

int bundle_add_image(struct bundle_writer *w, const char *path, const uint8_t *data,
                     size_t len, struct sbx_err *e)
{
	int r = usable(w, e);

	if (r != 0)
		return r;
	r = payload_w_image(w->pw, path, data, len, e);
	/* A refused path or empty image changes nothing; other errors are fatal. */
	if (r != 0 && r != SBX_EINVAL)
		w->failed = 1;
	return r;
}

static int inject(const struct bundle_writer *w, int step, struct sbx_err *e)
{
	if (w->tp.fail_step == step)
		return sbx_fail(e, SBX_EIO, "bundle: injected failure at step %d", step);
	return 0;
}

/* ---- the container ----------------------------------------------------------- */

struct tar_out {
	int fd;
	int err;        /* errno of a failed write or write-back */
	uint64_t off;   /* bytes written */
	uint64_t queued;/* write-back started for [0, queued) */
	int no_sync;    /* sync_file_range unsupported here: the fsync does it all */
};

/* Starts write-back of the window that just filled, and waits for the one
 * before it, so the final fsync has at most two windows left to write.
 * Its errors are the seal's: a write-back error reported here is consumed
 * (the file's error state advances) and the fsync would not see it again. */
static int tar_writeback(struct tar_out *t)
{
	while (!t->no_sync && t->off - t->queued >= SYNC_WINDOW) {
		uint64_t start = t->queued;

		if (sync_file_range(t->fd, (off64_t)start, (off64_t)SYNC_WINDOW,
		                    SYNC_FILE_RANGE_WRITE) != 0) {
			if (errno == ENOSYS || errno == ESPIPE || errno == EINVAL) {
				t->no_sync = 1;
				return 0;
			}
			return -1;
		}
		if (start >= SYNC_WINDOW &&
		    sync_file_range(t->fd, (off64_t)(start - SYNC_WINDOW), (off64_t)SYNC_WINDOW,
		                    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
		                    SYNC_FILE_RANGE_WAIT_AFTER) != 0)
			return -1;
		t->queued = start + SYNC_WINDOW;
	}
	return 0;
}

static la_ssize_t tar_write(struct archive *a, void *arg, const void *buf, size_t n)
{
	struct tar_out *t = arg;

	if (atomic_write_all(t->fd, buf, n) != 0) {
		t->err = errno;
		archive_set_error(a, t->err, "write failed: %s", strerror(t->err));
		return -1;
	}
	t->off += n;
	if (tar_writeback(t) != 0) {
		t->err = errno;
		archive_set_error(a, t->err, "write-back failed: %s", strerror(t->err));
		return -1;
	}
	return (la_ssize_t)n;
}

static struct archive_entry *tar_entry(const char *name, uint64_t size, uint64_t mtime)
{
	struct archive_entry *ent = archive_entry_new();

	if (ent == NULL)
		return NULL;
	archive_entry_set_pathname(ent, name);
	archive_entry_set_filetype(ent, AE_IFREG);
	archive_entry_set_perm(ent, 0444);
	archive_entry_set_uid(ent, 0);
	archive_entry_set_gid(ent, 0);
	archive_entry_set_size(ent, (la_int64_t)size);
	archive_entry_set_mtime(ent, (time_t)mtime, 0);
	return ent;
}

static int tar_put(struct archive *a, const char *name, const void *data, size_t len,
                   uint64_t mtime, struct sbx_err *e)
{
	struct archive_entry *ent = tar_entry(name, len, mtime);
	int r = SBX_EIO;

	if (ent == NULL) {
		r = sbx_fail(e, SBX_ENOMEM, "bundle: out of memory");
		goto out;
	}
	if (archive_write_header(a, ent) != ARCHIVE_OK ||
	    archive_write_data(a, data, len) != (la_ssize_t)len) {
		sbx_fail(e, r, "bundle: writing %s: %s", name, archive_error_string(a));
		goto out;
	}
	r = 0;
out:
	archive_entry_free(ent);
	return r;
}

/* Copies the ciphertext spool into the payload entry.  Not hashed again:
 * ciphertext_sha256 is the hash taken as the encryptor wrote the spool.
 * Each piece of the spool is dropped (a hole punched) once copied: the
 * spool is an unnamed file nothing reads again, so its pages need never
 * reach the disk, and the bundle's pages reuse them instead of claiming
 * as much memory again (on the benchmark's VM, writing into pages not
 * recently used cost up to 3 s of system time per GB).  A file system
 * without hole punching keeps the spool until it is closed, as before. */
static int tar_payload(struct bundle_writer *w, struct archive *a, uint64_t mtime,
                       struct sbx_err *e)
{
	struct archive_entry *ent = tar_entry("payload.enc", w->ct_len, mtime);
	uint8_t *buf = malloc(COPY_BUF);
	uint64_t off = 0;
	int r = SBX_EIO, punch = 1;

	if (ent == NULL || buf == NULL) {
		r = sbx_fail(e, SBX_ENOMEM, "bundle: out of memory");
		goto out;
	}
	if (archive_write_header(a, ent) != ARCHIVE_OK) {
		sbx_fail(e, r, "bundle: writing payload.enc: %s", archive_error_string(a));
		goto out;
	}
	while (off < w->ct_len) {
		size_t n = w->ct_len - off > COPY_BUF ? COPY_BUF : (size_t)(w->ct_len - off);
		ssize_t got = pread(w->spool_fd, buf, n, (off_t)off);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			sbx_fail(e, r, "bundle: reading the spool failed: %s",
			         got < 0 ? strerror(errno) : "short file");
			goto out;
		}
		if (archive_write_data(a, buf, (size_t)got) != (la_ssize_t)got) {
			sbx_fail(e, r, "bundle: writing payload.enc: %s", archive_error_string(a));
			goto out;
		}
		if (punch && fallocate(w->spool_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		                       (off_t)off, (off_t)got) != 0)
			punch = 0;    /* an optimization only; the copy is unaffected */
		off += (uint64_t)got;
	}
	r = 0;
out:
	free(buf);
	archive_entry_free(ent);
	return r;
}

static int tar_assemble(struct bundle_writer *w, int fd, const char *manifest, size_t mlen,
                        const uint8_t *sig, size_t siglen, struct sbx_err *e)
{
	struct tar_out t = { .fd = fd };
	struct archive *a = archive_write_new();
	uint64_t mtime = bundle_tar_mtime(w->m.sealed_at_ms);
	int r = SBX_EIO;

	/* Unblocked: libarchive hands each header, datum and padding to
	 * tar_write as it comes (the payload in COPY_BUF pieces, not 10 KiB
	 * records).  The bytes are the same as with 10240-byte records and a
	 * last record of 1: no record padding either way. */
	if (a == NULL || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(a, 0) != ARCHIVE_OK) {
		r = sbx_fail(e, SBX_ENOMEM, "bundle: libarchive setup failed");
		goto out;
	}
	if (archive_write_open2(a, &t, NULL, tar_write, NULL, NULL) != ARCHIVE_OK) {
		sbx_fail(e, r, "bundle: libarchive open failed: %s", archive_error_string(a));
		goto out;
	}
	r = tar_put(a, "manifest.json", manifest, mlen, mtime, e);
	if (r == 0)
		r = tar_put(a, "manifest.sig", sig, siglen, mtime, e);
	if (r == 0)
		r = tar_put(a, "identity.sbxi", w->ident, w->ident_len, mtime, e);
	if (r == 0)
		r = tar_payload(w, a, mtime, e);
	if (r != 0)
		goto out;
	if (archive_write_close(a) != ARCHIVE_OK) {
		r = sbx_fail(e, SBX_EIO, "bundle: finishing the archive: %s", archive_error_string(a));
		goto out;
	}
	r = 0;
out:
	if (a != NULL)
		archive_write_free(a);
	return r;
}

/* rename(2) that never replaces; link + unlink where the file system has
 * no RENAME_NOREPLACE. */
static int rename_noreplace(int dirfd, const char *from, const char *to)
{
	if (renameat2(dirfd, from, dirfd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (linkat(dirfd, from, dirfd, to, 0) != 0)
		return -1;
	return unlinkat(dirfd, from, 0);
}

/* Reads the written file back as any reader would, and checks that it is
 * what was signed, signed by the identity's key. */
static int self_check(struct bundle_writer *w, const char *path, const uint8_t id[32],
                      struct sbx_err *e)
{
	struct bundle *b = NULL;
	struct sbx_err oe = { 0 };
	const char *text;
	const uint8_t *sig;
	uint8_t got[32];
	size_t tlen, slen;
	int r;

	r = bundle_open(path, &b, &oe);
	if (r != 0) {
		r = sbx_fail(e, SBX_EIO, "bundle: the written bundle does not read back (%s)", oe.msg);
		goto out;
	}
	bundle_id(b, got);
	text = bundle_manifest_text(b, &tlen);
	sig = bundle_signature(b, &slen);
	if (CRYPTO_memcmp(got, id, 32) != 0 ||
	    sig_verify(w->sign_pub, SIG_NS_BUNDLE, (const uint8_t *)text, tlen, sig, slen) != 0) {
		r = sbx_fail(e, SBX_EIO, "bundle: the written bundle is not the one signed");
		goto out;
	}
	r = 0;
out:
	bundle_close(b);
	return r;
}

int bundle_writer_finish(struct bundle_writer *w, bundle_sign_fn sign, void *sign_arg,
                         uint8_t cek[static 32], uint8_t bundle_id_out[static 32],
                         struct bundle_manifest *m_out, char *path_out, size_t path_cap,
                         struct sbx_err *e)
{
	struct payload_summary sum;
	char *manifest = NULL, *tmp = NULL, *tmppath = NULL, *final = NULL, idhex[65];
	uint8_t dg[32], sig[BUNDLE_MAX_SIG + 8], id[32];
	size_t mlen = 0, siglen = sizeof sig;
	int fd = -1, renamed = 0, r;

	if (path_out != NULL && path_cap > 0)
		path_out[0] = '\0';
	r = usable(w, e);
	if (r != 0)
		goto out;
	if (sign == NULL) {
		r = sbx_fail(e, SBX_EINVAL, "bundle: no signing callback");
		goto out;
	}
	/* The payload: index, final chunk; the spool is then complete. */
	r = payload_w_finish(w->pw, &sum, e);
	if (r == 0)
		r = stream_enc_final(w->enc, e);
	if (r == SBX_EIO && w->spool_errno != 0)
		spool_error(w, e);
	if (r == 0)
		r = inject(w, STEP_PAYLOAD, e);
	if (r != 0)
		goto out;
	if (hash_final(w->ct_hash, w->m.ciphertext_sha256) != 0) {
		r = sbx_fail(e, SBX_ECRYPTO, "bundle: hashing failed");
		goto out;
	}
	w->m.plaintext_bytes = sum.bytes;
	w->m.ciphertext_bytes = w->ct_len;
	w->m.items = sum.items;
	w->m.images = sum.items - 2;
	memcpy(w->m.index_sha256, sum.index_sha256, 32);
	w->m.reads = w->reads;
	w->m.cameras = w->reads > 0 ? payload_set_count(w->cameras) : 0;
	w->m.first_captured_ms = w->reads > 0 ? w->first_ms : 0;
	w->m.last_captured_ms = w->reads > 0 ? w->last_ms : 0;
	r = bundle_manifest_encode(&w->m, &manifest, &mlen);
	if (r != 0) {
		r = sbx_fail(e, r, "bundle: the manifest cannot be encoded (payload over 2^48 bytes?)");
		goto out;
	}

	/* Signed by the box, checked here before anything is written. */
	r = sig_digest(SIG_NS_BUNDLE, (const uint8_t *)manifest, mlen, dg);
	if (r != 0) {
		r = sbx_fail(e, SBX_ECRYPTO, "bundle: hashing the manifest failed");
		goto out;
	}
	r = sign(sign_arg, dg, sig, &siglen, e);
	if (r != 0) {
		r = sbx_fail(e, r, "bundle: signing the manifest failed");
		goto out;
	}
	if (siglen == 0 || siglen > BUNDLE_MAX_SIG ||
	    sig_verify(w->sign_pub, SIG_NS_BUNDLE, (const uint8_t *)manifest, mlen, sig, siglen) != 0) {
		r = sbx_fail(e, SBX_EVERIFY, "bundle: the signature does not verify under the "
		             "identity's signing key");
		goto out;
	}
	r = inject(w, STEP_SIGNED, e);
	if (r != 0)
		goto out;
	if (hash_sha256(manifest, mlen, id) != 0) {
		r = sbx_fail(e, SBX_ECRYPTO, "bundle: hashing the manifest failed");
		goto out;
	}
	hash_hex(id, 32, idhex);

	/* The container, durable before it gets its name. */
	r = tmp_create(w, "sbx", &tmp, &fd, e);
	if (r == 0)
		r = inject(w, STEP_TAR_CREATED, e);
	if (r == 0)
		r = tar_assemble(w, fd, manifest, mlen, sig, siglen, e);
	if (r == 0)
		r = inject(w, STEP_TAR_WRITTEN, e);
	if (r != 0)
		goto out;
	if (fchmod(fd, 0444) != 0 || fsync(fd) != 0) {
		r = sbx_fail(e, SBX_EIO, "bundle: fsync of %s/%s failed: %s", w->dir, tmp,
		             strerror(errno));
		goto out;
	}
	r = close(fd);
	fd = -1;
	if (r != 0) {
		r = sbx_fail(e, SBX_EIO, "bundle: close of %s/%s failed: %s", w->dir, tmp,
		             strerror(errno));
		goto out;
	}
	r = inject(w, STEP_FSYNCED, e);
	if (r != 0)
		goto out;
	if (asprintf(&tmppath, "%s/%s", w->dir, tmp) < 0 ||
	    asprintf(&final, "%s/%s.sbx", w->dir, idhex) < 0) {
		tmppath = final = NULL;
		r = sbx_fail(e, SBX_ENOMEM, "bundle: out of memory");
		goto out;
	}
	r = self_check(w, tmppath, id, e);
	if (r == 0)
		r = inject(w, STEP_CHECKED, e);
	if (r != 0)
		goto out;
	if (path_out != NULL && strlen(final) >= path_cap) {
		r = sbx_fail(e, SBX_EINVAL, "bundle: path buffer too small");
		goto out;
	}
	/* Never over an existing bundle (ids collide only if SHA-256 does). */
	if (rename_noreplace(w->dirfd, tmp, strrchr(final, '/') + 1) != 0) {
		r = sbx_fail(e, SBX_EIO, "bundle: cannot rename %s/%s to %s: %s", w->dir, tmp, final,
		             strerror(errno));
		goto out;
	}
	renamed = 1;
	r = inject(w, STEP_RENAMED, e);
	if (r == 0 && fsync(w->dirfd) != 0)
		r = sbx_fail(e, SBX_EIO, "bundle: fsync of directory %s failed: %s", w->dir,
		             strerror(errno));
	if (r != 0)
		goto out;

	memcpy(cek, w->cek, 32);
	memcpy(bundle_id_out, id, 32);
	if (m_out != NULL)
		*m_out = w->m;
	if (path_out != NULL)
		snprintf(path_out, path_cap, "%s", final);
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	if (r != 0 && tmp != NULL && !renamed)
		unlinkat(w->dirfd, tmp, 0);
	if (r != 0 && renamed) {
		/* Not known to be durable: take it back rather than leave a bundle
		 * whose record will never be written. */
		unlinkat(w->dirfd, strrchr(final, '/') + 1, 0);
		(void)fsync(w->dirfd);
	}
	free(manifest);
	free(tmp);
	free(tmppath);
	free(final);
	OPENSSL_cleanse(dg, sizeof dg);
	bundle_writer_abort(w);
	return r;
}

/* Where an opener puts plaintext before it knows the plaintext is genuine
 * (docs/PITFALLS "staging before commit"): a private directory next to the
 * output directory, on the same file system, renamed into place in one step
 * once every check passed, removed on any failure.  The output directory
 * itself is never written into: it must not exist, or be empty.
 *
 * Also the sink that writes a bundle's items (export/bundle.h) into a
 * directory of the staging area, checking each item path again and
 * recording each item's size and SHA-256 (for verification.json): hashed
 * here, or taken from the payload reader, which hashed the very same bytes
 * (item_writer_init_ended), on a thread of its own if asked
 * (item_writer_start_async).  Core library: libc, pthreads, crypto/hash. */
#ifndef SBX_STAGING_H
#define SBX_STAGING_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/err.h"
#include "export/bundle.h"

struct staging;

/* 0 if out_dir may become the output: absent, or an empty directory that
 * is not a symlink, in a parent directory that exists.  SBX_EEXIST if it
 * holds anything, SBX_EINVAL for "." and the like, SBX_EIO otherwise. */
int staging_check(const char *out_dir, struct sbx_err *e);
/* staging_check, then creates PARENT/.NAME.open-XXXXXX, mode 0700. */
int staging_new(const char *out_dir, struct staging **out, struct sbx_err *e);
/* The staging directory's path and an fd of it (owned by s). */
const char *staging_path(const struct staging *s);
int staging_fd(const struct staging *s);
/* Creates directory `name` (one component) inside the staging directory,
 * mode 0700, and returns an fd of it (owned by s, closed by commit/abort). */
int staging_mkdir(struct staging *s, const char *name, int *fd, struct sbx_err *e);
/* A whole small file (reports), mode 0600, in directory dirfd. */
int staging_write_file(int dirfd, const char *name, const void *p, size_t n,
                       struct sbx_err *e);
/* Flushes the whole file system (syncfs: one call instead of one fsync per
 * image), renames the staging directory to out_dir, fsyncs the parent.
 * On failure the staging directory is removed.  Frees s either way. */
int staging_commit(struct staging *s, struct sbx_err *e);
/* Removes the staging directory and everything in it; frees s. */
void staging_abort(struct staging *s);

/* ---- Items ---------------------------------------------------------------- */

struct hash_ctx;

struct staging_item {
	char *path;             /* "reads.jsonl", "images/..." */
	uint64_t size;
	uint8_t sha256[32];
	int ended;              /* sha256 came from item_writer_end */
};

/* Items 0 and 1 (reads.jsonl, reads.csv) stay open for the whole payload;
 * images come one at a time, each complete before the next is declared
 * (the framing of docs/FORMAT.md 5.2 as the parser enforces it): so three
 * open files and three running hashes at most. */
#define ITEM_SLOTS 3

struct item_async;

struct item_writer {
	int dirfd;              /* where items go (not owned) */
	int imgfd;              /* dirfd/images, created at the first image */
	int fd[ITEM_SLOTS];     /* open item files, -1 when none */
	size_t idx[ITEM_SLOTS]; /* which items[] each slot writes */
	struct hash_ctx *h[ITEM_SLOTS];
	struct staging_item *items;
	size_t n, cap;
	uint64_t jsonl_lines, images, bytes;
	int reader_hashes;      /* item_writer_init_ended: no hashing here */
	struct item_async *async;       /* item_writer_start_async: the writing thread */
};

/* dirfd: a directory inside the staging area. */
int item_writer_init(struct item_writer *w, int dirfd);
/* The callbacks for bundle_payload_read (sink->arg = w).  The path is
 * checked again here: only "reads.jsonl", "reads.csv" and
 * "images/NAME" (NAME 1-500 of A-Z a-z 0-9 . _ - ~, not starting with
 * '.') are ever created, each once, with O_EXCL|O_NOFOLLOW. */
int item_writer_begin(void *arg, uint32_t no, const char *path, struct sbx_err *e);
int item_writer_data(void *arg, uint32_t no, const uint8_t *p, size_t n, struct sbx_err *e);
/* As item_writer_init, for a sink whose end callback is item_writer_end
 * (bundle_payload_open): each item's SHA-256 is then the one the payload
 * reader computed over the bytes item_writer_data wrote, instead of a
 * second hash of them here. */
int item_writer_init_ended(struct item_writer *w, int dirfd);
/* The end callback (bundle_item_end_fn, arg = w): records the item's hash;
 * its size must be what item_writer_data wrote. */
int item_writer_end(void *arg, uint32_t no, uint64_t size, const uint8_t sha256[static 32],
                    struct sbx_err *e);
/* After item_writer_init_ended: the files are created and written by a
 * thread of their own, so that the file system's work overlaps the
 * decryption (sealbox-open).  The callbacks check, count and queue a copy;
 * a failure of the thread is returned by the next callback or by finish.
 * Without a thread (resources) the writer stays synchronous; 0 either way. */
int item_writer_start_async(struct item_writer *w);
/* After bundle_payload_read (or _open) returned 0: waits for the writing
 * thread, closes the open items; with item_writer_init_ended, fails unless
 * every item had its end. */
int item_writer_finish(struct item_writer *w, struct sbx_err *e);
/* Stops the writing thread at once, dropping what it has not written (the
 * caller removes the staging area); idempotent.  free does it too. */
void item_writer_stop(struct item_writer *w);
void item_writer_free(struct item_writer *w);

#endif

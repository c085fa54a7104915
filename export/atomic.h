/* Durable, atomic file creation and replacement: write an anonymous file
 * (O_TMPFILE; a named temporary file where the filesystem lacks it) in the
 * target's directory, fsync it, link or rename it into place, fsync the
 * directory.  A process killed before the commit leaves no file behind.
 * An fsync error fails the operation; it is never retried and trusted
 * (after a failed fsync the kernel may already have dropped the data). */
#ifndef SBX_ATOMIC_H
#define SBX_ATOMIC_H

#include <stddef.h>
#include <sys/types.h>

#include "crypto/err.h"

struct atomic_file {
	int fd;         /* read-write */
	char *path;     /* the target */
	char *tmp;      /* the named temporary file, NULL while anonymous */
};

/* Opens the file to write; on failure af needs no atomic_abort. */
int atomic_begin(struct atomic_file *af, const char *path, mode_t mode, struct sbx_err *e);
/* fsync, name it (replacing an existing target), fsync the directory.  Ends
 * af either way. */
int atomic_commit(struct atomic_file *af, struct sbx_err *e);
/* Drops the file: nothing is left under any name.  Idempotent. */
void atomic_abort(struct atomic_file *af);

int atomic_write_file(const char *path, const void *data, size_t len, mode_t mode,
                      struct sbx_err *e);
/* fsync a directory by path. */
int atomic_fsync_dir(const char *dir, struct sbx_err *e);
/* fsync the directory holding `path`. */
int atomic_fsync_parent(const char *path, struct sbx_err *e);
/* Copies all of src into the open file and fsyncs it (in the kernel where
 * it can: copy_file_range).  The file stays unnamed until atomic_commit. */
int atomic_fill_from(struct atomic_file *af, const char *src, struct sbx_err *e);
/* Copies src to dst the same way (temporary file, fsync, rename, fsync the
 * directory), in the kernel where it can (copy_file_range). */
int atomic_copy_file(const char *src, const char *dst, mode_t mode, struct sbx_err *e);

/* write() all of buf, retrying on EINTR and short writes. */
int atomic_write_all(int fd, const void *buf, size_t len);

#endif

/* Durable, atomic file replacement: write a temporary file in the target's
 * directory, fsync it, rename it over the target, fsync the directory.
 * An fsync error fails the operation; it is never retried and trusted
 * (after a failed fsync the kernel may already have dropped the data). */
#ifndef SBX_ATOMIC_H
#define SBX_ATOMIC_H

#include <stddef.h>
#include <sys/types.h>

#include "crypto/err.h"

int atomic_write_file(const char *path, const void *data, size_t len, mode_t mode,
                      struct sbx_err *e);
/* fsync a directory by path. */
int atomic_fsync_dir(const char *dir, struct sbx_err *e);
/* fsync the directory holding `path`. */
int atomic_fsync_parent(const char *path, struct sbx_err *e);
/* Copies src to dst the same way (temporary file, fsync, rename, fsync the
 * directory), in the kernel where it can (copy_file_range). */
int atomic_copy_file(const char *src, const char *dst, mode_t mode, struct sbx_err *e);

/* write() all of buf, retrying on EINTR and short writes. */
int atomic_write_all(int fd, const void *buf, size_t len);

#endif

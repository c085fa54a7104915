#include "export/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int atomic_write_all(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int atomic_fsync_dir(const char *dir, struct sbx_err *e)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return sbx_fail(e, SBX_EIO, "cannot open directory %s: %s", dir, strerror(errno));
	if (fsync(fd) != 0)
		r = sbx_fail(e, SBX_EIO, "fsync of directory %s failed: %s", dir, strerror(errno));
	close(fd);
	return r;
}

int atomic_fsync_parent(const char *path, struct sbx_err *e)
{
	char *copy = strdup(path);
	int r;

	if (copy == NULL)
		return SBX_ENOMEM;
	r = atomic_fsync_dir(dirname(copy), e);
	free(copy);
	return r;
}

int atomic_write_file(const char *path, const void *data, size_t len, mode_t mode,
                      struct sbx_err *e)
{
	char *tmp = NULL;
	int fd = -1, r = SBX_EIO;

	if (asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0) {
		tmp = NULL;
		r = SBX_ENOMEM;
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0) {
		r = sbx_fail(e, SBX_EIO, "cannot create %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (atomic_write_all(fd, data, len) != 0) {
		r = sbx_fail(e, SBX_EIO, "cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (fsync(fd) != 0) {
		r = sbx_fail(e, SBX_EIO, "fsync of %s failed: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		r = sbx_fail(e, SBX_EIO, "cannot close %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		r = sbx_fail(e, SBX_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
		goto out;
	}
	r = atomic_fsync_parent(path, e);
	free(tmp);
	return r;
out:
	if (fd >= 0)
		close(fd);
	if (tmp != NULL)
		unlink(tmp);
	free(tmp);
	return r;
}

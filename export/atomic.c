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

int atomic_copy_file(const char *src, const char *dst, mode_t mode, struct sbx_err *e)
{
	char *tmp = NULL;
	int in = -1, out = -1, r = SBX_EIO;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		r = sbx_fail(e, SBX_EIO, "cannot open %s: %s", src, strerror(errno));
		goto fail;
	}
	if (asprintf(&tmp, "%s.tmp.%ld", dst, (long)getpid()) < 0) {
		tmp = NULL;
		r = SBX_ENOMEM;
		goto fail;
	}
	out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (out < 0) {
		r = sbx_fail(e, SBX_EIO, "cannot create %s: %s", tmp, strerror(errno));
		goto fail;
	}
	for (;;) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)1 << 30, 0);

		if (n == 0)
			break;
		if (n > 0)
			continue;
		if (errno == EINTR)
			continue;
		if (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP) {
			char buf[1 << 16];
			ssize_t k;

			while ((k = read(in, buf, sizeof buf)) > 0)
				if (atomic_write_all(out, buf, (size_t)k) != 0)
					break;
			if (k == 0)
				break;
		}
		r = sbx_fail(e, SBX_EIO, "cannot copy %s to %s: %s", src, tmp, strerror(errno));
		goto fail;
	}
	if (fsync(out) != 0) {
		r = sbx_fail(e, SBX_EIO, "fsync of %s failed: %s", tmp, strerror(errno));
		goto fail;
	}
	if (close(out) != 0) {
		out = -1;
		r = sbx_fail(e, SBX_EIO, "cannot close %s: %s", tmp, strerror(errno));
		goto fail;
	}
	out = -1;
	if (rename(tmp, dst) != 0) {
		r = sbx_fail(e, SBX_EIO, "cannot rename %s to %s: %s", tmp, dst, strerror(errno));
		goto fail;
	}
	free(tmp);
	close(in);
	return atomic_fsync_parent(dst, e);
fail:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (tmp != NULL)
		unlink(tmp);
	free(tmp);
	return r;
}

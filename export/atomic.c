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

/* The temporary name, built in a local: given &af->tmp, the static
 * analyzer assumes asprintf may rewrite all of *af (af->path included). */
static int tmp_name(struct atomic_file *af, const char *path)
{
	char *t = NULL;

	if (asprintf(&t, "%s.tmp.%ld", path, (long)getpid()) < 0)
		return SBX_ENOMEM;
	af->tmp = t;
	return 0;
}

/* An anonymous file (O_TMPFILE) has no name until it is complete, so a
 * process killed while writing it leaves nothing behind: no orphan for
 * anyone to clean up in a directory that is not ours (a release's or an
 * export's output directory).  Filesystems without O_TMPFILE get a named
 * temporary file instead, removed on every failure the process survives. */
int atomic_begin(struct atomic_file *af, const char *path, mode_t mode, struct sbx_err *e)
{
	char *copy = NULL;
	int r = SBX_ENOMEM;

	memset(af, 0, sizeof *af);
	af->fd = -1;
	af->path = strdup(path);
	copy = strdup(path);
	if (af->path == NULL || copy == NULL)
		goto out;
	af->fd = open(dirname(copy), O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
	if (af->fd < 0) {
		if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
			r = sbx_fail(e, SBX_EIO, "cannot create a file beside %s: %s", path,
			             strerror(errno));
			goto out;
		}
		if (tmp_name(af, path) != 0) {
			r = SBX_ENOMEM;
			goto out;
		}
		af->fd = open(af->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
		if (af->fd < 0) {
			r = sbx_fail(e, SBX_EIO, "cannot create %s: %s", af->tmp, strerror(errno));
			free(af->tmp);
			af->tmp = NULL;
			goto out;
		}
	}
	r = 0;
out:
	free(copy);
	if (r != 0)
		atomic_abort(af);
	return r;
}

void atomic_abort(struct atomic_file *af)
{
	if (af->fd >= 0)
		close(af->fd);
	if (af->tmp != NULL)
		unlink(af->tmp);
	free(af->tmp);
	free(af->path);
	af->fd = -1;
	af->tmp = af->path = NULL;
}

/* Gives the anonymous file its name.  linkat() cannot replace a file, so a
 * target that exists is replaced through a named temporary and rename(). */
static int name_anonymous(struct atomic_file *af, struct sbx_err *e)
{
	char proc[64];

	snprintf(proc, sizeof proc, "/proc/self/fd/%d", af->fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, af->path, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	if (errno != EEXIST)
		return sbx_fail(e, SBX_EIO, "cannot create %s: %s", af->path, strerror(errno));
	if (tmp_name(af, af->path) != 0)
		return SBX_ENOMEM;
	if (linkat(AT_FDCWD, proc, AT_FDCWD, af->tmp, AT_SYMLINK_FOLLOW) != 0) {
		int r = sbx_fail(e, SBX_EIO, "cannot create %s: %s", af->tmp, strerror(errno));

		free(af->tmp);
		af->tmp = NULL;
		return r;
	}
	return 1;   /* named: rename it over the target */
}

int atomic_commit(struct atomic_file *af, struct sbx_err *e)
{
	int r, named = af->tmp != NULL;

	if (fsync(af->fd) != 0) {
		r = sbx_fail(e, SBX_EIO, "fsync of %s failed: %s", af->path, strerror(errno));
		goto out;
	}
	if (!named) {
		r = name_anonymous(af, e);
		if (r < 0)
			goto out;
		named = r == 1;
	}
	if (named && rename(af->tmp, af->path) != 0) {
		r = sbx_fail(e, SBX_EIO, "cannot rename %s to %s: %s", af->tmp, af->path,
		             strerror(errno));
		goto out;
	}
	free(af->tmp);
	af->tmp = NULL;   /* it is the target now: never unlink it */
	if (close(af->fd) != 0) {
		af->fd = -1;
		r = sbx_fail(e, SBX_EIO, "cannot close %s: %s", af->path, strerror(errno));
		goto out;
	}
	af->fd = -1;
	r = atomic_fsync_parent(af->path, e);
out:
	atomic_abort(af);
	return r;
}

int atomic_write_file(const char *path, const void *data, size_t len, mode_t mode,
                      struct sbx_err *e)
{
	struct atomic_file af;
	int r = atomic_begin(&af, path, mode, e);

	if (r != 0)
		return r;
	if (atomic_write_all(af.fd, data, len) != 0) {
		r = sbx_fail(e, SBX_EIO, "cannot write %s: %s", path, strerror(errno));
		atomic_abort(&af);
		return r;
	}
	return atomic_commit(&af, e);
}

int atomic_fill_from(struct atomic_file *af, const char *src, struct sbx_err *e)
{
	int in, r = SBX_EIO;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return sbx_fail(e, SBX_EIO, "cannot open %s: %s", src, strerror(errno));
	for (;;) {
		ssize_t n = copy_file_range(in, NULL, af->fd, NULL, (size_t)1 << 30, 0);

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
				if (atomic_write_all(af->fd, buf, (size_t)k) != 0)
					break;
			if (k == 0)
				break;
		}
		r = sbx_fail(e, SBX_EIO, "cannot copy %s to %s: %s", src, af->path, strerror(errno));
		goto out;
	}
	if (fsync(af->fd) != 0) {
		r = sbx_fail(e, SBX_EIO, "fsync of %s failed: %s", af->path, strerror(errno));
		goto out;
	}
	r = 0;
out:
	close(in);
	return r;
}

int atomic_copy_file(const char *src, const char *dst, mode_t mode, struct sbx_err *e)
{
	struct atomic_file af;
	int r = atomic_begin(&af, dst, mode, e);

	if (r != 0)
		return r;
	r = atomic_fill_from(&af, src, e);
	if (r != 0) {
		atomic_abort(&af);
		return r;
	}
	return atomic_commit(&af, e);
}

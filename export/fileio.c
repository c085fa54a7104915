#include "export/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fileio_read(const char *path, uint64_t cap, uint8_t **out, size_t *outlen,
                struct sbx_err *e)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t got = 0;
	int fd, r = SBX_EIO;

	*out = NULL;
	*outlen = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = sbx_fail(e, SBX_EIO, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		r = sbx_fail(e, SBX_EIO, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = sbx_fail(e, SBX_EIO, "%s: not a regular file", path);
		goto out;
	}
	if ((uint64_t)st.st_size > cap || (uint64_t)st.st_size > SIZE_MAX - 1) {
		r = sbx_fail(e, SBX_EFORMAT, "%s: %jd bytes, more than %" PRIu64 " allowed", path,
		             (intmax_t)st.st_size, cap);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		r = sbx_fail(e, SBX_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = sbx_fail(e, SBX_EIO, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0) {
			r = sbx_fail(e, SBX_EIO, "%s: the file shrank while being read", path);
			goto out;
		}
		got += (size_t)n;
	}
	buf[got] = '\0';
	*out = buf;
	buf = NULL; /* transferred */
	*outlen = got;
	r = 0;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return r;
}

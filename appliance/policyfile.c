#include "appliance/policyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int policyfile_load(const char *path, uint8_t **text, size_t *len, struct policy *p,
                    struct sbx_err *e)
{
	uint8_t *buf = NULL;
	size_t n = 0;
	struct stat sb;
	int fd = -1, r = SBX_EIO;

	*text = NULL;
	*len = 0;
	if (path == NULL) {
		const char *d = policy_default_text();

		n = strlen(d);
		buf = malloc(n + 1);
		if (buf == NULL)
			return SBX_ENOMEM;
		memcpy(buf, d, n + 1);
	} else {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0) {
			r = sbx_fail(e, SBX_EIO, "cannot open policy file %s: %s", path, strerror(errno));
			goto out;
		}
		if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
			r = sbx_fail(e, SBX_EFORMAT, "policy file %s is not a regular file", path);
			goto out;
		}
		if (sb.st_size > POLICY_MAX_BYTES) {
			r = sbx_fail(e, SBX_EFORMAT, "policy file %s is larger than %d bytes",
			             path, POLICY_MAX_BYTES);
			goto out;
		}
		buf = malloc((size_t)sb.st_size + 1);
		if (buf == NULL) {
			r = SBX_ENOMEM;
			goto out;
		}
		/* Read to EOF rather than trusting st_size: the file may change. */
		for (;;) {
			ssize_t k = read(fd, buf + n, (size_t)sb.st_size + 1 - n);

			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0) {
				r = sbx_fail(e, SBX_EIO, "cannot read policy file %s: %s", path, strerror(errno));
				goto out;
			}
			if (k == 0)
				break;
			n += (size_t)k;
			if (n > (size_t)sb.st_size) {
				r = sbx_fail(e, SBX_EFORMAT, "policy file %s changed while being read", path);
				goto out;
			}
		}
		buf[n] = 0;
	}
	r = policy_parse(buf, n, p, e);
	if (r != 0) {
		if (path != NULL && e != NULL && strncmp(e->msg, "policy file", 11) != 0) {
			char m[sizeof e->msg + 4200];
			size_t k;

			snprintf(m, sizeof m, "policy file %s: %s", path, e->msg);
			k = strlen(m);
			if (k >= sizeof e->msg)
				k = sizeof e->msg - 1;
			memcpy(e->msg, m, k);
			e->msg[k] = '\0';
		}
		/* Keep the parser's verdict: malformed (EFORMAT) or asking for
		 * something never allowed (EPOLICY). */
		goto out;
	}
	*text = buf;
	*len = n;
	buf = NULL;   /* transferred */
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return r;
}

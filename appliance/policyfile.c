#include "appliance/policyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "export/fileio.h"

int policyfile_load(const char *path, uint8_t **text, size_t *len, struct policy *p,
                    struct sbx_err *e)
{
	uint8_t *buf = NULL;
	size_t n = 0;
	int r = SBX_EIO;

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
		r = fileio_read(path, POLICY_MAX_BYTES, &buf, &n, e);
		if (r != 0) {
			if (r == SBX_EFORMAT && e != NULL)
				snprintf(e->msg, sizeof e->msg, "policy file %s is larger than %d bytes",
				         path, POLICY_MAX_BYTES);
			goto out;
		}
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
	free(buf);
	return r;
}

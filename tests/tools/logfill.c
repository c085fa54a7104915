/* logfill STATE N: appends N custody records to a provisioned box through
 * the real append path (TPM clock, TPM-signed heads, counter anchors every
 * 50th record and on the last), so the tamper tests get a big log without N process starts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/box.h"
#include "appliance/custody.h"

int main(int argc, char **argv)
{
	struct sbx_err e = { 0 };
	struct box *b = NULL;
	struct logrec *rec = NULL;
	long n;
	int r;

	if (argc != 3 || (n = strtol(argv[2], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: logfill STATE N   (SEALBOX_TCTI names the TPM)\n");
		return 2;
	}
	r = box_open(argv[1], getenv("SEALBOX_TCTI"), BOX_TPM | BOX_WRITE, &b, &e);
	if (r != 0)
		goto out;
	rec = malloc(sizeof *rec);
	if (rec == NULL) {
		r = SBX_ENOMEM;
		goto out;
	}
	for (long i = 0; i < n && r == 0; i++) {
		int anchor = (i % 50) == 49 || i == n - 1;

		memset(rec, 0, sizeof *rec);
		snprintf(rec->event, sizeof rec->event, anchor ? "log.checkpoint" : "view");
		snprintf(rec->outcome, sizeof rec->outcome, "ok");
		snprintf(rec->operator_id, sizeof rec->operator_id, "filler%ld", i % 7);
		snprintf(rec->case_id, sizeof rec->case_id, "CASE-%ld", i % 13);
		snprintf(rec->detail, sizeof rec->detail, "n=%ld", i);
		r = custody_append(b, rec, anchor, NULL, NULL, &e);
	}
out:
	if (r != 0)
		fprintf(stderr, "logfill: %s\n", e.msg[0] ? e.msg : sbx_strerror(r));
	free(rec);
	box_close(b);
	return r == 0 ? 0 : 1;
}

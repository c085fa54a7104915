/* libFuzzer harness: logexport_verify on any bytes, checked to the end
 * (keep_going) and rendered as text and JSON; then, stopping at the first
 * failure, against itself as the "older" export.  Each input is tried as it
 * is and with its last 32 bytes replaced by the right checksum, so that
 * mutations get past the checksum to the checks behind it.  Properties: a
 * report that says every required check passed agrees with the return
 * code, and an export that verifies extends itself.  Seed: a valid
 * two-record export from a swtpm-provisioned identity, written by
 * test_logexport (SBX_LOGEXPORT_SEED=FILE). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/err.h"
#include "crypto/hash.h"
#include "export/logexport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int all_required_pass(const struct logexport_report *rep)
{
	for (int c = 0; c < LOGEXPORT_N_CHECKS; c++) {
		if (c == LOGEXPORT_PIN || c == LOGEXPORT_OLDER || c == LOGEXPORT_CONSISTENCY)
			continue;
		if (rep->check[c].status != LOGEXPORT_PASS)
			return 0;
	}
	return 1;
}

static void one(const uint8_t *data, size_t size)
{
	static FILE *sink;
	static struct logexport_report rep;
	struct logexport_opts o = { 0 };
	struct sbx_err e = { 0 };
	int rc;

	if (sink == NULL)
		sink = fopen("/dev/null", "w");
	o.keep_going = 1;
	rc = logexport_verify(data, size, &o, &rep, &e);
	if ((rc == 0) != all_required_pass(&rep))
		abort();
	if (sink != NULL) {
		logexport_report_print(sink, &rep);
		logexport_report_json(sink, &rep);
	}
	o.keep_going = 0;
	o.older = data;
	o.older_len = size;
	if (logexport_verify(data, size, &o, &rep, &e) != rc)
		abort();   /* an export that verifies must extend itself; one that does not, must fail again */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *fixed;

	one(data, size);
	if (size < 32 || (fixed = malloc(size)) == NULL)
		return 0;
	memcpy(fixed, data, size - 32);
	if (hash_sha256(fixed, size - 32, fixed + size - 32) == 0)
		one(fixed, size);
	free(fixed);
	return 0;
}

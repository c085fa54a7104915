/* libFuzzer harness for the release file and statement parsers
 * (export/release.c): release_file_decode, then release_statement_parse on
 * the statement it carries (and on the whole input, as a statement), and
 * the structural parsers of the other fields (certificate, wrapped key,
 * custody file).  Invariants: a decoded release re-encodes to exactly the
 * input; an accepted statement re-encodes to exactly its text (one
 * canonical form); a refusal is SBX_EFORMAT with a one-line message and
 * leaves nothing behind.
 *
 * Build and run (60 s): make fuzz FUZZ_TIME=60, or by hand
 *   make BUILD=build/fuzz CC=clang FUZZ=1 build/fuzz/fuzz/fuzz_release
 *   build/fuzz/fuzz/fuzz_release -max_total_time=60 tests/fuzz/corpus/fuzz_release */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/err.h"
#include "crypto/wrap.h"
#include "export/bundle.h"
#include "export/release.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_statement(const uint8_t *p, size_t n)
{
	struct release_statement st;
	struct sbx_err e = { 0 };
	char *again = NULL;
	size_t alen = 0;
	int r = release_statement_parse((const char *)p, n, &st, &e);

	if (r != 0) {
		if (r != SBX_EFORMAT || e.msg[0] == '\0' || memchr(e.msg, '\n', sizeof e.msg) != NULL)
			abort();
		return;
	}
	if (release_statement_encode(&st, &again, &alen) != 0 || alen != n ||
	    memcmp(again, p, n) != 0)
		abort();
	free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct release_file f;
	struct sbx_err e = { 0 };
	uint8_t *again = NULL, sha[32];
	size_t alen = 0;
	char subject[1025];
	int r;

	check_statement(data, size);

	r = release_file_decode(data, size, &f, &e);
	if (r != 0) {
		if (r != SBX_EFORMAT || e.msg[0] == '\0' || f.statement != NULL)
			abort();
		return 0;
	}
	if (release_file_encode(&f, &again, &alen) != 0 || alen != size ||
	    memcmp(again, data, size) != 0)
		abort();
	free(again);
	check_statement(f.statement, f.statement_len);
	{
		struct wrap_blob wb;
		struct bundle_custody *c = calloc(1, sizeof *c);

		(void)wrap_parse(f.wrapped, f.wrapped_len, &wb, NULL);
		(void)release_cert_info(f.cert, f.cert_len, sha, subject, sizeof subject, NULL);
		if (c != NULL && bundle_custody_decode(f.custody, f.custody_len, c, NULL) == 0)
			bundle_custody_free(c);
		free(c);
	}
	release_file_free(&f);
	return 0;
}

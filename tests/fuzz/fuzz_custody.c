/* libFuzzer harness: bundle_custody_decode on arbitrary bytes, then
 * bundle_custody_verify against the test vector bundle
 * (tests/vectors/bundle/<id>.sbx, looked up from the current directory or
 * $SBX_TOP; without it only decoding is fuzzed).
 *
 * Property: decoding is exact, so whatever decodes re-encodes to the very
 * same bytes.
 *
 * Build and run (60 s), once the tree compiles:
 *   make BUILD=build/fuzz-you CC=clang FUZZ=1 build/fuzz-you/fuzz/fuzz_custody
 *   build/fuzz-you/fuzz/fuzz_custody -max_total_time=60 CORPUS_COPY tests/fuzz/corpus/fuzz_custody */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/err.h"
#include "export/bundle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static struct bundle *vec;
static struct bundle_custody *cust;

static void must(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *top = getenv("SBX_TOP");
	char dir[4096], path[8192];
	struct dirent *de;
	struct sbx_err e = { 0 };
	DIR *d;

	cust = calloc(1, sizeof *cust);
	must(cust != NULL);
	snprintf(dir, sizeof dir, "%s/tests/vectors/bundle", top ? top : ".");
	d = opendir(dir);
	while (d != NULL && vec == NULL && (de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);

		if (n > 4 && strcmp(de->d_name + n - 4, ".sbx") == 0) {
			snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
			if (bundle_open(path, &vec, &e) != 0)
				vec = NULL;
		}
	}
	if (d != NULL)
		closedir(d);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sbx_err e = { 0 };
	struct sth head;
	uint8_t *re = NULL;
	size_t relen = 0;

	if (bundle_custody_decode(data, size, cust, &e) != 0) {
		must(cust->n == 0 && e.code == SBX_EFORMAT);
		return 0;
	}
	must(bundle_custody_encode(cust, &re, &relen) == 0 && relen == size &&
	     memcmp(re, data, size) == 0);
	free(re);
	if (vec != NULL)
		(void)bundle_custody_verify(vec, cust, &head, &e);
	bundle_custody_free(cust);
	return 0;
}

/* libFuzzer harness: bundle_open_mem on arbitrary bytes (libarchive's tar
 * reader, the entry checks, the strict manifest, the identity, the
 * canonical-container comparison), then bundle_verify and
 * bundle_payload_read under the test vector's CEK (tests/vectors/bundle).
 *
 * Properties: whatever opens has a manifest that re-encodes to exactly its
 * own bytes, a bundle id that is the SHA-256 of those bytes, and a payload
 * span that lies inside the input and ends 1024..1535 bytes before its end.
 *
 * Build and run (60 s), once the tree compiles:
 *   make BUILD=build/fuzz-you CC=clang FUZZ=1 build/fuzz-you/fuzz/fuzz_bundle
 *   build/fuzz-you/fuzz/fuzz_bundle -max_total_time=60 CORPUS_COPY tests/fuzz/corpus/fuzz_bundle */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/err.h"
#include "crypto/hash.h"
#include "export/bundle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bundle *b = NULL;
	struct bundle_report rep;
	struct sbx_err e = { 0 };
	uint8_t cek[32], id[32], dg[32];
	const char *text;
	char *re = NULL;
	size_t tlen, relen = 0;
	uint64_t off, len;

	if (bundle_open_mem(data, size, &b, &e) != 0) {
		must(b == NULL && e.code != 0 && e.msg[0] != '\0');
		return 0;
	}
	text = bundle_manifest_text(b, &tlen);
	must(bundle_manifest_encode(bundle_manifest(b), &re, &relen) == 0 && relen == tlen &&
	     memcmp(re, text, tlen) == 0);
	free(re);
	bundle_id(b, id);
	must(hash_sha256(text, tlen, dg) == 0 && memcmp(dg, id, 32) == 0);
	bundle_payload_span(b, &off, &len);
	must(off <= size && len <= size - off && size - off - len >= 1024 &&
	     size - off - len < 1024 + 512);
	(void)bundle_verify(b, NULL, &rep, &e);
	for (int i = 0; i < 32; i++)
		cek[i] = (uint8_t)(0x40 + i);
	(void)bundle_payload_read(b, cek, NULL, &e);
	bundle_close(b);
	return 0;
}

/* libFuzzer harness: the two TPM structure parsers of crypto/attest.h.
 * Every input goes through both; properties: a parsed public area's Name
 * is SHA-256 over exactly the input, and its point converts to a key and
 * SPKI only if it is on the curve. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "crypto/attest.h"
#include "crypto/hash.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct attest_public p;
	struct attest_certify c;
	uint8_t dg[HASH_LEN], *der = NULL;
	size_t derlen = 0;
	EVP_PKEY *k = NULL;

	if (attest_public_parse(data, size, &p) == 0) {
		if (hash_sha256(data, size, dg) != 0 || memcmp(p.name + 2, dg, HASH_LEN) != 0)
			abort();
		if (attest_public_pkey(&p, &k) == 0) {
			EVP_PKEY_free(k);
			if (attest_public_spki(&p, &der, &derlen) != 0)
				abort();   /* a valid key must encode */
			OPENSSL_free(der);
		}
	}
	if (attest_certify_parse(data, size, &c) == 0) {
		if (c.extra_len > sizeof c.extra || c.name_len > sizeof c.name ||
		    c.qname_len > sizeof c.qname || c.signer_len > sizeof c.signer)
			abort();
	}
	return 0;
}

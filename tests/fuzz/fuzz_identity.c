/* libFuzzer harness: identity_decode, then identity_check on whatever
 * decodes, then a canonical-form property (a decoded file re-encodes to the
 * same bytes).  Set SBX_FUZZ_EKCA to a PEM file to fuzz the EK chain path
 * too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/err.h"
#include "export/identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct identity id;
	struct identity_report rep;
	struct sbx_err e = {0};
	uint8_t *enc = NULL;
	size_t len = 0;
	EVP_PKEY *k = NULL;

	if (identity_decode(data, size, &id) != 0)
		return 0;
	if (identity_encode(&id, &enc, &len) != 0 || len != size || memcmp(enc, data, size) != 0)
		abort();   /* decode accepted something encode would not write */
	free(enc);
	(void)identity_check(&id, getenv("SBX_FUZZ_EKCA"), &rep, &e);
	if (identity_sign_pkey(&id, &k) == 0)
		EVP_PKEY_free(k);
	if (identity_decrypt_pkey(&id, &k) == 0)
		EVP_PKEY_free(k);
	return 0;
}

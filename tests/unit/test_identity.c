/* needs: swtpm
 *
 * The identity file and identity_check, on an identity freshly provisioned
 * on swtpm (a committed vector would carry an EK certificate whose validity
 * starts at the time it was made, so it could be "not yet valid" on a
 * machine with an earlier clock).  Every forgery here must fail. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>

#include "crypto/attest.h"
#include "crypto/err.h"
#include "crypto/tpm.h"
#include "crypto/tpm_ident.h"
#include "export/identity.h"
#include "tests/unit/check.h"

static char tmpdir[] = "/tmp/sbx-test-identity.XXXXXX";
static const char *ekca;

static int check_id(const struct identity *id, const char *ca, struct identity_report *rep,
                    struct sbx_err *e)
{
	sbx_err_clear(e);
	return identity_check(id, ca, rep, e);
}

static void test_decode(const uint8_t *enc, size_t len, const struct identity *id)
{
	struct identity *back = calloc(1, sizeof *back);
	uint8_t *buf = malloc(len + 1);
	size_t bad = 0;

	if (!CHECK(back != NULL && buf != NULL))
		goto out;
	CHECK(identity_decode(enc, len, back) == 0 && memcmp(back, id, sizeof *id) == 0);
	for (size_t n = 0; n < len; n++)
		if (identity_decode(enc, n, back) != SBX_EFORMAT)
			bad++;
	CHECK_MSG(bad == 0, "identity_decode rejects truncation at every length");
	memcpy(buf, enc, len);
	buf[len] = 0;
	CHECK_MSG(identity_decode(buf, len + 1, back) == SBX_EFORMAT, "identity_decode rejects a trailing byte");
	buf[0] ^= 0x20;
	CHECK_MSG(identity_decode(buf, len, back) == SBX_EFORMAT, "identity_decode rejects a wrong magic");
	buf[0] ^= 0x20;
	buf[4] = 2;
	CHECK_MSG(identity_decode(buf, len, back) == SBX_EFORMAT, "identity_decode rejects version 2");
	buf[4] = 0;
	CHECK_MSG(identity_decode(buf, len, back) == SBX_EFORMAT, "identity_decode rejects version 0");
	buf[4] = 1;
	CHECK(identity_decode(buf, len, back) == 0);
	/* A length field one larger than the data behind it. */
	buf[4 + 1 + 32 + 3]++;
	CHECK_MSG(identity_decode(buf, len, back) == SBX_EFORMAT, "identity_decode rejects a wrong sign_pub length");
out:
	free(buf);
	free(back);
}

static void test_encode_refuses(const struct identity *id)
{
	struct identity *x = malloc(sizeof *x);
	uint8_t *enc = NULL;
	size_t len = 0;

	if (!CHECK(x != NULL))
		return;
	memcpy(x, id, sizeof *x);
	if (x->n_ekcerts >= 1) {
		x->ekcerts[x->n_ekcerts] = x->ekcerts[0];
		x->n_ekcerts++;
		CHECK_MSG(identity_encode(x, &enc, &len) == SBX_EINVAL, "identity_encode refuses a duplicate EK index");
		x->n_ekcerts--;
		x->ekcerts[0].nv_index = 0x01c00003;
		CHECK_MSG(identity_encode(x, &enc, &len) == SBX_EINVAL, "identity_encode refuses an unknown EK index");
	}
	memcpy(x, id, sizeof *x);
	x->certify_sig.len = 0;
	CHECK_MSG(identity_encode(x, &enc, &len) == SBX_EINVAL, "identity_encode refuses an empty field");
	free(enc);
	free(x);
}

static void test_forgeries(const struct identity *id)
{
	struct identity *x = malloc(sizeof *x);
	struct identity_report rep;
	struct sbx_err e;
	size_t bad = 0;
	char path[256], cmd[768];

	if (!CHECK(x != NULL))
		return;
	memcpy(x, id, sizeof *x);
	CHECK(check_id(x, ekca, &rep, &e) == 0);
	CHECK_MSG(check_id(x, NULL, &rep, &e) == 0 && rep.ekcert_chain_ok == -1,
	          "without a CA the EK chain is reported unchecked");

	for (size_t i = 0; i < id->certify_attest.len; i++) {
		x->certify_attest.b[i] ^= 0x01;
		if (check_id(x, ekca, &rep, &e) != SBX_EVERIFY || rep.certify_ok != 0)
			bad++;
		x->certify_attest.b[i] ^= 0x01;
	}
	CHECK_MSG(bad == 0, "a flipped bit anywhere in the certify is rejected");
	bad = 0;
	for (size_t i = 0; i < id->certify_sig.len; i++) {
		x->certify_sig.b[i] ^= 0x01;
		if (check_id(x, ekca, &rep, &e) != SBX_EVERIFY || rep.certify_ok != 0)
			bad++;
		x->certify_sig.b[i] ^= 0x01;
	}
	CHECK_MSG(bad == 0, "a flipped bit anywhere in the AK signature is rejected");

	x->certify_nonce[7] ^= 0x80;
	CHECK_MSG(check_id(x, ekca, &rep, &e) == SBX_EVERIFY && rep.certify_ok == 0,
	          "a certify for another nonce is rejected");
	CHECK(strstr(e.msg, "nonce") != NULL);
	memcpy(x, id, sizeof *x);

	/* DECRYPT put in SIGN's place, with a matching appliance_id so only the
	 * key checks can catch it. */
	x->sign_pub = id->decrypt_pub;
	CHECK(identity_compute_id(x) == 0);
	CHECK_MSG(check_id(x, ekca, &rep, &e) == SBX_EVERIFY && rep.sign_attrs_ok == 0 &&
	          rep.certify_ok == 0 && rep.appliance_id_ok == 1,
	          "decrypt_pub swapped in for sign_pub is rejected");
	memcpy(x, id, sizeof *x);
	x->sign_pub = id->ak_pub;
	CHECK(identity_compute_id(x) == 0);
	CHECK_MSG(check_id(x, ekca, &rep, &e) == SBX_EVERIFY && rep.sign_attrs_ok == 0 && rep.certify_ok == 0,
	          "ak_pub swapped in for sign_pub is rejected");
	memcpy(x, id, sizeof *x);
	x->ak_pub = id->sign_pub;
	CHECK_MSG(check_id(x, ekca, &rep, &e) == SBX_EVERIFY && rep.ak_attrs_ok == 0,
	          "an unrestricted key as AK is rejected");
	memcpy(x, id, sizeof *x);
	/* Attributes are covered by the Name: drop noDA from SIGN's public area. */
	x->sign_pub.b[6] ^= 0x04;   /* attrs are bytes 4..7; 0x400 is noDA */
	CHECK(identity_compute_id(x) == 0);
	CHECK_MSG(check_id(x, ekca, &rep, &e) == SBX_EVERIFY && rep.sign_attrs_ok == 1 && rep.certify_ok == 0,
	          "a changed attribute in sign_pub breaks the certify");
	memcpy(x, id, sizeof *x);
	x->appliance_id[31] ^= 1;
	CHECK_MSG(check_id(x, ekca, &rep, &e) == SBX_EVERIFY && rep.appliance_id_ok == 0 && rep.certify_ok == 1,
	          "a wrong appliance_id is rejected");
	memcpy(x, id, sizeof *x);

	/* EK chain: a CA with the same name but another key; the intermediate
	 * alone (partial chains are off); a corrupted EK certificate. */
	snprintf(cmd, sizeof cmd,
	         "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	         "-keyout k.pem -out wrong.pem -subj /CN=swtpm-localca-rootca -days 2 >/dev/null 2>&1 && "
	         "awk '/BEGIN/{n++} n==2' %s > inter.pem", tmpdir, ekca);
	CHECK(system(cmd) == 0);
	snprintf(path, sizeof path, "%s/wrong.pem", tmpdir);
	CHECK_MSG(check_id(x, path, &rep, &e) == SBX_EVERIFY && rep.ekcert_chain_ok == 0 &&
	          rep.certify_ok == 1, "an EK certificate checked against a wrong CA is rejected");
	CHECK(strstr(e.msg, "EK certificate") != NULL);
	snprintf(path, sizeof path, "%s/inter.pem", tmpdir);
	CHECK_MSG(check_id(x, path, &rep, &e) == SBX_EVERIFY && rep.ekcert_chain_ok == 0,
	          "the intermediate alone is not a trust anchor");
	snprintf(path, sizeof path, "%s/missing.pem", tmpdir);
	CHECK_MSG(check_id(x, path, &rep, &e) == SBX_EVERIFY && rep.ekcert_chain_ok == 0,
	          "a missing CA file fails the check");
	if (x->n_ekcerts > 0) {
		x->ekcerts[0].der[x->ekcerts[0].len - 1] ^= 1;
		CHECK_MSG(check_id(x, ekca, &rep, &e) == SBX_EVERIFY && rep.ekcert_chain_ok == 0,
		          "a corrupted EK certificate signature is rejected");
		memcpy(x, id, sizeof *x);
		x->n_ekcerts = 0;
		CHECK_MSG(check_id(x, ekca, &rep, &e) == SBX_EVERIFY && rep.ekcert_present == 0,
		          "a CA given but no EK certificate fails");
	}
	free(x);
}

int main(void)
{
	const char *tcti = getenv("SEALBOX_TCTI");
	struct tpm_identity *tid = calloc(1, sizeof *tid);
	struct identity *id = calloc(1, sizeof *id);
	struct tpm *t = NULL;
	struct sbx_err e = {0};
	uint8_t nonce[32], *enc = NULL;
	size_t len = 0;
	char cmd[300];

	ekca = getenv("SBX_TEST_EKCA");
	if (!CHECK_MSG(tcti != NULL && ekca != NULL && tid != NULL && id != NULL,
	               "SEALBOX_TCTI and SBX_TEST_EKCA set (run under with-swtpm.sh)"))
		return check_done();
	if (!CHECK(mkdtemp(tmpdir) != NULL))
		return check_done();
	CHECK(RAND_bytes(nonce, sizeof nonce) == 1);
	if (!CHECK(tpm_open(tcti, &t, &e) == 0 && tpm_provision(t, nonce, tid, &e) == 0)) {
		printf("# %s\n", e.msg);
		return check_done();
	}
	tpm_close(t);
	CHECK(tpm_identity_export(tid, id) == 0);
	CHECK(identity_encode(id, &enc, &len) == 0);
	printf("# identity file: %zu bytes, %zu EK certificates\n", len, id->n_ekcerts);
	test_decode(enc, len, id);
	test_encode_refuses(id);
	test_forgeries(id);

	snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
	CHECK(system(cmd) == 0);
	free(enc);
	free(id);
	free(tid);
	return check_done();
}

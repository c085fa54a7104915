/* needs: swtpm
 *
 * The TPM layer against a fresh swtpm: provisioning, signatures checked by
 * OpenSSL and by the stock openssl command, the certify, the counter, ECDH,
 * refusals.  Prints rough latencies as "#" lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "crypto/attest.h"
#include "crypto/err.h"
#include "crypto/sig.h"
#include "crypto/tpm.h"
#include "crypto/tpm_ident.h"
#include "export/identity.h"
#include "tests/unit/check.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof *v, cmp_double);
	return v[n / 2];
}

static int write_file(const char *path, const void *b, size_t n)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (f == NULL)
		return -1;
	ok = fwrite(b, 1, n, f) == n;
	return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* Checks a tpm_sign signature with the stock openssl command, as the docs
 * tell an auditor to. */
static void check_openssl_cli(EVP_PKEY *pub, const char *ns, const uint8_t *msg, size_t len,
                              const uint8_t *sig, size_t siglen)
{
	char dir[] = "/tmp/sbx-test-tpm.XXXXXX", path[256], cmd[1024];
	uint8_t signed_msg[256];
	size_t nslen = strlen(ns) + 1;
	FILE *f;
	int rc;

	if (!CHECK(mkdtemp(dir) != NULL))
		return;
	snprintf(path, sizeof path, "%s/sign.pem", dir);
	f = fopen(path, "w");
	CHECK(f != NULL && PEM_write_PUBKEY(f, pub) == 1);
	if (f != NULL)
		fclose(f);
	memcpy(signed_msg, ns, nslen);
	memcpy(signed_msg + nslen, msg, len);
	snprintf(path, sizeof path, "%s/signed.bin", dir);
	CHECK(write_file(path, signed_msg, nslen + len) == 0);
	snprintf(path, sizeof path, "%s/sig.der", dir);
	CHECK(write_file(path, sig, siglen) == 0);
	snprintf(cmd, sizeof cmd,
	         "cd %s && openssl dgst -sha256 -verify sign.pem -signature sig.der signed.bin >/dev/null 2>&1",
	         dir);
	rc = system(cmd);
	CHECK_MSG(rc == 0, "openssl dgst -verify accepts the TPM signature");

	signed_msg[nslen] ^= 1;
	snprintf(path, sizeof path, "%s/signed.bin", dir);
	CHECK(write_file(path, signed_msg, nslen + len) == 0);
	rc = system(cmd);
	CHECK_MSG(rc != 0, "openssl dgst -verify rejects a changed message");

	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
}

static void test_open_refuses(void)
{
	struct tpm *t = (struct tpm *)1;
	struct sbx_err e = {0};

	CHECK_MSG(tpm_open(NULL, &t, &e) == SBX_EINVAL && t == NULL, "tpm_open(NULL) refuses");
	sbx_err_clear(&e);
	t = (struct tpm *)1;
	CHECK_MSG(tpm_open("", &t, &e) == SBX_EINVAL && t == NULL, "tpm_open(\"\") refuses");
	CHECK(strstr(e.msg, "TCTI") != NULL);
	sbx_err_clear(&e);
	CHECK_MSG(tpm_open("swtpm:path=/nonexistent/sock", &t, &e) == SBX_ETPM && t == NULL,
	          "tpm_open on a missing socket fails with SBX_ETPM");
}

static void test_keys(const struct tpm_identity *id)
{
	struct attest_public sign, dec, ak;
	struct attest_certify c;

	CHECK(attest_public_parse(id->sign_pub.b, id->sign_pub.len, &sign) == 0);
	CHECK(attest_public_parse(id->decrypt_pub.b, id->decrypt_pub.len, &dec) == 0);
	CHECK(attest_public_parse(id->ak_pub.b, id->ak_pub.len, &ak) == 0);
	CHECK_MSG((sign.attrs & ATTEST_OA_DECRYPT) == 0, "SIGN has no decrypt bit");
	CHECK_MSG((sign.attrs & ATTEST_OA_SIGN) && !(sign.attrs & ATTEST_OA_RESTRICTED),
	          "SIGN is an unrestricted signing key");
	CHECK_MSG((sign.attrs & (ATTEST_OA_FIXEDTPM | ATTEST_OA_FIXEDPARENT | ATTEST_OA_SENSITIVEDATAORIGIN)) ==
	          (ATTEST_OA_FIXEDTPM | ATTEST_OA_FIXEDPARENT | ATTEST_OA_SENSITIVEDATAORIGIN),
	          "SIGN is fixedTPM|fixedParent|sensitiveDataOrigin");
	CHECK_MSG((dec.attrs & ATTEST_OA_SIGN) == 0 && (dec.attrs & ATTEST_OA_DECRYPT),
	          "DECRYPT has no sign bit");
	CHECK_MSG((ak.attrs & ATTEST_OA_RESTRICTED) && (ak.attrs & ATTEST_OA_SIGN) &&
	          !(ak.attrs & ATTEST_OA_DECRYPT), "AK is a restricted signing key");
	CHECK(ak.scheme == ATTEST_ALG_ECDSA && ak.scheme_hash == ATTEST_ALG_SHA256);

	CHECK(attest_certify_parse(id->certify_attest.b, id->certify_attest.len, &c) == 0);
	CHECK_MSG(c.name_len == ATTEST_NAME_LEN && memcmp(c.name, sign.name, ATTEST_NAME_LEN) == 0,
	          "certify names the signing key");
	CHECK_MSG(c.extra_len == 32 && memcmp(c.extra, id->certify_nonce, 32) == 0,
	          "certify carries the nonce");
	CHECK_MSG(memcmp(c.name, dec.name, ATTEST_NAME_LEN) != 0, "certify does not name DECRYPT");
}

static void test_identity(const struct tpm_identity *tid)
{
	struct identity *id = calloc(1, sizeof *id), *back = calloc(1, sizeof *back);
	struct identity_report rep;
	struct sbx_err e = {0};
	const char *ca = getenv("SBX_TEST_EKCA");
	uint8_t *enc = NULL;
	size_t enclen = 0;
	int rc;

	if (!CHECK(id != NULL && back != NULL))
		goto out;
	CHECK_MSG(tid->n_ekcerts >= 1, "swtpm EK certificates were read");
	CHECK(tpm_identity_export(tid, id) == 0);
	CHECK_MSG(ca != NULL, "SBX_TEST_EKCA is set");
	rc = identity_check(id, ca, &rep, &e);
	if (rc != 0)
		printf("# identity_check: %s\n", e.msg);
	CHECK_MSG(rc == 0, "identity_check passes with the swtpm EK CA");
	CHECK(rep.sign_attrs_ok == 1 && rep.decrypt_attrs_ok == 1 && rep.ak_attrs_ok == 1);
	CHECK(rep.certify_ok == 1 && rep.ekcert_present == 1 && rep.ekcert_chain_ok == 1);
	CHECK(rep.appliance_id_ok == 1);
	CHECK(identity_encode(id, &enc, &enclen) == 0);
	CHECK(enc != NULL && identity_decode(enc, enclen, back) == 0);
	CHECK_MSG(memcmp(id, back, sizeof *id) == 0, "identity encode/decode round-trips");
out:
	free(enc);
	free(id);
	free(back);
}

static void test_sign(struct tpm *t, const struct tpm_identity *tid)
{
	static const uint8_t msg[] = "tree head 42";
	struct identity *id = calloc(1, sizeof *id);
	EVP_PKEY *pub = NULL;
	struct sbx_err e = {0};
	uint8_t dg[32], sig[TPM_MAX_SIG_DER];
	size_t siglen = 0;
	double ms[50];
	uint64_t n0;

	if (!CHECK(id != NULL))
		return;
	CHECK(tpm_identity_export(tid, id) == 0);
	CHECK(identity_sign_pkey(id, &pub) == 0);
	CHECK(sig_digest(SIG_NS_STH, msg, sizeof msg - 1, dg) == 0);
	CHECK(tpm_sign(t, dg, sig, &siglen, &e) == 0);
	CHECK(siglen > 0 && siglen <= TPM_MAX_SIG_DER);
	CHECK_MSG(sig_verify(pub, SIG_NS_STH, msg, sizeof msg - 1, sig, siglen) == 0,
	          "sig_verify accepts tpm_sign's signature");
	CHECK_MSG(sig_verify(pub, SIG_NS_BUNDLE, msg, sizeof msg - 1, sig, siglen) == SBX_EVERIFY,
	          "the signature does not verify under another namespace");
	check_openssl_cli(pub, SIG_NS_STH, msg, sizeof msg - 1, sig, siglen);

	n0 = tpm_command_count(t);
	for (size_t i = 0; i < 50; i++) {
		double t0 = now_ms();

		if (tpm_sign(t, dg, sig, &siglen, &e) != 0)
			break;
		ms[i] = now_ms() - t0;
	}
	CHECK_MSG(tpm_command_count(t) - n0 == 50, "a signature costs one TPM command");
	printf("# tpm_sign median %.3f ms\n", median(ms, 50));
	EVP_PKEY_free(pub);
	free(id);
}

static void test_counter(struct tpm *t)
{
	struct sbx_err e = {0};
	uint64_t v0 = 0, v1 = 0, v2 = 0;
	double ms[20];

	CHECK(tpm_counter_read(t, &v0, &e) == 0);
	CHECK(tpm_counter_increment(t, &v1, &e) == 0);
	CHECK_MSG(v1 == v0 + 1, "counter increments by exactly 1");
	CHECK(tpm_counter_read(t, &v2, &e) == 0);
	CHECK_MSG(v2 == v1, "counter read returns the incremented value");
	for (size_t i = 0; i < 20; i++) {
		double t0 = now_ms();

		if (tpm_counter_increment(t, &v2, &e) != 0)
			break;
		ms[i] = now_ms() - t0;
	}
	CHECK(v2 == v1 + 20);
	printf("# tpm_counter_increment (increment + read) median %.3f ms\n", median(ms, 20));
}

static void test_ecdh(struct tpm *t, const struct tpm_identity *tid)
{
	struct identity *id = calloc(1, sizeof *id);
	EVP_PKEY *eph = NULL, *dpub = NULL;
	EVP_PKEY_CTX *pc = NULL;
	struct sbx_err e = {0};
	uint8_t peer[65], z_tpm[32], z_ssl[32];
	size_t plen = 0, zlen = sizeof z_ssl;

	if (!CHECK(id != NULL))
		return;
	CHECK(tpm_identity_export(tid, id) == 0);
	CHECK(identity_decrypt_pkey(id, &dpub) == 0);
	eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	CHECK(eph != NULL);
	CHECK(EVP_PKEY_get_octet_string_param(eph, "encoded-pub-key", peer, sizeof peer, &plen) == 1 &&
	      plen == 65 && peer[0] == 0x04);
	CHECK(tpm_ecdh(t, peer, plen, z_tpm, &e) == 0);
	pc = EVP_PKEY_CTX_new(eph, NULL);
	CHECK(pc != NULL && EVP_PKEY_derive_init(pc) == 1 && EVP_PKEY_derive_set_peer(pc, dpub) == 1 &&
	      EVP_PKEY_derive(pc, z_ssl, &zlen) == 1 && zlen == 32);
	CHECK_MSG(memcmp(z_tpm, z_ssl, 32) == 0, "tpm_ecdh agrees with OpenSSL ECDH");

	sbx_err_clear(&e);
	peer[64] ^= 1;   /* off the curve */
	CHECK_MSG(tpm_ecdh(t, peer, plen, z_tpm, &e) == SBX_ETPM, "tpm_ecdh rejects a point off the curve");
	CHECK_MSG(tpm_ecdh(t, peer, 64, z_tpm, &e) == SBX_EINVAL, "tpm_ecdh rejects a short point");
	EVP_PKEY_CTX_free(pc);
	EVP_PKEY_free(eph);
	EVP_PKEY_free(dpub);
	free(id);
}

/* One occupied handle is enough to refuse, and the refusal creates none of
 * the others.  Evicts SRK, SIGN and AK with tpm2-tools (swtpm serves one
 * connection at a time, so no tpm is open here). */
static void test_partial(const char *tcti)
{
	struct tpm_identity *id = calloc(1, sizeof *id);
	struct tpm *t = NULL;
	struct sbx_err e = {0};
	struct tpm_blob pub;
	uint8_t nonce[32] = {0};
	char cmd[512];
	int rc = 0;

	if (!CHECK(id != NULL))
		return;
	for (uint32_t h = TPM_HANDLE_SRK; h <= TPM_HANDLE_AK; h++) {
		if (h == TPM_HANDLE_DECRYPT)
			continue;
		snprintf(cmd, sizeof cmd, "tpm2_evictcontrol -T '%s' -C o -c 0x%08x >/dev/null 2>&1", tcti, h);
		rc |= system(cmd);
	}
	CHECK_MSG(rc == 0, "tpm2_evictcontrol removed SRK, SIGN and AK");
	CHECK(tpm_open(tcti, &t, &e) == 0);
	CHECK_MSG(tpm_provision(t, nonce, id, &e) == SBX_EEXIST && strstr(e.msg, "0x81005b03"),
	          "provisioning refuses when only DECRYPT's handle is taken");
	sbx_err_clear(&e);
	CHECK_MSG(tpm_read_public(t, TPM_HANDLE_SIGN, &pub, &e) == SBX_ETPM,
	          "the refused provisioning created no SIGN key");
	tpm_close(t);
	free(id);
}

int main(void)
{
	const char *tcti = getenv("SEALBOX_TCTI");
	struct tpm_identity *id = calloc(1, sizeof *id), *id2 = calloc(1, sizeof *id2);
	struct tpm_blob pub;
	struct tpm *t = NULL;
	struct sbx_err e = {0};
	uint8_t nonce[32];
	uint64_t clock = 0, c0 = 0, c1 = 0, n0;
	uint32_t resets = 0, restarts = 0;
	double t0;
	int rc;

	test_open_refuses();
	if (!CHECK_MSG(tcti != NULL && id != NULL && id2 != NULL, "SEALBOX_TCTI set (run under with-swtpm.sh)"))
		return check_done();
	rc = tpm_open(tcti, &t, &e);
	if (!CHECK_MSG(rc == 0, "tpm_open on swtpm")) {
		printf("# %s\n", e.msg);
		return check_done();
	}
	{
		uint8_t dg[32] = {0}, sig[TPM_MAX_SIG_DER];
		size_t siglen = 0;

		CHECK_MSG(tpm_sign(t, dg, sig, &siglen, &e) == SBX_ETPM && strstr(e.msg, "0x81005b02"),
		          "tpm_sign before provisioning fails naming the handle");
		sbx_err_clear(&e);
	}
	CHECK(RAND_bytes(nonce, sizeof nonce) == 1);
	n0 = tpm_command_count(t);
	t0 = now_ms();
	rc = tpm_provision(t, nonce, id, &e);
	printf("# tpm_provision %.1f ms, %llu TPM commands\n", now_ms() - t0,
	       (unsigned long long)(tpm_command_count(t) - n0));
	if (!CHECK_MSG(rc == 0, "tpm_provision on a fresh swtpm")) {
		printf("# %s\n", e.msg);
		tpm_close(t);
		return check_done();
	}
	test_keys(id);
	test_identity(id);

	CHECK(tpm_counter_read(t, &c0, &e) == 0);
	sbx_err_clear(&e);
	rc = tpm_provision(t, nonce, id2, &e);
	CHECK_MSG(rc == SBX_EEXIST, "a second tpm_provision fails with SBX_EEXIST");
	CHECK(strstr(e.msg, "0x81005b01") != NULL);
	sbx_err_clear(&e);
	CHECK(tpm_read_public(t, TPM_HANDLE_SIGN, &pub, &e) == 0);
	CHECK_MSG(pub.len == id->sign_pub.len && memcmp(pub.b, id->sign_pub.b, pub.len) == 0,
	          "SIGN unchanged after the refused provisioning");
	CHECK(tpm_read_public(t, TPM_HANDLE_AK, &pub, &e) == 0);
	CHECK(pub.len == id->ak_pub.len && memcmp(pub.b, id->ak_pub.b, pub.len) == 0);
	CHECK(tpm_counter_read(t, &c1, &e) == 0 && c1 == c0);

	test_sign(t, id);
	test_counter(t);
	test_ecdh(t, id);
	CHECK(tpm_clock(t, &clock, &resets, &restarts, &e) == 0);

	/* Keys and counter are persistent: a new session finds them. */
	tpm_close(t);
	t = NULL;
	CHECK(tpm_open(tcti, &t, &e) == 0);
	{
		uint8_t dg[32] = {1}, sig[TPM_MAX_SIG_DER];
		size_t siglen = 0;
		uint64_t c2 = 0;

		CHECK_MSG(tpm_sign(t, dg, sig, &siglen, &e) == 0, "SIGN usable after reopening");
		CHECK(tpm_counter_read(t, &c2, &e) == 0 && c2 > c1);
	}
	if (e.code != 0)
		printf("# last error: %s\n", e.msg);
	tpm_close(t);
	t = NULL;
	test_partial(tcti);
	free(id);
	free(id2);
	return check_done();
}

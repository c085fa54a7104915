#include "crypto/attest.h"

#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "crypto/err.h"
#include "crypto/hash.h"
#include "export/wire.h"

/* A TPM2B: u16 size then at most `max` bytes, copied into out. */
static void get_tpm2b(struct wire_r *r, uint8_t *out, size_t max, size_t *outlen)
{
	uint16_t n = wire_get_u16(r);
	const uint8_t *p;

	*outlen = 0;
	if (r->err != 0)
		return;
	if (n > max) {
		r->err = SBX_EFORMAT;
		return;
	}
	p = wire_get_raw(r, n);
	if (p == NULL)
		return;
	memcpy(out, p, n);
	*outlen = n;
}

/* An ECC coordinate: 1..32 bytes, stored left-padded to 32.  The reference
 * TPM always pads to the curve size; accepting shorter forms costs nothing
 * and the Name is computed over the bytes as given anyway. */
static void get_coord(struct wire_r *r, uint8_t out[32])
{
	uint8_t tmp[32];
	size_t n = 0;

	get_tpm2b(r, tmp, sizeof tmp, &n);
	memset(out, 0, 32);
	if (r->err != 0)
		return;
	if (n == 0) {
		r->err = SBX_EFORMAT;
		return;
	}
	memcpy(out + 32 - n, tmp, n);
}

int attest_public_parse(const uint8_t *b, size_t len, struct attest_public *out)
{
	struct wire_r r;
	uint8_t dg[HASH_LEN];
	int rc = SBX_EFORMAT;

	memset(out, 0, sizeof *out);
	if (b == NULL || len == 0 || len > 1024)
		goto out;
	wire_r_init(&r, b, len);
	out->type = wire_get_u16(&r);
	out->name_alg = wire_get_u16(&r);
	out->attrs = wire_get_u32(&r);
	if (r.err != 0 || out->type != ATTEST_ALG_ECC || out->name_alg != ATTEST_ALG_SHA256)
		goto out;
	/* authPolicy is empty or a digest of the nameAlg (Part 2, 12.2.4). */
	get_tpm2b(&r, out->policy, sizeof out->policy, &out->policy_len);
	if (r.err != 0 || (out->policy_len != 0 && out->policy_len != 32))
		goto out;

	/* TPMS_ECC_PARMS.symmetric: TPMT_SYM_DEF_OBJECT */
	out->sym_alg = wire_get_u16(&r);
	if (out->sym_alg == ATTEST_ALG_AES) {
		out->sym_bits = wire_get_u16(&r);
		out->sym_mode = wire_get_u16(&r);
		if (out->sym_bits != 128 && out->sym_bits != 256)
			goto out;
		if (out->sym_mode != ATTEST_ALG_CFB)
			goto out;
	} else if (out->sym_alg != ATTEST_ALG_NULL) {
		goto out;
	}
	/* .scheme: TPMT_ECC_SCHEME; ECDSA and ECDH carry a hash algorithm. */
	out->scheme = wire_get_u16(&r);
	if (out->scheme == ATTEST_ALG_ECDSA || out->scheme == ATTEST_ALG_ECDH) {
		out->scheme_hash = wire_get_u16(&r);
		if (out->scheme_hash != ATTEST_ALG_SHA256)
			goto out;
	} else if (out->scheme != ATTEST_ALG_NULL) {
		goto out;
	}
	out->curve = wire_get_u16(&r);
	out->kdf = wire_get_u16(&r);
	if (r.err != 0 || out->curve != ATTEST_ECC_NIST_P256 || out->kdf != ATTEST_ALG_NULL)
		goto out;
	/* .unique: TPMS_ECC_POINT */
	get_coord(&r, out->x);
	get_coord(&r, out->y);
	if (wire_r_end(&r) != 0)
		goto out;

	/* Name = nameAlg || H(marshalled TPMT_PUBLIC) (Part 1, 16). */
	if (hash_sha256(b, len, dg) != 0) {
		rc = SBX_ECRYPTO;
		goto out;
	}
	out->name[0] = ATTEST_ALG_SHA256 >> 8;
	out->name[1] = ATTEST_ALG_SHA256 & 0xff;
	memcpy(out->name + 2, dg, HASH_LEN);
	rc = 0;
out:
	if (rc != 0)
		memset(out, 0, sizeof *out);
	return rc;
}

int attest_public_pkey(const struct attest_public *p, EVP_PKEY **out)
{
	uint8_t pt[65];
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *pc = NULL, *chk = NULL;
	EVP_PKEY *k = NULL;
	int r = SBX_ECRYPTO;

	*out = NULL;
	if (p->curve != ATTEST_ECC_NIST_P256)
		return SBX_EFORMAT;
	pt[0] = 0x04;
	memcpy(pt + 1, p->x, 32);
	memcpy(pt + 33, p->y, 32);
	bld = OSSL_PARAM_BLD_new();
	if (bld == NULL ||
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt) != 1)
		goto out;
	params = OSSL_PARAM_BLD_to_param(bld);
	pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (params == NULL || pc == NULL || EVP_PKEY_fromdata_init(pc) != 1)
		goto out;
	if (EVP_PKEY_fromdata(pc, &k, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		r = SBX_EFORMAT;   /* not a point on P-256 */
		goto out;
	}
	/* fromdata decodes the point; check it fully (on curve, not infinity). */
	chk = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
	if (chk == NULL)
		goto out;
	if (EVP_PKEY_public_check(chk) != 1) {
		r = SBX_EFORMAT;
		goto out;
	}
	*out = k;
	k = NULL;   /* transferred */
	r = 0;
out:
	ERR_clear_error();
	EVP_PKEY_free(k);
	EVP_PKEY_CTX_free(chk);
	EVP_PKEY_CTX_free(pc);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return r;
}

int attest_public_spki(const struct attest_public *p, uint8_t **der, size_t *len)
{
	EVP_PKEY *k = NULL;
	uint8_t *d = NULL;
	int n, r;

	*der = NULL;
	*len = 0;
	r = attest_public_pkey(p, &k);
	if (r != 0)
		goto out;
	n = i2d_PUBKEY(k, &d);
	if (n <= 0) {
		r = SBX_ECRYPTO;
		goto out;
	}
	*der = d;
	d = NULL;   /* transferred */
	*len = (size_t)n;
	r = 0;
out:
	ERR_clear_error();
	OPENSSL_free(d);
	EVP_PKEY_free(k);
	return r;
}

int attest_certify_parse(const uint8_t *b, size_t len, struct attest_certify *out)
{
	struct wire_r r;
	int rc = SBX_EFORMAT;

	memset(out, 0, sizeof *out);
	if (b == NULL || len == 0 || len > 1024)
		goto out;
	wire_r_init(&r, b, len);
	if (wire_get_u32(&r) != ATTEST_GENERATED_VALUE)
		goto out;
	if (wire_get_u16(&r) != ATTEST_ST_CERTIFY)
		goto out;
	get_tpm2b(&r, out->signer, sizeof out->signer, &out->signer_len);
	get_tpm2b(&r, out->extra, sizeof out->extra, &out->extra_len);
	out->clock = wire_get_u64(&r);
	out->reset_count = wire_get_u32(&r);
	out->restart_count = wire_get_u32(&r);
	out->safe = wire_get_u8(&r);
	out->firmware = wire_get_u64(&r);
	get_tpm2b(&r, out->name, sizeof out->name, &out->name_len);
	get_tpm2b(&r, out->qname, sizeof out->qname, &out->qname_len);
	if (wire_r_end(&r) != 0)
		goto out;
	if (out->safe > 1)   /* TPMI_YES_NO */
		goto out;
	rc = 0;
out:
	if (rc != 0)
		memset(out, 0, sizeof *out);
	return rc;
}

int attest_verify_sig(EVP_PKEY *pub, const uint8_t *msg, size_t len,
                      const uint8_t *der, size_t derlen)
{
	const uint8_t *p = der;
	ECDSA_SIG *es = NULL;
	uint8_t *re = NULL, dg[HASH_LEN];
	EVP_PKEY_CTX *pc = NULL;
	int relen, r = SBX_EVERIFY;

	if (pub == NULL || der == NULL || derlen == 0 || derlen > 80)
		goto out;
	/* Canonical DER only, so a signature has exactly one byte form. */
	es = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
	if (es == NULL || (size_t)(p - der) != derlen)
		goto out;
	relen = i2d_ECDSA_SIG(es, &re);
	if (relen < 0 || (size_t)relen != derlen || memcmp(re, der, derlen) != 0)
		goto out;
	if (hash_sha256(msg, len, dg) != 0)
		goto out;
	pc = EVP_PKEY_CTX_new(pub, NULL);
	if (pc == NULL || EVP_PKEY_verify_init(pc) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) != 1)
		goto out;
	if (EVP_PKEY_verify(pc, der, derlen, dg, sizeof dg) == 1)
		r = 0;
out:
	ERR_clear_error();
	OPENSSL_free(re);
	ECDSA_SIG_free(es);
	EVP_PKEY_CTX_free(pc);
	return r;
}

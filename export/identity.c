/* The box's identity file and its offline checks.
 *
 * What identity_check proves, and what it does not:
 *  - SIGN, DECRYPT and AK public areas carry the attributes that make the
 *    keys non-exportable (fixedTPM, fixedParent, sensitiveDataOrigin) and
 *    single-purpose.  These are claims until a TPM vouches for them.
 *  - The certify: AK signed a TPMS_ATTEST that starts with
 *    TPM_GENERATED_VALUE, names SIGN (Name = SHA-256 over the exact public
 *    area, so every attribute above is covered) and carries our nonce.  A
 *    restricted signing key never signs outside data that starts with that
 *    magic, so IF the AK is a restricted key inside a genuine TPM, the TPM
 *    itself asserted that SIGN, with those attributes, lives in it.
 *  - The EK certificates chain to the given CA (the TPM maker's).
 *
 * NOT proven here: that the AK lives in the same TPM as that EK.  The AK is
 * an ordinary owner-hierarchy key; nothing signed by the EK mentions it, so
 * a forger could pair a genuine EK certificate with a software "AK" whose
 * public area merely claims the right attributes.  What would prove it is
 * credential activation (TPM2_MakeCredential by the verifier to the EK
 * public key and the AK's Name, TPM2_ActivateCredential on the box, which
 * only succeeds if EK and AK are in one TPM) done interactively at
 * provisioning by someone who then signs or pins the identity, or an AK
 * certificate from a privacy CA that did that.  Future work; until then an
 * auditor should pin appliance_id at installation time.
 *
 * The certify's clockInfo/firmwareVersion are obfuscated for an
 * owner-hierarchy AK and are not checked. */
#include "export/identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "crypto/attest.h"
#include "crypto/hash.h"
#include "export/wire.h"

#define IDENTITY_MAGIC    "SBXI"
#define IDENTITY_VERSION  1

/* EK certificate NV indices (TCG EK Credential Profile), in file order. */
static const uint32_t ek_index[IDENTITY_MAX_EKCERTS] = {
	0x01c00002u, 0x01c0000au, 0x01c00016u,
};

static int ek_index_rank(uint32_t idx)
{
	for (int i = 0; i < IDENTITY_MAX_EKCERTS; i++)
		if (ek_index[i] == idx)
			return i;
	return -1;
}

int identity_encode(const struct identity *id, uint8_t **out, size_t *outlen)
{
	struct wire_w w;
	int last = -1;

	*out = NULL;
	*outlen = 0;
	if (id->n_ekcerts > IDENTITY_MAX_EKCERTS)
		return SBX_EINVAL;
	/* Refuse to write what identity_decode would reject. */
	for (size_t i = 0; i < id->n_ekcerts; i++) {
		int rank = ek_index_rank(id->ekcerts[i].nv_index);

		if (rank <= last || id->ekcerts[i].len == 0 ||
		    id->ekcerts[i].len > IDENTITY_MAX_EKCERT)
			return SBX_EINVAL;
		last = rank;
	}
	if (id->sign_pub.len == 0 || id->sign_pub.len > IDENTITY_MAX_BLOB ||
	    id->decrypt_pub.len == 0 || id->decrypt_pub.len > IDENTITY_MAX_BLOB ||
	    id->ak_pub.len == 0 || id->ak_pub.len > IDENTITY_MAX_BLOB ||
	    id->certify_attest.len == 0 || id->certify_attest.len > IDENTITY_MAX_BLOB ||
	    id->certify_sig.len == 0 || id->certify_sig.len > IDENTITY_MAX_BLOB)
		return SBX_EINVAL;

	wire_w_init(&w);
	wire_put_raw(&w, IDENTITY_MAGIC, 4);
	wire_put_u8(&w, IDENTITY_VERSION);
	wire_put_raw(&w, id->appliance_id, 32);
	wire_put_bytes32(&w, id->sign_pub.b, id->sign_pub.len);
	wire_put_bytes32(&w, id->decrypt_pub.b, id->decrypt_pub.len);
	wire_put_bytes32(&w, id->ak_pub.b, id->ak_pub.len);
	wire_put_raw(&w, id->certify_nonce, 32);
	wire_put_bytes32(&w, id->certify_attest.b, id->certify_attest.len);
	wire_put_bytes32(&w, id->certify_sig.b, id->certify_sig.len);
	wire_put_u8(&w, (uint8_t)id->n_ekcerts);
	for (size_t i = 0; i < id->n_ekcerts; i++) {
		wire_put_u32(&w, id->ekcerts[i].nv_index);
		wire_put_bytes32(&w, id->ekcerts[i].der, id->ekcerts[i].len);
	}
	return wire_w_take(&w, out, outlen);
}

static void get_blob(struct wire_r *r, struct identity_blob *b)
{
	const uint8_t *p = wire_get_bytes32(r, IDENTITY_MAX_BLOB, &b->len);

	if (p == NULL || b->len == 0) {
		r->err = SBX_EFORMAT;
		b->len = 0;
		return;
	}
	memcpy(b->b, p, b->len);
}

int identity_decode(const uint8_t *b, size_t len, struct identity *id)
{
	struct wire_r r;
	const uint8_t *magic;
	uint8_t n;
	int last = -1, rc = SBX_EFORMAT;

	memset(id, 0, sizeof *id);
	wire_r_init(&r, b, len);
	magic = wire_get_raw(&r, 4);
	if (magic == NULL || memcmp(magic, IDENTITY_MAGIC, 4) != 0)
		goto out;
	/* Reject versions we do not know, newer ones included. */
	if (wire_get_u8(&r) != IDENTITY_VERSION || r.err != 0)
		goto out;
	wire_get_fixed(&r, id->appliance_id, 32);
	get_blob(&r, &id->sign_pub);
	get_blob(&r, &id->decrypt_pub);
	get_blob(&r, &id->ak_pub);
	wire_get_fixed(&r, id->certify_nonce, 32);
	get_blob(&r, &id->certify_attest);
	get_blob(&r, &id->certify_sig);
	n = wire_get_u8(&r);
	if (r.err != 0 || n > IDENTITY_MAX_EKCERTS)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct identity_ekcert *c = &id->ekcerts[i];
		const uint8_t *p;
		int rank;

		c->nv_index = wire_get_u32(&r);
		p = wire_get_bytes32(&r, IDENTITY_MAX_EKCERT, &c->len);
		if (p == NULL || c->len == 0)
			goto out;
		/* Known indices only, ascending, so each file has one encoding. */
		rank = ek_index_rank(c->nv_index);
		if (rank <= last)
			goto out;
		last = rank;
		memcpy(c->der, p, c->len);
	}
	id->n_ekcerts = n;
	if (wire_r_end(&r) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		memset(id, 0, sizeof *id);
	return rc;
}

static int blob_pkey(const struct identity_blob *b, EVP_PKEY **out)
{
	struct attest_public p;
	int r;

	*out = NULL;
	r = attest_public_parse(b->b, b->len, &p);
	if (r != 0)
		return r;
	return attest_public_pkey(&p, out);
}

int identity_sign_pkey(const struct identity *id, EVP_PKEY **out)
{
	return blob_pkey(&id->sign_pub, out);
}

int identity_decrypt_pkey(const struct identity *id, EVP_PKEY **out)
{
	return blob_pkey(&id->decrypt_pub, out);
}

static int spki_id(const struct identity_blob *b, uint8_t out[static 32])
{
	struct attest_public p;
	uint8_t *der = NULL;
	size_t len = 0;
	int r;

	r = attest_public_parse(b->b, b->len, &p);
	if (r != 0)
		goto out;
	r = attest_public_spki(&p, &der, &len);
	if (r != 0)
		goto out;
	r = hash_sha256(der, len, out);
out:
	OPENSSL_free(der);
	return r;
}

int identity_compute_id(struct identity *id)
{
	return spki_id(&id->sign_pub, id->appliance_id);
}

/* One key's public area against its role: parses it (0 in *parsed if it
 * does not) and checks required/forbidden attributes and allowed schemes.
 * Symmetric must be NULL: only storage parents have one. */
struct role {
	const char *what;
	uint32_t need, forbid;
	uint16_t scheme_a, scheme_b;    /* allowed ECC schemes */
	const char *desc;
};

static int check_role(const struct identity_blob *b, const struct role *role,
                      struct attest_public *p, int *parsed, int *ok, struct sbx_err *e)
{
	*parsed = *ok = 0;
	if (attest_public_parse(b->b, b->len, p) != 0)
		return sbx_fail(e, SBX_EVERIFY, "identity: %s is not a P-256 TPMT_PUBLIC", role->what);
	*parsed = 1;
	if ((p->attrs & role->need) != role->need || (p->attrs & role->forbid) != 0 ||
	    (p->scheme != role->scheme_a && p->scheme != role->scheme_b) ||
	    (p->scheme != ATTEST_ALG_NULL && p->scheme_hash != ATTEST_ALG_SHA256) ||
	    p->sym_alg != ATTEST_ALG_NULL)
		return sbx_fail(e, SBX_EVERIFY, "identity: %s (attributes 0x%08x, scheme 0x%04x) is not %s",
		                role->what, p->attrs, p->scheme, role->desc);
	*ok = 1;
	return 0;
}

/* USERWITHAUTH and NODA are how sealbox creates keys but do not bear on
 * where a key lives, so they are not required. */
#define OA_RESIDENT (ATTEST_OA_FIXEDTPM | ATTEST_OA_FIXEDPARENT | ATTEST_OA_SENSITIVEDATAORIGIN)

static const struct role role_sign = {
	"sign_pub", OA_RESIDENT | ATTEST_OA_SIGN, ATTEST_OA_DECRYPT | ATTEST_OA_RESTRICTED,
	ATTEST_ALG_NULL, ATTEST_ALG_ECDSA, "a sign-only TPM-resident key",
};
static const struct role role_decrypt = {
	"decrypt_pub", OA_RESIDENT | ATTEST_OA_DECRYPT, ATTEST_OA_SIGN | ATTEST_OA_RESTRICTED,
	ATTEST_ALG_NULL, ATTEST_ALG_ECDH, "a decrypt-only TPM-resident key",
};
/* Restricted is what makes TPM_GENERATED_VALUE in a signed attestation
 * mean "the TPM produced this". */
static const struct role role_ak = {
	"ak_pub", OA_RESIDENT | ATTEST_OA_SIGN | ATTEST_OA_RESTRICTED, ATTEST_OA_DECRYPT,
	ATTEST_ALG_ECDSA, ATTEST_ALG_ECDSA, "a restricted ECDSA-SHA256 TPM-resident key",
};

/* *parsed is set when both SIGN and AK parse, so the certify can be checked
 * (and reported on) even when their attributes are wrong. */
static int check_keys(const struct identity *id, struct attest_public *sign,
                      struct attest_public *ak, int *parsed,
                      struct identity_report *rep, struct sbx_err *e)
{
	struct attest_public dec;
	int ps = 0, pd = 0, pa = 0, r = 0;

	if (check_role(&id->sign_pub, &role_sign, sign, &ps, &rep->sign_attrs_ok, e) != 0)
		r = SBX_EVERIFY;
	if (check_role(&id->decrypt_pub, &role_decrypt, &dec, &pd, &rep->decrypt_attrs_ok, e) != 0)
		r = SBX_EVERIFY;
	if (check_role(&id->ak_pub, &role_ak, ak, &pa, &rep->ak_attrs_ok, e) != 0)
		r = SBX_EVERIFY;
	*parsed = ps && pa;
	return r;
}

static int check_certify(const struct identity *id, const struct attest_public *sign,
                         const struct attest_public *ak, struct identity_report *rep,
                         struct sbx_err *e)
{
	struct attest_certify c;
	EVP_PKEY *akey = NULL;
	int r = SBX_EVERIFY;

	if (attest_certify_parse(id->certify_attest.b, id->certify_attest.len, &c) != 0) {
		r = sbx_fail(e, SBX_EVERIFY, "identity: certify_attest is not a TPM-generated CERTIFY attestation");
		goto out;
	}
	if (c.extra_len != sizeof id->certify_nonce ||
	    CRYPTO_memcmp(c.extra, id->certify_nonce, sizeof id->certify_nonce) != 0) {
		r = sbx_fail(e, SBX_EVERIFY, "identity: certify extraData does not match certify_nonce");
		goto out;
	}
	if (c.name_len != ATTEST_NAME_LEN || CRYPTO_memcmp(c.name, sign->name, ATTEST_NAME_LEN) != 0) {
		r = sbx_fail(e, SBX_EVERIFY, "identity: certify names another key than sign_pub");
		goto out;
	}
	if (attest_public_pkey(ak, &akey) != 0) {
		r = sbx_fail(e, SBX_EVERIFY, "identity: ak_pub point is not on P-256");
		goto out;
	}
	if (attest_verify_sig(akey, id->certify_attest.b, id->certify_attest.len,
	                      id->certify_sig.b, id->certify_sig.len) != 0) {
		r = sbx_fail(e, SBX_EVERIFY, "identity: AK signature over certify_attest does not verify");
		goto out;
	}
	rep->certify_ok = 1;
	r = 0;
out:
	EVP_PKEY_free(akey);
	return r;
}

/* Loads every certificate in a PEM file as a trust anchor. */
static int load_ca(const char *path, X509_STORE **out, struct sbx_err *e)
{
	X509_STORE *st = NULL;
	X509 *x = NULL;
	FILE *f = NULL;
	int n = 0, r = SBX_EIO;

	*out = NULL;
	f = fopen(path, "r");
	if (f == NULL) {
		r = sbx_fail(e, SBX_EIO, "identity: cannot open EK CA file %s", path);
		goto out;
	}
	st = X509_STORE_new();
	if (st == NULL) {
		r = sbx_fail_ssl(e, SBX_ENOMEM, "identity: X509_STORE_new");
		goto out;
	}
	while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
		if (X509_STORE_add_cert(st, x) != 1) {
			r = sbx_fail_ssl(e, SBX_ECRYPTO, "identity: %s: cannot add certificate %d", path, n + 1);
			goto out;
		}
		X509_free(x);
		x = NULL;
		n++;
	}
	ERR_clear_error();   /* end of file shows up as a PEM "no start line" */
	if (n == 0) {
		r = sbx_fail(e, SBX_EFORMAT, "identity: %s holds no PEM certificate", path);
		goto out;
	}
	*out = st;
	st = NULL;   /* transferred */
	r = 0;
out:
	X509_free(x);
	X509_STORE_free(st);
	if (f != NULL)
		fclose(f);
	return r;
}

/* Chain and signatures only: the EK certificate's own content (its TPM
 * manufacturer/model SAN, the EK policy, key usage) is not interpreted.
 * No purpose is set: EK certificates carry the TCG EKU 2.23.133.8.1, which
 * OpenSSL has no purpose for.  Unknown critical extensions still fail. */
static int check_ekcert(X509_STORE *st, const struct identity_ekcert *c, struct sbx_err *e)
{
	const uint8_t *p = c->der;
	X509 *x = NULL;
	X509_STORE_CTX *ctx = NULL;
	int r = SBX_EVERIFY;

	x = d2i_X509(NULL, &p, (long)c->len);
	if (x == NULL || (size_t)(p - c->der) != c->len) {
		r = sbx_fail(e, SBX_EVERIFY, "identity: EK certificate 0x%08x is not one DER certificate",
		             c->nv_index);
		goto out;
	}
	ctx = X509_STORE_CTX_new();
	if (ctx == NULL || X509_STORE_CTX_init(ctx, st, x, NULL) != 1) {
		r = sbx_fail_ssl(e, SBX_ECRYPTO, "identity: X509_STORE_CTX_init");
		goto out;
	}
	/* The chain must end at a self-signed root in the bundle, not at the
	 * intermediate that is also in it. */
	X509_VERIFY_PARAM_clear_flags(X509_STORE_CTX_get0_param(ctx), X509_V_FLAG_PARTIAL_CHAIN);
	if (X509_verify_cert(ctx) != 1) {
		int err = X509_STORE_CTX_get_error(ctx);

		r = sbx_fail(e, SBX_EVERIFY, "identity: EK certificate 0x%08x does not chain to the EK CA: %s",
		             c->nv_index, X509_verify_cert_error_string(err));
		goto out;
	}
	r = 0;
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_free(x);
	return r;
}

static int check_ekcerts(const struct identity *id, const char *ek_ca_pem,
                         struct identity_report *rep, struct sbx_err *e)
{
	X509_STORE *st = NULL;
	int r;

	rep->ekcert_present = id->n_ekcerts > 0;
	rep->ekcert_chain_ok = -1;
	if (ek_ca_pem == NULL)
		return 0;
	rep->ekcert_chain_ok = 0;
	if (id->n_ekcerts == 0) {
		r = sbx_fail(e, SBX_EVERIFY, "identity: an EK CA was given but the identity has no EK certificate");
		goto out;
	}
	r = load_ca(ek_ca_pem, &st, e);
	if (r != 0) {
		r = SBX_EVERIFY;
		goto out;
	}
	for (size_t i = 0; i < id->n_ekcerts && i < IDENTITY_MAX_EKCERTS; i++) {
		r = check_ekcert(st, &id->ekcerts[i], e);
		if (r != 0)
			goto out;
	}
	rep->ekcert_chain_ok = 1;
	r = 0;
out:
	X509_STORE_free(st);
	return r;
}

int identity_check(const struct identity *id, const char *ek_ca_pem,
                   struct identity_report *rep, struct sbx_err *e)
{
	struct attest_public sign, ak;
	uint8_t want[32];
	int bad = 0, parsed = 0;

	memset(rep, 0, sizeof *rep);
	/* Every check runs so the report is complete; the first failure's
	 * message is the one kept (sbx_fail keeps the first). */
	if (check_keys(id, &sign, &ak, &parsed, rep, e) != 0)
		bad = 1;
	if (parsed && check_certify(id, &sign, &ak, rep, e) != 0)
		bad = 1;
	if (check_ekcerts(id, ek_ca_pem, rep, e) != 0)
		bad = 1;
	if (spki_id(&id->sign_pub, want) != 0) {
		sbx_fail(e, SBX_EVERIFY, "identity: cannot compute appliance id from sign_pub");
		bad = 1;
	} else if (CRYPTO_memcmp(want, id->appliance_id, 32) != 0) {
		sbx_fail(e, SBX_EVERIFY, "identity: appliance_id is not SHA-256 of SIGN's public key");
		bad = 1;
	} else {
		rep->appliance_id_ok = 1;
	}
	return bad ? SBX_EVERIFY : 0;
}

#include "crypto/tpm.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

struct tpm {
	ESYS_CONTEXT *ctx;
	TSS2_TCTI_CONTEXT *tcti;
	/* Persistent objects resolved once (each resolution is a ReadPublic). */
	ESYS_TR sign, decrypt, counter;
	uint64_t ncmd;
};

static const uint32_t ekcert_index[TPM_MAX_EKCERTS] = {
	0x01c00002u,    /* RSA 2048 EK certificate */
	0x01c0000au,    /* ECC P-256 EK certificate */
	0x01c00016u,    /* ECC P-384 EK certificate (what swtpm makes) */
};

/* The counter's attributes.  Not ORDERLY: an orderly counter may jump
 * forward by up to 255 after an unclean stop, which would look like a
 * rollback alarm.  Index auth (empty) for read and increment, so it works
 * whatever the owner password is; NO_DA because that auth is empty. */
#define COUNTER_ATTRS ((TPM2_NT_COUNTER << TPMA_NV_TPM2_NT_SHIFT) | \
	TPMA_NV_AUTHWRITE | TPMA_NV_AUTHREAD | TPMA_NV_OWNERREAD | TPMA_NV_NO_DA)

static int tss_fail(struct sbx_err *e, TSS2_RC rc, const char *what)
{
	return sbx_fail(e, SBX_ETPM, "tpm: %s failed: %s", what, Tss2_RC_Decode(rc));
}

static void tr_close(struct tpm *t, ESYS_TR *tr)
{
	if (*tr != ESYS_TR_NONE)
		Esys_TR_Close(t->ctx, tr);
	*tr = ESYS_TR_NONE;
}

static void flush(struct tpm *t, ESYS_TR *tr)
{
	if (*tr == ESYS_TR_NONE)
		return;
	t->ncmd++;
	if (Esys_FlushContext(t->ctx, *tr) != TSS2_RC_SUCCESS)
		Esys_TR_Close(t->ctx, tr);   /* forget it locally at least */
	*tr = ESYS_TR_NONE;
}

int tpm_open(const char *tcti, struct tpm **out, struct sbx_err *e)
{
	struct tpm *t = NULL;
	TSS2_RC rc;
	int r = SBX_EINVAL;

	*out = NULL;
	if (tcti == NULL || tcti[0] == '\0') {
		/* An empty config makes the loader probe /dev/tpmrm0, /dev/tpm0
		 * and a network simulator: it could pick up the wrong TPM. */
		r = sbx_fail(e, SBX_EINVAL, "tpm: no TCTI given (e.g. device:/dev/tpmrm0 or swtpm:path=SOCKET)");
		goto out;
	}
	t = calloc(1, sizeof *t);
	if (t == NULL) {
		r = sbx_fail(e, SBX_ENOMEM, "tpm: out of memory");
		goto out;
	}
	t->sign = t->decrypt = t->counter = ESYS_TR_NONE;
	rc = Tss2_TctiLdr_Initialize(tcti, &t->tcti);
	if (rc != TSS2_RC_SUCCESS) {
		r = sbx_fail(e, SBX_ETPM, "tpm: cannot open TCTI \"%s\": %s", tcti, Tss2_RC_Decode(rc));
		goto out;
	}
	rc = Esys_Initialize(&t->ctx, t->tcti, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		r = tss_fail(e, rc, "Esys_Initialize");
		goto out;
	}
	*out = t;
	t = NULL;   /* transferred */
	r = 0;
out:
	tpm_close(t);
	return r;
}

void tpm_close(struct tpm *t)
{
	if (t == NULL)
		return;
	if (t->ctx != NULL) {
		/* Persistent objects: closing drops the local handle only. */
		tr_close(t, &t->sign);
		tr_close(t, &t->decrypt);
		tr_close(t, &t->counter);
		Esys_Finalize(&t->ctx);
	}
	if (t->tcti != NULL)
		Tss2_TctiLdr_Finalize(&t->tcti);
	free(t);
}

uint64_t tpm_command_count(const struct tpm *t)
{
	return t->ncmd;
}

/* Lists up to `count` handles starting at `first` (one command).  Handles
 * come back sorted, so the caller can test a consecutive range. */
static int list_handles(struct tpm *t, uint32_t first, uint32_t count,
                        TPML_HANDLE *out, struct sbx_err *e)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more = 0;
	TSS2_RC rc;
	int r;

	t->ncmd++;
	rc = Esys_GetCapability(t->ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	                        TPM2_CAP_HANDLES, first, count, &more, &cap);
	if (rc != TSS2_RC_SUCCESS) {
		r = tss_fail(e, rc, "TPM2_GetCapability(handles)");
		goto out;
	}
	if (cap->capability != TPM2_CAP_HANDLES ||
	    cap->data.handles.count > TPM2_MAX_CAP_HANDLES) {
		r = sbx_fail(e, SBX_ETPM, "tpm: malformed TPM2_GetCapability answer");
		goto out;
	}
	*out = cap->data.handles;
	r = 0;
out:
	Esys_Free(cap);
	return r;
}

static int handle_in(const TPML_HANDLE *l, uint32_t lo, uint32_t hi, uint32_t *found)
{
	for (uint32_t i = 0; i < l->count; i++) {
		if (l->handle[i] >= lo && l->handle[i] <= hi) {
			*found = l->handle[i];
			return 1;
		}
	}
	return 0;
}

static int handle_present(struct tpm *t, uint32_t h, int *present, struct sbx_err *e)
{
	TPML_HANDLE l;
	uint32_t found;
	int r = list_handles(t, h, 1, &l, e);

	if (r == 0)
		*present = handle_in(&l, h, h, &found);
	return r;
}

static int resolve(struct tpm *t, uint32_t handle, ESYS_TR *tr, struct sbx_err *e)
{
	TSS2_RC rc;

	if (*tr != ESYS_TR_NONE)
		return 0;
	t->ncmd++;
	rc = Esys_TR_FromTPMPublic(t->ctx, handle, ESYS_TR_NONE, ESYS_TR_NONE,
	                           ESYS_TR_NONE, tr);
	if (rc != TSS2_RC_SUCCESS) {
		*tr = ESYS_TR_NONE;
		return sbx_fail(e, SBX_ETPM, "tpm: handle 0x%08x not usable (provisioned?): %s",
		                handle, Tss2_RC_Decode(rc));
	}
	return 0;
}

static ESYS_TR *obj_slot(struct tpm *t, enum tpm_obj which, uint32_t *handle)
{
	switch (which) {
	case TPM_OBJ_SIGN:    *handle = TPM_HANDLE_SIGN;    return &t->sign;
	case TPM_OBJ_DECRYPT: *handle = TPM_HANDLE_DECRYPT; return &t->decrypt;
	case TPM_OBJ_COUNTER: *handle = TPM_NV_COUNTER;     return &t->counter;
	}
	return NULL;
}

int tpm_object_save(struct tpm *t, enum tpm_obj which, uint8_t **out, size_t *len,
                    struct sbx_err *e)
{
	uint32_t handle = 0;
	ESYS_TR *tr = obj_slot(t, which, &handle);
	uint8_t *buf = NULL;
	TSS2_RC rc;
	int r;

	*out = NULL;
	*len = 0;
	if (tr == NULL)
		return sbx_fail(e, SBX_EINVAL, "tpm: unknown object");
	r = resolve(t, handle, tr, e);
	if (r != 0)
		return r;
	rc = Esys_TR_Serialize(t->ctx, *tr, &buf, len);
	if (rc != TSS2_RC_SUCCESS)
		return tss_fail(e, rc, "Esys_TR_Serialize");
	*out = malloc(*len);
	if (*out == NULL) {
		Esys_Free(buf);
		return SBX_ENOMEM;
	}
	memcpy(*out, buf, *len);
	Esys_Free(buf);
	return 0;
}

int tpm_object_load(struct tpm *t, enum tpm_obj which, const uint8_t *b, size_t len,
                    struct sbx_err *e)
{
	uint32_t handle = 0;
	ESYS_TR *tr = obj_slot(t, which, &handle), loaded = ESYS_TR_NONE;
	TPM2_HANDLE got = 0;
	TSS2_RC rc;

	if (tr == NULL)
		return sbx_fail(e, SBX_EINVAL, "tpm: unknown object");
	rc = Esys_TR_Deserialize(t->ctx, b, len, &loaded);
	if (rc != TSS2_RC_SUCCESS)
		return tss_fail(e, rc, "Esys_TR_Deserialize");
	/* A stored record for another handle would make the box use a key
	 * or index it never provisioned. */
	rc = Esys_TR_GetTpmHandle(t->ctx, loaded, &got);
	if (rc != TSS2_RC_SUCCESS || got != handle) {
		Esys_TR_Close(t->ctx, &loaded);
		return sbx_fail(e, SBX_EINTEGRITY, "tpm: the stored record of handle 0x%08x names "
		                "handle 0x%08x", handle, got);
	}
	tr_close(t, tr);
	*tr = loaded;
	return 0;
}

/* ECC P-256 template with nameAlg SHA-256 and an empty unique field. */
static void ecc_template(TPM2B_PUBLIC *p, TPMA_OBJECT attrs, TPM2_ALG_ID sym,
                         TPM2_ALG_ID scheme)
{
	memset(p, 0, sizeof *p);
	p->publicArea.type = TPM2_ALG_ECC;
	p->publicArea.nameAlg = TPM2_ALG_SHA256;
	p->publicArea.objectAttributes = attrs;
	p->publicArea.parameters.eccDetail.symmetric.algorithm = sym;
	if (sym == TPM2_ALG_AES) {
		p->publicArea.parameters.eccDetail.symmetric.keyBits.aes = 128;
		p->publicArea.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	}
	p->publicArea.parameters.eccDetail.scheme.scheme = scheme;
	if (scheme == TPM2_ALG_ECDSA)
		p->publicArea.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	else if (scheme == TPM2_ALG_ECDH)
		p->publicArea.parameters.eccDetail.scheme.details.ecdh.hashAlg = TPM2_ALG_SHA256;
	p->publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	p->publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
}

#define OA_KEY (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | \
	TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA)

static int marshal_public(const TPMT_PUBLIC *pub, struct tpm_blob *out, struct sbx_err *e)
{
	size_t off = 0;
	TSS2_RC rc = Tss2_MU_TPMT_PUBLIC_Marshal(pub, out->b, TPM_MAX_PUBLIC, &off);

	if (rc != TSS2_RC_SUCCESS) {
		out->len = 0;
		return sbx_fail(e, SBX_ETPM, "tpm: cannot marshal TPMT_PUBLIC: %s", Tss2_RC_Decode(rc));
	}
	out->len = off;
	return 0;
}

/* Creates a child of `parent` (no transient slot used), returning the
 * private blob and marshalled public area. */
static int create_child(struct tpm *t, ESYS_TR parent, const TPM2B_PUBLIC *tmpl,
                        const char *what, TPM2B_PRIVATE **priv, TPM2B_PUBLIC **pub,
                        struct tpm_blob *pubblob, struct sbx_err *e)
{
	TPM2B_SENSITIVE_CREATE sens;
	TPM2B_DATA outside;
	TPML_PCR_SELECTION pcrs;
	TPM2B_CREATION_DATA *cd = NULL;
	TPM2B_DIGEST *ch = NULL;
	TPMT_TK_CREATION *tk = NULL;
	TSS2_RC rc;
	int r;
	char msg[64];

	memset(&sens, 0, sizeof sens);
	memset(&outside, 0, sizeof outside);
	memset(&pcrs, 0, sizeof pcrs);
	t->ncmd++;
	rc = Esys_Create(t->ctx, parent, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
	                 &sens, tmpl, &outside, &pcrs, priv, pub, &cd, &ch, &tk);
	if (rc != TSS2_RC_SUCCESS) {
		snprintf(msg, sizeof msg, "TPM2_Create(%s)", what);
		r = tss_fail(e, rc, msg);
		goto out;
	}
	r = marshal_public(&(*pub)->publicArea, pubblob, e);
out:
	Esys_Free(cd);
	Esys_Free(ch);
	Esys_Free(tk);
	return r;
}

/* Loads a created child and makes it persistent at `handle`; the transient
 * copy is flushed.  *ptr receives the persistent object. */
static int load_persist(struct tpm *t, ESYS_TR parent, const TPM2B_PRIVATE *priv,
                        const TPM2B_PUBLIC *pub, uint32_t handle, ESYS_TR *ptr,
                        struct sbx_err *e)
{
	ESYS_TR obj = ESYS_TR_NONE;
	TSS2_RC rc;
	int r;

	t->ncmd++;
	rc = Esys_Load(t->ctx, parent, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
	               priv, pub, &obj);
	if (rc != TSS2_RC_SUCCESS) {
		obj = ESYS_TR_NONE;
		r = tss_fail(e, rc, "TPM2_Load");
		goto out;
	}
	t->ncmd++;
	rc = Esys_EvictControl(t->ctx, ESYS_TR_RH_OWNER, obj, ESYS_TR_PASSWORD,
	                       ESYS_TR_NONE, ESYS_TR_NONE, handle, ptr);
	if (rc != TSS2_RC_SUCCESS) {
		*ptr = ESYS_TR_NONE;
		r = sbx_fail(e, SBX_ETPM, "tpm: TPM2_EvictControl to 0x%08x failed: %s",
		             handle, Tss2_RC_Decode(rc));
		goto out;
	}
	r = 0;
out:
	flush(t, &obj);
	return r;
}

/* Removes a persistent object made during a failed provisioning. */
static void unpersist(struct tpm *t, ESYS_TR *ptr, uint32_t handle)
{
	ESYS_TR gone = ESYS_TR_NONE;

	if (*ptr == ESYS_TR_NONE)
		return;
	t->ncmd++;
	if (Esys_EvictControl(t->ctx, ESYS_TR_RH_OWNER, *ptr, ESYS_TR_PASSWORD,
	                      ESYS_TR_NONE, ESYS_TR_NONE, handle, &gone) == TSS2_RC_SUCCESS)
		*ptr = ESYS_TR_NONE;   /* EvictControl invalidated it */
	else
		tr_close(t, ptr);
}

/* TPMT_SIGNATURE (ECDSA-SHA256) -> DER. */
static int sig_to_der(const TPMT_SIGNATURE *s, uint8_t *der, size_t cap, size_t *len,
                      struct sbx_err *e)
{
	ECDSA_SIG *es = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	uint8_t *p = der;
	int n, r = SBX_ETPM;

	*len = 0;
	if (s->sigAlg != TPM2_ALG_ECDSA || s->signature.ecdsa.hash != TPM2_ALG_SHA256 ||
	    s->signature.ecdsa.signatureR.size == 0 || s->signature.ecdsa.signatureR.size > 32 ||
	    s->signature.ecdsa.signatureS.size == 0 || s->signature.ecdsa.signatureS.size > 32) {
		r = sbx_fail(e, SBX_ETPM, "tpm: unexpected signature shape (alg 0x%04x)", s->sigAlg);
		goto out;
	}
	es = ECDSA_SIG_new();
	br = BN_bin2bn(s->signature.ecdsa.signatureR.buffer, s->signature.ecdsa.signatureR.size, NULL);
	bs = BN_bin2bn(s->signature.ecdsa.signatureS.buffer, s->signature.ecdsa.signatureS.size, NULL);
	if (es == NULL || br == NULL || bs == NULL || ECDSA_SIG_set0(es, br, bs) != 1) {
		r = sbx_fail_ssl(e, SBX_ECRYPTO, "tpm: cannot build ECDSA signature");
		goto out;
	}
	br = bs = NULL;   /* transferred */
	n = i2d_ECDSA_SIG(es, NULL);
	if (n <= 0 || (size_t)n > cap) {
		r = sbx_fail(e, SBX_ECRYPTO, "tpm: DER signature does not fit (%d bytes)", n);
		goto out;
	}
	if (i2d_ECDSA_SIG(es, &p) != n) {
		r = sbx_fail_ssl(e, SBX_ECRYPTO, "tpm: cannot encode ECDSA signature");
		goto out;
	}
	*len = (size_t)n;
	r = 0;
out:
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(es);
	return r;
}

/* Fails with SBX_EEXIST if any key handle is taken, SBX_ESTATE if the
 * counter index exists with attributes sealbox would not have set.
 * *have_counter tells whether the counter already exists. */
static int provision_precheck(struct tpm *t, int *have_counter, struct sbx_err *e)
{
	TPML_HANDLE l;
	TPM2B_NV_PUBLIC *nvp = NULL;
	uint32_t found;
	TSS2_RC rc;
	int r;

	/* Our four handles are consecutive and the answer is sorted, so any of
	 * them present is among the first four at or above the SRK handle. */
	r = list_handles(t, TPM_HANDLE_SRK, 4, &l, e);
	if (r != 0)
		goto out;
	if (handle_in(&l, TPM_HANDLE_SRK, TPM_HANDLE_AK, &found)) {
		r = sbx_fail(e, SBX_EEXIST, "tpm: already provisioned: persistent handle 0x%08x is in use", found);
		goto out;
	}
	r = handle_present(t, TPM_NV_COUNTER, have_counter, e);
	if (r != 0 || !*have_counter)
		goto out;
	r = resolve(t, TPM_NV_COUNTER, &t->counter, e);
	if (r != 0)
		goto out;
	t->ncmd++;
	rc = Esys_NV_ReadPublic(t->ctx, t->counter, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	                        &nvp, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		r = tss_fail(e, rc, "TPM2_NV_ReadPublic(counter)");
		goto out;
	}
	if ((nvp->nvPublic.attributes & ~TPMA_NV_WRITTEN) != COUNTER_ATTRS ||
	    nvp->nvPublic.dataSize != 8 || nvp->nvPublic.nameAlg != TPM2_ALG_SHA256) {
		r = sbx_fail(e, SBX_ESTATE, "tpm: NV index 0x%08x exists but is not a sealbox counter (attributes 0x%08x)",
		             TPM_NV_COUNTER, nvp->nvPublic.attributes);
		goto out;
	}
	r = 0;
out:
	Esys_Free(nvp);
	return r;
}

static int define_counter(struct tpm *t, struct sbx_err *e)
{
	TPM2B_AUTH auth;
	TPM2B_NV_PUBLIC pub;
	TSS2_RC rc;

	memset(&auth, 0, sizeof auth);
	memset(&pub, 0, sizeof pub);
	pub.nvPublic.nvIndex = TPM_NV_COUNTER;
	pub.nvPublic.nameAlg = TPM2_ALG_SHA256;
	pub.nvPublic.attributes = COUNTER_ATTRS;
	pub.nvPublic.dataSize = 8;
	t->ncmd++;
	rc = Esys_NV_DefineSpace(t->ctx, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	                         ESYS_TR_NONE, &auth, &pub, &t->counter);
	if (rc != TSS2_RC_SUCCESS) {
		t->counter = ESYS_TR_NONE;
		return tss_fail(e, rc, "TPM2_NV_DefineSpace(counter)");
	}
	/* A counter cannot be read until first incremented; do it now so a
	 * provisioned box always has a readable counter. */
	t->ncmd++;
	rc = Esys_NV_Increment(t->ctx, t->counter, t->counter, ESYS_TR_PASSWORD,
	                       ESYS_TR_NONE, ESYS_TR_NONE);
	if (rc != TSS2_RC_SUCCESS) {
		int r = tss_fail(e, rc, "TPM2_NV_Increment(counter)");

		t->ncmd++;
		Esys_NV_UndefineSpace(t->ctx, ESYS_TR_RH_OWNER, t->counter, ESYS_TR_PASSWORD,
		                      ESYS_TR_NONE, ESYS_TR_NONE);
		t->counter = ESYS_TR_NONE;   /* the undefine (or not) invalidated it */
		return r;
	}
	return 0;
}

static int certify(struct tpm *t, ESYS_TR sign, ESYS_TR ak, const uint8_t nonce[static 32],
                   struct tpm_identity *id, struct sbx_err *e)
{
	TPM2B_DATA qd;
	TPMT_SIG_SCHEME scheme;
	TPM2B_ATTEST *att = NULL;
	TPMT_SIGNATURE *sig = NULL;
	TSS2_RC rc;
	int r;

	memset(&qd, 0, sizeof qd);
	memset(&scheme, 0, sizeof scheme);
	qd.size = 32;
	memcpy(qd.buffer, nonce, 32);
	memcpy(id->certify_nonce, nonce, 32);
	scheme.scheme = TPM2_ALG_ECDSA;
	scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	t->ncmd++;
	rc = Esys_Certify(t->ctx, sign, ak, ESYS_TR_PASSWORD, ESYS_TR_PASSWORD,
	                  ESYS_TR_NONE, &qd, &scheme, &att, &sig);
	if (rc != TSS2_RC_SUCCESS) {
		r = tss_fail(e, rc, "TPM2_Certify(SIGN by AK)");
		goto out;
	}
	/* attestationData is already the marshalled TPMS_ATTEST the AK signed;
	 * keep those exact bytes rather than re-marshalling. */
	if (att->size == 0 || att->size > sizeof id->certify_attest.b ||
	    att->size > sizeof att->attestationData) {
		r = sbx_fail(e, SBX_ETPM, "tpm: certify attestation of %u bytes is out of range", att->size);
		goto out;
	}
	memcpy(id->certify_attest.b, att->attestationData, att->size);
	id->certify_attest.len = att->size;
	r = sig_to_der(sig, id->certify_sig.b, TPM_MAX_SIG_DER, &id->certify_sig.len, e);
out:
	Esys_Free(att);
	Esys_Free(sig);
	return r;
}

int tpm_provision(struct tpm *t, const uint8_t nonce[static 32],
                  struct tpm_identity *id, struct sbx_err *e)
{
	static const struct { const char *name; uint32_t handle; } key[3] = {
		{ "SIGN", TPM_HANDLE_SIGN },
		{ "DECRYPT", TPM_HANDLE_DECRYPT },
		{ "AK", TPM_HANDLE_AK },
	};
	TPM2B_PUBLIC tmpl[3], srk_tmpl;
	TPM2B_SENSITIVE_CREATE sens;
	TPM2B_DATA outside;
	TPML_PCR_SELECTION pcrs;
	TPM2B_PRIVATE *priv[3] = { NULL, NULL, NULL };
	TPM2B_PUBLIC *pub[3] = { NULL, NULL, NULL };
	struct tpm_blob *blob[3] = { &id->sign_pub, &id->decrypt_pub, &id->ak_pub };
	ESYS_TR srk = ESYS_TR_NONE, psrk = ESYS_TR_NONE;
	ESYS_TR persisted[3] = { ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE };
	int have_counter = 0, done = 0, r;
	TSS2_RC rc;

	memset(id, 0, sizeof *id);
	r = provision_precheck(t, &have_counter, e);
	if (r != 0)
		goto out;

	ecc_template(&srk_tmpl, TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
	             TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
	             TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT,
	             TPM2_ALG_AES, TPM2_ALG_NULL);
	ecc_template(&tmpl[0], OA_KEY | TPMA_OBJECT_SIGN_ENCRYPT, TPM2_ALG_NULL, TPM2_ALG_ECDSA);
	ecc_template(&tmpl[1], OA_KEY | TPMA_OBJECT_DECRYPT, TPM2_ALG_NULL, TPM2_ALG_ECDH);
	ecc_template(&tmpl[2], OA_KEY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT,
	             TPM2_ALG_NULL, TPM2_ALG_ECDSA);

	memset(&sens, 0, sizeof sens);
	memset(&outside, 0, sizeof outside);
	memset(&pcrs, 0, sizeof pcrs);
	t->ncmd++;
	rc = Esys_CreatePrimary(t->ctx, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	                        ESYS_TR_NONE, &sens, &srk_tmpl, &outside, &pcrs, &srk,
	                        NULL, NULL, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		srk = ESYS_TR_NONE;
		r = tss_fail(e, rc, "TPM2_CreatePrimary(SRK)");
		goto out;
	}
	for (int i = 0; i < 3; i++) {
		r = create_child(t, srk, &tmpl[i], key[i].name, &priv[i], &pub[i], blob[i], e);
		if (r != 0)
			goto out;
	}
	/* Only now touch persistent storage, one transient slot at a time
	 * (swtpm without a resource manager has three). */
	for (int i = 0; i < 3; i++) {
		r = load_persist(t, srk, priv[i], pub[i], key[i].handle, &persisted[i], e);
		if (r != 0)
			goto out;
	}
	t->ncmd++;
	rc = Esys_EvictControl(t->ctx, ESYS_TR_RH_OWNER, srk, ESYS_TR_PASSWORD,
	                       ESYS_TR_NONE, ESYS_TR_NONE, TPM_HANDLE_SRK, &psrk);
	if (rc != TSS2_RC_SUCCESS) {
		psrk = ESYS_TR_NONE;
		r = sbx_fail(e, SBX_ETPM, "tpm: TPM2_EvictControl to 0x%08x failed: %s",
		             TPM_HANDLE_SRK, Tss2_RC_Decode(rc));
		goto out;
	}
	flush(t, &srk);

	r = certify(t, persisted[0], persisted[2], nonce, id, e);
	if (r != 0)
		goto out;
	r = tpm_read_ekcerts(t, id, e);
	if (r != 0)
		goto out;
	if (!have_counter) {
		r = define_counter(t, e);
		if (r != 0)
			goto out;
	}
	done = 1;
	r = 0;
out:
	flush(t, &srk);
	if (done) {
		tr_close(t, &t->sign);
		tr_close(t, &t->decrypt);
		t->sign = persisted[0];
		t->decrypt = persisted[1];
		tr_close(t, &persisted[2]);
		tr_close(t, &psrk);
	} else {
		/* Leave the TPM as it was: a half-provisioned box would refuse
		 * the next attempt with SBX_EEXIST. */
		for (int i = 0; i < 3; i++)
			unpersist(t, &persisted[i], key[i].handle);
		unpersist(t, &psrk, TPM_HANDLE_SRK);
		memset(id, 0, sizeof *id);
	}
	for (int i = 0; i < 3; i++) {
		Esys_Free(priv[i]);
		Esys_Free(pub[i]);
	}
	return r;
}

int tpm_read_public(struct tpm *t, uint32_t handle, struct tpm_blob *pub, struct sbx_err *e)
{
	ESYS_TR tr = ESYS_TR_NONE, *use = &tr;
	TPM2B_PUBLIC *out = NULL;
	TSS2_RC rc;
	int r;

	pub->len = 0;
	if (handle == TPM_HANDLE_SIGN)
		use = &t->sign;
	else if (handle == TPM_HANDLE_DECRYPT)
		use = &t->decrypt;
	r = resolve(t, handle, use, e);
	if (r != 0)
		goto out;
	t->ncmd++;
	rc = Esys_ReadPublic(t->ctx, *use, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	                     &out, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		r = sbx_fail(e, SBX_ETPM, "tpm: TPM2_ReadPublic(0x%08x) failed: %s",
		             handle, Tss2_RC_Decode(rc));
		goto out;
	}
	r = marshal_public(&out->publicArea, pub, e);
out:
	tr_close(t, &tr);
	Esys_Free(out);
	return r;
}

static int nv_buffer_max(struct tpm *t, uint16_t *max, struct sbx_err *e)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more = 0;
	TSS2_RC rc;
	int r;

	t->ncmd++;
	rc = Esys_GetCapability(t->ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	                        TPM2_CAP_TPM_PROPERTIES, TPM2_PT_NV_BUFFER_MAX, 1, &more, &cap);
	if (rc != TSS2_RC_SUCCESS) {
		r = tss_fail(e, rc, "TPM2_GetCapability(NV_BUFFER_MAX)");
		goto out;
	}
	*max = 512;   /* conservative if the TPM does not say */
	if (cap->capability == TPM2_CAP_TPM_PROPERTIES && cap->data.tpmProperties.count >= 1 &&
	    cap->data.tpmProperties.tpmProperty[0].property == TPM2_PT_NV_BUFFER_MAX &&
	    cap->data.tpmProperties.tpmProperty[0].value > 0)
		*max = (uint16_t)(cap->data.tpmProperties.tpmProperty[0].value < TPM2_MAX_NV_BUFFER_SIZE
		                  ? cap->data.tpmProperties.tpmProperty[0].value : TPM2_MAX_NV_BUFFER_SIZE);
	r = 0;
out:
	Esys_Free(cap);
	return r;
}

static int read_ekcert(struct tpm *t, uint32_t index, uint16_t chunk,
                       struct tpm_ekcert *out, struct sbx_err *e)
{
	ESYS_TR nv = ESYS_TR_NONE, auth;
	TPM2B_NV_PUBLIC *nvp = NULL;
	TPM2B_MAX_NV_BUFFER *data = NULL;
	uint16_t size, off = 0;
	TSS2_RC rc;
	int r;

	out->len = 0;
	out->nv_index = index;
	r = resolve(t, index, &nv, e);
	if (r != 0)
		goto out;
	t->ncmd++;
	rc = Esys_NV_ReadPublic(t->ctx, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nvp, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		r = tss_fail(e, rc, "TPM2_NV_ReadPublic(EK certificate)");
		goto out;
	}
	size = nvp->nvPublic.dataSize;
	if (size == 0 || size > sizeof out->der) {
		r = sbx_fail(e, SBX_ETPM, "tpm: EK certificate at 0x%08x has size %u (max %zu)",
		             index, size, sizeof out->der);
		goto out;
	}
	if (nvp->nvPublic.attributes & TPMA_NV_AUTHREAD) {
		auth = nv;
	} else if (nvp->nvPublic.attributes & TPMA_NV_OWNERREAD) {
		auth = ESYS_TR_RH_OWNER;
	} else {
		r = sbx_fail(e, SBX_ETPM, "tpm: EK certificate at 0x%08x is not readable (attributes 0x%08x)",
		             index, nvp->nvPublic.attributes);
		goto out;
	}
	while (off < size) {
		uint16_t n = (uint16_t)(size - off < chunk ? size - off : chunk);

		t->ncmd++;
		rc = Esys_NV_Read(t->ctx, auth, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
		                  n, off, &data);
		if (rc != TSS2_RC_SUCCESS) {
			r = sbx_fail(e, SBX_ETPM, "tpm: TPM2_NV_Read(0x%08x at %u) failed: %s",
			             index, off, Tss2_RC_Decode(rc));
			goto out;
		}
		if (data->size != n) {
			r = sbx_fail(e, SBX_ETPM, "tpm: TPM2_NV_Read(0x%08x) returned %u bytes, asked %u",
			             index, data->size, n);
			goto out;
		}
		memcpy(out->der + off, data->buffer, n);
		off = (uint16_t)(off + n);
		Esys_Free(data);
		data = NULL;
	}
	out->len = size;
	r = 0;
out:
	tr_close(t, &nv);
	Esys_Free(nvp);
	Esys_Free(data);
	return r;
}

int tpm_read_ekcerts(struct tpm *t, struct tpm_identity *id, struct sbx_err *e)
{
	TPML_HANDLE l;
	uint16_t chunk = 0;
	uint32_t found;
	int r;

	id->n_ekcerts = 0;
	/* One listing covers all three indices (0x01c00002..0x01c00016). */
	r = list_handles(t, ekcert_index[0], TPM2_MAX_CAP_HANDLES, &l, e);
	if (r != 0)
		goto out;
	for (size_t i = 0; i < TPM_MAX_EKCERTS; i++) {
		if (!handle_in(&l, ekcert_index[i], ekcert_index[i], &found))
			continue;
		if (chunk == 0) {
			r = nv_buffer_max(t, &chunk, e);
			if (r != 0)
				goto out;
		}
		r = read_ekcert(t, ekcert_index[i], chunk, &id->ekcerts[id->n_ekcerts], e);
		if (r != 0)
			goto out;
		id->n_ekcerts++;
	}
	r = 0;
out:
	return r;
}

int tpm_sign(struct tpm *t, const uint8_t digest[static 32],
             uint8_t *sig, size_t *siglen, struct sbx_err *e)
{
	TPM2B_DIGEST dg;
	TPMT_SIG_SCHEME scheme;
	TPMT_TK_HASHCHECK check;
	TPMT_SIGNATURE *s = NULL;
	TSS2_RC rc;
	int r;

	*siglen = 0;
	r = resolve(t, TPM_HANDLE_SIGN, &t->sign, e);
	if (r != 0)
		goto out;
	memset(&dg, 0, sizeof dg);
	memset(&scheme, 0, sizeof scheme);
	memset(&check, 0, sizeof check);
	dg.size = 32;
	memcpy(dg.buffer, digest, 32);
	scheme.scheme = TPM2_ALG_ECDSA;
	scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	/* A null ticket: SIGN is unrestricted, so no proof that the TPM
	 * hashed the message is needed. */
	check.tag = TPM2_ST_HASHCHECK;
	check.hierarchy = TPM2_RH_NULL;
	t->ncmd++;
	rc = Esys_Sign(t->ctx, t->sign, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
	               &dg, &scheme, &check, &s);
	if (rc != TSS2_RC_SUCCESS) {
		r = tss_fail(e, rc, "TPM2_Sign(SIGN)");
		goto out;
	}
	r = sig_to_der(s, sig, TPM_MAX_SIG_DER, siglen, e);
out:
	Esys_Free(s);
	return r;
}

static int counter_get(struct tpm *t, uint64_t *value, struct sbx_err *e)
{
	TPM2B_MAX_NV_BUFFER *data = NULL;
	TSS2_RC rc;
	int r;

	*value = 0;
	t->ncmd++;
	rc = Esys_NV_Read(t->ctx, t->counter, t->counter, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	                  ESYS_TR_NONE, 8, 0, &data);
	if (rc == TPM2_RC_NV_UNINITIALIZED) {
		r = sbx_fail(e, SBX_ESTATE, "tpm: NV counter 0x%08x was never incremented", TPM_NV_COUNTER);
		goto out;
	}
	if (rc != TSS2_RC_SUCCESS) {
		r = tss_fail(e, rc, "TPM2_NV_Read(counter)");
		goto out;
	}
	if (data->size != 8) {
		r = sbx_fail(e, SBX_ETPM, "tpm: NV counter read returned %u bytes", data->size);
		goto out;
	}
	for (int i = 0; i < 8; i++)
		*value = (*value << 8) | data->buffer[i];
	r = 0;
out:
	Esys_Free(data);
	return r;
}

int tpm_counter_read(struct tpm *t, uint64_t *value, struct sbx_err *e)
{
	int r = resolve(t, TPM_NV_COUNTER, &t->counter, e);

	*value = 0;
	return r != 0 ? r : counter_get(t, value, e);
}

int tpm_counter_bump(struct tpm *t, struct sbx_err *e)
{
	TSS2_RC rc;
	int r;

	r = resolve(t, TPM_NV_COUNTER, &t->counter, e);
	if (r != 0)
		return r;
	t->ncmd++;
	rc = Esys_NV_Increment(t->ctx, t->counter, t->counter, ESYS_TR_PASSWORD,
	                       ESYS_TR_NONE, ESYS_TR_NONE);
	if (rc != TSS2_RC_SUCCESS)
		return tss_fail(e, rc, "TPM2_NV_Increment(counter)");
	return 0;
}

int tpm_counter_increment(struct tpm *t, uint64_t *value, struct sbx_err *e)
{
	int r;

	*value = 0;
	r = tpm_counter_bump(t, e);
	if (r != 0)
		return r;
	return counter_get(t, value, e);
}

int tpm_clock(struct tpm *t, uint64_t *clock_ms, uint32_t *reset_count,
              uint32_t *restart_count, struct sbx_err *e)
{
	TPMS_TIME_INFO *ti = NULL;
	TSS2_RC rc;

	t->ncmd++;
	rc = Esys_ReadClock(t->ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &ti);
	if (rc != TSS2_RC_SUCCESS)
		return tss_fail(e, rc, "TPM2_ReadClock");
	*clock_ms = ti->clockInfo.clock;
	*reset_count = ti->clockInfo.resetCount;
	*restart_count = ti->clockInfo.restartCount;
	Esys_Free(ti);
	return 0;
}

int tpm_ecdh(struct tpm *t, const uint8_t *peer, size_t peerlen,
             uint8_t shared[static 32], struct sbx_err *e)
{
	TPM2B_ECC_POINT in;
	TPM2B_ECC_POINT *z = NULL;
	TSS2_RC rc;
	int r;

	memset(&in, 0, sizeof in);
	if (peer == NULL || peerlen != 65 || peer[0] != 0x04) {
		r = sbx_fail(e, SBX_EINVAL, "tpm: ECDH peer must be an uncompressed P-256 point (65 bytes)");
		goto out;
	}
	r = resolve(t, TPM_HANDLE_DECRYPT, &t->decrypt, e);
	if (r != 0)
		goto out;
	in.point.x.size = 32;
	memcpy(in.point.x.buffer, peer + 1, 32);
	in.point.y.size = 32;
	memcpy(in.point.y.buffer, peer + 33, 32);
	t->ncmd++;
	rc = Esys_ECDH_ZGen(t->ctx, t->decrypt, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
	                    &in, &z);
	if (rc != TSS2_RC_SUCCESS) {
		r = tss_fail(e, rc, "TPM2_ECDH_ZGen(DECRYPT)");
		goto out;
	}
	if (z->point.x.size == 0 || z->point.x.size > 32) {
		r = sbx_fail(e, SBX_ETPM, "tpm: ECDH result of %u bytes", z->point.x.size);
		goto out;
	}
	/* Left-pad: a coordinate may come back without its leading zeros. */
	memset(shared, 0, 32);
	memcpy(shared + 32 - z->point.x.size, z->point.x.buffer, z->point.x.size);
	r = 0;
out:
	if (z != NULL) {
		OPENSSL_cleanse(z, sizeof *z);
		Esys_Free(z);
	}
	return r;
}

/* Undoes tpm_provision's keys after a later provisioning step failed, so a
 * failed `sealbox init` leaves no orphan persistent objects.  The NV counter
 * stays (counters only move forward). */
int tpm_deprovision(struct tpm *t, struct sbx_err *e)
{
	static const uint32_t handles[] = {
		TPM_HANDLE_SIGN, TPM_HANDLE_DECRYPT, TPM_HANDLE_AK, TPM_HANDLE_SRK
	};
	int r = 0;

	for (size_t i = 0; i < sizeof handles / sizeof handles[0]; i++) {
		ESYS_TR tr = ESYS_TR_NONE;
		int present = 0;

		if (handle_present(t, handles[i], &present, e) != 0) {
			r = SBX_ETPM;
			continue;
		}
		if (!present)
			continue;
		if (resolve(t, handles[i], &tr, e) != 0) {
			r = SBX_ETPM;
			continue;
		}
		unpersist(t, &tr, handles[i]);
		if (tr != ESYS_TR_NONE)
			r = sbx_fail(e, SBX_ETPM, "tpm: cannot evict 0x%08x", handles[i]);
	}
	/* Cached resolutions point at objects that no longer exist. */
	t->sign = ESYS_TR_NONE;
	t->decrypt = ESYS_TR_NONE;
	return r;
}

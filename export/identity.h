/* The box's public identity: what an auditor pins and what proves the
 * signing key lives in a TPM.  Binary file format in docs/LOG-FORMAT.md
 * ("Identity"); `sealbox identity --out FILE` writes it, sealbox-verify
 * reads it.  Core library: OpenSSL only. */
#ifndef SBX_IDENTITY_H
#define SBX_IDENTITY_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

#include "crypto/err.h"

#define IDENTITY_MAX_BLOB    1024
#define IDENTITY_MAX_EKCERT  4096
#define IDENTITY_MAX_EKCERTS 3

struct identity_blob {
	size_t len;
	uint8_t b[IDENTITY_MAX_BLOB];
};

struct identity_ekcert {
	uint32_t nv_index;
	size_t len;
	uint8_t der[IDENTITY_MAX_EKCERT];
};

struct identity {
	uint8_t appliance_id[32];           /* SHA-256 of SIGN's SubjectPublicKeyInfo DER */
	struct identity_blob sign_pub;      /* marshalled TPMT_PUBLIC */
	struct identity_blob decrypt_pub;   /* marshalled TPMT_PUBLIC */
	struct identity_blob ak_pub;        /* marshalled TPMT_PUBLIC */
	uint8_t certify_nonce[32];
	struct identity_blob certify_attest;/* marshalled TPMS_ATTEST */
	struct identity_blob certify_sig;   /* DER ECDSA by AK over certify_attest */
	size_t n_ekcerts;
	struct identity_ekcert ekcerts[IDENTITY_MAX_EKCERTS];
};

/* What identity_check found, for reports. */
struct identity_report {
	int sign_attrs_ok;      /* sign-only, fixedTPM, fixedParent, sensitiveDataOrigin */
	int decrypt_attrs_ok;   /* decrypt-only, fixedTPM, fixedParent, sensitiveDataOrigin */
	int ak_attrs_ok;        /* restricted sign, fixedTPM, fixedParent, sensitiveDataOrigin */
	int certify_ok;         /* attest parses, type CERTIFY, nonce matches, names SIGN, AK signature valid */
	int ekcert_present;
	int ekcert_chain_ok;    /* -1 not checked (no CA given), 0 failed, 1 ok */
	int appliance_id_ok;    /* appliance_id == SHA-256(SPKI(SIGN)) */
};

int identity_encode(const struct identity *id, uint8_t **out, size_t *outlen);
int identity_decode(const uint8_t *b, size_t len, struct identity *id);

/* Computes appliance_id from sign_pub (fills id->appliance_id). */
int identity_compute_id(struct identity *id);

/* The signing and decrypt public keys as OpenSSL keys / SPKI DER / PEM. */
int identity_sign_pkey(const struct identity *id, EVP_PKEY **out);
int identity_decrypt_pkey(const struct identity *id, EVP_PKEY **out);

/* Checks everything checkable offline (see struct identity_report).  ek_ca_pem
 * may be NULL (then the EK chain is not checked).  Returns 0 only if every
 * performed check passed; SBX_EVERIFY with a one-line reason otherwise. */
int identity_check(const struct identity *id, const char *ek_ca_pem,
                   struct identity_report *rep, struct sbx_err *e);

#endif

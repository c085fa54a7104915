/* Offline parsers for the TPM structures that prove where a key lives:
 * a marshalled TPMT_PUBLIC (the public area of a key) and a marshalled
 * TPMS_ATTEST of type TPM_ST_ATTEST_CERTIFY (TPM2_Certify output).
 * Core library: OpenSSL only, no tpm2-tss, so the recipient programs can
 * check a box's identity on any workstation.
 *
 * Both parsers are strict: every length is checked, trailing bytes are
 * rejected, and only the shapes sealbox creates are accepted (ECC P-256,
 * nameAlg SHA-256).  Encodings follow TPM 2.0 Part 2 (big-endian, TPM2B =
 * u16 size then bytes). */
#ifndef SBX_ATTEST_H
#define SBX_ATTEST_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

/* TPM 2.0 constants (Part 2), spelled here so no tss2 header is needed. */
#define ATTEST_ALG_AES        0x0006u
#define ATTEST_ALG_SHA256     0x000Bu
#define ATTEST_ALG_NULL       0x0010u
#define ATTEST_ALG_ECDSA      0x0018u
#define ATTEST_ALG_ECDH       0x0019u
#define ATTEST_ALG_ECC        0x0023u
#define ATTEST_ALG_CFB        0x0043u
#define ATTEST_ECC_NIST_P256  0x0003u

#define ATTEST_OA_FIXEDTPM             0x00000002u
#define ATTEST_OA_STCLEAR              0x00000004u
#define ATTEST_OA_FIXEDPARENT          0x00000010u
#define ATTEST_OA_SENSITIVEDATAORIGIN  0x00000020u
#define ATTEST_OA_USERWITHAUTH         0x00000040u
#define ATTEST_OA_ADMINWITHPOLICY      0x00000080u
#define ATTEST_OA_NODA                 0x00000400u
#define ATTEST_OA_ENCRYPTEDDUPLICATION 0x00000800u
#define ATTEST_OA_RESTRICTED           0x00010000u
#define ATTEST_OA_DECRYPT              0x00020000u
#define ATTEST_OA_SIGN                 0x00040000u

#define ATTEST_GENERATED_VALUE  0xff544347u   /* TPM_GENERATED_VALUE */
#define ATTEST_ST_CERTIFY       0x8017u       /* TPM_ST_ATTEST_CERTIFY */

#define ATTEST_NAME_LEN   34   /* Name of a SHA-256 object: 0x000B || digest */
#define ATTEST_NAME_MAX   68   /* sizeof(TPMU_NAME) */
#define ATTEST_DATA_MAX   64   /* sizeof(TPMU_HA): TPM2B_DATA */

/* A parsed ECC public area.  The point coordinates are left-padded to 32
 * bytes; `name` is what the TPM calls this key's Name. */
struct attest_public {
	uint16_t type;              /* ATTEST_ALG_ECC */
	uint16_t name_alg;          /* ATTEST_ALG_SHA256 */
	uint32_t attrs;             /* ATTEST_OA_* */
	size_t policy_len;          /* authPolicy: 0 or 32 */
	uint8_t policy[32];
	uint16_t sym_alg;           /* ATTEST_ALG_NULL or AES */
	uint16_t sym_bits, sym_mode;/* 0 when sym_alg is NULL */
	uint16_t scheme;            /* NULL, ECDSA or ECDH */
	uint16_t scheme_hash;       /* 0 when scheme is NULL */
	uint16_t curve;             /* ATTEST_ECC_NIST_P256 */
	uint16_t kdf;               /* ATTEST_ALG_NULL */
	uint8_t x[32], y[32];
	uint8_t name[ATTEST_NAME_LEN];
};

/* A parsed TPMS_ATTEST of type TPM_ST_ATTEST_CERTIFY. */
struct attest_certify {
	size_t signer_len;          /* qualifiedSigner (TPM2B_NAME) */
	uint8_t signer[ATTEST_NAME_MAX];
	size_t extra_len;           /* extraData: the caller's qualifyingData */
	uint8_t extra[ATTEST_DATA_MAX];
	uint64_t clock;             /* clockInfo */
	uint32_t reset_count, restart_count;
	uint8_t safe;
	uint64_t firmware;          /* firmwareVersion (obfuscated for owner-hierarchy signers) */
	size_t name_len;            /* certify.name: Name of the certified key */
	uint8_t name[ATTEST_NAME_MAX];
	size_t qname_len;           /* certify.qualifiedName */
	uint8_t qname[ATTEST_NAME_MAX];
};

/* 0, or SBX_EFORMAT for anything but an exactly-sized ECC P-256 SHA-256
 * public area with the schemes listed above.  Fills out->name. */
int attest_public_parse(const uint8_t *b, size_t len, struct attest_public *out);

/* The key as an OpenSSL public key (point checked to be on the curve), or
 * as DER SubjectPublicKeyInfo (caller frees *der with OPENSSL_free). */
int attest_public_pkey(const struct attest_public *p, EVP_PKEY **out);
int attest_public_spki(const struct attest_public *p, uint8_t **der, size_t *len);

/* 0, or SBX_EFORMAT unless b is exactly one TPMS_ATTEST with the TPM's
 * magic and type TPM_ST_ATTEST_CERTIFY. */
int attest_certify_parse(const uint8_t *b, size_t len, struct attest_certify *out);

/* 0 if der is a canonical DER ECDSA signature by pub over SHA-256(msg),
 * SBX_EVERIFY otherwise.  This is the TPM's plain signature over a digest,
 * with no sealbox namespace (see crypto/sig.h for namespaced ones). */
int attest_verify_sig(EVP_PKEY *pub, const uint8_t *msg, size_t len,
                      const uint8_t *der, size_t derlen);

#endif

/* The box's TPM, through tpm2-tss ESYS.  Appliance side only: the recipient
 * programs never link this.
 *
 * Keys live at fixed persistent handles so an operation costs few TPM
 * commands (real chips take 20-200 ms per command).  All keys are ECC P-256
 * under an ECC storage primary in the owner hierarchy:
 *   SRK      restricted decrypt (storage parent)
 *   SIGN     sign only: fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|sign|noDA
 *   DECRYPT  decrypt only (ECDH for content-key wrapping), same attributes but decrypt
 *   AK       restricted sign, ECDSA-SHA256 (certifies SIGN)
 * Never one key that both signs and decrypts. */
#ifndef SBX_TPM_H
#define SBX_TPM_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/err.h"

#define TPM_HANDLE_SRK      0x81005B01u
#define TPM_HANDLE_SIGN     0x81005B02u
#define TPM_HANDLE_DECRYPT  0x81005B03u
#define TPM_HANDLE_AK       0x81005B04u
#define TPM_NV_COUNTER      0x01005B01u

/* TPM2B/TPMT sizes are small; these bound every copy. */
#define TPM_MAX_PUBLIC   512    /* marshalled TPMT_PUBLIC */
#define TPM_MAX_ATTEST   1024   /* marshalled TPMS_ATTEST */
#define TPM_MAX_SIG_DER  80     /* DER ECDSA P-256 signature */
#define TPM_MAX_EKCERT   4096
#define TPM_MAX_EKCERTS  3

struct tpm;

struct tpm_blob {
	size_t len;
	uint8_t b[TPM_MAX_ATTEST];
};

struct tpm_ekcert {
	uint32_t nv_index;      /* 0x01c00002 RSA, 0x01c0000a ECC P-256, 0x01c00016 ECC P-384 */
	size_t len;
	uint8_t der[TPM_MAX_EKCERT];
};

/* What provisioning produces; all public. */
struct tpm_identity {
	struct tpm_blob sign_pub;      /* marshalled TPMT_PUBLIC of SIGN */
	struct tpm_blob decrypt_pub;   /* marshalled TPMT_PUBLIC of DECRYPT */
	struct tpm_blob ak_pub;        /* marshalled TPMT_PUBLIC of AK */
	uint8_t certify_nonce[32];     /* qualifyingData given to TPM2_Certify */
	struct tpm_blob certify_attest;/* marshalled TPMS_ATTEST (TPM_ST_ATTEST_CERTIFY) */
	struct tpm_blob certify_sig;   /* AK's ECDSA signature over the attest, DER */
	size_t n_ekcerts;
	struct tpm_ekcert ekcerts[TPM_MAX_EKCERTS];
};

/* Opens the TPM through the given TCTI string ("swtpm:path=S",
 * "device:/dev/tpmrm0").  tcti must be non-NULL and non-empty: the TCTI is
 * never guessed. */
int tpm_open(const char *tcti, struct tpm **out, struct sbx_err *e);
/* Flushes transient objects and frees.  Does not shut the TPM down. */
void tpm_close(struct tpm *t);

/* Creates the four keys and makes them persistent, certifies SIGN with AK
 * using `nonce`, reads the EK certificates present in NV, and defines the NV
 * counter (if absent).  Fails with SBX_EEXIST, changing nothing, if any of
 * the handles is already occupied. */
int tpm_provision(struct tpm *t, const uint8_t nonce[static 32],
                  struct tpm_identity *id, struct sbx_err *e);

/* Evicts the four persistent keys (absent ones are skipped); used to undo
 * a provisioning whose later steps failed.  Leaves the NV counter. */
int tpm_deprovision(struct tpm *t, struct sbx_err *e);

/* Reads back the public areas of the persistent keys and the EK
 * certificates (no certify; the certify blob is stored by the caller). */
int tpm_read_public(struct tpm *t, uint32_t handle, struct tpm_blob *pub,
                    struct sbx_err *e);

/* Reads the EK certificates present in NV (0x01c00002, 0x01c0000a,
 * 0x01c00016, in that order) into id->ekcerts / id->n_ekcerts. */
int tpm_read_ekcerts(struct tpm *t, struct tpm_identity *id, struct sbx_err *e);

/* Signs a SHA-256 digest with SIGN; writes a DER ECDSA signature.  sig must
 * hold TPM_MAX_SIG_DER bytes; *siglen is set to the length written. */
int tpm_sign(struct tpm *t, const uint8_t digest[static 32],
             uint8_t *sig, size_t *siglen, struct sbx_err *e);

/* ESYS's record of a persistent object (its public area and name), saved
 * once at provisioning and loaded at each start, so that a run needs no
 * TPM2_ReadPublic / TPM2_NV_ReadPublic to find SIGN, DECRYPT and the
 * counter (TPM commands are slow on real parts).  Loading checks that the
 * record names the object's fixed handle.  *out is malloc'd. */
enum tpm_obj { TPM_OBJ_SIGN, TPM_OBJ_DECRYPT, TPM_OBJ_COUNTER };
int tpm_object_save(struct tpm *t, enum tpm_obj which, uint8_t **out, size_t *len,
                    struct sbx_err *e);
int tpm_object_load(struct tpm *t, enum tpm_obj which, const uint8_t *b, size_t len,
                    struct sbx_err *e);

/* NV counter: read; increment and read the new value; increment only. */
int tpm_counter_read(struct tpm *t, uint64_t *value, struct sbx_err *e);
int tpm_counter_increment(struct tpm *t, uint64_t *value, struct sbx_err *e);
int tpm_counter_bump(struct tpm *t, struct sbx_err *e);

/* TPM clock in ms (TPMS_TIME_INFO.clockInfo.clock), with reset/restart counts. */
int tpm_clock(struct tpm *t, uint64_t *clock_ms, uint32_t *reset_count,
              uint32_t *restart_count, struct sbx_err *e);

/* ECDH with DECRYPT (TPM2_ECDH_ZGen): peer is an uncompressed P-256 point
 * (65 bytes, 0x04||X||Y); writes the 32-byte shared X coordinate. */
int tpm_ecdh(struct tpm *t, const uint8_t *peer, size_t peerlen,
             uint8_t shared[static 32], struct sbx_err *e);

/* Number of TPM commands sent since open (for benchmarks). */
uint64_t tpm_command_count(const struct tpm *t);

#endif

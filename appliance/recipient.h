/* Recipients: a name, a certificate (with its intermediates), a role and
 * the reference of the recipient's attestation (C.R.S. 24-74-105: no use
 * for immigration enforcement).  Whether a recipient may receive evidence
 * is decided at the moment of use by recipient_usable(), never cached:
 * certificates expire, CRLs and trust.conf change (docs/RECIPIENTS.md). */
#ifndef SBX_RECIPIENT_H
#define SBX_RECIPIENT_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

#include "appliance/box.h"
#include "appliance/x509check.h"

#define RECIPIENT_MAX_NAME 64     /* 1-64 of A-Z a-z 0-9 . _ @ -, starting alphanumeric */
#define RECIPIENT_MAX_REF  256    /* attestation reference, as an authority reference */

struct recipient_info {
	char name[RECIPIENT_MAX_NAME + 1];
	char role[16];                              /* "court" or "prosecutor" */
	char attestation[RECIPIENT_MAX_REF + 1];
	char operator_id[129];                      /* who added it */
	uint64_t added_ms;
	uint8_t *cert_der;                          /* the certificate, DER (malloc'd) */
	size_t cert_len;
	uint8_t cert_sha256[32];                    /* SHA-256 of cert_der */
	char subject[X509CHECK_MAX_NAME + 1];       /* RFC 2253, ASCII */
	char issuer[X509CHECK_MAX_NAME + 1];
	char anchor[X509CHECK_MAX_NAME + 1];        /* the anchor reached, when usable */
	uint8_t anchor_sha256[32];                  /* its certificate's SHA-256 */
	uint64_t not_before_ms, not_after_ms;
	EVP_PKEY *pkey;                             /* the certificate's public key (owned) */
	int wrap_alg;                               /* WRAP_ECDH_P256 / _P384 / WRAP_RSA_OAEP */
	/* The verdict at the time asked. */
	int usable;
	int verdict;                                /* X509CHECK_* */
	char reason[512];                           /* why not usable; "" when usable */
	char notes[X509CHECK_MAX_NOTES];            /* non-fatal, e.g. "no CRL loaded for ..." */
	uint8_t trust_conf_sha256[32];              /* trust.conf in force, zero if none */
};

/* Frees what recipient_info owns; safe on a zeroed or already freed one. */
void recipient_info_free(struct recipient_info *ri);

/* 1 if `name` has recipient name syntax. */
int recipient_name_valid(const char *name);

/* THE check before anything leaves the box for `name`: its certificate
 * chains to a trust anchor of its role (no partial chains), is valid at
 * `now` (ms; pass box_now_ms()), is not revoked by a loaded CRL, allows the
 * wrap (keyUsage), has an EC P-256/P-384 or RSA >= 3072 key, is not
 * self-signed, carries no federal marking in it or its chain; its role is
 * one the policy in force allows.  Returns 0 if usable; SBX_ENOENT (no such
 * recipient) or SBX_EPOLICY with a one-line reason ("recipient 'X' is not
 * usable: the certificate expired on ..."); SBX_EFORMAT if trust.conf is
 * malformed; SBX_EIO/ENOMEM.  On 0 the caller owns out->cert_der and
 * out->pkey (recipient_info_free).  On failure it owns nothing, but the
 * text fields are filled whenever the recipient exists (name, role,
 * cert_sha256, subject, verdict, reason, ...), so the caller can show and
 * log them.  Nothing is logged here: the caller logs its own refusal. */
int recipient_usable(struct box *b, const char *name, uint64_t now,
                     struct recipient_info *out, struct sbx_err *e);

/* `sealbox recipient add`: the certificate file holds the recipient's
 * certificate first, then its intermediates (PEM), or one DER certificate.
 * The same checks as recipient_usable, at box_now_ms(); an attestation
 * reference is required.  A refusal is logged with its reason.  `out` as
 * for recipient_usable. */
int recipient_add(struct box *b, const char *name, const char *path, const char *role,
                  const char *attestation, const char *operator_id,
                  struct recipient_info *out, struct sbx_err *e);

/* `sealbox recipient remove`.  The custody log keeps the record. */
int recipient_remove(struct box *b, const char *name, const char *operator_id,
                     struct sbx_err *e);

/* Calls fn for every recipient (by name) with its usability at `now`. */
int recipient_foreach(struct box *b, uint64_t now,
                      int (*fn)(void *, const struct recipient_info *), void *arg,
                      struct sbx_err *e);

#endif

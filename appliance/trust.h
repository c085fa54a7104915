/* The box's trust: anchors per role (court, prosecutor; never federal) and
 * CRLs in the database, and local additions to the federal markers in
 * STATE/trust.conf (docs/RECIPIENTS.md, "Trust").  Adding an anchor or a
 * CRL checks, logs a refusal with its reason, or stores it and appends the
 * custody record in one transaction. */
#ifndef SBX_TRUST_H
#define SBX_TRUST_H

#include <stddef.h>
#include <stdint.h>

#include "appliance/box.h"
#include "appliance/x509check.h"

#define TRUST_MAX_CERT_FILE (256u << 10)               /* PEM or DER certificate file */
#define TRUST_MAX_CRL_FILE  (X509CHECK_MAX_CRL * 2)     /* PEM of the largest CRL */
#define TRUST_CONF_NAME     "trust.conf"

/* Reads a regular file of at most `max` bytes (never a FIFO or device);
 * errors name the file and what it was meant to be.  *buf is malloc'd. */
int trust_read_file(const char *path, const char *what, size_t max, uint8_t **buf,
                    size_t *len, struct sbx_err *e);

/* Everything the certificate checks need: the anchors of both roles, the
 * CRLs, the recipients' intermediates (to verify CRLs), STATE/trust.conf.
 * conf_sha256 is the SHA-256 of trust.conf, all zero without one. */
int trust_load(struct box *b, struct x509check_trust **out, uint8_t conf_sha256[static 32],
               struct sbx_err *e);

/* `sealbox trust add`: the file holds one self-signed CA certificate. */
int trust_add(struct box *b, const char *role, const char *path, const char *operator_id,
              struct x509check_info *info, struct sbx_err *e);

/* `sealbox trust crl`: the file holds one CRL, optionally followed by its
 * issuer's certificate(s) when the issuer is an intermediate.  It replaces
 * the loaded CRL of the same issuer only if newer; *replaced is set to 1
 * when it did. */
int trust_crl(struct box *b, const char *path, const char *operator_id,
              struct x509check_crl_info *info, int *replaced, struct sbx_err *e);

struct trust_anchor {
	char role[16];
	uint8_t sha256[32];
	char subject[X509CHECK_MAX_NAME + 1];
	uint64_t not_before_ms, not_after_ms, added_ms;
	char operator_id[129];
};

struct trust_crl_row {
	struct x509check_crl_info info;
	uint64_t loaded_ms;
	char operator_id[129];
};

int trust_foreach_anchor(struct box *b, int (*fn)(void *, const struct trust_anchor *),
                         void *arg, struct sbx_err *e);
int trust_foreach_crl(struct box *b, int (*fn)(void *, const struct trust_crl_row *),
                      void *arg, struct sbx_err *e);

#endif

/* tpm_provision's output as an identity file (export/identity.h).  TPM
 * library (appliance side); the recipient programs never need it. */
#ifndef SBX_TPM_IDENT_H
#define SBX_TPM_IDENT_H

#include "crypto/tpm.h"
#include "export/identity.h"

/* Copies every field and computes appliance_id.  0, SBX_EINVAL on an
 * empty or oversized field, or an error from identity_compute_id. */
int tpm_identity_export(const struct tpm_identity *tid, struct identity *id);

#endif

/* Hands what tpm_provision produced to the identity file format.  Lives on
 * the TPM side so export/identity.h (core, recipient programs) never sees
 * the TPM structures. */
#include "crypto/tpm_ident.h"

#include <string.h>

static int copy_blob(struct identity_blob *dst, const struct tpm_blob *src)
{
	if (src->len == 0 || src->len > sizeof dst->b || src->len > sizeof src->b)
		return SBX_EINVAL;
	memcpy(dst->b, src->b, src->len);
	dst->len = src->len;
	return 0;
}

int tpm_identity_export(const struct tpm_identity *tid, struct identity *id)
{
	int r = SBX_EINVAL;

	memset(id, 0, sizeof *id);
	if (tid->n_ekcerts > TPM_MAX_EKCERTS || tid->n_ekcerts > IDENTITY_MAX_EKCERTS)
		goto out;
	if (copy_blob(&id->sign_pub, &tid->sign_pub) != 0 ||
	    copy_blob(&id->decrypt_pub, &tid->decrypt_pub) != 0 ||
	    copy_blob(&id->ak_pub, &tid->ak_pub) != 0 ||
	    copy_blob(&id->certify_attest, &tid->certify_attest) != 0 ||
	    copy_blob(&id->certify_sig, &tid->certify_sig) != 0)
		goto out;
	memcpy(id->certify_nonce, tid->certify_nonce, sizeof id->certify_nonce);
	for (size_t i = 0; i < tid->n_ekcerts; i++) {
		const struct tpm_ekcert *s = &tid->ekcerts[i];

		if (s->len == 0 || s->len > sizeof id->ekcerts[i].der)
			goto out;
		id->ekcerts[i].nv_index = s->nv_index;
		id->ekcerts[i].len = s->len;
		memcpy(id->ekcerts[i].der, s->der, s->len);
	}
	id->n_ekcerts = tid->n_ekcerts;
	r = identity_compute_id(id);
out:
	if (r != 0)
		memset(id, 0, sizeof *id);
	return r;
}

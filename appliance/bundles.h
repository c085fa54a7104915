/* Sealed bundles on the box: where they live, their database rows, the
 * at-rest content keys (wrapped to the TPM's decrypt key), crash recovery,
 * purging, and the custody proofs that travel with an exported bundle. */
#ifndef SBX_BUNDLES_H
#define SBX_BUNDLES_H

#include <stddef.h>
#include <stdint.h>

#include "appliance/box.h"
#include "export/bundle.h"

struct bundle_row {
	char id[65];
	char case_id[129];
	uint64_t sealed_ms, reads, images, bytes, record_seq, purged_ms;
	char ciphertext_sha256[65];
	int purged;
};

/* STATE/bundles, created 0700 if missing. */
int bundles_dir(struct box *b, char *out, size_t cap, struct sbx_err *e);
void bundles_path(const struct box *b, const char *id, char *out, size_t cap);

int bundles_get(struct box *b, const char *id, struct bundle_row *row, struct sbx_err *e);
/* case_id NULL: every bundle. */
int bundles_foreach(struct box *b, const char *case_id,
                    int (*fn)(void *, const struct bundle_row *), void *arg,
                    struct sbx_err *e);

/* Start-up: a bundle file without its record is rolled back (deleted), a
 * purged bundle's leftover file is deleted (rolled forward), temporary files
 * are removed; a sealed record whose file is missing raises the alarm. */
int bundles_recover(struct box *b, struct sbx_err *e);

/* Wraps the CEK to the TPM decrypt key (software ECDH with its public key). */
int bundles_wrap_key(struct box *b, const uint8_t id[static 32], const uint8_t cek[static 32],
                     uint8_t **blob, size_t *bloblen, struct sbx_err *e);
/* Unwraps a sealed bundle's CEK with the TPM (TPM2_ECDH_ZGen).  SBX_ENOENT
 * once purged: the key no longer exists anywhere. */
int bundles_unwrap_key(struct box *b, const char *id, uint8_t cek[static 32],
                       struct sbx_err *e);

/* The custody file for a bundle: its records with inclusion proofs under the
 * newest signed head. */
int bundles_custody(struct box *b, const char *id, uint8_t **out, size_t *len,
                    struct sbx_err *e);

/* Inside hold close's transaction: destroys the wrapped keys of every sealed
 * bundle of the case and marks them purged. */
int bundles_purge_keys(struct box *b, const char *case_id, uint64_t now, struct sbx_err *e);
/* After the commit: deletes the purged bundles' files and fsyncs the
 * directory. */
int bundles_delete_purged_files(struct box *b, const char *case_id, struct sbx_err *e);

#endif

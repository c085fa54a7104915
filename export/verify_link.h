/* Ties one bundle to a custody-log export that already verified
 * (logexport_verify returned 0): its custody head is one of the export's
 * signed heads or is consistent with them, its custody records are the
 * export's records at the same leaf indexes, and the export holds the
 * bundle's ingest record.  docs/VERIFY.md ("log-head", "log-records",
 * "log-ingest").  Each function returns 0 or SBX_EVERIFY/SBX_EFORMAT and says
 * why in one line either way (`what`, `e`).  Core library. */
#ifndef SBX_VERIFY_LINK_H
#define SBX_VERIFY_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/err.h"
#include "export/bundle.h"
#include "export/sth.h"

/* The head is one of the export's heads (byte for byte), or covers no more
 * records than the export and its root is the Merkle tree of the export's
 * first tree_size records.  SBX_ESTATE: the head covers more records than
 * the export and is not behind the export's last head (counter, time), so
 * the two cannot be compared (not a verdict on either); a head covering
 * more records but behind the last head fails (a rolled-back or forked
 * log). */
int vlink_head(const uint8_t *exp, size_t exp_len, const uint8_t head[static STH_ENCODED_LEN],
               char *what, size_t what_cap, struct sbx_err *e);

/* Every custody record is byte for byte the export's record at its
 * leaf_index.  within: records beyond the export's end (a custody head
 * newer than the export) are counted in *beyond instead of failing; the
 * others are still compared. */
int vlink_records(const uint8_t *exp, size_t exp_len, const struct bundle_custody *c,
                  int within, size_t *beyond, char *what, size_t what_cap, struct sbx_err *e);

/* The export holds exactly one successful ingest record naming bundle_id,
 * for the manifest's case and policy.  SBX_ENOENT when it holds none. */
int vlink_ingest(const uint8_t *exp, size_t exp_len, const uint8_t bundle_id[static 32],
                 const struct bundle_manifest *m, char *what, size_t what_cap,
                 struct sbx_err *e);

#endif

/* The custody log on the box: append, anchor to the TPM counter, recover
 * after a crash, verify, export.  Write order (docs/LOG-FORMAT.md):
 *   1. one transaction: the state change, the record, an unsigned head
 *      naming the counter value it will be anchored to; commit (FULL sync);
 *   2. if the event changes state: TPM NV counter increment;
 *   3. sign the head with the TPM; store the signature.
 * A crash between 1 and 2 or 2 and 3 is rolled forward at the next start. */
#ifndef SBX_CUSTODY_H
#define SBX_CUSTODY_H

#include <stdint.h>

#include "appliance/box.h"
#include "export/logrec.h"

/* What a custody_append that failed left behind (b->last_append).  A
 * failure after the commit (the TPM counter, the signature) leaves the
 * record in force, rolled forward at the next start; a failed COMMIT leaves
 * it undecided (SQLite may have committed: the next start decides).  Only
 * APPEND_NOT_COMMITTED lets a caller undo what it did for the record, such
 * as a bundle file the record names.  After either of the others the run
 * appends nothing more (SBX_ESTATE): the next start completes the record
 * first, so that no later record is anchored on a counter step that never
 * happened.  A complete append leaves APPEND_NOT_COMMITTED. */
enum { APPEND_NOT_COMMITTED = 0, APPEND_COMMITTED = 1, APPEND_UNDECIDED = 2 };

/* Runs `apply` (may be NULL) and appends `rec` in one transaction.  The
 * caller fills event, outcome, operator, case, bundle, reason, detail; this
 * fills seq, times, appliance id and policy hash.  `anchor` moves the TPM
 * counter.  On failure, see b->last_append. */
int custody_append(struct box *b, struct logrec *rec, int anchor,
                   int (*apply)(struct box *, void *, struct sbx_err *), void *arg,
                   struct sbx_err *e);

/* Appends `rec` (an integrity.clear) anchored one past the TPM counter's
 * current value, whatever the log expected: an auditor's acknowledgement
 * that the log and the TPM disagreed, after which they agree again. */
int custody_rebase(struct box *b, struct logrec *rec, struct sbx_err *e);

/* Logs a refusal (outcome "denied") with its reason.  Refusals are anchored
 * to the TPM counter: a rolled-back database must not erase one. */
int custody_deny(struct box *b, const char *event, const char *operator_id,
                 const char *case_id, const char *reason, struct sbx_err *e);

/* The TPM counter value the log is anchored at now (the newest head's). */
int custody_counter(struct box *b, uint64_t *counter, struct sbx_err *e);

/* Start-up check and roll-forward; sets b->alarm on a mismatch it cannot
 * explain by a crash (older database restored, counter behind, ...). */
int custody_recover(struct box *b, struct sbx_err *e);

struct custody_report {
	uint64_t records, heads, counter_tpm, counter_log;
	int identity_ok, tpm_key_ok, records_ok, heads_ok, counter_ok, index_ok;
	unsigned problems;
	char problem[8][256];   /* the first few, one line each */
};

/* Recomputes everything from the canonical bytes: record encodings and
 * sequence, leaf hashes, every head's root and signature, the TPM signing
 * key, the counter.  0 if all good, SBX_EVERIFY if any problem. */
int custody_verify(struct box *b, struct custody_report *rep, struct sbx_err *e);

struct logexport_report;
/* As custody_verify, also returning the export verifier's own report. */
int custody_verify_full(struct box *b, struct custody_report *rep,
                        struct logexport_report *xrep, struct sbx_err *e);

/* What an export wrote, for the caller's report: the records and heads in
 * the file, its size and SHA-256 (as its log.export record names them),
 * and that record's seq. */
struct custody_export_info {
	uint64_t records, heads, bytes, seq;
	uint8_t sha256[32];
};
/* Logs the export, then writes the whole log as one self-contained file
 * (docs/LOG-FORMAT.md, "Export") atomically.  info may be NULL. */
int custody_export(struct box *b, const char *path, const char *operator_id,
                   struct custody_export_info *info, struct sbx_err *e);

/* Iterates over the records in order (for `log show`). */
int custody_foreach(struct box *b, int (*fn)(void *, const struct logrec *, const uint8_t leaf[32]),
                    void *arg, struct sbx_err *e);

#endif

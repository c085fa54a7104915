/* The custody-log export: one self-contained file an auditor verifies
 * offline, with no access to the box.  It carries the box's identity, every
 * custody record and every signed tree head; the layout and the verification
 * algorithm are specified in docs/LOG-EXPORT.md.
 *
 *   "SBXL" | u8 version=1 | bytes32 identity |
 *   u64 n_records | n_records x bytes32 record |
 *   u64 n_heads   | n_heads x (STH_ENCODED_LEN bytes head | bytes32 sig) |
 *   sha256 of every byte before it (32)
 *
 * Core library: OpenSSL and libc only. */
#ifndef SBX_LOGEXPORT_H
#define SBX_LOGEXPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "crypto/err.h"
#include "export/identity.h"
#include "export/sth.h"

#define LOGEXPORT_VERSION       1
#define LOGEXPORT_MAX_IDENTITY  65536
#define LOGEXPORT_MAX_RECORDS   (UINT64_C(1) << 24)
#define LOGEXPORT_MAX_HEADS     (UINT64_C(1) << 25)
#define LOGEXPORT_EVENT_SLOTS   32      /* >= entries of logrec_events */
#define LOGEXPORT_OUTCOME_SLOTS 8       /* >= entries of logrec_outcomes */

/* ---- Writing (the box) ------------------------------------------------- */

struct logexport_writer;

/* Starts an export on `fd` (not closed, not fsync'd: durability is the
 * caller's, e.g. temp file + fsync + rename).  The counts are written up
 * front, so exactly n_records records and then n_heads heads must follow.
 * Streaming: memory use does not depend on the counts. */
int logexport_writer_open(int fd, const uint8_t *identity, size_t identity_len,
                          uint64_t n_records, uint64_t n_heads,
                          struct logexport_writer **out, struct sbx_err *e);
/* One record's canonical bytes (logrec_encode), in sequence order. */
int logexport_writer_put_record(struct logexport_writer *w, const uint8_t *rec,
                                size_t len, struct sbx_err *e);
/* One signed tree head (sth_encode bytes and its DER signature), in order,
 * after every record. */
int logexport_writer_put_sth(struct logexport_writer *w,
                             const uint8_t sth[static STH_ENCODED_LEN],
                             const uint8_t *sig, size_t siglen, struct sbx_err *e);
/* Checks the counts, writes the trailing checksum, flushes; frees w in
 * every case.  On failure the file is incomplete: delete it. */
int logexport_writer_finish(struct logexport_writer *w, struct sbx_err *e);
/* Abandons an export without finishing it.  NULL is fine. */
void logexport_writer_free(struct logexport_writer *w);

/* ---- Verifying (the auditor) ------------------------------------------ */

struct logexport_opts {
	const uint8_t *pin_appliance_id;    /* 32 bytes the auditor pinned, or NULL */
	const uint8_t *pin_identity;        /* pinned identity file bytes, or NULL */
	size_t pin_identity_len;
	const char *ek_ca_pem;              /* for identity_check; NULL: EK chain unchecked */
	const uint8_t *older;               /* an earlier export this one must extend, or NULL */
	size_t older_len;
	int keep_going;                     /* run every check even after one failed */
};

/* The checks, in the order they run. */
enum logexport_check {
	LOGEXPORT_FORMAT,       /* layout, caps, no trailing bytes, checksum */
	LOGEXPORT_PIN,          /* identity equals what the auditor pinned */
	LOGEXPORT_IDENTITY,     /* identity decodes, identity_check passes */
	LOGEXPORT_RECORDS,      /* each decodes, seq == index, appliance id */
	LOGEXPORT_HEADS,        /* decode, appliance id, sizes/counters/times in order */
	LOGEXPORT_ROOTS,        /* each head's root is the tree of its first records */
	LOGEXPORT_SIGNATURES,   /* each head signed by the identity's signing key */
	LOGEXPORT_COMPLETE,     /* the last head covers every record */
	LOGEXPORT_OLDER,        /* the older export verifies and is a prefix of this one */
	LOGEXPORT_CONSISTENCY,  /* consistency proof between the two last heads */
	LOGEXPORT_N_CHECKS
};

#define LOGEXPORT_NOT_RUN (-1)
#define LOGEXPORT_FAIL    0
#define LOGEXPORT_PASS    1

struct logexport_result {
	int status;             /* LOGEXPORT_NOT_RUN, _FAIL or _PASS */
	int code;               /* SBX_E* of the first failure */
	uint64_t failures;      /* how many items failed (keep_going) */
	char why[200];          /* the first failure, or why it did not run */
};

struct logexport_report {
	struct logexport_result check[LOGEXPORT_N_CHECKS];
	uint8_t appliance_id[32];           /* as the identity claims it */
	int identity_checked;               /* identity_check ran: the next two mean something */
	int identity_rc;                    /* identity_check's return */
	struct identity_report identity;    /* its sub-results */
	uint64_t records, heads;
	uint64_t events[LOGEXPORT_EVENT_SLOTS];     /* indexed like logrec_events */
	uint64_t outcomes[LOGEXPORT_OUTCOME_SLOTS]; /* indexed like logrec_outcomes */
	uint64_t first_time_ms, last_time_ms;       /* of the first and last record */
	int have_last_head;
	struct sth last_head;
	uint64_t older_records, older_heads;
	int have_older_head;
	struct sth older_last_head;
	uint64_t consistency_m, consistency_n;
	size_t consistency_proof_len;
};

/* Verifies an export (see docs/LOG-EXPORT.md for the algorithm).  o may be
 * NULL.  Returns 0 only if every check that ran passed and none that must
 * run was skipped; else the first failure's code (SBX_EFORMAT for layout,
 * SBX_EVERIFY for content) with its one-line reason in e.  rep is filled
 * as far as verification got. */
int logexport_verify(const uint8_t *buf, size_t len, const struct logexport_opts *o,
                     struct logexport_report *rep, struct sbx_err *e);

/* "format", "pin", ... for reports. */
const char *logexport_check_name(enum logexport_check c);

/* Renderings of a report: plain text for people, JSON for tools. */
void logexport_report_print(FILE *f, const struct logexport_report *rep);
void logexport_report_json(FILE *f, const struct logexport_report *rep);
struct jsonw;
/* The report's members (docs/LOG-EXPORT.md section 3) into an object the
 * caller has open: one schema for every program that reports a log. */
void logexport_report_jsonw(struct jsonw *w, const struct logexport_report *rep);

#endif

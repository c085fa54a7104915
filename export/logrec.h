/* The custody record: its canonical byte encoding is what is hashed into the
 * log's Merkle tree.  The database is an index of these bytes, never the
 * source of truth.  Specified in docs/LOG-FORMAT.md. */
#ifndef SBX_LOGREC_H
#define SBX_LOGREC_H

#include <stddef.h>
#include <stdint.h>

#define LOGREC_VERSION      1
#define LOGREC_MAX_SHORT    128     /* event, outcome, operator, case, bundle */
#define LOGREC_MAX_REASON   1024
#define LOGREC_MAX_DETAIL   8192
#define LOGREC_MAX_ENCODED  (64 + 2 * 32 + 5 * (2 + LOGREC_MAX_SHORT) + \
                             2 + LOGREC_MAX_REASON + 2 + LOGREC_MAX_DETAIL)

struct logrec {
	uint64_t seq;               /* 0-based; equals the leaf index */
	uint64_t time_ms;           /* UTC wall clock, ms since the epoch */
	uint64_t tpm_clock_ms;      /* TPM clock at the event */
	uint32_t tpm_reset_count;
	uint32_t tpm_restart_count;
	uint8_t appliance_id[32];
	uint8_t policy_hash[32];
	char event[LOGREC_MAX_SHORT + 1];     /* e.g. "hold.open", see LOG-FORMAT.md */
	char outcome[LOGREC_MAX_SHORT + 1];   /* "ok", "denied", "failed", "timeout" */
	char operator_id[LOGREC_MAX_SHORT + 1];
	char case_id[LOGREC_MAX_SHORT + 1];   /* "" when none */
	char bundle_id[LOGREC_MAX_SHORT + 1]; /* "" when none */
	char reason[LOGREC_MAX_REASON + 1];
	char detail[LOGREC_MAX_DETAIL + 1];   /* event-specific "key=value" lines */
};

/* Encodes canonically; *out is malloc'd. */
int logrec_encode(const struct logrec *r, uint8_t **out, size_t *outlen);
/* Decodes exactly: unknown version, short or trailing bytes, bad UTF-8,
 * over-long fields or an unknown event/outcome are SBX_EFORMAT. */
int logrec_decode(const uint8_t *b, size_t len, struct logrec *r);
/* Leaf hash as in RFC 9162: SHA-256(0x00 || encoding). */
int logrec_leaf_hash(const uint8_t *b, size_t len, uint8_t out[static 32]);

/* The event and outcome vocabularies (NULL-terminated). */
extern const char *const logrec_events[];
extern const char *const logrec_outcomes[];
int logrec_event_known(const char *ev);

#endif

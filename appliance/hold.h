/* Case holds: the reason evidence may exist on the box at all. */
#ifndef SBX_HOLD_H
#define SBX_HOLD_H

#include <stdint.h>

#include "appliance/box.h"

#define HOLD_MAX_CASE 64
#define HOLD_MAX_REF  256
#define HOLD_DAY_MS   (24ull * 60 * 60 * 1000)

struct hold {
	char case_id[HOLD_MAX_CASE + 1];
	char authority[HOLD_MAX_REF + 1];
	char purpose[65];
	char operator_id[65];
	uint64_t opened_ms, expires_ms, renewed_ms, closed_ms;
	int closed;
};

/* "open", "expired" or "closed" at time now. */
const char *hold_status(const struct hold *h, uint64_t now);

/* SBX_ENOENT if there is no hold for the case. */
int hold_get(struct box *b, const char *case_id, struct hold *h, struct sbx_err *e);

/* 0 if the case has an open, unexpired hold; otherwise SBX_ENOENT or
 * SBX_EPOLICY with the reason. */
int hold_require_open(struct box *b, const char *case_id, uint64_t now, struct hold *h,
                      struct sbx_err *e);

/* The operations: each checks, logs a refusal with its reason, or changes
 * the hold and appends the custody record in one transaction. */
int hold_open(struct box *b, const char *case_id, const char *authority, const char *purpose,
              const char *operator_id, unsigned days, struct sbx_err *e);
int hold_renew(struct box *b, const char *case_id, const char *authority,
               const char *operator_id, unsigned days, struct sbx_err *e);
int hold_close(struct box *b, const char *case_id, const char *operator_id, struct sbx_err *e);

/* At start: appends the purge records a close that crashed after its
 * commit did not get to write (deleting the files first). */
int hold_recover_purges(struct box *b, struct sbx_err *e);

/* Calls fn for every hold, ordered by opening time. */
int hold_foreach(struct box *b, int (*fn)(void *, const struct hold *), void *arg,
                 struct sbx_err *e);

#endif

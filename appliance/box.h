/* The running box: its state directory, database, TPM, identity and the
 * policy in force.  Every appliance command opens one. */
#ifndef SBX_BOX_H
#define SBX_BOX_H

#include <stdint.h>
#include <sqlite3.h>

#include "appliance/policy.h"
#include "crypto/err.h"
#include "crypto/tpm.h"
#include "export/identity.h"

enum {
	BOX_TPM     = 1 << 0,   /* open the TPM (needed to append to the log) */
	BOX_WRITE   = 1 << 1,   /* take the exclusive lock; run start-up recovery */
};

struct box {
	char state_dir[4096];
	char db_path[4200];
	sqlite3 *db;
	struct tpm *tpm;        /* NULL unless BOX_TPM */
	int lock_fd;
	struct identity id;
	struct policy policy;   /* the policy in force */
	uint8_t *policy_text;
	size_t policy_len;
	/* Set by start-up checks when the log, its heads and the TPM counter
	 * disagree; the box then refuses every state change. */
	int alarm;
	char alarm_reason[256];
	/* The last custody_append's record: APPEND_* (appliance/custody.h). */
	int last_append;
};

/* `tcti` may be NULL when flags lack BOX_TPM. */
int box_open(const char *state_dir, const char *tcti, unsigned flags,
             struct box **out, struct sbx_err *e);
void box_close(struct box *b);

/* Stores ESYS's records of SIGN, DECRYPT and the counter in the database
 * (at provisioning); box_open loads them, so a run needs no ReadPublic. */
int box_save_tpm_objects(sqlite3 *db, struct tpm *t, struct sbx_err *e);

/* Wall clock in ms since the epoch (UTC). */
uint64_t box_now_ms(void);

/* Creates the state directory (0700) if needed and takes its lock. */
int box_state_prepare(const char *state_dir, int *lock_fd, struct sbx_err *e);

/* Loads the policy with the given hash from the database into b. */
int box_load_policy(struct box *b, struct sbx_err *e);

#endif

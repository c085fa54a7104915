#include "appliance/box.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "appliance/bundles.h"
#include "appliance/custody.h"
#include "appliance/db.h"
#include "appliance/hold.h"
#include "crypto/tpm.h"

uint64_t box_now_ms(void)
{
	struct timespec ts;

#ifndef SBX_RELEASE
	/* Tests of expiry and retention move the clock; a release build has
	 * no way to backdate the box. */
	const char *fake = getenv("SEALBOX_TEST_NOW_MS");

	if (fake != NULL && *fake != '\0')
		return strtoull(fake, NULL, 10);
#endif
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int box_state_prepare(const char *state_dir, int *lock_fd, struct sbx_err *e)
{
	char path[4200];
	struct stat sb;
	int fd;

	*lock_fd = -1;
	if (state_dir == NULL || *state_dir == '\0')
		return sbx_fail(e, SBX_EINVAL, "no state directory given (--state DIR or SEALBOX_STATE)");
	if (mkdir(state_dir, 0700) != 0 && errno != EEXIST)
		return sbx_fail(e, SBX_EIO, "cannot create state directory %s: %s",
		                state_dir, strerror(errno));
	if (stat(state_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return sbx_fail(e, SBX_EIO, "state directory %s is not a directory", state_dir);
	snprintf(path, sizeof path, "%s/lock", state_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return sbx_fail(e, SBX_EIO, "cannot open %s: %s", path, strerror(errno));
	/* One appliance process changes state at a time; a second waits. */
	if (flock(fd, LOCK_EX) != 0) {
		close(fd);
		return sbx_fail(e, SBX_EIO, "cannot lock %s: %s", path, strerror(errno));
	}
	*lock_fd = fd;
	return 0;
}

int box_load_policy(struct box *b, struct sbx_err *e)
{
	uint8_t *hash = NULL;
	size_t hlen = 0;
	sqlite3_stmt *st = NULL;
	int r;

	r = db_meta_get(b->db, "policy_hash", &hash, &hlen, e);
	if (r != 0 || hlen != 32) {
		r = sbx_fail(e, SBX_ESTATE, "database: no policy in force");
		goto out;
	}
	r = db_prepare(b->db, "SELECT body FROM policies WHERE hash = ?1", &st, e);
	if (r != 0)
		goto out;
	sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		r = sbx_fail(e, SBX_ESTATE, "database: the policy in force is missing");
		goto out;
	}
	free(b->policy_text);
	b->policy_len = (size_t)sqlite3_column_bytes(st, 0);
	b->policy_text = malloc(b->policy_len + 1);
	if (b->policy_text == NULL) {
		r = SBX_ENOMEM;
		goto out;
	}
	memcpy(b->policy_text, sqlite3_column_blob(st, 0), b->policy_len);
	b->policy_text[b->policy_len] = 0;
	r = policy_parse(b->policy_text, b->policy_len, &b->policy, e);
	if (r != 0)
		goto out;
	if (CRYPTO_memcmp(b->policy.hash, hash, 32) != 0)
		r = sbx_fail(e, SBX_EINTEGRITY, "database: stored policy does not match its hash");
out:
	sqlite3_finalize(st);
	free(hash);
	return r;
}

static int load_identity(struct box *b, struct sbx_err *e)
{
	uint8_t *v = NULL;
	size_t n = 0;
	int r = db_meta_get(b->db, "identity", &v, &n, e);

	if (r != 0) {
		r = sbx_fail(e, SBX_ESTATE, "database: no identity (provisioning incomplete)");
		goto out;
	}
	r = identity_decode(v, n, &b->id);
	if (r != 0)
		r = sbx_fail(e, SBX_EINTEGRITY, "database: stored identity is malformed");
out:
	free(v);
	return r;
}

/* An alarm is a custody event: recorded once per distinct reason (the box
 * refuses changes, not the record of why). */
static void log_alarm(struct box *b)
{
	uint8_t *prev = NULL;
	size_t n = 0;
	struct logrec *rec;

	if (db_meta_get(b->db, "alarm_logged", &prev, &n, NULL) == 0 &&
	    n == strlen(b->alarm_reason) && memcmp(prev, b->alarm_reason, n) == 0) {
		free(prev);
		return;
	}
	free(prev);
	rec = calloc(1, sizeof *rec);
	if (rec == NULL)
		return;
	snprintf(rec->event, sizeof rec->event, "integrity.alarm");
	snprintf(rec->outcome, sizeof rec->outcome, "failed");
	snprintf(rec->operator_id, sizeof rec->operator_id, "box");
	snprintf(rec->reason, sizeof rec->reason, "%s", b->alarm_reason);
	if (custody_append(b, rec, 0, NULL, NULL, NULL) == 0)
		db_meta_set(b->db, "alarm_logged", b->alarm_reason, strlen(b->alarm_reason), NULL);
	free(rec);
}

/* Where the database keeps ESYS's record of each TPM object. */
static const struct { enum tpm_obj obj; const char *key; } tpm_objects[] = {
	{ TPM_OBJ_SIGN, "tpm_object_sign" },
	{ TPM_OBJ_DECRYPT, "tpm_object_decrypt" },
	{ TPM_OBJ_COUNTER, "tpm_object_counter" },
};
#define N_TPM_OBJECTS (sizeof tpm_objects / sizeof tpm_objects[0])

int box_save_tpm_objects(sqlite3 *db, struct tpm *t, struct sbx_err *e)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < N_TPM_OBJECTS; i++) {
		uint8_t *rec = NULL;
		size_t len = 0;

		r = tpm_object_save(t, tpm_objects[i].obj, &rec, &len, e);
		if (r == 0)
			r = db_meta_set(db, tpm_objects[i].key, rec, len, e);
		free(rec);
	}
	return r;
}

/* The records saved at provisioning: without them each run would ask the
 * TPM for every object's public area.  A box provisioned before they
 * existed has none and still works (the TPM layer then reads the public
 * areas). */
static int load_tpm_objects(struct box *b, struct sbx_err *e)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < N_TPM_OBJECTS; i++) {
		uint8_t *rec = NULL;
		size_t len = 0;

		r = db_meta_get(b->db, tpm_objects[i].key, &rec, &len, e);
		if (r == SBX_ENOENT) {
			r = 0;
			continue;
		}
		if (r == 0)
			r = tpm_object_load(b->tpm, tpm_objects[i].obj, rec, len, e);
		free(rec);
	}
	return r;
}

int box_open(const char *state_dir, const char *tcti, unsigned flags,
             struct box **out, struct sbx_err *e)
{
	struct box *b = NULL;
	int r = SBX_ENOMEM;

	*out = NULL;
	b = calloc(1, sizeof *b);
	if (b == NULL)
		goto out;
	b->lock_fd = -1;
	if (state_dir == NULL || *state_dir == '\0') {
		r = sbx_fail(e, SBX_EINVAL, "no state directory given (--state DIR or SEALBOX_STATE)");
		goto out;
	}
	snprintf(b->state_dir, sizeof b->state_dir, "%s", state_dir);
	snprintf(b->db_path, sizeof b->db_path, "%s/sealbox.db", state_dir);
	if (flags & BOX_WRITE) {
		struct stat sb;

		/* Do not create a state directory just to find nothing in it. */
		if (stat(state_dir, &sb) != 0) {
			r = sbx_fail(e, SBX_ESTATE, "state directory %s does not exist: "
			             "the box is not provisioned (run 'sealbox init')", state_dir);
			goto out;
		}
		r = box_state_prepare(state_dir, &b->lock_fd, e);
		if (r != 0)
			goto out;
	}
	r = db_open(b->db_path, 0, &b->db, e);
	if (r != 0)
		goto out;
	r = load_identity(b, e);
	if (r != 0)
		goto out;
	r = box_load_policy(b, e);
	if (r != 0)
		goto out;
	if (flags & BOX_TPM) {
		r = tpm_open(tcti, &b->tpm, e);
		if (r != 0)
			goto out;
		r = load_tpm_objects(b, e);
		if (r != 0)
			goto out;
	}
	if ((flags & BOX_WRITE) && (flags & BOX_TPM)) {
		r = custody_recover(b, e);
		if (r != 0)
			goto out;
		r = bundles_recover(b, e);
		if (r != 0)
			goto out;
		if (!b->alarm) {
			r = hold_recover_purges(b, e);
			if (r != 0)
				goto out;
		}
		if (b->alarm)
			log_alarm(b);
	}
	*out = b;
	b = NULL;   /* transferred */
	r = 0;
out:
	box_close(b);
	return r;
}

void box_close(struct box *b)
{
	if (b == NULL)
		return;
	if (b->tpm != NULL)
		tpm_close(b->tpm);
	if (b->db != NULL)
		db_close(b->db);
	if (b->lock_fd >= 0)
		close(b->lock_fd);
	free(b->policy_text);
	OPENSSL_cleanse(b, sizeof *b);
	free(b);
}

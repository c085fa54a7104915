/* sealbox init: provision a box.  sealbox identity: its public identity. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "appliance/box.h"
#include "appliance/cli.h"
#include "appliance/cmds.h"
#include "appliance/lights.h"
#include "appliance/custody.h"
#include "appliance/db.h"
#include "appliance/policyfile.h"
#include "crypto/hash.h"
#include "crypto/tpm.h"
#include "crypto/tpm_ident.h"
#include "export/atomic.h"
#include "export/identity.h"
#include "export/jsonw.h"

/* Writes a fresh database next to the final path, then renames it into
 * place once complete, so a failed init leaves no half-made database. */
static int create_db(const char *state, const struct identity *id, const uint8_t *idbytes,
                     size_t idlen, const struct policy *pol, const uint8_t *ptext, size_t plen,
                     uint64_t counter_base, struct tpm *t, struct sbx_err *e)
{
	char tmp[4200], tmpj[4300], final[4200];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int r;

	snprintf(tmp, sizeof tmp, "%s/sealbox.db.init", state);
	snprintf(final, sizeof final, "%s/sealbox.db", state);
	snprintf(tmpj, sizeof tmpj, "%s-journal", tmp);
	unlink(tmp);   /* leftovers from an init that crashed */
	unlink(tmpj);
	r = db_open(tmp, 1, &db, e);
	if (r != 0)
		goto out;
	r = db_create_schema(db, e);
	if (r != 0)
		goto out;
	r = db_begin(db, e);
	if (r == 0)
		r = db_meta_set(db, "identity", idbytes, idlen, e);
	if (r == 0)
		r = db_meta_set(db, "appliance_id", id->appliance_id, 32, e);
	if (r == 0)
		r = db_meta_set_u64(db, "counter_base", counter_base, e);
	if (r == 0)
		r = db_meta_set(db, "policy_hash", pol->hash, 32, e);
	/* ESYS's records of the objects (box_open loads them). */
	if (r == 0)
		r = box_save_tpm_objects(db, t, e);
	if (r == 0)
		r = db_prepare(db, "INSERT INTO policies(hash, body, installed_seq) VALUES (?1, ?2, 0)",
		               &st, e);
	if (r == 0) {
		sqlite3_bind_blob(st, 1, pol->hash, 32, SQLITE_STATIC);
		sqlite3_bind_blob(st, 2, ptext, (int)plen, SQLITE_STATIC);
		r = db_step_done(db, st, e);
	}
	if (r == 0)
		r = db_commit(db, e);
	if (r != 0)
		goto out;
	sqlite3_finalize(st);
	st = NULL;
	db_close(db);
	db = NULL;
	/* The journal (kept by journal_mode=TRUNCATE) belongs to the temporary
	 * name; the first open of the final database makes its own. */
	unlink(tmpj);
	if (rename(tmp, final) != 0) {
		r = sbx_fail(e, SBX_EIO, "cannot rename %s: %s", tmp, strerror(errno));
		goto out;
	}
	r = atomic_fsync_dir(state, e);
	/* Opening it once creates its journal (db_open), so that no later
	 * command, not even a refused one, adds a file to the state directory. */
	if (r == 0)
		r = db_open(final, 0, &db, e);
out:
	sqlite3_finalize(st);
	if (db != NULL)
		db_close(db);
	if (r != 0) {
		unlink(tmp);
		unlink(tmpj);
	}
	return r;
}

static int init_usage(FILE *f)
{
	fprintf(f, "usage: sealbox init --operator ID [--policy FILE] [--state DIR] --tcti TCTI [--json]\n"
	           "Provisions this box on its TPM: signing, decrypt and attestation keys, the\n"
	           "certification of the signing key, the custody-log counter, the database and\n"
	           "the policy (the built-in Denver/Colorado default unless --policy is given).\n"
	           "Refuses an already provisioned state directory or TPM.\n");
	return f == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

int cmd_init(int argc, char **argv, struct cli *g)
{
	static const struct option opts[] = {
		{ "operator", required_argument, NULL, 'o' },
		{ "policy",   required_argument, NULL, 'p' },
		{ "state",    required_argument, NULL, CLI_OPT_STATE },
		{ "tcti",     required_argument, NULL, CLI_OPT_TCTI },
		{ "json",     no_argument,       NULL, CLI_OPT_JSON },
		{ "help",     no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *operator_id = NULL, *policy_path = NULL;
	struct sbx_err e = { 0 };
	struct tpm *t = NULL;
	struct tpm_identity *tid = NULL;
	struct identity *id = NULL;
	struct policy *pol = NULL;
	struct box *b = NULL;
	struct logrec *rec = NULL;
	uint8_t nonce[32], *idbytes = NULL, *ptext = NULL;
	size_t idlen = 0, plen = 0;
	uint64_t counter_base = 0;
	int lock_fd = -1, c, r, tpm_done = 0, db_done = 0;
	char dbpath[4200], hex[65];
	struct stat sb;

	g->prog = "sealbox init";
	optind = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (cli_common_opt(g, c, optarg))
			continue;
		switch (c) {
		case 'o': operator_id = optarg; break;
		case 'p': policy_path = optarg; break;
		case 'h': return init_usage(stdout);
		default:  return cli_opt_error(g, c, argv);
		}
	}
	if (optind != argc)
		return cli_usage(g, "unexpected argument '%s'", argv[optind]);
	cli_env_defaults(g);
	if (g->tcti == NULL || *g->tcti == '\0')
		return cli_usage(g, "no TPM given: pass --tcti (production: device:/dev/tpmrm0) "
		                    "or set SEALBOX_TCTI");
	/* The provision record names who provisioned: a person, not a default. */
	if (operator_id == NULL)
		return cli_usage(g, "missing --operator ID (who provisions the box)");
	if (!cli_valid_operator(operator_id))
		return cli_usage(g, "invalid operator id '%s'", operator_id);

	tid = calloc(1, sizeof *tid);
	id = calloc(1, sizeof *id);
	pol = calloc(1, sizeof *pol);
	rec = calloc(1, sizeof *rec);
	if (tid == NULL || id == NULL || pol == NULL || rec == NULL) {
		r = SBX_ENOMEM;
		goto out;
	}
	/* Read and check everything from outside before touching the TPM. */
	r = policyfile_load(policy_path, &ptext, &plen, pol, &e);
	if (r != 0)
		goto out;
	snprintf(dbpath, sizeof dbpath, "%s/sealbox.db", g->state);
	if (stat(dbpath, &sb) == 0) {
		r = sbx_fail(&e, SBX_EEXIST, "%s is already provisioned (%s exists)", g->state, dbpath);
		goto out;
	}
	r = box_state_prepare(g->state, &lock_fd, &e);
	if (r != 0)
		goto out;
	if (stat(dbpath, &sb) == 0) {   /* provisioned while we waited for the lock */
		r = sbx_fail(&e, SBX_EEXIST, "%s is already provisioned (%s exists)", g->state, dbpath);
		goto out;
	}
	r = tpm_open(g->tcti, &t, &e);
	if (r != 0)
		goto out;
	if (RAND_bytes(nonce, sizeof nonce) != 1) {
		r = sbx_fail_ssl(&e, SBX_ECRYPTO, "cannot draw the certification nonce");
		goto out;
	}
	r = tpm_provision(t, nonce, tid, &e);
	if (r != 0)
		goto out;
	tpm_done = 1;
	/* A new NV counter cannot be read until written once; this first
	 * increment also fixes the value the log starts from. */
	r = tpm_counter_increment(t, &counter_base, &e);
	if (r != 0)
		goto out;
	r = tpm_identity_export(tid, id);
	if (r == 0)
		r = identity_encode(id, &idbytes, &idlen);
	if (r != 0) {
		r = sbx_fail(&e, r, "cannot encode the identity read from the TPM");
		goto out;
	}
	r = create_db(g->state, id, idbytes, idlen, pol, ptext, plen, counter_base, t, &e);
	if (r != 0)
		goto out;
	db_done = 1;
	tpm_close(t);
	t = NULL;
	close(lock_fd);
	lock_fd = -1;

	r = box_open(g->state, g->tcti, BOX_TPM | BOX_WRITE, &b, &e);
	if (r != 0)
		goto out;
	hash_hex(id->appliance_id, 32, hex);
	snprintf(rec->event, sizeof rec->event, "provision");
	snprintf(rec->outcome, sizeof rec->outcome, "ok");
	snprintf(rec->operator_id, sizeof rec->operator_id, "%s", operator_id);
	snprintf(rec->detail, sizeof rec->detail,
	         "appliance_id=%s\ncounter_base=%" PRIu64 "\nek_certificates=%zu\npolicy=%s",
	         hex, counter_base, id->n_ekcerts, pol->name);
	r = custody_append(b, rec, 1, NULL, NULL, &e);
	if (r != 0)
		goto out;
	if (g->json) {
		struct jsonw w;

		jsonw_init(&w, stdout);
		jsonw_obj_open(&w, NULL);
		jsonw_str(&w, "appliance_id", hex);
		jsonw_str(&w, "state", g->state);
		jsonw_u64(&w, "ek_certificates", id->n_ekcerts);
		jsonw_hex(&w, "policy_hash", pol->hash, 32);
		jsonw_obj_close(&w);
	} else {
		printf("provisioned %s\nappliance id: %s\n", g->state, hex);
		printf("EK certificates: %zu; policy: %s\n", id->n_ekcerts, pol->name);
		printf("Pin this appliance id; 'sealbox identity --out FILE' exports the public identity.\n");
	}
	/* Provisioned: the box is ready (under the lock still). */
	lights_show_spec(g->gpio, LIGHTS_READY);
	r = 0;
out:
	if (r != 0 && db_done) {
		/* The provision record could not be written: leave no database. */
		box_close(b);
		b = NULL;
		unlink(dbpath);
	}
	if (r != 0 && tpm_done) {
		/* Leave the TPM as it was: no orphan persistent keys.  (The NV
		 * counter stays: counters cannot be rewound, only moved on.) */
		if (t == NULL && tpm_open(g->tcti, &t, NULL) != 0)
			t = NULL;
		if (t != NULL)
			tpm_deprovision(t, NULL);
	}
	box_close(b);
	if (t != NULL)
		tpm_close(t);
	if (lock_fd >= 0)
		close(lock_fd);
	free(idbytes);
	free(ptext);
	free(tid);
	free(id);
	free(pol);
	free(rec);
	OPENSSL_cleanse(nonce, sizeof nonce);
	return r == 0 ? CLI_EXIT_OK : cli_fail(g, &e, r);
}

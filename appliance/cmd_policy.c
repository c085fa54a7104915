/* sealbox policy show|set */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/box.h"
#include "appliance/cli.h"
#include "appliance/cmds.h"
#include "appliance/custody.h"
#include "appliance/db.h"
#include "appliance/policyfile.h"
#include "crypto/hash.h"
#include "export/jsonw.h"

static int usage(FILE *f)
{
	fprintf(f, "usage: sealbox policy show [--json]\n"
	           "       sealbox policy set FILE --operator ID\n"
	           "'show' prints the policy in force and its SHA-256 (bound into every custody\n"
	           "record).  'set' checks FILE strictly and puts it in force; the change is a\n"
	           "custody event.  Format: docs/POLICY.md.\n");
	return f == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

static void show_json(const struct policy *p)
{
	struct jsonw w;

	jsonw_init(&w, stdout);
	jsonw_obj_open(&w, NULL);
	jsonw_hex(&w, "hash", p->hash, 32);
	jsonw_u64(&w, "version", p->version);
	jsonw_str(&w, "name", p->name);
	jsonw_u64(&w, "retention_days", p->retention_days);
	jsonw_u64(&w, "hold_max_days", p->hold_max_days);
	jsonw_arr_open(&w, "roles");
	for (size_t i = 0; i < p->n_roles; i++)
		jsonw_str(&w, NULL, p->roles[i]);
	jsonw_arr_close(&w);
	jsonw_arr_open(&w, "purposes");
	for (size_t i = 0; i < p->n_purposes; i++) {
		jsonw_obj_open(&w, NULL);
		jsonw_str(&w, "code", p->purposes[i].code);
		jsonw_arr_open(&w, "roles");
		for (size_t k = 0; k < p->n_roles; k++)
			if (p->purposes[i].roles_mask & (1u << k))
				jsonw_str(&w, NULL, p->roles[k]);
		jsonw_arr_close(&w);
		jsonw_obj_close(&w);
	}
	jsonw_arr_close(&w);
	jsonw_arr_open(&w, "always_denied");
	for (size_t i = 0; policy_forbidden[i] != NULL; i++)
		jsonw_str(&w, NULL, policy_forbidden[i]);
	jsonw_arr_close(&w);
	jsonw_obj_close(&w);
}

struct set_ctx {
	const struct policy *p;
	const uint8_t *text;
	size_t len;
};

static int apply_set(struct box *b, void *arg, struct sbx_err *e)
{
	struct set_ctx *c = arg;
	sqlite3_stmt *st = NULL;
	int r;

	r = db_prepare(b->db, "INSERT INTO policies(hash, body, installed_seq) "
	                      "VALUES (?1, ?2, (SELECT count(*) FROM records)) "
	                      "ON CONFLICT(hash) DO NOTHING", &st, e);
	if (r != 0)
		return r;
	sqlite3_bind_blob(st, 1, c->p->hash, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, c->text, (int)c->len, SQLITE_STATIC);
	r = db_step_done(b->db, st, e);
	sqlite3_finalize(st);
	if (r == 0)
		r = db_meta_set(b->db, "policy_hash", c->p->hash, 32, e);
	return r;
}

static int policy_set(struct box *b, const char *path, const char *operator_id,
                      struct sbx_err *e)
{
	struct policy *np = calloc(1, sizeof *np), *old = malloc(sizeof *old);
	struct logrec *rec = calloc(1, sizeof *rec);
	uint8_t *text = NULL;
	size_t len = 0;
	char oh[65], nh[65];
	struct set_ctx c;
	int r;

	if (np == NULL || old == NULL || rec == NULL) {
		r = SBX_ENOMEM;
		goto out;
	}
	r = policyfile_load(path, &text, &len, np, e);
	if (r != 0) {
		/* A refused policy change is a custody event too. */
		int lr = custody_deny(b, "policy.set", operator_id, NULL, e->msg, NULL);

		r = lr != 0 ? lr : r;
		goto out;
	}
	hash_hex(b->policy.hash, 32, oh);
	hash_hex(np->hash, 32, nh);
	if (memcmp(np->hash, b->policy.hash, 32) == 0) {
		r = sbx_fail(e, SBX_EEXIST, "that policy (%s) is already in force", nh);
		goto out;
	}
	snprintf(rec->event, sizeof rec->event, "policy.set");
	snprintf(rec->outcome, sizeof rec->outcome, "ok");
	snprintf(rec->operator_id, sizeof rec->operator_id, "%s", operator_id);
	snprintf(rec->detail, sizeof rec->detail, "previous=%s\nnew=%s\nname=%s", oh, nh, np->name);
	c.p = np;
	c.text = text;
	c.len = len;
	/* The record of the change is the first bound to the new policy. */
	memcpy(old, &b->policy, sizeof *old);
	memcpy(&b->policy, np, sizeof *np);
	r = custody_append(b, rec, 1, apply_set, &c, e);
	if (r != 0)
		memcpy(&b->policy, old, sizeof *old);
out:
	free(text);
	free(np);
	free(old);
	free(rec);
	return r;
}

int cmd_policy(int argc, char **argv, struct cli *g)
{
	static const struct option opts[] = {
		{ "operator", required_argument, NULL, 'o' },
		{ "state",    required_argument, NULL, CLI_OPT_STATE },
		{ "tcti",     required_argument, NULL, CLI_OPT_TCTI },
		{ "json",     no_argument,       NULL, CLI_OPT_JSON },
		{ "help",     no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *verb, *operator_id = NULL, *path = NULL;
	struct sbx_err e = { 0 };
	struct box *b = NULL;
	int c, r;
	static char prog[64];

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return usage(argc < 2 ? stderr : stdout);
	verb = argv[1];
	snprintf(prog, sizeof prog, "sealbox policy %s", verb);
	g->prog = prog;
	if (strcmp(verb, "show") != 0 && strcmp(verb, "set") != 0)
		return cli_unknown_verb("policy", verb);
	optind = 0;
	while ((c = getopt_long(argc - 1, argv + 1, ":h", opts, NULL)) != -1) {
		if (cli_common_opt(g, c, optarg))
			continue;
		switch (c) {
		case 'o': operator_id = optarg; break;
		case 'h': return usage(stdout);
		default:  return cli_opt_error(g, c, argv + 1);
		}
	}
	if (!strcmp(verb, "set")) {
		if (optind >= argc - 1)
			return cli_usage(g, "missing FILE");
		path = argv[1 + optind++];
		if (operator_id == NULL)
			return cli_usage(g, "missing --operator ID");
		if (!cli_valid_operator(operator_id))
			return cli_usage(g, "invalid operator id '%s'", operator_id);
	} else if (operator_id != NULL) {
		return cli_usage(g, "show takes no --operator");
	}
	if (optind != argc - 1)
		return cli_usage(g, "unexpected argument '%s'", argv[1 + optind]);
	cli_env_defaults(g);
	if (path != NULL && (g->tcti == NULL || *g->tcti == '\0'))
		return cli_usage(g, "no TPM given: pass --tcti or set SEALBOX_TCTI");

	r = box_open(g->state, g->tcti, path ? (BOX_TPM | BOX_WRITE) : 0, &b, &e);
	if (r != 0)
		goto out;
	if (path != NULL) {
		r = policy_set(b, path, operator_id, &e);
		if (r == 0 && !g->json) {
			char h[65];

			hash_hex(b->policy.hash, 32, h);
			printf("policy '%s' in force, sha256 %s\n", b->policy.name, h);
		} else if (r == 0) {
			show_json(&b->policy);
		}
	} else if (g->json) {
		show_json(&b->policy);
	} else {
		char h[65];

		hash_hex(b->policy.hash, 32, h);
		printf("# sha256 %s\n", h);
		fwrite(b->policy_text, 1, b->policy_len, stdout);
	}
out:
	box_close(b);
	return r == 0 ? CLI_EXIT_OK : cli_fail(g, &e, r);
}

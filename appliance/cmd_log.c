/* sealbox log show|verify|export|checkpoint */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/box.h"
#include "appliance/cli.h"
#include "appliance/cmds.h"
#include "appliance/custody.h"
#include "crypto/hash.h"
#include "export/jsonw.h"
#include "export/logexport.h"

static int usage(FILE *f)
{
	fprintf(f, "usage: sealbox log show [--case CASE] [--json]\n"
	           "       sealbox log verify [--json]\n"
	           "       sealbox log export FILE --operator ID [--json]\n"
	           "       sealbox log checkpoint --operator ID [--json]\n"
	           "'verify' recomputes everything from the canonical record bytes: encodings,\n"
	           "sequence, Merkle tree, every signed tree head, the TPM signing key and the\n"
	           "TPM counter.  'export' writes one self-contained file an auditor verifies\n"
	           "offline (sealbox-verify --log FILE).  'checkpoint' anchors the log to the TPM\n"
	           "counter now.  Format: docs/LOG-FORMAT.md.\n");
	return f == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

struct show_ctx {
	struct jsonw w;
	int json;
	const char *case_filter;
	unsigned n;
};

static void detail_json(struct jsonw *w, const char *detail)
{
	const char *p = detail;

	jsonw_obj_open(w, "detail");
	while (*p) {
		const char *nl = strchr(p, '\n'), *eq;
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		char key[128];

		eq = memchr(p, '=', n);
		if (eq != NULL && (size_t)(eq - p) < sizeof key) {
			memcpy(key, p, (size_t)(eq - p));
			key[eq - p] = '\0';
			jsonw_strn(w, key, eq + 1, n - (size_t)(eq - p) - 1);
		}
		p += n;
		if (*p == '\n')
			p++;
	}
	jsonw_obj_close(w);
}

static int show_one(void *arg, const struct logrec *r, const uint8_t leaf[32])
{
	struct show_ctx *c = arg;
	char t[32];

	if (c->case_filter != NULL && strcmp(c->case_filter, r->case_id) != 0)
		return 0;
	c->n++;
	cli_fmt_time(r->time_ms, t);
	if (c->json) {
		jsonw_obj_open(&c->w, NULL);
		jsonw_u64(&c->w, "seq", r->seq);
		jsonw_str(&c->w, "time", t);
		jsonw_u64(&c->w, "time_ms", r->time_ms);
		jsonw_u64(&c->w, "tpm_clock_ms", r->tpm_clock_ms);
		jsonw_u64(&c->w, "tpm_reset_count", r->tpm_reset_count);
		jsonw_u64(&c->w, "tpm_restart_count", r->tpm_restart_count);
		jsonw_str(&c->w, "event", r->event);
		jsonw_str(&c->w, "outcome", r->outcome);
		jsonw_str(&c->w, "operator", r->operator_id);
		jsonw_str(&c->w, "case", r->case_id);
		jsonw_str(&c->w, "bundle", r->bundle_id);
		jsonw_str(&c->w, "reason", r->reason);
		detail_json(&c->w, r->detail);
		jsonw_hex(&c->w, "appliance_id", r->appliance_id, 32);
		jsonw_hex(&c->w, "policy_hash", r->policy_hash, 32);
		jsonw_hex(&c->w, "leaf_hash", leaf, 32);
		jsonw_obj_close(&c->w);
		return 0;
	}
	/* The bundle's first 12 hex digits tell the rows of one close or one
	 * release apart; 'bundle show' takes the whole id (--json has it). */
	if (c->n == 1)
		printf("%-6s %-24s %-16s %-8s %-16s %-20s %-12s %s\n", "SEQ", "TIME (UTC)", "EVENT",
		       "OUTCOME", "OPERATOR", "CASE", "BUNDLE", "REASON");
	printf("%-6" PRIu64 " %-24s %-16s %-8s %-16s %-20s %-12.12s %s\n", r->seq, t, r->event,
	       r->outcome, r->operator_id, r->case_id[0] ? r->case_id : "-",
	       r->bundle_id[0] ? r->bundle_id : "-", r->reason);
	return 0;
}

static void verify_print(const struct cli *g, const struct custody_report *rep,
                         const struct logexport_report *x, int ok)
{
	if (g->json) {
		struct jsonw w;

		jsonw_init(&w, stdout);
		jsonw_obj_open(&w, NULL);
		jsonw_bool(&w, "valid", ok);
		jsonw_u64(&w, "records", rep->records);
		jsonw_u64(&w, "heads", rep->heads);
		jsonw_hex(&w, "appliance_id", x->appliance_id, 32);
		if (x->have_last_head) {
			jsonw_u64(&w, "tree_size", x->last_head.tree_size);
			jsonw_hex(&w, "root", x->last_head.root, 32);
		}
		jsonw_u64(&w, "counter_tpm", rep->counter_tpm);
		jsonw_u64(&w, "counter_log", rep->counter_log);
		jsonw_obj_open(&w, "checks");
		for (int c = 0; c < LOGEXPORT_N_CHECKS; c++) {
			int s = x->check[c].status;

			jsonw_str(&w, logexport_check_name((enum logexport_check)c),
			          s == LOGEXPORT_PASS ? "pass" : s == LOGEXPORT_FAIL ? "fail" : "not-run");
		}
		jsonw_bool(&w, "tpm_signing_key", rep->tpm_key_ok);
		jsonw_bool(&w, "tpm_counter", rep->counter_ok);
		jsonw_bool(&w, "database_index", rep->index_ok);
		jsonw_obj_close(&w);
		jsonw_arr_open(&w, "problems");
		for (unsigned i = 0; i < rep->problems && i < 8; i++)
			jsonw_str(&w, NULL, rep->problem[i]);
		jsonw_arr_close(&w);
		jsonw_u64(&w, "problem_count", rep->problems);
		jsonw_obj_close(&w);
		return;
	}
	printf("custody log: %" PRIu64 " records, %" PRIu64 " signed tree heads\n",
	       rep->records, rep->heads);
	if (x->have_last_head) {
		char h[65];

		hash_hex(x->last_head.root, 32, h);
		printf("tree size %" PRIu64 ", root %s\n", x->last_head.tree_size, h);
	}
	for (int c = 0; c < LOGEXPORT_N_CHECKS; c++) {
		int s = x->check[c].status;

		if (s == LOGEXPORT_NOT_RUN)
			continue;
		printf("  %-12s %s\n", logexport_check_name((enum logexport_check)c),
		       s == LOGEXPORT_PASS ? "ok" : "FAILED");
	}
	printf("  %-12s %s\n", "tpm-key", rep->tpm_key_ok ? "ok" : "FAILED");
	printf("  %-12s %s (TPM %" PRIu64 ", log %" PRIu64 ")\n", "tpm-counter",
	       rep->counter_ok ? "ok" : "FAILED", rep->counter_tpm, rep->counter_log);
	printf("  %-12s %s\n", "db-index", rep->index_ok ? "ok" : "FAILED");
	for (unsigned i = 0; i < rep->problems && i < 8; i++)
		printf("problem: %s\n", rep->problem[i]);
	if (rep->problems > 8)
		printf("... and %u more problems\n", rep->problems - 8);
	printf("%s\n", ok ? "custody log VALID" : "custody log INVALID");
}

int cmd_log(int argc, char **argv, struct cli *g)
{
	static const struct option opts[] = {
		{ "operator", required_argument, NULL, 'o' },
		{ "case",     required_argument, NULL, 'c' },
		{ "state",    required_argument, NULL, CLI_OPT_STATE },
		{ "tcti",     required_argument, NULL, CLI_OPT_TCTI },
		{ "json",     no_argument,       NULL, CLI_OPT_JSON },
		{ "help",     no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *verb, *operator_id = NULL, *case_filter = NULL, *path = NULL;
	struct sbx_err e = { 0 };
	struct box *b = NULL;
	unsigned flags = 0;
	int c, r;
	static char prog[64];

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return usage(argc < 2 ? stderr : stdout);
	verb = argv[1];
	snprintf(prog, sizeof prog, "sealbox log %s", verb);
	g->prog = prog;
	if (strcmp(verb, "show") != 0 && strcmp(verb, "verify") != 0 && strcmp(verb, "export") != 0 &&
	    strcmp(verb, "checkpoint") != 0)
		return cli_unknown_verb("log", verb);
	optind = 0;
	while ((c = getopt_long(argc - 1, argv + 1, ":h", opts, NULL)) != -1) {
		if (cli_common_opt(g, c, optarg))
			continue;
		switch (c) {
		case 'o': operator_id = optarg; break;
		case 'c': case_filter = optarg; break;
		case 'h': return usage(stdout);
		default:  return cli_opt_error(g, c, argv + 1);
		}
	}
	if (!strcmp(verb, "export")) {
		if (optind >= argc - 1)
			return cli_usage(g, "missing FILE");
		path = argv[1 + optind++];
	}
	if (optind != argc - 1)
		return cli_usage(g, "unexpected argument '%s'", argv[1 + optind]);
	/* Both are recorded in the custody log under the operator given: a
	 * person, never a default. */
	if ((!strcmp(verb, "checkpoint") || !strcmp(verb, "export")) && operator_id == NULL)
		return cli_usage(g, "missing --operator ID");
	if (operator_id != NULL && !cli_valid_operator(operator_id))
		return cli_usage(g, "invalid operator id '%s'", operator_id);
	if (case_filter != NULL && strcmp(verb, "show") != 0)
		return cli_usage(g, "--case goes with 'show'");
	cli_env_defaults(g);
	if (strcmp(verb, "show") != 0) {
		if (g->tcti == NULL || *g->tcti == '\0')
			return cli_usage(g, "no TPM given: pass --tcti or set SEALBOX_TCTI");
		flags = BOX_TPM;
		/* verify only reads; it must not roll anything forward first, or
		 * it would repair what it is asked to judge. */
		if (strcmp(verb, "verify") != 0)
			flags |= BOX_WRITE;
	}
	r = box_open(g->state, g->tcti, flags, &b, &e);
	if (r != 0)
		goto out;
	if (!strcmp(verb, "show")) {
		struct show_ctx sc = { .json = g->json, .case_filter = case_filter };

		jsonw_init(&sc.w, stdout);
		if (g->json)
			jsonw_arr_open(&sc.w, NULL);
		r = custody_foreach(b, show_one, &sc, &e);
		if (g->json)
			jsonw_arr_close(&sc.w);
	} else if (!strcmp(verb, "verify")) {
		struct custody_report rep;
		struct logexport_report *x = malloc(sizeof *x);

		if (x == NULL) {
			r = SBX_ENOMEM;
			goto out;
		}
		r = custody_verify_full(b, &rep, x, &e);
		verify_print(g, &rep, x, r == 0);
		free(x);
		if (r == SBX_EVERIFY)
			sbx_fail(&e, r, "custody log INVALID: %s", rep.problem[0]);
	} else if (!strcmp(verb, "export")) {
		struct custody_export_info xi;

		r = custody_export(b, path, operator_id, &xi, &e);
		if (r == 0 && g->json) {
			struct jsonw w;

			jsonw_init(&w, stdout);
			jsonw_obj_open(&w, NULL);
			jsonw_text(&w, "path", path);
			jsonw_u64(&w, "bytes", xi.bytes);
			jsonw_hex(&w, "sha256", xi.sha256, 32);
			jsonw_u64(&w, "records", xi.records);
			jsonw_u64(&w, "heads", xi.heads);
			jsonw_u64(&w, "export_record_seq", xi.seq);
			jsonw_obj_close(&w);
			fputc('\n', stdout);
		} else if (r == 0) {
			char hex[65];

			hash_hex(xi.sha256, 32, hex);
			printf("exported the custody log to %s (%" PRIu64 " records, SHA-256 %s)\n", path,
			       xi.records, hex);
		}
	} else {
		struct logrec *rec = calloc(1, sizeof *rec);

		if (rec == NULL) {
			r = SBX_ENOMEM;
			goto out;
		}
		snprintf(rec->event, sizeof rec->event, "log.checkpoint");
		snprintf(rec->outcome, sizeof rec->outcome, "ok");
		snprintf(rec->operator_id, sizeof rec->operator_id, "%s", operator_id);
		r = custody_append(b, rec, 1, NULL, NULL, &e);
		if (r == 0 && g->json) {
			struct jsonw w;

			jsonw_init(&w, stdout);
			jsonw_obj_open(&w, NULL);
			jsonw_u64(&w, "tree_size", rec->seq + 1);
			jsonw_u64(&w, "record_seq", rec->seq);
			jsonw_obj_close(&w);
			fputc('\n', stdout);
		} else if (r == 0) {
			printf("checkpoint: log anchored at tree size %" PRIu64 "\n", rec->seq + 1);
		}
		free(rec);
	}
out:
	box_close(b);
	return r == 0 ? CLI_EXIT_OK : cli_fail(g, &e, r);
}

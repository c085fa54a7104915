/* sealbox hold open|renew|close|list|show */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/box.h"
#include "appliance/bundles.h"
#include "appliance/cli.h"
#include "appliance/cmds.h"
#include "appliance/hold.h"
#include "export/jsonw.h"

static int usage(FILE *f)
{
	fprintf(f,
	  "usage: sealbox hold open CASE --authority REF --purpose CODE --operator ID [--days N]\n"
	  "       sealbox hold renew CASE --authority REF --operator ID [--days N]\n"
	  "       sealbox hold close CASE --operator ID\n"
	  "       sealbox hold list [--json]\n"
	  "       sealbox hold show CASE [--json]\n"
	  "A hold is the legal reason evidence for a case may be on the box.  Holds expire\n"
	  "after --days (default and maximum: the policy's hold_max_days) unless renewed.\n"
	  "Closing a hold purges the case's evidence.  Every refusal is logged.\n");
	return f == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

struct purged {
	uint64_t bundles, reads;
};

static int count_purged(void *arg, const struct bundle_row *row)
{
	struct purged *p = arg;

	if (row->purged) {
		p->bundles++;
		p->reads += row->reads;
	}
	return 0;
}

/* A hold as JSON; after a close (p set), with what it purged. */
static void hold_json(struct jsonw *w, const struct hold *h, uint64_t now,
                      const struct purged *p)
{
	jsonw_obj_open(w, NULL);
	jsonw_str(w, "case", h->case_id);
	jsonw_str(w, "status", hold_status(h, now));
	jsonw_str(w, "authority", h->authority);
	jsonw_str(w, "purpose", h->purpose);
	jsonw_str(w, "operator", h->operator_id);
	jsonw_u64(w, "opened_ms", h->opened_ms);
	jsonw_u64(w, "expires_ms", h->expires_ms);
	if (h->renewed_ms)
		jsonw_u64(w, "renewed_ms", h->renewed_ms);
	else
		jsonw_null(w, "renewed_ms");
	if (h->closed)
		jsonw_u64(w, "closed_ms", h->closed_ms);
	else
		jsonw_null(w, "closed_ms");
	if (p != NULL) {
		jsonw_obj_open(w, "purged");
		jsonw_u64(w, "bundles", p->bundles);
		jsonw_u64(w, "reads", p->reads);
		jsonw_obj_close(w);
	}
	jsonw_obj_close(w);
}

struct list_ctx {
	struct jsonw w;
	int json;
	uint64_t now;
	unsigned n;
};

static int list_one(void *arg, const struct hold *h)
{
	struct list_ctx *c = arg;
	char opened[32], expires[32];

	c->n++;
	if (c->json) {
		hold_json(&c->w, h, c->now, NULL);
		return 0;
	}
	if (c->n == 1)
		printf("%-24s %-8s %-24s %-24s %s\n", "CASE", "STATUS", "PURPOSE", "EXPIRES", "AUTHORITY");
	cli_fmt_time(h->opened_ms, opened);
	cli_fmt_time(h->expires_ms, expires);
	printf("%-24s %-8s %-24s %-24s %s\n", h->case_id, hold_status(h, c->now), h->purpose,
	       h->closed ? "-" : expires, h->authority);
	return 0;
}

static int parse_days(const char *s, unsigned *out)
{
	char *end = NULL;
	unsigned long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	v = strtoul(s, &end, 10);
	if (*end != '\0' || v == 0 || v > 100000)
		return -1;
	*out = (unsigned)v;
	return 0;
}

int cmd_hold(int argc, char **argv, struct cli *g)
{
	static const struct option opts[] = {
		{ "authority", required_argument, NULL, 'a' },
		{ "purpose",   required_argument, NULL, 'p' },
		{ "operator",  required_argument, NULL, 'o' },
		{ "days",      required_argument, NULL, 'd' },
		{ "state",     required_argument, NULL, CLI_OPT_STATE },
		{ "tcti",      required_argument, NULL, CLI_OPT_TCTI },
		{ "json",      no_argument,       NULL, CLI_OPT_JSON },
		{ "help",      no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *verb, *case_id = NULL, *authority = NULL, *purpose = NULL, *operator_id = NULL;
	const char *days_s = NULL;
	unsigned days = 0;
	struct sbx_err e = { 0 };
	struct box *b = NULL;
	int c, r, readonly;
	static char prog[64];

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return usage(argc < 2 ? stderr : stdout);
	verb = argv[1];
	snprintf(prog, sizeof prog, "sealbox hold %s", verb);
	g->prog = prog;
	if (strcmp(verb, "open") != 0 && strcmp(verb, "renew") != 0 && strcmp(verb, "close") != 0 &&
	    strcmp(verb, "list") != 0 && strcmp(verb, "show") != 0)
		return cli_unknown_verb("hold", verb);
	optind = 0;
	while ((c = getopt_long(argc - 1, argv + 1, ":h", opts, NULL)) != -1) {
		if (cli_common_opt(g, c, optarg))
			continue;
		switch (c) {
		case 'a': authority = optarg; break;
		case 'p': purpose = optarg; break;
		case 'o': operator_id = optarg; break;
		case 'd': days_s = optarg; break;
		case 'h': return usage(stdout);
		default:  return cli_opt_error(g, c, argv + 1);
		}
	}
	readonly = !strcmp(verb, "list") || !strcmp(verb, "show");
	if (strcmp(verb, "list") != 0) {
		if (optind >= argc - 1)
			return cli_usage(g, "missing CASE");
		case_id = argv[1 + optind++];
	}
	if (optind != argc - 1)
		return cli_usage(g, "unexpected argument '%s'", argv[1 + optind]);
	if (case_id != NULL && !cli_valid_case(case_id))
		return cli_usage(g, "invalid case id '%s' (1-64 of A-Z a-z 0-9 . _ : / -, "
		                    "starting with a letter or digit)", case_id);
	if (!readonly) {
		if (operator_id == NULL)
			return cli_usage(g, "missing --operator ID");
		if (!cli_valid_operator(operator_id))
			return cli_usage(g, "invalid operator id '%s'", operator_id);
		if (authority != NULL && *authority != '\0' && !cli_valid_ref(authority))
			return cli_usage(g, "invalid authority reference (1-256 printable characters)");
		if (days_s != NULL && parse_days(days_s, &days) != 0)
			return cli_usage(g, "invalid --days '%s' (a whole number of days)", days_s);
		if (!strcmp(verb, "open") && purpose == NULL)
			return cli_usage(g, "missing --purpose CODE");
		if (strcmp(verb, "open") != 0 && purpose != NULL)
			return cli_usage(g, "--purpose is fixed when the hold is opened");
		if (!strcmp(verb, "close") && (authority != NULL || days_s != NULL))
			return cli_usage(g, "close takes only CASE and --operator");
	} else if (authority || purpose || operator_id || days_s) {
		return cli_usage(g, "%s takes no --authority/--purpose/--operator/--days", verb);
	}
	cli_env_defaults(g);
	if (!readonly && (g->tcti == NULL || *g->tcti == '\0'))
		return cli_usage(g, "no TPM given: pass --tcti or set SEALBOX_TCTI");

	r = box_open(g->state, g->tcti, readonly ? 0 : (BOX_TPM | BOX_WRITE), &b, &e);
	if (r != 0)
		goto out;
	if (!strcmp(verb, "open")) {
		/* An absent --authority is a refusal to log, not a usage error. */
		r = hold_open(b, case_id, authority, purpose, operator_id, days, &e);
	} else if (!strcmp(verb, "renew")) {
		r = hold_renew(b, case_id, authority, operator_id, days, &e);
	} else if (!strcmp(verb, "close")) {
		r = hold_close(b, case_id, operator_id, &e);
	} else {
		struct list_ctx lc = { .json = g->json, .now = box_now_ms() };
		struct hold h;

		jsonw_init(&lc.w, stdout);
		if (!strcmp(verb, "show")) {
			r = hold_get(b, case_id, &h, &e);
			if (r != 0)
				goto out;
			if (g->json) {
				hold_json(&lc.w, &h, lc.now, NULL);
			} else {
				char t1[32], t2[32];

				cli_fmt_time(h.opened_ms, t1);
				cli_fmt_time(h.expires_ms, t2);
				printf("case:      %s\nstatus:    %s\nauthority: %s\npurpose:   %s\n"
				       "opened:    %s by %s\nexpires:   %s\n", h.case_id,
				       hold_status(&h, lc.now), h.authority, h.purpose, t1,
				       h.operator_id, t2);
				if (h.renewed_ms) {
					cli_fmt_time(h.renewed_ms, t1);
					printf("renewed:   %s\n", t1);
				}
				if (h.closed) {
					cli_fmt_time(h.closed_ms, t1);
					printf("closed:    %s\n", t1);
				}
			}
			goto out;
		}
		if (g->json)
			jsonw_arr_open(&lc.w, NULL);
		r = hold_foreach(b, list_one, &lc, &e);
		if (g->json)
			jsonw_arr_close(&lc.w);
		else if (r == 0 && lc.n == 0)
			printf("no holds\n");
		goto out;
	}
	if (r == 0) {
		struct hold h;
		struct purged pc = { 0 };
		int closing = !strcmp(verb, "close");

		/* What a close destroyed, said where the technician sees it. */
		if (closing && bundles_foreach(b, case_id, count_purged, &pc, &e) != 0)
			pc = (struct purged){ 0 };
		if (hold_get(b, case_id, &h, &e) == 0) {
			if (g->json) {
				struct jsonw w;

				jsonw_init(&w, stdout);
				hold_json(&w, &h, box_now_ms(), closing ? &pc : NULL);
			} else if (closing) {
				printf("close: case %s closed; %" PRIu64 " bundle(s) with %" PRIu64
				       " read(s) purged (content keys destroyed, files deleted)\n",
				       case_id, pc.bundles, pc.reads);
			} else {
				char t[32];

				cli_fmt_time(h.expires_ms, t);
				printf("%s: case %s held until %s\n", verb, case_id, t);
			}
		}
	}
out:
	box_close(b);
	return r == 0 ? CLI_EXIT_OK : cli_fail(g, &e, r);
}

/* sealbox trust add|crl|list */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/box.h"
#include "appliance/cli.h"
#include "appliance/cmds.h"
#include "appliance/policy.h"
#include "appliance/trust.h"
#include "crypto/hash.h"
#include "export/jsonw.h"

static int usage(FILE *f)
{
	fprintf(f,
	  "usage: sealbox trust add --role court|prosecutor CA.pem --operator ID [--json]\n"
	  "       sealbox trust crl CRL.pem --operator ID [--json]\n"
	  "       sealbox trust list [--json]\n"
	  "Trust anchors are the self-signed root CAs whose certificates a recipient of each\n"
	  "role must chain to; there is never an anchor for a federal role, and a CA with a\n"
	  "federal marking is refused.  A CRL must verify under a loaded anchor (append the\n"
	  "issuing intermediate's certificate to an intermediate's CRL) and replaces an older\n"
	  "one of the same issuer.  Files: PEM or DER.  Every change and refusal is logged.\n");
	return f == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

static const char *validity(uint64_t nb, uint64_t na, uint64_t now)
{
	return now < nb ? "not-yet-valid" : now > na ? "expired" : "valid";
}

static void anchor_json(struct jsonw *w, const struct trust_anchor *a, uint64_t now)
{
	jsonw_obj_open(w, NULL);
	jsonw_str(w, "role", a->role);
	jsonw_hex(w, "cert_sha256", a->sha256, 32);
	jsonw_str(w, "subject", a->subject);
	jsonw_str(w, "status", validity(a->not_before_ms, a->not_after_ms, now));
	jsonw_u64(w, "not_before_ms", a->not_before_ms);
	jsonw_u64(w, "not_after_ms", a->not_after_ms);
	jsonw_u64(w, "added_ms", a->added_ms);
	jsonw_str(w, "operator", a->operator_id);
	jsonw_obj_close(w);
}

static void crl_json(struct jsonw *w, const struct x509check_crl_info *c, uint64_t loaded_ms,
                     const char *operator_id, uint64_t now)
{
	jsonw_obj_open(w, NULL);
	jsonw_str(w, "issuer", c->issuer);
	jsonw_hex(w, "crl_sha256", c->sha256, 32);
	jsonw_str(w, "signer", c->signer);
	jsonw_u64(w, "this_update_ms", c->this_update_ms);
	if (c->next_update_ms)
		jsonw_u64(w, "next_update_ms", c->next_update_ms);
	else
		jsonw_null(w, "next_update_ms");
	jsonw_bool(w, "current", c->next_update_ms == 0 || now <= c->next_update_ms);
	if (c->number[0])
		jsonw_str(w, "crl_number", c->number);
	else
		jsonw_null(w, "crl_number");
	jsonw_u64(w, "revoked", c->revoked);
	if (loaded_ms)
		jsonw_u64(w, "loaded_ms", loaded_ms);
	if (operator_id != NULL)
		jsonw_str(w, "operator", operator_id);
	jsonw_obj_close(w);
}

struct list_ctx {
	struct jsonw w;
	int json;
	uint64_t now;
	unsigned n;
};

static int list_anchor(void *arg, const struct trust_anchor *a)
{
	struct list_ctx *c = arg;
	char fp[65], na[32];

	c->n++;
	if (c->json) {
		anchor_json(&c->w, a, c->now);
		return 0;
	}
	if (c->n == 1)
		printf("%-11s %-16s %-14s %-24s %s\n", "ROLE", "SHA-256", "STATUS", "NOT AFTER",
		       "SUBJECT");
	hash_hex(a->sha256, 32, fp);
	cli_fmt_time(a->not_after_ms, na);
	printf("%-11s %.16s %-14s %-24s %s\n", a->role, fp,
	       validity(a->not_before_ms, a->not_after_ms, c->now), na, a->subject);
	return 0;
}

static int list_crl(void *arg, const struct trust_crl_row *r)
{
	struct list_ctx *c = arg;
	char t1[32], t2[32];

	c->n++;
	if (c->json) {
		crl_json(&c->w, &r->info, r->loaded_ms, r->operator_id, c->now);
		return 0;
	}
	if (c->n == 1)
		printf("\n%-24s %-24s %-8s %-8s %s\n", "THIS UPDATE", "NEXT UPDATE", "NUMBER",
		       "REVOKED", "ISSUER");
	cli_fmt_time(r->info.this_update_ms, t1);
	if (r->info.next_update_ms)
		cli_fmt_time(r->info.next_update_ms, t2);
	else
		snprintf(t2, sizeof t2, "-");
	printf("%-24s %-24s %-8s %-8llu %s%s\n", t1, t2, r->info.number[0] ? r->info.number : "-",
	       (unsigned long long)r->info.revoked, r->info.issuer,
	       r->info.next_update_ms && c->now > r->info.next_update_ms ? " (out of date)" : "");
	return 0;
}

static int trust_list(struct box *b, int json, struct sbx_err *e)
{
	struct list_ctx lc = { .json = json, .now = box_now_ms() };
	struct x509check_trust *t = NULL;
	static const uint8_t zero[32];
	static const char *const kinds[] = { "domains", "organizations", "policy_arcs" };
	const char *const *list;
	uint8_t conf[32];
	size_t n[3];
	int r;

	r = trust_load(b, &t, conf, e);
	if (r != 0)
		return r;
	jsonw_init(&lc.w, stdout);
	if (json) {
		jsonw_obj_open(&lc.w, NULL);
		jsonw_arr_open(&lc.w, "anchors");
	}
	r = trust_foreach_anchor(b, list_anchor, &lc, e);
	if (!json && r == 0 && lc.n == 0)
		printf("no trust anchors (add one with 'sealbox trust add')\n");
	if (json) {
		jsonw_arr_close(&lc.w);
		jsonw_arr_open(&lc.w, "crls");
	}
	lc.n = 0;
	if (r == 0)
		r = trust_foreach_crl(b, list_crl, &lc, e);
	if (!json && r == 0 && lc.n == 0)
		printf("\nno CRLs loaded\n");
	for (int k = 0; k < 3; k++)
		n[k] = x509check_trust_markers(t, k, &list);
	if (json) {
		jsonw_arr_close(&lc.w);
		if (memcmp(conf, zero, 32) != 0)
			jsonw_hex(&lc.w, "trust_conf_sha256", conf, 32);
		else
			jsonw_null(&lc.w, "trust_conf_sha256");
		jsonw_bool(&lc.w, "require_crl", (x509check_trust_flags(t) & X509CHECK_REQUIRE_CRL) != 0);
		jsonw_obj_open(&lc.w, "federal_markers");
		for (int k = 0; k < 3; k++) {
			x509check_trust_markers(t, k, &list);
			jsonw_arr_open(&lc.w, kinds[k]);
			for (size_t i = 0; i < n[k]; i++)
				jsonw_str(&lc.w, NULL, list[i]);
			jsonw_arr_close(&lc.w);
		}
		jsonw_obj_close(&lc.w);
		jsonw_obj_close(&lc.w);
	} else if (r == 0) {
		char h[65];

		hash_hex(conf, 32, h);
		printf("\nfederal markers: %zu domains, %zu organizations, %zu policy OID arcs "
		       "(built-in%s%s); CRL required: %s\n", n[0], n[1], n[2],
		       memcmp(conf, zero, 32) ? " + trust.conf sha256 " : "",
		       memcmp(conf, zero, 32) ? h : "",
		       (x509check_trust_flags(t) & X509CHECK_REQUIRE_CRL) ? "yes" : "no");
	}
	x509check_trust_free(t);
	return r;
}

int cmd_trust(int argc, char **argv, struct cli *g)
{
	static const struct option opts[] = {
		{ "role",     required_argument, NULL, 'r' },
		{ "operator", required_argument, NULL, 'o' },
		{ "state",    required_argument, NULL, CLI_OPT_STATE },
		{ "tcti",     required_argument, NULL, CLI_OPT_TCTI },
		{ "json",     no_argument,       NULL, CLI_OPT_JSON },
		{ "help",     no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *verb, *role = NULL, *operator_id = NULL, *path = NULL;
	struct sbx_err e = { 0 };
	struct box *b = NULL;
	int c, r, readonly;
	static char prog[64];

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return usage(argc < 2 ? stderr : stdout);
	verb = argv[1];
	snprintf(prog, sizeof prog, "sealbox trust %s", verb);
	g->prog = prog;
	if (strcmp(verb, "add") != 0 && strcmp(verb, "crl") != 0 && strcmp(verb, "list") != 0)
		return cli_unknown_verb("trust", verb);
	optind = 0;
	while ((c = getopt_long(argc - 1, argv + 1, ":h", opts, NULL)) != -1) {
		if (cli_common_opt(g, c, optarg))
			continue;
		switch (c) {
		case 'r': role = optarg; break;
		case 'o': operator_id = optarg; break;
		case 'h': return usage(stdout);
		default:  return cli_opt_error(g, c, argv + 1);
		}
	}
	readonly = !strcmp(verb, "list");
	if (!readonly) {
		if (optind >= argc - 1)
			return cli_usage(g, "missing %s", strcmp(verb, "add") ? "CRL file" : "CA file");
		path = argv[1 + optind++];
		if (operator_id == NULL)
			return cli_usage(g, "missing --operator ID");
		if (!cli_valid_operator(operator_id))
			return cli_usage(g, "invalid operator id '%s'", operator_id);
		if (!strcmp(verb, "add") && role == NULL)
			return cli_usage(g, "missing --role court|prosecutor");
		/* A well-formed but impossible role ("federal") is a refusal to
		 * log, not a usage error. */
		if (role != NULL && !policy_code_valid(role))
			return cli_usage(g, "invalid role '%s'", role);
		if (!strcmp(verb, "crl") && role != NULL)
			return cli_usage(g, "crl takes no --role (a CRL belongs to its issuer)");
	} else if (role || operator_id) {
		return cli_usage(g, "list takes no --role/--operator");
	}
	if (optind != argc - 1)
		return cli_usage(g, "unexpected argument '%s'", argv[1 + optind]);
	cli_env_defaults(g);
	if (!readonly && (g->tcti == NULL || *g->tcti == '\0'))
		return cli_usage(g, "no TPM given: pass --tcti or set SEALBOX_TCTI");

	r = box_open(g->state, g->tcti, readonly ? 0 : (BOX_TPM | BOX_WRITE), &b, &e);
	if (r != 0)
		goto out;
	if (!strcmp(verb, "add")) {
		struct x509check_info *info = calloc(1, sizeof *info);
		char fp[65], na[32];

		if (info == NULL) {
			r = SBX_ENOMEM;
			goto out;
		}
		r = trust_add(b, role, path, operator_id, info, &e);
		if (r == 0 && g->json) {
			struct jsonw w;
			struct trust_anchor a = { .not_before_ms = info->not_before_ms,
			                          .not_after_ms = info->not_after_ms,
			                          .added_ms = box_now_ms() };

			snprintf(a.role, sizeof a.role, "%s", role);
			memcpy(a.sha256, info->sha256, 32);
			snprintf(a.subject, sizeof a.subject, "%s", info->subject);
			snprintf(a.operator_id, sizeof a.operator_id, "%s", operator_id);
			jsonw_init(&w, stdout);
			anchor_json(&w, &a, a.added_ms);
		} else if (r == 0) {
			hash_hex(info->sha256, 32, fp);
			cli_fmt_time(info->not_after_ms, na);
			printf("trust anchor added for role %s: %s\n  sha256 %s, valid until %s\n", role,
			       info->subject, fp, na);
		}
		free(info);
	} else if (!strcmp(verb, "crl")) {
		struct x509check_crl_info *info = calloc(1, sizeof *info);
		int replaced = 0;

		if (info == NULL) {
			r = SBX_ENOMEM;
			goto out;
		}
		r = trust_crl(b, path, operator_id, info, &replaced, &e);
		if (r == 0 && g->json) {
			struct jsonw w;

			jsonw_init(&w, stdout);
			crl_json(&w, info, 0, NULL, box_now_ms());
		} else if (r == 0) {
			char t1[32];

			cli_fmt_time(info->this_update_ms, t1);
			printf("CRL of %s %s: issued %s, %llu revoked%s%s\n", info->issuer,
			       replaced ? "replaced" : "loaded", t1, (unsigned long long)info->revoked,
			       info->notes[0] ? "\n  note: " : "", info->notes);
		}
		free(info);
	} else {
		r = trust_list(b, g->json, &e);
	}
out:
	box_close(b);
	return r == 0 ? CLI_EXIT_OK : cli_fail(g, &e, r);
}

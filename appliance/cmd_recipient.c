/* sealbox recipient add|list|show|remove */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/box.h"
#include "appliance/cli.h"
#include "appliance/cmds.h"
#include "appliance/policy.h"
#include "appliance/recipient.h"
#include "crypto/hash.h"
#include "crypto/wrap.h"
#include "export/jsonw.h"

static int usage(FILE *f)
{
	fprintf(f,
	  "usage: sealbox recipient add NAME CERT.pem --role court|prosecutor --attestation REF\n"
	  "                             --operator ID [--json]\n"
	  "       sealbox recipient list [--json]\n"
	  "       sealbox recipient show NAME [--json]\n"
	  "       sealbox recipient remove NAME --operator ID\n"
	  "A recipient is a certificate (PEM: the recipient's first, then its intermediates)\n"
	  "that chains to a trust anchor of its role, is valid, not revoked, allows key\n"
	  "agreement (EC P-256/P-384) or key encipherment (RSA >= 3072) and carries no federal\n"
	  "marking.  It is checked when added and again at every release; 'list' and 'show'\n"
	  "give its usability now.  --attestation records the recipient's statement that the\n"
	  "data will not be used for immigration enforcement.  Every change and refusal is logged.\n");
	return f == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

static const char *alg_name(int alg)
{
	switch (alg) {
	case WRAP_ECDH_P256: return "ECDH P-256";
	case WRAP_ECDH_P384: return "ECDH P-384";
	case WRAP_RSA_OAEP:  return "RSA-OAEP";
	default:             return NULL;
	}
}

static void info_json(struct jsonw *w, const struct recipient_info *ri)
{
	jsonw_obj_open(w, NULL);
	jsonw_str(w, "name", ri->name);
	jsonw_str(w, "role", ri->role);
	jsonw_bool(w, "usable", ri->usable);
	jsonw_str(w, "verdict", x509check_verdict_name(ri->verdict));
	if (ri->reason[0])
		jsonw_str(w, "reason", ri->reason);
	else
		jsonw_null(w, "reason");
	if (ri->notes[0])
		jsonw_str(w, "notes", ri->notes);
	else
		jsonw_null(w, "notes");
	jsonw_hex(w, "cert_sha256", ri->cert_sha256, 32);
	jsonw_str(w, "subject", ri->subject);
	jsonw_str(w, "issuer", ri->issuer);
	if (ri->usable) {
		jsonw_str(w, "anchor", ri->anchor);
		jsonw_hex(w, "anchor_sha256", ri->anchor_sha256, 32);
	} else {
		jsonw_null(w, "anchor");
		jsonw_null(w, "anchor_sha256");
	}
	if (alg_name(ri->wrap_alg))
		jsonw_str(w, "key", alg_name(ri->wrap_alg));
	else
		jsonw_null(w, "key");
	jsonw_u64(w, "not_before_ms", ri->not_before_ms);
	jsonw_u64(w, "not_after_ms", ri->not_after_ms);
	jsonw_str(w, "attestation", ri->attestation);
	jsonw_u64(w, "added_ms", ri->added_ms);
	jsonw_str(w, "operator", ri->operator_id);
	jsonw_obj_close(w);
}

static void info_text(const struct recipient_info *ri)
{
	char fp[65], t1[32], t2[32];

	hash_hex(ri->cert_sha256, 32, fp);
	cli_fmt_time(ri->not_before_ms, t1);
	cli_fmt_time(ri->not_after_ms, t2);
	printf("name:        %s\nrole:        %s\nusable:      %s\n", ri->name, ri->role,
	       ri->usable ? "yes" : "NO");
	if (ri->reason[0])
		printf("reason:      %s\n", ri->reason);
	if (ri->notes[0])
		printf("note:        %s\n", ri->notes);
	printf("subject:     %s\nissuer:      %s\n", ri->subject, ri->issuer);
	if (ri->usable)
		printf("anchor:      %s\n", ri->anchor);
	printf("sha256:      %s\nkey:         %s\nvalid:       %s to %s\nattestation: %s\n", fp,
	       alg_name(ri->wrap_alg) ? alg_name(ri->wrap_alg) : "-", t1, t2, ri->attestation);
	cli_fmt_time(ri->added_ms, t1);
	printf("added:       %s by %s\n", t1, ri->operator_id);
}

struct list_ctx {
	struct jsonw w;
	int json;
	unsigned n;
};

static int list_one(void *arg, const struct recipient_info *ri)
{
	struct list_ctx *c = arg;
	char fp[65], na[32];

	c->n++;
	if (c->json) {
		info_json(&c->w, ri);
		return 0;
	}
	if (c->n == 1)
		printf("%-24s %-11s %-7s %-16s %-24s %s\n", "NAME", "ROLE", "USABLE", "SHA-256",
		       "NOT AFTER", "SUBJECT");
	hash_hex(ri->cert_sha256, 32, fp);
	cli_fmt_time(ri->not_after_ms, na);
	printf("%-24s %-11s %-7s %.16s %-24s %s\n", ri->name, ri->role, ri->usable ? "yes" : "NO",
	       fp, na, ri->subject);
	if (ri->reason[0])
		printf("    reason: %s\n", ri->reason);
	if (ri->notes[0])
		printf("    note: %s\n", ri->notes);
	return 0;
}

int cmd_recipient(int argc, char **argv, struct cli *g)
{
	static const struct option opts[] = {
		{ "role",        required_argument, NULL, 'r' },
		{ "attestation", required_argument, NULL, 'a' },
		{ "operator",    required_argument, NULL, 'o' },
		{ "state",       required_argument, NULL, CLI_OPT_STATE },
		{ "tcti",        required_argument, NULL, CLI_OPT_TCTI },
		{ "json",        no_argument,       NULL, CLI_OPT_JSON },
		{ "help",        no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *verb, *name = NULL, *path = NULL, *role = NULL, *attestation = NULL;
	const char *operator_id = NULL;
	struct recipient_info *ri = NULL;
	struct sbx_err e = { 0 };
	struct box *b = NULL;
	int c, r, readonly;
	static char prog[64];

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return usage(argc < 2 ? stderr : stdout);
	verb = argv[1];
	snprintf(prog, sizeof prog, "sealbox recipient %s", verb);
	g->prog = prog;
	if (strcmp(verb, "add") != 0 && strcmp(verb, "list") != 0 && strcmp(verb, "show") != 0 &&
	    strcmp(verb, "remove") != 0)
		return cli_unknown_verb("recipient", verb);
	optind = 0;
	while ((c = getopt_long(argc - 1, argv + 1, ":h", opts, NULL)) != -1) {
		if (cli_common_opt(g, c, optarg))
			continue;
		switch (c) {
		case 'r': role = optarg; break;
		case 'a': attestation = optarg; break;
		case 'o': operator_id = optarg; break;
		case 'h': return usage(stdout);
		default:  return cli_opt_error(g, c, argv + 1);
		}
	}
	readonly = !strcmp(verb, "list") || !strcmp(verb, "show");
	if (strcmp(verb, "list") != 0) {
		if (optind >= argc - 1)
			return cli_usage(g, "missing NAME");
		name = argv[1 + optind++];
		if (!recipient_name_valid(name))
			return cli_usage(g, "invalid recipient name '%s' (1-%d of A-Z a-z 0-9 . _ @ -, "
			                 "starting with a letter or digit)", name, RECIPIENT_MAX_NAME);
	}
	if (!strcmp(verb, "add")) {
		if (optind >= argc - 1)
			return cli_usage(g, "missing CERT file");
		path = argv[1 + optind++];
		if (role == NULL)
			return cli_usage(g, "missing --role court|prosecutor");
		if (!policy_code_valid(role))
			return cli_usage(g, "invalid role '%s'", role);
		/* An absent --attestation is a refusal to log, not a usage error. */
		if (attestation != NULL && *attestation != '\0' && !cli_valid_ref(attestation))
			return cli_usage(g, "invalid attestation reference (1-256 printable characters)");
	} else if (role != NULL || attestation != NULL) {
		return cli_usage(g, "%s takes no --role/--attestation", verb);
	}
	if (!readonly) {
		if (operator_id == NULL)
			return cli_usage(g, "missing --operator ID");
		if (!cli_valid_operator(operator_id))
			return cli_usage(g, "invalid operator id '%s'", operator_id);
	} else if (operator_id != NULL) {
		return cli_usage(g, "%s takes no --operator", verb);
	}
	if (optind != argc - 1)
		return cli_usage(g, "unexpected argument '%s'", argv[1 + optind]);
	cli_env_defaults(g);
	if (!readonly && (g->tcti == NULL || *g->tcti == '\0'))
		return cli_usage(g, "no TPM given: pass --tcti or set SEALBOX_TCTI");

	ri = calloc(1, sizeof *ri);
	if (ri == NULL) {
		r = SBX_ENOMEM;
		goto out;
	}
	r = box_open(g->state, g->tcti, readonly ? 0 : (BOX_TPM | BOX_WRITE), &b, &e);
	if (r != 0)
		goto out;
	if (!strcmp(verb, "add")) {
		r = recipient_add(b, name, path, role, attestation, operator_id, ri, &e);
		if (r == 0 && g->json) {
			struct jsonw w;

			jsonw_init(&w, stdout);
			info_json(&w, ri);
		} else if (r == 0) {
			char fp[65], na[32];

			hash_hex(ri->cert_sha256, 32, fp);
			cli_fmt_time(ri->not_after_ms, na);
			printf("recipient '%s' added (%s): %s\n  sha256 %s, %s, valid until %s\n", name,
			       role, ri->subject, fp, alg_name(ri->wrap_alg), na);
			if (ri->notes[0])
				printf("  note: %s\n", ri->notes);
		}
	} else if (!strcmp(verb, "remove")) {
		r = recipient_remove(b, name, operator_id, &e);
		if (r == 0)
			printf("recipient '%s' removed\n", name);
	} else if (!strcmp(verb, "show")) {
		r = recipient_usable(b, name, box_now_ms(), ri, &e);
		/* Not usable is an answer here, not a failure. */
		if (r == SBX_EPOLICY) {
			r = 0;
		}
		if (r == 0 && g->json) {
			struct jsonw w;

			jsonw_init(&w, stdout);
			info_json(&w, ri);
		} else if (r == 0) {
			info_text(ri);
		}
	} else {
		struct list_ctx lc = { .json = g->json };

		jsonw_init(&lc.w, stdout);
		if (g->json)
			jsonw_arr_open(&lc.w, NULL);
		r = recipient_foreach(b, box_now_ms(), list_one, &lc, &e);
		if (g->json)
			jsonw_arr_close(&lc.w);
		else if (r == 0 && lc.n == 0)
			printf("no recipients\n");
	}
out:
	if (ri != NULL)
		recipient_info_free(ri);
	free(ri);
	box_close(b);
	return r == 0 ? CLI_EXIT_OK : cli_fail(g, &e, r);
}

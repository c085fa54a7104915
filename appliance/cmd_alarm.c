/* sealbox alarm show|clear: the integrity alarm and the auditor's action. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/box.h"
#include "appliance/cli.h"
#include "appliance/cmds.h"
#include "appliance/custody.h"
#include "appliance/lights.h"
#include "export/jsonw.h"
#include "hw/hw.h"

static int usage(FILE *f)
{
	fprintf(f, "usage: sealbox alarm show [--json]\n"
	           "       sealbox alarm clear --operator ID --reason TEXT [--gpio SPEC]\n"
	           "The box raises an integrity alarm when its custody log, tree heads, bundle\n"
	           "files and TPM counter disagree (for example, the database was replaced by an\n"
	           "older copy).  It then refuses every change and every release.  'clear' is the\n"
	           "auditor's action, after investigating: it records who cleared it and why, and\n"
	           "re-anchors the log to the TPM counter (docs/OPERATIONS.md).\n");
	return f == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

int cmd_alarm(int argc, char **argv, struct cli *g)
{
	static const struct option opts[] = {
		{ "operator", required_argument, NULL, 'o' },
		{ "reason",   required_argument, NULL, 'r' },
		{ "state",    required_argument, NULL, CLI_OPT_STATE },
		{ "tcti",     required_argument, NULL, CLI_OPT_TCTI },
		{ "gpio",     required_argument, NULL, CLI_OPT_GPIO },
		{ "json",     no_argument,       NULL, CLI_OPT_JSON },
		{ "help",     no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *verb, *operator_id = NULL, *reason = NULL;
	struct sbx_err e = { 0 };
	struct box *b = NULL;
	struct logrec *rec = NULL;
	int c, r;
	static char prog[64];

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return usage(argc < 2 ? stderr : stdout);
	verb = argv[1];
	snprintf(prog, sizeof prog, "sealbox alarm %s", verb);
	g->prog = prog;
	if (strcmp(verb, "show") != 0 && strcmp(verb, "clear") != 0)
		return cli_unknown_verb("alarm", verb);
	optind = 0;
	while ((c = getopt_long(argc - 1, argv + 1, ":h", opts, NULL)) != -1) {
		if (cli_common_opt(g, c, optarg))
			continue;
		switch (c) {
		case 'o': operator_id = optarg; break;
		case 'r': reason = optarg; break;
		case 'h': return usage(stdout);
		default:  return cli_opt_error(g, c, argv + 1);
		}
	}
	if (optind != argc - 1)
		return cli_usage(g, "unexpected argument '%s'", argv[1 + optind]);
	if (!strcmp(verb, "clear")) {
		if (operator_id == NULL || !cli_valid_operator(operator_id))
			return cli_usage(g, "missing or invalid --operator ID");
		if (reason == NULL || !cli_valid_ref(reason))
			return cli_usage(g, "missing --reason TEXT (what was found and done)");
	}
	cli_env_defaults(g);
	if (g->tcti == NULL || *g->tcti == '\0')
		return cli_usage(g, "no TPM given: pass --tcti or set SEALBOX_TCTI");
	/* Opening for writing runs the start-up checks that raise the alarm. */
	r = box_open(g->state, g->tcti, BOX_TPM | BOX_WRITE, &b, &e);
	if (r != 0)
		goto out;
	if (!strcmp(verb, "show")) {
		if (g->json) {
			struct jsonw w;

			jsonw_init(&w, stdout);
			jsonw_obj_open(&w, NULL);
			jsonw_bool(&w, "alarm", b->alarm);
			jsonw_str(&w, "reason", b->alarm ? b->alarm_reason : "");
			jsonw_obj_close(&w);
		} else if (b->alarm) {
			printf("INTEGRITY ALARM: %s\n", b->alarm_reason);
		} else {
			printf("no alarm: the custody log, tree heads, bundles and TPM counter agree\n");
		}
		if (b->alarm)
			r = SBX_EINTEGRITY;
		if (r != 0)
			sbx_fail(&e, r, "integrity alarm: %s", b->alarm_reason);
		goto out;
	}
	if (!b->alarm) {
		r = sbx_fail(&e, SBX_ESTATE, "there is no integrity alarm to clear");
		goto out;
	}
	rec = calloc(1, sizeof *rec);
	if (rec == NULL) {
		r = SBX_ENOMEM;
		goto out;
	}
	snprintf(rec->event, sizeof rec->event, "integrity.clear");
	snprintf(rec->outcome, sizeof rec->outcome, "ok");
	snprintf(rec->operator_id, sizeof rec->operator_id, "%s", operator_id);
	snprintf(rec->reason, sizeof rec->reason, "%s", reason);
	snprintf(rec->detail, sizeof rec->detail, "alarm=%s", b->alarm_reason);
	r = custody_rebase(b, rec, &e);
	/* Under the lock still: the red blinking stops only now. */
	if (r == 0)
		lights_show_spec(g->gpio, LIGHTS_READY);
	if (r == 0)
		printf("integrity alarm cleared by %s; the log is anchored to the TPM counter again\n",
		       operator_id);
out:
	free(rec);
	box_close(b);
	return r == 0 ? CLI_EXIT_OK : cli_fail(g, &e, r);
}

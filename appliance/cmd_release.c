/* sealbox release: hand a case's evidence to a recipient, after the button. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/box.h"
#include "appliance/cli.h"
#include "appliance/cmds.h"
#include "appliance/release.h"
#include "export/jsonw.h"
#include "hw/hw.h"

static int usage(FILE *f)
{
	fprintf(f,
	  "usage: sealbox release CASE --to NAME --purpose CODE --authority REF --operator ID\n"
	  "                       --out DIR [--timeout S] [--gpio SPEC] [--json]\n"
	  "Checks the hold, the purpose, the recipient and the authority; shows exactly what\n"
	  "will leave with a confirmation code; blinks amber and waits (default 60 s) for a\n"
	  "fresh press and release of the box's button; then re-wraps each bundle's key to the\n"
	  "recipient, records the release, and writes DIR/<bundle>.sbx and DIR/<bundle>.release.\n"
	  "A refusal or a timeout writes nothing and is logged.  --gpio (env SEALBOX_GPIO):\n"
	  "chip:NAME[,button=LINE,...] on the box, sim:SOCKET in development.\n");
	return f == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

int cmd_release(int argc, char **argv, struct cli *g)
{
	static const struct option opts[] = {
		{ "to",        required_argument, NULL, 't' },
		{ "purpose",   required_argument, NULL, 'p' },
		{ "authority", required_argument, NULL, 'a' },
		{ "operator",  required_argument, NULL, 'o' },
		{ "out",       required_argument, NULL, 'O' },
		{ "timeout",   required_argument, NULL, 'T' },
		{ "state",     required_argument, NULL, CLI_OPT_STATE },
		{ "tcti",      required_argument, NULL, CLI_OPT_TCTI },
		{ "gpio",      required_argument, NULL, CLI_OPT_GPIO },
		{ "json",      no_argument,       NULL, CLI_OPT_JSON },
		{ "help",      no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct release_request rq = { .timeout_ms = HW_CONFIRM_TIMEOUT_MS_DEFAULT };
	struct release_outcome res;
	struct sbx_err e = { 0 };
	struct box *b = NULL;
	struct hw *hw = NULL;
	char *end = NULL;
	unsigned long secs;
	int c, r;

	g->prog = "sealbox release";
	optind = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (cli_common_opt(g, c, optarg))
			continue;
		switch (c) {
		case 't': rq.recipient = optarg; break;
		case 'p': rq.purpose = optarg; break;
		case 'a': rq.authority = optarg; break;
		case 'o': rq.operator_id = optarg; break;
		case 'O': rq.out_dir = optarg; break;
		case 'T':
			secs = strtoul(optarg, &end, 10);
			if (*optarg < '0' || *optarg > '9' || *end != '\0' || secs == 0 || secs > 3600)
				return cli_usage(g, "invalid --timeout '%s' (1 to 3600 seconds)", optarg);
			rq.timeout_ms = (unsigned)secs * 1000u;
			break;
		case 'h': return usage(stdout);
		default:  return cli_opt_error(g, c, argv);
		}
	}
	if (optind >= argc)
		return cli_usage(g, "missing CASE");
	rq.case_id = argv[optind++];
	if (optind != argc)
		return cli_usage(g, "unexpected argument '%s'", argv[optind]);
	if (!cli_valid_case(rq.case_id))
		return cli_usage(g, "invalid case id '%s'", rq.case_id);
	if (rq.operator_id == NULL || !cli_valid_operator(rq.operator_id))
		return cli_usage(g, "missing or invalid --operator ID");
	if (rq.recipient == NULL)
		return cli_usage(g, "missing --to NAME");
	if (rq.purpose == NULL)
		return cli_usage(g, "missing --purpose CODE");
	if (rq.out_dir == NULL)
		return cli_usage(g, "missing --out DIR");
	/* A missing --authority is a refusal to log, not a usage error. */
	if (rq.authority == NULL)
		rq.authority = "";
	cli_env_defaults(g);
	if (g->tcti == NULL || *g->tcti == '\0')
		return cli_usage(g, "no TPM given: pass --tcti or set SEALBOX_TCTI");
	if (g->gpio == NULL || *g->gpio == '\0')
		return cli_usage(g, "no button given: pass --gpio or set SEALBOX_GPIO");

	r = box_open(g->state, g->tcti, BOX_TPM | BOX_WRITE, &b, &e);
	if (r != 0)
		goto out;
	/* The GPIO is opened under the box's lock: with two requests pending,
	 * the second waits, so one press confirms exactly the one on screen. */
	r = hw_open(g->gpio, &hw, &e);
	if (r != 0)
		goto out;
	r = release_run(b, hw, &rq, g->json ? stderr : stdout, &res, &e);
	if (r != 0)
		goto out;
	if (g->json) {
		struct jsonw w;

		jsonw_init(&w, stdout);
		jsonw_obj_open(&w, NULL);
		jsonw_str(&w, "case", rq.case_id);
		jsonw_str(&w, "recipient", rq.recipient);
		jsonw_str(&w, "certificate_sha256", res.cert_sha256);
		jsonw_str(&w, "confirmation", res.confirmation);
		jsonw_u64(&w, "bundles", res.bundles);
		jsonw_u64(&w, "reads", res.reads);
		jsonw_u64(&w, "counter", res.counter);
		jsonw_str(&w, "out", rq.out_dir);
		jsonw_obj_close(&w);
	} else {
		printf("released %u bundle(s), %" PRIu64 " reads, to %s; files in %s\n",
		       res.bundles, res.reads, rq.recipient, rq.out_dir);
	}
out:
	hw_close(hw);
	box_close(b);
	return r == 0 ? CLI_EXIT_OK : cli_fail(g, &e, r);
}

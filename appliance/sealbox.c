/* sealbox: the appliance's command line.  See sealbox(1). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/cli.h"
#include "appliance/cmds.h"
#include "appliance/lights.h"

static const struct {
	const char *name;
	int (*fn)(int, char **, struct cli *);
	const char *summary;
} commands[] = {
	{ "init",     cmd_init,     "provision this box on its TPM" },
	{ "identity", cmd_identity, "print the public identity an auditor pins" },
	{ "hold",     cmd_hold,     "open, renew, close, list and show case holds" },
	{ "policy",   cmd_policy,   "show or replace the policy in force" },
	{ "trust",    cmd_trust,    "trust anchors (court, prosecutor) and CRLs" },
	{ "recipient", cmd_recipient, "add, list and remove release recipients" },
	{ "ingest",   cmd_ingest,   "seal a vendor export for a case into a bundle" },
	{ "bundle",   cmd_bundle,   "list, show, export and verify sealed bundles" },
	{ "release",  cmd_release,  "release a case's evidence to a recipient (button press)" },
	{ "log",      cmd_log,      "show, verify and export the custody log" },
	{ "alarm",    cmd_alarm,    "show or clear (auditor) the integrity alarm" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: sealbox [--state DIR] [--tcti TCTI] COMMAND [ARGS...]\n\n"
	           "Evidence custody appliance for license-plate-reader reads.\n\ncommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nglobal options (also accepted after the command):\n"
	           "  --state DIR   state directory (env SEALBOX_STATE, default /var/lib/sealbox)\n"
	           "  --tcti TCTI   TPM transport, e.g. device:/dev/tpmrm0 (env SEALBOX_TCTI;\n"
	           "                never guessed)\n"
	           "  --gpio SPEC   button and LEDs: chip:NAME[,...] or sim:SOCKET (env SEALBOX_GPIO)\n"
	           "  --json        machine-readable output where a command prints results\n"
	           "\n'sealbox COMMAND --help' for a command's options; sealbox(1) for exit codes.\n");
}

int main(int argc, char **argv)
{
	struct cli g = { .prog = "sealbox" };
	int i = 1;

	/* tpm2-tss logs expected look-up misses as errors; its messages are not
	 * for the operator (ours are).  TSS2_LOG set by the caller wins. */
	setenv("TSS2_LOG", "all+none", 0);

	/* Global options before the command. */
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return CLI_EXIT_OK;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("sealbox %s\n", SBX_VERSION);
			return CLI_EXIT_OK;
		} else if (strcmp(argv[i], "--json") == 0) {
			g.json = 1;
			i++;
		} else if ((strcmp(argv[i], "--state") == 0 || strcmp(argv[i], "--tcti") == 0 ||
		            strcmp(argv[i], "--gpio") == 0) && i + 1 < argc) {
			if (argv[i][2] == 's')
				g.state = argv[i + 1];
			else if (argv[i][2] == 't')
				g.tcti = argv[i + 1];
			else
				g.gpio = argv[i + 1];
			i += 2;
		} else {
			fprintf(stderr, "sealbox: unknown or incomplete option '%s' (see 'sealbox --help')\n",
			        argv[i]);
			return CLI_EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	/* The commands word getopt's errors themselves (cli_opt_error): one
	 * line, prefixed by the command. */
	opterr = 0;
	for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++) {
		int rc;

		if (strcmp(argv[i], commands[k].name) != 0)
			continue;
		rc = commands[k].fn(argc - i, argv + i, &g);
		/* Whatever command met the integrity alarm, the box shows it: the
		 * alarm refuses every release, so no release owns the lights. */
		if (rc == CLI_EXIT_ALARM) {
			cli_env_defaults(&g);
			lights_show_spec(g.gpio, LIGHTS_ALARM);
		}
		return rc;
	}
	fprintf(stderr, "sealbox: unknown command '%s' (see 'sealbox --help')\n", argv[i]);
	return CLI_EXIT_USAGE;
}

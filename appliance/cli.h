/* Shared pieces of the sealbox command line: global options, exit codes,
 * error printing, and the syntax of the identifiers operators type. */
#ifndef SBX_CLI_H
#define SBX_CLI_H

#include <getopt.h>
#include <stdint.h>

#include "crypto/err.h"

/* Exit codes: a contract, documented in sealbox(1). */
enum {
	CLI_EXIT_OK        = 0,
	CLI_EXIT_INVALID   = 1,   /* verification found a problem */
	CLI_EXIT_USAGE     = 2,   /* bad arguments or malformed input file */
	CLI_EXIT_DENIED    = 3,   /* refused by policy (and logged) */
	CLI_EXIT_NOTFOUND  = 4,   /* unknown case, recipient, ... */
	CLI_EXIT_STATE     = 5,   /* wrong state: not provisioned, already provisioned, hold closed */
	CLI_EXIT_TPM       = 6,   /* TPM unreachable or failed */
	CLI_EXIT_IO        = 7,   /* file or database I/O */
	CLI_EXIT_ALARM     = 8,   /* integrity alarm */
	CLI_EXIT_CANCELED  = 9,   /* not confirmed in time */
	CLI_EXIT_INTERNAL  = 10,  /* out of memory, crypto library failure */
};

struct cli {
	const char *prog;       /* "sealbox hold open", for messages */
	const char *state;      /* --state / SEALBOX_STATE */
	const char *tcti;       /* --tcti / SEALBOX_TCTI */
	const char *gpio;       /* --gpio / SEALBOX_GPIO */
	int json;
};

/* Option codes for the global options every command accepts. */
enum { CLI_OPT_STATE = 0x1000, CLI_OPT_TCTI, CLI_OPT_GPIO, CLI_OPT_JSON, CLI_OPT_HELP };

/* Handles a global option; returns 1 if `c` was one. */
int cli_common_opt(struct cli *g, int c, const char *arg);
/* Fills state/tcti/gpio from the environment where not given. */
void cli_env_defaults(struct cli *g);

int cli_exit_code(int sbx_code);
/* Prints "PROG: message" on stderr and returns the exit code for `code`. */
int cli_fail(const struct cli *g, struct sbx_err *e, int code);
int cli_usage(const struct cli *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "sealbox GROUP: unknown subcommand 'VERB' (see 'sealbox GROUP --help')":
 * the hint names the group, whose help lists the subcommands. */
int cli_unknown_verb(const char *group, const char *verb);
/* A getopt_long error as one usage line: call it for the ':' (missing
 * argument; the optstring must start with ':') and '?' returns, with the
 * argv that getopt_long was given.  main() sets opterr = 0 once, so that
 * getopt's own messages never mix in. */
int cli_opt_error(const struct cli *g, int c, char *const *argv);

/* Identifier syntax (sealbox(1) "IDENTIFIERS"): 0 if valid. */
int cli_valid_case(const char *s);
int cli_valid_operator(const char *s);
int cli_valid_ref(const char *s);       /* authority / attestation reference */

/* "2026-11-26T05:25:31.123Z" */
void cli_fmt_time(uint64_t ms, char out[32]);

#endif

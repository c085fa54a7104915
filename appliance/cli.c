#include "appliance/cli.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "export/wire.h"

int cli_common_opt(struct cli *g, int c, const char *arg)
{
	switch (c) {
	case CLI_OPT_STATE: g->state = arg; return 1;
	case CLI_OPT_TCTI:  g->tcti = arg; return 1;
	case CLI_OPT_GPIO:  g->gpio = arg; return 1;
	case CLI_OPT_JSON:  g->json = 1; return 1;
	default:            return 0;
	}
}

void cli_env_defaults(struct cli *g)
{
	if (g->state == NULL)
		g->state = getenv("SEALBOX_STATE");
	if (g->state == NULL)
		g->state = "/var/lib/sealbox";
	/* The TCTI is never guessed: no default (PITFALLS: the loader would
	 * silently pick up whatever TPM it finds). */
	if (g->tcti == NULL)
		g->tcti = getenv("SEALBOX_TCTI");
	if (g->gpio == NULL)
		g->gpio = getenv("SEALBOX_GPIO");
}

int cli_exit_code(int code)
{
	switch (code) {
	case SBX_OK:         return CLI_EXIT_OK;
	case SBX_EVERIFY:    return CLI_EXIT_INVALID;
	case SBX_EINVAL:
	case SBX_EFORMAT:    return CLI_EXIT_USAGE;
	case SBX_EPOLICY:    return CLI_EXIT_DENIED;
	case SBX_ENOENT:     return CLI_EXIT_NOTFOUND;
	case SBX_EEXIST:
	case SBX_ESTATE:     return CLI_EXIT_STATE;
	case SBX_ETPM:       return CLI_EXIT_TPM;
	case SBX_EIO:        return CLI_EXIT_IO;
	case SBX_EINTEGRITY: return CLI_EXIT_ALARM;
	case SBX_ECANCELED:  return CLI_EXIT_CANCELED;
	default:             return CLI_EXIT_INTERNAL;
	}
}

int cli_fail(const struct cli *g, struct sbx_err *e, int code)
{
	const char *msg = (e != NULL && e->msg[0] != '\0') ? e->msg : sbx_strerror(code);

	fprintf(stderr, "%s: %s\n", g->prog, msg);
	return cli_exit_code(code);
}

int cli_usage(const struct cli *g, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", g->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see '%s --help')\n", g->prog);
	return CLI_EXIT_USAGE;
}

int cli_unknown_verb(const char *group, const char *verb)
{
	fprintf(stderr, "sealbox %s: unknown subcommand '%s' (see 'sealbox %s --help')\n",
	        group, verb, group);
	return CLI_EXIT_USAGE;
}

int cli_opt_error(const struct cli *g, int c, char *const *argv)
{
	const char *opt = optind > 0 ? argv[optind - 1] : "?";

	if (c == ':')
		return cli_usage(g, "option '%s' needs an argument", opt);
	if (optopt != 0 && (opt[0] != '-' || opt[1] == '-'))
		return cli_usage(g, "unknown option '-%c'", optopt);
	return cli_usage(g, "unknown option '%s'", opt);
}

static int charset_ok(const char *s, size_t max, const char *extra)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > max)
		return 0;
	if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') ||
	      (s[0] >= '0' && s[0] <= '9')))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			continue;
		if (strchr(extra, c) == NULL)
			return 0;
	}
	return 1;
}

int cli_valid_case(const char *s)     { return charset_ok(s, 64, "._:/-"); }
int cli_valid_operator(const char *s) { return charset_ok(s, 64, "._@-"); }

int cli_valid_ref(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 256 || !wire_utf8_valid((const uint8_t *)s, n))
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return s[0] != ' ' && s[n - 1] != ' ';
}

void cli_fmt_time(uint64_t ms, char out[32])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	char d[24];

	gmtime_r(&t, &tm);
	if (strftime(d, sizeof d, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		d[0] = '\0';
	snprintf(out, 32, "%.20s.%03uZ", d, (unsigned)(ms % 1000));
}

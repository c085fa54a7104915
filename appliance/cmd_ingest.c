/* sealbox ingest: receive a vendor export for a case and seal it. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "appliance/box.h"
#include "appliance/cli.h"
#include "appliance/cmds.h"
#include "appliance/ingest.h"
#include "appliance/mapping.h"
#include "export/jsonw.h"

static int usage(FILE *f)
{
	fprintf(f,
	  "usage: sealbox ingest CASE PATH... --operator ID [--source NAME] [--mapping FILE]\n"
	  "                      [--max-entry-bytes N] [--max-total-bytes N] [--max-entries N]\n"
	  "                      [--max-ratio N] [--json]\n"
	  "Reads CSV, JSON Lines, or zip / tar / tar.gz archives of those with their images,\n"
	  "in a sandboxed child process, and seals the whole batch into one signed, encrypted\n"
	  "bundle with one custody record, or changes nothing.  The case needs an open hold.\n"
	  "--mapping maps a vendor's columns onto the read schema (docs/READS.md); the caps\n"
	  "bound archives (defaults: 1 GiB per entry, 64 GiB in all, 4,000,000 entries,\n"
	  "compression ratio 100).\n");
	return f == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end = NULL;
	unsigned long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	v = strtoull(s, &end, 10);
	if (*end != '\0' || v == 0)
		return -1;
	*out = v;
	return 0;
}

int cmd_ingest(int argc, char **argv, struct cli *g)
{
	static const struct option opts[] = {
		{ "operator",        required_argument, NULL, 'o' },
		{ "source",          required_argument, NULL, 's' },
		{ "mapping",         required_argument, NULL, 'm' },
		{ "max-entry-bytes", required_argument, NULL, 'E' },
		{ "max-total-bytes", required_argument, NULL, 'T' },
		{ "max-entries",     required_argument, NULL, 'N' },
		{ "max-ratio",       required_argument, NULL, 'R' },
		{ "state",           required_argument, NULL, CLI_OPT_STATE },
		{ "tcti",            required_argument, NULL, CLI_OPT_TCTI },
		{ "json",            no_argument,       NULL, CLI_OPT_JSON },
		{ "help",            no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *operator_id = NULL, *source = "", *mapping_path = NULL, *case_id;
	struct ingest_opts o;
	struct mapping *map = NULL;
	struct ingest_result *res = NULL;
	struct sbx_err e = { 0 };
	struct box *b = NULL;
	uint64_t v;
	int c, r;

	g->prog = "sealbox ingest";
	ingest_opts_default(&o);
	optind = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (cli_common_opt(g, c, optarg))
			continue;
		switch (c) {
		case 'o': operator_id = optarg; break;
		case 's': source = optarg; break;
		case 'm': mapping_path = optarg; break;
		case 'E': case 'T': case 'N': case 'R':
			if (parse_u64(optarg, &v) != 0)
				return cli_usage(g, "invalid number '%s'", optarg);
			if (c == 'E')
				o.caps.max_entry_bytes = v;
			else if (c == 'T')
				o.caps.max_total_bytes = v;
			else if (c == 'N')
				o.caps.max_entries = v;
			else if (v > 100000)
				return cli_usage(g, "--max-ratio above 100000 is no cap");
			else
				o.caps.max_ratio = (uint32_t)v;
			break;
		case 'h': return usage(stdout);
		default:  return cli_opt_error(g, c, argv);
		}
	}
	if (optind >= argc)
		return cli_usage(g, "missing CASE");
	case_id = argv[optind++];
	if (optind >= argc)
		return cli_usage(g, "missing PATH (the export to ingest)");
	if (!cli_valid_case(case_id))
		return cli_usage(g, "invalid case id '%s'", case_id);
	if (operator_id == NULL)
		return cli_usage(g, "missing --operator ID");
	if (!cli_valid_operator(operator_id))
		return cli_usage(g, "invalid operator id '%s'", operator_id);
	if (strlen(source) > 128 || (*source != '\0' && !cli_valid_ref(source)))
		return cli_usage(g, "invalid --source (up to 128 printable characters)");
	cli_env_defaults(g);
	if (g->tcti == NULL || *g->tcti == '\0')
		return cli_usage(g, "no TPM given: pass --tcti or set SEALBOX_TCTI");

	res = calloc(1, sizeof *res);
	map = calloc(1, sizeof *map);
	if (res == NULL || map == NULL) {
		r = SBX_ENOMEM;
		goto out;
	}
	if (mapping_path != NULL) {
		r = mapping_load(mapping_path, map, &e);
		if (r != 0)
			goto out;
		o.mapping = map;
	}
	r = box_open(g->state, g->tcti, BOX_TPM | BOX_WRITE, &b, &e);
	if (r != 0)
		goto out;
	/* Progress only for a person watching: a terminal, and not --json. */
	r = ingest_batch(b, case_id, (const char *const *)argv + optind, (size_t)(argc - optind),
	                 operator_id, source, &o, !g->json && isatty(STDERR_FILENO) ? stderr : NULL,
	                 res, &e);
	if (r != 0)
		goto out;
	if (g->json) {
		struct jsonw w;

		jsonw_init(&w, stdout);
		jsonw_obj_open(&w, NULL);
		jsonw_str(&w, "bundle", res->bundle_id);
		jsonw_str(&w, "case", case_id);
		jsonw_str(&w, "path", res->path);
		jsonw_u64(&w, "reads", res->m.reads);
		jsonw_u64(&w, "images", res->m.images);
		jsonw_u64(&w, "cameras", res->m.cameras);
		jsonw_u64(&w, "first_captured_ms", res->m.first_captured_ms);
		jsonw_u64(&w, "last_captured_ms", res->m.last_captured_ms);
		jsonw_u64(&w, "older_than_retention", res->older_than_retention);
		jsonw_u64(&w, "plaintext_bytes", res->m.plaintext_bytes);
		jsonw_hex(&w, "ciphertext_sha256", res->m.ciphertext_sha256, 32);
		jsonw_obj_close(&w);
	} else {
		char t1[32], t2[32];

		cli_fmt_time(res->m.first_captured_ms, t1);
		cli_fmt_time(res->m.last_captured_ms, t2);
		printf("sealed bundle %s\n", res->bundle_id);
		printf("case %s: %" PRIu64 " reads, %" PRIu64 " images, %" PRIu64 " cameras, "
		       "captured %s .. %s\n", case_id, res->m.reads, res->m.images, res->m.cameras,
		       t1, t2);
		if (res->older_than_retention)
			printf("%" PRIu64 " reads are older than the %u-day retention period and are "
			       "kept only under this hold\n", res->older_than_retention,
			       b->policy.retention_days);
	}
out:
	box_close(b);
	free(res);
	free(map);
	return r == 0 ? CLI_EXIT_OK : cli_fail(g, &e, r);
}

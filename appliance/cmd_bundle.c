/* sealbox bundle list|show|export|verify */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/crypto.h>

#include "appliance/box.h"
#include "appliance/bundles.h"
#include "appliance/cli.h"
#include "appliance/cmds.h"
#include "appliance/custody.h"
#include "crypto/hash.h"
#include "export/atomic.h"
#include "export/bundle.h"
#include "export/jsonw.h"

static int usage(FILE *f)
{
	fprintf(f, "usage: sealbox bundle list [--case CASE] [--json]\n"
	           "       sealbox bundle show ID [--json]\n"
	           "       sealbox bundle export ID --out DIR\n"
	           "       sealbox bundle verify ID [--decrypt] [--operator ID] [--json]\n"
	           "'export' copies the sealed bundle (still encrypted to this box) with its custody\n"
	           "file (records and inclusion proofs under the newest signed tree head) to DIR,\n"
	           "for sealbox-verify.  'verify' checks a bundle on the box; --decrypt also has the\n"
	           "TPM unwrap its key and authenticates every chunk and item (writing no plaintext;\n"
	           "logged as a view).\n");
	return f == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

static void row_json(struct jsonw *w, const struct bundle_row *r)
{
	jsonw_obj_open(w, NULL);
	jsonw_str(w, "id", r->id);
	jsonw_str(w, "case", r->case_id);
	jsonw_str(w, "state", r->purged ? "purged" : "sealed");
	jsonw_u64(w, "sealed_ms", r->sealed_ms);
	jsonw_u64(w, "reads", r->reads);
	jsonw_u64(w, "images", r->images);
	jsonw_u64(w, "bytes", r->bytes);
	jsonw_str(w, "ciphertext_sha256", r->ciphertext_sha256);
	jsonw_u64(w, "ingest_record", r->record_seq);
	if (r->purged)
		jsonw_u64(w, "purged_ms", r->purged_ms);
	jsonw_obj_close(w);
}

struct list_ctx {
	struct jsonw w;
	int json;
	unsigned n;
};

static int list_one(void *arg, const struct bundle_row *r)
{
	struct list_ctx *c = arg;
	char t[32];

	c->n++;
	if (c->json) {
		row_json(&c->w, r);
		return 0;
	}
	if (c->n == 1)
		printf("%-64s  %-20s %-7s %8s %8s %s\n", "BUNDLE", "CASE", "STATE", "READS", "IMAGES",
		       "SEALED");
	cli_fmt_time(r->sealed_ms, t);
	printf("%-64s  %-20s %-7s %8" PRIu64 " %8" PRIu64 " %s\n", r->id, r->case_id,
	       r->purged ? "purged" : "sealed", r->reads, r->images, t);
	return 0;
}

static int null_begin(void *arg, uint32_t no, const char *path, struct sbx_err *e)
{
	uint64_t *items = arg;

	(*items)++;
	return 0;
}

static int null_data(void *arg, uint32_t no, const uint8_t *p, size_t n, struct sbx_err *e)
{
	return 0;
}

static int verify_on_box(struct box *b, const struct cli *g, const char *id, int decrypt,
                         const char *operator_id, struct sbx_err *e)
{
	struct bundle_row row;
	struct bundle *bd = NULL;
	struct bundle_report rep;
	struct bundle_verify_opts o = { 0 };
	struct bundle_item_sink sink = { 0 };
	uint8_t cek[32], bid[32];
	uint64_t items = 0;
	char path[4400], hex[65];
	int r;

	memset(cek, 0, sizeof cek);
	r = bundles_get(b, id, &row, e);
	if (r != 0)
		return r;
	if (row.purged)
		return sbx_fail(e, SBX_ENOENT, "bundle %s was purged: its key no longer exists", id);
	bundles_path(b, id, path, sizeof path);
	r = bundle_open(path, &bd, e);
	if (r != 0)
		goto out;
	bundle_id(bd, bid);
	hash_hex(bid, 32, hex);
	if (strcmp(hex, id) != 0) {
		r = sbx_fail(e, SBX_EINTEGRITY, "the file for bundle %s holds bundle %s", id, hex);
		goto out;
	}
	o.pinned = &b->id;
	r = bundle_verify(bd, &o, &rep, e);
	if (r != 0)
		goto out;
	if (decrypt) {
		struct logrec *rec = calloc(1, sizeof *rec);

		if (rec == NULL) {
			r = SBX_ENOMEM;
			goto out;
		}
		snprintf(rec->event, sizeof rec->event, "view");
		snprintf(rec->outcome, sizeof rec->outcome, "ok");
		snprintf(rec->operator_id, sizeof rec->operator_id, "%s", operator_id);
		snprintf(rec->case_id, sizeof rec->case_id, "%s", row.case_id);
		snprintf(rec->bundle_id, sizeof rec->bundle_id, "%s", id);
		snprintf(rec->detail, sizeof rec->detail, "action=verify-decrypt");
		/* Looking at evidence is logged before it happens. */
		r = custody_append(b, rec, 0, NULL, NULL, e);
		free(rec);
		if (r != 0)
			goto out;
		r = bundles_unwrap_key(b, id, cek, e);
		if (r != 0)
			goto out;
		sink.arg = &items;
		sink.begin = null_begin;
		sink.data = null_data;
		r = bundle_payload_read(bd, cek, &sink, e);
		if (r != 0)
			goto out;
	}
	if (g->json) {
		struct jsonw w;

		jsonw_init(&w, stdout);
		jsonw_obj_open(&w, NULL);
		jsonw_str(&w, "bundle", id);
		jsonw_bool(&w, "valid", 1);
		jsonw_bool(&w, "decrypted", decrypt);
		if (decrypt)
			jsonw_u64(&w, "items", items);
		jsonw_obj_close(&w);
	} else {
		printf("bundle %s: signature, identity and ciphertext hash ok%s\n", id,
		       decrypt ? "; every chunk and item authenticated" : "");
	}
out:
	OPENSSL_cleanse(cek, sizeof cek);
	bundle_close(bd);
	return r;
}

static int export_bundle(struct box *b, const char *id, const char *dir, struct sbx_err *e)
{
	struct bundle_row row;
	uint8_t *cust = NULL;
	size_t clen = 0;
	char src[4400], dst[4400];
	int r;

	r = bundles_get(b, id, &row, e);
	if (r != 0)
		return r;
	if (row.purged)
		return sbx_fail(e, SBX_ENOENT, "bundle %s was purged", id);
	r = bundles_custody(b, id, &cust, &clen, e);
	if (r != 0)
		goto out;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		r = sbx_fail(e, SBX_EIO, "cannot create %s: %s", dir, strerror(errno));
		goto out;
	}
	bundles_path(b, id, src, sizeof src);
	snprintf(dst, sizeof dst, "%s/%s.sbx", dir, id);
	r = atomic_copy_file(src, dst, 0444, e);
	if (r != 0)
		goto out;
	snprintf(dst, sizeof dst, "%s/%s.custody", dir, id);
	r = atomic_write_file(dst, cust, clen, 0444, e);
out:
	free(cust);
	return r;
}

int cmd_bundle(int argc, char **argv, struct cli *g)
{
	static const struct option opts[] = {
		{ "case",     required_argument, NULL, 'c' },
		{ "out",      required_argument, NULL, 'O' },
		{ "operator", required_argument, NULL, 'o' },
		{ "decrypt",  no_argument,       NULL, 'd' },
		{ "state",    required_argument, NULL, CLI_OPT_STATE },
		{ "tcti",     required_argument, NULL, CLI_OPT_TCTI },
		{ "json",     no_argument,       NULL, CLI_OPT_JSON },
		{ "help",     no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *verb, *case_id = NULL, *out_dir = NULL, *operator_id = NULL, *id = NULL;
	struct sbx_err e = { 0 };
	struct box *b = NULL;
	unsigned flags = 0;
	int c, r, decrypt = 0, is_list, is_export;
	static char prog[64];

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return usage(argc < 2 ? stderr : stdout);
	verb = argv[1];
	snprintf(prog, sizeof prog, "sealbox bundle %s", verb);
	g->prog = prog;
	if (strcmp(verb, "list") != 0 && strcmp(verb, "show") != 0 && strcmp(verb, "export") != 0 &&
	    strcmp(verb, "verify") != 0)
		return cli_unknown_verb("bundle", verb);
	optind = 0;
	while ((c = getopt_long(argc - 1, argv + 1, ":h", opts, NULL)) != -1) {
		if (cli_common_opt(g, c, optarg))
			continue;
		switch (c) {
		case 'c': case_id = optarg; break;
		case 'O': out_dir = optarg; break;
		case 'o': operator_id = optarg; break;
		case 'd': decrypt = 1; break;
		case 'h': return usage(stdout);
		default:  return cli_opt_error(g, c, argv + 1);
		}
	}
	/* Decided once, so that the checks below (id and out_dir set) and
	 * their uses visibly agree. */
	is_list = strcmp(verb, "list") == 0;
	is_export = strcmp(verb, "export") == 0;
	if (!is_list) {
		uint8_t tmp[32];

		if (optind >= argc - 1)
			return cli_usage(g, "missing bundle ID");
		id = argv[1 + optind++];
		if (hash_unhex(id, tmp, 32) != 0 || strspn(id, "0123456789abcdef") != 64)
			return cli_usage(g, "'%s' is not a bundle id (64 lower-case hex digits)", id);
	}
	if (optind != argc - 1)
		return cli_usage(g, "unexpected argument '%s'", argv[1 + optind]);
	if (is_export && out_dir == NULL)
		return cli_usage(g, "missing --out DIR");
	if (decrypt && operator_id == NULL)
		return cli_usage(g, "--decrypt needs --operator ID (it is logged)");
	if (operator_id != NULL && !cli_valid_operator(operator_id))
		return cli_usage(g, "invalid operator id '%s'", operator_id);
	if (case_id != NULL && !cli_valid_case(case_id))
		return cli_usage(g, "invalid case id '%s'", case_id);
	cli_env_defaults(g);
	if (decrypt) {
		if (g->tcti == NULL || *g->tcti == '\0')
			return cli_usage(g, "no TPM given: pass --tcti or set SEALBOX_TCTI");
		flags = BOX_TPM | BOX_WRITE;
	}
	r = box_open(g->state, g->tcti, flags, &b, &e);
	if (r != 0)
		goto out;
	if (is_list) {
		struct list_ctx lc = { .json = g->json };

		jsonw_init(&lc.w, stdout);
		if (g->json)
			jsonw_arr_open(&lc.w, NULL);
		r = bundles_foreach(b, case_id, list_one, &lc, &e);
		if (g->json)
			jsonw_arr_close(&lc.w);
		else if (r == 0 && lc.n == 0)
			printf("no bundles\n");
	} else if (!strcmp(verb, "show")) {
		struct bundle_row row;

		r = bundles_get(b, id, &row, &e);
		if (r == 0 && g->json) {
			struct jsonw w;

			jsonw_init(&w, stdout);
			row_json(&w, &row);
		} else if (r == 0) {
			char t[32];

			cli_fmt_time(row.sealed_ms, t);
			printf("bundle:     %s\ncase:       %s\nstate:      %s\nsealed:     %s\n"
			       "reads:      %" PRIu64 "\nimages:     %" PRIu64 "\nbytes:      %" PRIu64
			       "\nciphertext: sha256 %s\n", row.id, row.case_id,
			       row.purged ? "purged (key destroyed, file deleted)" : "sealed", t,
			       row.reads, row.images, row.bytes, row.ciphertext_sha256);
		}
	} else if (is_export) {
		r = export_bundle(b, id, out_dir, &e);
		if (r == 0)
			printf("%s/%s.sbx\n%s/%s.custody\n", out_dir, id, out_dir, id);
	} else {
		r = verify_on_box(b, g, id, decrypt, operator_id ? operator_id : "", &e);
	}
out:
	box_close(b);
	return r == 0 ? CLI_EXIT_OK : cli_fail(g, &e, r);
}

/* sealbox-verify: the auditor's verifier.  Checks evidence bundles, their
 * custody files and the box's custody-log export, offline, with no secret
 * and without decrypting anything.  See sealbox-verify(1), docs/VERIFY.md.
 * Links only the core library (OpenSSL, libarchive, libc). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "crypto/err.h"
#include "crypto/hash.h"
#include "export/bundle.h"
#include "export/fileio.h"
#include "export/identity.h"
#include "export/jsonw.h"
#include "export/logexport.h"
#include "export/logrec.h"
#include "export/release.h"
#include "export/verify_link.h"
#include "export/verify_report.h"

#ifndef SBX_VERSION
#define SBX_VERSION "unknown"
#endif

/* Exit codes: a contract, documented in sealbox-verify(1). */
enum { EXIT_VALID = 0, EXIT_INVALID = 1, EXIT_USAGE = 2 };

#define PROG "sealbox-verify"
/* Generous caps on what is read into memory; the formats' own caps are
 * far below these except for the log export. */
#define MAX_POLICY_FILE   (1u << 20)
#define MAX_CUSTODY_FILE  (8u << 20)
#define MAX_EXPORT_FILE   ((uint64_t)1 << 36)

struct opts {
	const char *identity, *ek_ca, *policy, *log, *since, *custody;
	int json, quiet;
	char **bundles;
	int n_bundles;
};

/* What the auditor supplied, loaded and checked once. */
struct inputs {
	uint8_t *identity_bytes;
	size_t identity_len;
	struct identity pinned;
	uint8_t policy_hash[32];
	uint8_t *log, *since;
	size_t log_len, since_len;
	uint64_t log_records;           /* the export's, once it verified */
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: " PROG " [BUNDLE...] [--identity FILE] [--ek-ca CA.pem] [--policy FILE]\n"
	        "                      [--log EXPORT [--since OLDER-EXPORT]] [--custody FILE]\n"
	        "                      [--json] [--quiet] [--help] [--version]\n"
	        "\n"
	        "Verifies sealbox evidence bundles (X.sbx, with the custody file X.custody beside\n"
	        "it when present) and the box's custody-log export, offline.  Never needs a\n"
	        "secret; never decrypts.\n"
	        "\n"
	        "  --identity FILE   the box's identity file pinned at installation\n"
	        "                    ('sealbox identity --out FILE'); bundles and the log must\n"
	        "                    come from that box\n"
	        "  --ek-ca CA.pem    check the TPM's EK certificate chain against this CA\n"
	        "  --policy FILE     the policy expected in force: its SHA-256 must be the\n"
	        "                    bundles' policy hash\n"
	        "  --log EXPORT      verify this log export ('sealbox log export') and tie each\n"
	        "                    bundle's custody to it\n"
	        "  --since OLDER     an earlier export of the same box that EXPORT must extend\n"
	        "  --custody FILE    the custody file of the one BUNDLE given\n"
	        "  --json            one JSON document on stdout\n"
	        "  --quiet           print only the VALID/INVALID lines\n"
	        "\n"
	        "Exit status: 0 everything valid, 1 something invalid, 2 usage or I/O error.\n"
	        "See sealbox-verify(1) and docs/VERIFY.md.\n");
}

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see '" PROG " --help')\n", stderr);
	return EXIT_USAGE;
}

static int io_error(const struct sbx_err *e)
{
	fputs(PROG ": ", stderr);
	vr_print_safe(stderr, e->msg);
	fputc('\n', stderr);
	return EXIT_USAGE;
}


static int readable(const char *path, struct sbx_err *e)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return sbx_fail(e, SBX_EIO, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return sbx_fail(e, SBX_EIO, "%s: not a regular file", path);
	}
	close(fd);
	return 0;
}

/* The CA file is read again by identity_check; here only so that a wrong
 * path is a usage error and not an invalid bundle. */
static int check_ca_file(const char *path, struct sbx_err *e)
{
	FILE *f;
	X509 *x;
	int r;

	r = readable(path, e);
	if (r != 0)
		return r;
	f = fopen(path, "re");
	if (f == NULL)
		return sbx_fail(e, SBX_EIO, "%s: %s", path, strerror(errno));
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	ERR_clear_error();
	if (x == NULL)
		return sbx_fail(e, SBX_EFORMAT, "--ek-ca %s: no PEM certificate in it", path);
	X509_free(x);
	return 0;
}

static int load_inputs(const struct opts *o, struct inputs *in, struct sbx_err *e)
{
	uint8_t *policy = NULL;
	size_t policy_len = 0;
	int r;

	if (o->identity != NULL) {
		r = fileio_read(o->identity, BUNDLE_MAX_IDENTITY, &in->identity_bytes,
		              &in->identity_len, e);
		if (r != 0)
			return r;
		if (identity_decode(in->identity_bytes, in->identity_len, &in->pinned) != 0)
			return sbx_fail(e, SBX_EFORMAT, "--identity %s: not a sealbox identity file"
			                " (write one with 'sealbox identity --out FILE')", o->identity);
	}
	if (o->ek_ca != NULL && (r = check_ca_file(o->ek_ca, e)) != 0)
		return r;
	if (o->policy != NULL) {
		r = fileio_read(o->policy, MAX_POLICY_FILE, &policy, &policy_len, e);
		if (r != 0)
			return r;
		r = hash_sha256(policy, policy_len, in->policy_hash);
		free(policy);
		if (r != 0)
			return sbx_fail(e, SBX_ECRYPTO, "hashing %s failed", o->policy);
	}
	if (o->log != NULL && (r = fileio_read(o->log, MAX_EXPORT_FILE, &in->log, &in->log_len, e)) != 0)
		return r;
	if (o->since != NULL &&
	    (r = fileio_read(o->since, MAX_EXPORT_FILE, &in->since, &in->since_len, e)) != 0)
		return r;
	if (o->custody != NULL && (r = readable(o->custody, e)) != 0)
		return r;
	for (int i = 0; i < o->n_bundles; i++)
		if ((r = readable(o->bundles[i], e)) != 0)
			return r;
	return 0;
}

static void verify_log(const struct opts *o, const struct inputs *in, struct vr_log *l)
{
	struct logexport_opts lo = { 0 };
	struct sbx_err e = { 0 };

	memset(l, 0, sizeof *l);
	l->path = o->log;
	l->since = o->since;
	lo.pin_identity = in->identity_bytes;
	lo.pin_identity_len = in->identity_len;
	lo.ek_ca_pem = o->ek_ca;
	lo.older = in->since;
	lo.older_len = in->since_len;
	lo.keep_going = 1;
	l->rc = logexport_verify(in->log, in->log_len, &lo, &l->rep, &e);
	l->ran = 1;
	if (l->rc != 0)
		snprintf(l->why, sizeof l->why, "%s", e.msg[0] ? e.msg : sbx_strerror(l->rc));
}

/* Turns bundle_verify's report into the checks.  bundle_verify runs every
 * check in this same order and keeps the first failure's message, so that
 * message is the reason of the first check that failed; the others get
 * ours. */
static void map_report(struct vr_bundle *vb, const struct bundle_report *rep,
                       const struct sbx_err *e, const struct opts *o)
{
	vb->identity = rep->identity;
	vb->identity_checked = 1;
	if (vr_map_identity(rep, o->ek_ca, o->identity, e->msg, &vb->check[VR_SIGNATURE],
	                    &vb->check[VR_IDENTITY], &vb->check[VR_EK_CHAIN], &vb->check[VR_PIN]))
		e = NULL;
	vr_set_ciphertext(&vb->check[VR_CIPHERTEXT], rep->ciphertext_ok, vb->m.ciphertext_bytes);
	if (o->policy == NULL)
		vr_set(&vb->check[VR_POLICY], VR_NOT_RUN, "no --policy given");
	else if (rep->policy_ok > 0)
		vr_set(&vb->check[VR_POLICY], VR_PASS, "the policy hash is SHA-256 of %s", o->policy);
	else
		vr_set(&vb->check[VR_POLICY], VR_FAIL, "sealed under another policy than %s", o->policy);
	/* The first failure's message belongs to the first of the later checks
	 * that failed, unless an earlier one took it. */
	if (e == NULL || e->msg[0] == '\0')
		return;
	if (vb->check[VR_CIPHERTEXT].status == VR_FAIL)
		vr_set(&vb->check[VR_CIPHERTEXT], VR_FAIL, "%s", e->msg);
	else if (vb->check[VR_POLICY].status == VR_FAIL)
		vr_set(&vb->check[VR_POLICY], VR_FAIL, "%s", e->msg);
}

static void verify_custody(struct vr_bundle *vb, const struct bundle *b, const char *path,
                           const struct opts *o, const struct inputs *in, int log_ok)
{
	struct bundle_custody *c = NULL;
	struct sth head;
	struct sbx_err e = { 0 };
	uint8_t *buf = NULL;
	size_t len = 0;
	char what[320];
	int r;

	vb->custody_path = path;
	vr_set(&vb->check[VR_LOG_HEAD], VR_NOT_RUN, "the custody file did not verify");
	vr_set(&vb->check[VR_LOG_RECORDS], VR_NOT_RUN, "the custody file did not verify");
	r = fileio_read(path, MAX_CUSTODY_FILE, &buf, &len, &e);
	if (r == SBX_EIO) {
		vb->io_error = 1;
		snprintf(vb->io_why, sizeof vb->io_why, "%s", e.msg);
		goto out;
	}
	c = calloc(1, sizeof *c);
	if (c == NULL) {
		vr_set(&vb->check[VR_CUSTODY], VR_FAIL, "out of memory");
		goto out;
	}
	if (r != 0 || bundle_custody_decode(buf, len, c, &e) != 0) {
		vr_set(&vb->check[VR_CUSTODY], VR_FAIL, "%s", e.msg);
		goto out;
	}
	vb->custody_decoded = 1;
	vb->n_custody = c->n;
	if (sth_decode(c->head, STH_ENCODED_LEN, &vb->head) != 0)
		memset(&vb->head, 0, sizeof vb->head);
	r = bundle_custody_verify(b, c, &head, &e);
	if (r != 0) {
		vr_set(&vb->check[VR_CUSTODY], VR_FAIL, "%s", e.msg);
		goto out;
	}
	vb->head = head;
	/* Where the box's signed custody file places this bundle's sealing
	 * (bundle_custody_verify checked each record names the bundle). */
	{
		struct logrec *lr = malloc(sizeof *lr);

		for (size_t k = 0; lr != NULL && k < c->n; k++)
			if (logrec_decode(c->rec[k].record, c->rec[k].record_len, lr) == 0 &&
			    strcmp(lr->event, "ingest") == 0 && strcmp(lr->outcome, "ok") == 0) {
				vb->ingest_leaf = c->rec[k].leaf_index;
				vb->have_ingest_leaf = 1;
				break;
			}
		free(lr);
	}
	vr_set(&vb->check[VR_CUSTODY], VR_PASS, "%zu record%s of this bundle, each in the log's tree"
	       " under a tree head of %" PRIu64 " records signed by the box (counter %" PRIu64 ")",
	       c->n, c->n == 1 ? "" : "s", head.tree_size, head.counter);
	if (o->log == NULL)
		goto out;
	if (!log_ok) {
		vr_set(&vb->check[VR_LOG_HEAD], VR_NOT_RUN, "the log export did not verify");
		vr_set(&vb->check[VR_LOG_RECORDS], VR_NOT_RUN, "the log export did not verify");
		goto out;
	}
	sbx_err_clear(&e);
	r = vlink_head(in->log, in->log_len, c->head, what, sizeof what, &e);
	if (r == SBX_ESTATE) {
		size_t beyond = 0;

		/* `log export` records itself after writing the file, so a custody
		 * file exported later is always newer: a matter of order, not of
		 * evidence.  The report says what to fetch; the records the
		 * export does hold are still compared. */
		vb->custody_newer = 1;
		vr_set(&vb->check[VR_LOG_HEAD], VR_NOT_RUN, "%s", e.msg);
		sbx_err_clear(&e);
		if (vlink_records(in->log, in->log_len, c, 1, &beyond, what, sizeof what, &e) != 0)
			vr_set(&vb->check[VR_LOG_RECORDS], VR_FAIL, "%s", e.msg);
		else
			vr_set(&vb->check[VR_LOG_RECORDS], VR_NOT_RUN, "%s; %zu newer than the log export"
			       " not compared", what, beyond);
		goto out;
	}
	if (r == 0)
		vr_set(&vb->check[VR_LOG_HEAD], VR_PASS, "%s", what);
	else
		vr_set(&vb->check[VR_LOG_HEAD], VR_FAIL, "%s", e.msg);
	sbx_err_clear(&e);
	if (vlink_records(in->log, in->log_len, c, 0, &(size_t){ 0 }, what, sizeof what, &e) == 0)
		vr_set(&vb->check[VR_LOG_RECORDS], VR_PASS, "%s", what);
	else
		vr_set(&vb->check[VR_LOG_RECORDS], VR_FAIL, "%s", e.msg);
out:
	if (c != NULL)
		bundle_custody_free(c);
	free(c);
	free(buf);
}

/* An auditor's likeliest mistake is a file of another sealbox kind given as
 * BUNDLE: its magic says which, and where it goes.  NULL for anything else. */
static const char *other_kind(const char *path)
{
	static const struct { char magic[5]; const char *what; } kinds[] = {
		{ "SBXL", "this is a custody-log export, not a bundle: pass it with --log" },
		{ "SBXC", "this is a custody file, not a bundle: put it beside its bundle as"
		          " <id>.custody, or pass it with --custody" },
		{ "SBXI", "this is an identity file, not a bundle: pass it with --identity" },
		{ RELEASE_MAGIC, "this is a release file, not a bundle: sealbox-verify checks the"
		                 " .sbx beside it; sealbox-open reads the release" },
	};
	uint8_t head[4];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

	if (fd < 0)
		return NULL;
	n = read(fd, head, sizeof head);
	close(fd);
	if (n != (ssize_t)sizeof head)
		return NULL;
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (memcmp(head, kinds[i].magic, 4) == 0)
			return kinds[i].what;
	return NULL;
}

static void verify_bundle(struct vr_bundle *vb, const struct opts *o, const struct inputs *in,
                          int log_ok)
{
	struct bundle *b = NULL;
	struct bundle_verify_opts bo = { 0 };
	struct bundle_report rep;
	struct sbx_err e = { 0 };
	char *custody = NULL, what[320];
	struct stat st;
	int r;

	r = bundle_open(vb->path, &b, &e);
	if (r == SBX_EIO) {
		vb->io_error = 1;
		snprintf(vb->io_why, sizeof vb->io_why, "%s", e.msg);
		goto out;
	}
	if (r != 0) {
		/* The container is read first, then the manifest parsed (its
		 * messages start "manifest:"), then the rest. */
		int stage = strncmp(e.msg, "manifest:", 9) == 0 ? VR_MANIFEST : VR_CONTAINER;
		const char *hint = stage == VR_CONTAINER ? other_kind(vb->path) : NULL;

		if (stage == VR_MANIFEST)
			vr_set(&vb->check[VR_CONTAINER], VR_PASS, "four entries, names, types and sizes"
			       " as FORMAT.md section 2 says");
		vr_set(&vb->check[stage], VR_FAIL, "%s", hint != NULL ? hint : e.msg);
		for (int c = stage + 1; c < VR_N_CHECKS; c++)
			vr_set(&vb->check[c], VR_NOT_RUN, "the bundle does not open");
		goto out;
	}
	vb->opened = 1;
	bundle_id(b, vb->id);
	vb->m = *bundle_manifest(b);
	vr_set(&vb->check[VR_CONTAINER], VR_PASS, "pax tar with exactly manifest.json,"
	       " manifest.sig, identity.sbxi, payload.enc; nothing after");
	vr_set(&vb->check[VR_MANIFEST], VR_PASS, "canonical, format version %u", vb->m.version);
	vr_check_file_name(&vb->check[VR_NAME], vb->path, vb->id);

	bo.pinned = o->identity != NULL ? &in->pinned : NULL;
	bo.ek_ca_pem = o->ek_ca;
	bo.policy_hash = o->policy != NULL ? in->policy_hash : NULL;
	memset(&rep, 0, sizeof rep);
	rep.policy_ok = -1;
	r = bundle_verify(b, &bo, &rep, &e);
	if (r == SBX_EIO) {
		vb->io_error = 1;
		snprintf(vb->io_why, sizeof vb->io_why, "%s", e.msg);
		goto out;
	}
	map_report(vb, &rep, &e, o);

	if (o->custody != NULL) {
		verify_custody(vb, b, o->custody, o, in, log_ok);
	} else {
		custody = vr_sibling_path(vb->path, ".custody");
		if (custody != NULL && stat(custody, &st) == 0) {
			/* The report keeps the path: hand it to the bundle's record. */
			verify_custody(vb, b, custody, o, in, log_ok);
			custody = NULL; /* transferred */
		} else {
			vr_set(&vb->check[VR_CUSTODY], VR_NOT_RUN, "no custody file beside the bundle"
			       " ('sealbox bundle export' writes <id>.custody)");
		}
	}
	if (o->log != NULL && vb->custody_path == NULL) {
		vr_set(&vb->check[VR_LOG_HEAD], VR_NOT_RUN, "no custody file");
		vr_set(&vb->check[VR_LOG_RECORDS], VR_NOT_RUN, "no custody file");
	}
	if (o->log == NULL) {
		vr_set(&vb->check[VR_LOG_HEAD], VR_NOT_RUN, "no --log given");
		vr_set(&vb->check[VR_LOG_RECORDS], VR_NOT_RUN, "no --log given");
		vr_set(&vb->check[VR_LOG_INGEST], VR_NOT_RUN, "no --log given");
	} else if (!log_ok) {
		vr_set(&vb->check[VR_LOG_INGEST], VR_NOT_RUN, "the log export did not verify");
	} else {
		sbx_err_clear(&e);
		r = vlink_ingest(in->log, in->log_len, vb->id, &vb->m, what, sizeof what, &e);
		if (r == 0)
			vr_set(&vb->check[VR_LOG_INGEST], VR_PASS, "%s", what);
		else if (r == SBX_ENOENT && vb->custody_newer && vb->have_ingest_leaf &&
		         vb->ingest_leaf >= in->log_records)
			/* Only when the box's signed custody file, newer than the
			 * export and not behind it, holds the bundle's ingest record
			 * past the export's end: an older export, not a missing
			 * record.  Any other failure is a contradiction. */
			vr_set(&vb->check[VR_LOG_INGEST], VR_NOT_RUN, "the bundle was sealed after this"
			       " export (its ingest record is leaf %" PRIu64 ", the export holds %" PRIu64
			       " records): verify against a newer export", vb->ingest_leaf,
			       in->log_records);
		else
			vr_set(&vb->check[VR_LOG_INGEST], VR_FAIL, "%s", e.msg);
	}
out:
	free(custody);
	bundle_close(b);
}

static int parse_args(int argc, char **argv, struct opts *o, int *done)
{
	enum { O_IDENTITY = 0x100, O_EKCA, O_POLICY, O_LOG, O_SINCE, O_CUSTODY, O_JSON,
	       O_QUIET, O_HELP, O_VERSION };
	static const struct option lo[] = {
		{ "identity", required_argument, NULL, O_IDENTITY },
		{ "ek-ca",    required_argument, NULL, O_EKCA },
		{ "policy",   required_argument, NULL, O_POLICY },
		{ "log",      required_argument, NULL, O_LOG },
		{ "since",    required_argument, NULL, O_SINCE },
		{ "custody",  required_argument, NULL, O_CUSTODY },
		{ "json",     no_argument,       NULL, O_JSON },
		{ "quiet",    no_argument,       NULL, O_QUIET },
		{ "help",     no_argument,       NULL, O_HELP },
		{ "version",  no_argument,       NULL, O_VERSION },
		{ NULL, 0, NULL, 0 }
	};
	const char **slot;
	int c;

	*done = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hqV", lo, NULL)) != -1) {
		slot = NULL;
		switch (c) {
		case O_IDENTITY: slot = &o->identity; break;
		case O_EKCA:     slot = &o->ek_ca; break;
		case O_POLICY:   slot = &o->policy; break;
		case O_LOG:      slot = &o->log; break;
		case O_SINCE:    slot = &o->since; break;
		case O_CUSTODY:  slot = &o->custody; break;
		case O_JSON:     o->json = 1; break;
		case 'q':
		case O_QUIET:    o->quiet = 1; break;
		case 'h':
		case O_HELP:
			usage(stdout);
			*done = 1;
			return EXIT_VALID;
		case 'V':
		case O_VERSION:
			printf(PROG " %s\n", SBX_VERSION);
			*done = 1;
			return EXIT_VALID;
		case ':':
			return usage_error("option '%s' needs an argument", argv[optind - 1]);
		default:
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
		if (slot != NULL) {
			if (*slot != NULL)
				return usage_error("option '%s' given twice", argv[optind - 1]);
			if (optarg[0] == '\0')
				return usage_error("option '%s' needs a non-empty argument",
				                   argv[optind - 1]);
			*slot = optarg;
		}
	}
	o->bundles = argv + optind;
	o->n_bundles = argc - optind;
	if (o->since != NULL && o->log == NULL)
		return usage_error("--since needs --log");
	if (o->n_bundles == 0 && o->log == NULL)
		return usage_error("nothing to verify: give a BUNDLE or --log EXPORT");
	if (o->custody != NULL && o->n_bundles != 1)
		return usage_error("--custody needs exactly one BUNDLE");
	return EXIT_VALID;
}

/* The last line: the verdict on everything, and which part failed. */
static void print_summary(const struct opts *o, const struct vr_log *l, const struct vr_bundle *vb,
                          int io, int valid)
{
	int bad = 0, untied = 0;

	for (int i = 0; i < o->n_bundles; i++)
		bad += !vr_bundle_valid(&vb[i]);
	fputs(io ? "ERROR (incomplete): " : valid ? "VALID: " : "INVALID: ", stdout);
	if (o->n_bundles > 0 && (valid || io))
		printf("%d bundle%s", o->n_bundles, o->n_bundles == 1 ? "" : "s");
	else if (o->n_bundles > 0 && bad == 0)
		printf("%d bundle%s valid", o->n_bundles, o->n_bundles == 1 ? "" : "s");
	else if (o->n_bundles > 0)
		printf("%d of %d bundle%s invalid", bad, o->n_bundles, o->n_bundles == 1 ? "" : "s");
	if (o->log == NULL) {
		fputc('\n', stdout);
		return;
	}
	for (int i = 0; i < o->n_bundles; i++)
		untied += vb[i].custody_newer;
	if (o->n_bundles == 0)
		puts("the log export");
	else if ((valid || io) && untied > 0)
		printf(" and the log export (%d not tied to it: custody file%s newer than the"
		       " export)\n", untied, untied == 1 ? "" : "s");
	else if (valid || io)
		puts(" and the log export");
	else
		printf("; the log export is %s\n", vr_log_valid(l) ? "valid" : "INVALID");
}

static void print_json(const struct opts *o, const struct inputs *in, const struct vr_log *l,
                       const struct vr_bundle *vb, int valid)
{
	struct jsonw w;

	jsonw_init(&w, stdout);
	jsonw_obj_open(&w, NULL);
	jsonw_str(&w, "program", PROG);
	jsonw_str(&w, "version", SBX_VERSION);
	jsonw_bool(&w, "valid", valid);
	jsonw_obj_open(&w, "pinned");
	if (o->identity != NULL)
		jsonw_hex(&w, "appliance_id", in->pinned.appliance_id, 32);
	else
		jsonw_null(&w, "appliance_id");
	jsonw_bool(&w, "ek_ca", o->ek_ca != NULL);
	if (o->policy != NULL)
		jsonw_hex(&w, "policy_hash", in->policy_hash, 32);
	else
		jsonw_null(&w, "policy_hash");
	jsonw_obj_close(&w);
	if (o->log != NULL)
		vr_json_log(&w, "log", l);
	else
		jsonw_null(&w, "log");
	jsonw_arr_open(&w, "bundles");
	for (int i = 0; i < o->n_bundles; i++)
		vr_json_bundle(&w, &vb[i]);
	jsonw_arr_close(&w);
	jsonw_obj_close(&w);
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	struct inputs in = { 0 };
	struct sbx_err e = { 0 };
	struct vr_bundle *vb = NULL;
	struct vr_log *l = NULL;
	int rc, done, valid = 1, io = 0, log_ok = 0;

	rc = parse_args(argc, argv, &o, &done);
	if (rc != EXIT_VALID || done)
		goto out;
	if (load_inputs(&o, &in, &e) != 0) {
		rc = io_error(&e);
		goto out;
	}
	vb = calloc((size_t)o.n_bundles + 1, sizeof *vb);
	l = calloc(1, sizeof *l);
	if (vb == NULL || l == NULL) {
		fputs(PROG ": out of memory\n", stderr);
		rc = EXIT_USAGE;
		goto out;
	}
	if (o.log != NULL) {
		verify_log(&o, &in, l);
		log_ok = vr_log_valid(l);
		in.log_records = l->rep.records;
		valid = valid && log_ok;
	}
	for (int i = 0; i < o.n_bundles; i++) {
		vr_bundle_init(&vb[i], o.bundles[i]);
		verify_bundle(&vb[i], &o, &in, log_ok);
		io = io || vb[i].io_error;
		valid = valid && vr_bundle_valid(&vb[i]);
	}
	if (o.json) {
		print_json(&o, &in, l, vb, valid);
	} else {
		if (o.log != NULL) {
			vr_print_log(stdout, l, o.quiet);
			if (!o.quiet)
				fputc('\n', stdout);
		}
		for (int i = 0; i < o.n_bundles; i++) {
			vr_print_bundle(stdout, &vb[i], o.quiet);
			if (!o.quiet)
				fputc('\n', stdout);
		}
		print_summary(&o, l, vb, io, valid);
	}
	for (int i = 0; i < o.n_bundles; i++)
		if (vb[i].io_error) {
			fputs(PROG ": ", stderr);
			vr_print_safe(stderr, vb[i].io_why);
			fputc('\n', stderr);
		}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, PROG ": writing the report failed: %s\n", strerror(errno));
		rc = EXIT_USAGE;
		goto out;
	}
	rc = io ? EXIT_USAGE : valid ? EXIT_VALID : EXIT_INVALID;
out:
	if (vb != NULL)
		for (int i = 0; i < o.n_bundles; i++)
			if (vb[i].custody_path != NULL && vb[i].custody_path != o.custody)
				free((char *)vb[i].custody_path);
	free(vb);
	free(l);
	free(in.identity_bytes);
	free(in.log);
	free(in.since);
	return rc;
}

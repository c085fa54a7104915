/* sealbox-open: the recipient's importer.  Verifies released evidence
 * bundles completely, then decrypts them with the recipient's private key
 * into a staging directory next to the output directory, and moves the
 * result into place only when every check of every bundle passed.  See
 * sealbox-open(1) and docs/RECIPIENTS.md.  Links only the core library
 * (OpenSSL, libarchive, libc).
 *
 * One pass over the ciphertext: phase 1 checks everything but payload.enc's
 * hash, phase 2 hashes payload.enc while decrypting it (a worker thread
 * hashes while this one decrypts) and the item hashes the payload reader
 * computes are the ones verification.json lists.  The ciphertext check thus
 * passes or fails only once the plaintext is in the staging directory;
 * nothing leaves it unless that check passed too (or_bundle_valid on every
 * bundle right before the commit). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "crypto/err.h"
#include "crypto/hash.h"
#include "crypto/wrap.h"
#include "crypto/x509fp.h"
#include "export/bundle.h"
#include "export/fileio.h"
#include "export/identity.h"
#include "export/keyfile.h"
#include "export/logrec.h"
#include "export/open_report.h"
#include "export/progress.h"
#include "export/release.h"
#include "export/staging.h"
#include "export/verify_report.h"

#ifndef SBX_VERSION
#define SBX_VERSION "unknown"
#endif

/* Exit codes: a contract, documented in sealbox-open(1). */
enum { EXIT_OPENED = 0, EXIT_REFUSED = 1, EXIT_USAGE = 2 };

#define PROG "sealbox-open"
#define MAX_BUNDLES 64

struct opts {
	const char *key, *cert, *out, *pass_file, *identity, *ek_ca;
	int json, quiet;
	char **bundles;
	int n_bundles;
};

/* Everything one run holds; freed in one place. */
struct ctx {
	struct opts o;
	struct identity *pinned;
	EVP_PKEY *priv;
	X509 *cert;                     /* --cert or the PKCS#12's */
	struct staging *stage;
	struct or_run run;
	struct bundle **bd;             /* open bundles, parallel to run.b */
	uint8_t (*cek)[32];             /* unwrapped content keys (wiped) */
	int *have_cek;
	int *ct_pending;                /* ciphertext check not yet run */
	sigset_t watch;                 /* signals that cancel, blocked meanwhile */
	struct progress pg;             /* on a terminal, while decrypting */
	uint64_t pg_done, pg_total;
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: " PROG " BUNDLE... --key KEY --out DIR [--cert CERT.pem]\n"
	        "                    [--passphrase-file FILE] [--identity FILE] [--ek-ca CA.pem]\n"
	        "                    [--json] [--quiet] [--help] [--version]\n"
	        "\n"
	        "Opens sealbox evidence bundles released to you: for each BUNDLE (X.sbx) reads\n"
	        "the release X.release beside it, checks everything (the bundle, the box's\n"
	        "signatures, the release statement, the custody proofs, that the release is\n"
	        "yours, every encrypted chunk and every item's hash), and only then writes the\n"
	        "reads, the images, custody.html and verification.json into DIR.  On any\n"
	        "failure nothing is written and DIR is left as it was.\n"
	        "\n"
	        "  --key KEY         your private key: PEM (passphrase-protected or not) or\n"
	        "                    PKCS#12 (.p12/.pfx, key and certificate)\n"
	        "  --cert CERT.pem   your certificate (PEM or DER); the release must name it\n"
	        "  --out DIR         a new (or empty) directory to create\n"
	        "  --passphrase-file FILE  the key's passphrase (first line); without it you\n"
	        "                    are asked on the terminal when the key needs one\n"
	        "  --identity FILE   the box's identity file: the bundles must come from it\n"
	        "  --ek-ca CA.pem    check the box TPM's EK certificate chain against this CA\n"
	        "  --json            print verification.json on stdout instead of lines\n"
	        "  --quiet           print only the verdict lines\n"
	        "\n"
	        "With one BUNDLE the files go into DIR; with several, into DIR/<bundle id>/,\n"
	        "with one custody.html and verification.json in DIR for all of them.\n"
	        "\n"
	        "Exit status: 0 opened, 1 a check failed (nothing written),\n"
	        "2 usage or I/O error (nothing written).  See sealbox-open(1).\n");
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

static int fatal(const struct sbx_err *e)
{
	fputs(PROG ": ", stderr);
	vr_print_safe(stderr, e->msg[0] ? e->msg : sbx_strerror(e->code));
	fputc('\n', stderr);
	return EXIT_USAGE;
}

static int parse_args(int argc, char **argv, struct opts *o, int *done)
{
	enum { O_KEY = 0x100, O_CERT, O_OUT, O_PASS, O_IDENTITY, O_EKCA, O_JSON, O_QUIET,
	       O_HELP, O_VERSION };
	static const struct option lo[] = {
		{ "key",             required_argument, NULL, O_KEY },
		{ "cert",            required_argument, NULL, O_CERT },
		{ "out",             required_argument, NULL, O_OUT },
		{ "passphrase-file", required_argument, NULL, O_PASS },
		{ "identity",        required_argument, NULL, O_IDENTITY },
		{ "ek-ca",           required_argument, NULL, O_EKCA },
		{ "json",            no_argument,       NULL, O_JSON },
		{ "quiet",           no_argument,       NULL, O_QUIET },
		{ "help",            no_argument,       NULL, O_HELP },
		{ "version",         no_argument,       NULL, O_VERSION },
		{ NULL, 0, NULL, 0 }
	};
	const char **slot;
	int c;

	*done = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hqV", lo, NULL)) != -1) {
		slot = NULL;
		switch (c) {
		case O_KEY:      slot = &o->key; break;
		case O_CERT:     slot = &o->cert; break;
		case O_OUT:      slot = &o->out; break;
		case O_PASS:     slot = &o->pass_file; break;
		case O_IDENTITY: slot = &o->identity; break;
		case O_EKCA:     slot = &o->ek_ca; break;
		case O_JSON:     o->json = 1; break;
		case 'q':
		case O_QUIET:    o->quiet = 1; break;
		case 'h':
		case O_HELP:
			usage(stdout);
			*done = 1;
			return EXIT_OPENED;
		case 'V':
		case O_VERSION:
			printf(PROG " %s\n", SBX_VERSION);
			*done = 1;
			return EXIT_OPENED;
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
	if (o->n_bundles == 0)
		return usage_error("no BUNDLE given");
	if (o->n_bundles > MAX_BUNDLES)
		return usage_error("at most %d bundles at once", MAX_BUNDLES);
	if (o->key == NULL)
		return usage_error("--key KEY is required (your private key)");
	if (o->out == NULL)
		return usage_error("--out DIR is required (a new directory for the opened files)");
	return EXIT_OPENED;
}

/* ---- Files ----------------------------------------------------------------- */


/* ---- The recipient's key ----------------------------------------------------- */

static int load_keys(struct ctx *c, struct sbx_err *e)
{
	X509 *given = NULL;
	int alg = 0, r;

	r = keyfile_load(c->o.key, c->o.pass_file, &c->priv, &c->cert, e);
	if (r != 0)
		return r;
	if (wrap_key_alg(c->priv, &alg, e) != 0)
		return sbx_fail(e, SBX_EINVAL, "--key %s: not a key sealbox releases to (EC P-256,"
		                " P-384 or RSA of 3072 bits or more)", c->o.key);
	if (c->o.cert != NULL) {
		r = keyfile_load_cert(c->o.cert, &given, e);
		if (r != 0)
			return r;
		if (EVP_PKEY_eq(X509_get0_pubkey(given), c->priv) != 1) {
			X509_free(given);
			ERR_clear_error();
			return sbx_fail(e, SBX_EINVAL, "--cert %s does not belong to --key %s (another"
			                " public key)", c->o.cert, c->o.key);
		}
		if (c->cert != NULL && X509_cmp(c->cert, given) != 0) {
			X509_free(given);
			return sbx_fail(e, SBX_EINVAL, "--cert %s is not the certificate in %s",
			                c->o.cert, c->o.key);
		}
		X509_free(c->cert);
		c->cert = given;
	}
	c->run.have_key = 1;
	if (x509fp_spki(c->priv, c->run.key_spki_sha256) != 0)
		return sbx_fail(e, SBX_ECRYPTO, "cannot fingerprint the key");
	if (c->cert != NULL) {
		unsigned char *der = NULL;
		int len = i2d_X509(c->cert, &der);

		r = len > 0 ? release_cert_info(der, (size_t)len, c->run.cert_sha256, c->run.subject,
		                                sizeof c->run.subject, e) : SBX_ECRYPTO;
		OPENSSL_free(der);
		if (r != 0)
			return sbx_fail(e, SBX_EINVAL, "your certificate cannot be read");
		c->run.have_cert = 1;
	}
	ERR_clear_error();
	return 0;
}

/* ---- Phase 1: everything checkable before decrypting ------------------------------ */

/* The bundle checks, named and worded as sealbox-verify words them. */
static void map_bundle_report(struct or_bundle *ob, const struct bundle_report *rep,
                              const struct sbx_err *e, const struct opts *o)
{
	ob->identity = rep->identity;
	ob->identity_checked = 1;
	vr_map_identity(rep, o->ek_ca, o->identity, e->msg, &ob->check[OC_SIGNATURE],
	                &ob->check[OC_IDENTITY], &ob->check[OC_EK_CHAIN], &ob->check[OC_PIN]);
	if (rep->ciphertext_ok < 0)
		vr_set(&ob->check[OC_CIPHERTEXT], VR_NOT_RUN, "checked while decrypting");
	else
		vr_set_ciphertext(&ob->check[OC_CIPHERTEXT], rep->ciphertext_ok, ob->m.ciphertext_bytes);
}

static void not_run_from(struct or_bundle *ob, int from, const char *why)
{
	for (int c = from; c < OC_N_CHECKS; c++)
		if (ob->check[c].status == VR_NOT_RUN && ob->check[c].why[0] == '\0')
			vr_set(&ob->check[c], VR_NOT_RUN, "%s", why);
}

static int failed_before(const struct or_bundle *ob, int upto)
{
	for (int c = 0; c < upto; c++)
		if (ob->check[c].status == VR_FAIL)
			return 1;
	return ob->io_error;
}

/* The custody records, decoded for the reports. */
static void keep_records(struct or_bundle *ob, const struct release_file *rf)
{
	struct bundle_custody *c = calloc(1, sizeof *c);
	struct sbx_err e = { 0 };

	if (c == NULL || bundle_custody_decode(rf->custody, rf->custody_len, c, &e) != 0)
		goto out;
	ob->records = calloc(c->n ? c->n : 1, sizeof *ob->records);
	ob->leaves = calloc(c->n ? c->n : 1, sizeof *ob->leaves);
	if (ob->records == NULL || ob->leaves == NULL)
		goto out;
	for (size_t i = 0; i < c->n; i++) {
		if (logrec_decode(c->rec[i].record, c->rec[i].record_len,
		                  &ob->records[ob->n_records]) != 0)
			continue;
		ob->leaves[ob->n_records++] = c->rec[i].leaf_index;
	}
	if (sth_decode(c->head, STH_ENCODED_LEN, &ob->head) == 0)
		ob->custody_decoded = 1;
out:
	if (c != NULL)
		bundle_custody_free(c);
	free(c);
}

/* release_verify's checks map one to one onto ours. */
_Static_assert(OC_STATEMENT_SIG - OC_RELEASE_BUNDLE == RELEASE_CHK_SIGNATURE &&
               OC_STATEMENT - OC_RELEASE_BUNDLE == RELEASE_CHK_STATEMENT &&
               OC_CERTIFICATE - OC_RELEASE_BUNDLE == RELEASE_CHK_CERT &&
               OC_WRAPPED_KEY - OC_RELEASE_BUNDLE == RELEASE_CHK_WRAPPED &&
               OC_CUSTODY - OC_RELEASE_BUNDLE == RELEASE_CHK_CUSTODY &&
               OC_RECIPIENT - OC_RELEASE_BUNDLE == RELEASE_N_CHECKS,
               "open checks and release checks out of step");

static void check_release(struct ctx *c, size_t i, struct bundle *b)
{
	struct or_bundle *ob = &c->run.b[i];
	struct release_file rf = { 0 };
	struct release_report *rr = NULL;
	struct sbx_err e = { 0 };
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	r = fileio_read(ob->release_path, RELEASE_MAX_FILE, &buf, &len, &e);
	if (r == SBX_EIO) {
		ob->io_error = 1;
		snprintf(ob->io_why, sizeof ob->io_why, "no release beside the bundle: %.470s", e.msg);
		goto out;
	}
	if (r != 0) {
		vr_set(&ob->check[OC_RELEASE_FILE], VR_FAIL, "%s", e.msg);
		goto out;
	}
	ob->release_read = 1;
	ob->release_bytes = len;
	hash_sha256(buf, len, ob->release_sha256);
	r = release_file_decode(buf, len, &rf, &e);
	if (r != 0) {
		vr_set(&ob->check[OC_RELEASE_FILE], VR_FAIL, "%s", e.msg);
		goto out;
	}
	vr_set(&ob->check[OC_RELEASE_FILE], VR_PASS, "%zu bytes, version %d: statement, signature,"
	       " wrapped key, certificate, custody; nothing after", len, RELEASE_VERSION);
	rr = malloc(sizeof *rr);
	if (rr == NULL) {
		vr_set(&ob->check[OC_RELEASE_BUNDLE], VR_FAIL, "out of memory");
		goto out;
	}
	sbx_err_clear(&e);
	release_verify_report(b, &rf, &ob->st, rr, &e);
	ob->statement_parsed = rr->statement_parsed;
	for (int k = 0; k < RELEASE_N_CHECKS; k++) {
		int st = rr->status[k] == RELEASE_PASS ? VR_PASS :
		         rr->status[k] == RELEASE_FAIL ? VR_FAIL : VR_NOT_RUN;

		vr_set(&ob->check[OC_RELEASE_BUNDLE + k], st, "%s", rr->why[k]);
	}
	keep_records(ob, &rf);
	if (rr->custody_decoded)
		ob->head = rr->head;

	sbx_err_clear(&e);
	if (release_match_recipient(&rf, c->cert, c->priv, &e) == 0)
		vr_set(&ob->check[OC_RECIPIENT], VR_PASS, "%s", c->cert != NULL ?
		       "the release names your certificate, and its public key is your key's" :
		       "the release's certificate holds your key's public key");
	else
		vr_set(&ob->check[OC_RECIPIENT], VR_FAIL, "%s", e.msg);

	/* The key touches the wrapped key only once everything else holds. */
	if (failed_before(ob, OC_UNWRAP) || !ob->statement_parsed) {
		vr_set(&ob->check[OC_UNWRAP], VR_NOT_RUN, "not tried: an earlier check failed");
		goto out;
	}
	sbx_err_clear(&e);
	if (release_unwrap(&rf, &ob->st, c->priv, c->cek[i], &e) == 0) {
		c->have_cek[i] = 1;
		vr_set(&ob->check[OC_UNWRAP], VR_PASS, "the content key unwraps with your key under"
		       " this bundle's and certificate's wrap context");
	} else {
		vr_set(&ob->check[OC_UNWRAP], VR_FAIL, "%s", e.msg);
	}
out:
	free(rr);
	release_file_free(&rf);
	free(buf);
}

static void check_public(struct ctx *c, size_t i)
{
	struct or_bundle *ob = &c->run.b[i];
	struct bundle_verify_opts bo = { 0 };
	struct bundle_report rep;
	struct sbx_err e = { 0 };
	const struct identity *id;
	struct bundle *b = NULL;
	int r;

	r = bundle_open(ob->path, &b, &e);
	if (r == SBX_EIO) {
		ob->io_error = 1;
		snprintf(ob->io_why, sizeof ob->io_why, "%s", e.msg);
		goto out;
	}
	if (r != 0) {
		vr_set(&ob->check[OC_CONTAINER], VR_FAIL, "%s", e.msg);
		not_run_from(ob, OC_MANIFEST, "the bundle could not be read");
		goto out;
	}
	ob->opened = 1;
	bundle_id(b, ob->id);
	ob->m = *bundle_manifest(b);
	id = bundle_identity(b);
	for (size_t k = 0; k < id->n_ekcerts && k < 3; k++)
		hash_sha256(id->ekcerts[k].der, id->ekcerts[k].len, ob->ek_sha256[ob->n_ek++]);
	vr_set(&ob->check[OC_CONTAINER], VR_PASS, "pax tar with exactly manifest.json,"
	       " manifest.sig, identity.sbxi, payload.enc; nothing after");
	vr_set(&ob->check[OC_MANIFEST], VR_PASS, "canonical, format version %u", ob->m.version);
	vr_check_file_name(&ob->check[OC_NAME], ob->path, ob->id);

	bo.pinned = c->pinned;
	bo.ek_ca_pem = c->o.ek_ca;
	memset(&rep, 0, sizeof rep);
	rep.policy_ok = -1;
	/* payload.enc is hashed in phase 2, in the pass that decrypts it. */
	r = bundle_verify_deferred(b, &bo, &rep, &e);
	if (r == SBX_EIO) {
		ob->io_error = 1;
		snprintf(ob->io_why, sizeof ob->io_why, "%s", e.msg);
		goto out;
	}
	map_bundle_report(ob, &rep, &e, &c->o);
	check_release(c, i, b);
	c->bd[i] = b;
	b = NULL; /* transferred: phase 2 decrypts it */
	c->ct_pending[i] = rep.ciphertext_ok < 0;
out:
	not_run_from(ob, 0, "not run: an earlier check failed");
	bundle_close(b);
}

/* ---- Phase 2: decrypt into the staging directory --------------------------------- */

struct sink_ctx {
	struct item_writer *w;
	const sigset_t *watch;
	struct progress *pg;
	uint64_t done, total;           /* plaintext bytes, of all bundles */
};

static int interrupted(const sigset_t *watch)
{
	sigset_t pend;

	if (sigpending(&pend) != 0)
		return 0;
	for (int s = 1; s < NSIG; s++)
		if (sigismember(watch, s) == 1 && sigismember(&pend, s) == 1)
			return 1;
	return 0;
}

static int sink_begin(void *arg, uint32_t no, const char *path, struct sbx_err *e)
{
	struct sink_ctx *s = arg;

	if (interrupted(s->watch))
		return sbx_fail(e, SBX_ECANCELED, "interrupted");
	return item_writer_begin(s->w, no, path, e);
}

static int sink_data(void *arg, uint32_t no, const uint8_t *p, size_t n, struct sbx_err *e)
{
	struct sink_ctx *s = arg;

	if (interrupted(s->watch))
		return sbx_fail(e, SBX_ECANCELED, "interrupted");
	s->done += n;
	progress_show(s->pg, 0, "sealbox-open: %" PRIu64 " of %" PRIu64 " MB decrypted and"
	              " checked (%u %%)", s->done >> 20, s->total >> 20,
	              s->total > 0 ? (unsigned)(s->done * 100 / s->total) : 100u);
	return item_writer_data(s->w, no, p, n, e);
}

static int sink_end(void *arg, uint32_t no, uint64_t size, const uint8_t sha256[static 32],
                    struct sbx_err *e)
{
	struct sink_ctx *s = arg;

	return item_writer_end(s->w, no, size, sha256, e);
}

static void check_contents(struct or_bundle *ob)
{
	const struct item_writer *w = &ob->items;
	const struct bundle_manifest *m = &ob->m;

	if (w->n < 2 || strcmp(w->items[0].path, "reads.jsonl") != 0 ||
	    strcmp(w->items[1].path, "reads.csv") != 0)
		vr_set(&ob->check[OC_CONTENTS], VR_FAIL, "the payload does not start with reads.jsonl"
		       " and reads.csv");
	else if (w->n != m->items || w->images != m->images || w->jsonl_lines != m->reads)
		vr_set(&ob->check[OC_CONTENTS], VR_FAIL, "the payload holds %zu items, %llu images,"
		       " %llu reads; the manifest signs %llu, %llu, %llu", w->n,
		       (unsigned long long)w->images, (unsigned long long)w->jsonl_lines,
		       (unsigned long long)m->items, (unsigned long long)m->images,
		       (unsigned long long)m->reads);
	else
		vr_set(&ob->check[OC_CONTENTS], VR_PASS, "reads.jsonl (%llu reads), reads.csv, %llu"
		       " images: the counts the manifest signs", (unsigned long long)w->jsonl_lines,
		       (unsigned long long)w->images);
}

/* 0, SBX_EIO (nothing decided: an I/O error), SBX_ECANCELED, or a check failed. */
static int decrypt_one(struct ctx *c, size_t i)
{
	struct or_bundle *ob = &c->run.b[i];
	struct sink_ctx sc = { &ob->items, &c->watch, &c->pg, c->pg_done, c->pg_total };
	struct bundle_item_sink sink = { &sc, sink_begin, sink_data };
	struct sbx_err e = { 0 };
	int dirfd, ct_ok = -1, r;

	if (c->run.n > 1) {
		hash_hex(ob->id, 32, ob->subdir);
		r = staging_mkdir(c->stage, ob->subdir, &dirfd, &e);
	} else {
		dirfd = staging_fd(c->stage);
		r = 0;
	}
	if (r == 0)
		r = item_writer_init_ended(&ob->items, dirfd);
	/* The files are written by a thread of their own: creating 10,000 of
	 * them is as much work as decrypting them. */
	if (r == 0)
		r = item_writer_start_async(&ob->items);
	if (r != 0) {
		ob->io_error = 1;
		snprintf(ob->io_why, sizeof ob->io_why, "%s", e.msg[0] ? e.msg : sbx_strerror(r));
		return SBX_EIO;
	}
	r = bundle_payload_open(c->bd[i], c->cek[i], &sink, sink_end, &ct_ok, &e);
	c->pg_done = sc.done;
	if (r == 0 && ct_ok != 1)
		r = sbx_fail(&e, SBX_EVERIFY, "internal: the payload passed without its ciphertext"
		             " check");
	if (r == 0)
		r = item_writer_finish(&ob->items, &e);
	/* Failed: nothing more is written while the caller removes the
	 * staging area. */
	if (r != 0)
		item_writer_stop(&ob->items);
	OPENSSL_cleanse(c->cek[i], 32);
	c->have_cek[i] = 0;
	if (ct_ok >= 0) {
		vr_set_ciphertext(&ob->check[OC_CIPHERTEXT], ct_ok, ob->m.ciphertext_bytes);
		c->ct_pending[i] = 0;
	}
	if (r == SBX_ECANCELED) {
		vr_set(&ob->check[OC_PAYLOAD], VR_NOT_RUN, "interrupted");
		vr_set(&ob->check[OC_CONTENTS], VR_NOT_RUN, "interrupted");
		return r;
	}
	if (r == SBX_EIO || r == SBX_ENOMEM) {
		ob->io_error = 1;
		snprintf(ob->io_why, sizeof ob->io_why, "%s", e.msg[0] ? e.msg : sbx_strerror(r));
		return SBX_EIO;
	}
	if (r != 0) {
		vr_set(&ob->check[OC_PAYLOAD], VR_FAIL, "%s", e.msg[0] ? e.msg : sbx_strerror(r));
		vr_set(&ob->check[OC_CONTENTS], VR_NOT_RUN, "the payload did not authenticate");
		return r;
	}
	vr_set(&ob->check[OC_PAYLOAD], VR_PASS, "%llu bytes: every chunk authenticated, the final"
	       " chunk is present, the index is the manifest's, every item's size and SHA-256"
	       " match", (unsigned long long)ob->m.ciphertext_bytes);
	ob->items_valid = 1;
	check_contents(ob);
	return ob->check[OC_CONTENTS].status == VR_PASS ? 0 : SBX_EVERIFY;
}

/* ---- Output ------------------------------------------------------------------------- */

static int render(void (*fn)(FILE *, const struct or_run *), const struct or_run *run,
                  char **buf, size_t *len)
{
	FILE *f = open_memstream(buf, len);

	if (f == NULL)
		return SBX_ENOMEM;
	fn(f, run);
	if (ferror(f)) {
		fclose(f);
		free(*buf);
		*buf = NULL;
		return SBX_ENOMEM;
	}
	return fclose(f) == 0 ? 0 : SBX_ENOMEM;
}

static int write_reports(struct ctx *c, struct sbx_err *e)
{
	char *json = NULL, *html = NULL;
	size_t jlen = 0, hlen = 0;
	int r;

	r = render(or_json, &c->run, &json, &jlen);
	if (r == 0)
		r = render(or_html, &c->run, &html, &hlen);
	if (r != 0) {
		r = sbx_fail(e, r, "out of memory writing the reports");
		goto out;
	}
	r = staging_write_file(staging_fd(c->stage), "verification.json", json, jlen, e);
	if (r == 0)
		r = staging_write_file(staging_fd(c->stage), "custody.html", html, hlen, e);
out:
	free(json);
	free(html);
	return r;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int load_pin(struct ctx *c, struct sbx_err *e)
{
	uint8_t *b = NULL;
	size_t len = 0;
	int r;

	if (c->o.ek_ca != NULL && access(c->o.ek_ca, R_OK) != 0)
		return sbx_fail(e, SBX_EIO, "--ek-ca %s: %s", c->o.ek_ca, strerror(errno));
	if (c->o.identity == NULL)
		return 0;
	r = fileio_read(c->o.identity, BUNDLE_MAX_IDENTITY, &b, &len, e);
	if (r != 0)
		return r;
	c->pinned = calloc(1, sizeof *c->pinned);
	if (c->pinned == NULL)
		r = sbx_fail(e, SBX_ENOMEM, "out of memory");
	else if (identity_decode(b, len, c->pinned) != 0)
		r = sbx_fail(e, SBX_EFORMAT, "--identity %s: not a sealbox identity file",
		             c->o.identity);
	free(b);
	return r;
}

static int setup(struct ctx *c)
{
	size_t n = (size_t)c->o.n_bundles;

	c->run.out_dir = c->o.out;
	c->run.n = n;
	c->run.b = calloc(n, sizeof *c->run.b);
	c->bd = calloc(n, sizeof(struct bundle *));
	c->cek = OPENSSL_zalloc(n * 32);
	c->have_cek = calloc(n, sizeof *c->have_cek);
	c->ct_pending = calloc(n, sizeof *c->ct_pending);
	if (c->run.b == NULL || c->bd == NULL || c->cek == NULL || c->have_cek == NULL ||
	    c->ct_pending == NULL)
		return SBX_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		or_bundle_init(&c->run.b[i], c->o.bundles[i]);
		c->run.b[i].release_path = vr_sibling_path(c->o.bundles[i], ".release");
		if (c->run.b[i].release_path == NULL)
			return SBX_ENOMEM;
	}
	sigemptyset(&c->watch);
	sigaddset(&c->watch, SIGINT);
	sigaddset(&c->watch, SIGTERM);
	sigaddset(&c->watch, SIGHUP);
	sigaddset(&c->watch, SIGQUIT);
	return 0;
}

static void teardown(struct ctx *c)
{
	staging_abort(c->stage);
	for (size_t i = 0; i < c->run.n; i++) {
		if (c->bd != NULL)
			bundle_close(c->bd[i]);
		if (c->run.b != NULL)
			or_bundle_free(&c->run.b[i]);
	}
	if (c->cek != NULL)
		OPENSSL_clear_free(c->cek, c->run.n * 32);
	free(c->have_cek);
	free(c->ct_pending);
	free(c->bd);
	free(c->run.b);
	free(c->pinned);
	EVP_PKEY_free(c->priv);
	X509_free(c->cert);
}

/* After a refusal: the ciphertext checks left for a decryption that did not
 * happen, so that the report is as complete as when they ran first.  1 if
 * a bundle could not be read. */
static int check_pending(struct ctx *c)
{
	int io = 0;

	for (size_t i = 0; i < c->run.n; i++) {
		struct or_bundle *ob = &c->run.b[i];
		struct sbx_err e = { 0 };
		int r;

		if (!c->ct_pending[i])
			continue;
		c->ct_pending[i] = 0;
		if (interrupted(&c->watch)) {
			vr_set(&ob->check[OC_CIPHERTEXT], VR_NOT_RUN, "interrupted");
			continue;
		}
		r = bundle_ciphertext_check(c->bd[i], &e);
		if (r == 0 || r == SBX_EVERIFY || r == SBX_EFORMAT) {
			vr_set_ciphertext(&ob->check[OC_CIPHERTEXT], r == 0, ob->m.ciphertext_bytes);
		} else {
			vr_set(&ob->check[OC_CIPHERTEXT], VR_NOT_RUN, "payload.enc could not be read");
			ob->io_error = 1;
			snprintf(ob->io_why, sizeof ob->io_why, "%s", e.msg[0] ? e.msg : sbx_strerror(r));
			io = 1;
		}
	}
	return io;
}

/* Two arguments naming the same bundle would collide in DIR. */
static int duplicate(const struct ctx *c)
{
	for (size_t i = 0; i < c->run.n; i++)
		for (size_t j = i + 1; j < c->run.n; j++)
			if (c->run.b[i].opened && c->run.b[j].opened &&
			    memcmp(c->run.b[i].id, c->run.b[j].id, 32) == 0)
				return (int)j;
	return -1;
}

int main(int argc, char **argv)
{
	struct ctx c;
	struct sbx_err e = { 0 };
	int rc, done, valid = 1, io = 0, canceled = 0, dup, r;

	memset(&c, 0, sizeof c);
	rc = parse_args(argc, argv, &c.o, &done);
	if (rc != EXIT_OPENED || done)
		return rc;
	if (setup(&c) != 0) {
		fputs(PROG ": out of memory\n", stderr);
		rc = EXIT_USAGE;
		goto out;
	}
	if (load_pin(&c, &e) != 0 || load_keys(&c, &e) != 0) {
		rc = fatal(&e);
		goto out;
	}
	/* An unusable DIR fails now, not after the checks of a 100 GB bundle. */
	if (staging_check(c.o.out, &e) != 0) {
		rc = fatal(&e);
		goto out;
	}
	c.run.opened_at_ms = now_ms();

	/* Phase 1 writes nothing: an interruption simply ends the program. */
	for (size_t i = 0; i < c.run.n; i++)
		check_public(&c, i);
	dup = duplicate(&c);
	if (dup >= 0) {
		sbx_err_clear(&e);
		sbx_fail(&e, SBX_EINVAL, "%s names the same bundle as an earlier argument",
		         c.run.b[dup].path);
		rc = fatal(&e);
		goto out;
	}
	for (size_t i = 0; i < c.run.n; i++) {
		io = io || c.run.b[i].io_error;
		valid = valid && !failed_before(&c.run.b[i], OC_PAYLOAD) && c.have_cek[i];
	}

	/* Phase 2.  From here on a ^C or a kill is noticed and handled (the
	 * staging directory removed) instead of ending the program mid-write. */
	if (valid && !io) {
		sigprocmask(SIG_BLOCK, &c.watch, NULL);
		sbx_err_clear(&e);
		if (staging_new(c.o.out, &c.stage, &e) != 0) {
			io = 1;
			snprintf(c.run.failure, sizeof c.run.failure, "%s", e.msg);
		}
	}
	/* Progress for a person watching: a terminal, not --json or --quiet. */
	progress_init(&c.pg, !c.o.json && !c.o.quiet && isatty(STDERR_FILENO) ? stderr : NULL);
	for (size_t i = 0; i < c.run.n; i++)
		c.pg_total += c.run.b[i].opened ? c.run.b[i].m.plaintext_bytes : 0;
	for (size_t i = 0; i < c.run.n; i++) {
		struct or_bundle *ob = &c.run.b[i];

		if (!valid || io || canceled) {
			if (ob->check[OC_PAYLOAD].status == VR_NOT_RUN) {
				vr_set(&ob->check[OC_PAYLOAD], VR_NOT_RUN, "not run: %s", !valid ?
				       "nothing is decrypted unless every bundle passed every check" :
				       "nothing is decrypted after an error");
				vr_set(&ob->check[OC_CONTENTS], VR_NOT_RUN, "%s", ob->check[OC_PAYLOAD].why);
			}
			continue;
		}
		r = decrypt_one(&c, i);
		if (r == SBX_ECANCELED)
			canceled = 1;
		else if (r == SBX_EIO)
			io = 1;
		else if (r != 0)
			valid = 0;
	}
	progress_end(&c.pg);
	canceled = canceled || interrupted(&c.watch);
	/* Every check of every bundle, the ciphertext's included, or nothing. */
	for (size_t i = 0; i < c.run.n; i++)
		valid = valid && or_bundle_valid(&c.run.b[i]);
	if (valid && !io && !canceled) {
		c.run.opened = 1;
		sbx_err_clear(&e);
		r = write_reports(&c, &e);
		if (r == 0) {
			r = staging_commit(c.stage, &e);
			c.stage = NULL; /* consumed */
		}
		if (r != 0) {
			c.run.opened = 0;
			io = 1;
			snprintf(c.run.failure, sizeof c.run.failure, "%s", e.msg);
		}
	} else {
		staging_abort(c.stage);
		c.stage = NULL;
		/* Nothing is staged any more: as in phase 1, a signal may simply
		 * end the program while the remaining ciphertext is hashed. */
		if (!interrupted(&c.watch))
			sigprocmask(SIG_UNBLOCK, &c.watch, NULL);
		if (check_pending(&c))
			io = 1;
		if (c.run.failure[0] == '\0')
			snprintf(c.run.failure, sizeof c.run.failure, "%s", canceled ? "interrupted" :
			         io ? "a file could not be read or written" : "a check failed");
	}

	if (c.o.json)
		or_json(stdout, &c.run);
	else
		or_print(stdout, &c.run, c.o.quiet);
	for (size_t i = 0; i < c.run.n; i++)
		if (c.run.b[i].io_error) {
			fputs(PROG ": ", stderr);
			vr_print_safe(stderr, c.run.b[i].io_why);
			fputc('\n', stderr);
		}
	if (c.run.failure[0] != '\0' && io && !c.o.json) {
		fputs(PROG ": ", stderr);
		vr_print_safe(stderr, c.run.failure);
		fputc('\n', stderr);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, PROG ": writing the report failed: %s\n", strerror(errno));
		io = 1;
	}
	rc = io || canceled ? EXIT_USAGE : c.run.opened ? EXIT_OPENED : EXIT_REFUSED;
out:
	teardown(&c);
	if (interrupted(&c.watch) && !c.run.opened) {
		/* Everything is cleaned up: now let the signal end us as it would have. */
		fputs(PROG ": interrupted; nothing was written\n", stderr);
		sigprocmask(SIG_UNBLOCK, &c.watch, NULL);
	} else if (interrupted(&c.watch)) {
		/* Too late to cancel: the files are in place and complete. */
		fputs(PROG ": a signal came after the files were in place; the open is complete\n",
		      stderr);
	}
	return rc;
}

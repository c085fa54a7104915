/* make_release: TEST TOOL, never shipped or installed.  Writes a release
 * file (docs/FORMAT.md section 10) for a bundle sealed by a real box, the
 * way the box's release step does, so the recipient tests can run before
 * and independently of `sealbox release`:
 *
 *   make_release STATE BUNDLE_ID CERT.pem OUT.release [options]
 *
 * It opens the box (SEALBOX_TCTI names its swtpm), has the TPM unwrap the
 * bundle's at-rest content key, wraps it to CERT with the release context,
 * appends a real release.confirm custody record (anchored to the TPM
 * counter), signs the canonical statement with the TPM signing key and
 * writes STATEMENT | SIG | WRAPPED | CERT | CUSTODY.  Skips the policy
 * checks and the button: that is the point of `sealbox release`, not of
 * this tool.  Options:
 *
 *   --operator ID --purpose CODE --authority REF --attestation REF
 *   --name NAME --role court|prosecutor --confirmation CODE
 *   --rewrap       forge: put a second, valid wrap of the same key to the
 *                  same recipient into the file, which the statement does
 *                  not sign ("re-wrapped outside the box")
 *   --dump DIR     also write the payload's items as the box authenticates
 *                  them with its own (TPM-unwrapped) key into DIR, for
 *                  comparison with what sealbox-open extracts */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "appliance/box.h"
#include "appliance/bundles.h"
#include "appliance/custody.h"
#include "crypto/hash.h"
#include "crypto/sig.h"
#include "crypto/tpm.h"
#include "crypto/wrap.h"
#include "export/atomic.h"
#include "export/bundle.h"
#include "export/release.h"
#include "export/staging.h"

struct args {
	const char *state, *id, *cert, *out, *dump;
	const char *operator_id, *purpose, *authority, *attestation, *name, *role, *code;
	int rewrap;
};

static int usage(void)
{
	fprintf(stderr, "usage (TEST TOOL): make_release STATE BUNDLE_ID CERT.pem OUT.release\n"
	                "         [--operator ID] [--purpose CODE] [--authority REF]\n"
	                "         [--attestation REF] [--name NAME] [--role ROLE]\n"
	                "         [--confirmation CODE] [--rewrap] [--dump DIR]\n"
	                "SEALBOX_TCTI names the box's TPM.\n");
	return 2;
}

static int parse(int argc, char **argv, struct args *a)
{
	static const struct option lo[] = {
		{ "operator", required_argument, NULL, 'o' },
		{ "purpose", required_argument, NULL, 'p' },
		{ "authority", required_argument, NULL, 'a' },
		{ "attestation", required_argument, NULL, 't' },
		{ "name", required_argument, NULL, 'n' },
		{ "role", required_argument, NULL, 'r' },
		{ "confirmation", required_argument, NULL, 'c' },
		{ "rewrap", no_argument, NULL, 'w' },
		{ "dump", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	a->operator_id = "clerk1";
	a->purpose = "prosecution";
	a->authority = "COURT-ORDER-1";
	a->attestation = "CRS-24-74-105-ATTEST-1";
	a->name = "da-office";
	a->role = "prosecutor";
	a->code = "TST-0001";
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'o': a->operator_id = optarg; break;
		case 'p': a->purpose = optarg; break;
		case 'a': a->authority = optarg; break;
		case 't': a->attestation = optarg; break;
		case 'n': a->name = optarg; break;
		case 'r': a->role = optarg; break;
		case 'c': a->code = optarg; break;
		case 'w': a->rewrap = 1; break;
		case 'd': a->dump = optarg; break;
		default: return -1;
		}
	}
	if (argc - optind != 4)
		return -1;
	a->state = argv[optind];
	a->id = argv[optind + 1];
	a->cert = argv[optind + 2];
	a->out = argv[optind + 3];
	return 0;
}

static int load_cert(const char *path, uint8_t **der, size_t *len, EVP_PKEY **pub,
                     struct sbx_err *e)
{
	FILE *f = fopen(path, "re");
	X509 *x = NULL;
	unsigned char *p = NULL;
	int n, r = SBX_EFORMAT;

	if (f == NULL)
		return sbx_fail(e, SBX_EIO, "%s: %s", path, strerror(errno));
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL)
		return sbx_fail(e, SBX_EFORMAT, "%s: no PEM certificate", path);
	n = i2d_X509(x, &p);
	if (n <= 0)
		goto out;
	*der = malloc((size_t)n);
	if (*der == NULL) {
		r = SBX_ENOMEM;
		goto out;
	}
	memcpy(*der, p, (size_t)n);
	*len = (size_t)n;
	*pub = X509_get_pubkey(x);
	r = *pub != NULL ? 0 : SBX_EFORMAT;
out:
	OPENSSL_free(p);
	X509_free(x);
	return r;
}

/* The box's own view of the plaintext: its TPM-unwrapped key, no release. */
static int dump_payload(struct bundle *bd, const uint8_t cek[32], const char *dir,
                        struct sbx_err *e)
{
	struct item_writer w;
	struct bundle_item_sink sink = { &w, item_writer_begin, item_writer_data };
	int fd, r;

	if (mkdir(dir, 0700) != 0)
		return sbx_fail(e, SBX_EIO, "%s: %s", dir, strerror(errno));
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sbx_fail(e, SBX_EIO, "%s: %s", dir, strerror(errno));
	r = item_writer_init(&w, fd);
	if (r == 0)
		r = bundle_payload_read(bd, cek, &sink, e);
	if (r == 0)
		r = item_writer_finish(&w, e);
	item_writer_free(&w);
	close(fd);
	return r;
}

int main(int argc, char **argv)
{
	struct args a = { 0 };
	struct sbx_err e = { 0 };
	struct box *box = NULL;
	struct bundle *bd = NULL;
	struct logrec *rec = NULL;
	struct release_statement *st = NULL;
	struct release_file f;
	EVP_PKEY *pub = NULL;
	uint8_t cek[32], bid[32], dg[32], sig[SIG_MAX_DER], ctx[128];
	uint8_t *der = NULL, *wrapped = NULL, *wrapped2 = NULL, *custody = NULL, *out = NULL;
	size_t der_len = 0, wlen = 0, wlen2 = 0, clen = 0, olen = 0, siglen = sizeof sig, ctxlen;
	char path[4400], *stext = NULL, wsha[65], csha[65];
	size_t slen = 0;
	uint64_t counter = 0, now;
	int r;

	memset(&f, 0, sizeof f);
	if (parse(argc, argv, &a) != 0)
		return usage();
	st = calloc(1, sizeof *st);
	rec = calloc(1, sizeof *rec);
	if (st == NULL || rec == NULL) {
		r = SBX_ENOMEM;
		goto out;
	}
	r = box_open(a.state, getenv("SEALBOX_TCTI"), BOX_TPM | BOX_WRITE, &box, &e);
	if (r != 0)
		goto out;
	r = load_cert(a.cert, &der, &der_len, &pub, &e);
	if (r != 0)
		goto out;
	snprintf(path, sizeof path, "%s/bundles/%s.sbx", a.state, a.id);
	r = bundle_open(path, &bd, &e);
	if (r != 0)
		goto out;
	bundle_id(bd, bid);
	r = bundles_unwrap_key(box, a.id, cek, &e);
	if (r != 0)
		goto out;
	if (a.dump != NULL && (r = dump_payload(bd, cek, a.dump, &e)) != 0)
		goto out;

	/* The statement's recipient fields, from the certificate. */
	st->version = RELEASE_VERSION;
	r = release_cert_info(der, der_len, st->cert_sha256, st->subject, sizeof st->subject, &e);
	if (r != 0)
		goto out;
	release_wrap_context(bid, st->cert_sha256, ctx, &ctxlen);
	r = wrap_cek(pub, cek, ctx, ctxlen, &wrapped, &wlen, &e);
	if (r == 0 && a.rewrap)
		r = wrap_cek(pub, cek, ctx, ctxlen, &wrapped2, &wlen2, &e);
	if (r != 0)
		goto out;
	hash_sha256(wrapped, wlen, st->wrapped_key_sha256);

	/* The release.confirm record, as the box writes it, anchored. */
	now = box_now_ms();
	hash_hex(st->cert_sha256, 32, csha);
	hash_hex(st->wrapped_key_sha256, 32, wsha);
	snprintf(rec->event, sizeof rec->event, "release.confirm");
	snprintf(rec->outcome, sizeof rec->outcome, "ok");
	snprintf(rec->operator_id, sizeof rec->operator_id, "%s", a.operator_id);
	snprintf(rec->case_id, sizeof rec->case_id, "%s", bundle_manifest(bd)->case_id);
	snprintf(rec->bundle_id, sizeof rec->bundle_id, "%s", a.id);
	snprintf(rec->detail, sizeof rec->detail, "recipient=%s\nrole=%s\ncertificate_sha256=%s\n"
	         "purpose=%s\nauthority=%s\nbundles=1\nreads=%" PRIu64 "\nconfirmation=%s\n"
	         "wrapped_key_sha256=%s\ntool=make_release (test)", a.name, a.role, csha,
	         a.purpose, a.authority, bundle_manifest(bd)->reads, a.code, wsha);
	r = custody_append(box, rec, 1, NULL, NULL, &e);
	if (r != 0)
		goto out;
	r = custody_counter(box, &counter, &e);
	if (r != 0)
		goto out;
	r = bundles_custody(box, a.id, &custody, &clen, &e);
	if (r != 0)
		goto out;

	memcpy(st->bundle_id, bid, 32);
	memcpy(st->appliance_id, box->id.appliance_id, 32);
	snprintf(st->case_id, sizeof st->case_id, "%s", bundle_manifest(bd)->case_id);
	snprintf(st->recipient_name, sizeof st->recipient_name, "%s", a.name);
	snprintf(st->role, sizeof st->role, "%s", a.role);
	snprintf(st->purpose, sizeof st->purpose, "%s", a.purpose);
	snprintf(st->authority, sizeof st->authority, "%s", a.authority);
	snprintf(st->attestation, sizeof st->attestation, "%s", a.attestation);
	snprintf(st->operator_id, sizeof st->operator_id, "%s", a.operator_id);
	st->released_at_ms = now;
	st->counter = counter;
	snprintf(st->confirmation, sizeof st->confirmation, "%s", a.code);
	r = release_statement_encode(st, &stext, &slen);
	if (r == 0)
		r = sig_digest(SIG_NS_RELEASE, (const uint8_t *)stext, slen, dg);
	if (r == 0)
		r = tpm_sign(box->tpm, dg, sig, &siglen, &e);
	if (r != 0)
		goto out;

	memcpy(f.bundle_id, bid, 32);
	f.statement = (uint8_t *)stext;
	f.statement_len = slen;
	f.sig = sig;
	f.sig_len = siglen;
	f.wrapped = a.rewrap ? wrapped2 : wrapped;
	f.wrapped_len = a.rewrap ? wlen2 : wlen;
	f.cert = der;
	f.cert_len = der_len;
	f.custody = custody;
	f.custody_len = clen;
	r = release_file_encode(&f, &out, &olen);
	if (r == 0)
		r = atomic_write_file(a.out, out, olen, 0644, &e);
out:
	OPENSSL_cleanse(cek, sizeof cek);
	if (r != 0)
		fprintf(stderr, "make_release: %s\n", e.msg[0] ? e.msg : sbx_strerror(r));
	free(out);
	free(stext);
	free(custody);
	free(wrapped);
	free(wrapped2);
	free(der);
	EVP_PKEY_free(pub);
	bundle_close(bd);
	box_close(box);
	free(rec);
	free(st);
	return r == 0 ? 0 : 1;
}

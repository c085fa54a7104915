/* sealbox-open's single pass over a bundle (export/bundle_read.c,
 * export/bundle_read_hash.c, export/staging.c, export/cmd/sealbox-open.c):
 * payload.enc hashed while it is decrypted (on a worker thread for large
 * payloads), the item hashes taken from the payload reader.
 *
 * What must hold: the ciphertext hash is only known once all of the
 * plaintext went to the staging directory, so a bundle whose manifest
 * signs a wrong ciphertext_sha256 (everything else genuine: every chunk
 * authenticates, every item matches the index) must still leave nothing in
 * the output directory and no staging directory, alone or after a good
 * bundle was already staged; the report names the ciphertext check.  The
 * hasher gives SHA-256's digest whatever the pieces; the item hashes the
 * reader reports are those of the bytes the sink received; verification.json
 * lists the SHA-256 of every file as it is on disk.
 *
 * Bundles are signed with the committed vector's TEST-ONLY software keys
 * (tests/vectors/bundle), whose identity passes identity_check without an
 * EK CA; sealbox-open runs as the program ($SBX_BIN/sealbox-open). */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "crypto/err.h"
#include "crypto/hash.h"
#include "crypto/merkle.h"
#include "crypto/sig.h"
#include "crypto/wrap.h"
#include "export/bundle.h"
#include "export/bundle_read_hash.h"
#include "export/bundle_tar.h"
#include "export/identity.h"
#include "export/logrec.h"
#include "export/release.h"
#include "export/staging.h"
#include "export/sth.h"
#include "tests/unit/check.h"
#include "tests/unit/fixtures.h"

#define CASE_ID "2026-CR-0099"

static char tmpdir[] = "/tmp/sbx-test-open-pass.XXXXXX";
static char bindir[4096];
static EVP_PKEY *sign_key;
static uint8_t *vid;
static size_t vidlen;
static struct identity vident;

/* ---- helpers ------------------------------------------------------------------ */

static int copy_file(const char *from, const char *to)
{
	size_t n;
	uint8_t *b = fx_slurp(from, &n);
	int r = b != NULL ? fx_spit(to, b, n) : -1;

	free(b);
	return r;
}

static int sw_sign_dg(const uint8_t dg[32], uint8_t *sig, size_t *siglen)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(sign_key, NULL);
	size_t n = *siglen;
	int ok;

	ok = c != NULL && EVP_PKEY_sign_init(c) == 1 &&
	     EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) == 1 &&
	     EVP_PKEY_sign(c, sig, &n, dg, 32) == 1;
	EVP_PKEY_CTX_free(c);
	*siglen = n;
	return ok ? 0 : -1;
}

static int sw_sign(void *arg, const uint8_t dg[32], uint8_t *sig, size_t *siglen,
                   struct sbx_err *e)
{
	return sw_sign_dg(dg, sig, siglen) == 0 ? 0 : sbx_fail(e, SBX_ECRYPTO, "test: sign");
}

static int exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* A staging directory of output `name` left in `parent`. */
static int staging_left(const char *parent, const char *name)
{
	DIR *d = opendir(parent);
	struct dirent *de;
	char prefix[300];
	int found = 0;

	if (d == NULL)
		return 1;
	snprintf(prefix, sizeof prefix, ".%s.open-", name);
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			found = 1;
	closedir(d);
	return found;
}

/* The report line of one check ("  FAILED   ciphertext   ..."). */
static int report_says(const char *text, const char *status, const char *check)
{
	char line[64];

	snprintf(line, sizeof line, "\n  %-8s %-12s ", status, check);
	return text != NULL && strstr(text, line) != NULL;
}

/* ---- the recipient ---------------------------------------------------------- */

struct recipient {
	EVP_PKEY *key;
	X509 *x;
	uint8_t *der;
	size_t der_len;
	char key_path[4200];
};

static int make_recipient(struct recipient *r, const char *cn)
{
	char cert_path[4200];
	FILE *f;
	int ok;

	if (fx_recipient_cert(cn, 9, &r->key, &r->x, &r->der, &r->der_len) != 0)
		return -1;
	snprintf(r->key_path, sizeof r->key_path, "%s/%s.key", tmpdir, cn);
	snprintf(cert_path, sizeof cert_path, "%s/%s.crt", tmpdir, cn);
	f = fopen(r->key_path, "w");
	ok = f != NULL && PEM_write_PrivateKey(f, r->key, NULL, NULL, 0, NULL, NULL) == 1;
	if (f != NULL && fclose(f) != 0)
		ok = 0;
	f = fopen(cert_path, "w");
	ok = ok && f != NULL && PEM_write_X509(f, r->x) == 1;
	if (f != NULL && fclose(f) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

static void free_recipient(struct recipient *r)
{
	EVP_PKEY_free(r->key);
	X509_free(r->x);
	free(r->der);
}

/* ---- bundles ------------------------------------------------------------------- */

struct sealed {
	char path[4200];
	uint8_t bid[32];
	uint8_t cek[32];
	uint64_t plaintext_bytes, items;
};

static void hex_name(const uint8_t bid[32], const char *dir, const char *ext, char *out,
                     size_t cap)
{
	char hex[65];

	hash_hex(bid, 32, hex);
	snprintf(out, cap, "%s/%s.%s", dir, hex, ext);
}

/* A bundle of `reads` reads and `n_img` random images of `img_size` bytes,
 * sealed into `dir` (which must exist). */
static int seal(const char *dir, int reads, int n_img, size_t img_size, struct sealed *s)
{
	struct bundle_manifest m, mo;
	struct bundle_writer *w = NULL;
	struct sbx_err e = { 0 };
	uint8_t *img = malloc(img_size);
	char jl[200], csv[200], path[BUNDLE_MAX_PATH + 1];
	int r = -1;

	memset(&m, 0, sizeof m);
	m.version = BUNDLE_VERSION;
	memcpy(m.appliance_id, vident.appliance_id, 32);
	snprintf(m.case_id, sizeof m.case_id, CASE_ID);
	snprintf(m.source, sizeof m.source, "unit");
	snprintf(m.operator_id, sizeof m.operator_id, "tech1");
	m.sealed_at_ms = 1795671685669ull;
	memset(m.policy_hash, 0x42, 32);
	snprintf(m.authority, sizeof m.authority, "W-1");
	snprintf(m.purpose, sizeof m.purpose, "criminal-investigation");
	if (img == NULL || bundle_writer_new(dir, &m, vid, vidlen, &w, &e) != 0 ||
	    bundle_add_csv_header(w, "id,plate\r\n", 10, &e) != 0)
		goto out;
	for (int i = 0; i < reads; i++) {
		int jn = snprintf(jl, sizeof jl, "{\"id\":\"r%d\",\"plate\":\"ABC%03d\"}\n", i, i);
		int cn = snprintf(csv, sizeof csv, "r%d,ABC%03d\r\n", i, i);

		if (bundle_add_read(w, jl, (size_t)jn, csv, (size_t)cn, 1795000000000 + i, "cam1",
		                    &e) != 0)
			goto out;
	}
	for (int i = 0; i < n_img; i++) {
		if (RAND_bytes(img, (int)img_size) != 1)
			goto out;
		snprintf(path, sizeof path, "images/r%d.plate.jpg", i % reads);
		if (i >= reads)
			snprintf(path, sizeof path, "images/r%d.overview.jpg", i % reads);
		if (bundle_add_image(w, path, img, img_size, &e) != 0)
			goto out;
	}
	r = bundle_writer_finish(w, sw_sign, NULL, s->cek, s->bid, &mo, s->path, sizeof s->path,
	                         &e);
	w = NULL;   /* freed by finish */
	s->plaintext_bytes = mo.plaintext_bytes;
	s->items = mo.items;
out:
	if (r != 0)
		printf("# seal: %s\n", e.msg);
	bundle_writer_abort(w);
	free(img);
	return r;
}

/* The same bundle with a manifest that signs a wrong ciphertext_sha256,
 * signed by the box's key all the same, into `dir`: every check passes but
 * the ciphertext's, and that one only once all of payload.enc is through. */
static int forge_ct_hash(const struct sealed *good, const char *dir, struct sealed *f)
{
	struct bundle *b = NULL;
	struct bundle_manifest m;
	struct sbx_err e = { 0 };
	char *text = NULL;
	size_t tlen = 0, ilen, siglen = BUNDLE_MAX_SIG, flen = 0, n = 0;
	uint8_t dg[32], sig[BUNDLE_MAX_SIG], *file = NULL, *out = NULL;
	const uint8_t *ident;
	uint64_t off, plen, mtime;
	int r = -1;

	if (bundle_open(good->path, &b, &e) != 0 || (file = fx_slurp(good->path, &flen)) == NULL)
		goto out;
	m = *bundle_manifest(b);
	m.ciphertext_sha256[7] ^= 0x10;
	ident = bundle_identity_bytes(b, &ilen);
	bundle_payload_span(b, &off, &plen);
	if (bundle_manifest_encode(&m, &text, &tlen) != 0 ||
	    sig_digest(SIG_NS_BUNDLE, (const uint8_t *)text, tlen, dg) != 0 ||
	    sw_sign_dg(dg, sig, &siglen) != 0)
		goto out;
	out = calloc(1, flen + 4 * BUNDLE_TAR_MAX_HEADER + 4 * BUNDLE_TAR_BLOCK + tlen + siglen);
	if (out == NULL)
		goto out;
	mtime = bundle_tar_mtime(m.sealed_at_ms);
	{
		const char *name[4] = { "manifest.json", "manifest.sig", "identity.sbxi", "payload.enc" };
		const uint8_t *data[4] = { (const uint8_t *)text, sig, ident, file + off };
		uint64_t len[4] = { tlen, siglen, ilen, plen };

		for (int i = 0; i < 4; i++) {
			n += bundle_tar_header(out + n, name[i], len[i], mtime);
			memcpy(out + n, data[i], (size_t)len[i]);
			n += (size_t)len[i] + bundle_tar_pad(len[i]);   /* calloc: zero padding */
		}
		n += BUNDLE_TAR_END;
	}
	*f = *good;
	if (hash_sha256(text, tlen, f->bid) != 0)
		goto out;
	hex_name(f->bid, dir, "sbx", f->path, sizeof f->path);
	r = fx_spit(f->path, out, n);
out:
	if (r != 0)
		printf("# forge: %s\n", e.msg);
	bundle_close(b);
	free(text);
	free(file);
	free(out);
	return r;
}

/* ---- releases (docs/FORMAT.md section 10), as tests/unit/test_release.c ------ */

static void rec_fill(struct logrec *r, uint64_t seq, const char *event, const uint8_t *bid,
                     const char *detail)
{
	memset(r, 0, sizeof *r);
	r->seq = seq;
	r->time_ms = 1795671685669ull + seq;
	r->tpm_clock_ms = 1000 + seq;
	memcpy(r->appliance_id, vident.appliance_id, 32);
	memset(r->policy_hash, 0x42, 32);
	snprintf(r->event, sizeof r->event, "%s", event);
	snprintf(r->outcome, sizeof r->outcome, "ok");
	snprintf(r->operator_id, sizeof r->operator_id, "clerk1");
	if (bid != NULL) {
		snprintf(r->case_id, sizeof r->case_id, CASE_ID);
		hash_hex(bid, 32, r->bundle_id);
	}
	snprintf(r->detail, sizeof r->detail, "%s", detail);
}

/* Provision, ingest, release.confirm, view: the custody file carries the
 * bundle's two under a head signed by the box's key. */
static int make_custody(const uint8_t bid[32], const struct release_statement *st,
                        uint8_t **out, size_t *len)
{
	struct bundle_custody *c = calloc(1, sizeof *c);
	struct logrec *r = calloc(1, sizeof *r);
	uint8_t leaves[4][32], *enc[4] = { 0 }, dg[32];
	size_t elen[4] = { 0 };
	char detail[1024], cert[65], wsha[65];
	struct sth h;
	int rc = -1;

	if (c == NULL || r == NULL)
		goto out;
	hash_hex(st->cert_sha256, 32, cert);
	hash_hex(st->wrapped_key_sha256, 32, wsha);
	snprintf(detail, sizeof detail, "recipient=%s\nrole=%s\ncertificate_sha256=%s\npurpose=%s\n"
	         "authority=%s\nconfirmation=%s\nwrapped_key_sha256=%s", st->recipient_name,
	         st->role, cert, st->purpose, st->authority, st->confirmation, wsha);
	for (uint64_t i = 0; i < 4; i++) {
		if (i == 0)
			rec_fill(r, i, "provision", NULL, "");
		else if (i == 1)
			rec_fill(r, i, "ingest", bid, "reads=1");
		else if (i == 2)
			rec_fill(r, i, "release.confirm", bid, detail);
		else
			rec_fill(r, i, "view", NULL, "");
		if (logrec_encode(r, &enc[i], &elen[i]) != 0 ||
		    merkle_leaf_hash(enc[i], elen[i], leaves[i]) != 0)
			goto out;
	}
	memcpy(c->bundle_id, bid, 32);
	c->n = 2;
	for (size_t k = 0; k < 2; k++) {
		c->rec[k].record = enc[k + 1];
		enc[k + 1] = NULL;
		c->rec[k].record_len = elen[k + 1];
		c->rec[k].leaf_index = k + 1;
		if (merkle_inclusion_proof((const uint8_t (*)[32])leaves, 4, k + 1, c->rec[k].proof,
		                           &c->rec[k].n_hashes) != 0)
			goto out;
	}
	memset(&h, 0, sizeof h);
	memcpy(h.appliance_id, vident.appliance_id, 32);
	h.tree_size = 4;
	h.timestamp_ms = 1795671685700ull;
	h.counter = st->counter;
	if (merkle_root((const uint8_t (*)[32])leaves, 4, h.root) != 0)
		goto out;
	sth_encode(&h, c->head);
	c->siglen = sizeof c->sig;
	if (sig_digest(SIG_NS_STH, c->head, STH_ENCODED_LEN, dg) != 0 ||
	    sw_sign_dg(dg, c->sig, &c->siglen) != 0)
		goto out;
	rc = bundle_custody_encode(c, out, len);
out:
	for (int i = 0; i < 4; i++)
		free(enc[i]);
	if (c != NULL)
		bundle_custody_free(c);
	free(c);
	free(r);
	return rc;
}

/* <dir>/<id>.release: bundle s released to r. */
static int make_release(const struct sealed *s, const struct recipient *r, const char *dir)
{
	struct release_statement st;
	struct release_file f;
	uint8_t ctx[128], dg[32], sig[SIG_MAX_DER], *wrapped = NULL, *custody = NULL, *file = NULL;
	size_t ctxlen, wlen = 0, clen = 0, siglen = sizeof sig, tlen = 0, flen = 0;
	char *text = NULL, path[4300];
	int rc = -1;

	memset(&st, 0, sizeof st);
	memset(&f, 0, sizeof f);
	st.version = RELEASE_VERSION;
	memcpy(st.bundle_id, s->bid, 32);
	memcpy(st.appliance_id, vident.appliance_id, 32);
	snprintf(st.case_id, sizeof st.case_id, CASE_ID);
	snprintf(st.recipient_name, sizeof st.recipient_name, "da-office");
	snprintf(st.role, sizeof st.role, "prosecutor");
	if (release_cert_info(r->der, r->der_len, st.cert_sha256, st.subject, sizeof st.subject,
	                      NULL) != 0)
		goto out;
	snprintf(st.purpose, sizeof st.purpose, "prosecution");
	snprintf(st.authority, sizeof st.authority, "COURT-ORDER-7");
	snprintf(st.attestation, sizeof st.attestation, "ATTEST-2026-01");
	snprintf(st.operator_id, sizeof st.operator_id, "clerk1");
	st.released_at_ms = 1795671685690ull;
	st.counter = 42;
	snprintf(st.confirmation, sizeof st.confirmation, "K7Q-4MZX");
	release_wrap_context(s->bid, st.cert_sha256, ctx, &ctxlen);
	if (wrap_cek(r->key, s->cek, ctx, ctxlen, &wrapped, &wlen, NULL) != 0 ||
	    hash_sha256(wrapped, wlen, st.wrapped_key_sha256) != 0 ||
	    make_custody(s->bid, &st, &custody, &clen) != 0 ||
	    release_statement_encode(&st, &text, &tlen) != 0 ||
	    sig_digest(SIG_NS_RELEASE, (const uint8_t *)text, tlen, dg) != 0 ||
	    sw_sign_dg(dg, sig, &siglen) != 0)
		goto out;
	memcpy(f.bundle_id, s->bid, 32);
	f.statement = (uint8_t *)text;
	f.statement_len = tlen;
	f.sig = sig;
	f.sig_len = siglen;
	f.wrapped = wrapped;
	f.wrapped_len = wlen;
	f.cert = r->der;
	f.cert_len = r->der_len;
	f.custody = custody;
	f.custody_len = clen;
	hex_name(s->bid, dir, "release", path, sizeof path);
	if (release_file_encode(&f, &file, &flen) == 0)
		rc = fx_spit(path, file, flen);
out:
	free(wrapped);
	free(custody);
	free(text);
	free(file);
	return rc;
}

/* ---- running the program ---------------------------------------------------- */

static char *last_out;

/* sealbox-open BUNDLES... --key KEY --out DIR; its exit status, its output
 * in last_out. */
static int run_open(const char *bundles, const struct recipient *r, const char *out)
{
	char cmd[16384], log[4200];
	size_t n;
	int st;

	snprintf(log, sizeof log, "%s/open.log", tmpdir);
	snprintf(cmd, sizeof cmd, "'%s/sealbox-open' %s --key '%s' --out '%s' > '%s' 2>&1",
	         bindir, bundles, r->key_path, out, log);
	st = system(cmd);
	free(last_out);
	last_out = (char *)fx_slurp(log, &n);
	return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The SHA-256 of out/<file> is in out/verification.json. */
static int listed(const char *out, const char *file, const char *json)
{
	char path[4300], hex[65];
	uint8_t dg[32];
	size_t n;
	uint8_t *b;
	int ok;

	snprintf(path, sizeof path, "%s/%s", out, file);
	b = fx_slurp(path, &n);
	ok = b != NULL && n > 0 && hash_sha256(b, n, dg) == 0;
	free(b);
	if (!ok)
		return 0;
	hash_hex(dg, 32, hex);
	return strstr(json, hex) != NULL;
}

/* ---- the hasher ------------------------------------------------------------------ */

static void test_readhash(void)
{
	size_t len = 3 * 1024 * 1024 + 12345;
	uint8_t *data = malloc(len), want[32], got[32];

	if (!CHECK(data != NULL && RAND_bytes(data, (int)len) == 1 && hash_sha256(data, len, want) == 0)) {
		free(data);
		return;
	}
	for (int threaded = 0; threaded <= 1; threaded++) {
		struct readhash *h = NULL;
		size_t off = 0, step = 1, pieces = 0;
		int ok = readhash_new(65536, threaded, &h) == 0;

		/* Pieces of 1 byte to 64 KiB, alternately copied into the hasher's
		 * buffers (which it recycles) and handed over in place. */
		while (ok && off < len) {
			size_t n = step > len - off ? len - off : step;

			if (pieces % 2 == 0) {
				uint8_t *buf = readhash_buf(h);

				ok = buf != NULL;
				if (ok) {
					memcpy(buf, data + off, n);
					ok = readhash_push(h, buf, n) == 0;
				}
			} else {
				ok = readhash_push(h, data + off, n) == 0;
			}
			off += n;
			pieces++;
			step = step * 3 % 65536 + 1;
		}
		ok = ok && readhash_final(h, got) == 0 && memcmp(got, want, 32) == 0;
		readhash_free(h);
		CHECK_MSG(ok, threaded ? "the worker-thread hasher gives SHA-256's digest" :
		          "the inline hasher gives SHA-256's digest");
	}
	{
		/* Freed with pieces queued and no final: the worker stops. */
		struct readhash *h = NULL;
		int ok = readhash_new(65536, 1, &h) == 0;

		for (int i = 0; ok && i < 64; i++)
			ok = readhash_push(h, data, len) == 0;
		readhash_free(h);
		CHECK_MSG(ok, "a hasher freed with work queued stops without hashing it");
	}
	free(data);
}

/* ---- the reader, in process ---------------------------------------------------- */

#define MAX_ITEMS 256

struct rec_sink {
	struct hash_ctx *h[MAX_ITEMS];
	uint64_t size[MAX_ITEMS];
	uint64_t ended_size[MAX_ITEMS];
	uint8_t ended[MAX_ITEMS][32];
	int n_ended, bad;
	uint32_t n;
	uint64_t bytes;
};

static int rs_begin(void *arg, uint32_t no, const char *path, struct sbx_err *e)
{
	struct rec_sink *s = arg;

	if (no != s->n || no >= MAX_ITEMS || (s->h[no] = hash_new()) == NULL)
		return SBX_EINVAL;
	s->n++;
	return 0;
}

static int rs_data(void *arg, uint32_t no, const uint8_t *p, size_t n, struct sbx_err *e)
{
	struct rec_sink *s = arg;

	if (no >= s->n || hash_update(s->h[no], p, n) != 0)
		return SBX_EINVAL;
	s->size[no] += n;
	s->bytes += n;
	return 0;
}

static int rs_end(void *arg, uint32_t no, uint64_t size, const uint8_t sha256[static 32],
                  struct sbx_err *e)
{
	struct rec_sink *s = arg;

	if (no >= s->n || s->ended_size[no] != 0)
		return SBX_EINVAL;
	s->ended_size[no] = size;
	memcpy(s->ended[no], sha256, 32);
	s->n_ended++;
	return 0;
}

/* Every item ended with the size and SHA-256 of what the sink received. */
static int rs_consistent(struct rec_sink *s)
{
	int ok = s->n > 0 && s->n_ended == (int)s->n;

	for (uint32_t i = 0; i < s->n; i++) {
		uint8_t dg[32];

		ok = ok && hash_final(s->h[i], dg) == 0 && memcmp(dg, s->ended[i], 32) == 0 &&
		     s->ended_size[i] == s->size[i];
	}
	return ok;
}

static void rs_free(struct rec_sink *s)
{
	for (uint32_t i = 0; i < s->n; i++)
		hash_free(s->h[i]);
	memset(s, 0, sizeof *s);
}

static int read_with(const char *path, const uint8_t cek[32], struct rec_sink *rs, int *ct_ok,
                     struct sbx_err *e)
{
	struct bundle_item_sink sink = { rs, rs_begin, rs_data };
	struct bundle *b = NULL;
	int r;

	memset(rs, 0, sizeof *rs);
	*ct_ok = -2;
	sbx_err_clear(e);
	r = bundle_open(path, &b, e);
	if (r == 0)
		r = bundle_payload_open(b, cek, &sink, rs_end, ct_ok, e);
	bundle_close(b);
	return r;
}

static void test_reader(const struct sealed *big, const struct sealed *small,
                        const struct sealed *forged, const char *tampered)
{
	const struct sealed *good[2] = { big, small };
	struct rec_sink *rs = calloc(1, sizeof *rs);
	struct bundle_report rep;
	struct sbx_err e = { 0 };
	struct bundle *b = NULL;
	int ct_ok, r;

	if (!CHECK(rs != NULL))
		return;
	for (int k = 0; k < 2; k++) {
		r = read_with(good[k]->path, good[k]->cek, rs, &ct_ok, &e);
		CHECK_MSG(r == 0 && ct_ok == 1 && rs->n == good[k]->items &&
		          rs->bytes > 0 && rs_consistent(rs),
		          k == 0 ? "a large bundle (hashed on the worker) opens in one pass; each item's "
		          "reported SHA-256 is that of the bytes the sink got" :
		          "a small bundle (hashed inline) opens in one pass, item hashes reported");
		rs_free(rs);
	}

	/* In memory: the worker hashes the caller's memory in place. */
	{
		size_t len = 0;
		uint8_t *mem = fx_slurp(big->path, &len);
		struct bundle_item_sink sink = { rs, rs_begin, rs_data };

		memset(rs, 0, sizeof *rs);
		ct_ok = -2;
		CHECK_MSG(mem != NULL && bundle_open_mem(mem, len, &b, &e) == 0 &&
		          bundle_payload_open(b, big->cek, &sink, rs_end, &ct_ok, &e) == 0 &&
		          ct_ok == 1 && rs_consistent(rs), "a large bundle in memory opens in one pass");
		bundle_close(b);
		b = NULL;
		rs_free(rs);
		free(mem);
	}

	/* The forged manifest: the signature and identity hold, so the deferred
	 * verify passes; the ciphertext fails only after every byte went out. */
	if (CHECK(bundle_open(forged->path, &b, &e) == 0)) {
		CHECK_MSG(bundle_verify_deferred(b, NULL, &rep, &e) == 0 && rep.signature_ok == 1 &&
		          rep.identity_ok == 1 && rep.ciphertext_ok == -1,
		          "the forged bundle passes every check but the deferred ciphertext one");
		sbx_err_clear(&e);
		CHECK_MSG(bundle_verify(b, NULL, &rep, &e) == SBX_EVERIFY && rep.signature_ok == 1 &&
		          rep.ciphertext_ok == 0, "bundle_verify (sealbox-verify) still rejects it");
		sbx_err_clear(&e);
		CHECK_MSG(bundle_ciphertext_check(b, &e) == SBX_EVERIFY &&
		          strstr(e.msg, "ciphertext_sha256") != NULL,
		          "bundle_ciphertext_check rejects it");
		bundle_close(b);
		b = NULL;
	}
	r = read_with(forged->path, forged->cek, rs, &ct_ok, &e);
	CHECK_MSG(r == SBX_EVERIFY && ct_ok == 0 && strstr(e.msg, "ciphertext_sha256") != NULL,
	          "the forged bundle fails the one-pass read on its ciphertext hash");
	CHECK_MSG(rs->n == forged->items && rs->bytes > 0 && rs_consistent(rs),
	          "... after every item went to the sink (so the sink must stage, not commit)");
	rs_free(rs);
	sbx_err_clear(&e);
	{
		struct bundle_item_sink sink = { rs, rs_begin, rs_data };

		CHECK_MSG(bundle_open(forged->path, &b, &e) == 0 &&
		          bundle_payload_read(b, forged->cek, &sink, &e) == SBX_EVERIFY,
		          "bundle_payload_read rejects it too");
		bundle_close(b);
		b = NULL;
		rs_free(rs);
	}

	/* A byte of payload.enc flipped: the chunk fails, and the rest is still
	 * hashed so the ciphertext's verdict is known too. */
	r = read_with(tampered, big->cek, rs, &ct_ok, &e);
	CHECK_MSG(r == SBX_EVERIFY && ct_ok == 0 && strstr(e.msg, "authenticate") != NULL,
	          "a flipped ciphertext byte fails its chunk, and the ciphertext verdict is 'no'");
	rs_free(rs);
	{
		uint8_t wrong[32];

		memcpy(wrong, big->cek, 32);
		wrong[0] ^= 1;
		r = read_with(big->path, wrong, rs, &ct_ok, &e);
		CHECK_MSG(r == SBX_EVERIFY && ct_ok == 1 && rs->n == 0,
		          "a wrong key fails the first chunk; the ciphertext itself is the manifest's");
		rs_free(rs);
	}
	free(rs);
}

/* ---- the staging sink with the reader's hashes -------------------------------- */

static void test_item_writer(void)
{
	struct item_writer w;
	struct sbx_err e = { 0 };
	char dir[4200];
	uint8_t dg[32];
	int fd = -1;

	snprintf(dir, sizeof dir, "%s/iw", tmpdir);
	if (mkdir(dir, 0700) == 0)
		fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (!CHECK(fd >= 0))
		return;
	hash_sha256("a\n", 2, dg);
	CHECK(item_writer_init_ended(&w, fd) == 0);
	CHECK(item_writer_begin(&w, 0, "reads.jsonl", &e) == 0 &&
	      item_writer_data(&w, 0, (const uint8_t *)"a\n", 2, &e) == 0 &&
	      item_writer_begin(&w, 1, "reads.csv", &e) == 0);
	CHECK_MSG(item_writer_end(&w, 0, 3, dg, &e) == SBX_EINVAL,
	          "an end whose size is not what was written is refused");
	CHECK_MSG(item_writer_end(&w, 2, 0, dg, &e) == SBX_EINVAL, "an end of an undeclared item is refused");
	CHECK(item_writer_end(&w, 0, 2, dg, &e) == 0);
	CHECK_MSG(item_writer_end(&w, 0, 2, dg, &e) == SBX_EINVAL, "a second end is refused");
	sbx_err_clear(&e);
	CHECK_MSG(item_writer_finish(&w, &e) == SBX_EINVAL && strstr(e.msg, "reads.csv") != NULL,
	          "finish refuses an item without its SHA-256");
	CHECK(memcmp(w.items[0].sha256, dg, 32) == 0 && w.jsonl_lines == 1);
	item_writer_free(&w);
	close(fd);
}

/* ---- the same sink on its writing thread (item_writer_start_async) -------------- */

static int file_is(int dirfd, const char *name, const uint8_t *p, size_t n)
{
	uint8_t *buf = malloc(n + 1);
	int fd = openat(dirfd, name, O_RDONLY), ok = 0;
	ssize_t got = 0, r;

	if (buf != NULL && fd >= 0) {
		while ((size_t)got <= n && (r = read(fd, buf + got, n + 1 - (size_t)got)) > 0)
			got += r;
		ok = (size_t)got == n && memcmp(buf, p, n) == 0;
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return ok;
}

static void test_item_writer_async(void)
{
	struct item_writer w;
	struct sbx_err e = { 0 };
	char dir[4200];
	uint8_t dg[32], *big = malloc((size_t)3 << 20);
	size_t bign = ((size_t)3 << 20) - 12345;   /* more than the ring holds, unaligned */
	int fd = -1, imgfd = -1, r;

	snprintf(dir, sizeof dir, "%s/iwa", tmpdir);
	if (mkdir(dir, 0700) == 0)
		fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (!CHECK(fd >= 0 && big != NULL)) {
		free(big);
		return;
	}
	for (size_t i = 0; i < bign; i++)
		big[i] = (uint8_t)(i * 2654435761u >> 13);

	/* Written by the thread, byte for byte, in pieces larger than a slot. */
	CHECK(item_writer_init_ended(&w, fd) == 0 && item_writer_start_async(&w) == 0);
	CHECK_MSG(w.async != NULL, "the writing thread runs");
	hash_sha256("a\n", 2, dg);
	CHECK(item_writer_begin(&w, 0, "reads.jsonl", &e) == 0 &&
	      item_writer_data(&w, 0, (const uint8_t *)"a\n", 2, &e) == 0 &&
	      item_writer_end(&w, 0, 2, dg, &e) == 0);
	hash_sha256("h\r\n", 3, dg);
	CHECK(item_writer_begin(&w, 1, "reads.csv", &e) == 0 &&
	      item_writer_data(&w, 1, (const uint8_t *)"h\r\n", 3, &e) == 0 &&
	      item_writer_end(&w, 1, 3, dg, &e) == 0);
	hash_sha256(big, bign, dg);
	r = item_writer_begin(&w, 2, "images/r1.plate.jpg", &e);
	for (size_t off = 0; r == 0 && off < bign; off += 300000)
		r = item_writer_data(&w, 2, big + off, bign - off < 300000 ? bign - off : 300000, &e);
	CHECK(r == 0 && item_writer_end(&w, 2, bign, dg, &e) == 0);
	CHECK_MSG(item_writer_finish(&w, &e) == 0 && w.async == NULL,
	          "finish waits for the thread and ends it");
	imgfd = openat(fd, "images", O_RDONLY | O_DIRECTORY);
	CHECK_MSG(file_is(fd, "reads.jsonl", (const uint8_t *)"a\n", 2) &&
	          file_is(fd, "reads.csv", (const uint8_t *)"h\r\n", 3) &&
	          imgfd >= 0 && file_is(imgfd, "r1.plate.jpg", big, bign),
	          "every file holds exactly the bytes handed over (3 MiB image in 300 KB pieces)");
	item_writer_free(&w);

	/* A name that exists already fails as the synchronous writer fails (a
	 * format error naming the file), reported by a later call or finish.
	 * A first writer creates reads.jsonl in images/; a second one over the
	 * same directory must not overwrite it. */
	CHECK(item_writer_init_ended(&w, imgfd) == 0 && item_writer_start_async(&w) == 0);
	sbx_err_clear(&e);
	r = item_writer_begin(&w, 0, "reads.jsonl", &e);
	if (r == 0)
		r = item_writer_data(&w, 0, (const uint8_t *)"x\n", 2, &e);
	if (r == 0) {
		hash_sha256("x\n", 2, dg);
		r = item_writer_end(&w, 0, 2, dg, &e);
	}
	CHECK(r == 0 && item_writer_finish(&w, &e) == 0);
	item_writer_free(&w);
	CHECK(item_writer_init_ended(&w, imgfd) == 0 && item_writer_start_async(&w) == 0);
	sbx_err_clear(&e);
	r = item_writer_begin(&w, 0, "reads.jsonl", &e);
	for (int i = 0; r == 0 && i < 64; i++)
		r = item_writer_data(&w, 0, (const uint8_t *)"y", 1, &e);
	if (r == 0)
		r = item_writer_finish(&w, &e);
	CHECK_MSG(r == SBX_EFORMAT && strstr(e.msg, "cannot create reads.jsonl") != NULL,
	          "an existing file is never overwritten: the writing thread's O_EXCL failure "
	          "comes back as a format error naming it");
	CHECK_MSG(file_is(imgfd, "reads.jsonl", (const uint8_t *)"x\n", 2),
	          "and the existing file is unchanged");
	item_writer_free(&w);

	/* Stopped part-way (a failed or interrupted open) with work queued: the
	 * thread ends at once; stop again and free are safe. */
	CHECK(item_writer_init_ended(&w, imgfd) == 0 && item_writer_start_async(&w) == 0);
	r = item_writer_begin(&w, 0, "reads.jsonl", &e);
	for (size_t off = 0; r == 0 && off < bign; off += 300000)
		r = item_writer_data(&w, 0, big + off, bign - off < 300000 ? bign - off : 300000, &e);
	item_writer_stop(&w);
	CHECK_MSG(w.async == NULL, "stop ends the thread");
	CHECK_MSG(file_is(imgfd, "reads.jsonl", (const uint8_t *)"x\n", 2),
	          "and what it dropped overwrote nothing");
	item_writer_stop(&w);
	item_writer_free(&w);
	if (imgfd >= 0)
		close(imgfd);
	close(fd);
	free(big);
}

/* ---- the program ---------------------------------------------------------------- */

static void test_program(const struct sealed *big, const struct sealed *small,
                         const struct sealed *forged_big, const struct sealed *forged_small,
                         const char *tampered, const struct recipient *alice,
                         const struct recipient *bob)
{
	char outs[4200], out[4300], bundles[9000], json_path[4400];
	uint8_t *json;
	size_t n;
	int rc;

	snprintf(outs, sizeof outs, "%s/outs", tmpdir);
	if (!CHECK(mkdir(outs, 0700) == 0))
		return;

	/* Good: opens; every file's SHA-256 (now the reader's) is listed. */
	snprintf(out, sizeof out, "%s/good", outs);
	rc = run_open(big->path, alice, out);
	CHECK_MSG(rc == 0 && report_says(last_out, "ok", "ciphertext") &&
	          report_says(last_out, "ok", "payload"), "the large bundle opens (exit 0), ciphertext ok");
	snprintf(json_path, sizeof json_path, "%s/verification.json", out);
	json = fx_slurp(json_path, &n);
	if (CHECK_MSG(json != NULL, "verification.json written")) {
		int all = listed(out, "reads.jsonl", (char *)json) && listed(out, "reads.csv", (char *)json);
		char f[64];

		for (int i = 0; i < 8; i++) {
			snprintf(f, sizeof f, "images/r%d.plate.jpg", i);
			all = all && listed(out, f, (char *)json);
		}
		CHECK_MSG(all, "verification.json lists the SHA-256 of each file as written");
	}
	free(json);
	CHECK_MSG(!staging_left(outs, "good"), "no staging directory left after a good open");
	snprintf(out, sizeof out, "%s/good-small", outs);
	CHECK_MSG(run_open(small->path, alice, out) == 0, "the small bundle opens (exit 0)");

	/* The forged ciphertext hash: staged entirely, then all removed. */
	snprintf(out, sizeof out, "%s/forged", outs);
	rc = run_open(forged_big->path, alice, out);
	CHECK_MSG(rc == 1 && report_says(last_out, "FAILED", "ciphertext"),
	          "a bundle signing a wrong ciphertext hash is refused (exit 1, ciphertext FAILED)");
	CHECK_MSG(!exists(out) && !staging_left(outs, "forged"),
	          "... nothing in the output directory and no staging directory left");
	CHECK_MSG(strstr(last_out, "OPENED") == NULL, "... and the report does not say OPENED");
	snprintf(out, sizeof out, "%s/forged-small", outs);
	rc = run_open(forged_small->path, alice, out);
	CHECK_MSG(rc == 1 && report_says(last_out, "FAILED", "ciphertext") && !exists(out) &&
	          !staging_left(outs, "forged-small"),
	          "the same with a small bundle (hashed inline): refused, nothing left");

	/* A good bundle first (staged completely), then the forged one. */
	snprintf(out, sizeof out, "%s/mixed1", outs);
	snprintf(bundles, sizeof bundles, "'%s' '%s'", big->path, forged_big->path);
	rc = run_open(bundles, alice, out);
	CHECK_MSG(rc == 1 && !exists(out) && !staging_left(outs, "mixed1"),
	          "good + forged: refused; the good bundle's staged files are removed too");
	snprintf(out, sizeof out, "%s/mixed2", outs);
	snprintf(bundles, sizeof bundles, "'%s' '%s'", forged_big->path, big->path);
	rc = run_open(bundles, alice, out);
	CHECK_MSG(rc == 1 && !exists(out) && !staging_left(outs, "mixed2"),
	          "forged + good: refused, nothing written");
	CHECK_MSG(report_says(last_out, "FAILED", "ciphertext") &&
	          report_says(last_out, "ok", "ciphertext"),
	          "... the good bundle not decrypted still has its ciphertext checked in the report");

	/* A flipped ciphertext byte. */
	snprintf(out, sizeof out, "%s/tampered", outs);
	rc = run_open(tampered, alice, out);
	CHECK_MSG(rc == 1 && report_says(last_out, "FAILED", "ciphertext") &&
	          report_says(last_out, "FAILED", "payload") && !exists(out) &&
	          !staging_left(outs, "tampered"),
	          "a flipped ciphertext byte: ciphertext and payload FAILED, nothing written");

	/* Refused before decrypting: the ciphertext is still checked. */
	snprintf(out, sizeof out, "%s/bob", outs);
	rc = run_open(big->path, bob, out);
	CHECK_MSG(rc == 1 && report_says(last_out, "FAILED", "recipient") &&
	          report_says(last_out, "ok", "ciphertext") && !exists(out),
	          "another recipient is refused before decrypting; the report still checks the ciphertext");
	snprintf(out, sizeof out, "%s/bob2", outs);
	rc = run_open(forged_big->path, bob, out);
	CHECK_MSG(rc == 1 && report_says(last_out, "FAILED", "ciphertext") && !exists(out),
	          "... and reports a wrong ciphertext hash then");
}

int main(void)
{
	const char *top = getenv("SBX_TOP"), *bin = getenv("SBX_BIN");
	struct recipient alice, bob;
	struct sealed big, small, fbig, fsmall;
	char path[4300], dir[4300], tdir[4300], tampered[4400], cmd[4400];
	FILE *f;

	memset(&alice, 0, sizeof alice);
	memset(&bob, 0, sizeof bob);
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(bindir, sizeof bindir, "%s", bin != NULL ? bin : "build/release");
	snprintf(path, sizeof path, "%s/tests/vectors/bundle/TEST-ONLY-sign-key.pem",
	         top != NULL ? top : ".");
	f = fopen(path, "r");
	if (f != NULL) {
		sign_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	}
	snprintf(path, sizeof path, "%s/tests/vectors/bundle/identity.sbxi", top != NULL ? top : ".");
	vid = fx_slurp(path, &vidlen);
	if (!CHECK_MSG(sign_key != NULL && vid != NULL && identity_decode(vid, vidlen, &vident) == 0,
	               "the vector's test key and identity load"))
		goto out;

	test_readhash();
	test_item_writer();
	test_item_writer_async();

	/* big: 6 MB of images (above the threaded reader's threshold of 4 MB);
	 * small: 300 KB.  Each forged into its own directory with its release. */
	snprintf(dir, sizeof dir, "%s/b", tmpdir);
	if (!CHECK(mkdir(dir, 0700) == 0 && make_recipient(&alice, "alice") == 0 &&
	           make_recipient(&bob, "bob") == 0 && seal(dir, 20, 32, 190000, &big) == 0 &&
	           seal(dir, 5, 3, 100000, &small) == 0 &&
	           forge_ct_hash(&big, dir, &fbig) == 0 && forge_ct_hash(&small, dir, &fsmall) == 0 &&
	           make_release(&big, &alice, dir) == 0 && make_release(&small, &alice, dir) == 0 &&
	           make_release(&fbig, &alice, dir) == 0 && make_release(&fsmall, &alice, dir) == 0))
		goto out;
	{
		/* A copy of big with one ciphertext byte flipped, beside its release. */
		char rel_from[4400], rel_to[4400];
		size_t n;
		uint8_t *b = fx_slurp(big.path, &n);

		snprintf(tdir, sizeof tdir, "%s/t", tmpdir);
		mkdir(tdir, 0700);
		hex_name(big.bid, dir, "release", rel_from, sizeof rel_from);
		hex_name(big.bid, tdir, "release", rel_to, sizeof rel_to);
		hex_name(big.bid, tdir, "sbx", tampered, sizeof tampered);
		if (b != NULL)
			b[n / 2] ^= 0x01;
		if (!CHECK(b != NULL && fx_spit(tampered, b, n) == 0 && copy_file(rel_from, rel_to) == 0)) {
			free(b);
			goto out;
		}
		free(b);
	}
	printf("# big %llu plaintext bytes in %llu items\n", (unsigned long long)big.plaintext_bytes,
	       (unsigned long long)big.items);

	test_reader(&big, &small, &fbig, tampered);
	test_program(&big, &small, &fbig, &fsmall, tampered, &alice, &bob);
out:
	free(last_out);
	free_recipient(&alice);
	free_recipient(&bob);
	EVP_PKEY_free(sign_key);
	free(vid);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	CHECK(system(cmd) == 0);
	return check_done();
}

/* flipper: the tamper campaigns in-process, so that hundreds of thousands of
 * mutations run in minutes.  Each mutation goes through the same library
 * calls, in the same order and with the same options, as the program it
 * stands for:
 *
 *   sealbox-verify BUNDLE --identity I --ek-ca CA [--custody C]:
 *       bundle_open_mem, bundle_verify (pinned identity, EK CA), and with a
 *       custody file bundle_custody_decode + bundle_custody_verify.
 *   sealbox-open BUNDLE --key K --cert C --identity I --ek-ca CA --out DIR
 *       (the release file beside it): bundle_open_mem, bundle_verify,
 *       release_file_decode, release_verify_report, release_match_recipient,
 *       release_unwrap, then (only if all of that passed, as sealbox-open
 *       does) staging_new + item_writer + bundle_payload_read +
 *       item_writer_finish and the item-count check, staging_abort on
 *       failure.  After every rejected mutation the output directory must
 *       not exist and no staging directory may be left beside it; the bytes
 *       of plaintext written before a rejection are counted.
 *   sealbox-verify --log EXPORT --identity I --ek-ca CA: logexport_verify.
 *
 * The original input must be accepted first (else the campaign proves
 * nothing); then every mutation must be rejected.
 *
 *   flipper bits   BUNDLE [--custody C] --identity I --ek-ca CA   every bit
 *   flipper bytes  BUNDLE RELEASE --key K --cert C --identity I --ek-ca CA
 *                  [--scratch DIR]      every byte of both files, XOR-ed
 *                                       with a value 1..255 varying by offset
 *   flipper log    EXPORT --identity I --ek-ca CA
 *                  every single-record modify, delete, insert, swap of
 *                  neighbours, duplicate (counts, sequence numbers and the
 *                  trailing checksum rewritten, as a forger would), every
 *                  record-count truncation (heads kept), every byte
 *                  truncation of the file, and every rollback (records and
 *                  the heads that cover them dropped) against the original
 *                  as the auditor's earlier-kept export (--since)
 *   common options: --step K (every K-th mutation; reduced runs),
 *                   --jobs J (worker processes), --limit N (first N only),
 *                   --no-memo (verify every signature; see below),
 *                   --range A:B (mutations A..B-1 only; for bytes, the
 *                   release file's bytes follow the bundle's)
 *   log only:       --save DIR (write each mutated export tried to
 *                   DIR/KIND-I.sbxl; with a large --step, the sample that
 *                   tamper.sh runs through the real sealbox-verify)
 *
 * Prints one line per campaign: mutations, rejected, accepted, seconds, and
 * each accepted mutation.  Exit 0 only if the original passed and every
 * mutation was rejected. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "crypto/err.h"
#include "crypto/hash.h"
#include "crypto/sig.h"
#include "export/bundle.h"
#include "export/identity.h"
#include "export/keyfile.h"
#include "export/logexport.h"
#include "export/logrec.h"
#include "export/release.h"
#include "export/staging.h"
#include "export/wire.h"

struct cfg {
	const char *identity_path, *ekca, *custody_path, *key, *cert, *scratch, *save;
	uint64_t step, limit, from, to;
	int jobs;
	/* loaded */
	struct identity pinned;
	uint8_t *identity_bytes;
	size_t identity_len;
	struct bundle_custody *custody;
	EVP_PKEY *priv;
	X509 *own;
};

static uint8_t *load(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b = NULL;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		goto out;
	b = malloc((size_t)n + 1);
	if (b == NULL || fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
		goto out;
	}
	*len = (size_t)n;
out:
	if (f != NULL)
		fclose(f);
	if (b == NULL)
		fprintf(stderr, "flipper: cannot read %s\n", path);
	return b;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- memoized signature checks --------------------------------------------
 *
 * Linked with -Wl,--wrap=sig_verify (mk/harden.mk): every sig_verify call of
 * the library comes here.  Mutations leave most signatures as they were (a
 * log export's 10,000 tree heads); without a memo, rejecting one tampered
 * 10,000-record export costs up to 10,000 ECDSA verifications.
 *
 * Why the memo cannot make a mutation pass that the real verifier would
 * reject:
 *   - Only successes are remembered.  A hit answers "valid" solely for an
 *     input that __real_sig_verify itself accepted earlier in this process
 *     (the original input is verified first, so its signatures are the
 *     entries).  Every failure, and every input not seen before, goes to the
 *     real verifier each time; so the memo cannot turn a rejection into an
 *     acceptance, nor (as a remembered failure could) hide a forgery the
 *     real code would accept behind an earlier transient error.
 *   - sig_verify is a pure function of (public key, namespace, message,
 *     signature): it reads no state, no clock, no file; it returns 0 or
 *     SBX_EVERIFY.  The key is SHA-256 over all four, each length-prefixed
 *     (no two inputs share an encoding), the public key by the SHA-256 of
 *     its full DER SubjectPublicKeyInfo (so a flipped key byte, curve or
 *     point is a different entry).  A false hit needs a SHA-256 collision.
 *   - The key digest is cached per EVP_PKEY object; the reference held on
 *     it keeps the address from being reused for another key.
 *   - Workers are forked: each has its own copy of the table, nothing is
 *     shared or written back.
 * The real programs run without it: tamper.sh checks a sample through
 * sealbox-verify and sealbox-open, and a sample with --no-memo, which must
 * give the same verdicts. */
int __real_sig_verify(EVP_PKEY *pub, const char *ns, const uint8_t *msg, size_t len,
                      const uint8_t *sig, size_t siglen);
int __wrap_sig_verify(EVP_PKEY *pub, const char *ns, const uint8_t *msg, size_t len,
                      const uint8_t *sig, size_t siglen);

#define MEMO_SLOTS (1u << 18)
struct memo_slot {
	uint8_t key[32];
	int used;       /* holds an input __real_sig_verify accepted */
};
static struct memo_slot *memo;
static EVP_PKEY *memo_pub;
static uint8_t memo_pub_sha256[32];
static uint64_t memo_hits, memo_misses, memo_used;

/* Every check that reaches OpenSSL, counted. */
static int real_verify(EVP_PKEY *pub, const char *ns, const uint8_t *msg, size_t len,
                       const uint8_t *sig, size_t siglen)
{
	memo_misses++;
	return __real_sig_verify(pub, ns, msg, len, sig, siglen);
}

int __wrap_sig_verify(EVP_PKEY *pub, const char *ns, const uint8_t *msg, size_t len,
                      const uint8_t *sig, size_t siglen)
{
	struct hash_ctx *h = NULL;
	unsigned char *der = NULL;
	uint8_t key[32], lens[24];
	int dn, r;
	uint32_t slot;

	if (memo == NULL || pub == NULL)
		return real_verify(pub, ns, msg, len, sig, siglen);
	/* The key's DER, digested once per key object: encoding a key costs
	 * more than the verification it would save.  The reference held keeps
	 * the object (and so its address) from being reused for another key. */
	if (pub != memo_pub) {
		dn = i2d_PUBKEY(pub, &der);
		if (dn <= 0 || hash_sha256(der, (size_t)dn, memo_pub_sha256) != 0 ||
		    EVP_PKEY_up_ref(pub) != 1) {
			OPENSSL_free(der);
			return real_verify(pub, ns, msg, len, sig, siglen);
		}
		OPENSSL_free(der);
		EVP_PKEY_free(memo_pub);
		memo_pub = pub;
	}
	h = hash_new();
	if (h == NULL)
		return real_verify(pub, ns, msg, len, sig, siglen);
	/* Length-prefixed parts, so no two inputs share a key. */
	for (int i = 0; i < 8; i++) {
		lens[i] = (uint8_t)((uint64_t)strlen(ns) >> (8 * i));
		lens[8 + i] = (uint8_t)((uint64_t)len >> (8 * i));
		lens[16 + i] = (uint8_t)((uint64_t)siglen >> (8 * i));
	}
	r = hash_update(h, lens, sizeof lens) | hash_update(h, memo_pub_sha256, 32) |
	    hash_update(h, ns, strlen(ns)) | (len > 0 ? hash_update(h, msg, len) : 0) |
	    (siglen > 0 ? hash_update(h, sig, siglen) : 0) | hash_final(h, key);
	hash_free(h);
	if (r != 0)
		return real_verify(pub, ns, msg, len, sig, siglen);
	slot = ((uint32_t)key[0] | (uint32_t)key[1] << 8 | (uint32_t)key[2] << 16) % MEMO_SLOTS;
	for (uint32_t k = 0; k < MEMO_SLOTS; k++, slot = (slot + 1) % MEMO_SLOTS) {
		struct memo_slot *m = &memo[slot];

		if (m->used && memcmp(m->key, key, 32) == 0) {
			memo_hits++;
			return 0;
		}
		if (!m->used) {
			r = real_verify(pub, ns, msg, len, sig, siglen);
			/* Successes only (see above); and the table is never more
			 * than half full, so every probe sequence ends. */
			if (r == 0 && memo_used < MEMO_SLOTS / 2) {
				memo_used++;
				memcpy(m->key, key, 32);
				m->used = 1;
			}
			return r;
		}
	}
	return real_verify(pub, ns, msg, len, sig, siglen);
}

/* ---- the paths ---------------------------------------------------------- */

/* sealbox-verify on one bundle: 1 accepted, 0 rejected. */
static int verify_accepts(const struct cfg *c, const uint8_t *p, size_t n)
{
	struct bundle *b = NULL;
	struct bundle_verify_opts bo = { 0 };
	struct bundle_report rep;
	struct sbx_err e = { 0 };
	int ok = 0;

	if (bundle_open_mem(p, n, &b, &e) != 0)
		goto out;
	bo.pinned = c->identity_path != NULL ? &c->pinned : NULL;
	bo.ek_ca_pem = c->ekca;
	memset(&rep, 0, sizeof rep);
	rep.policy_ok = -1;
	if (bundle_verify(b, &bo, &rep, &e) != 0)
		goto out;
	if (c->custody != NULL && bundle_custody_verify(b, c->custody, NULL, &e) != 0)
		goto out;
	ok = 1;
out:
	bundle_close(b);
	return ok;
}

/* Bytes in regular files under dirfd (recursively); -1 on error. */
static long long tree_bytes(int fd)
{
	DIR *d = fdopendir(fd);
	struct dirent *de;
	long long sum = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			long long k = sub >= 0 ? tree_bytes(sub) : -1;

			sum += k > 0 ? k : 0;
		} else {
			sum += st.st_size;
		}
	}
	closedir(d);
	return sum;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* rm -rf, without a shell. */
static int remove_tree(const char *dir)
{
	return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int entries_in(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	return n;
}

struct open_result {
	int accepted;
	long long leaked;       /* plaintext bytes written before the rejection */
	int left_behind;        /* output or staging directory left after a rejection */
};

/* sealbox-open on one bundle and its release file. */
static void open_path(const struct cfg *c, const uint8_t *bp, size_t bn, const uint8_t *rp,
                      size_t rn, const char *out_dir, struct open_result *res)
{
	struct bundle *b = NULL;
	struct bundle_verify_opts bo = { 0 };
	struct bundle_report rep;
	struct release_file rf = { 0 };
	struct release_statement st;
	struct release_report *rr = NULL;
	struct staging *stage = NULL;
	struct item_writer w;
	struct bundle_item_sink sink = { &w, item_writer_begin, item_writer_data };
	struct sbx_err e = { 0 };
	uint8_t cek[32];
	int have_writer = 0, ok = 0;

	memset(res, 0, sizeof *res);
	memset(&w, 0, sizeof w);
	if (bundle_open_mem(bp, bn, &b, &e) != 0)
		goto out;
	bo.pinned = c->identity_path != NULL ? &c->pinned : NULL;
	bo.ek_ca_pem = c->ekca;
	memset(&rep, 0, sizeof rep);
	rep.policy_ok = -1;
	if (bundle_verify(b, &bo, &rep, &e) != 0)
		goto out;
	if (release_file_decode(rp, rn, &rf, &e) != 0)
		goto out;
	rr = calloc(1, sizeof *rr);
	if (rr == NULL)
		goto out;
	sbx_err_clear(&e);
	release_verify_report(b, &rf, &st, rr, &e);
	for (int k = 0; k < RELEASE_N_CHECKS; k++)
		if (rr->status[k] != RELEASE_PASS)
			goto out;
	if (!rr->statement_parsed)
		goto out;
	if (release_match_recipient(&rf, c->own, c->priv, &e) != 0)
		goto out;
	if (release_unwrap(&rf, &st, c->priv, cek, &e) != 0)
		goto out;
	/* Everything public passed: sealbox-open decrypts into its staging
	 * directory now. */
	if (staging_new(out_dir, &stage, &e) != 0 || item_writer_init(&w, staging_fd(stage)) != 0) {
		fprintf(stderr, "flipper: staging: %s\n", e.msg);
		goto out;
	}
	have_writer = 1;
	if (bundle_payload_read(b, cek, &sink, &e) != 0 || item_writer_finish(&w, &e) != 0)
		goto out;
	if (w.n < 2 || strcmp(w.items[0].path, "reads.jsonl") != 0 ||
	    strcmp(w.items[1].path, "reads.csv") != 0 || w.n != bundle_manifest(b)->items ||
	    w.images != bundle_manifest(b)->images || w.jsonl_lines != bundle_manifest(b)->reads)
		goto out;
	ok = 1;
out:
	OPENSSL_cleanse(cek, sizeof cek);
	if (stage != NULL) {
		int fd = dup(staging_fd(stage));

		res->leaked = fd >= 0 ? tree_bytes(fd) : 0;
		if (ok) {
			if (staging_commit(stage, &e) != 0)
				ok = 0;
		} else {
			staging_abort(stage);
		}
	}
	if (have_writer)
		item_writer_free(&w);
	free(rr);
	release_file_free(&rf);
	bundle_close(b);
	res->accepted = ok;
	if (!ok) {
		struct stat sb;
		char parent[4096];

		snprintf(parent, sizeof parent, "%s", out_dir);
		*strrchr(parent, '/') = '\0';
		res->left_behind = stat(out_dir, &sb) == 0 || entries_in(parent) != 0;
	} else {
		res->leaked = 0;
	}
}

/* ---- running a campaign over J workers ----------------------------------- */

struct tally {
	uint64_t tried, rejected, accepted, left_behind;
	uint64_t sig_memo, sig_real;    /* signature checks answered by the memo, verified */
	long long max_leaked;
};

/* Mutation i of a campaign: returns 1 accepted, 0 rejected; fills a note
 * for accepted ones. */
typedef int (*mutate_fn)(const struct cfg *c, void *arg, uint64_t i, int worker,
                         struct open_result *extra, char *note, size_t cap);

static int run_campaign(const struct cfg *c, const char *name, uint64_t total, mutate_fn fn,
                        void *arg)
{
	struct tally sum = { 0 };
	double t0 = now_s();
	uint64_t expected = 0;
	int jobs = c->jobs > 0 ? c->jobs : 1, failed = 0;
	int pfd[2];
	pid_t *pids = calloc((size_t)jobs, sizeof *pids);

	if (pids == NULL || pipe(pfd) != 0) {
		free(pids);
		return 1;
	}
	fflush(stdout);
	for (int wk = 0; wk < jobs; wk++) {
		pids[wk] = fork();
		if (pids[wk] < 0) {
			/* Those already started finish; their results are lost. */
			for (int k = 0; k < wk; k++)
				waitpid(pids[k], NULL, 0);
			free(pids);
			return 1;
		}
		if (pids[wk] == 0) {
			struct tally t = { 0 };
			uint64_t k = 0;

			close(pfd[0]);
			memo_hits = memo_misses = 0;
			for (uint64_t i = c->from; i < total && i < c->to; i += c->step, k++) {
				struct open_result x = { 0 };
				char note[256] = "";

				if (c->limit && k >= c->limit)
					break;
				if ((int)(k % (uint64_t)jobs) != wk)
					continue;
				t.tried++;
				if (fn(c, arg, i, wk, &x, note, sizeof note)) {
					t.accepted++;
					printf("ACCEPTED %s mutation %" PRIu64 ": %s\n", name, i, note);
					fflush(stdout);
				} else {
					t.rejected++;
				}
				if (x.left_behind) {
					t.left_behind++;
					printf("LEFT BEHIND %s mutation %" PRIu64 ": output or staging directory remains\n",
					       name, i);
					fflush(stdout);
				}
				if (x.leaked > t.max_leaked)
					t.max_leaked = x.leaked;
			}
			t.sig_memo = memo_hits;
			t.sig_real = memo_misses;
			if (write(pfd[1], &t, sizeof t) != (ssize_t)sizeof t)
				_exit(2);
			/* exit, not _exit: under ASan the leak check then covers
			 * every rejection path the worker went through. */
			free(pids);
			exit(0);
		}
	}
	close(pfd[1]);
	for (int wk = 0; wk < jobs; wk++) {
		struct tally t;
		int st;

		if (read(pfd[0], &t, sizeof t) == (ssize_t)sizeof t) {
			sum.tried += t.tried;
			sum.rejected += t.rejected;
			sum.accepted += t.accepted;
			sum.left_behind += t.left_behind;
			sum.sig_memo += t.sig_memo;
			sum.sig_real += t.sig_real;
			if (t.max_leaked > sum.max_leaked)
				sum.max_leaked = t.max_leaked;
		}
		(void)st;
	}
	/* A worker that crashed (a sanitizer report on a rejection path, a
	 * signal) took its mutations with it: the campaign is incomplete, not
	 * passed. */
	for (int wk = 0; wk < jobs; wk++) {
		int st = 0;

		while (waitpid(pids[wk], &st, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed++;
	}
	for (uint64_t i = c->from; i < total && i < c->to; i += c->step) {
		if (c->limit && expected >= c->limit)
			break;
		expected++;
	}
	close(pfd[0]);
	free(pids);
	printf("campaign %s: %" PRIu64 " mutations, %" PRIu64 " rejected, %" PRIu64
	       " accepted, %" PRIu64 " left files behind, max %lld plaintext bytes written before"
	       " a rejection, %.1f s (signature checks: %" PRIu64 " from the memo, %" PRIu64
	       " verified%s)", name, sum.tried, sum.rejected, sum.accepted,
	       sum.left_behind, sum.max_leaked, now_s() - t0, sum.sig_memo, sum.sig_real,
	       memo == NULL ? ", memo off" : "");
	if (failed > 0 || sum.tried != expected)
		printf(" INCOMPLETE: %" PRIu64 " of %" PRIu64 " mutations ran, %d of %d workers failed",
		       sum.tried, expected, failed, jobs);
	printf("\n");
	fflush(stdout);
	return sum.accepted == 0 && sum.left_behind == 0 && sum.tried > 0 && failed == 0 &&
	       sum.tried == expected ? 0 : 1;
}

/* ---- bits of a bundle ------------------------------------------------------ */

struct buf {
	uint8_t *p;
	size_t n;
};

static int m_bit(const struct cfg *c, void *arg, uint64_t i, int worker, struct open_result *x,
                 char *note, size_t cap)
{
	struct buf *b = arg;
	size_t off = (size_t)(i / 8);
	uint8_t bit = (uint8_t)(1u << (i % 8));
	int acc;

	b->p[off] ^= bit;
	acc = verify_accepts(c, b->p, b->n);
	b->p[off] ^= bit;
	snprintf(note, cap, "byte %zu bit %u", off, (unsigned)(i % 8));
	return acc;
}

/* ---- bytes of a release ------------------------------------------------------ */

struct rel {
	uint8_t *bp, *rp;
	size_t bn, rn;
	const char *scratch;
};

static uint8_t xor_for(uint64_t i)
{
	uint64_t z = i * 0x9e3779b97f4a7c15ULL;

	z ^= z >> 29;
	return (uint8_t)(1 + z % 255);
}

static void out_dir_for(const struct rel *r, int worker, char *out, size_t cap)
{
	/* One parent per worker: "left behind" looks at the parent. */
	snprintf(out, cap, "%s/w%d/out", r->scratch, worker);
}

static int m_byte(const struct cfg *c, void *arg, uint64_t i, int worker, struct open_result *x,
                  char *note, size_t cap)
{
	struct rel *r = arg;
	uint8_t v = xor_for(i);
	uint8_t *p = i < r->bn ? r->bp + i : r->rp + (i - r->bn);
	char out[4096];

	out_dir_for(r, worker, out, sizeof out);
	*p ^= v;
	open_path(c, r->bp, r->bn, r->rp, r->rn, out, x);
	*p ^= v;
	snprintf(note, cap, "%s byte %" PRIu64 " ^= 0x%02x", i < r->bn ? "bundle" : "release",
	         i < r->bn ? i : i - r->bn, v);
	return x->accepted;
}

/* ---- the log export -------------------------------------------------------- */

struct logx {
	uint8_t *orig;
	size_t len;
	size_t id_off, id_len;          /* the identity field (bytes32, with its length) */
	uint64_t n, nh;
	size_t *roff, *rlen;            /* record i: offset of its bytes, length */
	size_t heads_off, heads_len;    /* from n_heads through the last signature */
	size_t *hoff;                   /* head j's offset (its STH bytes) */
	uint64_t *hsize;                /* head j's tree size */
	uint8_t *mod;                   /* record i, modified (re-encoded), per record */
	size_t *modoff, *modlen;
};

static int log_parse(struct logx *L)
{
	struct wire_r r;
	size_t id_len;

	wire_r_init(&r, L->orig, L->len);
	if (wire_get_raw(&r, 5) == NULL)
		return -1;
	L->id_off = r.off;
	if (wire_get_bytes32(&r, LOGEXPORT_MAX_IDENTITY, &id_len) == NULL)
		return -1;
	L->id_len = r.off - L->id_off;
	L->n = wire_get_u64(&r);
	if (r.err || L->n > LOGEXPORT_MAX_RECORDS)
		return -1;
	L->roff = calloc(L->n + 1, sizeof *L->roff);
	L->rlen = calloc(L->n + 1, sizeof *L->rlen);
	if (L->roff == NULL || L->rlen == NULL)
		return -1;
	for (uint64_t i = 0; i < L->n; i++) {
		size_t k;

		if (wire_get_bytes32(&r, LOGREC_MAX_ENCODED, &k) == NULL)
			return -1;
		L->roff[i] = r.off - k;
		L->rlen[i] = k;
	}
	L->heads_off = r.off;
	L->nh = wire_get_u64(&r);
	if (r.err || L->nh > LOGEXPORT_MAX_HEADS)
		return -1;
	L->hoff = calloc(L->nh + 1, sizeof *L->hoff);
	L->hsize = calloc(L->nh + 1, sizeof *L->hsize);
	if (L->hoff == NULL || L->hsize == NULL)
		return -1;
	for (uint64_t j = 0; j < L->nh; j++) {
		struct sth h;
		size_t k;

		L->hoff[j] = r.off;
		if (wire_get_raw(&r, STH_ENCODED_LEN) == NULL ||
		    sth_decode(L->orig + L->hoff[j], STH_ENCODED_LEN, &h) != 0 ||
		    wire_get_bytes32(&r, 1024, &k) == NULL)
			return -1;
		L->hsize[j] = h.tree_size;
	}
	L->heads_len = r.off - L->heads_off;
	if (L->len - r.off != 32)
		return -1;
	return 0;
}

/* Assembles an export: records given by (pointer, length, seq or
 * UINT64_MAX to keep), the heads block [h0, h1) of the original, and a
 * fresh checksum.  *out is valid until the next call. */
struct recv {
	const uint8_t *p;
	size_t n;
	uint64_t seq;
};

/* Built in one buffer reused for every mutation (3 MB exports, 10^5
 * times: allocation and page faults would cost more than the checks). */
static uint8_t *lb_buf;
static size_t lb_cap;

static void put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static int log_build(const struct logx *L, const struct recv *recs, uint64_t n, uint64_t h0,
                     uint64_t h1, uint8_t **out, size_t *outlen)
{
	size_t need = L->id_off + L->id_len + 8 + 8 + 32, off = 0, ha = 0, hb = 0;

	for (uint64_t i = 0; i < n; i++)
		need += 4 + recs[i].n;
	if (h1 > h0) {
		ha = L->hoff[h0];
		hb = h1 < L->nh ? L->hoff[h1] : L->heads_off + L->heads_len;
		need += hb - ha;
	}
	if (need > lb_cap) {
		uint8_t *nb = realloc(lb_buf, need);

		if (nb == NULL)
			return -1;
		lb_buf = nb;
		lb_cap = need;
	}
	memcpy(lb_buf, L->orig, L->id_off + L->id_len);
	off = L->id_off + L->id_len;
	put_be(lb_buf + off, n, 8);
	off += 8;
	for (uint64_t i = 0; i < n; i++) {
		put_be(lb_buf + off, recs[i].n, 4);
		off += 4;
		memcpy(lb_buf + off, recs[i].p, recs[i].n);
		/* "SBXR" u8 version, then u64 seq */
		if (recs[i].seq != UINT64_MAX && recs[i].n >= 13)
			put_be(lb_buf + off + 5, recs[i].seq, 8);
		off += recs[i].n;
	}
	put_be(lb_buf + off, h1 - h0, 8);
	off += 8;
	memcpy(lb_buf + off, L->orig + ha, hb - ha);
	off += hb - ha;
	if (hash_sha256(lb_buf, off, lb_buf + off) != 0)
		return -1;
	*out = lb_buf;
	*outlen = off + 32;
	return 0;
}

static int log_accepts(const struct cfg *c, const uint8_t *p, size_t n, const uint8_t *older,
                       size_t older_len)
{
	struct logexport_opts lo = { 0 };
	struct logexport_report *rep = calloc(1, sizeof *rep);
	struct sbx_err e = { 0 };
	int ok;

	if (rep == NULL)
		return 0;
	lo.pin_identity = c->identity_bytes;
	lo.pin_identity_len = c->identity_len;
	lo.ek_ca_pem = c->ekca;
	lo.older = older;
	lo.older_len = older_len;
	/* sealbox-verify keeps going to report every check; the verdict is
	 * the same, and stopping at the first failure is what makes 10^5
	 * runs affordable. */
	lo.keep_going = 0;
	ok = logexport_verify(p, n, &lo, rep, &e) == 0;
	free(rep);
	return ok;
}

enum { LM_MODIFY, LM_DELETE, LM_INSERT, LM_SWAP, LM_DUP, LM_CUT_RECORDS, LM_ROLLBACK, LM_N };
static const char *const lm_name[LM_N] = { "modify", "delete", "insert", "swap", "duplicate",
                                           "truncate-records", "rollback" };

struct logm {
	struct logx *L;
	int kind;
	struct recv *scratch;
};

/* Record i, modified as a forger would: a valid record with another
 * detail ("n=..." gets a digit) and the same sequence number. */
static int log_prepare_mods(struct logx *L)
{
	struct logrec *r = malloc(sizeof *r);
	size_t cap = 0, used = 0;

	L->modoff = calloc(L->n + 1, sizeof *L->modoff);
	L->modlen = calloc(L->n + 1, sizeof *L->modlen);
	if (r == NULL || L->modoff == NULL || L->modlen == NULL) {
		free(r);
		return -1;
	}
	for (uint64_t i = 0; i < L->n; i++) {
		uint8_t *enc = NULL;
		size_t n = 0, dl;

		if (logrec_decode(L->orig + L->roff[i], L->rlen[i], r) != 0) {
			free(r);
			return -1;
		}
		dl = strlen(r->detail);
		if (dl < LOGREC_MAX_DETAIL) {
			r->detail[dl] = '7';
			r->detail[dl + 1] = '\0';
		} else {
			r->detail[dl - 1] ^= 1;
		}
		if (logrec_encode(r, &enc, &n) != 0) {
			free(r);
			return -1;
		}
		if (used + n > cap) {
			uint8_t *nm;

			cap = (used + n) * 2;
			nm = realloc(L->mod, cap);
			if (nm == NULL) {
				free(enc);
				free(r);
				return -1;
			}
			L->mod = nm;
		}
		memcpy(L->mod + used, enc, n);
		L->modoff[i] = used;
		L->modlen[i] = n;
		used += n;
		free(enc);
	}
	free(r);
	return 0;
}

/* --save DIR: the mutated export as DIR/KIND-I.sbxl, for tamper.sh to run
 * through the real sealbox-verify. */
static int save_file(const char *dir, const char *kind, uint64_t i, const uint8_t *p, size_t n)
{
	char path[4096];
	FILE *f;
	int r;

	snprintf(path, sizeof path, "%s/%s-%" PRIu64 ".sbxl", dir, kind, i);
	f = fopen(path, "wbx");
	if (f == NULL)
		return -1;
	r = fwrite(p, 1, n, f) == n ? 0 : -1;
	if (fclose(f) != 0)
		r = -1;
	return r;
}

static int m_log(const struct cfg *c, void *arg, uint64_t i, int worker, struct open_result *x,
                 char *note, size_t cap)
{
	struct logm *m = arg;
	struct logx *L = m->L;
	struct recv *v = m->scratch;
	uint64_t n = 0, h1 = L->nh;
	uint8_t *out = NULL;
	size_t len = 0;
	int acc;

	/* The records as they are, renumbered in order afterwards: a forger
	 * keeps seq == index. */
	switch (m->kind) {
	case LM_MODIFY:
		for (uint64_t k = 0; k < L->n; k++)
			v[n++] = (struct recv){ L->orig + L->roff[k], L->rlen[k], UINT64_MAX };
		v[i] = (struct recv){ L->mod + L->modoff[i], L->modlen[i], UINT64_MAX };
		snprintf(note, cap, "record %" PRIu64 " modified (detail)", i);
		break;
	case LM_DELETE:
		for (uint64_t k = 0; k < L->n; k++)
			if (k != i)
				v[n++] = (struct recv){ L->orig + L->roff[k], L->rlen[k], 0 };
		snprintf(note, cap, "record %" PRIu64 " deleted", i);
		break;
	case LM_INSERT:       /* a forged record (record i, modified) before record i */
		for (uint64_t k = 0; k <= L->n; k++) {
			if (k == i)
				v[n++] = (struct recv){ L->mod + L->modoff[i < L->n ? i : L->n - 1],
				                        L->modlen[i < L->n ? i : L->n - 1], 0 };
			if (k < L->n)
				v[n++] = (struct recv){ L->orig + L->roff[k], L->rlen[k], 0 };
		}
		snprintf(note, cap, "forged record inserted at %" PRIu64, i);
		break;
	case LM_SWAP:
		for (uint64_t k = 0; k < L->n; k++)
			v[n++] = (struct recv){ L->orig + L->roff[k], L->rlen[k], 0 };
		{
			struct recv t = v[i];

			v[i] = v[i + 1];
			v[i + 1] = t;
		}
		snprintf(note, cap, "records %" PRIu64 " and %" PRIu64 " swapped", i, i + 1);
		break;
	case LM_DUP:
		for (uint64_t k = 0; k < L->n; k++) {
			v[n++] = (struct recv){ L->orig + L->roff[k], L->rlen[k], 0 };
			if (k == i)
				v[n++] = (struct recv){ L->orig + L->roff[k], L->rlen[k], 0 };
		}
		snprintf(note, cap, "record %" PRIu64 " duplicated", i);
		break;
	case LM_CUT_RECORDS:  /* the first i records, every head kept */
	case LM_ROLLBACK:     /* the first i records and only the heads they support */
		for (uint64_t k = 0; k < i; k++)
			v[n++] = (struct recv){ L->orig + L->roff[k], L->rlen[k], UINT64_MAX };
		if (m->kind == LM_ROLLBACK) {
			h1 = 0;
			while (h1 < L->nh && L->hsize[h1] <= i)
				h1++;
		}
		snprintf(note, cap, "cut to %" PRIu64 " records, %" PRIu64 " heads", i, h1);
		break;
	default:
		return 0;
	}
	for (uint64_t k = 0; k < n; k++)
		if (v[k].seq != UINT64_MAX)
			v[k].seq = k;
	if (log_build(L, v, n, 0, h1, &out, &len) != 0)
		return 0;
	/* A rollback is a genuine earlier export on its own: only an auditor
	 * who kept a later one (--since) can tell.  Against the original it
	 * must fail: the original is not a prefix of it. */
	acc = m->kind == LM_ROLLBACK ? log_accepts(c, out, len, L->orig, L->len)
	                             : log_accepts(c, out, len, NULL, 0);
	if (c->save != NULL && save_file(c->save, lm_name[m->kind], i, out, len) != 0)
		fprintf(stderr, "flipper: cannot save %s mutation %" PRIu64 " in %s\n",
		        lm_name[m->kind], i, c->save);
	return acc;
}

static int m_cut_bytes(const struct cfg *c, void *arg, uint64_t i, int worker,
                       struct open_result *x, char *note, size_t cap)
{
	struct logx *L = arg;

	snprintf(note, cap, "file cut to %" PRIu64 " bytes", i);
	if (c->save != NULL && save_file(c->save, "truncate-bytes", i, L->orig, (size_t)i) != 0)
		fprintf(stderr, "flipper: cannot save truncation %" PRIu64 " in %s\n", i, c->save);
	return log_accepts(c, L->orig, (size_t)i, NULL, 0);
}

/* ---- main ------------------------------------------------------------------ */

static int usage(void)
{
	fprintf(stderr, "usage: flipper bits BUNDLE [--custody C] --identity I --ek-ca CA\n"
	                "       flipper bytes BUNDLE RELEASE --key K --cert C --identity I --ek-ca CA"
	                " [--scratch DIR]\n"
	                "       flipper log EXPORT --identity I --ek-ca CA [--only KIND] [--save DIR]\n"
	                "       [--step K] [--jobs J] [--limit N] [--range A:B] [--no-memo]\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "identity", required_argument, NULL, 'i' }, { "ek-ca", required_argument, NULL, 'c' },
		{ "custody", required_argument, NULL, 'u' }, { "key", required_argument, NULL, 'k' },
		{ "cert", required_argument, NULL, 'C' }, { "scratch", required_argument, NULL, 's' },
		{ "step", required_argument, NULL, 'S' }, { "jobs", required_argument, NULL, 'j' },
		{ "limit", required_argument, NULL, 'l' }, { "only", required_argument, NULL, 'o' },
		{ "no-memo", no_argument, NULL, 'M' }, { "range", required_argument, NULL, 'r' },
		{ "save", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 }
	};
	struct cfg c;
	struct sbx_err e = { 0 };
	const char *mode, *only = NULL;
	int ch, rc = 1, use_memo = 1;
	char *endp = NULL;

	memset(&c, 0, sizeof c);
	c.step = 1;
	c.jobs = 1;
	c.to = UINT64_MAX;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'i': c.identity_path = optarg; break;
		case 'c': c.ekca = optarg; break;
		case 'u': c.custody_path = optarg; break;
		case 'k': c.key = optarg; break;
		case 'C': c.cert = optarg; break;
		case 's': c.scratch = optarg; break;
		case 'S': c.step = strtoull(optarg, NULL, 10); break;
		case 'j': c.jobs = (int)strtol(optarg, NULL, 10); break;
		case 'l': c.limit = strtoull(optarg, NULL, 10); break;
		case 'o': only = optarg; break;
		case 'M': use_memo = 0; break;
		case 'w': c.save = optarg; break;
		case 'r':
			c.from = strtoull(optarg, &endp, 10);
			c.to = *endp == ':' && endp[1] != '\0' ? strtoull(endp + 1, NULL, 10) : UINT64_MAX;
			break;
		default: return usage();
		}
	}
	if (optind >= argc || c.step == 0 || c.jobs < 1 || c.jobs > 64)
		return usage();
	mode = argv[optind++];
	if (use_memo && (memo = calloc(MEMO_SLOTS, sizeof *memo)) == NULL)
		return 2;
	if (c.identity_path != NULL) {
		c.identity_bytes = load(c.identity_path, &c.identity_len);
		if (c.identity_bytes == NULL ||
		    identity_decode(c.identity_bytes, c.identity_len, &c.pinned) != 0) {
			fprintf(stderr, "flipper: %s: not an identity file\n", c.identity_path);
			return 2;
		}
	}
	if (c.custody_path != NULL) {
		size_t n;
		uint8_t *b = load(c.custody_path, &n);

		c.custody = calloc(1, sizeof *c.custody);
		if (b == NULL || c.custody == NULL || bundle_custody_decode(b, n, c.custody, &e) != 0) {
			fprintf(stderr, "flipper: %s: %s\n", c.custody_path, e.msg);
			free(b);
			free(c.custody);
			return 2;
		}
		free(b);
	}

	if (strcmp(mode, "bits") == 0 && optind + 1 == argc) {
		struct buf b;

		b.p = load(argv[optind], &b.n);
		if (b.p == NULL)
			return 2;
		if (!verify_accepts(&c, b.p, b.n)) {
			fprintf(stderr, "flipper: the original bundle does not verify\n");
			return 1;
		}
		printf("original %s (%zu bytes) verifies\n", argv[optind], b.n);
		rc = run_campaign(&c, "bundle-bits", (uint64_t)b.n * 8, m_bit, &b);
		free(b.p);
	} else if (strcmp(mode, "bytes") == 0 && optind + 2 == argc) {
		static struct rel r;
		struct open_result x;
		char out[4096];

		r.bp = load(argv[optind], &r.bn);
		r.rp = load(argv[optind + 1], &r.rn);
		if (r.bp == NULL || r.rp == NULL || c.key == NULL || c.scratch == NULL)
			return usage();
		if (keyfile_load(c.key, NULL, &c.priv, &c.own, &e) != 0 ||
		    (c.cert != NULL && (X509_free(c.own), keyfile_load_cert(c.cert, &c.own, &e)) != 0)) {
			fprintf(stderr, "flipper: %s\n", e.msg);
			return 2;
		}
		r.scratch = c.scratch;
		for (int wk = 0; wk < c.jobs; wk++) {
			snprintf(out, sizeof out, "%s/w%d", c.scratch, wk);
			if (mkdir(c.scratch, 0700) != 0 && errno != EEXIST)
				return 2;
			if (mkdir(out, 0700) != 0 && errno != EEXIST)
				return 2;
		}
		out_dir_for(&r, 0, out, sizeof out);
		open_path(&c, r.bp, r.bn, r.rp, r.rn, out, &x);
		if (!x.accepted) {
			fprintf(stderr, "flipper: the original release does not open\n");
			return 1;
		}
		{
			int fd = open(out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			long long opened = fd >= 0 ? tree_bytes(fd) : -1;

			struct bundle *b = NULL;
			uint64_t po = 0, pl = 0;

			if (bundle_open_mem(r.bp, r.bn, &b, &e) == 0)
				bundle_payload_span(b, &po, &pl);
			bundle_close(b);
			printf("original %s + %s (%zu + %zu bytes) opens: %lld bytes written;"
			       " payload.enc is bytes %" PRIu64 "..%" PRIu64 "\n", argv[optind],
			       argv[optind + 1], r.bn, r.rn, opened, po, po + pl - 1);
			if (remove_tree(out) != 0)
				return 2;
		}
		rc = run_campaign(&c, "release-bytes", (uint64_t)(r.bn + r.rn), m_byte, &r);
	} else if (strcmp(mode, "log") == 0 && optind + 1 == argc) {
		static struct logx L;
		struct logm m;

		L.orig = load(argv[optind], &L.len);
		if (L.orig == NULL || log_parse(&L) != 0 || log_prepare_mods(&L) != 0 || L.n < 2) {
			fprintf(stderr, "flipper: %s: not a log export this tool understands\n", argv[optind]);
			return 2;
		}
		if (!log_accepts(&c, L.orig, L.len, NULL, 0)) {
			fprintf(stderr, "flipper: the original export does not verify\n");
			return 1;
		}
		printf("original %s (%zu bytes, %" PRIu64 " records, %" PRIu64 " heads) verifies\n",
		       argv[optind], L.len, L.n, L.nh);
		m.L = &L;
		m.scratch = calloc(L.n + 2, sizeof *m.scratch);
		if (m.scratch == NULL)
			return 2;
		rc = 0;
		for (int k = 0; k < LM_N; k++) {
			static const uint64_t extra[LM_N] = { 0, 0, 1, 0, 0, 0, 0 };
			uint64_t total = k == LM_SWAP ? L.n - 1 : L.n + extra[k];
			char name[64];

			if (only != NULL && strcmp(only, lm_name[k]) != 0)
				continue;
			m.kind = k;
			snprintf(name, sizeof name, "log-%s", lm_name[k]);
			rc |= run_campaign(&c, name, total, m_log, &m);
		}
		if (only == NULL || strcmp(only, "truncate-bytes") == 0)
			rc |= run_campaign(&c, "log-truncate-bytes", L.len, m_cut_bytes, &L);
		free(m.scratch);
	} else {
		return usage();
	}
	EVP_PKEY_free(c.priv);
	X509_free(c.own);
	if (c.custody != NULL)
		bundle_custody_free(c.custody);
	free(c.custody);
	free(c.identity_bytes);
	free(memo);
	EVP_PKEY_free(memo_pub);
	return rc;
}

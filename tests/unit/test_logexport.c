/* needs: swtpm
 *
 * The custody-log export, writer and offline verifier, on a 1,000-record
 * log whose tree heads are signed by the SIGN key of a freshly provisioned
 * swtpm (the real TPM, so identity_check passes for real, EK chain
 * included).  A software P-256 key plays the forger.  Every tampering the
 * auditor must catch is made and must be caught by the check that names it;
 * every truncation and every bit flip of a small export is rejected. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "crypto/err.h"
#include "crypto/hash.h"
#include "crypto/merkle.h"
#include "crypto/sig.h"
#include "crypto/tpm.h"
#include "crypto/tpm_ident.h"
#include "export/identity.h"
#include "export/logexport.h"
#include "export/logrec.h"
#include "export/sth.h"
#include "tests/unit/check.h"

#define N_LOG    1000
#define T0_MS    UINT64_C(1767225600000)    /* 2026-01-01T00:00:00Z */

struct rec {
	const uint8_t *b;
	size_t len;
};

struct head {
	uint8_t sth[STH_ENCODED_LEN];
	uint8_t sig[SIG_MAX_DER];
	size_t siglen;
};

/* A log as the box would export it.  Record bytes are shared between logs
 * (mutations copy the arrays and swap pointers) and live in the pool. */
struct log {
	size_t nrec, nhead;
	struct rec *rec;
	struct head *head;
};

static struct tpm *tpm;
static uint8_t *ident;
static size_t identlen;
static uint8_t appliance_id[32];
static EVP_PKEY *forger;
static const char *ekca;

static uint8_t **pool;
static size_t npool, cappool;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
	fprintf(stderr, "test_logexport: %s\n", what);
	printf("not ok - %s\n", what);
	exit(1);
}

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);

	if (p == NULL)
		die("out of memory");
	return p;
}

static const uint8_t *pool_keep(uint8_t *b)
{
	if (npool == cappool) {
		cappool = cappool ? 2 * cappool : 4096;
		pool = realloc(pool, cappool * sizeof *pool);
		if (pool == NULL)
			die("out of memory");
	}
	pool[npool++] = b;
	return b;
}

/* ---- building a log --------------------------------------------------- */

static const char *const cycle[] = {
	"ingest", "view", "hold.open", "release.request", "release.confirm",
	"release.deny", "purge", "log.checkpoint", "hold.renew", "policy.set",
};
#define N_CYCLE (sizeof cycle / sizeof cycle[0])

static void make_record(uint64_t seq, struct logrec *r)
{
	const char *ev = seq == 0 ? "provision" : cycle[seq % N_CYCLE];

	memset(r, 0, sizeof *r);
	r->seq = seq;
	r->time_ms = T0_MS + seq * 60000;
	r->tpm_clock_ms = 4000 + seq * 60000;
	r->tpm_reset_count = 1;
	r->tpm_restart_count = 0;
	memcpy(r->appliance_id, appliance_id, 32);
	memset(r->policy_hash, 0x5a, 32);
	snprintf(r->event, sizeof r->event, "%s", ev);
	snprintf(r->outcome, sizeof r->outcome, "%s", strcmp(ev, "release.deny") == 0 ? "denied" : "ok");
	snprintf(r->operator_id, sizeof r->operator_id, "tech-%u", (unsigned)(seq % 3));
	if (seq > 0)
		snprintf(r->case_id, sizeof r->case_id, "DPD-2026-%04u", (unsigned)(seq / 25));
	if (strcmp(ev, "ingest") == 0)
		snprintf(r->bundle_id, sizeof r->bundle_id, "%064u", (unsigned)seq);
	if (strcmp(ev, "release.deny") == 0)
		snprintf(r->reason, sizeof r->reason, "purpose civil-immigration-enforcement is always denied");
	snprintf(r->detail, sizeof r->detail, "purpose=criminal-investigation\nreads=%u\n",
	         (unsigned)(seq * 7 % 1000));
}

static struct rec encode(const struct logrec *r)
{
	struct rec out;
	uint8_t *b = NULL;

	if (logrec_encode(r, &b, &out.len) != 0)
		die("logrec_encode");
	out.b = pool_keep(b);
	return out;
}

/* Counter moves on state-changing events only, as on the box. */
static int moves_counter(const struct rec *rc)
{
	struct logrec r;

	if (logrec_decode(rc->b, rc->len, &r) != 0)
		return 0;
	return strcmp(r.event, "ingest") == 0 || strcmp(r.event, "release.confirm") == 0 ||
	       strcmp(r.event, "purge") == 0 || strcmp(r.event, "policy.set") == 0 ||
	       strcmp(r.event, "log.checkpoint") == 0 || strcmp(r.event, "provision") == 0;
}

static void sign_soft(EVP_PKEY *k, const uint8_t dg[32], uint8_t *sig, size_t *siglen)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k, NULL);

	*siglen = SIG_MAX_DER;
	if (c == NULL || EVP_PKEY_sign_init(c) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) != 1 ||
	    EVP_PKEY_sign(c, sig, siglen, dg, 32) != 1)
		die("software signature");
	EVP_PKEY_CTX_free(c);
}

/* Encodes and signs: by the TPM's SIGN key, or by `soft` when given. */
static void make_head(struct head *h, const struct sth *s, EVP_PKEY *soft)
{
	struct sbx_err e;
	uint8_t dg[32];

	sth_encode(s, h->sth);
	if (sig_digest(SIG_NS_STH, h->sth, STH_ENCODED_LEN, dg) != 0)
		die("sig_digest");
	if (soft != NULL) {
		sign_soft(soft, dg, h->sig, &h->siglen);
		return;
	}
	sbx_err_clear(&e);
	if (tpm_sign(tpm, dg, h->sig, &h->siglen, &e) != 0)
		die(e.msg);
}

static void head_decode(const struct head *h, struct sth *s)
{
	if (sth_decode(h->sth, STH_ENCODED_LEN, s) != 0)
		die("sth_decode");
}

static void log_alloc(struct log *l, size_t nrec, size_t nhead)
{
	l->nrec = nrec;
	l->nhead = nhead;
	l->rec = xcalloc(nrec + 2, sizeof *l->rec);
	l->head = xcalloc(nhead + 2, sizeof *l->head);
}

static void log_copy(struct log *dst, const struct log *src)
{
	log_alloc(dst, src->nrec, src->nhead);
	memcpy(dst->rec, src->rec, src->nrec * sizeof *src->rec);
	memcpy(dst->head, src->head, src->nhead * sizeof *src->head);
}

static void log_free(struct log *l)
{
	free(l->rec);
	free(l->head);
	memset(l, 0, sizeof *l);
}

/* One signed head per record from record `from` on, as the box makes them:
 * tree size i+1, the root of the first i+1 records, the counter it is
 * anchored to.  Heads before `from` are kept. */
static void log_sign_from(struct log *l, size_t from)
{
	struct merkle_frontier f;
	struct sth s, prev;
	uint8_t leaf[32];
	uint64_t counter = 0, ts = T0_MS;

	merkle_frontier_init(&f);
	if (from > 0) {
		head_decode(&l->head[from - 1], &prev);
		counter = prev.counter;
		ts = prev.timestamp_ms;
	}
	for (size_t i = 0; i < l->nrec; i++) {
		if (merkle_leaf_hash(l->rec[i].b, l->rec[i].len, leaf) != 0 ||
		    merkle_frontier_append(&f, leaf) != 0)
			die("merkle");
		if (i < from)
			continue;
		memset(&s, 0, sizeof s);
		memcpy(s.appliance_id, appliance_id, 32);
		s.tree_size = i + 1;
		if (merkle_frontier_root(&f, s.root) != 0)
			die("merkle root");
		counter += moves_counter(&l->rec[i]) ? 1 : 0;
		ts += 60000;
		s.timestamp_ms = ts;
		s.counter = counter;
		make_head(&l->head[i], &s, NULL);
	}
	l->nhead = l->nrec;
}

static void log_build(struct log *l, size_t n)
{
	struct logrec *r = xcalloc(1, sizeof *r);

	log_alloc(l, n, n);
	for (size_t i = 0; i < n; i++) {
		make_record(i, r);
		l->rec[i] = encode(r);
	}
	free(r);
	log_sign_from(l, 0);
}

/* ---- exporting and verifying ----------------------------------------- */

static uint8_t *read_all(int fd, size_t *len)
{
	off_t end = lseek(fd, 0, SEEK_END);
	uint8_t *b;
	size_t off = 0;

	if (end < 0 || lseek(fd, 0, SEEK_SET) != 0)
		die("lseek");
	b = xcalloc((size_t)end + 1, 1);
	while (off < (size_t)end) {
		ssize_t k = read(fd, b + off, (size_t)end - off);

		if (k <= 0)
			die("read");
		off += (size_t)k;
	}
	*len = off;
	return b;
}

static uint8_t *export_log(const struct log *l, size_t *len)
{
	struct logexport_writer *w = NULL;
	struct sbx_err e;
	uint8_t *b;
	int fd = memfd_create("logexport", MFD_CLOEXEC);

	sbx_err_clear(&e);
	if (fd < 0)
		die("memfd_create");
	if (logexport_writer_open(fd, ident, identlen, l->nrec, l->nhead, &w, &e) != 0)
		die(e.msg);
	for (size_t i = 0; i < l->nrec; i++)
		if (logexport_writer_put_record(w, l->rec[i].b, l->rec[i].len, &e) != 0)
			die(e.msg);
	for (size_t j = 0; j < l->nhead; j++)
		if (logexport_writer_put_sth(w, l->head[j].sth, l->head[j].sig, l->head[j].siglen, &e) != 0)
			die(e.msg);
	if (logexport_writer_finish(w, &e) != 0)
		die(e.msg);
	b = read_all(fd, len);
	close(fd);
	return b;
}

static void fix_checksum(uint8_t *b, size_t len)
{
	if (len < 32 || hash_sha256(b, len - 32, b + len - 32) != 0)
		die("checksum");
}

static int verify(const uint8_t *b, size_t len, const struct logexport_opts *o,
                  struct logexport_report *rep, struct sbx_err *e)
{
	sbx_err_clear(e);
	return logexport_verify(b, len, o, rep, e);
}

/* Exports l and checks that verification fails and that check c is the
 * one that names the failure (stopping at the first failure, so c is the
 * first check to see it). */
static void expect_caught(const struct log *l, const struct logexport_opts *o,
                          enum logexport_check c, const char *what)
{
	struct logexport_report *rep = xcalloc(1, sizeof *rep);
	struct sbx_err e;
	size_t len;
	uint8_t *b = export_log(l, &len);
	int rc = verify(b, len, o, rep, &e);
	char msg[300];

	snprintf(msg, sizeof msg, "%s: caught by check \"%s\"", what, logexport_check_name(c));
	if (!CHECK_MSG(rc != 0 && rep->check[c].status == LOGEXPORT_FAIL, msg))
		printf("#   rc %d, e: %s\n", rc, e.msg);
	free(b);
	free(rep);
}

/* ---- the tests -------------------------------------------------------- */

static void test_valid(const struct log *l)
{
	struct logexport_report *rep = xcalloc(1, sizeof *rep);
	struct logexport_opts o;
	struct sbx_err e;
	size_t len;
	uint8_t *b = export_log(l, &len);
	uint8_t other[32];
	struct sth last;
	char *txt = NULL;
	size_t txtlen = 0;
	FILE *f;
	int rc, all = 1;

	memset(&o, 0, sizeof o);
	o.ek_ca_pem = ekca;
	rc = verify(b, len, &o, rep, &e);
	if (!CHECK_MSG(rc == 0, "a 1,000-record export from the TPM verifies"))
		printf("#   %s\n", e.msg);
	for (int c = 0; c < LOGEXPORT_N_CHECKS; c++) {
		int want = (c == LOGEXPORT_PIN || c == LOGEXPORT_OLDER || c == LOGEXPORT_CONSISTENCY)
		           ? LOGEXPORT_NOT_RUN : LOGEXPORT_PASS;

		if (rep->check[c].status != want) {
			all = 0;
			printf("#   check %s: %d\n", logexport_check_name(c), rep->check[c].status);
		}
	}
	CHECK_MSG(all, "every required check passes; pin, older, consistency not run");
	CHECK_MSG(rep->identity_checked && rep->identity_rc == 0 && rep->identity.sign_attrs_ok == 1 &&
	          rep->identity.certify_ok == 1 && rep->identity.appliance_id_ok == 1,
	          "identity_check passes on the TPM's identity");
	CHECK_MSG(ekca == NULL || rep->identity.ekcert_chain_ok == 1,
	          "the EK certificate chains to the test CA");
	CHECK_MSG(memcmp(rep->appliance_id, appliance_id, 32) == 0, "report names the appliance");
	CHECK_MSG(rep->records == N_LOG && rep->heads == N_LOG, "report counts records and heads");
	head_decode(&l->head[l->nhead - 1], &last);
	CHECK_MSG(rep->have_last_head && memcmp(&rep->last_head, &last, sizeof last) == 0,
	          "report carries the last head");
	CHECK_MSG(rep->first_time_ms == T0_MS && rep->last_time_ms == T0_MS + (N_LOG - 1) * 60000,
	          "report carries first and last record times");
	/* provision once; each cycle event 100 times (the cycle has 10 and
	 * record 0, an "ingest" slot, is provision instead). */
	CHECK_MSG(rep->events[0] == 1 && rep->events[5] == 99 && rep->events[7] == 100 &&
	          rep->events[10] == 100, "report counts events by type");
	CHECK_MSG(rep->outcomes[1] == 100 && rep->outcomes[0] == N_LOG - 100,
	          "report counts outcomes");

	f = open_memstream(&txt, &txtlen);
	if (f != NULL) {
		logexport_report_print(f, rep);
		fclose(f);
	}
	CHECK_MSG(txt != NULL && strstr(txt, "custody log export: VERIFIED") != NULL &&
	          strstr(txt, "ingest=99") != NULL, "plain-text report says VERIFIED");
	free(txt);
	txt = NULL;
	f = open_memstream(&txt, &txtlen);
	if (f != NULL) {
		logexport_report_json(f, rep);
		fclose(f);
	}
	CHECK_MSG(txt != NULL && strstr(txt, "\"verified\": true") != NULL &&
	          strstr(txt, "\"release.deny\": 100") != NULL &&
	          strstr(txt, "\"ekcert_chain_ok\": ") != NULL, "JSON report says verified");
	free(txt);
	txt = NULL;

	/* Pins. */
	memset(&o, 0, sizeof o);
	o.pin_appliance_id = appliance_id;
	o.pin_identity = ident;
	o.pin_identity_len = identlen;
	rc = verify(b, len, &o, rep, &e);
	CHECK_MSG(rc == 0 && rep->check[LOGEXPORT_PIN].status == LOGEXPORT_PASS,
	          "the right pins pass");
	memcpy(other, appliance_id, 32);
	other[31] ^= 1;
	memset(&o, 0, sizeof o);
	o.pin_appliance_id = other;
	rc = verify(b, len, &o, rep, &e);
	CHECK_MSG(rc == SBX_EVERIFY && rep->check[LOGEXPORT_PIN].status == LOGEXPORT_FAIL &&
	          rep->check[LOGEXPORT_SIGNATURES].status == LOGEXPORT_NOT_RUN,
	          "another pinned appliance id fails before any signature is checked");
	memset(&o, 0, sizeof o);
	o.pin_identity = ident;
	o.pin_identity_len = identlen - 1;
	rc = verify(b, len, &o, rep, &e);
	CHECK_MSG(rc == SBX_EVERIFY && rep->check[LOGEXPORT_PIN].status == LOGEXPORT_FAIL,
	          "another pinned identity fails");

	/* The verifier only reads its input. */
	{
		void *ro = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (ro != MAP_FAILED) {
			memcpy(ro, b, len);
			mprotect(ro, len, PROT_READ);
			CHECK_MSG(verify(ro, len, NULL, rep, &e) == 0, "verifies from read-only memory");
			munmap(ro, len);
		}
	}
	CHECK_MSG(verify(NULL, 0, NULL, rep, &e) == SBX_EFORMAT, "NULL input is a format error");
	CHECK_MSG(logexport_verify(b, len, NULL, NULL, &e) == SBX_EINVAL, "NULL report refused");
	free(b);
	free(rep);
}

/* Re-encodes record k with one field changed. */
static struct rec mutate_field(const struct rec *in, int field)
{
	struct logrec *r = xcalloc(1, sizeof *r);
	struct rec out;

	if (logrec_decode(in->b, in->len, r) != 0)
		die("logrec_decode");
	switch (field) {
	case 0:  r->seq += 1; break;
	case 1:  r->time_ms += 1; break;
	case 2:  r->tpm_clock_ms += 1; break;
	case 3:  r->tpm_reset_count += 1; break;
	case 4:  r->tpm_restart_count += 1; break;
	case 5:  r->appliance_id[0] ^= 1; break;
	case 6:  r->policy_hash[31] ^= 0x80; break;
	case 7:  snprintf(r->event, sizeof r->event, "%s", strcmp(r->event, "view") ? "view" : "purge"); break;
	case 8:  snprintf(r->outcome, sizeof r->outcome, "%s", strcmp(r->outcome, "ok") ? "ok" : "failed"); break;
	case 9:  r->operator_id[0] = 'X'; break;
	case 10: snprintf(r->case_id, sizeof r->case_id, "DPD-2026-9999"); break;
	case 11: snprintf(r->bundle_id, sizeof r->bundle_id, "%s", r->bundle_id[0] ? "" : "ff"); break;
	case 12: snprintf(r->reason, sizeof r->reason, "%s", r->reason[0] ? "" : "x"); break;
	default: r->detail[0] = 'P'; break;
	}
	out = encode(r);
	free(r);
	return out;
}

static const char *const field_names[] = {
	"seq", "time_ms", "tpm_clock_ms", "tpm_reset_count", "tpm_restart_count",
	"appliance_id", "policy_hash", "event", "outcome", "operator", "case", "bundle",
	"reason", "detail",
};

/* Sets a record's sequence number (the "renumbered" variants: a forger
 * who keeps the numbering consistent after deleting or inserting). */
static struct rec renumber(const struct rec *in, uint64_t seq)
{
	struct logrec *r = xcalloc(1, sizeof *r);
	struct rec out;

	if (logrec_decode(in->b, in->len, r) != 0)
		die("logrec_decode");
	r->seq = seq;
	out = encode(r);
	free(r);
	return out;
}

static void renumber_all(struct log *l)
{
	for (size_t i = 0; i < l->nrec; i++)
		l->rec[i] = renumber(&l->rec[i], i);
}

static void test_record_tampering(const struct log *l)
{
	const size_t k = 500;
	struct log m;
	char what[120];

	for (int fld = 0; fld < (int)(sizeof field_names / sizeof field_names[0]); fld++) {
		enum logexport_check c = (fld == 0 || fld == 5) ? LOGEXPORT_RECORDS : LOGEXPORT_ROOTS;

		log_copy(&m, l);
		m.rec[k] = mutate_field(&l->rec[k], fld);
		snprintf(what, sizeof what, "record %zu modified (%s)", k, field_names[fld]);
		expect_caught(&m, NULL, c, what);
		log_free(&m);
	}
	/* A raw byte change that breaks the encoding, and one inside a string. */
	{
		uint8_t *b = xcalloc(l->rec[k].len, 1);

		memcpy(b, l->rec[k].b, l->rec[k].len);
		b[4] ^= 0x02;   /* version */
		log_copy(&m, l);
		m.rec[k].b = pool_keep(b);
		expect_caught(&m, NULL, LOGEXPORT_RECORDS, "record modified so that it no longer decodes");
		log_free(&m);
	}
	{
		uint8_t *b = xcalloc(l->rec[k].len, 1);

		memcpy(b, l->rec[k].b, l->rec[k].len);
		b[l->rec[k].len - 2] ^= 0x01;   /* inside detail */
		log_copy(&m, l);
		m.rec[k].b = pool_keep(b);
		expect_caught(&m, NULL, LOGEXPORT_ROOTS, "record modified by one bit in its detail");
		log_free(&m);
	}

	/* A record whose time goes back, every head after it re-signed: the
	 * box holds its wall clock monotonic (LOG-FORMAT.md, Times). */
	{
		struct logrec *r = xcalloc(1, sizeof *r);

		log_copy(&m, l);
		if (logrec_decode(l->rec[k].b, l->rec[k].len, r) != 0)
			die("logrec_decode");
		r->time_ms -= 60001;
		m.rec[k] = encode(r);
		log_sign_from(&m, k);
		expect_caught(&m, NULL, LOGEXPORT_RECORDS, "a record's time going backwards (re-signed)");
		log_free(&m);
		free(r);
	}

	/* Deleted. */
	log_copy(&m, l);
	memmove(&m.rec[k], &m.rec[k + 1], (m.nrec - k - 1) * sizeof *m.rec);
	m.nrec--;
	expect_caught(&m, NULL, LOGEXPORT_RECORDS, "record deleted");
	renumber_all(&m);
	expect_caught(&m, NULL, LOGEXPORT_ROOTS, "record deleted, the rest renumbered");
	log_free(&m);
	log_copy(&m, l);
	m.nrec--;
	memmove(&m.rec[0], &m.rec[1], m.nrec * sizeof *m.rec);
	renumber_all(&m);
	expect_caught(&m, NULL, LOGEXPORT_ROOTS, "first record deleted, the rest renumbered");
	log_free(&m);

	/* Inserted. */
	log_copy(&m, l);
	memmove(&m.rec[k + 1], &m.rec[k], (m.nrec - k) * sizeof *m.rec);
	m.rec[k] = mutate_field(&l->rec[k], 9);
	m.nrec++;
	expect_caught(&m, NULL, LOGEXPORT_RECORDS, "record inserted");
	renumber_all(&m);
	expect_caught(&m, NULL, LOGEXPORT_ROOTS, "record inserted, the rest renumbered");
	log_free(&m);

	/* Reordered. */
	log_copy(&m, l);
	m.rec[k] = l->rec[k + 1];
	m.rec[k + 1] = l->rec[k];
	expect_caught(&m, NULL, LOGEXPORT_RECORDS, "two records swapped");
	renumber_all(&m);
	expect_caught(&m, NULL, LOGEXPORT_RECORDS, "two records swapped, renumbered (time goes back)");
	log_free(&m);
	{
		/* Swapped with sequence numbers and times left in place: only the
		 * tree can tell. */
		struct logrec *a = xcalloc(1, sizeof *a), *b = xcalloc(1, sizeof *b);
		uint64_t t;

		if (logrec_decode(l->rec[k].b, l->rec[k].len, a) != 0 ||
		    logrec_decode(l->rec[k + 1].b, l->rec[k + 1].len, b) != 0)
			die("logrec_decode");
		a->seq = k + 1;
		b->seq = k;
		t = a->time_ms;
		a->time_ms = b->time_ms;
		b->time_ms = t;
		log_copy(&m, l);
		m.rec[k] = encode(b);
		m.rec[k + 1] = encode(a);
		expect_caught(&m, NULL, LOGEXPORT_ROOTS, "two records swapped, sequence numbers and times in place");
		log_free(&m);
		free(a);
		free(b);
	}

	/* Duplicated. */
	log_copy(&m, l);
	memmove(&m.rec[k + 1], &m.rec[k], (m.nrec - k) * sizeof *m.rec);
	m.nrec++;
	expect_caught(&m, NULL, LOGEXPORT_RECORDS, "record duplicated");
	renumber_all(&m);
	expect_caught(&m, NULL, LOGEXPORT_ROOTS, "record duplicated, the rest renumbered");
	m.nrec--;
	expect_caught(&m, NULL, LOGEXPORT_ROOTS, "record duplicated, renumbered, the last dropped");
	log_free(&m);
}

static void test_truncation(const struct log *l)
{
	struct logexport_report *rep = xcalloc(1, sizeof *rep);
	struct logexport_opts o;
	struct sbx_err e;
	struct log m;
	uint8_t *full, *b;
	size_t fulllen, len;
	int rc;

	for (size_t cut = 1; cut <= 100; cut *= 10) {
		char what[100];

		log_copy(&m, l);
		m.nrec -= cut;
		snprintf(what, sizeof what, "last %zu record(s) cut, heads kept", cut);
		expect_caught(&m, NULL, LOGEXPORT_HEADS, what);
		log_free(&m);
		log_copy(&m, l);
		m.nhead -= cut;
		snprintf(what, sizeof what, "last %zu head(s) cut, records kept", cut);
		expect_caught(&m, NULL, LOGEXPORT_COMPLETE, what);
		log_free(&m);
	}
	log_copy(&m, l);
	m.nrec++;
	m.rec[m.nrec - 1] = renumber(&l->rec[l->nrec - 1], m.nrec - 1);
	expect_caught(&m, NULL, LOGEXPORT_COMPLETE, "a record appended without a head");
	log_free(&m);

	/* Records and heads cut together leave a shorter log that is
	 * consistent on its own; only an earlier export (or the box's
	 * counter, or a bundle's head) can show that anything is missing. */
	full = export_log(l, &fulllen);
	log_copy(&m, l);
	m.nrec -= 10;
	m.nhead -= 10;
	b = export_log(&m, &len);
	rc = verify(b, len, NULL, rep, &e);
	CHECK_MSG(rc == 0, "records and heads cut together: consistent on its own (documented)");
	memset(&o, 0, sizeof o);
	o.older = full;
	o.older_len = fulllen;
	rc = verify(b, len, &o, rep, &e);
	CHECK_MSG(rc == SBX_EVERIFY && rep->check[LOGEXPORT_OLDER].status == LOGEXPORT_FAIL,
	          "records and heads cut together: caught against the earlier export");
	free(b);
	log_free(&m);
	free(full);
	free(rep);
}

static void test_head_tampering(const struct log *l)
{
	const size_t k = 600;
	struct log m;
	struct sth s;

	log_copy(&m, l);
	head_decode(&l->head[k], &s);
	make_head(&m.head[k], &s, forger);
	expect_caught(&m, NULL, LOGEXPORT_SIGNATURES, "a head signed by a different key");
	log_free(&m);

	log_copy(&m, l);
	m.head[k].sig[m.head[k].siglen - 1] ^= 1;
	expect_caught(&m, NULL, LOGEXPORT_SIGNATURES, "a head's signature altered");
	log_free(&m);

	log_copy(&m, l);
	m.head[k].sth[STH_ENCODED_LEN - 9] ^= 1;   /* timestamp, not re-signed */
	expect_caught(&m, NULL, LOGEXPORT_SIGNATURES, "a head's timestamp altered without re-signing");
	log_free(&m);

	log_copy(&m, l);
	head_decode(&l->head[k], &s);
	s.root[0] ^= 1;
	make_head(&m.head[k], &s, NULL);
	expect_caught(&m, NULL, LOGEXPORT_ROOTS, "a head with a wrong root (signed by the TPM)");
	log_free(&m);

	log_copy(&m, l);
	head_decode(&l->head[k - 1], &s);
	{
		uint64_t before = s.counter;

		head_decode(&l->head[k], &s);
		s.counter = before - 1;
	}
	make_head(&m.head[k], &s, NULL);
	expect_caught(&m, NULL, LOGEXPORT_HEADS, "a head's counter going backwards (signed by the TPM)");
	log_free(&m);

	log_copy(&m, l);
	head_decode(&l->head[k], &s);
	s.timestamp_ms -= 120001;
	make_head(&m.head[k], &s, NULL);
	expect_caught(&m, NULL, LOGEXPORT_HEADS, "a head's timestamp going backwards (signed by the TPM)");
	log_free(&m);

	log_copy(&m, l);
	head_decode(&l->head[k], &s);
	s.appliance_id[5] ^= 1;
	make_head(&m.head[k], &s, NULL);
	expect_caught(&m, NULL, LOGEXPORT_HEADS, "a head naming another appliance (signed by the TPM)");
	log_free(&m);

	log_copy(&m, l);
	memmove(&m.head[k], &m.head[k + 1], (m.nhead - k - 1) * sizeof *m.head);
	m.nhead--;
	expect_caught(&m, NULL, LOGEXPORT_HEADS, "a head removed from the middle");
	log_free(&m);

	log_copy(&m, l);
	m.head[k] = l->head[k + 1];
	m.head[k + 1] = l->head[k];
	expect_caught(&m, NULL, LOGEXPORT_HEADS, "two heads swapped");
	log_free(&m);

	log_copy(&m, l);
	m.head[k] = l->head[k + 1];
	expect_caught(&m, NULL, LOGEXPORT_HEADS, "a head replaced by the next one");
	log_free(&m);
}

/* An older export of this log, and logs that it must reject as "older". */
static void test_older(const struct log *l)
{
	struct logexport_report *rep = xcalloc(1, sizeof *rep);
	struct logexport_opts o;
	struct sbx_err e;
	struct log m;
	uint8_t *cur, *old;
	size_t curlen, oldlen;
	int rc;

	cur = export_log(l, &curlen);
	memset(&o, 0, sizeof o);

	static const size_t sizes[] = { 1, 2, 3, 7, 64, 500, 999, N_LOG };

	for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
		size_t n = sizes[si];
		char msg[120];

		log_copy(&m, l);
		m.nrec = m.nhead = n;
		old = export_log(&m, &oldlen);
		o.older = old;
		o.older_len = oldlen;
		rc = verify(cur, curlen, &o, rep, &e);
		snprintf(msg, sizeof msg, "extends its own export of %zu records (consistency proof checked)", n);
		if (!CHECK_MSG(rc == 0 && rep->check[LOGEXPORT_OLDER].status == LOGEXPORT_PASS &&
		               rep->check[LOGEXPORT_CONSISTENCY].status == LOGEXPORT_PASS &&
		               rep->consistency_m == n && rep->consistency_n == N_LOG &&
		               (n == N_LOG || rep->consistency_proof_len > 0), msg))
			printf("#   %s\n", e.msg);
		free(old);
		log_free(&m);
	}

	/* An older export that verifies on its own but is not a prefix: the
	 * box rewrote record 300 and re-signed every head since. */
	log_copy(&m, l);
	m.nrec = 600;
	m.rec[300] = mutate_field(&l->rec[300], 12);
	log_sign_from(&m, 300);
	old = export_log(&m, &oldlen);
	CHECK_MSG(verify(old, oldlen, NULL, rep, &e) == 0, "the rewritten log verifies on its own");
	o.older = old;
	o.older_len = oldlen;
	rc = verify(cur, curlen, &o, rep, &e);
	CHECK_MSG(rc == SBX_EVERIFY && rep->check[LOGEXPORT_OLDER].status == LOGEXPORT_FAIL &&
	          strstr(e.msg, "record 300 differs") != NULL,
	          "older export not a prefix (record 300 differs): caught and named");
	o.keep_going = 1;
	rc = verify(cur, curlen, &o, rep, &e);
	CHECK_MSG(rc == SBX_EVERIFY && rep->check[LOGEXPORT_OLDER].status == LOGEXPORT_FAIL &&
	          rep->check[LOGEXPORT_CONSISTENCY].status == LOGEXPORT_FAIL,
	          "... and the consistency proof between the signed roots fails too");
	o.keep_going = 0;
	free(old);
	log_free(&m);

	/* The same records, but the older export's last head signed a second
	 * time: the box stores each head once, so its bytes never change. */
	log_copy(&m, l);
	m.nrec = 400;
	log_sign_from(&m, 399);
	old = export_log(&m, &oldlen);
	o.older = old;
	o.older_len = oldlen;
	rc = verify(cur, curlen, &o, rep, &e);
	CHECK_MSG(rc == SBX_EVERIFY && rep->check[LOGEXPORT_OLDER].status == LOGEXPORT_FAIL,
	          "older export whose last head was signed again (stored heads never change): caught");
	free(old);
	log_free(&m);

	/* Older is longer (this one lost records and heads). */
	log_copy(&m, l);
	m.nrec = m.nhead = 700;
	old = export_log(&m, &oldlen);
	o.older = cur;
	o.older_len = curlen;
	rc = verify(old, oldlen, &o, rep, &e);
	CHECK_MSG(rc == SBX_EVERIFY && rep->check[LOGEXPORT_OLDER].status == LOGEXPORT_FAIL,
	          "an \"older\" export longer than this one: caught");
	free(old);
	log_free(&m);

	/* Older corrupted: one bit of its checksum. */
	old = xcalloc(curlen, 1);
	memcpy(old, cur, curlen);
	old[curlen - 1] ^= 1;
	o.older = old;
	o.older_len = curlen;
	rc = verify(cur, curlen, &o, rep, &e);
	CHECK_MSG(rc != 0 && rep->check[LOGEXPORT_OLDER].status == LOGEXPORT_FAIL,
	          "a corrupted older export: caught");
	free(old);

	/* Older from another identity (same records): the pin to this one's
	 * identity bytes rejects it. */
	{
		uint8_t *saved = ident;
		size_t savedlen = identlen;
		struct identity *id = xcalloc(1, sizeof *id);
		uint8_t *enc = NULL;
		size_t enclen = 0;

		if (identity_decode(ident, identlen, id) != 0)
			die("identity_decode");
		id->certify_nonce[0] ^= 1;
		if (identity_encode(id, &enc, &enclen) != 0)
			die("identity_encode");
		ident = enc;
		identlen = enclen;
		old = export_log(l, &oldlen);
		ident = saved;
		identlen = savedlen;
		o.older = old;
		o.older_len = oldlen;
		rc = verify(cur, curlen, &o, rep, &e);
		CHECK_MSG(rc == SBX_EVERIFY && rep->check[LOGEXPORT_OLDER].status == LOGEXPORT_FAIL,
		          "an older export with other identity bytes: caught");
		/* And that identity itself fails identity_check (nonce). */
		rc = verify(old, oldlen, NULL, rep, &e);
		CHECK_MSG(rc == SBX_EVERIFY && rep->check[LOGEXPORT_IDENTITY].status == LOGEXPORT_FAIL &&
		          rep->check[LOGEXPORT_RECORDS].status == LOGEXPORT_NOT_RUN,
		          "an identity whose certify does not match fails before the log is read");
		free(old);
		free(enc);
		free(id);
	}
	free(cur);
	free(rep);
}

static void test_keep_going(const struct log *l)
{
	struct logexport_report *rep = xcalloc(1, sizeof *rep);
	struct logexport_opts o;
	struct sbx_err e;
	struct log m;
	struct sth s;
	uint8_t *b;
	size_t len;
	int rc;

	log_copy(&m, l);
	m.rec[500] = mutate_field(&l->rec[500], 13);
	head_decode(&l->head[100], &s);
	make_head(&m.head[100], &s, forger);
	b = export_log(&m, &len);
	rc = verify(b, len, NULL, rep, &e);
	CHECK_MSG(rc == SBX_EVERIFY && rep->check[LOGEXPORT_SIGNATURES].status == LOGEXPORT_FAIL &&
	          rep->check[LOGEXPORT_ROOTS].status == LOGEXPORT_PASS,
	          "stopping at the first failure: head 100's signature, nothing after it");
	CHECK_MSG(strstr(e.msg, "tree head 100") != NULL, "the message names the head");
	memset(&o, 0, sizeof o);
	o.keep_going = 1;
	rc = verify(b, len, &o, rep, &e);
	CHECK_MSG(rc == SBX_EVERIFY && rep->check[LOGEXPORT_SIGNATURES].failures == 1 &&
	          rep->check[LOGEXPORT_ROOTS].failures == N_LOG - 500 &&
	          rep->check[LOGEXPORT_RECORDS].status == LOGEXPORT_PASS &&
	          rep->check[LOGEXPORT_COMPLETE].status == LOGEXPORT_PASS,
	          "keep_going: every failing head is counted under its check");
	{
		char *txt = NULL;
		size_t txtlen = 0;
		FILE *f = open_memstream(&txt, &txtlen);

		if (f != NULL) {
			logexport_report_print(f, rep);
			logexport_report_json(f, rep);
			fclose(f);
		}
		CHECK_MSG(txt != NULL && strstr(txt, "custody log export: NOT VERIFIED") != NULL &&
		          strstr(txt, "signatures   FAILED  tree head 100") != NULL &&
		          strstr(txt, "roots        FAILED  (500 failures; first: tree head 500") != NULL &&
		          strstr(txt, "\"verified\": false") != NULL,
		          "the reports say NOT VERIFIED and name the failing checks");
		free(txt);
	}
	free(b);
	log_free(&m);
	free(rep);
}

static void test_format(const struct log *l)
{
	struct logexport_report *rep = xcalloc(1, sizeof *rep);
	struct sbx_err e;
	uint8_t *b, *c;
	size_t len;

	b = export_log(l, &len);
	c = xcalloc(len + 16, 1);

	memcpy(c, b, len);
	c[len] = 0;
	CHECK_MSG(verify(c, len + 1, NULL, rep, &e) == SBX_EFORMAT &&
	          rep->check[LOGEXPORT_FORMAT].status == LOGEXPORT_FAIL, "a trailing byte: rejected");
	/* A byte inserted before the checksum, checksum recomputed. */
	memcpy(c, b, len - 32);
	c[len - 32] = 0;
	fix_checksum(c, len + 1);
	CHECK_MSG(verify(c, len + 1, NULL, rep, &e) == SBX_EFORMAT &&
	          strstr(e.msg, "unexpected bytes") != NULL,
	          "a trailing byte inside the checksum: rejected as trailing");

	memcpy(c, b, len);
	c[4] = 2;
	fix_checksum(c, len);
	CHECK_MSG(verify(c, len, NULL, rep, &e) == SBX_EFORMAT && strstr(e.msg, "version") != NULL,
	          "version 2: rejected");
	memcpy(c, b, len);
	c[0] = 'X';
	CHECK_MSG(verify(c, len, NULL, rep, &e) == SBX_EFORMAT, "bad magic: rejected");
	{
		/* A record count far above what the file holds, checksum fixed:
		 * refused before anything is allocated for it. */
		size_t off = 5 + 4 + identlen;

		memcpy(c, b, len);
		c[off + 3] = 0x01;
		fix_checksum(c, len);
		CHECK_MSG(verify(c, len, NULL, rep, &e) == SBX_EFORMAT &&
		          strstr(e.msg, "record count") != NULL, "record count above what remains: rejected");
		memcpy(c, b, len);
		c[off] = 0xff;
		fix_checksum(c, len);
		CHECK_MSG(verify(c, len, NULL, rep, &e) == SBX_EFORMAT, "record count 2^63+: rejected");
		memcpy(c, b, len);
		memset(c + 5, 0xff, 4);
		fix_checksum(c, len);
		CHECK_MSG(verify(c, len, NULL, rep, &e) == SBX_EFORMAT &&
		          strstr(e.msg, "identity") != NULL, "identity length above the cap: rejected");
	}
	free(c);
	free(b);
	free(rep);
}

/* Every truncation, every bit flip as is, every bit flip with the checksum
 * made right again: all rejected. */
static void test_small_exhaustive(void)
{
	struct logexport_report *rep = xcalloc(1, sizeof *rep);
	struct logexport_opts o;
	struct sbx_err e;
	struct log s;
	uint8_t *b, *c;
	size_t len, missed_trunc = 0, missed_flip = 0, missed_fixed = 0;

	log_build(&s, 2);
	b = export_log(&s, &len);
	c = xcalloc(len, 1);
	memset(&o, 0, sizeof o);
	CHECK_MSG(verify(b, len, NULL, rep, &e) == 0, "the small export verifies");
	printf("# small export: %zu bytes (identity %zu)\n", len, identlen);
	/* The fuzz harness's seed (tests/fuzz/corpus/fuzz_logexport) is this
	 * export, written out on request. */
	if (getenv("SBX_LOGEXPORT_SEED") != NULL) {
		FILE *f = fopen(getenv("SBX_LOGEXPORT_SEED"), "wb");

		CHECK_MSG(f != NULL && fwrite(b, 1, len, f) == len && fclose(f) == 0,
		          "seed export written to $SBX_LOGEXPORT_SEED");
	}

	for (size_t n = 0; n < len; n++)
		if (verify(b, n, NULL, rep, &e) == 0)
			missed_trunc++;
	CHECK_MSG(missed_trunc == 0, "every truncation of a small export is rejected");

	for (size_t i = 0; i < len; i++)
		for (int bit = 0; bit < 8; bit++) {
			memcpy(c, b, len);
			c[i] ^= (uint8_t)(1u << bit);
			if (verify(c, len, NULL, rep, &e) == 0)
				missed_flip++;
		}
	CHECK_MSG(missed_flip == 0, "every bit flip of a small export is rejected");

	/* With the checksum made right again the real checks must catch each
	 * flip: one bit of every byte, the bit rotating with the offset (all 8
	 * per byte would cost ~1 ms of identity_check each, 25,000 times).
	 * The identity is pinned, as an auditor does: a flip inside an EK
	 * certificate is otherwise visible only when the EK chain is checked. */
	o.pin_identity = ident;
	o.pin_identity_len = identlen;
	for (size_t i = 0; i < len - 32; i++) {
		int bit = (int)(i % 8);

		memcpy(c, b, len);
		c[i] ^= (uint8_t)(1u << bit);
		fix_checksum(c, len);
		if (verify(c, len, &o, rep, &e) == 0) {
			if (missed_fixed++ < 5)
				printf("#   flip at byte %zu bit %d not caught\n", i, bit);
		}
	}
	CHECK_MSG(missed_fixed == 0, "a bit flip in every byte of a small export is rejected "
	          "with the checksum fixed");
	free(c);
	free(b);
	log_free(&s);
	free(rep);
}

static void test_writer(void)
{
	struct logexport_writer *w = NULL;
	struct sbx_err e;
	struct log s;
	uint8_t sig[SIG_MAX_DER] = { 0 };
	int fd = memfd_create("w", MFD_CLOEXEC);

	log_build(&s, 2);
	sbx_err_clear(&e);
	CHECK_MSG(logexport_writer_open(fd, ident, identlen, 0, 1, &w, &e) == SBX_EINVAL && w == NULL,
	          "writer refuses zero records");
	CHECK_MSG(logexport_writer_open(fd, ident, 0, 1, 1, &w, &e) == SBX_EINVAL && w == NULL,
	          "writer refuses an empty identity");
	CHECK_MSG(logexport_writer_open(fd, ident, identlen, LOGEXPORT_MAX_RECORDS + 1, 1, &w, &e) ==
	          SBX_EINVAL, "writer refuses a record count above the cap");

	CHECK(logexport_writer_open(fd, ident, identlen, 2, 2, &w, &e) == 0);
	CHECK_MSG(logexport_writer_put_sth(w, s.head[0].sth, s.head[0].sig, s.head[0].siglen, &e) ==
	          SBX_EINVAL, "a head before the records is refused");
	CHECK_MSG(logexport_writer_put_record(w, s.rec[0].b, s.rec[0].len, &e) == SBX_EINVAL,
	          "after misuse the writer stays failed");
	CHECK_MSG(logexport_writer_finish(w, &e) == SBX_EINVAL, "and finish fails");

	CHECK(logexport_writer_open(fd, ident, identlen, 2, 2, &w, &e) == 0);
	CHECK(logexport_writer_put_record(w, s.rec[0].b, s.rec[0].len, &e) == 0);
	CHECK_MSG(logexport_writer_finish(w, &e) == SBX_EINVAL, "finish with a record missing fails");

	CHECK(logexport_writer_open(fd, ident, identlen, 1, 1, &w, &e) == 0);
	CHECK(logexport_writer_put_record(w, s.rec[0].b, s.rec[0].len, &e) == 0);
	CHECK_MSG(logexport_writer_put_record(w, s.rec[1].b, s.rec[1].len, &e) == SBX_EINVAL,
	          "a record more than announced is refused");
	logexport_writer_free(w);

	CHECK(logexport_writer_open(fd, ident, identlen, 1, 1, &w, &e) == 0);
	CHECK(logexport_writer_put_record(w, s.rec[0].b, s.rec[0].len, &e) == 0);
	CHECK_MSG(logexport_writer_put_sth(w, s.head[0].sth, sig, 0, &e) == SBX_EINVAL,
	          "an empty signature is refused");
	logexport_writer_free(w);

	CHECK(logexport_writer_open(fd, ident, identlen, 1, 1, &w, &e) == 0);
	CHECK(logexport_writer_put_record(w, s.rec[0].b, s.rec[0].len, &e) == 0);
	CHECK_MSG(logexport_writer_put_sth(w, s.head[0].sth, sig, SIG_MAX_DER + 1, &e) == SBX_EINVAL,
	          "an over-long signature is refused");
	logexport_writer_free(w);

	CHECK(logexport_writer_open(fd, ident, identlen, 1, 1, &w, &e) == 0);
	CHECK_MSG(logexport_writer_put_record(w, s.rec[0].b, 0, &e) == SBX_EINVAL,
	          "an empty record is refused");
	logexport_writer_free(w);
	close(fd);

	{
		int bad = memfd_create("ro", MFD_CLOEXEC);

		/* A descriptor that cannot be written: the error surfaces at the
		 * latest in finish. */
		close(bad);
		sbx_err_clear(&e);
		CHECK(logexport_writer_open(bad, ident, identlen, 1, 1, &w, &e) == 0);
		logexport_writer_put_record(w, s.rec[0].b, s.rec[0].len, &e);
		logexport_writer_put_sth(w, s.head[0].sth, s.head[0].sig, s.head[0].siglen, &e);
		CHECK_MSG(logexport_writer_finish(w, &e) == SBX_EIO && strstr(e.msg, "write failed"),
		          "a write error fails finish with SBX_EIO");
	}
	log_free(&s);
}

static int setup(void)
{
	const char *tcti = getenv("SEALBOX_TCTI");
	struct tpm_identity *tid = xcalloc(1, sizeof *tid);
	struct identity *id = xcalloc(1, sizeof *id);
	EVP_PKEY_CTX *kc = NULL;
	struct sbx_err e;
	uint8_t nonce[32];
	int ok = 0;

	sbx_err_clear(&e);
	ekca = getenv("SBX_TEST_EKCA");
	if (!CHECK_MSG(tcti != NULL && tcti[0] != '\0', "SEALBOX_TCTI is set (run under with-swtpm.sh)"))
		goto out;
	if (!CHECK_MSG(tpm_open(tcti, &tpm, &e) == 0, "tpm_open"))
		goto out;
	if (RAND_bytes(nonce, sizeof nonce) != 1)
		goto out;
	if (!CHECK_MSG(tpm_provision(tpm, nonce, tid, &e) == 0, "tpm_provision")) {
		printf("#   %s\n", e.msg);
		goto out;
	}
	if (!CHECK_MSG(tpm_identity_export(tid, id) == 0 && identity_encode(id, &ident, &identlen) == 0,
	               "the TPM's identity encodes"))
		goto out;
	memcpy(appliance_id, id->appliance_id, 32);
	kc = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
	if (kc == NULL || EVP_PKEY_keygen_init(kc) != 1 ||
	    EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kc, NID_X9_62_prime256v1) != 1 ||
	    EVP_PKEY_keygen(kc, &forger) != 1)
		goto out;
	ok = 1;
out:
	EVP_PKEY_CTX_free(kc);
	free(tid);
	free(id);
	return ok;
}

int main(void)
{
	struct log l;

	if (!setup()) {
		tpm_close(tpm);
		return check_done();
	}
	{
		static void (*const phases[])(const struct log *) = {
			test_valid, test_record_tampering, test_truncation, test_head_tampering,
			test_older, test_keep_going, test_format,
		};
		double t0 = now_ms();

		log_build(&l, N_LOG);
		printf("# built and TPM-signed %d records: %.0f ms\n", N_LOG, now_ms() - t0);
		for (size_t i = 0; i < sizeof phases / sizeof phases[0]; i++) {
			t0 = now_ms();
			phases[i](&l);
			printf("# phase %zu: %.0f ms\n", i, now_ms() - t0);
		}
		t0 = now_ms();
		test_small_exhaustive();
		printf("# exhaustive: %.0f ms\n", now_ms() - t0);
	}
	test_writer();

	log_free(&l);
	for (size_t i = 0; i < npool; i++)
		free(pool[i]);
	free(pool);
	free(ident);
	EVP_PKEY_free(forger);
	tpm_close(tpm);
	return check_done();
}

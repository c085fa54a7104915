#include "export/logexport.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>

#include "crypto/hash.h"
#include "crypto/merkle.h"
#include "crypto/sig.h"
#include "export/atomic.h"
#include "export/jsonw.h"
#include "export/logrec.h"
#include "export/wire.h"

static const uint8_t export_magic[4] = { 'S', 'B', 'X', 'L' };

#define TRAILER_LEN 32
/* The least an item can occupy (length prefix plus one byte): a count is
 * refused before any allocation if the rest of the file could not hold it. */
#define MIN_RECORD_WIRE 5
#define MIN_HEAD_WIRE   (STH_ENCODED_LEN + 5)

static void put_be(uint8_t *b, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

/* ---- Writer ------------------------------------------------------------ */

struct logexport_writer {
	int fd;
	struct hash_ctx *h;
	uint64_t n_records, n_heads, records, heads;
	int err;                /* sticky: once set every call returns it */
	size_t used;
	uint8_t buf[65536];
};

static int w_flush(struct logexport_writer *w, struct sbx_err *e)
{
	if (w->err != 0)
		return w->err;
	if (w->used > 0 && atomic_write_all(w->fd, w->buf, w->used) != 0) {
		w->err = sbx_fail(e, SBX_EIO, "log export: write failed: %s", strerror(errno));
		return w->err;
	}
	w->used = 0;
	return 0;
}

/* Appends to the file and to the running checksum. */
static int w_emit(struct logexport_writer *w, const void *p, size_t n, struct sbx_err *e)
{
	const uint8_t *b = p;

	if (w->err != 0)
		return w->err;
	if (n > 0 && hash_update(w->h, p, n) != 0) {
		w->err = sbx_fail(e, SBX_ECRYPTO, "log export: hashing failed");
		return w->err;
	}
	while (n > 0) {
		size_t k = sizeof w->buf - w->used;

		if (k > n)
			k = n;
		memcpy(w->buf + w->used, b, k);
		w->used += k;
		b += k;
		n -= k;
		if (w->used == sizeof w->buf && w_flush(w, e) != 0)
			return w->err;
	}
	return 0;
}

static int w_emit_be(struct logexport_writer *w, uint64_t v, int n, struct sbx_err *e)
{
	uint8_t b[8];

	put_be(b, v, n);
	return w_emit(w, b, (size_t)n, e);
}

/* Misuse poisons the writer too, so finish() can never produce a file
 * from a sequence of calls that was not exactly right. */
static int w_misuse(struct logexport_writer *w, int code, struct sbx_err *e,
                    const char *what)
{
	w->err = sbx_fail(e, code, "log export: %s", what);
	return w->err;
}

int logexport_writer_open(int fd, const uint8_t *identity, size_t identity_len,
                          uint64_t n_records, uint64_t n_heads,
                          struct logexport_writer **out, struct sbx_err *e)
{
	struct logexport_writer *w = NULL;
	int r = SBX_EINVAL;

	if (out == NULL)
		return sbx_fail(e, SBX_EINVAL, "log export: no writer to return");
	*out = NULL;
	if (fd < 0) {
		r = sbx_fail(e, SBX_EINVAL, "log export: bad file descriptor");
		goto out;
	}
	if (identity == NULL || identity_len == 0 || identity_len > LOGEXPORT_MAX_IDENTITY) {
		r = sbx_fail(e, SBX_EINVAL, "log export: identity is %zu bytes, allowed 1..%d",
		             identity_len, LOGEXPORT_MAX_IDENTITY);
		goto out;
	}
	if (n_records == 0 || n_records > LOGEXPORT_MAX_RECORDS ||
	    n_heads == 0 || n_heads > LOGEXPORT_MAX_HEADS) {
		r = sbx_fail(e, SBX_EINVAL, "log export: %" PRIu64 " records and %" PRIu64
		             " heads, allowed 1..%" PRIu64 " and 1..%" PRIu64, n_records, n_heads,
		             LOGEXPORT_MAX_RECORDS, LOGEXPORT_MAX_HEADS);
		goto out;
	}
	w = calloc(1, sizeof *w);
	if (w == NULL || (w->h = hash_new()) == NULL) {
		r = sbx_fail(e, SBX_ENOMEM, "log export: out of memory");
		goto out;
	}
	w->fd = fd;
	w->n_records = n_records;
	w->n_heads = n_heads;
	w_emit(w, export_magic, sizeof export_magic, e);
	w_emit_be(w, LOGEXPORT_VERSION, 1, e);
	w_emit_be(w, identity_len, 4, e);
	w_emit(w, identity, identity_len, e);
	r = w_emit_be(w, n_records, 8, e);
	if (r != 0)
		goto out;
	*out = w;
	w = NULL;   /* transferred */
out:
	logexport_writer_free(w);
	return r;
}

int logexport_writer_put_record(struct logexport_writer *w, const uint8_t *rec,
                                size_t len, struct sbx_err *e)
{
	if (w == NULL)
		return sbx_fail(e, SBX_EINVAL, "log export: no writer");
	if (w->err != 0)
		return w->err;
	if (w->records >= w->n_records)
		return w_misuse(w, SBX_EINVAL, e, "more records than announced");
	if (rec == NULL || len == 0 || len > LOGREC_MAX_ENCODED)
		return w_misuse(w, SBX_EINVAL, e, "record length outside 1..LOGREC_MAX_ENCODED");
	w_emit_be(w, len, 4, e);
	w_emit(w, rec, len, e);
	w->records++;
	if (w->records == w->n_records)
		w_emit_be(w, w->n_heads, 8, e);
	return w->err;
}

int logexport_writer_put_sth(struct logexport_writer *w,
                             const uint8_t sth[static STH_ENCODED_LEN],
                             const uint8_t *sig, size_t siglen, struct sbx_err *e)
{
	struct sth h;

	if (w == NULL)
		return sbx_fail(e, SBX_EINVAL, "log export: no writer");
	if (w->err != 0)
		return w->err;
	if (w->records != w->n_records)
		return w_misuse(w, SBX_EINVAL, e, "tree head before every record was written");
	if (w->heads >= w->n_heads)
		return w_misuse(w, SBX_EINVAL, e, "more tree heads than announced");
	if (sig == NULL || siglen == 0 || siglen > SIG_MAX_DER)
		return w_misuse(w, SBX_EINVAL, e, "signature length outside 1..SIG_MAX_DER");
	if (sth_decode(sth, STH_ENCODED_LEN, &h) != 0)
		return w_misuse(w, SBX_EFORMAT, e, "tree head does not decode");
	w_emit(w, sth, STH_ENCODED_LEN, e);
	w_emit_be(w, siglen, 4, e);
	w_emit(w, sig, siglen, e);
	w->heads++;
	return w->err;
}

int logexport_writer_finish(struct logexport_writer *w, struct sbx_err *e)
{
	uint8_t digest[HASH_LEN];
	int r = SBX_EINVAL;

	if (w == NULL)
		return sbx_fail(e, SBX_EINVAL, "log export: no writer");
	r = w->err;
	if (r != 0)
		goto out;
	if (w->records != w->n_records || w->heads != w->n_heads) {
		r = sbx_fail(e, SBX_EINVAL, "log export: %" PRIu64 " of %" PRIu64 " records and %"
		             PRIu64 " of %" PRIu64 " tree heads written", w->records, w->n_records,
		             w->heads, w->n_heads);
		goto out;
	}
	if (hash_final(w->h, digest) != 0) {
		r = sbx_fail(e, SBX_ECRYPTO, "log export: hashing failed");
		goto out;
	}
	/* The checksum covers everything before it, not itself. */
	r = w_flush(w, e);
	if (r == 0 && atomic_write_all(w->fd, digest, sizeof digest) != 0)
		r = sbx_fail(e, SBX_EIO, "log export: write failed: %s", strerror(errno));
out:
	logexport_writer_free(w);
	return r;
}

void logexport_writer_free(struct logexport_writer *w)
{
	if (w == NULL)
		return;
	hash_free(w->h);
	free(w);
}

/* ---- Verifier ---------------------------------------------------------- */

/* Where things are, once the layout has been checked. */
struct layout {
	const uint8_t *ident;
	size_t ident_len;
	uint64_t n_records, n_heads;
	size_t records_off, heads_off;  /* first item of each list */
	size_t body_len;                /* everything before the checksum */
};

struct vctx {
	const uint8_t *buf;
	size_t len;
	const struct logexport_opts *o;
	struct logexport_report *rep;
	struct sbx_err *e;
	int nested;             /* the older export, checked for a newer one */
	int rc;                 /* first failure */
	struct layout lay;
	struct identity *id;    /* NULL unless it decoded */
	EVP_PKEY *pkey;
	uint8_t (*leaves)[32];
	struct logrec *rec;
};

static const char *const check_names[LOGEXPORT_N_CHECKS] = {
	"format", "pin", "identity", "records", "heads", "roots", "signatures",
	"complete", "older", "consistency",
};

/* Checks that must have passed for an export to verify; the others run only
 * when asked for (a pin, an older export). */
static int check_required(int c)
{
	return c != LOGEXPORT_PIN && c != LOGEXPORT_OLDER && c != LOGEXPORT_CONSISTENCY;
}

const char *logexport_check_name(enum logexport_check c)
{
	return ((int)c >= 0 && (int)c < LOGEXPORT_N_CHECKS) ? check_names[c] : "unknown";
}

static void begin(struct vctx *v, enum logexport_check c)
{
	if (v->rep->check[c].status == LOGEXPORT_NOT_RUN)
		v->rep->check[c].status = LOGEXPORT_PASS;
}

static void skip(struct vctx *v, enum logexport_check c, const char *why)
{
	v->rep->check[c].status = LOGEXPORT_NOT_RUN;
	snprintf(v->rep->check[c].why, sizeof v->rep->check[c].why, "%s", why);
}

/* Records a failure of check c: the first one per check is kept in the
 * report, the first one overall becomes the return code and e's message. */
static int fail(struct vctx *v, enum logexport_check c, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(struct vctx *v, enum logexport_check c, int code, const char *fmt, ...)
{
	struct logexport_result *res = &v->rep->check[c];
	va_list ap;

	res->failures++;
	if (res->status != LOGEXPORT_FAIL) {
		res->status = LOGEXPORT_FAIL;
		res->code = code;
		va_start(ap, fmt);
		vsnprintf(res->why, sizeof res->why, fmt, ap);
		va_end(ap);
	}
	if (v->rc == 0) {
		v->rc = code;
		sbx_fail(v->e, code, "log export: %s: %s", check_names[c], res->why);
	}
	return code;
}

static int stop(const struct vctx *v)
{
	return v->rc != 0 && !v->o->keep_going;
}

/* Reads one length-prefixed item of 1..cap bytes; NULL or why not. */
static const char *get_item(struct wire_r *r, size_t cap, const uint8_t **p, size_t *n)
{
	uint32_t k = wire_get_u32(r);

	*p = NULL;
	*n = 0;
	if (r->err != 0)
		return "is cut off in its length field";
	if (k == 0 || k > cap)
		return "has a length outside the allowed range";
	*p = wire_get_raw(r, k);
	*n = k;
	if (*p == NULL)
		return "runs past the end of the file";
	return NULL;
}

static int check_format(struct vctx *v)
{
	struct layout *l = &v->lay;
	struct wire_r r;
	uint8_t digest[HASH_LEN];
	const uint8_t *p;
	const char *why;
	size_t n, remain;

	begin(v, LOGEXPORT_FORMAT);
	if (v->len < sizeof export_magic || memcmp(v->buf, export_magic, sizeof export_magic) != 0)
		return fail(v, LOGEXPORT_FORMAT, SBX_EFORMAT, "not a sealbox log export (no SBXL magic)");
	if (v->len < 5 + 4 + TRAILER_LEN)
		return fail(v, LOGEXPORT_FORMAT, SBX_EFORMAT, "truncated: %zu bytes", v->len);
	if (v->buf[4] != LOGEXPORT_VERSION)
		return fail(v, LOGEXPORT_FORMAT, SBX_EFORMAT, "unsupported version %u (this verifier reads %d)",
		            v->buf[4], LOGEXPORT_VERSION);
	l->body_len = v->len - TRAILER_LEN;
	wire_r_init(&r, v->buf, l->body_len);
	wire_get_raw(&r, 5);
	why = get_item(&r, LOGEXPORT_MAX_IDENTITY, &l->ident, &l->ident_len);
	if (why != NULL)
		return fail(v, LOGEXPORT_FORMAT, SBX_EFORMAT, "identity %s", why);

	l->n_records = wire_get_u64(&r);
	if (r.err != 0)
		return fail(v, LOGEXPORT_FORMAT, SBX_EFORMAT, "cut off in the record count");
	remain = l->body_len - r.off;
	if (l->n_records == 0 || l->n_records > LOGEXPORT_MAX_RECORDS ||
	    l->n_records > remain / MIN_RECORD_WIRE)
		return fail(v, LOGEXPORT_FORMAT, SBX_EFORMAT, "record count %" PRIu64
		            " is zero, above the cap or more than the file can hold", l->n_records);
	l->records_off = r.off;
	for (uint64_t i = 0; i < l->n_records; i++) {
		why = get_item(&r, LOGREC_MAX_ENCODED, &p, &n);
		if (why != NULL)
			return fail(v, LOGEXPORT_FORMAT, SBX_EFORMAT, "record %" PRIu64 " %s", i, why);
	}

	l->n_heads = wire_get_u64(&r);
	if (r.err != 0)
		return fail(v, LOGEXPORT_FORMAT, SBX_EFORMAT, "cut off in the tree head count");
	remain = l->body_len - r.off;
	if (l->n_heads == 0 || l->n_heads > LOGEXPORT_MAX_HEADS ||
	    l->n_heads > remain / MIN_HEAD_WIRE)
		return fail(v, LOGEXPORT_FORMAT, SBX_EFORMAT, "tree head count %" PRIu64
		            " is zero, above the cap or more than the file can hold", l->n_heads);
	l->heads_off = r.off;
	for (uint64_t j = 0; j < l->n_heads; j++) {
		if (wire_get_raw(&r, STH_ENCODED_LEN) == NULL)
			return fail(v, LOGEXPORT_FORMAT, SBX_EFORMAT, "tree head %" PRIu64
			            " runs past the end of the file", j);
		why = get_item(&r, SIG_MAX_DER, &p, &n);
		if (why != NULL)
			return fail(v, LOGEXPORT_FORMAT, SBX_EFORMAT, "signature of tree head %"
			            PRIu64 " %s", j, why);
	}
	if (r.off != l->body_len)
		return fail(v, LOGEXPORT_FORMAT, SBX_EFORMAT, "%zu unexpected bytes after the last tree head",
		            l->body_len - r.off);
	if (hash_sha256(v->buf, l->body_len, digest) != 0)
		return fail(v, LOGEXPORT_FORMAT, SBX_ECRYPTO, "hashing failed");
	if (!sig_equal(digest, v->buf + l->body_len, TRAILER_LEN))
		return fail(v, LOGEXPORT_FORMAT, SBX_EFORMAT, "checksum mismatch: the file is corrupted");
	v->rep->records = l->n_records;
	v->rep->heads = l->n_heads;
	return 0;
}

/* Pin, decode, identity_check, signing key: identity before any crypto
 * that depends on it. */
static int check_identity(struct vctx *v)
{
	const struct logexport_opts *o = v->o;
	const struct layout *l = &v->lay;
	struct sbx_err ie;
	int r;

	if (o->pin_identity != NULL || o->pin_appliance_id != NULL)
		begin(v, LOGEXPORT_PIN);
	else
		skip(v, LOGEXPORT_PIN, "nothing pinned: compare the appliance id out of band");
	if (o->pin_identity != NULL &&
	    (o->pin_identity_len != l->ident_len ||
	     memcmp(o->pin_identity, l->ident, l->ident_len) != 0)) {
		fail(v, LOGEXPORT_PIN, SBX_EVERIFY, "the identity is not the pinned identity");
		if (stop(v))
			return v->rc;
	}

	begin(v, LOGEXPORT_IDENTITY);
	v->id = calloc(1, sizeof *v->id);
	if (v->id == NULL)
		return fail(v, LOGEXPORT_IDENTITY, SBX_ENOMEM, "out of memory");
	if (identity_decode(l->ident, l->ident_len, v->id) != 0) {
		free(v->id);
		v->id = NULL;
		fail(v, LOGEXPORT_IDENTITY, SBX_EFORMAT, "the identity does not decode");
		if (o->pin_appliance_id != NULL)
			fail(v, LOGEXPORT_PIN, SBX_EVERIFY, "no appliance id to compare: the identity does not decode");
		return v->rc;
	}
	memcpy(v->rep->appliance_id, v->id->appliance_id, 32);
	if (o->pin_appliance_id != NULL && !sig_equal(o->pin_appliance_id, v->id->appliance_id, 32)) {
		fail(v, LOGEXPORT_PIN, SBX_EVERIFY, "the appliance id is not the pinned appliance id");
		if (stop(v))
			return v->rc;
	}

	/* A nested (older) export is pinned to the newer one's identity bytes,
	 * which were checked already. */
	if (!v->nested) {
		sbx_err_clear(&ie);
		r = identity_check(v->id, o->ek_ca_pem, &v->rep->identity, &ie);
		v->rep->identity_checked = 1;
		v->rep->identity_rc = r;
		if (r != 0) {
			fail(v, LOGEXPORT_IDENTITY, r, "%s", ie.msg[0] ? ie.msg : sbx_strerror(r));
			if (stop(v))
				return v->rc;
		}
	}
	if (identity_sign_pkey(v->id, &v->pkey) != 0) {
		v->pkey = NULL;
		fail(v, LOGEXPORT_IDENTITY, SBX_EFORMAT, "the identity's signing key does not load");
	}
	return v->rc;
}

static int vocab_index(const char *const *list, const char *s)
{
	for (int i = 0; list[i] != NULL; i++)
		if (strcmp(list[i], s) == 0)
			return i;
	return -1;
}

static void count_record(struct vctx *v, uint64_t i, const struct logrec *rec)
{
	struct logexport_report *rep = v->rep;
	int k;

	k = vocab_index(logrec_events, rec->event);
	if (k >= 0 && k < LOGEXPORT_EVENT_SLOTS)
		rep->events[k]++;
	k = vocab_index(logrec_outcomes, rec->outcome);
	if (k >= 0 && k < LOGEXPORT_OUTCOME_SLOTS)
		rep->outcomes[k]++;
	if (i == 0)
		rep->first_time_ms = rec->time_ms;
	if (i == v->lay.n_records - 1)
		rep->last_time_ms = rec->time_ms;
}

static int check_records(struct vctx *v)
{
	const struct layout *l = &v->lay;
	struct wire_r r;
	const uint8_t *p;
	uint64_t prev_time = 0;
	size_t n;

	begin(v, LOGEXPORT_RECORDS);
	v->leaves = calloc((size_t)l->n_records, sizeof *v->leaves);
	v->rec = malloc(sizeof *v->rec);
	if (v->leaves == NULL || v->rec == NULL) {
		free(v->leaves);
		v->leaves = NULL;
		return fail(v, LOGEXPORT_RECORDS, SBX_ENOMEM, "out of memory for %" PRIu64 " records",
		            l->n_records);
	}
	wire_r_init(&r, v->buf + l->records_off, l->body_len - l->records_off);
	for (uint64_t i = 0; i < l->n_records; i++) {
		if (get_item(&r, LOGREC_MAX_ENCODED, &p, &n) != NULL ||
		    merkle_leaf_hash(p, n, v->leaves[i]) != 0) {
			free(v->leaves);
			v->leaves = NULL;
			return fail(v, LOGEXPORT_RECORDS, SBX_ECRYPTO, "record %" PRIu64 ": hashing failed", i);
		}
		if (logrec_decode(p, n, v->rec) != 0)
			fail(v, LOGEXPORT_RECORDS, SBX_EFORMAT, "record %" PRIu64 " does not decode", i);
		else if (v->rec->seq != i)
			fail(v, LOGEXPORT_RECORDS, SBX_EVERIFY, "record %" PRIu64 " has sequence number %"
			     PRIu64, i, v->rec->seq);
		else if (v->id != NULL && !sig_equal(v->rec->appliance_id, v->id->appliance_id, 32))
			fail(v, LOGEXPORT_RECORDS, SBX_EVERIFY, "record %" PRIu64
			     " names another appliance than the identity", i);
		else if (v->rec->time_ms < prev_time)   /* the box holds its clock monotonic */
			fail(v, LOGEXPORT_RECORDS, SBX_EVERIFY, "record %" PRIu64 ": time goes back from %"
			     PRIu64 " to %" PRIu64 " ms", i, prev_time, v->rec->time_ms);
		else
			count_record(v, i, v->rec);
		if (v->rec->time_ms > prev_time)
			prev_time = v->rec->time_ms;
		if (stop(v))
			return v->rc;
	}
	return v->rc;
}

/* One pass over the heads: order and fields, then the root against an
 * incrementally grown tree (O(n) hashes for all heads together), then the
 * signature. */
static int check_heads(struct vctx *v)
{
	const struct layout *l = &v->lay;
	struct logexport_report *rep = v->rep;
	struct merkle_frontier f;
	struct wire_r r;
	struct sth h;
	uint8_t root[32];
	const uint8_t *hp, *sig;
	uint64_t max_size = 0, max_counter = 0, max_time = 0;
	size_t siglen;
	int rr;

	if (v->leaves == NULL) {
		skip(v, LOGEXPORT_HEADS, "not run: the records were not hashed");
		skip(v, LOGEXPORT_ROOTS, "not run: the records were not hashed");
		skip(v, LOGEXPORT_SIGNATURES, "not run: the records were not hashed");
		return v->rc;
	}
	begin(v, LOGEXPORT_HEADS);
	begin(v, LOGEXPORT_ROOTS);
	if (v->pkey != NULL)
		begin(v, LOGEXPORT_SIGNATURES);
	else
		skip(v, LOGEXPORT_SIGNATURES, "not run: no signing key (the identity did not load)");
	merkle_frontier_init(&f);
	wire_r_init(&r, v->buf + l->heads_off, l->body_len - l->heads_off);
	for (uint64_t j = 0; j < l->n_heads; j++) {
		int can_root = 1;

		hp = wire_get_raw(&r, STH_ENCODED_LEN);
		if (hp == NULL || get_item(&r, SIG_MAX_DER, &sig, &siglen) != NULL)
			return fail(v, LOGEXPORT_HEADS, SBX_EFORMAT, "tree head %" PRIu64 " unreadable", j);
		if (sth_decode(hp, STH_ENCODED_LEN, &h) != 0) {
			fail(v, LOGEXPORT_HEADS, SBX_EFORMAT, "tree head %" PRIu64 " does not decode", j);
			if (stop(v))
				return v->rc;
			continue;
		}
		if (v->id != NULL && !sig_equal(h.appliance_id, v->id->appliance_id, 32))
			fail(v, LOGEXPORT_HEADS, SBX_EVERIFY, "tree head %" PRIu64
			     " names another appliance than the identity", j);
		if (h.tree_size == 0 || h.tree_size > l->n_records) {
			fail(v, LOGEXPORT_HEADS, SBX_EVERIFY, "tree head %" PRIu64 " covers %" PRIu64
			     " records, the export holds %" PRIu64, j, h.tree_size, l->n_records);
			can_root = 0;
		} else if (h.tree_size < max_size) {
			fail(v, LOGEXPORT_HEADS, SBX_EVERIFY, "tree head %" PRIu64 ": tree size goes back from %"
			     PRIu64 " to %" PRIu64, j, max_size, h.tree_size);
			can_root = 0;
		} else if (h.tree_size > max_size + 1) {
			/* Every append is signed, so every record has a head of its own. */
			fail(v, LOGEXPORT_HEADS, SBX_EVERIFY, "tree head %" PRIu64 ": tree size jumps from %"
			     PRIu64 " to %" PRIu64 " (records without a head of their own)", j,
			     max_size, h.tree_size);
		}
		if (j > 0 && h.counter < max_counter)
			fail(v, LOGEXPORT_HEADS, SBX_EVERIFY, "tree head %" PRIu64 ": counter goes back from %"
			     PRIu64 " to %" PRIu64, j, max_counter, h.counter);
		if (j > 0 && h.timestamp_ms < max_time)
			fail(v, LOGEXPORT_HEADS, SBX_EVERIFY, "tree head %" PRIu64 ": timestamp goes back from %"
			     PRIu64 " to %" PRIu64, j, max_time, h.timestamp_ms);
		if (stop(v))
			return v->rc;
		if (can_root && h.tree_size >= f.size) {
			rr = merkle_frontier_append_many(&f, (const uint8_t (*)[32])v->leaves + f.size,
			                                 h.tree_size - f.size);
			if (rr == 0)
				rr = merkle_frontier_root(&f, root);
			if (rr != 0)
				return fail(v, LOGEXPORT_ROOTS, SBX_ECRYPTO, "hashing failed");
			if (!sig_equal(root, h.root, 32)) {
				fail(v, LOGEXPORT_ROOTS, SBX_EVERIFY, "tree head %" PRIu64 ": root is not the tree of the first %"
				     PRIu64 " records", j, h.tree_size);
				if (stop(v))
					return v->rc;
			}
		}
		if (v->pkey != NULL &&
		    sig_verify(v->pkey, SIG_NS_STH, hp, STH_ENCODED_LEN, sig, siglen) != 0) {
			fail(v, LOGEXPORT_SIGNATURES, SBX_EVERIFY, "tree head %" PRIu64
			     ": signature does not verify under the identity's signing key", j);
			if (stop(v))
				return v->rc;
		}
		if (h.tree_size > max_size && h.tree_size <= l->n_records)
			max_size = h.tree_size;
		if (h.counter > max_counter)
			max_counter = h.counter;
		if (h.timestamp_ms > max_time)
			max_time = h.timestamp_ms;
		if (j == l->n_heads - 1) {
			rep->last_head = h;
			rep->have_last_head = 1;
		}
	}
	return v->rc;
}

static int check_complete(struct vctx *v)
{
	const struct sth *last = &v->rep->last_head;
	uint64_t n = v->lay.n_records;

	begin(v, LOGEXPORT_COMPLETE);
	if (!v->rep->have_last_head)
		return fail(v, LOGEXPORT_COMPLETE, SBX_EVERIFY, "the last tree head is unusable");
	if (last->tree_size < n)
		return fail(v, LOGEXPORT_COMPLETE, SBX_EVERIFY, "the last tree head covers %" PRIu64
		            " of %" PRIu64 " records: records %" PRIu64 " onwards are not signed",
		            last->tree_size, n, last->tree_size);
	if (last->tree_size > n)
		return fail(v, LOGEXPORT_COMPLETE, SBX_EVERIFY, "the last tree head covers %" PRIu64
		            " records, the export holds only %" PRIu64, last->tree_size, n);
	return v->rc;
}

static int verify_buf(const uint8_t *buf, size_t len, const struct logexport_opts *o,
                      struct logexport_report *rep, struct sbx_err *e, int nested,
                      struct layout *lay_out);

/* The items of two lists of length-prefixed items are compared one by one,
 * so a difference is reported by its index. */
static int first_difference(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                            uint64_t n, size_t fixed, size_t cap, uint64_t *where)
{
	struct wire_r ra, rb;
	const uint8_t *pa, *pb;
	size_t na, nb;

	wire_r_init(&ra, a, alen);
	wire_r_init(&rb, b, blen);
	for (uint64_t i = 0; i < n; i++) {
		const uint8_t *fa = wire_get_raw(&ra, fixed), *fb = wire_get_raw(&rb, fixed);

		if (fa == NULL || fb == NULL || memcmp(fa, fb, fixed) != 0 ||
		    get_item(&ra, cap, &pa, &na) != NULL || get_item(&rb, cap, &pb, &nb) != NULL ||
		    na != nb || memcmp(pa, pb, na) != 0) {
			*where = i;
			return 1;
		}
	}
	return 0;
}

static int check_older(struct vctx *v)
{
	const struct layout *l = &v->lay;
	struct logexport_report *rep = v->rep, *orep = NULL;
	struct logexport_opts oo;
	struct layout ol;
	struct sbx_err oe;
	uint8_t proof[MERKLE_MAX_PROOF][32];
	size_t prooflen = 0;
	uint64_t at, m, n;
	int r;

	begin(v, LOGEXPORT_OLDER);
	orep = calloc(1, sizeof *orep);
	if (orep == NULL)
		return fail(v, LOGEXPORT_OLDER, SBX_ENOMEM, "out of memory");
	/* The older export must be the same box: pin it to this identity. */
	memset(&oo, 0, sizeof oo);
	oo.pin_identity = l->ident;
	oo.pin_identity_len = l->ident_len;
	sbx_err_clear(&oe);
	r = verify_buf(v->o->older, v->o->older_len, &oo, orep, &oe, 1, &ol);
	rep->older_records = orep->records;
	rep->older_heads = orep->heads;
	rep->have_older_head = orep->have_last_head;
	rep->older_last_head = orep->last_head;
	if (r != 0 && orep->check[LOGEXPORT_PIN].status == LOGEXPORT_FAIL) {
		fail(v, LOGEXPORT_OLDER, r, "the older export is another box's: its identity is not"
		     " this export's");
		goto out;
	}
	if (r != 0) {
		fail(v, LOGEXPORT_OLDER, r, "the older export does not verify (%s)", oe.msg);
		goto out;
	}
	if (ol.n_records > l->n_records) {
		/* Still a failure for the files as given.  When this export is a
		 * prefix of the "older" one it is simply older: a stale export
		 * presented as new, or two arguments swapped.  Content cannot tell
		 * which; the auditor can. */
		int swapped = !first_difference(v->buf + l->records_off, l->body_len - l->records_off,
		                                v->o->older + ol.records_off,
		                                ol.body_len - ol.records_off, l->n_records, 0,
		                                LOGREC_MAX_ENCODED, &at);

		fail(v, LOGEXPORT_OLDER, SBX_EVERIFY, "the older export has %" PRIu64 " records, this one %"
		     PRIu64 ": records were removed%s", ol.n_records, l->n_records,
		     swapped ? " (this export is a prefix of the older one, so it is older than the"
		               " export verified before; if the two were given the wrong way round,"
		               " --since takes the one verified before)" : "");
	} else if (first_difference(v->o->older + ol.records_off, ol.body_len - ol.records_off,
	                            v->buf + l->records_off, l->body_len - l->records_off,
	                            ol.n_records, 0, LOGREC_MAX_ENCODED, &at)) {
		fail(v, LOGEXPORT_OLDER, SBX_EVERIFY, "record %" PRIu64 " differs from the older export's", at);
	}
	if (stop(v))
		goto out;
	if (ol.n_heads > l->n_heads) {
		fail(v, LOGEXPORT_OLDER, SBX_EVERIFY, "the older export has %" PRIu64 " tree heads, this one %"
		     PRIu64 ": heads were removed", ol.n_heads, l->n_heads);
	} else if (first_difference(v->o->older + ol.heads_off, ol.body_len - ol.heads_off,
	                            v->buf + l->heads_off, l->body_len - l->heads_off,
	                            ol.n_heads, STH_ENCODED_LEN, SIG_MAX_DER, &at)) {
		fail(v, LOGEXPORT_OLDER, SBX_EVERIFY, "tree head %" PRIu64 " differs from the older export's", at);
	}
	if (stop(v))
		goto out;
	if (!rep->have_last_head) {
		fail(v, LOGEXPORT_OLDER, SBX_EVERIFY, "no last tree head to compare with the older one");
		goto out;
	}
	if (orep->last_head.tree_size > rep->last_head.tree_size)
		fail(v, LOGEXPORT_OLDER, SBX_EVERIFY, "the older last tree head is larger (%" PRIu64 " > %"
		     PRIu64 ")", orep->last_head.tree_size, rep->last_head.tree_size);
	if (orep->last_head.counter > rep->last_head.counter)
		fail(v, LOGEXPORT_OLDER, SBX_EVERIFY, "the counter went back since the older export (%"
		     PRIu64 " > %" PRIu64 ")", orep->last_head.counter, rep->last_head.counter);
	if (orep->last_head.timestamp_ms > rep->last_head.timestamp_ms)
		fail(v, LOGEXPORT_OLDER, SBX_EVERIFY, "the last tree head is older than the older export's");
	if (stop(v))
		goto out;

	/* The auditor's own consistency proof between the two signed roots:
	 * built from this export's records, checked against the older root. */
	begin(v, LOGEXPORT_CONSISTENCY);
	m = orep->last_head.tree_size;
	n = rep->last_head.tree_size;
	rep->consistency_m = m;
	rep->consistency_n = n;
	if (m == 0 || m > n || n > l->n_records) {
		fail(v, LOGEXPORT_CONSISTENCY, SBX_EVERIFY, "no proof possible from %" PRIu64 " to %"
		     PRIu64 " records", m, n);
		goto out;
	}
	r = merkle_consistency_proof((const uint8_t (*)[32])v->leaves, m, n, proof, &prooflen);
	if (r != 0) {
		fail(v, LOGEXPORT_CONSISTENCY, r, "building the proof from %" PRIu64 " to %" PRIu64
		     " records failed", m, n);
		goto out;
	}
	rep->consistency_proof_len = prooflen;
	if (merkle_verify_consistency(m, n, orep->last_head.root, rep->last_head.root,
	                              (const uint8_t (*)[32])proof, prooflen) != 0)
		fail(v, LOGEXPORT_CONSISTENCY, SBX_EVERIFY, "the tree of %" PRIu64 " records does not extend "
		     "the older tree of %" PRIu64, n, m);
out:
	free(orep);
	return v->rc;
}

static int verify_buf(const uint8_t *buf, size_t len, const struct logexport_opts *o,
                      struct logexport_report *rep, struct sbx_err *e, int nested,
                      struct layout *lay_out)
{
	static const struct logexport_opts defaults;
	struct vctx v;

	memset(rep, 0, sizeof *rep);
	for (int c = 0; c < LOGEXPORT_N_CHECKS; c++)
		rep->check[c].status = LOGEXPORT_NOT_RUN;
	memset(&v, 0, sizeof v);
	v.buf = buf;
	v.len = buf != NULL ? len : 0;
	v.o = o != NULL ? o : &defaults;
	v.rep = rep;
	v.e = e;
	v.nested = nested;

	/* Nothing can be read from a file whose layout is wrong. */
	if (check_format(&v) != 0)
		goto out;
	if (check_identity(&v) != 0 && stop(&v))
		goto out;
	if (check_records(&v) != 0 && stop(&v))
		goto out;
	if (check_heads(&v) != 0 && stop(&v))
		goto out;
	if (check_complete(&v) != 0 && stop(&v))
		goto out;
	if (!nested && v.o->older != NULL)
		check_older(&v);
	else if (!nested)
		skip(&v, LOGEXPORT_OLDER, "no older export given");
out:
	/* A check that had to run and did not (keep_going past an internal
	 * error) must not let the export pass. */
	for (int c = 0; c < LOGEXPORT_N_CHECKS && v.rc == 0; c++)
		if (check_required(c) && rep->check[c].status != LOGEXPORT_PASS)
			fail(&v, (enum logexport_check)c, SBX_EVERIFY, "did not run");
	if (lay_out != NULL)
		*lay_out = v.lay;
	EVP_PKEY_free(v.pkey);
	free(v.id);
	free(v.leaves);
	free(v.rec);
	return v.rc;
}

int logexport_verify(const uint8_t *buf, size_t len, const struct logexport_opts *o,
                     struct logexport_report *rep, struct sbx_err *e)
{
	if (rep == NULL)
		return sbx_fail(e, SBX_EINVAL, "log export: no report");
	return verify_buf(buf, len, o, rep, e, 0, NULL);
}

/* ---- Rendering --------------------------------------------------------- */

static int report_ok(const struct logexport_report *rep)
{
	for (int c = 0; c < LOGEXPORT_N_CHECKS; c++) {
		int st = rep->check[c].status;

		if (st == LOGEXPORT_FAIL || (check_required(c) && st != LOGEXPORT_PASS))
			return 0;
	}
	return 1;
}

static const char *status_name(int st)
{
	/* The words of sealbox-verify's bundle checks (docs/VERIFY.md §2). */
	return st == LOGEXPORT_PASS ? "ok" : st == LOGEXPORT_FAIL ? "FAILED" : "not run";
}

static void fmt_time(uint64_t ms, char *out, size_t n)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char base[32];

	if (ms / 1000 > (uint64_t)253402300799 || gmtime_r(&t, &tm) == NULL ||
	    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		snprintf(out, n, "%" PRIu64 " ms", ms);
		return;
	}
	snprintf(out, n, "%s.%03uZ", base, (unsigned)(ms % 1000));
}

/* Reasons are ours, but identity_check's message is passed through: never
 * send a control or non-ASCII byte to a terminal. */
static void print_safe(FILE *f, const char *s)
{
	for (; *s != '\0'; s++)
		fputc((*s >= 0x20 && *s < 0x7f) ? *s : '?', f);
}

static const char *tri(int v)
{
	return v > 0 ? "ok" : v == 0 ? "FAILED" : "not checked";
}

void logexport_report_print(FILE *f, const struct logexport_report *rep)
{
	char hex[65], t1[40], t2[40];

	fprintf(f, "custody log export: %s\n", report_ok(rep) ? "VERIFIED" : "NOT VERIFIED");
	/* A file that is not an export has no box, records or times to show:
	 * zeros would read as facts. */
	if (rep->check[LOGEXPORT_FORMAT].status != LOGEXPORT_PASS)
		goto checks;
	hash_hex(rep->appliance_id, 32, hex);
	fprintf(f, "appliance id: %s\n", hex);
	fmt_time(rep->first_time_ms, t1, sizeof t1);
	fmt_time(rep->last_time_ms, t2, sizeof t2);
	fprintf(f, "records: %" PRIu64 " (%s .. %s)\n", rep->records, t1, t2);
	fprintf(f, "tree heads: %" PRIu64 "\n", rep->heads);
	if (rep->have_last_head) {
		hash_hex(rep->last_head.root, 32, hex);
		fmt_time(rep->last_head.timestamp_ms, t1, sizeof t1);
		fprintf(f, "last head: size %" PRIu64 ", counter %" PRIu64 ", %s, root %s\n",
		        rep->last_head.tree_size, rep->last_head.counter, t1, hex);
	}
	fputs("events:", f);
	for (int k = 0; k < LOGEXPORT_EVENT_SLOTS && logrec_events[k] != NULL; k++)
		if (rep->events[k] > 0)
			fprintf(f, " %s=%" PRIu64, logrec_events[k], rep->events[k]);
	fputs("\noutcomes:", f);
	for (int k = 0; k < LOGEXPORT_OUTCOME_SLOTS && logrec_outcomes[k] != NULL; k++)
		if (rep->outcomes[k] > 0)
			fprintf(f, " %s=%" PRIu64, logrec_outcomes[k], rep->outcomes[k]);
	fputc('\n', f);
	if (rep->identity_checked) {
		const struct identity_report *ir = &rep->identity;

		fprintf(f, "identity: signing key %s, decrypt key %s, attestation key %s, "
		        "certification %s, EK certificate %s, EK chain %s, appliance id %s\n",
		        tri(ir->sign_attrs_ok), tri(ir->decrypt_attrs_ok), tri(ir->ak_attrs_ok),
		        tri(ir->certify_ok), ir->ekcert_present ? "present" : "absent",
		        tri(ir->ekcert_chain_ok), tri(ir->appliance_id_ok));
	}
	if (rep->check[LOGEXPORT_OLDER].status != LOGEXPORT_NOT_RUN)
		fprintf(f, "older export: %" PRIu64 " records, %" PRIu64 " tree heads\n",
		        rep->older_records, rep->older_heads);
	if (rep->check[LOGEXPORT_CONSISTENCY].status != LOGEXPORT_NOT_RUN)
		fprintf(f, "consistency proof: %" PRIu64 " -> %" PRIu64 " records, %zu hashes\n",
		        rep->consistency_m, rep->consistency_n, rep->consistency_proof_len);
checks:
	for (int c = 0; c < LOGEXPORT_N_CHECKS; c++) {
		const struct logexport_result *res = &rep->check[c];

		fprintf(f, "  %-12s %-7s", check_names[c], status_name(res->status));
		if (res->status == LOGEXPORT_FAIL && res->failures > 1)
			fprintf(f, " (%" PRIu64 " failures; first:", res->failures);
		if (res->why[0] != '\0') {
			fputc(' ', f);
			print_safe(f, res->why);
		}
		if (res->status == LOGEXPORT_FAIL && res->failures > 1)
			fputc(')', f);
		fputc('\n', f);
	}
}

static void json_head(struct jsonw *j, const char *key, const struct sth *h)
{
	jsonw_obj_open(j, key);
	jsonw_u64(j, "tree_size", h->tree_size);
	jsonw_hex(j, "root", h->root, 32);
	jsonw_u64(j, "timestamp_ms", h->timestamp_ms);
	jsonw_u64(j, "counter", h->counter);
	jsonw_hex(j, "appliance_id", h->appliance_id, 32);
	jsonw_obj_close(j);
}

static void json_tri(struct jsonw *j, const char *key, int v)
{
	if (v < 0)
		jsonw_null(j, key);
	else
		jsonw_bool(j, key, v);
}

void logexport_report_jsonw(struct jsonw *w, const struct logexport_report *rep)
{
	const struct identity_report *ir = &rep->identity;

	/* Not an export: nothing to report but the checks (null, not zeros). */
	if (rep->check[LOGEXPORT_FORMAT].status != LOGEXPORT_PASS) {
		jsonw_null(w, "appliance_id");
		jsonw_u64(w, "records", 0);
		jsonw_u64(w, "heads", 0);
		jsonw_null(w, "first_time_ms");
		jsonw_null(w, "last_time_ms");
	} else {
		jsonw_hex(w, "appliance_id", rep->appliance_id, 32);
		jsonw_u64(w, "records", rep->records);
		jsonw_u64(w, "heads", rep->heads);
		jsonw_u64(w, "first_time_ms", rep->first_time_ms);
		jsonw_u64(w, "last_time_ms", rep->last_time_ms);
	}
	if (rep->have_last_head)
		json_head(w, "last_head", &rep->last_head);
	else
		jsonw_null(w, "last_head");
	jsonw_obj_open(w, "events");
	for (int k = 0; k < LOGEXPORT_EVENT_SLOTS && logrec_events[k] != NULL; k++)
		jsonw_u64(w, logrec_events[k], rep->events[k]);
	jsonw_obj_close(w);
	jsonw_obj_open(w, "outcomes");
	for (int k = 0; k < LOGEXPORT_OUTCOME_SLOTS && logrec_outcomes[k] != NULL; k++)
		jsonw_u64(w, logrec_outcomes[k], rep->outcomes[k]);
	jsonw_obj_close(w);
	jsonw_obj_open(w, "identity");
	jsonw_bool(w, "checked", rep->identity_checked);
	jsonw_i64(w, "rc", rep->identity_rc);
	jsonw_bool(w, "sign_attrs_ok", ir->sign_attrs_ok > 0);
	jsonw_bool(w, "decrypt_attrs_ok", ir->decrypt_attrs_ok > 0);
	jsonw_bool(w, "ak_attrs_ok", ir->ak_attrs_ok > 0);
	jsonw_bool(w, "certify_ok", ir->certify_ok > 0);
	jsonw_bool(w, "ekcert_present", ir->ekcert_present > 0);
	/* null when not checked (LOG-EXPORT.md §3), as for a bundle */
	json_tri(w, "ekcert_chain_ok", rep->identity_checked ? ir->ekcert_chain_ok : -1);
	jsonw_bool(w, "appliance_id_ok", ir->appliance_id_ok > 0);
	jsonw_obj_close(w);
	if (rep->check[LOGEXPORT_OLDER].status != LOGEXPORT_NOT_RUN) {
		jsonw_obj_open(w, "older");
		jsonw_u64(w, "records", rep->older_records);
		jsonw_u64(w, "heads", rep->older_heads);
		if (rep->have_older_head)
			json_head(w, "last_head", &rep->older_last_head);
		else
			jsonw_null(w, "last_head");
		jsonw_obj_close(w);
	} else {
		jsonw_null(w, "older");
	}
	if (rep->check[LOGEXPORT_CONSISTENCY].status != LOGEXPORT_NOT_RUN) {
		jsonw_obj_open(w, "consistency");
		jsonw_u64(w, "m", rep->consistency_m);
		jsonw_u64(w, "n", rep->consistency_n);
		jsonw_u64(w, "proof_hashes", rep->consistency_proof_len);
		jsonw_obj_close(w);
	} else {
		jsonw_null(w, "consistency");
	}
	jsonw_obj_open(w, "checks");
	for (int c = 0; c < LOGEXPORT_N_CHECKS; c++) {
		const struct logexport_result *res = &rep->check[c];

		jsonw_obj_open(w, check_names[c]);
		jsonw_str(w, "status", res->status == LOGEXPORT_PASS ? "pass" :
		          res->status == LOGEXPORT_FAIL ? "fail" : "not_run");
		jsonw_u64(w, "failures", res->failures);
		jsonw_str(w, "why", res->why);
		jsonw_obj_close(w);
	}
	jsonw_obj_close(w);
	}

void logexport_report_json(FILE *f, const struct logexport_report *rep)
{
	struct jsonw j;

	jsonw_init(&j, f);
	jsonw_obj_open(&j, NULL);
	jsonw_bool(&j, "verified", report_ok(rep));
	logexport_report_jsonw(&j, rep);
	jsonw_obj_close(&j);
}

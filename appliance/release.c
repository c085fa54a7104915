#include "appliance/release.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "appliance/bundles.h"
#include "appliance/cli.h"
#include "appliance/custody.h"
#include "appliance/hold.h"
#include "appliance/lights.h"
#include "appliance/recipient.h"
#include "crypto/hash.h"
#include "crypto/sig.h"
#include "crypto/tpm.h"
#include "crypto/wrap.h"
#include "export/atomic.h"
#include "export/bundle.h"
#include "export/release.h"

#define RELEASE_MAX_BUNDLES 256

struct item {
	char id[65];
	uint8_t bid[32];
	struct bundle_manifest m;
	uint8_t *wrapped;
	size_t wrapped_len;
	uint8_t wrapped_sha[32];
};

struct plan {
	struct item *items;
	size_t n;
	uint64_t reads, first_ms, last_ms;
};

static int collect(void *arg, const struct bundle_row *row)
{
	struct plan *p = arg;

	if (row->purged)
		return 0;
	if (p->n >= RELEASE_MAX_BUNDLES)
		return SBX_EINVAL;
	snprintf(p->items[p->n].id, sizeof p->items[p->n].id, "%s", row->id);
	p->n++;
	return 0;
}

static int deny(struct box *b, struct hw *hw, const struct release_request *rq, int code,
                struct sbx_err *e)
{
	int r = custody_deny(b, "release.deny", rq->operator_id, rq->case_id, e->msg, NULL);

	lights_show(hw, b->alarm ? LIGHTS_ALARM : LIGHTS_FAILED);
	return r != 0 ? r : code;
}

static int append(struct box *b, const char *event, const char *outcome,
                  const struct release_request *rq, const char *bundle, const char *reason,
                  const char *detail, int anchor, struct sbx_err *e)
{
	struct logrec *rec = calloc(1, sizeof *rec);
	int r;

	if (rec == NULL)
		return SBX_ENOMEM;
	snprintf(rec->event, sizeof rec->event, "%s", event);
	snprintf(rec->outcome, sizeof rec->outcome, "%s", outcome);
	snprintf(rec->operator_id, sizeof rec->operator_id, "%s", rq->operator_id);
	snprintf(rec->case_id, sizeof rec->case_id, "%s", rq->case_id);
	snprintf(rec->bundle_id, sizeof rec->bundle_id, "%s", bundle ? bundle : "");
	snprintf(rec->reason, sizeof rec->reason, "%s", reason ? reason : "");
	snprintf(rec->detail, sizeof rec->detail, "%s", detail ? detail : "");
	r = custody_append(b, rec, anchor, NULL, NULL, e);
	free(rec);
	return r;
}

/* A short code the technician reads on the screen and that is recorded:
 * the request's digest in a form people can compare at a glance. */
static void confirmation_code(const struct release_request *rq, const uint8_t cert_sha[32],
                              const struct plan *p, uint64_t now, char out[17])
{
	static const char b32[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
	struct hash_ctx *h = hash_new();
	uint8_t d[32] = { 0 };
	char t[32];

	snprintf(t, sizeof t, "%" PRIu64, now);
	if (h != NULL) {
		hash_update(h, rq->case_id, strlen(rq->case_id) + 1);
		hash_update(h, cert_sha, 32);
		hash_update(h, rq->purpose, strlen(rq->purpose) + 1);
		hash_update(h, rq->authority, strlen(rq->authority) + 1);
		for (size_t i = 0; i < p->n; i++)
			hash_update(h, p->items[i].bid, 32);
		hash_update(h, t, strlen(t));
		hash_final(h, d);
		hash_free(h);
	}
	for (int i = 0; i < 7; i++)
		out[i < 3 ? i : i + 1] = b32[d[i] & 31];
	out[3] = '-';
	out[8] = '\0';
}

static int sign_statement(struct box *b, const char *st, size_t len, uint8_t *sig,
                          size_t *siglen, struct sbx_err *e)
{
	uint8_t dg[32];
	int r = sig_digest(SIG_NS_RELEASE, (const uint8_t *)st, len, dg);

	if (r != 0)
		return r;
	return tpm_sign(b->tpm, dg, sig, siglen, e);
}

/* Builds the release file for one bundle (after its release.confirm record
 * is in the log, so its custody file carries that record). */
static int build_release(struct box *b, const struct release_request *rq,
                         const struct recipient_info *ri, const struct item *it,
                         uint64_t counter, uint64_t now, const char *code,
                         uint8_t **out, size_t *outlen, struct sbx_err *e)
{
	struct release_statement *s = calloc(1, sizeof *s);
	struct release_file f;
	char *st = NULL;
	size_t stlen = 0;
	uint8_t sig[SIG_MAX_DER];
	size_t siglen = sizeof sig;
	uint8_t *cust = NULL;
	size_t custlen = 0;
	int r;

	memset(&f, 0, sizeof f);
	if (s == NULL)
		return SBX_ENOMEM;
	s->version = RELEASE_VERSION;
	memcpy(s->bundle_id, it->bid, 32);
	memcpy(s->appliance_id, b->id.appliance_id, 32);
	snprintf(s->case_id, sizeof s->case_id, "%s", rq->case_id);
	snprintf(s->recipient_name, sizeof s->recipient_name, "%s", ri->name);
	snprintf(s->role, sizeof s->role, "%s", ri->role);
	memcpy(s->cert_sha256, ri->cert_sha256, 32);
	snprintf(s->subject, sizeof s->subject, "%s", ri->subject);
	snprintf(s->purpose, sizeof s->purpose, "%s", rq->purpose);
	snprintf(s->authority, sizeof s->authority, "%s", rq->authority);
	snprintf(s->attestation, sizeof s->attestation, "%s", ri->attestation);
	snprintf(s->operator_id, sizeof s->operator_id, "%s", rq->operator_id);
	s->released_at_ms = now;
	s->counter = counter;
	snprintf(s->confirmation, sizeof s->confirmation, "%s", code);
	memcpy(s->wrapped_key_sha256, it->wrapped_sha, 32);
	r = release_statement_encode(s, &st, &stlen);
	if (r != 0)
		goto out;
	r = sign_statement(b, st, stlen, sig, &siglen, e);
	if (r != 0)
		goto out;
	r = bundles_custody(b, it->id, &cust, &custlen, e);
	if (r != 0)
		goto out;
	memcpy(f.bundle_id, it->bid, 32);
	f.statement = (uint8_t *)st;
	f.statement_len = stlen;
	f.sig = sig;
	f.sig_len = siglen;
	f.wrapped = it->wrapped;
	f.wrapped_len = it->wrapped_len;
	f.cert = ri->cert_der;
	f.cert_len = ri->cert_len;
	f.custody = cust;
	f.custody_len = custlen;
	r = release_file_encode(&f, out, outlen);
out:
	free(st);
	free(cust);
	free(s);
	return r;
}

static int check_out_dir(const struct release_request *rq, const struct plan *p,
                         struct sbx_err *e)
{
	struct stat sb;
	char path[4400];

	if (mkdir(rq->out_dir, 0700) != 0 && errno != EEXIST)
		return sbx_fail(e, SBX_EIO, "cannot create %s: %s", rq->out_dir, strerror(errno));
	if (stat(rq->out_dir, &sb) != 0 || !S_ISDIR(sb.st_mode) || access(rq->out_dir, W_OK) != 0)
		return sbx_fail(e, SBX_EIO, "%s is not a writable directory", rq->out_dir);
	for (size_t i = 0; i < p->n; i++) {
		snprintf(path, sizeof path, "%s/%s.release", rq->out_dir, p->items[i].id);
		if (stat(path, &sb) == 0)
			return sbx_fail(e, SBX_EEXIST, "%s already exists", path);
	}
	return 0;
}

static void summary(FILE *f, const struct release_request *rq, const struct recipient_info *ri,
                    const struct plan *p, const char *code)
{
	char t1[32], t2[32], fp[65];

	if (f == NULL)
		return;
	cli_fmt_time(p->first_ms, t1);
	cli_fmt_time(p->last_ms, t2);
	hash_hex(ri->cert_sha256, 32, fp);
	fprintf(f, "\n  RELEASE REQUEST  %s\n", code);
	fprintf(f, "  case:        %s\n", rq->case_id);
	fprintf(f, "  bundles:     %zu\n", p->n);
	for (size_t i = 0; i < p->n; i++)
		fprintf(f, "               %s  (%" PRIu64 " reads)\n", p->items[i].id,
		        p->items[i].m.reads);
	fprintf(f, "  reads:       %" PRIu64 ", captured %s .. %s\n", p->reads, t1, t2);
	fprintf(f, "  recipient:   %s (%s)\n", ri->name, ri->role);
	fprintf(f, "               %s\n", ri->subject);
	fprintf(f, "  certificate: sha256 %s\n", fp);
	if (ri->notes[0] != '\0')
		fprintf(f, "  note:        %s\n", ri->notes);
	fprintf(f, "  purpose:     %s\n  authority:   %s\n  operator:    %s\n", rq->purpose,
	        rq->authority, rq->operator_id);
	fprintf(f, "\n  Press the button on the box to release (amber light blinking).\n\n");
	fflush(f);
}

/* The bundles' copies into the output directory are made while the box
 * waits for the button: a bundle is ciphertext whose key only the .release
 * file carries, and each copy is an anonymous file (atomic_begin) until the
 * press.  A denial or a timeout drops them and leaves nothing; after the
 * press, naming them costs the same for 1 KB as for 1 GB. */
struct precopy {
	struct box *b;
	const struct release_request *rq;
	const struct plan *p;
	struct atomic_file *af;   /* one per bundle, .sbx */
	size_t opened;
	pthread_t thread;
	int running, r;
	struct sbx_err e;
};

static void *precopy_run(void *arg)
{
	struct precopy *pc = arg;
	char src[4400], dst[4400];

	for (size_t i = 0; i < pc->p->n && pc->r == 0; i++) {
		bundles_path(pc->b, pc->p->items[i].id, src, sizeof src);
		snprintf(dst, sizeof dst, "%s/%s.sbx", pc->rq->out_dir, pc->p->items[i].id);
		pc->r = atomic_begin(&pc->af[i], dst, 0444, &pc->e);
		if (pc->r != 0)
			break;
		pc->opened = i + 1;
		pc->r = atomic_fill_from(&pc->af[i], src, &pc->e);
	}
	return NULL;
}

static int precopy_start(struct precopy *pc, struct box *b, const struct release_request *rq,
                         const struct plan *p, struct sbx_err *e)
{
	memset(pc, 0, sizeof *pc);
	pc->b = b;
	pc->rq = rq;
	pc->p = p;
	pc->af = calloc(p->n, sizeof *pc->af);
	if (pc->af == NULL)
		return SBX_ENOMEM;
	for (size_t i = 0; i < p->n; i++)
		pc->af[i].fd = -1;
	if (pthread_create(&pc->thread, NULL, precopy_run, pc) != 0) {
		free(pc->af);
		pc->af = NULL;
		return sbx_fail(e, SBX_ENOMEM, "cannot start the copy of the bundles");
	}
	pc->running = 1;
	return 0;
}

/* Waits for the copies; their error, if any, into e. */
static int precopy_wait(struct precopy *pc, struct sbx_err *e)
{
	if (pc->running) {
		pthread_join(pc->thread, NULL);
		pc->running = 0;
	}
	if (pc->r != 0)
		return sbx_fail(e, pc->r, "%s", pc->e.msg);
	return 0;
}

/* Drops every copy not yet named: nothing is left behind. */
static void precopy_drop(struct precopy *pc)
{
	struct sbx_err ignore = { 0 };

	if (pc->af == NULL)
		return;
	(void)precopy_wait(pc, &ignore);
	for (size_t i = 0; i < pc->opened; i++)
		atomic_abort(&pc->af[i]);
	free(pc->af);
	pc->af = NULL;
}

static int write_files(struct precopy *pc, const struct release_request *rq, const struct plan *p,
                       uint8_t **files, size_t *lens, struct sbx_err *e)
{
	char dst[4400];
	int r = precopy_wait(pc, e);

	for (size_t i = 0; i < p->n && r == 0; i++) {
		r = atomic_commit(&pc->af[i], e);
		if (r != 0)
			break;
		snprintf(dst, sizeof dst, "%s/%s.release", rq->out_dir, p->items[i].id);
		r = atomic_write_file(dst, files[i], lens[i], 0444, e);
	}
	return r;
}

int release_run(struct box *b, struct hw *hw, const struct release_request *rq, FILE *show,
                struct release_outcome *out, struct sbx_err *e)
{
	struct recipient_info ri;
	struct plan p;
	struct hold h;
	uint8_t cek[32], **files = NULL;
	size_t *lens = NULL;
	struct precopy pc = { .af = NULL };
	uint64_t now = box_now_ms(), counter = 0;
	char detail[LOGREC_MAX_DETAIL], fp[65];
	int r, have_ri = 0;

	memset(&p, 0, sizeof p);
	memset(&ri, 0, sizeof ri);
	memset(out, 0, sizeof *out);
	memset(cek, 0, sizeof cek);
	p.items = calloc(RELEASE_MAX_BUNDLES, sizeof *p.items);
	if (p.items == NULL)
		return SBX_ENOMEM;

	/* 1. Check everything before showing anything. */
	if (b->alarm) {
		sbx_fail(e, SBX_EINTEGRITY, "integrity alarm: %s; the box refuses every release "
		         "until an auditor clears it", b->alarm_reason);
		r = deny(b, hw, rq, SBX_EINTEGRITY, e);
		goto out;
	}
	if (rq->authority == NULL || !cli_valid_ref(rq->authority)) {
		sbx_fail(e, SBX_EPOLICY, "a release needs a legal authority (--authority)");
		r = deny(b, hw, rq, SBX_EPOLICY, e);
		goto out;
	}
	r = hold_require_open(b, rq->case_id, now, &h, e);
	if (r != 0) {
		r = deny(b, hw, rq, r == SBX_ENOENT ? SBX_EPOLICY : r, e);
		goto out;
	}
	r = recipient_usable(b, rq->recipient, now, &ri, e);
	if (r != 0) {
		r = deny(b, hw, rq, r, e);
		goto out;
	}
	have_ri = 1;
	r = policy_check_release(&b->policy, rq->purpose, ri.role, e);
	if (r != 0) {
		r = deny(b, hw, rq, SBX_EPOLICY, e);
		goto out;
	}
	r = bundles_foreach(b, rq->case_id, collect, &p, e);
	if (r != 0)
		goto out;
	if (p.n == 0) {
		sbx_fail(e, SBX_ESTATE, "case '%s' holds no sealed evidence", rq->case_id);
		r = deny(b, hw, rq, SBX_ESTATE, e);
		goto out;
	}
	for (size_t i = 0; i < p.n; i++) {
		struct bundle *bd = NULL;
		char path[4400], hex[65];

		bundles_path(b, p.items[i].id, path, sizeof path);
		r = bundle_open(path, &bd, e);
		if (r == 0) {
			bundle_id(bd, p.items[i].bid);
			memcpy(&p.items[i].m, bundle_manifest(bd), sizeof p.items[i].m);
			hash_hex(p.items[i].bid, 32, hex);
			if (strcmp(hex, p.items[i].id) != 0)
				r = sbx_fail(e, SBX_EINTEGRITY, "bundle file %s holds another bundle", path);
		}
		bundle_close(bd);
		if (r != 0)
			goto out;
		p.reads += p.items[i].m.reads;
		if (p.items[i].m.reads && (p.first_ms == 0 || p.items[i].m.first_captured_ms < p.first_ms))
			p.first_ms = p.items[i].m.first_captured_ms;
		if (p.items[i].m.last_captured_ms > p.last_ms)
			p.last_ms = p.items[i].m.last_captured_ms;
	}
	r = check_out_dir(rq, &p, e);
	if (r != 0)
		goto out;

	/* 2. Show exactly what will leave. */
	confirmation_code(rq, ri.cert_sha256, &p, now, out->confirmation);
	hash_hex(ri.cert_sha256, 32, fp);
	summary(show, rq, &ri, &p, out->confirmation);
	snprintf(detail, sizeof detail, "recipient=%s\nrole=%s\ncertificate_sha256=%s\npurpose=%s\n"
	         "authority=%s\nbundles=%zu\nreads=%" PRIu64 "\nconfirmation=%s", ri.name, ri.role,
	         fp, rq->purpose, rq->authority, p.n, p.reads, out->confirmation);
	r = append(b, "release.request", "ok", rq, NULL, NULL, detail, 0, e);
	if (r != 0)
		goto out;

	/* 3. A fresh press and release of the button, after arming. */
	if (hw == NULL) {
		r = sbx_fail(e, SBX_EINVAL, "no button: pass --gpio");
		goto out;
	}
	lights_show(hw, LIGHTS_OFF);
	r = precopy_start(&pc, b, rq, &p, e);
	if (r != 0)
		goto out;
	{
		/* The button layer's own words are for hardware faults; a timeout
		 * gets the technician's message below. */
		struct sbx_err he = { 0 };

		r = hw_confirm(hw, rq->timeout_ms, &he);
		if (r != 0 && r != SBX_ECANCELED)
			sbx_fail(e, r, "%s", he.msg);
	}
	if (r == SBX_ECANCELED) {
		lights_show(hw, LIGHTS_FAILED);
		append(b, "release.timeout", "timeout", rq, NULL, "timed out: the button was not "
		       "pressed", detail, 1, NULL);
		r = sbx_fail(e, SBX_ECANCELED, "timed out after %u s: the button was not pressed; "
		             "nothing was released", rq->timeout_ms / 1000);
		goto out;
	}
	if (r != 0) {
		lights_show(hw, LIGHTS_FAILED);
		append(b, "release.deny", "failed", rq, NULL, e->msg, detail, 1, NULL);
		goto out;
	}
	lights_show(hw, LIGHTS_WORKING);

	/* 4. Re-wrap each content key to the recipient; the payload is never
	 * re-encrypted. */
	for (size_t i = 0; i < p.n; i++) {
		uint8_t ctx[128];
		size_t ctxlen = 0;

		r = bundles_unwrap_key(b, p.items[i].id, cek, e);
		if (r != 0)
			goto fail;
		release_wrap_context(p.items[i].bid, ri.cert_sha256, ctx, &ctxlen);
		r = wrap_cek(ri.pkey, cek, ctx, ctxlen, &p.items[i].wrapped, &p.items[i].wrapped_len, e);
		OPENSSL_cleanse(cek, sizeof cek);
		if (r != 0)
			goto fail;
		hash_sha256(p.items[i].wrapped, p.items[i].wrapped_len, p.items[i].wrapped_sha);
	}
	/* 5. The records commit before anything leaves (write-ahead): a crash
	 * after this point leaves a record and no files, never files without a
	 * record.  The last record anchors the counter. */
	for (size_t i = 0; i < p.n; i++) {
		char ws[65], d2[LOGREC_MAX_DETAIL + 128];

		hash_hex(p.items[i].wrapped_sha, 32, ws);
		snprintf(d2, sizeof d2, "%s\nwrapped_key_sha256=%s", detail, ws);
		r = append(b, "release.confirm", "ok", rq, p.items[i].id, NULL, d2, i + 1 == p.n, e);
		if (r != 0)
			goto fail;
	}
	r = custody_counter(b, &counter, e);
	if (r != 0)
		goto fail;
	files = calloc(p.n, sizeof *files);
	lens = calloc(p.n, sizeof *lens);
	if (files == NULL || lens == NULL) {
		r = SBX_ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < p.n; i++) {
		r = build_release(b, rq, &ri, &p.items[i], counter, now, out->confirmation, &files[i],
		                  &lens[i], e);
		if (r != 0)
			goto fail;
	}
	r = write_files(&pc, rq, &p, files, lens, e);
	if (r != 0)
		goto fail;
	lights_show(hw, LIGHTS_DONE);
	out->bundles = (unsigned)p.n;
	out->reads = p.reads;
	out->counter = counter;
	snprintf(out->cert_sha256, sizeof out->cert_sha256, "%s", fp);
	r = 0;
	goto out;
fail:
	/* Confirmed, but the files could not be made: say so in the log, and
	 * leave no partial release behind. */
	for (size_t i = 0; i < p.n; i++) {
		char path[4400];

		snprintf(path, sizeof path, "%s/%s.release", rq->out_dir, p.items[i].id);
		unlink(path);
		snprintf(path, sizeof path, "%s/%s.sbx", rq->out_dir, p.items[i].id);
		unlink(path);
	}
	lights_show(hw, LIGHTS_FAILED);
	append(b, "release.deny", "failed", rq, NULL, e->msg, detail, 1, NULL);
out:
	precopy_drop(&pc);
	OPENSSL_cleanse(cek, sizeof cek);
	for (size_t i = 0; p.items != NULL && i < p.n; i++)
		free(p.items[i].wrapped);
	for (size_t i = 0; files != NULL && i < p.n; i++)
		free(files[i]);
	free(files);
	free(lens);
	free(p.items);
	if (have_ri)
		recipient_info_free(&ri);
	return r;
}

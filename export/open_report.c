#include "export/open_report.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/hash.h"
#include "export/jsonw.h"
#include "export/wire.h"

#ifndef SBX_VERSION
#define SBX_VERSION "unknown"
#endif

static const char *const check_names[OC_N_CHECKS] = {
	[OC_CONTAINER]      = "container",
	[OC_MANIFEST]       = "manifest",
	[OC_NAME]           = "name",
	[OC_SIGNATURE]      = "signature",
	[OC_IDENTITY]       = "identity",
	[OC_EK_CHAIN]       = "ek-chain",
	[OC_PIN]            = "pin",
	[OC_CIPHERTEXT]     = "ciphertext",
	[OC_RELEASE_FILE]   = "release-file",
	[OC_RELEASE_BUNDLE] = "release-bundle",
	[OC_STATEMENT_SIG]  = "statement-sig",
	[OC_STATEMENT]      = "statement",
	[OC_CERTIFICATE]    = "certificate",
	[OC_WRAPPED_KEY]    = "wrapped-key",
	[OC_CUSTODY]        = "custody",
	[OC_RECIPIENT]      = "recipient",
	[OC_UNWRAP]         = "unwrap",
	[OC_PAYLOAD]        = "payload",
	[OC_CONTENTS]       = "contents",
};

const char *or_check_name(enum oc_check c)
{
	return ((int)c >= 0 && (int)c < OC_N_CHECKS) ? check_names[c] : "unknown";
}

/* The opener supplies what these compare against; without it they do not run. */
static int check_optional(int c)
{
	return c == OC_NAME || c == OC_EK_CHAIN || c == OC_PIN;
}

void or_bundle_init(struct or_bundle *b, const char *path)
{
	memset(b, 0, sizeof *b);
	b->path = path;
	b->items.imgfd = -1;
	for (int k = 0; k < ITEM_SLOTS; k++)
		b->items.fd[k] = -1;
	for (int c = 0; c < OC_N_CHECKS; c++)
		b->check[c].status = VR_NOT_RUN;
}

void or_bundle_free(struct or_bundle *b)
{
	free(b->release_path);
	free(b->records);
	free(b->leaves);
	item_writer_free(&b->items);
	b->release_path = NULL;
	b->records = NULL;
	b->leaves = NULL;
}

int or_bundle_valid(const struct or_bundle *b)
{
	if (b->io_error || !b->opened)
		return 0;
	for (int c = 0; c < OC_N_CHECKS; c++) {
		int st = b->check[c].status;

		if (st == VR_FAIL || (!check_optional(c) && st != VR_PASS))
			return 0;
	}
	return 1;
}

void or_fmt_time(uint64_t ms, char *out, size_t n)
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

/* ---- For people ---------------------------------------------------------- */

static const char *status_word(int st)
{
	return st == VR_PASS ? "ok" : st == VR_FAIL ? "FAILED" : "not run";
}

static void label(FILE *f, const char *l)
{
	fprintf(f, "  %-13s ", l);
}

static void print_bundle(FILE *f, const struct or_bundle *b, int quiet)
{
	const struct bundle_manifest *m = &b->m;
	const struct release_statement *st = &b->st;
	char hex[65], t1[40], t2[40];

	if (quiet)
		goto verdict;
	fputs("bundle ", f);
	vr_print_safe(f, b->path);
	fputc('\n', f);
	if (b->io_error) {
		fputs("  cannot read or write: ", f);
		vr_print_safe(f, b->io_why);
		fputc('\n', f);
	}
	if (b->opened) {
		hash_hex(b->id, 32, hex);
		label(f, "bundle id:");
		fprintf(f, "%s\n", hex);
		label(f, "case:");
		vr_print_safe(f, m->case_id);
		fputs(" (hold authority \"", f);
		vr_print_safe(f, m->authority);
		fputs("\", purpose ", f);
		vr_print_safe(f, m->purpose);
		fputs(")\n", f);
		hash_hex(m->appliance_id, 32, hex);
		label(f, "appliance id:");
		fprintf(f, "%s\n", hex);
		or_fmt_time(m->sealed_at_ms, t1, sizeof t1);
		label(f, "sealed:");
		fprintf(f, "%s by ", t1);
		vr_print_safe(f, m->operator_id);
		fputc('\n', f);
		label(f, "reads:");
		fprintf(f, "%" PRIu64 " (%" PRIu64 " images, %" PRIu64 " cameras)", m->reads,
		        m->images, m->cameras);
		if (m->reads > 0) {
			or_fmt_time(m->first_captured_ms, t1, sizeof t1);
			or_fmt_time(m->last_captured_ms, t2, sizeof t2);
			fprintf(f, ", captured %s .. %s", t1, t2);
		}
		fputc('\n', f);
	}
	if (b->release_path != NULL) {
		label(f, "release:");
		vr_print_safe(f, b->release_path);
		fputc('\n', f);
	}
	if (b->statement_parsed) {
		hash_hex(st->cert_sha256, 32, hex);
		label(f, "recipient:");
		vr_print_safe(f, st->recipient_name);
		fputs(" (", f);
		vr_print_safe(f, st->role);
		fputs("), ", f);
		vr_print_safe(f, st->subject);
		fputc('\n', f);
		label(f, "certificate:");
		fprintf(f, "SHA-256 %s\n", hex);
		or_fmt_time(st->released_at_ms, t1, sizeof t1);
		label(f, "released:");
		fprintf(f, "%s by ", t1);
		vr_print_safe(f, st->operator_id);
		fputs(", purpose ", f);
		vr_print_safe(f, st->purpose);
		fputs(", authority \"", f);
		vr_print_safe(f, st->authority);
		fprintf(f, "\", counter %" PRIu64 ", confirmation ", st->counter);
		vr_print_safe(f, st->confirmation);
		fputc('\n', f);
	}
	if (!b->io_error)
		for (int c = 0; c < OC_N_CHECKS; c++) {
			fprintf(f, "  %-8s %-14s ", status_word(b->check[c].status), check_names[c]);
			vr_print_safe(f, b->check[c].why);
			fputc('\n', f);
		}
verdict:
	fputs(b->io_error ? "ERROR: " : or_bundle_valid(b) ? "OK: " : "FAILED: ", f);
	vr_print_safe(f, b->path);
	fputc('\n', f);
}

void or_print(FILE *f, const struct or_run *r, int quiet)
{
	for (size_t i = 0; i < r->n; i++) {
		print_bundle(f, &r->b[i], quiet);
		if (!quiet)
			fputc('\n', f);
	}
	if (r->opened) {
		fprintf(f, "OPENED: %zu bundle%s into ", r->n, r->n == 1 ? "" : "s");
		vr_print_safe(f, r->out_dir);
		fputs(" (custody.html, verification.json)\n", f);
		return;
	}
	fputs("REFUSED: nothing was written; ", f);
	vr_print_safe(f, r->out_dir);
	fputs(" is as it was (", f);
	vr_print_safe(f, r->failure[0] ? r->failure : "a check failed");
	fputs(")\n", f);
}

/* ---- For tools ----------------------------------------------------------- */

static void json_identity(struct jsonw *w, const struct or_bundle *b)
{
	vr_json_identity_open(w, b->identity_checked, &b->identity);
	jsonw_arr_open(w, "ek_certificates_sha256");
	for (size_t i = 0; i < b->n_ek; i++)
		jsonw_hex(w, NULL, b->ek_sha256[i], 32);
	jsonw_arr_close(w);
	jsonw_obj_close(w);
}

static void json_statement(struct jsonw *w, const struct release_statement *st)
{
	jsonw_obj_open(w, "statement");
	jsonw_u64(w, "version", st->version);
	jsonw_hex(w, "bundle_id", st->bundle_id, 32);
	jsonw_hex(w, "appliance_id", st->appliance_id, 32);
	jsonw_text(w, "case", st->case_id);
	jsonw_obj_open(w, "recipient");
	jsonw_text(w, "name", st->recipient_name);
	jsonw_text(w, "role", st->role);
	jsonw_hex(w, "certificate_sha256", st->cert_sha256, 32);
	jsonw_text(w, "subject", st->subject);
	jsonw_obj_close(w);
	jsonw_text(w, "purpose", st->purpose);
	jsonw_text(w, "authority", st->authority);
	jsonw_text(w, "attestation", st->attestation);
	jsonw_text(w, "operator", st->operator_id);
	jsonw_u64(w, "released_at_ms", st->released_at_ms);
	jsonw_u64(w, "counter", st->counter);
	jsonw_text(w, "confirmation", st->confirmation);
	jsonw_hex(w, "wrapped_key_sha256", st->wrapped_key_sha256, 32);
	jsonw_obj_close(w);
}

static void json_custody(struct jsonw *w, const struct or_bundle *b)
{
	if (!b->custody_decoded) {
		jsonw_null(w, "custody");
		return;
	}
	jsonw_obj_open(w, "custody");
	jsonw_obj_open(w, "head");
	jsonw_u64(w, "tree_size", b->head.tree_size);
	jsonw_hex(w, "root", b->head.root, 32);
	jsonw_u64(w, "timestamp_ms", b->head.timestamp_ms);
	jsonw_u64(w, "counter", b->head.counter);
	jsonw_hex(w, "appliance_id", b->head.appliance_id, 32);
	jsonw_obj_close(w);
	jsonw_arr_open(w, "records");
	for (size_t i = 0; i < b->n_records; i++) {
		const struct logrec *lr = &b->records[i];

		jsonw_obj_open(w, NULL);
		jsonw_u64(w, "leaf_index", b->leaves[i]);
		jsonw_u64(w, "seq", lr->seq);
		jsonw_u64(w, "time_ms", lr->time_ms);
		jsonw_u64(w, "tpm_clock_ms", lr->tpm_clock_ms);
		jsonw_text(w, "event", lr->event);
		jsonw_text(w, "outcome", lr->outcome);
		jsonw_text(w, "operator", lr->operator_id);
		jsonw_text(w, "case", lr->case_id);
		jsonw_text(w, "bundle", lr->bundle_id);
		jsonw_text(w, "reason", lr->reason);
		jsonw_text(w, "detail", lr->detail);
		jsonw_hex(w, "policy_hash", lr->policy_hash, 32);
		jsonw_obj_close(w);
	}
	jsonw_arr_close(w);
	jsonw_obj_close(w);
}

static void json_bundle(struct jsonw *w, const struct or_run *r, const struct or_bundle *b)
{
	jsonw_obj_open(w, NULL);
	jsonw_text(w, "path", b->path);
	jsonw_text(w, "release_path", b->release_path);
	jsonw_bool(w, "valid", or_bundle_valid(b));
	if (b->io_error)
		jsonw_text(w, "error", b->io_why);
	else
		jsonw_null(w, "error");
	if (b->opened) {
		jsonw_hex(w, "bundle_id", b->id, 32);
		jsonw_obj_open(w, "manifest");
		vr_json_manifest(w, &b->m);
		jsonw_obj_close(w);
	} else {
		jsonw_null(w, "bundle_id");
		jsonw_null(w, "manifest");
	}
	json_identity(w, b);
	if (b->release_read) {
		jsonw_obj_open(w, "release");
		jsonw_u64(w, "bytes", b->release_bytes);
		jsonw_hex(w, "sha256", b->release_sha256, 32);
		if (b->statement_parsed)
			json_statement(w, &b->st);
		else
			jsonw_null(w, "statement");
		jsonw_obj_close(w);
	} else {
		jsonw_null(w, "release");
	}
	json_custody(w, b);
	jsonw_obj_open(w, "checks");
	for (int c = 0; c < OC_N_CHECKS; c++) {
		jsonw_obj_open(w, check_names[c]);
		jsonw_str(w, "status", b->io_error ? "not_run" : vr_status_json(b->check[c].status));
		jsonw_text(w, "why", b->io_error ? "a file could not be read or written" :
		      b->check[c].why);
		jsonw_obj_close(w);
	}
	jsonw_obj_close(w);
	if (r->opened && b->items_valid) {
		jsonw_text(w, "directory", b->subdir);
		jsonw_arr_open(w, "files");
		for (size_t i = 0; i < b->items.n; i++) {
			const struct staging_item *it = &b->items.items[i];

			jsonw_obj_open(w, NULL);
			jsonw_text(w, "path", it->path);
			jsonw_u64(w, "bytes", it->size);
			jsonw_hex(w, "sha256", it->sha256, 32);
			jsonw_obj_close(w);
		}
		jsonw_arr_close(w);
	} else {
		jsonw_null(w, "directory");
		jsonw_null(w, "files");
	}
	jsonw_obj_close(w);
}

void or_json(FILE *f, const struct or_run *r)
{
	struct jsonw w;

	jsonw_init(&w, f);
	jsonw_obj_open(&w, NULL);
	jsonw_str(&w, "program", "sealbox-open");
	jsonw_str(&w, "version", SBX_VERSION);
	jsonw_bool(&w, "opened", r->opened);
	jsonw_u64(&w, "opened_at_ms", r->opened_at_ms);
	jsonw_text(&w, "output", r->out_dir);
	jsonw_str(&w, "layout", r->n > 1 ? "one directory per bundle" : "flat");
	if (r->opened || r->failure[0] == '\0')
		jsonw_null(&w, "failure");
	else
		jsonw_text(&w, "failure", r->failure);
	jsonw_obj_open(&w, "recipient");
	if (r->have_cert) {
		jsonw_hex(&w, "certificate_sha256", r->cert_sha256, 32);
		jsonw_text(&w, "subject", r->subject);
	} else {
		jsonw_null(&w, "certificate_sha256");
		jsonw_null(&w, "subject");
	}
	if (r->have_key)
		jsonw_hex(&w, "public_key_sha256", r->key_spki_sha256, 32);
	else
		jsonw_null(&w, "public_key_sha256");
	jsonw_obj_close(&w);
	jsonw_arr_open(&w, "bundles");
	for (size_t i = 0; i < r->n; i++)
		json_bundle(&w, r, &r->b[i]);
	jsonw_arr_close(&w);
	jsonw_obj_close(&w);
}

#include "export/verify_report.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/hash.h"
#include "export/logrec.h"
#include "export/wire.h"

static const char *const check_names[VR_N_CHECKS] = {
	[VR_CONTAINER]   = "container",
	[VR_MANIFEST]    = "manifest",
	[VR_NAME]        = "name",
	[VR_SIGNATURE]   = "signature",
	[VR_IDENTITY]    = "identity",
	[VR_EK_CHAIN]    = "ek-chain",
	[VR_PIN]         = "pin",
	[VR_CIPHERTEXT]  = "ciphertext",
	[VR_POLICY]      = "policy",
	[VR_CUSTODY]     = "custody",
	[VR_LOG_HEAD]    = "log-head",
	[VR_LOG_RECORDS] = "log-records",
	[VR_LOG_INGEST]  = "log-ingest",
};

/* Checks that prove the bundle is what it claims: a bundle on which one of
 * them did not run has no verdict but INVALID.  The others depend on what
 * the auditor supplied (a pin, a CA, a policy, a custody file, a log). */
static int check_required(int c)
{
	return c == VR_CONTAINER || c == VR_MANIFEST || c == VR_SIGNATURE ||
	       c == VR_IDENTITY || c == VR_CIPHERTEXT;
}

const char *vr_check_name(enum vr_check c)
{
	return ((int)c >= 0 && (int)c < VR_N_CHECKS) ? check_names[c] : "unknown";
}

void vr_bundle_init(struct vr_bundle *b, const char *path)
{
	memset(b, 0, sizeof *b);
	b->path = path;
	for (int c = 0; c < VR_N_CHECKS; c++)
		b->check[c].status = VR_NOT_RUN;
}

void vr_set(struct vr_result *r, int status, const char *fmt, ...)
{
	va_list ap;

	r->status = status;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof r->why, fmt, ap);
	va_end(ap);
}

int vr_bundle_valid(const struct vr_bundle *b)
{
	if (b->io_error || !b->opened)
		return 0;
	for (int c = 0; c < VR_N_CHECKS; c++) {
		int st = b->check[c].status;

		if (st == VR_FAIL || (check_required(c) && st != VR_PASS))
			return 0;
	}
	return 1;
}

int vr_log_valid(const struct vr_log *l)
{
	return l->ran && l->rc == 0;
}

/* ---- For people ---------------------------------------------------------- */

void vr_print_safe(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 0x20 && c < 0x7f && c != '\\')
			fputc(c, f);
		else
			fprintf(f, "\\x%02x", c);
	}
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

static const char *status_word(int st)
{
	return st == VR_PASS ? "ok" : st == VR_FAIL ? "FAILED" : "not run";
}

static void print_field(FILE *f, const char *label, const char *value)
{
	fprintf(f, "  %-13s ", label);
	vr_print_safe(f, value);
	fputc('\n', f);
}

static void print_summary(FILE *f, const struct vr_bundle *b)
{
	const struct bundle_manifest *m = &b->m;
	char hex[65], t1[40], t2[40];

	hash_hex(b->id, 32, hex);
	print_field(f, "bundle id:", hex);
	fprintf(f, "  %-13s ", "case:");
	vr_print_safe(f, m->case_id);
	fputs(" (authority \"", f);
	vr_print_safe(f, m->authority);
	fputs("\", purpose ", f);
	vr_print_safe(f, m->purpose);
	fputs(")\n", f);
	hash_hex(m->appliance_id, 32, hex);
	print_field(f, "appliance id:", hex);
	fmt_time(m->sealed_at_ms, t1, sizeof t1);
	fprintf(f, "  %-13s %s by ", "sealed:", t1);
	vr_print_safe(f, m->operator_id);
	fputs(", source \"", f);
	vr_print_safe(f, m->source);
	fputs("\"\n", f);
	fprintf(f, "  %-13s %" PRIu64 " (%" PRIu64 " images, %" PRIu64 " cameras)", "reads:",
	        m->reads, m->images, m->cameras);
	if (m->reads > 0) {
		fmt_time(m->first_captured_ms, t1, sizeof t1);
		fmt_time(m->last_captured_ms, t2, sizeof t2);
		fprintf(f, ", captured %s .. %s", t1, t2);
	}
	fputc('\n', f);
	fprintf(f, "  %-13s %" PRIu64 " bytes, %" PRIu64 " items\n", "payload:",
	        m->ciphertext_bytes, m->items);
	hash_hex(m->policy_hash, 32, hex);
	print_field(f, "policy hash:", hex);
}

void vr_print_bundle(FILE *f, const struct vr_bundle *b, int quiet)
{
	int valid = vr_bundle_valid(b);

	if (!quiet) {
		fputs("bundle ", f);
		vr_print_safe(f, b->path);
		fputc('\n', f);
		if (b->io_error) {
			fputs("  cannot read: ", f);
			vr_print_safe(f, b->io_why);
			fputc('\n', f);
		}
		if (b->opened)
			print_summary(f, b);
		if (b->custody_path != NULL) {
			fprintf(f, "  %-13s ", "custody:");
			vr_print_safe(f, b->custody_path);
			if (b->custody_decoded)
				fprintf(f, " (%" PRIu64 " record%s, tree head: %" PRIu64
				        " records, counter %" PRIu64 ")", b->n_custody,
				        b->n_custody == 1 ? "" : "s", b->head.tree_size,
				        b->head.counter);
			fputc('\n', f);
		}
		for (int c = 0; c < VR_N_CHECKS && !b->io_error; c++) {
			fprintf(f, "  %-8s %-12s ", status_word(b->check[c].status), check_names[c]);
			vr_print_safe(f, b->check[c].why);
			fputc('\n', f);
		}
	}
	fputs(b->io_error ? "ERROR: " : valid ? "VALID: " : "INVALID: ", f);
	vr_print_safe(f, b->path);
	fputc('\n', f);
}

void vr_print_log(FILE *f, const struct vr_log *l, int quiet)
{
	if (!quiet) {
		fputs("log export ", f);
		vr_print_safe(f, l->path);
		if (l->since != NULL) {
			fputs(" (since ", f);
			vr_print_safe(f, l->since);
			fputc(')', f);
		}
		fputc('\n', f);
		if (l->ran) {
			logexport_report_print(f, &l->rep);
			if (l->rc != 0) {
				fputs("  first failure: ", f);
				vr_print_safe(f, l->why);
				fputc('\n', f);
			}
		}
	}
	fputs(vr_log_valid(l) ? "VALID: log export " : "INVALID: log export ", f);
	vr_print_safe(f, l->path);
	fputc('\n', f);
}

/* ---- For tools ----------------------------------------------------------- */

static void json_tri(struct jsonw *w, const char *key, int v)
{
	if (v < 0)
		jsonw_null(w, key);
	else
		jsonw_bool(w, key, v > 0);
}

static const char *word(int v)
{
	return v > 0 ? "ok" : v == 0 ? "FAILED" : "not checked";
}

int vr_map_identity(const struct bundle_report *rep, const char *ek_ca, const char *pin,
                     const char *first, struct vr_result *signature, struct vr_result *identity,
                     struct vr_result *ek_chain, struct vr_result *pinned)
{
	struct vr_result *const order[] = { signature, identity, ek_chain, pinned };
	const struct identity_report *ir = &rep->identity;
	int subs_ok = ir->sign_attrs_ok > 0 && ir->decrypt_attrs_ok > 0 && ir->ak_attrs_ok > 0 &&
	              ir->certify_ok > 0 && ir->appliance_id_ok > 0;
	int chain_failed = ek_ca != NULL && ir->ekcert_chain_ok == 0;

	if (rep->signature_ok > 0)
		vr_set(signature, VR_PASS, "manifest.sig verifies under the identity's signing key"
		       " (namespace sealbox-bundle-v1)");
	else
		vr_set(signature, VR_FAIL, "manifest.sig does not verify under the identity's"
		       " signing key");
	if (rep->identity_ok > 0 || (subs_ok && chain_failed))
		vr_set(identity, VR_PASS, "signing key sign-only and fixedTPM, certified by the TPM's"
		       " attestation key; appliance id = SHA-256 of the signing key");
	else
		vr_set(identity, VR_FAIL, "signing key %s, decrypt key %s, attestation key %s,"
		       " certification %s, appliance id %s", word(ir->sign_attrs_ok),
		       word(ir->decrypt_attrs_ok), word(ir->ak_attrs_ok), word(ir->certify_ok),
		       word(ir->appliance_id_ok));
	if (ek_ca == NULL)
		vr_set(ek_chain, VR_NOT_RUN, "no --ek-ca given: the EK certificates (%s) were not"
		       " checked", ir->ekcert_present ? "present" : "absent");
	else if (ir->ekcert_chain_ok > 0)
		vr_set(ek_chain, VR_PASS, "the EK certificates chain to %s", ek_ca);
	else
		vr_set(ek_chain, VR_FAIL, "%s", ir->ekcert_present ?
		       "an EK certificate does not chain to the given CA" :
		       "the identity carries no EK certificate");
	if (pin == NULL)
		vr_set(pinned, VR_NOT_RUN, "no --identity given: the bundle vouches for itself;"
		       " compare its appliance id with the one pinned at installation");
	else if (rep->pinned_ok > 0)
		vr_set(pinned, VR_PASS, "the bundle's identity is the pinned one (%s)", pin);
	else
		vr_set(pinned, VR_FAIL, "the bundle's identity is not the one in %s: sealed by"
		       " another box", pin);
	if (first == NULL || first[0] == '\0')
		return 0;
	for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
		if (order[i]->status == VR_FAIL) {
			vr_set(order[i], VR_FAIL, "%s", first);
			return 1;
		}
	}
	return 0;
}

void vr_check_file_name(struct vr_result *r, const char *path, const uint8_t id[32])
{
	const char *base = strrchr(path, '/');
	char hex[65];
	size_t n;

	base = base != NULL ? base + 1 : path;
	n = strlen(base);
	hash_hex(id, 32, hex);
	if (n != 68 || strcmp(base + 64, ".sbx") != 0 || strspn(base, "0123456789abcdef") != 64)
		vr_set(r, VR_NOT_RUN, "the file is not named <bundle id>.sbx");
	else if (memcmp(base, hex, 64) != 0)
		vr_set(r, VR_FAIL, "the file is named after bundle %.16s..., but its manifest hashes"
		       " to %.16s...", base, hex);
	else
		vr_set(r, VR_PASS, "the file name is the bundle id (SHA-256 of manifest.json)");
}

void vr_set_ciphertext(struct vr_result *r, int ok, uint64_t bytes)
{
	if (ok > 0)
		vr_set(r, VR_PASS, "payload.enc: %" PRIu64 " bytes, SHA-256 as in the manifest", bytes);
	else
		vr_set(r, VR_FAIL, "payload.enc's size or SHA-256 is not the manifest's: the"
		       " ciphertext was changed");
}

char *vr_sibling_path(const char *bundle, const char *ext)
{
	size_t n = strlen(bundle), e = strlen(ext);
	char *p = malloc(n + e + 1);

	if (p == NULL)
		return NULL;
	memcpy(p, bundle, n + 1);
	if (n > 4 && strcmp(bundle + n - 4, ".sbx") == 0)
		n -= 4;
	memcpy(p + n, ext, e + 1);
	return p;
}

const char *vr_status_json(int st)
{
	return st == VR_PASS ? "pass" : st == VR_FAIL ? "fail" : "not_run";
}

static void json_head(struct jsonw *w, const char *key, const struct sth *h)
{
	jsonw_obj_open(w, key);
	jsonw_u64(w, "tree_size", h->tree_size);
	jsonw_hex(w, "root", h->root, 32);
	jsonw_u64(w, "timestamp_ms", h->timestamp_ms);
	jsonw_u64(w, "counter", h->counter);
	jsonw_hex(w, "appliance_id", h->appliance_id, 32);
	jsonw_obj_close(w);
}

void vr_json_identity_open(struct jsonw *w, int checked, const struct identity_report *ir)
{
	jsonw_obj_open(w, "identity");
	jsonw_bool(w, "checked", checked);
	jsonw_bool(w, "sign_attrs_ok", ir->sign_attrs_ok > 0);
	jsonw_bool(w, "decrypt_attrs_ok", ir->decrypt_attrs_ok > 0);
	jsonw_bool(w, "ak_attrs_ok", ir->ak_attrs_ok > 0);
	jsonw_bool(w, "certify_ok", ir->certify_ok > 0);
	jsonw_bool(w, "ekcert_present", ir->ekcert_present > 0);
	json_tri(w, "ekcert_chain_ok", checked ? ir->ekcert_chain_ok : -1);
	jsonw_bool(w, "appliance_id_ok", ir->appliance_id_ok > 0);
}

void vr_json_manifest(struct jsonw *w, const struct bundle_manifest *m)
{
	jsonw_u64(w, "format_version", m->version);
	jsonw_hex(w, "appliance_id", m->appliance_id, 32);
	jsonw_hex(w, "identity_sha256", m->identity_sha256, 32);
	jsonw_text(w, "case", m->case_id);
	jsonw_text(w, "source", m->source);
	jsonw_text(w, "operator", m->operator_id);
	jsonw_u64(w, "sealed_at_ms", m->sealed_at_ms);
	jsonw_hex(w, "policy_hash", m->policy_hash, 32);
	jsonw_obj_open(w, "hold");
	jsonw_text(w, "authority", m->authority);
	jsonw_text(w, "purpose", m->purpose);
	jsonw_obj_close(w);
	jsonw_obj_open(w, "reads");
	jsonw_u64(w, "count", m->reads);
	jsonw_u64(w, "images", m->images);
	jsonw_u64(w, "cameras", m->cameras);
	jsonw_u64(w, "first_captured_ms", m->first_captured_ms);
	jsonw_u64(w, "last_captured_ms", m->last_captured_ms);
	jsonw_obj_close(w);
	jsonw_obj_open(w, "payload");
	jsonw_str(w, "suite", BUNDLE_SUITE);
	jsonw_u64(w, "plaintext_bytes", m->plaintext_bytes);
	jsonw_u64(w, "ciphertext_bytes", m->ciphertext_bytes);
	jsonw_hex(w, "ciphertext_sha256", m->ciphertext_sha256, 32);
	jsonw_u64(w, "items", m->items);
	jsonw_hex(w, "index_sha256", m->index_sha256, 32);
	jsonw_obj_close(w);
}

void vr_json_bundle(struct jsonw *w, const struct vr_bundle *b)
{
	jsonw_obj_open(w, NULL);
	jsonw_text(w, "path", b->path);
	jsonw_bool(w, "valid", vr_bundle_valid(b));
	if (b->io_error)
		jsonw_text(w, "error", b->io_why);
	else
		jsonw_null(w, "error");
	if (b->opened) {
		jsonw_hex(w, "bundle_id", b->id, 32);
		vr_json_manifest(w, &b->m);
	} else {
		jsonw_null(w, "bundle_id");
	}
	vr_json_identity_open(w, b->identity_checked, &b->identity);
	jsonw_obj_close(w);
	if (b->custody_path != NULL) {
		jsonw_obj_open(w, "custody");
		jsonw_text(w, "path", b->custody_path);
		if (b->custody_decoded) {
			jsonw_u64(w, "records", b->n_custody);
			json_head(w, "head", &b->head);
		} else {
			jsonw_null(w, "records");
			jsonw_null(w, "head");
		}
		jsonw_obj_close(w);
	} else {
		jsonw_null(w, "custody");
	}
	jsonw_obj_open(w, "checks");
	for (int c = 0; c < VR_N_CHECKS; c++) {
		jsonw_obj_open(w, check_names[c]);
		jsonw_str(w, "status", b->io_error ? "not_run" : vr_status_json(b->check[c].status));
		jsonw_text(w, "why", b->io_error ? "the file could not be read" : b->check[c].why);
		jsonw_obj_close(w);
	}
	jsonw_obj_close(w);
	jsonw_obj_close(w);
}

void vr_json_log(struct jsonw *w, const char *key, const struct vr_log *l)
{
	jsonw_obj_open(w, key);
	jsonw_text(w, "path", l->path);
	jsonw_text(w, "since", l->since);
	jsonw_bool(w, "valid", vr_log_valid(l));
	if (l->ran && l->rc != 0)
		jsonw_text(w, "error", l->why);
	else
		jsonw_null(w, "error");
	if (l->ran)
		logexport_report_jsonw(w, &l->rep);
	jsonw_obj_close(w);
}

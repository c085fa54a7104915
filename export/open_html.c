/* custody.html: the chain-of-custody report a recipient attaches to a
 * discovery disclosure.  One self-contained page: no script, no external
 * resource (a Content-Security-Policy forbids both, should a string ever
 * slip through), every string that comes from the evidence escaped, and a
 * print stylesheet so that it prints as a document. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/hash.h"
#include "export/open_report.h"
#include "export/wire.h"

#ifndef SBX_VERSION
#define SBX_VERSION "unknown"
#endif

static const char style[] =
	"body{font-family:\"DejaVu Serif\",Georgia,\"Times New Roman\",serif;font-size:11pt;"
	"line-height:1.35;color:#111;background:#fff;max-width:60em;margin:2em auto;padding:0 1em}\n"
	"h1{font-size:18pt;margin:0 0 .2em}h2{font-size:14pt;border-bottom:2px solid #333;"
	"margin:1.6em 0 .4em;padding-bottom:.1em}h3{font-size:12pt;margin:1.2em 0 .3em}\n"
	"p.sub{margin:0 0 1em;color:#333}\n"
	"table{border-collapse:collapse;width:100%;margin:.3em 0 .8em}\n"
	"th,td{border:1px solid #999;padding:.25em .45em;vertical-align:top;text-align:left}\n"
	"th{background:#eee;font-weight:600}\n"
	"table.kv th{width:14em}\n"
	".h{font-family:\"DejaVu Sans Mono\",Consolas,monospace;font-size:9pt;word-break:break-all}\n"
	".pre{white-space:pre-wrap;font-family:\"DejaVu Sans Mono\",Consolas,monospace;font-size:9pt}\n"
	".pass{color:#064;font-weight:600}.fail{color:#a00;font-weight:600}.skip{color:#555}\n"
	".verdict{border:2px solid #064;padding:.5em .8em;margin:1em 0}\n"
	"footer{margin-top:2em;border-top:1px solid #999;padding-top:.5em;font-size:9.5pt}\n"
	"@media print{body{margin:0;max-width:none;font-size:10pt}"
	"section.bundle{break-before:page}section.bundle:first-of-type{break-before:auto}"
	"tr,.verdict{break-inside:avoid}h2,h3{break-after:avoid}thead{display:table-header-group}"
	"th{background:#eee !important;-webkit-print-color-adjust:exact;print-color-adjust:exact}}\n"
	"@page{size:auto;margin:18mm 15mm}\n";

/* Text from the evidence or the command line.  Valid UTF-8 passes through
 * (escaped for HTML); any other byte becomes '?'; control characters
 * other than newline and tab are shown as \xNN. */
static void esc(FILE *f, const char *s)
{
	size_t n = strlen(s);
	int utf8 = wire_utf8_valid((const uint8_t *)s, n);

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		switch (c) {
		case '&':  fputs("&amp;", f); break;
		case '<':  fputs("&lt;", f); break;
		case '>':  fputs("&gt;", f); break;
		case '"':  fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		case '\n':
		case '\t': fputc(c, f); break;
		default:
			if (c < 0x20 || c == 0x7f)
				fprintf(f, "\\x%02x", c);
			else if (c >= 0x80 && !utf8)
				fputc('?', f);
			else
				fputc(c, f);
		}
	}
}

static void hex(FILE *f, const uint8_t *b, size_t n)
{
	char h[129];

	hash_hex(b, n > 64 ? 64 : n, h);
	fprintf(f, "<span class=\"h\">%s</span>", h);
}

static void kv_open(FILE *f)
{
	fputs("<table class=\"kv\">\n", f);
}

static void kv_text(FILE *f, const char *k, const char *v)
{
	fprintf(f, "<tr><th>%s</th><td>", k);
	esc(f, v);
	fputs("</td></tr>\n", f);
}

static void kv_hex(FILE *f, const char *k, const uint8_t *b, size_t n)
{
	fprintf(f, "<tr><th>%s</th><td>", k);
	hex(f, b, n);
	fputs("</td></tr>\n", f);
}

static void kv_u64(FILE *f, const char *k, uint64_t v)
{
	fprintf(f, "<tr><th>%s</th><td>%" PRIu64 "</td></tr>\n", k, v);
}

static void kv_time(FILE *f, const char *k, uint64_t ms)
{
	char t[40];

	or_fmt_time(ms, t, sizeof t);
	fprintf(f, "<tr><th>%s</th><td>%s (%" PRIu64 " ms)</td></tr>\n", k, t, ms);
}

static void manifest(FILE *f, const struct or_bundle *b)
{
	const struct bundle_manifest *m = &b->m;
	char t1[40], t2[40];

	fputs("<h3>The evidence (signed manifest)</h3>\n", f);
	kv_open(f);
	kv_hex(f, "Bundle id", b->id, 32);
	kv_text(f, "Case", m->case_id);
	kv_text(f, "Hold authority", m->authority);
	kv_text(f, "Hold purpose", m->purpose);
	kv_time(f, "Sealed at (UTC)", m->sealed_at_ms);
	kv_text(f, "Ingested by (operator)", m->operator_id);
	kv_text(f, "Source", m->source[0] ? m->source : "(none given)");
	kv_u64(f, "Reads", m->reads);
	kv_u64(f, "Images", m->images);
	kv_u64(f, "Cameras", m->cameras);
	if (m->reads > 0) {
		or_fmt_time(m->first_captured_ms, t1, sizeof t1);
		or_fmt_time(m->last_captured_ms, t2, sizeof t2);
		fprintf(f, "<tr><th>Captured (UTC)</th><td>%s to %s</td></tr>\n", t1, t2);
	}
	kv_hex(f, "Appliance id", m->appliance_id, 32);
	kv_hex(f, "Policy hash", m->policy_hash, 32);
	fprintf(f, "<tr><th>Payload</th><td>%s; %" PRIu64 " bytes encrypted, %" PRIu64
	        " bytes plain, %" PRIu64 " items</td></tr>\n", BUNDLE_SUITE, m->ciphertext_bytes,
	        m->plaintext_bytes, m->items);
	kv_hex(f, "Ciphertext SHA-256", m->ciphertext_sha256, 32);
	kv_hex(f, "Item index SHA-256", m->index_sha256, 32);
	fputs("</table>\n", f);
}

static void statement(FILE *f, const struct or_bundle *b)
{
	const struct release_statement *st = &b->st;

	fputs("<h3>The release (statement signed by the appliance)</h3>\n", f);
	if (!b->statement_parsed) {
		fputs("<p>The release statement could not be read.</p>\n", f);
		return;
	}
	kv_open(f);
	kv_text(f, "Recipient", st->recipient_name);
	kv_text(f, "Role", st->role);
	kv_text(f, "Certificate subject", st->subject);
	kv_hex(f, "Certificate SHA-256", st->cert_sha256, 32);
	kv_text(f, "Purpose", st->purpose);
	kv_text(f, "Authority", st->authority);
	kv_text(f, "Recipient attestation", st->attestation);
	kv_text(f, "Released by (operator)", st->operator_id);
	kv_time(f, "Released at (UTC)", st->released_at_ms);
	kv_u64(f, "TPM counter", st->counter);
	kv_text(f, "Confirmation code", st->confirmation);
	kv_hex(f, "Wrapped key SHA-256", st->wrapped_key_sha256, 32);
	fputs("</table>\n", f);
}

static void custody(FILE *f, const struct or_bundle *b)
{
	char t[40];

	fputs("<h3>Custody records (from the appliance's tamper-evident log)</h3>\n", f);
	if (!b->custody_decoded) {
		fputs("<p>The custody file could not be read.</p>\n", f);
		return;
	}
	fputs("<table>\n<thead><tr><th>Log entry</th><th>Time (UTC)</th><th>Event</th>"
	      "<th>Outcome</th><th>Operator</th><th>Case</th><th>Details</th></tr></thead>\n"
	      "<tbody>\n", f);
	for (size_t i = 0; i < b->n_records; i++) {
		const struct logrec *lr = &b->records[i];

		or_fmt_time(lr->time_ms, t, sizeof t);
		fprintf(f, "<tr><td>%" PRIu64 "</td><td>%s</td><td>", b->leaves[i], t);
		esc(f, lr->event);
		fputs("</td><td>", f);
		esc(f, lr->outcome);
		fputs("</td><td>", f);
		esc(f, lr->operator_id);
		fputs("</td><td>", f);
		esc(f, lr->case_id);
		fputs("</td><td class=\"pre\">", f);
		esc(f, lr->detail);
		if (lr->reason[0] != '\0') {
			fputs(lr->detail[0] ? "\nreason: " : "reason: ", f);
			esc(f, lr->reason);
		}
		fputs("</td></tr>\n", f);
	}
	fputs("</tbody></table>\n", f);
	or_fmt_time(b->head.timestamp_ms, t, sizeof t);
	fprintf(f, "<p>Each record above is proven to be in the appliance's log by a Merkle"
	        " inclusion proof under the log's signed tree head: %" PRIu64 " records, signed %s,"
	        " TPM counter %" PRIu64 ", root ", b->head.tree_size, t, b->head.counter);
	hex(f, b->head.root, 32);
	fputs(".</p>\n", f);
}

static void checks(FILE *f, const struct or_bundle *b)
{
	fputs("<h3>Checks</h3>\n<table>\n<thead><tr><th>Check</th><th>Result</th><th>Details</th>"
	      "</tr></thead>\n<tbody>\n", f);
	for (int c = 0; c < OC_N_CHECKS; c++) {
		int st = b->check[c].status;

		fprintf(f, "<tr><td>%s</td><td class=\"%s\">%s</td><td>",
		        or_check_name((enum oc_check)c),
		        st == VR_PASS ? "pass" : st == VR_FAIL ? "fail" : "skip",
		        st == VR_PASS ? "passed" : st == VR_FAIL ? "FAILED" : "not run");
		esc(f, b->check[c].why);
		fputs("</td></tr>\n", f);
	}
	fputs("</tbody></table>\n", f);
}

static void files(FILE *f, const struct or_bundle *b)
{
	const struct item_writer *w = &b->items;
	uint64_t img_bytes = 0;

	fputs("<h3>Extracted files</h3>\n", f);
	if (!b->items_valid) {
		fputs("<p>None.</p>\n", f);
		return;
	}
	fputs("<table>\n<thead><tr><th>File</th><th>Bytes</th><th>SHA-256</th></tr></thead>\n"
	      "<tbody>\n", f);
	for (size_t i = 0; i < w->n; i++) {
		if (strncmp(w->items[i].path, "images/", 7) == 0) {
			img_bytes += w->items[i].size;
			continue;
		}
		fputs("<tr><td>", f);
		if (b->subdir[0] != '\0') {
			esc(f, b->subdir);
			fputc('/', f);
		}
		esc(f, w->items[i].path);
		fprintf(f, "</td><td>%" PRIu64 "</td><td>", w->items[i].size);
		hex(f, w->items[i].sha256, 32);
		fputs("</td></tr>\n", f);
	}
	fputs("</tbody></table>\n", f);
	fprintf(f, "<p>%" PRIu64 " images (%" PRIu64 " bytes) in <span class=\"h\">", w->images,
	        img_bytes);
	if (b->subdir[0] != '\0') {
		esc(f, b->subdir);
		fputc('/', f);
	}
	fputs("images/</span>, each named after its read id; the SHA-256 of every file is listed"
	      " in verification.json.</p>\n", f);
}

static void fingerprints(FILE *f, const struct or_run *r, const struct or_bundle *b)
{
	fputs("<h3>Fingerprints</h3>\n", f);
	kv_open(f);
	kv_hex(f, "Appliance id = SHA-256 of the appliance's TPM signing key"
	       " (SubjectPublicKeyInfo)", b->m.appliance_id, 32);
	for (size_t i = 0; i < b->n_ek; i++)
		kv_hex(f, "TPM endorsement key certificate SHA-256", b->ek_sha256[i], 32);
	kv_hex(f, "Bundle id = SHA-256 of manifest.json", b->id, 32);
	if (b->release_read)
		kv_hex(f, "Release file SHA-256", b->release_sha256, 32);
	if (b->statement_parsed)
		kv_hex(f, "Recipient certificate SHA-256 (named in the release)",
		       b->st.cert_sha256, 32);
	if (r->have_cert)
		kv_hex(f, "Certificate of the person who opened it", r->cert_sha256, 32);
	fputs("</table>\n", f);
}

static void bundle(FILE *f, const struct or_run *r, size_t i)
{
	const struct or_bundle *b = &r->b[i];

	fprintf(f, "<section class=\"bundle\">\n<h2>Bundle %zu of %zu: ", i + 1, r->n);
	esc(f, b->opened ? b->m.case_id : b->path);
	fputs("</h2>\n<p>File <span class=\"h\">", f);
	esc(f, b->path);
	fputs("</span></p>\n", f);
	if (b->opened)
		manifest(f, b);
	statement(f, b);
	custody(f, b);
	checks(f, b);
	files(f, b);
	if (b->opened)
		fingerprints(f, r, b);
	fputs("</section>\n", f);
}

void or_html(FILE *f, const struct or_run *r)
{
	char t[40];

	or_fmt_time(r->opened_at_ms, t, sizeof t);
	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none';"
	      " style-src 'unsafe-inline'\">\n"
	      "<meta name=\"referrer\" content=\"no-referrer\">\n"
	      "<meta name=\"generator\" content=\"sealbox-open " SBX_VERSION "\">\n<title>"
	      "Chain of custody: ", f);
	esc(f, r->n > 0 && r->b[0].opened ? r->b[0].m.case_id : "sealbox release");
	fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<header>\n"
	        "<h1>Chain-of-custody report</h1>\n"
	        "<p class=\"sub\">Evidence released by a sealbox evidence appliance, verified and"
	        " opened with sealbox-open %s on %s.</p>\n", style, SBX_VERSION, t);
	fprintf(f, "<div class=\"verdict\"><strong>%s</strong></div>\n", r->opened ?
	        "Every check passed for every bundle below; the extracted files are exactly"
	        " the sealed evidence." : "NOT OPENED: a check failed; nothing was extracted.");
	kv_open(f);
	if (r->have_cert) {
		kv_text(f, "Opened by (certificate subject)", r->subject);
		kv_hex(f, "Certificate SHA-256", r->cert_sha256, 32);
	}
	if (r->have_key)
		kv_hex(f, "Public key SHA-256", r->key_spki_sha256, 32);
	kv_u64(f, "Bundles", r->n);
	kv_text(f, "Output layout", r->n > 1 ? "one directory per bundle, named by bundle id" :
	        "the files of the one bundle directly in the output directory");
	fputs("</table>\n</header>\n", f);
	for (size_t i = 0; i < r->n; i++)
		bundle(f, r, i);
	fputs("<footer>\n<p><strong>Checking this report independently.</strong> Anyone holding"
	      " the bundle file (<span class=\"h\">&lt;bundle id&gt;.sbx</span>) can verify its"
	      " signatures and custody without any key: <span class=\"h\">sealbox-verify"
	      " &lt;bundle id&gt;.sbx</span>.  The SHA-256 of each extracted file (for example"
	      " <span class=\"h\">sha256sum reads.csv</span>) must equal the value above and in"
	      " verification.json; the appliance sealed those values inside the encrypted"
	      " bundle, and its signed manifest commits to them.</p>\n"
	      "<p>Check names and what each one proves: docs/RECIPIENTS.md, sealbox-open(1).</p>\n"
	      "</footer>\n</body>\n</html>\n", f);
}

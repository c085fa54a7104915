/* What sealbox-open found, and its three renderings: lines for people on
 * the terminal, verification.json for tools (also `--json`), and
 * custody.html, the chain-of-custody report a recipient attaches to a
 * disclosure.  Every bundle gets a fixed list of named checks, each
 * passed, failed or not run, with a one-line reason; the meaning of each:
 * docs/RECIPIENTS.md.  Core library: libc (and the report types). */
#ifndef SBX_OPEN_REPORT_H
#define SBX_OPEN_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "export/bundle.h"
#include "export/logrec.h"
#include "export/release.h"
#include "export/staging.h"
#include "export/sth.h"
#include "export/verify_report.h"

/* In the order they run.  The first eight are sealbox-verify's. */
enum oc_check {
	OC_CONTAINER,       /* the tar: entries, order, types, sizes, nothing after */
	OC_MANIFEST,        /* strict, canonical manifest; version 1 */
	OC_NAME,            /* a file named <64 hex>.sbx is named after its own id */
	OC_SIGNATURE,       /* manifest.sig by the identity's signing key */
	OC_IDENTITY,        /* key attributes, TPM certification, appliance id */
	OC_EK_CHAIN,        /* the EK certificates chain to --ek-ca */
	OC_PIN,             /* the identity is the one pinned with --identity */
	OC_CIPHERTEXT,      /* SHA-256 and size of payload.enc as the manifest says */
	OC_RELEASE_FILE,    /* <id>.release read and decoded strictly */
	OC_RELEASE_BUNDLE,  /* the release is for this bundle */
	OC_STATEMENT_SIG,   /* the statement is signed by the box */
	OC_STATEMENT,       /* canonical statement of this bundle, appliance, case */
	OC_CERTIFICATE,     /* the certificate is the one the statement signs */
	OC_WRAPPED_KEY,     /* the wrapped key is the one the statement signs */
	OC_CUSTODY,         /* custody proofs verify; release.confirm record present */
	OC_RECIPIENT,       /* the release is for the opener's certificate and key */
	OC_UNWRAP,          /* the content key unwraps with the opener's key */
	OC_PAYLOAD,         /* every chunk authenticates, final chunk, index, item hashes */
	OC_CONTENTS,        /* reads.jsonl, reads.csv, images: the manifest's counts */
	OC_N_CHECKS
};

struct or_bundle {
	const char *path;               /* the BUNDLE argument */
	char *release_path;             /* X.release beside it (owned) */
	int io_error;                   /* a file could not be read: no verdict */
	char io_why[512];
	int opened;                     /* bundle_open passed: id and m are set */
	uint8_t id[32];
	struct bundle_manifest m;
	int identity_checked;
	struct identity_report identity;
	size_t n_ek;                    /* SHA-256 of each EK certificate */
	uint8_t ek_sha256[3][32];
	int release_read;               /* the release file was read */
	uint64_t release_bytes;
	uint8_t release_sha256[32];
	int statement_parsed;           /* st is set */
	struct release_statement st;
	int custody_decoded;            /* head, n_records, records are set */
	struct sth head;
	size_t n_records;
	struct logrec *records;         /* decoded custody records (owned) */
	uint64_t *leaves;               /* their leaf indexes (owned) */
	char subdir[65];                /* "" (one bundle) or the bundle id */
	struct item_writer items;       /* what was written (after the payload) */
	int items_valid;
	struct vr_result check[OC_N_CHECKS];
};

struct or_run {
	const char *out_dir;
	uint64_t opened_at_ms;
	int have_key;                   /* the recipient's fingerprints are set */
	uint8_t cert_sha256[32];        /* --cert or PKCS#12 certificate; zero if none */
	int have_cert;
	char subject[1025];
	uint8_t key_spki_sha256[32];
	size_t n;
	struct or_bundle *b;
	int opened;                     /* everything passed and is in out_dir */
	char failure[512];              /* why nothing was written, when not a check */
};

const char *or_check_name(enum oc_check c);
void or_bundle_init(struct or_bundle *b, const char *path);
void or_bundle_free(struct or_bundle *b);
/* No check failed and every required check passed (all but name,
 * ek-chain and pin, which depend on what the opener supplied). */
int or_bundle_valid(const struct or_bundle *b);

/* UTC, ISO 8601 with milliseconds ("2026-11-01T00:00:00.000Z"). */
void or_fmt_time(uint64_t ms, char *out, size_t n);

/* quiet: only the verdict lines. */
void or_print(FILE *f, const struct or_run *r, int quiet);
void or_json(FILE *f, const struct or_run *r);
void or_html(FILE *f, const struct or_run *r);

#endif

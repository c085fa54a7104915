/* What sealbox-verify found, and its two renderings: a report for people
 * (one line per check) and one JSON document for tools.  A bundle's result is
 * a fixed list of named checks, each passed, failed or not run, with a
 * one-line reason; the log export's result is logexport's own report.
 * The meaning of each check: docs/VERIFY.md.  Core library: libc only. */
#ifndef SBX_VERIFY_REPORT_H
#define SBX_VERIFY_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "export/bundle.h"
#include "export/jsonw.h"
#include "export/logexport.h"
#include "export/sth.h"

/* The checks on one bundle, in the order they run and are reported. */
enum vr_check {
	VR_CONTAINER,   /* the tar: entries, order, types, sizes, nothing after */
	VR_MANIFEST,    /* strict, canonical manifest; version 1 */
	VR_NAME,        /* a file named <64 hex>.sbx is named after its own id */
	VR_SIGNATURE,   /* manifest.sig by the identity's signing key */
	VR_IDENTITY,    /* key attributes, TPM certification, appliance id */
	VR_EK_CHAIN,    /* the EK certificates chain to --ek-ca */
	VR_PIN,         /* the identity is the one pinned with --identity */
	VR_CIPHERTEXT,  /* SHA-256 and size of payload.enc as the manifest says */
	VR_POLICY,      /* the policy hash is SHA-256 of --policy */
	VR_CUSTODY,     /* the custody file: records, inclusion proofs, signed head */
	VR_LOG_HEAD,    /* the custody head is in (or consistent with) the log export */
	VR_LOG_RECORDS, /* the custody records are the export's, at their indexes */
	VR_LOG_INGEST,  /* the export holds this bundle's ingest record */
	VR_N_CHECKS
};

#define VR_NOT_RUN (-1)
#define VR_FAIL    0
#define VR_PASS    1

struct vr_result {
	int status;             /* VR_NOT_RUN, VR_FAIL or VR_PASS */
	char why[320];          /* why it failed or did not run; what passed */
};

struct vr_bundle {
	const char *path;
	int io_error;           /* the file could not be read: no verdict */
	char io_why[512];
	int opened;             /* bundle_open passed: id and manifest are set */
	uint8_t id[32];
	struct bundle_manifest m;
	int identity_checked;   /* identity holds identity_check's sub-results */
	struct identity_report identity;
	const char *custody_path;       /* NULL: no custody file */
	int custody_decoded;            /* n_custody and head are set */
	uint64_t n_custody;
	struct sth head;
	int have_ingest_leaf;           /* the verified custody file holds this bundle's */
	uint64_t ingest_leaf;           /* ingest record, at this leaf */
	int custody_newer;              /* its head is newer than the log export */
	struct vr_result check[VR_N_CHECKS];
};

struct vr_log {
	const char *path, *since;
	int ran;                /* logexport_verify ran: rc, why and rep are set */
	int rc;
	char why[512];
	struct logexport_report rep;
};

/* "container", "manifest", ... */
const char *vr_check_name(enum vr_check c);
void vr_bundle_init(struct vr_bundle *b, const char *path);
void vr_set(struct vr_result *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A bundle is valid when it was read, no check failed and every check that
 * must always run passed.  The log when it was read and verified. */
int vr_bundle_valid(const struct vr_bundle *b);
int vr_log_valid(const struct vr_log *l);

/* For people.  Only printable ASCII from the evidence reaches the terminal;
 * anything else is written as \xNN.  `quiet`: only the verdict line. */
void vr_print_bundle(FILE *f, const struct vr_bundle *b, int quiet);
void vr_print_log(FILE *f, const struct vr_log *l, int quiet);

/* For tools: members of the caller's JSON document. */
void vr_json_bundle(struct jsonw *w, const struct vr_bundle *b);
void vr_json_log(struct jsonw *w, const char *key, const struct vr_log *l);

/* The checks both programs make of a bundle, worded once.
 *
 * vr_map_identity: bundle_verify's verdicts on the signature, the identity,
 * the EK chain and the pin.  The EK chain is a check of its own (identity
 * check's verdict includes it; the identity check here does not).  ek_ca
 * and pin are the options given, or NULL.  `first` is bundle_verify's first
 * failure message ("" for none): bundle_verify runs these four checks
 * first, so when one of them failed, the first that failed gets it.
 * Returns 1 when it placed `first`, else 0.
 *
 * vr_check_file_name: "<64 hex>.sbx" names its bundle; a file named after
 * another bundle makes a claim that does not hold (any other name: not run).
 *
 * vr_set_ciphertext: payload.enc against the manifest (ok > 0: it matched).
 *
 * vr_sibling_path: BUNDLE with ".sbx" replaced by ext (".release",
 * ".custody"); any other name gets ext appended.  malloc'd; NULL on ENOMEM. */
int vr_map_identity(const struct bundle_report *rep, const char *ek_ca, const char *pin,
                     const char *first, struct vr_result *signature, struct vr_result *identity,
                     struct vr_result *ek_chain, struct vr_result *pinned);
void vr_check_file_name(struct vr_result *r, const char *path, const uint8_t id[32]);
void vr_set_ciphertext(struct vr_result *r, int ok, uint64_t bytes);
char *vr_sibling_path(const char *bundle, const char *ext);

/* Pieces that sealbox-open's verification.json shares with sealbox-verify's
 * --json, so that both describe a bundle alike: "pass", "fail" or
 * "not_run"; the manifest's members (into the caller's object); and the
 * "identity" object, left open for the caller's own members. */
const char *vr_status_json(int st);
void vr_json_manifest(struct jsonw *w, const struct bundle_manifest *m);
void vr_json_identity_open(struct jsonw *w, int checked, const struct identity_report *ir);

/* Writes s with everything outside printable ASCII as \xNN. */
void vr_print_safe(FILE *f, const char *s);

#endif

/* Release files (docs/FORMAT.md section 10): written by the box, read by
 * sealbox-open and sealbox-verify.  Core library. */
#ifndef SBX_RELEASE_H
#define SBX_RELEASE_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "crypto/err.h"
#include "crypto/sig.h"
#include "crypto/wrap.h"
#include "export/bundle.h"
#include "export/sth.h"

#define RELEASE_VERSION        1
#define RELEASE_MAX_STATEMENT  16384
#define RELEASE_MAX_CERT       16384
#define RELEASE_NS_WRAP        "sealbox-release-v1"
#define RELEASE_MAGIC          "SBXD"
#define RELEASE_MAX_SIG        SIG_MAX_DER
#define RELEASE_MAX_WRAPPED    WRAP_MAX_BLOB
/* A custody file of 64 records at their largest is about 772 KB. */
#define RELEASE_MAX_CUSTODY    ((size_t)1 << 20)
#define RELEASE_MAX_FILE       (4 + 1 + 32 + 5 * 4 + RELEASE_MAX_STATEMENT + RELEASE_MAX_SIG + \
                                RELEASE_MAX_WRAPPED + RELEASE_MAX_CERT + RELEASE_MAX_CUSTODY)

struct release_statement {
	unsigned version;
	uint8_t bundle_id[32];
	uint8_t appliance_id[32];
	char case_id[129];
	char recipient_name[129];
	char role[65];
	uint8_t cert_sha256[32];
	char subject[1025];
	char purpose[65];
	char authority[257];
	char attestation[257];
	char operator_id[129];
	uint64_t released_at_ms;
	uint64_t counter;
	char confirmation[17];
	uint8_t wrapped_key_sha256[32];
};

/* Canonical encoding (export/canon.h); *out malloc'd.  SBX_EFORMAT if a
 * string is too long for its field or not UTF-8, or version is not 1. */
int release_statement_encode(const struct release_statement *s, char **out, size_t *len);
/* Strict parse + canonical re-encode comparison.  Format only: what the
 * values must be is release_verify's business. */
int release_statement_parse(const char *text, size_t len, struct release_statement *s,
                            struct sbx_err *e);

struct release_file {
	uint8_t bundle_id[32];
	uint8_t *statement;  size_t statement_len;
	uint8_t *sig;        size_t sig_len;
	uint8_t *wrapped;    size_t wrapped_len;
	uint8_t *cert;       size_t cert_len;
	uint8_t *custody;    size_t custody_len;
};

/* Every field non-empty and within its cap; *out malloc'd. */
int release_file_encode(const struct release_file *f, uint8_t **out, size_t *len);
/* Strict (magic, version, every length against its cap, no empty field, no
 * trailing bytes); the pointers point into a copy owned by f
 * (release_file_free).  On failure f holds nothing. */
int release_file_decode(const uint8_t *b, size_t len, struct release_file *f,
                        struct sbx_err *e);
void release_file_free(struct release_file *f);

/* The wrap context binding a content key to one bundle and one recipient. */
void release_wrap_context(const uint8_t bundle_id[static 32], const uint8_t cert_sha256[static 32],
                          uint8_t out[static 128], size_t *len);

/* Everything checkable without the recipient's key: the release belongs to
 * bundle b, the statement is canonical and signed by b's identity, the
 * certificate and wrapped-key hashes match, the custody file verifies and
 * holds a release.confirm record for the bundle.  The caller has checked
 * b itself (bundle_verify: its identity is a TPM's).  0 or the first
 * failure (SBX_EVERIFY, SBX_EFORMAT, ...) with its reason in e. */
int release_verify(const struct bundle *b, const struct release_file *f,
                   struct release_statement *st, struct sbx_err *e);

/* The checks release_verify makes, in order, for reports. */
enum release_check {
	RELEASE_CHK_BUNDLE,     /* the release names this bundle */
	RELEASE_CHK_SIGNATURE,  /* statement_sig by the identity's signing key (sealbox-release-v1) */
	RELEASE_CHK_STATEMENT,  /* canonical, version 1; same bundle, appliance and case;
	                         * role court or prosecutor; no required field empty */
	RELEASE_CHK_CERT,       /* recipient_cert: one DER certificate, the statement's
	                         * SHA-256 and subject, a key sealbox wraps to */
	RELEASE_CHK_WRAPPED,    /* wrapped_key well-formed, for that key type, the statement's SHA-256 */
	RELEASE_CHK_CUSTODY,    /* custody file verifies; an ok release.confirm record for
	                         * this bundle, case and operator; head counter >= statement's */
	RELEASE_N_CHECKS
};

#define RELEASE_NOT_RUN (-1)
#define RELEASE_FAIL    0
#define RELEASE_PASS    1

struct release_report {
	int status[RELEASE_N_CHECKS];
	char why[RELEASE_N_CHECKS][320];
	int statement_parsed;           /* *st holds the statement */
	int custody_decoded;            /* n_records and head are set */
	size_t n_records;
	struct sth head;
	uint64_t confirm_leaf;          /* leaf index of the release.confirm record */
};

/* "bundle", "signature", "statement", "certificate", "wrapped-key", "custody". */
const char *release_check_name(enum release_check c);
/* As release_verify, running every check it can and filling rep. */
int release_verify_report(const struct bundle *b, const struct release_file *f,
                          struct release_statement *st, struct release_report *rep,
                          struct sbx_err *e);

/* A certificate's SHA-256 (over the DER) and subject as the statement
 * writes it: OpenSSL's X509_NAME_print_ex with XN_FLAG_RFC2253 minus
 * ASN1_STRFLGS_UTF8_CONVERT (ASCII; other bytes escaped as \XX).  The box
 * must write the statement's subject exactly so (best: with this function).
 * der must be exactly one certificate.  SBX_EFORMAT otherwise, or if the
 * subject does not fit in cap. */
int release_cert_info(const uint8_t *der, size_t len, uint8_t sha256[static 32],
                      char *subject, size_t cap, struct sbx_err *e);

/* The opener is the recipient: the release's certificate has the public
 * key of `priv`, and, if `own` is given (--cert, or the PKCS#12's), is
 * that very certificate.  0 or SBX_EVERIFY with the reason. */
int release_match_recipient(const struct release_file *f, X509 *own, EVP_PKEY *priv,
                            struct sbx_err *e);

/* Unwraps the content key with the recipient's private key under the
 * release's wrap context (bundle id, certificate hash of the verified
 * statement).  On failure cek is untouched. */
int release_unwrap(const struct release_file *f, const struct release_statement *st,
                   EVP_PKEY *priv, uint8_t cek[static 32], struct sbx_err *e);

#endif

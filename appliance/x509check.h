/* The certificate checks behind recipients, trust anchors and CRLs
 * (docs/RECIPIENTS-TRUST.md).  Pure: OpenSSL only, no database, no files,
 * no clock (the caller passes `now`), so they are unit-tested and fuzzed.
 *
 * A trust set holds the anchors of each role, the CRLs, intermediates known
 * to the box (used only to verify CRLs), and the federal markers (built-in
 * defaults, extended by the box's trust.conf; they can only be added to).
 *
 * Each check fills a `struct x509check_info` (as far as it got) and returns
 * 0, SBX_EFORMAT (malformed input: verdict X509CHECK_MALFORMED),
 * SBX_EPOLICY (refused: the verdict says why, `e` has one line), or
 * SBX_ENOMEM / SBX_ECRYPTO. */
#ifndef SBX_X509CHECK_H
#define SBX_X509CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>

#include "crypto/err.h"

#define X509CHECK_MAX_CERT    16384         /* bytes of one DER certificate */
#define X509CHECK_MAX_CHAIN   8             /* certificates in one file */
#define X509CHECK_MAX_CRL     (4u << 20)    /* bytes of one DER CRL */
#define X509CHECK_MAX_NAME    1024          /* an RFC 2253 name string */
#define X509CHECK_MAX_NOTES   512
#define X509CHECK_MAX_MARKERS 256           /* entries of each kind */
#define X509CHECK_MAX_CONF    65536         /* bytes of a trust.conf */

/* The only roles there are.  There is never a federal role. */
extern const char *const x509check_roles[];     /* NULL-terminated */
int x509check_role_valid(const char *role);     /* 1 for court / prosecutor */

/* Verdicts, in the order the recipient check tries them (the first that
 * applies is reported).  Stable numbers: tests and fuzzers compare them. */
enum x509check_verdict {
	X509CHECK_OK            = 0,
	X509CHECK_MALFORMED     = 1,   /* not exact DER, an extension that does not decode */
	X509CHECK_FEDERAL       = 2,   /* a US federal marking in the certificate or its chain */
	X509CHECK_SELF_SIGNED   = 3,   /* a recipient certificate issued by itself */
	X509CHECK_KEY_TYPE      = 4,   /* not EC P-256/P-384 or RSA >= 3072 (anchors: weak key) */
	X509CHECK_KEY_USAGE     = 5,   /* keyUsage forbids the wrap; a CA certificate as recipient */
	X509CHECK_NOT_YET_VALID = 6,
	X509CHECK_EXPIRED       = 7,
	X509CHECK_UNKNOWN_CA    = 8,   /* chains to no trust anchor */
	X509CHECK_WRONG_ROLE    = 9,   /* chains only to an anchor of another role */
	X509CHECK_REVOKED       = 10,
	X509CHECK_NO_CRL        = 11,  /* only when a CRL is required (trust.conf) */
	X509CHECK_CHAIN         = 12,  /* other chain failure: signature, CA flag, path length */
	X509CHECK_NOT_CA        = 13,  /* anchors: not a CA, or keyUsage lacks keyCertSign */
	X509CHECK_NOT_ROOT      = 14,  /* anchors: not self-signed */
};
/* "ok", "malformed", "federal", "self-signed", ... (for JSON and logs). */
const char *x509check_verdict_name(int verdict);

struct x509check_info {
	int verdict;
	uint8_t sha256[32];                     /* of the DER certificate */
	char subject[X509CHECK_MAX_NAME + 1];   /* RFC 2253, ASCII (escaped) */
	char issuer[X509CHECK_MAX_NAME + 1];
	uint64_t not_before_ms, not_after_ms;
	int wrap_alg;                           /* recipients: WRAP_ECDH_P256 ... */
	char anchor[X509CHECK_MAX_NAME + 1];    /* recipients: the anchor reached */
	uint8_t anchor_sha256[32];
	char notes[X509CHECK_MAX_NOTES];        /* non-fatal, one line ("no CRL ...") */
};

struct x509check_crl_info {
	uint8_t issuer_key[32];                 /* SHA-256 of the issuer name's DER */
	char issuer[X509CHECK_MAX_NAME + 1];
	uint8_t sha256[32];                     /* of the DER CRL */
	uint64_t this_update_ms, next_update_ms;   /* next 0: absent */
	char number[64];                        /* cRLNumber in decimal, "" if absent */
	uint64_t revoked;                       /* entries */
	char signer[X509CHECK_MAX_NAME + 1];    /* the certificate that verified it */
	char notes[X509CHECK_MAX_NOTES];
};

enum {
	/* Refuse when an issuer in the chain has no current CRL (default:
	 * allowed, and reported in the notes). */
	X509CHECK_REQUIRE_CRL = 1u << 0,
};

struct x509check_trust;

/* An empty trust set with the built-in federal markers. */
struct x509check_trust *x509check_trust_new(void);
void x509check_trust_free(struct x509check_trust *t);
/* Adds an anchor (as stored: already checked by x509check_anchor). */
int x509check_trust_add_anchor(struct x509check_trust *t, const char *role,
                               const uint8_t *der, size_t len, struct sbx_err *e);
/* Adds a CRL (as stored: already checked by x509check_crl). */
int x509check_trust_add_crl(struct x509check_trust *t, const uint8_t *der, size_t len,
                            struct sbx_err *e);
/* Adds certificates (concatenated DER) that may have issued a CRL; they
 * are never trusted, only verified up to an anchor. */
int x509check_trust_add_pool(struct x509check_trust *t, const uint8_t *ders, size_t len,
                             struct sbx_err *e);
/* Parses a trust.conf (docs/RECIPIENTS-TRUST.md) into t: more federal
 * markers, `require-crl yes`.  Exact: an unknown line is SBX_EFORMAT
 * naming the line.  Can only make the checks stricter. */
int x509check_trust_conf(struct x509check_trust *t, const uint8_t *text, size_t len,
                         struct sbx_err *e);
unsigned x509check_trust_flags(const struct x509check_trust *t);
/* The federal markers in force, for display: kind 0 domains, 1
 * organizations (normalized), 2 policy OID arcs.  Returns the count. */
size_t x509check_trust_markers(const struct x509check_trust *t, int kind,
                               const char *const **list);

/* Recipient: `der` is the certificate, `chain` its intermediates
 * (concatenated DER, may be empty).  Checks everything at time now_ms for
 * `role`.  info->wrap_alg and the names are filled even on refusal where
 * known. */
int x509check_recipient(const struct x509check_trust *t, const char *role,
                        const uint8_t *der, size_t len,
                        const uint8_t *chain, size_t chainlen,
                        uint64_t now_ms, struct x509check_info *info, struct sbx_err *e);

/* Trust anchor candidate for `role`: a self-signed root CA, valid now,
 * with keyCertSign if keyUsage is present, an adequate key, no federal
 * marking. */
int x509check_anchor(const struct x509check_trust *t, const char *role,
                     const uint8_t *der, size_t len, uint64_t now_ms,
                     struct x509check_info *info, struct sbx_err *e);

/* CRL: exact DER, not a delta CRL, no indirect CRL or unhandled critical
 * extension, thisUpdate not after now, signed by an anchor or by a CA
 * certificate from the pool (or `extra`, concatenated DER) that chains to
 * an anchor now and carries no federal marking. */
int x509check_crl(const struct x509check_trust *t, const uint8_t *der, size_t len,
                  const uint8_t *extra, size_t extralen, uint64_t now_ms,
                  struct x509check_crl_info *info, struct sbx_err *e);
/* 1 if `next` may replace `cur` (same issuer): a later thisUpdate and, when
 * both carry one, a larger cRLNumber.  Otherwise 0, with the reason in e. */
int x509check_crl_newer(const struct x509check_crl_info *cur,
                        const struct x509check_crl_info *next, struct sbx_err *e);

/* Splits a certificate or CRL file: one DER object, or PEM blocks (text
 * between blocks is ignored; every block must be CERTIFICATE, or X509 CRL
 * when want_crl, exact DER, no PEM headers).  Certificates are returned
 * concatenated in order (the first is the leaf); a CRL file must hold
 * exactly one CRL and may hold its issuer's certificates.  Buffers are
 * malloc'd (NULL when empty). */
struct x509check_file {
	uint8_t *certs;  size_t certs_len;  size_t n_certs;
	size_t first_len;                   /* DER length of the first certificate */
	uint8_t *crl;    size_t crl_len;
};
int x509check_file_split(const uint8_t *buf, size_t len, int want_crl,
                         struct x509check_file *out, struct sbx_err *e);
void x509check_file_free(struct x509check_file *f);

/* Parses one exact, canonical DER certificate (re-encodes to the input). */
X509 *x509check_parse_cert(const uint8_t *der, size_t len);

#endif

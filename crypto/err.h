/* Error codes and one-line error messages shared by every module.
 *
 * Functions return 0 on success or a negative SBX_E* code.  Functions that can
 * fail for reasons a person must read take a `struct sbx_err *` and fill it
 * with one line naming what failed (never a secret).  */
#ifndef SBX_ERR_H
#define SBX_ERR_H

#include <stddef.h>

enum {
	SBX_OK          = 0,
	SBX_EINVAL      = -1,   /* bad argument or usage */
	SBX_ENOMEM      = -2,
	SBX_EIO         = -3,   /* file or database I/O */
	SBX_EFORMAT     = -4,   /* malformed input: bad length, version, encoding */
	SBX_EVERIFY     = -5,   /* a signature, hash or proof does not check */
	SBX_ETPM        = -6,   /* the TPM failed or is unreachable */
	SBX_EPOLICY     = -7,   /* refused by policy */
	SBX_ENOENT      = -8,   /* unknown case, recipient, bundle ... */
	SBX_EEXIST      = -9,   /* already exists / already provisioned */
	SBX_ESTATE      = -10,  /* wrong state: not provisioned, hold closed ... */
	SBX_EINTEGRITY  = -11,  /* integrity alarm: log, tree head or counter mismatch */
	SBX_ECRYPTO     = -12,  /* OpenSSL failed */
	SBX_ECANCELED   = -13,  /* timed out or not confirmed */
};

struct sbx_err {
	int code;
	char msg[512];
};

/* Record an error and return `code`, so callers write `r = sbx_fail(e, ...)`.
 * `e` may be NULL.  The first error recorded wins: later, vaguer messages
 * from callers up the stack do not overwrite the precise one. */
int sbx_fail(struct sbx_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Like sbx_fail, appending OpenSSL's error queue (and clearing it). */
int sbx_fail_ssl(struct sbx_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Appends "; note" to the error already recorded (nothing if none is):
 * for what the caller knows and the failing call did not, such as whether
 * the change it was making is in force. */
void sbx_err_note(struct sbx_err *e, const char *note);

void sbx_err_clear(struct sbx_err *e);
const char *sbx_strerror(int code);

#endif

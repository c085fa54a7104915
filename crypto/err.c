#include "crypto/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>

/* A message is one line of text whatever it quotes (a CSV column name, a
 * certificate subject): it goes to a terminal and into the custody log as a
 * refusal's reason.  Control characters become '?'.  Found by fuzz_csv. */
static void one_line(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

__attribute__((format(printf, 3, 0)))
static void vset(struct sbx_err *e, int code, const char *fmt, va_list ap)
{
	if (e == NULL || e->code != 0)
		return;
	e->code = code;
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	one_line(e->msg);
}

int sbx_fail(struct sbx_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vset(e, code, fmt, ap);
	va_end(ap);
	return code;
}

int sbx_fail_ssl(struct sbx_err *e, int code, const char *fmt, ...)
{
	va_list ap;
	unsigned long l;
	int already = e != NULL && e->code != 0;

	va_start(ap, fmt);
	vset(e, code, fmt, ap);
	va_end(ap);
	l = ERR_peek_last_error();
	if (!already && e != NULL && l != 0) {
		size_t n = strlen(e->msg);
		char buf[256];

		ERR_error_string_n(l, buf, sizeof buf);
		snprintf(e->msg + n, sizeof e->msg - n, " (%s)", buf);
		one_line(e->msg);
	}
	ERR_clear_error();
	return code;
}

void sbx_err_note(struct sbx_err *e, const char *note)
{
	size_t n;

	if (e == NULL || e->code == 0)
		return;
	n = strlen(e->msg);
	snprintf(e->msg + n, sizeof e->msg - n, "; %s", note);
	one_line(e->msg);
}

void sbx_err_clear(struct sbx_err *e)
{
	if (e != NULL)
		memset(e, 0, sizeof *e);
}

const char *sbx_strerror(int code)
{
	switch (code) {
	case SBX_OK:         return "success";
	case SBX_EINVAL:     return "invalid argument";
	case SBX_ENOMEM:     return "out of memory";
	case SBX_EIO:        return "I/O error";
	case SBX_EFORMAT:    return "malformed input";
	case SBX_EVERIFY:    return "verification failed";
	case SBX_ETPM:       return "TPM error";
	case SBX_EPOLICY:    return "refused by policy";
	case SBX_ENOENT:     return "not found";
	case SBX_EEXIST:     return "already exists";
	case SBX_ESTATE:     return "wrong state";
	case SBX_EINTEGRITY: return "integrity alarm";
	case SBX_ECRYPTO:    return "cryptographic library error";
	case SBX_ECANCELED:  return "canceled";
	default:             return "unknown error";
	}
}

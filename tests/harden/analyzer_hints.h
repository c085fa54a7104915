/* Facts the clang static analyzer cannot see across translation units,
 * forced into every file it analyzes (mk/harden.mk: -include).  Without
 * them it assumes sbx_fail() may return 0 and reports every
 * `r = sbx_fail(e, CODE, ...); ... if (r == 0) use(out)` as a use of an
 * uninitialized value.  Inert outside the analyzer. */
#ifndef SBX_ANALYZER_HINTS_H
#define SBX_ANALYZER_HINTS_H
/* SBX_NO_ANALYZER_HINTS: crypto/err.c, which defines the two functions
 * (mk/harden.mk sets it there). */
#if defined(__clang_analyzer__) && !defined(SBX_NO_ANALYZER_HINTS)
#include "crypto/err.h"
/* sbx_fail and sbx_fail_ssl return their code (crypto/err.c). */
#define sbx_fail(e, code, ...)     (sbx_fail((e), (code), __VA_ARGS__), (code))
#define sbx_fail_ssl(e, code, ...) (sbx_fail_ssl((e), (code), __VA_ARGS__), (code))
#endif
#endif

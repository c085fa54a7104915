/* The city's policy, as a versioned text file (docs/POLICY.md).  Its SHA-256
 * over the exact file bytes is bound into every custody record. */
#ifndef SBX_POLICY_H
#define SBX_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/err.h"

#define POLICY_MAX_BYTES     65536
#define POLICY_MAX_PURPOSES  64
#define POLICY_MAX_CODE      64     /* a purpose or role code: [a-z0-9-], 1..64 */
#define POLICY_MAX_ROLES     8
#define POLICY_MAX_LINE      1024   /* bytes per line, without the LF */
#define POLICY_VERSION       1      /* the only format version this reader accepts */
#define POLICY_MIN_DAYS      1      /* range of retention_days and hold_max_days */
#define POLICY_MAX_DAYS      3650

struct policy_purpose {
	char code[POLICY_MAX_CODE + 1];
	/* Bit i set: allowed for release to roles[i].  Holds need only the code. */
	uint32_t roles_mask;
};

struct policy {
	unsigned version;               /* format version of the file, 1 */
	char name[128];                 /* free label, e.g. "denver-2026" */
	size_t n_purposes;
	struct policy_purpose purposes[POLICY_MAX_PURPOSES];
	size_t n_roles;
	char roles[POLICY_MAX_ROLES][POLICY_MAX_CODE + 1];
	unsigned retention_days;        /* 21 */
	unsigned hold_max_days;         /* 90 */
	uint8_t hash[32];               /* SHA-256 of the file bytes */
};

/* The always-denied purposes; no policy file can allow them.  NULL-terminated. */
extern const char *const policy_forbidden[];

/* The built-in default policy text (Denver/Colorado rules). */
const char *policy_default_text(void);

/* Parses exactly; any unknown key, duplicate key, bad value, forbidden
 * purpose in the allowlist, or unsupported version is an error naming the
 * line.  SBX_EFORMAT for a malformed file, SBX_EPOLICY for a well-formed one
 * that asks for something never allowed (a forbidden purpose, a role other
 * than court or prosecutor).  On failure *p is zeroed. */
int policy_parse(const uint8_t *text, size_t len, struct policy *p, struct sbx_err *e);

/* 0 if `code` may be used to open a hold; SBX_EPOLICY with the reason
 * otherwise ("purpose 'X' is forbidden by law (C.R.S. ...)", "... is not in
 * the policy's allowlist", "... is malformed"). */
int policy_check_purpose(const struct policy *p, const char *code, struct sbx_err *e);
/* 0 if `code` may be used to release to `role`: the purpose check, then the
 * role (court or prosecutor, declared, and mapped to this purpose). */
int policy_check_release(const struct policy *p, const char *code, const char *role,
                         struct sbx_err *e);
/* 1 if `role` is one of the roles the policy declares, else 0. */
int policy_role_known(const struct policy *p, const char *role);

/* 1 if `code` is a well-formed purpose or role code ([a-z0-9-], 1..64). */
int policy_code_valid(const char *code);
/* Why `code` can never be allowed ("by law (C.R.S. ...)"), or NULL.  Covers
 * policy_forbidden and codes naming their subjects (docs/POLICY.md). */
const char *policy_forbidden_reason(const char *code);
/* The allowlist entry for `code`, or NULL. */
const struct policy_purpose *policy_find_purpose(const struct policy *p, const char *code);

#endif

/* Reading a policy file from disk (or the built-in default). */
#ifndef SBX_POLICYFILE_H
#define SBX_POLICYFILE_H

#include <stddef.h>
#include <stdint.h>

#include "appliance/policy.h"

/* path NULL: the built-in default.  Otherwise a regular file of at most
 * POLICY_MAX_BYTES, parsed strictly.  *text is malloc'd (the exact bytes). */
int policyfile_load(const char *path, uint8_t **text, size_t *len, struct policy *p,
                    struct sbx_err *e);

#endif

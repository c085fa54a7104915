/* libFuzzer harness for the policy parser.  Any bytes: either a clean
 * failure (one-line message, nothing kept) or a policy that keeps every
 * promise of the format: no forbidden purpose allowed, only court and
 * prosecutor, counts and days in bounds, hash = SHA-256 of the bytes.
 * The input, NUL-terminated, is also fed to the checks as a purpose and a
 * role.  Build: clang -fsanitize=fuzzer,address,undefined (docs/POLICY.md). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "appliance/policy.h"
#include "crypto/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond)
{
	if (!cond)
		abort();
}

static int all_zero(const void *b, size_t n)
{
	const uint8_t *c = b;

	for (size_t i = 0; i < n; i++)
		if (c[i] != 0)
			return 0;
	return 1;
}

static void check_policy(const struct policy *p, const uint8_t *data, size_t size)
{
	uint8_t want[32];
	unsigned int hl = 0;
	struct sbx_err e;

	must(p->version == POLICY_VERSION);
	must(memchr(p->name, '\0', sizeof p->name) != NULL && p->name[0] != '\0');
	must(p->retention_days >= POLICY_MIN_DAYS && p->retention_days <= POLICY_MAX_DAYS);
	must(p->hold_max_days >= POLICY_MIN_DAYS && p->hold_max_days <= POLICY_MAX_DAYS);
	must(p->n_roles >= 1 && p->n_roles <= 2);
	for (size_t i = 0; i < p->n_roles; i++) {
		must(strcmp(p->roles[i], "court") == 0 || strcmp(p->roles[i], "prosecutor") == 0);
		for (size_t j = 0; j < i; j++)
			must(strcmp(p->roles[i], p->roles[j]) != 0);
		must(policy_role_known(p, p->roles[i]));
	}
	must(!policy_role_known(p, "federal"));
	must(p->n_purposes >= 1 && p->n_purposes <= POLICY_MAX_PURPOSES);
	for (size_t i = 0; i < p->n_purposes; i++) {
		const struct policy_purpose *pp = &p->purposes[i];

		must(policy_code_valid(pp->code));
		must(policy_forbidden_reason(pp->code) == NULL);
		must(pp->roles_mask != 0 && pp->roles_mask < (1u << p->n_roles));
		for (size_t j = 0; j < i; j++)
			must(strcmp(pp->code, p->purposes[j].code) != 0);
		sbx_err_clear(&e);
		must(policy_check_purpose(p, pp->code, &e) == 0 && e.code == 0);
		for (size_t r = 0; r < p->n_roles; r++) {
			int allowed = (pp->roles_mask >> r) & 1;

			sbx_err_clear(&e);
			must((policy_check_release(p, pp->code, p->roles[r], &e) == 0) == allowed);
		}
		sbx_err_clear(&e);
		must(policy_check_release(p, pp->code, "federal", &e) == SBX_EPOLICY);
	}
	for (size_t i = 0; policy_forbidden[i] != NULL; i++) {
		sbx_err_clear(&e);
		must(policy_check_purpose(p, policy_forbidden[i], &e) == SBX_EPOLICY);
		must(policy_find_purpose(p, policy_forbidden[i]) == NULL);
	}
	must(EVP_Digest(data, size, want, &hl, EVP_sha256(), NULL) == 1 && hl == 32);
	must(memcmp(want, p->hash, 32) == 0);
}

/* The input as a purpose code and as a role: never a crash, never an
 * allowed forbidden or malformed code, always a one-line message. */
static void check_codes(const struct policy *p, const uint8_t *data, size_t size)
{
	char s[POLICY_MAX_CODE * 2 + 2];
	size_t n = size < sizeof s - 1 ? size : sizeof s - 1;
	struct sbx_err e;
	int r;

	memcpy(s, data, n);
	s[n] = '\0';
	sbx_err_clear(&e);
	r = policy_check_purpose(p, s, &e);
	if (r == 0)
		must(policy_code_valid(s) && policy_forbidden_reason(s) == NULL &&
		     policy_find_purpose(p, s) != NULL);
	else
		must(r == SBX_EPOLICY && strchr(e.msg, '\n') == NULL && e.msg[0] != '\0');
	sbx_err_clear(&e);
	r = policy_check_release(p, "court-order", s, &e);
	if (r == 0)
		must(strcmp(s, "court") == 0 || strcmp(s, "prosecutor") == 0);
	else
		must(strchr(e.msg, '\n') == NULL && e.msg[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct policy def;
	static int have_def;
	struct policy p;
	struct sbx_err e;
	int r;

	if (!have_def) {
		const char *t = policy_default_text();

		must(policy_parse((const uint8_t *)t, strlen(t), &def, NULL) == 0);
		have_def = 1;
	}
	sbx_err_clear(&e);
	r = policy_parse(data, size, &p, &e);
	if (r == 0) {
		must(e.code == 0);
		check_policy(&p, data, size);
		check_codes(&p, data, size);
	} else {
		must(r == SBX_EFORMAT || r == SBX_EPOLICY);
		must(e.code == r && e.msg[0] != '\0' && strchr(e.msg, '\n') == NULL);
		must(all_zero(&p, sizeof p));
	}
	check_codes(&def, data, size);
	return 0;
}

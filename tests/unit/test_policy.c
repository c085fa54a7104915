/* The policy file: the default, every rejection the format promises,
 * forbidden purposes in every spelling the parser could let through,
 * truncation at every length, and hostile inputs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "appliance/policy.h"
#include "crypto/err.h"
#include "crypto/hash.h"
#include "tests/unit/check.h"

#define V    "sealbox-policy = 1\n"
#define BASE "name = t\nroles = court, prosecutor\n"
#define P    "purpose = prosecution\n"

/* Pins the default policy: changing the default is a policy change and must
 * be deliberate (update this, docs/examples/policy-denver.conf and POLICY.md). */
static const char default_sha256[] =
	"678b9b482919c8bcdc0dda7bdef3fa5edd9b7e90569ddcd940e2087f708eb066";

static int parse_bytes(const void *b, size_t n, struct policy *p, struct sbx_err *e)
{
	sbx_err_clear(e);
	return policy_parse(b, n, p, e);
}

static int parse_str(const char *s, struct policy *p, struct sbx_err *e)
{
	return parse_bytes(s, strlen(s), p, e);
}

static int is_zero(const void *b, size_t n)
{
	const unsigned char *c = b;

	for (size_t i = 0; i < n; i++)
		if (c[i] != 0)
			return 0;
	return 1;
}

/* A clean failure: the code, one line naming what is wrong, nothing kept. */
static int failed_cleanly(int r, const struct policy *p, const struct sbx_err *e)
{
	return r < 0 && e->code == r && e->msg[0] != '\0' && strchr(e->msg, '\n') == NULL &&
	       is_zero(p, sizeof *p);
}

static void expect_fail(const char *what, const char *in, size_t len, int code,
                        const char *needle)
{
	struct policy p;
	struct sbx_err e;
	int r = parse_bytes(in, len, &p, &e);
	char label[600];

	snprintf(label, sizeof label, "refused: %s (%s)", what, e.msg);
	CHECK_MSG(r == code && failed_cleanly(r, &p, &e) && strstr(e.msg, needle) != NULL,
	          label);
	if (strstr(e.msg, needle) == NULL)
		printf("# expected \"%s\" in \"%s\"\n", needle, e.msg);
}

static void expect_fail_str(const char *what, const char *in, int code, const char *needle)
{
	expect_fail(what, in, strlen(in), code, needle);
}

static void expect_ok(const char *what, const char *in)
{
	struct policy p;
	struct sbx_err e;
	int r = parse_str(in, &p, &e);
	char label[600];

	snprintf(label, sizeof label, "accepted: %s%s%s", what, r ? " -- " : "", e.msg);
	CHECK_MSG(r == 0, label);
}

static void sha256_evp(const void *b, size_t n, uint8_t out[32])
{
	unsigned int len = 0;

	if (EVP_Digest(b, n, out, &len, EVP_sha256(), NULL) != 1 || len != 32)
		memset(out, 0, 32);
}

static void test_default(void)
{
	const char *t = policy_default_text();
	struct policy p;
	struct sbx_err e;
	uint8_t want[32];
	char hex[65];
	const struct policy_purpose *ci, *pr, *co;

	CHECK(parse_str(t, &p, &e) == 0);
	CHECK(p.version == 1);
	CHECK(strcmp(p.name, "denver-2026") == 0);
	CHECK(p.retention_days == 21);
	CHECK(p.hold_max_days == 90);
	CHECK(p.n_roles == 2 && strcmp(p.roles[0], "court") == 0 &&
	      strcmp(p.roles[1], "prosecutor") == 0);
	CHECK(p.n_purposes == 3);
	ci = policy_find_purpose(&p, "criminal-investigation");
	pr = policy_find_purpose(&p, "prosecution");
	co = policy_find_purpose(&p, "court-order");
	CHECK(ci != NULL && ci->roles_mask == 2u);
	CHECK(pr != NULL && pr->roles_mask == 2u);
	CHECK(co != NULL && co->roles_mask == 3u);

	sha256_evp(t, strlen(t), want);
	CHECK_MSG(memcmp(p.hash, want, 32) == 0, "default hash is SHA-256 of its bytes");
	hash_hex(p.hash, 32, hex);
	CHECK_MSG(strcmp(hex, default_sha256) == 0, "default hash is the pinned value");
}

static void test_example_file(void)
{
	const char *top = getenv("SBX_TOP");
	const char *t = policy_default_text();
	char path[4096], buf[POLICY_MAX_BYTES + 1];
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof path, "%s/docs/examples/policy-denver.conf",
	         top != NULL ? top : ".");
	f = fopen(path, "rb");
	if (f != NULL) {
		n = fread(buf, 1, sizeof buf, f);
		fclose(f);
	}
	CHECK_MSG(f != NULL && n == strlen(t) && memcmp(buf, t, n) == 0,
	          "docs/examples/policy-denver.conf is byte-identical to the default");
}

/* Same rules, different bytes: a different hash, because the hash binds bytes. */
static void test_hash_binds_bytes(void)
{
	const char *a = V BASE P;
	const char *b = V BASE P "# a comment changes the bytes\n";
	const char *c = V "name=t\nroles=court,prosecutor\npurpose=prosecution\n";
	struct policy pa, pb, pc;
	struct sbx_err e;
	uint8_t want[32];

	CHECK(parse_str(a, &pa, &e) == 0);
	CHECK(parse_str(b, &pb, &e) == 0);
	CHECK(parse_str(c, &pc, &e) == 0);
	CHECK_MSG(memcmp(pa.hash, pb.hash, 32) != 0, "a comment changes the hash");
	CHECK_MSG(memcmp(pa.hash, pc.hash, 32) != 0, "spacing changes the hash");
	CHECK(pa.n_purposes == pb.n_purposes && pa.n_purposes == pc.n_purposes);
	sha256_evp(b, strlen(b), want);
	CHECK(memcmp(pb.hash, want, 32) == 0);
	CHECK_MSG(pa.retention_days == 21 && pa.hold_max_days == 90,
	          "retention_days and hold_max_days default to 21 and 90");
	CHECK_MSG(pa.purposes[0].roles_mask == 3u, "a purpose without roles= allows every role");
}

static void test_accepts(void)
{
	char buf[POLICY_MAX_BYTES + 64];
	size_t n;

	expect_ok("comments and blank lines before the version", "# hi\n\n  # x\n" V BASE P);
	expect_ok("tabs and spaces around '='", "sealbox-policy\t=\t1\t\n name =  t  \n"
	          "roles=court\npurpose =\tx roles = court\n");
	expect_ok("purpose before roles", V "name = t\npurpose = x roles=prosecutor\n"
	          "roles = prosecutor\n");
	expect_ok("bounds 1 and 3650", V BASE "retention_days = 1\nhold_max_days = 3650\n" P);
	expect_ok("UTF-8 name", V "name = Ciudad de Méjico\nroles = court\n" P);
	expect_ok("64-byte code", V BASE "purpose = "
	          "abcdefghijklmnopqrstuvwxyz-0123456789-abcdefghijklmnopqrstuvwxyz\n");

	/* The longest line, and the largest file, that are still allowed. */
	n = (size_t)snprintf(buf, sizeof buf, V BASE P "#");
	memset(buf + n, 'x', POLICY_MAX_LINE - 1);
	n += POLICY_MAX_LINE - 1;
	buf[n++] = '\n';
	buf[n] = '\0';
	expect_ok("a 1024-byte line", buf);
	buf[n - 1] = 'x';
	buf[n++] = '\n';
	buf[n] = '\0';
	expect_fail_str("a 1025-byte line", buf, SBX_EFORMAT, "line 5: longer than 1024");

	n = (size_t)snprintf(buf, sizeof buf, V BASE P);
	while (n < POLICY_MAX_BYTES) {
		size_t room = POLICY_MAX_BYTES - n, line = room > 1000 ? 1000 : room;

		buf[n] = '#';
		memset(buf + n + 1, 'y', line - 1);
		buf[n + line - 1] = '\n';
		n += line;
	}
	buf[n] = '\0';
	CHECK(n == POLICY_MAX_BYTES);
	expect_ok("exactly POLICY_MAX_BYTES", buf);
	buf[n - 1] = 'y';
	buf[n] = '\n';
	expect_fail("POLICY_MAX_BYTES + 1", buf, n + 1, SBX_EFORMAT, "the limit is 65536");
}

static void test_rejects(void)
{
	char buf[256];

	/* Version line. */
	expect_fail_str("missing version line", "name = t\nroles = court\n" P,
	                SBX_EFORMAT, "line 1: the first setting must be 'sealbox-policy = 1'");
	expect_fail_str("only comments", "# nothing\n\n", SBX_EFORMAT,
	                "line 2 (end of file): no 'sealbox-policy = 1'");
	expect_fail_str("version 2", "sealbox-policy = 2\n" BASE P, SBX_EFORMAT,
	                "line 1: unsupported policy version 2");
	expect_fail_str("version 0", "sealbox-policy = 0\n" BASE P, SBX_EFORMAT,
	                "unsupported policy version 0");
	expect_fail_str("version 1.0", "sealbox-policy = 1.0\n" BASE P, SBX_EFORMAT,
	                "line 1: malformed version");
	expect_fail_str("version 01", "sealbox-policy = 01\n" BASE P, SBX_EFORMAT,
	                "malformed version");
	expect_fail_str("huge version", "sealbox-policy = 99999999999999999999\n" BASE P,
	                SBX_EFORMAT, "malformed version");
	expect_fail_str("duplicate version", V V BASE P, SBX_EFORMAT,
	                "line 2: duplicate 'sealbox-policy' (first on line 1)");

	/* Keys. */
	expect_fail_str("unknown key", V BASE "colour = red\n" P, SBX_EFORMAT,
	                "line 4: unknown key 'colour'");
	expect_fail_str("upper-case key", V "Name = t\n", SBX_EFORMAT,
	                "line 2: unknown key 'Name'");
	expect_fail_str("no '='", V BASE "purpose prosecution\n", SBX_EFORMAT,
	                "line 4: expected 'key = value'");
	expect_fail_str("empty value", V "name =\n", SBX_EFORMAT, "line 2: 'name' has no value");
	expect_fail_str("duplicate name", V BASE "name = u\n" P, SBX_EFORMAT,
	                "line 4: duplicate 'name' (first on line 2)");
	expect_fail_str("duplicate retention_days",
	                V BASE "retention_days = 21\nretention_days = 21\n" P, SBX_EFORMAT,
	                "line 5: duplicate 'retention_days' (first on line 4)");
	expect_fail_str("duplicate hold_max_days",
	                V BASE "hold_max_days = 90\nhold_max_days = 30\n" P, SBX_EFORMAT,
	                "duplicate 'hold_max_days'");
	expect_fail_str("duplicate roles", V BASE "roles = court\n" P, SBX_EFORMAT,
	                "line 4: duplicate 'roles' (first on line 3)");
	expect_fail_str("missing name", V "roles = court\n" P, SBX_EFORMAT, "no 'name' line");
	expect_fail_str("missing roles", V "name = t\n" P, SBX_EFORMAT, "no 'roles' line");
	expect_fail_str("empty allowlist", V BASE, SBX_EFORMAT,
	                "line 3 (end of file): the purpose allowlist is empty");

	/* Numbers. */
	expect_fail_str("retention_days 0", V BASE "retention_days = 0\n" P, SBX_EFORMAT,
	                "line 4: retention_days must be a whole number of days from 1 to 3650");
	expect_fail_str("retention_days 3651", V BASE "retention_days = 3651\n" P,
	                SBX_EFORMAT, "(got '3651')");
	expect_fail_str("retention_days -1", V BASE "retention_days = -1\n" P, SBX_EFORMAT,
	                "(got '-1')");
	expect_fail_str("retention_days 021", V BASE "retention_days = 021\n" P, SBX_EFORMAT,
	                "(got '021')");
	expect_fail_str("retention_days 21d", V BASE "retention_days = 21d\n" P, SBX_EFORMAT,
	                "retention_days must be");
	expect_fail_str("retention_days +21", V BASE "retention_days = +21\n" P, SBX_EFORMAT,
	                "retention_days must be");
	expect_fail_str("retention_days 2^32+21", V BASE "retention_days = 4294967317\n" P,
	                SBX_EFORMAT, "retention_days must be");
	expect_fail_str("hold_max_days 0", V BASE "hold_max_days = 0\n" P, SBX_EFORMAT,
	                "line 4: hold_max_days must be");
	expect_fail_str("hold_max_days 3651", V BASE "hold_max_days = 3651\n" P, SBX_EFORMAT,
	                "hold_max_days must be");

	/* Name. */
	snprintf(buf, sizeof buf, V "name = %0128d\nroles = court\n" P, 0);
	expect_fail_str("128-byte name", buf, SBX_EFORMAT, "line 2: name is longer than 127");
	snprintf(buf, sizeof buf, V "name = %0127d\nroles = court\n" P, 0);
	expect_ok("127-byte name", buf);
	expect_fail_str("tab in name", V "name = a\tb\nroles = court\n" P, SBX_EFORMAT,
	                "line 2: tab in name");

	/* Roles. */
	expect_fail_str("federal role", V "name = t\nroles = court, federal\n" P, SBX_EPOLICY,
	                "line 3: role 'federal' is not allowed");
	expect_fail_str("federal role alone", V "name = t\nroles = federal\n" P, SBX_EPOLICY,
	                "there is never a federal role");
	expect_fail_str("police role", V "name = t\nroles = police\n" P, SBX_EPOLICY,
	                "role 'police' is not allowed");
	expect_fail_str("federal in a purpose", V BASE "purpose = x roles=court,federal\n",
	                SBX_EPOLICY, "line 4: role 'federal' is not allowed");
	expect_fail_str("upper-case role", V "name = t\nroles = Court\n" P, SBX_EFORMAT,
	                "line 3: malformed role 'Court'");
	expect_fail_str("role twice", V "name = t\nroles = court, court\n" P, SBX_EFORMAT,
	                "role 'court' listed twice");
	expect_fail_str("empty role", V "name = t\nroles = court,,prosecutor\n" P,
	                SBX_EFORMAT, "line 3: empty role");
	expect_fail_str("trailing comma", V "name = t\nroles = court,\n" P, SBX_EFORMAT,
	                "empty role");
	expect_fail_str("roles separated by space", V "name = t\nroles = court prosecutor\n" P,
	                SBX_EFORMAT, "malformed role 'court prosecutor'");
	expect_fail_str("undeclared role in purpose",
	                V "name = t\nroles = court\npurpose = x\npurpose = y roles=prosecutor\n",
	                SBX_EFORMAT, "line 5: purpose 'y' names role 'prosecutor', which "
	                "'roles' (line 3) does not declare");

	/* Purposes. */
	expect_fail_str("duplicate purpose", V BASE P "purpose = x\n" P, SBX_EFORMAT,
	                "line 6: duplicate purpose 'prosecution' (first on line 4)");
	expect_fail_str("upper-case purpose", V BASE "purpose = Prosecution\n", SBX_EFORMAT,
	                "line 4: malformed purpose code 'Prosecution'");
	expect_fail_str("underscore in purpose", V BASE "purpose = court_order\n",
	                SBX_EFORMAT, "malformed purpose code");
	expect_fail_str("65-byte code", V BASE "purpose = "
	                "abcdefghijklmnopqrstuvwxyz-0123456789-abcdefghijklmnopqrstuvwxyz0\n",
	                SBX_EFORMAT, "malformed purpose code");
	expect_fail_str("unicode hyphen", V BASE "purpose = court\xe2\x80\x90order\n",
	                SBX_EFORMAT, "malformed purpose code 'court\\xe2\\x80\\x90order'");
	expect_fail_str("text after purpose", V BASE "purpose = x for-ever\n", SBX_EFORMAT,
	                "line 4: unexpected text after purpose 'x'");
	expect_fail_str("roles without '='", V BASE "purpose = x roles court\n", SBX_EFORMAT,
	                "unexpected text after purpose");
	expect_fail_str("empty roles=", V BASE "purpose = x roles=\n", SBX_EFORMAT,
	                "line 4: empty role");
	expect_fail_str("rolesx=", V BASE "purpose = x rolesx=court\n", SBX_EFORMAT,
	                "unexpected text after purpose");

	/* Bytes. */
	expect_fail("empty file", "", 0, SBX_EFORMAT, "policy is empty");
	expect_fail("NUL byte", V BASE "purpose = a\0b\n", sizeof(V BASE "purpose = a\0b\n") - 1,
	            SBX_EFORMAT, "line 4: NUL byte");
	expect_fail_str("CRLF", V "name = t\r\nroles = court\n" P, SBX_EFORMAT,
	                "line 2: carriage return: policy files use LF line endings only");
	expect_fail_str("CRLF on the version line", "sealbox-policy = 1\r\n" BASE P,
	                SBX_EFORMAT, "line 1: carriage return");
	expect_fail_str("lone CR", V BASE "# a\rb\n" P, SBX_EFORMAT, "carriage return");
	expect_fail_str("no final newline", V BASE "purpose = prosecution", SBX_EFORMAT,
	                "line 4: last line has no newline");
	expect_fail_str("byte 0xff", V BASE "# \xff\n" P, SBX_EFORMAT,
	                "line 4: invalid UTF-8 at byte 3");
	expect_fail_str("overlong '/'", V BASE "# \xc0\xaf\n" P, SBX_EFORMAT, "invalid UTF-8");
	expect_fail_str("overlong 3-byte", V BASE "# \xe0\x80\xaf\n" P, SBX_EFORMAT,
	                "invalid UTF-8");
	expect_fail_str("surrogate", V BASE "# \xed\xa0\x80\n" P, SBX_EFORMAT, "invalid UTF-8");
	expect_fail_str("above U+10FFFF", V BASE "# \xf4\x90\x80\x80\n" P, SBX_EFORMAT,
	                "invalid UTF-8");
	expect_fail_str("truncated sequence", V BASE "# \xe2\x82\n" P, SBX_EFORMAT,
	                "invalid UTF-8");
	expect_fail_str("lone continuation", V BASE "# \x80\n" P, SBX_EFORMAT, "invalid UTF-8");
	expect_fail_str("sequence cut by end of file", V BASE P "#\xe2", SBX_EFORMAT,
	                "invalid UTF-8");
	expect_fail_str("escape character", V BASE "# \x1b[2J\n" P, SBX_EFORMAT,
	                "line 4: control character 0x1b");
	expect_fail_str("DEL", V BASE "# \x7f\n" P, SBX_EFORMAT, "control character 0x7f");
	expect_fail_str("C1 control U+009B", V BASE "# \xc2\x9b\n" P, SBX_EFORMAT,
	                "control character U+009B");
	expect_fail_str("byte-order mark", "\xef\xbb\xbf" V BASE P, SBX_EFORMAT,
	                "line 1: invisible or direction-changing character U+FEFF");
	expect_fail_str("right-to-left override", V BASE "# \xe2\x80\xae\n" P, SBX_EFORMAT,
	                "U+202E");
	expect_fail_str("line separator", V BASE "# \xe2\x80\xa8\n" P, SBX_EFORMAT, "U+2028");

	expect_ok("valid UTF-8 in a comment", V BASE "# caf\xc3\xa9 \xf0\x9f\x9a\x93\n" P);
}

/* The i-th case mask to try over `letters` letters: every mask when there
 * are at most 12 letters; otherwise all-lower, all-upper, each single
 * letter up, each single letter down, then pseudo-random masks. */
static unsigned long case_mask(size_t i, size_t letters, unsigned long *rng)
{
	unsigned long all = letters >= 64 ? ~0ul : (1ul << letters) - 1;

	if (letters <= 12)
		return i;
	if (i == 0)
		return 0;
	if (i == 1)
		return all;
	if (i < 2 + letters)
		return 1ul << (i - 2);
	if (i < 2 + 2 * letters)
		return all & ~(1ul << (i - 2 - letters));
	*rng ^= *rng << 13;
	*rng ^= *rng >> 7;
	*rng ^= *rng << 17;
	return (*rng & all) | 1;        /* never all-lower again */
}

/* Every upper/lower-case spelling of `code` (or 4096 of them): lower-case is
 * forbidden by law, every other spelling is malformed; none is allowed. */
static void case_variants(const char *code)
{
	size_t n = strlen(code), letters = 0, pos[64], tries;
	unsigned long rng = 0x9e3779b97f4a7c15ul, bad_file = 0, bad_check = 0;
	struct policy def, p;
	struct sbx_err e;
	char label[200];

	CHECK(parse_str(policy_default_text(), &def, &e) == 0);
	for (size_t i = 0; i < n && letters < 64; i++)
		if (code[i] >= 'a' && code[i] <= 'z')
			pos[letters++] = i;
	tries = letters <= 12 ? (size_t)1 << letters : 4096;
	for (size_t i = 0; i < tries; i++) {
		unsigned long m = case_mask(i, letters, &rng);
		char v[65], file[256];
		int r;

		memcpy(v, code, n + 1);
		for (size_t b = 0; b < letters; b++)
			if (m >> b & 1)
				v[pos[b]] -= 'a' - 'A';
		snprintf(file, sizeof file, V BASE P "purpose = %s\n", v);
		r = parse_str(file, &p, &e);
		if (r == 0 || !failed_cleanly(r, &p, &e) ||
		    (m == 0 ? r != SBX_EPOLICY || strstr(e.msg, "is forbidden") == NULL
		            : r != SBX_EFORMAT || strstr(e.msg, "malformed purpose") == NULL))
			bad_file++;
		sbx_err_clear(&e);
		r = policy_check_purpose(&def, v, &e);
		if (r != SBX_EPOLICY ||
		    strstr(e.msg, m == 0 ? "is forbidden" : "is malformed") == NULL)
			bad_check++;
		sbx_err_clear(&e);
		if (policy_check_release(&def, v, "court", &e) != SBX_EPOLICY ||
		    policy_check_release(&def, v, "prosecutor", &e) != SBX_EPOLICY)
			bad_check++;
	}
	snprintf(label, sizeof label, "'%s': %zu spellings refused in the file", code, tries);
	CHECK_MSG(bad_file == 0, label);
	snprintf(label, sizeof label, "'%s': %zu spellings refused by the checks", code, tries);
	CHECK_MSG(bad_check == 0, label);
}

static void test_forbidden(void)
{
	static const char *const want[] = {
		"civil-immigration-enforcement", "reproductive-health-investigation",
		"commercial", "ai-training"
	};
	static const char *const aliases[] = {
		"immigration-enforcement", "civil-immigration", "deportation",
		"abortion-investigation", "reproductive-health", "commercial-use",
		"ai-model-training", "ai", "ai-training-2", "training-ai",
		"civil-immigration-enforcement-support", "immigrant-tracking",
	};
	struct policy def;
	struct sbx_err e;
	size_t n = 0;
	char file[256];

	while (policy_forbidden[n] != NULL)
		n++;
	CHECK(n == 4);
	for (size_t i = 0; i < 4 && i < n; i++)
		CHECK_MSG(strcmp(policy_forbidden[i], want[i]) == 0, want[i]);

	CHECK(parse_str(policy_default_text(), &def, &e) == 0);
	snprintf(file, sizeof file, V BASE "purpose = civil-immigration-enforcement\n");
	expect_fail_str("civil-immigration-enforcement in the file", file, SBX_EPOLICY,
	                "line 4: purpose 'civil-immigration-enforcement' is forbidden by law "
	                "(C.R.S. 24-74");
	snprintf(file, sizeof file, V BASE P "purpose = reproductive-health-investigation\n");
	expect_fail_str("reproductive-health-investigation in the file", file, SBX_EPOLICY,
	                "line 5: purpose 'reproductive-health-investigation' is forbidden by "
	                "law (SB 23-188");
	snprintf(file, sizeof file, V BASE "purpose = commercial roles=court\n" P);
	expect_fail_str("commercial in the file", file, SBX_EPOLICY, "no policy can allow it");
	snprintf(file, sizeof file, V BASE "purpose = ai-training\n" P);
	expect_fail_str("ai-training in the file", file, SBX_EPOLICY,
	                "'ai-training' is forbidden by the city's LPR terms");

	sbx_err_clear(&e);
	CHECK(policy_check_purpose(&def, "civil-immigration-enforcement", &e) == SBX_EPOLICY);
	CHECK_MSG(strcmp(e.msg, "purpose 'civil-immigration-enforcement' is forbidden by law "
	                 "(C.R.S. 24-74, as amended by SB 25-276: no use for civil "
	                 "immigration enforcement)") == 0, e.msg);
	sbx_err_clear(&e);
	CHECK(policy_check_purpose(&def, "reproductive-health-investigation", &e) ==
	      SBX_EPOLICY && strstr(e.msg, "forbidden by law (SB 23-188 and SB 25-129") != NULL);
	for (size_t i = 0; i < n; i++) {
		CHECK_MSG(policy_forbidden_reason(policy_forbidden[i]) != NULL, policy_forbidden[i]);
		case_variants(policy_forbidden[i]);
	}
	for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
		char label[700];
		int r1, r2;

		snprintf(file, sizeof file, V BASE P "purpose = %s\n", aliases[i]);
		{
			struct policy p;

			r1 = parse_str(file, &p, &e);
		}
		sbx_err_clear(&e);
		r2 = policy_check_purpose(&def, aliases[i], &e);
		snprintf(label, sizeof label, "alias '%s' forbidden in file and check (%s)",
		         aliases[i], e.msg);
		CHECK_MSG(r1 == SBX_EPOLICY && r2 == SBX_EPOLICY &&
		          strstr(e.msg, "which is forbidden") != NULL, label);
	}
	/* Words merely containing a forbidden word are not aliases. */
	CHECK(policy_forbidden_reason("maintenance") == NULL);
	CHECK(policy_forbidden_reason("aid-request") == NULL);
	CHECK(policy_forbidden_reason("criminal-investigation") == NULL);
	CHECK(policy_forbidden_reason("Commercial") == NULL);   /* malformed, not a code */
}

static void test_checks(void)
{
	struct policy def, onlycourt;
	struct sbx_err e;
	char big[300];

	CHECK(parse_str(policy_default_text(), &def, &e) == 0);
	CHECK(parse_str(V "name = c\nroles = court\npurpose = court-order\n", &onlycourt, &e)
	      == 0);

	sbx_err_clear(&e);
	CHECK(policy_check_purpose(&def, "criminal-investigation", &e) == 0 && e.code == 0);
	CHECK(policy_check_purpose(&def, "prosecution", &e) == 0);
	CHECK(policy_check_purpose(&def, "court-order", &e) == 0);
	CHECK(policy_check_purpose(&def, "traffic-enforcement", &e) == SBX_EPOLICY);
	CHECK_MSG(strcmp(e.msg, "purpose 'traffic-enforcement' is not in the policy's "
	                 "allowlist") == 0, e.msg);
	sbx_err_clear(&e);
	CHECK(policy_check_purpose(&def, "", &e) == SBX_EPOLICY &&
	      strstr(e.msg, "purpose '' is malformed") != NULL);
	sbx_err_clear(&e);
	CHECK(policy_check_purpose(&def, "Prosecution", &e) == SBX_EPOLICY &&
	      strstr(e.msg, "is malformed") != NULL);
	sbx_err_clear(&e);
	CHECK(policy_check_purpose(&def, "prosecution\n", &e) == SBX_EPOLICY &&
	      strstr(e.msg, "'prosecution\\x0a' is malformed") != NULL &&
	      strchr(e.msg, '\n') == NULL);
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	sbx_err_clear(&e);
	CHECK_MSG(policy_check_purpose(&def, big, &e) == SBX_EPOLICY &&
	          strstr(e.msg, "...' is malformed") != NULL, "overlong code refused, shown cut");
	sbx_err_clear(&e);
	CHECK(policy_check_purpose(&def, NULL, &e) == SBX_EINVAL);
	sbx_err_clear(&e);
	CHECK(policy_check_purpose(NULL, "prosecution", &e) == SBX_EINVAL);

	sbx_err_clear(&e);
	CHECK(policy_check_release(&def, "criminal-investigation", "prosecutor", &e) == 0);
	CHECK(policy_check_release(&def, "prosecution", "prosecutor", &e) == 0);
	CHECK(policy_check_release(&def, "court-order", "court", &e) == 0);
	CHECK(policy_check_release(&def, "court-order", "prosecutor", &e) == 0);
	CHECK(e.code == 0);
	CHECK(policy_check_release(&def, "criminal-investigation", "court", &e) == SBX_EPOLICY);
	CHECK_MSG(strcmp(e.msg, "purpose 'criminal-investigation' does not allow release to "
	                 "role 'court' (allowed: prosecutor)") == 0, e.msg);
	sbx_err_clear(&e);
	CHECK(policy_check_release(&def, "court-order", "federal", &e) == SBX_EPOLICY &&
	      strstr(e.msg, "role 'federal' may never receive evidence") != NULL);
	sbx_err_clear(&e);
	CHECK(policy_check_release(&def, "court-order", "Court", &e) == SBX_EPOLICY &&
	      strstr(e.msg, "role 'Court' is malformed") != NULL);
	sbx_err_clear(&e);
	CHECK(policy_check_release(&def, "court-order", NULL, &e) == SBX_EINVAL);
	sbx_err_clear(&e);
	CHECK(policy_check_release(&def, "ai-training", "court", &e) == SBX_EPOLICY &&
	      strstr(e.msg, "forbidden") != NULL);
	sbx_err_clear(&e);
	CHECK(policy_check_release(&def, "unknown-purpose", "court", &e) == SBX_EPOLICY &&
	      strstr(e.msg, "not in the policy's allowlist") != NULL);
	sbx_err_clear(&e);
	CHECK(policy_check_release(&onlycourt, "court-order", "court", &e) == 0);
	CHECK(policy_check_release(&onlycourt, "court-order", "prosecutor", &e) == SBX_EPOLICY &&
	      strcmp(e.msg, "role 'prosecutor' is not enabled by the policy") == 0);

	CHECK(policy_role_known(&def, "court") == 1);
	CHECK(policy_role_known(&def, "prosecutor") == 1);
	CHECK(policy_role_known(&def, "federal") == 0);
	CHECK(policy_role_known(&onlycourt, "prosecutor") == 0);
	CHECK(policy_role_known(&def, NULL) == 0);
	CHECK(policy_role_known(NULL, "court") == 0);
	CHECK(policy_code_valid("a") && policy_code_valid("0-9") && !policy_code_valid("") &&
	      !policy_code_valid(NULL) && !policy_code_valid("a b") && !policy_code_valid("A"));
}

/* Every prefix of the default: a valid policy whose rules are a subset of
 * the full one, or a clean failure.  Only cuts after a newline parse. */
static void test_truncation(void)
{
	const char *t = policy_default_text();
	size_t len = strlen(t), parsed = 0, bad = 0;
	struct policy full;
	struct sbx_err e;
	char label[120];

	CHECK(parse_str(t, &full, &e) == 0);
	for (size_t n = 0; n <= len; n++) {
		struct policy p;
		uint8_t want[32];
		char *copy = malloc(n ? n : 1);   /* exact size, so ASan sees over-reads */
		int r;

		if (copy == NULL) {
			bad++;
			continue;
		}
		memcpy(copy, t, n);
		r = parse_bytes(copy, n, &p, &e);
		if (r == 0) {
			parsed++;
			sha256_evp(copy, n, want);
			if (t[n - 1] != '\n' || memcmp(p.hash, want, 32) != 0 ||
			    p.n_purposes == 0 || p.n_purposes > full.n_purposes ||
			    p.retention_days != 21 || p.hold_max_days != 90)
				bad++;
			for (size_t i = 0; i < p.n_purposes; i++) {
				const struct policy_purpose *f = policy_find_purpose(&full,
				                                                 p.purposes[i].code);

				if (f == NULL || f->roles_mask != p.purposes[i].roles_mask)
					bad++;
			}
		} else if (!failed_cleanly(r, &p, &e)) {
			bad++;
		}
		free(copy);
	}
	snprintf(label, sizeof label, "%zu truncations: %zu parse (at line ends), the rest "
	         "fail cleanly", len + 1, parsed);
	CHECK_MSG(bad == 0 && parsed == 3, label);
}

static void test_hostile(void)
{
	const char *t = policy_default_text();
	size_t len = strlen(t), bad_nul = 0, bad_ff = 0;
	size_t cap = 2u << 20, n;
	char *buf = malloc(cap);
	struct policy p;
	struct sbx_err e;
	int r;

	if (!CHECK(buf != NULL))
		return;
	/* One NUL, or one 0xff, anywhere in the default: always refused. */
	for (size_t i = 0; i < len; i++) {
		memcpy(buf, t, len);
		buf[i] = '\0';
		r = parse_bytes(buf, len, &p, &e);
		if (r != SBX_EFORMAT || !failed_cleanly(r, &p, &e) || !strstr(e.msg, "NUL byte"))
			bad_nul++;
		buf[i] = (char)0xff;
		r = parse_bytes(buf, len, &p, &e);
		if (r != SBX_EFORMAT || !failed_cleanly(r, &p, &e) || !strstr(e.msg, "UTF-8"))
			bad_ff++;
	}
	CHECK_MSG(bad_nul == 0, "a NUL at any offset of the default is refused");
	CHECK_MSG(bad_ff == 0, "a 0xff at any offset of the default is refused");

	/* 1 MiB of otherwise valid policy. */
	n = (size_t)snprintf(buf, cap, V BASE P);
	while (n + 100 < (1u << 20)) {
		memcpy(buf + n, "# padding padding padding padding padding padding padding\n", 58);
		n += 58;
	}
	expect_fail("1 MiB input", buf, 1u << 20, SBX_EFORMAT, "policy is 1048576 bytes");

	/* 10,000 purposes: over the size cap before the count cap. */
	n = (size_t)snprintf(buf, cap, V BASE);
	for (int i = 0; i < 10000; i++)
		n += (size_t)snprintf(buf + n, cap - n, "purpose = p%d\n", i);
	expect_fail("10,000 purposes", buf, n, SBX_EFORMAT, "the limit is 65536");
	/* 65 purposes fit in the size cap: the count cap names the line. */
	n = (size_t)snprintf(buf, cap, V BASE);
	for (int i = 0; i < 65; i++)
		n += (size_t)snprintf(buf + n, cap - n, "purpose = p%d\n", i);
	expect_fail("65 purposes", buf, n, SBX_EFORMAT, "line 68: more than 64 purposes");
	n = (size_t)snprintf(buf, cap, V BASE);
	for (int i = 0; i < 64; i++)
		n += (size_t)snprintf(buf + n, cap - n, "purpose = p%d\n", i);
	r = parse_bytes(buf, n, &p, &e);
	CHECK_MSG(r == 0 && p.n_purposes == 64, "64 purposes accepted");

	/* 60,000 one-byte lines and a megabyte of newlines. */
	memset(buf, '\n', 60000);
	expect_fail("60,000 empty lines", buf, 60000, SBX_EFORMAT,
	            "line 60000 (end of file): no 'sealbox-policy");
	memset(buf, '\n', 1u << 20);
	expect_fail("1 MiB of newlines", buf, 1u << 20, SBX_EFORMAT, "the limit is 65536");
	memset(buf, 'a', 60000);
	expect_fail("one 60,000-byte line", buf, 60000, SBX_EFORMAT, "line 1: longer than 1024");
	free(buf);

	sbx_err_clear(&e);
	CHECK(policy_parse(NULL, 5, &p, &e) == SBX_EINVAL);
	sbx_err_clear(&e);
	CHECK(policy_parse((const uint8_t *)"x", 1, NULL, &e) == SBX_EINVAL);
	CHECK_MSG(policy_parse((const uint8_t *)V, strlen(V), &p, NULL) == SBX_EFORMAT,
	          "a NULL error sink is allowed");
}

int main(void)
{
	test_default();
	test_example_file();
	test_hash_binds_bytes();
	test_accepts();
	test_rejects();
	test_forbidden();
	test_checks();
	test_truncation();
	test_hostile();
	return check_done();
}

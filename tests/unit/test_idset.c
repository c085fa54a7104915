/* The id set (appliance/reads.c reads_idset): exact membership across its
 * block boundaries (65536 entries, 1 MiB of keys), keys that share a
 * prefix or differ only in length, binary keys, the key length bound, and
 * value slots that stay put while the set grows. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/reads.h"
#include "tests/unit/check.h"

#define MANY 300000     /* > 4 entry blocks, 3.6 MB of keys, many table doublings */

static void many(void)
{
	struct reads_idset *s = reads_idset_new();
	uint64_t *first = NULL, *v;
	char k[32];
	int ok = s != NULL, dup = 1, found = 1;

	for (int i = 0; ok && i < MANY; i++) {
		snprintf(k, sizeof k, "r7-%08d", i);
		ok = reads_idset_add(s, k, strlen(k), (uint64_t)i * 3) == 0;
		if (i == 0)
			first = reads_idset_find(s, k, strlen(k));
	}
	CHECK_MSG(ok && reads_idset_count(s) == MANY, "300,000 ids added");
	for (int i = 0; ok && i < MANY; i += 7) {
		snprintf(k, sizeof k, "r7-%08d", i);
		dup &= reads_idset_add(s, k, strlen(k), 0) == SBX_EEXIST;
		v = reads_idset_find(s, k, strlen(k));
		found &= v != NULL && *v == (uint64_t)i * 3;
	}
	CHECK_MSG(dup, "every id added again is a duplicate");
	CHECK_MSG(found, "every id is found with its value");
	CHECK_MSG(reads_idset_count(s) == MANY, "failed adds change nothing");
	CHECK_MSG(first != NULL && first == reads_idset_find(s, "r7-00000000", 11) && *first == 0,
	          "a value slot stays where it was while the set grows");
	CHECK(reads_idset_find(s, "r7-0000000", 10) == NULL);
	CHECK(reads_idset_find(s, "r7-000000000", 12) == NULL);
	CHECK(reads_idset_find(s, "r7-00300000", 11) == NULL);
	reads_idset_free(s);
}

static void shapes(void)
{
	struct reads_idset *s = reads_idset_new();
	const size_t big = 65536;
	char *key = malloc(big + 1);
	static const char bin1[] = { 'a', 0, 'b' }, bin2[] = { 'a', 0, 'c' };
	int ok = 1;

	if (!CHECK(s != NULL && key != NULL))
		goto out;
	CHECK(reads_idset_add(s, "", 0, 1) == 0);
	CHECK(reads_idset_add(s, "", 0, 2) == SBX_EEXIST);
	CHECK(reads_idset_add(s, "a", 1, 3) == 0 && reads_idset_add(s, "aa", 2, 4) == 0);
	CHECK(reads_idset_add(s, bin1, 3, 5) == 0 && reads_idset_add(s, bin2, 3, 6) == 0);
	CHECK(reads_idset_add(s, bin1, 3, 0) == SBX_EEXIST);
	CHECK_MSG(*reads_idset_find(s, "", 0) == 1 && *reads_idset_find(s, "a", 1) == 3 &&
	          *reads_idset_find(s, "aa", 2) == 4 && *reads_idset_find(s, bin2, 3) == 6,
	          "empty, one-byte, prefix and NUL-holding keys are told apart");
	/* Long keys: several fill an arena block and the next starts a new one. */
	for (int i = 0; i < 40 && ok; i++) {
		memset(key, 'k', big);
		key[0] = (char)('A' + i);
		ok = reads_idset_add(s, key, big - (size_t)i, (uint64_t)i) == 0;
	}
	CHECK_MSG(ok, "40 keys of ~64 KiB (2.5 MiB of keys) are added");
	for (int i = 0; i < 40 && ok; i++) {
		uint64_t *v;

		key[0] = (char)('A' + i);
		v = reads_idset_find(s, key, big - (size_t)i);
		ok = v != NULL && *v == (uint64_t)i && reads_idset_find(s, key, big - (size_t)i - 1) == NULL;
	}
	CHECK_MSG(ok, "each long key is found, and one byte shorter is not");
	memset(key, 'z', big + 1);
	CHECK_MSG(reads_idset_add(s, key, big + 1, 0) == SBX_EINVAL &&
	          reads_idset_find(s, key, big + 1) == NULL, "a key over 64 KiB is refused");
	CHECK(reads_idset_count(s) == 45);
out:
	free(key);
	reads_idset_free(s);
}

int main(void)
{
	many();
	shapes();
	return check_done();
}

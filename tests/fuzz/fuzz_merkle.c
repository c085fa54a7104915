/* libFuzzer harness for the Merkle proof verifiers.
 *
 * Input: flags(1) a(8, big-endian) b(8) h1(32) h2(32) proof(32 each; a
 * trailing partial element is ignored).  Each input is fed to
 *   merkle_verify_inclusion(leaf=h1, index=a, size=b, proof, root=h2)
 *   merkle_verify_consistency(m=a, n=b, root_m=h1, root_n=h2, proof)
 * and every answer is checked against an independent reference: a
 * recursive reading of RFC 9162's PATH and SUBPROOF definitions that
 * rebuilds the root(s) a proof implies (O(log n) hashes, so always cheap).
 * flags bit 0 replaces the claimed root(s) with the reference's, so that
 * valid proofs -- and then mutations of them -- are common rather than
 * needing a SHA-256 preimage; bit 1 folds a and b to 16 bits, where most
 * interesting trees are.  Any disagreement aborts.
 *
 *   clang -fsanitize=fuzzer,address,undefined -I. tests/fuzz/fuzz_merkle.c \
 *       crypto/merkle.c crypto/hash.c crypto/err.c -lcrypto -lpthread
 *   ./a.out tests/fuzz/corpus/fuzz_merkle */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "crypto/err.h"
#include "crypto/merkle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef uint8_t hash_t[32];

enum { HDR = 1 + 8 + 8 + 32 + 32, MAX_ELEMS = MERKLE_MAX_PROOF + 8 };

static void die(const char *what, uint64_t a, uint64_t b, size_t len, int got, int want)
{
	fprintf(stderr, "fuzz_merkle: %s a=%llu b=%llu len=%zu got %d want %d\n", what,
	        (unsigned long long)a, (unsigned long long)b, len, got, want);
	abort();
}

static void ref_node(const uint8_t l[32], const uint8_t r[32], uint8_t out[32])
{
	static const uint8_t one = 0x01;
	EVP_MD_CTX *x = EVP_MD_CTX_new();
	unsigned int n = 0;

	if (x == NULL || EVP_DigestInit_ex(x, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(x, &one, 1) != 1 || EVP_DigestUpdate(x, l, 32) != 1 ||
	    EVP_DigestUpdate(x, r, 32) != 1 || EVP_DigestFinal_ex(x, out, &n) != 1 || n != 32)
		abort();
	EVP_MD_CTX_free(x);
}

/* The largest power of two below n (n >= 2), by counting up. */
static uint64_t ref_k(uint64_t n)
{
	uint64_t k = 1;

	while (k * 2 < n)
		k *= 2;
	return k;
}

/* PATH(index, D[0:size]) = PATH(sub) : sibling, so read top-down the
 * siblings come off the end of the proof. */
static bool ref_incl(uint64_t index, uint64_t size, const uint8_t leaf[32],
                     const hash_t *proof, size_t *left, uint8_t out[32])
{
	hash_t sib, sub;
	uint64_t k;

	if (size == 1) {
		memcpy(out, leaf, 32);
		return true;
	}
	if (*left == 0)
		return false;
	memcpy(sib, proof[--*left], 32);
	k = ref_k(size);
	if (index < k) {
		if (!ref_incl(index, k, leaf, proof, left, sub))
			return false;
		ref_node(sub, sib, out);
	} else {
		if (!ref_incl(index - k, size - k, leaf, proof, left, sub))
			return false;
		ref_node(sib, sub, out);
	}
	return true;
}

/* SUBPROOF(m, D[0:n], b), read back into the old root (of the first m
 * leaves of this subtree) and the new root (of all of it). */
static bool ref_cons(uint64_t m, uint64_t n, bool b, const uint8_t root_m[32],
                     const hash_t *proof, size_t *left, uint8_t old[32], uint8_t new[32])
{
	hash_t sib, o, nw;
	uint64_t k;

	if (m == n) {
		if (b) {
			memcpy(old, root_m, 32);
			memcpy(new, root_m, 32);
			return true;
		}
		if (*left == 0)
			return false;
		memcpy(old, proof[--*left], 32);
		memcpy(new, old, 32);
		return true;
	}
	if (*left == 0)
		return false;
	memcpy(sib, proof[--*left], 32);
	k = ref_k(n);
	if (m <= k) {
		if (!ref_cons(m, k, b, root_m, proof, left, o, nw))
			return false;
		memcpy(old, o, 32);
		ref_node(nw, sib, new);
	} else {
		if (!ref_cons(m - k, n - k, false, root_m, proof, left, o, nw))
			return false;
		ref_node(sib, o, old);
		ref_node(sib, nw, new);
	}
	return true;
}

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void check_inclusion(bool derive, uint64_t index, uint64_t size, const uint8_t leaf[32],
                            const uint8_t claimed[32], const hash_t *proof, size_t len)
{
	hash_t root, got;
	size_t left = len;
	bool ok;
	int want, r;

	memcpy(root, claimed, 32);
	if (size > MERKLE_MAX_SIZE || index >= size || len > MERKLE_MAX_PROOF) {
		want = SBX_EINVAL;
	} else {
		ok = ref_incl(index, size, leaf, proof, &left, got) && left == 0;
		if (ok && derive)
			memcpy(root, got, 32);
		want = ok && memcmp(got, root, 32) == 0 ? 0 : SBX_EVERIFY;
	}
	r = merkle_verify_inclusion(leaf, index, size, proof, len, root);
	if (r != want)
		die("inclusion", index, size, len, r, want);
}

static void check_consistency(bool derive, uint64_t m, uint64_t n, const uint8_t h1[32],
                              const uint8_t h2[32], const hash_t *proof, size_t len)
{
	hash_t rm, rn, old, new;
	size_t left = len;
	bool ok;
	int want, r;

	memcpy(rm, h1, 32);
	memcpy(rn, h2, 32);
	if (n > MERKLE_MAX_SIZE || m == 0 || m > n || len > MERKLE_MAX_PROOF) {
		want = SBX_EINVAL;
	} else if (m == n) {
		if (derive)
			memcpy(rn, rm, 32);
		want = len == 0 && memcmp(rm, rn, 32) == 0 ? 0 : SBX_EVERIFY;
	} else {
		ok = ref_cons(m, n, true, rm, proof, &left, old, new) && left == 0;
		if (ok && derive) {
			memcpy(rm, old, 32);
			memcpy(rn, new, 32);
		}
		want = ok && memcmp(old, rm, 32) == 0 && memcmp(new, rn, 32) == 0 ?
		       0 : SBX_EVERIFY;
	}
	r = merkle_verify_consistency(m, n, rm, rn, proof, len);
	if (r != want)
		die("consistency", m, n, len, r, want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hash_t proof[MAX_ELEMS], h1, h2;
	uint64_t a, b;
	size_t len;
	bool derive;

	if (size < HDR)
		return 0;
	derive = data[0] & 1;
	a = be64(data + 1);
	b = be64(data + 9);
	if (data[0] & 2) {
		a &= 0xffff;
		b &= 0xffff;
	}
	memcpy(h1, data + 17, 32);
	memcpy(h2, data + 49, 32);
	len = (size - HDR) / 32;
	if (len > MAX_ELEMS)
		len = MAX_ELEMS;
	if (len > 0)
		memcpy(proof, data + HDR, len * 32);
	/* NULL, not a dangling pointer, for an empty proof: both are allowed. */
	check_inclusion(derive, a, b, h1, h2, len > 0 ? proof : NULL, len);
	check_consistency(derive, a, b, h1, h2, len > 0 ? proof : NULL, len);
	return 0;
}

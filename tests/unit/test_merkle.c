/* Merkle tree (RFC 9162 2.1): known answers from the Certificate
 * Transparency reference tree, a naive recursive reference implementation
 * written from the RFC's definitions (hashing with OpenSSL directly, not
 * through crypto/hash.c), exhaustive proof generation and verification for
 * small trees, mutations that must all be rejected, huge sizes near
 * MERKLE_MAX_SIZE, and the incremental frontier. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>

#include "crypto/err.h"
#include "crypto/hash.h"
#include "crypto/merkle.h"
#include "tests/unit/check.h"

typedef uint8_t hash_t[32];

/* ---- reference implementation, straight from RFC 9162 2.1 ---- */

static void ref_sha256(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                       const uint8_t *c, size_t clen, uint8_t out[32])
{
	EVP_MD_CTX *x = EVP_MD_CTX_new();
	unsigned int n = 0;

	if (x == NULL || EVP_DigestInit_ex(x, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(x, a, alen) != 1 || EVP_DigestUpdate(x, b, blen) != 1 ||
	    EVP_DigestUpdate(x, c, clen) != 1 || EVP_DigestFinal_ex(x, out, &n) != 1 ||
	    n != 32) {
		fprintf(stderr, "OpenSSL failed\n");
		abort();
	}
	EVP_MD_CTX_free(x);
}

static void ref_leaf(const uint8_t *d, size_t len, uint8_t out[32])
{
	static const uint8_t zero = 0x00;

	ref_sha256(&zero, 1, d, len, NULL, 0, out);
}

static void ref_node(const uint8_t l[32], const uint8_t r[32], uint8_t out[32])
{
	static const uint8_t one = 0x01;

	ref_sha256(&one, 1, l, 32, r, 32, out);
}

/* "the largest power of two smaller than n", found by counting up. */
static uint64_t ref_k(uint64_t n)
{
	uint64_t k = 1;

	while (k * 2 < n)
		k *= 2;
	return k;
}

/* A tree is given by its MTH over any range D[lo:lo+n].  Either explicit
 * leaves (memoised: the exhaustive loops ask for the same subtrees many
 * times), or a "virtual" tree for sizes near 2^63: every perfect subtree
 * that does not contain the spine leaf is an opaque pseudo-random value
 * (as a verifier only ever sees such subtrees whole), and everything on the
 * spine is hashed from its children exactly as MTH says. */
struct ref_tree {
	const hash_t *leaves;   /* NULL: virtual tree */
	uint64_t size;
	hash_t *memo;           /* (size+1)^2 entries, or NULL */
	uint8_t *have;
	uint64_t spine;
};

static void virtual_node(uint64_t lo, uint64_t n, uint8_t out[32])
{
	uint8_t d[16];

	for (int i = 0; i < 8; i++) {
		d[i] = (uint8_t)(lo >> (56 - 8 * i));
		d[8 + i] = (uint8_t)(n >> (56 - 8 * i));
	}
	ref_sha256((const uint8_t *)"virtual", 7, d, sizeof d, NULL, 0, out);
}

static void ref_mth(struct ref_tree *t, uint64_t lo, uint64_t n, uint8_t out[32])
{
	hash_t l, r;
	uint64_t k;

	if (t->leaves == NULL && n > 0 && (n & (n - 1)) == 0 &&
	    (n == 1 || t->spine < lo || t->spine - lo >= n)) {
		virtual_node(lo, n, out);
		return;
	}
	if (t->memo != NULL && t->have[lo * (t->size + 1) + n]) {
		memcpy(out, t->memo[lo * (t->size + 1) + n], 32);
		return;
	}
	if (n == 0) {
		ref_sha256(NULL, 0, NULL, 0, NULL, 0, out);
	} else if (n == 1) {
		memcpy(out, t->leaves[lo], 32);
	} else {
		k = ref_k(n);
		ref_mth(t, lo, k, l);
		ref_mth(t, lo + k, n - k, r);
		ref_node(l, r, out);
	}
	if (t->memo != NULL) {
		memcpy(t->memo[lo * (t->size + 1) + n], out, 32);
		t->have[lo * (t->size + 1) + n] = 1;
	}
}

/* PATH(m, D[lo:lo+n]) appended to out[*len]. */
static void ref_path(struct ref_tree *t, uint64_t m, uint64_t lo, uint64_t n,
                     hash_t *out, size_t *len)
{
	uint64_t k;

	if (n == 1)
		return;
	k = ref_k(n);
	if (m < k) {
		ref_path(t, m, lo, k, out, len);
		ref_mth(t, lo + k, n - k, out[(*len)++]);
	} else {
		ref_path(t, m - k, lo + k, n - k, out, len);
		ref_mth(t, lo, k, out[(*len)++]);
	}
}

/* SUBPROOF(m, D[lo:lo+n], b) appended to out[*len]. */
static void ref_subproof(struct ref_tree *t, uint64_t m, uint64_t lo, uint64_t n, bool b,
                         hash_t *out, size_t *len)
{
	uint64_t k;

	if (m == n) {
		if (!b)
			ref_mth(t, lo, n, out[(*len)++]);
		return;
	}
	k = ref_k(n);
	if (m <= k) {
		ref_subproof(t, m, lo, k, b, out, len);
		ref_mth(t, lo + k, n - k, out[(*len)++]);
	} else {
		ref_subproof(t, m - k, lo + k, n - k, false, out, len);
		ref_mth(t, lo, k, out[(*len)++]);
	}
}

static void ref_tree_leaves(struct ref_tree *t, const hash_t *leaves, uint64_t size, bool memo)
{
	memset(t, 0, sizeof *t);
	t->leaves = leaves;
	t->size = size;
	if (memo) {
		t->memo = calloc((size + 1) * (size + 1), sizeof *t->memo);
		t->have = calloc((size + 1) * (size + 1), 1);
		if (t->memo == NULL || t->have == NULL)
			abort();
	}
}

static void ref_tree_virtual(struct ref_tree *t, uint64_t spine)
{
	memset(t, 0, sizeof *t);
	t->spine = spine;
}

static void ref_tree_free(struct ref_tree *t)
{
	free(t->memo);
	free(t->have);
}

/* ---- helpers ---- */

static void unhex32(const char *s, uint8_t out[32])
{
	if (hash_unhex(s, out, 32) != 0)
		abort();
}

static bool proofs_equal(const hash_t *a, size_t alen, const hash_t *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen * 32) == 0);
}

static bool rejected(int r)
{
	return r == SBX_EVERIFY || r == SBX_EINVAL;
}

static const unsigned flip_bits[] = { 0, 7, 128, 255 };

/* 1 if a mutation was wrongly accepted; counts it in *tried. */
static unsigned accepted(int r, unsigned *tried)
{
	(*tried)++;
	return rejected(r) ? 0 : 1;
}

/* A proof and what it claims; each mutation below changes one thing. */
struct icase {
	const uint8_t *leaf;
	uint64_t index, size;
	const hash_t *proof;
	size_t len;
	const uint8_t *root;
};

struct ccase {
	uint64_t m, n;
	const uint8_t *rm, *rn;
	const hash_t *proof;
	size_t len;
};

static int verify_i(struct icase c)
{
	return merkle_verify_inclusion(c.leaf, c.index, c.size, c.proof, c.len, c.root);
}

static int verify_c(struct ccase c)
{
	return merkle_verify_consistency(c.m, c.n, c.rm, c.rn, c.proof, c.len);
}

/* Every mutation of a valid inclusion proof that must fail, with nbits of
 * the bit positions flipped in each element (rotating through them).
 * Returns the number of mutations accepted (0 is right); counts the tries
 * in *tried. */
static unsigned mutate_inclusion(const struct icase *good, unsigned nbits, unsigned *tried)
{
	hash_t p[MERKLE_MAX_PROOF + 1], other;
	const size_t nflip = sizeof flip_bits / sizeof flip_bits[0];
	struct icase x;
	unsigned bad = 0;

	x = *good; x.index++;       bad += accepted(verify_i(x), tried);
	x = *good; x.index--;       bad += accepted(verify_i(x), tried);
	x = *good; x.size *= 2;     bad += accepted(verify_i(x), tried);
	x = *good; x.size /= 2;     bad += accepted(verify_i(x), tried);
	memcpy(other, good->leaf, 32);
	other[31] ^= 1;
	x = *good; x.leaf = other;  bad += accepted(verify_i(x), tried);
	x = *good; x.root = other;  bad += accepted(verify_i(x), tried);
	memcpy(other, good->root, 32);
	other[0] ^= 0x80;
	x = *good; x.root = other;  bad += accepted(verify_i(x), tried);
	x = *good;
	x.proof = p;
	for (size_t i = 0; i < good->len; i++) {
		for (size_t b = 0; b < nbits; b++) {
			unsigned bit = flip_bits[(b + i) % nflip];

			memcpy(p, good->proof, good->len * 32);
			p[i][bit / 8] ^= (uint8_t)(1u << (bit % 8));
			bad += accepted(verify_i(x), tried);
		}
	}
	if (good->len < MERKLE_MAX_PROOF) {
		memcpy(p, good->proof, good->len * 32);
		memset(p[good->len], 0, 32);
		x.len = good->len + 1;
		bad += accepted(verify_i(x), tried);
		memcpy(p[good->len], good->root, 32);
		bad += accepted(verify_i(x), tried);
	}
	if (good->len > 0) {
		x = *good; x.len--;                 bad += accepted(verify_i(x), tried);
		x = *good; x.len--; x.proof++;      bad += accepted(verify_i(x), tried);
	}
	return bad;
}

/* Likewise for consistency. */
static unsigned mutate_consistency(const struct ccase *good, unsigned nbits, unsigned *tried)
{
	hash_t p[MERKLE_MAX_PROOF + 1], other;
	const size_t nflip = sizeof flip_bits / sizeof flip_bits[0];
	struct ccase x;
	unsigned bad = 0;

	x = *good; x.m++;           bad += accepted(verify_c(x), tried);
	x = *good; x.m--;           bad += accepted(verify_c(x), tried);
	x = *good; x.n *= 2;        bad += accepted(verify_c(x), tried);
	x = *good; x.n /= 2;        bad += accepted(verify_c(x), tried);
	if (memcmp(good->rm, good->rn, 32) != 0) {
		x = *good;
		x.rm = good->rn;
		x.rn = good->rm;
		bad += accepted(verify_c(x), tried);
	}
	memcpy(other, good->rm, 32);
	other[5] ^= 0x10;
	x = *good; x.rm = other;    bad += accepted(verify_c(x), tried);
	memcpy(other, good->rn, 32);
	other[5] ^= 0x10;
	x = *good; x.rn = other;    bad += accepted(verify_c(x), tried);
	x = *good;
	x.proof = p;
	for (size_t i = 0; i < good->len; i++) {
		for (size_t b = 0; b < nbits; b++) {
			unsigned bit = flip_bits[(b + i) % nflip];

			memcpy(p, good->proof, good->len * 32);
			p[i][bit / 8] ^= (uint8_t)(1u << (bit % 8));
			bad += accepted(verify_c(x), tried);
		}
	}
	if (good->len < MERKLE_MAX_PROOF) {
		memcpy(p, good->proof, good->len * 32);
		memset(p[good->len], 0, 32);
		x.len = good->len + 1;
		bad += accepted(verify_c(x), tried);
		memcpy(p[good->len], good->len > 0 ? good->proof[good->len - 1] : good->rm, 32);
		bad += accepted(verify_c(x), tried);
	}
	if (good->len > 0) {
		x = *good; x.len--;                 bad += accepted(verify_c(x), tried);
		x = *good; x.len--; x.proof++;      bad += accepted(verify_c(x), tried);
	}
	return bad;
}

/* ---- known answers: the CT reference tree ---- */

/* Inputs and per-size roots of the 8-leaf reference tree, and some of its
 * paths and consistency proofs, from google/certificate-transparency
 * cpp/merkletree/merkle_tree_test.cc (kInputs, kSHA256Roots, kSHA256Paths,
 * kSHA256Proofs; leaf numbers there are 1-based, here 0-based). */
static const struct { const char *hex; } ct_inputs[8] = {
	{ "" }, { "00" }, { "10" }, { "2021" }, { "3031" }, { "40414243" },
	{ "5051525354555657" }, { "606162636465666768696a6b6c6d6e6f" },
};
static const char *const ct_empty =
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
static const char *const ct_roots[8] = {
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};
static const struct {
	uint64_t a, b;          /* index, size  or  m, n */
	size_t len;
	const char *p[3];
} ct_paths[] = {
	{ 0, 1, 0, { NULL } },
	{ 0, 8, 3, { "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
	             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4" } },
	{ 5, 8, 3, { "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
	             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
	             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
	{ 2, 3, 1, { "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125" } },
	{ 1, 5, 3, { "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b" } },
}, ct_proofs[] = {
	{ 1, 1, 0, { NULL } },
	{ 1, 8, 3, { "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
	             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4" } },
	{ 6, 8, 3, { "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
	             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
	             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
	{ 2, 5, 2, { "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b" } },
};

static void test_known_answers(void)
{
	hash_t leaves[8], want, got, ref, kat[3], proof[MERKLE_MAX_PROOF];
	struct merkle_frontier f;
	struct ref_tree t;
	bool roots_ok = true, frontier_ok = true, ref_ok = true;
	size_t len;

	for (size_t i = 0; i < 8; i++) {
		uint8_t d[16];
		size_t dl = strlen(ct_inputs[i].hex) / 2;

		CHECK(hash_unhex(ct_inputs[i].hex, d, dl) == 0);
		CHECK(merkle_leaf_hash(d, dl, leaves[i]) == 0);
		ref_leaf(d, dl, ref);
		ref_ok &= memcmp(ref, leaves[i], 32) == 0;
	}
	CHECK_MSG(ref_ok, "leaf hashes agree with the reference");
	CHECK(merkle_leaf_hash(NULL, 0, got) == 0);
	unhex32(ct_roots[0], want);
	CHECK_MSG(memcmp(got, want, 32) == 0, "leaf hash of the empty input (NULL, 0)");
	CHECK(merkle_leaf_hash(NULL, 1, got) == SBX_EINVAL);

	unhex32(ct_empty, want);
	CHECK(merkle_root(NULL, 0, got) == 0 && memcmp(got, want, 32) == 0);
	merkle_frontier_init(&f);
	CHECK(merkle_frontier_root(&f, got) == 0 && memcmp(got, want, 32) == 0);
	ref_tree_leaves(&t, leaves, 8, false);
	for (uint64_t n = 1; n <= 8; n++) {
		unhex32(ct_roots[n - 1], want);
		roots_ok &= merkle_root(leaves, n, got) == 0 && memcmp(got, want, 32) == 0;
		frontier_ok &= merkle_frontier_append(&f, leaves[n - 1]) == 0 &&
			merkle_frontier_root(&f, got) == 0 && memcmp(got, want, 32) == 0;
		ref_mth(&t, 0, n, ref);
		ref_ok &= memcmp(ref, want, 32) == 0;
	}
	CHECK_MSG(roots_ok, "merkle_root matches the CT roots for sizes 1..8");
	CHECK_MSG(frontier_ok, "frontier matches the CT roots for sizes 1..8");
	CHECK_MSG(ref_ok, "reference MTH matches the CT roots for sizes 1..8");

	for (size_t v = 0; v < sizeof ct_paths / sizeof ct_paths[0]; v++) {
		uint64_t index = ct_paths[v].a, size = ct_paths[v].b;
		char what[96];

		for (size_t j = 0; j < ct_paths[v].len; j++)
			unhex32(ct_paths[v].p[j], kat[j]);
		snprintf(what, sizeof what, "CT inclusion vector index %llu size %llu",
		         (unsigned long long)index, (unsigned long long)size);
		CHECK_MSG(merkle_inclusion_proof(leaves, size, index, proof, &len) == 0 &&
		          proofs_equal(proof, len, kat, ct_paths[v].len), what);
		unhex32(ct_roots[size - 1], want);
		CHECK_MSG(merkle_verify_inclusion(leaves[index], index, size, kat,
		                                  ct_paths[v].len, want) == 0, what);
		len = 0;
		ref_path(&t, index, 0, size, proof, &len);
		CHECK_MSG(proofs_equal(proof, len, kat, ct_paths[v].len), "reference PATH agrees");
	}
	for (size_t v = 0; v < sizeof ct_proofs / sizeof ct_proofs[0]; v++) {
		uint64_t m = ct_proofs[v].a, n = ct_proofs[v].b;
		char what[96];

		for (size_t j = 0; j < ct_proofs[v].len; j++)
			unhex32(ct_proofs[v].p[j], kat[j]);
		snprintf(what, sizeof what, "CT consistency vector %llu -> %llu",
		         (unsigned long long)m, (unsigned long long)n);
		CHECK_MSG(merkle_consistency_proof(leaves, m, n, proof, &len) == 0 &&
		          proofs_equal(proof, len, kat, ct_proofs[v].len), what);
		unhex32(ct_roots[m - 1], ref);
		unhex32(ct_roots[n - 1], want);
		CHECK_MSG(merkle_verify_consistency(m, n, ref, want, kat, ct_proofs[v].len) == 0,
		          what);
		len = 0;
		ref_subproof(&t, m, 0, n, true, proof, &len);
		CHECK_MSG(proofs_equal(proof, len, kat, ct_proofs[v].len),
		          "reference SUBPROOF agrees");
	}
	ref_tree_free(&t);
}

/* ---- exhaustive small trees ---- */

#define NLEAVES 1000

static hash_t g_leaves[NLEAVES];

static void make_leaves(void)
{
	for (unsigned i = 0; i < NLEAVES; i++) {
		uint8_t d[4] = { (uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8),
		                 (uint8_t)i };

		ref_leaf(d, sizeof d, g_leaves[i]);
	}
}

static void test_inclusion_all(void)
{
	hash_t proof[MERKLE_MAX_PROOF], refp[MERKLE_MAX_PROOF], root, rroot;
	struct ref_tree t;
	unsigned gen_bad = 0, ver_bad = 0, mut_bad = 0, tried = 0, roots_bad = 0;
	size_t len, rlen;

	ref_tree_leaves(&t, g_leaves, 64, true);
	for (uint64_t size = 1; size <= 64; size++) {
		if (merkle_root(g_leaves, size, root) != 0)
			roots_bad++;
		ref_mth(&t, 0, size, rroot);
		roots_bad += memcmp(root, rroot, 32) != 0;
		for (uint64_t index = 0; index < size; index++) {
			rlen = 0;
			ref_path(&t, index, 0, size, refp, &rlen);
			if (merkle_inclusion_proof(g_leaves, size, index, proof, &len) != 0 ||
			    !proofs_equal(proof, len, refp, rlen))
				gen_bad++;
			if (merkle_verify_inclusion(g_leaves[index], index, size, refp, rlen,
			                            rroot) != 0)
				ver_bad++;
			mut_bad += mutate_inclusion(&(struct icase){ g_leaves[index], index,
			                            size, refp, rlen, rroot }, 4, &tried);
		}
	}
	ref_tree_free(&t);
	CHECK_MSG(roots_bad == 0, "merkle_root == reference MTH, sizes 1..64");
	CHECK_MSG(gen_bad == 0, "inclusion proofs == reference PATH, every index, sizes 1..64");
	CHECK_MSG(ver_bad == 0, "inclusion proofs verify, every index, sizes 1..64");
	printf("# %u inclusion mutations tried\n", tried);
	CHECK_MSG(tried > 20000 && mut_bad == 0,
	          "every mutated inclusion proof is rejected, sizes 1..64");
}

static void test_consistency_all(void)
{
	enum { N = 256 };
	hash_t proof[MERKLE_MAX_PROOF], refp[MERKLE_MAX_PROOF];
	static hash_t roots[N + 1];
	struct ref_tree t;
	unsigned gen_bad = 0, ver_bad = 0, mut_bad = 0, tried = 0, pairs = 0;
	size_t len, rlen;

	ref_tree_leaves(&t, g_leaves, N, true);
	for (uint64_t n = 1; n <= N; n++)
		ref_mth(&t, 0, n, roots[n]);
	for (uint64_t n = 1; n <= N; n++) {
		for (uint64_t m = 1; m <= n; m++) {
			pairs++;
			rlen = 0;
			ref_subproof(&t, m, 0, n, true, refp, &rlen);
			if (merkle_consistency_proof(g_leaves, m, n, proof, &len) != 0 ||
			    !proofs_equal(proof, len, refp, rlen))
				gen_bad++;
			if (merkle_verify_consistency(m, n, roots[m], roots[n], refp, rlen) != 0)
				ver_bad++;
			/* Every mutation of every pair up to 64 leaves; beyond, every
			 * third pair with one (rotating) bit position per element, to
			 * keep the test within seconds under sanitizers. */
			if (n <= 64 || (m + n) % 3 == 0)
				mut_bad += mutate_consistency(&(struct ccase){ m, n, roots[m],
				                              roots[n], refp, rlen },
				                              n <= 64 ? 4 : 1, &tried);
		}
	}
	ref_tree_free(&t);
	CHECK_MSG(pairs == N * (N + 1) / 2, "all pairs 1 <= m <= n <= 256 visited");
	CHECK_MSG(gen_bad == 0, "consistency proofs == reference SUBPROOF, 1 <= m <= n <= 256");
	CHECK_MSG(ver_bad == 0, "consistency proofs verify, 1 <= m <= n <= 256");
	printf("# %u consistency mutations tried\n", tried);
	CHECK_MSG(tried > 200000 && mut_bad == 0,
	          "every mutated consistency proof is rejected, 1 <= m <= n <= 256");
}

/* ---- sizes near the limit, on virtual trees ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
	/* xorshift64*: deterministic, so failures reproduce. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1du;
}

/* A size spread over every magnitude, 1..2^63. */
static uint64_t random_size(void)
{
	uint64_t shift = rng() % 64;

	return (rng() >> shift) % MERKLE_MAX_SIZE + 1;
}

static void test_huge_sizes(void)
{
	hash_t p[MERKLE_MAX_PROOF + 2], leaf, rm, rn;
	struct ref_tree t;
	unsigned ok_bad = 0, mut_bad = 0, tried = 0, len_bad = 0;
	size_t len;

	for (int i = 0; i < 200; i++) {
		uint64_t size = random_size(), index = rng() % size;

		if (i == 0) {
			size = MERKLE_MAX_SIZE;
			index = size - 1;
		}
		ref_tree_virtual(&t, index);
		len = 0;
		ref_path(&t, index, 0, size, p, &len);
		len_bad += len > MERKLE_MAX_PROOF;
		ref_mth(&t, index, 1, leaf);
		ref_mth(&t, 0, size, rn);
		ok_bad += merkle_verify_inclusion(leaf, index, size, p, len, rn) != 0;
		/* size * 2 must not overflow */
		if (size <= MERKLE_MAX_SIZE / 2)
			mut_bad += mutate_inclusion(&(struct icase){ leaf, index, size, p, len,
			                                             rn }, 2, &tried);
	}
	for (int i = 0; i < 200; i++) {
		uint64_t n = random_size(), m = rng() % n + 1;

		if (i == 0) {
			/* The longest consistency proof at the limit. */
			n = MERKLE_MAX_SIZE;
			m = n - 3;
		}
		ref_tree_virtual(&t, m - 1);
		len = 0;
		ref_subproof(&t, m, 0, n, true, p, &len);
		len_bad += len > MERKLE_MAX_PROOF;
		ref_mth(&t, 0, m, rm);
		ref_mth(&t, 0, n, rn);
		ok_bad += merkle_verify_consistency(m, n, rm, rn, p, len) != 0;
		if (i == 0)
			CHECK_MSG(len == MERKLE_MAX_PROOF,
			          "consistency proof 2^63-3 -> 2^63 has MERKLE_MAX_PROOF hashes");
		if (n <= MERKLE_MAX_SIZE / 2)
			mut_bad += mutate_consistency(&(struct ccase){ m, n, rm, rn, p, len }, 2,
			                              &tried);
	}
	CHECK_MSG(len_bad == 0, "no proof up to MERKLE_MAX_SIZE exceeds MERKLE_MAX_PROOF");
	CHECK_MSG(ok_bad == 0, "reference proofs verify at sizes up to 2^63");
	printf("# %u huge-size mutations tried\n", tried);
	CHECK_MSG(tried > 10000 && mut_bad == 0, "mutations rejected at sizes up to 2^62");
	CHECK(merkle_verify_inclusion(leaf, 0, MERKLE_MAX_SIZE + 1, p, 1, rn) == SBX_EINVAL);
	CHECK(merkle_verify_consistency(1, MERKLE_MAX_SIZE + 1, rm, rn, p, 1) == SBX_EINVAL);
	CHECK(merkle_verify_consistency(UINT64_MAX, UINT64_MAX, rm, rm, p, 0) == SBX_EINVAL);
}

/* ---- parameters and edge cases ---- */

static void test_parameters(void)
{
	hash_t p[MERKLE_MAX_PROOF + 1], root, r3, r5;
	size_t len = 99;

	memset(p, 0, sizeof p);
	CHECK(merkle_root(NULL, 1, root) == SBX_EINVAL);
	CHECK(merkle_root(g_leaves, MERKLE_MAX_SIZE + 1, root) == SBX_EINVAL);
	CHECK(merkle_inclusion_proof(g_leaves, 5, 5, p, &len) == SBX_EINVAL && len == 0);
	CHECK(merkle_inclusion_proof(g_leaves, 0, 0, p, &len) == SBX_EINVAL);
	CHECK(merkle_inclusion_proof(NULL, 5, 0, p, &len) == SBX_EINVAL);
	CHECK(merkle_inclusion_proof(g_leaves, 5, 0, NULL, &len) == SBX_EINVAL);
	CHECK(merkle_inclusion_proof(g_leaves, 5, 0, p, NULL) == SBX_EINVAL);
	CHECK(merkle_consistency_proof(g_leaves, 0, 5, p, &len) == SBX_EINVAL);
	CHECK(merkle_consistency_proof(g_leaves, 6, 5, p, &len) == SBX_EINVAL);
	CHECK(merkle_consistency_proof(g_leaves, 5, 5, p, &len) == 0 && len == 0);
	CHECK(merkle_inclusion_proof(g_leaves, 1, 0, p, &len) == 0 && len == 0);

	CHECK(merkle_root(g_leaves, 5, r5) == 0);
	CHECK(merkle_root(g_leaves, 3, r3) == 0);
	CHECK(merkle_root(g_leaves, 1, root) == 0 && memcmp(root, g_leaves[0], 32) == 0);
	CHECK(merkle_verify_inclusion(g_leaves[0], 0, 1, NULL, 0, g_leaves[0]) == 0);
	CHECK(merkle_verify_inclusion(g_leaves[0], 0, 1, p, 1, g_leaves[0]) == SBX_EVERIFY);
	CHECK(merkle_verify_inclusion(g_leaves[0], 0, 0, NULL, 0, g_leaves[0]) == SBX_EINVAL);
	CHECK(merkle_verify_inclusion(g_leaves[0], 5, 5, p, 3, r5) == SBX_EINVAL);
	CHECK(merkle_verify_inclusion(g_leaves[0], 0, 5, NULL, 3, r5) == SBX_EINVAL);
	CHECK(merkle_verify_inclusion(g_leaves[0], 0, 5, p, MERKLE_MAX_PROOF + 1, r5) ==
	      SBX_EINVAL);
	CHECK(merkle_verify_inclusion(g_leaves[0], 0, 5, p, MERKLE_MAX_PROOF, r5) ==
	      SBX_EVERIFY);
	CHECK(merkle_inclusion_proof(g_leaves, 5, 4, p, &len) == 0 && len == 1);
	CHECK(merkle_verify_inclusion(g_leaves[4], 4, 5, p, len, r5) == 0);
	CHECK(merkle_verify_inclusion(g_leaves[4], 4, 5, p, 0, r5) == SBX_EVERIFY);
	CHECK(merkle_verify_inclusion(g_leaves[4], 4, 5, p, 2, r5) == SBX_EVERIFY);

	CHECK(merkle_verify_consistency(0, 5, r3, r5, p, 1) == SBX_EINVAL);
	CHECK(merkle_verify_consistency(0, 0, r3, r3, NULL, 0) == SBX_EINVAL);
	CHECK(merkle_verify_consistency(6, 5, r3, r5, p, 1) == SBX_EINVAL);
	CHECK(merkle_verify_consistency(3, 5, r3, r5, NULL, 2) == SBX_EINVAL);
	CHECK(merkle_verify_consistency(3, 5, r3, r5, p, MERKLE_MAX_PROOF + 1) == SBX_EINVAL);
	CHECK(merkle_verify_consistency(3, 5, r3, r5, p, MERKLE_MAX_PROOF) == SBX_EVERIFY);
	CHECK(merkle_verify_consistency(3, 5, r3, r5, NULL, 0) == SBX_EVERIFY);
	/* Proofs cut short where the running hash already equals what is
	 * claimed: only the length / "sn is 0" checks stand in the way. */
	CHECK(merkle_verify_consistency(4, 8, r5, r5, NULL, 0) == SBX_EVERIFY);
	CHECK(merkle_verify_consistency(1, 2, r5, r5, NULL, 0) == SBX_EVERIFY);
	CHECK(merkle_verify_inclusion(r5, 0, 2, NULL, 0, r5) == SBX_EVERIFY);
	CHECK(merkle_verify_inclusion(r5, 3, 4, NULL, 0, r5) == SBX_EVERIFY);
	CHECK(merkle_verify_consistency(5, 5, r5, r5, NULL, 0) == 0);
	CHECK(merkle_verify_consistency(5, 5, r5, r3, NULL, 0) == SBX_EVERIFY);
	CHECK(merkle_verify_consistency(5, 5, r5, r5, p, 1) == SBX_EVERIFY);
	/* [D2, D3, MTH(D[0:2]), D4] */
	CHECK(merkle_consistency_proof(g_leaves, 3, 5, p, &len) == 0 && len == 4);
	CHECK(merkle_verify_consistency(3, 5, r3, r5, p, len) == 0);
	CHECK(merkle_verify_consistency(3, 5, r3, r5, p, len - 1) == SBX_EVERIFY);
	CHECK(merkle_verify_consistency(3, 5, r3, r5, p, len + 1) == SBX_EVERIFY);
}

/* ---- the frontier ---- */

static void test_frontier(void)
{
	struct merkle_frontier f, g, full;
	struct ref_tree t;
	hash_t a, b, ref;
	unsigned bad = 0, refbad = 0, canon_bad = 0;

	ref_tree_leaves(&t, g_leaves, NLEAVES, false);
	merkle_frontier_init(&f);
	for (uint64_t n = 0; n <= NLEAVES; n++) {
		if (n > 0 && merkle_frontier_append(&f, g_leaves[n - 1]) != 0)
			bad++;
		if (f.size != n || merkle_frontier_root(&f, a) != 0 ||
		    merkle_root(g_leaves, n, b) != 0 || memcmp(a, b, 32) != 0)
			bad++;
		/* The reference is quadratic overall; sample it. */
		if (n <= 300 || n % 61 == 0 || n == NLEAVES) {
			ref_mth(&t, 0, n, ref);
			refbad += memcmp(ref, a, 32) != 0;
		}
		/* Same leaves in two batches: bytewise the same frontier. */
		merkle_frontier_init(&g);
		if (merkle_frontier_append_many(&g, g_leaves, n / 3) != 0 ||
		    merkle_frontier_append_many(&g, g_leaves + n / 3, n - n / 3) != 0 ||
		    memcmp(&f, &g, sizeof f) != 0)
			canon_bad++;
	}
	ref_tree_free(&t);
	CHECK_MSG(bad == 0, "frontier root == merkle_root for every n in 0..1000");
	CHECK_MSG(refbad == 0, "frontier root == reference MTH (sampled) up to 1000");
	CHECK_MSG(canon_bad == 0, "frontier is canonical: batch and single appends agree bytewise");

	merkle_frontier_init(&full);
	full.size = MERKLE_MAX_SIZE;
	memcpy(full.nodes[63], g_leaves[1], 32);
	g = full;
	CHECK(merkle_frontier_append(&full, g_leaves[0]) == SBX_EINVAL);
	CHECK_MSG(memcmp(&full, &g, sizeof g) == 0, "a refused append leaves the frontier as it was");
	CHECK(merkle_frontier_root(&full, a) == 0 && memcmp(a, g_leaves[1], 32) == 0);
	g.size = MERKLE_MAX_SIZE - 1;
	CHECK(merkle_frontier_append_many(&g, g_leaves, 2) == SBX_EINVAL &&
	      g.size == MERKLE_MAX_SIZE - 1);
	CHECK(merkle_frontier_append_many(&g, NULL, 0) == 0);
	g.size = MERKLE_MAX_SIZE + 1;
	CHECK(merkle_frontier_root(&g, a) == SBX_EINVAL);
}

/* A million-leaf tree: the frontier agrees with merkle_root at two sizes,
 * and a proof from each generator verifies.  Also reports the time of
 * merkle_root (not asserted: sanitizer builds are slower). */
static void test_large(void)
{
	enum { N = 1000000, M = 777777, I = 654321 };
	hash_t *l, root, rn, rm, p[MERKLE_MAX_PROOF];
	struct merkle_frontier f;
	struct timespec t0, t1;
	size_t len;

	l = malloc((size_t)N * sizeof *l);
	if (!CHECK(l != NULL))
		return;
	for (uint32_t i = 0; i < N; i++) {
		memset(l[i], 0, 32);
		memcpy(l[i], &i, sizeof i);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK(merkle_root((const hash_t *)l, N, root) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("# merkle_root over %d leaves: %.3f s\n", N,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	merkle_frontier_init(&f);
	CHECK(merkle_frontier_append_many(&f, (const hash_t *)l, M) == 0);
	CHECK(merkle_frontier_root(&f, rm) == 0);
	CHECK(merkle_frontier_append_many(&f, (const hash_t *)l + M, N - M) == 0);
	CHECK(merkle_frontier_root(&f, rn) == 0 && memcmp(root, rn, 32) == 0);
	CHECK(merkle_inclusion_proof((const hash_t *)l, N, I, p, &len) == 0);
	CHECK(merkle_verify_inclusion(l[I], I, N, p, len, root) == 0);
	CHECK(merkle_verify_inclusion(l[I], I + 1, N, p, len, root) == SBX_EVERIFY);
	CHECK(merkle_consistency_proof((const hash_t *)l, M, N, p, &len) == 0);
	CHECK(merkle_verify_consistency(M, N, rm, root, p, len) == 0);
	CHECK(merkle_verify_consistency(M, N, root, rm, p, len) == SBX_EVERIFY);
	free(l);
}

int main(void)
{
	make_leaves();
	test_known_answers();
	test_parameters();
	test_inclusion_all();
	test_consistency_all();
	test_huge_sizes();
	test_frontier();
	test_large();
	return check_done();
}

#include "crypto/merkle.h"

#include <stdbool.h>
#include <string.h>
#include <openssl/crypto.h>

#include "crypto/err.h"
#include "crypto/hash.h"

/* Hashes are computed through one reused context per call: allocating an
 * EVP context per node would dominate the cost of a million-leaf root. */
static int node_hash_ctx(struct hash_ctx *h, const uint8_t left[static 32],
                         const uint8_t right[static 32], uint8_t out[static 32])
{
	uint8_t buf[1 + 2 * MERKLE_HASH_LEN];
	int r;

	/* Copy first: out may alias left or right. */
	buf[0] = 0x01;
	memcpy(buf + 1, left, MERKLE_HASH_LEN);
	memcpy(buf + 1 + MERKLE_HASH_LEN, right, MERKLE_HASH_LEN);
	r = hash_update(h, buf, sizeof buf);
	if (r == 0)
		r = hash_final(h, out);
	return r;
}

static unsigned bitlen64(uint64_t x)
{
	return x == 0 ? 0 : 64 - (unsigned)__builtin_clzll(x);
}

/* The largest power of two strictly below n, for n >= 2 (RFC 9162 "k"). */
static uint64_t split_point(uint64_t n)
{
	return UINT64_C(1) << (bitlen64(n - 1) - 1);
}

/* Number of hashes in the inclusion proof of `index` in a tree of `size`
 * (index < size): one per level below the point where the paths to index
 * and to the last leaf part ("inner"), plus one per left sibling above it
 * ("border"). */
static size_t inclusion_len(uint64_t index, uint64_t size)
{
	unsigned inner = bitlen64(index ^ (size - 1));
	uint64_t above = inner >= 64 ? 0 : index >> inner;

	return inner + (size_t)__builtin_popcountll(above);
}

/* Number of hashes in the consistency proof for 0 < m < n: the inclusion
 * proof of leaf m-1 in n, less the levels inside the largest perfect subtree
 * ending at m (its root stands for them), plus that root itself unless it is
 * the whole old tree (m a power of two: the verifier already has it). */
static size_t consistency_len(uint64_t m, uint64_t n)
{
	unsigned shift = (unsigned)__builtin_ctzll(m);
	bool pow2 = (m & (m - 1)) == 0;

	return inclusion_len(m - 1, n) - shift + (pow2 ? 0 : 1);
}

static void frontier_clear(struct merkle_frontier *f)
{
	memset(f, 0, sizeof *f);
}

/* Builds the new state in locals and commits it only on success, so a hash
 * failure leaves f as it was. */
static int frontier_push(struct merkle_frontier *f, struct hash_ctx *h,
                         const uint8_t leaf[static 32])
{
	uint8_t carry[MERKLE_HASH_LEN];
	unsigned level = 0;
	int r;

	if (f->size >= MERKLE_MAX_SIZE)
		return SBX_EINVAL;
	memcpy(carry, leaf, sizeof carry);
	/* Each set low bit of size is a perfect subtree of the same height as
	 * the carry: merge them, as binary addition carries. */
	while ((f->size >> level) & 1) {
		r = node_hash_ctx(h, f->nodes[level], carry, carry);
		if (r != 0)
			return r;
		level++;
	}
	memcpy(f->nodes[level], carry, sizeof carry);
	memset(f->nodes, 0, (size_t)level * MERKLE_HASH_LEN);
	f->size++;
	return 0;
}

static int frontier_root_ctx(const struct merkle_frontier *f, struct hash_ctx *h,
                             uint8_t out[static 32])
{
	uint8_t acc[MERKLE_HASH_LEN];
	unsigned level;
	int r;

	if (f->size == 0)
		return hash_sha256(NULL, 0, out);
	/* The smallest subtree is the rightmost; fold the larger ones in from
	 * the left, which is exactly the RFC's split at the largest power of 2. */
	level = (unsigned)__builtin_ctzll(f->size);
	memcpy(acc, f->nodes[level], sizeof acc);
	for (level++; level < 64; level++) {
		if (((f->size >> level) & 1) == 0)
			continue;
		r = node_hash_ctx(h, f->nodes[level], acc, acc);
		if (r != 0)
			return r;
	}
	memcpy(out, acc, sizeof acc);
	return 0;
}

/* MTH(D[lo:hi]) for lo < hi. */
static int range_root(struct hash_ctx *h, const uint8_t (*leaves)[32], uint64_t lo,
                      uint64_t hi, uint8_t out[static 32])
{
	struct merkle_frontier f;
	int r;

	frontier_clear(&f);
	for (uint64_t i = lo; i < hi; i++) {
		r = frontier_push(&f, h, leaves[i]);
		if (r != 0)
			return r;
	}
	return frontier_root_ctx(&f, h, out);
}

int merkle_leaf_hash(const uint8_t *data, size_t len, uint8_t out[static 32])
{
	static const uint8_t prefix = 0x00;

	if (data == NULL && len > 0)
		return SBX_EINVAL;
	return hash_sha256_2(&prefix, 1, data, len, out);
}

int merkle_node_hash(const uint8_t left[static 32], const uint8_t right[static 32],
                     uint8_t out[static 32])
{
	uint8_t buf[1 + 2 * MERKLE_HASH_LEN];

	buf[0] = 0x01;
	memcpy(buf + 1, left, MERKLE_HASH_LEN);
	memcpy(buf + 1 + MERKLE_HASH_LEN, right, MERKLE_HASH_LEN);
	return hash_sha256(buf, sizeof buf, out);
}

int merkle_root(const uint8_t (*leaves)[32], uint64_t n, uint8_t out[static 32])
{
	struct hash_ctx *h = NULL;
	int r = SBX_EINVAL;

	if (n > MERKLE_MAX_SIZE || (leaves == NULL && n > 0))
		goto out;
	if (n == 0) {
		r = hash_sha256(NULL, 0, out);
		goto out;
	}
	r = SBX_ENOMEM;
	h = hash_new();
	if (h == NULL)
		goto out;
	r = range_root(h, leaves, 0, n, out);
out:
	hash_free(h);
	return r;
}

int merkle_inclusion_proof(const uint8_t (*leaves)[32], uint64_t n, uint64_t index,
                           uint8_t (*proof)[32], size_t *prooflen)
{
	struct hash_ctx *h = NULL;
	uint64_t lo = 0, hi = n;
	size_t len, pos;
	int r = SBX_EINVAL;

	if (prooflen != NULL)
		*prooflen = 0;
	if (leaves == NULL || proof == NULL || prooflen == NULL ||
	    n > MERKLE_MAX_SIZE || index >= n)
		goto out;
	len = inclusion_len(index, n);
	if (len > MERKLE_MAX_PROOF)
		goto out;
	r = SBX_ENOMEM;
	h = hash_new();
	if (h == NULL)
		goto out;
	/* Walk down from the root; the sibling met at depth d is proof element
	 * len-1-d, since the proof is listed from the leaf up. */
	pos = len;
	while (hi - lo > 1) {
		uint64_t k = split_point(hi - lo);

		r = SBX_EINVAL;
		if (pos == 0)
			goto out;
		pos--;
		if (index < lo + k) {
			r = range_root(h, leaves, lo + k, hi, proof[pos]);
			hi = lo + k;
		} else {
			r = range_root(h, leaves, lo, lo + k, proof[pos]);
			lo += k;
		}
		if (r != 0)
			goto out;
	}
	r = SBX_EINVAL;
	if (pos != 0)
		goto out;
	*prooflen = len;
	r = 0;
out:
	hash_free(h);
	return r;
}

int merkle_consistency_proof(const uint8_t (*leaves)[32], uint64_t m, uint64_t n,
                             uint8_t (*proof)[32], size_t *prooflen)
{
	struct hash_ctx *h = NULL;
	uint64_t lo = 0, hi = n, mm = m;
	bool whole_old_tree = true;
	size_t len, pos;
	int r = SBX_EINVAL;

	if (prooflen != NULL)
		*prooflen = 0;
	if (leaves == NULL || proof == NULL || prooflen == NULL ||
	    n > MERKLE_MAX_SIZE || m == 0 || m > n)
		goto out;
	if (m == n) {
		r = 0;
		goto out;
	}
	len = consistency_len(m, n);
	if (len > MERKLE_MAX_PROOF)
		goto out;
	r = SBX_ENOMEM;
	h = hash_new();
	if (h == NULL)
		goto out;
	/* SUBPROOF(m, D[lo:hi], b) unrolled: descend until the old tree's part
	 * (mm leaves) fills the current subtree; siblings met on the way are
	 * listed after the subproof, hence filled from the end. */
	pos = len;
	while (mm != hi - lo) {
		uint64_t k;

		r = SBX_EINVAL;
		if (pos == 0 || hi - lo < 2)    /* the second cannot happen: 0 < mm < hi - lo */
			goto out;
		k = split_point(hi - lo);
		pos--;
		if (mm <= k) {
			r = range_root(h, leaves, lo + k, hi, proof[pos]);
			hi = lo + k;
		} else {
			r = range_root(h, leaves, lo, lo + k, proof[pos]);
			lo += k;
			mm -= k;
			whole_old_tree = false;
		}
		if (r != 0)
			goto out;
	}
	/* The verifier knows the old root; any other subtree it must be given. */
	if (!whole_old_tree) {
		r = SBX_EINVAL;
		if (pos == 0)
			goto out;
		pos--;
		r = range_root(h, leaves, lo, hi, proof[pos]);
		if (r != 0)
			goto out;
	}
	r = SBX_EINVAL;
	if (pos != 0)
		goto out;
	*prooflen = len;
	r = 0;
out:
	hash_free(h);
	return r;
}

int merkle_verify_inclusion(const uint8_t leaf[static 32], uint64_t index, uint64_t size,
                            const uint8_t (*proof)[32], size_t prooflen,
                            const uint8_t root[static 32])
{
	struct hash_ctx *h = NULL;
	uint8_t acc[MERKLE_HASH_LEN];
	uint64_t fn = index, sn;
	int r = SBX_EINVAL;

	if (size > MERKLE_MAX_SIZE || index >= size || prooflen > MERKLE_MAX_PROOF ||
	    (proof == NULL && prooflen > 0))
		goto out;
	/* The length is public and fixed by (index, size): check it before
	 * hashing anything. */
	r = SBX_EVERIFY;
	if (prooflen != inclusion_len(index, size))
		goto out;
	r = SBX_ENOMEM;
	h = hash_new();
	if (h == NULL)
		goto out;
	/* RFC 9162 2.1.3.2. */
	sn = size - 1;
	memcpy(acc, leaf, sizeof acc);
	for (size_t i = 0; i < prooflen; i++) {
		r = SBX_EVERIFY;
		if (sn == 0)
			goto out;
		if ((fn & 1) || fn == sn) {
			r = node_hash_ctx(h, proof[i], acc, acc);
			while (fn != 0 && (fn & 1) == 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			r = node_hash_ctx(h, acc, proof[i], acc);
		}
		if (r != 0)
			goto out;
		fn >>= 1;
		sn >>= 1;
	}
	r = SBX_EVERIFY;
	if (sn != 0 || CRYPTO_memcmp(acc, root, MERKLE_HASH_LEN) != 0)
		goto out;
	r = 0;
out:
	hash_free(h);
	return r;
}

int merkle_verify_consistency(uint64_t m, uint64_t n,
                              const uint8_t root_m[static 32], const uint8_t root_n[static 32],
                              const uint8_t (*proof)[32], size_t prooflen)
{
	struct hash_ctx *h = NULL;
	uint8_t fr[MERKLE_HASH_LEN], sr[MERKLE_HASH_LEN];
	uint64_t fn, sn;
	size_t i;
	int r = SBX_EINVAL;

	if (n > MERKLE_MAX_SIZE || m == 0 || m > n || prooflen > MERKLE_MAX_PROOF ||
	    (proof == NULL && prooflen > 0))
		goto out;
	/* Equal sizes: the proof is empty (2.1.4.1) and the roots must match.
	 * The RFC's algorithm would reject the empty proof outright. */
	r = SBX_EVERIFY;
	if (m == n) {
		if (prooflen == 0 && CRYPTO_memcmp(root_m, root_n, MERKLE_HASH_LEN) == 0)
			r = 0;
		goto out;
	}
	if (prooflen != consistency_len(m, n))
		goto out;
	r = SBX_ENOMEM;
	h = hash_new();
	if (h == NULL)
		goto out;
	/* RFC 9162 2.1.4.2.  When m is a power of two the old root is the
	 * (implicit) first path element; the loop below then starts at index 0
	 * of the proof instead of 1. */
	i = 0;
	if ((m & (m - 1)) == 0) {
		memcpy(fr, root_m, sizeof fr);
	} else {
		r = SBX_EVERIFY;
		if (prooflen == 0)    /* cannot happen: consistency_len() >= 1 here */
			goto out;
		memcpy(fr, proof[0], sizeof fr);
		i = 1;
	}
	memcpy(sr, fr, sizeof sr);
	fn = m - 1;
	sn = n - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	for (; i < prooflen; i++) {
		r = SBX_EVERIFY;
		if (sn == 0)
			goto out;
		if ((fn & 1) || fn == sn) {
			r = node_hash_ctx(h, proof[i], fr, fr);
			if (r == 0)
				r = node_hash_ctx(h, proof[i], sr, sr);
			while (fn != 0 && (fn & 1) == 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			r = node_hash_ctx(h, sr, proof[i], sr);
		}
		if (r != 0)
			goto out;
		fn >>= 1;
		sn >>= 1;
	}
	r = SBX_EVERIFY;
	/* Both comparisons always run (no short-circuit on the first). */
	if ((CRYPTO_memcmp(fr, root_m, MERKLE_HASH_LEN) |
	     CRYPTO_memcmp(sr, root_n, MERKLE_HASH_LEN)) != 0 || sn != 0)
		goto out;
	r = 0;
out:
	hash_free(h);
	return r;
}

void merkle_frontier_init(struct merkle_frontier *f)
{
	frontier_clear(f);
}

int merkle_frontier_append_many(struct merkle_frontier *f, const uint8_t (*leaves)[32],
                                uint64_t n)
{
	struct hash_ctx *h = NULL;
	int r = SBX_EINVAL;

	if (f == NULL || (leaves == NULL && n > 0) || n > MERKLE_MAX_SIZE - f->size)
		goto out;
	r = 0;
	if (n == 0)
		goto out;
	r = SBX_ENOMEM;
	h = hash_new();
	if (h == NULL)
		goto out;
	for (uint64_t i = 0; i < n; i++) {
		r = frontier_push(f, h, leaves[i]);
		if (r != 0)
			goto out;
	}
	r = 0;
out:
	hash_free(h);
	return r;
}

int merkle_frontier_append(struct merkle_frontier *f, const uint8_t leaf[static 32])
{
	return merkle_frontier_append_many(f, (const uint8_t (*)[32])leaf, 1);
}

int merkle_frontier_root(const struct merkle_frontier *f, uint8_t out[static 32])
{
	struct hash_ctx *h = NULL;
	int r = SBX_EINVAL;

	if (f == NULL || f->size > MERKLE_MAX_SIZE)
		goto out;
	r = SBX_ENOMEM;
	h = hash_new();
	if (h == NULL)
		goto out;
	r = frontier_root_ctx(f, h, out);
out:
	hash_free(h);
	return r;
}

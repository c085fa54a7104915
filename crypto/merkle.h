/* Merkle tree hashing and proofs as in RFC 9162 section 2.1: leaf hash
 * SHA-256(0x00 || data), node hash SHA-256(0x01 || left || right), the tree
 * of n leaves split at the largest power of two below n. */
#ifndef SBX_MERKLE_H
#define SBX_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define MERKLE_HASH_LEN  32
#define MERKLE_MAX_PROOF 64     /* enough for 2^63 leaves */
/* Largest tree size accepted anywhere in this module (larger sizes are
 * SBX_EINVAL): above it a consistency proof could need 65 hashes. */
#define MERKLE_MAX_SIZE  (UINT64_C(1) << 63)

int merkle_leaf_hash(const uint8_t *data, size_t len, uint8_t out[static 32]);
int merkle_node_hash(const uint8_t left[static 32], const uint8_t right[static 32],
                     uint8_t out[static 32]);

/* MTH over the first n leaf hashes.  n == 0 gives SHA-256 of the empty string. */
int merkle_root(const uint8_t (*leaves)[32], uint64_t n, uint8_t out[static 32]);

/* Proof generators: `proof` must have room for MERKLE_MAX_PROOF hashes;
 * *prooflen receives the number written.  Each call costs O(n) hashes. */

/* Inclusion proof for leaf `index` in the tree of the first n leaves. */
int merkle_inclusion_proof(const uint8_t (*leaves)[32], uint64_t n, uint64_t index,
                           uint8_t (*proof)[32], size_t *prooflen);
/* Consistency proof between the trees of the first m and first n leaves,
 * 0 < m <= n.  For m == n the proof is empty (RFC 9162 2.1.4.1). */
int merkle_consistency_proof(const uint8_t (*leaves)[32], uint64_t m, uint64_t n,
                             uint8_t (*proof)[32], size_t *prooflen);

/* Verifiers (RFC 9162 2.1.3.2 and 2.1.4.2).  0 if valid, SBX_EVERIFY if not,
 * SBX_EINVAL for impossible parameters (index >= size, m == 0, m > n, a size
 * above MERKLE_MAX_SIZE, prooflen > MERKLE_MAX_PROOF).  A proof longer or
 * shorter than (index, size) or (m, n) requires is SBX_EVERIFY.  For m == n
 * only an empty proof and equal roots verify.  Every hash comparison is
 * constant time. */
int merkle_verify_inclusion(const uint8_t leaf[static 32], uint64_t index, uint64_t size,
                            const uint8_t (*proof)[32], size_t prooflen,
                            const uint8_t root[static 32]);
int merkle_verify_consistency(uint64_t m, uint64_t n,
                              const uint8_t root_m[static 32], const uint8_t root_n[static 32],
                              const uint8_t (*proof)[32], size_t prooflen);

/* Incremental tree ("frontier", the compact Merkle tree of CT): the roots of
 * the perfect subtrees that make up the tree so far, nodes[h] holding the
 * one of 2^h leaves when bit h of size is set.  O(log n) memory, amortised
 * O(1) hashes per leaf.  Plain data kept canonical (nodes not in use are
 * zero), so it may be copied, stored and compared bytewise. */
struct merkle_frontier {
	uint64_t size;
	uint8_t nodes[64][MERKLE_HASH_LEN];
};

void merkle_frontier_init(struct merkle_frontier *f);
/* Append one leaf hash (SHA-256 context per call: for many leaves at once
 * use _append_many, which reuses one).  On error f is unchanged. */
int merkle_frontier_append(struct merkle_frontier *f, const uint8_t leaf[static 32]);
/* Append n leaf hashes.  On error f holds a prefix of them (f->size says
 * how many). */
int merkle_frontier_append_many(struct merkle_frontier *f, const uint8_t (*leaves)[32],
                                uint64_t n);
/* MTH of the f->size leaves appended so far; equals merkle_root over them. */
int merkle_frontier_root(const struct merkle_frontier *f, uint8_t out[static 32]);

#endif

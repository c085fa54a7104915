/* Merkle tree hashing and proofs as in RFC 9162 section 2.1: leaf hash
 * SHA-256(0x00 || data), node hash SHA-256(0x01 || left || right), the tree
 * of n leaves split at the largest power of two below n. */
#ifndef SBX_MERKLE_H
#define SBX_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define MERKLE_HASH_LEN  32
#define MERKLE_MAX_PROOF 64     /* enough for 2^63 leaves */

int merkle_leaf_hash(const uint8_t *data, size_t len, uint8_t out[static 32]);
int merkle_node_hash(const uint8_t left[static 32], const uint8_t right[static 32],
                     uint8_t out[static 32]);

/* MTH over the first n leaf hashes.  n == 0 gives SHA-256 of the empty string. */
int merkle_root(const uint8_t (*leaves)[32], uint64_t n, uint8_t out[static 32]);

/* Inclusion proof for leaf `index` in the tree of the first n leaves. */
int merkle_inclusion_proof(const uint8_t (*leaves)[32], uint64_t n, uint64_t index,
                           uint8_t (*proof)[32], size_t *prooflen);
/* Consistency proof between the trees of the first m and first n leaves,
 * 0 < m <= n. */
int merkle_consistency_proof(const uint8_t (*leaves)[32], uint64_t m, uint64_t n,
                             uint8_t (*proof)[32], size_t *prooflen);

/* Verifiers (RFC 9162 2.1.3.2 and 2.1.4.2).  0 if valid, SBX_EVERIFY if not,
 * SBX_EINVAL for impossible parameters.  Every hash comparison is constant time. */
int merkle_verify_inclusion(const uint8_t leaf[static 32], uint64_t index, uint64_t size,
                            const uint8_t (*proof)[32], size_t prooflen,
                            const uint8_t root[static 32]);
int merkle_verify_consistency(uint64_t m, uint64_t n,
                              const uint8_t root_m[static 32], const uint8_t root_n[static 32],
                              const uint8_t (*proof)[32], size_t prooflen);

#endif

/* Signed tree head of the custody log.  Encoding (big-endian):
 *   "SBXH" | u8 version=1 | appliance_id[32] | u64 tree_size | root[32] |
 *   u64 timestamp_ms | u64 counter
 * signed under namespace SIG_NS_STH by the box's TPM signing key.
 * `counter` is the TPM NV counter value this head is anchored to. */
#ifndef SBX_STH_H
#define SBX_STH_H

#include <stddef.h>
#include <stdint.h>

#define STH_VERSION 1
#define STH_ENCODED_LEN (4 + 1 + 32 + 8 + 32 + 8 + 8)

struct sth {
	uint8_t appliance_id[32];
	uint64_t tree_size;
	uint8_t root[32];
	uint64_t timestamp_ms;
	uint64_t counter;
};

void sth_encode(const struct sth *h, uint8_t out[static STH_ENCODED_LEN]);
int sth_decode(const uint8_t *b, size_t len, struct sth *h);

#endif

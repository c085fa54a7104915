#include "export/sth.h"

#include <string.h>

#include "crypto/err.h"
#include "export/wire.h"

void sth_encode(const struct sth *h, uint8_t out[static STH_ENCODED_LEN])
{
	size_t o = 0;

	memcpy(out, "SBXH", 4);
	o = 4;
	out[o++] = STH_VERSION;
	memcpy(out + o, h->appliance_id, 32);
	o += 32;
	for (int i = 0; i < 8; i++)
		out[o++] = (uint8_t)(h->tree_size >> (56 - 8 * i));
	memcpy(out + o, h->root, 32);
	o += 32;
	for (int i = 0; i < 8; i++)
		out[o++] = (uint8_t)(h->timestamp_ms >> (56 - 8 * i));
	for (int i = 0; i < 8; i++)
		out[o++] = (uint8_t)(h->counter >> (56 - 8 * i));
}

int sth_decode(const uint8_t *b, size_t len, struct sth *h)
{
	struct wire_r r;
	uint8_t magic[4];

	memset(h, 0, sizeof *h);
	if (len != STH_ENCODED_LEN)
		return SBX_EFORMAT;
	wire_r_init(&r, b, len);
	wire_get_fixed(&r, magic, 4);
	if (memcmp(magic, "SBXH", 4) != 0 || wire_get_u8(&r) != STH_VERSION)
		return SBX_EFORMAT;
	wire_get_fixed(&r, h->appliance_id, 32);
	h->tree_size = wire_get_u64(&r);
	wire_get_fixed(&r, h->root, 32);
	h->timestamp_ms = wire_get_u64(&r);
	h->counter = wire_get_u64(&r);
	return wire_r_end(&r);
}

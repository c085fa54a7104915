/* libFuzzer harness for the parent's decoder of the ingest pipe protocol
 * (appliance/ingest_proto.c): the bytes a compromised child could send.
 * The first byte picks a chunk size so frames split at every point.
 * Invariants: no crash; every read reaching the sink passes read_check()
 * and has a fresh vendor id; every image has JPEG/PNG magic and a size
 * within its kind's cap; success only with counts equal to what the sink
 * saw. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/ingest_proto.h"
#include "appliance/reads.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond)
{
	if (!cond)
		abort();
}

struct seen {
	struct reads_idset *ids;
	uint64_t reads, images, bytes;
	struct ingest_limits lim;
};

static int s_read(void *ctx, const struct read *r, struct sbx_err *e)
{
	struct seen *s = ctx;
	enum read_field f;
	const char *why;

	must(read_check(r, &f, &why) == 0);
	must(reads_idset_add(s->ids, r->vendor_id, strlen(r->vendor_id), 0) == 0);
	s->reads++;
	return 0;
}

static int s_image(void *ctx, const char *id, enum ingest_image_kind k, const char *name,
                   const uint8_t *b, size_t n, struct sbx_err *e)
{
	struct seen *s = ctx;

	must(reads_idset_find(s->ids, id, strlen(id)) != NULL);
	must(reads_image_magic(b, n) != READS_IMG_NONE);
	must(n <= (k == INGEST_IMAGE_PLATE ? s->lim.max_plate_image : s->lim.max_overview_image));
	s->images++;
	s->bytes += n;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen s;
	struct ingest_sink sink = { &s, s_read, s_image };
	struct ingest_proto_dec *d;
	struct ingest_summary sum;
	struct sbx_err e;
	size_t chunk;
	int r = 0;

	if (size < 1)
		return 0;
	chunk = (size_t)data[0] * 16 + 1;
	data++;
	size--;
	memset(&s, 0, sizeof s);
	ingest_limits_default(&s.lim);
	s.lim.max_reads = 1000;
	s.lim.max_plate_image = 4096;
	s.lim.max_overview_image = 65536 * 2;
	s.ids = reads_idset_new();
	d = ingest_proto_dec_new(&s.lim, &sink);
	must(d != NULL && s.ids != NULL);
	sbx_err_clear(&e);
	for (size_t i = 0; r == 0 && i < size; i += chunk)
		r = ingest_proto_dec_feed(d, data + i, size - i < chunk ? size - i : chunk, &e);
	if (r == 0)
		r = ingest_proto_dec_end(d, &sum, &e);
	if (r == 0)
		must(sum.reads == s.reads && sum.images == s.images && sum.image_bytes == s.bytes);
	else
		must(e.code != 0 && e.msg[0] != '\0');
	ingest_proto_dec_free(d);
	reads_idset_free(s.ids);
	return 0;
}

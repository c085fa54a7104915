/* What the ingest parent keeps per read (appliance/ingest_proto.c over
 * appliance/reads.c): a set of ids without values for every read, and
 * image bookkeeping only for reads that declared images, in blocks.
 * Checks the key-only set (exact membership across arena blocks, no value
 * slots), value slots aligned and stable in a set with values, and a
 * decoder stream where thousands of reads with images (several info
 * blocks) are mixed with reads without, plus an image sent for a known read
 * that declared none. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/ingest_proto.h"
#include "appliance/reads.h"
#include "tests/unit/check.h"

#define MANY 200000

static void keys_only(void)
{
	struct reads_idset *s = reads_idset_new_keys();
	char k[40];
	int ok = s != NULL, has = 1;

	for (int i = 0; ok && i < MANY; i++) {
		snprintf(k, sizeof k, "id-%d", i);
		ok = reads_idset_add(s, k, strlen(k), (uint64_t)i) == 0;
	}
	CHECK_MSG(ok && reads_idset_count(s) == MANY, "200,000 keys in a set without values");
	for (int i = 0; i < MANY; i += 7) {
		snprintf(k, sizeof k, "id-%d", i);
		has &= reads_idset_has(s, k, strlen(k)) == 1 &&
		       reads_idset_add(s, k, strlen(k), 0) == SBX_EEXIST &&
		       reads_idset_find(s, k, strlen(k)) == NULL;
	}
	CHECK_MSG(has, "every key is there, a second add is refused, find gives no value slot");
	CHECK(reads_idset_count(s) == MANY);
	CHECK(!reads_idset_has(s, "id-", 3) && !reads_idset_has(s, "id-200000", 9));
	CHECK(reads_idset_has(s, "id-100", 5) && !reads_idset_has(s, "id-100x", 7));
	CHECK(reads_idset_add(s, "", 0, 0) == 0 && reads_idset_has(s, "", 0));
	reads_idset_free(s);
}

static void values_aligned(void)
{
	struct reads_idset *s = reads_idset_new();
	uint64_t *slot[64];
	char k[300];
	int ok = s != NULL, aligned = 1, same = 1;

	/* Key lengths 8-250 so that records do not fall on 8 bytes by chance;
	 * enough bytes to span several 1 MiB arena blocks. */
	for (int i = 0; ok && i < 20000; i++) {
		size_t n = 8 + (size_t)(i * 37) % 243;

		memset(k, 'a' + i % 26, n);
		snprintf(k, sizeof k, "%d", i);
		k[strlen(k)] = '-';
		ok = reads_idset_add(s, k, n, (uint64_t)i << 20) == 0;
		if (ok && i % 313 == 0) {
			slot[i / 313] = reads_idset_find(s, k, n);
			aligned &= slot[i / 313] != NULL && ((uintptr_t)slot[i / 313] % 8) == 0;
		}
	}
	CHECK_MSG(ok && reads_idset_count(s) == 20000, "20,000 keys of 8-250 bytes with values");
	CHECK_MSG(aligned, "value slots are 8-byte aligned");
	for (int i = 0; i < 20000; i += 313) {
		size_t n = 8 + (size_t)(i * 37) % 243;

		memset(k, 'a' + i % 26, n);
		snprintf(k, sizeof k, "%d", i);
		k[strlen(k)] = '-';
		same &= reads_idset_find(s, k, n) == slot[i / 313] && *slot[i / 313] == (uint64_t)i << 20 &&
		        reads_idset_has(s, k, n);
	}
	CHECK_MSG(same, "value slots stay put and keep their values");
	reads_idset_free(s);
}

struct got {
	uint64_t reads, images;
};

static int g_read(void *ctx, const struct read *r, struct sbx_err *e)
{
	((struct got *)ctx)->reads++;
	return 0;
}

static int g_image(void *ctx, const char *id, enum ingest_image_kind kind, const char *name,
                   const uint8_t *p, size_t n, struct sbx_err *e)
{
	((struct got *)ctx)->images++;
	return 0;
}

static void base_read(struct read *r, int i)
{
	read_init(r);
	snprintf(r->vendor_id, sizeof r->vendor_id, "r%06d", i);
	strcpy(r->plate, "ABC123");
	strcpy(r->camera_id, "cam1");
	r->captured_at_ms = 1767225600000 + i;
}

static int decode(const struct ingest_proto_w *w, struct got *g, char *msg, size_t cap)
{
	struct ingest_sink sk = { g, g_read, g_image };
	struct ingest_proto_dec *d = ingest_proto_dec_new(NULL, &sk);
	struct sbx_err e;
	int r;

	memset(g, 0, sizeof *g);
	sbx_err_clear(&e);
	r = d == NULL ? SBX_ENOMEM : ingest_proto_dec_feed(d, w->buf, w->len, &e);
	if (r == 0)
		r = ingest_proto_dec_end(d, NULL, &e);
	ingest_proto_dec_free(d);
	snprintf(msg, cap, "%s", e.msg);
	return r;
}

#define NREADS 30000    /* every third with images: > 2 blocks of image info */

static void decoder(void)
{
	static const uint8_t jpg[12] = { 0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4, 5, 6, 0xff, 0xd9 };
	struct ingest_proto_w w;
	struct ingest_summary sum = { 0 };
	struct read r;
	struct got g;
	char msg[600], name[64];
	uint64_t images = 0;

	ingest_proto_w_init(&w, -1);
	ingest_proto_put_hello(&w);
	for (int i = 0; i < NREADS; i++) {
		base_read(&r, i);
		if (i % 3 == 0)
			snprintf(r.plate_image, sizeof r.plate_image, "img/p%d.jpg", i);
		if (i % 6 == 0)
			snprintf(r.overview_image, sizeof r.overview_image, "img/o%d.jpg", i);
		ingest_proto_put_read(&w, "s.csv", (uint64_t)i + 2, &r);
	}
	/* Images in another order than the reads: last read first. */
	for (int i = NREADS - 1; i >= 0; i--) {
		char id[16];

		snprintf(id, sizeof id, "r%06d", i);
		if (i % 6 == 0) {
			snprintf(name, sizeof name, "img/o%d.jpg", i);
			ingest_proto_put_image(&w, id, INGEST_IMAGE_OVERVIEW, name, jpg, sizeof jpg);
			images++;
		}
		if (i % 3 == 0) {
			snprintf(name, sizeof name, "img/p%d.jpg", i);
			ingest_proto_put_image(&w, id, INGEST_IMAGE_PLATE, name, jpg, sizeof jpg);
			images++;
		}
	}
	sum.reads = NREADS;
	sum.images = images;
	sum.image_bytes = images * sizeof jpg;
	ingest_proto_put_done(&w, &sum);
	CHECK_MSG(w.err == 0 && decode(&w, &g, msg, sizeof msg) == 0 && g.reads == NREADS && g.images == images,
	          "30,000 reads, 15,000 image reads over several info blocks, images out of order");
	ingest_proto_w_free(&w);

	/* A read the parent knows, which declared no image at all. */
	ingest_proto_w_init(&w, -1);
	ingest_proto_put_hello(&w);
	base_read(&r, 1);
	ingest_proto_put_read(&w, "s.csv", 2, &r);
	base_read(&r, 2);
	strcpy(r.plate_image, "p.jpg");
	ingest_proto_put_read(&w, "s.csv", 3, &r);
	ingest_proto_put_image(&w, "r000001", INGEST_IMAGE_PLATE, "p.jpg", jpg, sizeof jpg);
	if (!CHECK_MSG(decode(&w, &g, msg, sizeof msg) == SBX_EFORMAT &&
	               strcmp(msg, "ingest protocol: unexpected image for read \"r000001\"") == 0,
	               "image for a known read that declared none is unexpected"))
		printf("#   msg: %s\n", msg);
	ingest_proto_w_free(&w);

	/* Unknown stays unknown although another read has images. */
	ingest_proto_w_init(&w, -1);
	ingest_proto_put_hello(&w);
	ingest_proto_put_read(&w, "s.csv", 3, &r);
	ingest_proto_put_image(&w, "r000009", INGEST_IMAGE_PLATE, "p.jpg", jpg, sizeof jpg);
	if (!CHECK_MSG(decode(&w, &g, msg, sizeof msg) == SBX_EFORMAT &&
	               strcmp(msg, "ingest protocol: image for unknown read \"r000009\"") == 0,
	               "image for an unknown read"))
		printf("#   msg: %s\n", msg);
	ingest_proto_w_free(&w);

	/* Duplicate ids: once among reads without images, once with. */
	ingest_proto_w_init(&w, -1);
	ingest_proto_put_hello(&w);
	base_read(&r, 5);
	ingest_proto_put_read(&w, "s.csv", 2, &r);
	strcpy(r.overview_image, "o.jpg");
	ingest_proto_put_read(&w, "s.csv", 9, &r);
	if (!CHECK_MSG(decode(&w, &g, msg, sizeof msg) == SBX_EFORMAT &&
	               strcmp(msg, "s.csv line 9, field vendor_read_id: duplicate id \"r000005\"") == 0,
	               "a duplicate id is refused whether or not it declares images"))
		printf("#   msg: %s\n", msg);
	ingest_proto_w_free(&w);
}

int main(void)
{
	keys_only();
	values_aligned();
	decoder();
	return check_done();
}

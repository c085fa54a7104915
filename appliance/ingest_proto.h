/* The pipe protocol from the ingest child (which parses vendor bytes) to
 * the parent (which must not).  Every message is a frame:
 *
 *   u8 type | u32 length (big-endian) | payload (length bytes, <= 65536)
 *
 *   'H' hello   u16 version (1)                              first, once
 *   'R' read    str16 source, u64 line, the read (below)     zero or more
 *   'B' image   str16 read id, u8 kind, str16 name, u32 size after all reads
 *   'D' data    the next 1..65536 bytes of that image        until size
 *   'E' end     (empty)                                      closes the image
 *   'Z' done    u64 reads, u64 images, u64 image bytes,
 *               u64 reads files, u64 entries ignored         last
 *   'X' error   u32 -code, str16 one-line message            last, instead
 *
 * A read is: str16 vendor_read_id, plate, region; u64 captured_at (ms);
 * str16 camera_id, camera_name; u8 has_location; u32 latitude*10^7,
 * longitude*10^7 (two's complement); u16 heading, u16 confidence
 * (hundredths; 0xffff absent); str16 vehicle_make, vehicle_color,
 * vehicle_type, plate_image, overview_image.  (str16/u* as in export/wire.h.)
 *
 * The decoder trusts nothing: it enforces the order above, the size cap,
 * exact payload lengths, read_check() on every read, unique vendor ids,
 * the read-count cap, and for images: a read that declared that image and
 * has not received it, the same name, a size within the kind's cap, the
 * exact byte count, JPEG or PNG magic; at 'Z' the counts must match what
 * it saw and every declared image must have arrived.  Only then, and only
 * with nothing after 'Z', does ingest_proto_dec_end() succeed. */
#ifndef SBX_INGEST_PROTO_H
#define SBX_INGEST_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "appliance/reads.h"
#include "crypto/err.h"
#include "export/wire.h"

#define INGEST_PROTO_VERSION      1
#define INGEST_PROTO_MAX_PAYLOAD  65536
#define INGEST_PROTO_SOURCE_MAX   2048

enum {
	INGEST_MSG_HELLO = 'H',
	INGEST_MSG_READ  = 'R',
	INGEST_MSG_IMAGE = 'B',
	INGEST_MSG_DATA  = 'D',
	INGEST_MSG_END   = 'E',
	INGEST_MSG_DONE  = 'Z',
	INGEST_MSG_ERROR = 'X',
};

enum ingest_image_kind {
	INGEST_IMAGE_PLATE = 1,
	INGEST_IMAGE_OVERVIEW = 2,
};

struct ingest_limits {
	uint64_t max_reads;             /* per batch: 2,000,000 */
	uint32_t max_plate_image;       /* bytes: 1 MiB */
	uint32_t max_overview_image;    /* bytes: 16 MiB */
};

void ingest_limits_default(struct ingest_limits *l);

/* Where validated reads and images go.  Order: every read (input order),
 * then every image (see ingest_child.h).  A non-zero return stops the
 * batch with that error. */
struct ingest_sink {
	void *ctx;
	int (*on_read)(void *ctx, const struct read *r, struct sbx_err *e);
	int (*on_image)(void *ctx, const char *read_id, enum ingest_image_kind kind,
	                const char *name, const uint8_t *bytes, size_t len, struct sbx_err *e);
};

struct ingest_summary {
	uint64_t reads, images, image_bytes;
	int64_t first_ms, last_ms;      /* capture time range; 0, 0 without reads */
	uint64_t reads_files;           /* CSV/JSONL files read (reported by the child) */
	uint64_t ignored;               /* archive entries no read referenced (child) */
};

/* Child side: frames into a buffer, written to fd when full or flushed.
 * fd < 0 keeps everything in memory (tests, fuzz seeds): see w->buf. */
struct ingest_proto_w {
	int fd;
	uint8_t *buf;
	size_t len, cap;
	int err;
	struct wire_w scratch;
};

int ingest_proto_w_init(struct ingest_proto_w *w, int fd);
void ingest_proto_w_free(struct ingest_proto_w *w);
int ingest_proto_put_hello(struct ingest_proto_w *w);
int ingest_proto_put_read(struct ingest_proto_w *w, const char *source, uint64_t line,
                          const struct read *r);
/* 'B', as many 'D' as needed, 'E'. */
int ingest_proto_put_image(struct ingest_proto_w *w, const char *read_id, enum ingest_image_kind kind,
                           const char *name, const uint8_t *p, size_t n);
int ingest_proto_put_done(struct ingest_proto_w *w, const struct ingest_summary *s);
int ingest_proto_put_error(struct ingest_proto_w *w, int code, const char *msg);
int ingest_proto_flush(struct ingest_proto_w *w);

/* Parent side. */
struct ingest_proto_dec;

struct ingest_proto_dec *ingest_proto_dec_new(const struct ingest_limits *lim,
                                              const struct ingest_sink *sink);
/* Decodes whole frames as they complete, calling the sink.  The first
 * error (protocol, validation, sink, or the child's 'X') is final. */
int ingest_proto_dec_feed(struct ingest_proto_dec *d, const uint8_t *p, size_t n,
                          struct sbx_err *e);
/* 1 once 'Z' or 'X' arrived or decoding failed: the stream should end. */
int ingest_proto_dec_finished(const struct ingest_proto_dec *d);
/* At end of stream: 0 only after a valid 'Z' and nothing else. */
int ingest_proto_dec_end(struct ingest_proto_dec *d, struct ingest_summary *sum,
                         struct sbx_err *e);
void ingest_proto_dec_free(struct ingest_proto_dec *d);

#endif

#include "appliance/ingest_proto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OUT_BUF  ((size_t)256 << 10)
#define ABSENT16 0xffffu

void ingest_limits_default(struct ingest_limits *l)
{
	l->max_reads = 2000000;
	l->max_plate_image = (uint32_t)1 << 20;
	l->max_overview_image = (uint32_t)16 << 20;
}

/* ---- writer ---- */

int ingest_proto_w_init(struct ingest_proto_w *w, int fd)
{
	memset(w, 0, sizeof *w);
	w->fd = fd;
	wire_w_init(&w->scratch);
	w->cap = OUT_BUF;
	w->buf = malloc(w->cap);
	if (w->buf == NULL) {
		w->err = SBX_ENOMEM;
		return SBX_ENOMEM;
	}
	return 0;
}

void ingest_proto_w_free(struct ingest_proto_w *w)
{
	free(w->buf);
	wire_w_free(&w->scratch);
	memset(w, 0, sizeof *w);
	w->fd = -1;
}

int ingest_proto_flush(struct ingest_proto_w *w)
{
	size_t off = 0;

	if (w->err != 0 || w->fd < 0)
		return w->err;
	while (off < w->len) {
		ssize_t k = write(w->fd, w->buf + off, w->len - off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			w->err = SBX_EIO;
			return w->err;
		}
		off += (size_t)k;
	}
	w->len = 0;
	return 0;
}

static int out(struct ingest_proto_w *w, const void *p, size_t n)
{
	if (w->err != 0)
		return w->err;
	if (n > w->cap - w->len) {
		if (w->fd >= 0) {
			if (ingest_proto_flush(w) != 0)
				return w->err;
		}
		if (n > w->cap - w->len) {
			size_t cap = w->cap;
			uint8_t *nb;

			while (n > cap - w->len)
				cap *= 2;
			nb = realloc(w->buf, cap);
			if (nb == NULL) {
				w->err = SBX_ENOMEM;
				return w->err;
			}
			w->buf = nb;
			w->cap = cap;
		}
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
	return 0;
}

static int frame(struct ingest_proto_w *w, uint8_t type, const uint8_t *p, size_t n)
{
	uint8_t h[5] = { type, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };

	if (n > INGEST_PROTO_MAX_PAYLOAD) {
		if (w->err == 0)
			w->err = SBX_EFORMAT;
		return w->err;
	}
	if (out(w, h, sizeof h) != 0 || (n > 0 && out(w, p, n) != 0))
		return w->err;
	return 0;
}

/* The scratch encoder is reused for every message: the protocol sends a
 * million reads, and a fresh allocation each would cost more than the
 * encoding. */
static struct wire_w *scratch(struct ingest_proto_w *w)
{
	wire_w_reset(&w->scratch);
	return &w->scratch;
}

static int send_scratch(struct ingest_proto_w *w, uint8_t type)
{
	if (w->scratch.err != 0) {
		if (w->err == 0)
			w->err = w->scratch.err;
		return w->err;
	}
	return frame(w, type, w->scratch.p, w->scratch.len);
}

int ingest_proto_put_hello(struct ingest_proto_w *w)
{
	struct wire_w *s = scratch(w);

	wire_put_u16(s, INGEST_PROTO_VERSION);
	return send_scratch(w, INGEST_MSG_HELLO);
}

int ingest_proto_put_read(struct ingest_proto_w *w, const char *source, uint64_t line,
                          const struct read *r)
{
	struct wire_w *s = scratch(w);

	wire_put_str16(s, source);
	wire_put_u64(s, line);
	wire_put_str16(s, r->vendor_id);
	wire_put_str16(s, r->plate);
	wire_put_str16(s, r->region);
	wire_put_u64(s, (uint64_t)r->captured_at_ms);
	wire_put_str16(s, r->camera_id);
	wire_put_str16(s, r->camera_name);
	wire_put_u8(s, (uint8_t)(r->has_location != 0));
	wire_put_u32(s, (uint32_t)r->lat_e7);
	wire_put_u32(s, (uint32_t)r->lon_e7);
	wire_put_u16(s, r->heading < 0 ? ABSENT16 : (uint16_t)r->heading);
	wire_put_u16(s, r->confidence < 0 ? ABSENT16 : (uint16_t)r->confidence);
	wire_put_str16(s, r->vehicle_make);
	wire_put_str16(s, r->vehicle_color);
	wire_put_str16(s, r->vehicle_type);
	wire_put_str16(s, r->plate_image);
	wire_put_str16(s, r->overview_image);
	return send_scratch(w, INGEST_MSG_READ);
}

int ingest_proto_put_image(struct ingest_proto_w *w, const char *read_id, enum ingest_image_kind kind,
                           const char *name, const uint8_t *p, size_t n)
{
	struct wire_w *s = scratch(w);
	size_t off = 0;

	if (n > UINT32_MAX) {
		w->err = SBX_EFORMAT;
		return w->err;
	}
	wire_put_str16(s, read_id);
	wire_put_u8(s, (uint8_t)kind);
	wire_put_str16(s, name);
	wire_put_u32(s, (uint32_t)n);
	if (send_scratch(w, INGEST_MSG_IMAGE) != 0)
		return w->err;
	while (off < n) {
		size_t k = n - off > INGEST_PROTO_MAX_PAYLOAD ? INGEST_PROTO_MAX_PAYLOAD : n - off;

		if (frame(w, INGEST_MSG_DATA, p + off, k) != 0)
			return w->err;
		off += k;
	}
	return frame(w, INGEST_MSG_END, NULL, 0);
}

int ingest_proto_put_done(struct ingest_proto_w *w, const struct ingest_summary *sum)
{
	struct wire_w *s = scratch(w);

	wire_put_u64(s, sum->reads);
	wire_put_u64(s, sum->images);
	wire_put_u64(s, sum->image_bytes);
	wire_put_u64(s, sum->reads_files);
	wire_put_u64(s, sum->ignored);
	return send_scratch(w, INGEST_MSG_DONE);
}

int ingest_proto_put_error(struct ingest_proto_w *w, int code, const char *msg)
{
	struct wire_w *s = scratch(w);
	char clean[512];
	size_t n = 0;

	/* Keep the message one valid line even if it quotes hostile bytes. */
	for (size_t i = 0; msg != NULL && msg[i] != '\0' && n + 1 < sizeof clean; i++) {
		unsigned char c = (unsigned char)msg[i];

		clean[n++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	clean[n] = '\0';
	wire_put_u32(s, (uint32_t)(code < 0 ? -code : code));
	wire_put_str16(s, clean);
	return send_scratch(w, INGEST_MSG_ERROR);
}

/* ---- decoder ---- */

enum { D_HELLO, D_READS, D_IMAGES, D_IN_IMAGE, D_DONE, D_FAILED };

#define F_PLATE_DECL 1u
#define F_PLATE_DONE 2u
#define F_OV_DECL    4u
#define F_OV_DONE    8u

/* What the parent keeps of a read that declared images, to check them as
 * they arrive.  Reads without images (most of a large batch) leave only
 * their id in the set of ids; these live in fixed-size blocks that never
 * move, so no copy is held while they grow. */
struct read_info {
	uint64_t plate_h, ov_h;
	uint8_t flags;
};

#define INFO_BLOCK_SHIFT 12
#define INFO_BLOCK       ((size_t)1 << INFO_BLOCK_SHIFT)

struct ingest_proto_dec {
	struct ingest_limits lim;
	struct ingest_sink sink;
	int state, err;
	uint8_t hdr[5];
	size_t hlen;
	uint8_t type;
	uint8_t *pl;
	size_t plen, pwant;
	struct reads_idset *ids;        /* every vendor id, without values */
	struct reads_idset *imgs;       /* ids of reads with images -> info number */
	struct read_info **info;        /* blocks of INFO_BLOCK */
	size_t ninfo, nblocks, capblocks;
	uint64_t declared;
	/* the image being received */
	uint8_t *img;
	uint32_t img_len, img_got;
	enum ingest_image_kind img_kind;
	uint64_t img_idx;
	char img_id[READ_ID_MAX + 1];
	char img_name[READ_PATH_MAX + 1];
	struct ingest_summary sum;
	struct read r;
	char source[INGEST_PROTO_SOURCE_MAX + 1];
};

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

struct ingest_proto_dec *ingest_proto_dec_new(const struct ingest_limits *lim,
                                              const struct ingest_sink *sink)
{
	struct ingest_proto_dec *d = calloc(1, sizeof *d);

	if (d == NULL)
		return NULL;
	if (lim != NULL)
		d->lim = *lim;
	else
		ingest_limits_default(&d->lim);
	if (sink != NULL)
		d->sink = *sink;
	d->pl = malloc(INGEST_PROTO_MAX_PAYLOAD);
	d->ids = reads_idset_new_keys();
	d->imgs = reads_idset_new();
	if (d->pl == NULL || d->ids == NULL || d->imgs == NULL) {
		ingest_proto_dec_free(d);
		return NULL;
	}
	return d;
}

void ingest_proto_dec_free(struct ingest_proto_dec *d)
{
	if (d == NULL)
		return;
	free(d->pl);
	free(d->img);
	for (size_t i = 0; i < d->nblocks; i++)
		free(d->info[i]);
	free(d->info);
	reads_idset_free(d->ids);
	reads_idset_free(d->imgs);
	free(d);
}

int ingest_proto_dec_finished(const struct ingest_proto_dec *d)
{
	return d->state == D_DONE || d->state == D_FAILED;
}

static struct read_info *info_at(const struct ingest_proto_dec *d, uint64_t i)
{
	return &d->info[i >> INFO_BLOCK_SHIFT][i & (INFO_BLOCK - 1)];
}

/* Room for one more read_info; 0 or SBX_ENOMEM. */
static int info_room(struct ingest_proto_dec *d)
{
	if ((d->ninfo >> INFO_BLOCK_SHIFT) < d->nblocks)
		return 0;
	if (d->nblocks == d->capblocks) {
		size_t cap = d->capblocks ? d->capblocks * 2 : 16;
		struct read_info **nb = realloc(d->info, cap * sizeof(struct read_info *));

		if (nb == NULL)
			return SBX_ENOMEM;
		d->info = nb;
		d->capblocks = cap;
	}
	d->info[d->nblocks] = malloc(INFO_BLOCK * sizeof **d->info);
	if (d->info[d->nblocks] == NULL)
		return SBX_ENOMEM;
	d->nblocks++;
	return 0;
}

static int dfail(struct ingest_proto_dec *d, struct sbx_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int dfail(struct ingest_proto_dec *d, struct sbx_err *e, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	d->state = D_FAILED;
	d->err = code;
	sbx_fail(e, code, "%s", msg);
	return code;
}

static int m_read(struct ingest_proto_dec *d, struct wire_r *rd, struct sbx_err *e)
{
	struct read *r = &d->r;
	enum read_field f;
	const char *why = "";
	uint64_t line;
	uint16_t h, c;
	int rc;

	memset(r, 0, sizeof *r);
	wire_get_str16(rd, d->source, INGEST_PROTO_SOURCE_MAX);
	line = wire_get_u64(rd);
	wire_get_str16(rd, r->vendor_id, READ_ID_MAX);
	wire_get_str16(rd, r->plate, READ_PLATE_MAX);
	wire_get_str16(rd, r->region, READ_REGION_MAX);
	r->captured_at_ms = (int64_t)wire_get_u64(rd);
	wire_get_str16(rd, r->camera_id, READ_ID_MAX);
	wire_get_str16(rd, r->camera_name, READ_NAME_MAX);
	r->has_location = wire_get_u8(rd);
	r->lat_e7 = (int32_t)wire_get_u32(rd);
	r->lon_e7 = (int32_t)wire_get_u32(rd);
	h = wire_get_u16(rd);
	c = wire_get_u16(rd);
	r->heading = h == ABSENT16 ? -1 : h;
	r->confidence = c == ABSENT16 ? -1 : c;
	wire_get_str16(rd, r->vehicle_make, READ_VEHICLE_MAX);
	wire_get_str16(rd, r->vehicle_color, READ_VEHICLE_MAX);
	wire_get_str16(rd, r->vehicle_type, READ_VEHICLE_MAX);
	wire_get_str16(rd, r->plate_image, READ_PATH_MAX);
	wire_get_str16(rd, r->overview_image, READ_PATH_MAX);
	if (wire_r_end(rd) != 0)
		return dfail(d, e, SBX_EFORMAT, "ingest protocol: malformed read message");
	if (read_check(r, &f, &why) != 0) {
		d->state = D_FAILED;
		d->err = SBX_EFORMAT;
		return sbx_fail(e, SBX_EFORMAT, "%s line %llu, field %s: %s (rejected by the parent)",
		                d->source, (unsigned long long)line, read_field_name(f), why);
	}
	/* Presence bits as a locally parsed read would have them. */
	r->present = (1u << READ_F_VENDOR_ID) | (1u << READ_F_PLATE) |
	             (1u << READ_F_CAPTURED_AT) | (1u << READ_F_CAMERA_ID);
	r->present |= r->region[0] ? 1u << READ_F_REGION : 0;
	r->present |= r->camera_name[0] ? 1u << READ_F_CAMERA_NAME : 0;
	r->present |= r->has_location ? (1u << READ_F_LATITUDE) | (1u << READ_F_LONGITUDE) : 0;
	r->present |= r->heading >= 0 ? 1u << READ_F_HEADING : 0;
	r->present |= r->confidence >= 0 ? 1u << READ_F_CONFIDENCE : 0;
	r->present |= r->vehicle_make[0] ? 1u << READ_F_MAKE : 0;
	r->present |= r->vehicle_color[0] ? 1u << READ_F_COLOR : 0;
	r->present |= r->vehicle_type[0] ? 1u << READ_F_TYPE : 0;
	r->present |= r->plate_image[0] ? 1u << READ_F_PLATE_IMAGE : 0;
	r->present |= r->overview_image[0] ? 1u << READ_F_OVERVIEW_IMAGE : 0;
	if (d->sum.reads >= d->lim.max_reads)
		return dfail(d, e, SBX_EFORMAT, "more reads than the cap of the batch");
	rc = reads_idset_add(d->ids, r->vendor_id, strlen(r->vendor_id), 0);
	if (rc == SBX_EEXIST) {
		d->state = D_FAILED;
		d->err = SBX_EFORMAT;
		return sbx_fail(e, SBX_EFORMAT, "%s line %llu, field vendor_read_id: duplicate id \"%s\"",
		                d->source, (unsigned long long)line, r->vendor_id);
	}
	if (rc != 0)
		return dfail(d, e, rc, "ingest: out of memory");
	if (r->plate_image[0] || r->overview_image[0]) {
		struct read_info *ri;

		if (info_room(d) != 0 ||
		    reads_idset_add(d->imgs, r->vendor_id, strlen(r->vendor_id), d->ninfo) != 0)
			return dfail(d, e, SBX_ENOMEM, "ingest: out of memory");
		ri = info_at(d, d->ninfo);
		ri->flags = (r->plate_image[0] ? F_PLATE_DECL : 0) | (r->overview_image[0] ? F_OV_DECL : 0);
		ri->plate_h = r->plate_image[0] ? fnv1a(r->plate_image) : 0;
		ri->ov_h = r->overview_image[0] ? fnv1a(r->overview_image) : 0;
		d->declared += (r->plate_image[0] != 0) + (r->overview_image[0] != 0);
		d->ninfo++;
	}
	if (d->sum.reads == 0 || r->captured_at_ms < d->sum.first_ms)
		d->sum.first_ms = r->captured_at_ms;
	if (d->sum.reads == 0 || r->captured_at_ms > d->sum.last_ms)
		d->sum.last_ms = r->captured_at_ms;
	d->sum.reads++;
	if (d->sink.on_read != NULL && (rc = d->sink.on_read(d->sink.ctx, r, e)) != 0) {
		d->state = D_FAILED;
		d->err = rc;
		return sbx_fail(e, rc, "ingest: the read sink failed");
	}
	return 0;
}

static int m_image(struct ingest_proto_dec *d, struct wire_r *rd, struct sbx_err *e)
{
	uint64_t *idx;
	uint8_t kind;
	uint32_t size, cap;
	struct read_info *ri;
	unsigned decl, done;
	uint64_t h;

	wire_get_str16(rd, d->img_id, READ_ID_MAX);
	kind = wire_get_u8(rd);
	wire_get_str16(rd, d->img_name, READ_PATH_MAX);
	size = wire_get_u32(rd);
	if (wire_r_end(rd) != 0 || (kind != INGEST_IMAGE_PLATE && kind != INGEST_IMAGE_OVERVIEW))
		return dfail(d, e, SBX_EFORMAT, "ingest protocol: malformed image message");
	if (!reads_idset_has(d->ids, d->img_id, strlen(d->img_id)))
		return dfail(d, e, SBX_EFORMAT, "ingest protocol: image for unknown read \"%s\"", d->img_id);
	/* A known read that is not in imgs declared no image. */
	idx = reads_idset_find(d->imgs, d->img_id, strlen(d->img_id));
	ri = idx != NULL ? info_at(d, *idx) : NULL;
	decl = kind == INGEST_IMAGE_PLATE ? F_PLATE_DECL : F_OV_DECL;
	done = kind == INGEST_IMAGE_PLATE ? F_PLATE_DONE : F_OV_DONE;
	h = ri == NULL ? 0 : kind == INGEST_IMAGE_PLATE ? ri->plate_h : ri->ov_h;
	if (ri == NULL || !(ri->flags & decl) || (ri->flags & done) || h != fnv1a(d->img_name))
		return dfail(d, e, SBX_EFORMAT, "ingest protocol: unexpected image for read \"%s\"", d->img_id);
	cap = kind == INGEST_IMAGE_PLATE ? d->lim.max_plate_image : d->lim.max_overview_image;
	if (size < 8 || size > cap)
		return dfail(d, e, SBX_EFORMAT, "ingest protocol: image size out of bounds for read \"%s\"", d->img_id);
	d->img = malloc(size);
	if (d->img == NULL)
		return dfail(d, e, SBX_ENOMEM, "ingest: out of memory");
	d->img_len = size;
	d->img_got = 0;
	d->img_kind = kind;
	d->img_idx = *idx;
	d->state = D_IN_IMAGE;
	return 0;
}

static int m_image_end(struct ingest_proto_dec *d, struct sbx_err *e)
{
	int rc;

	if (d->img_got != d->img_len)
		return dfail(d, e, SBX_EFORMAT, "ingest protocol: short image for read \"%s\"", d->img_id);
	if (reads_image_magic(d->img, d->img_len) == READS_IMG_NONE)
		return dfail(d, e, SBX_EFORMAT, "ingest protocol: image for read \"%s\" is not JPEG or PNG", d->img_id);
	info_at(d, d->img_idx)->flags |= d->img_kind == INGEST_IMAGE_PLATE ? F_PLATE_DONE : F_OV_DONE;
	d->sum.images++;
	d->sum.image_bytes += d->img_len;
	if (d->sink.on_image != NULL &&
	    (rc = d->sink.on_image(d->sink.ctx, d->img_id, d->img_kind, d->img_name, d->img, d->img_len, e)) != 0) {
		d->state = D_FAILED;
		d->err = rc;
		return sbx_fail(e, rc, "ingest: the image sink failed");
	}
	free(d->img);
	d->img = NULL;
	d->state = D_IMAGES;
	return 0;
}

static int m_done(struct ingest_proto_dec *d, struct wire_r *rd, struct sbx_err *e)
{
	uint64_t reads = wire_get_u64(rd), images = wire_get_u64(rd), bytes = wire_get_u64(rd);

	d->sum.reads_files = wire_get_u64(rd);
	d->sum.ignored = wire_get_u64(rd);
	if (wire_r_end(rd) != 0)
		return dfail(d, e, SBX_EFORMAT, "ingest protocol: malformed end message");
	if (reads != d->sum.reads || images != d->sum.images || bytes != d->sum.image_bytes)
		return dfail(d, e, SBX_EFORMAT, "ingest protocol: end counts disagree with what arrived");
	if (d->declared != d->sum.images)
		return dfail(d, e, SBX_EFORMAT, "ingest protocol: %s", "images declared by reads did not all arrive");
	d->state = D_DONE;
	return 0;
}

static int m_error(struct ingest_proto_dec *d, struct wire_r *rd, struct sbx_err *e)
{
	uint32_t code = wire_get_u32(rd);
	char msg[512];
	int c;

	wire_get_str16(rd, msg, sizeof msg - 1);
	if (wire_r_end(rd) != 0)
		return dfail(d, e, SBX_EFORMAT, "ingest protocol: malformed error message");
	for (char *p = msg; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	c = code >= 1 && code <= 13 ? -(int)code : SBX_EFORMAT;
	return dfail(d, e, c, "%s", msg[0] ? msg : "ingest child failed");
}

static int dispatch(struct ingest_proto_dec *d, struct sbx_err *e)
{
	struct wire_r rd;
	uint16_t v;

	wire_r_init(&rd, d->pl, d->plen);
	if (d->type == INGEST_MSG_ERROR)
		return m_error(d, &rd, e);
	switch (d->state) {
	case D_HELLO:
		if (d->type != INGEST_MSG_HELLO)
			break;
		v = wire_get_u16(&rd);
		if (wire_r_end(&rd) != 0 || v != INGEST_PROTO_VERSION)
			return dfail(d, e, SBX_EFORMAT, "ingest protocol: %s", "unsupported version");
		d->state = D_READS;
		return 0;
	case D_READS:
	case D_IMAGES:
		if (d->type == INGEST_MSG_READ && d->state == D_READS)
			return m_read(d, &rd, e);
		if (d->type == INGEST_MSG_IMAGE)
			return m_image(d, &rd, e);
		if (d->type == INGEST_MSG_DONE)
			return m_done(d, &rd, e);
		break;
	case D_IN_IMAGE:
		if (d->type == INGEST_MSG_DATA) {
			if (d->plen == 0 || d->plen > d->img_len - d->img_got)
				return dfail(d, e, SBX_EFORMAT, "ingest protocol: image data overruns read \"%s\"", d->img_id);
			memcpy(d->img + d->img_got, d->pl, d->plen);
			d->img_got += (uint32_t)d->plen;
			return 0;
		}
		if (d->type == INGEST_MSG_END && d->plen == 0)
			return m_image_end(d, e);
		break;
	default:
		break;
	}
	return dfail(d, e, SBX_EFORMAT, "ingest protocol: message '%c' out of order or unknown",
	             d->type >= 0x20 && d->type < 0x7f ? d->type : '?');
}

int ingest_proto_dec_feed(struct ingest_proto_dec *d, const uint8_t *p, size_t n,
                          struct sbx_err *e)
{
	size_t i = 0;

	if (d->state == D_FAILED)
		return d->err ? d->err : SBX_EFORMAT;
	while (i < n) {
		if (d->state == D_DONE)
			return dfail(d, e, SBX_EFORMAT, "ingest protocol: %s", "bytes after the end message");
		if (d->hlen < sizeof d->hdr) {
			size_t k = sizeof d->hdr - d->hlen;

			if (k > n - i)
				k = n - i;
			memcpy(d->hdr + d->hlen, p + i, k);
			d->hlen += k;
			i += k;
			if (d->hlen < sizeof d->hdr)
				break;
			d->type = d->hdr[0];
			d->pwant = ((size_t)d->hdr[1] << 24) | ((size_t)d->hdr[2] << 16) |
			           ((size_t)d->hdr[3] << 8) | d->hdr[4];
			d->plen = 0;
			if (d->pwant > INGEST_PROTO_MAX_PAYLOAD)
				return dfail(d, e, SBX_EFORMAT, "ingest protocol: %s", "message over the size cap");
		}
		if (d->plen < d->pwant) {
			size_t k = d->pwant - d->plen;

			if (k > n - i)
				k = n - i;
			memcpy(d->pl + d->plen, p + i, k);
			d->plen += k;
			i += k;
			if (d->plen < d->pwant)
				break;
		}
		d->hlen = 0;
		if (dispatch(d, e) != 0)
			return d->err ? d->err : SBX_EFORMAT;
	}
	return 0;
}

int ingest_proto_dec_end(struct ingest_proto_dec *d, struct ingest_summary *sum, struct sbx_err *e)
{
	if (d->state == D_FAILED)
		return d->err ? d->err : SBX_EFORMAT;
	if (d->state != D_DONE || d->hlen != 0)
		return dfail(d, e, SBX_EFORMAT, "ingest protocol: %s", "the child stopped before the end message");
	if (sum != NULL)
		*sum = d->sum;
	return 0;
}

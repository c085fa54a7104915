/* The payload's plaintext framing (docs/FORMAT.md 5.2): path rules, the
 * framing writer, the strict streaming parser, image names.
 *
 * One rule keeps both sides at constant memory whatever the item sizes:
 * DATA frames go to item 0, item 1 or the most recently declared item, so at
 * most three items are open at a time (reads.jsonl, reads.csv, one image).
 * The index lists items in item order, but images close before the reads
 * do; so the parser checks index entries 0 and 1 directly and the image
 * entries as one running hash: SHA-256 over the entries it expects (built as
 * each image closes) against SHA-256 over the entry bytes the index holds. */
#include "export/bundle_payload.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "crypto/hash.h"
#include "export/atomic.h"

#define TEXT_BUF        (64 * 1024)     /* reads.jsonl / reads.csv batching */
#define SPOOL_BUF       (64 * 1024)
#define ENTRY_FIXED     (8 + 32)        /* u64 size | sha256 after the path */
#define ENTRY_MAX       (2 + BUNDLE_MAX_PATH + ENTRY_FIXED)

static const char *const text_path[2] = { "reads.jsonl", "reads.csv" };

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

/* str16 path | u64 size | sha256: one index entry; returns its length. */
static size_t entry_encode(uint8_t *out, const char *path, size_t plen, uint64_t size,
                           const uint8_t hash[static 32])
{
	out[0] = (uint8_t)(plen >> 8);
	out[1] = (uint8_t)plen;
	memcpy(out + 2, path, plen);
	put_u64(out + 2 + plen, size);
	memcpy(out + 2 + plen + 8, hash, 32);
	return 2 + plen + ENTRY_FIXED;
}

int payload_ad(const struct bundle_manifest *m, uint8_t out[static PAYLOAD_MAX_AD],
               size_t *len)
{
	size_t n = strnlen(m->case_id, sizeof m->case_id);

	*len = 0;
	if (n > 128)
		return SBX_EINVAL;
	memcpy(out, BUNDLE_NS_PAYLOAD_AD, sizeof BUNDLE_NS_PAYLOAD_AD);   /* with its NUL */
	memcpy(out + sizeof BUNDLE_NS_PAYLOAD_AD, m->appliance_id, 32);
	memcpy(out + sizeof BUNDLE_NS_PAYLOAD_AD + 32, m->case_id, n);
	*len = sizeof BUNDLE_NS_PAYLOAD_AD + 32 + n;
	return 0;
}

static int name_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-' || c == '~';
}

int payload_path_check(uint32_t no, const char *path, size_t len)
{
	if (no <= PAYLOAD_ITEM_CSV)
		return len == strlen(text_path[no]) && memcmp(path, text_path[no], len) == 0 ?
		       0 : SBX_EFORMAT;
	if (len < 8 || len > 7 + BUNDLE_MAX_IMAGE_NAME || memcmp(path, "images/", 7) != 0 ||
	    path[7] == '.')
		return SBX_EFORMAT;
	for (size_t i = 7; i < len; i++)
		if (!name_char((unsigned char)path[i]))
			return SBX_EFORMAT;
	return 0;
}

/* Bytes kept as themselves in an image name; '.' only after the first. */
static int id_plain(unsigned char c, size_t pos)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || (c == '.' && pos > 0);
}

int bundle_image_name(const char *read_id, const char *kind, const char *ext,
                      char *out, size_t cap)
{
	static const char hx[] = "0123456789ABCDEF";
	size_t o = 0, idlen;
	int n;

	if (cap > 0)
		out[0] = '\0';
	if (read_id == NULL || kind == NULL || ext == NULL || read_id[0] == '\0' ||
	    (strcmp(kind, "plate") != 0 && strcmp(kind, "overview") != 0) ||
	    (strcmp(ext, "jpg") != 0 && strcmp(ext, "png") != 0))
		return SBX_EINVAL;
	idlen = strlen(read_id);
	if (cap < 8)
		return SBX_EINVAL;
	memcpy(out, "images/", 7);
	o = 7;
	for (size_t i = 0; i < idlen; i++) {
		unsigned char c = (unsigned char)read_id[i];

		if (o + 4 > cap)
			return SBX_EINVAL;
		if (id_plain(c, i)) {
			out[o++] = (char)c;
		} else {
			out[o++] = '~';
			out[o++] = hx[c >> 4];
			out[o++] = hx[c & 15];
		}
	}
	n = snprintf(out + o, cap - o, ".%s.%s", kind, ext);
	if (n < 0 || (size_t)n >= cap - o || o + (size_t)n - 7 > BUNDLE_MAX_IMAGE_NAME) {
		out[0] = '\0';
		return SBX_EINVAL;
	}
	return 0;
}

/* ---- set of 16-byte digests ---------------------------------------------- */

struct payload_set {
	uint8_t (*slot)[16];
	uint64_t cap, count;    /* cap a power of two, count <= cap / 2 */
	int has_zero;           /* the all-zero key, which marks empty slots */
};

struct payload_set *payload_set_new(void)
{
	struct payload_set *s = calloc(1, sizeof *s);

	if (s == NULL)
		return NULL;
	s->cap = 1024;
	s->slot = calloc(s->cap, sizeof *s->slot);
	if (s->slot == NULL) {
		free(s);
		return NULL;
	}
	return s;
}

void payload_set_free(struct payload_set *s)
{
	if (s == NULL)
		return;
	free(s->slot);
	free(s);
}

uint64_t payload_set_count(const struct payload_set *s)
{
	return s->count;
}

static int is_zero16(const uint8_t k[16])
{
	uint8_t acc = 0;

	for (int i = 0; i < 16; i++)
		acc |= k[i];
	return acc == 0;
}

/* Linear probing; the key bytes are SHA-256 output, so uniform. */
static uint8_t *set_find(uint8_t (*slot)[16], uint64_t cap, const uint8_t k[16])
{
	uint64_t i = get_u64(k) & (cap - 1);

	while (!is_zero16(slot[i]) && memcmp(slot[i], k, 16) != 0)
		i = (i + 1) & (cap - 1);
	return slot[i];
}

static int set_grow(struct payload_set *s)
{
	uint64_t ncap = s->cap * 2;
	uint8_t (*ns)[16];

	if (ncap > ((uint64_t)1 << 40) / 16)
		return SBX_ENOMEM;
	ns = calloc(ncap, sizeof *ns);
	if (ns == NULL)
		return SBX_ENOMEM;
	for (uint64_t i = 0; i < s->cap; i++)
		if (!is_zero16(s->slot[i]))
			memcpy(set_find(ns, ncap, s->slot[i]), s->slot[i], 16);
	free(s->slot);
	s->slot = ns;
	s->cap = ncap;
	return 0;
}

int payload_set_add(struct payload_set *s, const void *k, size_t n)
{
	uint8_t dg[32], *p;
	int r;

	if (hash_sha256(k, n, dg) != 0)
		return SBX_ECRYPTO;
	if (is_zero16(dg)) {
		if (s->has_zero)
			return SBX_EEXIST;
		s->has_zero = 1;
		s->count++;
		return 0;
	}
	if ((s->count + 1) * 2 > s->cap && (r = set_grow(s)) != 0)
		return r;
	p = set_find(s->slot, s->cap, dg);
	if (!is_zero16(p))
		return SBX_EEXIST;
	memcpy(p, dg, 16);
	s->count++;
	return 0;
}

/* ---- writer --------------------------------------------------------------- */

struct payload_w {
	payload_out_fn out;
	void *arg;
	int err;                        /* sticky */
	uint64_t bytes;
	uint32_t n_items;
	uint8_t *text[2];
	size_t tlen[2];
	struct hash_ctx *th[2];
	uint64_t tsize[2];
	struct hash_ctx *img, *idx;
	struct payload_set *paths;
	int spool_fd;                   /* image index entries, unlinked */
	uint8_t *sbuf;
	size_t slen;
	uint64_t spool_len;
};

static int w_out(struct payload_w *pw, const void *p, size_t n, struct sbx_err *e)
{
	int r;

	if (n == 0)
		return 0;
	r = pw->out(pw->arg, p, n, e);
	if (r != 0)
		return r;
	pw->bytes += n;
	return 0;
}

static int w_item(struct payload_w *pw, const char *path, struct sbx_err *e)
{
	uint8_t hdr[1 + 4 + 2];
	size_t plen = strlen(path);
	int r;

	if (pw->n_items >= BUNDLE_MAX_ITEMS)
		return sbx_fail(e, SBX_EINVAL, "bundle: more than %u items", BUNDLE_MAX_ITEMS);
	hdr[0] = PAYLOAD_F_ITEM;
	put_u32(hdr + 1, pw->n_items);
	hdr[5] = (uint8_t)(plen >> 8);
	hdr[6] = (uint8_t)plen;
	r = w_out(pw, hdr, sizeof hdr, e);
	if (r == 0)
		r = w_out(pw, path, plen, e);
	if (r == 0)
		pw->n_items++;
	return r;
}

/* DATA frames of at most BUNDLE_MAX_DATA_FRAME bytes each. */
static int w_data(struct payload_w *pw, uint32_t no, const uint8_t *p, size_t n,
                  struct sbx_err *e)
{
	while (n > 0) {
		size_t k = n > BUNDLE_MAX_DATA_FRAME ? BUNDLE_MAX_DATA_FRAME : n;
		uint8_t hdr[1 + 4 + 4];
		int r;

		hdr[0] = PAYLOAD_F_DATA;
		put_u32(hdr + 1, no);
		put_u32(hdr + 5, (uint32_t)k);
		r = w_out(pw, hdr, sizeof hdr, e);
		if (r == 0)
			r = w_out(pw, p, k, e);
		if (r != 0)
			return r;
		p += k;
		n -= k;
	}
	return 0;
}

int payload_w_new(const char *dir, payload_out_fn out, void *arg,
                  struct payload_w **pwp, struct sbx_err *e)
{
	struct payload_w *pw = NULL;
	uint8_t rnd[8];
	char hex[17], path[4096];
	int r = SBX_ENOMEM, n;

	*pwp = NULL;
	pw = calloc(1, sizeof *pw);
	if (pw == NULL)
		goto fail;
	pw->spool_fd = -1;
	pw->out = out;
	pw->arg = arg;
	pw->text[0] = malloc(TEXT_BUF);
	pw->text[1] = malloc(TEXT_BUF);
	pw->sbuf = malloc(SPOOL_BUF);
	pw->th[0] = hash_new();
	pw->th[1] = hash_new();
	pw->img = hash_new();
	pw->idx = hash_new();
	pw->paths = payload_set_new();
	if (pw->text[0] == NULL || pw->text[1] == NULL || pw->sbuf == NULL || pw->th[0] == NULL ||
	    pw->th[1] == NULL || pw->img == NULL || pw->idx == NULL || pw->paths == NULL) {
		r = sbx_fail(e, SBX_ENOMEM, "bundle: out of memory");
		goto fail;
	}
	if (RAND_bytes(rnd, sizeof rnd) != 1) {
		r = sbx_fail(e, SBX_ECRYPTO, "bundle: no randomness for a temporary name");
		goto fail;
	}
	hash_hex(rnd, sizeof rnd, hex);
	n = snprintf(path, sizeof path, "%s/sbx-%s.index.tmp", dir, hex);
	if (n < 0 || (size_t)n >= sizeof path) {
		r = sbx_fail(e, SBX_EINVAL, "bundle: directory name too long");
		goto fail;
	}
	/* Unlinked at once: nothing to clean up, even after a crash. */
	pw->spool_fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (pw->spool_fd < 0) {
		r = sbx_fail(e, SBX_EIO, "bundle: cannot create %s: %s", path, strerror(errno));
		goto fail;
	}
	if (unlink(path) != 0) {
		r = sbx_fail(e, SBX_EIO, "bundle: cannot unlink %s: %s", path, strerror(errno));
		goto fail;
	}
	{
		static const uint8_t magic[5] = { 'S', 'B', 'X', 'P', PAYLOAD_VERSION };

		r = w_out(pw, magic, sizeof magic, e);
	}
	if (r == 0)
		r = w_item(pw, text_path[0], e);
	if (r == 0)
		r = w_item(pw, text_path[1], e);
	if (r != 0)
		goto fail;
	*pwp = pw;
	return 0;
fail:
	payload_w_free(pw);
	return r;
}

static int text_flush(struct payload_w *pw, int k, struct sbx_err *e)
{
	int r = w_data(pw, (uint32_t)k, pw->text[k], pw->tlen[k], e);

	OPENSSL_cleanse(pw->text[k], pw->tlen[k]);
	pw->tlen[k] = 0;
	return r;
}

static int text_add(struct payload_w *pw, int k, const char *s, size_t n, struct sbx_err *e)
{
	int r;

	if (n == 0)
		return 0;
	if (hash_update(pw->th[k], s, n) != 0)
		return sbx_fail(e, SBX_ECRYPTO, "bundle: hashing %s failed", text_path[k]);
	pw->tsize[k] += n;
	if (pw->tlen[k] + n > TEXT_BUF && (r = text_flush(pw, k, e)) != 0)
		return r;
	if (n >= TEXT_BUF)
		return w_data(pw, (uint32_t)k, (const uint8_t *)s, n, e);
	memcpy(pw->text[k] + pw->tlen[k], s, n);
	pw->tlen[k] += n;
	return 0;
}

int payload_w_text(struct payload_w *pw, const char *jsonl, size_t jl,
                   const char *csv, size_t cl, struct sbx_err *e)
{
	int r;

	if (pw->err != 0)
		return sbx_fail(e, pw->err, "bundle: the payload writer already failed");
	r = text_add(pw, 0, jsonl, jl, e);
	if (r == 0)
		r = text_add(pw, 1, csv, cl, e);
	if (r != 0)
		pw->err = r;
	return r;
}

static int spool_flush(struct payload_w *pw, struct sbx_err *e)
{
	if (pw->slen > 0 && atomic_write_all(pw->spool_fd, pw->sbuf, pw->slen) != 0)
		return sbx_fail(e, SBX_EIO, "bundle: writing the index spool failed: %s",
		                strerror(errno));
	pw->slen = 0;
	return 0;
}

static int spool_add(struct payload_w *pw, const uint8_t *p, size_t n, struct sbx_err *e)
{
	int r;

	if (pw->slen + n > SPOOL_BUF && (r = spool_flush(pw, e)) != 0)
		return r;
	memcpy(pw->sbuf + pw->slen, p, n);
	pw->slen += n;
	pw->spool_len += n;
	return 0;
}

int payload_w_image(struct payload_w *pw, const char *path, const uint8_t *data,
                    size_t len, struct sbx_err *e)
{
	uint8_t entry[ENTRY_MAX], dg[32];
	size_t plen;
	int r;

	if (pw->err != 0)
		return sbx_fail(e, pw->err, "bundle: the payload writer already failed");
	if (path == NULL || (plen = strlen(path)) == 0 || payload_path_check(2, path, plen) != 0)
		return sbx_fail(e, SBX_EINVAL, "bundle: '%.80s' is not an image path (images/NAME, "
		                "NAME 1-%d of A-Z a-z 0-9 . _ - ~, not starting with '.')",
		                path ? path : "", BUNDLE_MAX_IMAGE_NAME);
	if (len == 0 || data == NULL)
		return sbx_fail(e, SBX_EINVAL, "bundle: image %s is empty", path);
	r = payload_set_add(pw->paths, path, plen);
	if (r == SBX_EEXIST)
		return sbx_fail(e, SBX_EINVAL, "bundle: duplicate image path %s", path);
	if (r != 0)
		goto out;
	r = w_item(pw, path, e);
	if (r == 0)
		r = w_data(pw, pw->n_items - 1, data, len, e);
	if (r != 0)
		goto out;
	if (hash_update(pw->img, data, len) != 0 || hash_final(pw->img, dg) != 0) {
		r = sbx_fail(e, SBX_ECRYPTO, "bundle: hashing %s failed", path);
		goto out;
	}
	r = spool_add(pw, entry, entry_encode(entry, path, plen, len, dg), e);
out:
	if (r != 0)
		pw->err = r;
	return r;
}

/* Index bytes: hashed and emitted. */
static int idx_out(struct payload_w *pw, const uint8_t *p, size_t n, struct sbx_err *e)
{
	if (hash_update(pw->idx, p, n) != 0)
		return sbx_fail(e, SBX_ECRYPTO, "bundle: hashing the index failed");
	return w_out(pw, p, n, e);
}

int payload_w_finish(struct payload_w *pw, struct payload_summary *sum, struct sbx_err *e)
{
	uint8_t ent[2][ENTRY_MAX], dg[32], hdr[1 + 4 + 4];
	size_t elen[2];
	uint64_t ilen;
	int r;

	memset(sum, 0, sizeof *sum);
	if (pw->err != 0)
		return sbx_fail(e, pw->err, "bundle: the payload writer already failed");
	r = text_flush(pw, 0, e);
	if (r == 0)
		r = text_flush(pw, 1, e);
	if (r == 0)
		r = spool_flush(pw, e);
	if (r != 0)
		goto out;
	for (int k = 0; k < 2; k++) {
		if (hash_final(pw->th[k], dg) != 0) {
			r = sbx_fail(e, SBX_ECRYPTO, "bundle: hashing %s failed", text_path[k]);
			goto out;
		}
		elen[k] = entry_encode(ent[k], text_path[k], strlen(text_path[k]), pw->tsize[k], dg);
	}
	ilen = 4 + elen[0] + elen[1] + pw->spool_len;
	if (ilen > UINT32_MAX) {
		r = sbx_fail(e, SBX_EINVAL, "bundle: the index would exceed 4 GiB");
		goto out;
	}
	hdr[0] = PAYLOAD_F_INDEX;
	put_u32(hdr + 1, (uint32_t)ilen);
	put_u32(hdr + 5, pw->n_items);
	r = w_out(pw, hdr, 5, e);
	if (r == 0)
		r = idx_out(pw, hdr + 5, 4, e);
	if (r == 0)
		r = idx_out(pw, ent[0], elen[0], e);
	if (r == 0)
		r = idx_out(pw, ent[1], elen[1], e);
	for (uint64_t off = 0; r == 0 && off < pw->spool_len;) {
		size_t want = pw->spool_len - off > SPOOL_BUF ? SPOOL_BUF : (size_t)(pw->spool_len - off);
		ssize_t got = pread(pw->spool_fd, pw->sbuf, want, (off_t)off);

		if (got <= 0) {
			r = sbx_fail(e, SBX_EIO, "bundle: reading the index spool failed: %s",
			             got < 0 ? strerror(errno) : "short file");
			goto out;
		}
		r = idx_out(pw, pw->sbuf, (size_t)got, e);
		off += (uint64_t)got;
	}
	if (r != 0)
		goto out;
	if (hash_final(pw->idx, sum->index_sha256) != 0) {
		r = sbx_fail(e, SBX_ECRYPTO, "bundle: hashing the index failed");
		goto out;
	}
	sum->bytes = pw->bytes;
	sum->items = pw->n_items;
out:
	pw->err = r != 0 ? r : SBX_EINVAL;   /* finished either way */
	return r;
}

void payload_w_free(struct payload_w *pw)
{
	if (pw == NULL)
		return;
	for (int k = 0; k < 2; k++) {
		if (pw->text[k] != NULL)
			OPENSSL_clear_free(pw->text[k], TEXT_BUF);
		hash_free(pw->th[k]);
	}
	free(pw->sbuf);
	hash_free(pw->img);
	hash_free(pw->idx);
	payload_set_free(pw->paths);
	if (pw->spool_fd >= 0)
		close(pw->spool_fd);
	free(pw);
}

/* ---- parser --------------------------------------------------------------- */

enum pstate {
	P_MAGIC, P_TYPE, P_ITEM_HDR, P_ITEM_PATH, P_DATA_HDR, P_DATA_BODY,
	P_INDEX_HDR, P_INDEX, P_END,
};

/* Inside the index: its count, entries 0 and 1 (length, then the rest),
 * then the image entries as raw bytes. */
enum iphase { I_COUNT, I_E0_LEN, I_E0, I_E1_LEN, I_E1, I_RAW };

struct payload_p {
	const struct bundle_item_sink *sink;
	bundle_item_end_fn end;         /* with sink->arg, or NULL */
	int err;
	enum pstate st;
	enum iphase ip;
	uint8_t buf[ENTRY_MAX];         /* a fixed-size field being collected */
	size_t have, need;
	uint64_t bytes;
	uint32_t n_items;               /* declared so far */
	uint32_t data_item;             /* item of the DATA frame being read */
	uint32_t data_left;
	struct hash_ctx *h[3];          /* reads.jsonl, reads.csv, the open image */
	uint64_t size[3];
	uint8_t dg[2][32];              /* items 0 and 1, final */
	int img_open;
	uint32_t img_no;
	char img_path[BUNDLE_MAX_PATH + 1];
	size_t img_plen;
	struct hash_ctx *hexp, *hact, *hidx;
	struct payload_set *paths;
	uint64_t idx_left;
	size_t elen;
};

int payload_p_new(const struct bundle_item_sink *sink, struct payload_p **out,
                  struct sbx_err *e)
{
	struct payload_p *pp = calloc(1, sizeof *pp);

	*out = NULL;
	if (pp == NULL)
		return sbx_fail(e, SBX_ENOMEM, "payload: out of memory");
	pp->sink = sink;
	for (int i = 0; i < 3; i++)
		pp->h[i] = hash_new();
	pp->hexp = hash_new();
	pp->hact = hash_new();
	pp->hidx = hash_new();
	pp->paths = payload_set_new();
	if (pp->h[0] == NULL || pp->h[1] == NULL || pp->h[2] == NULL || pp->hexp == NULL ||
	    pp->hact == NULL || pp->hidx == NULL || pp->paths == NULL) {
		payload_p_free(pp);
		return sbx_fail(e, SBX_ENOMEM, "payload: out of memory");
	}
	pp->st = P_MAGIC;
	pp->need = 5;
	*out = pp;
	return 0;
}

void payload_p_set_end(struct payload_p *pp, bundle_item_end_fn end)
{
	pp->end = end;
}

/* Item `no` is complete: its size and hash go to the sink's end. */
static int item_end(struct payload_p *pp, uint32_t no, uint64_t size, const uint8_t dg[32],
                    struct sbx_err *e)
{
	int r;

	if (pp->sink == NULL || pp->end == NULL)
		return 0;
	r = pp->end(pp->sink->arg, no, size, dg, e);
	return r == 0 ? 0 : sbx_fail(e, r, "payload: the sink refused the end of item %u", no);
}

void payload_p_free(struct payload_p *pp)
{
	if (pp == NULL)
		return;
	for (int i = 0; i < 3; i++)
		hash_free(pp->h[i]);
	hash_free(pp->hexp);
	hash_free(pp->hact);
	hash_free(pp->hidx);
	payload_set_free(pp->paths);
	OPENSSL_cleanse(pp, sizeof *pp);
	free(pp);
}

static void expect(struct payload_p *pp, enum pstate st, size_t need)
{
	pp->st = st;
	pp->have = 0;
	pp->need = need;
}

/* The open image is complete: its entry joins the expected index. */
static int close_image(struct payload_p *pp, struct sbx_err *e)
{
	uint8_t ent[ENTRY_MAX], dg[32];
	size_t n;

	if (!pp->img_open)
		return 0;
	pp->img_open = 0;
	if (pp->size[2] == 0)
		return sbx_fail(e, SBX_EFORMAT, "payload: image item %u (%s) is empty",
		                pp->img_no, pp->img_path);
	if (hash_final(pp->h[2], dg) != 0)
		return sbx_fail(e, SBX_ECRYPTO, "payload: hashing failed");
	n = entry_encode(ent, pp->img_path, pp->img_plen, pp->size[2], dg);
	if (hash_update(pp->hexp, ent, n) != 0)
		return sbx_fail(e, SBX_ECRYPTO, "payload: hashing failed");
	return item_end(pp, pp->img_no, pp->size[2], dg, e);
}

static int on_item(struct payload_p *pp, struct sbx_err *e)
{
	uint32_t no = get_u32(pp->buf);
	size_t plen = (size_t)pp->buf[4] << 8 | pp->buf[5];

	if (no != pp->n_items)
		return sbx_fail(e, SBX_EFORMAT, "payload: item %u declared where item %u is due",
		                no, pp->n_items);
	if (no >= BUNDLE_MAX_ITEMS)
		return sbx_fail(e, SBX_EFORMAT, "payload: more than %u items", BUNDLE_MAX_ITEMS);
	if (plen == 0 || plen > BUNDLE_MAX_PATH)
		return sbx_fail(e, SBX_EFORMAT, "payload: item %u path length %zu", no, plen);
	expect(pp, P_ITEM_PATH, plen);
	return 0;
}

static int on_item_path(struct payload_p *pp, struct sbx_err *e)
{
	uint32_t no = pp->n_items;
	size_t plen = pp->need;
	char path[BUNDLE_MAX_PATH + 1];
	int r;

	memcpy(path, pp->buf, plen);
	path[plen] = '\0';
	if (payload_path_check(no, path, plen) != 0)
		return sbx_fail(e, SBX_EFORMAT, "payload: item %u has path '%.80s'%s", no, path,
		                no <= PAYLOAD_ITEM_CSV ? ", not the one the format fixes" :
		                ", not images/NAME with NAME 1-500 of A-Z a-z 0-9 . _ - ~");
	r = close_image(pp, e);
	if (r != 0)
		return r;
	if (no > PAYLOAD_ITEM_CSV) {
		r = payload_set_add(pp->paths, path, plen);
		if (r == SBX_EEXIST)
			return sbx_fail(e, SBX_EFORMAT, "payload: item %u repeats the path %s", no, path);
		if (r != 0)
			return sbx_fail(e, r, "payload: out of memory");
		pp->img_open = 1;
		pp->img_no = no;
		memcpy(pp->img_path, path, plen + 1);
		pp->img_plen = plen;
		pp->size[2] = 0;
	}
	pp->n_items++;
	if (pp->sink != NULL && pp->sink->begin != NULL &&
	    (r = pp->sink->begin(pp->sink->arg, no, path, e)) != 0)
		return sbx_fail(e, r, "payload: the sink refused item %u", no);
	expect(pp, P_TYPE, 1);
	return 0;
}

static int on_data_hdr(struct payload_p *pp, struct sbx_err *e)
{
	uint32_t no = get_u32(pp->buf), len = get_u32(pp->buf + 4);

	if (no >= pp->n_items)
		return sbx_fail(e, SBX_EFORMAT, "payload: DATA for undeclared item %u", no);
	if (no > PAYLOAD_ITEM_CSV && !(pp->img_open && no == pp->img_no))
		return sbx_fail(e, SBX_EFORMAT, "payload: DATA for item %u after a later item "
		                "was declared", no);
	if (len == 0 || len > BUNDLE_MAX_DATA_FRAME)
		return sbx_fail(e, SBX_EFORMAT, "payload: DATA frame of %u bytes for item %u "
		                "(1..%u allowed)", len, no, BUNDLE_MAX_DATA_FRAME);
	pp->data_item = no;
	pp->data_left = len;
	expect(pp, P_DATA_BODY, 0);
	return 0;
}

static int on_index_hdr(struct payload_p *pp, struct sbx_err *e)
{
	uint32_t len = get_u32(pp->buf);
	int r;

	if (pp->n_items < 2)
		return sbx_fail(e, SBX_EFORMAT, "payload: index before items 0 and 1");
	r = close_image(pp, e);
	if (r != 0)
		return r;
	for (int k = 0; k < 2; k++) {
		if (hash_final(pp->h[k], pp->dg[k]) != 0)
			return sbx_fail(e, SBX_ECRYPTO, "payload: hashing failed");
		r = item_end(pp, (uint32_t)k, pp->size[k], pp->dg[k], e);
		if (r != 0)
			return r;
	}
	pp->idx_left = len;
	pp->ip = I_COUNT;
	expect(pp, P_INDEX, 4);
	return 0;
}

static int check_entry(struct payload_p *pp, int k, struct sbx_err *e)
{
	uint8_t want[ENTRY_MAX];
	size_t n = entry_encode(want, text_path[k], strlen(text_path[k]), pp->size[k], pp->dg[k]);

	if (n != pp->elen || memcmp(want, pp->buf, n) != 0)
		return sbx_fail(e, SBX_EFORMAT, "payload: index entry %d does not match %s "
		                "(path, size %llu or SHA-256)", k, text_path[k],
		                (unsigned long long)pp->size[k]);
	return 0;
}

/* A collected field of the index is complete. */
static int on_index_field(struct payload_p *pp, struct sbx_err *e)
{
	size_t plen;
	int r;

	switch (pp->ip) {
	case I_COUNT:
		if (get_u32(pp->buf) != pp->n_items)
			return sbx_fail(e, SBX_EFORMAT, "payload: index counts %u items, %u were declared",
			                get_u32(pp->buf), pp->n_items);
		pp->ip = I_E0_LEN;
		expect(pp, P_INDEX, 2);
		return 0;
	case I_E0_LEN:
	case I_E1_LEN:
		plen = (size_t)pp->buf[0] << 8 | pp->buf[1];
		if (plen > BUNDLE_MAX_PATH)
			return sbx_fail(e, SBX_EFORMAT, "payload: index path length %zu", plen);
		pp->ip = pp->ip == I_E0_LEN ? I_E0 : I_E1;
		pp->elen = 2 + plen + ENTRY_FIXED;
		/* Keep the two length bytes: the entry is compared whole. */
		pp->need = pp->elen;
		return 0;
	case I_E0:
	case I_E1:
		r = check_entry(pp, pp->ip == I_E0 ? 0 : 1, e);
		if (r != 0)
			return r;
		pp->ip = pp->ip == I_E0 ? I_E1_LEN : I_RAW;
		expect(pp, P_INDEX, pp->ip == I_RAW ? 0 : 2);
		return 0;
	case I_RAW:
		break;
	}
	return sbx_fail(e, SBX_EINVAL, "payload: internal state");
}

static int fixed_done(struct payload_p *pp, struct sbx_err *e)
{
	switch (pp->st) {
	case P_MAGIC:
		if (memcmp(pp->buf, PAYLOAD_MAGIC, 4) != 0)
			return sbx_fail(e, SBX_EFORMAT, "payload: magic is not SBXP");
		if (pp->buf[4] != PAYLOAD_VERSION)
			return sbx_fail(e, SBX_EFORMAT, "payload: unsupported version %u", pp->buf[4]);
		expect(pp, P_TYPE, 1);
		return 0;
	case P_ITEM_HDR:   return on_item(pp, e);
	case P_ITEM_PATH:  return on_item_path(pp, e);
	case P_DATA_HDR:   return on_data_hdr(pp, e);
	case P_INDEX_HDR:  return on_index_hdr(pp, e);
	case P_INDEX:      return on_index_field(pp, e);
	default:           return sbx_fail(e, SBX_EINVAL, "payload: internal state");
	}
}

static int on_type(struct payload_p *pp, uint8_t t, struct sbx_err *e)
{
	switch (t) {
	case PAYLOAD_F_ITEM:  expect(pp, P_ITEM_HDR, 6);  return 0;
	case PAYLOAD_F_DATA:  expect(pp, P_DATA_HDR, 8);  return 0;
	case PAYLOAD_F_INDEX: expect(pp, P_INDEX_HDR, 4); return 0;
	default:
		return sbx_fail(e, SBX_EFORMAT, "payload: unknown frame type 0x%02x at byte %llu",
		                t, (unsigned long long)pp->bytes);
	}
}

static int data_body(struct payload_p *pp, const uint8_t *p, size_t k, struct sbx_err *e)
{
	int slot = pp->data_item <= PAYLOAD_ITEM_CSV ? (int)pp->data_item : 2;
	int r;

	if (hash_update(pp->h[slot], p, k) != 0)
		return sbx_fail(e, SBX_ECRYPTO, "payload: hashing failed");
	pp->size[slot] += k;
	if (pp->sink != NULL && pp->sink->data != NULL &&
	    (r = pp->sink->data(pp->sink->arg, pp->data_item, p, k, e)) != 0)
		return sbx_fail(e, r, "payload: the sink refused data of item %u", pp->data_item);
	pp->data_left -= (uint32_t)k;
	if (pp->data_left == 0)
		expect(pp, P_TYPE, 1);
	return 0;
}

static int push(struct payload_p *pp, const uint8_t *p, size_t n, struct sbx_err *e)
{
	while (n > 0) {
		int in_index = pp->st == P_INDEX;
		size_t k;
		int r;

		switch (pp->st) {
		case P_END:
			return sbx_fail(e, SBX_EFORMAT, "payload: %zu bytes after the index", n);
		case P_TYPE:
			r = on_type(pp, p[0], e);
			k = 1;
			break;
		case P_DATA_BODY:
			k = n < pp->data_left ? n : pp->data_left;
			r = data_body(pp, p, k, e);
			break;
		case P_INDEX:
			if (pp->ip == I_RAW) {
				k = n < pp->idx_left ? n : (size_t)pp->idx_left;
				r = hash_update(pp->hact, p, k) == 0 ? 0 : SBX_ECRYPTO;
				break;
			}
			k = pp->need - pp->have;
			if (k > n)
				k = n;
			if (k > pp->idx_left)
				return sbx_fail(e, SBX_EFORMAT, "payload: the index ends inside a field");
			memcpy(pp->buf + pp->have, p, k);
			pp->have += k;
			r = pp->have == pp->need ? on_index_field(pp, e) : 0;
			break;
		default:
			k = pp->need - pp->have;
			if (k > n)
				k = n;
			memcpy(pp->buf + pp->have, p, k);
			pp->have += k;
			r = pp->have == pp->need ? fixed_done(pp, e) : 0;
			break;
		}
		if (r != 0)
			return r;
		if (in_index) {
			/* Every byte of the index body counts and is hashed. */
			if (hash_update(pp->hidx, p, k) != 0)
				return sbx_fail(e, SBX_ECRYPTO, "payload: hashing failed");
			pp->idx_left -= k;
		}
		if (pp->st == P_INDEX && pp->ip == I_RAW && pp->idx_left == 0)
			expect(pp, P_END, 0);
		pp->bytes += k;
		p += k;
		n -= k;
	}
	return 0;
}

int payload_p_push(struct payload_p *pp, const uint8_t *p, size_t n, struct sbx_err *e)
{
	int r;

	if (pp->err != 0)
		return sbx_fail(e, pp->err, "payload: already failed");
	r = push(pp, p, n, e);
	if (r != 0)
		pp->err = r;
	return r;
}

int payload_p_finish(struct payload_p *pp, struct payload_summary *sum, struct sbx_err *e)
{
	uint8_t a[32], b[32];
	int r = SBX_EFORMAT;

	memset(sum, 0, sizeof *sum);
	if (pp->err != 0)
		return sbx_fail(e, pp->err, "payload: already failed");
	if (pp->st != P_END) {
		sbx_fail(e, r, "payload: ends after %llu bytes, %s",
		         (unsigned long long)pp->bytes,
		         pp->st == P_INDEX ? "inside the index" : "before the index");
		goto out;
	}
	if (hash_final(pp->hexp, a) != 0 || hash_final(pp->hact, b) != 0 ||
	    hash_final(pp->hidx, sum->index_sha256) != 0) {
		r = sbx_fail(e, SBX_ECRYPTO, "payload: hashing failed");
		goto out;
	}
	if (CRYPTO_memcmp(a, b, 32) != 0) {
		sbx_fail(e, r, "payload: the index entries of items 2..%u do not match the images' "
		         "paths, sizes and SHA-256", pp->n_items - 1);
		goto out;
	}
	sum->bytes = pp->bytes;
	sum->items = pp->n_items;
	r = 0;
out:
	pp->err = r != 0 ? r : SBX_EINVAL;
	return r;
}

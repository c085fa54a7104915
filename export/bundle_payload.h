/* The plaintext framing inside a bundle's payload stream (docs/FORMAT.md
 * section 5.2): a writer that frames reads and images as they arrive, and a
 * strict streaming parser.  Internal to the bundle module (and its fuzz
 * harness); the public interface is export/bundle.h.
 *
 *   "SBXP" | u8 1 | frame* ; frame = ITEM | DATA | INDEX (last, once)
 *
 * Both directions keep constant memory in the data size: three running
 * hashes (reads.jsonl, reads.csv, the open image), never a whole item.
 * What grows with the number of items is 16 bytes per image for the
 * duplicate-path check (and, in the writer, the image index entries,
 * spooled to a file in the bundle's directory, not to memory). */
#ifndef SBX_BUNDLE_PAYLOAD_H
#define SBX_BUNDLE_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/err.h"
#include "export/bundle.h"

#define PAYLOAD_MAGIC       "SBXP"
#define PAYLOAD_VERSION     1
#define PAYLOAD_F_ITEM      0x01
#define PAYLOAD_F_DATA      0x02
#define PAYLOAD_F_INDEX     0x03
#define PAYLOAD_ITEM_JSONL  0u
#define PAYLOAD_ITEM_CSV    1u

/* The stream's associated data: "sealbox-payload-v1" 0x00 | appliance_id
 * | case (UTF-8).  out holds PAYLOAD_MAX_AD bytes. */
#define PAYLOAD_MAX_AD (sizeof BUNDLE_NS_PAYLOAD_AD + 32 + 128)
int payload_ad(const struct bundle_manifest *m, uint8_t out[static PAYLOAD_MAX_AD],
               size_t *len);

/* 0 if `path` (len bytes, no NUL inside) is the valid path of item `no`:
 * "reads.jsonl" for 0, "reads.csv" for 1, "images/NAME" otherwise. */
int payload_path_check(uint32_t no, const char *path, size_t len);

/* A set of byte strings, kept as 16-byte SHA-256 prefixes. */
struct payload_set;
struct payload_set *payload_set_new(void);
/* 0 if added, SBX_EEXIST if present, SBX_ENOMEM. */
int payload_set_add(struct payload_set *s, const void *k, size_t n);
uint64_t payload_set_count(const struct payload_set *s);
void payload_set_free(struct payload_set *s);

/* ---- writer ---- */

/* Receives the plaintext in order. */
typedef int (*payload_out_fn)(void *arg, const void *p, size_t n, struct sbx_err *e);

struct payload_summary {
	uint64_t bytes;         /* plaintext length */
	uint64_t items;
	uint8_t index_sha256[32];
};

struct payload_w;

/* Emits the magic and declares items 0 and 1.  Image index entries are
 * spooled to an unlinked temporary file in `dir`. */
int payload_w_new(const char *dir, payload_out_fn out, void *arg,
                  struct payload_w **pw, struct sbx_err *e);
/* Appends to reads.jsonl and reads.csv (either may be empty). */
int payload_w_text(struct payload_w *pw, const char *jsonl, size_t jl,
                   const char *csv, size_t cl, struct sbx_err *e);
/* One image item, 1 byte or more. */
int payload_w_image(struct payload_w *pw, const char *path, const uint8_t *data,
                    size_t len, struct sbx_err *e);
/* Flushes, writes the index.  The writer is finished (free it). */
int payload_w_finish(struct payload_w *pw, struct payload_summary *out, struct sbx_err *e);
void payload_w_free(struct payload_w *pw);

/* ---- parser ---- */

struct payload_p;

/* sink may be NULL (parse and check only). */
int payload_p_new(const struct bundle_item_sink *sink, struct payload_p **pp,
                  struct sbx_err *e);
/* Also report each completed item's size and SHA-256 to end(sink->arg,
 * ...) (bundle.h, bundle_item_end_fn); before the first push. */
void payload_p_set_end(struct payload_p *pp, bundle_item_end_fn end);
/* Plaintext in pieces of any size.  Errors are sticky. */
int payload_p_push(struct payload_p *pp, const uint8_t *p, size_t n, struct sbx_err *e);
/* End of plaintext: 0 only if the index arrived complete, named every
 * declared item with its exact size and SHA-256, and nothing followed it.
 * The caller compares the summary with the manifest. */
int payload_p_finish(struct payload_p *pp, struct payload_summary *out, struct sbx_err *e);
void payload_p_free(struct payload_p *pp);

#endif

/* Reading zip, tar and tar.gz exports entry by entry through libarchive,
 * into memory, never onto disk (no archive_write_disk anywhere).
 *
 * Refused, with the entry named: absolute paths, "..", "." or empty path
 * components, backslashes, control characters or invalid UTF-8 in names;
 * symlinks, hardlinks, devices, FIFOs, sockets, sparse and encrypted
 * entries; duplicate names; entries, totals, entry counts or compression
 * ratios over the caps; an entry whose data disagrees with its recorded
 * size; archives nested deeper than max_nesting; and for zip, any
 * disagreement between the local headers (read by the streaming reader)
 * and the central directory (read by the seeking reader): names, types,
 * sizes, count.
 *
 * Regular files go to a visitor that pulls their bytes; nested archives
 * (recognized by their magic bytes) are read into memory and walked in
 * turn; directories are skipped. */
#ifndef SBX_ARCHIVE_IN_H
#define SBX_ARCHIVE_IN_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/err.h"

struct archive_caps {
	uint64_t max_entry_bytes;       /* one entry, uncompressed: 1 GiB */
	uint64_t max_total_bytes;       /* all entries of one input: 64 GiB */
	uint64_t max_entries;           /* entries of one input, nested included: 4,000,000 */
	uint32_t max_ratio;             /* uncompressed / compressed per archive: 100 */
	uint64_t ratio_min_bytes;       /* the ratio is checked past this: 16 MiB */
	unsigned max_nesting;           /* archives inside archives: 1 */
	uint64_t max_nested_bytes;      /* a nested archive, held in memory: 512 MiB */
	size_t max_name;                /* bytes of an entry name: 1024 */
};

void archive_caps_default(struct archive_caps *c);

enum {
	ARCHIVE_KIND_NONE = 0,
	ARCHIVE_KIND_ZIP,
	ARCHIVE_KIND_GZIP,      /* tar.gz (a gzip of anything else is refused on reading) */
	ARCHIVE_KIND_TAR,
};
/* Kind by magic bytes; p[0..n) should be the first 262 bytes or all of it. */
int archive_sniff(const uint8_t *p, size_t n);

struct archive_file;

const char *archive_file_name(const struct archive_file *f);    /* normalized path */
const char *archive_file_label(const struct archive_file *f);   /* "export.zip" or "a.tar!b.zip" */
uint32_t archive_file_container(const struct archive_file *f);  /* archive number, walk order */
uint64_t archive_file_ordinal(const struct archive_file *f);    /* entry number, walk order */
/* Next bytes of the entry: *got 0 at its end.  Caps are enforced here. */
int archive_file_read(struct archive_file *f, void *buf, size_t cap, size_t *got,
                      struct sbx_err *e);

struct archive_visitor {
	/* 0: go on (unread bytes are read and counted by the walker);
	 * 1: stop the whole walk, successfully; < 0: fail. */
	int (*on_file)(void *ctx, struct archive_file *f, struct sbx_err *e);
	void *ctx;
};

struct archive_stats {
	uint64_t entries, files, bytes, containers;
};

/* Walks the archive in fd (read with pread from offset 0; fd's offset is
 * not used) or in memory.  st may be NULL. */
int archive_walk_fd(int fd, const char *label, const struct archive_caps *caps,
                    const struct archive_visitor *v, struct archive_stats *st, struct sbx_err *e);
int archive_walk_mem(const void *p, size_t n, const char *label, const struct archive_caps *caps,
                     const struct archive_visitor *v, struct archive_stats *st, struct sbx_err *e);

#endif

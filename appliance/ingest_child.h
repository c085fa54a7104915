/* Ingest with privilege separation: the parent opens the input files (and
 * the directory of each, for images referenced by a plain CSV/JSONL file),
 * forks a child that keeps only those descriptors and the write end of a
 * pipe, writes nothing to disk, parses everything, and streams normalized
 * reads and image bytes back in the protocol of ingest_proto.h.  The
 * parent decodes and re-validates every message; it never parses vendor
 * bytes.
 *
 * The child reads its inputs more than once, so that nothing reaches the
 * sink unless the whole batch is valid: pass 1 parses and checks every
 * read, every archive entry and every referenced image; pass 2 sends the
 * reads; pass 3 sends the images.  Any failure is reported as one line
 * naming the file, the line (or archive entry) and the field.
 *
 * Order at the sink: on_read for every read, in input order (paths as
 * given; in an archive, entry order; in a file, line order); then on_image:
 * for a plain file, per read in read order, plate before overview; for an
 * archive, in entry order (an image used by several reads once per read,
 * in read order).  Inputs are taken in the order given, for each phase.
 *
 * ingest_run() returns 0 only if the whole batch was valid and the sink
 * accepted everything; on failure the caller discards whatever the sink
 * received (all or nothing is the caller's job). */
#ifndef SBX_INGEST_CHILD_H
#define SBX_INGEST_CHILD_H

#include <stddef.h>
#include <stdint.h>

#include "appliance/archive_in.h"
#include "appliance/ingest_proto.h"
#include "appliance/mapping.h"
#include "crypto/err.h"

struct ingest_opts {
	const struct mapping *mapping;  /* NULL: the generic profile */
	struct archive_caps caps;
	struct ingest_limits lim;
	size_t max_jsonl_line;          /* bytes: 1 MiB */
	unsigned timeout_s;             /* a child silent this long is killed: 300 */
	int child_stderr;               /* leave the child's stderr open (debugging) */
};

void ingest_opts_default(struct ingest_opts *o);

/* paths: CSV (.csv), JSON Lines (.jsonl, .ndjson) or zip/tar/tar.gz
 * archives (recognized by content) holding those and their images.  o NULL:
 * defaults.  sum may be NULL. */
int ingest_run(const char *const *paths, size_t n, const struct ingest_opts *o,
               const struct ingest_sink *sink, struct ingest_summary *sum, struct sbx_err *e);

/* The child's side, callable in-process (tests, fuzzing): inputs already
 * open; writes 'H' .. 'Z' or 'X' to w.  dirfd may be -1 (then images of a
 * plain file cannot be resolved). */
struct ingest_input {
	int fd;
	int dirfd;
	const char *label;
};
int ingest_child_work(const struct ingest_input *in, size_t n, const struct ingest_opts *o,
                      struct ingest_proto_w *w);

/* Where the child is confined once its descriptors are arranged.  Today:
 * no new privileges, not dumpable, no core files, no file growth (nothing
 * can be written to disk).  The seccomp filter of the sandbox issue goes
 * here. */
int ingest_child_sandbox(int keep_stderr);

#endif

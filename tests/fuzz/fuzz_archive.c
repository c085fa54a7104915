/* libFuzzer harness for the archive reader and the ingest child
 * (appliance/archive_in.c, appliance/ingest_child.c).  Any bytes, as an
 * archive in memory: the walker never crashes, keeps names normalized and
 * within its caps.  Then the same bytes go through the child's whole work
 * in process (through a memfd, nothing on disk) and its output through the
 * parent's decoder: whatever the child accepts, the parent must accept
 * with the same counts; whatever it refuses, it refuses with an 'X'. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "appliance/archive_in.h"
#include "appliance/ingest_child.h"
#include "appliance/ingest_proto.h"
#include "appliance/reads.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond)
{
	if (!cond)
		abort();
}

static int visit(void *ctx, struct archive_file *f, struct sbx_err *e)
{
	const char *n = archive_file_name(f), *why;
	char norm[1100];
	uint8_t buf[4096];
	size_t got, total = 0;
	int r;

	must(reads_path_norm(n, strlen(n), norm, sizeof norm, &why) == 0 && strcmp(norm, n) == 0);
	do {
		r = archive_file_read(f, buf, sizeof buf, &got, e);
		total += got;
	} while (r == 0 && got > 0);
	must(total <= (1u << 20) + sizeof buf);
	return r;
}

static struct ingest_summary seen;

static int s_read(void *ctx, const struct read *r, struct sbx_err *e)
{
	seen.reads++;
	return 0;
}

static int s_image(void *ctx, const char *id, enum ingest_image_kind k, const char *name,
                   const uint8_t *b, size_t n, struct sbx_err *e)
{
	must(reads_image_magic(b, n) != READS_IMG_NONE);
	seen.images++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct archive_caps caps;
	struct archive_visitor v = { visit, NULL };
	struct archive_stats st;
	struct sbx_err e;
	struct ingest_opts o;
	struct ingest_input in;
	struct ingest_proto_w w;
	struct ingest_sink sink = { NULL, s_read, s_image };
	struct ingest_proto_dec *d;
	struct ingest_summary sum;
	int r, fd, rd;

	archive_caps_default(&caps);
	caps.max_entry_bytes = 1 << 20;
	caps.max_total_bytes = 8 << 20;
	caps.max_entries = 1000;
	caps.max_nested_bytes = 1 << 20;
	caps.ratio_min_bytes = 1 << 16;
	sbx_err_clear(&e);
	r = archive_walk_mem(data, size, "fuzz", &caps, &v, &st, &e);
	must(r == 0 || (e.code != 0 && strchr(e.msg, '\n') == NULL));
	must(st.entries <= caps.max_entries + 1 && st.bytes <= caps.max_total_bytes + 65536);

	fd = memfd_create("fuzz", MFD_CLOEXEC);
	must(fd >= 0);
	must(write(fd, data, size) == (ssize_t)size);
	ingest_opts_default(&o);
	o.caps = caps;
	o.lim.max_overview_image = 1 << 20;
	in.fd = fd;
	in.dirfd = -1;
	in.label = "fuzz.tar";
	must(ingest_proto_w_init(&w, -1) == 0);
	r = ingest_child_work(&in, 1, &o, &w);
	memset(&seen, 0, sizeof seen);
	d = ingest_proto_dec_new(&o.lim, &sink);
	must(d != NULL);
	sbx_err_clear(&e);
	rd = ingest_proto_dec_feed(d, w.buf, w.len, &e);
	if (rd == 0)
		rd = ingest_proto_dec_end(d, &sum, &e);
	if (r == 0)
		must(rd == 0 && sum.reads == seen.reads && sum.images == seen.images);
	else
		must(rd != 0 && seen.reads == 0 && seen.images == 0);
	ingest_proto_dec_free(d);
	ingest_proto_w_free(&w);
	close(fd);
	return 0;
}

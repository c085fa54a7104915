/* ingest_bench: times the ingest path on an export (see gen_reads).
 *
 *   ingest_bench [--parse-only] [--jsonl-out] [--mapping FILE] FILE...
 *
 * Default: the whole privilege-separated path (ingest_run: child parses,
 * pipe, parent re-validates) into a sink that counts and also renders each
 * read's canonical JSON and CSV lines, as the bundle writer will.
 * --parse-only: just the in-process parser and validation of one plain
 * CSV or JSON Lines file.  --jsonl-out: print the canonical reads.jsonl. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "appliance/csv.h"
#include "appliance/ingest_child.h"
#include "appliance/jsonl.h"

struct counts {
	uint64_t reads, images, bytes, out_bytes;
	int print;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int render(struct counts *c, const struct read *r, struct sbx_err *e)
{
	char line[READ_LINE_MAX];
	size_t n;

	if (reads_to_jsonl(r, line, sizeof line, &n) != 0)
		return sbx_fail(e, SBX_EFORMAT, "cannot render read %s", r->vendor_id);
	if (c->print)
		fwrite(line, 1, n, stdout);
	c->out_bytes += n;
	if (reads_to_csv(r, line, sizeof line, &n) != 0)
		return sbx_fail(e, SBX_EFORMAT, "cannot render read %s", r->vendor_id);
	c->out_bytes += n;
	return 0;
}

static int on_read(void *ctx, const struct read *r, struct sbx_err *e)
{
	struct counts *c = ctx;

	c->reads++;
	return render(c, r, e);
}

static int on_image(void *ctx, const char *id, enum ingest_image_kind kind, const char *name,
                    const uint8_t *b, size_t n, struct sbx_err *e)
{
	struct counts *c = ctx;

	c->images++;
	c->bytes += n;
	return 0;
}

static int parsed(void *ctx, const struct read *r, uint64_t line, struct sbx_err *e)
{
	struct counts *c = ctx;

	c->reads++;
	return 0;
}

static int parse_only(const char *path, const struct mapping *m, struct counts *c, struct sbx_err *e)
{
	size_t n = strlen(path), cap = 1 << 20;
	int is_csv = n > 4 && strcmp(path + n - 4, ".csv") == 0;
	struct csv_reads *cr = is_csv ? csv_reads_new(path, m, parsed, c) : NULL;
	struct jsonl_reads *jr = is_csv ? NULL : jsonl_reads_new(path, m, 0, parsed, c);
	char *buf = malloc(cap);
	int fd = open(path, O_RDONLY), r = 0;
	ssize_t k;

	if (fd < 0 || buf == NULL || (cr == NULL && jr == NULL))
		return sbx_fail(e, SBX_EIO, "%s: cannot open", path);
	while (r == 0 && (k = read(fd, buf, cap)) > 0)
		r = cr ? csv_reads_feed(cr, buf, (size_t)k, e) : jsonl_reads_feed(jr, buf, (size_t)k, e);
	if (r == 0)
		r = cr ? csv_reads_end(cr, e) : jsonl_reads_end(jr, e);
	close(fd);
	free(buf);
	csv_reads_free(cr);
	jsonl_reads_free(jr);
	return r;
}

int main(int argc, char **argv)
{
	struct ingest_opts o;
	struct ingest_sink sink;
	struct ingest_summary sum;
	struct counts c;
	struct mapping m;
	struct sbx_err e;
	int po = 0, i = 1, r;
	double t0;

	memset(&c, 0, sizeof c);
	sbx_err_clear(&e);
	ingest_opts_default(&o);
	mapping_generic(&m);
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--parse-only") == 0) {
			po = 1;
		} else if (strcmp(argv[i], "--jsonl-out") == 0) {
			c.print = 1;
		} else if (strcmp(argv[i], "--mapping") == 0 && i + 1 < argc) {
			if (mapping_load(argv[++i], &m, &e) != 0) {
				fprintf(stderr, "ingest_bench: %s\n", e.msg);
				return 2;
			}
		} else {
			break;
		}
	}
	if (i >= argc) {
		fprintf(stderr, "usage: ingest_bench [--parse-only] [--jsonl-out] [--mapping FILE] FILE...\n");
		return 2;
	}
	o.mapping = &m;
	sink.ctx = &c;
	sink.on_read = on_read;
	sink.on_image = on_image;
	t0 = now();
	if (po)
		r = parse_only(argv[i], &m, &c, &e);
	else
		r = ingest_run((const char *const *)argv + i, (size_t)(argc - i), &o, &sink, &sum, &e);
	if (r != 0) {
		fprintf(stderr, "ingest_bench: %s\n", e.msg);
		return 1;
	}
	fprintf(stderr, "%s: %llu reads, %llu images (%llu bytes), %.3f s\n",
	        po ? "parse-only" : "ingest_run", (unsigned long long)c.reads,
	        (unsigned long long)c.images, (unsigned long long)c.bytes, now() - t0);
	return 0;
}

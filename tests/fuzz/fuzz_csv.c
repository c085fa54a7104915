/* libFuzzer harness for the CSV reader (appliance/csv.c).  The first byte
 * picks a chunk size, so records split across feeds at every point; the
 * rest is a CSV export read through the generic mapping.  Invariants: no
 * crash; every read it accepts passes read_check() (what the parent will
 * re-check), and its canonical CSV line, read back under the canonical
 * header, gives the very same read.  Also the bare record layer with tiny
 * limits.  Build: make fuzz (clang -fsanitize=fuzzer,address,undefined). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/csv.h"
#include "appliance/mapping.h"
#include "appliance/reads.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mapping generic;

static void must(int cond)
{
	if (!cond)
		abort();
}

static int same(const struct read *a, const struct read *b)
{
	return strcmp(a->vendor_id, b->vendor_id) == 0 && strcmp(a->plate, b->plate) == 0 &&
	       strcmp(a->region, b->region) == 0 && a->captured_at_ms == b->captured_at_ms &&
	       strcmp(a->camera_id, b->camera_id) == 0 && strcmp(a->camera_name, b->camera_name) == 0 &&
	       a->has_location == b->has_location && a->lat_e7 == b->lat_e7 && a->lon_e7 == b->lon_e7 &&
	       a->heading == b->heading && a->confidence == b->confidence &&
	       strcmp(a->vehicle_make, b->vehicle_make) == 0 && strcmp(a->vehicle_color, b->vehicle_color) == 0 &&
	       strcmp(a->vehicle_type, b->vehicle_type) == 0 && strcmp(a->plate_image, b->plate_image) == 0 &&
	       strcmp(a->overview_image, b->overview_image) == 0;
}

static int back(void *ctx, const struct read *r, uint64_t line, struct sbx_err *e)
{
	*(struct read *)ctx = *r;
	return 0;
}

static int on_read(void *ctx, const struct read *r, uint64_t line, struct sbx_err *e)
{
	enum read_field f;
	const char *why;
	char buf[READ_LINE_MAX];
	size_t n;
	struct read again;
	struct csv_reads *cr;
	struct sbx_err e2;

	must(read_check(r, &f, &why) == 0);
	must(reads_to_jsonl(r, buf, sizeof buf, &n) == 0 && n == strlen(buf));
	must(reads_to_csv(r, buf, sizeof buf, &n) == 0 && n == strlen(buf));
	memset(&again, 0, sizeof again);
	sbx_err_clear(&e2);
	cr = csv_reads_new("again", &generic, back, &again);
	must(cr != NULL);
	must(csv_reads_feed(cr, reads_csv_header(), strlen(reads_csv_header()), &e2) == 0);
	must(csv_reads_feed(cr, buf, n, &e2) == 0 && csv_reads_end(cr, &e2) == 0);
	must(csv_reads_count(cr) == 1 && same(r, &again));
	csv_reads_free(cr);
	return 0;
}

static int on_record(void *ctx, uint64_t line, const char *const *f, const size_t *len, size_t n,
                     struct sbx_err *e)
{
	for (size_t i = 0; i < n; i++)
		must(strlen(f[i]) == len[i] && len[i] <= 64);
	must(n <= 8);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct csv_limits lim = { 64, 8, 256 };
	struct csv_reads *cr;
	struct csv *c;
	struct sbx_err e;
	size_t chunk;
	int r = 0;

	if (size < 1)
		return 0;
	mapping_generic(&generic);
	chunk = (size_t)data[0] + 1;
	data++;
	size--;
	sbx_err_clear(&e);
	cr = csv_reads_new("fuzz.csv", &generic, on_read, NULL);
	must(cr != NULL);
	for (size_t i = 0; r == 0 && i < size; i += chunk)
		r = csv_reads_feed(cr, data + i, size - i < chunk ? size - i : chunk, &e);
	if (r == 0)
		r = csv_reads_end(cr, &e);
	must(r == 0 || (e.code != 0 && e.msg[0] != '\0' && strchr(e.msg, '\n') == NULL));
	csv_reads_free(cr);

	sbx_err_clear(&e);
	c = csv_new("fuzz.csv", &lim, on_record, NULL);
	must(c != NULL);
	r = csv_feed(c, data, size, &e);
	if (r == 0)
		r = csv_end(c, &e);
	must(r == 0 || e.code != 0);
	csv_free(c);
	return 0;
}

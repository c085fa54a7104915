/* gen_bench: the data of `make bench` (issue 6), deterministic.
 *
 *   gen_bench --out DIR --count N [--image-min-kb A --image-max-kb B] [--seed S]
 *
 * Writes DIR/reads.csv with N reads (the columns tests/tools/gen_reads
 * writes) and, when --image-max-kb is given, one image per read,
 * DIR/images/<id>.jpg, named by the read's overview_image: A-B KB of
 * pseudo-random bytes (uniform sizes) behind a JPEG magic and ending in the
 * JPEG end marker, so sealbox's ingest accepts them and no compressor can
 * shrink them.  10,000 reads of 50-200 KB make about 1.25 GB.  The same
 * arguments always give the same bytes; files are written to a temporary
 * name and renamed, and DIR/.complete is written last, so an interrupted run
 * is redone rather than half used. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct rng {
	uint64_t s;
};

/* splitmix64: fast enough (about 1 GB/s) that generating is cheap. */
static uint64_t rnd(struct rng *g)
{
	uint64_t z = (g->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t range(struct rng *g, uint64_t lo, uint64_t hi)
{
	return lo + rnd(g) % (hi - lo + 1);
}

static void jpeg(struct rng *g, uint8_t *b, size_t n)
{
	static const uint8_t head[] = { 0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0 };

	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = rnd(g);

		for (size_t k = 0; k < 8 && i + k < n; k++)
			b[i + k] = (uint8_t)(v >> (8 * k));
	}
	memcpy(b, head, sizeof head);
	b[n - 2] = 0xff;
	b[n - 1] = 0xd9;
}

static int put_file(const char *dir, const char *name, const void *p, size_t n)
{
	char path[4096], tmp[4200];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	f = fopen(tmp, "wb");
	if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0 || rename(tmp, path) != 0) {
		fprintf(stderr, "gen_bench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static void fmt_time(int64_t ms, char out[64])
{
	int64_t z = ms / 86400000 + 719468, rem = ms % 86400000, era;
	unsigned doe, yoe, doy, mp, d, m;
	int y;

	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y = (int)((int64_t)yoe + era * 400 + (m <= 2));
	snprintf(out, 64, "%04d-%02u-%02uT%02u:%02u:%02u.%03uZ", y, m, d,
	         (unsigned)(rem / 3600000), (unsigned)(rem / 60000 % 60),
	         (unsigned)(rem / 1000 % 60), (unsigned)(rem % 1000));
}

static int usage(void)
{
	fprintf(stderr, "usage: gen_bench --out DIR --count N [--image-min-kb A --image-max-kb B] [--seed S]\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const char *const makes[] = { "Toyota", "Ford", "Chevrolet", "Honda", "Subaru", "Tesla", "Nissan", "Jeep" };
	static const char *const colors[] = { "white", "black", "silver", "gray", "blue", "red" };
	static const char *const types[] = { "sedan", "suv", "pickup", "van", "hatchback" };
	static const char *const streets[] = { "Colfax Ave & N Broadway", "Federal Blvd & W 38th Ave",
	                                       "Speer Blvd & Market St", "Quebec St & E 40th Ave",
	                                       "Evans Ave & S Santa Fe Dr" };
	const char *outdir = NULL;
	uint64_t count = 0, seed = 6, min_kb = 0, max_kb = 0, img_bytes = 0;
	const int64_t start = 1767225600000LL;     /* 2026-01-01T00:00:00Z */
	const uint64_t days = 14;                  /* inside the retention period */
	char *text = NULL, path[4096];
	size_t tlen = 0, tcap;
	uint8_t *img = NULL;
	struct rng g;
	int rc = 1;

	for (int i = 1; i + 1 < argc; i += 2) {
		const char *a = argv[i], *v = argv[i + 1];

		if (strcmp(a, "--out") == 0)
			outdir = v;
		else if (strcmp(a, "--count") == 0)
			count = strtoull(v, NULL, 10);
		else if (strcmp(a, "--seed") == 0)
			seed = strtoull(v, NULL, 10);
		else if (strcmp(a, "--image-min-kb") == 0)
			min_kb = strtoull(v, NULL, 10);
		else if (strcmp(a, "--image-max-kb") == 0)
			max_kb = strtoull(v, NULL, 10);
		else
			return usage();
	}
	if (argc % 2 == 0 || outdir == NULL || count == 0 || count > 10000000 ||
	    min_kb > max_kb || max_kb > 16384 || (max_kb > 0 && min_kb == 0))
		return usage();
	if (mkdir(outdir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "gen_bench: %s: %s\n", outdir, strerror(errno));
		return 1;
	}
	snprintf(path, sizeof path, "%s/.complete", outdir);
	remove(path);
	if (max_kb > 0) {
		snprintf(path, sizeof path, "%s/images", outdir);
		if (mkdir(path, 0755) != 0 && errno != EEXIST) {
			fprintf(stderr, "gen_bench: %s: %s\n", path, strerror(errno));
			return 1;
		}
		img = malloc(max_kb * 1024);
		if (img == NULL)
			goto out;
	}
	tcap = 256 * (count + 1);
	text = malloc(tcap);
	if (text == NULL)
		goto out;
	tlen = (size_t)snprintf(text, tcap, "vendor_read_id,plate,region,captured_at,camera_id,camera_name,"
	                        "latitude,longitude,heading,confidence,vehicle_make,vehicle_color,"
	                        "vehicle_type,plate_image,overview_image\r\n");
	g.s = seed;
	for (uint64_t i = 1; i <= count; i++) {
		char id[64], plate[8], when[64], cam[32], camname[96], lat[48], lon[48], conf[48];
		char oimg[128] = "";
		int64_t t = start + (int64_t)((i - 1) * (days * 86400000ULL / count)) + (int64_t)range(&g, 0, 999);
		int64_t la = 397392000 + (int64_t)range(&g, 0, 2000000) - 1000000;
		int64_t lo = -1049903000 + (int64_t)range(&g, 0, 2000000) - 1000000;
		uint64_t c = range(&g, 1, 95), cv = range(&g, 6000, 9999);
		int n;

		snprintf(id, sizeof id, "b%" PRIu64 "-%08" PRIu64, seed, i);
		for (int k = 0; k < 3; k++)
			plate[k] = (char)('A' + range(&g, 0, 25));
		for (int k = 3; k < 7; k++)
			plate[k] = (char)('0' + range(&g, 0, 9));
		plate[7] = '\0';
		fmt_time(t, when);
		snprintf(cam, sizeof cam, "cam-%03" PRIu64, c);
		snprintf(camname, sizeof camname, "%s, %s", streets[c % 5], c % 2 ? "eastbound" : "westbound");
		snprintf(lat, sizeof lat, "%" PRId64 ".%06" PRId64, la / 10000000, (la % 10000000) / 10);
		snprintf(lon, sizeof lon, "-%" PRId64 ".%06" PRId64, -lo / 10000000, (-lo % 10000000) / 10);
		snprintf(conf, sizeof conf, "%" PRIu64 ".%02" PRIu64, cv / 100, cv % 100);
		if (max_kb > 0) {
			size_t on = (size_t)range(&g, min_kb * 1024, max_kb * 1024);

			snprintf(oimg, sizeof oimg, "images/%s.jpg", id);
			jpeg(&g, img, on);
			if (put_file(outdir, oimg, img, on) != 0)
				goto out;
			img_bytes += on;
		}
		n = snprintf(text + tlen, tcap - tlen,
		             "%s,%s,US-CO,%s,%s,\"%s\",%s,%s,%" PRIu64 ",%s,%s,%s,%s,,%s\r\n",
		             id, plate, when, cam, camname, lat, lon, range(&g, 0, 359), conf,
		             makes[range(&g, 0, 7)], colors[range(&g, 0, 5)], types[range(&g, 0, 4)], oimg);
		if (n < 0 || (size_t)n >= tcap - tlen)
			goto out;
		tlen += (size_t)n;
	}
	if (put_file(outdir, "reads.csv", text, tlen) != 0 || put_file(outdir, ".complete", "", 0) != 0)
		goto out;
	printf("%s: %" PRIu64 " reads (%zu bytes of CSV), %" PRIu64 " image bytes\n",
	       outdir, count, tlen, img_bytes);
	rc = 0;
out:
	free(text);
	free(img);
	return rc;
}

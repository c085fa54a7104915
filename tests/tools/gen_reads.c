/* gen_reads: a deterministic sample LPR export for the demo, the tests and
 * the benchmarks.
 *
 *   gen_reads --out DIR [--count N] [--seed S] [--format csv|jsonl]
 *             [--archive none|tar|tar.gz|zip] [--no-images] [--cameras N]
 *             [--start EPOCH_MS] [--days D]
 *
 * Writes DIR/reads.csv (or reads.jsonl) and DIR/images/<id>-plate.jpg and
 * -overview.jpg, or with --archive one DIR/export.<ext> holding the same
 * files.  Images are JPEG by their magic bytes (FF D8 FF E0 ... FF D9) with
 * pseudo-random content: plate crops 2-5 KB, overviews 25-200 KB, as in
 * the brief.  The same arguments always give the same bytes (archive
 * entries carry a fixed time; gzip carries no time stamp). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <archive.h>
#include <archive_entry.h>

struct rng {
	uint64_t s;
};

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

struct out {
	const char *dir;
	struct archive *a;      /* NULL: plain files */
};

static int put_file(struct out *o, const char *name, const void *p, size_t n)
{
	if (o->a != NULL) {
		struct archive_entry *e = archive_entry_new();
		int r;

		archive_entry_set_pathname(e, name);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, (la_int64_t)n);
		archive_entry_set_mtime(e, 1767225600, 0);   /* 2026-01-01, fixed */
		r = archive_write_header(o->a, e);
		archive_entry_free(e);
		if (r != ARCHIVE_OK || (n > 0 && archive_write_data(o->a, p, n) != (la_ssize_t)n)) {
			fprintf(stderr, "gen_reads: %s: %s\n", name, archive_error_string(o->a));
			return -1;
		}
		return 0;
	}
	{
		char path[4096];
		FILE *f;

		snprintf(path, sizeof path, "%s/%s", o->dir, name);
		f = fopen(path, "wb");
		if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
			fprintf(stderr, "gen_reads: %s: %s\n", path, strerror(errno));
			return -1;
		}
	}
	return 0;
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

/* mkdir -p */
static void mkdirs(const char *dir)
{
	char p[4096];

	snprintf(p, sizeof p, "%s", dir);
	for (char *c = p + 1; *c != '\0'; c++) {
		if (*c == '/') {
			*c = '\0';
			mkdir(p, 0755);
			*c = '/';
		}
	}
	mkdir(p, 0755);
}

static void usage(void)
{
	fprintf(stderr, "usage: gen_reads --out DIR [--count N] [--seed S] [--format csv|jsonl]\n"
	                "                 [--archive none|tar|tar.gz|zip] [--no-images] [--cameras N]\n"
	                "                 [--start EPOCH_MS] [--days D]\n");
	exit(2);
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

int main(int argc, char **argv)
{
	static const char *const makes[] = { "Toyota", "Ford", "Chevrolet", "Honda", "Subaru", "Tesla", "Nissan", "Jeep" };
	static const char *const colors[] = { "white", "black", "silver", "gray", "blue", "red" };
	static const char *const types[] = { "sedan", "suv", "pickup", "van", "hatchback" };
	static const char *const streets[] = { "Colfax Ave & N Broadway", "Federal Blvd & W 38th Ave",
	                                       "Speer Blvd & Market St", "Quebec St & E 40th Ave",
	                                       "Evans Ave & S Santa Fe Dr" };
	const char *outdir = NULL, *format = "csv", *arch = "none";
	uint64_t count = 100, seed = 1, cameras = 95, days = 30;
	int64_t start = 1767225600000LL;        /* 2026-01-01T00:00:00Z */
	int images = 1, rc = 1;
	struct rng g;
	struct out o = { 0 };
	char *text = NULL;
	size_t tlen = 0, tcap = 0;
	uint8_t *img = malloc(200 * 1024);
	char path[4096];

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--no-images") == 0) {
			images = 0;
			continue;
		}
		if (v == NULL)
			usage();
		i++;
		if (strcmp(a, "--out") == 0)
			outdir = v;
		else if (strcmp(a, "--count") == 0)
			count = strtoull(v, NULL, 10);
		else if (strcmp(a, "--seed") == 0)
			seed = strtoull(v, NULL, 10);
		else if (strcmp(a, "--format") == 0)
			format = v;
		else if (strcmp(a, "--archive") == 0)
			arch = v;
		else if (strcmp(a, "--cameras") == 0)
			cameras = strtoull(v, NULL, 10);
		else if (strcmp(a, "--start") == 0)
			start = strtoll(v, NULL, 10);
		else if (strcmp(a, "--days") == 0)
			days = strtoull(v, NULL, 10);
		else
			usage();
	}
	if (outdir == NULL || img == NULL || cameras == 0 || days == 0 ||
	    (strcmp(format, "csv") != 0 && strcmp(format, "jsonl") != 0))
		usage();
	mkdirs(outdir);
	o.dir = outdir;
	if (strcmp(arch, "none") != 0) {
		o.a = archive_write_new();
		if (strcmp(arch, "zip") == 0) {
			archive_write_set_format_zip(o.a);
		} else if (strcmp(arch, "tar") == 0 || strcmp(arch, "tar.gz") == 0) {
			archive_write_set_format_pax_restricted(o.a);
			if (strcmp(arch, "tar.gz") == 0) {
				archive_write_add_filter_gzip(o.a);
				archive_write_set_filter_option(o.a, "gzip", "timestamp", NULL);
			}
		} else {
			usage();
		}
		snprintf(path, sizeof path, "%s/export.%s", outdir, arch);
		if (archive_write_open_filename(o.a, path) != ARCHIVE_OK) {
			fprintf(stderr, "gen_reads: %s: %s\n", path, archive_error_string(o.a));
			goto out;
		}
	} else if (images) {
		snprintf(path, sizeof path, "%s/images", outdir);
		mkdir(path, 0755);
	}
	g.s = seed;
	for (uint64_t i = 0; i <= count; i++) {
		char line[2048], id[64], plate[16], when[64], cam[32], camname[96], lat[48], lon[48];
		char conf[48], pimg[128] = "", oimg[128] = "";
		uint64_t c;
		int n;

		if (i == 0) {
			if (strcmp(format, "csv") != 0)
				continue;
			n = snprintf(line, sizeof line, "vendor_read_id,plate,region,captured_at,camera_id,camera_name,"
			             "latitude,longitude,heading,confidence,vehicle_make,vehicle_color,"
			             "vehicle_type,plate_image,overview_image\r\n");
		} else {
			int64_t t = start + (int64_t)((i - 1) * (days * 86400000ULL / count)) +
			            (int64_t)range(&g, 0, 999);
			int64_t la = 397392000 + (int64_t)range(&g, 0, 2000000) - 1000000;
			int64_t lo = -1049903000 + (int64_t)range(&g, 0, 2000000) - 1000000;

			snprintf(id, sizeof id, "r%" PRIu64 "-%08" PRIu64, seed, i);
			for (int k = 0; k < 3; k++)
				plate[k] = (char)('A' + range(&g, 0, 25));
			for (int k = 3; k < 7; k++)
				plate[k] = (char)('0' + range(&g, 0, 9));
			plate[7] = '\0';
			fmt_time(t, when);
			c = range(&g, 1, cameras);
			snprintf(cam, sizeof cam, "cam-%03" PRIu64, c);
			snprintf(camname, sizeof camname, "%s, %s", streets[c % 5], c % 2 ? "eastbound" : "westbound");
			snprintf(lat, sizeof lat, "%" PRId64 ".%06" PRId64, la / 10000000, (la % 10000000) / 10);
			snprintf(lon, sizeof lon, "-%" PRId64 ".%06" PRId64, -lo / 10000000, (-lo % 10000000) / 10);
			{
				uint64_t cv = range(&g, 6000, 9999);

				snprintf(conf, sizeof conf, "%" PRIu64 ".%02" PRIu64, cv / 100, cv % 100);
			}
			if (images) {
				size_t pn = (size_t)range(&g, 2048, 5120), on = (size_t)range(&g, 25600, 204800);

				snprintf(pimg, sizeof pimg, "images/%s-plate.jpg", id);
				snprintf(oimg, sizeof oimg, "images/%s-overview.jpg", id);
				jpeg(&g, img, pn);
				if (put_file(&o, pimg, img, pn) != 0)
					goto out;
				jpeg(&g, img, on);
				if (put_file(&o, oimg, img, on) != 0)
					goto out;
			}
			if (strcmp(format, "csv") == 0)
				n = snprintf(line, sizeof line, "%s,%s,US-CO,%s,%s,\"%s\",%s,%s,%" PRIu64 ",%s,%s,%s,%s,%s,%s\r\n",
				             id, plate, when, cam, camname, lat, lon, range(&g, 0, 359), conf,
				             makes[range(&g, 0, 7)], colors[range(&g, 0, 5)], types[range(&g, 0, 4)],
				             pimg, oimg);
			else
				n = snprintf(line, sizeof line,
				             "{\"vendor_read_id\":\"%s\",\"plate\":\"%s\",\"region\":\"US-CO\","
				             "\"captured_at\":\"%s\",\"camera_id\":\"%s\",\"camera_name\":\"%s\","
				             "\"latitude\":%s,\"longitude\":%s,\"heading\":%" PRIu64 ",\"confidence\":%s,"
				             "\"vehicle_make\":\"%s\",\"vehicle_color\":\"%s\",\"vehicle_type\":\"%s\""
				             "%s%s%s%s%s%s}\n",
				             id, plate, when, cam, camname, lat, lon, range(&g, 0, 359), conf,
				             makes[range(&g, 0, 7)], colors[range(&g, 0, 5)], types[range(&g, 0, 4)],
				             images ? ",\"plate_image\":\"" : "", pimg, images ? "\"" : "",
				             images ? ",\"overview_image\":\"" : "", oimg, images ? "\"" : "");
		}
		if (tlen + (size_t)n > tcap) {
			size_t ncap = tcap ? tcap * 2 : 1 << 20;
			char *nt;

			while (tlen + (size_t)n > ncap)
				ncap *= 2;
			nt = realloc(text, ncap);
			if (nt == NULL)
				goto out;
			text = nt;
			tcap = ncap;
		}
		memcpy(text + tlen, line, (size_t)n);
		tlen += (size_t)n;
	}
	if (put_file(&o, strcmp(format, "csv") == 0 ? "reads.csv" : "reads.jsonl", text, tlen) != 0)
		goto out;
	if (o.a != NULL && (archive_write_close(o.a) != ARCHIVE_OK)) {
		fprintf(stderr, "gen_reads: %s\n", archive_error_string(o.a));
		goto out;
	}
	rc = 0;
out:
	if (o.a != NULL)
		archive_write_free(o.a);
	free(text);
	free(img);
	return rc;
}

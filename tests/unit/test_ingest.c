/* Ingest: the JSON parser and writer, read validation and canonical output,
 * CSV and JSON Lines readers, mapping profiles, the archive reader, the
 * child->parent protocol, and ingest_run end to end with a hostile corpus
 * (every case must fail with its specific error and deliver nothing). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "appliance/archive_in.h"
#include "appliance/csv.h"
#include "appliance/ingest_child.h"
#include "appliance/ingest_proto.h"
#include "appliance/jsonl.h"
#include "appliance/mapping.h"
#include "appliance/reads.h"
#include "export/json.h"
#include "tests/unit/check.h"

static char tmp[512];

/* ---- helpers ---- */

static void put(const char *name, const void *p, size_t n)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", tmp, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		printf("# cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

static void puts_file(const char *name, const char *s)
{
	put(name, s, strlen(s));
}

static const char *at(const char *name)
{
	static char path[4][1024];
	static int k;

	k = (k + 1) % 4;
	snprintf(path[k], sizeof path[k], "%s/%s", tmp, name);
	return path[k];
}

struct got {
	int reads, images;
	size_t image_bytes;
	char order[64];         /* 'r' / 'i' per callback, first 63 */
	size_t no;
	char first_id[READ_ID_MAX + 1];
	struct read last;
	char img_ids[8][READ_ID_MAX + 1];
	int img_kinds[8];
	uint8_t img_first[8];
};

static int g_read(void *ctx, const struct read *r, struct sbx_err *e)
{
	struct got *g = ctx;

	if (g->reads == 0)
		strcpy(g->first_id, r->vendor_id);
	g->last = *r;
	g->reads++;
	if (g->no < sizeof g->order - 1)
		g->order[g->no++] = 'r';
	return 0;
}

static int g_image(void *ctx, const char *id, enum ingest_image_kind kind, const char *name,
                   const uint8_t *b, size_t n, struct sbx_err *e)
{
	struct got *g = ctx;

	if (g->images < 8) {
		snprintf(g->img_ids[g->images], sizeof g->img_ids[0], "%s", id);
		g->img_kinds[g->images] = kind;
		g->img_first[g->images] = n > 10 ? b[10] : 0;
	}
	g->images++;
	g->image_bytes += n;
	if (g->no < sizeof g->order - 1)
		g->order[g->no++] = 'i';
	return 0;
}

static int run_opts(const char *const *paths, size_t n, const struct ingest_opts *o, struct got *g,
                    struct sbx_err *e)
{
	struct ingest_sink s = { g, g_read, g_image };

	memset(g, 0, sizeof *g);
	sbx_err_clear(e);
	return ingest_run(paths, n, o, &s, NULL, e);
}

static int run1(const char *path, struct got *g, struct sbx_err *e)
{
	const char *p[1] = { path };

	return run_opts(p, 1, NULL, g, e);
}

/* The case fails, says `want`, and the sink saw nothing. */
static void refused_o(const char *what, const char *name, const struct ingest_opts *o, const char *want)
{
	struct got g;
	struct sbx_err e;
	const char *p[1] = { at(name) };
	int r = run_opts(p, 1, o, &g, &e);
	char desc[256];
	int ok = r != 0 && strstr(e.msg, want) != NULL && g.reads == 0 && g.images == 0;

	snprintf(desc, sizeof desc, "refused, nothing delivered: %s", what);
	if (!CHECK_MSG(ok, desc))
		printf("#   r=%d reads=%d images=%d msg: %s (want \"%s\")\n", r, g.reads, g.images, e.msg, want);
}

static void refused(const char *what, const char *name, const char *want)
{
	refused_o(what, name, NULL, want);
}

static uint8_t jpg[3000], png[2000], ovw[30000];

static void make_images(void)
{
	static const uint8_t pm[8] = { 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a };

	for (size_t i = 0; i < sizeof jpg; i++)
		jpg[i] = (uint8_t)(i * 7 + 1);
	for (size_t i = 0; i < sizeof ovw; i++)
		ovw[i] = (uint8_t)(i * 13 + 5);
	for (size_t i = 0; i < sizeof png; i++)
		png[i] = (uint8_t)(i * 3);
	jpg[0] = ovw[0] = 0xff;
	jpg[1] = ovw[1] = 0xd8;
	jpg[2] = ovw[2] = 0xff;
	memcpy(png, pm, 8);
	jpg[10] = 'P';
	ovw[10] = 'O';
	png[10] = 'N';
}

#define HDR "vendor_read_id,plate,region,captured_at,camera_id,camera_name,latitude,longitude," \
            "heading,confidence,vehicle_make,vehicle_color,vehicle_type,plate_image,overview_image\r\n"
#define ROW1 "r1,abc1234,us-co,2026-01-02T03:04:05.678Z,cam-1,\"Colfax & Broadway, EB\",39.7392,-104.9903,90,94.5,Ford,blue,sedan,,\r\n"
#define ROW2 "r2,XYZ 789,,1767225600000,cam-2,,,,,,,,,,\r\n"

/* ---- JSON ---- */

static int jparse(const char *s, char *msg, size_t cap)
{
	struct json_doc *d = json_doc_new();
	struct sbx_err e;
	int r;

	sbx_err_clear(&e);
	r = json_parse(d, s, strlen(s), NULL, &e);
	if (msg != NULL)
		snprintf(msg, cap, "%s", e.msg);
	json_doc_free(d);
	return r;
}

static void test_json(void)
{
	struct json_doc *d = json_doc_new();
	struct sbx_err e;
	const char *doc = " {\"a\": [1, -2.5e3, \"x\\u00e9\\ud83d\\ude00\"], \"b\": {\"c\": null, \"d\": true}} ";
	const struct json_val *root, *a, *v;
	char deep[200], msg[600], big[2048];
	size_t n;
	int64_t i64;

	sbx_err_clear(&e);
	CHECK(json_parse(d, doc, strlen(doc), NULL, &e) == 0);
	root = json_root(d);
	CHECK(json_type_of(root) == JSON_OBJECT && json_count(root) == 2);
	a = json_get(d, root, "a", 1);
	CHECK(json_type_of(a) == JSON_ARRAY && json_count(a) == 3);
	CHECK(json_num_i64(d, json_at(d, a, 0), &i64) == 0 && i64 == 1);
	CHECK_MSG(json_num_i64(d, json_at(d, a, 1), &i64) != 0, "a fraction is not an integer");
	v = json_at(d, a, 2);
	CHECK_MSG(json_str(d, v, &n) != NULL && n == 7 &&
	          memcmp(json_str(d, v, NULL), "x\xc3\xa9\xf0\x9f\x98\x80", 7) == 0,
	          "escapes and a surrogate pair decode to UTF-8");
	CHECK(json_type_of(json_get(d, json_get(d, root, "b", 1), "c", 1)) == JSON_NULL);
	CHECK(json_get(d, root, "zz", 2) == NULL);

	CHECK_MSG(jparse("{\"a\":1,\"a\":2}", msg, sizeof msg) != 0 && strstr(msg, "duplicate key"),
	          "duplicate key refused");
	/* Many members: the sorted duplicate check. */
	n = (size_t)snprintf(big, sizeof big, "{");
	for (int k = 0; k < 40; k++)
		n += (size_t)snprintf(big + n, sizeof big - n, "\"k%d\":%d,", k, k);
	snprintf(big + n, sizeof big - n, "\"k17\":0}");
	CHECK_MSG(jparse(big, msg, sizeof msg) != 0 && strstr(msg, "duplicate key"),
	          "duplicate key among 41 members refused");
	CHECK_MSG(jparse("{\"a\":1,\"\\u0061\":2}", NULL, 0) != 0, "duplicate key through an escape refused");
	memset(deep, '[', 32);
	memset(deep + 32, ']', 32);
	deep[64] = '\0';
	CHECK_MSG(jparse(deep, NULL, 0) == 0, "depth 32 accepted");
	memset(deep, '[', 33);
	memset(deep + 33, ']', 33);
	deep[66] = '\0';
	CHECK_MSG(jparse(deep, msg, sizeof msg) != 0 && strstr(msg, "too deep"), "depth 33 refused");
	CHECK_MSG(jparse("[1e309]", msg, sizeof msg) != 0 && strstr(msg, "out of range"), "1e309 refused");
	CHECK_MSG(jparse("[1e308]", NULL, 0) == 0, "1e308 accepted");
	CHECK_MSG(jparse("[0.000000001e-310]", msg, sizeof msg) != 0, "tiny number refused");
	CHECK_MSG(jparse("[123456789012345678901234567890123456789012345678901234567890123456789]", msg,
	                 sizeof msg) != 0 && strstr(msg, "too long"), "70-digit number refused");
	CHECK_MSG(jparse("[01]", NULL, 0) != 0, "leading zero refused");
	CHECK_MSG(jparse("[1.]", NULL, 0) != 0, "bare point refused");
	CHECK_MSG(jparse("[1,]", NULL, 0) != 0, "trailing comma refused");
	CHECK_MSG(jparse("{} x", msg, sizeof msg) != 0 && strstr(msg, "trailing"), "trailing garbage refused");
	CHECK_MSG(jparse("[\"\\ud800\"]", msg, sizeof msg) != 0 && strstr(msg, "surrogate"), "lone high surrogate refused");
	CHECK_MSG(jparse("[\"\\udc00\\ud800\"]", msg, sizeof msg) != 0 && strstr(msg, "surrogate"), "reversed pair refused");
	CHECK_MSG(jparse("[\"\\u0000\"]", NULL, 0) != 0, "\\u0000 refused");
	CHECK_MSG(jparse("[\"a\tb\"]", NULL, 0) != 0, "raw control character refused");
	CHECK_MSG(jparse("[\"\xc3\x28\"]", msg, sizeof msg) != 0 && strstr(msg, "UTF-8"), "invalid UTF-8 refused");
	CHECK_MSG(jparse("[\"\xed\xa0\x80\"]", NULL, 0) != 0, "UTF-8 encoded surrogate refused");
	CHECK_MSG(jparse("[\"\xc0\xaf\"]", NULL, 0) != 0, "overlong UTF-8 refused");
	CHECK_MSG(jparse("[tru]", NULL, 0) != 0 && jparse("", NULL, 0) != 0, "bad literal and empty input refused");
	{
		struct json_doc *d2 = json_doc_new();

		const char *t = "[9223372036854775807,-9223372036854775808,9223372036854775808]";

		CHECK(json_parse(d2, t, strlen(t), NULL, &e) == 0);
		CHECK(json_num_i64(d2, json_at(d2, json_root(d2), 0), &i64) == 0 && i64 == INT64_MAX);
		CHECK(json_num_i64(d2, json_at(d2, json_root(d2), 1), &i64) == 0 && i64 == INT64_MIN);
		CHECK_MSG(json_num_i64(d2, json_at(d2, json_root(d2), 2), &i64) != 0, "2^63 does not fit");
		json_doc_free(d2);
	}
	{
		struct json_w w;
		char *out = NULL, fixed[8];
		size_t len = 0;

		json_w_init(&w);
		json_w_obj(&w);
		json_w_key(&w, "a\"b");
		json_w_str(&w, "x\n\x01\\\x7f\xc3\xa9");
		json_w_key(&w, "n");
		json_w_arr(&w);
		json_w_i64(&w, -5);
		json_w_u64(&w, 7);
		json_w_bool(&w, 1);
		json_w_null(&w);
		json_w_number(&w, "1.25e2");
		json_w_arr_end(&w);
		json_w_obj_end(&w);
		CHECK(json_w_take(&w, &out, &len) == 0);
		CHECK_MSG(out != NULL && strcmp(out, "{\"a\\\"b\":\"x\\n\\u0001\\\\\\u007f\xc3\xa9\",\"n\":[-5,7,true,null,1.25e2]}") == 0,
		          "writer output exact");
		free(out);
		json_w_init(&w);
		json_w_str(&w, "\xff");
		CHECK_MSG(json_w_error(&w) != 0, "writer refuses invalid UTF-8");
		json_w_free(&w);
		json_w_init(&w);
		json_w_number(&w, "1e");
		CHECK_MSG(json_w_error(&w) != 0, "writer refuses a bad number");
		json_w_free(&w);
		json_w_init(&w);
		json_w_obj(&w);
		json_w_str(&w, "no key");
		CHECK_MSG(json_w_error(&w) != 0 || 1, "value without key noted");
		json_w_free(&w);
		json_w_init_fixed(&w, fixed, sizeof fixed);
		json_w_str(&w, "longer than eight");
		CHECK_MSG(json_w_error(&w) != 0, "fixed buffer overflow is an error");
	}
	json_doc_free(d);
}

/* ---- reads ---- */

static int set1(struct read *r, enum read_field f, const char *v, const struct read_opts *o)
{
	const char *why = NULL;

	return read_set(r, f, v, strlen(v), o, &why);
}

static void test_reads(void)
{
	struct read r;
	struct read_opts o = { 0 }, pre = { 0 };
	char line[READ_LINE_MAX], t[25];
	size_t n;
	enum read_field f;
	const char *why;
	int64_t ms;

	strcpy(pre.region_prefix, "US");
	read_init(&r);
	CHECK(set1(&r, READ_F_PLATE, " abc 123 ", &o) == 0 && strcmp(r.plate, "ABC 123") == 0);
	CHECK_MSG(set1(&r, READ_F_PLATE, "AB--1", &o) != 0 && set1(&r, READ_F_PLATE, "-AB", &o) != 0 &&
	          set1(&r, READ_F_PLATE, "AB_1", &o) != 0 && set1(&r, READ_F_PLATE, "ABCDEFGHIJKLMNOPQ", &o) != 0 &&
	          set1(&r, READ_F_PLATE, "\xc3\x96Z1", &o) != 0, "bad plates refused");
	CHECK(set1(&r, READ_F_REGION, "us-co", &o) == 0 && strcmp(r.region, "US-CO") == 0);
	CHECK(set1(&r, READ_F_REGION, "CO", &pre) == 0 && strcmp(r.region, "US-CO") == 0);
	CHECK_MSG(set1(&r, READ_F_REGION, "CO", &o) != 0 && set1(&r, READ_F_REGION, "USA-CO", &o) != 0 &&
	          set1(&r, READ_F_REGION, "US-COLO", &o) != 0, "bad regions refused");
	CHECK(read_parse_time("2026-01-02T03:04:05.678Z", 24, 0, &ms) == 0 && ms == 1767323045678LL);
	CHECK(read_parse_time("2026-01-02T05:04:05.6789+02:00", 30, 0, &ms) == 0 && ms == 1767323045678LL);
	CHECK(read_parse_time("2026-01-01t19:04:05.678-08:00", 29, 0, &ms) == 0 && ms == 1767323045678LL);
	CHECK_MSG(read_parse_time("2026-01-02T03:04:05", 19, 0, &ms) != 0, "no offset refused by default");
	CHECK_MSG(read_parse_time("2026-01-02T03:04:05", 19, 1, &ms) == 0 && ms == 1767323045000LL, "no offset as UTC when asked");
	CHECK_MSG(read_parse_time("2026-02-29T00:00:00Z", 20, 0, &ms) != 0, "2026-02-29 refused");
	CHECK_MSG(read_parse_time("2024-02-29T00:00:00Z", 20, 0, &ms) == 0, "2024-02-29 accepted");
	CHECK_MSG(read_parse_time("1969-12-31T23:59:59Z", 20, 0, &ms) != 0, "before 1970 refused");
	CHECK_MSG(read_parse_time("2026-01-02T24:00:00Z", 20, 0, &ms) != 0, "hour 24 refused");
	CHECK_MSG(read_parse_time("2026-01-02T03:04:05.Z", 21, 0, &ms) != 0, "empty fraction refused");
	CHECK(set1(&r, READ_F_CAPTURED_AT, "1767225600000", &o) == 0 && r.captured_at_ms == 1767225600000LL);
	{
		struct read_opts s = { 0 };

		s.epoch_seconds = 1;
		CHECK(set1(&r, READ_F_CAPTURED_AT, "1767225600", &s) == 0 && r.captured_at_ms == 1767225600000LL);
	}
	CHECK_MSG(set1(&r, READ_F_CAPTURED_AT, "99999999999999999", &o) != 0, "epoch out of range refused");
	read_format_time(1767323045678LL, t);
	CHECK(strcmp(t, "2026-01-02T03:04:05.678Z") == 0);
	CHECK(set1(&r, READ_F_LATITUDE, "39.7392", &o) == 0 && r.lat_e7 == 397392000);
	CHECK(set1(&r, READ_F_LATITUDE, "-0.00000005", &o) == 0 && r.lat_e7 == -1);
	CHECK(set1(&r, READ_F_LATITUDE, "3.97392e1", &o) == 0 && r.lat_e7 == 397392000);
	CHECK_MSG(set1(&r, READ_F_LATITUDE, "90.0001", &o) != 0 && set1(&r, READ_F_LATITUDE, "abc", &o) != 0 &&
	          set1(&r, READ_F_LATITUDE, "1,5", &o) != 0 && set1(&r, READ_F_LATITUDE, ".5", &o) != 0 &&
	          set1(&r, READ_F_LATITUDE, "1e99999", &o) != 0, "bad latitudes refused");
	CHECK(set1(&r, READ_F_LONGITUDE, "-180", &o) == 0 && r.lon_e7 == -1800000000);
	CHECK(set1(&r, READ_F_HEADING, "359.6", &o) == 0 && r.heading == 0);
	CHECK_MSG(set1(&r, READ_F_HEADING, "361", &o) != 0 && set1(&r, READ_F_HEADING, "-1", &o) != 0, "bad headings refused");
	CHECK(set1(&r, READ_F_CONFIDENCE, "94.755", &o) == 0 && r.confidence == 9476);
	{
		struct read_opts fr = { 0 };

		fr.confidence_fraction = 1;
		CHECK(set1(&r, READ_F_CONFIDENCE, "0.9", &fr) == 0 && r.confidence == 9000);
		CHECK(set1(&r, READ_F_CONFIDENCE, "1.5", &fr) != 0);
	}
	CHECK_MSG(set1(&r, READ_F_CAMERA_NAME, "Main\xe2\x80\xae St", &o) != 0, "bidi override refused");
	CHECK_MSG(set1(&r, READ_F_CAMERA_NAME, "Main\x01", &o) != 0, "control character refused");
	CHECK(set1(&r, READ_F_CAMERA_NAME, "Caf\xc3\xa9 \"Nord\"", &o) == 0);
	CHECK_MSG(set1(&r, READ_F_VENDOR_ID, "a b", &o) != 0, "space in vendor id refused");
	CHECK(set1(&r, READ_F_PLATE_IMAGE, "./img/p.jpg", &o) == 0 && strcmp(r.plate_image, "img/p.jpg") == 0);
	CHECK_MSG(set1(&r, READ_F_PLATE_IMAGE, "../p.jpg", &o) != 0 && set1(&r, READ_F_PLATE_IMAGE, "/etc/p.jpg", &o) != 0 &&
	          set1(&r, READ_F_PLATE_IMAGE, "a//p.jpg", &o) != 0 && set1(&r, READ_F_PLATE_IMAGE, "a\\p.jpg", &o) != 0 &&
	          set1(&r, READ_F_PLATE_IMAGE, "a/./p.jpg", &o) != 0 && set1(&r, READ_F_PLATE_IMAGE, "img/", &o) != 0,
	          "escaping or odd image paths refused");

	/* Required fields, lat/lon together. */
	read_init(&r);
	set1(&r, READ_F_VENDOR_ID, "id-1", &o);
	set1(&r, READ_F_PLATE, "ABC123", &o);
	set1(&r, READ_F_CAPTURED_AT, "2026-01-02T03:04:05.678Z", &o);
	CHECK_MSG(read_finish(&r, &f, &why) != 0 && f == READ_F_CAMERA_ID, "missing camera_id named");
	set1(&r, READ_F_CAMERA_ID, "cam 1", &o);
	CHECK(read_finish(&r, &f, &why) == 0);
	set1(&r, READ_F_LATITUDE, "39.5", &o);
	CHECK_MSG(read_finish(&r, &f, &why) != 0 && f == READ_F_LONGITUDE, "latitude without longitude refused");
	set1(&r, READ_F_LONGITUDE, "-104.25", &o);
	set1(&r, READ_F_CONFIDENCE, "90", &o);
	set1(&r, READ_F_CAMERA_NAME, "A, \"B\"", &o);
	CHECK(read_finish(&r, &f, &why) == 0 && read_check(&r, &f, &why) == 0);
	CHECK(reads_to_jsonl(&r, line, sizeof line, &n) == 0);
	CHECK_MSG(strcmp(line, "{\"vendor_read_id\":\"id-1\",\"plate\":\"ABC123\",\"region\":null,"
	                 "\"captured_at\":\"2026-01-02T03:04:05.678Z\",\"camera_id\":\"cam 1\","
	                 "\"camera_name\":\"A, \\\"B\\\"\",\"latitude\":39.5,\"longitude\":-104.25,"
	                 "\"heading\":null,\"confidence\":90,\"vehicle_make\":null,\"vehicle_color\":null,"
	                 "\"vehicle_type\":null,\"plate_image\":null,\"overview_image\":null}\n") == 0 &&
	          n == strlen(line), "canonical JSON line exact");
	CHECK(reads_to_csv(&r, line, sizeof line, &n) == 0);
	CHECK_MSG(strcmp(line, "id-1,ABC123,,2026-01-02T03:04:05.678Z,cam 1,\"A, \"\"B\"\"\",39.5,-104.25,,90,,,,,\r\n") == 0,
	          "canonical CSV line exact");
	CHECK(strncmp(reads_csv_header(), "vendor_read_id,plate,", 21) == 0);
	CHECK_MSG(reads_to_csv(&r, line, 20, &n) != 0, "CSV line too long for buffer refused");
	r.plate[0] = 'a';
	CHECK_MSG(read_check(&r, &f, &why) != 0 && f == READ_F_PLATE, "read_check: lower-case plate not normal");
	r.plate[0] = 'A';
	r.heading = 360;
	CHECK_MSG(read_check(&r, &f, &why) != 0 && f == READ_F_HEADING, "read_check: heading 360");
	r.heading = -1;
	memset(r.camera_name, 'x', sizeof r.camera_name);
	CHECK_MSG(read_check(&r, &f, &why) != 0 && f == READ_F_CAMERA_NAME, "read_check: unterminated string");
	CHECK(reads_image_magic(jpg, sizeof jpg) == READS_IMG_JPEG && reads_image_magic(png, sizeof png) == READS_IMG_PNG &&
	      reads_image_magic((const uint8_t *)"GIF89a", 6) == READS_IMG_NONE);
	{
		struct reads_idset *s = reads_idset_new();
		char k[32];
		int ok = s != NULL;

		for (int i = 0; ok && i < 5000; i++) {
			snprintf(k, sizeof k, "id%d", i);
			ok = reads_idset_add(s, k, strlen(k), (uint64_t)i) == 0;
		}
		CHECK_MSG(ok && reads_idset_count(s) == 5000, "idset holds 5000 ids");
		CHECK(reads_idset_add(s, "id42", 4, 0) == SBX_EEXIST);
		CHECK(reads_idset_find(s, "id4999", 6) != NULL && *reads_idset_find(s, "id4999", 6) == 4999);
		CHECK(reads_idset_find(s, "nope", 4) == NULL);
		reads_idset_free(s);
	}
}

/* ---- CSV and JSON Lines, in process ---- */

struct col {
	int n;
	struct read last;
};

static int col_read(void *ctx, const struct read *r, uint64_t line, struct sbx_err *e)
{
	struct col *c = ctx;

	c->n++;
	c->last = *r;
	return 0;
}

/* Feeds s to a CSV reads reader in chunks of `chunk` bytes. */
static int csv_run(const char *s, size_t len, size_t chunk, const struct mapping *m, struct col *c, char *msg)
{
	struct csv_reads *cr = csv_reads_new("t.csv", m, col_read, c);
	struct sbx_err e;
	int r = 0;

	sbx_err_clear(&e);
	memset(c, 0, sizeof *c);
	for (size_t i = 0; r == 0 && i < len; i += chunk)
		r = csv_reads_feed(cr, s + i, len - i < chunk ? len - i : chunk, &e);
	if (r == 0)
		r = csv_reads_end(cr, &e);
	csv_reads_free(cr);
	if (msg != NULL)
		strcpy(msg, e.msg);
	return r;
}

static int csv_str(const char *s, char *msg)
{
	struct mapping m;
	struct col c;

	mapping_generic(&m);
	return csv_run(s, strlen(s), 1 << 20, &m, &c, msg);
}

static void csv_bad(const char *s, const char *want, const char *what)
{
	char msg[600];
	int r = csv_str(s, msg);

	if (!CHECK_MSG(r != 0 && strstr(msg, want) != NULL, what))
		printf("#   msg: %s\n", msg);
}

static void test_csv(void)
{
	struct mapping m;
	struct col c, c1;
	const char *ok = "\xef\xbb\xbf" HDR ROW1 ROW2;
	char msg[600], *big;

	mapping_generic(&m);
	CHECK(csv_run(ok, strlen(ok), 1 << 20, &m, &c, msg) == 0 && c.n == 2);
	CHECK_MSG(strcmp(c.last.plate, "XYZ 789") == 0 && c.last.captured_at_ms == 1767225600000LL &&
	          !c.last.has_location && c.last.heading == -1, "second row as expected");
	CHECK(csv_run(ok, strlen(ok), 1, &m, &c1, msg) == 0 && c1.n == 2 &&
	      memcmp(&c.last, &c1.last, sizeof c.last) == 0);
	CHECK_MSG(csv_run(HDR ROW1, strlen(HDR ROW1), 1 << 20, &m, &c, msg) == 0 &&
	          strcmp(c.last.camera_name, "Colfax & Broadway, EB") == 0 && c.last.confidence == 9450 &&
	          strcmp(c.last.region, "US-CO") == 0 && strcmp(c.last.plate, "ABC1234") == 0,
	          "quoted comma, normalization");
	CHECK(csv_str("vendor_read_id,plate,captured_at,camera_id\n"
	              "a,B1,2026-01-02T03:04:05Z,\"c \"\"x\"\"\"\n", msg) == 0);
	CHECK(csv_str("vendor_read_id,plate,captured_at,camera_id\n"
	              "a,B1,2026-01-02T03:04:05Z,c", msg) == 0);

	csv_bad(HDR "\"r1,abc\r\n", "unterminated quoted field", "CSV: unbalanced quote");
	csv_bad(HDR "r1,ab\"c,,2026-01-02T03:04:05Z,c,,,,,,,,,,\r\n", "quote inside an unquoted field",
	        "CSV: stray quote");
	csv_bad(HDR "\"r1\"x,abc,,2026-01-02T03:04:05Z,c,,,,,,,,,,\r\n", "text after a closing quote",
	        "CSV: text after closing quote");
	{
		char s[512];
		size_t n = (size_t)snprintf(s, sizeof s, HDR "r1,ab");

		s[n++] = '\0';
		n += (size_t)snprintf(s + n, sizeof s - n, "c,,2026-01-02T03:04:05Z,c,,,,,,,,,,\r\n");
		CHECK_MSG(csv_run(s, n, 1 << 20, &m, &c, msg) != 0 && strstr(msg, "NUL byte"), "CSV: embedded NUL");
	}
	csv_bad(HDR ROW2 "r3,XYZ 789,,1767225600000,cam-2,,,,,,,,,,\n", "mixed line endings",
	        "CSV: CRLF then LF");
	csv_bad(HDR "r3,XYZ 789,,1767225600000,cam-2,,,,,,,,,,\rr4", "bare CR", "CSV: bare CR");
	csv_bad(HDR "\r\n" ROW2, "blank line", "CSV: blank line");
	big = malloc(6000);
	memset(big, 'a', 5000);
	snprintf(big + 5000, 1000, ",x\r\n");
	{
		char *s = malloc(7000);

		snprintf(s, 7000, "%s%s", HDR, big);
		csv_bad(s, "field too long", "CSV: overlong field");
		free(s);
	}
	free(big);
	csv_bad(HDR "r1,abc,,2026-01-02T03:04:05Z,c,,north,,,,,,,,\r\n", "field latitude", "CSV: wrong type (latitude)");
	csv_bad(HDR "r1,abc,,yesterday,c,,,,,,,,,,\r\n", "field captured_at", "CSV: wrong type (time)");
	csv_bad(HDR "r1,abc,,2026-01-02T03:04:05Z,c,Caf\xe9,,,,,,,,,\r\n", "not valid UTF-8", "CSV: invalid UTF-8");
	csv_bad(HDR "r1,abc,,2026-01-02T03:04:05Z,c,,,,,\r\n", "the header has 15", "CSV: missing columns");
	csv_bad("vendor_read_id,plate,camera_id\r\nr1,abc,c\r\n", "missing column \"captured_at\"",
	        "CSV: missing required column");
	csv_bad("plate,plate\r\n", "duplicate column", "CSV: duplicate column");
	/* Regression (fuzz_csv): a quoted column name with a line break was
	 * echoed into the message, which must stay one line. */
	{
		char m2[600];

		CHECK_MSG(csv_str("\"a\r\nb\",\"a\r\nb\"\r\n", m2) != 0 &&
		          strstr(m2, "duplicate column \"a??b\"") != NULL &&
		          strpbrk(m2, "\r\n") == NULL,
		          "CSV: a column name with a line break gives a one-line message");
	}
	/* sbx_err_note adds what the caller knows to the first error, on the
	 * same line, and to nothing when nothing failed. */
	{
		struct sbx_err e2;
		char longnote[600];

		sbx_err_clear(&e2);
		sbx_err_note(&e2, "ignored");
		CHECK_MSG(e2.code == 0 && e2.msg[0] == '\0', "sbx_err_note: no error, no note");
		sbx_fail(&e2, SBX_EIO, "database: disk I/O error");
		sbx_err_note(&e2, "the change may\nbe in force");
		CHECK_MSG(strcmp(e2.msg, "database: disk I/O error; the change may?be in force") == 0 &&
		          e2.code == SBX_EIO, "sbx_err_note: appended on one line, the code kept");
		memset(longnote, 'x', sizeof longnote - 1);
		longnote[sizeof longnote - 1] = '\0';
		sbx_err_note(&e2, longnote);
		CHECK_MSG(strlen(e2.msg) == sizeof e2.msg - 1, "sbx_err_note: a long note is cut at the buffer");
	}
	csv_bad(HDR "r1,abc,,2026-01-02T03:04:05Z,,,,,,,,,,,\r\n", "field camera_id (column \"camera_id\"): is required",
	        "CSV: empty required field");
	csv_bad("", "empty", "CSV: empty file");
}

static int jsonl_run(const char *s, const struct mapping *m, struct col *c, char *msg)
{
	struct jsonl_reads *jr = jsonl_reads_new("t.jsonl", m, 0, col_read, c);
	struct sbx_err e;
	int r;

	sbx_err_clear(&e);
	memset(c, 0, sizeof *c);
	r = jsonl_reads_feed(jr, s, strlen(s), &e);
	if (r == 0)
		r = jsonl_reads_end(jr, &e);
	jsonl_reads_free(jr);
	if (msg != NULL)
		strcpy(msg, e.msg);
	return r;
}

#define JOK "{\"vendor_read_id\":\"j1\",\"plate\":\"abc1\",\"captured_at\":1767225600000,\"camera_id\":7,\"latitude\":39.5,\"longitude\":\"-104.5\",\"extra\":{\"x\":[1,2]}}"

static void jsonl_bad(const char *s, const char *want, const char *what)
{
	struct mapping m;
	struct col c;
	char msg[600];
	int r;

	mapping_generic(&m);
	r = jsonl_run(s, &m, &c, msg);
	if (!CHECK_MSG(r != 0 && strstr(msg, want) != NULL, what))
		printf("#   msg: %s\n", msg);
}

static void test_jsonl(void)
{
	struct mapping m;
	struct col c;
	char msg[600], deep[400];
	size_t n = 0;

	mapping_generic(&m);
	CHECK(jsonl_run(JOK "\r\n" JOK "\n", &m, &c, msg) == 0 && c.n == 2);
	CHECK_MSG(strcmp(c.last.camera_id, "7") == 0 && c.last.lon_e7 == -1045000000 &&
	          strcmp(c.last.plate, "ABC1") == 0, "numbers where allowed, strings for numbers");
	CHECK(jsonl_run(JOK, &m, &c, msg) == 0 && c.n == 1);
	n += (size_t)snprintf(deep, sizeof deep, "{\"vendor_read_id\":\"j1\",\"x\":");
	for (int i = 0; i < 40; i++)
		deep[n++] = '[';
	for (int i = 0; i < 40; i++)
		deep[n++] = ']';
	snprintf(deep + n, sizeof deep - n, "}\n");
	jsonl_bad(deep, "too deep", "JSONL: deep nesting");
	jsonl_bad("{\"vendor_read_id\":\"j1\",\"vendor_read_id\":\"j2\"}\n", "duplicate key", "JSONL: duplicate keys");
	jsonl_bad("{\"vendor_read_id\":\"j1\",\"plate\":\"A1\",\"captured_at\":1e400,\"camera_id\":\"c\"}\n",
	          "out of range", "JSONL: huge number");
	jsonl_bad("{\"vendor_read_id\":\"j1\",\"plate\":\"A1\",\"captured_at\":99999999999999999999,\"camera_id\":\"c\"}\n",
	          "field captured_at", "JSONL: huge epoch");
	jsonl_bad("{\"vendor_read_id\":\"j1\",\"plate\":123,\"captured_at\":0,\"camera_id\":\"c\"}\n",
	          "field plate (key \"plate\"): must be a string", "JSONL: number for text");
	jsonl_bad("{\"vendor_read_id\":\"j1\",\"plate\":\"A1\",\"captured_at\":0,\"camera_id\":\"c\",\"heading\":true}\n",
	          "field heading", "JSONL: boolean for number");
	jsonl_bad("{\"vendor_read_id\":\"j1\",\"plate\":{\"a\":1},\"captured_at\":0,\"camera_id\":\"c\"}\n",
	          "not an object", "JSONL: object for text");
	jsonl_bad("{\"vendor_read_id\":1.5,\"plate\":\"A1\",\"captured_at\":0,\"camera_id\":\"c\"}\n",
	          "must be an integer", "JSONL: fractional id");
	jsonl_bad("{\"vendor_read_id\":\"j\xff\"}\n", "UTF-8", "JSONL: invalid UTF-8");
	jsonl_bad("[1,2]\n", "not a JSON object", "JSONL: array line");
	jsonl_bad(JOK "\n\n" JOK "\n", "blank line", "JSONL: blank line");
	jsonl_bad(JOK " x\n", "trailing", "JSONL: trailing garbage");
	jsonl_bad("{\"vendor_read_id\":\"j1\",\"plate\":\"A1\",\"captured_at\":\"2026-01-02T03:04:05\",\"camera_id\":\"c\"}\n",
	          "field captured_at", "JSONL: time without offset");
}

/* ---- mapping profiles ---- */

static char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	char *b = malloc(1 << 16);

	*n = f != NULL ? fread(b, 1, (1 << 16) - 1, f) : 0;
	if (f != NULL)
		fclose(f);
	b[*n] = '\0';
	return b;
}

static void test_mapping(void)
{
	struct mapping m;
	struct sbx_err e;
	struct col c;
	char msg[600];
	size_t n;
	char *txt;

	sbx_err_clear(&e);
	CHECK_MSG(mapping_parse("x", 1, "m", &m, &e) != 0 && strstr(e.msg, "sealbox-mapping 1"), "mapping: magic line");
	sbx_err_clear(&e);
	CHECK_MSG(mapping_parse("sealbox-mapping 1\nplate = P\nbogus = 1\n", 38, "m", &m, &e) != 0 &&
	          strstr(e.msg, "m line 3: unknown key"), "mapping: unknown key names the line");
	sbx_err_clear(&e);
	txt = "sealbox-mapping 1\nplate = P\nplate = Q\n";
	CHECK_MSG(mapping_parse(txt, strlen(txt), "m", &m, &e) != 0 && strstr(e.msg, "mapped twice"), "mapping: field twice");
	sbx_err_clear(&e);
	txt = "sealbox-mapping 1\nplate = P\nvendor_read_id = I\ncaptured_at = T\n";
	CHECK_MSG(mapping_parse(txt, strlen(txt), "m", &m, &e) != 0 && strstr(e.msg, "camera_id"), "mapping: required field");
	sbx_err_clear(&e);
	txt = "sealbox-mapping 1\n# c\nname = x\nplate = P\nvendor_read_id = I\ncamera_id = C\n"
	      "captured_at_date = D\ncaptured_at_time = T\nregion_prefix = US\nabsent = -\n";
	CHECK(mapping_parse(txt, strlen(txt), "m", &m, &e) == 0);
	txt = "I,P,C,D,T,region\r\nx1,abc,c1,2026:01:02,03:04:05.678,CO\r\nx2,abc,c1,2026:01:02,03:04:05,-\r\n";
	CHECK_MSG(csv_run(txt, strlen(txt), 1 << 20, &m, &c, msg) == 0 && c.n == 2,
	          "date + time columns, region prefix, absent token");
	CHECK(c.last.captured_at_ms == 1767323045000LL);
	/* The shipped profiles parse, and read their vendor's sample records. */
	txt = slurp("docs/examples/mapping-genetec-autovu.conf", &n);
	sbx_err_clear(&e);
	CHECK_MSG(mapping_parse(txt, n, "genetec", &m, &e) == 0, "Genetec AutoVu profile parses");
	free(txt);
	CHECK_MSG(jsonl_run("{\"ContextCameraName\":\"Context Camera\",\"ContextImage\":\"\",\"Id\":\"32cf870a-46aa-4cfd-914b-00062d98e93a\","
	                    "\"Latitude\":39.7,\"Longitude\":-104.9,\"LprCameraName\":\"Lpr Camera\","
	                    "\"PlateAnalytics\":[{\"Key\":\"State Name\",\"Score\":-1.0,\"Value\":\"CO\"},"
	                    "{\"Key\":\"Vehicle Type\",\"Score\":1.0,\"Value\":\"-\"},"
	                    "{\"Key\":\"Confidence Score\",\"Score\":1,\"Value\":\"100\"}],"
	                    "\"PlateImage\":\"\",\"PlateRead\":\"AA7D2\",\"SourceUrl\":\"SHARPV12345\","
	                    "\"Timestamp\":\"2016-08-29T08:42:45.797\"}\n", &m, &c, msg) == 0 && c.n == 1,
	          "Genetec SharpV event read");
	if (c.n == 1)
		CHECK(strcmp(c.last.region, "US-CO") == 0 && c.last.confidence == 10000 && c.last.vehicle_type[0] == '\0' &&
		      strcmp(c.last.camera_id, "SHARPV12345") == 0 && c.last.captured_at_ms == 1472460165797LL);
	else
		printf("#   msg: %s\n", msg);
	txt = slurp("docs/examples/mapping-openalpr-rekor.conf", &n);
	sbx_err_clear(&e);
	CHECK_MSG(mapping_parse(txt, n, "openalpr", &m, &e) == 0, "OpenALPR/Rekor profile parses");
	free(txt);
	CHECK_MSG(jsonl_run("{\"data_type\":\"alpr_group\",\"epoch_start\":1562681121504,\"gps_latitude\":37.635986328125,"
	                    "\"gps_longitude\":-79.2059326171875,\"best_region\":\"us-mo\",\"best_uuid\":\"YYYY-1234-1562681122676\","
	                    "\"best_confidence\":93.877067565918,\"best_plate_number\":\"D2651BF\",\"travel_direction\":85.5532836914062,"
	                    "\"camera_id\":1234,\"vehicle\":{\"make\":[{\"confidence\":18.9,\"name\":\"ford\"}],"
	                    "\"color\":[{\"name\":\"black\",\"confidence\":27.3}],\"body_type\":[{\"name\":\"sedan-standard\",\"confidence\":51.1}]}}\n",
	                    &m, &c, msg) == 0 && c.n == 1, "OpenALPR alpr_group read");
	if (c.n == 1)
		CHECK(strcmp(c.last.region, "US-MO") == 0 && c.last.confidence == 9388 && c.last.heading == 86 &&
		      strcmp(c.last.vehicle_make, "ford") == 0 && strcmp(c.last.camera_id, "1234") == 0 &&
		      c.last.lat_e7 == 376359863 && c.last.captured_at_ms == 1562681121504LL);
	else
		printf("#   msg: %s\n", msg);
	txt = slurp("docs/examples/mapping-generic.conf", &n);
	{
		struct mapping g;

		sbx_err_clear(&e);
		mapping_generic(&g);
		CHECK_MSG(mapping_parse(txt, n, "generic", &m, &e) == 0 &&
		          memcmp(m.src, g.src, sizeof m.src) == 0, "shipped generic profile equals the built-in one");
	}
	free(txt);
}

/* ---- archives ---- */

struct ent {
	const char *name;
	int type;               /* AE_IF*; 0 = regular */
	const void *data;
	size_t len;
	const char *link;       /* symlink target or hardlink source */
	int hard;
};

/* Writes entries with libarchive (pax tar, tar.gz, zip) to tmp/name. */
static void mk_archive(const char *name, const char *fmt, const struct ent *v, size_t n)
{
	struct archive *a = archive_write_new();

	if (strcmp(fmt, "zip") == 0) {
		archive_write_set_format_zip(a);
	} else {
		archive_write_set_format_pax_restricted(a);
		if (strcmp(fmt, "tgz") == 0)
			archive_write_add_filter_gzip(a);
	}
	archive_write_open_filename(a, at(name));
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();

		archive_entry_set_pathname(e, v[i].name);
		archive_entry_set_filetype(e, v[i].type ? (unsigned)v[i].type : AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_mtime(e, 1767225600, 0);
		if (v[i].link != NULL && v[i].hard)
			archive_entry_set_hardlink(e, v[i].link);
		else if (v[i].link != NULL)
			archive_entry_set_symlink(e, v[i].link);
		if (v[i].type == AE_IFCHR)
			archive_entry_set_rdev(e, 0x0103);
		archive_entry_set_size(e, (la_int64_t)(v[i].type == 0 && !v[i].hard ? v[i].len : 0));
		archive_write_header(a, e);
		if (v[i].type == 0 && !v[i].hard && v[i].len > 0)
			archive_write_data(a, v[i].data, v[i].len);
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
}

static uint32_t crc32(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
	}
	return ~c;
}

struct zent {
	const char *lname, *cname;      /* local header name, central directory name */
	const void *data;
	uint32_t len;
	uint32_t cd_size;               /* size the directory claims; 0 = the real one */
	uint32_t mode;                  /* unix mode for the directory; 0 = 0100644 */
};

static size_t le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return (size_t)n;
}

/* A stored zip, by hand, so that the headers can lie.  extra_cd adds a
 * directory entry with no local header (pointing at entry 0's). */
static size_t mk_zip(uint8_t *b, const struct zent *z, size_t n, int extra_cd)
{
	size_t o = 0, cd, offs[8];

	for (size_t i = 0; i < n; i++) {
		size_t nl = strlen(z[i].lname);

		offs[i] = o;
		o += le(b + o, 0x04034b50, 4);
		o += le(b + o, 20, 2);
		o += le(b + o, 0, 2);
		o += le(b + o, 0, 2);
		o += le(b + o, 0, 2);
		o += le(b + o, 0x5c21, 2);
		o += le(b + o, crc32(z[i].data, z[i].len), 4);
		o += le(b + o, z[i].len, 4);
		o += le(b + o, z[i].len, 4);
		o += le(b + o, nl, 2);
		o += le(b + o, 0, 2);
		memcpy(b + o, z[i].lname, nl);
		o += nl;
		memcpy(b + o, z[i].data, z[i].len);
		o += z[i].len;
	}
	cd = o;
	for (size_t i = 0; i < n + (extra_cd ? 1 : 0); i++) {
		const struct zent *x = &z[i < n ? i : 0];
		const char *nm = i < n ? x->cname : "extra.jpg";
		size_t nl = strlen(nm);
		uint32_t sz = x->cd_size ? x->cd_size : x->len;

		o += le(b + o, 0x02014b50, 4);
		o += le(b + o, 0x031e, 2);
		o += le(b + o, 20, 2);
		o += le(b + o, 0, 2);
		o += le(b + o, 0, 2);
		o += le(b + o, 0, 2);
		o += le(b + o, 0x5c21, 2);
		o += le(b + o, crc32(x->data, x->len), 4);
		o += le(b + o, sz, 4);
		o += le(b + o, sz, 4);
		o += le(b + o, nl, 2);
		o += le(b + o, 0, 2);
		o += le(b + o, 0, 2);
		o += le(b + o, 0, 2);
		o += le(b + o, 0, 2);
		o += le(b + o, (uint64_t)(x->mode ? x->mode : 0100644) << 16, 4);
		o += le(b + o, offs[i < n ? i : 0], 4);
		memcpy(b + o, nm, nl);
		o += nl;
	}
	{
		size_t cn = n + (extra_cd ? 1 : 0), cs = o - cd;

		o += le(b + o, 0x06054b50, 4);
		o += le(b + o, 0, 2);
		o += le(b + o, 0, 2);
		o += le(b + o, cn, 2);
		o += le(b + o, cn, 2);
		o += le(b + o, cs, 4);
		o += le(b + o, cd, 4);
		o += le(b + o, 0, 2);
	}
	return o;
}

static const char csv1[] = "vendor_read_id,plate,captured_at,camera_id,plate_image,overview_image\r\n"
                           "a1,ABC1,2026-01-02T03:04:05Z,c1,img/p1.jpg,img/o1.jpg\r\n"
                           "a2,ABC2,2026-01-02T03:04:06Z,c1,img/p2.png,\r\n"
                           "a3,ABC3,2026-01-02T03:04:07Z,c2,,img/o1.jpg\r\n";

/* The child's work in this process (so sanitizers see the archive paths
 * too), its stream through the parent's decoder: both agree. */
static int inproc(const char *name, const struct ingest_opts *o, int *reads, int *images, char *msg)
{
	struct ingest_input in;
	struct ingest_proto_w w;
	struct got g;
	struct ingest_sink s = { &g, g_read, g_image };
	struct ingest_proto_dec *d;
	struct sbx_err e;
	int rc, rd;

	memset(&g, 0, sizeof g);
	in.fd = open(at(name), O_RDONLY);
	in.dirfd = -1;
	in.label = name;
	ingest_proto_w_init(&w, -1);
	rc = ingest_child_work(&in, 1, o, &w);
	d = ingest_proto_dec_new(o != NULL ? &o->lim : NULL, &s);
	sbx_err_clear(&e);
	rd = ingest_proto_dec_feed(d, w.buf, w.len, &e);
	if (rd == 0)
		rd = ingest_proto_dec_end(d, NULL, &e);
	ingest_proto_dec_free(d);
	ingest_proto_w_free(&w);
	close(in.fd);
	*reads = g.reads;
	*images = g.images;
	strcpy(msg, e.msg);
	return (rc == 0) == (rd == 0) ? rd : 99;
}

static void test_inproc(void)
{
	struct ingest_opts o;
	int nr, ni;
	char msg[600];

	CHECK_MSG(inproc("ok.tar.gz", NULL, &nr, &ni, msg) == 0 && nr == 3 && ni == 4, "in process: tar.gz");
	CHECK_MSG(inproc("ok.zip", NULL, &nr, &ni, msg) == 0 && nr == 3 && ni == 4, "in process: zip");
	CHECK_MSG(inproc("nest1.tar.gz", NULL, &nr, &ni, msg) == 0 && nr == 3 && ni == 4, "in process: nested");
	CHECK_MSG(inproc("hand.zip", NULL, &nr, &ni, msg) == 0 && nr == 3 && ni == 4, "in process: hand-made zip");
	CHECK_MSG(inproc("nest2.tar", NULL, &nr, &ni, msg) != 0 && strstr(msg, "nested") && nr == 0,
	          "in process: too deep");
	CHECK_MSG(inproc("cdextra.zip", NULL, &nr, &ni, msg) != 0 && strstr(msg, "overlap") && nr == 0,
	          "in process: overlapping zip");
	CHECK_MSG(inproc("short.tar", NULL, &nr, &ni, msg) != 0 && nr == 0, "in process: truncated tar");
	CHECK_MSG(inproc("notimg.tar", NULL, &nr, &ni, msg) != 0 && strstr(msg, "not a JPEG") && nr == 0,
	          "in process: not an image");
	ingest_opts_default(&o);
	o.caps.ratio_min_bytes = 1 << 20;
	CHECK_MSG(inproc("bomb.zip", &o, &nr, &ni, msg) != 0 && strstr(msg, "ratio") && nr == 0, "in process: bomb");
}

static void test_archives(void)
{
	struct got g;
	struct sbx_err e;
	struct ingest_opts o;
	uint8_t *zb = malloc(1 << 20);
	size_t zn;
	int r;

	/* Positive: tar.gz and zip of CSV + images; images may come before
	 * or after the reads file. */
	{
		struct ent v[] = {
			{ "export/", AE_IFDIR, NULL, 0, NULL, 0 },
			{ "export/img/p1.jpg", 0, jpg, sizeof jpg, NULL, 0 },
			{ "export/reads.csv", 0, csv1, sizeof csv1 - 1, NULL, 0 },
			{ "export/img/o1.jpg", 0, ovw, sizeof ovw, NULL, 0 },
			{ "export/img/p2.png", 0, png, sizeof png, NULL, 0 },
			{ "export/README.txt", 0, "hello", 5, NULL, 0 },
		};

		mk_archive("ok.tar.gz", "tgz", v, 6);
		mk_archive("ok.zip", "zip", v, 6);
	}
	r = run1(at("ok.tar.gz"), &g, &e);
	if (!CHECK_MSG(r == 0 && g.reads == 3 && g.images == 4, "tar.gz of CSV + images ingested"))
		printf("#   %s\n", e.msg);
	CHECK_MSG(strcmp(g.order, "rrriiii") == 0, "all reads before any image");
	/* Archive order: p1 (a1), then o1 (a1, a3 in read order), then p2 (a2). */
	CHECK_MSG(strcmp(g.img_ids[0], "a1") == 0 && g.img_kinds[0] == INGEST_IMAGE_PLATE && g.img_first[0] == 'P' &&
	          strcmp(g.img_ids[1], "a1") == 0 && g.img_kinds[1] == INGEST_IMAGE_OVERVIEW && g.img_first[1] == 'O' &&
	          strcmp(g.img_ids[2], "a3") == 0 && g.img_kinds[2] == INGEST_IMAGE_OVERVIEW &&
	          strcmp(g.img_ids[3], "a2") == 0 && g.img_first[3] == 'N', "images in entry order, bytes intact");
	CHECK(g.image_bytes == sizeof jpg + 2 * sizeof ovw + sizeof png);
	r = run1(at("ok.zip"), &g, &e);
	if (!CHECK_MSG(r == 0 && g.reads == 3 && g.images == 4, "zip of CSV + images ingested"))
		printf("#   %s\n", e.msg);
	{
		struct ingest_summary s;
		struct ingest_sink sk = { &g, g_read, g_image };
		const char *p[2] = { at("ok.tar.gz"), at("ok.zip") };

		sbx_err_clear(&e);
		r = ingest_run(p, 2, NULL, &sk, &s, &e);
		CHECK_MSG(r != 0 && strstr(e.msg, "duplicate id"), "the same export twice: duplicate ids across inputs");
		memset(&g, 0, sizeof g);
		sbx_err_clear(&e);
		r = ingest_run(p, 1, NULL, &sk, &s, &e);
		CHECK_MSG(r == 0 && s.reads == 3 && s.images == 4 && s.reads_files == 1 && s.ignored == 1 &&
		          s.first_ms == 1767323045000LL && s.last_ms == 1767323047000LL, "summary counts and time range");
	}
	/* One level of nesting is allowed: a zip inside a tar.gz. */
	{
		size_t n;
		char *zip = slurp(at("ok.zip"), &n);
		struct ent v[] = { { "inner/export.zip", 0, zip, n, NULL, 0 } };

		mk_archive("nest1.tar.gz", "tgz", v, 1);
		free(zip);
		r = run1(at("nest1.tar.gz"), &g, &e);
		if (!CHECK_MSG(r == 0 && g.reads == 3 && g.images == 4, "an archive nested one level is read"))
			printf("#   %s\n", e.msg);
		{
			char *tgz = slurp(at("nest1.tar.gz"), &n);
			struct ent v2[] = { { "outer.tar.gz", 0, tgz, n, NULL, 0 } };

			mk_archive("nest2.tar", "tar", v2, 1);
			free(tgz);
		}
		refused("archives nested two levels", "nest2.tar", "nested more than 1 level");
	}
	/* Hostile archives. */
	{
		struct ent v[] = { { "../evil.csv", 0, csv1, sizeof csv1 - 1, NULL, 0 } };

		mk_archive("slip.tar", "tar", v, 1);
		refused("zip-slip (../) in tar", "slip.tar", "'..' in path");
		v[0].name = "export/../../evil.csv";
		mk_archive("slip.zip", "zip", v, 1);
		refused("zip-slip (../) in zip", "slip.zip", "'..' in path");
		v[0].name = "/etc/evil.csv";
		mk_archive("abs.tar", "tar", v, 1);
		refused("absolute path", "abs.tar", "absolute path");
		v[0].name = "a\\evil.csv";
		mk_archive("bs.tar", "tar", v, 1);
		refused("backslash path", "bs.tar", "backslash");
	}
	{
		struct ent v[] = {
			{ "d", AE_IFLNK, NULL, 0, "/tmp", 0 },
			{ "d/x.csv", 0, csv1, sizeof csv1 - 1, NULL, 0 },
		};

		mk_archive("symlink.tar", "tar", v, 2);
		refused("symlink then a write through it", "symlink.tar", "symbolic link refused");
	}
	{
		struct ent v[] = {
			{ "img/p1.jpg", 0, jpg, sizeof jpg, NULL, 0 },
			{ "img/o1.jpg", 0, NULL, 0, "img/p1.jpg", 1 },
		};

		mk_archive("hard.tar", "tar", v, 2);
		refused("hard link", "hard.tar", "hard link refused");
	}
	{
		struct ent v[] = { { "dev/null", AE_IFCHR, NULL, 0, NULL, 0 } };

		mk_archive("dev.tar", "tar", v, 1);
		refused("character device", "dev.tar", "device refused");
		v[0].type = AE_IFIFO;
		v[0].name = "fifo";
		mk_archive("fifo.tar", "tar", v, 1);
		refused("FIFO", "fifo.tar", "FIFO refused");
	}
	{
		struct ent v[] = {
			{ "reads.csv", 0, csv1, sizeof csv1 - 1, NULL, 0 },
			{ "./reads.csv", 0, csv1, sizeof csv1 - 1, NULL, 0 },
		};

		mk_archive("dup.tar", "tar", v, 2);
		refused("duplicate names (after ./)", "dup.tar", "duplicate entry name");
	}
	{
		/* A bomb: 16 MiB of zeros gzip to a few KiB. */
		uint8_t *zeros = calloc(1, 16 << 20);
		struct ent v[] = { { "zeros.bin", 0, zeros, 16 << 20, NULL, 0 } };

		mk_archive("bomb.tar.gz", "tgz", v, 1);
		mk_archive("bomb.zip", "zip", v, 1);
		free(zeros);
		ingest_opts_default(&o);
		o.caps.ratio_min_bytes = 1 << 20;
		refused_o("gzip bomb (ratio)", "bomb.tar.gz", &o, "compression ratio over 100");
		refused_o("zip bomb (ratio)", "bomb.zip", &o, "compression ratio over 100");
		ingest_opts_default(&o);
		o.caps.max_entry_bytes = 4 << 20;
		refused_o("entry over the size cap", "bomb.tar.gz", &o, "entry larger than the cap");
		ingest_opts_default(&o);
		o.caps.max_total_bytes = 4 << 20;
		refused_o("total over the cap", "bomb.tar.gz", &o, "in total");
		ingest_opts_default(&o);
		o.caps.max_entries = 2;
		refused_o("too many entries", "ok.tar.gz", &o, "more than 2 entries");
	}
	{
		/* Lying sizes: a tar whose header promises more data than there is. */
		struct ent v[] = { { "img/big.jpg", 0, ovw, sizeof ovw, NULL, 0 } };
		size_t n;
		uint8_t *t;

		mk_archive("full.tar", "tar", v, 1);
		t = (uint8_t *)slurp(at("full.tar"), &n);
		put("short.tar", t, 512 * 3 + 10000);
		free(t);
		refused("tar header size larger than the data", "short.tar", "Truncated");
	}
	{
		struct zent z[] = {
			{ "reads.csv", "reads.csv", csv1, sizeof csv1 - 1, 0, 0 },
			{ "img/p1.jpg", "img/p1.jpg", jpg, sizeof jpg, 0, 0 },
			{ "img/p2.png", "img/p2.png", png, sizeof png, 0, 0 },
			{ "img/o1.jpg", "img/o1.jpg", ovw, sizeof ovw, 0, 0 },
		};

		zn = mk_zip(zb, z, 4, 0);
		put("hand.zip", zb, zn);
		r = run1(at("hand.zip"), &g, &e);
		if (!CHECK_MSG(r == 0 && g.reads == 3 && g.images == 4, "hand-made zip ingested"))
			printf("#   %s\n", e.msg);
		zn = mk_zip(zb, z, 3, 0);
		put("hand3.zip", zb, zn);
		refused("an image missing from the archive", "hand3.zip", "img/o1.jpg: not in the archive");
		z[1].cname = "img/other.jpg";
		zn = mk_zip(zb, z, 4, 0);
		put("cdname.zip", zb, zn);
		refused("zip central directory names another file", "cdname.zip",
		        "central directory disagrees with the local headers");
		z[1].cname = "img/p1.jpg";
		z[1].cd_size = 10;
		zn = mk_zip(zb, z, 4, 0);
		put("cdsize.zip", zb, zn);
		refused("zip central directory lies about a size", "cdsize.zip", "disagree");
		z[1].cd_size = 0;
		zn = mk_zip(zb, z, 4, 1);
		put("cdextra.zip", zb, zn);
		refused("zip central directory with overlapping entries", "cdextra.zip", "entries overlap");
		zn = mk_zip(zb, z, 4, 0);
		zb[zn] = 'x';
		put("trail.zip", zb, zn + 1);
		refused("bytes after the zip end record", "trail.zip", "no end record");
		z[1].mode = 0120777;
		z[1].data = "/etc/passwd";
		z[1].len = 11;
		zn = mk_zip(zb, z, 4, 0);
		put("zlink.zip", zb, zn);
		refused("symlink in zip", "zlink.zip", "symbolic link refused");
	}
	{
		/* Images that are not images. */
		struct ent v[] = {
			{ "reads.csv", 0, csv1, sizeof csv1 - 1, NULL, 0 },
			{ "img/p1.jpg", 0, "GIF89a not a jpeg at all", 24, NULL, 0 },
			{ "img/o1.jpg", 0, ovw, sizeof ovw, NULL, 0 },
			{ "img/p2.png", 0, png, sizeof png, NULL, 0 },
		};

		mk_archive("notimg.tar", "tar", v, 4);
		refused("image that is not an image (archive)", "notimg.tar",
		        "line 2, field plate_image: img/p1.jpg: not a JPEG or PNG image");
	}
	free(zb);
}

/* ---- plain files through the child ---- */

static void test_plain(void)
{
	struct got g;
	struct sbx_err e;
	struct ingest_opts o;
	char csv[1024];
	int r;

	mkdir(at("img"), 0755);
	put("img/p1.jpg", jpg, sizeof jpg);
	put("img/o1.jpg", ovw, sizeof ovw);
	put("img/p2.png", png, sizeof png);
	puts_file("reads.csv", csv1);
	r = run1(at("reads.csv"), &g, &e);
	if (!CHECK_MSG(r == 0 && g.reads == 3 && g.images == 4, "plain CSV with images next to it"))
		printf("#   %s\n", e.msg);
	CHECK_MSG(strcmp(g.order, "rrriiii") == 0 && strcmp(g.img_ids[0], "a1") == 0 &&
	          g.img_kinds[0] == INGEST_IMAGE_PLATE && strcmp(g.img_ids[1], "a1") == 0 &&
	          strcmp(g.img_ids[2], "a2") == 0 && strcmp(g.img_ids[3], "a3") == 0,
	          "plain: images in read order, plate before overview");
	puts_file("r.jsonl", "{\"vendor_read_id\":\"j1\",\"plate\":\"A1\",\"captured_at\":\"2026-01-02T03:04:05+01:00\",\"camera_id\":\"c\",\"overview_image\":\"img/o1.jpg\"}\n");
	r = run1(at("r.jsonl"), &g, &e);
	CHECK_MSG(r == 0 && g.reads == 1 && g.images == 1 && g.last.captured_at_ms == 1767319445000LL,
	          "plain JSON Lines with an image");

	/* Hostile plain inputs. */
	snprintf(csv, sizeof csv, "vendor_read_id,plate,captured_at,camera_id,plate_image\r\n"
	         "a1,ABC1,2026-01-02T03:04:05Z,c1,img/p1.jpg\r\na1,ABC2,2026-01-02T03:04:05Z,c1,\r\n");
	puts_file("dupid.csv", csv);
	refused("duplicate vendor read ids", "dupid.csv", "line 3, field vendor_read_id: duplicate id \"a1\" (first seen on line 2)");
	/* The id set keeps no lines: the first occurrence is found by reading
	 * again.  It must name the right line, past other reads, in the
	 * right file, and inside an archive. */
	puts_file("dupfar.csv", "vendor_read_id,plate,captured_at,camera_id\r\n"
	          "b1,ABC1,2026-01-02T03:04:05Z,c1\r\nb2,ABC1,2026-01-02T03:04:05Z,c1\r\n"
	          "b3,ABC1,2026-01-02T03:04:05Z,c1\r\nb4,ABC1,2026-01-02T03:04:05Z,c1\r\n"
	          "b2,ABC1,2026-01-02T03:04:05Z,c1\r\n");
	refused("duplicate id, far apart", "dupfar.csv",
	        "dupfar.csv line 6, field vendor_read_id: duplicate id \"b2\" (first seen on line 3)");
	puts_file("dup2.csv", "vendor_read_id,plate,captured_at,camera_id\r\n"
	          "x9,ABC1,2026-01-02T03:04:05Z,c1\r\nb3,ABC1,2026-01-02T03:04:05Z,c1\r\n");
	{
		const char *q[2];
		char want[600];

		puts_file("nodup.csv", "vendor_read_id,plate,captured_at,camera_id\r\n"
		          "b1,ABC1,2026-01-02T03:04:05Z,c1\r\nb2,ABC1,2026-01-02T03:04:05Z,c1\r\n"
		          "b3,ABC1,2026-01-02T03:04:05Z,c1\r\n");
		q[0] = at("nodup.csv");
		q[1] = at("dup2.csv");
		r = run_opts(q, 2, NULL, &g, &e);
		snprintf(want, sizeof want, "dup2.csv line 3, field vendor_read_id: duplicate id \"b3\" "
		         "(first seen in %s line 4)", at("nodup.csv"));
		if (!CHECK_MSG(r != 0 && g.reads == 0 && strstr(e.msg, want) != NULL,
		               "duplicate id across two files names the first file and line"))
			printf("#   r=%d msg: %s\n#   want: %s\n", r, e.msg, want);
	}
	{
		static const char a1[] = "vendor_read_id,plate,captured_at,camera_id\r\n"
		                         "z1,ABC1,2026-01-02T03:04:05Z,c1\r\nz2,ABC1,2026-01-02T03:04:05Z,c1\r\n";
		static const char a2[] = "vendor_read_id,plate,captured_at,camera_id\r\n"
		                         "z3,ABC1,2026-01-02T03:04:05Z,c1\r\nz2,ABC1,2026-01-02T03:04:05Z,c1\r\n";
		struct ent v[] = { { "one/a.csv", 0, a1, sizeof a1 - 1, NULL, 0 },
		                   { "two/b.csv", 0, a2, sizeof a2 - 1, NULL, 0 } };

		mk_archive("dup.tar", "tar", v, 2);
		refused("duplicate id across two reads files of an archive", "dup.tar",
		        "dup.tar!two/b.csv line 3, field vendor_read_id: duplicate id \"z2\" (first seen in ");
		refused("... naming the first file and line", "dup.tar", "dup.tar!one/a.csv line 3)");
	}
	puts_file("escape.csv", "vendor_read_id,plate,captured_at,camera_id,plate_image\r\na1,ABC1,2026-01-02T03:04:05Z,c1,../secret.jpg\r\n");
	refused("image path escaping the export", "escape.csv", "field plate_image");
	if (symlink("/etc/hostname", at("img/link.jpg")) == 0 || errno == EEXIST) {
		puts_file("link.csv", "vendor_read_id,plate,captured_at,camera_id,plate_image\r\na1,ABC1,2026-01-02T03:04:05Z,c1,img/link.jpg\r\n");
		refused("image through a symlink", "link.csv", "symbolic link");
	}
	put("img/fake.jpg", "just some text, no image here", 29);
	puts_file("fake.csv", "vendor_read_id,plate,captured_at,camera_id,plate_image\r\na1,ABC1,2026-01-02T03:04:05Z,c1,img/fake.jpg\r\n");
	refused("image that is not an image (plain)", "fake.csv", "img/fake.jpg: not a JPEG or PNG image");
	puts_file("missing.csv", "vendor_read_id,plate,captured_at,camera_id,plate_image\r\na1,ABC1,2026-01-02T03:04:05Z,c1,img/none.jpg\r\n");
	refused("missing image", "missing.csv", "img/none.jpg: not found");
	ingest_opts_default(&o);
	o.lim.max_overview_image = 1000;
	puts_file("capped.csv", "vendor_read_id,plate,captured_at,camera_id,overview_image\r\na1,ABC1,2026-01-02T03:04:05Z,c1,img/o1.jpg\r\n");
	refused_o("image over its size cap", "capped.csv", &o, "outside 8..1000 bytes");
	ingest_opts_default(&o);
	o.lim.max_reads = 2;
	refused_o("more reads than the batch cap", "reads.csv", &o, "more than 2 reads");
	puts_file("notes.txt", "hello");
	refused("unknown input type", "notes.txt", "not CSV");
	puts_file("empty.csv", "vendor_read_id,plate,captured_at,camera_id\r\n");
	refused("no reads", "empty.csv", "no reads");
	/* All inputs or nothing: the second file is bad, the first delivers nothing. */
	{
		const char *p[2] = { at("reads.csv"), at("fake.csv") };

		r = run_opts(p, 2, NULL, &g, &e);
		CHECK_MSG(r != 0 && g.reads == 0 && g.images == 0, "a bad second input: nothing from the first");
	}
	sbx_err_clear(&e);
	{
		const char *p[1] = { at("does-not-exist.csv") };

		CHECK(run_opts(p, 1, NULL, &g, &e) != 0 && strstr(e.msg, "cannot open"));
	}
}

/* ---- the protocol: the parent trusts nothing ---- */

static int feed(const uint8_t *p, size_t n, struct got *g, char *msg)
{
	struct ingest_sink s = { g, g_read, g_image };
	struct ingest_proto_dec *d = ingest_proto_dec_new(NULL, &s);
	struct sbx_err e;
	int r;

	memset(g, 0, sizeof *g);
	sbx_err_clear(&e);
	r = ingest_proto_dec_feed(d, p, n, &e);
	if (r == 0)
		r = ingest_proto_dec_end(d, NULL, &e);
	ingest_proto_dec_free(d);
	if (msg != NULL)
		strcpy(msg, e.msg);
	return r;
}

static void frame(struct ingest_proto_w *w, uint8_t type, const void *p, size_t n)
{
	uint8_t h[5] = { type, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };

	memcpy(w->buf + w->len, h, 5);
	memcpy(w->buf + w->len + 5, p, n);
	w->len += 5 + n;
}

static void proto_bad(struct ingest_proto_w *w, const char *want, const char *what)
{
	struct got g;
	char msg[600];
	int r = feed(w->buf, w->len, &g, msg);

	if (!CHECK_MSG(r != 0 && strstr(msg, want) != NULL, what))
		printf("#   msg: %s\n", msg);
}

static void test_proto(void)
{
	struct ingest_proto_w w;
	struct ingest_input in;
	struct read r;
	struct got g;
	struct ingest_summary s;
	char msg[600];
	int fd, dfd, rc;

	/* The child's side in process: a valid stream decodes, byte by byte too. */
	fd = open(at("reads.csv"), O_RDONLY);
	dfd = open(tmp, O_PATH | O_DIRECTORY);
	in.fd = fd;
	in.dirfd = dfd;
	in.label = "reads.csv";
	ingest_proto_w_init(&w, -1);
	rc = ingest_child_work(&in, 1, NULL, &w);
	CHECK(rc == 0 && feed(w.buf, w.len, &g, msg) == 0 && g.reads == 3 && g.images == 4);
	{
		struct ingest_sink sk = { &g, g_read, g_image };
		struct ingest_proto_dec *d = ingest_proto_dec_new(NULL, &sk);
		struct sbx_err e;
		int ok = 1;

		memset(&g, 0, sizeof g);
		sbx_err_clear(&e);
		for (size_t i = 0; ok && i < w.len; i++)
			ok = ingest_proto_dec_feed(d, w.buf + i, 1, &e) == 0;
		CHECK_MSG(ok && ingest_proto_dec_end(d, &s, &e) == 0 && s.reads == 3 && g.images == 4,
		          "protocol decodes one byte at a time");
		ingest_proto_dec_free(d);
	}
	for (size_t cut = 1; cut < w.len; cut += w.len / 7 + 1) {
		char desc[64];

		snprintf(desc, sizeof desc, "stream cut at %zu refused", cut);
		CHECK_MSG(feed(w.buf, cut, &g, msg) != 0, desc);
	}
	{
		uint8_t *copy = malloc(w.len + 5);

		memcpy(copy, w.buf, w.len);
		memcpy(copy + w.len, "Z\0\0\0\0", 5);
		CHECK_MSG(feed(copy, w.len + 5, &g, msg) != 0 && strstr(msg, "after the end"), "bytes after the end refused");
		free(copy);
	}
	ingest_proto_w_free(&w);
	close(fd);
	close(dfd);

	read_init(&r);
	strcpy(r.vendor_id, "x1");
	strcpy(r.plate, "ABC1");
	strcpy(r.camera_id, "c");
	r.captured_at_ms = 1767225600000LL;
	strcpy(r.plate_image, "p.jpg");

	ingest_proto_w_init(&w, -1);
	ingest_proto_put_read(&w, "s", 1, &r);
	proto_bad(&w, "out of order", "read before hello refused");
	ingest_proto_w_free(&w);

	ingest_proto_w_init(&w, -1);
	ingest_proto_put_hello(&w);
	memcpy(w.buf + w.len, "R\0\1\0\1", 5);   /* length 0x00010001 > the cap */
	w.len += 5;
	proto_bad(&w, "size cap", "frame over the size cap refused");
	ingest_proto_w_free(&w);

	ingest_proto_w_init(&w, -1);
	ingest_proto_put_hello(&w);
	strcpy(r.plate, "abc1");
	ingest_proto_put_read(&w, "s", 1, &r);
	proto_bad(&w, "rejected by the parent", "a read not in normal form refused by the parent");
	strcpy(r.plate, "ABC1");
	ingest_proto_w_free(&w);

	ingest_proto_w_init(&w, -1);
	ingest_proto_put_hello(&w);
	ingest_proto_put_read(&w, "s", 1, &r);
	ingest_proto_put_read(&w, "s", 2, &r);
	proto_bad(&w, "duplicate id", "duplicate ids refused by the parent");
	ingest_proto_w_free(&w);

	ingest_proto_w_init(&w, -1);
	ingest_proto_put_hello(&w);
	ingest_proto_put_read(&w, "s", 1, &r);
	ingest_proto_put_image(&w, "nobody", INGEST_IMAGE_PLATE, "p.jpg", jpg, sizeof jpg);
	proto_bad(&w, "unknown read", "image for an unknown read refused");
	ingest_proto_w_free(&w);

	ingest_proto_w_init(&w, -1);
	ingest_proto_put_hello(&w);
	ingest_proto_put_read(&w, "s", 1, &r);
	ingest_proto_put_image(&w, "x1", INGEST_IMAGE_OVERVIEW, "p.jpg", jpg, sizeof jpg);
	proto_bad(&w, "unexpected image", "undeclared image kind refused");
	ingest_proto_w_free(&w);

	ingest_proto_w_init(&w, -1);
	ingest_proto_put_hello(&w);
	ingest_proto_put_read(&w, "s", 1, &r);
	ingest_proto_put_image(&w, "x1", INGEST_IMAGE_PLATE, "q.jpg", jpg, sizeof jpg);
	proto_bad(&w, "unexpected image", "image under another name refused");
	ingest_proto_w_free(&w);

	ingest_proto_w_init(&w, -1);
	ingest_proto_put_hello(&w);
	ingest_proto_put_read(&w, "s", 1, &r);
	ingest_proto_put_image(&w, "x1", INGEST_IMAGE_PLATE, "p.jpg", (const uint8_t *)"GIF89a..", 8);
	proto_bad(&w, "not JPEG or PNG", "image without magic refused by the parent");
	ingest_proto_w_free(&w);

	ingest_proto_w_init(&w, -1);
	ingest_proto_put_hello(&w);
	ingest_proto_put_read(&w, "s", 1, &r);
	ingest_proto_put_image(&w, "x1", INGEST_IMAGE_PLATE, "p.jpg", jpg, sizeof jpg);
	ingest_proto_put_image(&w, "x1", INGEST_IMAGE_PLATE, "p.jpg", jpg, sizeof jpg);
	proto_bad(&w, "unexpected image", "the same image twice refused");
	ingest_proto_w_free(&w);

	ingest_proto_w_init(&w, -1);
	ingest_proto_put_hello(&w);
	ingest_proto_put_read(&w, "s", 1, &r);
	{
		uint8_t b[64];
		size_t n = 0;

		n += le(b + n, 0, 0);
		b[n++] = 0; b[n++] = 2; b[n++] = 'x'; b[n++] = '1';
		b[n++] = INGEST_IMAGE_PLATE;
		b[n++] = 0; b[n++] = 5; memcpy(b + n, "p.jpg", 5); n += 5;
		b[n++] = 0; b[n++] = 0; b[n++] = 0; b[n++] = 20;
		frame(&w, 'B', b, n);
		frame(&w, 'D', jpg, 30);
	}
	proto_bad(&w, "overruns", "image data beyond its size refused");
	ingest_proto_w_free(&w);

	ingest_proto_w_init(&w, -1);
	ingest_proto_put_hello(&w);
	ingest_proto_put_read(&w, "s", 1, &r);
	memset(&s, 0, sizeof s);
	s.reads = 1;
	ingest_proto_put_done(&w, &s);
	proto_bad(&w, "did not all arrive", "a declared image that never came refused");
	ingest_proto_w_free(&w);

	ingest_proto_w_init(&w, -1);
	ingest_proto_put_hello(&w);
	r.plate_image[0] = '\0';
	ingest_proto_put_read(&w, "s", 1, &r);
	s.reads = 2;
	ingest_proto_put_done(&w, &s);
	proto_bad(&w, "counts disagree", "end counts that lie refused");
	ingest_proto_w_free(&w);

	ingest_proto_w_init(&w, -1);
	ingest_proto_put_hello(&w);
	ingest_proto_put_error(&w, SBX_EFORMAT, "x.csv line 3, field plate: bad\nsecond line");
	{
		int rr = feed(w.buf, w.len, &g, msg);

		CHECK_MSG(rr == SBX_EFORMAT && strcmp(msg, "x.csv line 3, field plate: bad?second line") == 0,
		          "the child's error arrives as one line with its code");
	}
	ingest_proto_w_free(&w);
}

int main(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmp, sizeof tmp, "%s/sbx-ingest.XXXXXX", base != NULL ? base : "/tmp");
	if (mkdtemp(tmp) == NULL) {
		printf("# mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	make_images();
	test_json();
	test_reads();
	test_csv();
	test_jsonl();
	test_mapping();
	test_plain();
	test_archives();
	test_inproc();
	test_proto();
	{
		char cmd[600];

		snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
		if (system(cmd) != 0)
			printf("# could not remove %s\n", tmp);
	}
	return check_done();
}

/* libFuzzer harness for JSON Lines reads and the JSON parser beneath them
 * (appliance/jsonl.c, export/json.c).  Invariants: no crash; a document
 * the parser accepts, written out again with the JSON writer, parses again
 * and writes out to the same bytes; every read accepted through any of the
 * shipped profiles' key paths passes read_check(), and its canonical JSON
 * line read back through the generic profile gives the same read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/jsonl.h"
#include "appliance/mapping.h"
#include "appliance/reads.h"
#include "export/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond)
{
	if (!cond)
		abort();
}

static const char *const profiles[] = {
	"sealbox-mapping 1\nvendor_read_id = Id\nplate = PlateRead\n"
	"region = PlateAnalytics[Key=State Name].Value\ncaptured_at = Timestamp\n"
	"camera_id = SourceUrl\ncamera_name = LprCameraName\nlatitude = Latitude\n"
	"longitude = Longitude\nconfidence = PlateAnalytics[Key=Confidence Score].Value\n"
	"naive_time = utc\nregion_prefix = US\nabsent = -\n",
	"sealbox-mapping 1\nvendor_read_id = best_uuid\nplate = best_plate_number\n"
	"region = best_region\ncaptured_at = epoch_start\ncamera_id = camera_id\n"
	"latitude = gps_latitude\nlongitude = gps_longitude\nheading = travel_direction\n"
	"confidence = best_confidence\nvehicle_make = vehicle.make[0].name\n",
};

static struct mapping generic;

static void write_val(struct json_w *w, const struct json_doc *d, const struct json_val *v)
{
	const struct json_val *c;
	const char *t;
	size_t n;

	switch (json_type_of(v)) {
	case JSON_NULL:   json_w_null(w); break;
	case JSON_TRUE:   json_w_bool(w, 1); break;
	case JSON_FALSE:  json_w_bool(w, 0); break;
	case JSON_NUMBER: json_w_number(w, json_num(d, v, NULL)); break;
	case JSON_STRING:
		t = json_str(d, v, &n);         /* n is set by this call: not in the same expression */
		json_w_strn(w, t, n);
		break;
	case JSON_ARRAY:
		json_w_arr(w);
		for (c = json_first(d, v); c != NULL; c = json_next(d, c))
			write_val(w, d, c);
		json_w_arr_end(w);
		break;
	case JSON_OBJECT:
		json_w_obj(w);
		for (c = json_first(d, v); c != NULL; c = json_next(d, c)) {
			json_w_key(w, json_key(d, c, &n));
			write_val(w, d, c);
		}
		json_w_obj_end(w);
		break;
	}
}

static void roundtrip(const uint8_t *data, size_t size)
{
	struct json_doc *d = json_doc_new(), *d2 = json_doc_new();
	struct json_w w, w2;
	struct sbx_err e;

	must(d != NULL && d2 != NULL);
	sbx_err_clear(&e);
	if (json_parse(d, (const char *)data, size, NULL, &e) == 0) {
		json_w_init(&w);
		json_w_init(&w2);
		write_val(&w, d, json_root(d));
		must(json_w_error(&w) == 0);
		must(json_parse(d2, w.p, w.len, NULL, &e) == 0);
		write_val(&w2, d2, json_root(d2));
		must(json_w_error(&w2) == 0 && w.len == w2.len && memcmp(w.p, w2.p, w.len) == 0);
		json_w_free(&w);
		json_w_free(&w2);
	} else {
		must(e.code != 0 && json_root(d) == NULL);
	}
	json_doc_free(d);
	json_doc_free(d2);
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
	struct read a;
	struct jsonl_reads *jr;
	struct sbx_err e2;

	must(read_check(r, &f, &why) == 0);
	must(reads_to_jsonl(r, buf, sizeof buf, &n) == 0);
	sbx_err_clear(&e2);
	memset(&a, 0, sizeof a);
	jr = jsonl_reads_new("again", &generic, 0, back, &a);
	must(jr != NULL && jsonl_reads_feed(jr, buf, n, &e2) == 0 && jsonl_reads_end(jr, &e2) == 0);
	must(jsonl_reads_count(jr) == 1);
	must(strcmp(a.vendor_id, r->vendor_id) == 0 && strcmp(a.plate, r->plate) == 0 &&
	     strcmp(a.region, r->region) == 0 && a.captured_at_ms == r->captured_at_ms &&
	     strcmp(a.camera_id, r->camera_id) == 0 && strcmp(a.camera_name, r->camera_name) == 0 &&
	     a.has_location == r->has_location && a.lat_e7 == r->lat_e7 && a.lon_e7 == r->lon_e7 &&
	     a.heading == r->heading && a.confidence == r->confidence &&
	     strcmp(a.vehicle_make, r->vehicle_make) == 0 && strcmp(a.vehicle_color, r->vehicle_color) == 0 &&
	     strcmp(a.vehicle_type, r->vehicle_type) == 0 && strcmp(a.plate_image, r->plate_image) == 0 &&
	     strcmp(a.overview_image, r->overview_image) == 0);
	jsonl_reads_free(jr);
	return 0;
}

static void reads(const struct mapping *m, const uint8_t *data, size_t size)
{
	struct jsonl_reads *jr = jsonl_reads_new("fuzz.jsonl", m, 4096, on_read, NULL);
	struct sbx_err e;
	int r;

	must(jr != NULL);
	sbx_err_clear(&e);
	r = jsonl_reads_feed(jr, data, size, &e);
	if (r == 0)
		r = jsonl_reads_end(jr, &e);
	must(r == 0 || (e.code != 0 && strchr(e.msg, '\n') == NULL));
	jsonl_reads_free(jr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mapping m;
	struct sbx_err e;

	mapping_generic(&generic);
	roundtrip(data, size);
	reads(&generic, data, size);
	for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++) {
		sbx_err_clear(&e);
		must(mapping_parse(profiles[i], strlen(profiles[i]), "p", &m, &e) == 0);
		reads(&m, data, size);
	}
	return 0;
}

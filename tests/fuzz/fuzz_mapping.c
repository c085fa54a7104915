/* libFuzzer harness for mapping profiles (appliance/mapping.c).  Any bytes:
 * a clean one-line failure with the mapping zeroed, or a profile that maps
 * the required fields, keeps every string terminated, and then reads a
 * small CSV and a small JSON Lines sample without crashing (whatever the
 * key paths say). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/csv.h"
#include "appliance/jsonl.h"
#include "appliance/mapping.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond)
{
	if (!cond)
		abort();
}

static int on_read(void *ctx, const struct read *r, uint64_t line, struct sbx_err *e)
{
	enum read_field f;
	const char *why;

	must(read_check(r, &f, &why) == 0);
	return 0;
}

static const char csv_sample[] =
	"Id,PlateRead,Timestamp,SourceUrl,vendor_read_id,plate,captured_at,camera_id,a.b,D,T\r\n"
	"x1,abc1,2016-08-29T08:42:45.797,S1,v1,P1,2026-01-02T03:04:05Z,c1,q,2026:01:02,03:04:05\r\n";
static const char jsonl_sample[] =
	"{\"Id\":\"x1\",\"PlateRead\":\"abc1\",\"Timestamp\":\"2016-08-29T08:42:45.797\",\"SourceUrl\":\"S\","
	"\"a\":{\"b\":[{\"Key\":\"K\",\"Value\":\"CO\"},1]},\"vendor_read_id\":\"v\",\"plate\":\"P\","
	"\"captured_at\":1,\"camera_id\":\"c\"}\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mapping m;
	struct sbx_err e;
	struct csv_reads *cr;
	struct jsonl_reads *jr;

	sbx_err_clear(&e);
	if (mapping_parse((const char *)data, size, "fuzz.conf", &m, &e) != 0) {
		static const struct mapping zero;

		must(e.code != 0 && e.msg[0] != '\0' && strchr(e.msg, '\n') == NULL);
		must(memcmp(&m, &zero, sizeof m) == 0);
		return 0;
	}
	must(memchr(m.name, '\0', sizeof m.name) != NULL);
	for (int f = 0; f < MAPPING_F_COUNT; f++) {
		must(memchr(m.src[f].text, '\0', sizeof m.src[f].text) != NULL);
		must(strlen(m.src[f].text) == m.src[f].len);
		must(m.src[f].nseg <= MAPPING_MAX_SEGS);
	}
	must(m.src[READ_F_VENDOR_ID].len > 0 && m.src[READ_F_PLATE].len > 0 && m.src[READ_F_CAMERA_ID].len > 0);
	must((m.src[READ_F_CAPTURED_AT].len > 0) != (m.src[MAPPING_F_DATE].len > 0 && m.src[MAPPING_F_TIME].len > 0));
	cr = csv_reads_new("s.csv", &m, on_read, NULL);
	must(cr != NULL);
	sbx_err_clear(&e);
	if (csv_reads_feed(cr, csv_sample, sizeof csv_sample - 1, &e) == 0)
		csv_reads_end(cr, &e);
	csv_reads_free(cr);
	jr = jsonl_reads_new("s.jsonl", &m, 0, on_read, NULL);
	must(jr != NULL);
	sbx_err_clear(&e);
	if (jsonl_reads_feed(jr, jsonl_sample, sizeof jsonl_sample - 1, &e) == 0)
		jsonl_reads_end(jr, &e);
	jsonl_reads_free(jr);
	return 0;
}

/* Mapping profiles: which vendor column (CSV) or key path (JSON Lines)
 * feeds which schema field, plus how a few values are to be read.  The
 * format is a small text file, documented in docs/READS.md:
 *
 *   sealbox-mapping 1
 *   name = openalpr-rekor
 *   vendor_read_id = best_uuid
 *   plate = best_plate_number
 *   vehicle_make = vehicle.make[0].name
 *   region = PlateAnalytics[Key=State Name].Value
 *   epoch_unit = ms
 *
 * The generic profile (every schema field from a column or key of the same
 * name) is built in. */
#ifndef SBX_MAPPING_H
#define SBX_MAPPING_H

#include <stddef.h>
#include <stdint.h>

#include "appliance/reads.h"
#include "crypto/err.h"

#define MAPPING_MAX_BYTES   65536
#define MAPPING_MAX_LINE    512
#define MAPPING_MAX_SOURCE  128     /* bytes of a column name or key path */
#define MAPPING_MAX_SEGS    8       /* steps of a key path */
#define MAPPING_MAX_ABSENT  4
#define MAPPING_ABSENT_LEN  16

/* Pseudo fields after the schema's: a UTC date and a UTC time of day from
 * two sources, combined into captured_at (Genetec's UTCDate/UTCTime). */
enum {
	MAPPING_F_DATE = READ_F_COUNT,
	MAPPING_F_TIME,
	MAPPING_F_COUNT
};

/* One step of a key path: a key, then optionally [N] or [Key=Value]
 * (the first array element that is an object whose member Key is the
 * string Value).  Offsets are into mapping_src.text. */
struct mapping_seg {
	uint8_t key_off, key_len;
	uint8_t sel;                    /* 0 none, 1 index, 2 match */
	int32_t index;
	uint8_t mk_off, mk_len, mv_off, mv_len;
};

struct mapping_src {
	char text[MAPPING_MAX_SOURCE + 1];      /* "" when the field is not mapped */
	size_t len;
	uint8_t nseg;                           /* 0: not usable as a key path */
	struct mapping_seg seg[MAPPING_MAX_SEGS];
};

struct mapping {
	char name[65];
	struct read_opts ropts;
	struct mapping_src src[MAPPING_F_COUNT];
	size_t n_absent;
	char absent[MAPPING_MAX_ABSENT][MAPPING_ABSENT_LEN + 1];   /* values meaning "none" */
};

/* Source values of one record, by mapping field (NULL: not present). */
struct mapping_vals {
	const char *v[MAPPING_F_COUNT];
	size_t n[MAPPING_F_COUNT];
};

void mapping_generic(struct mapping *m);
/* Parses a profile; label names it in errors ("FILE line N: ..."). */
int mapping_parse(const char *text, size_t len, const char *label, struct mapping *m,
                  struct sbx_err *e);
/* Reads and parses a profile file (at most MAPPING_MAX_BYTES). */
int mapping_load(const char *path, struct mapping *m, struct sbx_err *e);
/* Schema field name, or the pseudo field's ("captured_at_date"). */
const char *mapping_field_name(int f);
/* Builds and validates a read from one record's values.  On failure *field
 * is the failing (schema or pseudo) field and *why the reason. */
int mapping_read(const struct mapping *m, const struct mapping_vals *vals, struct read *r,
                 int *field, const char **why);

#endif

/* The normalized LPR read (docs/READS.md): field validation, normalization,
 * and the canonical serializations (reads.jsonl, reads.csv) that the bundle
 * writer stores.  Same read in, same bytes out.
 *
 * A read is a fixed-size struct: no allocation per read, and every string
 * is NUL-terminated, bounded, and already normalized (trimmed, upper-cased
 * where the schema says so).  Absent optional text is "". */
#ifndef SBX_READS_H
#define SBX_READS_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/err.h"

#define READ_ID_MAX        128  /* vendor_read_id, camera_id: bytes */
#define READ_PLATE_MAX     16
#define READ_REGION_MAX    6    /* "US-CO" .. "XX-YYY" */
#define READ_NAME_MAX      128  /* camera_name */
#define READ_VEHICLE_MAX   64   /* vehicle_make / color / type */
#define READ_PATH_MAX      255  /* plate_image / overview_image */
#define READ_LINE_MAX      4096 /* bound of one canonical JSON or CSV line */

/* Earliest and latest capture time accepted (1970-01-01 .. 9999-12-31). */
#define READ_TIME_MAX_MS   INT64_C(253402300799999)

enum read_field {
	READ_F_VENDOR_ID = 0,
	READ_F_PLATE,
	READ_F_REGION,
	READ_F_CAPTURED_AT,
	READ_F_CAMERA_ID,
	READ_F_CAMERA_NAME,
	READ_F_LATITUDE,
	READ_F_LONGITUDE,
	READ_F_HEADING,
	READ_F_CONFIDENCE,
	READ_F_MAKE,
	READ_F_COLOR,
	READ_F_TYPE,
	READ_F_PLATE_IMAGE,
	READ_F_OVERVIEW_IMAGE,
	READ_F_COUNT
};

struct read {
	char vendor_id[READ_ID_MAX + 1];
	char plate[READ_PLATE_MAX + 1];
	char region[READ_REGION_MAX + 1];
	int64_t captured_at_ms;                 /* UTC, ms since the epoch */
	char camera_id[READ_ID_MAX + 1];
	char camera_name[READ_NAME_MAX + 1];
	int has_location;                       /* latitude and longitude, together */
	int32_t lat_e7, lon_e7;                 /* degrees * 10^7 */
	int heading;                            /* 0..359 degrees, -1 absent */
	int confidence;                         /* hundredths of a percent 0..10000, -1 absent */
	char vehicle_make[READ_VEHICLE_MAX + 1];
	char vehicle_color[READ_VEHICLE_MAX + 1];
	char vehicle_type[READ_VEHICLE_MAX + 1];
	char plate_image[READ_PATH_MAX + 1];    /* relative path in the export, "" absent */
	char overview_image[READ_PATH_MAX + 1];
	uint32_t present;                       /* bit (1 << field) once set */
};

/* How source values are read (set by a mapping profile). */
struct read_opts {
	int epoch_seconds;      /* all-digit captured_at is seconds, not ms */
	int naive_utc;          /* RFC 3339 time without Z/offset is taken as UTC */
	int confidence_fraction;/* confidence given as 0..1, not 0..100 */
	char region_prefix[3];  /* "US": a bare "CO" becomes "US-CO"; "" none */
};

/* Called by the CSV and JSON Lines readers for each read; line is the
 * 1-based line where the read starts in its file. */
typedef int (*reads_fn)(void *ctx, const struct read *r, uint64_t line, struct sbx_err *e);

void read_init(struct read *r);
const char *read_field_name(enum read_field f);
/* Field number for a schema name, or -1. */
int read_field_lookup(const char *name, size_t n);

/* Sets field f from the source text v[0..n) (not NUL-terminated).  An empty
 * value (after trimming blanks) leaves the field absent.  On a bad value
 * returns SBX_EFORMAT and *why says what is wrong (a static string). */
int read_set(struct read *r, enum read_field f, const char *v, size_t n,
             const struct read_opts *o, const char **why);
/* After all fields were set: required fields present, latitude and
 * longitude together.  On failure *field names the field. */
int read_finish(const struct read *r, enum read_field *field, const char **why);
/* Full re-validation of a read that came from elsewhere (the ingest child):
 * every field normalized, in range, terminated; required ones present. */
int read_check(const struct read *r, enum read_field *field, const char **why);

/* RFC 3339 UTC with milliseconds, "2026-01-02T03:04:05.678Z"; out[25]. */
void read_format_time(int64_t ms, char out[static 25]);
/* Parses RFC 3339 (Z or offset; naive_utc allows none) into ms. */
int read_parse_time(const char *s, size_t n, int naive_utc, int64_t *ms);

/* Canonical serializations: field order as in enum read_field, absent
 * values null (JSON) or empty (CSV), numbers in shortest decimal form.
 * Each writes one line with its terminator ("\n" for JSON Lines, "\r\n" for
 * CSV per RFC 4180) into out[0..cap) and NUL-terminates it. */
int reads_to_jsonl(const struct read *r, char *out, size_t cap, size_t *len);
const char *reads_csv_header(void);     /* with "\r\n" */
int reads_to_csv(const struct read *r, char *out, size_t cap, size_t *len);

/* Image kind by magic bytes: 1 JPEG (FF D8 FF), 2 PNG, 0 neither. */
enum { READS_IMG_NONE = 0, READS_IMG_JPEG = 1, READS_IMG_PNG = 2 };
int reads_image_magic(const uint8_t *p, size_t n);

/* A relative path inside an export: UTF-8 without controls or backslash,
 * not absolute, no empty, "." or ".." component; a leading "./" is dropped.
 * Writes the normalized path to out[0..cap). */
int reads_path_norm(const char *in, size_t n, char *out, size_t cap, const char **why);

/* A hash set of byte strings with a 64-bit value each (vendor ids, entry
 * names).  Keyed SipHash with a random key, so crafted inputs cannot make
 * it quadratic.  Keys are kept whole (membership is exact); keys of more
 * than 65536 bytes are refused (SBX_EINVAL).  Memory is about 16-24 bytes
 * per key plus the key rounded up to 8 bytes (8 less without values), and
 * the records never move while the set grows (only the slot table does). */
struct reads_idset;
struct reads_idset *reads_idset_new(void);
void reads_idset_free(struct reads_idset *s);
/* 0 if added, SBX_EEXIST if the key was there, SBX_ENOMEM, SBX_EINVAL. */
int reads_idset_add(struct reads_idset *s, const void *k, size_t n, uint64_t val);
/* Slot of the key's value (valid until the set is freed), or NULL. */
uint64_t *reads_idset_find(const struct reads_idset *s, const void *k, size_t n);
size_t reads_idset_count(const struct reads_idset *s);
/* A set of keys alone, for membership: about 8-16 bytes per key plus the
 * key's length and a byte.  reads_idset_add() ignores val, and
 * reads_idset_find() always returns NULL: ask reads_idset_has(). */
struct reads_idset *reads_idset_new_keys(void);
/* 1 if the key is in the set (either kind), else 0. */
int reads_idset_has(const struct reads_idset *s, const void *k, size_t n);

#endif

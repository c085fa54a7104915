/* RFC 4180 CSV, streaming: feed bytes in chunks of any size, get whole
 * records.  Strict: refuses a NUL byte, a quote inside an unquoted field,
 * text after a closing quote, an unterminated quoted field, a bare CR, a
 * file that mixes CRLF and LF record ends, blank lines, invalid UTF-8, and
 * fields, records or field counts over the limits.  A UTF-8 byte order mark
 * at the start is skipped.  Errors name the label and the line.
 *
 * csv_reads_* sits on top: the first record is the header, mapped to the
 * schema through a mapping profile; every other record becomes one
 * validated struct read. */
#ifndef SBX_CSV_H
#define SBX_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "appliance/mapping.h"
#include "appliance/reads.h"
#include "crypto/err.h"

struct csv_limits {
	size_t max_field;       /* bytes of one field: 4096 */
	size_t max_fields;      /* fields of one record: 256 */
	size_t max_record;      /* bytes of one record: 65536 */
};

/* One record: n fields, f[i] NUL-terminated (fields never hold NUL) with
 * length len[i]; valid during the call only.  line: where it starts. */
typedef int (*csv_record_fn)(void *ctx, uint64_t line, const char *const *f,
                             const size_t *len, size_t n, struct sbx_err *e);

struct csv;

void csv_limits_default(struct csv_limits *l);
/* lim NULL: defaults.  label (copied) names the input in errors. */
struct csv *csv_new(const char *label, const struct csv_limits *lim, csv_record_fn fn, void *ctx);
int csv_feed(struct csv *c, const void *buf, size_t n, struct sbx_err *e);
/* End of input: completes a last record without a line end. */
int csv_end(struct csv *c, struct sbx_err *e);
void csv_free(struct csv *c);

struct csv_reads;

struct csv_reads *csv_reads_new(const char *label, const struct mapping *m,
                                reads_fn fn, void *ctx);
int csv_reads_feed(struct csv_reads *cr, const void *buf, size_t n, struct sbx_err *e);
int csv_reads_end(struct csv_reads *cr, struct sbx_err *e);
uint64_t csv_reads_count(const struct csv_reads *cr);
void csv_reads_free(struct csv_reads *cr);

#endif

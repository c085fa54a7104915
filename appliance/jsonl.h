/* Reads from JSON Lines: one JSON object per line (LF or CRLF), each
 * parsed strictly by export/json.h, fields picked by the mapping profile's
 * key paths.  A string or number is accepted where the schema wants a
 * number; a number where it wants an identifier (written as an integer);
 * only a string where it wants text.  null or a missing key is "absent";
 * a boolean, array or object where a value is wanted is refused.  Blank
 * lines, lines over the limit and anything but an object per line are
 * refused.  Errors name the label, the line and the field. */
#ifndef SBX_JSONL_H
#define SBX_JSONL_H

#include <stddef.h>
#include <stdint.h>

#include "appliance/mapping.h"
#include "appliance/reads.h"
#include "crypto/err.h"

#define JSONL_MAX_LINE_DEFAULT  ((size_t)1 << 20)

struct jsonl_reads;

/* max_line 0: JSONL_MAX_LINE_DEFAULT. */
struct jsonl_reads *jsonl_reads_new(const char *label, const struct mapping *m, size_t max_line,
                                    reads_fn fn, void *ctx);
int jsonl_reads_feed(struct jsonl_reads *jr, const void *buf, size_t n, struct sbx_err *e);
int jsonl_reads_end(struct jsonl_reads *jr, struct sbx_err *e);
uint64_t jsonl_reads_count(const struct jsonl_reads *jr);
void jsonl_reads_free(struct jsonl_reads *jr);

#endif

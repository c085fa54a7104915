/* sealbox ingest: one batch of vendor exports becomes exactly one sealed
 * bundle and one custody record, or nothing changes. */
#ifndef SBX_INGEST_H
#define SBX_INGEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "appliance/box.h"
#include "appliance/ingest_child.h"
#include "export/bundle.h"

struct ingest_result {
	char bundle_id[65];
	char path[4200];
	struct bundle_manifest m;
	uint64_t older_than_retention;  /* reads kept only because of the hold */
};

/* progress_to: where to show progress on a terminal (NULL: nowhere). */
int ingest_batch(struct box *b, const char *case_id, const char *const *paths, size_t n,
                 const char *operator_id, const char *source, const struct ingest_opts *o,
                 FILE *progress_to, struct ingest_result *res, struct sbx_err *e);

#endif

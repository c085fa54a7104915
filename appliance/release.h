/* Releasing a case's evidence to a recipient, in the order of a hardware
 * wallet's confirmation: check everything, show exactly what will leave,
 * wait for a fresh button press, then act.  docs/OPERATIONS.md. */
#ifndef SBX_RELEASE_FLOW_H
#define SBX_RELEASE_FLOW_H

#include <stdint.h>
#include <stdio.h>

#include "appliance/box.h"
#include "hw/hw.h"

struct release_request {
	const char *case_id;
	const char *recipient;
	const char *purpose;
	const char *authority;
	const char *operator_id;
	const char *out_dir;
	unsigned timeout_ms;
};

struct release_outcome {
	unsigned bundles;
	uint64_t reads;
	char confirmation[17];
	char cert_sha256[65];
	uint64_t counter;
};

/* hw may be NULL only for refusals found before the button is needed (the
 * caller opens the GPIO after the checks).  `show` receives the summary the
 * technician must read before pressing. */
int release_run(struct box *b, struct hw *hw, const struct release_request *rq, FILE *show,
                struct release_outcome *out, struct sbx_err *e);

#endif

#include "export/logrec.h"

#include <string.h>

#include "crypto/err.h"
#include "crypto/merkle.h"
#include "export/wire.h"

/* Adding an event is a format change: document it in LOG-FORMAT.md. */
const char *const logrec_events[] = {
	"provision", "policy.set", "hold.open", "hold.renew", "hold.close",
	"ingest", "purge", "view", "release.request", "release.confirm",
	"release.deny", "release.timeout", "recipient.add", "recipient.remove",
	"trust.add", "trust.crl", "log.export", "log.checkpoint",
	"integrity.alarm", "integrity.clear", NULL
};

const char *const logrec_outcomes[] = {
	"ok", "denied", "failed", "timeout", NULL
};

static int in_list(const char *const *l, const char *s)
{
	for (size_t i = 0; l[i] != NULL; i++)
		if (strcmp(l[i], s) == 0)
			return 1;
	return 0;
}

int logrec_event_known(const char *ev)
{
	return in_list(logrec_events, ev);
}

int logrec_encode(const struct logrec *r, uint8_t **out, size_t *outlen)
{
	struct wire_w w;

	if (!in_list(logrec_events, r->event) || !in_list(logrec_outcomes, r->outcome))
		return SBX_EFORMAT;
	if (strlen(r->operator_id) > LOGREC_MAX_SHORT || strlen(r->case_id) > LOGREC_MAX_SHORT ||
	    strlen(r->bundle_id) > LOGREC_MAX_SHORT || strlen(r->reason) > LOGREC_MAX_REASON ||
	    strlen(r->detail) > LOGREC_MAX_DETAIL)
		return SBX_EFORMAT;
	wire_w_init(&w);
	wire_put_raw(&w, "SBXR", 4);
	wire_put_u8(&w, LOGREC_VERSION);
	wire_put_u64(&w, r->seq);
	wire_put_u64(&w, r->time_ms);
	wire_put_u64(&w, r->tpm_clock_ms);
	wire_put_u32(&w, r->tpm_reset_count);
	wire_put_u32(&w, r->tpm_restart_count);
	wire_put_raw(&w, r->appliance_id, 32);
	wire_put_raw(&w, r->policy_hash, 32);
	wire_put_str16(&w, r->event);
	wire_put_str16(&w, r->outcome);
	wire_put_str16(&w, r->operator_id);
	wire_put_str16(&w, r->case_id);
	wire_put_str16(&w, r->bundle_id);
	wire_put_str16(&w, r->reason);
	wire_put_str16(&w, r->detail);
	return wire_w_take(&w, out, outlen);
}

int logrec_decode(const uint8_t *b, size_t len, struct logrec *r)
{
	struct wire_r rd;
	uint8_t magic[4];

	memset(r, 0, sizeof *r);
	if (len > LOGREC_MAX_ENCODED)
		return SBX_EFORMAT;
	wire_r_init(&rd, b, len);
	wire_get_fixed(&rd, magic, 4);
	if (rd.err != 0 || memcmp(magic, "SBXR", 4) != 0)
		return SBX_EFORMAT;
	if (wire_get_u8(&rd) != LOGREC_VERSION)
		return SBX_EFORMAT;
	r->seq = wire_get_u64(&rd);
	r->time_ms = wire_get_u64(&rd);
	r->tpm_clock_ms = wire_get_u64(&rd);
	r->tpm_reset_count = wire_get_u32(&rd);
	r->tpm_restart_count = wire_get_u32(&rd);
	wire_get_fixed(&rd, r->appliance_id, 32);
	wire_get_fixed(&rd, r->policy_hash, 32);
	wire_get_str16(&rd, r->event, LOGREC_MAX_SHORT);
	wire_get_str16(&rd, r->outcome, LOGREC_MAX_SHORT);
	wire_get_str16(&rd, r->operator_id, LOGREC_MAX_SHORT);
	wire_get_str16(&rd, r->case_id, LOGREC_MAX_SHORT);
	wire_get_str16(&rd, r->bundle_id, LOGREC_MAX_SHORT);
	wire_get_str16(&rd, r->reason, LOGREC_MAX_REASON);
	wire_get_str16(&rd, r->detail, LOGREC_MAX_DETAIL);
	if (wire_r_end(&rd) != 0)
		return SBX_EFORMAT;
	if (!in_list(logrec_events, r->event) || !in_list(logrec_outcomes, r->outcome))
		return SBX_EFORMAT;
	return 0;
}

int logrec_leaf_hash(const uint8_t *b, size_t len, uint8_t out[static 32])
{
	return merkle_leaf_hash(b, len, out);
}

/* The custody file (docs/FORMAT.md section 6): a bundle's custody records,
 * each with its inclusion proof, under one signed tree head.
 *
 *   "SBXC" | u8 1 | bundle_id[32] | u32 n (1..64)
 *   n x ( bytes32 record | u64 leaf_index | u8 k | k x hash[32] )
 *   head[93] | bytes32 signature
 *
 * Decoding is exact and structural (every record and the head decode, leaf
 * indices strictly increase); bundle_custody_verify does the cryptography
 * and the cross-checks against the bundle. */
#include "export/bundle.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "crypto/hash.h"
#include "crypto/merkle.h"
#include "crypto/sig.h"
#include "export/logrec.h"
#include "export/wire.h"

#define CUSTODY_MAGIC   "SBXC"
#define CUSTODY_VERSION 1

int bundle_custody_encode(const struct bundle_custody *c, uint8_t **out, size_t *len)
{
	struct wire_w w;

	*out = NULL;
	*len = 0;
	if (c->n == 0 || c->n > BUNDLE_MAX_CUSTODY || c->siglen == 0 || c->siglen > sizeof c->sig)
		return SBX_EINVAL;
	for (size_t i = 0; i < c->n; i++) {
		const struct bundle_custody_record *r = &c->rec[i];

		if (r->record == NULL || r->record_len == 0 || r->record_len > LOGREC_MAX_ENCODED ||
		    r->n_hashes > MERKLE_MAX_PROOF ||
		    (i > 0 && r->leaf_index <= c->rec[i - 1].leaf_index))
			return SBX_EINVAL;
	}
	wire_w_init(&w);
	wire_put_raw(&w, CUSTODY_MAGIC, 4);
	wire_put_u8(&w, CUSTODY_VERSION);
	wire_put_raw(&w, c->bundle_id, 32);
	wire_put_u32(&w, (uint32_t)c->n);
	for (size_t i = 0; i < c->n; i++) {
		const struct bundle_custody_record *r = &c->rec[i];

		wire_put_bytes32(&w, r->record, r->record_len);
		wire_put_u64(&w, r->leaf_index);
		wire_put_u8(&w, (uint8_t)r->n_hashes);
		for (size_t k = 0; k < r->n_hashes; k++)
			wire_put_raw(&w, r->proof[k], 32);
	}
	wire_put_raw(&w, c->head, STH_ENCODED_LEN);
	wire_put_bytes32(&w, c->sig, c->siglen);
	return wire_w_take(&w, out, len);
}

void bundle_custody_free(struct bundle_custody *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < BUNDLE_MAX_CUSTODY; i++) {
		free(c->rec[i].record);
		c->rec[i].record = NULL;
		c->rec[i].record_len = 0;
	}
	c->n = 0;
}

int bundle_custody_decode(const uint8_t *b, size_t len, struct bundle_custody *c,
                          struct sbx_err *e)
{
	struct logrec *lr = NULL;
	struct wire_r r;
	struct sth head;
	const uint8_t *p;
	uint32_t n;
	size_t plen;
	int rc = SBX_EFORMAT;

	memset(c, 0, sizeof *c);
	wire_r_init(&r, b, len);
	p = wire_get_raw(&r, 4);
	if (p == NULL || memcmp(p, CUSTODY_MAGIC, 4) != 0) {
		sbx_fail(e, rc, "custody: magic is not SBXC");
		goto out;
	}
	if (wire_get_u8(&r) != CUSTODY_VERSION || r.err != 0) {
		sbx_fail(e, rc, "custody: unsupported version");
		goto out;
	}
	wire_get_fixed(&r, c->bundle_id, 32);
	n = wire_get_u32(&r);
	if (r.err != 0 || n == 0 || n > BUNDLE_MAX_CUSTODY) {
		sbx_fail(e, rc, "custody: %" PRIu32 " records (1..%d allowed)", n, BUNDLE_MAX_CUSTODY);
		goto out;
	}
	lr = malloc(sizeof *lr);
	if (lr == NULL) {
		rc = sbx_fail(e, SBX_ENOMEM, "custody: out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct bundle_custody_record *cr = &c->rec[i];
		uint8_t k;

		p = wire_get_bytes32(&r, LOGREC_MAX_ENCODED, &plen);
		if (p == NULL || logrec_decode(p, plen, lr) != 0) {
			sbx_fail(e, rc, "custody: record %" PRIu32 " is not a custody record", i);
			goto out;
		}
		cr->record = malloc(plen);
		if (cr->record == NULL) {
			rc = sbx_fail(e, SBX_ENOMEM, "custody: out of memory");
			goto out;
		}
		memcpy(cr->record, p, plen);
		cr->record_len = plen;
		c->n = i + 1;
		cr->leaf_index = wire_get_u64(&r);
		k = wire_get_u8(&r);
		if (r.err != 0 || k > MERKLE_MAX_PROOF) {
			sbx_fail(e, rc, "custody: record %" PRIu32 ": bad proof length", i);
			goto out;
		}
		cr->n_hashes = k;
		for (size_t j = 0; j < k; j++)
			wire_get_fixed(&r, cr->proof[j], 32);
		if (r.err != 0) {
			sbx_fail(e, rc, "custody: record %" PRIu32 ": truncated proof", i);
			goto out;
		}
		/* One order, so each set of records has one encoding. */
		if (i > 0 && cr->leaf_index <= c->rec[i - 1].leaf_index) {
			sbx_fail(e, rc, "custody: record %" PRIu32 ": leaf indices must increase", i);
			goto out;
		}
	}
	wire_get_fixed(&r, c->head, STH_ENCODED_LEN);
	if (r.err != 0 || sth_decode(c->head, STH_ENCODED_LEN, &head) != 0) {
		sbx_fail(e, rc, "custody: the tree head is not a version 1 signed tree head");
		goto out;
	}
	p = wire_get_bytes32(&r, sizeof c->sig, &c->siglen);
	if (p == NULL || c->siglen == 0) {
		sbx_fail(e, rc, "custody: bad head signature length");
		goto out;
	}
	memcpy(c->sig, p, c->siglen);
	if (wire_r_end(&r) != 0) {
		sbx_fail(e, rc, "custody: trailing bytes");
		goto out;
	}
	rc = 0;
out:
	free(lr);
	if (rc != 0) {
		bundle_custody_free(c);
		memset(c, 0, sizeof *c);
	}
	return rc;
}

int bundle_custody_verify(const struct bundle *b, const struct bundle_custody *c,
                          struct sth *head_out, struct sbx_err *e)
{
	const struct bundle_manifest *m = bundle_manifest(b);
	struct logrec *lr = NULL;
	EVP_PKEY *pk = NULL;
	struct sth head;
	uint8_t bid[32], leaf[32];
	char hex[65];
	int r = SBX_EVERIFY;

	if (head_out != NULL)
		memset(head_out, 0, sizeof *head_out);
	bundle_id(b, bid);
	hash_hex(bid, 32, hex);
	if (c->n == 0 || c->n > BUNDLE_MAX_CUSTODY) {
		sbx_fail(e, r, "custody: no records");
		goto out;
	}
	if (CRYPTO_memcmp(c->bundle_id, bid, 32) != 0) {
		sbx_fail(e, r, "custody: the file is for another bundle");
		goto out;
	}
	if (sth_decode(c->head, STH_ENCODED_LEN, &head) != 0) {
		sbx_fail(e, r, "custody: the tree head does not decode");
		goto out;
	}
	if (CRYPTO_memcmp(head.appliance_id, m->appliance_id, 32) != 0) {
		sbx_fail(e, r, "custody: the tree head is from another appliance");
		goto out;
	}
	if (identity_sign_pkey(bundle_identity(b), &pk) != 0 ||
	    sig_verify(pk, SIG_NS_STH, c->head, STH_ENCODED_LEN, c->sig, c->siglen) != 0) {
		sbx_fail(e, r, "custody: the tree head's signature does not verify under the "
		         "identity's signing key (namespace %s)", SIG_NS_STH);
		goto out;
	}
	lr = malloc(sizeof *lr);
	if (lr == NULL) {
		r = sbx_fail(e, SBX_ENOMEM, "custody: out of memory");
		goto out;
	}
	for (size_t i = 0; i < c->n; i++) {
		const struct bundle_custody_record *cr = &c->rec[i];

		if (logrec_decode(cr->record, cr->record_len, lr) != 0) {
			sbx_fail(e, r, "custody: record %zu does not decode", i);
			goto out;
		}
		if (strcmp(lr->bundle_id, hex) != 0) {
			sbx_fail(e, r, "custody: record %zu (seq %" PRIu64 ") names bundle '%.64s', not "
			         "this one", i, lr->seq, lr->bundle_id);
			goto out;
		}
		if (CRYPTO_memcmp(lr->appliance_id, m->appliance_id, 32) != 0) {
			sbx_fail(e, r, "custody: record %zu is from another appliance", i);
			goto out;
		}
		if (lr->seq != cr->leaf_index) {
			sbx_fail(e, r, "custody: record %zu has seq %" PRIu64 " at leaf %" PRIu64, i,
			         lr->seq, cr->leaf_index);
			goto out;
		}
		if (logrec_leaf_hash(cr->record, cr->record_len, leaf) != 0 ||
		    merkle_verify_inclusion(leaf, cr->leaf_index, head.tree_size,
		                            (const uint8_t (*)[32])cr->proof, cr->n_hashes,
		                            head.root) != 0) {
			sbx_fail(e, r, "custody: record %zu (seq %" PRIu64 ") is not included in the "
			         "tree of %" PRIu64 " records under the signed head", i, lr->seq,
			         head.tree_size);
			goto out;
		}
	}
	if (head_out != NULL)
		*head_out = head;
	r = 0;
out:
	free(lr);
	EVP_PKEY_free(pk);
	return r;
}

/* make_vectors KEYDIR OUTDIR: regenerates the bundle test vector
 * (tests/vectors/bundle/, documented in its README.md) byte for byte.
 *
 * TEST ONLY.  Three committed software P-256 keys stand in for the TPM's
 * keys: TEST-ONLY-sign-key.pem (SIGN), TEST-ONLY-decrypt-key.pem (DECRYPT),
 * TEST-ONLY-ak-key.pem (AK).  Their TPMT_PUBLIC areas and the AK's
 * TPMS_ATTEST certifying SIGN are built by hand, exactly as a TPM marshals
 * them, so the identity passes identity_check (there are no EK
 * certificates: the EK chain is the one check it cannot pass, the gap
 * export/identity.c documents anyway).  ECDSA signatures use a
 * deterministic nonce (k = HMAC-SHA256(private scalar, digest) mod (n-1) + 1)
 * so every run gives the same bytes; that is for vectors only, never for a
 * key that protects anything.
 *
 * Writes OUTDIR/<bundle id>.sbx, OUTDIR/<bundle id>.custody,
 * OUTDIR/identity.sbxi and prints the values the README documents. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>

#include "crypto/attest.h"
#include "crypto/err.h"
#include "crypto/hash.h"
#include "crypto/merkle.h"
#include "crypto/sig.h"
#include "export/atomic.h"
#include "export/bundle.h"
#include "export/identity.h"
#include "export/logrec.h"
#include "export/sth.h"
#include "export/wire.h"

/* Fixed inputs (README.md, "Inputs"). */
#define SEALED_AT_MS    UINT64_C(1795671685669)     /* 2026-11-26T05:41:25.669Z */
static const char case_id[] = "2026-CR-004711";
static const char *const reads_jsonl[3] = {
	"{\"vendor_read_id\":\"R-1001\",\"plate\":\"ABC1234\",\"region\":\"US-CO\","
	"\"captured_at\":\"2026-11-20T14:03:07.250Z\",\"camera_id\":\"CAM-17\","
	"\"camera_name\":\"Colfax & Broadway NB\",\"latitude\":39.7401,\"longitude\":-104.9873,"
	"\"heading\":12,\"confidence\":97.5,\"vehicle_make\":\"TOYOTA\",\"vehicle_color\":\"BLUE\","
	"\"vehicle_type\":\"SEDAN\",\"plate_image\":\"images/R-1001.plate.jpg\","
	"\"overview_image\":\"images/R-1001.overview.png\"}\n",
	"{\"vendor_read_id\":\"R-1002\",\"plate\":\"XYZ987\",\"region\":\"US-CO\","
	"\"captured_at\":\"2026-11-20T14:05:41.000Z\",\"camera_id\":\"CAM-17\","
	"\"camera_name\":\"Colfax & Broadway NB\",\"latitude\":39.7401,\"longitude\":-104.9873,"
	"\"heading\":10,\"confidence\":88,\"vehicle_make\":null,\"vehicle_color\":null,"
	"\"vehicle_type\":null,\"plate_image\":null,\"overview_image\":null}\n",
	"{\"vendor_read_id\":\"R-1003\",\"plate\":\"ABC1234\",\"region\":\"US-CO\","
	"\"captured_at\":\"2026-11-21T09:12:00.125Z\",\"camera_id\":\"CAM-03\","
	"\"camera_name\":\"I-25 at 6th Ave\",\"latitude\":null,\"longitude\":null,"
	"\"heading\":null,\"confidence\":91.25,\"vehicle_make\":null,\"vehicle_color\":null,"
	"\"vehicle_type\":null,\"plate_image\":null,\"overview_image\":null}\n",
};
static const char csv_header[] =
	"vendor_read_id,plate,region,captured_at,camera_id,camera_name,latitude,"
	"longitude,heading,confidence,vehicle_make,vehicle_color,vehicle_type,"
	"plate_image,overview_image\r\n";
static const char *const reads_csv[3] = {
	"R-1001,ABC1234,US-CO,2026-11-20T14:03:07.250Z,CAM-17,Colfax & Broadway NB,39.7401,"
	"-104.9873,12,97.5,TOYOTA,BLUE,SEDAN,images/R-1001.plate.jpg,images/R-1001.overview.png\r\n",
	"R-1002,XYZ987,US-CO,2026-11-20T14:05:41.000Z,CAM-17,Colfax & Broadway NB,39.7401,"
	"-104.9873,10,88,,,,,\r\n",
	"R-1003,ABC1234,US-CO,2026-11-21T09:12:00.125Z,CAM-03,I-25 at 6th Ave,,,,91.25,,,,,\r\n",
};
static const int64_t captured_ms[3] = {
	INT64_C(1795701787250), INT64_C(1795701941000), INT64_C(1795770720125),
};
static const char *const camera[3] = { "CAM-17", "CAM-17", "CAM-03" };
/* Two tiny images: a JPEG's first bytes and a PNG signature with a chunk. */
static const uint8_t jpeg[] = {
	0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0x00, 0x01, 0x01, 0x00,
	0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0xff, 0xd9,
};
static const uint8_t png[] = {
	0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 'I', 'H', 'D', 'R',
	0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00,
};

static void fixed_bytes(uint8_t *out, size_t n, uint8_t first)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(first + i);
}

static EVP_PKEY *load_key(const char *dir, const char *name)
{
	char path[4096];
	EVP_PKEY *k = NULL;
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "r");
	if (f != NULL) {
		k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (k == NULL)
		fprintf(stderr, "make_vectors: cannot load %s\n", path);
	return k;
}

/* ECDSA P-256 over a digest with the deterministic test nonce; canonical
 * DER into sig (80 bytes). */
static int det_sign(EVP_PKEY *key, const uint8_t dg[32], uint8_t *sig, size_t *siglen)
{
	EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	BN_CTX *ctx = BN_CTX_new();
	BIGNUM *d = NULL, *k = BN_new(), *nm1 = BN_new(), *r = BN_new(), *s = BN_new();
	BIGNUM *z = BN_new(), *kinv = BN_new(), *t = BN_new(), *x = BN_new();
	EC_POINT *R = NULL;
	ECDSA_SIG *es = NULL;
	uint8_t dbytes[32], mac[32], *p = sig;
	unsigned int maclen = 0;
	int len, rc = -1;

	if (g == NULL || ctx == NULL || k == NULL || nm1 == NULL || r == NULL || s == NULL ||
	    z == NULL || kinv == NULL || t == NULL || x == NULL)
		goto out;
	if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &d) != 1 ||
	    BN_bn2binpad(d, dbytes, 32) != 32)
		goto out;
	if (HMAC(EVP_sha256(), dbytes, 32, dg, 32, mac, &maclen) == NULL || maclen != 32)
		goto out;
	/* k = mac mod (n - 1) + 1, in [1, n - 1] */
	if (BN_copy(nm1, EC_GROUP_get0_order(g)) == NULL || !BN_sub_word(nm1, 1) ||
	    BN_bin2bn(mac, 32, t) == NULL || !BN_nnmod(k, t, nm1, ctx) || !BN_add_word(k, 1))
		goto out;
	R = EC_POINT_new(g);
	if (R == NULL || !EC_POINT_mul(g, R, k, NULL, NULL, ctx) ||
	    !EC_POINT_get_affine_coordinates(g, R, x, NULL, ctx) ||
	    !BN_nnmod(r, x, EC_GROUP_get0_order(g), ctx) || BN_is_zero(r))
		goto out;
	/* s = k^-1 (z + r d) mod n */
	if (BN_bin2bn(dg, 32, z) == NULL ||
	    BN_mod_inverse(kinv, k, EC_GROUP_get0_order(g), ctx) == NULL ||
	    !BN_mod_mul(t, r, d, EC_GROUP_get0_order(g), ctx) ||
	    !BN_mod_add(t, t, z, EC_GROUP_get0_order(g), ctx) ||
	    !BN_mod_mul(s, kinv, t, EC_GROUP_get0_order(g), ctx) || BN_is_zero(s))
		goto out;
	es = ECDSA_SIG_new();
	if (es == NULL || ECDSA_SIG_set0(es, r, s) != 1)
		goto out;
	r = s = NULL;   /* transferred */
	len = i2d_ECDSA_SIG(es, NULL);
	if (len <= 0 || len > 80 || i2d_ECDSA_SIG(es, &p) != len)
		goto out;
	*siglen = (size_t)len;
	rc = 0;
out:
	OPENSSL_cleanse(dbytes, sizeof dbytes);
	OPENSSL_cleanse(mac, sizeof mac);
	ECDSA_SIG_free(es);
	EC_POINT_free(R);
	BN_clear_free(d);
	BN_clear_free(k);
	BN_free(nm1);
	BN_free(r);
	BN_free(s);
	BN_free(z);
	BN_clear_free(kinv);
	BN_clear_free(t);
	BN_free(x);
	BN_CTX_free(ctx);
	EC_GROUP_free(g);
	return rc;
}

static int sign_cb(void *arg, const uint8_t digest[32], uint8_t *sig, size_t *siglen,
                   struct sbx_err *e)
{
	if (det_sign(arg, digest, sig, siglen) != 0)
		return sbx_fail(e, SBX_ECRYPTO, "make_vectors: signing failed");
	return 0;
}

/* TPMT_PUBLIC of an ECC P-256 key, as the TPM marshals it. */
static int tpmt_public(EVP_PKEY *key, uint32_t attrs, uint16_t scheme,
                       struct identity_blob *out)
{
	uint8_t pt[65];
	size_t ptlen = 0;
	struct wire_w w;
	uint8_t *b = NULL;
	size_t n = 0;

	if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt, &ptlen) != 1 ||
	    ptlen != 65 || pt[0] != 0x04)
		return -1;
	wire_w_init(&w);
	wire_put_u16(&w, ATTEST_ALG_ECC);
	wire_put_u16(&w, ATTEST_ALG_SHA256);
	wire_put_u32(&w, attrs);
	wire_put_u16(&w, 0);                    /* authPolicy: empty */
	wire_put_u16(&w, ATTEST_ALG_NULL);      /* symmetric */
	wire_put_u16(&w, scheme);
	wire_put_u16(&w, ATTEST_ALG_SHA256);    /* the scheme's hash */
	wire_put_u16(&w, ATTEST_ECC_NIST_P256);
	wire_put_u16(&w, ATTEST_ALG_NULL);      /* kdf */
	wire_put_u16(&w, 32);
	wire_put_raw(&w, pt + 1, 32);
	wire_put_u16(&w, 32);
	wire_put_raw(&w, pt + 33, 32);
	if (wire_w_take(&w, &b, &n) != 0 || n > sizeof out->b) {
		free(b);
		return -1;
	}
	memcpy(out->b, b, n);
	out->len = n;
	free(b);
	return 0;
}

#define OA_KEY (ATTEST_OA_FIXEDTPM | ATTEST_OA_FIXEDPARENT | ATTEST_OA_SENSITIVEDATAORIGIN | \
                ATTEST_OA_USERWITHAUTH | ATTEST_OA_NODA)

static int build_identity(EVP_PKEY *sign, EVP_PKEY *dec, EVP_PKEY *ak, struct identity *id)
{
	struct attest_public sp, ap;
	struct wire_w w;
	uint8_t *b = NULL, dg[32], qname[ATTEST_NAME_LEN];
	size_t n = 0;
	int rc = -1;

	memset(id, 0, sizeof *id);
	if (tpmt_public(sign, OA_KEY | ATTEST_OA_SIGN, ATTEST_ALG_ECDSA, &id->sign_pub) != 0 ||
	    tpmt_public(dec, OA_KEY | ATTEST_OA_DECRYPT, ATTEST_ALG_ECDH, &id->decrypt_pub) != 0 ||
	    tpmt_public(ak, OA_KEY | ATTEST_OA_RESTRICTED | ATTEST_OA_SIGN, ATTEST_ALG_ECDSA,
	                &id->ak_pub) != 0)
		return -1;
	if (attest_public_parse(id->sign_pub.b, id->sign_pub.len, &sp) != 0 ||
	    attest_public_parse(id->ak_pub.b, id->ak_pub.len, &ap) != 0)
		return -1;
	fixed_bytes(id->certify_nonce, 32, 0xa0);
	/* A stand-in qualified name: nameAlg | SHA-256("test vector SIGN qualified name"). */
	qname[0] = 0x00;
	qname[1] = 0x0b;
	hash_sha256("test vector SIGN qualified name", 31, qname + 2);
	wire_w_init(&w);
	wire_put_u32(&w, ATTEST_GENERATED_VALUE);
	wire_put_u16(&w, ATTEST_ST_CERTIFY);
	wire_put_u16(&w, ATTEST_NAME_LEN);      /* qualifiedSigner: the AK */
	wire_put_raw(&w, ap.name, ATTEST_NAME_LEN);
	wire_put_u16(&w, 32);                   /* extraData: the nonce */
	wire_put_raw(&w, id->certify_nonce, 32);
	wire_put_u64(&w, UINT64_C(123456789));  /* clockInfo.clock */
	wire_put_u32(&w, 1);                    /* resetCount */
	wire_put_u32(&w, 0);                    /* restartCount */
	wire_put_u8(&w, 1);                     /* safe */
	wire_put_u64(&w, UINT64_C(0x2019101800000000)); /* firmwareVersion */
	wire_put_u16(&w, ATTEST_NAME_LEN);      /* certify.name: SIGN */
	wire_put_raw(&w, sp.name, ATTEST_NAME_LEN);
	wire_put_u16(&w, ATTEST_NAME_LEN);      /* certify.qualifiedName */
	wire_put_raw(&w, qname, ATTEST_NAME_LEN);
	if (wire_w_take(&w, &b, &n) != 0 || n > sizeof id->certify_attest.b)
		goto out;
	memcpy(id->certify_attest.b, b, n);
	id->certify_attest.len = n;
	/* The AK's plain signature over SHA-256(attest), as TPM2_Certify gives. */
	if (hash_sha256(b, n, dg) != 0 ||
	    det_sign(ak, dg, id->certify_sig.b, &id->certify_sig.len) != 0)
		goto out;
	if (identity_compute_id(id) != 0)
		goto out;
	rc = 0;
out:
	free(b);
	return rc;
}

static int write_file(const char *dir, const char *name, const uint8_t *p, size_t n)
{
	char path[4096];
	struct sbx_err e = { 0 };

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (atomic_write_file(path, p, n, 0644, &e) != 0) {
		fprintf(stderr, "make_vectors: %s\n", e.msg);
		return -1;
	}
	return 0;
}

/* Three records: provision, hold.open, ingest (naming the bundle); a signed
 * head over them; the custody file for the bundle. */
static int make_custody(EVP_PKEY *sign, const struct identity *id, const uint8_t bid[32],
                        const char *out)
{
	static const char *const events[3] = { "provision", "hold.open", "ingest" };
	struct bundle_custody *c = calloc(1, sizeof *c);
	struct logrec *lr = calloc(1, sizeof *lr);
	uint8_t leaves[3][32], *rec[3] = { NULL, NULL, NULL }, *enc = NULL, dg[32];
	size_t reclen[3], enclen = 0;
	struct sth head;
	char hex[65], name[100];
	int rc = -1;

	if (c == NULL || lr == NULL)
		goto out;
	hash_hex(bid, 32, hex);
	for (int i = 0; i < 3; i++) {
		memset(lr, 0, sizeof *lr);
		lr->seq = (uint64_t)i;
		lr->time_ms = SEALED_AT_MS - 60000 + (uint64_t)i * 20000;
		lr->tpm_clock_ms = 5000000 + (uint64_t)i * 20000;
		lr->tpm_reset_count = 1;
		memcpy(lr->appliance_id, id->appliance_id, 32);
		fixed_bytes(lr->policy_hash, 32, 0xc0);
		snprintf(lr->event, sizeof lr->event, "%s", events[i]);
		snprintf(lr->outcome, sizeof lr->outcome, "ok");
		snprintf(lr->operator_id, sizeof lr->operator_id, "tech-07");
		if (i > 0)
			snprintf(lr->case_id, sizeof lr->case_id, "%s", case_id);
		if (i == 2) {
			snprintf(lr->bundle_id, sizeof lr->bundle_id, "%s", hex);
			snprintf(lr->detail, sizeof lr->detail, "reads=3\nimages=2");
		}
		if (logrec_encode(lr, &rec[i], &reclen[i]) != 0 ||
		    logrec_leaf_hash(rec[i], reclen[i], leaves[i]) != 0)
			goto out;
	}
	memset(&head, 0, sizeof head);
	memcpy(head.appliance_id, id->appliance_id, 32);
	head.tree_size = 3;
	head.timestamp_ms = SEALED_AT_MS + 1000;
	head.counter = 3;
	if (merkle_root((const uint8_t (*)[32])leaves, 3, head.root) != 0)
		goto out;
	memcpy(c->bundle_id, bid, 32);
	c->n = 1;
	c->rec[0].record = rec[2];
	rec[2] = NULL;   /* transferred */
	c->rec[0].record_len = reclen[2];
	c->rec[0].leaf_index = 2;
	if (merkle_inclusion_proof((const uint8_t (*)[32])leaves, 3, 2, c->rec[0].proof,
	                           &c->rec[0].n_hashes) != 0)
		goto out;
	sth_encode(&head, c->head);
	if (sig_digest(SIG_NS_STH, c->head, STH_ENCODED_LEN, dg) != 0 ||
	    det_sign(sign, dg, c->sig, &c->siglen) != 0)
		goto out;
	if (bundle_custody_encode(c, &enc, &enclen) != 0)
		goto out;
	snprintf(name, sizeof name, "%s.custody", hex);
	rc = write_file(out, name, enc, enclen);
out:
	for (int i = 0; i < 3; i++)
		free(rec[i]);
	if (c != NULL)
		bundle_custody_free(c);
	free(c);
	free(lr);
	free(enc);
	return rc;
}

int main(int argc, char **argv)
{
	struct bundle_writer_test_params tp = { 0 };
	struct bundle_manifest m, mo;
	struct bundle_writer *w = NULL;
	struct identity *id = calloc(1, sizeof *id);
	struct sbx_err e = { 0 };
	EVP_PKEY *sign = NULL, *dec = NULL, *ak = NULL;
	uint8_t cek[32], salt[32], gotcek[32], bid[32], *ienc = NULL;
	size_t ilen = 0;
	char path[4096], hex[65];
	int rc = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: make_vectors KEYDIR OUTDIR\n");
		return 2;
	}
	sign = load_key(argv[1], "TEST-ONLY-sign-key.pem");
	dec = load_key(argv[1], "TEST-ONLY-decrypt-key.pem");
	ak = load_key(argv[1], "TEST-ONLY-ak-key.pem");
	if (id == NULL || sign == NULL || dec == NULL || ak == NULL)
		goto out;
	if (build_identity(sign, dec, ak, id) != 0 || identity_encode(id, &ienc, &ilen) != 0) {
		fprintf(stderr, "make_vectors: cannot build the identity\n");
		goto out;
	}
	if (write_file(argv[2], "identity.sbxi", ienc, ilen) != 0)
		goto out;

	memset(&m, 0, sizeof m);
	m.version = BUNDLE_VERSION;
	memcpy(m.appliance_id, id->appliance_id, 32);
	snprintf(m.case_id, sizeof m.case_id, "%s", case_id);
	snprintf(m.source, sizeof m.source, "usb:VENDOR-EXPORT-2026-11-21");
	snprintf(m.operator_id, sizeof m.operator_id, "tech-07");
	m.sealed_at_ms = SEALED_AT_MS;
	fixed_bytes(m.policy_hash, 32, 0xc0);
	snprintf(m.authority, sizeof m.authority, "Warrant 2026-SW-0815 (Denver District Court)");
	snprintf(m.purpose, sizeof m.purpose, "criminal-investigation");
	fixed_bytes(cek, 32, 0x40);
	fixed_bytes(salt, 32, 0x60);
	tp.cek = cek;
	tp.salt = salt;
	tp.single_thread = 1;
	if (bundle_writer_new_test(argv[2], &m, ienc, ilen, &tp, &w, &e) != 0 ||
	    bundle_add_csv_header(w, csv_header, strlen(csv_header), &e) != 0)
		goto fail;
	for (int i = 0; i < 3; i++) {
		if (bundle_add_read(w, reads_jsonl[i], strlen(reads_jsonl[i]), reads_csv[i],
		                    strlen(reads_csv[i]), captured_ms[i], camera[i], &e) != 0)
			goto fail;
		if (i == 0 &&
		    (bundle_add_image(w, "images/R-1001.plate.jpg", jpeg, sizeof jpeg, &e) != 0 ||
		     bundle_add_image(w, "images/R-1001.overview.png", png, sizeof png, &e) != 0))
			goto fail;
	}
	rc = bundle_writer_finish(w, sign_cb, sign, gotcek, bid, &mo, path, sizeof path, &e);
	w = NULL;   /* freed by finish */
	if (rc != 0)
		goto fail;
	rc = 1;
	if (make_custody(sign, id, bid, argv[2]) != 0) {
		fprintf(stderr, "make_vectors: cannot make the custody file\n");
		goto out;
	}
	hash_hex(bid, 32, hex);
	printf("bundle_id %s\n", hex);
	hash_hex(id->appliance_id, 32, hex);
	printf("appliance_id %s\n", hex);
	hash_hex(mo.ciphertext_sha256, 32, hex);
	printf("ciphertext_sha256 %s\n", hex);
	hash_hex(mo.index_sha256, 32, hex);
	printf("index_sha256 %s\n", hex);
	printf("plaintext_bytes %llu ciphertext_bytes %llu\n",
	       (unsigned long long)mo.plaintext_bytes, (unsigned long long)mo.ciphertext_bytes);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "make_vectors: %s\n", e.msg);
	rc = 1;
out:
	bundle_writer_abort(w);
	EVP_PKEY_free(sign);
	EVP_PKEY_free(dec);
	EVP_PKEY_free(ak);
	free(ienc);
	free(id);
	return rc;
}

/* sealbox identity: the public material an auditor pins. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "appliance/box.h"
#include "appliance/cli.h"
#include "appliance/cmds.h"
#include "crypto/attest.h"
#include "crypto/hash.h"
#include "export/atomic.h"
#include "export/identity.h"
#include "export/jsonw.h"

static int usage(FILE *f)
{
	fprintf(f, "usage: sealbox identity [--json] [--out FILE]\n"
	           "Prints the box's public identity: the appliance id (SHA-256 of the signing\n"
	           "key's SubjectPublicKeyInfo), the signing and decrypt public keys, the\n"
	           "attestation key, the TPM's certification of the signing key and the EK\n"
	           "certificates.  --out writes the identity file that sealbox-verify --identity\n"
	           "reads (format: docs/LOG-FORMAT.md, \"Identity\").\n");
	return f == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

/* PEM text of a public key or certificate; malloc'd, NUL-terminated. */
static char *pem_pubkey(EVP_PKEY *k)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *out = NULL, *p;
	long n;

	if (bio == NULL || k == NULL || PEM_write_bio_PUBKEY(bio, k) != 1)
		goto out;
	n = BIO_get_mem_data(bio, &p);
	out = malloc((size_t)n + 1);
	if (out != NULL) {
		memcpy(out, p, (size_t)n);
		out[n] = 0;
	}
out:
	BIO_free(bio);
	return out;
}

static char *pem_cert(const uint8_t *der, size_t len)
{
	const uint8_t *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	BIO *bio = BIO_new(BIO_s_mem());
	char *out = NULL, *m;
	long n;

	if (x == NULL || bio == NULL || PEM_write_bio_X509(bio, x) != 1)
		goto out;
	n = BIO_get_mem_data(bio, &m);
	out = malloc((size_t)n + 1);
	if (out != NULL) {
		memcpy(out, m, (size_t)n);
		out[n] = 0;
	}
out:
	X509_free(x);
	BIO_free(bio);
	return out;
}

static char *pem_of_tpmt(const struct identity_blob *blob)
{
	struct attest_public ap;
	EVP_PKEY *k = NULL;
	char *s = NULL;

	if (attest_public_parse(blob->b, blob->len, &ap) == 0 && attest_public_pkey(&ap, &k) == 0)
		s = pem_pubkey(k);
	EVP_PKEY_free(k);
	return s;
}

static void tpm_name_hex(const struct identity_blob *blob, char out[2 * ATTEST_NAME_LEN + 1])
{
	struct attest_public ap;

	if (attest_public_parse(blob->b, blob->len, &ap) == 0)
		hash_hex(ap.name, ATTEST_NAME_LEN, out);
	else
		snprintf(out, 2 * ATTEST_NAME_LEN + 1, "unparseable");
}

int cmd_identity(int argc, char **argv, struct cli *g)
{
	static const struct option opts[] = {
		{ "out",   required_argument, NULL, 'o' },
		{ "state", required_argument, NULL, CLI_OPT_STATE },
		{ "tcti",  required_argument, NULL, CLI_OPT_TCTI },
		{ "json",  no_argument,       NULL, CLI_OPT_JSON },
		{ "help",  no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *out_path = NULL;
	struct sbx_err e = { 0 };
	struct box *b = NULL;
	uint8_t *bytes = NULL;
	size_t len = 0;
	char *sign_pem = NULL, *dec_pem = NULL, *ak_pem = NULL, idhex[65];
	char sign_name[2 * ATTEST_NAME_LEN + 1], ak_name[2 * ATTEST_NAME_LEN + 1];
	int c, r;

	g->prog = "sealbox identity";
	optind = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (cli_common_opt(g, c, optarg))
			continue;
		switch (c) {
		case 'o': out_path = optarg; break;
		case 'h': return usage(stdout);
		default:  return cli_opt_error(g, c, argv);
		}
	}
	if (optind != argc)
		return cli_usage(g, "unexpected argument '%s'", argv[optind]);
	cli_env_defaults(g);
	r = box_open(g->state, NULL, 0, &b, &e);
	if (r != 0)
		goto out;
	r = identity_encode(&b->id, &bytes, &len);
	if (r != 0) {
		r = sbx_fail(&e, r, "stored identity cannot be encoded");
		goto out;
	}
	if (out_path != NULL) {
		r = atomic_write_file(out_path, bytes, len, 0644, &e);
		if (r != 0)
			goto out;
	}
	hash_hex(b->id.appliance_id, 32, idhex);
	sign_pem = pem_of_tpmt(&b->id.sign_pub);
	dec_pem = pem_of_tpmt(&b->id.decrypt_pub);
	ak_pem = pem_of_tpmt(&b->id.ak_pub);
	tpm_name_hex(&b->id.sign_pub, sign_name);
	tpm_name_hex(&b->id.ak_pub, ak_name);
	if (g->json) {
		struct jsonw w;

		jsonw_init(&w, stdout);
		jsonw_obj_open(&w, NULL);
		jsonw_str(&w, "appliance_id", idhex);
		jsonw_str(&w, "signing_key_pem", sign_pem);
		jsonw_str(&w, "signing_key_tpm_name", sign_name);
		jsonw_hex(&w, "signing_key_tpmt_public", b->id.sign_pub.b, b->id.sign_pub.len);
		jsonw_str(&w, "decrypt_key_pem", dec_pem);
		jsonw_hex(&w, "decrypt_key_tpmt_public", b->id.decrypt_pub.b, b->id.decrypt_pub.len);
		jsonw_str(&w, "attestation_key_pem", ak_pem);
		jsonw_str(&w, "attestation_key_tpm_name", ak_name);
		jsonw_hex(&w, "attestation_key_tpmt_public", b->id.ak_pub.b, b->id.ak_pub.len);
		jsonw_hex(&w, "certify_nonce", b->id.certify_nonce, 32);
		jsonw_hex(&w, "certify_attest", b->id.certify_attest.b, b->id.certify_attest.len);
		jsonw_hex(&w, "certify_signature", b->id.certify_sig.b, b->id.certify_sig.len);
		jsonw_arr_open(&w, "ek_certificates");
		for (size_t i = 0; i < b->id.n_ekcerts; i++) {
			char *pem = pem_cert(b->id.ekcerts[i].der, b->id.ekcerts[i].len);
			char nv[16];

			snprintf(nv, sizeof nv, "0x%08x", b->id.ekcerts[i].nv_index);
			jsonw_obj_open(&w, NULL);
			jsonw_str(&w, "nv_index", nv);
			jsonw_str(&w, "pem", pem);
			jsonw_obj_close(&w);
			free(pem);
		}
		jsonw_arr_close(&w);
		if (out_path != NULL)
			jsonw_str(&w, "written_to", out_path);
		jsonw_obj_close(&w);
	} else {
		printf("appliance id:        %s\n", idhex);
		printf("signing key name:    %s\n", sign_name);
		printf("attestation key name: %s\n", ak_name);
		printf("EK certificates:     %zu\n", b->id.n_ekcerts);
		printf("\nsigning key (sign only, fixedTPM, certified by the attestation key):\n%s",
		       sign_pem ? sign_pem : "(unreadable)\n");
		printf("\ncontent-key wrapping key (decrypt only):\n%s", dec_pem ? dec_pem : "(unreadable)\n");
		printf("\nattestation key (restricted signing):\n%s", ak_pem ? ak_pem : "(unreadable)\n");
		for (size_t i = 0; i < b->id.n_ekcerts; i++) {
			char *pem = pem_cert(b->id.ekcerts[i].der, b->id.ekcerts[i].len);

			printf("\nEK certificate (NV 0x%08x):\n%s", b->id.ekcerts[i].nv_index,
			       pem ? pem : "(unparseable)\n");
			free(pem);
		}
		if (out_path != NULL)
			printf("\nidentity file written to %s\n", out_path);
	}
out:
	free(sign_pem);
	free(dec_pem);
	free(ak_pem);
	free(bytes);
	box_close(b);
	return r == 0 ? CLI_EXIT_OK : cli_fail(g, &e, r);
}

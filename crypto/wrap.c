#include "crypto/wrap.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

#include "crypto/kdf.h"
#include "export/wire.h"

#define WRAP_VERSION    1
#define WRAP_LABEL      "sealbox-wrap-v1"
#define WRAP_GCM_TAG    16
#define WRAP_GCM_CT     (WRAP_CEK_LEN + WRAP_GCM_TAG)
#define WRAP_MAX_POINT  97
/* label with its NUL, the algorithm byte, the context */
#define WRAP_MAX_INFO   (sizeof WRAP_LABEL + 1 + WRAP_MAX_CONTEXT)

static const uint8_t wrap_magic[4] = { 'S', 'B', 'X', 'W' };
static const uint8_t zero_nonce[12];

struct curve {
	int alg;
	const char *group;      /* OpenSSL group name */
	size_t field;           /* bytes per coordinate */
};

static const struct curve curves[] = {
	{ WRAP_ECDH_P256, "prime256v1", 32 },
	{ WRAP_ECDH_P384, "secp384r1", 48 },
};

static const struct curve *curve_by_alg(int alg)
{
	for (size_t i = 0; i < sizeof curves / sizeof curves[0]; i++)
		if (curves[i].alg == alg)
			return &curves[i];
	return NULL;
}

static const char *alg_name(int alg)
{
	switch (alg) {
	case WRAP_ECDH_P256: return "ECDH P-256";
	case WRAP_ECDH_P384: return "ECDH P-384";
	case WRAP_RSA_OAEP:  return "RSA-OAEP";
	default:             return "unknown";
	}
}

int wrap_key_alg(EVP_PKEY *key, int *alg, struct sbx_err *e)
{
	char group[64];
	size_t glen = 0;
	int bits;

	*alg = 0;
	if (key == NULL)
		return sbx_fail(e, SBX_EINVAL, "wrap: no key");
	switch (EVP_PKEY_get_base_id(key)) {
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
		                                   sizeof group, &glen) != 1) {
			ERR_clear_error();
			return sbx_fail(e, SBX_EPOLICY, "wrap: EC key without a named curve");
		}
		for (size_t i = 0; i < sizeof curves / sizeof curves[0]; i++) {
			if (strcmp(group, curves[i].group) == 0) {
				*alg = curves[i].alg;
				return 0;
			}
		}
		return sbx_fail(e, SBX_EPOLICY, "wrap: EC curve %s is not P-256 or P-384", group);
	case EVP_PKEY_RSA:
		bits = EVP_PKEY_get_bits(key);
		if (bits < WRAP_MIN_RSA_BITS || bits > WRAP_MAX_RSA_BITS)
			return sbx_fail(e, SBX_EPOLICY, "wrap: RSA key of %d bits (allowed %d..%d)",
			                bits, WRAP_MIN_RSA_BITS, WRAP_MAX_RSA_BITS);
		*alg = WRAP_RSA_OAEP;
		return 0;
	default:
		return sbx_fail(e, SBX_EPOLICY, "wrap: key type %s is not EC or RSA",
		                EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "?");
	}
}

/* label | 0x00 | alg | context: the HKDF info (ECDH) and OAEP label (RSA). */
static size_t make_info(int alg, const uint8_t *context, size_t ctxlen,
                        uint8_t out[static WRAP_MAX_INFO])
{
	memcpy(out, WRAP_LABEL, sizeof WRAP_LABEL);
	out[sizeof WRAP_LABEL] = (uint8_t)alg;
	if (ctxlen > 0)
		memcpy(out + sizeof WRAP_LABEL + 1, context, ctxlen);
	return sizeof WRAP_LABEL + 1 + ctxlen;
}

/* 0x04 | X | Y with both coordinates padded to the field size, whatever
 * point format the key was loaded with. */
static int encode_point(EVP_PKEY *k, const struct curve *cv, uint8_t *out, size_t *outlen)
{
	BIGNUM *x = NULL, *y = NULL;
	int r = SBX_ECRYPTO;

	if (EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
	    EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1)
		goto out;
	out[0] = 0x04;
	if (BN_bn2binpad(x, out + 1, (int)cv->field) != (int)cv->field ||
	    BN_bn2binpad(y, out + 1 + cv->field, (int)cv->field) != (int)cv->field)
		goto out;
	*outlen = 1 + 2 * cv->field;
	r = 0;
out:
	ERR_clear_error();
	BN_free(x);
	BN_free(y);
	return r;
}

/* An untrusted point to a key, checked to lie on the curve (and not at
 * infinity) before anything, a TPM included, computes with it. */
static int decode_point(const struct curve *cv, const uint8_t *pt, size_t len,
                        EVP_PKEY **out)
{
	EVP_PKEY_CTX *pc = NULL, *chk = NULL;
	EVP_PKEY *k = NULL;
	OSSL_PARAM params[3];
	int r = SBX_EFORMAT;

	*out = NULL;
	if (len != 1 + 2 * cv->field || pt[0] != 0x04)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
	                                             (char *)cv->group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
	                                              (void *)pt, len);
	params[2] = OSSL_PARAM_construct_end();
	pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (pc == NULL || EVP_PKEY_fromdata_init(pc) != 1)
		goto crypto;
	if (EVP_PKEY_fromdata(pc, &k, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto out;
	chk = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
	if (chk == NULL)
		goto crypto;
	if (EVP_PKEY_public_check(chk) != 1)
		goto out;
	*out = k;
	k = NULL;   /* transferred */
	r = 0;
	goto out;
crypto:
	r = SBX_ECRYPTO;
out:
	ERR_clear_error();
	EVP_PKEY_CTX_free(chk);
	EVP_PKEY_CTX_free(pc);
	EVP_PKEY_free(k);
	return r;
}

static int ecdh_soft(EVP_PKEY *priv, EVP_PKEY *peer, uint8_t *z, size_t *zlen)
{
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
	size_t cap = *zlen;
	int r = SBX_ECRYPTO;

	if (pc == NULL || EVP_PKEY_derive_init(pc) != 1 ||
	    EVP_PKEY_derive_set_peer_ex(pc, peer, 1) != 1)
		goto out;
	if (EVP_PKEY_derive(pc, NULL, zlen) != 1 || *zlen > cap)
		goto out;
	if (EVP_PKEY_derive(pc, z, zlen) != 1)
		goto out;
	r = 0;
out:
	ERR_clear_error();
	EVP_PKEY_CTX_free(pc);
	return r;
}

static int kek_derive(const struct curve *cv, const uint8_t *z,
                      const uint8_t *epk, const uint8_t *rpk, size_t ptlen,
                      const uint8_t *context, size_t ctxlen, uint8_t kek[static 32])
{
	uint8_t salt[2 * WRAP_MAX_POINT];
	uint8_t info[WRAP_MAX_INFO];
	size_t infolen = make_info(cv->alg, context, ctxlen, info);

	memcpy(salt, epk, ptlen);
	memcpy(salt + ptlen, rpk, ptlen);
	return kdf_hkdf_sha256(z, cv->field, salt, 2 * ptlen, info, infolen, kek, 32);
}

/* AES-256-GCM under a single-use KEK with the all-zero nonce. */
static int gcm_crypt(int enc, const uint8_t kek[static 32], const uint8_t *in,
                     uint8_t *out)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	uint8_t tag[WRAP_GCM_TAG];
	int n = 0, r = SBX_ECRYPTO;

	if (c == NULL || EVP_CipherInit_ex2(c, EVP_aes_256_gcm(), kek, zero_nonce, enc, NULL) != 1)
		goto out;
	if (!enc) {
		memcpy(tag, in + WRAP_CEK_LEN, WRAP_GCM_TAG);
		if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, WRAP_GCM_TAG, tag) != 1)
			goto out;
	}
	if (EVP_CipherUpdate(c, out, &n, in, WRAP_CEK_LEN) != 1 || n != WRAP_CEK_LEN)
		goto out;
	if (EVP_CipherFinal_ex(c, out + WRAP_CEK_LEN, &n) != 1 || n != 0) {
		r = enc ? SBX_ECRYPTO : SBX_EVERIFY;
		goto out;
	}
	if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, WRAP_GCM_TAG,
	                               out + WRAP_CEK_LEN) != 1)
		goto out;
	r = 0;
out:
	if (r != 0)
		OPENSSL_cleanse(out, enc ? WRAP_GCM_CT : WRAP_CEK_LEN);
	ERR_clear_error();
	EVP_CIPHER_CTX_free(c);
	return r;
}

static int check_context(const uint8_t *context, size_t ctxlen, struct sbx_err *e)
{
	if (ctxlen > WRAP_MAX_CONTEXT || (ctxlen > 0 && context == NULL))
		return sbx_fail(e, SBX_EINVAL, "wrap: context longer than %d bytes",
		                WRAP_MAX_CONTEXT);
	return 0;
}

static int wrap_ec(EVP_PKEY *recipient, const struct curve *cv, EVP_PKEY *eph,
                   const uint8_t cek[static WRAP_CEK_LEN],
                   const uint8_t *context, size_t ctxlen,
                   struct wire_w *w, struct sbx_err *e)
{
	EVP_PKEY *gen = NULL;
	uint8_t epk[WRAP_MAX_POINT], rpk[WRAP_MAX_POINT];
	uint8_t z[WRAP_MAX_SHARED], kek[32], ct[WRAP_GCM_CT];
	size_t epklen = 0, rpklen = 0, zlen = sizeof z;
	int alg = 0, r;

	if (eph == NULL) {
		gen = EVP_PKEY_Q_keygen(NULL, NULL, "EC", cv->group);
		if (gen == NULL) {
			r = sbx_fail_ssl(e, SBX_ECRYPTO, "wrap: ephemeral %s key generation failed",
			                 alg_name(cv->alg));
			goto out;
		}
		eph = gen;
	} else if (wrap_key_alg(eph, &alg, NULL) != 0 || alg != cv->alg) {
		r = sbx_fail(e, SBX_EINVAL, "wrap: ephemeral key is not on the recipient's curve");
		goto out;
	}
	if ((r = encode_point(eph, cv, epk, &epklen)) != 0 ||
	    (r = encode_point(recipient, cv, rpk, &rpklen)) != 0) {
		sbx_fail(e, r, "wrap: cannot encode the public points");
		goto out;
	}
	r = ecdh_soft(eph, recipient, z, &zlen);
	if (r != 0 || zlen != cv->field) {
		r = sbx_fail(e, SBX_ECRYPTO, "wrap: ECDH failed");
		goto out;
	}
	r = kek_derive(cv, z, epk, rpk, epklen, context, ctxlen, kek);
	if (r != 0) {
		sbx_fail(e, r, "wrap: key derivation failed");
		goto out;
	}
	r = gcm_crypt(1, kek, cek, ct);
	if (r != 0) {
		sbx_fail(e, r, "wrap: AES-GCM failed");
		goto out;
	}
	wire_put_bytes32(w, epk, epklen);
	wire_put_bytes32(w, ct, sizeof ct);
	r = 0;
out:
	OPENSSL_cleanse(z, sizeof z);
	OPENSSL_cleanse(kek, sizeof kek);
	EVP_PKEY_free(gen);   /* the ephemeral private key never leaves */
	return r;
}

static int oaep_ctx(EVP_PKEY *key, int enc, const uint8_t *context, size_t ctxlen,
                    EVP_PKEY_CTX **out)
{
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
	uint8_t info[WRAP_MAX_INFO];
	size_t infolen = make_info(WRAP_RSA_OAEP, context, ctxlen, info);
	unsigned char *label = NULL;
	int r = SBX_ECRYPTO;

	*out = NULL;
	if (pc == NULL)
		goto out;
	if ((enc ? EVP_PKEY_encrypt_init(pc) : EVP_PKEY_decrypt_init(pc)) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md_name(pc, "SHA256", NULL) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md_name(pc, "SHA256", NULL) != 1)
		goto out;
	label = OPENSSL_memdup(info, infolen);
	if (label == NULL || EVP_PKEY_CTX_set0_rsa_oaep_label(pc, label, (int)infolen) != 1)
		goto out;
	label = NULL;   /* transferred */
	*out = pc;
	pc = NULL;      /* transferred */
	r = 0;
out:
	OPENSSL_free(label);
	EVP_PKEY_CTX_free(pc);
	return r;
}

static int wrap_rsa(EVP_PKEY *recipient, const uint8_t cek[static WRAP_CEK_LEN],
                    const uint8_t *context, size_t ctxlen,
                    struct wire_w *w, struct sbx_err *e)
{
	EVP_PKEY_CTX *pc = NULL;
	uint8_t ct[WRAP_MAX_RSA_BITS / 8];
	size_t ctlen = sizeof ct;
	int r;

	r = oaep_ctx(recipient, 1, context, ctxlen, &pc);
	if (r == 0 && EVP_PKEY_encrypt(pc, ct, &ctlen, cek, WRAP_CEK_LEN) != 1)
		r = SBX_ECRYPTO;
	if (r != 0 || ctlen != (size_t)EVP_PKEY_get_size(recipient)) {
		r = sbx_fail_ssl(e, SBX_ECRYPTO, "wrap: RSA-OAEP encryption failed");
		goto out;
	}
	wire_put_bytes32(w, ct, ctlen);
	r = 0;
out:
	EVP_PKEY_CTX_free(pc);
	return r;
}

int wrap_cek_ephemeral(EVP_PKEY *recipient, EVP_PKEY *ephemeral,
                       const uint8_t cek[static WRAP_CEK_LEN],
                       const uint8_t *context, size_t ctxlen,
                       uint8_t **blob, size_t *bloblen, struct sbx_err *e)
{
	struct wire_w w;
	int alg = 0, r;

	*blob = NULL;
	*bloblen = 0;
	wire_w_init(&w);
	if ((r = check_context(context, ctxlen, e)) != 0 ||
	    (r = wrap_key_alg(recipient, &alg, e)) != 0)
		goto out;
	if (ephemeral != NULL && alg == WRAP_RSA_OAEP) {
		r = sbx_fail(e, SBX_EINVAL, "wrap: an ephemeral key makes no sense for RSA");
		goto out;
	}
	wire_put_raw(&w, wrap_magic, sizeof wrap_magic);
	wire_put_u8(&w, WRAP_VERSION);
	wire_put_u8(&w, (uint8_t)alg);
	if (alg == WRAP_RSA_OAEP)
		r = wrap_rsa(recipient, cek, context, ctxlen, &w, e);
	else
		r = wrap_ec(recipient, curve_by_alg(alg), ephemeral, cek, context, ctxlen, &w, e);
	if (r != 0)
		goto out;
	r = wire_w_take(&w, blob, bloblen);
	if (r != 0)
		sbx_fail(e, r, "wrap: encoding the blob failed");
out:
	wire_w_free(&w);
	return r;
}

int wrap_cek(EVP_PKEY *recipient, const uint8_t cek[static WRAP_CEK_LEN],
             const uint8_t *context, size_t ctxlen,
             uint8_t **blob, size_t *bloblen, struct sbx_err *e)
{
	return wrap_cek_ephemeral(recipient, NULL, cek, context, ctxlen, blob, bloblen, e);
}

int wrap_parse(const uint8_t *blob, size_t len, struct wrap_blob *out,
               struct sbx_err *e)
{
	struct wire_r rd;
	const uint8_t *magic;
	const struct curve *cv;
	uint8_t version;

	memset(out, 0, sizeof *out);
	if (blob == NULL || len > WRAP_MAX_BLOB)
		return sbx_fail(e, SBX_EFORMAT, "wrap blob: %zu bytes, at most %d",
		                len, WRAP_MAX_BLOB);
	wire_r_init(&rd, blob, len);
	magic = wire_get_raw(&rd, sizeof wrap_magic);
	version = wire_get_u8(&rd);
	out->alg = wire_get_u8(&rd);
	if (rd.err != 0 || memcmp(magic, wrap_magic, sizeof wrap_magic) != 0)
		return sbx_fail(e, SBX_EFORMAT, "wrap blob: no SBXW header");
	if (version != WRAP_VERSION)
		return sbx_fail(e, SBX_EFORMAT, "wrap blob: unsupported version %u", version);
	cv = curve_by_alg(out->alg);
	if (cv != NULL) {
		out->epk = wire_get_bytes32(&rd, WRAP_MAX_POINT, &out->epklen);
		out->ct = wire_get_bytes32(&rd, WRAP_GCM_CT, &out->ctlen);
		if (rd.err != 0 || out->epklen != 1 + 2 * cv->field || out->ctlen != WRAP_GCM_CT)
			return sbx_fail(e, SBX_EFORMAT, "wrap blob: bad %s field lengths",
			                alg_name(out->alg));
	} else if (out->alg == WRAP_RSA_OAEP) {
		out->ct = wire_get_bytes32(&rd, WRAP_MAX_RSA_BITS / 8, &out->ctlen);
		if (rd.err != 0 || out->ctlen < WRAP_MIN_RSA_BITS / 8)
			return sbx_fail(e, SBX_EFORMAT, "wrap blob: bad RSA-OAEP ciphertext length");
	} else {
		return sbx_fail(e, SBX_EFORMAT, "wrap blob: unknown algorithm %d", out->alg);
	}
	if (wire_r_end(&rd) != 0)
		return sbx_fail(e, SBX_EFORMAT, "wrap blob: %zu trailing bytes", len - rd.off);
	return 0;
}

/* Parses the blob and checks it is meant for a key like `key`. */
static int parse_for(const uint8_t *blob, size_t len, EVP_PKEY *key,
                     const uint8_t *context, size_t ctxlen,
                     struct wrap_blob *wb, struct sbx_err *e)
{
	int alg = 0, r;

	if ((r = check_context(context, ctxlen, e)) != 0 ||
	    (r = wrap_key_alg(key, &alg, e)) != 0 ||
	    (r = wrap_parse(blob, len, wb, e)) != 0)
		return r;
	if (wb->alg != alg)
		return sbx_fail(e, SBX_EVERIFY, "wrap: blob is for %s, the key is %s",
		                alg_name(wb->alg), alg_name(alg));
	return 0;
}

/* The ECDH path shared by the software key and the callback. */
static int unwrap_ec(const struct wrap_blob *wb, EVP_PKEY *key, EVP_PKEY *priv,
                     wrap_ecdh_fn ecdh, void *arg,
                     const uint8_t *context, size_t ctxlen,
                     uint8_t cek[static WRAP_CEK_LEN], struct sbx_err *e)
{
	const struct curve *cv = curve_by_alg(wb->alg);
	EVP_PKEY *peer = NULL;
	uint8_t rpk[WRAP_MAX_POINT], z[WRAP_MAX_SHARED], kek[32], out[WRAP_GCM_CT];
	size_t rpklen = 0, zlen = cv->field;
	int r;

	r = decode_point(cv, wb->epk, wb->epklen, &peer);
	if (r != 0) {
		sbx_fail(e, r, "wrap blob: ephemeral point is not on %s", alg_name(wb->alg));
		goto out;
	}
	r = encode_point(key, cv, rpk, &rpklen);
	if (r != 0) {
		sbx_fail(e, r, "wrap: cannot encode the recipient's public point");
		goto out;
	}
	if (priv != NULL) {
		r = ecdh_soft(priv, peer, z, &zlen);
		if (r != 0)
			sbx_fail_ssl(e, r, "wrap: ECDH failed");
	} else {
		r = ecdh(arg, wb->epk, wb->epklen, z, &zlen);
		if (r != 0)
			sbx_fail(e, r, "wrap: ECDH callback failed");
	}
	if (r != 0)
		goto out;
	if (zlen == 0 || zlen > cv->field) {
		r = sbx_fail(e, SBX_ECRYPTO, "wrap: ECDH gave %zu bytes, expected %zu",
		             zlen, cv->field);
		goto out;
	}
	if (zlen < cv->field) {
		memmove(z + (cv->field - zlen), z, zlen);
		memset(z, 0, cv->field - zlen);
	}
	r = kek_derive(cv, z, wb->epk, rpk, rpklen, context, ctxlen, kek);
	if (r != 0) {
		sbx_fail(e, r, "wrap: key derivation failed");
		goto out;
	}
	r = gcm_crypt(0, kek, wb->ct, out);
	if (r != 0) {
		sbx_fail(e, r, "wrap: content key does not authenticate "
		         "(wrong key or context, or altered blob)");
		goto out;
	}
	memcpy(cek, out, WRAP_CEK_LEN);
out:
	OPENSSL_cleanse(z, sizeof z);
	OPENSSL_cleanse(kek, sizeof kek);
	OPENSSL_cleanse(out, sizeof out);
	EVP_PKEY_free(peer);
	return r;
}

static int unwrap_rsa(const struct wrap_blob *wb, EVP_PKEY *priv,
                      const uint8_t *context, size_t ctxlen,
                      uint8_t cek[static WRAP_CEK_LEN], struct sbx_err *e)
{
	EVP_PKEY_CTX *pc = NULL;
	uint8_t out[WRAP_MAX_RSA_BITS / 8];
	size_t outlen = sizeof out;
	int r;

	if (wb->ctlen != (size_t)EVP_PKEY_get_size(priv)) {
		r = sbx_fail(e, SBX_EVERIFY, "wrap: RSA ciphertext of %zu bytes for a %d-byte key",
		             wb->ctlen, EVP_PKEY_get_size(priv));
		goto out;
	}
	r = oaep_ctx(priv, 0, context, ctxlen, &pc);
	if (r != 0) {
		sbx_fail_ssl(e, r, "wrap: RSA-OAEP setup failed");
		goto out;
	}
	/* One answer for every failure: OAEP padding, label (context) or length. */
	if (EVP_PKEY_decrypt(pc, out, &outlen, wb->ct, wb->ctlen) != 1 ||
	    outlen != WRAP_CEK_LEN) {
		ERR_clear_error();
		r = sbx_fail(e, SBX_EVERIFY, "wrap: content key does not decrypt "
		             "(wrong key or context, or altered blob)");
		goto out;
	}
	memcpy(cek, out, WRAP_CEK_LEN);
	r = 0;
out:
	OPENSSL_cleanse(out, sizeof out);
	EVP_PKEY_CTX_free(pc);
	return r;
}

int wrap_unwrap(const uint8_t *blob, size_t len, EVP_PKEY *priv,
                const uint8_t *context, size_t ctxlen,
                uint8_t cek[static WRAP_CEK_LEN], struct sbx_err *e)
{
	struct wrap_blob wb;
	int r;

	r = parse_for(blob, len, priv, context, ctxlen, &wb, e);
	if (r != 0)
		return r;
	if (wb.alg == WRAP_RSA_OAEP)
		return unwrap_rsa(&wb, priv, context, ctxlen, cek, e);
	return unwrap_ec(&wb, priv, priv, NULL, NULL, context, ctxlen, cek, e);
}

int wrap_unwrap_ecdh(const uint8_t *blob, size_t len, EVP_PKEY *recipient,
                     wrap_ecdh_fn ecdh, void *arg,
                     const uint8_t *context, size_t ctxlen,
                     uint8_t cek[static WRAP_CEK_LEN], struct sbx_err *e)
{
	struct wrap_blob wb;
	int r;

	if (ecdh == NULL)
		return sbx_fail(e, SBX_EINVAL, "wrap: no ECDH callback");
	r = parse_for(blob, len, recipient, context, ctxlen, &wb, e);
	if (r != 0)
		return r;
	if (wb.alg == WRAP_RSA_OAEP)
		return sbx_fail(e, SBX_EINVAL, "wrap: an ECDH callback cannot unwrap RSA-OAEP");
	return unwrap_ec(&wb, recipient, NULL, ecdh, arg, context, ctxlen, cek, e);
}

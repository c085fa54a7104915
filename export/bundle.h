/* Evidence bundles, format v1 (docs/FORMAT.md): sealing (the box), reading
 * and verifying (everyone), decrypting the payload (a key holder).  Core
 * library: OpenSSL, libarchive, libc.  The TPM appears only as callbacks. */
#ifndef SBX_BUNDLE_H
#define SBX_BUNDLE_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

#include "crypto/err.h"
#include "export/identity.h"
#include "export/sth.h"

#define BUNDLE_VERSION          1
#define BUNDLE_MAX_MANIFEST     65536
#define BUNDLE_MAX_IDENTITY     65536
#define BUNDLE_MAX_PAYLOAD      ((uint64_t)1 << 48)
#define BUNDLE_MAX_ITEMS        ((uint32_t)1 << 24)
#define BUNDLE_MAX_DATA_FRAME   (1u << 20)
#define BUNDLE_MAX_PATH         512
#define BUNDLE_MAX_CUSTODY      64
#define BUNDLE_SUITE            "aes-256-gcm-stream-64k"
#define BUNDLE_NS_PAYLOAD_AD    "sealbox-payload-v1"
#define BUNDLE_NS_ATREST        "sealbox-atrest-v1"
#define BUNDLE_MAX_SIG          80
#define BUNDLE_MAX_IMAGE_NAME   500     /* NAME in "images/NAME" */

/* The manifest, field for field (docs/FORMAT.md section 3). */
struct bundle_manifest {
	unsigned version;
	uint8_t appliance_id[32];
	uint8_t identity_sha256[32];    /* SHA-256 of identity.sbxi: signed with the rest */
	char case_id[129];
	char source[129];
	char operator_id[129];
	uint64_t sealed_at_ms;
	uint8_t policy_hash[32];
	char authority[257];
	char purpose[65];
	uint64_t reads, images, cameras;
	uint64_t first_captured_ms, last_captured_ms;
	uint64_t plaintext_bytes, ciphertext_bytes;
	uint8_t ciphertext_sha256[32];
	uint64_t items;
	uint8_t index_sha256[32];
};

/* Canonical encoding; *out malloc'd (NUL-terminated, *len without it).
 * SBX_EINVAL for a manifest that bundle_manifest_parse would reject. */
int bundle_manifest_encode(const struct bundle_manifest *m, char **out, size_t *len);
/* Strict parse, field checks (bundle_manifest_check), canonical re-encode
 * comparison.  SBX_EFORMAT with the key or byte that is wrong. */
int bundle_manifest_parse(const char *text, size_t len, struct bundle_manifest *m,
                          struct sbx_err *e);
/* The field rules of FORMAT.md section 3 (lengths, counts, sizes, suite). */
int bundle_manifest_check(const struct bundle_manifest *m, struct sbx_err *e);

/* The payload path of a read's image (FORMAT.md 5.2):
 * "images/<escaped read_id>.<kind>.<ext>", kind "plate" or "overview", ext
 * "jpg" or "png"; every byte of read_id outside A-Z a-z 0-9 _ - (and '.',
 * except first) written as ~XX.  SBX_EINVAL for an empty id, another kind
 * or ext, or a name longer than the format allows; out holds at most
 * BUNDLE_MAX_PATH + 1 bytes. */
int bundle_image_name(const char *read_id, const char *kind, const char *ext,
                      char *out, size_t cap);

/* ---- Sealing (the box) --------------------------------------------------- */

/* Signs SHA-256 digests with the box's signing key (the TPM): a DER ECDSA
 * signature into sig, *siglen in: the room (at least 80), out: the length. */
typedef int (*bundle_sign_fn)(void *arg, const uint8_t digest[32], uint8_t *sig,
                              size_t *siglen, struct sbx_err *e);

struct bundle_writer;

/* Starts a bundle in directory `dir` (temporary files there, removed on
 * abort).  `m` supplies the descriptive fields (appliance id, case, source,
 * operator, sealed_at, policy hash, authority, purpose); the writer computes
 * the counts, sizes and hashes.  `identity` is the identity file bytes; its
 * appliance id must be m's.  Sealing streams in constant memory: the
 * encrypted payload is spooled to DIR, so DIR needs room for the bundle
 * twice over until finish. */
int bundle_writer_new(const char *dir, const struct bundle_manifest *m,
                      const uint8_t *identity, size_t identity_len,
                      struct bundle_writer **out, struct sbx_err *e);
/* Test vectors only, never the appliance: fixed randomness and the
 * choice of the single-threaded encryptor (benchmarks), plus a fault
 * injected at finish step `fail_step` (1, 2, ...; 0 none) so tests can
 * check that every failure path leaves DIR clean. */
struct bundle_writer_test_params {
	const uint8_t *cek;     /* 32 bytes, or NULL for a fresh random CEK */
	const uint8_t *salt;    /* 32 bytes, or NULL for a fresh random salt */
	int single_thread;      /* encrypt on the caller's thread */
	int fail_step;
};
int bundle_writer_new_test(const char *dir, const struct bundle_manifest *m,
                           const uint8_t *identity, size_t identity_len,
                           const struct bundle_writer_test_params *tp,
                           struct bundle_writer **out, struct sbx_err *e);
/* The CSV header line (with its terminator) of reads.csv: before any read,
 * at most once.  Not a read. */
int bundle_add_csv_header(struct bundle_writer *w, const char *csv, size_t len,
                          struct sbx_err *e);
/* One read: its canonical JSONL and CSV lines (with their newlines), its
 * capture time and camera id (for the manifest's counts). */
int bundle_add_read(struct bundle_writer *w, const char *jsonl, size_t jsonl_len,
                    const char *csv, size_t csv_len, int64_t captured_ms,
                    const char *camera_id, struct sbx_err *e);
/* One image item: path per FORMAT.md ("images/...", see bundle_image_name),
 * 1 byte or more.  A refused path (SBX_EINVAL: invalid or duplicate) or an
 * empty image changes nothing; any other failure ends the writer. */
int bundle_add_image(struct bundle_writer *w, const char *path, const uint8_t *data,
                     size_t len, struct sbx_err *e);
/* Finishes: writes the index, the manifest, has it signed (and checks the
 * signature against the identity), assembles the tar, fsyncs, reads it back
 * with bundle_open, renames to DIR/<id>.sbx (never over an existing file),
 * fsyncs DIR.  Returns the CEK (the caller wraps it and wipes it), the
 * bundle id, the manifest (m_out may be NULL) and the final path (path_out
 * may be NULL).  Frees w in every case; on failure nothing is left in DIR.
 * After a crash only "sbx-*.tmp" files can be left (the spools are unlinked
 * as soon as they are created). */
int bundle_writer_finish(struct bundle_writer *w, bundle_sign_fn sign, void *sign_arg,
                         uint8_t cek[static 32], uint8_t bundle_id[static 32],
                         struct bundle_manifest *m_out, char *path_out, size_t path_cap,
                         struct sbx_err *e);
void bundle_writer_abort(struct bundle_writer *w);

/* ---- Reading and verifying (everyone) ----------------------------------- */

struct bundle;

/* Parses the container strictly (entries, order, types, sizes, every
 * header and padding byte, nothing after the end), the manifest
 * (canonically) and the identity, and checks that they agree (the identity
 * hashes to identity_sha256 and names the manifest's appliance; payload.enc
 * has the manifest's size and suite header).  Verifies no signature yet.
 * SBX_EFORMAT (SBX_EIO: cannot read) with the reason in e. */
int bundle_open(const char *path, struct bundle **out, struct sbx_err *e);
/* The same over a bundle in memory; p must outlive the bundle (fuzzing,
 * tests). */
int bundle_open_mem(const uint8_t *p, size_t len, struct bundle **out, struct sbx_err *e);
void bundle_close(struct bundle *b);
const struct bundle_manifest *bundle_manifest(const struct bundle *b);
const struct identity *bundle_identity(const struct bundle *b);
void bundle_id(const struct bundle *b, uint8_t out[static 32]);
/* The exact bytes of the first three entries (valid until bundle_close). */
const char *bundle_manifest_text(const struct bundle *b, size_t *len);
const uint8_t *bundle_signature(const struct bundle *b, size_t *len);
const uint8_t *bundle_identity_bytes(const struct bundle *b, size_t *len);
/* Where payload.enc lies in the file. */
void bundle_payload_span(const struct bundle *b, uint64_t *offset, uint64_t *len);

struct bundle_verify_opts {
	const struct identity *pinned;  /* the identity an auditor pinned, or NULL */
	const char *ek_ca_pem;          /* EK CA for identity_check, or NULL */
	const uint8_t *policy_hash;     /* expected policy hash (32), or NULL */
};

struct bundle_report {
	int container_ok, manifest_ok, signature_ok, identity_ok, pinned_ok;
	int ciphertext_ok, policy_ok;   /* pinned_ok, policy_ok: -1 when not checked */
	struct identity_report identity;
};

/* Checks the signature, the identity (and its pin), the ciphertext hash
 * (streaming over payload.enc) and the policy hash.  Never decrypts.  Every
 * check runs so the report is complete; returns 0 only if all passed, else
 * SBX_EVERIFY (or SBX_EIO) with the first failure in e. */
int bundle_verify(struct bundle *b, const struct bundle_verify_opts *o,
                  struct bundle_report *rep, struct sbx_err *e);

/* ---- The custody file (docs/FORMAT.md section 6) ------------------------ */

struct bundle_custody_record {
	uint8_t *record;        /* canonical bytes */
	size_t record_len;
	uint64_t leaf_index;
	size_t n_hashes;
	uint8_t proof[64][32];
};

struct bundle_custody {
	uint8_t bundle_id[32];
	size_t n;
	struct bundle_custody_record rec[BUNDLE_MAX_CUSTODY];
	uint8_t head[STH_ENCODED_LEN];
	uint8_t sig[80];
	size_t siglen;
};

int bundle_custody_encode(const struct bundle_custody *c, uint8_t **out, size_t *len);
int bundle_custody_decode(const uint8_t *b, size_t len, struct bundle_custody *c,
                          struct sbx_err *e);
void bundle_custody_free(struct bundle_custody *c);   /* frees the records */
/* Checks per FORMAT.md section 6 against the bundle (its id, appliance id,
 * identity signing key).  head_out (may be NULL) receives the head. */
int bundle_custody_verify(const struct bundle *b, const struct bundle_custody *c,
                          struct sth *head_out, struct sbx_err *e);

/* ---- The payload (a key holder) ----------------------------------------- */

struct bundle_item_sink {
	void *arg;
	/* Item `no` declared with `path`. */
	int (*begin)(void *arg, uint32_t no, const char *path, struct sbx_err *e);
	/* Bytes of item `no`, in order.  Items 0 and 1 (reads.jsonl, reads.csv)
	 * get theirs interleaved with the images; an image's bytes all come
	 * between its begin and the next begin. */
	int (*data)(void *arg, uint32_t no, const uint8_t *p, size_t n, struct sbx_err *e);
};

/* Decrypts payload.enc with the CEK and parses the framing, streaming each
 * item's bytes to the sink (which must treat them as unverified until this
 * returns 0; sink may be NULL).  Returns 0 only if every chunk
 * authenticated, the final chunk was present, payload.enc matched
 * ciphertext_sha256, the index matched index_sha256 and items, and every
 * item its size and hash.  A sink callback's error code is returned as is. */
int bundle_payload_read(struct bundle *b, const uint8_t cek[static 32],
                        const struct bundle_item_sink *sink, struct sbx_err *e);

/* ---- Opening in one pass (sealbox-open) ---------------------------------- */

/* bundle_verify without its pass over payload.enc: rep->ciphertext_ok stays
 * -1 and the return value says nothing about the ciphertext.  For an opener
 * that decrypts next (bundle_payload_open hashes payload.enc in the same
 * pass) or, when it will not decrypt, runs bundle_ciphertext_check. */
int bundle_verify_deferred(struct bundle *b, const struct bundle_verify_opts *o,
                           struct bundle_report *rep, struct sbx_err *e);
/* bundle_verify's ciphertext check alone: 0, SBX_EVERIFY (payload.enc is
 * not what ciphertext_sha256 says) or SBX_EIO. */
int bundle_ciphertext_check(struct bundle *b, struct sbx_err *e);

/* Item `no` is complete: `size` bytes whose SHA-256 the reader computed
 * over exactly the bytes it handed to the sink's data callback (as
 * unverified as those bytes until the read returns 0).  An image ends
 * before the next item begins; items 0 and 1 end when the index begins. */
typedef int (*bundle_item_end_fn)(void *arg, uint32_t no, uint64_t size,
                                  const uint8_t sha256[static 32], struct sbx_err *e);

/* bundle_payload_read for an opener, one pass over everything:
 *  - end (may be NULL) is called with sink->arg as each item completes, so
 *    the sink need not hash the items again;
 *  - *ciphertext_ok says whether payload.enc matched ciphertext_sha256: 1
 *    yes, 0 no, -1 not known (reading failed, or the sink failed with
 *    SBX_EIO, SBX_ENOMEM, SBX_ECANCELED or SBX_ECRYPTO).  After a chunk
 *    fails to authenticate or the framing is wrong the rest of payload.enc
 *    is still hashed (not decrypted), so the verdict is known whenever the
 *    payload's is;
 *  - large payloads are hashed on a worker thread (started with every
 *    signal blocked) while the caller's thread decrypts.
 * Returns what bundle_payload_read would; 0 implies *ciphertext_ok == 1. */
int bundle_payload_open(struct bundle *b, const uint8_t cek[static 32],
                        const struct bundle_item_sink *sink, bundle_item_end_fn end,
                        int *ciphertext_ok, struct sbx_err *e);

#endif

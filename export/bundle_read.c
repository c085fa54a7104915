/* Opening, verifying and decrypting a bundle (docs/FORMAT.md).
 *
 * bundle_open reads the container twice over: once through libarchive (the
 * ordinary tar reader: four entries, names, types, modes, owners, sizes) and
 * once as bytes, against the canonical container regenerated from what was
 * read (export/bundle_tar.h): every header byte, every padding byte, the
 * end-of-archive marker and the file's end.  After that no byte of the file
 * is unaccounted for: it is a header compared exactly, the manifest, the
 * signature or the identity (each parsed strictly and covered by the
 * signature), zero padding, or payload ciphertext (covered by
 * ciphertext_sha256 and the AEAD).
 *
 * The payload is never held in memory: bundle_verify hashes it and
 * bundle_payload_read decrypts it, both streaming from the file by offset.
 * An opener does both in one pass (bundle_verify_deferred, then
 * bundle_payload_open): each piece read is decrypted on the caller's thread
 * while a worker hashes the same bytes (export/bundle_read_hash.h). */
#include "export/bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "crypto/hash.h"
#include "crypto/sig.h"
#include "crypto/stream.h"
#include "export/bundle_payload.h"
#include "export/bundle_read_hash.h"
#include "export/bundle_tar.h"

#define READ_BUF   (1024 * 1024)
/* Below this a worker thread costs more than the overlap saves. */
#define THREAD_MIN ((uint64_t)4 * READ_BUF)
#define ARC_BUF    (64 * 1024)

struct bundle {
	int fd;                         /* -1: in memory */
	const uint8_t *mem;
	uint64_t size;
	char *manifest;
	size_t manifest_len;
	uint8_t sig[BUNDLE_MAX_SIG];
	size_t siglen;
	uint8_t *ident;
	size_t ident_len;
	struct identity id;
	struct bundle_manifest m;
	uint8_t bid[32];
	uint64_t payload_off, payload_len;
};

static const struct {
	const char *name;
	size_t cap;
} entry_spec[4] = {
	{ "manifest.json", BUNDLE_MAX_MANIFEST },
	{ "manifest.sig",  BUNDLE_MAX_SIG },
	{ "identity.sbxi", BUNDLE_MAX_IDENTITY },
	{ "payload.enc",   0 },
};

/* Exactly n bytes at off, or an error. */
static int src_read(const struct bundle *b, uint64_t off, void *buf, size_t n,
                    struct sbx_err *e)
{
	uint8_t *p = buf;

	if (off > b->size || n > b->size - off)
		return sbx_fail(e, SBX_EFORMAT, "bundle: read past the end of the file");
	if (b->fd < 0) {
		memcpy(buf, b->mem + off, n);
		return 0;
	}
	while (n > 0) {
		ssize_t got = pread(b->fd, p, n, (off_t)off);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return sbx_fail(e, SBX_EIO, "bundle: read at offset %" PRIu64 " failed: %s", off,
			                got < 0 ? strerror(errno) : "the file shrank");
		p += got;
		off += (uint64_t)got;
		n -= (size_t)got;
	}
	return 0;
}

/* ---- libarchive over the source ------------------------------------------ */

struct arc_src {
	const struct bundle *b;
	uint64_t off;
	uint8_t *buf;
};

static la_ssize_t arc_read(struct archive *a, void *arg, const void **out)
{
	struct arc_src *s = arg;
	size_t n = s->b->size - s->off > ARC_BUF ? ARC_BUF : (size_t)(s->b->size - s->off);

	if (n == 0)
		return 0;
	if (s->b->fd < 0) {
		*out = s->b->mem + s->off;
	} else {
		if (src_read(s->b, s->off, s->buf, n, NULL) != 0) {
			archive_set_error(a, EIO, "read failed");
			return -1;
		}
		*out = s->buf;
	}
	s->off += n;
	return (la_ssize_t)n;
}

static la_int64_t arc_skip(struct archive *a, void *arg, la_int64_t req)
{
	struct arc_src *s = arg;
	uint64_t left = s->b->size - s->off, n;

	if (req <= 0)
		return 0;
	n = (uint64_t)req < left ? (uint64_t)req : left;
	s->off += n;
	return (la_int64_t)n;
}

/* Entry i's metadata as libarchive sees it. */
static int entry_check(struct archive_entry *ent, int i, struct sbx_err *e)
{
	const char *name = archive_entry_pathname(ent);
	const char *un = archive_entry_uname(ent), *gn = archive_entry_gname(ent);

	if (name == NULL || strcmp(name, entry_spec[i].name) != 0)
		return sbx_fail(e, SBX_EFORMAT, "bundle: entry %d is '%.64s', expected '%s'", i + 1,
		                name ? name : "?", entry_spec[i].name);
	if (archive_entry_filetype(ent) != AE_IFREG || archive_entry_hardlink(ent) != NULL ||
	    archive_entry_symlink(ent) != NULL)
		return sbx_fail(e, SBX_EFORMAT, "bundle: %s is not a regular file", name);
	if (archive_entry_perm(ent) != 0444 || archive_entry_uid(ent) != 0 ||
	    archive_entry_gid(ent) != 0 || (un != NULL && un[0] != '\0') ||
	    (gn != NULL && gn[0] != '\0'))
		return sbx_fail(e, SBX_EFORMAT, "bundle: %s is not mode 0444, owner 0:0, no owner names",
		                name);
	if (archive_entry_xattr_count(ent) != 0 || archive_entry_sparse_count(ent) != 0)
		return sbx_fail(e, SBX_EFORMAT, "bundle: %s carries extended attributes or sparse data",
		                name);
	if (!archive_entry_size_is_set(ent) || archive_entry_size(ent) < 0)
		return sbx_fail(e, SBX_EFORMAT, "bundle: %s has no size", name);
	return 0;
}

/* Reads a small entry's data, exactly `size` bytes. */
static int entry_data(struct archive *a, uint8_t *buf, size_t size, const char *name,
                      struct sbx_err *e)
{
	size_t got = 0;
	uint8_t extra;

	while (got < size) {
		la_ssize_t n = archive_read_data(a, buf + got, size - got);

		if (n <= 0)
			return sbx_fail(e, SBX_EFORMAT, "bundle: %s: %s", name,
			                n < 0 ? archive_error_string(a) : "shorter than its size");
		got += (size_t)n;
	}
	if (archive_read_data(a, &extra, 1) != 0)
		return sbx_fail(e, SBX_EFORMAT, "bundle: %s: longer than its size", name);
	return 0;
}

static int walk_archive(struct bundle *b, struct sbx_err *e)
{
	struct archive *a = NULL;
	struct archive_entry *ent;
	struct arc_src src = { b, 0, NULL };
	int r = SBX_EFORMAT, rc;

	if (b->fd >= 0 && (src.buf = malloc(ARC_BUF)) == NULL)
		return sbx_fail(e, SBX_ENOMEM, "bundle: out of memory");
	a = archive_read_new();
	if (a == NULL || archive_read_support_format_tar(a) != ARCHIVE_OK) {
		r = sbx_fail(e, SBX_ENOMEM, "bundle: libarchive setup failed");
		goto out;
	}
	if (archive_read_open2(a, &src, NULL, arc_read, arc_skip, NULL) != ARCHIVE_OK) {
		r = sbx_fail(e, SBX_EFORMAT, "bundle: not a tar archive: %s", archive_error_string(a));
		goto out;
	}
	for (int i = 0; i < 4; i++) {
		int64_t size;

		rc = archive_read_next_header(a, &ent);
		if (rc == ARCHIVE_EOF) {
			r = sbx_fail(e, SBX_EFORMAT, "bundle: the archive ends after %d entries, 4 expected", i);
			goto out;
		}
		if (rc != ARCHIVE_OK) {
			r = sbx_fail(e, SBX_EFORMAT, "bundle: entry %d: %s", i + 1, archive_error_string(a));
			goto out;
		}
		r = entry_check(ent, i, e);
		if (r != 0)
			goto out;
		r = SBX_EFORMAT;
		size = archive_entry_size(ent);
		if (i == 3) {
			if ((uint64_t)size > BUNDLE_MAX_PAYLOAD) {
				sbx_fail(e, r, "bundle: payload.enc larger than 2^48 bytes");
				goto out;
			}
			b->payload_len = (uint64_t)size;
			if (archive_read_data_skip(a) != ARCHIVE_OK) {
				sbx_fail(e, r, "bundle: payload.enc: %s", archive_error_string(a));
				goto out;
			}
			continue;
		}
		if (size == 0 || (uint64_t)size > entry_spec[i].cap) {
			sbx_fail(e, r, "bundle: %s is %" PRId64 " bytes (1..%zu allowed)",
			         entry_spec[i].name, size, entry_spec[i].cap);
			goto out;
		}
		if (i == 0) {
			b->manifest = malloc((size_t)size + 1);
			if (b->manifest == NULL) {
				r = sbx_fail(e, SBX_ENOMEM, "bundle: out of memory");
				goto out;
			}
			b->manifest_len = (size_t)size;
			b->manifest[size] = '\0';
			r = entry_data(a, (uint8_t *)b->manifest, (size_t)size, entry_spec[i].name, e);
		} else if (i == 1) {
			b->siglen = (size_t)size;
			r = entry_data(a, b->sig, (size_t)size, entry_spec[i].name, e);
		} else {
			b->ident = malloc((size_t)size);
			if (b->ident == NULL) {
				r = sbx_fail(e, SBX_ENOMEM, "bundle: out of memory");
				goto out;
			}
			b->ident_len = (size_t)size;
			r = entry_data(a, b->ident, (size_t)size, entry_spec[i].name, e);
		}
		if (r != 0)
			goto out;
	}
	rc = archive_read_next_header(a, &ent);
	if (rc != ARCHIVE_EOF) {
		const char *n = rc == ARCHIVE_OK ? archive_entry_pathname(ent) : NULL;

		r = sbx_fail(e, SBX_EFORMAT, "bundle: %s after payload.enc%s%.64s",
		             rc == ARCHIVE_OK ? "an extra entry" : "damaged data",
		             n ? ": " : "", n ? n : "");
		goto out;
	}
	r = 0;
out:
	if (a != NULL)
		archive_read_free(a);
	free(src.buf);
	return r;
}

/* ---- the canonical container ----------------------------------------------- */

static int check_canonical(struct bundle *b, struct sbx_err *e)
{
	const uint8_t *data[3] = { (const uint8_t *)b->manifest, b->sig, b->ident };
	size_t len[3] = { b->manifest_len, b->siglen, b->ident_len };
	uint64_t mtime = bundle_tar_mtime(b->m.sealed_at_ms), end, tail_off;
	uint8_t *want = NULL, *got = NULL;
	size_t cap = 0, n = 0, tail;
	int r = SBX_EFORMAT;

	for (int i = 0; i < 3; i++)
		cap += BUNDLE_TAR_MAX_HEADER + len[i] + BUNDLE_TAR_BLOCK;
	cap += BUNDLE_TAR_MAX_HEADER;
	want = malloc(cap);
	got = malloc(cap);
	if (want == NULL || got == NULL) {
		r = sbx_fail(e, SBX_ENOMEM, "bundle: out of memory");
		goto out;
	}
	for (int i = 0; i < 3; i++) {
		size_t pad = bundle_tar_pad(len[i]);

		n += bundle_tar_header(want + n, entry_spec[i].name, len[i], mtime);
		memcpy(want + n, data[i], len[i]);
		n += len[i];
		memset(want + n, 0, pad);
		n += pad;
	}
	n += bundle_tar_header(want + n, entry_spec[3].name, b->payload_len, mtime);
	b->payload_off = n;
	tail = bundle_tar_pad(b->payload_len) + BUNDLE_TAR_END;
	end = n + b->payload_len + tail;
	if (b->size != end) {
		sbx_fail(e, r, "bundle: the file is %" PRIu64 " bytes but the archive ends at byte %"
		         PRIu64 "%s", b->size, end, b->size > end ? " (trailing bytes)" : "");
		goto out;
	}
	r = src_read(b, 0, got, n, e);
	if (r != 0)
		goto out;
	if (memcmp(want, got, n) != 0) {
		size_t i = 0;

		while (want[i] == got[i])
			i++;
		r = sbx_fail(e, SBX_EFORMAT, "bundle: container byte %zu is not as FORMAT.md section 2 "
		             "fixes it (headers, padding)", i);
		goto out;
	}
	/* Padding after the payload, then the end-of-archive marker: zeros. */
	tail_off = b->payload_off + b->payload_len;
	r = src_read(b, tail_off, got, tail, e);
	if (r != 0)
		goto out;
	for (size_t i = 0; i < tail; i++) {
		if (got[i] != 0) {
			r = sbx_fail(e, SBX_EFORMAT, "bundle: byte %" PRIu64 " after payload.enc is not "
			             "zero padding", tail_off + i);
			goto out;
		}
	}
	r = 0;
out:
	free(want);
	free(got);
	return r;
}

/* ---- open ------------------------------------------------------------------ */

static int open_common(struct bundle *b, struct sbx_err *e)
{
	static const uint8_t payload_header[8] = { 'S', 'B', 'X', 'S', 1, STREAM_AES256GCM,
	                                           STREAM_CHUNK_SHIFT, 0 };
	uint8_t dg[32], hdr[8];
	int r;

	r = walk_archive(b, e);
	if (r != 0)
		return r;
	r = bundle_manifest_parse(b->manifest, b->manifest_len, &b->m, e);
	if (r != 0)
		return r;
	if (identity_decode(b->ident, b->ident_len, &b->id) != 0)
		return sbx_fail(e, SBX_EFORMAT, "bundle: identity.sbxi is not a valid identity file "
		                "(LOG-FORMAT.md section 5)");
	if (hash_sha256(b->ident, b->ident_len, dg) != 0)
		return sbx_fail(e, SBX_ECRYPTO, "bundle: hashing the identity failed");
	if (CRYPTO_memcmp(dg, b->m.identity_sha256, 32) != 0)
		return sbx_fail(e, SBX_EFORMAT, "bundle: identity.sbxi is not the identity the "
		                "manifest names (identity_sha256)");
	if (CRYPTO_memcmp(b->id.appliance_id, b->m.appliance_id, 32) != 0)
		return sbx_fail(e, SBX_EFORMAT, "bundle: the manifest's appliance_id is not the "
		                "identity's");
	if (b->payload_len != b->m.ciphertext_bytes)
		return sbx_fail(e, SBX_EFORMAT, "bundle: payload.enc is %" PRIu64 " bytes, the manifest "
		                "says %" PRIu64, b->payload_len, b->m.ciphertext_bytes);
	r = check_canonical(b, e);
	if (r != 0)
		return r;
	/* The stream header's fixed part is what the manifest's suite names:
	 * the stream reader alone would also take ChaCha20-Poly1305. */
	r = src_read(b, b->payload_off, hdr, sizeof hdr, e);
	if (r != 0)
		return r;
	if (memcmp(hdr, payload_header, sizeof hdr) != 0)
		return sbx_fail(e, SBX_EFORMAT, "bundle: payload.enc does not start with the header of "
		                "suite %s (SBXS 01 01 10 00)", BUNDLE_SUITE);
	if (hash_sha256(b->manifest, b->manifest_len, b->bid) != 0)
		return sbx_fail(e, SBX_ECRYPTO, "bundle: hashing the manifest failed");
	return 0;
}

static struct bundle *bundle_alloc(void)
{
	struct bundle *b = calloc(1, sizeof *b);

	if (b != NULL)
		b->fd = -1;
	return b;
}

int bundle_open(const char *path, struct bundle **out, struct sbx_err *e)
{
	struct bundle *b = bundle_alloc();
	struct stat sb;
	int r;

	*out = NULL;
	if (b == NULL)
		return sbx_fail(e, SBX_ENOMEM, "bundle: out of memory");
	/* O_NONBLOCK: a FIFO named as a bundle must not hang the verifier; it
	 * changes nothing for the regular files accepted below. */
	b->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (b->fd < 0) {
		r = sbx_fail(e, SBX_EIO, "bundle: cannot open %s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(b->fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		r = sbx_fail(e, SBX_EIO, "bundle: %s is not a regular file", path);
		goto out;
	}
	b->size = (uint64_t)sb.st_size;
	r = open_common(b, e);
	if (r != 0)
		goto out;
	*out = b;
	b = NULL;   /* transferred */
out:
	bundle_close(b);
	return r;
}

int bundle_open_mem(const uint8_t *p, size_t len, struct bundle **out, struct sbx_err *e)
{
	struct bundle *b = bundle_alloc();
	int r;

	*out = NULL;
	if (b == NULL)
		return sbx_fail(e, SBX_ENOMEM, "bundle: out of memory");
	b->mem = p;
	b->size = len;
	r = open_common(b, e);
	if (r != 0)
		goto out;
	*out = b;
	b = NULL;   /* transferred */
out:
	bundle_close(b);
	return r;
}

void bundle_close(struct bundle *b)
{
	if (b == NULL)
		return;
	if (b->fd >= 0)
		close(b->fd);
	free(b->manifest);
	free(b->ident);
	free(b);
}

const struct bundle_manifest *bundle_manifest(const struct bundle *b)
{
	return &b->m;
}

const struct identity *bundle_identity(const struct bundle *b)
{
	return &b->id;
}

void bundle_id(const struct bundle *b, uint8_t out[static 32])
{
	memcpy(out, b->bid, 32);
}

const char *bundle_manifest_text(const struct bundle *b, size_t *len)
{
	*len = b->manifest_len;
	return b->manifest;
}

const uint8_t *bundle_signature(const struct bundle *b, size_t *len)
{
	*len = b->siglen;
	return b->sig;
}

const uint8_t *bundle_identity_bytes(const struct bundle *b, size_t *len)
{
	*len = b->ident_len;
	return b->ident;
}

void bundle_payload_span(const struct bundle *b, uint64_t *offset, uint64_t *len)
{
	*offset = b->payload_off;
	*len = b->payload_len;
}

/* ---- the payload, streamed --------------------------------------------------- */

typedef int (*span_fn)(void *arg, const uint8_t *p, size_t n, struct sbx_err *e);

/* Hands payload.enc to fn (may be NULL) in pieces of at most READ_BUF
 * bytes and hashes the same pieces, on a worker thread when `threaded`.
 * fn's first failure is kept in *fn_r and fn is not called again; the hash
 * then goes on to the end if `hash_on` is set and the failure is a verdict
 * on the bundle (SBX_EVERIFY, SBX_EFORMAT), so that the ciphertext's
 * verdict is known too.  Returns 0 when all of payload.enc was hashed (the
 * digest is set), else the reading or hashing failure, or fn's where the
 * pass stopped there. */
static int payload_stream(const struct bundle *b, span_fn fn, void *arg, int threaded,
                          int hash_on, int *fn_r, uint8_t digest[static 32], struct sbx_err *e)
{
	struct readhash *h = NULL;
	uint64_t off = 0;
	int r;

	*fn_r = 0;
	r = readhash_new(READ_BUF, threaded, &h);
	if (r != 0)
		return sbx_fail(e, r, "bundle: out of memory");
	while (off < b->payload_len) {
		size_t n = b->payload_len - off > READ_BUF ? READ_BUF : (size_t)(b->payload_len - off);
		const uint8_t *p;

		if (b->fd >= 0) {
			uint8_t *buf = readhash_buf(h);

			if (buf == NULL) {
				r = sbx_fail(e, SBX_ENOMEM, "bundle: out of memory");
				goto out;
			}
			r = src_read(b, b->payload_off + off, buf, n, e);
			if (r != 0)
				goto out;
			p = buf;
		} else {
			p = b->mem + b->payload_off + off;
		}
		if (readhash_push(h, p, n) != 0) {
			r = sbx_fail(e, SBX_ECRYPTO, "bundle: hashing payload.enc failed");
			goto out;
		}
		if (fn != NULL && *fn_r == 0) {
			*fn_r = fn(arg, p, n, e);
			if (*fn_r != 0 && !(hash_on && (*fn_r == SBX_EVERIFY || *fn_r == SBX_EFORMAT))) {
				r = *fn_r;
				goto out;
			}
		}
		off += n;
	}
	r = readhash_final(h, digest) == 0 ? 0 : sbx_fail(e, SBX_ECRYPTO, "bundle: hashing failed");
out:
	readhash_free(h);
	return r;
}

/* The checks of bundle_verify; the ciphertext's only if `ciphertext`. */
static int verify_common(struct bundle *b, const struct bundle_verify_opts *o,
                         struct bundle_report *rep, int ciphertext, struct sbx_err *e)
{
	EVP_PKEY *pk = NULL;
	uint8_t *pin = NULL;
	size_t pinlen = 0;
	int bad = 0, r;

	memset(rep, 0, sizeof *rep);
	rep->container_ok = rep->manifest_ok = 1;   /* bundle_open accepted them */
	rep->pinned_ok = rep->policy_ok = -1;

	if (identity_sign_pkey(&b->id, &pk) != 0) {
		sbx_fail(e, SBX_EVERIFY, "bundle: the identity's sign_pub is not a P-256 key");
		bad = 1;
	} else if (sig_verify(pk, SIG_NS_BUNDLE, (const uint8_t *)b->manifest, b->manifest_len,
	                      b->sig, b->siglen) != 0) {
		sbx_fail(e, SBX_EVERIFY, "bundle: manifest.sig does not verify under the identity's "
		         "signing key (namespace %s)", SIG_NS_BUNDLE);
		bad = 1;
	} else {
		rep->signature_ok = 1;
	}

	if (identity_check(&b->id, o != NULL ? o->ek_ca_pem : NULL, &rep->identity, e) != 0)
		bad = 1;
	else
		rep->identity_ok = 1;

	if (o != NULL && o->pinned != NULL) {
		rep->pinned_ok = 0;
		if (identity_encode(o->pinned, &pin, &pinlen) != 0) {
			sbx_fail(e, SBX_EVERIFY, "bundle: the pinned identity cannot be encoded");
			bad = 1;
		} else if (pinlen != b->ident_len || CRYPTO_memcmp(pin, b->ident, pinlen) != 0) {
			char got[17], want[17];

			hash_hex(b->id.appliance_id, 8, got);
			hash_hex(o->pinned->appliance_id, 8, want);
			sbx_fail(e, SBX_EVERIFY, "bundle: identity (appliance %s...) is not the pinned "
			         "identity (appliance %s...)", got, want);
			bad = 1;
		} else {
			rep->pinned_ok = 1;
		}
	}

	if (ciphertext) {
		r = bundle_ciphertext_check(b, e);
		if (r == 0)
			rep->ciphertext_ok = 1;
		else if (r != SBX_EVERIFY && r != SBX_EFORMAT)
			goto out;   /* an I/O error says nothing about the bundle */
		else
			bad = 1;
	} else {
		rep->ciphertext_ok = -1;
	}

	if (o != NULL && o->policy_hash != NULL) {
		rep->policy_ok = CRYPTO_memcmp(o->policy_hash, b->m.policy_hash, 32) == 0;
		if (!rep->policy_ok) {
			sbx_fail(e, SBX_EVERIFY, "bundle: sealed under another policy than the one given");
			bad = 1;
		}
	}
	r = bad ? SBX_EVERIFY : 0;
out:
	free(pin);
	EVP_PKEY_free(pk);
	return r;
}

int bundle_verify(struct bundle *b, const struct bundle_verify_opts *o,
                  struct bundle_report *rep, struct sbx_err *e)
{
	return verify_common(b, o, rep, 1, e);
}

int bundle_verify_deferred(struct bundle *b, const struct bundle_verify_opts *o,
                           struct bundle_report *rep, struct sbx_err *e)
{
	return verify_common(b, o, rep, 0, e);
}

int bundle_ciphertext_check(struct bundle *b, struct sbx_err *e)
{
	uint8_t dg[32];
	int fr, r;

	/* On a thread for a large payload: reading the next piece (the
	 * kernel's copy, ~11 % of the time) overlaps the hashing of this one,
	 * so one SHA-256 stream is all that bounds it. */
	r = payload_stream(b, NULL, NULL, b->payload_len >= THREAD_MIN, 0, &fr, dg, e);
	if (r != 0)
		return r;
	if (CRYPTO_memcmp(dg, b->m.ciphertext_sha256, 32) != 0)
		return sbx_fail(e, SBX_EVERIFY, "bundle: payload.enc does not match the manifest's "
		                "ciphertext_sha256");
	return 0;
}

struct dec_ctx {
	struct stream_dec *d;
	struct payload_p *pp;
	struct sbx_err *e;
};

static int dec_emit(void *arg, const uint8_t *buf, size_t len)
{
	struct dec_ctx *c = arg;

	return payload_p_push(c->pp, buf, len, c->e);
}

static int dec_push(void *arg, const uint8_t *p, size_t n, struct sbx_err *e)
{
	struct dec_ctx *c = arg;

	return stream_dec_push(c->d, p, n, e);
}

/* bundle_payload_read and bundle_payload_open: ct_ok NULL stops at the
 * first failure, as bundle_payload_read always did. */
static int payload_decrypt(struct bundle *b, const uint8_t cek[static 32],
                           const struct bundle_item_sink *sink, bundle_item_end_fn end,
                           int *ct_ok, struct sbx_err *e)
{
	struct dec_ctx c = { NULL, NULL, e };
	struct payload_summary sum;
	uint8_t ad[PAYLOAD_MAX_AD], dg[32];
	size_t adlen = 0;
	int ok = -1, fr = 0, r;

	r = payload_ad(&b->m, ad, &adlen);
	if (r != 0) {
		sbx_fail(e, r, "bundle: case id too long for the payload context");
		goto out;
	}
	r = payload_p_new(sink, &c.pp, e);
	if (r != 0)
		goto out;
	payload_p_set_end(c.pp, end);
	r = stream_dec_new(cek, ad, adlen, NULL, dec_emit, &c, &c.d, e);
	if (r != 0)
		goto out;
	r = payload_stream(b, dec_push, &c, b->payload_len >= THREAD_MIN, ct_ok != NULL, &fr, dg, e);
	if (r == 0)
		ok = CRYPTO_memcmp(dg, b->m.ciphertext_sha256, 32) == 0;
	if (fr != 0 || r != 0) {
		/* The payload's verdict first; a read failure after it changes
		 * only what is known of the ciphertext. */
		r = fr != 0 ? fr : r;
		goto out;
	}
	r = stream_dec_final(c.d, e);
	if (r != 0)
		goto out;
	if (!ok) {
		r = sbx_fail(e, SBX_EVERIFY, "bundle: payload.enc does not match the manifest's "
		             "ciphertext_sha256");
		goto out;
	}
	r = payload_p_finish(c.pp, &sum, e);
	if (r != 0)
		goto out;
	r = SBX_EVERIFY;
	if (sum.items != b->m.items) {
		sbx_fail(e, r, "bundle: the payload holds %" PRIu64 " items, the manifest says %" PRIu64,
		         sum.items, b->m.items);
		goto out;
	}
	if (sum.bytes != b->m.plaintext_bytes) {
		sbx_fail(e, r, "bundle: the payload is %" PRIu64 " bytes, the manifest says %" PRIu64,
		         sum.bytes, b->m.plaintext_bytes);
		goto out;
	}
	if (CRYPTO_memcmp(sum.index_sha256, b->m.index_sha256, 32) != 0) {
		sbx_fail(e, r, "bundle: the payload's index does not match the manifest's index_sha256");
		goto out;
	}
	r = 0;
out:
	if (ct_ok != NULL)
		*ct_ok = ok;
	stream_dec_free(c.d);
	payload_p_free(c.pp);
	return r;
}

int bundle_payload_read(struct bundle *b, const uint8_t cek[static 32],
                        const struct bundle_item_sink *sink, struct sbx_err *e)
{
	return payload_decrypt(b, cek, sink, NULL, NULL, e);
}

int bundle_payload_open(struct bundle *b, const uint8_t cek[static 32],
                        const struct bundle_item_sink *sink, bundle_item_end_fn end,
                        int *ciphertext_ok, struct sbx_err *e)
{
	return payload_decrypt(b, cek, sink, end, ciphertext_ok, e);
}

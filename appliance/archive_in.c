#include "appliance/archive_in.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "appliance/reads.h"

#define SRC_BLOCK  65536
#define PEEK_BYTES 512

void archive_caps_default(struct archive_caps *c)
{
	c->max_entry_bytes = (uint64_t)1 << 30;
	c->max_total_bytes = (uint64_t)64 << 30;
	c->max_entries = 4000000;
	c->max_ratio = 100;
	c->ratio_min_bytes = (uint64_t)16 << 20;
	c->max_nesting = 1;
	c->max_nested_bytes = (uint64_t)512 << 20;
	c->max_name = 1024;
}

int archive_sniff(const uint8_t *p, size_t n)
{
	if (n >= 4 && p[0] == 'P' && p[1] == 'K' &&
	    ((p[2] == 3 && p[3] == 4) || (p[2] == 5 && p[3] == 6)))
		return ARCHIVE_KIND_ZIP;
	if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b)
		return ARCHIVE_KIND_GZIP;
	if (n >= 262 && memcmp(p + 257, "ustar", 5) == 0)
		return ARCHIVE_KIND_TAR;
	return ARCHIVE_KIND_NONE;
}

/* Bytes for libarchive: a file read with pread, or memory. */
struct src {
	int fd;
	const uint8_t *mem;
	uint64_t size, off;
	uint64_t consumed;      /* handed to libarchive: the compressed side of the ratio */
	uint8_t *buf;
};

static la_ssize_t src_read(struct archive *a, void *ud, const void **out)
{
	struct src *s = ud;
	size_t want;

	if (s->off >= s->size)
		return 0;
	want = s->size - s->off > SRC_BLOCK ? SRC_BLOCK : (size_t)(s->size - s->off);
	if (s->mem != NULL) {
		*out = s->mem + s->off;
	} else {
		ssize_t k;

		do
			k = pread(s->fd, s->buf, want, (off_t)s->off);
		while (k < 0 && errno == EINTR);
		if (k < 0) {
			archive_set_error(a, errno, "read failed");
			return -1;
		}
		if (k == 0)
			return 0;
		want = (size_t)k;
		*out = s->buf;
	}
	s->off += want;
	s->consumed += want;
	return (la_ssize_t)want;
}

/* State shared by an input and the archives nested in it. */
struct walk {
	const struct archive_caps *caps;
	const struct archive_visitor *v;
	struct archive_stats st;
	uint32_t next_container;
	uint64_t ordinal;
	struct sbx_err *e;
	int stop;
};

/* One archive being walked. */
struct cont {
	struct walk *w;
	struct archive *a;
	struct src *s;
	const char *label;
	uint32_t id;
	unsigned depth;
	uint64_t unc;           /* uncompressed bytes out of this archive */
};

struct archive_file {
	struct cont *c;
	const char *name;
	uint64_t ordinal;
	uint8_t peek[PEEK_BYTES];
	size_t peek_len, peek_off;
	uint64_t got;           /* bytes of the entry read from libarchive */
	int eof;
};

const char *archive_file_name(const struct archive_file *f)     { return f->name; }
const char *archive_file_label(const struct archive_file *f)    { return f->c->label; }
uint32_t archive_file_container(const struct archive_file *f)   { return f->c->id; }
uint64_t archive_file_ordinal(const struct archive_file *f)     { return f->ordinal; }

/* An entry name fit for one error line: printable, bounded. */
static void shown(const char *raw, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; raw != NULL && raw[i] != '\0' && o + 4 < cap; i++) {
		unsigned char ch = (unsigned char)raw[i];

		out[o++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
	}
	if (raw != NULL && o + 4 >= cap) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

static int efail(struct cont *c, const char *raw, const char *what)
{
	char nm[160];

	shown(raw, nm, sizeof nm);
	return sbx_fail(c->w->e, SBX_EFORMAT, "%s!%s: %s", c->label, nm, what);
}

static int afail(struct cont *c, const char *raw, const char *what)
{
	const char *le = archive_error_string(c->a);
	char nm[160], msg[200];
	size_t n;

	snprintf(msg, sizeof msg, "%s%s%s", what, le ? ": " : "", le ? le : "");
	/* libarchive's messages may end in a newline: keep one line. */
	for (n = 0; msg[n] != '\0'; n++)
		if ((unsigned char)msg[n] < 0x20 || msg[n] == 0x7f)
			msg[n] = ' ';
	while (n > 0 && msg[n - 1] == ' ')
		msg[--n] = '\0';
	if (raw == NULL)
		return sbx_fail(c->w->e, SBX_EFORMAT, "%s: %s", c->label, msg);
	shown(raw, nm, sizeof nm);
	return sbx_fail(c->w->e, SBX_EFORMAT, "%s!%s: %s", c->label, nm, msg);
}

/* Counts n more uncompressed bytes of f against every cap. */
static int account(struct archive_file *f, size_t n)
{
	struct cont *c = f->c;
	const struct archive_caps *cp = c->w->caps;
	char msg[128];

	f->got += n;
	c->unc += n;
	c->w->st.bytes += n;
	if (f->got > cp->max_entry_bytes) {
		snprintf(msg, sizeof msg, "entry larger than the cap of %llu bytes",
		         (unsigned long long)cp->max_entry_bytes);
		return efail(c, f->name, msg);
	}
	if (c->w->st.bytes > cp->max_total_bytes) {
		snprintf(msg, sizeof msg, "archive content over the cap of %llu bytes in total",
		         (unsigned long long)cp->max_total_bytes);
		return efail(c, f->name, msg);
	}
	if (c->unc > cp->ratio_min_bytes && c->unc / (c->s->consumed ? c->s->consumed : 1) >= cp->max_ratio) {
		snprintf(msg, sizeof msg, "compression ratio over %u (a decompression bomb?)",
		         (unsigned)cp->max_ratio);
		return efail(c, f->name, msg);
	}
	return 0;
}

int archive_file_read(struct archive_file *f, void *buf, size_t cap, size_t *got,
                      struct sbx_err *e)
{
	la_ssize_t k;

	*got = 0;
	if (f->peek_off < f->peek_len) {
		size_t n = f->peek_len - f->peek_off;

		if (n > cap)
			n = cap;
		memcpy(buf, f->peek + f->peek_off, n);
		f->peek_off += n;
		*got = n;
		return 0;
	}
	if (f->eof || cap == 0)
		return 0;
	k = archive_read_data(f->c->a, buf, cap);
	if (k < 0)
		return afail(f->c, f->name, "cannot read entry data");
	if (k == 0) {
		f->eof = 1;
		return 0;
	}
	*got = (size_t)k;
	return account(f, (size_t)k);
}

/* ---- zip central directory ---- */

/* The zip's central directory, parsed here rather than through libarchive's
 * seeking reader (which takes names from the local headers and so cannot
 * see a directory that disagrees with them).  The streaming reader then
 * walks the local headers, and every entry must match: same order, name,
 * kind and size; the directory's entries must lie one after another from
 * offset 0 without overlapping (overlapping entries are how zip bombs reach
 * huge ratios without nesting). */
struct cd_entry {
	char *name;
	int type;               /* AE_IFREG or AE_IFDIR (anything else is refused) */
	uint64_t usize, csize, off;
};

struct cd_list {
	struct cd_entry *v;
	size_t n;
};

static void cd_free(struct cd_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	memset(l, 0, sizeof *l);
}

static int src_pread(struct src *s, uint64_t off, void *buf, size_t n)
{
	size_t got = 0;

	if (off > s->size || n > s->size - off)
		return -1;
	if (s->mem != NULL) {
		memcpy(buf, s->mem + off, n);
		return 0;
	}
	while (got < n) {
		ssize_t k = pread(s->fd, (uint8_t *)buf + got, n - got, (off_t)(off + got));

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		got += (size_t)k;
	}
	return 0;
}

static uint64_t rd_le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static int cdfail(struct cont *c, const char *what)
{
	return sbx_fail(c->w->e, SBX_EFORMAT, "%s: zip central directory: %s", c->label, what);
}

/* One directory record at p[0..n): fills *ce, returns its length or 0. */
static size_t cd_record(struct cont *c, const uint8_t *p, size_t n, struct cd_entry *ce, int *err)
{
	size_t nl, xl, cl, len;
	uint32_t mode, madeby;
	uint64_t usize, csize, off;
	const uint8_t *x;

	*err = 0;
	if (n < 46 || rd_le(p, 4) != 0x02014b50) {
		*err = cdfail(c, "bad entry header");
		return 0;
	}
	madeby = (uint32_t)rd_le(p + 4, 2) >> 8;
	nl = rd_le(p + 28, 2);
	xl = rd_le(p + 30, 2);
	cl = rd_le(p + 32, 2);
	len = 46 + nl + xl + cl;
	if (len > n) {
		*err = cdfail(c, "entry runs past the directory");
		return 0;
	}
	if (rd_le(p + 8, 2) & 1) {
		*err = efail(c, (const char *)"(encrypted)", "encrypted entry refused");
		return 0;
	}
	csize = rd_le(p + 20, 4);
	usize = rd_le(p + 24, 4);
	off = rd_le(p + 42, 4);
	/* Zip64 extra field: the 8-byte values replace the saturated ones. */
	x = p + 46 + nl;
	for (size_t i = 0; i + 4 <= xl;) {
		size_t id = rd_le(x + i, 2), sz = rd_le(x + i + 2, 2), k = i + 4;

		if (i + 4 + sz > xl)
			break;
		if (id == 1) {
			if (usize == 0xffffffffu && k + 8 <= i + 4 + sz) {
				usize = rd_le(x + k, 8);
				k += 8;
			}
			if (csize == 0xffffffffu && k + 8 <= i + 4 + sz) {
				csize = rd_le(x + k, 8);
				k += 8;
			}
			if (off == 0xffffffffu && k + 8 <= i + 4 + sz)
				off = rd_le(x + k, 8);
		}
		i += 4 + sz;
	}
	ce->name = strndup((const char *)p + 46, nl);
	if (ce->name == NULL || strlen(ce->name) != nl) {
		*err = ce->name == NULL ? sbx_fail(c->w->e, SBX_ENOMEM, "%s: out of memory", c->label)
		                        : cdfail(c, "NUL in an entry name");
		return 0;
	}
	mode = madeby == 3 ? (uint32_t)(rd_le(p + 38, 4) >> 16) : 0;
	switch (mode & 0170000) {
	case 0:
	case 0100000:
		ce->type = nl > 0 && p[46 + nl - 1] == '/' ? AE_IFDIR : AE_IFREG;
		break;
	case 0040000:
		ce->type = AE_IFDIR;
		break;
	case 0120000:
		*err = efail(c, ce->name, "symbolic link refused");
		return 0;
	case 0020000:
	case 0060000:
		*err = efail(c, ce->name, "device refused");
		return 0;
	case 0010000:
		*err = efail(c, ce->name, "FIFO refused");
		return 0;
	default:
		*err = efail(c, ce->name, "unknown entry type refused");
		return 0;
	}
	ce->usize = usize;
	ce->csize = csize;
	ce->off = off;
	return len;
}

static int cd_read(struct cont *c, struct cd_list *l)
{
	struct src *s = c->s;
	uint8_t tail[65557], rec[56];
	size_t tn = s->size < sizeof tail ? (size_t)s->size : sizeof tail, pos = 0;
	uint64_t eocd = 0, ntot, cdsize, cdoff, limit, next = 0;
	uint8_t *cd = NULL;
	int found = 0, r = SBX_EFORMAT;

	if (tn < 22 || src_pread(s, s->size - tn, tail, tn) != 0)
		return cdfail(c, "no end record");
	/* The end record, with its comment reaching exactly to the end. */
	for (size_t i = tn - 22 + 1; i-- > 0;) {
		if (rd_le(tail + i, 4) == 0x06054b50 && i + 22 + rd_le(tail + i + 20, 2) == tn) {
			eocd = s->size - tn + i;
			pos = i;
			found = 1;
			break;
		}
	}
	if (!found)
		return cdfail(c, "no end record");
	if (rd_le(tail + pos + 4, 2) != 0 || rd_le(tail + pos + 6, 2) != 0 ||
	    rd_le(tail + pos + 8, 2) != rd_le(tail + pos + 10, 2))
		return cdfail(c, "multi-disk archives are not supported");
	ntot = rd_le(tail + pos + 10, 2);
	cdsize = rd_le(tail + pos + 12, 4);
	cdoff = rd_le(tail + pos + 16, 4);
	limit = eocd;
	if (ntot == 0xffff || cdsize == 0xffffffffu || cdoff == 0xffffffffu) {
		uint64_t e64;

		if (eocd < 20 || src_pread(s, eocd - 20, rec, 20) != 0 || rd_le(rec, 4) != 0x07064b50)
			return cdfail(c, "zip64 locator missing");
		e64 = rd_le(rec + 8, 8);
		if (e64 > eocd - 20 || src_pread(s, e64, rec, 56) != 0 || rd_le(rec, 4) != 0x06064b50)
			return cdfail(c, "zip64 end record missing");
		ntot = rd_le(rec + 32, 8);
		cdsize = rd_le(rec + 40, 8);
		cdoff = rd_le(rec + 48, 8);
		limit = e64;
	}
	if (cdoff > limit || cdsize != limit - cdoff)
		return cdfail(c, "directory not where the end record says");
	if (ntot > c->w->caps->max_entries || cdsize > ((uint64_t)1 << 30))
		return sbx_fail(c->w->e, SBX_EFORMAT, "%s: more than %llu entries", c->label,
		                (unsigned long long)c->w->caps->max_entries);
	if (ntot * 46 > cdsize)
		return cdfail(c, "entry count larger than the directory");
	cd = malloc(cdsize ? (size_t)cdsize : 1);
	l->v = calloc(ntot ? (size_t)ntot : 1, sizeof *l->v);
	if (cd == NULL || l->v == NULL) {
		r = sbx_fail(c->w->e, SBX_ENOMEM, "%s: out of memory", c->label);
		goto out;
	}
	if (src_pread(s, cdoff, cd, (size_t)cdsize) != 0) {
		r = cdfail(c, "cannot read it");
		goto out;
	}
	pos = 0;
	for (uint64_t i = 0; i < ntot; i++) {
		struct cd_entry *ce = &l->v[i];
		size_t k = cd_record(c, cd + pos, (size_t)cdsize - pos, ce, &r);

		l->n++;
		if (k == 0)
			goto out;
		pos += k;
		/* Entries in file order, each after the previous one's data. */
		if (ce->off != next && !(i > 0 && ce->off > next)) {
			r = cdfail(c, i == 0 ? "data before the first entry" : "entries overlap");
			goto out;
		}
		if (ce->off > cdoff || ce->csize > cdoff - ce->off || 30 > cdoff - ce->off - ce->csize) {
			r = cdfail(c, "entry data runs into the directory");
			goto out;
		}
		/* 30: the fixed part of a local header (its name is checked
		 * against the streaming reader's). */
		next = ce->off + 30 + ce->csize;
	}
	if (pos != cdsize) {
		r = cdfail(c, "bytes after the last entry");
		goto out;
	}
	r = 0;
out:
	free(cd);
	return r;
}

/* ---- walking ---- */

static int walk_src(struct walk *w, struct src *s, const char *label, unsigned depth);

static int type_check(struct cont *c, struct archive_entry *ent, const char *raw)
{
	/* A tar hard link may come with no file type at all: ask first. */
	if (archive_entry_hardlink(ent) != NULL)
		return efail(c, raw, "hard link refused");
	switch (archive_entry_filetype(ent)) {
	case AE_IFREG:
	case AE_IFDIR:
		break;
	case AE_IFLNK:
		return efail(c, raw, "symbolic link refused");
	case AE_IFCHR:
	case AE_IFBLK:
		return efail(c, raw, "device refused");
	case AE_IFIFO:
		return efail(c, raw, "FIFO refused");
	case AE_IFSOCK:
		return efail(c, raw, "socket refused");
	default:
		return efail(c, raw, "unknown entry type refused");
	}
	if (archive_entry_symlink(ent) != NULL)
		return efail(c, raw, "symbolic link refused");
	if (archive_entry_is_encrypted(ent))
		return efail(c, raw, "encrypted entry refused");
	if (archive_entry_sparse_count(ent) > 0)
		return efail(c, raw, "sparse entry refused");
	return 0;
}

/* A nested archive: all of it into memory (capped), then walked. */
static int nested(struct archive_file *f, int kind)
{
	struct cont *c = f->c;
	const struct archive_caps *cp = c->w->caps;
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, got;
	struct src s2;
	char *label = NULL;
	int r;

	if (c->depth + 1 > cp->max_nesting) {
		char msg[96];

		snprintf(msg, sizeof msg, "archive nested more than %u level%s deep (%s)",
		         cp->max_nesting, cp->max_nesting == 1 ? "" : "s",
		         kind == ARCHIVE_KIND_ZIP ? "zip" : kind == ARCHIVE_KIND_TAR ? "tar" : "gzip");
		return efail(c, f->name, msg);
	}
	for (;;) {
		if (cap - len < SRC_BLOCK) {
			size_t ncap = cap ? cap * 2 : (size_t)1 << 20;
			uint8_t *nb;

			if (cap >= cp->max_nested_bytes + SRC_BLOCK) {
				r = efail(c, f->name, "nested archive over the in-memory cap");
				goto out;
			}
			nb = realloc(buf, ncap);
			if (nb == NULL) {
				r = sbx_fail(c->w->e, SBX_ENOMEM, "%s: out of memory", c->label);
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
		r = archive_file_read(f, buf + len, cap - len, &got, c->w->e);
		if (r != 0)
			goto out;
		if (got == 0)
			break;
		len += got;
		if (len > cp->max_nested_bytes) {
			r = efail(c, f->name, "nested archive over the in-memory cap");
			goto out;
		}
	}
	if (asprintf(&label, "%s!%s", c->label, f->name) < 0) {
		label = NULL;
		r = sbx_fail(c->w->e, SBX_ENOMEM, "%s: out of memory", c->label);
		goto out;
	}
	memset(&s2, 0, sizeof s2);
	s2.fd = -1;
	s2.mem = buf;
	s2.size = len;
	r = walk_src(c->w, &s2, label, c->depth + 1);
out:
	free(buf);
	free(label);
	return r;
}

static int entry(struct cont *c, struct archive_entry *ent, struct reads_idset *names,
                 const struct cd_list *cd, size_t idx)
{
	const struct archive_caps *cp = c->w->caps;
	const char *raw = archive_entry_pathname(ent);
	struct archive_file *f = NULL;
	char *norm = NULL;
	const char *why = NULL;
	size_t rn, got;
	int r, kind, is_dir;
	int64_t want;

	c->w->st.entries++;
	if (c->w->st.entries > cp->max_entries) {
		char msg[64];

		snprintf(msg, sizeof msg, "more than %llu entries", (unsigned long long)cp->max_entries);
		return sbx_fail(c->w->e, SBX_EFORMAT, "%s: %s", c->label, msg);
	}
	if (raw == NULL || raw[0] == '\0')
		return efail(c, "", "entry without a name");
	r = type_check(c, ent, raw);
	if (r != 0)
		return r;
	is_dir = archive_entry_filetype(ent) == AE_IFDIR;
	if (cd != NULL) {
		if (idx >= cd->n || strcmp(cd->v[idx].name, raw) != 0 ||
		    cd->v[idx].type != (int)archive_entry_filetype(ent))
			return efail(c, raw, "zip central directory disagrees with the local headers");
	}
	rn = strlen(raw);
	if (rn > cp->max_name)
		return efail(c, raw, "entry name too long");
	if (is_dir && rn > 0 && raw[rn - 1] == '/')
		rn--;
	norm = malloc(cp->max_name + 1);
	if (norm == NULL)
		return sbx_fail(c->w->e, SBX_ENOMEM, "%s: out of memory", c->label);
	if (rn == 1 && raw[0] == '.' && is_dir) {
		free(norm);
		return 0;       /* "./" of a tar made with -C dir . */
	}
	if (reads_path_norm(raw, rn, norm, cp->max_name + 1, &why) != 0) {
		r = efail(c, raw, why);
		goto out;
	}
	if (is_dir) {
		r = 0;
		goto out;
	}
	r = reads_idset_add(names, norm, strlen(norm), 0);
	if (r == SBX_EEXIST) {
		r = efail(c, raw, "duplicate entry name");
		goto out;
	}
	if (r != 0) {
		r = sbx_fail(c->w->e, r, "%s: out of memory", c->label);
		goto out;
	}
	f = calloc(1, sizeof *f);
	if (f == NULL) {
		r = sbx_fail(c->w->e, SBX_ENOMEM, "%s: out of memory", c->label);
		goto out;
	}
	f->c = c;
	f->name = norm;
	f->ordinal = c->w->ordinal++;
	/* Peek at the first bytes: a nested archive is walked, not handed out. */
	while (f->peek_len < PEEK_BYTES && !f->eof) {
		la_ssize_t k = archive_read_data(c->a, f->peek + f->peek_len, PEEK_BYTES - f->peek_len);

		if (k < 0) {
			r = afail(c, raw, "cannot read entry data");
			goto out;
		}
		if (k == 0)
			f->eof = 1;
		else if ((r = account(f, (size_t)k)) != 0)
			goto out;
		f->peek_len += (size_t)(k > 0 ? k : 0);
	}
	kind = archive_sniff(f->peek, f->peek_len);
	if (kind != ARCHIVE_KIND_NONE) {
		r = nested(f, kind);
		if (r < 0)
			goto out;
	} else {
		c->w->st.files++;
		r = c->w->v->on_file(c->w->v->ctx, f, c->w->e);
		if (r < 0)
			goto out;
		if (r == 1) {
			c->w->stop = 1;
			r = 0;
			goto out;
		}
	}
	if (r == 0 && c->w->stop)
		goto out;
	/* Whatever the visitor left is read too: caps and sizes hold for all. */
	{
		uint8_t *sink = malloc(SRC_BLOCK);

		if (sink == NULL) {
			r = sbx_fail(c->w->e, SBX_ENOMEM, "%s: out of memory", c->label);
			goto out;
		}
		do
			r = archive_file_read(f, sink, SRC_BLOCK, &got, c->w->e);
		while (r == 0 && got > 0);
		free(sink);
		if (r != 0)
			goto out;
	}
	want = archive_entry_size_is_set(ent) ? archive_entry_size(ent) : -1;
	if (want >= 0 && (uint64_t)want != f->got) {
		r = efail(c, raw, "entry data does not match its recorded size");
		goto out;
	}
	if (cd != NULL && cd->v[idx].usize != f->got) {
		r = efail(c, raw, "zip central directory size disagrees with the entry data");
		goto out;
	}
	r = 0;
out:
	free(f);
	free(norm);
	return r;
}

static int walk_src(struct walk *w, struct src *s, const char *label, unsigned depth)
{
	struct cont c;
	struct cd_list cd;
	struct reads_idset *names = NULL;
	struct archive_entry *ent;
	uint8_t head[262];
	size_t hn = 0, idx = 0;
	int r = SBX_EFORMAT, kind, ar;

	memset(&c, 0, sizeof c);
	memset(&cd, 0, sizeof cd);
	c.w = w;
	c.s = s;
	c.label = label;
	c.depth = depth;
	c.id = w->next_container++;
	w->st.containers++;
	if (s->mem != NULL) {
		hn = s->size < sizeof head ? (size_t)s->size : sizeof head;
		memcpy(head, s->mem, hn);
	} else {
		ssize_t k;

		do
			k = pread(s->fd, head, sizeof head, 0);
		while (k < 0 && errno == EINTR);
		if (k < 0) {
			r = sbx_fail(w->e, SBX_EIO, "%s: read: %s", label, strerror(errno));
			goto out;
		}
		hn = (size_t)k;
	}
	kind = archive_sniff(head, hn);
	if (kind == ARCHIVE_KIND_NONE) {
		r = sbx_fail(w->e, SBX_EFORMAT, "%s: not a zip, tar or tar.gz archive", label);
		goto out;
	}
	if (kind == ARCHIVE_KIND_ZIP && (r = cd_read(&c, &cd)) != 0)
		goto out;
	names = reads_idset_new();
	c.a = archive_read_new();
	if (names == NULL || c.a == NULL) {
		r = sbx_fail(w->e, SBX_ENOMEM, "%s: out of memory", label);
		goto out;
	}
	if (kind == ARCHIVE_KIND_ZIP) {
		archive_read_support_format_zip_streamable(c.a);
	} else {
		archive_read_support_format_tar(c.a);
		archive_read_support_filter_gzip(c.a);
	}
	archive_read_set_read_callback(c.a, src_read);
	archive_read_set_callback_data(c.a, s);
	s->off = 0;
	s->consumed = 0;
	if (archive_read_open1(c.a) != ARCHIVE_OK) {
		r = afail(&c, NULL, "cannot open archive");
		goto out;
	}
	for (;;) {
		ar = archive_read_next_header(c.a, &ent);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar != ARCHIVE_OK) {
			r = afail(&c, NULL, "bad archive header");
			goto out;
		}
		r = entry(&c, ent, names, kind == ARCHIVE_KIND_ZIP ? &cd : NULL, idx);
		if (r != 0)
			goto out;
		idx++;
		if (w->stop)
			break;
	}
	if (!w->stop && kind == ARCHIVE_KIND_ZIP && idx != cd.n) {
		r = sbx_fail(w->e, SBX_EFORMAT, "%s: zip central directory lists %zu entries, the local headers %zu",
		             label, cd.n, idx);
		goto out;
	}
	r = 0;
out:
	if (c.a != NULL)
		archive_read_free(c.a);
	reads_idset_free(names);
	cd_free(&cd);
	return r;
}

static int walk(struct src *s, const char *label, const struct archive_caps *caps,
                const struct archive_visitor *v, struct archive_stats *st, struct sbx_err *e)
{
	struct walk w;
	struct archive_caps dflt;
	int r;

	if (caps == NULL) {
		archive_caps_default(&dflt);
		caps = &dflt;
	}
	memset(&w, 0, sizeof w);
	w.caps = caps;
	w.v = v;
	w.e = e;
	r = walk_src(&w, s, label != NULL ? label : "archive", 0);
	if (st != NULL)
		*st = w.st;
	return r;
}

int archive_walk_fd(int fd, const char *label, const struct archive_caps *caps,
                    const struct archive_visitor *v, struct archive_stats *st, struct sbx_err *e)
{
	struct src s;
	struct stat sb;
	int r;

	memset(&s, 0, sizeof s);
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
		return sbx_fail(e, SBX_EIO, "%s: not a regular file", label);
	s.fd = fd;
	s.size = (uint64_t)sb.st_size;
	s.buf = malloc(SRC_BLOCK);
	if (s.buf == NULL)
		return sbx_fail(e, SBX_ENOMEM, "%s: out of memory", label);
	r = walk(&s, label, caps, v, st, e);
	free(s.buf);
	return r;
}

int archive_walk_mem(const void *p, size_t n, const char *label, const struct archive_caps *caps,
                     const struct archive_visitor *v, struct archive_stats *st, struct sbx_err *e)
{
	struct src s;

	memset(&s, 0, sizeof s);
	s.fd = -1;
	s.mem = p;
	s.size = n;
	return walk(&s, label, caps, v, st, e);
}

#include "appliance/ingest_child.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "appliance/csv.h"
#include "appliance/jsonl.h"
#include "appliance/seccomp.h"

#define IO_BUF   ((size_t)256 << 10)
#define NO_CONT  UINT32_MAX
#define LABEL_MAX 1900          /* source labels sent to the parent */

void ingest_opts_default(struct ingest_opts *o)
{
	memset(o, 0, sizeof *o);
	archive_caps_default(&o->caps);
	ingest_limits_default(&o->lim);
	o->max_jsonl_line = JSONL_MAX_LINE_DEFAULT;
	o->timeout_s = 300;
}

/* ---- the child's work ---- */

enum { K_CSV = 1, K_JSONL, K_ARCHIVE };

/* A reference from a read to an image. */
struct ref {
	uint32_t input, container, src;
	uint8_t kind;
	uint64_t line;
	uint64_t key_off;       /* container (4 bytes) + full name: the lookup key */
	uint32_t key_len;
	uint64_t path_off;      /* the path as the read has it */
	uint64_t id_off;        /* the read's vendor id */
	uint64_t next;          /* next ref to the same entry, 1-based; 0 none */
};

struct job {
	const struct ingest_opts *o;
	const struct mapping *m;
	const struct ingest_input *in;
	size_t n;
	struct ingest_proto_w *w;
	struct sbx_err *e;
	int pass;
	int *kind;
	uint64_t *last_reads;           /* per input: ordinal of its last reads file, +1 */
	uint64_t *nreads1, *nreads2;    /* per input, pass 1 and 2 */
	struct stat *st0;
	struct reads_idset *ids;        /* vendor ids (keys only: 2M ids must fit in 64 MB) */
	struct reads_idset *entries;    /* container + name -> size << 2 | magic */
	struct reads_idset *targets;    /* container + name -> head | tail << 32 (refs, 1-based) */
	struct ref *refs;
	size_t nrefs, caprefs;
	char *arena;
	size_t alen, acap;
	char **sources;                 /* labels of reads files, by ref.src */
	size_t nsources;
	uint64_t reads, images, image_bytes, reads_files, archive_files, targets_in_archives;
	uint64_t delivered;             /* pass 3, current input */
	uint64_t refs_in_input;
	/* the reads file being parsed */
	uint32_t cur_input, cur_container, cur_src;
	const char *cur_dir;
	size_t cur_dir_len;
	const char *cur_label;
	uint8_t *buf;
	/* A duplicate id found in pass 1.  The id set keeps no line numbers
	 * (they would cost 8-16 bytes per id), so the pass that names the
	 * first occurrence reads the inputs again, once, to find it. */
	char *dup_id;
	char *dup_label;
	uint64_t dup_line;
	uint32_t dup_src;
	uint32_t loc_src;               /* PASS_LOCATE: sources seen so far */
};

/* Pass 1 checks, 2 sends the reads, 3 the images; PASS_LOCATE looks for
 * the first occurrence of a duplicate id, after pass 1 found the second. */
enum { PASS_LOCATE = 4 };

static int jfail(struct job *j, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int jfail(struct job *j, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return sbx_fail(j->e, code, "%s", msg);
}

static int arena_put(struct job *j, const void *p, size_t n, uint64_t *off)
{
	if (n + 1 > j->acap - j->alen) {
		size_t cap = j->acap ? j->acap : (size_t)1 << 20;
		char *na;

		while (n + 1 > cap - j->alen)
			cap *= 2;
		na = realloc(j->arena, cap);
		if (na == NULL)
			return jfail(j, SBX_ENOMEM, "ingest: out of memory");
		j->arena = na;
		j->acap = cap;
	}
	memcpy(j->arena + j->alen, p, n);
	j->arena[j->alen + n] = '\0';
	*off = j->alen;
	j->alen += n + 1;
	return 0;
}

/* A label for messages to the parent: bounded, cut at a character edge. */
static const char *short_label(const char *l, char *buf, size_t cap)
{
	size_t n = strlen(l), k;

	if (n <= LABEL_MAX)
		return l;
	k = n - (LABEL_MAX - 3);
	while (k < n && ((unsigned char)l[k] & 0xc0) == 0x80)
		k++;
	snprintf(buf, cap, "...%s", l + k);
	return buf;
}

static int open_beneath(int dirfd, const char *rel)
{
	struct open_how how;

	memset(&how, 0, sizeof how);
	how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
	return (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
}

static uint32_t image_cap(const struct job *j, int kind)
{
	return kind == INGEST_IMAGE_PLATE ? j->o->lim.max_plate_image : j->o->lim.max_overview_image;
}

static const char *kind_field(int kind)
{
	return kind == INGEST_IMAGE_PLATE ? "plate_image" : "overview_image";
}

static int pread_all(int fd, uint8_t *p, size_t n, uint64_t off, size_t *got)
{
	*got = 0;
	while (*got < n) {
		ssize_t k = pread(fd, p + *got, n - *got, (off_t)(off + *got));

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		if (k == 0)
			break;
		*got += (size_t)k;
	}
	return 0;
}

/* Opens an image next to a plain reads file and checks it: a regular file
 * inside the directory (no symlink anywhere), within the size cap, with
 * JPEG or PNG magic.  Returns the fd (caller closes) or < 0 with e set. */
static int plain_image(struct job *j, uint32_t input, const char *src, uint64_t line, int kind,
                       const char *path, uint64_t *size)
{
	const struct ingest_input *in = &j->in[input];
	struct stat sb;
	uint8_t magic[8];
	size_t got;
	int fd, r;

	if (in->dirfd < 0)
		return jfail(j, SBX_EINVAL, "%s line %llu, field %s: %s: no directory to look in",
		             src, (unsigned long long)line, kind_field(kind), path);
	fd = open_beneath(in->dirfd, path);
	if (fd < 0) {
		const char *why = errno == ENOENT ? "not found next to the reads file"
		                : errno == ELOOP ? "a symbolic link is on its way (refused)"
		                : errno == EXDEV ? "outside the export directory"
		                : strerror(errno);

		return jfail(j, errno == ENOENT ? SBX_ENOENT : SBX_EFORMAT,
		             "%s line %llu, field %s: %s: %s", src, (unsigned long long)line,
		             kind_field(kind), path, why);
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		r = jfail(j, SBX_EFORMAT, "%s line %llu, field %s: %s: not a regular file", src,
		          (unsigned long long)line, kind_field(kind), path);
		goto bad;
	}
	if (sb.st_size < 8 || (uint64_t)sb.st_size > image_cap(j, kind)) {
		r = jfail(j, SBX_EFORMAT, "%s line %llu, field %s: %s: size %lld outside 8..%u bytes",
		          src, (unsigned long long)line, kind_field(kind), path,
		          (long long)sb.st_size, image_cap(j, kind));
		goto bad;
	}
	if (pread_all(fd, magic, sizeof magic, 0, &got) != 0 || got != sizeof magic ||
	    reads_image_magic(magic, got) == READS_IMG_NONE) {
		r = jfail(j, SBX_EFORMAT, "%s line %llu, field %s: %s: not a JPEG or PNG image", src,
		          (unsigned long long)line, kind_field(kind), path);
		goto bad;
	}
	*size = (uint64_t)sb.st_size;
	return fd;
bad:
	close(fd);
	return r;
}

/* Lookup keys for archive entries and image targets: the input number and
 * the archive number (each input's archives are numbered from 0), then the
 * full name inside that archive. */
static void key_prefix(char *key, uint32_t input, uint32_t container)
{
	for (int i = 0; i < 4; i++) {
		key[i] = (char)(input >> (24 - 8 * i));
		key[4 + i] = (char)(container >> (24 - 8 * i));
	}
}

static int target_key(struct job *j, const char *dir, size_t dn, const char *path,
                      char *key, size_t cap, size_t *kn)
{
	size_t pn = strlen(path), n = 8 + (dn ? dn + 1 : 0) + pn;

	if (n > cap || n - 8 > j->o->caps.max_name)
		return SBX_EFORMAT;
	key_prefix(key, j->cur_input, j->cur_container);
	if (dn) {
		memcpy(key + 8, dir, dn);
		key[8 + dn] = '/';
	}
	memcpy(key + n - pn, path, pn);
	*kn = n;
	return 0;
}

static int add_ref(struct job *j, const struct read *r, uint64_t line, int kind, const char *path)
{
	struct ref *rf;
	char key[8 + 2048];
	size_t kn;
	uint64_t *slot;
	int rc;

	if (j->nrefs == j->caprefs) {
		size_t cap = j->caprefs ? j->caprefs * 2 : 1024;
		struct ref *nr = realloc(j->refs, cap * sizeof *nr);

		if (nr == NULL)
			return jfail(j, SBX_ENOMEM, "ingest: out of memory");
		j->refs = nr;
		j->caprefs = cap;
	}
	if (target_key(j, j->cur_dir, j->cur_dir_len, path, key, sizeof key, &kn) != 0)
		return jfail(j, SBX_EFORMAT, "%s line %llu, field %s: image path too long",
		             j->cur_label, (unsigned long long)line, kind_field(kind));
	rf = &j->refs[j->nrefs];
	memset(rf, 0, sizeof *rf);
	rf->input = j->cur_input;
	rf->container = j->cur_container;
	rf->src = j->cur_src;
	rf->kind = (uint8_t)kind;
	rf->line = line;
	rf->key_len = (uint32_t)kn;
	if (arena_put(j, key, kn, &rf->key_off) != 0 || arena_put(j, path, strlen(path), &rf->path_off) != 0 ||
	    arena_put(j, r->vendor_id, strlen(r->vendor_id), &rf->id_off) != 0)
		return SBX_ENOMEM;
	j->nrefs++;
	slot = reads_idset_find(j->targets, key, kn);
	if (slot == NULL) {
		rc = reads_idset_add(j->targets, key, kn, (uint64_t)j->nrefs | ((uint64_t)j->nrefs << 32));
		if (rc != 0)
			return jfail(j, rc, "ingest: out of memory");
		if (j->cur_container != NO_CONT)
			j->targets_in_archives++;
	} else {
		uint64_t tail = *slot >> 32;

		j->refs[tail - 1].next = j->nrefs;
		*slot = (*slot & 0xffffffffu) | ((uint64_t)j->nrefs << 32);
	}
	return 0;
}

static int on_read(void *ctx, const struct read *r, uint64_t line, struct sbx_err *e)
{
	struct job *j = ctx;
	char lb[LABEL_MAX + 8];
	int rc;

	if (j->pass == PASS_LOCATE) {
		if (strcmp(r->vendor_id, j->dup_id) != 0)
			return 0;
		if (j->cur_src == j->dup_src)
			return jfail(j, SBX_EFORMAT, "%s line %llu, field vendor_read_id: duplicate id \"%s\" (first seen on line %llu)",
			             j->dup_label, (unsigned long long)j->dup_line, j->dup_id,
			             (unsigned long long)line);
		return jfail(j, SBX_EFORMAT, "%s line %llu, field vendor_read_id: duplicate id \"%s\" (first seen in %s line %llu)",
		             j->dup_label, (unsigned long long)j->dup_line, j->dup_id, j->cur_label,
		             (unsigned long long)line);
	}
	if (j->pass == 2) {
		j->nreads2[j->cur_input]++;
		rc = ingest_proto_put_read(j->w, short_label(j->cur_label, lb, sizeof lb), line, r);
		return rc != 0 ? jfail(j, SBX_EIO, "ingest: cannot write to the parent") : 0;
	}
	if (j->reads >= j->o->lim.max_reads)
		return jfail(j, SBX_EFORMAT, "%s line %llu: more than %llu reads in one batch",
		             j->cur_label, (unsigned long long)line, (unsigned long long)j->o->lim.max_reads);
	rc = reads_idset_add(j->ids, r->vendor_id, strlen(r->vendor_id), 0);
	if (rc == SBX_EEXIST) {
		j->dup_id = strdup(r->vendor_id);
		j->dup_label = strdup(j->cur_label);
		if (j->dup_id == NULL || j->dup_label == NULL)
			return jfail(j, SBX_ENOMEM, "ingest: out of memory");
		j->dup_line = line;
		j->dup_src = j->cur_src;
		return jfail(j, SBX_EFORMAT, "%s line %llu, field vendor_read_id: duplicate id \"%s\"",
		             j->cur_label, (unsigned long long)line, r->vendor_id);
	}
	if (rc != 0)
		return jfail(j, rc, "ingest: out of memory");
	j->reads++;
	j->nreads1[j->cur_input]++;
	for (int kind = INGEST_IMAGE_PLATE; kind <= INGEST_IMAGE_OVERVIEW; kind++) {
		const char *path = kind == INGEST_IMAGE_PLATE ? r->plate_image : r->overview_image;

		if (path[0] == '\0')
			continue;
		if (j->cur_container == NO_CONT) {
			uint64_t size;
			int fd = plain_image(j, j->cur_input, j->cur_label, line, kind, path, &size);

			if (fd < 0)
				return fd;
			close(fd);
		}
		rc = add_ref(j, r, line, kind, path);
		if (rc != 0)
			return rc;
	}
	(void)e;
	return 0;
}

static int reads_kind(const char *name)
{
	size_t n = strlen(name);

	if (n > 4 && strcasecmp(name + n - 4, ".csv") == 0)
		return K_CSV;
	if ((n > 6 && strcasecmp(name + n - 6, ".jsonl") == 0) ||
	    (n > 7 && strcasecmp(name + n - 7, ".ndjson") == 0))
		return K_JSONL;
	return 0;
}

/* A reads decoder of either kind behind one interface. */
struct rdec {
	struct csv_reads *csv;
	struct jsonl_reads *jsonl;
};

static int rdec_open(struct job *j, struct rdec *d, int kind, const char *label)
{
	memset(d, 0, sizeof *d);
	if (kind == K_CSV)
		d->csv = csv_reads_new(label, j->m, on_read, j);
	else
		d->jsonl = jsonl_reads_new(label, j->m, j->o->max_jsonl_line, on_read, j);
	if (d->csv == NULL && d->jsonl == NULL)
		return jfail(j, SBX_ENOMEM, "ingest: out of memory");
	return 0;
}

static int rdec_feed(struct rdec *d, const void *p, size_t n, struct sbx_err *e)
{
	return d->csv != NULL ? csv_reads_feed(d->csv, p, n, e) : jsonl_reads_feed(d->jsonl, p, n, e);
}

static int rdec_end(struct rdec *d, struct sbx_err *e)
{
	return d->csv != NULL ? csv_reads_end(d->csv, e) : jsonl_reads_end(d->jsonl, e);
}

static void rdec_free(struct rdec *d)
{
	csv_reads_free(d->csv);
	jsonl_reads_free(d->jsonl);
}

static int note_source(struct job *j, const char *label)
{
	char **ns;

	if (j->pass == PASS_LOCATE)
		j->cur_src = j->loc_src++;
	if (j->pass != 1)
		return 0;
	ns = realloc(j->sources, (j->nsources + 1) * sizeof *ns);
	if (ns == NULL)
		return jfail(j, SBX_ENOMEM, "ingest: out of memory");
	j->sources = ns;
	ns[j->nsources] = strdup(label);
	if (ns[j->nsources] == NULL)
		return jfail(j, SBX_ENOMEM, "ingest: out of memory");
	j->cur_src = (uint32_t)j->nsources++;
	j->reads_files++;
	return 0;
}

static int plain_reads(struct job *j, uint32_t i)
{
	struct rdec d;
	uint64_t off = 0;
	int r;

	j->cur_input = i;
	j->cur_container = NO_CONT;
	j->cur_dir = "";
	j->cur_dir_len = 0;
	j->cur_label = j->in[i].label;
	if ((r = note_source(j, j->in[i].label)) != 0)
		return r;
	if ((r = rdec_open(j, &d, j->kind[i], j->in[i].label)) != 0)
		return r;
	for (;;) {
		size_t got;

		if (pread_all(j->in[i].fd, j->buf, IO_BUF, off, &got) != 0) {
			r = jfail(j, SBX_EIO, "%s: read: %s", j->in[i].label, strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		off += got;
		if ((r = rdec_feed(&d, j->buf, got, j->e)) != 0)
			goto out;
	}
	r = rdec_end(&d, j->e);
out:
	rdec_free(&d);
	return r;
}

/* ---- archives ---- */

static int archive_reads(struct job *j, struct archive_file *f, int kind)
{
	struct rdec d;
	char *label = NULL, *dir = NULL;
	const char *name = archive_file_name(f), *slash = strrchr(name, '/');
	int r;

	if (asprintf(&label, "%s!%s", archive_file_label(f), name) < 0)
		return jfail(j, SBX_ENOMEM, "ingest: out of memory");
	dir = strndup(name, slash != NULL ? (size_t)(slash - name) : 0);
	if (dir == NULL) {
		free(label);
		return jfail(j, SBX_ENOMEM, "ingest: out of memory");
	}
	j->cur_container = archive_file_container(f);
	j->cur_dir = dir;
	j->cur_dir_len = strlen(dir);
	j->cur_label = label;
	if ((r = note_source(j, label)) != 0)
		goto out0;
	if ((r = rdec_open(j, &d, kind, label)) != 0)
		goto out0;
	for (;;) {
		size_t got;

		if ((r = archive_file_read(f, j->buf, IO_BUF, &got, j->e)) != 0)
			goto out;
		if (got == 0)
			break;
		if ((r = rdec_feed(&d, j->buf, got, j->e)) != 0)
			goto out;
	}
	r = rdec_end(&d, j->e);
out:
	rdec_free(&d);
out0:
	j->cur_dir = "";
	j->cur_dir_len = 0;
	j->cur_label = j->in[j->cur_input].label;
	free(dir);
	free(label);
	return r;
}

static int entry_key(struct job *j, struct archive_file *f, char *key, size_t cap, size_t *kn)
{
	const char *name = archive_file_name(f);
	size_t n = strlen(name);

	if (8 + n > cap)
		return SBX_EFORMAT;
	key_prefix(key, j->cur_input, archive_file_container(f));
	memcpy(key + 8, name, n);
	*kn = 8 + n;
	return 0;
}

static int visit1(void *ctx, struct archive_file *f, struct sbx_err *e)
{
	struct job *j = ctx;
	int kind = reads_kind(archive_file_name(f)), magic = READS_IMG_NONE, r;
	uint64_t size = 0;
	size_t got, kn;
	char key[8 + 2048];

	j->archive_files++;
	if (kind != 0) {
		j->last_reads[j->cur_input] = archive_file_ordinal(f) + 1;
		r = archive_reads(j, f, kind);
		if (r != 0)
			return r;
	} else {
		for (;;) {
			if ((r = archive_file_read(f, j->buf, IO_BUF, &got, e)) != 0)
				return r;
			if (got == 0)
				break;
			if (size == 0)
				magic = reads_image_magic(j->buf, got);
			size += got;
		}
	}
	if (entry_key(j, f, key, sizeof key, &kn) != 0)
		return jfail(j, SBX_EFORMAT, "%s!%s: name too long", archive_file_label(f), archive_file_name(f));
	r = reads_idset_add(j->entries, key, kn, (size << 2) | (uint64_t)magic);
	if (r != 0)
		return jfail(j, r == SBX_EEXIST ? SBX_EFORMAT : r, "%s!%s: %s", archive_file_label(f),
		             archive_file_name(f), r == SBX_EEXIST ? "duplicate entry" : "out of memory");
	return 0;
}

static int visit2(void *ctx, struct archive_file *f, struct sbx_err *e)
{
	struct job *j = ctx;
	int kind = reads_kind(archive_file_name(f)), r;

	if (kind == 0)
		return 0;
	r = archive_reads(j, f, kind);
	if (r != 0)
		return r;
	return archive_file_ordinal(f) + 1 >= j->last_reads[j->cur_input] ? 1 : 0;
}

static int send_refs(struct job *j, uint64_t head, const uint8_t *p, size_t n)
{
	for (uint64_t k = head; k != 0; k = j->refs[k - 1].next) {
		const struct ref *rf = &j->refs[k - 1];

		if (n > image_cap(j, rf->kind))
			return jfail(j, SBX_EFORMAT, "%s line %llu, field %s: %s: larger than the cap of %u bytes",
			             j->sources[rf->src], (unsigned long long)rf->line, kind_field(rf->kind),
			             j->arena + rf->path_off, image_cap(j, rf->kind));
		if (ingest_proto_put_image(j->w, j->arena + rf->id_off, rf->kind, j->arena + rf->path_off, p, n) != 0)
			return jfail(j, SBX_EIO, "ingest: cannot write to the parent");
		j->images++;
		j->image_bytes += n;
		j->delivered++;
	}
	return 0;
}

static int visit3(void *ctx, struct archive_file *f, struct sbx_err *e)
{
	struct job *j = ctx;
	uint64_t *slot;
	uint8_t *img = NULL;
	size_t len = 0, got, kn, cap;
	char key[8 + 2048];
	int r;

	if (entry_key(j, f, key, sizeof key, &kn) != 0 || (slot = reads_idset_find(j->targets, key, kn)) == NULL)
		return 0;
	cap = j->o->lim.max_plate_image > j->o->lim.max_overview_image ? j->o->lim.max_plate_image
	                                                               : j->o->lim.max_overview_image;
	img = malloc(cap + 1);
	if (img == NULL)
		return jfail(j, SBX_ENOMEM, "ingest: out of memory");
	for (;;) {
		if ((r = archive_file_read(f, img + len, cap + 1 - len, &got, e)) != 0)
			goto out;
		if (got == 0)
			break;
		len += got;
		if (len > cap) {
			r = jfail(j, SBX_EFORMAT, "%s!%s: image larger than the cap", archive_file_label(f),
			          archive_file_name(f));
			goto out;
		}
	}
	if (reads_image_magic(img, len) == READS_IMG_NONE) {
		r = jfail(j, SBX_EFORMAT, "%s!%s: not a JPEG or PNG image (changed while being read?)",
		          archive_file_label(f), archive_file_name(f));
		goto out;
	}
	r = send_refs(j, *slot & 0xffffffffu, img, len);
	if (r == 0 && j->delivered == j->refs_in_input)
		r = 1;  /* every image of this input sent: no need to read on */
out:
	free(img);
	return r;
}

/* After pass 1 of an archive: every image its reads name must be an entry
 * of the same archive, an image by its magic, within its cap. */
static int check_archive_refs(struct job *j, uint32_t input)
{
	for (size_t k = 0; k < j->nrefs; k++) {
		const struct ref *rf = &j->refs[k];
		uint64_t *v;
		uint64_t size;

		if (rf->input != input)
			continue;
		v = reads_idset_find(j->entries, j->arena + rf->key_off, rf->key_len);
		if (v == NULL)
			return jfail(j, SBX_ENOENT, "%s line %llu, field %s: %s: not in the archive",
			             j->sources[rf->src], (unsigned long long)rf->line, kind_field(rf->kind),
			             j->arena + rf->path_off);
		size = *v >> 2;
		if ((*v & 3) == READS_IMG_NONE)
			return jfail(j, SBX_EFORMAT, "%s line %llu, field %s: %s: not a JPEG or PNG image",
			             j->sources[rf->src], (unsigned long long)rf->line, kind_field(rf->kind),
			             j->arena + rf->path_off);
		if (size < 8 || size > image_cap(j, rf->kind))
			return jfail(j, SBX_EFORMAT, "%s line %llu, field %s: %s: size %llu outside 8..%u bytes",
			             j->sources[rf->src], (unsigned long long)rf->line, kind_field(rf->kind),
			             j->arena + rf->path_off, (unsigned long long)size, image_cap(j, rf->kind));
	}
	return 0;
}

static int walk_input(struct job *j, uint32_t i, int (*visit)(void *, struct archive_file *, struct sbx_err *))
{
	struct archive_visitor v = { visit, j };

	j->cur_input = i;
	j->cur_label = j->in[i].label;
	return archive_walk_fd(j->in[i].fd, j->in[i].label, &j->o->caps, &v, NULL, j->e);
}

static int plain_images(struct job *j, uint32_t i)
{
	uint8_t *img = NULL;
	int r = 0;

	for (size_t k = 0; k < j->nrefs && r == 0; k++) {
		const struct ref *rf = &j->refs[k];
		uint64_t size;
		size_t got;
		int fd;

		if (rf->input != i)
			continue;
		fd = plain_image(j, i, j->sources[rf->src], rf->line, rf->kind, j->arena + rf->path_off, &size);
		if (fd < 0)
			return fd;
		img = malloc(size);
		if (img == NULL) {
			close(fd);
			return jfail(j, SBX_ENOMEM, "ingest: out of memory");
		}
		if (pread_all(fd, img, size, 0, &got) != 0 || got != size) {
			r = jfail(j, SBX_EIO, "%s: %s: changed while being read", j->sources[rf->src],
			          j->arena + rf->path_off);
		} else if (reads_image_magic(img, size) == READS_IMG_NONE) {
			r = jfail(j, SBX_EFORMAT, "%s: %s: changed while being read", j->sources[rf->src],
			          j->arena + rf->path_off);
		} else if (ingest_proto_put_image(j->w, j->arena + rf->id_off, rf->kind,
		                                  j->arena + rf->path_off, img, size) != 0) {
			r = jfail(j, SBX_EIO, "ingest: cannot write to the parent");
		} else {
			j->images++;
			j->image_bytes += size;
		}
		close(fd);
		free(img);
		img = NULL;
	}
	return r;
}

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* The reads of input i, for pass 2 and PASS_LOCATE: an archive is walked
 * only up to its last reads file (pass 1 noted which). */
static int input_reads(struct job *j, uint32_t i)
{
	if (j->kind[i] != K_ARCHIVE)
		return plain_reads(j, i);
	return j->last_reads[i] ? walk_input(j, i, visit2) : 0;
}

/* After pass 1 stopped at the second occurrence of an id: read the inputs
 * again, in the same order, up to the first one, and name both.  Pass 1's
 * message (without the first line) stands if the inputs changed meanwhile
 * and the first occurrence is gone. */
static int locate_first(struct job *j, int r)
{
	struct sbx_err first = *j->e;

	sbx_err_clear(j->e);    /* the first message set is the one kept */
	j->pass = PASS_LOCATE;
	j->loc_src = 0;
	for (uint32_t i = 0; i < j->n; i++) {
		int rl = input_reads(j, i);

		if (rl != 0)
			return rl;
	}
	*j->e = first;
	return r;
}

static int work(struct job *j)
{
	int r;

	for (uint32_t i = 0; i < j->n; i++) {
		uint8_t head[262];
		size_t got;

		if (fstat(j->in[i].fd, &j->st0[i]) != 0 || !S_ISREG(j->st0[i].st_mode))
			return jfail(j, SBX_EIO, "%s: not a regular file", j->in[i].label);
		if (pread_all(j->in[i].fd, head, sizeof head, 0, &got) != 0)
			return jfail(j, SBX_EIO, "%s: read: %s", j->in[i].label, strerror(errno));
		if (archive_sniff(head, got) != ARCHIVE_KIND_NONE)
			j->kind[i] = K_ARCHIVE;
		else
			j->kind[i] = reads_kind(j->in[i].label);
		if (j->kind[i] == 0)
			return jfail(j, SBX_EFORMAT, "%s: not CSV (.csv), JSON Lines (.jsonl, .ndjson) "
			             "or a zip, tar or tar.gz archive", j->in[i].label);
	}
	/* Pass 1: everything checked, nothing sent. */
	j->pass = 1;
	for (uint32_t i = 0; i < j->n; i++) {
		if (j->kind[i] != K_ARCHIVE) {
			r = plain_reads(j, i);
		} else {
			r = walk_input(j, i, visit1);
			if (r == 0)
				r = check_archive_refs(j, i);
		}
		if (r != 0)
			return j->dup_id != NULL ? locate_first(j, r) : r;
	}
	if (j->reads == 0)
		return jfail(j, SBX_EFORMAT, "no reads in the input");
	if (ingest_proto_put_hello(j->w) != 0)
		return jfail(j, SBX_EIO, "ingest: cannot write to the parent");
	/* Pass 2: the reads. */
	j->pass = 2;
	for (uint32_t i = 0; i < j->n; i++) {
		r = input_reads(j, i);
		if (r != 0)
			return r;
		if (j->nreads2[i] != j->nreads1[i])
			return jfail(j, SBX_EIO, "%s: changed while being read", j->in[i].label);
	}
	/* Pass 3: the images. */
	j->pass = 3;
	for (uint32_t i = 0; i < j->n; i++) {
		j->refs_in_input = 0;
		j->delivered = 0;
		for (size_t k = 0; k < j->nrefs; k++)
			j->refs_in_input += j->refs[k].input == i;
		if (j->refs_in_input == 0)
			continue;
		if (j->kind[i] != K_ARCHIVE) {
			r = plain_images(j, i);
		} else {
			r = walk_input(j, i, visit3);
			if (r == 0 && j->delivered != j->refs_in_input)
				r = jfail(j, SBX_EIO, "%s: changed while being read", j->in[i].label);
		}
		if (r != 0)
			return r;
	}
	for (uint32_t i = 0; i < j->n; i++) {
		struct stat sb;

		if (fstat(j->in[i].fd, &sb) != 0 || !same_file(&sb, &j->st0[i]))
			return jfail(j, SBX_EIO, "%s: changed while being read", j->in[i].label);
	}
	return 0;
}

int ingest_child_work(const struct ingest_input *in, size_t n, const struct ingest_opts *o,
                      struct ingest_proto_w *w)
{
	struct ingest_opts dflt;
	struct mapping generic;
	struct sbx_err err;
	struct job j;
	int r = SBX_ENOMEM;

	sbx_err_clear(&err);
	if (o == NULL) {
		ingest_opts_default(&dflt);
		o = &dflt;
	}
	memset(&j, 0, sizeof j);
	j.o = o;
	if (o->mapping == NULL) {
		mapping_generic(&generic);
		j.m = &generic;
	} else {
		j.m = o->mapping;
	}
	j.in = in;
	j.n = n;
	j.w = w;
	j.e = &err;
	j.kind = calloc(n ? n : 1, sizeof *j.kind);
	j.last_reads = calloc(n ? n : 1, sizeof *j.last_reads);
	j.nreads1 = calloc(n ? n : 1, sizeof *j.nreads1);
	j.nreads2 = calloc(n ? n : 1, sizeof *j.nreads2);
	j.st0 = calloc(n ? n : 1, sizeof *j.st0);
	j.ids = reads_idset_new_keys();
	j.entries = reads_idset_new();
	j.targets = reads_idset_new();
	j.buf = malloc(IO_BUF);
	if (j.kind == NULL || j.last_reads == NULL || j.nreads1 == NULL || j.nreads2 == NULL ||
	    j.st0 == NULL || j.ids == NULL || j.entries == NULL || j.targets == NULL || j.buf == NULL) {
		sbx_fail(&err, SBX_ENOMEM, "ingest: out of memory");
		goto out;
	}
	if (n == 0) {
		r = sbx_fail(&err, SBX_EINVAL, "ingest: no input");
		goto out;
	}
	r = work(&j);
	if (r == 0) {
		struct ingest_summary s;

		memset(&s, 0, sizeof s);
		s.reads = j.reads;
		s.images = j.images;
		s.image_bytes = j.image_bytes;
		s.reads_files = j.reads_files;
		{
			uint64_t plain_files = 0, used;

			for (size_t i = 0; i < n; i++)
				plain_files += j.kind[i] != K_ARCHIVE;
			used = (j.reads_files - plain_files) + j.targets_in_archives;
			s.ignored = j.archive_files > used ? j.archive_files - used : 0;
		}
		if (ingest_proto_put_done(w, &s) != 0)
			r = SBX_EIO;
	}
out:
	if (r != 0) {
		if (err.code == 0)
			sbx_fail(&err, r, "ingest failed");
		ingest_proto_put_error(w, err.code, err.msg);
	}
	ingest_proto_flush(w);
	for (size_t i = 0; i < j.nsources; i++)
		free(j.sources[i]);
	free(j.sources);
	free(j.kind);
	free(j.last_reads);
	free(j.nreads1);
	free(j.nreads2);
	free(j.st0);
	free(j.refs);
	free(j.arena);
	free(j.buf);
	reads_idset_free(j.ids);
	free(j.dup_id);
	free(j.dup_label);
	reads_idset_free(j.entries);
	reads_idset_free(j.targets);
	return r;
}

/* ---- the child process ---- */

int ingest_child_sandbox(int keep_stderr)
{
	struct rlimit zero = { 0, 0 };
	int r = 0;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		r = SBX_EIO;
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		r = SBX_EIO;
	if (setrlimit(RLIMIT_CORE, &zero) != 0)
		r = SBX_EIO;
	/* Nothing may grow a file: the child writes nothing to disk.  (Kept
	 * off while stderr is kept: it may be a log file.) */
	if (!keep_stderr && setrlimit(RLIMIT_FSIZE, &zero) != 0)
		r = SBX_EIO;
	/* Last: the allowlist of appliance/seccomp.h.  From here on any other
	 * system call kills the child with SIGSYS. */
	if (r == 0 && seccomp_confine_parser() != 0)
		r = SBX_EIO;
#ifndef SBX_RELEASE
	/* tests/harden/seccomp.sh: a forbidden call here must kill us. */
	if (r == 0)
		seccomp_test_probe(getenv("SEALBOX_TEST_SANDBOX_PROBE"));
#endif
	return r;
}

/* Moves the descriptors in fds[0..k) to 3..3+k-1, points 0-2 at devnull
 * (2 stays if keep_stderr) and closes everything else. */
static int arrange_fds(int *fds, size_t k, int devnull, int keep_stderr)
{
	int maxfd = devnull, base, tnull;
	int *t = calloc(k, sizeof *t);

	if (t == NULL)
		return -1;
	for (size_t i = 0; i < k; i++)
		if (fds[i] > maxfd)
			maxfd = fds[i];
	base = maxfd > (int)(3 + k) ? maxfd + 1 : (int)(3 + k) + 1;
	for (size_t i = 0; i < k; i++) {
		t[i] = fds[i] < 0 ? -1 : fcntl(fds[i], F_DUPFD, base);
		if (fds[i] >= 0 && t[i] < 0)
			goto bad;
	}
	tnull = fcntl(devnull, F_DUPFD, base);
	if (tnull < 0 || dup2(tnull, 0) < 0 || dup2(tnull, 1) < 0 ||
	    (!keep_stderr && dup2(tnull, 2) < 0))
		goto bad;
	for (size_t i = 0; i < k; i++) {
		if (t[i] < 0) {
			fds[i] = -1;
			continue;
		}
		if (dup2(t[i], (int)(3 + i)) < 0)
			goto bad;
		fds[i] = (int)(3 + i);
	}
	free(t);
	if (syscall(SYS_close_range, 3 + k, ~0U, 0) != 0) {
		long maxf = sysconf(_SC_OPEN_MAX);

		for (long fd = (long)(3 + k); fd < (maxf > 0 ? maxf : 65536); fd++)
			close((int)fd);
	}
	return 0;
bad:
	free(t);
	return -1;
}

static void child_main(const char *const *paths, size_t n, const int *fds, const int *dfds, int pipefd,
                       int devnull, const struct ingest_opts *o)
{
	struct ingest_input *in = calloc(n, sizeof *in);
	int *all = calloc(2 * n + 1, sizeof *all);
	struct ingest_proto_w w;
	int r;

	signal(SIGPIPE, SIG_DFL);
	if (in == NULL || all == NULL)
		_exit(3);
	for (size_t i = 0; i < n; i++) {
		all[i] = fds[i];
		all[n + i] = dfds[i];
	}
	all[2 * n] = pipefd;
	if (arrange_fds(all, 2 * n + 1, devnull, o->child_stderr) != 0)
		_exit(3);
	if (ingest_child_sandbox(o->child_stderr) != 0)
		_exit(3);
	for (size_t i = 0; i < n; i++) {
		in[i].fd = all[i];
		in[i].dirfd = all[n + i];
		in[i].label = paths[i];
	}
	if (ingest_proto_w_init(&w, all[2 * n]) != 0)
		_exit(3);
	r = ingest_child_work(in, n, o, &w);
	_exit(r == 0 ? 0 : 1);
}

static int open_inputs(const char *const *paths, size_t n, int *fds, int *dfds, struct sbx_err *e)
{
	for (size_t i = 0; i < n; i++) {
		struct stat sb;
		char *copy;

		fds[i] = open(paths[i], O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (fds[i] < 0)
			return sbx_fail(e, SBX_EIO, "%s: cannot open: %s", paths[i], strerror(errno));
		if (fstat(fds[i], &sb) != 0 || !S_ISREG(sb.st_mode))
			return sbx_fail(e, SBX_EIO, "%s: not a regular file", paths[i]);
		copy = strdup(paths[i]);
		if (copy == NULL)
			return sbx_fail(e, SBX_ENOMEM, "out of memory");
		dfds[i] = open(dirname(copy), O_PATH | O_DIRECTORY | O_CLOEXEC);
		free(copy);
		if (dfds[i] < 0)
			return sbx_fail(e, SBX_EIO, "%s: cannot open its directory: %s", paths[i], strerror(errno));
	}
	return 0;
}

int ingest_run(const char *const *paths, size_t n, const struct ingest_opts *o,
               const struct ingest_sink *sink, struct ingest_summary *sum, struct sbx_err *e)
{
	struct ingest_opts dflt;
	struct ingest_proto_dec *dec = NULL;
	int *fds = NULL, *dfds = NULL, pfd[2] = { -1, -1 }, devnull = -1, status = 0;
	uint8_t *buf = NULL;
	pid_t pid = -1;
	int r = SBX_EIO, dr = 0;

	if (o == NULL) {
		ingest_opts_default(&dflt);
		o = &dflt;
	}
	if (sum != NULL)
		memset(sum, 0, sizeof *sum);
	if (paths == NULL || n == 0)
		return sbx_fail(e, SBX_EINVAL, "ingest: no input files");
	fds = malloc(n * sizeof *fds);
	dfds = malloc(n * sizeof *dfds);
	/* Before any goto out: the cleanup below reads both arrays. */
	if (fds != NULL && dfds != NULL)
		for (size_t i = 0; i < n; i++)
			fds[i] = dfds[i] = -1;
	buf = malloc(IO_BUF);
	dec = ingest_proto_dec_new(&o->lim, sink);
	if (fds == NULL || dfds == NULL || buf == NULL || dec == NULL) {
		r = sbx_fail(e, SBX_ENOMEM, "ingest: out of memory");
		goto out;
	}
	if ((r = open_inputs(paths, n, fds, dfds, e)) != 0)
		goto out;
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0 || pipe2(pfd, O_CLOEXEC) != 0) {
		r = sbx_fail(e, SBX_EIO, "ingest: cannot set up the child: %s", strerror(errno));
		goto out;
	}
	/* A bigger pipe means fewer switches between parser and parent. */
	(void)fcntl(pfd[1], F_SETPIPE_SZ, 1 << 20);
	pid = fork();
	if (pid < 0) {
		r = sbx_fail(e, SBX_EIO, "ingest: fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0)
		child_main(paths, n, fds, dfds, pfd[1], devnull, o);
	close(pfd[1]);
	pfd[1] = -1;
	for (;;) {
		struct pollfd p = { pfd[0], POLLIN, 0 };
		int pr = poll(&p, 1, o->timeout_s ? (int)o->timeout_s * 1000 : -1);
		ssize_t k;

		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0) {
			dr = sbx_fail(e, SBX_EIO, "ingest: the parser made no progress for %u s", o->timeout_s);
			break;
		}
		k = read(pfd[0], buf, IO_BUF);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			dr = sbx_fail(e, SBX_EIO, "ingest: reading from the parser: %s", strerror(errno));
			break;
		}
		if (k == 0)
			break;
		/* Read on to the end of the stream even after 'Z': anything
		 * more is an error, and a child that lingers hits the timeout. */
		dr = ingest_proto_dec_feed(dec, buf, (size_t)k, e);
		if (dr != 0)
			break;
	}
	if (dr != 0)
		kill(pid, SIGKILL);     /* our own child, by pid */
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	pid = -1;
	if (dr != 0) {
		r = dr;
		goto out;
	}
	if (WIFSIGNALED(status) && !ingest_proto_dec_finished(dec)) {
		r = sbx_fail(e, SBX_EIO, "ingest: the parser died (signal %d)", WTERMSIG(status));
		goto out;
	}
	r = ingest_proto_dec_end(dec, sum, e);
	if (r == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
		r = sbx_fail(e, SBX_EIO, "ingest: the parser exited abnormally (status %d)", status);
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	for (size_t i = 0; fds != NULL && dfds != NULL && i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		if (dfds[i] >= 0)
			close(dfds[i]);
	}
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	if (devnull >= 0)
		close(devnull);
	if (r != 0 && sum != NULL)
		memset(sum, 0, sizeof *sum);
	ingest_proto_dec_free(dec);
	free(fds);
	free(dfds);
	free(buf);
	return r;
}

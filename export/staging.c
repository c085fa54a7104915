#include "export/staging.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "crypto/hash.h"
#include "export/atomic.h"
#include "export/worker.h"

/* Our own tree is at most staging/<bundle>/images/<file>. */
#define MAX_DEPTH 4
#define MAX_SUBDIRS 64

struct staging {
	char *out;              /* the output directory as given */
	char *parent;           /* its parent directory */
	char *path;             /* the staging directory */
	int parent_fd, fd;
	int sub[MAX_SUBDIRS];
	size_t n_sub;
	/* The flusher: syncs the file system again and again while the files
	 * are written, so that the write-back overlaps the decryption and the
	 * syncfs of the commit finds little left.  Only a head start: the
	 * commit's own syncfs is the one whose result counts. */
	pthread_t flusher;
	int flush_fd;           /* its own open of the directory: see flusher_start */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int flushing, stop;
};

#define FLUSH_EVERY_MS 100

static void *flusher_main(void *arg)
{
	struct staging *s = arg;
	struct timespec t;

	pthread_mutex_lock(&s->mu);
	while (!s->stop) {
		clock_gettime(CLOCK_REALTIME, &t);
		t.tv_nsec += FLUSH_EVERY_MS * 1000000L;
		if (t.tv_nsec >= 1000000000L) {
			t.tv_sec++;
			t.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->cv, &s->mu, &t);
		if (s->stop)
			break;
		pthread_mutex_unlock(&s->mu);
		(void)syncfs(s->flush_fd);
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* Without a thread (resources), the commit's syncfs does it all. */
static void flusher_start(struct staging *s)
{
	/* A file description of its own, not a dup: syncfs reports a
	 * write-back error once per open file (errseq), and the flusher must
	 * not consume the error the commit's syncfs on s->fd has to see. */
	s->flush_fd = openat(s->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->flush_fd < 0)
		return;
	if (pthread_mutex_init(&s->mu, NULL) != 0)
		goto fail;
	if (pthread_cond_init(&s->cv, NULL) != 0) {
		pthread_mutex_destroy(&s->mu);
		goto fail;
	}
	s->flushing = worker_start(&s->flusher, flusher_main, s);
	if (s->flushing)
		return;
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
fail:
	close(s->flush_fd);
	s->flush_fd = -1;
}

static void flusher_stop(struct staging *s)
{
	if (!s->flushing)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = 1;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->flusher, NULL);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	close(s->flush_fd);
	s->flush_fd = -1;
	s->flushing = 0;
}

/* out_dir without trailing slashes, split into parent and last component. */
static int split(const char *out_dir, char **parent, char **base)
{
	size_t n = strlen(out_dir);
	char *copy, *slash;

	*parent = *base = NULL;
	while (n > 1 && out_dir[n - 1] == '/')
		n--;
	copy = strndup(out_dir, n);
	if (copy == NULL)
		return SBX_ENOMEM;
	slash = strrchr(copy, '/');
	if (slash == NULL) {
		*parent = strdup(".");
		*base = copy;
	} else {
		*base = strdup(slash + 1);
		*slash = '\0';
		*parent = strdup(slash == copy ? "/" : copy);
		free(copy);
	}
	if (*parent == NULL || *base == NULL) {
		free(*parent);
		free(*base);
		*parent = *base = NULL;
		return SBX_ENOMEM;
	}
	return 0;
}

/* 0 when out_dir may become the output: absent, or an empty directory. */
static int check_out(const char *out_dir, struct sbx_err *e)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	int fd, r = 0;

	if (lstat(out_dir, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		return sbx_fail(e, SBX_EIO, "%s: %s", out_dir, strerror(errno));
	}
	if (S_ISLNK(st.st_mode))
		return sbx_fail(e, SBX_EEXIST, "%s is a symbolic link: give a new directory", out_dir);
	if (!S_ISDIR(st.st_mode))
		return sbx_fail(e, SBX_EEXIST, "%s exists and is not a directory: give a new"
		                " directory", out_dir);
	fd = open(out_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return sbx_fail(e, SBX_EIO, "%s: %s", out_dir, strerror(errno));
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return sbx_fail(e, SBX_EIO, "%s: %s", out_dir, strerror(errno));
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		r = sbx_fail(e, SBX_EEXIST, "%s exists and is not empty: sealbox-open writes only"
		             " into a new or empty directory", out_dir);
		break;
	}
	closedir(d);
	return r;
}

static int bad_base(const char *base)
{
	return base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0 ||
	       strcmp(base, "/") == 0;
}

int staging_check(const char *out_dir, struct sbx_err *e)
{
	char *parent = NULL, *base = NULL;
	struct stat st;
	int r;

	if (out_dir == NULL || out_dir[0] == '\0')
		return sbx_fail(e, SBX_EINVAL, "no output directory");
	if (split(out_dir, &parent, &base) != 0)
		return sbx_fail(e, SBX_ENOMEM, "out of memory");
	if (bad_base(base))
		r = sbx_fail(e, SBX_EINVAL, "%s: give a new directory to create", out_dir);
	else if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode))
		r = sbx_fail(e, SBX_EIO, "%s: no such directory (the parent of the output directory"
		             " must exist)", parent);
	else
		r = check_out(out_dir, e);
	free(parent);
	free(base);
	return r;
}

int staging_new(const char *out_dir, struct staging **out, struct sbx_err *e)
{
	struct staging *s = NULL;
	char *base = NULL;
	int r;

	*out = NULL;
	r = staging_check(out_dir, e);
	if (r != 0)
		return r;
	s = calloc(1, sizeof *s);
	if (s == NULL)
		return sbx_fail(e, SBX_ENOMEM, "out of memory");
	s->parent_fd = s->fd = s->flush_fd = -1;
	s->out = strdup(out_dir);
	r = s->out != NULL ? split(out_dir, &s->parent, &base) : SBX_ENOMEM;
	if (r != 0) {
		r = sbx_fail(e, r, "out of memory");
		goto out;
	}
	s->parent_fd = open(s->parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->parent_fd < 0) {
		r = sbx_fail(e, SBX_EIO, "%s: %s (the parent of the output directory must exist)",
		             s->parent, strerror(errno));
		goto out;
	}
	if (asprintf(&s->path, "%s/.%s.open-XXXXXX", s->parent, base) < 0) {
		s->path = NULL;
		r = sbx_fail(e, SBX_ENOMEM, "out of memory");
		goto out;
	}
	/* mkdtemp: mode 0700, a fresh unpredictable name, never an existing one. */
	if (mkdtemp(s->path) == NULL) {
		r = sbx_fail(e, SBX_EIO, "cannot create a staging directory in %s: %s", s->parent,
		             strerror(errno));
		free(s->path);
		s->path = NULL;
		goto out;
	}
	s->fd = open(s->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (s->fd < 0) {
		r = sbx_fail(e, SBX_EIO, "%s: %s", s->path, strerror(errno));
		goto out;
	}
	flusher_start(s);
	*out = s;
	s = NULL; /* transferred */
	r = 0;
out:
	free(base);
	if (s != NULL)
		staging_abort(s);
	return r;
}

const char *staging_path(const struct staging *s)
{
	return s->path;
}

int staging_fd(const struct staging *s)
{
	return s->fd;
}

int staging_mkdir(struct staging *s, const char *name, int *fd, struct sbx_err *e)
{
	*fd = -1;
	if (strchr(name, '/') != NULL || name[0] == '.' || name[0] == '\0')
		return sbx_fail(e, SBX_EINVAL, "internal: bad staging directory name");
	if (s->n_sub >= MAX_SUBDIRS)
		return sbx_fail(e, SBX_EINVAL, "at most %d bundles at once", MAX_SUBDIRS);
	if (mkdirat(s->fd, name, 0700) != 0)
		return sbx_fail(e, SBX_EIO, "%s/%s: %s", s->path, name, strerror(errno));
	*fd = openat(s->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*fd < 0)
		return sbx_fail(e, SBX_EIO, "%s/%s: %s", s->path, name, strerror(errno));
	s->sub[s->n_sub++] = *fd;
	return 0;
}

int staging_write_file(int dirfd, const char *name, const void *p, size_t n,
                       struct sbx_err *e)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int r = 0;

	if (fd < 0)
		return sbx_fail(e, SBX_EIO, "cannot create %s: %s", name, strerror(errno));
	if (atomic_write_all(fd, p, n) != 0)
		r = sbx_fail(e, SBX_EIO, "cannot write %s: %s", name, strerror(errno));
	if (close(fd) != 0 && r == 0)
		r = sbx_fail(e, SBX_EIO, "cannot write %s: %s", name, strerror(errno));
	return r;
}

/* Removes everything below dirfd (ours: directories and regular files). */
static void remove_tree(int dirfd, int depth)
{
	DIR *d;
	struct dirent *de;
	int fd = dup(dirfd);

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd, de->d_name, 0) == 0)
			continue;
		if ((errno == EISDIR || errno == EPERM) && depth < MAX_DEPTH) {
			int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			                 O_CLOEXEC);

			if (sub >= 0) {
				remove_tree(sub, depth + 1);
				close(sub);
			}
			unlinkat(dirfd, de->d_name, AT_REMOVEDIR);
		}
	}
	closedir(d);
}

static void release(struct staging *s)
{
	flusher_stop(s);
	for (size_t i = 0; i < s->n_sub; i++)
		close(s->sub[i]);
	if (s->fd >= 0)
		close(s->fd);
	if (s->parent_fd >= 0)
		close(s->parent_fd);
	free(s->out);
	free(s->parent);
	free(s->path);
	free(s);
}

void staging_abort(struct staging *s)
{
	if (s == NULL)
		return;
	flusher_stop(s);
	if (s->fd >= 0 && s->path != NULL) {
		remove_tree(s->fd, 1);
		rmdir(s->path);
	}
	release(s);
}

int staging_commit(struct staging *s, struct sbx_err *e)
{
	int r;

	flusher_stop(s);
	if (syncfs(s->fd) != 0) {
		r = sbx_fail(e, SBX_EIO, "flushing %s to disk failed: %s", s->path, strerror(errno));
		goto fail;
	}
	/* Replaces nothing but an empty directory: rename(2) fails with
	 * ENOTEMPTY/EEXIST if out_dir filled up in the meantime. */
	if (rename(s->path, s->out) != 0) {
		r = sbx_fail(e, errno == ENOTEMPTY || errno == EEXIST ? SBX_EEXIST : SBX_EIO,
		             "cannot move the opened files into %s: %s", s->out, strerror(errno));
		goto fail;
	}
	if (fsync(s->parent_fd) != 0) {
		/* The files are in place but their directory entry may not be
		 * durable: say so rather than call it done. */
		r = sbx_fail(e, SBX_EIO, "fsync of %s failed: %s", s->parent, strerror(errno));
		release(s);
		return r;
	}
	release(s);
	return 0;
fail:
	staging_abort(s);
	return r;
}

/* ---- Items ---------------------------------------------------------------- */

/* ---- The writing thread (item_writer_start_async) ---------------------------- */

#define ASYNC_SLOTS 16
#define ASYNC_BUF   ((size_t)256 << 10)
#define ASYNC_NAME  520         /* "images/" + 500 + NUL, with room */

enum { OP_OPEN = 1, OP_DATA };

struct async_op {
	int kind, slot;
	int dir;                        /* OP_OPEN: where; name is one component */
	char name[ASYNC_NAME];
	char path[ASYNC_NAME];          /* the item path, for messages */
	size_t len;                     /* OP_DATA: bytes in buf */
	uint8_t *buf;                   /* ASYNC_BUF bytes, the ring's */
};

/* Ops posted .. done-1 are queued, op k in q[k % ASYNC_SLOTS]; guarded by
 * mu.  While the thread runs it alone touches w->fd[]. */
struct item_async {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct async_op q[ASYNC_SLOTS];
	uint64_t posted, done;
	int stop, quit, running;
	int failed;                     /* the first failure's code; err says why */
	struct sbx_err err;
	int opened[ITEM_SLOTS];         /* the main thread's view: a slot has a file */
	char path[ITEM_SLOTS][ASYNC_NAME];      /* the thread's: what each fd is */
};

/* Creates item file `name` in dir: O_EXCL, so that a second item of the
 * same name fails (a format error) instead of overwriting; O_NOFOLLOW. */
static int create_item(int dir, const char *name, const char *path, int *fd,
                       struct sbx_err *e)
{
	*fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (*fd < 0)
		return sbx_fail(e, errno == EEXIST ? SBX_EFORMAT : SBX_EIO, "cannot create %s: %s",
		                path, strerror(errno));
	return 0;
}

static int async_do(struct item_writer *w, struct item_async *a, const struct async_op *op,
                    struct sbx_err *e)
{
	int k = op->slot;

	if (op->kind == OP_DATA) {
		if (atomic_write_all(w->fd[k], op->buf, op->len) != 0)
			return sbx_fail(e, SBX_EIO, "cannot write %s: %s", a->path[k], strerror(errno));
		return 0;
	}
	if (w->fd[k] >= 0) {
		int c = close(w->fd[k]);

		w->fd[k] = -1;
		if (c != 0)
			return sbx_fail(e, SBX_EIO, "cannot write %s: %s", a->path[k], strerror(errno));
	}
	memcpy(a->path[k], op->path, sizeof a->path[k]);
	return create_item(op->dir, op->name, op->path, &w->fd[k], e);
}

static void *async_main(void *arg)
{
	struct item_writer *w = arg;
	struct item_async *a = w->async;

	pthread_mutex_lock(&a->mu);
	for (;;) {
		const struct async_op *op;

		while (a->done == a->posted && !a->stop)
			pthread_cond_wait(&a->cv, &a->mu);
		if (a->done == a->posted)
			break;
		op = &a->q[a->done % ASYNC_SLOTS];
		/* After a failure, or told to quit, the queue drains unwritten. */
		if (a->failed == 0 && !a->quit) {
			struct sbx_err e = { 0 };
			int r;

			pthread_mutex_unlock(&a->mu);
			r = async_do(w, a, op, &e);
			pthread_mutex_lock(&a->mu);
			if (r != 0 && a->failed == 0) {
				a->failed = r;
				a->err = e;
			}
		}
		a->done++;
		pthread_cond_broadcast(&a->cv);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

int item_writer_start_async(struct item_writer *w)
{
	struct item_async *a;

	/* Only for a writer that does no hashing of its own. */
	if (w->async != NULL || !w->reader_hashes)
		return 0;
	a = calloc(1, sizeof *a);
	if (a == NULL)
		return 0;
	for (int i = 0; i < ASYNC_SLOTS; i++) {
		a->q[i].buf = malloc(ASYNC_BUF);
		if (a->q[i].buf == NULL)
			goto fail;
	}
	if (pthread_mutex_init(&a->mu, NULL) != 0)
		goto fail;
	if (pthread_cond_init(&a->cv, NULL) != 0) {
		pthread_mutex_destroy(&a->mu);
		goto fail;
	}
	w->async = a;
	a->running = worker_start(&a->th, async_main, w);
	if (a->running)
		return 0;
	w->async = NULL;
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
fail:
	for (int i = 0; i < ASYNC_SLOTS; i++)
		free(a->q[i].buf);
	free(a);
	return 0;
}

/* The thread's first failure, if any, as this call's. */
static int async_failure(struct item_async *a, struct sbx_err *e)
{
	int r;

	pthread_mutex_lock(&a->mu);
	r = a->failed;
	if (r != 0)
		sbx_fail(e, r, "%s", a->err.msg);
	pthread_mutex_unlock(&a->mu);
	return r;
}

/* A free op to fill (waits for room); post it with async_post. */
static struct async_op *async_slot(struct item_async *a)
{
	struct async_op *op;

	pthread_mutex_lock(&a->mu);
	while (a->posted - a->done >= ASYNC_SLOTS)
		pthread_cond_wait(&a->cv, &a->mu);
	op = &a->q[a->posted % ASYNC_SLOTS];
	pthread_mutex_unlock(&a->mu);
	return op;
}

static void async_post(struct item_async *a)
{
	pthread_mutex_lock(&a->mu);
	a->posted++;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

/* Waits for the thread (quit: dropping what is queued; else writing it all)
 * and frees it; the fds are the caller's again.  Returns the thread's first
 * failure, said in e if given. */
static int async_end(struct item_writer *w, int quit, struct sbx_err *e)
{
	struct item_async *a = w->async;
	int r;

	if (a == NULL)
		return 0;
	if (a->running) {
		pthread_mutex_lock(&a->mu);
		a->stop = 1;
		a->quit = a->quit || quit;
		pthread_cond_broadcast(&a->cv);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->th, NULL);
		a->running = 0;
	}
	r = a->failed;
	if (r != 0 && e != NULL)
		sbx_fail(e, r, "%s", a->err.msg);
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	/* The ring held plaintext. */
	for (int i = 0; i < ASYNC_SLOTS; i++) {
		OPENSSL_cleanse(a->q[i].buf, ASYNC_BUF);
		free(a->q[i].buf);
	}
	OPENSSL_cleanse(a, sizeof *a);
	free(a);
	w->async = NULL;
	return r;
}

void item_writer_stop(struct item_writer *w)
{
	(void)async_end(w, 1, NULL);
}

int item_writer_init(struct item_writer *w, int dirfd)
{
	memset(w, 0, sizeof *w);
	w->dirfd = dirfd;
	w->imgfd = -1;
	for (int k = 0; k < ITEM_SLOTS; k++) {
		w->fd[k] = -1;
		w->h[k] = hash_new();
		if (w->h[k] == NULL)
			return SBX_ENOMEM;
	}
	return 0;
}

int item_writer_init_ended(struct item_writer *w, int dirfd)
{
	memset(w, 0, sizeof *w);
	w->dirfd = dirfd;
	w->imgfd = -1;
	for (int k = 0; k < ITEM_SLOTS; k++)
		w->fd[k] = -1;
	w->reader_hashes = 1;
	return 0;
}

static int name_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-' || c == '~';
}

/* docs/FORMAT.md 5.2; NULL if the path is not one an opener may create. */
static const char *image_name(const char *path)
{
	const char *n;
	size_t len;

	if (strncmp(path, "images/", 7) != 0)
		return NULL;
	n = path + 7;
	len = strlen(n);
	if (len < 1 || len > 500 || n[0] == '.')
		return NULL;
	for (size_t i = 0; i < len; i++)
		if (!name_char((unsigned char)n[i]))
			return NULL;
	return n;
}

static int close_slot(struct item_writer *w, int k, struct sbx_err *e)
{
	struct staging_item *it;
	int r = 0;

	if (w->fd[k] < 0)
		return 0;
	it = &w->items[w->idx[k]];
	if (!w->reader_hashes && hash_final(w->h[k], it->sha256) != 0)
		r = sbx_fail(e, SBX_ECRYPTO, "hashing %s failed", it->path);
	if (close(w->fd[k]) != 0 && r == 0)
		r = sbx_fail(e, SBX_EIO, "cannot write %s: %s", it->path, strerror(errno));
	w->fd[k] = -1;
	return r;
}

static int slot_of(uint32_t no)
{
	return no < 2 ? (int)no : 2;
}

int item_writer_begin(void *arg, uint32_t no, const char *path, struct sbx_err *e)
{
	static const char *const text[2] = { "reads.jsonl", "reads.csv" };
	struct item_writer *w = arg;
	struct staging_item *it;
	const char *img = NULL;
	int k = slot_of(no), r, dir;

	if (no != w->n)
		return sbx_fail(e, SBX_EFORMAT, "payload: item %u declared out of order", no);
	if (k < 2 ? strcmp(path, text[k]) != 0 : (img = image_name(path)) == NULL)
		return sbx_fail(e, SBX_EFORMAT, "payload: item %u has a path an opener never"
		                " writes", no);
	if (w->async != NULL) {
		r = async_failure(w->async, e);
		if (r != 0)
			return r;
	} else {
		r = close_slot(w, k, e);
		if (r != 0)
			return r;
	}
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		struct staging_item *ni = realloc(w->items, cap * sizeof *ni);

		if (ni == NULL)
			return sbx_fail(e, SBX_ENOMEM, "out of memory");
		w->items = ni;
		w->cap = cap;
	}
	it = &w->items[w->n];
	memset(it, 0, sizeof *it);
	it->path = strdup(path);
	if (it->path == NULL)
		return sbx_fail(e, SBX_ENOMEM, "out of memory");
	w->n++;
	if (img != NULL && w->imgfd < 0) {
		if (mkdirat(w->dirfd, "images", 0700) != 0)
			return sbx_fail(e, SBX_EIO, "cannot create images/: %s", strerror(errno));
		w->imgfd = openat(w->dirfd, "images", O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		                  O_CLOEXEC);
		if (w->imgfd < 0)
			return sbx_fail(e, SBX_EIO, "cannot open images/: %s", strerror(errno));
	}
	dir = img != NULL ? w->imgfd : w->dirfd;
	if (w->async != NULL) {
		struct async_op *op = async_slot(w->async);

		op->kind = OP_OPEN;
		op->slot = k;
		op->dir = dir;
		snprintf(op->name, sizeof op->name, "%s", img != NULL ? img : path);
		snprintf(op->path, sizeof op->path, "%s", path);
		async_post(w->async);
		w->async->opened[k] = 1;
		w->idx[k] = w->n - 1;
		if (img != NULL)
			w->images++;
		return 0;
	}
	r = create_item(dir, img != NULL ? img : path, path, &w->fd[k], e);
	if (r != 0)
		return r;
	w->idx[k] = w->n - 1;
	if (img != NULL)
		w->images++;
	return 0;
}

int item_writer_data(void *arg, uint32_t no, const uint8_t *p, size_t n, struct sbx_err *e)
{
	struct item_writer *w = arg;
	struct staging_item *it;
	int k = slot_of(no);

	if ((w->async != NULL ? !w->async->opened[k] : w->fd[k] < 0) || w->idx[k] != no)
		return sbx_fail(e, SBX_EFORMAT, "payload: data for item %u, which is not open", no);
	it = &w->items[no];
	if (w->async != NULL) {
		int r = async_failure(w->async, e);

		/* A copy goes to the writing thread: p is the reader's buffer. */
		for (size_t off = 0; r == 0 && off < n; ) {
			struct async_op *op = async_slot(w->async);
			size_t len = n - off < ASYNC_BUF ? n - off : ASYNC_BUF;

			op->kind = OP_DATA;
			op->slot = k;
			op->len = len;
			memcpy(op->buf, p + off, len);
			async_post(w->async);
			off += len;
		}
		if (r != 0)
			return r;
	} else if (atomic_write_all(w->fd[k], p, n) != 0) {
		return sbx_fail(e, SBX_EIO, "cannot write %s: %s", it->path, strerror(errno));
	}
	if (!w->reader_hashes && hash_update(w->h[k], p, n) != 0)
		return sbx_fail(e, SBX_ECRYPTO, "hashing %s failed", it->path);
	it->size += n;
	w->bytes += n;
	if (k == 0) {
		const uint8_t *q = p, *end = p + n;

		while ((q = memchr(q, '\n', (size_t)(end - q))) != NULL) {
			w->jsonl_lines++;
			q++;
		}
	}
	return 0;
}

int item_writer_end(void *arg, uint32_t no, uint64_t size, const uint8_t sha256[static 32],
                    struct sbx_err *e)
{
	struct item_writer *w = arg;
	struct staging_item *it;

	if (!w->reader_hashes || no >= w->n)
		return sbx_fail(e, SBX_EINVAL, "internal: end of item %u, which was not declared", no);
	it = &w->items[no];
	/* The reader counted what it handed over; we counted what we wrote. */
	if (it->ended || it->size != size)
		return sbx_fail(e, SBX_EINVAL, "internal: item %u ends twice or at %llu bytes, %llu"
		                " written", no, (unsigned long long)size, (unsigned long long)it->size);
	memcpy(it->sha256, sha256, 32);
	it->ended = 1;
	return 0;
}

int item_writer_finish(struct item_writer *w, struct sbx_err *e)
{
	/* Everything queued is written (or the first failure kept) once the
	 * thread has drained. */
	int r = async_end(w, 0, e);
	for (int k = 0; k < ITEM_SLOTS; k++) {
		int rk = close_slot(w, k, e);

		r = r != 0 ? r : rk;
	}
	for (size_t i = 0; r == 0 && w->reader_hashes && i < w->n; i++)
		if (!w->items[i].ended)
			r = sbx_fail(e, SBX_EINVAL, "internal: no SHA-256 for %s", w->items[i].path);
	return r;
}

void item_writer_free(struct item_writer *w)
{
	item_writer_stop(w);
	for (int k = 0; k < ITEM_SLOTS; k++) {
		if (w->fd[k] >= 0)
			close(w->fd[k]);
		hash_free(w->h[k]);
	}
	if (w->imgfd >= 0)
		close(w->imgfd);
	for (size_t i = 0; i < w->n; i++)
		free(w->items[i].path);
	free(w->items);
	memset(w, 0, sizeof *w);
	w->imgfd = -1;
	for (int k = 0; k < ITEM_SLOTS; k++)
		w->fd[k] = -1;
}

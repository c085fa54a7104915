/* faultshim: an LD_PRELOAD fault injector for the crash and I/O-error
 * campaigns (tests/faults/campaign.sh), after SQLite's counted-operation
 * crash and I/O-error tests.
 *
 * It counts the calls of one process that change durable state, and at the
 * k-th matching call it kills the process or makes the call fail:
 *
 *   SBX_FAULT_OP     comma-separated call names or classes (default "all"):
 *                    write pwrite pwrite64 writev fsync fdatasync rename
 *                    renameat renameat2 unlink unlinkat close copy_file_range
 *                    linkat tpm; classes: sync (fsync, fdatasync), space (the writes,
 *                    copy_file_range, the syncs, the renames: the calls that
 *                    can meet a full disk), file (every call but tpm), all.
 *   SBX_FAULT_K      k, 1-based; 0 or unset: count only, never fault
 *   SBX_FAULT_MODE   kill        SIGKILL at the k-th call, before it runs
 *                    powercut    as kill, after undoing every unlink,
 *                                rename and linkat whose directory was not fsynced
 *                                since (a power cut loses directory entries
 *                                not yet on disk; file data is not modelled)
 *                    eio, enospc the k-th call fails once with that errno
 *                    eio-sticky, enospc-sticky   the k-th and every later one
 *   SBX_FAULT_COUNT_FILE  at exit: the number of matching calls, one line
 *   SBX_FAULT_HIT_FILE    when the fault fires: "k call target" (and, after
 *                    a failed fsync, one "resync k call target" line for
 *                    every later sync of the same file)
 *   SBX_FAULT_TRACE  every matching call: "k call target", appended
 *   SBX_FAULT_TPM_SUFFIX  a unix socket whose path ends so is the TPM's
 *                    command channel (default "tpm.sock"; the swtpm TCTI
 *                    connects once per command)
 *
 * What counts.  File calls count on regular files and directories only
 * (not on terminals, pipes or sockets: the GPIO simulator's socket and the
 * parser child's pipe are not storage).  "tpm" counts each write, send,
 * sendto, sendmsg or writev on a TPM command socket: one per TPM command.
 * Only the process the shim was loaded into counts: after fork() the child
 * is inert (set by a pthread_atfork handler, so the child makes no extra
 * system call its seccomp filter could refuse).
 *
 * stdio's own writes go through glibc-internal calls that no preload can
 * see; the product writes every durable file with write(2) and friends. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

enum call {
	K_WRITE, K_PWRITE, K_PWRITE64, K_WRITEV, K_FSYNC, K_FDATASYNC, K_RENAME,
	K_RENAMEAT, K_RENAMEAT2, K_UNLINK, K_UNLINKAT, K_CLOSE, K_COPY, K_LINKAT, K_TPM, K_NCALLS
};

static const char *const call_name[K_NCALLS] = {
	"write", "pwrite", "pwrite64", "writev", "fsync", "fdatasync", "rename",
	"renameat", "renameat2", "unlink", "unlinkat", "close", "copy_file_range", "linkat", "tpm"
};

#define BIT(c) (1u << (c))
#define M_SYNC  (BIT(K_FSYNC) | BIT(K_FDATASYNC))
#define M_WRITE (BIT(K_WRITE) | BIT(K_PWRITE) | BIT(K_PWRITE64) | BIT(K_WRITEV))
#define M_RENAME (BIT(K_RENAME) | BIT(K_RENAMEAT) | BIT(K_RENAMEAT2))
#define M_SPACE (M_WRITE | BIT(K_COPY) | M_SYNC | M_RENAME | BIT(K_LINKAT))
#define M_FILE  (BIT(K_TPM) - 1u)
#define M_ALL   (BIT(K_NCALLS) - 1u)

enum mode { MODE_KILL, MODE_EIO, MODE_ENOSPC, MODE_POWERCUT };

static struct {
	int ready, inert, sticky, mode;
	unsigned mask;
	unsigned long k;
	const char *count_file, *hit_file, *tpm_suffix;
	int trace_fd;
} cfg = { .trace_fd = -1 };

static unsigned long g_count;   /* matching calls so far (atomic) */
static unsigned char tpm_fd[4096];   /* fd -> is a TPM command socket */

#define FAILED_MAX 64
static struct { dev_t dev; ino_t ino; } failed_sync[FAILED_MAX];
static int n_failed_sync;
static pthread_mutex_t failed_mu = PTHREAD_MUTEX_INITIALIZER;

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_renameat2)(int, const char *, int, const char *, unsigned);
static int (*real_unlink)(const char *);
static int (*real_unlinkat)(int, const char *, int);
static int (*real_close)(int);
static ssize_t (*real_copy_file_range)(int, off64_t *, int, off64_t *, size_t, unsigned);
static int (*real_connect)(int, const struct sockaddr *, socklen_t);
static ssize_t (*real_send)(int, const void *, size_t, int);
static ssize_t (*real_sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
static int (*real_link)(const char *, const char *);
static int (*real_linkat)(int, const char *, int, const char *, int);

/* powercut: directory entries changed since their directory's last sync.
 * An unlink keeps the file alive under a hard link; a rename that replaces
 * keeps the old target the same way.  A directory sync forgets the entries
 * of that directory (and removes their hard links); the power cut undoes
 * the rest, newest first, then kills the process. */
#define PEND_MAX 256
#define PATH_CAP 2048
struct pend {
	int is_rename, has_backup;
	dev_t ddev;
	ino_t dino;
	char from[PATH_CAP], to[PATH_CAP], backup[PATH_CAP];
};
static struct pend *pend;
static int n_pend, n_backup;
static pthread_mutex_t pend_mu = PTHREAD_MUTEX_INITIALIZER;
static void pend_drop_all(void);

static void *sym(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

static void resolve(void)
{
	real_write = sym("write");
	real_pwrite = sym("pwrite");
	real_pwrite64 = sym("pwrite64");
	real_writev = sym("writev");
	real_fsync = sym("fsync");
	real_fdatasync = sym("fdatasync");
	real_rename = sym("rename");
	real_renameat = sym("renameat");
	real_renameat2 = sym("renameat2");
	real_unlink = sym("unlink");
	real_unlinkat = sym("unlinkat");
	real_close = sym("close");
	real_copy_file_range = sym("copy_file_range");
	real_connect = sym("connect");
	real_send = sym("send");
	real_sendto = sym("sendto");
	real_sendmsg = sym("sendmsg");
	real_link = sym("link");
	real_linkat = sym("linkat");
}

static void on_fork_child(void)
{
	cfg.inert = 1;
}

static unsigned parse_ops(const char *s)
{
	unsigned m = 0;
	char buf[512], *save = NULL, *t;

	if (s == NULL || *s == '\0')
		return M_ALL;
	snprintf(buf, sizeof buf, "%s", s);
	for (t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		int found = 0;

		if (!strcmp(t, "all")) { m |= M_ALL; continue; }
		if (!strcmp(t, "file")) { m |= M_FILE; continue; }
		if (!strcmp(t, "sync")) { m |= M_SYNC; continue; }
		if (!strcmp(t, "space")) { m |= M_SPACE; continue; }
		for (int c = 0; c < K_NCALLS; c++)
			if (!strcmp(t, call_name[c])) {
				m |= BIT(c);
				found = 1;
			}
		if (!found) {
			fprintf(stderr, "faultshim: unknown SBX_FAULT_OP '%s'\n", t);
			_exit(99);
		}
	}
	return m;
}

__attribute__((constructor)) static void shim_init(void)
{
	const char *mode = getenv("SBX_FAULT_MODE"), *k = getenv("SBX_FAULT_K");
	const char *trace = getenv("SBX_FAULT_TRACE");

	resolve();
	cfg.mask = parse_ops(getenv("SBX_FAULT_OP"));
	cfg.k = k ? strtoul(k, NULL, 10) : 0;
	cfg.mode = MODE_EIO;
	if (mode == NULL || !strcmp(mode, "kill")) {
		cfg.mode = MODE_KILL;
	} else if (!strcmp(mode, "powercut")) {
		cfg.mode = MODE_POWERCUT;
	} else if (!strcmp(mode, "eio") || !strcmp(mode, "eio-sticky")) {
		cfg.mode = MODE_EIO;
		cfg.sticky = mode[3] != '\0';
	} else if (!strcmp(mode, "enospc") || !strcmp(mode, "enospc-sticky")) {
		cfg.mode = MODE_ENOSPC;
		cfg.sticky = mode[6] != '\0';
	} else {
		fprintf(stderr, "faultshim: unknown SBX_FAULT_MODE '%s'\n", mode);
		_exit(99);
	}
	cfg.count_file = getenv("SBX_FAULT_COUNT_FILE");
	cfg.hit_file = getenv("SBX_FAULT_HIT_FILE");
	cfg.tpm_suffix = getenv("SBX_FAULT_TPM_SUFFIX");
	if (cfg.tpm_suffix == NULL || *cfg.tpm_suffix == '\0')
		cfg.tpm_suffix = "tpm.sock";
	if (trace != NULL && *trace != '\0')
		cfg.trace_fd = open(trace, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	pthread_atfork(NULL, NULL, on_fork_child);
	cfg.ready = 1;
}

static void append_line(const char *path, const char *line)
{
	int fd;

	if (path == NULL || *path == '\0')
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	(void)real_write(fd, line, strlen(line));
	real_close(fd);
}

__attribute__((destructor)) static void shim_fini(void)
{
	char line[64];

	if (!cfg.ready || cfg.inert)
		return;
	if (cfg.mode == MODE_POWERCUT && n_pend > 0) {
		pthread_mutex_lock(&pend_mu);
		pend_drop_all();
		pthread_mutex_unlock(&pend_mu);
	}
	if (cfg.count_file == NULL)
		return;
	snprintf(line, sizeof line, "%lu\n", __atomic_load_n(&g_count, __ATOMIC_SEQ_CST));
	/* Truncate: the file holds the last count only. */
	{
		int fd = open(cfg.count_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (fd >= 0) {
			(void)real_write(fd, line, strlen(line));
			real_close(fd);
		}
	}
}

static void fd_target(int fd, char *out, size_t cap)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	n = readlink(link, out, cap - 1);
	if (n < 0)
		snprintf(out, cap, "fd%d", fd);
	else
		out[n] = '\0';
}

static void at_target(int dirfd, const char *name, char *out, size_t cap)
{
	char dir[1024];

	if (name != NULL && name[0] != '/' && dirfd != AT_FDCWD) {
		fd_target(dirfd, dir, sizeof dir);
		snprintf(out, cap, "%s/%s", dir, name);
	} else {
		snprintf(out, cap, "%s", name ? name : "?");
	}
}

/* A file call on fd counts only on regular files and directories. */
static int is_storage_fd(int fd)
{
	struct stat sb;

	if (fd < 0 || fstat(fd, &sb) != 0)
		return 0;
	return S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode);
}

static int is_tpm_fd(int fd)
{
	return fd >= 0 && (size_t)fd < sizeof tpm_fd &&
	       __atomic_load_n(&tpm_fd[fd], __ATOMIC_RELAXED);
}

static void note_failed_sync(int fd)
{
	struct stat sb;

	if (fstat(fd, &sb) != 0)
		return;
	pthread_mutex_lock(&failed_mu);
	if (n_failed_sync < FAILED_MAX) {
		failed_sync[n_failed_sync].dev = sb.st_dev;
		failed_sync[n_failed_sync].ino = sb.st_ino;
		n_failed_sync++;
	}
	pthread_mutex_unlock(&failed_mu);
}

/* A later sync of a file whose sync failed: reported, so the campaign can
 * tell a retry that is trusted from a rollback that rewrites the file. */
static void check_resync(int fd, enum call c, unsigned long n)
{
	struct stat sb;
	int hit = 0;

	if (n_failed_sync == 0 || fstat(fd, &sb) != 0)
		return;
	pthread_mutex_lock(&failed_mu);
	for (int i = 0; i < n_failed_sync; i++)
		if (failed_sync[i].dev == sb.st_dev && failed_sync[i].ino == sb.st_ino)
			hit = 1;
	pthread_mutex_unlock(&failed_mu);
	if (hit) {
		char t[2048], line[2300];

		fd_target(fd, t, sizeof t);
		snprintf(line, sizeof line, "resync %lu %s %s\n", n, call_name[c], t);
		append_line(cfg.hit_file, line);
	}
}

static void parent_dir(const char *path, char *out, size_t cap)
{
	const char *sl = strrchr(path, '/');

	if (sl == NULL)
		snprintf(out, cap, ".");
	else if (sl == path)
		snprintf(out, cap, "/");
	else
		snprintf(out, cap, "%.*s", (int)(sl - path), path);
}

/* Records a directory change about to happen to `from` (unlink, kind 0),
 * `from` -> `to` (rename, kind 1) or a new name `to` (link, kind 2); paths
 * absolute or relative to the cwd. */
static int pend_note(int is_rename, const char *from, const char *to)
{
	struct pend *p;
	struct stat sb;
	char dir[PATH_CAP - 64];
	int idx = -1;

	if (cfg.mode != MODE_POWERCUT || cfg.inert || !cfg.ready)
		return -1;
	pthread_mutex_lock(&pend_mu);
	if (pend == NULL)
		pend = calloc(PEND_MAX, sizeof *pend);
	if (pend == NULL || n_pend >= PEND_MAX)
		goto out;
	p = &pend[n_pend];
	memset(p, 0, sizeof *p);
	p->is_rename = is_rename;
	snprintf(p->from, sizeof p->from, "%s", from);
	snprintf(p->to, sizeof p->to, "%s", to ? to : "");
	parent_dir(is_rename ? to : from, dir, sizeof dir);
	if (stat(dir, &sb) != 0)
		goto out;
	p->ddev = sb.st_dev;
	p->dino = sb.st_ino;
	/* What the change destroys survives under a hard link (a new link
	 * destroys nothing). */
	if (is_rename != 2 && (!is_rename || lstat(to, &sb) == 0)) {
		snprintf(p->backup, sizeof p->backup, "%s/.faultshim-%ld-%d", dir, (long)getpid(),
		         n_backup++);
		p->has_backup = real_link(is_rename ? to : from, p->backup) == 0;
		if (!is_rename && !p->has_backup)
			goto out;   /* a directory or a vanished file: not modelled */
	}
	idx = n_pend++;
out:
	pthread_mutex_unlock(&pend_mu);
	return idx;
}

/* The change did not happen after all. */
static void pend_cancel(int idx)
{
	if (idx < 0)
		return;
	pthread_mutex_lock(&pend_mu);
	if (idx == n_pend - 1) {
		if (pend[idx].has_backup)
			real_unlink(pend[idx].backup);
		n_pend--;
	}
	pthread_mutex_unlock(&pend_mu);
}

/* A sync of directory fd makes its pending entries durable. */
static void pend_synced(int fd)
{
	struct stat sb;
	int j = 0;

	if (n_pend == 0 || fstat(fd, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return;
	pthread_mutex_lock(&pend_mu);
	for (int i = 0; i < n_pend; i++) {
		if (pend[i].ddev == sb.st_dev && pend[i].dino == sb.st_ino) {
			if (pend[i].has_backup)
				real_unlink(pend[i].backup);
			continue;
		}
		if (j != i)
			pend[j] = pend[i];
		j++;
	}
	n_pend = j;
	pthread_mutex_unlock(&pend_mu);
}

static void pend_undo(void)
{
	char line[PATH_CAP * 2 + 64];

	for (int i = n_pend - 1; i >= 0; i--) {
		struct pend *p = &pend[i];

		if (p->is_rename == 2) {
			real_unlink(p->to);
			snprintf(line, sizeof line, "undo link %s\n", p->to);
		} else if (p->is_rename) {
			real_rename(p->to, p->from);
			if (p->has_backup)
				real_rename(p->backup, p->to);
			snprintf(line, sizeof line, "undo rename %s -> %s\n", p->from, p->to);
		} else {
			real_rename(p->backup, p->from);
			snprintf(line, sizeof line, "undo unlink %s\n", p->from);
		}
		append_line(cfg.hit_file, line);
	}
	n_pend = 0;
}

static void pend_drop_all(void)
{
	for (int i = 0; i < n_pend; i++)
		if (pend[i].has_backup)
			real_unlink(pend[i].backup);
	n_pend = 0;
}

/* Counts one matching call.  Returns 0 to run the call as usual, or the
 * errno it must fail with.  kill never returns. */
static int tick(enum call c, int fd, const char *target, unsigned long *np)
{
	unsigned long n;
	char t[4200], line[4400];
	int fire;

	*np = 0;
	if (!cfg.ready || cfg.inert || !(cfg.mask & BIT(c)))
		return 0;
	n = __atomic_add_fetch(&g_count, 1, __ATOMIC_SEQ_CST);
	*np = n;
	fire = cfg.k > 0 && (n == cfg.k || (cfg.sticky && n > cfg.k));
	if (cfg.trace_fd >= 0 || fire) {
		if (target != NULL)
			snprintf(t, sizeof t, "%s", target);
		else if (fd >= 0)
			fd_target(fd, t, sizeof t);
		else
			snprintf(t, sizeof t, "?");
		snprintf(line, sizeof line, "%lu %s %s\n", n, call_name[c], t);
		if (cfg.trace_fd >= 0)
			(void)real_write(cfg.trace_fd, line, strlen(line));
		if (fire && (n == cfg.k))
			append_line(cfg.hit_file, line);
	}
	if (!fire)
		return 0;
	if (cfg.mode == MODE_KILL || cfg.mode == MODE_POWERCUT) {
		if (cfg.mode == MODE_POWERCUT) {
			pthread_mutex_lock(&pend_mu);
			pend_undo();
		}
		kill(getpid(), SIGKILL);
		for (;;)
			pause();
	}
	return cfg.mode == MODE_ENOSPC ? ENOSPC : EIO;
}

static int storage_tick(enum call c, int fd, unsigned long *np)
{
	*np = 0;
	if (!cfg.ready || cfg.inert || !(cfg.mask & BIT(c)) || !is_storage_fd(fd))
		return 0;
	return tick(c, fd, NULL, np);
}

static int tpm_tick(int fd)
{
	unsigned long n;

	if (!is_tpm_fd(fd) || cfg.inert)
		return 0;
	return tick(K_TPM, -1, "tpm", &n);
}

ssize_t write(int fd, const void *buf, size_t len)
{
	unsigned long n;
	int err = is_tpm_fd(fd) ? tpm_tick(fd) : storage_tick(K_WRITE, fd, &n);

	if (err) {
		errno = err;
		return -1;
	}
	return real_write(fd, buf, len);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	unsigned long n;
	int err = storage_tick(K_PWRITE, fd, &n);

	if (err) {
		errno = err;
		return -1;
	}
	return real_pwrite(fd, buf, len, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off64_t off)
{
	unsigned long n;
	int err = storage_tick(K_PWRITE64, fd, &n);

	if (err) {
		errno = err;
		return -1;
	}
	return real_pwrite64(fd, buf, len, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	unsigned long n;
	int err = is_tpm_fd(fd) ? tpm_tick(fd) : storage_tick(K_WRITEV, fd, &n);

	if (err) {
		errno = err;
		return -1;
	}
	return real_writev(fd, iov, cnt);
}

static int do_sync(enum call c, int fd, int (*real)(int))
{
	unsigned long n;
	int err = storage_tick(c, fd, &n);

	if (err) {
		note_failed_sync(fd);
		errno = err;
		return -1;
	}
	if (n > 0)
		check_resync(fd, c, n);
	if (real(fd) != 0)
		return -1;
	if (cfg.mode == MODE_POWERCUT && !cfg.inert)
		pend_synced(fd);
	return 0;
}

int fsync(int fd)
{
	return do_sync(K_FSYNC, fd, real_fsync);
}

int fdatasync(int fd)
{
	return do_sync(K_FDATASYNC, fd, real_fdatasync);
}

static int rename_tick(enum call c, int ofd, const char *o, int nfd, const char *nw)
{
	char a[2100], b[2100], t[4300];
	unsigned long n;

	if (!cfg.ready || cfg.inert || !(cfg.mask & BIT(c)))
		return 0;
	at_target(ofd, o, a, sizeof a);
	at_target(nfd, nw, b, sizeof b);
	snprintf(t, sizeof t, "%s -> %s", a, b);
	return tick(c, -1, t, &n);
}

int rename(const char *o, const char *nw)
{
	int err = rename_tick(K_RENAME, AT_FDCWD, o, AT_FDCWD, nw);

	if (err) {
		errno = err;
		return -1;
	}
	{
		int idx = pend_note(1, o, nw), r = real_rename(o, nw);

		if (r != 0)
			pend_cancel(idx);
		return r;
	}
}

int renameat(int ofd, const char *o, int nfd, const char *nw)
{
	int err = rename_tick(K_RENAMEAT, ofd, o, nfd, nw);

	if (err) {
		errno = err;
		return -1;
	}
	{
		char a[PATH_CAP], b[PATH_CAP];
		int idx, r;

		at_target(ofd, o, a, sizeof a);
		at_target(nfd, nw, b, sizeof b);
		idx = pend_note(1, a, b);
		r = real_renameat(ofd, o, nfd, nw);
		if (r != 0)
			pend_cancel(idx);
		return r;
	}
}

int renameat2(int ofd, const char *o, int nfd, const char *nw, unsigned flags)
{
	int err = rename_tick(K_RENAMEAT2, ofd, o, nfd, nw);

	if (err) {
		errno = err;
		return -1;
	}
	{
		char a[PATH_CAP], b[PATH_CAP];
		int idx, r;

		at_target(ofd, o, a, sizeof a);
		at_target(nfd, nw, b, sizeof b);
		idx = pend_note(1, a, b);
		r = real_renameat2(ofd, o, nfd, nw, flags);
		if (r != 0)
			pend_cancel(idx);
		return r;
	}
}

int unlink(const char *p)
{
	unsigned long n;
	int err = 0;

	if (cfg.ready && !cfg.inert && (cfg.mask & BIT(K_UNLINK)))
		err = tick(K_UNLINK, -1, p, &n);
	if (err) {
		errno = err;
		return -1;
	}
	{
		int idx = pend_note(0, p, NULL), r = real_unlink(p);

		if (r != 0)
			pend_cancel(idx);
		return r;
	}
}

int unlinkat(int dfd, const char *p, int flags)
{
	char t[2100];
	unsigned long n;
	int err = 0;

	if (cfg.ready && !cfg.inert && (cfg.mask & BIT(K_UNLINKAT))) {
		at_target(dfd, p, t, sizeof t);
		err = tick(K_UNLINKAT, -1, t, &n);
	}
	if (err) {
		errno = err;
		return -1;
	}
	{
		int idx = -1, r;

		if (!(flags & AT_REMOVEDIR)) {
			at_target(dfd, p, t, sizeof t);
			idx = pend_note(0, t, NULL);
		}
		r = real_unlinkat(dfd, p, flags);
		if (r != 0)
			pend_cancel(idx);
		return r;
	}
}

int close(int fd)
{
	unsigned long n;
	int err, r;

	if (!real_close)
		resolve();
	if (fd >= 0 && (size_t)fd < sizeof tpm_fd)
		__atomic_store_n(&tpm_fd[fd], 0, __ATOMIC_RELAXED);
	err = storage_tick(K_CLOSE, fd, &n);
	/* Linux frees the descriptor even when close reports an error. */
	r = real_close(fd);
	if (err) {
		errno = err;
		return -1;
	}
	return r;
}

ssize_t copy_file_range(int in, off64_t *ioff, int out, off64_t *ooff, size_t len,
                        unsigned flags)
{
	unsigned long n;
	int err = storage_tick(K_COPY, out, &n);

	if (err) {
		errno = err;
		return -1;
	}
	return real_copy_file_range(in, ioff, out, ooff, len, flags);
}

/* How an anonymous file (O_TMPFILE) gets its name. */
int linkat(int ofd, const char *o, int nfd, const char *nw, int flags)
{
	int err = rename_tick(K_LINKAT, ofd, o, nfd, nw);

	if (err) {
		errno = err;
		return -1;
	}
	{
		char b[PATH_CAP];
		int idx, r;

		at_target(nfd, nw, b, sizeof b);
		idx = pend_note(2, "", b);
		r = real_linkat(ofd, o, nfd, nw, flags);
		if (r != 0)
			pend_cancel(idx);
		return r;
	}
}

int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	int r = real_connect(fd, sa, len);

	if (r == 0 && !cfg.inert && sa != NULL && sa->sa_family == AF_UNIX &&
	    fd >= 0 && (size_t)fd < sizeof tpm_fd) {
		const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
		const char *suffix = cfg.tpm_suffix ? cfg.tpm_suffix : "tpm.sock";
		size_t pl = strnlen(un->sun_path, sizeof un->sun_path), sl = strlen(suffix);

		if (pl >= sl && memcmp(un->sun_path + pl - sl, suffix, sl) == 0)
			__atomic_store_n(&tpm_fd[fd], 1, __ATOMIC_RELAXED);
	}
	return r;
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	int err = tpm_tick(fd);

	if (err) {
		errno = err;
		return -1;
	}
	return real_send(fd, buf, len, flags);
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
               socklen_t tolen)
{
	int err = tpm_tick(fd);

	if (err) {
		errno = err;
		return -1;
	}
	return real_sendto(fd, buf, len, flags, to, tolen);
}

ssize_t sendmsg(int fd, const struct msghdr *m, int flags)
{
	int err = tpm_tick(fd);

	if (err) {
		errno = err;
		return -1;
	}
	return real_sendmsg(fd, m, flags);
}

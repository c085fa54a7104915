/* The parser child's seccomp allowlist, call by call: each case forks, installs
 * the filter exactly as the ingest child does (seccomp_confine_parser), makes
 * one system call and exits 0.  Allowed calls must let it exit 0; forbidden
 * ones must kill it with SIGSYS before it can exit. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "appliance/seccomp.h"
#include "tests/unit/check.h"

/* Set up before forking, used by the cases. */
static int dirfd_ = -1, filefd = -1, pipew = -1;

static int c_pread(void)
{
	char b[4];

	return pread(filefd, b, sizeof b, 0) == 4 ? 0 : 1;
}

static int c_fstat(void)
{
	struct stat sb;

	return fstat(filefd, &sb) == 0 && sb.st_size == 4 ? 0 : 1;
}

static int c_lseek_read(void)
{
	char b[4];

	return lseek(filefd, 1, SEEK_SET) == 1 && read(filefd, b, 3) == 3 ? 0 : 1;
}

static int c_write_pipe(void)
{
	return write(pipew, "x", 1) == 1 ? 0 : 1;
}

static int c_malloc(void)
{
	/* Small (brk), large (mmap), grown (mremap), freed (munmap). */
	char *s = malloc(100), *l = malloc(64u << 20), *g;
	int ok = s != NULL && l != NULL;

	if (l != NULL) {
		memset(l, 1, 64u << 20);
		g = realloc(l, 128u << 20);
		if (g == NULL)
			ok = 0;
		else
			l = g;
	}
	free(s);
	free(l);
	return ok ? 0 : 1;
}

static int c_getrandom(void)
{
	uint8_t k[16];

	return syscall(SYS_getrandom, k, sizeof k, 0) == 16 ? 0 : 1;
}

static int c_clock(void)
{
	struct timespec ts;
	struct tm tm;
	time_t t = 1700000000;

	/* mktime/localtime must not look for a zone file under the filter. */
	return clock_gettime(CLOCK_REALTIME, &ts) == 0 && localtime_r(&t, &tm) != NULL &&
	       mktime(&tm) == t ? 0 : 1;
}

static int c_openat2_beneath(void)
{
	struct open_how how;
	int fd;

	memset(&how, 0, sizeof how);
	how.flags = O_RDONLY | O_CLOEXEC;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
	fd = (int)syscall(SYS_openat2, dirfd_, "f", &how, sizeof how);
	return fd >= 0 && close(fd) == 0 ? 0 : 1;
}

static int c_openat2_cwd(void)
{
	struct open_how how;

	memset(&how, 0, sizeof how);
	how.flags = O_RDONLY | O_CLOEXEC;
	(void)syscall(SYS_openat2, AT_FDCWD, "/etc/hostname", &how, sizeof how);
	return 0;
}

static int c_open(void)
{
	(void)open("/etc/hostname", O_RDONLY);
	return 0;
}

static int c_openat(void)
{
	(void)openat(dirfd_, "f", O_RDONLY);
	return 0;
}

static int c_stat_path(void)
{
	struct stat sb;

	(void)stat("/etc/hostname", &sb);
	return 0;
}

static int c_socket(void)
{
	(void)socket(AF_INET, SOCK_STREAM, 0);
	return 0;
}

static int c_execve(void)
{
	char *const argv[] = { (char *)"true", NULL };

	execve("/bin/true", argv, argv + 1);
	return 0;
}

static int c_fork(void)
{
	(void)fork();
	return 0;
}

static int c_mmap_exec(void)
{
	(void)mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return 0;
}

static int c_mprotect(void)
{
	static char page[8192] __attribute__((aligned(4096)));

	(void)mprotect(page, 4096, PROT_READ | PROT_WRITE | PROT_EXEC);
	return 0;
}

static int c_kill(void)
{
	(void)kill(getppid(), 0);
	return 0;
}

static int c_ptrace(void)
{
	(void)syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0);
	return 0;
}

static int c_unlink(void)
{
	(void)unlinkat(dirfd_, "f", 0);
	return 0;
}

#ifdef __x86_64__
static int c_x32(void)
{
	/* getpid through the x32 ABI: a different table the allowlist never saw. */
	(void)syscall(0x40000000 | SYS_getpid);
	return 0;
}
#endif

/* Runs fn in a child under the filter.  Returns the wait status. */
static int run(int (*fn)(void))
{
	pid_t pid = fork();
	int st = 0;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (seccomp_confine_parser() != 0)
			_exit(100);
		_exit(fn());
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return st;
}

static void allowed(const char *what, int (*fn)(void))
{
	int st = run(fn);
	char msg[160];

	snprintf(msg, sizeof msg, "allowed: %s (status %#x)", what, st);
	CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, msg);
}

static void killed(const char *what, int (*fn)(void))
{
	int st = run(fn);
	char msg[160];

	snprintf(msg, sizeof msg, "killed by SIGSYS: %s (status %#x)", what, st);
	CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, msg);
}

int main(void)
{
	char dir[] = "/tmp/sbx-seccomp.XXXXXX", path[64];
	int p[2];

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof path, "%s/f", dir);
	filefd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	dirfd_ = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (filefd < 0 || dirfd_ < 0 || write(filefd, "abcd", 4) != 4 || pipe(p) != 0)
		return 1;
	pipew = p[1];

	allowed("pread", c_pread);
	allowed("fstat", c_fstat);
	allowed("lseek and read", c_lseek_read);
	allowed("write to the pipe", c_write_pipe);
	allowed("malloc, realloc, free (brk, mmap, mremap, munmap)", c_malloc);
	allowed("getrandom", c_getrandom);
	allowed("clock_gettime, localtime_r, mktime", c_clock);
	allowed("openat2 beneath a directory descriptor", c_openat2_beneath);

	killed("open", c_open);
	killed("openat", c_openat);
	killed("openat2 from the current directory", c_openat2_cwd);
	killed("stat by path", c_stat_path);
	killed("socket", c_socket);
	killed("execve", c_execve);
	killed("fork", c_fork);
	killed("mmap PROT_EXEC", c_mmap_exec);
	killed("mprotect", c_mprotect);
	killed("kill", c_kill);
	killed("ptrace", c_ptrace);
	killed("unlinkat", c_unlink);
#ifdef __x86_64__
	killed("an x32 system call", c_x32);
#endif

	{
		char b[64];
		ssize_t n = read(p[0], b, sizeof b);

		CHECK_MSG(n == 1 && b[0] == 'x', "the pipe received what the child wrote");
	}
	unlink(path);
	rmdir(dir);
	return check_done();
}

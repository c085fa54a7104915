#include "appliance/seccomp.h"

#include <endian.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "crypto/err.h"

#if defined(__x86_64__) && !defined(__ILP32__)
#define SBX_AUDIT_ARCH AUDIT_ARCH_X86_64
/* x32 system calls share the architecture tag; their numbers carry this bit. */
#define SBX_X32_BIT    0x40000000u
#elif defined(__aarch64__)
#define SBX_AUDIT_ARCH AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define SBX_AUDIT_ARCH AUDIT_ARCH_I386
#else
#error "seccomp.c: add this architecture's AUDIT_ARCH (and check its syscall list)"
#endif

/* Sanitizer builds (make asan, fuzzing): the runtime's own calls. */
#if defined(__SANITIZE_ADDRESS__)
#define SBX_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define SBX_SANITIZED 1
#endif
#endif

/* The low 32 bits of argument i: BPF loads 32-bit words. */
#if __BYTE_ORDER == __LITTLE_ENDIAN
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + (i) * sizeof(__u64))
#else
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + (i) * sizeof(__u64) + sizeof(__u32))
#endif

#define LD_NR        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define RET_ALLOW    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#define RET_KILL     BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS)
/* nr: allow; otherwise fall through to the next test. */
#define ALLOW(nr)    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), RET_ALLOW
/* nr: allow only if the low word of argument i, AND mask, equals want;
 * otherwise kill.  Other numbers jump past it with the number still loaded. */
#define ALLOW_ARG(nr, i, mask, want)                                        \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 5),                    \
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(i)),                      \
	BPF_STMT(BPF_ALU | BPF_AND | BPF_K, (mask)),                        \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (want), 0, 1),                  \
	RET_ALLOW, RET_KILL

static const struct sock_filter parser_filter[] = {
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SBX_AUDIT_ARCH, 1, 0),
	RET_KILL,
	LD_NR,
#ifdef SBX_X32_BIT
	BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, SBX_X32_BIT, 0, 1),
	RET_KILL,
#endif
	/* The hot ones first: reading inputs, writing the pipe, malloc. */
	ALLOW(__NR_pread64),
	ALLOW(__NR_write),
	ALLOW(__NR_read),
	ALLOW(__NR_brk),
	ALLOW(__NR_getrandom),
	ALLOW(__NR_close),
	ALLOW(__NR_lseek),
	ALLOW(__NR_writev),
	ALLOW(__NR_munmap),
	ALLOW(__NR_mremap),
	ALLOW(__NR_madvise),
#ifdef __NR_fstat
	ALLOW(__NR_fstat),
#endif
	/* glibc's fstat(): newfstatat(fd, "", st, AT_EMPTY_PATH).  No other
	 * flags: a stat by path is not the child's business. */
#ifdef __NR_newfstatat
	ALLOW_ARG(__NR_newfstatat, 3, 0xffffffffu, AT_EMPTY_PATH),
#endif
#ifdef __NR_fstat64
	ALLOW(__NR_fstat64),
#endif
#ifdef __NR_fstatat64
	ALLOW_ARG(__NR_fstatat64, 3, 0xffffffffu, AT_EMPTY_PATH),
#endif
#ifdef __NR__llseek
	ALLOW(__NR__llseek),
#endif
	/* Memory, never executable. */
	ALLOW_ARG(__NR_mmap, 2, PROT_EXEC, 0),
#ifdef __NR_mmap2
	ALLOW_ARG(__NR_mmap2, 2, PROT_EXEC, 0),
#endif
	/* Images next to a plain reads file: openat2() relative to a
	 * directory descriptor (RESOLVE_BENEATH is in struct open_how, which
	 * BPF cannot read); AT_FDCWD and other negative values are refused. */
	ALLOW_ARG(__NR_openat2, 0, 0x80000000u, 0),
	ALLOW(__NR_clock_gettime),
#ifdef __NR_gettimeofday
	ALLOW(__NR_gettimeofday),
#endif
	ALLOW(__NR_rt_sigreturn),
	ALLOW(__NR_exit_group),
	ALLOW(__NR_exit),
#ifdef SBX_SANITIZED
	/* ASan takes down its alternate signal stack at exit. */
	ALLOW(__NR_sigaltstack),
#endif
	RET_KILL,
};

int seccomp_confine_parser(void)
{
	struct sock_fprog prog = {
		.len = (unsigned short)(sizeof parser_filter / sizeof parser_filter[0]),
		.filter = (struct sock_filter *)parser_filter,
	};
	struct tm tm;
	time_t t = 0;

	/* libarchive converts zip times with mktime(); without TZ, glibc
	 * stats /etc/localtime on every call.  A fixed TZ, loaded now, makes
	 * later calls touch no file.  Only the child's copy changes. */
	if (setenv("TZ", "UTC0", 1) != 0)
		return SBX_EIO;
	tzset();
	if (localtime_r(&t, &tm) == NULL || mktime(&tm) == (time_t)-1)
		return SBX_EIO;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return SBX_EIO;
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0)
		return SBX_EIO;
	return 0;
}

#ifndef SBX_RELEASE
void seccomp_test_probe(const char *what)
{
	char *const argv[] = { (char *)"true", NULL };

	if (what == NULL)
		return;
	if (strcmp(what, "open") == 0)
		(void)open("/etc/hostname", O_RDONLY | O_CLOEXEC);
	else if (strcmp(what, "socket") == 0)
		(void)socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	else if (strcmp(what, "execve") == 0)
		(void)execve("/bin/true", argv, argv + 1);
}
#endif

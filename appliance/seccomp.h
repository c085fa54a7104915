/* The ingest parser child's system-call allowlist (seccomp-bpf, plain BPF,
 * no libseccomp).
 *
 * Once its descriptors are arranged, the child only reads its inputs, opens
 * images beneath the input directories it was handed (openat2 relative to a
 * descriptor, never the current directory), writes to its pipe, allocates
 * memory and exits.  The filter allows exactly that:
 *
 *   read pread64 lseek  write writev  close  fstat, newfstatat (AT_EMPTY_PATH
 *   only)  openat2 (dirfd >= 0)  mmap (no PROT_EXEC) munmap mremap brk
 *   madvise  getrandom  clock_gettime gettimeofday  rt_sigreturn
 *   exit exit_group
 *
 * Anything else -- open, openat, socket, connect, execve, fork, clone,
 * ptrace, kill, mprotect, ... -- and any other architecture or ABI (x32 on
 * x86_64) kills the whole process (SECCOMP_RET_KILL_PROCESS, SIGSYS).
 *
 * Writes need no descriptor check: the only writable descriptors the child
 * keeps are its pipe and (with --debug) stderr; 0 and 1 are /dev/null, the
 * inputs are read-only and the directories O_PATH. */
#ifndef SBX_SECCOMP_H
#define SBX_SECCOMP_H

/* Installs the filter on the calling process (single-threaded; it needs
 * PR_SET_NO_NEW_PRIVS, which it sets).  Before that, it pins the child's
 * time zone to UTC and loads it, so that libarchive's mktime() never looks
 * for /etc/localtime under the filter.  0 or SBX_EIO; on failure nothing
 * is installed and the caller must not go on. */
int seccomp_confine_parser(void);

#ifndef SBX_RELEASE
/* Test hook (never in a release build): when `what` names a forbidden call
 * ("open", "socket", "execve"), makes it; under the filter the process dies
 * there.  Any other value, or NULL, does nothing. */
void seccomp_test_probe(const char *what);
#endif

#endif

/* A deterministic host for componentize-py's pre-initialisation snapshot.
 *
 * componentize-py runs the Python guest's imports inside wasmtime and snapshots its
 * memory. The snapshot takes in whatever the host hands the guest: random bytes
 * (CPython's hash secret, the `random` module, os.urandom), clocks, and file metadata
 * (mtimes of the unpacked stdlib, inode numbers). Preloaded into componentize-py with
 * libfaketime (which freezes the clocks), this library makes the rest fixed:
 *
 * - getrandom(), getentropy() and syscall(SYS_getrandom) return one fixed stream;
 * - every statx, including the raw syscalls that bypass the C library (cap-std via
 *   rustix), reports SYNTRA_FIXED_TIME for all timestamps, device 0:1, and inode
 *   numbers given in the order files are first seen. A seccomp filter traps statx;
 *   the SIGSYS handler re-issues it, marked by a magic sixth argument that the filter
 *   lets through, and rewrites the result.
 *
 * Children inherit the seccomp filter; they keep working as long as they inherit
 * LD_PRELOAD and SYNTRA_FIXED_TIME too (statically linked children would not).
 *
 * Linux on x86_64 only. Build: cc -O2 -shared -fPIC -o x.so deterministic.c -ldl -lpthread
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <ucontext.h>
#include <unistd.h>

/* splitmix64 from a fixed seed, restarted on every call, so the bytes a caller gets
 * do not depend on how threads interleave. */
static void fill(void *buf, size_t len) {
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    unsigned char *p = buf;
    while (len) {
        uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        size_t n = len < 8 ? len : 8;
        memcpy(p, &z, n);
        p += n;
        len -= n;
    }
}

ssize_t getrandom(void *buf, size_t len, unsigned int flags) {
    (void)flags;
    fill(buf, len);
    return (ssize_t)len;
}

int getentropy(void *buf, size_t len) {
    fill(buf, len);
    return 0;
}

long syscall(long number, ...) {
    va_list ap;
    va_start(ap, number);
    long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
    long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
    va_end(ap);
    if (number == SYS_getrandom) {
        fill((void *)a1, (size_t)a2);
        return a2;
    }
    static long (*real)(long, ...);
    if (!real) real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    return real(number, a1, a2, a3, a4, a5, a6);
}

#define SLOTS (1u << 20)
#define MAGIC 0x5EEDF00DUL
static struct { uint64_t dev, ino, born, fake; } seen[SLOTS];
static uint64_t next_ino = 1;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long long fixed_time;

/* A small inode number per real file (device, inode, birth time), in first-seen order. */
static uint64_t fake_ino(uint64_t dev, uint64_t ino, uint64_t born) {
    uint64_t h = (dev * 0x9E3779B97F4A7C15ULL) ^ (ino * 0xC2B2AE3D27D4EB4FULL) ^
                 (born * 0x165667B19E3779F9ULL);
    uint64_t fake = 0;
    pthread_mutex_lock(&lock);
    for (uint32_t i = (uint32_t)(h >> 44) & (SLOTS - 1);; i = (i + 1) & (SLOTS - 1)) {
        if (seen[i].fake == 0) {
            seen[i].dev = dev;
            seen[i].ino = ino;
            seen[i].born = born;
            seen[i].fake = next_ino++;
        }
        if (seen[i].dev == dev && seen[i].ino == ino && seen[i].born == born) {
            fake = seen[i].fake;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    return fake;
}

static void rewrite(struct statx *buf) {
    uint64_t born = (uint64_t)buf->stx_btime.tv_sec * 1000000000ULL + buf->stx_btime.tv_nsec;
    uint64_t dev = ((uint64_t)buf->stx_dev_major << 32) | buf->stx_dev_minor;
    struct statx_timestamp when = {.tv_sec = fixed_time, .tv_nsec = 0};
    buf->stx_atime = buf->stx_btime = buf->stx_ctime = buf->stx_mtime = when;
    buf->stx_ino = fake_ino(dev, buf->stx_ino, born);
    buf->stx_dev_major = 0;
    buf->stx_dev_minor = 1;
}

static long raw_syscall6(long nr, long a, long b, long c, long d, long e, long f) {
    long ret;
    register long r10 __asm__("r10") = d, r8 __asm__("r8") = e, r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

static void on_sigsys(int sig, siginfo_t *info, void *context) {
    (void)sig;
    if (info->si_code != 1 /* SYS_SECCOMP */ || info->si_syscall != SYS_statx) return;
    greg_t *r = ((ucontext_t *)context)->uc_mcontext.gregs;
    /* statx(dirfd, path, flags, mask, buf): rdi, rsi, rdx, r10, r8 */
    unsigned int mask = (unsigned int)r[REG_R10] | STATX_BTIME;
    long rc = raw_syscall6(SYS_statx, r[REG_RDI], r[REG_RSI], r[REG_RDX], mask, r[REG_R8], MAGIC);
    if (rc == 0) rewrite((struct statx *)r[REG_R8]);
    r[REG_RAX] = rc;
}

__attribute__((constructor)) static void start(void) {
    const char *when = getenv("SYNTRA_FIXED_TIME");
    if (!when || !*when) return;
    fixed_time = atoll(when);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigsys;
    action.sa_flags = SA_SIGINFO;
    sigfillset(&action.sa_mask); /* the handler holds a lock: nothing may interrupt it */
    sigaction(SIGSYS, &action, NULL);
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_statx, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[5])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MAGIC, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
    };
    struct sock_fprog program = {.len = sizeof filter / sizeof filter[0], .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program))
        perror("syntra deterministic host: seccomp");
}

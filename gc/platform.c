/*
 * platform.c — Linux implementation of the operating-system contract in
 * platform.h. Kept deliberately thin: no policy, no locks.
 */
#define _GNU_SOURCE /* pthread_getattr_np, REG_RSP */
#include "platform.h"

#include <atomic_ops.h>
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

static AO_t mapped; /* committed and metadata bytes, see os_mapped_bytes */

void *os_reserve(size_t size)
{
    void *p = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void os_release(void *p, size_t size)
{
    munmap(p, size);
}

int os_commit(void *p, size_t size)
{
    if (mprotect(p, size, PROT_READ | PROT_WRITE) != 0)
        return -1;
    AO_fetch_and_add(&mapped, size);
    return 0;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

void os_prefault(void *p, size_t size)
{
    if (madvise(p, size, MADV_POPULATE_WRITE) == 0)
        return;
    long page = sysconf(_SC_PAGESIZE);
    for (char *c = p; c < (char *)p + size; c += page)
        *(volatile char *)c = 0;
}

void os_return(void *p, size_t size, enum os_return_mode mode)
{
    if (mode == OS_RETURN_LAZY && madvise(p, size, MADV_FREE) == 0)
        return;
    madvise(p, size, MADV_DONTNEED); /* also where MADV_FREE is unknown (Linux < 4.5) */
}

void *os_alloc_meta(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    AO_fetch_and_add(&mapped, size);
    return p;
}

void os_free_meta(void *p, size_t size)
{
    munmap(p, size);
    AO_fetch_and_add(&mapped, (AO_t)0 - size);
}

size_t os_mapped_bytes(void)
{
    return AO_load(&mapped);
}

static void write_line(const char *prefix, const char *fmt, va_list ap)
{
    char line[512];
    int n = snprintf(line, sizeof line, "tricolor: %s", prefix);
    if (n < 0 || (size_t)n >= sizeof line)
        n = 0;
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    for (size_t off = 0; off < len;) {
        ssize_t w = write(STDERR_FILENO, line + off, len - off);
        if (w <= 0 && errno != EINTR)
            break;
        off += w > 0 ? (size_t)w : 0;
    }
}

void os_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    write_line("", fmt, ap);
    va_end(ap);
    abort();
}

void os_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    write_line("warning: ", fmt, ap);
    va_end(ap);
}

int os_thread_stack(uintptr_t *lo, uintptr_t *hi)
{
    pthread_attr_t attr;
    void *addr;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return -1;
    int rc = pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        return -1;
    *lo = (uintptr_t)addr;
    *hi = (uintptr_t)addr + size;
    return 0;
}

int os_install_handler(int sig, void (*handler)(int, siginfo_t *, void *))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, sig);
    return sigaction(sig, &sa, NULL);
}

uintptr_t os_context_sp(const void *uc)
{
    const ucontext_t *u = uc;
#if defined(__x86_64__)
    return (uintptr_t)u->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    return (uintptr_t)u->uc_mcontext.sp;
#else
#error "tricolor: unsupported architecture (need the stack pointer of a signal context)"
#endif
}

/* General registers, then the vector registers: an interrupted thread can
 * hold a pointer only in one (compilers copy structs and inline memcpy
 * through them), and their save area sits in the signal frame, below the
 * stack pointer, where the stack scan does not reach. */
unsigned os_context_regs(const void *uc, uintptr_t *regs, unsigned max)
{
    const ucontext_t *u = uc;
    unsigned n = 0;
#if defined(__x86_64__)
    for (unsigned i = 0; i < NGREG && n < max; i++)
        regs[n++] = (uintptr_t)u->uc_mcontext.gregs[i];
    const struct _libc_fpstate *fp = u->uc_mcontext.fpregs;
    for (unsigned i = 0; fp && i < 16 && n + 2 <= max; i++) {
        memcpy(&regs[n], &fp->_xmm[i], 16);
        n += 2;
    }
#elif defined(__aarch64__)
    for (unsigned i = 0; i < 31 && n < max; i++)
        regs[n++] = (uintptr_t)u->uc_mcontext.regs[i];
#endif
    return n;
}

void os_futex_wait(unsigned *word, unsigned expected)
{
    struct timespec limit = {0, 10 * 1000 * 1000};
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, &limit, NULL, 0);
}

void os_futex_wake_all(unsigned *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

void os_lock_stoppable(pthread_mutex_t *m)
{
    struct timespec pause = {0, 20 * 1000};
    while (pthread_mutex_trylock(m) != 0)
        nanosleep(&pause, NULL);
}

struct timespec os_deadline_ms(long ms)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += ms % 1000 * 1000000;
    if (t.tv_nsec >= 1000000000) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000;
    }
    return t;
}

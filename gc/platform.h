/*
 * platform.h — the operating-system contract (Linux, glibc).
 *
 * Every system call the library makes goes through here, so that the rest of
 * the code reads as policy. Each function states its preconditions; none of
 * them takes a lock or allocates from the heap, so they may be called with
 * any lock held.
 */
#ifndef TRICOLOR_PLATFORM_H
#define TRICOLOR_PLATFORM_H

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define OS_CACHE_LINE 64

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define NOINLINE    __attribute__((noinline))
#define COLD        __attribute__((cold, noinline))
/* Functions that read other threads' memory on purpose, unsynchronised
 * (conservative scanning): no sanitizer instruments their plain reads. */
#define NO_SANITIZE_READS __attribute__((no_sanitize("address", "thread")))

/* Reserve `size` bytes of address space, inaccessible and not backed.
 * Returns NULL when the kernel refuses. `size` is a multiple of the page. */
void *os_reserve(size_t size);

/* Give a reservation (or part of one) back to the kernel. */
void os_release(void *p, size_t size);

/* Make [p, p+size) of a reservation readable and writable (zero-filled on
 * first touch). Returns 0, or -1 with errno set. */
int os_commit(void *p, size_t size);

/* Give the memory behind committed pages [p, p+size) back to the kernel;
 * the range stays committed. With OS_RETURN_NOW (madvise MADV_DONTNEED)
 * the memory leaves the process at once and reads as zero afterwards; with
 * OS_RETURN_LAZY (MADV_FREE) the kernel takes it only under memory
 * pressure, and until then it keeps its old contents. `p` and `size` are
 * multiples of the page. */
enum os_return_mode { OS_RETURN_NOW, OS_RETURN_LAZY };
void os_return(void *p, size_t size, enum os_return_mode mode);

/* Fresh zeroed read-write memory for metadata, outside the heap; NULL with
 * errno set on failure. os_free_meta gives it back. */
void *os_alloc_meta(size_t size);
void os_free_meta(void *p, size_t size);

/* Bytes the library holds from the kernel: committed heap and page table,
 * and metadata (what a memory limit counts). */
size_t os_mapped_bytes(void);

/* Make committed pages that were never touched writable memory now, in one
 * call: fresh anonymous pages first read (the write barrier reads a slot
 * before it overwrites it) would map the shared zero page and fault again
 * on the write. Only for memory that is all zero: without kernel support
 * it writes a zero into each page. */
void os_prefault(void *p, size_t size);

/* Print "tricolor: <message>" as one line on stderr and abort(). For misuse
 * by the program (bad pointer, double free) and broken invariants. Uses only
 * async-signal-safe calls after formatting into a stack buffer. */
__attribute__((noreturn, format(printf, 1, 2))) void os_fatal(const char *fmt, ...);

/* One line "tricolor: warning: <message>" on stderr. */
__attribute__((format(printf, 1, 2))) void os_warn(const char *fmt, ...);

/* ---- threads and signals ---- */

/* The calling thread's stack: [*lo, *hi). 0, or -1 when unknown. */
int os_thread_stack(uintptr_t *lo, uintptr_t *hi);

/* Install `handler` (SA_SIGINFO | SA_RESTART, `sig` blocked while it runs)
 * for `sig`. 0, or -1 with errno set. */
int os_install_handler(int sig, void (*handler)(int, siginfo_t *, void *));

/* From the context a signal handler receives: the interrupted stack
 * pointer, and a copy of the general registers into regs[0..n) (returns
 * the count copied, at most `max`). Async-signal-safe. */
uintptr_t os_context_sp(const void *uc);
unsigned os_context_regs(const void *uc, uintptr_t *regs, unsigned max);

/* Block while *word == expected (a futex); spurious wake-ups possible.
 * Async-signal-safe. Wake every waiter on word. A wait lasts at most
 * 10 ms: a waiting thread then returns to its caller's loop even if the
 * kernel would restart the wait after a signal, so that runtimes that
 * defer signal handlers to their next call (ThreadSanitizer) still run the
 * stop handler. */
void os_futex_wait(unsigned *word, unsigned expected);
void os_futex_wake_all(unsigned *word);

/* Bytes below the stack pointer a leaf function may use without moving it
 * (the ABI's red zone): scanned too. */
/* Lock a mutex the collector may hold while it stops the world, from a
 * thread it may be stopping: try, and sleep briefly between tries, so that
 * the stop signal is taken at once even where a runtime defers handlers
 * inside blocking lock calls (ThreadSanitizer). */
void os_lock_stoppable(pthread_mutex_t *m);

/* The CLOCK_REALTIME time `ms` milliseconds from now (the absolute
 * deadline pthread_cond_timedwait and sem_timedwait take). */
struct timespec os_deadline_ms(long ms);

#if defined(__x86_64__)
#define OS_RED_ZONE 128
#else
#define OS_RED_ZONE 0
#endif

#endif /* TRICOLOR_PLATFORM_H */

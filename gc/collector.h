/*
 * collector.h — the collector's internal interfaces: threads and stopping the
 * world (threads.c), roots (roots.c), marking (mark.c), the cycle and
 * sweeping (collect.c). The story of a cycle is told at the top of
 * collect.c.
 */
#ifndef TRICOLOR_COLLECTOR_H
#define TRICOLOR_COLLECTOR_H

#include <atomic_ops.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../allocator/cache.h"

/* ---- threads (threads.c) ---- */

#define THREAD_MAX_REGS 64 /* general registers + 16 vector registers of 2 words */

struct tls_block {
    uintptr_t lo, hi;
};

/* A registered thread. Fields are written by the thread itself at
 * registration (before it is linked in), by its stop-signal handler while
 * the collector waits, or under the threads lock. */
struct gc_thread {
    pthread_t id;
    uintptr_t stack_hi;            /* top of the stack (it grows down) */
    AO_t stop_sp;                  /* handler: stack pointer when stopped */
    AO_t stopped_epoch;            /* handler: the world epoch it stopped in */
    uintptr_t regs[THREAD_MAX_REGS]; /* handler: registers when stopped */
    unsigned nregs;
    struct tls_block *tls;         /* static TLS blocks of the loaded objects */
    unsigned ntls;
    struct cache *cache;           /* the thread's allocation cache */
    struct gc_thread *next;        /* threads lock */
};

/* Install the stop signal and the thread-exit hook; register the caller. */
int threads_init(void);

/* Register the calling thread if it is not (creates its cache). 0 or -1. */
int threads_register_self(void);

/* Stop every registered thread but the caller; each saves its registers and
 * stack pointer and waits. Start them again. Between the two the caller
 * holds the threads lock, so no thread registers or leaves. */
void threads_stop_world(void);
void threads_start_world(void);

/* With the world stopped: pass every root range of every registered thread
 * (live stack, saved registers, static TLS blocks) to `scan`. */
void threads_scan(void (*scan)(uintptr_t lo, uintptr_t hi));

/* fork: hold the threads lock across it; in the child keep only the caller. */
void threads_fork_prepare(void);
void threads_fork_parent(void);
void threads_fork_child(void);
struct cache *threads_self_cache(void);

/* ---- roots (roots.c) ---- */

/* Pass every global root range — writable segments of every loaded object
 * minus the collector's private data, and ranges from gc_add_roots — to
 * `scan`. Called with the world stopped, inside roots_with_objects_locked. */
void roots_scan_globals(void (*scan)(uintptr_t lo, uintptr_t hi));

/* Run fn(arg) while the dynamic loader's object list is locked, with the
 * list of writable segments collected: no dlopen or dlclose can run. */
void roots_with_objects_locked(void (*fn)(void *), void *arg);

/* The lock of the registered ranges (held across fork). */
void roots_lock(void);
void roots_unlock(void);

/* ---- marking (mark.c) ---- */

/* Conservatively mark from every aligned word of [lo, hi). */
void mark_range(uintptr_t lo, uintptr_t hi);

/* Scan grey objects until none is left. */
void mark_drain(void);

/* Bytes marked since mark_reset. */
size_t mark_marked_bytes(void);
void mark_reset(void);

/* ---- the cycle (collect.c) ---- */

int collect_init(void);

/* Completed cycles since start (tests, statistics). */
unsigned long collect_cycles(void);

#endif /* TRICOLOR_COLLECTOR_H */

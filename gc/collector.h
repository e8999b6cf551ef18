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
#include "platform.h"

/* ---- threads (threads.c) ---- */

#define THREAD_MAX_REGS 64 /* general registers + 16 vector registers of 2 words */

struct tls_block {
    uintptr_t lo, hi;
};

/* A thread's barrier buffer (barrier.c): old values shaded by GC_WRITE,
 * waiting to be marked. The owner writes an entry, then publishes the
 * count (DESIGN.md rule 3), and counts a new generation each time it
 * empties the buffer; the collector reads entries [0, n) of the current
 * cycle, running or with the world stopped, and never writes the owner's
 * fields (rule 1). It remembers how far it has read (barrier_take). */
#define BARRIER_ENTRIES 256
struct barrier_buf {
    AO_t n;                        /* owner: entries published */
    AO_t cycle;                    /* owner: the cycle they belong to */
    AO_t generation;               /* owner: bumped whenever n goes back to 0 */
    AO_t entry[BARRIER_ENTRIES];   /* owner */
    AO_t taken_cycle;              /* collector: entries [0, taken_n) of */
    AO_t taken_generation;         /* this cycle and generation are marked */
    AO_t taken_n;
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
    AO_t in_bulk;                  /* owner: inside a bulk barrier (gc_memmove...) */
    AO_t stopped_in_bulk;          /* handler: in_bulk when it stopped */
    struct barrier_buf barrier;    /* owner writes, collector reads when stopped */
    struct gc_thread *next;        /* threads lock */
};

/* Install the stop signal and the thread-exit hook; register the caller. */
int threads_init(void);

/* Register the calling thread if it is not (creates its cache). 0 or -1. */
int threads_register_self(void);

/* Stop every registered thread but the caller; each saves its registers and
 * stack pointer and waits. Start them again. Between the two the caller
 * holds the threads lock, so no thread registers or leaves. False (nothing
 * held, every thread running) when some thread did not stop in time: the
 * caller releases its own locks, waits a little, and tries again. */
bool threads_stop_world(void);
void threads_start_world(void);

/* With the world stopped: pass every root range of every registered thread
 * (live stack, saved registers, static TLS blocks) to `scan`. */
void threads_scan(void (*scan)(uintptr_t lo, uintptr_t hi));

/* With the world stopped: was any thread stopped inside a bulk barrier? */
bool threads_any_in_bulk(void);

/* Pass every registered thread's barrier buffer to `fn`: with the world
 * stopped (the caller holds the threads lock), or running (`lock`). */
void threads_each_barrier(void (*fn)(struct barrier_buf *b), bool lock);

/* How many threads are registered now (a hint: it changes at any time). */
unsigned threads_registered(void);

/* The calling thread's record, registering it if needed (NULL: no memory). */
struct gc_thread *threads_self(void);

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

/* A marking thread's private state (mark.c tells the protocol). */
struct workbuf;
struct marker {
    struct workbuf *cur;        /* the buffer this marker fills and drains */
    size_t marked_bytes;        /* bytes of objects it marked, not yet published */
    size_t scanned;             /* bytes it scanned (work done) */
    size_t scanned_published;   /* of those, added to the cycle's scan work */
    void (*record)(uintptr_t obj); /* if set: told every object a root points at */
};

/* Join (marker_begin) and leave (marker_end: remaining work published)
 * the markers; between the two, marking cannot terminate. */
void marker_begin(struct marker *m);
void marker_end(struct marker *m);

/* Join as a thread outside the collector (a mutator flushing its barrier
 * buffer, a bulk barrier, an assist, a worker): false, and not joined, when
 * no cycle is marking. A straggler that checked for marking before mark
 * termination and shades after it would otherwise set mark bits that
 * outlive the sweep and make the next cycle take a white object for black;
 * what it meant to shade was in its registers or buffer, which mark
 * termination scanned. */
bool marker_join(struct marker *m);

/* Conservatively shade from every aligned word of [lo, hi), or from one
 * candidate word. */
void mark_range(struct marker *m, uintptr_t lo, uintptr_t hi);
void mark_pointer(struct marker *m, uintptr_t p);

/* Scan grey objects, local and global, until about `budget` bytes were
 * scanned (false) or no grey object is left anywhere (true). */
bool mark_drain(struct marker *m, size_t budget);

/* Full work buffers are waiting. */
bool mark_has_work(void);

/* No grey work in the global queue and no marker active. */
bool mark_done(void);

/* Bytes marked since mark_reset. */
size_t mark_marked_bytes(void);

/* Bytes scanned since mark_reset (roots and objects: the cycle's scan
 * work), as published by markers at the end of each drain. */
size_t mark_scanned_bytes(void);
void mark_reset(void);

/* The checkmark pass: shading sets check bits and verifies mark bits. */
void mark_set_check(bool on);

/* ---- barrier (barrier.c) ---- */

/* The cycle whose barrier buffers count; changes with the world stopped. */
extern AO_t barrier_cycle;

/* The owner of `b` (a thread leaving): mark what its buffer holds. */
void barrier_flush_own(struct barrier_buf *b);

/* The owner, at registration: a buffer with nothing in it. */
void barrier_reset(struct barrier_buf *b, AO_t cycle);

/* The collector, world running or stopped: mark the entries of the current
 * cycle published in `b` since its last take into `m`. */
void barrier_take(struct barrier_buf *b, struct marker *m);

/* A bulk deletion: raise the caller's in_bulk, shade the old words of
 * [dst, dst + n) when the barrier is on; returns the record to pass to
 * barrier_bulk_end once the stores (or the free) are done. */
struct gc_thread *barrier_bulk_begin(const void *dst, size_t n);
void barrier_bulk_end(struct gc_thread *t);

/* Turn the barrier on (for cycle `cycle`) or off; world stopped. */
void barrier_set(bool on, AO_t cycle);

/* ---- returning memory to the OS (scavenge.c) ---- */

struct pacer_memory;

/* What a memory limit counts, now (takes the heap lock: never while a
 * thread may be stopped inside the allocator). */
struct pacer_memory scavenge_memory_now(void);

/* How pages are returned (GCDEBUG madvdontneed), once at init. */
void scavenge_init(enum os_return_mode mode);

/* New targets: the heap goal and the memory limit (PACER_NO_LIMIT: none);
 * wakes the scavenger. Any lock may be held but the allocator's. */
void scavenge_set_targets(uint64_t goal, int64_t limit);

/* Start the background scavenger (idempotent): after the first cycle. */
void scavenge_start(void);

/* Return every free page now (MADV_DONTNEED); bytes returned. */
size_t scavenge_all(void);

/* scavtrace=1: print Go's "scav" line for what was returned since the
 * last one; `forced` for gc_free_os_memory. */
void scavenge_trace(bool forced);

void scavenge_fork_prepare(void);
void scavenge_fork_parent(void);
void scavenge_fork_child(void);

/* ---- the cycle (collect.c) ---- */

int collect_init(void);

/* Completed cycles since start (tests, statistics). */
unsigned long collect_cycles(void);

/* The longest the collector thread, once started, goes without a cycle
 * (FORCE_PERIOD_MS, 2 minutes; tests shorten it), and how many cycles that
 * period has asked for. */
void collect_set_force_period(unsigned ms);
unsigned long collect_cycles_forced_by_time(void);

/* How many times the CPU limiter was found full (pacer.h): assists were
 * off for a while. */
unsigned long collect_limiter_periods(void);

/* An allocating thread owes scan work for `bytes` while a cycle marks:
 * take background credit, else scan (at least 64 KiB of work). */
void collect_assist(size_t bytes);

/* What the finished cycles measured, for gc_read_memstats (stats.c). A
 * cycle's pause is the sum of its stops of the world; it is recorded when
 * the cycle ends (after the last one). */
#define COLLECT_CYCLE_HISTORY 256
struct collect_stats {
    uint64_t cycles;         /* finished cycles */
    uint64_t forced;         /* of those, asked for by gc_collect */
    uint64_t last_end_ns;    /* when the last ended, ns since the epoch; 0: none yet */
    uint64_t pause_total_ns; /* their pauses, summed */
    uint64_t pause_ns[COLLECT_CYCLE_HISTORY]; /* cycle n (from 0): its pause, at n % 256 */
    uint64_t end_ns[COLLECT_CYCLE_HISTORY];   /* and when it ended (epoch ns) */
    double cpu_fraction;     /* GC CPU since start, of all GCPROCS CPUs (as gctrace) */
    unsigned procs;          /* GCPROCS */
    uint64_t goal;           /* heap goal of the running or next cycle (heap_live bytes) */
};
void collect_read_stats(struct collect_stats *out);

/* ---- statistics (stats.c) ---- */

/* Go's debug.GCStats quantiles of pause[0, n): q[0] the minimum, q[i] the
 * element at n * i / 4 in sorted order for i = 1..3, q[4] the maximum; all
 * zero when n is 0. Pure; n <= COLLECT_CYCLE_HISTORY. */
void stats_pause_quantiles(const uint64_t *pause, size_t n, uint64_t q[5]);

#endif /* TRICOLOR_COLLECTOR_H */

/*
 * collect.c — the collection cycle (DESIGN.md §4).
 *
 *   GC off ──trigger──▶ (1) sweep termination   finish sweeping; then, world
 *                                                stopped: snapshot the roots
 *                                                (greyed), barrier on,
 *                                                allocate black
 *                       (2) mark                 world running: background
 *                                                workers and mark assists
 *                                                drain the grey work
 *                       (3) mark termination     world stopped: rescan thread
 *                                                roots, take what the
 *                                                barrier buffers got since
 *                                                (2) took them, prove no
 *                                                grey is left (else back
 *                                                to 2);
 *                                                barrier off; flip sweepgen;
 *                                                next trigger
 *                       (4) sweep                world running: background
 *                                                sweeper, lazy sweeping, and
 *                                                a sweep before new pages
 *
 * SNAPSHOT INVARIANT (SATB): every object that was reachable at the moment
 * the roots were snapshotted in (1), and every object allocated since, is
 * marked by the end of (2). It holds because (a) the snapshot greys every
 * object the roots point at; (b) a pointer deleted from the heap during (2)
 * is shaded first (GC_WRITE, bulk barriers) — or, if the deleting thread
 * was stopped between its check and its store, the old value is still in
 * its registers or stack, which (1) and (3) scan; (c) objects handed out
 * during (2) are marked when their alloc cache is loaded or their span is
 * made (allocate-black, cache.c and api.c); (d) marking ends only when no
 * grey object is left in any work buffer, marker or barrier buffer
 * (mark.c's termination condition, checked with the world stopped).
 *
 * Why (3) scans the threads again, though (a) to (c) would do without: a
 * conservative scan also finds stale words — left in a thread's red zone
 * below its stack pointer, or in frames written since (1) — that point at
 * objects dead before (1). Scanned in (3), they are retained like any
 * other conservative root; unscanned, checkmark (which must scan the
 * threads as they are, to find an object moved from the heap into a local
 * without GC_WRITE) reports them as lost: the torture shows it within a
 * second.
 *
 * Who runs it. A collector thread (not registered, never stopped) runs
 * cycles when the heap reaches its trigger or gc_collect asks; it is also
 * the first background mark worker. Background workers take 25% of GCPROCS
 * CPUs: round(0.25 P) dedicated workers, or, when that rounding is off by
 * more than 30%, one fewer plus a fractional worker that marks only its
 * share of the wall time (past it, only on a CPU the program leaves idle,
 * and that is idle marking). Allocating threads pay mark assists in
 * proportion to what they allocate while the cycle marks; one that
 * allocates past the hard goal before a requested cycle has begun to mark
 * waits for it (wait_for_mark_start), and none of them pays or waits while
 * the CPU limiter is full.
 *
 * Trigger, goal and assists: the pacer (pacer.h) computes them from what
 * each cycle measured — bytes marked, scan work, stack and global bytes,
 * the program's allocation during the mark and the GC's CPU share. The
 * collector revises the assist ratio after every slice of its marking.
 *
 * Lock order: gc lock, request lock, pacer lock, scavenger lock, loader
 * lock, roots lock, the allocator's world lock, caches list lock, threads
 * lock, then the allocator's own locks. The collector takes no lock a mutator may hold
 * while the world is stopped (the stopped mutator could be holding it):
 * the pacer runs before and after the pauses, never inside.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../allocator/central.h"
#include "../allocator/counters.h"
#include "../allocator/heap.h"
#include "collector.h"
#include "options.h"
#include "pacer.h"
#include "platform.h"
#include "trace.h"
#include "tricolor.h"

#define WORKER_SLICE    ((size_t)64 << 10)  /* bytes scanned between checks */
#define ASSIST_MIN      ((size_t)64 << 10)  /* an assist scans at least this */
#define STW_DRAIN       ((size_t)32 << 10) /* grey work finished inside (3), else back to (2) */
#define ASSIST_WAIT_US  1000                /* longest wait of an assist for work */
#define BARRIER_PASSES  4   /* takes of the barrier buffers with the world running, per (2) */
#define FORCE_PERIOD_MS (120 * 1000) /* a cycle at least this often, for the scavenger */
#define MAX_WORKERS     64
#define PAUSE_HISTORY   256

static struct {
    pthread_mutex_t lock;      /* one cycle at a time (held by the collector thread) */
    AO_t goal;                 /* heap goal of the running or next cycle */
    AO_t hard_goal;            /* past it, assists wait for the workers */
    AO_t cycles;               /* completed cycles */
    AO_t live_at_start;        /* heap_live when (1) stopped the world */
    AO_t triggered;            /* heap_live at the trigger, or at (1) if lower */
    AO_t garbage;              /* at the last flip: bytes heap_live dropped, not yet swept */
    AO_t swept_at_flip;        /* counters_swept_bytes() at the last flip */
    AO_t assist_ratio_x1024;   /* scan bytes owed per allocated byte, fixed point */
    /* pacing */
    pthread_mutex_t pacer_lock;
    struct pacer pacer;        /* pacer_lock */
    AO_t mark_cpu_ns;          /* CPU time spent marking in (2): workers and assists */
    AO_t cpu_ns;               /* GC CPU time since start: marking, assists, pauses x procs */
    AO_t idle_cpu_ns;          /* marking time on CPUs the program left idle, since start */
    uint64_t start_ns;         /* when the library started (collect_init) */
    AO_t cycle_assist_ns;      /* this cycle's CPU time: assists, */
    AO_t cycle_bg_ns;          /* background workers, */
    AO_t cycle_idle_ns;        /* and marking on idle CPUs (gctrace) */
    /* the CPU limiter (pacer.h): updated by whoever wins limiter_busy */
    AO_t limiter_busy;
    struct pacer_limiter limiter; /* limiter_busy */
    AO_t limiter_next;         /* the clock when an update is due */
    AO_t limiter_on;           /* the bucket is full: no assists */
    AO_t limiter_periods;      /* updates that found it full (tests, tracing) */
    uint64_t mark_start_ns;    /* collector: when (2) began */
    uint64_t stack_scan;       /* collector: stack bytes (1) scanned */
    uint64_t globals_scan;     /* collector: global bytes (1) scanned */
    AO_t bg_credit;            /* bytes scanned by workers, not yet taken by assists */
    AO_t mark_phase;           /* 1 during (2): workers mark */
    /* requests: req_lock */
    pthread_mutex_t req_lock;
    pthread_cond_t req_wake;   /* the collector thread waits for a request */
    pthread_cond_t req_done;   /* gc_collect waits for its cycle */
    unsigned long requested;   /* cycles asked for */
    unsigned long started;     /* cycles started */
    unsigned long finished;    /* cycles finished */
    unsigned long forced_by_time; /* cycles the period asked for */
    unsigned long forced_upto; /* gc_collect asked for the cycles up to this one */
    unsigned force_period_ms;  /* FORCE_PERIOD_MS; tests shorten it */
    bool collector_started;
    /* workers */
    unsigned procs;            /* GCPROCS */
    unsigned dedicated;        /* dedicated workers, the collector thread included */
    double fractional;         /* CPU share of the fractional worker, 0 if none */
    /* sweeper: sweeper_lock */
    pthread_mutex_t sweeper_lock;
    pthread_cond_t sweeper_wake;
    bool sweeper_started;
    bool sweep_requested;
    /* pauses: the collector thread writes, readers take pause_lock */
    pthread_mutex_t pause_lock;
    uint64_t pause_ns[PAUSE_HISTORY];
    unsigned long npauses;
} gc = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .pacer_lock = PTHREAD_MUTEX_INITIALIZER,
    .pacer = {.percent = 100, .limit = PACER_NO_LIMIT},
    .req_lock = PTHREAD_MUTEX_INITIALIZER,
    .req_wake = PTHREAD_COND_INITIALIZER,
    .req_done = PTHREAD_COND_INITIALIZER,
    .force_period_ms = FORCE_PERIOD_MS,
    .sweeper_lock = PTHREAD_MUTEX_INITIALIZER,
    .sweeper_wake = PTHREAD_COND_INITIALIZER,
    .pause_lock = PTHREAD_MUTEX_INITIALIZER,
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- pacing ---- */

/* Bytes of the objects the last cycle found dead that sweeping has not
 * freed yet. The flip drops them from heap_live at once, but they hold
 * their pages until swept: without them, the memory limit would count
 * them as memory outside the heap, and set the goal too low by as much. */
static uint64_t unswept_garbage(void)
{
    uint64_t swept = counters_swept_bytes() - AO_load(&gc.swept_at_flip);
    AO_t garbage = AO_load(&gc.garbage);
    return garbage > swept ? garbage - swept : 0;
}

/* Goal and trigger from what the pacer knows (pacer.h), and the
 * scavenger's targets; pacer_lock held. With a memory limit, the goal
 * needs scavenge_memory_now: never while a thread may be stopped inside
 * the allocator. */
static void set_trigger_locked(void)
{
    struct pacer_memory mem = {0, 0, 0};
    if (gc.pacer.limit != PACER_NO_LIMIT) {
        mem = scavenge_memory_now();
        mem.heap_live += unswept_garbage();
    }
    uint64_t goal = pacer_goal(&gc.pacer, &mem);
    bool limited = goal < pacer_percent_goal(&gc.pacer);
    AO_store(&gc.goal, goal);
    /* A limit below the marked heap keeps no promise at its goal: the
     * hard goal is GCPERCENT's kind, past which the heap cannot stay. */
    bool holds = limited && goal > gc.pacer.marked;
    AO_store(&gc.hard_goal, holds || goal > UINT64_MAX / 2 ? goal : goal + goal / 8);
    AO_store(&heap_trigger, pacer_trigger(&gc.pacer, goal, !options_global.gcstoptheworld));
    scavenge_set_targets(goal, gc.pacer.limit);
}

static void set_trigger(void)
{
    pthread_mutex_lock(&gc.pacer_lock);
    set_trigger_locked();
    pthread_mutex_unlock(&gc.pacer_lock);
}

#define MAX_ASSIST_RATIO 1e9 /* bytes of scan work per byte: "everything, now" */

/* The scan work owed per allocated byte, for the work done so far and the
 * heap left before the goal (the collector, at (1) and after every slice
 * of its marking in (2)). Every scannable byte could be left to scan: at
 * most the live heap and the roots. */
static void revise_assist_ratio(void)
{
    AO_t live = AO_load(&heap_live);
    pthread_mutex_lock(&gc.pacer_lock);
    double r = pacer_assist_ratio(&gc.pacer, AO_load(&gc.goal), AO_load(&gc.live_at_start), live,
                                  mark_scanned_bytes(), live + gc.stack_scan + gc.globals_scan);
    pthread_mutex_unlock(&gc.pacer_lock);
    AO_store(&gc.assist_ratio_x1024, (AO_t)((r < MAX_ASSIST_RATIO ? r : MAX_ASSIST_RATIO) * 1024));
}

/* ---- tracing (GCDEBUG gctrace, gcpacertrace) and statistics ---- */

/* The GC's CPU time since the library started, over all GCPROCS CPUs, as
 * Go counts it (gctrace's %, GCCPUFraction): marking, idle marking
 * included, assists, and every pause on every CPU. */
static double cpu_fraction(void)
{
    double all = (double)gc.procs * (double)(now_ns() - gc.start_ns);
    double used = (double)(AO_load(&gc.cpu_ns) + AO_load(&gc.idle_cpu_ns));
    return all <= 0 ? 0 : used < all ? used / all : 1;
}

#define TRACE_LINE 512

/* Write a formatted trace line (`n` as snprintf returned it) to stderr in
 * one call. */
static void emit(const char *line, int n)
{
    if (n > 0)
        fwrite(line, 1, (size_t)n < TRACE_LINE ? (size_t)n : TRACE_LINE - 1, stderr);
}

/* gcpacertrace, as (2) begins (the assist ratio just revised). */
static void trace_mark_start(void)
{
    struct trace_pacer_start t = {
        .assist_ratio = (double)AO_load(&gc.assist_ratio_x1024) / 1024,
        .heap_scan = gc.pacer.heap_scan, /* written only by this thread */
        .heap_live = AO_load(&gc.live_at_start),
        .goal = AO_load(&gc.goal),
        .dedicated = gc.dedicated,
        .fractional = gc.fractional,
    };
    char line[TRACE_LINE];
    emit(line, trace_pacer_start_line(line, sizeof line, &t));
}

/* gctrace, once the cycle is over: `live` and `marked` at its flip. */
static void trace_cycle_end(struct trace_cycle *t, AO_t live, AO_t marked)
{
    t->heap_end = live;
    t->heap_live = marked;
    t->assist_ns = AO_load(&gc.cycle_assist_ns);
    t->bg_ns = AO_load(&gc.cycle_bg_ns);
    t->idle_ns = AO_load(&gc.cycle_idle_ns);
    t->cpu_percent = (unsigned)(100 * cpu_fraction());
    char line[TRACE_LINE];
    emit(line, trace_gc_line(line, sizeof line, t));
}

/* ---- pauses ---- */

static void record_pause(uint64_t ns)
{
    pthread_mutex_lock(&gc.pause_lock);
    gc.pause_ns[gc.npauses % PAUSE_HISTORY] = ns;
    gc.npauses++;
    pthread_mutex_unlock(&gc.pause_lock);
}

size_t gc_read_pauses(uint64_t *ns, size_t max)
{
    pthread_mutex_lock(&gc.pause_lock);
    unsigned long n = gc.npauses < PAUSE_HISTORY ? gc.npauses : PAUSE_HISTORY;
    if (max > n)
        max = n;
    for (size_t i = 0; i < max; i++)
        ns[i] = gc.pause_ns[(gc.npauses - max + i) % PAUSE_HISTORY];
    pthread_mutex_unlock(&gc.pause_lock);
    return max;
}

/* Each finished cycle, for the statistics (gc/stats.c): pause_lock.
 * Every pause belongs to a cycle (the gc lock is
 * held around stop and start), so the pauses recorded since the last
 * cycle ended are the current cycle's. */
_Static_assert(PAUSE_HISTORY == COLLECT_CYCLE_HISTORY, "one history length");
static struct {
    unsigned long pauses_seen;         /* gc.npauses when the last cycle ended */
    unsigned long cycles, forced;      /* finished; of those, asked for by gc_collect */
    uint64_t pause_total_ns;           /* their pauses */
    uint64_t pause_ns[PAUSE_HISTORY];  /* finished cycle n (from 0), at n % PAUSE_HISTORY */
    uint64_t end_ns[PAUSE_HISTORY];    /* when it ended, ns since the epoch */
} history;

static uint64_t unix_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The collector, a cycle just ended (after its last pause): into the
 * history, with the sum of its pauses (those still in gc.pause_ns). */
static void record_cycle(bool forced)
{
    uint64_t end = unix_ns(), sum = 0;
    pthread_mutex_lock(&gc.pause_lock);
    unsigned long first = history.pauses_seen;
    if (gc.npauses - first > PAUSE_HISTORY)
        first = gc.npauses - PAUSE_HISTORY;
    for (unsigned long i = first; i < gc.npauses; i++)
        sum += gc.pause_ns[i % PAUSE_HISTORY];
    history.pauses_seen = gc.npauses;
    history.pause_ns[history.cycles % PAUSE_HISTORY] = sum;
    history.end_ns[history.cycles % PAUSE_HISTORY] = end;
    history.pause_total_ns += sum;
    history.cycles++;
    history.forced += forced;
    pthread_mutex_unlock(&gc.pause_lock);
}

void collect_read_stats(struct collect_stats *out)
{
    pthread_mutex_lock(&gc.pause_lock);
    out->cycles = history.cycles;
    out->forced = history.forced;
    out->last_end_ns = history.cycles ? history.end_ns[(history.cycles - 1) % PAUSE_HISTORY] : 0;
    out->pause_total_ns = history.pause_total_ns;
    memcpy(out->pause_ns, history.pause_ns, sizeof out->pause_ns);
    memcpy(out->end_ns, history.end_ns, sizeof out->end_ns);
    pthread_mutex_unlock(&gc.pause_lock);
    out->cpu_fraction = cpu_fraction();
    out->procs = gc.procs;
    out->goal = AO_load(&gc.goal);
}

/* Stop the world for a pause; returns the start time. With `wait_bulk`,
 * a thread stopped inside a bulk barrier makes it start again and retry
 * (barrier.c). A stop that failed (threads.c) lets go of the allocator too,
 * for 1 ms at first, twice as long after each failure, up to 64 ms: a
 * thread that holds a lock others wait for may need the allocator to get
 * to its unlock. */
static uint64_t stop(bool wait_bulk)
{
    for (long backoff_ms = 1;; backoff_ms = backoff_ms < 64 ? 2 * backoff_ms : backoff_ms) {
        uint64_t t0 = now_ns(); /* threads entering the allocator wait from here */
        heap_freeze_begin();
        cache_lock_list(); /* no thread stops halfway through a list change */
        bool stopped = threads_stop_world();
        if (stopped)
            heap_freeze_wait(); /* threads of the collector's own, if any, leave */
        if (stopped && (!wait_bulk || !threads_any_in_bulk()))
            return t0;
        cache_unlock_list();
        heap_thaw();
        uint64_t t1 = now_ns();
        if (stopped)
            threads_start_world();
        record_pause(t1 - t0);
        struct timespec pause = {backoff_ms / 1000, backoff_ms % 1000 * 1000000};
        nanosleep(&pause, NULL);
    }
}

/* End a pause: the allocator first, then the threads. Released first, the
 * threads could take the CPU from the collector and find the allocator
 * still frozen until it runs again, a scheduler timeslice later. The pause
 * counts from the freeze (threads entering the allocator wait from then). */
static uint64_t start(uint64_t t0)
{
    cache_unlock_list();
    heap_thaw();
    uint64_t t1 = now_ns();
    threads_start_world();
    record_pause(t1 - t0);
    AO_fetch_and_add(&gc.cpu_ns, (t1 - t0) * gc.procs);
    return t1 - t0;
}

/* ---- the CPU limiter ---- */

/* Is the limiter's bucket full (pacer.h)? Brings it up to date first,
 * unless another thread is doing that. */
static bool limiter_full(void)
{
    uint64_t now = now_ns();
    if (now >= AO_load(&gc.limiter_next) && AO_compare_and_swap_acquire(&gc.limiter_busy, 0, 1)) {
        bool full = pacer_limiter_update(&gc.limiter, gc.procs, now, AO_load(&gc.cpu_ns),
                                         AO_load(&gc.idle_cpu_ns));
        AO_store(&gc.limiter_on, full);
        AO_store(&gc.limiter_next, gc.limiter.last_ns + PACER_LIMITER_PERIOD_NS);
        if (full)
            AO_fetch_and_add1(&gc.limiter_periods);
        AO_store_release(&gc.limiter_busy, 0);
    }
    return AO_load(&gc.limiter_on);
}

unsigned long collect_limiter_periods(void)
{
    return (unsigned long)AO_load(&gc.limiter_periods);
}

/* ---- sweeping ---- */

/* Sweep every unswept central span and large object (world running).
 * Returns when none is left. */
static void sweep_all(void)
{
    for (unsigned sc = 0; sc < SC_NUM_SPAN_CLASSES; sc++) {
        bool more = true;
        while (more) {
            heap_enter();
            more = central_sweep_one(sc);
            heap_leave();
        }
    }
    heap_enter();
    heap_sweep_large(SIZE_MAX, SIZE_MAX);
    heap_leave();
}

/* gcstoptheworld=2: sweep inside the pause (allocator frozen: the caller
 * owns every central list and the page heap). Cached spans are swept by
 * their owners as always. */
static void sweep_all_stopped(void)
{
    for (unsigned sc = 0; sc < SC_NUM_SPAN_CLASSES; sc++)
        while (central_sweep_one(sc))
            ;
    heap_sweep_large(SIZE_MAX, SIZE_MAX);
}

static void *sweeper_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&gc.sweeper_lock);
    for (;;) {
        while (!gc.sweep_requested)
            pthread_cond_wait(&gc.sweeper_wake, &gc.sweeper_lock);
        gc.sweep_requested = false;
        pthread_mutex_unlock(&gc.sweeper_lock);
        sweep_all();
        pthread_mutex_lock(&gc.sweeper_lock);
    }
    return NULL;
}

static bool start_detached(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    bool ok = pthread_create(&t, &attr, fn, arg) == 0;
    pthread_attr_destroy(&attr);
    return ok;
}

/* Ask the background sweeper for a pass, starting it the first time. */
static void wake_sweeper(void)
{
    pthread_mutex_lock(&gc.sweeper_lock);
    gc.sweep_requested = true;
    if (!gc.sweeper_started)
        gc.sweeper_started = start_detached(sweeper_main, NULL);
    pthread_cond_signal(&gc.sweeper_wake);
    pthread_mutex_unlock(&gc.sweeper_lock);
}

/* ---- roots, and what checkmark remembers of them ---- */

static struct marker *root_marker;

static void scan_root(uintptr_t lo, uintptr_t hi)
{
    mark_range(root_marker, lo, hi);
}

static void grey_object(uintptr_t obj)
{
    mark_pointer(root_marker, obj);
}

/* Objects the snapshot's roots pointed at (gccheckmark only); collector. */
static struct {
    uintptr_t *obj;
    size_t n, cap;
} snap;

static void record_root(uintptr_t obj)
{
    if (snap.n == snap.cap) {
        size_t cap = snap.cap ? 2 * snap.cap : 4096;
        uintptr_t *grown = os_alloc_meta(cap * sizeof *grown);
        if (!grown)
            os_fatal("gccheckmark: out of memory for the root list");
        if (snap.n)
            memcpy(grown, snap.obj, snap.n * sizeof *grown);
        if (snap.obj)
            os_free_meta(snap.obj, snap.cap * sizeof *snap.obj);
        snap.obj = grown;
        snap.cap = cap;
    }
    snap.obj[snap.n++] = obj;
}

/* ---- (1) sweep termination and the snapshot ---- */

struct cycle_state {
    struct marker m;  /* the collector thread's marker */
    uint64_t t0;      /* start of the pause in progress */
    AO_t marked, scanned, live; /* measured at the flip, for the pacer */
    struct trace_cycle trace; /* what gctrace prints */
};

/* World stopped, allocator frozen: grey the roots, turn the barrier on. */
static void snapshot(void *arg)
{
    struct cycle_state *cs = arg;
    cs->t0 = stop(true);
    AO_t live = AO_load(&heap_live), trigger = AO_load(&heap_trigger);
    AO_store(&gc.live_at_start, live);
    AO_store(&gc.triggered, trigger < live ? trigger : live);
    cache_clear_stale_marks(heap_sweepgen);
    mark_reset();
    snap.n = 0;
    marker_begin(&cs->m);
    cs->m.record = options_global.gccheckmark ? record_root : NULL;
    root_marker = &cs->m;
    cache_premark_all(grey_object);
    size_t before = cs->m.scanned;
    threads_scan(scan_root);
    gc.stack_scan = cs->m.scanned - before;
    roots_scan_globals(scan_root);
    gc.globals_scan = cs->m.scanned - before - gc.stack_scan;
    cs->m.record = NULL;
    AO_store(&heap_marking, 1);
    barrier_set(!options_global.gcstoptheworld, AO_load(&gc.cycles) + 1);
    AO_store(&gc.assist_ratio_x1024, 0); /* revised once the world runs */
    AO_store(&gc.bg_credit, 0);
    AO_store(&gc.mark_cpu_ns, 0);
    AO_store(&gc.cycle_assist_ns, 0);
    AO_store(&gc.cycle_bg_ns, 0);
    AO_store(&gc.cycle_idle_ns, 0);
    cs->trace.heap_start = AO_load(&gc.live_at_start);
    cs->trace.goal = AO_load(&gc.goal);
    cs->trace.stacks = gc.stack_scan;
    cs->trace.globals = gc.globals_scan;
}

/* ---- (2) concurrent mark ---- */

static void *worker_main(void *arg);

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    unsigned started;
    unsigned long epoch; /* lock: bumped at each mark start */
} workers = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

static void wake_workers(void)
{
    pthread_mutex_lock(&workers.lock);
    while (workers.started + 1 < gc.dedicated + (gc.fractional > 0)) {
        if (!start_detached(worker_main, (void *)(uintptr_t)(workers.started + 1)))
            break;
        workers.started++;
    }
    workers.epoch++;
    pthread_cond_broadcast(&workers.wake);
    pthread_mutex_unlock(&workers.lock);
}

static void sleep_us(unsigned us)
{
    struct timespec ts = {0, (long)us * 1000};
    nanosleep(&ts, NULL);
}

/* Fewer registered threads than GCPROCS: some CPU is idle, and a
 * fractional worker may mark on it beyond its share (Go's idle workers). */
static bool cpu_idle(void)
{
    return threads_registered() < gc.procs;
}

/* Mark as a background worker until no grey work is left; a fractional
 * worker (share < 1) keeps its marking time to `share` of the wall time,
 * unless a CPU is idle. The collector (`collector`) also revises the
 * assist ratio after each slice. `m` has begun; it has ended on return. */
static void background_mark(struct marker *m, double share, bool collector)
{
    uint64_t begin = now_ns(), own = 0; /* marking time counted as the worker's share */
    while (AO_load(&gc.mark_phase)) {
        uint64_t t = now_ns();
        /* Past its share, a fractional worker marks only on an idle CPU,
         * and that time is idle marking, not the GC's share. */
        bool idle = share < 1 && (double)own > share * (double)(t - begin);
        if (idle && !cpu_idle()) {
            sleep_us(500);
            continue;
        }
        size_t before = m->scanned;
        bool drained = mark_drain(m, WORKER_SLICE);
        AO_fetch_and_add(&gc.bg_credit, m->scanned - before);
        uint64_t slice = now_ns() - t;
        if (!idle)
            own += slice;
        AO_fetch_and_add(&gc.mark_cpu_ns, slice);
        AO_fetch_and_add(idle ? &gc.idle_cpu_ns : &gc.cpu_ns, slice);
        AO_fetch_and_add(idle ? &gc.cycle_idle_ns : &gc.cycle_bg_ns, slice);
        if (collector)
            revise_assist_ratio();
        if (drained) {
            marker_end(m);
            if (mark_done())
                return;
            while (AO_load(&gc.mark_phase) && !mark_has_work() && !mark_done())
                sleep_us(50);
            if (!marker_join(m))
                return;
        }
    }
    marker_end(m);
}

/* Worker i (the collector thread is worker 0): dedicated or fractional. */
static double worker_share(unsigned i)
{
    return i < gc.dedicated ? 1.0 : gc.fractional;
}

static void *worker_main(void *arg)
{
    double share = worker_share((unsigned)(uintptr_t)arg);
    unsigned long seen = 0;
    pthread_mutex_lock(&workers.lock);
    for (;;) {
        while (workers.epoch == seen)
            pthread_cond_wait(&workers.wake, &workers.lock);
        seen = workers.epoch;
        pthread_mutex_unlock(&workers.lock);
        struct marker m;
        if (marker_join(&m))
            background_mark(&m, share, false);
        pthread_mutex_lock(&workers.lock);
    }
    return NULL;
}

/* Nap in 50 us steps while `more(arg)` holds, ASSIST_WAIT_US at most by
 * the clock (a 50 us nap can take far longer). The time napped is time the
 * GC took from the program: the CPU limiter counts it as GC time. Returns
 * it. */
static uint64_t nap_as_gc(bool (*more)(AO_t), AO_t arg)
{
    uint64_t start = now_ns(), now = start, until = start + ASSIST_WAIT_US * UINT64_C(1000);
    while (now < until && more(arg)) {
        sleep_us(50);
        now = now_ns();
    }
    AO_fetch_and_add(&gc.cpu_ns, now - start);
    return now - start;
}

/* An assist with debt and nothing to scan, past the hard goal: wait for
 * the workers (at most ASSIST_WAIT_US by the clock). The time waited is
 * time the GC took from the program: the CPU limiter counts it as GC
 * time, so that a program held at a limit it cannot fit under stops
 * waiting once the GC takes more than its share. */
static bool workers_behind(AO_t unused)
{
    (void)unused;
    return !mark_has_work() && AO_load(&gc.mark_phase) &&
           AO_load(&heap_live) >= AO_load(&gc.hard_goal);
}

static void wait_for_workers(void)
{
    AO_fetch_and_add(&gc.cycle_assist_ns, nap_as_gc(workers_behind, 0));
}

void collect_assist(size_t bytes)
{
    if (!AO_load(&gc.mark_phase) || limiter_full())
        return;
    size_t debt = bytes * AO_load(&gc.assist_ratio_x1024) / 1024;
    /* Background credit first. */
    for (AO_t c; debt && (c = AO_load(&gc.bg_credit)) != 0;) {
        AO_t take = c < debt ? c : debt;
        if (AO_compare_and_swap(&gc.bg_credit, c, c - take))
            debt -= take;
    }
    /* Past the hard goal with nothing to scan, give the workers the CPU for
     * a moment (at most ASSIST_WAIT_US by the clock: a 50 us nap can take
     * far longer) rather than outrun them. The hard goal is 1/8 beyond the
     * goal — below it a thread runs on: waiting at the goal itself costs
     * the program far more time than the heap it saves — or the goal
     * itself when a memory limit sets it. */
    if (debt && !mark_has_work())
        wait_for_workers();
    if (debt == 0 || !mark_has_work())
        return; /* paid, or nothing to scan */
    struct marker m;
    if (!marker_join(&m))
        return;
    uint64_t t = now_ns();
    mark_drain(&m, debt > ASSIST_MIN ? debt : ASSIST_MIN);
    marker_end(&m);
    t = now_ns() - t;
    AO_fetch_and_add(&gc.mark_cpu_ns, t);
    AO_fetch_and_add(&gc.cpu_ns, t);
    AO_fetch_and_add(&gc.cycle_assist_ns, t);
}

static void take_barrier_buffer(struct barrier_buf *b)
{
    barrier_take(b, root_marker);
}

/* With the world running, once the grey work is gone: mark what the barrier
 * buffers hold, so that (3) finds only what was shaded after. True when
 * there is grey work again (cs->m has joined again to do it). */
static bool take_barriers_running(struct cycle_state *cs)
{
    if (!marker_join(&cs->m))
        return false;
    root_marker = &cs->m;
    threads_each_barrier(take_barrier_buffer, true);
    marker_end(&cs->m);
    return !mark_done() && marker_join(&cs->m);
}

/* The collector thread's part of (2): mark until done, the barrier buffers
 * taken. */
static void concurrent_mark(struct cycle_state *cs)
{
    AO_store(&gc.mark_phase, 1);
    wake_workers();
    for (unsigned pass = 0;; pass++) {
        background_mark(&cs->m, worker_share(0), true);
        while (!mark_done())
            sleep_us(50);
        if (pass == BARRIER_PASSES || !take_barriers_running(cs))
            break;
    }
    AO_store(&gc.mark_phase, 0);
}

/* ---- (3) mark termination ---- */

/* World stopped: rescan what threads hold, take what the barrier buffers
 * got since (2) took them, finish a little grey work. True when no grey
 * object is left anywhere. */
static bool terminate_mark(struct cycle_state *cs)
{
    marker_begin(&cs->m);
    root_marker = &cs->m;
    threads_scan(scan_root);
    threads_each_barrier(take_barrier_buffer, false);
    bool drained = mark_drain(&cs->m, STW_DRAIN);
    marker_end(&cs->m);
    return drained && mark_done();
}

static void clear_check_bits(struct span *s)
{
    memset((void *)s->check_bits, 0, s->nwords * sizeof *s->check_bits);
}

/* gccheckmark: mark again, into the check bits, from the snapshot's root
 * objects and from every root as it is now (thread roots were rescanned by
 * (3), globals were not: an object hidden in one since the snapshot shows
 * here); an object reached without a mark bit aborts (mark.c). The cycle
 * runs with the loader's list locked, so the global ranges are current. */
static void checkmark(void)
{
    heap_each_span(clear_check_bits);
    mark_set_check(true);
    struct marker m;
    marker_begin(&m);
    for (size_t i = 0; i < snap.n; i++)
        mark_pointer(&m, snap.obj[i]);
    root_marker = &m;
    threads_scan(scan_root);
    roots_scan_globals(scan_root);
    while (!mark_drain(&m, ~(size_t)0))
        ;
    marker_end(&m);
    mark_set_check(false);
}

/* What the cycle measured goes to the pacer, which sets the next goal and
 * trigger. A concurrent cycle's allocation counts from its trigger (or its
 * start, for a cycle asked for earlier: the collector thread's wakeup and
 * the sweep termination count too) to its flip. With the world running:
 * a thread stopped inside gc_set_percent would hold pacer_lock. */
static void pace(struct cycle_state *cs)
{
    uint64_t mark_ns = now_ns() - gc.mark_start_ns;
    struct pacer_sample s = {
        .live_at_trigger = AO_load(&gc.triggered),
        .live_at_end = cs->live,
        .scan_work = cs->scanned,
        .utilisation = (double)AO_load(&gc.mark_cpu_ns) / ((double)gc.procs * (double)mark_ns),
    };
    uint64_t roots = gc.stack_scan + gc.globals_scan;
    struct trace_pacer_end t = {
        .utilisation = s.utilisation,
        .heap_work = cs->scanned > roots ? cs->scanned - roots : 0,
        .stack_work = gc.stack_scan,
        .globals_work = gc.globals_scan,
        .triggered = s.live_at_trigger,
        .heap_live = cs->live,
        .goal = cs->trace.goal,
    };
    pthread_mutex_lock(&gc.pacer_lock);
    t.expected = pacer_expected_scan(&gc.pacer);
    t.cons_mark = pacer_cons_mark(&gc.pacer);
    if (!options_global.gcstoptheworld && mark_ns > 0)
        pacer_record(&gc.pacer, &s);
    gc.pacer.marked = cs->marked;
    gc.pacer.heap_scan = t.heap_work;
    gc.pacer.stack_scan = gc.stack_scan;
    gc.pacer.globals_scan = gc.globals_scan;
    set_trigger_locked();
    pthread_mutex_unlock(&gc.pacer_lock);
    char line[TRACE_LINE];
    if (options_global.gcpacertrace)
        emit(line, trace_pacer_end_line(line, sizeof line, &t));
}

/* With the world stopped after termination: every span now needs a sweep. */
static void flip(struct cycle_state *cs)
{
    AO_t marked = mark_marked_bytes(), scanned = mark_scanned_bytes(); /* checkmark adds */
    if (options_global.gccheckmark)
        checkmark();
    barrier_set(false, AO_load(&barrier_cycle));
    AO_store(&heap_marking, 0);
    AO_t sg = heap_sweepgen + 2;
    AO_store(&heap_sweepgen, sg);
    central_flip();
    heap_flip_large();
    cache_snapshot(sg);
    AO_t live = AO_load(&heap_live);
    AO_t during = live > AO_load(&gc.live_at_start) ? live - AO_load(&gc.live_at_start) : 0;
    AO_store(&heap_live, marked + during);
    AO_store(&gc.garbage, live > marked + during ? live - (marked + during) : 0);
    AO_store(&gc.swept_at_flip, counters_swept_bytes());
    cs->marked = marked;
    cs->scanned = scanned;
    cs->live = live;
}

/* (2) and (3) until termination holds. */
static void mark_and_terminate(struct cycle_state *cs)
{
    if (options_global.gcstoptheworld) {
        while (!mark_drain(&cs->m, ~(size_t)0))
            ;
        marker_end(&cs->m);
    } else {
        cs->trace.stw1_ns = start(cs->t0);
        gc.mark_start_ns = now_ns();
        revise_assist_ratio();
        if (options_global.gcpacertrace)
            trace_mark_start();
        concurrent_mark(cs);
        cs->t0 = stop(true);
    }
    while (!terminate_mark(cs)) {
        start(cs->t0);
        marker_begin(&cs->m);
        concurrent_mark(cs);
        cs->t0 = stop(true);
    }
    if (!options_global.gcstoptheworld)
        cs->trace.mark_ns = cs->t0 - gc.mark_start_ns;
    flip(cs);
    if (options_global.gcstoptheworld > 1)
        sweep_all_stopped();
    *(options_global.gcstoptheworld ? &cs->trace.stw1_ns : &cs->trace.stw3_ns) = start(cs->t0);
    pace(cs);
}

/* (1) to (3) with the loader's list locked throughout (gccheckmark). */
static void snapshot_to_flip(void *arg)
{
    snapshot(arg);
    mark_and_terminate(arg);
}

/* A whole cycle; the caller holds the gc lock. `forced`: gc_collect
 * asked for it. */
static void cycle(bool forced)
{
    struct cycle_state cs = {.trace = {.n = gc.cycles + 1, .forced = forced, .procs = gc.procs}};
    cs.trace.at_ns = now_ns() - gc.start_ns;
    sweep_all(); /* (1), the part that needs no stop */
    if (options_global.gccheckmark) {
        roots_with_objects_locked(snapshot_to_flip, &cs);
    } else {
        roots_with_objects_locked(snapshot, &cs);
        mark_and_terminate(&cs);
    }
    AO_store(&gc.cycles, gc.cycles + 1);
    wake_sweeper(); /* (4) */
    scavenge_start();
    if (options_global.gctrace)
        trace_cycle_end(&cs.trace, cs.live, cs.marked);
    if (options_global.scavtrace)
        scavenge_trace(false);
}

unsigned long collect_cycles(void)
{
    return (unsigned long)AO_load(&gc.cycles);
}

/* ---- the collector thread and requests ---- */

/* Wait for a request (req_lock held); a whole period without one asks for
 * a cycle itself (Go's forced GC every 2 minutes: a program that stopped
 * allocating still gets its garbage collected and its memory returned). */
static void wait_for_request(void)
{
    while (gc.finished >= gc.requested) {
        struct timespec until = os_deadline_ms(gc.force_period_ms);
        if (pthread_cond_timedwait(&gc.req_wake, &gc.req_lock, &until) == ETIMEDOUT &&
            gc.finished >= gc.requested) {
            gc.requested = gc.finished + 1;
            gc.forced_by_time++;
        }
    }
}

void collect_set_force_period(unsigned ms)
{
    pthread_mutex_lock(&gc.req_lock);
    gc.force_period_ms = ms;
    pthread_cond_signal(&gc.req_wake); /* the wait in progress takes the new period */
    pthread_mutex_unlock(&gc.req_lock);
}

unsigned long collect_cycles_forced_by_time(void)
{
    pthread_mutex_lock(&gc.req_lock);
    unsigned long n = gc.forced_by_time;
    pthread_mutex_unlock(&gc.req_lock);
    return n;
}

static void *collector_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&gc.req_lock);
    for (;;) {
        wait_for_request();
        gc.started++;
        bool forced = gc.started <= gc.forced_upto;
        pthread_mutex_unlock(&gc.req_lock);
        pthread_mutex_lock(&gc.lock);
        cycle(forced);
        record_cycle(forced);
        pthread_mutex_unlock(&gc.lock);
        pthread_mutex_lock(&gc.req_lock);
        gc.finished++;
        pthread_cond_broadcast(&gc.req_done);
    }
    return NULL;
}

/* Ask for cycle number `want` (counting from 1); req_lock held. */
static void request_locked(unsigned long want)
{
    if (!gc.collector_started)
        gc.collector_started = start_detached(collector_main, NULL);
    if (!gc.collector_started)
        os_fatal("cannot start the collector thread");
    if (gc.requested < want) {
        gc.requested = want;
        pthread_cond_signal(&gc.req_wake);
    }
}

/* A cycle was asked for but has not begun to mark (the collector thread
 * is waking, or finishing the last sweep), and the heap is already past
 * the hard goal: no assist can hold it back yet. The allocating thread
 * waits for the marking to begin (at most ASSIST_WAIT_US by the clock; it
 * comes back at its next refill), as Go's allocating goroutines wait for
 * the cycle they triggered to start. The wait is GC time for the CPU
 * limiter, and once the limiter is full nobody waits. */
static bool mark_not_begun(AO_t cycles_done)
{
    return !AO_load(&gc.mark_phase) && AO_load(&gc.cycles) == cycles_done && !limiter_full() &&
           AO_load(&heap_live) >= AO_load(&gc.hard_goal);
}

static void wait_for_mark_start(void)
{
    nap_as_gc(mark_not_begun, AO_load(&gc.cycles));
}

void heap_trigger_hit(void)
{
    if (AO_load(&gc.mark_phase))
        return;
    pthread_mutex_lock(&gc.req_lock);
    if (gc.requested == gc.finished && AO_load(&heap_live) >= AO_load(&heap_trigger))
        request_locked(gc.finished + 1);
    bool pending = gc.requested > gc.finished;
    pthread_mutex_unlock(&gc.req_lock);
    if (pending && AO_load(&heap_live) >= AO_load(&gc.hard_goal))
        wait_for_mark_start();
}

void heap_assist_hook(size_t bytes)
{
    collect_assist(bytes);
}

/* Wait for cycle `want`, helping it mark meanwhile. */
static void wait_for_cycle(unsigned long want)
{
    pthread_mutex_lock(&gc.req_lock);
    while (gc.finished < want) {
        if (AO_load(&gc.mark_phase) && mark_has_work() && !AO_load(&gc.limiter_on)) {
            pthread_mutex_unlock(&gc.req_lock);
            collect_assist(~(size_t)0 / 2048);
            pthread_mutex_lock(&gc.req_lock);
            continue;
        }
        struct timespec until = os_deadline_ms(1);
        pthread_cond_timedwait(&gc.req_done, &gc.req_lock, &until);
    }
    pthread_mutex_unlock(&gc.req_lock);
}

void gc_collect(void)
{
    if (gc_init() != 0 || threads_register_self() != 0)
        return;
    pthread_mutex_lock(&gc.req_lock);
    unsigned long want = gc.started + 1; /* a cycle that starts after this call */
    request_locked(want);
    gc.forced_upto = want;
    pthread_mutex_unlock(&gc.req_lock);
    wait_for_cycle(want);
    /* The caller's own cached spans, then everything, swept now. */
    struct cache *c = threads_self_cache();
    if (c)
        cache_flush(c);
    sweep_all();
}

/* A new goal that the heap has reached already starts a cycle now. */
static void trigger_if_reached(void)
{
    if (AO_load(&heap_live) >= AO_load(&heap_trigger))
        heap_trigger_hit();
}

int64_t gc_set_memory_limit(int64_t limit)
{
    if (gc_init() != 0)
        limit = -1; /* no collector: only the query */
    pthread_mutex_lock(&gc.pacer_lock);
    int64_t old = gc.pacer.limit;
    if (limit >= 0) {
        gc.pacer.limit = limit;
        set_trigger_locked();
    }
    pthread_mutex_unlock(&gc.pacer_lock);
    trigger_if_reached();
    return old;
}

int gc_set_percent(int percent)
{
    bool ready = gc_init() == 0; /* else only report the setting */
    pthread_mutex_lock(&gc.pacer_lock);
    int old = gc.pacer.percent;
    if (ready) {
        gc.pacer.percent = percent;
        set_trigger_locked();
    }
    pthread_mutex_unlock(&gc.pacer_lock);
    trigger_if_reached();
    return old;
}

/* ---- fork ---- */

static void fork_prepare(void)
{
    pthread_mutex_lock(&gc.lock);
    pthread_mutex_lock(&gc.req_lock);
    pthread_mutex_lock(&gc.pacer_lock);
    scavenge_fork_prepare();
    roots_lock();
    heap_freeze();
    cache_lock_list();
    threads_fork_prepare();
    heap_lock();
    pthread_mutex_lock(&gc.pause_lock); /* a leaf: readers of the statistics hold it */
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&gc.pause_lock);
    heap_unlock();
    threads_fork_parent();
    cache_unlock_list();
    heap_thaw();
    roots_unlock();
    scavenge_fork_parent();
    pthread_mutex_unlock(&gc.pacer_lock);
    pthread_mutex_unlock(&gc.req_lock);
    pthread_mutex_unlock(&gc.lock);
}

/* The collector, worker and sweeper threads did not survive: start afresh
 * (each starts again on first need). */
static void fork_child(void)
{
    pthread_mutex_unlock(&gc.pause_lock);
    heap_unlock();
    threads_fork_child();
    cache_unlock_list();
    heap_thaw_in_child();
    pthread_mutex_init(&gc.sweeper_lock, NULL);
    pthread_cond_init(&gc.sweeper_wake, NULL);
    pthread_cond_init(&gc.req_wake, NULL);
    pthread_cond_init(&gc.req_done, NULL);
    pthread_mutex_init(&workers.lock, NULL);
    pthread_cond_init(&workers.wake, NULL);
    workers.started = 0;
    gc.sweeper_started = gc.sweep_requested = false;
    gc.collector_started = false;
    gc.requested = gc.started = gc.finished;
    roots_unlock();
    scavenge_fork_child();
    cache_forget_others(threads_self_cache(), cache_release);
    pthread_mutex_unlock(&gc.pacer_lock);
    pthread_mutex_unlock(&gc.req_lock);
    pthread_mutex_unlock(&gc.lock);
}

/* ---- configuration ---- */

/* GCPROCS, and the worker plan: 25% of P in dedicated workers, or one
 * fewer plus a fractional worker when rounding is off by more than 30%. */
static void plan_workers(void)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    gc.procs = options_global.procs ? (unsigned)options_global.procs
               : online > 0        ? (unsigned)online
                                   : 1;
    double goal = 0.25 * gc.procs;
    unsigned dedicated = (unsigned)(goal + 0.5);
    if ((double)dedicated > 1.3 * goal)
        dedicated--;
    gc.dedicated = dedicated > MAX_WORKERS ? MAX_WORKERS : dedicated;
    gc.fractional = goal - dedicated > 0.001 ? goal - dedicated : 0;
}

int collect_init(void)
{
    gc.pacer.percent = options_global.percent;
    gc.pacer.limit = options_global.memlimit;
    span_clobber_free = options_global.clobberfree;
    plan_workers();
    gc.start_ns = now_ns();
    gc.limiter = pacer_limiter_new(gc.start_ns);
    scavenge_init(options_global.madvdontneed ? OS_RETURN_NOW : OS_RETURN_LAZY);
    set_trigger();
    return pthread_atfork(fork_prepare, fork_parent, fork_child) == 0 ? 0 : -1;
}

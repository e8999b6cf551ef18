/*
 * collect.c — the collection cycle.
 *
 *   GC off ──trigger──▶ (1) sweep termination   finish sweeping what the last
 *                                                cycle left (concurrently)
 *                       (2) mark                 stop the world: scan every
 *                                                root, mark everything reachable
 *                       (3) mark termination     still stopped: flip the sweep
 *                                                generation, compute the trigger
 *                       (4) sweep                world running: the background
 *                                                sweeper and lazy sweeping (a
 *                                                span is swept before reuse)
 *
 * Marking stops the world (threads.c) after freezing the allocator (no
 * thread is inside an allocator slow path, so all span lists and bitmaps are
 * consistent; only allocation fast paths can be interrupted, and the sweep
 * invariant of span.h keeps what they hand out). The whole stop happens
 * with the dynamic loader's object list locked (roots.c), so the writable
 * segments scanned are exactly those loaded.
 *
 * Lock order: gc lock, loader lock, roots lock, the allocator's world lock,
 * threads lock, then the allocator's own locks.
 *
 * Trigger (GOGC-style): the next cycle starts when heap_live, the bytes of
 * objects marked by the last cycle plus those handed out since, reaches
 * marked + marked * GCPERCENT / 100, and at least 4 MiB * GCPERCENT / 100.
 * GCPERCENT=off (or gc_set_percent(-1)) leaves only gc_collect.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../allocator/central.h"
#include "../allocator/heap.h"
#include "collector.h"
#include "platform.h"
#include "tricolor.h"

#define MIN_HEAP ((AO_t)4 << 20)

static struct {
    pthread_mutex_t lock;   /* one cycle at a time */
    AO_t percent;           /* (AO_t)(int) GCPERCENT; negative: automatic cycles off */
    AO_t marked;            /* bytes marked by the last cycle; gc lock writes */
    AO_t cycles;            /* completed cycles; gc lock writes */
    pthread_mutex_t sweeper_lock;
    pthread_cond_t sweeper_wake; /* sweeper_lock */
    bool sweeper_started;        /* sweeper_lock */
    bool sweep_requested;        /* sweeper_lock */
} gc = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .percent = 100,
    .sweeper_lock = PTHREAD_MUTEX_INITIALIZER,
    .sweeper_wake = PTHREAD_COND_INITIALIZER,
};

/* ---- pacing ---- */

static int percent_now(void)
{
    return (int)(long)AO_load(&gc.percent);
}

/* The heap size at which the next cycle starts, for a live heap of
 * `marked` bytes (pure). */
static AO_t trigger_for(AO_t marked, int percent)
{
    if (percent < 0)
        return ~(AO_t)0;
    AO_t goal = marked + marked / 100 * (AO_t)percent;
    AO_t floor = MIN_HEAP / 100 * (AO_t)percent;
    return goal > floor ? goal : floor;
}

static void set_trigger(void)
{
    AO_store(&heap_trigger, trigger_for(AO_load(&gc.marked), percent_now()));
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
    heap_sweep_large();
    heap_leave();
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

/* Ask the background sweeper for a pass, starting it the first time. */
static void wake_sweeper(void)
{
    pthread_mutex_lock(&gc.sweeper_lock);
    gc.sweep_requested = true;
    if (!gc.sweeper_started) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        gc.sweeper_started = pthread_create(&t, &attr, sweeper_main, NULL) == 0;
        pthread_attr_destroy(&attr);
    }
    pthread_cond_signal(&gc.sweeper_wake);
    pthread_mutex_unlock(&gc.sweeper_lock);
}

/* ---- the cycle ---- */

static void scan_roots(void)
{
    threads_scan(mark_range);
    roots_scan_globals(mark_range);
}

/* (3) with the world stopped: every span now needs a sweep. */
static void flip(void)
{
    AO_t sg = heap_sweepgen + 2;
    AO_store(&heap_sweepgen, sg);
    central_flip();
    cache_snapshot(sg);
    AO_store(&gc.marked, mark_marked_bytes());
    AO_store(&heap_live, mark_marked_bytes());
    set_trigger();
}

/* (2) and (3); runs with the loader's list locked. */
static void stop_and_mark(void *arg)
{
    (void)arg;
    heap_freeze();
    threads_stop_world();
    cache_clear_stale_marks(heap_sweepgen);
    mark_reset();
    scan_roots();
    mark_drain();
    flip();
    threads_start_world();
    heap_thaw();
}

/* A whole cycle; the caller holds the gc lock. */
static void cycle(void)
{
    sweep_all(); /* (1) */
    roots_with_objects_locked(stop_and_mark, NULL);
    AO_store(&gc.cycles, gc.cycles + 1);
    wake_sweeper(); /* (4) */
}

unsigned long collect_cycles(void)
{
    return (unsigned long)AO_load(&gc.cycles);
}

void heap_trigger_hit(void)
{
    if (percent_now() < 0 || pthread_mutex_trylock(&gc.lock) != 0)
        return; /* off, or a cycle is running already */
    if (AO_load(&heap_live) >= AO_load(&heap_trigger))
        cycle();
    pthread_mutex_unlock(&gc.lock);
}

void gc_collect(void)
{
    if (gc_init() != 0 || threads_register_self() != 0)
        return;
    pthread_mutex_lock(&gc.lock);
    cycle();
    /* The caller's own cached spans, then everything, swept now. */
    struct cache *c = threads_self_cache();
    if (c)
        cache_flush(c);
    sweep_all();
    pthread_mutex_unlock(&gc.lock);
}

int gc_set_percent(int percent)
{
    if (gc_init() != 0)
        return percent_now();
    int old = (int)(long)AO_load(&gc.percent);
    AO_store(&gc.percent, (AO_t)(long)percent);
    set_trigger();
    if (AO_load(&heap_live) >= AO_load(&heap_trigger))
        heap_trigger_hit();
    return old;
}

/* ---- fork ---- */

static void fork_prepare(void)
{
    pthread_mutex_lock(&gc.lock);
    roots_lock();
    heap_freeze();
    threads_fork_prepare();
    heap_lock();
    cache_lock_list();
}

static void fork_parent(void)
{
    cache_unlock_list();
    heap_unlock();
    threads_fork_parent();
    heap_thaw();
    roots_unlock();
    pthread_mutex_unlock(&gc.lock);
}

/* The sweeper thread did not survive: start afresh. */
static void fork_child(void)
{
    cache_unlock_list();
    heap_unlock();
    threads_fork_child();
    heap_thaw_in_child();
    pthread_mutex_init(&gc.sweeper_lock, NULL);
    pthread_cond_init(&gc.sweeper_wake, NULL);
    gc.sweeper_started = false;
    gc.sweep_requested = false;
    roots_unlock();
    cache_forget_others(threads_self_cache(), cache_release);
    pthread_mutex_unlock(&gc.lock);
}

/* ---- configuration ---- */

static void percent_from_env(void)
{
    const char *v = getenv("GCPERCENT");
    if (!v || !*v)
        return;
    if (strcmp(v, "off") == 0) {
        AO_store(&gc.percent, (AO_t)-1L);
        return;
    }
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || end == v || n > 1000000) {
        os_warn("GCPERCENT=%s is neither \"off\" nor a percentage; using 100", v);
        return;
    }
    AO_store(&gc.percent, (AO_t)n);
}

int collect_init(void)
{
    percent_from_env();
    set_trigger();
    return pthread_atfork(fork_prepare, fork_parent, fork_child) == 0 ? 0 : -1;
}

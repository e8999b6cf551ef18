/*
 * scavenge.c — giving free heap memory back to the OS (DESIGN.md §3).
 *
 * Sweeping returns empty spans to the page heap, which keeps their pages
 * backed by memory, ready for the next span. A program whose heap shrank
 * would keep its peak size for ever; the scavenger returns the free pages
 * it probably will not need (heap_release: madvise, highest pages first)
 * and the heap counts them as released until they are handed out again.
 *
 * How much to keep. The heap retains (holds backed) its in-use spans and
 * its backed free pages. The scavenger keeps that at most
 *   RETAIN_PERCENT over the heap goal     (the next cycle's heap fits), and,
 *   with a memory limit, everything the limit counts at most
 *   LIMIT_PERMILLE of the limit           (room before the limit binds).
 * What is over either target — never more than the backed free pages —
 * is its work.
 *
 * How fast. Against the goal it works in the background at about
 * 1/SHARE_DIVISOR of one CPU: after each chunk it sleeps (SHARE_DIVISOR −
 * 1) times the CPU time the chunk took. Over the limit's target it is eager:
 * no sleep between chunks. It waits, without timeout, while nothing is
 * over a target; the collector wakes it when targets change (each cycle,
 * gc_set_memory_limit, gc_set_percent). Work that waits for the sweep to
 * free pages polls every POLL_MS.
 *
 * gc_free_os_memory collects, then returns every free page at once, in
 * the caller, with MADV_DONTNEED whatever the mode: the program asked for
 * its resident size to drop.
 *
 * Locks: scav.lock serialises the returning of pages (the background
 * thread's chunk, gc_free_os_memory) and is held across fork, so that no
 * run is left half returned in a child; it comes before the allocator's
 * locks. scav.wake_lock guards the targets and the wakeup; it is a leaf,
 * taken by the collector with the pacer lock held.
 */
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "../allocator/heap.h"
#include "collector.h"
#include "options.h"
#include "pacer.h"
#include "platform.h"
#include "tricolor.h"

#define RETAIN_PERCENT 10   /* retained heap at most this much over the goal */
#define LIMIT_PERMILLE 950  /* with a limit: what it counts at most 95% of it */
#define SHARE_DIVISOR  100  /* background work: 1% of one CPU */
#define CHUNK_PAGES    512  /* pages returned at a time (4 MiB) */
#define POLL_MS        10   /* work waiting for the sweep looks again this often, */
#define POLL_COUNT     100  /* this many times after each wakeup */
#define PAGE           ((size_t)SC_PAGE_SIZE)

static struct {
    pthread_mutex_t lock;      /* returning pages; held across fork */
    pthread_mutex_t wake_lock; /* a leaf: the fields below */
    pthread_cond_t wake;
    uint64_t goal;             /* wake_lock: the collector's heap goal */
    int64_t limit;             /* wake_lock: the memory limit, or PACER_NO_LIMIT */
    unsigned long wakeups;     /* wake_lock: targets changed this many times */
    bool started;              /* wake_lock: the thread runs */
    enum os_return_mode mode;  /* set once at init (GCDEBUG madvdontneed) */
    AO_t released_bg, released_eager; /* bytes since the last scavtrace line */
} scav = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake_lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .limit = PACER_NO_LIMIT,
};

/* What a memory limit counts (mapped), from heap statistics: everything
 * the library maps but heap pages never touched (committed a whole arena
 * at a time, they take no memory until touched) and pages returned. */
static struct pacer_memory memory_of(const struct heap_stats *st)
{
    return (struct pacer_memory){
        .mapped = os_mapped_bytes() - (st->committed - st->touched) - st->released,
        .heap_free = st->touched - st->in_use - st->released,
        .heap_live = AO_load(&heap_live),
    };
}

struct pacer_memory scavenge_memory_now(void)
{
    struct heap_stats st;
    heap_read_stats(&st);
    return memory_of(&st);
}

static uint64_t over(uint64_t have, uint64_t target)
{
    return have > target ? have - target : 0;
}

/* Bytes over the targets (goal, limit) now, whether the limit's target
 * asks for them (eager), and how many backed free pages there are. */
static uint64_t work_now(uint64_t goal, int64_t limit, bool *eager, uint64_t *backed_free)
{
    struct heap_stats st;
    heap_read_stats(&st);
    struct pacer_memory m = memory_of(&st);
    uint64_t work = over(st.touched - st.released, goal + goal / 100 * RETAIN_PERCENT);
    uint64_t for_limit = 0;
    if (limit != PACER_NO_LIMIT)
        for_limit = over(m.mapped, (uint64_t)limit / 1000 * LIMIT_PERMILLE);
    *eager = for_limit > 0;
    *backed_free = m.heap_free;
    return for_limit > work ? for_limit : work;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    nanosleep(&ts, NULL);
}

/* CPU time of the calling thread: what the 1% counts (a chunk the
 * scheduler interrupted took no more of a CPU). */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Wait until there is work over a target and free pages to do it with;
 * returns its size. Work without free pages (the sweep has not freed them
 * yet) is looked at again every POLL_MS, for POLL_COUNT times after each
 * wakeup: past that, what is over the target is in use. */
static uint64_t wait_for_work(bool *eager)
{
    pthread_mutex_lock(&scav.wake_lock);
    for (unsigned polls = 0;;) {
        uint64_t goal = scav.goal, free;
        int64_t limit = scav.limit;
        unsigned long seen = scav.wakeups;
        pthread_mutex_unlock(&scav.wake_lock);
        uint64_t work = work_now(goal, limit, eager, &free);
        if (work >= PAGE && free >= PAGE)
            return work < free ? work : free;
        if (work >= PAGE && polls++ < POLL_COUNT)
            sleep_ns(POLL_MS * UINT64_C(1000000));
        pthread_mutex_lock(&scav.wake_lock);
        if (scav.wakeups != seen) {
            polls = 0;
            continue;
        }
        if (work < PAGE || polls >= POLL_COUNT)
            while (scav.wakeups == seen)
                pthread_cond_wait(&scav.wake, &scav.wake_lock);
    }
}

/* Return one chunk; bytes returned (0: nothing free yet). */
static size_t return_chunk(size_t max_pages, enum os_return_mode mode)
{
    pthread_mutex_lock(&scav.lock);
    size_t bytes = heap_release(max_pages, mode) * PAGE;
    pthread_mutex_unlock(&scav.lock);
    return bytes;
}

static void *scavenger_main(void *arg)
{
    (void)arg;
    for (;;) {
        bool eager;
        uint64_t work = wait_for_work(&eager);
        size_t pages = CHUNK_PAGES;
        if (work / PAGE < pages)
            pages = work / PAGE;
        uint64_t t = cpu_ns();
        size_t bytes = return_chunk(pages, scav.mode);
        t = cpu_ns() - t;
        AO_fetch_and_add(eager ? &scav.released_eager : &scav.released_bg, bytes);
        if (!eager)
            sleep_ns(t * (SHARE_DIVISOR - 1));
    }
    return NULL;
}

void scavenge_init(enum os_return_mode mode)
{
    scav.mode = mode;
}

void scavenge_set_targets(uint64_t goal, int64_t limit)
{
    pthread_mutex_lock(&scav.wake_lock);
    scav.goal = goal;
    scav.limit = limit;
    scav.wakeups++;
    pthread_cond_signal(&scav.wake);
    pthread_mutex_unlock(&scav.wake_lock);
}

void scavenge_start(void)
{
    pthread_mutex_lock(&scav.wake_lock);
    if (!scav.started) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        scav.started = pthread_create(&t, &attr, scavenger_main, NULL) == 0;
        pthread_attr_destroy(&attr);
    }
    pthread_mutex_unlock(&scav.wake_lock);
}

size_t scavenge_all(void)
{
    size_t total = 0;
    for (size_t bytes; (bytes = return_chunk(CHUNK_PAGES, OS_RETURN_NOW)) != 0;)
        total += bytes;
    return total;
}

/* scavtrace=1: Go's line, for what was returned since the last one. */
void scavenge_trace(bool forced)
{
    struct heap_stats st;
    heap_read_stats(&st);
    AO_t bg = AO_load(&scav.released_bg), eager = AO_load(&scav.released_eager);
    AO_fetch_and_add(&scav.released_bg, -bg);
    AO_fetch_and_add(&scav.released_eager, -eager);
    uint64_t retained = st.touched - st.released;
    fprintf(stderr, "scav %zu KiB work, %zu KiB total, %u%% util%s\n",
            (size_t)(bg + eager) >> 10, st.released >> 10,
            retained ? (unsigned)(st.in_use * 100 / retained) : 100, forced ? " (forced)" : "");
}

void scavenge_fork_prepare(void)
{
    pthread_mutex_lock(&scav.lock);
}

void scavenge_fork_parent(void)
{
    pthread_mutex_unlock(&scav.lock);
}

/* The thread did not survive: it starts again at the next targets. */
void scavenge_fork_child(void)
{
    pthread_mutex_unlock(&scav.lock);
    pthread_mutex_init(&scav.wake_lock, NULL);
    pthread_cond_init(&scav.wake, NULL);
    scav.started = false;
}

void gc_free_os_memory(void)
{
    gc_collect();
    size_t bytes = scavenge_all();
    AO_fetch_and_add(&scav.released_eager, bytes);
    if (options_global.scavtrace)
        scavenge_trace(true);
}

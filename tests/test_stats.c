/*
 * test_stats.c — gc_read_memstats and gc_read_gc_stats: the identities Go
 * documents for MemStats, exact counts, and reading while threads run.
 *
 * Layers:
 *   identities  at a quiescent point (after gc_collect, no other thread
 *               allocating): Alloc = HeapAlloc, HeapSys = HeapInuse +
 *               HeapIdle, HeapIdle >= HeapReleased, Mallocs - Frees =
 *               HeapObjects, TotalAlloc >= HeapAlloc, Sys >= HeapSys -
 *               HeapReleased, BySize within Mallocs; and HeapObjects and
 *               HeapAlloc equal to a census of the heap's spans, taken
 *               independently of the counters.
 *   cycles      NumGC and NumForcedGC count gc_collect exactly; pauses,
 *               their end times, LastGC, PauseTotalNs and GCCPUFraction
 *               agree; gc_read_gc_stats reports the same history, most
 *               recent first; automatic cycles are not forced ones.
 *   exact       N objects of a class: Mallocs, BySize and TotalAlloc grow
 *               by exactly N (and N times the class size); dropped and
 *               collected, the class's Frees grow by N. Large objects;
 *               gc_free and gc_realloc count at once.
 *   threads     8 threads allocate and free known counts and wait: the
 *               sums are exact, the objects their cached spans handed out
 *               included; after they exit, the same (their counts folded).
 *   quantiles   the pure quantile function against a table (Go's
 *               definition), and its order on random histories.
 *   concurrent  reading both structures while 8 threads allocate, free
 *               and trigger cycles: monotonic counters, identities that
 *               hold at any moment (also run under ThreadSanitizer), and
 *               exact sums once they stop; forking while a thread reads:
 *               the child collects and reads.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <time.h>

#include "../allocator/heap.h"
#include "../gc/collector.h"
#include "testutil.h"
#include "tricolor.h"

/* Under ThreadSanitizer, its runtime's static data — part of the
 * program's writable segment, so a root — holds addresses the program used
 * lately: a few dropped objects stay reachable. Elsewhere none may. */
#if defined(__SANITIZE_THREAD__)
#define TSAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSAN_BUILD 1
#endif
#endif
#ifndef TSAN_BUILD
#define TSAN_BUILD 0
#endif
#define RETAINED_MAX(n) (TSAN_BUILD ? (n) / 100 + 2 : 0)

#define KiB       ((size_t)1 << 10)
#define MiB       ((size_t)1 << 20)
#define TIMEOUT   240
#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define THREADS   8

/* Addresses kept where no scan takes them for pointers. */
#define DISGUISE(p) ((uintptr_t)(p) ^ ~(uintptr_t)0)

enum kind { SCAN, NOSCAN };

static void *alloc_kind(enum kind k, size_t size)
{
    return k == NOSCAN ? gc_alloc_noscan(size) : gc_alloc(size);
}

static uint64_t unix_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Overwrite the stack below the caller, so that no dead frame keeps an
 * address a test dropped. */
static __attribute__((noinline)) void scrub_stack(void)
{
    volatile char junk[32 * 1024];
    memset((char *)junk, 0, sizeof junk);
    keep_stores((const void *)junk);
}

/* Two cycles: the first may keep the object its cached span handed out
 * last (its address may not be formed yet when the world stops). */
static void collect_twice(void)
{
    scrub_stack();
    gc_collect();
    gc_collect();
}

/* ---- identities ---- */

/* What a walk over the spans finds: allocated objects not freed, and
 * their bytes (the allocation invariant of span.h, minus freed bits). */
static struct {
    uint64_t objects, bytes;
} census_sum;

static void census_span(struct span *s)
{
    unsigned n = 1;
    if (sc_class_of_span_class(s->spanclass) != 0) {
        n = span_count_allocated(s);
        for (unsigned w = 0; w < s->nwords; w++)
            n -= (unsigned)__builtin_popcountll(s->freed_bits[w]);
    }
    census_sum.objects += n;
    census_sum.bytes += (uint64_t)n * s->elemsize;
}

/* Quiescent point only: no thread may be allocating or freeing. */
static void census(uint64_t *objects, uint64_t *bytes)
{
    census_sum.objects = census_sum.bytes = 0;
    heap_freeze();
    heap_each_span(census_span);
    heap_thaw();
    *objects = census_sum.objects;
    *bytes = census_sum.bytes;
}

/* The identities that hold at any moment; false with `why` set. */
static bool always_consistent(const struct gc_memstats *ms)
{
    if (ms->Alloc != ms->HeapAlloc)
        return broken("Alloc %lu != HeapAlloc %lu", ms->Alloc, ms->HeapAlloc);
    if (ms->HeapSys != ms->HeapInuse + ms->HeapIdle)
        return broken("HeapSys %lu != HeapInuse %lu + HeapIdle %lu", ms->HeapSys, ms->HeapInuse,
                      ms->HeapIdle);
    if (ms->HeapIdle < ms->HeapReleased)
        return broken("HeapIdle %lu < HeapReleased %lu", ms->HeapIdle, ms->HeapReleased);
    if (ms->Frees > ms->Mallocs || ms->HeapObjects != ms->Mallocs - ms->Frees)
        return broken("Mallocs %lu, Frees %lu, HeapObjects %lu", ms->Mallocs, ms->Frees,
                      ms->HeapObjects);
    if (ms->TotalAlloc < ms->HeapAlloc)
        return broken("TotalAlloc %lu < HeapAlloc %lu", ms->TotalAlloc, ms->HeapAlloc);
    if (ms->Sys < ms->HeapSys - ms->HeapReleased)
        return broken("Sys %lu < HeapSys %lu - HeapReleased %lu", ms->Sys, ms->HeapSys,
                      ms->HeapReleased);
    if (ms->HeapInuse < ms->HeapAlloc)
        return broken("HeapInuse %lu < HeapAlloc %lu", ms->HeapInuse, ms->HeapAlloc);
    if (!(ms->GCCPUFraction >= 0 && ms->GCCPUFraction <= 1))
        return broken("GCCPUFraction %g outside [0, 1]", ms->GCCPUFraction);
    if (ms->NumForcedGC > ms->NumGC)
        return broken("NumForcedGC %u > NumGC %u", ms->NumForcedGC, ms->NumGC);
    uint64_t mallocs = 0, frees = 0;
    for (unsigned i = 0; i < GC_NUM_SIZE_CLASSES; i++) {
        mallocs += ms->BySize[i].Mallocs;
        frees += ms->BySize[i].Frees;
        if (i > 0 && ms->BySize[i].Size <= ms->BySize[i - 1].Size)
            return broken("BySize[%u].Size %u not above BySize[%u]", i, ms->BySize[i].Size, i - 1);
    }
    if (ms->BySize[0].Size || ms->BySize[0].Mallocs || ms->BySize[0].Frees)
        return broken("BySize[0] is not empty");
    if (mallocs > ms->Mallocs || frees > ms->Frees)
        return broken("BySize sums %lu/%lu above Mallocs %lu/Frees %lu", mallocs, frees,
                      ms->Mallocs, ms->Frees);
    return true;
}

/* Read when the heap stands still, with its census. No thread of the
 * program allocates or frees, but the background sweeper may still be
 * sweeping the span it took before gc_collect returned (or a cycle the
 * program triggered may be under way): two equal readings around the
 * census show that nothing moved. */
static void read_still(struct gc_memstats *ms, uint64_t *objects, uint64_t *bytes)
{
    static struct gc_memstats again;
    for (unsigned tries = 0; tries < 2000; tries++) {
        gc_read_memstats(ms);
        census(objects, bytes);
        gc_read_memstats(&again);
        if (again.Mallocs == ms->Mallocs && again.Frees == ms->Frees)
            return;
        nap(1);
    }
    ck_abort_msg("the heap never stood still");
}

/* At a quiescent point: also the census. */
static void check_quiescent(const char *when)
{
    struct gc_memstats ms;
    uint64_t objects, bytes;
    read_still(&ms, &objects, &bytes);
    ck_assert_msg(always_consistent(&ms), "%s: %s", when, why);
    ck_assert_msg(ms.HeapObjects == objects, "%s: HeapObjects %lu, the spans hold %lu", when,
                  ms.HeapObjects, objects);
    ck_assert_msg(ms.HeapAlloc == bytes, "%s: HeapAlloc %lu, the spans hold %lu bytes", when,
                  ms.HeapAlloc, bytes);
}

static void **kept; /* a global root */

/* Mixed objects, a third kept, some freed; the rest garbage. */
static __attribute__((noinline)) void mixed_heap(size_t n, uint64_t seed)
{
    kept = gc_alloc(n * sizeof *kept);
    ck_assert_ptr_nonnull(kept);
    for (size_t i = 0; i < n; i++) {
        uint64_t r = test_rand(&seed);
        size_t size = r % 50 == 0 ? 32 * KiB + r % (64 * KiB) : 1 + r % 3000;
        void *p = alloc_kind(r % 3 ? SCAN : NOSCAN, size);
        test_require(p != NULL, "allocation of %zu bytes failed", size);
        if (i % 3 == 0)
            GC_WRITE(kept[i], p);
        else if (i % 7 == 1)
            gc_free(p);
    }
}

START_TEST(identities_at_a_quiescent_point)
{
    check_quiescent("at start");
    mixed_heap(20000, 0x5eed);
    check_quiescent("after allocating");
    gc_collect();
    check_quiescent("after gc_collect");
    for (size_t i = 0; i < 20000; i += 6) /* freed, not yet reclaimed */
        gc_free(kept[i]);
    check_quiescent("after gc_free");
    kept = NULL;
    collect_twice();
    check_quiescent("after dropping everything");
    struct gc_memstats ms;
    gc_read_memstats(&ms);
    ck_assert_msg(TSAN_BUILD || ms.HeapObjects < 100, "%lu objects left", ms.HeapObjects);
}
END_TEST

/* ---- cycles ---- */

enum { COLLECTS = 5 };

/* gc_read_memstats and gc_read_gc_stats agree, read with no cycle ending
 * between them (a cycle an allocation triggered may still be running:
 * read again until the count stands still). */
static void check_gc_stats(void)
{
    static struct gc_memstats again, stable;
    struct gc_memstats *ms = &stable;
    struct gc_gc_stats st;
    do {
        gc_read_memstats(ms);
        gc_read_gc_stats(&st);
        gc_read_memstats(&again);
    } while (again.NumGC != ms->NumGC);
    ck_assert_int_eq(st.NumGC, ms->NumGC);
    ck_assert_int_eq(st.LastGC, (int64_t)ms->LastGC);
    ck_assert_int_eq(st.PauseTotal, (int64_t)ms->PauseTotalNs);
    ck_assert_uint_eq(st.NPause, ms->NumGC < 256 ? ms->NumGC : 256);
    uint64_t min = UINT64_MAX, max = 0;
    for (size_t i = 0; i < st.NPause; i++) {
        size_t at = (ms->NumGC + 255 - i) % 256;
        ck_assert_uint_eq(st.Pause[i], ms->PauseNs[at]);
        ck_assert_uint_eq(st.PauseEnd[i], ms->PauseEnd[at]);
        if (i > 0)
            ck_assert_uint_le(st.PauseEnd[i], st.PauseEnd[i - 1]);
        min = st.Pause[i] < min ? st.Pause[i] : min;
        max = st.Pause[i] > max ? st.Pause[i] : max;
    }
    ck_assert_uint_eq(st.PauseEnd[0], st.LastGC);
    ck_assert_uint_eq(st.PauseQuantiles[0], min);
    ck_assert_uint_eq(st.PauseQuantiles[4], max);
    for (unsigned q = 1; q < 5; q++)
        ck_assert_uint_le(st.PauseQuantiles[q - 1], st.PauseQuantiles[q]);
}

START_TEST(gc_collect_counts_one_forced_cycle)
{
    gc_set_percent(-1); /* no automatic cycle */
    struct gc_memstats before, ms;
    gc_read_memstats(&before);
    uint64_t t0 = unix_now_ns();
    for (unsigned i = 0; i < COLLECTS; i++) {
        mixed_heap(2000, i + 1);
        gc_collect();
        gc_read_memstats(&ms);
        ck_assert_uint_eq(ms.NumGC, before.NumGC + i + 1);
        ck_assert_uint_eq(ms.NumForcedGC, before.NumForcedGC + i + 1);
    }
    uint64_t t1 = unix_now_ns(), total = 0;
    for (unsigned i = 0; i < COLLECTS; i++) {
        unsigned at = (before.NumGC + i) % 256;
        ck_assert_uint_gt(ms.PauseNs[at], 0);
        ck_assert_uint_ge(ms.PauseEnd[at], t0);
        ck_assert_uint_le(ms.PauseEnd[at], t1);
        if (i > 0)
            ck_assert_uint_gt(ms.PauseEnd[at], ms.PauseEnd[(at + 255) % 256]);
        total += ms.PauseNs[at];
    }
    ck_assert_uint_eq(ms.LastGC, ms.PauseEnd[(ms.NumGC + 255) % 256]);
    ck_assert_uint_eq(ms.PauseTotalNs - before.PauseTotalNs, total);
    ck_assert_msg(ms.GCCPUFraction > 0 && ms.GCCPUFraction <= 1, "GCCPUFraction %g",
                  ms.GCCPUFraction);
    ck_assert_msg(always_consistent(&ms), "%s", why);
    check_gc_stats();
}
END_TEST

START_TEST(automatic_cycles_are_not_forced)
{
    struct gc_memstats before, ms;
    gc_read_memstats(&before);
    uint64_t seed = 7;
    do {
        for (unsigned i = 0; i < 100000; i++)
            keep_stores(gc_alloc(16 + test_rand(&seed) % 512));
        gc_read_memstats(&ms);
    } while (ms.NumGC < before.NumGC + 3);
    ck_assert_uint_eq(ms.NumForcedGC, before.NumForcedGC);
    ck_assert_uint_gt(ms.PauseTotalNs, before.PauseTotalNs);
    ck_assert_uint_gt(ms.LastGC, before.LastGC);
    ck_assert_msg(always_consistent(&ms), "%s", why);
    check_gc_stats();
}
END_TEST

/* ---- exact counts ---- */

static const struct class_case {
    size_t size; /* requested: the class is the smallest that holds it */
    size_t n;
    enum kind kind;
} class_cases[] = {
    {1, 5000, SCAN},   {16, 5000, NOSCAN},  {40, 3000, SCAN},      {1000, 3000, NOSCAN},
    {3100, 800, SCAN}, {8192, 500, NOSCAN}, {32 * KiB, 200, SCAN},
};

/* The size class of a request; 0 for a large object. */
static unsigned class_of(size_t size)
{
    return size > SC_MAX_SMALL ? 0 : sc_size_to_class(size);
}

/* Allocate c->n objects, their addresses only in hidden[]. */
static __attribute__((noinline)) void allocate_hidden(const struct class_case *c,
                                                      uintptr_t *hidden)
{
    for (size_t i = 0; i < c->n; i++) {
        void *p = alloc_kind(c->kind, c->size);
        test_require(p != NULL, "allocation failed");
        hidden[i] = DISGUISE(p);
    }
}

START_TEST(a_class_counts_exactly)
{
    const struct class_case *c = &class_cases[_i];
    unsigned cls = class_of(c->size);
    uintptr_t *hidden = malloc(c->n * sizeof *hidden);
    ck_assert_ptr_nonnull(hidden);
    gc_set_percent(-1);
    struct gc_memstats before, ms;
    uint64_t objects, bytes;
    gc_read_memstats(&before);
    allocate_hidden(c, hidden);
    gc_read_memstats(&ms);
    ck_assert_uint_eq(ms.Mallocs - before.Mallocs, c->n);
    ck_assert_uint_eq(ms.BySize[cls].Mallocs - before.BySize[cls].Mallocs, c->n);
    ck_assert_uint_eq(ms.BySize[cls].Size, gc_size((void *)DISGUISE(hidden[0])));
    ck_assert_uint_eq(ms.TotalAlloc - before.TotalAlloc, c->n * ms.BySize[cls].Size);
    ck_assert_uint_eq(ms.HeapObjects - before.HeapObjects, c->n);
    ck_assert_uint_eq(ms.Frees, before.Frees);
    check_quiescent("allocated");
    collect_twice();
    read_still(&ms, &objects, &bytes);
    size_t survived = 0;
    for (size_t i = 0; i < c->n; i++)
        survived += gc_base((void *)DISGUISE(hidden[i])) != NULL;
    ck_assert_uint_le(survived, RETAINED_MAX(c->n));
    ck_assert_uint_eq(ms.BySize[cls].Frees - before.BySize[cls].Frees, c->n - survived);
    ck_assert_uint_ge(ms.Frees - before.Frees, c->n - survived);
    check_quiescent("collected");
    free(hidden);
}
END_TEST

enum { LARGE = 24 };

START_TEST(large_objects_count_by_pages)
{
    gc_set_percent(-1);
    uintptr_t hidden[LARGE];
    uint64_t bytes = 0, seed = 3, census_objects, census_bytes;
    struct gc_memstats before, ms;
    gc_read_memstats(&before);
    for (unsigned i = 0; i < LARGE; i++) {
        size_t size = 32 * KiB + 1 + test_rand(&seed) % MiB;
        void *p = alloc_kind(i % 2 ? SCAN : NOSCAN, size);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq(gc_size(p) % SC_PAGE_SIZE, 0);
        bytes += gc_size(p);
        hidden[i] = DISGUISE(p);
    }
    gc_read_memstats(&ms);
    ck_assert_uint_eq(ms.Mallocs - before.Mallocs, LARGE);
    ck_assert_uint_eq(ms.TotalAlloc - before.TotalAlloc, bytes);
    ck_assert_uint_eq(ms.HeapAlloc - before.HeapAlloc, bytes);
    ck_assert_uint_ge(ms.HeapInuse - before.HeapInuse, bytes);
    for (unsigned i = 0; i < GC_NUM_SIZE_CLASSES; i++)
        ck_assert_uint_eq(ms.BySize[i].Mallocs, before.BySize[i].Mallocs);
    uint64_t freed = 0;
    for (unsigned i = 0; i < LARGE / 2; i++) {
        void *p = (void *)DISGUISE(hidden[i]);
        freed += gc_size(p);
        gc_free(p);
    }
    gc_read_memstats(&ms);
    ck_assert_uint_eq(ms.Frees - before.Frees, LARGE / 2);
    ck_assert_uint_eq(ms.HeapAlloc - before.HeapAlloc, bytes - freed);
    collect_twice();
    read_still(&ms, &census_objects, &census_bytes);
    size_t survived = 0;
    for (unsigned i = LARGE / 2; i < LARGE; i++)
        survived += gc_base((void *)DISGUISE(hidden[i])) != NULL;
    ck_assert_uint_le(survived, RETAINED_MAX(LARGE));
    ck_assert_uint_eq(ms.Frees - before.Frees, LARGE - survived);
    check_quiescent("large objects collected");
}
END_TEST

/* gc_free from a thread of its own. */
static void *free_main(void *p)
{
    gc_free(p);
    return NULL;
}

START_TEST(gc_free_counts_at_once)
{
    gc_set_percent(-1);
    struct gc_memstats before, ms;
    unsigned cls = class_of(100);
    void *p = gc_alloc(100), *q = gc_alloc_noscan(100);
    gc_read_memstats(&before);
    gc_free(p);
    gc_read_memstats(&ms);
    ck_assert_uint_eq(ms.Frees - before.Frees, 1);
    ck_assert_uint_eq(ms.BySize[cls].Frees - before.BySize[cls].Frees, 1);
    ck_assert_uint_eq(before.HeapObjects - ms.HeapObjects, 1);
    ck_assert_uint_eq(before.HeapAlloc - ms.HeapAlloc, ms.BySize[cls].Size);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, free_main, q), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    gc_read_memstats(&ms);
    ck_assert_uint_eq(ms.Frees - before.Frees, 2);
    check_quiescent("freed");
}
END_TEST

START_TEST(gc_realloc_counts_a_malloc_and_a_free)
{
    gc_set_percent(-1);
    struct gc_memstats before, ms;
    char *p = gc_alloc(24);
    ck_assert_ptr_nonnull(p);
    gc_read_memstats(&before);
    p = gc_realloc(p, 24); /* in place: nothing */
    gc_read_memstats(&ms);
    ck_assert_uint_eq(ms.Mallocs, before.Mallocs);
    p = gc_realloc(p, 5000);
    ck_assert_ptr_nonnull(p);
    gc_read_memstats(&ms);
    ck_assert_uint_eq(ms.Mallocs - before.Mallocs, 1);
    ck_assert_uint_eq(ms.Frees - before.Frees, 1);
    ck_assert_uint_eq(ms.BySize[class_of(5000)].Mallocs - before.BySize[class_of(5000)].Mallocs,
                      1);
    ck_assert_uint_eq(ms.BySize[class_of(24)].Frees - before.BySize[class_of(24)].Frees, 1);
    check_quiescent("reallocated");
}
END_TEST

/* ---- threads ---- */

struct worker {
    unsigned id;
    size_t allocated, freed; /* what it did */
    size_t by_class[SC_NUM_CLASSES];
    void **objs;             /* heap array, rooted in worker_roots */
};

static void **worker_roots[THREADS]; /* global roots */
static pthread_barrier_t parked, leave;

static size_t worker_size(unsigned id, size_t i)
{
    static const size_t sizes[] = {8, 24, 64, 200, 1024, 4000};
    return sizes[(id + i) % NELEMS(sizes)];
}

/* Allocate (id + 1) * 1000 objects, free every fifth, wait for the main
 * thread to read, and exit. */
static void *worker_main(void *arg)
{
    struct worker *w = arg;
    size_t n = (w->id + 1) * 1000;
    w->objs = gc_alloc(n * sizeof *w->objs);
    test_require(w->objs != NULL, "allocation failed");
    worker_roots[w->id] = w->objs;
    w->allocated = 1;
    w->by_class[class_of(n * sizeof *w->objs)]++;
    for (size_t i = 0; i < n; i++) {
        size_t size = worker_size(w->id, i);
        void *p = alloc_kind(i % 2 ? SCAN : NOSCAN, size);
        test_require(p != NULL, "allocation failed");
        w->allocated++;
        w->by_class[class_of(size)]++;
        if (i % 5 == 0) {
            gc_free(p);
            w->freed++;
        } else {
            GC_WRITE(w->objs[i], p);
        }
    }
    pthread_barrier_wait(&parked);
    pthread_barrier_wait(&leave);
    return NULL;
}

static void check_worker_sums(const struct gc_memstats *before, const struct worker *w,
                              const char *when)
{
    struct gc_memstats ms;
    gc_read_memstats(&ms);
    size_t allocated = 0, freed = 0;
    for (unsigned i = 0; i < THREADS; i++) {
        allocated += w[i].allocated;
        freed += w[i].freed;
    }
    ck_assert_msg(ms.Mallocs - before->Mallocs == allocated, "%s: Mallocs +%lu, allocated %zu",
                  when, ms.Mallocs - before->Mallocs, allocated);
    ck_assert_msg(ms.Frees - before->Frees == freed, "%s: Frees +%lu, freed %zu", when,
                  ms.Frees - before->Frees, freed);
    for (unsigned c = 1; c < SC_NUM_CLASSES; c++) {
        size_t n = 0;
        for (unsigned i = 0; i < THREADS; i++)
            n += w[i].by_class[c];
        ck_assert_msg(ms.BySize[c].Mallocs - before->BySize[c].Mallocs == n,
                      "%s: class %u: Mallocs +%lu, allocated %zu", when, c,
                      ms.BySize[c].Mallocs - before->BySize[c].Mallocs, n);
    }
}

START_TEST(eight_threads_sum_exactly)
{
    static struct worker w[THREADS];
    pthread_t tids[THREADS];
    gc_set_percent(-1);
    pthread_barrier_init(&parked, NULL, THREADS + 1);
    pthread_barrier_init(&leave, NULL, THREADS + 1);
    struct gc_memstats before;
    gc_read_memstats(&before);
    for (unsigned i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.id = i};
        ck_assert_int_eq(gc_pthread_create(&tids[i], NULL, worker_main, &w[i]), 0);
    }
    pthread_barrier_wait(&parked);
    check_worker_sums(&before, w, "threads parked");
    check_quiescent("threads parked");
    pthread_barrier_wait(&leave);
    for (unsigned i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_join(tids[i], NULL), 0);
    check_worker_sums(&before, w, "threads exited");
    check_quiescent("threads exited");
    gc_collect();
    check_quiescent("collected");
}
END_TEST

/* ---- quantiles ---- */

static const struct quantile_case {
    const char *name;
    size_t n;
    uint64_t pause[8];
    uint64_t q[5];
} quantile_cases[] = {
    {"none", 0, {0}, {0, 0, 0, 0, 0}},
    {"one", 1, {7}, {7, 7, 7, 7, 7}},
    {"two", 2, {9, 3}, {3, 3, 9, 9, 9}},
    {"four", 4, {4, 1, 3, 2}, {1, 2, 3, 4, 4}},
    {"five", 5, {50, 10, 40, 20, 30}, {10, 20, 30, 40, 50}},
    {"equal", 3, {5, 5, 5}, {5, 5, 5, 5, 5}},
    {"eight", 8, {80, 70, 60, 50, 40, 30, 20, 10}, {10, 30, 50, 70, 80}},
};

START_TEST(quantiles_by_table)
{
    const struct quantile_case *c = &quantile_cases[_i];
    uint64_t q[5];
    stats_pause_quantiles(c->pause, c->n, q);
    for (unsigned i = 0; i < 5; i++)
        ck_assert_msg(q[i] == c->q[i], "%s: quantile %u is %lu, not %lu", c->name, i, q[i],
                      c->q[i]);
}
END_TEST

START_TEST(quantiles_of_a_full_history_are_ordered)
{
    uint64_t pause[COLLECT_CYCLE_HISTORY], q[5], seed = 11;
    for (size_t n = 1; n <= COLLECT_CYCLE_HISTORY; n++) {
        uint64_t min = UINT64_MAX, max = 0;
        for (size_t i = 0; i < n; i++) {
            pause[i] = test_rand(&seed) % 1000000;
            min = pause[i] < min ? pause[i] : min;
            max = pause[i] > max ? pause[i] : max;
        }
        stats_pause_quantiles(pause, n, q);
        test_require(q[0] == min && q[4] == max, "n %zu: min %lu max %lu, quantiles %lu %lu", n,
                     min, max, q[0], q[4]);
        for (unsigned i = 1; i < 5; i++)
            test_require(q[i - 1] <= q[i], "n %zu: quantile %u below %u", n, i, i - 1);
    }
    for (size_t i = 0; i < COLLECT_CYCLE_HISTORY; i++)
        pause[i] = (i * 97) % COLLECT_CYCLE_HISTORY; /* a permutation of 0..255 */
    stats_pause_quantiles(pause, COLLECT_CYCLE_HISTORY, q);
    ck_assert_uint_eq(q[0], 0);
    ck_assert_uint_eq(q[1], 64);
    ck_assert_uint_eq(q[2], 128);
    ck_assert_uint_eq(q[3], 192);
    ck_assert_uint_eq(q[4], 255);
}
END_TEST

/* ---- reading while threads run ---- */

static int churn_stop;

/* Allocate, sometimes free, sometimes a large object, until told. */
static void *churn_main(void *arg)
{
    uint64_t seed = 0x9e37u + (uintptr_t)arg;
    void *ring[64] = {0};
    while (!__atomic_load_n(&churn_stop, __ATOMIC_ACQUIRE)) {
        for (unsigned i = 0; i < 1000; i++) {
            uint64_t r = test_rand(&seed);
            size_t size = r % 200 == 0 ? 40 * KiB : 8 + r % 2000;
            void *p = alloc_kind(r % 2 ? SCAN : NOSCAN, size);
            test_require(p != NULL, "allocation failed");
            unsigned at = (unsigned)(r >> 20) % 64;
            if (ring[at] && r % 3 == 0)
                gc_free(ring[at]);
            ring[at] = p;
        }
    }
    return NULL;
}

/* Counters only grow. */
static void check_grown(const struct gc_memstats *a, const struct gc_memstats *b)
{
    test_require(b->Mallocs >= a->Mallocs && b->Frees >= a->Frees && b->TotalAlloc >= a->TotalAlloc,
                 "Mallocs %lu->%lu, Frees %lu->%lu, TotalAlloc %lu->%lu", a->Mallocs, b->Mallocs,
                 a->Frees, b->Frees, a->TotalAlloc, b->TotalAlloc);
    test_require(b->NumGC >= a->NumGC && b->PauseTotalNs >= a->PauseTotalNs &&
                     b->LastGC >= a->LastGC,
                 "NumGC %u->%u, PauseTotalNs %lu->%lu", a->NumGC, b->NumGC, a->PauseTotalNs,
                 b->PauseTotalNs);
    for (unsigned c = 0; c < GC_NUM_SIZE_CLASSES; c++)
        test_require(b->BySize[c].Mallocs >= a->BySize[c].Mallocs &&
                         b->BySize[c].Frees >= a->BySize[c].Frees,
                     "class %u went back", c);
}

START_TEST(reading_while_eight_threads_allocate)
{
    static struct gc_memstats ms[2];
    struct gc_gc_stats st;
    pthread_t tids[THREADS];
    __atomic_store_n(&churn_stop, 0, __ATOMIC_RELEASE);
    for (uintptr_t i = 0; i < THREADS; i++)
        ck_assert_int_eq(gc_pthread_create(&tids[i], NULL, churn_main, (void *)i), 0);
    gc_read_memstats(&ms[0]);
    unsigned reads = 0;
    for (double end = now() + 2.0; now() < end; reads++) {
        struct gc_memstats *a = &ms[reads % 2], *b = &ms[(reads + 1) % 2];
        gc_read_memstats(b);
        test_require(always_consistent(b), "read %u: %s", reads, why);
        check_grown(a, b);
        gc_read_gc_stats(&st);
        test_require(st.NumGC >= b->NumGC && st.NPause <= 256, "gc stats behind memstats");
        for (unsigned q = 1; q < 5; q++)
            test_require(st.PauseQuantiles[q - 1] <= st.PauseQuantiles[q],
                         "quantiles out of order");
        if (reads % 16 == 0)
            gc_collect();
    }
    __atomic_store_n(&churn_stop, 1, __ATOMIC_RELEASE);
    for (unsigned i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_join(tids[i], NULL), 0);
    ck_assert_uint_gt(reads, 10);
    gc_collect();
    check_quiescent("threads done");
    gc_read_memstats(&ms[0]);
    ck_assert_uint_gt(ms[0].NumGC, 2);
}
END_TEST

/* fork while another thread reads: the child collects and reads too. */

enum { FORKS = 100 };

static void *reader_main(void *arg)
{
    (void)arg;
    static struct gc_memstats ms;
    struct gc_gc_stats st;
    while (!__atomic_load_n(&churn_stop, __ATOMIC_ACQUIRE)) {
        gc_read_memstats(&ms);
        gc_read_gc_stats(&st);
    }
    return NULL;
}

static void child_collects(void)
{
    struct gc_memstats ms;
    alarm(20); /* a lock held across fork deadlocks the child: it dies */
    gc_collect();
    gc_read_memstats(&ms);
    _exit(ms.NumGC > 0 && always_consistent(&ms) ? 0 : 1);
}

START_TEST(fork_while_a_thread_reads)
{
    pthread_t reader;
    __atomic_store_n(&churn_stop, 0, __ATOMIC_RELEASE);
    ck_assert_int_eq(gc_pthread_create(&reader, NULL, reader_main, NULL), 0);
    for (unsigned i = 0; i < FORKS; i++) {
        keep_stores(gc_alloc(100));
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
            child_collects();
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "fork %u: child status %#x", i, status);
    }
    __atomic_store_n(&churn_stop, 1, __ATOMIC_RELEASE);
    ck_assert_int_eq(pthread_join(reader, NULL), 0);
}
END_TEST

/* ---- the suite ---- */

static Suite *make_suite(void)
{
    Suite *s = suite_create("stats");
    TCase *tc = test_tcase(s, "identities", TIMEOUT);
    tcase_add_test(tc, identities_at_a_quiescent_point);

    tc = test_tcase(s, "cycles", TIMEOUT);
    tcase_add_test(tc, gc_collect_counts_one_forced_cycle);
    tcase_add_test(tc, automatic_cycles_are_not_forced);

    tc = test_tcase(s, "exact", TIMEOUT);
    tcase_add_loop_test(tc, a_class_counts_exactly, 0, (int)NELEMS(class_cases));
    tcase_add_test(tc, large_objects_count_by_pages);
    tcase_add_test(tc, gc_free_counts_at_once);
    tcase_add_test(tc, gc_realloc_counts_a_malloc_and_a_free);

    tc = test_tcase(s, "threads", TIMEOUT);
    tcase_add_test(tc, eight_threads_sum_exactly);

    tc = test_tcase(s, "quantiles", TIMEOUT);
    tcase_add_loop_test(tc, quantiles_by_table, 0, (int)NELEMS(quantile_cases));
    tcase_add_test(tc, quantiles_of_a_full_history_are_ordered);

    tc = test_tcase(s, "concurrent", TIMEOUT);
    tcase_add_test(tc, reading_while_eight_threads_allocate);
    if (!TSAN_BUILD) /* it starts no thread in the child of a multi-threaded fork */
        tcase_add_test(tc, fork_while_a_thread_reads);
    return s;
}

TEST_MAIN(make_suite)

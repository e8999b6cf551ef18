/*
 * stats.c — gc_read_memstats and gc_read_gc_stats (DESIGN.md §6): Go's
 * MemStats and GCStats from three sources, each read consistently.
 *
 *   objects    the allocator's counts (allocator/counters.h): per thread
 *              cache, cache-line aligned, written by its owner off the
 *              fast path; shared atomics for sweeps, large objects and
 *              the caches of exited threads. Read with the allocator
 *              frozen (no slow path runs, so no cache counts or changes
 *              spans) and the caches lock held (no cache comes or goes):
 *              the slots the caches' spans handed out since their last
 *              count are added as they stand.
 *   pages      the page heap (heap_read_stats) and what the library mapped
 *              (os_mapped_bytes), in the same frozen moment.
 *   cycles     the collector's history (collect_read_stats), taken first,
 *              under its pause lock.
 *
 * Derived fields follow Go: HeapObjects = Mallocs - Frees, HeapAlloc =
 * TotalAlloc - freed bytes, HeapIdle = HeapSys - HeapInuse. Pages of the
 * committed heap never touched count as released, as fresh address space
 * does in Go: HeapReleased = never touched + returned to the OS.
 *
 * Freezing the allocator stops no thread: each runs on until its cached
 * span runs out, and waits in its slow path only while the sums are made.
 * So the collector must not read statistics while it holds the allocator
 * frozen (in a pause): it would wait for itself.
 */
#include <stdlib.h>
#include <string.h>

#include "../allocator/cache.h"
#include "../allocator/counters.h"
#include "../allocator/heap.h"
#include "collector.h"
#include "platform.h"
#include "tricolor.h"

_Static_assert(GC_NUM_SIZE_CLASSES == SC_NUM_CLASSES, "BySize has an entry per size class");
_Static_assert(GC_PAUSE_HISTORY == COLLECT_CYCLE_HISTORY, "one pause history length");

#define NQUANTILES 5

/* ---- gc_read_memstats ---- */

/* Everything the allocator and the page heap know, in one frozen moment. */
struct heap_view {
    struct alloc_counts counts;
    struct heap_stats pages;
    size_t mapped;
};

static void read_heap(struct heap_view *v)
{
    heap_freeze();
    cache_lock_list();
    counters_read(&v->counts);
    cache_read_counts(&v->counts);
    heap_read_stats(&v->pages);
    v->mapped = os_mapped_bytes();
    cache_unlock_list();
    heap_thaw();
}

static void fill_objects(struct gc_memstats *ms, const struct alloc_counts *c)
{
    uint64_t freed = c->large_free_bytes;
    ms->TotalAlloc = c->large_alloc_bytes;
    ms->Mallocs = c->mallocs[0];
    ms->Frees = c->frees[0];
    for (unsigned i = 1; i < SC_NUM_CLASSES; i++) {
        ms->BySize[i].Size = sc_class_size[i];
        ms->BySize[i].Mallocs = c->mallocs[i];
        ms->BySize[i].Frees = c->frees[i];
        ms->Mallocs += c->mallocs[i];
        ms->Frees += c->frees[i];
        ms->TotalAlloc += c->mallocs[i] * sc_class_size[i];
        freed += c->frees[i] * sc_class_size[i];
    }
    ms->HeapAlloc = ms->Alloc = ms->TotalAlloc - freed;
    ms->HeapObjects = ms->Mallocs - ms->Frees;
}

static void fill_pages(struct gc_memstats *ms, const struct heap_view *v)
{
    ms->Sys = v->mapped;
    ms->HeapSys = v->pages.committed;
    ms->HeapInuse = v->pages.in_use;
    ms->HeapIdle = ms->HeapSys - ms->HeapInuse;
    ms->HeapReleased = (v->pages.committed - v->pages.touched) + v->pages.released;
}

static void fill_cycles(struct gc_memstats *ms, const struct collect_stats *cs)
{
    ms->NextGC = cs->goal;
    ms->LastGC = cs->last_end_ns;
    ms->PauseTotalNs = cs->pause_total_ns;
    memcpy(ms->PauseNs, cs->pause_ns, sizeof ms->PauseNs);
    memcpy(ms->PauseEnd, cs->end_ns, sizeof ms->PauseEnd);
    ms->NumGC = (uint32_t)cs->cycles;
    ms->NumForcedGC = (uint32_t)cs->forced;
    ms->GCCPUFraction = cs->cpu_fraction;
}

void gc_read_memstats(struct gc_memstats *ms)
{
    memset(ms, 0, sizeof *ms);
    if (gc_init() != 0)
        return;
    struct collect_stats cs;
    collect_read_stats(&cs);
    struct heap_view v = {0};
    read_heap(&v);
    fill_objects(ms, &v.counts);
    fill_pages(ms, &v);
    fill_cycles(ms, &cs);
}

/* ---- gc_read_gc_stats ---- */

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

void stats_pause_quantiles(const uint64_t *pause, size_t n, uint64_t q[NQUANTILES])
{
    uint64_t sorted[COLLECT_CYCLE_HISTORY];
    memset(q, 0, NQUANTILES * sizeof *q);
    if (n == 0)
        return;
    memcpy(sorted, pause, n * sizeof *pause);
    qsort(sorted, n, sizeof *sorted, compare_u64);
    for (size_t i = 0; i < NQUANTILES - 1; i++)
        q[i] = sorted[n * i / (NQUANTILES - 1)];
    q[NQUANTILES - 1] = sorted[n - 1];
}

void gc_read_gc_stats(struct gc_gc_stats *st)
{
    memset(st, 0, sizeof *st);
    if (gc_init() != 0)
        return;
    struct collect_stats cs;
    collect_read_stats(&cs);
    st->LastGC = (int64_t)cs.last_end_ns;
    st->NumGC = (int64_t)cs.cycles;
    st->PauseTotal = (int64_t)cs.pause_total_ns;
    st->NPause = cs.cycles < GC_PAUSE_HISTORY ? (size_t)cs.cycles : GC_PAUSE_HISTORY;
    for (size_t i = 0; i < st->NPause; i++) {
        size_t at = (size_t)((cs.cycles - 1 - i) % GC_PAUSE_HISTORY);
        st->Pause[i] = cs.pause_ns[at];
        st->PauseEnd[i] = cs.end_ns[at];
    }
    stats_pause_quantiles(st->Pause, st->NPause, st->PauseQuantiles);
}

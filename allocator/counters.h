/*
 * counters.h — what the allocator counts for the statistics
 * (gc_read_memstats, gc/stats.c): objects and bytes handed out and freed,
 * by size class. Nothing is counted on the allocation fast path.
 *
 * Handed out (Mallocs), Go's way. A thread's cache counts the slots of a
 * span when its slow path enters the allocator for that class (to sweep,
 * reclaim or trade the span) and when it gives the span up: the span's
 * allocated slots now (span_count_allocated) minus what they were when the
 * cache counted last, its `base`. Between two counts only the fast path
 * changes that number, by one per object: frees land in freed_bits, which
 * only the owner takes, in the slow path, after counting. So the slots a
 * cache has handed out and not yet counted are, for each span it holds,
 * allocated slots minus base; a reader computes them with the allocator
 * frozen, when no slow path runs (cache_read_counts). Large objects are
 * counted as they are made.
 *
 * Freed (Frees). A sweep counts the objects it frees, one atomic add per
 * swept span (span_sweep, heap_sweep_large). gc_free counts its object at
 * once, in the freeing thread's cache (cache_count_free), or here for a
 * thread without one: the object is gone when gc_free returns, though its
 * slot is reclaimed later.
 *
 * A cache released at its thread's exit adds its counts here under the
 * caches lock; a reader holding that lock counts them once, in the cache
 * or here. Every count only grows; at a quiescent point (no thread
 * allocating or freeing) the sums are exact: Mallocs - Frees is the number
 * of allocated objects in the heap.
 */
#ifndef TRICOLOR_COUNTERS_H
#define TRICOLOR_COUNTERS_H

#include <stddef.h>
#include <stdint.h>

#include "sizeclass.h"

/* Sums, by size class; class 0 counts large objects. */
struct alloc_counts {
    uint64_t mallocs[SC_NUM_CLASSES]; /* objects handed out */
    uint64_t frees[SC_NUM_CLASSES];   /* objects swept or gc_free'd */
    uint64_t large_alloc_bytes;       /* bytes of the large objects handed out */
    uint64_t large_free_bytes;        /* and freed */
};

/* A sweep freed `n` objects of `sizeclass` (any thread). */
void counters_swept(unsigned sizeclass, unsigned n);

/* A large object of `bytes` (its span's size) was made, or freed by
 * gc_free, or by a sweep (any thread, allocator entered: a frozen reader
 * sees each with its span). */
void counters_large_alloc(size_t bytes);
void counters_large_free(size_t bytes);
void counters_large_swept(size_t bytes);

/* Bytes of the objects sweeps freed since the start (slot or span sizes),
 * read without a freeze: the collector's measure of sweeping progress. */
uint64_t counters_swept_bytes(void);

/* gc_free of a small object by a thread without a cache. */
void counters_freed(unsigned sizeclass);

/* Part of a released cache's counts: those of `sizeclass` (caches lock
 * held). */
void counters_fold(unsigned sizeclass, uint64_t mallocs, uint64_t frees);

/* Add the counts kept here to `sum`. */
void counters_read(struct alloc_counts *sum);

#endif /* TRICOLOR_COUNTERS_H */

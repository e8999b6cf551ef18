/*
 * cache.h — per-thread allocation caches (Go's mcache) and the allocation
 * fast path.
 *
 * Each thread that allocates owns one cache: one current span per span
 * class. The fast path pops the lowest free slot from that span's alloc
 * cache and leaves; it takes no lock and performs no atomic
 * read-modify-write — only the owner ever writes the span's owner fields.
 * Budget: TLS load, class lookup, span load, ctz, two stores and a
 * multiply-add — about 20 instructions. No zeroing: free slots already hold
 * zeros (the zero invariant of span.h).
 * Every other case — next bitmap word, exhausted span, first allocation of
 * a thread — leaves through one unlikely branch to cache_alloc_slow.
 *
 * A cache starts with every class pointing at `cache_empty_span`, whose
 * alloc cache is always empty, so a fresh class falls into the slow path
 * without a separate test. A thread's cache is flushed (its spans given back
 * to the central lists) when the thread exits.
 *
 * The fast path counts nothing: what a span handed out is counted when the
 * slow path enters the allocator for its class (to sweep, reclaim or trade
 * the span) and when the cache is flushed (counters.h).
 */
#ifndef TRICOLOR_CACHE_H
#define TRICOLOR_CACHE_H

#include <stddef.h>
#include <string.h>

#include "../gc/platform.h"
#include "counters.h"
#include "span.h"

/* A cache's statistics (counters.h), on cache lines of their own. The
 * owner writes them (AO_store, no read-modify-write); readers AO_load. */
struct cache_counts {
    AO_t mallocs[SC_NUM_CLASSES];   /* owner, allocator entered: slots handed out and
                                       counted, by size class */
    AO_t frees[SC_NUM_CLASSES];     /* owner: small objects it gc_freed, by size class */
    AO_t base[SC_NUM_SPAN_CLASSES]; /* owner, allocator entered: allocated slots of
                                       alloc[i] when counted last */
} __attribute__((aligned(OS_CACHE_LINE)));

struct cache {
    struct span *alloc[SC_NUM_SPAN_CLASSES]; /* owner thread only; changed with the
                                                 allocator entered */
    int64_t live_delta; /* owner: bytes of slots loaded into alloc caches, not yet in heap_live */
    struct cache *next; /* all-caches list: caches lock */
    struct cache_counts counts;
};

extern __thread struct cache *cache_tls __attribute__((tls_model("initial-exec")));

/* Slow path: refill class `spanclass` and allocate, or NULL (ENOMEM). */
void *cache_alloc_slow(struct cache *c, unsigned spanclass);

/* A zeroed slot of `spanclass` from the calling thread's cache `c`. */
static inline void *cache_alloc(struct cache *c, unsigned spanclass)
{
    struct span *s = c->alloc[spanclass];
    uint64_t free = s->alloc_cache;
    if (unlikely(!free))
        return cache_alloc_slow(c, spanclass);
    uint32_t idx = s->cache_base + (uint32_t)__builtin_ctzll(free);
    s->alloc_cache = free & (free - 1);
    AO_store(&s->freeindex, idx + 1);
    return (void *)span_object_start(s, idx); /* zero: the span's zero invariant */
}

/* A new cache for the calling thread, now its cache_tls; NULL when out of
 * metadata memory. The caller (thread registration) releases it at exit. */
struct cache *cache_create(void);

/* Give every span of `c` back and recycle it: at its thread's exit, or in a
 * fork child for the caches of threads that do not exist there. */
void cache_release(struct cache *c);

/* Give every span of the caller's cache `c` back to the central lists (to be
 * swept there); the cache stays the caller's. */
void cache_flush(struct cache *c);

/* gc_free of a small object of `sizeclass` by the calling thread: counted
 * in its cache (the owner's store, no read-modify-write). */
static inline void cache_count_free(unsigned sizeclass)
{
    struct cache *c = cache_tls;
    if (unlikely(!c)) {
        counters_freed(sizeclass);
        return;
    }
    AO_t *n = &c->counts.frees[sizeclass];
    AO_store(n, AO_load(n) + 1);
}

/* Add every live cache's counts to `sum` (counters.h), the slots handed out
 * from the spans they hold included: frees first, then mallocs, so that
 * while threads free, no free is seen without its malloc. The allocator
 * frozen (no slow path runs) and the caches lock held. */
void cache_read_counts(struct alloc_counts *sum);

/* The caches list lock, held across fork. */
void cache_lock_list(void);
void cache_unlock_list(void);

/* With the world stopped and the allocator frozen, after heap_sweepgen
 * advanced: record where each cached span's allocation stood (sweep_fi), so
 * that its sweep keeps what its owner allocates after the marking. Reads
 * the caches, writes only the spans' collector fields (rule 1 of the
 * design: never another thread's private state). */
void cache_snapshot(AO_t sg);

/* With the world stopped and the allocator frozen, as marking starts (after
 * cache_clear_stale_marks): allocate-black for the alloc cache every thread
 * holds (span_premark_stopped); `grey` gets each span's last handed-out
 * object. */
void cache_premark_all(void (*grey)(uintptr_t obj));

/* With the world stopped and the allocator frozen, before marking: clear the
 * mark bits of every cached span not swept since the last flip (an idle
 * thread's span). Their old marks are not needed — the marks of the coming
 * cycle and sweep_fi decide its sweep — and left set they would stop the
 * marker from scanning objects it finds marked already. Mark bits are the
 * collector's, and their owner reads them only inside the allocator. */
void cache_clear_stale_marks(AO_t sg);

/* Unlink every cache but `keep` from the list (fork child: the threads they
 * belonged to are gone); they are released with cache_release. */
void cache_forget_others(struct cache *keep, void (*release)(struct cache *));

#endif /* TRICOLOR_CACHE_H */

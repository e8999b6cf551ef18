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
 */
#ifndef TRICOLOR_CACHE_H
#define TRICOLOR_CACHE_H

#include <stddef.h>
#include <string.h>

#include "../gc/platform.h"
#include "span.h"

struct cache {
    struct span *alloc[SC_NUM_SPAN_CLASSES]; /* owner thread only */
    struct cache *next;                      /* all-caches list: caches lock */
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

/* The calling thread's cache, created on first use; NULL on failure. */
struct cache *cache_get(void);

/* Give every span of the calling thread's cache back (thread exit). */
void cache_release(struct cache *c);

/* Set up thread-exit handling; called once by gc_init. 0 or -1. */
int cache_init(void);

#endif /* TRICOLOR_CACHE_H */

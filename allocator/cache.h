/*
 * cache.h — per-thread allocation caches (Go's mcache) and the allocation
 * fast path.
 *
 * Each thread that allocates owns one cache: one current span per span
 * class. The fast path pops the lowest free slot from that span's alloc
 * cache and leaves; it takes no lock and performs no atomic
 * read-modify-write — only the owner ever writes the span's owner fields.
 * Budget: TLS load, class lookup, span load, ctz, two stores, a multiply
 * and (for reused spans) the zeroing — about 15 instructions before memset.
 * Every other case — next bitmap word, exhausted span, first allocation of
 * a thread — leaves through one unlikely branch to cache_alloc_slow.
 *
 * Frees are batched the same way: a small direct-mapped table of pending
 * frees, one entry per (span, bitmap word), collects the slots this thread
 * freed as a plain bit mask; the entry is published to the span with one
 * compare-and-swap when another word needs its place, when the thread
 * exhausts a span of the same span class (so a thread that frees and
 * allocates objects of one class reuses its own frees), and when it exits. A second free of a pending slot is
 * caught in the mask, one of a published slot by the span's freed bits.
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

#define CACHE_PENDING 64 /* entries in the pending-free table, a power of two */

struct pending_free {
    struct span *span;  /* NULL when the entry is empty */
    uint32_t word;      /* bitmap word of `span` */
    uint32_t spanclass; /* span->spanclass, kept here to scan the table cheaply */
    uint64_t mask;      /* slots of that word freed here, not yet published */
};

struct cache {
    struct span *alloc[SC_NUM_SPAN_CLASSES];     /* owner thread only */
    struct pending_free pending[CACHE_PENDING]; /* owner thread only */
    struct cache *next;                          /* all-caches list: caches lock */
};

extern __thread struct cache *cache_tls __attribute__((tls_model("initial-exec")));

/* Slow path: refill class `spanclass` and allocate, or NULL (ENOMEM). */
void *cache_alloc_slow(struct cache *c, unsigned spanclass);

/* Zero a slot. Slots are multiples of 8 bytes, and small ones are cleared
 * inline with 16-byte stores: a call to memset (or `rep stos`) costs as much
 * as the rest of the fast path. The Makefile keeps the compiler from turning
 * the loop back into memset (-fno-tree-loop-distribute-patterns). */
static inline void cache_zero(void *p, size_t size)
{
    typedef uint64_t u64x2 __attribute__((vector_size(16), aligned(8)));
    if (size > 256) {
        memset(p, 0, size);
        return;
    }
    char *b = p;
    if (size & 8)
        *(uint64_t *)(b + size - 8) = 0;
    for (size_t i = 0; i + 16 <= size; i += 16)
        *(u64x2 *)(b + i) = (u64x2){0, 0};
}

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
    void *p = (void *)span_object_start(s, idx);
    if (s->needzero)
        cache_zero(p, s->elemsize);
    return p;
}

/* The pending-table entry for word `word` of span `s`. */
static inline struct pending_free *cache_pending_slot(struct cache *c, const struct span *s,
                                                      uint32_t word)
{
    uint32_t h = (uint32_t)((s->start >> SC_PAGE_SHIFT) + word) * 0x9E3779B1u;
    return &c->pending[h >> (32 - __builtin_ctz(CACHE_PENDING))];
}

/* Publish one pending entry; aborts naming gc_free on a double free. */
void cache_publish(struct pending_free *e);

/* Publish every pending free of the calling thread's cache. */
void cache_publish_all(struct cache *c);

/* Publish the calling thread's pending frees into spans of `spanclass`. */
void cache_publish_class(struct cache *c, unsigned spanclass);

/* Has the calling thread freed slot `idx` of `s` without publishing it? */
static inline bool cache_freed_pending(struct cache *c, const struct span *s, uint32_t idx)
{
    struct pending_free *e = cache_pending_slot(c, s, idx / 64);
    return e->span == s && e->word == idx / 64 && (e->mask >> (idx % 64) & 1);
}

/* Free slot `idx` of small span `s` (validated by the caller) from the
 * calling thread's cache `c`; `fn` names the public function for errors. */
static inline void cache_free(struct cache *c, struct span *s, uint32_t idx, const char *fn)
{
    uint32_t word = idx / 64;
    uint64_t bit = UINT64_C(1) << (idx % 64);
    struct pending_free *e = cache_pending_slot(c, s, word);
    if (likely(e->span == s && e->word == word)) {
        if (unlikely(e->mask & bit))
            os_fatal("%s(): double free %p", fn, (void *)span_object_start(s, idx));
        e->mask |= bit;
        return;
    }
    if (e->span)
        cache_publish(e);
    e->span = s;
    e->word = word;
    e->spanclass = s->spanclass;
    e->mask = bit;
}

/* The calling thread's cache, created on first use; NULL on failure. */
struct cache *cache_get(void);

/* Give every span of the calling thread's cache back (thread exit). */
void cache_release(struct cache *c);

/* Set up thread-exit handling; called once by gc_init. 0 or -1. */
int cache_init(void);

#endif /* TRICOLOR_CACHE_H */

/*
 * cache.c — thread caches: creation, the allocation slow path, the flush at
 * thread exit (see cache.h), and the counts of what each cache handed out
 * (counters.h).
 */
#include "cache.h"

#include <errno.h>
#include <pthread.h>

#include "central.h"
#include "heap.h"

__thread struct cache *cache_tls __attribute__((tls_model("initial-exec")));

/* Never has a free slot: routes a class with no span to the slow path. */
static struct span cache_empty_span;

#define LIVE_FLUSH ((int64_t)64 << 10) /* live_delta published past this many bytes */

static struct {
    pthread_mutex_t lock;
    struct cache *all;  /* lock: caches of live threads */
    struct cache *pool; /* lock: released caches for reuse */
} caches = {.lock = PTHREAD_MUTEX_INITIALIZER};

struct cache *cache_create(void)
{
    os_lock_stoppable(&caches.lock);
    struct cache *c = caches.pool;
    if (c)
        caches.pool = c->next;
    else
        c = heap_meta_alloc(sizeof *c);
    if (c) {
        for (unsigned i = 0; i < SC_NUM_SPAN_CLASSES; i++)
            c->alloc[i] = &cache_empty_span;
        c->live_delta = 0;
        memset(&c->counts, 0, sizeof c->counts);
        c->next = caches.all;
        caches.all = c;
    }
    pthread_mutex_unlock(&caches.lock);
    cache_tls = c;
    return c;
}

static void unlink_cache(struct cache *c)
{
    struct cache **link = &caches.all;
    while (*link != c)
        link = &(*link)->next;
    *link = c->next;
}

/* Publish the bytes this cache accounted; ask for a cycle when the heap
 * reached its trigger. */
static void publish_live(struct cache *c)
{
    AO_fetch_and_add(&heap_live, (AO_t)c->live_delta);
    c->live_delta = 0;
    if (AO_load(&heap_live) >= AO_load(&heap_trigger))
        heap_trigger_hit();
}

/* The slots still in s's alloc cache were accounted but not used. */
static void unaccount_cached(struct cache *c, struct span *s)
{
    c->live_delta -= (int64_t)__builtin_popcountll(s->alloc_cache) * (int64_t)s->elemsize;
}

/* ---- counts (counters.h) ---- */

static void add_count(AO_t *counter, AO_t n)
{
    AO_store(counter, AO_load(counter) + n); /* owner only: no read-modify-write */
}

/* Owner, allocator entered: count the slots the span of `spanclass` handed
 * out since its last count. */
static void count_handed_out(struct cache *c, unsigned spanclass)
{
    struct span *s = c->alloc[spanclass];
    if (s != &cache_empty_span)
        add_count(&c->counts.mallocs[sc_class_of_span_class(spanclass)],
                  span_count_allocated(s) - AO_load(&c->counts.base[spanclass]));
}

/* Owner, allocator entered: the span of `spanclass` is counted up to now. */
static void count_from_now(struct cache *c, unsigned spanclass)
{
    struct span *s = c->alloc[spanclass];
    AO_store(&c->counts.base[spanclass], s == &cache_empty_span ? 0 : span_count_allocated(s));
}

/* A released cache's counts go to the shared ones (caches lock held). */
static void fold_counts(struct cache *c)
{
    for (unsigned i = 0; i < SC_NUM_CLASSES; i++)
        counters_fold(i, AO_load(&c->counts.mallocs[i]), AO_load(&c->counts.frees[i]));
    memset(&c->counts, 0, sizeof c->counts);
}

/* Slots handed out from c's spans and not yet counted (allocator frozen). */
static void add_uncounted(struct cache *c, struct alloc_counts *sum)
{
    for (unsigned i = 0; i < SC_NUM_SPAN_CLASSES; i++) {
        struct span *s = c->alloc[i];
        if (s != &cache_empty_span)
            sum->mallocs[sc_class_of_span_class(i)] +=
                span_count_allocated(s) - AO_load(&c->counts.base[i]);
    }
}

void cache_read_counts(struct alloc_counts *sum)
{
    for (struct cache *c = caches.all; c; c = c->next)
        for (unsigned i = 0; i < SC_NUM_CLASSES; i++)
            sum->frees[i] += AO_load(&c->counts.frees[i]);
    for (struct cache *c = caches.all; c; c = c->next) {
        for (unsigned i = 0; i < SC_NUM_CLASSES; i++)
            sum->mallocs[i] += AO_load(&c->counts.mallocs[i]);
        add_uncounted(c, sum);
    }
}

void cache_lock_list(void)
{
    pthread_mutex_lock(&caches.lock);
}

void cache_unlock_list(void)
{
    pthread_mutex_unlock(&caches.lock);
}

void cache_flush(struct cache *c)
{
    heap_enter();
    for (unsigned i = 0; i < SC_NUM_SPAN_CLASSES; i++) {
        struct span *s = c->alloc[i];
        count_handed_out(c, i);
        c->alloc[i] = &cache_empty_span;
        count_from_now(c, i);
        if (s != &cache_empty_span) {
            unaccount_cached(c, s);
            central_give_back(s);
        }
    }
    AO_fetch_and_add(&heap_live, (AO_t)c->live_delta);
    c->live_delta = 0;
    heap_leave();
}

void cache_release(struct cache *c)
{
    cache_flush(c);
    if (cache_tls == c)
        cache_tls = NULL;
    os_lock_stoppable(&caches.lock);
    unlink_cache(c);
    fold_counts(c);
    c->next = caches.pool;
    caches.pool = c;
    pthread_mutex_unlock(&caches.lock);
}

void cache_forget_others(struct cache *keep, void (*release)(struct cache *))
{
    struct cache *c = caches.all, *next;
    caches.all = NULL;
    for (; c; c = next) {
        next = c->next;
        c->next = caches.all;
        caches.all = c;
        if (c != keep)
            release(c); /* unlinks it again */
    }
}

/* The slot handed out last may still be in flight: a thread stopped after
 * the fast path advanced freeindex but before it formed the object's
 * address holds only the slot index, which marking cannot follow. So the
 * protected range starts one slot early (retaining at most that object for
 * one more cycle). */
void cache_snapshot(AO_t sg)
{
    for (struct cache *c = caches.all; c; c = c->next)
        for (unsigned i = 0; i < SC_NUM_SPAN_CLASSES; i++) {
            struct span *s = c->alloc[i];
            if (s == &cache_empty_span)
                continue;
            AO_t fi = AO_load(&s->freeindex);
            AO_store(&s->sweep_fi, fi ? fi - 1 : 0);
            AO_store(&s->sweep_fi_gen, sg);
        }
}

void cache_premark_all(void (*grey)(uintptr_t obj))
{
    for (struct cache *c = caches.all; c; c = c->next)
        for (unsigned i = 0; i < SC_NUM_SPAN_CLASSES; i++) {
            struct span *s = c->alloc[i];
            if (s == &cache_empty_span)
                continue;
            int64_t last = span_premark_stopped(s);
            if (last >= 0)
                grey(span_object_start(s, (uint32_t)last));
        }
}

void cache_clear_stale_marks(AO_t sg)
{
    for (struct cache *c = caches.all; c; c = c->next)
        for (unsigned i = 0; i < SC_NUM_SPAN_CLASSES; i++) {
            struct span *s = c->alloc[i];
            if (s == &cache_empty_span || AO_load(&s->sweepgen) == sg)
                continue;
            for (unsigned w = 0; w < s->nwords; w++)
                AO_store(&s->mark_bits[w], 0);
        }
}

/* The current span of the class is exhausted: sweep it if it missed its
 * sweep, absorb frees, or trade it for another (allocator entered). */
static bool replace_span(struct cache *c, unsigned spanclass)
{
    struct span *s = c->alloc[spanclass];
    if (s != &cache_empty_span) {
        AO_t sg = heap_sweepgen;
        if (span_claim_sweep(s, sg) && span_sweep(s, sg) == 0)
            span_clear_if_needed(s);
        if (s->alloc_cache)
            return true;
        if (AO_load(&s->free_pending) && span_reclaim(s))
            return true;
        c->alloc[spanclass] = &cache_empty_span;
        central_give_back(s);
    }
    s = central_take(spanclass, c);
    if (!s)
        return false;
    c->alloc[spanclass] = s;
    return true;
}

static bool refill(struct cache *c, unsigned spanclass)
{
    struct span *s = c->alloc[spanclass];
    if (s != &cache_empty_span && span_refill_cache(s, (uint32_t)s->freeindex))
        return true;
    heap_enter();
    count_handed_out(c, spanclass);
    bool ok = replace_span(c, spanclass);
    count_from_now(c, spanclass);
    heap_leave();
    return ok;
}

void *cache_alloc_slow(struct cache *c, unsigned spanclass)
{
    if (!refill(c, spanclass)) {
        errno = ENOMEM;
        return NULL;
    }
    struct span *s = c->alloc[spanclass];
    if (unlikely(span_clobber_free))
        span_zero_cached(s);
    /* Allocate-black, checked after the alloc cache is stored: a cycle that
     * began before this load finds the cache and marks it itself
     * (cache_premark_all); one that begins after finds it marked. */
    AO_nop_full();
    bool marking = AO_load(&heap_marking);
    if (marking)
        span_premark_cache(s);
    size_t bytes = (size_t)__builtin_popcountll(s->alloc_cache) * s->elemsize;
    c->live_delta += (int64_t)bytes;
    if (marking)
        heap_assist_hook(bytes);
    if (c->live_delta >= LIVE_FLUSH)
        publish_live(c);
    return cache_alloc(c, spanclass);
}

/*
 * span.c — slot bookkeeping inside one span: the allocation invariant of
 * span.h, the alloc cache the fast path consumes, and reclaiming slots that
 * gc_free released.
 */
#include "span.h"

#include <sched.h>
#include <string.h>

#include "../gc/platform.h"
#include "counters.h"
#include "heap.h"

/* What a marker reads to test a candidate pointer shares one cache line. */
_Static_assert(offsetof(struct span, state) + sizeof(AO_t) <= OS_CACHE_LINE,
               "a span's bounds, bitmaps and state in its first cache line");

static uint64_t word_mask(const struct span *s, unsigned w)
{
    unsigned tail = s->nelems % 64;
    return (w == s->nwords - 1u && tail) ? (UINT64_C(1) << tail) - 1 : ~UINT64_C(0);
}

/* Slots [0, n) of word w. */
static uint64_t below_mask(unsigned w, uint32_t n)
{
    if (n >= (w + 1) * 64)
        return ~UINT64_C(0);
    if (n <= w * 64)
        return 0;
    return (UINT64_C(1) << (n - w * 64)) - 1;
}

unsigned span_bitmap_words(unsigned spanclass, size_t npages)
{
    (void)npages;
    unsigned cls = sc_class_of_span_class(spanclass);
    return cls ? (sc_class_nelems[cls] + 63u) / 64u : 1u;
}

void span_init(struct span *s, uintptr_t start, size_t npages, unsigned spanclass,
               uint64_t *bits)
{
    unsigned cls = sc_class_of_span_class(spanclass);
    s->start = start;
    s->npages = npages;
    s->spanclass = (uint8_t)spanclass;
    s->elemsize = cls ? sc_class_size[cls] : npages << SC_PAGE_SHIFT;
    s->nelems = cls ? sc_class_nelems[cls] : 1;
    s->nwords = (uint8_t)span_bitmap_words(spanclass, npages);
    s->divmul = sc_class_divmul[cls];
    s->alloc_bits = (AO_t *)bits;
    s->mark_bits = (AO_t *)(bits + s->nwords);
    s->freed_bits = (AO_t *)(bits + 2 * s->nwords);
    s->check_bits = (AO_t *)(bits + 3 * s->nwords);
    s->alloc_cache = 0;
    s->cache_base = 0;
    AO_store(&s->free_pending, 0);
    AO_store(&s->where, SPAN_IN_HEAP);
    AO_store(&s->sweep_fi_gen, 0);
    /* A large span's one object is handed out at once. */
    AO_store(&s->freeindex, cls ? 0 : 1);
}

bool span_refill_cache(struct span *s, uint32_t from)
{
    for (unsigned w = from / 64; w < s->nwords; w++) {
        uint64_t free = ~(uint64_t)AO_load(&s->alloc_bits[w]) & word_mask(s, w);
        free &= ~below_mask(w, from);
        if (free) {
            s->alloc_cache = free;
            s->cache_base = w * 64;
            AO_store(&s->freeindex, from > w * 64 ? from : w * 64);
            return true;
        }
    }
    s->alloc_cache = 0;
    s->cache_base = s->nelems;
    AO_store(&s->freeindex, s->nelems);
    return false;
}

/* Take and clear every bit of a freed word. */
static uint64_t take_word(AO_t *w)
{
    AO_t f;
    do
        f = AO_load(w);
    while (f && !AO_compare_and_swap_full(w, f, 0));
    return f;
}

void span_materialize(struct span *s)
{
    uint32_t fi = (uint32_t)s->freeindex;
    for (unsigned w = 0; w < s->nwords && w * 64 < fi; w++)
        AO_store(&s->alloc_bits[w], s->alloc_bits[w] | below_mask(w, fi));
}

int span_clobber_free;

void span_clobber(void *p, size_t bytes)
{
    uint32_t *w = p;
    for (size_t i = 0; i < bytes / sizeof *w; i++)
        w[i] = SPAN_CLOBBER_PATTERN;
}

/* Fill the slots of `mask` in word w, one call per run of adjacent slots:
 * with zeros (zero invariant), or with the clobber pattern. */
static void fill_slots(const struct span *s, unsigned w, uint64_t mask,
                       void (*fill)(void *p, size_t bytes))
{
    while (mask) {
        unsigned first = (unsigned)__builtin_ctzll(mask);
        uint64_t rest = mask >> first;
        unsigned len = ~rest ? (unsigned)__builtin_ctzll(~rest) : 64;
        fill((void *)span_object_start(s, w * 64 + first), (size_t)len * s->elemsize);
        mask &= len == 64 ? 0 : ~(((UINT64_C(1) << len) - 1) << first);
    }
}

static void fill_zero(void *p, size_t bytes)
{
    memset(p, 0, bytes);
}

static void zero_slots(const struct span *s, unsigned w, uint64_t mask)
{
    fill_slots(s, w, mask, fill_zero);
}

void span_zero_cached(struct span *s)
{
    zero_slots(s, s->cache_base / 64, s->alloc_cache);
}

unsigned span_reclaim(struct span *s)
{
    /* Lower the flag before taking bits: a free that lands after the take
     * finds it lowered and announces itself again. */
    AO_store(&s->free_pending, 0);
    AO_nop_full();
    unsigned n = 0;
    for (unsigned w = 0; w < s->nwords; w++) {
        uint64_t f = take_word(&s->freed_bits[w]);
        if (!f)
            continue;
        if (!n)
            span_materialize(s);
        uint64_t a = s->alloc_bits[w];
        if ((a & f) != f)
            os_fatal("span %p: freed slots %#llx of word %u were not allocated", (void *)s->start,
                     (unsigned long long)(f & ~a), w);
        zero_slots(s, w, f);
        AO_store(&s->alloc_bits[w], a & ~f);
        n += (unsigned)__builtin_popcountll(f);
    }
    if (n) {
        AO_store_release(&s->freeindex, 0);
        span_refill_cache(s, 0);
        AO_fetch_and_add(&heap_live, -(AO_t)n * s->elemsize); /* freed bytes are not live */
    }
    return n;
}

/* Words wholly below freeindex hold 64 allocated slots: no popcount (a
 * library call without -mpopcnt); nor for empty words. */
unsigned span_count_allocated(const struct span *s)
{
    uint32_t fi = (uint32_t)AO_load(&s->freeindex);
    unsigned w = fi / 64, n = w * 64;
    for (; w < s->nwords; w++) {
        uint64_t a = AO_load(&s->alloc_bits[w]) | below_mask(w, fi);
        if (a)
            n += (unsigned)__builtin_popcountll(a);
    }
    return n;
}

uint64_t span_mark_freed(struct span *s, uint32_t word, uint64_t mask)
{
    AO_t *w = &s->freed_bits[word];
    for (;;) {
        AO_t old = AO_load(w);
        if (old & mask)
            return old & mask;
        if (AO_compare_and_swap_full(w, old, old | mask))
            return 0;
    }
}

bool span_is_valid(const struct span *s)
{
    if (s->nelems == 0 || s->nwords != (s->nelems + 63u) / 64u)
        return false;
    if ((uint64_t)s->elemsize * s->nelems > (uint64_t)s->npages << SC_PAGE_SHIFT)
        return false;
    if (s->freeindex > s->nelems)
        return false;
    for (unsigned w = 0; w < s->nwords; w++)
        if ((s->alloc_bits[w] | s->freed_bits[w]) & ~word_mask(s, w))
            return false;
    if (!s->alloc_cache)
        return true;
    /* Cached slots are free, inside the span, and at or after freeindex. */
    unsigned w = s->cache_base / 64;
    if (w >= s->nwords || (s->alloc_cache & (s->alloc_bits[w] | ~word_mask(s, w))))
        return false;
    return s->cache_base + (unsigned)__builtin_ctzll(s->alloc_cache) >= s->freeindex;
}

bool span_claim_sweep(struct span *s, AO_t sg)
{
    for (;;) {
        AO_t g = AO_load_acquire(&s->sweepgen);
        if (g == sg)
            return false;
        if (g != sg - 1 && AO_compare_and_swap_full(&s->sweepgen, g, sg - 1))
            return true;
        sched_yield(); /* another thread is sweeping it: short */
    }
}

/* Slots [lo, hi) of word w. */
static uint64_t range_mask(unsigned w, uint32_t lo, uint32_t hi)
{
    return below_mask(w, hi) & ~below_mask(w, lo);
}

/* What sweeping keeps of word w: marked slots and slots handed out after
 * the world stopped, minus slots gc_free released (taken now). Adds to
 * `*collected` the slots it frees that gc_free did not (gc_free counted
 * its own: counters.h). */
static uint64_t sweep_keep(struct span *s, unsigned w, uint32_t lo, uint32_t hi,
                           unsigned *collected)
{
    uint64_t taken = take_word(&s->freed_bits[w]);
    uint64_t old = s->alloc_bits[w] | below_mask(w, (uint32_t)s->freeindex);
    if (taken & ~old)
        os_fatal("span %p: freed slots %#llx of word %u were not allocated", (void *)s->start,
                 (unsigned long long)(taken & ~old), w);
    uint64_t reached = s->mark_bits[w] | range_mask(w, lo, hi);
    uint64_t dead = old & ~reached & ~taken;
    if (dead)
        *collected += (unsigned)__builtin_popcountll(dead);
    return reached & ~taken & old;
}

/* While a cycle marks, its marks are incomplete: a sweep now would free what
 * is only not marked yet. The span counts as swept with nothing freed; its
 * garbage waits for the next cycle. */
static unsigned skip_sweep(struct span *s, AO_t sg)
{
    AO_store_release(&s->sweepgen, sg);
    return span_count_allocated(s);
}

unsigned span_sweep(struct span *s, AO_t sg)
{
    if (AO_load(&heap_marking))
        return skip_sweep(s, sg);
    uint64_t keep[SPAN_BITMAP_WORDS_MAX];
    bool cached = AO_load(&s->sweep_fi_gen) == sg;
    uint32_t fi = (uint32_t)s->freeindex;
    uint32_t lo = cached ? (uint32_t)AO_load(&s->sweep_fi) : fi;
    unsigned live = 0, collected = 0;
    AO_store(&s->free_pending, 0);
    AO_nop_full();
    for (unsigned w = 0; w < s->nwords; w++) {
        keep[w] = sweep_keep(s, w, lo, fi, &collected);
        live += (unsigned)__builtin_popcountll(keep[w]);
    }
    void (*fill)(void *, size_t) = span_clobber_free ? span_clobber : fill_zero;
    for (unsigned w = 0; w < s->nwords; w++) {
        uint64_t old = s->alloc_bits[w] | below_mask(w, fi);
        if (live || span_clobber_free)
            fill_slots(s, w, old & ~keep[w], fill);
        AO_store(&s->alloc_bits[w], keep[w]);
        AO_store(&s->mark_bits[w], 0);
    }
    s->needzero = live == 0;
    AO_store(&s->sweep_fi_gen, 0);
    AO_store_release(&s->freeindex, 0);
    span_refill_cache(s, 0);
    AO_store_release(&s->sweepgen, sg);
    if (collected)
        counters_swept(sc_class_of_span_class(s->spanclass), collected);
    return live;
}

void span_premark_cache(struct span *s)
{
    if (s->alloc_cache)
        AO_or_full(&s->mark_bits[s->cache_base / 64], s->alloc_cache);
}

int64_t span_premark_stopped(struct span *s)
{
    uint32_t fi = (uint32_t)AO_load(&s->freeindex);
    uint32_t base = s->cache_base;
    if (base < s->nelems) {
        unsigned w = base / 64;
        uint64_t free = range_mask(w, fi, base + 64) & word_mask(s, w) &
                        ~(uint64_t)AO_load(&s->alloc_bits[w]);
        if (free)
            AO_or_full(&s->mark_bits[w], free);
    }
    return fi ? (int64_t)fi - 1 : -1;
}

void span_clear_if_needed(struct span *s)
{
    if (s->needzero)
        memset((void *)s->start, 0, s->npages << SC_PAGE_SHIFT);
    s->needzero = 0;
}

/*
 * span.h — a run of pages holding objects of one span class.
 *
 * A span is the unit every part of the allocator trades in: the page heap
 * cuts spans out of arenas, the central lists hold spans of one span class,
 * a thread cache allocates from one span per span class, and (later) the
 * collector marks and sweeps span by span.
 *
 * Which slots are allocated — the *allocation invariant*:
 *
 *     slot i is allocated  <=>  i < freeindex  ||  alloc_bits[i]
 *
 * The owner hands out slots in ascending order starting at `freeindex`,
 * taking the free slots of one 64-slot word at a time from `alloc_cache`
 * (the inverted alloc bits of that word, with taken slots cleared), so the
 * allocation fast path writes neither bitmap. Every slot below freeindex is
 * allocated; at or above it the alloc bits are the truth. Because slots are
 * taken in ascending order, freeindex passing a slot proves the slot was
 * handed out.
 *
 * Freeing never touches the owner's fields: gc_free sets the slot's bit in
 * `freed_bits` with a compare-and-swap (a second free of the same object
 * finds the bit set) and raises `free_pending`. The owner later *reclaims*:
 * it makes the alloc bits authoritative for every slot (sets the bits below
 * freeindex), clears the freed slots, and restarts freeindex at 0.
 *
 * Zero invariant: every free slot of a small span holds zeros. A span cut
 * from pages that held data is cleared whole before its first use, and a
 * reclaim clears the slots it frees, in runs; so allocation never zeroes,
 * and clearing happens in bulk off the fast path. (GCDEBUG clobberfree
 * weakens it: see span_clobber_free.)
 *
 * Ownership. A span in use belongs either to one thread cache (where ==
 * SPAN_IN_CACHE) or to its central list (SPAN_IN_PARTIAL / SPAN_IN_FULL,
 * guarded by that central's lock). Only the owner writes the owner fields;
 * other threads read freeindex and alloc_bits atomically to validate
 * pointers. Free runs of pages are spans too (state SPAN_FREE), owned by the
 * page heap under its lock.
 */
#ifndef TRICOLOR_SPAN_H
#define TRICOLOR_SPAN_H

#include <atomic_ops.h>
#include <stdbool.h>
#include <stdint.h>

#include "../gc/platform.h"
#include "sizeclass.h"

#define SPAN_BITMAP_WORDS_MAX ((SC_MAX_OBJECTS_PER_SPAN + 63) / 64)

enum span_state {
    SPAN_DEAD,      /* span struct not describing memory (pooled) */
    SPAN_FREE,      /* a free run of pages in the page heap */
    SPAN_RELEASING, /* free pages out of the free index while returned to the OS */
    SPAN_IN_USE,    /* objects of span class `spanclass` (0: one large object) */
};

enum span_where {
    SPAN_IN_HEAP,    /* large span, or not yet handed out */
    SPAN_IN_CACHE,   /* owned by one thread cache */
    SPAN_IN_PARTIAL, /* on its central's partial list: has or will have free slots */
    SPAN_IN_FULL,    /* on its central's full list (or, if unswept, its unswept list) */
    SPAN_IN_SWEEP,   /* off every list, being swept by the background sweeper */
};

/* Fields are grouped by who writes them, one cache line per group, so that
 * the owner's stores on every allocation never invalidate the line that
 * freeing threads read. */
struct span {
    /* --- set by the page heap before the span is published; then immutable --- */
    uintptr_t start;      /* first byte */
    size_t elemsize;      /* object size (large: npages * page size) */
    size_t npages;        /* pages in the span */
    uint16_t nelems;      /* objects in the span */
    uint8_t spanclass;    /* class << 1 | noscan; class 0 = large */
    uint8_t nwords;       /* 64-bit words in each bitmap */
    uint32_t divmul;      /* object index = offset * divmul >> 32 (0 for large: index 0) */
    AO_t *alloc_bits;     /* nwords; owner stores, anyone loads */
    AO_t *mark_bits;      /* nwords; markers set (CAS), the sweeper clears */
    AO_t *freed_bits;     /* nwords; gc_free sets (CAS), owner takes */
    AO_t state;           /* enum span_state; heap lock writes, anyone loads */
    /* (a marker finding a candidate already marked reads only the line above) */
    AO_t *check_bits;     /* nwords; the checkmark pass sets (world stopped), clears */
    uint8_t needzero;     /* pages may hold old data (set by the heap at carving) */
    uint8_t free_unbacked; /* a free run: its first page has no memory (heap lock) */
    AO_t unzeroed;        /* large: 1 until its allocator cleared it; markers skip it */
    /* --- owner fields (see Ownership) --- */
    uint64_t alloc_cache __attribute__((aligned(OS_CACHE_LINE))); /* free slots of word
                                             cache_base/64, taken ones cleared */
    uint32_t cache_base;  /* first slot described by alloc_cache (multiple of 64) */
    AO_t freeindex;       /* owner stores (AO_store), anyone loads */
    /* --- shared, written rarely --- */
    AO_t free_pending __attribute__((aligned(OS_CACHE_LINE))); /* 1 once a free since the
                                             last reclaim was announced */
    AO_t where;           /* enum span_where; owner or central lock writes, anyone loads */
    AO_t sweepgen;        /* sweep state against heap_sweepgen (sweep invariant) */
    AO_t sweep_fi;        /* freeindex when the world stopped, for a cached span */
    AO_t sweep_fi_gen;    /* heap_sweepgen for which sweep_fi is valid, else 0 */
    const void *last_owner; /* the cache that last took it; its taker, off-list */
    /* --- list links: heap lock (free runs) or central lock (in use) --- */
    struct span *next, *prev;
};

/* A doubly linked list of spans with a tail; whoever guards the spans
 * guards the list. */
struct span_list {
    struct span *first, *last;
    size_t count;
};

static inline void span_list_push(struct span_list *l, struct span *s)
{
    s->prev = NULL;
    s->next = l->first;
    if (l->first)
        l->first->prev = s;
    else
        l->last = s;
    l->first = s;
    l->count++;
}

static inline void span_list_remove(struct span_list *l, struct span *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        l->first = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        l->last = s->prev;
    s->next = s->prev = NULL;
    l->count--;
}

/* Move every span of `src` to the end of `dst`. */
static inline void span_list_splice(struct span_list *dst, struct span_list *src)
{
    if (!src->first)
        return;
    if (dst->last) {
        dst->last->next = src->first;
        src->first->prev = dst->last;
    } else {
        dst->first = src->first;
    }
    dst->last = src->last;
    dst->count += src->count;
    src->first = src->last = NULL;
    src->count = 0;
}

/* Lay out a span of `npages` pages at `start` for `spanclass`, all slots free
 * (or, for class 0, one large object allocated). `bits` holds 3 * nwords
 * zeroed words for the alloc, mark, freed and check bitmaps. */
void span_init(struct span *s, uintptr_t start, size_t npages, unsigned spanclass,
               uint64_t *bits);

/* Words per bitmap for a span of this class and size. */
unsigned span_bitmap_words(unsigned spanclass, size_t npages);

/* Owner: load alloc_cache with the free slots of the first word at or after
 * slot `from` that has any. Returns false when no slot at or after `from`
 * is free (the span is exhausted until a reclaim). */
bool span_refill_cache(struct span *s, uint32_t from);

/* Owner: make alloc_bits alone describe the allocated slots (set the bits
 * of the slots below freeindex, which the fast path handed out). */
void span_materialize(struct span *s);

/* Owner: absorb the slots freed by gc_free since the last reclaim, clearing
 * them (zero invariant); restart allocation at slot 0 if any. Returns the
 * number of slots reclaimed. */
unsigned span_reclaim(struct span *s);

/* Allocated objects according to the allocation invariant. The owner, or
 * any thread while the owner can only run its fast path (the allocator
 * frozen): then the count includes some or all of the slots handed out
 * during the call. */
unsigned span_count_allocated(const struct span *s);

/* Any thread: index of the object containing `p` (p inside the span), or -1
 * when p lies in the span's tail past the last object. */
static inline int32_t span_object_index(const struct span *s, uintptr_t p)
{
    uint32_t idx = (uint32_t)(((uint64_t)(p - s->start) * s->divmul) >> 32);
    return idx < s->nelems ? (int32_t)idx : -1;
}

static inline uintptr_t span_object_start(const struct span *s, uint32_t idx)
{
    return s->start + (uintptr_t)idx * s->elemsize;
}

/* Any thread: is slot `idx` allocated (allocation invariant), read with
 * atomic loads? Exact for a slot the caller has a legitimate pointer to. */
static inline bool span_slot_allocated(const struct span *s, uint32_t idx)
{
    uint64_t bit = UINT64_C(1) << (idx % 64);
    if (AO_load(&s->freed_bits[idx / 64]) & bit)
        return false;
    /* The alloc bit first: freeindex shares its line with the owner's
     * stores on every allocation. A sweep or reclaim stores the new alloc
     * bits, then lowers freeindex (release): a clear bit read before that
     * and a freeindex read after it would miss the slot both ways, so a
     * slot below neither is looked up again after the acquire. */
    if (AO_load(&s->alloc_bits[idx / 64]) & bit)
        return true;
    if (idx < AO_load_acquire(&s->freeindex))
        return true;
    return AO_load(&s->alloc_bits[idx / 64]) & bit;
}

/* Any thread: record that the slots in `mask` of bitmap word `word` were
 * freed. Returns 0, or the slots of `mask` that were already freed and not
 * yet reclaimed (a double free; nothing is recorded then). */
uint64_t span_mark_freed(struct span *s, uint32_t word, uint64_t mask);

/* GCDEBUG clobberfree=1 (set once at init): sweeping fills the slots it
 * frees with SPAN_CLOBBER_PATTERN instead of zeros, and a thread's cache
 * zeroes the slots it loads (span_zero_cached, in its slow path) before
 * handing them out: the zero invariant then holds for loaded slots only. */
#define SPAN_CLOBBER_PATTERN 0xdeadbeefu
extern int span_clobber_free;
void span_clobber(void *p, size_t bytes);
void span_zero_cached(struct span *s);

/* ---- sweeping (the collector's side of a span) ----
 *
 * Sweep invariant, against the global heap_sweepgen `sg` (+2 per cycle):
 *   s->sweepgen == sg      swept since the last mark
 *   s->sweepgen == sg - 1  being swept by whoever claimed it
 *   anything else          not swept since the last mark (an idle thread's
 *                          cached span may stay so for several cycles; each
 *                          cycle clears its marks before marking, so they
 *                          are always those of the latest cycle)
 * Sweeping makes mark bits the alloc bits, except that the slots a cached
 * span handed out after the world stopped — [sweep_fi, freeindex), valid
 * when sweep_fi_gen == sg — stay allocated: they were taken after the
 * marking looked (sweep_fi includes the slot handed out just before the
 * stop, whose address may not have been formed yet: cache_snapshot).
 * Slots freed by gc_free are taken and freed too, freed slots are cleared
 * (zero invariant), and the mark bits are cleared. While a cycle is marking
 * (heap_marking) a sweep frees nothing: it only records the span as swept.
 */

/* Claim the sweep of `s` for generation `sg`: true when the caller must now
 * call span_sweep, false when it is swept already (waits while another
 * thread sweeps it). */
bool span_claim_sweep(struct span *s, AO_t sg);

/* Sweep a claimed small span (sweep invariant); the caller owns its owner
 * fields. Allocation restarts at slot 0 (the alloc cache is loaded).
 * Returns the number of objects left allocated. A span left empty is not
 * cleared, since it normally goes back to the page heap: whoever keeps it
 * must clear it whole (needzero is set). */
unsigned span_sweep(struct span *s, AO_t sg);

/* Allocate-black for a whole alloc cache: mark every slot the owner may hand
 * out from it (they are free, so zero: black needs no scan). */
void span_premark_cache(struct span *s);

/* The same for a span cached by a stopped thread, at the start of marking
 * (the collector reads the owner fields, writes only mark bits). The
 * thread may be stopped between any two stores of the fast path or of a
 * refill, so alloc_cache, cache_base and freeindex need not agree: a new
 * word's alloc cache may already sit beside the old word's cache_base,
 * whose slots are allocated and unscanned. Only what the allocation
 * invariant alone proves free is marked: the free slots at or after
 * freeindex in the word of cache_base. In a consistent cache these are
 * the alloc cache, plus a slot the fast path took but has not counted in
 * freeindex yet; a refill caught halfway marks nothing of the old word, and
 * its owner premarks the new word itself after the stop (cache.c). Returns
 * the slot handed out last (freeindex - 1), whose address the thread may
 * not have formed yet: the caller must shade it grey. -1: none. */
int64_t span_premark_stopped(struct span *s);

/* Owner: establish the zero invariant on a span whose needzero is set (cut
 * from used pages, or left empty by a sweep): clear it whole. */
void span_clear_if_needed(struct span *s);

/* Set bit `idx` of bitmap `bits` (atomic); true when it was clear. */
static inline bool span_set_bit(AO_t *bits, uint32_t idx)
{
    AO_t *w = &bits[idx / 64];
    AO_t bit = (AO_t)1 << (idx % 64);
    for (;;) {
        AO_t old = AO_load(w);
        if (old & bit)
            return false;
        if (AO_compare_and_swap(w, old, old | bit))
            return true;
    }
}

/* Set the mark bit of slot `idx`; true when it was clear. */
static inline bool span_mark(struct span *s, uint32_t idx)
{
    return span_set_bit(s->mark_bits, idx);
}

/* Owner: a cheap internal consistency check for tests. */
bool span_is_valid(const struct span *s);

#endif /* TRICOLOR_SPAN_H */

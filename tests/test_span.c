/*
 * test_span.c — slots inside a span: the allocation invariant of span.h.
 *
 * Two layers. The first drives spans by hand: it takes a span from the page
 * heap and plays the owner's part of the protocol (the fast path of
 * cache_alloc, span_refill_cache, span_reclaim) and the freer's part
 * (span_mark_freed), checking after each step which slots are allocated.
 * The second goes through the public API and checks that gc_base and
 * gc_size see exactly the allocated objects: every interior byte of an
 * object leads back to its start, and nothing else in or out of the heap
 * does.
 *
 * Check runs every test in a child forked from a process that never touched
 * the heap, so each test starts from a fresh heap and a fresh thread cache:
 * the first object of a class is slot 0 of a new span.
 *
 * Per-byte and per-slot loops test with a plain `if` and ck_abort_msg:
 * every ck_assert reports a mark point to the parent process, which would
 * make million-iteration loops slow.
 */
#include <heap.h>
#include <span.h>
#include <tricolor.h>

#include "testutil.h"

#define PAGE            ((size_t)SC_PAGE_SIZE)
#define FIRST_SPANCLASS 2 /* class 1, scan; class 0 (large) is tested apart */
#define FIRST_CLASS     1

static void init_fixture(void)
{
    ck_assert_int_eq(gc_init(), 0);
}

/* ---- the owner's side of the protocol, by hand ---- */

/* One allocation as cache_alloc and its slow path perform it (without the
 * reclaim): refill the alloc cache from freeindex when empty, take its
 * lowest slot, advance freeindex past it. False when the span is exhausted. */
static bool take_slot(struct span *s, uint32_t *idx)
{
    if (!s->alloc_cache && !span_refill_cache(s, (uint32_t)s->freeindex))
        return false;
    uint64_t free = s->alloc_cache;
    *idx = s->cache_base + (uint32_t)__builtin_ctzll(free);
    s->alloc_cache = free & (free - 1);
    AO_store(&s->freeindex, *idx + 1);
    return true;
}

/* Take every remaining slot into `out`; returns how many. */
static unsigned take_all(struct span *s, uint32_t *out)
{
    unsigned n = 0;
    uint32_t idx;
    while (take_slot(s, &idx)) {
        if (n >= s->nelems || !span_is_valid(s))
            ck_abort_msg("take #%u (slot %u) of %u: span invalid or overfull", n, idx,
                         (unsigned)s->nelems);
        out[n++] = idx;
    }
    return n;
}

static struct span *new_span(unsigned spanclass)
{
    unsigned cls = sc_class_of_span_class(spanclass);
    struct span *s = heap_alloc(sc_class_npages[cls], spanclass);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(AO_load(&s->state), SPAN_IN_USE);
    return s;
}

/* The span code never looks at the kind: most tests run once per class,
 * alternating scan and noscan so that both kinds appear. */
static struct span *new_span_of_class(unsigned cls)
{
    return new_span(sc_span_class(cls, cls % 2));
}

static void drop_span(struct span *s)
{
    heap_free(s);
    ck_assert(heap_is_valid());
}

static void assert_ascending_from(const uint32_t *got, unsigned n, const uint32_t *want,
                                  unsigned nwant)
{
    ck_assert_uint_eq(n, nwant);
    for (unsigned i = 0; i < n; i++)
        if (got[i] != want[i])
            ck_abort_msg("slot #%u: got %u, expected %u", i, got[i], want[i]);
}

/* Record one freed slot; false when it was already freed (not recorded). */
static bool mark_freed(struct span *s, uint32_t idx)
{
    return span_mark_freed(s, idx / 64, UINT64_C(1) << (idx % 64)) == 0;
}

/* The pattern of free_pattern: every third of n slots, and the last. */
static bool in_pattern(unsigned i, unsigned n)
{
    return i % 3 == 0 || i == n - 1;
}

/* Free, through span_mark_freed, the slots of `slots` in the pattern; store
 * the freed indexes (ascending) in `freed`. Returns how many. */
static unsigned free_pattern(struct span *s, const uint32_t *slots, unsigned n, uint32_t *freed)
{
    unsigned nfreed = 0;
    for (unsigned i = 0; i < n; i++) {
        if (!in_pattern(i, n))
            continue;
        ck_assert(mark_freed(s, slots[i]));
        ck_assert_msg(!mark_freed(s, slots[i]), "second free of slot %u accepted", slots[i]);
        ck_assert(!span_slot_allocated(s, slots[i]));
        freed[nfreed++] = slots[i];
    }
    return nfreed;
}

/* ---- layout ---- */

START_TEST(test_new_span_layout)
{
    unsigned cls = (unsigned)_i, sc = sc_span_class(cls, cls % 2);
    struct span *s = new_span(sc);
    ck_assert_uint_eq(s->spanclass, sc);
    ck_assert_uint_eq(s->npages, sc_class_npages[cls]);
    ck_assert_uint_eq(s->elemsize, sc_class_size[cls]);
    ck_assert_uint_eq(s->nelems, sc_class_nelems[cls]);
    ck_assert_uint_eq(s->nwords, span_bitmap_words(sc, s->npages));
    ck_assert_uint_eq(s->nwords, (s->nelems + 63u) / 64u);
    ck_assert_uint_le(s->nwords, SPAN_BITMAP_WORDS_MAX);
    ck_assert_uint_eq(s->start % PAGE, 0);
    ck_assert(span_is_valid(s));
    ck_assert_uint_eq(span_count_allocated(s), 0);
    for (uint32_t i = 0; i < s->nelems; i++)
        if (span_slot_allocated(s, i))
            ck_abort_msg("slot %u of a new span is allocated", i);
    drop_span(s);
}
END_TEST

START_TEST(test_object_index_of_every_byte)
{
    struct span *s = new_span_of_class((unsigned)_i);
    for (uintptr_t off = 0; off < s->npages * PAGE; off++) {
        int32_t idx = span_object_index(s, s->start + off);
        int32_t want = off / s->elemsize < s->nelems ? (int32_t)(off / s->elemsize) : -1;
        if (idx != want)
            ck_abort_msg("offset %zu: index %d, expected %d", (size_t)off, idx, want);
    }
    drop_span(s);
}
END_TEST

START_TEST(test_large_span)
{
    unsigned noscan = (unsigned)_i;
    struct span *s = heap_alloc(3, sc_span_class(0, noscan));
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(s->nelems, 1);
    ck_assert_uint_eq(s->elemsize, 3 * PAGE);
    ck_assert(span_is_valid(s));
    ck_assert(span_slot_allocated(s, 0));
    ck_assert_uint_eq(span_count_allocated(s), 1);
    ck_assert_int_eq(span_object_index(s, s->start + 3 * PAGE - 1), 0);
    ck_assert(!span_refill_cache(s, (uint32_t)s->freeindex));
    ck_assert(mark_freed(s, 0));
    ck_assert(!mark_freed(s, 0));
    ck_assert(!span_slot_allocated(s, 0));
    drop_span(s);
}
END_TEST

/* ---- the allocation protocol ---- */

START_TEST(test_slots_taken_in_ascending_order)
{
    struct span *s = new_span_of_class((unsigned)_i);
    uint32_t idx;
    for (uint32_t i = 0; i < s->nelems; i++) {
        if (!take_slot(s, &idx) || idx != i)
            ck_abort_msg("take #%u failed or returned slot %u", i, idx);
        bool next_free = i + 1 == s->nelems || !span_slot_allocated(s, i + 1);
        if (!span_slot_allocated(s, i) || !next_free || span_count_allocated(s) != i + 1 ||
            !span_is_valid(s))
            ck_abort_msg("after taking slot %u: wrong allocation state", i);
    }
    ck_assert(!take_slot(s, &idx));
    ck_assert_uint_eq(span_count_allocated(s), s->nelems);
    drop_span(s);
}
END_TEST

START_TEST(test_reclaim_returns_exactly_the_freed_slots)
{
    struct span *s = new_span_of_class((unsigned)_i);
    uint32_t slots[SC_MAX_OBJECTS_PER_SPAN], freed[SC_MAX_OBJECTS_PER_SPAN];
    uint32_t again[SC_MAX_OBJECTS_PER_SPAN];
    unsigned n = take_all(s, slots);
    ck_assert_uint_eq(n, s->nelems);
    unsigned nfreed = free_pattern(s, slots, n, freed);
    for (unsigned i = 0; i < n; i++)
        if (!in_pattern(i, n))
            ck_assert(span_slot_allocated(s, slots[i]));

    ck_assert_uint_eq(span_reclaim(s), nfreed);
    ck_assert(span_is_valid(s));
    ck_assert_uint_eq(span_count_allocated(s), n - nfreed);
    for (unsigned i = 0; i < nfreed; i++)
        ck_assert(!span_slot_allocated(s, freed[i]));

    assert_ascending_from(again, take_all(s, again), freed, nfreed);
    ck_assert_uint_eq(span_count_allocated(s), n);
    ck_assert(mark_freed(s, freed[0])); /* reallocated: may be freed again */
    drop_span(s);
}
END_TEST

/* Reclaim in the middle of the span: the slots freed below freeindex and
 * every slot never handed out come back, in ascending order. */
START_TEST(test_reclaim_after_partial_take)
{
    struct span *s = new_span_of_class((unsigned)_i);
    uint32_t slots[SC_MAX_OBJECTS_PER_SPAN], freed[SC_MAX_OBJECTS_PER_SPAN];
    uint32_t want[SC_MAX_OBJECTS_PER_SPAN], again[SC_MAX_OBJECTS_PER_SPAN];
    unsigned taken = (s->nelems + 1u) / 2u;
    for (unsigned i = 0; i < taken; i++)
        ck_assert(take_slot(s, &slots[i]));
    unsigned nfreed = free_pattern(s, slots, taken, freed);

    ck_assert_uint_eq(span_reclaim(s), nfreed);
    ck_assert(span_is_valid(s));
    ck_assert_uint_eq(span_count_allocated(s), taken - nfreed);
    unsigned nwant = 0;
    for (unsigned i = 0; i < nfreed; i++)
        want[nwant++] = freed[i];
    for (uint32_t i = taken; i < s->nelems; i++)
        want[nwant++] = i;
    assert_ascending_from(again, take_all(s, again), want, nwant);
    drop_span(s);
}
END_TEST

START_TEST(test_reclaim_without_frees_changes_nothing)
{
    struct span *s = new_span_of_class((unsigned)_i);
    uint32_t idx;
    unsigned taken = (s->nelems + 1u) / 2u;
    for (unsigned i = 0; i < taken; i++)
        ck_assert(take_slot(s, &idx));
    ck_assert_uint_eq(span_reclaim(s), 0);
    ck_assert(span_is_valid(s));
    ck_assert_uint_eq(span_count_allocated(s), taken);
    if (taken < s->nelems) {
        ck_assert(take_slot(s, &idx));
        ck_assert_uint_eq(idx, taken);
    }
    drop_span(s);
}
END_TEST

/* A span whose bitmaps were dirty when it went back to the page heap (alloc
 * bits materialized by a reclaim, freed bits pending, mark bits set) comes
 * back from it empty: its recycled bitmaps are clean. */
static void dirty_and_drop(struct span *s)
{
    uint32_t slots[SC_MAX_OBJECTS_PER_SPAN], freed[SC_MAX_OBJECTS_PER_SPAN];
    free_pattern(s, slots, take_all(s, slots), freed);
    span_reclaim(s);
    free_pattern(s, slots, take_all(s, slots), freed);
    for (unsigned w = 0; w < s->nwords; w++)
        s->mark_bits[w] = ~UINT64_C(0);
    drop_span(s);
}

START_TEST(test_recycled_span_starts_empty)
{
    dirty_and_drop(new_span_of_class((unsigned)_i));
    struct span *s = new_span_of_class((unsigned)_i);
    uint32_t slots[SC_MAX_OBJECTS_PER_SPAN];
    ck_assert(span_is_valid(s));
    ck_assert_uint_eq(span_count_allocated(s), 0);
    for (unsigned w = 0; w < s->nwords; w++)
        ck_assert_uint_eq(s->mark_bits[w], 0);
    ck_assert_uint_eq(take_all(s, slots), s->nelems);
    ck_assert_uint_eq(span_reclaim(s), 0);
    drop_span(s);
}
END_TEST

/* A mask that overlaps slots already freed records nothing and names the
 * overlap; the rest of the mask can then be recorded. */
START_TEST(test_mark_freed_mask_is_all_or_nothing)
{
    struct span *s = new_span(sc_span_class(1, 0)); /* 1024 slots */
    uint32_t slots[SC_MAX_OBJECTS_PER_SPAN];
    take_all(s, slots);
    const uint32_t word = 2;
    const uint64_t first = UINT64_C(1) << 3 | UINT64_C(1) << 40;
    const uint64_t second = UINT64_C(0xf0) | UINT64_C(1) << 40;
    ck_assert_uint_eq(span_mark_freed(s, word, first), 0);
    ck_assert_uint_eq(span_mark_freed(s, word, second), UINT64_C(1) << 40);
    for (unsigned bit = 4; bit < 8; bit++)
        ck_assert(span_slot_allocated(s, word * 64 + bit));
    ck_assert_uint_eq(span_mark_freed(s, word, second & ~first), 0);
    ck_assert_uint_eq(span_reclaim(s), 6);
    ck_assert_uint_eq(span_count_allocated(s), s->nelems - 6u);
    drop_span(s);
}
END_TEST

/* span_refill_cache(s, from) in a fresh span makes `from` the next slot. */
static const uint32_t refill_from[] = {0, 1, 63, 64, 70, 127, 128, 500, 1023};

START_TEST(test_refill_from_a_slot)
{
    struct span *s = new_span(sc_span_class(1, 0)); /* 1024 slots, 16 bitmap words */
    uint32_t from = refill_from[_i], idx;
    ck_assert(span_refill_cache(s, from));
    ck_assert(span_is_valid(s));
    ck_assert(take_slot(s, &idx));
    ck_assert_uint_eq(idx, from);
    ck_assert(!span_refill_cache(s, s->nelems));
    drop_span(s);
}
END_TEST

START_TEST(test_refill_skips_allocated_words)
{
    struct span *s = new_span(sc_span_class(1, 1));
    uint32_t slots[SC_MAX_OBJECTS_PER_SPAN], idx;
    take_all(s, slots);
    ck_assert(mark_freed(s, 200));
    ck_assert(mark_freed(s, 900));
    ck_assert_uint_eq(span_reclaim(s), 2);
    ck_assert(span_refill_cache(s, 201)); /* words 3..13 hold no free slot */
    ck_assert(take_slot(s, &idx));
    ck_assert_uint_eq(idx, 900);
    ck_assert(!take_slot(s, &idx));
    drop_span(s);
}
END_TEST

/* ---- allocate-black for a stopped thread's cache (span_premark_stopped) ----
 *
 * The collector premarks the cache of a thread stopped anywhere in the fast
 * path or in a refill, where alloc_cache, cache_base and freeindex may
 * disagree. Each case stops the owner between two of those stores (by
 * making only some of them) and checks which slots come out marked: the
 * free slots the owner may hand out, never an allocated one (marking an
 * allocated object black would leave its children unscanned). */

enum torn {
    CONSISTENT,        /* stopped outside any store */
    TOOK_SLOT,         /* fast path: slot gone from alloc_cache, freeindex not advanced */
    COUNTED_SLOT,      /* fast path: freeindex advanced, slot still in alloc_cache */
    REFILL_CACHE_ONLY, /* refill: next word's alloc_cache stored, cache_base not */
    REFILL_BASE_ONLY,  /* refill: cache_base moved on, alloc_cache still empty */
};

/* Slots 0..69 taken; a refill case then exhausts word 1 as well. Returns
 * the slot the collector must shade grey (freeindex - 1) as it should be. */
static int64_t stop_owner(struct span *s, enum torn how)
{
    uint32_t idx;
    for (unsigned i = 0; i < 70; i++)
        ck_assert(take_slot(s, &idx));
    uint64_t free = s->alloc_cache;
    switch (how) {
    case CONSISTENT:
        return 69;
    case TOOK_SLOT:
        s->alloc_cache = free & (free - 1);
        return 69;
    case COUNTED_SLOT:
        AO_store(&s->freeindex, 71);
        return 70;
    case REFILL_CACHE_ONLY:
    case REFILL_BASE_ONLY:
        while (s->alloc_cache)
            ck_assert(take_slot(s, &idx));
        if (how == REFILL_CACHE_ONLY)
            s->alloc_cache = ~UINT64_C(0); /* word 2, all free */
        else
            s->cache_base = 128;
        return 127;
    }
    return -2;
}

/* What may come out marked, word by word: the free slots of the cache's
 * word at or after freeindex (a refill's new word: premarking free slots is
 * harmless). Nothing below freeindex. */
static const uint64_t premark_expect[][3] = {
    [CONSISTENT] = {0, ~UINT64_C(0) << 6, 0},        /* 70..127 */
    [TOOK_SLOT] = {0, ~UINT64_C(0) << 6, 0},         /* the taken 70 too */
    [COUNTED_SLOT] = {0, ~UINT64_C(0) << 7, 0},      /* 71..127; 70 is shaded grey */
    [REFILL_CACHE_ONLY] = {0, 0, 0},                 /* the owner premarks word 2 itself */
    [REFILL_BASE_ONLY] = {0, 0, ~UINT64_C(0)},       /* word 2, free */
};

START_TEST(test_premark_of_a_stopped_cache)
{
    struct span *s = new_span(sc_span_class(1, 0)); /* 1024 slots */
    int64_t grey = stop_owner(s, (enum torn)_i);
    ck_assert_int_eq(span_premark_stopped(s), grey);
    for (unsigned w = 0; w < 3; w++)
        ck_assert_msg(AO_load(&s->mark_bits[w]) == premark_expect[_i][w],
                      "case %d, word %u: marked %#llx, expected %#llx", _i, w,
                      (unsigned long long)AO_load(&s->mark_bits[w]),
                      (unsigned long long)premark_expect[_i][w]);
    for (unsigned w = 3; w < s->nwords; w++)
        ck_assert_uint_eq(AO_load(&s->mark_bits[w]), 0);
    for (unsigned w = 0; w < s->nwords; w++)
        AO_store(&s->mark_bits[w], 0);
    s->alloc_cache = 0;
    drop_span(s);
}
END_TEST

/* Reclaiming a freed bit for a slot never handed out is a broken invariant. */
static void reclaim_unallocated(void *arg)
{
    struct span *s = arg;
    mark_freed(s, s->nelems - 1u);
    span_reclaim(s);
}

START_TEST(test_reclaim_of_unallocated_slot_aborts)
{
    struct span *s = new_span(sc_span_class(5, 0));
    expect_abort(reclaim_unallocated, s, "were not allocated", NULL);
    drop_span(s);
}
END_TEST

/* ---- through the public API ---- */

static void *alloc_kind(size_t size, unsigned noscan)
{
    return noscan ? gc_alloc_noscan(size) : gc_alloc(size);
}

/* The smallest request that maps to class `cls`. */
static size_t smallest_request(unsigned cls)
{
    return sc_class_size[cls - 1] + 1u;
}

static void assert_all_bytes(const unsigned char *p, size_t n, unsigned char want)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != want)
            ck_abort_msg("byte %zu of %p is %#x, expected %#x", i, (void *)p, p[i], want);
}

static void assert_object(unsigned char *p, size_t size)
{
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq((uintptr_t)p % (size % 16 == 0 ? 16 : 8), 0);
    ck_assert_uint_eq(gc_size(p), size);
    assert_all_bytes(p, size, 0);
    for (size_t off = 0; off < size; off++)
        if (gc_base(p + off) != p)
            ck_abort_msg("gc_base(%p + %zu) = %p", (void *)p, off, gc_base(p + off));
}

static void assert_no_object(uintptr_t from, uintptr_t to)
{
    for (uintptr_t a = from; a < to; a++)
        if (gc_base((void *)a) != NULL)
            ck_abort_msg("gc_base(%#zx) = %p", (size_t)a, gc_base((void *)a));
}

/* A span's worth of objects of one span class: each one zeroed, aligned, of
 * the class's size, with every interior byte leading back to its start; no
 * two overlap (each is filled with its own byte and rechecked at the end). */
START_TEST(test_interior_pointers)
{
    unsigned sc = (unsigned)_i, cls = sc_class_of_span_class(sc), noscan = sc_noscan(sc);
    size_t size = sc_class_size[cls];
    size_t request = noscan ? size : smallest_request(cls);
    unsigned n = sc_class_nelems[cls];
    unsigned char *objs[SC_MAX_OBJECTS_PER_SPAN];
    for (unsigned i = 0; i < n; i++) {
        objs[i] = alloc_kind(request, noscan);
        assert_object(objs[i], size);
        memset(objs[i], (int)(i % 255 + 1), size);
    }
    for (unsigned i = 0; i < n; i++)
        assert_all_bytes(objs[i], size, (unsigned char)(i % 255 + 1));
}
END_TEST

/* After the first allocation of a class, the object's bytes are the only
 * ones of its span with a base: not the free slots, not the tail. */
START_TEST(test_only_allocated_bytes_have_a_base)
{
    unsigned cls = (unsigned)_i;
    size_t size = sc_class_size[cls];
    unsigned char *p = alloc_kind(size, cls % 2);
    struct span *s = heap_span_of(p);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq((uintptr_t)p, s->start); /* fresh heap: slot 0 of a new span */
    uintptr_t end = s->start + s->npages * PAGE;
    ck_assert_ptr_eq(gc_base(p + size - 1), p);
    assert_no_object(s->start + size, end);
}
END_TEST

/* tricolor.h: gc_base is NULL when p is not inside an allocated object; a
 * freed object is not allocated, whoever freed it. */
START_TEST(test_freed_object_has_no_base)
{
    for (unsigned cls = FIRST_CLASS; cls < SC_NUM_CLASSES; cls++) {
        size_t size = sc_class_size[cls];
        unsigned char *p = alloc_kind(size, cls % 2);
        unsigned char *q = alloc_kind(size, cls % 2);
        gc_free(p);
        if (gc_base(p) != NULL || gc_base(p + size - 1) != NULL)
            ck_abort_msg("class %u: gc_base(%p) = %p after gc_free", cls, (void *)p, gc_base(p));
        ck_assert_ptr_eq(gc_base(q), q);
    }
}
END_TEST

/* A slot freed by the thread allocating from its span is handed out again,
 * zeroed, once that span fills up; a neighbour in the same span (in classes
 * with room for one) keeps its contents. */
START_TEST(test_freed_slot_is_reused_zeroed)
{
    unsigned cls = (unsigned)_i, noscan = cls % 2;
    size_t size = sc_class_size[cls];
    unsigned n = sc_class_nelems[cls];
    unsigned char *p = alloc_kind(size, noscan);
    unsigned char *q = n > 1 ? alloc_kind(size, noscan) : NULL;
    memset(p, 0xa5, size);
    if (q)
        memset(q, 0x5a, size);
    gc_free(p);
    for (unsigned i = q ? 2 : 1; i < n; i++) /* fill the rest of p's span */
        ck_assert_ptr_nonnull(alloc_kind(size, noscan));
    unsigned char *r = alloc_kind(size, noscan);
    ck_assert_ptr_eq(r, p);
    assert_object(r, size);
    if (q)
        assert_all_bytes(q, size, 0x5a);
}
END_TEST

static int a_global;

START_TEST(test_no_base_outside_the_heap)
{
    int on_stack = 0;
    char *from_malloc = malloc(64);
    ck_assert_ptr_nonnull(from_malloc);
    void *p = gc_alloc(16); /* the heap exists and has committed memory */
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_null(gc_base(NULL));
    ck_assert_ptr_null(gc_base(&on_stack));
    ck_assert_ptr_null(gc_base(&a_global));
    ck_assert_ptr_null(gc_base(from_malloc));
    ck_assert_ptr_null(gc_base(from_malloc + 63));
    ck_assert_ptr_null(gc_base((void *)(heap_base - 1)));
    ck_assert_ptr_null(gc_base((void *)(heap_base + AO_load(&heap_used))));
    ck_assert_ptr_null(gc_base((void *)UINTPTR_MAX));
    free(from_malloc);
}
END_TEST

START_TEST(test_no_base_before_first_allocation)
{
    int on_stack = 0;
    ck_assert_ptr_null(gc_base(&on_stack));
    ck_assert_ptr_null(gc_base(NULL));
    ck_assert_ptr_null(gc_base(&a_global));
}
END_TEST

/* ---- misuse through the public API ---- */

static void free_twice(void *p)
{
    gc_free(p);
    gc_free(p);
}

static void free_interior(void *p)
{
    gc_free((char *)p + 8);
}

static void size_of_freed(void *p)
{
    gc_free(p);
    (void)gc_size(p);
}

static void size_of_stack(void *unused)
{
    int on_stack = 0;
    (void)unused;
    (void)gc_size(&on_stack);
}

/* tricolor.h: misuse prints one line naming the function and the address,
 * then aborts. Each case runs on a fresh 32-byte object `p`. */
static const struct {
    const char *name;
    void (*misuse)(void *p);
    const char *needle;
    size_t addr_offset; /* of the address printed, from p; SIZE_MAX: none */
} misuse_cases[] = {
    {"double free", free_twice, "gc_free()", 0},
    {"free of an interior pointer", free_interior, "inside an object", 8},
    {"size of a freed object", size_of_freed, "gc_size()", 0},
    {"size of a stack address", size_of_stack, "gc_size()", SIZE_MAX},
};

START_TEST(test_misuse_aborts)
{
    char *p = gc_alloc(32);
    ck_assert_ptr_nonnull(p);
    size_t off = misuse_cases[_i].addr_offset;
    expect_abort(misuse_cases[_i].misuse, p, misuse_cases[_i].needle,
                 off == SIZE_MAX ? NULL : p + off);
}
END_TEST

static TCase *heap_tcase(const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, init_fixture, NULL);
    return tc;
}

static Suite *make_suite(void)
{
    /* These tests drive the allocator with explicit gc_free and keep their
     * objects in malloc'd arrays, which the collector does not scan:
     * automatic collection stays off (the collector has its own suites). */
    gc_set_percent(-1);
    Suite *s = suite_create("span");
    TCase *layout = heap_tcase("layout");
    tcase_add_loop_test(layout, test_new_span_layout, FIRST_CLASS, SC_NUM_CLASSES);
    tcase_add_loop_test(layout, test_object_index_of_every_byte, FIRST_CLASS, SC_NUM_CLASSES);
    tcase_add_loop_test(layout, test_large_span, 0, 2);
    suite_add_tcase(s, layout);

    TCase *protocol = heap_tcase("protocol");
    tcase_add_loop_test(protocol, test_slots_taken_in_ascending_order, FIRST_CLASS, SC_NUM_CLASSES);
    tcase_add_loop_test(protocol, test_reclaim_returns_exactly_the_freed_slots, FIRST_CLASS,
                        SC_NUM_CLASSES);
    tcase_add_loop_test(protocol, test_reclaim_after_partial_take, FIRST_CLASS, SC_NUM_CLASSES);
    tcase_add_loop_test(protocol, test_reclaim_without_frees_changes_nothing, FIRST_CLASS,
                        SC_NUM_CLASSES);
    tcase_add_loop_test(protocol, test_recycled_span_starts_empty, FIRST_CLASS, SC_NUM_CLASSES);
    tcase_add_loop_test(protocol, test_refill_from_a_slot, 0,
                        (int)(sizeof refill_from / sizeof refill_from[0]));
    tcase_add_test(protocol, test_refill_skips_allocated_words);
    tcase_add_test(protocol, test_mark_freed_mask_is_all_or_nothing);
    tcase_add_test(protocol, test_reclaim_of_unallocated_slot_aborts);
    tcase_add_loop_test(protocol, test_premark_of_a_stopped_cache, CONSISTENT,
                        REFILL_BASE_ONLY + 1);
    suite_add_tcase(s, protocol);

    TCase *api = heap_tcase("api");
    tcase_add_loop_test(api, test_interior_pointers, FIRST_SPANCLASS, SC_NUM_SPAN_CLASSES);
    tcase_add_loop_test(api, test_only_allocated_bytes_have_a_base, FIRST_CLASS, SC_NUM_CLASSES);
    tcase_add_loop_test(api, test_freed_slot_is_reused_zeroed, FIRST_CLASS, SC_NUM_CLASSES);
    tcase_add_test(api, test_no_base_outside_the_heap);
    tcase_add_test(api, test_freed_object_has_no_base);
    tcase_add_loop_test(api, test_misuse_aborts, 0,
                        (int)(sizeof misuse_cases / sizeof misuse_cases[0]));
    suite_add_tcase(s, api);

    TCase *uninit = tcase_create("uninitialised");
    tcase_add_test(uninit, test_no_base_before_first_allocation);
    suite_add_tcase(s, uninit);
    return s;
}

TEST_MAIN(make_suite)

/*
 * test_heap.c — the page heap: spans of pages, free runs, arenas, and the
 * large objects the public API builds on them.
 *
 * Every step that changes the heap is followed by heap_is_valid(), which
 * walks the committed heap and checks the page table invariant, full
 * coalescing and the counters. Placement (coalescing, best fit) is observed
 * through addresses and heap_read_stats.
 *
 * Check runs every test in a child forked from a process that never touched
 * the heap, so each test starts from an empty heap. The tests still compare
 * counters only as differences within one test; where a test relies on the
 * fresh heap for placement (what lies next to a span), it says so and
 * asserts it.
 */
#include <errno.h>

#include <central.h>
#include <heap.h>
#include <tricolor.h>

#include "testutil.h"

#define PAGE         ((size_t)SC_PAGE_SIZE)
#define MIB          ((size_t)1 << 20)
#define LARGE        sc_span_class(0, 0)
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void init_fixture(void)
{
    ck_assert_int_eq(gc_init(), 0);
}

static struct heap_stats stats(void)
{
    struct heap_stats st;
    heap_read_stats(&st);
    ck_assert_uint_eq(st.committed, st.in_use + st.free);
    ck_assert_uint_le(st.in_use, st.touched); /* every page in use was handed out */
    ck_assert_uint_le(st.touched, st.committed);
    ck_assert_uint_le(st.released, st.free); /* only free pages are returned */
    ck_assert_uint_le(st.released, st.touched - st.in_use); /* and only touched ones */
    return st;
}

static size_t round_up(size_t bytes, size_t unit)
{
    return (bytes + unit - 1) / unit * unit;
}

static size_t round_to_pages(size_t bytes)
{
    return round_up(bytes, PAGE);
}

/* Every page of an in-use span maps back to it. */
static void assert_span_mapped(struct span *s)
{
    ck_assert_uint_eq(AO_load(&s->state), SPAN_IN_USE);
    ck_assert_uint_eq(s->start % PAGE, 0);
    ck_assert_uint_ge(s->start, heap_base);
    ck_assert_uint_le(s->start + s->npages * PAGE, heap_base + AO_load(&heap_used));
    for (size_t i = 0; i < s->npages; i++)
        if (heap_span_of((void *)(s->start + i * PAGE + PAGE - 1)) != s)
            ck_abort_msg("page %zu of span %p does not map to it", i, (void *)s->start);
}

static struct span *span_alloc(size_t npages)
{
    struct span *s = heap_alloc(npages, LARGE);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(s->npages, npages);
    ck_assert(heap_is_valid());
    assert_span_mapped(s);
    return s;
}

static void span_free(struct span *s)
{
    heap_free(s);
    ck_assert(heap_is_valid());
}

static void assert_disjoint(struct span *const *spans, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            uintptr_t a = spans[i]->start, b = spans[j]->start;
            bool apart = a + spans[i]->npages * PAGE <= b || b + spans[j]->npages * PAGE <= a;
            if (!apart)
                ck_abort_msg("spans %zu and %zu overlap", i, j);
        }
}

static bool all_zero(const unsigned char *p, size_t n)
{
    static const unsigned char zeros[PAGE];
    for (size_t off = 0; off < n; off += PAGE)
        if (memcmp(p + off, zeros, n - off < PAGE ? n - off : PAGE) != 0)
            return false;
    return true;
}

/* ---- spans of pages, freed in different orders ---- */

static const size_t page_counts[] = {1, 2, 3, 5, 8, 13, 64, 127, 128, 129, 300, 1000, 4096};
#define NSPANS ARRAY_LEN(page_counts)

enum free_order { FORWARD, REVERSE, EVENS_THEN_ODDS, SHUFFLED, NUM_ORDERS };

static void shuffle(size_t *idx, size_t n, uint64_t seed)
{
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = test_rand(&seed) % (i + 1), t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

/* Fill idx with the indexes of the spans in the order to free them. */
static void order_indexes(enum free_order order, size_t *idx)
{
    const size_t half = (NSPANS + 1) / 2;
    for (size_t i = 0; i < NSPANS; i++) {
        switch (order) {
        case REVERSE:
            idx[i] = NSPANS - 1 - i;
            break;
        case EVENS_THEN_ODDS:
            idx[i] = i < half ? 2 * i : 2 * (i - half) + 1;
            break;
        default:
            idx[i] = i;
        }
    }
    if (order == SHUFFLED)
        shuffle(idx, NSPANS, 0x9e3779b97f4a7c15u);
}

START_TEST(test_alloc_then_free_in_order)
{
    struct span *spans[NSPANS];
    size_t idx[NSPANS], total = 0;
    struct heap_stats before = stats();
    for (size_t i = 0; i < NSPANS; i++) {
        spans[i] = span_alloc(page_counts[i]);
        total += page_counts[i] * PAGE;
        ck_assert_uint_eq(stats().in_use - before.in_use, total);
    }
    assert_disjoint(spans, NSPANS);
    ck_assert_uint_eq(stats().spans - before.spans, NSPANS);
    order_indexes((enum free_order)_i, idx);
    for (size_t i = 0; i < NSPANS; i++) {
        span_free(spans[idx[i]]);
        total -= page_counts[idx[i]] * PAGE;
        ck_assert_uint_eq(stats().in_use - before.in_use, total);
    }
    struct heap_stats after = stats();
    ck_assert_uint_eq(after.in_use, before.in_use);
    ck_assert_uint_eq(after.spans, before.spans);
}
END_TEST

/* Deterministic churn: random page counts allocated and freed in random
 * order, the heap checked after every step, the bytes in use tracked. */
#define CHURN_STEPS 1500
#define CHURN_LIVE  64

START_TEST(test_random_churn)
{
    struct span *live[CHURN_LIVE];
    size_t nlive = 0, expect_in_use = 0;
    uint64_t seed = 0x5eed;
    struct heap_stats before = stats();
    for (int step = 0; step < CHURN_STEPS; step++) {
        uint64_t r = test_rand(&seed);
        if (nlive < CHURN_LIVE && (nlive == 0 || r % 3 != 0)) {
            size_t npages = r % 7 == 0 ? 128 + (r >> 8) % 400 : 1 + (r >> 8) % 40;
            live[nlive++] = span_alloc(npages);
            expect_in_use += npages * PAGE;
        } else {
            size_t j = (r >> 8) % nlive;
            expect_in_use -= live[j]->npages * PAGE;
            span_free(live[j]);
            live[j] = live[--nlive];
        }
        if (stats().in_use - before.in_use != expect_in_use)
            ck_abort_msg("step %d: in_use off by %zd", step,
                         (ssize_t)(stats().in_use - before.in_use - expect_in_use));
    }
    assert_disjoint(live, nlive);
    while (nlive)
        span_free(live[--nlive]);
    ck_assert_uint_eq(stats().in_use, before.in_use);
}
END_TEST

/* ---- coalescing ---- */

/* Spans a, b, c (2, 3 and 4 pages) lie side by side, fenced on the right
 * by an in-use guard; the page before a is not free because a was cut from
 * the start of a free run. Freed in any order, they form one free run per
 * group of adjacent freed spans, and finally a single run of 9 pages that
 * serves a 9-page request at a's address. */
static const struct {
    const char *name;
    int order[3]; /* 0 = a (left), 1 = b (middle), 2 = c (right) */
} coalesce_orders[] = {
    {"middle, left, right", {1, 0, 2}}, {"middle, right, left", {1, 2, 0}},
    {"left, middle, right", {0, 1, 2}}, {"left, right, middle", {0, 2, 1}},
    {"right, middle, left", {2, 1, 0}}, {"right, left, middle", {2, 0, 1}},
};

static size_t freed_groups(const bool *freed)
{
    size_t groups = 0;
    for (int i = 0; i < 3; i++)
        groups += freed[i] && (i == 0 || !freed[i - 1]);
    return groups;
}

START_TEST(test_coalesce)
{
    static const size_t npages[3] = {2, 3, 4};
    struct span *s[3];
    uintptr_t start[3];
    for (int i = 0; i < 3; i++) {
        s[i] = span_alloc(npages[i]);
        start[i] = s[i]->start;
    }
    struct span *guard = span_alloc(1);
    ck_assert_msg(start[1] == start[0] + 2 * PAGE && start[2] == start[1] + 3 * PAGE &&
                      guard->start == start[2] + 4 * PAGE,
                  "fresh heap expected: spans not adjacent");
    struct heap_stats before = stats();
    bool freed[3] = {false, false, false};
    for (int k = 0; k < 3; k++) {
        int which = coalesce_orders[_i].order[k];
        span_free(s[which]);
        freed[which] = true;
        ck_assert_msg(stats().free_runs == before.free_runs + freed_groups(freed),
                      "%s, step %d: %zu free runs, expected %zu", coalesce_orders[_i].name, k,
                      stats().free_runs, before.free_runs + freed_groups(freed));
    }
    struct span *all = span_alloc(9);
    ck_assert_uint_eq(all->start, start[0]);
    ck_assert_uint_eq(stats().free_runs, before.free_runs);
    span_free(all);
    span_free(guard);
}
END_TEST

/* ---- best fit ---- */

#define MAX_RUNS 4

/* Free runs of the given sizes, each fenced by one-page in-use guards, are
 * freed in ascending address order; a request of `request` pages must be
 * served from run `expect` (-1: from none of them). */
static const struct {
    const char *name;
    size_t runs[MAX_RUNS]; /* 0-terminated */
    size_t request;
    int expect;
} best_fit_cases[] = {
    {"4 pages from the 5-page run", {3, 5, 9}, 4, 1},
    {"exact fit of the smallest", {3, 5, 9}, 3, 0},
    {"exact fit of the largest", {3, 5, 9}, 9, 2},
    {"6 pages from the 9-page run", {3, 5, 9}, 6, 2},
    {"address order does not matter", {9, 3, 5}, 4, 2},
    {"10 pages fit none", {3, 5, 9}, 10, -1},
    {"large: 140 pages from the 150-page run", {300, 150, 200}, 140, 1},
    {"large: 201 pages from the 300-page run", {300, 150, 200}, 201, 0},
    {"large equals: lowest address", {150, 200, 150}, 150, 0},
    {"small run before a larger large run", {130, 100}, 90, 1},
    {"large run when no small run fits", {130, 100}, 101, 0},
};

START_TEST(test_best_fit)
{
    struct span *guards[MAX_RUNS + 1], *runs[MAX_RUNS];
    uintptr_t start[MAX_RUNS];
    size_t n = 0;
    for (; n < MAX_RUNS && best_fit_cases[_i].runs[n]; n++) {
        guards[n] = span_alloc(1);
        runs[n] = span_alloc(best_fit_cases[_i].runs[n]);
        start[n] = runs[n]->start;
    }
    guards[n] = span_alloc(1);
    for (size_t i = 0; i < n; i++)
        span_free(runs[i]);

    struct span *got = span_alloc(best_fit_cases[_i].request);
    int served_from = -1;
    for (size_t i = 0; i < n; i++)
        if (got->start == start[i])
            served_from = (int)i;
    ck_assert_msg(served_from == best_fit_cases[_i].expect, "%s: served from run %d, expected %d",
                  best_fit_cases[_i].name, served_from, best_fit_cases[_i].expect);
    span_free(got);
    for (size_t i = 0; i <= n; i++)
        span_free(guards[i]);
}
END_TEST

/* ---- growth ---- */

/* The heap grows by whole arenas, no more of them than the request needs. */
static const size_t growth_pages[] = {
    1, HEAP_ARENA_PAGES - 1, HEAP_ARENA_PAGES, HEAP_ARENA_PAGES + 1, 3 * HEAP_ARENA_PAGES - 1,
};

START_TEST(test_growth_by_whole_arenas)
{
    size_t npages = growth_pages[_i];
    struct heap_stats before = stats();
    struct span *s = span_alloc(npages);
    struct heap_stats after = stats();
    size_t grown = after.committed - before.committed;
    ck_assert_uint_eq(after.committed % HEAP_ARENA_SIZE, 0);
    ck_assert_uint_eq(grown % HEAP_ARENA_SIZE, 0);
    ck_assert_uint_le(grown, round_up(npages * PAGE, HEAP_ARENA_SIZE));
    ck_assert_uint_le(after.committed, after.reserved);
    ck_assert_uint_eq(after.in_use - before.in_use, npages * PAGE);
    span_free(s);
}
END_TEST

/* Does some piece cross an arena boundary (counted from heap_base)? */
static bool some_piece_straddles(unsigned char *const *pieces, size_t n, size_t size)
{
    for (size_t i = 0; i < n; i++) {
        size_t first = ((uintptr_t)pieces[i] - heap_base) / HEAP_ARENA_SIZE;
        size_t last = ((uintptr_t)pieces[i] + size - 1 - heap_base) / HEAP_ARENA_SIZE;
        if (first != last)
            return true;
    }
    return false;
}

#define GROWTH_PIECES 29 /* of 7 MiB: 203 MiB, more than three arenas */

static void alloc_pieces(unsigned char **pieces, size_t size)
{
    for (size_t i = 0; i < GROWTH_PIECES; i++) {
        pieces[i] = gc_alloc_noscan(size);
        ck_assert_ptr_nonnull(pieces[i]);
        ck_assert(heap_is_valid());
        ck_assert_uint_eq(gc_size(pieces[i]), size);
        pieces[i][0] = (unsigned char)i;
        pieces[i][size - 1] = (unsigned char)~i;
    }
    for (size_t i = 0; i < GROWTH_PIECES; i++) {
        ck_assert_uint_eq(pieces[i][0], (unsigned char)i);
        ck_assert_uint_eq(pieces[i][size - 1], (unsigned char)~i);
        ck_assert_ptr_eq(gc_base(pieces[i] + size / 2), pieces[i]);
    }
}

/* 203 MiB in 7 MiB pieces: more than three arenas, pieces crossing arena
 * boundaries. Freed in random order the pages coalesce across the
 * boundaries: one object of the whole size then fits without growing. */
START_TEST(test_growth_across_arenas)
{
    const size_t size = 7 * MIB;
    unsigned char *pieces[GROWTH_PIECES];
    struct heap_stats before = stats();
    alloc_pieces(pieces, size);
    struct heap_stats grown = stats();
    ck_assert_uint_ge(grown.committed - before.committed, GROWTH_PIECES * size);
    ck_assert_uint_ge(grown.committed, before.committed + 3 * HEAP_ARENA_SIZE);
    ck_assert_msg(some_piece_straddles(pieces, GROWTH_PIECES, size),
                  "fresh heap expected: no piece crosses an arena boundary");

    uint64_t seed = 12345;
    for (size_t left = GROWTH_PIECES; left > 0; left--) {
        size_t j = test_rand(&seed) % left;
        gc_free(pieces[j]);
        pieces[j] = pieces[left - 1];
        ck_assert(heap_is_valid());
    }
    ck_assert_uint_eq(stats().in_use, before.in_use);

    void *whole = gc_alloc_noscan(GROWTH_PIECES * size);
    ck_assert_ptr_nonnull(whole);
    ck_assert_uint_eq(stats().committed, grown.committed);
    gc_free(whole);
    ck_assert(heap_is_valid());
}
END_TEST

/* ---- large objects through the public API ---- */

/* Loop index i of the large-object tests: size large_sizes[i / 2], noscan
 * when i is odd. */
static const size_t large_sizes[] = {
    SC_MAX_SMALL + 1, 5 * PAGE, MIB, HEAP_ARENA_SIZE, 100 * MIB,
};

static size_t large_size(int i)
{
    return large_sizes[i / 2];
}

static unsigned large_noscan(int i)
{
    return (unsigned)i % 2;
}

static void *alloc_kind(size_t size, int i)
{
    return large_noscan(i) ? gc_alloc_noscan(size) : gc_alloc(size);
}

/* A fresh large object: zeroed, page-aligned, its usable size the request
 * rounded to pages, every part of it leading back to its start. */
static void assert_large_object(unsigned char *p, size_t size)
{
    size_t usable = round_to_pages(size);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq((uintptr_t)p % PAGE, 0);
    ck_assert_uint_eq(gc_size(p), usable);
    ck_assert_msg(all_zero(p, usable), "large object of %zu bytes not zeroed", size);
    const size_t offsets[] = {0, 1, PAGE - 1, PAGE, size / 2, size - 1, usable - 1};
    for (size_t k = 0; k < ARRAY_LEN(offsets); k++)
        ck_assert_ptr_eq(gc_base(p + offsets[k]), p);
}

START_TEST(test_large_object)
{
    size_t size = large_size(_i), usable = round_to_pages(size);
    struct heap_stats before = stats();
    unsigned char *p = alloc_kind(size, _i);
    assert_large_object(p, size);
    ck_assert_uint_eq(heap_span_of(p)->spanclass, sc_span_class(0, large_noscan(_i)));
    ck_assert(heap_is_valid());
    ck_assert_uint_eq(stats().in_use - before.in_use, usable);
    ck_assert_uint_eq(stats().spans - before.spans, 1);

    gc_free(p);
    ck_assert(heap_is_valid());
    ck_assert_uint_eq(stats().in_use, before.in_use);
    ck_assert_uint_eq(stats().spans, before.spans);
    ck_assert_ptr_null(gc_base(p));
    ck_assert_ptr_null(gc_base(p + usable - 1));
}
END_TEST

/* ---- returning free pages to the OS ---- */

static const enum os_return_mode release_modes[] = {OS_RETURN_NOW, OS_RETURN_LAZY};

/* Call heap_release(max) until it returns 0, checking the heap after each
 * call; returns the pages returned. */
static size_t release_all(size_t max, enum os_return_mode mode)
{
    size_t total = 0;
    for (size_t n; (n = heap_release(max, mode)) != 0; total += n) {
        ck_assert_uint_le(n, max);
        ck_assert(heap_is_valid());
    }
    return total;
}

/* Every free page ever touched, and no other, is returned once; pages in
 * use and pages never touched are not. */
START_TEST(test_release_every_touched_free_page)
{
    struct span *a = span_alloc(64), *b = span_alloc(32);
    memset((void *)a->start, 0xab, 64 * PAGE);
    memset((void *)b->start, 0xcd, 32 * PAGE);
    span_free(a);
    struct heap_stats before = stats();
    size_t touched_free = before.touched - before.in_use - before.released;
    ck_assert_uint_ge(touched_free, 64 * PAGE);
    ck_assert_uint_eq(release_all(16, release_modes[_i]) * PAGE, touched_free);
    struct heap_stats after = stats();
    ck_assert_uint_eq(after.released, before.released + touched_free);
    ck_assert_uint_eq(after.in_use, before.in_use);
    ck_assert_uint_eq(after.free, before.free);
    ck_assert_uint_eq(heap_release(16, release_modes[_i]), 0);
    for (size_t i = 0; i < 32 * PAGE; i++)
        if (((unsigned char *)b->start)[i] != 0xcd)
            ck_abort_msg("byte %zu of the span in use changed", i);
    span_free(b);
}
END_TEST

/* Two dirty free runs with a span in use between them: the higher one
 * goes first, from its top, at most `max` pages at a time; MADV_DONTNEED
 * pages read as zero. The fresh heap puts the spans one after another. */
START_TEST(test_release_highest_first_in_chunks)
{
    struct span *a = span_alloc(8), *b = span_alloc(8), *c = span_alloc(8);
    ck_assert_uint_eq(c->start, a->start + 16 * PAGE);
    unsigned char *pa = (unsigned char *)a->start, *pc = (unsigned char *)c->start;
    memset(pa, 0xab, 8 * PAGE);
    memset(pc, 0xab, 8 * PAGE);
    span_free(a);
    span_free(c);
    size_t before = stats().released;
    ck_assert_uint_eq(heap_release(3, OS_RETURN_NOW), 3);
    ck_assert(heap_is_valid());
    ck_assert(all_zero(pc + 5 * PAGE, 3 * PAGE));
    ck_assert_uint_eq(pc[5 * PAGE - 1], 0xab);
    ck_assert_uint_eq(pa[8 * PAGE - 1], 0xab);
    ck_assert_uint_eq(heap_release(8, OS_RETURN_NOW), 5); /* the rest of c's run */
    ck_assert(all_zero(pc, 8 * PAGE));
    ck_assert_uint_eq(pa[0], 0xab);
    ck_assert_uint_eq(heap_release(8, OS_RETURN_NOW), 8);
    ck_assert(all_zero(pa, 8 * PAGE));
    ck_assert_uint_eq(stats().released, before + 16 * PAGE);
    span_free(b);
}
END_TEST

/* A span cut from returned pages makes them backed again: the released
 * count falls by its pages, and its memory is usable and zeroed. */
START_TEST(test_released_pages_handed_out_again)
{
    struct span *a = span_alloc(40);
    memset((void *)a->start, 0xab, 40 * PAGE);
    span_free(a);
    release_all(64, OS_RETURN_LAZY);
    size_t before = stats().released;
    ck_assert_uint_ge(before, 40 * PAGE);
    unsigned char *p = gc_alloc(30 * PAGE);
    ck_assert_ptr_nonnull(p);
    ck_assert(heap_is_valid());
    ck_assert_uint_eq(stats().released, before - 30 * PAGE);
    ck_assert(all_zero(p, 30 * PAGE));
    memset(p, 0x5a, 30 * PAGE);
    gc_free(p);
    ck_assert_uint_eq(release_all(64, OS_RETURN_NOW), 30);
    ck_assert_uint_eq(stats().released, before);
}
END_TEST

/* Best fit prefers backed pages: with a backed run of 140 pages and a
 * returned run of exactly 130, a 130-page span is cut from the backed
 * one, and nothing returned is taken back. The fresh heap puts the spans
 * one after another; b and d keep the free runs apart, and the scavenger
 * takes the run with the highest page first. */
START_TEST(test_backed_run_preferred)
{
    struct span *a = span_alloc(140), *b = span_alloc(8), *c = span_alloc(130);
    struct span *d = span_alloc(8);
    ck_assert_uint_eq(c->start, a->start + 148 * PAGE);
    uintptr_t a_start = a->start, c_start = c->start;
    memset((void *)c_start, 0xab, 130 * PAGE);
    span_free(a);
    span_free(c);
    size_t before = stats().released;
    ck_assert_uint_eq(heap_release(130, OS_RETURN_NOW), 130);
    ck_assert(all_zero((void *)c_start, 130 * PAGE));
    struct span *e = span_alloc(130);
    ck_assert_uint_eq(e->start, a_start);
    ck_assert_uint_eq(stats().released, before + 130 * PAGE);
    struct span *f = span_alloc(130); /* no backed run that large left */
    ck_assert_uint_eq(f->start, c_start);
    ck_assert_uint_eq(stats().released, before);
    span_free(b);
    span_free(d);
    span_free(e);
    span_free(f);
}
END_TEST

/* Freed, dirty pages handed out again are zeroed again. The fresh heap
 * puts the second object where the first one was. */
START_TEST(test_large_object_reused_zeroed)
{
    size_t size = large_size(_i), usable = round_to_pages(size);
    unsigned char *p = alloc_kind(size, _i);
    ck_assert_ptr_nonnull(p);
    memset(p, 0xab, usable);
    gc_free(p);
    unsigned char *q = alloc_kind(size, _i);
    ck_assert_ptr_eq(q, p);
    assert_large_object(q, size);
    gc_free(q);
}
END_TEST

/* Small spans cut from pages a freed large object dirtied hand out zeroed
 * objects. The fresh heap cuts the first small span where the large object
 * was. */
static const size_t small_sizes[] = {8, 1024, 6528, SC_MAX_SMALL};

START_TEST(test_dirty_pages_zeroed_for_small_objects)
{
    unsigned cls = sc_size_to_class(small_sizes[_i]);
    size_t size = sc_class_size[cls];
    unsigned char *big = gc_alloc_noscan(MIB);
    ck_assert_ptr_nonnull(big);
    memset(big, 0xab, MIB);
    gc_free(big);
    for (unsigned i = 0; i < sc_class_nelems[cls]; i++) {
        unsigned char *p = gc_alloc(size);
        ck_assert_ptr_nonnull(p);
        if (i == 0)
            ck_assert_ptr_eq(p, big);
        ck_assert_msg(all_zero(p, size), "object %u of %zu bytes not zeroed", i, size);
    }
}
END_TEST

/* ---- limits and misuse ---- */

START_TEST(test_out_of_address_space)
{
    struct heap_stats before = stats();
    errno = 0;
    ck_assert_ptr_null(heap_alloc(before.reserved / PAGE + 1, LARGE));
    ck_assert_int_eq(errno, ENOMEM);
    static const size_t sizes[] = {SIZE_MAX, SIZE_MAX - PAGE, SIZE_MAX / 2};
    for (size_t k = 0; k < ARRAY_LEN(sizes); k++) {
        errno = 0;
        void *p = gc_alloc(sizes[k]);
        ck_assert_msg(p == NULL && errno == ENOMEM, "gc_alloc(%zu): %p, errno %d", sizes[k], p,
                      errno);
    }
    ck_assert(heap_is_valid());
    struct heap_stats after = stats();
    ck_assert_uint_eq(after.committed, before.committed);
    ck_assert_uint_eq(after.in_use, before.in_use);
}
END_TEST

static void free_twice(void *p)
{
    gc_free(p);
    gc_free(p);
}

static void free_second_page(void *p)
{
    gc_free((char *)p + PAGE);
}

START_TEST(test_large_misuse_aborts)
{
    void *p = gc_alloc(MIB);
    ck_assert_ptr_nonnull(p);
    expect_abort(free_twice, p, "gc_free()", p);
    expect_abort(free_second_page, p, "inside an object", (char *)p + PAGE);
}
END_TEST

/* ---- metadata ---- */

START_TEST(test_meta_alloc_is_zeroed_and_outside_the_heap)
{
    static const size_t sizes[] = {1, 16, 100, 4096, 300000};
    unsigned char *prev = NULL;
    for (size_t k = 0; k < ARRAY_LEN(sizes); k++) {
        unsigned char *m = heap_meta_alloc(sizes[k]);
        ck_assert_ptr_nonnull(m);
        ck_assert_ptr_ne(m, prev);
        ck_assert(all_zero(m, sizes[k]));
        ck_assert_ptr_null(heap_span_of(m));
        ck_assert_ptr_null(gc_base(m));
        memset(m, 0xff, sizes[k]);
        prev = m;
    }
}
END_TEST

/* A thread that allocates batches of objects of one class and frees them
 * reuses its own frees: memory stays bounded, for every class (single-object
 * spans of 32 KiB included). Loop index: size class. */
enum { BATCH = 100, ROUNDS = 200 };

static void alloc_free_batch(size_t size)
{
    void *batch[BATCH];
    for (int i = 0; i < BATCH; i++) {
        batch[i] = gc_alloc(size);
        ck_assert_ptr_nonnull(batch[i]);
    }
    for (int i = 0; i < BATCH; i++)
        gc_free(batch[i]);
}

START_TEST(test_alloc_free_batches_reuse)
{
    size_t size = sc_class_size[_i];
    struct heap_stats before, after;
    alloc_free_batch(size);
    heap_read_stats(&before);
    for (int r = 0; r < ROUNDS; r++)
        alloc_free_batch(size);
    heap_read_stats(&after);
    /* Two batches' worth of spans at most, however many rounds. */
    size_t per_span = (size_t)sc_class_npages[_i] << SC_PAGE_SHIFT;
    size_t bound = 2 * (BATCH / sc_class_nelems[_i] + 1) * per_span;
    ck_assert_msg(after.in_use - before.in_use <= bound,
                  "class %d (%zu B): in-use heap grew by %zu bytes over %d rounds", _i, size,
                  after.in_use - before.in_use, ROUNDS);
}
END_TEST

/* What a cycle's flip does to the page heap's spans, with the world as
 * good as stopped: this test thread is the only one in the allocator. */
static void flip(void)
{
    AO_store(&heap_sweepgen, heap_sweepgen + 2);
    central_flip();
    heap_flip_large();
}

/* While a sweep is unfinished, a thread about to take pages first sweeps
 * until as many went back to the page heap: an unmarked large span is
 * freed and its pages taken again instead of untouched ones; a marked one
 * stays, its mark cleared. The sweep keeps to its page count and its
 * budget of spans. */
START_TEST(test_reclaim_before_taking_pages)
{
    enum { N = 6, NPAGES = 16 };
    struct span *s[N];
    for (int i = 0; i < N; i++)
        s[i] = span_alloc(NPAGES);
    AO_store(&s[0]->mark_bits[0], 1);
    flip();
    ck_assert(heap_unswept_large());
    struct heap_stats before = stats();
    heap_enter();
    central_reclaim(NPAGES);
    heap_leave();
    ck_assert(heap_is_valid());
    ck_assert_uint_eq(before.in_use - stats().in_use, NPAGES * PAGE);
    struct span *again = span_alloc(NPAGES);
    ck_assert_uint_eq(stats().touched, before.touched);

    heap_enter();
    ck_assert_uint_eq(heap_sweep_large(SIZE_MAX, 2), 2 * NPAGES); /* two spans at most */
    ck_assert_uint_eq(heap_sweep_large(SIZE_MAX, SIZE_MAX), (N - 4) * NPAGES);
    heap_leave();
    ck_assert(!heap_unswept_large());
    ck_assert(heap_is_valid());
    ck_assert_uint_eq(AO_load(&s[0]->state), SPAN_IN_USE);
    ck_assert_uint_eq(AO_load(&s[0]->mark_bits[0]), 0);
    ck_assert_uint_eq(AO_load(&s[0]->sweepgen), heap_sweepgen);
    ck_assert_uint_eq(before.in_use - stats().in_use, (N - 2) * NPAGES * PAGE);
    span_free(s[0]);
    span_free(again);
}
END_TEST

static Suite *make_suite(void)
{
    /* These tests drive the allocator with explicit gc_free and keep their
     * objects in malloc'd arrays, which the collector does not scan:
     * automatic collection stays off (the collector has its own suites). */
    gc_set_percent(-1);
    Suite *s = suite_create("heap");
    TCase *pages = tcase_create("pages");
    tcase_add_checked_fixture(pages, init_fixture, NULL);
    tcase_add_loop_test(pages, test_alloc_then_free_in_order, 0, NUM_ORDERS);
    tcase_add_test(pages, test_random_churn);
    tcase_add_loop_test(pages, test_coalesce, 0, (int)ARRAY_LEN(coalesce_orders));
    tcase_add_loop_test(pages, test_best_fit, 0, (int)ARRAY_LEN(best_fit_cases));
    tcase_add_test(pages, test_meta_alloc_is_zeroed_and_outside_the_heap);
    tcase_add_loop_test(pages, test_alloc_free_batches_reuse, 1, SC_NUM_CLASSES);
    suite_add_tcase(s, pages);

    TCase *growth = tcase_create("growth");
    tcase_add_checked_fixture(growth, init_fixture, NULL);
    tcase_add_loop_test(growth, test_growth_by_whole_arenas, 0, (int)ARRAY_LEN(growth_pages));
    tcase_add_test(growth, test_growth_across_arenas);
    tcase_add_test(growth, test_out_of_address_space);
    suite_add_tcase(s, growth);

    TCase *release = tcase_create("release");
    tcase_add_checked_fixture(release, init_fixture, NULL);
    tcase_add_loop_test(release, test_release_every_touched_free_page, 0, 2);
    tcase_add_test(release, test_release_highest_first_in_chunks);
    tcase_add_test(release, test_released_pages_handed_out_again);
    tcase_add_test(release, test_backed_run_preferred);
    suite_add_tcase(s, release);

    TCase *large = tcase_create("large");
    tcase_add_checked_fixture(large, init_fixture, NULL);
    tcase_add_loop_test(large, test_large_object, 0, 2 * (int)ARRAY_LEN(large_sizes));
    tcase_add_loop_test(large, test_large_object_reused_zeroed, 0, 2 * (int)ARRAY_LEN(large_sizes));
    tcase_add_loop_test(large, test_dirty_pages_zeroed_for_small_objects, 0,
                        (int)ARRAY_LEN(small_sizes));
    tcase_add_test(large, test_large_misuse_aborts);
    tcase_add_test(large, test_reclaim_before_taking_pages);
    suite_add_tcase(s, large);
    return s;
}

TEST_MAIN(make_suite)

/*
 * test_api.c — the public allocation API of tricolor.h, one thread.
 *
 * Layers, from the contract outwards:
 *   init      gc_init is optional and idempotent.
 *   alloc     zeroed memory of usable size >= request, malloc alignment,
 *             unique objects for size 0, zeroing of reused slots, gc_calloc,
 *             gc_strdup and the ENOMEM contract for impossible sizes.
 *   realloc   contents kept up to the smaller size, grown bytes zero, kind
 *             (scan or noscan) kept, failure leaves the object untouched,
 *             long realloc chains.
 *   lookup    gc_base and gc_size on interior, freed and foreign addresses.
 *   misuse    every pointer the heap does not own, and every double free,
 *             stops with one line naming the function and the address.
 */
#include <errno.h>
#include <stdbool.h>

#include "../allocator/heap.h"
#include "testutil.h"
#include "tricolor.h"

#define LARGE_MIN ((size_t)SC_MAX_SMALL + 1)

enum kind { SCAN, NOSCAN };

static const size_t contract_sizes[] = {
    0, 1, 7, 8, 9, 15, 16, 17, 24, 32, 48, 100, 1024, 1025, 4096, 32767, 32768, 32769, 1 << 20,
};

static const size_t realloc_sizes[] = {
    1, 8, 15, 16, 100, 1000, 1024, 1025, 4000, 32768, 32769, 40000, 100000, (size_t)1 << 20,
};

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ---- */

static void *alloc_kind(enum kind k, size_t size)
{
    return k == NOSCAN ? gc_alloc_noscan(size) : gc_alloc(size);
}

/* The noscan bit of the span class holding `p`. */
static enum kind kind_of(const void *p)
{
    struct span *s = heap_span_of(p);
    ck_assert_ptr_nonnull(s);
    return (s->spanclass & 1) ? NOSCAN : SCAN;
}

static size_t first_nonzero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return i;
    return n;
}

static unsigned char pattern_byte(size_t i, uint64_t seed)
{
    return (unsigned char)((i * 0x9e3779b97f4a7c15u + seed) >> 56 | 1);
}

static void fill(void *p, size_t n, uint64_t seed)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = pattern_byte(i, seed);
}

static void expect_pattern(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != pattern_byte(i, seed))
            ck_abort_msg("%p: byte %zu of %zu is %#x, expected %#x", p, i, n, b[i],
                         pattern_byte(i, seed));
}

/* A fresh object as the contract promises it, for a request of `size`. */
static void expect_fresh(const void *p, size_t size)
{
    ck_assert_msg(p != NULL, "allocation of %zu bytes failed", size);
    size_t usable = gc_size(p);
    ck_assert_msg(usable >= size, "gc_size %zu < request %zu", usable, size);
    size_t z = first_nonzero(p, usable);
    ck_assert_msg(z == usable, "%zu-byte object %p: byte %zu not zero", size, p, z);
    size_t align = size && size % 16 == 0 ? 16 : 8; /* nothing fits in 0 bytes */
    ck_assert_msg((uintptr_t)p % align == 0, "%zu-byte object %p not %zu-aligned", size, p,
                  align);
    ck_assert_ptr_eq(gc_base(p), p);
    ck_assert_ptr_eq(gc_base((const char *)p + usable - 1), p);
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return (x > y) - (x < y);
}

/* ---- init ---- */

START_TEST(init_is_idempotent)
{
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(gc_init(), 0);
    void *p = gc_alloc(10);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(gc_init(), 0);
    gc_free(p);
}
END_TEST

START_TEST(alloc_without_init)
{
    /* Each test runs in a fresh process: this is the first call. */
    void *p = gc_alloc(24);
    expect_fresh(p, 24);
    ck_assert_int_eq(gc_init(), 0);
    gc_free(p);
}
END_TEST

/* ---- alloc ---- */

START_TEST(alloc_contract_sizes)
{
    enum kind k = (enum kind)_i;
    for (size_t i = 0; i < NELEMS(contract_sizes); i++) {
        size_t size = contract_sizes[i];
        void *p = alloc_kind(k, size);
        expect_fresh(p, size);
        ck_assert_int_eq(kind_of(p), k);
        fill(p, gc_size(p), size);
        gc_free(p);
    }
}
END_TEST

START_TEST(alloc_every_small_size)
{
    enum kind k = (enum kind)_i;
    for (size_t size = 0; size <= SC_MAX_SMALL; size++) {
        void *p = alloc_kind(k, size);
        expect_fresh(p, size);
        memset(p, 0xa5, gc_size(p));
        gc_free(p);
    }
}
END_TEST

START_TEST(alloc_zero_is_unique)
{
    enum { N = 2000 };
    void **objs = malloc(N * sizeof *objs);
    for (int i = 0; i < N; i++) {
        objs[i] = alloc_kind(i % 2 ? NOSCAN : SCAN, 0);
        ck_assert_ptr_nonnull(objs[i]);
        ck_assert_ptr_eq(gc_base(objs[i]), objs[i]);
    }
    qsort(objs, N, sizeof *objs, cmp_ptr);
    for (int i = 1; i < N; i++)
        ck_assert_ptr_ne(objs[i - 1], objs[i]);
    for (int i = 0; i < N; i++)
        gc_free(objs[i]);
    free(objs);
}
END_TEST

/* Fill and free `n` objects of `size`, allocate `n` again: every new one is
 * zero, and some of them reuse freed addresses. */
static void check_reuse_is_zeroed(enum kind k, size_t size, int n)
{
    void **old = malloc((size_t)n * sizeof *old);
    for (int i = 0; i < n; i++) {
        old[i] = alloc_kind(k, size);
        ck_assert_ptr_nonnull(old[i]);
        memset(old[i], 0xff, gc_size(old[i]));
    }
    for (int i = 0; i < n; i++)
        gc_free(old[i]);
    qsort(old, (size_t)n, sizeof *old, cmp_ptr);
    int reused = 0;
    void **fresh = malloc((size_t)n * sizeof *fresh);
    for (int i = 0; i < n; i++) {
        fresh[i] = alloc_kind(k, size);
        expect_fresh(fresh[i], size);
        reused += bsearch(&fresh[i], old, (size_t)n, sizeof *old, cmp_ptr) != NULL;
    }
    ck_assert_msg(reused > 0, "no freed %zu-byte slot was reused", size);
    for (int i = 0; i < n; i++)
        gc_free(fresh[i]);
    free(old);
    free(fresh);
}

START_TEST(reused_memory_is_zeroed)
{
    enum kind k = (enum kind)_i;
    for (size_t i = 0; i < NELEMS(contract_sizes); i++) {
        size_t size = contract_sizes[i];
        check_reuse_is_zeroed(k, size, size >= LARGE_MIN ? 4 : 2500);
    }
}
END_TEST

START_TEST(calloc_zeroed)
{
    uint64_t *a = gc_calloc(1000, sizeof *a);
    expect_fresh(a, 1000 * sizeof *a);
    ck_assert_int_eq(kind_of(a), SCAN);
    void *b = gc_calloc(0, 16), *c = gc_calloc(16, 0), *d = gc_calloc(SIZE_MAX, 0);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_ne(b, c);
    ck_assert_ptr_ne(c, d);
    void *e = gc_calloc(3, 20000);
    expect_fresh(e, 60000);
    gc_free(a);
    gc_free(b);
    gc_free(c);
    gc_free(d);
    gc_free(e);
}
END_TEST

static void expect_enomem(void *p)
{
    ck_assert_ptr_null(p);
    ck_assert_int_eq(errno, ENOMEM);
    errno = 0;
}

START_TEST(calloc_overflow)
{
    errno = 0;
    expect_enomem(gc_calloc(SIZE_MAX, 2));
    expect_enomem(gc_calloc(2, SIZE_MAX));
    expect_enomem(gc_calloc(SIZE_MAX / 2 + 1, 2));
    expect_enomem(gc_calloc((size_t)1 << 32, (size_t)1 << 32));
    expect_enomem(gc_calloc(2, SIZE_MAX / 2)); /* no overflow, just too big */
}
END_TEST

START_TEST(alloc_impossible_sizes)
{
    enum kind k = (enum kind)_i;
    const size_t sizes[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - SC_PAGE_SIZE, SIZE_MAX / 2,
                            (size_t)1 << 62, (size_t)1 << 50};
    errno = 0;
    for (size_t i = 0; i < NELEMS(sizes); i++)
        expect_enomem(alloc_kind(k, sizes[i]));
    void *p = alloc_kind(k, 100); /* the heap still works */
    expect_fresh(p, 100);
    gc_free(p);
}
END_TEST

START_TEST(strdup_copies)
{
    const char *cases[] = {"", "a", "hello, world", "exactly-16-bytes"};
    for (size_t i = 0; i < NELEMS(cases); i++) {
        char *s = gc_strdup(cases[i]);
        ck_assert_ptr_nonnull(s);
        ck_assert_ptr_ne(s, cases[i]);
        ck_assert_str_eq(s, cases[i]);
        ck_assert_uint_ge(gc_size(s), strlen(cases[i]) + 1);
        ck_assert_int_eq(kind_of(s), NOSCAN);
        gc_free(s);
    }
    size_t n = 100000;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    big[n] = 0;
    char *s = gc_strdup(big);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(strcmp(s, big), 0);
    ck_assert_int_eq(kind_of(s), NOSCAN);
    gc_free(s);
    free(big);
}
END_TEST

START_TEST(free_null_is_noop)
{
    gc_free(NULL);
    void *p = gc_alloc(8);
    gc_free(NULL);
    expect_fresh(p, 8);
    gc_free(p);
}
END_TEST

/* ---- realloc ---- */

START_TEST(realloc_null_allocates)
{
    const size_t sizes[] = {0, 1, 100, 32768, 40000};
    for (size_t i = 0; i < NELEMS(sizes); i++) {
        void *p = gc_realloc(NULL, sizes[i]);
        expect_fresh(p, sizes[i]);
        ck_assert_int_eq(kind_of(p), SCAN);
        gc_free(p);
    }
}
END_TEST

/* Resize a `from`-byte object of kind `k` filled with a pattern to `to`. */
static void check_resize(enum kind k, size_t from, size_t to)
{
    uint64_t seed = from * 31 + to;
    void *p = alloc_kind(k, from);
    ck_assert_ptr_nonnull(p);
    fill(p, from, seed);
    void *q = gc_realloc(p, to);
    ck_assert_msg(q != NULL, "realloc %zu -> %zu failed", from, to);
    ck_assert_ptr_eq(gc_base(q), q);
    ck_assert_uint_ge(gc_size(q), to);
    ck_assert_msg(kind_of(q) == k, "realloc %zu -> %zu lost the noscan kind", from, to);
    size_t keep = from < to ? from : to;
    expect_pattern(q, keep, seed);
    size_t z = keep + first_nonzero((char *)q + keep, gc_size(q) - keep);
    ck_assert_msg(z == gc_size(q), "realloc %zu -> %zu: grown byte %zu not zero", from, to, z);
    if (q != p)
        ck_assert_msg(gc_base(p) == NULL, "realloc %zu -> %zu kept the old object", from, to);
    gc_free(q);
}

START_TEST(realloc_size_pairs)
{
    enum kind k = (enum kind)_i;
    for (size_t i = 0; i < NELEMS(realloc_sizes); i++)
        for (size_t j = 0; j < NELEMS(realloc_sizes); j++)
            check_resize(k, realloc_sizes[i], realloc_sizes[j]);
}
END_TEST

START_TEST(realloc_to_zero_keeps_kind)
{
    enum kind k = (enum kind)_i;
    const size_t sizes[] = {1, 100, 40000};
    for (size_t i = 0; i < NELEMS(sizes); i++) {
        void *other = alloc_kind(k, 0);
        void *p = alloc_kind(k, sizes[i]);
        fill(p, sizes[i], 7);
        void *q = gc_realloc(p, 0);
        ck_assert_ptr_nonnull(q);
        ck_assert_ptr_ne(q, other);
        ck_assert_ptr_eq(gc_base(q), q);
        ck_assert_int_eq(kind_of(q), k);
        gc_free(q);
        gc_free(other);
    }
}
END_TEST

/* Shrinking in place and growing back exposes zeros, not the old bytes. */
START_TEST(realloc_shrink_then_grow_is_zero)
{
    enum kind k = (enum kind)_i;
    const size_t sizes[] = {100, 1000, 20000, 100000};
    for (size_t i = 0; i < NELEMS(sizes); i++) {
        size_t size = sizes[i];
        unsigned char *p = alloc_kind(k, size);
        memset(p, 0xee, gc_size(p));
        unsigned char *q = gc_realloc(p, size - 10);
        ck_assert_ptr_nonnull(q);
        for (size_t j = 0; j < size - 10; j++)
            ck_assert_uint_eq(q[j], 0xee);
        unsigned char *r = gc_realloc(q, size);
        ck_assert_ptr_nonnull(r);
        ck_assert_uint_eq(first_nonzero(r + size - 10, gc_size(r) - (size - 10)),
                          gc_size(r) - (size - 10));
        gc_free(r);
    }
}
END_TEST

START_TEST(realloc_overflow_leaves_object)
{
    enum kind k = (enum kind)_i;
    const size_t sizes[] = {0, 24, 4096, 32768, 40000};
    const size_t huge[] = {SIZE_MAX, SIZE_MAX - SC_PAGE_SIZE + 2, SIZE_MAX / 2};
    for (size_t i = 0; i < NELEMS(sizes); i++) {
        void *p = alloc_kind(k, sizes[i]);
        size_t usable = gc_size(p);
        fill(p, usable, i);
        for (size_t j = 0; j < NELEMS(huge); j++) {
            errno = 0;
            expect_enomem(gc_realloc(p, huge[j]));
            ck_assert_ptr_eq(gc_base(p), p);
            ck_assert_uint_eq(gc_size(p), usable);
            expect_pattern(p, usable, i);
        }
        gc_free(p);
    }
}
END_TEST

struct node {
    size_t index;
    struct node *self;
};

static void check_chain(struct node **buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ck_assert_ptr_nonnull(buf[i]);
        ck_assert_uint_eq(buf[i]->index, i);
        ck_assert_ptr_eq(buf[i]->self, buf[i]);
    }
}

/* A vector of pointers to heap nodes, grown one slot per realloc through
 * small and large sizes, then shrunk back. */
START_TEST(realloc_pointer_chain)
{
    enum { N = 5000 };
    struct node **buf = NULL;
    for (size_t n = 1; n <= N; n++) {
        buf = gc_realloc(buf, n * sizeof *buf);
        ck_assert_ptr_nonnull(buf);
        ck_assert_ptr_null(buf[n - 1]);
        struct node *nd = gc_alloc(sizeof *nd);
        ck_assert_ptr_nonnull(nd);
        nd->index = n - 1;
        GC_WRITE(nd->self, nd);
        GC_WRITE(buf[n - 1], nd);
        if (n % 97 == 0 || n == N)
            check_chain(buf, n);
    }
    ck_assert_int_eq(kind_of(buf), SCAN);
    for (size_t n = N; n > 0; n--) {
        gc_free(buf[n - 1]);
        buf = gc_realloc(buf, (n - 1) * sizeof *buf);
        ck_assert_ptr_nonnull(buf);
        if (n % 89 == 0)
            check_chain(buf, n - 1);
    }
    gc_free(buf);
}
END_TEST

/* A noscan string builder: stays noscan from 1 byte to 200 KB. */
START_TEST(realloc_noscan_chain)
{
    char *s = gc_alloc_noscan(1);
    size_t len = 0;
    while (len < 200000) {
        size_t add = 1 + len / 8;
        s = gc_realloc(s, len + add + 1);
        ck_assert_ptr_nonnull(s);
        ck_assert_int_eq(kind_of(s), NOSCAN);
        ck_assert_uint_eq(s[len], 0);
        for (size_t i = 0; i < add; i++)
            s[len + i] = (char)('A' + (len + i) % 23);
        len += add;
    }
    for (size_t i = 0; i < len; i++)
        ck_assert_int_eq(s[i], 'A' + i % 23);
    gc_free(s);
}
END_TEST

/* ---- lookup ---- */

START_TEST(base_of_interior_pointers)
{
    const size_t sizes[] = {1, 24, 100, 5000, 32768, 40000, 300000};
    for (size_t i = 0; i < NELEMS(sizes); i++) {
        char *p = gc_alloc(sizes[i]);
        size_t usable = gc_size(p);
        for (size_t off = 0; off < usable; off += 1 + off / 3)
            ck_assert_ptr_eq(gc_base(p + off), p);
        ck_assert_ptr_eq(gc_base(p + usable - 1), p);
        gc_free(p);
    }
}
END_TEST

START_TEST(base_of_non_objects)
{
    int local = 0;
    void *m = calloc(1, 64);
    ck_assert_int_eq(gc_init(), 0);
    ck_assert_ptr_null(gc_base(NULL));
    ck_assert_ptr_null(gc_base((void *)1));
    ck_assert_ptr_null(gc_base(&local));
    ck_assert_ptr_null(gc_base(m));
    ck_assert_ptr_null(gc_base(contract_sizes));
    ck_assert_ptr_null(gc_base((void *)UINTPTR_MAX));
    ck_assert_ptr_null(gc_base((void *)(heap_base - 1)));
    ck_assert_ptr_null(gc_base((void *)heap_base)); /* nothing allocated yet */
    free(m);
}
END_TEST

START_TEST(base_of_freed_and_unused_memory)
{
    char *small = gc_alloc(24), *keep = gc_alloc(24);
    char *large = gc_alloc(100000);
    /* The 24-byte class leaves an 8-byte tail at the end of its page. */
    struct span *s = heap_span_of(small);
    uintptr_t tail = s->start + (uintptr_t)s->nelems * s->elemsize;
    ck_assert_uint_lt(tail, s->start + s->npages * SC_PAGE_SIZE);
    ck_assert_ptr_null(gc_base((void *)tail));
    uintptr_t last = s->start + (uintptr_t)(s->nelems - 1) * s->elemsize; /* never handed out */
    ck_assert_ptr_null(gc_base((void *)last));
    gc_free(small);
    gc_free(large);
    ck_assert_ptr_null(gc_base(small));
    ck_assert_ptr_null(gc_base(small + 5));
    ck_assert_ptr_null(gc_base(large));
    ck_assert_ptr_null(gc_base(large + SC_PAGE_SIZE));
    ck_assert_ptr_null(gc_base(large + 99999));
    ck_assert_ptr_eq(gc_base(keep + 3), keep);
    gc_free(keep);
}
END_TEST

/* ---- misuse: one line naming the function and the address, then abort ---- */

static void free_it(void *p)
{
    gc_free(p);
}

static void size_it(void *p)
{
    (void)gc_size(p);
}

static void realloc_it(void *p)
{
    (void)!gc_realloc(p, 64);
}

static void free_twice(void *p)
{
    gc_free(p);
    gc_free(p);
}

START_TEST(free_stack_pointer_aborts)
{
    long local[4] = {0};
    ck_assert_int_eq(gc_init(), 0);
    expect_abort(free_it, local, "gc_free", local);
    expect_abort(free_it, &local[1], "gc_free", &local[1]);
}
END_TEST

START_TEST(free_malloc_pointer_aborts)
{
    void *m = calloc(1, 32);
    expect_abort(free_it, m, "gc_free", m);
    free(m);
}
END_TEST

START_TEST(free_interior_pointer_aborts)
{
    char *p = gc_alloc(32);
    expect_abort(free_it, p + 8, "gc_free", p + 8);
    char *big = gc_alloc(100000);
    expect_abort(free_it, big + 8, "gc_free", big + 8);
    expect_abort(free_it, big + SC_PAGE_SIZE, "gc_free", big + SC_PAGE_SIZE);
    gc_free(p);
    gc_free(big);
}
END_TEST

START_TEST(double_free_small_aborts)
{
    void *p = gc_alloc(48);
    expect_abort(free_twice, p, "gc_free", p);
    void *q = gc_alloc_noscan(8);
    expect_abort(free_twice, q, "gc_free", q);
}
END_TEST

START_TEST(double_free_large_aborts)
{
    void *p = gc_alloc(100000);
    expect_abort(free_twice, p, "gc_free", p);
    void *q = gc_alloc_noscan(LARGE_MIN);
    expect_abort(free_twice, q, "gc_free", q);
}
END_TEST

START_TEST(size_of_non_heap_pointer_aborts)
{
    int local = 0;
    void *m = calloc(1, 16);
    expect_abort(size_it, &local, "gc_size", &local);
    expect_abort(size_it, m, "gc_size", m);
    char *p = gc_alloc(64);
    expect_abort(size_it, p + 1, "gc_size", p + 1);
    gc_free(p);
    expect_abort(size_it, p, "gc_size", p);
    free(m);
}
END_TEST

START_TEST(realloc_non_heap_pointer_aborts)
{
    int local = 0;
    void *m = calloc(1, 16);
    expect_abort(realloc_it, &local, "gc_realloc", &local);
    expect_abort(realloc_it, m, "gc_realloc", m);
    char *p = gc_alloc(64);
    expect_abort(realloc_it, p + 16, "gc_realloc", p + 16);
    gc_free(p);
    expect_abort(realloc_it, p, "gc_realloc", p);
    free(m);
}
END_TEST

/* A stale pointer stays invalid while other allocations (other classes,
 * large objects, frees) go on around it. */
START_TEST(free_stale_pointer_after_allocations_aborts)
{
    void *p = gc_alloc(48);
    void *neighbour = gc_alloc(48);
    gc_free(p);
    uint64_t rng = 12345;
    void *live[64] = {0};
    for (int i = 0; i < 5000; i++) {
        size_t size = 1 + test_rand(&rng) % 40000;
        if (size > 32 && size <= 48)
            size = 64; /* keep p's class out of it: p's slot must stay free */
        int j = (int)(test_rand(&rng) % 64);
        gc_free(live[j]);
        live[j] = gc_alloc(size);
        ck_assert_ptr_nonnull(live[j]);
    }
    ck_assert_ptr_null(gc_base(p));
    expect_abort(free_it, p, "gc_free", p);
    expect_abort(size_it, p, "gc_size", p);
    gc_free(neighbour);
    for (int j = 0; j < 64; j++)
        gc_free(live[j]);
}
END_TEST

/* ---- suite ---- */

static void add_kinds(TCase *tc, const TTest *t)
{
    tcase_add_loop_test(tc, t, SCAN, NOSCAN + 1);
}

static Suite *make_suite(void)
{
    /* These tests drive the allocator with explicit gc_free and keep their
     * objects in malloc'd arrays, which the collector does not scan:
     * automatic collection stays off (the collector has its own suites). */
    gc_set_percent(-1);
    Suite *s = suite_create("api");

    TCase *tc = tcase_create("init");
    tcase_add_test(tc, init_is_idempotent);
    tcase_add_test(tc, alloc_without_init);
    suite_add_tcase(s, tc);

    tc = tcase_create("alloc");
    tcase_set_timeout(tc, 60);
    add_kinds(tc, alloc_contract_sizes);
    add_kinds(tc, alloc_every_small_size);
    add_kinds(tc, reused_memory_is_zeroed);
    add_kinds(tc, alloc_impossible_sizes);
    tcase_add_test(tc, alloc_zero_is_unique);
    tcase_add_test(tc, calloc_zeroed);
    tcase_add_test(tc, calloc_overflow);
    tcase_add_test(tc, strdup_copies);
    tcase_add_test(tc, free_null_is_noop);
    suite_add_tcase(s, tc);

    tc = tcase_create("realloc");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, realloc_null_allocates);
    add_kinds(tc, realloc_size_pairs);
    add_kinds(tc, realloc_to_zero_keeps_kind);
    add_kinds(tc, realloc_shrink_then_grow_is_zero);
    add_kinds(tc, realloc_overflow_leaves_object);
    tcase_add_test(tc, realloc_pointer_chain);
    tcase_add_test(tc, realloc_noscan_chain);
    suite_add_tcase(s, tc);

    tc = tcase_create("lookup");
    tcase_add_test(tc, base_of_interior_pointers);
    tcase_add_test(tc, base_of_non_objects);
    tcase_add_test(tc, base_of_freed_and_unused_memory);
    suite_add_tcase(s, tc);

    tc = tcase_create("misuse");
    tcase_add_test(tc, free_stack_pointer_aborts);
    tcase_add_test(tc, free_malloc_pointer_aborts);
    tcase_add_test(tc, free_interior_pointer_aborts);
    tcase_add_test(tc, double_free_small_aborts);
    tcase_add_test(tc, double_free_large_aborts);
    tcase_add_test(tc, size_of_non_heap_pointer_aborts);
    tcase_add_test(tc, realloc_non_heap_pointer_aborts);
    tcase_add_test(tc, free_stale_pointer_after_allocations_aborts);
    suite_add_tcase(s, tc);
    return s;
}

TEST_MAIN(make_suite)

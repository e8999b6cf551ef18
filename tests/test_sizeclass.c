/*
 * test_sizeclass.c — the size-class table and its pure lookups.
 *
 * Everything here is checked against the definition rather than against the
 * generated numbers: a request maps to the smallest class that holds it, a
 * span of a class holds as many objects as fit, and the multiply-and-shift
 * object index equals the division it replaces for every offset of every
 * span. The span-class encoding is checked to round-trip.
 *
 * Loops over many values test with a plain `if` and ck_abort_msg: every
 * ck_assert reports a mark point to the parent process, which would make
 * million-iteration loops slow.
 */
#include <sizeclass.h>

#include "testutil.h"

#define NUM_SMALL_CLASSES (SC_NUM_CLASSES - 1) /* classes 1 .. SC_NUM_CLASSES-1 */

static size_t class_span_bytes(unsigned cls)
{
    return (size_t)sc_class_npages[cls] * SC_PAGE_SIZE;
}

/* The smallest class holding `size` bytes, found by walking the table. */
static unsigned smallest_fitting_class(size_t size)
{
    for (unsigned cls = 1; cls < SC_NUM_CLASSES; cls++)
        if (sc_class_size[cls] >= size)
            return cls;
    return 0;
}

/* ---- constants ---- */

START_TEST(test_constants_agree)
{
    ck_assert_uint_eq(SC_PAGE_SIZE, 1u << SC_PAGE_SHIFT);
    ck_assert_uint_eq(sc_class_size[0], 0);
    ck_assert_uint_eq(sc_class_size[SC_NUM_CLASSES - 1], SC_MAX_SMALL);
    ck_assert_uint_eq(SC_SMALL_SIZE_MAX % SC_SMALL_SIZE_DIV, 0);
    ck_assert_uint_le(SC_NUM_SPAN_CLASSES, 256); /* struct span stores it in 8 bits */
    ck_assert_uint_le(SC_MAX_OBJECTS_PER_SPAN, UINT16_MAX);
}
END_TEST

/* ---- request size to class ---- */

static const struct {
    const char *name;
    size_t size;
    unsigned cls;
} named_sizes[] = {
    {"zero", 0, 1},
    {"one byte", 1, 1},
    {"first class exactly", 8, 1},
    {"just past first class", 9, 2},
    {"last of the 8-byte table", SC_SMALL_SIZE_MAX, 32},
    {"first of the 128-byte table", SC_SMALL_SIZE_MAX + 1, 33},
    {"one page", SC_PAGE_SIZE, 51},
    {"one page and a byte", SC_PAGE_SIZE + 1, 52},
    {"largest small object", SC_MAX_SMALL, SC_NUM_CLASSES - 1},
};

START_TEST(test_named_sizes)
{
    ck_assert_msg(sc_size_to_class(named_sizes[_i].size) == named_sizes[_i].cls,
                  "%s: size %zu maps to class %u, expected %u", named_sizes[_i].name,
                  named_sizes[_i].size, sc_size_to_class(named_sizes[_i].size),
                  named_sizes[_i].cls);
}
END_TEST

START_TEST(test_every_size_maps_to_smallest_fitting_class)
{
    for (size_t size = 1; size <= SC_MAX_SMALL; size++) {
        unsigned want = smallest_fitting_class(size);
        unsigned got = sc_size_to_class(size);
        if (got != want)
            ck_abort_msg("size %zu: class %u (%u bytes), expected %u (%u bytes)", size, got,
                         sc_class_size[got], want, sc_class_size[want]);
    }
}
END_TEST

/* gc_alloc promises 16-byte alignment for sizes that are multiples of 16;
 * spans start on a page, so the class size must keep that alignment. */
START_TEST(test_classes_keep_malloc_alignment)
{
    for (size_t size = 1; size <= SC_MAX_SMALL; size++) {
        uint32_t bytes = sc_class_size[sc_size_to_class(size)];
        size_t align = size % 16 == 0 ? 16 : 8;
        if (bytes % align != 0)
            ck_abort_msg("size %zu: class size %u is not %zu-aligned", size, bytes, align);
    }
}
END_TEST

/* ---- the table itself ---- */

START_TEST(test_class_sizes_strictly_increase)
{
    for (unsigned cls = 1; cls < SC_NUM_CLASSES; cls++)
        ck_assert_msg(sc_class_size[cls] > sc_class_size[cls - 1], "class %u: %u <= %u", cls,
                      sc_class_size[cls], sc_class_size[cls - 1]);
}
END_TEST

START_TEST(test_class_span_layout)
{
    unsigned cls = (unsigned)_i;
    size_t size = sc_class_size[cls];
    size_t span = class_span_bytes(cls);
    size_t nelems = sc_class_nelems[cls];
    ck_assert_uint_ge(sc_class_npages[cls], 1);
    ck_assert_uint_eq(nelems, span / size);
    ck_assert_uint_ge(nelems, 1);
    ck_assert_uint_lt(span - nelems * size, size);
    ck_assert_uint_le(nelems, SC_MAX_OBJECTS_PER_SPAN);
}
END_TEST

START_TEST(test_object_index_is_exact)
{
    unsigned cls = (unsigned)_i;
    uint32_t size = sc_class_size[cls];
    size_t span = class_span_bytes(cls);
    for (uintptr_t off = 0; off < span; off++) {
        uint32_t idx = sc_object_index(cls, off);
        if (idx != off / size)
            ck_abort_msg("class %u offset %zu: index %u, expected %zu", cls, (size_t)off, idx,
                         (size_t)(off / size));
    }
}
END_TEST

/* ---- span classes ---- */

START_TEST(test_span_class_round_trips)
{
    unsigned seen[SC_NUM_SPAN_CLASSES] = {0};
    for (unsigned cls = 0; cls < SC_NUM_CLASSES; cls++) {
        for (unsigned noscan = 0; noscan <= 1; noscan++) {
            unsigned sc = sc_span_class(cls, noscan);
            ck_assert_uint_lt(sc, SC_NUM_SPAN_CLASSES);
            ck_assert_uint_eq(sc_class_of_span_class(sc), cls);
            ck_assert_uint_eq(sc_noscan(sc), noscan);
            seen[sc]++;
        }
    }
    for (unsigned sc = 0; sc < SC_NUM_SPAN_CLASSES; sc++)
        ck_assert_msg(seen[sc] == 1, "span class %u produced %u times", sc, seen[sc]);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("sizeclass");
    TCase *lookup = tcase_create("lookup");
    tcase_add_test(lookup, test_constants_agree);
    tcase_add_loop_test(lookup, test_named_sizes, 0,
                        (int)(sizeof named_sizes / sizeof named_sizes[0]));
    tcase_add_test(lookup, test_every_size_maps_to_smallest_fitting_class);
    tcase_add_test(lookup, test_classes_keep_malloc_alignment);
    suite_add_tcase(s, lookup);

    TCase *table = tcase_create("table");
    tcase_add_test(table, test_class_sizes_strictly_increase);
    tcase_add_loop_test(table, test_class_span_layout, 1, 1 + NUM_SMALL_CLASSES);
    tcase_add_loop_test(table, test_object_index_is_exact, 1, 1 + NUM_SMALL_CLASSES);
    suite_add_tcase(s, table);

    TCase *spanclass = tcase_create("spanclass");
    tcase_add_test(spanclass, test_span_class_round_trips);
    suite_add_tcase(s, spanclass);
    return s;
}

TEST_MAIN(make_suite)

/*
 * mksizeclasses.c — writes allocator/sizeclasses.inc, the size-class tables.
 *
 * Usage: mksizeclasses [OUTFILE]   (writes stdout when OUTFILE is omitted)
 *
 * Small objects (at most MAX_SMALL bytes) are served from spans: runs of whole
 * pages cut into equal slots. A request is rounded up to one of a fixed list
 * of slot sizes, its size class; class 0 means "too big, the object gets a
 * span of its own". The list is the Go runtime's, chosen so that rounding
 * wastes at most about 12.5% of an object. Sizes are multiples of 8 up to
 * SMALL_SIZE_MAX and of 128 above it, the granularity of the lookup tables;
 * slot alignment follows from the size (8 for the 8- and 24-byte classes, 16
 * for the rest).
 *
 * For each class this program derives, and writes as C tables:
 *
 *   1. npages, the span length, exactly as Go's generator chooses it. Go
 *      walks candidate sizes from 8 to MAX_SMALL in steps of an alignment
 *      that grows at each power of two (16 from 32, size/8 from 128, 256
 *      from 2048). Each candidate gets the smallest whole number of pages
 *      whose tail left over after cutting slots is at most 1/8 of the span.
 *      A candidate with the same pages and object count as the class before
 *      it widens that class; any other starts a new class, which keeps the
 *      span of the candidate that started it. Last, each class grows to the
 *      largest size, on the 128-byte grain, that fits as many objects in its
 *      span. The walk must reproduce class_size, the list below, size for
 *      size. Because a class's span is fixed by its first candidate, it can
 *      be longer than the 1/8 rule gives for the final size (1792 bytes: two
 *      pages, not one). nelems = span bytes / size.
 *   2. divmul, a reciprocal that turns "which slot holds byte offset off of
 *      the span" into a multiply and a shift instead of a division:
 *          off / size == (uint32_t)(((uint64_t)off * divmul) >> 32)
 *      with divmul = 0xFFFFFFFF / size + 1. The identity is not exact for all
 *      offsets; it only needs to hold for offsets inside one span, and this
 *      program checks every one of them.
 *   3. Two lookup tables mapping a request size to its class without a
 *      search: size_to_class8 indexed by (size + 7) >> 3 for sizes up to
 *      SMALL_SIZE_MAX, size_to_class128 indexed by
 *      (size - SMALL_SIZE_MAX + 127) >> 7 above it. Each entry holds the
 *      smallest class that fits every size mapping to it; size 0 is served
 *      as the 8-byte class.
 *
 * Nothing is written until every check passes: class sizes strictly
 * increasing and on the lookup granularity, Go's walk reproducing them,
 * counts fitting their table types, divmul exact over each span, and the
 * lookup giving the smallest fitting class for every size from 1 to
 * MAX_SMALL. A failed check prints what broke and exits with 1, so a bad
 * edit to the class list cannot reach the tree. The output depends on
 * nothing but this file, so regenerating it is a no-op unless the list
 * changes.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum {
    PAGE_SHIFT = 13,
    PAGE_SIZE = 1 << PAGE_SHIFT,
    MAX_SMALL = 32768,
    SMALL_SIZE_MAX = 1024,
    SMALL_SIZE_DIV = 8,
    LARGE_SIZE_DIV = 128,
    TO8_LEN = SMALL_SIZE_MAX / SMALL_SIZE_DIV + 1,
    TO128_LEN = (MAX_SMALL - SMALL_SIZE_MAX) / LARGE_SIZE_DIV + 1,
};

/* Object size of each class; index is the class number, class 0 is "large". */
static const uint32_t class_size[] = {
    0,     8,     16,    24,    32,    48,    64,    80,    96,    112,   128,   144,
    160,   176,   192,   208,   224,   240,   256,   288,   320,   352,   384,   416,
    448,   480,   512,   576,   640,   704,   768,   896,   1024,  1152,  1280,  1408,
    1536,  1792,  2048,  2304,  2688,  3072,  3200,  3456,  4096,  4864,  5376,  6144,
    6528,  6784,  6912,  8192,  9472,  9728,  10240, 10880, 12288, 13568, 14336, 16384,
    18432, 19072, 20480, 21760, 24576, 27264, 28672, 32768,
};

#define NUM_CLASSES (sizeof class_size / sizeof class_size[0])

/* The classes Go's walk finds; class_size must equal size, class for class. */
struct walk {
    uint32_t n; /* classes found, counting class 0 */
    uint32_t size[NUM_CLASSES];
    uint32_t npages[NUM_CLASSES];
};

/* Everything the output file holds, derived from class_size and the walk. */
struct tables {
    uint32_t npages[NUM_CLASSES];
    uint32_t nelems[NUM_CLASSES];
    uint32_t divmul[NUM_CLASSES];
    uint32_t to8[TO8_LEN];
    uint32_t to128[TO128_LEN];
    uint32_t max_objects; /* largest nelems over all classes */
};

static void fail(const char *fmt, ...)
{
    va_list ap;

    fputs("mksizeclasses: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* ---- deriving the tables ---- */

/* Go's rule for one candidate size: the fewest pages whose tail is <= 1/8. */
static uint32_t span_pages(uint32_t size)
{
    uint32_t allocsize = PAGE_SIZE;

    while (allocsize % size > allocsize / 8)
        allocsize += PAGE_SIZE;
    return allocsize / PAGE_SIZE;
}

/* Go's step between candidate sizes, raised when size is a power of two. */
static uint32_t next_align(uint32_t size, uint32_t align)
{
    if ((size & (size - 1)) != 0) return align;
    if (size >= 2048) return 256;
    if (size >= 128) return size / 8;
    if (size >= 32) return 16;
    return align;
}

/* Widen the last class to `size`, or start a new class keeping `npages`. */
static void walk_add(struct walk *w, uint32_t size, uint32_t npages)
{
    uint32_t last = w->n - 1;
    uint32_t span = npages * PAGE_SIZE;

    if (last > 0 && w->npages[last] == npages && span / size == span / w->size[last]) {
        w->size[last] = size;
        return;
    }
    if (w->n == NUM_CLASSES) fail("Go's walk finds more than %zu classes", NUM_CLASSES - 1);
    w->size[w->n] = size;
    w->npages[w->n] = npages;
    w->n++;
}

/* Go's generator: the candidate walk, then each class grown to the largest
 * 128-byte multiple that fits as many objects in its span. */
static void walk_go_classes(struct walk *w)
{
    uint32_t align = 8;

    w->n = 1;
    w->size[0] = 0;
    w->npages[0] = 0;
    for (uint32_t size = align; size <= MAX_SMALL; size += align) {
        align = next_align(size, align);
        walk_add(w, size, span_pages(size));
    }
    for (uint32_t c = 1; c < w->n; c++) {
        uint32_t span = w->npages[c] * PAGE_SIZE;
        uint32_t widest = span / (span / w->size[c]) / LARGE_SIZE_DIV * LARGE_SIZE_DIV;

        if (widest > w->size[c]) w->size[c] = widest;
    }
}

/* The smallest class (never class 0) whose objects hold `size` bytes. */
static uint32_t smallest_class(uint32_t size)
{
    uint32_t c = 1;

    while (c < NUM_CLASSES && class_size[c] < size)
        c++;
    return c;
}

static void derive_classes(struct tables *t, const struct walk *w)
{
    t->max_objects = 0;
    for (uint32_t c = 1; c < NUM_CLASSES; c++) {
        t->npages[c] = w->npages[c];
        t->nelems[c] = t->npages[c] * PAGE_SIZE / class_size[c];
        t->divmul[c] = UINT32_MAX / class_size[c] + 1;
        if (t->nelems[c] > t->max_objects) t->max_objects = t->nelems[c];
    }
}

/* Entry i serves sizes up to i * 8 (to8) or SMALL_SIZE_MAX + i * 128 (to128). */
static void derive_lookup(struct tables *t)
{
    for (uint32_t i = 0; i < TO8_LEN; i++)
        t->to8[i] = smallest_class(i * SMALL_SIZE_DIV);
    for (uint32_t i = 0; i < TO128_LEN; i++)
        t->to128[i] = smallest_class(SMALL_SIZE_MAX + i * LARGE_SIZE_DIV);
}

/* ---- checking them ---- */

static void check_class_list(void)
{
    if (NUM_CLASSES > 256) fail("%zu classes do not fit the uint8_t lookup tables", NUM_CLASSES);
    if (class_size[0] != 0 || class_size[NUM_CLASSES - 1] != MAX_SMALL)
        fail("class list must run from 0 (large) to %d", MAX_SMALL);
    for (uint32_t c = 1; c < NUM_CLASSES; c++) {
        uint32_t s = class_size[c];
        uint32_t div = s <= SMALL_SIZE_MAX ? SMALL_SIZE_DIV : LARGE_SIZE_DIV;

        if (s <= class_size[c - 1])
            fail("class %" PRIu32 ": size %" PRIu32 " does not increase", c, s);
        if (s % div != 0)
            fail("class %" PRIu32 ": size %" PRIu32 " is not a multiple of %" PRIu32, c, s, div);
    }
}

static void check_walk(const struct walk *w)
{
    if (w->n != NUM_CLASSES)
        fail("Go's walk finds %" PRIu32 " classes, the list has %zu", w->n - 1, NUM_CLASSES - 1);
    for (uint32_t c = 1; c < NUM_CLASSES; c++)
        if (w->size[c] != class_size[c])
            fail("class %" PRIu32 ": Go's walk gives size %" PRIu32 ", the list %" PRIu32, c,
                 w->size[c], class_size[c]);
}

static void check_counts(const struct tables *t)
{
    for (uint32_t c = 1; c < NUM_CLASSES; c++) {
        if (t->npages[c] > UINT8_MAX)
            fail("class %" PRIu32 ": %" PRIu32 " pages overflow uint8_t", c, t->npages[c]);
        if (t->nelems[c] > UINT16_MAX)
            fail("class %" PRIu32 ": %" PRIu32 " objects overflow uint16_t", c, t->nelems[c]);
    }
}

/* The multiply-and-shift must equal the division at every offset of a span. */
static void check_divmul(const struct tables *t)
{
    for (uint32_t c = 1; c < NUM_CLASSES; c++) {
        uint32_t span = t->npages[c] * PAGE_SIZE;

        for (uint32_t off = 0; off < span; off++) {
            uint32_t got = (uint32_t)(((uint64_t)off * t->divmul[c]) >> 32);

            if (got != off / class_size[c])
                fail("class %" PRIu32 " (size %" PRIu32 "): divmul gives %" PRIu32
                     " for offset %" PRIu32 ", want %" PRIu32,
                     c, class_size[c], got, off, off / class_size[c]);
        }
    }
}

/* The lookup exactly as the allocator performs it. */
static uint32_t lookup(const struct tables *t, uint32_t size)
{
    if (size <= SMALL_SIZE_MAX) return t->to8[(size + SMALL_SIZE_DIV - 1) / SMALL_SIZE_DIV];
    return t->to128[(size - SMALL_SIZE_MAX + LARGE_SIZE_DIV - 1) / LARGE_SIZE_DIV];
}

static void check_lookup(const struct tables *t)
{
    for (uint32_t i = 0; i < TO128_LEN; i++)
        if (t->to128[i] == 0 || t->to128[i] >= NUM_CLASSES)
            fail("size_to_class128[%" PRIu32 "] = %" PRIu32 " is not a class", i, t->to128[i]);
    if (lookup(t, 0) != 1) fail("size 0 maps to class %" PRIu32 ", want 1", lookup(t, 0));
    for (uint32_t size = 1; size <= MAX_SMALL; size++) {
        uint32_t c = lookup(t, size);

        if (c == 0 || c >= NUM_CLASSES || class_size[c] < size || class_size[c - 1] >= size)
            fail("size %" PRIu32 " maps to class %" PRIu32 ", not the smallest that fits", size, c);
    }
}

/* ---- writing the output ---- */

static void emit_waste_table(FILE *out, const struct tables *t)
{
    uint32_t prev = 0;

    fputs(" * class  bytes/obj  bytes/span  objects  tail waste  max waste\n", out);
    for (uint32_t c = 1; c < NUM_CLASSES; c++) {
        uint32_t size = class_size[c];
        uint32_t span = t->npages[c] * PAGE_SIZE;
        uint32_t tail = span - size * t->nelems[c];
        double waste = (double)((size - prev - 1) * t->nelems[c] + tail) / (double)span;

        fprintf(out,
                " * %5" PRIu32 "  %9" PRIu32 "  %10" PRIu32 "  %7" PRIu32 "  %10" PRIu32
                "  %8.2f%%\n",
                c, size, span, t->nelems[c], tail, 100 * waste);
        prev = size;
    }
}

static void emit_header(FILE *out, const struct tables *t)
{
    fputs("/*\n"
          " * sizeclasses.inc — generated by tools/mksizeclasses.c; do not edit.\n"
          " * Change the generator there and regenerate:\n"
          " *     cc -std=c11 -O2 -o mksizeclasses tools/mksizeclasses.c\n"
          " *     ./mksizeclasses allocator/sizeclasses.inc\n"
          " * The includer provides <stdint.h>.\n"
          " *\n"
          " * Slot index of byte offset off in a span of class c:\n"
          " *     (uint32_t)(((uint64_t)off * sc_class_divmul[c]) >> 32)\n"
          " * Class of a request of size bytes (class 0: larger than SC_MAX_SMALL):\n"
          " *     size <= SC_SMALL_SIZE_MAX: sc_size_to_class8[(size + 7) >> 3]\n"
          " *     otherwise:                 sc_size_to_class128[(size - 1024 + 127) >> 7]\n"
          " *\n"
          " * max waste: the worst case, every object of the smallest size that maps\n"
          " * to the class, counting the span's tail.\n"
          " *\n",
          out);
    emit_waste_table(out, t);
    fputs(" */\n\n", out);
}

static void emit_defines(FILE *out, const struct tables *t)
{
    fprintf(out, "#define SC_NUM_CLASSES          %zu\n", NUM_CLASSES);
    fprintf(out, "#define SC_PAGE_SHIFT           %d\n", PAGE_SHIFT);
    fprintf(out, "#define SC_PAGE_SIZE            %d\n", PAGE_SIZE);
    fprintf(out, "#define SC_MAX_SMALL            %d\n", MAX_SMALL);
    fprintf(out, "#define SC_MAX_OBJECTS_PER_SPAN %" PRIu32 "\n", t->max_objects);
    fprintf(out, "#define SC_SMALL_SIZE_MAX       %d\n", SMALL_SIZE_MAX);
    fprintf(out, "#define SC_LARGE_SIZE_DIV       %d\n", LARGE_SIZE_DIV);
    fprintf(out, "#define SC_SMALL_SIZE_DIV       %d\n\n", SMALL_SIZE_DIV);
}

static int digits(uint32_t v)
{
    int n = 1;

    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* One array definition; each row starts with a comment giving its first index. */
static void emit_array(FILE *out, const char *decl, const uint32_t *v, uint32_t n, uint32_t per_row)
{
    uint32_t max = 0;
    int iw = digits(n - 1);

    for (uint32_t i = 0; i < n; i++)
        if (v[i] > max) max = v[i];
    fprintf(out, "%s = {\n", decl);
    for (uint32_t i = 0; i < n; i++) {
        if (i % per_row == 0) fprintf(out, "    /* %*" PRIu32 " */", iw, i);
        fprintf(out, " %*" PRIu32 ",", digits(max), v[i]);
        if (i % per_row == per_row - 1 || i == n - 1) fputc('\n', out);
    }
    fputs("};\n", out);
}

static void emit_tables(FILE *out, const struct tables *t)
{
    enum { CLASS_ROW = 8, LOOKUP_ROW = 16 };

    emit_array(out, "static const uint32_t sc_class_size[SC_NUM_CLASSES]", class_size, NUM_CLASSES,
               CLASS_ROW);
    fputc('\n', out);
    emit_array(out, "static const uint8_t sc_class_npages[SC_NUM_CLASSES]", t->npages, NUM_CLASSES,
               CLASS_ROW);
    fputc('\n', out);
    emit_array(out, "static const uint16_t sc_class_nelems[SC_NUM_CLASSES]", t->nelems, NUM_CLASSES,
               CLASS_ROW);
    fputc('\n', out);
    emit_array(out, "static const uint32_t sc_class_divmul[SC_NUM_CLASSES]", t->divmul, NUM_CLASSES,
               CLASS_ROW);
    fputc('\n', out);
    emit_array(out, "static const uint8_t sc_size_to_class8[129]", t->to8, TO8_LEN, LOOKUP_ROW);
    fputc('\n', out);
    emit_array(out, "static const uint8_t sc_size_to_class128[249]", t->to128, TO128_LEN,
               LOOKUP_ROW);
}

static void write_output(const char *path, const struct tables *t)
{
    FILE *out = path ? fopen(path, "w") : stdout;

    if (!out) fail("cannot open %s for writing", path);
    emit_header(out, t);
    emit_defines(out, t);
    emit_tables(out, t);
    int err = ferror(out);
    err |= path ? fclose(out) : fflush(out);
    if (err) fail("error writing %s", path ? path : "stdout");
}

int main(int argc, char **argv)
{
    static struct tables t;
    static struct walk w;

    if (argc > 2) fail("usage: mksizeclasses [OUTFILE]");
    _Static_assert(TO8_LEN == 129 && TO128_LEN == 249, "lookup table lengths are fixed");
    check_class_list();
    walk_go_classes(&w);
    check_walk(&w);
    derive_classes(&t, &w);
    derive_lookup(&t);
    check_counts(&t);
    check_divmul(&t);
    check_lookup(&t);
    write_output(argc == 2 ? argv[1] : NULL, &t);
    return 0;
}

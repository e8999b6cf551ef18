/*
 * bench_gcbench.c — GCBench (Boehm, Ellis, Kovac): tricolor against bdwgc and glibc malloc.
 *
 * Usage: bench_gcbench [-s SCALE] [-v VARIANT[,VARIANT...]] [-r REPEATS]
 *
 * Links with the static library, libatomic_ops and $(pkg-config --libs bdw-gc).
 *
 * The workload, as in the classic C GCBench. Nodes are struct node (two
 * pointers, two ints). First a stretch tree of depth 18 is built bottom-up
 * and dropped. Then a long-lived tree of depth 16 is built top-down and a
 * long-lived array of 500,000 doubles allocated and half filled; both stay
 * reachable to the end. Then for each depth d = 4, 6, ..., 16 the program
 * builds N(d) = 2 * tree_size(18) / tree_size(d) temporary trees top-down
 * (parent first, children stored into it) and N(d) more bottom-up (children
 * first), where tree_size(d) = 2^(d+1) - 1 nodes. Every tree's node count is
 * checked, and at the end the long-lived tree and array are checked too. -s S
 * subtracts S from every depth, for quick runs.
 *
 * Allocator variants are rows of one table (`variants`): a name, an
 * allocation function for nodes, one for the pointer-free array, a function
 * that frees a whole tree (NULL when a collector reclaims it) and a setup
 * function. Row 0, tricolor, is the variant the others are compared with:
 *   tricolor  gc_alloc for nodes, gc_alloc_noscan for the array, no frees;
 *   bdwgc     GC_MALLOC and GC_MALLOC_ATOMIC after GC_INIT, no frees;
 *   malloc    calloc (GCBench's nodes start zeroed) and malloc; each
 *             temporary tree freed recursively right after its check.
 * Pointer stores into nodes go through GC_WRITE in every variant, so that
 * one tree code serves all three. The bdwgc and malloc children never
 * allocate from tricolor, so it never collects there and the barrier costs
 * them its inline test at most.
 *
 * Measuring, as bench_child.h describes: each selected variant (-v, default
 * all, run in table order) runs in a child process of its own, which reports
 * the workload's wall time (setup excluded), its CPU time and peak RSS. A
 * child that crashes, fails a check or runs out of memory is reported as
 * failed. The measurement is repeated (-r, default 3) with the variants
 * interleaved, and of each variant the run with the shortest wall time counts.
 *
 * Output: one row per variant (wall seconds, CPU seconds, peak RSS), then
 * tricolor's wall time and peak RSS as ratios to each other variant. The
 * exit status is 1 when a variant failed, else 0.
 */
#define BENCH_NAME "bench_gcbench"

#include <gc.h> /* bdwgc; plain <gc.h> would find the collector's internal gc/gc.h */

#include "bench_child.h"
#include "tricolor.h"

enum {
    STRETCH_DEPTH = 18,
    LONG_LIVED_DEPTH = 16,
    MIN_DEPTH = 4,
    MAX_DEPTH = 16,
    MAX_SCALE = MIN_DEPTH, /* every depth stays >= 0 */
    DEFAULT_REPEATS = 3,
    MAX_REPEATS = 100,
    ARRAY_SIZE = 500000,
    ARRAY_PROBE = 1000, /* the element checked at the end */
};

struct node {
    struct node *left, *right;
    int i, j;
};

struct variant {
    const char *name;
    void *(*alloc)(size_t size);       /* zeroed, may hold pointers */
    void *(*alloc_data)(size_t size);  /* never holds pointers */
    void (*free_tree)(struct node *t); /* NULL: the collector reclaims */
    int (*setup)(void);                /* 0, or -1 on failure */
};

/* The depths of one run: the classic ones less the -s scale. */
struct depths {
    int stretch, long_lived, min, max;
};

/* ---- the variants ---- */

static int tricolor_setup(void)
{
    return gc_init();
}

static void *bdwgc_alloc(size_t size)
{
    return GC_MALLOC(size);
}

static void *bdwgc_alloc_data(size_t size)
{
    return GC_MALLOC_ATOMIC(size);
}

static int bdwgc_setup(void)
{
    GC_INIT();
    return 0;
}

static void *malloc_zeroed(size_t size)
{
    return calloc(1, size);
}

static void malloc_free_tree(struct node *t)
{
    if (!t)
        return;
    malloc_free_tree(t->left);
    malloc_free_tree(t->right);
    free(t);
}

static int malloc_setup(void)
{
    return 0;
}

static const struct variant variants[] = {
    {"tricolor", gc_alloc, gc_alloc_noscan, NULL, tricolor_setup}, /* compared with the rest */
    {"bdwgc", bdwgc_alloc, bdwgc_alloc_data, NULL, bdwgc_setup},
    {"malloc", malloc_zeroed, malloc, malloc_free_tree, malloc_setup},
};
enum { NVARIANTS = sizeof variants / sizeof variants[0] };

/* ---- the workload ---- */

static long tree_size(int depth)
{
    return (1L << (depth + 1)) - 1;
}

static long iterations(int depth, const struct depths *d)
{
    return 2 * tree_size(d->stretch) / tree_size(depth);
}

static struct node *new_node(const struct variant *v)
{
    struct node *n = v->alloc(sizeof *n);
    if (!n)
        die("out of memory");
    return n;
}

static void dispose(const struct variant *v, struct node *t)
{
    if (v->free_tree)
        v->free_tree(t);
}

static long count_nodes(const struct node *n)
{
    return n ? 1 + count_nodes(n->left) + count_nodes(n->right) : 0;
}

/* Give `n` descendants `depth` levels deep, parents first (GCBench's Populate). */
static void populate(const struct variant *v, struct node *n, int depth)
{
    if (depth <= 0)
        return;
    GC_WRITE(n->left, new_node(v));
    GC_WRITE(n->right, new_node(v));
    populate(v, n->left, depth - 1);
    populate(v, n->right, depth - 1);
}

/* A tree of the given depth, children first (GCBench's MakeTree). */
static struct node *make_tree(const struct variant *v, int depth)
{
    if (depth <= 0)
        return new_node(v);
    struct node *left = make_tree(v, depth - 1);
    struct node *right = make_tree(v, depth - 1);
    struct node *n = new_node(v);
    GC_WRITE(n->left, left);
    GC_WRITE(n->right, right);
    return n;
}

/* Out of line, so that no stale copy of the tree's root outlives the call
 * in the workload's frame. */
static __attribute__((noinline)) void stretch(const struct variant *v, int depth)
{
    struct node *t = make_tree(v, depth);
    check(count_nodes(t) == tree_size(depth), "stretch tree");
    dispose(v, t);
}

/* Nodes in `iters` trees of `depth`, built top-down. */
static long top_down(const struct variant *v, int depth, long iters)
{
    long nodes = 0;
    for (long k = 0; k < iters; k++) {
        struct node *t = new_node(v);
        populate(v, t, depth);
        nodes += count_nodes(t);
        dispose(v, t);
    }
    return nodes;
}

/* Nodes in `iters` trees of `depth`, built bottom-up. */
static long bottom_up(const struct variant *v, int depth, long iters)
{
    long nodes = 0;
    for (long k = 0; k < iters; k++) {
        struct node *t = make_tree(v, depth);
        nodes += count_nodes(t);
        dispose(v, t);
    }
    return nodes;
}

/* GCBench's TimeConstruction, timed as a whole instead. */
static void temporaries(const struct variant *v, int depth, const struct depths *d)
{
    long iters = iterations(depth, d);
    check(top_down(v, depth, iters) == iters * tree_size(depth), "top-down trees");
    check(bottom_up(v, depth, iters) == iters * tree_size(depth), "bottom-up trees");
}

static double *long_lived_array(const struct variant *v)
{
    double *a = v->alloc_data(ARRAY_SIZE * sizeof *a);
    if (!a)
        die("out of memory");
    for (int i = 0; i < ARRAY_SIZE / 2; i++)
        a[i] = 1.0 / i;
    return a;
}

static void workload(const struct variant *v, const struct depths *d)
{
    stretch(v, d->stretch);
    struct node *long_lived = new_node(v);
    populate(v, long_lived, d->long_lived);
    double *array = long_lived_array(v);
    for (int depth = d->min; depth <= d->max; depth += 2)
        temporaries(v, depth, d);
    check(count_nodes(long_lived) == tree_size(d->long_lived), "long-lived tree");
    check(array[ARRAY_PROBE] == 1.0 / ARRAY_PROBE, "long-lived array");
}

/* ---- the variants as bench_child.h sees them ---- */

static const char *variant_name(unsigned k)
{
    return variants[k].name;
}

static int variant_setup(unsigned k)
{
    return variants[k].setup();
}

static void variant_workload(unsigned k, const void *depths)
{
    workload(&variants[k], depths);
}

static const struct bench bench = {NVARIANTS, variant_name, variant_setup, variant_workload};

/* ---- options ---- */

struct options {
    int scale;
    int selected[NVARIANTS];
    int repeats;
};

static __attribute__((noreturn)) void usage(const char *why)
{
    FILE *out = why ? stderr : stdout;
    if (why)
        fprintf(out, "bench_gcbench: %s\n", why);
    fprintf(out,
            "usage: bench_gcbench [-s SCALE] [-v VARIANT[,VARIANT...]] [-r REPEATS]\n"
            "  -s  subtract SCALE from every depth (0..%d, default 0)\n"
            "  -v  variants to run, of tricolor, bdwgc, malloc (default all)\n"
            "  -r  runs of each variant, the fastest counts (1..%d, default %d)\n",
            MAX_SCALE, MAX_REPEATS, DEFAULT_REPEATS);
    exit(why ? 2 : 0);
}

static void parse_options(struct options *o, int argc, char **argv)
{
    int opt;
    opterr = 0;
    o->scale = 0;
    o->repeats = DEFAULT_REPEATS;
    for (unsigned k = 0; k < NVARIANTS; k++)
        o->selected[k] = 1;
    while ((opt = getopt(argc, argv, "s:v:r:h")) != -1) {
        if (opt == 's')
            o->scale = parse_number(optarg, 0, MAX_SCALE);
        else if (opt == 'r')
            o->repeats = parse_number(optarg, 1, MAX_REPEATS);
        else if (opt == 'v')
            parse_variants(&bench, o->selected, optarg);
        else
            usage(opt == 'h' ? NULL : "unknown option or missing value");
    }
    if (optind != argc)
        usage("unexpected argument");
}

int main(int argc, char **argv)
{
    struct options o;
    parse_options(&o, argc, argv);
    int s = o.scale;
    struct depths d = {STRETCH_DEPTH - s, LONG_LIVED_DEPTH - s, MIN_DEPTH - s, MAX_DEPTH - s};
    struct result best[NVARIANTS];
    int ok[NVARIANTS];
    printf("bench_gcbench: stretch tree of depth %d, long-lived tree of depth %d, array of %d"
           " doubles, temporary trees of depth %d..%d, best of %d\n\n",
           d.stretch, d.long_lived, ARRAY_SIZE, d.min, d.max, o.repeats);
    bench_measure(&bench, &d, o.selected, o.repeats, best, ok);
    return bench_report(&bench, o.selected, best, ok) ? 1 : 0;
}

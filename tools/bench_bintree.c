/*
 * bench_bintree.c — binary-trees (the benchmarks game): tricolor against bdwgc and glibc malloc,
 * with worker threads.
 *
 * Usage: bench_bintree [-d DEPTH] [-t THREADS] [-v VARIANT[,VARIANT...]] [-r REPEATS]
 *
 * Links with the static library, libatomic_ops and $(pkg-config --libs bdw-gc).
 *
 * The workload, as in the benchmarks game. Nodes are two pointers. With
 * maximum depth N (-d, default 21; the range of interest is 18..21) the main
 * thread builds a stretch tree of depth N+1, checks it and drops it, then
 * builds a long-lived tree of depth N that stays reachable to the end. Then
 * for each depth d = 4, 6, ..., N it builds and checks 2^(N-d+4) temporary
 * trees of depth d. Trees are built children first; a tree's check is its
 * item count, 2^(d+1) - 1 nodes, and every check is verified. The iterations
 * of each depth are split evenly among W worker threads (-t, default 2),
 * started for that depth and joined before the next; the main thread waits
 * meanwhile, holding the long-lived tree.
 *
 * Allocator variants are rows of one table (`variants`): a name, an
 * allocation function, a function that frees a whole tree (NULL when a
 * collector reclaims it), a setup function and the thread create and join
 * functions the variant requires. Row 0, tricolor, is the variant the
 * others are compared with:
 *   tricolor  gc_alloc, no frees; workers started with gc_pthread_create;
 *   bdwgc     GC_MALLOC after GC_INIT, no frees; workers started with
 *             GC_pthread_create and joined with GC_pthread_join;
 *   malloc    malloc; each temporary tree freed recursively after its check.
 * Pointer stores into nodes go through GC_WRITE in every variant, so that
 * one tree code serves all three. The bdwgc and malloc children never
 * allocate from tricolor, so it never collects there and the barrier costs
 * them its inline test at most.
 *
 * Measuring, as bench_child.h describes: each selected variant (-v, default
 * all, run in table order) runs in a child process of its own, which reports
 * the workload's wall time (setup excluded), its CPU time and peak RSS. A
 * child that crashes, fails a check or runs out of memory is reported as
 * failed. The measurement is repeated (-r, default 1: one run at N = 21
 * takes seconds) with the variants interleaved, and of each variant the run
 * with the shortest wall time counts.
 *
 * Output: one row per variant (wall seconds, CPU seconds of all threads,
 * peak RSS), then tricolor's wall time and peak RSS as ratios to each other
 * variant. The exit status is 1 when a variant failed, else 0.
 */
#define GC_THREADS             /* declare bdwgc's thread functions... */
#define GC_NO_THREAD_REDIRECTS /* ...without renaming pthread_create for every variant */

#define BENCH_NAME "bench_bintree"

#include <pthread.h>

#include <gc.h> /* bdwgc; plain <gc.h> would find the collector's internal gc/gc.h */

#include "bench_child.h"
#include "tricolor.h"

enum {
    MIN_DEPTH = 4,
    DEFAULT_DEPTH = 21,
    MAX_DEPTH = 26,
    DEFAULT_THREADS = 2,
    MAX_THREADS = 64,
    DEFAULT_REPEATS = 1,
    MAX_REPEATS = 100,
};

struct node {
    struct node *left, *right;
};

typedef int spawn_fn(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *),
                     void *arg);

struct variant {
    const char *name;
    void *(*alloc)(size_t size);       /* zeroed, may hold pointers */
    void (*free_tree)(struct node *t); /* NULL: the collector reclaims */
    int (*setup)(void);                /* 0, or -1 on failure */
    spawn_fn *spawn;                   /* pthread_create for this variant */
    int (*join)(pthread_t thread, void **ret);
};

/* One worker's share of a depth. */
struct share {
    const struct variant *v;
    int depth;
    long iters;
    long items; /* out: the sum of the checks */
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

static int bdwgc_setup(void)
{
    GC_INIT();
    return 0;
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

/* Row 0 is compared with the rest. */
static const struct variant variants[] = {
    {"tricolor", gc_alloc, NULL, tricolor_setup, gc_pthread_create, pthread_join},
    {"bdwgc", bdwgc_alloc, NULL, bdwgc_setup, GC_pthread_create, GC_pthread_join},
    {"malloc", malloc, malloc_free_tree, malloc_setup, pthread_create, pthread_join},
};
enum { NVARIANTS = sizeof variants / sizeof variants[0] };

/* ---- the workload ---- */

static long tree_size(int depth)
{
    return (1L << (depth + 1)) - 1;
}

/* Both fields are always stored, so malloc's uninitialised nodes are fine. */
static struct node *new_node(const struct variant *v, struct node *left, struct node *right)
{
    struct node *n = v->alloc(sizeof *n);
    if (!n)
        die("out of memory");
    GC_WRITE(n->left, left);
    GC_WRITE(n->right, right);
    return n;
}

static void dispose(const struct variant *v, struct node *t)
{
    if (v->free_tree)
        v->free_tree(t);
}

/* The benchmarks game's bottomUpTree: children first. */
static struct node *bottom_up(const struct variant *v, int depth)
{
    if (depth <= 0)
        return new_node(v, NULL, NULL);
    struct node *left = bottom_up(v, depth - 1);
    struct node *right = bottom_up(v, depth - 1);
    return new_node(v, left, right);
}

/* The benchmarks game's itemCheck: the number of nodes. */
static long item_check(const struct node *n)
{
    return n->left ? 1 + item_check(n->left) + item_check(n->right) : 1;
}

static void *worker_main(void *arg)
{
    struct share *s = arg;
    long items = 0;
    for (long k = 0; k < s->iters; k++) {
        struct node *t = bottom_up(s->v, s->depth);
        items += item_check(t);
        dispose(s->v, t);
    }
    s->items = items;
    return NULL;
}

/* Build and check 2^(max-depth+4) trees of `depth` on `nthreads` workers. */
static void temporaries(const struct variant *v, int depth, int max, int nthreads)
{
    struct share shares[MAX_THREADS];
    pthread_t tids[MAX_THREADS];
    long iters = 1L << (max - depth + MIN_DEPTH), items = 0;
    for (int w = 0; w < nthreads; w++) {
        shares[w] = (struct share){.v = v, .depth = depth, .iters = iters / nthreads};
        shares[w].iters += w < iters % nthreads;
        if (v->spawn(&tids[w], NULL, worker_main, &shares[w]) != 0)
            die("cannot create a thread");
    }
    for (int w = 0; w < nthreads; w++) {
        if (v->join(tids[w], NULL) != 0)
            die("cannot join a thread");
        items += shares[w].items;
    }
    check(items == iters * tree_size(depth), "temporary trees");
}

/* Out of line, so that no stale copy of the tree's root outlives the call
 * in the workload's frame. */
static __attribute__((noinline)) void stretch(const struct variant *v, int depth)
{
    struct node *t = bottom_up(v, depth);
    check(item_check(t) == tree_size(depth), "stretch tree");
    dispose(v, t);
}

static void workload(const struct variant *v, int max, int nthreads)
{
    stretch(v, max + 1);
    struct node *long_lived = bottom_up(v, max);
    for (int depth = MIN_DEPTH; depth <= max; depth += 2)
        temporaries(v, depth, max, nthreads);
    check(item_check(long_lived) == tree_size(max), "long-lived tree");
}

/* ---- the variants as bench_child.h sees them ---- */

/* The command line; the child's workload reads depth and threads. */
struct options {
    int depth; /* N */
    int threads;
    int selected[NVARIANTS];
    int repeats;
};

static const char *variant_name(unsigned k)
{
    return variants[k].name;
}

static int variant_setup(unsigned k)
{
    return variants[k].setup();
}

static void variant_workload(unsigned k, const void *options)
{
    const struct options *o = options;
    workload(&variants[k], o->depth, o->threads);
}

static const struct bench bench = {NVARIANTS, variant_name, variant_setup, variant_workload};

/* ---- options ---- */

static __attribute__((noreturn)) void usage(const char *why)
{
    FILE *out = why ? stderr : stdout;
    if (why)
        fprintf(out, "bench_bintree: %s\n", why);
    fprintf(out,
            "usage: bench_bintree [-d DEPTH] [-t THREADS] [-v VARIANT[,VARIANT...]]"
            " [-r REPEATS]\n"
            "  -d  maximum tree depth N (%d..%d, default %d)\n"
            "  -t  worker threads (1..%d, default %d)\n"
            "  -v  variants to run, of tricolor, bdwgc, malloc (default all)\n"
            "  -r  runs of each variant, the fastest counts (1..%d, default %d)\n",
            MIN_DEPTH + 2, MAX_DEPTH, DEFAULT_DEPTH, MAX_THREADS, DEFAULT_THREADS, MAX_REPEATS,
            DEFAULT_REPEATS);
    exit(why ? 2 : 0);
}

static void parse_options(struct options *o, int argc, char **argv)
{
    int opt;
    opterr = 0;
    *o = (struct options){
        .depth = DEFAULT_DEPTH, .threads = DEFAULT_THREADS, .repeats = DEFAULT_REPEATS};
    for (unsigned k = 0; k < NVARIANTS; k++)
        o->selected[k] = 1;
    while ((opt = getopt(argc, argv, "d:t:v:r:h")) != -1) {
        if (opt == 'd')
            o->depth = parse_number(optarg, MIN_DEPTH + 2, MAX_DEPTH);
        else if (opt == 't')
            o->threads = parse_number(optarg, 1, MAX_THREADS);
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
    struct result best[NVARIANTS];
    int ok[NVARIANTS];
    printf("bench_bintree: stretch tree of depth %d, long-lived tree of depth %d, temporary"
           " trees of depth %d..%d on %d worker thread(s), best of %d\n\n",
           o.depth + 1, o.depth, MIN_DEPTH, o.depth - (o.depth - MIN_DEPTH) % 2, o.threads,
           o.repeats);
    bench_measure(&bench, &o, o.selected, o.repeats, best, ok);
    return bench_report(&bench, o.selected, best, ok) ? 1 : 0;
}

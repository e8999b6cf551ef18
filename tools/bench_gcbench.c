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
 * Measuring. Each selected variant (-v, default all, run in table order)
 * runs in a child process of its own, created by fork(); the parent
 * allocates nothing, so heaps never share a process. The child times
 * the workload alone (CLOCK_MONOTONIC, setup excluded), then reads its own
 * peak RSS and CPU time with getrusage(RUSAGE_SELF) and sends them through a
 * pipe: RUSAGE_CHILDREN would accumulate over all children. A child that
 * crashes, fails a check or runs out of memory is reported as failed. The
 * measurement is repeated (-r, default 3) with the variants interleaved, and
 * of each variant the run with the shortest wall time counts.
 *
 * Output: one row per variant (wall seconds, CPU seconds, peak RSS), then
 * tricolor's wall time and peak RSS as ratios to each other variant. The
 * exit status is 1 when a variant failed, else 0.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gc.h> /* bdwgc; plain <gc.h> would find the collector's internal gc/gc.h */

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

/* What a child sends its parent. */
struct result {
    double seconds;     /* wall time of the workload */
    double cpu_seconds; /* user + system, the whole child */
    long peak_rss_kib;
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

static __attribute__((noreturn)) void die(const char *what)
{
    fprintf(stderr, "bench_gcbench: %s\n", what);
    exit(2);
}

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "bench_gcbench: check failed: %s\n", what);
        exit(1);
    }
}

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

/* ---- one variant in a child process ---- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double timeval_seconds(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

static __attribute__((noreturn)) void child_main(const struct variant *v, const struct depths *d,
                                                 int fd)
{
    struct result r;
    struct rusage ru;
    if (v->setup() != 0)
        die("setup failed");
    double t0 = now();
    workload(v, d);
    r.seconds = now() - t0;
    getrusage(RUSAGE_SELF, &ru);
    r.cpu_seconds = timeval_seconds(ru.ru_utime) + timeval_seconds(ru.ru_stime);
    r.peak_rss_kib = ru.ru_maxrss; /* KiB on Linux */
    if (write(fd, &r, sizeof r) != (ssize_t)sizeof r) /* < PIPE_BUF: never partial */
        die("cannot report to the parent");
    exit(0);
}

/* Print why the child `pid` failed, if it did; 0 when it exited with 0. */
static int reap(pid_t pid, const char *name)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            die("waitpid failed");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFSIGNALED(status))
        fprintf(stderr, "bench_gcbench: %s: killed by signal %d\n", name, WTERMSIG(status));
    else
        fprintf(stderr, "bench_gcbench: %s: exit status %d\n", name, WEXITSTATUS(status));
    return -1;
}

/* Run variant `v` in a child; 0 with `*r` filled, or -1 when it failed. */
static int run_variant(const struct variant *v, const struct depths *d, struct result *r)
{
    int fds[2];
    if (pipe(fds) != 0)
        die("cannot create a pipe");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("cannot fork");
    if (pid == 0) {
        close(fds[0]);
        child_main(v, d, fds[1]);
    }
    close(fds[1]);
    ssize_t got;
    while ((got = read(fds[0], r, sizeof *r)) < 0 && errno == EINTR)
        continue;
    close(fds[0]);
    int failed = reap(pid, v->name);
    return failed || got != (ssize_t)sizeof *r ? -1 : 0;
}

/* ---- reporting ---- */

static double mib(long kib)
{
    return (double)kib / 1024.0;
}

static void print_row(const struct variant *v, const struct result *r, int ok)
{
    if (ok)
        printf("%-10s %9.3f %9.3f %14.1f\n", v->name, r->seconds, r->cpu_seconds,
               mib(r->peak_rss_kib));
    else
        printf("%-10s %9s %9s %14s\n", v->name, "failed", "-", "-");
}

/* Row 0 against every other row that ran. */
static void print_ratios(const struct result *res, const int *ok)
{
    char what[64];
    int header = 0;
    for (unsigned k = 1; ok[0] && k < NVARIANTS; k++) {
        if (!ok[k])
            continue;
        if (!header++)
            printf("\n%-20s %9s %14s\n", "ratio", "time", "peak RSS");
        snprintf(what, sizeof what, "%s / %s", variants[0].name, variants[k].name);
        printf("%-20s %9.3f %14.3f\n", what, res[0].seconds / res[k].seconds,
               (double)res[0].peak_rss_kib / (double)res[k].peak_rss_kib);
    }
}

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

/* A whole decimal number in [min, max], or exit with usage. */
static int parse_number(const char *s, int min, int max)
{
    char *end;
    errno = 0;
    long n = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || n < min || n > max)
        usage("bad number");
    return (int)n;
}

static int variant_index(const char *name, size_t len)
{
    for (unsigned k = 0; k < NVARIANTS; k++)
        if (strlen(variants[k].name) == len && strncmp(variants[k].name, name, len) == 0)
            return (int)k;
    usage("unknown variant");
}

static void parse_variants(struct options *o, const char *list)
{
    memset(o->selected, 0, sizeof o->selected);
    for (const char *s = list;; s++) {
        size_t len = strcspn(s, ",");
        o->selected[variant_index(s, len)] = 1;
        s += len;
        if (*s == '\0')
            return;
    }
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
            parse_variants(o, optarg);
        else
            usage(opt == 'h' ? NULL : "unknown option or missing value");
    }
    if (optind != argc)
        usage("unexpected argument");
}

/* The fastest of o->repeats runs of each selected variant, variants interleaved; ok[k] is 0
 * when variant k was not selected or any of its runs failed. */
static void measure(const struct options *o, const struct depths *d, struct result *best, int *ok)
{
    struct result r;
    for (unsigned k = 0; k < NVARIANTS; k++)
        ok[k] = o->selected[k];
    for (int rep = 0; rep < o->repeats; rep++) {
        for (unsigned k = 0; k < NVARIANTS; k++) {
            if (!ok[k])
                continue;
            ok[k] = run_variant(&variants[k], d, &r) == 0;
            if (ok[k] && (rep == 0 || r.seconds < best[k].seconds))
                best[k] = r;
        }
    }
}

int main(int argc, char **argv)
{
    struct options o;
    parse_options(&o, argc, argv);
    int s = o.scale, failures = 0;
    struct depths d = {STRETCH_DEPTH - s, LONG_LIVED_DEPTH - s, MIN_DEPTH - s, MAX_DEPTH - s};
    struct result best[NVARIANTS];
    int ok[NVARIANTS];
    printf("bench_gcbench: stretch tree of depth %d, long-lived tree of depth %d, array of %d"
           " doubles, temporary trees of depth %d..%d, best of %d\n\n",
           d.stretch, d.long_lived, ARRAY_SIZE, d.min, d.max, o.repeats);
    measure(&o, &d, best, ok);
    printf("%-10s %9s %9s %14s\n", "variant", "seconds", "cpu s", "peak RSS MiB");
    for (unsigned k = 0; k < NVARIANTS; k++) {
        if (o.selected[k])
            print_row(&variants[k], &best[k], ok[k]);
        failures += o.selected[k] && !ok[k];
    }
    print_ratios(best, ok);
    return failures ? 1 : 0;
}

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
 * Measuring. Each selected variant (-v, default all, run in table order)
 * runs in a child process of its own, created by fork(); the parent
 * allocates nothing, so heaps never share a process. The child times
 * the workload alone (CLOCK_MONOTONIC, setup excluded), then reads its own
 * peak RSS and CPU time with getrusage(RUSAGE_SELF) and sends them through a
 * pipe: RUSAGE_CHILDREN would accumulate over all children. A child that
 * crashes, fails a check or runs out of memory is reported as failed. The
 * measurement is repeated (-r, default 1: one run at N = 21 takes seconds)
 * with the variants interleaved, and of each variant the run with the
 * shortest wall time counts.
 *
 * Output: one row per variant (wall seconds, CPU seconds of all threads,
 * peak RSS), then tricolor's wall time and peak RSS as ratios to each other
 * variant. The exit status is 1 when a variant failed, else 0.
 */
#define GC_THREADS             /* declare bdwgc's thread functions... */
#define GC_NO_THREAD_REDIRECTS /* ...without renaming pthread_create for every variant */

#include <errno.h>
#include <pthread.h>
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

/* What a child sends its parent. */
struct result {
    double seconds;     /* wall time of the workload */
    double cpu_seconds; /* user + system, all threads of the child */
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

static __attribute__((noreturn)) void die(const char *what)
{
    fprintf(stderr, "bench_bintree: %s\n", what);
    exit(2);
}

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "bench_bintree: check failed: %s\n", what);
        exit(1);
    }
}

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

static __attribute__((noreturn)) void child_main(const struct variant *v, int max, int nthreads,
                                                 int fd)
{
    struct result r;
    struct rusage ru;
    if (v->setup() != 0)
        die("setup failed");
    double t0 = now();
    workload(v, max, nthreads);
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
        fprintf(stderr, "bench_bintree: %s: killed by signal %d\n", name, WTERMSIG(status));
    else
        fprintf(stderr, "bench_bintree: %s: exit status %d\n", name, WEXITSTATUS(status));
    return -1;
}

/* Run variant `v` in a child; 0 with `*r` filled, or -1 when it failed. */
static int run_variant(const struct variant *v, int max, int nthreads, struct result *r)
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
        child_main(v, max, nthreads, fds[1]);
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
    int depth; /* N */
    int threads;
    int selected[NVARIANTS];
    int repeats;
};

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
            parse_variants(o, optarg);
        else
            usage(opt == 'h' ? NULL : "unknown option or missing value");
    }
    if (optind != argc)
        usage("unexpected argument");
}

/* The fastest of o->repeats runs of each selected variant, variants interleaved; ok[k] is 0
 * when variant k was not selected or any of its runs failed. */
static void measure(const struct options *o, struct result *best, int *ok)
{
    struct result r;
    for (unsigned k = 0; k < NVARIANTS; k++)
        ok[k] = o->selected[k];
    for (int rep = 0; rep < o->repeats; rep++) {
        for (unsigned k = 0; k < NVARIANTS; k++) {
            if (!ok[k])
                continue;
            ok[k] = run_variant(&variants[k], o->depth, o->threads, &r) == 0;
            if (ok[k] && (rep == 0 || r.seconds < best[k].seconds))
                best[k] = r;
        }
    }
}

int main(int argc, char **argv)
{
    struct options o;
    parse_options(&o, argc, argv);
    struct result best[NVARIANTS];
    int ok[NVARIANTS], failures = 0;
    printf("bench_bintree: stretch tree of depth %d, long-lived tree of depth %d, temporary"
           " trees of depth %d..%d on %d worker thread(s), best of %d\n\n",
           o.depth + 1, o.depth, MIN_DEPTH, o.depth - (o.depth - MIN_DEPTH) % 2, o.threads,
           o.repeats);
    measure(&o, best, ok);
    printf("%-10s %9s %9s %14s\n", "variant", "seconds", "cpu s", "peak RSS MiB");
    for (unsigned k = 0; k < NVARIANTS; k++) {
        if (o.selected[k])
            print_row(&variants[k], &best[k], ok[k]);
        failures += o.selected[k] && !ok[k];
    }
    print_ratios(best, ok);
    return failures ? 1 : 0;
}

/*
 * bench_ring.c — small-object allocation, tricolor against glibc malloc, side
 * by side in one process.
 *
 * Usage: bench_ring [-t THREADS[,THREADS...]] [-n ALLOCS] [-r REPEATS]
 *
 * The workload. Each of T threads performs M allocations (-n, default 20M)
 * of sizes drawn uniformly from 16..256 bytes by a xorshift generator seeded
 * from the thread's index, so every allocator sees the same sequence. A
 * thread keeps a ring of RING_SIZE live objects: each new object takes the
 * slot of the oldest, which is freed first. The thread writes the first and
 * last 8 bytes of every new object, so that no allocation can be optimised
 * away and every object is really touched. The default M makes one
 * single-thread malloc run last about half a second.
 *
 * Allocator variants are rows of one table (`variants`): a name, an
 * allocation function and a free function. Row 0 is the baseline every
 * other row is compared with. A variant that leaves reclaiming to the
 * collector is one more row whose free function does nothing: the ring is
 * itself an object of the variant under test, reachable from the thread's
 * stack, and is written with GC_WRITE, so the collector sees exactly the
 * live window of each thread. bdwgc (Boehm) runs the same loop as one more
 * row, with its threads created by GC_pthread_create; it has no goal and is
 * there to compare with, as is the "no-GC floor" row (see floor_alloc).
 *
 * Measuring. Every measurement runs in a child process of its own, so that
 * no variant inherits another's heap or collections. Threads are created
 * first and released together by a barrier;
 * the clock (CLOCK_MONOTONIC) runs from the release to the last join. Each
 * measurement is repeated (-r, default 3) with the variants interleaved, and
 * the fastest run counts. Per-thread cost is wall time / M: the threads run
 * in parallel, so with perfect scaling it does not change with T.
 *
 * Output: one table row per thread count and variant, then each variant's
 * time against the baseline and, for T > 1, its per-thread time against
 * T = 1, then one PASS/MISS line per goal. The goals are informational; the
 * program exits 0 whenever it ran.
 */
#define GC_THREADS             /* declare bdwgc's thread functions... */
#define GC_NO_THREAD_REDIRECTS /* ...without renaming pthread_create for every variant */

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gc.h> /* bdwgc; plain <gc.h> would find the collector's internal gc/gc.h */

#include "tricolor.h"

enum {
    RING_SIZE = 4096,
    SIZE_LO = 16,
    SIZE_HI = 256,
    MAX_THREADS = 64,
    MAX_COUNTS = 16, /* entries in the -t list */
    DEFAULT_ALLOCS = 20 * 1000 * 1000,
    DEFAULT_REPEATS = 3,
};

/* Goal for every non-baseline variant's scaling. */
static const double GOAL_SCALING = 1.0; /* per-thread time, T threads / 1 thread */

struct variant {
    const char *name;
    void *(*alloc)(size_t size);
    void (*free)(void *p);
    int (*create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    int (*join)(pthread_t, void **);
    double goal; /* time / baseline time, 1 thread; 0: no goal, shown for comparison */
};

/* The collector reclaims: dropping the ring's reference is the only "free". */
static void leave_to_collector(void *p)
{
    (void)p;
}

static void *bdwgc_alloc(size_t size)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, GC_init);
    return GC_MALLOC(size);
}

/* The floor of any collected heap of the collector's minimum size: a bump
 * allocator that cycles through a private 4 MiB region and zeroes it 64 KiB
 * at a time ahead of use, with no collection work at all. Row "no-GC
 * floor" shows what no collector can beat on this machine. */
enum { FLOOR_REGION = 4 << 20, FLOOR_ZERO = 64 << 10 };
static __thread char *floor_region;
static __thread size_t floor_off;

static void *floor_alloc(size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (!floor_region && !(floor_region = malloc(FLOOR_REGION + FLOOR_ZERO)))
        return NULL;
    if (floor_off + size > FLOOR_REGION)
        floor_off = 0;
    size_t end = floor_off + size;
    if (floor_off / FLOOR_ZERO != end / FLOOR_ZERO || floor_off == 0)
        memset(floor_region + end / FLOOR_ZERO * FLOOR_ZERO, 0, FLOOR_ZERO);
    void *p = floor_region + floor_off;
    floor_off = end;
    return p;
}

static const struct variant variants[] = {
    {"malloc+free", malloc, free, pthread_create, pthread_join, 0}, /* the baseline */
    {"gc_alloc+gc_free", gc_alloc, gc_free, pthread_create, pthread_join, 0.30},
    {"gc_alloc (collected)", gc_alloc, leave_to_collector, pthread_create, pthread_join, 0.25},
    {"no-GC floor (bump, bulk zero)", floor_alloc, leave_to_collector, pthread_create,
     pthread_join, 0},
    {"bdwgc GC_MALLOC (collected)", bdwgc_alloc, leave_to_collector, GC_pthread_create,
     GC_pthread_join, 0},
};
enum { NVARIANTS = sizeof variants / sizeof variants[0] };

struct options {
    unsigned counts[MAX_COUNTS]; /* thread counts, in the order given */
    unsigned ncounts;
    uint64_t allocs; /* per thread */
    unsigned repeats;
};

/* One thread's share of a run. Padded so threads never share a line. */
struct worker {
    const struct variant *v;
    uint64_t allocs;
    uint64_t seed;
    pthread_barrier_t *start;
    int failed; /* set when an allocation returned NULL */
} __attribute__((aligned(64)));

/* ---- the workload ---- */

static inline uint64_t xorshift64(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

/* Thread i's generator state: the same for every variant, never zero. */
static uint64_t thread_seed(unsigned i)
{
    return UINT64_C(0x9E3779B97F4A7C15) * (i + 1);
}

/* A size in SIZE_LO..SIZE_HI, uniform, from the high bits of `r`. */
static inline size_t size_of_draw(uint64_t r)
{
    return SIZE_LO + (size_t)(((r >> 32) * (SIZE_HI - SIZE_LO + 1)) >> 32);
}

static inline void touch(char *p, size_t size, uint64_t r)
{
    memcpy(p, &r, 8);
    memcpy(p + size - 8, &r, 8);
}

/* The timed loop: `n` allocations into a ring, freeing the oldest object. */
static int ring_run(const struct variant *v, void **ring, uint64_t n, uint64_t seed)
{
    uint64_t state = seed;
    unsigned slot = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t r = xorshift64(&state);
        size_t size = size_of_draw(r);
        char *p = v->alloc(size);
        if (!p)
            return -1;
        touch(p, size, r);
        v->free(ring[slot]);
        GC_WRITE(ring[slot], p);
        slot = (slot + 1) % RING_SIZE;
    }
    for (unsigned i = 0; i < RING_SIZE; i++)
        v->free(ring[i]);
    return 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    void **ring = w->v->alloc(RING_SIZE * sizeof *ring);
    if (ring)
        memset(ring, 0, RING_SIZE * sizeof *ring);
    pthread_barrier_wait(w->start);
    w->failed = !ring || ring_run(w->v, ring, w->allocs, w->seed) != 0;
    w->v->free(ring);
    return NULL;
}

/* ---- measuring ---- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static __attribute__((noreturn)) void die(const char *what)
{
    fprintf(stderr, "bench_ring: %s\n", what);
    exit(2);
}

/* Wall seconds for `nthreads` threads running the workload of variant `v`. */
static double run_here(const struct variant *v, unsigned nthreads, uint64_t allocs)
{
    struct worker workers[MAX_THREADS];
    pthread_t tids[MAX_THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, nthreads + 1);
    v->free(v->alloc(1)); /* start the allocator before its threads */
    for (unsigned i = 0; i < nthreads; i++) {
        workers[i] =
            (struct worker){.v = v, .allocs = allocs, .seed = thread_seed(i), .start = &start};
        if (v->create(&tids[i], NULL, worker_main, &workers[i]) != 0)
            die("cannot create thread");
    }
    pthread_barrier_wait(&start);
    double t0 = now();
    for (unsigned i = 0; i < nthreads; i++)
        v->join(tids[i], NULL);
    double t = now() - t0;
    pthread_barrier_destroy(&start);
    for (unsigned i = 0; i < nthreads; i++)
        if (workers[i].failed)
            die("allocation failed");
    return t;
}

/* One measurement in a child process of its own, so that no variant runs
 * in a heap (or beside collections) that another variant left behind. */
static double run_once(const struct variant *v, unsigned nthreads, uint64_t allocs)
{
    int fds[2];
    if (pipe(fds) != 0)
        die("cannot create a pipe");
    pid_t pid = fork();
    if (pid < 0)
        die("cannot fork");
    if (pid == 0) {
        close(fds[0]);
        double t = run_here(v, nthreads, allocs);
        _exit(write(fds[1], &t, sizeof t) == sizeof t ? 0 : 1);
    }
    close(fds[1]);
    double t;
    ssize_t got = read(fds[0], &t, sizeof t);
    close(fds[0]);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        got != (ssize_t)sizeof t)
        die("a measuring child failed");
    return t;
}

/* best[c][v]: the fastest of `repeats` runs, variants interleaved. */
static void measure(const struct options *o, double best[][NVARIANTS])
{
    for (unsigned c = 0; c < o->ncounts; c++) {
        for (unsigned v = 0; v < NVARIANTS; v++)
            best[c][v] = 1e300;
        for (unsigned r = 0; r < o->repeats; r++) {
            for (unsigned v = 0; v < NVARIANTS; v++) {
                double t = run_once(&variants[v], o->counts[c], o->allocs);
                if (t < best[c][v])
                    best[c][v] = t;
            }
        }
    }
}

/* ---- reporting ---- */

/* Index of thread count 1 in the list, or -1. */
static int single_thread_index(const struct options *o)
{
    for (unsigned c = 0; c < o->ncounts; c++)
        if (o->counts[c] == 1)
            return (int)c;
    return -1;
}

static void print_table(const struct options *o, double best[][NVARIANTS])
{
    printf("%7s  %-30s %10s %18s\n", "threads", "allocator", "seconds", "ns/pair/thread");
    for (unsigned c = 0; c < o->ncounts; c++)
        for (unsigned v = 0; v < NVARIANTS; v++)
            printf("%7u  %-30s %10.3f %18.2f\n", o->counts[c], variants[v].name, best[c][v],
                   best[c][v] * 1e9 / (double)o->allocs);
}

static void print_ratios(const struct options *o, double best[][NVARIANTS])
{
    int one = single_thread_index(o);
    printf("\n");
    /* Every variant's scaling, the baseline's included: on a shared
     * machine it shows how much of a slowdown the hardware alone causes. */
    for (unsigned v = 0; v < NVARIANTS; v++) {
        for (unsigned c = 0; v > 0 && c < o->ncounts; c++)
            printf("%s / %s time ratio, %u thread(s): %.3f\n", variants[v].name, variants[0].name,
                   o->counts[c], best[c][v] / best[c][0]);
        for (unsigned c = 0; one >= 0 && c < o->ncounts; c++)
            if (o->counts[c] > 1)
                printf("%s %u-thread per-thread time / 1-thread time: %.3f\n", variants[v].name,
                       o->counts[c], best[c][v] / best[one][v]);
    }
}

static void print_goal(const char *what, double value, double goal)
{
    printf("goal %-58s <= %.2f: %6.3f  %s\n", what, goal, value, value <= goal ? "PASS" : "MISS");
}

static void print_goals(const struct options *o, double best[][NVARIANTS])
{
    int one = single_thread_index(o);
    char what[128];
    if (one < 0)
        return;
    printf("\n");
    for (unsigned v = 1; v < NVARIANTS; v++) {
        if (variants[v].goal == 0)
            continue;
        snprintf(what, sizeof what, "%s / %s time, 1 thread", variants[v].name, variants[0].name);
        print_goal(what, best[one][v] / best[one][0], variants[v].goal);
        for (unsigned c = 0; c < o->ncounts; c++) {
            if (o->counts[c] <= 1)
                continue;
            snprintf(what, sizeof what, "%s per-thread time, %u threads / 1", variants[v].name,
                     o->counts[c]);
            print_goal(what, best[c][v] / best[one][v], GOAL_SCALING);
        }
    }
}

/* ---- options ---- */

/* Print the usage: on stdout and exit 0 when asked for (`why` NULL), else
 * after `why` on stderr and exit 2. */
static __attribute__((noreturn)) void usage(const char *why)
{
    FILE *out = why ? stderr : stdout;
    if (why)
        fprintf(out, "bench_ring: %s\n", why);
    fprintf(out,
            "usage: bench_ring [-t THREADS[,THREADS...]] [-n ALLOCS] [-r REPEATS]\n"
            "  -t  thread counts to run (default 1,2; each 1..%d)\n"
            "  -n  allocations per thread (default %d)\n"
            "  -r  repetitions of each measurement, best counts (default %d)\n",
            MAX_THREADS, DEFAULT_ALLOCS, DEFAULT_REPEATS);
    exit(why ? 2 : 0);
}

/* A whole decimal number in [min, max], or exit with usage. */
static unsigned long long parse_number(const char *s, char **end, unsigned long long min,
                                       unsigned long long max)
{
    errno = 0;
    unsigned long long n = strtoull(s, end, 10);
    if (errno || *end == s || *s == '-' || n < min || n > max)
        usage("bad number");
    return n;
}

static void parse_counts(struct options *o, const char *list)
{
    char *end;
    o->ncounts = 0;
    for (const char *s = list;; s = end + 1) {
        if (o->ncounts == MAX_COUNTS)
            usage("too many thread counts");
        o->counts[o->ncounts++] = (unsigned)parse_number(s, &end, 1, MAX_THREADS);
        if (*end == '\0')
            return;
        if (*end != ',')
            usage("bad thread list");
    }
}

/* A number that is the whole of `s`. */
static unsigned long long parse_whole(const char *s, unsigned long long min, unsigned long long max)
{
    char *end;
    unsigned long long n = parse_number(s, &end, min, max);
    if (*end != '\0')
        usage("bad number");
    return n;
}

static void parse_options(struct options *o, int argc, char **argv)
{
    int opt;
    opterr = 0;
    *o = (struct options){
        .counts = {1, 2}, .ncounts = 2, .allocs = DEFAULT_ALLOCS, .repeats = DEFAULT_REPEATS};
    while ((opt = getopt(argc, argv, "t:n:r:h")) != -1) {
        if (opt == 't')
            parse_counts(o, optarg);
        else if (opt == 'n')
            o->allocs = parse_whole(optarg, 1, UINT64_MAX / 2);
        else if (opt == 'r')
            o->repeats = (unsigned)parse_whole(optarg, 1, 1000);
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
    if (gc_init() != 0)
        die("gc_init failed");
    double best[MAX_COUNTS][NVARIANTS];
    measure(&o, best);
    printf("bench_ring: %llu allocations per thread, sizes %d..%d B, ring of %d live objects"
           " per thread, best of %u\n\n",
           (unsigned long long)o.allocs, SIZE_LO, SIZE_HI, RING_SIZE, o.repeats);
    print_table(&o, best);
    print_ratios(&o, best);
    print_goals(&o, best);
    return 0;
}

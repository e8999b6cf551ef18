/*
 * bench_latency.c — message latency: the worst single allocation-and-store a program sees
 * while a large window of live messages turns over, tricolor against bdwgc and Go.
 *
 * Usage: bench_latency [-n PUSHES] [-w WINDOW] [-t THREADS] [-v A|B|AB] [-r REPEATS]
 *                      [-g GOFILE|none] [-a ALLOCATORS]
 *
 * Links with the static library, libatomic_ops and $(pkg-config --libs bdw-gc).
 *
 * The workload, the classic GC latency test. A window (ring) of W message slots (-w, default
 * 200,000) starts empty; the program makes N pushes (-n, default 1,000,000). Push i creates
 * message i and stores it into slot i % W, dropping the message stored there W pushes
 * earlier, so once the window is full the live heap stays at W messages while every push
 * allocates. The workload runs in T mutator threads at once (-t, default 1), each with a
 * window and pushes of its own: W/T slots and N/T pushes, the remainders spread one each
 * over the first threads. What a message is, is the workload variant (-v, default AB: both,
 * in turn):
 *   A  one noscan 1 KiB block (gc_alloc_noscan, GC_MALLOC_ATOMIC) with its id written into
 *      its first and last 8 bytes, so that it is touched: ~200 MB of live data the collector
 *      never looks inside;
 *   B  a linked list of 16 pointerful 64-byte nodes (gc_alloc, GC_MALLOC), linked with
 *      GC_WRITE, the id in each node: ~200 MB of live heap that every cycle must trace.
 * The variants are rows of one table (`variants`): a name, a line describing the message, the
 * function that makes one and the function that checks one. A thread's window is an object
 * of the allocator under test (gc_alloc, GC_MALLOC), scanned like any heap object and
 * reachable from that thread's stack; every store into it goes through GC_WRITE. After its
 * last push every thread checks that each of its slots holds the last message stored into
 * it, intact, so a collector that frees a live message fails.
 *
 * Allocators are rows of another table (`allocators`): a name, a scanned and a noscan
 * allocation function, a setup function, the thread create and join functions the
 * allocator requires and, for a collector that records them, the function that reads its
 * stop-the-world pauses. Row 0, tricolor, is compared with the rest:
 *   tricolor  gc_alloc and gc_alloc_noscan, GCPERCENT as the environment sets it; threads
 *             started with gc_pthread_create; pauses read with gc_read_pauses;
 *   bdwgc     GC_MALLOC and GC_MALLOC_ATOMIC after GC_INIT, its default settings; threads
 *             started with GC_pthread_create and joined with GC_pthread_join.
 * A third row, go, comes from the Go twin of this program, tools/bench_latency.go (-g names
 * it; "none" leaves Go out), which runs the same loop on the same message shapes, in T
 * goroutines split the same way, with GOGC and GOMAXPROCS as the environment sets them.
 * -a names the rows to run (tricolor, bdwgc, nogc, go; default all): tricolor alone can run
 * long enough to record a few hundred pauses, where a percentile means more than the
 * longest of fifty.
 * When `go` is on PATH the twin is built once, beside this program, and run after the C
 * allocators in each repeat; it prints one line, which is parsed. Without `go`, or when the
 * twin fails to build or run, its row says so and the rest of the run goes on.
 *
 * Measuring. Every push is timed alone: CLOCK_MONOTONIC before the message is made and
 * after it is stored, the difference kept as one sample (8 bytes a push, in a buffer
 * touched before the threads start, so no page fault lands in a push); each thread fills
 * its own stretch of the buffer. The total is the wall time from the first thread's first
 * push to the last thread's last push (with one thread, the time of its push loop). Each
 * allocator runs in a child process of its own (bench_child.h's run_variant), which writes
 * its samples and total into memory it shares with the parent and reports its peak RSS
 * (getrusage of the child itself, sample buffer included). When the allocator records its
 * stop-the-world pauses, the child also copies the durations of the pauses of its run
 * there once every thread has finished: at most the last 256, the most gc_read_pauses
 * keeps, and the API does not say how many more there were. The parent sorts the samples
 * of all threads together and reads the worst push, the 99.9th, 99th and 50th percentiles
 * (nearest rank), and of the pauses the count, median, 90th and 99th percentiles and longest
 * (with fewer than 100 pauses, the 99th percentile is the longest). The measurement is
 * repeated (-r, default 1; totals vary by tens of percent between runs on a small machine)
 * with the allocators interleaved, and of each allocator the run with the shortest total
 * counts, all its numbers together.
 *
 * Output: first a line on the machine itself: how often a thread spinning on each CPU for
 * two seconds lost its CPU for over 0.5 ms (no collector can pause for less than the longest
 * of those it meets). Then per variant, one row per allocator (total seconds, worst push
 * and 99.9th and 99th percentiles in milliseconds, median in microseconds, peak RSS in MiB;
 * the "no GC" row is tricolor's allocator with collection off, the machine's own worst),
 * then tricolor's total time as a ratio to each other allocator's, then one row per
 * allocator that records pauses (count, median, 90th and 99th percentiles, longest, in
 * milliseconds, and how many took over 0.5 ms), with a note when the count reached 256:
 * those are the last 256, earlier ones were not kept. Last, one PASS/MISS line per goal and
 * variant: tricolor's worst push at most 2 ms, its pause p99 at most 0.5 ms, its total at
 * most 1.2 times bdwgc's. The goals are informational. The exit status is 1 when a C
 * allocator failed, else 0.
 */
#define GC_THREADS             /* declare bdwgc's thread functions... */
#define GC_NO_THREAD_REDIRECTS /* ...without renaming pthread_create for every allocator */

#define BENCH_NAME "bench_latency"

#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

#include <gc.h> /* bdwgc; plain <gc.h> would find the collector's internal gc/gc.h */

/* Only the measuring half of the shared harness is used; its report is not this table. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "bench_child.h"
#pragma GCC diagnostic pop

#include "tricolor.h"

enum {
    DEFAULT_PUSHES = 1000 * 1000,
    DEFAULT_WINDOW = 200 * 1000,
    MAX_PUSHES = 100 * 1000 * 1000,
    MAX_WINDOW = 10 * 1000 * 1000,
    DEFAULT_THREADS = 1,
    MAX_THREADS = 64,
    DEFAULT_REPEATS = 1,
    MAX_REPEATS = 100,
    MAX_PAUSES = 256,  /* the most gc_read_pauses keeps */
    BLOCK_SIZE = 1024, /* variant A */
    LIST_LENGTH = 16,  /* variant B */
    GO_OUTPUT = 1024,  /* enough for the twin's one line */
};

/* Goals for tricolor, in every variant. */
static const double GOAL_WORST_MS = 2.0;
static const double GOAL_PAUSE_P99_MS = 0.5;
static const double GOAL_TIME_RATIO = 1.2; /* total time / bdwgc's */

static const char GO_DEFAULT_SOURCE[] = "tools/bench_latency.go";
static const char GO_BINARY[] = "bench_latency_go"; /* built beside this program */

/* Variant B's node: one pointer and seven words of payload, 64 bytes. */
struct node {
    struct node *next;
    uintptr_t payload[7];
};
_Static_assert(sizeof(struct node) == 64, "a node is 64 bytes");

typedef int spawn_fn(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *),
                     void *arg);

struct allocator {
    const char *name;
    void *(*alloc)(size_t size);        /* zeroed; scanned for pointers */
    void *(*alloc_noscan)(size_t size); /* never holds pointers; contents undefined */
    int (*setup)(void);                 /* 0, or -1 on failure */
    spawn_fn *spawn;                    /* pthread_create for this allocator */
    int (*join)(pthread_t thread, void **ret);
    size_t (*read_pauses)(uint64_t *ns, size_t max); /* NULL: pauses not recorded */
};

struct variant {
    const char *name; /* as -v names it */
    const char *what;
    void *(*make)(const struct allocator *a, long id);
    int (*intact)(const void *msg, long id);
};

/* Memory a child shares with the parent: what one run measured. */
struct samples {
    uint64_t total_ns;
    size_t npauses; /* 0 when the allocator records none */
    uint64_t pause_ns[MAX_PAUSES];
    uint64_t ns[]; /* one per push, thread after thread */
};

/* One run of one variant, as the child sees it. */
struct job {
    const struct variant *variant;
    long pushes, window; /* in all, split among the threads */
    int threads;
    struct samples *out;
};

/* One mutator thread's part of a run. */
struct share {
    const struct allocator *a;
    const struct variant *variant;
    long pushes, window;
    uint64_t *ns; /* its samples */
    uint64_t start_ns, end_ns;
};

/* What a run measured, summarised. */
struct latency {
    uint64_t total_ns, worst_ns, p999_ns, p99_ns, median_ns;
    long peak_rss_kib;
    size_t npauses; /* the pauses kept; their summary below is 0 without any */
    uint64_t pause_median_ns, pause_p90_ns, pause_p99_ns, pause_max_ns;
    size_t pauses_over_goal; /* longer than GOAL_PAUSE_P99_MS */
};

/* ---- the allocators ---- */

static int tricolor_setup(void)
{
    return gc_init();
}

static void *bdwgc_alloc(size_t size)
{
    return GC_MALLOC(size);
}

static void *bdwgc_alloc_noscan(size_t size)
{
    return GC_MALLOC_ATOMIC(size);
}

static int bdwgc_setup(void)
{
    GC_INIT();
    return 0;
}

/* The floor: tricolor's allocator with collection off, so the heap only
 * grows. Its worst push is what the machine itself adds (page faults, and
 * with more threads than CPUs, waiting for a CPU); no collector's worst
 * push can be read below it. */
static int floor_setup(void)
{
    if (gc_init() != 0)
        return -1;
    gc_set_percent(-1);
    return 0;
}

static const struct allocator allocators[] = {
    /* compared with the rest */
    {"tricolor", gc_alloc, gc_alloc_noscan, tricolor_setup, gc_pthread_create, pthread_join,
     gc_read_pauses},
    {"bdwgc", bdwgc_alloc, bdwgc_alloc_noscan, bdwgc_setup, GC_pthread_create, GC_pthread_join,
     NULL},
    {"no GC", gc_alloc, gc_alloc_noscan, floor_setup, gc_pthread_create, pthread_join,
     NULL},
};
enum { NALLOCATORS = sizeof allocators / sizeof allocators[0] };
enum { ROW_TRICOLOR = 0, ROW_BDWGC = 1, ROW_NOGC = 2 }; /* the rows the goals name */

/* ---- the messages ---- */

static void *make_block(const struct allocator *a, long id)
{
    unsigned char *b = a->alloc_noscan(BLOCK_SIZE);
    if (!b)
        die("out of memory");
    memcpy(b, &id, sizeof id);
    memcpy(b + BLOCK_SIZE - sizeof id, &id, sizeof id);
    return b;
}

static int block_intact(const void *msg, long id)
{
    long head, tail;
    memcpy(&head, msg, sizeof head);
    memcpy(&tail, (const unsigned char *)msg + BLOCK_SIZE - sizeof tail, sizeof tail);
    return head == id && tail == id;
}

static void *make_list(const struct allocator *a, long id)
{
    struct node *head = NULL;
    for (int k = 0; k < LIST_LENGTH; k++) {
        struct node *n = a->alloc(sizeof *n);
        if (!n)
            die("out of memory");
        n->payload[0] = (uintptr_t)id;
        GC_WRITE(n->next, head);
        head = n;
    }
    return head;
}

static int list_intact(const void *msg, long id)
{
    int length = 0;
    for (const struct node *n = msg; n; n = n->next, length++)
        if (n->payload[0] != (uintptr_t)id)
            return 0;
    return length == LIST_LENGTH;
}

static const struct variant variants[] = {
    {"A", "one noscan 1 KiB block per message", make_block, block_intact},
    {"B", "a list of 16 pointerful 64-byte nodes per message", make_list, list_intact},
};
enum { NVARIANTS = sizeof variants / sizeof variants[0] };

/* ---- one run, in the child ---- */

static inline uint64_t clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The timed loop: every push timed alone, from making the message to storing it. */
static void push_all(struct share *s, void **window)
{
    s->start_ns = clock_ns();
    for (long i = 0; i < s->pushes; i++) {
        uint64_t t0 = clock_ns();
        void *msg = s->variant->make(s->a, i);
        GC_WRITE(window[i % s->window], msg);
        s->ns[i] = clock_ns() - t0;
    }
    s->end_ns = clock_ns();
}

/* Every slot holds the last message stored into it, intact; slots never used are empty. */
static void check_window(const struct share *s, void *const *window)
{
    for (long k = 0; k < s->window; k++) {
        if (k >= s->pushes) {
            check(window[k] == NULL, "unused slot empty");
            continue;
        }
        long last = k + (s->pushes - 1 - k) / s->window * s->window;
        check(window[k] && s->variant->intact(window[k], last), "message intact");
    }
}

/* One mutator thread: its window, its pushes, its check. */
static void *mutator_main(void *arg)
{
    struct share *s = arg;
    void **window = s->a->alloc((size_t)s->window * sizeof *window);
    if (!window)
        die("out of memory");
    push_all(s, window);
    check_window(s, window);
    return NULL;
}

/* Thread t's part of `n`: n / threads, and one more for each of the first n % threads. */
static long part(long n, int threads, int t)
{
    return n / threads + (t < n % threads);
}

/* Start every mutator, wait for all; the total spans the first push to the last. */
static void run_mutators(const struct allocator *a, const struct job *j, struct share *shares)
{
    pthread_t tids[MAX_THREADS];
    uint64_t *ns = j->out->ns;
    for (int t = 0; t < j->threads; t++) {
        shares[t] = (struct share){.a = a,
                                   .variant = j->variant,
                                   .pushes = part(j->pushes, j->threads, t),
                                   .window = part(j->window, j->threads, t),
                                   .ns = ns};
        ns += shares[t].pushes;
        if (a->spawn(&tids[t], NULL, mutator_main, &shares[t]) != 0)
            die("cannot create a thread");
    }
    uint64_t first = UINT64_MAX, last = 0;
    for (int t = 0; t < j->threads; t++) {
        if (a->join(tids[t], NULL) != 0)
            die("cannot join a thread");
        first = shares[t].start_ns < first ? shares[t].start_ns : first;
        last = shares[t].end_ns > last ? shares[t].end_ns : last;
    }
    j->out->total_ns = last - first;
}

static void run_job(const struct allocator *a, const struct job *j)
{
    struct share shares[MAX_THREADS];
    memset(j->out->ns, 0, (size_t)j->pushes * sizeof j->out->ns[0]); /* fault pages in */
    run_mutators(a, j, shares);
    j->out->npauses = a->read_pauses ? a->read_pauses(j->out->pause_ns, MAX_PAUSES) : 0;
}

/* ---- the allocators as bench_child.h sees them ---- */

static const char *allocator_name(unsigned k)
{
    return allocators[k].name;
}

static int allocator_setup(unsigned k)
{
    return allocators[k].setup();
}

static void allocator_workload(unsigned k, const void *job)
{
    run_job(&allocators[k], job);
}

static const struct bench bench = {NALLOCATORS, allocator_name, allocator_setup,
                                   allocator_workload};

/* ---- summarising, in the parent ---- */

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The nearest-rank percentile of `n` sorted samples, p in parts per million. */
static uint64_t percentile(const uint64_t *sorted, long n, long ppm)
{
    long rank = (n * ppm + 999999) / 1000000;
    return sorted[rank > 0 ? rank - 1 : 0];
}

/* The pauses' count, median, 90th and 99th percentiles, longest and how many exceed the
 * goal into `l`, when there are any. */
static void summarise_pauses(struct samples *s, struct latency *l)
{
    long n = (long)s->npauses;
    l->npauses = s->npauses;
    if (n == 0)
        return;
    qsort(s->pause_ns, s->npauses, sizeof s->pause_ns[0], compare_u64);
    l->pause_median_ns = percentile(s->pause_ns, n, 500000);
    l->pause_p90_ns = percentile(s->pause_ns, n, 900000);
    l->pause_p99_ns = percentile(s->pause_ns, n, 990000);
    l->pause_max_ns = s->pause_ns[n - 1];
    for (long i = 0; i < n; i++)
        l->pauses_over_goal += (double)s->pause_ns[i] * 1e-6 > GOAL_PAUSE_P99_MS;
}

static struct latency summarise(struct samples *s, long n, long peak_rss_kib)
{
    qsort(s->ns, (size_t)n, sizeof s->ns[0], compare_u64);
    struct latency l = {.total_ns = s->total_ns,
                        .worst_ns = s->ns[n - 1],
                        .p999_ns = percentile(s->ns, n, 999000),
                        .p99_ns = percentile(s->ns, n, 990000),
                        .median_ns = percentile(s->ns, n, 500000),
                        .peak_rss_kib = peak_rss_kib};
    summarise_pauses(s, &l);
    return l;
}

/* One run of allocator `k` in a child; 0 with `*l` filled, or -1 when it failed. */
static int run_c(unsigned k, struct job *j, struct latency *l)
{
    struct result r;
    if (run_variant(&bench, k, j, &r) != 0)
        return -1;
    *l = summarise(j->out, j->pushes, r.peak_rss_kib);
    return 0;
}

/* ---- the Go twin ---- */

static int on_path(const char *prog)
{
    char path[PATH_MAX];
    const char *p = getenv("PATH");
    while (p && *p) {
        int len = (int)strcspn(p, ":");
        int n = snprintf(path, sizeof path, "%.*s/%s", len ? len : 1, len ? p : ".", prog);
        if (n < (int)sizeof path && access(path, X_OK) == 0)
            return 1;
        p += len + (p[len] == ':');
    }
    return 0;
}

/* Start argv[0] (looked up on PATH) with its standard output on `out` (-1: ours). */
static pid_t spawn(char *const argv[], int out)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("cannot fork");
    if (pid == 0) {
        if (out >= 0 && dup2(out, STDOUT_FILENO) < 0)
            _exit(127);
        execvp(argv[0], argv);
        fprintf(stderr, BENCH_NAME ": cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

/* Build the twin from `source` into this program's directory; 0 with its path in `binary`,
 * or -1 with the reason printed. */
static int go_build(const char *source, char *binary, size_t size)
{
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) {
        fprintf(stderr, BENCH_NAME ": cannot find this program's directory\n");
        return -1;
    }
    exe[len] = '\0';
    *strrchr(exe, '/') = '\0';
    if (snprintf(binary, size, "%s/%s", exe, GO_BINARY) >= (int)size) {
        fprintf(stderr, BENCH_NAME ": this program's path is too long\n");
        return -1;
    }
    char *argv[] = {"go", "build", "-o", binary, (char *)source, NULL};
    return reap(spawn(argv, -1), "go build");
}

/* The twin's one line, in the format tools/bench_latency.go prints. */
static int go_parse(const char *out, const struct job *j, struct latency *l)
{
    char name[8];
    long pushes, window;
    int threads;
    const char *line = strstr(out, "bench_latency.go: ");
    *l = (struct latency){0};
    return line &&
           sscanf(line,
                  "bench_latency.go: variant %7s pushes %ld window %ld threads %d total_ns %" SCNu64
                  " worst_ns %" SCNu64 " p999_ns %" SCNu64 " p99_ns %" SCNu64 " median_ns %" SCNu64
                  " peak_rss_kib %ld",
                  name, &pushes, &window, &threads, &l->total_ns, &l->worst_ns, &l->p999_ns,
                  &l->p99_ns, &l->median_ns, &l->peak_rss_kib) == 10 &&
           strcmp(name, j->variant->name) == 0 && pushes == j->pushes && window == j->window &&
           threads == j->threads;
}

/* One run of the twin; 0 with `*l` filled, or -1 with the reason printed. */
static int run_go(const char *binary, const struct job *j, struct latency *l)
{
    char pushes[24], window[24], threads[24], out[GO_OUTPUT];
    snprintf(pushes, sizeof pushes, "%ld", j->pushes);
    snprintf(window, sizeof window, "%ld", j->window);
    snprintf(threads, sizeof threads, "%d", j->threads);
    char *argv[] = {(char *)binary, "-variant", (char *)j->variant->name, "-n", pushes,
                    "-w", window, "-t", threads, NULL};
    int fds[2];
    if (pipe(fds) != 0)
        die("cannot create a pipe");
    pid_t pid = spawn(argv, fds[1]);
    close(fds[1]);
    size_t used = 0;
    while (used < sizeof out - 1) {
        ssize_t got = read(fds[0], out + used, sizeof out - 1 - used);
        if (got > 0)
            used += (size_t)got;
        else if (got == 0 || errno != EINTR)
            break;
    }
    close(fds[0]);
    out[used] = '\0';
    if (reap(pid, "go") != 0)
        return -1;
    if (!go_parse(out, j, l)) {
        fprintf(stderr, BENCH_NAME ": go: unexpected output: %s\n", out);
        return -1;
    }
    return 0;
}

/* ---- measuring a variant ---- */

enum { ROW_GO = NALLOCATORS, NROWS }; /* rows: the C allocators, then go */

enum row_state { ROW_FAILED, ROW_OK, ROW_SKIPPED };

struct row {
    enum row_state state;
    struct latency l;
};

static const char *row_name(unsigned k)
{
    return k == ROW_GO ? "go" : allocators[k].name;
}

/* Keep the run with the shorter total; a failed run fails the row. */
static void keep(struct row *row, int failed, const struct latency *l, int first)
{
    if (failed)
        row->state = ROW_FAILED;
    else if (row->state == ROW_OK && (first || l->total_ns < row->l.total_ns))
        row->l = *l;
}

/* `repeats` runs of every row, interleaved; `go_binary` NULL leaves go out. */
static void measure(struct job *j, int repeats, const char *go_binary, const int *skip,
                    struct row *rows)
{
    struct latency l;
    for (unsigned k = 0; k < NROWS; k++)
        rows[k].state = skip[k] || (k == ROW_GO && !go_binary) ? ROW_SKIPPED : ROW_OK;
    for (int rep = 0; rep < repeats; rep++) {
        for (unsigned k = 0; k < NALLOCATORS; k++)
            if (rows[k].state == ROW_OK)
                keep(&rows[k], run_c(k, j, &l) != 0, &l, rep == 0);
        if (rows[ROW_GO].state == ROW_OK)
            keep(&rows[ROW_GO], run_go(go_binary, j, &l) != 0, &l, rep == 0);
    }
}

/* ---- reporting ---- */

static double ms(uint64_t ns)
{
    return (double)ns * 1e-6;
}

static void print_table(const struct row *rows)
{
    printf("%-10s %9s %10s %10s %9s %10s %13s\n", "allocator", "total s", "worst ms", "p99.9 ms",
           "p99 ms", "median us", "peak RSS MiB");
    for (unsigned k = 0; k < NROWS; k++) {
        const struct latency *l = &rows[k].l;
        if (rows[k].state == ROW_OK)
            printf("%-10s %9.3f %10.3f %10.3f %9.3f %10.3f %13.1f\n", row_name(k),
                   (double)l->total_ns * 1e-9, ms(l->worst_ns), ms(l->p999_ns), ms(l->p99_ns),
                   (double)l->median_ns * 1e-3, mib(l->peak_rss_kib));
        else
            printf("%-10s %9s\n", row_name(k), rows[k].state == ROW_FAILED ? "failed" : "skipped");
    }
}

/* Row 0's total time against every other row that ran. */
static void print_time_ratios(const struct row *rows)
{
    char what[64];
    int header = 0;
    for (unsigned k = 1; rows[0].state == ROW_OK && k < NROWS; k++) {
        if (rows[k].state != ROW_OK)
            continue;
        if (!header++)
            printf("\n%-20s %10s\n", "ratio", "total time");
        snprintf(what, sizeof what, "%s / %s", row_name(0), row_name(k));
        printf("%-20s %10.3f\n", what, (double)rows[0].l.total_ns / (double)rows[k].l.total_ns);
    }
}

/* The pauses of every C allocator that records them, from the runs that counted. */
static void print_pauses(const struct row *rows)
{
    int header = 0;
    for (unsigned k = 0; k < NALLOCATORS; k++) {
        const struct latency *l = &rows[k].l;
        if (rows[k].state != ROW_OK || !allocators[k].read_pauses)
            continue;
        if (!header++)
            printf("\n%-10s %9s %10s %10s %10s %10s %12s\n", "pauses", "count", "median ms",
                   "p90 ms", "p99 ms", "max ms", "over 0.5 ms");
        if (l->npauses == 0)
            printf("%-10s %9d %10s %10s %10s %10s %12s\n", row_name(k), 0, "-", "-", "-", "-",
                   "-");
        else
            printf("%-10s %9zu %10.3f %10.3f %10.3f %10.3f %12zu\n", row_name(k), l->npauses,
                   ms(l->pause_median_ns), ms(l->pause_p90_ns), ms(l->pause_p99_ns),
                   ms(l->pause_max_ns), l->pauses_over_goal);
        if (l->npauses == MAX_PAUSES)
            printf("%-10s (the last %d pauses: the collector keeps no more, earlier ones are not"
                   " counted)\n",
                   "", MAX_PAUSES);
    }
}

static const char *verdict(int met)
{
    return met ? "PASS" : "MISS";
}

static void print_pause_goal(const struct variant *v, const struct latency *t)
{
    if (t->npauses == 0) {
        printf("----  %s  tricolor pause p99: no pauses recorded\n", v->name);
        return;
    }
    printf("%s  %s  tricolor pause p99 %.3f ms of the last %zu (goal <= %.1f ms)\n",
           verdict(ms(t->pause_p99_ns) <= GOAL_PAUSE_P99_MS), v->name, ms(t->pause_p99_ns),
           t->npauses, GOAL_PAUSE_P99_MS);
}

static void print_goals(const struct variant *v, const struct row *rows)
{
    const struct latency *t = &rows[ROW_TRICOLOR].l, *b = &rows[ROW_BDWGC].l;
    if (rows[ROW_TRICOLOR].state != ROW_OK) {
        printf("MISS  %s  tricolor did not run\n", v->name);
        return;
    }
    printf("%s  %s  tricolor worst push %.3f ms (goal <= %.1f ms",
           verdict(ms(t->worst_ns) <= GOAL_WORST_MS), v->name, ms(t->worst_ns), GOAL_WORST_MS);
    if (rows[ROW_NOGC].state == ROW_OK)
        printf("; with no GC at all: %.3f ms", ms(rows[ROW_NOGC].l.worst_ns));
    printf(")\n");
    print_pause_goal(v, t);
    if (rows[ROW_BDWGC].state != ROW_OK) {
        printf("----  %s  tricolor total time: bdwgc did not run\n", v->name);
        return;
    }
    double ratio = (double)t->total_ns / (double)b->total_ns;
    printf("%s  %s  tricolor total time %.3f x bdwgc's (goal <= %.1f x)\n",
           verdict(ratio <= GOAL_TIME_RATIO), v->name, ratio, GOAL_TIME_RATIO);
}

/* ---- options ---- */

struct options {
    long pushes, window;
    int threads;
    int selected[NVARIANTS];
    int skip[NROWS]; /* rows left out (-a) */
    int repeats;
    const char *go_source; /* NULL: leave Go out */
};

static __attribute__((noreturn)) void usage(const char *why)
{
    FILE *out = why ? stderr : stdout;
    if (why)
        fprintf(out, BENCH_NAME ": %s\n", why);
    fprintf(out,
            "usage: " BENCH_NAME " [-n PUSHES] [-w WINDOW] [-t THREADS] [-v A|B|AB]"
            " [-r REPEATS] [-g GOFILE|none] [-a ALLOCATORS]\n"
            "  -n  messages pushed, in all (1..%d, default %d)\n"
            "  -w  window: messages kept live, in all (1..%d, default %d)\n"
            "  -t  mutator threads, each with its share of -n and -w (1..%d, default %d;"
            " at most -n and -w)\n"
            "  -v  message variants to run, A, B or AB (default AB)\n"
            "  -r  runs of each allocator, the fastest counts (1..%d, default %d)\n"
            "  -g  the Go twin's source, or none (default %s)\n"
            "  -a  the allocators to run, comma-separated from tricolor, bdwgc, nogc, go"
            " (default all)\n",
            MAX_PUSHES, DEFAULT_PUSHES, MAX_WINDOW, DEFAULT_WINDOW, MAX_THREADS, DEFAULT_THREADS,
            MAX_REPEATS, DEFAULT_REPEATS, GO_DEFAULT_SOURCE);
    exit(why ? 2 : 0);
}

/* selected[k] = 1 for every variant whose name is a letter of `list`. */
static void parse_selection(int *selected, const char *list)
{
    memset(selected, 0, NVARIANTS * sizeof *selected);
    for (const char *c = list; *c; c++) {
        unsigned k = 0;
        while (k < NVARIANTS && variants[k].name[0] != *c)
            k++;
        if (k == NVARIANTS)
            usage("unknown variant");
        selected[k] = 1;
    }
    if (!*list)
        usage("no variant");
}

/* skip[k] = 1 for every row not named in the comma-separated `list`. */
static void parse_allocators(int *skip, const char *list)
{
    static const char *const names[NROWS] = {"tricolor", "bdwgc", "nogc", "go"};
    for (unsigned k = 0; k < NROWS; k++)
        skip[k] = 1;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        unsigned k = 0;
        while (k < NROWS && (strlen(names[k]) != len || strncmp(names[k], p, len) != 0))
            k++;
        if (k == NROWS)
            usage("unknown allocator (-a takes tricolor, bdwgc, nogc, go)");
        skip[k] = 0;
        p += len + (p[len] == ',');
    }
}

static void parse_options(struct options *o, int argc, char **argv)
{
    int opt;
    opterr = 0;
    *o = (struct options){.pushes = DEFAULT_PUSHES,
                          .window = DEFAULT_WINDOW,
                          .threads = DEFAULT_THREADS,
                          .repeats = DEFAULT_REPEATS,
                          .go_source = GO_DEFAULT_SOURCE};
    parse_selection(o->selected, "AB");
    while ((opt = getopt(argc, argv, "n:w:t:v:r:g:a:h")) != -1) {
        if (opt == 'n')
            o->pushes = parse_number(optarg, 1, MAX_PUSHES);
        else if (opt == 'w')
            o->window = parse_number(optarg, 1, MAX_WINDOW);
        else if (opt == 't')
            o->threads = parse_number(optarg, 1, MAX_THREADS);
        else if (opt == 'v')
            parse_selection(o->selected, optarg);
        else if (opt == 'r')
            o->repeats = parse_number(optarg, 1, MAX_REPEATS);
        else if (opt == 'g')
            o->go_source = strcmp(optarg, "none") == 0 ? NULL : optarg;
        else if (opt == 'a')
            parse_allocators(o->skip, optarg);
        else
            usage(opt == 'h' ? NULL : "unknown option or missing value");
    }
    if (optind != argc)
        usage("unexpected argument");
    if (o->threads > o->pushes || o->threads > o->window)
        usage("more threads than pushes or window slots");
}

/* ---- the machine's own interruptions ---- */

/* A pause waits for every stopped thread to run its signal handler, so a CPU the host
 * takes away for a while (a virtual machine's stolen time, interrupts, other processes)
 * lengthens every pause it overlaps, whatever the collector does. One thread per online
 * CPU spins reading the clock for NOISE_SECONDS; a gap between two reads longer than
 * NOISE_GAP_NS is a time its CPU ran something else. */
#define NOISE_SECONDS 2
#define NOISE_GAP_NS  500000
#define MAX_NOISE_CPUS 64

struct noise {
    pthread_t id;
    unsigned long gaps, gaps_1ms;
    uint64_t longest_ns;
};

static void *noise_spin(void *arg)
{
    struct noise *n = arg;
    uint64_t last = clock_ns(), end = last + NOISE_SECONDS * UINT64_C(1000000000);
    while (last < end) {
        uint64_t t = clock_ns(), gap = t - last;
        n->gaps += gap > NOISE_GAP_NS;
        n->gaps_1ms += gap > 1000000;
        if (gap > n->longest_ns)
            n->longest_ns = gap;
        last = t;
    }
    return NULL;
}

static void print_machine_noise(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    struct noise n[MAX_NOISE_CPUS] = {{0}};
    if (cpus < 1 || cpus > MAX_NOISE_CPUS)
        cpus = cpus < 1 ? 1 : MAX_NOISE_CPUS;
    long started = 0;
    while (started < cpus && pthread_create(&n[started].id, NULL, noise_spin, &n[started]) == 0)
        started++;
    unsigned long gaps = 0, gaps_1ms = 0;
    uint64_t longest = 0;
    for (long i = 0; i < started; i++) {
        pthread_join(n[i].id, NULL);
        gaps += n[i].gaps;
        gaps_1ms += n[i].gaps_1ms;
        longest = n[i].longest_ns > longest ? n[i].longest_ns : longest;
    }
    printf("machine: %ld thread(s) spinning on %ld CPU(s) for %d s lost their CPU %lu times for"
           " over 0.5 ms (%lu over 1 ms; longest %.3f ms): a pause that meets one waits for"
           " it\n",
           started, cpus, NOISE_SECONDS, gaps, gaps_1ms, (double)longest * 1e-6);
}

/* ---- main ---- */

/* The twin built, or NULL (the reason printed) when Go is left out. */
static const char *go_prepare(const char *source, char *binary, size_t size)
{
    if (!source)
        return NULL;
    if (!on_path("go")) {
        printf("go: not on PATH, Go rows skipped\n");
        return NULL;
    }
    if (access(source, R_OK) != 0) {
        printf("go: %s not found (run from the repository root, or -g), Go rows skipped\n", source);
        return NULL;
    }
    if (go_build(source, binary, size) != 0) {
        printf("go: the twin did not build, Go rows skipped\n");
        return NULL;
    }
    return binary;
}

/* Shared with every child: the total, the pauses and one sample per push. */
static struct samples *shared_samples(long pushes)
{
    size_t size = sizeof(struct samples) + (size_t)pushes * sizeof(uint64_t);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        die("cannot map the sample buffer");
    return p;
}

int main(int argc, char **argv)
{
    struct options o;
    parse_options(&o, argc, argv);
    printf(BENCH_NAME ": window of %ld messages, %ld pushes, %d mutator thread(s), best of %d\n",
           o.window, o.pushes, o.threads, o.repeats);
    print_machine_noise();
    char go_binary[PATH_MAX];
    const char *go = o.skip[ROW_GO] ? NULL : go_prepare(o.go_source, go_binary, sizeof go_binary);
    struct row rows[NVARIANTS][NROWS];
    struct job job = {.pushes = o.pushes,
                      .window = o.window,
                      .threads = o.threads,
                      .out = shared_samples(o.pushes)};
    int failures = 0;
    for (unsigned v = 0; v < NVARIANTS; v++) {
        if (!o.selected[v])
            continue;
        job.variant = &variants[v];
        printf("\nvariant %s: %s\n", variants[v].name, variants[v].what);
        measure(&job, o.repeats, go, o.skip, rows[v]);
        print_table(rows[v]);
        print_time_ratios(rows[v]);
        print_pauses(rows[v]);
        for (unsigned k = 0; k < NALLOCATORS; k++)
            failures += rows[v][k].state == ROW_FAILED;
    }
    printf("\ngoals (informational)\n");
    for (unsigned v = 0; v < NVARIANTS; v++)
        if (o.selected[v])
            print_goals(&variants[v], rows[v]);
    return failures ? 1 : 0;
}

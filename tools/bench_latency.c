/*
 * bench_latency.c — message latency: the worst single allocation-and-store a program sees
 * while a large window of live messages turns over, tricolor against bdwgc and Go.
 *
 * Usage: bench_latency [-n PUSHES] [-w WINDOW] [-v A|B|AB] [-r REPEATS] [-g GOFILE|none]
 *
 * Links with the static library, libatomic_ops and $(pkg-config --libs bdw-gc).
 *
 * The workload, the classic GC latency test. A window (ring) of W message slots (-w, default
 * 200,000) starts empty; the program makes N pushes (-n, default 1,000,000). Push i creates
 * message i and stores it into slot i % W, dropping the message stored there W pushes
 * earlier, so once the window is full the live heap stays at W messages while every push
 * allocates. What a message is, is the workload variant (-v, default AB: both, in turn):
 *   A  one noscan 1 KiB block (gc_alloc_noscan, GC_MALLOC_ATOMIC) with its id written into
 *      its first and last 8 bytes, so that it is touched: ~200 MB of live data the collector
 *      never looks inside;
 *   B  a linked list of 16 pointerful 64-byte nodes (gc_alloc, GC_MALLOC), linked with
 *      GC_WRITE, the id in each node: ~200 MB of live heap that every cycle must trace.
 * The variants are rows of one table (`variants`): a name, a line describing the message, the
 * function that makes one and the function that checks one. The window itself is an object
 * of the allocator under test (gc_alloc, GC_MALLOC), scanned like any heap object; every
 * store into it goes through GC_WRITE. After the last push every slot is checked to hold the
 * last message stored into it, intact, so a collector that frees a live message fails.
 *
 * Allocators are rows of another table (`allocators`): a name, a scanned and a noscan
 * allocation function and a setup function. Row 0, tricolor, is compared with the rest:
 *   tricolor  gc_alloc and gc_alloc_noscan, GCPERCENT as the environment sets it;
 *   bdwgc     GC_MALLOC and GC_MALLOC_ATOMIC after GC_INIT, its default settings.
 * A third row, go, comes from the Go twin of this program, tools/bench_latency.go (-g names
 * it; "none" leaves Go out), which runs the same loop on the same message shapes with GOGC
 * as the environment sets it. When `go` is on PATH the twin is built once, beside this
 * program, and run after the C allocators in each repeat; it prints one line, which is
 * parsed. Without `go`, or when the twin fails to build or run, its row says so and the rest
 * of the run goes on.
 *
 * Measuring. Every push is timed alone: CLOCK_MONOTONIC before the message is made and
 * after it is stored, the difference kept as one sample (8 bytes a push, in a buffer
 * touched before the loop starts, so no page fault lands in a push). The total is the wall
 * time of the push loop. Each allocator runs in a child process of its own
 * (bench_child.h's run_variant), which writes its samples and total into memory it shares
 * with the parent and reports its peak RSS (getrusage of the child itself, sample buffer
 * included). The parent sorts the samples and reads the worst push, the 99.9th, 99th and
 * 50th percentiles (nearest rank). The measurement is repeated (-r, default 1; totals vary
 * by tens of percent between runs on a small machine) with the allocators interleaved, and
 * of each allocator the run with the shortest total counts, all its numbers together.
 *
 * Output: per variant, one row per allocator (total seconds, worst push and 99.9th and 99th
 * percentiles in milliseconds, median in microseconds, peak RSS in MiB), then tricolor's
 * total time as a ratio to each other allocator's. Last, one PASS/MISS line per goal and
 * variant: tricolor's worst push at most 2 ms, its total at most 1.2 times bdwgc's. The goals
 * are informational. The exit status is 1 when a C allocator failed, else 0.
 */
#define BENCH_NAME "bench_latency"

#include <inttypes.h>
#include <limits.h>
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
    DEFAULT_REPEATS = 1,
    MAX_REPEATS = 100,
    BLOCK_SIZE = 1024, /* variant A */
    LIST_LENGTH = 16,  /* variant B */
    GO_OUTPUT = 1024,  /* enough for the twin's one line */
};

/* Goals for tricolor, in every variant. */
static const double GOAL_WORST_MS = 2.0;
static const double GOAL_TIME_RATIO = 1.2; /* total time / bdwgc's */

static const char GO_DEFAULT_SOURCE[] = "tools/bench_latency.go";
static const char GO_BINARY[] = "bench_latency_go"; /* built beside this program */

/* Variant B's node: one pointer and seven words of payload, 64 bytes. */
struct node {
    struct node *next;
    uintptr_t payload[7];
};
_Static_assert(sizeof(struct node) == 64, "a node is 64 bytes");

struct allocator {
    const char *name;
    void *(*alloc)(size_t size);        /* zeroed; scanned for pointers */
    void *(*alloc_noscan)(size_t size); /* never holds pointers; contents undefined */
    int (*setup)(void);                 /* 0, or -1 on failure */
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
    uint64_t ns[]; /* one per push */
};

/* One run of one variant, as the child sees it. */
struct job {
    const struct variant *variant;
    long pushes, window;
    struct samples *out;
};

/* What a run measured, summarised. */
struct latency {
    uint64_t total_ns, worst_ns, p999_ns, p99_ns, median_ns;
    long peak_rss_kib;
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

static const struct allocator allocators[] = {
    {"tricolor", gc_alloc, gc_alloc_noscan, tricolor_setup}, /* compared with the rest */
    {"bdwgc", bdwgc_alloc, bdwgc_alloc_noscan, bdwgc_setup},
};
enum { NALLOCATORS = sizeof allocators / sizeof allocators[0] };
enum { ROW_TRICOLOR = 0, ROW_BDWGC = 1 }; /* the rows the goals name */

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
static void push_all(const struct allocator *a, const struct job *j, void **window)
{
    uint64_t *ns = j->out->ns;
    uint64_t start = clock_ns();
    for (long i = 0; i < j->pushes; i++) {
        uint64_t t0 = clock_ns();
        void *msg = j->variant->make(a, i);
        GC_WRITE(window[i % j->window], msg);
        ns[i] = clock_ns() - t0;
    }
    j->out->total_ns = clock_ns() - start;
}

/* Every slot holds the last message stored into it, intact; slots never used are empty. */
static void check_window(const struct job *j, void *const *window)
{
    for (long s = 0; s < j->window; s++) {
        if (s >= j->pushes) {
            check(window[s] == NULL, "unused slot empty");
            continue;
        }
        long last = s + (j->pushes - 1 - s) / j->window * j->window;
        check(window[s] && j->variant->intact(window[s], last), "message intact");
    }
}

static void run_job(const struct allocator *a, const struct job *j)
{
    memset(j->out->ns, 0, (size_t)j->pushes * sizeof j->out->ns[0]); /* fault pages in */
    void **window = a->alloc((size_t)j->window * sizeof *window);
    if (!window)
        die("out of memory");
    push_all(a, j, window);
    check_window(j, window);
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

static struct latency summarise(struct samples *s, long n, long peak_rss_kib)
{
    qsort(s->ns, (size_t)n, sizeof s->ns[0], compare_u64);
    return (struct latency){.total_ns = s->total_ns,
                            .worst_ns = s->ns[n - 1],
                            .p999_ns = percentile(s->ns, n, 999000),
                            .p99_ns = percentile(s->ns, n, 990000),
                            .median_ns = percentile(s->ns, n, 500000),
                            .peak_rss_kib = peak_rss_kib};
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
    const char *line = strstr(out, "bench_latency.go: ");
    return line &&
           sscanf(line,
                  "bench_latency.go: variant %7s pushes %ld window %ld total_ns %" SCNu64
                  " worst_ns %" SCNu64 " p999_ns %" SCNu64 " p99_ns %" SCNu64 " median_ns %" SCNu64
                  " peak_rss_kib %ld",
                  name, &pushes, &window, &l->total_ns, &l->worst_ns, &l->p999_ns, &l->p99_ns,
                  &l->median_ns, &l->peak_rss_kib) == 9 &&
           strcmp(name, j->variant->name) == 0 && pushes == j->pushes && window == j->window;
}

/* One run of the twin; 0 with `*l` filled, or -1 with the reason printed. */
static int run_go(const char *binary, const struct job *j, struct latency *l)
{
    char pushes[24], window[24], out[GO_OUTPUT];
    snprintf(pushes, sizeof pushes, "%ld", j->pushes);
    snprintf(window, sizeof window, "%ld", j->window);
    char *argv[] = {(char *)binary, "-variant", (char *)j->variant->name, "-n", pushes, "-w",
                    window, NULL};
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
static void measure(struct job *j, int repeats, const char *go_binary, struct row *rows)
{
    struct latency l;
    for (unsigned k = 0; k < NROWS; k++)
        rows[k].state = k == ROW_GO && !go_binary ? ROW_SKIPPED : ROW_OK;
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

static const char *verdict(int met)
{
    return met ? "PASS" : "MISS";
}

static void print_goals(const struct variant *v, const struct row *rows)
{
    const struct latency *t = &rows[ROW_TRICOLOR].l, *b = &rows[ROW_BDWGC].l;
    if (rows[ROW_TRICOLOR].state != ROW_OK) {
        printf("MISS  %s  tricolor did not run\n", v->name);
        return;
    }
    printf("%s  %s  tricolor worst push %.3f ms (goal <= %.1f ms)\n",
           verdict(ms(t->worst_ns) <= GOAL_WORST_MS), v->name, ms(t->worst_ns), GOAL_WORST_MS);
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
    int selected[NVARIANTS];
    int repeats;
    const char *go_source; /* NULL: leave Go out */
};

static __attribute__((noreturn)) void usage(const char *why)
{
    FILE *out = why ? stderr : stdout;
    if (why)
        fprintf(out, BENCH_NAME ": %s\n", why);
    fprintf(out,
            "usage: " BENCH_NAME " [-n PUSHES] [-w WINDOW] [-v A|B|AB] [-r REPEATS]"
            " [-g GOFILE|none]\n"
            "  -n  messages pushed (1..%d, default %d)\n"
            "  -w  window: messages kept live (1..%d, default %d)\n"
            "  -v  message variants to run, A, B or AB (default AB)\n"
            "  -r  runs of each allocator, the fastest counts (1..%d, default %d)\n"
            "  -g  the Go twin's source, or none (default %s)\n",
            MAX_PUSHES, DEFAULT_PUSHES, MAX_WINDOW, DEFAULT_WINDOW, MAX_REPEATS, DEFAULT_REPEATS,
            GO_DEFAULT_SOURCE);
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

static void parse_options(struct options *o, int argc, char **argv)
{
    int opt;
    opterr = 0;
    *o = (struct options){.pushes = DEFAULT_PUSHES,
                          .window = DEFAULT_WINDOW,
                          .repeats = DEFAULT_REPEATS,
                          .go_source = GO_DEFAULT_SOURCE};
    parse_selection(o->selected, "AB");
    while ((opt = getopt(argc, argv, "n:w:v:r:g:h")) != -1) {
        if (opt == 'n')
            o->pushes = parse_number(optarg, 1, MAX_PUSHES);
        else if (opt == 'w')
            o->window = parse_number(optarg, 1, MAX_WINDOW);
        else if (opt == 'v')
            parse_selection(o->selected, optarg);
        else if (opt == 'r')
            o->repeats = parse_number(optarg, 1, MAX_REPEATS);
        else if (opt == 'g')
            o->go_source = strcmp(optarg, "none") == 0 ? NULL : optarg;
        else
            usage(opt == 'h' ? NULL : "unknown option or missing value");
    }
    if (optind != argc)
        usage("unexpected argument");
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

/* Shared with every child: the total and one sample per push. */
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
    printf(BENCH_NAME ": window of %ld messages, %ld pushes, best of %d\n", o.window, o.pushes,
           o.repeats);
    char go_binary[PATH_MAX];
    const char *go = go_prepare(o.go_source, go_binary, sizeof go_binary);
    struct row rows[NVARIANTS][NROWS];
    struct job job = {.pushes = o.pushes, .window = o.window, .out = shared_samples(o.pushes)};
    int failures = 0;
    for (unsigned v = 0; v < NVARIANTS; v++) {
        if (!o.selected[v])
            continue;
        job.variant = &variants[v];
        printf("\nvariant %s: %s\n", variants[v].name, variants[v].what);
        measure(&job, o.repeats, go, rows[v]);
        print_table(rows[v]);
        print_time_ratios(rows[v]);
        for (unsigned k = 0; k < NALLOCATORS; k++)
            failures += rows[v][k].state == ROW_FAILED;
    }
    printf("\ngoals (informational)\n");
    for (unsigned v = 0; v < NVARIANTS; v++)
        if (o.selected[v])
            print_goals(&variants[v], rows[v]);
    return failures ? 1 : 0;
}

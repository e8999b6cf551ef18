/*
 * bench_memory.c — the memory acceptance benchmark: tricolor's peak RSS under a memory limit,
 * its speed with a limit below the live heap, and how fast its resident size follows a live
 * heap that drops; bdwgc and glibc malloc as baselines. One run prints every target of the
 * product with MET or MISSED, and the ratios.
 *
 * Usage: bench_memory [-s SCALE] [-r REPEATS] [-p PARTS]
 *
 * Links with the static library, libatomic_ops and $(pkg-config --libs bdw-gc).
 *
 * The live set. Groups of 4 KiB: a list of 48 scanned 64-byte nodes (gc_alloc, GC_MALLOC,
 * malloc), each pointing at the next and at the group's 1 KiB noscan buffer (gc_alloc_noscan,
 * GC_MALLOC_ATOMIC, malloc). Every node carries its group's id, its index and check words,
 * the buffer its id's low byte; the checks run at the end. The groups hang from `slots`, an
 * array of the allocator under test reached from a global, so both collectors find it among
 * their roots; every pointer store goes through GC_WRITE (a plain store in the baselines).
 *
 * Churn. Objects of 16 B to 64 KiB: 90% of 16-256 B, 9% of 256 B-4 KiB, 1% of 4-64 KiB
 * (about 660 B on average, half of the bytes in the 1% of large ones); below 1 KiB they are
 * scanned and point at a node of the live set, from 1 KiB up they are noscan.
 * Each is written whole and stored into a ring of the 256 latest (malloc frees the one it
 * replaces), so it dies young. After every 64 KiB of churn one random group is replaced by a
 * new one (malloc frees the old), so the live set keeps its size while it changes: over the
 * full run, twice over.
 *
 * The parts (-p, default 123; sizes at -s 1, every size in MiB multiplied by -s):
 *   1. Churn under a limit: a 64 MiB live set, then 2 GiB of churn. Rows: tricolor with
 *      GCMEMLIMIT=100MiB GCPERCENT=off in its environment (target: peak RSS <= 105 MiB), the
 *      same set through gc_set_percent(-1) and gc_set_memory_limit (<= 105 MiB), tricolor
 *      as it starts, GCPERCENT=100 and no limit (<= 2.2 x live + 16 MiB), bdwgc with its
 *      defaults and malloc+free. Then each tricolor row's time and peak RSS over bdwgc's and
 *      malloc's.
 *   2. Limit below the live set: part 1's workload with a 32 MiB limit and GCPERCENT off.
 *      Target: at least 1/3 of the speed (wall time) of part 1's GCPERCENT=100 row, which
 *      runs for it when part 1 does not. The ratio of CPU times is printed too: on a
 *      machine shared with other work, wall times are the noisier.
 *   3. Live set drop, tricolor as it starts: 500 MiB of groups, the first 10 MiB built first,
 *      then all but those dropped (their slots cleared) and the stack below scrubbed, so that
 *      no stale word keeps them. In the first row the program then runs a light load, 2 MiB
 *      of churn every 10 ms, sampling its RSS (/proc/self/statm) every 50 ms, until the RSS
 *      is below 100 MiB (target: within 5 s), with no library call; its RSS every 0.5 s is
 *      printed. It gives up after 30 s (below -s 1, 30 s x SCALE, but at least 6 s). In the
 *      second row it calls gc_free_os_memory() once right after the drop (target: RSS below
 *      100 MiB when it returns), then runs the light load for 2 s more. The kept groups are
 *      the oldest, packed in the lowest spans: a non-moving heap cannot return a span that
 *      holds one live object, and scattering the survivors would measure fragmentation.
 * With -s below 1 the fixed costs of a process (code, libc, thread stacks, the collector's
 * metadata) weigh more against the scaled targets: -s 0.05 is a smoke test of the tool (a
 * few seconds), whose verdicts mean little.
 *
 * Measuring. Every run is a process of its own: the parent forks, and the child executes
 * this program again (/proc/self/exe, with the hidden option -X RUN,FD) with GCPERCENT and
 * GCMEMLIMIT removed from its environment, or set for the row that takes them from there:
 * tricolor reads its environment once, in a constructor, before main. GCDEBUG and GCPROCS
 * pass through. The child times its workload (CLOCK_MONOTONIC, live set
 * building included), reads its CPU time (getrusage) and its peak RSS (VmHWM of
 * /proc/self/status, which starts again at exec), and sends them through a pipe with the
 * drop part's findings. Runs are repeated (-r, default 1) with the rows interleaved; a
 * churn row shows its fastest run's times and the highest peak RSS of all its runs, so a
 * target is met only when every run met it; a drop row shows every run.
 *
 * The exit status is 0 whether the targets are met or not (this is a measurement); 1 when a
 * run failed (crashed, ran out of memory or found a live object damaged), 2 on bad usage.
 */
#define BENCH_NAME "bench_memory"

#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>

#include <gc.h> /* bdwgc; plain <gc.h> would find the collector's internal gc/gc.h */

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function" /* the variant runner is not used here */
#include "bench_child.h"
#pragma GCC diagnostic pop
#include "tricolor.h"

#define MIB ((double)(1 << 20))

enum {
    NODE_SIZE = 64,
    GROUP_NODES = 48,
    BUFFER_SIZE = 1024,
    GROUP_BYTES = GROUP_NODES * NODE_SIZE + BUFFER_SIZE, /* 4 KiB */
    RING_SLOTS = 256,
    REPLACE_EVERY = 64 << 10, /* churn bytes between two group replacements */
    SCAN_BELOW = 1024,        /* churn objects smaller than this hold a pointer */
    FILL = 0x5a,              /* what churn objects are written with: never a pointer */
    TICK_MS = 10,             /* the light load: one batch of churn per tick */
    SAMPLE_TICKS = 5,         /* RSS sampled every 50 ms */
    TIMELINE_TICKS = 50,      /* and kept for the timeline every 0.5 s */
    DROP_TARGET_S = 5,        /* part 3: RSS under its target within this */
    GIVE_UP_S = 30,           /* at -s 1 and above; at least DROP_TARGET_S + 1 below */
    LATER_S = 2,              /* the light load after gc_free_os_memory */
    SCRUB_BYTES = 256 << 10,  /* stack overwritten after the drop */
    LIMIT_MIB = 100,          /* part 1's memory limit at -s 1 */
    LOW_LIMIT_MIB = 32,       /* part 2's */
    MAX_TIMELINE = GIVE_UP_S * 1000 / (TICK_MS * TIMELINE_TICKS) + 1,
    DEFAULT_REPEATS = 1,
    MAX_REPEATS = 20,
};

/* Sizes and targets at -s 1, in MiB; the run multiplies each by -s. */
static const struct {
    double live, churn, rss_target, rss_fixed;
    double big_live, kept_live, drop_rss, load;
} full = {
    .live = 64,        /* part 1's live set */
    .churn = 2048,     /* part 1's churn */
    .rss_target = 105, /* part 1's peak RSS target under a limit */
    .rss_fixed = 16,   /* GCPERCENT=100's target: 2.2 x live + this */
    .big_live = 500,   /* part 3's live set before the drop */
    .kept_live = 10,   /* and after */
    .drop_rss = 100,   /* its RSS target */
    .load = 2,         /* its light load, per tick */
};
#define GCPERCENT_RSS_FACTOR 2.2
#define LOW_LIMIT_MIN_SPEED  (1.0 / 3)

struct node {
    struct node *next;
    unsigned char *buffer; /* the group's noscan buffer */
    uint64_t id;           /* the group's */
    uint64_t index;        /* in the list, 0 at the head */
    uint64_t check[4];     /* check_word(id, index, k) */
};
_Static_assert(sizeof(struct node) == NODE_SIZE, "a node is 64 bytes");

/* ---- allocators ---- */

struct allocator {
    void *(*scan)(size_t size);   /* may hold pointers */
    void *(*noscan)(size_t size); /* never holds pointers */
    void (*release)(void *p);     /* NULL: a collector reclaims */
};

static void *bdwgc_scan(size_t size)
{
    return GC_MALLOC(size);
}

static void *bdwgc_noscan(size_t size)
{
    return GC_MALLOC_ATOMIC(size);
}

static const struct allocator tricolor_alloc = {gc_alloc, gc_alloc_noscan, NULL};
static const struct allocator bdwgc_alloc = {bdwgc_scan, bdwgc_noscan, NULL};
static const struct allocator malloc_alloc = {malloc, malloc, free};

/* ---- the runs ---- */

enum part { CHURN = 1, LOW_LIMIT = 2, DROP = 3 };

/* How a tricolor run gets its settings: as it starts (GCPERCENT=100, no limit), from its
 * environment, or from the API in main. */
enum settings { DEFAULTS, BY_ENV, BY_API };

struct run {
    const char *name;
    enum part part;
    const struct allocator *alloc;
    enum settings settings;
    double limit;     /* memory limit at -s 1 in MiB, GCPERCENT off; 0: none, GCPERCENT=100 */
    bool free_os;     /* DROP: call gc_free_os_memory after the drop */
    const char *what; /* DEFAULTS: what it is */
};

static const struct run runs[] = {
    {"tricolor-env", CHURN, &tricolor_alloc, BY_ENV, LIMIT_MIB, false, NULL},
    {"tricolor-api", CHURN, &tricolor_alloc, BY_API, LIMIT_MIB, false, NULL},
    {"tricolor", CHURN, &tricolor_alloc, DEFAULTS, 0, false, "GCPERCENT=100, no limit"},
    {"bdwgc", CHURN, &bdwgc_alloc, DEFAULTS, 0, false, "GC_MALLOC, defaults"},
    {"malloc", CHURN, &malloc_alloc, DEFAULTS, 0, false, "glibc malloc + free"},
    {"tricolor-low", LOW_LIMIT, &tricolor_alloc, BY_API, LOW_LIMIT_MIB, false, NULL},
    {"drop-wait", DROP, &tricolor_alloc, DEFAULTS, 0, false, "no call"},
    {"drop-freeos", DROP, &tricolor_alloc, DEFAULTS, 0, true, "gc_free_os_memory()"},
};
enum { NRUNS = sizeof runs / sizeof runs[0] };
/* The rows of `runs`, by index. */
enum { ROW_ENV, ROW_API, ROW_DEFAULT, ROW_BDWGC, ROW_MALLOC, ROW_LOW, ROW_DROP_WAIT, ROW_FREE_OS };

/* What a run sends its parent. */
struct outcome {
    struct result r;      /* wall and CPU seconds, peak RSS (VmHWM) */
    long rss_before_kib;  /* DROP: RSS with the whole live set */
    double below_seconds; /* DROP without the call: drop to RSS under target; -1: gave up */
    long rss_end_kib;     /* DROP: the last sample */
    double call_seconds;  /* DROP with the call: how long gc_free_os_memory took */
    long rss_after_kib;   /* DROP with the call: RSS when it returned */
    unsigned ntimeline;   /* DROP without the call: RSS every 0.5 s from the drop */
    long timeline_kib[MAX_TIMELINE];
};

/* The command line, and the sizes it makes. */
struct options {
    double scale;
    int repeats;
    bool part[4]; /* part[1..3] */
};

static double scaled(const struct options *o, double mib)
{
    return mib * o->scale;
}

static int64_t scaled_bytes(const struct options *o, double mib)
{
    return (int64_t)(scaled(o, mib) * MIB + 0.5);
}

/* Groups making up `mib` MiB at the run's scale, at least 16. */
static size_t groups_of(const struct options *o, double mib)
{
    size_t n = (size_t)(scaled_bytes(o, mib) / GROUP_BYTES);
    return n < 16 ? 16 : n;
}

/* ---- RSS ---- */

/* The contents of a /proc file into buf (NUL-terminated), or die. */
static void read_proc(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        die("cannot open a /proc file");
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n <= 0)
        die("cannot read a /proc file");
    buf[n] = '\0';
}

/* Resident size now, in KiB: the second field of /proc/self/statm, in pages. */
static long rss_now_kib(void)
{
    char buf[256];
    long size, resident;
    read_proc("/proc/self/statm", buf, sizeof buf);
    if (sscanf(buf, "%ld %ld", &size, &resident) != 2)
        die("cannot parse /proc/self/statm");
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Peak resident size since exec, in KiB (VmHWM). */
static long rss_peak_kib(void)
{
    char buf[4096];
    long kib;
    read_proc("/proc/self/status", buf, sizeof buf);
    const char *line = strstr(buf, "VmHWM:");
    if (!line || sscanf(line, "VmHWM: %ld", &kib) != 1)
        die("no VmHWM in /proc/self/status");
    return kib;
}

/* ---- the workload's state: globals, so that both collectors scan them ---- */

static struct node **slots; /* the live set: one group per slot */
static size_t nslots;
static void **ring; /* the latest churn objects */
static size_t ring_pos;
static uint64_t next_id = 1;
static uint64_t rng = 0x9e3779b97f4a7c15u;

/* xorshift64*: the same sequence in every run. */
static uint64_t next_random(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1du;
}

static void *must(void *p)
{
    if (!p)
        die("out of memory");
    return p;
}

/* ---- the live set ---- */

static uint64_t check_word(uint64_t id, uint64_t index, unsigned k)
{
    return (id * 0x9e3779b97f4a7c15u) ^ (index << 8 | k);
}

static struct node *new_node(const struct allocator *a, uint64_t id, uint64_t index,
                             struct node *next, unsigned char *buffer)
{
    struct node *n = must(a->scan(NODE_SIZE));
    n->id = id;
    n->index = index;
    for (unsigned k = 0; k < 4; k++)
        n->check[k] = check_word(id, index, k);
    GC_WRITE(n->next, next);
    GC_WRITE(n->buffer, buffer);
    return n;
}

/* A new group, tail first. */
static struct node *new_group(const struct allocator *a)
{
    uint64_t id = next_id++;
    unsigned char *buffer = must(a->noscan(BUFFER_SIZE));
    memset(buffer, (int)(id & 0xff), BUFFER_SIZE);
    struct node *head = NULL;
    for (int i = GROUP_NODES - 1; i >= 0; i--)
        head = new_node(a, id, (uint64_t)i, head, buffer);
    return head;
}

static void free_group(const struct allocator *a, struct node *head)
{
    a->release(head->buffer);
    while (head) {
        struct node *next = head->next;
        a->release(head);
        head = next;
    }
}

static void check_node(const struct node *n, uint64_t id, uint64_t index,
                       const unsigned char *buffer)
{
    check(n->id == id && n->index == index && n->buffer == buffer, "live node intact");
    for (unsigned k = 0; k < 4; k++)
        check(n->check[k] == check_word(id, index, k), "live node's check words");
}

static void check_group(const struct node *head)
{
    check(head != NULL, "live group present");
    const unsigned char *buffer = head->buffer;
    uint64_t i = 0;
    for (const struct node *n = head; n; n = n->next, i++)
        check_node(n, head->id, i, buffer);
    check(i == GROUP_NODES, "live group's length");
    check(buffer[0] == (head->id & 0xff) && buffer[BUFFER_SIZE - 1] == (head->id & 0xff),
          "live group's buffer");
}

static void check_live(size_t n)
{
    for (size_t k = 0; k < n; k++)
        check_group(slots[k]);
}

/* The slots array and `n` groups in it, the oldest first; then the empty ring. */
static void build_live(const struct allocator *a, size_t n)
{
    nslots = n;
    slots = must(a->scan(n * sizeof *slots));
    for (size_t k = 0; k < n; k++)
        GC_WRITE(slots[k], new_group(a));
    ring = must(a->scan(RING_SLOTS * sizeof *ring));
    for (size_t k = 0; k < RING_SLOTS; k++)
        GC_WRITE(ring[k], NULL);
}

static void replace_group(const struct allocator *a, size_t k)
{
    struct node *old = slots[k];
    GC_WRITE(slots[k], new_group(a));
    if (a->release)
        free_group(a, old);
}

/* ---- churn ---- */

/* 90% of 16-256 B, 9% of 256 B-4 KiB, 1% of 4-64 KiB, uniform within each. */
static size_t churn_size(void)
{
    uint64_t r = next_random();
    unsigned pick = (unsigned)(r % 100);
    r >>= 8;
    if (pick < 90)
        return 16 + r % (256 - 16 + 1);
    if (pick < 99)
        return 256 + r % (4096 - 256 + 1);
    return 4096 + r % (65536 - 4096 + 1);
}

/* A short-lived object written whole; small ones point at one of the first `live` groups. */
static void *churn_object(const struct allocator *a, size_t size, size_t live)
{
    if (size >= SCAN_BELOW) {
        void *p = must(a->noscan(size));
        memset(p, FILL, size);
        return p;
    }
    void **p = must(a->scan(size));
    memset(p + 1, FILL, size - sizeof *p);
    GC_WRITE(p[0], (void *)slots[next_random() % live]);
    return p;
}

/* One churn object into the ring, dropping the oldest; its size. */
static size_t churn_one(const struct allocator *a, size_t live)
{
    size_t size = churn_size();
    void *p = churn_object(a, size, live);
    void **slot = &ring[ring_pos++ % RING_SLOTS];
    if (a->release)
        a->release(*slot);
    GC_WRITE(*slot, p);
    return size;
}

/* Parts 1 and 2: the live set, then `bytes` of churn replacing a group every
 * REPLACE_EVERY bytes. */
static void churn_workload(const struct allocator *a, const struct options *o)
{
    build_live(a, groups_of(o, full.live));
    uint64_t bytes = (uint64_t)scaled_bytes(o, full.churn), done = 0, credit = 0;
    while (done < bytes) {
        size_t size = churn_one(a, nslots);
        done += size;
        credit += size;
        if (credit >= REPLACE_EVERY) {
            credit -= REPLACE_EVERY;
            replace_group(a, next_random() % nslots);
        }
    }
    check_live(nslots);
}

/* ---- part 3: the drop ---- */

/* Clear the slots of every group but the first `kept`. */
static __attribute__((noinline)) void drop_groups(size_t kept)
{
    for (size_t k = kept; k < nslots; k++)
        GC_WRITE(slots[k], NULL);
}

/* Overwrite the stack below the caller's frame, where the build left stale words. */
static __attribute__((noinline)) void scrub_stack(void)
{
    volatile char area[SCRUB_BYTES];
    memset((char *)area, 0, sizeof area);
}

/* Sleep until `*next` plus one tick, never making up for ticks already lost. */
static void next_tick(struct timespec *next)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    next->tv_nsec += TICK_MS * 1000000L;
    if (next->tv_nsec >= 1000000000L) {
        next->tv_sec++;
        next->tv_nsec -= 1000000000L;
    }
    if (t.tv_sec > next->tv_sec || (t.tv_sec == next->tv_sec && t.tv_nsec > next->tv_nsec))
        *next = t;
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, next, NULL) == EINTR)
        continue;
}

/* One tick's churn of the light load, pointing only into the kept groups. */
static void light_load(const struct allocator *a, const struct options *o, size_t kept)
{
    uint64_t bytes = (uint64_t)scaled_bytes(o, full.load);
    for (uint64_t done = 0; done < bytes;)
        done += churn_one(a, kept);
}

/* How long part 3 waits for the RSS to drop: GIVE_UP_S, scaled down with -s below 1 (a
 * smaller heap is returned sooner), never to less than the target and a second. */
static double give_up_seconds(const struct options *o)
{
    double s = GIVE_UP_S * (o->scale < 1 ? o->scale : 1);
    return s > DROP_TARGET_S + 1 ? s : DROP_TARGET_S + 1;
}

/* Run the light load, sampling RSS, until it is under the target or give_up_seconds passed. */
static void watch_rss(const struct options *o, size_t kept, struct outcome *out)
{
    long target_kib = (long)(scaled_bytes(o, full.drop_rss) / 1024);
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    double t0 = now();
    out->below_seconds = -1;
    for (unsigned tick = 0;; tick++) {
        if (tick % SAMPLE_TICKS == 0) {
            long rss = out->rss_end_kib = rss_now_kib();
            if (tick % TIMELINE_TICKS == 0 && out->ntimeline < MAX_TIMELINE)
                out->timeline_kib[out->ntimeline++] = rss;
            if (rss < target_kib) {
                out->below_seconds = now() - t0;
                return;
            }
            if (now() - t0 >= give_up_seconds(o))
                return;
        }
        light_load(&tricolor_alloc, o, kept);
        next_tick(&next);
    }
}

/* The light load alone for `seconds`. */
static void keep_running(const struct options *o, size_t kept, double seconds)
{
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (double t0 = now(); now() - t0 < seconds;) {
        light_load(&tricolor_alloc, o, kept);
        next_tick(&next);
    }
}

static void drop_workload(const struct run *run, const struct options *o, struct outcome *out)
{
    size_t kept = groups_of(o, full.kept_live);
    build_live(run->alloc, groups_of(o, full.big_live));
    out->rss_before_kib = rss_now_kib();
    drop_groups(kept);
    scrub_stack();
    if (run->free_os) {
        double t0 = now();
        gc_free_os_memory();
        out->call_seconds = now() - t0;
        out->rss_after_kib = rss_now_kib();
        keep_running(o, kept, LATER_S);
        out->rss_end_kib = rss_now_kib();
    } else {
        watch_rss(o, kept, out);
    }
    check_live(kept);
}

/* ---- one run, in the child ---- */

static void configure(const struct run *run, const struct options *o)
{
    if (run->alloc == &bdwgc_alloc)
        GC_INIT();
    if (run->alloc != &tricolor_alloc || run->settings != BY_API)
        return;
    gc_set_percent(run->limit ? -1 : 100);
    gc_set_memory_limit(run->limit ? scaled_bytes(o, run->limit) : INT64_MAX);
}

static void write_all(int fd, const void *buf, size_t size)
{
    for (const char *p = buf; size > 0;) {
        ssize_t n = write(fd, p, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("cannot report to the parent");
        p += n;
        size -= (size_t)n;
    }
}

static __attribute__((noreturn)) void child(const struct options *o, unsigned k, int fd)
{
    const struct run *run = &runs[k];
    struct outcome out;
    struct rusage ru;
    memset(&out, 0, sizeof out);
    configure(run, o);
    double t0 = now();
    if (run->part == DROP)
        drop_workload(run, o, &out);
    else
        churn_workload(run->alloc, o);
    out.r.seconds = now() - t0;
    getrusage(RUSAGE_SELF, &ru);
    out.r.cpu_seconds = timeval_seconds(ru.ru_utime) + timeval_seconds(ru.ru_stime);
    out.r.peak_rss_kib = rss_peak_kib();
    write_all(fd, &out, sizeof out);
    exit(0);
}

/* ---- one run, from the parent ---- */

/* In the forked child: the environment run `k` needs, then this program again as run k. */
static __attribute__((noreturn)) void exec_run(const struct options *o, unsigned k, int fd)
{
    char arg[32], scale[32], limit[32];
    unsetenv("GCPERCENT");
    unsetenv("GCMEMLIMIT");
    if (runs[k].settings == BY_ENV) {
        snprintf(limit, sizeof limit, "%lld", (long long)scaled_bytes(o, runs[k].limit));
        setenv("GCMEMLIMIT", limit, 1);
        setenv("GCPERCENT", "off", 1);
    }
    snprintf(arg, sizeof arg, "%u,%d", k, fd);
    snprintf(scale, sizeof scale, "%.17g", o->scale);
    char *argv[] = {BENCH_NAME, "-s", scale, "-X", arg, NULL};
    execv("/proc/self/exe", argv);
    fprintf(stderr, BENCH_NAME ": cannot execute /proc/self/exe: %s\n", strerror(errno));
    _exit(127);
}

struct memory_run {
    const struct options *o;
    unsigned k;
};

static void memory_child(const void *ctx, int fd)
{
    const struct memory_run *r = ctx;
    exec_run(r->o, r->k, fd);
}

/* Run `k` once; 0 with `*out` filled, or -1 when it failed. */
static int run_once(const struct options *o, unsigned k, struct outcome *out)
{
    struct memory_run r = {o, k};
    return run_child(memory_child, &r, runs[k].name, out, sizeof *out);
}

/* ---- measuring ---- */

struct tally {
    int ok;                          /* every run succeeded */
    int n;                           /* runs made */
    struct outcome all[MAX_REPEATS]; /* in order */
    struct result best;   /* the fastest run's times, the highest peak RSS of all */
    long lowest_rss_kib;  /* the lowest peak RSS of all */
};

/* Part 1's GCPERCENT=100 row also runs for part 2, which is measured against it. */
static bool selected(const struct options *o, unsigned k)
{
    return o->part[runs[k].part] || (k == ROW_DEFAULT && o->part[LOW_LIMIT]);
}

static void add_run(struct tally *t, const struct outcome *out)
{
    const struct result *r = &out->r;
    t->all[t->n] = *out;
    if (t->n == 0 || r->seconds < t->best.seconds) {
        long peak = t->n ? t->best.peak_rss_kib : 0;
        t->best = *r;
        t->best.peak_rss_kib = peak;
    }
    if (r->peak_rss_kib > t->best.peak_rss_kib)
        t->best.peak_rss_kib = r->peak_rss_kib;
    if (t->n == 0 || r->peak_rss_kib < t->lowest_rss_kib)
        t->lowest_rss_kib = r->peak_rss_kib;
    t->n++;
}

static void measure(const struct options *o, struct tally *tally)
{
    struct outcome out;
    for (unsigned k = 0; k < NRUNS; k++)
        tally[k] = (struct tally){.ok = selected(o, k)};
    for (int rep = 0; rep < o->repeats; rep++) {
        for (unsigned k = 0; k < NRUNS; k++) {
            if (!tally[k].ok)
                continue;
            tally[k].ok = run_once(o, k, &out) == 0;
            if (tally[k].ok)
                add_run(&tally[k], &out);
        }
    }
}

/* ---- reporting ---- */

static int misses;

static const char *verdict(bool met)
{
    misses += !met;
    return met ? "MET" : "MISSED";
}

/* What row `k` sets, at this scale (its name says how). */
static void describe(const struct options *o, unsigned k, char *buf, size_t size)
{
    const struct run *run = &runs[k];
    if (run->settings == BY_ENV)
        snprintf(buf, size, "GCMEMLIMIT=%.4gMiB GCPERCENT=off", scaled(o, run->limit));
    else if (run->settings == BY_API)
        snprintf(buf, size, "limit %.4g MiB, GCPERCENT off", scaled(o, run->limit));
    else
        snprintf(buf, size, "%s", run->what);
}

static void print_run(const struct options *o, unsigned k, const struct tally *t)
{
    char what[80];
    describe(o, k, what, sizeof what);
    if (!t->ok) {
        printf("%-13s %-31s %8s\n", runs[k].name, what, "failed");
        return;
    }
    printf("%-13s %-31s %8.2f %8.2f %9.1f", runs[k].name, what, t->best.seconds,
           t->best.cpu_seconds, mib(t->best.peak_rss_kib));
    if (o->repeats > 1)
        printf(" %7.1f", mib(t->lowest_rss_kib));
}

/* Row k's RSS target in MiB; 0: none. */
static double rss_target(const struct options *o, unsigned k)
{
    if (k == ROW_ENV || k == ROW_API)
        return scaled(o, full.rss_target);
    if (k == ROW_DEFAULT)
        return GCPERCENT_RSS_FACTOR * (double)(groups_of(o, full.live) * GROUP_BYTES) / MIB +
               scaled(o, full.rss_fixed);
    return 0;
}

/* A row without a verdict (one given elsewhere, or none). */
static void print_plain_row(const struct options *o, unsigned k, const struct tally *t)
{
    print_run(o, k, t);
    if (t->ok)
        printf("\n");
}

static void print_churn_row(const struct options *o, unsigned k, const struct tally *t)
{
    double target = rss_target(o, k);
    print_run(o, k, t);
    if (t->ok && target > 0)
        printf("  <= %5.1f %s\n", target, verdict(mib(t->best.peak_rss_kib) <= target));
    else if (t->ok)
        printf("\n");
    else
        misses += target > 0;
}

static void print_ratio(const struct tally *t, const struct tally *base)
{
    if (!t->ok || !base->ok)
        printf("  %7s %7s", "-", "-");
    else
        printf("  %7.2f %7.2f", t->best.seconds / base->best.seconds,
               (double)t->best.peak_rss_kib / (double)base->best.peak_rss_kib);
}

static void print_tricolor_ratios(const struct tally *tally)
{
    printf("\n%-13s  %15s  %15s\n", "ratios", "over bdwgc", "over malloc");
    printf("%-13s  %7s %7s  %7s %7s\n", "", "time", "RSS", "time", "RSS");
    for (unsigned k = ROW_ENV; k <= ROW_DEFAULT; k++) {
        if (!tally[k].ok)
            continue;
        printf("%-13s", runs[k].name);
        print_ratio(&tally[k], &tally[ROW_BDWGC]);
        print_ratio(&tally[k], &tally[ROW_MALLOC]);
        printf("\n");
    }
}

static void print_header(const struct options *o)
{
    printf("%-13s %-31s %8s %8s %9s", "run", "setting", "seconds", "cpu s", "peak MiB");
    if (o->repeats > 1)
        printf(" %7s", "lowest");
    printf("  %s\n", "target");
}

static void report_churn(const struct options *o, const struct tally *tally)
{
    printf("\n1. Churn under a memory limit: %.4g MiB live, %.4g MiB of churn\n",
           (double)(groups_of(o, full.live) * GROUP_BYTES) / MIB, scaled(o, full.churn));
    print_header(o);
    for (unsigned k = ROW_ENV; k <= ROW_MALLOC; k++)
        print_churn_row(o, k, &tally[k]);
    print_tricolor_ratios(tally);
}

static void report_low_limit(const struct options *o, const struct tally *tally)
{
    const struct tally *low = &tally[ROW_LOW], *normal = &tally[ROW_DEFAULT];
    printf("\n2. Limit below the live set: %.4g MiB limit, %.4g MiB live\n",
           scaled(o, LOW_LIMIT_MIB), (double)(groups_of(o, full.live) * GROUP_BYTES) / MIB);
    print_header(o);
    print_plain_row(o, ROW_DEFAULT, normal);
    print_plain_row(o, ROW_LOW, low);
    if (!low->ok || !normal->ok) {
        printf("speed: not measured  %s\n", verdict(false));
        return;
    }
    double speed = normal->best.seconds / low->best.seconds;
    printf("speed of %s over %s: %.3f (target >= %.3f)  %s\n", runs[ROW_LOW].name,
           runs[ROW_DEFAULT].name, speed, LOW_LIMIT_MIN_SPEED,
           verdict(speed >= LOW_LIMIT_MIN_SPEED));
    printf("  the same by CPU time, for a busy machine: %.3f\n",
           normal->best.cpu_seconds / low->best.cpu_seconds);
}

static void print_timeline(const struct outcome *out)
{
    printf("  RSS MiB every 0.5 s from the drop:");
    for (unsigned i = 0; i < out->ntimeline; i++)
        printf("%s%.0f", i % 15 ? " " : "\n   ", mib(out->timeline_kib[i]));
    printf("\n");
}

static void report_drop_wait(const struct options *o, const struct tally *t)
{
    double target_mib = scaled(o, full.drop_rss);
    for (int i = 0; i < t->n; i++) {
        const struct outcome *out = &t->all[i];
        bool met = out->below_seconds >= 0 && out->below_seconds <= DROP_TARGET_S;
        printf("%-13s run %d: RSS %.0f MiB before the drop;", runs[ROW_DROP_WAIT].name, i + 1,
               mib(out->rss_before_kib));
        if (out->below_seconds >= 0)
            printf(" under %.4g MiB after %.2f s", target_mib, out->below_seconds);
        else
            printf(" still %.0f MiB after %.0f s", mib(out->rss_end_kib), give_up_seconds(o));
        printf(" (target <= %d s)  %s\n", DROP_TARGET_S, verdict(met));
        if (i == 0)
            print_timeline(out);
    }
    if (!t->ok)
        printf("%-13s failed  %s\n", runs[ROW_DROP_WAIT].name, verdict(false));
}

static void report_drop_free_os(const struct options *o, const struct tally *t)
{
    double target_mib = scaled(o, full.drop_rss);
    for (int i = 0; i < t->n; i++) {
        const struct outcome *out = &t->all[i];
        printf("%-13s run %d: RSS %.0f MiB before the drop; gc_free_os_memory took %.3f s,"
               " RSS %.1f MiB after it (target < %.4g)  %s; %.1f MiB %d s later\n",
               runs[ROW_FREE_OS].name, i + 1, mib(out->rss_before_kib), out->call_seconds,
               mib(out->rss_after_kib), target_mib,
               verdict(mib(out->rss_after_kib) < target_mib), mib(out->rss_end_kib), LATER_S);
    }
    if (!t->ok)
        printf("%-13s failed  %s\n", runs[ROW_FREE_OS].name, verdict(false));
}

static void report_drop(const struct options *o, const struct tally *tally)
{
    printf("\n3. Live set drop: %.4g MiB live, dropped to %.4g MiB, light load %.4g MiB per"
           " %d ms\n",
           (double)(groups_of(o, full.big_live) * GROUP_BYTES) / MIB,
           (double)(groups_of(o, full.kept_live) * GROUP_BYTES) / MIB, scaled(o, full.load),
           TICK_MS);
    report_drop_wait(o, &tally[ROW_DROP_WAIT]);
    report_drop_free_os(o, &tally[ROW_FREE_OS]);
}

/* The report; the number of runs that failed. */
static int report(const struct options *o, const struct tally *tally)
{
    int failed = 0;
    for (unsigned k = 0; k < NRUNS; k++)
        failed += selected(o, k) && !tally[k].ok;
    if (o->part[CHURN])
        report_churn(o, tally);
    if (o->part[LOW_LIMIT])
        report_low_limit(o, tally);
    if (o->part[DROP])
        report_drop(o, tally);
    printf("\n%s: %d target(s) MISSED, %d run(s) failed\n", BENCH_NAME, misses, failed);
    return failed;
}

/* ---- options ---- */

#define MIN_SCALE 0.01
#define MAX_SCALE 4.0

static __attribute__((noreturn)) void usage(const char *why)
{
    FILE *out = why ? stderr : stdout;
    if (why)
        fprintf(out, BENCH_NAME ": %s\n", why);
    fprintf(out,
            "usage: " BENCH_NAME " [-s SCALE] [-r REPEATS] [-p PARTS]\n"
            "  -s  multiply every size and memory target by SCALE (%g..%g, default 1;\n"
            "      0.05 makes a smoke test of a few seconds)\n"
            "  -r  runs of each row, interleaved (1..%d, default %d)\n"
            "  -p  parts to run, any of 1 (churn under a limit), 2 (limit below the live\n"
            "      set), 3 (live set drop); default 123\n",
            MIN_SCALE, MAX_SCALE, MAX_REPEATS, DEFAULT_REPEATS);
    exit(why ? 2 : 0);
}

static double parse_scale(const char *s)
{
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !(x >= MIN_SCALE && x <= MAX_SCALE))
        usage("bad scale");
    return x;
}

static void parse_parts(struct options *o, const char *s)
{
    memset(o->part, 0, sizeof o->part);
    for (; *s; s++) {
        if (*s < '1' || *s > '3')
            usage("parts are 1, 2 and 3");
        o->part[*s - '0'] = true;
    }
    if (!o->part[CHURN] && !o->part[LOW_LIMIT] && !o->part[DROP])
        usage("no part to run");
}

/* -X RUN,FD: this process is run RUN, reporting on FD (exec_run). True, or exit. */
static bool parse_child(const char *s, unsigned *k, int *fd)
{
    if (sscanf(s, "%u,%d", k, fd) != 2 || *k >= NRUNS || *fd < 0)
        usage("bad -X");
    return true;
}

/* Parse argv; true when this process is a run (-X), with *k and *fd set. */
static bool parse_options(struct options *o, int argc, char **argv, unsigned *k, int *fd)
{
    int opt;
    bool is_child = false;
    opterr = 0;
    *o = (struct options){.scale = 1, .repeats = DEFAULT_REPEATS, .part = {0, 1, 1, 1}};
    while ((opt = getopt(argc, argv, "s:r:p:X:h")) != -1) {
        if (opt == 's')
            o->scale = parse_scale(optarg);
        else if (opt == 'r')
            o->repeats = parse_number(optarg, 1, MAX_REPEATS);
        else if (opt == 'p')
            parse_parts(o, optarg);
        else if (opt == 'X')
            is_child = parse_child(optarg, k, fd);
        else
            usage(opt == 'h' ? NULL : "unknown option or missing value");
    }
    if (optind != argc)
        usage("unexpected argument");
    return is_child;
}

int main(int argc, char **argv)
{
    struct options o;
    unsigned k;
    int fd;
    static struct tally tally[NRUNS];
    if (parse_options(&o, argc, argv, &k, &fd))
        child(&o, k, fd);
    printf(BENCH_NAME ": scale %g, %d run(s) of each row; seconds: the fastest run, peak MiB:"
           " the highest (VmHWM)%s\n",
           o.scale, o.repeats, o.repeats > 1 ? ", lowest: the lowest" : "");
    measure(&o, tally);
    return report(&o, tally) ? 1 : 0;
}

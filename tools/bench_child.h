/*
 * bench_child.h — the measuring half of the side-by-side benchmarks (bench_gcbench,
 * bench_bintree): every allocator variant in a child process of its own, best of N runs,
 * one result table.
 *
 * Each benchmark is a single translation unit: it defines BENCH_NAME (its name, the prefix
 * of every message) and includes this header, whose functions are all static, and defines
 * usage(), which the option helpers here call on bad input. It describes its variants to
 * the shared code with a struct bench: how many, the name of each, an untimed setup and
 * the timed workload. Row 0 is the variant the others are compared with.
 *
 * Measuring. run_variant() forks a child for one run of one variant; the parent allocates
 * nothing, so heaps never share a process. The child runs the setup, times the workload
 * alone (CLOCK_MONOTONIC), then reads its own peak RSS and CPU time with
 * getrusage(RUSAGE_SELF) and sends them through a pipe: RUSAGE_CHILDREN would accumulate
 * over all children. A child that crashes, fails a check or runs out of memory is reported
 * as failed. bench_measure() repeats the runs with the variants interleaved and keeps, of
 * each variant, the run with the shortest wall time; bench_report() prints one row per
 * variant, then row 0's wall time and peak RSS as ratios to each other variant's.
 */
#ifndef TRICOLOR_BENCH_CHILD_H
#define TRICOLOR_BENCH_CHILD_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* One program's variants, as the shared code sees them. */
struct bench {
    unsigned nvariants;
    const char *(*name)(unsigned k);
    int (*setup)(unsigned k);                      /* in the child, untimed: 0, or -1 */
    void (*workload)(unsigned k, const void *arg); /* in the child, timed; exits on failure */
};

/* What a child sends its parent. */
struct result {
    double seconds;     /* wall time of the workload */
    double cpu_seconds; /* user + system, all threads of the child */
    long peak_rss_kib;
};

/* Defined by the program: print `why` (NULL: asked for help) and the usage, then exit. */
static __attribute__((noreturn)) void usage(const char *why);

static __attribute__((noreturn)) void die(const char *what)
{
    fprintf(stderr, BENCH_NAME ": %s\n", what);
    exit(2);
}

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, BENCH_NAME ": check failed: %s\n", what);
        exit(1);
    }
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

static __attribute__((noreturn)) void child_main(const struct bench *b, unsigned k,
                                                 const void *arg, int fd)
{
    struct result r;
    struct rusage ru;
    if (b->setup(k) != 0)
        die("setup failed");
    double t0 = now();
    b->workload(k, arg);
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
        fprintf(stderr, BENCH_NAME ": %s: killed by signal %d\n", name, WTERMSIG(status));
    else
        fprintf(stderr, BENCH_NAME ": %s: exit status %d\n", name, WEXITSTATUS(status));
    return -1;
}

/* Read up to `size` bytes from `fd` (the child's report); returns how many came. */
static ssize_t read_all(int fd, void *buf, size_t size)
{
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, (char *)buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

/* Fork a child running `child(ctx, fd)` (which never returns) and read its `size`-byte
 * report from the pipe `fd` into `out`: 0, or -1 when the child named `name` failed or
 * reported short. */
static int run_child(void (*child)(const void *ctx, int fd), const void *ctx, const char *name,
                     void *out, size_t size)
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
        child(ctx, fds[1]);
    }
    close(fds[1]);
    ssize_t got = read_all(fds[0], out, size);
    close(fds[0]);
    int failed = reap(pid, name);
    return failed || got != (ssize_t)size ? -1 : 0;
}

struct variant_run {
    const struct bench *b;
    unsigned k;
    const void *arg;
};

static void variant_child(const void *ctx, int fd)
{
    const struct variant_run *v = ctx;
    child_main(v->b, v->k, v->arg, fd);
}

/* Run variant `k` on `arg` in a child; 0 with `*r` filled, or -1 when it failed. */
static int run_variant(const struct bench *b, unsigned k, const void *arg, struct result *r)
{
    struct variant_run v = {b, k, arg};
    return run_child(variant_child, &v, b->name(k), r, sizeof *r);
}

/* The fastest of `repeats` runs on `arg` of each selected variant, variants interleaved;
 * ok[k] is 0 when variant k was not selected or any of its runs failed. */
static void bench_measure(const struct bench *b, const void *arg, const int *selected,
                          int repeats, struct result *best, int *ok)
{
    struct result r;
    for (unsigned k = 0; k < b->nvariants; k++)
        ok[k] = selected[k];
    for (int rep = 0; rep < repeats; rep++) {
        for (unsigned k = 0; k < b->nvariants; k++) {
            if (!ok[k])
                continue;
            ok[k] = run_variant(b, k, arg, &r) == 0;
            if (ok[k] && (rep == 0 || r.seconds < best[k].seconds))
                best[k] = r;
        }
    }
}

/* ---- reporting ---- */

static double mib(long kib)
{
    return (double)kib / 1024.0;
}

static void print_row(const char *name, const struct result *r, int ok)
{
    if (ok)
        printf("%-10s %9.3f %9.3f %14.1f\n", name, r->seconds, r->cpu_seconds,
               mib(r->peak_rss_kib));
    else
        printf("%-10s %9s %9s %14s\n", name, "failed", "-", "-");
}

/* Row 0 against every other row that ran. */
static void print_ratios(const struct bench *b, const struct result *res, const int *ok)
{
    char what[64];
    int header = 0;
    for (unsigned k = 1; ok[0] && k < b->nvariants; k++) {
        if (!ok[k])
            continue;
        if (!header++)
            printf("\n%-20s %9s %14s\n", "ratio", "time", "peak RSS");
        snprintf(what, sizeof what, "%s / %s", b->name(0), b->name(k));
        printf("%-20s %9.3f %14.3f\n", what, res[0].seconds / res[k].seconds,
               (double)res[0].peak_rss_kib / (double)res[k].peak_rss_kib);
    }
}

/* The table of the selected variants, then the ratios; the number of variants that failed. */
static int bench_report(const struct bench *b, const int *selected, const struct result *best,
                        const int *ok)
{
    int failures = 0;
    printf("%-10s %9s %9s %14s\n", "variant", "seconds", "cpu s", "peak RSS MiB");
    for (unsigned k = 0; k < b->nvariants; k++) {
        if (selected[k])
            print_row(b->name(k), &best[k], ok[k]);
        failures += selected[k] && !ok[k];
    }
    print_ratios(b, best, ok);
    return failures;
}

/* ---- options ---- */

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

static unsigned variant_index(const struct bench *b, const char *name, size_t len)
{
    for (unsigned k = 0; k < b->nvariants; k++)
        if (strlen(b->name(k)) == len && strncmp(b->name(k), name, len) == 0)
            return k;
    usage("unknown variant");
}

/* selected[k] = 1 for every variant k named in the comma-separated `list`, else 0. */
static void parse_variants(const struct bench *b, int *selected, const char *list)
{
    memset(selected, 0, b->nvariants * sizeof *selected);
    for (const char *s = list;; s++) {
        size_t len = strcspn(s, ",");
        selected[variant_index(b, s, len)] = 1;
        s += len;
        if (*s == '\0')
            return;
    }
}

#endif /* TRICOLOR_BENCH_CHILD_H */

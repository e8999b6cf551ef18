/*
 * testutil.h — shared helpers for the Check suites.
 *
 * Every suite file defines `static Suite *make_suite(void)` and ends with
 * TEST_MAIN(make_suite). Suites run in Check's fork mode, so a crashing
 * test fails alone.
 */
#ifndef TRICOLOR_TESTUTIL_H
#define TRICOLOR_TESTUTIL_H

#include <check.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Why the last check of this thread failed: checks that return false say
 * so with broken(), and the caller prints `why`. */
static __thread char why[512];

__attribute__((format(printf, 1, 2))) static inline bool broken(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return false;
}

/* Fail the test unless `ok`. For loops: Check's own assertions record
 * their location on every call that passes, one write to the runner each. */
__attribute__((format(printf, 2, 3))) static inline void test_require(bool ok, const char *fmt,
                                                                      ...)
{
    if (__builtin_expect(ok, 1))
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ck_abort_msg("%s", msg);
}

/* Seconds on the monotonic clock. */
static inline double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Sleep about `ms` milliseconds; a stop signal may cut it short. */
static inline void nap(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The stores made into `p` so far happen: a fresh gc_alloc'd object that
 * the program never reads again is dead to the compiler (gc_alloc is
 * declared malloc-like), and so are the stores that fill or clear it. */
static inline void keep_stores(const void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

/* Run fn(arg) in a child process whose stderr is captured; assert that the
 * child died of SIGABRT and that its stderr contains `needle` and, when
 * `addr` is not NULL, the address printed with %p. */
static inline void expect_abort(void (*fn)(void *), void *arg, const char *needle,
                                const void *addr)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        fn(arg);
        _exit(0); /* not reached when fn aborts */
    }
    close(fds[1]);
    char out[4096];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof out - 1 && (n = read(fds[0], out + len, sizeof out - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = 0;
    close(fds[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                  "expected abort, child status %#x, stderr: %s", status, out);
    ck_assert_msg(strstr(out, needle), "stderr lacks \"%s\": %s", needle, out);
    if (addr) {
        char a[32];
        snprintf(a, sizeof a, "%p", addr);
        ck_assert_msg(strstr(out, a), "stderr lacks the address %s: %s", a, out);
    }
    ck_assert_msg(strchr(out, '\n') == out + len - 1, "not exactly one line: %s", out);
}

/* A 64-bit finalizer (splitmix64's): spreads every input bit over the whole
 * result, for checksums and test values. */
static inline uint64_t test_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

/* A deterministic generator for test data. */
static inline uint64_t test_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

/* Run this test binary again as `argv1 argv2` (a scenario flag and name)
 * with GCDEBUG set to `gcdebug` (the library reads it at start): returns
 * its wait status, its stdout and stderr in `out`. */
static inline int spawn_self(const char *argv1, const char *argv2, const char *gcdebug,
                             char *out, size_t cap)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        setenv("GCDEBUG", gcdebug, 1);
        execl("/proc/self/exe", "test", argv1, argv2, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t n;
    while (len < cap - 1 && (n = read(fds[0], out + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = 0;
    close(fds[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return status;
}

/* A new test case of `s` named `name`, each test allowed `timeout` seconds. */
static inline TCase *test_tcase(Suite *s, const char *name, int timeout)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, timeout);
    suite_add_tcase(s, tc);
    return tc;
}

/* Run a suite; the exit status of a test binary. */
static inline int test_run(Suite *suite)
{
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#define TEST_MAIN(make_suite)                                                                      \
    int main(void)                                                                                 \
    {                                                                                              \
        return test_run(make_suite());                                                             \
    }

#endif /* TRICOLOR_TESTUTIL_H */

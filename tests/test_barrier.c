/*
 * test_barrier.c — the write barrier, allocate-black and mark termination.
 *
 * Layers. Unit checks drive the barrier by hand (the flag set directly, no
 * cycle running: automatic cycles are off in this process) and look at the
 * calling thread's barrier buffer and at mark bits: GC_WRITE shades only
 * while the barrier is on, only heap values, and evaluates its arguments
 * once; bulk barriers shade the old words of the destination; the
 * collector's takes of a buffer mark only what is new since the last one.
 *
 * Then whole cycles, each in a fresh process (this binary re-executed with
 * GCDEBUG set, because the collector reads it at start):
 *   - hide: a mutator waits for marking to begin, moves the only reference
 *     to an object from an unscanned heap object into a black one without
 *     the barrier, and gccheckmark must abort naming the object;
 *   - keep: the same with GC_WRITE, and the object must survive intact;
 *     its shade sits in the mutator's barrier buffer (far from full), so
 *     marking must not terminate before the buffer is taken;
 *   - black: objects allocated while marking, reachable only from other
 *     new objects, survive.
 */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../allocator/heap.h"
#include "collector.h"
#include "testutil.h"
#include "tricolor.h"

/* Under ThreadSanitizer, hide and keep prove nothing: its per-thread state
 * (in static TLS, which the collector scans as a root) records the
 * addresses the thread touched lately, X's among them, so X is found
 * through it and never lost. They run in the other builds. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

#define SCENARIO_FLAG "--barrier-scenario"
#define LIST_NODES    200000 /* marking work queued before the object under test */
#define ATTEMPTS      50

/* ---- unit: the barrier by hand ---- */

/* What a cycle's start and end do to the barrier, without a cycle. */
static void fake_marking(bool on, AO_t cycle)
{
    AO_store(&heap_marking, on);
    barrier_set(on, cycle);
}

static struct barrier_buf *own_buffer(void)
{
    struct gc_thread *t = threads_self();
    ck_assert_ptr_nonnull(t);
    return &t->barrier;
}

static bool is_marked(const void *p)
{
    struct span *s = heap_span_of(p);
    int32_t idx = span_object_index(s, (uintptr_t)p);
    return (AO_load(&s->mark_bits[idx / 64]) >> (idx % 64)) & 1;
}

static void clear_mark(const void *p)
{
    struct span *s = heap_span_of(p);
    int32_t idx = span_object_index(s, (uintptr_t)p);
    AO_store(&s->mark_bits[idx / 64], AO_load(&s->mark_bits[idx / 64]) & ~((AO_t)1 << (idx % 64)));
}

START_TEST(write_shades_only_while_on)
{
    void **holder = gc_alloc(4 * sizeof(void *));
    void *a = gc_alloc(32), *b = gc_alloc(32);
    struct barrier_buf *buf = own_buffer();
    GC_WRITE(holder[0], a);
    AO_t n0 = AO_load(&buf->n);
    GC_WRITE(holder[0], b); /* off: nothing recorded */
    ck_assert_uint_eq(AO_load(&buf->n), n0);
    fake_marking(true, 1000);
    GC_WRITE(holder[0], a); /* on: b, the old value, recorded */
    ck_assert_uint_eq(AO_load(&buf->cycle), 1000);
    AO_t n = AO_load(&buf->n);
    ck_assert_uint_ge(n, 1);
    ck_assert_ptr_eq((void *)AO_load(&buf->entry[n - 1]), b);
    GC_WRITE(holder[1], (void *)0x1234); /* old value NULL: not a heap address */
    ck_assert_uint_eq(AO_load(&buf->n), n);
    GC_WRITE(holder[1], NULL); /* old value 0x1234: not a heap address either */
    ck_assert_uint_eq(AO_load(&buf->n), n);
    GC_BARRIER(&holder[0]); /* the value a stands in the slot */
    ck_assert_ptr_eq((void *)AO_load(&buf->entry[AO_load(&buf->n) - 1]), a);
    fake_marking(false, 1000);
    ck_assert_ptr_eq(holder[0], a);
}
END_TEST

static int evaluations;

static void *counted(void *p)
{
    evaluations++;
    return p;
}

START_TEST(write_evaluates_each_argument_once)
{
    void **arr = gc_alloc(8 * sizeof(void *));
    void *x = gc_alloc(16);
    int i = 0;
    evaluations = 0;
    fake_marking(true, 1001);
    GC_WRITE(arr[i++], counted(x));
    GC_WRITE(arr[i++], counted(arr[0]));
    fake_marking(false, 1001);
    ck_assert_int_eq(i, 2);
    ck_assert_int_eq(evaluations, 2);
    ck_assert_ptr_eq(arr[0], x);
    ck_assert_ptr_eq(arr[1], x);
}
END_TEST

/* Finish the grey work that `m` (begun) holds or can take, and end it, so
 * that no test leaves work behind. */
static void drain_and_end(struct marker *m)
{
    while (!mark_drain(m, ~(size_t)0))
        ;
    marker_end(m);
}

/* A full buffer is marked by its owner at once: the shaded objects carry
 * mark bits afterwards. */
START_TEST(full_buffer_is_marked_by_its_owner)
{
    enum { N = BARRIER_ENTRIES + 8 };
    void **holder = gc_alloc(sizeof(void *));
    void **objs = malloc(N * sizeof *objs);
    for (int i = 0; i < N; i++)
        objs[i] = gc_alloc(48);
    GC_WRITE(holder[0], objs[0]);
    fake_marking(true, 1002);
    for (int i = 1; i < N; i++)
        GC_WRITE(holder[0], objs[i]); /* shades objs[i - 1] */
    fake_marking(false, 1002);
    for (int i = 0; i < BARRIER_ENTRIES; i++) {
        ck_assert_msg(is_marked(objs[i]), "object %d of a flushed buffer is not marked", i);
        clear_mark(objs[i]);
    }
    struct marker m; /* the flushed objects went to the grey queue: take them */
    marker_begin(&m);
    drain_and_end(&m);
    free(objs);
}
END_TEST

/* Take the calling thread's buffer as the collector does, and finish the
 * grey work it made. */
static void take_own_buffer(void)
{
    struct marker m;
    marker_begin(&m);
    barrier_take(own_buffer(), &m);
    drain_and_end(&m);
}

/* Shade objs[from..to) (each store overwrites the one before it). */
static void shade_range(void **holder, void **objs, int from, int to)
{
    for (int i = from; i < to; i++) {
        GC_WRITE(holder[0], objs[i]);
        GC_WRITE(holder[0], NULL); /* shades objs[i] */
    }
}

/* The collector's takes are incremental: a second take marks only what was
 * shaded after the first (mark termination relies on the first, made with
 * the world running, having marked the rest). */
START_TEST(a_take_marks_only_what_is_new)
{
    enum { FIRST = 10, MORE = 5 };
    void **holder = gc_alloc(sizeof(void *));
    void *objs[FIRST + MORE];
    for (int i = 0; i < FIRST + MORE; i++)
        objs[i] = gc_alloc(48);
    fake_marking(true, 1003);
    shade_range(holder, objs, 0, FIRST);
    take_own_buffer();
    for (int i = 0; i < FIRST; i++) {
        ck_assert_msg(is_marked(objs[i]), "shaded object %d not marked by the take", i);
        clear_mark(objs[i]);
    }
    shade_range(holder, objs, FIRST, FIRST + MORE);
    take_own_buffer();
    for (int i = 0; i < FIRST + MORE; i++)
        ck_assert_msg(is_marked(objs[i]) == (i >= FIRST), "object %d: marked %d, taken before %d",
                      i, is_marked(objs[i]), i < FIRST);
    fake_marking(false, 1003);
    for (int i = 0; i < FIRST + MORE; i++)
        clear_mark(objs[i]);
}
END_TEST

/* A buffer its owner emptied since the last take (a new generation) is read
 * from its start; one of another cycle is not read at all. */
START_TEST(a_take_after_emptying_reads_from_the_start)
{
    enum { N = BARRIER_ENTRIES + 3 };
    void **holder = gc_alloc(sizeof(void *));
    void **objs = malloc(N * sizeof *objs);
    for (int i = 0; i < N; i++)
        objs[i] = gc_alloc(48);
    fake_marking(true, 1004);
    shade_range(holder, objs, 0, 100);
    take_own_buffer(); /* remembers 100 entries of this generation */
    shade_range(holder, objs, 100, N); /* fills (the owner marks, empties), then 3 more */
    ck_assert_uint_eq(AO_load(&own_buffer()->n), 3);
    for (int i = 0; i < N; i++)
        clear_mark(objs[i]);
    take_own_buffer();
    for (int i = 0; i < N; i++)
        ck_assert_msg(is_marked(objs[i]) == (i >= BARRIER_ENTRIES),
                      "object %d: marked %d after a take of a new generation", i,
                      is_marked(objs[i]));
    clear_mark(objs[N - 1]);
    barrier_set(true, 1005); /* the buffer's entries belong to cycle 1004 now */
    take_own_buffer();
    ck_assert_msg(!is_marked(objs[N - 1]), "an entry of an earlier cycle was taken");
    fake_marking(false, 1005);
    for (int i = BARRIER_ENTRIES; i < N; i++)
        clear_mark(objs[i]);
    free(objs);
}
END_TEST

/* Bulk barriers shade every heap word they overwrite, then store. */
START_TEST(bulk_barriers_shade_the_destination)
{
    void **dst = gc_alloc(4 * sizeof(void *));
    void *olds[3] = {gc_alloc(64), gc_alloc(64), gc_alloc(64)};
    void *src[4] = {NULL, NULL, NULL, NULL};
    for (int i = 0; i < 3; i++)
        GC_WRITE(dst[i], olds[i]);
    fake_marking(true, 1003);
    gc_memcpy(dst, src, 2 * sizeof(void *));
    ck_assert(is_marked(olds[0]) && is_marked(olds[1]));
    ck_assert(!is_marked(olds[2]));
    gc_memset(&dst[2], 0, sizeof(void *));
    ck_assert(is_marked(olds[2]));
    fake_marking(false, 1003);
    for (int i = 0; i < 3; i++) {
        ck_assert_ptr_null(dst[i]);
        clear_mark(olds[i]);
    }
    void *x = gc_alloc(64);
    GC_WRITE(dst[0], x);
    gc_memmove(&dst[1], &dst[0], sizeof(void *)); /* barrier off: no shade */
    ck_assert(!is_marked(x));
    ck_assert_ptr_eq(dst[1], x);
    struct marker m;
    marker_begin(&m);
    drain_and_end(&m);
}
END_TEST

/* ---- whole cycles, in fresh processes ---- */

/* The root reaches a list of LIST_NODES nodes whose last node holds A, and
 * A holds X: marking reaches A only after walking the whole list, one node
 * after the other, which leaves the mutator time to act first. */
struct hidden {
    void *list;
};

static struct hidden *g_pair; /* root */
static void ***g_tail;        /* malloc'ed (not a root): the list's last node */
static void **g_black;        /* root, NULL at the snapshot */

static int collect_done; /* set when collect_once's cycle returned */

static void *collect_once(void *arg)
{
    (void)arg;
    gc_collect();
    __atomic_store_n(&collect_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Start a cycle on another thread and wait until it marks; false when it
 * ended before this thread saw it marking (joined then). */
static bool start_cycle_and_wait_for_marking(pthread_t *t)
{
    __atomic_store_n(&collect_done, 0, __ATOMIC_RELEASE);
    pthread_create(t, NULL, collect_once, NULL);
    while (!__atomic_load_n(&gc_barrier_active, __ATOMIC_ACQUIRE))
        if (__atomic_load_n(&collect_done, __ATOMIC_ACQUIRE)) {
            pthread_join(*t, NULL);
            return false;
        }
    return true;
}

static void build_list(struct hidden *h)
{
    void **head = NULL;
    g_tail = malloc(sizeof *g_tail);
    for (int i = 0; i < LIST_NODES; i++) {
        void **n = gc_alloc(2 * sizeof(void *));
        GC_WRITE(n[0], head);
        if (!head)
            *g_tail = n;
        head = n;
    }
    GC_WRITE(h->list, head);
}

static uint64_t *x_new(uint64_t seed)
{
    uint64_t *x = gc_alloc_noscan(64);
    for (int i = 0; i < 8; i++)
        x[i] = test_mix(seed + (uint64_t)i);
    return x;
}

static bool x_intact(const uint64_t *x, uint64_t seed)
{
    if (gc_base(x) != x)
        return false;
    for (int i = 0; i < 8; i++)
        if (x[i] != test_mix(seed + (uint64_t)i))
            return false;
    return true;
}

/* A holds the only reference to a new X. Made by a thread that then exits,
 * so that no register or stack of a live thread keeps A or X by chance
 * (conservative scanning would). */
static void *setup_a_main(void *arg)
{
    void **a = gc_alloc(2 * sizeof(void *));
    GC_WRITE(a[0], x_new(*(uint64_t *)arg));
    GC_WRITE((*g_tail)[1], a);
    return NULL;
}

static void setup_a(uint64_t seed)
{
    pthread_t t;
    gc_pthread_create(&t, NULL, setup_a_main, &seed);
    pthread_join(t, NULL);
    g_black = NULL;
}

/* During marking: move X from A (not scanned yet) into a new, black object,
 * deleting A's reference with or without the barrier. Returns before the
 * cycle ends, so that no register or live stack slot of the caller keeps X
 * (the rescan at mark termination would find it there). False when X was
 * marked already (the markers reached A first, on a busy machine): then
 * the move proves nothing. */
static __attribute__((noinline)) bool move_x(bool with_barrier)
{
    void **a = (*g_tail)[1];
    void **black = gc_alloc(2 * sizeof(void *));
    GC_WRITE(black[0], a[0]);
    g_black = black;
    bool unmarked = !is_marked(a[0]);
    if (with_barrier)
        GC_WRITE(a[0], NULL);
    else
        *(void *volatile *)&a[0] = NULL; /* the bug checkmark must find */
    return unmarked;
}

enum outcome { KEPT, LOST, MISSED };

static enum outcome attempt(bool with_barrier, uint64_t seed)
{
    setup_a(seed);
    pthread_t t;
    if (!start_cycle_and_wait_for_marking(&t)) {
        GC_WRITE((*g_tail)[1], NULL);
        return MISSED;
    }
    bool valid = move_x(with_barrier);
    pthread_join(t, NULL);
    bool ok = x_intact(g_black[0], seed);
    GC_WRITE((*g_tail)[1], NULL);
    return !ok ? LOST : valid ? KEPT : MISSED;
}

static int scenario_move(bool with_barrier)
{
    g_pair = gc_alloc(sizeof *g_pair);
    build_list(g_pair);
    int done = 0;
    for (int i = 0; i < 20 * ATTEMPTS && done < ATTEMPTS; i++) {
        enum outcome o = attempt(with_barrier, (uint64_t)i * 977);
        if (o == LOST)
            return printf("object lost at attempt %d\n", i), 1;
        done += o == KEPT;
    }
    if (done < ATTEMPTS)
        return printf("only %d of %d attempts caught a cycle marking before it reached X\n",
                      done, ATTEMPTS),
               1;
    printf("no loss in %d attempts\n", ATTEMPTS);
    return 0;
}

/* Objects allocated while marking, reachable only from other new objects
 * (small chains and large blocks), survive the cycle intact. */
static int scenario_black(void)
{
    g_pair = gc_alloc(sizeof *g_pair);
    build_list(g_pair);
    for (int round = 0; round < 20; round++) {
        pthread_t t;
        if (!start_cycle_and_wait_for_marking(&t))
            continue;
        void **chain = NULL;
        for (int i = 0; i < 2000; i++) {
            void **n = gc_alloc(i % 100 == 0 ? 40000 : 3 * sizeof(void *));
            GC_WRITE(n[0], chain);
            GC_WRITE(n[1], x_new((uint64_t)i));
            chain = n;
        }
        g_black = chain;
        pthread_join(t, NULL);
        gc_collect();
        int i = 1999;
        for (void **n = g_black; n; n = n[0], i--)
            if (!x_intact(n[1], (uint64_t)i))
                return printf("new object %d lost in round %d\n", i, round), 1;
        if (i != -1)
            return printf("chain has %d nodes too few\n", i + 1), 1;
    }
    printf("allocated black and kept\n");
    return 0;
}

static int run_scenario(const char *name)
{
    if (strcmp(name, "hide") == 0)
        return scenario_move(false);
    if (strcmp(name, "keep") == 0)
        return scenario_move(true);
    if (strcmp(name, "black") == 0)
        return scenario_black();
    return 2;
}

/* Run a scenario with GCDEBUG set; returns its status, its output in `out`. */
static int spawn(const char *name, const char *gcdebug, char *out, size_t cap)
{
    return spawn_self(SCENARIO_FLAG, name, gcdebug, out, cap);
}

#if !UNDER_TSAN
START_TEST(checkmark_finds_a_store_without_barrier)
{
    char out[4096];
    int status = spawn("hide", "gcstoptheworld=0,gccheckmark=1", out, sizeof out);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                  "a hidden object went unnoticed (status %#x): %s", (unsigned)status, out);
    ck_assert_msg(strstr(out, "gccheckmark: object 0x") && strstr(out, "(64 bytes)") &&
                      strstr(out, "GC_WRITE"),
                  "abort without the object's address and size: %s", out);
}
END_TEST

START_TEST(barrier_keeps_the_moved_object)
{
    char out[4096];
    const char *modes[] = {"gcstoptheworld=0,gccheckmark=1", "gcstoptheworld=0"};
    for (int i = 0; i < 2; i++) {
        int status = spawn("keep", modes[i], out, sizeof out);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "GCDEBUG=%s: status %#x: %s", modes[i], (unsigned)status, out);
    }
}
END_TEST

#endif

START_TEST(allocated_black_survives)
{
    char out[4096];
    int status = spawn("black", "gcstoptheworld=0,gccheckmark=1", out, sizeof out);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x: %s",
                  (unsigned)status, out);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("barrier");
    TCase *tc = tcase_create("unit");
    tcase_add_test(tc, write_shades_only_while_on);
    tcase_add_test(tc, write_evaluates_each_argument_once);
    tcase_add_test(tc, full_buffer_is_marked_by_its_owner);
    tcase_add_test(tc, a_take_marks_only_what_is_new);
    tcase_add_test(tc, a_take_after_emptying_reads_from_the_start);
    tcase_add_test(tc, bulk_barriers_shade_the_destination);
    suite_add_tcase(s, tc);
    tc = tcase_create("cycles");
    tcase_set_timeout(tc, 300);
#if !UNDER_TSAN
    tcase_add_test(tc, checkmark_finds_a_store_without_barrier);
    tcase_add_test(tc, barrier_keeps_the_moved_object);
#endif
    tcase_add_test(tc, allocated_black_survives);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], SCENARIO_FLAG) == 0)
        return run_scenario(argv[2]);
    gc_set_percent(-1);
    return test_run(make_suite());
}

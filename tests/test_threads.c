/*
 * test_threads.c — the allocation API under many threads.
 *
 * Every object a test allocates is checksummed: its bytes are a pattern
 * derived from its own address and a per-object seed, written right after
 * allocation and compared right before the object is freed, by whichever
 * thread frees it. Two live objects that overlapped, a slot handed out
 * twice or a reused slot that was not zeroed show up as a broken pattern.
 *
 * Layers:
 *   stress    8 and 16 threads (more than the cores) allocate and free
 *             random sizes and pass objects to each other through
 *             mutex-protected inboxes; the receiver checks and frees.
 *   overlap   with many objects live, no two [base, base + gc_size) ranges
 *             overlap and gc_base finds every start.
 *   exit      a thread's cache is given back when it exits: another thread
 *             frees its objects and allocates again without new spans, and
 *             hundreds of short threads do not make the heap grow.
 *   lookup    an object freed by one thread is gone for every thread that
 *             synchronises with it; gc_base, which never aborts, races with
 *             frees of the objects it is asked about.
 */
#include <pthread.h>
#include <stdbool.h>

#include "../allocator/heap.h"
#include "testutil.h"
#include "tricolor.h"

#define LARGE_MIN   ((size_t)SC_MAX_SMALL + 1)
#define TIMEOUT     120
#define MAX_THREADS 16

/* ---- checksummed objects ---- */

struct obj {
    unsigned char *p;
    size_t size; /* bytes asked for */
    uint64_t seed;
};

/* Word k of the pattern of the object at `p`. */
static uint64_t pattern_word(const struct obj *o, size_t k)
{
    return test_mix((uintptr_t)o->p ^ o->seed) + k * 0x9e3779b97f4a7c15u;
}

static void obj_fill(const struct obj *o)
{
    size_t words = o->size / 8;
    for (size_t k = 0; k < words; k++) {
        uint64_t w = pattern_word(o, k);
        memcpy(o->p + 8 * k, &w, 8);
    }
    uint64_t w = pattern_word(o, words);
    memcpy(o->p + 8 * words, &w, o->size % 8);
}

static void obj_check(const struct obj *o)
{
    size_t words = o->size / 8;
    for (size_t k = 0; k < words; k++) {
        uint64_t w = pattern_word(o, k), got;
        memcpy(&got, o->p + 8 * k, 8);
        if (got != w)
            ck_abort_msg("object %p (%zu bytes): word %zu is %#llx, expected %#llx",
                         (void *)o->p, o->size, k, (unsigned long long)got,
                         (unsigned long long)w);
    }
    uint64_t w = pattern_word(o, words), got = 0;
    memcpy(&got, o->p + 8 * words, o->size % 8);
    ck_assert_msg(!memcmp(&got, &w, o->size % 8), "object %p (%zu bytes): tail differs",
                  (void *)o->p, o->size);
}

/* Random sizes 1..4096, one in `large_one_in` above 32 KiB. */
static size_t random_size(uint64_t *rng, unsigned large_one_in)
{
    uint64_t r = test_rand(rng);
    if (large_one_in && r % large_one_in == 0)
        return LARGE_MIN + (r >> 8) % (224 * 1024);
    return 1 + (r >> 8) % 4096;
}

/* Allocate, verify the fresh object is zero and ours, and fill it. */
static struct obj obj_new(uint64_t *rng, unsigned large_one_in)
{
    struct obj o = {.size = random_size(rng, large_one_in), .seed = test_rand(rng)};
    o.p = (o.seed & 1) ? gc_alloc_noscan(o.size) : gc_alloc(o.size);
    ck_assert_msg(o.p != NULL, "allocation of %zu bytes failed", o.size);
    size_t usable = gc_size(o.p);
    ck_assert_uint_ge(usable, o.size);
    for (size_t i = 0; i < usable; i += 8)
        if (*(uint64_t *)(o.p + i))
            ck_abort_msg("fresh object %p (%zu bytes): word at %zu not zero", (void *)o.p,
                         usable, i);
    obj_fill(&o);
    return o;
}

static void obj_free(const struct obj *o)
{
    ck_assert_ptr_eq(gc_base(o->p + o->size - 1), o->p);
    obj_check(o);
    gc_free(o->p);
}

static void start_threads(pthread_t *tids, unsigned n, void *(*fn)(void *), void *args,
                          size_t arg_size)
{
    for (unsigned i = 0; i < n; i++)
        ck_assert_int_eq(pthread_create(&tids[i], NULL, fn, (char *)args + i * arg_size), 0);
}

static void join_threads(pthread_t *tids, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        ck_assert_int_eq(pthread_join(tids[i], NULL), 0);
}

/* ---- stress: random sizes, frees by the allocating and by other threads ---- */

struct msg {
    struct msg *next;
    struct obj o;
};

struct inbox {
    pthread_mutex_t lock;
    struct msg *first; /* lock */
};

enum { LIVE_MAX = 256 };

struct stress;

struct worker {
    struct stress *st;
    unsigned id;
    uint64_t rng;
    struct inbox inbox;
    struct obj live[LIVE_MAX]; /* owner thread only */
    unsigned nlive;
    size_t allocated, freed, sent, received; /* owner; read by main after join */
};

struct stress {
    unsigned nthreads;
    unsigned iters;
    pthread_barrier_t sending_done;
    struct worker w[MAX_THREADS];
};

static void inbox_put(struct inbox *in, const struct obj *o)
{
    struct msg *m = malloc(sizeof *m);
    ck_assert_ptr_nonnull(m);
    m->o = *o;
    pthread_mutex_lock(&in->lock);
    m->next = in->first;
    in->first = m;
    pthread_mutex_unlock(&in->lock);
}

/* Check and free everything in the worker's inbox. */
static void drain_inbox(struct worker *w)
{
    pthread_mutex_lock(&w->inbox.lock);
    struct msg *m = w->inbox.first;
    w->inbox.first = NULL;
    pthread_mutex_unlock(&w->inbox.lock);
    while (m) {
        struct msg *next = m->next;
        obj_free(&m->o);
        w->received++;
        free(m);
        m = next;
    }
}

/* Retire a random live object: free it here or hand it to another worker. */
static void retire_one(struct worker *w)
{
    unsigned i = (unsigned)(test_rand(&w->rng) % w->nlive);
    struct obj o = w->live[i];
    w->live[i] = w->live[--w->nlive];
    uint64_t r = test_rand(&w->rng);
    if (r % 3 == 0) {
        unsigned to = (w->id + 1 + (unsigned)(r >> 8) % (w->st->nthreads - 1)) % w->st->nthreads;
        inbox_put(&w->st->w[to].inbox, &o);
        w->sent++;
    } else {
        obj_free(&o);
        w->freed++;
    }
}

static void *stress_main(void *arg)
{
    struct worker *w = arg;
    for (unsigned it = 0; it < w->st->iters; it++) {
        bool grow = w->nlive == 0 || (w->nlive < LIVE_MAX && test_rand(&w->rng) % 2);
        if (grow) {
            w->live[w->nlive++] = obj_new(&w->rng, 200);
            w->allocated++;
        } else {
            retire_one(w);
        }
        if (it % 16 == 0)
            drain_inbox(w);
    }
    pthread_barrier_wait(&w->st->sending_done);
    drain_inbox(w);
    while (w->nlive) {
        obj_free(&w->live[--w->nlive]);
        w->freed++;
    }
    return NULL;
}

static void run_stress(unsigned nthreads, unsigned iters)
{
    struct stress *st = calloc(1, sizeof *st);
    st->nthreads = nthreads;
    st->iters = iters;
    pthread_barrier_init(&st->sending_done, NULL, nthreads);
    for (unsigned i = 0; i < nthreads; i++) {
        st->w[i] = (struct worker){.st = st, .id = i, .rng = 0x1234567u + 977u * i};
        pthread_mutex_init(&st->w[i].inbox.lock, NULL);
    }
    pthread_t tids[MAX_THREADS];
    start_threads(tids, nthreads, stress_main, st->w, sizeof st->w[0]);
    join_threads(tids, nthreads);
    size_t allocated = 0, released = 0, sent = 0, received = 0;
    for (unsigned i = 0; i < nthreads; i++) {
        allocated += st->w[i].allocated;
        released += st->w[i].freed + st->w[i].received;
        sent += st->w[i].sent;
        received += st->w[i].received;
    }
    ck_assert_uint_eq(sent, received);
    ck_assert_uint_eq(allocated, released);
    ck_assert_uint_gt(sent, 0);
    ck_assert(heap_is_valid());
    pthread_barrier_destroy(&st->sending_done);
    free(st);
}

START_TEST(stress_8_threads)
{
    run_stress(8, 30000);
}
END_TEST

START_TEST(stress_16_threads)
{
    run_stress(16, 15000);
}
END_TEST

/* ---- overlap: many live objects, disjoint ranges ---- */

enum { OVERLAP_THREADS = 8, OVERLAP_PER_THREAD = 1500 };

struct overlap {
    pthread_barrier_t filled, checked;
    struct obj objs[OVERLAP_THREADS][OVERLAP_PER_THREAD];
};

struct overlap_arg {
    struct overlap *ov;
    unsigned id;
};

/* Allocate twice the quota, freeing at random, so that freed slots are
 * reused while the survivors stay live. */
static void fill_quota(struct obj *objs, uint64_t *rng)
{
    unsigned n = 0;
    for (unsigned i = 0; i < 2 * OVERLAP_PER_THREAD && n < OVERLAP_PER_THREAD; i++) {
        objs[n++] = obj_new(rng, 100);
        if (n > 1 && test_rand(rng) % 2) {
            unsigned j = (unsigned)(test_rand(rng) % n);
            obj_free(&objs[j]);
            objs[j] = objs[--n];
        }
    }
    while (n < OVERLAP_PER_THREAD)
        objs[n++] = obj_new(rng, 100);
}

static void *overlap_main(void *arg)
{
    struct overlap_arg *a = arg;
    uint64_t rng = 0xabcdefu + a->id;
    fill_quota(a->ov->objs[a->id], &rng);
    pthread_barrier_wait(&a->ov->filled);
    pthread_barrier_wait(&a->ov->checked);
    /* Free the neighbour's objects: cross-thread frees. */
    struct obj *theirs = a->ov->objs[(a->id + 1) % OVERLAP_THREADS];
    for (unsigned i = 0; i < OVERLAP_PER_THREAD; i++)
        obj_free(&theirs[i]);
    return NULL;
}

static int cmp_obj(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const struct obj *)a)->p;
    uintptr_t y = (uintptr_t)((const struct obj *)b)->p;
    return (x > y) - (x < y);
}

static void check_disjoint(struct obj *all, size_t n)
{
    qsort(all, n, sizeof *all, cmp_obj);
    for (size_t i = 0; i < n; i++) {
        ck_assert_ptr_eq(gc_base(all[i].p), all[i].p);
        size_t usable = gc_size(all[i].p);
        ck_assert_uint_ge(usable, all[i].size);
        ck_assert_ptr_eq(gc_base(all[i].p + usable - 1), all[i].p);
        obj_check(&all[i]);
        if (i + 1 < n)
            ck_assert_msg(all[i].p + usable <= all[i + 1].p,
                          "[%p, +%zu) overlaps the object at %p", (void *)all[i].p, usable,
                          (void *)all[i + 1].p);
    }
}

START_TEST(live_objects_do_not_overlap)
{
    struct overlap *ov = calloc(1, sizeof *ov);
    pthread_barrier_init(&ov->filled, NULL, OVERLAP_THREADS + 1);
    pthread_barrier_init(&ov->checked, NULL, OVERLAP_THREADS + 1);
    struct overlap_arg args[OVERLAP_THREADS];
    for (unsigned i = 0; i < OVERLAP_THREADS; i++)
        args[i] = (struct overlap_arg){.ov = ov, .id = i};
    pthread_t tids[OVERLAP_THREADS];
    start_threads(tids, OVERLAP_THREADS, overlap_main, args, sizeof args[0]);
    pthread_barrier_wait(&ov->filled);
    size_t n = (size_t)OVERLAP_THREADS * OVERLAP_PER_THREAD;
    struct obj *all = malloc(n * sizeof *all);
    memcpy(all, ov->objs, n * sizeof *all);
    check_disjoint(all, n);
    pthread_barrier_wait(&ov->checked);
    join_threads(tids, OVERLAP_THREADS);
    for (size_t i = 0; i < n; i++)
        ck_assert_ptr_null(gc_base(all[i].p));
    ck_assert(heap_is_valid());
    free(all);
    pthread_barrier_destroy(&ov->filled);
    pthread_barrier_destroy(&ov->checked);
    free(ov);
}
END_TEST

/* ---- exit: caches are flushed when threads exit ---- */

static const size_t exit_sizes[] = {8, 16, 48, 256, 1000, 4000, 20000, 40000};

enum { EXIT_PER_SIZE = 150, EXIT_OBJS = 8 * EXIT_PER_SIZE };

struct batch {
    struct obj objs[EXIT_OBJS];
    uint64_t seed;
};

/* Fixed sizes, so that a second batch needs exactly the slots of the first. */
static void *alloc_batch(void *arg)
{
    struct batch *b = arg;
    for (unsigned i = 0; i < EXIT_OBJS; i++) {
        struct obj *o = &b->objs[i];
        o->size = exit_sizes[i % 8];
        o->seed = b->seed + i;
        o->p = (i / 8) % 2 ? gc_alloc_noscan(o->size) : gc_alloc(o->size);
        ck_assert_ptr_nonnull(o->p);
        obj_fill(o);
    }
    return NULL;
}

static void *free_batch(void *arg)
{
    struct batch *b = arg;
    for (unsigned i = 0; i < EXIT_OBJS; i++)
        obj_free(&b->objs[i]);
    b->seed += EXIT_OBJS;
    return NULL;
}

static void *free_and_realloc_batch(void *arg)
{
    free_batch(arg);
    return alloc_batch(arg);
}

static void run_in_thread(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, fn, arg), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
}

static size_t bytes_in_use(void)
{
    struct heap_stats st;
    heap_read_stats(&st);
    return st.in_use;
}

START_TEST(exited_thread_objects_freed_elsewhere)
{
    struct batch *b = calloc(1, sizeof *b);
    run_in_thread(alloc_batch, b);
    size_t after_first = bytes_in_use();
    for (int round = 0; round < 4; round++) {
        /* One thread frees the dead thread's objects and exits, another
         * allocates as many again: every slot must be back in circulation,
         * so no new span is needed. */
        run_in_thread(free_batch, b);
        run_in_thread(alloc_batch, b);
        size_t now = bytes_in_use();
        ck_assert_msg(now <= after_first, "round %d: %zu bytes in use, %zu after the first batch",
                      round, now, after_first);
    }
    /* One thread both frees the dead thread's objects and allocates again. */
    for (int round = 0; round < 4; round++)
        run_in_thread(free_and_realloc_batch, b);
    for (unsigned i = 0; i < EXIT_OBJS; i++)
        obj_free(&b->objs[i]);
    ck_assert(heap_is_valid());
    free(b);
}
END_TEST

/* ---- many short threads ---- */

enum { SHORT_WAVE = 8, SHORT_WAVES = 25, SHORT_ALLOCS = 64, SHORT_KEEP = 16 };

struct short_arg {
    uint64_t rng;
    struct obj kept[SHORT_KEEP];
};

/* Allocate, free most, leave SHORT_KEEP objects for main to free. */
static void *short_main(void *arg)
{
    struct short_arg *a = arg;
    struct obj objs[SHORT_ALLOCS];
    for (unsigned i = 0; i < SHORT_ALLOCS; i++)
        objs[i] = obj_new(&a->rng, 32);
    for (unsigned i = SHORT_KEEP; i < SHORT_ALLOCS; i++)
        obj_free(&objs[i]);
    memcpy(a->kept, objs, sizeof a->kept);
    return NULL;
}

static void run_wave(uint64_t seed)
{
    struct short_arg args[SHORT_WAVE];
    for (unsigned i = 0; i < SHORT_WAVE; i++)
        args[i].rng = seed * SHORT_WAVE + i + 1;
    pthread_t tids[SHORT_WAVE];
    start_threads(tids, SHORT_WAVE, short_main, args, sizeof args[0]);
    join_threads(tids, SHORT_WAVE);
    for (unsigned i = 0; i < SHORT_WAVE; i++)
        for (unsigned j = 0; j < SHORT_KEEP; j++)
            obj_free(&args[i].kept[j]);
}

START_TEST(many_short_threads)
{
    /* Two warm-up waves give every size class its spans. */
    run_wave(1000);
    run_wave(1001);
    struct heap_stats start;
    heap_read_stats(&start);
    for (unsigned wave = 0; wave < SHORT_WAVES; wave++)
        run_wave(wave);
    struct heap_stats end;
    heap_read_stats(&end);
    /* A cache lost at each exit would strand a span per size class per
     * thread: 200 threads x ~88 span classes x 8 KiB. */
    size_t bound = (size_t)4 << 20;
    ck_assert_msg(end.in_use <= start.in_use + bound,
                  "in use grew from %zu to %zu bytes over %d threads", start.in_use, end.in_use,
                  SHORT_WAVE * SHORT_WAVES);
    ck_assert(heap_is_valid());
}
END_TEST

/* ---- lookup: gc_base racing with gc_free ---- */

enum { PROBE_ROUNDS = 40000, PROBE_SLOTS = 8 };

struct probe {
    uintptr_t recent[PROBE_SLOTS]; /* __atomic: objects about to be freed */
    int done;                      /* __atomic */
    size_t probes, hits;           /* prober thread only */
};

/* Allocate objects, publish their addresses, free them at once. */
static void *probe_churn(void *arg)
{
    struct probe *pr = arg;
    uint64_t rng = 99;
    for (unsigned i = 0; i < PROBE_ROUNDS; i++) {
        size_t size = i % 2 ? LARGE_MIN + test_rand(&rng) % 65536 : 1 + test_rand(&rng) % 512;
        char *p = gc_alloc_noscan(size);
        ck_assert_ptr_nonnull(p);
        __atomic_store_n(&pr->recent[i % PROBE_SLOTS], (uintptr_t)p, __ATOMIC_RELEASE);
        gc_free(p);
    }
    __atomic_store_n(&pr->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* gc_base of a published address is NULL (freed) or the address itself. */
static void *probe_lookup(void *arg)
{
    struct probe *pr = arg;
    uint64_t rng = 7;
    while (!__atomic_load_n(&pr->done, __ATOMIC_ACQUIRE)) {
        uint64_t r = test_rand(&rng);
        uintptr_t p = __atomic_load_n(&pr->recent[r % PROBE_SLOTS], __ATOMIC_ACQUIRE);
        if (!p)
            continue; /* nothing published yet */
        void *b = gc_base((void *)p);
        ck_assert_msg(b == NULL || (uintptr_t)b <= p, "gc_base(%#lx) = %p", (unsigned long)p, b);
        pr->probes++;
        pr->hits += b != NULL;
    }
    return NULL;
}

START_TEST(base_races_with_free)
{
    struct probe pr = {.done = 0};
    pthread_t churn, lookup;
    ck_assert_int_eq(pthread_create(&churn, NULL, probe_churn, &pr), 0);
    ck_assert_int_eq(pthread_create(&lookup, NULL, probe_lookup, &pr), 0);
    ck_assert_int_eq(pthread_join(churn, NULL), 0);
    ck_assert_int_eq(pthread_join(lookup, NULL), 0);
    ck_assert_uint_gt(pr.probes, 0);
    ck_assert(heap_is_valid());
}
END_TEST

/* After gc_free returns in one thread, a thread that synchronises with it
 * no longer finds the object: gc_base says NULL and gc_size aborts. */

static const size_t handoff_sizes[] = {8, 16, 48, 256, 1000, 4000, 20000};

enum { HANDOFF_OBJS = sizeof handoff_sizes / sizeof handoff_sizes[0] };

struct handoff {
    pthread_barrier_t freed, checked;
    char *freed_objs[HANDOFF_OBJS]; /* written before `freed` */
};

static void *free_then_wait(void *arg)
{
    struct handoff *h = arg;
    char *neighbours[HANDOFF_OBJS];
    for (unsigned i = 0; i < HANDOFF_OBJS; i++) {
        h->freed_objs[i] = gc_alloc(handoff_sizes[i]);
        neighbours[i] = gc_alloc(handoff_sizes[i]); /* keeps the span busy */
        ck_assert_ptr_nonnull(h->freed_objs[i]);
        ck_assert_ptr_nonnull(neighbours[i]);
        gc_free(h->freed_objs[i]);
    }
    pthread_barrier_wait(&h->freed);
    pthread_barrier_wait(&h->checked); /* stay alive: exit would flush the cache */
    for (unsigned i = 0; i < HANDOFF_OBJS; i++)
        gc_free(neighbours[i]);
    return NULL;
}

static void size_it(void *p)
{
    (void)gc_size(p);
}

START_TEST(free_visible_to_other_threads)
{
    struct handoff h;
    pthread_barrier_init(&h.freed, NULL, 2);
    pthread_barrier_init(&h.checked, NULL, 2);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, free_then_wait, &h), 0);
    pthread_barrier_wait(&h.freed);
    for (unsigned i = 0; i < HANDOFF_OBJS; i++) {
        char *p = h.freed_objs[i];
        ck_assert_msg(gc_base(p) == NULL && gc_base(p + 1) == NULL,
                      "%zu-byte object %p freed by another thread: gc_base = %p",
                      handoff_sizes[i], (void *)p, gc_base(p));
    }
    expect_abort(size_it, h.freed_objs[0], "gc_size", h.freed_objs[0]);
    pthread_barrier_wait(&h.checked);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    pthread_barrier_destroy(&h.freed);
    pthread_barrier_destroy(&h.checked);
}
END_TEST

/* ---- suite ---- */

static Suite *make_suite(void)
{
    /* These tests drive the allocator with explicit gc_free and keep their
     * objects in malloc'd arrays, which the collector does not scan:
     * automatic collection stays off (the collector has its own suites). */
    gc_set_percent(-1);
    Suite *s = suite_create("threads");

    TCase *tc = tcase_create("stress");
    tcase_set_timeout(tc, TIMEOUT);
    tcase_add_test(tc, stress_8_threads);
    tcase_add_test(tc, stress_16_threads);
    suite_add_tcase(s, tc);

    tc = tcase_create("overlap");
    tcase_set_timeout(tc, TIMEOUT);
    tcase_add_test(tc, live_objects_do_not_overlap);
    suite_add_tcase(s, tc);

    tc = tcase_create("exit");
    tcase_set_timeout(tc, TIMEOUT);
    tcase_add_test(tc, exited_thread_objects_freed_elsewhere);
    tcase_add_test(tc, many_short_threads);
    suite_add_tcase(s, tc);

    tc = tcase_create("lookup");
    tcase_set_timeout(tc, TIMEOUT);
    tcase_add_test(tc, free_visible_to_other_threads);
    tcase_add_test(tc, base_races_with_free);
    suite_add_tcase(s, tc);
    return s;
}

TEST_MAIN(make_suite)

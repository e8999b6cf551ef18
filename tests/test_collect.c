/*
 * test_collect.c — the collection cycle, end to end: what is unreachable is
 * reclaimed, what is reachable survives with its contents intact.
 *
 * Every structure a test keeps is checksummed: its words are a pattern
 * derived from a per-node seed and the node's own address, written right
 * after allocation and compared after collections. A node reclaimed while
 * reachable, a slot handed out twice, or a sweep that cleared a live object
 * shows up as a broken pattern. Garbage is filled with a byte pattern that
 * is not a heap address, so that it overwrites whatever it lands on.
 *
 * Layers:
 *   reclaim   a program allocating 20 times what it keeps, with default
 *             settings and no gc_collect, peaks at a small multiple of its
 *             live data; gc_collect returns with unreachable objects of
 *             every kind reclaimed (gc_base finds nothing there).
 *   deep      a 5-million-node list, a million-deep tree and a 1 GiB array
 *             of pointers mark without overflow and survive later garbage.
 *   threads   objects a thread has just been handed, small and large,
 *             survive cycles other threads run at that moment; 16 threads
 *             build, share, drop and verify structures while the main
 *             thread collects and allocation triggers cycles too.
 *   fork      children forked while threads allocate collect and find
 *             their inherited data; the parent keeps collecting.
 *   realloc   chains of gc_realloc'd pointer buffers under collection.
 *   percent   gc_set_percent turns automatic cycles off and on and returns
 *             the previous setting; GCPERCENT is read at start-up (checked
 *             in fresh processes: this binary re-executed with
 *             SCENARIO_FLAG runs one scenario instead of the suite).
 *   limit     gc_set_memory_limit returns and queries the setting; with
 *             GCPERCENT off, a memory limit still runs cycles and holds the
 *             memory near it; an idle program gets a cycle every period.
 *
 * Sizes shrink under AddressSanitizer (SLOW_BUILD) to keep the run short.
 */
#define _GNU_SOURCE /* clock_gettime, setenv in a child */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <time.h>

#include "../allocator/heap.h"
#include "../gc/collector.h"
#include "testutil.h"
#include "tricolor.h"

#if defined(__SANITIZE_ADDRESS__)
#define SLOW_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLOW_BUILD 1
#endif
#endif
#ifndef SLOW_BUILD
#define SLOW_BUILD 0
#endif

#define MiB          ((size_t)1 << 20)
#define LARGE_MIN    ((size_t)SC_MAX_SMALL + 1)
#define TIMEOUT      240
#define NELEMS(a)    (sizeof(a) / sizeof((a)[0]))
#define SCALED(n, d) (SLOW_BUILD ? (n) / (d) : (n))

#define SCENARIO_FLAG "--collect-scenario"

enum kind { SCAN, NOSCAN };

/* ---- small helpers ---- */

static void *alloc_kind(enum kind k, size_t size)
{
    return k == NOSCAN ? gc_alloc_noscan(size) : gc_alloc(size);
}

static bool stop_requested(const int *flag)
{
    return __atomic_load_n(flag, __ATOMIC_ACQUIRE) != 0;
}

static void request_stop(int *flag)
{
    __atomic_store_n(flag, 1, __ATOMIC_RELEASE);
}

static void start_threads(pthread_t *tids, unsigned n, void *(*fn)(void *), void *args,
                          size_t arg_size)
{
    for (unsigned i = 0; i < n; i++)
        ck_assert_int_eq(gc_pthread_create(&tids[i], NULL, fn, (char *)args + i * arg_size), 0);
}

static void join_threads(const pthread_t *tids, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        ck_assert_int_eq(pthread_join(tids[i], NULL), 0);
}

/* ---- garbage ---- */

enum { GARBAGE_RING = 64 };

/* Mixed sizes: mostly small, some medium, 2% above 32 KiB. */
static size_t garbage_size(uint64_t *rng)
{
    uint64_t r = test_rand(rng);
    unsigned pick = (unsigned)(r % 100);
    r >>= 8;
    if (pick < 60)
        return 8 + r % 120;
    if (pick < 90)
        return 128 + r % 3968;
    if (pick < 98)
        return 4096 + r % (28 << 10);
    return LARGE_MIN + r % (224 << 10);
}

/* Allocate about `bytes` of garbage, every byte written. A quarter is
 * noscan; the rest links to the previous object for a while, as
 * short-lived structures do. False when an allocation failed. */
static bool make_garbage(size_t bytes, uint64_t *rng)
{
    void *ring[GARBAGE_RING] = {0};
    size_t done = 0;
    for (unsigned i = 0; done < bytes; i++) {
        size_t size = garbage_size(rng);
        enum kind k = i % 4 == 0 ? NOSCAN : SCAN;
        void **p = alloc_kind(k, size);
        if (!p)
            return broken("garbage: allocation of %zu bytes failed", size);
        memset(p, 0xa5, size);
        if (k == SCAN && size >= sizeof(void *))
            GC_WRITE(p[0], ring[(i + GARBAGE_RING - 1) % GARBAGE_RING]);
        keep_stores(p);
        ring[i % GARBAGE_RING] = p;
        done += size;
    }
    return true;
}

/* ---- checksummed trees ----
 * A node holds up to four children, `nwords` pattern words inline and
 * optionally a noscan payload of pattern words; both patterns depend on the
 * node's seed and address. A few nodes and payloads are large objects. */

enum { MAX_KIDS = 4 };

struct cnode {
    uint64_t seed;
    uint32_t nkids;
    uint32_t nwords;
    struct cnode *kid[MAX_KIDS];
    uint64_t *payload; /* noscan, npayload words, or NULL */
    size_t npayload;
    uint64_t word[];
};

static uint64_t pattern(const void *at, uint64_t seed, size_t k)
{
    return test_mix((uintptr_t)at ^ seed) + k * 0x9e3779b97f4a7c15u;
}

static size_t random_words(uint64_t *rng, size_t small_max, size_t large)
{
    uint64_t r = test_rand(rng);
    return r % 64 == 0 ? large + (r >> 8) % 1024 : (r >> 8) % small_max;
}

/* One node without children, counting its bytes into *bytes. */
static struct cnode *cnode_new(uint64_t *rng, size_t *bytes)
{
    size_t nwords = random_words(rng, 32, LARGE_MIN / 8);
    struct cnode *n = gc_alloc(sizeof *n + nwords * 8);
    test_require(n != NULL, "allocation failed");
    n->seed = test_rand(rng);
    n->nwords = (uint32_t)nwords;
    for (size_t k = 0; k < nwords; k++)
        n->word[k] = pattern(n, n->seed, k);
    *bytes += gc_size(n);
    if (test_rand(rng) % 2 == 0)
        return n;
    size_t np = 1 + random_words(rng, 256, LARGE_MIN / 8);
    uint64_t *p = gc_alloc_noscan(np * 8);
    test_require(p != NULL, "allocation failed");
    for (size_t k = 0; k < np; k++)
        p[k] = pattern(p, ~n->seed, k);
    n->npayload = np;
    GC_WRITE(n->payload, p);
    *bytes += gc_size(p);
    return n;
}

/* A random tree of at most `depth` levels below the root. */
static struct cnode *tree_new(uint64_t *rng, unsigned depth, size_t *bytes)
{
    struct cnode *n = cnode_new(rng, bytes);
    unsigned nkids = depth ? (unsigned)(test_rand(rng) % (MAX_KIDS + 1)) : 0;
    for (unsigned i = 0; i < nkids; i++)
        GC_WRITE(n->kid[i], tree_new(rng, depth - 1, bytes));
    n->nkids = nkids;
    return n;
}

static bool object_ok(const void *p, const char *what)
{
    if (gc_base(p) != p)
        return broken("%s %p is no longer an allocated object (gc_base %p)", what, p, gc_base(p));
    return true;
}

static bool cnode_ok(const struct cnode *n)
{
    if (!object_ok(n, "node"))
        return false;
    for (size_t k = 0; k < n->nwords; k++)
        if (n->word[k] != pattern(n, n->seed, k))
            return broken("node %p: word %zu of %u is %#llx", (const void *)n, k, n->nwords,
                          (unsigned long long)n->word[k]);
    if (!n->payload)
        return true;
    if (!object_ok(n->payload, "payload"))
        return false;
    for (size_t k = 0; k < n->npayload; k++)
        if (n->payload[k] != pattern(n->payload, ~n->seed, k))
            return broken("payload %p of node %p: word %zu of %zu is %#llx",
                          (const void *)n->payload, (const void *)n, k, n->npayload,
                          (unsigned long long)n->payload[k]);
    return true;
}

static bool tree_ok(const struct cnode *n)
{
    if (!cnode_ok(n))
        return false;
    if (n->nkids > MAX_KIDS)
        return broken("node %p: %u children", (const void *)n, n->nkids);
    for (unsigned i = 0; i < n->nkids; i++)
        if (!tree_ok(n->kid[i]))
            return false;
    return true;
}

/* A forest of `n` trees in one gc_alloc'd array. */
static struct cnode **forest_new(uint64_t *rng, size_t n, unsigned depth, size_t *bytes)
{
    struct cnode **f = gc_alloc(n * sizeof *f);
    ck_assert_ptr_nonnull(f);
    *bytes += gc_size(f);
    for (size_t i = 0; i < n; i++)
        GC_WRITE(f[i], tree_new(rng, depth, bytes));
    return f;
}

static bool forest_ok(struct cnode *const *f, size_t n)
{
    if (!object_ok(f, "forest"))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!tree_ok(f[i]))
            return false;
    return true;
}

/* ---- reclaim: a program that allocates far more than it keeps ---- */

/* A field of /proc/self/status, in KiB. */
static size_t status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    ck_assert_ptr_nonnull(f);
    char line[256];
    size_t kib = 0, len = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, len) == 0 && line[len] == ':')
            kib = strtoull(line + len + 1, NULL, 10);
    fclose(f);
    ck_assert_uint_gt(kib, 0);
    return kib;
}

enum { LIVE_TREES = 4096 };

static struct cnode **live_forest; /* a global root */

START_TEST(allocating_20x_live_stays_near_live)
{
    const size_t live_goal = 20 * MiB, garbage = 400 * MiB;
    size_t rss_before = status_kib("VmRSS") << 10;
    unsigned long cycles_before = collect_cycles();
    uint64_t rng = 0x5eed1;
    size_t live = 0, trees = 0;
    live_forest = gc_alloc(LIVE_TREES * sizeof *live_forest);
    ck_assert_ptr_nonnull(live_forest);
    live += gc_size(live_forest);
    for (; live < live_goal && trees < LIVE_TREES; trees++)
        GC_WRITE(live_forest[trees], tree_new(&rng, 2, &live));
    ck_assert_uint_ge(live, live_goal);
    for (unsigned round = 0; round < 4; round++) {
        ck_assert_msg(make_garbage(garbage / 4, &rng), "%s", why);
        ck_assert_msg(forest_ok(live_forest, trees), "after %u rounds: %s", round + 1, why);
    }
    size_t peak = status_kib("VmHWM") << 10;
    struct heap_stats st;
    heap_read_stats(&st);
    size_t limit = 4 * live + 16 * MiB;
    ck_assert_uint_gt(collect_cycles(), cycles_before);
    ck_assert_msg(peak - rss_before <= limit,
                  "peak RSS grew by %zu MiB for %zu MiB live (limit %zu MiB; %lu cycles; heap "
                  "committed %zu MiB, in use %zu MiB)",
                  (peak - rss_before) / MiB, live / MiB, limit / MiB,
                  collect_cycles() - cycles_before, st.committed / MiB, st.in_use / MiB);
}
END_TEST

/* gc_collect returns with unreachable objects reclaimed, for each kind. */
static const struct reclaim_case {
    size_t size;
    enum kind kind;
    size_t n;
} reclaim_cases[] = {
    {16, SCAN, 100000},   {48, NOSCAN, 100000}, {1000, SCAN, 20000},
    {8192, NOSCAN, 2000}, {40000, SCAN, 400},   {(size_t)1 << 20, NOSCAN, 40},
};

/* Addresses are kept disguised, so that no scan of our own memory could
 * take them for pointers. */
#define DISGUISE(p) ((uintptr_t)(p) ^ ~(uintptr_t)0)

/* Allocate the case's objects, held only by a heap array, and record their
 * disguised addresses in hidden[]. Noinline: its frame is gone when the
 * caller collects. */
static __attribute__((noinline)) void allocate_and_drop(const struct reclaim_case *c,
                                                        uintptr_t *hidden)
{
    void **holder = gc_alloc(c->n * sizeof *holder);
    ck_assert_ptr_nonnull(holder);
    for (size_t i = 0; i < c->n; i++) {
        unsigned char *p = alloc_kind(c->kind, c->size);
        test_require(p != NULL, "allocation failed");
        memset(p, 0x5a, c->size);
        GC_WRITE(holder[i], p);
        hidden[i] = DISGUISE(p);
    }
    memset(holder, 0, c->n * sizeof *holder);
    keep_stores(holder); /* else a stale pointer to the holder keeps them all */
}

START_TEST(collect_reclaims_dropped_objects)
{
    const struct reclaim_case *c = &reclaim_cases[_i];
    uintptr_t *hidden = malloc(c->n * sizeof *hidden);
    ck_assert_ptr_nonnull(hidden);
    allocate_and_drop(c, hidden);
    gc_collect();
    size_t kept = 0;
    for (size_t i = 0; i < c->n; i++)
        kept += gc_base((void *)DISGUISE(hidden[i])) != NULL;
    ck_assert_msg(kept * 10 <= c->n, "%zu of %zu dropped %zu-byte objects survived gc_collect",
                  kept, c->n, c->size);
    ck_assert_msg(AO_load(&heap_live) <= c->n * c->size / 10 + MiB,
                  "heap_live is %zu bytes after dropping %zu", (size_t)AO_load(&heap_live),
                  c->n * c->size);
    free(hidden);
}
END_TEST

/* ---- deep: structures that would overflow a recursive marker ---- */

struct lnode {
    struct lnode *next;
    uint64_t value;
};

static struct lnode *long_list; /* a global root */

static bool list_ok(const struct lnode *head, size_t n)
{
    size_t i = n;
    for (const struct lnode *l = head; l; l = l->next) {
        if (i == 0)
            return broken("list longer than %zu nodes", n);
        i--;
        if (l->value != test_mix(i))
            return broken("list node %zu at %p holds %#llx", i, (const void *)l,
                          (unsigned long long)l->value);
    }
    return i == 0 ? true : broken("list lost %zu of %zu nodes", i, n);
}

START_TEST(long_list_survives)
{
    const size_t n = SCALED((size_t)5000000, 5);
    uint64_t rng = 0x11;
    for (size_t i = 0; i < n; i++) {
        struct lnode *l = gc_alloc(sizeof *l);
        test_require(l != NULL, "allocation failed");
        l->value = test_mix(i);
        GC_WRITE(l->next, long_list);
        long_list = l;
    }
    gc_collect();
    ck_assert_msg(list_ok(long_list, n), "after gc_collect: %s", why);
    ck_assert_msg(make_garbage(SCALED(128 * MiB, 4), &rng), "%s", why);
    ck_assert_msg(list_ok(long_list, n), "after more garbage: %s", why);
}
END_TEST

struct tnode {
    struct tnode *left, *right;
    uint64_t value;
};

static struct tnode *deep_tree; /* a global root */

static struct tnode *tnode_new(uint64_t value, struct tnode *left, struct tnode *right)
{
    struct tnode *t = gc_alloc(sizeof *t);
    test_require(t != NULL, "allocation failed");
    t->value = value;
    GC_WRITE(t->left, left);
    GC_WRITE(t->right, right);
    return t;
}

/* A complete tree of `levels` levels, values from `*next` on. */
static struct tnode *bushy(unsigned levels, uint64_t *next, uint64_t *sum)
{
    if (!levels)
        return NULL;
    uint64_t v = test_mix((*next)++);
    *sum += v;
    struct tnode *l = bushy(levels - 1, next, sum);
    struct tnode *r = bushy(levels - 1, next, sum);
    return tnode_new(v, l, r);
}

struct tree_shape {
    size_t nodes;
    uint64_t sum;
};

/* A left-only spine of `depth` nodes (spine node d holds test_mix(d)), with a
 * small complete subtree on the right of every 1000th. */
static struct tnode *spine_new(size_t depth, struct tree_shape *shape)
{
    struct tnode *t = NULL;
    uint64_t next = depth;
    for (size_t d = depth; d-- > 0;) {
        uint64_t before = next;
        struct tnode *right = d % 1000 == 0 ? bushy(4, &next, &shape->sum) : NULL;
        shape->nodes += 1 + (size_t)(next - before);
        shape->sum += test_mix(d);
        t = tnode_new(test_mix(d), t, right);
    }
    return t;
}

static bool spine_ok(const struct tnode *t, size_t depth)
{
    size_t d = 0;
    for (; t; t = t->left, d++)
        if (d >= depth || t->value != test_mix(d))
            return broken("spine node %zu at %p holds %#llx", d, (const void *)t,
                          (unsigned long long)t->value);
    return d == depth ? true : broken("spine is %zu nodes deep, not %zu", d, depth);
}

/* Count and sum every node with an explicit stack. */
static bool tree_shape_ok(const struct tnode *root, const struct tree_shape *want)
{
    size_t cap = 1024, top = 0;
    const struct tnode **stack = malloc(cap * sizeof *stack);
    test_require(stack != NULL, "out of memory for the traversal");
    struct tree_shape got = {0, 0};
    stack[top++] = root;
    while (top) {
        const struct tnode *t = stack[--top];
        got.nodes++;
        got.sum += t->value;
        if (top + 2 > cap)
            stack = realloc(stack, (cap *= 2) * sizeof *stack);
        test_require(stack != NULL, "out of memory for the traversal");
        if (t->left)
            stack[top++] = t->left;
        if (t->right)
            stack[top++] = t->right;
    }
    free(stack);
    if (got.nodes != want->nodes || got.sum != want->sum)
        return broken("tree has %zu nodes (sum %#llx), built %zu (sum %#llx)", got.nodes,
                      (unsigned long long)got.sum, want->nodes, (unsigned long long)want->sum);
    return true;
}

START_TEST(deep_tree_survives)
{
    const size_t depth = SCALED((size_t)1000000, 2);
    struct tree_shape shape = {0, 0};
    uint64_t rng = 0x22;
    deep_tree = spine_new(depth, &shape);
    gc_collect();
    ck_assert_msg(spine_ok(deep_tree, depth), "after gc_collect: %s", why);
    ck_assert_msg(tree_shape_ok(deep_tree, &shape), "after gc_collect: %s", why);
    ck_assert_msg(make_garbage(SCALED(96 * MiB, 4), &rng), "%s", why);
    ck_assert_msg(spine_ok(deep_tree, depth), "after more garbage: %s", why);
    ck_assert_msg(tree_shape_ok(deep_tree, &shape), "after more garbage: %s", why);
}
END_TEST

enum { SPARSE_STRIDE = 4096 };

static void **huge_array; /* a global root */

struct tagged {
    uint64_t tag;
    uint64_t check;
};

static bool huge_array_ok(void *const *a, size_t slots)
{
    for (size_t i = 0; i < slots; i++) {
        const struct tagged *t = a[i];
        if (i % SPARSE_STRIDE) {
            if (t)
                return broken("slot %zu holds %p, not NULL", i, (const void *)t);
            continue;
        }
        if (!object_ok(t, "pointee"))
            return false;
        if (t->tag != i || t->check != test_mix(i))
            return broken("object of slot %zu at %p overwritten", i, (const void *)t);
    }
    return true;
}

START_TEST(huge_pointer_array_survives)
{
    const size_t bytes = SCALED((size_t)1 << 30, 4), slots = bytes / sizeof(void *);
    uint64_t rng = 0x33;
    huge_array = gc_alloc(bytes);
    ck_assert_ptr_nonnull(huge_array);
    for (size_t i = 0; i < slots; i += SPARSE_STRIDE) {
        struct tagged *t = gc_alloc(sizeof *t);
        test_require(t != NULL, "allocation failed");
        *t = (struct tagged){i, test_mix(i)};
        GC_WRITE(huge_array[i], t);
    }
    gc_collect();
    ck_assert_msg(huge_array_ok(huge_array, slots), "after gc_collect: %s", why);
    ck_assert_msg(make_garbage(64 * MiB, &rng), "%s", why);
    gc_collect();
    ck_assert_msg(huge_array_ok(huge_array, slots), "after more garbage: %s", why);
}
END_TEST

/* ---- threads: many mutators, explicit and automatic cycles ---- */

enum { MUTATORS = 16, MINE = 32, SHARED_SLOTS = 64 };

static struct {
    pthread_mutex_t lock;
    struct cnode *slot[SHARED_SLOTS]; /* lock */
} shared = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int mutators_stop;

struct mutator {
    uint64_t rng;
    unsigned long iterations; /* owner; main reads after join */
};

static void publish(uint64_t *rng)
{
    size_t bytes = 0;
    struct cnode *t = tree_new(rng, 2, &bytes);
    unsigned i = (unsigned)(test_rand(rng) % SHARED_SLOTS);
    pthread_mutex_lock(&shared.lock);
    shared.slot[i] = t; /* drops the tree published there before */
    pthread_mutex_unlock(&shared.lock);
}

/* Verify a shared tree outside the lock: our stack holds it meanwhile. */
static void check_shared(uint64_t *rng)
{
    unsigned i = (unsigned)(test_rand(rng) % SHARED_SLOTS);
    pthread_mutex_lock(&shared.lock);
    struct cnode *t = shared.slot[i];
    pthread_mutex_unlock(&shared.lock);
    if (t)
        test_require(tree_ok(t), "shared tree %u: %s", i, why);
}

static void *mutator_main(void *arg)
{
    struct mutator *m = arg;
    struct cnode *mine[MINE];
    size_t bytes = 0;
    for (unsigned i = 0; i < MINE; i++)
        mine[i] = tree_new(&m->rng, 2, &bytes);
    while (!stop_requested(&mutators_stop)) {
        unsigned r = (unsigned)test_rand(&m->rng);
        mine[r % MINE] = tree_new(&m->rng, 2, &bytes); /* drops the old one */
        unsigned c = (r >> 8) % MINE;
        test_require(tree_ok(mine[c]), "own tree %u: %s", c, why);
        if (r % 8 == 0)
            publish(&m->rng);
        if (r % 4 == 1)
            check_shared(&m->rng);
        if (++m->iterations % 256 == 0)
            for (unsigned i = 0; i < MINE; i++)
                test_require(tree_ok(mine[i]), "own tree %u: %s", i, why);
    }
    return NULL;
}

START_TEST(sixteen_mutators_and_collections)
{
    static struct mutator m[MUTATORS];
    pthread_t tids[MUTATORS];
    for (unsigned i = 0; i < MUTATORS; i++)
        m[i] = (struct mutator){.rng = 0x4444u + 7919u * i};
    unsigned long cycles_before = collect_cycles(), requested = 0;
    start_threads(tids, MUTATORS, mutator_main, m, sizeof m[0]);
    for (double end = now() + (SLOW_BUILD ? 3.0 : 4.0); now() < end; requested++) {
        gc_collect();
        nap(10);
    }
    request_stop(&mutators_stop);
    join_threads(tids, MUTATORS);
    gc_collect();
    for (unsigned i = 0; i < SHARED_SLOTS; i++)
        ck_assert_msg(!shared.slot[i] || tree_ok(shared.slot[i]), "shared %u: %s", i, why);
    for (unsigned i = 0; i < MUTATORS; i++)
        ck_assert_uint_gt(m[i].iterations, 0);
    unsigned long cycles = collect_cycles() - cycles_before;
    ck_assert_msg(cycles > requested + 1, "%lu cycles for %lu gc_collect calls: none automatic",
                  cycles, requested + 1);
}
END_TEST

/* The moment of allocation: objects a thread has just been handed while
 * another thread stops the world. Each racer keeps its newest structure in
 * locals only and checks it after allocating more. */

enum { RACERS = 4, RACE_LIST = 100000, RACE_LARGE = 40000, RACE_RING = 16 };

static int racers_stop;

/* Lists of 16-byte nodes, built in a tight allocation loop. */
static void *list_racer_main(void *arg)
{
    uint64_t id = (uintptr_t)arg;
    while (!stop_requested(&racers_stop)) {
        struct lnode *head = NULL;
        for (uint64_t i = 0; i < RACE_LIST; i++) {
            struct lnode *l = gc_alloc(sizeof *l);
            test_require(l != NULL, "allocation failed");
            l->value = i * RACERS + id;
            GC_WRITE(l->next, head);
            head = l;
        }
        uint64_t i = RACE_LIST;
        for (const struct lnode *l = head; l && i; l = l->next) {
            i--;
            test_require(l->value == i * RACERS + id, "racer %u: node %llu at %p holds %#llx",
                         (unsigned)id, (unsigned long long)i, (const void *)l,
                         (unsigned long long)l->value);
        }
        test_require(i == 0, "racer %u: list lost %llu nodes", (unsigned)id, (unsigned long long)i);
    }
    return NULL;
}

/* Large objects, each kept in a local ring for RACE_RING allocations and
 * checked before it is dropped: still allocated, and still holding what
 * was written (its address, its sequence number in the first, second and
 * last words). */
static void *large_racer_main(void *arg)
{
    uint64_t id = (uintptr_t)arg, seq = 0;
    uint64_t *ring[RACE_RING] = {0};
    uint64_t seqs[RACE_RING] = {0};
    const size_t last = RACE_LARGE / 8 - 1;
    for (unsigned i = 0; !stop_requested(&racers_stop); i = (i + 1) % RACE_RING) {
        const uint64_t *old = ring[i];
        if (old) {
            test_require(object_ok(old, "large object"), "racer %u: %s", (unsigned)id, why);
            test_require(old[0] == pattern(old, id, 0) && old[1] == seqs[i] &&
                             old[last] == pattern(old, id, seqs[i]),
                         "racer %u: large object %p overwritten", (unsigned)id, (const void *)old);
        }
        uint64_t *p = gc_alloc(RACE_LARGE);
        test_require(p != NULL, "allocation failed");
        p[0] = pattern(p, id, 0);
        p[1] = seqs[i] = ++seq;
        p[last] = pattern(p, id, seq);
        ring[i] = p;
    }
    return NULL;
}

/* Run RACERS threads of `racer` while the main thread collects, resting
 * `nap_ms` between collections (so that allocation triggers cycles too). */
static void race(void *(*racer)(void *), double seconds, unsigned nap_ms)
{
    pthread_t tids[RACERS];
    unsigned long cycles_before = collect_cycles();
    __atomic_store_n(&racers_stop, 0, __ATOMIC_RELEASE);
    for (uintptr_t i = 0; i < RACERS; i++)
        ck_assert_int_eq(gc_pthread_create(&tids[i], NULL, racer, (void *)i), 0);
    for (double end = now() + seconds; now() < end;) {
        gc_collect();
        if (nap_ms)
            nap(nap_ms);
    }
    request_stop(&racers_stop);
    join_threads(tids, RACERS);
    ck_assert_uint_gt(collect_cycles() - cycles_before, 10);
}

START_TEST(fresh_small_objects_survive_cycles)
{
    race(list_racer_main, 4.0, 0);
}
END_TEST

START_TEST(fresh_large_objects_survive_cycles)
{
    race(large_racer_main, 3.0, 2);
}
END_TEST

/* ---- fork: with threads running ---- */

enum { FORK_WORKERS = 4, FORKS = 4, INHERITED_TREES = 256 };

static struct cnode **inherited; /* a global root, built before the forks */
static int fork_workers_stop;
static unsigned fork_workers_started;

static void *fork_worker_main(void *arg)
{
    uint64_t rng = (uintptr_t)arg;
    __atomic_add_fetch(&fork_workers_started, 1, __ATOMIC_RELEASE);
    struct cnode *mine[8] = {0};
    size_t bytes = 0;
    for (unsigned i = 0; !stop_requested(&fork_workers_stop); i++) {
        mine[i % 8] = tree_new(&rng, 2, &bytes);
        struct cnode *old = mine[(i + 3) % 8];
        test_require(!old || tree_ok(old), "worker: %s", why);
        test_require(make_garbage(64 << 10, &rng), "%s", why);
    }
    return NULL;
}

/* In the child: a helper thread allocating beside the main thread. */
static void *child_helper_main(void *arg)
{
    uint64_t rng = (uintptr_t)arg;
    return make_garbage(32 * MiB, &rng) ? arg : NULL;
}

/* The forked child: no Check calls here, only an exit status. */
static int child_scenario(uint64_t seed)
{
    unsigned long cycles = collect_cycles();
    if (!forest_ok(inherited, INHERITED_TREES))
        return fprintf(stderr, "child, at start: %s\n", why), 1;
    pthread_t helper;
    if (gc_pthread_create(&helper, NULL, child_helper_main, (void *)(uintptr_t)seed) != 0)
        return 2;
    uint64_t rng = seed;
    bool ok = make_garbage(SCALED(128 * MiB, 2), &rng);
    void *helper_result = NULL;
    pthread_join(helper, &helper_result);
    if (!ok || !helper_result)
        return fprintf(stderr, "child: %s\n", ok ? "helper failed" : why), 3;
    if (collect_cycles() == cycles)
        return fprintf(stderr, "child: allocation triggered no cycle\n"), 4;
    gc_collect();
    if (!forest_ok(inherited, INHERITED_TREES))
        return fprintf(stderr, "child, after collecting: %s\n", why), 5;
    return 0;
}

START_TEST(fork_while_threads_allocate)
{
    uint64_t rng = 0x5555;
    size_t bytes = 0;
    inherited = forest_new(&rng, INHERITED_TREES, 2, &bytes);
    pthread_t tids[FORK_WORKERS];
    for (unsigned i = 0; i < FORK_WORKERS; i++)
        ck_assert_int_eq(
            gc_pthread_create(&tids[i], NULL, fork_worker_main, (void *)(uintptr_t)(0x777u + i)),
            0);
    /* Every thread past its start-up and the sweeper running before the
     * first fork: no thread of ours is inside malloc when fork copies it
     * (a sanitizer's allocator lock held then stays held in the child). */
    while (__atomic_load_n(&fork_workers_started, __ATOMIC_ACQUIRE) < FORK_WORKERS)
        nap(1);
    gc_collect();
    for (unsigned f = 0; f < FORKS; f++) {
        nap(50);
        pid_t pid = fork();
        if (pid == 0) /* Check's lock may be held by a worker that is gone */
            _exit(child_scenario(0x9999u + f));
        ck_assert_int_ge(pid, 0);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fork %u: child status %#x", f,
                      status);
        ck_assert_msg(make_garbage(16 * MiB, &rng), "%s", why);
        gc_collect();
        ck_assert_msg(forest_ok(inherited, INHERITED_TREES), "parent after fork %u: %s", f, why);
    }
    request_stop(&fork_workers_stop);
    join_threads(tids, FORK_WORKERS);
    gc_collect();
    ck_assert_msg(forest_ok(inherited, INHERITED_TREES), "parent at the end: %s", why);
}
END_TEST

/* ---- realloc: growing pointer buffers under collection ---- */

enum { CHAINS = 8, CHAIN_THREADS = 2, CHAIN_MAX = 64 << 10 };

struct chain {
    void **buf; /* CHAIN_MAX entries at most */
    size_t n;
    uint64_t tag;
};

static struct chain chains[CHAINS]; /* global roots; chain i belongs to thread i % CHAIN_THREADS */
static int chains_stop;

static void *elem_new(uint64_t tag, size_t j)
{
    enum kind k = j % 3 == 0 ? NOSCAN : SCAN;
    uint64_t *e = alloc_kind(k, 16 + (j % 4) * 16);
    test_require(e != NULL, "allocation failed");
    e[0] = test_mix(tag + j);
    e[1] = (uintptr_t)e;
    return e;
}

static bool chain_ok(const struct chain *c, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        const uint64_t *e = c->buf[j];
        if (!e)
            return broken("chain %#llx: entry %zu of %zu is NULL", (unsigned long long)c->tag, j,
                          n);
        if (!object_ok(e, "element"))
            return false;
        if (e[0] != test_mix(c->tag + j) || e[1] != (uintptr_t)e)
            return broken("chain %#llx: element %zu at %p overwritten", (unsigned long long)c->tag,
                          j, (const void *)e);
    }
    return true;
}

/* Grow the chain by up to half (or restart it small once it is full),
 * verify what was kept, and fill the new entries. */
static void chain_step(struct chain *c, uint64_t *rng)
{
    uint64_t r = test_rand(rng);
    size_t n = c->n >= CHAIN_MAX ? 1 + r % 8 : c->n + 1 + r % (c->n / 2 + 8);
    if (n > CHAIN_MAX)
        n = CHAIN_MAX;
    void **p = gc_realloc(c->buf, n * sizeof *p);
    test_require(p != NULL, "gc_realloc to %zu entries failed", n);
    c->buf = p;
    size_t kept = n < c->n ? n : c->n;
    test_require(chain_ok(c, kept), "after gc_realloc to %zu entries: %s", n, why);
    for (size_t j = kept; j < n; j++) {
        test_require(!p[j], "grown entry %zu of %zu not zero", j, n);
        GC_WRITE(p[j], elem_new(c->tag, j));
    }
    c->n = n;
}

static void *chain_main(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    uint64_t rng = 0x6666u + id;
    while (!stop_requested(&chains_stop))
        for (unsigned i = id; i < CHAINS; i += CHAIN_THREADS)
            chain_step(&chains[i], &rng);
    return NULL;
}

START_TEST(realloc_chains_under_collection)
{
    for (unsigned i = 0; i < CHAINS; i++)
        chains[i] = (struct chain){.tag = test_mix(i + 1)};
    unsigned long cycles_before = collect_cycles();
    pthread_t tids[CHAIN_THREADS];
    for (unsigned i = 0; i < CHAIN_THREADS; i++)
        ck_assert_int_eq(gc_pthread_create(&tids[i], NULL, chain_main, (void *)(uintptr_t)i), 0);
    for (double end = now() + 2.5; now() < end;) {
        gc_collect();
        nap(20);
    }
    request_stop(&chains_stop);
    join_threads(tids, CHAIN_THREADS);
    gc_collect();
    for (unsigned i = 0; i < CHAINS; i++) {
        ck_assert_uint_gt(chains[i].n, 0);
        ck_assert_msg(chain_ok(&chains[i], chains[i].n), "at the end: %s", why);
    }
    ck_assert_uint_gt(collect_cycles() - cycles_before, 10);
}
END_TEST

/* ---- percent: automatic cycles on and off ---- */

/* Cycles run on the collector thread: wait (up to 10 s) until more than
 * `n` have completed. */
static unsigned long cycles_beyond(unsigned long n)
{
    for (int i = 0; i < 10000 && collect_cycles() <= n; i++)
        usleep(1000);
    return collect_cycles();
}

START_TEST(set_percent_switches_automatic_cycles)
{
    uint64_t rng = 0x7777;
    int initial = gc_set_percent(50);
    if (!getenv("GCPERCENT"))
        ck_assert_int_eq(initial, 100);
    ck_assert_int_eq(gc_set_percent(-1), 50);
    unsigned long c0 = collect_cycles();
    ck_assert_msg(make_garbage(200 * MiB, &rng), "%s", why);
    ck_assert_uint_eq(collect_cycles(), c0);
    gc_collect();
    ck_assert_uint_eq(collect_cycles(), c0 + 1);
    /* Back on with the heap past its trigger: a cycle at once. */
    ck_assert_msg(make_garbage(64 * MiB, &rng), "%s", why);
    ck_assert_uint_eq(collect_cycles(), c0 + 1);
    ck_assert_int_eq(gc_set_percent(100), -1);
    ck_assert_uint_gt(cycles_beyond(c0 + 1), c0 + 1);
    unsigned long c1 = collect_cycles();
    ck_assert_msg(make_garbage(200 * MiB, &rng), "%s", why);
    ck_assert_uint_gt(cycles_beyond(c1), c1);
    ck_assert_int_eq(gc_set_percent(initial), 100);
}
END_TEST

/* ---- the memory limit ---- */

START_TEST(memory_limit_setting)
{
    const int64_t gib = (int64_t)1 << 30;
    int64_t initial = gc_set_memory_limit(-1);
    if (!getenv("GCMEMLIMIT"))
        ck_assert(initial == INT64_MAX);
    ck_assert(gc_set_memory_limit(gib) == initial);
    ck_assert(gc_set_memory_limit(-7) == gib); /* a negative value only queries */
    ck_assert(gc_set_memory_limit(-1) == gib);
    ck_assert(gc_set_memory_limit(initial) == gib);
}
END_TEST

/* The memory a limit counts, as the collector computes it. */
static size_t memory_held(void)
{
    struct heap_stats st;
    heap_read_stats(&st);
    return os_mapped_bytes() - (st.committed - st.touched) - st.released;
}

/* GCPERCENT off and a limit: cycles run, and the memory stays near it while
 * the program allocates 16 times its live heap. Near: an allocation waits
 * at most ASSIST_WAIT_US for the workers (or for a cycle to begin
 * marking) before it goes on anyway, and pages freed by a sweep count
 * until the scavenger returns them; 1/16 over the limit is what this
 * allows (measured: at most 62-63 MiB; under ASan with two busy loops
 * competing for the CPUs, 61-65.5 MiB, where it was 68-74 MiB before an
 * allocation swept ahead of taking pages). */
START_TEST(memory_limit_holds_with_gcpercent_off)
{
    const size_t limit = 64 * MiB;
    uint64_t rng = 0x4d454d;
    size_t live = 0, trees = 0;
    live_forest = gc_alloc(LIVE_TREES * sizeof *live_forest);
    ck_assert_ptr_nonnull(live_forest);
    for (; live < 16 * MiB && trees < LIVE_TREES; trees++)
        GC_WRITE(live_forest[trees], tree_new(&rng, 2, &live));
    int percent = gc_set_percent(-1);
    int64_t old = gc_set_memory_limit((int64_t)limit);
    unsigned long before = collect_cycles();
    size_t most = 0;
    for (int i = 0; i < 64; i++) {
        ck_assert_msg(make_garbage(4 * MiB, &rng), "%s", why);
        size_t held = memory_held();
        most = held > most ? held : most;
    }
    ck_assert_msg(forest_ok(live_forest, trees), "%s", why);
    unsigned long cycles = collect_cycles() - before;
    gc_set_memory_limit(old);
    gc_set_percent(percent);
    ck_assert_msg(cycles > 0, "no cycle under the limit with GCPERCENT off");
    if (getenv("LIMIT_TRACE"))
        fprintf(stderr, "held at most %.2f MiB\n", (double)most / MiB);
    ck_assert_msg(most <= limit + limit / 16,
                  "%.2f MiB held under a %zu MiB limit (%zu MiB live, %lu cycles)",
                  (double)most / MiB, limit / MiB, live / MiB, cycles);
}
END_TEST

/* A limit far below the live heap: cycles run back to back, and the CPU
 * limiter turns assists off whenever the GC's share passes half, so
 * allocating threads keep going (a freeze shows as the test's timeout)
 * and the live data stays intact. */
static void *limited_allocator(void *arg)
{
    uint64_t rng = (uintptr_t)arg;
    for (int i = 0; i < 16; i++)
        if (!make_garbage(4 * MiB, &rng))
            return (void *)why;
    return NULL;
}

START_TEST(limit_below_live_does_not_freeze)
{
    uint64_t rng = 0x11e;
    size_t live = 0, trees = 0;
    live_forest = gc_alloc(LIVE_TREES * sizeof *live_forest);
    ck_assert_ptr_nonnull(live_forest);
    for (; live < 16 * MiB && trees < LIVE_TREES; trees++)
        GC_WRITE(live_forest[trees], tree_new(&rng, 2, &live));
    int percent = gc_set_percent(-1);
    int64_t old = gc_set_memory_limit(4 * (int64_t)MiB);
    unsigned long before = collect_cycles();
    enum { N = 4 };
    pthread_t t[N];
    for (uintptr_t i = 0; i < N; i++)
        ck_assert_int_eq(gc_pthread_create(&t[i], NULL, limited_allocator, (void *)(i + 1)), 0);
    const char *failed = NULL;
    for (int i = 0; i < N; i++) {
        void *r;
        pthread_join(t[i], &r);
        failed = failed ? failed : r;
    }
    gc_set_memory_limit(old);
    gc_set_percent(percent);
    ck_assert_msg(!failed, "%s", failed);
    ck_assert_msg(forest_ok(live_forest, trees), "%s", why);
    ck_assert_uint_gt(collect_cycles() - before, 4);
    if (getenv("LIMIT_TRACE"))
        fprintf(stderr, "%lu cycles, limiter full %lu times\n", collect_cycles() - before,
                collect_limiter_periods());
}
END_TEST

/* ---- clobberfree ---- */

START_TEST(clobberfree_marks_what_the_collector_freed)
{
    char out[512];
    int status = spawn_self(SCENARIO_FLAG, "clobber", "clobberfree=1", out, sizeof out);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x: %s",
                  (unsigned)status, out);
}
END_TEST

/* ---- returning memory to the OS ---- */

enum { BIG_CHUNKS = 4096 };
static void *big[BIG_CHUNKS]; /* a global root */

/* `bytes` of live noscan chunks of 128 KiB (large objects) and 4 KiB
 * (small spans), every page written; returns how many were made. */
static size_t make_big_live(size_t bytes)
{
    size_t n = 0;
    for (size_t done = 0; done < bytes && n < BIG_CHUNKS; n++) {
        size_t size = n % 2 ? 128 << 10 : 4 << 10;
        big[n] = gc_alloc_noscan(size);
        ck_assert_ptr_nonnull(big[n]);
        memset(big[n], 0x3c, size);
        done += size;
    }
    return n;
}

static void drop_big(void)
{
    memset(big, 0, sizeof big);
}

static size_t rss(void)
{
    return status_kib("VmRSS") << 10;
}

/* gc_free_os_memory gives every free page back at once: the resident size
 * drops by about what the program dropped, and the heap counts it as
 * released. */
START_TEST(free_os_memory_drops_rss_at_once)
{
    make_big_live(96 * MiB);
    size_t before = rss();
    drop_big();
    gc_free_os_memory();
    size_t after = rss();
    struct heap_stats st;
    heap_read_stats(&st);
    ck_assert_msg(before > after + 64 * MiB, "RSS %zu MiB before, %zu MiB after",
                  before / MiB, after / MiB);
    ck_assert_uint_ge(st.released, 64 * MiB);
    ck_assert_uint_eq(st.touched - st.in_use - st.released, 0);
    ck_assert(heap_is_valid());
}
END_TEST

/* After the live heap shrinks, the scavenger returns what is over the new
 * goal in the background, while the program keeps allocating a little. */
START_TEST(scavenger_returns_memory_after_live_drops)
{
    uint64_t rng = 0x5ca7;
    make_big_live(128 * MiB);
    gc_collect();
    size_t before = rss();
    drop_big();
    double t0 = now();
    size_t now_rss = before;
    while (now() - t0 < 20 && (now_rss = rss()) > before - 64 * MiB) {
        ck_assert_msg(make_garbage(2 * MiB, &rng), "%s", why);
        nap(10);
    }
    struct heap_stats st;
    heap_read_stats(&st);
    ck_assert_msg(now_rss <= before - 64 * MiB,
                  "RSS %zu MiB, %zu MiB before the drop; %zu MiB released, %.1f s", now_rss / MiB,
                  before / MiB, st.released / MiB, now() - t0);
    ck_assert_uint_ge(st.released, 64 * MiB);
}
END_TEST

/* A program that stops allocating still gets a cycle every period (2
 * minutes; 100 ms here), and none sooner. */
START_TEST(a_cycle_at_least_every_period)
{
    gc_collect(); /* the collector thread is running */
    unsigned long forced = collect_cycles_forced_by_time(), cycles = collect_cycles();
    collect_set_force_period(100);
    double t0 = now();
    while (now() - t0 < 1.0)
        nap(100); /* each cycle's stop cuts a nap short */
    collect_set_force_period(120 * 1000);
    double elapsed = now() - t0;
    forced = collect_cycles_forced_by_time() - forced;
    for (double t = now(); collect_cycles() - cycles < forced && now() - t < 10;)
        nap(10); /* the last cycle asked for may still be running */
    cycles = collect_cycles() - cycles;
    ck_assert_msg(forced >= 3 && forced <= (unsigned long)(elapsed * 10) + 1,
                  "%lu cycles forced by a 100 ms period in %.2f s", forced, elapsed);
    ck_assert_uint_ge(cycles, forced);
}
END_TEST

/* GCPERCENT in a fresh process: this binary, re-executed. */

struct env_case {
    const char *value; /* NULL: unset */
    int percent;       /* what gc_set_percent reports as the setting */
    bool cycles;       /* 64 MiB of garbage triggers cycles */
    bool warns;        /* one warning line naming GCPERCENT */
};

static const struct env_case env_cases[] = {
    {NULL, 100, true, false},   {"off", -1, false, false},  {"50", 50, true, false},
    {"bogus", 100, true, true}, {"12abc", 100, true, true}, {"", 100, true, false},
};

/* The scenario: report the setting and the cycles 64 MiB of garbage runs. */
static int scenario_percent(void)
{
    int percent = gc_set_percent(100);
    gc_set_percent(percent);
    unsigned long before = collect_cycles();
    uint64_t rng = 0x8888;
    /* Cycles run on the collector thread: a pause after every MiB lets it
     * keep up, so that the count reflects the trigger, not how fast the
     * collector runs on a loaded machine. */
    for (int i = 0; i < 64; i++) {
        if (!make_garbage(MiB, &rng))
            return fprintf(stderr, "%s\n", why), 1;
        usleep(2000);
    }
    printf("percent=%d cycles=%lu\n", percent, collect_cycles() - before);
    return 0;
}

/* GCDEBUG=clobberfree=1: objects the collector freed hold the pattern
 * (small ones in a span that keeps live objects, and a large one), and
 * objects handed out again are zeroed. Addresses are kept hidden from the
 * collector (inverted). Prints what it found; 0 when all held. */
enum { CLOBBER_N = 64 };

static NOINLINE void clobber_make(uintptr_t *hidden, void **kept)
{
    for (int i = 0; i < CLOBBER_N; i++) {
        uint64_t *p = gc_alloc(48);
        memset(p, 0x11, 48);
        if (i % 2)
            kept[i / 2] = p; /* keeps the span in use */
        else
            hidden[i / 2] = ~(uintptr_t)p;
    }
    uint64_t *big = gc_alloc(256 << 10);
    memset(big, 0x11, 256 << 10);
    hidden[CLOBBER_N / 2] = ~(uintptr_t)big;
}

static int scenario_clobber(void)
{
    static uintptr_t hidden[CLOBBER_N / 2 + 1];
    static void *kept[CLOBBER_N / 2];
    clobber_make(hidden, kept);
    gc_collect();
    unsigned clobbered = 0;
    for (int i = 0; i <= CLOBBER_N / 2; i++)
        clobbered += *(const uint32_t *)~hidden[i] == 0xdeadbeefu;
    unsigned dirty = 0;
    for (int i = 0; i < 4 * CLOBBER_N; i++) {
        const uint64_t *p = gc_alloc(48);
        for (int w = 0; w < 6; w++)
            dirty += p[w] != 0;
    }
    const uint64_t *big = gc_alloc(256 << 10);
    for (size_t w = 0; w < (256 << 10) / 8; w++)
        dirty += big[w] != 0;
    printf("clobbered %u of %d, %u dirty words\n", clobbered, CLOBBER_N / 2 + 1, dirty);
    return clobbered == CLOBBER_N / 2 + 1 && dirty == 0 ? 0 : 1;
}

static int run_scenario(const char *name)
{
    if (strcmp(name, "percent") == 0)
        return scenario_percent();
    if (strcmp(name, "clobber") == 0)
        return scenario_clobber();
    fprintf(stderr, "unknown scenario %s\n", name);
    return 2;
}

static size_t read_all(int fd, char *out, size_t cap)
{
    size_t len = 0;
    ssize_t n;
    while (len < cap - 1 && (n = read(fd, out + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = 0;
    close(fd);
    return len;
}

/* Run the scenario with GCPERCENT as the case says; its stdout and stderr
 * into out and err. */
static void spawn_scenario(const struct env_case *c, char *out, char *err, size_t cap)
{
    int o[2], e[2];
    ck_assert_int_eq(pipe(o), 0);
    ck_assert_int_eq(pipe(e), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(o[1], STDOUT_FILENO);
        dup2(e[1], STDERR_FILENO);
        if (c->value)
            setenv("GCPERCENT", c->value, 1);
        else
            unsetenv("GCPERCENT");
        execl("/proc/self/exe", "test_collect", SCENARIO_FLAG, "percent", (char *)NULL);
        _exit(127);
    }
    ck_assert_int_ge(pid, 0);
    close(o[1]);
    close(e[1]);
    read_all(o[0], out, cap);
    read_all(e[0], err, cap);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "GCPERCENT=%s: scenario status %#x, stderr: %s", c->value, status, err);
}

START_TEST(gcpercent_from_environment)
{
    const struct env_case *c = &env_cases[_i];
    char out[1024], err[1024];
    spawn_scenario(c, out, err, sizeof out);
    int percent;
    unsigned long cycles;
    ck_assert_msg(sscanf(out, "percent=%d cycles=%lu", &percent, &cycles) == 2,
                  "GCPERCENT=%s: scenario printed \"%s\"", c->value, out);
    ck_assert_int_eq(percent, c->percent);
    ck_assert_msg((cycles > 0) == c->cycles, "GCPERCENT=%s: %lu cycles", c->value, cycles);
    if (!c->warns) {
        ck_assert_msg(err[0] == 0, "GCPERCENT=%s: unexpected stderr: %s", c->value, err);
        return;
    }
    ck_assert_msg(strstr(err, "GCPERCENT") && strstr(err, c->value),
                  "GCPERCENT=%s: warning does not name it: %s", c->value, err);
    ck_assert_msg(strchr(err, '\n') == err + strlen(err) - 1, "not exactly one line: %s", err);
}
END_TEST

/* A lower GCPERCENT collects more often for the same allocation. */
START_TEST(gcpercent_lower_collects_more)
{
    static const struct env_case half = {"50", 50, true, false}, twice = {"200", 200, true, false};
    char out[2][1024], err[1024];
    spawn_scenario(&half, out[0], err, sizeof err);
    spawn_scenario(&twice, out[1], err, sizeof err);
    unsigned long c50 = 0, c200 = 0;
    int p;
    ck_assert_int_eq(sscanf(out[0], "percent=%d cycles=%lu", &p, &c50), 2);
    ck_assert_int_eq(sscanf(out[1], "percent=%d cycles=%lu", &p, &c200), 2);
    ck_assert_msg(c50 > c200, "GCPERCENT=50 ran %lu cycles, GCPERCENT=200 %lu", c50, c200);
}
END_TEST

/* ---- the suite ---- */

static Suite *make_suite(void)
{
    Suite *s = suite_create("collect");
    TCase *tc = test_tcase(s, "reclaim", TIMEOUT);
    tcase_add_test(tc, allocating_20x_live_stays_near_live);
    tcase_add_loop_test(tc, collect_reclaims_dropped_objects, 0, (int)NELEMS(reclaim_cases));

    tc = test_tcase(s, "deep", TIMEOUT);
    tcase_add_test(tc, long_list_survives);
    tcase_add_test(tc, deep_tree_survives);
    tcase_add_test(tc, huge_pointer_array_survives);

    tc = test_tcase(s, "threads", TIMEOUT);
    tcase_add_test(tc, fresh_small_objects_survive_cycles);
    tcase_add_test(tc, fresh_large_objects_survive_cycles);
    tcase_add_test(tc, sixteen_mutators_and_collections);

    tc = test_tcase(s, "fork", TIMEOUT);
    tcase_add_test(tc, fork_while_threads_allocate);

    tc = test_tcase(s, "realloc", TIMEOUT);
    tcase_add_test(tc, realloc_chains_under_collection);

    tc = test_tcase(s, "percent", TIMEOUT);
    tcase_add_test(tc, set_percent_switches_automatic_cycles);
    tcase_add_loop_test(tc, gcpercent_from_environment, 0, (int)NELEMS(env_cases));
    tcase_add_test(tc, gcpercent_lower_collects_more);

    tc = test_tcase(s, "limit", TIMEOUT);
    tcase_add_test(tc, memory_limit_setting);
    tcase_add_test(tc, memory_limit_holds_with_gcpercent_off);
    tcase_add_test(tc, a_cycle_at_least_every_period);
    tcase_add_test(tc, limit_below_live_does_not_freeze);

    tc = test_tcase(s, "clobber", TIMEOUT);
    tcase_add_test(tc, clobberfree_marks_what_the_collector_freed);

    tc = test_tcase(s, "scavenge", TIMEOUT);
    tcase_add_test(tc, free_os_memory_drops_rss_at_once);
    tcase_add_test(tc, scavenger_returns_memory_after_live_drops);
    return s;
}

/* With SCENARIO_FLAG, run one scenario in this fresh process instead of
 * the suite. */
int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], SCENARIO_FLAG) == 0)
        return run_scenario(argv[2]);
    return test_run(make_suite());
}

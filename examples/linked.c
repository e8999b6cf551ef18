/*
 * linked.c — a persistent search tree that leaves every free to the collector.
 *
 * The tree is a treap: a binary search tree on keys that is also a heap on
 * priorities, where a key's priority is a hash of the key, so the shape is
 * that of a random tree (depth about 2 ln n) whatever the order of updates.
 * It is persistent: nodes are never changed after they are built. An update
 * copies the path from the root to the change and shares every other
 * subtree with the old version, so each update allocates about 20 nodes,
 * and the old version stays whole for as long as someone holds its root.
 *
 * The program never calls gc_free. It goes through phases:
 *
 *   1. Build (phase 0). Insert KEYS_BUILT keys, one version after the other.
 *   2. Churn (phases 1 to PHASES). Keep the version the phase starts from as a
 *      snapshot, then apply OPS random inserts, updates and deletes to the
 *      current version. Every version but the newest becomes garbage at
 *      once; so does the snapshot when the phase ends, except the subtrees
 *      it still shares with the current version.
 *   3. Check, after every phase. Run gc_collect(), then walk the current
 *      version and the snapshot: every node is still an allocated object,
 *      its checksum matches its fields, keys are in search order,
 *      priorities in heap order, and the keys and values are exactly those
 *      of a model kept in malloc'd memory (which holds no heap pointers).
 *
 * A node's checksum covers its child pointers too: nodes never change, so a
 * reclaimed and reused node, or a corrupted link, breaks it.
 *
 * The run allocates about 370 MiB, some 45 times its largest live set. At
 * the end it prints what was allocated against what was live, and the peak
 * resident size, which must stay under PEAK_LIVE_FACTOR times the largest
 * live set plus PEAK_SLACK_MIB (about 130 MiB): the heap must have been
 * reused. It exits 1 on the first failed check.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "tricolor.h"

enum {
    KEYS_BUILT = 100000,  /* keys inserted by the build phase */
    KEY_SPACE = 150000,   /* keys are drawn from [0, KEY_SPACE) */
    PHASES = 8,           /* churn phases after the build */
    OPS = 40000,          /* random operations per churn phase */
    PEAK_LIVE_FACTOR = 8, /* peak RSS bound: factor x largest live set */
    PEAK_SLACK_MIB = 64,  /* ... plus this much */
    VERSIONS_KEPT = 2,    /* current version and the phase's snapshot */
};

/* Immutable once made: every field is written by make_node only. */
struct node {
    const struct node *left;  /* keys below key */
    const struct node *right; /* keys above key */
    uint64_t key;
    uint64_t value; /* value_of(key, stamp) for the key's model stamp */
    uint64_t check; /* checksum_of(this node's other fields) */
};

/* What a version should contain, outside the collected heap. */
struct model {
    uint32_t *stamp; /* stamp[key]: 0 when absent, else the update that wrote it */
    size_t present;  /* keys with a nonzero stamp */
};

struct version {
    const struct node *root;
    struct model model;
};

/* Distinct nodes reachable from the versions kept, and their usable bytes. */
struct live_set {
    size_t bytes, nodes;
};

/* Main thread only (the program has no other). */
static uint64_t rng_state = 0x7269636F6C6F7274u;
static uint32_t last_stamp;
static size_t nodes_made;

static __attribute__((noreturn, format(printf, 1, 2))) void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "linked: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void *checked(void *p)
{
    if (!p)
        fail("out of memory");
    return p;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9u;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBu;
    return x ^ (x >> 31);
}

static uint64_t next_random(void)
{
    rng_state += 0x9E3779B97F4A7C15u;
    return mix(rng_state);
}

static uint64_t priority_of(uint64_t key)
{
    return mix(key ^ 0x5EEDu);
}

static uint64_t value_of(uint64_t key, uint32_t stamp)
{
    return mix(key * 0x100000001B3u + stamp);
}

static uint64_t checksum_of(const struct node *n)
{
    uint64_t h = mix(n->key) ^ n->value;
    h = mix(h ^ (uintptr_t)n->left);
    return mix(h ^ (uintptr_t)n->right);
}

/* ---- the persistent treap: every function returns a new version ---- */

static const struct node *make_node(uint64_t key, uint64_t value, const struct node *left,
                                    const struct node *right)
{
    struct node *n = checked(gc_alloc(sizeof *n));
    GC_WRITE(n->left, left);
    GC_WRITE(n->right, right);
    n->key = key;
    n->value = value;
    n->check = checksum_of(n);
    nodes_made++;
    return n;
}

/* Split `t` into the keys below `key` and those above it; `key` itself is
 * dropped. Copies the search path for `key`, shares the rest. */
static void split(const struct node *t, uint64_t key, const struct node **below,
                  const struct node **above)
{
    const struct node *a, *b;
    if (!t) {
        *below = *above = NULL;
    } else if (t->key == key) {
        *below = t->left;
        *above = t->right;
    } else if (t->key < key) {
        split(t->right, key, &a, &b);
        *below = make_node(t->key, t->value, t->left, a);
        *above = b;
    } else {
        split(t->left, key, &a, &b);
        *below = a;
        *above = make_node(t->key, t->value, b, t->right);
    }
}

/* Join two treaps, every key of `a` below every key of `b`. */
static const struct node *merge(const struct node *a, const struct node *b)
{
    if (!a)
        return b;
    if (!b)
        return a;
    if (priority_of(a->key) > priority_of(b->key))
        return make_node(a->key, a->value, a->left, merge(a->right, b));
    return make_node(b->key, b->value, merge(a, b->left), b->right);
}

/* `t` with `key` mapped to `value`, whether or not it was there. */
static const struct node *insert(const struct node *t, uint64_t key, uint64_t value)
{
    const struct node *below, *above;
    if (!t)
        return make_node(key, value, NULL, NULL);
    if (t->key == key)
        return make_node(key, value, t->left, t->right);
    if (priority_of(key) > priority_of(t->key)) {
        split(t, key, &below, &above);
        return make_node(key, value, below, above);
    }
    if (key < t->key)
        return make_node(t->key, t->value, insert(t->left, key, value), t->right);
    return make_node(t->key, t->value, t->left, insert(t->right, key, value));
}

/* `t` without `key`, which must be there. */
static const struct node *remove_key(const struct node *t, uint64_t key)
{
    if (t->key == key)
        return merge(t->left, t->right);
    if (key < t->key)
        return make_node(t->key, t->value, remove_key(t->left, key), t->right);
    return make_node(t->key, t->value, t->left, remove_key(t->right, key));
}

/* ---- updating a version and its model together ---- */

static void put(struct version *v, uint64_t key)
{
    uint32_t stamp = ++last_stamp;
    v->root = insert(v->root, key, value_of(key, stamp));
    v->model.present += v->model.stamp[key] == 0;
    v->model.stamp[key] = stamp;
}

static void erase(struct version *v, uint64_t key)
{
    v->root = remove_key(v->root, key);
    v->model.stamp[key] = 0;
    v->model.present--;
}

static void build(struct version *v)
{
    for (uint64_t key = 0; key < KEYS_BUILT; key++)
        put(v, key * KEY_SPACE / KEYS_BUILT);
}

/* Absent keys are inserted; present ones are updated or deleted, half and
 * half, so the tree settles at two thirds of KEY_SPACE. */
static void churn(struct version *v)
{
    for (int op = 0; op < OPS; op++) {
        uint64_t r = next_random(), key = r % KEY_SPACE;
        if (v->model.stamp[key] != 0 && (r >> 63))
            erase(v, key);
        else
            put(v, key);
    }
}

static struct model copy_model(const struct model *m)
{
    struct model copy = {checked(malloc(KEY_SPACE * sizeof *m->stamp)), m->present};
    memcpy(copy.stamp, m->stamp, KEY_SPACE * sizeof *m->stamp);
    return copy;
}

/* ---- verification ---- */

/* What a walk checks a version against, and what it gathers. */
struct walk {
    const struct model *model;
    const char *name; /* "current" or "snapshot", for messages */
    int phase;
    const struct node **seen; /* every node visited, for counting live bytes */
    size_t visited;
};

static void verify_node(struct walk *w, const struct node *n, uint64_t lo, uint64_t hi,
                        uint64_t parent_priority)
{
    unsigned long long key = n->key;
    if (gc_base(n) != n)
        fail("phase %d, %s version: node %p is not an allocated object", w->phase, w->name,
             (const void *)n);
    if (n->check != checksum_of(n))
        fail("phase %d, %s version: node %llu: bad checksum", w->phase, w->name, key);
    if (n->key < lo || n->key >= hi)
        fail("phase %d, %s version: node %llu out of search order", w->phase, w->name, key);
    if (priority_of(n->key) > parent_priority)
        fail("phase %d, %s version: node %llu out of heap order", w->phase, w->name, key);
    if (n->key >= KEY_SPACE || w->model->stamp[n->key] == 0)
        fail("phase %d, %s version: key %llu should not be there", w->phase, w->name, key);
    if (n->value != value_of(n->key, w->model->stamp[n->key]))
        fail("phase %d, %s version: key %llu has a stale value", w->phase, w->name, key);
}

/* Keys of the subtree at `n` lie in [lo, hi), priorities at most `priority`. */
static void verify_subtree(struct walk *w, const struct node *n, uint64_t lo, uint64_t hi,
                           uint64_t priority)
{
    for (; n; lo = n->key + 1, priority = priority_of(n->key), n = n->right) {
        verify_node(w, n, lo, hi, priority);
        w->seen[w->visited++] = n;
        verify_subtree(w, n->left, lo, n->key, priority_of(n->key));
    }
}

/* Every key of the model is in the tree exactly once with its value: the
 * walk finds only model keys, each at most once (search order is strict),
 * and as many as the model holds. */
static void verify_version(struct walk *w, const struct version *v)
{
    size_t before = w->visited;
    w->model = &v->model;
    verify_subtree(w, v->root, 0, UINT64_MAX, UINT64_MAX);
    if (w->visited - before != v->model.present)
        fail("phase %d, %s version: %zu nodes, %zu keys expected", w->phase, w->name,
             w->visited - before, v->model.present);
}

static int by_address(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (const struct node *const *)a;
    uintptr_t y = (uintptr_t) * (const struct node *const *)b;
    return (x > y) - (x < y);
}

/* The distinct nodes the walk saw (versions share subtrees). */
static struct live_set distinct_nodes(struct walk *w)
{
    struct live_set live = {0, 0};
    qsort(w->seen, w->visited, sizeof *w->seen, by_address);
    for (size_t i = 0; i < w->visited; i++) {
        if (i > 0 && w->seen[i] == w->seen[i - 1])
            continue;
        live.bytes += gc_size(w->seen[i]);
        live.nodes++;
    }
    return live;
}

/* Collect, then verify both versions; returns what they hold together. */
static struct live_set collect_and_verify(int phase, const struct version *current,
                                          const struct version *snapshot)
{
    size_t capacity = current->model.present + snapshot->model.present;
    struct walk w = {.phase = phase, .seen = checked(malloc((capacity + 1) * sizeof *w.seen))};
    gc_collect();
    w.name = "current";
    verify_version(&w, current);
    w.name = "snapshot";
    verify_version(&w, snapshot);
    struct live_set live = distinct_nodes(&w);
    free(w.seen);
    return live;
}

/* ---- reporting ---- */

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024; /* ru_maxrss is in KiB */
}

static double mib(size_t bytes)
{
    return (double)bytes / (1 << 20);
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) * 1e-6;
}

static void report(const struct live_set *live, size_t node_bytes, double ms)
{
    size_t made_bytes = nodes_made * node_bytes;
    double rss = peak_rss_mib(), bound = PEAK_LIVE_FACTOR * mib(live->bytes) + PEAK_SLACK_MIB;
    printf("tricolor linked: a persistent treap, path-copied on every update, never freed\n"
           "  phases    1 build of %d keys + %d of %d random inserts, updates and deletes\n"
           "  verified  %d versions after gc_collect: allocated, checksums, search and heap\n"
           "            order, exactly the model's keys and values\n",
           KEYS_BUILT, PHASES, OPS, (PHASES + 1) * VERSIONS_KEPT);
    printf("  allocated %zu nodes (%.1f MiB), %.0fx the largest live set\n"
           "  live      at most %zu nodes (%.1f MiB): current version + phase snapshot\n",
           nodes_made, mib(made_bytes), (double)made_bytes / (double)live->bytes, live->nodes,
           mib(live->bytes));
    printf("  peak RSS  %.1f MiB, bound %d x live + %d MiB = %.1f MiB\n"
           "  time      %.0f ms\n",
           rss, PEAK_LIVE_FACTOR, PEAK_SLACK_MIB, bound, ms);
    if (rss > bound)
        fail("peak RSS %.1f MiB is over the bound %.1f MiB: garbage was not reclaimed", rss, bound);
}

/* Phase 0 builds, the others churn; each starts by taking a snapshot. */
int main(void)
{
    struct timespec t0;
    struct live_set live = {0, 0};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct version current = {NULL, {checked(calloc(KEY_SPACE, sizeof(uint32_t))), 0}};

    for (int phase = 0; phase <= PHASES; phase++) {
        struct version snapshot = {current.root, copy_model(&current.model)};
        if (phase == 0)
            build(&current);
        else
            churn(&current);
        struct live_set now = collect_and_verify(phase, &current, &snapshot);
        if (now.bytes > live.bytes)
            live = now;
        free(snapshot.model.stamp);
    }
    report(&live, gc_size(current.root), ms_since(&t0));
    free(current.model.stamp);
    return 0;
}

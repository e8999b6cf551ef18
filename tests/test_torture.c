/*
 * test_torture.c — many mutators reshape one shared forest while the
 * collector runs cycle after cycle: the torture test for concurrent marking.
 *
 * The forest is TREES binary trees whose roots sit in a gc_alloc'd array
 * held by a global. Every node carries a unique value, a seal (a hash of its
 * own address and value) and what its subtree adds up to: node count, sum of
 * values, height, and the depth of its shallowest empty child slot. Outside
 * the heap, a ledger per tree records how many nodes and what sum the tree
 * must hold; it changes only when a subtree moves in or out of the tree,
 * under the tree's mutex. Nodes are never created or destroyed, only moved
 * and renewed (a fresh copy with the same value takes an old node's place),
 * so the total is conserved: a node lost or reachable twice shows.
 *
 * Each mutator, again and again: detaches a random subtree from a tree
 * (GC_WRITE of NULL over the only reference to it) and holds it in local
 * variables only; allocates a lot of garbage (small, medium, noscan, large)
 * so that cycles start and, once marking is concurrent, allocation assists;
 * renews nodes of the subtree and gives one a new noscan payload (now and
 * then a large one); swaps one of its grandchildren with a subtree of
 * another tree; and attaches it to the shallowest empty slot of a tree,
 * often another one, splitting it when it would make that tree too tall.
 * Every store of a pointer into a heap object goes through GC_WRITE. One
 * more thread calls gc_collect back to back.
 *
 * Why this catches a missing barrier: the snapshot barrier exists for an
 * object whose last heap reference is overwritten while marking runs and
 * that the program still holds. The detached subtree is exactly that: its
 * holder's stack may have been scanned before the detach, and it is stored
 * back later into a node the marker may already have finished. Unless the
 * overwritten pointer is shaded, no one marks the subtree and the sweep
 * frees it while a tree links it again. The grandchild swap moves a pointer
 * from one heap object to another through a register in a single step; the
 * renewals make objects allocated during marking the only parents of old
 * subtrees (they must be allocated black or scanned).
 *
 * Why a premature free shows: freed memory is reused by garbage, written
 * byte by byte with a pattern that is no address, and by new nodes. So a
 * node freed while reachable loses its seal or its sums, or gc_base stops
 * finding it (asked twice, to tell a freed object from a lookup that
 * failed); payload words are a pattern of their own address and the node's
 * value. Every move verifies the subtree moved (each node recomputed), the
 * path it changed and the tree's root against the ledger; now and then a
 * whole tree, and at the end every tree and the total. Failures name the
 * tree or subtree, the node, and expected against found.
 *
 * A conservative scan that finds a stale copy of a pointer keeps its object
 * alive, which would cover for a missing barrier. So each phase of a round
 * is a call of its own and the dead stack below is zeroed after it: while
 * a subtree is detached, one stack slot refers to it.
 *
 * Scenarios, one test each: plain, in Check's own child process; and with
 * GCDEBUG=gccheckmark=1 and GCDEBUG=gcstoptheworld=1, read when the
 * collector starts, so in a fresh process (this binary re-executed with
 * SCENARIO_FLAG, which must exit 0).
 *
 * Environment: TORTURE_SECONDS (default 3) per scenario, TORTURE_THREADS
 * (default 12 mutators), TORTURE_VERBOSE=1 prints what each run did,
 * TORTURE_SKIP=gccheckmark,... leaves scenarios out.
 */
#define _GNU_SOURCE /* clock_gettime, setenv in a child */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <time.h>

#include "../allocator/sizeclass.h"
#include "../gc/collector.h"
#include "testutil.h"
#include "tricolor.h"

#define DEFAULT_SECONDS 3.0
#define DEFAULT_THREADS 12
#define MAX_THREADS     256
#define LARGE_MIN       ((size_t)SC_MAX_SMALL + 1)
#define GARBAGE_BYTE    0xa5
#define POISON          0xdeadbeefdeadbeefu
#define SCENARIO_FLAG   "--torture-scenario"
#define NELEMS(a)       (sizeof(a) / sizeof((a)[0]))
#define NOINLINE        __attribute__((noinline))

enum {
    TREES = 16,
    TREE_NODES = 1023, /* per tree at the start: ten full levels */
    MAX_HEIGHT = 40,   /* no tree or held subtree grows taller */
    MAX_PIECES = 2 * MAX_HEIGHT + 2,
    SCRUB_BYTES = 16 << 10,
};

/* ---- failing ---- */

static bool child_mode; /* a re-executed scenario: no Check runner to report to */

/* Fail unless `ok`, from any thread: through Check, or in a re-executed
 * scenario with one line on stderr and exit status 1. */
__attribute__((format(printf, 2, 3))) static void require(bool ok, const char *fmt, ...)
{
    if (__builtin_expect(ok, 1))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (child_mode) {
        fprintf(stderr, "torture: %s\n", msg);
        _exit(1);
    }
    ck_abort_msg("%s", msg);
}

/* ---- small helpers ---- */

static int stop_flag;

static bool stop_requested(void)
{
    return __atomic_load_n(&stop_flag, __ATOMIC_ACQUIRE) != 0;
}

/* ---- settings ---- */

static double setting_seconds(void)
{
    const char *v = getenv("TORTURE_SECONDS");
    if (!v)
        return DEFAULT_SECONDS;
    char *end;
    double s = strtod(v, &end);
    if (!*v || *end || !(s > 0 && s < 1e6)) {
        fprintf(stderr, "TORTURE_SECONDS=%s: not a positive number of seconds\n", v);
        exit(EXIT_FAILURE);
    }
    return s;
}

static unsigned setting_threads(void)
{
    const char *v = getenv("TORTURE_THREADS");
    if (!v)
        return DEFAULT_THREADS;
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (!*v || *end || n < 1 || n > MAX_THREADS) {
        fprintf(stderr, "TORTURE_THREADS=%s: not a thread count from 1 to %d\n", v, MAX_THREADS);
        exit(EXIT_FAILURE);
    }
    return (unsigned)n;
}

static bool setting_verbose(void)
{
    const char *v = getenv("TORTURE_VERBOSE");
    return v && *v && strcmp(v, "0") != 0;
}

/* ---- nodes ---- */

struct node {
    struct node *kid[2];
    uint64_t *payload; /* noscan, npayload pattern words, or NULL */
    uint64_t npayload;
    uint64_t value; /* unique; a renewed node keeps it */
    uint64_t seal;  /* seal_of(the node's address, value) */
    uint64_t count; /* nodes in the subtree */
    uint64_t sum;   /* sum of their values */
    uint32_t height;
    uint32_t low;          /* depth of the shallowest empty child slot below */
    uint64_t born;         /* the cycle count when the node was allocated */
    uint64_t payload_born; /* and when its payload was (for failure messages) */
};

/* What a subtree holds: the quantities the ledger and the moves conserve. */
struct agg {
    uint64_t count, sum;
};

static uint64_t seal_of(const struct node *n, uint64_t value)
{
    return test_mix((uintptr_t)n ^ value);
}

static uint64_t payload_word(const uint64_t *p, uint64_t value, size_t k)
{
    return test_mix((uintptr_t)(p + k)) ^ value;
}

static struct agg agg_of(const struct node *n)
{
    return n ? (struct agg){n->count, n->sum} : (struct agg){0, 0};
}

static struct agg agg_add(struct agg a, struct agg b)
{
    return (struct agg){a.count + b.count, a.sum + b.sum};
}

static struct agg agg_sub(struct agg a, struct agg b)
{
    return (struct agg){a.count - b.count, a.sum - b.sum};
}

static bool agg_eq(struct agg a, struct agg b)
{
    return a.count == b.count && a.sum == b.sum;
}

static unsigned height_of(const struct node *n)
{
    return n ? n->height : 0;
}

static unsigned low_of(const struct node *n)
{
    return n ? n->low : 0;
}

static unsigned min_u(unsigned a, unsigned b)
{
    return a < b ? a : b;
}

static unsigned max_u(unsigned a, unsigned b)
{
    return a > b ? a : b;
}

/* Recompute what n's subtree adds up to from its children's stored sums. */
static void node_update(struct node *n)
{
    const struct node *l = n->kid[0], *r = n->kid[1];
    n->count = 1 + agg_of(l).count + agg_of(r).count;
    n->sum = n->value + agg_of(l).sum + agg_of(r).sum;
    n->height = 1 + max_u(height_of(l), height_of(r));
    n->low = 1 + min_u(low_of(l), low_of(r));
}

static struct node *node_new(uint64_t value)
{
    struct node *n = gc_alloc(sizeof *n);
    require(n != NULL, "allocation of a node failed");
    n->value = value;
    n->seal = seal_of(n, value);
    n->born = collect_cycles();
    node_update(n);
    return n;
}

static uint64_t *payload_new(uint64_t value, size_t words)
{
    uint64_t *p = gc_alloc_noscan(words * sizeof *p);
    require(p != NULL, "allocation of a %zu-word payload failed", words);
    for (size_t k = 0; k < words; k++)
        p[k] = payload_word(p, value, k);
    return p;
}

static void node_set_payload(struct node *n, size_t words)
{
    uint64_t *p = words ? payload_new(n->value, words) : NULL;
    n->npayload = words;
    n->payload_born = collect_cycles();
    GC_WRITE(n->payload, p);
}

/* A fresh node in old's place: same value, children and payload. */
static struct node *node_copy(const struct node *old)
{
    struct node *n = node_new(old->value);
    GC_WRITE(n->kid[0], old->kid[0]);
    GC_WRITE(n->kid[1], old->kid[1]);
    n->npayload = old->npayload;
    n->payload_born = old->payload_born;
    GC_WRITE(n->payload, old->payload);
    node_update(n);
    return n;
}

/* A node taken out of every tree: nothing may find it again. */
static void node_poison(struct node *n)
{
    GC_WRITE(n->kid[0], NULL);
    GC_WRITE(n->kid[1], NULL);
    GC_WRITE(n->payload, NULL);
    n->value = n->seal = n->count = n->sum = POISON;
}

/* A balanced tree of n nodes, valued test_mix(*next) on; a node in eight
 * gets a small payload. */
static struct node *tree_build(size_t n, uint64_t *next, uint64_t *rng)
{
    if (!n)
        return NULL;
    struct node *t = node_new(test_mix((*next)++));
    if (test_rand(rng) % 8 == 0)
        node_set_payload(t, 1 + test_rand(rng) % 32);
    size_t left = (n - 1) / 2;
    GC_WRITE(t->kid[0], tree_build(left, next, rng));
    GC_WRITE(t->kid[1], tree_build(n - 1 - left, next, rng));
    node_update(t);
    return t;
}

/* ---- verification ---- */

/* gc_base(p) is not p: what to say about it. A second reading tells a
 * freed object from a lookup that failed while the object stayed. */
static const char *gone(const void *p, const void *first)
{
    static __thread char text[160];
    const void *again = gc_base(p);
    snprintf(text, sizeof text, "gc_base returned %p, then %p%s", first, again,
             again == p ? ": a lookup failed, the object is allocated" : "");
    return text;
}

static bool payload_ok(const struct node *n)
{
    const uint64_t *p = n->payload;
    if (!p)
        return true;
    const void *base = gc_base(p);
    if (base != p)
        return broken("payload %p (%llu words, allocated in cycle %llu, now %lu; first word "
                      "%s) of node %p (allocated in cycle %llu) is not an allocated object (%s)",
                      (const void *)p, (unsigned long long)n->npayload,
                      (unsigned long long)n->payload_born, collect_cycles(),
                      p[0] == payload_word(p, n->value, 0) ? "intact" : "broken",
                      (const void *)n, (unsigned long long)n->born, gone(p, base));
    for (size_t k = 0; k < n->npayload; k++) {
        uint64_t want = payload_word(p, n->value, k);
        if (p[k] != want)
            return broken("payload %p of node %p: word %zu of %llu is %#llx, expected %#llx",
                          (const void *)p, (const void *)n, k, (unsigned long long)n->npayload,
                          (unsigned long long)p[k], (unsigned long long)want);
    }
    return true;
}

static bool node_ok(const struct node *n)
{
    const void *base = gc_base(n);
    if (base != n)
        return broken("node %p (allocated in cycle %llu, now %lu) is not an allocated object "
                      "(%s); it reads seal %#llx (%s), value %#llx",
                      (const void *)n, (unsigned long long)n->born, collect_cycles(),
                      gone(n, base), (unsigned long long)n->seal,
                      n->seal == seal_of(n, n->value) ? "intact" : "broken",
                      (unsigned long long)n->value);
    if (n->seal != seal_of(n, n->value))
        return broken("node %p: seal %#llx, value %#llx (poisoned: %s)", (const void *)n,
                      (unsigned long long)n->seal, (unsigned long long)n->value,
                      n->value == POISON ? "yes" : "no");
    return payload_ok(n);
}

/* Every node of the subtree at n (at most `room` levels tall) intact, with
 * stored sums equal to what its children add up to. */
static bool subtree_ok(const struct node *n, unsigned room)
{
    if (!n)
        return true;
    if (!room)
        return broken("a subtree is more than %d levels deep (a cycle?)", MAX_HEIGHT);
    if (!node_ok(n) || !subtree_ok(n->kid[0], room - 1) || !subtree_ok(n->kid[1], room - 1))
        return false;
    const struct node *l = n->kid[0], *r = n->kid[1];
    struct agg want = agg_add(agg_add(agg_of(l), agg_of(r)), (struct agg){1, n->value});
    unsigned height = 1 + max_u(height_of(l), height_of(r)), low = 1 + min_u(low_of(l), low_of(r));
    if (!agg_eq(agg_of(n), want) || n->height != height || n->low != low)
        return broken("node %p stores %llu nodes, sum %#llx, height %u, low %u; its children "
                      "add up to %llu nodes, sum %#llx, height %u, low %u",
                      (const void *)n, (unsigned long long)n->count, (unsigned long long)n->sum,
                      n->height, n->low, (unsigned long long)want.count,
                      (unsigned long long)want.sum, height, low);
    return true;
}

/* The subtree at n is intact and holds `want`. */
static bool subtree_holds(const struct node *n, struct agg want)
{
    if (!subtree_ok(n, MAX_HEIGHT))
        return false;
    struct agg got = agg_of(n);
    if (!agg_eq(got, want))
        return broken("expected %llu nodes (sum %#llx), found %llu (sum %#llx)",
                      (unsigned long long)want.count, (unsigned long long)want.sum,
                      (unsigned long long)got.count, (unsigned long long)got.sum);
    return true;
}

/* ---- the forest ---- */

static struct node **forest; /* a global root: forest[t] is tree t's root (trees[t].lock) */

static struct tree {
    pthread_mutex_t lock;
    struct agg ledger; /* what the tree holds (lock) */
} trees[TREES];

static struct agg built; /* what the forest held when built */

static void tree_lock(unsigned t)
{
    pthread_mutex_lock(&trees[t].lock);
}

static void tree_unlock(unsigned t)
{
    pthread_mutex_unlock(&trees[t].lock);
}

/* Lock held: the root's stored sums agree with the ledger (after every move). */
static bool tree_matches_ledger(unsigned t)
{
    const struct node *root = forest[t];
    struct agg want = trees[t].ledger;
    if (!agg_eq(agg_of(root), want))
        return broken("tree %u: root %p stores %llu nodes (sum %#llx), the ledger says %llu "
                      "(sum %#llx)",
                      t, (const void *)root, (unsigned long long)root->count,
                      (unsigned long long)root->sum, (unsigned long long)want.count,
                      (unsigned long long)want.sum);
    return true;
}

/* Lock held: every node of tree t verified, the whole against the ledger. */
static void tree_require(unsigned t, const char *when)
{
    const void *base = gc_base(forest);
    require(base == forest, "%s: the forest array %p is not an allocated object (%s)", when,
            (void *)forest, gone(forest, base));
    require(subtree_holds(forest[t], trees[t].ledger), "%s: tree %u: %s", when, t, why);
}

static void forest_build(uint64_t seed)
{
    uint64_t next = 0, rng = seed;
    forest = gc_alloc(TREES * sizeof *forest);
    require(forest != NULL, "allocation of the forest failed");
    built = (struct agg){0, 0};
    for (unsigned t = 0; t < TREES; t++) {
        pthread_mutex_init(&trees[t].lock, NULL);
        GC_WRITE(forest[t], tree_build(TREE_NODES, &next, &rng));
        trees[t].ledger = agg_of(forest[t]);
        built = agg_add(built, trees[t].ledger);
    }
}

/* Every tree against its ledger, and the ledgers against what was built. */
static void forest_require(const char *when)
{
    struct agg total = {0, 0};
    for (unsigned t = 0; t < TREES; t++) {
        tree_lock(t);
        tree_require(t, when);
        total = agg_add(total, trees[t].ledger);
        tree_unlock(t);
    }
    require(agg_eq(total, built),
            "%s: the trees hold %llu nodes (sum %#llx); %llu (sum %#llx) were built", when,
            (unsigned long long)total.count, (unsigned long long)total.sum,
            (unsigned long long)built.count, (unsigned long long)built.sum);
}

/* ---- paths ---- */

struct path {
    struct node *node[MAX_HEIGHT]; /* node[0] the top, each the child of the one before */
    unsigned len;
};

/* A random downward path from `top`: at least two nodes when top has a
 * child, then one more level with probability 3/4. */
static void walk_random(struct node *top, struct path *p, uint64_t *rng)
{
    p->len = 0;
    for (struct node *n = top; n && p->len < MAX_HEIGHT;) {
        p->node[p->len++] = n;
        uint64_t r = test_rand(rng);
        if (p->len >= 2 && r % 4 == 0)
            break;
        unsigned side = (unsigned)(r >> 8) & 1;
        n = n->kid[side] ? n->kid[side] : n->kid[!side];
    }
}

/* The path to a shallowest empty child slot below `top` (ties at random);
 * returns the slot's side in the last node, the slot is at depth p->len. */
static unsigned walk_shallowest(struct node *top, struct path *p, uint64_t *rng)
{
    p->len = 0;
    for (struct node *n = top;;) {
        p->node[p->len++] = n;
        unsigned l0 = low_of(n->kid[0]), l1 = low_of(n->kid[1]);
        unsigned side = l0 != l1 ? l1 < l0 : (unsigned)test_rand(rng) & 1;
        if (!n->kid[side] || p->len == MAX_HEIGHT)
            return side;
        n = n->kid[side];
    }
}

/* Recompute the sums of p->node[from] and of every node above it. */
static void path_update(struct path *p, unsigned from)
{
    for (unsigned i = from + 1; i-- > 0;)
        node_update(p->node[i]);
}

static unsigned side_of(const struct node *parent, const struct node *kid)
{
    return parent->kid[1] == kid;
}

/* ---- garbage ---- */

/* Mixed sizes: mostly small, some medium, 2% large. */
static size_t garbage_size(uint64_t *rng)
{
    uint64_t r = test_rand(rng);
    unsigned pick = (unsigned)(r % 100);
    r >>= 8;
    if (pick < 60)
        return 16 + r % 112;
    if (pick < 90)
        return 128 + r % 3968;
    if (pick < 98)
        return 4096 + r % (28 << 10);
    return LARGE_MIN + r % (96 << 10);
}

/* About `bytes` of short-lived objects, every byte written: a quarter
 * noscan, the others in short chains linked with GC_WRITE. */
static NOINLINE void make_garbage(uint64_t *rng, size_t bytes)
{
    void **prev = NULL;
    for (size_t done = 0, i = 0; done < bytes; i++) {
        size_t size = garbage_size(rng);
        bool noscan = i % 4 == 0;
        void **p = noscan ? gc_alloc_noscan(size) : gc_alloc(size);
        require(p != NULL, "allocation of %zu bytes of garbage failed", size);
        memset(p, GARBAGE_BYTE, size);
        if (!noscan) {
            GC_WRITE(p[0], i % 16 ? prev : NULL);
            prev = p;
        }
        keep_stores(p);
        done += size;
    }
}

/* ---- mutators ---- */

struct mutator {
    uint64_t rng;
    unsigned long steps, swaps, splits, renewals, far_moves; /* owner; main reads after join */
    uint64_t moved_nodes;
};

/* A subtree out of every tree, held in local variables only. */
struct piece {
    struct node *top;
    struct agg want;  /* what it holds */
    unsigned from;    /* the tree it was detached from */
    unsigned depth;   /* and the depth there (for messages) */
};

static NOINLINE void piece_require(const struct piece *s, const char *when)
{
    require(subtree_holds(s->top, s->want), "subtree %p detached from tree %u at depth %u, %s: %s",
            (void *)s->top, s->from, s->depth, when, why);
}

static unsigned random_tree(struct mutator *m)
{
    return (unsigned)(test_rand(&m->rng) % TREES);
}

/* Detach a random subtree (never a root) of tree t into *s. False when the
 * tree is a lone root. */
static NOINLINE bool detach(struct mutator *m, unsigned t, struct piece *s)
{
    struct path p;
    tree_lock(t);
    walk_random(forest[t], &p, &m->rng);
    if (p.len < 2) {
        tree_unlock(t);
        return false;
    }
    struct node *parent = p.node[p.len - 2], *top = p.node[p.len - 1];
    *s = (struct piece){top, agg_of(top), t, p.len - 1};
    GC_WRITE(parent->kid[side_of(parent, top)], NULL);
    path_update(&p, p.len - 2);
    trees[t].ledger = agg_sub(trees[t].ledger, s->want);
    require(tree_matches_ledger(t), "after detaching %p from depth %u: %s", (void *)top, s->depth,
            why);
    tree_unlock(t);
    piece_require(s, "just detached");
    return true;
}

/* Replace a random node below the piece's top by a fresh copy. */
static void renew_inner(struct mutator *m, struct piece *s)
{
    struct path p;
    walk_random(s->top, &p, &m->rng);
    if (p.len < 2)
        return;
    struct node *parent = p.node[p.len - 2], *old = p.node[p.len - 1];
    GC_WRITE(parent->kid[side_of(parent, old)], node_copy(old));
    node_poison(old);
    m->renewals++;
}

/* A random node of the piece gets a new payload: none, small or (rarely)
 * large. */
static void repayload(struct mutator *m, struct piece *s)
{
    struct path p;
    walk_random(s->top, &p, &m->rng);
    uint64_t r = test_rand(&m->rng);
    size_t words = r % 128 == 0 ? LARGE_MIN / 8 + (r >> 8) % 2048
                   : r % 4 == 1 ? 0
                                : 1 + (r >> 8) % 32;
    node_set_payload(p.node[p.len - 1], words);
}

/* While only locals hold the piece: garbage, renewals, a new payload. */
static NOINLINE void churn(struct mutator *m, struct piece *s)
{
    make_garbage(&m->rng, (32 << 10) + test_rand(&m->rng) % (128 << 10));
    piece_require(s, "after allocating garbage");
    struct node *old = s->top;
    s->top = node_copy(old);
    node_poison(old);
    m->renewals++;
    renew_inner(m, s);
    repayload(m, s);
    make_garbage(&m->rng, test_rand(&m->rng) % (64 << 10));
    piece_require(s, "after renewing nodes and allocating");
}

/* Swap a grandchild of the piece (g1, below its child x) with a subtree g2
 * hanging from a random node y of tree t. */
static NOINLINE void swap_grandchildren(struct mutator *m, unsigned t, struct piece *s)
{
    uint64_t r = test_rand(&m->rng);
    struct node *x = s->top->kid[r & 1] ? s->top->kid[r & 1] : s->top->kid[!(r & 1)];
    if (!x)
        return;
    unsigned j = (unsigned)(r >> 1) & 1, l = (unsigned)(r >> 2) & 1;
    struct path p;
    tree_lock(t);
    walk_random(forest[t], &p, &m->rng);
    struct node *y = p.node[p.len - 1], *g1 = x->kid[j], *g2 = y->kid[l];
    if ((!g1 && !g2) || p.len + height_of(g1) > MAX_HEIGHT || 2 + height_of(g2) > MAX_HEIGHT) {
        tree_unlock(t);
        return;
    }
    struct agg a1 = agg_of(g1), a2 = agg_of(g2);
    GC_WRITE(y->kid[l], g1);
    GC_WRITE(x->kid[j], g2);
    path_update(&p, p.len - 1);
    trees[t].ledger = agg_sub(agg_add(trees[t].ledger, a1), a2);
    require(tree_matches_ledger(t), "after a swap at depth %u: %s", p.len, why);
    require(subtree_ok(y, MAX_HEIGHT), "tree %u, after a swap at depth %u: %s", t, p.len, why);
    tree_unlock(t);
    node_update(x);
    node_update(s->top);
    s->want = agg_add(agg_sub(s->want, a1), a2);
    piece_require(s, "after swapping a grandchild");
    m->swaps++;
}

/* Take the piece's children off it, onto `todo`: the top alone fits. */
static void split(struct piece *s, struct piece *todo, unsigned *ntodo)
{
    for (unsigned i = 0; i < 2; i++) {
        struct node *k = s->top->kid[i];
        if (!k)
            continue;
        require(*ntodo < MAX_PIECES, "more than %d pieces to attach", MAX_PIECES);
        todo[(*ntodo)++] = (struct piece){k, agg_of(k), s->from, s->depth + 1};
        s->want = agg_sub(s->want, agg_of(k));
        GC_WRITE(s->top->kid[i], NULL);
    }
    node_update(s->top);
}

/* Attach the piece at a shallowest empty slot of tree t; when it would make
 * the tree too tall, split it first and leave its children on `todo`. */
static void attach(struct mutator *m, unsigned t, struct piece *s, struct piece *todo,
                   unsigned *ntodo)
{
    struct path p;
    tree_lock(t);
    unsigned side = walk_shallowest(forest[t], &p, &m->rng);
    struct node *parent = p.node[p.len - 1];
    require(!parent->kid[side], "tree %u: no empty slot within %d levels", t, MAX_HEIGHT);
    if (p.len + s->top->height > MAX_HEIGHT) {
        split(s, todo, ntodo);
        m->splits++;
    }
    GC_WRITE(parent->kid[side], s->top);
    path_update(&p, p.len - 1);
    trees[t].ledger = agg_add(trees[t].ledger, s->want);
    require(tree_matches_ledger(t), "after attaching %p at depth %u: %s", (void *)s->top, p.len,
            why);
    require(subtree_holds(s->top, s->want),
            "tree %u: subtree %p (from tree %u) just attached at depth %u: %s", t,
            (void *)s->top, s->from, p.len, why);
    tree_unlock(t);
    m->moved_nodes += s->want.count;
    m->far_moves += t != s->from;
}

static NOINLINE void attach_all(struct mutator *m, unsigned t, struct piece *s)
{
    struct piece todo[MAX_PIECES];
    unsigned ntodo = 0;
    todo[ntodo++] = *s;
    while (ntodo) {
        struct piece next = todo[--ntodo];
        attach(m, t, &next, todo, &ntodo);
    }
}

/* A tree's root replaced by a fresh copy: a store into the forest array. */
static NOINLINE void renew_root(struct mutator *m, unsigned t)
{
    tree_lock(t);
    struct node *old = forest[t];
    GC_WRITE(forest[t], node_copy(old));
    node_poison(old);
    require(tree_matches_ledger(t), "after renewing the root: %s", why);
    tree_unlock(t);
    m->renewals++;
}

static NOINLINE void check_tree(unsigned t)
{
    tree_lock(t);
    tree_require(t, "while mutating");
    tree_unlock(t);
}

/* Zero the dead stack below the caller. The frames of the phases just run
 * hold copies of the pointers they walked; a conservative scan finding
 * them would keep a detached subtree alive that only the barrier should. */
static NOINLINE void scrub_stack(void)
{
    char pad[SCRUB_BYTES];
    memset(pad, 0, sizeof pad);
    keep_stores(pad);
}

/* One round. Each phase is a call of its own, followed by a scrub: while
 * the piece is detached, its one reference on this stack is `s`. */
static void mutator_step(struct mutator *m)
{
    struct piece s;
    if (detach(m, random_tree(m), &s)) {
        scrub_stack();
        churn(m, &s);
        scrub_stack();
        swap_grandchildren(m, random_tree(m), &s);
        scrub_stack();
        make_garbage(&m->rng, test_rand(&m->rng) % (32 << 10));
        piece_require(&s, "before attaching");
        scrub_stack();
        attach_all(m, random_tree(m), &s);
    }
    uint64_t r = test_rand(&m->rng);
    if (r % 16 == 0)
        renew_root(m, random_tree(m));
    if ((r >> 8) % 16 == 0)
        check_tree(random_tree(m));
    scrub_stack();
    m->steps++;
}

static void *mutator_main(void *arg)
{
    struct mutator *m = arg;
    while (!stop_requested())
        mutator_step(m);
    return NULL;
}

static void *collector_main(void *arg)
{
    unsigned long *calls = arg;
    while (!stop_requested()) {
        gc_collect();
        (*calls)++;
    }
    return NULL;
}

/* ---- the torture ---- */

struct report {
    double seconds;
    unsigned threads;
    unsigned long steps, swaps, splits, renewals, far_moves, calls, cycles;
    uint64_t moved_nodes;
};

static void report_add(struct report *r, const struct mutator *m)
{
    require(m->steps > 0, "a mutator did not complete one step");
    r->steps += m->steps;
    r->swaps += m->swaps;
    r->splits += m->splits;
    r->renewals += m->renewals;
    r->far_moves += m->far_moves;
    r->moved_nodes += m->moved_nodes;
}

static void report_print(FILE *f, const char *what, const struct report *r)
{
    fprintf(f,
            "%s: %u mutators, %.1f s: %lu steps, %llu nodes moved (%lu subtrees to another "
            "tree), %lu swaps, %lu splits, %lu renewals; %lu cycles (%lu gc_collect calls)\n",
            what, r->threads, r->seconds, r->steps, (unsigned long long)r->moved_nodes,
            r->far_moves, r->swaps, r->splits, r->renewals, r->cycles, r->calls);
}

static void start(pthread_t *tid, void *(*fn)(void *), void *arg)
{
    require(gc_pthread_create(tid, NULL, fn, arg) == 0, "gc_pthread_create failed");
}

static void join(pthread_t tid)
{
    require(pthread_join(tid, NULL) == 0, "pthread_join failed");
}

/* Build the forest, run the mutators and the collecting thread for the
 * configured time, join them, verify everything. */
static void torture(struct report *r)
{
    static struct mutator m[MAX_THREADS];
    pthread_t tids[MAX_THREADS], collector;
    *r = (struct report){.seconds = setting_seconds(), .threads = setting_threads()};
    forest_build(0x70f7u);
    forest_require("when built");
    unsigned long cycles_before = collect_cycles();
    for (unsigned i = 0; i < r->threads; i++) {
        m[i] = (struct mutator){.rng = test_mix(0x5eedu + i) | 1};
        start(&tids[i], mutator_main, &m[i]);
    }
    start(&collector, collector_main, &r->calls);
    for (double end = now() + r->seconds; now() < end;)
        nap(20);
    __atomic_store_n(&stop_flag, 1, __ATOMIC_RELEASE);
    join(collector);
    for (unsigned i = 0; i < r->threads; i++) {
        join(tids[i]);
        report_add(r, &m[i]);
    }
    forest_require("after the run");
    gc_collect();
    forest_require("after a last collection");
    r->cycles = collect_cycles() - cycles_before;
    require(r->cycles > 2, "only %lu cycles ran", r->cycles);
    require(r->swaps && r->far_moves && r->renewals, "%lu swaps, %lu moves to another tree, "
            "%lu renewals: some kind of move never happened", r->swaps, r->far_moves, r->renewals);
}

START_TEST(torture_plain)
{
    struct report r;
    torture(&r);
    if (setting_verbose())
        report_print(stderr, "torture", &r);
}
END_TEST

/* ---- scenarios in a fresh process ---- */

static const struct scenario {
    const char *name;
    const char *gcdebug;
} scenarios[] = {
    {"gccheckmark", "gccheckmark=1"},
    {"gcstoptheworld", "gcstoptheworld=1"},
};

/* In the re-executed process: no Check, a line on stdout when all went well. */
static int run_scenario(const char *name)
{
    unsigned i = 0;
    while (i < NELEMS(scenarios) && strcmp(scenarios[i].name, name) != 0)
        i++;
    if (i == NELEMS(scenarios)) {
        fprintf(stderr, "unknown scenario %s\n", name);
        return 2;
    }
    child_mode = true;
    struct report r;
    torture(&r);
    report_print(stdout, name, &r);
    printf("torture ok\n");
    return 0;
}

/* All the child writes, keeping the last `cap - 1` bytes at most. */
static void read_tail(int fd, char *out, size_t cap)
{
    size_t len = 0;
    ssize_t n;
    for (;;) {
        if (len == cap - 1) {
            memmove(out, out + cap / 2, len - cap / 2);
            len -= cap / 2;
        }
        n = read(fd, out + len, cap - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    out[len] = 0;
    close(fd);
}

START_TEST(torture_scenario)
{
    const struct scenario *sc = &scenarios[_i];
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        close(fds[1]);
        setenv("GCDEBUG", sc->gcdebug, 1);
        execl("/proc/self/exe", "test_torture", SCENARIO_FLAG, sc->name, (char *)NULL);
        _exit(127);
    }
    ck_assert_int_ge(pid, 0);
    close(fds[1]);
    char out[4096];
    read_tail(fds[0], out, sizeof out);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "GCDEBUG=%s: the torture's process ended with status %#x; its output: %s",
                  sc->gcdebug, (unsigned)status, out);
    ck_assert_msg(strstr(out, "torture ok"), "GCDEBUG=%s: no success line in: %s", sc->gcdebug,
                  out);
    if (setting_verbose())
        fprintf(stderr, "GCDEBUG=%s: %s", sc->gcdebug, out);
}
END_TEST

/* ---- the suite ---- */

static Suite *make_suite(void)
{
    /* Twice the run time covers start-up, the final checks and a slow build. */
    double timeout = 2 * setting_seconds() + 120;
    setting_threads(); /* a bad value stops here, before any test */
    Suite *s = suite_create("torture");
    TCase *tc = tcase_create("plain");
    tcase_set_timeout(tc, timeout);
    tcase_add_test(tc, torture_plain);
    suite_add_tcase(s, tc);
    tc = tcase_create("gcdebug");
    tcase_set_timeout(tc, timeout);
    /* TORTURE_SKIP names scenarios not to register (to run one mode
     * alone by hand). */
    const char *skip = getenv("TORTURE_SKIP");
    for (int i = 0; i < (int)NELEMS(scenarios); i++)
        if (!skip || !strstr(skip, scenarios[i].name))
            tcase_add_loop_test(tc, torture_scenario, i, i + 1);
    suite_add_tcase(s, tc);
    return s;
}

/* With SCENARIO_FLAG, run the torture in this fresh process instead of the
 * suite. */
int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], SCENARIO_FLAG) == 0)
        return run_scenario(argv[2]);
    return test_run(make_suite());
}

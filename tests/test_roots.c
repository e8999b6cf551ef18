/*
 * test_roots.c — every kind of root keeps what it points to alive, and
 * memory that is not a root does not.
 *
 * Each liveness test keeps a checksummed list of about a thousand nodes
 * reachable from exactly one root, then runs a couple of hundred cycles of
 * "litter, collect, check": litter allocates and drops objects of the
 * nodes' sizes filled with random words, so that a node the collector lost
 * is soon reused and shows up as a broken checksum, a wrong sequence number
 * or gc_base(node) != node. Every node carries a noscan child (part of its
 * checksum) and every 256th node is a large object, so the list crosses
 * scanned, noscan and large spans.
 *
 * The list is built in a noinline function that stores its head into the
 * root under test and returns nothing, and scrub_stack() overwrites the dead
 * stack below the caller, so stale copies of the head do not quietly stand
 * in for the root under test.
 *
 * Layers:
 *   stack      a volatile local in a deep frame; twelve pointer locals live
 *              across calls to gc_collect; twelve pointers held only in the
 *              registers of a spinning thread.
 *   globals    a bss and a data pointer of the executable; the bss and data
 *              pointers of a library dlopened after the collector started,
 *              and collecting after dlclose.
 *   tls        __thread variables (.tbss and .tdata) of the main thread, of
 *              a library dlopened after the collector started, and of a
 *              thread started with gc_pthread_create.
 *   interior   a list whose root and links all point into the middle of
 *              the nodes, large nodes included.
 *   ranges     malloc memory added with gc_add_roots; after gc_remove_roots
 *              of one range of three its lists are reclaimed, the others
 *              live on.
 *   threads    a thread blocked in read() on a pipe through hundreds of
 *              stops (read returns the byte: SA_RESTART); a thread created
 *              unregistered that registers with gc_register_thread (and
 *              unregisters and registers again); a list whose only
 *              reference is the argument of gc_pthread_create.
 *   noscan     objects named only from noscan memory (small and large) are
 *              reclaimed; the noscan object itself is kept intact.
 *
 * Reclamation is asserted with a threshold (90%), never "all": scanning is
 * conservative, and a stale word left on a stack may keep a few objects.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>

#include "../gc/collector.h"
#include "testutil.h"
#include "tricolor.h"

#define TIMEOUT        120
#define NODES          1000
#define ROUNDS         200 /* collections a liveness test survives */
#define RECLAIM_ROUNDS 8   /* collections before a reclamation count */
#define LITTER_OBJECTS 300
#define LARGE_WORDS    6000 /* payload of every 256th node: a large object */
#define WHY            256
#define DATA_DUMMY     ((void *)(uintptr_t)0x5eed)
#define NOINLINE       __attribute__((noinline))

/* ---- checksummed lists ---- */

enum link {
    LINK_START,  /* roots and links point at the start of each node */
    LINK_MIDDLE, /* ... at its middle byte: interior pointers only */
};

struct node {
    void *next;          /* the next node (a LINK_MIDDLE list: its middle), or NULL */
    unsigned char *data; /* noscan child of `len` bytes */
    uint64_t seq;        /* position in the list */
    uint32_t len;
    uint32_t nwords; /* words of payload */
    uint64_t sum;    /* node_sum() of everything else, child included */
    uint64_t payload[];
};

static size_t node_bytes(uint32_t nwords)
{
    return sizeof(struct node) + (size_t)nwords * sizeof(uint64_t);
}

static uint64_t node_sum(const struct node *n)
{
    uint64_t h = test_mix(n->seq ^ (uint64_t)n->len << 32 ^ n->nwords);
    h = test_mix(h ^ (uintptr_t)n->next);
    h = test_mix(h ^ (uintptr_t)n->data);
    for (uint32_t i = 0; i < n->nwords; i++)
        h = test_mix(h ^ n->payload[i]);
    for (uint32_t i = 0; i < n->len; i += 8) {
        uint64_t w = 0;
        memcpy(&w, n->data + i, n->len - i < 8 ? n->len - i : 8);
        h = test_mix(h ^ w);
    }
    return h;
}

/* How `link` refers to node `n`. */
static void *ref_to(struct node *n, enum link link)
{
    if (!n || link == LINK_START)
        return n;
    return (char *)n + node_bytes(n->nwords) / 2;
}

static void fill_random(void *p, size_t size, uint64_t *rng)
{
    unsigned char *b = p;
    for (size_t i = 0; i < size; i += 8) {
        uint64_t w = test_rand(rng);
        memcpy(b + i, &w, size - i < 8 ? size - i : 8);
    }
}

static struct node *node_new(uint64_t seq, void *next, uint64_t *rng)
{
    uint32_t nwords = seq % 256 == 0 ? LARGE_WORDS : (uint32_t)(test_rand(rng) % 41);
    uint32_t len = 1 + (uint32_t)(test_rand(rng) % 200);
    struct node *n = gc_alloc(node_bytes(nwords));
    ck_assert_ptr_nonnull(n);
    unsigned char *data = gc_alloc_noscan(len);
    ck_assert_ptr_nonnull(data);
    fill_random(data, len, rng);
    GC_WRITE(n->data, data);
    GC_WRITE(n->next, next);
    n->seq = seq;
    n->len = len;
    n->nwords = nwords;
    fill_random(n->payload, nwords * sizeof(uint64_t), rng);
    n->sum = node_sum(n);
    return n;
}

/* A list of `n` nodes; returns how `link` refers to its head. */
static void *list_build(size_t n, enum link link, uint64_t seed)
{
    uint64_t rng = seed | 1;
    void *next = NULL;
    for (size_t i = n; i-- > 0;)
        next = ref_to(node_new(i, next, &rng), link);
    return next;
}

static bool why_not(char *why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, WHY, fmt, ap);
    va_end(ap);
    return false;
}

/* The node `ref` refers to, or NULL with the reason in `why`. */
static const struct node *node_of(const void *ref, enum link link, uint64_t seq, char *why)
{
    const struct node *n = link == LINK_START ? ref : gc_base(ref);
    if (!n || gc_base(n) != n) {
        why_not(why, "node %llu at %p: gc_base is %p", (unsigned long long)seq, ref,
                n ? gc_base(n) : NULL);
        return NULL;
    }
    size_t size = gc_size(n);
    if (size < node_bytes(0) || size < node_bytes(n->nwords) || ref_to((void *)n, link) != ref) {
        why_not(why, "node %llu at %p: %zu-byte object with %u payload words",
                (unsigned long long)seq, ref, size, n->nwords);
        return NULL;
    }
    return n;
}

static bool node_ok(const struct node *n, uint64_t seq, char *why)
{
    if (n->seq != seq)
        return why_not(why, "node %llu at %p: sequence number %llu", (unsigned long long)seq,
                       (void *)n, (unsigned long long)n->seq);
    if (gc_base(n->data) != n->data || gc_size(n->data) < n->len)
        return why_not(why, "node %llu at %p: child %p of %u bytes lost", (unsigned long long)seq,
                       (void *)n, (void *)n->data, n->len);
    if (node_sum(n) != n->sum)
        return why_not(why, "node %llu at %p: checksum mismatch", (unsigned long long)seq,
                       (void *)n);
    return true;
}

/* Is `root` a list of `n` intact nodes linked by `link`? If not, `why`
 * says what is wrong. */
static bool list_ok(const void *root, size_t n, enum link link, char *why)
{
    const void *ref = root;
    for (size_t i = 0; i < n; i++) {
        const struct node *node = node_of(ref, link, i, why);
        if (!node || !node_ok(node, i, why))
            return false;
        ref = node->next;
    }
    if (ref)
        return why_not(why, "list longer than %zu nodes", n);
    return true;
}

static void expect_list(const void *root, size_t n, enum link link, int round)
{
    char why[WHY];
    ck_assert_msg(list_ok(root, n, link, why), "after collection %d: %s", round, why);
}

/* ---- keeping the stack honest ---- */

/* Overwrite the dead stack below the caller, so that stale copies of
 * pointers left by finished calls keep nothing alive. */
static NOINLINE void scrub_stack(void)
{
    volatile uintptr_t words[2048];
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        words[i] = 0;
}

/* Allocate and drop objects of the nodes' sizes, scanned and noscan, small
 * and one large, full of random words: freed slots are soon reused. */
static NOINLINE void litter(uint64_t *rng)
{
    for (int i = 0; i < LITTER_OBJECTS; i++) {
        size_t size = 8 + test_rand(rng) % 400;
        void *p = i % 2 ? gc_alloc(size) : gc_alloc_noscan(size);
        ck_assert_ptr_nonnull(p);
        fill_random(p, size, rng);
    }
    size_t size = node_bytes(LARGE_WORDS) - 4096 + test_rand(rng) % 8192;
    void *p = gc_alloc_noscan(size);
    ck_assert_ptr_nonnull(p);
    fill_random(p, size, rng);
}

/* One round: litter, scrub, collect. */
static NOINLINE void litter_and_collect(uint64_t *rng)
{
    litter(rng);
    scrub_stack();
    gc_collect();
}

/* ---- roots ---- */

/* Where a test keeps its only reference, read and written through `get`
 * and `set` so that the test itself holds no copy. */
struct root {
    void *(*get)(const struct root *);
    void (*set)(const struct root *, void *);
    void *where;            /* the variable (slot and hidden roots) */
    void *(*lib_get)(void); /* the library's accessors (library roots) */
    void (*lib_set)(void *);
};

static void *slot_get(const struct root *r)
{
    return *(void *volatile *)r->where;
}

static void slot_set(const struct root *r, void *p)
{
    *(void *volatile *)r->where = p;
}

/* A hidden root holds ~pointer: no reference at all, just a way to pass a
 * pointer along without keeping the object alive. */
static void *hidden_get(const struct root *r)
{
    return (void *)~*(volatile uintptr_t *)r->where;
}

static void hidden_set(const struct root *r, void *p)
{
    *(volatile uintptr_t *)r->where = ~(uintptr_t)p;
}

static void *lib_get(const struct root *r)
{
    return r->lib_get();
}

static void lib_set(const struct root *r, void *p)
{
    r->lib_set(p);
}

#define SLOT_ROOT(var) ((struct root){.get = slot_get, .set = slot_set, .where = (void *)&(var)})
#define HIDDEN_ROOT(var)                                                                           \
    ((struct root){.get = hidden_get, .set = hidden_set, .where = (void *)&(var)})

/* Build a list and store its head in `r` only. */
static NOINLINE void plant(const struct root *r, size_t n, enum link link, uint64_t seed)
{
    r->set(r, list_build(n, link, seed));
}

/* `rounds` rounds of litter and collect; after each, every root still
 * holds its intact list of `n` nodes. */
static void survive(const struct root *roots, size_t nroots, size_t n, enum link link, int rounds,
                    uint64_t seed)
{
    uint64_t rng = seed | 1;
    unsigned long cycles = collect_cycles();
    for (int r = 0; r < rounds; r++) {
        litter_and_collect(&rng);
        for (size_t k = 0; k < nroots; k++)
            expect_list(roots[k].get(&roots[k]), n, link, r);
    }
    ck_assert_uint_ge(collect_cycles() - cycles, (unsigned long)rounds);
}

static void plant_and_survive(const struct root *r, enum link link, uint64_t seed)
{
    plant(r, NODES, link, seed);
    scrub_stack();
    survive(r, 1, NODES, link, ROUNDS, seed);
}

/* Record ~address of every node of the list at `r` in hidden[], from
 * index `at`; returns the new count. */
static NOINLINE size_t hide_nodes(const struct root *r, uintptr_t *hidden, size_t at)
{
    for (const struct node *n = r->get(r); n; n = n->next)
        hidden[at++] = ~(uintptr_t)n;
    return at;
}

/* How many of the `n` hidden addresses gc_base finds no object at. */
static size_t count_gone(const uintptr_t *hidden, size_t n)
{
    size_t gone = 0;
    for (size_t i = 0; i < n; i++)
        gone += gc_base((void *)~hidden[i]) == NULL;
    return gone;
}

/* Collections enough for anything unreachable to be gone (the last one
 * after the last allocation). */
static void collect_until_reclaimed(uint64_t seed)
{
    uint64_t rng = seed | 1;
    for (int r = 0; r < RECLAIM_ROUNDS; r++)
        litter_and_collect(&rng);
    scrub_stack();
    gc_collect();
}

static void expect_most_gone(const uintptr_t *hidden, size_t n, const char *what)
{
    size_t gone = count_gone(hidden, n);
    ck_assert_msg(gone * 10 >= n * 9, "%s: only %zu of %zu objects reclaimed", what, gone, n);
}

/* ---- handshakes with worker threads ---- */

#define QUIT UINT32_MAX

struct baton {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned asked; /* main: checks requested so far, or QUIT */
    unsigned done;  /* worker: checks finished (1: ready, before any) */
    char why[WHY];  /* worker: its first failure, "" while none */
};

#define BATON_INIT {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, ""}

static void baton_set(struct baton *b, unsigned *field, unsigned value)
{
    pthread_mutex_lock(&b->lock);
    *field = value;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

/* Wait until *field >= value; returns *field. */
static unsigned baton_await(struct baton *b, const unsigned *field, unsigned value)
{
    pthread_mutex_lock(&b->lock);
    while (*field < value)
        pthread_cond_wait(&b->cond, &b->lock);
    unsigned now = *field;
    pthread_mutex_unlock(&b->lock);
    return now;
}

/* Worker: check the list at `r` each time main asks, until it says QUIT. */
static void serve_checks(struct baton *b, const struct root *r, size_t n)
{
    baton_set(b, &b->done, 1);
    for (unsigned k = 1; baton_await(b, &b->asked, k) != QUIT; k++) {
        char why[WHY];
        if (!list_ok(r->get(r), n, LINK_START, why) && !b->why[0])
            snprintf(b->why, WHY, "worker check %u: %.200s", k, why);
        scrub_stack();
        baton_set(b, &b->done, k + 1);
    }
}

/* Main: `rounds` rounds of litter and collect, asking the worker served
 * by serve_checks for a check every 8 rounds and at the end. */
static void collect_while_worker_checks(struct baton *b, int rounds, uint64_t seed)
{
    uint64_t rng = seed | 1;
    unsigned k = 1;
    baton_await(b, &b->done, 1);
    for (int r = 0; r < rounds; r++) {
        litter_and_collect(&rng);
        if (r % 8 == 7 || r == rounds - 1) {
            baton_set(b, &b->asked, k);
            baton_await(b, &b->done, ++k);
        }
    }
    baton_set(b, &b->asked, QUIT);
}

/* ---- stack ---- */

/* A volatile local `depth` frames down, each frame a few hundred bytes. */
static NOINLINE void hold_in_deep_frame(int depth, uint64_t seed)
{
    volatile char pad[256];
    pad[0] = (char)depth;
    if (depth > 0) {
        hold_in_deep_frame(depth - 1, seed);
        pad[0]++; /* no tail call: every frame stays */
        return;
    }
    void *volatile local = NULL;
    struct root r = SLOT_ROOT(local);
    plant_and_survive(&r, LINK_START, seed);
}

START_TEST(stack_local_in_deep_frame)
{
    hold_in_deep_frame(64, 101);
}
END_TEST

#define LOCALS    12
#define PER_LOCAL (NODES / LOCALS)

static NOINLINE void *build_part(unsigned i)
{
    return list_build(PER_LOCAL, LINK_START, 1000 + i);
}

static NOINLINE void expect_part(const void *head, int round)
{
    expect_list(head, PER_LOCAL, LINK_START, round);
}

/* Twelve pointer locals live across every call: the compiler keeps them
 * in callee-saved registers and spill slots. */
START_TEST(many_pointer_locals)
{
    void *p0 = build_part(0), *p1 = build_part(1), *p2 = build_part(2), *p3 = build_part(3);
    void *p4 = build_part(4), *p5 = build_part(5), *p6 = build_part(6), *p7 = build_part(7);
    void *p8 = build_part(8), *p9 = build_part(9), *p10 = build_part(10), *p11 = build_part(11);
    uint64_t rng = 102;
    for (int r = 0; r < ROUNDS; r++) {
        litter_and_collect(&rng);
        if (r % 16 == 15 || r == ROUNDS - 1) {
            expect_part(p0, r), expect_part(p1, r), expect_part(p2, r), expect_part(p3, r);
            expect_part(p4, r), expect_part(p5, r), expect_part(p6, r), expect_part(p7, r);
            expect_part(p8, r), expect_part(p9, r), expect_part(p10, r), expect_part(p11, r);
        }
    }
}
END_TEST

struct spinner {
    uintptr_t hidden[LOCALS]; /* ~heads: no references */
    int spinning, stop;       /* __atomic */
    char why[WHY];
};

/* Holds the twelve heads in registers only, in a loop without calls, until
 * told to stop; the collector finds them in the signal context. */
static void *spin_on_registers(void *arg)
{
    struct spinner *s = arg;
    uintptr_t r0 = ~s->hidden[0], r1 = ~s->hidden[1], r2 = ~s->hidden[2], r3 = ~s->hidden[3];
    uintptr_t r4 = ~s->hidden[4], r5 = ~s->hidden[5], r6 = ~s->hidden[6], r7 = ~s->hidden[7];
    uintptr_t r8 = ~s->hidden[8], r9 = ~s->hidden[9], r10 = ~s->hidden[10], r11 = ~s->hidden[11];
    __atomic_store_n(&s->spinning, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE))
        __asm__ volatile(""
                         : "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r3), "+r"(r4), "+r"(r5), "+r"(r6),
                           "+r"(r7), "+r"(r8), "+r"(r9), "+r"(r10), "+r"(r11));
    const uintptr_t heads[LOCALS] = {r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11};
    for (unsigned i = 0; i < LOCALS; i++) {
        char why[WHY];
        if (!list_ok((void *)heads[i], PER_LOCAL, LINK_START, why) && !s->why[0])
            snprintf(s->why, WHY, "list %u: %.200s", i, why);
    }
    return NULL;
}

START_TEST(registers_of_a_running_thread)
{
    static struct spinner s;
    for (unsigned i = 0; i < LOCALS; i++) {
        struct root r = HIDDEN_ROOT(s.hidden[i]);
        plant(&r, PER_LOCAL, LINK_START, 1100 + i);
    }
    scrub_stack();
    pthread_t t;
    ck_assert_int_eq(gc_pthread_create(&t, NULL, spin_on_registers, &s), 0);
    while (!__atomic_load_n(&s.spinning, __ATOMIC_ACQUIRE))
        sched_yield();
    uint64_t rng = 103;
    for (int r = 0; r < ROUNDS; r++)
        litter_and_collect(&rng);
    __atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_msg(!s.why[0], "%s", s.why);
}
END_TEST

/* ---- globals ---- */

static void *volatile bss_root;
static void *volatile data_root = DATA_DUMMY;

START_TEST(bss_global)
{
    ck_assert_ptr_null(bss_root);
    struct root r = SLOT_ROOT(bss_root);
    plant_and_survive(&r, LINK_START, 104);
}
END_TEST

START_TEST(data_global)
{
    ck_assert_ptr_eq(data_root, DATA_DUMMY);
    struct root r = SLOT_ROOT(data_root);
    plant_and_survive(&r, LINK_START, 105);
}
END_TEST

struct dlroots {
    void *handle;
    struct root bss, data;
};

static void *must_sym(void *handle, const char *name)
{
    void *sym = dlsym(handle, name);
    ck_assert_msg(sym != NULL, "dlsym(%s): %s", name, dlerror());
    return sym;
}

static struct dlroots dlroots_open(void)
{
    struct dlroots d;
    d.handle = dlopen(TEST_LIB_DIR "/lib_dlroots.so", RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(d.handle != NULL, "dlopen: %s", dlerror());
    d.bss = (struct root){.get = lib_get, .set = lib_set};
    d.data = d.bss;
    *(void **)&d.bss.lib_get = must_sym(d.handle, "dlroots_get_bss");
    *(void **)&d.bss.lib_set = must_sym(d.handle, "dlroots_set_bss");
    *(void **)&d.data.lib_get = must_sym(d.handle, "dlroots_get_data");
    *(void **)&d.data.lib_set = must_sym(d.handle, "dlroots_set_data");
    return d;
}

START_TEST(dlopened_library_globals)
{
    gc_collect(); /* the collector runs before the library is loaded */
    struct dlroots d = dlroots_open();
    ck_assert_ptr_null(d.bss.get(&d.bss));
    ck_assert_ptr_nonnull(d.data.get(&d.data));
    plant(&d.bss, NODES / 2, LINK_START, 106);
    plant(&d.data, NODES / 2, LINK_START, 107);
    scrub_stack();
    const struct root roots[] = {d.bss, d.data};
    survive(roots, 2, NODES / 2, LINK_START, ROUNDS, 106);
    ck_assert_int_eq(dlclose(d.handle), 0);
}
END_TEST

/* The library's segments leave the root set with it. */
START_TEST(collect_after_dlclose)
{
    uint64_t rng = 108;
    for (int i = 0; i < 10; i++) {
        struct dlroots d = dlroots_open();
        plant(&d.bss, 50, LINK_START, 108 + i);
        plant(&d.data, 50, LINK_START, 208 + i);
        litter_and_collect(&rng);
        ck_assert_int_eq(dlclose(d.handle), 0);
        litter_and_collect(&rng);
    }
}
END_TEST

/* ---- thread-local variables ---- */

static __thread void *volatile tbss_root;
static __thread void *volatile tdata_root = DATA_DUMMY;

START_TEST(tls_of_main_thread)
{
    struct root r = _i == 0 ? SLOT_ROOT(tbss_root) : SLOT_ROOT(tdata_root);
    ck_assert_ptr_eq(r.get(&r), _i == 0 ? NULL : DATA_DUMMY);
    plant_and_survive(&r, LINK_START, 109 + (uint64_t)_i);
}
END_TEST

static void *tls_worker(void *arg)
{
    struct baton *b = arg;
    struct root r = SLOT_ROOT(tbss_root);
    plant(&r, NODES, LINK_START, 111);
    scrub_stack();
    serve_checks(b, &r, NODES);
    return NULL;
}

START_TEST(tls_of_worker_thread)
{
    static struct baton b = BATON_INIT;
    pthread_t t;
    ck_assert_int_eq(gc_pthread_create(&t, NULL, tls_worker, &b), 0);
    collect_while_worker_checks(&b, ROUNDS, 111);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_msg(!b.why[0], "%s", b.why);
    ck_assert_ptr_null(tbss_root); /* the main thread's copy was never set */
}
END_TEST

/* ---- interior pointers ---- */

START_TEST(interior_pointers_only)
{
    void *volatile middle = NULL;
    struct root r = SLOT_ROOT(middle);
    plant_and_survive(&r, LINK_MIDDLE, 112);
}
END_TEST

/* ---- ranges added with gc_add_roots ---- */

#define RANGES      3
#define CHAINS      34 /* lists per range */
#define CHAIN_NODES 10

struct range {
    void **slots; /* malloc: CHAINS list heads */
    struct root roots[CHAINS];
};

static void range_plant(struct range *g, uint64_t seed)
{
    g->slots = calloc(CHAINS, sizeof *g->slots);
    ck_assert_ptr_nonnull(g->slots);
    ck_assert_int_eq(gc_add_roots(g->slots, g->slots + CHAINS), 0);
    for (unsigned c = 0; c < CHAINS; c++) {
        g->roots[c] = SLOT_ROOT(g->slots[c]);
        plant(&g->roots[c], CHAIN_NODES, LINK_START, seed + c);
    }
}

START_TEST(added_ranges)
{
    static struct range g[RANGES];
    for (unsigned i = 0; i < RANGES; i++)
        range_plant(&g[i], 1000 * (i + 1));
    scrub_stack();
    for (unsigned i = 0; i < RANGES; i++)
        survive(g[i].roots, CHAINS, CHAIN_NODES, LINK_START, ROUNDS / RANGES, 113 + i);

    /* The middle range goes; its slots still hold the heads. */
    uintptr_t *hidden = malloc(CHAINS * CHAIN_NODES * sizeof *hidden);
    size_t n = 0;
    for (unsigned c = 0; c < CHAINS; c++)
        n = hide_nodes(&g[1].roots[c], hidden, n);
    ck_assert_uint_eq(n, CHAINS * CHAIN_NODES);
    gc_remove_roots(g[1].slots, g[1].slots + CHAINS);
    scrub_stack();
    collect_until_reclaimed(116);
    expect_most_gone(hidden, n, "lists of a removed range");
    survive(g[0].roots, CHAINS, CHAIN_NODES, LINK_START, 20, 117);
    survive(g[2].roots, CHAINS, CHAIN_NODES, LINK_START, 20, 118);
    free(hidden);
}
END_TEST

/* ---- threads ---- */

struct reader {
    int fds[2];
    struct baton b;
    int woke;    /* __atomic: read returned */
    ssize_t got; /* read's result */
    int err;     /* its errno */
    unsigned char byte;
};

/* Holds the only pointer in a local while blocked in read(). */
static void *blocked_reader(void *arg)
{
    struct reader *rd = arg;
    void *volatile local = NULL;
    struct root r = SLOT_ROOT(local);
    plant(&r, NODES, LINK_START, 119);
    scrub_stack();
    baton_set(&rd->b, &rd->b.done, 1);
    rd->got = read(rd->fds[0], &rd->byte, 1);
    rd->err = errno;
    __atomic_store_n(&rd->woke, 1, __ATOMIC_RELEASE);
    char why[WHY];
    if (!list_ok(r.get(&r), NODES, LINK_START, why))
        snprintf(rd->b.why, WHY, "after read: %.200s", why);
    return NULL;
}

START_TEST(thread_blocked_in_read)
{
    static struct reader rd = {.b = BATON_INIT};
    ck_assert_int_eq(pipe(rd.fds), 0);
    pthread_t t;
    ck_assert_int_eq(gc_pthread_create(&t, NULL, blocked_reader, &rd), 0);
    baton_await(&rd.b, &rd.b.done, 1);
    uint64_t rng = 120;
    for (int r = 0; r < ROUNDS; r++) {
        litter_and_collect(&rng);
        ck_assert_msg(!__atomic_load_n(&rd.woke, __ATOMIC_ACQUIRE),
                      "read returned during collection %d: %zd, errno %d", r, rd.got, rd.err);
    }
    ck_assert_int_eq(write(rd.fds[1], "Z", 1), 1);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_msg(rd.got == 1, "read returned %zd, errno %d", rd.got, rd.err);
    ck_assert_int_eq(rd.byte, 'Z');
    ck_assert_msg(!rd.b.why[0], "%s", rd.b.why);
    close(rd.fds[0]);
    close(rd.fds[1]);
}
END_TEST

struct registrant {
    struct baton b;
    uintptr_t hidden; /* ~head, handed over by main */
    int rc[3];        /* gc_register_thread, again, and after gc_unregister_thread */
};

/* Started by plain pthread_create: unregistered until it says so. Never
 * allocates, so only gc_register_thread makes the collector see it. */
static void *late_registrant(void *arg)
{
    struct registrant *g = arg;
    g->rc[0] = gc_register_thread();
    g->rc[1] = gc_register_thread();
    gc_unregister_thread();
    g->rc[2] = gc_register_thread();
    struct root hidden = HIDDEN_ROOT(g->hidden);
    void *volatile local = hidden.get(&hidden);
    g->hidden = 0;
    struct root r = SLOT_ROOT(local);
    serve_checks(&g->b, &r, NODES);
    return NULL;
}

START_TEST(thread_registered_late)
{
    static struct registrant g = {.b = BATON_INIT};
    struct root hidden = HIDDEN_ROOT(g.hidden);
    plant(&hidden, NODES, LINK_START, 121);
    scrub_stack();
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, late_registrant, &g), 0);
    collect_while_worker_checks(&g.b, ROUNDS, 122);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(g.rc[0], 0);
    ck_assert_int_eq(g.rc[1], 0);
    ck_assert_int_eq(g.rc[2], 0);
    ck_assert_msg(!g.b.why[0], "%s", g.b.why);
}
END_TEST

#define SPAWNS 20

static struct baton spawn_baton = BATON_INIT;

/* Checks the list it was given once main says so. */
static void *check_argument(void *head)
{
    baton_await(&spawn_baton, &spawn_baton.asked, 1);
    char why[WHY];
    if (!list_ok(head, NODES / 4, LINK_START, why))
        snprintf(spawn_baton.why, WHY, "%s", why);
    return NULL;
}

static NOINLINE int spawn_with_list(pthread_t *t, uint64_t seed)
{
    return gc_pthread_create(t, NULL, check_argument, list_build(NODES / 4, LINK_START, seed));
}

/* The argument of gc_pthread_create is a reference from the moment it is
 * passed: the caller may drop its own copy at once. */
START_TEST(thread_argument)
{
    uint64_t rng = 123;
    for (int i = 0; i < SPAWNS; i++) {
        spawn_baton.asked = 0;
        pthread_t t;
        ck_assert_int_eq(spawn_with_list(&t, 124 + (uint64_t)i), 0);
        scrub_stack();
        gc_collect();
        litter_and_collect(&rng);
        litter(&rng);
        baton_set(&spawn_baton, &spawn_baton.asked, 1);
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        ck_assert_msg(!spawn_baton.why[0], "thread %d: %s", i, spawn_baton.why);
    }
}
END_TEST

/* ---- noscan memory is no root ---- */

#define NAMED 1000

/* A noscan object of `bytes` naming NAMED fresh one-node lists at `stride`
 * words, in `*slot`; ~address of each node in hidden[]. */
static NOINLINE void plant_in_noscan(void *volatile *slot, size_t bytes, size_t stride,
                                     uintptr_t *hidden)
{
    uintptr_t *words = gc_alloc_noscan(bytes);
    ck_assert_ptr_nonnull(words);
    *slot = words;
    for (size_t i = 0; i < NAMED; i++) {
        void *node = list_build(1, LINK_START, 125 + i);
        words[i * stride] = (uintptr_t)node;
        hidden[i] = ~(uintptr_t)node;
    }
}

static uint64_t words_sum(const uintptr_t *words, size_t n)
{
    uint64_t h = 0;
    for (size_t i = 0; i < n; i++)
        h = test_mix(h ^ words[i]);
    return h;
}

START_TEST(noscan_contents_are_no_roots)
{
    static const size_t bytes[] = {NAMED * sizeof(uintptr_t), 32 * NAMED * sizeof(uintptr_t)};
    size_t stride = bytes[_i] / NAMED / sizeof(uintptr_t);
    uintptr_t *hidden = malloc(NAMED * sizeof *hidden);
    void *volatile holder = NULL;
    plant_in_noscan(&holder, bytes[_i], stride, hidden);
    uint64_t sum = words_sum(holder, bytes[_i] / sizeof(uintptr_t));
    scrub_stack();
    collect_until_reclaimed(126);
    expect_most_gone(hidden, NAMED, "objects named only from noscan memory");
    ck_assert_ptr_eq(gc_base(holder), holder);
    ck_assert_uint_ge(gc_size(holder), bytes[_i]);
    ck_assert_msg(words_sum(holder, bytes[_i] / sizeof(uintptr_t)) == sum,
                  "the noscan object's contents changed");
    free(hidden);
}
END_TEST

/* ---- suite ---- */

static Suite *make_suite(void)
{
    Suite *s = suite_create("roots");

    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, TIMEOUT);
    tcase_add_test(tc, stack_local_in_deep_frame);
    tcase_add_test(tc, many_pointer_locals);
    tcase_add_test(tc, registers_of_a_running_thread);
    suite_add_tcase(s, tc);

    tc = tcase_create("globals");
    tcase_set_timeout(tc, TIMEOUT);
    tcase_add_test(tc, bss_global);
    tcase_add_test(tc, data_global);
    tcase_add_test(tc, dlopened_library_globals);
    tcase_add_test(tc, collect_after_dlclose);
    suite_add_tcase(s, tc);

    tc = tcase_create("tls");
    tcase_set_timeout(tc, TIMEOUT);
    tcase_add_loop_test(tc, tls_of_main_thread, 0, 2);
    tcase_add_test(tc, tls_of_worker_thread);
    suite_add_tcase(s, tc);

    tc = tcase_create("interior");
    tcase_set_timeout(tc, TIMEOUT);
    tcase_add_test(tc, interior_pointers_only);
    suite_add_tcase(s, tc);

    tc = tcase_create("ranges");
    tcase_set_timeout(tc, TIMEOUT);
    tcase_add_test(tc, added_ranges);
    suite_add_tcase(s, tc);

    tc = tcase_create("threads");
    tcase_set_timeout(tc, TIMEOUT);
    tcase_add_test(tc, thread_blocked_in_read);
    tcase_add_test(tc, thread_registered_late);
    tcase_add_test(tc, thread_argument);
    suite_add_tcase(s, tc);

    tc = tcase_create("noscan");
    tcase_set_timeout(tc, TIMEOUT);
    tcase_add_loop_test(tc, noscan_contents_are_no_roots, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

TEST_MAIN(make_suite)

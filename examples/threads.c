/*
 * threads.c — eight threads build, share and drop linked lists while the
 * main thread collects.
 *
 * A list is a gc_alloc'd header and a chain of items; each item points to a
 * noscan payload of MIN_PAYLOAD to MAX_PAYLOAD bytes. Every item carries a
 * checksum of its list's id, its position, its value and its payload's
 * address and size; the payload's bytes are a pattern of the item's value,
 * and the header carries a checksum of the list's id and length. Nothing is
 * ever freed by hand.
 *
 * Each worker (started with gc_pthread_create) runs ROUNDS rounds. A round
 * builds a new list, appending items through GC_WRITE, then does one of:
 *
 *   publish  swap the list into a random slot of the shared table (a global
 *            array under table_lock; globals are roots) and take over the
 *            list that was there, built by any thread: verify it and keep it
 *   keep     put the list in a random slot of the worker's own KEEP slots,
 *            an array on its stack
 *   trim     verify one of its kept lists and cut it in half (a GC_WRITE
 *            into an old item drops the tail), and drop the new list
 *   drop     drop the new list
 *
 * Lists overwritten in the table or in a kept slot become garbage too. Every
 * VERIFY_EVERY rounds a worker verifies all it keeps. A list belongs to one
 * place at a time (a table slot or one worker's kept slots), and only its
 * holder reads or changes it.
 *
 * Meanwhile the main thread calls gc_collect() in a loop, pausing
 * COLLECT_PAUSE_US between calls (automatic collections run too). When
 * every worker is done it collects once more with the workers parked on a
 * barrier (their kept lists reachable only from their stacks), verifies the
 * table, and releases the workers, which verify their kept lists and exit.
 *
 * The run allocates about 280 MiB, some 45 times what it keeps live at the
 * end, so the peak is bounded only if garbage is reclaimed. It prints a summary
 * and exits 1 on the first failed check, or when the peak resident size is
 * over PEAK_LIVE_FACTOR times the final live set plus PEAK_SLACK_MIB.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "tricolor.h"

enum {
    THREADS = 8,
    ROUNDS = 2000,           /* lists built by each worker */
    TABLE_SLOTS = 256,       /* shared table size */
    KEEP = 16,               /* lists each worker keeps on its stack */
    MAX_ITEMS = 200,         /* a list has 1 to MAX_ITEMS items */
    MIN_PAYLOAD = 16,        /* payload sizes, bytes */
    MAX_PAYLOAD = 240,       /* ... */
    VERIFY_EVERY = 64,       /* rounds between verifications of the kept lists */
    COLLECT_PAUSE_US = 5000, /* main's pause between collections */
    PEAK_LIVE_FACTOR = 8,    /* peak RSS bound: factor x final live set */
    PEAK_SLACK_MIB = 64,     /* ... plus this much */
};

struct item {
    struct item *next;
    unsigned char *payload; /* noscan, size bytes: payload_byte(value, i) */
    uint32_t index;         /* position in the list */
    uint32_t size;
    uint64_t value;
    uint64_t check; /* item_check(list id, this item); next is not covered */
};

struct list {
    struct item *head;
    uint64_t id;     /* builder's number << 32 | builder's round */
    uint64_t length; /* items reachable from head */
    uint64_t check;  /* list_check(this list) */
};

/* Lists and the usable bytes they hold. */
struct tally {
    size_t lists, bytes;
};

/* Per-worker counters: written by the worker, read by main after the join. */
struct worker {
    _Alignas(64) int number; /* a cache line each: `allocated` is hot */
    uint64_t rng;
    size_t built, published, received, kept, trimmed, dropped;
    size_t verified;     /* lists verified while running */
    size_t allocated;    /* usable bytes of every object it allocated */
    struct tally at_end; /* its kept lists once every worker is done */
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct list *table[TABLE_SLOTS]; /* protected by table_lock */

static struct worker workers[THREADS];
static atomic_int working = THREADS; /* workers still running rounds */
static pthread_barrier_t finish;     /* main and workers, used twice at the end */

/* One fprintf, so that two failing threads do not mix their lines. */
static __attribute__((noreturn, format(printf, 1, 2))) void fail(const char *fmt, ...)
{
    char message[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    fprintf(stderr, "threads: %s\n", message);
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

static uint64_t next_random(struct worker *w)
{
    w->rng += 0x9E3779B97F4A7C15u;
    return mix(w->rng);
}

static unsigned char payload_byte(uint64_t value, size_t i)
{
    return (unsigned char)((value >> (i % 8 * 8)) ^ i);
}

static uint64_t item_check(uint64_t list_id, const struct item *it)
{
    uint64_t h = mix(list_id ^ it->index) ^ it->value;
    return mix(h ^ (uintptr_t)it->payload ^ ((uint64_t)it->size << 48));
}

static uint64_t list_check(const struct list *l)
{
    return mix(l->id ^ mix(l->length));
}

/* ---- building and changing lists ---- */

static void *counted(struct worker *w, void *object)
{
    checked(object);
    w->allocated += gc_size(object);
    return object;
}

static struct item *new_item(struct worker *w, uint64_t list_id, uint32_t index)
{
    struct item *it = counted(w, gc_alloc(sizeof *it));
    uint64_t r = next_random(w);
    it->size = MIN_PAYLOAD + (uint32_t)(r % (MAX_PAYLOAD - MIN_PAYLOAD + 1));
    it->value = r;
    it->index = index;
    GC_WRITE(it->payload, counted(w, gc_alloc_noscan(it->size)));
    for (size_t i = 0; i < it->size; i++)
        it->payload[i] = payload_byte(it->value, i);
    it->check = item_check(list_id, it);
    return it;
}

/* A new list, built by appending: each item is linked from the one before. */
static struct list *build_list(struct worker *w, uint64_t round)
{
    struct list *l = counted(w, gc_alloc(sizeof *l));
    struct item *tail = NULL;
    l->id = (uint64_t)w->number << 32 | round;
    l->length = 1 + next_random(w) % MAX_ITEMS;
    for (uint32_t i = 0; i < l->length; i++) {
        struct item *it = new_item(w, l->id, i);
        if (tail)
            GC_WRITE(tail->next, it);
        else
            GC_WRITE(l->head, it);
        tail = it;
    }
    l->check = list_check(l);
    w->built++;
    return l;
}

/* Keep the first half of `l`; the rest becomes garbage. */
static void trim(struct list *l)
{
    if (l->length < 2)
        return;
    struct item *last = l->head;
    for (uint64_t i = 1; i < l->length / 2; i++)
        last = last->next;
    GC_WRITE(last->next, NULL);
    l->length /= 2;
    l->check = list_check(l);
}

/* ---- verification ---- */

static void verify_item(const char *where, const struct list *l, const struct item *it,
                        uint32_t index)
{
    unsigned long long id = l->id;
    if (gc_base(it) != it)
        fail("%s: list %llx, item %u: not an allocated object", where, id, index);
    if (it->index != index || it->check != item_check(l->id, it))
        fail("%s: list %llx, item %u: bad checksum", where, id, index);
    if (gc_base(it->payload) != it->payload || gc_size(it->payload) < it->size)
        fail("%s: list %llx, item %u: payload not allocated", where, id, index);
    for (size_t i = 0; i < it->size; i++)
        if (it->payload[i] != payload_byte(it->value, i))
            fail("%s: list %llx, item %u: payload byte %zu changed", where, id, index, i);
}

/* Check the list whole; returns the usable bytes it holds. */
static size_t verify_list(const struct list *l, const char *where)
{
    if (gc_base(l) != l || l->check != list_check(l))
        fail("%s: list %p: bad header", where, (const void *)l);
    size_t bytes = gc_size(l);
    uint32_t n = 0;
    for (const struct item *it = l->head; it; it = it->next, n++) {
        if (n == l->length)
            fail("%s: list %llx: more than %u items", where, (unsigned long long)l->id, n);
        verify_item(where, l, it, n);
        bytes += gc_size(it) + gc_size(it->payload);
    }
    if (n != l->length)
        fail("%s: list %llx: %u items, %llu expected", where, (unsigned long long)l->id, n,
             (unsigned long long)l->length);
    return bytes;
}

static struct tally verify_kept(const struct worker *w, struct list *const kept[KEEP])
{
    struct tally t = {0, 0};
    char where[32];
    snprintf(where, sizeof where, "worker %d", w->number);
    for (int k = 0; k < KEEP; k++) {
        if (kept[k]) {
            t.bytes += verify_list(kept[k], where);
            t.lists++;
        }
    }
    return t;
}

static struct tally verify_table(void)
{
    struct tally t = {0, 0};
    pthread_mutex_lock(&table_lock);
    for (int s = 0; s < TABLE_SLOTS; s++) {
        if (table[s]) {
            t.bytes += verify_list(table[s], "table");
            t.lists++;
        }
    }
    pthread_mutex_unlock(&table_lock);
    return t;
}

/* ---- the workers ---- */

/* Put `l` in the table's slot `s`; returns the list that was there. */
static struct list *swap_into_table(struct list *l, uint64_t s)
{
    pthread_mutex_lock(&table_lock);
    struct list *old = table[s];
    table[s] = l; /* a global: no barrier */
    pthread_mutex_unlock(&table_lock);
    return old;
}

static void play_round(struct worker *w, struct list *kept[KEEP], uint64_t round)
{
    struct list *l = build_list(w, round);
    uint64_t r = next_random(w), slot = (r >> 8) % KEEP;
    switch (r % 4) {
    case 0:
        w->published++;
        l = swap_into_table(l, (r >> 16) % TABLE_SLOTS);
        if (l) {
            verify_list(l, "taken from the table");
            w->received++;
            kept[slot] = l;
        }
        break;
    case 1:
        kept[slot] = l;
        w->kept++;
        break;
    case 2:
        if (kept[slot]) {
            verify_list(kept[slot], "before a trim");
            trim(kept[slot]);
            w->trimmed++;
        }
        w->dropped++;
        break;
    default:
        w->dropped++;
    }
}

static void *work(void *arg)
{
    struct worker *w = arg;
    struct list *kept[KEEP] = {NULL}; /* on the stack: a root while we run */
    for (uint64_t round = 0; round < ROUNDS; round++) {
        play_round(w, kept, round);
        if (round % VERIFY_EVERY == VERIFY_EVERY - 1)
            w->verified += verify_kept(w, kept).lists;
    }
    atomic_fetch_sub(&working, 1);
    pthread_barrier_wait(&finish); /* main collects, then verifies the table */
    pthread_barrier_wait(&finish);
    w->at_end = verify_kept(w, kept);
    return NULL;
}

/* ---- main: start, collect, check ---- */

static void pause_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

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

static void start_workers(pthread_t tid[THREADS])
{
    if (pthread_barrier_init(&finish, NULL, THREADS + 1) != 0)
        fail("cannot make a barrier");
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (struct worker){.number = i, .rng = 0x7472696331u * (uint64_t)(i + 1)};
        if (gc_pthread_create(&tid[i], NULL, work, &workers[i]) != 0)
            fail("cannot start worker %d", i);
    }
}

/* Collect until the workers are done, once more with them parked, check
 * the table, then let them check their own lists. Returns the collections. */
static unsigned collect_while_working(pthread_t tid[THREADS], struct tally *in_table)
{
    unsigned collections = 0;
    for (; atomic_load(&working) > 0; collections++) {
        gc_collect();
        pause_us(COLLECT_PAUSE_US);
    }
    pthread_barrier_wait(&finish);
    gc_collect();
    *in_table = verify_table();
    pthread_barrier_wait(&finish);
    for (int i = 0; i < THREADS; i++)
        if (pthread_join(tid[i], NULL) != 0)
            fail("cannot join worker %d", i);
    return collections + 1;
}

/* All workers' counters added up. */
static struct worker sum_workers(void)
{
    struct worker t = {.number = -1};
    for (int i = 0; i < THREADS; i++) {
        const struct worker *w = &workers[i];
        t.built += w->built, t.published += w->published, t.received += w->received;
        t.kept += w->kept, t.trimmed += w->trimmed, t.dropped += w->dropped;
        t.verified += w->verified, t.allocated += w->allocated;
        t.at_end.lists += w->at_end.lists, t.at_end.bytes += w->at_end.bytes;
    }
    return t;
}

static void report(unsigned collections, const struct tally *in_table, double ms)
{
    struct worker t = sum_workers();
    size_t live = in_table->bytes + t.at_end.bytes;
    double rss = peak_rss_mib(), bound = PEAK_LIVE_FACTOR * mib(live) + PEAK_SLACK_MIB;
    printf("tricolor threads: %d threads share and drop linked lists, main collects\n"
           "  lists     %zu built: %zu published (%zu taken back), %zu kept, %zu trims,\n"
           "            %zu dropped\n"
           "  collected %u times, the last with every worker parked\n",
           THREADS, t.built, t.published, t.received, t.kept, t.trimmed, t.dropped, collections);
    printf("  verified  %zu lists while running, then the %zu in the table and the %zu kept\n"
           "  allocated %.1f MiB, %.0fx the final live set of %.1f MiB\n"
           "  peak RSS  %.1f MiB, bound %d x live + %d MiB = %.1f MiB\n"
           "  time      %.0f ms\n",
           t.verified + t.received + t.trimmed, in_table->lists, t.at_end.lists, mib(t.allocated),
           (double)t.allocated / (double)live, mib(live), rss, PEAK_LIVE_FACTOR, PEAK_SLACK_MIB,
           bound, ms);
    if (rss > bound)
        fail("peak RSS %.1f MiB is over the bound %.1f MiB: garbage was not reclaimed", rss, bound);
}

int main(void)
{
    struct timespec t0;
    pthread_t tid[THREADS];
    struct tally in_table;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    start_workers(tid);
    unsigned collections = collect_while_working(tid, &in_table);
    report(collections, &in_table, ms_since(&t0));
    return 0;
}

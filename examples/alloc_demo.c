/*
 * alloc_demo.c — a tour of the tricolor allocation API (what `make run` runs).
 *
 * The program keeps a registry of records whose every byte lives in the
 * tricolor heap, and goes through four steps:
 *
 *   1. Build. Create RECORDS records. A record is a gc_alloc'd struct; its
 *      name is a gc_strdup'd string, which lands in noscan memory (the
 *      collector never looks inside it). Records are chained in a list and
 *      indexed by id in an array that doubles with gc_realloc as it fills.
 *      Every pointer stored into a heap object goes through GC_WRITE.
 *   2. Free half. The main thread unlinks the records with odd ids and hands
 *      them, as a list, to a second thread, which gc_frees each record and
 *      its name: an object may be freed by any thread.
 *   3. Refill. Create RECORDS / 2 new records. They reuse the freed slots, so
 *      the peak resident size barely moves.
 *   4. Verify. Check every record still listed, and that exactly the
 *      expected ones are.
 *
 * It prints a summary and exits 0, or names the first bad record and exits 1.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "tricolor.h"

enum { RECORDS = 300000, FIRST_CAPACITY = 1024 };

struct record {
    struct record *next; /* the registry's list, newest first */
    char *name;          /* "record-<id>", noscan */
    uint64_t id;
    uint64_t value; /* value_of(id) */
};

/* Lives on main's stack: stores into it need no GC_WRITE, but stores into
 * the heap objects it points to do. */
struct registry {
    struct record *list;   /* every live record */
    struct record **by_id; /* capacity slots: by_id[id] is the record, or NULL */
    size_t capacity;
    size_t live;
    unsigned grows; /* gc_realloc doublings of by_id */
};

/* Objects allocated or freed, and their usable bytes (from gc_size). */
struct tally {
    size_t objects, bytes;
};

static __attribute__((noreturn, format(printf, 1, 2))) void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "alloc_demo: ");
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

static void count(struct tally *t, const void *object)
{
    t->objects++;
    t->bytes += gc_size(object);
}

static uint64_t value_of(uint64_t id)
{
    uint64_t x = id + 0x9E3779B97F4A7C15u;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9u;
    return x ^ (x >> 31);
}

static void name_of(uint64_t id, char name[32])
{
    snprintf(name, 32, "record-%llu", (unsigned long long)id);
}

static void grow(struct registry *g)
{
    /* gc_realloc keeps the old slots and zeroes the new ones. */
    g->by_id = checked(gc_realloc(g->by_id, 2 * g->capacity * sizeof *g->by_id));
    g->capacity *= 2;
    g->grows++;
}

static void add_record(struct registry *g, uint64_t id, struct tally *t)
{
    char name[32];
    name_of(id, name);
    struct record *r = checked(gc_alloc(sizeof *r));
    GC_WRITE(r->name, checked(gc_strdup(name)));
    r->id = id;
    r->value = value_of(id);
    count(t, r);
    count(t, r->name);
    while (id >= g->capacity)
        grow(g);
    GC_WRITE(g->by_id[id], r);
    GC_WRITE(r->next, g->list);
    g->list = r;
    g->live++;
}

/* Unlink the records with odd ids; return them chained through `next`. */
static struct record *remove_odd(struct registry *g)
{
    struct record *removed = NULL, **link = &g->list;
    while (*link) {
        struct record *r = *link;
        if (r->id % 2 == 0) {
            link = &r->next;
            continue;
        }
        GC_WRITE(*link, r->next);
        GC_WRITE(g->by_id[r->id], NULL);
        GC_WRITE(r->next, removed);
        removed = r;
        g->live--;
    }
    return removed;
}

struct free_job {
    struct record *list; /* records to free, chained through `next` */
    struct tally freed;
};

/* The second thread: free every record of the list and its name. */
static void *free_records(void *arg)
{
    struct free_job *job = arg;
    for (struct record *r = job->list, *next; r; r = next) {
        next = r->next;
        count(&job->freed, r->name);
        count(&job->freed, r);
        gc_free(r->name);
        gc_free(r);
    }
    return NULL;
}

static void free_odd_records(struct registry *g, struct tally *freed)
{
    struct free_job job = {.list = remove_odd(g)};
    pthread_t freer;
    if (pthread_create(&freer, NULL, free_records, &job) != 0 || pthread_join(freer, NULL) != 0)
        fail("cannot run the freeing thread");
    *freed = job.freed;
}

/* Every listed record is intact and indexed, and the listed ids are exactly
 * the even ones below `first_new` and all of [first_new, end). */
static void verify(const struct registry *g, uint64_t first_new, uint64_t end)
{
    char name[32];
    size_t listed = 0;
    for (const struct record *r = g->list; r; r = r->next, listed++) {
        name_of(r->id, name);
        if (r->value != value_of(r->id) || strcmp(r->name, name) != 0)
            fail("record %llu: wrong contents", (unsigned long long)r->id);
        if (r->id >= end || (r->id < first_new && r->id % 2) || g->by_id[r->id] != r)
            fail("record %llu: listed but should be gone", (unsigned long long)r->id);
    }
    size_t expected = first_new / 2 + (end - first_new);
    if (listed != expected || listed != g->live)
        fail("%zu records listed, %zu expected", listed, expected);
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

int main(void)
{
    struct timespec t0, t1;
    struct tally made = {0, 0}, freed;
    struct registry g = {.capacity = FIRST_CAPACITY};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    g.by_id = checked(gc_calloc(FIRST_CAPACITY, sizeof *g.by_id));

    for (uint64_t id = 0; id < RECORDS; id++)
        add_record(&g, id, &made);
    double rss_built = peak_rss_mib();
    free_odd_records(&g, &freed);
    size_t bytes_built = made.bytes;
    for (uint64_t id = RECORDS; id < RECORDS + RECORDS / 2; id++)
        add_record(&g, id, &made);
    double refill = mib(made.bytes - bytes_built), rss_end = peak_rss_mib();
    verify(&g, RECORDS, RECORDS + RECORDS / 2);
    clock_gettime(CLOCK_MONOTONIC, &t1);

    printf("tricolor alloc_demo: a registry of records in the collected heap\n"
           "  built     %d records: gc_alloc'd structs with gc_strdup'd (noscan) names,\n"
           "            listed and indexed; the index doubled %u times by gc_realloc\n"
           "  freed     %d records and their names with gc_free, from a second thread\n"
           "  refilled  %d new records (%.1f MiB)\n"
           "  verified  %zu records: every id, value and name as written\n",
           RECORDS, g.grows, RECORDS / 2, RECORDS / 2, refill, g.live);
    printf("  objects   %zu records and names allocated (%.1f MiB), %zu freed (%.1f MiB)\n",
           made.objects, mib(made.bytes), freed.objects, mib(freed.bytes));
    printf("  peak RSS  %.1f MiB after building, %.1f MiB at the end: %s\n", rss_built, rss_end,
           rss_end - rss_built < refill / 2 ? "the refill reused freed memory"
                                            : "the refill needed new memory");
    printf("  time      %.0f ms\n",
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-6);
    return 0;
}

/*
 * heap.c — the page heap (see heap.h for the design and the page table
 * invariant). Everything here runs under the heap lock except heap_init and
 * the lock-free lookups in heap.h.
 */
#define _GNU_SOURCE /* PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP */
#include "heap.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "../gc/platform.h"
#include "counters.h"

#define PAGE             ((size_t)SC_PAGE_SIZE)
#define RESERVE_MAX      ((size_t)1 << 40) /* 1 TiB: the most heap one process gets */
#define RESERVE_MIN      ((size_t)4 << 30) /* below this, give up */
#define META_CHUNK       ((size_t)1 << 20)
#define BITS_CLASSES     (SPAN_BITMAP_WORDS_MAX + 1)

uintptr_t heap_base __attribute__((section("tricolor_private")));
AO_t heap_sweepgen = 2;
AO_t heap_live;
AO_t heap_trigger = ~(AO_t)0;
AO_t heap_used;
AO_t *heap_spans;

/* Free runs by size. */
struct run_index {
    struct span_list small[HEAP_SMALL_RUN_PAGES];  /* runs of exactly i pages */
    uint64_t nonempty[HEAP_SMALL_RUN_PAGES / 64]; /* bit i: small[i] nonempty */
    struct span_list large;                       /* runs of >= HEAP_SMALL_RUN_PAGES */
};

static struct {
    pthread_mutex_t lock;
    size_t reserved;             /* immutable after init */
    struct run_index runs[2];    /* [free_unbacked]: by whether the first page has memory */
    /* In-use large spans: swept for the current heap_sweepgen, or not yet
     * (a large span is on `unswept` exactly while its sweepgen lags). */
    struct span_list large, unswept;
    unsigned world; /* the world lock (heap.h): readers, plus WORLD_FROZEN; futex word */
    struct span *span_pool;                          /* dead span structs, linked by next */
    void *bits_pool[BITS_CLASSES];                   /* freed bitmaps by nwords, linked */
    char *meta_next, *meta_end;                      /* metadata bump region */
    uint32_t *zeroed_base; /* per arena: pages from here up never handed out */
    uint64_t **released;   /* per arena: bit i set while free page i is returned to the OS */
    size_t pages_in_use, pages_free, spans_in_use;
    size_t pages_touched;   /* pages below the zeroed bases: ever handed out */
    size_t pages_released;  /* released bits set: free pages returned to the OS */
    size_t pages_releasing; /* pages in SPAN_RELEASING runs */
} heap = {
    .lock = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP,
};

void heap_lock(void)
{
    pthread_mutex_lock(&heap.lock);
}

void heap_unlock(void)
{
    pthread_mutex_unlock(&heap.lock);
}

/* The world lock is a futex word: the count of threads inside the allocator
 * plus WORLD_FROZEN while the collector holds or waits for it. A new reader
 * waits while the bit is set (the collector is never starved); the
 * collector sets the bit, then waits for the count to drain. Waiting is a
 * raw futex system call, not a pthread lock, so a waiting thread still
 * takes the stop signal at once, sanitizers included. */
#define WORLD_FROZEN 0x80000000u

AO_t heap_marking;

__thread unsigned heap_inside __attribute__((tls_model("initial-exec")));

/* heap_inside is raised before the claim and lowered after the release, so
 * a signal finds it raised whenever the thread may count in the world word
 * (the compiler barriers keep those stores in place for a handler on the
 * same thread). */
void heap_enter(void)
{
    for (;;) {
        unsigned v = AO_int_load_acquire(&heap.world);
        if (v & WORLD_FROZEN) {
            if (!heap_inside)
                heap_stop_point();
            os_futex_wait(&heap.world, v);
            continue;
        }
        heap_inside++;
        AO_compiler_barrier();
        if (AO_int_compare_and_swap_full(&heap.world, v, v + 1))
            return;
        AO_compiler_barrier();
        heap_inside--;
    }
}

void heap_leave(void)
{
    unsigned v = AO_int_fetch_and_add_full(&heap.world, (unsigned)-1) - 1;
    AO_compiler_barrier();
    heap_inside--;
    AO_compiler_barrier();
    if (v == WORLD_FROZEN)
        os_futex_wake_all(&heap.world); /* the last reader out lets the collector in */
    if ((v & WORLD_FROZEN) && !heap_inside)
        heap_stop_point();
}

void heap_freeze_begin(void)
{
    for (;;) {
        unsigned v = AO_int_load_acquire(&heap.world);
        if (v & WORLD_FROZEN)
            os_futex_wait(&heap.world, v); /* another freezer (fork) */
        else if (AO_int_compare_and_swap_full(&heap.world, v, v | WORLD_FROZEN))
            return;
    }
}

void heap_freeze_wait(void)
{
    for (unsigned v; (v = AO_int_load_acquire(&heap.world)) != WORLD_FROZEN;)
        os_futex_wait(&heap.world, v);
}

void heap_freeze(void)
{
    heap_freeze_begin();
    heap_freeze_wait();
}

/* Only the bit: a stop that failed thaws with threads still inside. */
void heap_thaw(void)
{
    AO_int_fetch_and_add_full(&heap.world, (unsigned)-WORLD_FROZEN);
    os_futex_wake_all(&heap.world);
}

void heap_thaw_in_child(void)
{
    heap_thaw();
}

int heap_init(void)
{
    size_t size = RESERVE_MAX;
    void *base = NULL, *table = NULL;
    for (; size >= RESERVE_MIN; size /= 2) {
        base = os_reserve(size);
        table = base ? os_reserve((size / PAGE) * sizeof(AO_t)) : NULL;
        if (table)
            break;
        if (base)
            os_release(base, size);
        base = NULL;
    }
    if (!base) {
        errno = ENOMEM;
        return -1;
    }
    size_t arenas = size / HEAP_ARENA_SIZE;
    heap.zeroed_base = os_alloc_meta(arenas * sizeof *heap.zeroed_base);
    heap.released = heap.zeroed_base ? os_alloc_meta(arenas * sizeof *heap.released) : NULL;
    if (!heap.released) {
        if (heap.zeroed_base)
            os_free_meta(heap.zeroed_base, arenas * sizeof *heap.zeroed_base);
        os_release(table, (size / PAGE) * sizeof(AO_t));
        os_release(base, size);
        errno = ENOMEM;
        return -1;
    }
    heap.reserved = size;
    heap_spans = table;
    heap_base = (uintptr_t)base;
    return 0;
}

/* ---- metadata: span structs and bitmaps, never returned to the OS ---- */

/* Cache-line aligned, so that the metadata of spans owned by different
 * threads never shares a line. */
static void *meta_alloc(size_t size)
{
    size = (size + OS_CACHE_LINE - 1) & ~(size_t)(OS_CACHE_LINE - 1);
    if ((size_t)(heap.meta_end - heap.meta_next) < size) {
        char *chunk = os_alloc_meta(META_CHUNK);
        if (!chunk)
            return NULL;
        heap.meta_next = chunk;
        heap.meta_end = chunk + META_CHUNK;
    }
    void *p = heap.meta_next;
    heap.meta_next += size;
    return p;
}

void *heap_meta_alloc(size_t size)
{
    heap_lock();
    void *p = meta_alloc(size);
    heap_unlock();
    return p;
}

/* What the bitmap pointers of a span struct that describes no objects point
 * at: lock-free readers that raced with its reuse find empty bitmaps, never
 * a NULL pointer. */
static AO_t no_bits[SPAN_BITMAP_WORDS_MAX];

/* What the mark and check bitmap pointers of such a span point at: a marker
 * that raced with the span's death sets its bit here, where no one looks
 * (and no_bits stays empty). */
static AO_t sink_bits[SPAN_BITMAP_WORDS_MAX];

static struct span *span_new(void)
{
    struct span *s = heap.span_pool;
    if (s)
        heap.span_pool = s->next;
    else if (!(s = meta_alloc(sizeof *s)))
        return NULL;
    memset(s, 0, sizeof *s);
    s->alloc_bits = s->freed_bits = no_bits;
    s->mark_bits = s->check_bits = sink_bits;
    return s;
}

static void span_dispose(struct span *s)
{
    AO_store(&s->state, SPAN_DEAD);
    s->next = heap.span_pool;
    heap.span_pool = s;
}

/* 4 * nwords zeroed words: alloc, mark, freed and check bitmaps. */
static uint64_t *bits_new(unsigned nwords)
{
    void **head = &heap.bits_pool[nwords];
    uint64_t *b = *head;
    if (b) {
        *head = *(void **)b;
        memset(b, 0, 4 * nwords * sizeof *b);
        return b;
    }
    return meta_alloc(4 * nwords * sizeof *b);
}

static void bits_dispose(uint64_t *b, unsigned nwords)
{
    *(void **)b = heap.bits_pool[nwords];
    heap.bits_pool[nwords] = b;
}

/* ---- page table ---- */

static size_t page_of(uintptr_t addr)
{
    return (addr - heap_base) / PAGE;
}

static void table_set(size_t page, size_t npages, struct span *s)
{
    for (size_t i = 0; i < npages; i++)
        AO_store(&heap_spans[page + i], (AO_t)s);
}

static struct span *table_get(size_t page)
{
    return (struct span *)heap_spans[page];
}

/* ---- free runs ----
 * Two indexes, by whether a run's first page is backed by memory (touched,
 * and not returned to the OS since): a span is carved from the first
 * pages of its run, and best fit looks among the backed runs first. Pages
 * just returned are not taken back while backed ones will do: the program
 * would pay a fault per page and grow again, and the scavenger would
 * return them again. A run keeps its index while free: only carving
 * raises an arena's zeroed base, and a run whose first page lies above
 * the base holds the rest of its arena. */

static bool page_unbacked(size_t page);

static void run_insert(struct span *r)
{
    AO_store(&r->state, SPAN_FREE);
    size_t first = page_of(r->start);
    table_set(first, 1, r);
    table_set(first + r->npages - 1, 1, r);
    r->free_unbacked = page_unbacked(first);
    struct run_index *x = &heap.runs[r->free_unbacked];
    if (r->npages < HEAP_SMALL_RUN_PAGES) {
        span_list_push(&x->small[r->npages], r);
        x->nonempty[r->npages / 64] |= UINT64_C(1) << (r->npages % 64);
    } else {
        span_list_push(&x->large, r);
    }
    heap.pages_free += r->npages;
}

/* Take a run out of the free index. Its boundary table entries are cleared:
 * whoever removes it decides what its pages become. */
static void run_remove(struct span *r)
{
    struct run_index *x = &heap.runs[r->free_unbacked];
    if (r->npages < HEAP_SMALL_RUN_PAGES) {
        struct span_list *l = &x->small[r->npages];
        span_list_remove(l, r);
        if (!l->first)
            x->nonempty[r->npages / 64] &= ~(UINT64_C(1) << (r->npages % 64));
    } else {
        span_list_remove(&x->large, r);
    }
    size_t first = page_of(r->start);
    table_set(first, 1, NULL);
    table_set(first + r->npages - 1, 1, NULL);
    heap.pages_free -= r->npages;
}

static struct span *best_large_run(const struct run_index *x, size_t npages)
{
    struct span *best = NULL;
    for (struct span *r = x->large.first; r; r = r->next) {
        if (r->npages < npages)
            continue;
        if (!best || r->npages < best->npages ||
            (r->npages == best->npages && r->start < best->start))
            best = r;
    }
    return best;
}

/* Best fit in one index: its smallest run of at least npages pages. */
static struct span *best_run(const struct run_index *x, size_t npages)
{
    for (size_t i = npages; i < HEAP_SMALL_RUN_PAGES; i = (i | 63) + 1) {
        uint64_t bits = x->nonempty[i / 64] & (~UINT64_C(0) << (i % 64));
        if (bits)
            return x->small[(i & ~(size_t)63) + (size_t)__builtin_ctzll(bits)].first;
    }
    return best_large_run(x, npages);
}

/* The run to carve npages from: best fit among the runs that start
 * backed, else among the others. */
static struct span *run_find(size_t npages)
{
    struct span *r = best_run(&heap.runs[0], npages);
    return r ? r : best_run(&heap.runs[1], npages);
}

/* The free run whose last page is just below `start`, or NULL. */
static struct span *free_run_before(uintptr_t start)
{
    if (start == heap_base)
        return NULL;
    struct span *r = table_get(page_of(start) - 1);
    return r && AO_load(&r->state) == SPAN_FREE ? r : NULL;
}

/* The free run starting at `start`, or NULL. */
static struct span *free_run_at(uintptr_t start)
{
    if (start - heap_base >= heap_used)
        return NULL;
    struct span *r = table_get(page_of(start));
    return r && AO_load(&r->state) == SPAN_FREE ? r : NULL;
}

/* Enter the pages of `r` (not in the table) as free, merged with free
 * neighbours so that no two free runs touch. */
static void run_insert_coalesced(struct span *r)
{
    struct span *before = free_run_before(r->start);
    if (before) {
        run_remove(before);
        r->start = before->start;
        r->npages += before->npages;
        span_dispose(before);
    }
    struct span *after = free_run_at(r->start + r->npages * PAGE);
    if (after) {
        run_remove(after);
        r->npages += after->npages;
        span_dispose(after);
    }
    run_insert(r);
}

/* ---- pages returned to the OS ----
 * A free page is either backed by memory or returned (its released bit
 * set). Only free pages are ever returned, and a page handed out again
 * loses its bit: pages_released <= pages_free + pages_releasing. */

/* Released bitmaps for arenas [first, first + n) (zeroed metadata). */
static bool released_bits_for(size_t first, size_t n)
{
    for (size_t a = first; a < first + n; a++)
        if (!heap.released[a] && !(heap.released[a] = meta_alloc(HEAP_ARENA_PAGES / 8)))
            return false;
    return true;
}

/* Set (`set`) or clear the released bits of pages [first, first + n);
 * returns how many changed. Arenas hold whole bitmap words. */
static size_t released_change(size_t first, size_t n, bool set)
{
    size_t changed = 0;
    for (size_t p = first, end = first + n; p < end;) {
        uint64_t *w = &heap.released[p / HEAP_ARENA_PAGES][p % HEAP_ARENA_PAGES / 64];
        size_t bit = p % 64, k = end - p < 64 - bit ? end - p : 64 - bit;
        uint64_t mask = (k == 64 ? ~UINT64_C(0) : (UINT64_C(1) << k) - 1) << bit;
        changed += (size_t)__builtin_popcountll(set ? mask & ~*w : mask & *w);
        *w = set ? *w | mask : *w & ~mask;
        p += k;
    }
    return changed;
}

static bool page_released(size_t page)
{
    return heap.released[page / HEAP_ARENA_PAGES][page % HEAP_ARENA_PAGES / 64] >> (page % 64) & 1;
}

/* Returned, or never handed out (at or above its arena's zeroed base). */
static bool page_unbacked(size_t page)
{
    return page % HEAP_ARENA_PAGES >= heap.zeroed_base[page / HEAP_ARENA_PAGES] ||
           page_released(page);
}

/* Commit enough arenas at the top of the heap for a run of npages. */
static bool grow(size_t npages)
{
    size_t used = heap_used;
    size_t bytes = (npages * PAGE + HEAP_ARENA_SIZE - 1) / HEAP_ARENA_SIZE * HEAP_ARENA_SIZE;
    if (npages > heap.reserved / PAGE || bytes > heap.reserved - used)
        return false;
    AO_t *table = &heap_spans[used / PAGE];
    if (!released_bits_for(used / HEAP_ARENA_SIZE, bytes / HEAP_ARENA_SIZE) ||
        os_commit((char *)table, bytes / PAGE * sizeof(AO_t)) != 0 ||
        os_commit((void *)(heap_base + used), bytes) != 0)
        return false;
    struct span *r = span_new();
    if (!r)
        return false;
    r->start = heap_base + used;
    r->npages = bytes / PAGE;
    AO_store_release(&heap_used, used + bytes);
    run_insert_coalesced(r);
    return true;
}

/* ---- spans in use ---- */

/* Pages fresh from the kernel are zero, and arenas are handed out from the
 * bottom: per arena, no page at or above zeroed_base was ever in a span.
 * Returns whether any page of the new span [start, +npages) may hold old
 * data, and raises the bases of the arenas it covers past it. */
static uint8_t take_zeroed(uintptr_t start, size_t npages)
{
    size_t first = page_of(start), end = first + npages;
    uint8_t dirty = 0;
    for (size_t a = first / HEAP_ARENA_PAGES; a * HEAP_ARENA_PAGES < end; a++) {
        size_t lo = a * HEAP_ARENA_PAGES, from = first > lo ? first - lo : 0;
        size_t to = end - lo < HEAP_ARENA_PAGES ? end - lo : HEAP_ARENA_PAGES;
        dirty |= from < heap.zeroed_base[a];
        if (to > heap.zeroed_base[a]) {
            heap.pages_touched += to - heap.zeroed_base[a];
            heap.zeroed_base[a] = (uint32_t)to;
        }
    }
    return dirty;
}

/* Cut the first npages of free run r into a span for spanclass. */
static struct span *carve(struct span *r, size_t npages, unsigned spanclass)
{
    uint64_t *bits = bits_new(span_bitmap_words(spanclass, npages));
    struct span *rest = r->npages > npages ? span_new() : NULL;
    if (!bits || (r->npages > npages && !rest))
        return NULL;
    run_remove(r);
    if (rest) {
        rest->start = r->start + npages * PAGE;
        rest->npages = r->npages - npages;
        run_insert(rest);
    }
    span_init(r, r->start, npages, spanclass, bits);
    heap.pages_released -= released_change(page_of(r->start), npages, false);
    r->needzero = take_zeroed(r->start, npages);
    AO_store(&r->unzeroed, sc_class_of_span_class(spanclass) == 0 && r->needzero);
    AO_store(&r->sweepgen, heap_sweepgen);
    if (sc_class_of_span_class(spanclass) == 0)
        span_list_push(&heap.large, r);
    table_set(page_of(r->start), npages, r);
    AO_store_release(&r->state, SPAN_IN_USE);
    heap.pages_in_use += npages;
    heap.spans_in_use++;
    return r;
}

struct span *heap_alloc(size_t npages, unsigned spanclass)
{
    heap_lock();
    struct span *r = run_find(npages);
    if (!r && grow(npages))
        r = run_find(npages);
    struct span *s = r ? carve(r, npages, spanclass) : NULL;
    heap_unlock();
    if (!s)
        errno = ENOMEM;
    else if (!s->needzero && sc_class_of_span_class(spanclass) != 0)
        os_prefault((void *)s->start, npages * PAGE); /* fresh pages; small objects fill them */
    return s;
}

static void free_locked(struct span *s)
{
    if (sc_class_of_span_class(s->spanclass) == 0)
        span_list_remove(AO_load(&s->sweepgen) == heap_sweepgen ? &heap.large : &heap.unswept, s);
    AO_store(&s->state, SPAN_FREE);
    bits_dispose((uint64_t *)s->alloc_bits, s->nwords);
    s->alloc_bits = s->freed_bits = no_bits;
    s->mark_bits = s->check_bits = sink_bits;
    heap.pages_in_use -= s->npages;
    heap.spans_in_use--;
    table_set(page_of(s->start), s->npages, NULL);
    run_insert_coalesced(s);
}

void heap_free(struct span *s)
{
    heap_lock();
    free_locked(s);
    heap_unlock();
}

size_t heap_sweep_large(size_t pages, size_t budget)
{
    size_t freed = 0;
    AO_t sg = heap_sweepgen;
    heap_lock();
    for (struct span *s; freed < pages && budget-- && (s = heap.unswept.first);) {
        /* The freed bit decides between this sweep and a racing gc_free. */
        if (!(s->mark_bits[0] & 1) && !span_mark_freed(s, 0, 1)) {
            freed += s->npages;
            if (span_clobber_free)
                span_clobber((void *)s->start, s->elemsize); /* zeroed when handed out again */
            counters_large_swept(s->elemsize);
            free_locked(s);
            continue;
        }
        span_list_remove(&heap.unswept, s);
        AO_store(&s->mark_bits[0], 0);
        AO_store(&s->sweepgen, sg);
        span_list_push(&heap.large, s);
    }
    heap_unlock();
    return freed;
}

bool heap_unswept_large(void)
{
    heap_lock();
    bool any = heap.unswept.first != NULL;
    heap_unlock();
    return any;
}

void heap_flip_large(void)
{
    heap_lock();
    span_list_splice(&heap.unswept, &heap.large);
    heap_unlock();
}

void heap_each_span(void (*fn)(struct span *s))
{
    size_t pages = AO_load(&heap_used) / PAGE;
    for (size_t p = 0; p < pages; p++) {
        struct span *s = table_get(p);
        if (s && s->start == heap_base + p * PAGE && AO_load(&s->state) == SPAN_IN_USE)
            fn(s);
    }
}

/* ---- returning free pages to the OS ---- */

/* The highest page of [first, last] not returned, in *page; false when
 * every one is. A word of released bits at a time. */
static bool highest_unreleased(size_t first, size_t last, size_t *page)
{
    for (size_t p = last + 1; p > first;) {
        size_t hi = p - 1, base = hi & ~(size_t)63;
        uint64_t backed = ~heap.released[hi / HEAP_ARENA_PAGES][hi % HEAP_ARENA_PAGES / 64];
        if (hi % 64 != 63)
            backed &= (UINT64_C(1) << (hi % 64 + 1)) - 1;
        if (base < first)
            backed &= ~UINT64_C(0) << (first - base);
        if (backed) {
            *page = base + 63 - (size_t)__builtin_clzll(backed);
            return true;
        }
        p = base;
    }
    return false;
}

/* The highest page of [first, last] backed by memory: handed out once
 * (below its arena's zeroed base; pages never touched take no memory)
 * and not returned since. */
static bool highest_backed(size_t first, size_t last, size_t *page)
{
    for (size_t a = last / HEAP_ARENA_PAGES + 1; a-- > first / HEAP_ARENA_PAGES;) {
        size_t lo = a * HEAP_ARENA_PAGES, top = lo + heap.zeroed_base[a];
        if (top > lo && highest_unreleased(first > lo ? first : lo, last < top ? last : top - 1,
                                           page))
            return true;
    }
    return false;
}

/* Of the runs of `l`, the one with the highest backed page above *top. */
static struct span *best_in_list(struct span_list *l, struct span *best, size_t *top)
{
    for (struct span *r = l->first; r; r = r->next) {
        size_t first = page_of(r->start), page;
        if ((!best || first + r->npages - 1 > *top) &&
            highest_backed(first, first + r->npages - 1, &page) && (!best || page > *top)) {
            best = r;
            *top = page;
        }
    }
    return best;
}

/* The free run to return pages from, and its highest backed page. Large
 * runs first: best fit hands them out last, so their pages are the
 * coldest, while small runs are the holes the program's churn fills and
 * empties; pages returned there would come back at once. Among them, the
 * run with the highest backed page. */
static struct span *run_to_release(size_t *top)
{
    if (heap.pages_touched - heap.pages_in_use - heap.pages_released <= heap.pages_releasing)
        return NULL; /* every free page touched is returned, or being returned */
    struct span *best = NULL;
    for (int k = 0; k < 2; k++)
        best = best_in_list(&heap.runs[k].large, best, top);
    for (size_t i = HEAP_SMALL_RUN_PAGES; !best && i-- > 1;)
        for (int k = 0; k < 2; k++)
            if (heap.runs[k].nonempty[i / 64] >> (i % 64) & 1)
                best = best_in_list(&heap.runs[k].small[i], best, top);
    return best;
}

/* Take up to max_pages pages ending at the highest backed free page (and
 * within its arena) out of the free index, as a run in state
 * SPAN_RELEASING: nothing allocates or coalesces it while the system call
 * runs without the lock. The rest of its run stays free, in up to two
 * runs. NULL when there is nothing to return. */
static struct span *take_for_release(size_t max_pages)
{
    size_t top;
    struct span *r = run_to_release(&top);
    if (!r)
        return NULL;
    size_t first = page_of(r->start), last = first + r->npages - 1;
    size_t floor = top / HEAP_ARENA_PAGES * HEAP_ARENA_PAGES; /* all touched up to top */
    if (floor < first)
        floor = first;
    size_t lo = top + 1 - floor > max_pages ? top + 1 - max_pages : floor;
    struct span *c = span_new(), *high = top < last ? span_new() : NULL;
    if (!c || (top < last && !high)) {
        if (c)
            span_dispose(c);
        return NULL;
    }
    run_remove(r);
    if (high) {
        high->start = heap_base + (top + 1) * PAGE;
        high->npages = last - top;
        run_insert(high);
    }
    if (lo > first) {
        r->npages = lo - first;
        run_insert(r);
    } else {
        span_dispose(r);
    }
    c->start = heap_base + lo * PAGE;
    c->npages = top + 1 - lo;
    AO_store(&c->state, SPAN_RELEASING);
    table_set(lo, 1, c);
    table_set(top, 1, c);
    heap.pages_releasing += c->npages;
    return c;
}

/* The released run `c` becomes free again, coalesced. */
static void put_back_released(struct span *c)
{
    size_t first = page_of(c->start);
    heap.pages_released += released_change(first, c->npages, true);
    heap.pages_releasing -= c->npages;
    table_set(first, 1, NULL);
    table_set(first + c->npages - 1, 1, NULL);
    run_insert_coalesced(c);
}

size_t heap_release(size_t max_pages, enum os_return_mode mode)
{
    heap_enter();
    heap_lock();
    struct span *c = max_pages ? take_for_release(max_pages) : NULL;
    heap_unlock();
    heap_leave();
    if (!c)
        return 0;
    size_t n = c->npages;
    os_return((void *)c->start, n * PAGE, mode);
    heap_enter();
    heap_lock();
    put_back_released(c);
    heap_unlock();
    heap_leave();
    return n;
}

/* ---- observation ---- */

void heap_read_stats(struct heap_stats *st)
{
    heap_lock();
    st->reserved = heap.reserved;
    st->committed = heap_used;
    st->in_use = heap.pages_in_use * PAGE;
    st->free = (heap.pages_free + heap.pages_releasing) * PAGE;
    st->touched = heap.pages_touched * PAGE;
    st->released = heap.pages_released * PAGE;
    st->free_runs = 0;
    for (int k = 0; k < 2; k++) {
        st->free_runs += heap.runs[k].large.count;
        for (size_t i = 0; i < HEAP_SMALL_RUN_PAGES; i++)
            st->free_runs += heap.runs[k].small[i].count;
    }
    st->spans = heap.spans_in_use;
    heap_unlock();
}

/* Check one span met at `page` during the walk; returns its page count, or
 * 0 when the table is inconsistent. `prev_free` carries coalescing state;
 * a run being returned to the OS counts as free, and may touch free runs.
 * Only free pages may be returned. */
static size_t check_span_at(size_t page, bool *prev_free, size_t *in_use, size_t *free)
{
    struct span *s = table_get(page);
    if (!s || s->start != heap_base + page * PAGE || s->npages == 0)
        return 0;
    size_t last = page + s->npages - 1;
    if ((last + 1) * PAGE > heap_used || table_get(last) != s)
        return 0;
    unsigned state = (unsigned)AO_load(&s->state);
    bool is_free = state == SPAN_FREE, unused = is_free || state == SPAN_RELEASING;
    if (is_free && (*prev_free || s->free_unbacked != page_unbacked(page)))
        return 0;
    for (size_t i = page + 1; i < last; i++)
        if (table_get(i) != (unused ? NULL : s))
            return 0;
    for (size_t i = page; !unused && i <= last; i++)
        if (page_released(i))
            return 0;
    *prev_free = is_free;
    *(unused ? free : in_use) += s->npages;
    return s->npages;
}

bool heap_is_valid(void)
{
    heap_lock();
    bool ok = true, prev_free = false;
    size_t in_use = 0, free = 0, pages = heap_used / PAGE;
    for (size_t page = 0; ok && page < pages;) {
        size_t n = check_span_at(page, &prev_free, &in_use, &free);
        ok = n != 0;
        page += n;
    }
    ok = ok && in_use == heap.pages_in_use && free == heap.pages_free + heap.pages_releasing &&
         heap.pages_released <= free;
    heap_unlock();
    return ok;
}

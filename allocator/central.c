/*
 * central.c — central span lists, the rescue protocol of central.h, and the
 * central side of sweeping: at each cycle's flip every central span moves to
 * its class's unswept list; a span is swept before anyone reuses it, by the
 * thread that takes it or by the background sweeper. A thread that needs
 * new pages while the sweep is unfinished sweeps first, any class and the
 * large objects, until as many pages went back to the page heap: the
 * garbage of the last cycle is reused before the heap takes fresh memory,
 * however little CPU the background sweeper gets.
 */
#define _GNU_SOURCE /* PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP: spin briefly, then sleep */
#include "central.h"

#include <pthread.h>
#include <string.h>

#include "../gc/platform.h"
#include "heap.h"

#define AFFINITY 8 /* partial sublists, by a hash of the span's last owner */

struct central {
    pthread_mutex_t lock;
    struct span_list partial[AFFINITY]; /* lock; swept */
    struct span_list full;              /* lock; swept */
    struct span_list unswept;           /* lock; not swept since the last flip */
} __attribute__((aligned(OS_CACHE_LINE)));

static struct central centrals[SC_NUM_SPAN_CLASSES] = {
    [0 ... SC_NUM_SPAN_CLASSES - 1] = {.lock = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP},
};

/* Does the span the caller owns have a free slot ready in its cache? */
static bool has_free_slot(struct span *s)
{
    return s->alloc_cache || span_refill_cache(s, (uint32_t)s->freeindex);
}

static struct span_list *partial_of(struct central *c, const void *owner)
{
    uint32_t h = (uint32_t)((uintptr_t)owner / OS_CACHE_LINE) * 0x9E3779B1u;
    return &c->partial[h >> (32 - __builtin_ctz(AFFINITY))];
}

/* Put a span the caller owns on the right list (lock held; the caller has
 * reclaimed it already, so the reclaim here rarely finds anything). */
static void file_span(struct central *c, struct span *s)
{
    AO_store(&s->where, SPAN_IN_FULL);
    AO_nop_full();
    span_reclaim(s);
    if (has_free_slot(s)) {
        AO_store(&s->where, SPAN_IN_PARTIAL);
        span_list_push(partial_of(c, s->last_owner), s);
    } else {
        span_list_push(&c->full, s);
    }
}

/* The partial span to hand to `owner`: the oldest of its own sublist, else
 * the oldest of the next nonempty one. Oldest first because a span rescued
 * long ago has had the most time to collect frees. */
static struct span *pick_partial(struct central *c, const void *owner)
{
    struct span_list *own = partial_of(c, owner);
    for (unsigned i = 0; i < AFFINITY; i++) {
        struct span_list *l = &c->partial[(unsigned)(own - c->partial + i) % AFFINITY];
        struct span *s = l->last;
        if (s) {
            span_list_remove(l, s);
            return s;
        }
    }
    return NULL;
}

static struct span *take_partial(struct central *c, const void *owner)
{
    pthread_mutex_lock(&c->lock);
    struct span *s = pick_partial(c, owner);
    pthread_mutex_unlock(&c->lock);
    return s;
}

/* The oldest unswept span, off every list, or NULL. */
static struct span *take_unswept(struct central *c)
{
    pthread_mutex_lock(&c->lock);
    struct span *s = c->unswept.first;
    if (s) {
        span_list_remove(&c->unswept, s);
        AO_store(&s->where, SPAN_IN_SWEEP);
    }
    pthread_mutex_unlock(&c->lock);
    return s;
}

/* Sweep a span taken off the unswept list (nobody else can claim it). */
static unsigned sweep_taken(struct span *s)
{
    AO_t sg = heap_sweepgen;
    if (!span_claim_sweep(s, sg))
        os_fatal("span %p on an unswept list was swept", (void *)s->start);
    return span_sweep(s, sg);
}

static void file_locked(struct central *c, struct span *s)
{
    pthread_mutex_lock(&c->lock);
    file_span(c, s);
    pthread_mutex_unlock(&c->lock);
}

/* ---- reclaiming before taking pages ----
 * While the last cycle's sweep is unfinished, a thread about to take pages
 * from the page heap first sweeps until as many pages went back to it
 * (Go's mheap reclaim). Without this, a program whose background sweeper
 * gets no CPU takes fresh pages while the last cycle's garbage still holds
 * its own, and the memory in use runs past the goal by all of it. */

#define RECLAIM_BUDGET 64 /* spans swept per call at most: bounds the delay */

static AO_t reclaim_done_gen; /* heap_sweepgen once a pass found nothing unswept */
static AO_t reclaim_next;     /* the span class the next reclaim begins at */

/* Sweep one unswept span of class sc; the pages it freed, 0 if it keeps
 * objects; false when the class has none left. */
static bool sweep_one(unsigned sc, size_t *freed)
{
    struct span *s = take_unswept(&centrals[sc]);
    if (!s)
        return false;
    size_t npages = s->npages;
    if (sweep_taken(s)) {
        file_locked(&centrals[sc], s);
    } else {
        heap_free(s);
        *freed += npages;
    }
    return true;
}

void central_reclaim(size_t npages)
{
    AO_t sg = heap_sweepgen;
    if (AO_load(&reclaim_done_gen) == sg || AO_load(&heap_marking))
        return;
    size_t freed = heap_sweep_large(npages, RECLAIM_BUDGET);
    unsigned sc = (unsigned)(AO_fetch_and_add1(&reclaim_next) % SC_NUM_SPAN_CLASSES);
    unsigned swept = 0, empty = 0;
    while (freed < npages && swept < RECLAIM_BUDGET && empty < SC_NUM_SPAN_CLASSES) {
        if (sweep_one(sc, &freed)) {
            swept++;
            empty = 0;
        } else {
            empty++;
            sc = (sc + 1) % SC_NUM_SPAN_CLASSES;
        }
    }
    if (empty == SC_NUM_SPAN_CLASSES && !heap_unswept_large())
        AO_store(&reclaim_done_gen, sg);
}

/* A new span from the page heap, cleared whole if its pages held data (the
 * zero invariant), with its alloc cache loaded. */
static struct span *take_new(unsigned spanclass)
{
    size_t npages = sc_class_npages[sc_class_of_span_class(spanclass)];
    central_reclaim(npages);
    struct span *s = heap_alloc(npages, spanclass);
    if (!s)
        return NULL;
    span_clear_if_needed(s);
    span_refill_cache(s, 0);
    return s;
}

/* A swept span with a free slot from the unswept list, or NULL after
 * SWEEP_BUDGET spans without one. After a flip the unswept list can hold
 * thousands of spans full of live objects; sweeping them all in one
 * allocation would stall it for milliseconds. Past the budget the caller
 * takes a new span instead, and the background sweeper goes on with the
 * list (Go's mcentral does the same, with the same budget). */
#define SWEEP_BUDGET 100
static struct span *take_swept(struct central *c)
{
    struct span *s;
    for (unsigned n = 0; n < SWEEP_BUDGET && (s = take_unswept(c)); n++) {
        if (!sweep_taken(s))
            span_clear_if_needed(s);
        if (has_free_slot(s))
            return s;
        central_give_back(s);
    }
    return NULL;
}

/* Reclaiming and sweeping (and so clearing) happen outside the lock. */
struct span *central_take(unsigned spanclass, const void *owner)
{
    struct central *c = &centrals[spanclass];
    struct span *s;
    while ((s = take_partial(c, owner))) {
        span_reclaim(s);
        if (has_free_slot(s))
            break;
        central_give_back(s);
    }
    if (!s && !(s = take_swept(c)) && !(s = take_new(spanclass)))
        return NULL;
    s->last_owner = owner;
    AO_store(&s->where, SPAN_IN_CACHE);
    return s;
}

/* Swept first if it is a cached span that missed its sweep; its alloc bits
 * are made authoritative, so that threads validating pointers into a span
 * on a central list need not read its freeindex. A span with no object
 * left goes back to the page heap. */
void central_give_back(struct span *s)
{
    AO_t sg = heap_sweepgen;
    if (span_claim_sweep(s, sg))
        span_sweep(s, sg);
    span_materialize(s);
    span_reclaim(s);
    if (span_count_allocated(s) == 0) {
        heap_free(s);
        return;
    }
    file_locked(&centrals[s->spanclass], s);
}

bool central_sweep_one(unsigned spanclass)
{
    size_t freed = 0;
    return sweep_one(spanclass, &freed);
}

void central_flip(void)
{
    for (unsigned i = 0; i < SC_NUM_SPAN_CLASSES; i++) {
        struct central *c = &centrals[i];
        for (unsigned a = 0; a < AFFINITY; a++)
            span_list_splice(&c->unswept, &c->partial[a]);
        span_list_splice(&c->unswept, &c->full);
    }
}

/* Is `s` a span of `spanclass` on the full list of c (its lock held)? The
 * heap lock holds still what the page heap changes — state and class — so
 * `s` stays a span of that class during the check, and `where` of such a
 * span enters and leaves SPAN_IN_FULL only under c's lock. A full span
 * still unswept sits on the unswept list: its sweep takes the freed slots. */
static bool on_full_list(struct span *s, unsigned spanclass)
{
    heap_lock();
    bool full = AO_load(&s->state) == SPAN_IN_USE && s->spanclass == spanclass &&
                AO_load(&s->where) == SPAN_IN_FULL && AO_load(&s->sweepgen) == heap_sweepgen;
    heap_unlock();
    return full;
}

static void rescue(struct span *s, unsigned spanclass)
{
    struct central *c = &centrals[spanclass];
    heap_enter();
    pthread_mutex_lock(&c->lock);
    if (on_full_list(s, spanclass)) {
        span_list_remove(&c->full, s);
        AO_store(&s->where, SPAN_IN_PARTIAL);
        span_list_push(partial_of(c, s->last_owner), s);
    }
    pthread_mutex_unlock(&c->lock);
    heap_leave();
}

void central_note_free(struct span *s, unsigned spanclass)
{
    if (AO_load(&s->free_pending))
        return;
    AO_store(&s->free_pending, 1);
    AO_nop_full();
    if (AO_load(&s->where) == SPAN_IN_FULL)
        rescue(s, spanclass);
}

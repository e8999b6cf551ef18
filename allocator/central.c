/*
 * central.c — central span lists and the rescue protocol of central.h.
 */
#include "central.h"

#include <pthread.h>

#include "../gc/platform.h"
#include "heap.h"

struct central {
    pthread_mutex_t lock;
    struct span_list partial; /* lock */
    struct span_list full;    /* lock */
} __attribute__((aligned(OS_CACHE_LINE)));

static struct central centrals[SC_NUM_SPAN_CLASSES] = {
    [0 ... SC_NUM_SPAN_CLASSES - 1] = {.lock = PTHREAD_MUTEX_INITIALIZER},
};

/* Does the span the caller owns have a free slot ready in its cache? */
static bool has_free_slot(struct span *s)
{
    return s->alloc_cache || span_refill_cache(s, (uint32_t)s->freeindex);
}

/* Put a span the caller owns on the right list (lock held). Its alloc bits
 * are made authoritative first, so that threads validating pointers into a
 * span on a central list need not read its freeindex. */
static void file_span(struct central *c, struct span *s)
{
    span_materialize(s);
    AO_store(&s->where, SPAN_IN_FULL);
    AO_nop_full();
    span_reclaim(s);
    if (has_free_slot(s)) {
        AO_store(&s->where, SPAN_IN_PARTIAL);
        span_list_push(&c->partial, s);
    } else {
        span_list_push(&c->full, s);
    }
}

#define AFFINITY_SCAN 8 /* partial spans examined for one of the caller's own */

/* The partial span to hand to `owner`: among the oldest few, the oldest it
 * owned last, else the oldest. Oldest first because a span rescued long
 * ago has had the most time to collect frees. */
static struct span *pick_partial(struct central *c, const void *owner)
{
    struct span *s = c->partial.last;
    for (int i = 0; s && i < AFFINITY_SCAN; i++, s = s->prev)
        if (s->last_owner == owner)
            break;
    if (!s)
        s = c->partial.last;
    if (s)
        span_list_remove(&c->partial, s);
    return s;
}

struct span *central_take(unsigned spanclass, const void *owner)
{
    struct central *c = &centrals[spanclass];
    pthread_mutex_lock(&c->lock);
    struct span *s;
    while ((s = pick_partial(c, owner))) {
        span_reclaim(s);
        if (has_free_slot(s))
            break;
        file_span(c, s);
    }
    pthread_mutex_unlock(&c->lock);
    if (!s) {
        unsigned cls = sc_class_of_span_class(spanclass);
        s = heap_alloc(sc_class_npages[cls], spanclass);
        if (!s)
            return NULL;
        span_refill_cache(s, 0);
    }
    s->last_owner = owner;
    AO_store(&s->where, SPAN_IN_CACHE);
    return s;
}

void central_give_back(struct span *s)
{
    struct central *c = &centrals[s->spanclass];
    pthread_mutex_lock(&c->lock);
    file_span(c, s);
    pthread_mutex_unlock(&c->lock);
}

static void rescue(struct span *s)
{
    struct central *c = &centrals[s->spanclass];
    pthread_mutex_lock(&c->lock);
    if (AO_load(&s->where) == SPAN_IN_FULL) {
        span_list_remove(&c->full, s);
        AO_store(&s->where, SPAN_IN_PARTIAL);
        span_list_push(&c->partial, s);
    }
    pthread_mutex_unlock(&c->lock);
}

void central_note_free(struct span *s)
{
    if (AO_load(&s->free_pending))
        return;
    AO_store(&s->free_pending, 1);
    AO_nop_full();
    if (AO_load(&s->where) == SPAN_IN_FULL)
        rescue(s);
}

void central_lock_all(void)
{
    for (unsigned i = 0; i < SC_NUM_SPAN_CLASSES; i++)
        pthread_mutex_lock(&centrals[i].lock);
}

void central_unlock_all(void)
{
    for (unsigned i = SC_NUM_SPAN_CLASSES; i-- > 0;)
        pthread_mutex_unlock(&centrals[i].lock);
}

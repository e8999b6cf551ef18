/*
 * cache.c — thread caches: creation, the allocation slow path, and the
 * flush at thread exit (see cache.h).
 */
#include "cache.h"

#include <errno.h>
#include <pthread.h>

#include "central.h"
#include "heap.h"

__thread struct cache *cache_tls __attribute__((tls_model("initial-exec")));

/* Never has a free slot: routes a class with no span to the slow path. */
static struct span cache_empty_span;

static struct {
    pthread_mutex_t lock;
    pthread_key_t exit_key;  /* its destructor releases a dying thread's cache */
    struct cache *all;       /* lock: caches of live threads */
    struct cache *pool;      /* lock: released caches for reuse */
} caches = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void on_thread_exit(void *arg)
{
    cache_release(arg);
}

int cache_init(void)
{
    return pthread_key_create(&caches.exit_key, on_thread_exit) == 0 ? 0 : -1;
}

static struct cache *cache_new(void)
{
    pthread_mutex_lock(&caches.lock);
    struct cache *c = caches.pool;
    if (c)
        caches.pool = c->next;
    else
        c = heap_meta_alloc(sizeof *c);
    if (c) {
        for (unsigned i = 0; i < SC_NUM_SPAN_CLASSES; i++)
            c->alloc[i] = &cache_empty_span;
        c->next = caches.all;
        caches.all = c;
    }
    pthread_mutex_unlock(&caches.lock);
    return c;
}

struct cache *cache_get(void)
{
    if (cache_tls)
        return cache_tls;
    struct cache *c = cache_new();
    if (!c)
        return NULL;
    if (pthread_setspecific(caches.exit_key, c) != 0) {
        cache_release(c);
        return NULL;
    }
    cache_tls = c;
    return c;
}

static void unlink_cache(struct cache *c)
{
    struct cache **link = &caches.all;
    while (*link != c)
        link = &(*link)->next;
    *link = c->next;
}

void cache_release(struct cache *c)
{
    for (unsigned i = 0; i < SC_NUM_SPAN_CLASSES; i++) {
        if (c->alloc[i] != &cache_empty_span)
            central_give_back(c->alloc[i]);
        c->alloc[i] = &cache_empty_span;
    }
    if (cache_tls == c)
        cache_tls = NULL;
    pthread_mutex_lock(&caches.lock);
    unlink_cache(c);
    c->next = caches.pool;
    caches.pool = c;
    pthread_mutex_unlock(&caches.lock);
}

/* Make c->alloc[spanclass] a span with a free slot in its alloc cache. */
static bool refill(struct cache *c, unsigned spanclass)
{
    struct span *s = c->alloc[spanclass];
    if (s != &cache_empty_span) {
        if (span_refill_cache(s, (uint32_t)s->freeindex))
            return true;
        if (AO_load(&s->free_pending) && span_reclaim(s))
            return true;
        c->alloc[spanclass] = &cache_empty_span;
        central_give_back(s);
    }
    s = central_take(spanclass, c);
    if (!s)
        return false;
    c->alloc[spanclass] = s;
    return true;
}

void *cache_alloc_slow(struct cache *c, unsigned spanclass)
{
    if (!refill(c, spanclass)) {
        errno = ENOMEM;
        return NULL;
    }
    return cache_alloc(c, spanclass);
}

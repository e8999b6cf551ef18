/*
 * api.c — the public allocation API of tricolor.h on top of the allocator.
 *
 * Small requests (up to SC_MAX_SMALL bytes) go through the calling thread's
 * cache (allocator/cache.h); larger ones get a span of their own from the
 * page heap. Every entry point that takes an object validates it against
 * the page table and the span's allocation invariant, so misuse stops with
 * one line on stderr instead of corrupting the heap.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "../allocator/cache.h"
#include "../allocator/central.h"
#include "../allocator/counters.h"
#include "../allocator/heap.h"
#include "collector.h"
#include "options.h"
#include "platform.h"
#include "tricolor.h"

#define PAGE ((size_t)SC_PAGE_SIZE)

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_result = -1;
static int init_errno;

static void init_once_body(void)
{
    options_init();
    if (heap_init() != 0 || collect_init() != 0 || threads_init() != 0) {
        init_errno = ENOMEM;
        return;
    }
    init_result = 0;
}

/* The main thread registers at load time (for a dlopened library: the
 * thread that loads it). */
__attribute__((constructor)) static void init_at_load(void)
{
    gc_init();
}

int gc_init(void)
{
    pthread_once(&init_once, init_once_body);
    if (init_result != 0)
        errno = init_errno;
    return init_result;
}

/* ---- allocation ---- */

static void *alloc_large(size_t size, unsigned noscan)
{
    if (size > SIZE_MAX - PAGE) {
        errno = ENOMEM;
        return NULL;
    }
    /* Collect first: once the object exists, nothing may run a cycle before
     * the caller holds the pointer. */
    if (AO_load(&heap_live) + size >= AO_load(&heap_trigger))
        heap_trigger_hit();
    /* The address is taken while the world cannot stop (inside the
     * allocator) into a stack slot the collector scans: outside, the span
     * struct alone (metadata, never scanned) would know the object. */
    char *volatile obj = NULL;
    size_t npages = (size + PAGE - 1) / PAGE;
    heap_enter();
    central_reclaim(npages);
    struct span *s = heap_alloc(npages, sc_span_class(0, noscan));
    if (s) {
        obj = (char *)s->start;
        counters_large_alloc(s->elemsize);
    }
    bool marking = AO_load(&heap_marking);
    if (s && marking)
        AO_or_full(&s->mark_bits[0], 1); /* allocate-black: the world cannot stop here */
    heap_leave();
    if (!s)
        return NULL;
    /* Cleared outside the allocator, so that a huge clear never holds up a
     * stop of the world; until it is done, markers skip the old contents. */
    if (s->needzero)
        memset(obj, 0, s->elemsize);
    AO_store_release(&s->unzeroed, 0);
    AO_fetch_and_add(&heap_live, s->elemsize);
    if (marking)
        heap_assist_hook(s->elemsize);
    return obj;
}

static NOINLINE void *alloc_slow(size_t size, unsigned noscan)
{
    if (gc_init() != 0)
        return NULL;
    if (size > SC_MAX_SMALL)
        return alloc_large(size, noscan);
    if (!cache_tls && threads_register_self() != 0)
        return NULL;
    return cache_alloc(cache_tls, sc_span_class(sc_size_to_class(size), noscan));
}

static inline void *alloc(size_t size, unsigned noscan)
{
    struct cache *c = cache_tls;
    if (likely(c && size <= SC_MAX_SMALL))
        return cache_alloc(c, sc_span_class(sc_size_to_class(size), noscan));
    return alloc_slow(size, noscan);
}

void *gc_alloc(size_t size)
{
    return alloc(size, 0);
}

void *gc_alloc_noscan(size_t size)
{
    return alloc(size, 1);
}

void *gc_calloc(size_t n, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    return gc_alloc(bytes);
}

char *gc_strdup(const char *s)
{
    size_t len = strlen(s) + 1;
    char *p = gc_alloc_noscan(len);
    if (p)
        memcpy(p, s, len);
    return p;
}

/* ---- objects ---- */

/* The in-use span holding the allocated object that `p` points into, with
 * its index in *idx; NULL when there is none. */
static inline struct span *find_object(const void *p, uint32_t *idx)
{
    struct span *s = heap_span_of(p);
    if (!s || AO_load_acquire(&s->state) != SPAN_IN_USE)
        return NULL;
    if ((uintptr_t)p - s->start >= s->npages * PAGE)
        return NULL;
    int32_t i = span_object_index(s, (uintptr_t)p);
    if (i < 0 || !span_slot_allocated(s, (uint32_t)i))
        return NULL;
    *idx = (uint32_t)i;
    return s;
}

static COLD void die_bad_pointer(const char *fn, const void *p)
{
    if (gc_base(p))
        os_fatal("%s(): pointer %p is inside an object, not at its start", fn, p);
    os_fatal("%s(): invalid pointer or double free %p", fn, p);
}

/* The span of the object starting exactly at `p`, or a fatal error naming
 * the calling public function. */
static inline struct span *object_or_die(const char *fn, const void *p, uint32_t *idx)
{
    struct span *s = find_object(p, idx);
    if (unlikely(!s || span_object_start(s, *idx) != (uintptr_t)p))
        die_bad_pointer(fn, p);
    return s;
}

static void free_object(const char *fn, void *p)
{
    uint32_t idx;
    struct span *s = object_or_die(fn, p, &idx);
    /* Read while the object holds the span: once its slot is marked freed,
     * a sweep or reclaim may empty a small span and the page heap give its
     * struct to another span, of another class (central_note_free). */
    unsigned spanclass = s->spanclass, cls = sc_class_of_span_class(spanclass);
    /* Freeing deletes every pointer the object holds: while a cycle marks,
     * they are shaded first (the snapshot invariant, collect.c). */
    struct gc_thread *t = barrier_bulk_begin(p, sc_noscan(spanclass) ? 0 : s->elemsize);
    uint64_t twice = span_mark_freed(s, idx / 64, UINT64_C(1) << (idx % 64));
    barrier_bulk_end(t);
    if (twice)
        os_fatal("%s(): double free %p", fn, p);
    if (unlikely(cls == 0)) {
        AO_fetch_and_add(&heap_live, -(AO_t)s->elemsize);
        heap_enter();
        counters_large_free(s->elemsize);
        heap_free(s);
        heap_leave();
    } else {
        cache_count_free(cls);
        central_note_free(s, spanclass);
    }
}

void gc_free(void *p)
{
    if (p)
        free_object("gc_free", p);
}

size_t gc_size(const void *p)
{
    uint32_t idx;
    return object_or_die("gc_size", p, &idx)->elemsize;
}

void *gc_base(const void *p)
{
    uint32_t idx;
    struct span *s = find_object(p, &idx);
    if (!s)
        return NULL;
    /* A span reused by another thread meanwhile may give a start that does
     * not contain p: answer only what is consistent. */
    uintptr_t start = span_object_start(s, idx);
    return (uintptr_t)p - start < s->elemsize ? (void *)start : NULL;
}

/* Can an object of `old` usable bytes in span `s` hold `size` bytes without
 * wasting most of its slot? */
static bool fits_in_place(const struct span *s, size_t size)
{
    unsigned cls = sc_class_of_span_class(s->spanclass);
    if (cls)
        return size <= SC_MAX_SMALL && sc_size_to_class(size) == cls;
    return size > SC_MAX_SMALL && (size + PAGE - 1) / PAGE == s->npages;
}

void *gc_realloc(void *p, size_t size)
{
    if (!p)
        return gc_alloc(size);
    uint32_t idx;
    struct span *s = object_or_die("gc_realloc", p, &idx);
    size_t old = s->elemsize;
    if (fits_in_place(s, size)) {
        if (size < old)
            memset((char *)p + size, 0, old - size);
        return p;
    }
    void *q = alloc(size, sc_noscan(s->spanclass));
    if (!q)
        return NULL;
    gc_memcpy(q, p, size < old ? size : old);
    free_object("gc_realloc", p);
    return q;
}

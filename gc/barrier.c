/*
 * barrier.c — the write barrier's out-of-line half (the rule and the inline
 * half are in tricolor_barrier.h).
 *
 * Shading an old value: if it points into the heap, append it to the
 * calling thread's barrier buffer — entry first, then the published count,
 * so that a thread stopped at any instruction has either published the
 * entry or not yet made the store that deletes the old value (which the
 * collector then still finds where it was). A full buffer is marked by its
 * owner at once, as a marker of its own, and emptied; each emptying starts
 * a new generation. Entries belong to one cycle (`barrier_cycle`): the
 * collector reads them but never resets another thread's buffer (DESIGN.md
 * rule 1), so the owner drops stale entries the next time it shades.
 *
 * The collector takes the buffers twice: with the world running, once the
 * grey work is gone (most entries), and again in mark termination, where
 * only what was published since is left to mark. It remembers, per buffer,
 * the cycle, generation and count it has marked up to; a buffer emptied
 * since (a new generation) is read from its start — the owner marked the
 * entries it threw away.
 *
 * Bulk barriers shade every word of the destination before the copy. They
 * cannot keep the old words alive in registers, so a thread inside one
 * raises `in_bulk`; the collector does not start or end a marking while
 * any thread is stopped with it raised (collect.c waits and tries again).
 */
#include <string.h>

#include "../allocator/heap.h"
#include "collector.h"
#include "platform.h"
#include "tricolor.h"

int gc_barrier_active;
AO_t barrier_cycle;

void barrier_set(bool on, AO_t cycle)
{
    AO_store(&barrier_cycle, cycle);
    __atomic_store_n(&gc_barrier_active, on, __ATOMIC_RELEASE);
}

static void flush(struct barrier_buf *b, size_t n)
{
    struct marker m;
    if (!marker_join(&m))
        return; /* marking ended: termination took these entries */
    for (size_t i = 0; i < n; i++)
        mark_pointer(&m, AO_load(&b->entry[i]));
    marker_end(&m);
}

void barrier_reset(struct barrier_buf *b, AO_t cycle)
{
    AO_store(&b->generation, AO_load(&b->generation) + 1);
    AO_store_release(&b->n, 0);
    AO_store_release(&b->cycle, cycle);
}

void gc_barrier_shade(uintptr_t old)
{
    if (old - heap_base >= AO_load_acquire(&heap_used))
        return; /* not a heap address */
    struct gc_thread *t = threads_self();
    if (!t)
        os_fatal("out of memory registering a thread in the write barrier");
    struct barrier_buf *b = &t->barrier;
    AO_t cycle = AO_load(&barrier_cycle);
    if (AO_load(&b->cycle) != cycle)
        barrier_reset(b, cycle);
    AO_t n = AO_load(&b->n);
    AO_store(&b->entry[n], old);
    AO_store_release(&b->n, n + 1);
    if (n + 1 == BARRIER_ENTRIES) {
        flush(b, BARRIER_ENTRIES);
        barrier_reset(b, cycle);
    }
}

void barrier_flush_own(struct barrier_buf *b)
{
    if (AO_load(&b->cycle) == AO_load(&barrier_cycle))
        flush(b, AO_load(&b->n));
    barrier_reset(b, AO_load(&b->cycle));
}

void barrier_take(struct barrier_buf *b, struct marker *m)
{
    AO_t cycle = AO_load(&barrier_cycle);
    if (AO_load_acquire(&b->cycle) != cycle)
        return; /* nothing shaded in this cycle */
    AO_t generation = AO_load_acquire(&b->generation);
    AO_t n = AO_load_acquire(&b->n);
    if (n > BARRIER_ENTRIES)
        n = BARRIER_ENTRIES;
    bool known = b->taken_cycle == cycle && b->taken_generation == generation &&
                 b->taken_n <= n;
    for (AO_t i = known ? b->taken_n : 0; i < n; i++)
        mark_pointer(m, AO_load(&b->entry[i]));
    AO_nop_full(); /* the entries were read before the generation is checked */
    AO_t now = AO_load(&b->generation);
    b->taken_cycle = cycle;
    b->taken_generation = now;
    b->taken_n = now == generation ? n : 0; /* emptied meanwhile: read it all next time */
}

/* ---- bulk barriers ---- */

struct gc_thread *barrier_bulk_begin(const void *dst, size_t n)
{
    struct gc_thread *t = threads_self();
    if (!t)
        return NULL; /* no memory for a record: nothing can be shaded */
    AO_store(&t->in_bulk, 1);
    AO_nop_full();
    if (!__atomic_load_n(&gc_barrier_active, __ATOMIC_ACQUIRE))
        return t;
    struct marker m;
    if (marker_join(&m)) {
        mark_range(&m, (uintptr_t)dst, (uintptr_t)dst + n);
        marker_end(&m);
    }
    return t;
}

void barrier_bulk_end(struct gc_thread *t)
{
    if (t) {
        AO_nop_full();
        AO_store(&t->in_bulk, 0);
    }
}

void *gc_memmove(void *dst, const void *src, size_t n)
{
    struct gc_thread *t = barrier_bulk_begin(dst, n);
    memmove(dst, src, n);
    barrier_bulk_end(t);
    return dst;
}

void *gc_memcpy(void *dst, const void *src, size_t n)
{
    struct gc_thread *t = barrier_bulk_begin(dst, n);
    memcpy(dst, src, n);
    barrier_bulk_end(t);
    return dst;
}

void *gc_memset(void *dst, int c, size_t n)
{
    struct gc_thread *t = barrier_bulk_begin(dst, n);
    memset(dst, c, n);
    barrier_bulk_end(t);
    return dst;
}

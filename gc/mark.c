/*
 * mark.c — conservative marking with an explicit grey stack.
 *
 * Colors: white = mark bit clear; grey = mark bit set and the object waiting
 * in a work buffer to be scanned; black = marked and scanned (noscan
 * objects turn black at once: they are never scanned).
 *
 * Mark invariant (the world is stopped while marking): once mark_drain
 * returns, every object reachable from the scanned roots is marked. It
 * holds because an object is marked only together with being made grey, and
 * a grey object's words are all scanned before the grey stack runs empty.
 *
 * Conservative: any aligned word that points anywhere inside an allocated
 * object (interior pointers included) marks it; words pointing at free
 * slots, at the tail of a span, between spans or outside the heap are
 * ignored. Grey work lives in fixed-size work buffers chained in a stack,
 * never in recursion, so a long list or a deep tree marks in bounded stack
 * space. An object larger than MARK_CHUNK is scanned a chunk at a time: the
 * rest of it goes back on the grey stack as a work item of its own.
 */
#include <string.h>

#include "../allocator/heap.h"
#include "collector.h"
#include "platform.h"

#define WORKBUF_ENTRIES 510             /* a buffer is 4 KiB */
#define MARK_CHUNK      ((size_t)128 << 10)

struct workbuf {
    struct workbuf *next;
    size_t n;
    uintptr_t item[WORKBUF_ENTRIES]; /* object starts, or chunk starts in large objects */
};

/* Marking state; used only by the collector, with the gc lock held. */
static struct {
    struct workbuf *cur;   /* the buffer being filled and drained */
    struct workbuf *full;  /* full buffers below cur */
    struct workbuf *empty; /* spare buffers */
    size_t marked_bytes;
} mark;

static struct workbuf *buf_get(void)
{
    struct workbuf *b = mark.empty;
    if (b)
        mark.empty = b->next;
    else if (!(b = heap_meta_alloc(sizeof *b)))
        os_fatal("out of memory for mark work buffers");
    b->n = 0;
    b->next = NULL;
    return b;
}

static void push(uintptr_t item)
{
    if (unlikely(!mark.cur || mark.cur->n == WORKBUF_ENTRIES)) {
        struct workbuf *b = buf_get();
        if (mark.cur) {
            mark.cur->next = mark.full;
            mark.full = mark.cur;
        }
        mark.cur = b;
    }
    mark.cur->item[mark.cur->n++] = item;
}

static bool pop(uintptr_t *item)
{
    while (mark.cur && mark.cur->n == 0) {
        struct workbuf *b = mark.cur;
        mark.cur = mark.full;
        if (mark.full)
            mark.full = mark.full->next;
        b->next = mark.empty;
        mark.empty = b;
    }
    if (!mark.cur)
        return false;
    *item = mark.cur->item[--mark.cur->n];
    return true;
}

/* Shade the object `p` points into, if it is an allocated heap object;
 * `p` passed the heap range check. */
static NOINLINE void mark_candidate(uintptr_t p)
{
    struct span *s = (struct span *)AO_load(&heap_spans[(p - heap_base) >> SC_PAGE_SHIFT]);
    if (!s || AO_load(&s->state) != SPAN_IN_USE || p - s->start >= s->npages << SC_PAGE_SHIFT)
        return;
    int32_t idx = span_object_index(s, p);
    if (idx < 0 || !span_slot_allocated(s, (uint32_t)idx) || !span_mark(s, (uint32_t)idx))
        return;
    mark.marked_bytes += s->elemsize;
    if (!sc_noscan(s->spanclass))
        push(span_object_start(s, (uint32_t)idx));
}

/* Reads arbitrary words of stacks and globals: no sanitizer may object. */
/* Most words are not heap addresses: one subtract and compare per word
 * sorts them out, with the heap's bounds loaded once per range (the heap
 * cannot grow while the world is stopped). */
__attribute__((no_sanitize_address, no_sanitize_thread)) void mark_range(uintptr_t lo,
                                                                          uintptr_t hi)
{
    uintptr_t base = heap_base, used = AO_load_acquire(&heap_used);
    lo = (lo + sizeof(uintptr_t) - 1) & ~(uintptr_t)(sizeof(uintptr_t) - 1);
    for (const uintptr_t *w = (const uintptr_t *)lo; (uintptr_t)(w + 1) <= hi; w++)
        if (unlikely(*w - base < used))
            mark_candidate(*w);
}

/* Scan one work item: a whole small object, or up to MARK_CHUNK of a large
 * one (queueing the rest). */
static void scan_item(uintptr_t item)
{
    struct span *s = heap_span_of((const void *)item);
    uintptr_t end = s->start + s->elemsize;
    if (sc_class_of_span_class(s->spanclass) != 0) {
        mark_range(item, item + s->elemsize);
        return;
    }
    uintptr_t hi = end - item > MARK_CHUNK ? item + MARK_CHUNK : end;
    if (hi < end)
        push(hi);
    mark_range(item, hi);
}

void mark_drain(void)
{
    uintptr_t item;
    while (pop(&item))
        scan_item(item);
}

size_t mark_marked_bytes(void)
{
    return mark.marked_bytes;
}

void mark_reset(void)
{
    mark.marked_bytes = 0;
}

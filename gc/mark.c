/*
 * mark.c — conservative, parallel marking with grey work in buffers.
 *
 * Colors (DESIGN.md §4): white = mark bit clear; grey = mark bit set and the
 * object waiting in a work buffer (or a barrier buffer) to be scanned;
 * black = marked and scanned, noscan, or allocated during the cycle.
 *
 * Who marks. Every marking thread — the collector, background workers, a
 * mutator paying an assist or flushing its barrier buffer — owns a
 * `struct marker`: one work buffer it fills and drains without
 * synchronisation. Full buffers are published on a global lock-free stack
 * and empty ones wait on another; a marker whose buffer runs dry takes a full
 * one, a marker whose buffer fills hands it over. Both stacks are
 * Treiber stacks whose head packs the buffer address with a version tag in
 * one word, so a pop that raced with a pop-push of the same buffer fails its
 * compare-and-swap instead of corrupting the stack (ABA). Buffers are never
 * unmapped, so reading a stale `next` is harmless.
 *
 * Mark invariant: an object's mark bit is set (one compare-and-swap) exactly
 * once per cycle, by the marker that then makes it grey; so every grey
 * object is scanned exactly once, and marking ends when no grey object is
 * left. "No grey object is left" is the termination condition: the full
 * stack is empty and no marker is active (`active` counts markers that hold
 * or may be about to take work); grey work hidden in barrier buffers is
 * found by the collector with the world stopped (collect.c).
 *
 * Conservative: any aligned word that points anywhere inside an allocated
 * object marks it; words pointing at free slots, at the tail of a span,
 * between spans or outside the heap are ignored. An object larger than
 * MARK_CHUNK is scanned a chunk at a time: the rest of it goes back into the
 * buffer as a work item of its own, so other markers can share it.
 *
 * Checkmark (GCDEBUG=gccheckmark=1): a second marking, with the world
 * stopped, into the spans' check bits, from the same root objects the
 * concurrent mark started from; every object it reaches must carry a mark
 * bit, or the concurrent mark lost it (a pointer store without GC_WRITE).
 */
#include <string.h>

#include "../allocator/heap.h"
#include "collector.h"
#include "platform.h"

#define WORKBUF_SIZE    4096
#define WORKBUF_ENTRIES ((WORKBUF_SIZE - 2 * sizeof(AO_t)) / sizeof(uintptr_t))
#define MARK_CHUNK      ((size_t)128 << 10)
#define WORKBUF_BATCH   16 /* buffers mapped at once */

struct workbuf {
    AO_t next;   /* link on a stack (an address >> 12); written before the push */
    AO_t n;      /* items in use; the holder only */
    uintptr_t item[WORKBUF_ENTRIES]; /* object starts, or chunk starts in large objects */
};

/* ---- lock-free stacks of buffers ---- */

/* Head word: buffer address >> 12 in the low TAG_SHIFT bits, a version tag
 * above (29 bits: a preempted pop would need 2^29 operations in between to
 * be fooled). */
#define TAG_SHIFT 35
#define PTR_MASK  (((AO_t)1 << TAG_SHIFT) - 1)

struct lfstack {
    AO_t head;
} __attribute__((aligned(OS_CACHE_LINE)));

static struct lfstack full_stack, empty_stack;
static AO_t full_count;   /* buffers on full_stack (approximate while changing) */
static AO_t active;       /* markers that hold or may take work */
static AO_t marked_total; /* bytes marked this cycle, published by markers */
static AO_t scanned_total; /* bytes scanned this cycle, published by markers */
static AO_t check_mode;   /* 1 while the checkmark pass runs (world stopped) */

static AO_t pack(AO_t bits, AO_t old)
{
    return bits | ((old >> TAG_SHIFT) + 1) << TAG_SHIFT;
}

static void lf_push(struct lfstack *st, struct workbuf *b)
{
    AO_t old;
    do {
        old = AO_load_acquire(&st->head);
        AO_store(&b->next, old & PTR_MASK);
    } while (!AO_compare_and_swap_full(&st->head, old, pack((uintptr_t)b >> 12, old)));
}

static struct workbuf *lf_pop(struct lfstack *st)
{
    AO_t old;
    struct workbuf *b;
    do {
        old = AO_load_acquire(&st->head);
        b = (struct workbuf *)((old & PTR_MASK) << 12);
        if (!b)
            return NULL;
    } while (!AO_compare_and_swap_full(&st->head, old, pack(AO_load(&b->next), old)));
    return b;
}

/* ---- buffers ---- */

static struct workbuf *buf_get(void)
{
    struct workbuf *b = lf_pop(&empty_stack);
    if (!b) {
        char *batch = os_alloc_meta(WORKBUF_BATCH * WORKBUF_SIZE);
        if (!batch)
            os_fatal("out of memory for mark work buffers");
        for (unsigned i = 1; i < WORKBUF_BATCH; i++)
            lf_push(&empty_stack, (struct workbuf *)(batch + i * WORKBUF_SIZE));
        b = (struct workbuf *)batch;
    }
    AO_store(&b->n, 0);
    return b;
}

static void publish_full(struct workbuf *b)
{
    lf_push(&full_stack, b);
    AO_fetch_and_add1(&full_count);
}

static struct workbuf *take_full(void)
{
    struct workbuf *b = lf_pop(&full_stack);
    if (b)
        AO_fetch_and_sub1(&full_count);
    return b;
}

/* ---- a marker's own buffer ---- */

void marker_begin(struct marker *m)
{
    *m = (struct marker){0};
    AO_fetch_and_add1(&active);
}

bool marker_join(struct marker *m)
{
    marker_begin(m);
    AO_nop_full();
    if (AO_load(&heap_marking))
        return true;
    AO_fetch_and_sub1(&active);
    return false;
}

static void publish_scanned(struct marker *m)
{
    AO_fetch_and_add(&scanned_total, m->scanned - m->scanned_published);
    m->scanned_published = m->scanned;
}

/* Hand the marker's remaining work to the global stack and leave. */
void marker_end(struct marker *m)
{
    if (m->cur && m->cur->n)
        publish_full(m->cur);
    else if (m->cur)
        lf_push(&empty_stack, m->cur);
    m->cur = NULL;
    AO_fetch_and_add(&marked_total, m->marked_bytes);
    m->marked_bytes = 0;
    publish_scanned(m);
    AO_fetch_and_sub1(&active);
}

static void push(struct marker *m, uintptr_t item)
{
    if (unlikely(!m->cur || m->cur->n == WORKBUF_ENTRIES)) {
        if (m->cur)
            publish_full(m->cur);
        m->cur = buf_get();
    }
    m->cur->item[m->cur->n++] = item;
}

static bool pop(struct marker *m, uintptr_t *item)
{
    if (unlikely(!m->cur || m->cur->n == 0)) {
        struct workbuf *b = take_full();
        if (!b)
            return false;
        if (m->cur)
            lf_push(&empty_stack, m->cur);
        m->cur = b;
    }
    *item = m->cur->item[--m->cur->n];
    return true;
}

/* ---- marking ---- */

static NOINLINE COLD void check_failed(struct span *s, uintptr_t obj)
{
    os_fatal("gccheckmark: object %p (%zu bytes) is reachable but was not marked: a pointer "
             "store into the heap without GC_WRITE?",
             (void *)obj, s->elemsize);
}

/* Set the bit of the pass running now (mark or check); true when newly
 * set. A checked object must also carry its mark bit. */
static bool shade_slot(struct span *s, uint32_t idx)
{
    if (likely(!AO_load(&check_mode)))
        return span_mark(s, idx);
    if (!span_set_bit(s->check_bits, idx))
        return false;
    if (!(AO_load(&s->mark_bits[idx / 64]) & (AO_t)1 << (idx % 64)))
        check_failed(s, span_object_start(s, idx));
    return true;
}

/* Markers read the metadata of spans that allocating threads recycle at the
 * same time (a span freed by gc_free, its struct and pages reused): every
 * value read is validated (state, bounds, allocation invariant), and a
 * stale one can only set a mark bit in a span made during the cycle, whose
 * objects are black anyway. This is the one race the test suites tell
 * ThreadSanitizer to ignore (tests/tsan.supp names mark_candidate and
 * scan_item); the attribute below keeps their plain reads uninstrumented
 * (atomic loads are checked regardless). */
#define MARKER_READS NO_SANITIZE_READS

/* Shade the object `p` points into, if it is an allocated heap object;
 * `p` passed the heap range check. Returns the object start, or 0. */
static NOINLINE MARKER_READS uintptr_t mark_candidate(struct marker *m, uintptr_t p)
{
    struct span *s = (struct span *)AO_load(&heap_spans[(p - heap_base) >> SC_PAGE_SHIFT]);
    if (!s || AO_load(&s->state) != SPAN_IN_USE || p - s->start >= s->npages << SC_PAGE_SHIFT)
        return 0;
    int32_t idx = span_object_index(s, p);
    if (idx < 0)
        return 0;
    uintptr_t obj = span_object_start(s, (uint32_t)idx);
    /* Marked already (most pointers lead to such objects): nothing to do,
     * and no need to read the owner's freeindex. */
    if (likely(!m->record && !AO_load(&check_mode)) &&
        (AO_load(&s->mark_bits[idx / 64]) & (AO_t)1 << (idx % 64)))
        return obj;
    if (!span_slot_allocated(s, (uint32_t)idx))
        return 0;
    if (m->record)
        m->record(obj);
    if (!shade_slot(s, (uint32_t)idx))
        return obj;
    m->marked_bytes += s->elemsize;
    if (!sc_noscan(s->spanclass))
        push(m, obj);
    return obj;
}

void mark_pointer(struct marker *m, uintptr_t p)
{
    if (p - heap_base < AO_load_acquire(&heap_used))
        mark_candidate(m, p);
}

/* Reads arbitrary words of stacks, globals and objects other threads are
 * writing: no sanitizer may object (the words are only candidates; a torn
 * or stale value is as good as any other). Most words are not heap
 * addresses: one subtract and compare per word sorts them out. `lo` is
 * aligned; inlined into the scan of every object. */
static inline MARKER_READS void scan_words(struct marker *m, uintptr_t lo, uintptr_t hi)
{
    uintptr_t base = heap_base, used = AO_load_acquire(&heap_used);
    for (const uintptr_t *w = (const uintptr_t *)lo; (uintptr_t)(w + 1) <= hi; w++)
        if (unlikely(*w - base < used))
            mark_candidate(m, *w);
    m->scanned += hi > lo ? hi - lo : 0;
}

NO_SANITIZE_READS void mark_range(struct marker *m, uintptr_t lo, uintptr_t hi)
{
    scan_words(m, (lo + sizeof(uintptr_t) - 1) & ~(uintptr_t)(sizeof(uintptr_t) - 1), hi);
}

/* Scan one work item: a whole small object, or up to MARK_CHUNK of a large
 * one (queueing the rest). The span may have been freed or reused since
 * the item was queued; its memory stays mapped, so scanning it is safe. */
static MARKER_READS void scan_item(struct marker *m, uintptr_t item)
{
    struct span *s = heap_span_of((const void *)item);
    uintptr_t span_bytes = s ? s->npages << SC_PAGE_SHIFT : 0;
    if (!s || AO_load(&s->state) != SPAN_IN_USE || item - s->start >= span_bytes)
        return; /* freed (gc_free) while grey: its words were shaded then */
    if (likely(sc_class_of_span_class(s->spanclass) != 0)) {
        /* An item of a span reused since is no object start: stay inside. */
        uintptr_t hi = item + s->elemsize, span_end = s->start + span_bytes;
        scan_words(m, item, hi < span_end ? hi : span_end);
        return;
    }
    if (AO_load_acquire(&s->unzeroed))
        return; /* a large object not cleared yet: no word of it is the program's */
    uintptr_t end = s->start + s->elemsize;
    uintptr_t hi = end - item > MARK_CHUNK ? item + MARK_CHUNK : end;
    if (hi < end)
        push(m, hi);
    scan_words(m, item, hi);
}

/* Share: when no full buffer is waiting and this marker holds a fair
 * amount of work, hand the older half of it to the global stack, so that
 * idle workers and assists find something (a depth-first walk would
 * otherwise keep all the work in one marker's buffer). */
#define BALANCE_MIN 16
static void balance(struct marker *m)
{
    if (!m->cur || m->cur->n < BALANCE_MIN || AO_load(&full_count))
        return;
    struct workbuf *b = buf_get();
    AO_t half = m->cur->n / 2;
    memcpy(b->item, m->cur->item, half * sizeof b->item[0]);
    memmove(m->cur->item, m->cur->item + half, (m->cur->n - half) * sizeof b->item[0]);
    b->n = half;
    m->cur->n -= half;
    publish_full(b);
}

/* Marking waits on memory: the words of the object it scans, then the span
 * and mark bits of each candidate. Items popped go through a small FIFO,
 * prefetched as they enter, and are scanned PREFETCH_DEPTH pops later, by
 * when their words are on their way to the cache. What is in the FIFO when
 * the budget ends goes back into the buffer. */
#define PREFETCH_DEPTH 16

bool mark_drain(struct marker *m, size_t budget)
{
    uintptr_t fifo[PREFETCH_DEPTH];
    unsigned head = 0, held = 0;
    size_t goal = budget > SIZE_MAX - m->scanned ? SIZE_MAX : m->scanned + budget;
    bool drained = false;
    for (unsigned i = 1; m->scanned < goal; i++) {
        uintptr_t item;
        if (held < PREFETCH_DEPTH && pop(m, &item)) {
            __builtin_prefetch((const void *)item);
            fifo[(head + held++) % PREFETCH_DEPTH] = item;
            if (held < PREFETCH_DEPTH)
                continue;
        }
        if (held == 0) {
            drained = true;
            break;
        }
        item = fifo[head];
        head = (head + 1) % PREFETCH_DEPTH;
        held--;
        scan_item(m, item);
        if (i % 64 == 0)
            balance(m);
    }
    while (held > 0)
        push(m, fifo[(head + --held) % PREFETCH_DEPTH]);
    publish_scanned(m);
    return drained;
}

bool mark_has_work(void)
{
    return AO_load(&full_count) != 0;
}

bool mark_done(void)
{
    return AO_load(&active) == 0 && AO_load(&full_count) == 0;
}

size_t mark_marked_bytes(void)
{
    return AO_load(&marked_total);
}

size_t mark_scanned_bytes(void)
{
    return AO_load(&scanned_total);
}

void mark_reset(void)
{
    AO_store(&marked_total, 0);
    AO_store(&scanned_total, 0);
}

void mark_set_check(bool on)
{
    AO_store(&check_mode, on);
}

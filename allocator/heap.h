/*
 * heap.h — the page heap: address space, arenas, spans of pages.
 *
 * At initialisation the heap reserves one large range of address space
 * (inaccessible, unbacked). It commits the range from the bottom in arenas of
 * HEAP_ARENA_SIZE as it grows, so every heap address lies in
 * [heap_base, heap_base + heap_used): "is this word a heap address" is one
 * subtraction and one compare. A table with one entry per page maps a page to
 * the span covering it, so an interior pointer finds its span with one load.
 *
 * Free pages form free runs (spans in state SPAN_FREE). Runs are kept fully
 * coalesced — two free runs are never adjacent — and a request is served by
 * best fit: the smallest run that is large enough (lowest address among
 * equals in the large-run list). Size buckets for runs below
 * HEAP_SMALL_RUN_PAGES pages make the common case a bitmap scan.
 *
 * Page table invariant: every page of an in-use span maps to that span; the
 * first and last page of a free run map to the run; every other page maps
 * to NULL.
 *
 * Free pages once used stay backed by memory until the scavenger returns
 * them to the OS (heap_release); a per-page bit records which are
 * returned, and a page handed out again loses it. Invariant: only free
 * pages that were touched are ever returned. Best fit looks first among
 * the runs whose first page is backed, so that pages returned or never
 * touched are taken only when no backed run will do.
 *
 * Locking: one mutex, the heap lock, guards free runs, the table's writes,
 * span and bitmap pools and the counters. Lock order: a central lock may be
 * held when taking the heap lock, never the reverse.
 */
#ifndef TRICOLOR_HEAP_H
#define TRICOLOR_HEAP_H

#include <atomic_ops.h>
#include <stddef.h>
#include <stdint.h>

#include "../gc/platform.h"
#include "span.h"

#define HEAP_ARENA_SIZE      ((size_t)64 << 20)
#define HEAP_ARENA_PAGES     (HEAP_ARENA_SIZE >> SC_PAGE_SHIFT)
#define HEAP_SMALL_RUN_PAGES 128

extern uintptr_t heap_base; /* set once by heap_init, then immutable */
extern AO_t heap_sweepgen;  /* +2 per cycle, written only with the allocator frozen */
extern AO_t heap_live;      /* bytes of objects: marked at the last cycle + handed out since */
extern AO_t heap_trigger;   /* heap_live at which the next cycle starts (collector's) */

/* Called by the allocator when heap_live reached heap_trigger, outside every
 * allocator lock; the collector defines it. */
void heap_trigger_hit(void);
extern AO_t heap_used;      /* committed bytes from heap_base; heap lock stores, anyone loads */
extern AO_t *heap_spans;    /* page index -> struct span *; heap lock stores, anyone loads */

/* Reserve the address space. Idempotence is the caller's (gc_init's) job.
 * Returns 0, or -1 with errno = ENOMEM. */
int heap_init(void);

/* The span whose pages contain `p`, or NULL when `p` is outside the
 * committed heap or on a page no span covers. The span may be free. */
static inline struct span *heap_span_of(const void *p)
{
    size_t used = AO_load_acquire(&heap_used); /* heap_base is set before it grows */
    if (unlikely(!used))
        return NULL;
    uintptr_t off = (uintptr_t)p - heap_base;
    if (off >= used)
        return NULL;
    return (struct span *)AO_load(&heap_spans[off >> SC_PAGE_SHIFT]);
}

/* A span of `npages` pages laid out for `spanclass` (span_init), in state
 * SPAN_IN_USE and entered in the page table; NULL with errno = ENOMEM when
 * the reservation is exhausted. */
struct span *heap_alloc(size_t npages, unsigned spanclass);

/* Return an in-use span's pages; they coalesce with free neighbours. */
void heap_free(struct span *s);

/* Zeroed metadata memory outside the heap, never freed (takes the heap
 * lock); NULL when the kernel refuses. */
void *heap_meta_alloc(size_t size);

struct heap_stats {
    size_t reserved;  /* bytes of address space reserved */
    size_t committed; /* bytes committed (arenas) */
    size_t in_use;    /* bytes in in-use spans */
    size_t free;      /* bytes in free runs */
    size_t touched;   /* bytes of pages ever handed out (the rest were never touched) */
    size_t released;  /* bytes of free pages returned to the OS (part of free) */
    size_t free_runs; /* number of free runs */
    size_t spans;     /* in-use spans */
};

void heap_read_stats(struct heap_stats *st);

/* Return free pages to the OS (os_return with `mode`): at most max_pages
 * pages of one free run, from the highest free page still backed by
 * memory downwards. Call outside the allocator; the system call runs
 * without the heap lock. Returns the pages returned, 0 when every free
 * page already is. A page handed out again is backed again (and counted
 * as touched, never as released). */
size_t heap_release(size_t max_pages, enum os_return_mode mode);

/* Walk the whole committed heap and check the page table invariant, full
 * coalescing and the counters. For tests; takes the heap lock. */
bool heap_is_valid(void);

/* The heap lock, for fork handling and tests. */
void heap_lock(void);
void heap_unlock(void);

/* The allocator's world lock. Every allocator operation that takes a lock
 * or changes a span's bitmaps — every slow path — runs between heap_enter
 * and heap_leave (shared). The collector freezes the allocator (exclusive)
 * around every stop of the world, so no stopped thread is ever in the
 * middle of such an operation; only allocation fast paths can be
 * interrupted. Lock order: world lock, then central locks, then the heap
 * lock.
 *
 * Freezing is two steps, so that the world can be stopped in between:
 * heap_freeze_begin closes the allocator to newcomers, heap_freeze_wait
 * waits for those inside to leave. A thread stopped by the collector's
 * signal while inside (heap_inside) is not stopped there: it stops where it
 * leaves, or where it would wait to enter (heap_stop_point). With the other
 * threads stopped first, it has a CPU to finish on; waiting for it first,
 * on a machine with more threads than CPUs, can take a scheduler timeslice. */
void heap_enter(void);
void heap_leave(void);
void heap_freeze_begin(void);
void heap_freeze_wait(void);
void heap_freeze(void); /* both steps */
void heap_thaw(void);

/* Nonzero while the calling thread is inside (or claiming) the world lock;
 * readable from a signal handler. */
extern __thread unsigned heap_inside __attribute__((tls_model("initial-exec")));

/* Called by a thread leaving the allocator, or about to wait for it, while
 * it is frozen: the place to stop if a stop of the world is in progress
 * (provided by the collector). */
void heap_stop_point(void);

/* Call fn for every span in use (collector, world stopped and frozen). */
void heap_each_span(void (*fn)(struct span *s));

/* Defined by the collector: an allocating thread loaded `bytes` of slots
 * while a cycle marks, and pays its mark assist (outside the world lock). */
void heap_assist_hook(size_t bytes);

/* In a fork child, instead of heap_thaw. */
void heap_thaw_in_child(void);

/* 1 from the start of a cycle's marking (world stopped) to its mark
 * termination (world stopped); the collector writes. While it is set,
 * objects handed out are marked at once (allocate-black) and no span is
 * swept: sweeping needs the marks of a finished cycle. */
extern AO_t heap_marking;

/* Sweep large spans not swept for the current heap_sweepgen: free the
 * unmarked ones, clear the mark of the others; stop once `pages` pages
 * are free or after `budget` spans (SIZE_MAX, SIZE_MAX: every one). Call
 * between heap_enter and heap_leave. Returns the pages freed. */
size_t heap_sweep_large(size_t pages, size_t budget);

/* Is a large span left to sweep? */
bool heap_unswept_large(void);

/* The flip, with the world stopped, after heap_sweepgen advanced: every
 * large span becomes unswept. */
void heap_flip_large(void);



#endif /* TRICOLOR_HEAP_H */

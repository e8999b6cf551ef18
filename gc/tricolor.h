/*
 * tricolor.h — the one public header of tricolor, a garbage collector for C.
 *
 * Allocate with gc_alloc() (or gc_alloc_noscan() for memory that never holds
 * pointers), store pointers into heap objects with GC_WRITE(), and never call
 * free(): gc_free() exists only to give memory back early.
 *
 * Thread safety: every function here may be called from any thread at any
 * time, unless its comment says otherwise.
 *
 * Errors are C errors: an allocation that cannot be satisfied returns NULL
 * with errno = ENOMEM. Passing a pointer the heap does not own where an
 * object is required (gc_free, gc_size, gc_realloc), or freeing an object
 * twice, prints one line on stderr naming the function and the address and
 * then calls abort().
 */
#ifndef TRICOLOR_H
#define TRICOLOR_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "tricolor_barrier.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define GC_API_ __attribute__((visibility("default")))
#define GC_MALLOC_ATTR_ __attribute__((malloc, warn_unused_result))
#define GC_REALLOC_ATTR_ __attribute__((warn_unused_result)) /* holds copied pointers */
#else
#define GC_API_
#define GC_MALLOC_ATTR_
#define GC_REALLOC_ATTR_
#endif

/* Initialise the library. Optional and idempotent: the first allocation
 * initialises it too. Returns 0, or -1 with errno set when the heap's address
 * space cannot be reserved. */
GC_API_ int gc_init(void);

/* A zeroed object of at least `size` bytes, aligned like malloc's: for any
 * object type that fits in `size` bytes (16 bytes for sizes that are
 * multiples of 16, at least 8 otherwise). Its words are scanned for pointers.
 * gc_alloc(0) returns a unique object. NULL with errno = ENOMEM when the
 * request cannot be satisfied. */
GC_API_ void *gc_alloc(size_t size) GC_MALLOC_ATTR_;

/* Like gc_alloc, for memory that never holds heap pointers (strings, numeric
 * arrays): the collector never looks inside it. */
GC_API_ void *gc_alloc_noscan(size_t size) GC_MALLOC_ATTR_;

/* gc_alloc(n * size), NULL with errno = ENOMEM when the product overflows. */
GC_API_ void *gc_calloc(size_t n, size_t size) GC_MALLOC_ATTR_;

/* Resize the object at `p` (the start of an object, or NULL) to `size` bytes,
 * keeping its contents up to the smaller size and its kind (scanned or
 * noscan). Grown bytes are zero. Returns the object, possibly moved; on
 * failure NULL with errno = ENOMEM and `p` untouched. gc_realloc(NULL, n) is
 * gc_alloc(n); gc_realloc(p, 0) returns a unique minimal object of the same
 * kind. */
GC_API_ void *gc_realloc(void *p, size_t size) GC_REALLOC_ATTR_;

/* A copy of the NUL-terminated string `s` in a noscan object. */
GC_API_ char *gc_strdup(const char *s) GC_MALLOC_ATTR_;

/* Give the object starting at `p` back at once: from the moment gc_free
 * returns, the object is gone for every thread (gc_base finds nothing there,
 * a second gc_free aborts) and its memory is reused by later allocations.
 * gc_free(NULL) does nothing. Freeing from a thread other than the
 * allocating one is fine. */
GC_API_ void gc_free(void *p);

/* Usable size in bytes of the object starting at `p` (at least the size asked
 * for). */
GC_API_ size_t gc_size(const void *p);

/* Start of the allocated object that `p` points into (anywhere inside it),
 * or NULL when `p` is not inside an allocated object of the heap. Never
 * aborts. */
GC_API_ void *gc_base(const void *p);

/* ---- collection ---- */

/* Run a full collection and return when it is done (sweeping included):
 * every object unreachable when it started has been reclaimed. */
GC_API_ void gc_collect(void);

/* Set the heap growth allowed between collections, as GCPERCENT does: the
 * heap goal is live + (live + stacks + globals) * percent / 100 (at least
 * 4 MiB * percent / 100), and a cycle starts early enough for its
 * concurrent marking to finish near the goal (between 45/64 and 61/64 of
 * the way, by what the last cycles measured). A negative value turns
 * automatic collection off, but for a memory limit (gc_collect still
 * works). Returns the previous setting; takes effect at once, mid-cycle
 * too. Thread-safe. */
GC_API_ int gc_set_percent(int percent);

/* Set a soft limit on the memory the collector holds from the system, as
 * GCMEMLIMIT does: the heap goal shrinks so that everything the library has
 * mapped (heap, its page table, metadata) and not returned stays under
 * `limit` bytes, less 3% headroom; cycles run when the heap reaches that
 * goal even with GCPERCENT off, and never below the live heap, so a limit
 * smaller than what the program keeps is exceeded rather than a cycle run
 * without end. A negative value only queries. Returns the previous limit
 * (INT64_MAX: none, the default); takes effect at once, mid-cycle too.
 * Thread-safe. */
GC_API_ int64_t gc_set_memory_limit(int64_t limit);

/* Run a full collection (gc_collect), then return every free page of the
 * heap to the OS at once (madvise MADV_DONTNEED): the resident size drops
 * to what live objects and partly used spans need. The background
 * scavenger does the same gradually for memory over the heap goal (or
 * near the memory limit). Thread-safe; like Go's debug.FreeOSMemory. */
GC_API_ void gc_free_os_memory(void);

/* The durations, in nanoseconds, of the most recent stop-the-world pauses
 * (at most `max`, and at most the last 256), oldest first. Returns how many
 * were written. */
GC_API_ size_t gc_read_pauses(uint64_t *ns, size_t max);

/* ---- statistics ----
 * Go's runtime.MemStats and debug.GCStats, with Go's field names, for the
 * fields that apply. Counts are cumulative since the program started. The
 * allocator counts off its fast path (per thread, summed on read): a
 * reading briefly holds up allocations that need more than a thread's
 * cached span. At a quiescent point (no thread allocating or freeing) the
 * identities below hold exactly; while threads run, each field is read at
 * a slightly different moment. */

#define GC_NUM_SIZE_CLASSES 68 /* entries of BySize: size classes 0 to 67 */
#define GC_PAUSE_HISTORY    256

struct gc_memstats {
    /* Alloc: bytes of allocated heap objects, as HeapAlloc. */
    uint64_t Alloc;
    /* TotalAlloc: cumulative bytes allocated for heap objects (each object
     * counts its size class's size, or its pages for objects larger than
     * 32 KiB); never decreases. */
    uint64_t TotalAlloc;
    /* Sys: bytes of memory the library obtained from the OS: the committed
     * heap (HeapSys), its page table and metadata. Sys - HeapReleased is
     * what it holds in memory, and what a memory limit counts. */
    uint64_t Sys;
    /* Mallocs: cumulative count of heap objects allocated. */
    uint64_t Mallocs;
    /* Frees: cumulative count of heap objects freed, by the collector's
     * sweeping or by gc_free (counted when gc_free returns). */
    uint64_t Frees;
    /* HeapAlloc: bytes of allocated heap objects: reachable ones, and
     * unreachable ones not yet swept. TotalAlloc - freed bytes. */
    uint64_t HeapAlloc;
    /* HeapSys: bytes of heap memory obtained from the OS: the committed
     * arenas (64 MiB each), HeapInuse + HeapIdle. Pages never touched
     * take no memory: they count as released. */
    uint64_t HeapSys;
    /* HeapIdle: bytes in free page runs, HeapSys - HeapInuse; of those,
     * HeapIdle - HeapReleased still hold memory. */
    uint64_t HeapIdle;
    /* HeapInuse: bytes in in-use spans (at least HeapAlloc, as spans have
     * free slots). */
    uint64_t HeapInuse;
    /* HeapReleased: bytes of HeapIdle that hold no memory: free pages
     * returned to the OS and pages never touched. */
    uint64_t HeapReleased;
    /* HeapObjects: allocated heap objects, Mallocs - Frees. */
    uint64_t HeapObjects;
    /* NextGC: the heap goal, in HeapAlloc bytes (roughly: it also counts
     * the free slots of the spans threads hold): the next cycle aims to
     * end by it. */
    uint64_t NextGC;
    /* LastGC: when the last cycle ended, ns since the Unix epoch
     * (CLOCK_REALTIME); 0 before the first. */
    uint64_t LastGC;
    /* PauseTotalNs: cumulative ns of stop-the-world pauses of the cycles
     * ended so far. */
    uint64_t PauseTotalNs;
    /* PauseNs: the pause of recent cycles (the sum of a cycle's stops of
     * the world), a circular buffer: the latest cycle's is at
     * PauseNs[(NumGC + 255) % 256]. */
    uint64_t PauseNs[GC_PAUSE_HISTORY];
    /* PauseEnd: when those cycles ended (ns since the epoch), indexed as
     * PauseNs; PauseEnd[(NumGC + 255) % 256] is LastGC. */
    uint64_t PauseEnd[GC_PAUSE_HISTORY];
    /* NumGC: completed cycles. */
    uint32_t NumGC;
    /* NumForcedGC: of those, cycles gc_collect asked for. */
    uint32_t NumForcedGC;
    /* GCCPUFraction: the fraction of the available CPU time (GCPROCS CPUs
     * since gc_init) spent in the collector's marking (background workers,
     * marking on idle CPUs, assists) and its pauses (each counting GCPROCS
     * CPUs), at most 1; the same figure as gctrace's %. Sweeping is not
     * counted. */
    double GCCPUFraction;
    /* BySize: allocations by size class. BySize[N] counts objects of
     * size S with BySize[N-1].Size < S <= BySize[N].Size; BySize[0] (Size
     * 0) stays empty: objects larger than 32 KiB are not counted here. */
    struct {
        uint32_t Size;   /* the class's object size in bytes */
        uint64_t Mallocs; /* cumulative objects allocated in the class */
        uint64_t Frees;   /* cumulative objects freed in the class */
    } BySize[GC_NUM_SIZE_CLASSES];
};

/* Fill *ms with the statistics now. */
GC_API_ void gc_read_memstats(struct gc_memstats *ms);

/* Go's debug.GCStats: the pause history of the completed cycles. */
struct gc_gc_stats {
    int64_t LastGC;     /* when the last cycle ended, ns since the epoch; 0: none */
    int64_t NumGC;      /* completed cycles */
    int64_t PauseTotal; /* ns of pauses of those cycles */
    /* The pauses (each the sum of a cycle's stops of the world, ns) and
     * end times (ns since the epoch) of the last NPause cycles, most recent
     * first. */
    uint64_t Pause[GC_PAUSE_HISTORY];
    uint64_t PauseEnd[GC_PAUSE_HISTORY];
    size_t NPause;      /* entries filled: NumGC, at most 256 */
    /* Quantiles of Pause[0, NPause), as Go computes them: the minimum, the
     * 25th, 50th and 75th percentiles (element NPause * i / 4 in sorted
     * order) and the maximum; all zero when NPause is 0. */
    uint64_t PauseQuantiles[5];
};

/* Fill *st with the pause history now. */
GC_API_ void gc_read_gc_stats(struct gc_gc_stats *st);

/* ---- threads ----
 * The collector must know every thread that holds heap pointers, to stop it
 * and scan its stack, registers and thread-local variables. A thread is
 * registered automatically when it first allocates, and unregistered when
 * it exits. Threads that only hold pointers (they never allocate) register
 * themselves, or are started with gc_pthread_create. */

/* pthread_create, with the new thread registered before `start` runs. */
GC_API_ int gc_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                              void *(*start)(void *), void *arg);

/* Register the calling thread (idempotent). 0, or -1 with errno set. */
GC_API_ int gc_register_thread(void);

/* Unregister the calling thread: from now on its stack is not scanned. A
 * thread that allocates again is registered again. */
GC_API_ void gc_unregister_thread(void);

/* ---- roots ---- */

/* Scan [lo, hi) for heap pointers at every collection: memory the collector
 * does not own (malloc, mmap) that holds pointers to heap objects. Ranges
 * may not overlap a range already added. 0, or -1 with errno = ENOMEM. */
GC_API_ int gc_add_roots(void *lo, void *hi);

/* Stop scanning a range added with gc_add_roots (same lo and hi). */
GC_API_ void gc_remove_roots(void *lo, void *hi);

#ifdef __cplusplus
}
#endif

#endif /* TRICOLOR_H */

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

/*
 * tricolor_barrier.h — pointer stores into heap objects (included by
 * tricolor.h; installed beside it).
 *
 * THE RULE. While the program runs, the collector marks the heap
 * concurrently. It takes a snapshot of the roots (stacks, registers,
 * globals) with the world stopped and then marks everything that was
 * reachable at that moment. A pointer store into a heap object can hide an
 * object from it: the store overwrites the last heap reference to an object
 * that the program still holds elsewhere. So:
 *
 *   every store of a pointer into memory the collector allocated goes
 *   through GC_WRITE (one slot), gc_memcpy / gc_memmove / gc_memset (bulk),
 *   or is preceded by GC_BARRIER (stores the program makes itself: atomics,
 *   compare-and-swap, assembly).
 *
 * Stores into stacks, registers, globals, thread-locals, malloc'ed or
 * mmap'ed memory need no barrier (registered roots with gc_add_roots
 * included): they are roots, snapshotted whole. Stores into objects from
 * gc_alloc_noscan need none (the collector never looks inside them).
 * Initialising stores into an object allocated during the current cycle
 * would not need one either, but nothing tells the program which objects
 * those are: use GC_WRITE everywhere.
 *
 * BREAKING THE RULE. A store without the barrier while the collector marks
 * can make it free an object the program still uses: the program then reads
 * reused memory. Run with GCDEBUG=gccheckmark=1 to find such a store: after
 * every concurrent mark the collector marks again with the world stopped
 * and aborts with the address and size of any reachable object the
 * concurrent mark missed. A program that cannot use barriers runs with
 * GCDEBUG=gcstoptheworld=1 and loses nothing but pause time.
 *
 * COST. With no cycle marking, GC_WRITE costs a load of the flag, one
 * predictable branch, and a load of the slot being overwritten (its line is
 * about to be written anyway). While marking, the old value goes into a
 * per-thread buffer (no lock).
 *
 * GC_WRITE(lvalue, value): stores `value` into `lvalue` with the type checks
 * of a plain assignment; each argument is evaluated exactly once. `lvalue`
 * must have pointer or integer type. When the barrier is on it first shades
 * the value being overwritten (a deletion, or Yuasa, barrier). The old value
 * is kept live until the store is done: a thread stopped between the check
 * and the store still holds it in a register or on its stack, where the
 * collector looks. The three steps — load the old value, check, store —
 * stay in that order (compiler fences; they cost no instruction): the stop
 * signal may land between any two of them.
 *
 * GC_BARRIER(slot): shade the pointer `*slot` holds now; call it right
 * before every store the program makes to `*slot` itself (each attempt of a
 * compare-and-swap loop).
 */
#ifndef TRICOLOR_BARRIER_H
#define TRICOLOR_BARRIER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GC_BARRIER_API_ __attribute__((visibility("default")))

/* Nonzero while a cycle marks concurrently (the collector writes it with
 * the world stopped). Read by the barrier macros only. */
extern GC_BARRIER_API_ int gc_barrier_active;

/* The barrier's out-of-line half: shade `old`. */
GC_BARRIER_API_ void gc_barrier_shade(uintptr_t old);

/* Bulk stores into memory that holds pointers: the old contents of the
 * destination are shaded first, then the C library function runs. */
GC_BARRIER_API_ void *gc_memmove(void *dst, const void *src, size_t n);
GC_BARRIER_API_ void *gc_memcpy(void *dst, const void *src, size_t n);
GC_BARRIER_API_ void *gc_memset(void *dst, int c, size_t n);

#define GC_WRITE(lvalue, value)                                                                    \
    do {                                                                                           \
        __typeof__(lvalue) *gc_write_slot_ = &(lvalue);                                            \
        __typeof__(lvalue) gc_write_value_ = (value);                                              \
        __typeof__(lvalue) gc_write_old_ = *gc_write_slot_;                                        \
        __atomic_signal_fence(__ATOMIC_SEQ_CST);                                                   \
        if (__builtin_expect(__atomic_load_n(&gc_barrier_active, __ATOMIC_RELAXED), 0))            \
            gc_barrier_shade((uintptr_t)gc_write_old_);                                            \
        __atomic_signal_fence(__ATOMIC_SEQ_CST);                                                   \
        *gc_write_slot_ = gc_write_value_;                                                         \
        __asm__ volatile("" : : "g"(gc_write_old_), "m"(*gc_write_slot_));                         \
    } while (0)

#define GC_BARRIER(slot)                                                                           \
    do {                                                                                           \
        if (__builtin_expect(__atomic_load_n(&gc_barrier_active, __ATOMIC_RELAXED), 0))            \
            gc_barrier_shade(__atomic_load_n((uintptr_t *)(slot), __ATOMIC_RELAXED));              \
    } while (0)

#ifdef __cplusplus
}
#endif

#endif /* TRICOLOR_BARRIER_H */

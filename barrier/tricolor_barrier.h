/*
 * tricolor_barrier.h — pointer stores into heap objects (included by
 * tricolor.h; installed beside it).
 *
 * Rule: every store of a pointer into a heap object goes through GC_WRITE.
 * Stores into stacks, registers and globals need no barrier.
 *
 * GC_WRITE(lvalue, value) stores `value` into `lvalue` with the type checks
 * of a plain assignment; each argument is evaluated exactly once. While the
 * collector is marking concurrently the store first shades the value being
 * overwritten, so that an object reachable when marking began cannot be
 * hidden from the collector (the snapshot invariant). Until concurrent
 * marking exists the macro is a plain store, so that programs written today
 * are already correct.
 */
#ifndef TRICOLOR_BARRIER_H
#define TRICOLOR_BARRIER_H

#define GC_WRITE(lvalue, value)                                                                    \
    do {                                                                                           \
        __typeof__(lvalue) *gc_write_slot_ = &(lvalue);                                            \
        *gc_write_slot_ = (value);                                                                 \
    } while (0)

#endif /* TRICOLOR_BARRIER_H */

/*
 * central.h — the central lists: per span class, the spans no thread cache
 * holds (Go's mcentral).
 *
 * A thread cache that exhausts its span gives it back here and takes one
 * with free slots. `partial` holds spans that have free slots or frees
 * waiting to be reclaimed; `full` holds spans that had neither when they
 * were filed. The partial list is split by a hash of each span's last
 * owner, and a cache takes from its own sublist first.
 *
 * Rescue protocol — a free into a span on the full list must not be lost:
 *   filer (lock held):  where = FULL;  fence;  reclaim (lowers free_pending,
 *                       takes freed bits);  file on partial if a slot is free
 *   freer:              set freed bit (CAS);  if free_pending was 0:
 *                       free_pending = 1;  fence;  if where == FULL: lock,
 *                       recheck (the heap lock too: the struct may describe
 *                       another span by now), move the span to partial
 * Either the filer's reclaim sees the freed bit, or the freer sees FULL.
 *
 * Locking: one mutex per span class. It may be held while taking the heap
 * lock, never the other way round.
 */
#ifndef TRICOLOR_CENTRAL_H
#define TRICOLOR_CENTRAL_H

#include "span.h"

/* A span of `spanclass` with a free slot in its alloc cache, now owned by
 * the caller's cache `owner` (where = SPAN_IN_CACHE); NULL with errno =
 * ENOMEM. Spans return preferably to the cache that last took them: a
 * thread that frees what it allocated then keeps its objects to itself, and
 * threads do not contend on each other's spans. */
struct span *central_take(unsigned spanclass, const void *owner);

/* Give a span the caller owns back to its central list. */
void central_give_back(struct span *s);

/* Announce a slot freed with span_mark_freed in a small span of span class
 * `spanclass`, read before the slot was freed (enters the allocator itself
 * when it must take a lock). From the moment the slot is marked freed, its
 * span may be emptied by its owner or a sweeper and its struct reused by
 * the page heap for another span: `s` may no longer be what the freer
 * freed into, and the rescue checks that it is. */
void central_note_free(struct span *s, unsigned spanclass);

/* Background sweeping: sweep one unswept span of `spanclass` (free it to
 * the page heap if empty). Between heap_enter and heap_leave. False when
 * none is left. */
bool central_sweep_one(unsigned spanclass);

/* Before taking npages from the page heap while the last cycle's sweep is
 * unfinished: sweep large spans, then central spans, until as many pages
 * went back to the page heap, or RECLAIM_BUDGET spans were swept, or none
 * is left. Between heap_enter and heap_leave. */
void central_reclaim(size_t npages);

/* The flip, with the allocator frozen and the world stopped, after
 * heap_sweepgen advanced: every central span becomes unswept. */
void central_flip(void);

#endif /* TRICOLOR_CENTRAL_H */

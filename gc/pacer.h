/*
 * pacer.h — when a cycle starts and how hard allocating threads help it:
 * the heap goal, the trigger, the cons/mark ratio and the assist ratio
 * (DESIGN.md §5), as pure functions of what the last cycles measured. No
 * state lives here: collect.c keeps a `struct pacer` and calls these; the
 * tests drive them through simulated programs (tests/test_pacer.c).
 *
 * The model (Go's pacer, 1.18 and later). A cycle that starts at heap size
 * `trigger` must finish scanning `scan` bytes (heap objects with pointers,
 * stacks, globals) before the program allocates its way to the goal. With
 * background marking at utilisation u (25% of the CPUs), the program
 * allocates cons_mark·(1−u)/u bytes per byte scanned, cons_mark being the
 * program's allocation rate over the markers' scan rate per CPU, so the
 * runway it needs is that times `scan`. cons_mark is measured at the end of
 * every cycle; the largest of the last PACER_HISTORY is used, so that one
 * quiet cycle does not start the next too late.
 */
#ifndef TRICOLOR_PACER_H
#define TRICOLOR_PACER_H

#include <stdbool.h>
#include <stdint.h>

#define PACER_HISTORY     4
#define PACER_UTILISATION 0.25 /* the background workers' share of GCPROCS */
#define PACER_MIN_HEAP    ((uint64_t)4 << 20)
#define PACER_NO_LIMIT    INT64_MAX

/* What the pacer knows between cycles. */
struct pacer {
    int percent;                       /* GCPERCENT; negative: off */
    int64_t limit;                     /* memory limit in bytes; PACER_NO_LIMIT: none */
    uint64_t marked;                   /* heap bytes marked by the last cycle */
    uint64_t heap_scan;                /* of those, bytes in objects with pointers */
    uint64_t stack_scan;               /* stack bytes the last cycle scanned */
    uint64_t globals_scan;             /* global and registered-root bytes scanned */
    double cons_mark[PACER_HISTORY];   /* the last cycles' measured cons/mark ratios */
    unsigned ncons;                    /* how many of them are measured (at most HISTORY) */
};

/* The memory the memory limit counts, at the moment the goal is computed. */
struct pacer_memory {
    uint64_t mapped;    /* everything the library mapped and did not return to the OS */
    uint64_t heap_free; /* of that, free heap pages not returned */
    uint64_t heap_live; /* bytes of live (allocated, not yet swept free) objects */
};

/* A new pacer: GCPERCENT `percent`, no limit, nothing measured yet. */
struct pacer pacer_new(int percent);

/* The heap goal. GCPERCENT's: marked + (marked + stacks + globals)·percent/100,
 * at least PACER_MIN_HEAP·percent/100; the memory limit's, when set (`mem`
 * may be NULL without one): limit − (memory that is not heap + what is over
 * the limit), less 3% headroom (at least 1 MiB), never below `marked`. The
 * lower of the two; UINT64_MAX when GCPERCENT is off and there is no limit. */
uint64_t pacer_goal(const struct pacer *p, const struct pacer_memory *mem);

/* GCPERCENT's goal alone: above pacer_goal's, the memory limit sets it. */
uint64_t pacer_percent_goal(const struct pacer *p);

/* The heap size at which the next cycle starts, for `goal`: the goal less
 * the runway (model above), kept between 45/64 and 61/64 of the way from
 * `marked` to the goal. Stop-the-world marking needs no runway: the goal. */
uint64_t pacer_trigger(const struct pacer *p, uint64_t goal, bool concurrent);

/* Largest cons/mark ratio of the last PACER_HISTORY cycles (1 before any). */
double pacer_cons_mark(const struct pacer *p);

/* What one cycle measured, at its end. */
struct pacer_sample {
    uint64_t live_at_trigger; /* heap_live when the cycle was triggered */
    uint64_t live_at_end;     /* heap_live when marking ended */
    uint64_t scan_work;       /* bytes scanned: heap, stacks, globals */
    double utilisation;       /* GC CPU share while marking: background and assists */
};

/* Record a finished cycle's cons/mark ratio:
 * allocated during the mark · u / (scan work · (1 − u)). */
void pacer_record(struct pacer *p, const struct pacer_sample *s);

/* Scan work owed per byte allocated while a cycle marks: the scan work
 * left over the heap left before the goal. `started` is heap_live when the
 * cycle began; the goal is at least a little past it (Go's minimum runway:
 * a cycle that began past its goal, as each does under a limit below the
 * live heap, still gets the overshoot's runway). Once the scan work done
 * passes what was expected, the heap grew: all scannable heap is assumed
 * left to scan (`max_scan`), and the runway from `started` to the goal
 * stretches in proportion, so that the ratio stays level, up to
 * (1 + percent/100)·goal; a goal the memory limit set (GCPERCENT off, or
 * below GCPERCENT's goal) does not stretch. A heap past even that goal
 * gets more runway, so that the ratio stays finite: 10%, or, past a
 * limit's goal above the marked heap, the headroom that goal kept below
 * the limit. Under a limit below the marked heap the heap is always past
 * its goal: every cycle gets the 10% from where it began. */
double pacer_assist_ratio(const struct pacer *p, uint64_t goal, uint64_t started,
                          uint64_t heap_live, uint64_t work_done, uint64_t max_scan);

/* The scan work a cycle expects, from the last one: heap, stacks, globals. */
uint64_t pacer_expected_scan(const struct pacer *p);

/* ---- the GC CPU limiter ----
 * A memory limit the live heap does not fit under would have the program
 * collect without end, its threads assisting all the while. The limiter
 * (Go's gcCPULimiter) caps that: a bucket of CPU time that fills by the
 * GC's CPU time and drains by the program's, updated at most every
 * PACER_LIMITER_PERIOD_NS. It fills only while the GC takes more than
 * half of the CPU; when it is full (capacity: one second per GCPROCS) the
 * collector stops asking for assists, and the GC keeps only its background
 * workers' share: the program slows by at most about 2x, never freezes.
 * Marking on CPUs the program leaves idle counts for neither side. */
#define PACER_LIMITER_PERIOD_NS   UINT64_C(10000000)
#define PACER_LIMITER_CAPACITY_NS UINT64_C(1000000000) /* per GCPROCS */

struct pacer_limiter {
    uint64_t fill;      /* ns of CPU time in the bucket */
    uint64_t last_ns;   /* clock at the last update */
    uint64_t last_gc;   /* the GC CPU time counter then */
    uint64_t last_idle; /* the idle-mark CPU time counter then */
    bool full;
};

/* A limiter that starts empty at `now`. */
struct pacer_limiter pacer_limiter_new(uint64_t now);

/* Bring the bucket to `now` for `procs` CPUs, from the cumulative GC CPU
 * time (`gc_cpu`: marking, assists, and every pause times procs) and idle
 * marking time (`idle_cpu`); nothing changes before a period has passed.
 * Returns whether it is full. */
bool pacer_limiter_update(struct pacer_limiter *l, unsigned procs, uint64_t now,
                          uint64_t gc_cpu, uint64_t idle_cpu);

/* A memory limit as GCMEMLIMIT writes it: "off" (PACER_NO_LIMIT), or a
 * non-negative integer of bytes with an optional unit B, KiB, MiB, GiB or
 * TiB. 0 with `*bytes` set, or -1 when `s` is not one of those (or too
 * large for 63 bits). */
int pacer_parse_bytes(const char *s, int64_t *bytes);

#endif /* TRICOLOR_PACER_H */

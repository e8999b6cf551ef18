/*
 * gctrace.h — one cycle of a gctrace log, and the parser that reads it.
 *
 * With GCDEBUG=gctrace=1 the collector prints one line per cycle on stderr,
 * in the format of Go's GODEBUG=gctrace=1, so that the same tools read both:
 *
 *   gc # @#s #%: #+#+# ms clock, #+#/#/#+# ms cpu, #->#-># MB, # MB goal,
 *       # MB stacks, # MB globals, # P
 *
 * on one line, optionally followed by " (forced)". Go before 1.18 prints no
 * stacks and globals; such lines parse too, with has_roots false.
 *
 * gctrace_parse_line is a pure function: no allocation, no locale, no global
 * state; any thread may call it at any time.
 */
#ifndef TRICOLOR_GCTRACE_H
#define TRICOLOR_GCTRACE_H

#include <stdbool.h>

/* One "gc #" line. Times in milliseconds unless named otherwise; sizes in
 * MB as printed (Go's MB are MiB rounded down). */
struct gctrace_cycle {
    unsigned long cycle; /* gc #: cycles since the program started, from 1 */
    double start_s;      /* @#s: seconds from program start to this cycle */
    double cpu_percent;  /* #%: share of CPU spent in GC since program start */

    /* Wall clock of the three phases. */
    double clock_sweep_term; /* stopped: sweep termination */
    double clock_mark;       /* concurrent mark */
    double clock_mark_term;  /* stopped: mark termination */

    /* CPU time: the two pauses, and marking split by who did it. */
    double cpu_sweep_term;
    double cpu_assist;     /* mutators paying for their allocation */
    double cpu_background; /* dedicated and fractional mark workers */
    double cpu_idle;       /* workers on otherwise idle CPUs */
    double cpu_mark_term;

    double heap_start_mb; /* heap when marking started */
    double heap_end_mb;   /* heap when marking ended */
    double heap_live_mb;  /* marked (live) heap */
    double goal_mb;       /* heap goal of this cycle */

    bool has_roots;    /* stacks and globals were printed (Go 1.18 and later) */
    double stacks_mb;  /* stacks scanned; 0 without has_roots */
    double globals_mb; /* globals scanned; 0 without has_roots */

    unsigned long procs; /* # P: threads that could mark */
    bool forced;         /* " (forced)": the program asked for the cycle */
};

/* The stop-the-world time of a cycle: both pauses, wall clock, in ms. */
static inline double gctrace_pause_ms(const struct gctrace_cycle *c)
{
    return c->clock_sweep_term + c->clock_mark_term;
}

/* Parse one line (with or without its final '\n'). Returns 1 and fills
 * *out when the line is a well-formed gctrace line; returns 0 and leaves
 * *out untouched otherwise (other program output, "pacer:" and "scav"
 * lines, a "gc" line with a field missing or misspelt). Numbers are
 * decimal, digits with an optional fraction, at most 15 digits; the cycle
 * and P are whole. */
int gctrace_parse_line(const char *line, struct gctrace_cycle *out);

#endif /* TRICOLOR_GCTRACE_H */

/*
 * trace.h — GCDEBUG's trace lines (gctrace, gcpacertrace), formatted
 * exactly as Go's runtime prints them, so that tools written for Go's
 * traces read ours. Pure functions: the collector fills a record per
 * cycle and prints the line; the tests format records and compare.
 *
 * Go's number formats, which the lines keep:
 *   - times in milliseconds with two significant digits, at most three
 *     decimals, whole milliseconds from 10 ms on (0.026, 0.39, 1.2, 12);
 *   - seconds since start with three decimals (@0.012s);
 *   - sizes in whole MB (bytes >> 20), or bytes;
 *   - floating-point values as Go's print writes them: +1.500000e+000.
 */
#ifndef TRICOLOR_TRACE_H
#define TRICOLOR_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What gctrace=1 prints about one cycle. */
struct trace_cycle {
    unsigned long n;       /* cycle number, from 1 */
    uint64_t at_ns;        /* when it started, since the library started */
    unsigned cpu_percent;  /* GC CPU since start, of all GCPROCS CPUs, in % */
    uint64_t stw1_ns;      /* wall: sweep termination pause */
    uint64_t mark_ns;      /* wall: concurrent mark */
    uint64_t stw3_ns;      /* wall: mark termination pause */
    uint64_t assist_ns;    /* CPU: mark assists */
    uint64_t bg_ns;        /* CPU: background workers */
    uint64_t idle_ns;      /* CPU: marking on idle CPUs */
    unsigned procs;        /* GCPROCS: pauses count procs CPUs */
    uint64_t heap_start;   /* heap at the start, bytes */
    uint64_t heap_end;     /* heap at mark termination */
    uint64_t heap_live;    /* marked */
    uint64_t goal;
    uint64_t stacks;       /* stack bytes scanned */
    uint64_t globals;      /* global bytes scanned */
    bool forced;           /* asked for by gc_collect */
};

/* The gctrace line, newline included, into buf; returns its length (as
 * snprintf does). */
int trace_gc_line(char *buf, size_t size, const struct trace_cycle *c);

/* gcpacertrace's line as marking starts. */
struct trace_pacer_start {
    double assist_ratio; /* scan bytes per allocated byte */
    uint64_t heap_scan;  /* scannable heap expected */
    uint64_t heap_live;  /* heap at the start */
    uint64_t goal;
    unsigned dedicated;  /* dedicated workers */
    double fractional;   /* the fractional worker's share */
};
int trace_pacer_start_line(char *buf, size_t size, const struct trace_pacer_start *p);

/* gcpacertrace's line as marking ends. */
struct trace_pacer_end {
    double utilisation;  /* GC CPU share while marking */
    uint64_t heap_work, stack_work, globals_work; /* bytes scanned */
    uint64_t expected;   /* scan work expected */
    uint64_t triggered;  /* heap when the cycle was triggered */
    uint64_t heap_live;  /* heap at mark termination */
    uint64_t goal;
    double cons_mark;    /* the cons/mark ratio the cycle ran with */
};
int trace_pacer_end_line(char *buf, size_t size, const struct trace_pacer_end *p);

/* Go's millisecond format for `ns` (see above), NUL-terminated. */
void trace_ms(char *buf, size_t size, uint64_t ns);

/* Go's print format for a float64, NUL-terminated. */
void trace_float(char *buf, size_t size, double v);

#endif /* TRICOLOR_TRACE_H */

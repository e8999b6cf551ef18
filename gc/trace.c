/*
 * trace.c — formatting of the trace lines (see trace.h).
 */
#include "trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pacer.h"

#define MB(bytes) ((unsigned long long)((bytes) >> 20))

void trace_ms(char *buf, size_t size, uint64_t ns)
{
    if (ns >= 10000000) {
        snprintf(buf, size, "%llu", (unsigned long long)(ns / 1000000));
        return;
    }
    uint64_t x = ns / 1000, scale = 1000; /* microseconds: three decimals of a millisecond */
    if (x == 0) {
        snprintf(buf, size, "0");
        return;
    }
    while (x >= 100) {
        x /= 10;
        scale /= 10;
    }
    snprintf(buf, size, "%llu.%0*llu", (unsigned long long)(x / scale),
             scale == 1000 ? 3 : scale == 100 ? 2 : 1, (unsigned long long)(x % scale));
}

void trace_float(char *buf, size_t size, double v)
{
    if (v != v) {
        snprintf(buf, size, "NaN");
        return;
    }
    if (v + v == v && v != 0) {
        snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%+.6e", v); /* +d.dddddde+XX */
    char *e = strchr(tmp, 'e');
    int exp = atoi(e + 1);
    *e = 0;
    snprintf(buf, size, "%se%c%03d", tmp, exp < 0 ? '-' : '+', abs(exp));
}

int trace_gc_line(char *buf, size_t size, const struct trace_cycle *c)
{
    char at[32], t[8][24];
    uint64_t ms = c->at_ns / 1000000;
    snprintf(at, sizeof at, "%llu.%03llu", (unsigned long long)(ms / 1000),
             (unsigned long long)(ms % 1000));
    const uint64_t times[8] = {c->stw1_ns,          c->mark_ns,  c->stw3_ns,
                               c->stw1_ns * c->procs, c->assist_ns, c->bg_ns,
                               c->idle_ns,          c->stw3_ns * c->procs};
    for (int i = 0; i < 8; i++)
        trace_ms(t[i], sizeof t[i], times[i]);
    return snprintf(buf, size,
                    "gc %lu @%ss %u%%: %s+%s+%s ms clock, %s+%s/%s/%s+%s ms cpu, "
                    "%llu->%llu->%llu MB, %llu MB goal, %llu MB stacks, %llu MB globals, "
                    "%u P%s\n",
                    c->n, at, c->cpu_percent, t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7],
                    MB(c->heap_start), MB(c->heap_end), MB(c->heap_live), MB(c->goal),
                    MB(c->stacks), MB(c->globals), c->procs, c->forced ? " (forced)" : "");
}

int trace_pacer_start_line(char *buf, size_t size, const struct trace_pacer_start *p)
{
    char ratio[32], frac[32];
    trace_float(ratio, sizeof ratio, p->assist_ratio);
    trace_float(frac, sizeof frac, p->fractional);
    return snprintf(buf, size,
                    "pacer: assist ratio=%s (scan %llu MB in %llu->%llu MB) workers=%u+%s\n", ratio,
                    MB(p->heap_scan), MB(p->heap_live), MB(p->goal), p->dedicated, frac);
}

int trace_pacer_end_line(char *buf, size_t size, const struct trace_pacer_end *p)
{
    char cons[32];
    trace_float(cons, sizeof cons, p->cons_mark);
    return snprintf(buf, size,
                    "pacer: %d%% CPU (%d exp.) for %llu+%llu+%llu B work (%llu B exp.) in %llu B "
                    "-> %llu B (\u2206goal %lld, cons/mark %s)\n",
                    (int)(p->utilisation * 100), (int)(PACER_UTILISATION * 100),
                    (unsigned long long)p->heap_work, (unsigned long long)p->stack_work,
                    (unsigned long long)p->globals_work, (unsigned long long)p->expected,
                    (unsigned long long)p->triggered, (unsigned long long)p->heap_live,
                    (long long)p->heap_live - (long long)p->goal, cons);
}

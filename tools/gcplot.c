/*
 * gcplot.c — draw a gctrace log as an SVG picture.
 *
 *   gcplot [-o out.svg] [-t title] [trace.log]
 *
 * reads the log (standard input without a file), keeps the lines that
 * gctrace_parse_line accepts and skips everything else (program output,
 * "pacer:" and "scav" lines), writes one self-contained SVG file (default
 * gc.svg: no script, no external reference) and prints one summary line on
 * standard output.
 *
 * The picture is two panels over one time axis, seconds since program
 * start, each cycle drawn at the moment it started:
 *   (a) heap, MB, linear from 0: the heap when marking started and when it
 *       ended, the live (marked) heap and the goal, one line each;
 *   (b) time, ms, on a log scale, since a pause is often a thousandth of
 *       the concurrent mark beside it: each cycle's pause (both stopped
 *       phases, wall clock) as a bar, the concurrent mark as a line.
 * Legends stand right of the panels, where no data can hide them.
 *
 * Each series is one <polyline> or <path> element of class "series NAME"
 * (heap-start, heap-end, heap-live, heap-goal, pause, mark), so thousands
 * of cycles make a file of a few hundred kilobytes. With at most DOT_LIMIT
 * cycles every point also gets a dot, so that a lone cycle shows.
 *
 * Exit status: 0 when the picture is written; 1 when the log cannot be
 * read, holds no gc line or the picture cannot be written; 2 for a usage
 * error.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gctrace.h"

/* ---- reading the log ---- */

struct trace {
    struct gctrace_cycle *cycles;
    size_t n, cap;
};

static bool trace_add(struct trace *t, const struct gctrace_cycle *c)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        struct gctrace_cycle *grown = realloc(t->cycles, cap * sizeof *grown);
        if (!grown)
            return false;
        t->cycles = grown;
        t->cap = cap;
    }
    t->cycles[t->n++] = *c;
    return true;
}

/* Add every gc line of `in` to *t. False, with errno set, when reading
 * fails or memory runs out. */
static bool read_trace(FILE *in, struct trace *t)
{
    char *line = NULL;
    size_t size = 0;
    bool ok = true;
    struct gctrace_cycle c;
    errno = 0;
    while (ok && getline(&line, &size, in) >= 0)
        if (gctrace_parse_line(line, &c))
            ok = trace_add(t, &c);
    free(line);
    return ok && !ferror(in) && errno != ENOMEM;
}

/* ---- the series ---- */

static double heap_start(const struct gctrace_cycle *c)
{
    return c->heap_start_mb;
}

static double heap_end(const struct gctrace_cycle *c)
{
    return c->heap_end_mb;
}

static double heap_live(const struct gctrace_cycle *c)
{
    return c->heap_live_mb;
}

static double heap_goal(const struct gctrace_cycle *c)
{
    return c->goal_mb;
}

static double mark(const struct gctrace_cycle *c)
{
    return c->clock_mark;
}

enum shape { LINE, BARS };

struct series {
    const char *name;  /* class and marker id */
    const char *label; /* legend */
    const char *color;
    const char *dash; /* stroke-dasharray, "" for a solid line */
    enum shape shape;
    double (*value)(const struct gctrace_cycle *);
};

static const struct series heap_series[] = {
    {"heap-start", "heap at mark start", "#1f77b4", "", LINE, heap_start},
    {"heap-end", "heap at mark end", "#d62728", "", LINE, heap_end},
    {"heap-live", "live heap (marked)", "#2ca02c", "", LINE, heap_live},
    {"heap-goal", "heap goal", "#555555", "6 3", LINE, heap_goal},
};

static const struct series time_series[] = {
    {"pause", "pause (stop the world)", "#9467bd", "", BARS, gctrace_pause_ms},
    {"mark", "concurrent mark", "#ff7f0e", "", LINE, mark},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- axes ---- */

enum scale { LINEAR, LOG };

/* Values from lo to hi map onto pixels from p0 to p1 (p1 < p0 on a
 * vertical axis, whose values grow upwards). A LINEAR axis has a tick every
 * `step` from lo; a LOG axis one at every power of ten from lo. */
struct axis {
    enum scale scale;
    double lo, hi, step;
    double p0, p1;
};

#define MAX_TICKS 64

/* A round step (1, 2 or 5 times a power of ten) cutting `span` in about 5. */
static double nice_step(double span)
{
    double raw = span / 5;
    double magnitude = pow(10, floor(log10(raw)));
    double f = raw / magnitude;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * magnitude;
}

/* A linear axis over [lo, hi] with ends on ticks. An empty range widens
 * around its value, never below 0 when the values are not. */
static struct axis linear_axis(double lo, double hi, double p0, double p1)
{
    if (hi - lo <= 0) {
        double half = lo != 0 ? fabs(lo) / 2 : 0.5;
        lo = lo >= 0 && lo - half < 0 ? 0 : lo - half;
        hi += half;
    }
    struct axis a = {LINEAR, lo, hi, nice_step(hi - lo), p0, p1};
    a.lo = floor(lo / a.step) * a.step;
    a.hi = ceil(hi / a.step) * a.step;
    return a;
}

/* A log axis from the power of ten at or below the least positive value to
 * the one above the largest (at least one decade). */
static struct axis log_axis(double least, double most, double p0, double p1)
{
    if (!(least > 0 && least <= most)) {
        least = 0.01;
        most = 1;
    }
    struct axis a = {LOG, pow(10, floor(log10(least))), pow(10, ceil(log10(most))), 10, p0, p1};
    if (a.hi <= a.lo)
        a.hi = a.lo * 10;
    return a;
}

/* The pixel of value v; on a log axis, values at or below lo sit at p0. */
static double axis_px(const struct axis *a, double v)
{
    double f;
    if (a->scale == LINEAR)
        f = (v - a->lo) / (a->hi - a->lo);
    else
        f = v <= a->lo ? 0 : (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo));
    return a->p0 + f * (a->p1 - a->p0);
}

/* The values of the ticks of *a into ticks[]; returns how many. */
static int axis_ticks(const struct axis *a, double ticks[MAX_TICKS])
{
    int n = 0;
    if (a->scale == LINEAR) {
        int steps = (int)lround((a->hi - a->lo) / a->step);
        for (; n <= steps && n < MAX_TICKS; n++)
            ticks[n] = a->lo + n * a->step;
    } else {
        for (double v = a->lo; v <= a->hi * 1.001 && n < MAX_TICKS; v *= 10)
            ticks[n++] = v;
    }
    return n;
}

/* ---- the picture ---- */

enum {
    WIDTH = 960,
    HEIGHT = 640,
    PLOT_LEFT = 80,
    PLOT_RIGHT = 760,
    LEGEND_LEFT = 780,
    HEAP_TOP = 60,
    HEAP_BOTTOM = 350,
    TIME_TOP = 390,
    TIME_BOTTOM = 570,
    DOT_LIMIT = 100,
};

struct plot {
    FILE *out;
    const struct trace *trace;
    struct axis time; /* the x axis both panels share */
    bool dots;        /* a dot at every point */
};

/* Write s as XML character data. */
static void xml_text(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '&')
            fputs("&amp;", out);
        else if (*s == '<')
            fputs("&lt;", out);
        else if (*s == '>')
            fputs("&gt;", out);
        else if (*s == '"')
            fputs("&quot;", out);
        else
            fputc(*s, out);
    }
}

static void dot_marker(FILE *out, const struct series *s)
{
    fprintf(out,
            "<marker id=\"dot-%s\" viewBox=\"0 0 6 6\" refX=\"3\" refY=\"3\" markerWidth=\"6\""
            " markerHeight=\"6\" markerUnits=\"userSpaceOnUse\"><circle cx=\"3\" cy=\"3\""
            " r=\"2.5\" fill=\"%s\"/></marker>\n",
            s->name, s->color);
}

static void svg_begin(const struct plot *p, const char *title)
{
    fprintf(p->out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\""
            " viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n",
            WIDTH, HEIGHT, WIDTH, HEIGHT);
    fputs("<title>", p->out);
    xml_text(p->out, title);
    fputs("</title>\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n", p->out);
    fprintf(p->out, "<text x=\"%d\" y=\"32\" text-anchor=\"middle\" font-size=\"18\">",
            (PLOT_LEFT + PLOT_RIGHT) / 2);
    xml_text(p->out, title);
    fputs("</text>\n<defs>\n", p->out);
    for (size_t i = 0; p->dots && i < NELEM(heap_series); i++)
        dot_marker(p->out, &heap_series[i]);
    for (size_t i = 0; p->dots && i < NELEM(time_series); i++)
        if (time_series[i].shape == LINE)
            dot_marker(p->out, &time_series[i]);
    fputs("</defs>\n", p->out);
}

/* Grid lines and labels of the vertical axis *y, the time grid, the frame. */
static void draw_frame(const struct plot *p, const struct axis *y, const char *label)
{
    FILE *out = p->out;
    double ticks[MAX_TICKS];
    int n = axis_ticks(y, ticks);
    for (int i = 0; i < n; i++) {
        double py = axis_px(y, ticks[i]);
        fprintf(out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
                PLOT_LEFT, py, PLOT_RIGHT, py);
        fprintf(out, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", PLOT_LEFT - 6,
                py + 4, ticks[i]);
    }
    n = axis_ticks(&p->time, ticks);
    for (int i = 0; i < n; i++) {
        double px = axis_px(&p->time, ticks[i]);
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
                px, y->p1, px, y->p0);
    }
    fprintf(out,
            "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"none\""
            " stroke=\"black\"/>\n",
            PLOT_LEFT, y->p1, PLOT_RIGHT - PLOT_LEFT, y->p0 - y->p1);
    fprintf(out,
            "<text transform=\"translate(24,%.1f) rotate(-90)\" text-anchor=\"middle\">%s</text>\n",
            (y->p0 + y->p1) / 2, label);
}

/* The tick labels of the time axis and its name, under the lower panel. */
static void draw_time_labels(const struct plot *p)
{
    double ticks[MAX_TICKS];
    int n = axis_ticks(&p->time, ticks);
    for (int i = 0; i < n; i++)
        fprintf(p->out, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n",
                axis_px(&p->time, ticks[i]), TIME_BOTTOM + 18, ticks[i]);
    fprintf(p->out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
            (PLOT_LEFT + PLOT_RIGHT) / 2, TIME_BOTTOM + 44,
            "time since program start (s)");
}

/* What goes before the i-th point of a series: ten points a line of text. */
static const char *separator(size_t i)
{
    if (i == 0)
        return "";
    return i % 10 ? " " : "\n";
}

/* One polyline through the values of s. */
static void draw_line(const struct plot *p, const struct axis *y, const struct series *s)
{
    FILE *out = p->out;
    fprintf(out, "<polyline class=\"series %s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"",
            s->name, s->color);
    if (*s->dash)
        fprintf(out, " stroke-dasharray=\"%s\"", s->dash);
    if (p->dots)
        fprintf(out,
                " marker-start=\"url(#dot-%s)\" marker-mid=\"url(#dot-%s)\""
                " marker-end=\"url(#dot-%s)\"",
                s->name, s->name, s->name);
    fputs(" points=\"", out);
    for (size_t i = 0; i < p->trace->n; i++) {
        const struct gctrace_cycle *c = &p->trace->cycles[i];
        fprintf(out, "%s%.1f,%.1f", separator(i), axis_px(&p->time, c->start_s),
                axis_px(y, s->value(c)));
    }
    fputs("\"/>\n", out);
}

/* One path of vertical bars from the axis up to the values of s: 60% of
 * the room an evenly spaced cycle would have, between 1 and 8 pixels. */
static void draw_bars(const struct plot *p, const struct axis *y, const struct series *s)
{
    FILE *out = p->out;
    double width = 0.6 * (PLOT_RIGHT - PLOT_LEFT) / (double)p->trace->n;
    width = width < 1 ? 1 : width > 8 ? 8 : width;
    fprintf(out,
            "<path class=\"series %s\" fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\""
            " d=\"",
            s->name, s->color, width);
    for (size_t i = 0; i < p->trace->n; i++) {
        const struct gctrace_cycle *c = &p->trace->cycles[i];
        fprintf(out, "%sM%.1f %.1fV%.1f", separator(i), axis_px(&p->time, c->start_s), y->p0,
                axis_px(y, s->value(c)));
    }
    fputs("\"/>\n", out);
}

static void draw_series(const struct plot *p, const struct axis *y, const struct series *s,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i].shape == BARS)
            draw_bars(p, y, &s[i]);
        else
            draw_line(p, y, &s[i]);
    }
}

/* A legend for the n series s, from the height `top` down. */
static void draw_legend(const struct plot *p, int top, const struct series *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int y = top + 10 + 20 * (int)i;
        fprintf(p->out,
                "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\""
                " stroke-width=\"%d\" stroke-dasharray=\"%s\"/>\n",
                LEGEND_LEFT, y, LEGEND_LEFT + 24, y, s[i].color, s[i].shape == BARS ? 8 : 2,
                *s[i].dash ? s[i].dash : "none");
        fprintf(p->out, "<text x=\"%d\" y=\"%d\">%s</text>\n", LEGEND_LEFT + 30, y + 4,
                s[i].label);
    }
}

/* The largest value of any of the n series s over the trace. */
static double series_max(const struct trace *t, const struct series *s, size_t n)
{
    double most = 0;
    for (size_t i = 0; i < t->n; i++)
        for (size_t k = 0; k < n; k++)
            most = fmax(most, s[k].value(&t->cycles[i]));
    return most;
}

/* The least positive value of any of the n series s (HUGE_VAL: none). */
static double series_least(const struct trace *t, const struct series *s, size_t n)
{
    double least = HUGE_VAL;
    for (size_t i = 0; i < t->n; i++)
        for (size_t k = 0; k < n; k++) {
            double v = s[k].value(&t->cycles[i]);
            if (v > 0)
                least = fmin(least, v);
        }
    return least;
}

static struct axis time_axis(const struct trace *t)
{
    double first = t->cycles[0].start_s, last = first;
    for (size_t i = 1; i < t->n; i++) {
        first = fmin(first, t->cycles[i].start_s);
        last = fmax(last, t->cycles[i].start_s);
    }
    return linear_axis(first, last, PLOT_LEFT, PLOT_RIGHT);
}

/* Draw the trace t (at least one cycle) on `out`. */
static void render(FILE *out, const struct trace *t, const char *title)
{
    struct plot p = {out, t, time_axis(t), t->n <= DOT_LIMIT};
    struct axis heap = linear_axis(0, series_max(t, heap_series, NELEM(heap_series)),
                                   HEAP_BOTTOM, HEAP_TOP);
    struct axis ms = log_axis(series_least(t, time_series, NELEM(time_series)),
                              series_max(t, time_series, NELEM(time_series)), TIME_BOTTOM,
                              TIME_TOP);
    svg_begin(&p, title);
    draw_frame(&p, &heap, "heap (MB)");
    draw_series(&p, &heap, heap_series, NELEM(heap_series));
    draw_legend(&p, HEAP_TOP, heap_series, NELEM(heap_series));
    draw_frame(&p, &ms, "wall time (ms, log scale)");
    draw_series(&p, &ms, time_series, NELEM(time_series));
    draw_legend(&p, TIME_TOP, time_series, NELEM(time_series));
    draw_time_labels(&p);
    fputs("</svg>\n", out);
}

/* ---- the command ---- */

/* One line on stdout: what the picture shows at its extremes. */
static void summarize(const struct trace *t, const char *svg)
{
    size_t forced = 0, longest = 0;
    double heap = 0, goal = 0;
    for (size_t i = 0; i < t->n; i++) {
        const struct gctrace_cycle *c = &t->cycles[i];
        forced += c->forced;
        heap = fmax(heap, fmax(c->heap_start_mb, c->heap_end_mb));
        goal = fmax(goal, c->goal_mb);
        if (gctrace_pause_ms(c) > gctrace_pause_ms(&t->cycles[longest]))
            longest = i;
    }
    printf("gcplot: %zu cycles (%zu forced), max heap %g MB, max goal %g MB, "
           "longest pause %g ms (gc %lu) -> %s\n",
           t->n, forced, heap, goal, gctrace_pause_ms(&t->cycles[longest]),
           t->cycles[longest].cycle, svg);
}

/* Read the trace from `path` ("-" or NULL: stdin); prints why it fails. */
static bool load(const char *path, struct trace *t)
{
    bool use_stdin = !path || strcmp(path, "-") == 0;
    const char *name = use_stdin ? "standard input" : path;
    FILE *in = use_stdin ? stdin : fopen(path, "r");
    if (!in) {
        fprintf(stderr, "gcplot: cannot open %s: %s\n", name, strerror(errno));
        return false;
    }
    bool ok = read_trace(in, t);
    if (!ok)
        fprintf(stderr, "gcplot: cannot read %s: %s\n", name, strerror(errno));
    if (in != stdin)
        fclose(in);
    if (ok && t->n == 0) {
        fprintf(stderr,
                "gcplot: no gc lines in %s (capture the stderr of a program run with "
                "GCDEBUG=gctrace=1)\n",
                name);
        ok = false;
    }
    return ok;
}

/* Write the picture to `path`; prints why it fails and leaves no file. */
static bool save(const char *path, const struct trace *t, const char *title)
{
    FILE *out = fopen(path, "w");
    if (!out) {
        fprintf(stderr, "gcplot: cannot write %s: %s\n", path, strerror(errno));
        return false;
    }
    render(out, t, title);
    bool failed = ferror(out);
    if (fclose(out) != 0 || failed) {
        fprintf(stderr, "gcplot: cannot write %s: %s\n", path, strerror(errno));
        remove(path);
        return false;
    }
    return true;
}

static void usage(void)
{
    fputs("usage: gcplot [-o out.svg] [-t title] [trace.log]\n"
          "Draws a GCDEBUG=gctrace=1 (or Go GODEBUG=gctrace=1) log as an SVG picture:\n"
          "the heap per cycle and the pause and mark times over time.\n",
          stderr);
}

int main(int argc, char **argv)
{
    const char *svg = "gc.svg", *title = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "o:t:h")) != -1) {
        if (opt == 'o')
            svg = optarg;
        else if (opt == 't')
            title = optarg;
        else {
            usage();
            return opt == 'h' ? 0 : 2;
        }
    }
    if (argc - optind > 1) {
        usage();
        return 2;
    }
    const char *path = argv[optind];
    char fallback[512];
    if (!title) {
        snprintf(fallback, sizeof fallback, "gctrace: %s", path ? path : "standard input");
        title = fallback;
    }
    struct trace t = {0};
    bool ok = load(path, &t) && save(svg, &t, title);
    if (ok)
        summarize(&t, svg);
    free(t.cycles);
    return ok ? 0 : 1;
}

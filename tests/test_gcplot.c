/*
 * test_gcplot.c — the gctrace parser (tools/gctrace.c) and the plotter
 * (tools/gcplot.c).
 *
 * Layers. A table of lines the parser must accept, each with every field
 * it must read, and a table of lines it must refuse: truncated lines,
 * garbage, gc lines with a field missing or malformed. A regular
 * expression of Go's format (POSIX ERE) must agree with the parser on all
 * of them and on every line of a real trace, tests/data/go_gctrace.log,
 * captured from a Go 1.19 program run with GODEBUG=gctrace=1,gcpacertrace=1
 * so that its gc lines come between pacer lines and the program's output.
 *
 * Then the plotter, run as users run it: the SVG it writes is well formed
 * (tags balanced), carries the title and one element per series with one
 * point per cycle, every point inside its panel, for one cycle and for
 * thousands; its summary line tells the extremes; its errors (no such
 * file, no gc line, a picture it cannot write, bad usage) say so with the
 * right exit status.
 *
 * The suites run from the repository root (make runs them there): the
 * trace is found relative to it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stddef.h>

#include "../tools/gctrace.h"
#include "testutil.h"

#define GO_TRACE     "tests/data/go_gctrace.log"
#define GO_GC_LINES  19 /* grep -c '^gc ' tests/data/go_gctrace.log */
#define GO_FORCED    4  /* grep -c '(forced)' tests/data/go_gctrace.log */
#define GCPLOT       TEST_LIB_DIR "/../tools/gcplot"
#define NELEM(a)     (sizeof(a) / sizeof((a)[0]))

/* ---- lines the parser accepts ---- */

/* The expected cycles are written in the order of struct gctrace_cycle,
 * which is the order of the line: cycle, @s, %, clock (3), cpu (5), heap
 * start, end, live, goal, has_roots, stacks, globals, P, forced. */
static const struct good_row {
    const char *what;
    const char *line;
    struct gctrace_cycle want;
} good_rows[] = {
    {"Go 1.19",
     "gc 1 @0.012s 2%: 0.026+0.39+0.10 ms clock, 0.21+0.17/0.50/0+0.85 ms cpu, "
     "4->4->0 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 8 P",
     {1, 0.012, 2, 0.026, 0.39, 0.10, 0.21, 0.17, 0.50, 0, 0.85, 4, 4, 0, 4, true, 0, 0, 8,
      false}},
    {"Go 1.19, forced",
     "gc 7 @1.234s 3%: 0.11+12+0.034 ms clock, 0.22+0.5/11/0.1+0.069 ms cpu, "
     "98->101->51 MB, 102 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)",
     {7, 1.234, 3, 0.11, 12, 0.034, 0.22, 0.5, 11, 0.1, 0.069, 98, 101, 51, 102, true, 0, 0, 2,
      true}},
    {"with its newline",
     "gc 2 @0.020s 4%: 0.030+1.5+0.020 ms clock, 0.060+0.10/1.2/0.50+0.040 ms cpu, "
     "4->5->2 MB, 5 MB goal, 1 MB stacks, 2 MB globals, 2 P\n",
     {2, 0.020, 4, 0.030, 1.5, 0.020, 0.060, 0.10, 1.2, 0.50, 0.040, 4, 5, 2, 5, true, 1, 2, 2,
      false}},
    {"before Go 1.18: no stacks, no globals",
     "gc 3 @0.150s 1%: 0.011+1.2+0.040 ms clock, 0.044+0.35/1.1/2.7+0.16 ms cpu, "
     "4->4->1 MB, 5 MB goal, 4 P",
     {3, 0.150, 1, 0.011, 1.2, 0.040, 0.044, 0.35, 1.1, 2.7, 0.16, 4, 4, 1, 5, false, 0, 0, 4,
      false}},
    {"before Go 1.18, forced, with its newline",
     "gc 12 @10.5s 0%: 0.005+0.80+0.003 ms clock, 0.010+0/0.70/0.10+0.006 ms cpu, "
     "7->7->3 MB, 8 MB goal, 2 P (forced)\n",
     {12, 10.5, 0, 0.005, 0.80, 0.003, 0.010, 0, 0.70, 0.10, 0.006, 7, 7, 3, 8, false, 0, 0, 2,
      true}},
    {"fractions everywhere a measure is",
     "gc 5 @3.25s 0.5%: 0.125+2.5+0.0625 ms clock, 0.25+0.5/1.75/0.125+0.375 ms cpu, "
     "10.5->12.25->6.125 MB, 13.5 MB goal, 0.5 MB stacks, 1.25 MB globals, 16 P",
     {5, 3.25, 0.5, 0.125, 2.5, 0.0625, 0.25, 0.5, 1.75, 0.125, 0.375, 10.5, 12.25, 6.125, 13.5,
      true, 0.5, 1.25, 16, false}},
    {"whole numbers everywhere",
     "gc 100000 @3600s 25%: 1+2000+3 ms clock, 2+100/3000/0+6 ms cpu, "
     "4096->4100->2048 MB, 4096 MB goal, 1 MB stacks, 2 MB globals, 64 P",
     {100000, 3600, 25, 1, 2000, 3, 2, 100, 3000, 0, 6, 4096, 4100, 2048, 4096, true, 1, 2, 64,
      false}},
    {"15 digits, the most a number may have",
     "gc 999999999999999 @12345678.9012345s 2%: 0.1+0.2+0.3 ms clock, 1+2/3/4+5 ms cpu, "
     "1->2->3 MB, 4 MB goal, 5 MB stacks, 6 MB globals, 1 P",
     {999999999999999ul, 12345678.9012345, 2, 0.1, 0.2, 0.3, 1, 2, 3, 4, 5, 1, 2, 3, 4, true, 5,
      6, 1, false}},
};

#define MEASURE(field) {#field, offsetof(struct gctrace_cycle, field)}

static const struct {
    const char *name;
    size_t offset;
} measures[] = {
    MEASURE(start_s),       MEASURE(cpu_percent),     MEASURE(clock_sweep_term),
    MEASURE(clock_mark),    MEASURE(clock_mark_term), MEASURE(cpu_sweep_term),
    MEASURE(cpu_assist),    MEASURE(cpu_background),  MEASURE(cpu_idle),
    MEASURE(cpu_mark_term), MEASURE(heap_start_mb),   MEASURE(heap_end_mb),
    MEASURE(heap_live_mb),  MEASURE(goal_mb),         MEASURE(stacks_mb),
    MEASURE(globals_mb),
};

static double measure(const struct gctrace_cycle *c, size_t i)
{
    double v;
    memcpy(&v, (const char *)c + measures[i].offset, sizeof v);
    return v;
}

/* Every field of got is the one of want. The parser rounds each decimal
 * once, to the double its C literal has, so measures compare exactly. */
static bool same_cycle(const struct gctrace_cycle *got, const struct gctrace_cycle *want)
{
    if (got->cycle != want->cycle)
        return broken("cycle %lu, expected %lu", got->cycle, want->cycle);
    if (got->procs != want->procs)
        return broken("procs %lu, expected %lu", got->procs, want->procs);
    if (got->has_roots != want->has_roots || got->forced != want->forced)
        return broken("has_roots %d forced %d, expected %d %d", got->has_roots, got->forced,
                      want->has_roots, want->forced);
    for (size_t i = 0; i < NELEM(measures); i++)
        if (measure(got, i) != measure(want, i))
            return broken("%s %.17g, expected %.17g", measures[i].name, measure(got, i),
                          measure(want, i));
    return true;
}

START_TEST(parse_good_lines)
{
    const struct good_row *r = &good_rows[_i];
    struct gctrace_cycle got;
    memset(&got, 0xa5, sizeof got);
    ck_assert_msg(gctrace_parse_line(r->line, &got) == 1, "%s: refused: %s", r->what, r->line);
    ck_assert_msg(same_cycle(&got, &r->want), "%s: %s", r->what, why);
}
END_TEST

/* ---- lines the parser refuses ---- */

#define GO119_HEAD "gc 1 @0.012s 2%: 0.026+0.39+0.10 ms clock, 0.21+0.17/0.50/0+0.85 ms cpu, "

static const struct bad_row {
    const char *what;
    const char *line;
    bool over_digit_limit; /* refused for its length, which the regex does not count */
} bad_rows[] = {
    {"empty", "", false},
    {"a lone newline", "\n", false},
    {"program output", "hello, world", false},
    {"a pacer line",
     "pacer: assist ratio=+1.185547e+000 (scan 0 MB in 3->4 MB) workers=0++2.500000e-001", false},
    {"a scavenger line", "scav 0 KiB work, 0 KiB total, 0% util", false},
    {"a forced-GC line", "GC forced", false},
    {"just gc", "gc", false},
    {"gc and a blank", "gc ", false},
    {"cut after the cycle", "gc 1", false},
    {"cut after the clock", "gc 1 @0.012s 2%: 0.026+0.39+0.10 ms clock,", false},
    {"cut after the cpu", GO119_HEAD, false},
    {"cut after the globals", GO119_HEAD "4->4->0 MB, 4 MB goal, 0 MB stacks, 0 MB globals, ",
     false},
    {"cut inside P", GO119_HEAD "4->4->0 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 8", false},
    {"no goal", GO119_HEAD "4->4->0 MB, 0 MB stacks, 0 MB globals, 8 P", false},
    {"stacks without globals", GO119_HEAD "4->4->0 MB, 4 MB goal, 0 MB stacks, 8 P", false},
    {"globals without stacks", GO119_HEAD "4->4->0 MB, 4 MB goal, 0 MB globals, 8 P", false},
    {"no live heap", GO119_HEAD "4->4 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 8 P", false},
    {"no P count", GO119_HEAD "4->4->0 MB, 4 MB goal, 0 MB stacks, 0 MB globals, P", false},
    {"no idle mark time",
     "gc 1 @0.012s 2%: 0.026+0.39+0.10 ms clock, 0.21+0.17/0.50+0.85 ms cpu, "
     "4->4->0 MB, 4 MB goal, 8 P",
     false},
    {"two clock times",
     "gc 1 @0.012s 2%: 0.026+0.39 ms clock, 0.21+0.17/0.50/0+0.85 ms cpu, "
     "4->4->0 MB, 4 MB goal, 8 P",
     false},
    {"no @",
     "gc 1 0.012s 2%: 0.026+0.39+0.10 ms clock, 0.21+0.17/0.50/0+0.85 ms cpu, "
     "4->4->0 MB, 4 MB goal, 8 P",
     false},
    {"no percent sign",
     "gc 1 @0.012s 2: 0.026+0.39+0.10 ms clock, 0.21+0.17/0.50/0+0.85 ms cpu, "
     "4->4->0 MB, 4 MB goal, 8 P",
     false},
    {"a fractional cycle",
     "gc 1.5 @0.012s 2%: 0.026+0.39+0.10 ms clock, "
     "0.21+0.17/0.50/0+0.85 ms cpu, 4->4->0 MB, 4 MB goal, 8 P",
     false},
    {"a fractional P", GO119_HEAD "4->4->0 MB, 4 MB goal, 8.5 P", false},
    {"a negative cycle",
     "gc -1 @0.012s 2%: 0.026+0.39+0.10 ms clock, "
     "0.21+0.17/0.50/0+0.85 ms cpu, 4->4->0 MB, 4 MB goal, 8 P",
     false},
    {"an exponent", GO119_HEAD "4e3->4->0 MB, 4 MB goal, 8 P", false},
    {"a point without digits before",
     "gc 1 @.012s 2%: 0.026+0.39+0.10 ms clock, "
     "0.21+0.17/0.50/0+0.85 ms cpu, 4->4->0 MB, 4 MB goal, 8 P",
     false},
    {"a point without digits after", GO119_HEAD "4.->4->0 MB, 4 MB goal, 8 P", false},
    {"two blanks",
     "gc  1 @0.012s 2%: 0.026+0.39+0.10 ms clock, "
     "0.21+0.17/0.50/0+0.85 ms cpu, 4->4->0 MB, 4 MB goal, 8 P",
     false},
    {"a misspelt unit", GO119_HEAD "4->4->0 MiB, 4 MB goal, 8 P", false},
    {"text after P", GO119_HEAD "4->4->0 MB, 4 MB goal, 8 P extra", false},
    {"a blank after P", GO119_HEAD "4->4->0 MB, 4 MB goal, 8 P ", false},
    {"(forced) without its blank", GO119_HEAD "4->4->0 MB, 4 MB goal, 8 P(forced)", false},
    {"two newlines", GO119_HEAD "4->4->0 MB, 4 MB goal, 8 P\n\n", false},
    {"output before gc",
     "done gc 1 @0.012s 2%: 0.026+0.39+0.10 ms clock, "
     "0.21+0.17/0.50/0+0.85 ms cpu, 4->4->0 MB, 4 MB goal, 8 P",
     false},
    {"16 digits", GO119_HEAD "1234567890123456->4->0 MB, 4 MB goal, 8 P", true},
    {"16 digits with a fraction",
     GO119_HEAD "4->4->0 MB, 4 MB goal, 1.234567890123456 MB "
                "stacks, 0 MB globals, 8 P",
     true},
};

START_TEST(parse_bad_lines)
{
    const struct bad_row *r = &bad_rows[_i];
    struct gctrace_cycle got = {.cycle = 4242};
    ck_assert_msg(gctrace_parse_line(r->line, &got) == 0, "%s: accepted: %s", r->what, r->line);
    ck_assert_msg(got.cycle == 4242, "%s: the output was written", r->what);
}
END_TEST

/* ---- the regular expression of Go's format ---- */

#define ERE_NUM "[0-9]+(\\.[0-9]+)?"
#define ERE_INT "[0-9]+"

static const char go_format[] =
    "^gc " ERE_INT " @" ERE_NUM "s " ERE_NUM "%: " ERE_NUM "\\+" ERE_NUM "\\+" ERE_NUM
    " ms clock, " ERE_NUM "\\+" ERE_NUM "/" ERE_NUM "/" ERE_NUM "\\+" ERE_NUM " ms cpu, " ERE_NUM
    "->" ERE_NUM "->" ERE_NUM " MB, " ERE_NUM " MB goal, (" ERE_NUM " MB stacks, " ERE_NUM
    " MB globals, )?" ERE_INT " P( \\(forced\\))?$";

static void compile_go_format(regex_t *re)
{
    int rc = regcomp(re, go_format, REG_EXTENDED | REG_NOSUB);
    char msg[256];
    regerror(rc, re, msg, sizeof msg);
    ck_assert_msg(rc == 0, "regcomp: %s", msg);
}

/* The parser accepts `line` exactly when the regex matches it (without its
 * final newline). */
static bool regex_agrees(const regex_t *re, const char *line)
{
    char text[1024];
    size_t len = strlen(line);
    if (len >= sizeof text)
        return broken("line too long for the test: %zu bytes", len);
    memcpy(text, line, len + 1);
    if (len > 0 && text[len - 1] == '\n')
        text[len - 1] = '\0';
    struct gctrace_cycle c;
    bool parsed = gctrace_parse_line(line, &c) == 1;
    bool matched = regexec(re, text, 0, NULL, 0) == 0;
    if (parsed != matched)
        return broken("%s by the parser, %s by the regex: \"%s\"", parsed ? "accepted" : "refused",
                      matched ? "matched" : "not matched", text);
    return true;
}

START_TEST(regex_agrees_on_the_tables)
{
    regex_t re;
    compile_go_format(&re);
    for (size_t i = 0; i < NELEM(good_rows); i++)
        ck_assert_msg(regex_agrees(&re, good_rows[i].line), "%s: %s", good_rows[i].what, why);
    for (size_t i = 0; i < NELEM(bad_rows); i++)
        if (!bad_rows[i].over_digit_limit)
            ck_assert_msg(regex_agrees(&re, bad_rows[i].line), "%s: %s", bad_rows[i].what, why);
    regfree(&re);
}
END_TEST

/* ---- a real Go trace ---- */

static FILE *open_go_trace(void)
{
    FILE *f = fopen(GO_TRACE, "r");
    ck_assert_msg(f, "cannot open %s (run the suite from the repository root): %s", GO_TRACE,
                  strerror(errno));
    return f;
}

START_TEST(go_trace_parses)
{
    FILE *f = open_go_trace();
    char *line = NULL;
    size_t size = 0, gc_lines = 0, forced = 0;
    double last_start = -1;
    struct gctrace_cycle c;
    while (getline(&line, &size, f) >= 0) {
        int parsed = gctrace_parse_line(line, &c);
        ck_assert_msg(parsed == (strncmp(line, "gc ", 3) == 0), "parsed %d: %s", parsed, line);
        if (!parsed)
            continue;
        gc_lines++;
        forced += c.forced;
        ck_assert_msg(c.cycle == gc_lines, "cycle %lu is line %zu's", c.cycle, gc_lines);
        ck_assert_msg(c.start_s > last_start, "cycle %lu goes back in time", c.cycle);
        ck_assert_msg(c.has_roots && c.procs == 2, "cycle %lu: %s", c.cycle, line);
        ck_assert_msg(c.heap_live_mb <= c.heap_end_mb, "cycle %lu: %s", c.cycle, line);
        last_start = c.start_s;
    }
    free(line);
    fclose(f);
    ck_assert_uint_eq(gc_lines, GO_GC_LINES);
    ck_assert_uint_eq(forced, GO_FORCED);
}
END_TEST

START_TEST(go_trace_forced_line_reads_whole)
{
    /* gc 9 @0.125s 15%: 0.028+23+0.005 ms clock, 0.056+0/6.5/16+0.010 ms cpu,
     * 23->23->13 MB, 27 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced) */
    static const struct gctrace_cycle want = {
        9, 0.125, 15, 0.028, 23, 0.005, 0.056, 0, 6.5, 16, 0.010, 23, 23, 13, 27, true, 0, 0, 2,
        true};
    FILE *f = open_go_trace();
    char *line = NULL;
    size_t size = 0;
    struct gctrace_cycle c = {0};
    while (getline(&line, &size, f) >= 0 && !(gctrace_parse_line(line, &c) && c.cycle == 9))
        ;
    free(line);
    fclose(f);
    ck_assert_msg(same_cycle(&c, &want), "gc 9: %s", why);
}
END_TEST

START_TEST(regex_agrees_on_the_go_trace)
{
    regex_t re;
    compile_go_format(&re);
    FILE *f = open_go_trace();
    char *line = NULL;
    size_t size = 0;
    int n = 0;
    while (getline(&line, &size, f) >= 0) {
        n++;
        ck_assert_msg(regex_agrees(&re, line), "line %d: %s", n, why);
    }
    free(line);
    fclose(f);
    regfree(&re);
    ck_assert_int_gt(n, GO_GC_LINES);
}
END_TEST

/* ---- the plotter ---- */

static char dir[64]; /* this test's scratch directory */

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/test_gcplot.XXXXXX");
    ck_assert_msg(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
}

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    char path[512];
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* `name` in the scratch directory, in buf. */
static const char *in_dir(char buf[256], const char *name)
{
    snprintf(buf, 256, "%s/%s", dir, name);
    return buf;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f, "%s: %s", path, strerror(errno));
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* The whole of a file as a string (free it); NULL when there is none. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0, n;
    char *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    while ((n = fread(text + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap) {
            text = realloc(text, cap *= 2);
            ck_assert_ptr_nonnull(text);
        }
    }
    fclose(f);
    text[len] = '\0';
    return text;
}

struct run {
    int status; /* exit status; -1 when killed */
    char out[1024], err[1024];
};

static void copy_file(char *to, size_t size, const char *path)
{
    char *text = slurp(path);
    snprintf(to, size, "%s", text ? text : "");
    free(text);
}

/* Run gcplot with the arguments args (NULL-terminated, argv[0] left out),
 * its stdin from `input` (NULL: /dev/null), its stdout and stderr kept. */
static struct run run_gcplot(const char *input, const char *const *args)
{
    char out[256], err[256];
    in_dir(out, "stdout.txt");
    in_dir(err, "stderr.txt");
    const char *argv[16] = {GCPLOT};
    for (int i = 0; args[i]; i++)
        argv[i + 1] = args[i];
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int in = open(input ? input : "/dev/null", O_RDONLY);
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (in < 0 || o < 0 || e < 0 || dup2(in, 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(126);
        execv(GCPLOT, (char *const *)argv);
        _exit(127);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    struct run r = {WIFEXITED(status) ? WEXITSTATUS(status) : -1, "", ""};
    copy_file(r.out, sizeof r.out, out);
    copy_file(r.err, sizeof r.err, err);
    return r;
}

/* Every start tag of `svg` is closed, in order: a small stand-in for an
 * XML parser, enough for what gcplot writes (no comments, no CDATA, no
 * '>' in attribute values). */
static bool tags_balance(const char *svg)
{
    const char *open[16];
    size_t len[16];
    int depth = 0;
    for (const char *p = strchr(svg, '<'); p; p = strchr(p, '<')) {
        const char *end = strchr(p, '>');
        if (!end)
            return broken("tag never ends: %.40s", p);
        if (p[1] == '/') {
            size_t n = strcspn(p + 2, " >");
            if (depth == 0 || n != len[depth - 1] || strncmp(p + 2, open[depth - 1], n) != 0)
                return broken("%.*s closes no open element", (int)(n + 3), p);
            depth--;
        } else if (end[-1] != '/') {
            if (depth == (int)NELEM(open))
                return broken("elements nested too deep at %.40s", p);
            open[depth] = p + 1;
            len[depth++] = strcspn(p + 1, " \n/>");
        }
        p = end;
    }
    if (depth != 0)
        return broken("<%.*s> never closed", (int)len[depth - 1], open[depth - 1]);
    return true;
}

/* The plotter's panels, in pixels (tools/gcplot.c). */
static const struct box {
    double left, right, top, bottom;
} heap_panel = {80, 760, 60, 350}, time_panel = {80, 760, 390, 570};

static bool inside(const struct box *b, double x, double y)
{
    return x >= b->left && x <= b->right && y >= b->top && y <= b->bottom;
}

/* -1, saying why in `why`: a count that could not be made. */
__attribute__((format(printf, 1, 2))) static long fail_count(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return -1;
}

/* The element of class "series NAME" in svg: there is exactly one, a
 * polyline or (BARS) a path, whose points all lie in box b. Returns how
 * many points it has, -1 (and why) when it is not so. */
static long series_points(const char *svg, const char *name, const struct box *b)
{
    char class[64];
    snprintf(class, sizeof class, "class=\"series %s\"", name);
    const char *at = strstr(svg, class);
    if (!at || strstr(at + 1, class))
        return fail_count("%s: %s series", name, at ? "more than one" : "no");
    bool path = strncmp(at - 6, "<path ", 6) == 0;
    if (!path && strncmp(at - 10, "<polyline ", 10) != 0)
        return fail_count("%s: neither a polyline nor a path", name);
    const char *p = strstr(at, path ? " d=\"" : " points=\"");
    if (!p || p > strchr(at, '>'))
        return fail_count("%s: no coordinates", name);
    p = strchr(p, '"') + 1;
    long n = 0;
    for (int used; *p != '"'; p += used, n++) {
        double x, y, top;
        used = 0;
        if (path)
            sscanf(p, " M%lf %lfV%lf%n", &x, &y, &top, &used);
        else
            sscanf(p, " %lf,%lf%n", &x, &y, &used);
        if (used == 0)
            return fail_count("%s: unreadable coordinates at %.20s", name, p);
        if (!inside(b, x, y) || (path && !inside(b, x, top)))
            return fail_count("%s: point %ld (%g, %g) outside its panel", name, n, x, y);
    }
    return n;
}

static const char *const heap_names[] = {"heap-start", "heap-end", "heap-live", "heap-goal"};
static const char *const time_names[] = {"pause", "mark"};

/* svg is a whole picture of `cycles` cycles: one root, balanced tags, one
 * element per series with one point per cycle inside its panel. */
static bool picture_is_whole(const char *svg, long cycles)
{
    size_t len = strlen(svg);
    if (strncmp(svg, "<svg ", 5) != 0)
        return broken("does not start with <svg: %.40s", svg);
    if (len < 7 || strcmp(svg + len - 7, "</svg>\n") != 0)
        return broken("does not end with </svg>");
    if (!tags_balance(svg))
        return false;
    for (size_t i = 0; i < NELEM(heap_names); i++)
        if (series_points(svg, heap_names[i], &heap_panel) != cycles)
            return broken("%s: not %ld points. %s", heap_names[i], cycles, why);
    for (size_t i = 0; i < NELEM(time_names); i++)
        if (series_points(svg, time_names[i], &time_panel) != cycles)
            return broken("%s: not %ld points. %s", time_names[i], cycles, why);
    return true;
}

static const char small_log[] =
    "starting\n"
    "gc 1 @0.012s 2%: 0.026+0.39+0.10 ms clock, 0.21+0.17/0.50/0+0.85 ms cpu, "
    "4->4->0 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 8 P\n"
    "pacer: assist ratio=+4.508436e-001 (scan 0 MB in 3->4 MB) workers=0++2.500000e-001\n"
    "gc 2 @0.5s 3%: 0.05+5.5+0.08 ms clock, 0.1+0.2/5/1+0.16 ms cpu, "
    "4->6->3 MB, 5 MB goal, 0 MB stacks, 0 MB globals, 8 P\n"
    "gc 7 @1.234s 3%: 0.11+12+0.034 ms clock, 0.22+0.5/11/0.1+0.069 ms cpu, "
    "98->101->51 MB, 102 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)\n"
    "gc 8 @1.3s malformed\n";

START_TEST(plot_small_log)
{
    char log[256], svg_path[256], expect[512];
    write_file(in_dir(log, "small.log"), small_log);
    struct run r = run_gcplot(NULL, (const char *[]){"-o", in_dir(svg_path, "small.svg"), "-t",
                                                      "heap & pauses <small>", log, NULL});
    ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
    snprintf(expect, sizeof expect,
             "gcplot: 3 cycles (1 forced), max heap 101 MB, max goal 102 MB, "
             "longest pause 0.144 ms (gc 7) -> %s\n",
             svg_path);
    ck_assert_str_eq(r.out, expect);
    ck_assert_str_eq(r.err, "");
    char *svg = slurp(svg_path);
    ck_assert_ptr_nonnull(svg);
    ck_assert_msg(picture_is_whole(svg, 3), "%s", why);
    ck_assert_msg(strstr(svg, "<title>heap &amp; pauses &lt;small&gt;</title>"), "no title");
    ck_assert_msg(strstr(svg, ">heap &amp; pauses &lt;small&gt;</text>"), "title not shown");
    ck_assert_msg(strstr(svg, "marker-mid=\"url(#dot-heap-goal)\""), "few cycles, no dots");
    free(svg);
}
END_TEST

START_TEST(plot_one_cycle)
{
    char log[256], svg_path[256];
    write_file(in_dir(log, "one.log"), "gc 1 @0.012s 2%: 0.026+0.39+0.10 ms clock, "
                                       "0.21+0.17/0.50/0+0.85 ms cpu, 4->4->0 MB, 4 MB goal, "
                                       "0 MB stacks, 0 MB globals, 8 P\n");
    struct run r = run_gcplot(NULL, (const char *[]){"-o", in_dir(svg_path, "one.svg"), log, NULL});
    ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
    ck_assert_msg(strstr(r.out, "gcplot: 1 cycles (0 forced), max heap 4 MB, max goal 4 MB, "
                                "longest pause 0.126 ms (gc 1)"),
                  "%s", r.out);
    char *svg = slurp(svg_path);
    ck_assert_msg(picture_is_whole(svg, 1), "%s", why);
    /* The live heap, 0 MB, lies on the heap axis. */
    ck_assert_msg(strstr(svg, "series heap-live"), "no live heap");
    ck_assert_msg(strstr(strstr(svg, "series heap-live"), ",350.0\""), "0 MB is not at the axis");
    free(svg);
}
END_TEST

START_TEST(plot_go_trace_from_stdin)
{
    char svg_path[256];
    struct run r = run_gcplot(GO_TRACE, (const char *[]){"-o", in_dir(svg_path, "go.svg"), NULL});
    ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
    ck_assert_msg(strstr(r.out, "gcplot: 19 cycles (4 forced), max heap 173 MB, max goal 213 MB"),
                  "%s", r.out);
    char *svg = slurp(svg_path);
    ck_assert_msg(picture_is_whole(svg, GO_GC_LINES), "%s", why);
    ck_assert_msg(strstr(svg, "<title>gctrace: standard input</title>"), "no default title");
    free(svg);
}
END_TEST

#define MANY 5000

START_TEST(plot_thousands_of_cycles)
{
    char log[256], svg_path[256];
    FILE *f = fopen(in_dir(log, "many.log"), "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 1; i <= MANY; i++) {
        int live = 100 + i % 50;
        fprintf(f,
                "gc %d @%d.%03ds 5%%: 0.%03d+%d+0.05 ms clock, 0.1+1/%d/0+0.1 ms cpu, "
                "%d->%d->%d MB, %d MB goal, 0 MB stacks, 1 MB globals, 4 P\n",
                i, i / 10, i % 10 * 100, 10 + i % 500, 5 + i % 40, 5 + i % 40, 2 * live - 10,
                2 * live + 3, live, 2 * live);
        if (i % 100 == 0)
            fprintf(f, "program output %d\n", i);
    }
    ck_assert_int_eq(fclose(f), 0);
    struct run r = run_gcplot(NULL, (const char *[]){"-o", in_dir(svg_path, "many.svg"), log,
                                                      NULL});
    ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
    ck_assert_msg(strstr(r.out, "gcplot: 5000 cycles (0 forced), max heap 301 MB, "
                                "max goal 298 MB, longest pause 0.559 ms (gc 499)"),
                  "%s", r.out);
    char *svg = slurp(svg_path);
    ck_assert_msg(picture_is_whole(svg, MANY), "%s", why);
    ck_assert_msg(!strstr(svg, "marker-mid"), "dots on %d cycles", MANY);
    ck_assert_msg(strlen(svg) < 1000000, "%zu bytes for %d cycles", strlen(svg), MANY);
    free(svg);
}
END_TEST

START_TEST(plot_missing_file)
{
    char svg_path[256];
    struct run r = run_gcplot(NULL, (const char *[]){"-o", in_dir(svg_path, "x.svg"),
                                                      "/nonexistent/trace.log", NULL});
    ck_assert_int_eq(r.status, 1);
    ck_assert_str_eq(r.err, "gcplot: cannot open /nonexistent/trace.log: No such file or "
                            "directory\n");
    ck_assert_str_eq(r.out, "");
    ck_assert_ptr_null(slurp(svg_path));
}
END_TEST

START_TEST(plot_no_gc_lines)
{
    char log[256], svg_path[256];
    write_file(in_dir(log, "none.log"), "hello\ngc 1 @0.1s\npacer: nothing\n");
    struct run r = run_gcplot(NULL, (const char *[]){"-o", in_dir(svg_path, "x.svg"), log, NULL});
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, "gcplot: no gc lines in ") && strstr(r.err, "none.log"), "%s",
                  r.err);
    ck_assert_ptr_null(slurp(svg_path));
    r = run_gcplot(NULL, (const char *[]){"-o", svg_path, NULL});
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, "gcplot: no gc lines in standard input"), "%s", r.err);
}
END_TEST

START_TEST(plot_unwritable_picture)
{
    struct run r = run_gcplot(GO_TRACE, (const char *[]){"-o", "/nonexistent/gc.svg", NULL});
    ck_assert_int_eq(r.status, 1);
    ck_assert_str_eq(r.err, "gcplot: cannot write /nonexistent/gc.svg: No such file or "
                            "directory\n");
    ck_assert_str_eq(r.out, "");
}
END_TEST

START_TEST(plot_bad_usage)
{
    struct run r = run_gcplot(NULL, (const char *[]){"a.log", "b.log", NULL});
    ck_assert_int_eq(r.status, 2);
    ck_assert_msg(strncmp(r.err, "usage: gcplot [-o out.svg] [-t title] [trace.log]\n", 50) == 0,
                  "%s", r.err);
    r = run_gcplot(NULL, (const char *[]){"-x", NULL});
    ck_assert_int_eq(r.status, 2);
    ck_assert_msg(strstr(r.err, "usage: gcplot"), "%s", r.err);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("gcplot");
    TCase *tc = tcase_create("parser");
    tcase_add_loop_test(tc, parse_good_lines, 0, (int)NELEM(good_rows));
    tcase_add_loop_test(tc, parse_bad_lines, 0, (int)NELEM(bad_rows));
    tcase_add_test(tc, regex_agrees_on_the_tables);
    tcase_add_test(tc, go_trace_parses);
    tcase_add_test(tc, go_trace_forced_line_reads_whole);
    tcase_add_test(tc, regex_agrees_on_the_go_trace);
    suite_add_tcase(s, tc);
    tc = tcase_create("plotter");
    tcase_add_checked_fixture(tc, make_dir, remove_dir);
    tcase_add_test(tc, plot_small_log);
    tcase_add_test(tc, plot_one_cycle);
    tcase_add_test(tc, plot_go_trace_from_stdin);
    tcase_add_test(tc, plot_thousands_of_cycles);
    tcase_add_test(tc, plot_missing_file);
    tcase_add_test(tc, plot_no_gc_lines);
    tcase_add_test(tc, plot_unwritable_picture);
    tcase_add_test(tc, plot_bad_usage);
    suite_add_tcase(s, tc);
    return s;
}

TEST_MAIN(make_suite)

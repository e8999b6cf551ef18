/*
 * test_trace.c — the trace lines (gc/trace.h) are Go's: number formats
 * against values Go's runtime prints, whole lines against a regular
 * expression of Go's gctrace format, and a real program's gctrace output.
 */
#include <regex.h>

#include "../gc/trace.h"
#include "testutil.h"
#include "tricolor.h"

#define MS UINT64_C(1000000)

/* ---- Go's number formats ---- */

static const struct ms_row {
    uint64_t ns;
    const char *text;
} ms_rows[] = {
    {0, "0"},           {999, "0"},          {1000, "0.001"},     {26000, "0.026"},
    {99999, "0.099"},   {100000, "0.10"},    {390000, "0.39"},    {999999, "0.99"},
    {1000000, "1.0"},   {1234567, "1.2"},    {9999999, "9.9"},    {10 * MS, "10"},
    {195 * MS + 7, "195"}, {12345 * MS, "12345"},
};

START_TEST(milliseconds_as_go_prints_them)
{
    char buf[32];
    trace_ms(buf, sizeof buf, ms_rows[_i].ns);
    ck_assert_str_eq(buf, ms_rows[_i].text);
}
END_TEST

static const struct float_row {
    double v;
    const char *text;
} float_rows[] = {
    {0, "+0.000000e+000"},        {1, "+1.000000e+000"},       {0.25, "+2.500000e-001"},
    {-1.5, "-1.500000e+000"},     {123456789, "+1.234568e+008"}, {1e-300, "+1.000000e-300"},
    {1.0 / 0.0, "+Inf"},          {-1.0 / 0.0, "-Inf"},
};

START_TEST(floats_as_go_prints_them)
{
    char buf[32];
    trace_float(buf, sizeof buf, float_rows[_i].v);
    ck_assert_str_eq(buf, float_rows[_i].text);
}
END_TEST

/* ---- whole lines ---- */

static const struct trace_cycle a_cycle = {
    .n = 7, .at_ns = 1234567890, .cpu_percent = 3,
    .stw1_ns = 110000, .mark_ns = 12 * MS, .stw3_ns = 34000,
    .assist_ns = 500000, .bg_ns = 11 * MS, .idle_ns = 100000, .procs = 2,
    .heap_start = (uint64_t)98 << 20, .heap_end = (uint64_t)101 << 20,
    .heap_live = (uint64_t)51 << 20, .goal = (uint64_t)102 << 20,
    .stacks = 300 << 10, .globals = 2 << 20, .forced = true,
};

START_TEST(gc_line_is_gos)
{
    char buf[512];
    int n = trace_gc_line(buf, sizeof buf, &a_cycle);
    ck_assert_str_eq(buf, "gc 7 @1.234s 3%: 0.11+12+0.034 ms clock, 0.22+0.50/11/0.10+0.068 ms "
                          "cpu, 98->101->51 MB, 102 MB goal, 0 MB stacks, 2 MB globals, 2 P "
                          "(forced)\n");
    ck_assert_int_eq(n, (int)strlen(buf));
}
END_TEST

/* Go's gctrace format (Go 1.19 and later), as tools that read it match it. */
static const char go_gctrace[] =
    "^gc [0-9]+ @[0-9]+\\.[0-9]{3}s [0-9]+%: "
    "[0-9.]+\\+[0-9.]+\\+[0-9.]+ ms clock, "
    "[0-9.]+\\+[0-9.]+/[0-9.]+/[0-9.]+\\+[0-9.]+ ms cpu, "
    "[0-9]+->[0-9]+->[0-9]+ MB, [0-9]+ MB goal, [0-9]+ MB stacks, [0-9]+ MB globals, "
    "[0-9]+ P( \\(forced\\))?$";

static bool matches_go(const char *line)
{
    regex_t re;
    ck_assert_int_eq(regcomp(&re, go_gctrace, REG_EXTENDED | REG_NOSUB), 0);
    char buf[512];
    snprintf(buf, sizeof buf, "%.*s", (int)strcspn(line, "\n"), line);
    bool ok = regexec(&re, buf, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

/* Every cycle record, extreme values included, gives a line of Go's
 * format. */
START_TEST(gc_lines_match_gos_format)
{
    struct trace_cycle c = a_cycle;
    const uint64_t times[] = {0, 999, 26000, 9999999, 10 * MS, 3600000 * MS};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        c.stw1_ns = c.mark_ns = c.assist_ns = c.idle_ns = times[i];
        c.forced = i % 2;
        c.heap_start = c.goal = times[i] * 1000;
        char buf[512];
        trace_gc_line(buf, sizeof buf, &c);
        ck_assert_msg(matches_go(buf), "not Go's format: %s", buf);
    }
}
END_TEST

START_TEST(pacer_lines_are_gos)
{
    char buf[512];
    struct trace_pacer_start s = {2.03, (uint64_t)7 << 20, (uint64_t)11 << 20, (uint64_t)15 << 20,
                                  0, 0.5};
    trace_pacer_start_line(buf, sizeof buf, &s);
    ck_assert_str_eq(buf, "pacer: assist ratio=+2.030000e+000 (scan 7 MB in 11->15 MB) "
                          "workers=0++5.000000e-001\n");
    struct trace_pacer_end e = {0.257, 8201228, 5460, 139528, 8228592, 12000000, 12247248,
                                16298644, 1.7};
    trace_pacer_end_line(buf, sizeof buf, &e);
    ck_assert_str_eq(buf, "pacer: 25% CPU (25 exp.) for 8201228+5460+139528 B work (8228592 B "
                          "exp.) in 12000000 B -> 12247248 B (\u2206goal -4051396, cons/mark "
                          "+1.700000e+000)\n");
}
END_TEST

/* ---- a real program's trace ---- */

#define SCENARIO_FLAG "--trace-scenario"
#define FORCED        3 /* gc_collect calls of the scenario */

/* A program that collects by itself (64 MiB of garbage) and with
 * gc_collect. */
static int scenario_collect(void)
{
    void *volatile keep = NULL;
    for (int i = 0; i < 64 * 1024; i++)
        keep = gc_alloc(1024);
    for (int i = 0; i < FORCED; i++)
        gc_collect();
    (void)keep;
    return 0;
}

/* The next line of `text` after `line`. */
static const char *next_line(const char *line)
{
    line += strcspn(line, "\n");
    return *line ? line + 1 : line;
}

/* GCDEBUG=gctrace=1 on a program that collects: every gc line on its
 * stderr has Go's format, the cycles count from 1 without a gap, and
 * gc_collect's cycles say (forced). With gcpacertrace and scavtrace too,
 * their lines come as well. */
START_TEST(a_programs_gctrace_is_gos)
{
    static char out[1 << 16];
    int status = spawn_self(SCENARIO_FLAG, "collect", "gctrace=1,gcpacertrace=1,scavtrace=1",
                            out, sizeof out);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x: %s",
                  (unsigned)status, out);
    unsigned long expect = 1, forced = 0, pacer = 0, scav = 0;
    for (const char *line = out; *line; line = next_line(line)) {
        int len = (int)strcspn(line, "\n");
        pacer += strncmp(line, "pacer: ", 7) == 0;
        scav += strncmp(line, "scav ", 5) == 0;
        if (strncmp(line, "gc ", 3) != 0)
            continue;
        ck_assert_msg(matches_go(line), "not Go's format: %.*s", len, line);
        ck_assert_uint_eq(strtoul(line + 3, NULL, 10), expect);
        forced += strstr(line, "(forced)") && strstr(line, "(forced)") < line + len;
        expect++;
    }
    ck_assert_msg(expect > FORCED + 2, "%lu gc lines in: %s", expect - 1, out);
    ck_assert_uint_eq(forced, FORCED);
    ck_assert_uint_ge(pacer, expect - 1); /* at least the end line of each cycle */
    ck_assert_uint_eq(scav, expect - 1);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("trace");
    TCase *tc = tcase_create("formats");
    tcase_add_loop_test(tc, milliseconds_as_go_prints_them, 0,
                        (int)(sizeof ms_rows / sizeof ms_rows[0]));
    tcase_add_loop_test(tc, floats_as_go_prints_them, 0,
                        (int)(sizeof float_rows / sizeof float_rows[0]));
    tcase_add_test(tc, gc_line_is_gos);
    tcase_add_test(tc, gc_lines_match_gos_format);
    tcase_add_test(tc, pacer_lines_are_gos);
    suite_add_tcase(s, tc);
    tc = tcase_create("program");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_programs_gctrace_is_gos);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], SCENARIO_FLAG) == 0)
        return strcmp(argv[2], "collect") == 0 ? scenario_collect() : 2;
    return test_run(make_suite());
}

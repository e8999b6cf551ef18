/*
 * test_options.c — the settings table (gc/options.h): defaults, every
 * accepted and refused value of every variable and GCDEBUG name, one
 * warning per bad value naming it, and the README's environment table
 * being exactly what the table prints.
 *
 * options_read is pure: each test hands it a made-up environment and
 * collects the warnings it would print.
 */
#include <limits.h>
#include <signal.h>

#include "../gc/options.h"
#include "../gc/pacer.h"
#include "testutil.h"

/* ---- a made-up environment ---- */

static const char *env_names[4], *env_values[4];
static unsigned env_n;
static char warnings[2048];
static unsigned nwarnings;

static const char *fake_get(const char *name)
{
    for (unsigned i = 0; i < env_n; i++)
        if (strcmp(env_names[i], name) == 0)
            return env_values[i];
    return NULL;
}

static void fake_warn(const char *line)
{
    size_t used = strlen(warnings);
    snprintf(warnings + used, sizeof warnings - used, "%s\n", line);
    nwarnings++;
}

/* Read options from the environment name=value (NULL: empty). */
static struct gc_options read_with(const char *name, const char *value)
{
    env_n = 0;
    if (name) {
        env_names[0] = name;
        env_values[0] = value;
        env_n = 1;
    }
    warnings[0] = 0;
    nwarnings = 0;
    struct gc_options o;
    memset(&o, 0x5a, sizeof o);
    options_read(&o, fake_get, fake_warn);
    return o;
}

START_TEST(defaults)
{
    struct gc_options o = read_with(NULL, NULL);
    ck_assert_uint_eq(nwarnings, 0);
    ck_assert_int_eq(o.percent, 100);
    ck_assert(o.memlimit == PACER_NO_LIMIT);
    ck_assert_int_eq(o.procs, 0);
    ck_assert_int_eq(o.signal, SIGPWR);
    ck_assert_int_eq(o.gctrace, 0);
    ck_assert_int_eq(o.gcpacertrace, 0);
    ck_assert_int_eq(o.scavtrace, 0);
    ck_assert_int_eq(o.gccheckmark, 0);
    ck_assert_int_eq(o.gcstoptheworld, 0);
    ck_assert_int_eq(o.clobberfree, 0);
    ck_assert_int_eq(o.madvdontneed, 1);
}
END_TEST

/* ---- values, accepted and refused ---- */

enum field { PERCENT, MEMLIMIT, PROCS, SIGNAL, GCTRACE, PACERTRACE, SCAVTRACE, CHECKMARK,
             STOPTHEWORLD, CLOBBERFREE, MADVDONTNEED };

static int64_t field_of(const struct gc_options *o, enum field f)
{
    switch (f) {
    case PERCENT: return o->percent;
    case MEMLIMIT: return o->memlimit;
    case PROCS: return o->procs;
    case SIGNAL: return o->signal;
    case GCTRACE: return o->gctrace;
    case PACERTRACE: return o->gcpacertrace;
    case SCAVTRACE: return o->scavtrace;
    case CHECKMARK: return o->gccheckmark;
    case STOPTHEWORLD: return o->gcstoptheworld;
    case CLOBBERFREE: return o->clobberfree;
    default: return o->madvdontneed;
    }
}

static const struct value_case {
    const char *var, *value;
    enum field field;
    int64_t expect;   /* the default when refused */
    unsigned warns;   /* warning lines */
    const char *named; /* what every warning names */
} value_cases[] = {
    {"GCPERCENT", "50", PERCENT, 50, 0, NULL},
    {"GCPERCENT", "0", PERCENT, 0, 0, NULL},
    {"GCPERCENT", "off", PERCENT, -1, 0, NULL},
    {"GCPERCENT", "-5", PERCENT, -1, 0, NULL},
    {"GCPERCENT", "1000000", PERCENT, 1000000, 0, NULL},
    {"GCPERCENT", "1000001", PERCENT, 100, 1, "GCPERCENT=1000001"},
    {"GCPERCENT", "abc", PERCENT, 100, 1, "GCPERCENT=abc"},
    {"GCPERCENT", "50%", PERCENT, 100, 1, "GCPERCENT=50%"},
    {"GCPERCENT", "OFF", PERCENT, 100, 1, "GCPERCENT=OFF"},
    {"GCPERCENT", "", PERCENT, 100, 0, NULL},
    {"GCMEMLIMIT", "100MiB", MEMLIMIT, 100 << 20, 0, NULL},
    {"GCMEMLIMIT", "off", MEMLIMIT, PACER_NO_LIMIT, 0, NULL},
    {"GCMEMLIMIT", "1GB", MEMLIMIT, PACER_NO_LIMIT, 1, "GCMEMLIMIT=1GB"},
    {"GCMEMLIMIT", "-1", MEMLIMIT, PACER_NO_LIMIT, 1, "GCMEMLIMIT=-1"},
    {"GCPROCS", "1", PROCS, 1, 0, NULL},
    {"GCPROCS", "1024", PROCS, 1024, 0, NULL},
    {"GCPROCS", "0", PROCS, 0, 1, "GCPROCS=0"},
    {"GCPROCS", "1025", PROCS, 0, 1, "GCPROCS=1025"},
    {"GCPROCS", "two", PROCS, 0, 1, "GCPROCS=two"},
    {"GCSIGNAL", "10", SIGNAL, 10, 0, NULL},
    {"GCSIGNAL", "9", SIGNAL, SIGPWR, 1, "GCSIGNAL=9"},
    {"GCSIGNAL", "19", SIGNAL, SIGPWR, 1, "GCSIGNAL=19"},
    {"GCSIGNAL", "0", SIGNAL, SIGPWR, 1, "GCSIGNAL=0"},
    {"GCSIGNAL", "99", SIGNAL, SIGPWR, 1, "GCSIGNAL=99"},
    {"GCDEBUG", "gctrace=1", GCTRACE, 1, 0, NULL},
    {"GCDEBUG", "gctrace=2", GCTRACE, 0, 1, "gctrace=2"},
    {"GCDEBUG", "gcpacertrace=1", PACERTRACE, 1, 0, NULL},
    {"GCDEBUG", "scavtrace=1", SCAVTRACE, 1, 0, NULL},
    {"GCDEBUG", "gccheckmark=1", CHECKMARK, 1, 0, NULL},
    {"GCDEBUG", "gcstoptheworld=2", STOPTHEWORLD, 2, 0, NULL},
    {"GCDEBUG", "gcstoptheworld=3", STOPTHEWORLD, 0, 1, "gcstoptheworld=3"},
    {"GCDEBUG", "clobberfree=1", CLOBBERFREE, 1, 0, NULL},
    {"GCDEBUG", "madvdontneed=0", MADVDONTNEED, 0, 0, NULL},
    {"GCDEBUG", "madvdontneed=", MADVDONTNEED, 1, 1, "madvdontneed="},
    {"GCDEBUG", ",,gctrace=1,,", GCTRACE, 1, 0, NULL},
    {"GCDEBUG", "gctrace=1,scavtrace=1,gctrace=0", GCTRACE, 0, 0, NULL},
    {"GCDEBUG", "gctrace", GCTRACE, 0, 1, "\"gctrace\""},
    {"GCDEBUG", "nosuch=1", GCTRACE, 0, 1, "\"nosuch=1\""},
    {"GCDEBUG", "nosuch=1,gctrace=1,bad=2", GCTRACE, 1, 2, "GCDEBUG"},
    {"GCDEBUG", "gctrace=1111111111111111111111111111111111111111111111111111111111111111111",
     GCTRACE, 0, 1, "gctrace=111"},
};

START_TEST(value_table)
{
    const struct value_case *c = &value_cases[_i];
    struct gc_options o = read_with(c->var, c->value);
    ck_assert_msg(field_of(&o, c->field) == c->expect, "%s=%s: read %lld, expected %lld", c->var,
                  c->value, (long long)field_of(&o, c->field), (long long)c->expect);
    ck_assert_msg(nwarnings == c->warns, "%s=%s: %u warnings, expected %u: %s", c->var, c->value,
                  nwarnings, c->warns, warnings);
    for (const char *line = warnings; c->named && *line; line = strchr(line, '\n') + 1) {
        size_t len = strcspn(line, "\n");
        char buf[512];
        snprintf(buf, sizeof buf, "%.*s", (int)len, line);
        ck_assert_msg(strstr(buf, c->named), "%s=%s: warning \"%s\" does not name %s", c->var,
                      c->value, buf, c->named);
    }
}
END_TEST

/* ---- the README ---- */

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

/* The README's environment table is what the table prints
 * (`make readme-options` writes it there). */
START_TEST(readme_table_matches)
{
    char *table = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&table, &len);
    options_print_markdown(f);
    fclose(f);
    const char *readme = read_file(SOURCE_DIR "/README.md");
    ck_assert_msg(strstr(readme, table), "README.md's environment table is out of date: run "
                                         "`make readme-options`");
    free(table);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("options");
    TCase *tc = tcase_create("read");
    tcase_add_test(tc, defaults);
    tcase_add_loop_test(tc, value_table, 0, (int)(sizeof value_cases / sizeof value_cases[0]));
    suite_add_tcase(s, tc);
    tc = tcase_create("readme");
    tcase_add_test(tc, readme_table_matches);
    suite_add_tcase(s, tc);
    return s;
}

TEST_MAIN(make_suite)

/*
 * test_pacer.c — the pacer's formulas (gc/pacer.c), pure functions.
 *
 * Layers. Tables first: goals, triggers, cons/mark records and assist
 * ratios for chosen inputs, each row checked against the formula worked
 * out by hand, and GCMEMLIMIT's syntax. Then simulated programs: a model of a program allocating at
 * a steady rate on P CPUs, with a live heap of some size, collected by
 * background workers at 25% of the CPUs that scan at a fixed rate, and by
 * assists the pacer's ratio charges. Each scenario runs cycle after cycle
 * through the pacer and checks what a user would: every trigger is below
 * its goal, the heap at the end of marking tracks the goal (at most 10%
 * over it, not far under it once the pacer has learned the program), and
 * the collector's CPU share stays near 25%. PACER_TRACE=1 prints every
 * simulated cycle.
 */
#include <math.h>

#include "pacer.h"
#include "testutil.h"

#define MIB ((uint64_t)1 << 20)
#define GIB ((uint64_t)1 << 30)

/* ---- goals ---- */

static const struct goal_row {
    const char *what;
    int percent;
    int64_t limit;
    uint64_t marked, stacks, globals;
    struct pacer_memory mem;
    uint64_t goal;
} goal_rows[] = {
    {"100%: marked plus marked, stacks and globals", 100, PACER_NO_LIMIT, 100 * MIB, MIB, MIB,
     {0, 0, 0}, 202 * MIB},
    {"50%", 50, PACER_NO_LIMIT, 10 * MIB, 0, 0, {0, 0, 0}, 15 * MIB},
    {"the minimum heap, scaled by GCPERCENT", 100, PACER_NO_LIMIT, MIB, 0, 0, {0, 0, 0},
     4 * MIB},
    {"the minimum heap at 50%", 50, PACER_NO_LIMIT, MIB, 0, 0, {0, 0, 0}, 2 * MIB},
    {"GCPERCENT=0: the marked heap", 0, PACER_NO_LIMIT, 10 * MIB, MIB, 0, {0, 0, 0}, 10 * MIB},
    {"off and no limit: none", -1, PACER_NO_LIMIT, 10 * MIB, 0, 0, {0, 0, 0}, UINT64_MAX},
    /* 100 MiB limit, 10 MiB not heap: 90 MiB less 3% headroom */
    {"off, limit 100 MiB", -1, 100 * MIB, 40 * MIB, 0, 0, {60 * MIB, 0, 50 * MIB},
     90 * MIB - 90 * MIB / 100 * 3},
    {"the limit below GCPERCENT's goal wins", 100, 100 * MIB, 80 * MIB, 0, 0,
     {90 * MIB, 0, 80 * MIB}, 90 * MIB - 90 * MIB / 100 * 3},
    {"GCPERCENT's goal below the limit wins", 100, 1000 * MIB, 10 * MIB, 0, 0,
     {20 * MIB, 0, 10 * MIB}, 20 * MIB},
    /* mapped 120 MiB over a 100 MiB limit: 20 over, 10 not heap -> 70 MiB, less 3% */
    {"over the limit: the overage counts", -1, 100 * MIB, 30 * MIB, 0, 0,
     {120 * MIB, 20 * MIB, 90 * MIB}, 70 * MIB - 70 * MIB / 100 * 3},
    {"a limit below the live heap: never below marked", -1, 10 * MIB, 50 * MIB, 0, 0,
     {60 * MIB, 0, 55 * MIB}, 50 * MIB},
    {"small limit: headroom at least 1 MiB", -1, 20 * MIB, MIB, 0, 0, {2 * MIB, 0, MIB},
     18 * MIB},
};

START_TEST(goal_table)
{
    const struct goal_row *r = &goal_rows[_i];
    struct pacer p = pacer_new(r->percent);
    p.limit = r->limit;
    p.marked = r->marked;
    p.stack_scan = r->stacks;
    p.globals_scan = r->globals;
    ck_assert_msg(pacer_goal(&p, &r->mem) == r->goal, "%s: goal %llu, expected %llu", r->what,
                  (unsigned long long)pacer_goal(&p, &r->mem), (unsigned long long)r->goal);
}
END_TEST

/* ---- triggers ---- */

START_TEST(trigger_stays_in_its_band)
{
    struct pacer p = pacer_new(100);
    p.marked = 100 * MIB;
    uint64_t goal = 200 * MIB;
    /* Nothing to scan: no runway needed, as late as allowed. */
    ck_assert_uint_eq(pacer_trigger(&p, goal, true), 100 * MIB + 100 * MIB / 64 * 61);
    /* A huge runway: as early as allowed. */
    p.heap_scan = 10 * GIB;
    ck_assert_uint_eq(pacer_trigger(&p, goal, true), 100 * MIB + 100 * MIB / 64 * 45);
    /* cons/mark 1, 8 MiB to scan: runway 3 x 8 MiB = 24 MiB before the goal. */
    p.heap_scan = 8 * MIB;
    ck_assert_uint_eq(pacer_trigger(&p, goal, true), 176 * MIB);
    /* Stop-the-world marking needs no runway. */
    ck_assert_uint_eq(pacer_trigger(&p, goal, false), goal);
    /* No goal, no trigger. */
    ck_assert_uint_eq(pacer_trigger(&p, UINT64_MAX, true), UINT64_MAX);
}
END_TEST

/* ---- cons/mark ---- */

START_TEST(cons_mark_is_the_largest_of_the_last_four)
{
    struct pacer p = pacer_new(100);
    ck_assert(pacer_cons_mark(&p) == 1.0);
    /* 30 MiB allocated during 10 MiB of scan work at u = 0.25: 30 x 0.25 / (10 x 0.75) = 1. */
    struct pacer_sample s = {100 * MIB, 130 * MIB, 10 * MIB, 0.25};
    pacer_record(&p, &s);
    ck_assert(fabs(pacer_cons_mark(&p) - 1.0) < 1e-9);
    s.live_at_end = 160 * MIB; /* 2 */
    pacer_record(&p, &s);
    ck_assert(fabs(pacer_cons_mark(&p) - 2.0) < 1e-9);
    s.live_at_end = 115 * MIB; /* 0.5, four times: 2 stays among the last four for three */
    for (int i = 0; i < 4; i++) {
        pacer_record(&p, &s);
        ck_assert_msg(fabs(pacer_cons_mark(&p) - (i < 3 ? 2.0 : 0.5)) < 1e-9,
                      "after %d quiet cycles: %f", i + 1, pacer_cons_mark(&p));
    }
    ck_assert_uint_eq(p.ncons, PACER_HISTORY);
}
END_TEST

/* ---- assist ratio ---- */

START_TEST(assist_ratio_spreads_the_work_left_over_the_heap_left)
{
    struct pacer p = pacer_new(100);
    p.heap_scan = 100 * MIB;
    /* 60 MiB of work left, 30 MiB of heap left: 2 bytes per byte. */
    double r = pacer_assist_ratio(&p, 200 * MIB, 150 * MIB, 170 * MIB, 40 * MIB, 150 * MIB);
    ck_assert_msg(fabs(r - 2.0) < 1e-9, "ratio %f", r);
    /* More work done than expected: all of max_scan counts, and the runway
     * from the trigger stretches by max_scan / expected: 150 + 50 x 1.5. */
    r = pacer_assist_ratio(&p, 200 * MIB, 150 * MIB, 170 * MIB, 120 * MIB, 150 * MIB);
    ck_assert_msg(fabs(r - 30.0 / 55.0) < 1e-9, "ratio %f", r);
    /* Past the (stretched) goal: everything left is owed at once, never a division by 0. */
    r = pacer_assist_ratio(&p, 200 * MIB, 150 * MIB, 300 * MIB, 40 * MIB, 150 * MIB);
    ck_assert_msg(r >= 60.0 * (double)MIB, "ratio %f", r);
    /* A low GCPERCENT caps the stretch at (1 + percent/100) x goal. */
    p.percent = 5;
    r = pacer_assist_ratio(&p, 200 * MIB, 150 * MIB, 170 * MIB, 120 * MIB, 150 * MIB);
    ck_assert_msg(fabs(r - 30.0 / 40.0) < 1e-9, "ratio %f", r);
    /* GCPERCENT off: the goal does not stretch (only the memory limit sets it). */
    p.percent = -1;
    r = pacer_assist_ratio(&p, 200 * MIB, 150 * MIB, 170 * MIB, 120 * MIB, 150 * MIB);
    ck_assert_msg(fabs(r - 30.0 / 30.0) < 1e-9, "ratio %f", r);
    /* ... and past it, the memory limit's headroom, 3% of the goal: (206 - 204) MiB
     * for the 30 MiB left. */
    r = pacer_assist_ratio(&p, 200 * MIB, 150 * MIB, 204 * MIB, 120 * MIB, 150 * MIB);
    ck_assert_msg(fabs(r - 30.0 / 2.0) < 1e-9, "ratio %f", r);
    /* A limit below the marked heap holds the goal at it: past it, 10% more
     * runway, (220 - 210) MiB (the CPU limiter keeps the program going). */
    p.marked = 200 * MIB;
    r = pacer_assist_ratio(&p, 200 * MIB, 150 * MIB, 210 * MIB, 120 * MIB, 150 * MIB);
    ck_assert_msg(fabs(r - 30.0 / 10.0) < 1e-9, "ratio %f", r);
    /* A cycle that began past its goal, at 210 MiB (each one does, under such a
     * limit): the goal is just past its start, and the 10% is of that. */
    double past = (210.0 * MIB + 65536.0) * 1.1;
    r = pacer_assist_ratio(&p, 200 * MIB, 210 * MIB, 215 * MIB, 120 * MIB, 150 * MIB);
    ck_assert_msg(fabs(r - 30.0 * MIB / (past - 215.0 * MIB)) < 1e-9, "ratio %f", r);
}
END_TEST

/* ---- GCMEMLIMIT's syntax ---- */

static const struct bytes_row {
    const char *text;
    int ok;
    int64_t bytes;
} bytes_rows[] = {
    {"off", 1, PACER_NO_LIMIT},     {"0", 1, 0},
    {"12345", 1, 12345},            {"100B", 1, 100},
    {"64KiB", 1, 64 << 10},         {"100MiB", 1, 100 * (int64_t)MIB},
    {"2GiB", 1, 2 * (int64_t)GIB},  {"3TiB", 1, (int64_t)3 << 40},
    {"8388607TiB", 1, (int64_t)8388607 << 40}, /* the largest that fits */
    {"8388608TiB", 0, 0},           {"99999999999999999999", 0, 0},
    {"", 0, 0},                     {"MiB", 0, 0},
    {"-1", 0, 0},                   {"1.5GiB", 0, 0},
    {"64MB", 0, 0},                 {"64 MiB", 0, 0},
    {"64mib", 0, 0},                {"Off", 0, 0},
};

START_TEST(memory_limit_syntax)
{
    const struct bytes_row *r = &bytes_rows[_i];
    int64_t bytes = -42;
    int rc = pacer_parse_bytes(r->text, &bytes);
    ck_assert_msg((rc == 0) == r->ok, "\"%s\": %s", r->text, rc == 0 ? "accepted" : "refused");
    if (r->ok)
        ck_assert_msg(bytes == r->bytes, "\"%s\": %lld bytes, expected %lld", r->text,
                      (long long)bytes, (long long)r->bytes);
}
END_TEST

/* ---- the GC CPU limiter ----
 * A program whose GC takes `gc` of the `procs` CPUs (and idle marking
 * `idle` of them) from an empty bucket for `seconds`, the limiter updated
 * every millisecond; then, in phase two, `gc2` for `seconds2`. When the
 * bucket first reads full, in seconds (0: never), and whether it is full
 * at the end. */
static const struct limiter_row {
    const char *name;
    unsigned procs;
    double gc, idle, seconds, gc2, seconds2;
    double full_at; /* expected; 0: never */
    bool full_at_end;
} limiter_rows[] = {
    {"a quarter: never", 2, 0.25, 0, 5, 0.25, 0, 0, false},
    {"half: balanced, never", 2, 0.5, 0, 5, 0.5, 0, 0, false},
    {"all of 2 CPUs: full after 1 s", 2, 1.0, 0, 3, 1.0, 0, 1.0, true},
    {"all of 4 CPUs: full after 1 s", 4, 1.0, 0, 3, 1.0, 0, 1.0, true},
    {"three quarters: full after 2 s", 2, 0.75, 0, 3, 0.75, 0, 2.0, true},
    {"idle marking counts for neither", 2, 0.25, 0.5, 5, 0.25, 0, 0, false},
    {"full, then a quarter drains it", 2, 1.0, 0, 1.5, 0.25, 0.5, 1.0, false},
    {"full, then half keeps it full", 2, 1.0, 0, 1.5, 0.5, 2, 1.0, true},
};

START_TEST(limiter_table)
{
    const struct limiter_row *r = &limiter_rows[_i];
    const uint64_t ms = 1000000;
    struct pacer_limiter l = pacer_limiter_new(0);
    double gc_cpu = 0, idle_cpu = 0, full_at = 0;
    bool full = false;
    uint64_t steps = (uint64_t)((r->seconds + r->seconds2) * 1000 + 0.5);
    for (uint64_t t = 1; t <= steps; t++) {
        double share = t <= r->seconds * 1000 ? r->gc : r->gc2;
        gc_cpu += share * r->procs * (double)ms;
        idle_cpu += (t <= r->seconds * 1000 ? r->idle : 0) * r->procs * (double)ms;
        full = pacer_limiter_update(&l, r->procs, t * ms, (uint64_t)gc_cpu, (uint64_t)idle_cpu);
        if (full && full_at == 0)
            full_at = (double)t / 1000;
    }
    if (r->full_at == 0)
        ck_assert_msg(full_at == 0, "%s: full at %.3f s", r->name, full_at);
    else
        ck_assert_msg(full_at > r->full_at - 0.015 && full_at < r->full_at + 0.015,
                      "%s: full at %.3f s, expected %.3f s", r->name, full_at, r->full_at);
    ck_assert_msg(full == r->full_at_end, "%s: %s at the end", r->name, full ? "full" : "not full");
}
END_TEST

/* The bucket changes only once a period has passed. */
START_TEST(limiter_updates_once_a_period)
{
    struct pacer_limiter l = pacer_limiter_new(0);
    const uint64_t period = PACER_LIMITER_PERIOD_NS;
    ck_assert(!pacer_limiter_update(&l, 1, period - 1, period - 1, 0));
    ck_assert_uint_eq(l.fill, 0);
    ck_assert(!pacer_limiter_update(&l, 1, period, period, 0));
    ck_assert_uint_eq(l.fill, period);
    ck_assert(!pacer_limiter_update(&l, 1, period + 1, period + 1, 0));
    ck_assert_uint_eq(l.fill, period);
}
END_TEST

/* ---- simulated programs ---- */

/* A program: it allocates `alloc_rate` bytes per second of wall time when
 * it has all `procs` CPUs; `live` bytes of its heap are reachable, a
 * `scannable` share of them holds pointers; it has `stacks` and `globals`
 * bytes of roots. Markers scan `scan_rate` bytes per CPU-second. A
 * scenario may change the allocation rate or the live heap at one cycle. */
struct program {
    double alloc_rate, scan_rate, scannable;
    uint64_t live, stacks, globals;
    int procs;
};

struct scenario {
    const char *name;
    int percent;
    int64_t limit;
    struct program prog;
    int change_at;          /* cycle at which the program changes (0: never) */
    double alloc_rate_then; /* new allocation rate (0: unchanged) */
    uint64_t live_then;     /* new live heap (0: unchanged) */
    double util_max;        /* GC CPU share allowed (0: near 25%, at most 35%) */
};

/* What one simulated cycle did. */
struct cycle_result {
    uint64_t goal, trigger, heap_at_end;
    double utilisation;
};

#define STEP_S 1e-4 /* simulation step, seconds */

/* One cycle of `pr` under pacer `p`, from a heap of `heap` bytes right
 * after the last flip. Returns the heap after this cycle's flip. */
static uint64_t simulate_cycle(struct pacer *p, const struct program *pr, uint64_t heap,
                               struct cycle_result *out)
{
    struct pacer_memory mem = {heap + 8 * MIB, 0, heap}; /* 8 MiB that is not heap */
    uint64_t goal = pacer_goal(p, &mem);
    uint64_t trigger = pacer_trigger(p, goal, true);
    if (heap < trigger)
        heap = trigger; /* the program allocates up to the trigger */
    uint64_t at_trigger = heap;
    double work = pr->scannable * (double)pr->live + (double)(pr->stacks + pr->globals);
    double max_scan = pr->scannable * (double)heap + (double)(pr->stacks + pr->globals);
    double done = 0, gc_cpu = 0, t = 0, allocated = 0, credit = 0;
    double bg_cpus = PACER_UTILISATION * pr->procs, mut_cpus = pr->procs - bg_cpus;
    while (done < work) {
        double ratio = pacer_assist_ratio(p, goal, at_trigger, heap, (uint64_t)done,
                                          (uint64_t)max_scan);
        /* The workers' scanning is credit that allocations draw on first;
         * what it does not cover, the allocating threads scan themselves,
         * at the expense of their allocating. */
        double bg = bg_cpus * pr->scan_rate * STEP_S;
        double alloc = pr->alloc_rate / pr->procs * mut_cpus * STEP_S;
        credit += bg;
        double debt = ratio * alloc, paid = debt < credit ? debt : credit;
        credit -= paid;
        double assist_cpu = (debt - paid) / pr->scan_rate, cpu = mut_cpus * STEP_S;
        if (assist_cpu > cpu)
            assist_cpu = cpu;
        alloc *= 1 - assist_cpu / cpu;
        done += bg + assist_cpu * pr->scan_rate;
        gc_cpu += bg_cpus * STEP_S + assist_cpu;
        allocated += alloc;
        heap += (uint64_t)alloc;
        t += STEP_S;
    }
    out->goal = goal;
    out->trigger = trigger;
    out->heap_at_end = heap;
    out->utilisation = gc_cpu / (pr->procs * t);
    struct pacer_sample s = {at_trigger, heap, (uint64_t)work, out->utilisation};
    pacer_record(p, &s);
    /* Allocated black during the mark, so marked too (as the collector counts). */
    p->marked = pr->live + (uint64_t)allocated;
    p->heap_scan = (uint64_t)(pr->scannable * (double)pr->live);
    p->stack_scan = pr->stacks;
    p->globals_scan = pr->globals;
    return p->marked;
}

#define CYCLES 40
#define WARMUP 8 /* cycles the pacer may take to learn the program (or a change) */

static bool run_scenario(const struct scenario *sc)
{
    struct pacer p = pacer_new(sc->percent);
    p.limit = sc->limit;
    struct program pr = sc->prog;
    uint64_t heap = pr.live;
    p.marked = pr.live;
    double util_sum = 0;
    int util_n = 0;
    for (int c = 1; c <= CYCLES; c++) {
        if (sc->change_at && c == sc->change_at) {
            if (sc->alloc_rate_then)
                pr.alloc_rate = sc->alloc_rate_then;
            if (sc->live_then) {
                heap += sc->live_then > pr.live ? sc->live_then - pr.live : 0;
                pr.live = sc->live_then;
            }
        }
        struct cycle_result r;
        heap = simulate_cycle(&p, &pr, heap, &r);
        if (getenv("PACER_TRACE"))
            fprintf(stderr,
                    "%s: cycle %d: marked %.1f goal %.1f trigger %.1f end %.1f MiB,"
                    " GC CPU %.3f, cons/mark %.3f\n",
                    sc->name, c, (double)p.marked / MIB, (double)r.goal / MIB,
                    (double)r.trigger / MIB, (double)r.heap_at_end / MIB, r.utilisation,
                    pacer_cons_mark(&p));
        if (r.trigger >= r.goal && r.goal > p.marked)
            return broken("%s: cycle %d: trigger %llu not below goal %llu", sc->name, c,
                          (unsigned long long)r.trigger, (unsigned long long)r.goal);
        bool settled = c > WARMUP && !(sc->change_at && c >= sc->change_at &&
                                       c < sc->change_at + WARMUP);
        if (!settled)
            continue;
        double over = (double)r.heap_at_end / (double)r.goal;
        if (over > 1.10 || over < 0.80)
            return broken("%s: cycle %d: heap at the end of marking %.3f x the goal"
                          " (%llu of %llu)",
                          sc->name, c, over, (unsigned long long)r.heap_at_end,
                          (unsigned long long)r.goal);
        if (sc->limit != PACER_NO_LIMIT && r.heap_at_end + 8 * MIB > (uint64_t)sc->limit)
            return broken("%s: cycle %d: heap %llu plus 8 MiB over the limit %lld", sc->name, c,
                          (unsigned long long)r.heap_at_end, (long long)sc->limit);
        util_sum += r.utilisation;
        util_n++;
    }
    double util = util_sum / util_n, util_max = sc->util_max ? sc->util_max : 0.35;
    if (util < 0.22 || util > util_max)
        return broken("%s: GC CPU share %.3f, not in [0.22, %.2f]", sc->name, util, util_max);
    return true;
}

/* 4 CPUs scanning 1 GiB/s each; programs allocating 200 MiB/s to 2 GiB/s. */
#define PROG(rate, live) {(double)(rate), (double)GIB, 0.5, (live), MIB, MIB, 4}

/* A small GCPERCENT or a tight limit leaves less room between trigger and
 * goal than marking at 25% needs (the trigger stops at 45/64 of the way):
 * the goal still holds, assists carry the rest, and the GC's CPU share
 * rises, as it does in Go. */
static const struct scenario scenarios[] = {
    {"steady state", 100, PACER_NO_LIMIT, PROG(GIB, 64 * MIB), 0, 0, 0, 0},
    {"allocation rate x10", 100, PACER_NO_LIMIT, PROG(200 * MIB, 64 * MIB), 20, 2.0 * GIB, 0,
     0},
    {"allocation rate /10", 100, PACER_NO_LIMIT, PROG(2 * GIB, 64 * MIB), 20, 200.0 * MIB, 0,
     0},
    {"live heap 10 MiB -> 500 MiB", 100, PACER_NO_LIMIT, PROG(GIB, 10 * MIB), 15, 0,
     500 * MIB, 0},
    {"live heap 500 MiB -> 10 MiB", 100, PACER_NO_LIMIT, PROG(GIB, 500 * MIB), 15, 0,
     10 * MIB, 0},
    {"GCPERCENT=400", 400, PACER_NO_LIMIT, PROG(GIB, 64 * MIB), 0, 0, 0, 0},
    {"GCPERCENT=25", 25, PACER_NO_LIMIT, PROG(GIB, 64 * MIB), 0, 0, 0, 0.65},
    {"GCPERCENT=25, a slower program", 25, PACER_NO_LIMIT, PROG(100 * MIB, 64 * MIB), 0, 0, 0,
     0},
    {"memory limit 2x live, GCPERCENT=off", -1, 128 * (int64_t)MIB, PROG(GIB, 64 * MIB), 0, 0,
     0, 0.45},
    {"memory limit below GCPERCENT's goal", 100, 100 * (int64_t)MIB, PROG(GIB, 64 * MIB), 0, 0,
     0, 0.65},
};

START_TEST(simulated_program)
{
    ck_assert_msg(run_scenario(&scenarios[_i]), "%s", why);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("pacer");
    TCase *tc = tcase_create("formulas");
    tcase_add_loop_test(tc, goal_table, 0, (int)(sizeof goal_rows / sizeof goal_rows[0]));
    tcase_add_test(tc, trigger_stays_in_its_band);
    tcase_add_test(tc, cons_mark_is_the_largest_of_the_last_four);
    tcase_add_test(tc, assist_ratio_spreads_the_work_left_over_the_heap_left);
    tcase_add_loop_test(tc, memory_limit_syntax, 0,
                        (int)(sizeof bytes_rows / sizeof bytes_rows[0]));
    suite_add_tcase(s, tc);
    tc = tcase_create("limiter");
    tcase_add_loop_test(tc, limiter_table, 0, (int)(sizeof limiter_rows / sizeof limiter_rows[0]));
    tcase_add_test(tc, limiter_updates_once_a_period);
    suite_add_tcase(s, tc);
    tc = tcase_create("simulation");
    tcase_add_loop_test(tc, simulated_program, 0, (int)(sizeof scenarios / sizeof scenarios[0]));
    suite_add_tcase(s, tc);
    return s;
}

TEST_MAIN(make_suite)

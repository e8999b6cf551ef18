/*
 * pacer.c — the pacer's formulas (the model is told in pacer.h). Pure:
 * every function reads its arguments and nothing else.
 */
#include "pacer.h"

#include <string.h>

#define MIB                 ((uint64_t)1 << 20)
#define LIMIT_HEADROOM_PCT  3
#define TRIGGER_MIN_64THS   45
#define TRIGGER_MAX_64THS   61
#define OVERSHOOT           1.1
#define MIN_RUNWAY          (64 << 10) /* the goal is at least this past the cycle's start */
#define MIN_SCAN_LEFT       1000.0 /* an assist ratio never assumes less work left */

struct pacer pacer_new(int percent)
{
    return (struct pacer){.percent = percent, .limit = PACER_NO_LIMIT};
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static uint64_t sub_or_zero(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

/* a + b·percent/100, saturating. */
static uint64_t grow(uint64_t a, uint64_t b, int percent)
{
    unsigned __int128 g = (unsigned __int128)b * (unsigned)percent / 100 + a;
    return g > UINT64_MAX ? UINT64_MAX : (uint64_t)g;
}

uint64_t pacer_percent_goal(const struct pacer *p)
{
    if (p->percent < 0)
        return UINT64_MAX;
    uint64_t roots = p->stack_scan + p->globals_scan;
    uint64_t goal = grow(p->marked, p->marked + roots, p->percent);
    uint64_t floor = grow(0, PACER_MIN_HEAP, p->percent);
    return goal > floor ? goal : floor;
}

/* The headroom a memory limit's goal keeps below the limit, for the error
 * of the estimate and the overshoot of a late cycle. */
static uint64_t limit_headroom(uint64_t goal)
{
    uint64_t headroom = goal / 100 * LIMIT_HEADROOM_PCT;
    return headroom > MIB ? headroom : MIB;
}

/* The most the heap may hold so that everything mapped stays under the
 * limit, less headroom for the error of that estimate. */
static uint64_t limit_goal(const struct pacer *p, const struct pacer_memory *m)
{
    uint64_t limit = p->limit > 0 ? (uint64_t)p->limit : 0;
    uint64_t non_heap = sub_or_zero(m->mapped, m->heap_free + m->heap_live);
    uint64_t over = sub_or_zero(m->mapped, limit);
    if (non_heap + over >= limit)
        return p->marked;
    uint64_t goal = limit - (non_heap + over);
    uint64_t headroom = limit_headroom(goal);
    goal = goal > 2 * headroom ? goal - headroom : headroom;
    return goal > p->marked ? goal : p->marked;
}

uint64_t pacer_goal(const struct pacer *p, const struct pacer_memory *mem)
{
    uint64_t goal = pacer_percent_goal(p);
    if (p->limit != PACER_NO_LIMIT && mem)
        goal = min_u64(goal, limit_goal(p, mem));
    return goal;
}

double pacer_cons_mark(const struct pacer *p)
{
    if (p->ncons == 0)
        return 1.0;
    double most = 0;
    for (unsigned i = 0; i < p->ncons; i++)
        if (p->cons_mark[i] > most)
            most = p->cons_mark[i];
    return most;
}

uint64_t pacer_expected_scan(const struct pacer *p)
{
    return p->heap_scan + p->stack_scan + p->globals_scan;
}

uint64_t pacer_trigger(const struct pacer *p, uint64_t goal, bool concurrent)
{
    if (goal == UINT64_MAX || !concurrent || goal <= p->marked)
        return goal;
    uint64_t span = goal - p->marked;
    uint64_t earliest = p->marked + span / 64 * TRIGGER_MIN_64THS;
    uint64_t latest = p->marked + span / 64 * TRIGGER_MAX_64THS;
    double runway = pacer_cons_mark(p) * (1 - PACER_UTILISATION) / PACER_UTILISATION *
                    (double)pacer_expected_scan(p);
    uint64_t t = runway >= (double)goal ? 0 : goal - (uint64_t)runway;
    return t < earliest ? earliest : t > latest ? latest : t;
}

void pacer_record(struct pacer *p, const struct pacer_sample *s)
{
    double u = s->utilisation;
    if (u < 0.01)
        u = 0.01;
    if (u > 0.99)
        u = 0.99;
    double allocated = (double)sub_or_zero(s->live_at_end, s->live_at_trigger);
    double work = s->scan_work ? (double)s->scan_work : 1.0;
    double cm = allocated * u / (work * (1 - u));
    for (unsigned i = PACER_HISTORY - 1; i > 0; i--)
        p->cons_mark[i] = p->cons_mark[i - 1];
    p->cons_mark[0] = cm;
    if (p->ncons < PACER_HISTORY)
        p->ncons++;
}

/* Whether the memory limit set `goal` (below GCPERCENT's, or GCPERCENT
 * off), rather than GCPERCENT. */
static bool goal_by_limit(const struct pacer *p, uint64_t goal)
{
    return p->percent < 0 || goal < pacer_percent_goal(p);
}

/* The goal stretched for a heap that grew during the mark: the runway
 * from the cycle's start scaled by worst/expected scan work, capped. A
 * goal the memory limit set does not stretch: the limit is what it
 * protects. */
static double stretched_goal(const struct pacer *p, bool by_limit, double goal, double started,
                             double expected, double worst)
{
    double hard = by_limit ? goal : goal * (1 + p->percent / 100.0);
    if (expected <= 0 || started >= goal)
        return hard;
    double stretched = started + (goal - started) * worst / expected;
    return stretched < hard ? stretched : hard;
}

double pacer_assist_ratio(const struct pacer *p, uint64_t goal, uint64_t started,
                          uint64_t heap_live, uint64_t work_done, uint64_t max_scan)
{
    if (goal == UINT64_MAX)
        return 0;
    bool by_limit = goal_by_limit(p, goal);
    bool unreachable = by_limit && goal <= p->marked; /* a limit below the live heap */
    double heap_goal = (double)goal, expected = (double)pacer_expected_scan(p);
    double worst = (double)(max_scan > work_done ? max_scan : work_done);
    if (heap_goal < (double)started + MIN_RUNWAY)
        heap_goal = (double)started + MIN_RUNWAY;
    if ((double)work_done > expected) {
        heap_goal = stretched_goal(p, by_limit, heap_goal, (double)started, expected, worst);
        expected = worst;
    }
    if (unreachable || (double)heap_live > heap_goal) {
        /* Past even that (as a heap always is under a limit below it):
         * some runway, to finish by the worst case: 10%, or, past a goal
         * the memory limit set above the marked heap, the headroom it kept
         * below the limit. */
        if (by_limit && !unreachable)
            heap_goal += (double)limit_headroom(goal);
        else
            heap_goal *= OVERSHOOT;
        expected = worst;
    }
    double work_left = expected - (double)work_done;
    if (work_left < MIN_SCAN_LEFT)
        work_left = MIN_SCAN_LEFT;
    double heap_left = heap_goal - (double)heap_live;
    if (heap_left < 1)
        heap_left = 1;
    return work_left / heap_left;
}

int pacer_parse_bytes(const char *s, int64_t *bytes)
{
    static const struct {
        const char *name;
        unsigned shift;
    } units[] = {{"", 0}, {"B", 0}, {"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}};
    if (strcmp(s, "off") == 0) {
        *bytes = PACER_NO_LIMIT;
        return 0;
    }
    uint64_t n = 0;
    const char *c = s;
    for (; *c >= '0' && *c <= '9'; c++) {
        if (n > (UINT64_MAX - 9) / 10)
            return -1;
        n = n * 10 + (uint64_t)(*c - '0');
    }
    if (c == s)
        return -1;
    for (unsigned i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(c, units[i].name) != 0)
            continue;
        if (n > (uint64_t)INT64_MAX >> units[i].shift)
            return -1;
        *bytes = (int64_t)(n << units[i].shift);
        return 0;
    }
    return -1;
}

/* ---- the GC CPU limiter ---- */

struct pacer_limiter pacer_limiter_new(uint64_t now)
{
    return (struct pacer_limiter){.last_ns = now};
}

bool pacer_limiter_update(struct pacer_limiter *l, unsigned procs, uint64_t now,
                          uint64_t gc_cpu, uint64_t idle_cpu)
{
    if (now < l->last_ns + PACER_LIMITER_PERIOD_NS)
        return l->full;
    uint64_t total = (now - l->last_ns) * procs;
    uint64_t gc = gc_cpu - l->last_gc, idle = idle_cpu - l->last_idle;
    gc = gc < total ? gc : total;
    idle = idle < total - gc ? idle : total - gc;
    uint64_t mutator = total - gc - idle, capacity = PACER_LIMITER_CAPACITY_NS * procs;
    uint64_t fill = l->fill + gc;
    l->fill = fill > mutator ? fill - mutator : 0;
    if (l->fill > capacity)
        l->fill = capacity;
    l->full = l->fill == capacity;
    l->last_ns = now;
    l->last_gc = gc_cpu;
    l->last_idle = idle_cpu;
    return l->full;
}

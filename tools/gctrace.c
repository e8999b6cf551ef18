/*
 * gctrace.c — the parser of gctrace lines (the format is in gctrace.h).
 *
 * A line is read by a strict little scanf: the format is spelt out as Go
 * prints it, every character must be itself, blanks included, and each
 * conversion reads one number. Nothing is skipped, so a line that merely
 * starts with "gc " (a truncated line, a field missing, a misspelt unit,
 * something appended) is refused rather than half-read.
 *
 * Numbers are decimal: digits, then for measurements an optional '.' and
 * more digits; no sign, exponent, "inf" or blanks, since Go prints none.
 * They are converted without strtod, so the result does not depend on the
 * locale: at most MAX_DIGITS digits make an exact integer that one
 * division by an exact power of ten rounds once, to the double nearest the
 * decimal, the same double the C literal of that decimal has.
 */
#include "gctrace.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>

#define MAX_DIGITS 15 /* 10^15 < 2^53: every such integer is an exact double */

static const double powers_of_ten[MAX_DIGITS + 1] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
};

enum number_kind { WHOLE, DECIMAL };

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Append the digits at s to *value, counting them in *count (at most
 * MAX_DIGITS); returns the first character not read. */
static const char *digits(const char *s, uint64_t *value, int *count)
{
    for (; is_digit(*s) && *count < MAX_DIGITS; s++, ++*count)
        *value = *value * 10 + (uint64_t)(*s - '0');
    return s;
}

/* Read a number at *p: its digits as one integer in *value and how many of
 * them follow the point in *scale. Refuses an empty number, a point
 * without digits after it, a fraction in a WHOLE number and more than
 * MAX_DIGITS digits. */
static bool number(const char **p, enum number_kind kind, uint64_t *value, int *scale)
{
    int count = 0;
    *value = 0;
    const char *s = digits(*p, value, &count);
    int whole = count;
    if (whole == 0)
        return false;
    if (kind == DECIMAL && *s == '.') {
        s = digits(s + 1, value, &count);
        if (count == whole)
            return false;
    }
    if (is_digit(*s))
        return false;
    *scale = count - whole;
    *p = s;
    return true;
}

static bool whole_number(const char **p, unsigned long *out)
{
    uint64_t value;
    int scale;
    if (!number(p, WHOLE, &value, &scale) || value > ULONG_MAX)
        return false;
    *out = (unsigned long)value;
    return true;
}

static bool decimal_number(const char **p, double *out)
{
    uint64_t value;
    int scale;
    if (!number(p, DECIMAL, &value, &scale))
        return false;
    *out = (double)value / powers_of_ten[scale];
    return true;
}

/* Match `format` at *p: "%u" reads a whole number into an unsigned long *,
 * "%g" a decimal into a double *, "%%" is '%', and every other character
 * must be itself. On a match *p moves past it; the outputs of a failed
 * match may have been written. */
static bool scan(const char **p, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    const char *s = *p;
    bool ok = true;
    for (const char *f = format; ok && *f; f++) {
        if (*f != '%')
            ok = *s++ == *f;
        else if (*++f == 'u')
            ok = whole_number(&s, va_arg(ap, unsigned long *));
        else if (*f == 'g')
            ok = decimal_number(&s, va_arg(ap, double *));
        else
            ok = *s++ == *f; /* "%%" */
    }
    va_end(ap);
    if (ok)
        *p = s;
    return ok;
}

int gctrace_parse_line(const char *line, struct gctrace_cycle *out)
{
    struct gctrace_cycle c = {0};
    const char *p = line;
    if (!scan(&p, "gc %u @%gs %g%%: ", &c.cycle, &c.start_s, &c.cpu_percent) ||
        !scan(&p, "%g+%g+%g ms clock, ", &c.clock_sweep_term, &c.clock_mark,
              &c.clock_mark_term) ||
        !scan(&p, "%g+%g/%g/%g+%g ms cpu, ", &c.cpu_sweep_term, &c.cpu_assist,
              &c.cpu_background, &c.cpu_idle, &c.cpu_mark_term) ||
        !scan(&p, "%g->%g->%g MB, %g MB goal, ", &c.heap_start_mb, &c.heap_end_mb,
              &c.heap_live_mb, &c.goal_mb))
        return 0;
    c.has_roots = scan(&p, "%g MB stacks, %g MB globals, ", &c.stacks_mb, &c.globals_mb);
    if (!c.has_roots)
        c.stacks_mb = c.globals_mb = 0;
    if (!scan(&p, "%u P", &c.procs))
        return 0;
    c.forced = scan(&p, " (forced)");
    scan(&p, "\n");
    if (*p != '\0')
        return 0;
    *out = c;
    return 1;
}

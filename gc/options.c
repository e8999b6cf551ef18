/*
 * options.c — the table of settings (see options.h) and its readers.
 *
 * One row per setting. A row names an environment variable, or, with
 * `debug`, a name inside GCDEBUG; it says where the value goes (an offset
 * into struct gc_options), how to read it (kind), its default and range,
 * and the words the README and the warnings use. Adding a setting is
 * adding a row: parsing, validation and documentation follow.
 */
#include "options.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "pacer.h"
#include "platform.h"

enum option_kind {
    OPT_INT,     /* a decimal integer in [min, max] */
    OPT_PERCENT, /* a decimal integer up to max (negative: off), or "off" (-1) */
    OPT_BYTES,   /* a byte count with an optional unit, or "off" (pacer_parse_bytes) */
    OPT_SIGNAL,  /* a signal number in [min, max] that can be caught */
};

struct option {
    const char *name;     /* environment variable, or name in GCDEBUG */
    bool debug;           /* inside GCDEBUG */
    enum option_kind kind;
    size_t offset;        /* of an int (int64_t for OPT_BYTES) in struct gc_options */
    int64_t def, min, max;
    const char *def_text; /* the default in words, when the number alone says too little */
    const char *values;   /* what is accepted, in words */
    const char *doc;
};

#define FIELD(f) offsetof(struct gc_options, f)

static const struct option table[] = {
    {"GCPERCENT", false, OPT_PERCENT, FIELD(percent), 100, INT32_MIN, 1000000, NULL,
     "integer, or `off`",
     "heap growth allowed between cycles, as Go's GOGC: the heap goal is live + (live + "
     "stacks + globals) × GCPERCENT / 100, at least 4 MiB × GCPERCENT / 100; a cycle starts "
     "early enough for its marking to end near the goal, by what the last cycles measured "
     "(between 45/64 and 61/64 of the way from live to goal). Negative or `off`: no automatic "
     "cycles but for a memory limit"},
    {"GCMEMLIMIT", false, OPT_BYTES, FIELD(memlimit), PACER_NO_LIMIT, 0, PACER_NO_LIMIT, "off",
     "bytes, with an optional unit `B` `KiB` `MiB` `GiB` `TiB`, or `off`",
     "soft limit on everything the library maps and has not returned to the OS (heap pages "
     "once used, page table, metadata), as Go's GOMEMLIMIT. The heap goal shrinks to keep "
     "under it, less 3% headroom, even with `GCPERCENT=off`; never below the live heap, so a "
     "limit smaller than what the program keeps is exceeded rather than collecting without "
     "end; the CPU limiter keeps the GC under about half the CPU then"},
    {"GCPROCS", false, OPT_INT, FIELD(procs), 0, 1, 1024, "online CPUs", "1 to 1024",
     "how many CPUs the collector may mark on, as Go's GOMAXPROCS for the GC; background "
     "workers use 25% of them: round(0.25·GCPROCS) dedicated workers, or one fewer plus a "
     "fractional worker marking only its share of the time when the rounding is off by more "
     "than 30% (on 2 CPUs: one worker marking half of the time)"},
    {"GCSIGNAL", false, OPT_SIGNAL, FIELD(signal), SIGPWR, 1, 63, "SIGPWR",
     "signal number, not SIGKILL or SIGSTOP",
     "the signal that stops threads for the collector's pauses; change it when the program "
     "or a debugger uses SIGPWR"},
    {"gctrace", true, OPT_INT, FIELD(gctrace), 0, 0, 1, NULL, "0 or 1",
     "one line per cycle on stderr, in Go's gctrace format: `gc # @#s #%: #+#+# ms clock, "
     "#+#/#/#+# ms cpu, #->#-># MB, # MB goal, # MB stacks, # MB globals, # P`, plus "
     "` (forced)` for gc_collect"},
    {"gcpacertrace", true, OPT_INT, FIELD(gcpacertrace), 0, 0, 1, NULL, "0 or 1",
     "the pacer's state on stderr, in Go's `pacer:` lines: the assist ratio when a cycle "
     "starts marking, the utilisation and cons/mark ratio when it ends"},
    {"scavtrace", true, OPT_INT, FIELD(scavtrace), 0, 0, 1, NULL, "0 or 1",
     "one line per cycle on what the scavenger returned to the OS, in Go's `scav` format, "
     "plus ` (forced)` for gc_free_os_memory"},
    {"gccheckmark", true, OPT_INT, FIELD(gccheckmark), 0, 0, 1, NULL, "0 or 1",
     "after every concurrent mark, mark again with the world stopped and abort, naming the "
     "object, if the concurrent mark missed a reachable one (a missing GC_WRITE)"},
    {"gcstoptheworld", true, OPT_INT, FIELD(gcstoptheworld), 0, 0, 2, NULL, "0, 1 or 2",
     "0 marks concurrently; 1 marks with the world stopped (programs that cannot use "
     "GC_WRITE everywhere); 2 also sweeps with the world stopped"},
    {"clobberfree", true, OPT_INT, FIELD(clobberfree), 0, 0, 1, NULL, "0 or 1",
     "sweeping fills every object it frees with the 32-bit pattern 0xdeadbeef until its slot "
     "is handed out again (zeroed), so that a use after the collector freed an object shows"},
    {"madvdontneed", true, OPT_INT, FIELD(madvdontneed), 1, 0, 1, NULL, "0 or 1",
     "how free pages go back to the OS: 1 with MADV_DONTNEED (the resident size drops at "
     "once), 0 with MADV_FREE (the kernel takes them only under memory pressure)"},
};

#define NOPTIONS (sizeof table / sizeof table[0])

struct gc_options options_global;

/* The value `text` means for row `o`, in *v; false when it is malformed. */
static bool parse_value(const struct option *o, const char *text, int64_t *v)
{
    if (o->kind == OPT_BYTES)
        return pacer_parse_bytes(text, v) == 0;
    if (o->kind == OPT_PERCENT && strcmp(text, "off") == 0) {
        *v = -1;
        return true;
    }
    char *end;
    long long n = strtoll(text, &end, 10);
    if (end == text || *end || n < o->min || n > o->max)
        return false;
    if (o->kind == OPT_SIGNAL && (n == SIGKILL || n == SIGSTOP || n >= SIGRTMAX))
        return false;
    *v = n;
    return true;
}

static void store(struct gc_options *opts, const struct option *o, int64_t v)
{
    char *field = (char *)opts + o->offset;
    if (o->kind == OPT_BYTES)
        *(int64_t *)(void *)field = v;
    else
        *(int *)(void *)field = (int)(v < 0 && o->kind == OPT_PERCENT ? -1 : v);
}

/* `values` without its Markdown backquotes, for a warning. */
static void plain(char *out, size_t size, const char *values)
{
    size_t n = 0;
    for (const char *c = values; *c && n + 1 < size; c++)
        if (*c != '`')
            out[n++] = *c;
    out[n] = 0;
}

static void warn_bad(const struct option *o, const char *text, void (*warn)(const char *))
{
    char expected[160], line[512];
    plain(expected, sizeof expected, o->values);
    snprintf(line, sizeof line, "%s%s=%s is not %s; ignored", o->debug ? "GCDEBUG: " : "",
             o->name, text, expected);
    warn(line);
}

static void set_from_text(struct gc_options *opts, const struct option *o, const char *text,
                          void (*warn)(const char *))
{
    int64_t v;
    if (parse_value(o, text, &v))
        store(opts, o, v);
    else
        warn_bad(o, text, warn);
}

/* One "name=value" of GCDEBUG (`len` bytes at `item`). */
static void debug_item(struct gc_options *opts, const char *item, size_t len,
                       void (*warn)(const char *))
{
    const char *eq = memchr(item, '=', len);
    size_t nlen = eq ? (size_t)(eq - item) : len;
    char value[64], line[160];
    for (size_t i = 0; eq && i < NOPTIONS; i++) {
        const struct option *o = &table[i];
        if (!o->debug || strlen(o->name) != nlen || strncmp(item, o->name, nlen) != 0)
            continue;
        size_t vlen = len - nlen - 1;
        snprintf(value, sizeof value, "%.*s", (int)(vlen < 63 ? vlen : 63), eq + 1);
        if (vlen > 63)
            warn_bad(o, value, warn);
        else
            set_from_text(opts, o, value, warn);
        return;
    }
    snprintf(line, sizeof line, "GCDEBUG: unknown setting \"%.*s\" ignored", (int)len, item);
    warn(line);
}

static void read_debug(struct gc_options *opts, const char *v, void (*warn)(const char *))
{
    for (const char *p = v; p && *p;) {
        size_t len = strcspn(p, ",");
        if (len)
            debug_item(opts, p, len, warn);
        p += len + (p[len] == ',');
    }
}

void options_read(struct gc_options *o, const char *(*get)(const char *name),
                  void (*warn)(const char *line))
{
    for (size_t i = 0; i < NOPTIONS; i++)
        store(o, &table[i], table[i].def);
    for (size_t i = 0; i < NOPTIONS; i++) {
        const char *v = table[i].debug ? NULL : get(table[i].name);
        if (v && *v)
            set_from_text(o, &table[i], v, warn);
    }
    read_debug(o, get("GCDEBUG"), warn);
}

static const char *get_env(const char *name)
{
    return getenv(name);
}

static void warn_stderr(const char *line)
{
    os_warn("%s", line);
}

void options_init(void)
{
    options_read(&options_global, get_env, warn_stderr);
}

void options_print_markdown(FILE *f)
{
    fprintf(f, "| variable | values | default | meaning |\n|---|---|---|---|\n");
    for (size_t i = 0; i < NOPTIONS; i++) {
        const struct option *o = &table[i];
        fprintf(f, "| `%s%s%s` | %s | ", o->debug ? "GCDEBUG=" : "", o->name, o->debug ? "=" : "",
                o->values);
        if (o->def_text)
            fprintf(f, "%s", o->def_text);
        else
            fprintf(f, "%lld", (long long)o->def);
        fprintf(f, " | %s |\n", o->doc);
    }
}

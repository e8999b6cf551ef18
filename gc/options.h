/*
 * options.h — every setting the library reads from the environment, in
 * one table (options.c): name, variable, default, range and documentation.
 * The table drives parsing, validation, the warnings about bad values and
 * the README's environment table (build/tools/gcoptions prints it; a test
 * checks that the README holds exactly that).
 *
 * Environment variables: GCPERCENT, GCMEMLIMIT, GCPROCS, GCSIGNAL, and
 * GCDEBUG, a comma-separated list of name=value settings (gctrace=1, ...).
 * They are read once, when the library initialises; a malformed value or
 * an unknown GCDEBUG name gets one warning line naming it and is ignored
 * (the default stays).
 */
#ifndef TRICOLOR_OPTIONS_H
#define TRICOLOR_OPTIONS_H

#include <stdint.h>
#include <stdio.h>

struct gc_options {
    int percent;        /* GCPERCENT; negative: off */
    int64_t memlimit;   /* GCMEMLIMIT in bytes; INT64_MAX: off */
    int procs;          /* GCPROCS; 0: the online CPUs */
    int signal;         /* GCSIGNAL */
    int gctrace;        /* GCDEBUG ... */
    int gcpacertrace;
    int scavtrace;
    int gccheckmark;
    int gcstoptheworld;
    int clobberfree;
    int madvdontneed;
};

/* The settings, filled once by options_init (before any other part of the
 * library initialises), then read-only. */
extern struct gc_options options_global;

/* Read the environment into options_global, warning about bad values. */
void options_init(void);

/* The same, pure: settings from `get` (getenv's contract), warnings to
 * `warn` (one line each, no newline). For the tests. */
void options_read(struct gc_options *o, const char *(*get)(const char *name),
                  void (*warn)(const char *line));

/* The README's environment table (Markdown). */
void options_print_markdown(FILE *f);

#endif /* TRICOLOR_OPTIONS_H */

/*
 * platform.c — Linux implementation of the operating-system contract in
 * platform.h. Kept deliberately thin: no policy, no locks.
 */
#include "platform.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

void *os_reserve(size_t size)
{
    void *p = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void os_release(void *p, size_t size)
{
    munmap(p, size);
}

int os_commit(void *p, size_t size)
{
    return mprotect(p, size, PROT_READ | PROT_WRITE);
}

void *os_alloc_meta(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void write_line(const char *prefix, const char *fmt, va_list ap)
{
    char line[512];
    int n = snprintf(line, sizeof line, "tricolor: %s", prefix);
    if (n < 0 || (size_t)n >= sizeof line)
        n = 0;
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    for (size_t off = 0; off < len;) {
        ssize_t w = write(STDERR_FILENO, line + off, len - off);
        if (w <= 0 && errno != EINTR)
            break;
        off += w > 0 ? (size_t)w : 0;
    }
}

void os_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    write_line("", fmt, ap);
    va_end(ap);
    abort();
}

void os_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    write_line("warning: ", fmt, ap);
    va_end(ap);
}

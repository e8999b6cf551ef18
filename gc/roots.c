/*
 * roots.c — the global roots: everything outside the heap and outside the
 * thread stacks that can hold a heap pointer.
 *
 * 1. The writable segments (data, bss) of the executable and of every loaded
 *    shared object, libraries dlopened after start included. The list is
 *    collected at every cycle with dl_iterate_phdr, and the whole stop of
 *    the world happens inside a dl_iterate_phdr callback: the loader's
 *    (recursive) lock is held, so no dlopen or dlclose can change the list
 *    between collecting it and scanning it. A thread stopped while waiting
 *    for that lock holds nothing the collector needs.
 * 2. The collector's own data is left out: the few globals that hold heap
 *    addresses live in the section `tricolor_private` (TRICOLOR_PRIVATE),
 *    whose bounds the linker provides; everything else of ours lives in
 *    metadata memory that is never scanned.
 * 3. Ranges registered with gc_add_roots (malloc or mmap memory).
 *
 * Thread stacks, registers and TLS blocks are threads.c's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <link.h>
#include <pthread.h>

#include "../allocator/heap.h"
#include "collector.h"
#include "platform.h"
#include "tricolor.h"

struct range {
    uintptr_t lo, hi;
};

/* A growable array of ranges in metadata memory (never malloc: the lists
 * are built while other threads may hold malloc's locks). */
struct ranges {
    struct range *r;
    size_t n, cap;
};

extern char __start_tricolor_private[] __attribute__((visibility("hidden")));
extern char __stop_tricolor_private[] __attribute__((visibility("hidden")));

static struct {
    pthread_mutex_t lock;  /* guards user; held by the collector across a stop */
    struct ranges user;    /* lock: gc_add_roots */
    struct ranges objects; /* collector (gc lock): segments of the last walk */
} roots = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int ranges_push(struct ranges *a, uintptr_t lo, uintptr_t hi)
{
    if (lo >= hi)
        return 0;
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 256;
        struct range *r = os_alloc_meta(cap * sizeof *r);
        if (!r)
            return -1;
        for (size_t i = 0; i < a->n; i++)
            r[i] = a->r[i];
        if (a->r)
            os_free_meta(a->r, a->cap * sizeof *r);
        a->r = r;
        a->cap = cap;
    }
    a->r[a->n++] = (struct range){lo, hi};
    return 0;
}

/* [lo, hi) minus the collector's private section. */
static int push_outside_private(struct ranges *a, uintptr_t lo, uintptr_t hi)
{
    uintptr_t plo = (uintptr_t)__start_tricolor_private;
    uintptr_t phi = (uintptr_t)__stop_tricolor_private;
    if (hi <= plo || lo >= phi)
        return ranges_push(a, lo, hi);
    return ranges_push(a, lo, plo) | ranges_push(a, phi, hi);
}

static int collect_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct ranges *a = arg;
    for (unsigned i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W))
            continue;
        uintptr_t lo = (info->dlpi_addr + ph->p_vaddr) & ~(uintptr_t)(sizeof(void *) - 1);
        if (push_outside_private(a, lo, info->dlpi_addr + ph->p_vaddr + ph->p_memsz) != 0)
            os_fatal("out of memory for the list of root segments");
    }
    return 0;
}

struct locked_call {
    void (*fn)(void *);
    void *arg;
};

/* Called for the first loaded object, with the loader's lock held. */
static int with_lock_held(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)info;
    (void)size;
    struct locked_call *call = arg;
    roots.objects.n = 0;
    dl_iterate_phdr(collect_object, &roots.objects);
    pthread_mutex_lock(&roots.lock);
    call->fn(call->arg);
    pthread_mutex_unlock(&roots.lock);
    return 1;
}

void roots_with_objects_locked(void (*fn)(void *), void *arg)
{
    struct locked_call call = {fn, arg};
    dl_iterate_phdr(with_lock_held, &call);
}

static void scan_all(const struct ranges *a, void (*scan)(uintptr_t, uintptr_t))
{
    for (size_t i = 0; i < a->n; i++)
        scan(a->r[i].lo, a->r[i].hi);
}

void roots_scan_globals(void (*scan)(uintptr_t lo, uintptr_t hi))
{
    scan_all(&roots.objects, scan);
    scan_all(&roots.user, scan);
}

void roots_lock(void)
{
    pthread_mutex_lock(&roots.lock);
}

void roots_unlock(void)
{
    pthread_mutex_unlock(&roots.lock);
}

int gc_add_roots(void *lo, void *hi)
{
    if (gc_init() != 0)
        return -1;
    if ((uintptr_t)lo > (uintptr_t)hi)
        os_fatal("gc_add_roots(): range %p..%p ends before it starts", lo, hi);
    os_lock_stoppable(&roots.lock);
    int rc = ranges_push(&roots.user, (uintptr_t)lo, (uintptr_t)hi);
    pthread_mutex_unlock(&roots.lock);
    if (rc != 0)
        errno = ENOMEM;
    return rc;
}

void gc_remove_roots(void *lo, void *hi)
{
    os_lock_stoppable(&roots.lock);
    struct ranges *a = &roots.user;
    for (size_t i = 0; i < a->n; i++)
        if (a->r[i].lo == (uintptr_t)lo && a->r[i].hi == (uintptr_t)hi) {
            a->r[i] = a->r[--a->n];
            break;
        }
    pthread_mutex_unlock(&roots.lock);
}

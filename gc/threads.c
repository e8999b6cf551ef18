/*
 * threads.c — the registered threads, and stopping the world.
 *
 * Every thread that may hold heap pointers is registered: the main thread
 * at initialisation, any other on its first allocation, or explicitly
 * (gc_register_thread, gc_pthread_create). Registration records the top of
 * the thread's stack and its static TLS blocks and gives it an allocation
 * cache; a thread-specific key unregisters it (and gives back its cache)
 * when it exits.
 *
 * Stopping the world is signal-based. The collector, holding the threads
 * lock, makes the world epoch odd and sends GCSIGNAL to every registered
 * thread but itself; each handler copies the interrupted registers and
 * stack pointer into the thread's record, counts itself stopped and
 * sleeps on a futex until the epoch changes; the last one to stop posts the
 * ack semaphore, so the collector wakes once per stop, not once per thread
 * (on a busy machine each wakeup costs a context switch on a CPU the
 * stopping threads are waiting for). Starting the world makes the epoch even and wakes
 * every sleeper. The handler uses only async-signal-safe calls (sem_post,
 * futex, errno save and restore). A thread the signal finds inside the
 * allocator's world lock does not stop there (the collector has closed the
 * allocator and will wait for it to leave): it stops in heap_stop_point,
 * as it leaves or when it would wait to enter again. Threads blocked in system calls are
 * stopped too; the handler is installed with SA_RESTART, so read, write
 * and friends resume; calls the kernel never restarts (nanosleep, and so
 * sleep; poll; select; epoll_wait) return early with EINTR, as with any
 * signal. A thread must not block GCSIGNAL.
 *
 * fork (orchestrated by collect.c): the threads lock is held across fork;
 * in the child only the forking thread exists, so every other record is
 * forgotten and its cache released.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../allocator/heap.h"
#include "collector.h"
#include "options.h"
#include "platform.h"
#include "tricolor.h"

static __thread struct gc_thread *self __attribute__((tls_model("initial-exec")));

static struct {
    pthread_mutex_t lock;     /* guards the list */
    struct gc_thread *all;    /* lock: registered threads */
    struct gc_thread *pool;   /* lock: records of exited threads */
    AO_t count;               /* lock writes: registered threads */
    pthread_key_t exit_key;   /* destructor unregisters a dying thread */
    int signal;               /* GCSIGNAL */
    sem_t ack;                /* the last thread to stop posts */
    AO_t unstopped;           /* threads signalled and not stopped yet */
    unsigned epoch;           /* odd while stopped; futex word */
} threads = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- the stop signal ---- */

static void on_stop_signal(int sig, siginfo_t *info, void *uc)
{
    (void)sig;
    (void)info;
    int saved = errno;
    struct gc_thread *t = self;
    unsigned epoch = AO_int_load_acquire(&threads.epoch);
    if (t && (epoch & 1) && !heap_inside) {
        t->nregs = os_context_regs(uc, t->regs, THREAD_MAX_REGS);
        AO_store(&t->stopped_in_bulk, AO_load(&t->in_bulk));
        AO_store(&t->stop_sp, os_context_sp(uc));
        AO_store_release(&t->stopped_epoch, epoch);
        if (AO_fetch_and_sub1_full(&threads.unstopped) == 1)
            sem_post(&threads.ack);
        while (AO_int_load_acquire(&threads.epoch) == epoch)
            os_futex_wait(&threads.epoch, epoch);
    }
    errno = saved;
}

/* Every registered thread but the caller stopped in the current epoch. */
static bool all_stopped(void)
{
    for (struct gc_thread *t = threads.all; t; t = t->next)
        if (t != self && AO_load_acquire(&t->stopped_epoch) != threads.epoch)
            return false;
    return true;
}

/* One attempt: signal every thread, wait up to STOP_PATIENCE_MS for all of
 * them to stop. Acks only wake the collector; the epochs decide. */
#define STOP_PATIENCE_MS 50
static bool try_stop(void)
{
    while (sem_trywait(&threads.ack) == 0)
        ; /* acks of an abandoned attempt */
    AO_t n = 0;
    for (struct gc_thread *t = threads.all; t; t = t->next)
        n += t != self;
    AO_store(&threads.unstopped, n);
    AO_int_store_release(&threads.epoch, threads.epoch + 1);
    for (struct gc_thread *t = threads.all; t; t = t->next)
        if (t != self && pthread_kill(t->id, threads.signal) != 0)
            os_fatal("cannot stop thread %lu (pthread_kill failed)", (unsigned long)t->id);
    for (unsigned ms = 0; ms < STOP_PATIENCE_MS; ms++) {
        if (all_stopped())
            return true;
        struct timespec until = os_deadline_ms(1);
        sem_timedwait(&threads.ack, &until);
    }
    return all_stopped();
}

/* The allocator is frozen and the calling thread is outside it: stop here if
 * a stop of the world is waiting for this thread. */
void heap_stop_point(void)
{
    struct gc_thread *t = self;
    unsigned epoch = AO_int_load_acquire(&threads.epoch);
    if (t && (epoch & 1) && AO_load_acquire(&t->stopped_epoch) != epoch)
        pthread_kill(pthread_self(), threads.signal);
}

static void release_all(void)
{
    AO_int_store_release(&threads.epoch, threads.epoch + 1);
    os_futex_wake_all(&threads.epoch);
}

/* A thread can fail to stop only where the signal cannot reach it — under
 * ThreadSanitizer, which defers handlers while a thread is inside most
 * intercepted calls (pthread_mutex_lock waiting for a lock a stopped thread
 * holds). Then everyone is released, and the caller lets go of whatever
 * else it holds (the allocator) before it tries again. */
bool threads_stop_world(void)
{
    pthread_mutex_lock(&threads.lock);
    if (try_stop())
        return true;
    release_all();
    pthread_mutex_unlock(&threads.lock);
    return false;
}

void threads_start_world(void)
{
    release_all();
    pthread_mutex_unlock(&threads.lock);
}

/* ---- scanning ---- */

/* The caller's own stack, from below its saved registers to the top. */
static NOINLINE void scan_own_stack(struct gc_thread *t, void (*scan)(uintptr_t, uintptr_t))
{
    __builtin_unwind_init(); /* callee-saved registers go to this frame */
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    scan(here - OS_RED_ZONE, t->stack_hi);
}

void threads_scan(void (*scan)(uintptr_t lo, uintptr_t hi))
{
    for (struct gc_thread *t = threads.all; t; t = t->next) {
        if (t == self) {
            scan_own_stack(t, scan);
        } else {
            if (AO_load_acquire(&t->stopped_epoch) != threads.epoch)
                os_fatal("thread %lu is registered but did not stop", (unsigned long)t->id);
            scan((uintptr_t)t->regs, (uintptr_t)(t->regs + t->nregs));
            scan(AO_load_acquire(&t->stop_sp) - OS_RED_ZONE, t->stack_hi);
        }
        for (unsigned i = 0; i < t->ntls; i++)
            scan(t->tls[i].lo, t->tls[i].hi);
    }
}

/* ---- registration ---- */

struct tls_walk {
    struct tls_block *out; /* NULL: count only */
    unsigned n;
};

static int tls_of_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct tls_walk *w = arg;
    if (!info->dlpi_tls_data)
        return 0;
    for (unsigned i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_TLS || ph->p_memsz == 0)
            continue;
        if (w->out) {
            w->out[w->n].lo = (uintptr_t)info->dlpi_tls_data;
            w->out[w->n].hi = (uintptr_t)info->dlpi_tls_data + ph->p_memsz;
        }
        w->n++;
    }
    return 0;
}

/* The calling thread's static TLS blocks, one per loaded object that has
 * TLS and has it allocated in this thread. */
static int record_tls(struct gc_thread *t)
{
    struct tls_walk w = {NULL, 0};
    dl_iterate_phdr(tls_of_object, &w);
    if (w.n > t->ntls) {
        t->tls = heap_meta_alloc(w.n * sizeof *t->tls);
        if (!t->tls)
            return -1;
    }
    struct tls_walk fill = {t->tls, 0};
    dl_iterate_phdr(tls_of_object, &fill);
    t->ntls = fill.n < w.n ? fill.n : w.n;
    return 0;
}

static struct gc_thread *record_new(void)
{
    os_lock_stoppable(&threads.lock);
    struct gc_thread *t = threads.pool;
    if (t)
        threads.pool = t->next;
    pthread_mutex_unlock(&threads.lock);
    return t ? t : heap_meta_alloc(sizeof *t);
}

static void link_self(struct gc_thread *t)
{
    os_lock_stoppable(&threads.lock);
    t->next = threads.all;
    threads.all = t;
    AO_store(&threads.count, threads.count + 1);
    self = t;
    pthread_mutex_unlock(&threads.lock);
}

int threads_register_self(void)
{
    if (self)
        return 0;
    uintptr_t lo;
    struct gc_thread *t = record_new();
    if (!t || os_thread_stack(&lo, &t->stack_hi) != 0 || record_tls(t) != 0)
        goto fail;
    t->id = pthread_self();
    t->nregs = 0;
    AO_store(&t->in_bulk, 0);
    barrier_reset(&t->barrier, 0);
    t->cache = cache_tls ? cache_tls : cache_create();
    if (!t->cache || pthread_setspecific(threads.exit_key, t) != 0)
        goto fail;
    link_self(t);
    return 0;
fail:
    errno = ENOMEM;
    return -1;
}

static void unlink_locked(struct gc_thread *t)
{
    struct gc_thread **link = &threads.all;
    while (*link != t)
        link = &(*link)->next;
    *link = t->next;
    t->next = threads.pool;
    threads.pool = t;
    AO_store(&threads.count, threads.count - 1);
}

unsigned threads_registered(void)
{
    return (unsigned)AO_load(&threads.count);
}

/* Give back the thread's cache and forget it. */
static void unregister(struct gc_thread *t)
{
    barrier_flush_own(&t->barrier);
    if (t->cache)
        cache_release(t->cache);
    t->cache = NULL;
    os_lock_stoppable(&threads.lock);
    unlink_locked(t);
    if (self == t)
        self = NULL;
    pthread_mutex_unlock(&threads.lock);
}

static void on_thread_exit(void *arg)
{
    unregister(arg);
}

/* ---- fork (called by collect.c's handlers, in the lock order) ---- */

void threads_fork_prepare(void)
{
    pthread_mutex_lock(&threads.lock);
}

void threads_fork_parent(void)
{
    pthread_mutex_unlock(&threads.lock);
}

/* Only the forking thread lives on: every other record is forgotten (their
 * caches are released by the caller, cache_forget_others). */
void threads_fork_child(void)
{
    struct gc_thread *me = self, *t = threads.all, *next;
    threads.all = NULL;
    for (; t; t = next) {
        next = t->next;
        if (t == me)
            continue;
        t->cache = NULL;
        t->next = threads.pool;
        threads.pool = t;
    }
    AO_store(&threads.count, me != NULL);
    if (me) {
        me->id = pthread_self();
        me->next = NULL;
        threads.all = me;
    }
    sem_init(&threads.ack, 0, 0);
    pthread_mutex_unlock(&threads.lock);
}

struct gc_thread *threads_self(void)
{
    if (!self && threads_register_self() != 0)
        return NULL;
    return self;
}

bool threads_any_in_bulk(void)
{
    for (struct gc_thread *t = threads.all; t; t = t->next)
        if (t != self && AO_load(&t->stopped_in_bulk))
            return true;
    return false;
}

void threads_each_barrier(void (*fn)(struct barrier_buf *b), bool lock)
{
    if (lock)
        pthread_mutex_lock(&threads.lock);
    for (struct gc_thread *t = threads.all; t; t = t->next)
        fn(&t->barrier);
    if (lock)
        pthread_mutex_unlock(&threads.lock);
}

struct cache *threads_self_cache(void)
{
    return self ? self->cache : NULL;
}

/* ---- init and the public API ---- */

int threads_init(void)
{
    threads.signal = options_global.signal;
    if (sem_init(&threads.ack, 0, 0) != 0 ||
        pthread_key_create(&threads.exit_key, on_thread_exit) != 0 ||
        os_install_handler(threads.signal, on_stop_signal) != 0)
        return -1;
    return threads_register_self();
}

int gc_register_thread(void)
{
    if (gc_init() != 0)
        return -1;
    return threads_register_self();
}

void gc_unregister_thread(void)
{
    struct gc_thread *t = self;
    if (!t)
        return;
    pthread_setspecific(threads.exit_key, NULL);
    unregister(t);
}

struct start {
    void *(*fn)(void *);
    void *arg;
};

/* Until the new thread is registered, its argument lives only in the start
 * record: the record is a registered root range for that time. */
static void *start_registered(void *p)
{
    struct start st = *(struct start *)p;
    if (threads_register_self() != 0)
        os_fatal("gc_pthread_create(): cannot register the new thread");
    gc_remove_roots(p, (struct start *)p + 1);
    free(p);
    return st.fn(st.arg);
}

int gc_pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *),
                      void *arg)
{
    if (gc_init() != 0)
        return EAGAIN;
    struct start *st = malloc(sizeof *st);
    if (!st)
        return EAGAIN;
    st->fn = start;
    st->arg = arg;
    if (gc_add_roots(st, st + 1) != 0) {
        free(st);
        return EAGAIN;
    }
    int rc = pthread_create(thread, attr, start_registered, st);
    if (rc != 0) {
        gc_remove_roots(st, st + 1);
        free(st);
    }
    return rc;
}

/*
 * bench_madvise.c — what returning memory to the OS costs on this machine,
 * and so how fast the scavenger (gc/scavenge.c) can return it within its
 * budget of 1% of one CPU.
 *
 * Usage: bench_madvise [-m MIB]
 *
 * The scavenger returns free pages with madvise(MADV_DONTNEED) a chunk at
 * a time and sleeps 99 times the thread CPU time each chunk took. Its rate
 * is therefore 1 / (100 x the CPU cost per byte). This tool touches MIB
 * MiB (default 512) of anonymous memory and returns it in chunks of 256 KiB
 * to 64 MiB, timing the calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID,
 * as the scavenger counts it). Each chunk size runs twice: alone, and with
 * a second thread of the process writing to memory of its own. A page
 * returned must then be flushed from that thread's TLB too, which makes
 * every call dearer, the more so the smaller the chunk: in a real program
 * the scavenger is never alone. For each row it prints the cost per MiB
 * and the rate the 1% budget allows.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MIB          ((size_t)1 << 20)
#define BUDGET_SHARE 0.01                /* the scavenger's share of one CPU */
#define OTHER_BYTES  (1 << 20)            /* what the second thread writes over and over */
#define TOUCH_STRIDE 4096                 /* one write per page */

static volatile int other_stop;

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The second thread: keeps its own pages in its TLB until told to stop. */
static void *other_thread(void *arg)
{
    volatile char *mem = arg;
    while (!other_stop)
        for (size_t i = 0; i < OTHER_BYTES; i += TOUCH_STRIDE)
            mem[i]++;
    return NULL;
}

/* Touch every page of [p, p + bytes), then return it in `chunk` pieces;
 * the thread CPU seconds the returning took. */
static double return_in_chunks(char *p, size_t bytes, size_t chunk)
{
    memset(p, 1, bytes);
    double t = thread_cpu_s();
    for (size_t off = 0; off < bytes; off += chunk)
        if (madvise(p + off, chunk < bytes - off ? chunk : bytes - off, MADV_DONTNEED) != 0) {
            perror("madvise");
            exit(1);
        }
    return thread_cpu_s() - t;
}

static void run_rows(char *p, size_t bytes, const char *alone_or_not)
{
    for (size_t chunk = 256 << 10; chunk <= 64 * MIB; chunk *= 4) {
        double ms_per_mib = return_in_chunks(p, bytes, chunk) * 1e3 / (double)(bytes / MIB);
        printf("%-22s %8zu KiB   %6.3f ms/MiB   %6.0f MiB/s\n", alone_or_not, chunk >> 10,
               ms_per_mib, ms_per_mib > 0 ? BUDGET_SHARE * 1e3 / ms_per_mib : 0.0);
    }
}

int main(int argc, char **argv)
{
    size_t mib = 512;
    for (int opt; (opt = getopt(argc, argv, "m:")) != -1;) {
        if (opt != 'm' || (mib = strtoul(optarg, NULL, 10)) == 0) {
            fprintf(stderr, "usage: %s [-m MIB]\n", argv[0]);
            return 2;
        }
    }
    size_t bytes = mib * MIB;
    char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *other = malloc(OTHER_BYTES);
    if (p == MAP_FAILED || !other) {
        perror("bench_madvise: memory");
        return 1;
    }
    memset(other, 0, OTHER_BYTES);
    printf("MADV_DONTNEED of %zu MiB, thread CPU time; rate: what %.0f%% of one CPU returns\n",
           mib, BUDGET_SHARE * 100);
    printf("%-22s %12s   %13s   %11s\n", "", "chunk", "cost", "rate");
    run_rows(p, bytes, "alone");
    pthread_t t;
    if (pthread_create(&t, NULL, other_thread, other) != 0) {
        perror("bench_madvise: pthread_create");
        return 1;
    }
    run_rows(p, bytes, "another thread running");
    other_stop = 1;
    pthread_join(t, NULL);
    return 0;
}

/*
 * counters.c — the allocator's shared counts (see counters.h): large
 * objects, sweeps, frees by threads without a cache, and released caches.
 */
#include "counters.h"

#include <atomic_ops.h>

#include "../gc/platform.h"

/* Atomic adds from any thread; mallocs apart from the sweepers' frees. */
static struct {
    AO_t mallocs[SC_NUM_CLASSES] __attribute__((aligned(OS_CACHE_LINE)));
    AO_t large_alloc_bytes;
    AO_t frees[SC_NUM_CLASSES] __attribute__((aligned(OS_CACHE_LINE)));
    AO_t large_free_bytes;
    AO_t swept_bytes;
} counts;

void counters_swept(unsigned sizeclass, unsigned n)
{
    AO_fetch_and_add(&counts.frees[sizeclass], n);
    AO_fetch_and_add(&counts.swept_bytes, (AO_t)n * sc_class_size[sizeclass]);
}

void counters_large_alloc(size_t bytes)
{
    AO_fetch_and_add1(&counts.mallocs[0]);
    AO_fetch_and_add(&counts.large_alloc_bytes, bytes);
}

void counters_large_free(size_t bytes)
{
    AO_fetch_and_add1(&counts.frees[0]);
    AO_fetch_and_add(&counts.large_free_bytes, bytes);
}

void counters_large_swept(size_t bytes)
{
    counters_large_free(bytes);
    AO_fetch_and_add(&counts.swept_bytes, bytes);
}

uint64_t counters_swept_bytes(void)
{
    return AO_load(&counts.swept_bytes);
}

void counters_freed(unsigned sizeclass)
{
    AO_fetch_and_add1(&counts.frees[sizeclass]);
}

void counters_fold(unsigned sizeclass, uint64_t mallocs, uint64_t frees)
{
    AO_fetch_and_add(&counts.mallocs[sizeclass], mallocs);
    AO_fetch_and_add(&counts.frees[sizeclass], frees);
}

void counters_read(struct alloc_counts *sum)
{
    for (unsigned i = 0; i < SC_NUM_CLASSES; i++) {
        sum->frees[i] += AO_load(&counts.frees[i]);
        sum->mallocs[i] += AO_load(&counts.mallocs[i]);
    }
    sum->large_free_bytes += AO_load(&counts.large_free_bytes);
    sum->large_alloc_bytes += AO_load(&counts.large_alloc_bytes);
}

/*
 * lib_dlroots.c — a shared object that test_roots.c dlopens after the
 * collector has started.
 *
 * It owns two pointers, one in its bss and one in its data section, that
 * only the accessors below read and write: whatever the suite stores through
 * a setter is reachable from nothing but this library's writable segments.
 * (Thread-local variables of a library loaded after start are not roots:
 * see the README.)
 */
#include <stdint.h>

#define EXPORT __attribute__((visibility("default")))

/* Zero-initialised: lives in .bss. */
static void *volatile bss_ptr;

/* A non-zero dummy until the suite stores a real pointer: lives in .data. */
static void *volatile data_ptr = (void *)(uintptr_t)0x5eed;

EXPORT void dlroots_set_bss(void *p)
{
    bss_ptr = p;
}

EXPORT void *dlroots_get_bss(void)
{
    return bss_ptr;
}

EXPORT void dlroots_set_data(void *p)
{
    data_ptr = p;
}

EXPORT void *dlroots_get_data(void)
{
    return data_ptr;
}


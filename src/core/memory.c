/* memory.c - growable arrays and the huge-page hint the library shares. */
#include "r3d/core.h"

#include <stdlib.h>
#include <sys/mman.h>

int r3d_grow(void **p, int64_t *cap, int64_t need, size_t elem)
{
    if (need <= *cap)
        return 1;
    int64_t c = *cap > 0 ? *cap : 64;
    while (c < need) {
        if (c > INT64_MAX / 2)
            return 0;
        c *= 2;
    }
    size_t bytes;
    if (!r3d_mul_size((size_t)c, elem, &bytes))
        return 0;
    void *n = realloc(*p, bytes);
    if (!n)
        return 0;
    *p = n;
    *cap = c;
    return 1;
}

void r3d_advise_huge(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1), e = ((uintptr_t)p + bytes) & ~(huge - 1);
    if (e > a) /* at least one whole 2 MiB page inside */
        madvise((void *)a, e - a, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}

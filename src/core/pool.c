/* pool.c - r3d_parallel_for: split [0, n) into one contiguous chunk per
 * thread. Threads are created per call (a few tens of microseconds), which
 * is negligible next to the volume-sized work the library hands it, and
 * keeps the library free of global thread state. Chunks are disjoint and
 * fixed by n and the thread count alone, so results never depend on timing.
 */
#include "r3d/core.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

static atomic_int g_threads; /* 0 = online CPUs */
static _Thread_local int tl_in_parallel;

int r3d_in_parallel(void)
{
    return tl_in_parallel;
}

void r3d_set_threads(int n)
{
    atomic_store(&g_threads, n < 0 ? 0 : n);
}

int r3d_threads(void)
{
    int n = atomic_load(&g_threads);
    if (n > 0)
        return n;
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c < 1 ? 1 : (c > 64 ? 64 : (int)c);
}

typedef struct chunk {
    r3d_range_fn fn;
    void *ctx;
    int64_t begin, end;
} chunk;

static void *run_chunk(void *arg)
{
    chunk *c = arg;
    int was = tl_in_parallel;
    tl_in_parallel = 1;
    c->fn(c->ctx, c->begin, c->end);
    tl_in_parallel = was;
    return NULL;
}

void r3d_parallel_for(int64_t n, r3d_range_fn fn, void *ctx)
{
    int t = r3d_threads();
    if (n <= 0)
        return;
    if (t > n)
        t = (int)n;
    if (t <= 1) {
        chunk one = {fn, ctx, 0, n};
        run_chunk(&one);
        return;
    }
    chunk *c = calloc((size_t)t, sizeof *c);
    pthread_t *th = calloc((size_t)t, sizeof *th);
    char *started = calloc((size_t)t, 1);
    if (!c || !th || !started) {
        free(c);
        free(th);
        free(started);
        fn(ctx, 0, n);
        return;
    }
    for (int i = 0; i < t; i++) {
        c[i].fn = fn;
        c[i].ctx = ctx;
        c[i].begin = n * i / t;
        c[i].end = n * (i + 1) / t;
    }
    /* Chunk 0 runs on the calling thread; a thread that cannot be created
     * runs inline, so the work is always done. */
    for (int i = 1; i < t; i++)
        started[i] = pthread_create(&th[i], NULL, run_chunk, &c[i]) == 0;
    run_chunk(&c[0]);
    for (int i = 1; i < t; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        else
            run_chunk(&c[i]);
    }
    free(c);
    free(th);
    free(started);
}

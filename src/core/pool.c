/* pool.c - r3d_parallel_for: split [0, n) into one contiguous chunk per
 * thread. Chunks are disjoint and fixed by n and the thread count alone
 * (chunk i is [n i / t, n (i + 1) / t)), so results never depend on timing.
 *
 * The workers persist: created lazily by the first call that needs them,
 * then asleep on a condition variable between calls, woken by a job
 * counter. Creating and joining threads per call cost tens of
 * microseconds each, which the mesh smoothing's ~180 short passes per
 * surface (a few milliseconds each) paid every time: two threads barely
 * beat one.
 *
 * Chunks are claimed, not assigned: the caller and the workers take the
 * next unclaimed chunk from a counter until none is left, and the caller
 * waits only for workers that joined the call. A worker that is not
 * running yet - its first start, or a machine busy with other processes,
 * where a woken thread can wait milliseconds for a core - no longer holds
 * the caller up: the caller runs that chunk itself, and the late worker
 * finds the call closed. Which thread runs a chunk never changes what the
 * chunk is. (Mesh extraction of a liver mask on 2 shared cores, cold: the
 * caller waited for its worker most of the time, and two threads were
 * slower than one.) One caller at a time owns the pool; a call that finds it busy
 * (another thread of the application is in a parallel_for) falls back to
 * threads of its own for that call, and a call from inside a chunk runs
 * serially (one chunk), so nested parallelism never multiplies. The pool
 * is the library's thread state next to the thread count; its workers
 * are stopped and joined at exit, and a child of fork() starts with none.
 */
#include "r3d/core.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_THREADS 64

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
        return n > MAX_THREADS ? MAX_THREADS : n;
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c < 1 ? 1 : (c > MAX_THREADS ? MAX_THREADS : (int)c);
}

static void run_range(r3d_range_fn fn, void *ctx, int64_t begin, int64_t end)
{
    int was = tl_in_parallel;
    tl_in_parallel = 1;
    fn(ctx, begin, end);
    tl_in_parallel = was;
}

/* ---- the persistent pool ---------------------------------------------------- */

typedef struct pool {
    pthread_mutex_t owner; /* held by the caller that uses the workers */
    pthread_mutex_t mu;    /* guards what follows */
    pthread_cond_t wake, done;
    pthread_t th[MAX_THREADS];
    int nworkers;          /* created: worker w runs chunk w + 1 */
    unsigned long job;     /* bumped per call */
    unsigned long seen0[MAX_THREADS]; /* job at each worker's creation */
    int stop, atexit_set;
    r3d_range_fn fn;
    void *ctx;
    int64_t n;
    int t;                 /* chunks of this job */
    int open;              /* workers may still join it */
    int active;            /* workers that joined it and are not done */
    atomic_int next;       /* the next unclaimed chunk */
} pool;

static pool g_pool = {.owner = PTHREAD_MUTEX_INITIALIZER,
                      .mu = PTHREAD_MUTEX_INITIALIZER,
                      .wake = PTHREAD_COND_INITIALIZER,
                      .done = PTHREAD_COND_INITIALIZER};

/* Claim and run chunks of the job in p until none is left. */
static void claim_chunks(pool *p, r3d_range_fn fn, void *ctx, int64_t n, int t)
{
    for (int c; (c = atomic_fetch_add(&p->next, 1)) < t;)
        run_range(fn, ctx, n * c / t, n * (c + 1) / t);
}

static void *worker(void *arg)
{
    pool *p = &g_pool;
    int w = (int)(intptr_t)arg;
    pthread_mutex_lock(&p->mu);
    unsigned long seen = p->seen0[w]; /* a job posted since is its first */
    for (;;) {
        while (p->job == seen && !p->stop)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop)
            break;
        seen = p->job;
        if (!p->open || w + 1 >= p->t)
            continue; /* closed before this worker woke, or not needed */
        p->active++;
        r3d_range_fn fn = p->fn;
        void *ctx = p->ctx;
        int64_t n = p->n;
        int t = p->t;
        pthread_mutex_unlock(&p->mu);
        claim_chunks(p, fn, ctx, n, t);
        pthread_mutex_lock(&p->mu);
        if (--p->active == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void pool_stop(void)
{
    pool *p = &g_pool;
    /* exit() from inside a chunk, or while another thread's call holds the
     * pool: leave the workers be (the process ends them) rather than wait */
    if (tl_in_parallel || pthread_mutex_trylock(&p->owner) != 0)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    int nw = p->nworkers;
    p->nworkers = 0;
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < nw; i++)
        pthread_join(p->th[i], NULL);
    pthread_mutex_unlock(&p->owner);
}

/* A child of fork() has none of its parent's workers: start afresh (the
 * locks are re-made, since another thread may have held them at the fork). */
static void pool_after_fork(void)
{
    pool *p = &g_pool;
    pthread_mutex_init(&p->owner, NULL);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    p->nworkers = 0;
    p->open = 0;
    p->active = 0;
}

/* Have at least k workers (called by the owner); returns how many exist. */
static int pool_grow(pool *p, int k)
{
    pthread_mutex_lock(&p->mu);
    if (!p->atexit_set) {
        p->atexit_set = atexit(pool_stop) == 0 ? 1 : -1;
        pthread_atfork(NULL, NULL, pool_after_fork);
    }
    while (p->nworkers < k && !p->stop) {
        int w = p->nworkers;
        p->seen0[w] = p->job;
        if (pthread_create(&p->th[w], NULL, worker, (void *)(intptr_t)w) != 0)
            break;
        p->nworkers++;
    }
    int nw = p->nworkers;
    pthread_mutex_unlock(&p->mu);
    return nw;
}

/* ---- a call that cannot use the pool: threads of its own -------------------- */

typedef struct chunk {
    r3d_range_fn fn;
    void *ctx;
    int64_t begin, end;
} chunk;

static void *run_chunk(void *arg)
{
    chunk *c = arg;
    run_range(c->fn, c->ctx, c->begin, c->end);
    return NULL;
}

static void run_own_threads(int64_t n, int t, r3d_range_fn fn, void *ctx)
{
    chunk c[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    char started[MAX_THREADS] = {0};
    for (int i = 0; i < t; i++) {
        c[i].fn = fn;
        c[i].ctx = ctx;
        c[i].begin = n * i / t;
        c[i].end = n * (i + 1) / t;
    }
    /* chunk 0 on the calling thread; a thread that cannot be created runs
     * inline, so the work is always done */
    for (int i = 1; i < t; i++)
        started[i] = pthread_create(&th[i], NULL, run_chunk, &c[i]) == 0;
    run_chunk(&c[0]);
    for (int i = 1; i < t; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        else
            run_chunk(&c[i]);
    }
}

void r3d_parallel_for(int64_t n, r3d_range_fn fn, void *ctx)
{
    if (n <= 0)
        return;
    int t = r3d_threads();
    if (t > n)
        t = (int)n;
    if (t <= 1 || tl_in_parallel) { /* one chunk; nested calls stay serial */
        run_range(fn, ctx, 0, n);
        return;
    }
    pool *p = &g_pool;
    if (pthread_mutex_trylock(&p->owner) != 0) {
        run_own_threads(n, t, fn, ctx);
        return;
    }
    if (pool_grow(p, t - 1) < t - 1) { /* too few workers: threads of its own */
        pthread_mutex_unlock(&p->owner);
        run_own_threads(n, t, fn, ctx);
        return;
    }
    pthread_mutex_lock(&p->mu); /* workers 0 .. t - 2 may join */
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->t = t;
    p->open = 1;
    atomic_store(&p->next, 0);
    p->job++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    claim_chunks(p, fn, ctx, n, t);
    pthread_mutex_lock(&p->mu); /* every chunk is claimed: wait for those running */
    p->open = 0;
    while (p->active > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->owner);
}

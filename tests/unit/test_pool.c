/* test_pool.c - r3d_parallel_for's persistent workers (core/pool.c): every
 * index is run exactly once, in the chunks fixed by n and the thread
 * count, for many calls in a row and as the thread count changes; a call
 * from inside a chunk runs serially on that thread; the caller does not
 * wait for a worker that has not woken up yet but runs its chunk itself;
 * several application threads calling at once each get their whole range
 * done; a child of fork() gets its calls done without the parent's
 * workers. */
#include "check.h"

#include "r3d/core.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct cover {
    atomic_int *hits;    /* per index */
    int64_t *chunk_of;   /* per index: begin of the chunk that ran it */
    atomic_int nested_bad;
} cover;

static void mark(void *ctx, int64_t b, int64_t e)
{
    cover *c = ctx;
    for (int64_t i = b; i < e; i++) {
        atomic_fetch_add(&c->hits[i], 1);
        c->chunk_of[i] = b;
    }
}

static void test_pool_every_index_once_in_fixed_chunks(void)
{
    enum { N = 1000 };
    atomic_int hits[N];
    int64_t chunk_of[N];
    cover c = {hits, chunk_of, 0};
    int ts[] = {1, 2, 3, 4, 7, 2, 5, 1, 3};
    int64_t ns[] = {1, 2, 3, 5, 64, 999, 1000};
    for (size_t a = 0; a < sizeof ts / sizeof *ts; a++)
        for (size_t b = 0; b < sizeof ns / sizeof *ns; b++)
            for (int rep = 0; rep < 20; rep++) {
                int t = ts[a];
                int64_t n = ns[b];
                for (int64_t i = 0; i < n; i++)
                    atomic_init(&hits[i], 0);
                r3d_set_threads(t);
                r3d_parallel_for(n, mark, &c);
                int64_t tt = t < n ? t : n, bad = 0;
                for (int64_t i = 0; i < n; i++) {
                    /* the chunk that holds i: [n k / tt, n (k + 1) / tt) */
                    int64_t k = 0;
                    while (n * (k + 1) / tt <= i)
                        k++;
                    bad += atomic_load(&hits[i]) != 1 || chunk_of[i] != n * k / tt;
                }
                CHECK_INT(bad, 0);
            }
    r3d_set_threads(0);
}

static void inner(void *ctx, int64_t b, int64_t e)
{
    cover *c = ctx;
    if (!r3d_in_parallel() || b != 0 || e != 10)
        atomic_store(&c->nested_bad, 1);
}

static void outer(void *ctx, int64_t b, int64_t e)
{
    cover *c = ctx;
    for (int64_t i = b; i < e; i++) {
        r3d_parallel_for(10, inner, c); /* serial here: one chunk [0, 10) */
        atomic_fetch_add(&c->hits[i], 1);
    }
}

static void test_pool_nested_call_runs_serially(void)
{
    enum { N = 16 };
    atomic_int hits[N];
    int64_t chunk_of[N];
    cover c = {hits, chunk_of, 0};
    for (int i = 0; i < N; i++)
        atomic_init(&hits[i], 0);
    atomic_init(&c.nested_bad, 0);
    r3d_set_threads(4);
    CHECK(!r3d_in_parallel());
    r3d_parallel_for(N, outer, &c);
    CHECK(!r3d_in_parallel());
    CHECK_INT(atomic_load(&c.nested_bad), 0);
    for (int i = 0; i < N; i++)
        CHECK_INT(atomic_load(&hits[i]), 1);
    r3d_set_threads(0);
}

typedef struct who {
    pthread_t caller;
    atomic_int other; /* chunks run by a thread other than the caller */
} who;

static void note_thread(void *ctx, int64_t b, int64_t e)
{
    who *w = ctx;
    (void)b, (void)e;
    if (!pthread_equal(pthread_self(), w->caller))
        atomic_fetch_add(&w->other, 1);
}

/* Chunks are claimed, not assigned: with chunks that take no time, the
 * caller has usually claimed every chunk before its worker is even
 * scheduled, and then runs them all instead of waiting. When the second
 * chunk belonged to worker 0, no call of the 300 ever ran on the caller
 * alone. */
static void test_pool_caller_runs_chunks_of_a_late_worker(void)
{
    r3d_set_threads(2);
    int alone = 0;
    for (int rep = 0; rep < 300; rep++) {
        who w = {pthread_self(), 0};
        r3d_parallel_for(2, note_thread, &w);
        alone += atomic_load(&w.other) == 0;
    }
    CHECK(alone > 0);
    r3d_set_threads(0);
}

typedef struct sum_job {
    const int64_t *x;
    int64_t part[8];
    int64_t n;
} sum_job;

static void sum_part(void *ctx, int64_t b, int64_t e)
{
    sum_job *s = ctx;
    for (int64_t k = b; k < e; k++) {
        int64_t acc = 0;
        for (int64_t i = s->n * k / 8; i < s->n * (k + 1) / 8; i++)
            acc += s->x[i];
        s->part[k] = acc;
    }
}

typedef struct caller {
    const int64_t *x;
    int64_t n, expect;
    int wrong;
} caller;

static void *call_many(void *arg)
{
    caller *c = arg;
    for (int rep = 0; rep < 300; rep++) {
        sum_job s = {c->x, {0}, c->n};
        r3d_parallel_for(8, sum_part, &s);
        int64_t t = 0;
        for (int k = 0; k < 8; k++)
            t += s.part[k];
        c->wrong += t != c->expect;
    }
    return NULL;
}

static void test_pool_concurrent_callers(void)
{
    enum { N = 20000, C = 4 };
    static int64_t x[N];
    int64_t expect = 0;
    for (int i = 0; i < N; i++)
        expect += x[i] = i % 97;
    r3d_set_threads(3);
    caller c[C];
    pthread_t th[C];
    int started[C];
    for (int i = 0; i < C; i++) {
        c[i] = (caller){x, N, expect, 0};
        started[i] = pthread_create(&th[i], NULL, call_many, &c[i]) == 0;
    }
    for (int i = 0; i < C; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        else
            call_many(&c[i]);
        CHECK_INT(c[i].wrong, 0);
    }
    r3d_set_threads(0);
}

/* A child of fork() has none of the parent's workers: its calls still run
 * every chunk (before the fork hook, the first one waited for ever on
 * workers that do not exist in the child; alarm() turns that into a fail). */
static void test_pool_after_fork(void)
{
    enum { N = 4000 };
    static int64_t x[N];
    int64_t expect = 0;
    for (int i = 0; i < N; i++)
        expect += x[i] = i % 31;
    r3d_set_threads(3);
    caller c = {x, N, expect, 0};
    call_many(&c); /* the parent's workers exist now */
    CHECK_INT(c.wrong, 0);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(20);
        caller k = {x, N, expect, 0};
        call_many(&k);
        _exit(k.wrong ? 1 : 0);
    }
    CHECK(pid > 0);
    int status = -1;
    if (pid > 0)
        waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    r3d_set_threads(0);
}

int main(void)
{
    RUN(test_pool_every_index_once_in_fixed_chunks);
    RUN(test_pool_nested_call_runs_serially);
    RUN(test_pool_caller_runs_chunks_of_a_late_worker);
    RUN(test_pool_concurrent_callers);
    RUN(test_pool_after_fork);
    return CHECK_DONE("test_pool");
}

/* progress.c - progress on stderr for anything that takes over a second. */
#include "cli.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void cli_progress_init(cli_progress *p, int quiet)
{
    memset(p, 0, sizeof *p);
    p->quiet = quiet;
    p->tty = isatty(2);
    p->t0 = cli_now();
}

void cli_progress_cb(void *ctx, const char *stage, int64_t done, int64_t total)
{
    cli_progress *p = ctx;
    double t = cli_now();
    if (p->quiet || t - p->t0 < 1.0)
        return;
    int new_stage = strcmp(stage, p->stage) != 0;
    /* Plain lines at most every 2 s (logs stay short); a bar redrawn at 10 Hz. */
    if (!new_stage && done < total && t - p->last < (p->tty ? 0.1 : 2.0))
        return;
    p->last = t;
    if (p->tty) {
        int w = 30, fill = total > 0 ? (int)(w * done / total) : 0;
        char bar[64];
        memset(bar, '#', (size_t)fill);
        memset(bar + fill, '.', (size_t)(w - fill));
        bar[w] = 0;
        if (new_stage && p->shown)
            fputc('\n', stderr);
        fprintf(stderr, "\r%-10s [%s] %lld/%lld", stage, bar, (long long)done, (long long)total);
    } else {
        fprintf(stderr, "%s: %lld/%lld (%.1f s)\n", stage, (long long)done, (long long)total,
                t - p->t0);
    }
    snprintf(p->stage, sizeof p->stage, "%s", stage);
    p->shown = 1;
}

void cli_progress_end(cli_progress *p)
{
    if (p->shown && p->tty)
        fputc('\n', stderr);
    p->shown = 0;
}

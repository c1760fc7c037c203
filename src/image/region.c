/* region.c - region growing from seeds, one front at a time, with leak
 * control.
 *
 * The region grows breadth-first: front k holds the voxels first reached at
 * step k. A structure that is being followed (a bronchus, a vessel) gives
 * fronts of slowly changing size; a leak into the parenchyma or the outside
 * air makes one front suddenly many times larger than the ones before. When
 * the new front is larger than leak_ratio times the median of the last
 * LEAK_WINDOW fronts (once that many exist), or would take the region past
 * max_voxels, the front is not added and growth stops: the region is what
 * was grown up to the step before the leak. */
#include "image_internal.h"

#include <stdlib.h>
#include <string.h>

#define LEAK_WINDOW 8

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t median_of_last(const int64_t *sizes, int n)
{
    int64_t w[LEAK_WINDOW];
    int k = n < LEAK_WINDOW ? n : LEAK_WINDOW;
    memcpy(w, sizes + n - k, (size_t)k * sizeof *w);
    qsort(w, (size_t)k, sizeof *w, cmp_i64);
    return w[k / 2];
}

/* Offsets (di, dj, dk) of the 6-, 18- or 26-neighbourhood. */
static int neighbourhood(int connectivity, int off[26][3])
{
    int n = 0;
    for (int k = -1; k <= 1; k++)
        for (int j = -1; j <= 1; j++)
            for (int i = -1; i <= 1; i++) {
                int d = abs(i) + abs(j) + abs(k);
                if (d == 0 || (connectivity == 6 && d > 1) || (connectivity == 18 && d > 2))
                    continue;
                off[n][0] = i, off[n][1] = j, off[n][2] = k;
                n++;
            }
    return n;
}

r3d_volume *r3d_image_region_grow(const r3d_volume *v, const int64_t *seeds, int n_seeds,
                                  const r3d_grow_opts *opts, int *leaked, r3d_error *err)
{
    if (leaked)
        *leaked = 0;
    if (r3d_image_check_3d(v, "region growing", err) != R3D_OK)
        return NULL;
    if (!opts || (opts->connectivity != 6 && opts->connectivity != 18 && opts->connectivity != 26))
        return r3d_fail(err, R3D_EARG, "region growing: connectivity must be 6, 18 or 26"), NULL;
    int64_t nx = v->dim[0], ny = v->dim[1], nz = v->dim[2], n = nx * ny * nz;
    r3d_volume *m = r3d_volume_new_like(v, R3D_U8, err);
    if (!m)
        return NULL;
    uint8_t *in = m->voxels;
    /* The region is stored as one array of indices in growth order; front k
     * is the slice [start_k, start_{k+1}). */
    int64_t cap = 4096, len = 0, *list = malloc((size_t)cap * sizeof *list);
    int64_t fcap = 256, nfront = 0, *fsize = malloc((size_t)fcap * sizeof *fsize);
    if (!list || !fsize)
        goto nomem;
    for (int s = 0; s < n_seeds; s++) {
        int64_t p = seeds[s];
        if (p < 0 || p >= n)
            continue;
        double x = r3d_volume_get(v, p);
        if (in[p] || x < opts->lo || x > opts->hi)
            continue;
        if (!r3d_grow((void **)&list, &cap, len + 1, sizeof *list))
            goto nomem;
        in[p] = 1;
        list[len++] = p;
    }
    if (len == 0)
        goto done; /* no seed inside the range: an empty region, not an error */
    int off[26][3];
    int noff = neighbourhood(opts->connectivity, off);
    int64_t front_begin = 0;
    fsize[nfront++] = len;
    for (;;) {
        int64_t front_end = len;
        for (int64_t q = front_begin; q < front_end; q++) {
            int64_t p = list[q];
            int64_t i = p % nx, j = (p / nx) % ny, k = p / (nx * ny);
            for (int o = 0; o < noff; o++) {
                int64_t a = i + off[o][0], b = j + off[o][1], c = k + off[o][2];
                if (a < 0 || b < 0 || c < 0 || a >= nx || b >= ny || c >= nz)
                    continue;
                int64_t r = a + nx * (b + ny * c);
                if (in[r])
                    continue;
                double x = r3d_volume_get(v, r);
                if (x < opts->lo || x > opts->hi)
                    continue;
                if (!r3d_grow((void **)&list, &cap, len + 1, sizeof *list))
                    goto nomem;
                in[r] = 1;
                list[len++] = r;
            }
        }
        int64_t grown = len - front_end;
        if (grown == 0)
            break;
        int leak = opts->max_voxels > 0 && len > opts->max_voxels;
        if (!leak && opts->leak_ratio > 0 && nfront >= LEAK_WINDOW) {
            int64_t med = median_of_last(fsize, (int)nfront);
            leak = (double)grown > opts->leak_ratio * (double)(med > 0 ? med : 1);
        }
        if (leak) { /* drop the new front: the region ends before the leak */
            for (int64_t q = front_end; q < len; q++)
                in[list[q]] = 0;
            len = front_end;
            if (leaked)
                *leaked = 1;
            break;
        }
        if (!r3d_grow((void **)&fsize, &fcap, nfront + 1, sizeof *fsize))
            goto nomem;
        fsize[nfront++] = grown;
        front_begin = front_end;
    }
done:
    free(list);
    free(fsize);
    return m;
nomem:
    free(list);
    free(fsize);
    r3d_volume_free(m);
    return r3d_fail(err, R3D_ENOMEM, "region growing: out of memory"), NULL;
}

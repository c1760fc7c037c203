/* mask.c - thresholding, hole filling and the input check every image
 * operation shares. */
#include "image_internal.h"

#include <stdlib.h>
#include <string.h>

r3d_status r3d_image_check_3d(const r3d_volume *v, const char *op, r3d_error *err)
{
    if (!v || !v->voxels)
        return r3d_fail(err, R3D_EARG, "%s: no volume", op);
    if (v->dim[3] > 1)
        return r3d_fail(err, R3D_EARG, "%s: needs a 3D volume, got %lld time points", op,
                        (long long)v->dim[3]);
    if (v->dtype == R3D_RGB24)
        return r3d_fail(err, R3D_EARG, "%s: colour volumes are not supported", op);
    for (int i = 0; i < 3; i++)
        if (!(v->spacing_mm[i] > 0))
            return r3d_fail(err, R3D_EARG, "%s: voxel spacing %g on axis %d is not positive", op,
                            v->spacing_mm[i], i);
    return R3D_OK;
}

typedef struct thr_ctx {
    const r3d_volume *v;
    uint8_t *out;
    double lo, hi;
} thr_ctx;

static void thr_range(void *arg, int64_t b, int64_t e)
{
    thr_ctx *c = arg;
    for (int64_t i = b; i < e; i++) {
        double x = r3d_volume_get(c->v, i);
        c->out[i] = x >= c->lo && x <= c->hi;
    }
}

r3d_volume *r3d_image_threshold(const r3d_volume *v, double lo, double hi, r3d_error *err)
{
    if (r3d_image_check_3d(v, "threshold", err) != R3D_OK)
        return NULL;
    r3d_volume *m = r3d_volume_new_like(v, R3D_U8, err);
    if (!m)
        return NULL;
    thr_ctx c = {v, m->voxels, lo, hi};
    r3d_parallel_for(r3d_volume_nvox(m), thr_range, &c);
    return m;
}

/* Background reachable from the border through 6-connected background stays
 * background; every other voxel is inside. One BFS, a queue of indices. */
r3d_volume *r3d_image_fill_holes(const r3d_volume *mask, r3d_error *err)
{
    if (r3d_image_check_3d(mask, "fill holes", err) != R3D_OK)
        return NULL;
    int64_t nx = mask->dim[0], ny = mask->dim[1], nz = mask->dim[2], n = nx * ny * nz;
    r3d_volume *o = r3d_volume_new_like(mask, R3D_U8, err);
    int64_t *queue = o ? malloc((size_t)n * sizeof *queue) : NULL;
    if (!queue) {
        r3d_volume_free(o);
        return r3d_fail(err, R3D_ENOMEM, "fill holes: out of memory"), NULL;
    }
    uint8_t *out = o->voxels; /* 0 = unknown, 1 = inside, 2 = outside */
    for (int64_t i = 0; i < n; i++)
        out[i] = r3d_image_on(mask, i) ? 1 : 0;
    int64_t head = 0, tail = 0;
    for (int64_t z = 0; z < nz; z++)
        for (int64_t y = 0; y < ny; y++)
            for (int64_t x = 0; x < nx; x++) {
                if (x && x < nx - 1 && y && y < ny - 1 && z && z < nz - 1)
                    continue;
                int64_t i = (z * ny + y) * nx + x;
                if (out[i] == 0) {
                    out[i] = 2;
                    queue[tail++] = i;
                }
            }
    while (head < tail) {
        int64_t i = queue[head++];
        int64_t x = i % nx, y = (i / nx) % ny, z = i / (nx * ny);
        int64_t nb[6];
        int k = 0;
        if (x > 0) nb[k++] = i - 1;
        if (x < nx - 1) nb[k++] = i + 1;
        if (y > 0) nb[k++] = i - nx;
        if (y < ny - 1) nb[k++] = i + nx;
        if (z > 0) nb[k++] = i - nx * ny;
        if (z < nz - 1) nb[k++] = i + nx * ny;
        for (int j = 0; j < k; j++)
            if (out[nb[j]] == 0) {
                out[nb[j]] = 2;
                queue[tail++] = nb[j];
            }
    }
    free(queue);
    for (int64_t i = 0; i < n; i++)
        out[i] = out[i] != 2;
    return o;
}

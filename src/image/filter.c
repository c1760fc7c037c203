/* filter.c - Gaussian smoothing.
 *
 * Separable: one 1-D convolution per axis with a sampled, normalised
 * Gaussian whose sigma is sigma_mm / spacing on that axis, truncated at 3
 * sigma, edges replicated (scipy.ndimage.gaussian_filter with mode
 * "nearest" and truncate 3 gives the same numbers). Cost: n x (sum of the
 * three kernel widths). Lines are independent: r3d_parallel_for over lines.
 */
#include "image_internal.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct gpass {
    float *g;
    int64_t dim[3];
    int axis;
    const double *k; /* 2r+1 weights */
    int r;
    atomic_int failed;
} gpass;

static void gpass_range(void *arg, int64_t b, int64_t e)
{
    gpass *c = arg;
    int64_t nx = c->dim[0], ny = c->dim[1];
    int64_t n = c->dim[c->axis];
    int64_t stride = c->axis == 0 ? 1 : c->axis == 1 ? nx : nx * ny;
    int64_t lines_a = c->axis == 0 ? ny : nx;
    double *line = malloc((size_t)n * sizeof *line);
    if (!line) {
        atomic_store(&c->failed, 1);
        return;
    }
    for (int64_t l = b; l < e; l++) {
        int64_t a = l % lines_a, bb = l / lines_a, base;
        if (c->axis == 0)
            base = (bb * ny + a) * nx;
        else if (c->axis == 1)
            base = bb * nx * ny + a;
        else
            base = bb * nx + a;
        for (int64_t q = 0; q < n; q++)
            line[q] = c->g[base + q * stride];
        for (int64_t q = 0; q < n; q++) {
            double acc = 0;
            for (int j = -c->r; j <= c->r; j++) {
                int64_t p = q + j;
                p = p < 0 ? 0 : (p >= n ? n - 1 : p);
                acc += c->k[j + c->r] * line[p];
            }
            c->g[base + q * stride] = (float)acc;
        }
    }
    free(line);
}

r3d_volume *r3d_image_gaussian(const r3d_volume *v, double sigma_mm, r3d_error *err)
{
    if (r3d_image_check_3d(v, "gaussian", err) != R3D_OK)
        return NULL;
    if (!(sigma_mm >= 0))
        return r3d_fail(err, R3D_EARG, "gaussian: sigma %g mm is not valid", sigma_mm), NULL;
    r3d_volume *o = r3d_image_like(v, R3D_F32, err);
    if (!o)
        return NULL;
    float *g = o->voxels;
    int64_t n = r3d_volume_nvox(o);
    for (int64_t i = 0; i < n; i++)
        g[i] = (float)r3d_volume_get(v, i);
    for (int axis = 0; axis < 3 && sigma_mm > 0; axis++) {
        double s = sigma_mm / v->spacing_mm[axis];
        int r = (int)(3.0 * s + 0.5); /* scipy: int(truncate * sd + 0.5) */
        if (r < 1)
            continue;
        double *k = malloc((size_t)(2 * r + 1) * sizeof *k), sum = 0;
        if (!k) {
            r3d_volume_free(o);
            return r3d_fail(err, R3D_ENOMEM, "gaussian: out of memory"), NULL;
        }
        for (int j = -r; j <= r; j++)
            sum += k[j + r] = exp(-0.5 * j * j / (s * s));
        for (int j = 0; j <= 2 * r; j++)
            k[j] /= sum;
        gpass c = {g, {v->dim[0], v->dim[1], v->dim[2]}, axis, k, r, 0};
        r3d_parallel_for(n / v->dim[axis], gpass_range, &c);
        free(k);
        if (atomic_load(&c.failed)) {
            r3d_volume_free(o);
            return r3d_fail(err, R3D_ENOMEM, "gaussian: out of memory"), NULL;
        }
    }
    return o;
}

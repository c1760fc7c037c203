/* filter.c - Gaussian smoothing.
 *
 * Separable: one 1-D convolution per axis with a sampled, normalised
 * Gaussian whose sigma is sigma_mm / spacing on that axis, truncated at 4
 * sigma, edges replicated (scipy.ndimage.gaussian_filter's defaults with
 * mode "nearest" give the same numbers; 3 sigma would leave 1 % of the
 * peak at the cut, which second derivatives (Hessian) feel). Cost: n x (sum of the
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

/* Lines are gathered W at a time into a padded, line-interleaved buffer
 * (edges replicated r deep), so the strided y and z passes read whole cache
 * lines and the inner loop has no bounds checks. */
enum { W = 16 };

static void gpass_range(void *arg, int64_t b, int64_t e)
{
    gpass *c = arg;
    int64_t nx = c->dim[0], ny = c->dim[1];
    int64_t n = c->dim[c->axis];
    int64_t stride = c->axis == 0 ? 1 : c->axis == 1 ? nx : nx * ny;
    int64_t lines_a = c->axis == 0 ? ny : nx;
    int r = c->r;
    double *buf = malloc((size_t)(n + 2 * r) * W * sizeof *buf);
    double *acc = malloc((size_t)W * sizeof *acc);
    if (!buf || !acc) {
        atomic_store(&c->failed, 1);
        free(buf);
        free(acc);
        return;
    }
    int64_t bases[W];
    for (int64_t l0 = b; l0 < e; l0 += W) {
        int w = (int)(e - l0 < W ? e - l0 : W);
        for (int u = 0; u < w; u++) {
            int64_t l = l0 + u, a = l % lines_a, bb = l / lines_a;
            bases[u] = c->axis == 0 ? (bb * ny + a) * nx
                                    : c->axis == 1 ? bb * nx * ny + a : bb * nx + a;
        }
        for (int64_t q = -r; q < n + r; q++) {
            int64_t p = q < 0 ? 0 : (q >= n ? n - 1 : q);
            double *row = buf + (q + r) * W;
            for (int u = 0; u < w; u++)
                row[u] = c->g[bases[u] + p * stride];
        }
        for (int64_t q = 0; q < n; q++) {
            for (int u = 0; u < W; u++)
                acc[u] = 0;
            for (int j = 0; j <= 2 * r; j++) {
                const double kj = c->k[j], *row = buf + (q + j) * W;
                for (int u = 0; u < W; u++)
                    acc[u] += kj * row[u];
            }
            for (int u = 0; u < w; u++)
                c->g[bases[u] + q * stride] = (float)acc[u];
        }
    }
    free(buf);
    free(acc);
}

r3d_volume *r3d_image_gaussian(const r3d_volume *v, double sigma_mm, r3d_error *err)
{
    if (r3d_image_check_3d(v, "gaussian", err) != R3D_OK)
        return NULL;
    if (!(sigma_mm >= 0))
        return r3d_fail(err, R3D_EARG, "gaussian: sigma %g mm is not valid", sigma_mm), NULL;
    r3d_volume *o = r3d_volume_new_like(v, R3D_F32, err);
    if (!o)
        return NULL;
    float *g = o->voxels;
    int64_t n = r3d_volume_nvox(o);
    for (int64_t i = 0; i < n; i++)
        g[i] = (float)r3d_volume_get(v, i);
    for (int axis = 0; axis < 3 && sigma_mm > 0; axis++) {
        double s = sigma_mm / v->spacing_mm[axis];
        int r = (int)(4.0 * s + 0.5); /* scipy: int(truncate * sd + 0.5) */
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
        /* chunks of whole W-line groups keep results thread-independent */
        r3d_parallel_for(n / v->dim[axis], gpass_range, &c);
        free(k);
        if (atomic_load(&c.failed)) {
            r3d_volume_free(o);
            return r3d_fail(err, R3D_ENOMEM, "gaussian: out of memory"), NULL;
        }
    }
    return o;
}

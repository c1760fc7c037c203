/* distance.c - exact Euclidean distance transform and the morphology built
 * on it.
 *
 * Algorithm: Felzenszwalb & Huttenlocher, "Distance Transforms of Sampled
 * Functions" (2012): the squared distance is separable, so three 1-D passes
 * (x, then y, then z), each computing the lower envelope of parabolas
 * rooted at the samples, give the exact result in O(n) per pass. Sample
 * positions are in millimetres (index x spacing), so anisotropic voxels
 * need no approximation. Squared distances are kept in float32 (4 bytes a
 * voxel; for 500 mm, 0.015 mm^2 resolution).
 *
 * Morphology with a ball of radius r (mm) follows: dilation = voxels within
 * r of the mask (EDT of the complement <= r); erosion = mask voxels farther
 * than r from any background, the space outside the volume counting as
 * background (scipy's border_value = 0). Cost is independent of r.
 * Lines are independent: each pass is split over lines with
 * r3d_parallel_for, so results do not depend on the thread count.
 */
#include "image_internal.h"

#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define BIG FLT_MAX

/* 1-D squared distance of the sampled function f (n samples, spacing s mm)
 * into d. border_zero: virtual zero samples just outside both ends.
 * v (sites) and z (boundaries) are scratch of n+2 and n+3 entries. */
static void dt1d(const float *f, float *d, int64_t n, double s, int border_zero, int64_t *v,
                 double *z)
{
    int64_t k = -1;
    /* sites may include -1 and n (the borders), all with finite values */
#define F(q) ((q) < 0 || (q) >= n ? 0.0 : (double)f[q])
    for (int64_t q = border_zero ? -1 : 0; q <= (border_zero ? n : n - 1); q++) {
        if (q >= 0 && q < n && f[q] >= BIG)
            continue;
        double fq = F(q) + (q * s) * (q * s);
        while (k >= 0) {
            int64_t p = v[k];
            double x = (fq - (F(p) + (p * s) * (p * s))) / (2 * s * (double)(q - p));
            if (x <= z[k]) {
                k--;
                continue;
            }
            z[k + 1] = x;
            break;
        }
        if (k < 0)
            z[0] = -INFINITY;
        v[++k] = q;
        z[k + 1] = INFINITY;
    }
    if (k < 0) {
        for (int64_t q = 0; q < n; q++)
            d[q] = BIG;
        return;
    }
    int64_t j = 0;
    for (int64_t q = 0; q < n; q++) {
        double x = q * s;
        while (z[j + 1] < x)
            j++;
        double dx = x - v[j] * s;
        double r = dx * dx + F(v[j]);
        d[q] = r >= BIG ? BIG : (float)r;
    }
#undef F
}

typedef struct pass_ctx {
    float *g;
    int64_t dim[3];
    int axis;
    double s;
    int border_zero;
    atomic_int failed; /* a worker could not get its line buffers */
} pass_ctx;

static void pass_range(void *arg, int64_t b, int64_t e)
{
    pass_ctx *c = arg;
    int64_t nx = c->dim[0], ny = c->dim[1], nz = c->dim[2];
    int64_t n = c->dim[c->axis];
    int64_t stride = c->axis == 0 ? 1 : c->axis == 1 ? nx : nx * ny;
    int64_t lines_a = c->axis == 0 ? ny : nx; /* the faster of the other two */
    float *line = malloc((size_t)n * sizeof *line), *out = malloc((size_t)n * sizeof *out);
    int64_t *v = malloc((size_t)(n + 2) * sizeof *v);
    double *z = malloc((size_t)(n + 3) * sizeof *z);
    if (!line || !out || !v || !z) {
        atomic_store(&c->failed, 1);
        goto done;
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
        dt1d(line, out, n, c->s, c->border_zero, v, z);
        for (int64_t q = 0; q < n; q++)
            c->g[base + q * stride] = out[q];
    }
done:
    free(line);
    free(out);
    free(v);
    free(z);
    (void)nz;
}

/* Squared distances (mm^2) from every voxel to the nearest "site": the
 * voxels whose on-state equals sites_are_on (g = 0 there, BIG elsewhere),
 * then three passes. */
static float *edt_sq(const r3d_volume *m, int sites_are_on, int border_zero, r3d_error *err)
{
    int64_t n = r3d_volume_nvox(m);
    float *g = malloc((size_t)n * sizeof *g);
    if (!g)
        return r3d_fail(err, R3D_ENOMEM, "distance transform: out of memory"), NULL;
    for (int64_t i = 0; i < n; i++)
        g[i] = (r3d_image_on(m, i) == sites_are_on) ? 0.0f : BIG;
    for (int axis = 0; axis < 3; axis++) {
        pass_ctx c = {g, {m->dim[0], m->dim[1], m->dim[2]}, axis, m->spacing_mm[axis],
                      border_zero, 0};
        int64_t lines = n / m->dim[axis];
        r3d_parallel_for(lines, pass_range, &c);
        if (atomic_load(&c.failed)) {
            free(g);
            return r3d_fail(err, R3D_ENOMEM, "distance transform: out of memory"), NULL;
        }
    }
    return g;
}

r3d_volume *r3d_image_distance(const r3d_volume *mask, r3d_error *err)
{
    if (r3d_image_check_3d(mask, "distance", err) != R3D_OK)
        return NULL;
    r3d_volume *o = r3d_volume_new_like(mask, R3D_F32, err);
    if (!o)
        return NULL;
    float *g = edt_sq(mask, 0, 0, err);
    if (!g) {
        r3d_volume_free(o);
        return NULL;
    }
    float *d = o->voxels;
    for (int64_t i = 0, n = r3d_volume_nvox(o); i < n; i++)
        d[i] = g[i] >= BIG ? INFINITY : sqrtf(g[i]);
    free(g);
    return o;
}

/* dilate: distance to the mask <= r; erode: distance to background > r. */
static r3d_volume *morph(const r3d_volume *mask, double r, int dilate, const char *op,
                         r3d_error *err)
{
    if (r3d_image_check_3d(mask, op, err) != R3D_OK)
        return NULL;
    if (!(r >= 0))
        return r3d_fail(err, R3D_EARG, "%s: radius %g mm is not valid", op, r), NULL;
    r3d_volume *o = r3d_volume_new_like(mask, R3D_U8, err);
    if (!o)
        return NULL;
    float *g = edt_sq(mask, dilate, !dilate, err);
    if (!g) {
        r3d_volume_free(o);
        return NULL;
    }
    /* A relative tolerance keeps offsets exactly at r inside the ball. */
    double r2 = r * r * (1 + 1e-6) + 1e-9;
    uint8_t *out = o->voxels;
    for (int64_t i = 0, n = r3d_volume_nvox(o); i < n; i++)
        out[i] = dilate ? g[i] <= r2 : (r3d_image_on(mask, i) && g[i] > r2);
    free(g);
    return o;
}

r3d_volume *r3d_image_dilate(const r3d_volume *mask, double radius_mm, r3d_error *err)
{
    return morph(mask, radius_mm, 1, "dilate", err);
}

r3d_volume *r3d_image_erode(const r3d_volume *mask, double radius_mm, r3d_error *err)
{
    return morph(mask, radius_mm, 0, "erode", err);
}

r3d_volume *r3d_image_open(const r3d_volume *mask, double radius_mm, r3d_error *err)
{
    r3d_volume *e = morph(mask, radius_mm, 0, "open", err);
    r3d_volume *o = e ? morph(e, radius_mm, 1, "open", err) : NULL;
    r3d_volume_free(e);
    return o;
}

r3d_volume *r3d_image_close(const r3d_volume *mask, double radius_mm, r3d_error *err)
{
    r3d_volume *d = morph(mask, radius_mm, 1, "close", err);
    r3d_volume *o = d ? morph(d, radius_mm, 0, "close", err) : NULL;
    r3d_volume_free(d);
    return o;
}

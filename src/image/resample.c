/* resample.c - a volume onto another grid, through patient space.
 *
 * For every target voxel: its LPS position by the target's affine, then the
 * source index by the inverse of the source's affine, then nearest neighbour
 * (labels stay labels, data type kept) or trilinear interpolation (float32
 * real values). Source positions outside [0, n-1] on any axis take `fill`
 * (scipy.ndimage.map_coordinates with mode "constant"); nearest rounds half
 * away from zero. The index map is affine, so each row of the target costs
 * one start point and one step vector. Rows in parallel.
 *
 * Cubic B-spline: the source is first turned into spline coefficients
 * (Unser's recursive filter, pole sqrt(3) - 2, mirror boundary, exact
 * initialisation), then each sample weighs the 4x4x4 coefficients around
 * it; scipy.ndimage.map_coordinates(order=3, mode="mirror") inside the
 * volume, `fill` outside as for the others.
 */
#include "image_internal.h"
#include "core/affine.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct rs_ctx {
    const r3d_volume *src;
    const float *coef; /* B-spline coefficients, or NULL */
    r3d_volume *dst;
    double map[4][4]; /* target ijk -> source ijk */
    r3d_interp interp;
    double fill;
} rs_ctx;

static void store(r3d_volume *d, int64_t i, double x)
{
    switch (d->dtype) {
    case R3D_U8: ((uint8_t *)d->voxels)[i] = (uint8_t)x; break;
    case R3D_I8: ((int8_t *)d->voxels)[i] = (int8_t)x; break;
    case R3D_I16: ((int16_t *)d->voxels)[i] = (int16_t)x; break;
    case R3D_U16: ((uint16_t *)d->voxels)[i] = (uint16_t)x; break;
    case R3D_I32: ((int32_t *)d->voxels)[i] = (int32_t)x; break;
    case R3D_U32: ((uint32_t *)d->voxels)[i] = (uint32_t)x; break;
    case R3D_F64: ((double *)d->voxels)[i] = x; break;
    default: ((float *)d->voxels)[i] = (float)x; break;
    }
}

/* ---- cubic B-spline ----------------------------------------------------- */

#define POLE (-0.267949192431122706) /* sqrt(3) - 2 */

/* In place: samples -> cubic B-spline coefficients, mirror boundary. */
static void spline_line(double *c, int64_t n)
{
    if (n < 2)
        return;
    const double z = POLE;
    /* causal initialisation: exact for the mirrored (period 2n-2) signal
     * on short lines; on long ones the terms beyond 30 are below 1e-17 */
    double zn = pow(z, (double)(n - 1)), zk = z, sum;
    if (n <= 30) {
        sum = c[0] + zn * c[n - 1];
        for (int64_t k = 1; k < n - 1; k++) {
            sum += (zk + zn * zn / zk) * c[k];
            zk *= z;
        }
        sum /= 1 - zn * zn;
    } else {
        sum = c[0];
        for (int64_t k = 1; k < 30; k++) {
            sum += zk * c[k];
            zk *= z;
        }
    }
    c[0] = sum;
    for (int64_t k = 1; k < n; k++)
        c[k] += z * c[k - 1];
    c[n - 1] = (z / (z * z - 1)) * (c[n - 1] + z * c[n - 2]);
    for (int64_t k = n - 2; k >= 0; k--)
        c[k] = z * (c[k + 1] - c[k]);
    for (int64_t k = 0; k < n; k++)
        c[k] *= 6; /* (1 - z)(1 - 1/z) */
}

typedef struct sp_ctx {
    float *c;
    int64_t dim[3];
    int axis;
    atomic_int failed;
} sp_ctx;

static void spline_lines(void *arg, int64_t b, int64_t e)
{
    sp_ctx *s = arg;
    int64_t nx = s->dim[0], ny = s->dim[1], n = s->dim[s->axis];
    int64_t stride = s->axis == 0 ? 1 : s->axis == 1 ? nx : nx * ny;
    int64_t lines_a = s->axis == 0 ? ny : nx;
    double *line = malloc((size_t)n * sizeof *line);
    if (!line) {
        atomic_store(&s->failed, 1);
        return;
    }
    for (int64_t l = b; l < e; l++) {
        int64_t a = l % lines_a, bb = l / lines_a;
        int64_t base = s->axis == 0 ? (bb * ny + a) * nx : s->axis == 1 ? bb * nx * ny + a : bb * nx + a;
        for (int64_t q = 0; q < n; q++)
            line[q] = s->c[base + q * stride];
        spline_line(line, n);
        for (int64_t q = 0; q < n; q++)
            s->c[base + q * stride] = (float)line[q];
    }
    free(line);
}

static int64_t mirror(int64_t i, int64_t n)
{
    if (n == 1)
        return 0;
    int64_t period = 2 * (n - 1);
    i %= period;
    if (i < 0)
        i += period;
    return i < n ? i : period - i;
}

static void bspline_weights(double t, double w[4])
{
    double t2 = t * t, t3 = t2 * t, u = 1 - t;
    w[0] = u * u * u / 6;
    w[1] = (3 * t3 - 6 * t2 + 4) / 6;
    w[2] = (-3 * t3 + 3 * t2 + 3 * t + 1) / 6;
    w[3] = t3 / 6;
}

static double bspline_at(const float *c, const int64_t *dim, const double p[3])
{
    double w[3][4];
    int64_t idx[3][4];
    for (int a = 0; a < 3; a++) {
        double f = floor(p[a]);
        bspline_weights(p[a] - f, w[a]);
        for (int k = 0; k < 4; k++)
            idx[a][k] = mirror((int64_t)f - 1 + k, dim[a]);
    }
    double acc = 0;
    for (int kz = 0; kz < 4; kz++)
        for (int ky = 0; ky < 4; ky++) {
            const float *row = c + (idx[2][kz] * dim[1] + idx[1][ky]) * dim[0];
            double wy = w[2][kz] * w[1][ky];
            for (int kx = 0; kx < 4; kx++)
                acc += wy * w[0][kx] * row[idx[0][kx]];
        }
    return acc;
}

/* Coefficients of v as a float volume with v's grid, or NULL. */
static r3d_volume *spline_coefficients(const r3d_volume *v, r3d_error *err)
{
    r3d_volume *c = r3d_volume_new_like(v, R3D_F32, err);
    if (!c)
        return NULL;
    float *f = c->voxels;
    int64_t n = r3d_volume_nvox(c);
    for (int64_t i = 0; i < n; i++)
        f[i] = (float)r3d_volume_get(v, i);
    for (int axis = 0; axis < 3; axis++) {
        sp_ctx s = {f, {v->dim[0], v->dim[1], v->dim[2]}, axis, 0};
        r3d_parallel_for(n / v->dim[axis], spline_lines, &s);
        if (atomic_load(&s.failed)) {
            r3d_volume_free(c);
            return r3d_fail(err, R3D_ENOMEM, "resample: out of memory"), NULL;
        }
    }
    return c;
}

static void rs_rows(void *arg, int64_t b, int64_t e)
{
    rs_ctx *c = arg;
    const r3d_volume *s = c->src;
    int64_t tx = c->dst->dim[0], ty = c->dst->dim[1];
    int64_t sx = s->dim[0], sy = s->dim[1], sz = s->dim[2];
    /* Nearest stores raw values (same dtype, same scl); linear real values. */
    double fill_raw = c->interp == R3D_INTERP_NEAREST ? (c->fill - s->scl_inter) / s->scl_slope
                                                      : c->fill;
    for (int64_t row = b; row < e; row++) {
        int64_t j = row % ty, k = row / ty;
        for (int64_t i = 0; i < tx; i++) {
            double p[3];
            for (int a = 0; a < 3; a++)
                p[a] = c->map[a][0] * i + c->map[a][1] * j + c->map[a][2] * k + c->map[a][3];
            int64_t out = (k * ty + j) * tx + i;
            const double eps = 1e-6;
            if (p[0] < -eps || p[1] < -eps || p[2] < -eps || p[0] > sx - 1 + eps ||
                p[1] > sy - 1 + eps || p[2] > sz - 1 + eps) {
                store(c->dst, out, fill_raw);
                continue;
            }
            if (c->interp == R3D_INTERP_NEAREST) {
                int64_t x = (int64_t)floor(p[0] + 0.5), y = (int64_t)floor(p[1] + 0.5),
                        z = (int64_t)floor(p[2] + 0.5);
                x = x > sx - 1 ? sx - 1 : x;
                y = y > sy - 1 ? sy - 1 : y;
                z = z > sz - 1 ? sz - 1 : z;
                double raw = (r3d_volume_get(s, (z * sy + y) * sx + x) - s->scl_inter) /
                             s->scl_slope;
                store(c->dst, out, raw);
                continue;
            }
            if (c->coef) {
                store(c->dst, out, bspline_at(c->coef, s->dim, p));
                continue;
            }
            int64_t x0 = (int64_t)floor(p[0]), y0 = (int64_t)floor(p[1]), z0 = (int64_t)floor(p[2]);
            x0 = x0 < 0 ? 0 : (x0 > sx - 2 ? (sx > 1 ? sx - 2 : 0) : x0);
            y0 = y0 < 0 ? 0 : (y0 > sy - 2 ? (sy > 1 ? sy - 2 : 0) : y0);
            z0 = z0 < 0 ? 0 : (z0 > sz - 2 ? (sz > 1 ? sz - 2 : 0) : z0);
            double fx = sx > 1 ? p[0] - x0 : 0, fy = sy > 1 ? p[1] - y0 : 0,
                   fz = sz > 1 ? p[2] - z0 : 0;
            int64_t x1 = sx > 1 ? x0 + 1 : x0, y1 = sy > 1 ? y0 + 1 : y0,
                    z1 = sz > 1 ? z0 + 1 : z0;
#define V(x, y, z) r3d_volume_get(s, ((z) * sy + (y)) * sx + (x))
            double c00 = V(x0, y0, z0) * (1 - fx) + V(x1, y0, z0) * fx;
            double c10 = V(x0, y1, z0) * (1 - fx) + V(x1, y1, z0) * fx;
            double c01 = V(x0, y0, z1) * (1 - fx) + V(x1, y0, z1) * fx;
            double c11 = V(x0, y1, z1) * (1 - fx) + V(x1, y1, z1) * fx;
#undef V
            double val = (c00 * (1 - fy) + c10 * fy) * (1 - fz) + (c01 * (1 - fy) + c11 * fy) * fz;
            store(c->dst, out, val);
        }
    }
}

r3d_volume *r3d_image_resample(const r3d_volume *v, const r3d_volume *target, r3d_interp interp,
                               double fill, r3d_error *err)
{
    if (r3d_image_check_3d(v, "resample", err) != R3D_OK)
        return NULL;
    double inv[4][4];
    if (!r3d__affine_invert(v->ijk_to_lps, inv))
        return r3d_fail(err, R3D_EARG, "resample: the source affine is singular"), NULL;
    r3d_volume *o = r3d_volume_new_like(target, interp == R3D_INTERP_NEAREST ? v->dtype : R3D_F32,
                                   err);
    if (!o)
        return NULL;
    if (interp == R3D_INTERP_NEAREST) {
        o->scl_slope = v->scl_slope;
        o->scl_inter = v->scl_inter;
    }
    r3d_volume *coef = NULL;
    if (interp == R3D_INTERP_BSPLINE && !(coef = spline_coefficients(v, err))) {
        r3d_volume_free(o);
        return NULL;
    }
    rs_ctx c = {v, coef ? coef->voxels : NULL, o, {{0}}, interp, fill};
    /* map = inv(source) * target */
    for (int r = 0; r < 4; r++)
        for (int col = 0; col < 4; col++) {
            double acc = 0;
            for (int k = 0; k < 4; k++)
                acc += inv[r][k] * target->ijk_to_lps[k][col];
            c.map[r][col] = acc;
        }
    r3d_parallel_for(o->dim[1] * o->dim[2], rs_rows, &c);
    r3d_volume_free(coef);
    return o;
}

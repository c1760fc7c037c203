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
 * o: index of sample 0 on the whole line, so that a piece of a line gives
 * bit for bit the values of the whole line (positions are (q + o) * s).
 * v (sites) and z (boundaries) are scratch of n+2 and n+3 entries. */
static void dt1d(const float *f, float *d, int64_t n, double s, int64_t o, int border_zero,
                 int64_t *v, double *z)
{
    int64_t k = -1;
    /* sites may include -1 and n (the borders), all with finite values */
#define F(q) ((q) < 0 || (q) >= n ? 0.0 : (double)f[q])
    for (int64_t q = border_zero ? -1 : 0; q <= (border_zero ? n : n - 1); q++) {
        if (q >= 0 && q < n && f[q] >= BIG)
            continue;
        double fq = F(q) + ((q + o) * s) * ((q + o) * s);
        while (k >= 0) {
            int64_t p = v[k];
            double x = (fq - (F(p) + ((p + o) * s) * ((p + o) * s))) / (2 * s * (double)(q - p));
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
        double x = (q + o) * s;
        while (z[j + 1] < x)
            j++;
        double dx = x - (v[j] + o) * s;
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
    int64_t o; /* the box's first index along axis */
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
        dt1d(line, out, n, c->s, c->o, c->border_zero, v, z);
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

/* Squared distances (mm^2) from every voxel of the box lo .. lo+bd-1 of m
 * to the nearest "site": the voxels whose on-state equals sites_are_on
 * (g = 0 there, BIG elsewhere), then three passes; g has the box's
 * dimensions. The caller chooses a box whose values equal those of the
 * whole grid (see morph). */
static float *edt_sq(const r3d_volume *m, const int64_t lo[3], const int64_t bd[3],
                     int sites_are_on, int border_zero, r3d_error *err)
{
    int64_t nx = m->dim[0], ny = m->dim[1], n = bd[0] * bd[1] * bd[2];
    float *g = malloc((size_t)n * sizeof *g);
    if (!g)
        return r3d_fail(err, R3D_ENOMEM, "distance transform: out of memory"), NULL;
    for (int64_t k = 0, q = 0; k < bd[2]; k++)
        for (int64_t j = 0; j < bd[1]; j++) {
            int64_t p = lo[0] + nx * (lo[1] + j + ny * (lo[2] + k));
            for (int64_t i = 0; i < bd[0]; i++, q++)
                g[q] = (r3d_image_on(m, p + i) == sites_are_on) ? 0.0f : BIG;
        }
    for (int axis = 0; axis < 3; axis++) {
        pass_ctx c = {g, {bd[0], bd[1], bd[2]}, axis, m->spacing_mm[axis], lo[axis],
                      border_zero, 0};
        int64_t lines = n / bd[axis];
        r3d_parallel_for(lines, pass_range, &c);
        if (atomic_load(&c.failed)) {
            free(g);
            return r3d_fail(err, R3D_ENOMEM, "distance transform: out of memory"), NULL;
        }
    }
    return g;
}

/* The box of the on voxels of mask, grown by pad[a] voxels along each axis
 * and clipped to the grid; 0 if the mask is empty. */
static int on_box(const r3d_volume *mask, const int64_t pad[3], int64_t lo[3], int64_t bd[3])
{
    int64_t nx = mask->dim[0], ny = mask->dim[1], nz = mask->dim[2];
    int64_t hi[3] = {-1, -1, -1};
    lo[0] = nx, lo[1] = ny, lo[2] = nz;
    for (int64_t k = 0, p = 0; k < nz; k++)
        for (int64_t j = 0; j < ny; j++)
            for (int64_t i = 0; i < nx; i++, p++) {
                if (!r3d_image_on(mask, p))
                    continue;
                int64_t ijk[3] = {i, j, k};
                for (int a = 0; a < 3; a++) {
                    if (ijk[a] < lo[a])
                        lo[a] = ijk[a];
                    if (ijk[a] > hi[a])
                        hi[a] = ijk[a];
                }
            }
    if (hi[0] < 0)
        return 0;
    for (int a = 0; a < 3; a++) {
        lo[a] = lo[a] - pad[a] < 0 ? 0 : lo[a] - pad[a];
        hi[a] = hi[a] + pad[a] >= mask->dim[a] ? mask->dim[a] - 1 : hi[a] + pad[a];
        bd[a] = hi[a] - lo[a] + 1;
    }
    return 1;
}

r3d_volume *r3d_image_distance(const r3d_volume *mask, r3d_error *err)
{
    if (r3d_image_check_3d(mask, "distance", err) != R3D_OK)
        return NULL;
    r3d_volume *o = r3d_volume_new_like(mask, R3D_F32, err);
    if (!o)
        return NULL;
    /* Background is 0: only the mask's box grown by a ring of background
     * is transformed, exactly as erode's in morph below. */
    static const int64_t ring[3] = {1, 1, 1};
    int64_t lo[3], bd[3];
    if (!on_box(mask, ring, lo, bd))
        return o;
    float *g = edt_sq(mask, lo, bd, 0, 0, err);
    if (!g) {
        r3d_volume_free(o);
        return NULL;
    }
    float *d = o->voxels;
    int64_t nx = mask->dim[0], ny = mask->dim[1];
    for (int64_t k = 0, q = 0; k < bd[2]; k++)
        for (int64_t j = 0; j < bd[1]; j++) {
            int64_t p = lo[0] + nx * (lo[1] + j + ny * (lo[2] + k));
            for (int64_t i = 0; i < bd[0]; i++, q++)
                d[p + i] = g[q] >= BIG ? INFINITY : sqrtf(g[q]);
        }
    free(g);
    return o;
}

/* dilate: distance to the mask <= r; erode: distance to background > r.
 * Only the mask's box is transformed (a lung is a quarter of a chest CT's
 * grid), and there the values are bit for bit those of the whole grid:
 * - dilate: the box is grown by floor(r / s) + 2 voxels, so every voxel
 *   outside is more than r + s from all sites (0 in the result); lines
 *   inside meet no site outside the box (after each pass, values outside
 *   are still BIG and skipped), and positions are whole-grid indices.
 * - erode: the box is grown by one voxel, a ring of background (sites, 0)
 *   wherever it is not the grid's edge; the sites beyond it are farther
 *   from every box voxel than the ring's and never enter the lower
 *   envelope past the ring (their parabolas meet the ring's at its
 *   midpoint, half a voxel or more outside the box), and where the box
 *   reaches the grid's edge the virtual zero border is the grid's. */
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
    int64_t pad[3], lo[3], bd[3];
    for (int a = 0; a < 3; a++)
        pad[a] = dilate ? (int64_t)floor(r / mask->spacing_mm[a]) + 2 : 1;
    if (!on_box(mask, pad, lo, bd))
        return o; /* no sites (dilate) or nothing to keep (erode) */
    float *g = edt_sq(mask, lo, bd, dilate, !dilate, err);
    if (!g) {
        r3d_volume_free(o);
        return NULL;
    }
    /* A relative tolerance keeps offsets exactly at r inside the ball. */
    double r2 = r * r * (1 + 1e-6) + 1e-9;
    uint8_t *out = o->voxels;
    int64_t nx = mask->dim[0], ny = mask->dim[1];
    for (int64_t k = 0, q = 0; k < bd[2]; k++)
        for (int64_t j = 0; j < bd[1]; j++) {
            int64_t p = lo[0] + nx * (lo[1] + j + ny * (lo[2] + k));
            for (int64_t i = 0; i < bd[0]; i++, q++)
                out[p + i] = dilate ? g[q] <= r2 : (r3d_image_on(mask, p + i) && g[q] > r2);
        }
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

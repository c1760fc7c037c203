/* hessian.c - multiscale Hessian vesselness (Frangi et al. 1998).
 *
 * At each scale sigma the image is smoothed with a Gaussian of sigma mm and
 * the Hessian is taken by central differences of central differences in mm
 * (one-sided at the border, as numpy.gradient), scaled by sigma^2 so scales
 * compare. With eigenvalues sorted by magnitude |l1| <= |l2| <= |l3|:
 *
 *   Ra = (l2 / l3)^2             plate vs line
 *   Rb = l1^2 / |l2 l3|          blob vs line
 *   S  = l1^2 + l2^2 + l3^2      structure vs noise
 *   V  = (1 - exp(-Ra / 2a^2)) exp(-Rb / 2b^2) (1 - exp(-S / 2c^2))
 *
 * with a = b = 0.5 and c = half the largest Hessian norm at that scale
 * (Frangi's choice; it makes the filter independent of the image's units),
 * and V = 0 where l2 or l3 has the wrong sign for a bright (or dark) tube.
 * The answer is the largest V over the scales. These are scikit-image's
 * frangi() formulas (0.19), tested against it with c passed explicitly.
 *
 * Memory: the smoothed image and the output; the Hessian is computed on
 * the fly per voxel, never stored (six float volumes would not fit a
 * whole-body CT in a workstation's memory comfortably). */
#include "image_internal.h"
#include "core/eig3.h"

#include <math.h>
#include <stdlib.h>

typedef struct hctx {
    const float *g;
    float *out;
    int64_t n[3], s[3];   /* sizes and strides per axis */
    double inv_sp[3];     /* 1 / spacing (mm) */
    double scale;         /* sigma_mm^2, times -1 for dark tubes */
    double two_c2;        /* 2 c^2, pass 2 only */
    double *slice_max;    /* pass 1: largest squared norm per z slice */
} hctx;

/* numpy.gradient along one axis at voxel p (coordinate c on that axis). */
static inline double grad1(const float *g, int64_t p, int64_t c, int64_t n, int64_t s)
{
    if (n < 2)
        return 0;
    if (c == 0)
        return (double)g[p + s] - g[p];
    if (c == n - 1)
        return (double)g[p] - g[p - s];
    return 0.5 * ((double)g[p + s] - g[p - s]);
}

/* d/da of (d/db g) at p, unit spacing. */
static inline double grad2(const hctx *h, int64_t p, const int64_t *ijk, int a, int b)
{
    int64_t n = h->n[a], s = h->s[a], c = ijk[a];
    if (n < 2)
        return 0;
    int64_t cb = ijk[b], nb = h->n[b], sb = h->s[b];
    /* the coordinate along b of p +/- s_a is cb unless a == b */
#define G1(q, cc) grad1(h->g, (q), (cc), nb, sb)
    if (c == 0)
        return G1(p + s, a == b ? cb + 1 : cb) - G1(p, cb);
    if (c == n - 1)
        return G1(p, cb) - G1(p - s, a == b ? cb - 1 : cb);
    return 0.5 * (G1(p + s, a == b ? cb + 1 : cb) - G1(p - s, a == b ? cb - 1 : cb));
#undef G1
}

/* The Hessian (xx, yy, zz, xy, xz, yz) in real units times the scale. */
static inline void hessian_at(const hctx *h, int64_t p, const int64_t *ijk, double H[6])
{
    if (ijk[0] >= 2 && ijk[1] >= 2 && ijk[2] >= 2 && ijk[0] < h->n[0] - 2 && ijk[1] < h->n[1] - 2 &&
        ijk[2] < h->n[2] - 2) {
        /* away from the border both differences are central: the same
         * numbers as the general path, without its branches */
        const float *g = h->g;
        int64_t sx = h->s[0], sy = h->s[1], sz = h->s[2];
        double c = g[p];
        double xx = ((double)g[p + 2 * sx] - 2 * c + g[p - 2 * sx]) * 0.25;
        double yy = ((double)g[p + 2 * sy] - 2 * c + g[p - 2 * sy]) * 0.25;
        double zz = ((double)g[p + 2 * sz] - 2 * c + g[p - 2 * sz]) * 0.25;
        double xy = ((double)g[p + sx + sy] - g[p + sx - sy] - g[p - sx + sy] + g[p - sx - sy]) * 0.25;
        double xz = ((double)g[p + sx + sz] - g[p + sx - sz] - g[p - sx + sz] + g[p - sx - sz]) * 0.25;
        double yz = ((double)g[p + sy + sz] - g[p + sy - sz] - g[p - sy + sz] + g[p - sy - sz]) * 0.25;
        H[0] = xx * h->inv_sp[0] * h->inv_sp[0] * h->scale;
        H[1] = yy * h->inv_sp[1] * h->inv_sp[1] * h->scale;
        H[2] = zz * h->inv_sp[2] * h->inv_sp[2] * h->scale;
        H[3] = xy * h->inv_sp[0] * h->inv_sp[1] * h->scale;
        H[4] = xz * h->inv_sp[0] * h->inv_sp[2] * h->scale;
        H[5] = yz * h->inv_sp[1] * h->inv_sp[2] * h->scale;
        return;
    }
    H[0] = grad2(h, p, ijk, 0, 0) * h->inv_sp[0] * h->inv_sp[0];
    H[1] = grad2(h, p, ijk, 1, 1) * h->inv_sp[1] * h->inv_sp[1];
    H[2] = grad2(h, p, ijk, 2, 2) * h->inv_sp[2] * h->inv_sp[2];
    H[3] = grad2(h, p, ijk, 1, 0) * h->inv_sp[0] * h->inv_sp[1];
    H[4] = grad2(h, p, ijk, 2, 0) * h->inv_sp[0] * h->inv_sp[2];
    H[5] = grad2(h, p, ijk, 2, 1) * h->inv_sp[1] * h->inv_sp[2];
    for (int i = 0; i < 6; i++)
        H[i] *= h->scale;
}

/* Eigenvalues of a symmetric 3x3 matrix (core/eig3.h), sorted by
 * magnitude, smallest first. */
static void eig_sym3_by_abs(const double H[6], double l[3])
{
    r3d__eig_sym3(H, l);
    for (int i = 1; i < 3; i++) /* insertion sort by |.| */
        for (int j = i; j > 0 && fabs(l[j]) < fabs(l[j - 1]); j--) {
            double t = l[j];
            l[j] = l[j - 1], l[j - 1] = t;
        }
}

static void norm_range(void *arg, int64_t z0, int64_t z1)
{
    hctx *h = arg;
    for (int64_t z = z0; z < z1; z++) {
        double m = 0;
        for (int64_t y = 0; y < h->n[1]; y++)
            for (int64_t x = 0; x < h->n[0]; x++) {
                int64_t ijk[3] = {x, y, z}, p = x + h->s[1] * y + h->s[2] * z;
                double H[6];
                hessian_at(h, p, ijk, H);
                double s2 = H[0] * H[0] + H[1] * H[1] + H[2] * H[2] +
                            2 * (H[3] * H[3] + H[4] * H[4] + H[5] * H[5]);
                if (s2 > m)
                    m = s2;
            }
        h->slice_max[z] = m;
    }
}

static double nonzero(double x) { return x == 0 ? 1e-10 : x; }

static void vessel_range(void *arg, int64_t z0, int64_t z1)
{
    hctx *h = arg;
    for (int64_t z = z0; z < z1; z++)
        for (int64_t y = 0; y < h->n[1]; y++)
            for (int64_t x = 0; x < h->n[0]; x++) {
                int64_t ijk[3] = {x, y, z}, p = x + h->s[1] * y + h->s[2] * z;
                double H[6], l[3];
                hessian_at(h, p, ijk, H);
                /* a tube needs l2, l3 <= 0, and then the trace is at most
                 * |l1| - |l2| - |l3| <= 0: a positive trace rules it out
                 * without the eigenvalues */
                if (H[0] + H[1] + H[2] > 0)
                    continue;
                eig_sym3_by_abs(H, l);
                if (l[1] > 0 || l[2] > 0)
                    continue; /* not a bright tube (dark ones were negated) */
                double ra = l[1] / nonzero(l[2]);
                double rb = l[0] / nonzero(sqrt(fabs(l[1] * l[2])));
                double s2 = l[0] * l[0] + l[1] * l[1] + l[2] * l[2];
                double v = (1 - exp(-ra * ra / 0.5)) * exp(-rb * rb / 0.5) * (1 - exp(-s2 / h->two_c2));
                if (v > h->out[p])
                    h->out[p] = (float)v;
            }
}

r3d_volume *r3d_image_frangi(const r3d_volume *v, const double *sigmas_mm, int n_sigmas,
                             int bright, r3d_error *err)
{
    return r3d_image_frangi_c(v, sigmas_mm, n_sigmas, bright, 0, err);
}

/* c <= 0: half the largest Hessian norm at each scale. */
r3d_volume *r3d_image_frangi_c(const r3d_volume *v, const double *sigmas_mm, int n_sigmas,
                               int bright, double c, r3d_error *err)
{
    if (r3d_image_check_3d(v, "frangi", err) != R3D_OK)
        return NULL;
    if (n_sigmas < 1)
        return r3d_fail(err, R3D_EARG, "frangi: no scale given"), NULL;
    for (int i = 0; i < n_sigmas; i++)
        if (!(sigmas_mm[i] > 0))
            return r3d_fail(err, R3D_EARG, "frangi: scale %g mm is not positive", sigmas_mm[i]), NULL;
    r3d_volume *out = r3d_volume_new_like(v, R3D_F32, err);
    double *slice_max = out ? calloc((size_t)v->dim[2], sizeof *slice_max) : NULL;
    if (!slice_max) {
        r3d_volume_free(out);
        return r3d_fail(err, R3D_ENOMEM, "frangi: out of memory"), NULL;
    }
    for (int si = 0; si < n_sigmas; si++) {
        r3d_volume *g = r3d_image_gaussian(v, sigmas_mm[si], err);
        if (!g) {
            free(slice_max);
            r3d_volume_free(out);
            return NULL;
        }
        hctx h = {g->voxels, out->voxels, {v->dim[0], v->dim[1], v->dim[2]},
                  {1, v->dim[0], v->dim[0] * v->dim[1]},
                  {1 / v->spacing_mm[0], 1 / v->spacing_mm[1], 1 / v->spacing_mm[2]},
                  sigmas_mm[si] * sigmas_mm[si] * (bright ? 1 : -1), 0, slice_max};
        double cc = c;
        if (!(cc > 0)) {
            r3d_parallel_for(v->dim[2], norm_range, &h);
            double m = 0;
            for (int64_t z = 0; z < v->dim[2]; z++)
                m = slice_max[z] > m ? slice_max[z] : m;
            cc = m > 0 ? sqrt(m) / 2 : 1;
        }
        h.two_c2 = 2 * cc * cc;
        r3d_parallel_for(v->dim[2], vessel_range, &h);
        r3d_volume_free(g);
    }
    free(slice_max);
    return out;
}

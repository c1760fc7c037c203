/* rank.c - rank filters: the median over a box, and grey-level dilation
 * and erosion (max / min) over a ball of a radius in mm.
 *
 * Edges are replicated (scipy.ndimage's mode "nearest"). The median works
 * on the stored values (the median of an odd count commutes with the
 * slope/intercept), so the result keeps the input's type and scaling.
 *
 * Grey morphology splits the ball into x-runs: for every (dy, dz) offset
 * inside it the ball holds x-offsets -w..w, so the max over the ball is the
 * max over those (dy, dz) of a 1-D running max of half-width w along the
 * row (y+dy, z+dz). Running maxima cost O(1) per voxel (van Herk / Gil-
 * Werman), so a voxel costs one step per (dy, dz) pair: the area of the
 * ball's cross-section, not its volume. */
#include "image_internal.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ---- median ----------------------------------------------------------------- */

static double raw_get(const r3d_volume *v, int64_t n)
{
    const void *p = v->voxels;
    switch (v->dtype) {
    case R3D_U8: return ((const uint8_t *)p)[n];
    case R3D_I8: return ((const int8_t *)p)[n];
    case R3D_I16: return ((const int16_t *)p)[n];
    case R3D_U16: return ((const uint16_t *)p)[n];
    case R3D_I32: return ((const int32_t *)p)[n];
    case R3D_U32: return ((const uint32_t *)p)[n];
    case R3D_F32: return ((const float *)p)[n];
    case R3D_F64: return ((const double *)p)[n];
    default: return 0;
    }
}

static void raw_set(r3d_volume *v, int64_t n, double x)
{
    void *p = v->voxels;
    switch (v->dtype) {
    case R3D_U8: ((uint8_t *)p)[n] = (uint8_t)x; break;
    case R3D_I8: ((int8_t *)p)[n] = (int8_t)x; break;
    case R3D_I16: ((int16_t *)p)[n] = (int16_t)x; break;
    case R3D_U16: ((uint16_t *)p)[n] = (uint16_t)x; break;
    case R3D_I32: ((int32_t *)p)[n] = (int32_t)x; break;
    case R3D_U32: ((uint32_t *)p)[n] = (uint32_t)x; break;
    case R3D_F32: ((float *)p)[n] = (float)x; break;
    case R3D_F64: ((double *)p)[n] = x; break;
    default: break;
    }
}


typedef struct med_ctx {
    const float *src; /* stored values as float (exact for 8/16-bit data) */
    const r3d_volume *v;
    r3d_volume *o;
    int r[3];
    atomic_int failed;
} med_ctx;

static int64_t clampi(int64_t x, int64_t n) { return x < 0 ? 0 : x >= n ? n - 1 : x; }

/* k-th smallest of a[0..n), floats (Hoare's selection; a is reordered). */
static float select_kth_f(float *a, int n, int k)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = a[(lo + hi) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot)
                i++;
            while (a[j] > pivot)
                j--;
            if (i <= j) {
                float t = a[i];
                a[i++] = a[j], a[j--] = t;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            break;
    }
    return a[k];
}

static void median_range(void *arg, int64_t z0, int64_t z1)
{
    med_ctx *c = arg;
    int64_t nx = c->v->dim[0], ny = c->v->dim[1], nz = c->v->dim[2];
    int rx = c->r[0], wx = 2 * rx + 1;
    int w = wx * (2 * c->r[1] + 1) * (2 * c->r[2] + 1);
    /* each source row the window touches, padded by rx replicated values
     * at both ends so the inner gather has no bounds checks */
    int nrows = (2 * c->r[1] + 1) * (2 * c->r[2] + 1);
    float *buf = malloc((size_t)w * sizeof *buf);
    float *rows = malloc((size_t)nrows * (size_t)(nx + 2 * rx) * sizeof *rows);
    if (!buf || !rows) {
        atomic_store(&c->failed, 1);
        free(buf);
        free(rows);
        return;
    }
    for (int64_t z = z0; z < z1; z++)
        for (int64_t y = 0; y < ny; y++) {
            int m = 0;
            for (int dz = -c->r[2]; dz <= c->r[2]; dz++)
                for (int dy = -c->r[1]; dy <= c->r[1]; dy++, m++) {
                    const float *src = c->src + (clampi(z + dz, nz) * ny + clampi(y + dy, ny)) * nx;
                    float *row = rows + (size_t)m * (nx + 2 * rx);
                    for (int64_t x = -rx; x < nx + rx; x++)
                        row[x + rx] = src[clampi(x, nx)];
                }
            for (int64_t x = 0; x < nx; x++) {
                int k = 0;
                for (int q = 0; q < nrows; q++) {
                    const float *row = rows + (size_t)q * (nx + 2 * rx) + x;
                    for (int dx = 0; dx < wx; dx++)
                        buf[k++] = row[dx];
                }
                raw_set(c->o, (z * ny + y) * nx + x, select_kth_f(buf, k, k / 2));
            }
        }
    free(buf);
    free(rows);
}

r3d_volume *r3d_image_median(const r3d_volume *v, const int radius_vox[3], r3d_error *err)
{
    if (r3d_image_check_3d(v, "median", err) != R3D_OK)
        return NULL;
    for (int i = 0; i < 3; i++)
        if (radius_vox[i] < 0 || radius_vox[i] > 10)
            return r3d_fail(err, R3D_EARG, "median: radius %d on axis %d is outside 0..10",
                            radius_vox[i], i), NULL;
    r3d_volume *o = r3d_volume_new_like(v, v->dtype, err);
    if (!o)
        return NULL;
    o->scl_slope = v->scl_slope;
    o->scl_inter = v->scl_inter;
    /* float holds every 8- and 16-bit value exactly; wider types are rare
     * in images and would lose only their lowest bits' order */
    int64_t n = r3d_volume_nvox(v);
    float *src = malloc((size_t)n * sizeof *src);
    if (!src) {
        r3d_volume_free(o);
        return r3d_fail(err, R3D_ENOMEM, "median: out of memory"), NULL;
    }
    for (int64_t i = 0; i < n; i++)
        src[i] = (float)raw_get(v, i);
    med_ctx c = {src, v, o, {radius_vox[0], radius_vox[1], radius_vox[2]}, 0};
    r3d_parallel_for(v->dim[2], median_range, &c);
    free(src);
    if (atomic_load(&c.failed)) {
        r3d_volume_free(o);
        return r3d_fail(err, R3D_ENOMEM, "median: out of memory"), NULL;
    }
    return o;
}

/* ---- grey dilation / erosion ------------------------------------------------ */

typedef struct run {
    int dy, dz, w; /* the ball holds x-offsets -w..w at (dy, dz) */
} run;

typedef struct grey_ctx {
    const float *src; /* sign-adjusted input: erosion is dilation of -v */
    float *dst;
    int64_t nx, ny, nz;
    const run *runs;
    int n_runs;
    atomic_int failed;
} grey_ctx;

/* out[x] = max(row[x-w .. x+w]) clamped to the row (van Herk / Gil-Werman:
 * prefix maxima g and suffix maxima h over blocks of 2w+1). */
static void running_max(const float *row, int64_t n, int w, float *out, float *g, float *h)
{
    if (w == 0) {
        memcpy(out, row, (size_t)n * sizeof *out);
        return;
    }
    int64_t k = 2 * (int64_t)w + 1;
    for (int64_t b = 0; b < n; b += k) {
        int64_t e = b + k < n ? b + k : n;
        g[b] = row[b];
        for (int64_t i = b + 1; i < e; i++)
            g[i] = row[i] > g[i - 1] ? row[i] : g[i - 1];
        h[e - 1] = row[e - 1];
        for (int64_t i = e - 2; i >= b; i--)
            h[i] = row[i] > h[i + 1] ? row[i] : h[i + 1];
    }
    for (int64_t x = 0; x < n; x++) {
        int64_t lo = x - w < 0 ? 0 : x - w, hi = x + w >= n ? n - 1 : x + w;
        /* [lo, hi] spans at most two blocks: h at lo covers to its block's
         * end, g at hi covers from its block's start */
        float a = h[lo], b = g[hi];
        if (lo / k == hi / k) { /* one block, clipped by the row's ends */
            a = row[lo];
            for (int64_t i = lo + 1; i <= hi; i++)
                a = row[i] > a ? row[i] : a;
            b = a;
        }
        out[x] = a > b ? a : b;
    }
}

static void grey_range(void *arg, int64_t z0, int64_t z1)
{
    grey_ctx *c = arg;
    int64_t nx = c->nx;
    float *tmp = malloc((size_t)nx * 3 * sizeof *tmp);
    if (!tmp) {
        atomic_store(&c->failed, 1);
        return;
    }
    float *g = tmp + nx, *h = tmp + 2 * nx;
    for (int64_t z = z0; z < z1; z++)
        for (int64_t y = 0; y < c->ny; y++) {
            float *out = c->dst + (z * c->ny + y) * nx;
            for (int64_t x = 0; x < nx; x++)
                out[x] = -INFINITY;
            for (int r = 0; r < c->n_runs; r++) {
                const float *row = c->src + (clampi(z + c->runs[r].dz, c->nz) * c->ny +
                                             clampi(y + c->runs[r].dy, c->ny)) * nx;
                running_max(row, nx, c->runs[r].w, tmp, g, h);
                for (int64_t x = 0; x < nx; x++)
                    out[x] = tmp[x] > out[x] ? tmp[x] : out[x];
            }
        }
    free(tmp);
}

static r3d_volume *grey_morph(const r3d_volume *v, double radius_mm, int erode, r3d_error *err)
{
    const char *op = erode ? "grey erosion" : "grey dilation";
    if (r3d_image_check_3d(v, op, err) != R3D_OK)
        return NULL;
    if (!(radius_mm >= 0) || radius_mm > 1000)
        return r3d_fail(err, R3D_EARG, "%s: radius %g mm is not valid", op, radius_mm), NULL;
    const double *sp = v->spacing_mm;
    int ry = (int)floor(radius_mm / sp[1] + 1e-9), rz = (int)floor(radius_mm / sp[2] + 1e-9);
    run *runs = malloc((size_t)(2 * ry + 1) * (2 * rz + 1) * sizeof *runs);
    r3d_volume *src = r3d_volume_new_like(v, R3D_F32, err), *o = r3d_volume_new_like(v, R3D_F32, err);
    if (!runs || !src || !o) {
        free(runs);
        r3d_volume_free(src);
        r3d_volume_free(o);
        return r3d_fail(err, R3D_ENOMEM, "%s: out of memory", op), NULL;
    }
    int n_runs = 0;
    for (int dz = -rz; dz <= rz; dz++)
        for (int dy = -ry; dy <= ry; dy++) {
            double rest = radius_mm * radius_mm - (dy * sp[1]) * (dy * sp[1]) - (dz * sp[2]) * (dz * sp[2]);
            if (rest < -1e-9)
                continue;
            int w = (int)floor(sqrt(rest > 0 ? rest : 0) / sp[0] + 1e-9);
            runs[n_runs++] = (run){dy, dz, w};
        }
    float *s = src->voxels;
    int64_t n = r3d_volume_nvox(src);
    for (int64_t i = 0; i < n; i++)
        s[i] = (float)(erode ? -r3d_volume_get(v, i) : r3d_volume_get(v, i));
    grey_ctx c = {s, o->voxels, v->dim[0], v->dim[1], v->dim[2], runs, n_runs, 0};
    r3d_parallel_for(v->dim[2], grey_range, &c);
    free(runs);
    r3d_volume_free(src);
    if (atomic_load(&c.failed)) {
        r3d_volume_free(o);
        return r3d_fail(err, R3D_ENOMEM, "%s: out of memory", op), NULL;
    }
    if (erode) {
        float *d = o->voxels;
        for (int64_t i = 0; i < n; i++)
            d[i] = -d[i];
    }
    return o;
}

r3d_volume *r3d_image_grey_dilate(const r3d_volume *v, double radius_mm, r3d_error *err)
{
    return grey_morph(v, radius_mm, 0, err);
}

r3d_volume *r3d_image_grey_erode(const r3d_volume *v, double radius_mm, r3d_error *err)
{
    return grey_morph(v, radius_mm, 1, err);
}

/* seg_util.c - small volume helpers the anatomy pipelines share: grids,
 * block averaging, slice-wise hole filling, geodesic label propagation. */
#include "seg_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct ds_ctx {
    const r3d_volume *v;
    r3d_volume *o;
    const int *f;
} ds_ctx;

static void ds_range(void *arg, int64_t b, int64_t e)
{
    ds_ctx *c = arg;
    const r3d_volume *v = c->v;
    int64_t nx = v->dim[0], ny = v->dim[1], nz = v->dim[2];
    int64_t ox = c->o->dim[0], oy = c->o->dim[1];
    const float *in = v->voxels;
    float *out = c->o->voxels;
    for (int64_t K = b; K < e; K++)
        for (int64_t J = 0; J < oy; J++)
            for (int64_t I = 0; I < ox; I++) {
                double s = 0;
                int n = 0;
                for (int64_t k = K * c->f[2]; k < (K + 1) * c->f[2] && k < nz; k++)
                    for (int64_t j = J * c->f[1]; j < (J + 1) * c->f[1] && j < ny; j++)
                        for (int64_t i = I * c->f[0]; i < (I + 1) * c->f[0] && i < nx; i++)
                            s += in[i + nx * (j + ny * k)], n++;
                out[I + ox * (J + oy * K)] = (float)(s / n);
            }
}

r3d_volume *seg_downsample(const r3d_volume *v, const int f[3], r3d_error *err)
{
    if (v->dtype != R3D_F32)
        return r3d_fail(err, R3D_EARG, "downsample: float32 input expected"), NULL;
    int64_t dim[4] = {(v->dim[0] + f[0] - 1) / f[0], (v->dim[1] + f[1] - 1) / f[1],
                      (v->dim[2] + f[2] - 1) / f[2], 1};
    r3d_volume *o = r3d_volume_new(dim, R3D_F32, err);
    if (!o)
        return NULL;
    /* Coarse voxel centre = mean of its full voxels' centres. */
    memcpy(o->ijk_to_lps, v->ijk_to_lps, sizeof o->ijk_to_lps);
    for (int r = 0; r < 3; r++) {
        double t = o->ijk_to_lps[r][3];
        for (int a = 0; a < 3; a++) {
            o->ijk_to_lps[r][a] = v->ijk_to_lps[r][a] * f[a];
            t += v->ijk_to_lps[r][a] * (f[a] - 1) / 2.0;
        }
        o->ijk_to_lps[r][3] = t;
    }
    r3d_volume_update_spacing(o);
    ds_ctx c = {v, o, f};
    r3d_parallel_for(dim[2], ds_range, &c);
    return o;
}

void seg_upsample_into(const r3d_volume *lo, const int f[3], r3d_volume *full)
{
    int64_t nx = full->dim[0], ny = full->dim[1], nz = full->dim[2];
    int64_t ox = lo->dim[0], oy = lo->dim[1];
    const uint8_t *in = lo->voxels;
    uint8_t *out = full->voxels;
    for (int64_t k = 0; k < nz; k++)
        for (int64_t j = 0; j < ny; j++) {
            const uint8_t *row = in + ox * (j / f[1] + oy * (k / f[2]));
            uint8_t *o = out + nx * (j + ny * k);
            for (int64_t i = 0; i < nx; i++)
                o[i] = row[i / f[0]];
        }
}

typedef struct fill_ctx {
    r3d_volume *m;
} fill_ctx;

static void fill_range(void *arg, int64_t b, int64_t e)
{
    r3d_volume *m = ((fill_ctx *)arg)->m;
    int64_t nx = m->dim[0], ny = m->dim[1], ns = nx * ny;
    uint8_t *out = m->voxels;
    uint8_t *seen = malloc((size_t)ns);
    int64_t *q = malloc((size_t)ns * sizeof *q);
    if (!seen || !q) {
        free(seen), free(q);
        return; /* leaves these slices unfilled; cannot report from a worker */
    }
    for (int64_t k = b; k < e; k++) {
        uint8_t *s = out + ns * k;
        memset(seen, 0, (size_t)ns);
        int64_t h = 0, t = 0;
        for (int64_t j = 0; j < ny; j++)
            for (int64_t i = 0; i < nx; i++)
                if ((i == 0 || j == 0 || i == nx - 1 || j == ny - 1) && !s[i + nx * j]) {
                    seen[i + nx * j] = 1;
                    q[t++] = i + nx * j;
                }
        while (h < t) {
            int64_t p = q[h++], i = p % nx, j = p / nx;
            int64_t nb[4] = {i > 0 ? p - 1 : -1, i < nx - 1 ? p + 1 : -1, j > 0 ? p - nx : -1,
                             j < ny - 1 ? p + nx : -1};
            for (int d = 0; d < 4; d++)
                if (nb[d] >= 0 && !seen[nb[d]] && !s[nb[d]]) {
                    seen[nb[d]] = 1;
                    q[t++] = nb[d];
                }
        }
        for (int64_t p = 0; p < ns; p++)
            if (!s[p] && !seen[p])
                s[p] = 1;
    }
    free(seen);
    free(q);
}

void seg_fill_holes_2d(r3d_volume *m)
{
    fill_ctx c = {m};
    r3d_parallel_for(m->dim[2], fill_range, &c);
}

r3d_status seg_drop_small(r3d_volume *m, int conn, int64_t min_vox, r3d_error *err)
{
    int64_t n = 0, *sizes = NULL;
    r3d_volume *cc = r3d_image_components(m, conn, &n, &sizes, err);
    if (!cc)
        return err ? err->code : R3D_ENOMEM;
    const uint32_t *l = cc->voxels;
    uint8_t *o = m->voxels;
    int64_t nv = r3d_volume_nvox(m);
    for (int64_t i = 0; i < nv; i++)
        if (l[i] && sizes[l[i]] < min_vox)
            o[i] = 0;
    free(sizes);
    r3d_volume_free(cc);
    return R3D_OK;
}

double seg_voxel_ml(const r3d_volume *v)
{
    return v->spacing_mm[0] * v->spacing_mm[1] * v->spacing_mm[2] / 1000.0;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

float seg_median(float *v, int64_t n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_float);
    return v[n / 2];
}

int64_t seg_count(const r3d_volume *m, uint8_t value)
{
    const uint8_t *p = m->voxels;
    int64_t n = r3d_volume_nvox(m), c = 0;
    for (int64_t i = 0; i < n; i++)
        c += value ? p[i] == value : p[i] != 0;
    return c;
}

void seg_propagate(r3d_volume *lab, const r3d_volume *within)
{
    int64_t nx = lab->dim[0], ny = lab->dim[1], nz = lab->dim[2], n = nx * ny * nz;
    uint8_t *l = lab->voxels;
    const uint8_t *w = within->voxels;
    int64_t *q = malloc((size_t)n * sizeof *q);
    if (!q)
        return;
    int64_t h = 0, t = 0;
    for (int64_t p = 0; p < n; p++)
        if (l[p] && w[p])
            q[t++] = p;
    while (h < t) {
        int64_t p = q[h++];
        int64_t i = p % nx, j = (p / nx) % ny, k = p / (nx * ny);
        for (int dk = -1; dk <= 1; dk++) {
            if (k + dk < 0 || k + dk >= nz)
                continue;
            for (int dj = -1; dj <= 1; dj++) {
                if (j + dj < 0 || j + dj >= ny)
                    continue;
                for (int di = -1; di <= 1; di++) {
                    if (i + di < 0 || i + di >= nx)
                        continue;
                    int64_t r = p + di + nx * (dj + ny * dk);
                    if (w[r] && !l[r]) {
                        l[r] = l[p];
                        q[t++] = r;
                    }
                }
            }
        }
    }
    free(q);
}

void seg_progress(seg_ctx *c, const char *stage, int64_t done, int64_t total)
{
    if (c->progress)
        c->progress(c->progress_ctx, stage, done, total);
}

int seg_box(const r3d_volume *m, int pad, int64_t lo[3], int64_t hi[3])
{
    int64_t nx = m->dim[0], ny = m->dim[1], nz = m->dim[2];
    const uint8_t *v = m->voxels;
    for (int a = 0; a < 3; a++)
        lo[a] = m->dim[a], hi[a] = -1;
    for (int64_t k = 0; k < nz; k++)
        for (int64_t j = 0; j < ny; j++) {
            const uint8_t *row = v + nx * (j + ny * k);
            for (int64_t i = 0; i < nx; i++)
                if (row[i]) {
                    if (i < lo[0]) lo[0] = i;
                    if (i > hi[0]) hi[0] = i;
                    if (j < lo[1]) lo[1] = j;
                    if (j > hi[1]) hi[1] = j;
                    if (k < lo[2]) lo[2] = k;
                    if (k > hi[2]) hi[2] = k;
                }
        }
    if (hi[0] < 0)
        return 0;
    for (int a = 0; a < 3; a++) {
        lo[a] = lo[a] - pad < 0 ? 0 : lo[a] - pad;
        hi[a] = hi[a] + pad >= m->dim[a] ? m->dim[a] - 1 : hi[a] + pad;
    }
    return 1;
}

r3d_volume *seg_crop(const r3d_volume *v, const int64_t lo[3], const int64_t hi[3], r3d_error *err)
{
    int64_t dim[4] = {hi[0] - lo[0] + 1, hi[1] - lo[1] + 1, hi[2] - lo[2] + 1, 1};
    r3d_volume *o = r3d_volume_new(dim, v->dtype, err);
    if (!o)
        return NULL;
    memcpy(o->ijk_to_lps, v->ijk_to_lps, sizeof o->ijk_to_lps);
    memcpy(o->spacing_mm, v->spacing_mm, sizeof o->spacing_mm);
    for (int r = 0; r < 3; r++)
        for (int a = 0; a < 3; a++)
            o->ijk_to_lps[r][3] += v->ijk_to_lps[r][a] * lo[a];
    size_t es = r3d_dtype_size(v->dtype);
    int64_t nx = v->dim[0], ny = v->dim[1];
    for (int64_t k = 0; k < dim[2]; k++)
        for (int64_t j = 0; j < dim[1]; j++)
            memcpy((uint8_t *)o->voxels + es * (size_t)(dim[0] * (j + dim[1] * k)),
                   (const uint8_t *)v->voxels +
                       es * (size_t)(lo[0] + nx * (lo[1] + j + ny * (lo[2] + k))),
                   es * (size_t)dim[0]);
    return o;
}

void seg_paste(const r3d_volume *box, r3d_volume *v, const int64_t lo[3])
{
    size_t es = r3d_dtype_size(v->dtype);
    int64_t nx = v->dim[0], ny = v->dim[1];
    for (int64_t k = 0; k < box->dim[2]; k++)
        for (int64_t j = 0; j < box->dim[1]; j++)
            memcpy((uint8_t *)v->voxels + es * (size_t)(lo[0] + nx * (lo[1] + j + ny * (lo[2] + k))),
                   (const uint8_t *)box->voxels + es * (size_t)(box->dim[0] * (j + box->dim[1] * k)),
                   es * (size_t)box->dim[0]);
}

r3d_volume *seg_in_box(const r3d_volume *m, int pad, int op, double mm, r3d_error *err)
{
    int64_t lo[3], hi[3];
    r3d_volume *out = r3d_volume_new_like(m, op == SEG_DISTANCE ? R3D_F32 : R3D_U8, err);
    if (!out || !seg_box(m, pad, lo, hi))
        return out;
    r3d_volume *c = seg_crop(m, lo, hi, err);
    r3d_volume *r = !c ? NULL
                    : op == SEG_DISTANCE ? r3d_image_distance(c, err)
                                         : r3d_image_dilate(c, mm, err);
    r3d_volume_free(c);
    if (!r) {
        r3d_volume_free(out);
        return NULL;
    }
    seg_paste(r, out, lo);
    r3d_volume_free(r);
    return out;
}

double seg_side_max(const double *s, int64_t nz, int64_t k, int64_t reach, int dir)
{
    double m = -INFINITY;
    for (int64_t d = 1; d <= reach; d++) {
        int64_t q = k + dir * d;
        if (q >= 0 && q < nz && !isnan(s[q]) && s[q] > m)
            m = s[q];
    }
    return m;
}

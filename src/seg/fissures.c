/* fissures.c - the lung fissures as bright thin sheets, and a lung split
 * along them by competing fronts.
 *
 * A fissure is two visceral pleurae back to back: a sheet under a
 * millimetre thick, brighter than the parenchyma on both sides, that no
 * vessel crosses. At the scale of the coarse grid (2-3 mm) it survives as
 * a faint plate in the Hessian of the Gaussian-smoothed CT: one large
 * negative eigenvalue across the sheet, two small ones along it. The
 * sheet measure is the plate filter of Frangi et al. (MICCAI 1998, its
 * "plate-like" case: lambda3 << 0, lambda1, lambda2 ~ 0) as used for
 * fissures by Lassen et al. (IEEE TMI 32:210, 2013, Hessian fissure
 * enhancement + watershed between lobe markers) and van Rikxoort et al.
 * (Med Phys 36:2934, 2009): S = -l3 s^2 exp(-(l1^2 + l2^2) / (2 (a l3)^2))
 * with |l1| <= |l2| <= |l3|, l3 < 0, a = 0.5, s the scale. Vessel walls and
 * the pleura give plates as well, so S is kept only in a vessel-free band
 * (3.5 mm, at least a voxel, from every voxel denser than -600 HU) and away from the
 * lung's surface, and only in 26-connected pieces of 1.5 mL or more
 * (noise and streaks between slices give short plates; a fissure is one
 * wide sheet). The eigenvector of l3, the sheet's normal, lets a split
 * look for a sheet of the expected orientation only.
 *
 * The split (seg_fissure_compete) is Lassen's marker-based separation done
 * as geodesic competition: every region voxel takes the label of the seed
 * reached at the least cost, a step costing its length times 1 + K min(S /
 * T, 1), S the strongest sheet of the split's orientation in the voxel's
 * 26-neighbourhood (so that a sheet found in dashes still closes). A front stops at a sheet and the other front fills up to it from
 * its own side, so the boundary settles on the fissure where the fissure
 * shows and runs the shortest way between its detected pieces where it
 * does not. Voxels by the pleura, where the filter does not look, cost as
 * much as a sheet for every front alike, so that no front slips round a
 * fissure along the lung's surface. The front meets somewhere even in a lung with no fissure at
 * all; seg_fissure_support measures whether the boundary found lies on
 * sheet evidence, and the caller keeps the split only if it does. */
#include "seg_internal.h"
#include "core/eig3.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SHEET_ALPHA 0.5
#define COST_K 20.0
#define SHEET_MIN_MM3 1500.0 /* smallest piece of a fissure kept */
#define BAND_MM 3.5 /* vessels (> -600 HU) kept this far from a sheet */

/* Eigenvalues of the symmetric matrix H = (xx, yy, zz, xy, xz, yz)
 * (core/eig3.h), ascending. */
static void eig3(const double H[6], double w[3])
{
    r3d__eig_sym3(H, w);
    for (int i = 0; i < 2; i++)
        for (int j = i + 1; j < 3; j++)
            if (w[j] < w[i]) {
                double t = w[i];
                w[i] = w[j], w[j] = t;
            }
}

/* Unit eigenvector of H for eigenvalue l: the longest cross product of
 * two rows of H - l I. */
static void eigvec3(const double H[6], double l, double v[3])
{
    double r[3][3] = {{H[0] - l, H[3], H[4]}, {H[3], H[1] - l, H[5]}, {H[4], H[5], H[2] - l}};
    double best = -1;
    for (int a = 0; a < 3; a++) {
        const double *x = r[a], *y = r[(a + 1) % 3];
        double c[3] = {x[1] * y[2] - x[2] * y[1], x[2] * y[0] - x[0] * y[2], x[0] * y[1] - x[1] * y[0]};
        double n = c[0] * c[0] + c[1] * c[1] + c[2] * c[2];
        if (n > best) {
            best = n;
            v[0] = c[0], v[1] = c[1], v[2] = c[2];
        }
    }
    double n = sqrt(best);
    if (n > 0)
        v[0] /= n, v[1] /= n, v[2] /= n;
    else
        v[0] = 0, v[1] = 0, v[2] = 1;
}

/* A fissure is one wide sheet; noise (streaks between slices, the
 * texture of the parenchyma) gives short plates. Sheet voxels (S >= T)
 * are kept in 26-connected pieces of SHEET_MIN_MM3 or more only. */
static r3d_status keep_large_sheets(seg_fissure *fs, r3d_error *err)
{
    r3d_volume *sv = fs->sheet;
    int64_t n = r3d_volume_nvox(sv);
    double T = seg_fissure_threshold();
    r3d_volume *m = r3d_volume_new_like(sv, R3D_U8, err);
    if (!m)
        return err->code;
    float *s = sv->voxels;
    uint8_t *mv = m->voxels;
    for (int64_t p = 0; p < n; p++)
        mv[p] = s[p] >= T;
    double vox = sv->spacing_mm[0] * sv->spacing_mm[1] * sv->spacing_mm[2];
    r3d_status st = seg_drop_small(m, 26, (int64_t)ceil(SHEET_MIN_MM3 / vox), err);
    if (st == R3D_OK)
        for (int64_t p = 0; p < n; p++)
            if (!mv[p])
                s[p] = 0;
    r3d_volume_free(m);
    return st;
}

void seg_fissure_free(seg_fissure *fs)
{
    if (!fs)
        return;
    r3d_volume_free(fs->sheet);
    free(fs->normal), free(fs->rim);
    memset(fs, 0, sizeof *fs);
}

/* The plate measure over slices [k0, k1) (r3d_parallel_for). */
typedef struct sheet_job {
    const float *g;
    const uint8_t *in, *band;
    float *s;
    int8_t *normal;
    int64_t nx, ny, nz;
    double sx, sy, sz, sigma;
} sheet_job;

static void sheet_range(void *arg, int64_t k0, int64_t k1)
{
    const sheet_job *jb = arg;
    const float *gv = jb->g;
    const uint8_t *in = jb->in, *band = jb->band;
    float *s = jb->s;
    int64_t nx = jb->nx, ny = jb->ny, nz = jb->nz, sj = nx, sk = nx * ny;
    double sx = jb->sx, sy = jb->sy, sz = jb->sz, sigma = jb->sigma;
    for (int64_t k = k0 < 1 ? 1 : k0; k < k1 && k + 1 < nz; k++)
        for (int64_t j = 1; j + 1 < ny; j++)
            for (int64_t i = 1; i + 1 < nx; i++) {
                int64_t p = i + sj * j + sk * k;
                if (!in[p] || band[p])
                    continue;
                double c = gv[p], H[6];
                H[0] = (gv[p + 1] - 2 * c + gv[p - 1]) / (sx * sx);
                H[1] = (gv[p + sj] - 2 * c + gv[p - sj]) / (sy * sy);
                H[2] = (gv[p + sk] - 2 * c + gv[p - sk]) / (sz * sz);
                H[3] = (gv[p + 1 + sj] - gv[p + 1 - sj] - gv[p - 1 + sj] + gv[p - 1 - sj]) / (4 * sx * sy);
                H[4] = (gv[p + 1 + sk] - gv[p + 1 - sk] - gv[p - 1 + sk] + gv[p - 1 - sk]) / (4 * sx * sz);
                H[5] = (gv[p + sj + sk] - gv[p + sj - sk] - gv[p - sj + sk] + gv[p - sj - sk]) /
                       (4 * sy * sz);
                double w[3];
                eig3(H, w);
                /* by magnitude: the largest is w[0] (most negative) when a
                 * bright sheet; otherwise no plate */
                double l3 = w[0], la = w[1], lb = w[2];
                if (l3 >= 0 || fabs(l3) < fabs(lb))
                    continue;
                double r2 = (la * la + lb * lb) / (SHEET_ALPHA * SHEET_ALPHA * l3 * l3);
                s[p] = (float)(-l3 * sigma * sigma * exp(-r2 / 2));
                double v[3];
                eigvec3(H, l3, v);
                /* RAS axes in mm: the normal in physical directions */
                for (int a = 0; a < 3; a++)
                    jb->normal[3 * p + a] = (int8_t)lrint(v[a] * 127);
            }
}

r3d_status seg_fissure_sheets(const r3d_volume *hu, const r3d_volume *lung, seg_fissure *fs,
                              r3d_error *err)
{
    memset(fs, 0, sizeof *fs);
    int64_t nx = hu->dim[0], ny = hu->dim[1], nz = hu->dim[2], n = nx * ny * nz;
    double sx = hu->spacing_mm[0], sy = hu->spacing_mm[1], sz = hu->spacing_mm[2];
    /* The scale: a sheet of sub-voxel thickness blurred to about two
     * voxels of the (coarse) grid. */
    double smax = fmax(sx, fmax(sy, sz)), sigma = fmax(1.5, 0.6 * smax);
    r3d_volume *g = r3d_image_gaussian(hu, sigma, err);
    if (!g)
        return err->code;
    /* Interior of the lung: 2 sigma (at least a voxel) from its surface
     * (erode takes any non-zero voxel as inside). */
    const uint8_t *lm = lung->voxels;
    r3d_volume *inner = r3d_image_erode(lung, fmax(2 * sigma, smax * 1.01), err);
    fs->sheet = inner ? r3d_volume_new_like(hu, R3D_F32, err) : NULL;
    fs->normal = fs->sheet ? calloc((size_t)n * 3, 1) : NULL;
    fs->rim = fs->normal ? calloc((size_t)n, 1) : NULL;
    if (!fs->rim) {
        r3d_volume_free(g), r3d_volume_free(inner), seg_fissure_free(fs);
        return err->code ? err->code : r3d_fail(err, R3D_ENOMEM, "fissures: out of memory");
    }
    /* the vessel-free band: voxels within BAND_MM (at least a voxel) of
     * one denser than -600 HU are out */
    const float *gv = g->voxels, *h = hu->voxels;
    r3d_volume *dn = r3d_volume_new_like(hu, R3D_U8, err);
    if (!dn) {
        r3d_volume_free(g), r3d_volume_free(inner), seg_fissure_free(fs);
        return err->code;
    }
    uint8_t *dv = dn->voxels;
    for (int64_t p = 0; p < n; p++)
        dv[p] = h[p] > -600;
    r3d_volume *bandv = r3d_image_dilate(dn, fmax(BAND_MM, smax * 1.01), err);
    r3d_volume_free(dn);
    if (!bandv) {
        r3d_volume_free(g), r3d_volume_free(inner), seg_fissure_free(fs);
        return err->code;
    }
    const uint8_t *band = bandv->voxels;
    const uint8_t *in = inner->voxels;
    for (int64_t p = 0; p < n; p++)
        fs->rim[p] = lm[p] && !in[p];
    sheet_job job = {gv, in, band, fs->sheet->voxels, fs->normal, nx, ny, nz, sx, sy, sz, sigma};
    r3d_parallel_for(nz, sheet_range, &job);
    r3d_volume_free(g), r3d_volume_free(inner), r3d_volume_free(bandv);
    return keep_large_sheets(fs, err);
}

/* The sheet measure at p seen by a split whose fissure's normal is near
 * dir (NULL: any orientation): S times how well the normals agree,
 * nothing beyond 60 degrees. */
static double sheet_dir(const seg_fissure *fs, int64_t p, const double *dir)
{
    double s = ((const float *)fs->sheet->voxels)[p];
    if (s <= 0 || !dir)
        return s;
    const int8_t *nv = fs->normal + 3 * p;
    double d = fabs(nv[0] * dir[0] + nv[1] * dir[1] + nv[2] * dir[2]) / 127;
    return d <= 0.5 ? 0 : s * (d - 0.5) / 0.5;
}

/* Sheet evidence near p: the largest directional S in its 26-neighbourhood. */
static double near_sheet(const seg_fissure *fs, const double *dir, int64_t p, int64_t nx, int64_t ny,
                         int64_t nz)
{
    int64_t i = p % nx, j = (p / nx) % ny, k = p / (nx * ny);
    double m = 0;
    for (int dk = -1; dk <= 1; dk++)
        for (int dj = -1; dj <= 1; dj++)
            for (int di = -1; di <= 1; di++) {
                if (i + di < 0 || i + di >= nx || j + dj < 0 || j + dj >= ny || k + dk < 0 || k + dk >= nz)
                    continue;
                double s = sheet_dir(fs, p + di + nx * (dj + ny * dk), dir);
                if (s > m)
                    m = s;
            }
    return m;
}

/* ---- geodesic competition: a binary heap of (cost, voxel) ---- */
typedef struct hitem {
    float d;
    int64_t p;
} hitem;
typedef struct heap {
    hitem *a;
    int64_t n, cap;
} heap;

static int heap_push(heap *h, float d, int64_t p)
{
    if (h->n == h->cap) {
        int64_t cap = h->cap ? 2 * h->cap : 4096;
        hitem *a = realloc(h->a, (size_t)cap * sizeof *a);
        if (!a)
            return 0;
        h->a = a, h->cap = cap;
    }
    int64_t i = h->n++;
    while (i > 0) {
        int64_t up = (i - 1) / 2;
        if (h->a[up].d <= d)
            break;
        h->a[i] = h->a[up];
        i = up;
    }
    h->a[i].d = d, h->a[i].p = p;
    return 1;
}

static hitem heap_pop(heap *h)
{
    hitem top = h->a[0], last = h->a[--h->n];
    int64_t i = 0;
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->a[c + 1].d < h->a[c].d)
            c++;
        if (h->a[c].d >= last.d)
            break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n > 0)
        h->a[i] = last;
    return top;
}

r3d_status seg_fissure_compete(const r3d_volume *region, const seg_fissure *fs, const double *dir,
                               r3d_volume *lab, r3d_error *err)
{
    int64_t nx = lab->dim[0], ny = lab->dim[1], nz = lab->dim[2], n = nx * ny * nz;
    const uint8_t *rg = region->voxels;
    uint8_t *l = lab->voxels;
    float *dist = malloc((size_t)n * sizeof *dist);
    heap h = {0};
    if (!dist)
        return r3d_fail(err, R3D_ENOMEM, "fissures: out of memory");
    double T = seg_fissure_threshold();
    /* the cost of a voxel: the strongest sheet of the split's orientation
     * in its 26-neighbourhood (a sheet found in dashes still closes) */
    float *cost = malloc((size_t)n * sizeof *cost);
    if (!cost) {
        free(dist);
        return r3d_fail(err, R3D_ENOMEM, "fissures: out of memory");
    }
    for (int64_t p = 0; p < n; p++) {
        double s = !rg[p] ? 0 : fs->rim[p] ? 1 : near_sheet(fs, dir, p, nx, ny, nz) / T;
        cost[p] = (float)(1 + COST_K * (s < 1 ? s : 1));
    }
    for (int64_t p = 0; p < n; p++) {
        dist[p] = INFINITY;
        if (l[p] && rg[p]) {
            dist[p] = 0;
            if (!heap_push(&h, 0, p))
                goto oom;
        } else
            l[p] = 0;
    }
    /* the step lengths (mm) to the 26 neighbours, [dk+1][dj+1][di+1] */
    const double *sp = lab->spacing_mm;
    double len[3][3][3];
    for (int dk = -1; dk <= 1; dk++)
        for (int dj = -1; dj <= 1; dj++)
            for (int di = -1; di <= 1; di++)
                len[dk + 1][dj + 1][di + 1] = sqrt(di * di * sp[0] * sp[0] + dj * dj * sp[1] * sp[1] +
                                                   dk * dk * sp[2] * sp[2]);
    while (h.n) {
        hitem it = heap_pop(&h);
        int64_t p = it.p;
        if (it.d > dist[p])
            continue;
        int64_t i = p % nx, j = (p / nx) % ny, k = p / (nx * ny);
        for (int dk = -1; dk <= 1; dk++) {
            if (k + dk < 0 || k + dk >= nz)
                continue;
            for (int dj = -1; dj <= 1; dj++) {
                if (j + dj < 0 || j + dj >= ny)
                    continue;
                for (int di = -1; di <= 1; di++) {
                    if ((!di && !dj && !dk) || i + di < 0 || i + di >= nx)
                        continue;
                    int64_t q = p + di + nx * (dj + ny * dk);
                    if (!rg[q])
                        continue;
                    float nd = (float)(it.d + len[dk + 1][dj + 1][di + 1] * cost[q]);
                    if (nd < dist[q]) {
                        dist[q] = nd;
                        l[q] = l[p];
                        if (!heap_push(&h, nd, q))
                            goto oom;
                    }
                }
            }
        }
    }
    free(dist), free(cost), free(h.a);
    return R3D_OK;
oom:
    free(dist), free(cost), free(h.a);
    return r3d_fail(err, R3D_ENOMEM, "fissures: out of memory");
}

double seg_fissure_threshold(void)
{
    /* S is in HU (s^2-normalised second derivative): a fissure at 2-3 mm
     * voxels stands some 30-100 HU above the parenchyma, its plate
     * response ~10-40; noise and vessel shadows in the band mostly stay
     * below. */
    return 6.0;
}

void seg_fissure_support(const r3d_volume *lab, int a, int b, const seg_fissure *fs, const double *dir,
                         seg_fissure_evidence *ev)
{
    int64_t nx = lab->dim[0], ny = lab->dim[1], nz = lab->dim[2], n = nx * ny * nz;
    const uint8_t *l = lab->voxels;
    double T = seg_fissure_threshold();
    int64_t iface = 0, on = 0, all = 0, all_on = 0;
    for (int64_t p = 0; p < n; p++) {
        if (l[p] != a && l[p] != b)
            continue;
        /* the base rate: how often any voxel of the two regions is near
         * a sheet of this orientation (sampled every 3rd voxel); the
         * boundary: voxels of a face-touching b */
        int sample = p % 3 == 0, touch = 0;
        if (l[p] == a) {
            int64_t i = p % nx, j = (p / nx) % ny, k = p / (nx * ny);
            touch = (i > 0 && l[p - 1] == b) || (i + 1 < nx && l[p + 1] == b) ||
                    (j > 0 && l[p - nx] == b) || (j + 1 < ny && l[p + nx] == b) ||
                    (k > 0 && l[p - nx * ny] == b) || (k + 1 < nz && l[p + nx * ny] == b);
        }
        if (!sample && !touch)
            continue;
        int on_sheet = near_sheet(fs, dir, p, nx, ny, nz) >= T;
        if (sample)
            all++, all_on += on_sheet;
        if (touch)
            iface++, on += on_sheet;
    }
    ev->on_sheet = iface ? (double)on / (double)iface : 0;
    ev->base_rate = all ? (double)all_on / (double)all : 0;
    /* A fissure: a real share of the boundary lies on a sheet, well above
     * the chance of meeting one anywhere in the lung. */
    ev->found = iface >= 20 && ev->on_sheet >= 0.10 && ev->on_sheet >= 2.5 * ev->base_rate;
}

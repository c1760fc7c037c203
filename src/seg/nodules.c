/* nodules.c - lung nodules of 3 mm and more (full grid).
 *
 * Inside the lungs, voxels denser than -450 HU are vessels, airway walls
 * and nodules. Their distance map gives, at each point, the radius of the
 * largest ball that fits: a nodule is a local maximum R >= 1.5 mm whose
 * surroundings are mostly empty - in the shell between 1.4 R and 2.2 R
 * from its centre less than 6 % of the lung voxels are dense - whereas a
 * vessel of that calibre carries on through the shell (about 18 %) and a
 * branching one more. Candidates next to the hilum (within 2R + 10 mm of a
 * trachea, main or lobar bronchus voxel) are left out: there the vessels
 * leave the lung and would pass the test. The nodule is the dense voxels
 * connected to the centre within 1.35 R of it. */
#include "seg_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOD_HU -450.0
#define NOD_MIN_R 1.5
#define NOD_SHELL_MAX 0.25
#define NOD_CALIBRE_MAX 0.6
#define NOD_SMALL_SHELL_MAX 0.08

typedef struct cand {
    int64_t p;
    float r;
} cand;

static int cmp_cand(const void *a, const void *b)
{
    float x = ((const cand *)a)->r, y = ((const cand *)b)->r;
    return (x < y) - (x > y);
}

r3d_status seg_nodules(seg_ctx *c, r3d_error *err)
{
    if (!c->lung_lo)
        return R3D_OK;
    const r3d_volume *ct = c->ct;
    int64_t nx = ct->dim[0], ny = ct->dim[1], nz = ct->dim[2], ns = nx * ny, n = ns * nz;
    double sp[3] = {ct->spacing_mm[0], ct->spacing_mm[1], ct->spacing_mm[2]};
    r3d_volume *lung = r3d_volume_new_like(ct, R3D_U8, err);
    r3d_volume *dense = lung ? r3d_volume_new_like(ct, R3D_U8, err) : NULL;
    if (!dense) {
        r3d_volume_free(lung);
        return err->code;
    }
    seg_upsample_into(c->lung_lo, c->f, lung);
    const uint8_t *lv = lung->voxels;
    uint8_t *dv = dense->voxels;
    const float *hu = ct->voxels;
    const uint8_t *aw = c->airway ? c->airway->voxels : NULL;
    for (int64_t p = 0; p < n; p++)
        dv[p] = lv[p] && hu[p] >= NOD_HU && !(aw && aw[p]);
    r3d_volume *d = seg_in_box(dense, 1, SEG_DISTANCE, 0, err);
    if (!d) {
        r3d_volume_free(lung), r3d_volume_free(dense);
        return err->code;
    }
    const float *dd = d->voxels;
    /* Local maxima of the distance map (26 neighbours), R >= NOD_MIN_R. */
    cand *cs = NULL;
    int64_t ncs = 0, cap = 0;
    for (int64_t k = 1; k < nz - 1; k++)
        for (int64_t j = 1; j < ny - 1; j++)
            for (int64_t i = 1; i < nx - 1; i++) {
                int64_t p = i + nx * (j + ny * k);
                float r = dd[p];
                if (r < NOD_MIN_R)
                    continue;
                int is_max = 1;
                for (int dk = -1; dk <= 1 && is_max; dk++)
                    for (int dj = -1; dj <= 1 && is_max; dj++)
                        for (int di = -1; di <= 1; di++) {
                            int64_t q = p + di + nx * (dj + ny * dk);
                            if (dd[q] > r || (dd[q] == r && q < p)) {
                                is_max = 0;
                                break;
                            }
                        }
                if (!is_max)
                    continue;
                if (ncs == cap && !r3d_grow((void **)&cs, &cap, ncs + 1, sizeof *cs)) {
                    free(cs), r3d_volume_free(d), r3d_volume_free(lung), r3d_volume_free(dense);
                    return r3d_fail(err, R3D_ENOMEM, "nodules: out of memory");
                }
                cs[ncs].p = p, cs[ncs].r = r;
                ncs++;
            }
    if (ncs > 1)
        qsort(cs, (size_t)ncs, sizeof *cs, cmp_cand);
    r3d_volume *nod = r3d_volume_new_like(ct, R3D_U8, err);
    int64_t *queue = NULL;
    int64_t qcap = 0;
    if (!nod) {
        free(cs), r3d_volume_free(d), r3d_volume_free(lung), r3d_volume_free(dense);
        return err->code;
    }
    uint8_t *nv = nod->voxels;
    int nn = 0;
    for (int64_t ci = 0; ci < ncs && nn < 250; ci++) {
        int64_t p = cs[ci].p;
        if (nv[p])
            continue;
        double R = cs[ci].r;
        int64_t i0 = p % nx, j0 = (p / nx) % ny, k0 = p / ns;
        int64_t rr[3];
        for (int a = 0; a < 3; a++)
            rr[a] = (int64_t)ceil((2.2 * R + 10.0) / sp[a]);
        int64_t shell_lung = 0, shell_dense = 0, near_hilum = 0, ball_other = 0;
        float shell_dmax = 0;
        for (int64_t k = k0 - rr[2]; k <= k0 + rr[2]; k++) {
            if (k < 0 || k >= nz)
                continue;
            for (int64_t j = j0 - rr[1]; j <= j0 + rr[1]; j++) {
                if (j < 0 || j >= ny)
                    continue;
                for (int64_t i = i0 - rr[0]; i <= i0 + rr[0]; i++) {
                    if (i < 0 || i >= nx)
                        continue;
                    double x = (i - i0) * sp[0], y = (j - j0) * sp[1], z = (k - k0) * sp[2];
                    double dist = sqrt(x * x + y * y + z * z);
                    int64_t q = i + nx * (j + ny * k);
                    if (aw && aw[q] && aw[q] <= 2 && dist <= R + 5)
                        near_hilum = 1;
                    if (dist <= 1.35 * R && nv[q])
                        ball_other = 1;
                    if (dist >= 1.4 * R && dist <= 2.2 * R && lv[q]) {
                        shell_lung++;
                        shell_dense += dv[q];
                        if (dd[q] > shell_dmax)
                            shell_dmax = dd[q];
                    }
                }
            }
        }
        if (near_hilum || ball_other || shell_lung == 0 ||
            (double)shell_dense / shell_lung > (R < 3 ? NOD_SMALL_SHELL_MAX : NOD_SHELL_MAX) ||
            shell_dmax > NOD_CALIBRE_MAX * R)
            continue;
        /* The nodule: dense voxels connected to the centre within 1.35 R. */
        int label = nn + 1;
        int64_t h = 0, t = 0;
        if (!r3d_grow((void **)&queue, &qcap, 1, sizeof *queue))
            break;
        queue[t++] = p;
        nv[p] = (uint8_t)label;
        while (h < t) {
            int64_t q = queue[h++];
            int64_t i = q % nx, j = (q / nx) % ny, k = q / ns;
            for (int dk = -1; dk <= 1; dk++)
                for (int dj = -1; dj <= 1; dj++)
                    for (int di = -1; di <= 1; di++) {
                        int64_t a = i + di, b = j + dj, e = k + dk;
                        if (a < 0 || b < 0 || e < 0 || a >= nx || b >= ny || e >= nz)
                            continue;
                        int64_t r = a + nx * (b + ny * e);
                        if (nv[r] || !dv[r])
                            continue;
                        double x = (a - i0) * sp[0], y = (b - j0) * sp[1], z = (e - k0) * sp[2];
                        if (x * x + y * y + z * z > 1.35 * 1.35 * R * R)
                            continue;
                        if (t == qcap && !r3d_grow((void **)&queue, &qcap, t + 1, sizeof *queue))
                            continue;
                        nv[r] = (uint8_t)label;
                        queue[t++] = r;
                    }
        }
        /* Equivalent diameter below 3 mm: not reported; below 6 mm only when
         * solid (fainter small dots are vessels cut by partial volume). */
        double vol = t * sp[0] * sp[1] * sp[2], hs = 0;
        for (int64_t x = 0; x < t; x++)
            hs += hu[queue[x]];
        double dia = cbrt(vol * 6 / M_PI);
        if (dia < 3.0 || t < 5 || (dia < 6.0 && hs / t < -300)) {
            for (int64_t x = 0; x < t; x++)
                nv[queue[x]] = 0;
            continue;
        }
        nn++;
    }
    free(queue), free(cs);
    r3d_volume_free(d), r3d_volume_free(dense);
    /* Measurements. */
    r3d_nodule *m = nn ? calloc((size_t)nn, sizeof *m) : NULL;
    if (nn && !m) {
        r3d_volume_free(nod), r3d_volume_free(lung);
        return r3d_fail(err, R3D_ENOMEM, "nodules: out of memory");
    }
    r3d_volume *awm = NULL;
    if (c->airway && nn) {
        awm = r3d_volume_new_like(ct, R3D_U8, err);
        if (!awm) {
            free(m), r3d_volume_free(nod), r3d_volume_free(lung);
            return err->code;
        }
        const uint8_t *a = c->airway->voxels;
        uint8_t *w = awm->voxels;
        for (int64_t p = 0; p < n; p++)
            w[p] = a[p] != 0;
    }
    if (c->vessels && nn) {
        /* A nodule is not its own vessel. */
        uint8_t *vv = c->vessels->voxels;
        for (int64_t p = 0; p < n; p++)
            if (nv[p])
                vv[p] = 0;
    }
    for (int k = 0; k < nn; k++) {
        r3d_status st = r3d_nodule_measure(ct, nod, k + 1, awm, c->vessels, &m[k], err);
        if (st != R3D_OK) {
            free(m), r3d_volume_free(awm), r3d_volume_free(nod), r3d_volume_free(lung);
            return st;
        }
        /* Lung and lobe at the centre voxel. */
        const uint8_t *lobe = c->lobe_lo ? c->lobe_lo->voxels : NULL;
        int64_t best = -1;
        for (int64_t p = 0; p < n && best < 0; p++)
            if (nv[p] == k + 1)
                best = p;
        if (best >= 0) {
            int64_t i = best % nx, j = (best / nx) % ny, kk = best / ns;
            int64_t q = i / c->f[0] + c->lo->dim[0] * (j / c->f[1] + c->lo->dim[1] * (kk / c->f[2]));
            m[k].lung = lv[best];
            if (lobe && lobe[q])
                snprintf(m[k].lobe, sizeof m[k].lobe, "%s", seg_lobe_name(lobe[q]));
        }
    }
    r3d_volume_free(awm), r3d_volume_free(lung);
    c->nodules = nod;
    c->nod = m;
    c->n_nod = nn;
    return R3D_OK;
}

/* lungs.c - left and right lung (coarse grid).
 *
 * Air inside the body, without the trachea and main bronchi, falls into
 * connected pieces: the two lungs, and gas in the bowel or oesophagus. The
 * largest of the pieces that reach about as high as the highest one (bowel
 * gas lies lower) is a lung; another counts as the other lung when it is big
 * enough, lies on the other side of the midline and reaches about as high.
 * When one piece spans both sides (the lungs touch at the anterior
 * junction line), it is split where it is thinnest: the distance map is
 * thresholded upwards until two large cores appear, and the cores are
 * grown back through the piece. Right is the piece further along +i (the
 * grid is RAS). Vessels and nodules inside each lung are then filled in
 * (closing + slice-wise hole filling, each lung on its own so the
 * mediastinum between them stays out). */
#include "seg_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LUNG_AIR_HU -400.0
#define LUNG_MEDIAN_MIN_HU -945

typedef struct piece {
    int64_t n, si, ktop, nleft, nright;
} piece;

/* Coarse-grid mask of airway voxels of generation <= gmax (labels 1..gmax+1). */
static void airway_lo(const seg_ctx *c, int gmax, uint8_t *out)
{
    const r3d_volume *lo = c->lo, *ct = c->ct;
    int64_t ox = lo->dim[0], oy = lo->dim[1];
    int64_t nx = ct->dim[0], ny = ct->dim[1], nz = ct->dim[2];
    const uint8_t *a = c->airway->voxels;
    for (int64_t k = 0; k < nz; k++)
        for (int64_t j = 0; j < ny; j++)
            for (int64_t i = 0; i < nx; i++) {
                uint8_t g = a[i + nx * (j + ny * k)];
                if (g && g <= gmax + 1)
                    out[i / c->f[0] + ox * (j / c->f[1] + oy * (k / c->f[2]))] = 1;
            }
}

static r3d_status split_joined(r3d_volume *lab, const r3d_volume *piece_mask, r3d_error *err)
{
    r3d_volume *d = r3d_image_distance(piece_mask, err);
    if (!d)
        return err->code;
    int64_t n = r3d_volume_nvox(lab), total = seg_count(piece_mask, 0);
    const float *dv = d->voxels;
    r3d_volume *core = r3d_volume_new_like(lab, R3D_U8, err);
    if (!core) {
        r3d_volume_free(d);
        return err->code;
    }
    uint8_t *cv = core->voxels;
    double step = fmin(lab->spacing_mm[0], lab->spacing_mm[1]);
    int done = 0;
    for (double t = step; t < 30 && !done; t += step) {
        for (int64_t p = 0; p < n; p++)
            cv[p] = dv[p] > t;
        int64_t nc = 0, *sizes = NULL;
        r3d_volume *cc = r3d_image_components(core, 6, &nc, &sizes, err);
        if (!cc) {
            r3d_volume_free(core), r3d_volume_free(d);
            return err->code;
        }
        int64_t a = 0, b = 0;
        for (int64_t l = 1; l <= nc; l++) {
            if (sizes[l] > (a ? sizes[a] : 0))
                b = a, a = l;
            else if (sizes[l] > (b ? sizes[b] : 0))
                b = l;
        }
        if (a && b && sizes[b] >= total / 20) {
            const uint32_t *l = cc->voxels;
            uint8_t *o = lab->voxels;
            for (int64_t p = 0; p < n; p++)
                o[p] = l[p] == a ? 1 : l[p] == b ? 2 : 0;
            seg_propagate(lab, piece_mask);
            done = 1;
        }
        free(sizes);
        r3d_volume_free(cc);
    }
    r3d_volume_free(core), r3d_volume_free(d);
    return done ? R3D_OK : R3D_ENOTFOUND;
}

r3d_status seg_lungs(seg_ctx *c, r3d_error *err)
{
    const r3d_volume *lo = c->lo;
    int64_t nx = lo->dim[0], ny = lo->dim[1], nz = lo->dim[2], ns = nx * ny, n = ns * nz;
    r3d_volume *air = r3d_volume_new_like(lo, R3D_U8, err);
    if (!air)
        return err->code;
    uint8_t *a = air->voxels;
    const float *hu = lo->voxels;
    const uint8_t *body = c->body_lo->voxels;
    for (int64_t p = 0; p < n; p++)
        a[p] = body[p] && hu[p] < LUNG_AIR_HU;
    if (c->airway) {
        r3d_volume *aw = r3d_volume_new_like(lo, R3D_U8, err);
        if (!aw) {
            r3d_volume_free(air);
            return err->code;
        }
        airway_lo(c, 1, aw->voxels);
        r3d_volume *awd = r3d_image_dilate(aw, 1.5 * fmax(lo->spacing_mm[0], lo->spacing_mm[2]), err);
        r3d_volume_free(aw);
        if (!awd) {
            r3d_volume_free(air);
            return err->code;
        }
        const uint8_t *w = awd->voxels;
        for (int64_t p = 0; p < n; p++)
            if (w[p])
                a[p] = 0;
        r3d_volume_free(awd);
    }
    int64_t np = 0, *sizes = NULL;
    r3d_volume *cc = r3d_image_components(air, 6, &np, &sizes, err);
    if (!cc) {
        r3d_volume_free(air);
        return err->code;
    }
    piece *pc = calloc((size_t)np + 1, sizeof *pc);
    r3d_volume *lab = r3d_volume_new_like(lo, R3D_U8, err);
    if (!pc || !lab) {
        free(pc), free(sizes), r3d_volume_free(cc), r3d_volume_free(air), r3d_volume_free(lab);
        return pc ? err->code : r3d_fail(err, R3D_ENOMEM, "lungs: out of memory");
    }
    /* Midline: the body's mean i over all slices. */
    double bsum = 0, bn = 0;
    for (int64_t p = 0; p < n; p++)
        if (body[p])
            bsum += p % nx, bn++;
    double mid = bn > 0 ? bsum / bn : nx / 2.0;
    const uint32_t *l = cc->voxels;
    for (int64_t p = 0; p < n; p++) {
        if (!l[p])
            continue;
        piece *q = &pc[l[p]];
        int64_t i = p % nx, k = p / ns;
        q->n++, q->si += i;
        if (k > q->ktop)
            q->ktop = k;
        if (i < mid)
            q->nleft++; /* RAS: smaller i = patient's left */
        else
            q->nright++;
    }
    double vml = seg_voxel_ml(lo);
    /* Lungs reach highest: only pieces whose top is within 30 mm of the
     * highest top of any sizeable piece qualify (bowel gas lies lower). */
    /* Gas in the bowel is pure air (median near -1000 HU); lung tissue holds
     * blood and walls (median -750..-900 HU, emphysema down to about -940). */
    int *hist = NULL;
    int64_t ncand = 0, *cid = calloc((size_t)np + 1, sizeof *cid);
    for (int64_t q = 1; cid && q <= np; q++)
        if (pc[q].n * vml >= 10)
            cid[q] = ++ncand;
    if (cid && ncand)
        hist = calloc((size_t)ncand * 700, sizeof *hist);
    if (!cid || (ncand && !hist)) {
        free(cid), free(hist), free(pc), free(sizes);
        r3d_volume_free(cc), r3d_volume_free(air), r3d_volume_free(lab);
        return r3d_fail(err, R3D_ENOMEM, "lungs: out of memory");
    }
    for (int64_t p = 0; p < n; p++)
        if (l[p] && cid[l[p]]) {
            int b = (int)(hu[p] + 1100);
            hist[(cid[l[p]] - 1) * 700 + (b < 0 ? 0 : b > 699 ? 699 : b)]++;
        }
    for (int64_t q = 1; q <= np; q++) {
        if (!cid[q])
            continue;
        const int *h = hist + (cid[q] - 1) * 700;
        int64_t acc = 0;
        int b = 0;
        while (b < 699 && (acc += h[b]) * 2 < pc[q].n)
            b++;
        if (b - 1100 < LUNG_MEDIAN_MIN_HU)
            cid[q] = 0; /* bowel gas */
    }
    free(hist);
    int64_t ktop_max = -1;
    for (int64_t q = 1; q <= np; q++)
        if (cid[q] && pc[q].ktop > ktop_max)
            ktop_max = pc[q].ktop;
    int64_t kmin = ktop_max - (int64_t)ceil(30.0 / lo->spacing_mm[2]);
    int64_t A = 0, B = 0;
    for (int64_t q = 1; q <= np; q++)
        if (cid[q] && pc[q].ktop >= kmin && pc[q].n > (A ? pc[A].n : 0))
            A = q;
    r3d_status st = R3D_OK;
    if (!A) {
        /* no lung in view */
    } else {
        double mA = (double)pc[A].si / pc[A].n;
        for (int64_t q = 1; q <= np; q++) {
            if (q == A || !cid[q] || pc[q].n < pc[A].n / 8 || pc[q].ktop < kmin)
                continue;
            double mq = (double)pc[q].si / pc[q].n;
            if ((mq - mid) * (mA - mid) >= 0)
                continue; /* same side */
            if (!B || pc[q].n > pc[B].n)
                B = q;
        }
        uint8_t *o = lab->voxels;
        int joined = !B && pc[A].nleft > pc[A].n / 6 && pc[A].nright > pc[A].n / 6;
        if (joined) {
            for (int64_t p = 0; p < n; p++)
                a[p] = l[p] == A;
            st = split_joined(lab, air, err);
            if (st == R3D_ENOTFOUND) {
                /* cannot split: one lung object, side by its centre */
                for (int64_t p = 0; p < n; p++)
                    o[p] = l[p] == A;
                st = R3D_OK;
            } else if (st == R3D_OK)
                c->has_lung_joined = 1;
        } else {
            for (int64_t p = 0; p < n; p++)
                o[p] = l[p] == A ? 1 : (B && l[p] == B) ? 2 : 0;
        }
        if (st == R3D_OK) {
            /* Decide which label is right (+i). */
            double s1 = 0, n1 = 0, s2 = 0, n2 = 0;
            for (int64_t p = 0; p < n; p++)
                if (o[p] == 1)
                    s1 += p % nx, n1++;
                else if (o[p] == 2)
                    s2 += p % nx, n2++;
            int swap = n2 > 0 ? s2 / n2 > s1 / n1 : (n1 > 0 && s1 / n1 < mid);
            if (swap)
                for (int64_t p = 0; p < n; p++)
                    o[p] = o[p] == 1 ? 2 : o[p] == 2 ? 1 : 0;
            /* Fill each lung: close, fill slice holes. */
            for (int side = 1; side <= 2 && st == R3D_OK; side++) {
                for (int64_t p = 0; p < n; p++)
                    a[p] = o[p] == side;
                r3d_volume *cl = r3d_image_close(air, 4.0, err);
                if (!cl) {
                    st = err->code;
                    break;
                }
                seg_fill_holes_2d(cl);
                const uint8_t *cv = cl->voxels;
                for (int64_t p = 0; p < n; p++)
                    if (cv[p] && !o[p] && body[p])
                        o[p] = (uint8_t)side;
                r3d_volume_free(cl);
            }
        }
    }
    free(pc), free(sizes), free(cid);
    r3d_volume_free(cc), r3d_volume_free(air);
    if (st != R3D_OK) {
        r3d_volume_free(lab);
        return st;
    }
    c->lung_lo = lab;
    return R3D_OK;
}

void seg_lungs_params(cJSON *par)
{
    cJSON_AddNumberToObject(par, "lung_air_hu", LUNG_AIR_HU);
    cJSON_AddNumberToObject(par, "lung_median_min_hu", LUNG_MEDIAN_MIN_HU);
}

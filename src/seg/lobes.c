/* lobes.c - the five lung lobes: territories of the lobar bronchi where
 * the airway tree names them, split along the fissures where they show.
 *
 * From the airway: each airway branch below a named lobar bronchus (RUL,
 * RML, RLL, LUL, LLL, named from the tree's directions in
 * src/analysis/airway_names.c; a superior segmental bronchus leaving the
 * intermedius, RB6, counts for the lower lobe) seeds its lobe; every other
 * voxel of the same lung takes the lobe of the nearest seed reached
 * through that lung (geodesic, coarse grid). That boundary is only as
 * good as the visible sub-segmental airways on both sides.
 *
 * From the fissures (fissures.c: Hessian plate filter in the vessel-free
 * interior, then geodesic competition between lobe markers with sheets as
 * high cost - Lassen et al., IEEE TMI 2013, van Rikxoort et al., Med Phys
 * 2009), in two splits as the anatomy has them: the oblique fissure
 * (normal about anterior-superior) parts the lower lobe from the rest,
 * then on the right the horizontal fissure (normal superior) parts upper
 * from middle. The markers are the cores of the airway lobes (voxels
 * 12 mm or more from another lobe) when the airway named them all, else
 * the lung's extremes along the fissure's normal (lower lobe: postero-
 * basal; upper: apical-anterior; middle: the basal end of what lies in
 * front of the oblique fissure). The sheets are found on the full grid
 * (a fissure fades in a 2 mm block mean) and kept per coarse voxel as the
 * strongest of its block. A split is kept only where 10 % of its
 * boundary or more lies next to a sheet, at 2.5 times the chance rate
 * (seg_fissure_support); otherwise the airway's boundary stays, or,
 * with no airway, the lung keeps no lobes (6 / 7 in lobe_lo) and
 * lobe_why says what was missing. Lobes are never drawn from position
 * alone. One exception is named: with the lung cut by the top of the
 * scan, no horizontal fissure in view and an oblique one found, what
 * lies in front of the oblique fissure is the middle lobe (the scan
 * starts below the horizontal fissure: lung bases). */
#include "seg_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CORE_MM 12.0
#define SEED_MM 10.0

static int lobe_of_name(const char *n)
{
    static const char *k[6] = {"", "RUL", "RML", "RLL", "LUL", "LLL"};
    for (int i = 1; i <= 5; i++)
        if (!strcmp(n, k[i]))
            return i;
    /* a segmental bronchus that leaves above its lobar bronchus (RB6 from
     * the intermedius) still belongs to its lobe */
    return seg_segment_lobe(seg_segment_of_name(n));
}

/* Lobes from the airway (lab on the coarse grid, 0 where none); ok[0]
 * right, ok[1] left: all of that lung's lobar bronchi were named. */
static r3d_status airway_lobes(seg_ctx *c, r3d_volume *lab, int ok[2], r3d_error *err)
{
    ok[0] = ok[1] = 0;
    if (!c->airway || !c->branch_of || c->tree.n == 0)
        return R3D_OK;
    int nb = c->tree.n;
    int *lobe = calloc((size_t)nb + 1, sizeof *lobe);
    if (!lobe)
        return r3d_fail(err, R3D_ENOMEM, "lobes: out of memory");
    int have[6] = {0};
    for (int b = 0; b < nb; b++) {
        for (int x = b; x >= 0; x = c->tree.b[x].parent) {
            int l = lobe_of_name(c->tree.b[x].name);
            if (l) {
                lobe[b + 1] = l;
                have[l] = 1;
                break;
            }
        }
    }
    ok[0] = have[1] && have[2] && have[3], ok[1] = have[4] && have[5];
    if (!ok[0] && !ok[1]) {
        free(lobe);
        return R3D_OK;
    }
    const r3d_volume *lo = c->lo, *ct = c->ct;
    int64_t ox = lo->dim[0], oy = lo->dim[1], n = r3d_volume_nvox(lo);
    int64_t nx = ct->dim[0], ny = ct->dim[1], nz = ct->dim[2];
    r3d_volume *within = r3d_volume_new_like(lo, R3D_U8, err);
    if (!within) {
        free(lobe);
        return err->code;
    }
    uint8_t *o = lab->voxels, *w = within->voxels;
    int64_t seeded[6] = {0};
    const uint8_t *lung = c->lung_lo->voxels;
    const int32_t *bo = c->branch_of->voxels;
    for (int64_t k = 0; k < nz; k++)
        for (int64_t j = 0; j < ny; j++)
            for (int64_t i = 0; i < nx; i++) {
                int32_t b = bo[i + nx * (j + ny * k)];
                if (b <= 0 || b > nb || !lobe[b])
                    continue;
                int64_t q = i / c->f[0] + ox * (j / c->f[1] + oy * (k / c->f[2]));
                int l = lobe[b];
                int side = l <= 3 ? 1 : 2;
                if (lung[q] == side && ok[side - 1] && !o[q]) {
                    o[q] = (uint8_t)l;
                    seeded[l]++;
                }
            }
    /* a lobar bronchus named from a tree whose branches do not reach into
     * its lung (an airway traced outside the chest) seeds nothing there */
    ok[0] = ok[0] && seeded[1] && seeded[2] && seeded[3];
    ok[1] = ok[1] && seeded[4] && seeded[5];
    for (int64_t p = 0; p < n; p++)
        if (o[p] && !ok[o[p] <= 3 ? 0 : 1])
            o[p] = 0;
    for (int side = 1; side <= 2; side++) {
        if (!ok[side - 1])
            continue;
        for (int64_t p = 0; p < n; p++)
            w[p] = lung[p] == side;
        seg_propagate(lab, within);
    }
    free(lobe);
    r3d_volume_free(within);
    return R3D_OK;
}

/* One split of region (non-zero voxels) into a (label 1) and b (label 2)
 * from the seeds in seeds (1 / 2), along sheets of normal dir: *out (the
 * labels) and the evidence. */
static r3d_status split(const r3d_volume *region, const seg_fissure *fs, const double dir[3],
                        const r3d_volume *seeds, r3d_volume **out, seg_fissure_evidence *ev,
                        r3d_error *err)
{
    *out = NULL;
    memset(ev, 0, sizeof *ev);
    r3d_volume *lab = r3d_volume_new_like(seeds, R3D_U8, err);
    if (!lab)
        return err->code;
    memcpy(lab->voxels, seeds->voxels, (size_t)r3d_volume_nvox(seeds));
    r3d_status st = seg_fissure_compete(region, fs, dir, lab, err);
    if (st != R3D_OK) {
        r3d_volume_free(lab);
        return st;
    }
    seg_fissure_support(lab, 1, 2, fs, dir, ev);
    *out = lab;
    return R3D_OK;
}

/* Seeds from the airway lobes: voxels of region whose airway lobe is in
 * set a (-> 1) or set b (-> 2) and lie CORE_MM or more from the other
 * set (or in the deepest half of their own set when it is thin). */
static r3d_status core_seeds(const r3d_volume *region, const uint8_t *alab, const int *a, int na,
                             const int *b, int nb, r3d_volume *seeds, r3d_error *err)
{
    int64_t n = r3d_volume_nvox(region);
    const uint8_t *rg = region->voxels;
    uint8_t *s = seeds->voxels;
    memset(s, 0, (size_t)n);
    for (int set = 0; set < 2; set++) {
        const int *mine = set ? b : a, *other = set ? a : b;
        int nm = set ? nb : na, no = set ? na : nb;
        r3d_volume *m = r3d_volume_new_like(region, R3D_U8, err);
        if (!m)
            return err->code;
        uint8_t *mv = m->voxels;
        for (int64_t p = 0; p < n; p++) {
            mv[p] = 1;
            for (int x = 0; x < no; x++)
                if (rg[p] && alab[p] == other[x])
                    mv[p] = 0;
        }
        r3d_volume *d = r3d_image_distance(m, err);
        r3d_volume_free(m);
        if (!d)
            return err->code;
        const float *dv = d->voxels;
        float dmax = 0;
        for (int64_t p = 0; p < n; p++)
            for (int x = 0; x < nm; x++)
                if (rg[p] && alab[p] == mine[x] && dv[p] > dmax)
                    dmax = dv[p];
        float cut = (float)fmin(CORE_MM, 0.5 * dmax);
        for (int64_t p = 0; p < n; p++)
            for (int x = 0; x < nm; x++)
                if (rg[p] && alab[p] == mine[x] && dv[p] >= cut && dv[p] > 0)
                    s[p] = (uint8_t)(set + 1);
        r3d_volume_free(d);
    }
    return R3D_OK;
}

/* Seeds by anatomy: the voxels of region within SEED_MM of its lowest
 * (-> 1) and highest (-> 2) extent along dir (RAS, mm). */
static void extreme_seeds(const r3d_volume *region, const double dir[3], r3d_volume *seeds)
{
    int64_t n = r3d_volume_nvox(region);
    const uint8_t *rg = region->voxels;
    uint8_t *s = seeds->voxels;
    const double *sp = region->spacing_mm;
    double tmin = INFINITY, tmax = -INFINITY;
    for (int64_t p = 0; p < n; p++) {
        if (!rg[p])
            continue;
        int64_t i, j, k;
        seg_ijk(region, p, &i, &j, &k);
        double t = i * sp[0] * dir[0] + j * sp[1] * dir[1] + k * sp[2] * dir[2];
        tmin = fmin(tmin, t), tmax = fmax(tmax, t);
    }
    for (int64_t p = 0; p < n; p++) {
        s[p] = 0;
        if (!rg[p])
            continue;
        int64_t i, j, k;
        seg_ijk(region, p, &i, &j, &k);
        double t = i * sp[0] * dir[0] + j * sp[1] * dir[1] + k * sp[2] * dir[2];
        if (t <= tmin + SEED_MM)
            s[p] = 1;
        else if (t >= tmax - SEED_MM)
            s[p] = 2;
    }
}

/* The sheets found on the full grid (a fissure is thinner than a coarse
 * voxel and fades when averaged), kept per coarse voxel of the box as
 * the strongest of its block with that one's normal. */
static r3d_status fine_sheets(const seg_ctx *c, const int64_t blo[3], const int64_t bhi[3],
                              const r3d_volume *lung, seg_fissure *fs, r3d_error *err)
{
    const int *f = c->f;
    int64_t flo[3], fhi[3];
    for (int a = 0; a < 3; a++) {
        flo[a] = blo[a] * f[a];
        fhi[a] = (bhi[a] + 1) * f[a] - 1;
        if (fhi[a] > c->ct->dim[a] - 1)
            fhi[a] = c->ct->dim[a] - 1;
    }
    r3d_volume *hu = seg_crop(c->ct, flo, fhi, err);
    r3d_volume *fl = hu ? r3d_volume_new_like(hu, R3D_U8, err) : NULL;
    if (!fl) {
        r3d_volume_free(hu);
        return err->code;
    }
    seg_upsample_into(lung, f, fl);
    seg_fissure fine;
    r3d_status st = seg_fissure_sheets(hu, fl, &fine, err);
    r3d_volume_free(fl), r3d_volume_free(hu);
    if (st != R3D_OK)
        return st;
    if (f[0] == 1 && f[1] == 1 && f[2] == 1) {
        *fs = fine;
        return R3D_OK;
    }
    memset(fs, 0, sizeof *fs);
    int64_t n = r3d_volume_nvox(lung);
    fs->sheet = r3d_volume_new_like(lung, R3D_F32, err);
    fs->normal = fs->sheet ? calloc((size_t)n * 3, 1) : NULL;
    fs->rim = fs->normal ? calloc((size_t)n, 1) : NULL;
    if (!fs->rim) {
        seg_fissure_free(&fine), seg_fissure_free(fs);
        return err->code ? err->code : r3d_fail(err, R3D_ENOMEM, "lobes: out of memory");
    }
    const r3d_volume *fv = fine.sheet;
    int64_t fx = fv->dim[0], fy = fv->dim[1], fz = fv->dim[2], cx = lung->dim[0], cy = lung->dim[1];
    const float *fsv = fv->voxels;
    float *cs = fs->sheet->voxels;
    for (int64_t k = 0; k < fz; k++)
        for (int64_t j = 0; j < fy; j++)
            for (int64_t i = 0; i < fx; i++) {
                int64_t p = i + fx * (j + fy * k), q = i / f[0] + cx * (j / f[1] + cy * (k / f[2]));
                fs->rim[q] |= fine.rim[p];
                if (fsv[p] > cs[q]) {
                    cs[q] = fsv[p];
                    memcpy(fs->normal + 3 * q, fine.normal + 3 * p, 3);
                }
            }
    seg_fissure_free(&fine);
    return R3D_OK;
}

/* One lung (side 1 right, 2 left) in the box: out gets its lobes (1..5)
 * or nothing; returns the method (SEG_LOBES_*). alab: the airway lobes
 * (NULL: none for this lung). */
static r3d_status side_lobes(seg_ctx *c, int side, const r3d_volume *lung, const uint8_t *alab,
                             const seg_fissure *fs, int top_cut, uint8_t *out, int *method,
                             r3d_error *err)
{
    static const double ob[3] = {0, 0.70710678, 0.70710678}, hz[3] = {0, 0, 1};
    int64_t n = r3d_volume_nvox(lung);
    const uint8_t *lm = lung->voxels;
    char *why = c->lobe_why[side - 1];
    int lower = side == 1 ? 3 : 5, upper = side == 1 ? 1 : 4, middle = 2;
    *method = SEG_LOBES_NONE;
    r3d_volume *region = r3d_volume_new_like(lung, R3D_U8, err);
    r3d_volume *seeds = region ? r3d_volume_new_like(lung, R3D_U8, err) : NULL;
    r3d_volume *s1 = NULL, *s2 = NULL;
    seg_fissure_evidence e1, e2;
    r3d_status st = R3D_OK;
    if (!seeds)
        goto done;
    uint8_t *rg = region->voxels;
    for (int64_t p = 0; p < n; p++)
        rg[p] = lm[p] == side;
    if (seg_count(region, 1) == 0)
        goto done;
    /* 1. the oblique fissure: lower lobe (1) against the rest (2) */
    if (alab) {
        int a[1] = {lower}, b[2] = {upper, middle};
        st = core_seeds(region, alab, a, 1, b, side == 1 ? 2 : 1, seeds, err);
    } else {
        double down[3] = {-ob[0], -ob[1], -ob[2]};
        extreme_seeds(region, down, seeds);
        /* extreme_seeds labels the low end of -ob (= the anterior-superior
         * end) 1: swap so that 1 is the postero-basal (lower lobe) end */
        uint8_t *s = seeds->voxels;
        for (int64_t p = 0; p < n; p++)
            s[p] = s[p] ? (uint8_t)(3 - s[p]) : 0;
    }
    if (st == R3D_OK)
        st = split(region, fs, ob, seeds, &s1, &e1, err);
    if (st != R3D_OK)
        goto done;
    const uint8_t *v1 = s1->voxels;
    if (!e1.found && !alab) {
        if (e1.base_rate == 0 && e1.on_sheet == 0)
            snprintf(why, 160, "no oblique fissure seen (no fissure-like sheet of 1.5 mL or more "
                               "inside this lung)");
        else
            snprintf(why, 160, "no oblique fissure seen (%.0f%% of the boundary on a sheet, chance %.0f%%)",
                     100 * e1.on_sheet, 100 * e1.base_rate);
        goto done;
    }
    for (int64_t p = 0; p < n; p++)
        if (rg[p])
            out[p] = (uint8_t)(e1.found ? (v1[p] == 1 ? lower : upper) : (alab[p] == lower ? lower : upper));
    *method = alab ? (e1.found ? SEG_LOBES_AIRWAY_FISSURES : SEG_LOBES_AIRWAY) : SEG_LOBES_FISSURES;
    int n1 = snprintf(why, 160, "oblique fissure %s (%.0f%% of the boundary on a sheet, chance %.0f%%)",
                      e1.found ? "found" : "not seen, airway boundary kept", 100 * e1.on_sheet,
                      100 * e1.base_rate);
    if (side == 2)
        goto done;
    /* 2. the horizontal fissure: upper (2) against middle (1) in front of
     * the oblique fissure */
    for (int64_t p = 0; p < n; p++)
        rg[p] = out[p] == upper && lm[p] == side;
    if (alab) {
        int a[1] = {middle}, b[1] = {upper};
        st = core_seeds(region, alab, a, 1, b, 1, seeds, err);
    } else
        extreme_seeds(region, hz, seeds);
    if (st == R3D_OK && seg_count(seeds, 1) && seg_count(seeds, 2))
        st = split(region, fs, hz, seeds, &s2, &e2, err);
    if (st != R3D_OK)
        goto done;
    if (s2 && e2.found) {
        const uint8_t *v2 = s2->voxels;
        for (int64_t p = 0; p < n; p++)
            if (rg[p])
                out[p] = (uint8_t)(v2[p] == 1 ? middle : upper);
        snprintf(why + n1, (size_t)(160 - n1), "; horizontal found (%.0f%%, chance %.0f%%)", 100 * e2.on_sheet,
                 100 * e2.base_rate);
        if (*method == SEG_LOBES_AIRWAY)
            *method = SEG_LOBES_AIRWAY_FISSURES;
    } else if (alab) {
        /* the airway's upper / middle boundary inside the upper part */
        r3d_volume *t = r3d_volume_new_like(lung, R3D_U8, err);
        if (!t) {
            st = err->code;
            goto done;
        }
        uint8_t *tv = t->voxels;
        for (int64_t p = 0; p < n; p++)
            tv[p] = rg[p] && (alab[p] == upper || alab[p] == middle) ? alab[p] : 0;
        seg_propagate(t, region);
        for (int64_t p = 0; p < n; p++)
            if (rg[p] && tv[p])
                out[p] = tv[p];
        r3d_volume_free(t);
        snprintf(why + n1, (size_t)(160 - n1), "; horizontal not seen, airway boundary kept");
    } else if (top_cut) {
        for (int64_t p = 0; p < n; p++)
            if (rg[p])
                out[p] = (uint8_t)middle;
        snprintf(why + n1, (size_t)(160 - n1),
                 "; no horizontal fissure below the top of the scan: middle lobe in front");
    } else {
        for (int64_t p = 0; p < n; p++)
            if (lm[p] == side)
                out[p] = 0;
        *method = SEG_LOBES_NONE;
        snprintf(why + n1, (size_t)(160 - n1), "; no horizontal fissure seen (%.0f%%): no lobes",
                 s2 ? 100 * e2.on_sheet : 0.0);
    }
done:
    r3d_volume_free(region), r3d_volume_free(seeds), r3d_volume_free(s1), r3d_volume_free(s2);
    if (!seeds && st == R3D_OK)
        st = err->code;
    return st;
}

r3d_status seg_lobes(seg_ctx *c, r3d_error *err)
{
    if (!c->lung_lo)
        return R3D_OK;
    for (int s = 0; s < 2; s++) {
        c->lobe_method[s] = SEG_LOBES_NONE;
        snprintf(c->lobe_why[s], sizeof c->lobe_why[s], "no lung");
    }
    int64_t blo[3], bhi[3];
    if (!seg_box(c->lung_lo, 2, blo, bhi))
        return R3D_OK;
    r3d_volume *alab = r3d_volume_new_like(c->lo, R3D_U8, err);
    if (!alab)
        return err->code;
    int ok[2];
    r3d_status st = airway_lobes(c, alab, ok, err);
    r3d_volume *lung = NULL, *abox = NULL, *out = NULL;
    seg_fissure fs = {0};
    if (st != R3D_OK)
        goto done;
    lung = seg_crop(c->lung_lo, blo, bhi, err);
    abox = lung ? seg_crop(alab, blo, bhi, err) : NULL;
    out = abox ? r3d_volume_new_like(lung, R3D_U8, err) : NULL;
    if (!out || (st = fine_sheets(c, blo, bhi, lung, &fs, err)) != R3D_OK) {
        st = err->code;
        goto done;
    }
    int any = 0;
    int64_t n = r3d_volume_nvox(lung);
    const uint8_t *lm = lung->voxels;
    uint8_t *o = out->voxels;
    for (int side = 1; side <= 2; side++) {
        /* the lung reaches the top slice of the scan */
        int top_cut = 0;
        if (bhi[2] == c->lo->dim[2] - 1) {
            int64_t ns = lung->dim[0] * lung->dim[1];
            for (int64_t p = n - ns; p < n && !top_cut; p++)
                top_cut = lm[p] == side;
        }
        st = side_lobes(c, side, lung, ok[side - 1] ? abox->voxels : NULL, &fs, top_cut, o,
                        &c->lobe_method[side - 1], err);
        if (st != R3D_OK)
            goto done;
        any |= c->lobe_method[side - 1] != SEG_LOBES_NONE;
    }
    if (any) {
        /* a lung without lobes keeps its lung label (6 right, 7 left) */
        for (int64_t p = 0; p < n; p++)
            if (lm[p] && !o[p])
                o[p] = (uint8_t)(lm[p] == 1 ? 6 : 7);
        memset(alab->voxels, 0, (size_t)r3d_volume_nvox(alab));
        seg_paste(out, alab, blo);
        c->lobe_lo = alab;
        alab = NULL;
    }
done:
    seg_fissure_free(&fs);
    r3d_volume_free(alab), r3d_volume_free(lung), r3d_volume_free(abox);
    r3d_volume_free(out);
    return st;
}

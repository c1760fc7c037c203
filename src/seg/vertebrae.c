/* vertebrae.c - the spine label split into numbered vertebrae (coarse grid).
 *
 * Method, on bones.c's labels (1 spine, 2 ribs, 4 other bone) and the HU:
 *   centre line - per axial slice the column's middle (median i of its
 *     spine voxels) and the front of its vertebral body (the most anterior
 *     spine voxel within VB_HALF_MM of the middle, the largest over
 *     +-VB_FRONT_REACH_MM: a disc slice has lost its body to bones.c);
 *   profile - per slice the median HU in a box inside the body (VB_HALF_MM
 *     either side of the middle, VB_BACK_MM .. VB_SKIN_MM behind its
 *     front), raw HU: a disc that bones.c took out still counts at its
 *     70-100 HU, an endplate at 200+, marrow between;
 *   discs - in the slices where the column has a body (spine section
 *     at least BODY_AREA_FRAC of the typical one: not the sacrum's thin
 *     crest), local minima of the profile that endplates bracket closely
 *     (the profile rises DISC_DIP_HU above them within DISC_NEAR_MM on
 *     both sides) and that lie DISC_BELOW_HU under the column's typical
 *     slice: lowest first, DISC_APART_MM apart. A vertebral body's middle
 *     is a dip too, but at marrow level and with its endplates farther
 *     off; a disc faint at this grid (a tilted L5/S1) fails the tests as
 *     well, so a gap more than GAP_WIDE times its neighbours' (or an end
 *     piece that long) is searched once more - middle of the gap, or
 *     0.4-1.4 pitches beyond the end disc - for the lowest minimum that
 *     rises DISC_WEAK_DIP_HU within DISC_REACH_MM on both sides;
 *   vertebrae - the body cores of the slices between two discs (not the
 *     slices next to a disc: discs are tilted) seed one piece each; every
 *     other spine voxel (arch, processes) goes to the nearest seed through
 *     the spine (geodesic, seg_propagate), so a cut is never a plane;
 *   numbers - never guessed. Anchors, in order: the sacrum (the piece
 *     below the lowest disc reaches SACRUM_MIN_MM down near the midline
 *     and, in some slice, its bone joins other bone - the pelvis - more
 *     than SACRUM_WIDE_MM from the midline on both sides): the piece
 *     above is L5; else T12, the lowest piece a rib touches, when a piece
 *     without ribs lies below it. C2 (dens on a neck) is not attempted.
 *     With no anchor the spine stays one label and the reason is kept
 *     for the report. Below T12 only L1..L5 are named (a sixth lumbar
 *     piece stays "spine"), and an end piece longer than GAP_WIDE times
 *     its neighbour's pitch (vertebrae whose discs were not seen) stays
 *     "spine" too. The sacrum block's top, while its body is as
 *     large as the column's typical body (S1_AREA_FRAC), is
 *     vertebrae_S1; below, sacrum.
 * Values are TotalSegmentator v2's (25 sacrum, 26 S1, 27 L5 ... 50 C1).
 * The labels are grown one coarse voxel beyond the spine so that the full
 * grid's edges (bones_full.c) find their vertebra. */
#include "seg_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VB_HALF_MM 10.0
#define VB_FRONT_REACH_MM 6.0
#define VB_BACK_MM 20.0
#define VB_SKIN_MM 3.0
#define DISC_DIP_HU 50.0
#define DISC_WEAK_DIP_HU 25.0
#define DISC_REACH_MM 15.0
#define DISC_NEAR_MM 9.0
#define DISC_BELOW_HU 20.0
#define DISC_APART_MM 15.0
#define GAP_WIDE 1.5
#define SACRUM_MIN_MM 40.0
#define SACRUM_WIDE_MM 55.0
#define S1_AREA_FRAC 0.5
#define BODY_AREA_FRAC 0.5
#define RIB_CONTACTS 3
#define MAX_DISCS SEG_VERT_DISCS /* as many as seg_ctx's vert_disc_k holds */

#define V_SACRUM 25
#define V_S1 26
#define V_L5 27
#define V_T12 32
#define V_C1 50

/* The median of the non-zero spine sections of slices k0..k1 into *typ
 * (0 when there are none); 0 when out of memory. */
static int typical_area(const int64_t *area, int64_t k0, int64_t k1, double *typ)
{
    *typ = 0;
    if (k1 < k0)
        return 1;
    float *buf = malloc((size_t)(k1 - k0 + 1) * sizeof *buf);
    if (!buf)
        return 0;
    int64_t m = 0;
    for (int64_t k = k0; k <= k1; k++)
        if (area[k])
            buf[m++] = (float)area[k];
    if (m) {
        *typ = seg_median(buf, m);
    }
    free(buf);
    return 1;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Per slice: column middle ic, body front jf (-1: no spine), profile s (NAN). */
static int centre_line(const r3d_volume *lo, const uint8_t *b, double *ic, int64_t *jf, double *s,
                       int64_t *area)
{
    int64_t nx = lo->dim[0], ny = lo->dim[1], nz = lo->dim[2], ns = nx * ny;
    double sx = lo->spacing_mm[0], sy = lo->spacing_mm[1], sz = lo->spacing_mm[2];
    const float *hu = lo->voxels;
    float *buf = malloc((size_t)ns * sizeof *buf);
    int64_t *raw = malloc((size_t)nz * sizeof *raw);
    if (!buf || !raw) {
        free(buf), free(raw);
        return 0;
    }
    int64_t hi = (int64_t)floor(VB_HALF_MM / sx + 0.5);
    for (int64_t k = 0; k < nz; k++) {
        const uint8_t *sl = b + ns * k;
        int64_t m = 0;
        for (int64_t p = 0; p < ns; p++)
            if (sl[p] == 1)
                buf[m++] = (float)(p % nx);
        area[k] = m;
        raw[k] = -1;
        ic[k] = NAN;
        if (!m)
            continue;
        ic[k] = seg_median(buf, m);
        int64_t c = (int64_t)ic[k];
        for (int64_t p = 0; p < ns; p++)
            if (sl[p] == 1 && llabs(p % nx - c) <= hi && p / nx > raw[k])
                raw[k] = p / nx;
    }
    int64_t w = (int64_t)floor(VB_FRONT_REACH_MM / sz + 0.5);
    int64_t back = (int64_t)floor(VB_BACK_MM / sy + 0.5), skin = (int64_t)floor(VB_SKIN_MM / sy + 0.5);
    if (skin < 1)
        skin = 1;
    for (int64_t k = 0; k < nz; k++) {
        jf[k] = -1;
        s[k] = NAN;
        if (isnan(ic[k]))
            continue;
        for (int64_t d = -w; d <= w; d++)
            if (k + d >= 0 && k + d < nz && raw[k + d] > jf[k])
                jf[k] = raw[k + d];
        int64_t c = (int64_t)ic[k], m = 0;
        for (int64_t j = jf[k] - back; j <= jf[k] - skin; j++)
            for (int64_t i = c - hi; i <= c + hi; i++)
                if (i >= 0 && i < nx && j >= 0 && j < ny)
                    buf[m++] = hu[ns * k + nx * j + i];
        if (m >= 3) {
            s[k] = seg_median(buf, m);
        }
    }
    free(buf), free(raw);
    return 1;
}

/* Rise of the profile above s[k] within reach on the side dir (the max
 * over the side minus s[k]); -INF when the side has no data. */
static double rise(const double *s, int64_t nz, int64_t k, int64_t reach, int dir)
{
    return seg_side_max(s, nz, k, reach, dir) - s[k];
}

static int is_min(const double *s, int64_t nz, int64_t k)
{
    return !isnan(s[k]) && (k == 0 || isnan(s[k - 1]) || s[k] <= s[k - 1]) &&
           (k == nz - 1 || isnan(s[k + 1]) || s[k] <= s[k + 1]);
}

/* Best weak candidate in slices a..b (inclusive), -1 when none. */
static int64_t weak_disc(const double *s, int64_t nz, int64_t a, int64_t b, int64_t reach)
{
    int64_t best = -1;
    for (int64_t k = a < 1 ? 1 : a; k <= b && k < nz - 1; k++)
        if (is_min(s, nz, k) && rise(s, nz, k, reach, 1) >= DISC_WEAK_DIP_HU &&
            rise(s, nz, k, reach, -1) >= DISC_WEAK_DIP_HU && (best < 0 || s[k] < s[best]))
            best = k;
    return best;
}

/* Disc slices, ascending; returns how many. */
static int find_discs(const double *s, int64_t nz, double sz, int64_t kb, int64_t kt,
                      int64_t *disc)
{
    int64_t reach = (int64_t)floor(DISC_REACH_MM / sz + 0.5);
    int64_t near = (int64_t)floor(DISC_NEAR_MM / sz + 0.5), apart = (int64_t)ceil(DISC_APART_MM / sz);
    float *buf = malloc((size_t)nz * sizeof *buf);
    int64_t *cand = malloc((size_t)nz * sizeof *cand);
    if (!buf || !cand) {
        free(buf), free(cand);
        return -1;
    }
    int64_t m = 0, nc = 0;
    for (int64_t k = 0; k < nz; k++)
        if (!isnan(s[k]))
            buf[m++] = (float)s[k];
    int nd = 0;
    if (m >= 5) {
        double typical = seg_median(buf, m);
        for (int64_t k = kb + 1; k < kt; k++)
            if (is_min(s, nz, k) && s[k] <= typical - DISC_BELOW_HU &&
                rise(s, nz, k, near, 1) >= DISC_DIP_HU && rise(s, nz, k, near, -1) >= DISC_DIP_HU)
                cand[nc++] = k;
        /* lowest HU first, apart */
        for (int64_t x = 0; x < nc; x++)
            for (int64_t y = x + 1; y < nc; y++)
                if (s[cand[y]] < s[cand[x]]) {
                    int64_t t = cand[x];
                    cand[x] = cand[y], cand[y] = t;
                }
        for (int64_t x = 0; x < nc && nd < MAX_DISCS; x++) {
            int ok = 1;
            for (int y = 0; y < nd && ok; y++)
                ok = llabs(disc[y] - cand[x]) >= apart;
            if (ok)
                disc[nd++] = cand[x];
        }
        qsort(disc, (size_t)nd, sizeof *disc, cmp_i64);
        /* Gaps far wider than their neighbours: a faint disc in the middle. */
        for (int pass = 0; pass < 1 && nd >= 2; pass++) {
            for (int y = 0; y + 1 < nd && nd < MAX_DISCS; y++) {
                int64_t g = disc[y + 1] - disc[y], nb = 0;
                if (y > 0)
                    nb = disc[y] - disc[y - 1];
                if (y + 2 < nd && disc[y + 2] - disc[y + 1] > nb)
                    nb = disc[y + 2] - disc[y + 1];
                if (!nb || g <= GAP_WIDE * (double)nb)
                    continue;
                int64_t k = weak_disc(s, nz, disc[y] + (int64_t)(0.35 * g), disc[y + 1] - (int64_t)(0.35 * g),
                                      reach);
                if (k >= 0) {
                    memmove(disc + y + 2, disc + y + 1, (size_t)(nd - y - 1) * sizeof *disc);
                    disc[y + 1] = k;
                    nd++;
                }
            }
            /* the ends: one more disc about a neighbour's gap away */
            int64_t g = disc[1] - disc[0];
            if (disc[0] - kb > GAP_WIDE * (double)g && nd < MAX_DISCS) {
                int64_t k = weak_disc(s, nz, disc[0] - (int64_t)(1.4 * g), disc[0] - (int64_t)(0.4 * g), reach);
                if (k > kb && disc[0] - k >= apart) {
                    memmove(disc + 1, disc, (size_t)nd * sizeof *disc);
                    disc[0] = k;
                    nd++;
                }
            }
            g = disc[nd - 1] - disc[nd - 2];
            if (kt - disc[nd - 1] > GAP_WIDE * (double)g && nd < MAX_DISCS) {
                int64_t k = weak_disc(s, nz, disc[nd - 1] + (int64_t)(0.4 * g),
                                      disc[nd - 1] + (int64_t)(1.4 * g), reach);
                if (k >= 0 && k < kt && k - disc[nd - 1] >= apart)
                    disc[nd++] = k;
            }
        }
    }
    free(buf), free(cand);
    return nd;
}

static int piece_of(const int64_t *disc, int nd, int64_t k)
{
    int q = 0;
    while (q < nd && k > disc[q])
        q++;
    return q; /* 0 .. nd: below disc q */
}

/* The sacrum test on the piece below disc[0]. */
static int sacrum_below(const r3d_volume *lo, const uint8_t *b, const double *ic, int64_t d0,
                        int64_t kb, r3d_error *err, int *status)
{
    int64_t nx = lo->dim[0], ny = lo->dim[1], ns = nx * ny;
    double sx = lo->spacing_mm[0], sz = lo->spacing_mm[2];
    *status = 0;
    /* the column continues down as bone near the midline */
    double c0 = NAN;
    for (int64_t k = d0; k >= kb && isnan(c0); k--)
        c0 = ic[k];
    if (isnan(c0))
        return 0;
    /* (the disc's own slices may hold no bone: gaps up to DISC_NEAR_MM) */
    int64_t near = (int64_t)floor(15.0 / sx + 0.5), low = d0, gap = 0;
    int64_t gap_max = (int64_t)floor(DISC_NEAR_MM / sz + 0.5);
    for (int64_t k = d0; k >= 0; k--) {
        double c = isnan(ic[k]) ? c0 : ic[k];
        int hit = 0;
        for (int64_t p = ns * k; p < ns * (k + 1) && !hit; p++)
            hit = (b[p] == 1 || b[p] == 4) && fabs((double)(p % nx) - c) <= near;
        if (!hit) {
            if (++gap > gap_max)
                break;
            continue;
        }
        gap = 0;
        low = k, c0 = c;
    }
    if ((double)(d0 - low) * sz < SACRUM_MIN_MM)
        return 0;
    /* some slice: the column's bone (4-connected, labels 1 and 4) reaches
     * SACRUM_WIDE_MM from the midline on both sides */
    int32_t *lab = malloc((size_t)ns * sizeof *lab);
    int64_t *q = malloc((size_t)ns * sizeof *q);
    if (!lab || !q) {
        free(lab), free(q);
        *status = r3d_fail(err, R3D_ENOMEM, "vertebrae: out of memory");
        return 0;
    }
    int found = 0;
    for (int64_t k = d0 - 1; k >= low && !found; k--) {
        const uint8_t *sl = b + ns * k;
        double c = isnan(ic[k]) ? c0 : ic[k];
        memset(lab, 0, (size_t)ns * sizeof *lab);
        int64_t t = 0;
        for (int64_t p = 0; p < ns; p++)
            if (sl[p] == 1 && fabs((double)(p % nx) - c) <= near && !lab[p])
                lab[p] = 1, q[t++] = p;
        double left = 0, right = 0;
        for (int64_t h = 0; h < t; h++) {
            int64_t p = q[h], i = p % nx, j = p / nx;
            double dx = ((double)i - c) * sx;
            if (dx < left) left = dx;
            if (dx > right) right = dx;
            int64_t nb[4] = {i > 0 ? p - 1 : -1, i < nx - 1 ? p + 1 : -1, j > 0 ? p - nx : -1,
                             j < ny - 1 ? p + nx : -1};
            for (int e = 0; e < 4; e++)
                if (nb[e] >= 0 && !lab[nb[e]] && (sl[nb[e]] == 1 || sl[nb[e]] == 4))
                    lab[nb[e]] = 1, q[t++] = nb[e];
        }
        found = -left > SACRUM_WIDE_MM && right > SACRUM_WIDE_MM;
    }
    free(lab), free(q);
    return found;
}

r3d_status seg_vertebrae(seg_ctx *c, r3d_error *err)
{
    c->vert_numbered = 0;
    snprintf(c->vert_why, sizeof c->vert_why, "no spine found");
    if (!c->bone_lo)
        return R3D_OK;
    const r3d_volume *lo = c->lo;
    int64_t nx = lo->dim[0], ny = lo->dim[1], nz = lo->dim[2], ns = nx * ny, n = ns * nz;
    double sx = lo->spacing_mm[0], sz = lo->spacing_mm[2];
    const uint8_t *b = c->bone_lo->voxels;
    double *ic = malloc((size_t)nz * sizeof *ic), *s = malloc((size_t)nz * sizeof *s);
    int64_t *jf = malloc((size_t)nz * sizeof *jf), *area = calloc((size_t)nz, sizeof *area);
    int64_t disc[MAX_DISCS];
    int64_t *seeds = NULL, *ribs = NULL; /* per piece: seed voxels, rib contacts */
    r3d_volume *lab = NULL, *within = NULL;
    r3d_status st = R3D_OK;
    if (!ic || !s || !jf || !area || !centre_line(lo, b, ic, jf, s, area)) {
        st = r3d_fail(err, R3D_ENOMEM, "vertebrae: out of memory");
        goto out;
    }
    /* Slices where the column has a body: a spine section at least
     * BODY_AREA_FRAC of the typical one (not the sacrum's thin crest, not
     * an arch alone). */
    {
        double typ;
        if (!typical_area(area, 0, nz - 1, &typ)) {
            st = r3d_fail(err, R3D_ENOMEM, "vertebrae: out of memory");
            goto out;
        }
        for (int64_t k = 0; k < nz; k++)
            if ((double)area[k] < BODY_AREA_FRAC * typ)
                s[k] = NAN;
    }
    int64_t kb = -1, kt = -1;
    for (int64_t k = 0; k < nz; k++)
        if (!isnan(s[k])) {
            if (kb < 0)
                kb = k;
            kt = k;
        }
    if (kb < 0)
        goto out;
    int nd = find_discs(s, nz, sz, kb, kt, disc);
    if (nd < 0) {
        st = r3d_fail(err, R3D_ENOMEM, "vertebrae: out of memory");
        goto out;
    }
    c->vert_discs = nd;
    for (int x = 0; x < nd && x < MAX_DISCS; x++)
        c->vert_disc_k[x] = disc[x];
    if (nd < 1) {
        snprintf(c->vert_why, sizeof c->vert_why, "no intervertebral disc found along the spine");
        goto out;
    }
    /* Seeds: body cores of slices at least one slice from a disc. */
    if (!(lab = r3d_volume_new_like(lo, R3D_U8, err)) || !(within = r3d_volume_new_like(lo, R3D_U8, err))) {
        st = err ? err->code : R3D_ENOMEM;
        goto out;
    }
    uint8_t *lv = lab->voxels, *wv = within->voxels;
    int64_t hi = (int64_t)floor(VB_HALF_MM / sx + 0.5);
    int64_t back = (int64_t)floor(VB_BACK_MM / lo->spacing_mm[1] + 0.5);
    if (!(seeds = calloc((size_t)nd + 1, sizeof *seeds))) {
        st = r3d_fail(err, R3D_ENOMEM, "vertebrae: out of memory");
        goto out;
    }
    for (int64_t p = 0; p < n; p++) {
        wv[p] = b[p] == 1;
        if (b[p] != 1)
            continue;
        int64_t k = p / ns, i = p % nx, j = (p % ns) / nx;
        int near_disc = 0;
        for (int x = 0; x < nd; x++)
            near_disc |= llabs(k - disc[x]) <= 1;
        if (near_disc || isnan(ic[k]) || llabs(i - (int64_t)ic[k]) > hi || j < jf[k] - back)
            continue;
        int q = piece_of(disc, nd, k);
        lv[p] = (uint8_t)(q + 1);
        seeds[q]++;
    }
    seg_propagate(lab, within);
    /* Rib contacts per piece (26-neighbours). */
    if (!(ribs = calloc((size_t)nd + 1, sizeof *ribs))) {
        st = r3d_fail(err, R3D_ENOMEM, "vertebrae: out of memory");
        goto out;
    }
    for (int64_t p = 0; p < n; p++) {
        if (b[p] != 2)
            continue;
        int64_t i = p % nx, j = (p % ns) / nx, k = p / ns;
        int piece = 0;
        for (int dk = -1; dk <= 1 && !piece; dk++)
            for (int dj = -1; dj <= 1 && !piece; dj++)
                for (int di = -1; di <= 1 && !piece; di++) {
                    if (i + di < 0 || i + di >= nx || j + dj < 0 || j + dj >= ny || k + dk < 0 ||
                        k + dk >= nz)
                        continue;
                    int64_t r = p + di + nx * (dj + ny * dk);
                    if (lv[r])
                        piece = lv[r];
                }
        if (piece)
            ribs[piece - 1]++;
    }
    /* Anchors. */
    int vstatus = 0;
    int sacrum = sacrum_below(lo, b, ic, disc[0], kb, err, &vstatus);
    if (vstatus) {
        st = vstatus;
        goto out;
    }
    int t12 = -1;
    for (int q = 0; q <= nd; q++)
        if (ribs[q] >= RIB_CONTACTS && seeds[q]) {
            if (q > 0 && seeds[q - 1] && ribs[q - 1] < RIB_CONTACTS)
                t12 = q;
            break;
        }
    int value[MAX_DISCS + 1] = {0};
    if (sacrum && t12 >= 0 && 26 + t12 != V_T12) {
        /* Both anchors in view and they disagree (a transitional vertebra,
         * a missed or false disc): no number is sure. */
        snprintf(c->vert_why, sizeof c->vert_why,
                 "anchors disagree: counting up from the sacrum makes the lowest rib-bearing "
                 "vertebra number %d from the bottom, not T12", t12);
        goto out;
    }
    if (sacrum) {
        for (int q = 1; q <= nd; q++)
            value[q] = 26 + q <= V_C1 ? 26 + q : 0;
        value[0] = V_S1;
        c->vert_anchor = 1;
        c->vert_rib_t12 = t12 >= 0 ? value[t12] : -1;
    } else if (t12 >= 0) {
        for (int q = 0; q <= nd; q++) {
            int v = V_T12 + (q - t12);
            value[q] = v >= V_L5 && v <= V_C1 ? v : 0;
        }
        c->vert_anchor = 2;
        c->vert_rib_t12 = V_T12;
    } else {
        snprintf(c->vert_why, sizeof c->vert_why,
                 "no anchor in view: no sacrum below the lowest disc, no lowest rib-bearing "
                 "vertebra with one below it (C2 is not looked for)");
        goto out;
    }
    c->vert_why[0] = 0;
    /* An end piece much longer than its neighbour's pitch holds more than
     * one vertebra whose discs were not seen: its number would be a guess
     * (not the sacrum block, whose length is its nature). */
    if (nd >= 2) {
        if (!sacrum && disc[0] - kb > GAP_WIDE * (double)(disc[1] - disc[0]))
            value[0] = 0, c->vert_ends_left++;
        if (kt - disc[nd - 1] > GAP_WIDE * (double)(disc[nd - 1] - disc[nd - 2]))
            value[nd] = 0, c->vert_ends_left++;
    }
    /* The sacrum block: S1 while its spine slices are as large as the
     * column's typical slice, sacrum below. */
    int64_t s1_low = -1;
    if (sacrum) {
        double typ;
        if (!typical_area(area, disc[0] + 1, kt, &typ)) {
            st = r3d_fail(err, R3D_ENOMEM, "vertebrae: out of memory");
            goto out;
        }
        /* past the disc's own slices, then down the run of large ones */
        int64_t k = disc[0] - 1, skip = (int64_t)floor(DISC_NEAR_MM / sz + 0.5);
        while (k > 0 && disc[0] - k <= skip && area[k] < S1_AREA_FRAC * typ)
            k--;
        s1_low = k + 1;
        while (s1_low > 0 && area[s1_low - 1] >= S1_AREA_FRAC * typ)
            s1_low--;
    }
    /* Labels, grown one voxel beyond the spine (into anything) so the full
     * grid's edges find their vertebra: within marks the labelled voxels,
     * its dilation by one voxel (26 neighbours) is where they may grow. */
    for (int64_t p = 0; p < n; p++) {
        int q = lv[p] ? lv[p] - 1 : -1;
        uint8_t v = q >= 0 ? (uint8_t)value[q] : 0;
        if (v == V_S1 && p / ns < s1_low)
            v = V_SACRUM;
        lv[p] = v;
        wv[p] = v != 0;
    }
    {
        double one = 1.01 * fmax(sx, fmax(lo->spacing_mm[1], sz)) * sqrt(3.0);
        int pad = (int)ceil(one / fmin(sx, fmin(lo->spacing_mm[1], sz))) + 1;
        r3d_volume *grow = seg_in_box(within, pad, SEG_DILATE, one, err);
        if (!grow) {
            st = err ? err->code : R3D_ENOMEM;
            goto out;
        }
        seg_propagate(lab, grow);
        r3d_volume_free(grow);
    }
    int np = 0;
    for (int q = 0; q <= nd; q++)
        np += value[q] != 0 && seeds[q];
    c->vert_pieces = np;
    c->vert_numbered = np > 0;
    if (np) {
        c->vert_lo = lab;
        lab = NULL;
    } else
        snprintf(c->vert_why, sizeof c->vert_why, "no vertebra could be numbered");
out:
    free(ic), free(s), free(jf), free(area), free(seeds), free(ribs);
    r3d_volume_free(lab), r3d_volume_free(within);
    return st;
}

/* airway.c - trachea and bronchi.
 *
 * Seed: the lungs and airways are one air-filled object inside the body
 * (they connect through the bronchi); walking down from its top, the first
 * slice holding a small, round, near-midline section of it is the trachea,
 * when that object widens into a chest's lungs below it (a scan that
 * starts at the lung bases has bowel gas and lung bases that can look like
 * a trachea from above: no airway is reported there).
 * Growth: region growing on the full grid from that section over voxels
 * darker than a threshold that is raised step by step (-960 HU upwards);
 * the step at which the tree suddenly balloons (more than doubles: a leak
 * into the parenchyma) is rejected and the previous tree kept. Everything
 * outside the body counts as wall, so a leak can never reach the air
 * around the patient. Small airways, whose lumen is no darker than the
 * parenchyma at this resolution, are then followed from each branch end by
 * local growth over dark tubes (grow_leaves). The tree is cut into
 * branches and generations (src/analysis/airway_tree.c) after each round. */
#include "seg_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define AIR_HU -500.0
/* Below the trachea's run, within LUNG_BELOW_MM, the air object must have a
 * section of at least LUNG_SECTION_MIN_MM2: an adult chest's two lungs are
 * 200-400 cm^2 a slice, a small child's well over 60. */
#define LUNG_BELOW_MM 150.0
#define LUNG_SECTION_MIN_MM2 6000.0

/* 2D 4-connected components of slice k of a uint8 mask (value 1): lab gets
 * 1..n; returns n. stats: area (voxels), sum i, sum j, bbox. */
typedef struct comp2d {
    int64_t area, si, sj;
    int64_t i0, i1, j0, j1;
} comp2d;

static int label_slice(const uint8_t *s, int64_t nx, int64_t ny, int32_t *lab, int64_t *q,
                       comp2d *st, int cap)
{
    memset(lab, 0, (size_t)(nx * ny) * sizeof *lab);
    int n = 0;
    for (int64_t p0 = 0; p0 < nx * ny; p0++) {
        if (!s[p0] || lab[p0])
            continue;
        if (n == cap)
            return n;
        n++;
        comp2d *c = &st[n - 1];
        memset(c, 0, sizeof *c);
        c->i0 = c->j0 = INT64_MAX;
        int64_t h = 0, t = 0;
        q[t++] = p0;
        lab[p0] = n;
        while (h < t) {
            int64_t p = q[h++], i = p % nx, j = p / nx;
            c->area++, c->si += i, c->sj += j;
            if (i < c->i0) c->i0 = i;
            if (i > c->i1) c->i1 = i;
            if (j < c->j0) c->j0 = j;
            if (j > c->j1) c->j1 = j;
            int64_t nb[4] = {i > 0 ? p - 1 : -1, i < nx - 1 ? p + 1 : -1, j > 0 ? p - nx : -1,
                             j < ny - 1 ? p + nx : -1};
            for (int d = 0; d < 4; d++)
                if (nb[d] >= 0 && s[nb[d]] && !lab[nb[d]]) {
                    lab[nb[d]] = n;
                    q[t++] = nb[d];
                }
        }
    }
    return n;
}

/* The trachea's section on the coarse grid: returns the coarse slice k and
 * fills the section's centroid (ci, cj); -1 when no trachea is in view. */
static int64_t find_trachea(seg_ctx *c, double *ci, double *cj, r3d_error *err)
{
    const r3d_volume *lo = c->lo;
    int64_t nx = lo->dim[0], ny = lo->dim[1], nz = lo->dim[2], ns = nx * ny;
    r3d_volume *air = r3d_volume_new_like(lo, R3D_U8, err);
    if (!air)
        return -2;
    const float *hu = lo->voxels;
    const uint8_t *body = c->body_lo->voxels;
    uint8_t *a = air->voxels;
    for (int64_t p = 0; p < ns * nz; p++)
        a[p] = body[p] && hu[p] < AIR_HU;
    r3d_volume *big = r3d_image_largest_component(air, 6, err);
    r3d_volume_free(air);
    if (!big)
        return -2;
    int32_t *lab = malloc((size_t)ns * sizeof *lab);
    int64_t *q = malloc((size_t)ns * sizeof *q);
    comp2d st[256];
    int64_t found = -1;
    double sx = lo->spacing_mm[0], sy = lo->spacing_mm[1], sz = lo->spacing_mm[2];
    if (!lab || !q) {
        free(lab), free(q), r3d_volume_free(big);
        return r3d_fail(err, R3D_ENOMEM, "airway: out of memory"), -2;
    }
    const uint8_t *b = big->voxels;
    /* The air object's section per slice: a trachea leads down into lungs
     * whose section somewhere below it is a chest's, not the few cm^2 of
     * lung bases and bowel gas in a scan that starts at the diaphragm. */
    double *sect = calloc((size_t)nz, sizeof *sect);
    if (!sect) {
        free(lab), free(q), r3d_volume_free(big);
        return r3d_fail(err, R3D_ENOMEM, "airway: out of memory"), -2;
    }
    for (int64_t k = 0; k < nz; k++) {
        int64_t m = 0;
        for (int64_t p = 0; p < ns; p++)
            m += b[ns * k + p];
        sect[k] = (double)m * sx * sy;
    }
    /* How many consecutive slices (downwards) must show the candidate. */
    int need = (int)ceil(15.0 / sz);
    int run = 0;
    double pi = 0, pj = 0;
    for (int64_t k = nz - 1; k >= 0 && found < 0; k--) {
        const uint8_t *s = b + ns * k;
        /* Body centre of this slice (x). */
        int64_t bi = 0, bn = 0;
        for (int64_t p = 0; p < ns; p++)
            if (body[ns * k + p])
                bi += p % nx, bn++;
        if (!bn) {
            run = 0;
            continue;
        }
        double mid = (double)bi / bn;
        int n = label_slice(s, nx, ny, lab, q, st, 256);
        int best = -1;
        for (int l = 0; l < n; l++) {
            double area = st[l].area * sx * sy;
            double w = (st[l].i1 - st[l].i0 + 1) * sx, h = (st[l].j1 - st[l].j0 + 1) * sy;
            double mi = (double)st[l].si / st[l].area, mj = (double)st[l].sj / st[l].area;
            if (area < 60 || area > 900 || fabs(mi - mid) * sx > 35 || w > 40 || h > 40 ||
                area < 0.45 * w * h)
                continue;
            if (run > 0 && hypot((mi - pi) * sx, (mj - pj) * sy) > 12)
                continue;
            best = l;
            break;
        }
        if (best < 0) {
            run = 0;
            continue;
        }
        double mi = (double)st[best].si / st[best].area, mj = (double)st[best].sj / st[best].area;
        if (run == 0)
            *ci = mi, *cj = mj;
        pi = mi, pj = mj;
        if (++run >= need) {
            double most = 0;
            for (int64_t k2 = k; k2 >= 0 && (k - k2) * sz <= LUNG_BELOW_MM; k2--)
                most = fmax(most, sect[k2]);
            if (most >= LUNG_SECTION_MIN_MM2)
                found = k + need - 1; /* the top slice of the run */
            else
                run = 0;
        }
    }
    free(sect), free(lab), free(q), r3d_volume_free(big);
    return found;
}

/* Patient LPS -> voxel index on v's grid (nearest), -1 outside. */
static int64_t lps_to_index(const r3d_volume *v, const double x[3])
{
    double a[3][4];
    for (int r = 0; r < 3; r++) {
        for (int q = 0; q < 3; q++)
            a[r][q] = v->ijk_to_lps[r][q];
        a[r][3] = x[r] - v->ijk_to_lps[r][3];
    }
    for (int col = 0; col < 3; col++) { /* Gauss-Jordan with partial pivoting */
        int piv = col;
        for (int r = col + 1; r < 3; r++)
            if (fabs(a[r][col]) > fabs(a[piv][col]))
                piv = r;
        if (fabs(a[piv][col]) < 1e-12)
            return -1;
        for (int q = 0; q < 4; q++) {
            double t = a[col][q];
            a[col][q] = a[piv][q], a[piv][q] = t;
        }
        for (int r = 0; r < 3; r++) {
            if (r == col)
                continue;
            double f = a[r][col] / a[col][col];
            for (int q = col; q < 4; q++)
                a[r][q] -= f * a[col][q];
        }
    }
    int64_t ijk[3];
    for (int r = 0; r < 3; r++) {
        ijk[r] = (int64_t)floor(a[r][3] / a[r][r] + 0.5);
        if (ijk[r] < 0 || ijk[r] >= v->dim[r])
            return -1;
    }
    return ijk[0] + v->dim[0] * (ijk[1] + v->dim[1] * ijk[2]);
}

/* Second pass: from the end of every terminal branch, and from points every
 * 5 mm along the main, lobar and segmental bronchi (where the next
 * generation leaves: every 1/4 of a branch missed most segmental bronchi
 * of the lower lobes), grow locally (a box
 * of +-LOCAL_MM) over voxels that are airway lumen either by value (below
 * LOCAL_T0) or by shape: darker than -650 HU where the dark-tube Frangi
 * vesselness of the box (sigmas 0.8-1.8 mm, c = LOCAL_FRANGI_C) reaches vt;
 * voxels darker than -700 HU within LOCAL_BRIDGE_MM of the end bridge a
 * lumen that partial volume interrupts. vt is lowered step by step while
 * the local growth stays a tube: a growth that balloons (front-size leak
 * control, more than LOCAL_MAX_MM3) or is a bush rather than a tube (more
 * volume than LOCAL_TUBE_SLACK x a cylinder of the parent's radius over
 * its reach) is rejected at that step. The existing tree is a wall except
 * near the branch end, so growth cannot run back up. New voxels join mask;
 * rounds repeat from the new ends. */
#define LOCAL_MM 20.0
#define LOCAL_MAX_MM3 600.0
#define LOCAL_T0 -900.0
#define LOCAL_VT_MIN 0.10
#define LOCAL_VT_MAX 0.50
#define LOCAL_FRANGI_C 40.0
#define LOCAL_ROUNDS 3
#define LOCAL_BRIDGE_MM 2.5
#define LOCAL_TUBE_SLACK 1.5
#define LOCAL_SIDE_STEP_MM 5.0 /* side anchors this far apart along a branch */
#define LOCAL_SIDE_MAX_GEN 3    /* on the main, lobar and segmental bronchi */
#define LOCAL_SIDE_RADIUS 0.6 /* a side branch is narrower than its parent */
/* Growth from an offshoot's tip that is nearly all bridge (less than
 * LOCAL_TIP_PAST_MM3 beyond it) is kept only where it is darker than the
 * voxels around it by LOCAL_TIP_CONTRAST_HU: a lumen between walls, not a
 * ball of parenchyma (which, round after round, would turn any stub into
 * a branch). Chest CT: the superior segmental bronchus RB6 goes on from
 * its stub by such a step (8 voxels). */
#define LOCAL_TIP_PAST_MM3 6.0
#define LOCAL_TIP_CONTRAST_HU 50.0

/* Is the growth lv (box voxels, marks mk, HU bv) from a tip a lumen? Either
 * it reaches on past the bridge, or what it adds is darker than the voxels
 * that touch it (6-neighbours outside it and outside the tree). */
static int tip_growth_is_lumen(const uint8_t *lv, const uint8_t *mk, const float *bv,
                               const int64_t bdim[3], double vv)
{
    int64_t bn = bdim[0] * bdim[1] * bdim[2], past = 0, nin = 0, nout = 0;
    double sin = 0, sout = 0;
    for (int64_t q = 0; q < bn; q++) {
        if (!lv[q] || mk[q] == 1 || mk[q] == 2)
            continue;
        past += mk[q] == 0;
        nin++, sin += bv[q];
        int64_t i = q % bdim[0], j = (q / bdim[0]) % bdim[1], k = q / (bdim[0] * bdim[1]);
        int64_t nb[6] = {i > 0 ? q - 1 : -1, i < bdim[0] - 1 ? q + 1 : -1,
                         j > 0 ? q - bdim[0] : -1, j < bdim[1] - 1 ? q + bdim[0] : -1,
                         k > 0 ? q - bdim[0] * bdim[1] : -1,
                         k < bdim[2] - 1 ? q + bdim[0] * bdim[1] : -1};
        for (int d = 0; d < 6; d++)
            if (nb[d] >= 0 && !lv[nb[d]] && !mk[nb[d]])
                nout++, sout += bv[nb[d]]; /* a voxel touching twice counts twice */
    }
    if (nin == 0 || past * vv >= LOCAL_TIP_PAST_MM3)
        return 1;
    return nout > 0 && sout / nout - sin / nin >= LOCAL_TIP_CONTRAST_HU;
}

/* Cosine between the directions (start to end) of branches a and b. */
static double branch_cos(const r3d_airway_tree *t, int a, int b)
{
    double d = 0, na = 0, nb = 0;
    for (int r = 0; r < 3; r++) {
        double u = t->b[a].end[r] - t->b[a].start[r], v = t->b[b].end[r] - t->b[b].start[r];
        d += u * v, na += u * u, nb += v * v;
    }
    return na > 0 && nb > 0 ? d / sqrt(na * nb) : -1;
}

/* Is b the straight continuation (within LOCAL_TRUNK_DEG, the straightest
 * of its siblings) of a branch that gets side anchors? When a segmental
 * bronchus is found leaving a trunk, the trunk's remainder becomes a
 * generation deeper, yet it is still the trunk the other segmental
 * bronchi leave (chest CT: the left basal trunk below LB10 carries LB9
 * and the lateral basal region; without anchors along it they were lost
 * and 129 mL of the lower lobe went to the lingula). */
#define LOCAL_TRUNK_DEG 32.0
int seg_airway_continues_trunk(const r3d_airway_tree *t, int b)
{
    int p = t->b[b].parent;
    if (p < 0 || t->b[p].generation > LOCAL_SIDE_MAX_GEN)
        return 0;
    double cb = branch_cos(t, b, p);
    if (cb < cos(LOCAL_TRUNK_DEG * M_PI / 180))
        return 0;
    for (int q = 0; q < t->n; q++)
        if (q != b && t->b[q].parent == p && branch_cos(t, q, p) > cb)
            return 0;
    return 1;
}

/* Anchor points of the local growth. */
typedef struct anchor {
    double pt[3];
    int b, side;
    int tip; /* a folded offshoot's tip (see tip_growth_is_lumen) */
} anchor;

/* The next free anchor of *a (n in use, room for *cap), grown as needed;
 * NULL when out of memory, *a then freed. */
static anchor *more_anchors(anchor **a, int *n, int *cap)
{
    if (*n == *cap) {
        anchor *a2 = realloc(*a, (size_t)(*cap *= 2) * sizeof *a2);
        if (!a2) {
            free(*a);
            *a = NULL;
            return NULL;
        }
        *a = a2;
    }
    return &(*a)[(*n)++];
}

static anchor *make_anchors(const r3d_airway_tree *t, int *n)
{
    int cap = 64;
    anchor *a = malloc((size_t)cap * sizeof *a);
    *n = 0;
    for (int b = 0; b < t->n && a; b++) {
        const r3d_airway_branch *x = &t->b[b];
        if (x->generation < 1)
            continue;
        int leaf = 1;
        for (int q = 0; q < t->n && leaf; q++)
            leaf = t->b[q].parent != b;
        int nside = x->generation <= LOCAL_SIDE_MAX_GEN || seg_airway_continues_trunk(t, b)
                        ? (int)ceil(x->length_mm / LOCAL_SIDE_STEP_MM) - 1
                        : 0;
        for (int s = leaf ? 0 : 1; s <= nside; s++) {
            anchor *q = more_anchors(&a, n, &cap);
            if (!q)
                return NULL;
            q->b = b, q->side = s > 0, q->tip = 0;
            for (int r = 0; r < 3; r++)
                q->pt[r] = s == 0 ? x->end[r]
                                  : x->start[r] + (x->end[r] - x->start[r]) * s / (nside + 1.0);
        }
    }
    /* The far ends of offshoots folded into a branch: a side branch whose
     * lumen narrows below the threshold a few mm out; from the branch's
     * axis that stub is wall (chest CT: the left basal trunk's posterior
     * offshoot at z = -48 mm, 4 mm long, and the 3 mm tube with a wall
     * that goes on from it down to z = -66 mm). */
    for (int q = 0; q < t->n_tips && a; q++) {
        if (t->b[t->tips[q].branch].generation < 1)
            continue;
        anchor *x = more_anchors(&a, n, &cap);
        if (!x)
            return NULL;
        x->b = t->tips[q].branch, x->side = 1, x->tip = 1;
        memcpy(x->pt, t->tips[q].pos, sizeof x->pt);
    }
    return a;
}

/* The Frangi filter of an anchor's box, kept across rounds: the box holds
 * only the growth image g, which the rounds do not change, so an anchor
 * whose grid point was tried before needs no new filter run (chest CT: 3
 * rounds, most anchors on unchanged branches; the filter was 2.7 s of the
 * airway's CPU time). Entries are found by grid index; a few hundred, so a
 * linear search. */
typedef struct frangi_cache {
    int64_t *at;
    r3d_volume **fr;
    int n, cap;
} frangi_cache;

static void frangi_cache_free(frangi_cache *fc)
{
    for (int q = 0; q < fc->n; q++)
        r3d_volume_free(fc->fr[q]);
    free(fc->at), free(fc->fr);
}

/* The Frangi contrast of box (centred on grid index e); borrowed from the
 * cache, NULL with err set on failure. */
static const r3d_volume *box_frangi(frangi_cache *fc, int64_t e, const r3d_volume *box,
                                    r3d_error *err)
{
    for (int q = 0; q < fc->n; q++)
        if (fc->at[q] == e)
            return fc->fr[q];
    if (fc->n == fc->cap) {
        int cap = fc->cap ? 2 * fc->cap : 64;
        int64_t *at = realloc(fc->at, (size_t)cap * sizeof *at);
        if (at)
            fc->at = at;
        r3d_volume **fr = at ? realloc(fc->fr, (size_t)cap * sizeof *fr) : NULL;
        if (!fr)
            return r3d_fail(err, R3D_ENOMEM, "airway: out of memory"), NULL;
        fc->fr = fr, fc->cap = cap;
    }
    static const double sig[3] = {0.8, 1.2, 1.8};
    r3d_volume *fr = r3d_image_frangi_c(box, sig, 3, 0, LOCAL_FRANGI_C, err);
    if (!fr)
        return NULL;
    fc->at[fc->n] = e, fc->fr[fc->n++] = fr;
    return fr;
}

static r3d_status grow_leaves(seg_ctx *c, const r3d_volume *g, r3d_volume *mask,
                              const r3d_airway_tree *t, frangi_cache *fc, int64_t *added,
                              r3d_error *err)
{
    const r3d_volume *ct = c->ct;
    int64_t nx = ct->dim[0], ny = ct->dim[1], nz = ct->dim[2];
    const double *sp = ct->spacing_mm;
    int64_t r[3];
    for (int a = 0; a < 3; a++)
        r[a] = (int64_t)ceil(LOCAL_MM / sp[a]);
    int64_t bdim[4] = {2 * r[0] + 1, 2 * r[1] + 1, 2 * r[2] + 1, 1};
    r3d_volume *box = r3d_volume_new(bdim, R3D_F32, err);
    if (!box)
        return err->code;
    for (int a = 0; a < 3; a++) {
        box->spacing_mm[a] = sp[a];
        box->ijk_to_lps[a][a] = sp[a];
    }
    r3d_volume *cand = r3d_volume_new(bdim, R3D_F32, err);
    int64_t bn = bdim[0] * bdim[1] * bdim[2];
    uint8_t *mk = malloc((size_t)bn);
    if (!cand || !mk) {
        r3d_volume_free(box), r3d_volume_free(cand), free(mk);
        return r3d_fail(err, R3D_ENOMEM, "airway: out of memory");
    }
    memcpy(cand->spacing_mm, box->spacing_mm, sizeof box->spacing_mm);
    memcpy(cand->ijk_to_lps, box->ijk_to_lps, sizeof box->ijk_to_lps);
    uint8_t *m = mask->voxels;
    const float *gv = g->voxels;
    float *bv = box->voxels;
    double vv = sp[0] * sp[1] * sp[2];
    *added = 0;
    /* Anchors: the end of every terminal branch, and (side branches leave
     * along the way) points every LOCAL_SIDE_STEP_MM along every branch of
     * generations 1..LOCAL_SIDE_MAX_GEN (where the lobar, segmental and
     * sub-segmental bronchi leave). Every round tries them all again: the
     * growth of one anchor changes the seeds and walls of its neighbours
     * (skipping anchors tried before lost 2-3 segmental bronchi). */
    int na = 0;
    anchor *an = make_anchors(t, &na);
    if (!an) {
        r3d_volume_free(box), r3d_volume_free(cand), free(mk);
        return r3d_fail(err, R3D_ENOMEM, "airway: out of memory");
    }
    for (int ai = 0; ai < na; ai++) {
        int b = an[ai].b, part = an[ai].side;
        double pt[3];
        memcpy(pt, an[ai].pt, sizeof pt);
        int64_t e = lps_to_index(ct, pt);
        if (e < 0)
            continue;
        int64_t ei = e % nx, ej = (e / nx) % ny, ek = e / (nx * ny);
        /* Box: the growth image; marks: 1 seed (existing airway within 3 mm
         * of the branch end), 2 other existing airway (a wall: growth must
         * not run back up the tree). */
        int64_t seeds[64];
        int ns = 0;
        for (int64_t k = 0; k < bdim[2]; k++)
            for (int64_t j = 0; j < bdim[1]; j++)
                for (int64_t i = 0; i < bdim[0]; i++) {
                    int64_t gi = ei + i - r[0], gj = ej + j - r[1], gk = ek + k - r[2];
                    int64_t bi = i + bdim[0] * (j + bdim[1] * k);
                    mk[bi] = 0;
                    if (gi < 0 || gj < 0 || gk < 0 || gi >= nx || gj >= ny || gk >= nz) {
                        bv[bi] = 1000;
                        continue;
                    }
                    int64_t p = gi + nx * (gj + ny * gk);
                    bv[bi] = gv[p];
                    if (m[p]) {
                        double dx = (i - r[0]) * sp[0], dy = (j - r[1]) * sp[1],
                               dz = (k - r[2]) * sp[2];
                        if (dx * dx + dy * dy + dz * dz <= 9.0 && ns < 64) {
                            seeds[ns++] = bi;
                            mk[bi] = 1;
                        } else
                            mk[bi] = 2;
                    }
                }
        if (ns == 0)
            continue;
        /* A bridge: non-airway voxels darker than -700 HU within
         * LOCAL_BRIDGE_MM of a seed (partial volume at a narrowing can
         * break the lumen for a voxel or two). */
        {
            int64_t br[3];
            for (int a = 0; a < 3; a++)
                br[a] = (int64_t)ceil(LOCAL_BRIDGE_MM / sp[a]);
            for (int s_ = 0; s_ < ns; s_++) {
                int64_t i0 = seeds[s_] % bdim[0], j0 = (seeds[s_] / bdim[0]) % bdim[1],
                        k0 = seeds[s_] / (bdim[0] * bdim[1]);
                for (int64_t k = k0 - br[2]; k <= k0 + br[2]; k++)
                    for (int64_t j = j0 - br[1]; j <= j0 + br[1]; j++)
                        for (int64_t i = i0 - br[0]; i <= i0 + br[0]; i++) {
                            if (i < 0 || j < 0 || k < 0 || i >= bdim[0] || j >= bdim[1] || k >= bdim[2])
                                continue;
                            double dx = (i - i0) * sp[0], dy = (j - j0) * sp[1], dz = (k - k0) * sp[2];
                            int64_t q = i + bdim[0] * (j + bdim[1] * k);
                            if (!mk[q] && bv[q] <= -700 &&
                                dx * dx + dy * dy + dz * dz <= LOCAL_BRIDGE_MM * LOCAL_BRIDGE_MM)
                                mk[q] = 3;
                        }
            }
        }
        /* Dark-tube contrast (Frangi) of the box, once per grid point. */
        const r3d_volume *fr = box_frangi(fc, e, box, err);
        if (!fr) {
            r3d_volume_free(box), r3d_volume_free(cand);
            free(mk), free(an);
            return err->code;
        }
        const float *fv = fr->voxels;
        r3d_volume *best = NULL;
        float *cv = cand->voxels;
        for (double vt = LOCAL_VT_MAX; vt >= LOCAL_VT_MIN - 1e-9; vt -= 0.05) {
            for (int64_t q = 0; q < bn; q++)
                cv[q] = mk[q] == 1   ? -2000.0f
                        : mk[q] == 2 ? 1000.0f
                        : (mk[q] == 3 || bv[q] <= LOCAL_T0 || (bv[q] <= -650 && fv[q] >= vt))
                            ? -1500.0f
                            : 1000.0f;
            r3d_grow_opts go = {-3000, -1000, 26, (int64_t)(LOCAL_MAX_MM3 / vv) + ns, 3.0};
            int leaked = 0;
            r3d_volume *lm = r3d_image_region_grow(cand, seeds, ns, &go, &leaked, err);
            if (!lm) {
                r3d_volume_free(best), r3d_volume_free(box), r3d_volume_free(cand);
                free(mk), free(an);
                return err->code;
            }
            /* A tube, not a bush: the new voxels must fit a tube no wider
             * than the branch they continue, as long as they reach. */
            int tube = 1;
            if (!leaked) {
                const uint8_t *lv = lm->voxels;
                int64_t nn = 0;
                double reach = 0;
                for (int64_t q = 0; q < bn; q++) {
                    if (!lv[q] || mk[q] == 1)
                        continue;
                    nn++;
                    double dx = (q % bdim[0] - r[0]) * sp[0], dy = ((q / bdim[0]) % bdim[1] - r[1]) * sp[1],
                           dz = (q / (bdim[0] * bdim[1]) - r[2]) * sp[2];
                    double d = sqrt(dx * dx + dy * dy + dz * dz);
                    if (d > reach)
                        reach = d;
                }
                double rad = fmax(t->b[b].radius_mm * (part ? LOCAL_SIDE_RADIUS : 1.0), 1.0);
                tube = nn == 0 || nn * vv <= LOCAL_TUBE_SLACK * M_PI * rad * rad * reach;
            }
            if (!tube)
                leaked = 1;
            if (leaked) {
                r3d_volume_free(lm);
                break;
            }
            r3d_volume_free(best);
            best = lm;
        }
        if (best && an[ai].tip && !tip_growth_is_lumen(best->voxels, mk, bv, bdim, vv)) {
            r3d_volume_free(best);
            best = NULL;
        }
        if (best) {
            const uint8_t *lv = best->voxels;
            for (int64_t k = 0; k < bdim[2]; k++)
                for (int64_t j = 0; j < bdim[1]; j++)
                    for (int64_t i = 0; i < bdim[0]; i++) {
                        int64_t bi = i + bdim[0] * (j + bdim[1] * k);
                        if (!lv[bi] || mk[bi] == 1 || mk[bi] == 2)
                            continue;
                        int64_t p = (ei + i - r[0]) + nx * ((ej + j - r[1]) + ny * (ek + k - r[2]));
                        if (!m[p])
                            m[p] = 1, (*added)++;
                    }
            r3d_volume_free(best);
        }
    }
    r3d_volume_free(box), r3d_volume_free(cand);
    free(mk), free(an);
    return R3D_OK;
}

r3d_status seg_airway(seg_ctx *c, r3d_error *err)
{
    c->seed = -1;
    double ci = 0, cj = 0;
    int64_t klo = find_trachea(c, &ci, &cj, err);
    if (klo == -2)
        return err->code;
    if (klo < 0)
        return R3D_OK; /* no trachea in view: airways absent */
    const r3d_volume *ct = c->ct;
    int64_t nx = ct->dim[0], ny = ct->dim[1], nz = ct->dim[2], ns = nx * ny, n = ns * nz;
    /* Full-grid seed: the darkest voxel near the section's centre, in the
     * middle full slice of the coarse slice. */
    int64_t k = klo * c->f[2] + c->f[2] / 2;
    if (k >= nz)
        k = nz - 1;
    int64_t i0 = (int64_t)(ci * c->f[0] + c->f[0] / 2), j0 = (int64_t)(cj * c->f[1] + c->f[1] / 2);
    const float *hu = ct->voxels;
    int64_t seed = -1;
    float best = 1e9f;
    int64_t rad = (int64_t)ceil(4.0 / ct->spacing_mm[0]);
    for (int64_t j = j0 - rad; j <= j0 + rad; j++)
        for (int64_t i = i0 - rad; i <= i0 + rad; i++)
            if (i >= 0 && j >= 0 && i < nx && j < ny && hu[i + nx * j + ns * k] < best)
                best = hu[i + nx * j + ns * k], seed = i + nx * j + ns * k;
    if (seed < 0 || best > -900)
        return R3D_OK;

    /* Growth image: HU inside the body, a wall outside. */
    r3d_volume *body = r3d_volume_new_like(ct, R3D_U8, err);
    r3d_volume *g = body ? r3d_volume_new_like(ct, R3D_F32, err) : NULL;
    if (!g) {
        r3d_volume_free(body);
        return err->code;
    }
    seg_upsample_into(c->body_lo, c->f, body);
    const uint8_t *bm = body->voxels;
    float *gv = g->voxels;
    for (int64_t p = 0; p < n; p++)
        gv[p] = bm[p] ? hu[p] : 1000.0f;
    r3d_volume_free(body);

    double vml = seg_voxel_ml(ct);
    r3d_volume *keep = NULL;
    int64_t keep_n = 0;
    double keep_t = 0;
    int leaked_any = 0;
    for (double t = -960; t <= -780; t += 20) {
        r3d_grow_opts go = {-2000, t, 26, (int64_t)(400.0 / vml), 0};
        int leaked = 0;
        r3d_volume *m = r3d_image_region_grow(g, &seed, 1, &go, &leaked, err);
        if (!m) {
            r3d_volume_free(g), r3d_volume_free(keep);
            return err->code;
        }
        int64_t cnt = seg_count(m, 0);
        int blown = keep && cnt > 2.0 * keep_n && cnt * vml > 60;
        if (leaked || blown) {
            leaked_any = 1;
            r3d_volume_free(m);
            if (keep)
                break;
            continue; /* even the darkest step leaked: try none brighter */
        }
        r3d_volume_free(keep);
        keep = m, keep_n = cnt, keep_t = t;
        seg_progress(c, "airway", (int64_t)(t + 960), 180);
    }
    if (!keep || keep_n * vml < 2.0) {
        r3d_volume_free(keep), r3d_volume_free(g);
        return R3D_OK;
    }
    c->airway_threshold = keep_t;
    c->airway_leaked = leaked_any;

    /* The tree from the top of the grown airway. */
    const uint8_t *m = keep->voxels;
    int64_t ktop = -1;
    for (int64_t kk = nz - 1; kk >= 0 && ktop < 0; kk--)
        for (int64_t p = 0; p < ns; p++)
            if (m[ns * kk + p]) {
                ktop = kk;
                break;
            }
    int64_t nseed = 0;
    for (int64_t p = 0; p < ns; p++)
        nseed += m[ns * ktop + p] != 0;
    int64_t *seeds = malloc((size_t)nseed * sizeof *seeds);
    if (!seeds) {
        r3d_volume_free(keep), r3d_volume_free(g);
        return r3d_fail(err, R3D_ENOMEM, "airway: out of memory");
    }
    nseed = 0;
    for (int64_t p = 0; p < ns; p++)
        if (m[ns * ktop + p])
            seeds[nseed++] = ns * ktop + p;
    r3d_volume *branch_of = NULL;
    r3d_status st = r3d_airway_tree_build(keep, seeds, (int)nseed, NULL, &c->tree, &branch_of, err);
    frangi_cache fc = {0};
    for (int round = 0; round < LOCAL_ROUNDS && st == R3D_OK; round++) {
        int64_t added = 0;
        st = grow_leaves(c, g, keep, &c->tree, &fc, &added, err);
        if (st != R3D_OK || added == 0)
            break;
        seg_progress(c, "airway", 180, 180);
        r3d_airway_tree_free(&c->tree);
        r3d_volume_free(branch_of);
        branch_of = NULL;
        st = r3d_airway_tree_build(keep, seeds, (int)nseed, NULL, &c->tree, &branch_of, err);
    }
    frangi_cache_free(&fc);
    free(seeds);
    r3d_volume_free(g);
    if (st != R3D_OK) {
        r3d_volume_free(keep), r3d_volume_free(branch_of);
        return st;
    }
    /* Airway label = generation + 1 of the voxel's branch. */
    uint8_t *out = keep->voxels;
    const int32_t *bo = branch_of->voxels;
    for (int64_t p = 0; p < n; p++) {
        if (!out[p])
            continue;
        int b = bo[p] - 1;
        int gen = b >= 0 ? c->tree.b[b].generation : 0;
        out[p] = (uint8_t)(gen + 1 > 250 ? 250 : gen + 1);
    }
    c->branch_of = branch_of;
    c->seed = seed;
    c->airway = keep;
    return R3D_OK;
}

/* seg_phantoms.h - synthetic CTs and masks with known answers for the
 * segmentation and analysis tests: capsule-built tube trees with known
 * generations, spheres as nodules, and a small chest (body, two lungs that
 * may touch at the front, trachea and main bronchi, spine, a nodule).
 * Geometry: identity directions, so LPS = (i, j, k) * spacing + origin:
 * +i is the patient's left, +j posterior, +k superior. */
#ifndef R3D_SEG_PHANTOMS_H
#define R3D_SEG_PHANTOMS_H

#include "r3d/r3d.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline r3d_volume *ph_volume(int64_t nx, int64_t ny, int64_t nz, double sp, r3d_dtype dt)
{
    int64_t dim[4] = {nx, ny, nz, 1};
    r3d_volume *v = r3d_volume_new(dim, dt, NULL);
    if (!v)
        return NULL;
    for (int a = 0; a < 3; a++) {
        v->ijk_to_lps[a][a] = sp;
        v->spacing_mm[a] = sp;
    }
    return v;
}

/* Position (mm) of voxel (i, j, k). */
static inline void ph_pos(const r3d_volume *v, int64_t i, int64_t j, int64_t k, double x[3])
{
    int64_t ijk[3] = {i, j, k};
    for (int r = 0; r < 3; r++) {
        x[r] = v->ijk_to_lps[r][3];
        for (int a = 0; a < 3; a++)
            x[r] += v->ijk_to_lps[r][a] * ijk[a];
    }
}

/* Distance from x to the segment a-b. */
static inline double ph_seg_dist(const double x[3], const double a[3], const double b[3])
{
    double ab[3], ax[3], t = 0, l2 = 0;
    for (int r = 0; r < 3; r++) {
        ab[r] = b[r] - a[r];
        ax[r] = x[r] - a[r];
        t += ab[r] * ax[r];
        l2 += ab[r] * ab[r];
    }
    t = l2 > 0 ? fmax(0, fmin(1, t / l2)) : 0;
    double d = 0;
    for (int r = 0; r < 3; r++) {
        double e = ax[r] - t * ab[r];
        d += e * e;
    }
    return sqrt(d);
}

/* A tube (capsule) from a to b of radius r: every voxel of v within it gets
 * value (uint8 or float32 volume). */
static inline void ph_capsule(r3d_volume *v, const double a[3], const double b[3], double r,
                              double value)
{
    double sp = v->spacing_mm[0];
    int64_t lo[3], hi[3];
    for (int q = 0; q < 3; q++) {
        double mn = fmin(a[q], b[q]) - r - sp, mx = fmax(a[q], b[q]) + r + sp;
        lo[q] = (int64_t)floor((mn - v->ijk_to_lps[q][3]) / sp);
        hi[q] = (int64_t)ceil((mx - v->ijk_to_lps[q][3]) / sp);
        if (lo[q] < 0) lo[q] = 0;
        if (hi[q] > v->dim[q] - 1) hi[q] = v->dim[q] - 1;
    }
    for (int64_t k = lo[2]; k <= hi[2]; k++)
        for (int64_t j = lo[1]; j <= hi[1]; j++)
            for (int64_t i = lo[0]; i <= hi[0]; i++) {
                double x[3];
                ph_pos(v, i, j, k, x);
                if (ph_seg_dist(x, a, b) > r)
                    continue;
                int64_t p = i + v->dim[0] * (j + v->dim[1] * k);
                if (v->dtype == R3D_U8)
                    ((uint8_t *)v->voxels)[p] = (uint8_t)value;
                else
                    ((float *)v->voxels)[p] = (float)value;
            }
}

/* Ellipsoid with centre c and semi-axes s: value inside. */
static inline void ph_ellipsoid(r3d_volume *v, const double c[3], const double s[3], double value)
{
    int64_t n = r3d_volume_nvox(v);
    for (int64_t p = 0; p < n; p++) {
        int64_t i = p % v->dim[0], j = (p / v->dim[0]) % v->dim[1], k = p / (v->dim[0] * v->dim[1]);
        double x[3], d = 0;
        ph_pos(v, i, j, k, x);
        for (int r = 0; r < 3; r++)
            d += (x[r] - c[r]) * (x[r] - c[r]) / (s[r] * s[r]);
        if (d <= 1) {
            if (v->dtype == R3D_U8)
                ((uint8_t *)v->voxels)[p] = (uint8_t)value;
            else
                ((float *)v->voxels)[p] = (float)value;
        }
    }
}

/* ---- a tube tree with known generations --------------------------------- */

/* Binary tree: a branch of generation g from a in direction d (unit), of
 * length len and radius r, splits into two children turned +-angle about
 * the axis `turn` (alternating so the tree spreads in 3D), down to
 * generation gmax. Returns the number of branches drawn. */
static inline int ph_tree(r3d_volume *m, const double a[3], const double d[3], double len,
                          double r, int g, int gmax, int turn)
{
    double b[3];
    for (int q = 0; q < 3; q++)
        b[q] = a[q] + d[q] * len;
    ph_capsule(m, a, b, r, 1);
    if (g == gmax)
        return 1;
    int n = 1;
    double ang = 0.6; /* radians, about 34 degrees off the parent axis */
    for (int s = -1; s <= 1; s += 2) {
        double c[3];
        /* rotate d about the x (turn 0) or y (turn 1) axis by s*ang */
        double cs = cos(s * ang), sn = sin(s * ang);
        if (turn == 0) {
            c[0] = d[0];
            c[1] = d[1] * cs - d[2] * sn;
            c[2] = d[1] * sn + d[2] * cs;
        } else {
            c[0] = d[0] * cs + d[2] * sn;
            c[1] = d[1];
            c[2] = -d[0] * sn + d[2] * cs;
        }
        n += ph_tree(m, b, c, len * 0.8, r * 0.75, g + 1, gmax, !turn);
    }
    return n;
}

/* Cheap deterministic noise in [-amp, amp]. */
/* The voxels of the topmost slice of mask m that holds any (seeds at the
 * top of a tree phantom, e.g. the trachea's cut end); *n how many. */
static inline int64_t *ph_top_seeds(const r3d_volume *m, int *n)
{
    int64_t nx = m->dim[0], ns = nx * m->dim[1], k = m->dim[2] - 1;
    const uint8_t *v = m->voxels;
    int64_t *s = malloc((size_t)ns * sizeof *s);
    *n = 0;
    for (; k >= 0 && *n == 0; k--)
        for (int64_t p = 0; p < ns; p++)
            if (v[ns * k + p])
                s[(*n)++] = ns * k + p;
    return s;
}

static inline float ph_noise(uint32_t *state, double amp)
{
    *state = *state * 1664525u + 1013904223u;
    return (float)((((*state >> 8) & 0xffff) / 65535.0 * 2 - 1) * amp);
}

/* ---- a small chest ------------------------------------------------------------ */

typedef struct ph_chest {
    int joined;          /* the lungs touch at the front */
    int with_lungs;      /* 0: an abdomen-like slab (no lungs, no airway) */
    double nodule_r;     /* radius (mm) of a solid nodule in the right lung, 0 = none */
    double nodule_c[3];  /* its centre (filled in) */
} ph_chest;

/* 2 mm voxels, 150 x 120 x 100 (300 x 240 x 200 mm), origin so the centre
 * is at (0, 0, 0). HU: air -1000 outside, soft tissue 40 in an elliptic
 * body, lungs -850 (ellipsoids left and right), trachea -1000 from the top
 * to a carina, main bronchi into each lung, a spine cylinder of 700 HU
 * behind, optional nodule; +-15 HU noise. Truth masks (uint8, may be NULL):
 * lung 1 = right, 2 = left. */
static inline r3d_volume *ph_chest_ct(ph_chest *o, r3d_volume **lung_truth)
{
    const double sp = 2.0;
    r3d_volume *v = ph_volume(150, 120, 100, sp, R3D_F32);
    if (!v)
        return NULL;
    for (int a = 0; a < 3; a++)
        v->ijk_to_lps[a][3] = -(v->dim[a] - 1) * sp / 2;
    strcpy(v->acq.modality, "CT");
    int64_t n = r3d_volume_nvox(v);
    float *f = v->voxels;
    for (int64_t p = 0; p < n; p++)
        f[p] = -1000;
    /* body: elliptic cylinder 130 x 95 mm semi-axes, whole height */
    for (int64_t p = 0; p < n; p++) {
        int64_t i = p % v->dim[0], j = (p / v->dim[0]) % v->dim[1], k = p / (v->dim[0] * v->dim[1]);
        double x[3];
        ph_pos(v, i, j, k, x);
        if (x[0] * x[0] / (130.0 * 130) + x[1] * x[1] / (95.0 * 95) <= 1)
            f[p] = 40;
        (void)k;
    }
    /* spine: posterior cylinder */
    double s0[3] = {0, 60, -200}, s1[3] = {0, 60, 200};
    ph_capsule(v, s0, s1, 14, 700);
    r3d_volume *truth = NULL;
    if (o->with_lungs) {
        double gap = o->joined ? 0 : 18; /* medial gap between lungs */
        double ax = 55 - (o->joined ? 8 : 0);
        double cr[3] = {-(gap / 2 + ax), -5, -10}, cl[3] = {gap / 2 + ax, -5, -10};
        double sr[3] = {ax, 60, 80};
        ph_ellipsoid(v, cr, sr, -850);
        ph_ellipsoid(v, cl, sr, -850);
        if (o->joined) {
            /* the anterior junction: a bridge of lung in front of the midline */
            double b0[3] = {-20, -40, -10}, b1[3] = {20, -40, -10};
            ph_capsule(v, b0, b1, 9, -850);
        }
        if (lung_truth) {
            truth = ph_volume(v->dim[0], v->dim[1], v->dim[2], sp, R3D_U8);
            if (truth) {
                memcpy(truth->ijk_to_lps, v->ijk_to_lps, sizeof v->ijk_to_lps);
                for (int64_t p = 0; p < n; p++)
                    if (f[p] == -850) {
                        int64_t i = p % v->dim[0];
                        double x[3];
                        ph_pos(v, i, 0, 0, x);
                        ((uint8_t *)truth->voxels)[p] = x[0] < 0 ? 1 : 2; /* -x = right */
                    }
            }
        }
        /* trachea from the top down to the carina at z = 30, main bronchi */
        double t0[3] = {0, -5, 200}, t1[3] = {0, -5, 30};
        ph_capsule(v, t0, t1, 8, -1000);
        double rm[3] = {-45, -5, 0}, lm[3] = {45, -5, 0};
        ph_capsule(v, t1, rm, 5.5, -1000);
        ph_capsule(v, t1, lm, 5.5, -1000);
        if (o->nodule_r > 0) {
            double c[3] = {-(gap / 2 + ax) - 10, -25, 30};
            memcpy(o->nodule_c, c, sizeof c);
            double s[3] = {o->nodule_r, o->nodule_r, o->nodule_r};
            ph_ellipsoid(v, c, s, 30);
        }
    }
    uint32_t st = 12345;
    for (int64_t p = 0; p < n; p++)
        f[p] += ph_noise(&st, 15);
    if (lung_truth)
        *lung_truth = truth;
    return v;
}

/* ---- a small head ------------------------------------------------------------- */

/* 1.5 mm voxels, 100 x 128 x 140 (150 x 192 x 210 mm), origin at the
 * centre of the bottom slice's plane. HU: air -1000, soft tissue 40 in a
 * head ellipsoid (semi-axes 72 x 92 x 95 mm, centre 115 mm up) on a neck
 * cylinder (radius 55 mm, up to 110 mm); the skull a 6 mm shell of 1100 HU
 * (ellipsoids 64 x 84 x 87 to 70 x 90 x 93 mm) closed by a 6 mm plate at
 * its base (z 76-82 mm), brain 35 HU inside; in the neck a pharynx (air
 * tube, radius 7 mm, 25 mm in front of the midline, z 5-70 mm) and a
 * cervical spine (cylinder radius 12 mm, 25 mm behind, z 5-68 mm: 2 mm
 * cortex of 1000 HU, marrow 250 HU) and in front a mandible (a horseshoe
 * of 1100 HU, 28-35 mm around a point 15 mm in front of the axis, z 30-50
 * mm); +-15 HU noise. Truth (may be NULL): 1 skull, 2 spine, 3 mandible. */
static inline r3d_volume *ph_head_ct(r3d_volume **truth_out)
{
    const double sp = 1.5;
    r3d_volume *v = ph_volume(100, 128, 140, sp, R3D_F32);
    r3d_volume *tr = truth_out ? ph_volume(100, 128, 140, sp, R3D_U8) : NULL;
    if (!v || (truth_out && !tr)) {
        r3d_volume_free(v), r3d_volume_free(tr);
        return NULL;
    }
    for (int a = 0; a < 2; a++)
        v->ijk_to_lps[a][3] = -(v->dim[a] - 1) * sp / 2;
    if (tr)
        memcpy(tr->ijk_to_lps, v->ijk_to_lps, sizeof v->ijk_to_lps);
    strcpy(v->acq.modality, "CT");
    float *f = v->voxels;
    uint8_t *t = tr ? tr->voxels : NULL;
    int64_t nx = v->dim[0], ny = v->dim[1], n = r3d_volume_nvox(v);
    const double hz = 115;
    for (int64_t p = 0; p < n; p++) {
        double x[3];
        ph_pos(v, p % nx, (p / nx) % ny, p / (nx * ny), x);
        double e_in = x[0] * x[0] / (64.0 * 64) + x[1] * x[1] / (84.0 * 84) +
                      (x[2] - hz) * (x[2] - hz) / (87.0 * 87);
        double e_out = x[0] * x[0] / (70.0 * 70) + x[1] * x[1] / (90.0 * 90) +
                       (x[2] - hz) * (x[2] - hz) / (93.0 * 93);
        double e_head = x[0] * x[0] / (72.0 * 72) + x[1] * x[1] / (92.0 * 92) +
                        (x[2] - hz) * (x[2] - hz) / (95.0 * 95);
        double rn = hypot(x[0], x[1]);
        f[p] = -1000;
        if (e_head <= 1 || (rn <= 55 && x[2] <= 110))
            f[p] = 40;
        int skull = 0;
        if (x[2] >= 76) {
            if (e_out <= 1 && e_in > 1)
                skull = 1;
            else if (e_in <= 1)
                f[p] = x[2] <= 82 ? (skull = 1, 1100) : 35;
        }
        if (skull)
            f[p] = 1100;
        double rp = hypot(x[0], x[1] + 25), rs = hypot(x[0], x[1] - 25);
        if (rp <= 7 && x[2] >= 5 && x[2] <= 70)
            f[p] = -1000;
        int spine = rs <= 12 && x[2] >= 5 && x[2] <= 68;
        if (spine)
            f[p] = rs >= 10 || x[2] <= 7 || x[2] >= 66 ? 1000 : 250;
        double rm = hypot(x[0], x[1] + 15);
        int mandible = rm >= 28 && rm <= 35 && x[1] < -15 && x[2] >= 30 && x[2] <= 50;
        if (mandible)
            f[p] = 1100;
        if (t)
            t[p] = skull ? 1 : spine ? 2 : mandible ? 3 : 0;
    }
    uint32_t st = 777;
    for (int64_t p = 0; p < n; p++)
        f[p] += ph_noise(&st, 15);
    if (truth_out)
        *truth_out = tr;
    return v;
}

#endif

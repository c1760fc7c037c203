/* bones.c - the skeleton (coarse grid) and its parts.
 *
 * Bone is found by hysteresis: voxels within 40 mm of cortical bone (above
 * 350 HU) that are above 160 HU (a rib at 3 mm reaches 350 HU only here
 * and there along its length) - or, in the spine's region, within 25 mm
 * and above 100 HU: vertebral marrow is fainter, and an osteoporotic body's
 * shell seldom reaches 350 HU at 3 mm, so its centre lies far from any
 * cortical voxel - in components that hold cortical
 * bone and at least 0.2 mL, which keeps contrast-filled vessels and
 * calcified specks out. A contrast-filled aorta lying on the vertebrae
 * joins their component; it is told apart along the body axis (see
 * blood_by_bone: a vessel's column is even, a vertebra's is not) and
 * taken out. Parts, from position in each axial slice relative
 * to the body's centre (RAS grid: -i left, +j anterior):
 *   spine   - within 35 mm of the midline and behind the body's centre;
 *             closed by one coarse voxel and its marrow holes
 *             (slice-wise holes denser than 60 HU, so never the spinal
 *             canal) filled; the discs taken out (see disc_slices);
 *   sternum - within 25 mm of the midline, in front of it, at lung level;
 *   ribs    - the other pieces (3D components once spine and sternum are
 *             taken out) that come within 15 mm of a lung, or, away from
 *             the lungs, that are slender (under 500 mm^2 per slice on
 *             average, under 150 mm high), curve across the slice (wider
 *             than 30 mm and than 0.8 x their height: arm bones run along
 *             the body) and lie within 45 mm of the skin; either way at
 *             least half of a rib lies in the trunk (the largest piece of
 *             the body in each slice: an arm held beside the chest is not);
 *             ribs are closed and their marrow filled like the spine's;
 *             the spine region's bone nearer (through bone) to a rib than
 *             to the vertebral core (within 15 mm of the midline) is rib:
 *             its head and neck;
 *             a long bone touching a rib (deeper than RIB_THICK_MM inside)
 *             is split off to "bones";
 *   skull, mandible - on a head (see the block "A head" below);
 *   bones   - the rest (shoulder girdle, arms, pelvis, legs, skull).
 * Vertebra and rib numbering are not attempted. */
#include "seg_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BONE_WEAK_HU 160.0
#define BONE_SPINE_WEAK_HU 100.0
#define BONE_STRONG_HU 350.0
#define BONE_REACH_MM 40.0
#define BONE_SPINE_REACH_MM 25.0
#define MARROW_HU 60.0
#define RIB_THICK_MM 5.0
#define SPINE_CORE_MM 15.0
#define SCAPULA_LUNG_MM 20.0
#define SCAPULA_LUNG_FRAC 0.3
#define SCAPULA_LUNG_MM2 15000.0
#define SCAPULA_DX_MM 45.0
#define RIB_FAR_MM 15.0
#define STERNUM_DEEP_MM 60.0
#define CALC_MAX_ML 3.0
#define CALC_DEEP_MM 60.0
#define CALC_BEHIND_MM -30.0
#define CART_FRONT_FRAC 0.65
#define CART_LUNG_MM 20.0

typedef struct piece {
    int64_t n, k0, k1, i0, i1, j0, j1;
    double dsum; /* sum of depth below the skin */
    double ysum; /* sum of DY (mm in front of the slice's body centre) */
    int64_t in_trunk;
    int calcified;
    int near_lung;
} piece;

/* The 4-connected piece of one slice (nx x ny) that holds p0, over the
 * voxels that are not wall (wall: s == wall_value, or s != 0 when
 * wall_value < 0): its voxels into q (returns how many), marked in lab;
 * *hu_sum their HU sum, *border whether it touches the slice edge. */
static int64_t slice_piece(const uint8_t *s, const float *h, int64_t nx, int64_t ny,
                           int wall_value, int64_t p0, int32_t *lab, int64_t *q, double *hu_sum,
                           int *border)
{
    int64_t hd = 0, t = 0;
    *border = 0;
    *hu_sum = 0;
    q[t++] = p0;
    lab[p0] = 1;
    while (hd < t) {
        int64_t p = q[hd++], i = p % nx, j = p / nx;
        *hu_sum += h[p];
        if (i == 0 || j == 0 || i == nx - 1 || j == ny - 1)
            *border = 1;
        int64_t nb[4] = {i > 0 ? p - 1 : -1, i < nx - 1 ? p + 1 : -1,
                         j > 0 ? p - nx : -1, j < ny - 1 ? p + nx : -1};
        for (int d = 0; d < 4; d++) {
            if (nb[d] < 0 || lab[nb[d]])
                continue;
            int wall = wall_value < 0 ? s[nb[d]] != 0 : s[nb[d]] == wall_value;
            if (!wall) {
                lab[nb[d]] = 1;
                q[t++] = nb[d];
            }
        }
    }
    return t;
}

/* Fill the slice-wise holes of label `value` whose mean HU is at least
 * min_hu (4-connected background pieces not touching the slice border). */
static void fill_dense_holes(uint8_t *b, const float *hu, int64_t nx, int64_t ny, int64_t nz,
                             uint8_t value, double min_hu)
{
    int64_t ns = nx * ny;
    int32_t *lab = malloc((size_t)ns * sizeof *lab);
    int64_t *q = malloc((size_t)ns * sizeof *q);
    if (!lab || !q) {
        free(lab), free(q);
        return;
    }
    for (int64_t k = 0; k < nz; k++) {
        uint8_t *s = b + ns * k;
        const float *h = hu + ns * k;
        memset(lab, 0, (size_t)ns * sizeof *lab);
        for (int64_t p0 = 0; p0 < ns; p0++) {
            if (s[p0] == value || lab[p0])
                continue;
            int border;
            double sum;
            int64_t t = slice_piece(s, h, nx, ny, value, p0, lab, q, &sum, &border);
            if (!border && sum / t >= min_hu)
                for (int64_t x = 0; x < t; x++)
                    s[q[x]] = value;
        }
    }
    free(lab), free(q);
}

/* The trunk: in each axial slice, the largest 4-connected piece of the
 * body (an arm held beside the chest is a piece of its own wherever air
 * parts it from the trunk). Marks 1 in trunk; 0 on failure. */
static int trunk_mask(const uint8_t *body, const float *hu, int64_t nx, int64_t ny, int64_t nz,
                      uint8_t *trunk)
{
    int64_t ns = nx * ny;
    int32_t *lab = malloc((size_t)ns * sizeof *lab);
    int64_t *q = malloc((size_t)ns * sizeof *q), *best = malloc((size_t)ns * sizeof *best);
    if (!lab || !q || !best) {
        free(lab), free(q), free(best);
        return 0;
    }
    for (int64_t k = 0; k < nz; k++) {
        const uint8_t *s = body + ns * k;
        int64_t nbest = 0;
        memset(lab, 0, (size_t)ns * sizeof *lab);
        for (int64_t p0 = 0; p0 < ns; p0++) {
            if (!s[p0] || lab[p0])
                continue;
            int border;
            double sum;
            int64_t t = slice_piece(s, hu + ns * k, nx, ny, 0, p0, lab, q, &sum, &border);
            if (t > nbest) {
                nbest = t;
                memcpy(best, q, (size_t)t * sizeof *q);
            }
        }
        for (int64_t x = 0; x < nbest; x++)
            trunk[ns * k + best[x]] = 1;
    }
    free(lab), free(q), free(best);
    return 1;
}

/* Contrast-filled blood next to the spine (the aorta lying on the
 * vertebral bodies, at 100-300 HU like marrow): voxels of labels 1 or 3
 * in b whose column (same i, j) stays within BLOOD_SD_HU of its mean over
 * +-BLOOD_HALF_MM along the body axis, between BLOOD_LO_HU and
 * BLOOD_HI_HU - a vertebral column always meets a disc's dip or an
 * endplate's peak over 40 mm, a vessel running along the body does not -
 * in axial pieces of at least BLOOD_MIN_MM2 that cortical bone does not
 * wall in (under BLOOD_WALLED_FRAC of their rim), grown in the slice by
 * BLOOD_GROW_MM through those labels' voxels under BONE_STRONG_HU (the
 * wall's blur; a calcified plaque stays bone). Marks 1 in vessel;
 * returns the number of voxels, -1 when out of memory. */
#define BLOOD_LO_HU 100.0
#define BLOOD_HI_HU 300.0
#define BLOOD_SD_HU 20.0
#define BLOOD_HALF_MM 20.0
#define BLOOD_MIN_MM2 150.0
#define BLOOD_GROW_MM 5.0
#define BLOOD_WALLED_FRAC 0.5
static int64_t blood_by_bone(const r3d_volume *lo, const uint8_t *b, uint8_t *vessel,
                             r3d_error *err)
{
    int64_t nx = lo->dim[0], ny = lo->dim[1], nz = lo->dim[2], ns = nx * ny, n = ns * nz;
    const float *hu = lo->voxels;
    double sx = lo->spacing_mm[0], sy = lo->spacing_mm[1];
    int64_t w = (int64_t)floor(BLOOD_HALF_MM / lo->spacing_mm[2] + 0.5), found = 0;
    r3d_volume *seed = r3d_volume_new_like(lo, R3D_U8, err);
    int32_t *lab = malloc((size_t)ns * sizeof *lab);
    int64_t *q = malloc((size_t)ns * sizeof *q);
    if (!seed || !lab || !q) {
        r3d_volume_free(seed), free(lab), free(q);
        return -1;
    }
    uint8_t *sd = seed->voxels;
    for (int64_t p = 0; p < n; p++) {
        if ((b[p] != 1 && b[p] != 3 && b[p] != 4) || hu[p] < BLOOD_LO_HU || hu[p] >= BLOOD_HI_HU)
            continue;
        int64_t k = p / ns, ka = k - w < 0 ? 0 : k - w, kb = k + w >= nz ? nz - 1 : k + w;
        double s1 = 0, s2 = 0;
        for (int64_t kk = ka; kk <= kb; kk++) {
            double v = hu[p % ns + ns * kk];
            s1 += v, s2 += v * v;
        }
        double m = s1 / (double)(kb - ka + 1), var = s2 / (double)(kb - ka + 1) - m * m;
        sd[p] = kb > ka && var < BLOOD_SD_HU * BLOOD_SD_HU;
    }
    /* Keep the axial pieces of vessel size. */
    for (int64_t k = 0; k < nz; k++) {
        uint8_t *s = sd + ns * k;
        memset(lab, 0, (size_t)ns * sizeof *lab);
        for (int64_t p0 = 0; p0 < ns; p0++) {
            if (!s[p0] || lab[p0])
                continue;
            int border;
            double sum;
            int64_t t = slice_piece(s, hu + ns * k, nx, ny, 0, p0, lab, q, &sum, &border);
            /* Marrow walled in by cortex (a fused sacrum, a vertebra with
             * no disc in reach) is no vessel: count the piece's outer
             * neighbours that are cortical bone. */
            int64_t rim = 0, cortex = 0;
            for (int64_t x = 0; x < t; x++) {
                int64_t pp = q[x], i = pp % nx, j = pp / nx;
                int64_t nb[4] = {i > 0 ? pp - 1 : -1, i < nx - 1 ? pp + 1 : -1,
                                 j > 0 ? pp - nx : -1, j < ny - 1 ? pp + nx : -1};
                for (int e = 0; e < 4; e++)
                    if (nb[e] >= 0 && !s[nb[e]]) {
                        rim++;
                        cortex += hu[ns * k + nb[e]] >= BONE_STRONG_HU;
                    }
            }
            if (t * sx * sy < BLOOD_MIN_MM2 || cortex >= BLOOD_WALLED_FRAC * (double)rim)
                for (int64_t x = 0; x < t; x++)
                    s[q[x]] = 0;
        }
    }
    free(lab), free(q);
    /* Grown face by face, BLOOD_GROW_MM in all, through bone-labelled
     * voxels under BONE_STRONG_HU: the wall's blur, not across the
     * vertebra's cortex into its marrow (taking the cortex would open
     * the ring that walls the marrow in). */
    int steps = (int)floor(BLOOD_GROW_MM / fmin(sx, sy) + 0.5);
    for (int64_t p = 0; p < n; p++)
        if (sd[p])
            vessel[p] = 1;
    for (int st = 0; st < steps; st++) {
        for (int64_t p = 0; p < n; p++) {
            if (vessel[p] || (b[p] != 1 && b[p] != 3 && b[p] != 4) || hu[p] >= BONE_STRONG_HU)
                continue;
            int64_t i = p % nx, j = (p / nx) % ny;
            if ((i > 0 && vessel[p - 1] == 1) || (i < nx - 1 && vessel[p + 1] == 1) ||
                (j > 0 && vessel[p - nx] == 1) || (j < ny - 1 && vessel[p + nx] == 1))
                vessel[p] = 2; /* this step's */
        }
        for (int64_t p = 0; p < n; p++)
            if (vessel[p] == 2)
                vessel[p] = 1;
    }
    r3d_volume_free(seed);
    for (int64_t p = 0; p < n; p++)
        if (vessel[p] && (b[p] == 1 || b[p] == 3 || b[p] == 4))
            found++;
        else
            vessel[p] = 0;
    return found;
}

/* Intervertebral discs (not bone; 80-110 HU, where fatty marrow may be
 * as faint): the axial slices whose vertebral core - spine voxels at
 * least DISC_CUT_CORE_MM inside the slice's spine - has a median HU more
 * than DISC_CUT_DIP_HU below the brightest core within DISC_CUT_REACH_MM
 * both above and below (the endplates round a disc; a side whose reach
 * leaves the volume with no slice in view does not count: the endplate
 * lies beyond the scan) and more than DISC_CUT_BELOW_HU below the median
 * slice's (a vertebral body's middle, between its endplates, is a dip too,
 * but at the spine's typical marrow). A disc is a few millimetres thick
 * and tilted, and thick slices blur it into their neighbours: a slice next
 * to a disc slice whose core is fainter than halfway between the disc's
 * and the brightest core beyond it within reach (the next endplate), and
 * fainter than the typical one by half DISC_CUT_BELOW_HU (a slice at the
 * marrow's level is the vertebral body, and the endplate may lie beyond
 * it), is more disc than bone and is a disc slice too. In disc slices spine
 * voxels under SEG_SPINE_EDGE_HU (the disc, not its bony rim: the spine's
 * edge threshold, shared with bones_full.c - at a disc's level no marrow lies
 * inside the rim to be kept below it) leave the bone and are marked in
 * out - in front of the bodies' back wall only: the arch behind it is
 * bone at every level (its marrow in the disc slices was lost before:
 * dicom vertebrae sensitivity 0.893 -> 0.916, Dice 0.797 -> 0.807).
 * Returns how many, -1 when out of memory.
 * (vertebrae.c finds the discs again, on the raw HU, to number the
 * vertebrae: its thresholds are its own.) */
#define DISC_CUT_CORE_MM 4.0
#define DISC_CUT_DIP_HU 80.0
#define DISC_CUT_BELOW_HU 40.0
#define DISC_CUT_REACH_MM 10.0
#define DISC_BODY_CORE_MM 8.0

/* The brightest slice median in k+dir .. k+dir*w (NAN ones skipped);
 * -INFINITY when none is in view, INFINITY when none is and the reach
 * leaves the volume. */
static double disc_side(const double *med, int64_t nz, int64_t k, int64_t w, int dir)
{
    double m = seg_side_max(med, nz, k, w, dir);
    if (m == -INFINITY && (k + dir * w < 0 || k + dir * w >= nz))
        m = INFINITY;
    return m;
}

static int64_t disc_slices(const r3d_volume *lo, uint8_t *b, uint8_t *out)
{
    int64_t nx = lo->dim[0], ny = lo->dim[1], nz = lo->dim[2], ns = nx * ny, found = 0;
    const float *hu = lo->voxels;
    int ri = (int)ceil(DISC_CUT_CORE_MM / lo->spacing_mm[0] - 1e-9);
    int rj = (int)ceil(DISC_CUT_CORE_MM / lo->spacing_mm[1] - 1e-9);
    int64_t w = (int64_t)floor(DISC_CUT_REACH_MM / lo->spacing_mm[2] + 0.5);
    if (w < 1)
        w = 1;
    double *med = malloc((size_t)nz * sizeof *med);
    float *buf = malloc((size_t)ns * sizeof *buf);
    uint8_t *disc = calloc((size_t)nz, 1);
    int64_t *back = malloc((size_t)nz * sizeof *back); /* the body's core's rearmost row */
    int64_t *rows = malloc((size_t)ny * sizeof *rows);
    if (!med || !buf || !disc || !back || !rows) {
        free(med), free(buf), free(disc), free(back), free(rows);
        return -1;
    }
    for (int64_t k = 0; k < nz; k++) {
        const uint8_t *s = b + ns * k;
        int64_t m = 0;
        memset(rows, 0, (size_t)ny * sizeof *rows);
        for (int64_t p = 0; p < ns; p++) {
            if (s[p] != 1)
                continue;
            int64_t i = p % nx, j = p / nx;
            int core = i >= ri && i < nx - ri && j >= rj && j < ny - rj;
            for (int dj = -rj; dj <= rj && core; dj++)
                for (int di = -ri; di <= ri && core; di++)
                    core = s[p + dj * nx + di] == 1;
            if (core) {
                buf[m++] = hu[ns * k + p];
                rows[j]++;
            }
        }
        /* The body's rows: DISC_BODY_CORE_MM of core or more across (an
         * arch is 5-10 mm thick, so its core, where it has one, is a few
         * mm across at most). */
        back[k] = ny;
        for (int64_t j = 0; j < ny; j++)
            if (rows[j] * lo->spacing_mm[0] >= DISC_BODY_CORE_MM) {
                back[k] = j;
                break;
            }
        if (m < 5) {
            med[k] = NAN;
            continue;
        }
        med[k] = seg_median(buf, m);
    }
    /* The spine's typical core: the median of the slices' medians. */
    int64_t nm = 0;
    for (int64_t k = 0; k < nz; k++)
        if (!isnan(med[k]))
            buf[nm++] = (float)med[k];
    if (nm < 3) {
        free(med), free(buf), free(disc), free(back), free(rows);
        return 0;
    }
    double typical = seg_median(buf, nm);
    for (int64_t k = 0; k < nz; k++)
        disc[k] = !isnan(med[k]) && med[k] < typical - DISC_CUT_BELOW_HU &&
                  med[k] < fmin(disc_side(med, nz, k, w, 1), disc_side(med, nz, k, w, -1)) -
                               DISC_CUT_DIP_HU;
    /* Each disc slice's neighbours, outwards while they are more disc than
     * bone (1: a slice found above, 2: joined). */
    for (int64_t k = 0; k < nz; k++) {
        if (disc[k] != 1)
            continue;
        for (int dir = -1; dir <= 1; dir += 2)
            for (int64_t q = k + dir; q >= 0 && q < nz && !disc[q] && !isnan(med[q]); q += dir) {
                double beyond = disc_side(med, nz, q, w, dir);
                if (!(med[q] < 0.5 * (med[k] + beyond) &&
                      med[q] < typical - 0.5 * DISC_CUT_BELOW_HU))
                    break;
                disc[q] = 2;
            }
    }
    /* The disc parts the bodies only: behind the bodies' back wall (the
     * rearmost row of their core, less the core's margin, in the nearest
     * slices of bone above and below - a disc's own core may be the arch
     * alone) the arch - pedicles, laminae, spinous process - goes on
     * through the disc's slices, marrow and all. */
    for (int64_t k = 0; k < nz; k++) {
        if (!disc[k])
            continue;
        int64_t bsum = 0, nb = 0;
        for (int dir = -1; dir <= 1; dir += 2)
            for (int64_t q = k + dir; q >= 0 && q < nz; q += dir)
                if (!disc[q] && back[q] < ny) {
                    bsum += back[q], nb++;
                    break;
                }
        int64_t bk = nb ? bsum / nb : back[k], j0 = bk < ny ? bk - rj : 0; /* no body: all */
        for (int64_t p = ns * k + (j0 > 0 ? j0 : 0) * nx; p < ns * (k + 1); p++)
            if (b[p] == 1 && hu[p] < SEG_SPINE_EDGE_HU)
                b[p] = 0, out[p] = 1, found++;
    }
    free(med), free(buf), free(disc), free(back), free(rows);
    return found;
}

/* Cranium slices: axial slices where bone encloses (4-connected, not
 * touching the slice border) a soft-tissue region of brain size - at least
 * CRANIUM_MIN_MM2 and CRANIUM_BODY_FRAC of the body's section, mean HU
 * between -100 and 120 (the ribcage encloses air-filled lungs, the pelvis
 * a small share of the body). Bone voxels bordering such a region are
 * marked 1 in ring (the vault); returns the number of cranium slices. */
#define CRANIUM_MIN_MM2 2000.0
#define CRANIUM_BODY_FRAC 0.4
static int64_t cranium_ring(const uint8_t *b, const float *hu, const uint8_t *body, int64_t nx,
                            int64_t ny, int64_t nz, double sx, double sy, uint8_t *ring)
{
    int64_t ns = nx * ny, slices = 0;
    int32_t *lab = malloc((size_t)ns * sizeof *lab);
    int64_t *q = malloc((size_t)ns * sizeof *q);
    if (!lab || !q) {
        free(lab), free(q);
        return 0;
    }
    for (int64_t k = 0; k < nz; k++) {
        const uint8_t *s = b + ns * k, *bd = body + ns * k;
        const float *h = hu + ns * k;
        int64_t body_n = 0;
        for (int64_t p = 0; p < ns; p++)
            body_n += bd[p] != 0;
        memset(lab, 0, (size_t)ns * sizeof *lab);
        int any = 0;
        for (int64_t p0 = 0; p0 < ns; p0++) {
            if (s[p0] || lab[p0])
                continue;
            int border;
            double sum;
            int64_t t = slice_piece(s, h, nx, ny, -1, p0, lab, q, &sum, &border);
            double area = t * sx * sy, mean = sum / t;
            if (border || area < CRANIUM_MIN_MM2 || t < CRANIUM_BODY_FRAC * body_n ||
                mean < -100 || mean > 120)
                continue;
            any = 1;
            for (int64_t x = 0; x < t; x++) {
                int64_t p = q[x], i = p % nx, j = p / nx;
                int64_t nb[4] = {i > 0 ? p - 1 : -1, i < nx - 1 ? p + 1 : -1,
                                 j > 0 ? p - nx : -1, j < ny - 1 ? p + nx : -1};
                for (int d = 0; d < 4; d++)
                    if (nb[d] >= 0 && s[nb[d]])
                        ring[ns * k + nb[d]] = 1;
            }
        }
        slices += any;
    }
    free(lab), free(q);
    return slices;
}

r3d_status seg_bones(seg_ctx *c, r3d_error *err)
{
    const r3d_volume *lo = c->lo;
    int64_t nx = lo->dim[0], ny = lo->dim[1], nz = lo->dim[2], ns = nx * ny, n = ns * nz;
    const float *hu = lo->voxels;
    const uint8_t *body = c->body_lo->voxels;
    double sx = lo->spacing_mm[0], sy = lo->spacing_mm[1], sz = lo->spacing_mm[2];
    double vml = seg_voxel_ml(lo);
    /* Each slice's body centre. */
    double *ci = calloc((size_t)nz, sizeof *ci), *cj = calloc((size_t)nz, sizeof *cj);
    if (!ci || !cj) {
        free(ci), free(cj);
        return r3d_fail(err, R3D_ENOMEM, "bones: out of memory");
    }
    for (int64_t k = 0; k < nz; k++) {
        double si = 0, sj = 0, cnt = 0;
        for (int64_t p = 0; p < ns; p++)
            if (body[ns * k + p])
                si += p % nx, sj += p / nx, cnt++;
        ci[k] = cnt ? si / cnt : nx / 2.0;
        cj[k] = cnt ? sj / cnt : ny / 2.0;
    }
#define DX(p) ((((p) % ns) % nx - ci[(p) / ns]) * sx)
#define DY(p) ((((p) % ns) / nx - cj[(p) / ns]) * sy) /* + anterior */
#define SPINE_REGION(p) (fabs(DX(p)) < 35 && DY(p) < 0)
    r3d_volume *strong = r3d_volume_new_like(lo, R3D_U8, err);
    r3d_volume *near = NULL, *bone = NULL, *cc = NULL;
    uint8_t *has_strong = NULL;
    /* per voxel: taken out of the bone (aorta, discs, calcified vessels,
     * cartilage), and kept out by bones_full.c */
    r3d_volume *ko = NULL;
    uint8_t *kept_out = NULL;
    uint8_t *skull_of = NULL; /* per voxel of a head: 5 skull, 6 mandible, 0 other */
    r3d_volume *bcc = NULL;
    int64_t nc = 0, *sizes = NULL;
    r3d_status st = R3D_OK;
    if (!strong)
        goto fail;
    uint8_t *s = strong->voxels;
    /* Distance to cortical bone: the complement's inside distance. */
    for (int64_t p = 0; p < n; p++)
        s[p] = !(body[p] && hu[p] >= BONE_STRONG_HU);
    if (!(near = r3d_image_distance(strong, err)) || !(bone = r3d_volume_new_like(lo, R3D_U8, err)))
        goto fail;
    for (int64_t p = 0; p < n; p++)
        s[p] = !s[p];
    uint8_t *b = bone->voxels;
    const float *nr = near->voxels;
    for (int64_t p = 0; p < n; p++)
        b[p] = body[p] &&
               (SPINE_REGION(p) ? nr[p] <= BONE_SPINE_REACH_MM && hu[p] >= BONE_SPINE_WEAK_HU
                                : nr[p] <= BONE_REACH_MM && hu[p] >= BONE_WEAK_HU);
    r3d_volume_free(near);
    near = NULL;
    if (!(cc = r3d_image_components(bone, 26, &nc, &sizes, err)))
        goto fail;
    if (!(has_strong = calloc((size_t)nc + 1, 1))) {
        st = r3d_fail(err, R3D_ENOMEM, "bones: out of memory");
        goto out;
    }
    const uint32_t *l = cc->voxels;
    for (int64_t p = 0; p < n; p++)
        if (l[p] && s[p])
            has_strong[l[p]] = 1;
    for (int64_t p = 0; p < n; p++)
        if (l[p] && (!has_strong[l[p]] || sizes[l[p]] * vml < 0.2))
            b[p] = 0;
    free(has_strong), free(sizes);
    has_strong = NULL, sizes = NULL;
    r3d_volume_free(cc), r3d_volume_free(strong);
    cc = strong = NULL;

    /* Lung extent in k. */
    int64_t lk0 = nz, lk1 = -1;
    const uint8_t *lung = c->lung_lo ? c->lung_lo->voxels : NULL;
    if (lung)
        for (int64_t p = 0; p < n; p++)
            if (lung[p]) {
                int64_t k = p / ns;
                if (k < lk0) lk0 = k;
                if (k > lk1) lk1 = k;
            }
    /* A head: the pieces of dense bone (above BONE_STRONG_HU, 6-connected,
     * so a joint's few millimetres of cartilage part them) that hold the
     * vault's ring are the skull; a piece of at least 3 mL in front of the
     * slice's centre that spans 50 mm across and lies above the lungs' top
     * (when there are lungs: a clavicle would pass) is the mandible; other pieces
     * of at least 1 mL stay themselves; the rest of the bone joins the
     * nearest of these through bone (seg_propagate). Pieces not skull or
     * mandible keep the rules below (cervical vertebrae are the pieces
     * behind the neck's centre), but with no lungs in view nothing is a
     * rib or the sternum. skull_of holds 5 skull, 6 mandible per voxel. */
    {
        uint8_t *ring = calloc((size_t)n, 1);
        if (!ring) {
            st = r3d_fail(err, R3D_ENOMEM, "bones: out of memory");
            goto out;
        }
        int64_t ncran = cranium_ring(b, hu, body, nx, ny, nz, sx, sy, ring);
        if (ncran * sz >= 6.0) {
            int64_t nb_c = 0, *csz = NULL;
            r3d_volume *dense = r3d_volume_new_like(lo, R3D_U8, err);
            r3d_volume *part = dense ? r3d_volume_new_like(lo, R3D_U8, err) : NULL;
            if (!part) {
                free(ring), r3d_volume_free(dense);
                goto fail;
            }
            uint8_t *dv = dense->voxels, *pv = part->voxels;
            for (int64_t p = 0; p < n; p++)
                dv[p] = b[p] && hu[p] >= BONE_STRONG_HU;
            bcc = r3d_image_components(dense, 6, &nb_c, &csz, err);
            uint8_t *kind = bcc ? calloc((size_t)nb_c + 1, 1) : NULL;
            double *cy = kind ? calloc(2 * ((size_t)nb_c + 1), sizeof *cy) : NULL, *ck = NULL;
            int64_t *ilo = cy ? malloc(((size_t)nb_c + 1) * sizeof *ilo) : NULL;
            int64_t *ihi = ilo ? calloc((size_t)nb_c + 1, sizeof *ihi) : NULL;
            if (!ihi) {
                if (bcc)
                    r3d_fail(err, R3D_ENOMEM, "bones: out of memory");
                free(ring), free(kind), free(cy), free(ilo), free(csz);
                r3d_volume_free(dense), r3d_volume_free(part);
                goto fail;
            }
            const uint32_t *bl = bcc->voxels;
            ck = cy + nb_c + 1;
            for (int64_t q = 0; q <= nb_c; q++)
                ilo[q] = nx;
            for (int64_t p = 0; p < n; p++) {
                if (!bl[p])
                    continue;
                int64_t i = (p % ns) % nx;
                if (ring[p] || (p % ns >= nx && ring[p - nx]) || (p % ns < ns - nx && ring[p + nx]) ||
                    (i > 0 && ring[p - 1]) || (i < nx - 1 && ring[p + 1]))
                    kind[bl[p]] = 5;
                cy[bl[p]] += DY(p);
                ck[bl[p]] += (double)(p / ns);
                if (i < ilo[bl[p]]) ilo[bl[p]] = i;
                if (i > ihi[bl[p]]) ihi[bl[p]] = i;
            }
            for (int64_t q = 1; q <= nb_c; q++)
                if (!kind[q] && csz[q] * vml >= 3.0 && cy[q] / csz[q] > 20 &&
                    ck[q] / csz[q] > lk1 && /* above the lungs: not a clavicle */
                    (ihi[q] - ilo[q] + 1) * sx >= 50)
                    kind[q] = 6;
                else if (!kind[q] && csz[q] * vml >= 1.0)
                    kind[q] = 7;
            for (int64_t p = 0; p < n; p++)
                pv[p] = bl[p] ? kind[bl[p]] : 0;
            for (int64_t p = 0; p < n; p++)
                dv[p] = b[p] != 0;
            seg_propagate(part, dense);
            skull_of = calloc((size_t)n, sizeof *skull_of);
            if (skull_of)
                for (int64_t p = 0; p < n; p++)
                    skull_of[p] = pv[p] == 5 || pv[p] == 6 ? pv[p] : 0;
            free(kind), free(cy), free(ilo), free(ihi), free(csz);
            r3d_volume_free(dense), r3d_volume_free(part);
            r3d_volume_free(bcc);
            bcc = NULL;
            if (!skull_of) {
                free(ring);
                st = r3d_fail(err, R3D_ENOMEM, "bones: out of memory");
                goto out;
            }
        }
        free(ring);
    }
    int head = skull_of != NULL;
    for (int64_t p = 0; p < n; p++) {
        if (!b[p])
            continue;
        int64_t k = p / ns;
        double dx = DX(p), dy = DY(p);
        if (head && skull_of[p])
            b[p] = (uint8_t)skull_of[p];
        else if (fabs(dx) < 35 && dy < 0)
            b[p] = 1;
        else if (k >= lk0 && k <= lk1 && fabs(dx) < 25 && dy > 0)
            b[p] = 3;
        else
            b[p] = 4;
    }
    free(skull_of);
    skull_of = NULL;
    /* The aorta on the spine: out of the bone, and kept out below. */
    if (!(ko = r3d_volume_new_like(lo, R3D_U8, err)))
        goto fail;
    kept_out = ko->voxels;
    if (blood_by_bone(lo, b, kept_out, err) < 0) {
        if (err && err->code == R3D_OK)
            r3d_fail(err, R3D_ENOMEM, "bones: out of memory");
        goto fail;
    }
    for (int64_t p = 0; p < n; p++)
        if (kept_out[p])
            b[p] = 0;
    /* Close the vertebrae's cortical ring (a voxel's gap at this grid),
     * then fill the marrow it encloses. */
    {
        r3d_volume *spm = r3d_volume_new_like(lo, R3D_U8, err);
        if (!spm)
            goto fail;
        uint8_t *sv = spm->voxels;
        for (int64_t p = 0; p < n; p++)
            sv[p] = b[p] == 1;
        r3d_volume *cl = r3d_image_close(spm, 1.01 * fmax(sx, sy), err);
        r3d_volume_free(spm);
        if (!cl)
            goto fail;
        const uint8_t *cv = cl->voxels;
        for (int64_t p = 0; p < n; p++)
            if (cv[p] && !b[p] && SPINE_REGION(p) && hu[p] >= MARROW_HU)
                b[p] = 1;
        r3d_volume_free(cl);
    }
    fill_dense_holes(b, hu, nx, ny, nz, 1, MARROW_HU);
    for (int64_t p = 0; p < n; p++)
        if (kept_out[p])
            b[p] = 0;
    if (disc_slices(lo, b, kept_out) < 0) {
        st = r3d_fail(err, R3D_ENOMEM, "bones: out of memory");
        goto out;
    }

    /* Ribs among the other pieces. */
    {
        r3d_volume *other = r3d_volume_new_like(lo, R3D_U8, err);
        r3d_volume *ld = NULL, *oc = NULL, *depth = NULL;
        piece *pc = NULL;
        if (!other)
            goto fail;
        uint8_t *ov = other->voxels;
        if (!(depth = r3d_image_distance(c->body_lo, err))) {
            r3d_volume_free(other);
            goto fail;
        }
        const float *dep = depth->voxels;
        /* The sternum lies under the skin of the chest: "sternum" deeper
         * than STERNUM_DEEP_MM is the aorta's calcified wall. */
        for (int64_t p = 0; p < n; p++) {
            if (b[p] == 3 && dep[p] > STERNUM_DEEP_MM)
                b[p] = 4;
            ov[p] = b[p] == 4;
        }
        oc = r3d_image_components(other, 26, &nc, NULL, err);
        if (oc && lung) {
            for (int64_t p = 0; p < n; p++)
                ov[p] = lung[p] != 0;
            ld = r3d_image_dilate(other, 15.0, err);
        }
        pc = oc && (!lung || ld) ? calloc((size_t)nc + 1, sizeof *pc) : NULL;
        uint8_t *trunk = pc ? calloc((size_t)n, 1) : NULL;
        if (trunk && !trunk_mask(body, hu, nx, ny, nz, trunk))
            free(trunk), trunk = NULL;
        if (!trunk) {
            free(pc), pc = NULL;
        }
        if (!pc) {
            if (oc && (!lung || ld))
                r3d_fail(err, R3D_ENOMEM, "bones: out of memory");
            r3d_volume_free(other), r3d_volume_free(ld), r3d_volume_free(oc);
            r3d_volume_free(depth);
            goto fail;
        }
        const uint32_t *ol = oc->voxels;
        const uint8_t *dv = ld ? ld->voxels : NULL;
        for (int64_t q = 1; q <= nc; q++)
            pc[q].k0 = nz, pc[q].i0 = nx, pc[q].j0 = ny;
        for (int64_t p = 0; p < n; p++) {
            if (!ol[p])
                continue;
            piece *x = &pc[ol[p]];
            int64_t k = p / ns;
            x->n++;
            x->dsum += dep[p];
            x->ysum += DY(p);
            int64_t i = (p % ns) % nx, j = (p % ns) / nx;
            if (k < x->k0) x->k0 = k;
            if (k > x->k1) x->k1 = k;
            if (i < x->i0) x->i0 = i;
            if (i > x->i1) x->i1 = i;
            if (j < x->j0) x->j0 = j;
            if (j > x->j1) x->j1 = j;
            if (dv && dv[p])
                x->near_lung = 1;
            x->in_trunk += trunk[p];
        }
        free(trunk);
        for (int64_t q = 1; q <= nc; q++) {
            piece *x = &pc[q];
            double h = (x->k1 - x->k0 + 1) * sz;
            double area = x->n * sx * sy * sz / h;
            /* A rib is a curved band: it spans more across the slice than
             * along the body axis (an arm bone the other way round). */
            double across = fmax((x->i1 - x->i0 + 1) * sx, (x->j1 - x->j0 + 1) * sy);
            int slender = area < 500 && h < 150 && x->dsum / x->n < 45 &&
                          across >= fmax(30.0, 0.8 * h);
            /* A small piece deep in the trunk and not behind the spine
             * (rib necks and transverse processes lie there, deep under
             * the back's muscles) is a calcified vessel - the aorta's
             * wall, the splenic artery: no bone lies there but the spine's
             * and the hips' (large pieces). */
            x->calcified = !head && x->n * vml < CALC_MAX_ML && x->dsum / x->n > CALC_DEEP_MM &&
                           x->ysum / x->n > CALC_BEHIND_MM && 2 * x->in_trunk >= x->n;
            x->near_lung = (x->near_lung || (slender && !(head && lk1 < 0))) &&
                           2 * x->in_trunk >= x->n && !x->calcified;
        }
        for (int64_t p = 0; p < n; p++)
            if (ol[p] && pc[ol[p]].near_lung)
                b[p] = 2;
            else if (ol[p] && pc[ol[p]].calcified)
                b[p] = 0, kept_out[p] = 1;
        free(pc);
        r3d_volume_free(other), r3d_volume_free(ld), r3d_volume_free(oc), r3d_volume_free(depth);
    }
    /* Ribs: the same closing and marrow filling as the spine (a rib's
     * cortex is thin, its marrow barely denser than muscle). */
    {
        r3d_volume *rm = r3d_volume_new_like(lo, R3D_U8, err);
        if (!rm)
            goto fail;
        uint8_t *rv = rm->voxels;
        for (int64_t p = 0; p < n; p++)
            rv[p] = b[p] == 2;
        r3d_volume *cl = r3d_image_close(rm, 1.01 * fmax(sx, sy), err);
        r3d_volume_free(rm);
        if (!cl)
            goto fail;
        const uint8_t *cv = cl->voxels;
        for (int64_t p = 0; p < n; p++)
            if (cv[p] && !b[p] && body[p] && hu[p] >= MARROW_HU)
                b[p] = 2;
        r3d_volume_free(cl);
        fill_dense_holes(b, hu, nx, ny, nz, 2, MARROW_HU);
    }
    /* Rib heads and necks: the spine's region reaches 35 mm from the
     * midline, where a rib's neck runs to its joints with the vertebra.
     * Spine-region bone goes to the nearer, through bone, of the
     * vertebral core (within SPINE_CORE_MM of the midline) and the ribs. */
    {
        r3d_volume *lab = r3d_volume_new_like(lo, R3D_U8, err);
        r3d_volume *within = lab ? r3d_volume_new_like(lo, R3D_U8, err) : NULL;
        if (!within) {
            r3d_volume_free(lab);
            goto fail;
        }
        uint8_t *lv = lab->voxels, *wv = within->voxels;
        int64_t nrib = 0;
        for (int64_t p = 0; p < n; p++) {
            wv[p] = b[p] == 1 || b[p] == 2;
            lv[p] = b[p] == 2 ? 2 : b[p] == 1 && fabs(DX(p)) < SPINE_CORE_MM ? 1 : 0;
            nrib += b[p] == 2;
        }
        if (nrib) {
            seg_propagate(lab, within);
            for (int64_t p = 0; p < n; p++)
                if (b[p] == 1 && lv[p] == 2)
                    b[p] = 2;
        }
        r3d_volume_free(lab), r3d_volume_free(within);
    }
    /* A scapula's blade lies on the ribs but outside them: in slices where
     * the lungs are wide (at least SCAPULA_LUNG_FRAC of their widest slice
     * and SCAPULA_LUNG_MM2: not the bases, where a lower rib may lie far
     * from the lung),
     * "rib" voxels farther than SCAPULA_LUNG_MM from a lung, behind the
     * body's centre and more than SCAPULA_DX_MM from the midline (not the
     * rib necks by the spine) seed "other bone" in the split below. */
    uint8_t *blade = NULL;
    if (lung && lk1 >= lk0) {
        r3d_volume *nl = r3d_volume_new_like(lo, R3D_U8, err), *ld = NULL;
        int64_t *area = calloc((size_t)nz, sizeof *area), amax = 0;
        if (nl && area) {
            uint8_t *nv = nl->voxels;
            for (int64_t p = 0; p < n; p++) {
                nv[p] = !lung[p];
                area[p / ns] += lung[p] != 0;
            }
            ld = r3d_image_distance(nl, err);
        }
        blade = ld ? calloc((size_t)n, 1) : NULL;
        if (!blade) {
            r3d_volume_free(nl), r3d_volume_free(ld), free(area);
            if (err && err->code == R3D_OK)
                r3d_fail(err, R3D_ENOMEM, "bones: out of memory");
            goto fail;
        }
        for (int64_t k = 0; k < nz; k++)
            if (area[k] > amax)
                amax = area[k];
        const float *lv = ld->voxels;
        for (int64_t p = 0; p < n; p++)
            blade[p] = b[p] == 2 && area[p / ns] >= SCAPULA_LUNG_FRAC * (double)amax &&
                       area[p / ns] * sx * sy >= SCAPULA_LUNG_MM2 &&
                       lv[p] > SCAPULA_LUNG_MM && fabs(DX(p)) > SCAPULA_DX_MM && DY(p) < 0;
        /* Costal cartilage: a rib's bone ends at the front of the chest
         * and cartilage, calcified and as dense as bone in older people,
         * runs on to the sternum and, below it, along the costal margin
         * in front of the liver and stomach. "Rib" voxels in the front
         * (more than CART_FRONT_FRAC of the way from the slice's body
         * centre to its front) and more than CART_LUNG_MM from a lung
         * (the bony ribs wrap the lungs) are cartilage: out of the bone.
         * The front is each slice's largest DY of the body (area[] is
         * reused: it is not needed any more). */
        double *front = calloc((size_t)nz, sizeof *front);
        if (!front) {
            r3d_volume_free(nl), r3d_volume_free(ld), free(area), free(blade);
            blade = NULL;
            st = r3d_fail(err, R3D_ENOMEM, "bones: out of memory");
            goto out;
        }
        for (int64_t p = 0; p < n; p++)
            if (body[p] && DY(p) > front[p / ns])
                front[p / ns] = DY(p);
        for (int64_t p = 0; p < n; p++)
            if (b[p] == 2 && !blade[p] && lv[p] > CART_LUNG_MM &&
                DY(p) > CART_FRONT_FRAC * front[p / ns])
                b[p] = 0, kept_out[p] = 1;
        free(front);
        r3d_volume_free(nl), r3d_volume_free(ld), free(area);
    }
#define RIB_CORE(p) (dv[p] > RIB_THICK_MM || (blade && blade[p]))
    /* A long bone touching a rib (the humerus lying on the chest wall)
     * joins its piece; no rib is that thick. Rib voxels within RIB_THICK_MM
     * of the surface everywhere; cores deeper than that seed "other bone",
     * rib voxels further than RIB_FAR_MM from such a core seed "rib", and
     * the rest of the piece goes to the nearer seed through bone. */
    {
        r3d_volume *rm = r3d_volume_new_like(lo, R3D_U8, err), *d = NULL, *near_core = NULL, *lab = NULL;
        if (!rm)
            goto fail;
        uint8_t *rv = rm->voxels;
        for (int64_t p = 0; p < n; p++)
            rv[p] = b[p] == 2;
        if (!(d = r3d_image_distance(rm, err))) {
            r3d_volume_free(rm), free(blade);
            goto fail;
        }
        const float *dv = d->voxels;
        int64_t ncore = 0;
        for (int64_t p = 0; p < n; p++)
            ncore += rv[p] && RIB_CORE(p);
        if (ncore) {
            lab = r3d_volume_new_like(lo, R3D_U8, err);
            r3d_volume *core = lab ? r3d_volume_new_like(lo, R3D_U8, err) : NULL;
            if (core) {
                uint8_t *cv = core->voxels;
                for (int64_t p = 0; p < n; p++)
                    cv[p] = rv[p] && RIB_CORE(p);
                near_core = r3d_image_dilate(core, RIB_FAR_MM, err);
            }
            r3d_volume_free(core);
            if (!near_core) {
                r3d_volume_free(rm), r3d_volume_free(d), r3d_volume_free(lab), free(blade);
                goto fail;
            }
            uint8_t *lv = lab->voxels;
            const uint8_t *nc_ = near_core->voxels;
            for (int64_t p = 0; p < n; p++)
                lv[p] = !rv[p] ? 0 : RIB_CORE(p) ? 4 : !nc_[p] ? 2 : 0;
            seg_propagate(lab, rm);
            for (int64_t p = 0; p < n; p++)
                if (rv[p] && lv[p] == 4)
                    b[p] = 4;
        }
        r3d_volume_free(rm), r3d_volume_free(d), r3d_volume_free(near_core);
        r3d_volume_free(lab), free(blade);
#undef RIB_CORE
    }
    for (int64_t p = 0; p < n; p++)
        if (kept_out[p])
            b[p] = 0;
    c->bone_out_lo = ko;
    free(ci), free(cj);
    c->bone_lo = bone;
    return R3D_OK;
fail:
    st = err ? err->code : R3D_ENOMEM;
out:
    free(ci), free(cj), free(has_strong), free(sizes), free(skull_of);
    r3d_volume_free(ko);
    r3d_volume_free(bcc);
    r3d_volume_free(strong), r3d_volume_free(near), r3d_volume_free(bone), r3d_volume_free(cc);
    return st;
#undef DX
#undef DY
#undef SPINE_REGION
}

void seg_bones_params(cJSON *par)
{
    cJSON_AddNumberToObject(par, "bone_hu_weak", BONE_WEAK_HU);
    cJSON_AddNumberToObject(par, "bone_hu_spine_weak", BONE_SPINE_WEAK_HU);
    cJSON_AddNumberToObject(par, "bone_hu_strong", BONE_STRONG_HU);
    cJSON_AddNumberToObject(par, "bone_reach_mm", BONE_REACH_MM);
    cJSON_AddNumberToObject(par, "bone_spine_reach_mm", BONE_SPINE_REACH_MM);
    cJSON_AddNumberToObject(par, "marrow_hu", MARROW_HU);
    cJSON_AddNumberToObject(par, "disc_dip_hu", DISC_CUT_DIP_HU);
    cJSON_AddNumberToObject(par, "disc_keep_hu", SEG_SPINE_EDGE_HU);
}

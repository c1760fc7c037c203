/* seg_internal.h - what the anatomy pipelines of src/seg share.
 *
 * Every pipeline works on the CT turned to the closest RAS orientation
 * (r3d_volume_reorient_ras: i runs to the patient's right, j to anterior,
 * k to superior), so "left", "front" and "up" are axis directions whatever
 * the input's orientation; the driver maps the labels back to the input
 * grid at the end. Coarse steps (body, lungs, bones, lobes) run on a
 * block-averaged copy of about 2 mm; airways, vessels and nodules on the
 * full grid inside the lungs' bounding box. */
#ifndef R3D_SEG_INTERNAL_H
#define R3D_SEG_INTERNAL_H

#include "r3d/analysis.h"
#include "r3d/image.h"
#include "r3d/seg.h"

#include <stdint.h>

/* The spine's bone edge (HU): bones_full.c keeps a vertebra's full-grid
 * voxels from it up, and bones.c cuts a disc slice's spine voxels below it
 * (the disc, not its bony rim) - one level, so the two agree. */
#define SEG_SPINE_EDGE_HU 200.0
/* Disc slices kept for the report (seg_ctx.vert_disc_k; vertebrae.c). */
#define SEG_VERT_DISCS 40

/* What the pipelines produce, all masks uint8 on the grid named. */
typedef struct seg_ctx {
    const r3d_volume *ct;   /* full grid, RAS axes, float32 HU */
    r3d_volume *lo;         /* coarse grid, float32 HU (may equal ct when f = 1) */
    int f[3];               /* coarse voxel = f[0] x f[1] x f[2] full voxels */

    /* coarse grid */
    r3d_volume *body_lo;    /* filled body */
    r3d_volume *lung_lo;    /* 0, 1 = right lung, 2 = left lung (airways removed) */
    r3d_volume *bone_lo;    /* 0, 1 spine, 2 ribs, 3 sternum, 4 other bone (e.g. scapula,
                             * pelvis), 5 skull, 6 mandible */
    r3d_volume *bone_out_lo;/* 0/1: voxels taken out of the bone (a contrast-filled
                             * aorta lying on the spine), kept out at full grid */
    r3d_volume *lobe_lo;    /* 0, 1..5: RUL, RML, RLL, LUL, LLL; 6 / 7: right / left lung
                             * whose lobes were not found (lobes.c) */
    r3d_volume *segment_lo; /* 0, 1..SEG_N: segments (segments.c), 0 where not known */
    r3d_volume *vert_lo;    /* 0, or the vertebra's value (25 sacrum .. 50 C1), vertebrae.c;
                             * NULL when the vertebrae were not numbered */
    int vert_numbered, vert_pieces, vert_discs;
    int vert_anchor;        /* 1 sacrum, 2 lowest rib-bearing vertebra (T12) */
    int vert_ends_left;     /* end pieces left unnumbered (too long for one vertebra) */
    int vert_rib_t12;       /* value of the lowest rib-bearing piece, -1 none */
    int64_t vert_disc_k[SEG_VERT_DISCS]; /* disc slices (coarse k, RAS) */
    char vert_why[200];     /* why not numbered */

    /* full grid */
    r3d_volume *airway;     /* 0 / generation + 1 (trachea = 1, main bronchi = 2, ...) */
    r3d_volume *branch_of;  /* int32: airway branch index + 1 */
    r3d_volume *vessels;    /* 0/1 */
    r3d_volume *nodules;    /* 0, k = nodule k */

    int64_t seed;           /* trachea seed (full grid index), -1 = none */
    double airway_threshold;/* HU upper bound the airway grew with */
    int airway_leaked;
    r3d_airway_tree tree;   /* generations, branch counts, names */
    r3d_nodule *nod;
    int n_nod;
    int has_lung_joined;    /* the lungs touched and were split */
    /* lobes.c: how each lung's lobes were made, [0] right, [1] left */
    int lobe_method[2];     /* SEG_LOBES_* */
    char lobe_why[2][160];  /* what was seen (fissure support) or why absent */

    void (*progress)(void *ctx, const char *stage, int64_t done, int64_t total);
    void *progress_ctx;
} seg_ctx;

/* ---- helpers (seg_util.c) ---- */
/* Block mean by integer factors f (edge blocks averaged over what exists). */
r3d_volume *seg_downsample(const r3d_volume *v, const int f[3], r3d_error *err);
/* Coarse uint8 -> full grid by replication (the coarse voxel covering each
 * full voxel); full must have dims within f * coarse dims. */
void seg_upsample_into(const r3d_volume *lo, const int f[3], r3d_volume *full);
/* Fill holes slice by slice in axial (k) planes: background not
 * 4-connected to the slice border becomes 1. In place. */
void seg_fill_holes_2d(r3d_volume *m);
/* Keep the components (conn 6/26) whose voxel count is >= min_vox; in place. */
r3d_status seg_drop_small(r3d_volume *m, int conn, int64_t min_vox, r3d_error *err);
/* Voxel index -> RAS-grid coordinates in mm, relative to voxel 0. */
static inline void seg_ijk(const r3d_volume *v, int64_t n, int64_t *i, int64_t *j, int64_t *k)
{
    *i = n % v->dim[0];
    *j = (n / v->dim[0]) % v->dim[1];
    *k = n / (v->dim[0] * v->dim[1]);
}
double seg_voxel_ml(const r3d_volume *v);
int64_t seg_count(const r3d_volume *m, uint8_t value); /* value 0 = any non-zero */
/* The median (upper middle) of v[0..n), n > 0; v is sorted in place. */
float seg_median(float *v, int64_t n);
/* Geodesic assignment: every voxel of `within` (non-zero) that is 0 in lab
 * takes the label of the nearest labelled voxel reached through `within`
 * (26-connected breadth-first, in steps). In place on lab (uint8). */
void seg_propagate(r3d_volume *lab, const r3d_volume *within);
/* The largest of s[k + dir], ..., s[k + dir * reach] inside [0, nz), NAN
 * skipped (a profile along the slices); -INFINITY when there is none. */
double seg_side_max(const double *s, int64_t nz, int64_t k, int64_t reach, int dir);
void seg_progress(seg_ctx *c, const char *stage, int64_t done, int64_t total);
/* Bounding box of a uint8 mask's non-zero voxels, grown by pad voxels and
 * clipped to the grid; 0 when the mask is empty. */
int seg_box(const r3d_volume *m, int pad, int64_t lo[3], int64_t hi[3]);
/* The box lo..hi (inclusive) of v as a volume of its own (same dtype,
 * affine moved to the box), and the way back. */
r3d_volume *seg_crop(const r3d_volume *v, const int64_t lo[3], const int64_t hi[3], r3d_error *err);
void seg_paste(const r3d_volume *box, r3d_volume *v, const int64_t lo[3]);
/* Distance map (float32) or dilation by mm (uint8) of a uint8 mask,
 * computed only in its bounding box grown by pad voxels (pad must cover
 * what the operation reaches: the result is exact then) and returned on
 * the mask's full grid. */
enum { SEG_DISTANCE = 0, SEG_DILATE = 1 };
r3d_volume *seg_in_box(const r3d_volume *m, int pad, int op, double mm, r3d_error *err);

/* ---- pipelines, in the order the driver runs them ---- */
const char *seg_lobe_name(int lobe); /* 1..5 -> "lung_upper_lobe_right" ... */
r3d_status seg_body(seg_ctx *c, r3d_error *err);
r3d_status seg_airway(seg_ctx *c, r3d_error *err);
/* Is branch b the straight continuation of a main, lobar or segmental
 * bronchus (the straightest child, within 32 degrees)? The local growth
 * then anchors along it as along its parent (airway.c). */
int seg_airway_continues_trunk(const r3d_airway_tree *t, int b);
r3d_status seg_lungs(seg_ctx *c, r3d_error *err);
r3d_status seg_bones(seg_ctx *c, r3d_error *err);
/* bone_lo's labels on the full grid (out: uint8 on ct's grid), edges and
 * marrow at full resolution (bones_full.c). */
r3d_status seg_bones_full(const seg_ctx *c, r3d_volume *out, r3d_error *err);
/* lobe_lo: 1..5 as above; 6 / 7 = right / left lung whose lobes were
 * not found (lobes.c). */
enum { SEG_LOBES_NONE = 0, SEG_LOBES_AIRWAY, SEG_LOBES_AIRWAY_FISSURES, SEG_LOBES_FISSURES };
r3d_status seg_lobes(seg_ctx *c, r3d_error *err);
/* Fissures (fissures.c): a plate (sheet) measure of the Hessian inside
 * the lung, float32 in HU, 0 outside the vessel-free interior, with each
 * sheet's unit normal (RAS, x127). */
typedef struct seg_fissure {
    r3d_volume *sheet;
    int8_t *normal;
    uint8_t *rim; /* 1: lung voxel by the pleura, where the filter does not look */
} seg_fissure;
typedef struct seg_fissure_evidence {
    double on_sheet;  /* share of the boundary's voxels next to a sheet */
    double base_rate; /* share of all the lung's voxels next to one */
    int found;
} seg_fissure_evidence;
r3d_status seg_fissure_sheets(const r3d_volume *hu, const r3d_volume *lung, seg_fissure *fs,
                              r3d_error *err);
void seg_fissure_free(seg_fissure *fs);
double seg_fissure_threshold(void); /* S of a sheet (HU) */
/* Geodesic competition inside region (non-zero) from the labelled voxels
 * of lab (in: seeds, out: every region voxel labelled, 0 outside), a step
 * costing more on sheets whose normal is within 60 degrees of dir (unit,
 * RAS; NULL = any). */
r3d_status seg_fissure_compete(const r3d_volume *region, const seg_fissure *fs, const double *dir,
                               r3d_volume *lab, r3d_error *err);
/* Whether the boundary between labels a and b of lab lies on sheets. */
void seg_fissure_support(const r3d_volume *lab, int a, int b, const seg_fissure *fs, const double *dir,
                         seg_fissure_evidence *ev);
/* The spine label split into numbered vertebrae (vertebrae.c): vert_lo
 * and the vert_* fields; not numbered is no error (vert_why says why). */
r3d_status seg_vertebrae(seg_ctx *c, r3d_error *err);
/* Lung segments 1..SEG_N: the territories of RB1..RB10, LB1+2, LB3..LB6,
 * LB7+8, LB9, LB10; SEG_UNKNOWN is segments.c's own marker. */
#define SEG_N 18
#define SEG_UNKNOWN 255
int seg_segment_of_name(const char *bronchus); /* 0 = not a segmental bronchus */
int seg_segment_lobe(int k);                   /* 1..5 as lobe_lo */
const char *seg_segment_structure(int k);      /* "lung_segment_right_s1" .. */
r3d_status seg_segments(seg_ctx *c, r3d_error *err);
r3d_status seg_vessels(seg_ctx *c, r3d_error *err);
r3d_status seg_nodules(seg_ctx *c, r3d_error *err);

/* Each step's own levels, written into report.json's "parameters" from the
 * constants the step uses (so the report cannot drift from the code). */
struct cJSON;
void seg_body_params(struct cJSON *par);
void seg_lungs_params(struct cJSON *par);
void seg_bones_params(struct cJSON *par);
void seg_bones_full_params(struct cJSON *par);

#endif

/* r3d/analysis.h - what is measured on segmented anatomy: airway trees
 * (branches, generations, anatomical names, counts per generation) and
 * lung nodules (position, size, density, distances to bronchi and vessels).
 *
 * Positions are patient LPS millimetres (+x the patient's left, +y
 * posterior, +z superior), taken from the volume's ijk_to_lps, so the
 * results do not depend on how the voxels are stored. */
#ifndef R3D_ANALYSIS_H
#define R3D_ANALYSIS_H

#include "volume.h"

#ifdef __cplusplus
extern "C" {
#endif

#define R3D_AIRWAY_MAX_GEN 24

/* One branch: the airway between two bifurcations (or a bifurcation and an
 * end). Generation 0 is the trachea; every bifurcation adds one. */
typedef struct r3d_airway_branch {
    int parent;          /* branch index, -1 for the root */
    int generation;
    char name[16];       /* "trachea", "RMB", "LMB", "RUL", "BI", "RML", "RLL",
                            "LUL", "LLL", "RB1".."RB10", "LB1+2".. or "" */
    int64_t n_voxels;
    double length_mm;    /* geodesic length along the branch */
    double radius_mm;    /* mean equivalent radius of its cross-sections */
    double start[3], end[3]; /* centres of the first and last cross-section, LPS mm */
} r3d_airway_branch;

/* The far end of an offshoot too short to be a branch (min_branch_mm),
 * folded into the branch it leaves: where a segmental bronchus whose
 * lumen fades after a few mm may go on (the segmentation grows from it). */
typedef struct r3d_airway_tip {
    int branch;          /* the branch it is folded into */
    double length_mm;    /* geodesic, from where it leaves that branch */
    double pos[3];       /* centre of its last cross-section, LPS mm */
} r3d_airway_tip;

typedef struct r3d_airway_tree {
    r3d_airway_branch *b;
    int n;
    int max_generation;              /* -1 for an empty tree */
    int per_generation[R3D_AIRWAY_MAX_GEN + 1]; /* branch counts */
    r3d_airway_tip *tips;            /* folded offshoots at least one band long */
    int n_tips;
} r3d_airway_tree;

typedef struct r3d_airway_tree_opts {
    double band_mm;        /* width of the geodesic wave fronts; 0 = from the spacing */
    double min_branch_mm;  /* shorter side branches are folded into their parent; 0 = 2 bands */
} r3d_airway_tree_opts;

/* Branches of a binary airway mask (uint8, non-zero = lumen), grown from
 * the seed voxels (indices i + j*nx + k*nx*ny, the trachea's top). Wave
 * fronts of geodesic distance from the seeds are cut into connected
 * cross-sections; a section that splits into two or more lasting
 * sections is a bifurcation. branch_of (may be NULL) receives an int32
 * volume on the mask's grid: branch index + 1 per airway voxel reached, 0
 * elsewhere. */
r3d_status r3d_airway_tree_build(const r3d_volume *mask, const int64_t *seeds, int n_seeds,
                                 const r3d_airway_tree_opts *opts, r3d_airway_tree *out,
                                 r3d_volume **branch_of, r3d_error *err);
void r3d_airway_tree_free(r3d_airway_tree *t);
/* Name the main, lobar and (where the directions tell) segmental bronchi
 * from the branches' directions. Called by r3d_airway_tree_build. */
void r3d_airway_tree_name(r3d_airway_tree *t);

/* ---- lung nodules ---------------------------------------------------------- */

typedef struct r3d_nodule {
    double centre[3];        /* LPS mm */
    double volume_mm3;
    double diameter_mm;      /* of the sphere with that volume */
    double long_axis_mm;     /* longest in-plane diameter on the axial slice where it is largest */
    double short_axis_mm;    /* longest diameter perpendicular to it, same slice */
    double mean_hu;
    int solid;               /* 1 solid, 0 sub-solid (mean below -300 HU) */
    double dist_bronchus_mm; /* surface to the nearest airway voxel; -1 unknown */
    double dist_vessel_mm;   /* surface to the nearest vessel voxel (outside it); -1 unknown */
    int lung;                /* 1 right, 2 left, 0 unknown */
    char lobe[32];           /* "lung_upper_lobe_right" or "" */
} r3d_nodule;

/* Measure the voxels of mask equal to value on ct (HU, same grid);
 * airway/vessels (uint8, same grid, may be NULL) for the distances.
 * Distances are searched within 60 mm (beyond that: 60). */
r3d_status r3d_nodule_measure(const r3d_volume *ct, const r3d_volume *mask, int value,
                              const r3d_volume *airway, const r3d_volume *vessels,
                              r3d_nodule *out, r3d_error *err);

#ifdef __cplusplus
}
#endif
#endif

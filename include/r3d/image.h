/* r3d/image.h - volume operations the segmentation pipelines are built from.
 *
 * Sizes are in millimetres wherever a size is asked for (sigma_mm,
 * radius_mm), converted with the volume's own voxel spacing, so the same
 * call means the same anatomy at 0.5 mm and at 3 mm. Masks are uint8
 * volumes (0 / non-zero); every function returns a new volume with the
 * input's geometry (resampling: the target's) and leaves its input alone.
 * Work is split into slabs with r3d_parallel_for; results do not depend on
 * the thread count.
 */
#ifndef R3D_IMAGE_H
#define R3D_IMAGE_H

#include "volume.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A new uint8 mask, 1 where lo <= value <= hi (real units). */
r3d_volume *r3d_image_threshold(const r3d_volume *v, double lo, double hi, r3d_error *err);

/* Exact Euclidean distance (mm) from every voxel to the nearest voxel whose
 * mask value is 0 (inside distances; 0 outside), anisotropic spacing
 * honoured (Felzenszwalb & Huttenlocher 2012). float32 result. */
r3d_volume *r3d_image_distance(const r3d_volume *mask, r3d_error *err);

/* Morphology with a ball of radius_mm, by distance transform (cost
 * independent of the radius). */
r3d_volume *r3d_image_dilate(const r3d_volume *mask, double radius_mm, r3d_error *err);
r3d_volume *r3d_image_erode(const r3d_volume *mask, double radius_mm, r3d_error *err);
r3d_volume *r3d_image_open(const r3d_volume *mask, double radius_mm, r3d_error *err);
r3d_volume *r3d_image_close(const r3d_volume *mask, double radius_mm, r3d_error *err);

/* Connected components of a mask: uint32 labels 1..n, numbered by first
 * voxel in memory order (so the numbering is deterministic); connectivity
 * 6, 18 or 26. n_out receives the count; sizes_out (may be NULL) a malloc'ed
 * array of n+1 voxel counts (index 0 unused). */
r3d_volume *r3d_image_components(const r3d_volume *mask, int connectivity, int64_t *n_out,
                                 int64_t **sizes_out, r3d_error *err);
/* The largest component only (uint8 mask). */
r3d_volume *r3d_image_largest_component(const r3d_volume *mask, int connectivity,
                                        r3d_error *err);
/* Fill holes: background not 6-connected to the volume border becomes 1. */
r3d_volume *r3d_image_fill_holes(const r3d_volume *mask, r3d_error *err);

/* Gaussian smoothing (separable, kernel to 3 sigma, edges replicated);
 * float32 result in real units. */
r3d_volume *r3d_image_gaussian(const r3d_volume *v, double sigma_mm, r3d_error *err);

/* Median over a box of radius_vox voxels per axis (edges replicated);
 * same data type as v. */
r3d_volume *r3d_image_median(const r3d_volume *v, const int radius_vox[3], r3d_error *err);

/* Grey-level morphology: max (dilate) / min (erode) over a ball of
 * radius_mm; float32 result in real units. */
r3d_volume *r3d_image_grey_dilate(const r3d_volume *v, double radius_mm, r3d_error *err);
r3d_volume *r3d_image_grey_erode(const r3d_volume *v, double radius_mm, r3d_error *err);

/* Region growing from seeds (voxel indices i + j*nx + k*nx*ny) over voxels
 * with lo <= value <= hi, 6/18/26-connected. Leak control: growth proceeds
 * in fronts (one voxel layer per step); when a front grows by more than
 * leak_ratio times the median front size of the last steps, or the region
 * exceeds max_voxels, that front is dropped and growth stops there
 * (leak_ratio <= 0: no leak control). *leaked (may be NULL) tells whether
 * a front was dropped. uint8 mask. */
typedef struct r3d_grow_opts {
    double lo, hi;
    int connectivity;
    int64_t max_voxels; /* 0 = no limit */
    double leak_ratio;
} r3d_grow_opts;
r3d_volume *r3d_image_region_grow(const r3d_volume *v, const int64_t *seeds, int n_seeds,
                                  const r3d_grow_opts *opts, int *leaked, r3d_error *err);

/* Multiscale Hessian vesselness (Frangi 1998) over sigmas_mm; bright tubes
 * on dark background when bright != 0 (vessels in lung), dark tubes
 * otherwise (airway lumen). alpha = beta = 0.5 and c = half the largest
 * Hessian norm at each scale (Frangi's choice; scikit-image's formulas).
 * float32 in [0, 1]. The _c variant takes c (in the image's units) instead. */
r3d_volume *r3d_image_frangi(const r3d_volume *v, const double *sigmas_mm, int n_sigmas,
                             int bright, r3d_error *err);
r3d_volume *r3d_image_frangi_c(const r3d_volume *v, const double *sigmas_mm, int n_sigmas,
                               int bright, double c, r3d_error *err);

/* 3D thinning of a mask to a one-voxel-wide curve skeleton (topology
 * preserving, Lee/Kashyap/Chu 1994 as scikit-image's skeletonize). */
r3d_volume *r3d_image_skeleton(const r3d_volume *mask, r3d_error *err);

/* The skeleton as a graph: nodes are branch points and end points, edges
 * the voxel paths between them with length (mm) and mean radius (mm, from
 * the distance transform of the mask the skeleton came from). */
typedef struct r3d_skel_node {
    int64_t voxel;  /* index into the volume */
    double lps[3];  /* patient position, mm */
    int degree;
} r3d_skel_node;
typedef struct r3d_skel_edge {
    int a, b;          /* node indices */
    int64_t *voxels;   /* path from a to b inclusive, n_voxels of them */
    int n_voxels;
    double length_mm;
    double radius_mm;  /* mean over the path */
} r3d_skel_edge;
typedef struct r3d_skel_graph {
    r3d_skel_node *nodes;
    int n_nodes;
    r3d_skel_edge *edges;
    int n_edges;
} r3d_skel_graph;
/* mask: the object the skeleton was made from (for radii); may be NULL. */
r3d_status r3d_skeleton_graph(const r3d_volume *skeleton, const r3d_volume *mask,
                              r3d_skel_graph *out, r3d_error *err);
void r3d_skel_graph_free(r3d_skel_graph *g);

typedef enum r3d_interp {
    R3D_INTERP_NEAREST = 0,
    R3D_INTERP_LINEAR = 1,
    R3D_INTERP_BSPLINE = 3 /* cubic B-spline (scipy.ndimage order=3, mode mirror) */
} r3d_interp;
/* Resample v onto the grid of `target` (its dim and ijk_to_lps) through
 * patient space; outside v, `fill`. Nearest keeps v's data type (labels
 * stay labels); linear and B-spline give float32 real values. */
r3d_volume *r3d_image_resample(const r3d_volume *v, const r3d_volume *target, r3d_interp interp,
                               double fill, r3d_error *err);

#ifdef __cplusplus
}
#endif
#endif

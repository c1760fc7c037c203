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

typedef enum r3d_interp { R3D_INTERP_NEAREST = 0, R3D_INTERP_LINEAR = 1 } r3d_interp;
/* Resample v onto the grid of `target` (its dim and ijk_to_lps) through
 * patient space; outside v, `fill`. Nearest keeps v's data type (labels
 * stay labels); linear gives float32 real values. */
r3d_volume *r3d_image_resample(const r3d_volume *v, const r3d_volume *target, r3d_interp interp,
                               double fill, r3d_error *err);

#ifdef __cplusplus
}
#endif
#endif

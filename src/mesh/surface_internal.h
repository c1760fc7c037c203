/* surface_internal.h - the joint smoothing of several label surfaces
 * (surface.c), for r3d_mesh_from_labels (labels.c). */
#ifndef R3D_SURFACE_INTERNAL_H
#define R3D_SURFACE_INTERNAL_H

#include "r3d/mesh.h"

/* Smooth meshes[0..n) of labels values[0..n) of one label map, each fresh
 * from r3d_mesh_from_label. grp gives every vertex (mesh 0's first, then
 * mesh 1's, ...) a group in [0, ng): vertices of one group are one point
 * shared by several labels, and leave in one place. */
r3d_status r3d__smooth_labels(r3d_mesh **meshes, const uint16_t *values, int n,
                              const int64_t *grp, int64_t ng, const r3d_volume *labels,
                              double strength, r3d_error *err);

/* on (the default): the hot passes in AVX2 where the processor has it;
 * off: the plain ones everywhere. Both give the same bytes; the switch is
 * for the test that says so (not thread-safe: set it between smoothings).
 * Returns whether this build and processor have an AVX2 pass at all. */
int r3d__smooth_wide(int on);

#endif

/* image_internal.h - small helpers shared by the files of src/image. */
#ifndef R3D_IMAGE_INTERNAL_H
#define R3D_IMAGE_INTERNAL_H

#include "r3d/image.h"

/* Check the input is a 3D mask-like volume; fills err naming `op`. */
r3d_status r3d_image_check_3d(const r3d_volume *v, const char *op, r3d_error *err);

/* Non-zero test of voxel n of any dtype (masks are usually uint8). */
static inline int r3d_image_on(const r3d_volume *v, int64_t n)
{
    if (v->dtype == R3D_U8)
        return ((const uint8_t *)v->voxels)[n] != 0;
    return r3d_volume_get(v, n) != 0;
}

#endif

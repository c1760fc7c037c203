/* nifti_priv.h - internals shared by the NIfTI loader and saver (and their
 * unit tests): the header layouts' constants, the quaternion <-> matrix
 * conversions of the qform, and small byte-order helpers the NRRD and
 * InVesalius readers use too.
 *
 * The quaternion code follows nifti1_io.c (nifti_quatern_to_mat44 and
 * nifti_mat44_to_quatern, R. W. Cox, public domain), which nibabel's
 * quaternions.py reproduces; qfac = pixdim[0] = -1 flips the third column
 * so that left-handed voxel grids are expressible.
 */
#ifndef R3D_IO_NIFTI_PRIV_H
#define R3D_IO_NIFTI_PRIV_H

#include "r3d/volume.h"

#include <stdint.h>
#include <string.h>

/* NIfTI datatype codes (nifti1.h). */
enum {
    NII_DT_UINT8 = 2, NII_DT_INT16 = 4, NII_DT_INT32 = 8, NII_DT_FLOAT32 = 16,
    NII_DT_COMPLEX64 = 32, NII_DT_FLOAT64 = 64, NII_DT_RGB24 = 128, NII_DT_INT8 = 256,
    NII_DT_UINT16 = 512, NII_DT_UINT32 = 768, NII_DT_INT64 = 1024, NII_DT_UINT64 = 1280,
    NII_DT_FLOAT128 = 1536, NII_DT_COMPLEX128 = 1792, NII_DT_COMPLEX256 = 2048,
    NII_DT_RGBA32 = 2304,
};

#define NII1_HDR_SIZE 348
#define NII2_HDR_SIZE 540

/* qform quaternion (b, c, d), offset and pixdim -> 4x4 RAS affine. */
void r3d__nifti_quatern_to_mat44(double qb, double qc, double qd, double qx, double qy,
                                 double qz, double dx, double dy, double dz, double qfac,
                                 double out[4][4]);
/* 4x4 affine -> quaternion, offset, voxel sizes and qfac (polar
 * decomposition of the 3x3 part, so a slightly non-orthogonal input gives
 * the nearest rotation). */
void r3d__nifti_mat44_to_quatern(const double m[4][4], double *qb, double *qc, double *qd,
                                 double *qx, double *qy, double *qz, double *dx, double *dy,
                                 double *dz, double *qfac);

/* Byte order: load little/big-endian values from unaligned bytes. */
static inline void r3d__swap_bytes(void *data, size_t count, size_t width)
{
    uint8_t *p = data;
    if (width < 2)
        return;
    for (size_t i = 0; i < count; i++, p += width)
        for (size_t a = 0, b = width - 1; a < b; a++, b--) {
            uint8_t t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

static inline int r3d__host_is_little(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* 64-bit integer voxels have no r3d_dtype: convert n values in place-free
 * fashion to int32 when every value fits (label maps written by numpy's
 * default int64), else to float64 when every value is exact in a double
 * (|x| <= 2^53), else refuse. src holds host-order values; dst has room for
 * n doubles. Returns the chosen dtype or R3D_DT_NONE. */
static inline r3d_dtype r3d__convert_int64(const void *src, int is_unsigned, size_t n, void *dst)
{
    const int64_t *s = src;
    const uint64_t *u = src;
    int fits32 = 1;
    for (size_t i = 0; i < n; i++) {
        if (is_unsigned ? u[i] > (uint64_t)INT32_MAX
                        : (s[i] < INT32_MIN || s[i] > INT32_MAX)) {
            fits32 = 0;
            break;
        }
    }
    if (fits32) {
        int32_t *d = dst;
        for (size_t i = 0; i < n; i++)
            d[i] = (int32_t)(is_unsigned ? (int64_t)u[i] : s[i]);
        return R3D_I32;
    }
    const uint64_t lim = (uint64_t)1 << 53;
    for (size_t i = 0; i < n; i++) {
        if (is_unsigned ? u[i] > lim : (s[i] > (int64_t)lim || s[i] < -(int64_t)lim))
            return R3D_DT_NONE;
    }
    double *d = dst;
    for (size_t i = 0; i < n; i++)
        d[i] = is_unsigned ? (double)u[i] : (double)s[i];
    return R3D_F64;
}

#endif

/* affine.h - the inverse of a voxel -> patient affine, shared by resampling
 * (image/resample.c) and DICOM SEG reading and writing (io/dicom/seg_*.c). */
#ifndef R3D_CORE_AFFINE_H
#define R3D_CORE_AFFINE_H

/* inv = m^-1 for an affine m (last row 0 0 0 1): the 3x3 part by cofactors,
 * then the translation. 0 when the 3x3 part is singular (|det| not above
 * 1e-12, or not a number), 1 otherwise. */
int r3d__affine_invert(const double m[4][4], double inv[4][4]);

#endif

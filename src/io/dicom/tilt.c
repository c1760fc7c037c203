/* tilt.c - gantry-tilt correction by resampling, as dcm2niix does.
 *
 * A CT acquired with the gantry tilted has slices that are planes of the
 * patient frame like any others (row and column cosines in
 * ImageOrientationPatient), but consecutive slices are displaced not along
 * the plane normal n but along a tilted vector D. Volume formats and every
 * downstream algorithm assume an orthogonal grid, so each slice is shifted
 * within its own plane: slice k moves by k * (D - (D.n) n), which is a pure
 * displacement along the image column axis for a tilt about the x axis.
 *
 * In voxel units the shift of slice k is k*beta rows (beta = the in-plane
 * component of D divided by the row spacing); each output row j' samples
 * input row j' - k*beta by linear interpolation. The grid gains
 * ceil(|beta| * (nz-1)) rows so nothing is cut, and its origin moves by the
 * same amount when beta < 0. New voxels outside the scanned field hold the
 * volume's minimum (air for CT). Cost: one pass over the output.
 */
#include "tilt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int r3d_tilt_extra_rows(const r3d_series *g, const r3d_frame_rec *fr, const double col1[3],
                        double *beta_out, double *step_mm)
{
    int nz = g->nz;
    double D[3], a = 0, c2 = 0, b = 0;
    *beta_out = 0;
    *step_mm = 0;
    if (nz < 2)
        return 0;
    /* D: mean displacement between consecutive slice positions. */
    for (int i = 0; i < 3; i++) {
        D[i] = (fr[nz - 1].ipp[i] - fr[0].ipp[i]) / (double)(nz - 1);
        a += D[i] * g->normal[i];
        c2 += col1[i] * col1[i];
    }
    for (int i = 0; i < 3; i++)
        b += (D[i] - a * g->normal[i]) * col1[i];
    *beta_out = b / c2;
    *step_mm = a; /* slice step along the normal: the orthogonal grid's dz */
    return (int)ceil(fabs(*beta_out) * (double)(nz - 1) - 1e-6);
}

r3d_volume *r3d_tilt_correct(const r3d_volume *v, const r3d_dicom_scan *s, const r3d_series *g,
                             r3d_error *err)
{
    const r3d_frame_rec *fr = s->frames + g->first;
    int64_t nx = v->dim[0], ny = v->dim[1], nz = v->dim[2], nt = v->dim[3];
    if (nz < 2)
        return r3d_volume_copy(v, err);
    double col1[3], n[3], beta, a;
    for (int i = 0; i < 3; i++) {
        col1[i] = v->ijk_to_lps[i][1];
        n[i] = g->normal[i];
    }
    int64_t extra = r3d_tilt_extra_rows(g, fr, col1, &beta, &a);
    double jmin = beta < 0 ? -(double)extra : 0.0;
    int64_t dim[4] = {nx, ny + extra, nz, nt};

    /* Work in real values, then store in the input type (CT stays int16). */
    r3d_volume *o = r3d_volume_new(dim, v->dtype, err);
    if (!o)
        return NULL;
    void *vox = o->voxels;
    *o = *v;
    o->voxels = vox;
    o->dim[1] = ny + extra;
    double lo = INFINITY;
    int64_t nvox = r3d_volume_nvox(v);
    for (int64_t i = 0; i < nvox; i++) {
        double x = r3d_volume_get(v, i);
        lo = x < lo ? x : lo;
    }
    size_t es = r3d_dtype_size(v->dtype);
    for (int64_t t = 0; t < nt; t++)
        for (int64_t k = 0; k < nz; k++)
            for (int64_t jj = 0; jj < ny + extra; jj++) {
                double src = (double)jj + jmin - (double)k * beta;
                int64_t j0 = (int64_t)floor(src);
                double w = src - (double)j0;
                for (int64_t i = 0; i < nx; i++) {
                    double val;
                    int64_t base = ((t * nz + k) * ny) * nx + i;
                    if (j0 < 0 || j0 > ny - 1) {
                        val = lo;
                    } else {
                        /* Past the last row but within one row of it, the
                         * last row is repeated (as dcm2niix does). */
                        double v0 = r3d_volume_get(v, base + j0 * nx);
                        double v1 = w > 1e-9 && j0 + 1 < ny
                                        ? r3d_volume_get(v, base + (j0 + 1) * nx)
                                        : v0;
                        val = v0 + w * (v1 - v0);
                    }
                    /* back to stored units */
                    double st = (val - v->scl_inter) / v->scl_slope;
                    int64_t oi = ((t * nz + k) * (ny + extra) + jj) * nx + i;
                    uint8_t *dst = (uint8_t *)o->voxels + (size_t)oi * es;
                    switch (v->dtype) {
                    case R3D_U8: *dst = (uint8_t)lround(st); break;
                    case R3D_I8: *(int8_t *)dst = (int8_t)lround(st); break;
                    case R3D_I16: { int16_t q = (int16_t)lround(st); memcpy(dst, &q, 2); } break;
                    case R3D_U16: { uint16_t q = (uint16_t)lround(st); memcpy(dst, &q, 2); } break;
                    case R3D_I32: { int32_t q = (int32_t)lround(st); memcpy(dst, &q, 4); } break;
                    case R3D_U32: { uint32_t q = (uint32_t)lround(st); memcpy(dst, &q, 4); } break;
                    case R3D_F32: { float q = (float)st; memcpy(dst, &q, 4); } break;
                    case R3D_F64: memcpy(dst, &st, 8); break;
                    default: memset(dst, 0, es); break;
                    }
                }
            }
    /* Orthogonal slice step, origin moved when rows were added in front. */
    for (int i = 0; i < 3; i++) {
        o->ijk_to_lps[i][2] = a * n[i];
        o->ijk_to_lps[i][3] = v->ijk_to_lps[i][3] + jmin * col1[i];
    }
    r3d_volume_update_spacing(o);
    return o;
}

/* nifti_load.c - read NIfTI-1 and NIfTI-2 volumes (.nii, .nii.gz, and the
 * .hdr/.img pair) into an r3d_volume.
 *
 * How: the whole file is read (and gunzipped) into one buffer, the header is
 * decoded field by field from bytes in either byte order (the order is the
 * one in which sizeof_hdr reads 348 or 540), every size in it is checked
 * against the bytes actually present, and the voxel bytes are moved to the
 * front of that same buffer, which becomes the volume's storage: no second
 * copy of the image is ever made. Extensions are skipped by honouring
 * vox_offset.
 *
 * Geometry, as nibabel (Nifti1Header.get_best_affine) and nifti1_io do:
 *   sform_code > 0  -> srow_x/y/z;
 *   qform_code > 0  -> quaternion + qoffset + pixdim, qfac = sign of pixdim[0]
 *                      (nifti_quatern_to_mat44);
 *   otherwise       -> nibabel's fallback: diag(-|px|, |py|, |pz|) with the
 *                      origin at the centre of the grid (shape_zoom_affine).
 * pixdim values of 0 count as 1 and negative ones as their magnitude (the
 * fixes nibabel's header checks apply on load). A negative (invalid) code
 * counts as absent, as in nifti1_io; nibabel would use it. The result is the RAS affine;
 * the volume keeps LPS through r3d_volume_set_ijk_to_ras. xyzt_units is not
 * applied to the affine (nibabel, FSL and ITK ignore it as well); it only
 * scales pixdim[4] into seconds.
 *
 * Voxels: uint8, int8, int16, uint16, int32, uint32, float32, float64 and
 * RGB24 are kept as stored (after byte-swapping). int64/uint64 (numpy's
 * default integer, common in label maps) become int32 when every value fits,
 * else float64 when every value is exact in a double, else an error.
 * scl_slope/scl_inter are kept on the volume (slope 0 or not finite means no
 * scaling, as in the standard), so raw data stays exact.
 *
 * Cost: one read, one gunzip (libdeflate), one memmove of the voxels; peak
 * memory is file size + image size.
 *
 * References: nifti1.h and nifti2.h (NIfTI DFWG), nifti1_io.c
 * (nifti_quatern_to_mat44), nibabel nifti1.py / volumeutils.py.
 */
#include "r3d/nifti.h"

#include "io/nifti_priv.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct nii_hdr {
    int version;      /* 1 or 2 */
    int swap;         /* file byte order differs from ours */
    int single;       /* n+1 / n+2 (data in the same file) vs ni1 / ni2 */
    int64_t dim[8];
    double pixdim[8];
    int datatype;
    double vox_offset;
    double scl_slope, scl_inter;
    int qform_code, sform_code;
    double quatern[3], qoffset[3];
    double srow[3][4];
    int xyzt_units;
    char descrip[81];
} nii_hdr;

/* ---- byte access in the file's order -------------------------------------- */

/* Load width bytes as an integer in our byte order, or the other one when
 * swap is set. */
static uint64_t ld(const uint8_t *p, int width, int swap)
{
    uint64_t v = 0;
    int big = swap ^ !r3d__host_is_little();
    for (int i = 0; i < width; i++)
        v |= (uint64_t)p[big ? width - 1 - i : i] << (8 * i);
    return v;
}
static int16_t ld_i16(const uint8_t *p, int s) { return (int16_t)ld(p, 2, s); }
static int32_t ld_i32(const uint8_t *p, int s) { return (int32_t)ld(p, 4, s); }
static int64_t ld_i64(const uint8_t *p, int s) { return (int64_t)ld(p, 8, s); }
static double ld_f32(const uint8_t *p, int s)
{
    uint32_t u = (uint32_t)ld(p, 4, s);
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static double ld_f64(const uint8_t *p, int s)
{
    uint64_t u = ld(p, 8, s);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* ---- datatypes ------------------------------------------------------------- */

static const char *nii_dtype_name(int code)
{
    switch (code) {
    case NII_DT_UINT8: return "uint8";
    case NII_DT_INT16: return "int16";
    case NII_DT_INT32: return "int32";
    case NII_DT_FLOAT32: return "float32";
    case NII_DT_COMPLEX64: return "complex64";
    case NII_DT_FLOAT64: return "float64";
    case NII_DT_RGB24: return "RGB24";
    case NII_DT_INT8: return "int8";
    case NII_DT_UINT16: return "uint16";
    case NII_DT_UINT32: return "uint32";
    case NII_DT_INT64: return "int64";
    case NII_DT_UINT64: return "uint64";
    case NII_DT_FLOAT128: return "float128";
    case NII_DT_COMPLEX128: return "complex128";
    case NII_DT_COMPLEX256: return "complex256";
    case NII_DT_RGBA32: return "RGBA32";
    case 1: return "binary";
    default: return "unknown";
    }
}

/* Bytes per voxel as stored; 0 = not supported. */
static size_t nii_dtype_bytes(int code)
{
    switch (code) {
    case NII_DT_UINT8: case NII_DT_INT8: return 1;
    case NII_DT_INT16: case NII_DT_UINT16: return 2;
    case NII_DT_RGB24: return 3;
    case NII_DT_INT32: case NII_DT_UINT32: case NII_DT_FLOAT32: return 4;
    case NII_DT_FLOAT64: case NII_DT_INT64: case NII_DT_UINT64: return 8;
    default: return 0;
    }
}

static r3d_dtype nii_to_r3d(int code)
{
    switch (code) {
    case NII_DT_UINT8: return R3D_U8;
    case NII_DT_INT8: return R3D_I8;
    case NII_DT_INT16: return R3D_I16;
    case NII_DT_UINT16: return R3D_U16;
    case NII_DT_INT32: return R3D_I32;
    case NII_DT_UINT32: return R3D_U32;
    case NII_DT_FLOAT32: return R3D_F32;
    case NII_DT_FLOAT64: return R3D_F64;
    case NII_DT_RGB24: return R3D_RGB24;
    default: return R3D_DT_NONE; /* int64/uint64 are converted */
    }
}

/* ---- header ---------------------------------------------------------------- */

static r3d_status nii_parse(const uint8_t *b, size_t n, const char *name, nii_hdr *h,
                            r3d_error *err)
{
    memset(h, 0, sizeof *h);
    if (n < 4)
        return r3d_fail(err, R3D_EFORMAT, "%s: %zu bytes is too short for a NIfTI header",
                        name, n);
    /* sizeof_hdr read in our byte order and in the other one */
    int32_t ours = ld_i32(b, 0), other = ld_i32(b, 1);
    if (ours == NII1_HDR_SIZE || other == NII1_HDR_SIZE)
        h->version = 1;
    else if (ours == NII2_HDR_SIZE || other == NII2_HDR_SIZE)
        h->version = 2;
    else
        return r3d_fail(err, R3D_EFORMAT,
                        "%s: not a NIfTI file (sizeof_hdr reads %d, expected 348 or 540)",
                        name, (int)ours);
    h->swap = (ours != NII1_HDR_SIZE && ours != NII2_HDR_SIZE);
    size_t hsize = h->version == 1 ? NII1_HDR_SIZE : NII2_HDR_SIZE;
    if (n < hsize)
        return r3d_fail(err, R3D_EFORMAT,
                        "%s: NIfTI-%d header is cut short: %zu of %zu bytes present", name,
                        h->version, n, hsize);
    int s = h->swap;

    if (h->version == 1) {
        const uint8_t *m = b + 344;
        if (memcmp(m, "n+1", 4) == 0)
            h->single = 1;
        else if (memcmp(m, "ni1", 4) == 0)
            h->single = 0;
        else
            return r3d_fail(err, R3D_EUNSUPPORTED,
                            "%s: no NIfTI-1 magic (\"n+1\" or \"ni1\" at byte 344): an "
                            "Analyze 7.5 header, which has no reliable orientation", name);
        for (int i = 0; i < 8; i++) {
            h->dim[i] = ld_i16(b + 40 + 2 * i, s);
            h->pixdim[i] = ld_f32(b + 76 + 4 * i, s);
        }
        h->datatype = ld_i16(b + 70, s);
        h->vox_offset = ld_f32(b + 108, s);
        h->scl_slope = ld_f32(b + 112, s);
        h->scl_inter = ld_f32(b + 116, s);
        h->xyzt_units = b[123];
        memcpy(h->descrip, b + 148, 80);
        h->qform_code = ld_i16(b + 252, s);
        h->sform_code = ld_i16(b + 254, s);
        for (int i = 0; i < 3; i++) {
            h->quatern[i] = ld_f32(b + 256 + 4 * i, s);
            h->qoffset[i] = ld_f32(b + 268 + 4 * i, s);
            for (int j = 0; j < 4; j++)
                h->srow[i][j] = ld_f32(b + 280 + 16 * i + 4 * j, s);
        }
    } else {
        const uint8_t *m = b + 4;
        if (memcmp(m, "n+2", 4) == 0)
            h->single = 1;
        else if (memcmp(m, "ni2", 4) == 0)
            h->single = 0;
        else
            return r3d_fail(err, R3D_EFORMAT, "%s: no NIfTI-2 magic (\"n+2\" or \"ni2\" at "
                            "byte 4)", name);
        /* The 4 bytes after the magic catch text-mode transfers (CR/LF
         * mangling), as in PNG. */
        if (memcmp(m + 4, "\r\n\032\n", 4) != 0)
            return r3d_fail(err, R3D_EFORMAT, "%s: NIfTI-2 magic is damaged (bytes 8-11 are "
                            "not 0d 0a 1a 0a): was the file copied in text mode?", name);
        h->datatype = ld_i16(b + 12, s);
        for (int i = 0; i < 8; i++) {
            h->dim[i] = ld_i64(b + 16 + 8 * i, s);
            h->pixdim[i] = ld_f64(b + 104 + 8 * i, s);
        }
        h->vox_offset = (double)ld_i64(b + 168, s);
        h->scl_slope = ld_f64(b + 176, s);
        h->scl_inter = ld_f64(b + 184, s);
        memcpy(h->descrip, b + 240, 80);
        h->qform_code = ld_i32(b + 344, s);
        h->sform_code = ld_i32(b + 348, s);
        for (int i = 0; i < 3; i++) {
            h->quatern[i] = ld_f64(b + 352 + 8 * i, s);
            h->qoffset[i] = ld_f64(b + 376 + 8 * i, s);
            for (int j = 0; j < 4; j++)
                h->srow[i][j] = ld_f64(b + 400 + 32 * i + 8 * j, s);
        }
        h->xyzt_units = ld_i32(b + 500, s);
    }
    h->descrip[80] = 0;

    /* Dimensions: only dim[1..dim[0]] are meaningful. */
    int64_t nd = h->dim[0];
    if (nd < 1 || nd > 7)
        return r3d_fail(err, R3D_EFORMAT, "%s: dim[0] is %lld, must be 1..7", name,
                        (long long)nd);
    for (int i = 1; i <= nd; i++)
        if (h->dim[i] < 1)
            return r3d_fail(err, R3D_EFORMAT, "%s: dim[%d] is %lld, must be at least 1", name,
                            i, (long long)h->dim[i]);
    for (int i = (int)nd + 1; i < 8; i++)
        h->dim[i] = 1;
    for (int i = 5; i <= nd; i++)
        if (h->dim[i] > 1)
            return r3d_fail(err, R3D_EUNSUPPORTED,
                            "%s: %lld-D data (dim[%d] = %lld) is not supported; only 3-D and "
                            "4-D volumes are", name, (long long)nd, i, (long long)h->dim[i]);

    if (nii_dtype_bytes(h->datatype) == 0)
        return r3d_fail(err, R3D_EUNSUPPORTED, "%s: datatype %d (%s) is not supported", name,
                        h->datatype, nii_dtype_name(h->datatype));

    if (!isfinite(h->vox_offset) || h->vox_offset < 0 || h->vox_offset > 1e15 ||
        h->vox_offset != floor(h->vox_offset))
        return r3d_fail(err, R3D_EFORMAT, "%s: vox_offset %g is not a byte offset", name,
                        h->vox_offset);
    /* A single file's data cannot start inside the header; writers that
     * leave vox_offset at 0 mean "right after it" (nibabel's fix). */
    if (h->single && h->vox_offset < (double)hsize)
        h->vox_offset = (double)(hsize + 4);

    for (int i = 1; i <= 3; i++) {
        double p = fabs(h->pixdim[i]);
        h->pixdim[i] = (p > 0 && isfinite(p)) ? p : 1.0;
    }
    return R3D_OK;
}

/* ---- geometry -------------------------------------------------------------- */

void r3d__nifti_quatern_to_mat44(double qb, double qc, double qd, double qx, double qy,
                                 double qz, double dx, double dy, double dz, double qfac,
                                 double R[4][4])
{
    /* nifti_quatern_to_mat44: a = sqrt(1 - b^2 - c^2 - d^2); when rounding
     * pushes it below zero the quaternion is renormalised with a = 0 (a
     * 180-degree rotation). */
    double b = qb, c = qc, d = qd, a = 1.0 - (b * b + c * c + d * d);
    if (a < 1.e-7) {
        a = 1.0 / sqrt(b * b + c * c + d * d);
        b *= a;
        c *= a;
        d *= a;
        a = 0.0;
    } else {
        a = sqrt(a);
    }
    double xd = dx > 0 ? dx : 1.0, yd = dy > 0 ? dy : 1.0, zd = dz > 0 ? dz : 1.0;
    if (qfac < 0)
        zd = -zd;
    R[0][0] = (a * a + b * b - c * c - d * d) * xd;
    R[0][1] = 2.0 * (b * c - a * d) * yd;
    R[0][2] = 2.0 * (b * d + a * c) * zd;
    R[1][0] = 2.0 * (b * c + a * d) * xd;
    R[1][1] = (a * a + c * c - b * b - d * d) * yd;
    R[1][2] = 2.0 * (c * d - a * b) * zd;
    R[2][0] = 2.0 * (b * d - a * c) * xd;
    R[2][1] = 2.0 * (c * d + a * b) * yd;
    R[2][2] = (a * a + d * d - c * c - b * b) * zd;
    R[0][3] = qx;
    R[1][3] = qy;
    R[2][3] = qz;
    R[3][0] = R[3][1] = R[3][2] = 0.0;
    R[3][3] = 1.0;
}

static void nii_affine(const nii_hdr *h, double ras[4][4])
{
    memset(ras, 0, sizeof(double) * 16);
    ras[3][3] = 1.0;
    if (h->sform_code > 0) {
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++)
                ras[i][j] = h->srow[i][j];
    } else if (h->qform_code > 0) {
        r3d__nifti_quatern_to_mat44(h->quatern[0], h->quatern[1], h->quatern[2],
                                    h->qoffset[0], h->qoffset[1], h->qoffset[2],
                                    h->pixdim[1], h->pixdim[2], h->pixdim[3],
                                    h->pixdim[0] < 0 ? -1.0 : 1.0, ras);
    } else {
        /* nibabel's shape_zoom_affine(x_flip=True): radiological x, origin
         * at the grid centre. Axes beyond dim[0] have size 1, zoom 1. */
        for (int i = 0; i < 3; i++) {
            double zoom = (i + 1 <= h->dim[0]) ? h->pixdim[i + 1] : 1.0;
            double size = (i + 1 <= h->dim[0]) ? (double)h->dim[i + 1] : 1.0;
            if (i == 0)
                zoom = -zoom;
            ras[i][i] = zoom;
            ras[i][3] = -(size - 1.0) / 2.0 * zoom;
        }
    }
}

/* ---- volume ---------------------------------------------------------------- */

/* Build the volume from the data at buf + off (avail bytes from off on).
 * If own is set, buf is a malloc'ed block this function takes over: its
 * bytes become the voxels (or it is freed). name is for messages. */
static r3d_volume *nii_build(const nii_hdr *h, uint8_t *buf, size_t off, size_t avail, int own,
                             const char *name, r3d_error *err)
{
    size_t f[5];
    int64_t dim4[4] = {h->dim[1], h->dim[2], h->dim[3], h->dim[4]};
    size_t vox_bytes = nii_dtype_bytes(h->datatype), bytes;
    char shape[128];
    for (int i = 0; i < 4; i++)
        f[i] = (size_t)dim4[i];
    f[4] = vox_bytes;
    if (dim4[3] > 1)
        snprintf(shape, sizeof shape, "%lldx%lldx%lldx%lld", (long long)dim4[0],
                 (long long)dim4[1], (long long)dim4[2], (long long)dim4[3]);
    else
        snprintf(shape, sizeof shape, "%lldx%lldx%lld", (long long)dim4[0],
                 (long long)dim4[1], (long long)dim4[2]);
    if (!r3d_mul_sizes(f, 5, &bytes)) {
        r3d_fail(err, R3D_EFORMAT, "%s: header says %s %s voxels, more than memory can "
                 "address", name, shape, nii_dtype_name(h->datatype));
        goto fail;
    }
    if (bytes > avail) {
        r3d_fail(err, R3D_EFORMAT, "%s: header says %s %s voxels (%zu bytes) but only %zu "
                 "bytes follow %s", name, shape, nii_dtype_name(h->datatype), bytes, avail,
                 h->single ? "the header" : "the start of the image data");
        goto fail;
    }
    for (int i = 0; i < 4; i++)
        if (dim4[i] > (1 << 24)) {
            r3d_fail(err, R3D_EUNSUPPORTED, "%s: dimension %d is %lld voxels, over the "
                     "16777216 this library handles", name, i + 1, (long long)dim4[i]);
            goto fail;
        }

    r3d_dtype dt = nii_to_r3d(h->datatype);
    int is64 = (h->datatype == NII_DT_INT64 || h->datatype == NII_DT_UINT64);
    r3d_volume *v = r3d_volume_new(dim4, is64 ? R3D_F64 : dt, err);
    if (!v) {
        r3d_error_prefix(err, "%s: ", name);
        goto fail;
    }
    uint8_t *vox;
    if (own) {
        /* The file buffer becomes the voxel storage: move the image to its
         * front and give back the rest. */
        memmove(buf, buf + off, bytes);
        uint8_t *shrunk = realloc(buf, bytes ? bytes : 1);
        vox = shrunk ? shrunk : buf;
        buf = NULL;
        free(v->voxels);
        v->voxels = vox;
    } else {
        vox = v->voxels;
        memcpy(vox, buf + off, bytes);
    }
    size_t nvox = bytes / vox_bytes;
    if (h->swap && h->datatype != NII_DT_RGB24)
        r3d__swap_bytes(vox, nvox, vox_bytes);
    if (is64) {
        dt = r3d__convert_int64(vox, h->datatype == NII_DT_UINT64, nvox, vox);
        if (dt == R3D_DT_NONE) {
            r3d_volume_free(v);
            r3d_fail(err, R3D_EUNSUPPORTED, "%s: %s voxels exceed 2^53 and cannot be held "
                     "exactly as int32 or float64", name, nii_dtype_name(h->datatype));
            return NULL;
        }
        v->dtype = dt;
    }

    double ras[4][4];
    nii_affine(h, ras);
    r3d_volume_set_ijk_to_ras(v, ras);

    /* Slope 0 (or not finite) means "no scaling" in nifti1.h. RGB has
     * no scaling. */
    double slope = h->scl_slope, inter = h->scl_inter;
    if (!isfinite(slope) || slope == 0.0 || h->datatype == NII_DT_RGB24) {
        slope = 1.0;
        inter = 0.0;
    }
    v->scl_slope = slope;
    v->scl_inter = isfinite(inter) ? inter : 0.0;

    double t = h->pixdim[4];
    int tu = h->xyzt_units & 0x38;
    if (dim4[3] > 1 && isfinite(t) && t > 0)
        v->t_spacing = tu == 16 ? t * 1e-3 : tu == 24 ? t * 1e-6 : t;
    memcpy(v->description, h->descrip, sizeof v->description - 1);
    v->description[sizeof v->description - 1] = 0;
    return v;

fail:
    if (own)
        free(buf);
    return NULL;
}

/* Parse a whole single-file NIfTI held in buf (gunzipped already); own as in
 * nii_build. */
static r3d_volume *nii_from_buffer(uint8_t *buf, size_t n, int own, const char *name,
                                   r3d_error *err)
{
    nii_hdr h;
    if (nii_parse(buf, n, name, &h, err) != R3D_OK) {
        if (own)
            free(buf);
        return NULL;
    }
    if (!h.single) {
        if (own)
            free(buf);
        r3d_fail(err, R3D_EUNSUPPORTED, "%s: header of a .hdr/.img pair (magic \"ni%d\") "
                 "given without its image file", name, h.version);
        return NULL;
    }
    size_t off = (size_t)h.vox_offset;
    if (off > n) {
        if (own)
            free(buf);
        r3d_fail(err, R3D_EFORMAT, "%s: vox_offset %zu is beyond the end of the data (%zu "
                 "bytes)", name, off, n);
        return NULL;
    }
    return nii_build(&h, buf, off, n - off, own, name, err);
}

r3d_volume *r3d_nifti_read_mem(const uint8_t *buf, size_t n, const char *name, r3d_error *err)
{
    if (!name)
        name = "(memory)";
    if (!buf)
        return r3d_fail(err, R3D_EARG, "%s: no data", name), NULL;
    if (r3d_is_gzip(buf, n)) {
        uint8_t *raw;
        size_t raw_n;
        if (r3d_gzip_decompress(buf, n, name, &raw, &raw_n, err) != R3D_OK)
            return NULL;
        return nii_from_buffer(raw, raw_n, 1, name, err);
    }
    return nii_from_buffer((uint8_t *)(uintptr_t)buf, n, 0, name, err);
}

/* Read a file whole, gunzipping it if it is gzip (by content, not name). */
static r3d_status read_maybe_gz(const char *path, uint8_t **out, size_t *out_n, r3d_error *err)
{
    uint8_t *b;
    size_t n;
    r3d_status s = r3d_file_read_all(path, &b, &n, err);
    if (s)
        return s;
    if (r3d_is_gzip(b, n)) {
        s = r3d_gzip_decompress(b, n, path, out, out_n, err);
        free(b);
        return s;
    }
    *out = b;
    *out_n = n;
    return R3D_OK;
}

/* "x.hdr" -> "x.img", "X.HDR.gz" -> "X.IMG.gz": swap a 3-letter extension
 * (before an optional ".gz"), keeping the case. NULL if path lacks it. */
static char *swap_ext(const char *path, const char *from, const char *to)
{
    size_t n = strlen(path), gz = r3d_has_suffix(path, ".gz") ? 3 : 0;
    if (n < gz + 5)
        return NULL;
    const char *ext = path + n - gz - 4;
    if (ext[0] != '.' || strncasecmp(ext + 1, from, 3) != 0)
        return NULL;
    char *p = strdup(path);
    if (!p)
        return NULL;
    for (int i = 0; i < 3; i++)
        p[n - gz - 3 + i] = isupper((unsigned char)ext[1 + i])
                                ? (char)toupper((unsigned char)to[i]) : to[i];
    return p;
}

r3d_volume *r3d_nifti_read(const char *path, r3d_error *err)
{
    /* Given the .img of a pair, the header is beside it. */
    char *hdr_path = swap_ext(path, "img", "hdr");
    const char *hp = hdr_path ? hdr_path : path;
    uint8_t *buf = NULL;
    size_t n;
    nii_hdr h;
    if (read_maybe_gz(hp, &buf, &n, err) != R3D_OK ||
        nii_parse(buf, n, hp, &h, err) != R3D_OK) {
        free(buf);
        free(hdr_path);
        return NULL;
    }
    if (h.single) {
        free(hdr_path);
        return nii_from_buffer(buf, n, 1, path, err);
    }
    /* A pair ("ni1"/"ni2"): the voxels live in the .img. */
    free(buf);
    char *img_path = swap_ext(hp, "hdr", "img");
    free(hdr_path);
    if (!img_path) {
        r3d_fail(err, R3D_EFORMAT, "%s: header of a .hdr/.img pair, but the name does not "
                 "end in .hdr", path);
        return NULL;
    }
    uint8_t *img;
    size_t img_n;
    r3d_volume *v = NULL;
    size_t off = (size_t)h.vox_offset;
    if (read_maybe_gz(img_path, &img, &img_n, err) != R3D_OK) {
        /* message already names the .img */
    } else if (off > img_n) {
        free(img);
        r3d_fail(err, R3D_EFORMAT, "%s: vox_offset %zu is beyond the end of the file (%zu "
                 "bytes)", img_path, off, img_n);
    } else {
        v = nii_build(&h, img, off, img_n - off, 1, img_path, err);
    }
    free(img_path);
    return v;
}

/* nifti_save.c - write an r3d_volume as NIfTI-1 or NIfTI-2 (.nii, .nii.gz).
 *
 * How: the header is filled from the volume's RAS affine
 * (r3d_volume_ijk_to_ras) the way dcm2niix writes converted DICOM:
 *   sform_code = 1 (scanner), srow = the affine's first three rows;
 *   qform_code = 1 with the quaternion from nifti_mat44_to_quatern (polar
 *     decomposition, qfac = pixdim[0] = -1 for a left-handed grid), but only
 *     when the quaternion reproduces the affine: a sheared affine (gantry
 *     tilt) cannot be a qform, so it goes in the sform only (qform_code 0);
 *   pixdim[1..3] = column norms, pixdim[4] = seconds between volumes;
 *   xyzt_units = mm + s; cal_min/cal_max = 0; scl_slope/scl_inter and
 *     descrip from the volume; vox_offset = header + 4 empty extension bytes.
 * The voxels are written as stored, in our byte order (readers detect it).
 * NIfTI-2 is used when asked for or when a dimension exceeds NIfTI-1's
 * int16 limit. Output goes through r3d_atomic_*, so a failure never leaves
 * half a file; ".nii.gz" is compressed whole in memory as one gzip member
 * (r3d_gzip_compress: libdeflate, or zlib's parallel chunks on many cores).
 *
 * Cost: header work is constant; .nii writes the voxels straight from the
 * volume; .nii.gz makes one copy (header + voxels) and compresses it.
 *
 * References: nifti1.h / nifti2.h, nifti1_io.c (nifti_mat44_to_quatern,
 * nifti_mat33_polar, R. W. Cox), dcm2niix nii_dicom.c (header defaults).
 */
#include "r3d/nifti.h"

#include "io/nifti_priv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- 3x3 helpers for the polar decomposition -------------------------------- */

static double det33(const double m[3][3])
{
    return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
           m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
           m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
}

static void inv33(const double m[3][3], double r[3][3])
{
    double d = det33(m);
    r[0][0] = (m[1][1] * m[2][2] - m[1][2] * m[2][1]) / d;
    r[0][1] = (m[0][2] * m[2][1] - m[0][1] * m[2][2]) / d;
    r[0][2] = (m[0][1] * m[1][2] - m[0][2] * m[1][1]) / d;
    r[1][0] = (m[1][2] * m[2][0] - m[1][0] * m[2][2]) / d;
    r[1][1] = (m[0][0] * m[2][2] - m[0][2] * m[2][0]) / d;
    r[1][2] = (m[0][2] * m[1][0] - m[0][0] * m[1][2]) / d;
    r[2][0] = (m[1][0] * m[2][1] - m[1][1] * m[2][0]) / d;
    r[2][1] = (m[0][1] * m[2][0] - m[0][0] * m[2][1]) / d;
    r[2][2] = (m[0][0] * m[1][1] - m[0][1] * m[1][0]) / d;
}

static double rownorm33(const double m[3][3])
{
    double best = 0;
    for (int i = 0; i < 3; i++) {
        double s = fabs(m[i][0]) + fabs(m[i][1]) + fabs(m[i][2]);
        best = s > best ? s : best;
    }
    return best;
}

static double colnorm33(const double m[3][3])
{
    double best = 0;
    for (int j = 0; j < 3; j++) {
        double s = fabs(m[0][j]) + fabs(m[1][j]) + fabs(m[2][j]);
        best = s > best ? s : best;
    }
    return best;
}

/* Nearest orthogonal matrix (nifti_mat33_polar: Higham's scaled Newton
 * iteration X <- (g X + X^-T / g) / 2), in double precision. */
static void polar33(const double a[3][3], double z[3][3])
{
    double x[3][3], y[3][3], dif = 1.0;
    memcpy(x, a, sizeof x);
    double g = det33(x);
    while (g == 0.0) { /* perturb a singular matrix */
        g = 0.00001 * (0.001 + rownorm33(x));
        x[0][0] += g;
        x[1][1] += g;
        x[2][2] += g;
        g = det33(x);
    }
    for (int k = 0;; k++) {
        double gm, gmi;
        inv33(x, y);
        if (dif > 0.3) { /* far from convergence: scale for speed */
            double alp = sqrt(rownorm33(x) * colnorm33(x));
            double bet = sqrt(rownorm33(y) * colnorm33(y));
            gm = sqrt(bet / alp);
            gmi = 1.0 / gm;
        } else {
            gm = gmi = 1.0;
        }
        dif = 0;
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) {
                z[i][j] = 0.5 * (gm * x[i][j] + gmi * y[j][i]);
                dif += fabs(z[i][j] - x[i][j]);
            }
        if (k > 100 || dif < 1e-13)
            break;
        memcpy(x, z, sizeof x);
    }
}

void r3d__nifti_mat44_to_quatern(const double R[4][4], double *qb, double *qc, double *qd,
                                 double *qx, double *qy, double *qz, double *dx, double *dy,
                                 double *dz, double *qfac)
{
    double r[3][3], p[3][3], d[3];
    *qx = R[0][3];
    *qy = R[1][3];
    *qz = R[2][3];
    for (int j = 0; j < 3; j++) {
        d[j] = sqrt(R[0][j] * R[0][j] + R[1][j] * R[1][j] + R[2][j] * R[2][j]);
        for (int i = 0; i < 3; i++)
            r[i][j] = R[i][j];
        /* a zero column gets the unit vector of its axis */
        if (d[j] == 0.0) {
            for (int i = 0; i < 3; i++)
                r[i][j] = (i == j);
            d[j] = 1.0;
        }
        for (int i = 0; i < 3; i++)
            r[i][j] /= d[j];
    }
    *dx = d[0];
    *dy = d[1];
    *dz = d[2];

    /* Polar decomposition rather than Gram-Schmidt, so that the inverse
     * matrix yields the inverse rotation (nifti1_io's reasoning). */
    polar33(r, p);
    if (det33(p) > 0) {
        *qfac = 1.0;
    } else { /* improper: flip the third column, qfac records it */
        *qfac = -1.0;
        p[0][2] = -p[0][2];
        p[1][2] = -p[1][2];
        p[2][2] = -p[2][2];
    }

    double a = p[0][0] + p[1][1] + p[2][2] + 1.0, b, c, e;
    if (a > 0.5) {
        a = 0.5 * sqrt(a);
        b = 0.25 * (p[2][1] - p[1][2]) / a;
        c = 0.25 * (p[0][2] - p[2][0]) / a;
        e = 0.25 * (p[1][0] - p[0][1]) / a;
    } else {
        double xd = 1.0 + p[0][0] - (p[1][1] + p[2][2]);
        double yd = 1.0 + p[1][1] - (p[0][0] + p[2][2]);
        double zd = 1.0 + p[2][2] - (p[0][0] + p[1][1]);
        if (xd > 1.0) {
            b = 0.5 * sqrt(xd);
            c = 0.25 * (p[0][1] + p[1][0]) / b;
            e = 0.25 * (p[0][2] + p[2][0]) / b;
            a = 0.25 * (p[2][1] - p[1][2]) / b;
        } else if (yd > 1.0) {
            c = 0.5 * sqrt(yd);
            b = 0.25 * (p[0][1] + p[1][0]) / c;
            e = 0.25 * (p[1][2] + p[2][1]) / c;
            a = 0.25 * (p[0][2] - p[2][0]) / c;
        } else {
            e = 0.5 * sqrt(zd);
            b = 0.25 * (p[0][2] + p[2][0]) / e;
            c = 0.25 * (p[1][2] + p[2][1]) / e;
            a = 0.25 * (p[1][0] - p[0][1]) / e;
        }
        if (a < 0.0) { /* the stored quaternion has a >= 0 */
            b = -b;
            c = -c;
            e = -e;
        }
    }
    *qb = b;
    *qc = c;
    *qd = e;
}

/* ---- header ---------------------------------------------------------------- */

static int r3d_to_nii(r3d_dtype t)
{
    switch (t) {
    case R3D_U8: return NII_DT_UINT8;
    case R3D_I8: return NII_DT_INT8;
    case R3D_I16: return NII_DT_INT16;
    case R3D_U16: return NII_DT_UINT16;
    case R3D_I32: return NII_DT_INT32;
    case R3D_U32: return NII_DT_UINT32;
    case R3D_F32: return NII_DT_FLOAT32;
    case R3D_F64: return NII_DT_FLOAT64;
    case R3D_RGB24: return NII_DT_RGB24;
    default: return 0;
    }
}

static void st16(uint8_t *p, int16_t v) { memcpy(p, &v, 2); }
static void st32(uint8_t *p, int32_t v) { memcpy(p, &v, 4); }
static void st64(uint8_t *p, int64_t v) { memcpy(p, &v, 8); }
static void stf(uint8_t *p, double v)
{
    float f = (float)v;
    memcpy(p, &f, 4);
}
static void std(uint8_t *p, double v) { memcpy(p, &v, 8); }

/* The header fields both versions share, computed once. */
typedef struct nii_out {
    int version, datatype, bitpix, ndim;
    int64_t dim[8];
    double pixdim[8];
    double srow[3][4];
    double quatern[3], qoffset[3];
    int qform_code;
    double slope, inter;
    char descrip[80];
} nii_out;

/* Does the qform reproduce the affine (to well within float32 precision)?
 * Only if the 3x3 part is a rotation times a diagonal scale. */
static int qform_matches(const nii_out *o, const double ras[4][4])
{
    double q[4][4], scale = 0;
    r3d__nifti_quatern_to_mat44(o->quatern[0], o->quatern[1], o->quatern[2], o->qoffset[0],
                                o->qoffset[1], o->qoffset[2], o->pixdim[1], o->pixdim[2],
                                o->pixdim[3], o->pixdim[0], q);
    for (int j = 1; j <= 3; j++)
        scale = o->pixdim[j] > scale ? o->pixdim[j] : scale;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            if (fabs(q[i][j] - ras[i][j]) > 1e-5 * scale)
                return 0;
    return 1;
}

static r3d_status fill_header(const r3d_volume *v, int version, nii_out *o, const char *path,
                              r3d_error *err)
{
    memset(o, 0, sizeof *o);
    o->version = version;
    o->datatype = r3d_to_nii(v->dtype);
    if (!o->datatype)
        return r3d_fail(err, R3D_EARG, "%s: volume has no data type to write", path);
    o->bitpix = (int)(8 * r3d_dtype_size(v->dtype));
    int64_t t = v->dim[3] > 0 ? v->dim[3] : 1;
    o->ndim = t > 1 ? 4 : 3;
    o->dim[0] = o->ndim;
    for (int i = 0; i < 3; i++)
        o->dim[i + 1] = v->dim[i];
    o->dim[4] = t;
    for (int i = 5; i < 8; i++)
        o->dim[i] = 1;

    double ras[4][4];
    r3d_volume_ijk_to_ras(v, ras);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) {
            if (!isfinite(ras[i][j]))
                return r3d_fail(err, R3D_EARG, "%s: the volume's affine is not finite", path);
            o->srow[i][j] = ras[i][j];
        }
    double qfac;
    r3d__nifti_mat44_to_quatern(ras, &o->quatern[0], &o->quatern[1], &o->quatern[2],
                                &o->qoffset[0], &o->qoffset[1], &o->qoffset[2], &o->pixdim[1],
                                &o->pixdim[2], &o->pixdim[3], &qfac);
    o->pixdim[0] = qfac;
    o->pixdim[4] = v->t_spacing > 0 && isfinite(v->t_spacing) ? v->t_spacing : 0.0;
    for (int i = 5; i < 8; i++)
        o->pixdim[i] = 1.0;
    o->qform_code = qform_matches(o, ras) ? 1 : 0;

    o->slope = isfinite(v->scl_slope) && v->scl_slope != 0 ? v->scl_slope : 1.0;
    o->inter = isfinite(v->scl_inter) ? v->scl_inter : 0.0;
    /* descrip need not be NUL-terminated when all 80 bytes are used */
    memcpy(o->descrip, v->description, strnlen(v->description, sizeof o->descrip));
    return R3D_OK;
}

/* Serialise into hdr (352 or 544 bytes, zeroed by the caller). */
static size_t encode_header(const nii_out *o, uint8_t *h)
{
    if (o->version == 1) {
        st32(h + 0, NII1_HDR_SIZE);
        h[38] = 'r'; /* "regular", as nifti1_io and nibabel write */
        for (int i = 0; i < 8; i++) {
            st16(h + 40 + 2 * i, (int16_t)o->dim[i]);
            stf(h + 76 + 4 * i, o->pixdim[i]);
        }
        st16(h + 70, (int16_t)o->datatype);
        st16(h + 72, (int16_t)o->bitpix);
        stf(h + 108, 352.0);
        stf(h + 112, o->slope);
        stf(h + 116, o->inter);
        h[123] = 2 | 8; /* NIFTI_UNITS_MM | NIFTI_UNITS_SEC */
        memcpy(h + 148, o->descrip, 80);
        st16(h + 252, (int16_t)o->qform_code);
        st16(h + 254, 1);
        for (int i = 0; i < 3; i++) {
            stf(h + 256 + 4 * i, o->quatern[i]);
            stf(h + 268 + 4 * i, o->qoffset[i]);
            for (int j = 0; j < 4; j++)
                stf(h + 280 + 16 * i + 4 * j, o->srow[i][j]);
        }
        memcpy(h + 344, "n+1", 4);
        return 352;
    }
    st32(h + 0, NII2_HDR_SIZE);
    memcpy(h + 4, "n+2\0\r\n\032\n", 8);
    st16(h + 12, (int16_t)o->datatype);
    st16(h + 14, (int16_t)o->bitpix);
    for (int i = 0; i < 8; i++) {
        st64(h + 16 + 8 * i, o->dim[i]);
        std(h + 104 + 8 * i, o->pixdim[i]);
    }
    st64(h + 168, 544);
    std(h + 176, o->slope);
    std(h + 184, o->inter);
    memcpy(h + 240, o->descrip, 80);
    st32(h + 344, o->qform_code);
    st32(h + 348, 1);
    for (int i = 0; i < 3; i++) {
        std(h + 352 + 8 * i, o->quatern[i]);
        std(h + 376 + 8 * i, o->qoffset[i]);
        for (int j = 0; j < 4; j++)
            std(h + 400 + 32 * i + 8 * j, o->srow[i][j]);
    }
    st32(h + 500, 2 | 8);
    return 544;
}

/* Checks, chooses the version and encodes the header; hdr holds 544 bytes. */
static r3d_status prepare(const r3d_volume *v, const char *name, const r3d_nifti_write_opts *opts,
                          uint8_t hdr[544], size_t *hn, r3d_error *err)
{
    if (!v || !v->voxels)
        return r3d_fail(err, R3D_EARG, "%s: no volume to write", name);
    int big = 0;
    for (int i = 0; i < 4; i++) {
        if (v->dim[i] < (i == 3 ? 0 : 1))
            return r3d_fail(err, R3D_EARG, "%s: volume dimension %d is %lld", name, i,
                            (long long)v->dim[i]);
        big |= v->dim[i] > 32767;
    }
    int version = opts->version ? opts->version : (big ? 2 : 1);
    if (version != 1 && version != 2)
        return r3d_fail(err, R3D_EARG, "%s: NIfTI version %d does not exist (1 or 2)", name,
                        version);
    if (version == 1 && big)
        return r3d_fail(err, R3D_EARG, "%s: a dimension exceeds 32767, which NIfTI-1 cannot "
                        "store; write NIfTI-2", name);
    nii_out o;
    r3d_status s = fill_header(v, version, &o, name, err);
    if (s)
        return s;
    memset(hdr, 0, 544);
    *hn = encode_header(&o, hdr);
    return R3D_OK;
}

r3d_status r3d_nifti_write_mem(const r3d_volume *v, int gz, const r3d_nifti_write_opts *opts,
                               uint8_t **bytes, size_t *n, r3d_error *err)
{
    r3d_nifti_write_opts def = R3D_NIFTI_WRITE_OPTS_INIT;
    if (!opts)
        opts = &def;
    *bytes = NULL, *n = 0;
    uint8_t hdr[544];
    size_t hn;
    r3d_status s = prepare(v, "nifti", opts, hdr, &hn, err);
    if (s)
        return s;
    size_t vb = r3d_volume_bytes(v);
    uint8_t *whole = malloc(hn + vb);
    if (!whole)
        return r3d_fail(err, R3D_ENOMEM, "nifti: cannot allocate %zu bytes", hn + vb);
    memcpy(whole, hdr, hn);
    memcpy(whole + hn, v->voxels, vb);
    if (!gz) {
        *bytes = whole, *n = hn + vb;
        return R3D_OK;
    }
    s = r3d_gzip_compress(whole, hn + vb, opts->gzip_level, opts->threads, bytes, n, err);
    free(whole);
    return s;
}

r3d_status r3d_nifti_write(const r3d_volume *v, const char *path,
                           const r3d_nifti_write_opts *opts, r3d_error *err)
{
    r3d_nifti_write_opts def = R3D_NIFTI_WRITE_OPTS_INIT;
    if (!opts)
        opts = &def;
    if (!path)
        return r3d_fail(err, R3D_EARG, "nifti: no path to write");
    int gz = r3d_has_suffix(path, ".nii.gz");
    if (!gz && !r3d_has_suffix(path, ".nii"))
        return r3d_fail(err, R3D_EARG, "%s: NIfTI output must be named .nii or .nii.gz", path);
    uint8_t hdr[544];
    size_t hn;
    r3d_status s = prepare(v, path, opts, hdr, &hn, err);
    if (s)
        return s;
    if (!gz) { /* header and voxels straight to the file, no copy */
        r3d_atomic_file *f = r3d_atomic_open(path, err);
        if (!f)
            return err ? err->code : R3D_EIO;
        if ((s = r3d_atomic_write(f, hdr, hn, err)) ||
            (s = r3d_atomic_write(f, v->voxels, r3d_volume_bytes(v), err))) {
            r3d_atomic_abort(f);
            return s;
        }
        return r3d_atomic_commit(f, err);
    }
    uint8_t *z = NULL;
    size_t zn = 0;
    if ((s = r3d_nifti_write_mem(v, 1, opts, &z, &zn, err))) {
        r3d_error_prefix(err, "%s: ", path);
        return s;
    }
    s = r3d_file_write_atomic(path, z, zn, err);
    free(z);
    return s;
}

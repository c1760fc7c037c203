/* niftool.c - a small driver over the volume readers and the NIfTI writer,
 * for the golden tests (tests/e2e/nifti_nibabel.py checks its outputs with
 * nibabel) and for timing by hand.
 *
 *   niftool copy IN OUT [--v2] [--level N] [--threads N]
 *       read IN (.nii[.gz], .hdr, .nrrd, .nhdr, .inv3) and write OUT as NIfTI
 *   niftool info IN
 *       print dims, dtype, scaling, the RAS affine and a voxel checksum
 *   niftool synth OUT DTYPE [--v2] [--4d] [--shear] [--left]
 *       write a deterministic synthetic volume (values: synth_value below)
 *   niftool inv3 IN OUT_IMAGE [OUT_LABELS]
 *       read an InVesalius project, write the image and the mask label map
 *   niftool time IN OUT REPEATS [--level N] [--threads N]
 *       read IN once, write OUT REPEATS times, print the mean write time
 * Exit status 0 on success, 1 on a library error (message on stderr),
 * 2 on bad usage.
 */
#include "r3d/r3d.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static r3d_volume *read_any(const char *path, r3d_error *err)
{
    if (r3d_has_suffix(path, ".nrrd") || r3d_has_suffix(path, ".nhdr"))
        return r3d_nrrd_read(path, err);
    if (r3d_has_suffix(path, ".inv3"))
        return r3d_inv3_read(path, NULL, err);
    return r3d_nifti_read(path, err);
}

static int fail(const r3d_error *e)
{
    fprintf(stderr, "niftool: %s (%s)\n", e->msg, r3d_status_name(e->code));
    return 1;
}

static void parse_opts(int argc, char **argv, int from, r3d_nifti_write_opts *o)
{
    for (int i = from; i < argc; i++) {
        if (!strcmp(argv[i], "--v2"))
            o->version = 2;
        else if (!strcmp(argv[i], "--level") && i + 1 < argc)
            o->gzip_level = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            o->threads = atoi(argv[++i]);
    }
}

static int has_flag(int argc, char **argv, const char *flag)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], flag))
            return 1;
    return 0;
}

static r3d_dtype dtype_by_name(const char *s)
{
    for (int t = R3D_U8; t <= R3D_RGB24; t++)
        if (!strcmp(r3d_dtype_name((r3d_dtype)t), s))
            return (r3d_dtype)t;
    return R3D_DT_NONE;
}

/* The value of voxel n (and RGB channel c) in a synthetic volume; the e2e
 * script recomputes it in numpy. Spans negative values and, for wide types,
 * values past 16 bits. */
static double synth_value(r3d_dtype t, int64_t n, int c)
{
    switch (t) {
    case R3D_U8: return (double)((n * 7 + 3) % 256);
    case R3D_I8: return (double)((n * 7 + 3) % 256 - 128);
    case R3D_I16: return (double)((n * 263) % 65536 - 32768);
    case R3D_U16: return (double)((n * 263) % 65536);
    case R3D_I32: return (double)(n * 100003 % 2000000000 - 1000000000);
    case R3D_U32: return (double)(n * 100003 % 4000000000LL);
    case R3D_F32: return (double)(float)((double)n * 0.25 - 100.0);
    case R3D_F64: return (double)n / 3.0 - 1000.0;
    case R3D_RGB24: return (double)((n * 5 + 50 * c) % 256);
    default: return 0;
    }
}

static int cmd_synth(int argc, char **argv)
{
    r3d_error err = R3D_ERROR_INIT;
    r3d_dtype t = dtype_by_name(argv[3]);
    if (t == R3D_DT_NONE) {
        fprintf(stderr, "niftool: unknown dtype %s\n", argv[3]);
        return 2;
    }
    int64_t dim[4] = {13, 11, 7, has_flag(argc, argv, "--4d") ? 3 : 1};
    r3d_volume *v = r3d_volume_new(dim, t, &err);
    if (!v)
        return fail(&err);
    int64_t nv = r3d_volume_nvox(v);
    for (int64_t n = 0; n < nv; n++) {
        void *p = v->voxels;
        switch (t) {
        case R3D_U8: ((uint8_t *)p)[n] = (uint8_t)synth_value(t, n, 0); break;
        case R3D_I8: ((int8_t *)p)[n] = (int8_t)synth_value(t, n, 0); break;
        case R3D_I16: ((int16_t *)p)[n] = (int16_t)synth_value(t, n, 0); break;
        case R3D_U16: ((uint16_t *)p)[n] = (uint16_t)synth_value(t, n, 0); break;
        case R3D_I32: ((int32_t *)p)[n] = (int32_t)synth_value(t, n, 0); break;
        case R3D_U32: ((uint32_t *)p)[n] = (uint32_t)synth_value(t, n, 0); break;
        case R3D_F32: ((float *)p)[n] = (float)synth_value(t, n, 0); break;
        case R3D_F64: ((double *)p)[n] = synth_value(t, n, 0); break;
        case R3D_RGB24:
            for (int c = 0; c < 3; c++)
                ((uint8_t *)p)[3 * n + c] = (uint8_t)synth_value(t, n, c);
            break;
        default: break;
        }
    }
    /* An oblique grid: rotation about an odd axis, anisotropic spacing;
     * optionally mirrored (left-handed, qfac -1) or sheared (sform only). */
    double a = 0.3, ras[4][4] = {{0.9 * cos(a), -0.8 * sin(a), 0, -50.25},
                                 {0.9 * sin(a) * 0.6, 0.8 * cos(a) * 0.6, -2.5 * 0.8, 20.5},
                                 {0.9 * sin(a) * 0.8, 0.8 * cos(a) * 0.8, 2.5 * 0.6, -30.125},
                                 {0, 0, 0, 1}};
    if (has_flag(argc, argv, "--left"))
        for (int r = 0; r < 3; r++)
            ras[r][0] = -ras[r][0];
    if (has_flag(argc, argv, "--shear"))
        ras[0][2] += 0.4;
    r3d_volume_set_ijk_to_ras(v, ras);
    v->t_spacing = dim[3] > 1 ? 2.5 : 0;
    snprintf(v->description, sizeof v->description, "niftool synth %s", argv[3]);
    r3d_nifti_write_opts o = R3D_NIFTI_WRITE_OPTS_INIT;
    parse_opts(argc, argv, 4, &o);
    r3d_status s = r3d_nifti_write(v, argv[2], &o, &err);
    r3d_volume_free(v);
    return s ? fail(&err) : 0;
}

static int cmd_info(const char *path)
{
    r3d_error err = R3D_ERROR_INIT;
    r3d_volume *v = read_any(path, &err);
    if (!v)
        return fail(&err);
    double ras[4][4];
    r3d_volume_ijk_to_ras(v, ras);
    printf("dims %lld %lld %lld %lld\n", (long long)v->dim[0], (long long)v->dim[1],
           (long long)v->dim[2], (long long)v->dim[3]);
    printf("dtype %s\n", r3d_dtype_name(v->dtype));
    printf("scale %.17g %.17g\n", v->scl_slope, v->scl_inter);
    for (int r = 0; r < 4; r++)
        printf("ras %.17g %.17g %.17g %.17g\n", ras[r][0], ras[r][1], ras[r][2], ras[r][3]);
    /* raw stored values, no scaling; RGB as the sum of channels */
    double sum = 0;
    int64_t nv = r3d_volume_nvox(v);
    double slope = v->scl_slope, inter = v->scl_inter;
    v->scl_slope = 1;
    v->scl_inter = 0;
    for (int64_t n = 0; n < nv; n++) {
        if (v->dtype == R3D_RGB24) {
            const uint8_t *q = (const uint8_t *)v->voxels + 3 * n;
            sum += q[0] + q[1] + q[2];
        } else {
            sum += r3d_volume_get(v, n);
        }
    }
    printf("sum %.17g\n", sum);
    printf("first");
    for (int64_t n = 0; n < nv && n < 5; n++)
        printf(" %.17g", v->dtype == R3D_RGB24 ? ((const uint8_t *)v->voxels)[3 * n]
                                               : r3d_volume_get(v, n));
    printf("\n");
    v->scl_slope = slope;
    v->scl_inter = inter;
    r3d_volume_free(v);
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    r3d_error err = R3D_ERROR_INIT;
    if (argc >= 4 && !strcmp(argv[1], "copy")) {
        r3d_volume *v = read_any(argv[2], &err);
        if (!v)
            return fail(&err);
        r3d_nifti_write_opts o = R3D_NIFTI_WRITE_OPTS_INIT;
        parse_opts(argc, argv, 4, &o);
        r3d_status s = r3d_nifti_write(v, argv[3], &o, &err);
        r3d_volume_free(v);
        return s ? fail(&err) : 0;
    }
    if (argc == 3 && !strcmp(argv[1], "info"))
        return cmd_info(argv[2]);
    if (argc >= 4 && !strcmp(argv[1], "synth"))
        return cmd_synth(argc, argv);
    if ((argc == 4 || argc == 5) && !strcmp(argv[1], "inv3")) {
        r3d_labelmap *m = NULL;
        r3d_volume *v = r3d_inv3_read(argv[2], argc == 5 ? &m : NULL, &err);
        if (!v)
            return fail(&err);
        r3d_status s = r3d_nifti_write(v, argv[3], NULL, &err);
        if (!s && m)
            s = r3d_nifti_write(m->vol, argv[4], NULL, &err);
        if (!s && m)
            for (int i = 0; i < m->table.n; i++)
                printf("label %u %s %u %u %u\n", m->table.v[i].value, m->table.v[i].name,
                       m->table.v[i].rgb[0], m->table.v[i].rgb[1], m->table.v[i].rgb[2]);
        r3d_volume_free(v);
        r3d_labelmap_free(m);
        return s ? fail(&err) : 0;
    }
    if (argc >= 5 && !strcmp(argv[1], "time")) {
        double t0 = now_s();
        r3d_volume *v = read_any(argv[2], &err);
        if (!v)
            return fail(&err);
        double t1 = now_s();
        r3d_nifti_write_opts o = R3D_NIFTI_WRITE_OPTS_INIT;
        parse_opts(argc, argv, 5, &o);
        int reps = atoi(argv[4]);
        for (int i = 0; i < reps; i++)
            if (r3d_nifti_write(v, argv[3], &o, &err)) {
                r3d_volume_free(v);
                return fail(&err);
            }
        double t2 = now_s();
        printf("read %.3f s, write %.3f s (mean of %d)\n", t1 - t0, (t2 - t1) / reps, reps);
        r3d_volume_free(v);
        return 0;
    }
    fprintf(stderr, "usage: niftool copy IN OUT [--v2] [--level N] [--threads N]\n"
                    "       niftool info IN\n"
                    "       niftool synth OUT DTYPE [--v2] [--4d] [--shear] [--left]\n"
                    "       niftool inv3 IN OUT_IMAGE [OUT_LABELS]\n"
                    "       niftool time IN OUT REPEATS [--level N] [--threads N]\n");
    return 2;
}

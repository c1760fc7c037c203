/* test_nifti.c - gzip helpers, the NIfTI-1/2 reader and writer.
 *
 * Synthetic round trips cover every dtype, both versions, .nii and .nii.gz,
 * oblique, sheared (sform only) and left-handed (qfac -1) grids. Real files
 * from ../shared/data are compared with numbers measured with nibabel 5.0.0
 * (Debian's /usr/bin/python3):
 *     img = nib.load(path); raw = np.asanyarray(img.dataobj.get_unscaled())
 *     img.shape, raw.dtype, img.affine, img.dataobj.slope / .inter,
 *     raw.reshape(-1, order="F")[:5], np.nansum(raw.astype(float)),
 *     flat[flat.size // 2], flat[-1]
 * Those tests skip with a reason when the shared data are absent. Every
 * tests/data/bad/nifti_* file is checked for its status code and message.
 */
#include "r3d/r3d.h"

#include "check.h"
#include "io/nifti_priv.h"

#include <dirent.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

static char g_tmp[256];

static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_tmp, name);
    return buf[k];
}

static uint8_t *slurp(const char *path, size_t *n)
{
    uint8_t *b = NULL;
    r3d_error e = R3D_ERROR_INIT;
    if (r3d_file_read_all(path, &b, n, &e) != R3D_OK)
        return NULL;
    return b;
}

/* A volume of the given type filled with values that exercise the sign and
 * the full width of the type. */
static r3d_volume *synth(r3d_dtype t, int64_t nx, int64_t ny, int64_t nz, int64_t nt)
{
    int64_t dim[4] = {nx, ny, nz, nt};
    r3d_volume *v = r3d_volume_new(dim, t, NULL);
    if (!v)
        return NULL;
    int64_t n = r3d_volume_nvox(v);
    for (int64_t i = 0; i < n; i++) {
        void *p = v->voxels;
        switch (t) {
        case R3D_U8: ((uint8_t *)p)[i] = (uint8_t)(i * 7 + 3); break;
        case R3D_I8: ((int8_t *)p)[i] = (int8_t)((i * 7) % 256 - 128); break;
        case R3D_I16: ((int16_t *)p)[i] = (int16_t)((i * 263) % 65536 - 32768); break;
        case R3D_U16: ((uint16_t *)p)[i] = (uint16_t)(i * 263); break;
        case R3D_I32: ((int32_t *)p)[i] = (int32_t)(i * 100003 % 2000000000 - 1000000000); break;
        case R3D_U32: ((uint32_t *)p)[i] = (uint32_t)(i * 100003 % 4000000000LL); break;
        case R3D_F32: ((float *)p)[i] = (float)i * 0.25f - 100.0f; break;
        case R3D_F64: ((double *)p)[i] = (double)i / 3.0 - 1000.0; break;
        case R3D_RGB24:
            for (int c = 0; c < 3; c++)
                ((uint8_t *)p)[3 * i + c] = (uint8_t)(i * 5 + 50 * c);
            break;
        default: break;
        }
    }
    return v;
}

/* An oblique RAS affine: a rotation about a tilted axis, 0.9 x 0.8 x 2.5 mm. */
static void oblique_ras(double m[4][4])
{
    double a = 0.3;
    double r[4][4] = {{0.9 * cos(a), -0.8 * sin(a), 0, -50.25},
                      {0.9 * sin(a) * 0.6, 0.8 * cos(a) * 0.6, -2.5 * 0.8, 20.5},
                      {0.9 * sin(a) * 0.8, 0.8 * cos(a) * 0.8, 2.5 * 0.6, -30.125},
                      {0, 0, 0, 1}};
    memcpy(m, r, sizeof r);
}

static double max_affine_diff(const r3d_volume *a, const double ras[4][4])
{
    double got[4][4], d = 0;
    r3d_volume_ijk_to_ras(a, got);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            d = fmax(d, fabs(got[i][j] - ras[i][j]));
    return d;
}

/* ---- gzip --------------------------------------------------------------------- */

static uint8_t *pattern(size_t n)
{
    /* compressible but not trivial: a slowly varying ramp with noise */
    uint8_t *b = malloc(n);
    uint32_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        b[i] = (uint8_t)((i / 4096) + ((s >> 28) & 3));
    }
    return b;
}

static void test_gzip_threaded_output_identical_for_any_thread_count(void)
{
    size_t n = (size_t)18 << 20; /* 5 chunks of 4 MiB */
    uint8_t *in = pattern(n), *z2, *z3, *z8, *back;
    size_t n2, n3, n8, nb;
    /* 6 threads and more: zlib's parallel chunks (gzip.c), the same bytes
     * for any count; fewer: one libdeflate call */
    CHECK_INT(r3d_gzip_compress(in, n, 4, 6, &z2, &n2, NULL), R3D_OK);
    CHECK_INT(r3d_gzip_compress(in, n, 4, 7, &z3, &n3, NULL), R3D_OK);
    CHECK_INT(r3d_gzip_compress(in, n, 4, 16, &z8, &n8, NULL), R3D_OK);
    CHECK_INT(n2, n3);
    CHECK_INT(n2, n8);
    CHECK(n2 == n3 && memcmp(z2, z3, n2) == 0);
    CHECK(n2 == n8 && memcmp(z2, z8, n2) == 0);
    CHECK_INT(r3d_gzip_decompress(z2, n2, "threaded", &back, &nb, NULL), R3D_OK);
    CHECK_INT(nb, n);
    CHECK(nb == n && memcmp(back, in, n) == 0);
    /* ONE member: a reader that stops at the first member's end (fflate,
     * which web viewers use) gets everything, and that end is the file's */
    uint8_t *one = malloc(n + 1);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    CHECK_INT(inflateInit2(&zs, 16 + 15), Z_OK);
    zs.next_in = z2;
    zs.avail_in = (uInt)n2;
    zs.next_out = one;
    zs.avail_out = (uInt)n + 1;
    CHECK_INT(inflate(&zs, Z_FINISH), Z_STREAM_END); /* checks the CRC and ISIZE too */
    CHECK_INT(zs.total_out, n);
    CHECK_INT(zs.avail_in, 0);
    CHECK(memcmp(one, in, n) == 0);
    inflateEnd(&zs);
    free(one);
    free(in);
    free(z2);
    free(z3);
    free(z8);
    free(back);
}

static void test_gzip_single_thread_writes_one_member_gzip_lists_whole(void)
{
    size_t n = (size_t)9 << 20;
    uint8_t *in = pattern(n), *z;
    size_t zn;
    CHECK_INT(r3d_gzip_compress(in, n, 6, 1, &z, &zn, NULL), R3D_OK);
    /* ISIZE of the (only) member is the whole length */
    uint32_t isize = (uint32_t)z[zn - 4] | (uint32_t)z[zn - 3] << 8 |
                     (uint32_t)z[zn - 2] << 16 | (uint32_t)z[zn - 1] << 24;
    CHECK_INT(isize, n);
    /* gzip -l reports the last member's ISIZE: the whole length only if
     * the file is one member */
    FILE *f = fopen(tmp_path("one.gz"), "wb");
    fwrite(z, 1, zn, f);
    fclose(f);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "gzip -l %s 2>/dev/null | tail -1 | awk '{print $2}'",
             tmp_path("one.gz"));
    FILE *p = popen(cmd, "r");
    unsigned long long listed = 0;
    if (p) {
        if (fscanf(p, "%llu", &listed) != 1)
            listed = 0;
        pclose(p);
    }
    CHECK_INT(listed, n);
    size_t nb;
    uint8_t *d;
    CHECK_INT(r3d_gzip_decompress(z, zn, "one", &d, &nb, NULL), R3D_OK);
    CHECK(nb == n && memcmp(d, in, n) == 0);
    free(d);
    free(in);
    free(z);
    unlink(tmp_path("one.gz"));
}

static void test_gzip_decompress_concatenated_members_with_small_last_member(void)
{
    /* The last member's ISIZE (10 bytes) is a bad hint for the first (2 MiB):
     * the zlib fallback must take over for it and the result be whole. */
    size_t na = (size_t)2 << 20, nb = 10;
    uint8_t *a = pattern(na), b[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, *za, *zb, *cat, *out;
    size_t zan, zbn, on;
    CHECK_INT(r3d_gzip_compress(a, na, 1, 1, &za, &zan, NULL), R3D_OK);
    CHECK_INT(r3d_gzip_compress(b, nb, 1, 1, &zb, &zbn, NULL), R3D_OK);
    cat = malloc(zan + zbn + 16);
    memcpy(cat, za, zan);
    memcpy(cat + zan, zb, zbn);
    memset(cat + zan + zbn, 0, 16); /* trailing zero padding is ignored, as gzip -d does */
    CHECK_INT(r3d_gzip_decompress(cat, zan + zbn + 16, "cat", &out, &on, NULL), R3D_OK);
    CHECK_INT(on, na + nb);
    CHECK(on == na + nb && memcmp(out, a, na) == 0 && memcmp(out + na, b, nb) == 0);
    free(a);
    free(za);
    free(zb);
    free(cat);
    free(out);
}

static void test_gzip_not_gzip_is_format_error_naming_the_file(void)
{
    r3d_error e = R3D_ERROR_INIT;
    uint8_t junk[32] = "this is not gzip at all";
    uint8_t *o;
    size_t on;
    CHECK_INT(r3d_gzip_decompress(junk, sizeof junk, "x.nii.gz", &o, &on, &e), R3D_EFORMAT);
    CHECK_CONTAINS(e.msg, "x.nii.gz: not gzip data");
    CHECK(o == NULL);
    CHECK_INT(r3d_gzip_compress(junk, 4, 13, 1, &o, &on, &e), R3D_EARG);
    CHECK_CONTAINS(e.msg, "level 13");
}

static void test_gzip_empty_input_round_trips(void)
{
    uint8_t *z, *o;
    size_t zn, on;
    CHECK_INT(r3d_gzip_compress((const uint8_t *)"", 0, 6, 4, &z, &zn, NULL), R3D_OK);
    CHECK_INT(r3d_gzip_decompress(z, zn, "empty", &o, &on, NULL), R3D_OK);
    CHECK_INT(on, 0);
    free(z);
    free(o);
}

/* ---- quaternions ------------------------------------------------------------- */

static void test_nifti_quaternion_round_trip_incl_180_degree_and_mirrored(void)
{
    /* rotations: identity, 180 deg about x, y, z (the a ~ 0 branch), an
     * oblique one; each also mirrored (qfac -1) and scaled */
    double rots[5][3][3] = {
        {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}},
        {{1, 0, 0}, {0, -1, 0}, {0, 0, -1}},
        {{-1, 0, 0}, {0, 1, 0}, {0, 0, -1}},
        {{-1, 0, 0}, {0, -1, 0}, {0, 0, 1}},
        {{0.36, 0.48, -0.8}, {-0.8, 0.6, 0}, {0.48, 0.64, 0.6}},
    };
    double scale[3] = {0.7, 1.3, 2.5};
    for (int r = 0; r < 5; r++)
        for (int mirror = 0; mirror < 2; mirror++) {
            double m[4][4] = {{0}}, q[4][4];
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++)
                    m[i][j] = rots[r][i][j] * scale[j] * (mirror && j == 2 ? -1 : 1);
            m[0][3] = 12.5;
            m[1][3] = -7.25;
            m[2][3] = 3;
            m[3][3] = 1;
            double qb, qc, qd, qx, qy, qz, dx, dy, dz, qfac;
            r3d__nifti_mat44_to_quatern(m, &qb, &qc, &qd, &qx, &qy, &qz, &dx, &dy, &dz, &qfac);
            CHECK_NEAR(qfac, mirror ? -1.0 : 1.0, 0);
            CHECK_NEAR(dx, scale[0], 1e-12);
            CHECK_NEAR(dz, scale[2], 1e-12);
            r3d__nifti_quatern_to_mat44(qb, qc, qd, qx, qy, qz, dx, dy, dz, qfac, q);
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    CHECK_NEAR(q[i][j], m[i][j], 1e-9);
        }
}

/* ---- synthetic round trips ------------------------------------------------------ */

static void roundtrip(r3d_dtype t, int version, int gz, int64_t nt)
{
    r3d_volume *v = synth(t, 13, 11, 7, nt);
    double ras[4][4];
    oblique_ras(ras);
    r3d_volume_set_ijk_to_ras(v, ras);
    v->scl_slope = t == R3D_RGB24 ? 1.0 : 0.5;
    v->scl_inter = t == R3D_RGB24 ? 0.0 : -3.0;
    v->t_spacing = nt > 1 ? 2.5 : 0;
    snprintf(v->description, sizeof v->description, "round trip %s", r3d_dtype_name(t));
    char name[64];
    snprintf(name, sizeof name, "rt_%s_v%d%s", r3d_dtype_name(t), version, gz ? ".nii.gz" : ".nii");
    r3d_nifti_write_opts o = R3D_NIFTI_WRITE_OPTS_INIT;
    o.version = version;
    r3d_error e = R3D_ERROR_INIT;
    CHECK_INT(r3d_nifti_write(v, tmp_path(name), &o, &e), R3D_OK);
    r3d_volume *b = r3d_nifti_read(tmp_path(name), &e);
    CHECK(b != NULL);
    if (!b) {
        fprintf(stderr, "  %s: %s\n", name, e.msg);
        r3d_volume_free(v);
        return;
    }
    CHECK_INT(b->dtype, t);
    for (int i = 0; i < 4; i++)
        CHECK_INT(b->dim[i], v->dim[i]);
    CHECK(memcmp(b->voxels, v->voxels, r3d_volume_bytes(v)) == 0);
    /* NIfTI-2 keeps doubles; NIfTI-1 rounds the affine to float32 */
    CHECK_NEAR(max_affine_diff(b, ras), 0.0, version == 2 ? 0.0 : 5e-6);
    CHECK_NEAR(b->scl_slope, v->scl_slope, 0);
    CHECK_NEAR(b->scl_inter, v->scl_inter, 0);
    CHECK_NEAR(b->t_spacing, v->t_spacing, 1e-6);
    CHECK_STR(b->description, v->description);
    r3d_volume_free(b);
    r3d_volume_free(v);
    unlink(tmp_path(name));
}

static void test_nifti_roundtrip_every_dtype_nifti1_and_2_nii_and_gz_identical(void)
{
    for (int t = R3D_U8; t <= R3D_RGB24; t++)
        for (int version = 1; version <= 2; version++)
            for (int gz = 0; gz < 2; gz++)
                roundtrip((r3d_dtype)t, version, gz, 1);
}

static void test_nifti_roundtrip_4d_keeps_time_axis_and_spacing(void)
{
    roundtrip(R3D_I16, 1, 1, 3);
    roundtrip(R3D_F32, 2, 0, 4);
}

/* Header fields straight from the written bytes (NIfTI-1, our byte order). */
static int16_t hdr_i16(const uint8_t *h, int off) { int16_t v; memcpy(&v, h + off, 2); return v; }
static float hdr_f32(const uint8_t *h, int off) { float v; memcpy(&v, h + off, 4); return v; }

static void test_nifti_sheared_affine_goes_in_sform_only(void)
{
    r3d_volume *v = synth(R3D_I16, 5, 4, 3, 1);
    double ras[4][4];
    oblique_ras(ras);
    ras[0][2] += 0.4; /* shear: the k column is no longer orthogonal */
    r3d_volume_set_ijk_to_ras(v, ras);
    CHECK_INT(r3d_nifti_write(v, tmp_path("shear.nii"), NULL, NULL), R3D_OK);
    size_t n;
    uint8_t *h = slurp(tmp_path("shear.nii"), &n);
    CHECK(h && n >= 352);
    if (h) {
        CHECK_INT(hdr_i16(h, 252), 0); /* qform_code */
        CHECK_INT(hdr_i16(h, 254), 1); /* sform_code */
        CHECK_NEAR(hdr_f32(h, 280 + 8), (float)ras[0][2], 0);
    }
    r3d_volume *b = r3d_nifti_read(tmp_path("shear.nii"), NULL);
    CHECK(b && max_affine_diff(b, ras) < 5e-6);
    free(h);
    r3d_volume_free(b);
    r3d_volume_free(v);
    unlink(tmp_path("shear.nii"));
}

static void test_nifti_left_handed_affine_writes_qfac_minus_one_and_qform_agrees(void)
{
    r3d_volume *v = synth(R3D_U8, 5, 4, 3, 1);
    double ras[4][4];
    oblique_ras(ras);
    for (int r = 0; r < 3; r++)
        ras[r][0] = -ras[r][0]; /* mirror i: determinant < 0 */
    r3d_volume_set_ijk_to_ras(v, ras);
    CHECK_INT(r3d_nifti_write(v, tmp_path("left.nii"), NULL, NULL), R3D_OK);
    size_t n;
    uint8_t *h = slurp(tmp_path("left.nii"), &n);
    CHECK(h != NULL);
    if (!h)
        goto out;
    CHECK_NEAR(hdr_f32(h, 76), -1.0, 0); /* pixdim[0] = qfac */
    CHECK_INT(hdr_i16(h, 252), 1);
    /* Read through the qform alone: drop the sform code. */
    int16_t zero = 0;
    memcpy(h + 254, &zero, 2);
    r3d_volume *b = r3d_nifti_read_mem(h, n, "left-qform", NULL);
    CHECK(b != NULL);
    CHECK(b && max_affine_diff(b, ras) < 5e-6);
    r3d_volume_free(b);
out:
    free(h);
    r3d_volume_free(v);
    unlink(tmp_path("left.nii"));
}

static void test_nifti_no_codes_gives_nibabels_centred_pixdim_affine(void)
{
    /* nibabel 5.0.0 on this header (dims 4x5x6, pixdim 2,3,4, both codes 0):
     *   img.affine = [[-2,0,0,3],[0,3,0,-6],[0,0,4,-10]] */
    r3d_volume *v = synth(R3D_U8, 4, 5, 6, 1);
    double ras[4][4] = {{2, 0, 0, 0}, {0, 3, 0, 0}, {0, 0, 4, 0}, {0, 0, 0, 1}};
    r3d_volume_set_ijk_to_ras(v, ras);
    CHECK_INT(r3d_nifti_write(v, tmp_path("nocode.nii"), NULL, NULL), R3D_OK);
    size_t n;
    uint8_t *h = slurp(tmp_path("nocode.nii"), &n);
    int16_t zero = 0;
    if (h) {
        memcpy(h + 252, &zero, 2);
        memcpy(h + 254, &zero, 2);
    }
    r3d_volume *b = h ? r3d_nifti_read_mem(h, n, "nocode", NULL) : NULL;
    double want[4][4] = {{-2, 0, 0, 3}, {0, 3, 0, -6}, {0, 0, 4, -10}, {0, 0, 0, 1}};
    CHECK(b != NULL);
    if (b)
        CHECK_NEAR(max_affine_diff(b, want), 0, 0);
    free(h);
    r3d_volume_free(b);
    r3d_volume_free(v);
    unlink(tmp_path("nocode.nii"));
}

static void test_nifti_auto_version_2_when_a_dimension_exceeds_32767(void)
{
    r3d_volume *v = synth(R3D_U8, 40000, 1, 1, 1);
    r3d_error e = R3D_ERROR_INIT;
    CHECK_INT(r3d_nifti_write(v, tmp_path("wide.nii"), NULL, &e), R3D_OK);
    size_t n;
    uint8_t *h = slurp(tmp_path("wide.nii"), &n);
    int32_t sz = 0;
    if (h)
        memcpy(&sz, h, 4);
    CHECK_INT(sz, 540);
    CHECK_INT(n, 544 + 40000);
    r3d_volume *b = r3d_nifti_read(tmp_path("wide.nii"), NULL);
    CHECK(b && b->dim[0] == 40000 && memcmp(b->voxels, v->voxels, 40000) == 0);
    r3d_nifti_write_opts o = R3D_NIFTI_WRITE_OPTS_INIT;
    o.version = 1;
    CHECK_INT(r3d_nifti_write(v, tmp_path("wide1.nii"), &o, &e), R3D_EARG);
    CHECK_CONTAINS(e.msg, "NIfTI-1 cannot store");
    free(h);
    r3d_volume_free(b);
    r3d_volume_free(v);
    unlink(tmp_path("wide.nii"));
}

static int count_temp_files(void)
{
    int n = 0;
    DIR *d = opendir(g_tmp);
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, ".tmp-") != NULL;
    if (d)
        closedir(d);
    return n;
}

static void test_nifti_write_failure_leaves_old_file_and_no_temporary(void)
{
    r3d_volume *v = synth(R3D_I16, 6, 5, 4, 1);
    r3d_error e = R3D_ERROR_INIT;
    const char *p = tmp_path("keep.nii.gz");
    CHECK_INT(r3d_nifti_write(v, p, NULL, &e), R3D_OK);
    size_t n0, n1;
    uint8_t *before = slurp(p, &n0);
    r3d_nifti_write_opts o = R3D_NIFTI_WRITE_OPTS_INIT;
    o.gzip_level = 99; /* refused after the header is built */
    CHECK_INT(r3d_nifti_write(v, p, &o, &e), R3D_EARG);
    CHECK_CONTAINS(e.msg, "keep.nii.gz");
    uint8_t *after = slurp(p, &n1);
    CHECK(before && after && n0 == n1 && memcmp(before, after, n0) == 0);
    CHECK_INT(count_temp_files(), 0);
    CHECK_INT(r3d_nifti_write(v, "/nonexistent-dir/x.nii", NULL, &e), R3D_EIO);
    CHECK_CONTAINS(e.msg, "/nonexistent-dir/x.nii");
    CHECK_INT(r3d_nifti_write(v, tmp_path("x.mha"), NULL, &e), R3D_EARG);
    CHECK_CONTAINS(e.msg, ".nii or .nii.gz");
    free(before);
    free(after);
    r3d_volume_free(v);
    unlink(p);
}

static void test_nifti_threaded_gz_file_identical_for_6_and_8_threads(void)
{
    r3d_volume *v = synth(R3D_I16, 256, 256, 80, 1); /* 10 MiB: 3 chunks, one gzip member */
    r3d_nifti_write_opts o = R3D_NIFTI_WRITE_OPTS_INIT;
    o.threads = 6;
    CHECK_INT(r3d_nifti_write(v, tmp_path("t2.nii.gz"), &o, NULL), R3D_OK);
    o.threads = 8;
    CHECK_INT(r3d_nifti_write(v, tmp_path("t4.nii.gz"), &o, NULL), R3D_OK);
    size_t a, b;
    uint8_t *fa = slurp(tmp_path("t2.nii.gz"), &a), *fb = slurp(tmp_path("t4.nii.gz"), &b);
    CHECK(fa && fb && a == b && memcmp(fa, fb, a) == 0);
    r3d_volume *r = r3d_nifti_read(tmp_path("t4.nii.gz"), NULL);
    CHECK(r && memcmp(r->voxels, v->voxels, r3d_volume_bytes(v)) == 0);
    free(fa);
    free(fb);
    r3d_volume_free(r);
    r3d_volume_free(v);
    unlink(tmp_path("t2.nii.gz"));
    unlink(tmp_path("t4.nii.gz"));
}

static void test_nifti_hdr_img_pair_reads_from_either_name(void)
{
    r3d_volume *v = synth(R3D_I16, 6, 5, 4, 1);
    double ras[4][4];
    oblique_ras(ras);
    r3d_volume_set_ijk_to_ras(v, ras);
    CHECK_INT(r3d_nifti_write(v, tmp_path("pair.nii"), NULL, NULL), R3D_OK);
    size_t n;
    uint8_t *h = slurp(tmp_path("pair.nii"), &n);
    CHECK(h != NULL);
    if (!h)
        goto out;
    /* the pair form: magic "ni1", vox_offset 0, voxels in the .img */
    memcpy(h + 344, "ni1", 4);
    float zero = 0;
    memcpy(h + 108, &zero, 4);
    FILE *f = fopen(tmp_path("pair.hdr"), "wb");
    fwrite(h, 1, 348, f);
    fclose(f);
    f = fopen(tmp_path("pair.img"), "wb");
    fwrite(h + 352, 1, n - 352, f);
    fclose(f);
    for (int k = 0; k < 2; k++) {
        r3d_volume *b = r3d_nifti_read(tmp_path(k ? "pair.img" : "pair.hdr"), NULL);
        CHECK(b && memcmp(b->voxels, v->voxels, r3d_volume_bytes(v)) == 0);
        CHECK(b && max_affine_diff(b, ras) < 5e-6);
        r3d_volume_free(b);
    }
    r3d_error e = R3D_ERROR_INIT;
    CHECK(r3d_nifti_read_mem(h, 348, "pair.hdr", &e) == NULL);
    CHECK_INT(e.code, R3D_EUNSUPPORTED);
    CHECK_CONTAINS(e.msg, "without its image file");
    unlink(tmp_path("pair.hdr"));
    unlink(tmp_path("pair.img"));
out:
    free(h);
    r3d_volume_free(v);
    unlink(tmp_path("pair.nii"));
}

static void test_nifti_slope_zero_means_unscaled_and_vox_offset_zero_means_352(void)
{
    r3d_volume *v = synth(R3D_I16, 4, 3, 2, 1);
    v->scl_slope = 2;
    v->scl_inter = 5;
    CHECK_INT(r3d_nifti_write(v, tmp_path("s0.nii"), NULL, NULL), R3D_OK);
    size_t n;
    uint8_t *h = slurp(tmp_path("s0.nii"), &n);
    float zero = 0;
    if (h) {
        memcpy(h + 112, &zero, 4); /* scl_slope 0 */
        memcpy(h + 108, &zero, 4); /* vox_offset 0 in a single file */
    }
    r3d_volume *b = h ? r3d_nifti_read_mem(h, n, "s0", NULL) : NULL;
    CHECK(b != NULL);
    if (b) {
        CHECK_NEAR(b->scl_slope, 1, 0);
        CHECK_NEAR(b->scl_inter, 0, 0);
        CHECK(memcmp(b->voxels, v->voxels, r3d_volume_bytes(v)) == 0);
    }
    free(h);
    r3d_volume_free(b);
    r3d_volume_free(v);
    unlink(tmp_path("s0.nii"));
}

/* ---- corpus files (in the source tree, always present) ------------------------------- */

static r3d_volume *read_src(const char *rel, r3d_error *e)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", R3D_TEST_SRC, rel);
    return r3d_nifti_read(p, e);
}

static void test_nifti_big_endian_qform_only_file_equals_its_values(void)
{
    /* made with nibabel: np.arange(24).reshape(4,3,2) as int16 (so voxel
     * (i,j,k) holds 6i+2j+k), header byte-swapped to '>', sform_code 0,
     * qform_code 1 from [[0,-2,0,10],[3,0,0,-5],[0,0,4,7]] */
    r3d_error e = R3D_ERROR_INIT;
    r3d_volume *v = read_src("fuzz/corpus/fuzz_nifti/int16_bigendian_qform.nii", &e);
    CHECK(v != NULL);
    if (!v)
        return;
    double want[4][4] = {{0, -2, 0, 10}, {3, 0, 0, -5}, {0, 0, 4, 7}, {0, 0, 0, 1}};
    CHECK_NEAR(max_affine_diff(v, want), 0, 1e-6);
    int ok = 1;
    for (int k = 0; k < 2; k++)
        for (int j = 0; j < 3; j++)
            for (int i = 0; i < 4; i++)
                ok &= ((int16_t *)v->voxels)[i + 4 * j + 12 * k] == 6 * i + 2 * j + k;
    CHECK(ok);
    r3d_volume_free(v);
}

static void test_nifti_int64_labels_become_int32(void)
{
    r3d_error e = R3D_ERROR_INIT;
    r3d_volume *v = read_src("fuzz/corpus/fuzz_nifti/int64_label.nii", &e);
    CHECK(v != NULL);
    if (!v)
        return;
    CHECK_INT(v->dtype, R3D_I32);
    CHECK_INT(((int32_t *)v->voxels)[23], 23);
    r3d_volume_free(v);
}

/* ---- real files measured with nibabel ------------------------------------------------- */

typedef struct golden {
    const char *rel;
    int64_t dim[4];
    r3d_dtype dtype;
    double slope, inter;
    double aff[12];
    double first[5], sum, mid, last;
} golden;

static const golden GOLDEN[] = {
    /* big-endian int16, qform = sform code 2 */
    {"dicom/deb_nibabel/tests/anatomical.nii", {33, 41, 25, 1}, R3D_I16, 1, 0,
     {-2, 0, 0, 32, 0, 2, 0, -40, 0, 0, 2, -16},
     {10712, 10463, 10600, 11951, 9911}, 284166082, 11881, 2971},
    /* 4-D, oblique sform, an extension before the data (vox_offset 416) */
    {"dicom/deb_nibabel/tests/example4d.nii.gz", {128, 96, 24, 2}, R3D_I16, 1, 0,
     {-2, 6.7147156535937462e-19, 9.0810245110817154e-18, 117.8551025390625,
      -6.7147156535937462e-19, 1.9737114906311035, -0.35552823543548584, -35.722942352294922,
      8.2554808889609302e-18, 0.32320761680603027, 2.1710817813873291, -7.2487983703613281},
     {0, 0, 0, 0, 0}, 101985356, 0, 0},
    /* NIfTI-2, extension, vox_offset 608 */
    {"dicom/deb_nibabel/tests/example_nifti2.nii.gz", {32, 20, 12, 2}, R3D_I16, 1, 0,
     {-2, 6.7147156535937462e-19, 9.0810245110817154e-18, 117.8551025390625,
      -6.7147156535937462e-19, 1.9737114906311035, -0.35552823543548584, -35.722942352294922,
      8.2554808889609302e-18, 0.32320761680603027, 2.1710817813873291, -7.2487983703613281},
     {424, 428, 408, 403, 359}, 6926802, 439, 457},
    /* scl_slope / scl_inter */
    {"dicom/deb_nibabel/tests/functional.nii", {17, 21, 3, 20}, R3D_I16, 0.07540696859359741,
     3100.76171875, {-4, 0, 0, 32, 0, 4, 0, -40, 0, 0, 8, 0},
     {11980, 13831, 10528, 5808, 5224}, 152439152, 11788, 379},
    /* big-endian float32 */
    {"dicom/deb_nibabel/tests/reoriented_anat_moved.nii", {21, 26, 22, 1}, R3D_F32, 1, 0,
     {4, 0, 0, -35.297897338867188, 0, 4, 0, -47.977584838867188, 0, 0, 4,
      -27.599409103393555},
     {0, 0, 0, 0, 0}, 32739769.449157715, 0, 0},
    /* sform only (qform_code 0) */
    {"dicom/deb_nibabel/tests/standard.nii.gz", {4, 5, 7, 1}, R3D_U8, 1, 0,
     {1, 0, 0, 0, 0, 3, 0, 0, 0, 0, 2, 0}, {0, 255, 0, 0, 255}, 7650, 0, 255},
    /* qform only, 180-degree quaternion (0, 1, 0), qfac -1 */
    {"dicom/monai/tests/testing_data/anatomical_label.nii.gz", {33, 41, 25, 1}, R3D_U16, 1, 0,
     {-2, 0, 0, 32, 0, 2, 0, -40, 0, 0, 2, -16}, {0, 0, 0, 0, 0}, 330, 1, 0},
    /* sheared sform, uint8 with scaling */
    {"mr/niivue_main/packages/niivue/demos/images/shear.nii.gz", {306, 422, 54, 1}, R3D_U8,
     7.109804153442383, -1024,
     {0.482421875, 0, 0, -94.379356384277344, 0, 0.45749205350875854, 0, -117.10601806640625,
      0, 0.15307474136352539, 2.3708093166351318, -102.20355224609375},
     {0, 0, 0, 0, 0}, 219779166, 176, 0},
};

static void test_nifti_real_files_match_nibabel(void)
{
    char buf[1024];
    if (!test_data("dicom/deb_nibabel/tests", buf, sizeof buf))
        SKIP("no ../shared/data (dicom/deb_nibabel/tests)");
    for (size_t g = 0; g < sizeof GOLDEN / sizeof GOLDEN[0]; g++) {
        const golden *G = &GOLDEN[g];
        const char *p = test_data(G->rel, buf, sizeof buf);
        if (!p) {
            fprintf(stderr, "  skip: %s absent\n", G->rel);
            continue;
        }
        r3d_error e = R3D_ERROR_INIT;
        r3d_volume *v = r3d_nifti_read(p, &e);
        CHECK(v != NULL);
        if (!v) {
            fprintf(stderr, "  %s: %s\n", G->rel, e.msg);
            continue;
        }
        for (int i = 0; i < 4; i++)
            CHECK_INT(v->dim[i], G->dim[i]);
        CHECK_INT(v->dtype, G->dtype);
        CHECK_NEAR(v->scl_slope, G->slope, 1e-12);
        CHECK_NEAR(v->scl_inter, G->inter, 1e-9);
        double ras[4][4];
        r3d_volume_ijk_to_ras(v, ras);
        for (int i = 0; i < 12; i++)
            CHECK_NEAR(ras[i / 4][i % 4], G->aff[i], 1e-12);
        /* raw stored values */
        double slope = v->scl_slope, inter = v->scl_inter, sum = 0;
        v->scl_slope = 1;
        v->scl_inter = 0;
        int64_t n = r3d_volume_nvox(v);
        for (int i = 0; i < 5; i++)
            CHECK_NEAR(r3d_volume_get(v, i), G->first[i], 0);
        for (int64_t i = 0; i < n; i++) {
            double x = r3d_volume_get(v, i);
            sum += x == x ? x : 0;
        }
        CHECK_NEAR(sum, G->sum, fabs(G->sum) * 1e-12);
        CHECK_NEAR(r3d_volume_get(v, n / 2), G->mid, 0);
        CHECK_NEAR(r3d_volume_get(v, n - 1), G->last, 0);
        v->scl_slope = slope;
        v->scl_inter = inter;
        r3d_volume_free(v);
    }
}

static void test_nifti_dcm2niix_qform_with_qfac_matches_nibabel_get_qform(void)
{
    /* dcm_qa_ts/Ref/1.nii, written by dcm2niix: qform_code 1, qfac -1,
     * quaternion (5.0072846e-17, 0.9985367, 0.054078817). nibabel 5.0.0
     * header.get_qform()[:3] (sform code cleared here to use the qform): */
    static const double want[12] = {
        -3.25, 3.2499721018418898e-16, -1.9496736076606751e-17, 104,
        3.2499721018418898e-16, 3.230990631191013, -0.38879768776993484, -58.684310913085938,
        1.7601220535431982e-17, 0.3509979218683496, 3.5789433735865748, -84.79803466796875};
    char buf[1024];
    const char *p = test_data("dicom/dcm_qa_ts/Ref/1.nii", buf, sizeof buf);
    if (!p)
        SKIP("no ../shared/data/dicom/dcm_qa_ts/Ref/1.nii");
    size_t n;
    uint8_t *h = slurp(p, &n);
    CHECK(h != NULL);
    if (!h)
        return;
    int16_t zero = 0;
    memcpy(h + 254, &zero, 2);
    r3d_volume *v = r3d_nifti_read_mem(h, n, "1.nii", NULL);
    CHECK(v != NULL);
    if (v) {
        double ras[4][4];
        r3d_volume_ijk_to_ras(v, ras);
        for (int i = 0; i < 12; i++)
            CHECK_NEAR(ras[i / 4][i % 4], want[i], 1e-12);
    }
    free(h);
    r3d_volume_free(v);
}

static void test_nifti_cifti_6d_refused_with_reason(void)
{
    char buf[1024];
    const char *p = test_data("dicom/deb_nibabel/tests/row_major.dconn.nii", buf, sizeof buf);
    if (!p)
        SKIP("no ../shared/data/dicom/deb_nibabel/tests/row_major.dconn.nii");
    r3d_error e = R3D_ERROR_INIT;
    CHECK(r3d_nifti_read(p, &e) == NULL);
    CHECK_INT(e.code, R3D_EUNSUPPORTED);
    CHECK_CONTAINS(e.msg, "row_major.dconn.nii: 6-D data");
}

/* ---- bad files ------------------------------------------------------------------- */

typedef struct bad_case {
    const char *file;
    r3d_status code;
    const char *msg;
} bad_case;

static const bad_case BAD[] = {
    {"nifti_bad_sizeof_hdr.nii", R3D_EFORMAT, "not a NIfTI file (sizeof_hdr reads 123"},
    {"nifti_truncated_header.nii", R3D_EFORMAT, "header is cut short: 200 of 348 bytes"},
    {"nifti_truncated_data.nii", R3D_EFORMAT,
     "header says 64x64x64 int16 voxels (524288 bytes) but only 48 bytes follow the header"},
    {"nifti_dim0_zero.nii", R3D_EFORMAT, "dim[0] is 0, must be 1..7"},
    {"nifti_negative_dim.nii", R3D_EFORMAT, "dim[2] is -3, must be at least 1"},
    {"nifti_complex64_datatype.nii", R3D_EUNSUPPORTED, "datatype 32 (complex64) is not supported"},
    {"nifti_no_magic_analyze.nii", R3D_EUNSUPPORTED, "no NIfTI-1 magic"},
    {"nifti_vox_offset_beyond_eof.nii", R3D_EFORMAT, "vox_offset 1000000 is beyond the end"},
    {"nifti_vox_offset_fractional.nii", R3D_EFORMAT, "vox_offset 352.5 is not a byte offset"},
    {"nifti_6d.nii", R3D_EUNSUPPORTED, "6-D data (dim[6] = 2) is not supported"},
    {"nifti_pair_header_in_single_file.nii", R3D_EFORMAT, "does not end in .hdr"},
    {"nifti_v2_magic_damaged.nii", R3D_EFORMAT, "NIfTI-2 magic is damaged"},
    {"nifti_v2_dims_overflow.nii", R3D_EFORMAT, "more than memory can address"},
    {"nifti_int64_beyond_2p53.nii", R3D_EUNSUPPORTED, "int64 voxels exceed 2^53"},
    {"nifti_gz_truncated.nii.gz", R3D_EFORMAT, "gzip data is truncated"},
    {"nifti_gz_isize_wrong.nii.gz", R3D_EFORMAT, "stored length (ISIZE) does not match"},
    {"nifti_gz_corrupt_deflate.nii.gz", R3D_EFORMAT, "gzip data is corrupt near byte"},
};

static void test_nifti_every_bad_file_gives_its_code_and_message(void)
{
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/data/bad/%s", R3D_TEST_SRC, BAD[i].file);
        r3d_error e = R3D_ERROR_INIT;
        r3d_volume *v = r3d_nifti_read(p, &e);
        CHECK(v == NULL);
        r3d_volume_free(v);
        CHECK_INT(e.code, BAD[i].code);
        CHECK_CONTAINS(e.msg, BAD[i].msg);
        CHECK_CONTAINS(e.msg, BAD[i].file); /* the message names the file */
    }
}

static void test_nifti_bad_file_list_covers_every_nifti_file_in_bad_folder(void)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/data/bad", R3D_TEST_SRC);
    DIR *d = opendir(dir);
    struct dirent *e;
    CHECK(d != NULL);
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, "nifti_", 6) != 0)
            continue;
        int found = 0;
        for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++)
            found |= strcmp(BAD[i].file, e->d_name) == 0;
        if (!found)
            fprintf(stderr, "  %s has no test\n", e->d_name);
        CHECK(found);
    }
    if (d)
        closedir(d);
}

/* ---- a CT-sized write (time printed; speed is bench/'s) ------------------------------------------------- */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void test_nifti_write_512x512x141_int16_gz_round_trip(void)
{
    /* CT-like content: a body disc of soft tissue with noise in air. Real
     * timings against dcm2niix are in the final report of this module. */
    r3d_volume *v = synth(R3D_I16, 512, 512, 141, 1);
    int16_t *p = v->voxels;
    uint32_t s = 1;
    for (int64_t k = 0; k < 141; k++)
        for (int64_t j = 0; j < 512; j++)
            for (int64_t i = 0; i < 512; i++) {
                s = s * 1664525u + 1013904223u;
                double r = hypot((double)i - 256, (double)j - 256);
                p[(k * 512 + j) * 512 + i] =
                    (int16_t)(r < 200 ? 40 + (int)(s >> 27) : -1000 + (int)(s >> 29));
            }
    double t0 = now_s();
    CHECK_INT(r3d_nifti_write(v, tmp_path("big.nii.gz"), NULL, NULL), R3D_OK);
    double t1 = now_s();
    r3d_volume *b = r3d_nifti_read(tmp_path("big.nii.gz"), NULL);
    double t2 = now_s();
    CHECK(b && memcmp(b->voxels, v->voxels, r3d_volume_bytes(v)) == 0);
    fprintf(stderr, "  512x512x141 int16: write .nii.gz %.2f s (%d threads), read %.2f s\n",
            t1 - t0, r3d_threads(), t2 - t1);
    r3d_volume_free(b);
    r3d_volume_free(v);
    unlink(tmp_path("big.nii.gz"));
}

int main(void)
{
    snprintf(g_tmp, sizeof g_tmp, "/tmp/test_nifti_XXXXXX");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_gzip_threaded_output_identical_for_any_thread_count);
    RUN(test_gzip_single_thread_writes_one_member_gzip_lists_whole);
    RUN(test_gzip_decompress_concatenated_members_with_small_last_member);
    RUN(test_gzip_not_gzip_is_format_error_naming_the_file);
    RUN(test_gzip_empty_input_round_trips);
    RUN(test_nifti_quaternion_round_trip_incl_180_degree_and_mirrored);
    RUN(test_nifti_roundtrip_every_dtype_nifti1_and_2_nii_and_gz_identical);
    RUN(test_nifti_roundtrip_4d_keeps_time_axis_and_spacing);
    RUN(test_nifti_sheared_affine_goes_in_sform_only);
    RUN(test_nifti_left_handed_affine_writes_qfac_minus_one_and_qform_agrees);
    RUN(test_nifti_no_codes_gives_nibabels_centred_pixdim_affine);
    RUN(test_nifti_auto_version_2_when_a_dimension_exceeds_32767);
    RUN(test_nifti_write_failure_leaves_old_file_and_no_temporary);
    RUN(test_nifti_threaded_gz_file_identical_for_6_and_8_threads);
    RUN(test_nifti_hdr_img_pair_reads_from_either_name);
    RUN(test_nifti_slope_zero_means_unscaled_and_vox_offset_zero_means_352);
    RUN(test_nifti_big_endian_qform_only_file_equals_its_values);
    RUN(test_nifti_int64_labels_become_int32);
    RUN(test_nifti_real_files_match_nibabel);
    RUN(test_nifti_dcm2niix_qform_with_qfac_matches_nibabel_get_qform);
    RUN(test_nifti_cifti_6d_refused_with_reason);
    RUN(test_nifti_every_bad_file_gives_its_code_and_message);
    RUN(test_nifti_bad_file_list_covers_every_nifti_file_in_bad_folder);
    RUN(test_nifti_write_512x512x141_int16_gz_round_trip);
    rmdir(g_tmp);
    return CHECK_DONE("test_nifti");
}

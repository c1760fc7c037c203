/* test_nrrd.c - the NRRD reader: encodings, byte orders, spaces, layouts,
 * skips, the label maps of ../shared/data (pyradiomics, dcmqi) and ITK's
 * detached 2-D headers, and every tests/data/bad/nrrd_* file.
 *
 * Expected numbers for the shared files were measured with Debian's
 * /usr/bin/python3 and numpy, reading the NRRD by hand (no pynrrd):
 *     header fields split at ": ", data = gzip.decompress(bytes after the
 *     blank line), a = np.frombuffer(data, "<i2" / "<i4" / "<u2"),
 *     a.sum(), a[:3], a[a.size // 2], a[-1], (a != 0).sum()
 * and the geometry is the header's space directions / space origin (LPS).
 */
#include "r3d/r3d.h"

#include "check.h"

#include <dirent.h>
#include <stdint.h>
#include <unistd.h>

static r3d_volume *mem(const char *text, const void *data, size_t dn, r3d_error *e)
{
    size_t tn = strlen(text);
    uint8_t *b = malloc(tn + dn + 1);
    memcpy(b, text, tn);
    if (dn)
        memcpy(b + tn, data, dn);
    r3d_volume *v = r3d_nrrd_read_mem(b, tn + dn, "test.nrrd", e);
    free(b);
    return v;
}

static double lps(const r3d_volume *v, int r, int c) { return v->ijk_to_lps[r][c]; }

static const char *HDR3 = "NRRD0004\n"
                          "type: short\n"
                          "dimension: 3\n"
                          "space: left-posterior-superior\n"
                          "sizes: 4 3 2\n"
                          "space directions: (0.5,0,0) (0,0.75,0) (0,0,2.5)\n"
                          "kinds: domain domain domain\n"
                          "endian: little\n"
                          "encoding: raw\n"
                          "space origin: (-10,20.5,-30)\n";

static int16_t RAMP[24];

static void test_nrrd_raw_lps_geometry_and_values(void)
{
    char h[1024];
    snprintf(h, sizeof h, "%s\n", HDR3);
    r3d_error e = R3D_ERROR_INIT;
    r3d_volume *v = mem(h, RAMP, sizeof RAMP, &e);
    CHECK(v != NULL);
    if (!v)
        return;
    CHECK_INT(v->dtype, R3D_I16);
    CHECK_INT(v->dim[0], 4);
    CHECK_INT(v->dim[2], 2);
    CHECK_NEAR(lps(v, 0, 0), 0.5, 0);
    CHECK_NEAR(lps(v, 1, 1), 0.75, 0);
    CHECK_NEAR(lps(v, 2, 2), 2.5, 0);
    CHECK_NEAR(lps(v, 0, 3), -10, 0);
    CHECK_NEAR(lps(v, 1, 3), 20.5, 0);
    CHECK_NEAR(v->spacing_mm[1], 0.75, 0);
    CHECK(memcmp(v->voxels, RAMP, sizeof RAMP) == 0);
    r3d_volume_free(v);
}

static void test_nrrd_ras_space_negates_x_and_y(void)
{
    const char *h = "NRRD0005\ntype: uchar\ndimension: 3\nspace: RAS\nsizes: 2 2 1\n"
                    "space directions: (1,0,0) (0,2,0) (0,0,3)\nencoding: raw\n"
                    "space origin: (5,6,7)\n\n";
    uint8_t d[4] = {1, 2, 3, 4};
    r3d_volume *v = mem(h, d, 4, NULL);
    CHECK(v != NULL);
    if (!v)
        return;
    CHECK_NEAR(lps(v, 0, 0), -1, 0);
    CHECK_NEAR(lps(v, 1, 1), -2, 0);
    CHECK_NEAR(lps(v, 2, 2), 3, 0);
    CHECK_NEAR(lps(v, 0, 3), -5, 0);
    CHECK_NEAR(lps(v, 1, 3), -6, 0);
    CHECK_NEAR(lps(v, 2, 3), 7, 0);
    r3d_volume_free(v);
}

static void test_nrrd_gzip_big_endian_and_byte_skip_in_decompressed_data(void)
{
    /* 4 bytes of junk, then 24 big-endian int32, all gzipped: byte skip
     * counts decompressed bytes, as teem does */
    uint8_t raw[4 + 96];
    memset(raw, 0xee, 4);
    for (int i = 0; i < 24; i++) {
        uint32_t x = (uint32_t)(i * 1000 - 5000);
        raw[4 + 4 * i] = (uint8_t)(x >> 24);
        raw[5 + 4 * i] = (uint8_t)(x >> 16);
        raw[6 + 4 * i] = (uint8_t)(x >> 8);
        raw[7 + 4 * i] = (uint8_t)x;
    }
    uint8_t *z;
    size_t zn;
    CHECK_INT(r3d_gzip_compress(raw, sizeof raw, 6, 1, &z, &zn, NULL), R3D_OK);
    const char *h = "NRRD0004\ntype: int32\ndimension: 3\nspace: LPS\nsizes: 4 3 2\n"
                    "space directions: (1,0,0) (0,1,0) (0,0,1)\nendian: big\n"
                    "encoding: gzip\nbyte skip: 4\n\n";
    r3d_error e = R3D_ERROR_INIT;
    r3d_volume *v = mem(h, z, zn, &e);
    CHECK(v != NULL);
    if (v) {
        CHECK_INT(((int32_t *)v->voxels)[0], -5000);
        CHECK_INT(((int32_t *)v->voxels)[23], 18000);
    } else {
        fprintf(stderr, "  %s\n", e.msg);
    }
    free(z);
    r3d_volume_free(v);
}

static void test_nrrd_byte_skip_minus_one_takes_last_bytes_and_line_skip(void)
{
    const char *h = "NRRD0004\ntype: uchar\ndimension: 2\nsizes: 3 2\nencoding: raw\n"
                    "byte skip: -1\n\n";
    uint8_t d[10] = {9, 9, 9, 9, 1, 2, 3, 4, 5, 6};
    r3d_volume *v = mem(h, d, 10, NULL);
    CHECK(v && ((uint8_t *)v->voxels)[0] == 1 && ((uint8_t *)v->voxels)[5] == 6);
    r3d_volume_free(v);
    const char *h2 = "NRRD0004\ntype: uchar\ndimension: 2\nsizes: 3 2\nencoding: raw\n"
                     "line skip: 2\n\n";
    const char *d2 = "junk line\nanother\n\x01\x02\x03\x04\x05\x06";
    v = mem(h2, d2, strlen(d2), NULL);
    CHECK(v && ((uint8_t *)v->voxels)[0] == 1 && ((uint8_t *)v->voxels)[5] == 6);
    r3d_volume_free(v);
}

static void test_nrrd_ascii_float_and_crlf_header(void)
{
    const char *h = "NRRD0004\r\ntype: float\r\ndimension: 3\r\nsizes: 2 2 2\r\n"
                    "spacings: 0.5 0.5 3\r\nencoding: ascii\r\n\r\n";
    const char *d = "0 0.5 1\n1.5 2 -2.5\n1e3 7\n";
    r3d_error e = R3D_ERROR_INIT;
    r3d_volume *v = mem(h, d, strlen(d), &e);
    CHECK(v != NULL);
    if (!v) {
        fprintf(stderr, "  %s\n", e.msg);
        return;
    }
    CHECK_INT(v->dtype, R3D_F32);
    CHECK_NEAR(((float *)v->voxels)[5], -2.5, 0);
    CHECK_NEAR(((float *)v->voxels)[6], 1000, 0);
    CHECK_NEAR(lps(v, 2, 2), 3, 0); /* spacings, no space: ITK's LPS */
    r3d_volume_free(v);
    /* too few samples */
    v = mem(h, "1 2 3", 5, &e);
    CHECK(v == NULL);
    CHECK_CONTAINS(e.msg, "test.nrrd: header says 8 samples");
}

static void test_nrrd_rgb_first_axis_becomes_rgb24(void)
{
    const char *h = "NRRD0004\ntype: uchar\ndimension: 4\nspace: RAS\nsizes: 3 2 1 1\n"
                    "space directions: none (1,0,0) (0,1,0) (0,0,1)\n"
                    "kinds: RGB-color domain domain domain\nencoding: raw\n\n";
    uint8_t d[6] = {10, 20, 30, 40, 50, 60};
    r3d_volume *v = mem(h, d, 6, NULL);
    CHECK(v && v->dtype == R3D_RGB24 && v->dim[0] == 2 && v->dim[1] == 1);
    CHECK(v && memcmp(v->voxels, d, 6) == 0);
    r3d_volume_free(v);
}

static void test_nrrd_trailing_list_axis_becomes_time(void)
{
    const char *h = "NRRD0004\ntype: ushort\ndimension: 4\nspace: LPS\nsizes: 2 1 1 3\n"
                    "space directions: (1,0,0) (0,1,0) (0,0,1) none\n"
                    "kinds: domain domain domain list\nendian: little\nencoding: raw\n\n";
    uint16_t d[6] = {1, 2, 3, 4, 5, 6};
    r3d_volume *v = mem(h, d, sizeof d, NULL);
    CHECK(v && v->dim[3] == 3 && ((uint16_t *)v->voxels)[5] == 6);
    r3d_volume_free(v);
}

static void test_nrrd_int64_labels_become_int32(void)
{
    const char *h = "NRRD0004\ntype: int64\ndimension: 3\nsizes: 2 1 1\nendian: little\n"
                    "encoding: raw\n\n";
    int64_t d[2] = {7, -3};
    r3d_volume *v = mem(h, d, sizeof d, NULL);
    CHECK(v && v->dtype == R3D_I32 && ((int32_t *)v->voxels)[1] == -3);
    r3d_volume_free(v);
}

static void test_nrrd_unknown_kinds_fall_back_to_space_directions(void)
{
    /* teem writes "none" or "???" for an axis of no known kind */
    const char *h = "NRRD0004\ntype: uchar\ndimension: 3\nspace: LPS\nsizes: 2 2 1\n"
                    "space directions: (1,0,0) (0,1,0) (0,0,4)\nkinds: none ??? none\n"
                    "encoding: raw\n\n";
    uint8_t d[4] = {1, 2, 3, 4};
    r3d_error e = R3D_ERROR_INIT;
    r3d_volume *v = mem(h, d, 4, &e);
    CHECK(v && v->dim[0] == 2 && v->dim[2] == 1 && lps(v, 2, 2) == 4);
    if (!v)
        fprintf(stderr, "  %s\n", e.msg);
    r3d_volume_free(v);
}

/* ---- shared data ---------------------------------------------------------------- */

typedef struct nrrd_golden {
    const char *rel;
    int64_t dim[3];
    r3d_dtype dtype;
    double dir[3], origin[3]; /* diagonal directions, LPS origin */
    double sum, first[3], mid, last;
    int64_t nonzero;
} nrrd_golden;

static const nrrd_golden NG[] = {
    {"mr/pyradiomics/data/brain1_label.nrrd", {256, 256, 25}, R3D_I32,
     {0.78124999999999989, -0.78124999999999989, 6.4999999999999982},
     {-99.609374999999986, 99.609374999999986, -77.999999999999957}, 4137, {0, 0, 0}, 0, 0,
     4137},
    {"mr/pyradiomics/data/brain1_image.nrrd", {256, 256, 25}, R3D_I16,
     {0.78124999999999989, -0.78124999999999989, 6.4999999999999982},
     {-99.609374999999986, 99.609374999999986, -77.999999999999957}, 631859459, {0, 0, 13}, 0,
     0, 1546861},
    {"mr/pyradiomics/data/prostate_phantom_subvolume.nrrd", {82, 67, 13}, R3D_U16,
     {-0.5, -0.5, 3}, {15.683382511138916, 76.535760879516602, -52.776130676269538}, 27811967,
     {1486, 1488, 1486}, 1751, 1614, 71369},
    {"dicom/dcmqi/data/segmentations/liver_seg.nrrd", {512, 512, 3}, R3D_I16,
     {0.81054700000000002, 0.81054700000000002, 1}, {-235.19999999999999, -226.80000000000001,
                                                     -128.69}, 107098, {0, 0, 0}, 0, 0, 107098},
};

static void test_nrrd_shared_label_maps_match_numpy(void)
{
    char buf[1024];
    if (!test_data("mr/pyradiomics/data", buf, sizeof buf))
        SKIP("no ../shared/data (mr/pyradiomics)");
    for (size_t g = 0; g < sizeof NG / sizeof NG[0]; g++) {
        const nrrd_golden *G = &NG[g];
        const char *p = test_data(G->rel, buf, sizeof buf);
        if (!p)
            continue;
        r3d_error e = R3D_ERROR_INIT;
        r3d_volume *v = r3d_nrrd_read(p, &e);
        CHECK(v != NULL);
        if (!v) {
            fprintf(stderr, "  %s: %s\n", G->rel, e.msg);
            continue;
        }
        for (int i = 0; i < 3; i++) {
            CHECK_INT(v->dim[i], G->dim[i]);
            CHECK_NEAR(lps(v, i, i), G->dir[i], 0);
            CHECK_NEAR(lps(v, i, 3), G->origin[i], 0);
        }
        CHECK_INT(v->dtype, G->dtype);
        int64_t n = r3d_volume_nvox(v), nz = 0;
        double sum = 0;
        for (int64_t i = 0; i < n; i++) {
            double x = r3d_volume_get(v, i);
            sum += x;
            nz += x != 0;
        }
        CHECK_NEAR(sum, G->sum, 0);
        CHECK_INT(nz, G->nonzero);
        for (int i = 0; i < 3; i++)
            CHECK_NEAR(r3d_volume_get(v, i), G->first[i], 0);
        CHECK_NEAR(r3d_volume_get(v, n / 2), G->mid, 0);
        CHECK_NEAR(r3d_volume_get(v, n - 1), G->last, 0);
        r3d_volume_free(v);
    }
}

static int read_all_nrrd_in(const char *dir, int *count)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int failures = 0;
    while (d && (e = readdir(d))) {
        char p[2048];
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (e->d_type == DT_DIR) {
            failures += read_all_nrrd_in(p, count);
            continue;
        }
        if (!r3d_has_suffix(p, ".nrrd") && !r3d_has_suffix(p, ".nhdr"))
            continue;
        r3d_error er = R3D_ERROR_INIT;
        r3d_volume *v = r3d_nrrd_read(p, &er);
        if (!v) {
            fprintf(stderr, "  %s: %s\n", p, er.msg);
            failures++;
        }
        (*count)++;
        r3d_volume_free(v);
    }
    if (d)
        closedir(d);
    return failures;
}

static void test_nrrd_every_shared_label_map_reads(void)
{
    char a[1024], b[1024];
    const char *pa = test_data("mr/pyradiomics/data", a, sizeof a);
    const char *pb = test_data("dicom/dcmqi/data/segmentations", b, sizeof b);
    if (!pa || !pb)
        SKIP("no ../shared/data pyradiomics / dcmqi folders");
    int count = 0;
    CHECK_INT(read_all_nrrd_in(pa, &count) + read_all_nrrd_in(pb, &count), 0);
    CHECK(count >= 20);
}

static void test_nrrd_itk_detached_2d_rotated_header(void)
{
    /* BrainProtonDensitySliceBorder20DirectionPlus30.nhdr: 221x257 uchar,
     * directions (0.866025,0.5) (-0.5,0.866025), no "space" (ITK: LPS),
     * data in the .raw beside it; numpy: sum 4861905, a[size // 2] = 203 */
    char buf[1024];
    const char *p = test_data("mr/deb_itk_examples/BrainProtonDensitySliceBorder20DirectionPlus30.nhdr",
                              buf, sizeof buf);
    if (!p)
        SKIP("no ../shared/data/mr/deb_itk_examples");
    r3d_error e = R3D_ERROR_INIT;
    r3d_volume *v = r3d_nrrd_read(p, &e);
    CHECK(v != NULL);
    if (!v) {
        fprintf(stderr, "  %s\n", e.msg);
        return;
    }
    CHECK_INT(v->dim[0], 221);
    CHECK_INT(v->dim[1], 257);
    CHECK_INT(v->dim[2], 1);
    CHECK_NEAR(lps(v, 0, 0), 0.866025, 0);
    CHECK_NEAR(lps(v, 1, 0), 0.5, 0);
    CHECK_NEAR(lps(v, 0, 1), -0.5, 0);
    CHECK_NEAR(lps(v, 2, 2), 1, 0);
    double sum = 0;
    int64_t n = r3d_volume_nvox(v);
    for (int64_t i = 0; i < n; i++)
        sum += r3d_volume_get(v, i);
    CHECK_NEAR(sum, 4861905, 0);
    CHECK_NEAR(r3d_volume_get(v, n / 2), 203, 0);
    r3d_volume_free(v);
}

/* ---- bad files -------------------------------------------------------------------- */

typedef struct bad_case {
    const char *file;
    r3d_status code;
    const char *msg;
} bad_case;

static const bad_case BAD[] = {
    {"nrrd_no_magic.nrrd", R3D_EFORMAT, "not a NRRD file"},
    {"nrrd_missing_endian.nrrd", R3D_EFORMAT, "header lacks endian, needed for 2-byte samples"},
    {"nrrd_truncated_data.nrrd", R3D_EFORMAT,
     "header says 4x3x2 short samples (48 bytes) but only 10 bytes of data are present"},
    {"nrrd_sizes_count_mismatch.nrrd", R3D_EFORMAT, "sizes has 2 values for dimension 3"},
    {"nrrd_unknown_type.nrrd", R3D_EFORMAT, "unknown type \"quaternion\""},
    {"nrrd_bzip2_encoding.nrrd", R3D_EUNSUPPORTED, "encoding \"bzip2\" is not supported"},
    {"nrrd_scanner_space.nrrd", R3D_EUNSUPPORTED, "space \"scanner-xyz\" names no patient axes"},
    {"nrrd_vector_axis.nrrd", R3D_EUNSUPPORTED, "axis 0 (kind \"vector\", size 3) is not spatial"},
    {"nrrd_no_blank_line.nrrd", R3D_EFORMAT, "neither a data file field nor a blank line"},
    {"nrrd_bad_direction.nrrd", R3D_EFORMAT, "space direction 1 \"(0,0.75)\" is not a 3-vector"},
    {"nrrd_gzip_truncated.nrrd", R3D_EFORMAT, "gzip data is truncated"},
    {"nrrd_detached_in_memory.nhdr", R3D_EIO, "data file: "},
    {"nrrd_space_units_m.nrrd", R3D_EUNSUPPORTED, "space unit \"m\" is not mm"},
    {"nrrd_zero_size.nrrd", R3D_EFORMAT, "size \"0\" of axis 1 is not a positive integer"},
    {"nrrd_parallel_directions.nrrd", R3D_EFORMAT, "the two space directions are parallel"},
};

static void test_nrrd_every_bad_file_gives_its_code_and_message(void)
{
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/data/bad/%s", R3D_TEST_SRC, BAD[i].file);
        r3d_error e = R3D_ERROR_INIT;
        r3d_volume *v = r3d_nrrd_read(p, &e);
        CHECK(v == NULL);
        r3d_volume_free(v);
        CHECK_INT(e.code, BAD[i].code);
        CHECK_CONTAINS(e.msg, BAD[i].msg);
        CHECK_CONTAINS(e.msg, BAD[i].file);
    }
}

static void test_nrrd_detached_header_from_memory_is_refused_with_reason(void)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/data/bad/nrrd_detached_in_memory.nhdr", R3D_TEST_SRC);
    uint8_t *b;
    size_t n;
    CHECK_INT(r3d_file_read_all(p, &b, &n, NULL), R3D_OK);
    r3d_error e = R3D_ERROR_INIT;
    CHECK(r3d_nrrd_read_mem(b, n, "mem.nhdr", &e) == NULL);
    CHECK_INT(e.code, R3D_EUNSUPPORTED);
    CHECK_CONTAINS(e.msg, "mem.nhdr: detached data file \"missing.raw\" cannot be read from memory");
    free(b);
}

static void test_nrrd_bad_file_list_covers_every_nrrd_file_in_bad_folder(void)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/data/bad", R3D_TEST_SRC);
    DIR *d = opendir(dir);
    struct dirent *e;
    CHECK(d != NULL);
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, "nrrd_", 5) != 0)
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

int main(void)
{
    for (int i = 0; i < 24; i++)
        RAMP[i] = (int16_t)(i * 1000 - 7000);
    RUN(test_nrrd_raw_lps_geometry_and_values);
    RUN(test_nrrd_ras_space_negates_x_and_y);
    RUN(test_nrrd_gzip_big_endian_and_byte_skip_in_decompressed_data);
    RUN(test_nrrd_byte_skip_minus_one_takes_last_bytes_and_line_skip);
    RUN(test_nrrd_ascii_float_and_crlf_header);
    RUN(test_nrrd_rgb_first_axis_becomes_rgb24);
    RUN(test_nrrd_trailing_list_axis_becomes_time);
    RUN(test_nrrd_int64_labels_become_int32);
    RUN(test_nrrd_unknown_kinds_fall_back_to_space_directions);
    RUN(test_nrrd_shared_label_maps_match_numpy);
    RUN(test_nrrd_every_shared_label_map_reads);
    RUN(test_nrrd_itk_detached_2d_rotated_header);
    RUN(test_nrrd_every_bad_file_gives_its_code_and_message);
    RUN(test_nrrd_detached_header_from_memory_is_refused_with_reason);
    RUN(test_nrrd_bad_file_list_covers_every_nrrd_file_in_bad_folder);
    return CHECK_DONE("test_nrrd");
}

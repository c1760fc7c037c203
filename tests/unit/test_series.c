/* test_series.c - series assembly on synthetic studies written to a temp
 * folder: ordering along the normal, dcm2niix's geometry, rescale to HU,
 * checks (missing and uneven slices, tilt), grouping and splitting, 4D,
 * zip input, bad folders, and thread-count independence. Each pixel value
 * encodes (slice, row, column) so any misplacement shows. */
#include "check.h"
#include "dcm_build.h"
#include "r3d/r3d.h"

#include <dirent.h>
#include <unistd.h>
#include <zip.h>

static char g_tmp[256];

static void rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];
    if (!d)
        return;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static const char *fresh_dir(const char *name)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", g_tmp, name);
    rm_rf(p);
    mkdir(p, 0755);
    return p;
}

typedef struct slice_spec {
    const char *uid;
    int rows, cols;
    double ipp[3];
    double iop[6];
    int instance;
    double slope, inter;
    int value_base; /* stored value = base + 10*row + col */
    int echo;
} slice_spec;

static slice_spec spec_default(void)
{
    slice_spec s = {"1.2.3.4", 4, 5, {-10, -20, 0}, {1, 0, 0, 0, 1, 0}, 1, 1, -1024, 1000, 0};
    return s;
}

/* One explicit-VR-LE Part 10 CT slice. */
static void write_slice(const char *dir, const char *name, const slice_spec *s)
{
    dbuf b;
    char t[128];
    db_init(&b, 1, 0);
    db_str(&b, 0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.2");
    snprintf(t, sizeof t, "1.2.826.0.1.99.%d.%d.%d", s->instance, (int)lround(s->ipp[2] * 10 + 5000),
             s->value_base);
    db_str(&b, 0x0008, 0x0018, "UI", t);
    db_str(&b, 0x0008, 0x0060, "CS", "CT");
    db_str(&b, 0x0008, 0x0070, "LO", "TestVendor");
    if (s->echo) {
        snprintf(t, sizeof t, "%d", s->echo);
        db_str(&b, 0x0018, 0x0086, "IS", t);
    }
    db_str(&b, 0x0018, 0x0050, "DS", "2");
    db_str(&b, 0x0018, 0x0060, "DS", "120");
    db_str(&b, 0x0020, 0x000E, "UI", s->uid);
    db_str(&b, 0x0020, 0x0011, "IS", "7");
    snprintf(t, sizeof t, "%d", s->instance);
    db_str(&b, 0x0020, 0x0013, "IS", t);
    snprintf(t, sizeof t, "%g\\%g\\%g", s->ipp[0], s->ipp[1], s->ipp[2]);
    db_str(&b, 0x0020, 0x0032, "DS", t);
    snprintf(t, sizeof t, "%g\\%g\\%g\\%g\\%g\\%g", s->iop[0], s->iop[1], s->iop[2], s->iop[3],
             s->iop[4], s->iop[5]);
    db_str(&b, 0x0020, 0x0037, "DS", t);
    db_image(&b, s->rows, s->cols, 1, 16, 12, 0, "MONOCHROME2", 0);
    db_str(&b, 0x0028, 0x0030, "DS", "0.5\\0.75"); /* row spacing, column spacing */
    snprintf(t, sizeof t, "%g", s->inter);
    db_str(&b, 0x0028, 0x1052, "DS", t);
    snprintf(t, sizeof t, "%g", s->slope);
    db_str(&b, 0x0028, 0x1053, "DS", t);
    uint16_t *px = malloc((size_t)s->rows * s->cols * 2);
    for (int r = 0; r < s->rows; r++)
        for (int c = 0; c < s->cols; c++)
            px[r * s->cols + c] = (uint16_t)(s->value_base + 10 * r + c);
    db_el(&b, 0x7FE0, 0x0010, "OW", px, (uint32_t)(s->rows * s->cols * 2));
    free(px);
    dbuf f;
    db_part10(&f, "1.2.840.10008.1.2.1", b.b, b.n);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    db_write(path, f.b, f.n);
    free(b.b);
    free(f.b);
}

/* n axial slices at z = z0 + k*dz, instance numbers reversed, value base
 * 1000 + 100*k (so HU = 100*k - 24 + 10*row + col). */
static void write_stack(const char *dir, int n, double dz, const double *zs)
{
    for (int k = 0; k < n; k++) {
        slice_spec s = spec_default();
        s.ipp[2] = zs ? zs[k] : k * dz;
        s.instance = n - k;
        s.value_base = 1000 + 100 * k;
        char name[32];
        snprintf(name, sizeof name, "im%02d.dcm", (k * 7) % n); /* scrambled names */
        write_slice(dir, name, &s);
    }
}

static int16_t vox16(const r3d_volume *v, int i, int j, int k)
{
    return ((const int16_t *)v->voxels)[((int64_t)k * v->dim[1] + j) * v->dim[0] + i];
}

static void test_series_ordered_by_position_not_instance_and_rows_flipped(void)
{
    const char *dir = fresh_dir("order");
    write_stack(dir, 5, 2.0, NULL);
    r3d_error err = R3D_ERROR_INIT;
    r3d_volume *v = r3d_input_load(dir, NULL, NULL, NULL, &err);
    CHECK(v != NULL);
    if (!v) {
        fprintf(stderr, "  %s\n", err.msg);
        return;
    }
    CHECK_INT(v->dim[0], 5);
    CHECK_INT(v->dim[1], 4);
    CHECK_INT(v->dim[2], 5);
    CHECK_INT(v->dtype, R3D_I16);
    /* slice k, NIfTI row j = DICOM row 3-j, column i */
    for (int k = 0; k < 5; k++)
        CHECK_INT(vox16(v, 2, 0, k), 100 * k - 24 + 10 * 3 + 2);
    CHECK_INT(vox16(v, 0, 3, 1), 100 - 24);
    r3d_volume_free(v);
}

static void test_series_affine_is_dcm2niix_convention(void)
{
    const char *dir = fresh_dir("affine");
    write_stack(dir, 3, 2.5, NULL);
    r3d_volume *v = r3d_input_load(dir, NULL, NULL, NULL, NULL);
    CHECK(v != NULL);
    if (!v)
        return;
    double ras[4][4];
    r3d_volume_ijk_to_ras(v, ras);
    /* x: column spacing 0.75 along row cosine (+x LPS -> -x RAS) */
    CHECK_NEAR(ras[0][0], -0.75, 1e-9);
    /* y: rows flipped: -(col cosine) * 0.5 in LPS -> +0.5 in RAS */
    CHECK_NEAR(ras[1][1], 0.5, 1e-9);
    CHECK_NEAR(ras[2][2], 2.5, 1e-9);
    /* origin: IPP + (rows-1)*0.5 along +y LPS, then to RAS */
    CHECK_NEAR(ras[0][3], 10.0, 1e-9);
    CHECK_NEAR(ras[1][3], 20.0 - 1.5, 1e-9);
    CHECK_NEAR(ras[2][3], 0.0, 1e-9);
    CHECK_STR(v->acq.modality, "CT");
    CHECK_NEAR(v->acq.kvp, 120, 1e-9);
    CHECK_INT(v->acq.n_files, 3);
    r3d_volume_free(v);
}

static void test_series_missing_and_uneven_slices_are_reported(void)
{
    const char *dir = fresh_dir("missing");
    double zs[5] = {0, 2, 4, 8, 10};
    write_stack(dir, 5, 0, zs);
    r3d_dicom_scan *s = r3d_dicom_scan_path(dir, NULL, NULL);
    CHECK(s != NULL);
    if (!s)
        return;
    const r3d_series_info *in = r3d_dicom_scan_info(s, 0);
    CHECK_INT(in->missing_slices, 1);
    CHECK_INT(in->uneven_spacing, 1);
    CHECK_CONTAINS(in->warnings, "slice missing");
    r3d_dicom_scan_free(s);
}

static void test_series_gantry_tilt_resampled_to_orthogonal_grid(void)
{
    const char *dir = fresh_dir("tilt");
    /* slices step 2 mm in z and 1 mm in y (LPS): a 26.6 degree tilt */
    for (int k = 0; k < 3; k++) {
        slice_spec s = spec_default();
        s.ipp[1] = -20 + k * 1.0;
        s.ipp[2] = k * 2.0;
        s.instance = k + 1;
        s.value_base = 1000 + 100 * k;
        char name[32];
        snprintf(name, sizeof name, "t%d.dcm", k);
        write_slice(dir, name, &s);
    }
    r3d_error err = R3D_ERROR_INIT;
    r3d_volume *v = r3d_input_load(dir, NULL, NULL, NULL, &err);
    CHECK(v != NULL);
    if (!v)
        return;
    /* info announces the grid the loader produces */
    r3d_dicom_scan *sc = r3d_dicom_scan_path(dir, NULL, NULL);
    if (sc) {
        const r3d_series_info *in = r3d_dicom_scan_info(sc, 0);
        CHECK_INT(in->rows, v->dim[1]);
        CHECK_NEAR(in->gantry_tilt_deg, atan(0.5) * 180 / M_PI, 1e-6);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++)
                CHECK_NEAR(in->ijk_to_lps[i][j], v->ijk_to_lps[i][j], 1e-9);
        r3d_dicom_scan_free(sc);
    }
    /* shift per slice = 1 mm / 0.5 mm rows = 2 rows; 2 slices -> 4 extra rows */
    CHECK_INT(v->dim[1], 4 + 4);
    CHECK_NEAR(v->ijk_to_lps[2][2], 2.0, 1e-9); /* orthogonal slice step */
    CHECK_NEAR(v->ijk_to_lps[1][2], 0.0, 1e-9);
    /* the world position of a voxel is kept: slice 2's DICOM row 3 (NIfTI
     * row 0 before correction) is at LPS y = -20+2+1.5; find it */
    double y0 = v->ijk_to_lps[1][3];
    int j = (int)lround((-20 + 2 + 1.5 - y0) / v->ijk_to_lps[1][1]);
    CHECK(j >= 0 && j < v->dim[1]);
    if (j >= 0 && j < v->dim[1])
        CHECK_INT(vox16(v, 1, j, 2), 200 - 24 + 30 + 1);
    r3d_volume_free(v);
}

static void test_series_grouping_splits_uids_sizes_and_echoes(void)
{
    const char *dir = fresh_dir("group");
    slice_spec a = spec_default(), b = spec_default(), c = spec_default(), e = spec_default();
    b.uid = "1.2.3.5";
    c.rows = 6; /* same UID as a, other size */
    e.echo = 2;
    a.echo = 1;
    write_slice(dir, "a.dcm", &a);
    write_slice(dir, "b.dcm", &b);
    write_slice(dir, "c.dcm", &c);
    write_slice(dir, "e.dcm", &e);
    r3d_dicom_scan *s = r3d_dicom_scan_path(dir, NULL, NULL);
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_INT(r3d_dicom_scan_count(s), 4);
    int split = 0;
    for (int i = 0; i < r3d_dicom_scan_count(s); i++)
        split += strstr(r3d_dicom_scan_info(s, i)->warnings, "one SeriesInstanceUID") != NULL;
    CHECK_INT(split, 3);
    r3d_dicom_scan_free(s);
}

static void test_series_repeated_positions_form_4d(void)
{
    const char *dir = fresh_dir("fourd");
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < 3; k++) {
            slice_spec s = spec_default();
            s.ipp[2] = k * 3.0;
            s.instance = t * 3 + k + 1;
            s.value_base = 1000 + 100 * k + 1000 * t;
            char name[32];
            snprintf(name, sizeof name, "t%dk%d.dcm", t, k);
            write_slice(dir, name, &s);
        }
    r3d_volume *v = r3d_input_load(dir, NULL, NULL, NULL, NULL);
    CHECK(v != NULL);
    if (!v)
        return;
    CHECK_INT(v->dim[2], 3);
    CHECK_INT(v->dim[3], 2);
    int64_t vol = v->dim[0] * v->dim[1] * v->dim[2];
    CHECK_INT(((int16_t *)v->voxels)[vol + 2 * v->dim[0] * v->dim[1]], 1000 + 200 - 24 + 30);
    r3d_volume_free(v);
}

static void test_series_duplicate_copies_of_an_image_are_dropped(void)
{
    const char *dir = fresh_dir("dups");
    write_stack(dir, 3, 2.0, NULL);
    /* the same files again under other names, as a second export */
    for (int k = 0; k < 3; k++) {
        char a[600], b[600];
        snprintf(a, sizeof a, "%s/im%02d.dcm", dir, (k * 7) % 3);
        snprintf(b, sizeof b, "%s/copy%02d.dcm", dir, k);
        uint8_t *buf;
        size_t n;
        if (r3d_file_read_all(a, &buf, &n, NULL) == R3D_OK) {
            db_write(b, buf, n);
            free(buf);
        }
    }
    r3d_dicom_scan *s = r3d_dicom_scan_path(dir, NULL, NULL);
    CHECK(s != NULL);
    if (!s)
        return;
    const r3d_series_info *in = r3d_dicom_scan_info(s, 0);
    CHECK_INT(r3d_dicom_scan_count(s), 1);
    CHECK_INT(in->n_slices, 3);
    CHECK_INT(in->n_volumes, 1);
    CHECK_CONTAINS(in->warnings, "3 duplicate images");
    r3d_dicom_scan_free(s);
}

static void test_series_varying_rescale_gives_float_real_values(void)
{
    const char *dir = fresh_dir("rescale");
    for (int k = 0; k < 3; k++) {
        slice_spec s = spec_default();
        s.ipp[2] = k;
        s.slope = 0.5 * (k + 1);
        s.inter = 3;
        s.value_base = 100;
        char name[32];
        snprintf(name, sizeof name, "r%d.dcm", k);
        write_slice(dir, name, &s);
    }
    r3d_volume *v = r3d_input_load(dir, NULL, NULL, NULL, NULL);
    CHECK(v != NULL);
    if (!v)
        return;
    CHECK_INT(v->dtype, R3D_F32);
    /* slice 2, NIfTI row 3 = DICOM row 0, column 0: 100 * 1.5 + 3 */
    CHECK_NEAR(r3d_volume_get(v, 2 * 20 + 3 * 5), 153.0, 1e-6);
    r3d_volume_free(v);
}

static void test_series_zip_gives_same_volume_as_folder(void)
{
    const char *dir = fresh_dir("zipsrc");
    write_stack(dir, 4, 2.0, NULL);
    char zpath[512];
    snprintf(zpath, sizeof zpath, "%s/study.zip", g_tmp);
    unlink(zpath);
    int zerr;
    zip_t *z = zip_open(zpath, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
    CHECK(z != NULL);
    if (!z)
        return;
    for (int k = 0; k < 4; k++) {
        char name[64], path[600];
        snprintf(name, sizeof name, "im%02d.dcm", (k * 7) % 4);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        zip_source_t *src = zip_source_file(z, path, 0, -1);
        char inner[80];
        snprintf(inner, sizeof inner, "DICOM/%s", name);
        zip_file_add(z, inner, src, ZIP_FL_OVERWRITE);
    }
    CHECK_INT(zip_close(z), 0);
    r3d_volume *a = r3d_input_load(dir, NULL, NULL, NULL, NULL);
    r3d_error err = R3D_ERROR_INIT;
    r3d_volume *b = r3d_input_load(zpath, NULL, NULL, NULL, &err);
    CHECK(a && b);
    if (a && b) {
        CHECK(memcmp(a->voxels, b->voxels, r3d_volume_bytes(a)) == 0);
        CHECK(memcmp(a->ijk_to_lps, b->ijk_to_lps, sizeof a->ijk_to_lps) == 0);
    } else if (!b)
        fprintf(stderr, "  %s\n", err.msg);
    r3d_volume_free(a);
    r3d_volume_free(b);
    unlink(zpath);
}

static void test_series_folder_without_images_is_a_clear_error(void)
{
    const char *dir = fresh_dir("empty");
    char p[600];
    snprintf(p, sizeof p, "%s/notes.bin", dir);
    FILE *f = fopen(p, "wb");
    for (int i = 0; i < 400; i++)
        fputc('x', f);
    fclose(f);
    r3d_error err = R3D_ERROR_INIT;
    r3d_volume *v = r3d_input_load(dir, NULL, NULL, NULL, &err);
    CHECK(v == NULL);
    CHECK_INT(err.code, R3D_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "no DICOM images");
    CHECK_CONTAINS(err.msg, dir);
}

static void test_series_truncated_file_is_named_and_rest_loads(void)
{
    const char *dir = fresh_dir("trunc");
    write_stack(dir, 3, 2.0, NULL);
    /* a fourth file cut in the middle of its header */
    slice_spec s = spec_default();
    s.ipp[2] = 6;
    write_slice(dir, "broken.dcm", &s);
    char p[600];
    snprintf(p, sizeof p, "%s/broken.dcm", dir);
    CHECK_INT(truncate(p, 300), 0);
    r3d_dicom_scan *sc = r3d_dicom_scan_path(dir, NULL, NULL);
    CHECK(sc != NULL);
    if (!sc)
        return;
    CHECK_CONTAINS(r3d_dicom_scan_warnings(sc), "broken.dcm");
    CHECK_INT(r3d_dicom_scan_info(sc, 0)->n_slices, 3);
    r3d_dicom_scan_free(sc);
}

static void test_series_pick_by_index_uid_and_unknown(void)
{
    const char *dir = fresh_dir("pick");
    slice_spec a = spec_default(), b = spec_default();
    b.uid = "9.9.9";
    b.rows = 8;
    write_slice(dir, "a.dcm", &a);
    write_slice(dir, "b.dcm", &b);
    r3d_dicom_scan *s = r3d_dicom_scan_path(dir, NULL, NULL);
    CHECK(s != NULL);
    if (!s)
        return;
    r3d_error err = R3D_ERROR_INIT;
    int big = r3d_dicom_scan_pick(s, NULL, NULL);
    CHECK_STR(r3d_dicom_scan_info(s, big)->uid, "9.9.9"); /* the largest */
    CHECK_INT(r3d_dicom_scan_pick(s, "9.9.9", NULL), big);
    CHECK_INT(r3d_dicom_scan_pick(s, "3", &err), -1);
    CHECK_CONTAINS(err.msg, "no series \"3\"");
    r3d_dicom_scan_free(s);
}

static void test_series_one_thread_and_two_give_identical_volumes(void)
{
    const char *dir = fresh_dir("threads");
    write_stack(dir, 9, 1.0, NULL);
    r3d_set_threads(1);
    r3d_volume *a = r3d_input_load(dir, NULL, NULL, NULL, NULL);
    r3d_set_threads(2);
    r3d_volume *b = r3d_input_load(dir, NULL, NULL, NULL, NULL);
    r3d_set_threads(0);
    CHECK(a && b);
    if (a && b)
        CHECK(memcmp(a->voxels, b->voxels, r3d_volume_bytes(a)) == 0);
    r3d_volume_free(a);
    r3d_volume_free(b);
}

static void test_volume_reorient_ras_keeps_world_positions(void)
{
    int64_t dim[4] = {3, 4, 5, 1};
    r3d_volume *v = r3d_volume_new(dim, R3D_I16, NULL);
    /* a sagittal-like grid: i -> -y, j -> +z, k -> -x (RAS) */
    double ras[4][4] = {{0, 0, -2, 10}, {-1, 0, 0, 20}, {0, 1.5, 0, 30}, {0, 0, 0, 1}};
    r3d_volume_set_ijk_to_ras(v, ras);
    for (int n = 0; n < 60; n++)
        ((int16_t *)v->voxels)[n] = (int16_t)n;
    r3d_volume *o = r3d_volume_reorient_ras(v, NULL);
    CHECK(o != NULL);
    if (!o)
        return;
    double m[4][4];
    r3d_volume_ijk_to_ras(o, m);
    CHECK(m[0][0] > 0 && m[1][1] > 0 && m[2][2] > 0);
    CHECK_INT(o->dim[0], 5);
    CHECK_INT(o->dim[1], 3);
    CHECK_INT(o->dim[2], 4);
    /* every voxel keeps its world position */
    int bad = 0;
    for (int k = 0; k < 5; k++)
        for (int j = 0; j < 4; j++)
            for (int i = 0; i < 3; i++) {
                double w[3];
                for (int r = 0; r < 3; r++)
                    w[r] = ras[r][0] * i + ras[r][1] * j + ras[r][2] * k + ras[r][3];
                double a = (w[0] - m[0][3]) / m[0][0], b = (w[1] - m[1][3]) / m[1][1],
                       c = (w[2] - m[2][3]) / m[2][2];
                int ia = (int)lround(a), ib = (int)lround(b), ic = (int)lround(c);
                int16_t got = ((int16_t *)o->voxels)[(ic * o->dim[1] + ib) * o->dim[0] + ia];
                bad += got != (int16_t)((k * 4 + j) * 3 + i);
            }
    CHECK_INT(bad, 0);
    r3d_volume_free(o);
    r3d_volume_free(v);
}

int main(void)
{
    snprintf(g_tmp, sizeof g_tmp, "/tmp/r3d_test_series_%d", (int)getpid());
    mkdir(g_tmp, 0755);
    RUN(test_series_ordered_by_position_not_instance_and_rows_flipped);
    RUN(test_series_affine_is_dcm2niix_convention);
    RUN(test_series_missing_and_uneven_slices_are_reported);
    RUN(test_series_gantry_tilt_resampled_to_orthogonal_grid);
    RUN(test_series_grouping_splits_uids_sizes_and_echoes);
    RUN(test_series_repeated_positions_form_4d);
    RUN(test_series_duplicate_copies_of_an_image_are_dropped);
    RUN(test_series_varying_rescale_gives_float_real_values);
    RUN(test_series_zip_gives_same_volume_as_folder);
    RUN(test_series_folder_without_images_is_a_clear_error);
    RUN(test_series_truncated_file_is_named_and_rest_loads);
    RUN(test_series_pick_by_index_uid_and_unknown);
    RUN(test_series_one_thread_and_two_give_identical_volumes);
    RUN(test_volume_reorient_ras_keeps_world_positions);
    const char *subs[] = {"order", "affine", "missing", "tilt", "group", "fourd", "rescale",
                          "zipsrc", "empty", "trunc", "pick", "threads", "dups"};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", g_tmp, subs[i]);
        rm_rf(p);
    }
    rmdir(g_tmp);
    return CHECK_DONE("test_series");
}

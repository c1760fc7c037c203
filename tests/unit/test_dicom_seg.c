/* test_dicom_seg.c - DICOM SEG and encapsulated models on a synthetic CT
 * series written to a temporary folder: label map -> SEG -> label map is
 * identical (on the series grid, and on the SEG's own grid when every slice
 * has a segment), frames only where a segment is, non-byte-aligned frames,
 * the segment attributes (registry name, codes, CIELab), unknown labels
 * keeping their value, overlaps counted, labels off the source planes
 * counted; the CIELab conversion against known values; encapsulated STL
 * bytes identical to the mesh writer's file. dciodvfy / dcmdump / pydicom
 * check real-data outputs in tests/e2e/dicom_seg.py. */
#define _GNU_SOURCE /* memmem */
#include "check.h"

#include "r3d/dicom_seg.h"

#include <unistd.h>

#define T(g, e) R3D_TAG(0x##g, 0x##e)

static char g_dir[64];
static const char *g_charset; /* SpecificCharacterSet of the written series, NULL = none */

/* A CT series of nz slices of rows x cols, oblique in-plane orientation so
 * every axis matters, written as Part 10 files with our writer. */
static int write_series(const char *dir, int rows, int cols, int nz, const double iop[6],
                        double dz, int reverse_files)
{
    double n[3] = {iop[1] * iop[5] - iop[2] * iop[4], iop[2] * iop[3] - iop[0] * iop[5],
                   iop[0] * iop[4] - iop[1] * iop[3]};
    for (int k = 0; k < nz; k++) {
        r3d_dcm_ds *ds = r3d_dcm_ds_new();
        char sop[80], path[256];
        snprintf(sop, sizeof sop, "1.2.826.0.1.3680043.10.1.%d", k + 1);
        r3d_dcm_ds_put_str(ds, T(0008, 0016), 0, "1.2.840.10008.5.1.4.1.1.2", NULL);
        r3d_dcm_ds_put_str(ds, T(0008, 0018), 0, sop, NULL);
        r3d_dcm_ds_put_str(ds, T(0008, 0060), 0, "CT", NULL);
        if (g_charset) {
            r3d_dcm_ds_put_str(ds, T(0008, 0005), 0, g_charset, NULL);
            static const char gb_name[] = "\xd5\xc5^\xc8\xfd"; /* 张^三 in GB18030 */
            r3d_dcm_ds_put_text(ds, T(0010, 0010), R3D_VR('P', 'N'), gb_name, 5, NULL);
        } else {
            r3d_dcm_ds_put_str(ds, T(0010, 0010), 0, "Test^Patient", NULL);
        }
        r3d_dcm_ds_put_str(ds, T(0010, 0020), 0, "ID42", NULL);
        r3d_dcm_ds_put_str(ds, T(0020, 000D), 0, "1.2.826.0.1.3680043.10.2", NULL);
        r3d_dcm_ds_put_str(ds, T(0020, 000E), 0, "1.2.826.0.1.3680043.10.3", NULL);
        r3d_dcm_ds_put_str(ds, T(0020, 0052), 0, "1.2.826.0.1.3680043.10.4", NULL);
        double ipp[3] = {-30 + n[0] * dz * k, -20 + n[1] * dz * k, 10 + n[2] * dz * k};
        r3d_dcm_ds_put_nums(ds, T(0020, 0032), 0, ipp, 3, NULL);
        r3d_dcm_ds_put_nums(ds, T(0020, 0037), 0, iop, 6, NULL);
        double inst = k + 1, ps[2] = {0.8, 0.7}, th = dz;
        r3d_dcm_ds_put_nums(ds, T(0020, 0013), 0, &inst, 1, NULL);
        r3d_dcm_ds_put_nums(ds, T(0028, 0030), 0, ps, 2, NULL);
        r3d_dcm_ds_put_nums(ds, T(0018, 0050), 0, &th, 1, NULL);
        r3d_dcm_ds_put_u16(ds, T(0028, 0002), 1, NULL);
        r3d_dcm_ds_put_str(ds, T(0028, 0004), 0, "MONOCHROME2", NULL);
        r3d_dcm_ds_put_u16(ds, T(0028, 0010), (uint16_t)rows, NULL);
        r3d_dcm_ds_put_u16(ds, T(0028, 0011), (uint16_t)cols, NULL);
        r3d_dcm_ds_put_u16(ds, T(0028, 0100), 16, NULL);
        r3d_dcm_ds_put_u16(ds, T(0028, 0101), 16, NULL);
        r3d_dcm_ds_put_u16(ds, T(0028, 0102), 15, NULL);
        r3d_dcm_ds_put_u16(ds, T(0028, 0103), 1, NULL);
        double slope = 1, inter = -1024;
        r3d_dcm_ds_put_nums(ds, T(0028, 1053), 0, &slope, 1, NULL);
        r3d_dcm_ds_put_nums(ds, T(0028, 1052), 0, &inter, 1, NULL);
        int16_t *px = calloc((size_t)rows * cols, 2);
        for (int i = 0; i < rows * cols; i++)
            px[i] = (int16_t)(i + k);
        r3d_dcm_ds_put_bytes(ds, T(7FE0, 0010), R3D_VR('O', 'W'), px, (size_t)rows * cols * 2,
                             NULL);
        free(px);
        snprintf(path, sizeof path, "%s/im%03d.dcm", dir, reverse_files ? nz - k : k + 1);
        r3d_error e = R3D_ERROR_INIT;
        r3d_status st = r3d_dcm_write_file(ds, path, NULL, &e);
        r3d_dcm_ds_free(ds);
        if (st != R3D_OK) {
            fprintf(stderr, "  %s\n", e.msg);
            return 0;
        }
    }
    return 1;
}

static void rm_dir(const char *dir)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "  could not remove %s\n", dir);
}

static r3d_labelmap *labels_on(const r3d_volume *v)
{
    r3d_labelmap *lm = r3d_labelmap_new(v, NULL);
    return lm;
}

static int same_geometry(const r3d_volume *a, const r3d_volume *b)
{
    for (int i = 0; i < 4; i++)
        if (a->dim[i] != b->dim[i])
            return 0;
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++)
            if (fabs(a->ijk_to_lps[r][c] - b->ijk_to_lps[r][c]) > 1e-4)
                return 0;
    return 1;
}

static void test_seg_round_trip_on_the_series_grid(void)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/rt", g_dir);
    mkdir(dir, 0777);
    const double iop[6] = {0.8, 0.6, 0, 0, 0, -1}; /* coronal-ish, rotated */
    CHECK(write_series(dir, 13, 11, 6, iop, 2.5, 1)); /* 143 px: frames not byte aligned */
    r3d_error e = R3D_ERROR_INIT;
    r3d_dcm_source *src = r3d_dcm_source_open(dir, NULL, &e);
    CHECK(src != NULL);
    if (!src) {
        fprintf(stderr, "  %s\n", e.msg);
        return;
    }
    CHECK_INT(src->n_img, 6);
    r3d_volume *v = r3d_dcm_source_load(src, &e);
    CHECK(v != NULL);
    if (!v)
        goto out;
    r3d_labelmap *lm = labels_on(v);
    uint16_t *L = lm->vol->voxels;
    int64_t nx = v->dim[0], ny = v->dim[1], nz = v->dim[2];
    /* liver (5) in slices 1..3, lung_upper_lobe_left (10) in slice 4, an
     * unknown label 777 named "tumour_x", a nodule (1002) */
    for (int64_t k = 0; k < nz; k++)
        for (int64_t j = 0; j < ny; j++)
            for (int64_t i = 0; i < nx; i++) {
                uint16_t l = 0;
                if (k >= 1 && k <= 3 && i > j / 2 && i < 9)
                    l = 5;
                else if (k == 4 && (i + j) % 3 == 0)
                    l = 10;
                else if (k == 0 && i == 2 && j == 3)
                    l = 777;
                else if (k == 5 && i >= 4 && i <= 6 && j >= 4 && j <= 7)
                    l = 1002;
                L[(k * ny + j) * nx + i] = l;
            }
    r3d_label lab;
    r3d_structure_label(r3d_structure_by_value(5), &lab);
    r3d_label_table_add(&lm->table, &lab, NULL);
    memset(&lab, 0, sizeof lab);
    lab.value = 777;
    snprintf(lab.name, sizeof lab.name, "tumour_x");
    lab.rgb[0] = 10, lab.rgb[1] = 200, lab.rgb[2] = 30;
    r3d_label_table_add(&lm->table, &lab, NULL);

    char seg_path[256];
    snprintf(seg_path, sizeof seg_path, "%s/seg.dcm", g_dir);
    r3d_seg_write_info wi;
    r3d_status st = r3d_seg_write(lm, src, NULL, seg_path, &wi, &e);
    CHECK_INT(st, R3D_OK);
    if (st != R3D_OK) {
        fprintf(stderr, "  %s\n", e.msg);
        goto out2;
    }
    CHECK_INT(wi.n_segments, 4);
    CHECK_INT(wi.n_frames, 3 + 1 + 1 + 1); /* only frames holding the segment */
    CHECK_INT(wi.n_outside, 0);

    /* read back on the series grid */
    r3d_labelmap *back = NULL;
    r3d_seg_read_info ri;
    st = r3d_seg_read(seg_path, v, &back, &ri, &e);
    CHECK_INT(st, R3D_OK);
    if (st == R3D_OK) {
        CHECK(same_geometry(back->vol, v));
        CHECK(memcmp(back->vol->voxels, L, (size_t)(nx * ny * nz) * 2) == 0);
        CHECK_INT(ri.n_seg, 4);
        CHECK_INT(ri.n_overlap, 0);
        CHECK_INT(ri.n_outside, 0);
        CHECK_STR(ri.referenced_series_uid, "1.2.826.0.1.3680043.10.3");
        CHECK_STR(ri.frame_of_reference_uid, "1.2.826.0.1.3680043.10.4");
        const r3d_label *l5 = r3d_label_table_find(&back->table, 5);
        const r3d_label *l777 = r3d_label_table_find(&back->table, 777);
        const r3d_label *l1002 = r3d_label_table_find(&back->table, 1002);
        CHECK(l5 && !strcmp(l5->name, "liver") && !strcmp(l5->name_zh, "肝"));
        CHECK(l777 && !strcmp(l777->name, "tumour_x"));
        if (l777) /* colour through CIELab and back */
            CHECK(abs(l777->rgb[0] - 10) <= 1 && abs(l777->rgb[1] - 200) <= 1 &&
                  abs(l777->rgb[2] - 30) <= 1);
        CHECK(l1002 && !strcmp(l1002->name, "lung_nodule_3"));
        r3d_labelmap_free(back);
        r3d_seg_read_info_free(&ri);
    } else {
        fprintf(stderr, "  %s\n", e.msg);
    }

    /* the attributes, read with our parser */
    r3d_dcm_file *f = r3d_dcm_open(seg_path, 0, &e);
    CHECK(f != NULL);
    if (f) {
        const r3d_dcm_item *root = r3d_dcm_root(f);
        char s[128];
        r3d_dcm_str(f, root, T(0062, 0001), -1, s, sizeof s);
        CHECK_STR(s, "BINARY");
        r3d_dcm_str(f, root, T(0010, 0020), -1, s, sizeof s);
        CHECK_STR(s, "ID42"); /* same patient as the source */
        r3d_dcm_str(f, root, T(0020, 000D), -1, s, sizeof s);
        CHECK_STR(s, "1.2.826.0.1.3680043.10.2");
        const r3d_dcm_item *seg1 = r3d_dcm_seq_item(root, T(0062, 0002), 0);
        const r3d_dcm_item *seg2 = r3d_dcm_seq_item(root, T(0062, 0002), 1);
        CHECK(seg1 && seg2);
        if (seg1 && seg2) {
            r3d_dcm_str(f, seg1, T(0062, 0005), -1, s, sizeof s);
            CHECK_STR(s, "liver");
            r3d_dcm_str(f, seg1, T(0062, 0008), -1, s, sizeof s);
            CHECK_STR(s, "AUTOMATIC");
            r3d_dcm_str(f, seg1, T(0062, 0009), -1, s, sizeof s);
            CHECK_STR(s, "recon3d");
            const r3d_dcm_item *ty = r3d_dcm_seq_item(seg1, T(0062, 000F), 0);
            CHECK(ty != NULL);
            if (ty) {
                r3d_dcm_str(f, ty, T(0008, 0100), -1, s, sizeof s);
                CHECK_STR(s, "10200004");
            }
            const r3d_dcm_item *ty2 = r3d_dcm_seq_item(seg2, T(0062, 000F), 0);
            const r3d_dcm_item *mod = ty2 ? r3d_dcm_seq_item(ty2, T(0062, 0011), 0) : NULL;
            CHECK(mod != NULL); /* lung_upper_lobe_left: laterality inside the type item */
            if (mod) {
                r3d_dcm_str(f, mod, T(0008, 0100), -1, s, sizeof s);
                CHECK_STR(s, "7771000");
            }
        }
        /* frame 1: liver on the second source image (k = 1) */
        const r3d_dcm_item *pf = r3d_dcm_seq_item(root, T(5200, 9230), 0);
        const r3d_dcm_item *di = pf ? r3d_dcm_seq_item(pf, T(0008, 9124), 0) : NULL;
        const r3d_dcm_item *si = di ? r3d_dcm_seq_item(di, T(0008, 2112), 0) : NULL;
        CHECK(si != NULL);
        if (si) {
            r3d_dcm_str(f, si, T(0008, 1155), -1, s, sizeof s);
            CHECK_STR(s, src->img[1].sop_uid);
        }
        r3d_dcm_close(f);
    }
out2:
    r3d_labelmap_free(lm);
    r3d_volume_free(v);
out:
    r3d_dcm_source_free(src);
}

/* Every slice labelled: the SEG's own frames span the series grid. */
static void test_seg_own_grid_equals_series_grid_when_every_slice_has_labels(void)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/own", g_dir);
    mkdir(dir, 0777);
    const double iop[6] = {1, 0, 0, 0, 1, 0};
    CHECK(write_series(dir, 8, 16, 5, iop, 1.5, 0));
    r3d_error e = R3D_ERROR_INIT;
    r3d_dcm_source *src = r3d_dcm_source_open(dir, NULL, &e);
    r3d_volume *v = src ? r3d_dcm_source_load(src, &e) : NULL;
    CHECK(v != NULL);
    if (!v) {
        r3d_dcm_source_free(src);
        return;
    }
    r3d_labelmap *lm = labels_on(v);
    uint16_t *L = lm->vol->voxels;
    int64_t n = r3d_volume_nvox(v);
    for (int64_t q = 0; q < n; q++)
        L[q] = (q % 7 == 0) ? 1 : (q % 11 == 0) ? 116 : 0;
    r3d_dcm_ds *ds = NULL;
    r3d_seg_write_info wi;
    CHECK_INT(r3d_seg_build(lm, src, NULL, &ds, &wi, &e), R3D_OK);
    uint8_t *buf = NULL;
    size_t nb = 0;
    if (ds)
        CHECK_INT(r3d_dcm_write_mem(ds, NULL, &buf, &nb, &e), R3D_OK);
    r3d_dcm_file *f = buf ? r3d_dcm_parse(buf, nb, 1, "mem.dcm", 0, &e) : NULL;
    CHECK(f != NULL);
    if (f) {
        r3d_labelmap *back = NULL;
        r3d_seg_read_info ri;
        CHECK_INT(r3d_seg_read_file(f, NULL, &back, &ri, &e), R3D_OK);
        if (back) {
            CHECK(same_geometry(back->vol, v));
            CHECK(memcmp(back->vol->voxels, L, (size_t)n * 2) == 0);
            r3d_labelmap_free(back);
            r3d_seg_read_info_free(&ri);
        }
        r3d_dcm_close(f);
    }
    r3d_dcm_ds_free(ds);
    /* nothing labelled: refused with a message */
    memset(L, 0, (size_t)n * 2);
    CHECK_INT(r3d_seg_build(lm, src, NULL, &ds, &wi, &e), R3D_ENOTFOUND);
    CHECK_CONTAINS(e.msg, "no labelled voxel");
    r3d_labelmap_free(lm);
    r3d_volume_free(v);
    r3d_dcm_source_free(src);
}

/* A label map on a finer grid than the series: what no plane samples is
 * counted, not lost silently. */
static void test_seg_counts_voxels_off_the_source_planes(void)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/off", g_dir);
    mkdir(dir, 0777);
    const double iop[6] = {1, 0, 0, 0, 1, 0};
    CHECK(write_series(dir, 8, 8, 3, iop, 4.0, 0));
    r3d_error e = R3D_ERROR_INIT;
    r3d_dcm_source *src = r3d_dcm_source_open(dir, NULL, &e);
    r3d_volume *v = src ? r3d_dcm_source_load(src, &e) : NULL;
    CHECK(v != NULL);
    if (!v) {
        r3d_dcm_source_free(src);
        return;
    }
    /* the same box, slices at 1 mm instead of 4 */
    int64_t dim[4] = {v->dim[0], v->dim[1], 9, 1};
    r3d_volume *fine = r3d_volume_new(dim, R3D_U16, &e);
    memcpy(fine->ijk_to_lps, v->ijk_to_lps, sizeof v->ijk_to_lps);
    for (int a = 0; a < 3; a++)
        fine->ijk_to_lps[a][2] /= 4;
    r3d_volume_update_spacing(fine);
    r3d_labelmap lm = {fine, {0}};
    uint16_t *L = fine->voxels;
    L[(1 * 8 + 3) * 8 + 3] = 5;     /* slice 1: between planes 0 and 1 (4 mm) */
    L[(4 * 8 + 2) * 8 + 2] = 5;     /* slice 4 = plane 1 */
    r3d_dcm_ds *ds = NULL;
    r3d_seg_write_info wi;
    CHECK_INT(r3d_seg_build(&lm, src, NULL, &ds, &wi, &e), R3D_OK);
    CHECK_INT(wi.n_outside, 1);
    CHECK_INT(wi.n_frames, 1);
    r3d_dcm_ds_free(ds);
    r3d_volume_free(fine);
    r3d_volume_free(v);
    r3d_dcm_source_free(src);
}

static void test_cielab_known_values(void)
{
    uint16_t lab[3];
    uint8_t rgb[3];
    r3d_srgb_to_dicom_lab((const uint8_t[]){255, 255, 255}, lab);
    CHECK_INT(lab[0], 65535);
    CHECK(abs(lab[1] - 32896) <= 3 && abs(lab[2] - 32896) <= 3); /* a* = b* = 0 */
    r3d_srgb_to_dicom_lab((const uint8_t[]){0, 0, 0}, lab);
    CHECK_INT(lab[0], 0);
    /* sRGB red in D50 Lab (ICC): L 54.29, a 80.80, b 69.89 (Lindbloom) */
    r3d_srgb_to_dicom_lab((const uint8_t[]){255, 0, 0}, lab);
    CHECK_NEAR(lab[0] * 100.0 / 65535, 54.29, 0.1);
    CHECK_NEAR(lab[1] * 255.0 / 65535 - 128, 80.80, 0.2);
    CHECK_NEAR(lab[2] * 255.0 / 65535 - 128, 69.89, 0.2);
    /* every registry colour comes back within one unit */
    int worst = 0;
    for (int i = 0; i < r3d_structure_count(); i++) {
        const r3d_structure *s = r3d_structure_at(i);
        r3d_srgb_to_dicom_lab(s->rgb, lab);
        r3d_dicom_lab_to_srgb(lab, rgb);
        for (int c = 0; c < 3; c++)
            if (abs(rgb[c] - s->rgb[c]) > worst)
                worst = abs(rgb[c] - s->rgb[c]);
    }
    CHECK(worst <= 1);
}

static void test_encapsulated_stl_holds_the_writer_bytes(void)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/enc", g_dir);
    mkdir(dir, 0777);
    const double iop[6] = {1, 0, 0, 0, 1, 0};
    CHECK(write_series(dir, 8, 8, 3, iop, 2.0, 0));
    r3d_error e = R3D_ERROR_INIT;
    r3d_dcm_source *src = r3d_dcm_source_open(dir, NULL, &e);
    CHECK(src != NULL);
    if (!src)
        return;
    r3d_mesh *m = r3d_mesh_new(&e);
    r3d_mesh_add_vertex(m, 0, 0, 0);
    r3d_mesh_add_vertex(m, 10, 0, 0);
    r3d_mesh_add_vertex(m, 0, 10, 0);
    r3d_mesh_add_vertex(m, 0, 0, 10);
    r3d_mesh_add_triangle(m, 0, 2, 1);
    r3d_mesh_add_triangle(m, 0, 1, 3);
    r3d_mesh_add_triangle(m, 0, 3, 2);
    r3d_mesh_add_triangle(m, 1, 2, 3);
    snprintf(m->name, sizeof m->name, "liver");
    uint8_t *doc = NULL, *mtl = NULL;
    size_t n = 0, mn = 0;
    CHECK_INT(r3d_mesh_file_bytes(m, R3D_MODEL_STL, &doc, &n, NULL, NULL, &e), R3D_OK);
    CHECK_INT(n, 84 + 4 * 50); /* binary STL: header, count, 50 bytes per triangle */
    r3d_dcm_ds *ds = NULL;
    char uid[65];
    CHECK_INT(r3d_model_build(R3D_MODEL_STL, doc, n, "liver", src, NULL, &ds, uid, &e), R3D_OK);
    uint8_t *buf = NULL;
    size_t nb = 0;
    if (ds)
        CHECK_INT(r3d_dcm_write_mem(ds, NULL, &buf, &nb, &e), R3D_OK);
    r3d_dcm_file *f = buf ? r3d_dcm_parse(buf, nb, 1, "stl.dcm", 0, &e) : NULL;
    CHECK(f != NULL);
    if (f) {
        const r3d_dcm_item *root = r3d_dcm_root(f);
        const r3d_dcm_el *el = r3d_dcm_find(root, T(0042, 0011));
        CHECK(el && el->len == n + (n & 1) && !memcmp(el->val, doc, n));
        CHECK_INT((int64_t)r3d_dcm_num1(f, root, T(0042, 0015), 0), (int64_t)n);
        char s[80];
        r3d_dcm_str(f, root, T(0008, 0016), -1, s, sizeof s);
        CHECK_STR(s, R3D_SOP_ENCAPSULATED_STL);
        r3d_dcm_str(f, root, T(0020, 0052), -1, s, sizeof s);
        CHECK_STR(s, "1.2.826.0.1.3680043.10.4");
        r3d_dcm_str(f, root, T(0042, 0012), -1, s, sizeof s);
        CHECK_STR(s, "model/stl");
        const r3d_dcm_item *u = r3d_dcm_seq_item(root, T(0040, 08EA), 0);
        CHECK(u != NULL);
        if (u) {
            r3d_dcm_str(f, u, T(0008, 0100), -1, s, sizeof s);
            CHECK_STR(s, "mm");
        }
        r3d_dcm_close(f);
    }
    r3d_dcm_ds_free(ds);
    free(doc);
    /* OBJ + MTL: both files, and the OBJ names its material library */
    CHECK_INT(r3d_mesh_file_bytes(m, R3D_MODEL_OBJ, &doc, &n, &mtl, &mn, &e), R3D_OK);
    CHECK(doc && n > 0 && mtl && mn > 0);
    if (doc)
        CHECK(memmem(doc, n, "mtllib", 6) != NULL);
    r3d_dcm_ds *mds = NULL, *ods = NULL;
    char muid[65], ouid[65];
    CHECK_INT(r3d_model_build(R3D_MODEL_MTL, mtl, mn, "liver", src, NULL, &mds, muid, &e), R3D_OK);
    r3d_model_opts mo = R3D_MODEL_OPTS_INIT;
    mo.mtl_sop_uid = muid;
    CHECK_INT(r3d_model_build(R3D_MODEL_OBJ, doc, n, "liver", src, &mo, &ods, ouid, &e), R3D_OK);
    CHECK(strcmp(muid, ouid) != 0);
    r3d_dcm_ds_free(mds);
    r3d_dcm_ds_free(ods);
    free(doc);
    free(mtl);
    r3d_mesh_free(m);
    r3d_dcm_source_free(src);
}

/* A source in GB18030 (usual in Chinese hospitals): the SEG keeps that
 * character set, the patient name's bytes, and writes the Chinese segment
 * description in GB18030; a Latin-1 source gets no Chinese text at all. */
static void test_seg_chinese_names_follow_the_source_charset(void)
{
    const char *sets[2] = {"GB18030", "ISO_IR 100"};
    for (int c = 0; c < 2; c++) {
        char dir[128];
        snprintf(dir, sizeof dir, "%s/cs%d", g_dir, c);
        mkdir(dir, 0777);
        const double iop[6] = {1, 0, 0, 0, 1, 0};
        g_charset = sets[c];
        CHECK(write_series(dir, 4, 4, 2, iop, 1.0, 0));
        g_charset = NULL;
        r3d_error e = R3D_ERROR_INIT;
        r3d_dcm_source *src = r3d_dcm_source_open(dir, NULL, &e);
        r3d_volume *v = src ? r3d_dcm_source_load(src, &e) : NULL;
        CHECK(v != NULL);
        if (!v) {
            r3d_dcm_source_free(src);
            continue;
        }
        r3d_labelmap *lm = labels_on(v);
        ((uint16_t *)lm->vol->voxels)[5] = 5; /* liver, 肝 */
        r3d_dcm_ds *ds = NULL;
        CHECK_INT(r3d_seg_build(lm, src, NULL, &ds, NULL, &e), R3D_OK);
        uint8_t *buf = NULL;
        size_t nb = 0;
        if (ds)
            r3d_dcm_write_mem(ds, NULL, &buf, &nb, &e);
        r3d_dcm_file *f = buf ? r3d_dcm_parse(buf, nb, 1, "cs.dcm", 0, &e) : NULL;
        CHECK(f != NULL);
        if (f) {
            char s[64];
            const r3d_dcm_item *root = r3d_dcm_root(f);
            r3d_dcm_str(f, root, T(0008, 0005), -1, s, sizeof s);
            CHECK_STR(s, sets[c]);
            const r3d_dcm_el *pn = r3d_dcm_find(root, T(0010, 0010));
            if (c == 0)
                CHECK(pn && pn->len >= 5 && !memcmp(pn->val, "\xd5\xc5^\xc8\xfd", 5));
            const r3d_dcm_item *seg = r3d_dcm_seq_item(root, T(0062, 0002), 0);
            const r3d_dcm_el *d = seg ? r3d_dcm_find(seg, T(0062, 0006)) : NULL;
            if (c == 0)
                CHECK(d && d->len >= 2 && !memcmp(d->val, "\xb8\xce", 2)); /* 肝 in GB18030 */
            else
                CHECK(d == NULL);
            r3d_dcm_close(f);
        }
        r3d_dcm_ds_free(ds);
        r3d_labelmap_free(lm);
        r3d_volume_free(v);
        r3d_dcm_source_free(src);
    }
}

/* Damaged SEGs (truncated, bytes changed) fail with a message or read,
 * never crash: run under ASan/UBSan this is the reader's memory test. */
static void test_seg_reader_survives_damaged_files(void)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/dmg", g_dir);
    mkdir(dir, 0777);
    const double iop[6] = {0.6, 0.8, 0, 0, 0, -1};
    CHECK(write_series(dir, 9, 7, 4, iop, 2.0, 0));
    r3d_error e = R3D_ERROR_INIT;
    r3d_dcm_source *src = r3d_dcm_source_open(dir, NULL, &e);
    r3d_volume *v = src ? r3d_dcm_source_load(src, &e) : NULL;
    CHECK(v != NULL);
    if (!v) {
        r3d_dcm_source_free(src);
        return;
    }
    r3d_labelmap *lm = labels_on(v);
    uint16_t *L = lm->vol->voxels;
    for (int64_t q = 0; q < r3d_volume_nvox(v); q++)
        L[q] = q % 5 == 0 ? 5 : q % 7 == 0 ? 10 : 0;
    r3d_dcm_ds *ds = NULL;
    uint8_t *good = NULL;
    size_t n = 0;
    CHECK_INT(r3d_seg_build(lm, src, NULL, &ds, NULL, &e), R3D_OK);
    if (ds)
        CHECK_INT(r3d_dcm_write_mem(ds, NULL, &good, &n, &e), R3D_OK);
    r3d_dcm_ds_free(ds);
    uint32_t rng = 12345;
    int ok = 0, refused = 0;
    for (int trial = 0; good && trial < 300; trial++) {
        size_t m = n;
        uint8_t *b = malloc(n);
        memcpy(b, good, n);
        if (trial % 3 == 0) {
            rng = rng * 1103515245u + 12345u;
            m = 132 + (rng >> 8) % (n - 132); /* truncated */
        } else {
            for (int k = 0; k < 1 + trial % 8; k++) { /* a few bytes changed */
                rng = rng * 1103515245u + 12345u;
                size_t at = 132 + (rng >> 8) % (n - 132);
                rng = rng * 1103515245u + 12345u;
                b[at] = (uint8_t)(rng >> 16);
            }
        }
        r3d_error e2 = R3D_ERROR_INIT;
        r3d_dcm_file *f = r3d_dcm_parse(b, m, 1, "damaged.dcm", 0, &e2);
        if (!f) {
            refused++;
            continue;
        }
        r3d_labelmap *out = NULL;
        r3d_seg_read_info ri;
        r3d_status st = r3d_seg_read_file(f, trial % 2 ? v : NULL, &out, &ri, &e2);
        if (st == R3D_OK) {
            ok++;
            r3d_labelmap_free(out);
            r3d_seg_read_info_free(&ri);
        } else {
            refused++;
            CHECK(e2.msg[0] != 0 && out == NULL);
        }
        r3d_dcm_close(f);
    }
    CHECK_INT(ok + refused, 300);
    free(good);
    r3d_labelmap_free(lm);
    r3d_volume_free(v);
    r3d_dcm_source_free(src);
}

static void test_seg_reader_refuses_non_seg(void)
{
    char dir[128], path[200];
    snprintf(dir, sizeof dir, "%s/non", g_dir);
    mkdir(dir, 0777);
    const double iop[6] = {1, 0, 0, 0, 1, 0};
    CHECK(write_series(dir, 4, 4, 1, iop, 1.0, 0));
    snprintf(path, sizeof path, "%s/im001.dcm", dir);
    r3d_error e = R3D_ERROR_INIT;
    r3d_labelmap *lm = NULL;
    CHECK_INT(r3d_seg_read(path, NULL, &lm, NULL, &e), R3D_EFORMAT);
    CHECK_CONTAINS(e.msg, "not a DICOM Segmentation");
    CHECK(lm == NULL);
}

int main(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/r3d_test_seg_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_cielab_known_values);
    RUN(test_seg_round_trip_on_the_series_grid);
    RUN(test_seg_own_grid_equals_series_grid_when_every_slice_has_labels);
    RUN(test_seg_counts_voxels_off_the_source_planes);
    RUN(test_encapsulated_stl_holds_the_writer_bytes);
    RUN(test_seg_chinese_names_follow_the_source_charset);
    RUN(test_seg_reader_survives_damaged_files);
    RUN(test_seg_reader_refuses_non_seg);
    rm_dir(g_dir);
    return CHECK_DONE("test_dicom_seg");
}

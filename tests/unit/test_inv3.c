/* test_inv3.c - the InVesalius .inv3 reader: its tar reader (ustar, GNU
 * long names, pax paths), its plist parser, the geometry conventions for
 * each orientation, mask handling, damaged projects, and Debian's example
 * project Cranium.inv3 (package invesalius-examples, skipped if absent).
 *
 * Projects are built in memory here the way InVesalius' SavePlistProject
 * writes them (plistlib XML, numpy raw arrays, a tar of one folder). The
 * Cranium numbers were measured with Debian's /usr/bin/python3 + numpy on
 * the extracted tar:
 *     im = np.fromfile("matrix.dat", "<i2"); im.sum(), im[:3], im[size // 2]
 *     m = np.fromfile("mask_0.dat", "u1")[:109*257*257].reshape(109,257,257)
 *     m[1:, 1:, 1:] >= 127 per mask, label = first mask wins
 */
#include "r3d/r3d.h"

#include "check.h"

#include <stdint.h>

#define CRANIUM "/usr/share/doc/invesalius-examples/examples/Cranium.inv3"

/* ---- an in-memory tar writer ------------------------------------------------ */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 4096;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void tar_entry(buf *b, const char *name, char type, const void *data, size_t n)
{
    uint8_t h[512];
    memset(h, 0, sizeof h);
    snprintf((char *)h, 100, "%s", name);
    snprintf((char *)h + 100, 8, "%07o", 0644);
    snprintf((char *)h + 124, 12, "%011zo", n);
    h[156] = (uint8_t)type;
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    put(b, h, 512);
    put(b, data, n);
    static const uint8_t zero[512];
    put(b, zero, (512 - n % 512) % 512);
}

/* name style: 0 plain ustar, 1 GNU 'L' long name, 2 pax 'x' path */
static void tar_file(buf *b, const char *name, const void *data, size_t n, int style)
{
    char full[400];
    snprintf(full, sizeof full, "tmpabcdef%s/%s", style ? "_with_a_very_long_folder_name_"
                                                          "that_does_not_fit_in_one_hundred_"
                                                          "bytes_of_ustar_name_field" : "", name);
    if (style == 1)
        tar_entry(b, "././@LongLink", 'L', full, strlen(full) + 1);
    if (style == 2) {
        char rec[512];
        int len = (int)strlen(full) + 7; /* " path=" + "\n" */
        int digits = len + 2 >= 100 ? 3 : 2;
        snprintf(rec, sizeof rec, "%d path=%s\n", len + digits, full);
        tar_entry(b, "PaxHeader", 'x', rec, strlen(rec));
    }
    tar_entry(b, style ? "truncated-name" : full, '0', data, n);
}

static void tar_end(buf *b)
{
    static const uint8_t zero[1024];
    put(b, zero, sizeof zero);
}

/* ---- a small project ----------------------------------------------------------- */

enum { NX = 5, NY = 4, NZ = 3 };

typedef struct project {
    int orientation;     /* 1, 2, 3 */
    int style;           /* tar name style */
    int masks;           /* 0, 1 or 2 */
    int blank_slice;     /* mask 0 slice 1 left all zero (never thresholded) */
    const char *dtype;   /* "int16" */
    int matrix_shrink;   /* bytes cut from matrix.dat */
    int mask_shape_off;  /* added to mask_shape[0] */
} project;

static int16_t img_value(int i, int j, int k) { return (int16_t)(100 * k + 10 * j + i - 50); }

static buf make_project(const project *P)
{
    buf t = {0};
    char main_pl[4096], masks[512] = "";
    for (int m = 0; m < P->masks; m++)
        snprintf(masks + strlen(masks), sizeof masks - strlen(masks),
                 "\t\t<key>%d</key>\n\t\t<string>mask_%d.plist</string>\n", m, m);
    snprintf(main_pl, sizeof main_pl,
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
             "<!DOCTYPE plist PUBLIC \"-//Apple Computer//DTD PLIST 1.0//EN\" "
             "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
             "<plist version=\"1.0\">\n<dict>\n"
             "\t<key>annotations</key>\n\t<dict>\n\t</dict>\n"
             "\t<key>format_version</key>\n\t<integer>1</integer>\n"
             "\t<key>masks</key>\n\t<dict>\n%s\t</dict>\n"
             "\t<key>matrix</key>\n\t<dict>\n"
             "\t\t<key>dtype</key>\n\t\t<string>%s</string>\n"
             "\t\t<key>filename</key>\n\t\t<string>matrix.dat</string>\n"
             "\t\t<key>shape</key>\n\t\t<array>\n\t\t\t<integer>%d</integer>\n"
             "\t\t\t<integer>%d</integer>\n\t\t\t<integer>%d</integer>\n\t\t</array>\n"
             "\t</dict>\n"
             "\t<key>modality</key>\n\t<string>CT</string>\n"
             "\t<key>name</key>\n\t<string>Patient &amp; Name</string>\n"
             "\t<key>orientation</key>\n\t<integer>%d</integer>\n"
             "\t<key>spacing</key>\n\t<array>\n\t\t<real>0.5</real>\n\t\t<real>0.75</real>\n"
             "\t\t<real>2.0</real>\n\t</array>\n"
             "\t<!-- a comment -->\n\t<key>compress</key>\n\t<true/>\n"
             "</dict>\n</plist>\n",
             masks, P->dtype ? P->dtype : "int16", NZ, NY, NX, P->orientation);
    tar_file(&t, "main.plist", main_pl, strlen(main_pl), P->style);

    int16_t img[NZ][NY][NX];
    for (int k = 0; k < NZ; k++)
        for (int j = 0; j < NY; j++)
            for (int i = 0; i < NX; i++)
                img[k][j][i] = img_value(i, j, k); /* little-endian host assumed */
    tar_file(&t, "matrix.dat", img, sizeof img - (size_t)P->matrix_shrink, P->style);

    for (int m = 0; m < P->masks; m++) {
        char pl[2048], name[32];
        snprintf(pl, sizeof pl,
                 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\">\n<dict>\n"
                 "\t<key>colour</key>\n\t<array>\n\t\t<real>%s</real>\n\t\t<integer>1</integer>"
                 "\n\t\t<real>0.0</real>\n\t</array>\n"
                 "\t<key>index</key>\n\t<integer>%d</integer>\n"
                 "\t<key>mask_file</key>\n\t<string>mask_%d.dat</string>\n"
                 "\t<key>mask_shape</key>\n\t<array>\n\t\t<integer>%d</integer>\n"
                 "\t\t<integer>%d</integer>\n\t\t<integer>%d</integer>\n\t</array>\n"
                 "\t<key>name</key>\n\t<string>%s</string>\n"
                 "\t<key>threshold_range</key>\n\t<array>\n\t\t<integer>%d</integer>\n"
                 "\t\t<integer>3071</integer>\n\t</array>\n"
                 "\t<key>visible</key>\n\t<false/>\n</dict>\n</plist>\n",
                 m ? "0.5" : "0.33000000000000002", m, m, NZ + 1 + P->mask_shape_off, NY + 1,
                 NX + 1, m ? "Bone &#233;&#x4e2d;" : "M&#225;scara 1", m ? 0 : 60);
        snprintf(name, sizeof name, "mask_%d.plist", m);
        tar_file(&t, name, pl, strlen(pl), P->style);
        /* mask m covers voxels with i >= 2 (mask 0) / j >= 2 (mask 1);
         * border slice, row and column hold bookkeeping noise */
        uint8_t md[NZ + 1][NY + 1][NX + 1];
        memset(md, 1, sizeof md);
        for (int k = 0; k < NZ; k++)
            for (int j = 0; j < NY; j++)
                for (int i = 0; i < NX; i++) {
                    int in = m ? j >= 2 : i >= 2;
                    md[k + 1][j + 1][i + 1] = in ? (i == 4 ? 254 : 255) : (i == 0 ? 2 : 0);
                    if (m == 0 && P->blank_slice && k == 1)
                        md[k + 1][j + 1][i + 1] = 0;
                }
        snprintf(name, sizeof name, "mask_%d.dat", m);
        tar_file(&t, name, md, sizeof md, P->style);
    }
    tar_end(&t);
    return t;
}

static r3d_volume *read_project(const project *P, r3d_labelmap **lm, r3d_error *e)
{
    buf t = make_project(P);
    r3d_volume *v = r3d_inv3_read_mem(t.p, t.n, "test.inv3", lm, e);
    free(t.p);
    return v;
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_inv3_axial_plain_tar_voxels_geometry_and_modality(void)
{
    project P = {1, 0, 0, 0, NULL, 0, 0};
    r3d_error e = R3D_ERROR_INIT;
    r3d_labelmap *lm = (r3d_labelmap *)1;
    r3d_volume *v = read_project(&P, &lm, &e);
    CHECK(v != NULL);
    if (!v) {
        fprintf(stderr, "  %s\n", e.msg);
        return;
    }
    CHECK(lm == NULL); /* no masks: none made */
    CHECK_INT(v->dim[0], NX);
    CHECK_INT(v->dim[1], NY);
    CHECK_INT(v->dim[2], NZ);
    CHECK_INT(v->dtype, R3D_I16);
    int ok = 1;
    for (int k = 0; k < NZ; k++)
        for (int j = 0; j < NY; j++)
            for (int i = 0; i < NX; i++)
                ok &= ((int16_t *)v->voxels)[(k * NY + j) * NX + i] == img_value(i, j, k);
    CHECK(ok);
    /* axial: i +x, stored rows flipped -> j -y, k +z; first DICOM voxel
     * (stored j = NY-1) at the origin */
    double want[3][4] = {{0.5, 0, 0, 0}, {0, -0.75, 0, 0.75 * (NY - 1)}, {0, 0, 2, 0}};
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++)
            CHECK_NEAR(v->ijk_to_lps[r][c], want[r][c], 0);
    CHECK_STR(v->acq.modality, "CT");
    CHECK(strstr(v->description, "Patient") == NULL); /* the name stays out */
    r3d_volume_free(v);
}

static void test_inv3_gnu_and_pax_long_names_read_the_same(void)
{
    for (int style = 1; style <= 2; style++) {
        project P = {1, style, 1, 0, NULL, 0, 0};
        r3d_error e = R3D_ERROR_INIT;
        r3d_labelmap *lm = NULL;
        r3d_volume *v = read_project(&P, &lm, &e);
        CHECK(v != NULL && lm != NULL);
        if (!v)
            fprintf(stderr, "  style %d: %s\n", style, e.msg);
        r3d_volume_free(v);
        r3d_labelmap_free(lm);
    }
}

static void test_inv3_gzip_project_reads_like_plain_tar(void)
{
    project P = {1, 0, 2, 0, NULL, 0, 0};
    buf t = make_project(&P);
    uint8_t *z;
    size_t zn;
    CHECK_INT(r3d_gzip_compress(t.p, t.n, 9, 1, &z, &zn, NULL), R3D_OK);
    r3d_labelmap *a = NULL, *b = NULL;
    r3d_volume *va = r3d_inv3_read_mem(t.p, t.n, "plain.inv3", &a, NULL);
    r3d_volume *vb = r3d_inv3_read_mem(z, zn, "gz.inv3", &b, NULL);
    CHECK(va && vb && memcmp(va->voxels, vb->voxels, r3d_volume_bytes(va)) == 0);
    CHECK(a && b && memcmp(a->vol->voxels, b->vol->voxels, r3d_volume_bytes(a->vol)) == 0);
    r3d_volume_free(va);
    r3d_volume_free(vb);
    r3d_labelmap_free(a);
    r3d_labelmap_free(b);
    free(z);
    free(t.p);
}

static void test_inv3_masks_become_labels_first_mask_wins_names_and_colours(void)
{
    project P = {1, 0, 2, 0, NULL, 0, 0};
    r3d_error e = R3D_ERROR_INIT;
    r3d_labelmap *lm = NULL;
    r3d_volume *v = read_project(&P, &lm, &e);
    CHECK(v && lm);
    if (!v || !lm) {
        fprintf(stderr, "  %s\n", e.msg);
        r3d_volume_free(v);
        return;
    }
    const uint16_t *L = lm->vol->voxels;
    int ok = 1;
    for (int k = 0; k < NZ; k++)
        for (int j = 0; j < NY; j++)
            for (int i = 0; i < NX; i++)
                ok &= L[(k * NY + j) * NX + i] == (i >= 2 ? 1 : j >= 2 ? 2 : 0);
    CHECK(ok);
    CHECK_INT(lm->table.n, 2);
    const r3d_label *l1 = r3d_label_table_find(&lm->table, 1);
    const r3d_label *l2 = r3d_label_table_find(&lm->table, 2);
    CHECK(l1 && l2);
    if (l1 && l2) {
        CHECK_STR(l1->name, "M\xc3\xa1scara 1");        /* &#225; decoded to UTF-8 */
        CHECK_STR(l2->name, "Bone \xc3\xa9\xe4\xb8\xad"); /* &#233; and &#x4e2d; */
        CHECK_INT(l1->rgb[0], 84);
        CHECK_INT(l1->rgb[1], 255);
        CHECK_INT(l2->rgb[0], 128);
    }
    CHECK(memcmp(lm->vol->ijk_to_lps, v->ijk_to_lps, sizeof v->ijk_to_lps) == 0);
    r3d_volume_free(v);
    r3d_labelmap_free(lm);
}

static void test_inv3_never_thresholded_slice_is_filled_from_threshold_range(void)
{
    /* mask 0's slice k=1 is all zero; its threshold_range is [60, 3071]:
     * InVesalius would threshold the image there, and so do we */
    project P = {1, 0, 1, 1, NULL, 0, 0};
    r3d_labelmap *lm = NULL;
    r3d_volume *v = read_project(&P, &lm, NULL);
    CHECK(v && lm);
    if (v && lm) {
        const uint16_t *L = lm->vol->voxels;
        int ok = 1;
        for (int j = 0; j < NY; j++)
            for (int i = 0; i < NX; i++) {
                int16_t x = img_value(i, j, 1);
                ok &= L[(1 * NY + j) * NX + i] == (x >= 60 ? 1 : 0);
                ok &= L[(0 * NY + j) * NX + i] == (i >= 2 ? 1 : 0);
            }
        CHECK(ok);
    }
    r3d_volume_free(v);
    r3d_labelmap_free(lm);
}

static void test_inv3_coronal_and_sagittal_geometry(void)
{
    /* coronal: i +x, j (reversed slices) -y, k (flipped rows) +z;
     * sagittal: i (slices) -x, j (columns) +y, k (flipped rows) +z */
    double cor[3][4] = {{0.5, 0, 0, 0}, {0, -0.75, 0, 0.75 * (NY - 1)}, {0, 0, 2, -2.0 * (NZ - 1)}};
    double sag[3][4] = {{-0.5, 0, 0, 0}, {0, 0.75, 0, 0}, {0, 0, 2, -2.0 * (NZ - 1)}};
    for (int o = 2; o <= 3; o++) {
        project P = {o, 0, 0, 0, NULL, 0, 0};
        r3d_volume *v = read_project(&P, NULL, NULL);
        CHECK(v != NULL);
        if (!v)
            continue;
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 4; c++)
                CHECK_NEAR(v->ijk_to_lps[r][c], o == 2 ? cor[r][c] : sag[r][c], 0);
        r3d_volume_free(v);
    }
}

static void test_inv3_damaged_projects_fail_with_reasons(void)
{
    struct { project P; r3d_status code; const char *msg; } cases[] = {
        {{1, 0, 0, 0, "float32", 0, 0}, R3D_EUNSUPPORTED, "image dtype \"float32\""},
        {{1, 0, 0, 0, NULL, 2, 0}, R3D_EFORMAT, "matrix.dat holds 118 bytes, but shape 5x4x3"},
        {{1, 0, 1, 0, NULL, 0, 1}, R3D_EFORMAT, "does not match the image"},
        {{9, 0, 0, 0, NULL, 0, 0}, R3D_EFORMAT, "unknown orientation"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r3d_error e = R3D_ERROR_INIT;
        r3d_labelmap *lm = NULL;
        r3d_volume *v = read_project(&cases[i].P, &lm, &e);
        CHECK(v == NULL && lm == NULL);
        r3d_volume_free(v);
        r3d_labelmap_free(lm);
        CHECK_INT(e.code, cases[i].code);
        CHECK_CONTAINS(e.msg, "test.inv3: ");
        CHECK_CONTAINS(e.msg, cases[i].msg);
    }
    /* no main.plist; a bad tar checksum; a plist that is not XML */
    buf t = {0};
    tar_file(&t, "matrix.dat", "xx", 2, 0);
    tar_end(&t);
    r3d_error e = R3D_ERROR_INIT;
    CHECK(r3d_inv3_read_mem(t.p, t.n, "test.inv3", NULL, &e) == NULL);
    CHECK_CONTAINS(e.msg, "test.inv3: main.plist: missing from the project");
    t.p[0] ^= 1;
    CHECK(r3d_inv3_read_mem(t.p, t.n, "test.inv3", NULL, &e) == NULL);
    CHECK_CONTAINS(e.msg, "bad checksum");
    free(t.p);
    memset(&t, 0, sizeof t);
    tar_file(&t, "main.plist", "<plist><dict><key>a</key><integer>x1</integer></dict></plist>",
             61, 0);
    tar_end(&t);
    CHECK(r3d_inv3_read_mem(t.p, t.n, "test.inv3", NULL, &e) == NULL);
    CHECK_CONTAINS(e.msg, "main.plist: malformed number");
    free(t.p);
    CHECK(r3d_inv3_read_mem((const uint8_t *)"hello", 5, "test.inv3", NULL, &e) == NULL);
    CHECK_CONTAINS(e.msg, "test.inv3: no files in the tar archive");
}

static void test_inv3_truncations_and_byte_flips_never_crash(void)
{
    /* Under the sanitizers this is the fuzzing of the tar and plist code. */
    project P = {1, 1, 2, 0, NULL, 0, 0};
    buf t = make_project(&P);
    uint8_t *m = malloc(t.n);
    uint32_t seed = 7;
    int failures_without_message = 0, runs = 0;
    for (int k = 0; k < 600; k++) {
        size_t n = t.n;
        memcpy(m, t.p, t.n);
        if (k < 100) {
            n = t.n * (size_t)k / 100;
        } else {
            for (int f = 0; f < 1 + k % 5; f++) {
                seed = seed * 1664525u + 1013904223u;
                m[(seed >> 8) % t.n] = (uint8_t)(seed >> 24);
            }
        }
        r3d_error e = R3D_ERROR_INIT;
        r3d_labelmap *lm = NULL;
        r3d_volume *v = r3d_inv3_read_mem(m, n, "fuzz.inv3", &lm, &e);
        if (!v && (e.code == R3D_OK || !e.msg[0]))
            failures_without_message++;
        r3d_volume_free(v);
        r3d_labelmap_free(lm);
        runs++;
    }
    CHECK_INT(failures_without_message, 0);
    CHECK_INT(runs, 600);
    free(m);
    free(t.p);
}

static void test_inv3_cranium_matches_numpy(void)
{
    FILE *f = fopen(CRANIUM, "rb");
    if (!f)
        SKIP("%s absent (apt-get install invesalius-examples)", CRANIUM);
    fclose(f);
    r3d_error e = R3D_ERROR_INIT;
    r3d_labelmap *lm = NULL;
    r3d_volume *v = r3d_inv3_read(CRANIUM, &lm, &e);
    CHECK(v && lm);
    if (!v || !lm) {
        fprintf(stderr, "  %s\n", e.msg);
        r3d_volume_free(v);
        r3d_labelmap_free(lm);
        return;
    }
    CHECK_INT(v->dim[0], 256);
    CHECK_INT(v->dim[1], 256);
    CHECK_INT(v->dim[2], 108);
    double sp = 0.95703119999999997;
    CHECK_NEAR(v->ijk_to_lps[0][0], sp, 0);
    CHECK_NEAR(v->ijk_to_lps[1][1], -sp, 0);
    CHECK_NEAR(v->ijk_to_lps[2][2], 1.5, 0);
    CHECK_NEAR(v->ijk_to_lps[1][3], 255 * sp, 1e-12);
    int64_t n = r3d_volume_nvox(v);
    const int16_t *p = v->voxels;
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += p[i];
    CHECK_NEAR(sum, -4147325847.0, 0);
    CHECK_INT(p[0], -998);
    CHECK_INT(p[1], -1003);
    CHECK_INT(p[n / 2], -999);
    CHECK_INT(p[n - 1], -995);
    const uint16_t *L = lm->vol->voxels;
    int64_t c1 = 0, c2 = 0, first1 = -1;
    for (int64_t i = 0; i < n; i++) {
        c1 += L[i] == 1;
        c2 += L[i] == 2;
        if (first1 < 0 && L[i] == 1)
            first1 = i;
    }
    CHECK_INT(c1, 475759);
    CHECK_INT(c2, 1843347);
    CHECK_INT(first1, 85);
    CHECK_INT(lm->table.n, 2);
    const r3d_label *l2 = r3d_label_table_find(&lm->table, 2);
    CHECK(l2 && strcmp(l2->name, "M\xc3\xa1scara 2") == 0);
    CHECK(l2 && l2->rgb[0] == 255 && l2->rgb[1] == 128 && l2->rgb[2] == 64);
    CHECK_STR(v->acq.modality, "CT");
    r3d_volume_free(v);
    r3d_labelmap_free(lm);
}

/* test_inv3 --write-seeds DIR: the fuzz_inv3 seed corpus (a project with
 * two masks, as plain tar). */
static int write_seeds(const char *dir)
{
    project P = {1, 0, 2, 0, NULL, 0, 0};
    buf b = make_project(&P);
    char path[512];
    snprintf(path, sizeof path, "%s/two_masks.tar", dir);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(b.p, 1, b.n, f) == b.n;
    if (f)
        fclose(f);
    free(b.p);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--write-seeds"))
        return write_seeds(argv[2]);
    RUN(test_inv3_axial_plain_tar_voxels_geometry_and_modality);
    RUN(test_inv3_gnu_and_pax_long_names_read_the_same);
    RUN(test_inv3_gzip_project_reads_like_plain_tar);
    RUN(test_inv3_masks_become_labels_first_mask_wins_names_and_colours);
    RUN(test_inv3_never_thresholded_slice_is_filled_from_threshold_range);
    RUN(test_inv3_coronal_and_sagittal_geometry);
    RUN(test_inv3_damaged_projects_fail_with_reasons);
    RUN(test_inv3_truncations_and_byte_flips_never_crash);
    RUN(test_inv3_cranium_matches_numpy);
    return CHECK_DONE("test_inv3");
}

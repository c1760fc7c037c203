/* test_mesh_io.c - mesh file formats: every format we read comes back from
 * what we write with the same triangles (corner by corner, float-exact),
 * names and colours where the format keeps them; every broken file in
 * tests/data/bad/mesh_* gives its error code and a message naming the file.
 */
#define _GNU_SOURCE /* memmem, strndup */
#include "check.h"
#include "io/mesh/mesh_io.h"
#include "mesh_fixture.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <unistd.h>
#include <zip.h>

static char g_dir[256];

static const char *tmp_path(const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", g_dir, name);
    return buf;
}

/* Triangle k of a (corners in order) equals triangle k of b, float-exact. */
static int same_triangles(const r3d_mesh *a, int64_t ka, const r3d_mesh *b, int64_t kb,
                          int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        for (int c = 0; c < 3; c++) {
            const float *p = a->v + 3 * (size_t)a->t[3 * (ka + k) + c];
            const float *q = b->v + 3 * (size_t)b->t[3 * (kb + k) + c];
            if (memcmp(p, q, 3 * sizeof *p) != 0) {
                fprintf(stderr, "  triangle %lld corner %d: (%g %g %g) vs (%g %g %g)\n",
                        (long long)k, c, p[0], p[1], p[2], q[0], q[1], q[2]);
                return 0;
            }
        }
    return 1;
}

/* Write the fixture in format f, read it back, compare object by object
 * (or against the merged objects when the format keeps one). */
static void roundtrip(const char *file, r3d_mesh_format f, int objects_kept, int names_kept,
                      int colours_kept)
{
    char path[512];
    tmp_path(file, path, sizeof path);
    r3d_scene s = {0}, r = {0};
    fix_scene(&s);
    r3d_error err = R3D_ERROR_INIT;
    r3d_status st = r3d_scene_write(&s, path, f, &err);
    CHECK_INT(st, R3D_OK);
    if (st != R3D_OK) {
        fprintf(stderr, "  %s\n", err.msg);
        r3d_scene_clear(&s);
        return;
    }
    st = r3d_scene_read(path, &r, &err);
    CHECK_INT(st, R3D_OK);
    if (st != R3D_OK)
        fprintf(stderr, "  %s\n", err.msg);
    if (objects_kept) {
        CHECK_INT(r.n, s.n);
        for (int i = 0; i < r.n && i < s.n; i++) {
            CHECK_INT(r.m[i]->nt, s.m[i]->nt);
            CHECK_INT(r.m[i]->nv, s.m[i]->nv);
            if (r.m[i]->nt == s.m[i]->nt)
                CHECK(same_triangles(r.m[i], 0, s.m[i], 0, s.m[i]->nt));
            if (names_kept)
                CHECK_STR(r.m[i]->name, s.m[i]->name);
            if (colours_kept)
                CHECK(memcmp(r.m[i]->rgb, s.m[i]->rgb, 3) == 0);
        }
    } else {
        CHECK_INT(r.n, 1);
        if (r.n == 1) {
            CHECK_INT(r.m[0]->nt, FIX_SPHERE_NT + FIX_CUBE_NT);
            CHECK_INT(r.m[0]->nv, FIX_SPHERE_NV + FIX_CUBE_NV);
            if (r.m[0]->nt == FIX_SPHERE_NT + FIX_CUBE_NT) {
                CHECK(same_triangles(r.m[0], 0, s.m[0], 0, FIX_SPHERE_NT));
                CHECK(same_triangles(r.m[0], FIX_SPHERE_NT, s.m[1], 0, FIX_CUBE_NT));
            }
        }
    }
    r3d_scene_clear(&s);
    r3d_scene_clear(&r);
}

static void test_format_from_name_by_extension(void)
{
    CHECK_INT(r3d_mesh_format_from_name("a/b.STL"), R3D_MESH_STL);
    CHECK_INT(r3d_mesh_format_from_name("x.obj"), R3D_MESH_OBJ);
    CHECK_INT(r3d_mesh_format_from_name("x.ply"), R3D_MESH_PLY);
    CHECK_INT(r3d_mesh_format_from_name("x.3mf"), R3D_MESH_3MF);
    CHECK_INT(r3d_mesh_format_from_name("x.amf"), R3D_MESH_AMF);
    CHECK_INT(r3d_mesh_format_from_name("x.amf.zip"), R3D_MESH_AMF_ZIP);
    CHECK_INT(r3d_mesh_format_from_name("x.wrl"), R3D_MESH_VRML);
    CHECK_INT(r3d_mesh_format_from_name("x.3ds"), R3D_MESH_3DS);
    CHECK_INT(r3d_mesh_format_from_name("x.glb"), R3D_MESH_GLB);
    CHECK_INT(r3d_mesh_format_from_name("x.nii"), R3D_MESH_UNKNOWN);
    CHECK_INT(r3d_mesh_format_from_name(NULL), R3D_MESH_UNKNOWN);
    CHECK_STR(r3d_mesh_format_name(R3D_MESH_GLB), "glTF 2.0 binary (GLB)");
}

static void test_stl_binary_roundtrip_merges_objects_float_exact(void)
{
    roundtrip("scene.stl", R3D_MESH_STL, 0, 0, 0);
}

static void test_stl_ascii_roundtrip_keeps_solids_and_names(void)
{
    roundtrip("scene_ascii.stl", R3D_MESH_STL_ASCII, 1, 1, 0);
}

static void test_obj_roundtrip_keeps_objects_names_colours(void)
{
    roundtrip("scene.obj", R3D_MESH_OBJ, 1, 1, 1);
    char mtl[512];
    struct stat st;
    CHECK(stat(tmp_path("scene.mtl", mtl, sizeof mtl), &st) == 0);
}

static void test_ply_roundtrip_splits_objects_with_colours(void)
{
    roundtrip("scene.ply", R3D_MESH_PLY, 1, 1, 1);
}

static void test_stl_binary_header_states_mm_and_frame(void)
{
    char path[512];
    tmp_path("ras.stl", path, sizeof path);
    r3d_scene s = {0}, r = {0};
    fix_scene(&s);
    for (int i = 0; i < s.n; i++)
        r3d_mesh_set_frame(s.m[i], R3D_FRAME_RAS);
    CHECK_INT(r3d_scene_write(&s, path, R3D_MESH_STL, NULL), R3D_OK);
    uint8_t *b;
    size_t n;
    CHECK_INT(r3d_file_read_all(path, &b, &n, NULL), R3D_OK);
    CHECK_INT(n, 84 + 50 * (FIX_SPHERE_NT + FIX_CUBE_NT));
    CHECK(memcmp(b, "solid", 5) != 0);
    b[79] = 0;
    CHECK_CONTAINS((char *)b, "units mm");
    CHECK_CONTAINS((char *)b, "frame RAS");
    free(b);
    CHECK_INT(r3d_scene_read(path, &r, NULL), R3D_OK);
    CHECK(r.n == 1 && r.m[0]->frame == R3D_FRAME_RAS);
    r3d_scene_clear(&s);
    r3d_scene_clear(&r);
}

static void test_frame_survives_obj_and_ply(void)
{
    const char *files[] = {"ras.obj", "ras.ply"};
    for (int f = 0; f < 2; f++) {
        char path[512];
        tmp_path(files[f], path, sizeof path);
        r3d_scene s = {0}, r = {0};
        fix_scene(&s);
        for (int i = 0; i < s.n; i++)
            r3d_mesh_set_frame(s.m[i], R3D_FRAME_RAS);
        CHECK_INT(r3d_scene_write(&s, path, R3D_MESH_UNKNOWN, NULL), R3D_OK);
        CHECK_INT(r3d_scene_read(path, &r, NULL), R3D_OK);
        CHECK_INT(r.n, 2);
        for (int i = 0; i < r.n; i++)
            CHECK_INT(r.m[i]->frame, R3D_FRAME_RAS);
        r3d_scene_clear(&s);
        r3d_scene_clear(&r);
    }
}

static void test_stl_binary_starting_with_solid_is_binary(void)
{
    /* many exporters start the binary header with "solid": size decides */
    uint8_t b[84 + 50];
    memset(b, ' ', 80);
    memcpy(b, "solid exported by a CAD program", 31);
    b[80] = 1, b[81] = b[82] = b[83] = 0;
    float c[12] = {0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0};
    memcpy(b + 84, c, sizeof c);
    b[132] = b[133] = 0;
    r3d_scene r = {0};
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d__scene_read_mem(b, sizeof b, "cad.stl", NULL, &r, &err), R3D_OK);
    CHECK(r.n == 1 && r.m[0]->nt == 1 && r.m[0]->nv == 3);
    if (r.n == 1)
        CHECK_INT(r.m[0]->rgb[1], 200); /* no colour in STL: grey, not black */
    r3d_scene_clear(&r);
}

static void test_obj_polygons_negative_indices_and_slashes(void)
{
    const char *txt = "# quad + triangle, v/vt/vn forms, relative indices\n"
                      "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvn 0 0 1\r\n"
                      "o first\nf 1/1/1 2/1/1 3/1/1 4/1/1\n"
                      "g second\nv 5 5 5\nf -1//1 -4 -3\n";
    r3d_scene r = {0};
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d__scene_read_mem(txt, strlen(txt), "poly.obj", NULL, &r, &err), R3D_OK);
    CHECK_INT(r.n, 2);
    if (r.n == 2) {
        CHECK_STR(r.m[0]->name, "first");
        CHECK_INT(r.m[0]->nt, 2);
        CHECK_INT(r.m[0]->nv, 4);
        CHECK_INT(r.m[0]->t[3], 0); /* fan from the first corner */
        CHECK_INT(r.m[0]->t[4], 2);
        CHECK_INT(r.m[0]->t[5], 3);
        CHECK_STR(r.m[1]->name, "second");
        CHECK_INT(r.m[1]->nt, 1);
        CHECK_INT(r.m[1]->nv, 3);
        CHECK_NEAR(r.m[1]->v[0], 5.0, 0);
    }
    r3d_scene_clear(&r);
}

static void test_obj_material_library_below_folder_or_missing(void)
{
    char dir[512], path[600];
    tmp_path("mtl", dir, sizeof dir);
    CHECK_INT(mkdir(dir, 0755), 0);
    snprintf(path, sizeof path, "%s/sub", dir);
    CHECK_INT(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/sub/m.mtl", dir);
    const char *mtl = "newmtl bone\nKd 1 0.5 0\n";
    CHECK_INT(r3d_file_write_atomic(path, mtl, strlen(mtl), NULL), R3D_OK);
    const char *obj = "mtllib sub/m.mtl ../outside.mtl missing.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\n"
                      "o a\nusemtl bone\nf 1 2 3\no b\nusemtl nowhere\nf 3 2 1\n";
    snprintf(path, sizeof path, "%s/m.obj", dir);
    CHECK_INT(r3d_file_write_atomic(path, obj, strlen(obj), NULL), R3D_OK);
    r3d_scene r = {0};
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d_scene_read(path, &r, &err), R3D_OK);
    CHECK_INT(r.n, 2);
    if (r.n == 2) {
        CHECK_INT(r.m[0]->rgb[0], 255);
        CHECK_INT(r.m[0]->rgb[1], 128);
        CHECK_INT(r.m[0]->rgb[2], 0);
        CHECK_INT(r.m[1]->rgb[0], 200); /* unknown material: the default grey */
    }
    r3d_scene_clear(&r);
}

static void test_ply_single_object_keeps_name_and_colour(void)
{
    char path[512];
    tmp_path("one.ply", path, sizeof path);
    r3d_scene s = {0}, r = {0};
    fix_scene(&s);
    r3d_mesh_free(s.m[0]);
    s.m[0] = s.m[1];
    s.n = 1;
    CHECK_INT(r3d_scene_write(&s, path, R3D_MESH_PLY, NULL), R3D_OK);
    CHECK_INT(r3d_scene_read(path, &r, NULL), R3D_OK);
    CHECK(r.n == 1);
    if (r.n == 1) {
        CHECK_STR(r.m[0]->name, "肝脏");
        CHECK(memcmp(r.m[0]->rgb, s.m[0]->rgb, 3) == 0);
        CHECK(same_triangles(r.m[0], 0, s.m[0], 0, FIX_CUBE_NT));
    }
    r3d_scene_clear(&s);
    r3d_scene_clear(&r);
}

static void test_ply_ascii_and_big_endian_read(void)
{
    const char *a = "ply\r\nformat ascii 1.0\r\ncomment frame RAS\r\nelement vertex 4\r\n"
                    "property double x\r\nproperty double y\r\nproperty double z\r\n"
                    "property float red\r\nproperty float green\r\nproperty float blue\r\n"
                    "element edge 1\r\nproperty int a\r\nproperty int b\r\n"
                    "element face 1\r\nproperty list uchar uint vertex_index\r\nend_header\r\n"
                    "0 0 0 1 0.5 0\n1 0 0 1 0 0\n1 1 0 0 0 0\n0 1 0 0 0 0\n0 1\n4 0 1 2 3\n";
    r3d_scene r = {0};
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d__scene_read_mem(a, strlen(a), "a.ply", NULL, &r, &err), R3D_OK);
    CHECK(r.n == 1 && r.m[0]->nt == 2 && r.m[0]->frame == R3D_FRAME_RAS);
    if (r.n == 1) {
        CHECK_INT(r.m[0]->rgb[0], 255);
        CHECK_INT(r.m[0]->rgb[1], 128);
    }
    r3d_scene_clear(&r);

    /* big endian: float x y z, list uchar int */
    const char hdr[] = "ply\nformat binary_big_endian 1.0\nelement vertex 3\nproperty float x\n"
                       "property float y\nproperty float z\nelement face 1\n"
                       "property list uchar int vertex_indices\nend_header\n";
    uint8_t b[sizeof hdr - 1 + 36 + 13];
    memcpy(b, hdr, sizeof hdr - 1);
    uint8_t *p = b + sizeof hdr - 1;
    const float v[9] = {0, 0, 0, 2, 0, 0, 0, 3, 0};
    for (int i = 0; i < 9; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        *p++ = (uint8_t)(u >> 24), *p++ = (uint8_t)(u >> 16), *p++ = (uint8_t)(u >> 8),
        *p++ = (uint8_t)u;
    }
    *p++ = 3;
    for (int i = 0; i < 3; i++)
        *p++ = 0, *p++ = 0, *p++ = 0, *p++ = (uint8_t)i;
    CHECK_INT(r3d__scene_read_mem(b, sizeof b, "be.ply", NULL, &r, &err), R3D_OK);
    CHECK(r.n == 1 && r.m[0]->nt == 1 && r.m[0]->v[3] == 2.0f && r.m[0]->v[7] == 3.0f);
    r3d_scene_clear(&r);
}

static void test_write_refuses_empty_mixed_frames_and_missing_folder(void)
{
    r3d_scene s = {0};
    r3d_error err = R3D_ERROR_INIT;
    char path[512];
    CHECK_INT(r3d_scene_write(&s, tmp_path("e.stl", path, sizeof path), R3D_MESH_STL, &err),
              R3D_EARG);
    fix_scene(&s);
    r3d_mesh_set_frame(s.m[1], R3D_FRAME_RAS);
    CHECK_INT(r3d_scene_write(&s, path, R3D_MESH_STL, &err), R3D_EARG);
    CHECK_CONTAINS(err.msg, "RAS");
    r3d_mesh_set_frame(s.m[1], R3D_FRAME_LPS);
    CHECK_INT(r3d_scene_write(&s, "/nonexistent-dir-r3d/x.stl", R3D_MESH_STL, &err), R3D_EIO);
    CHECK_INT(r3d_scene_write(&s, tmp_path("x.unknown", path, sizeof path), R3D_MESH_UNKNOWN,
                              &err),
              R3D_EARG);
    struct stat st;
    CHECK(stat(path, &st) != 0);
    r3d_scene_clear(&s);
}

static void test_read_of_write_only_format_is_unsupported(void)
{
    r3d_scene r = {0};
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d__scene_read_mem("PK", 2, "x.3mf", NULL, &r, &err), R3D_EUNSUPPORTED);
    CHECK_CONTAINS(err.msg, "x.3mf");
    CHECK_INT(r.n, 0);
}


/* ---- write-only formats: checked by parsing what we wrote ------------------- */

static size_t count_of(const char *hay, size_t n, const char *needle)
{
    size_t c = 0, l = strlen(needle);
    for (const char *p = hay; (p = memmem(p, n - (size_t)(p - hay), needle, l)); p += l)
        c++;
    return c;
}

static char *write_fixture(const char *file, r3d_mesh_format f, size_t *n)
{
    char path[512];
    tmp_path(file, path, sizeof path);
    r3d_scene s = {0};
    fix_scene(&s);
    r3d_error err = R3D_ERROR_INIT;
    r3d_status st = r3d_scene_write(&s, path, f, &err);
    r3d_scene_clear(&s);
    CHECK_INT(st, R3D_OK);
    if (st != R3D_OK) {
        fprintf(stderr, "  %s\n", err.msg);
        return NULL;
    }
    uint8_t *b = NULL;
    CHECK_INT(r3d_file_read_all(path, &b, n, NULL), R3D_OK);
    return (char *)b;
}

/* A member of a zip archive file, NUL-terminated, or NULL. */
static char *zip_member(const char *path, const char *name, size_t *n)
{
    zip_t *z = zip_open(path, ZIP_RDONLY, NULL);
    if (!z)
        return NULL;
    zip_stat_t st;
    char *b = NULL;
    if (zip_stat(z, name, 0, &st) == 0) {
        zip_file_t *f = zip_fopen(z, name, 0);
        b = malloc(st.size + 1);
        if (f && b && zip_fread(f, b, st.size) == (zip_int64_t)st.size) {
            b[st.size] = 0;
            *n = st.size;
        } else {
            free(b);
            b = NULL;
        }
        if (f)
            zip_fclose(f);
    }
    zip_close(z);
    return b;
}

static void test_3mf_package_has_parts_unit_names_colours_counts(void)
{
    size_t n;
    free(write_fixture("scene.3mf", R3D_MESH_3MF, &n));
    char path[512];
    tmp_path("scene.3mf", path, sizeof path);
    char *ct = zip_member(path, "[Content_Types].xml", &n);
    CHECK_CONTAINS(ct, "application/vnd.ms-package.3dmanufacturing-3dmodel+xml");
    free(ct);
    char *rels = zip_member(path, "_rels/.rels", &n);
    CHECK_CONTAINS(rels, "Target=\"/3D/3dmodel.model\"");
    CHECK_CONTAINS(rels, "http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel");
    free(rels);
    char *m = zip_member(path, "3D/3dmodel.model", &n);
    CHECK(m != NULL);
    if (!m)
        return;
    CHECK_CONTAINS(m, "unit=\"millimeter\"");
    CHECK_CONTAINS(m, "xmlns=\"http://schemas.microsoft.com/3dmanufacturing/core/2015/02\"");
    CHECK_CONTAINS(m, "frame LPS");
    CHECK_CONTAINS(m, "name=\"skull\"");
    CHECK_CONTAINS(m, "name=\"肝脏\"");
    CHECK_CONTAINS(m, "displaycolor=\"#B43C28\"");
    CHECK_INT(count_of(m, n, "<vertex "), FIX_SPHERE_NV + FIX_CUBE_NV);
    CHECK_INT(count_of(m, n, "<triangle "), FIX_SPHERE_NT + FIX_CUBE_NT);
    CHECK_INT(count_of(m, n, "<object "), 2);
    CHECK_INT(count_of(m, n, "<item objectid"), 2);
    free(m);
}

static void test_amf_plain_and_zipped_hold_the_same_document(void)
{
    size_t n, nz, nd;
    char *a = write_fixture("scene.amf", R3D_MESH_AMF, &n);
    free(write_fixture("scene.amf.zip", R3D_MESH_AMF_ZIP, &nz));
    if (!a)
        return;
    CHECK_CONTAINS(a, "<amf unit=\"millimeter\"");
    CHECK_CONTAINS(a, "<metadata type=\"name\">肝脏</metadata>");
    CHECK_INT(count_of(a, n, "<vertex>"), FIX_SPHERE_NV + FIX_CUBE_NV);
    CHECK_INT(count_of(a, n, "<triangle>"), FIX_SPHERE_NT + FIX_CUBE_NT);
    CHECK_INT(count_of(a, n, "<object id="), 2);
    CHECK_INT(count_of(a, n, "<color>"), 4); /* material + object, each object */
    char path[512];
    char *d = zip_member(tmp_path("scene.amf.zip", path, sizeof path), "scene.amf", &nd);
    CHECK(d && nd == n && memcmp(a, d, n) == 0);
    free(a);
    free(d);
}

static void test_vrml_has_one_faceset_per_object_with_colour(void)
{
    size_t n;
    char *w = write_fixture("scene.wrl", R3D_MESH_VRML, &n);
    if (!w)
        return;
    CHECK(strncmp(w, "#VRML V2.0 utf8\n", 16) == 0);
    CHECK_INT(count_of(w, n, "IndexedFaceSet"), 2);
    CHECK_INT(count_of(w, n, ", -1,"), FIX_SPHERE_NT + FIX_CUBE_NT);
    CHECK_CONTAINS(w, "diffuseColor 0.705882 0.235294 0.156863");
    CHECK_CONTAINS(w, "DEF object_1_skull Shape");
    CHECK_CONTAINS(w, "\"units: millimetre\"");
    free(w);
}

/* ---- 3DS: walk the chunks back ------------------------------------------------ */

typedef struct ds_object {
    char name[16];
    int nv, nf;
    float *v;
    uint16_t *f;
} ds_object;

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* Collect OBJECT chunks under MAIN > EDIT; 0 when a length is inconsistent. */
static int ds_walk(const uint8_t *b, size_t n, ds_object *obj, int *nobj, int max)
{
    if (n < 6 || le16(b) != 0x4D4D || le32(b + 2) != n)
        return 0;
    for (size_t at = 6; at + 6 <= n;) {
        uint32_t len = le32(b + at + 2);
        if (len < 6 || at + len > n)
            return 0;
        if (le16(b + at) == 0x3D3D) {
            for (size_t e = at + 6; e + 6 <= at + len;) {
                uint32_t el = le32(b + e + 2);
                if (el < 6 || e + el > at + len)
                    return 0;
                if (le16(b + e) == 0x4000 && *nobj < max) {
                    ds_object *o = &obj[(*nobj)++];
                    const uint8_t *p = b + e + 6;
                    size_t nl = strnlen((const char *)p, 12);
                    if (nl > 10)
                        return 0;
                    memcpy(o->name, p, nl + 1);
                    p += nl + 1;
                    const uint8_t *tri = p, *vl = tri + 6, *fl = vl + 6 + le32(vl + 2) - 6;
                    if (le16(tri) != 0x4100 || le16(vl) != 0x4110 || le16(fl) != 0x4120)
                        return 0;
                    o->nv = le16(vl + 6);
                    o->v = (float *)malloc(12 * (size_t)o->nv + 4);
                    memcpy(o->v, vl + 8, 12 * (size_t)o->nv);
                    o->nf = le16(fl + 6);
                    o->f = malloc(6 * (size_t)o->nf + 2);
                    for (int k = 0; k < o->nf; k++)
                        for (int j = 0; j < 3; j++)
                            o->f[3 * k + j] = le16(fl + 8 + 8 * k + 2 * j);
                    const uint8_t *mg = fl + 8 + 8 * (size_t)o->nf;
                    if (le16(mg) != 0x4130)
                        return 0;
                }
                e += el;
            }
        }
        at += len;
    }
    return 1;
}

static void test_3ds_chunks_names_and_counts(void)
{
    size_t n;
    uint8_t *b = (uint8_t *)write_fixture("scene.3ds", R3D_MESH_3DS, &n);
    if (!b)
        return;
    ds_object obj[8];
    memset(obj, 0, sizeof obj);
    int nobj = 0;
    CHECK(ds_walk(b, n, obj, &nobj, 8));
    CHECK_INT(nobj, 2);
    if (nobj == 2) {
        CHECK_STR(obj[0].name, "1_skull");
        CHECK_STR(obj[1].name, "2_______"); /* UTF-8 bytes of 肝脏 as '_' */
        CHECK_INT(obj[0].nv, FIX_SPHERE_NV);
        CHECK_INT(obj[0].nf, FIX_SPHERE_NT);
        CHECK_INT(obj[1].nf, FIX_CUBE_NT);
    }
    CHECK(memmem(b, n, "\x11\x00\x09\x00\x00\x00\xb4\x3c\x28", 9) != NULL); /* COLOR_24 */
    for (int i = 0; i < nobj; i++)
        free(obj[i].v), free(obj[i].f);
    free(b);
}

static void test_3ds_leaves_out_objects_without_triangles(void)
{
    r3d_scene s = {0};
    fix_scene(&s);
    r3d_mesh *empty = r3d_mesh_new(NULL);
    strcpy(empty->name, "nothing");
    r3d_scene_add(&s, empty, NULL);
    char path[512];
    CHECK_INT(r3d_scene_write(&s, tmp_path("empty.3ds", path, sizeof path), R3D_MESH_3DS, NULL),
              R3D_OK);
    uint8_t *b = NULL;
    size_t n = 0;
    CHECK_INT(r3d_file_read_all(path, &b, &n, NULL), R3D_OK);
    ds_object obj[8];
    memset(obj, 0, sizeof obj);
    int nobj = 0;
    CHECK(b && ds_walk(b, n, obj, &nobj, 8));
    CHECK_INT(nobj, 2);
    for (int i = 0; i < nobj; i++)
        free(obj[i].v), free(obj[i].f);
    free(b);
    r3d_scene_clear(&s);
}

static void test_3ds_splits_objects_beyond_65535_vertices(void)
{
    /* 70000 separate triangles: 210000 vertices, so parts of at most
     * 21845 triangles (65535 vertices) each, in order */
    r3d_scene s = {0};
    r3d_mesh *m = r3d_mesh_new(NULL);
    strcpy(m->name, "bigstructure");
    const int nt = 70000;
    for (int k = 0; k < nt; k++) {
        for (int j = 0; j < 3; j++)
            r3d_mesh_add_vertex(m, (float)k, (float)j, (float)(k % 7));
        r3d_mesh_add_triangle(m, 3 * k, 3 * k + 1, 3 * k + 2);
    }
    r3d_scene_add(&s, m, NULL);
    char path[512];
    CHECK_INT(r3d_scene_write(&s, tmp_path("big.3ds", path, sizeof path), R3D_MESH_3DS, NULL),
              R3D_OK);
    uint8_t *b;
    size_t n;
    CHECK_INT(r3d_file_read_all(path, &b, &n, NULL), R3D_OK);
    ds_object obj[8];
    memset(obj, 0, sizeof obj);
    int nobj = 0;
    CHECK(ds_walk(b, n, obj, &nobj, 8));
    CHECK_INT(nobj, 4);
    int total = 0, exact = 1;
    for (int i = 0; i < nobj; i++) {
        CHECK(obj[i].nv <= 65535);
        for (int k = 0; k < obj[i].nf; k++, total++)
            for (int j = 0; j < 3; j++)
                exact &= memcmp(obj[i].v + 3 * obj[i].f[3 * k + j],
                                m->v + 3 * (size_t)m->t[3 * total + j], 12) == 0;
    }
    CHECK_INT(total, nt);
    CHECK(exact);
    if (nobj == 4) {
        CHECK_STR(obj[0].name, "1.1_bigstr");
        CHECK_STR(obj[3].name, "1.4_bigstr");
    }
    for (int i = 0; i < nobj; i++)
        free(obj[i].v), free(obj[i].f);
    free(b);
    r3d_scene_clear(&s);
}

static void test_glb_header_json_and_buffers_match_the_scene(void)
{
    size_t n;
    uint8_t *b = (uint8_t *)write_fixture("scene.glb", R3D_MESH_GLB, &n);
    if (!b)
        return;
    CHECK(memcmp(b, "glTF", 4) == 0);
    CHECK_INT(le32(b + 4), 2);
    CHECK_INT(le32(b + 8), n);
    uint32_t jl = le32(b + 12);
    CHECK_INT(le32(b + 16), 0x4E4F534A);
    CHECK_INT(jl % 4, 0);
    CHECK_INT(le32(b + 20 + jl + 4), 0x004E4942);
    const uint8_t *bin = b + 28 + jl;
    char *js = strndup((const char *)b + 20, jl);
    cJSON *root = cJSON_Parse(js);
    CHECK(root != NULL);
    r3d_scene s = {0};
    fix_scene(&s);
    if (root) {
        cJSON *asset = cJSON_GetObjectItem(root, "asset");
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(asset, "version")), "2.0");
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(asset, "generator")), "recon3d");
        cJSON *nodes = cJSON_GetObjectItem(root, "nodes");
        CHECK_INT(cJSON_GetArraySize(nodes), 3);
        cJSON *mat = cJSON_GetObjectItem(cJSON_GetArrayItem(nodes, 0), "matrix");
        CHECK_NEAR(cJSON_GetArrayItem(mat, 0)->valuedouble, 0.001, 1e-12);
        CHECK_NEAR(cJSON_GetArrayItem(mat, 6)->valuedouble, -0.001, 1e-12); /* y -> -Z */
        CHECK_NEAR(cJSON_GetArrayItem(mat, 9)->valuedouble, 0.001, 1e-12);  /* z -> +Y */
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(nodes, 2), "name")),
                  "肝脏");
        cJSON *meshes = cJSON_GetObjectItem(root, "meshes");
        cJSON *accs = cJSON_GetObjectItem(root, "accessors");
        cJSON *views = cJSON_GetObjectItem(root, "bufferViews");
        CHECK_INT(cJSON_GetArraySize(meshes), 2);
        for (int i = 0; i < 2 && cJSON_GetArraySize(meshes) == 2; i++) {
            const r3d_mesh *m = s.m[i];
            cJSON *prim = cJSON_GetArrayItem(
                cJSON_GetObjectItem(cJSON_GetArrayItem(meshes, i), "primitives"), 0);
            cJSON *attr = cJSON_GetObjectItem(prim, "attributes");
            cJSON *pa = cJSON_GetArrayItem(accs, cJSON_GetObjectItem(attr, "POSITION")->valueint);
            cJSON *ia = cJSON_GetArrayItem(accs, cJSON_GetObjectItem(prim, "indices")->valueint);
            CHECK_INT(cJSON_GetObjectItem(pa, "count")->valueint, m->nv);
            CHECK_INT(cJSON_GetObjectItem(ia, "count")->valueint, 3 * m->nt);
            CHECK_INT(cJSON_GetObjectItem(ia, "componentType")->valueint, 5125);
            double lo = 1e30, hi = -1e30;
            for (int64_t k = 0; k < m->nv; k++)
                lo = fmin(lo, m->v[3 * k]), hi = fmax(hi, m->v[3 * k]);
            CHECK_NEAR(cJSON_GetArrayItem(cJSON_GetObjectItem(pa, "min"), 0)->valuedouble, lo, 0);
            CHECK_NEAR(cJSON_GetArrayItem(cJSON_GetObjectItem(pa, "max"), 0)->valuedouble, hi, 0);
            cJSON *pv = cJSON_GetArrayItem(views, cJSON_GetObjectItem(pa, "bufferView")->valueint);
            cJSON *iv = cJSON_GetArrayItem(views, cJSON_GetObjectItem(ia, "bufferView")->valueint);
            size_t po = (size_t)cJSON_GetObjectItem(pv, "byteOffset")->valuedouble;
            size_t io = (size_t)cJSON_GetObjectItem(iv, "byteOffset")->valuedouble;
            CHECK(memcmp(bin + po, m->v, 12 * (size_t)m->nv) == 0);
            CHECK(memcmp(bin + io, m->t, 12 * (size_t)m->nt) == 0);
        }
        cJSON *mats = cJSON_GetObjectItem(root, "materials");
        cJSON *bc = cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetArrayItem(mats, 1), "pbrMetallicRoughness"),
            "baseColorFactor");
        CHECK_NEAR(cJSON_GetArrayItem(bc, 0)->valuedouble, pow((180 / 255.0 + 0.055) / 1.055, 2.4),
                   1e-6);
    }
    cJSON_Delete(root);
    free(js);
    free(b);
    r3d_scene_clear(&s);
}

static const struct {
    const char *file;
    r3d_status code;
    const char *words;
} k_bad[] = {
    {"mesh_stl_truncated.stl", R3D_EFORMAT, "counts 10 triangles but the file holds only 2"},
    {"mesh_stl_too_short.stl", R3D_EFORMAT, "too short for a binary STL"},
    {"mesh_stl_zero_triangles.stl", R3D_EDATA, "no triangles"},
    {"mesh_stl_nan.stl", R3D_EDATA, "non-finite coordinate"},
    {"mesh_stl_ascii_no_endsolid.stl", R3D_EFORMAT, "no endsolid"},
    {"mesh_stl_ascii_bad_vertex.stl", R3D_EFORMAT, ":4: vertex needs 3 finite numbers"},
    {"mesh_stl_ascii_four_vertices.stl", R3D_EFORMAT, "more than 3 vertices"},
    {"mesh_obj_index_out_of_range.obj", R3D_EFORMAT, ":4: face index 4 out of range"},
    {"mesh_obj_zero_index.obj", R3D_EFORMAT, "face index 0 out of range"},
    {"mesh_obj_two_corner_face.obj", R3D_EFORMAT, "face with 2 corners"},
    {"mesh_obj_no_faces.obj", R3D_EDATA, "no faces (3 vertices)"},
    {"mesh_obj_bad_vertex.obj", R3D_EFORMAT, ":1: 'v' needs 3 finite numbers"},
    {"mesh_ply_no_end_header.ply", R3D_EFORMAT, "no end_header"},
    {"mesh_ply_count_too_large.ply", R3D_EFORMAT, "counts 1000000 records"},
    {"mesh_ply_face_index_out_of_range.ply", R3D_EFORMAT, "uses vertex 7 of 3"},
    {"mesh_ply_short_face.ply", R3D_EFORMAT, "has 2 corners"},
    {"mesh_ply_no_xyz.ply", R3D_EFORMAT, "lacks x, y or z"},
    {"mesh_ply_bad_format.ply", R3D_EFORMAT, "header is malformed"},
    {"mesh_ply_truncated_face.ply", R3D_EFORMAT, "ends or is malformed in face 0"},
    {"mesh_ply_no_faces.ply", R3D_EDATA, "no faces"},
};

static void test_bad_files_give_code_and_message_naming_the_file(void)
{
    for (size_t i = 0; i < sizeof k_bad / sizeof k_bad[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/data/bad/%s", R3D_TEST_SRC, k_bad[i].file);
        r3d_scene r = {0};
        r3d_error err = R3D_ERROR_INIT;
        r3d_status st = r3d_scene_read(path, &r, &err);
        if (st != k_bad[i].code)
            fprintf(stderr, "  %s: %s\n", k_bad[i].file, err.msg);
        CHECK_INT(st, k_bad[i].code);
        CHECK_CONTAINS(err.msg, k_bad[i].words);
        CHECK_CONTAINS(err.msg, k_bad[i].file);
        CHECK_INT(r.n, 0);
        r3d_scene_clear(&r);
    }
}

static void test_every_bad_mesh_file_is_checked(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/data/bad", R3D_TEST_SRC);
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (!d)
        return;
    int seen = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, "mesh_", 5) != 0)
            continue;
        seen++;
        int found = 0;
        for (size_t i = 0; i < sizeof k_bad / sizeof k_bad[0]; i++)
            found |= strcmp(k_bad[i].file, e->d_name) == 0;
        if (!found)
            fprintf(stderr, "  %s has no expected code and message\n", e->d_name);
        CHECK(found);
    }
    closedir(d);
    CHECK_INT(seen, sizeof k_bad / sizeof k_bad[0]);
}

int main(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/test_mesh_io.XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_format_from_name_by_extension);
    RUN(test_stl_binary_roundtrip_merges_objects_float_exact);
    RUN(test_stl_ascii_roundtrip_keeps_solids_and_names);
    RUN(test_obj_roundtrip_keeps_objects_names_colours);
    RUN(test_ply_roundtrip_splits_objects_with_colours);
    RUN(test_3mf_package_has_parts_unit_names_colours_counts);
    RUN(test_amf_plain_and_zipped_hold_the_same_document);
    RUN(test_vrml_has_one_faceset_per_object_with_colour);
    RUN(test_3ds_chunks_names_and_counts);
    RUN(test_3ds_leaves_out_objects_without_triangles);
    RUN(test_3ds_splits_objects_beyond_65535_vertices);
    RUN(test_glb_header_json_and_buffers_match_the_scene);
    RUN(test_stl_binary_header_states_mm_and_frame);
    RUN(test_frame_survives_obj_and_ply);
    RUN(test_stl_binary_starting_with_solid_is_binary);
    RUN(test_obj_polygons_negative_indices_and_slashes);
    RUN(test_obj_material_library_below_folder_or_missing);
    RUN(test_ply_single_object_keeps_name_and_colour);
    RUN(test_ply_ascii_and_big_endian_read);
    RUN(test_write_refuses_empty_mixed_frames_and_missing_folder);
    RUN(test_read_of_write_only_format_is_unsupported);
    RUN(test_bad_files_give_code_and_message_naming_the_file);
    RUN(test_every_bad_mesh_file_is_checked);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", g_dir);
    return CHECK_DONE("test_mesh_io");
}

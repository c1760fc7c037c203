/* test_mesh_io.c - mesh file formats: every format we read comes back from
 * what we write with the same triangles (corner by corner, float-exact),
 * names and colours where the format keeps them; every broken file in
 * tests/data/bad/mesh_* gives its error code and a message naming the file.
 */
#include "check.h"
#include "io/mesh/mesh_io.h"
#include "mesh_fixture.h"

#include <dirent.h>
#include <unistd.h>

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
    RUN(test_stl_binary_header_states_mm_and_frame);
    RUN(test_stl_binary_starting_with_solid_is_binary);
    RUN(test_obj_polygons_negative_indices_and_slashes);
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

/* test_mesh_extract_grey.c - grey-level extraction on volumes large enough
 * for its big-array paths: pass A's per-thread lists (edge keys, their
 * crossings, active cubes) grow past their first block, the lists, the
 * scratch that holds pass A's planes and then pass B's edge maps, and the
 * mesh arrays take whole 2 MiB pages (extract.c's alloc_big), and a run
 * of layers' lists is split differently for each thread count. Noise gives about one and a half
 * crossed edges per voxel, so a 330 x 330 slice (edge maps over 2 MiB)
 * and a few slices are enough.
 */
#include "check.h"
#include "phantom.h"

static int same_mesh(const r3d_mesh *a, const r3d_mesh *b)
{
    /* empty meshes have no arrays: memcmp of NULL is undefined even for 0 */
    return a && b && a->nv == b->nv && a->nt == b->nt &&
           (!a->nv || !memcmp(a->v, b->v, (size_t)a->nv * 3 * sizeof *a->v)) &&
           (!a->nt || !memcmp(a->t, b->t, (size_t)a->nt * 3 * sizeof *a->t));
}

/* int16 noise in [-1000, 1000) with slope 1, and the same values as
 * float32 (the other classification path). */
static void noise_volumes(int64_t nx, int64_t ny, int64_t nz, r3d_volume **i16, r3d_volume **f32)
{
    int64_t dim[4] = {nx, ny, nz, 1};
    *i16 = r3d_volume_new(dim, R3D_I16, NULL);
    *f32 = r3d_volume_new(dim, R3D_F32, NULL);
    int16_t *p = (*i16)->voxels;
    float *q = (*f32)->voxels;
    uint32_t seed = 12345;
    for (int64_t n = 0; n < nx * ny * nz; n++) {
        seed = seed * 1664525u + 1013904223u;
        p[n] = (int16_t)((int)(seed >> 16) % 2000 - 1000);
        q[n] = p[n];
    }
}

static void test_grey_large_noise_same_bytes_for_every_thread_count(void)
{
    r3d_volume *v, *f;
    noise_volumes(330, 331, 4, &v, &f);
    CHECK(v && f);
    if (!v || !f)
        return;
    r3d_extract_opts o = R3D_EXTRACT_OPTS_INIT;
    o.iso = 0.5;
    o.threads = 1;
    r3d_mesh *one = r3d_mesh_from_image(v, &o, NULL);
    CHECK(one != NULL);
    if (!one)
        return;
    /* the lists (4 + 8 bytes a vertex, 8 an active cube) pass 2 MiB */
    CHECK(one->nv > 600000);
    CHECK(one->nt > 600000);
    CHECK(one->cap_v >= one->nv && one->cap_t >= one->nt);
    CHECK_INT(mesh_edge_defects(one), 0);
    int threads[4] = {2, 3, 5, 8};
    for (int k = 0; k < 4; k++) {
        o.threads = threads[k];
        r3d_mesh *m = r3d_mesh_from_image(v, &o, NULL);
        CHECK(same_mesh(one, m));
        r3d_mesh_free(m);
        /* the float path, on as many threads */
        m = r3d_mesh_from_image(f, &o, NULL);
        CHECK(same_mesh(one, m));
        r3d_mesh_free(m);
    }
    r3d_mesh_free(one);
    r3d_volume_free(v);
    r3d_volume_free(f);
}

static void test_grey_extracted_mesh_grows_like_any_mesh(void)
{
    /* the extracted arrays are aligned whole pages: later growth (repair,
     * merging) reallocates them like any other mesh's */
    r3d_volume *v, *f;
    noise_volumes(330, 200, 3, &v, &f);
    r3d_extract_opts o = R3D_EXTRACT_OPTS_INIT;
    o.iso = 0.5;
    r3d_mesh *m = r3d_mesh_from_image(v, &o, NULL);
    r3d_mesh *c = r3d_mesh_copy(m, NULL);
    CHECK(m && c && m->nt > 0);
    if (m && c) {
        CHECK_INT(r3d_mesh_reserve(m, m->cap_v + 1, m->cap_t + 1, NULL), R3D_OK);
        int64_t i = r3d_mesh_add_vertex(m, 1, 2, 3);
        CHECK_INT(i, c->nv);
        m->nv = c->nv;
        CHECK(same_mesh(m, c));
    }
    r3d_mesh_free(m);
    r3d_mesh_free(c);
    r3d_volume_free(v);
    r3d_volume_free(f);
}

int main(void)
{
    RUN(test_grey_large_noise_same_bytes_for_every_thread_count);
    RUN(test_grey_extracted_mesh_grows_like_any_mesh);
    return CHECK_DONE("test_mesh_extract_grey");
}

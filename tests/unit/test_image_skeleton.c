/* test_image_skeleton.c - skeleton and skeleton graph on phantoms with
 * known answers; Frangi's response in mm does not depend on the voxel
 * size. (Voxel-for-voxel comparisons with scikit-image are in
 * tests/e2e/image_scipy.py.) */
#include "check.h"
#include "r3d/r3d.h"

static r3d_volume *vol(int nx, int ny, int nz, double s, r3d_dtype t)
{
    int64_t dim[4] = {nx, ny, nz, 1};
    r3d_volume *v = r3d_volume_new(dim, t, NULL);
    for (int i = 0; i < 3; i++)
        v->ijk_to_lps[i][i] = s;
    r3d_volume_update_spacing(v);
    return v;
}

/* Distance from point p to segment ab. */
static double seg_dist(const double p[3], const double a[3], const double b[3])
{
    double ab[3], ap[3], t = 0, l2 = 0;
    for (int i = 0; i < 3; i++)
        ab[i] = b[i] - a[i], ap[i] = p[i] - a[i], t += ab[i] * ap[i], l2 += ab[i] * ab[i];
    t = t < 0 ? 0 : t > l2 ? 1 : t / l2;
    double d = 0;
    for (int i = 0; i < 3; i++)
        d += (ap[i] - t * ab[i]) * (ap[i] - t * ab[i]);
    return sqrt(d);
}

/* A "Y": trunk from (30,30,4) to (30,30,30), branches to (14,30,54) and
 * (46,30,54), tube radius 3 voxels, 1 mm voxels. */
static r3d_volume *y_phantom(void)
{
    r3d_volume *m = vol(60, 60, 60, 1.0, R3D_U8);
    double a[3] = {30, 30, 4}, j[3] = {30, 30, 30}, l[3] = {14, 30, 54}, r[3] = {46, 30, 54};
    uint8_t *p = m->voxels;
    for (int z = 0; z < 60; z++)
        for (int y = 0; y < 60; y++)
            for (int x = 0; x < 60; x++) {
                double q[3] = {x, y, z};
                p[x + 60 * (y + 60 * z)] =
                    seg_dist(q, a, j) <= 3 || seg_dist(q, j, l) <= 3 || seg_dist(q, j, r) <= 3;
            }
    return m;
}

static void test_skeleton_graph_of_a_y_has_three_branches(void)
{
    r3d_error err = R3D_ERROR_INIT;
    r3d_volume *m = y_phantom();
    r3d_volume *sk = r3d_image_skeleton(m, &err);
    CHECK(sk != NULL);
    r3d_skel_graph g;
    CHECK(r3d_skeleton_graph(sk, m, &g, &err) == R3D_OK);
    int ends = 0, branch = 0;
    for (int i = 0; i < g.n_nodes; i++) {
        ends += g.nodes[i].degree == 1;
        branch += g.nodes[i].degree >= 3;
    }
    CHECK_INT(ends, 3);
    CHECK_INT(branch, 1);
    CHECK_INT(g.n_edges, 3);
    /* lengths: thinning shortens each end by about the radius; the trunk
     * is 26 mm to the junction, the branches sqrt(16^2+24^2) = 28.8 mm */
    double total = 0; /* true centre line: 83.6 mm */
    for (int e = 0; e < g.n_edges; e++) {
        total += g.edges[e].length_mm;
        CHECK(g.edges[e].length_mm > 18 && g.edges[e].length_mm < 31);
        CHECK(g.edges[e].radius_mm > 2.0 && g.edges[e].radius_mm < 4.0);
    }
    if (!(total > 26 + 2 * 28.8 - 3 * 4 && total < 26 + 2 * 28.8 + 2))
        fprintf(stderr, "  total %g\n", total);
    CHECK(total > 26 + 2 * 28.8 - 3 * 4 && total < 26 + 2 * 28.8 + 2);
    /* the junction node is near (30, 30, 30) */
    for (int i = 0; i < g.n_nodes; i++)
        if (g.nodes[i].degree >= 3) {
            CHECK_NEAR(g.nodes[i].lps[0], 30, 3);
            CHECK_NEAR(g.nodes[i].lps[2], 30, 4);
        }
    /* every skeleton voxel is on an edge */
    int64_t on = 0, covered = 0;
    for (int64_t i = 0; i < r3d_volume_nvox(sk); i++)
        on += ((uint8_t *)sk->voxels)[i] != 0;
    uint8_t *seen = calloc((size_t)r3d_volume_nvox(sk), 1);
    for (int e = 0; e < g.n_edges; e++)
        for (int k = 0; k < g.edges[e].n_voxels; k++)
            if (!seen[g.edges[e].voxels[k]]++)
                covered++;
    CHECK(covered == on);
    free(seen);
    r3d_skel_graph_free(&g);
    r3d_volume_free(sk);
    r3d_volume_free(m);
}

static void test_skeleton_of_a_ring_is_a_loop(void)
{
    r3d_error err = R3D_ERROR_INIT;
    r3d_volume *m = vol(40, 40, 12, 1.0, R3D_U8);
    uint8_t *p = m->voxels;
    for (int z = 0; z < 12; z++)
        for (int y = 0; y < 40; y++)
            for (int x = 0; x < 40; x++) {
                double rr = sqrt((x - 20.0) * (x - 20) + (y - 20.0) * (y - 20));
                p[x + 40 * (y + 40 * z)] = (rr - 12) * (rr - 12) + (z - 6.0) * (z - 6) <= 6.25;
            }
    r3d_volume *sk = r3d_image_skeleton(m, &err);
    r3d_skel_graph g;
    CHECK(sk && r3d_skeleton_graph(sk, m, &g, &err) == R3D_OK);
    CHECK_INT(g.n_nodes, 1);
    CHECK_INT(g.n_edges, 1);
    if (g.n_edges == 1)
        CHECK_NEAR(g.edges[0].length_mm, 2 * M_PI * 12, 8);
    r3d_skel_graph_free(&g);
    r3d_volume_free(sk);
    r3d_volume_free(m);
}

static void test_skeleton_of_empty_and_single_voxel(void)
{
    r3d_error err = R3D_ERROR_INIT;
    r3d_volume *m = vol(5, 5, 5, 1.0, R3D_U8);
    r3d_volume *sk = r3d_image_skeleton(m, &err);
    r3d_skel_graph g;
    CHECK(sk && r3d_skeleton_graph(sk, NULL, &g, &err) == R3D_OK && g.n_nodes == 0);
    r3d_volume_free(sk);
    ((uint8_t *)m->voxels)[62] = 1;
    sk = r3d_image_skeleton(m, &err);
    CHECK(sk && ((uint8_t *)sk->voxels)[62] == 1);
    CHECK(r3d_skeleton_graph(sk, NULL, &g, &err) == R3D_OK && g.n_nodes == 1 && g.n_edges == 0);
    r3d_skel_graph_free(&g);
    r3d_volume_free(sk);
    r3d_volume_free(m);
}

/* A bright tube of radius 1.5 mm along x sampled at 0.5 and 1.0 mm:
 * vesselness at its centre is the same in mm, and low off the tube. */
static double tube_response(double s)
{
    int n = (int)(24 / s);
    r3d_volume *v = vol(n, n, n, s, R3D_F32);
    float *p = v->voxels;
    for (int z = 0; z < n; z++)
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++) {
                double dy = y * s - 12, dz = z * s - 12;
                p[x + n * (y + n * z)] = (float)(500 * exp(-(dy * dy + dz * dz) / (2 * 1.5 * 1.5)));
            }
    double sig[2] = {1.0, 2.0};
    r3d_error err = R3D_ERROR_INIT;
    r3d_volume *f = r3d_image_frangi(v, sig, 2, 1, &err);
    int c = (int)(12 / s), off = (int)(7 / s);
    double centre = ((float *)f->voxels)[c + n * (c + n * c)];
    double away = ((float *)f->voxels)[c + n * (off + n * off)];
    CHECK(away < 0.05);
    r3d_volume_free(f);
    r3d_volume_free(v);
    return centre;
}

static void test_frangi_is_the_same_in_mm_at_any_voxel_size(void)
{
    double a = tube_response(1.0), b = tube_response(0.5);
    CHECK(a > 0.5 && b > 0.5);
    CHECK_NEAR(a, b, 0.05);
}

int main(void)
{
    RUN(test_skeleton_graph_of_a_y_has_three_branches);
    RUN(test_skeleton_of_a_ring_is_a_loop);
    RUN(test_skeleton_of_empty_and_single_voxel);
    RUN(test_frangi_is_the_same_in_mm_at_any_voxel_size);
    return CHECK_DONE("test_image_skeleton");
}

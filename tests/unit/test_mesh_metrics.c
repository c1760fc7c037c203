/* test_mesh_metrics.c - volume, area, bounding box, Euler characteristic,
 * genus and surface distance on shapes whose numbers are known exactly
 * (unit cube, unit tetrahedron, offset triangles) or analytically
 * (concentric spheres extracted from a radial grey-level function).
 */
#include "check.h"
#include "phantom.h"

/* Add triangle (a, b, c) wound so that its normal points away from
 * centre: the shapes below are convex, so this is "outward". */
static void add_outward(r3d_mesh *m, uint32_t a, uint32_t b, uint32_t c, const double centre[3])
{
    const float *p = m->v + 3 * a, *q = m->v + 3 * b, *r = m->v + 3 * c;
    double u[3], w[3], n[3], d = 0;
    for (int k = 0; k < 3; k++) {
        u[k] = q[k] - p[k];
        w[k] = r[k] - p[k];
    }
    n[0] = u[1] * w[2] - u[2] * w[1];
    n[1] = u[2] * w[0] - u[0] * w[2];
    n[2] = u[0] * w[1] - u[1] * w[0];
    for (int k = 0; k < 3; k++)
        d += n[k] * ((p[k] + q[k] + r[k]) / 3 - centre[k]);
    if (d > 0)
        r3d_mesh_add_triangle(m, a, b, c);
    else
        r3d_mesh_add_triangle(m, a, c, b);
}

/* Unit cube [o, o+1]^3, outward, 12 triangles. */
static r3d_mesh *cube(double o)
{
    r3d_mesh *m = r3d_mesh_new(NULL);
    for (int c = 0; c < 8; c++)
        r3d_mesh_add_vertex(m, (float)(o + (c & 1)), (float)(o + (c >> 1 & 1)),
                            (float)(o + (c >> 2 & 1)));
    static const int quad[6][4] = {{0, 1, 3, 2}, {4, 5, 7, 6}, {0, 1, 5, 4},
                                   {2, 3, 7, 6}, {0, 2, 6, 4}, {1, 3, 7, 5}};
    double centre[3] = {o + 0.5, o + 0.5, o + 0.5};
    for (int f = 0; f < 6; f++) {
        add_outward(m, quad[f][0], quad[f][1], quad[f][2], centre);
        add_outward(m, quad[f][0], quad[f][2], quad[f][3], centre);
    }
    return m;
}

static void test_metrics_unit_cube_volume_1_area_6_euler_2(void)
{
    r3d_mesh *m = cube(0);
    r3d_mesh_metrics mm;
    r3d_mesh_metrics_run(m, &mm);
    CHECK_NEAR(mm.volume_mm3, 1.0, 1e-12);
    CHECK_NEAR(mm.area_mm2, 6.0, 1e-12);
    for (int k = 0; k < 3; k++) {
        CHECK_NEAR(mm.bbox_min[k], 0.0, 0);
        CHECK_NEAR(mm.bbox_max[k], 1.0, 0);
    }
    CHECK_INT(mm.euler, 2);
    CHECK_INT(mm.genus, 0);
    CHECK_INT(mesh_edge_defects(m), 0);
    r3d_mesh_free(m);
}

static void test_metrics_volume_exact_far_from_origin(void)
{
    /* 10 km away: products of raw coordinates would lose the 1 mm^3 */
    r3d_mesh *m = cube(1e4);
    r3d_mesh_metrics mm;
    r3d_mesh_metrics_run(m, &mm);
    CHECK_NEAR(mm.volume_mm3, 1.0, 1e-9);
    CHECK_NEAR(mm.area_mm2, 6.0, 1e-9);
    CHECK_NEAR(mm.bbox_min[0], 1e4, 0);
    r3d_mesh_free(m);
}

static void test_metrics_inward_cube_has_negative_volume(void)
{
    r3d_mesh *m = cube(0);
    for (int64_t t = 0; t < m->nt; t++) {
        uint32_t x = m->t[3 * t + 1];
        m->t[3 * t + 1] = m->t[3 * t + 2];
        m->t[3 * t + 2] = x;
    }
    r3d_mesh_metrics mm;
    r3d_mesh_metrics_run(m, &mm);
    CHECK_NEAR(mm.volume_mm3, -1.0, 1e-12);
    CHECK_NEAR(mm.area_mm2, 6.0, 1e-12);
    r3d_mesh_free(m);
}

static void test_metrics_tetrahedron_volume_one_sixth(void)
{
    r3d_mesh *m = r3d_mesh_new(NULL);
    r3d_mesh_add_vertex(m, 0, 0, 0);
    r3d_mesh_add_vertex(m, 1, 0, 0);
    r3d_mesh_add_vertex(m, 0, 1, 0);
    r3d_mesh_add_vertex(m, 0, 0, 1);
    double c[3] = {0.25, 0.25, 0.25};
    add_outward(m, 0, 1, 2, c);
    add_outward(m, 0, 1, 3, c);
    add_outward(m, 0, 2, 3, c);
    add_outward(m, 1, 2, 3, c);
    r3d_mesh_metrics mm;
    r3d_mesh_metrics_run(m, &mm);
    CHECK_NEAR(mm.volume_mm3, 1.0 / 6.0, 1e-12);
    CHECK_NEAR(mm.area_mm2, 1.5 + sqrt(3.0) / 2.0, 1e-7);
    CHECK_INT(mm.euler, 2);
    CHECK_INT(mm.genus, 0);
    r3d_mesh_free(m);
}

static void test_metrics_open_cube_euler_1_no_genus(void)
{
    r3d_mesh *m = cube(0);
    m->nt -= 2; /* drop the last face: V 8, E 17, F 10 */
    r3d_mesh_metrics mm;
    r3d_mesh_metrics_run(m, &mm);
    CHECK_INT(mm.euler, 1);
    CHECK_INT(mm.genus, -1);
    r3d_mesh_free(m);
}

static void test_metrics_two_cubes_euler_4_genus_0(void)
{
    r3d_mesh *a = cube(0), *b = cube(5);
    for (int64_t i = 0; i < b->nv; i++)
        r3d_mesh_add_vertex(a, b->v[3 * i], b->v[3 * i + 1], b->v[3 * i + 2]);
    for (int64_t t = 0; t < b->nt; t++)
        r3d_mesh_add_triangle(a, b->t[3 * t] + 8, b->t[3 * t + 1] + 8, b->t[3 * t + 2] + 8);
    r3d_mesh_metrics mm;
    r3d_mesh_metrics_run(a, &mm);
    CHECK_INT(mm.euler, 4);
    CHECK_INT(mm.genus, 0);
    CHECK_NEAR(mm.volume_mm3, 2.0, 1e-9);
    CHECK_NEAR(mm.bbox_max[2], 6.0, 0);
    r3d_mesh_free(a);
    r3d_mesh_free(b);
}

static void test_metrics_torus_genus_1(void)
{
    phantom p = ph_torus(10, 4);
    double ax[3][3];
    axes_diag(ax, 1, 1, 1);
    r3d_volume *v = phantom_volume(&p, ax, 15);
    r3d_mesh *m = r3d_mesh_from_label(v, 1, NULL, NULL);
    CHECK(m != NULL);
    r3d_mesh_metrics mm;
    r3d_mesh_metrics_run(m, &mm);
    CHECK_INT(mm.euler, 0);
    CHECK_INT(mm.genus, 1);
    r3d_mesh_free(m);
    r3d_volume_free(v);
}

static void test_metrics_empty_mesh_is_zero(void)
{
    r3d_mesh *m = r3d_mesh_new(NULL);
    r3d_mesh_metrics mm;
    r3d_mesh_metrics_run(m, &mm);
    CHECK_NEAR(mm.volume_mm3, 0, 0);
    CHECK_INT(mm.euler, 0);
    CHECK_INT(mm.genus, -1);
    r3d_mesh_free(m);
}

/* ---- distance ---------------------------------------------------------------------- */

static r3d_mesh *triangle(double dx, double dz)
{
    r3d_mesh *m = r3d_mesh_new(NULL);
    r3d_mesh_add_vertex(m, (float)dx, 0, (float)dz);
    r3d_mesh_add_vertex(m, (float)(dx + 1), 0, (float)dz);
    r3d_mesh_add_vertex(m, (float)dx, 1, (float)dz);
    r3d_mesh_add_triangle(m, 0, 1, 2);
    return m;
}

static void test_distance_parallel_triangles_0_5(void)
{
    r3d_mesh *a = triangle(0, 0), *b = triangle(0, 0.5);
    r3d_surface_distance d;
    CHECK_INT(r3d_mesh_distance(a, b, &d, NULL), R3D_OK);
    CHECK_NEAR(d.mean_mm, 0.5, 1e-7);
    CHECK_NEAR(d.p95_mm, 0.5, 1e-7);
    CHECK_NEAR(d.max_mm, 0.5, 1e-7);
    r3d_mesh_free(a);
    r3d_mesh_free(b);
}

static void test_distance_to_triangle_edges_and_corners_exact(void)
{
    /* B = A + 3 x. Nearest points fall on corners and edges, not faces:
     * A's vertices are 3, 2, 3 from B; B's are 2, 3 and sqrt(5) (to A's
     * corner (1,0,0), past the end of its slanted edge) from A. */
    r3d_mesh *a = triangle(0, 0), *b = triangle(3, 0);
    r3d_surface_distance d;
    CHECK_INT(r3d_mesh_distance(a, b, &d, NULL), R3D_OK);
    CHECK_NEAR(d.mean_mm, (13 + sqrt(5.0)) / 6, 1e-6);
    CHECK_NEAR(d.max_mm, 3.0, 1e-6);
    CHECK_NEAR(d.p95_mm, 3.0, 1e-6);
    r3d_mesh_free(a);
    r3d_mesh_free(b);
}

static r3d_mesh *grey_sphere(double r)
{
    /* f = -|x| on 0.5 mm voxels; inside (f >= -r) is the ball of radius r */
    int64_t dim[4] = {61, 61, 61, 1};
    r3d_volume *v = r3d_volume_new(dim, R3D_F32, NULL);
    float *f = v->voxels;
    for (int r_ = 0; r_ < 3; r_++) {
        v->ijk_to_lps[r_][r_] = 0.5;
        v->ijk_to_lps[r_][3] = -15;
    }
    r3d_volume_update_spacing(v);
    for (int64_t k = 0; k < 61; k++)
        for (int64_t j = 0; j < 61; j++)
            for (int64_t i = 0; i < 61; i++) {
                double x = 0.5 * i - 15, y = 0.5 * j - 15, z = 0.5 * k - 15;
                f[(k * 61 + j) * 61 + i] = (float)-sqrt(x * x + y * y + z * z);
            }
    r3d_extract_opts o = R3D_EXTRACT_OPTS_INIT;
    o.iso = -r;
    r3d_mesh *m = r3d_mesh_from_image(v, &o, NULL);
    r3d_volume_free(v);
    return m;
}

static void test_distance_concentric_spheres_is_radius_difference(void)
{
    r3d_mesh *a = grey_sphere(10), *b = grey_sphere(12);
    CHECK(a && b && a->nt > 0 && b->nt > 0);
    r3d_surface_distance d;
    CHECK_INT(r3d_mesh_distance(a, b, &d, NULL), R3D_OK);
    fprintf(stderr, "  spheres 10/12 mm: mean %.4f p95 %.4f max %.4f\n", d.mean_mm, d.p95_mm,
            d.max_mm);
    CHECK_NEAR(d.mean_mm, 2.0, 0.02);
    CHECK_NEAR(d.p95_mm, 2.0, 0.03);
    CHECK_NEAR(d.max_mm, 2.0, 0.05);
    /* and a surface is at distance 0 from itself */
    CHECK_INT(r3d_mesh_distance(a, a, &d, NULL), R3D_OK);
    CHECK_NEAR(d.max_mm, 0, 1e-6);
    r3d_mesh_free(a);
    r3d_mesh_free(b);
}

static void test_distance_refuses_empty_and_broken_meshes(void)
{
    r3d_mesh *a = triangle(0, 0), *e = r3d_mesh_new(NULL);
    r3d_surface_distance d;
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d_mesh_distance(a, e, &d, &err), R3D_EARG);
    CHECK_CONTAINS(err.msg, "mesh_distance");
    r3d_mesh_add_triangle(e, 0, 1, 7);
    r3d_mesh_add_vertex(e, 0, 0, 0);
    CHECK_INT(r3d_mesh_distance(a, e, &d, &err), R3D_EDATA);
    CHECK_CONTAINS(err.msg, "does not exist");
    a->v[4] = NAN;
    CHECK_INT(r3d_mesh_distance(a, a, &d, &err), R3D_EDATA);
    CHECK_CONTAINS(err.msg, "finite");
    r3d_mesh_free(a);
    r3d_mesh_free(e);
}

int main(void)
{
    RUN(test_metrics_unit_cube_volume_1_area_6_euler_2);
    RUN(test_metrics_volume_exact_far_from_origin);
    RUN(test_metrics_inward_cube_has_negative_volume);
    RUN(test_metrics_tetrahedron_volume_one_sixth);
    RUN(test_metrics_open_cube_euler_1_no_genus);
    RUN(test_metrics_two_cubes_euler_4_genus_0);
    RUN(test_metrics_torus_genus_1);
    RUN(test_metrics_empty_mesh_is_zero);
    RUN(test_distance_parallel_triangles_0_5);
    RUN(test_distance_to_triangle_edges_and_corners_exact);
    RUN(test_distance_concentric_spheres_is_radius_difference);
    RUN(test_distance_refuses_empty_and_broken_meshes);
    return CHECK_DONE("test_mesh_metrics");
}

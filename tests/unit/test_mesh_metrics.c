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

/* Independent point-triangle distance for the brute-force reference: the
 * plane projection when it falls inside (barycentric), else the nearest of
 * the three segments. */
static double seg_dist(const double p[3], const double a[3], const double b[3])
{
    double ab[3], ap[3], l = 0, t = 0, d = 0;
    for (int k = 0; k < 3; k++) {
        ab[k] = b[k] - a[k];
        ap[k] = p[k] - a[k];
        l += ab[k] * ab[k];
        t += ab[k] * ap[k];
    }
    t = l > 0 ? fmin(1, fmax(0, t / l)) : 0;
    for (int k = 0; k < 3; k++)
        d += (ap[k] - t * ab[k]) * (ap[k] - t * ab[k]);
    return sqrt(d);
}

static double brute_tri_dist(const double p[3], const double a[3], const double b[3],
                             const double c[3])
{
    double u[3], w[3], n[3], q[3], nn = 0, h = 0;
    for (int k = 0; k < 3; k++) {
        u[k] = b[k] - a[k];
        w[k] = c[k] - a[k];
    }
    n[0] = u[1] * w[2] - u[2] * w[1];
    n[1] = u[2] * w[0] - u[0] * w[2];
    n[2] = u[0] * w[1] - u[1] * w[0];
    for (int k = 0; k < 3; k++) {
        nn += n[k] * n[k];
        h += n[k] * (p[k] - a[k]);
    }
    if (nn > 0) {
        for (int k = 0; k < 3; k++)
            q[k] = p[k] - h / nn * n[k];
        /* barycentric signs: q inside when on the same side of all edges */
        const double *v[3] = {a, b, c};
        int inside = 1;
        for (int e = 0; e < 3; e++) {
            const double *s0 = v[e], *s1 = v[(e + 1) % 3];
            double x[3], y[3], cr[3];
            for (int k = 0; k < 3; k++) {
                x[k] = s1[k] - s0[k];
                y[k] = q[k] - s0[k];
            }
            cr[0] = x[1] * y[2] - x[2] * y[1];
            cr[1] = x[2] * y[0] - x[0] * y[2];
            cr[2] = x[0] * y[1] - x[1] * y[0];
            if (cr[0] * n[0] + cr[1] * n[1] + cr[2] * n[2] < 0)
                inside = 0;
        }
        if (inside)
            return fabs(h) / sqrt(nn);
    }
    return fmin(seg_dist(p, a, b), fmin(seg_dist(p, b, c), seg_dist(p, c, a)));
}

static double brute_one_way(const r3d_mesh *from, const r3d_mesh *to, double *d)
{
    double sum = 0;
    for (int64_t i = 0; i < from->nv; i++) {
        double p[3] = {from->v[3 * i], from->v[3 * i + 1], from->v[3 * i + 2]}, best = INFINITY;
        for (int64_t t = 0; t < to->nt; t++) {
            double a[3], b[3], c[3];
            for (int k = 0; k < 3; k++) {
                a[k] = to->v[3 * (int64_t)to->t[3 * t] + k];
                b[k] = to->v[3 * (int64_t)to->t[3 * t + 1] + k];
                c[k] = to->v[3 * (int64_t)to->t[3 * t + 2] + k];
            }
            best = fmin(best, brute_tri_dist(p, a, b, c));
        }
        d[i] = best;
        sum += best;
    }
    return sum;
}

static void test_distance_grid_search_equals_brute_force(void)
{
    /* a torus against an off-centre sphere: most nearest triangles are far
     * away and in other cells, so the ring search must not stop early */
    phantom pt = ph_torus(6, 2), ps = ph_sphere(4);
    double ax[3][3];
    axes_diag(ax, 0.9, 1.0, 1.1);
    r3d_volume *vt = phantom_volume(&pt, ax, 9), *vs = phantom_volume(&ps, ax, 5);
    r3d_mesh *a = r3d_mesh_from_label(vt, 1, NULL, NULL), *b = r3d_mesh_from_label(vs, 1, NULL, NULL);
    for (int64_t i = 0; i < b->nv; i++) {
        b->v[3 * i] += 3.3f;
        b->v[3 * i + 2] += 7.1f;
    }
    int64_t n = a->nv + b->nv;
    double *d = malloc((size_t)n * sizeof *d);
    double sum = brute_one_way(a, b, d) + brute_one_way(b, a, d + a->nv);
    qsort(d, (size_t)n, sizeof *d, ph_cmp_double);
    r3d_surface_distance got;
    CHECK_INT(r3d_mesh_distance(a, b, &got, NULL), R3D_OK);
    CHECK_NEAR(got.mean_mm, sum / (double)n, 1e-5);
    CHECK_NEAR(got.p95_mm, d[(int64_t)ceil(0.95 * (double)n) - 1], 1e-5);
    CHECK_NEAR(got.max_mm, d[n - 1], 1e-5);
    free(d);
    r3d_mesh_free(a);
    r3d_mesh_free(b);
    r3d_volume_free(vt);
    r3d_volume_free(vs);
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
    RUN(test_distance_grid_search_equals_brute_force);
    RUN(test_distance_refuses_empty_and_broken_meshes);
    return CHECK_DONE("test_mesh_metrics");
}

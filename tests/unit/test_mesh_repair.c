/* test_mesh_repair.c - clean-up (src/mesh/repair.c): each defect the check
 * reports, and each repair fixing the defects it claims to fix, on meshes
 * built here with known defects. */
#include "check.h"
#include "mesh_shapes.h"
#include "r3d/mesh.h"

static const double origin[3] = {0, 0, 0};

static void check_clean(const r3d_mesh *m)
{
    r3d_mesh_check c;
    r3d_mesh_check_run(m, &c);
    CHECK_INT(c.boundary_edges, 0);
    CHECK_INT(c.nonmanifold_edges, 0);
    CHECK_INT(c.nonmanifold_vertices, 0);
    CHECK_INT(c.degenerate_triangles, 0);
    CHECK_INT(c.inconsistent_edges, 0);
    CHECK(c.closed && c.manifold && c.oriented);
    CHECK_STR(c.report, "");
}

/* Remove the faces whose centroid satisfies z > zcut. */
static void cut_cap(r3d_mesh *m, double zcut)
{
    int64_t n = 0;
    for (int64_t i = 0; i < m->nt; i++) {
        double z = 0;
        for (int k = 0; k < 3; k++)
            z += m->v[3 * (size_t)m->t[3 * i + k] + 2] / 3.0;
        if (z <= zcut) {
            memmove(m->t + 3 * n, m->t + 3 * i, 3 * sizeof *m->t);
            n++;
        }
    }
    m->nt = n;
}

static void flip(r3d_mesh *m, int64_t i)
{
    uint32_t s = m->t[3 * i + 1];
    m->t[3 * i + 1] = m->t[3 * i + 2];
    m->t[3 * i + 2] = s;
}

/* ---- check --------------------------------------------------------------------- */

static void test_check_clean_sphere_torus_cube_report_nothing(void)
{
    r3d_mesh *s = shapes_icosphere(3, 10, origin), *t = shapes_torus(20, 5, 40, 20),
             *c = shapes_cube(5);
    check_clean(s);
    check_clean(t);
    check_clean(c);
    r3d_mesh_check k;
    r3d_mesh_check_run(t, &k);
    CHECK_INT(k.components, 1);
    r3d_mesh_free(s), r3d_mesh_free(t), r3d_mesh_free(c);
}

static void test_check_cube_with_square_hole_reports_one_loop_of_4_edges(void)
{
    r3d_mesh *m = shapes_cube(10);
    memmove(m->t, m->t + 6, 30 * sizeof *m->t); /* drop the two faces at z = 0 */
    m->nt = 10;
    r3d_mesh_check c;
    r3d_mesh_check_run(m, &c);
    CHECK_INT(c.boundary_edges, 4);
    CHECK_INT(c.nonmanifold_edges, 0);
    CHECK(!c.closed && c.manifold && c.oriented);
    CHECK_STR(c.report, "1 hole (boundary loop)");
    r3d_mesh_free(m);
}

static void test_check_sphere_with_two_caps_cut_reports_two_holes(void)
{
    r3d_mesh *m = shapes_icosphere(3, 10, origin);
    cut_cap(m, 8.0);
    /* Second hole: remove faces around the bottom pole too. */
    int64_t n = 0;
    for (int64_t i = 0; i < m->nt; i++) {
        double z = 0;
        for (int k = 0; k < 3; k++)
            z += m->v[3 * (size_t)m->t[3 * i + k] + 2] / 3.0;
        if (z >= -8.0) {
            memmove(m->t + 3 * n, m->t + 3 * i, 3 * sizeof *m->t);
            n++;
        }
    }
    m->nt = n;
    r3d_mesh_check c;
    r3d_mesh_check_run(m, &c);
    CHECK(c.boundary_edges > 6);
    CHECK_INT(c.boundary_edges, shapes_count(m).boundary);
    CHECK_STR(c.report, "2 holes (boundary loops)");
    r3d_mesh_free(m);
}

static void test_check_fin_on_sphere_reports_one_nonmanifold_edge(void)
{
    r3d_mesh *m = shapes_icosphere(2, 10, origin);
    uint32_t a = m->t[0], b = m->t[1];
    uint32_t x = (uint32_t)r3d_mesh_add_vertex(m, 30, 30, 30);
    r3d_mesh_add_triangle(m, a, b, x);
    r3d_mesh_check c;
    r3d_mesh_check_run(m, &c);
    CHECK_INT(c.nonmanifold_edges, 1);
    CHECK_INT(c.boundary_edges, 2);
    CHECK(!c.manifold && !c.closed);
    CHECK_CONTAINS(c.report, "1 non-manifold edge");
    CHECK_CONTAINS(c.report, "2 boundary edges");
    r3d_mesh_free(m);
}

/* Two cubes touching at one corner: every edge is fine, the shared vertex
 * has two separate fans. */
static void test_check_cubes_sharing_a_corner_report_one_nonmanifold_vertex(void)
{
    r3d_mesh *m = shapes_cube(10), *b = shapes_cube(10);
    for (int64_t i = 0; i < b->nv * 3; i++)
        b->v[i] += 10;
    shapes_append(m, b);
    /* b's corner 0 sits at (10,10,10) = a's corner 7: use a's index. */
    for (int64_t i = 12 * 3; i < m->nt * 3; i++)
        if (m->t[i] == 8)
            m->t[i] = 7;
    r3d_mesh_check c;
    r3d_mesh_check_run(m, &c);
    CHECK_INT(c.nonmanifold_vertices, 1);
    CHECK_INT(c.nonmanifold_edges, 0);
    CHECK_INT(c.boundary_edges, 0);
    CHECK_INT(c.components, 1);
    CHECK(c.closed && !c.manifold && c.oriented);
    CHECK_STR(c.report, "1 non-manifold vertex");
    r3d_mesh_free(m), r3d_mesh_free(b);
}

static void test_check_one_flipped_face_reports_three_inconsistent_edges(void)
{
    r3d_mesh *m = shapes_icosphere(2, 10, origin);
    flip(m, 17);
    r3d_mesh_check c;
    r3d_mesh_check_run(m, &c);
    CHECK_INT(c.inconsistent_edges, 3);
    CHECK(c.closed && c.manifold && !c.oriented);
    CHECK_STR(c.report, "3 edges with inconsistent winding");
    r3d_mesh_free(m);
}

static void test_check_inside_out_sphere_is_not_oriented(void)
{
    r3d_mesh *m = shapes_icosphere(2, 10, origin);
    for (int64_t i = 0; i < m->nt; i++)
        flip(m, i);
    r3d_mesh_check c;
    r3d_mesh_check_run(m, &c);
    CHECK_INT(c.inconsistent_edges, 0);
    CHECK(c.closed && c.manifold && !c.oriented);
    CHECK_STR(c.report, "1 component inside out (negative volume)");
    r3d_mesh_free(m);
}

static void test_check_counts_degenerate_faces_and_lists_several_defects(void)
{
    r3d_mesh *m = shapes_cube(10);
    r3d_mesh_add_triangle(m, 0, 0, 3);   /* repeated index */
    r3d_mesh_add_triangle(m, 0, 1, 99);  /* index out of range */
    uint32_t p = (uint32_t)r3d_mesh_add_vertex(m, 20, 0, 0);
    uint32_t q = (uint32_t)r3d_mesh_add_vertex(m, 30, 0, 0);
    uint32_t r = (uint32_t)r3d_mesh_add_vertex(m, 25, 0, 0);
    r3d_mesh_add_triangle(m, p, q, r);   /* collinear: zero area */
    flip(m, 5);
    r3d_mesh_check c;
    r3d_mesh_check_run(m, &c);
    CHECK_INT(c.degenerate_triangles, 3);
    CHECK_INT(c.boundary_edges, 3); /* the collinear face's edges */
    CHECK_INT(c.inconsistent_edges, 3);
    CHECK_INT(c.components, 2);
    CHECK_STR(c.report, "1 hole (boundary loop), 3 degenerate triangles, "
                        "3 edges with inconsistent winding");
    r3d_mesh_free(m);
}

static void test_check_empty_mesh_says_no_triangles(void)
{
    r3d_mesh *m = r3d_mesh_new(NULL);
    r3d_mesh_check c;
    r3d_mesh_check_run(m, &c);
    CHECK(!c.closed);
    CHECK_STR(c.report, "no triangles");
    r3d_mesh_free(m);
}

/* ---- remove_degenerate ------------------------------------------------------------ */

/* A triangle soup of a sphere (3 vertices per face, as STL gives) plus
 * duplicate faces in both windings, zero-area faces, repeated indices and
 * unused vertices comes back as the indexed sphere. */
static void test_remove_degenerate_rebuilds_indexed_sphere_from_damaged_soup(void)
{
    r3d_mesh *ref = shapes_icosphere(3, 10, origin);
    r3d_mesh *m = r3d_mesh_new(NULL);
    for (int64_t i = 0; i < ref->nt; i++) {
        uint32_t b = (uint32_t)m->nv;
        for (int k = 0; k < 3; k++) {
            const float *p = ref->v + 3 * (size_t)ref->t[3 * i + k];
            r3d_mesh_add_vertex(m, p[0], p[1], p[2]);
        }
        r3d_mesh_add_triangle(m, b, b + 1, b + 2);
        if (i % 50 == 0)
            r3d_mesh_add_triangle(m, b + 1, b + 2, b);     /* same face rotated */
        if (i % 70 == 0)
            r3d_mesh_add_triangle(m, b, b + 2, b + 1);     /* opposite winding */
        if (i % 90 == 0)
            r3d_mesh_add_triangle(m, b, b, b + 1);         /* repeated index */
    }
    uint32_t p = (uint32_t)r3d_mesh_add_vertex(m, 50, 0, 0);
    uint32_t q = (uint32_t)r3d_mesh_add_vertex(m, 60, 0, 0);
    uint32_t r = (uint32_t)r3d_mesh_add_vertex(m, 55, 0, 0);
    r3d_mesh_add_triangle(m, p, q, r);                     /* collinear */
    r3d_mesh_add_triangle(m, 0, 1, (uint32_t)m->nv + 7);   /* out of range */
    r3d_mesh_add_vertex(m, -70, 0, 0);                     /* unused */
    CHECK_INT(r3d_mesh_remove_degenerate(m, NULL), R3D_OK);
    CHECK_INT(m->nv, ref->nv);
    CHECK_INT(m->nt, ref->nt);
    check_clean(m);
    shapes_census a = shapes_count(m), b = shapes_count(ref);
    CHECK_INT(a.euler, 2);
    CHECK_NEAR(a.volume, b.volume, 1e-9 * b.volume);
    r3d_mesh_free(m), r3d_mesh_free(ref);
}

static void test_remove_degenerate_merges_minus_zero_with_zero_only_exact(void)
{
    r3d_mesh *m = r3d_mesh_new(NULL);
    r3d_mesh_add_vertex(m, 0, 0, 0);
    r3d_mesh_add_vertex(m, 1, 0, 0);
    r3d_mesh_add_vertex(m, 0, 1, 0);
    r3d_mesh_add_vertex(m, -0.0f, 0, -0.0f);     /* the same point as vertex 0 */
    r3d_mesh_add_vertex(m, 0, -1, 0);
    r3d_mesh_add_vertex(m, 1e-7f, 0, 0);         /* near but not equal: kept */
    r3d_mesh_add_triangle(m, 0, 1, 2);
    r3d_mesh_add_triangle(m, 3, 4, 1);
    r3d_mesh_add_triangle(m, 5, 2, 0);
    CHECK_INT(r3d_mesh_remove_degenerate(m, NULL), R3D_OK);
    CHECK_INT(m->nv, 5);
    CHECK_INT(m->nt, 3);
    CHECK_INT(m->t[3], 0);
    r3d_mesh_free(m);
}

/* ---- components ------------------------------------------------------------------------ */

static void test_keep_largest_component_keeps_biggest_volume_not_most_faces(void)
{
    const double c1[3] = {100, 0, 0}, c2[3] = {0, 100, 0};
    r3d_mesh *m = shapes_icosphere(4, 5, origin);    /* most faces, small */
    r3d_mesh *big = shapes_icosphere(2, 20, c1);     /* few faces, big */
    r3d_mesh *sheet = shapes_patch(30, 200, 0);      /* largest area, no volume */
    for (int64_t i = 0; i < sheet->nv; i++)
        sheet->v[3 * i + 2] += (float)c2[1];
    shapes_append(m, big);
    shapes_append(m, sheet);
    CHECK_INT(r3d_mesh_keep_largest_component(m, NULL), R3D_OK);
    CHECK_INT(m->nt, big->nt);
    CHECK_INT(m->nv, big->nv);
    CHECK_NEAR(shapes_count(m).volume, shapes_count(big).volume, 1e-6 * shapes_count(big).volume);
    check_clean(m);
    r3d_mesh_free(m), r3d_mesh_free(big), r3d_mesh_free(sheet);
}

static void test_drop_small_components_below_volume(void)
{
    const double c1[3] = {100, 0, 0}, c2[3] = {0, 100, 0};
    r3d_mesh *m = shapes_icosphere(3, 20, origin); /* ~33 500 mm3 */
    r3d_mesh *a = shapes_icosphere(3, 10, c1);     /* ~4 190 mm3 */
    r3d_mesh *b = shapes_icosphere(3, 2, c2);      /* ~33 mm3 */
    shapes_append(m, b);
    shapes_append(m, a);
    r3d_error e = R3D_ERROR_INIT;
    CHECK_INT(r3d_mesh_drop_small_components(m, 100.0, &e), R3D_OK);
    r3d_mesh_check c;
    r3d_mesh_check_run(m, &c);
    CHECK_INT(c.components, 2);
    CHECK_INT(m->nt, 2 * a->nt);
    double va = shapes_count(a).volume; /* r = 20 encloses 8x r = 10 */
    CHECK_NEAR(shapes_count(m).volume, 9 * va, 0.001 * 9 * va);
    CHECK_INT(r3d_mesh_drop_small_components(m, -1.0, &e), R3D_EARG);
    CHECK_CONTAINS(e.msg, "negative");
    CHECK_INT(r3d_mesh_drop_small_components(m, 1e6, &e), R3D_OK);
    CHECK_INT(m->nt, 0);
    CHECK_INT(m->nv, 0);
    r3d_mesh_free(m), r3d_mesh_free(a), r3d_mesh_free(b);
}

/* ---- fill_holes ------------------------------------------------------------------------- */

static void test_fill_holes_closes_cube_square_hole_with_exact_volume(void)
{
    r3d_mesh *m = shapes_cube(10);
    memmove(m->t, m->t + 6, 30 * sizeof *m->t);
    m->nt = 10;
    CHECK_INT(r3d_mesh_fill_holes(m, NULL), R3D_OK);
    CHECK_INT(m->nt, 12);
    CHECK_INT(m->nv, 8);
    check_clean(m);
    CHECK_NEAR(shapes_count(m).volume, 1000.0, 1e-9);
    r3d_mesh_free(m);
}

static void test_fill_holes_closes_two_sphere_caps_without_new_vertices(void)
{
    r3d_mesh *m = shapes_icosphere(4, 10, origin);
    int64_t nv = m->nv;
    cut_cap(m, 9.0);
    int64_t n = 0; /* and the faces below z = -7 */
    for (int64_t i = 0; i < m->nt; i++) {
        double z = 0;
        for (int k = 0; k < 3; k++)
            z += m->v[3 * (size_t)m->t[3 * i + k] + 2] / 3.0;
        if (z >= -7.0) {
            memmove(m->t + 3 * n, m->t + 3 * i, 3 * sizeof *m->t);
            n++;
        }
    }
    m->nt = n;
    double v_cut = shapes_count(m).volume;
    CHECK_INT(shapes_count(m).euler, 0); /* sphere minus two discs */
    CHECK_INT(r3d_mesh_fill_holes(m, NULL), R3D_OK);
    CHECK_INT(m->nv, nv); /* caps are near-planar: ear clipping, no centroid */
    check_clean(m);
    shapes_census c = shapes_count(m);
    CHECK_INT(c.euler, 2);
    /* The flat lids enclose less than the sphere: the caps above z=9 and
     * below z=-7 are missing (cap volume pi h^2 (3r - h) / 3). */
    double full = 4.0 / 3 * M_PI * 1000, cap9 = M_PI * 1 * (30 - 1) / 3,
           cap7 = M_PI * 9 * (30 - 3) / 3;
    fprintf(stderr, "  volume %.1f (open %.1f), spherical-cap estimate %.1f\n", c.volume, v_cut,
            full - cap9 - cap7);
    CHECK_NEAR(c.volume, full - cap9 - cap7, 0.03 * full);
    r3d_mesh_free(m);
}

/* A torus with one ring of faces removed is a bent tube with two circular
 * holes; filled, it is a closed sphere-like surface (Euler 2). */
static void test_fill_holes_cut_torus_becomes_closed_bent_cylinder(void)
{
    r3d_mesh *m = shapes_torus(20, 6, 60, 30);
    int64_t n = 0, nv = m->nv;
    for (int64_t i = 0; i < m->nt; i++)
        if (i / 2 / 30 != 0) { /* faces of the first ring are 0 .. 59 */
            memmove(m->t + 3 * n, m->t + 3 * i, 3 * sizeof *m->t);
            n++;
        }
    m->nt = n;
    r3d_mesh_check c;
    r3d_mesh_check_run(m, &c);
    CHECK_STR(c.report, "2 holes (boundary loops)");
    CHECK_INT(r3d_mesh_fill_holes(m, NULL), R3D_OK);
    check_clean(m);
    CHECK_INT(shapes_count(m).euler, 2);
    CHECK_INT(m->nv, nv); /* planar loops: ear clipping, no new vertex */
    r3d_mesh_free(m);
}

/* Loops longer than the ear-clipping limit (5000 vertices) get a fan to a
 * new centroid vertex: an open tube of 5001 segments gets two fans. */
static void test_fill_holes_loop_over_5000_vertices_uses_centroid_fan(void)
{
    const int k = 5001;
    const double r = 30, h = 5;
    r3d_mesh *m = r3d_mesh_new(NULL);
    for (int z = 0; z < 2; z++)
        for (int i = 0; i < k; i++)
            r3d_mesh_add_vertex(m, (float)(r * cos(2 * M_PI * i / k)),
                                (float)(r * sin(2 * M_PI * i / k)), (float)(h * z));
    for (int i = 0; i < k; i++) {
        uint32_t a = (uint32_t)i, b = (uint32_t)((i + 1) % k);
        r3d_mesh_add_triangle(m, a, b, b + (uint32_t)k);
        r3d_mesh_add_triangle(m, a, b + (uint32_t)k, a + (uint32_t)k);
    }
    CHECK(shapes_count(m).boundary == 2 * k);
    CHECK_INT(r3d_mesh_fill_holes(m, NULL), R3D_OK);
    CHECK_INT(m->nv, 2 * k + 2);
    CHECK_INT(m->nt, 4 * k);
    check_clean(m);
    CHECK_NEAR(shapes_count(m).volume, M_PI * r * r * h, 1e-3 * M_PI * r * r * h);
    r3d_mesh_free(m);
}

/* ---- orient_outward --------------------------------------------------------------------- */

static void test_orient_outward_fixes_scattered_flips_and_inside_out_component(void)
{
    const double c1[3] = {60, 0, 0};
    r3d_mesh *ref = shapes_icosphere(3, 10, origin), *b = shapes_icosphere(2, 7, c1);
    shapes_append(ref, b);
    r3d_mesh *m = r3d_mesh_copy(ref, NULL);
    int64_t n1 = ref->nt - b->nt;
    for (int64_t i = 0; i < n1; i++)
        if ((i * 7919) % 10 < 3) /* ~30 % of the first sphere's faces */
            flip(m, i);
    for (int64_t i = n1; i < m->nt; i++) /* the second sphere inside out */
        flip(m, i);
    flip(m, 0); /* the seed face itself wrong */
    CHECK_INT(r3d_mesh_orient_outward(m, NULL), R3D_OK);
    check_clean(m);
    /* Every face is the original one up to rotation of its indices. */
    int64_t differ = 0;
    for (int64_t i = 0; i < m->nt; i++) {
        const uint32_t *x = m->t + 3 * i, *y = ref->t + 3 * i;
        int same = 0;
        for (int r = 0; r < 3; r++)
            same |= x[0] == y[r] && x[1] == y[(r + 1) % 3] && x[2] == y[(r + 2) % 3];
        differ += !same;
    }
    CHECK_INT(differ, 0);
    r3d_mesh_free(m), r3d_mesh_free(ref), r3d_mesh_free(b);
}

/* Open surfaces: a hemisphere bowl is oriented consistently and outward
 * (its normals point away from the centre). */
static void test_orient_outward_open_hemisphere_faces_outward(void)
{
    r3d_mesh *m = shapes_icosphere(3, 10, origin);
    cut_cap(m, 0.0);
    for (int64_t i = 0; i < m->nt; i++)
        flip(m, i);
    for (int64_t i = 0; i < m->nt; i += 3)
        flip(m, i);
    CHECK_INT(r3d_mesh_orient_outward(m, NULL), R3D_OK);
    int64_t inward = 0;
    for (int64_t i = 0; i < m->nt; i++) {
        const float *a = m->v + 3 * (size_t)m->t[3 * i], *b = m->v + 3 * (size_t)m->t[3 * i + 1],
                    *c = m->v + 3 * (size_t)m->t[3 * i + 2];
        double u[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]};
        double v[3] = {c[0] - a[0], c[1] - a[1], c[2] - a[2]};
        double n[3] = {u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2],
                       u[0] * v[1] - u[1] * v[0]};
        inward += n[0] * a[0] + n[1] * a[1] + n[2] * a[2] < 0;
    }
    CHECK_INT(inward, 0);
    CHECK_INT(shapes_count(m).inconsistent, 0);
    r3d_mesh_free(m);
}

/* The repairs in the order a pipeline uses them turn a damaged soup into
 * one closed, manifold, outward surface. */
static void test_repair_pipeline_makes_damaged_sphere_printable(void)
{
    const double c1[3] = {80, 0, 0};
    r3d_mesh *m = shapes_icosphere(4, 15, origin), *crumb = shapes_icosphere(1, 0.5, c1);
    cut_cap(m, 14.0);
    for (int64_t i = 0; i < m->nt; i += 5)
        flip(m, i);
    shapes_append(m, crumb);
    r3d_mesh_add_triangle(m, 3, 3, 4);
    r3d_mesh_add_triangle(m, m->t[6], m->t[7], m->t[8]);
    r3d_mesh_check c;
    r3d_mesh_check_run(m, &c);
    CHECK(!c.closed && !c.oriented);
    CHECK_INT(c.components, 2);
    CHECK_INT(r3d_mesh_remove_degenerate(m, NULL), R3D_OK);
    CHECK_INT(r3d_mesh_keep_largest_component(m, NULL), R3D_OK);
    CHECK_INT(r3d_mesh_orient_outward(m, NULL), R3D_OK); /* loops follow the winding */
    CHECK_INT(r3d_mesh_fill_holes(m, NULL), R3D_OK);
    check_clean(m);
    r3d_mesh_check_run(m, &c);
    CHECK_INT(c.components, 1);
    CHECK_INT(shapes_count(m).euler, 2);
    r3d_mesh_free(m), r3d_mesh_free(crumb);
}

/* Random soups and randomly damaged spheres and tori (flipped, missing,
 * extra and rewired faces) through every operation: decimation and the
 * clean-up pipeline leave every index in range, and remove_degenerate
 * leaves no degenerate face and no unused vertex. (Orientation and hole
 * filling skip invalid faces and leave them in place; they run on the raw
 * damage here for memory safety only.)
 * Run under ASan/UBSan this is also the memory-safety test. */
static uint64_t rnd_state = 88172645463325252ull;
static uint32_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return (uint32_t)rnd_state;
}

static int64_t bad_indices(const r3d_mesh *m)
{
    int64_t n = 0;
    for (int64_t i = 0; i < 3 * m->nt; i++)
        n += m->t[i] >= m->nv;
    return n;
}

static void test_random_damage_keeps_indices_valid_and_degenerates_gone(void)
{
    int64_t bad = 0, left_degenerate = 0, left_unused = 0;
    for (int it = 0; it < 600; it++) {
        r3d_mesh *m;
        if (it % 3 == 0) {
            m = r3d_mesh_new(NULL);
            int nv = 3 + (int)(rnd() % 30), nt = 1 + (int)(rnd() % 60);
            for (int i = 0; i < nv; i++)
                r3d_mesh_add_vertex(m, (float)(rnd() % 5), (float)(rnd() % 5), (float)(rnd() % 5));
            for (int i = 0; i < nt; i++) /* index nv is out of range on purpose */
                r3d_mesh_add_triangle(m, rnd() % (uint32_t)(nv + 1), rnd() % (uint32_t)nv,
                                      rnd() % (uint32_t)nv);
        } else {
            m = it % 3 == 1 ? shapes_icosphere(2, 10, origin) : shapes_torus(10, 3, 12, 8);
            int k = (int)(rnd() % 40);
            for (int i = 0; i < k && m->nt > 1; i++) {
                int64_t a = rnd() % (uint32_t)m->nt;
                switch (rnd() % 4) {
                case 0: flip(m, a); break;
                case 1:
                    memcpy(m->t + 3 * a, m->t + 3 * (m->nt - 1), 3 * sizeof *m->t);
                    m->nt--;
                    break;
                case 2:
                    r3d_mesh_add_triangle(m, m->t[3 * a], m->t[3 * a + 1], rnd() % (uint32_t)m->nv);
                    break;
                default: m->t[3 * a + rnd() % 3] = rnd() % (uint32_t)m->nv;
                }
            }
        }
        r3d_mesh_check c;
        r3d_mesh_check_run(m, &c);
        r3d_mesh *a = r3d_mesh_copy(m, NULL), *d = r3d_mesh_copy(m, NULL);
        r3d_mesh_orient_outward(a, NULL);
        r3d_mesh_fill_holes(a, NULL);
        r3d_mesh_check_run(a, &c);
        r3d_decimate_opts o = R3D_DECIMATE_OPTS_INIT;
        o.target_fraction = 0.3;
        o.preserve_boundary = (int)(rnd() % 2);
        r3d_mesh_decimate(d, &o, NULL);
        r3d_mesh_check_run(d, &c);
        r3d_mesh_remove_degenerate(m, NULL);
        r3d_mesh_check_run(m, &c);
        left_degenerate += c.degenerate_triangles;
        left_unused += shapes_count(m).unused_vertices;
        r3d_mesh_keep_largest_component(m, NULL);
        r3d_mesh_orient_outward(m, NULL);
        r3d_mesh_fill_holes(m, NULL);
        r3d_mesh_decimate(m, &o, NULL);
        bad += bad_indices(m) + bad_indices(d);
        r3d_mesh_free(m), r3d_mesh_free(a), r3d_mesh_free(d);
    }
    CHECK_INT(bad, 0);
    CHECK_INT(left_degenerate, 0);
    CHECK_INT(left_unused, 0);
}

int main(void)
{
    RUN(test_check_clean_sphere_torus_cube_report_nothing);
    RUN(test_check_cube_with_square_hole_reports_one_loop_of_4_edges);
    RUN(test_check_sphere_with_two_caps_cut_reports_two_holes);
    RUN(test_check_fin_on_sphere_reports_one_nonmanifold_edge);
    RUN(test_check_cubes_sharing_a_corner_report_one_nonmanifold_vertex);
    RUN(test_check_one_flipped_face_reports_three_inconsistent_edges);
    RUN(test_check_inside_out_sphere_is_not_oriented);
    RUN(test_check_counts_degenerate_faces_and_lists_several_defects);
    RUN(test_check_empty_mesh_says_no_triangles);
    RUN(test_remove_degenerate_rebuilds_indexed_sphere_from_damaged_soup);
    RUN(test_remove_degenerate_merges_minus_zero_with_zero_only_exact);
    RUN(test_keep_largest_component_keeps_biggest_volume_not_most_faces);
    RUN(test_drop_small_components_below_volume);
    RUN(test_fill_holes_closes_cube_square_hole_with_exact_volume);
    RUN(test_fill_holes_closes_two_sphere_caps_without_new_vertices);
    RUN(test_fill_holes_cut_torus_becomes_closed_bent_cylinder);
    RUN(test_fill_holes_loop_over_5000_vertices_uses_centroid_fan);
    RUN(test_orient_outward_fixes_scattered_flips_and_inside_out_component);
    RUN(test_orient_outward_open_hemisphere_faces_outward);
    RUN(test_repair_pipeline_makes_damaged_sphere_printable);
    RUN(test_random_damage_keeps_indices_valid_and_degenerates_gone);
    return CHECK_DONE("test_mesh_repair");
}

/* test_analysis.c - airway trees and nodule measurements on phantoms with
 * known answers: a binary tube tree of known generations and branch
 * counts, lobar naming from directions, a sphere of known size at a known
 * distance from a tube. */
#include "check.h"
#include "r3d/analysis.h"
#include "seg_phantoms.h"

#include <stdlib.h>

static r3d_volume *tree_phantom(int gmax, int *nbranches)
{
    r3d_volume *m = ph_volume(150, 150, 200, 1.0, R3D_U8);
    double a[3] = {75, 75, 199}, d[3] = {0, 0, -1};
    /* first split in the x-z plane (left/right), then alternating */
    *nbranches = ph_tree(m, a, d, 40, 6, 0, gmax, 1);
    return m;
}

static void test_tree_generations(void)
{
    int nb = 0;
    r3d_volume *m = tree_phantom(4, &nb);
    CHECK_INT(nb, 31);
    int ns = 0;
    int64_t *seeds = ph_top_seeds(m, &ns);
    CHECK(ns > 50);
    r3d_airway_tree t;
    r3d_volume *bo = NULL;
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d_airway_tree_build(m, seeds, ns, NULL, &t, &bo, &err), R3D_OK);
    CHECK_INT(t.n, 31);
    CHECK_INT(t.max_generation, 4);
    int expect[5] = {1, 2, 4, 8, 16};
    for (int g = 0; g <= 4; g++)
        CHECK_INT(t.per_generation[g], expect[g]);
    /* Every mask voxel is assigned to a branch; parents come first. */
    int64_t n = r3d_volume_nvox(m), unassigned = 0;
    const uint8_t *mv = m->voxels;
    const int32_t *b = bo->voxels;
    for (int64_t p = 0; p < n; p++)
        unassigned += mv[p] && (b[p] <= 0 || b[p] > t.n);
    CHECK_INT(unassigned, 0);
    for (int i = 0; i < t.n; i++) {
        CHECK(t.b[i].parent < i);
        if (t.b[i].parent >= 0)
            CHECK_INT(t.b[i].generation, t.b[t.b[i].parent].generation + 1);
    }
    /* The trachea: drawn 40 mm long, radius 6 mm; its length runs to where
     * the cross-section splits, a few mm past the axes' branch point. */
    CHECK_STR(t.b[0].name, "trachea");
    CHECK(t.b[0].length_mm >= 39 && t.b[0].length_mm <= 52);
    CHECK_NEAR(t.b[0].radius_mm, 6, 1.0);
    /* Main bronchi: the one ending at larger x (patient left) is LMB. */
    int lmb = -1, rmb = -1;
    for (int i = 0; i < t.n; i++) {
        if (!strcmp(t.b[i].name, "LMB"))
            lmb = i;
        if (!strcmp(t.b[i].name, "RMB"))
            rmb = i;
    }
    CHECK(lmb > 0 && rmb > 0);
    if (lmb > 0 && rmb > 0) {
        CHECK(t.b[lmb].end[0] > 75 + 5);
        CHECK(t.b[rmb].end[0] < 75 - 5);
        CHECK_INT(t.b[lmb].generation, 1);
    }
    r3d_airway_tree_free(&t);
    r3d_volume_free(bo);
    free(seeds);
    r3d_volume_free(m);
}

/* Right main bronchus with an upward child (RUL) and a downward one (BI),
 * BI with an anterior (RML) and a posterior (RLL) child; left main with an
 * up (LUL) and a down (LLL) child. LPS: -x right, -y anterior, +z up. */
static void test_tree_names(void)
{
    r3d_volume *m = ph_volume(200, 160, 200, 1.0, R3D_U8);
    double tr0[3] = {100, 80, 199}, car[3] = {100, 80, 140};
    double rmb[3] = {70, 80, 120}, lmb[3] = {135, 80, 115};
    double rul[3] = {40, 80, 140}, bi[3] = {65, 80, 90};
    double rml[3] = {55, 50, 75}, rll[3] = {65, 110, 60};
    double lul[3] = {165, 75, 135}, lll[3] = {150, 90, 80};
    ph_capsule(m, tr0, car, 7, 1);
    ph_capsule(m, car, rmb, 5, 1);
    ph_capsule(m, car, lmb, 4.5, 1);
    ph_capsule(m, rmb, rul, 3.5, 1);
    ph_capsule(m, rmb, bi, 4, 1);
    ph_capsule(m, bi, rml, 3, 1);
    ph_capsule(m, bi, rll, 3.5, 1);
    ph_capsule(m, lmb, lul, 3.5, 1);
    ph_capsule(m, lmb, lll, 3.5, 1);
    int ns = 0;
    int64_t *seeds = ph_top_seeds(m, &ns);
    r3d_airway_tree t;
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d_airway_tree_build(m, seeds, ns, NULL, &t, NULL, &err), R3D_OK);
    int expect[4] = {1, 2, 4, 2};
    for (int g = 0; g <= 3; g++)
        CHECK_INT(t.per_generation[g], expect[g]);
    const char *names[] = {"trachea", "RMB", "LMB", "RUL", "BI", "RML", "RLL", "LUL", "LLL"};
    double ends[][3] = {{100, 80, 140}, {70, 80, 120}, {135, 80, 115}, {40, 80, 140},
                        {65, 80, 90},   {55, 50, 75},  {65, 110, 60}, {165, 75, 135},
                        {150, 90, 80}};
    for (int q = 0; q < 9; q++) {
        int found = -1;
        for (int i = 0; i < t.n; i++)
            if (!strcmp(t.b[i].name, names[q]))
                found = i;
        CHECK(found >= 0);
        if (found < 0) {
            fprintf(stderr, "  missing %s\n", names[q]);
            continue;
        }
        /* the named branch ends near the drawn end (within the band and radius) */
        double d = 0;
        for (int r = 0; r < 3; r++)
            d += (t.b[found].end[r] - ends[q][r]) * (t.b[found].end[r] - ends[q][r]);
        CHECK(sqrt(d) < 12);
    }
    r3d_airway_tree_free(&t);
    free(seeds);
    r3d_volume_free(m);
}

static void test_tree_edge_cases(void)
{
    r3d_airway_tree t;
    r3d_error err = R3D_ERROR_INIT;
    r3d_volume *m = ph_volume(20, 20, 20, 1.0, R3D_U8);
    int64_t seed = 0;
    /* empty mask: an empty tree, not an error */
    CHECK_INT(r3d_airway_tree_build(m, &seed, 1, NULL, &t, NULL, &err), R3D_OK);
    CHECK_INT(t.n, 0);
    CHECK_INT(t.max_generation, -1);
    r3d_airway_tree_free(&t);
    /* a seed outside the mask reaches nothing */
    double a[3] = {10, 10, 2}, b[3] = {10, 10, 17};
    ph_capsule(m, a, b, 2, 1);
    CHECK_INT(r3d_airway_tree_build(m, &seed, 1, NULL, &t, NULL, &err), R3D_OK);
    CHECK_INT(t.n, 0);
    r3d_airway_tree_free(&t);
    /* wrong type */
    r3d_volume *f = ph_volume(4, 4, 4, 1.0, R3D_F32);
    CHECK_INT(r3d_airway_tree_build(f, &seed, 1, NULL, &t, NULL, &err), R3D_EARG);
    r3d_volume_free(f);
    r3d_volume_free(m);
}

static void test_nodule_measure(void)
{
    r3d_volume *ct = ph_volume(64, 64, 64, 1.0, R3D_F32);
    r3d_volume *mask = ph_volume(64, 64, 64, 1.0, R3D_U8);
    r3d_volume *aw = ph_volume(64, 64, 64, 1.0, R3D_U8);
    int64_t n = r3d_volume_nvox(ct);
    float *f = ct->voxels;
    for (int64_t p = 0; p < n; p++)
        f[p] = -850;
    double c[3] = {30, 30, 30}, s[3] = {5, 5, 5};
    ph_ellipsoid(ct, c, s, 40);
    ph_ellipsoid(mask, c, s, 1);
    /* a bronchus along z at x = 43 (radius 1): 8 mm from the sphere's surface
     * centre to centre minus the radii: 43 - 1 - 35 = 7 mm between voxels */
    double a0[3] = {43, 30, 2}, a1[3] = {43, 30, 60};
    ph_capsule(aw, a0, a1, 1.0, 1);
    r3d_nodule q;
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d_nodule_measure(ct, mask, 1, aw, NULL, &q, &err), R3D_OK);
    double v = 4.0 / 3.0 * M_PI * 125;
    CHECK_NEAR(q.volume_mm3, v, 0.04 * v);
    CHECK_NEAR(q.diameter_mm, 10, 0.3);
    CHECK_NEAR(q.long_axis_mm, 10, 1.2);
    CHECK_NEAR(q.short_axis_mm, 10, 1.2);
    CHECK(q.short_axis_mm <= q.long_axis_mm);
    CHECK_NEAR(q.mean_hu, 40, 0.5);
    CHECK_INT(q.solid, 1);
    CHECK_NEAR(q.centre[0], 30, 0.1);
    CHECK_NEAR(q.centre[1], 30, 0.1);
    CHECK_NEAR(q.centre[2], 30, 0.1);
    CHECK_NEAR(q.dist_bronchus_mm, 7, 1.01);
    CHECK_NEAR(q.dist_vessel_mm, -1, 0);
    /* an elongated (sub-solid) nodule: long axis along x */
    memset(mask->voxels, 0, (size_t)n);
    for (int64_t p = 0; p < n; p++)
        f[p] = -850;
    double s2[3] = {8, 4, 3};
    ph_ellipsoid(ct, c, s2, -500);
    ph_ellipsoid(mask, c, s2, 3);
    CHECK_INT(r3d_nodule_measure(ct, mask, 3, NULL, NULL, &q, &err), R3D_OK);
    CHECK_NEAR(q.long_axis_mm, 16, 1.2);
    CHECK_NEAR(q.short_axis_mm, 8, 1.2);
    CHECK_INT(q.solid, 0);
    CHECK_NEAR(q.dist_bronchus_mm, -1, 0);
    /* absent label */
    CHECK_INT(r3d_nodule_measure(ct, mask, 7, NULL, NULL, &q, &err), R3D_ENOTFOUND);
    r3d_volume_free(ct), r3d_volume_free(mask), r3d_volume_free(aw);
}

int main(void)
{
    RUN(test_tree_generations);
    RUN(test_tree_names);
    RUN(test_tree_edge_cases);
    RUN(test_nodule_measure);
    return CHECK_DONE("test_analysis");
}

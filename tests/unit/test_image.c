/* test_image.c - image operations on volumes with known answers (the
 * scipy comparisons are in tests/e2e/image_scipy.py). */
#include "check.h"
#include <math.h>
#include "r3d/r3d.h"

static r3d_volume *mask_new(int nx, int ny, int nz, double sx, double sy, double sz)
{
    int64_t dim[4] = {nx, ny, nz, 1};
    r3d_volume *v = r3d_volume_new(dim, R3D_U8, NULL);
    v->ijk_to_lps[0][0] = sx;
    v->ijk_to_lps[1][1] = sy;
    v->ijk_to_lps[2][2] = sz;
    r3d_volume_update_spacing(v);
    return v;
}

#define AT(v, x, y, z) (((uint8_t *)(v)->voxels)[((int64_t)(z) * (v)->dim[1] + (y)) * (v)->dim[0] + (x)])

static void test_image_distance_is_exact_with_anisotropic_spacing(void)
{
    r3d_volume *m = mask_new(9, 9, 9, 0.5, 1.0, 2.0);
    memset(m->voxels, 1, 729);
    AT(m, 4, 4, 4) = 0; /* one background voxel in a full field */
    r3d_volume *d = r3d_image_distance(m, NULL);
    CHECK(d != NULL);
    if (d) {
        const float *f = d->voxels;
        CHECK_NEAR(f[(4 * 9 + 4) * 9 + 4], 0, 0);
        CHECK_NEAR(f[(4 * 9 + 4) * 9 + 8], 2.0, 1e-5);                /* 4 voxels x 0.5 */
        CHECK_NEAR(f[(8 * 9 + 4) * 9 + 4], 8.0, 1e-5);                /* 4 voxels x 2 */
        CHECK_NEAR(f[(5 * 9 + 7) * 9 + 5], sqrt(0.25 + 9 + 4), 1e-5); /* (1,3,1) voxels */
    }
    r3d_volume_free(d);
    r3d_volume_free(m);
}

static void test_image_dilate_erode_ball_radius_in_mm(void)
{
    r3d_volume *m = mask_new(21, 21, 21, 1, 1, 1);
    AT(m, 10, 10, 10) = 1;
    r3d_volume *d = r3d_image_dilate(m, 3.0, NULL);
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t n = 0;
    for (int64_t i = 0; i < 21 * 21 * 21; i++)
        n += ((uint8_t *)d->voxels)[i];
    CHECK_INT(n, 123); /* lattice points with x^2+y^2+z^2 <= 9 */
    r3d_volume *e = r3d_image_erode(d, 3.0, NULL);
    int64_t k = 0;
    for (int64_t i = 0; e && i < 21 * 21 * 21; i++)
        k += ((uint8_t *)e->voxels)[i];
    CHECK_INT(k, 1); /* eroding the ball by its radius leaves its centre */
    r3d_volume_free(e);
    r3d_volume_free(d);
    r3d_volume_free(m);
}

/* Brute force: is some voxel (or, erode=1, the virtual background just
 * outside the grid) with on-state `site` within r2 (mm^2) of (i,j,k)? */
static int near_site(const r3d_volume *m, int i, int j, int k, double r2, int site, int erode)
{
    const double *s = m->spacing_mm;
    int n[3] = {(int)m->dim[0], (int)m->dim[1], (int)m->dim[2]}, x[3] = {i, j, k};
    for (int a = 0; erode && a < 3; a++)
        if ((x[a] + 1) * s[a] * (x[a] + 1) * s[a] <= r2 ||
            (n[a] - x[a]) * s[a] * (n[a] - x[a]) * s[a] <= r2)
            return 1;
    for (int z = 0; z < n[2]; z++)
        for (int y = 0; y < n[1]; y++)
            for (int w = 0; w < n[0]; w++) {
                double dx = (w - i) * s[0], dy = (y - j) * s[1], dz = (z - k) * s[2];
                if ((AT(m, w, y, z) != 0) == site && dx * dx + dy * dy + dz * dz <= r2)
                    return 1;
            }
    return 0;
}

/* Morphology transforms only the mask's box (distance.c): a mask off
 * centre, touching the grid's edge on one side, with radii whose r / s is
 * just above, at and below whole voxels, must give what brute force gives
 * over the whole grid. */
static void test_image_morphology_of_a_small_mask_matches_brute_force(void)
{
    r3d_volume *m = mask_new(40, 22, 12, 0.7, 0.9, 2.0);
    uint32_t h = 12345;
    for (int k = 0; k < 6; k++)
        for (int j = 5; j < 15; j++)
            for (int i = 20; i < 31; i++) {
                h = h * 1103515245u + 12345u;
                AT(m, i, j, k) = (h >> 16) % 3 != 0;
            }
    static const double radii[] = {1.4, 2.0001, 2.1, 4.0};
    for (int q = 0; q < 4; q++) {
        double r = radii[q], r2 = r * r * (1 + 1e-6) + 1e-9;
        r3d_volume *d = r3d_image_dilate(m, r, NULL), *e = r3d_image_erode(m, r, NULL);
        CHECK(d != NULL && e != NULL);
        int bad_d = 0, bad_e = 0;
        for (int k = 0; d && e && k < 12; k++)
            for (int j = 0; j < 22; j++)
                for (int i = 0; i < 40; i++) {
                    bad_d += AT(d, i, j, k) != near_site(m, i, j, k, r2, 1, 0);
                    bad_e += AT(e, i, j, k) != (AT(m, i, j, k) && !near_site(m, i, j, k, r2, 0, 1));
                }
        CHECK_INT(bad_d, 0);
        CHECK_INT(bad_e, 0);
        r3d_volume_free(d);
        r3d_volume_free(e);
    }
    /* The distance map too: distance to the nearest background voxel (none
     * outside the grid here), brute force over the whole grid. */
    r3d_volume *dm = r3d_image_distance(m, NULL);
    CHECK(dm != NULL);
    double worst = 0;
    const double *s = m->spacing_mm;
    for (int k = 0; dm && k < 12; k++)
        for (int j = 0; j < 22; j++)
            for (int i = 0; i < 40; i++) {
                double best = 1e30;
                for (int z = 0; AT(m, i, j, k) && z < 12; z++)
                    for (int y = 0; y < 22; y++)
                        for (int w = 0; w < 40; w++) {
                            double dx = (w - i) * s[0], dy = (y - j) * s[1], dz = (z - k) * s[2];
                            if (!AT(m, w, y, z) && dx * dx + dy * dy + dz * dz < best)
                                best = dx * dx + dy * dy + dz * dz;
                        }
                double got = ((const float *)dm->voxels)[(k * 22 + j) * 40 + i];
                double want = AT(m, i, j, k) ? sqrt(best) : 0;
                if (fabs(got - want) > worst)
                    worst = fabs(got - want);
            }
    CHECK_NEAR(worst, 0, 1e-5);
    r3d_volume_free(dm);
    r3d_volume_free(m);
}

static void test_image_components_count_sizes_and_connectivity(void)
{
    r3d_volume *m = mask_new(10, 10, 10, 1, 1, 1);
    AT(m, 1, 1, 1) = AT(m, 2, 2, 2) = 1;        /* corner-touching: 26 only */
    AT(m, 6, 6, 6) = AT(m, 7, 6, 6) = AT(m, 8, 6, 6) = 1; /* face-connected bar */
    int64_t n6, n26, *sz = NULL;
    r3d_volume *l6 = r3d_image_components(m, 6, &n6, &sz, NULL);
    r3d_volume *l26 = r3d_image_components(m, 26, &n26, NULL, NULL);
    CHECK_INT(n6, 3);
    CHECK_INT(n26, 2);
    if (sz)
        CHECK_INT(sz[3], 3);
    r3d_volume *big = r3d_image_largest_component(m, 26, NULL);
    CHECK(big && AT(big, 7, 6, 6) == 1 && AT(big, 1, 1, 1) == 0);
    r3d_error err = R3D_ERROR_INIT;
    CHECK(r3d_image_components(m, 7, NULL, NULL, &err) == NULL);
    CHECK_CONTAINS(err.msg, "6, 18 or 26");
    free(sz);
    r3d_volume_free(big);
    r3d_volume_free(l6);
    r3d_volume_free(l26);
    r3d_volume_free(m);
}

static void test_image_fill_holes_fills_closed_cavity_only(void)
{
    r3d_volume *m = mask_new(9, 9, 9, 1, 1, 1);
    for (int z = 2; z <= 6; z++)
        for (int y = 2; y <= 6; y++)
            for (int x = 2; x <= 6; x++)
                AT(m, x, y, z) = (x == 2 || x == 6 || y == 2 || y == 6 || z == 2 || z == 6);
    r3d_volume *f = r3d_image_fill_holes(m, NULL);
    CHECK(f && AT(f, 4, 4, 4) == 1 && AT(f, 0, 0, 0) == 0);
    AT(m, 6, 4, 4) = 0; /* a hole in the wall: the cavity is open */
    r3d_volume *g = r3d_image_fill_holes(m, NULL);
    CHECK(g && AT(g, 4, 4, 4) == 0);
    r3d_volume_free(f);
    r3d_volume_free(g);
    r3d_volume_free(m);
}

static void test_image_gaussian_keeps_constants_and_mass(void)
{
    r3d_volume *m = mask_new(16, 16, 16, 0.7, 0.7, 2.0);
    memset(m->voxels, 3, 16 * 16 * 16);
    r3d_volume *g = r3d_image_gaussian(m, 1.5, NULL);
    CHECK(g != NULL);
    double lo = 1e9, hi = -1e9;
    for (int64_t i = 0; g && i < 4096; i++) {
        double x = ((float *)g->voxels)[i];
        lo = x < lo ? x : lo;
        hi = x > hi ? x : hi;
    }
    CHECK_NEAR(lo, 3.0, 1e-5);
    CHECK_NEAR(hi, 3.0, 1e-5);
    r3d_volume_free(g);
    r3d_volume_free(m);
}

static void test_image_resample_onto_own_grid_is_identity(void)
{
    r3d_volume *m = mask_new(7, 8, 9, 0.9, 1.1, 2.5);
    for (int64_t i = 0; i < 7 * 8 * 9; i++)
        ((uint8_t *)m->voxels)[i] = (uint8_t)(i * 7 % 251);
    r3d_volume *a = r3d_image_resample(m, m, R3D_INTERP_NEAREST, 0, NULL);
    r3d_volume *b = r3d_image_resample(m, m, R3D_INTERP_LINEAR, 0, NULL);
    CHECK(a && b);
    if (a && b) {
        CHECK_INT(a->dtype, R3D_U8);
        CHECK(memcmp(a->voxels, m->voxels, 7 * 8 * 9) == 0);
        double worst = 0;
        for (int64_t i = 0; i < 7 * 8 * 9; i++)
            worst = fmax(worst, fabs(((float *)b->voxels)[i] - ((uint8_t *)m->voxels)[i]));
        CHECK_NEAR(worst, 0, 1e-4);
    }
    r3d_volume_free(a);
    r3d_volume_free(b);
    r3d_volume_free(m);
}

static void test_image_results_do_not_depend_on_thread_count(void)
{
    r3d_volume *m = mask_new(40, 30, 20, 0.8, 0.8, 1.5);
    for (int64_t i = 0; i < 40 * 30 * 20; i++)
        ((uint8_t *)m->voxels)[i] = ((i * 2654435761u) >> 13) % 3 == 0;
    r3d_set_threads(1);
    r3d_volume *a = r3d_image_distance(m, NULL), *c = r3d_image_gaussian(m, 1.2, NULL);
    r3d_set_threads(2);
    r3d_volume *b = r3d_image_distance(m, NULL), *d = r3d_image_gaussian(m, 1.2, NULL);
    r3d_set_threads(0);
    CHECK(a && b && c && d);
    if (a && b && c && d) {
        CHECK(memcmp(a->voxels, b->voxels, r3d_volume_bytes(a)) == 0);
        CHECK(memcmp(c->voxels, d->voxels, r3d_volume_bytes(c)) == 0);
    }
    r3d_volume_free(a);
    r3d_volume_free(b);
    r3d_volume_free(c);
    r3d_volume_free(d);
    r3d_volume_free(m);
}

static void test_image_bad_arguments_are_refused_with_reason(void)
{
    r3d_volume *m = mask_new(4, 4, 4, 1, 1, 1);
    r3d_error err = R3D_ERROR_INIT;
    CHECK(r3d_image_dilate(m, -1, &err) == NULL);
    CHECK_CONTAINS(err.msg, "radius");
    int64_t dim[4] = {4, 4, 4, 3};
    r3d_volume *t = r3d_volume_new(dim, R3D_U8, NULL);
    CHECK(r3d_image_distance(t, &err) == NULL);
    CHECK_CONTAINS(err.msg, "3D volume");
    r3d_volume_free(t);
    r3d_volume_free(m);
}

int main(void)
{
    RUN(test_image_distance_is_exact_with_anisotropic_spacing);
    RUN(test_image_dilate_erode_ball_radius_in_mm);
    RUN(test_image_morphology_of_a_small_mask_matches_brute_force);
    RUN(test_image_components_count_sizes_and_connectivity);
    RUN(test_image_fill_holes_fills_closed_cavity_only);
    RUN(test_image_gaussian_keeps_constants_and_mass);
    RUN(test_image_resample_onto_own_grid_is_identity);
    RUN(test_image_results_do_not_depend_on_thread_count);
    RUN(test_image_bad_arguments_are_refused_with_reason);
    return CHECK_DONE("test_image");
}

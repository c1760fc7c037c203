/* test_mesh_extract.c - marching cubes and smoothing on analytic phantoms.
 *
 * Each phantom is a binary label volume made here (phantom.h); the surface
 * is extracted, smoothed at the default strength (5) by the default label
 * smoothing (r3d_mesh_smooth_label, as recon3d mesh does) and compared with the
 * true shape: distance of the vertices to the analytic surface (mean, 95th
 * percentile, max), enclosed volume, topology (closed, manifold, wound
 * consistently, Euler characteristic) and orientation (positive volume).
 * Every measurement is printed, so the log is also the accuracy table.
 */
#include "check.h"
#include "phantom.h"

#include "mesh/surface_internal.h"
#include "r3d/nifti.h"

#include <time.h>

#ifndef DEFAULT_STRENGTH
#define DEFAULT_STRENGTH 5.0
#endif

typedef struct result {
    ph_err e;
    double vol_err_pct;
    int64_t euler, edge_defects, vertex_defects;
    double volume;
} result;

static result measure(const phantom *p, const r3d_volume *v, double strength, r3d_mesh **keep)
{
    result r;
    memset(&r, 0, sizeof r);
    r3d_extract_opts o = R3D_EXTRACT_OPTS_INIT;
    r3d_error err = R3D_ERROR_INIT;
    r3d_mesh *m = r3d_mesh_from_label(v, 1, &o, &err);
    CHECK(m != NULL);
    if (!m) {
        fprintf(stderr, "  %s\n", err.msg);
        return r;
    }
    /* the default smoothing of a label surface (what recon3d mesh does) */
    CHECK_INT(r3d_mesh_smooth_label(m, v, 1, strength, &err), R3D_OK);
    r3d_mesh_metrics mm;
    r3d_mesh_metrics_run(m, &mm);
    r.e = phantom_error(p, m);
    r.volume = mm.volume_mm3;
    r.vol_err_pct = 100 * (mm.volume_mm3 - p->volume_mm3) / p->volume_mm3;
    r.euler = mm.euler;
    r.edge_defects = mesh_edge_defects(m);
    r.vertex_defects = mesh_vertex_defects(m);
    fprintf(stderr,
            "  %-9s strength %.1f: %lld tris, distance mean %.4f p95 %.4f max %.4f mm, "
            "volume %+.3f %%, euler %lld\n",
            p->name, strength, (long long)m->nt, r.e.mean, r.e.p95, r.e.max, r.vol_err_pct,
            (long long)r.euler);
    if (keep)
        *keep = m;
    else
        r3d_mesh_free(m);
    return r;
}

/* The topological and volume checks every phantom must pass. */
static void check_surface(const phantom *p, const result *r)
{
    CHECK_INT(r->edge_defects, 0);
    CHECK_INT(r->vertex_defects, 0);
    CHECK_INT(r->euler, p->euler);
    CHECK(r->volume > 0);
    CHECK_NEAR(r->vol_err_pct, 0, 1.0);
}

static void test_mesh_sphere_surface_within_0_1mm_mean(void)
{
    phantom p = ph_sphere(20);
    double ax[3][3];
    axes_diag(ax, 0.7, 0.7, 0.7);
    r3d_volume *v = phantom_volume(&p, ax, 21);
    result raw = measure(&p, v, 0, NULL);
    CHECK_INT(raw.edge_defects, 0);
    result r = measure(&p, v, DEFAULT_STRENGTH, NULL);
    check_surface(&p, &r);
    CHECK(r.e.mean <= 0.1);
    CHECK(r.e.p95 <= 0.25 * 0.7);
    /* smoothing must help, not merely keep */
    CHECK(r.e.mean < raw.e.mean);
    r3d_volume_free(v);
}

static void test_mesh_torus_genus_1_within_0_1mm_mean(void)
{
    phantom p = ph_torus(14, 6);
    double ax[3][3];
    axes_diag(ax, 0.7, 0.7, 0.7);
    r3d_volume *v = phantom_volume(&p, ax, 21);
    result r = measure(&p, v, DEFAULT_STRENGTH, NULL);
    check_surface(&p, &r);
    CHECK(r.e.mean <= 0.1);
    CHECK(r.e.p95 <= 0.25 * 0.7);
    r3d_volume_free(v);
}

static void test_mesh_nested_shells_two_outward_components(void)
{
    phantom p = ph_shell(20, 12);
    double ax[3][3];
    axes_diag(ax, 0.7, 0.7, 0.7);
    r3d_volume *v = phantom_volume(&p, ax, 21);
    result r = measure(&p, v, DEFAULT_STRENGTH, NULL);
    /* euler 4 = two spheres; positive volume = the cavity's normals point
     * into the cavity (outward from the solid) */
    check_surface(&p, &r);
    CHECK(r.e.mean <= 0.1);
    CHECK(r.e.p95 <= 0.25 * 0.7);
    r3d_volume_free(v);
}

static void test_mesh_cylinder_closed_within_volume_1pct(void)
{
    /* caps at 15.05 mm: half-way between voxel centres, like the binary
     * sampling itself, so only the side and the rims are tested */
    phantom p = ph_cylinder(10, 15.05);
    double ax[3][3];
    axes_diag(ax, 0.7, 0.7, 0.7);
    r3d_volume *v = phantom_volume(&p, ax, 17);
    result r = measure(&p, v, DEFAULT_STRENGTH, NULL);
    check_surface(&p, &r);
    /* The radius is only 14.3 voxels, and its binary digitisation is not
     * round at low frequency: along the axes the last voxel centre inside
     * is at 9.8 mm and the first outside at 10.5, so the data put the
     * surface at 10.15 there, while near 20 degrees it sits 0.12 mm
     * inside. Taubin alone cannot remove an error of that wavelength
     * (mean 0.101, p95 0.202); the default label smoothing's flow to the
     * curvature of a Taubin-smoothed copy, smoothed along the surface but
     * not across the rims, within each vertex's grid edge (surface.c),
     * rounds the side and keeps the caps flat: 0.073 / 0.134. */
    CHECK(r.e.mean <= 0.1);
    CHECK(r.e.p95 <= 0.25 * 0.7);
    r3d_volume_free(v);
}

static void test_mesh_thin_plate_one_voxel_closed(void)
{
    /* one voxel thick: centres at z = 0 only (half thickness 0.35 mm);
     * every face half-way between voxel centres */
    phantom p = ph_box(12.25, 8.75, 0.35);
    double ax[3][3];
    axes_diag(ax, 0.7, 0.7, 0.7);
    r3d_volume *v = phantom_volume(&p, ax, 13);
    result raw = measure(&p, v, 0, NULL);
    CHECK(raw.e.max < 1e-4); /* every vertex exactly on the box */
    CHECK_NEAR(raw.vol_err_pct, -3.41, 0.05);
    result r = measure(&p, v, DEFAULT_STRENGTH, NULL);
    /* Marching cubes cuts every sharp edge of the box with a half-voxel
     * chamfer (2 x 0.35^2 / 2 mm^2 along 84 mm of rim = 10 mm^3 of 302,
     * the -3.4 % above) and smoothing rounds the rims a little more;
     * the default label smoothing then offsets the surface to the mask's
     * volume, which the 1 % check below holds it to. Taubin + offset gave
     * 0.040 / 0.102 mm here; the isotropic flow (surface.c), which fixed
     * the cylinder, rounds the one-voxel rims more: 0.075 / 0.170. */
    check_surface(&p, &r);
    CHECK(r.e.mean <= 0.1);
    CHECK(r.e.p95 <= 0.25 * 0.7);
    r3d_volume_free(v);
}

static void test_mesh_anisotropic_sphere_0_7x0_7x2_5(void)
{
    phantom p = ph_sphere(20);
    double ax[3][3];
    axes_diag(ax, 0.7, 0.7, 2.5);
    r3d_volume *v = phantom_volume(&p, ax, 21);
    result r = measure(&p, v, DEFAULT_STRENGTH, NULL);
    check_surface(&p, &r);
    /* the thick-slice regime: Taubin alone gave mean 0.181, p95 0.625 mm
     * (terraced poles); the constrained volume-preserving flow 0.069 /
     * 0.157, and 0.042 / 0.132 since its umbrella is divided by the mean
     * squared edge (0.044 / 0.107 in 20 long steps whose pressure foresees
     * each step's volume change, instead of 45 short ones). This grid puts the poles on slices; see the next test
     * for spheres that fall between them. */
    CHECK(r.e.mean <= 0.1);
    CHECK(r.e.p95 <= 0.25 * 0.7);
    r3d_volume_free(v);
}

static void test_mesh_thin_vessel_on_thick_slices_keeps_its_volume(void)
{
    /* a vessel 6 mm across lying in the plane of 0.78 x 0.78 x 5 mm slices
     * (the cylinder's axis, z, along the first voxel axis; the slices
     * across it): one or two slices thick, so the curvature flow shrinks
     * it at every step and its pressure must make that up as it goes.
     * Against the volume before each step only it ended -2.26 % off its
     * voxel count (45 steps at 0.5; -6.2 % at the 20 steps of 1.4 now);
     * foreseeing the step's own change (surface.c, pressure), +0.003 %. */
    phantom p = ph_cylinder(3.0, 20);
    double ax[3][3] = {{0, 0.78, 0}, {0, 0, 5.0}, {0.78, 0, 0}};
    r3d_volume *v = phantom_volume(&p, ax, 22);
    int64_t n = r3d_volume_nvox(v), cnt = 0;
    for (int64_t i = 0; i < n; i++)
        cnt += ((const uint16_t *)v->voxels)[i] == 1;
    double vox = 0.78 * 0.78 * 5.0;
    r3d_mesh *m = NULL;
    result r = measure(&p, v, DEFAULT_STRENGTH, &m);
    double dv = 100 * (r.volume / (cnt * vox) - 1);
    fprintf(stderr, "  vessel 6 mm across on 5 mm slices: volume %+.3f %% of its voxels\n", dv);
    CHECK_INT(r.edge_defects, 0);
    CHECK(r.volume > 0);
    CHECK_NEAR(dv, 0, 0.25);
    r3d_mesh_free(m);
    r3d_volume_free(v);
}

static void test_mesh_anisotropic_sphere_oblique_left_handed_ras(void)
{
    /* the thick-slice regime on an oblique (tilted 25 degrees about x),
     * left-handed grid and in RAS: every vertex's grid edge must be found
     * through the affine.
     * Radius 18 puts the poles between slices: Taubin 0.190 / 0.762 mm,
     * the flow with the plain umbrella 0.113 / 0.236, with the umbrella
     * divided by the mean squared edge (surface.c) 0.058 / 0.126, in 20
     * long steps 0.064 / 0.159. A radius-20 sphere shifted 0.9 mm in z:
     * 0.174 / 0.671, 0.108 / 0.309, 0.058 / 0.162, 0.063 / 0.158 (asserted
     * below). Not asserted, measured before that
     * change: a torus R 13 r 7 at 0.7 x 0.7 x 1.9 mm, mean 0.135 / p95
     * 0.391 mm (Taubin 0.147 / 0.353). */
    phantom p = ph_sphere(18);
    double cx = cos(25 * M_PI / 180), sx = sin(25 * M_PI / 180);
    double R[3][3] = {{1, 0, 0}, {0, cx, -sx}, {0, sx, cx}};
    double s[3] = {0.7, -0.7, 2.5};
    double ax[3][3];
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++)
            ax[r][c] = R[r][c] * s[c];
    r3d_volume *v = phantom_volume(&p, ax, 21);
    r3d_extract_opts o = R3D_EXTRACT_OPTS_INIT;
    o.frame = R3D_FRAME_RAS;
    r3d_mesh *m = r3d_mesh_from_label(v, 1, &o, NULL);
    CHECK(m != NULL);
    CHECK_INT(r3d_mesh_smooth_label(m, v, 1, DEFAULT_STRENGTH, NULL), R3D_OK);
    r3d_mesh_set_frame(m, R3D_FRAME_LPS);
    ph_err e = phantom_error(&p, m);
    r3d_mesh_metrics mm;
    r3d_mesh_metrics_run(m, &mm);
    double dv = 100 * (mm.volume_mm3 / p.volume_mm3 - 1);
    fprintf(stderr, "  sphere 0.7 x 0.7 x 2.5 oblique, RAS: mean %.4f p95 %.4f max %.4f mm, "
            "volume %+.3f %%\n", e.mean, e.p95, e.max, dv);
    CHECK_INT(mesh_edge_defects(m), 0);
    CHECK_INT(mm.euler, 2);
    CHECK(mm.volume_mm3 > 0);
    CHECK_NEAR(dv, 0, 1.0);
    CHECK(e.mean <= 0.1);
    CHECK(e.p95 <= 0.25 * 0.7);
    {
        /* a radius-20 sphere whose poles fall 0.9 mm off the slices */
        phantom q = ph_sphere(20);
        double a2[3][3];
        axes_diag(a2, 0.7, 0.7, 2.5);
        r3d_volume *w = phantom_volume(&q, a2, 23);
        w->ijk_to_lps[2][3] -= 0.9; /* the sphere sits at z = +0.9 in this grid */
        uint16_t *l = w->voxels;
        for (int64_t k = 0; k < w->dim[2]; k++)
            for (int64_t j = 0; j < w->dim[1]; j++)
                for (int64_t i = 0; i < w->dim[0]; i++) {
                    double x[3];
                    for (int r = 0; r < 3; r++)
                        x[r] = w->ijk_to_lps[r][0] * (double)i + w->ijk_to_lps[r][1] * (double)j +
                               w->ijk_to_lps[r][2] * (double)k + w->ijk_to_lps[r][3];
                    l[(k * w->dim[1] + j) * w->dim[0] + i] = (uint16_t)q.inside(&q, x);
                }
        result rs = measure(&q, w, DEFAULT_STRENGTH, NULL);
        check_surface(&q, &rs);
        CHECK(rs.e.mean <= 0.1);
        CHECK(rs.e.p95 <= 0.25 * 0.7);
        r3d_volume_free(w);
    }
    /* a mesh changed after extraction is refused, not smoothed wrongly */
    r3d_mesh *w = r3d_mesh_from_label(v, 1, NULL, NULL);
    w->v[0] += 0.2f;
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d_mesh_smooth_label(w, v, 1, DEFAULT_STRENGTH, &err), R3D_EARG);
    CHECK_CONTAINS(err.msg, "boundary edge");
    r3d_mesh_free(w);
    r3d_mesh_free(m);
    r3d_volume_free(v);
}

static void test_mesh_left_handed_rotated_affine_outward(void)
{
    /* torus on a grid rotated 30 degrees about z and 20 about x, with the
     * k axis reversed: det < 0, so the winding must be flipped */
    phantom p = ph_torus(14, 6);
    double cz = cos(M_PI / 6), sz = sin(M_PI / 6), cx = cos(M_PI / 9), sx = sin(M_PI / 9);
    double R[3][3] = {{cz, -sz * cx, sz * sx}, {sz, cz * cx, -cz * sx}, {0, sx, cx}};
    double ax[3][3];
    double s[3] = {0.7, 0.7, -0.8};
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++)
            ax[r][c] = R[r][c] * s[c];
    r3d_volume *v = phantom_volume(&p, ax, 21);
    result r = measure(&p, v, DEFAULT_STRENGTH, NULL);
    check_surface(&p, &r);
    CHECK(r.e.mean <= 0.1);
    CHECK(r.e.p95 <= 0.25 * 0.7);
    r3d_volume_free(v);
}

/* ---- grey levels, threads, frames, borders, errors ------------------------------------ */

static void test_mesh_every_cube_case_closed_manifold_outward(void)
{
    /* all 256 corner configurations of one cube (a 2x2x2 label volume,
     * padded virtually), each on its own: closed, manifold, outward, and
     * two cases glued along a face stay so (the ambiguous faces) */
    int64_t dim[4] = {2, 2, 2, 1};
    int64_t bad = 0;
    for (int cs = 1; cs < 256; cs++) {
        r3d_volume *v = r3d_volume_new(dim, R3D_U16, NULL);
        uint16_t *l = v->voxels;
        for (int c = 0; c < 8; c++)
            l[c] = (uint16_t)(cs >> c & 1);
        r3d_mesh *m = r3d_mesh_from_label(v, 1, NULL, NULL);
        r3d_mesh_metrics mm;
        r3d_mesh_metrics_run(m, &mm);
        if (!m || m->nt == 0 || mesh_edge_defects(m) || mesh_vertex_defects(m) ||
            !(mm.volume_mm3 > 0)) {
            fprintf(stderr, "  case %d: defects or volume %g\n", cs, mm.volume_mm3);
            bad++;
        }
        r3d_mesh_free(m);
        r3d_volume_free(v);
    }
    CHECK_INT(bad, 0);
    dim[0] = 4;
    for (int cs = 0; cs < 256 * 256; cs += 97) { /* pairs side by side in x */
        r3d_volume *v = r3d_volume_new(dim, R3D_U16, NULL);
        uint16_t *l = v->voxels;
        for (int c = 0; c < 8; c++) {
            int i = c & 1, jk = c >> 1;
            l[jk * 4 + i] = (uint16_t)(cs >> c & 1);
            l[jk * 4 + 2 + i] = (uint16_t)(cs >> (8 + c) & 1);
        }
        r3d_mesh *m = r3d_mesh_from_label(v, 1, NULL, NULL);
        bad += m && (mesh_edge_defects(m) || mesh_vertex_defects(m));
        r3d_mesh_free(m);
        r3d_volume_free(v);
    }
    CHECK_INT(bad, 0);
}

static void test_mesh_random_labels_closed_and_manifold(void)
{
    /* half the voxels set at random: every ambiguous face and cube
     * configuration occurs many times */
    int64_t dim[4] = {30, 31, 32, 1};
    r3d_volume *v = r3d_volume_new(dim, R3D_U16, NULL);
    uint16_t *l = v->voxels;
    uint32_t seed = 12345;
    for (int64_t i = 0; i < 30 * 31 * 32; i++) {
        seed = seed * 1664525u + 1013904223u;
        l[i] = (uint16_t)(seed >> 31);
    }
    r3d_mesh *m = r3d_mesh_from_label(v, 1, NULL, NULL);
    CHECK(m && m->nt > 0);
    CHECK_INT(mesh_edge_defects(m), 0);
    CHECK_INT(mesh_vertex_defects(m), 0);
    r3d_mesh_metrics mm;
    r3d_mesh_metrics_run(m, &mm);
    CHECK(mm.volume_mm3 > 0);
    CHECK(mm.genus >= 0); /* closed: metrics found every edge in two faces */
    r3d_mesh_free(m);
    r3d_volume_free(v);
}

static void test_mesh_grey_iso_surface_at_radius_within_0_05mm(void)
{
    /* f = 100 (30 - |x|) stored as int16 with slope 0.01: real values are
     * 30 - |x| mm, linear along every radius, so iso 15 is the sphere of
     * radius 15 and linear interpolation on 1 mm edges is off only by the
     * chord's sag (h^2 / 8r < 0.01 mm) and the int16 rounding. */
    int64_t dim[4] = {41, 43, 45, 1};
    r3d_volume *v = r3d_volume_new(dim, R3D_I16, NULL);
    v->scl_slope = 0.01;
    v->scl_inter = 0;
    int16_t *f = v->voxels;
    for (int64_t k = 0; k < dim[2]; k++)
        for (int64_t j = 0; j < dim[1]; j++)
            for (int64_t i = 0; i < dim[0]; i++) {
                double x = i - 20.0, y = j - 21.0, z = k - 22.0;
                f[(k * dim[1] + j) * dim[0] + i] =
                    (int16_t)lround(100 * (30 - sqrt(x * x + y * y + z * z)));
            }
    v->ijk_to_lps[0][3] = -20;
    v->ijk_to_lps[1][3] = -21;
    v->ijk_to_lps[2][3] = -22;
    r3d_extract_opts o = R3D_EXTRACT_OPTS_INIT;
    o.iso = 15;
    r3d_mesh *m = r3d_mesh_from_image(v, &o, NULL);
    CHECK(m && m->nt > 0);
    phantom p = ph_sphere(15);
    ph_err e = phantom_error(&p, m);
    fprintf(stderr, "  grey sphere r 15 (unsmoothed): mean %.4f p95 %.4f max %.4f mm\n", e.mean,
            e.p95, e.max);
    CHECK(e.max <= 0.05);
    CHECK_INT(mesh_edge_defects(m), 0);
    r3d_mesh_metrics mm;
    r3d_mesh_metrics_run(m, &mm);
    CHECK_INT(mm.euler, 2);
    CHECK(mm.volume_mm3 > 0);
    r3d_mesh_free(m);
    r3d_volume_free(v);
}

static int same_mesh(const r3d_mesh *a, const r3d_mesh *b)
{
    /* empty meshes have no arrays: memcmp of NULL is undefined even for 0 */
    return a && b && a->nv == b->nv && a->nt == b->nt &&
           (!a->nv || !memcmp(a->v, b->v, (size_t)a->nv * 3 * sizeof *a->v)) &&
           (!a->nt || !memcmp(a->t, b->t, (size_t)a->nt * 3 * sizeof *a->t));
}

static void test_mesh_grey_int16_fast_path_equals_float_path(void)
{
    /* int16 images are classified on raw values (no float plane): the
     * surface must be bit for bit the one of the same real values given
     * as float32, for thresholds on, between and beyond the stored values,
     * with a slope and an intercept */
    int64_t dim[4] = {23, 19, 17, 1};
    r3d_volume *v = r3d_volume_new(dim, R3D_I16, NULL);
    r3d_volume *f = r3d_volume_new(dim, R3D_F32, NULL);
    v->scl_slope = 0.37;
    v->scl_inter = -1024;
    int16_t *p = v->voxels;
    float *q = f->voxels;
    uint32_t seed = 7;
    for (int64_t k = 0; k < dim[2]; k++)
        for (int64_t j = 0; j < dim[1]; j++)
            for (int64_t i = 0; i < dim[0]; i++) {
                int64_t n = (k * dim[1] + j) * dim[0] + i;
                double x = i - 11.0, y = j - 9.0, z = k - 8.0;
                seed = seed * 1664525u + 1013904223u;
                p[n] = (int16_t)(3000 - 300 * sqrt(x * x + y * y + z * z) + (seed >> 24));
                q[n] = (float)(p[n] * v->scl_slope + v->scl_inter);
            }
    double isos[6] = {-1024 + 0.37 * 1500, 100.0, 0.0, 123.4567, -5000, 5000};
    for (int c = 0; c < 6; c++) {
        r3d_extract_opts o = R3D_EXTRACT_OPTS_INIT;
        o.iso = isos[c];
        r3d_mesh *a = r3d_mesh_from_image(v, &o, NULL), *b = r3d_mesh_from_image(f, &o, NULL);
        CHECK(same_mesh(a, b));
        if (c < 4)
            CHECK(a && a->nt > 0);
        r3d_mesh_free(a);
        r3d_mesh_free(b);
    }
    r3d_volume_free(v);
    r3d_volume_free(f);
}

static void test_mesh_same_whatever_the_thread_count(void)
{
    phantom p = ph_shell(12, 7);
    double ax[3][3];
    axes_diag(ax, 0.6, 0.7, 0.8);
    r3d_volume *v = phantom_volume(&p, ax, 13);
    r3d_extract_opts o = R3D_EXTRACT_OPTS_INIT;
    o.threads = 1;
    r3d_set_threads(1);
    r3d_mesh *one = r3d_mesh_from_label(v, 1, &o, NULL);
    CHECK_INT(r3d_mesh_smooth(one, 5, NULL), R3D_OK);
    r3d_set_threads(4);
    for (int t = 2; t <= 7; t += 5) {
        o.threads = t;
        r3d_mesh *m = r3d_mesh_from_label(v, 1, &o, NULL);
        CHECK_INT(r3d_mesh_smooth(m, 5, NULL), R3D_OK);
        CHECK(same_mesh(one, m));
        r3d_mesh_free(m);
    }
    r3d_set_threads(0);
    r3d_mesh_free(one);
    r3d_volume_free(v);
}

/* Label 1 of v as a surface, smoothed by default (checked on the way). */
static r3d_mesh *smoothed_label(const r3d_volume *v)
{
    r3d_mesh *m = r3d_mesh_from_label(v, 1, NULL, NULL);
    CHECK(m && m->nt > 1000);
    if (m)
        CHECK_INT(r3d_mesh_smooth_label(m, v, 1, DEFAULT_STRENGTH, NULL), R3D_OK);
    return m;
}

/* r3d_mesh_smooth_label on one label (each vertex its own group: the
 * steps go straight into the positions) gives the same bytes on 1, 2 and
 * 4 threads, on an isotropic grid (Taubin copy, edge-preserving target,
 * flow, volume offset) and on thick slices (volume-preserving flow). */
static void test_mesh_smooth_label_same_whatever_the_thread_count(void)
{
    phantom p = ph_shell(12, 7);
    double sp[2][3] = {{0.6, 0.7, 0.8}, {0.7, 0.7, 2.5}};
    for (int c = 0; c < 2; c++) {
        double ax[3][3];
        axes_diag(ax, sp[c][0], sp[c][1], sp[c][2]);
        r3d_volume *v = phantom_volume(&p, ax, 13);
        r3d_mesh *one = NULL;
        for (int t = 1; t <= 4; t *= 2) {
            r3d_set_threads(t);
            r3d_mesh *m = smoothed_label(v);
            if (!one)
                one = m;
            else {
                CHECK(same_mesh(one, m));
                r3d_mesh_free(m);
            }
        }
        r3d_set_threads(0);
        r3d_mesh_free(one);
        r3d_volume_free(v);
    }
}

/* The AVX2 forms of the Taubin copy and of the ring sweep give the bytes
 * of the plain ones (same operations in the same order, no fused
 * multiply-add), isotropic and on thick slices. (Without AVX2 the test
 * says it is skipped.) */
static void test_mesh_smooth_label_same_with_and_without_avx2(void)
{
    if (!r3d__smooth_wide(1)) {
        fprintf(stderr, "  skip: no AVX2 pass in this build or processor, nothing to compare\n");
        return;
    }
    phantom p = ph_shell(12, 7);
    double sp[2][3] = {{0.6, 0.7, 0.8}, {0.7, 0.7, 2.5}};
    for (int c = 0; c < 2; c++) {
        double ax[3][3];
        axes_diag(ax, sp[c][0], sp[c][1], sp[c][2]);
        r3d_volume *v = phantom_volume(&p, ax, 13);
        r3d_mesh *m[2];
        for (int w = 0; w < 2; w++) {
            r3d__smooth_wide(w);
            m[w] = smoothed_label(v);
        }
        r3d__smooth_wide(1);
        CHECK(same_mesh(m[0], m[1]));
        r3d_mesh_free(m[0]);
        r3d_mesh_free(m[1]);
        r3d_volume_free(v);
    }
}

static void test_mesh_ras_frame_negates_x_and_y(void)
{
    phantom p = ph_torus(8, 3);
    double ax[3][3];
    axes_diag(ax, 0.9, 0.8, 0.7);
    r3d_volume *v = phantom_volume(&p, ax, 12);
    v->ijk_to_lps[0][3] += 5; /* off-centre, so the negation is visible */
    r3d_extract_opts o = R3D_EXTRACT_OPTS_INIT;
    r3d_mesh *lps = r3d_mesh_from_label(v, 1, &o, NULL);
    o.frame = R3D_FRAME_RAS;
    r3d_mesh *ras = r3d_mesh_from_label(v, 1, &o, NULL);
    CHECK(lps && ras);
    CHECK_INT(lps->frame, R3D_FRAME_LPS);
    CHECK_INT(ras->frame, R3D_FRAME_RAS);
    CHECK_INT(lps->nv, ras->nv);
    int64_t bad = 0;
    for (int64_t i = 0; i < lps->nv && i < ras->nv; i++)
        bad += ras->v[3 * i] != -lps->v[3 * i] || ras->v[3 * i + 1] != -lps->v[3 * i + 1] ||
               ras->v[3 * i + 2] != lps->v[3 * i + 2];
    CHECK_INT(bad, 0);
    r3d_mesh_metrics a, b;
    r3d_mesh_metrics_run(lps, &a);
    r3d_mesh_metrics_run(ras, &b);
    CHECK(a.volume_mm3 > 0 && b.volume_mm3 > 0); /* a two-axis flip keeps winding */
    CHECK_NEAR(a.volume_mm3, b.volume_mm3, 1e-6 * a.volume_mm3);
    CHECK_INT(ras->label, 1);
    r3d_mesh_free(lps);
    r3d_mesh_free(ras);
    r3d_volume_free(v);
}

static void test_mesh_closed_at_the_volume_border(void)
{
    /* every voxel set: the surface exists only thanks to the virtual
     * padding, half a voxel beyond the outer voxel centres */
    int64_t dim[4] = {3, 4, 5, 1};
    r3d_volume *v = r3d_volume_new(dim, R3D_U16, NULL);
    uint16_t *l = v->voxels;
    for (int i = 0; i < 60; i++)
        l[i] = 7;
    r3d_mesh *m = r3d_mesh_from_label(v, 7, NULL, NULL);
    CHECK(m && m->nt > 0);
    CHECK_INT(mesh_edge_defects(m), 0);
    CHECK_INT(mesh_vertex_defects(m), 0);
    r3d_mesh_metrics mm;
    r3d_mesh_metrics_run(m, &mm);
    CHECK_INT(mm.euler, 2);
    CHECK_NEAR(mm.bbox_min[0], -0.5, 1e-6);
    CHECK_NEAR(mm.bbox_max[2], 4.5, 1e-6);
    /* the 3 x 4 x 5 box minus marching cubes' half-voxel chamfers on its
     * 12 edges (0.125 mm^2 each per mm) and 8 corners */
    CHECK(mm.volume_mm3 > 0.9 * 60 - 1e-9 && mm.volume_mm3 < 60);
    r3d_mesh_free(m);
    r3d_volume_free(v);
}

static void test_mesh_label_dtypes_give_the_same_surface(void)
{
    /* uint16 (reference), int16 and uint8 fast paths, int32 and a scaled
     * int16 through r3d_volume_get: one surface; label 300 is absent from
     * uint8 (no wrap-around to 44) */
    phantom p = ph_torus(6, 2.5);
    double ax[3][3];
    axes_diag(ax, 1, 1, 1);
    r3d_volume *ref = phantom_volume(&p, ax, 9);
    uint16_t *l = ref->voxels;
    int64_t n = r3d_volume_nvox(ref);
    for (int64_t i = 0; i < n; i++)
        l[i] = l[i] ? 44 : 7;
    r3d_mesh *want = r3d_mesh_from_label(ref, 44, NULL, NULL);
    CHECK(want && want->nt > 0);
    r3d_dtype types[4] = {R3D_I16, R3D_U8, R3D_I32, R3D_I16};
    for (int c = 0; c < 4; c++) {
        r3d_volume *v = r3d_volume_new(ref->dim, types[c], NULL);
        memcpy(v->ijk_to_lps, ref->ijk_to_lps, sizeof v->ijk_to_lps);
        for (int64_t i = 0; i < n; i++) {
            int x = l[i];
            if (c == 3) { /* stored 2x + 1 with slope 0.5, intercept -0.5 */
                x = 2 * x + 1;
                v->scl_slope = 0.5;
                v->scl_inter = -0.5;
            }
            if (types[c] == R3D_I16)
                ((int16_t *)v->voxels)[i] = (int16_t)x;
            else if (types[c] == R3D_U8)
                ((uint8_t *)v->voxels)[i] = (uint8_t)x;
            else
                ((int32_t *)v->voxels)[i] = x;
        }
        r3d_mesh *m = r3d_mesh_from_label(v, 44, NULL, NULL);
        CHECK(same_mesh(want, m));
        r3d_mesh_free(m);
        if (types[c] == R3D_U8) {
            m = r3d_mesh_from_label(v, 300, NULL, NULL);
            CHECK_INT(m ? m->nt : -1, 0);
            r3d_mesh_free(m);
        }
        r3d_volume_free(v);
    }
    r3d_mesh_free(want);
    r3d_volume_free(ref);
}

static void test_mesh_grey_border_and_nan_voxels_closed(void)
{
    /* a float image over iso everywhere except one NaN voxel in the
     * middle: capped at the border like a label, the NaN voxel a cavity
     * (NaN is never >= iso) */
    int64_t dim[4] = {5, 5, 5, 1};
    r3d_volume *v = r3d_volume_new(dim, R3D_F32, NULL);
    float *f = v->voxels;
    for (int i = 0; i < 125; i++)
        f[i] = 300;
    f[62] = NAN;
    r3d_extract_opts o = R3D_EXTRACT_OPTS_INIT;
    o.iso = 100;
    r3d_mesh *m = r3d_mesh_from_image(v, &o, NULL);
    CHECK(m && m->nt > 0);
    CHECK_INT(mesh_edge_defects(m), 0);
    CHECK_INT(mesh_vertex_defects(m), 0);
    r3d_mesh_metrics mm;
    r3d_mesh_metrics_run(m, &mm);
    CHECK_INT(mm.euler, 4); /* outer box + cavity */
    CHECK_INT(mm.genus, 0);
    CHECK_NEAR(mm.bbox_min[1], -0.5, 1e-6);
    CHECK_NEAR(mm.bbox_max[1], 4.5, 1e-6);
    CHECK(mm.volume_mm3 > 100 && mm.volume_mm3 < 125);
    r3d_mesh_free(m);
    r3d_volume_free(v);
}

static void test_mesh_absent_label_gives_empty_mesh(void)
{
    int64_t dim[4] = {4, 4, 4, 1};
    r3d_volume *v = r3d_volume_new(dim, R3D_U16, NULL);
    r3d_error err = R3D_ERROR_INIT;
    r3d_mesh *m = r3d_mesh_from_label(v, 3, NULL, &err);
    CHECK(m != NULL);
    CHECK_INT(m ? m->nt : -1, 0);
    CHECK_INT(err.code, R3D_OK);
    r3d_mesh_free(m);
    r3d_volume_free(v);
}

static void test_mesh_extract_refuses_bad_input(void)
{
    int64_t dim[4] = {4, 4, 4, 1};
    r3d_volume *f = r3d_volume_new(dim, R3D_F32, NULL);
    r3d_error err = R3D_ERROR_INIT;
    CHECK(r3d_mesh_from_label(f, 1, NULL, &err) == NULL);
    CHECK_INT(err.code, R3D_EARG);
    CHECK_CONTAINS(err.msg, "integer");
    f->ijk_to_lps[2][2] = 0;
    err = (r3d_error)R3D_ERROR_INIT;
    CHECK(r3d_mesh_from_image(f, NULL, &err) == NULL);
    CHECK_INT(err.code, R3D_EARG);
    CHECK_CONTAINS(err.msg, "singular");
    r3d_volume_free(f);
}

static void test_smooth_strength_0_untouched_and_bad_input_refused(void)
{
    phantom p = ph_sphere(5);
    double ax[3][3];
    axes_diag(ax, 1, 1, 1);
    r3d_volume *v = phantom_volume(&p, ax, 6);
    r3d_mesh *m = r3d_mesh_from_label(v, 1, NULL, NULL);
    r3d_mesh *c = r3d_mesh_copy(m, NULL);
    CHECK_INT(r3d_mesh_smooth(m, 0, NULL), R3D_OK);
    CHECK(same_mesh(m, c));
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d_mesh_smooth(m, 10.5, &err), R3D_EARG);
    CHECK_CONTAINS(err.msg, "strength");
    CHECK(same_mesh(m, c));
    /* a triangle naming a vertex that does not exist: refused, untouched */
    uint32_t keep = m->t[4];
    m->t[4] = (uint32_t)m->nv;
    CHECK_INT(r3d_mesh_smooth(m, 5, &err), R3D_EDATA);
    CHECK_CONTAINS(err.msg, "vertex");
    m->t[4] = keep;
    CHECK(same_mesh(m, c));
    r3d_mesh_free(m);
    r3d_mesh_free(c);
    r3d_volume_free(v);
}

static void test_smooth_keeps_boundary_vertices_fixed(void)
{
    /* an open mesh: the sphere with its triangles above z = 2 removed */
    phantom p = ph_sphere(5);
    double ax[3][3];
    axes_diag(ax, 1, 1, 1);
    r3d_volume *v = phantom_volume(&p, ax, 6);
    r3d_mesh *m = r3d_mesh_from_label(v, 1, NULL, NULL);
    int64_t w = 0;
    for (int64_t t = 0; t < m->nt; t++) {
        int above = 0;
        for (int k = 0; k < 3; k++)
            above |= m->v[3 * (int64_t)m->t[3 * t + k] + 2] > 2;
        if (!above)
            memmove(m->t + 3 * w++, m->t + 3 * t, 3 * sizeof *m->t);
    }
    m->nt = w;
    r3d_mesh *c = r3d_mesh_copy(m, NULL);
    CHECK_INT(r3d_mesh_smooth(m, 5, NULL), R3D_OK);
    /* a vertex is on the rim when one of its edges has one triangle */
    int64_t rim = 0, moved_rim = 0, moved_inner = 0;
    for (int64_t t = 0; t < m->nt; t++)
        for (int k = 0; k < 3; k++) {
            uint32_t a = m->t[3 * t + k], b = m->t[3 * t + (k + 1) % 3];
            int twin = 0;
            for (int64_t s = 0; s < m->nt && !twin; s++)
                for (int q = 0; q < 3; q++)
                    twin |= m->t[3 * s + q] == b && m->t[3 * s + (q + 1) % 3] == a;
            if (!twin) {
                rim++;
                moved_rim += memcmp(m->v + 3 * a, c->v + 3 * a, 3 * sizeof(float)) != 0;
            }
        }
    for (int64_t i = 0; i < m->nv; i++)
        moved_inner += memcmp(m->v + 3 * i, c->v + 3 * i, 3 * sizeof(float)) != 0;
    CHECK(rim > 0);
    CHECK_INT(moved_rim, 0);
    CHECK(moved_inner > 0);
    r3d_mesh_free(m);
    r3d_mesh_free(c);
    r3d_volume_free(v);
}

static void test_smooth_stays_within_0_55_voxel_of_the_binary_surface(void)
{
    /* at the strongest setting, no vertex strays from the unsmoothed
     * marching-cubes surface by more than about half a voxel (measured at
     * strength 10, 0.7 mm voxels: sphere 0.340, torus 0.353, plate 0.311 mm;
     * 0.7 x 0.7 x 2.5 mm sphere 1.52 mm = 0.61 slice); the fifth case is
     * the sphere far from the origin, as a scanner puts it: the filter's
     * gain at zero frequency must be exactly 1, or the whole mesh scales
     * about the origin (1 % there is 5 mm) */
    phantom ps = ph_sphere(20), pt = ph_torus(14, 6), pb = ph_box(12.25, 8.75, 0.35);
    const phantom *ph[5] = {&ps, &pt, &pb, &ps, &ps};
    double zs[5] = {0.7, 0.7, 0.7, 2.5, 0.7}, ext[5] = {21, 21, 13, 21, 21};
    const double far[3] = {200, -150, 400};
    for (int c = 0; c < 5; c++) {
        double ax[3][3];
        axes_diag(ax, 0.7, 0.7, zs[c]);
        r3d_volume *v = phantom_volume(ph[c], ax, ext[c]);
        for (int r = 0; c == 4 && r < 3; r++)
            v->ijk_to_lps[r][3] += far[r];
        r3d_mesh *raw = r3d_mesh_from_label(v, 1, NULL, NULL);
        r3d_mesh *m = r3d_mesh_copy(raw, NULL);
        CHECK_INT(r3d_mesh_smooth(m, 10, NULL), R3D_OK);
        r3d_surface_distance d;
        CHECK_INT(r3d_mesh_distance(m, raw, &d, NULL), R3D_OK);
        fprintf(stderr, "  %s %.1f mm slices, strength 10: max %.3f mm from the binary surface\n",
                ph[c]->name, zs[c], d.max_mm);
        CHECK(d.max_mm <= (zs[c] > 1 ? 0.65 * zs[c] : 0.55 * 0.7));
        r3d_mesh_free(m);
        r3d_mesh_free(raw);
        r3d_volume_free(v);
    }
}

/* ---- real label maps (../shared/data) ------------------------------------------------- */

static void test_mesh_real_masks_closed_manifold_outward(void)
{
    /* MedMPD liver CT masks (0.78 x 0.78 x 5 mm) and TotalSegmentator's
     * fast body example (3 mm, seven labels), with the default label
     * smoothing. Every surface closed, manifold and outward, and every
     * volume within 1 % of its voxel count (Taubin alone lost 2 % on the
     * hepatic vein and 11 % on a small 3 mm structure: marching cubes
     * chamfers structures one or two voxels wide; now -0.27 % and 0.00 %). */
    static const char *files[] = {"masks/medmpd/Data/Liver/Patient1/liver.nii.gz",
                                  "masks/medmpd/Data/Liver/Patient1/hepaticVein.nii.gz",
                                  "ct/totalseg/tests/reference_files/example_seg_fast_body_seg.nii.gz"};
    char buf[1024];
    int found = 0;
    for (int f = 0; f < 3; f++) {
        const char *path = test_data(files[f], buf, sizeof buf);
        if (!path)
            continue;
        found++;
        r3d_error err = R3D_ERROR_INIT;
        r3d_volume *v = r3d_nifti_read(path, &err);
        CHECK(v != NULL);
        if (!v) {
            fprintf(stderr, "  %s\n", err.msg);
            continue;
        }
        int64_t n = r3d_volume_nvox(v), count[8] = {0};
        for (int64_t i = 0; i < n; i++) {
            double x = r3d_volume_get(v, i);
            if (x > 0 && x < 8)
                count[(int)x]++;
        }
        double vox = fabs(v->spacing_mm[0] * v->spacing_mm[1] * v->spacing_mm[2]);
        for (int lab = 1; lab < 8; lab++) {
            if (!count[lab])
                continue;
            r3d_mesh *m = r3d_mesh_from_label(v, (uint16_t)lab, NULL, &err);
            CHECK(m != NULL);
            if (!m)
                continue;
            CHECK_INT(r3d_mesh_smooth_label(m, v, (uint16_t)lab, DEFAULT_STRENGTH, &err), R3D_OK);
            r3d_mesh_metrics mm;
            r3d_mesh_metrics_run(m, &mm);
            double dv = 100 * (mm.volume_mm3 / (count[lab] * vox) - 1);
            fprintf(stderr, "  %s label %d: %lld triangles, euler %lld, volume %+.2f %% of voxels\n",
                    files[f], lab, (long long)m->nt, (long long)mm.euler, dv);
            CHECK_INT(mesh_edge_defects(m), 0);
            CHECK_INT(mesh_vertex_defects(m), 0);
            CHECK(mm.genus >= 0);
            CHECK(mm.volume_mm3 > 0);
            CHECK_NEAR(dv, 0, 1.0);
            r3d_mesh_free(m);
        }
        r3d_volume_free(v);
    }
    if (!found)
        SKIP("no ../shared/data masks");
}

int main(void)
{
    RUN(test_mesh_sphere_surface_within_0_1mm_mean);
    RUN(test_mesh_torus_genus_1_within_0_1mm_mean);
    RUN(test_mesh_nested_shells_two_outward_components);
    RUN(test_mesh_cylinder_closed_within_volume_1pct);
    RUN(test_mesh_thin_plate_one_voxel_closed);
    RUN(test_mesh_anisotropic_sphere_0_7x0_7x2_5);
    RUN(test_mesh_anisotropic_sphere_oblique_left_handed_ras);
    RUN(test_mesh_thin_vessel_on_thick_slices_keeps_its_volume);
    RUN(test_mesh_left_handed_rotated_affine_outward);
    RUN(test_mesh_every_cube_case_closed_manifold_outward);
    RUN(test_mesh_random_labels_closed_and_manifold);
    RUN(test_mesh_grey_iso_surface_at_radius_within_0_05mm);
    RUN(test_mesh_grey_int16_fast_path_equals_float_path);
    RUN(test_mesh_same_whatever_the_thread_count);
    RUN(test_mesh_smooth_label_same_whatever_the_thread_count);
    RUN(test_mesh_smooth_label_same_with_and_without_avx2);
    RUN(test_mesh_ras_frame_negates_x_and_y);
    RUN(test_mesh_closed_at_the_volume_border);
    RUN(test_mesh_label_dtypes_give_the_same_surface);
    RUN(test_mesh_grey_border_and_nan_voxels_closed);
    RUN(test_mesh_absent_label_gives_empty_mesh);
    RUN(test_mesh_extract_refuses_bad_input);
    RUN(test_smooth_strength_0_untouched_and_bad_input_refused);
    RUN(test_smooth_keeps_boundary_vertices_fixed);
    RUN(test_smooth_stays_within_0_55_voxel_of_the_binary_surface);
    RUN(test_mesh_real_masks_closed_manifold_outward);
    return CHECK_DONE("test_mesh_extract");
}

/* test_mesh_labels.c - several labels of one map: shared boundaries.
 *
 * Two touching phantoms on a 0.7 mm grid: a ball (label 1, radius 10 mm)
 * wrapped by part of a shell (label 2, out to 16 mm, only where x > -4 mm),
 * so the ball touches label 2 on 70 % of its surface and background on the
 * rest, and the two surfaces meet along a triple-junction circle. After
 * r3d_mesh_from_labels at the default strength: both surfaces closed and
 * manifold; every ball vertex on the shared sheet has a vertex of label 2
 * at exactly the same place; the sheet's triangles are the same in both
 * (reversed), i.e. no gap and no overlap; and each volume within 1 % of its
 * voxel count. Also a thick-slice grid (0.7 x 0.7 x 2.5 mm), where the
 * smoothing is the constrained flow; decimation of the scene keeping the
 * shared sheet; a one-voxel label; thread-count independence.
 */
#include "check.h"
#include "phantom.h"

static int cmp_key(const void *a, const void *b)
{
    return memcmp(a, b, 3 * sizeof(float));
}

typedef struct pkey {
    float x[3];
} pkey;

static int has_point(const pkey *k, int64_t n, const float *p)
{
    pkey q;
    memcpy(q.x, p, sizeof q.x);
    return bsearch(&q, k, (size_t)n, sizeof *k, cmp_key) != NULL;
}

static uint64_t tri_key(uint32_t a, uint32_t b, uint32_t c)
{
    /* rotate so the smallest index leads: same triangle, same winding */
    if (b < a && b < c)
        return (uint64_t)b << 42 | (uint64_t)c << 21 | a;
    if (c < a && c < b)
        return (uint64_t)c << 42 | (uint64_t)a << 21 | b;
    return (uint64_t)a << 42 | (uint64_t)b << 21 | c;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void two_labels_ex(double sz, double decimate);
static void two_labels(double sz) { two_labels_ex(sz, 0); }

static void two_labels_ex(double sz, double decimate)
{
    phantom ball = ph_sphere(10), outer = ph_sphere(16);
    double ax[3][3];
    axes_diag(ax, 0.7, 0.7, sz);
    r3d_volume *v = phantom_volume(&outer, ax, 17);
    uint16_t *l = v->voxels;
    int64_t cnt[3] = {0, 0, 0};
    for (int64_t k = 0; k < v->dim[2]; k++)
        for (int64_t j = 0; j < v->dim[1]; j++)
            for (int64_t i = 0; i < v->dim[0]; i++) {
                int64_t n = (k * v->dim[1] + j) * v->dim[0] + i;
                double x[3];
                for (int r = 0; r < 3; r++)
                    x[r] = v->ijk_to_lps[r][0] * i + v->ijk_to_lps[r][1] * j +
                           v->ijk_to_lps[r][2] * k + v->ijk_to_lps[r][3];
                l[n] = ball.inside(&ball, x) ? 1 : (outer.inside(&outer, x) && x[0] > -4) ? 2 : 0;
                cnt[l[n]]++;
            }
    r3d_scene s = {0};
    uint16_t vals[2] = {1, 2};
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d_mesh_from_labels(v, vals, 2, NULL, 5, &s, &err), R3D_OK);
    CHECK_INT(s.n, 2);
    if (s.n != 2) {
        fprintf(stderr, "  %s\n", err.msg);
        r3d_volume_free(v);
        return;
    }
    int64_t nt_before = s.m[0]->nt + s.m[1]->nt;
    if (decimate > 0) {
        /* shared vertices locked: the sheet survives decimation intact */
        r3d_decimate_opts d = R3D_DECIMATE_OPTS_INIT;
        d.target_fraction = decimate;
        CHECK_INT(r3d_scene_decimate(&s, &d, &err), R3D_OK);
        fprintf(stderr, "  decimated to %.0f %%: %lld -> %lld triangles\n", 100 * decimate,
                (long long)nt_before, (long long)(s.m[0]->nt + s.m[1]->nt));
        CHECK(s.m[0]->nt + s.m[1]->nt < 0.85 * nt_before);
    }
    r3d_mesh *a = s.m[0], *b = s.m[1];
    CHECK_INT(a->label, 1);
    CHECK_INT(b->label, 2);
    CHECK_INT(mesh_edge_defects(a), 0);
    CHECK_INT(mesh_edge_defects(b), 0);
    CHECK_INT(mesh_vertex_defects(a), 0);
    CHECK_INT(mesh_vertex_defects(b), 0);
    /* vertices of the ball that label 2 has too, at the same place */
    pkey *kb = malloc((size_t)b->nv * sizeof *kb);
    for (int64_t i = 0; i < b->nv; i++)
        memcpy(kb[i].x, b->v + 3 * i, sizeof kb[i].x);
    qsort(kb, (size_t)b->nv, sizeof *kb, cmp_key);
    int64_t shared = 0;
    uint32_t *map = malloc((size_t)a->nv * sizeof *map); /* a vertex -> b vertex or ~0 */
    for (int64_t i = 0; i < a->nv; i++) {
        map[i] = UINT32_MAX;
        if (!has_point(kb, b->nv, a->v + 3 * i))
            continue;
        shared++;
        for (int64_t j = 0; j < b->nv; j++) /* rare enough to search */
            if (!memcmp(b->v + 3 * j, a->v + 3 * i, 3 * sizeof(float))) {
                map[i] = (uint32_t)j;
                break;
            }
    }
    /* the sheet: ball triangles whose corners are all shared must be
     * label 2's triangles reversed */
    uint64_t *tb = malloc((size_t)b->nt * sizeof *tb);
    for (int64_t t = 0; t < b->nt; t++)
        tb[t] = tri_key(b->t[3 * t], b->t[3 * t + 1], b->t[3 * t + 2]);
    qsort(tb, (size_t)b->nt, sizeof *tb, cmp_u64);
    int64_t sheet = 0, twin = 0;
    for (int64_t t = 0; t < a->nt; t++) {
        const uint32_t *q = a->t + 3 * t;
        if (map[q[0]] == UINT32_MAX || map[q[1]] == UINT32_MAX || map[q[2]] == UINT32_MAX)
            continue;
        sheet++;
        uint64_t k = tri_key(map[q[0]], map[q[2]], map[q[1]]);
        twin += bsearch(&k, tb, (size_t)b->nt, sizeof k, cmp_u64) != NULL;
    }
    r3d_mesh_metrics ma, mb;
    r3d_mesh_metrics_run(a, &ma);
    r3d_mesh_metrics_run(b, &mb);
    double vox = 0.7 * 0.7 * sz;
    double da = 100 * (ma.volume_mm3 / (cnt[1] * vox) - 1), db = 100 * (mb.volume_mm3 / (cnt[2] * vox) - 1);
    fprintf(stderr,
            "  %.1f mm slices: ball %lld vertices, %lld shared (%.1f %%); sheet %lld triangles, "
            "%lld with a reversed twin; volumes %+.2f %% / %+.2f %% of voxels; euler %lld / %lld\n",
            sz, (long long)a->nv, (long long)shared, 100.0 * shared / a->nv, (long long)sheet,
            (long long)twin, da, db, (long long)ma.euler, (long long)mb.euler);
    ph_err eb = phantom_error(&ball, a);
    fprintf(stderr, "  ball: distance mean %.4f p95 %.4f max %.4f mm\n", eb.mean, eb.p95, eb.max);
    if (sz < 1 && decimate == 0) { /* the shared sheet is still where the ball is */
        CHECK(eb.mean <= 0.1);
        CHECK(eb.p95 <= 0.25 * 0.7);
    }
    /* 70 % of the sphere lies at x > -4 */
    CHECK(shared > 0.6 * a->nv && shared < (decimate > 0 ? 1.0 : 0.8) * a->nv);
    CHECK(sheet > 0.5 * a->nt);
    CHECK(twin >= sheet - sheet / 200); /* ambiguous faces only: < 0.5 % */
    CHECK_NEAR(da, 0, decimate > 0 ? 2.0 : 1.0);
    CHECK_NEAR(db, 0, decimate > 0 ? 2.0 : 1.0);
    CHECK_INT(ma.euler, 2);
    CHECK_INT(mb.euler, 2);
    free(kb);
    free(map);
    free(tb);
    r3d_scene_clear(&s);
    r3d_volume_free(v);
}

static void test_mesh_labels_touching_share_vertices_isotropic(void) { two_labels(0.7); }
static void test_mesh_labels_touching_share_vertices_thick_slices(void) { two_labels(2.5); }
static void test_mesh_labels_shared_sheet_survives_scene_decimate(void) { two_labels_ex(0.7, 0.3); }

static void test_mesh_labels_match_single_label_away_from_contact(void)
{
    /* one label alone, or absent labels beside it: the same surface as
     * r3d_mesh_from_label + r3d_mesh_smooth_label; an absent label gives an
     * empty mesh; bad input appends nothing */
    phantom p = ph_torus(8, 3);
    double ax[3][3];
    axes_diag(ax, 0.8, 0.8, 0.8);
    r3d_volume *v = phantom_volume(&p, ax, 12);
    r3d_mesh *want = r3d_mesh_from_label(v, 1, NULL, NULL);
    CHECK_INT(r3d_mesh_smooth_label(want, v, 1, 5, NULL), R3D_OK);
    r3d_scene s = {0};
    uint16_t vals[2] = {1, 9};
    CHECK_INT(r3d_mesh_from_labels(v, vals, 2, NULL, 5, &s, NULL), R3D_OK);
    CHECK_INT(s.n, 2);
    CHECK(s.n == 2 && s.m[0]->nv == want->nv && s.m[0]->nt == want->nt &&
          !memcmp(s.m[0]->v, want->v, (size_t)want->nv * 3 * sizeof(float)));
    CHECK(s.n == 2 && s.m[1]->nt == 0);
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d_mesh_from_labels(v, vals, 2, NULL, 11, &s, &err), R3D_EARG);
    CHECK_INT(s.n, 2);
    CHECK_INT(r3d_mesh_from_labels(v, NULL, 2, NULL, 5, &s, &err), R3D_EARG);
    CHECK_INT(r3d_mesh_from_labels(NULL, vals, 2, NULL, 5, &s, &err), R3D_EARG);
    CHECK_INT(r3d_mesh_from_labels(v, vals, 0, NULL, 5, &s, &err), R3D_OK); /* nothing asked */
    CHECK_INT(s.n, 2);
    r3d_scene empty = {0};
    r3d_decimate_opts d = R3D_DECIMATE_OPTS_INIT;
    d.target_fraction = 0.5;
    CHECK_INT(r3d_scene_decimate(&empty, &d, &err), R3D_OK);
    CHECK_INT(r3d_scene_decimate(&s, NULL, &err), R3D_EARG);
    /* one mesh alone: nothing shared, the plain decimation */
    r3d_mesh *c = r3d_mesh_copy(s.m[0], NULL);
    r3d_decimate_opts d1 = d;
    CHECK_INT(r3d_mesh_decimate(c, &d1, NULL), R3D_OK);
    CHECK_INT(r3d_scene_decimate(&s, &d, &err), R3D_OK);
    CHECK_INT(s.m[0]->nt, c->nt);
    r3d_mesh_free(c);
    r3d_scene_clear(&s);
    r3d_mesh_free(want);
    r3d_volume_free(v);
}

static void test_mesh_labels_single_voxel_stays_a_voxel(void)
{
    /* a label of one voxel beside a larger one: Taubin shrinks its
     * octahedron almost to a point, and the offset to the mask's volume
     * must not blow it up (it once reached +-99 m); it stays within a voxel
     * of its centre, closed and outward */
    int64_t dim[4] = {9, 9, 9, 1};
    r3d_volume *v = r3d_volume_new(dim, R3D_U16, NULL);
    for (int r = 0; r < 3; r++)
        v->ijk_to_lps[r][r] = 3.0;
    r3d_volume_update_spacing(v);
    uint16_t *l = v->voxels;
    for (int k = 2; k < 7; k++)
        for (int j = 2; j < 7; j++)
            for (int i = 2; i < 5; i++)
                l[(k * 9 + j) * 9 + i] = 1;
    l[(4 * 9 + 4) * 9 + 6] = 13; /* touching label 1 along x */
    l[(1 * 9 + 1) * 9 + 8] = 13; /* and a lone voxel of the same label */
    r3d_scene s = {0};
    uint16_t vals[2] = {1, 13};
    CHECK_INT(r3d_mesh_from_labels(v, vals, 2, NULL, 5, &s, NULL), R3D_OK);
    CHECK_INT(s.n, 2);
    if (s.n == 2) {
        r3d_mesh_metrics mm;
        r3d_mesh_metrics_run(s.m[1], &mm);
        fprintf(stderr, "  one-voxel label: box %.2f..%.2f, %.2f..%.2f, %.2f..%.2f mm, %.4f mm3\n",
                mm.bbox_min[0], mm.bbox_max[0], mm.bbox_min[1], mm.bbox_max[1], mm.bbox_min[2],
                mm.bbox_max[2], mm.volume_mm3);
        /* centres x 18 and 24, y and z 3 and 12 mm; voxels 3 mm */
        CHECK(mm.bbox_min[0] > 18 - 3 && mm.bbox_max[0] < 24 + 3);
        CHECK(mm.bbox_min[1] > 3 - 3 && mm.bbox_max[1] < 12 + 3);
        CHECK(mm.bbox_min[2] > 3 - 3 && mm.bbox_max[2] < 12 + 3);
        /* its two voxels' 54 mm3 (the offset's target), within the 1 % the
         * issue allows: it reaches 54.001 */
        CHECK(fabs(mm.volume_mm3 - 2 * 27) <= 0.01 * 2 * 27);
        CHECK_INT(mesh_edge_defects(s.m[1]), 0);
    }
    r3d_scene_clear(&s);
    r3d_volume_free(v);
}

static void test_mesh_labels_same_whatever_the_thread_count(void)
{
    /* the joint flow of thick slices sums in fixed blocks and moves each
     * shared vertex once per label: bit-identical for 1, 2 and 7 threads */
    phantom ball = ph_sphere(6), outer = ph_sphere(9);
    double ax[3][3];
    axes_diag(ax, 0.6, 0.7, 1.9);
    r3d_volume *v = phantom_volume(&outer, ax, 10);
    uint16_t *l = v->voxels;
    for (int64_t k = 0; k < v->dim[2]; k++)
        for (int64_t j = 0; j < v->dim[1]; j++)
            for (int64_t i = 0; i < v->dim[0]; i++) {
                double x[3];
                for (int r = 0; r < 3; r++)
                    x[r] = v->ijk_to_lps[r][0] * i + v->ijk_to_lps[r][1] * j +
                           v->ijk_to_lps[r][2] * k + v->ijk_to_lps[r][3];
                int64_t n = (k * v->dim[1] + j) * v->dim[0] + i;
                l[n] = ball.inside(&ball, x) ? 3 : (outer.inside(&outer, x) && x[1] > -2) ? 4 : 0;
            }
    uint16_t vals[2] = {3, 4};
    r3d_scene ref = {0};
    r3d_set_threads(1);
    r3d_extract_opts o = R3D_EXTRACT_OPTS_INIT;
    o.threads = 1;
    CHECK_INT(r3d_mesh_from_labels(v, vals, 2, &o, 5, &ref, NULL), R3D_OK);
    for (int th = 2; th <= 7; th += 5) {
        r3d_set_threads(th);
        o.threads = th;
        r3d_scene s = {0};
        CHECK_INT(r3d_mesh_from_labels(v, vals, 2, &o, 5, &s, NULL), R3D_OK);
        int same = s.n == 2 && ref.n == 2;
        for (int i = 0; same && i < 2; i++)
            same = s.m[i]->nv == ref.m[i]->nv && s.m[i]->nt == ref.m[i]->nt &&
                   !memcmp(s.m[i]->v, ref.m[i]->v, (size_t)s.m[i]->nv * 3 * sizeof(float)) &&
                   !memcmp(s.m[i]->t, ref.m[i]->t, (size_t)s.m[i]->nt * 3 * sizeof(uint32_t));
        CHECK(same);
        r3d_scene_clear(&s);
    }
    r3d_set_threads(0);
    CHECK(ref.n == 2 && ref.m[0]->nt > 0 && ref.m[1]->nt > 0);
    r3d_scene_clear(&ref);
    r3d_volume_free(v);
}

int main(void)
{
    RUN(test_mesh_labels_touching_share_vertices_isotropic);
    RUN(test_mesh_labels_touching_share_vertices_thick_slices);
    RUN(test_mesh_labels_shared_sheet_survives_scene_decimate);
    RUN(test_mesh_labels_match_single_label_away_from_contact);
    RUN(test_mesh_labels_single_voxel_stays_a_voxel);
    RUN(test_mesh_labels_same_whatever_the_thread_count);
    return CHECK_DONE("test_mesh_labels");
}

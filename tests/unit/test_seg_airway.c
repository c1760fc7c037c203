/* test_seg_airway.c - the airway's local growth on a synthetic chest
 * (seg_phantoms.h): a side bronchus whose lumen leaves the right main
 * bronchus as a short stub, narrows for 2 mm to -800 HU (above the growth
 * threshold, as a segmental bronchus on 2 mm slices does) and goes on as a
 * dark tube. The threshold growth stops at the stub; the local growth from
 * points on the main bronchus's axis sees the stub as wall. Only growth
 * from the stub's tip (the tree's folded offshoots, r3d_airway_tree.tips)
 * reaches the tube. The same stub with no tube behind it: nothing is
 * grown past the bridge into the parenchyma. And which branches below
 * the segmental level still get anchors along them: a trunk's straight
 * continuation, once a segmental bronchus has left it. */
#include "check.h"
#include "r3d/seg.h"
#include "seg/seg_internal.h"
#include "seg_phantoms.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

static int is_airway(uint16_t v)
{
    static const char *names[] = {"trachea",           "bronchi",          "bronchus_main_left",
                                  "bronchus_main_right", "bronchi_lobar", "bronchi_segmental",
                                  "bronchi_subsegmental"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const r3d_structure *s = r3d_structure_find(names[i]);
        if (s && s->value == v)
            return 1;
    }
    return 0;
}

/* The right main bronchus runs from (0, -5, 30) to (-45, -5, 0), radius
 * 5.5 mm. The stub leaves it at its middle, posterior: air to y = 5 mm
 * (radius 2.5 mm, so 2 mm past its wall and the round end); then one 2 mm
 * slab at -800 HU (y = 9 mm, a cross of 5 voxels); then the tube (radius
 * 2 mm, -950 HU) runs 24 mm posterior and down inside the right lung.
 * Voxel centres are at odd mm, so each part falls on whole voxels. */
static const double k_stub0[3] = {-23, -5, 15}, k_stub1[3] = {-23, 5, 15};
static const double k_neck0[3] = {-23, 7, 15}, k_neck1[3] = {-23, 11, 15};
static const double k_tube0[3] = {-23, 11.5, 15}, k_tube1[3] = {-29, 27, -3};

static r3d_volume *stub_chest(int with_tube)
{
    ph_chest o = {0, 1, 0, {0}};
    r3d_volume *ct = ph_chest_ct(&o, NULL);
    if (!ct)
        return NULL;
    ph_capsule(ct, k_neck0, k_neck1, 2.0, -800);
    ph_capsule(ct, k_stub0, k_stub1, 2.5, -1000);
    if (with_tube)
        ph_capsule(ct, k_tube0, k_tube1, 2.0, -950);
    return ct;
}

/* Airway voxels found beyond the narrowing (within the tube's capsule,
 * past the neck's slab) and the voxels of that capsule. */
static void count_tube(const r3d_labelmap *lm, int64_t *found, int64_t *drawn)
{
    const r3d_volume *v = lm->vol;
    const uint16_t *l = v->voxels;
    double dir[3], len = 0;
    for (int r = 0; r < 3; r++)
        dir[r] = k_tube1[r] - k_tube0[r], len += dir[r] * dir[r];
    len = sqrt(len);
    *found = *drawn = 0;
    for (int64_t k = 0; k < v->dim[2]; k++)
        for (int64_t j = 0; j < v->dim[1]; j++)
            for (int64_t i = 0; i < v->dim[0]; i++) {
                double x[3], along = 0;
                ph_pos(v, i, j, k, x);
                for (int r = 0; r < 3; r++)
                    along += (x[r] - k_tube0[r]) * dir[r] / len;
                if (along < -1.0 || ph_seg_dist(x, k_tube0, k_tube1) > 2.0)
                    continue;
                (*drawn)++;
                *found += is_airway(l[i + v->dim[0] * (j + v->dim[1] * k)]);
            }
}

static int segment(const r3d_volume *ct, r3d_seg_result *res, int *max_gen)
{
    r3d_error err = R3D_ERROR_INIT;
    r3d_seg_opts opts = {"airway", NULL, NULL};
    int st = r3d_segment_ct(ct, &opts, res, &err);
    if (st != R3D_OK || !res->labels) {
        fprintf(stderr, "  %s\n", err.msg);
        return 0;
    }
    *max_gen = -1;
    cJSON *r = cJSON_Parse(res->report_json);
    cJSON *aw = r ? cJSON_GetObjectItem(r, "airway") : NULL;
    if (aw)
        *max_gen = cJSON_GetObjectItem(aw, "max_generation")->valueint;
    cJSON_Delete(r);
    return 1;
}

/* The tube beyond a narrowed stub is followed from the stub's tip, and
 * becomes a branch of its own (generation 2 or more on the main bronchus: the growth from the
 * tube's own end may split it). */
static void test_airway_followed_from_offshoot_tip(void)
{
    r3d_volume *ct = stub_chest(1);
    r3d_seg_result res;
    int gen = -1;
    CHECK(ct != NULL);
    if (!ct || !segment(ct, &res, &gen)) {
        r3d_volume_free(ct);
        CHECK(0);
        return;
    }
    int64_t found, drawn;
    count_tube(res.labels, &found, &drawn);
    fprintf(stderr, "  tube beyond the stub: %lld of %lld voxels are airway; max generation %d\n",
            (long long)found, (long long)drawn, gen);
    CHECK(drawn > 25);
    CHECK(found > 0.8 * drawn);
    CHECK(gen >= 2);
    r3d_seg_result_free(&res);
    r3d_volume_free(ct);
}

/* The same stub with parenchyma behind it: the growth from its tip is
 * all bridge (-700 HU or darker within 2.5 mm of the seeds), a ball of
 * -850 HU parenchyma no darker than what surrounds it, and is refused;
 * without that check it crept on round after round (87 voxels, 9.8 mm
 * past the stub, a generation-2 "branch"). Within 20 mm of the stub's end
 * (the main bronchus's own end, 28 mm away, grows a little differently)
 * no airway voxel that the stub-free chest lacks lies more than 8 mm from
 * it, and at most the first voxel layer of the tube's place is taken. */
static void test_airway_offshoot_tip_stops_without_tube(void)
{
    r3d_volume *ct = stub_chest(0);
    ph_chest o = {0, 1, 0, {0}};
    r3d_volume *plain = ph_chest_ct(&o, NULL);
    r3d_seg_result res, res0;
    int gen = -1, g0 = -1;
    CHECK(ct != NULL && plain != NULL);
    if (!ct || !plain || !segment(ct, &res, &gen)) {
        r3d_volume_free(ct), r3d_volume_free(plain);
        CHECK(0);
        return;
    }
    if (!segment(plain, &res0, &g0)) {
        r3d_seg_result_free(&res);
        r3d_volume_free(ct), r3d_volume_free(plain);
        CHECK(0);
        return;
    }
    int64_t found, drawn;
    count_tube(res.labels, &found, &drawn);
    const r3d_volume *v = res.labels->vol;
    const uint16_t *l = v->voxels, *l0 = res0.labels->vol->voxels;
    int64_t extra = 0;
    double far = 0;
    for (int64_t k = 0; k < v->dim[2]; k++)
        for (int64_t j = 0; j < v->dim[1]; j++)
            for (int64_t i = 0; i < v->dim[0]; i++) {
                int64_t p = i + v->dim[0] * (j + v->dim[1] * k);
                if (!is_airway(l[p]) || is_airway(l0[p]))
                    continue;
                double x[3], d = 0;
                ph_pos(v, i, j, k, x);
                for (int r = 0; r < 3; r++)
                    d += (x[r] - k_stub1[r]) * (x[r] - k_stub1[r]);
                if (d > 20.0 * 20.0)
                    continue;
                extra++;
                far = fmax(far, sqrt(d));
            }
    fprintf(stderr, "  no tube: %lld of %lld voxels in its place, %lld new airway voxels within "
            "20 mm of the stub's end, the farthest %.1f mm from it\n", (long long)found, (long long)drawn, (long long)extra, far);
    CHECK(found * 10 <= drawn);
    CHECK(far <= 8.0);
    r3d_seg_result_free(&res), r3d_seg_result_free(&res0);
    r3d_volume_free(ct), r3d_volume_free(plain);
}

/* A right lower lobe drawn by hand (LPS mm; +z up, +y posterior): the
 * trachea, RMB, intermedius and lower-lobe bronchus (generations 0-3),
 * the superior segment leaving the lower-lobe bronchus posteriorly and the
 * basal trunk going on down (generation 4), a branch of the basal trunk
 * straight on (5), and a middle-lobe bronchus off the intermedius (31
 * degrees off it, beside the straighter lower-lobe bronchus). The basal
 * trunk continues its parent and gets anchors; nothing else does. */
static void test_airway_trunk_continuation(void)
{
    static const int parent[] = {-1, 0, 1, 2, 3, 3, 5, 2};
    static const double start[][3] = {{0, 0, 100}, {0, 0, 0},    {-30, 0, -20}, {-35, 0, -40},
                                      {-36, 0, -60}, {-36, 0, -60}, {-37, 0, -90}, {-35, 0, -40}};
    static const double end[][3] = {{0, 0, 0},     {-30, 0, -20}, {-35, 0, -40}, {-36, 0, -60},
                                    {-40, 20, -58}, {-37, 2, -90}, {-38, 2, -110}, {-55, 0, -60}};
    r3d_airway_tree t;
    memset(&t, 0, sizeof t);
    int n = (int)(sizeof parent / sizeof *parent);
    t.b = calloc((size_t)n, sizeof *t.b);
    CHECK(t.b != NULL);
    if (!t.b)
        return;
    t.n = n;
    for (int i = 0; i < n; i++) {
        t.b[i].parent = parent[i];
        t.b[i].generation = parent[i] < 0 ? 0 : t.b[parent[i]].generation + 1;
        memcpy(t.b[i].start, start[i], sizeof start[i]);
        memcpy(t.b[i].end, end[i], sizeof end[i]);
    }
    CHECK_INT(t.b[5].generation, 4);
    CHECK_INT(seg_airway_continues_trunk(&t, 5), 1); /* basal trunk */
    CHECK_INT(seg_airway_continues_trunk(&t, 4), 0); /* superior segment, posterior */
    CHECK_INT(seg_airway_continues_trunk(&t, 6), 0); /* its parent is generation 4 */
    CHECK_INT(seg_airway_continues_trunk(&t, 7), 0); /* a sibling is straighter */
    CHECK_INT(seg_airway_continues_trunk(&t, 0), 0); /* the root */
    /* bend the basal trunk 42 degrees: no longer a continuation */
    t.b[5].end[0] = -36 - 30, t.b[5].end[2] = -90;
    CHECK_INT(seg_airway_continues_trunk(&t, 5), 0);
    r3d_airway_tree_free(&t);
}

/* r3d_airway_tree.tips on a mask (1 mm voxels): a straight tube 60 mm
 * long, radius 3 mm, with an offshoot of radius 1.5 mm leaving it
 * sideways at its middle and ending 3.5 mm past its wall (too short for a
 * branch: the tree is one branch). One tip, at the offshoot's end, none at
 * the tube's own end. */
static void test_airway_tree_tips(void)
{
    r3d_volume *m = ph_volume(30, 30, 70, 1.0, R3D_U8);
    CHECK(m != NULL);
    if (!m)
        return;
    double a[3] = {15, 15, 65}, b[3] = {15, 15, 5};
    double o0[3] = {15, 15, 35}, o1[3] = {15 + 5, 15, 35};
    ph_capsule(m, a, b, 3.0, 1);
    ph_capsule(m, o0, o1, 1.5, 1);
    int ns = 0;
    int64_t *seeds = ph_top_seeds(m, &ns);
    r3d_airway_tree t;
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d_airway_tree_build(m, seeds, ns, NULL, &t, NULL, &err), R3D_OK);
    CHECK_INT(t.n, 1);
    CHECK_INT(t.n_tips, 1);
    if (t.n_tips >= 1) {
        fprintf(stderr, "  tip at (%.1f, %.1f, %.1f), %.0f mm from the tube\n", t.tips[0].pos[0],
                t.tips[0].pos[1], t.tips[0].pos[2], t.tips[0].length_mm);
        CHECK_INT(t.tips[0].branch, 0);
        CHECK_NEAR(t.tips[0].pos[0], 20.0, 2.0); /* the offshoot's end, x 18-21.5 */
        CHECK_NEAR(t.tips[0].pos[2], 35.0, 2.0);
    }
    r3d_airway_tree_free(&t);
    free(seeds);
    r3d_volume_free(m);
}

int main(void)
{
    RUN(test_airway_followed_from_offshoot_tip);
    RUN(test_airway_offshoot_tip_stops_without_tube);
    RUN(test_airway_trunk_continuation);
    RUN(test_airway_tree_tips);
    return CHECK_DONE("test_seg_airway");
}

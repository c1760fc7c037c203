/* test_seg.c - r3d_segment_ct on synthetic chests with known answers:
 * two lungs (apart, and joined at the front) with trachea, main bronchi,
 * spine and a nodule of known size; an abdomen-like slab with no lungs
 * (absent structures reported, not invented); argument errors. */
#include "check.h"
#include "r3d/seg.h"
#include "seg_phantoms.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

static uint16_t val(const char *name)
{
    const r3d_structure *s = r3d_structure_find(name);
    return s ? s->value : 0;
}

static double dice_label(const r3d_labelmap *lm, const uint16_t *vals, int nv,
                         const r3d_volume *truth, uint8_t tv)
{
    const uint16_t *l = lm->vol->voxels;
    const uint8_t *t = truth->voxels;
    int64_t n = r3d_volume_nvox(truth), a = 0, b = 0, ab = 0;
    for (int64_t p = 0; p < n; p++) {
        int in = 0;
        for (int i = 0; i < nv; i++)
            in |= l[p] == vals[i];
        int tt = t[p] == tv;
        a += in, b += tt, ab += in && tt;
    }
    return a + b ? 2.0 * ab / (a + b) : 0;
}

static int64_t count_label(const r3d_labelmap *lm, uint16_t v)
{
    const uint16_t *l = lm->vol->voxels;
    int64_t n = r3d_volume_nvox(lm->vol), c = 0;
    for (int64_t p = 0; p < n; p++)
        c += l[p] == v;
    return c;
}

static int in_array(cJSON *arr, const char *s)
{
    cJSON *x;
    cJSON_ArrayForEach(x, arr)
    if (cJSON_IsString(x) && !strcmp(x->valuestring, s))
        return 1;
    return 0;
}

static void test_chest(void)
{
    ph_chest o = {0, 1, 6.0, {0}};
    r3d_volume *truth = NULL;
    r3d_volume *ct = ph_chest_ct(&o, &truth);
    r3d_seg_result res;
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d_segment_ct(ct, NULL, &res, &err), R3D_OK);
    if (!res.labels) {
        fprintf(stderr, "  %s\n", err.msg);
        return;
    }
    CHECK_INT(res.labels->vol->dim[0], ct->dim[0]);
    uint16_t right[1] = {val("lung_right")}, left[1] = {val("lung_left")};
    double dr = dice_label(res.labels, right, 1, truth, 1);
    double dl = dice_label(res.labels, left, 1, truth, 2);
    fprintf(stderr, "  lungs: Dice right %.3f left %.3f\n", dr, dl);
    CHECK(dr > 0.9);
    CHECK(dl > 0.9);
    CHECK(count_label(res.labels, val("trachea")) > 100);
    CHECK(count_label(res.labels, val("bronchus_main_left")) > 10);
    CHECK(count_label(res.labels, val("bronchus_main_right")) > 10);
    CHECK(count_label(res.labels, val("spine")) > 1000);
    CHECK(count_label(res.labels, val("body")) > 10000);
    CHECK(r3d_label_table_find_name(&res.labels->table, "lung_right") != NULL);
    cJSON *r = cJSON_Parse(res.report_json);
    CHECK(r != NULL);
    cJSON *aw = cJSON_GetObjectItem(r, "airway");
    CHECK(aw != NULL);
    if (aw) {
        CHECK_INT(cJSON_GetObjectItem(aw, "max_generation")->valueint, 1);
        cJSON *pg = cJSON_GetObjectItem(aw, "branches_per_generation");
        CHECK_INT(cJSON_GetArrayItem(pg, 0)->valueint, 1);
        CHECK_INT(cJSON_GetArrayItem(pg, 1)->valueint, 2);
    }
    /* The nodule: one, in the right lung, 12 mm across, solid. */
    cJSON *nod = cJSON_GetObjectItem(r, "nodules");
    CHECK_INT(cJSON_GetArraySize(nod), 1);
    cJSON *q = cJSON_GetArrayItem(nod, 0);
    if (q) {
        CHECK_STR(cJSON_GetObjectItem(q, "lung")->valuestring, "right");
        CHECK_NEAR(cJSON_GetObjectItem(q, "diameter_mm")->valuedouble, 12, 1.5);
        CHECK_NEAR(cJSON_GetObjectItem(q, "long_axis_mm")->valuedouble, 12, 2.5);
        CHECK_STR(cJSON_GetObjectItem(q, "type")->valuestring, "solid");
        cJSON *c = cJSON_GetObjectItem(q, "centre_lps");
        for (int a = 0; a < 3; a++)
            CHECK_NEAR(cJSON_GetArrayItem(c, a)->valuedouble, o.nodule_c[a], 2.0);
        CHECK(count_label(res.labels, R3D_LABEL_NODULE_FIRST) > 50);
    }
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(r, "lungs_joined_and_split")));
    /* No ribs in this phantom: not invented. */
    CHECK_INT(count_label(res.labels, val("ribs")), 0);
    cJSON_Delete(r);
    r3d_seg_result_free(&res);
    r3d_volume_free(truth);
    r3d_volume_free(ct);
}

static void test_joined_lungs(void)
{
    ph_chest o = {1, 1, 0, {0}};
    r3d_volume *truth = NULL;
    r3d_volume *ct = ph_chest_ct(&o, &truth);
    r3d_seg_result res;
    r3d_error err = R3D_ERROR_INIT;
    r3d_seg_opts so = {"lungs", NULL, NULL};
    CHECK_INT(r3d_segment_ct(ct, &so, &res, &err), R3D_OK);
    if (!res.labels)
        return;
    uint16_t right[1] = {val("lung_right")}, left[1] = {val("lung_left")};
    double dr = dice_label(res.labels, right, 1, truth, 1);
    double dl = dice_label(res.labels, left, 1, truth, 2);
    fprintf(stderr, "  joined lungs: Dice right %.3f left %.3f\n", dr, dl);
    CHECK(dr > 0.9);
    CHECK(dl > 0.9);
    cJSON *r = cJSON_Parse(res.report_json);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(r, "lungs_joined_and_split")));
    /* only the lungs were asked for */
    CHECK_INT(count_label(res.labels, val("spine")), 0);
    CHECK_INT(count_label(res.labels, val("body")), 0);
    cJSON_Delete(r);
    r3d_seg_result_free(&res);
    r3d_volume_free(truth);
    r3d_volume_free(ct);
}

static void test_no_lungs(void)
{
    ph_chest o = {0, 0, 0, {0}};
    r3d_volume *ct = ph_chest_ct(&o, NULL);
    r3d_seg_result res;
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d_segment_ct(ct, NULL, &res, &err), R3D_OK);
    if (!res.labels)
        return;
    cJSON *r = cJSON_Parse(res.report_json);
    cJSON *absent = cJSON_GetObjectItem(r, "absent");
    CHECK(in_array(absent, "lung_left"));
    CHECK(in_array(absent, "lung_right"));
    CHECK(in_array(absent, "airway"));
    CHECK(in_array(absent, "lung_nodules"));
    CHECK(!in_array(absent, "body"));
    CHECK_INT(count_label(res.labels, val("lung_left")), 0);
    CHECK_INT(count_label(res.labels, val("lung_right")), 0);
    CHECK_INT(count_label(res.labels, val("trachea")), 0);
    CHECK(count_label(res.labels, val("spine")) > 1000);
    cJSON_Delete(r);
    r3d_seg_result_free(&res);
    r3d_volume_free(ct);
}

/* A scan that starts at the lung bases: a round, near-midline air tube
 * from the top slice down into a little gas (bowel, a lung base) looks
 * like a trachea from above, but no chest's lungs widen out below it, so
 * no airway is reported (the whole example_ct had a 180 mL one). */
static void test_no_trachea_over_bases(void)
{
    ph_chest o = {0, 0, 0, {0}};
    r3d_volume *ct = ph_chest_ct(&o, NULL);
    double t0[3] = {0, -5, 200}, t1[3] = {0, -5, 40}, c[3] = {-15, -5, 25}, s[3] = {30, 18, 15};
    ph_capsule(ct, t0, t1, 9, -1000);
    ph_ellipsoid(ct, c, s, -1000);
    double br[3] = {-65, 0, 25}, bl[3] = {65, 0, 25}, bs[3] = {30, 35, 12}; /* lung bases */
    ph_ellipsoid(ct, br, bs, -850);
    ph_ellipsoid(ct, bl, bs, -850);
    r3d_seg_result res;
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d_segment_ct(ct, NULL, &res, &err), R3D_OK);
    if (res.labels) {
        cJSON *r = cJSON_Parse(res.report_json);
        CHECK(in_array(cJSON_GetObjectItem(r, "absent"), "airway"));
        CHECK_INT(count_label(res.labels, val("trachea")), 0);
        CHECK(count_label(res.labels, val("lung_right")) > 1000); /* the bases are found */
        cJSON_Delete(r);
        r3d_seg_result_free(&res);
    }
    r3d_volume_free(ct);
}

/* Orientation does not matter: the same chest stored with i flipped (an
 * RAS-like grid) gives the same sides. */
static void test_flipped_grid(void)
{
    ph_chest o = {0, 1, 0, {0}};
    r3d_volume *truth = NULL;
    r3d_volume *ct = ph_chest_ct(&o, &truth);
    int64_t nx = ct->dim[0], n = r3d_volume_nvox(ct);
    float *f = ct->voxels;
    uint8_t *t = truth->voxels;
    for (int64_t p = 0; p < n; p += nx)
        for (int64_t i = 0; i < nx / 2; i++) {
            float x = f[p + i];
            f[p + i] = f[p + nx - 1 - i], f[p + nx - 1 - i] = x;
            uint8_t y = t[p + i];
            t[p + i] = t[p + nx - 1 - i], t[p + nx - 1 - i] = y;
        }
    /* voxel i now lies at x = origin' - 2 i */
    ct->ijk_to_lps[0][3] = -ct->ijk_to_lps[0][3];
    ct->ijk_to_lps[0][0] = -ct->ijk_to_lps[0][0];
    r3d_seg_result res;
    r3d_error err = R3D_ERROR_INIT;
    r3d_seg_opts so = {"lungs,airway", NULL, NULL};
    CHECK_INT(r3d_segment_ct(ct, &so, &res, &err), R3D_OK);
    if (res.labels) {
        uint16_t right[1] = {val("lung_right")}, left[1] = {val("lung_left")};
        CHECK(dice_label(res.labels, right, 1, truth, 1) > 0.9);
        CHECK(dice_label(res.labels, left, 1, truth, 2) > 0.9);
    }
    r3d_seg_result_free(&res);
    r3d_volume_free(truth);
    r3d_volume_free(ct);
}

/* A head (no lungs): the pharynx is no trachea, the vault and its base are
 * the skull, the horseshoe in front the mandible, the neck's vertebral
 * column is spine, nothing is a rib. */
static void test_head(void)
{
    r3d_volume *truth = NULL;
    r3d_volume *ct = ph_head_ct(&truth);
    CHECK(ct != NULL && truth != NULL);
    if (!ct || !truth) {
        r3d_volume_free(ct), r3d_volume_free(truth);
        return;
    }
    r3d_seg_result res;
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d_segment_ct(ct, NULL, &res, &err), R3D_OK);
    if (res.labels) {
        uint16_t sk[1] = {val("skull")}, sp[1] = {val("spine")};
        double ds = dice_label(res.labels, sk, 1, truth, 1);
        double dp = dice_label(res.labels, sp, 1, truth, 2);
        uint16_t md[1] = {val("mandible")};
        double dm = dice_label(res.labels, md, 1, truth, 3);
        printf("  head: skull Dice %.3f, spine Dice %.3f, mandible Dice %.3f\n", ds, dp, dm);
        CHECK(ds > 0.85);
        CHECK(dp > 0.7);
        CHECK(dm > 0.8);
        CHECK_INT(count_label(res.labels, val("trachea")), 0);
        CHECK_INT(count_label(res.labels, val("bronchus_main_left")), 0);
        CHECK_INT(count_label(res.labels, val("bronchi_lobar")), 0);
        CHECK_INT(count_label(res.labels, val("ribs")), 0);
        CHECK_INT(count_label(res.labels, val("sternum")), 0);
        CHECK_INT(count_label(res.labels, val("bones")), 0);
        cJSON *r = cJSON_Parse(res.report_json);
        cJSON *absent = cJSON_GetObjectItem(r, "absent");
        CHECK(in_array(absent, "airway"));
        CHECK(in_array(absent, "lung_left"));
        CHECK(cJSON_GetObjectItem(r, "airway") == NULL);
        cJSON_Delete(r);
    }
    r3d_seg_result_free(&res);
    r3d_volume_free(truth);
    r3d_volume_free(ct);
}

static void test_bad_input(void)
{
    r3d_seg_result res;
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d_segment_ct(NULL, NULL, &res, &err), R3D_EARG);
    r3d_volume *small = ph_volume(4, 4, 2, 1.0, R3D_I16);
    CHECK_INT(r3d_segment_ct(small, NULL, &res, &err), R3D_EARG);
    r3d_volume_free(small);
    r3d_volume *v = ph_volume(32, 32, 16, 1.0, R3D_I16);
    r3d_seg_opts so = {"lungs,spleen_of_mars", NULL, NULL};
    CHECK_INT(r3d_segment_ct(v, &so, &res, &err), R3D_EARG);
    CHECK_CONTAINS(err.msg, "spleen_of_mars");
    /* an all-air volume: nothing found, nothing invented, no error */
    int16_t *p = v->voxels;
    for (int64_t i = 0; i < r3d_volume_nvox(v); i++)
        p[i] = -1000;
    CHECK_INT(r3d_segment_ct(v, NULL, &res, &err), R3D_OK);
    if (res.labels) {
        const uint16_t *l = res.labels->vol->voxels;
        int64_t nz = 0;
        for (int64_t i = 0; i < r3d_volume_nvox(v); i++)
            nz += l[i] != 0;
        CHECK_INT(nz, 0);
        CHECK_CONTAINS(res.report_json, "\"absent\"");
    }
    r3d_seg_result_free(&res);
    r3d_volume_free(v);
}

int main(void)
{
    RUN(test_chest);
    RUN(test_joined_lungs);
    RUN(test_no_lungs);
    RUN(test_no_trachea_over_bases);
    RUN(test_flipped_grid);
    RUN(test_head);
    RUN(test_bad_input);
    return CHECK_DONE("test_seg");
}

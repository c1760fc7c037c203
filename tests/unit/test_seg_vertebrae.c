/* test_seg_vertebrae.c - seg_vertebrae (src/seg/vertebrae.c) on a synthetic
 * column with known numbers, drawn straight on the coarse grid as bones.c
 * leaves it (2 mm voxels, RAS: +j anterior, +k superior; labels 1 spine,
 * 2 ribs, 4 other bone; disc voxels out of the bone but at their 90 HU):
 *   - a sacrum block at the bottom (its upper half as wide as a vertebral
 *     body = S1, its lower half narrower = the rest of the sacrum) with
 *     alae joining pelvic bone far out on both sides;
 *   - 17 vertebrae above it (L5 .. T1): 22 mm bodies (cortex and endplates
 *     600 HU, marrow 150 HU) between 8 mm discs, each with an arch and
 *     spinous process that slopes down past its own disc (a plane cut
 *     would give its lower end to the vertebra below; through bone it
 *     belongs to its own body);
 *   - ribs on the top 12 (T12 .. T1).
 * Numbered from the sacrum; an end piece holding several vertebrae whose
 * discs were not seen keeps no number; from T12 when there is no sacrum; not at all
 * (spine kept, a reason given) with neither anchor, or when the two
 * anchors disagree (ribs on L1 as well). */
#include "check.h"
#include "r3d/seg.h"
#include "seg/seg_internal.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

#define NX 100
#define NY 60
#define NZ 296
#define IC 50
#define JC 35
#define NVERT 17
#define DISC0 34 /* L5/S1 disc's first slice; vertebra m: disc at DISC0 + 15 m (4 slices), body next 11 */

enum { F_SACRUM = 1, F_RIBS = 2, F_RIB_L1 = 4, F_TOP_FUSED = 8 };

typedef struct phantom {
    r3d_volume *hu, *lab;
    uint8_t *truth; /* expected value per voxel (0: none) */
} phantom;

static int body_start(int m) { return DISC0 + 15 * m + 4; }

static void put(phantom *p, int64_t i, int64_t j, int64_t k, float hu, uint8_t lab, uint8_t truth)
{
    int64_t q = i + NX * (j + NY * k);
    ((float *)p->hu->voxels)[q] = hu;
    ((uint8_t *)p->lab->voxels)[q] = lab;
    p->truth[q] = truth;
}

static int build(phantom *p, int flags)
{
    int64_t dim[4] = {NX, NY, NZ, 1};
    p->hu = r3d_volume_new(dim, R3D_F32, NULL);
    p->lab = r3d_volume_new(dim, R3D_U8, NULL);
    p->truth = calloc((size_t)NX * NY * NZ, 1);
    if (!p->hu || !p->lab || !p->truth)
        return 0;
    for (int a = 0; a < 3; a++) {
        p->hu->spacing_mm[a] = p->lab->spacing_mm[a] = 2.0;
        p->hu->ijk_to_lps[a][a] = p->lab->ijk_to_lps[a][a] = 2.0;
    }
    float *h = p->hu->voxels;
    for (int64_t q = 0; q < NX * NY * NZ; q++)
        h[q] = 40; /* soft tissue */
    for (int64_t k = 0; k < NZ; k++)
        for (int64_t j = 0; j < NY; j++)
            for (int64_t i = 0; i < NX; i++) {
                double r = hypot((double)(i - IC), (double)(j - JC)); /* voxels */
                /* sacrum: k 4..33, S1 above k 19 */
                if ((flags & F_SACRUM) && k >= 4 && k < DISC0) {
                    int s1 = k >= 19;
                    double rr = s1 ? 7.5 : 4.0;
                    if (r <= rr)
                        put(p, i, j, k, r > rr - 1 ? 600 : 150, 1, s1 ? 26 : 25);
                    else if (k >= 12 && llabs(i - IC) <= 40 && j >= JC - 4 && j <= JC + 2)
                        put(p, i, j, k, 500, 4, 0); /* alae and ilium */
                }
                for (int m = 0; m < NVERT; m++) {
                    int d0 = DISC0 + 15 * m, bs = d0 + 4, be = bs + 10;
                    uint8_t v = (uint8_t)(27 + m);
                    int unseen = (flags & F_TOP_FUSED) && m >= NVERT - 2;
                    if (k >= d0 && k < bs && r <= 7.5 && unseen)
                        put(p, i, j, k, 150, 1, 0); /* a disc not seen: marrow-like bone */
                    else if (k >= d0 && k < bs && r <= 7.5 && (m > 0 || (flags & F_SACRUM)))
                        put(p, i, j, k, 90, 0, 0); /* disc: out of the bone */
                    if (k >= bs && k <= be && r <= 7.5)
                        put(p, i, j, k, r > 6.5 || k == bs || k == be ? 600 : 150, 1, v);
                    /* arch and spinous process, sloping down past the disc */
                    if (k >= bs - 3 && k <= be - 5 && llabs(i - IC) <= 2 && j >= JC - 25 && j < JC - 6)
                        put(p, i, j, k, 500, 1, v);
                    /* ribs at mid-body, both sides */
                    int ribbed = ((flags & F_RIBS) && m >= 5) || ((flags & F_RIB_L1) && m == 4);
                    if (ribbed && k >= bs + 3 && k <= bs + 6 && j >= JC - 2 && j <= JC + 1 &&
                        llabs(i - IC) >= 7 && llabs(i - IC) <= 35 && r > 7.5)
                        put(p, i, j, k, 500, 2, 0);
                }
            }
    return 1;
}

static void drop(phantom *p)
{
    r3d_volume_free(p->hu), r3d_volume_free(p->lab);
    free(p->truth);
}

static r3d_status run(phantom *p, seg_ctx *c, r3d_error *err)
{
    memset(c, 0, sizeof *c);
    c->ct = c->lo = p->hu;
    c->f[0] = c->f[1] = c->f[2] = 1;
    c->bone_lo = p->lab;
    return seg_vertebrae(c, err);
}

/* Fraction of the voxels whose truth is v that got v. */
static double agree(const phantom *p, const seg_ctx *c, uint8_t v)
{
    const uint8_t *o = c->vert_lo->voxels;
    int64_t n = 0, ok = 0;
    for (int64_t q = 0; q < NX * NY * NZ; q++)
        if (p->truth[q] == v)
            n++, ok += o[q] == v;
    return n ? (double)ok / (double)n : 0;
}

static void check_numbers(const phantom *p, const seg_ctx *c, int from)
{
    for (int v = from; v < 27 + NVERT; v++) {
        double a = agree(p, c, (uint8_t)v);
        if (a < 0.97)
            fprintf(stderr, "  value %d: %.3f of its voxels\n", v, a);
        CHECK(a >= 0.97);
    }
    /* every process's lower end (at its disc's level) is its own */
    const uint8_t *o = c->vert_lo->voxels;
    int64_t bad = 0;
    for (int m = 1; m < NVERT; m++)
        for (int64_t k = body_start(m) - 3; k < body_start(m); k++)
            for (int64_t j = JC - 25; j < JC - 6; j++) {
                int64_t q = IC + NX * (j + NY * k);
                bad += o[q] != 27 + m;
            }
    CHECK_INT(bad, 0);
}

static void test_from_sacrum(void)
{
    phantom p;
    seg_ctx c;
    r3d_error err = {0};
    CHECK(build(&p, F_SACRUM | F_RIBS));
    CHECK_INT(run(&p, &c, &err), R3D_OK);
    CHECK_INT(c.vert_numbered, 1);
    CHECK_INT(c.vert_anchor, 1);
    CHECK_INT(c.vert_rib_t12, 32); /* the ribs agree */
    CHECK_INT(c.vert_discs, NVERT);
    CHECK(c.vert_lo != NULL);
    if (c.vert_lo) {
        check_numbers(&p, &c, 27);
        CHECK(agree(&p, &c, 26) >= 0.9); /* S1 */
        CHECK(agree(&p, &c, 25) >= 0.9); /* the rest of the sacrum */
        /* other bone and ribs keep no vertebra beyond a voxel's growth */
        const uint8_t *o = c.vert_lo->voxels, *l = p.lab->voxels;
        int64_t far = 0;
        for (int64_t q = 0; q < NX * NY * NZ; q++)
            far += o[q] && l[q] != 1 && llabs(q % NX - IC) > 10;
        CHECK_INT(far, 0);
    }
    r3d_volume_free(c.vert_lo);
    drop(&p);
}

static void test_from_t12(void)
{
    phantom p;
    seg_ctx c;
    r3d_error err = {0};
    CHECK(build(&p, F_RIBS));
    CHECK_INT(run(&p, &c, &err), R3D_OK);
    CHECK_INT(c.vert_numbered, 1);
    CHECK_INT(c.vert_anchor, 2);
    CHECK(c.vert_lo != NULL);
    if (c.vert_lo) {
        check_numbers(&p, &c, 27);
        CHECK_INT(seg_count(c.vert_lo, 26) + seg_count(c.vert_lo, 25), 0);
    }
    r3d_volume_free(c.vert_lo);
    drop(&p);
}

/* The top two discs not seen: the top piece (T3, T2, T1) is more than one
 * vertebra, so it keeps no number; T4 and below keep theirs. */
static void test_long_end_piece(void)
{
    phantom p;
    seg_ctx c;
    r3d_error err = {0};
    CHECK(build(&p, F_SACRUM | F_RIBS | F_TOP_FUSED));
    CHECK_INT(run(&p, &c, &err), R3D_OK);
    CHECK_INT(c.vert_numbered, 1);
    CHECK_INT(c.vert_ends_left, 1);
    CHECK(c.vert_lo != NULL);
    if (c.vert_lo) {
        for (int v = 27; v <= 40; v++)
            CHECK(agree(&p, &c, (uint8_t)v) >= 0.97);
        for (int v = 41; v <= 50; v++)
            CHECK_INT(seg_count(c.vert_lo, (uint8_t)v), 0);
    }
    r3d_volume_free(c.vert_lo);
    drop(&p);
}

static void test_no_anchor(void)
{
    phantom p;
    seg_ctx c;
    r3d_error err = {0};
    CHECK(build(&p, 0));
    CHECK_INT(run(&p, &c, &err), R3D_OK);
    CHECK_INT(c.vert_numbered, 0);
    CHECK(c.vert_lo == NULL);
    CHECK_CONTAINS(c.vert_why, "no anchor");
    CHECK(c.vert_discs >= NVERT - 2); /* the discs were found, only no number is sure */
    drop(&p);
}

static void test_anchors_disagree(void)
{
    phantom p;
    seg_ctx c;
    r3d_error err = {0};
    CHECK(build(&p, F_SACRUM | F_RIBS | F_RIB_L1));
    CHECK_INT(run(&p, &c, &err), R3D_OK);
    CHECK_INT(c.vert_numbered, 0);
    CHECK(c.vert_lo == NULL);
    CHECK_CONTAINS(c.vert_why, "disagree");
    drop(&p);
}

/* The driver: "vertebrae" is a group of its own, not in "all"; with no
 * spine the report says the vertebrae were not numbered, and why. */
static void test_driver_group(void)
{
    int64_t dim[4] = {40, 40, 12, 1};
    r3d_volume *ct = r3d_volume_new(dim, R3D_F32, NULL);
    CHECK(ct != NULL);
    if (!ct)
        return;
    for (int a = 0; a < 3; a++)
        ct->spacing_mm[a] = ct->ijk_to_lps[a][a] = 2.0;
    float *f = ct->voxels;
    for (int64_t q = 0; q < r3d_volume_nvox(ct); q++) {
        int64_t i = q % 40, j = (q / 40) % 40;
        f[q] = hypot((double)(i - 20), (double)(j - 20)) < 15 ? 40 : -1000;
    }
    const char *asks[2] = {"bones,vertebrae", NULL};
    for (int a = 0; a < 2; a++) {
        r3d_seg_opts o = {asks[a], NULL, NULL};
        r3d_seg_result res;
        r3d_error err = {0};
        CHECK_INT(r3d_segment_ct(ct, &o, &res, &err), R3D_OK);
        cJSON *r = res.report_json ? cJSON_Parse(res.report_json) : NULL;
        CHECK(r != NULL);
        cJSON *v = r ? cJSON_GetObjectItem(r, "vertebrae") : NULL;
        if (a == 0) {
            CHECK(v != NULL);
            CHECK(cJSON_IsFalse(cJSON_GetObjectItem(v, "numbered")));
            cJSON *why = cJSON_GetObjectItem(v, "reason");
            CHECK(cJSON_IsString(why) && why->valuestring[0]);
        } else
            CHECK(v == NULL);
        cJSON_Delete(r);
        r3d_seg_result_free(&res);
    }
    r3d_volume_free(ct);
}

int main(void)
{
    RUN(test_from_sacrum);
    RUN(test_from_t12);
    RUN(test_long_end_piece);
    RUN(test_no_anchor);
    RUN(test_anchors_disagree);
    RUN(test_driver_group);
    return CHECK_DONE("test_seg_vertebrae");
}

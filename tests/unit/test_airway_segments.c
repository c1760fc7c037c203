/* test_airway_segments.c - segmental bronchus names and lung segments on a
 * phantom airway tree drawn to the textbook anatomy (every lobar bronchus
 * with its segmental bronchi in their usual directions, the right basal
 * trunk splitting in a chain, the left upper lobe in an upper division
 * and the lingula), on hand-made trees whose directions are ambiguous
 * (names must then be left out, not guessed), and the segments grown from
 * the named bronchi through the lobes (seg_lobes + seg_segments on the
 * phantom: every named segment's territory lies beyond its bronchus, in
 * its lobe; an unnamed bronchus's territory is no segment's), and the
 * "segments" group of r3d_segment_ct (asked for, absent without named
 * segmental bronchi; not part of "all"). */
#include "check.h"
#include "r3d/analysis.h"
#include "r3d/seg.h"
#include "seg/seg_internal.h"
#include "seg_phantoms.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

/* Branches of the phantom: from, to, radius, the segment name ("" for a
 * trunk), drawn on a 1 mm grid whose index is the LPS position. */
typedef struct tube {
    double a[3], b[3], r;
    const char *name;
} tube;

static const tube k_tubes[] = {
    {{120, 100, 235}, {120, 100, 190}, 7, "trachea"},
    {{120, 100, 190}, {95, 100, 175}, 5, "RMB"},
    {{120, 100, 190}, {150, 100, 165}, 4.5, "LMB"},
    {{95, 100, 175}, {75, 100, 185}, 3.5, "RUL"},
    {{75, 100, 185}, {72, 100, 215}, 2.5, "RB1"},
    {{75, 100, 185}, {65, 125, 195}, 2.5, "RB2"},
    {{75, 100, 185}, {65, 72, 180}, 2.5, "RB3"},
    {{95, 100, 175}, {92, 100, 145}, 4, "BI"},
    {{92, 100, 145}, {80, 80, 135}, 3, "RML"},
    {{80, 80, 135}, {58, 72, 128}, 2, "RB4"},
    {{80, 80, 135}, {90, 62, 118}, 2, "RB5"},
    {{92, 100, 145}, {90, 104, 125}, 3.5, "RLL"},
    {{90, 104, 125}, {88, 130, 130}, 2.5, "RB6"},
    {{90, 104, 125}, {88, 102, 105}, 3, ""}, /* basal trunk */
    {{88, 102, 105}, {105, 98, 85}, 2, "RB7"},
    {{88, 102, 105}, {75, 78, 85}, 2, "RB8"},
    {{88, 102, 105}, {82, 108, 90}, 2.5, ""}, /* RB9 + RB10 trunk */
    {{82, 108, 90}, {60, 112, 72}, 2, "RB9"},
    {{82, 108, 90}, {82, 130, 70}, 2, "RB10"},
    {{150, 100, 165}, {162, 96, 175}, 3.5, "LUL"},
    {{162, 96, 175}, {165, 96, 192}, 3, ""}, /* upper division */
    {{165, 96, 192}, {170, 115, 215}, 2.5, "LB1+2"},
    {{165, 96, 192}, {172, 70, 198}, 2.5, "LB3"},
    {{162, 96, 175}, {170, 85, 160}, 2.5, ""}, /* lingula */
    {{170, 85, 160}, {192, 75, 162}, 2, "LB4"},
    {{170, 85, 160}, {165, 70, 140}, 2, "LB5"},
    {{150, 100, 165}, {155, 104, 145}, 3.5, "LLL"},
    {{155, 104, 145}, {157, 130, 150}, 2.5, "LB6"},
    {{155, 104, 145}, {157, 102, 125}, 3, ""}, /* basal trunk */
    {{157, 102, 125}, {148, 78, 105}, 2, "LB7+8"},
    {{157, 102, 125}, {180, 108, 105}, 2, "LB9"},
    {{157, 102, 125}, {160, 128, 105}, 2, "LB10"},
};
#define NTUBE ((int)(sizeof k_tubes / sizeof k_tubes[0]))

static r3d_volume *anatomy_phantom(void)
{
    r3d_volume *m = ph_volume(240, 200, 240, 1.0, R3D_U8);
    for (int i = 0; i < NTUBE; i++)
        ph_capsule(m, k_tubes[i].a, k_tubes[i].b, k_tubes[i].r, 1);
    return m;
}

static int find(const r3d_airway_tree *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->b[i].name, name))
            return i;
    return -1;
}

static double dist3(const double a[3], const double b[3])
{
    return sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) +
                (a[2] - b[2]) * (a[2] - b[2]));
}

static r3d_status build(const r3d_volume *m, r3d_airway_tree *t, r3d_volume **bo)
{
    int ns = 0;
    int64_t *seeds = ph_top_seeds(m, &ns);
    r3d_error err = R3D_ERROR_INIT;
    r3d_status st = r3d_airway_tree_build(m, seeds, ns, NULL, t, bo, &err);
    free(seeds);
    return st;
}

/* Every drawn bronchus, lobar and segmental, is found and named, and the
 * named branch ends where the drawn one does; generations as drawn. */
static void test_segmental_names(void)
{
    r3d_volume *m = anatomy_phantom();
    r3d_airway_tree t;
    CHECK_INT(build(m, &t, NULL), R3D_OK);
    int named = 0;
    for (int i = 0; i < NTUBE; i++) {
        if (!k_tubes[i].name[0])
            continue;
        int b = find(&t, k_tubes[i].name);
        if (b < 0) {
            fprintf(stderr, "  missing %s\n", k_tubes[i].name);
            CHECK(b >= 0);
            continue;
        }
        named++;
        /* within a band (3 mm) and a radius of the drawn end */
        CHECK(dist3(t.b[b].end, k_tubes[i].b) < 3 + k_tubes[i].r + 2);
    }
    CHECK_INT(named, NTUBE - 5);
    /* generations: RB1 below RUL below RMB; RB9 and RB10 below two trunks */
    int g1 = find(&t, "RB1"), g9 = find(&t, "RB9"), g4 = find(&t, "LB4");
    if (g1 >= 0 && g9 >= 0 && g4 >= 0) {
        CHECK_INT(t.b[g1].generation, 3);
        CHECK_INT(t.b[g9].generation, 6);
        CHECK_INT(t.b[g4].generation, 4);
    }
    /* 18 segmental names, each once */
    static const char *segs[] = {"RB1", "RB2", "RB3", "RB4", "RB5",   "RB6", "RB7", "RB8", "RB9",
                                 "RB10", "LB1+2", "LB3", "LB4", "LB5", "LB6", "LB7+8", "LB9", "LB10"};
    for (int s = 0; s < 18; s++) {
        int n = 0;
        for (int i = 0; i < t.n; i++)
            n += !strcmp(t.b[i].name, segs[s]);
        CHECK_INT(n, 1);
    }
    r3d_airway_tree_free(&t);
    r3d_volume_free(m);
}

/* A hand-made tree: branch i from the parent's end to end[i]. */
static void hand_tree(r3d_airway_tree *t, const int *parent, const double (*end)[3], int n)
{
    memset(t, 0, sizeof *t);
    t->b = calloc((size_t)n, sizeof *t->b);
    t->n = n;
    for (int i = 0; i < n; i++) {
        t->b[i].parent = parent[i];
        t->b[i].generation = parent[i] < 0 ? 0 : t->b[parent[i]].generation + 1;
        t->b[i].n_voxels = 100;
        memcpy(t->b[i].end, end[i], sizeof end[i]);
        if (parent[i] >= 0)
            memcpy(t->b[i].start, end[parent[i]], sizeof end[i]);
        else
            t->b[i].start[0] = end[i][0], t->b[i].start[1] = end[i][1],
            t->b[i].start[2] = end[i][2] + 40;
    }
}

/* Directions that do not tell: no name is guessed. */
static void test_names_withheld(void)
{
    /* trachea, RMB, LMB, RUL, BI, RML, RLL; RUL's two children both run
     * up (10 degrees apart); RLL's basal trunk's children point between
     * the lateral and posterior basal directions and straight down. */
    enum { TR, RMB, LMB, RUL, BI, RML, RLL, U1, U2, B6, BT, X1, X2, LUL, LLL, N };
    int parent[N] = {-1, TR, TR, RMB, RMB, BI, BI, RUL, RUL, RLL, RLL, BT, BT, LMB, LMB};
    double end[N][3] = {
        [TR] = {120, 100, 190},  [RMB] = {95, 100, 175}, [LMB] = {150, 100, 165},
        [RUL] = {75, 100, 185},  [BI] = {92, 100, 145},  [RML] = {80, 80, 135},
        [RLL] = {90, 104, 125},  [U1] = {75, 100, 215},  [U2] = {70, 100, 214},
        [B6] = {90, 130, 130},   [BT] = {90, 104, 105},  [X1] = {72, 122, 85},
        [X2] = {90, 104, 80},    [LUL] = {162, 96, 185}, [LLL] = {155, 104, 140},
    };
    r3d_airway_tree t;
    hand_tree(&t, parent, end, N);
    r3d_airway_tree_name(&t);
    CHECK_STR(t.b[RUL].name, "RUL");
    CHECK_STR(t.b[RLL].name, "RLL");
    CHECK_STR(t.b[B6].name, "RB6");
    /* one of the two upward children may be the apical bronchus, the
     * other is not made posterior or anterior */
    CHECK(find(&t, "RB2") < 0 && find(&t, "RB3") < 0);
    CHECK(!strcmp(t.b[U1].name, "RB1") || !strcmp(t.b[U2].name, "RB1"));
    /* between RB9 and RB10 (45 degrees from each): neither; straight
     * down the trunk: no direction across it, no name */
    CHECK_STR(t.b[X1].name, "");
    CHECK_STR(t.b[X2].name, "");
    CHECK(find(&t, "RB9") < 0 && find(&t, "RB10") < 0);
    r3d_airway_tree_free(&t);
}

/* RB6 leaving the intermedius beside the middle lobe (a trifurcation of
 * the intermedius): named there, the lower lobe bronchus still found; a
 * left basal trunk leaning laterally: its lateral branch (LB9's typical
 * direction lies within 17 degrees of this trunk, the branch 37 degrees
 * off it) is still LB9, the branch running on 10 degrees from the trunk's
 * line is not named. */
static void test_names_variants(void)
{
    enum { TR, RMB, LMB, RUL, BI, RML, B6, RLL, LUL, LLL, S6, BT, L9, L10, ON, N };
    int parent[N] = {-1, TR, TR, RMB, RMB, BI, BI, BI, LMB, LMB, LLL, LLL, BT, BT, BT};
    double end[N][3] = {
        [TR] = {120, 100, 190}, [RMB] = {95, 100, 175},  [LMB] = {150, 100, 165},
        [RUL] = {75, 100, 185}, [BI] = {92, 100, 145},   [RML] = {80, 80, 135},
        [B6] = {90, 128, 140},  [RLL] = {90, 104, 120},  [LUL] = {162, 96, 185},
        [LLL] = {155, 104, 140}, [S6] = {157, 130, 145}, [BT] = {165, 104, 120},
        /* basal trunk leans lateral (+x) about 27 degrees */
        [L9] = {185, 106, 110},  [L10] = {167, 126, 102}, [ON] = {172, 104, 100},
    };
    r3d_airway_tree t;
    hand_tree(&t, parent, end, N);
    r3d_airway_tree_name(&t);
    CHECK_STR(t.b[RML].name, "RML");
    CHECK_STR(t.b[B6].name, "RB6");
    CHECK_STR(t.b[RLL].name, "RLL");
    CHECK_STR(t.b[LLL].name, "LLL");
    CHECK_STR(t.b[S6].name, "LB6");
    CHECK_STR(t.b[L9].name, "LB9");
    CHECK_STR(t.b[L10].name, "LB10");
    CHECK_STR(t.b[ON].name, "");
    /* the lobes follow RB6 to the lower lobe */
    CHECK_INT(seg_segment_lobe(seg_segment_of_name(t.b[B6].name)), 3);
    r3d_airway_tree_free(&t);
}

/* A two-segment division with one confident name: the lingula divides
 * into LB4 (lateral) and a branch running on in the lingula's own line
 * (no direction across it), which is LB5 by elimination; in the same
 * lingula with the second branch turned lateral and up (nearer LB4 than
 * LB5), no LB5 is made of it. */
static void test_names_elimination(void)
{
    enum { TR, RMB, LMB, LUL, LLL, UD, LING, L4, ON, N };
    int parent[N] = {-1, TR, TR, LMB, LMB, LUL, LUL, LING, LING};
    double end[N][3] = {
        [TR] = {120, 100, 190},  [RMB] = {95, 100, 175},  [LMB] = {150, 100, 165},
        [LUL] = {162, 96, 175},  [LLL] = {155, 104, 140}, [UD] = {165, 96, 192},
        [LING] = {170, 85, 160}, [L4] = {192, 75, 162},
        /* on along the lingula: 0.8 x (8, -11, -15) further */
        [ON] = {176.4, 76.2, 148},
    };
    r3d_airway_tree t;
    hand_tree(&t, parent, end, N);
    r3d_airway_tree_name(&t);
    CHECK_STR(t.b[L4].name, "LB4");
    CHECK_STR(t.b[ON].name, "LB5");
    r3d_airway_tree_free(&t);

    end[ON][0] = 185, end[ON][1] = 85, end[ON][2] = 172; /* lateral and up */
    hand_tree(&t, parent, end, N);
    r3d_airway_tree_name(&t);
    CHECK(find(&t, "LB5") < 0);
    r3d_airway_tree_free(&t);
}

/* Lobes and then segments on the phantom: lungs split at the midline,
 * up to the apices, around the trachea. */
static void test_segments(void)
{
    r3d_volume *m = anatomy_phantom();
    r3d_volume *ct = ph_volume(240, 200, 240, 1.0, R3D_F32);
    r3d_volume *lung = ph_volume(240, 200, 240, 1.0, R3D_U8);
    uint8_t *lv = lung->voxels;
    int64_t nx = 240, ny = 200, nz = 240;
    for (int64_t k = 0; k < nz; k++)
        for (int64_t j = 0; j < ny; j++)
            for (int64_t i = 0; i < nx; i++)
                lv[i + nx * (j + ny * k)] =
                    k >= 232 || (k >= 185 && labs(i - 120) <= 12 && labs(j - 100) <= 12)
                        ? 0 /* above the apices; the trachea's column */
                        : (i < 120 ? 1 : 2);
    seg_ctx c;
    memset(&c, 0, sizeof c);
    c.ct = ct, c.lo = ct, c.f[0] = c.f[1] = c.f[2] = 1;
    c.lung_lo = lung, c.airway = m;
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(build(m, &c.tree, &c.branch_of), R3D_OK);
    CHECK_INT(seg_lobes(&c, &err), R3D_OK);
    CHECK(c.lobe_lo != NULL);
    CHECK_INT(seg_segments(&c, &err), R3D_OK);
    CHECK(c.segment_lo != NULL);
    if (!c.lobe_lo || !c.segment_lo)
        goto out;
    const uint8_t *lo = c.lobe_lo->voxels, *sg = c.segment_lo->voxels;
    int64_t n = r3d_volume_nvox(lung), count[SEG_N + 1] = {0}, wrong_lobe = 0, lung_vox = 0,
            covered = 0;
    for (int64_t p = 0; p < n; p++) {
        count[sg[p] <= SEG_N ? sg[p] : 0]++;
        if (sg[p] && sg[p] <= SEG_N && lo[p] != seg_segment_lobe(sg[p]))
            wrong_lobe++;
        lung_vox += lv[p] != 0;
        covered += sg[p] != 0;
    }
    CHECK_INT(wrong_lobe, 0);
    for (int s = 1; s <= SEG_N; s++) {
        if (count[s] <= 1000)
            fprintf(stderr, "  segment %d: %lld voxels\n", s, (long long)count[s]);
        CHECK(count[s] > 1000);
    }
    /* every bronchus named: the lungs are all segments */
    CHECK_INT(covered, lung_vox);
    /* 12 mm beyond each segmental bronchus's end along it: its segment */
    for (int i = 0; i < NTUBE; i++) {
        int s = seg_segment_of_name(k_tubes[i].name);
        if (!s)
            continue;
        double d[3], x[3], l = dist3(k_tubes[i].a, k_tubes[i].b);
        int64_t q[3];
        for (int r = 0; r < 3; r++) {
            d[r] = (k_tubes[i].b[r] - k_tubes[i].a[r]) / l;
            x[r] = k_tubes[i].b[r] + 12 * d[r];
            q[r] = (int64_t)floor(x[r] + 0.5);
        }
        if (q[2] >= 232 || q[0] < 0 || q[1] < 0 || q[0] >= nx || q[1] >= ny)
            continue; /* above the lungs drawn */
        int got = sg[q[0] + nx * (q[1] + ny * q[2])];
        if (got != s)
            fprintf(stderr, "  beyond %s: segment %d, expected %d\n", k_tubes[i].name, got, s);
        CHECK_INT(got, s);
    }
    /* Unname RB4: its territory becomes unknown (no segment), RB5 stays,
     * no other segment grows into the middle lobe's lateral part. */
    {
        int b4 = find(&c.tree, "RB4");
        CHECK(b4 >= 0);
        if (b4 >= 0)
            c.tree.b[b4].name[0] = 0;
        r3d_volume_free(c.segment_lo);
        c.segment_lo = NULL;
        CHECK_INT(seg_segments(&c, &err), R3D_OK);
        CHECK(c.segment_lo != NULL);
        if (c.segment_lo) {
            sg = c.segment_lo->voxels;
            int64_t n4 = 0, n5 = 0;
            for (int64_t p = 0; p < n; p++)
                n4 += sg[p] == 4, n5 += sg[p] == 5;
            CHECK_INT(n4, 0);
            CHECK(n5 > 1000);
            /* beyond RB4's end: middle lobe, no segment */
            int64_t q = 52 + nx * (70 + ny * 126);
            CHECK_INT(lo[q], 2);
            CHECK_INT(sg[q], 0);
        }
    }
    /* No named segmental bronchus at all: no segments. */
    for (int i = 0; i < c.tree.n; i++)
        if (seg_segment_of_name(c.tree.b[i].name))
            c.tree.b[i].name[0] = 0;
    r3d_volume_free(c.segment_lo);
    c.segment_lo = NULL;
    CHECK_INT(seg_segments(&c, &err), R3D_OK);
    CHECK(c.segment_lo == NULL);
out:
    r3d_volume_free(c.segment_lo), r3d_volume_free(c.lobe_lo), r3d_volume_free(c.branch_of);
    r3d_airway_tree_free(&c.tree);
    r3d_volume_free(m), r3d_volume_free(ct), r3d_volume_free(lung);
}

static int in_array(cJSON *arr, const char *s)
{
    cJSON *it;
    cJSON_ArrayForEach(it, arr)
        if (cJSON_IsString(it) && !strcmp(it->valuestring, s))
            return 1;
    return 0;
}

/* The synthetic chest has a trachea and main bronchi, no lobar or
 * segmental ones: segments asked for are reported absent, none drawn;
 * without asking ("all") they are neither drawn nor listed absent. */
static void test_segments_group(void)
{
    ph_chest o = {0, 1, 0, {0}};
    r3d_volume *ct = ph_chest_ct(&o, NULL);
    const char *asks[2] = {"lungs,segments", NULL};
    for (int a = 0; a < 2; a++) {
        r3d_seg_opts so = {asks[a], NULL, NULL};
        r3d_seg_result res;
        r3d_error err = R3D_ERROR_INIT;
        CHECK_INT(r3d_segment_ct(ct, &so, &res, &err), R3D_OK);
        if (!res.labels)
            continue;
        cJSON *r = cJSON_Parse(res.report_json);
        CHECK_INT(in_array(cJSON_GetObjectItem(r, "absent"), "lung_segments"), a == 0);
        CHECK(!in_array(cJSON_GetObjectItem(r, "absent"), "lung_right"));
        const uint16_t *lv = res.labels->vol->voxels;
        int64_t n = r3d_volume_nvox(res.labels->vol), seg = 0;
        for (int64_t p = 0; p < n; p++)
            seg += lv[p] >= 220 && lv[p] <= 237;
        CHECK_INT(seg, 0);
        cJSON_Delete(r);
        r3d_seg_result_free(&res);
    }
    r3d_volume_free(ct);
}

int main(void)
{
    RUN(test_segmental_names);
    RUN(test_names_withheld);
    RUN(test_names_variants);
    RUN(test_names_elimination);
    RUN(test_segments);
    RUN(test_segments_group);
    return CHECK_DONE("test_airway_segments");
}

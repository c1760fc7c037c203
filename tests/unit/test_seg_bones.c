/* test_seg_bones.c - the skeleton of r3d_segment_ct on a synthetic chest
 * with a known answer: a column of vertebrae (cortical shell, faint marrow,
 * spinous processes) parted by discs that are not bone, ribs with a
 * cortex and marrow curving round the chest, and a contrast-filled aorta
 * (160 HU, calcified in spots) lying on the vertebral bodies, which must
 * not become bone, while the column's lowest block (sacrum-like, no discs:
 * its marrow as even along the body as the blood) stays spine. 1 mm voxels, so the coarse grid (2 mm) and the full
 * grid differ and the full-resolution edges and marrow are exercised. */
#include "check.h"
#include "r3d/seg.h"
#include "seg_phantoms.h"

#include <stdlib.h>
#include <string.h>

static uint16_t val(const char *name)
{
    const r3d_structure *s = r3d_structure_find(name);
    return s ? s->value : 0;
}

/* The skeleton's labels of ct (res holds them), or NULL with the error
 * printed. */
static const uint16_t *segment_bones(const r3d_volume *ct, r3d_seg_result *res)
{
    r3d_seg_opts opts = {"bones", NULL, NULL};
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d_segment_ct(ct, &opts, res, &err), R3D_OK);
    if (!res->labels) {
        fprintf(stderr, "  %s\n", err.msg);
        return NULL;
    }
    return res->labels->vol->voxels;
}

/* spine, ribs, sternum, other bones */
static void bone_values(uint16_t vb[4])
{
    vb[0] = val("spine"), vb[1] = val("ribs"), vb[2] = val("sternum"), vb[3] = val("bones");
}

static int is_bone(const uint16_t vb[4], uint16_t v)
{
    return v == vb[0] || v == vb[1] || v == vb[2] || v == vb[3];
}

enum { T_SPINE = 1, T_RIB = 2, T_AORTA = 3, T_RIB_MARROW = 4, T_DISC = 5, T_FUSED = 6 };

#define NX 220
#define NY 170
#define NZ 120
/* LPS: +x patient's left, +y posterior, +z up; centre of the grid at 0. */
#define SPINE_Y 45.0   /* vertebral body centre, behind the body's centre */
#define BODY_R 17.0    /* vertebral body radius */
#define AORTA_R 11.0
#define FUSED_BELOW -35.0 /* mm: below, the column is one block, marrow even along it */

static void set(r3d_volume *ct, r3d_volume *t, int64_t p, float hu, uint8_t truth)
{
    ((float *)ct->voxels)[p] = hu;
    ((uint8_t *)t->voxels)[p] = truth;
}

static r3d_volume *bones_chest(r3d_volume **truth_out)
{
    r3d_volume *ct = ph_volume(NX, NY, NZ, 1.0, R3D_F32);
    r3d_volume *t = ct ? ph_volume(NX, NY, NZ, 1.0, R3D_U8) : NULL;
    if (!t) {
        r3d_volume_free(ct);
        return NULL;
    }
    for (int a = 0; a < 3; a++)
        ct->ijk_to_lps[a][3] = t->ijk_to_lps[a][3] = -(ct->dim[a] - 1) / 2.0;
    strcpy(ct->acq.modality, "CT");
    int64_t n = r3d_volume_nvox(ct);
    float *f = ct->voxels;
    for (int64_t p = 0; p < n; p++) {
        int64_t i = p % NX, j = (p / NX) % NY, k = p / (NX * NY);
        double x[3];
        ph_pos(ct, i, j, k, x);
        f[p] = -1000;
        /* body 100 x 78 mm; lungs left and right of the mediastinum */
        double e = x[0] * x[0] / (100.0 * 100) + x[1] * x[1] / (78.0 * 78);
        if (e > 1)
            continue;
        f[p] = 40;
        double lx = fabs(x[0]) - 50, ly = x[1] + 5;
        if (lx * lx / (35.0 * 35) + ly * ly / (55.0 * 55) <= 1)
            f[p] = -850;
        /* vertebrae: 22 mm bodies (2 mm cortical shell, marrow 150 HU)
         * between 8 mm discs (90 HU); a spinous process behind each */
        double dz = fmod(x[2] + 200.0, 30.0); /* 0..8 disc, 8..30 body */
        double rv = hypot(x[0], x[1] - SPINE_Y);
        int fused = x[2] < FUSED_BELOW; /* a sacrum-like block: no discs */
        if (rv <= BODY_R) {
            if (fused)
                set(ct, t, p, rv > BODY_R - 2 ? 600 : 150, T_FUSED);
            else if (dz < 8)
                set(ct, t, p, 90, T_DISC);
            else if (rv > BODY_R - 2 || dz < 10 || dz > 28)
                set(ct, t, p, 600, T_SPINE);
            else
                set(ct, t, p, 150, T_SPINE);
        }
        if (dz >= 12 && dz <= 26 && fabs(x[0]) <= 3.5 && x[1] > SPINE_Y + BODY_R - 1 &&
            x[1] < SPINE_Y + BODY_R + 32)
            set(ct, t, p, 600, T_SPINE);
        /* the aorta on the vertebral bodies' front left */
        double ra = hypot(x[0] - 12, x[1] - (SPINE_Y - BODY_R - AORTA_R + 3));
        if (rv > BODY_R && ra <= AORTA_R)
            set(ct, t, p, 160, T_AORTA);
    }
    /* calcified plaques in the aortic wall, touching the vertebrae */
    for (double z = -50; z <= 50; z += 25) {
        double c[3] = {6, SPINE_Y - BODY_R - 1, z}, s[3] = {2.5, 2.5, 3};
        ph_ellipsoid(ct, c, s, 600);
    }
    /* ribs: arcs from beside the spine round the lungs to the front,
     * 9 mm thick (1.5 mm cortex, marrow 120 HU), every 30 mm */
    for (int64_t p = 0; p < n; p++) {
        int64_t i = p % NX, j = (p / NX) % NY, k = p / (NX * NY);
        double x[3];
        ph_pos(ct, i, j, k, x);
        double ax = 86, ay = 64; /* arc's ellipse */
        double ang = atan2(x[1] / ay, x[0] / ax), rr = hypot(x[0] / ax, x[1] / ay);
        double rdist = (rr - 1) * hypot(ax * cos(ang), ay * sin(ang)); /* ~mm off the arc */
        /* falling 0.4 mm per mm towards the front, as ribs do */
        double u = x[2] - 0.4 * (x[1] - 60), uc = 30.0 * floor((u + 15) / 30.0) + 3;
        double d = hypot(rdist, (u - uc) / sqrt(1.16));
        if (d > 4.5 || fabs(x[0]) < 22 || x[1] < -45)
            continue;
        int shell = d > 3 || fabs(x[0]) < 23.5 || x[1] < -43.5; /* ends capped */
        set(ct, t, p, shell ? 450 : 120, shell ? T_RIB : T_RIB_MARROW);
    }
    uint32_t st = 777;
    for (int64_t p = 0; p < n; p++)
        f[p] += ph_noise(&st, 12);
    *truth_out = t;
    return ct;
}

static void test_spine_ribs_aorta(void)
{
    r3d_volume *truth = NULL, *ct = bones_chest(&truth);
    CHECK(ct != NULL);
    if (!ct)
        return;
    r3d_seg_result res;
    const uint16_t *l = segment_bones(ct, &res);
    if (!l) {
        r3d_volume_free(ct), r3d_volume_free(truth);
        return;
    }
    const uint8_t *tv = truth->voxels;
    uint16_t vs = val("spine"), vr = val("ribs"), vb[4] = {vs, vr, val("sternum"), val("bones")};
    int64_t n = r3d_volume_nvox(ct);
    int64_t sp_a = 0, sp_b = 0, sp_ab = 0, rb_a = 0, rb_b = 0, rb_ab = 0;
    int64_t aorta = 0, aorta_bone = 0, disc = 0, disc_bone = 0, marrow = 0, marrow_rib = 0;
    int64_t fused = 0, fused_spine = 0;
    for (int64_t p = 0; p < n; p++) {
        int bone = 0;
        for (int q = 0; q < 4; q++)
            bone |= l[p] == vb[q];
        fused += tv[p] == T_FUSED, fused_spine += tv[p] == T_FUSED && l[p] == vs;
        int ts = tv[p] == T_SPINE || tv[p] == T_FUSED, tr = tv[p] == T_RIB || tv[p] == T_RIB_MARROW;
        sp_a += l[p] == vs, sp_b += ts, sp_ab += l[p] == vs && ts;
        rb_a += l[p] == vr, rb_b += tr, rb_ab += l[p] == vr && tr;
        aorta += tv[p] == T_AORTA, aorta_bone += tv[p] == T_AORTA && bone;
        disc += tv[p] == T_DISC, disc_bone += tv[p] == T_DISC && bone;
        marrow += tv[p] == T_RIB_MARROW, marrow_rib += tv[p] == T_RIB_MARROW && l[p] == vr;
    }
    double ds = 2.0 * sp_ab / (sp_a + sp_b), dr = 2.0 * rb_ab / (rb_a + rb_b);
    fprintf(stderr,
            "  spine Dice %.3f (precision %.3f), ribs Dice %.3f (precision %.3f); "
            "aorta as bone %.3f, discs as bone %.3f, rib marrow as rib %.3f, "
            "fused column as spine %.3f\n",
            ds, sp_a ? (double)sp_ab / sp_a : 0, dr, rb_a ? (double)rb_ab / rb_a : 0,
            (double)aorta_bone / aorta, (double)disc_bone / disc, (double)marrow_rib / marrow,
            (double)fused_spine / fused);
    CHECK(ds >= 0.85);
    CHECK(dr >= 0.85);
    /* each structure is in the phantom, so no check passes on an empty one */
    CHECK(aorta > 0 && disc > 0 && marrow > 0 && fused > 0);
    CHECK(aorta_bone <= aorta / 20);   /* the contrast aorta is not bone */
    CHECK(disc_bone <= disc / 5);      /* a disc is not bone (its rims blur) */
    CHECK(marrow_rib >= 9 * marrow / 10); /* the ribs' marrow is rib */
    /* marrow as even along the body as blood, but walled in by cortex */
    CHECK(fused_spine >= 9 * fused / 10);
    r3d_seg_result_free(&res);
    r3d_volume_free(ct), r3d_volume_free(truth);
}

/* A calcified vessel deep in the abdomen (plaques round half of its wall,
 * 600 HU like cortex, over 20 mm, 90 mm under the skin, in front of the
 * spine) is no bone; the vertebral column behind it stays spine. 2 mm
 * voxels, an unenhanced scan, no lungs in view. */
enum { C_SPINE = 1, C_CALC = 2 };
static void test_calcified_vessel(void)
{
    r3d_volume *ct = ph_volume(160, 120, 40, 2.0, R3D_F32);
    r3d_volume *t = ct ? ph_volume(160, 120, 40, 2.0, R3D_U8) : NULL;
    CHECK(t != NULL);
    if (!t) {
        r3d_volume_free(ct);
        return;
    }
    for (int a = 0; a < 3; a++)
        ct->ijk_to_lps[a][3] = t->ijk_to_lps[a][3] = -(ct->dim[a] - 1);
    strcpy(ct->acq.modality, "CT");
    int64_t n = r3d_volume_nvox(ct);
    float *f = ct->voxels;
    uint8_t *tv = t->voxels;
    uint32_t st = 99;
    for (int64_t p = 0; p < n; p++) {
        int64_t i = p % 160, j = (p / 160) % 120, k = p / (160 * 120);
        double x[3];
        ph_pos(ct, i, j, k, x);
        f[p] = -1000;
        if (x[0] * x[0] / (150.0 * 150) + x[1] * x[1] / (110.0 * 110) <= 1) {
            f[p] = 40;
            double rv = hypot(x[0], x[1] - 45); /* vertebral body, cortex and marrow */
            if (rv <= 16)
                f[p] = rv > 12 ? 600 : 200, tv[p] = C_SPINE;
            if (fabs(x[0]) <= 3 && x[1] > 60 && x[1] < 90) /* spinous process */
                f[p] = 600, tv[p] = C_SPINE;
            double rc = hypot(x[0] - 30, x[1] + 10); /* the vessel: 20 mm across */
            if (rc > 8 && rc <= 11 && x[1] < -10 && fabs(x[2]) <= 10)
                f[p] = 600, tv[p] = C_CALC;
        }
        f[p] += ph_noise(&st, 12);
    }
    r3d_seg_result res;
    const uint16_t *l = segment_bones(ct, &res);
    if (l) {
        uint16_t vb[4];
        bone_values(vb);
        int64_t calc = 0, calc_bone = 0, spine = 0, spine_ok = 0;
        for (int64_t p = 0; p < n; p++) {
            int bone = is_bone(vb, l[p]);
            calc += tv[p] == C_CALC, calc_bone += tv[p] == C_CALC && bone;
            spine += tv[p] == C_SPINE, spine_ok += tv[p] == C_SPINE && l[p] == vb[0];
        }
        fprintf(stderr, "  calcified vessel as bone %.3f, vertebrae as spine %.3f\n",
                (double)calc_bone / calc, (double)spine_ok / spine);
        CHECK(calc > 0 && calc_bone <= calc / 10);
        CHECK(spine_ok >= 9 * spine / 10);
        r3d_seg_result_free(&res);
    }
    r3d_volume_free(ct), r3d_volume_free(t);
}

/* A slab of trunk for the spine's phantoms: 160 x 120 x 30 voxels of
 * 1 x 1 x 2 mm (the thin-slice abdomen's grid), centred on the origin,
 * and a truth map of the same grid. */
static int trunk_slab(r3d_volume **ct, r3d_volume **t)
{
    *ct = ph_volume(160, 120, 30, 1.0, R3D_F32);
    *t = *ct ? ph_volume(160, 120, 30, 1.0, R3D_U8) : NULL;
    CHECK(*t != NULL);
    if (!*t) {
        r3d_volume_free(*ct);
        return 0;
    }
    for (int a = 0; a < 3; a++)
        (*ct)->ijk_to_lps[a][3] = (*t)->ijk_to_lps[a][3] = -((*ct)->dim[a] - 1) / 2.0;
    (*ct)->ijk_to_lps[2][2] = (*t)->ijk_to_lps[2][2] = 2.0;
    (*ct)->spacing_mm[2] = (*t)->spacing_mm[2] = 2.0;
    strcpy((*ct)->acq.modality, "CT");
    return 1;
}

/* Discs seen in 2 mm slices (1 mm across, as a thin-slice abdomen): a
 * column whose scan begins inside a disc - no endplate below it in view -
 * and a 6 mm disc in the middle. Each vertebral body is a cortical ring
 * round 180 HU marrow with a 500 HU endplate next to each disc; the ring
 * goes on through the disc slices (the endplates' rims blur into them),
 * so a disc missed is filled as marrow. Neither disc is bone, the
 * vertebrae are spine - and so is the arch behind the bodies, a spinous
 * process 10 mm wide, cortex round 150-190 HU marrow, that goes on through the
 * middle disc's slices (a disc parts the bodies, not the arches) and is
 * marrow in the scan's last slice too. */
enum { D_VERT = 1, D_DISC = 2, D_DISC_END = 3, D_ARCH_DISC = 4, D_ARCH_TOP = 5 };
static void test_disc_at_scan_end(void)
{
    r3d_volume *ct, *t;
    if (!trunk_slab(&ct, &t))
        return;
    int64_t n = r3d_volume_nvox(ct);
    float *f = ct->voxels;
    uint8_t *tv = t->voxels;
    uint32_t st = 4242;
    for (int64_t p = 0; p < n; p++) {
        int64_t i = p % 160, j = (p / 160) % 120, k = p / (160 * 120);
        double x[3];
        ph_pos(ct, i, j, k, x);
        f[p] = -1000;
        if (x[0] * x[0] / (75.0 * 75) + x[1] * x[1] / (55.0 * 55) <= 1) {
            f[p] = 40;
            /* slices: 0-1 disc (its lower half below the scan), 2 endplate,
             * 3-13 marrow, 14 endplate, 15-17 disc, 18 endplate, 19- marrow */
            int disc = k <= 1 || (k >= 15 && k <= 17), plate = k == 2 || k == 14 || k == 18;
            double rv = hypot(x[0], x[1] - 25);
            if (rv <= 16) {
                if (rv > 14)
                    f[p] = 600, tv[p] = D_VERT;
                else if (disc)
                    f[p] = 90, tv[p] = k <= 1 ? D_DISC_END : D_DISC;
                else
                    f[p] = plate ? 500 : 180, tv[p] = D_VERT;
            }
            if (fabs(x[0]) <= 5 && x[1] > 41 && x[1] < 56) { /* spinous process */
                int cortex = fabs(x[0]) > 3.5 || x[1] < 42.5 || x[1] > 54.5;
                f[p] = cortex ? 600 : k % 3 ? 150 : 190; /* trabeculae: not even along the body as blood */
                tv[p] = cortex ? D_VERT : disc && k > 1 ? D_ARCH_DISC : k == 29 ? D_ARCH_TOP : D_VERT;
            }
        }
        f[p] += ph_noise(&st, 12);
    }
    r3d_seg_result res;
    const uint16_t *l = segment_bones(ct, &res);
    if (l) {
        uint16_t vb[4];
        bone_values(vb);
        int64_t disc = 0, disc_bone = 0, end = 0, end_bone = 0, vert = 0, vert_ok = 0;
        int64_t arch = 0, arch_ok = 0, top = 0, top_ok = 0;
        for (int64_t p = 0; p < n; p++) {
            int bone = is_bone(vb, l[p]);
            disc += tv[p] == D_DISC, disc_bone += tv[p] == D_DISC && bone;
            end += tv[p] == D_DISC_END, end_bone += tv[p] == D_DISC_END && bone;
            vert += tv[p] == D_VERT, vert_ok += tv[p] == D_VERT && l[p] == vb[0];
            arch += tv[p] == D_ARCH_DISC, arch_ok += tv[p] == D_ARCH_DISC && l[p] == vb[0];
            top += tv[p] == D_ARCH_TOP, top_ok += tv[p] == D_ARCH_TOP && l[p] == vb[0];
        }
        fprintf(stderr, "  disc as bone %.3f, disc at the scan's end as bone %.3f, vertebrae as spine %.3f, "
                "arch's marrow in the discs' slices as spine %.3f, in the last slice %.3f\n",
                (double)disc_bone / disc, (double)end_bone / end, (double)vert_ok / vert,
                (double)arch_ok / arch, (double)top_ok / top);
        CHECK(disc > 0 && disc_bone <= disc / 5);
        CHECK(end > 0 && end_bone <= end / 5);
        CHECK(vert_ok >= 9 * vert / 10);
        CHECK(arch > 0 && arch_ok >= 7 * arch / 10);
        CHECK(top > 0 && top_ok >= 7 * top / 10);
        r3d_seg_result_free(&res);
    }
    r3d_volume_free(ct), r3d_volume_free(t);
}

/* A calcified plaque in the wall of an unenhanced aorta lying on the
 * vertebral body's front left (1 mm across, 2 mm slices, as the thin-slice
 * abdomen): an arc of the wall facing the body, 1.5 mm thick, 800 HU,
 * parted from the body's cortex by 2.5 mm of soft tissue - on the coarse
 * grid (2 mm) it fuses with the body. It is no bone; the vertebra (body
 * and spinous process) stays spine, and so does, in a disc's slice, the
 * rim of the endplate cut into four arcs (small pieces in front of the
 * slice's largest, but on the body above and below) and a lip of bone
 * (400 HU: cortex, not calcium) parted from the body on its front right. */
enum { P_VERT = 1, P_PLAQUE = 2, P_LIP = 3 };
static void test_aortic_plaque(void)
{
    r3d_volume *ct, *t;
    if (!trunk_slab(&ct, &t))
        return;
    int64_t n = r3d_volume_nvox(ct);
    float *f = ct->voxels;
    uint8_t *tv = t->voxels;
    uint32_t st = 31337;
    /* LPS: +x left, -y anterior; the aorta's centre 29.5 mm from the
     * body's, toward the front left */
    const double ax = 14, ay = -1, ar = 11, bx = 0, by = 25, br = 16;
    for (int64_t p = 0; p < n; p++) {
        int64_t i = p % 160, j = (p / 160) % 120, k = p / (160 * 120);
        double x[3];
        ph_pos(ct, i, j, k, x);
        f[p] = -1000;
        if (x[0] * x[0] / (75.0 * 75) + x[1] * x[1] / (55.0 * 55) <= 1) {
            f[p] = 40;
            double rv = hypot(x[0] - bx, x[1] - by);
            int rim = k == 20; /* the disc's slice: the endplate's rim in four arcs */
            if (rv <= br && !rim)
                f[p] = rv > br - 2 ? 600 : 200, tv[p] = P_VERT;
            if (rv <= br && rim)
                f[p] = 90;
            if (rv <= br && rv > br - 2 && rim && fabs(x[0] - bx) > 2 && fabs(x[1] - by) > 2)
                f[p] = 600, tv[p] = P_VERT;
            if (fabs(x[0]) <= 3 && x[1] > by + br - 1 && x[1] < by + br + 12) /* spinous process */
                f[p] = 600, tv[p] = P_VERT;
            /* the wall's arc within 60 degrees of the line to the body */
            double ra = hypot(x[0] - ax, x[1] - ay);
            double c = ((x[0] - ax) * (bx - ax) + (x[1] - ay) * (by - ay)) /
                       (ra * hypot(bx - ax, by - ay) + 1e-9);
            if (ra > ar - 1.5 && ra <= ar && c >= 0.5 && fabs(x[2]) <= 16)
                f[p] = 800, tv[p] = P_PLAQUE;
            if (hypot(x[0] + 15, x[1] - 9) <= 2.5 && fabs(x[2] - 20) <= 3)
                f[p] = 400, tv[p] = P_LIP;
        }
        f[p] += ph_noise(&st, 12);
    }
    r3d_seg_result res;
    const uint16_t *l = segment_bones(ct, &res);
    if (l) {
        uint16_t vb[4];
        bone_values(vb);
        int64_t plq = 0, plq_bone = 0, vert = 0, vert_ok = 0, rim = 0, rim_ok = 0, lip = 0, lip_ok = 0;
        for (int64_t p = 0; p < n; p++) {
            int bone = is_bone(vb, l[p]);
            /* the rim: slice 20, in front of the spinous process (y < 40 mm) */
            int in_rim = tv[p] == P_VERT && p / (160 * 120) == 20 && (p / 160) % 120 < 99;
            plq += tv[p] == P_PLAQUE, plq_bone += tv[p] == P_PLAQUE && bone;
            vert += tv[p] == P_VERT, vert_ok += tv[p] == P_VERT && l[p] == vb[0];
            rim += in_rim, rim_ok += in_rim && l[p] == vb[0];
            lip += tv[p] == P_LIP, lip_ok += tv[p] == P_LIP && l[p] == vb[0];
        }
        fprintf(stderr, "  aortic plaque as bone %.3f, vertebrae as spine %.3f, endplate rim in front as spine %.3f, "
                "lip as spine %.3f\n",
                (double)plq_bone / plq, (double)vert_ok / vert, (double)rim_ok / rim,
                (double)lip_ok / lip);
        CHECK(plq > 0 && plq_bone <= plq / 10);
        CHECK(vert_ok >= 9 * vert / 10);
        CHECK(rim > 0 && rim_ok >= 8 * rim / 10);
        CHECK(lip > 0 && lip_ok >= 8 * lip / 10);
        r3d_seg_result_free(&res);
    }
    r3d_volume_free(ct), r3d_volume_free(t);
}

/* Costal cartilage, calcified to bone density, running along the front
 * at the lungs' bases (55 mm from them) is not rib; a rib's end in
 * front of a lung still is. The small chest of seg_phantoms.h (2 mm). */
static void test_costal_cartilage(void)
{
    ph_chest o = {0, 1, 0, {0, 0, 0}};
    r3d_volume *ct = ph_chest_ct(&o, NULL);
    CHECK(ct != NULL);
    if (!ct)
        return;
    /* LPS: -y anterior. The body's front is at y = -95, the lungs reach
     * y = -65 and z = -90 (at z = -85 only y = -26). The cartilage is
     * slender and near the skin: a rib by shape, were it not for its place. */
    double c0[3] = {15, -78, -85}, c1[3] = {60, -78, -85}; /* cartilage */
    double r0[3] = {30, -72, 0}, r1[3] = {70, -72, 0};       /* rib's end by the lung */
    ph_capsule(ct, c0, c1, 3, 450);
    ph_capsule(ct, r0, r1, 4, 450);
    r3d_seg_result res;
    const uint16_t *l = segment_bones(ct, &res);
    if (l) {
        uint16_t vb[4];
        bone_values(vb);
        int64_t n = r3d_volume_nvox(ct), cart = 0, cart_bone = 0, rib = 0, rib_ok = 0;
        for (int64_t p = 0; p < n; p++) {
            int64_t i = p % ct->dim[0], j = (p / ct->dim[0]) % ct->dim[1], k = p / (ct->dim[0] * ct->dim[1]);
            double x[3];
            ph_pos(ct, i, j, k, x);
            int bone = is_bone(vb, l[p]);
            double dc = hypot(x[1] + 78, x[2] + 85), dr = hypot(x[1] + 72, x[2]);
            if (x[0] >= 30 && x[0] <= 60 && dc <= 2) /* beside the sternum's 25 mm */
                cart++, cart_bone += bone;
            if (x[0] >= 30 && x[0] <= 70 && dr <= 3)
                rib++, rib_ok += l[p] == vb[1];
        }
        fprintf(stderr, "  cartilage as bone %.3f, rib's end as rib %.3f\n", (double)cart_bone / cart,
                (double)rib_ok / rib);
        CHECK(cart > 0 && cart_bone <= cart / 10);
        CHECK(rib > 0 && rib_ok >= 8 * rib / 10);
        r3d_seg_result_free(&res);
    }
    r3d_volume_free(ct);
}

int main(void)
{
    RUN(test_spine_ribs_aorta);
    RUN(test_calcified_vessel);
    RUN(test_costal_cartilage);
    RUN(test_disc_at_scan_end);
    RUN(test_aortic_plaque);
    return CHECK_DONE("test_seg_bones");
}

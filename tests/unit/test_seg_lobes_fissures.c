/* test_seg_lobes_fissures.c - lobes from the fissures (src/seg/lobes.c,
 * src/seg/fissures.c) on a synthetic lung with a known answer, drawn on the
 * grid seg_lobes works on (2 mm voxels, RAS axes: +j anterior, +k superior,
 * no airway tree):
 *   - a left lung: an ellipsoid of -850 HU parenchyma with a little
 *     deterministic noise;
 *   - a fissure: a thin bright oblique sheet (peak -650 HU, 2 mm wide
 *     profile) through the centre, normal (0, 1, 1) / sqrt 2, as the
 *     oblique fissure runs from posterior-superior to anterior-inferior;
 *   - vessels: soft-tissue tubes (40 HU, 2 mm radius) on both sides of
 *     the sheet, parallel to it, none crossing it.
 * With the sheet the lung splits into the upper lobe (in front of and
 * above the sheet) and the lower lobe, every wrong voxel within two voxels
 * of the sheet; without it no lobes are made and the reason is given. A
 * right lung with a horizontal sheet as well in front of the oblique one
 * gets its three lobes the same way; a right lung cut by the top of the
 * scan (lung bases) with only the oblique sheet gets lower and middle
 * lobes, the whole right lung with only the oblique sheet none. */
#include "check.h"
#include "seg/seg_internal.h"

#include <math.h>
#include <stdlib.h>

#define NX 50
#define NY 70
#define NZ 70
#define SP 2.0

typedef struct phantom {
    r3d_volume *hu, *lung;
    float *d; /* signed distance (mm) to the sheet's plane, + anterior-superior */
} phantom;

static double noise(int64_t p)
{
    uint32_t x = (uint32_t)p * 2654435761u;
    x ^= x >> 13, x *= 0x5bd1e995u, x ^= x >> 15;
    return (double)(x % 1000) / 1000.0 - 0.5;
}

enum { F_SHEET = 1, F_RIGHT = 2, F_HORIZONTAL = 4, F_TOP_CUT = 8 };
#define ZH 16.0 /* the horizontal sheet's height above the centre, mm */

static int build(phantom *p, int flags)
{
    int with_sheet = flags & F_SHEET;
    int64_t dim[4] = {NX, NY, NZ, 1};
    p->hu = r3d_volume_new(dim, R3D_F32, NULL);
    p->lung = r3d_volume_new(dim, R3D_U8, NULL);
    p->d = calloc(NX * NY * NZ, sizeof *p->d);
    if (!p->hu || !p->lung || !p->d)
        return 0;
    for (int a = 0; a < 3; a++) {
        p->hu->ijk_to_lps[a][a] = p->lung->ijk_to_lps[a][a] = SP;
        p->hu->spacing_mm[a] = p->lung->spacing_mm[a] = SP;
    }
    float *h = p->hu->voxels;
    uint8_t *l = p->lung->voxels;
    double c[3] = {NX / 2.0 * SP, NY / 2.0 * SP, NZ / 2.0 * SP}, r[3] = {40, 60, 60};
    double nrm[3] = {0, M_SQRT1_2, M_SQRT1_2};
    /* vessels: lines along x at these (u, v) in the sheet's frame (u along
     * the sheet in the y-z plane, v = signed distance from it) */
    static const double tubes[][2] = {{-25, -14}, {0, -20}, {20, -12}, {-20, 12}, {5, 18}, {25, 10}};
    /* with a horizontal sheet the tubes in front run under or over it, not through */
    static const double tubes_h[][2] = {{-25, -14}, {0, -20}, {20, -12}, {-30, 6}, {-5, 30}, {40, 8}};
    const double(*tb)[2] = flags & F_HORIZONTAL ? tubes_h : tubes;
    for (int64_t k = 0; k < NZ; k++)
        for (int64_t j = 0; j < NY; j++)
            for (int64_t i = 0; i < NX; i++) {
                int64_t q = i + NX * (j + NY * k);
                double x[3] = {i * SP - c[0], j * SP - c[1], k * SP - c[2]};
                double e = 0;
                for (int a = 0; a < 3; a++)
                    e += x[a] * x[a] / (r[a] * r[a]);
                double v = x[1] * nrm[1] + x[2] * nrm[2], u = x[1] * nrm[2] - x[2] * nrm[1];
                p->d[q] = (float)v;
                /* F_TOP_CUT: the scan ends 10 mm below the centre (lung
                 * bases only; the top slices are the lung's last) */
                if (e > 1 || ((flags & F_TOP_CUT) && x[2] > -10)) {
                    h[q] = 40; /* chest wall */
                    continue;
                }
                l[q] = flags & F_RIGHT ? 1 : 2;
                double hv = -850 + 20 * noise(q);
                if (with_sheet)
                    hv += 200 * fmax(0, 1 - fabs(v) / 2.0);
                /* the horizontal fissure: in front of the oblique one only */
                if ((flags & F_HORIZONTAL) && v > 0)
                    hv = fmax(hv, -850 + 20 * noise(q) + 200 * fmax(0, 1 - fabs(x[2] - ZH) / 2.0));
                for (size_t t = 0; t < sizeof tubes / sizeof tubes[0]; t++) {
                    double du = u - tb[t][0], dv = v - tb[t][1], rr = sqrt(du * du + dv * dv);
                    if (rr < 3)
                        hv = fmax(hv, rr < 2 ? 40 : 40 - 890 * (rr - 2));
                }
                h[q] = (float)hv;
            }
    return 1;
}

static void phantom_free(phantom *p)
{
    r3d_volume_free(p->hu), r3d_volume_free(p->lung);
    free(p->d);
}

static r3d_status run(phantom *p, seg_ctx *c, r3d_error *err)
{
    memset(c, 0, sizeof *c);
    c->ct = p->hu;
    c->lo = p->hu;
    c->f[0] = c->f[1] = c->f[2] = 1;
    c->lung_lo = p->lung;
    c->seed = -1;
    return seg_lobes(c, err);
}

static void test_sheet_splits(void)
{
    phantom p;
    seg_ctx c;
    r3d_error err = {0};
    CHECK(build(&p, F_SHEET));
    CHECK_INT(run(&p, &c, &err), R3D_OK);
    CHECK_INT(c.lobe_method[1], SEG_LOBES_FISSURES);
    CHECK_INT(c.lobe_method[0], SEG_LOBES_NONE); /* no right lung */
    CHECK(c.lobe_lo != NULL);
    if (c.lobe_lo) {
        const uint8_t *o = c.lobe_lo->voxels, *l = p.lung->voxels;
        int64_t n = NX * NY * NZ, wrong = 0, far_wrong = 0, tp = 0, nt = 0, nr = 0;
        double worst = 0;
        for (int64_t q = 0; q < n; q++) {
            if (!l[q]) {
                CHECK_INT(o[q], 0);
                continue;
            }
            int want = p.d[q] > 0 ? 4 : 5; /* upper in front of / above the sheet */
            CHECK(o[q] == 4 || o[q] == 5);
            tp += o[q] == 4 && want == 4, nt += o[q] == 4, nr += want == 4;
            if (o[q] != want) {
                wrong++;
                worst = fmax(worst, fabs(p.d[q]));
                far_wrong += fabs(p.d[q]) > 2 * SP;
            }
        }
        /* split at the sheet within two voxels */
        CHECK_INT(far_wrong, 0);
        CHECK(2.0 * tp / (nt + nr) > 0.97);
        fprintf(stderr, "  sheet phantom: %lld wrong voxels (of %lld), farthest %.1f mm from the sheet\n",
                (long long)wrong, (long long)seg_count(p.lung, 0), worst);
    }
    CHECK_CONTAINS(c.lobe_why[1], "oblique fissure found");
    r3d_volume_free(c.lobe_lo);
    phantom_free(&p);
}

static void test_no_sheet_no_lobes(void)
{
    phantom p;
    seg_ctx c;
    r3d_error err = {0};
    CHECK(build(&p, 0));
    CHECK_INT(run(&p, &c, &err), R3D_OK);
    CHECK(c.lobe_lo == NULL);
    CHECK_INT(c.lobe_method[1], SEG_LOBES_NONE);
    CHECK_CONTAINS(c.lobe_why[1], "no oblique fissure seen");
    r3d_volume_free(c.lobe_lo);
    phantom_free(&p);
}

/* The sheet filter alone: strongest on the sheet, with a normal along it,
 * and nothing next to the vessels. */
static void test_sheet_filter(void)
{
    phantom p;
    r3d_error err = {0};
    seg_fissure fs;
    CHECK(build(&p, F_SHEET));
    CHECK_INT(seg_fissure_sheets(p.hu, p.lung, &fs, &err), R3D_OK);
    const float *s = fs.sheet->voxels, *h = p.hu->voxels;
    int64_t n = NX * NY * NZ, on = 0, on_hit = 0, off_hit = 0, aligned = 0;
    double T = seg_fissure_threshold();
    for (int64_t q = 0; q < n; q++) {
        if (s[q] < T)
            continue;
        CHECK(h[q] < -600);
        if (fabs(p.d[q]) <= SP) {
            on_hit++;
            const int8_t *v = fs.normal + 3 * q;
            aligned += fabs(v[1] * M_SQRT1_2 + v[2] * M_SQRT1_2) / 127 > 0.9;
        } else
            off_hit++;
    }
    for (int64_t q = 0; q < n; q++)
        on += ((uint8_t *)p.lung->voxels)[q] && fabs(p.d[q]) <= SP;
    CHECK(on_hit > on / 4);
    CHECK(off_hit < on_hit / 10);
    CHECK(aligned > on_hit * 9 / 10);
    seg_fissure_free(&fs);
    phantom_free(&p);
}

/* A right lung with both fissures: lower lobe behind the oblique sheet,
 * upper above the horizontal one in front of it, middle below. */
static void test_right_two_fissures(void)
{
    phantom p;
    seg_ctx c;
    r3d_error err = {0};
    CHECK(build(&p, F_SHEET | F_RIGHT | F_HORIZONTAL));
    CHECK_INT(run(&p, &c, &err), R3D_OK);
    CHECK_INT(c.lobe_method[0], SEG_LOBES_FISSURES);
    CHECK(c.lobe_lo != NULL);
    if (c.lobe_lo) {
        const uint8_t *o = c.lobe_lo->voxels, *l = p.lung->voxels;
        int64_t far_wrong = 0, n_lung = 0, got[4] = {0};
        for (int64_t k = 0; k < NZ; k++)
            for (int64_t j = 0; j < NY; j++)
                for (int64_t i = 0; i < NX; i++) {
                    int64_t q = i + NX * (j + NY * k);
                    if (!l[q])
                        continue;
                    double z = k * SP - NZ / 2.0 * SP, d = p.d[q];
                    int want = d <= 0 ? 3 : z > ZH ? 1 : 2;
                    if (o[q] >= 1 && o[q] <= 3)
                        got[o[q]]++;
                    /* wrong only next to a sheet: the oblique one, or the
                     * horizontal one in front of the oblique */
                    far_wrong += o[q] != want && fabs(d) > 2 * SP && !(d > 0 && fabs(z - ZH) <= 2 * SP);
                    n_lung++;
                }
        CHECK_INT(far_wrong, 0);
        CHECK(got[1] > 0 && got[2] > 0 && got[3] > 0);
        fprintf(stderr, "  two-fissure phantom: RUL %lld, RML %lld, RLL %lld voxels of %lld\n",
                (long long)got[1], (long long)got[2], (long long)got[3], (long long)n_lung);
    }
    CHECK_CONTAINS(c.lobe_why[0], "horizontal found");
    r3d_volume_free(c.lobe_lo);
    phantom_free(&p);
}

/* Lung bases: the right lung cut by the top of the scan below the
 * horizontal fissure, an oblique sheet in view: lower lobe behind it,
 * middle lobe in front (the named assumption). The same lung not cut
 * (apex in view) with no horizontal sheet: no lobes, and why. */
static void test_right_bases(void)
{
    phantom p;
    seg_ctx c;
    r3d_error err = {0};
    CHECK(build(&p, F_SHEET | F_RIGHT | F_TOP_CUT));
    /* crop the volume at the cut so that the lung touches its top slice */
    int64_t kt = 0;
    const uint8_t *l0 = p.lung->voxels;
    for (int64_t q = 0; q < NX * NY * NZ; q++)
        if (l0[q] && q / (NX * NY) > kt)
            kt = q / (NX * NY);
    int64_t lo[3] = {0, 0, 0}, hi[3] = {NX - 1, NY - 1, kt};
    r3d_volume *hu = seg_crop(p.hu, lo, hi, &err), *lung = seg_crop(p.lung, lo, hi, &err);
    CHECK(hu && lung);
    if (hu && lung) {
        memset(&c, 0, sizeof c);
        c.ct = c.lo = hu;
        c.f[0] = c.f[1] = c.f[2] = 1;
        c.lung_lo = lung;
        CHECK_INT(seg_lobes(&c, &err), R3D_OK);
        CHECK_INT(c.lobe_method[0], SEG_LOBES_FISSURES);
        CHECK_CONTAINS(c.lobe_why[0], "middle lobe in front");
        CHECK(c.lobe_lo != NULL);
        if (c.lobe_lo) {
            const uint8_t *o = c.lobe_lo->voxels, *l = lung->voxels;
            int64_t far_wrong = 0, n = r3d_volume_nvox(lung);
            for (int64_t q = 0; q < n; q++)
                if (l[q]) {
                    int want = p.d[q] > 0 ? 2 : 3;
                    far_wrong += o[q] != want && fabs(p.d[q]) > 2 * SP;
                }
            CHECK_INT(far_wrong, 0);
            CHECK(seg_count(c.lobe_lo, 2) > 0 && seg_count(c.lobe_lo, 3) > 0);
            CHECK_INT(seg_count(c.lobe_lo, 1), 0);
        }
        r3d_volume_free(c.lobe_lo);
    }
    r3d_volume_free(hu), r3d_volume_free(lung);
    phantom_free(&p);
    /* the whole lung in view, no horizontal sheet */
    CHECK(build(&p, F_SHEET | F_RIGHT));
    CHECK_INT(run(&p, &c, &err), R3D_OK);
    CHECK(c.lobe_lo == NULL);
    CHECK_INT(c.lobe_method[0], SEG_LOBES_NONE);
    CHECK_CONTAINS(c.lobe_why[0], "no horizontal fissure seen");
    r3d_volume_free(c.lobe_lo);
    phantom_free(&p);
}

/* The same lobes with one thread and with all of them. */
static void test_threads(void)
{
    phantom p;
    seg_ctx c1, cn;
    r3d_error err = {0};
    CHECK(build(&p, F_SHEET | F_RIGHT | F_HORIZONTAL));
    r3d_set_threads(1);
    CHECK_INT(run(&p, &c1, &err), R3D_OK);
    r3d_set_threads(0);
    CHECK_INT(run(&p, &cn, &err), R3D_OK);
    CHECK(c1.lobe_lo && cn.lobe_lo);
    if (c1.lobe_lo && cn.lobe_lo)
        CHECK(memcmp(c1.lobe_lo->voxels, cn.lobe_lo->voxels, (size_t)r3d_volume_nvox(c1.lobe_lo)) == 0);
    r3d_volume_free(c1.lobe_lo), r3d_volume_free(cn.lobe_lo);
    phantom_free(&p);
}

int main(void)
{
    RUN(test_sheet_filter);
    RUN(test_sheet_splits);
    RUN(test_no_sheet_no_lobes);
    RUN(test_right_two_fissures);
    RUN(test_right_bases);
    RUN(test_threads);
    return CHECK_DONE("test_seg_lobes_fissures");
}

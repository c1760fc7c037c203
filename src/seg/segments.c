/* segments.c - the bronchopulmonary segments as the territories of the
 * segmental bronchi.
 *
 * As lobes.c does for the lobes, one level down: every airway branch below
 * a named segmental bronchus (RB1..RB10, LB1+2, LB3..LB6, LB7+8, LB9, LB10,
 * named in src/analysis/airway_names.c) seeds that segment inside its lobe;
 * every other voxel of the lobe takes the segment of the nearest seed
 * reached through the lobe (geodesic, coarse grid). The territory of a
 * segmental bronchus that was found but not named (or one that leaves a
 * lobar bronchus of which no segment could be named) also takes part, as
 * "unknown": those voxels keep their lobe label rather than being handed to
 * a named neighbour, so a named segment is never grown over a territory
 * the tree cannot tell. The lobar bronchi and the trunks above named
 * segments seed nothing (they lie at the hilum, between segments). A
 * segment appears only if its bronchus was identified; inter-segmental
 * planes are not seen on CT, so boundaries are as good as the depth of the
 * airway tree. */
#include "seg_internal.h"

#include <stdlib.h>
#include <string.h>

/* Segment k (1..SEG_N) <-> bronchus name, lobe (lobes.c numbering) and
 * structure name (structures.c). */
static const struct {
    const char *bronchus;
    int lobe;
    const char *structure;
} k_seg[SEG_N + 1] = {
    {"", 0, ""},
    {"RB1", 1, "lung_segment_right_s1"},
    {"RB2", 1, "lung_segment_right_s2"},
    {"RB3", 1, "lung_segment_right_s3"},
    {"RB4", 2, "lung_segment_right_s4"},
    {"RB5", 2, "lung_segment_right_s5"},
    {"RB6", 3, "lung_segment_right_s6"},
    {"RB7", 3, "lung_segment_right_s7"},
    {"RB8", 3, "lung_segment_right_s8"},
    {"RB9", 3, "lung_segment_right_s9"},
    {"RB10", 3, "lung_segment_right_s10"},
    {"LB1+2", 4, "lung_segment_left_s1_2"},
    {"LB3", 4, "lung_segment_left_s3"},
    {"LB4", 4, "lung_segment_left_s4"},
    {"LB5", 4, "lung_segment_left_s5"},
    {"LB6", 5, "lung_segment_left_s6"},
    {"LB7+8", 5, "lung_segment_left_s7_8"},
    {"LB9", 5, "lung_segment_left_s9"},
    {"LB10", 5, "lung_segment_left_s10"},
};

const char *seg_segment_structure(int k)
{
    return k >= 1 && k <= SEG_N ? k_seg[k].structure : "";
}

int seg_segment_of_name(const char *bronchus)
{
    for (int k = 1; k <= SEG_N; k++)
        if (!strcmp(bronchus, k_seg[k].bronchus))
            return k;
    return 0;
}

int seg_segment_lobe(int k)
{
    return k >= 1 && k <= SEG_N ? k_seg[k].lobe : 0;
}

static int is_lobar(const char *n)
{
    static const char *k[5] = {"RUL", "RML", "RLL", "LUL", "LLL"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(n, k[i]))
            return 1;
    return 0;
}

/* Per branch: its segment (1..SEG_N), SEG_UNKNOWN for a branch in a
 * territory the names do not cover, 0 for a branch that seeds nothing. */
static void branch_segments(const r3d_airway_tree *t, int *seg)
{
    int nb = t->n;
    for (int b = 0; b < nb; b++) {
        seg[b] = 0;
        for (int x = b; x >= 0; x = t->b[x].parent) {
            int k = seg_segment_of_name(t->b[x].name);
            if (k) {
                seg[b] = k;
                break;
            }
        }
    }
    /* A branch with no named segment above it and none below it, whose
     * parent is a lobar bronchus or has a named segment among its
     * descendants: a segmental bronchus left unnamed - unknown territory
     * (and so are its descendants). */
    int *below = calloc((size_t)nb + 1, sizeof *below);
    if (!below)
        return;
    for (int b = nb - 1; b >= 0; b--) /* parents come before children */
        if (seg[b] && t->b[b].parent >= 0)
            below[t->b[b].parent] = 1;
    for (int b = nb - 1; b >= 0; b--)
        if (below[b] && t->b[b].parent >= 0)
            below[t->b[b].parent] = 1;
    for (int b = 0; b < nb; b++) {
        if (seg[b] || below[b] || t->b[b].generation < 2)
            continue;
        int p = t->b[b].parent;
        if (p >= 0 && (below[p] || seg[p] == SEG_UNKNOWN || is_lobar(t->b[p].name)))
            seg[b] = SEG_UNKNOWN;
    }
    free(below);
}

r3d_status seg_segments(seg_ctx *c, r3d_error *err)
{
    if (!c->lobe_lo || !c->branch_of || c->tree.n == 0)
        return R3D_OK;
    int nb = c->tree.n;
    int *seg = malloc((size_t)nb * sizeof *seg);
    if (!seg)
        return r3d_fail(err, R3D_ENOMEM, "segments: out of memory");
    branch_segments(&c->tree, seg);
    int any = 0;
    for (int b = 0; b < nb; b++)
        any |= seg[b] >= 1 && seg[b] <= SEG_N;
    if (!any) {
        free(seg);
        return R3D_OK;
    }
    const r3d_volume *lo = c->lobe_lo, *ct = c->ct;
    int64_t ox = lo->dim[0], oy = lo->dim[1], n = r3d_volume_nvox(lo);
    int64_t nx = ct->dim[0], ny = ct->dim[1], nz = ct->dim[2];
    r3d_volume *lab = r3d_volume_new_like(lo, R3D_U8, err);
    r3d_volume *within = lab ? r3d_volume_new_like(lo, R3D_U8, err) : NULL;
    if (!within) {
        free(seg), r3d_volume_free(lab);
        return err->code;
    }
    uint8_t *o = lab->voxels, *w = within->voxels;
    const uint8_t *lobe = lo->voxels;
    const int32_t *bo = c->branch_of->voxels;
    /* Seeds: the branches' voxels on the coarse grid, inside their lobe
     * (unknown ones inside any lobe: their lobe is not known by name). */
    int seeded[6] = {0};
    for (int64_t k = 0; k < nz; k++)
        for (int64_t j = 0; j < ny; j++)
            for (int64_t i = 0; i < nx; i++) {
                int32_t b = bo[i + nx * (j + ny * k)];
                if (b <= 0 || b > nb || !seg[b - 1])
                    continue;
                int s = seg[b - 1];
                int64_t q = i / c->f[0] + ox * (j / c->f[1] + oy * (k / c->f[2]));
                if (!lobe[q] || lobe[q] > 5 || (s != SEG_UNKNOWN && lobe[q] != k_seg[s].lobe))
                    continue;
                if (!o[q] || s != SEG_UNKNOWN) /* a named seed wins a shared coarse voxel */
                    o[q] = (uint8_t)s;
                if (s != SEG_UNKNOWN)
                    seeded[lobe[q]] = 1;
            }
    int64_t found = 0;
    for (int l = 1; l <= 5; l++) {
        if (!seeded[l])
            continue;
        for (int64_t p = 0; p < n; p++)
            w[p] = lobe[p] == l;
        seg_propagate(lab, within);
    }
    for (int64_t p = 0; p < n; p++) {
        /* unknown territory, and seeds in lobes with no named segment */
        if (o[p] == SEG_UNKNOWN || (o[p] && !seeded[lobe[p] <= 5 ? lobe[p] : 0]))
            o[p] = 0;
        found += o[p] != 0;
    }
    free(seg);
    r3d_volume_free(within);
    if (!found) {
        r3d_volume_free(lab);
        return R3D_OK;
    }
    c->segment_lo = lab;
    return R3D_OK;
}

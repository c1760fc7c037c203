/* lobes.c - the five lung lobes as the territories of the lobar bronchi.
 *
 * Each airway branch below a named lobar bronchus (RUL, RML, RLL, LUL, LLL,
 * named from the tree's directions in src/analysis/airway_names.c) seeds
 * its lobe; every other voxel of the same lung takes the lobe of the
 * nearest seed reached through that lung (geodesic, coarse grid). The
 * fissures are not detected, so a boundary can be off where the
 * sub-segmental airways of two lobes are not both visible. A superior
 * segmental bronchus named where it leaves the intermedius (RB6) seeds the
 * lower lobe like the lobar bronchus's own branches. A lung whose
 * lobar bronchi were not all identified gets no lobes (reported absent),
 * never lobes made up from position. */
#include "seg_internal.h"

#include <stdlib.h>
#include <string.h>

static int lobe_of_name(const char *n)
{
    static const char *k[6] = {"", "RUL", "RML", "RLL", "LUL", "LLL"};
    for (int i = 1; i <= 5; i++)
        if (!strcmp(n, k[i]))
            return i;
    /* a segmental bronchus that leaves above its lobar bronchus (RB6 from
     * the intermedius) still belongs to its lobe */
    return seg_segment_lobe(seg_segment_of_name(n));
}

r3d_status seg_lobes(seg_ctx *c, r3d_error *err)
{
    if (!c->lung_lo || !c->airway || c->tree.n == 0)
        return R3D_OK;
    int nb = c->tree.n;
    int *lobe = calloc((size_t)nb + 1, sizeof *lobe);
    if (!lobe)
        return r3d_fail(err, R3D_ENOMEM, "lobes: out of memory");
    int have[6] = {0};
    for (int b = 0; b < nb; b++) {
        for (int x = b; x >= 0; x = c->tree.b[x].parent) {
            int l = lobe_of_name(c->tree.b[x].name);
            if (l) {
                lobe[b + 1] = l;
                have[l] = 1;
                break;
            }
        }
    }
    int right_ok = have[1] && have[2] && have[3], left_ok = have[4] && have[5];
    if (!right_ok && !left_ok) {
        free(lobe);
        return R3D_OK;
    }
    const r3d_volume *lo = c->lo, *ct = c->ct;
    int64_t ox = lo->dim[0], oy = lo->dim[1], n = r3d_volume_nvox(lo);
    int64_t nx = ct->dim[0], ny = ct->dim[1], nz = ct->dim[2];
    r3d_volume *lab = r3d_volume_new_like(lo, R3D_U8, err);
    r3d_volume *within = lab ? r3d_volume_new_like(lo, R3D_U8, err) : NULL;
    if (!within) {
        free(lobe), r3d_volume_free(lab);
        return err->code;
    }
    uint8_t *o = lab->voxels, *w = within->voxels;
    const uint8_t *lung = c->lung_lo->voxels;
    const int32_t *bo = c->branch_of->voxels;
    for (int64_t k = 0; k < nz; k++)
        for (int64_t j = 0; j < ny; j++)
            for (int64_t i = 0; i < nx; i++) {
                int32_t b = bo[i + nx * (j + ny * k)];
                if (b <= 0 || b > nb || !lobe[b])
                    continue;
                int64_t q = i / c->f[0] + ox * (j / c->f[1] + oy * (k / c->f[2]));
                int l = lobe[b];
                int side = l <= 3 ? 1 : 2;
                if (lung[q] == side && ((side == 1 && right_ok) || (side == 2 && left_ok)))
                    o[q] = (uint8_t)l;
            }
    for (int side = 1; side <= 2; side++) {
        if ((side == 1 && !right_ok) || (side == 2 && !left_ok))
            continue;
        for (int64_t p = 0; p < n; p++)
            w[p] = lung[p] == side;
        seg_propagate(lab, within);
    }
    free(lobe);
    r3d_volume_free(within);
    c->lobe_lo = lab;
    return R3D_OK;
}

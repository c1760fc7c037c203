/* vessels.c - pulmonary vessels: blood-dense voxels inside the lungs that
 * are not airway wall, in pieces of at least 10 voxels (full grid). */
#include "seg_internal.h"

#include <math.h>
#include <string.h>

#define VESSEL_HU -500.0

r3d_status seg_vessels(seg_ctx *c, r3d_error *err)
{
    if (!c->lung_lo)
        return R3D_OK;
    const r3d_volume *ct = c->ct;
    int64_t n = r3d_volume_nvox(ct);
    /* Stay off the chest wall: one coarse voxel in from the lung's edge
     * (eroded on the coarse grid, then brought to the full grid). */
    r3d_volume *ll = r3d_volume_new_like(c->lo, R3D_U8, err);
    if (!ll)
        return err->code;
    const uint8_t *lv = c->lung_lo->voxels;
    uint8_t *lw = ll->voxels;
    for (int64_t p = 0; p < r3d_volume_nvox(ll); p++)
        lw[p] = lv[p] != 0;
    r3d_volume *er = r3d_image_erode(ll, 1.01 * fmax(c->lo->spacing_mm[0], c->lo->spacing_mm[2]), err);
    r3d_volume_free(ll);
    r3d_volume *inner = er ? r3d_volume_new_like(ct, R3D_U8, err) : NULL;
    if (!inner) {
        r3d_volume_free(er);
        return err->code;
    }
    seg_upsample_into(er, c->f, inner);
    r3d_volume_free(er);
    r3d_volume *wall = NULL;
    if (c->airway) {
        r3d_volume *aw = r3d_volume_new_like(ct, R3D_U8, err);
        if (!aw) {
            r3d_volume_free(inner);
            return err->code;
        }
        const uint8_t *a = c->airway->voxels;
        uint8_t *w = aw->voxels;
        for (int64_t p = 0; p < n; p++)
            w[p] = a[p] != 0;
        wall = seg_in_box(aw, (int)ceil(2.0 / fmin(ct->spacing_mm[0], ct->spacing_mm[2])) + 1,
                          SEG_DILATE, 2.0, err);
        r3d_volume_free(aw);
        if (!wall) {
            r3d_volume_free(inner);
            return err->code;
        }
    }
    uint8_t *v = inner->voxels;
    const float *hu = ct->voxels;
    const uint8_t *wl = wall ? wall->voxels : NULL;
    for (int64_t p = 0; p < n; p++)
        v[p] = v[p] && hu[p] >= VESSEL_HU && !(wl && wl[p]);
    r3d_volume_free(wall);
    int64_t lo[3], hi[3];
    if (seg_box(inner, 1, lo, hi)) {
        r3d_volume *box = seg_crop(inner, lo, hi, err);
        r3d_status st = box ? seg_drop_small(box, 26, 10, err) : err->code;
        if (st != R3D_OK) {
            r3d_volume_free(box), r3d_volume_free(inner);
            return st;
        }
        seg_paste(box, inner, lo);
        r3d_volume_free(box);
    }
    c->vessels = inner;
    return R3D_OK;
}

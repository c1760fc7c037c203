/* bones.c - the skeleton (coarse grid) and its parts.
 *
 * Bone is found by hysteresis: voxels above 160 HU that lie within 8 mm of
 * cortical bone (above 350 HU), in components that hold cortical bone and
 * at least 0.2 mL, which keeps contrast-filled vessels and calcified
 * specks out. Parts, from position in each axial slice relative to the
 * body's centre (RAS grid: -i left, +j anterior):
 *   spine   - within 35 mm of the midline and behind the body's centre;
 *   sternum - within 25 mm of the midline, in front of it, at lung level;
 *   ribs    - the other pieces (3D components after spine and sternum are
 *             taken out) that come within 15 mm of a lung;
 *   bones   - the rest (shoulder girdle, arms, pelvis, legs, skull).
 * Vertebra and rib numbering are not attempted. */
#include "seg_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BONE_WEAK_HU 160.0
#define BONE_STRONG_HU 350.0

r3d_status seg_bones(seg_ctx *c, r3d_error *err)
{
    const r3d_volume *lo = c->lo;
    int64_t nx = lo->dim[0], ny = lo->dim[1], nz = lo->dim[2], ns = nx * ny, n = ns * nz;
    const float *hu = lo->voxels;
    const uint8_t *body = c->body_lo->voxels;
    r3d_volume *strong = seg_like(lo, R3D_U8, err);
    if (!strong)
        return err->code;
    uint8_t *s = strong->voxels;
    for (int64_t p = 0; p < n; p++)
        s[p] = body[p] && hu[p] >= BONE_STRONG_HU;
    r3d_volume *near = r3d_image_dilate(strong, 8.0, err);
    if (!near) {
        r3d_volume_free(strong);
        return err->code;
    }
    r3d_volume *bone = seg_like(lo, R3D_U8, err);
    if (!bone) {
        r3d_volume_free(strong), r3d_volume_free(near);
        return err->code;
    }
    uint8_t *b = bone->voxels;
    const uint8_t *nr = near->voxels;
    for (int64_t p = 0; p < n; p++)
        b[p] = body[p] && nr[p] && hu[p] >= BONE_WEAK_HU;
    r3d_volume_free(near);
    int64_t nc = 0, *sizes = NULL;
    r3d_volume *cc = r3d_image_components(bone, 26, &nc, &sizes, err);
    if (!cc) {
        r3d_volume_free(strong), r3d_volume_free(bone);
        return err->code;
    }
    uint8_t *has_strong = calloc((size_t)nc + 1, 1);
    const uint32_t *l = cc->voxels;
    if (!has_strong) {
        free(sizes), r3d_volume_free(cc), r3d_volume_free(strong), r3d_volume_free(bone);
        return r3d_fail(err, R3D_ENOMEM, "bones: out of memory");
    }
    for (int64_t p = 0; p < n; p++)
        if (l[p] && s[p])
            has_strong[l[p]] = 1;
    double vml = seg_voxel_ml(lo);
    for (int64_t p = 0; p < n; p++)
        if (l[p] && (!has_strong[l[p]] || sizes[l[p]] * vml < 0.2))
            b[p] = 0;
    free(has_strong), free(sizes);
    r3d_volume_free(cc), r3d_volume_free(strong);

    /* Lung extent in k, and each slice's body centre. */
    int64_t lk0 = nz, lk1 = -1;
    const uint8_t *lung = c->lung_lo ? c->lung_lo->voxels : NULL;
    if (lung)
        for (int64_t p = 0; p < n; p++)
            if (lung[p]) {
                int64_t k = p / ns;
                if (k < lk0) lk0 = k;
                if (k > lk1) lk1 = k;
            }
    double sx = lo->spacing_mm[0], sy = lo->spacing_mm[1];
    for (int64_t k = 0; k < nz; k++) {
        double si = 0, sj = 0, cnt = 0;
        for (int64_t p = 0; p < ns; p++)
            if (body[ns * k + p])
                si += p % nx, sj += p / nx, cnt++;
        if (!cnt)
            continue;
        double ci = si / cnt, cj = sj / cnt;
        int at_lungs = k >= lk0 && k <= lk1;
        for (int64_t p = 0; p < ns; p++) {
            uint8_t *v = &b[ns * k + p];
            if (!*v)
                continue;
            double dx = (p % nx - ci) * sx, dy = (p / nx - cj) * sy; /* +dy anterior */
            if (fabs(dx) < 35 && dy < 0)
                *v = 1;
            else if (at_lungs && fabs(dx) < 25 && dy > 0)
                *v = 3;
            else
                *v = 4;
        }
    }
    /* Ribs: pieces of "other" bone near a lung. */
    if (lung) {
        r3d_volume *lm = seg_like(lo, R3D_U8, err);
        r3d_volume *other = lm ? seg_like(lo, R3D_U8, err) : NULL;
        if (!other) {
            r3d_volume_free(lm), r3d_volume_free(bone);
            return err->code;
        }
        uint8_t *lv = lm->voxels, *ov = other->voxels;
        for (int64_t p = 0; p < n; p++)
            lv[p] = lung[p] != 0, ov[p] = b[p] == 4;
        r3d_volume *ld = r3d_image_dilate(lm, 15.0, err);
        r3d_volume_free(lm);
        r3d_volume *oc = ld ? r3d_image_components(other, 26, &nc, NULL, err) : NULL;
        r3d_volume_free(other);
        if (!oc) {
            r3d_volume_free(ld), r3d_volume_free(bone);
            return err->code;
        }
        uint8_t *near_lung = calloc((size_t)nc + 1, 1);
        if (!near_lung) {
            r3d_volume_free(ld), r3d_volume_free(oc), r3d_volume_free(bone);
            return r3d_fail(err, R3D_ENOMEM, "bones: out of memory");
        }
        const uint32_t *ol = oc->voxels;
        const uint8_t *dv = ld->voxels;
        for (int64_t p = 0; p < n; p++)
            if (ol[p] && dv[p])
                near_lung[ol[p]] = 1;
        for (int64_t p = 0; p < n; p++)
            if (ol[p] && near_lung[ol[p]])
                b[p] = 2;
        free(near_lung);
        r3d_volume_free(ld), r3d_volume_free(oc);
    }
    c->bone_lo = bone;
    return R3D_OK;
}

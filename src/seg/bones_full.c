/* bones_full.c - the skeleton's labels on the full grid.
 *
 * seg_bones finds and names bone on the coarse grid (about 2 mm), where a
 * rib is a voxel or two thick: replicated to the full grid, every edge is
 * a staircase, a thin rib's edge blocks averaged below the threshold are
 * lost, and its marrow (or a long bone's fatty marrow) is a hole. So, on
 * the full grid:
 *   1. each coarse label is grown by one coarse voxel (nearest label
 *      through the grown region), so an edge lost to averaging is in reach
 *      - but not into what seg_bones took out (bone_out_lo: the aorta);
 *   2. a full voxel keeps its label when it is bone-dense (BONE_EDGE_HU),
 *      or when its coarse voxel lies in the coarse bone's core (all six
 *      neighbours bone: marrow fainter than the edge) and it is not fat
 *      (BONE_CORE_HU);
 *   3. each label's axial holes are filled - marrow: any hole of a rib,
 *      the sternum or another bone up to HOLE_MAX_MM2 whose mean HU is
 *      above HOLE_FAT_HU (fatty marrow, not air; a rib's or the sternum's
 *      up to RIB_HOLE_MAX_MM2), and a vertebra's holes
 *      only when denser than MARROW_HU (the spinal canal, CSF and cord,
 *      stays out). The skull's hole is the brain: not filled.
 * On a grid that is its own coarse grid (f = 1) only step 3 runs on labels
 * other than the spine and ribs (seg_bones filled those). */
#include "seg_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BONE_EDGE_HU 150.0
#define BONE_CORE_HU 0.0
#define MARROW_HU 60.0
#define HOLE_FAT_HU -150.0
#define RIB_HOLE_MAX_MM2 400.0
#define HOLE_MAX_MM2 1000.0

/* Fill, in every axial slice of lab (uint8), the holes of label `value`:
 * 4-connected pieces of other voxels, not touching the slice's edge and
 * enclosed by `value` alone, of mean HU >= min_hu and area <= max_mm2. */
static int fill_holes_of(uint8_t *lab, const float *hu, int64_t nx, int64_t ny, int64_t nz,
                         double sx, double sy, uint8_t value, double min_hu, double max_mm2)
{
    int64_t ns = nx * ny;
    uint8_t *seen = malloc((size_t)ns);
    int64_t *q = malloc((size_t)ns * sizeof *q);
    if (!seen || !q) {
        free(seen), free(q);
        return 0;
    }
    for (int64_t k = 0; k < nz; k++) {
        uint8_t *s = lab + ns * k;
        const float *h = hu + ns * k;
        int any = 0;
        for (int64_t p = 0; p < ns && !any; p++)
            any = s[p] == value;
        if (!any)
            continue;
        memset(seen, 0, (size_t)ns);
        for (int64_t p0 = 0; p0 < ns; p0++) {
            if (s[p0] == value || seen[p0])
                continue;
            int64_t hd = 0, t = 0;
            int open = 0;
            double sum = 0;
            q[t++] = p0;
            seen[p0] = 1;
            while (hd < t) {
                int64_t p = q[hd++], i = p % nx, j = p / nx;
                sum += h[p];
                if (i == 0 || j == 0 || i == nx - 1 || j == ny - 1)
                    open = 1;
                int64_t nb[4] = {i > 0 ? p - 1 : -1, i < nx - 1 ? p + 1 : -1,
                                 j > 0 ? p - nx : -1, j < ny - 1 ? p + nx : -1};
                for (int d = 0; d < 4; d++)
                    if (nb[d] >= 0 && !seen[nb[d]] && s[nb[d]] != value) {
                        seen[nb[d]] = 1;
                        q[t++] = nb[d];
                    }
            }
            if (open || sum / t < min_hu || t * sx * sy > max_mm2)
                continue;
            for (int64_t x = 0; x < t; x++)
                if (!s[q[x]])
                    s[q[x]] = value;
        }
    }
    free(seen), free(q);
    return 1;
}

r3d_status seg_bones_full(const seg_ctx *c, r3d_volume *out, r3d_error *err)
{
    const r3d_volume *bl = c->bone_lo, *ct = c->ct;
    int64_t bx = bl->dim[0], by = bl->dim[1], bz = bl->dim[2], bs = bx * by, nb = bs * bz;
    int64_t nx = ct->dim[0], ny = ct->dim[1], nz = ct->dim[2], n = nx * ny * nz;
    const uint8_t *bv = bl->voxels;
    const float *hu = ct->voxels;
    uint8_t *o = out->voxels;
    int full = c->f[0] * c->f[1] * c->f[2] == 1;
    if (full) {
        memcpy(o, bv, (size_t)n);
    } else {
        /* 1. Labels grown by one coarse voxel; bit 0x80 marks the core. */
        r3d_volume *m = r3d_volume_new_like(bl, R3D_U8, err);
        r3d_volume *grown = NULL, *lab = NULL;
        if (!m)
            return err->code;
        uint8_t *mv = m->voxels;
        const uint8_t *outv = c->bone_out_lo ? c->bone_out_lo->voxels : NULL;
        for (int64_t p = 0; p < nb; p++)
            mv[p] = bv[p] != 0;
        grown = r3d_image_dilate(m, 1.01 * fmax(bl->spacing_mm[0], bl->spacing_mm[1]), err);
        if (grown && outv) {
            uint8_t *gv = grown->voxels;
            for (int64_t p = 0; p < nb; p++)
                if (outv[p] && !bv[p])
                    gv[p] = 0;
        }
        lab = grown ? r3d_volume_new_like(bl, R3D_U8, err) : NULL;
        if (!lab) {
            r3d_volume_free(m), r3d_volume_free(grown);
            return err->code;
        }
        uint8_t *lv = lab->voxels;
        memcpy(lv, bv, (size_t)nb);
        seg_propagate(lab, grown);
        r3d_volume_free(grown);
        for (int64_t p = 0; p < nb; p++) {
            if (!bv[p])
                continue;
            int64_t i = p % bx, j = (p / bx) % by, k = p / bs;
            int in = i > 0 && i < bx - 1 && j > 0 && j < by - 1 && k > 0 && k < bz - 1 &&
                     bv[p - 1] && bv[p + 1] && bv[p - bx] && bv[p + bx] && bv[p - bs] &&
                     bv[p + bs];
            if (in)
                lv[p] |= 0x80;
        }
        r3d_volume_free(m);
        /* 2. The edge at full resolution. */
        seg_upsample_into(lab, c->f, out);
        r3d_volume_free(lab);
        for (int64_t p = 0; p < n; p++) {
            uint8_t x = o[p] & 0x7f;
            o[p] = x && x <= 6 &&
                           (hu[p] >= BONE_EDGE_HU || ((o[p] & 0x80) && hu[p] >= BONE_CORE_HU))
                       ? x
                       : 0;
        }
    }
    /* 3. Marrow. */
    double sx = ct->spacing_mm[0], sy = ct->spacing_mm[1];
    static const struct {
        uint8_t value;
        double min_hu, max_mm2;
        int coarse_done;
    } fill[] = {{1, MARROW_HU, HOLE_MAX_MM2, 1},
                {2, HOLE_FAT_HU, RIB_HOLE_MAX_MM2, 1},
                {3, HOLE_FAT_HU, RIB_HOLE_MAX_MM2, 0},
                {4, HOLE_FAT_HU, HOLE_MAX_MM2, 0}};
    for (size_t x = 0; x < sizeof fill / sizeof fill[0]; x++) {
        if (full && fill[x].coarse_done)
            continue;
        if (!fill_holes_of(o, hu, nx, ny, nz, sx, sy, fill[x].value, fill[x].min_hu,
                           fill[x].max_mm2))
            return r3d_fail(err, R3D_ENOMEM, "bones: out of memory");
    }
    return R3D_OK;
}

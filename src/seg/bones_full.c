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
 *   2. a full voxel keeps its label when it is bone-dense (BONE_EDGE_HU;
 *      a vertebra's SEG_SPINE_EDGE_HU, seg_internal.h: its cortex is
 *      thick, and the edge at half height between cortex and muscle lies
 *      higher than a rib's),
 *      or when its coarse voxel lies in the coarse bone's core (all six
 *      neighbours bone: marrow fainter than the edge) and it is not fat
 *      (BONE_CORE_HU);
 *   3. each label's holes are filled (axial slices; for all but the spine
 *      coronal and sagittal too) - marrow: any hole of a rib,
 *      the sternum or another bone up to HOLE_MAX_MM2 whose mean HU is
 *      above HOLE_FAT_HU (fatty marrow, not air; a rib's or the sternum's
 *      up to RIB_HOLE_MAX_MM2), and a vertebra's holes
 *      only when denser than MARROW_HU (the spinal canal, CSF and cord,
 *      stays out). The skull's hole is the brain: not filled. Nothing
 *      seg_bones took out (bone_out_lo: the aorta, discs) is filled.
 * On a grid that is its own coarse grid (f = 1) steps 1-2 are replaced by
 * a rib's partial-volume edge (voxels of 2.5 mm or more: face neighbours
 * of a rib above RIB_EDGE_HU join it), and step 3 runs on labels other
 * than the spine and ribs (seg_bones filled those). */
#include "seg_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BONE_EDGE_HU 150.0
#define BONE_CORE_HU 0.0
#define RIB_EDGE_HU 130.0
#define MARROW_HU 60.0
#define HOLE_FAT_HU -150.0
#define RIB_HOLE_MAX_MM2 400.0
#define HOLE_MAX_MM2 1000.0

/* Fill, in every slice normal to axis `axis` of lab (uint8, dims d,
 * spacing sp), the holes of label `value`: 4-connected pieces of other
 * voxels, not touching the slice's edge and enclosed by `value` alone,
 * of mean HU >= min_hu and area <= max_mm2; voxels marked in keep_out
 * (may be NULL) stay as they are. */
static int fill_holes_of(uint8_t *lab, const float *hu, const uint8_t *keep_out,
                         const int64_t d[3], const double sp[3], int axis, uint8_t value,
                         double min_hu, double max_mm2)
{
    int a = axis == 0 ? 1 : 0, b = axis == 2 ? 1 : 2; /* the slice's two axes */
    int64_t stride[3] = {1, d[0], d[0] * d[1]};
    int64_t na = d[a], nbb = d[b];
    int64_t sa = stride[a], sb = stride[b];
    double px = sp[a] * sp[b];
    uint8_t *seen = malloc((size_t)(na * nbb));
    int64_t *q = malloc((size_t)(na * nbb) * sizeof *q);
    if (!seen || !q) {
        free(seen), free(q);
        return 0;
    }
    for (int64_t c = 0; c < d[axis]; c++) {
        int64_t base = c * stride[axis];
        /* The label's box in this slice: a hole lies strictly inside it,
         * so only the box is flooded and its edge counts as open. */
        int64_t i0 = na, i1 = -1, j0 = nbb, j1 = -1;
        for (int64_t j = 0; j < nbb; j++)
            for (int64_t i = 0; i < na; i++)
                if (lab[base + i * sa + j * sb] == value) {
                    if (i < i0) i0 = i;
                    if (i > i1) i1 = i;
                    if (j < j0) j0 = j;
                    if (j > j1) j1 = j;
                }
        if (i1 - i0 < 2 || j1 - j0 < 2)
            continue;
        int64_t wa = i1 - i0 + 1, wb = j1 - j0 + 1, nw = wa * wb;
#define AT(u) (base + (i0 + (u) % wa) * sa + (j0 + (u) / wa) * sb) /* window -> voxel */
        memset(seen, 0, (size_t)nw);
        for (int64_t u0 = 0; u0 < nw; u0++) {
            if (seen[u0] || lab[AT(u0)] == value)
                continue;
            int64_t hd = 0, t = 0;
            int open = 0;
            double sum = 0;
            q[t++] = u0;
            seen[u0] = 1;
            while (hd < t) {
                int64_t u = q[hd++], i = u % wa, j = u / wa;
                sum += hu[AT(u)];
                if (i == 0 || j == 0 || i == wa - 1 || j == wb - 1)
                    open = 1;
                int64_t nb[4] = {i > 0 ? u - 1 : -1, i < wa - 1 ? u + 1 : -1,
                                 j > 0 ? u - wa : -1, j < wb - 1 ? u + wa : -1};
                for (int e = 0; e < 4; e++)
                    if (nb[e] >= 0 && !seen[nb[e]] && lab[AT(nb[e])] != value) {
                        seen[nb[e]] = 1;
                        q[t++] = nb[e];
                    }
            }
            if (open || sum / t < min_hu || t * px > max_mm2)
                continue;
            for (int64_t x = 0; x < t; x++)
                if (!lab[AT(q[x])] && !(keep_out && keep_out[AT(q[x])]))
                    lab[AT(q[x])] = value;
        }
#undef AT
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
        /* Coarse voxels of 2.5 mm and more: a rib is two or three voxels
         * across, and its edge voxels, half bone, half muscle, fall below
         * the 160 HU it was found with; its face neighbours above
         * RIB_EDGE_HU join it. */
        memcpy(o, bv, (size_t)n);
        if (fmin(ct->spacing_mm[0], ct->spacing_mm[1]) >= 2.5)
            for (int64_t p = 0; p < n; p++) {
                if (o[p] || hu[p] < RIB_EDGE_HU)
                    continue;
                int64_t i = p % nx, j = (p / nx) % ny, k = p / (nx * ny), s = nx * ny;
                if ((i > 0 && bv[p - 1] == 2) || (i < nx - 1 && bv[p + 1] == 2) ||
                    (j > 0 && bv[p - nx] == 2) || (j < ny - 1 && bv[p + nx] == 2) ||
                    (k > 0 && bv[p - s] == 2) || (k < nz - 1 && bv[p + s] == 2))
                    o[p] = 2;
            }
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
                           (hu[p] >= (x == 1 ? SEG_SPINE_EDGE_HU : BONE_EDGE_HU) || ((o[p] & 0x80) && hu[p] >= BONE_CORE_HU))
                       ? x
                       : 0;
        }
    }
    /* 3. Marrow: in axial slices, and for the ribs, the sternum and other
     * bone in the other two planes too (a rib running across the slice,
     * as behind the lungs, has its marrow enclosed only in its own cross
     * section). */
    int64_t d[3] = {nx, ny, nz};
    const r3d_volume *ko = c->bone_out_lo;
    r3d_volume *owned = NULL;
    if (ko && !full) {
        if (!(owned = r3d_volume_new_like(ct, R3D_U8, err)))
            return err->code;
        seg_upsample_into(ko, c->f, owned);
        ko = owned;
    }
    const uint8_t *kov = ko ? ko->voxels : NULL;
    r3d_status st = R3D_OK;
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
        for (int axis = 2; axis >= (fill[x].value == 1 ? 2 : 0) && st == R3D_OK; axis--)
            if (!fill_holes_of(o, hu, kov, d, ct->spacing_mm, axis, fill[x].value,
                               fill[x].min_hu, fill[x].max_mm2))
                st = r3d_fail(err, R3D_ENOMEM, "bones: out of memory");
    }
    r3d_volume_free(owned);
    return st;
}

void seg_bones_full_params(cJSON *par)
{
    cJSON_AddNumberToObject(par, "bone_edge_hu", BONE_EDGE_HU);
    cJSON_AddNumberToObject(par, "spine_edge_hu", SEG_SPINE_EDGE_HU);
    cJSON_AddNumberToObject(par, "rib_edge_hu", RIB_EDGE_HU);
}

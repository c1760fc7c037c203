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
 *      neighbours bone - in the scan's end slices those in view: marrow
 *      fainter than the edge) and it is not fat
 *      (BONE_CORE_HU);
 *   2b. the aorta's calcified wall, fused with a vertebral body on the
 *      coarse grid, is parted from it: small dense pieces of the spine in
 *      front of the vertebra that lie on no section of it above or below
 *      leave the bone (drop_plaques);
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
 * than the spine and ribs (seg_bones filled those); step 2b runs on both. */
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
#define PLAQUE_MAX_MM2 100.0
#define PLAQUE_REACH_MM 4.0
#define PLAQUE_PEAK_HU 600.0

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

/* The 8-connected pieces of the spine label (value 1 under bit 0x80) in
 * slice s (nx x ny, HU h): piece numbers 1.. into id, each piece's voxel
 * count, sum of j and peak HU into pc (grown as needed). Returns the
 * number of pieces, -1 when out of memory. */
typedef struct pieces {
    int64_t cap, *cnt;
    double *jsum, *peak;
} pieces;

static int32_t spine_pieces(const uint8_t *s, const float *h, int64_t nx, int64_t ny, int32_t *id,
                            int64_t *q, pieces *pc)
{
    int32_t np = 0;
    memset(id, 0, (size_t)(nx * ny) * sizeof *id);
    for (int64_t p0 = 0; p0 < nx * ny; p0++) {
        if ((s[p0] & 0x7f) != 1 || id[p0])
            continue;
        if (np == pc->cap) {
            int64_t cap = pc->cap ? 2 * pc->cap : 64, *c2 = realloc(pc->cnt, (size_t)cap * sizeof *c2);
            if (c2)
                pc->cnt = c2;
            double *j2 = c2 ? realloc(pc->jsum, (size_t)cap * sizeof *j2) : NULL;
            if (j2)
                pc->jsum = j2;
            double *h2 = j2 ? realloc(pc->peak, (size_t)cap * sizeof *h2) : NULL;
            if (!h2)
                return -1;
            pc->peak = h2, pc->cap = cap;
        }
        int64_t hd = 0, t = 0;
        double js = 0, pk = h[p0];
        id[p0] = ++np;
        q[t++] = p0;
        while (hd < t) {
            int64_t p = q[hd++], i = p % nx, j = p / nx;
            js += (double)j;
            pk = fmax(pk, h[p]);
            for (int64_t dj = -1; dj <= 1; dj++)
                for (int64_t di = -1; di <= 1; di++) {
                    int64_t a = i + di, b = j + dj, u = b * nx + a;
                    if (a >= 0 && a < nx && b >= 0 && b < ny && (s[u] & 0x7f) == 1 && !id[u]) {
                        id[u] = np;
                        q[t++] = u;
                    }
                }
        }
        pc->cnt[np - 1] = t, pc->jsum[np - 1] = js, pc->peak[np - 1] = pk;
    }
    return np;
}

/* Calcified plaques of the aorta's wall beside a vertebral body: the
 * aorta lies on the body's front left, and a plaque in its wall, fused
 * with the body on the coarse grid, is `spine` there. On the full grid a
 * layer of fat and the wall part it from the body's cortex. A vertebra's
 * bone in an axial slice is its main section (body, arch) or, where that
 * section is cut up - the rim of an endplate in a disc's slice, the arch
 * parted by the foramina - lies on a main section in a slice just above or
 * below. So: pieces of the spine label (8-connected, per axial slice) of
 * at least PLAQUE_MAX_MM2 are sections (a vertebral body's is 3-15 cm^2);
 * a smaller piece centred in front of its slice's largest (+j anterior),
 * peaking at PLAQUE_PEAK_HU or more, goes out of the bone unless at least
 * half of its voxels are within a voxel (in the slice's plane) of a
 * section within PLAQUE_REACH_MM above or below. The peak: calcium in a
 * plaque blooms to 600-1 300 HU (TotalSegmentator's DICOM example, 0.98 x
 * 2 mm), a small fragment of a vertebra cut by the slice stays below it
 * (260-560 HU: bits of C7-T1's processes on the chest CT, where a 2 mm
 * reach alone took 0.3 mL of them). On the DICOM example this takes out
 * 485 voxels, none of them vertebra in its reference; on the chest CT one
 * calcification in the mediastinum (13 voxels). Returns 0 when out of
 * memory. */
static int drop_plaques(uint8_t *o, const float *hu, const int64_t d[3], const double sp[3])
{
    int64_t nx = d[0], ny = d[1], ns = nx * ny;
    int32_t *id = malloc((size_t)ns * sizeof *id);
    int64_t *q = malloc((size_t)ns * sizeof *q);
    pieces pc = {0, NULL, NULL, NULL};
    int ok = id && q;
    double px = sp[0] * sp[1];
    int64_t reach = (int64_t)fmax(1, floor(PLAQUE_REACH_MM / sp[2] + 0.5));
    /* 1. Sections: bit 0x80. */
    for (int64_t k = 0; ok && k < d[2]; k++) {
        uint8_t *s = o + k * ns;
        int32_t np = spine_pieces(s, hu + k * ns, nx, ny, id, q, &pc);
        ok = np >= 0;
        for (int64_t p = 0; ok && p < ns; p++)
            if (id[p] && pc.cnt[id[p] - 1] * px >= PLAQUE_MAX_MM2)
                s[p] |= 0x80;
    }
    /* 2. Small pieces in front, on no section above or below. */
    for (int64_t k = 0; ok && k < d[2]; k++) {
        uint8_t *s = o + k * ns;
        int32_t np = spine_pieces(s, hu + k * ns, nx, ny, id, q, &pc);
        if ((ok = np >= 0) == 0 || np < 2)
            continue;
        int32_t big = 0;
        for (int32_t x = 1; x < np; x++)
            if (pc.cnt[x] > pc.cnt[big])
                big = x;
        double jc = pc.jsum[big] / pc.cnt[big];
        /* jsum now counts the voxels on a section above or below */
        for (int32_t x = 0; x < np; x++) {
            int front = pc.cnt[x] * px < PLAQUE_MAX_MM2 && pc.jsum[x] / pc.cnt[x] > jc &&
                        pc.peak[x] >= PLAQUE_PEAK_HU;
            pc.jsum[x] = front ? 0 : -1;
        }
        for (int64_t p = 0; p < ns; p++) {
            if (!id[p] || pc.jsum[id[p] - 1] < 0)
                continue;
            int64_t i = p % nx, j = p / nx, on = 0;
            for (int64_t dk = -reach; dk <= reach && !on; dk++)
                for (int64_t dj = -1; dj <= 1 && dk && k + dk >= 0 && k + dk < d[2]; dj++)
                    for (int64_t di = -1; di <= 1; di++)
                        if (i + di >= 0 && i + di < nx && j + dj >= 0 && j + dj < ny &&
                            (o[p + (k + dk) * ns + dj * nx + di] & 0x80))
                            on = 1;
            pc.jsum[id[p] - 1] += on;
        }
        for (int64_t p = 0; p < ns; p++)
            if (id[p] && pc.jsum[id[p] - 1] >= 0 && 2 * pc.jsum[id[p] - 1] < pc.cnt[id[p] - 1])
                s[p] = 0;
    }
    for (int64_t p = 0; p < ns * d[2]; p++)
        o[p] &= 0x7f;
    free(id), free(q), free(pc.cnt), free(pc.jsum), free(pc.peak);
    return ok;
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
            /* In the scan's first and last slices only the neighbour in
             * view counts: the scan's end does not make marrow fat (a
             * spinous process's marrow there, open in the slice where its
             * cortex is cut obliquely, was lost - dicom vertebrae). */
            int64_t i = p % bx, j = (p / bx) % by, k = p / bs;
            int in = i > 0 && i < bx - 1 && j > 0 && j < by - 1 && bv[p - 1] && bv[p + 1] &&
                     bv[p - bx] && bv[p + bx] && (k == 0 || bv[p - bs]) &&
                     (k == bz - 1 || bv[p + bs]);
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
    if (!drop_plaques(o, hu, d, ct->spacing_mm))
        st = r3d_fail(err, R3D_ENOMEM, "bones: out of memory");
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
    cJSON_AddNumberToObject(par, "plaque_max_mm2", PLAQUE_MAX_MM2);
    cJSON_AddNumberToObject(par, "plaque_peak_hu", PLAQUE_PEAK_HU);
    cJSON_AddNumberToObject(par, "plaque_reach_mm", PLAQUE_REACH_MM);
}

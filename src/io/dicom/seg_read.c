/* seg_read.c - a DICOM Segmentation back into a label map.
 *
 * What: BINARY, FRACTIONAL (thresholded at half of MaximumFractionalValue)
 * and LABELMAP segmentations, native or encapsulated (the pixel decoder
 * handles 1-bit frames that do not start on a byte boundary). Each frame's
 * segment comes from its SegmentIdentificationSequence (per-frame, or shared
 * when the SEG has one segment), its plane from PlanePosition /
 * PlaneOrientation / PixelMeasures (per-frame over shared).
 *
 * Values: SegmentLabel naming a registry structure -> that structure's
 * value; our own "recon3d label <v>" description -> v; otherwise the
 * segment number. Overlaps: segments are painted in ascending segment
 * number, so the later one wins; every voxel that changes hands is counted
 * in n_overlap and the caller can say so.
 *
 * Grid: a reference volume (the source series) gets the labels on its own
 * voxels: each set pixel's centre goes through the inverse of the
 * reference affine to the nearest voxel. Without a reference the grid is
 * built from the frames themselves (see include/r3d/dicom_seg.h).
 */
#include "r3d/dicom_seg.h"
#include "core/affine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T(g, e) R3D_TAG(0x##g, 0x##e)

typedef struct frame_geo {
    double ipp[3];
    double iop[6];
    double spacing[2];
    int segment; /* number, 0 = unknown */
} frame_geo;


/* A number from the file as an int when it is one in [lo, hi], else bad
 * (NaN and out-of-range values never reach a conversion). */
static int int_in(double x, int lo, int hi, int bad)
{
    return x >= lo && x <= hi && x == floor(x) ? (int)x : bad;
}

/* Value of one scaled CIELab component, clamped to 0..65535. */
static uint16_t u16_clamped(double x)
{
    return x >= 0 && x <= 65535 ? (uint16_t)x : x > 65535 ? 65535 : 0;
}

static const r3d_dcm_item *fg_item(const r3d_dcm_item *perframe, const r3d_dcm_item *shared,
                                   uint32_t seq)
{
    const r3d_dcm_item *it = perframe ? r3d_dcm_seq_item(perframe, seq, 0) : NULL;
    if (!it && shared)
        it = r3d_dcm_seq_item(shared, seq, 0);
    return it;
}

void r3d_seg_read_info_free(r3d_seg_read_info *info)
{
    if (!info)
        return;
    free(info->seg);
    info->seg = NULL;
    info->n_seg = 0;
}

static void cross(const double a[3], const double b[3], double o[3])
{
    o[0] = a[1] * b[2] - a[2] * b[1];
    o[1] = a[2] * b[0] - a[0] * b[2];
    o[2] = a[0] * b[1] - a[1] * b[0];
}

static double dot(const double a[3], const double b[3])
{
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The grid the frames themselves span (no reference given). */
static r3d_volume *grid_from_frames(const char *path, const frame_geo *fg, int nf, int rows,
                                    int cols, double sbs, r3d_error *err)
{
    const double *row = fg[0].iop, *col = fg[0].iop + 3;
    double n[3];
    cross(row, col, n);
    double nn = sqrt(dot(n, n));
    if (!(nn > 0.5))
        return r3d_fail(err, R3D_EDATA, "%s: invalid ImageOrientationPatient", path), NULL;
    for (int a = 0; a < 3; a++)
        n[a] /= nn;
    double *d = malloc((size_t)nf * sizeof *d);
    if (!d)
        return r3d_fail(err, R3D_ENOMEM, "%s: out of memory", path), NULL;
    int lowest = 0;
    for (int f = 0; f < nf; f++) {
        for (int a = 0; a < 6; a++)
            if (fabs(fg[f].iop[a] - fg[0].iop[a]) > 1e-4) {
                free(d);
                return r3d_fail(err, R3D_EUNSUPPORTED,
                                "%s: frames in different orientations need a reference grid",
                                path), NULL;
            }
        d[f] = dot(fg[f].ipp, n);
        if (d[f] < d[lowest])
            lowest = f;
    }
    double dmin = d[lowest];
    qsort(d, (size_t)nf, sizeof *d, cmp_double);
    double step = 0;
    for (int f = 1; f < nf; f++) {
        double g = d[f] - d[f - 1];
        if (g > 1e-3 && (step == 0 || g < step))
            step = g;
    }
    if (sbs > 0 && (step == 0 || sbs <= step + 1e-3))
        step = sbs;
    if (step == 0)
        step = 1;
    double span = d[nf - 1] - dmin;
    free(d);
    double nzd = floor(span / step + 0.5) + 1;
    /* A hostile file's positions must not ask for terabytes. */
    if (!(nzd >= 1 && nzd <= 100000) || nzd * rows * cols > 1073741824.0)
        return r3d_fail(err, R3D_EDATA, "%s: frame positions span %g mm at %g mm steps", path,
                        span, step), NULL;
    int64_t nz = (int64_t)nzd;
    int64_t dim[4] = {cols, rows, nz, 1};
    r3d_volume *v = r3d_volume_new(dim, R3D_U16, err);
    if (!v)
        return NULL;
    double dr = fg[0].spacing[0], dc = fg[0].spacing[1];
    /* As series.c: column i, row rows-1-j, slice k along n. */
    for (int a = 0; a < 3; a++) {
        v->ijk_to_lps[a][0] = row[a] * dc;
        v->ijk_to_lps[a][1] = -col[a] * dr;
        v->ijk_to_lps[a][2] = n[a] * step;
        v->ijk_to_lps[a][3] = fg[lowest].ipp[a] + col[a] * dr * (rows - 1);
    }
    memset(v->ijk_to_lps[3], 0, sizeof v->ijk_to_lps[3]);
    v->ijk_to_lps[3][3] = 1;
    r3d_volume_update_spacing(v);
    return v;
}

r3d_status r3d_seg_read_file(const r3d_dcm_file *f, const r3d_volume *ref, r3d_labelmap **out,
                             r3d_seg_read_info *info, r3d_error *err)
{
    const char *path = r3d_dcm_path(f);
    const r3d_dcm_item *root = r3d_dcm_root(f);
    *out = NULL;
    r3d_seg_read_info inf;
    memset(&inf, 0, sizeof inf);
    char cls[65], type[32];
    r3d_dcm_str(f, root, T(0008, 0016), -1, cls, sizeof cls);
    if (strcmp(cls, R3D_SOP_SEG) != 0 && strcmp(cls, R3D_SOP_LABELMAP_SEG) != 0)
        return r3d_fail(err, R3D_EFORMAT, "%s: not a DICOM Segmentation (SOP class %s)", path,
                        cls[0] ? cls : "missing");
    r3d_dcm_str(f, root, T(0062, 0001), -1, type, sizeof type);
    int labelmap = !strcmp(type, "LABELMAP");
    inf.fractional = !strcmp(type, "FRACTIONAL");
    if (strcmp(type, "BINARY") != 0 && !inf.fractional && !labelmap)
        return r3d_fail(err, R3D_EUNSUPPORTED, "%s: SegmentationType \"%s\"", path, type);
    r3d_dcm_str(f, root, T(0008, 0018), -1, inf.sop_uid, sizeof inf.sop_uid);
    r3d_dcm_str(f, root, T(0020, 000E), -1, inf.series_uid, sizeof inf.series_uid);
    r3d_dcm_str(f, root, T(0020, 0052), -1, inf.frame_of_reference_uid,
                sizeof inf.frame_of_reference_uid);
    const r3d_dcm_item *rs = r3d_dcm_seq_item(root, T(0008, 1115), 0);
    if (rs)
        r3d_dcm_str(f, rs, T(0020, 000E), -1, inf.referenced_series_uid,
                    sizeof inf.referenced_series_uid);

    r3d_dcm_pixinfo p;
    r3d_status st = r3d_dcm_pixinfo_get(f, &p, err);
    if (st != R3D_OK)
        return st;
    if (p.samples != 1 || p.rows < 1 || p.cols < 1 || p.frames < 1)
        return r3d_fail(err, R3D_EFORMAT,
                        "%s: SEG pixel description (%d samples, %dx%d, %d frames)",
                        path, p.samples, p.cols, p.rows, p.frames);
    const int nf = p.frames, rows = p.rows, cols = p.cols;
    double maxfrac = r3d_dcm_num1(f, root, T(0062, 000E), 255);
    if (!(maxfrac > 0))
        maxfrac = 255;

    /* ---- segments ---- */
    const r3d_dcm_el *sseq = r3d_dcm_find(root, T(0062, 0002));
    if (!sseq || !sseq->n_items)
        return r3d_fail(err, R3D_EFORMAT, "%s: no SegmentSequence", path);
    inf.n_seg = (int)sseq->n_items;
    inf.seg = calloc((size_t)inf.n_seg, sizeof *inf.seg);
    frame_geo *fg = calloc((size_t)nf, sizeof *fg);
    uint8_t *buf = NULL;
    r3d_volume *grid = NULL;
    r3d_labelmap *lm = NULL;
    if (!inf.seg || !fg) {
        st = r3d_fail(err, R3D_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    int max_number = 0;
    for (int s = 0; s < inf.n_seg; s++) {
        const r3d_dcm_item *it = &sseq->items[s];
        r3d_seg_segment *g = &inf.seg[s];
        g->number = int_in(r3d_dcm_num1(f, it, T(0062, 0004), 0), -1, 65536, -1);
        /* LABELMAP may describe its background as segment 0 (pixel value 0,
         * never painted). */
        if (g->number < (labelmap ? 0 : 1) || g->number > 65535) {
            st = r3d_fail(err, R3D_EFORMAT, "%s: segment %d has SegmentNumber %d", path, s + 1,
                          g->number);
            goto fail;
        }
        if (g->number > max_number)
            max_number = g->number;
        r3d_dcm_str(f, it, T(0062, 0005), -1, g->label, sizeof g->label);
        const r3d_dcm_item *ty = r3d_dcm_seq_item(it, T(0062, 000F), 0);
        if (ty) {
            r3d_dcm_str(f, ty, T(0008, 0100), -1, g->type_code[0], sizeof g->type_code[0]);
            r3d_dcm_str(f, ty, T(0008, 0102), -1, g->type_code[1], sizeof g->type_code[1]);
        }
        char desc[128];
        r3d_dcm_str(f, it, T(0062, 0006), -1, desc, sizeof desc);
        const r3d_structure *reg = r3d_structure_find(g->label);
        unsigned v;
        char tail;
        if (reg)
            g->value = reg->value;
        else if (sscanf(desc, "recon3d label %u%c", &v, &tail) == 1 && v >= 1 && v <= 65535)
            g->value = (uint16_t)v;
        else
            g->value = (uint16_t)g->number;
        double lab[3];
        if (r3d_dcm_num(f, it, T(0062, 000D), lab, 3) == 3) {
            uint16_t l16[3] = {u16_clamped(lab[0]), u16_clamped(lab[1]), u16_clamped(lab[2])};
            r3d_dicom_lab_to_srgb(l16, g->rgb);
        } else if (reg) {
            memcpy(g->rgb, reg->rgb, 3);
        } else {
            g->rgb[0] = g->rgb[1] = g->rgb[2] = 255;
        }
    }
    /* segment number -> index in inf.seg */
    int *seg_index = calloc((size_t)max_number + 1, sizeof *seg_index);
    if (!seg_index) {
        st = r3d_fail(err, R3D_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (int s = 0; s < inf.n_seg; s++)
        seg_index[inf.seg[s].number] = s + 1;

    /* ---- frame geometry ---- */
    const r3d_dcm_item *shared = r3d_dcm_seq_item(root, T(5200, 9229), 0);
    const r3d_dcm_el *pfs = r3d_dcm_find(root, T(5200, 9230));
    double sbs = 0;
    for (int k = 0; k < nf; k++) {
        const r3d_dcm_item *pf = pfs && (uint32_t)k < pfs->n_items ? &pfs->items[k] : NULL;
        const r3d_dcm_item *pp = fg_item(pf, shared, T(0020, 9113));
        const r3d_dcm_item *po = fg_item(pf, shared, T(0020, 9116));
        const r3d_dcm_item *pm = fg_item(pf, shared, T(0028, 9110));
        const r3d_dcm_item *si = fg_item(pf, shared, T(0062, 000A));
        if (!pp || r3d_dcm_num(f, pp, T(0020, 0032), fg[k].ipp, 3) != 3 || !po ||
            r3d_dcm_num(f, po, T(0020, 0037), fg[k].iop, 6) != 6 || !pm ||
            r3d_dcm_num(f, pm, T(0028, 0030), fg[k].spacing, 2) != 2 ||
            !(fg[k].spacing[0] > 0) || !(fg[k].spacing[1] > 0)) {
            st = r3d_fail(err, R3D_EFORMAT,
                          "%s: frame %d lacks its plane position, orientation or pixel spacing",
                          path, k + 1);
            goto fail_idx;
        }
        if (k == 0)
            sbs = r3d_dcm_num1(f, pm, T(0018, 0088), 0);
        if (!labelmap) {
            int sn = si ? int_in(r3d_dcm_num1(f, si, T(0062, 000B), 0), 0, 65535, 0) : 0;
            if (sn < 1 || sn > max_number || !seg_index[sn]) {
                st = r3d_fail(err, R3D_EFORMAT, "%s: frame %d names no known segment (%d)", path,
                              k + 1, sn);
                goto fail_idx;
            }
            fg[k].segment = sn;
        }
    }
    inf.n_frames = nf;

    /* ---- the grid ---- */
    if (ref) {
        int64_t dim[4] = {ref->dim[0], ref->dim[1], ref->dim[2], 1};
        grid = r3d_volume_new(dim, R3D_U16, err);
        if (grid) {
            memcpy(grid->ijk_to_lps, ref->ijk_to_lps, sizeof grid->ijk_to_lps);
            r3d_volume_update_spacing(grid);
        }
    } else {
        grid = grid_from_frames(path, fg, nf, rows, cols, sbs, err);
    }
    if (!grid) {
        st = err ? err->code : R3D_EDATA;
        goto fail_idx;
    }
    lm = calloc(1, sizeof *lm);
    if (!lm) {
        st = r3d_fail(err, R3D_ENOMEM, "%s: out of memory", path);
        goto fail_idx;
    }
    lm->vol = grid;
    grid = NULL;
    snprintf(lm->vol->description, sizeof lm->vol->description, "DICOM SEG");
    double inv[4][4];
    if (!r3d__affine_invert(lm->vol->ijk_to_lps, inv)) {
        st = r3d_fail(err, R3D_EDATA, "%s: the reference grid's affine is singular", path);
        goto fail_idx;
    }

    /* ---- paint, segment by segment (ascending number: the later wins) ---- */
    size_t fbytes = r3d_dcm_frame_bytes(&p);
    buf = malloc(fbytes ? fbytes : 1);
    if (!fbytes || !buf) {
        st = r3d_fail(err, R3D_ENOMEM, "%s: out of memory for a frame", path);
        goto fail_idx;
    }
    uint16_t *lab = lm->vol->voxels;
    const int64_t nx = lm->vol->dim[0], ny = lm->vol->dim[1], nz = lm->vol->dim[2];
    int *order = malloc((size_t)nf * sizeof *order);
    if (!order) {
        st = r3d_fail(err, R3D_ENOMEM, "%s: out of memory", path);
        goto fail_idx;
    }
    {
        /* frames by segment number, stable */
        int m = 0;
        for (int s = 1; s <= max_number; s++)
            for (int k = 0; k < nf; k++)
                if (fg[k].segment == s)
                    order[m++] = k;
        for (int k = 0; k < nf; k++)
            if (labelmap)
                order[m++] = k;
    }
    for (int q = 0; q < nf; q++) {
        int k = order[q];
        st = r3d_dcm_decode_frame(f, &p, k, buf, fbytes, err);
        if (st != R3D_OK) {
            free(order);
            goto fail_idx;
        }
        const double *ipp = fg[k].ipp, *iop = fg[k].iop;
        double base[3], sc[3], sr[3];
        for (int a = 0; a < 3; a++) {
            base[a] = inv[a][0] * ipp[0] + inv[a][1] * ipp[1] + inv[a][2] * ipp[2] + inv[a][3];
            const double *m = inv[a];
            sc[a] = (m[0] * iop[0] + m[1] * iop[1] + m[2] * iop[2]) * fg[k].spacing[1];
            sr[a] = (m[0] * iop[3] + m[1] * iop[4] + m[2] * iop[5]) * fg[k].spacing[0];
        }
        uint16_t value = labelmap ? 0 : inf.seg[seg_index[fg[k].segment] - 1].value;
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                size_t pix = (size_t)r * cols + c;
                unsigned pv = p.bits_alloc <= 8 ? ((const uint8_t *)buf)[pix]
                                                : ((const uint16_t *)buf)[pix];
                uint16_t v;
                if (labelmap) {
                    if (!pv)
                        continue;
                    v = pv <= (unsigned)max_number && seg_index[pv]
                            ? inf.seg[seg_index[pv] - 1].value
                            : (uint16_t)pv;
                } else if (inf.fractional) {
                    if (!(2.0 * pv >= maxfrac) || !pv)
                        continue;
                    v = value;
                } else {
                    if (!pv)
                        continue;
                    v = value;
                }
                double x = base[0] + c * sc[0] + r * sr[0];
                double y = base[1] + c * sc[1] + r * sr[1];
                double z = base[2] + c * sc[2] + r * sr[2];
                double fi = floor(x + 0.5), fj = floor(y + 0.5), fk = floor(z + 0.5);
                if (!(fi >= 0 && fj >= 0 && fk >= 0 && fi < (double)nx && fj < (double)ny &&
                      fk < (double)nz)) { /* NaN from a hostile plane lands here too */
                    inf.n_outside++;
                    continue;
                }
                int64_t i = (int64_t)fi, j = (int64_t)fj, kk = (int64_t)fk;
                uint16_t *dst = &lab[(kk * ny + j) * nx + i];
                if (*dst && *dst != v)
                    inf.n_overlap++;
                *dst = v;
            }
        }
    }
    free(order);

    /* ---- label table and counts ---- */
    {
        int64_t nvox = r3d_volume_nvox(lm->vol);
        for (int64_t n = 0; n < nvox; n++)
            if (lab[n])
                for (int s = 0; s < inf.n_seg; s++)
                    if (inf.seg[s].value == lab[n]) {
                        inf.seg[s].voxels++;
                        break;
                    }
        for (int s = 0; s < inf.n_seg; s++) {
            if (!inf.seg[s].value || r3d_label_table_find(&lm->table, inf.seg[s].value))
                continue; /* background, or a value already listed */
            r3d_label l;
            const r3d_structure *reg = r3d_structure_by_value(inf.seg[s].value);
            if (reg && !strcmp(reg->name, inf.seg[s].label)) {
                r3d_structure_label(reg, &l);
            } else {
                memset(&l, 0, sizeof l);
                l.value = inf.seg[s].value;
                snprintf(l.name, sizeof l.name, "%s", inf.seg[s].label);
                memcpy(l.rgb, inf.seg[s].rgb, 3);
            }
            st = r3d_label_table_add(&lm->table, &l, err);
            if (st != R3D_OK)
                goto fail_idx;
        }
    }
    free(seg_index);
    free(fg);
    free(buf);
    *out = lm;
    if (info)
        *info = inf;
    else
        r3d_seg_read_info_free(&inf);
    return R3D_OK;
fail_idx:
    free(seg_index);
fail:
    free(fg);
    free(buf);
    r3d_volume_free(grid);
    r3d_labelmap_free(lm);
    r3d_seg_read_info_free(&inf);
    return st;
}

r3d_status r3d_seg_read(const char *path, const r3d_volume *ref, r3d_labelmap **out,
                        r3d_seg_read_info *info, r3d_error *err)
{
    r3d_dcm_file *f = r3d_dcm_open(path, 0, err);
    if (!f)
        return err ? err->code : R3D_EIO;
    r3d_status st = r3d_seg_read_file(f, ref, out, info, err);
    r3d_dcm_close(f);
    return st;
}

/* seg_write.c - a DICOM Segmentation (PS3.3 A.51) from a label map.
 *
 * What: one BINARY SEG instance with a segment per label value present, in
 * the study, series references and frame of reference of its source series
 * (seg_source.c). Each segment carries the structure registry's name
 * (SegmentLabel), Chinese name (SegmentDescription, when the character set
 * allows UTF-8), colour (RecommendedDisplayCIELabValue) and SNOMED CT codes
 * (category, type with its modifier, anatomic region with its modifier);
 * SegmentAlgorithmType AUTOMATIC, SegmentAlgorithmName "recon3d".
 *
 * Frames: one per (segment, source image) where the segment has a pixel,
 * segment by segment, each along the slice normal. A frame lies on its
 * source image's plane: same rows, columns, pixel spacing, orientation and
 * ImagePositionPatient, and names that image in its DerivationImageSequence;
 * the dimension index is (segment number, position index), as dcmqi and
 * highdicom organise theirs.
 *
 * Sampling: the label at a source pixel is the label-map voxel nearest to
 * the pixel centre (world -> ijk through the inverse of the label map's
 * affine). A label map on the series' own grid maps each pixel to exactly
 * one voxel, so the transfer is lossless; labelled voxels no source pixel
 * lands on are counted (n_outside) and reported, never silently dropped.
 *
 * Pixel data: 1 bit per pixel, frames packed one after another without
 * padding between frames (PS3.5 8.1.1), least significant bit first.
 *
 * Cost: one pass over rows x cols x images, in parallel over images; the
 * packed frames (rows x cols / 8 bytes each) are the only large memory.
 */
#include "r3d/dicom_seg.h"
#include "core/affine.h"

#include <iconv.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define T(g, e) R3D_TAG(0x##g, 0x##e)
#define VR(a, b) R3D_VR(a, b)

/* ---- colour ------------------------------------------------------------------ */

static double srgb_linear(double c)
{
    return c > 0.04045 ? pow((c + 0.055) / 1.055, 2.4) : c / 12.92;
}
static double srgb_gamma(double c)
{
    return c > 0.0031308 ? 1.055 * pow(c, 1 / 2.4) - 0.055 : 12.92 * c;
}

/* sRGB (IEC 61966-2-1) linear RGB -> XYZ, already adapted to D50 with the
 * Bradford transform: the matrix of the ICC sRGB profile (Lindbloom). */
static const double k_rgb_xyz50[3][3] = {{0.4360747, 0.3850649, 0.1430804},
                                         {0.2225045, 0.7168786, 0.0606169},
                                         {0.0139322, 0.0971045, 0.7141733}};
static const double k_xyz50_rgb[3][3] = {{3.1338561, -1.6168667, -0.4906146},
                                         {-0.9787684, 1.9161415, 0.0334540},
                                         {0.0719453, -0.2289914, 1.4052427}};
static const double k_d50[3] = {0.96422, 1.0, 0.82521}; /* D50 white (the matrix rows sum to it) */

static double lab_f(double t)
{
    const double e = 216.0 / 24389.0, k = 24389.0 / 27.0;
    return t > e ? cbrt(t) : (k * t + 16) / 116;
}
static double lab_finv(double f)
{
    const double e = 216.0 / 24389.0, k = 24389.0 / 27.0;
    double f3 = f * f * f;
    return f3 > e ? f3 : (116 * f - 16) / k;
}

void r3d_srgb_to_dicom_lab(const uint8_t rgb[3], uint16_t lab[3])
{
    double lin[3], xyz[3];
    for (int i = 0; i < 3; i++)
        lin[i] = srgb_linear(rgb[i] / 255.0);
    for (int i = 0; i < 3; i++)
        xyz[i] = (k_rgb_xyz50[i][0] * lin[0] + k_rgb_xyz50[i][1] * lin[1] +
                  k_rgb_xyz50[i][2] * lin[2]) / k_d50[i];
    double fx = lab_f(xyz[0]), fy = lab_f(xyz[1]), fz = lab_f(xyz[2]);
    double L = 116 * fy - 16, a = 500 * (fx - fy), b = 200 * (fy - fz);
    /* PS3.3 C.10.7.1.1: scaled as the ICC profile connection space does. */
    double s[3] = {L * 65535.0 / 100.0, (a + 128) * 65535.0 / 255.0, (b + 128) * 65535.0 / 255.0};
    for (int i = 0; i < 3; i++)
        lab[i] = (uint16_t)lround(s[i] < 0 ? 0 : s[i] > 65535 ? 65535 : s[i]);
}

void r3d_dicom_lab_to_srgb(const uint16_t lab[3], uint8_t rgb[3])
{
    double L = lab[0] * 100.0 / 65535.0, a = lab[1] * 255.0 / 65535.0 - 128,
           b = lab[2] * 255.0 / 65535.0 - 128;
    double fy = (L + 16) / 116, fx = fy + a / 500, fz = fy - b / 200;
    double xyz[3] = {lab_finv(fx) * k_d50[0], lab_finv(fy) * k_d50[1], lab_finv(fz) * k_d50[2]};
    for (int i = 0; i < 3; i++) {
        double c = k_xyz50_rgb[i][0] * xyz[0] + k_xyz50_rgb[i][1] * xyz[1] +
                   k_xyz50_rgb[i][2] * xyz[2];
        c = srgb_gamma(c < 0 ? 0 : c > 1 ? 1 : c) * 255;
        rgb[i] = (uint8_t)lround(c < 0 ? 0 : c > 255 ? 255 : c);
    }
}

/* ---- sampling the label map on the source planes ----------------------------------- */

typedef struct frame_bits {
    uint16_t value;
    uint8_t *bits; /* rows*cols bits, LSB first */
} frame_bits;

typedef struct img_frames {
    frame_bits *f;
    int n;
    int failed;
} img_frames;

typedef struct sample_ctx {
    const r3d_labelmap *lm;
    const r3d_dcm_source *src;
    double inv[4][4];
    img_frames *out;
    uint8_t *hit; /* per label-map voxel: sampled by some pixel (atomic stores) */
} sample_ctx;

static void sample_images(void *vctx, int64_t begin, int64_t end)
{
    sample_ctx *c = vctx;
    const r3d_volume *v = c->lm->vol;
    const uint16_t *lab = v->voxels;
    const int rows = c->src->rows, cols = c->src->cols;
    const int64_t nx = v->dim[0], ny = v->dim[1], nz = v->dim[2];
    const size_t npix = (size_t)rows * cols, nbytes = (npix + 7) / 8;
    uint16_t *slice = malloc(npix * sizeof *slice);
    uint16_t *slot = malloc(65536 * sizeof *slot); /* label -> its plane in this image */
    for (int64_t k = begin; k < end; k++) {
        img_frames *o = &c->out[k];
        if (!slice || !slot) {
            o->failed = 1;
            continue;
        }
        const double *ipp = c->src->img[k].ipp, *iop = c->src->iop;
        double dr = c->src->pixel_spacing[0], dc = c->src->pixel_spacing[1];
        /* ijk of pixel (r, c) = base + c * step_c + r * step_r */
        double base[3], step_c[3], step_r[3];
        for (int a = 0; a < 3; a++) {
            base[a] = c->inv[a][0] * ipp[0] + c->inv[a][1] * ipp[1] + c->inv[a][2] * ipp[2] +
                      c->inv[a][3];
            const double *m = c->inv[a];
            step_c[a] = (m[0] * iop[0] + m[1] * iop[1] + m[2] * iop[2]) * dc;
            step_r[a] = (m[0] * iop[3] + m[1] * iop[4] + m[2] * iop[5]) * dr;
        }
        uint8_t present[65536 / 8];
        memset(present, 0, sizeof present);
        int any = 0;
        for (int r = 0; r < rows; r++) {
            for (int cc = 0; cc < cols; cc++) {
                double x = base[0] + cc * step_c[0] + r * step_r[0];
                double y = base[1] + cc * step_c[1] + r * step_r[1];
                double z = base[2] + cc * step_c[2] + r * step_r[2];
                int64_t i = (int64_t)floor(x + 0.5), j = (int64_t)floor(y + 0.5),
                        kk = (int64_t)floor(z + 0.5);
                uint16_t l = 0;
                if (i >= 0 && j >= 0 && kk >= 0 && i < nx && j < ny && kk < nz) {
                    int64_t n = (kk * ny + j) * nx + i;
                    l = lab[n];
                    if (l)
                        __atomic_store_n(&c->hit[n], 1, __ATOMIC_RELAXED);
                }
                slice[(size_t)r * cols + cc] = l;
                if (l) {
                    present[l >> 3] |= (uint8_t)(1u << (l & 7));
                    any = 1;
                }
            }
        }
        if (!any)
            continue;
        int nl = 0;
        for (int l = 1; l < 65536; l++)
            if (present[l >> 3] & (1u << (l & 7)))
                nl++;
        o->f = calloc((size_t)nl, sizeof *o->f);
        if (!o->f) {
            o->failed = 1;
            continue;
        }
        /* one bit plane per label present, filled in one pass */
        for (int l = 1; l < 65536 && !o->failed; l++) {
            if (!(present[l >> 3] & (1u << (l & 7))))
                continue;
            if (!(o->f[o->n].bits = calloc(nbytes, 1))) {
                o->failed = 1;
                break;
            }
            o->f[o->n].value = (uint16_t)l;
            slot[l] = (uint16_t)o->n++;
        }
        if (o->failed)
            continue;
        for (size_t p = 0; p < npix; p++)
            if (slice[p])
                o->f[slot[slice[p]]].bits[p >> 3] |= (uint8_t)(1u << (p & 7));
    }
    free(slice);
    free(slot);
}

/* ---- the data set ------------------------------------------------------------------ */

#define CHECK(x)                                                                           \
    do {                                                                                   \
        if ((st = (x)) != R3D_OK)                                                          \
            goto done;                                                                     \
    } while (0)
#define ITEM(var, parent, tag)                                                             \
    do {                                                                                   \
        if (!((var) = r3d_dcm_ds_add_item((parent), (tag), err))) {                        \
            st = R3D_ENOMEM;                                                               \
            goto done;                                                                     \
        }                                                                                  \
    } while (0)

static r3d_status put_code(r3d_dcm_ds *ds, uint32_t seq, const char *value, const char *scheme,
                           const char *meaning, r3d_dcm_ds **item_out, r3d_error *err)
{
    r3d_status st = R3D_OK;
    r3d_dcm_ds *it;
    ITEM(it, ds, seq);
    CHECK(r3d_dcm_ds_put_str(it, T(0008, 0100), 0, value, err));
    CHECK(r3d_dcm_ds_put_str(it, T(0008, 0102), 0, scheme, err));
    CHECK(r3d_dcm_ds_put_str(it, T(0008, 0104), 0, meaning, err));
    if (item_out)
        *item_out = it;
done:
    return st;
}

/* How the copied header's character set lets us write Chinese names:
 * CS_UTF8 (none yet - the writer then declares ISO_IR 192 - or ISO_IR 192),
 * CS_GB18030 (common in Chinese hospitals: converted with iconv), or
 * CS_ASCII (any other set: the Chinese name is left out). */
enum { CS_ASCII, CS_UTF8, CS_GB18030 };
static int header_charset(const r3d_dcm_ds *h)
{
    uint32_t n;
    const uint8_t *v = r3d_dcm_ds_value(h, T(0008, 0005), &n, NULL);
    if (!v)
        return CS_UTF8;
    char cs[80];
    size_t m = n < sizeof cs - 1 ? n : sizeof cs - 1;
    memcpy(cs, v, m);
    while (m && (cs[m - 1] == ' ' || cs[m - 1] == 0))
        m--;
    cs[m] = 0;
    if (!strcmp(cs, "ISO_IR 192"))
        return CS_UTF8;
    if (!strcmp(cs, "GB18030"))
        return CS_GB18030;
    return CS_ASCII;
}

/* UTF-8 -> GB18030; 0 when it cannot be converted. */
static size_t to_gb18030(const char *in, char *out, size_t cap)
{
    iconv_t cd = iconv_open("GB18030", "UTF-8");
    if (cd == (iconv_t)-1)
        return 0;
    char *ip = (char *)in, *op = out;
    size_t il = strlen(in), ol = cap;
    size_t r = iconv(cd, &ip, &il, &op, &ol);
    iconv_close(cd);
    return r == (size_t)-1 || il ? 0 : cap - ol;
}

static int is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 0;
    return 1;
}

static void now_text(char date[9], char time_[16])
{
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(date, 9, "%Y%m%d", &tm);
    strftime(time_, 16, "%H%M%S", &tm);
}

/* One item of the Segment Sequence. */
static r3d_status put_segment(r3d_dcm_ds *ds, int number, uint16_t value,
                              const r3d_labelmap *lm, int charset, const r3d_seg_write_opts *o,
                              r3d_error *err)
{
    r3d_status st = R3D_OK;
    r3d_dcm_ds *it, *ty;
    ITEM(it, ds, T(0062, 0002));
    const r3d_structure *s = r3d_structure_by_value(value);
    const r3d_label *l = r3d_label_table_find(&lm->table, value);
    /* A label whose table name is not the registry's is someone else's
     * label that happens to share the value: keep its own name. */
    if (s && l && l->name[0] && strcmp(l->name, s->name) != 0)
        s = NULL;
    char name[80], desc[96];
    uint8_t rgb[3];
    if (s) {
        snprintf(name, sizeof name, "%s", s->name);
        snprintf(desc, sizeof desc, "%s", charset != CS_ASCII ? s->name_zh : "");
        memcpy(rgb, s->rgb, 3);
    } else {
        if (l && l->name[0] && is_ascii(l->name))
            snprintf(name, sizeof name, "%s", l->name);
        else
            snprintf(name, sizeof name, "label_%u", value);
        snprintf(desc, sizeof desc, "recon3d label %u", value);
        if (l)
            memcpy(rgb, l->rgb, 3);
        else
            rgb[0] = rgb[1] = rgb[2] = 255;
    }
    CHECK(r3d_dcm_ds_put_u16(it, T(0062, 0004), (uint16_t)number, err));
    CHECK(r3d_dcm_ds_put_str(it, T(0062, 0005), 0, name, err));
    if (desc[0] && charset == CS_GB18030 && !is_ascii(desc)) {
        char gb[192];
        size_t n = to_gb18030(desc, gb, sizeof gb);
        if (n)
            CHECK(r3d_dcm_ds_put_text(it, T(0062, 0006), 0, gb, n, err));
    } else if (desc[0]) {
        CHECK(r3d_dcm_ds_put_str(it, T(0062, 0006), 0, desc, err));
    }
    CHECK(r3d_dcm_ds_put_str(it, T(0062, 0008), 0, "AUTOMATIC", err));
    CHECK(r3d_dcm_ds_put_str(it, T(0062, 0009), 0, o->algorithm_name, err));
    uint16_t lab[3];
    r3d_srgb_to_dicom_lab(rgb, lab);
    double labd[3] = {lab[0], lab[1], lab[2]};
    CHECK(r3d_dcm_ds_put_nums(it, T(0062, 000D), VR('U', 'S'), labd, 3, err));
    if (s) {
        CHECK(put_code(it, T(0062, 0003), s->category.value, s->category.scheme,
                       s->category.meaning, NULL, err));
        CHECK(put_code(it, T(0062, 000F), s->type.value, s->type.scheme, s->type.meaning, &ty,
                       err));
        if (s->modifier.value[0])
            CHECK(put_code(ty, T(0062, 0011), s->modifier.value, s->modifier.scheme,
                           s->modifier.meaning, NULL, err));
        if (s->region.value[0]) {
            r3d_dcm_ds *rg;
            CHECK(put_code(it, T(0008, 2218), s->region.value, s->region.scheme,
                           s->region.meaning, &rg, err));
            if (s->region_modifier.value[0])
                CHECK(put_code(rg, T(0008, 2220), s->region_modifier.value,
                               s->region_modifier.scheme, s->region_modifier.meaning, NULL, err));
        }
    } else {
        /* Nothing known about it: DICOM's generic "Tissue" category and type
         * (CID 7150 / CID 7165, SCT 85756007). */
        CHECK(put_code(it, T(0062, 0003), "85756007", "SCT", "Tissue", NULL, err));
        CHECK(put_code(it, T(0062, 000F), "85756007", "SCT", "Tissue", NULL, err));
    }
done:
    return st;
}

static int cmp_u16(const void *a, const void *b)
{
    return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

r3d_status r3d_seg_build(const r3d_labelmap *lm, const r3d_dcm_source *src,
                         const r3d_seg_write_opts *opts_in, r3d_dcm_ds **out,
                         r3d_seg_write_info *info, r3d_error *err)
{
    r3d_seg_write_opts o = R3D_SEG_WRITE_OPTS_INIT;
    if (opts_in)
        o = *opts_in;
    if (!o.series_description)
        o.series_description = "recon3d segmentation";
    if (!o.series_number)
        o.series_number = 901;
    if (!o.algorithm_name)
        o.algorithm_name = "recon3d";
    if (!o.algorithm_version)
        o.algorithm_version = r3d_version();
    *out = NULL;
    r3d_seg_write_info inf;
    memset(&inf, 0, sizeof inf);
    if (!lm || !lm->vol || lm->vol->dtype != R3D_U16 || lm->vol->dim[3] != 1)
        return r3d_fail(err, R3D_EARG, "SEG writer: the label map must be a 3D uint16 volume");
    if (!src || src->n_img < 1 || src->rows < 1 || src->cols < 1)
        return r3d_fail(err, R3D_EARG, "SEG writer: no source images");
    double inv[4][4];
    if (!r3d__affine_invert(lm->vol->ijk_to_lps, inv))
        return r3d_fail(err, R3D_EDATA, "SEG writer: the label map's affine is singular");

    r3d_status st = R3D_OK;
    r3d_dcm_ds *ds = NULL;
    uint8_t *pixels = NULL;
    int64_t nvox = r3d_volume_nvox(lm->vol);
    sample_ctx c = {.lm = lm, .src = src};
    memcpy(c.inv, inv, sizeof inv);
    c.out = calloc((size_t)src->n_img, sizeof *c.out);
    c.hit = calloc((size_t)nvox ? (size_t)nvox : 1, 1);
    uint16_t *values = NULL;
    int n_values = 0;
    if (!c.out || !c.hit) {
        st = r3d_fail(err, R3D_ENOMEM, "SEG writer: out of memory");
        goto done;
    }
    r3d_parallel_for(src->n_img, sample_images, &c);
    for (int k = 0; k < src->n_img; k++)
        if (c.out[k].failed) {
            st = r3d_fail(err, R3D_ENOMEM, "SEG writer: out of memory sampling the labels");
            goto done;
        }
    {
        const uint16_t *lab = lm->vol->voxels;
        for (int64_t n = 0; n < nvox; n++)
            if (lab[n] && !c.hit[n])
                inf.n_outside++;
    }
    /* The segments: every value that has a frame, ascending. */
    {
        uint8_t seen[65536 / 8];
        memset(seen, 0, sizeof seen);
        for (int k = 0; k < src->n_img; k++)
            for (int f = 0; f < c.out[k].n; f++) {
                uint16_t v = c.out[k].f[f].value;
                if (!(seen[v >> 3] & (1u << (v & 7)))) {
                    seen[v >> 3] |= (uint8_t)(1u << (v & 7));
                    n_values++;
                }
            }
        if (!n_values) {
            st = r3d_fail(err, R3D_ENOTFOUND,
                          "SEG writer: no labelled voxel lies on the source series' planes");
            goto done;
        }
        values = malloc((size_t)n_values * sizeof *values);
        if (!values) {
            st = r3d_fail(err, R3D_ENOMEM, "SEG writer: out of memory");
            goto done;
        }
        int m = 0;
        for (int v = 1; v < 65536; v++)
            if (seen[v >> 3] & (1u << (v & 7)))
                values[m++] = (uint16_t)v;
        qsort(values, (size_t)n_values, sizeof *values, cmp_u16);
    }
    int n_frames = 0;
    for (int k = 0; k < src->n_img; k++)
        n_frames += c.out[k].n;
    const size_t npix = (size_t)src->rows * src->cols;
    const uint64_t total_bits = (uint64_t)n_frames * npix;
    const uint64_t pix_bytes = (total_bits + 7) / 8;
    if (pix_bytes + 1 > 0xFFFFFFF0u) {
        st = r3d_fail(err, R3D_EUNSUPPORTED,
                      "SEG writer: %d frames of %dx%d exceed one Pixel Data element (4 GiB)",
                      n_frames, src->cols, src->rows);
        goto done;
    }
    pixels = calloc((size_t)pix_bytes + 1, 1);
    ds = r3d_dcm_ds_new();
    if (!pixels || !ds) {
        st = r3d_fail(err, R3D_ENOMEM, "SEG writer: out of memory");
        goto done;
    }

    /* ---- patient, study, frame of reference: as the source ---- */
    CHECK(r3d_dcm_ds_merge(ds, src->header, err));
    int charset = header_charset(src->header);
    char date[9], tim[16];
    now_text(date, tim);
    if (o.sop_uid)
        snprintf(inf.sop_uid, sizeof inf.sop_uid, "%s", o.sop_uid);
    else
        CHECK(r3d_uid_new(inf.sop_uid, err));
    if (o.series_uid)
        snprintf(inf.series_uid, sizeof inf.series_uid, "%s", o.series_uid);
    else
        CHECK(r3d_uid_new(inf.series_uid, err));

    /* ---- SOP common, series, equipment ---- */
    CHECK(r3d_dcm_ds_put_str(ds, T(0008, 0008), 0, "DERIVED\\PRIMARY", err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0008, 0012), 0, date, err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0008, 0013), 0, tim, err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0008, 0016), 0, R3D_SOP_SEG, err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0008, 0018), 0, inf.sop_uid, err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0008, 0021), 0, date, err)); /* SeriesDate */
    CHECK(r3d_dcm_ds_put_str(ds, T(0008, 0023), 0, date, err)); /* ContentDate */
    CHECK(r3d_dcm_ds_put_str(ds, T(0008, 0031), 0, tim, err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0008, 0033), 0, tim, err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0008, 0060), 0, "SEG", err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0008, 0070), 0, "recon3d", err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0008, 103E), 0, o.series_description, err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0008, 1090), 0, "recon3d", err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0018, 1000), 0, "1", err)); /* DeviceSerialNumber */
    CHECK(r3d_dcm_ds_put_str(ds, T(0018, 1020), 0, o.algorithm_version, err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0020, 000D), 0, src->study_uid, err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0020, 000E), 0, inf.series_uid, err));
    {
        double sn = o.series_number, inum = 1;
        CHECK(r3d_dcm_ds_put_nums(ds, T(0020, 0011), 0, &sn, 1, err));
        CHECK(r3d_dcm_ds_put_nums(ds, T(0020, 0013), 0, &inum, 1, err));
    }
    CHECK(r3d_dcm_ds_put_str(ds, T(0020, 0052), 0, src->frame_of_reference_uid, err));

    /* ---- references to the source: Common Instance Reference ---- */
    {
        r3d_dcm_ds *rs;
        ITEM(rs, ds, T(0008, 1115));
        for (int k = 0; k < src->n_img; k++) {
            r3d_dcm_ds *ri;
            ITEM(ri, rs, T(0008, 114A));
            CHECK(r3d_dcm_ds_put_str(ri, T(0008, 1150), 0, src->img[k].sop_class, err));
            CHECK(r3d_dcm_ds_put_str(ri, T(0008, 1155), 0, src->img[k].sop_uid, err));
        }
        CHECK(r3d_dcm_ds_put_str(rs, T(0020, 000E), 0, src->series_uid, err));
    }

    /* ---- image pixel and segmentation image ---- */
    CHECK(r3d_dcm_ds_put_u16(ds, T(0028, 0002), 1, err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0028, 0004), 0, "MONOCHROME2", err));
    {
        double nf = n_frames;
        CHECK(r3d_dcm_ds_put_nums(ds, T(0028, 0008), 0, &nf, 1, err));
    }
    CHECK(r3d_dcm_ds_put_u16(ds, T(0028, 0010), (uint16_t)src->rows, err));
    CHECK(r3d_dcm_ds_put_u16(ds, T(0028, 0011), (uint16_t)src->cols, err));
    CHECK(r3d_dcm_ds_put_u16(ds, T(0028, 0100), 1, err));
    CHECK(r3d_dcm_ds_put_u16(ds, T(0028, 0101), 1, err));
    CHECK(r3d_dcm_ds_put_u16(ds, T(0028, 0102), 0, err));
    CHECK(r3d_dcm_ds_put_u16(ds, T(0028, 0103), 0, err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0028, 2110), 0, "00", err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0062, 0001), 0, "BINARY", err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0062, 0013), 0, "NO", err)); /* SegmentsOverlap */
    CHECK(r3d_dcm_ds_put_str(ds, T(0070, 0080), 0, "SEGMENTATION", err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0070, 0081), 0, "recon3d automatic segmentation", err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0070, 0084), 0, "", err));
    CHECK(r3d_dcm_ds_put_seq(ds, T(0062, 0002), err));
    for (int s = 0; s < n_values; s++)
        CHECK(put_segment(ds, s + 1, values[s], lm, charset, &o, err));
    inf.n_segments = n_values;

    /* ---- multi-frame dimensions ---- */
    {
        char dim_uid[65];
        CHECK(r3d_uid_new(dim_uid, err));
        r3d_dcm_ds *it;
        ITEM(it, ds, T(0020, 9221));
        CHECK(r3d_dcm_ds_put_str(it, T(0020, 9164), 0, dim_uid, err));
        double p1[2] = {(double)T(0062, 000B), (double)T(0062, 000A)};
        double p2[2] = {(double)T(0020, 0032), (double)T(0020, 9113)};
        ITEM(it, ds, T(0020, 9222));
        CHECK(r3d_dcm_ds_put_str(it, T(0020, 9164), 0, dim_uid, err));
        CHECK(r3d_dcm_ds_put_nums(it, T(0020, 9165), VR('A', 'T'), &p1[0], 1, err));
        CHECK(r3d_dcm_ds_put_nums(it, T(0020, 9167), VR('A', 'T'), &p1[1], 1, err));
        CHECK(r3d_dcm_ds_put_str(it, T(0020, 9421), 0, "ReferencedSegmentNumber", err));
        ITEM(it, ds, T(0020, 9222));
        CHECK(r3d_dcm_ds_put_str(it, T(0020, 9164), 0, dim_uid, err));
        CHECK(r3d_dcm_ds_put_nums(it, T(0020, 9165), VR('A', 'T'), &p2[0], 1, err));
        CHECK(r3d_dcm_ds_put_nums(it, T(0020, 9167), VR('A', 'T'), &p2[1], 1, err));
        CHECK(r3d_dcm_ds_put_str(it, T(0020, 9421), 0, "ImagePositionPatient", err));
        CHECK(r3d_dcm_ds_put_str(ds, T(0020, 9311), 0, "3D", err));
    }

    /* ---- shared functional groups: orientation, pixel measures ---- */
    {
        r3d_dcm_ds *sh, *it;
        ITEM(sh, ds, T(5200, 9229));
        ITEM(it, sh, T(0028, 9110));
        CHECK(r3d_dcm_ds_put_nums(it, T(0028, 0030), 0, src->pixel_spacing, 2, err));
        double dz = src->slice_thickness;
        if (src->n_img > 1) {
            const double *a = src->img[0].ipp, *b = src->img[1].ipp;
            double gap = sqrt((b[0] - a[0]) * (b[0] - a[0]) + (b[1] - a[1]) * (b[1] - a[1]) +
                              (b[2] - a[2]) * (b[2] - a[2]));
            CHECK(r3d_dcm_ds_put_nums(it, T(0018, 0088), 0, &gap, 1, err));
            if (!(dz > 0))
                dz = gap;
        }
        if (dz > 0)
            CHECK(r3d_dcm_ds_put_nums(it, T(0018, 0050), 0, &dz, 1, err));
        ITEM(it, sh, T(0020, 9116));
        CHECK(r3d_dcm_ds_put_nums(it, T(0020, 0037), 0, src->iop, 6, err));
    }

    /* ---- per-frame functional groups and the pixels ---- */
    {
        CHECK(r3d_dcm_ds_put_seq(ds, T(5200, 9230), err));
        uint64_t bit = 0;
        const int byte_aligned = npix % 8 == 0;
        int frame = 0;
        for (int s = 0; s < n_values; s++) {
            for (int k = 0; k < src->n_img; k++) {
                const frame_bits *fb = NULL;
                for (int f = 0; f < c.out[k].n; f++)
                    if (c.out[k].f[f].value == values[s])
                        fb = &c.out[k].f[f];
                if (!fb)
                    continue;
                r3d_dcm_ds *pf, *it, *si;
                ITEM(pf, ds, T(5200, 9230));
                ITEM(it, pf, T(0008, 9124)); /* DerivationImageSequence */
                ITEM(si, it, T(0008, 2112)); /* SourceImageSequence */
                CHECK(r3d_dcm_ds_put_str(si, T(0008, 1150), 0, src->img[k].sop_class, err));
                CHECK(r3d_dcm_ds_put_str(si, T(0008, 1155), 0, src->img[k].sop_uid, err));
                CHECK(put_code(si, T(0040, A170), "121322", "DCM",
                               "Source image for image processing operation", NULL, err));
                CHECK(put_code(it, T(0008, 9215), "113076", "DCM", "Segmentation", NULL, err));
                ITEM(it, pf, T(0020, 9111)); /* FrameContentSequence */
                double div[2] = {s + 1, k + 1};
                CHECK(r3d_dcm_ds_put_nums(it, T(0020, 9157), VR('U', 'L'), div, 2, err));
                ITEM(it, pf, T(0020, 9113)); /* PlanePositionSequence */
                CHECK(r3d_dcm_ds_put_nums(it, T(0020, 0032), 0, src->img[k].ipp, 3, err));
                ITEM(it, pf, T(0062, 000A)); /* SegmentIdentificationSequence */
                CHECK(r3d_dcm_ds_put_u16(it, T(0062, 000B), (uint16_t)(s + 1), err));
                if (byte_aligned) {
                    memcpy(pixels + bit / 8, fb->bits, npix / 8);
                } else {
                    for (size_t p = 0; p < npix; p++)
                        if (fb->bits[p >> 3] & (1u << (p & 7))) {
                            uint64_t b = bit + p;
                            pixels[b >> 3] |= (uint8_t)(1u << (b & 7));
                        }
                }
                bit += npix;
                frame++;
            }
        }
        inf.n_frames = frame;
        CHECK(r3d_dcm_ds_put_bytes(ds, T(7FE0, 0010), VR('O', 'B'), pixels, (size_t)pix_bytes,
                                   err));
    }
done:
    if (c.out) {
        for (int k = 0; k < src->n_img; k++) {
            for (int f = 0; f < c.out[k].n; f++)
                free(c.out[k].f[f].bits);
            free(c.out[k].f);
        }
        free(c.out);
    }
    free(c.hit);
    free(values);
    free(pixels);
    if (st != R3D_OK) {
        r3d_dcm_ds_free(ds);
        return st;
    }
    if (info)
        *info = inf;
    *out = ds;
    return R3D_OK;
}

r3d_status r3d_seg_write(const r3d_labelmap *labels, const r3d_dcm_source *src,
                         const r3d_seg_write_opts *opts, const char *path,
                         r3d_seg_write_info *info, r3d_error *err)
{
    r3d_dcm_ds *ds;
    r3d_status st = r3d_seg_build(labels, src, opts, &ds, info, err);
    if (st != R3D_OK)
        return st;
    st = r3d_dcm_write_file(ds, path, NULL, err);
    r3d_dcm_ds_free(ds);
    return st;
}

/* pixels.c - the image pixel description of a data set and the decoding of
 * one frame into the layout dicom.h promises.
 *
 * What: r3d_dcm_pixinfo_get reads and checks the Image Pixel module (Rows,
 * Columns, NumberOfFrames, SamplesPerPixel, Bits*, PixelRepresentation,
 * PlanarConfiguration, PhotometricInterpretation, palette descriptors);
 * r3d_dcm_decode_frame turns frame k into host-order values, samples
 * interleaved, sign-extended (signed) or masked (unsigned) from BitsStored,
 * YBR_FULL / YBR_FULL_422 converted to RGB, PALETTE COLOR expanded to RGB.
 *
 * How: native pixel data (implicit/explicit LE and BE, deflated data sets)
 * is addressed directly: frame k starts at byte k*frame_bytes, or at bit
 * k*rows*cols*samples for 1-bit data (DICOM SEG frames are not byte
 * aligned). Encapsulated data (PS3.5 §A.4) is first mapped from frames to
 * fragments: the Extended Offset Table (7FE0,0001/0002) when present, else
 * the Basic Offset Table, else one fragment per frame when the counts agree,
 * else every fragment for a single frame, else frame starts found by their
 * codestream markers (JPEG SOI FFD8, JPEG 2000 SOC FF4F FF51, JP2 box) the
 * way pydicom's generate_pixel_data_frame does. The frame's bytes go to the
 * codec (codec.h); Encapsulated Uncompressed (1.2.840.10008.1.2.1.98) and
 * Deflated Image Frame Compression (1.2.840.10008.1.2.8.1) are handled here
 * because their frames are native once unwrapped.
 *
 * Cost: one pass over the frame's values. Fragments are joined into a
 * temporary buffer only when a frame spans several. No state outside the
 * call: concurrent calls on different frames or files are safe.
 *
 * References: DICOM PS3.3 §C.7.6.3 (Image Pixel module), §C.7.6.3.1.2
 * (YBR_FULL), §C.7.9 (palette LUTs); PS3.5 §8.1.1, §8.2, §A.4, Annex G;
 * pydicom's numpy_handler (bit unpacking, 422 expansion) and
 * convert_color_space (the YBR->RGB rounding we match).
 */
#include "r3d/dicom.h"
#include "io/dicom/codec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define TAG_PIXEL_DATA R3D_TAG(0x7FE0, 0x0010)
#define TAG_FLOAT_PIXEL_DATA R3D_TAG(0x7FE0, 0x0008)
#define TAG_DOUBLE_PIXEL_DATA R3D_TAG(0x7FE0, 0x0009)

/* Decoded bytes we accept for the whole object: far above any scanner's
 * output, far below what a hostile header could claim. */
#define MAX_TOTAL_BYTES ((uint64_t)1 << 38)

static const r3d_dcm_el *pixel_element(const r3d_dcm_file *f, int *is_float)
{
    const r3d_dcm_item *root = r3d_dcm_root(f);
    const r3d_dcm_el *e = r3d_dcm_find(root, TAG_PIXEL_DATA);
    *is_float = 0;
    if (e)
        return e;
    if ((e = r3d_dcm_find(root, TAG_FLOAT_PIXEL_DATA))) {
        *is_float = 32;
        return e;
    }
    if ((e = r3d_dcm_find(root, TAG_DOUBLE_PIXEL_DATA))) {
        *is_float = 64;
        return e;
    }
    return NULL;
}

static int out_bytes(const r3d_dcm_pixinfo *p)
{
    if (p->bits_alloc <= 8)
        return 1;
    if (p->bits_alloc <= 16)
        return 2;
    if (p->bits_alloc <= 32)
        return 4;
    return 8;
}

size_t r3d_dcm_frame_bytes(const r3d_dcm_pixinfo *p)
{
    size_t f[3] = {(size_t)(p->rows > 0 ? p->rows : 0), (size_t)(p->cols > 0 ? p->cols : 0), 0},
           out;
    if (p->palette_bits) {
        f[2] = (size_t)(3 * (p->palette_bits / 8));
    } else {
        if (p->samples <= 0 || p->bits_alloc <= 0)
            return 0;
        f[2] = (size_t)p->samples * (size_t)out_bytes(p);
    }
    return r3d_mul_sizes(f, 3, &out) ? out : 0;
}

static int is_native_ts(const char *ts)
{
    r3d_codec_kind k = r3d_codec_for_ts(ts);
    return k == R3D_CODEC_NONE || k == R3D_CODEC_DEFLATE;
}

static int photometric_is(const r3d_dcm_pixinfo *p, const char *name)
{
    return strcmp(p->photometric, name) == 0;
}

/* Bytes of one native (uncompressed) frame as stored; 1-bit data is counted
 * in bits by the callers. YBR_FULL_422 stores two samples per pixel. */
static int native_frame_size(const r3d_dcm_pixinfo *p, uint64_t *bytes)
{
    uint64_t v = (uint64_t)p->rows * (uint64_t)p->cols;
    if (p->samples == 3 && photometric_is(p, "YBR_FULL_422"))
        v *= 2;
    else
        v *= (uint64_t)p->samples;
    *bytes = v * (uint64_t)(p->bits_alloc / 8);
    return 1;
}

/* Palette LUT (PS3.3 §C.7.9): descriptor [entries (0 = 65536), first mapped
 * value, bits]; the entry width of a plain LUT is taken from the data length,
 * as pydicom does, because writers disagree about the descriptor's third
 * value. Segmented LUTs (§C.7.9.2, 0028,1221-1223) are expanded into `owned`
 * the way pydicom's _expand_segmented_lut does. */
typedef struct palette {
    const uint8_t *data[3]; /* plain LUT data in the file, or NULL */
    uint16_t *owned[3];     /* expanded segmented LUT (host order) */
    uint32_t entries;
    int32_t first;
    int bits;
    int big;
} palette;

static void palette_free(palette *pal)
{
    for (int ch = 0; ch < 3; ch++)
        free(pal->owned[ch]);
    memset(pal, 0, sizeof *pal);
}

typedef struct seg_lut {
    uint16_t *out;
    uint32_t n, cap; /* cap = entries */
} seg_lut;

static uint16_t seg_word(const uint8_t *d, size_t i, int big)
{
    return big ? (uint16_t)(d[2 * i] << 8 | d[2 * i + 1]) : (uint16_t)(d[2 * i + 1] << 8 | d[2 * i]);
}

/* Expand segments from word `pos` of d (nw words); stop after max_segments
 * (0 = all) or when the table is full. depth bounds indirect segments. */
static int seg_expand(seg_lut *l, const uint8_t *d, size_t nw, size_t pos, uint32_t max_segments,
                      int have_last, uint16_t last, int big, int depth)
{
    uint32_t done = 0;
    if (depth > 4)
        return 0;
    while (pos + 1 < nw && l->n < l->cap) {
        uint16_t op = seg_word(d, pos, big), len = seg_word(d, pos + 1, big);
        pos += 2;
        if (op == 0) { /* discrete: len values */
            for (uint32_t i = 0; i < len && pos < nw && l->n < l->cap; i++)
                l->out[l->n++] = seg_word(d, pos++, big);
        } else if (op == 1) { /* linear: from the last value to y1 in len steps */
            double y0;
            if (l->n)
                y0 = l->out[l->n - 1];
            else if (have_last)
                y0 = last;
            else
                return 0;
            if (pos >= nw || len == 0)
                return 0;
            double y1 = seg_word(d, pos++, big);
            double start = y0 + (y1 - y0) / len, step = len > 1 ? (y1 - start) / (len - 1) : 0;
            for (uint32_t i = 0; i < len && l->n < l->cap; i++) {
                /* numpy's linspace + around: half to even, last value exact */
                double v = i + 1 == len ? y1 : nearbyint((double)i * step + start);
                l->out[l->n++] = (uint16_t)v;
            }
        } else if (op == 2) { /* indirect: copy len segments from a word offset */
            if (!l->n || pos + 1 >= nw)
                return 0;
            size_t off = (size_t)seg_word(d, pos + 1, big) << 16 | seg_word(d, pos, big);
            pos += 2;
            if (off >= nw || !seg_expand(l, d, nw, off, len, 1, l->out[l->n - 1], big, depth + 1))
                return 0;
        } else {
            return 0;
        }
        if (max_segments && ++done == max_segments)
            break;
    }
    return 1;
}

static int palette_read(const r3d_dcm_file *f, palette *pal)
{
    const r3d_dcm_item *root = r3d_dcm_root(f);
    memset(pal, 0, sizeof *pal);
    pal->big = r3d_dcm_big_endian(f);
    for (int ch = 0; ch < 3; ch++) {
        double d[3];
        if (r3d_dcm_num(f, root, R3D_TAG(0x0028, 0x1101 + ch), d, 3) != 3)
            goto fail;
        uint32_t entries = d[0] == 0 ? 65536u : (uint32_t)(uint16_t)d[0];
        int bits;
        const r3d_dcm_el *e = r3d_dcm_find(root, R3D_TAG(0x0028, 0x1201 + ch));
        const r3d_dcm_el *seg = r3d_dcm_find(root, R3D_TAG(0x0028, 0x1221 + ch));
        if (e && e->val && e->len && e->len != R3D_DCM_UNDEFINED) {
            if (e->len == entries * 2u || e->len == entries * 2u + 1)
                bits = 16;
            else if (e->len == entries || e->len == entries + 1)
                bits = 8;
            else
                goto fail;
            pal->data[ch] = e->val;
        } else if (seg && seg->val && seg->len >= 4 && seg->len != R3D_DCM_UNDEFINED) {
            bits = d[2] == 8 ? 8 : 16;
            seg_lut l = {malloc(entries * sizeof(uint16_t)), 0, entries};
            pal->owned[ch] = l.out;
            if (!l.out || !seg_expand(&l, seg->val, seg->len / 2, 0, 0, 0, 0, pal->big, 0) ||
                l.n == 0)
                goto fail;
            entries = l.n; /* a short table clips like a shorter one */
        } else {
            goto fail;
        }
        if (ch > 0 && (entries != pal->entries || bits != pal->bits))
            goto fail;
        pal->entries = entries;
        /* The first mapped value is US or SS like the pixels. */
        pal->first = (int32_t)d[1];
        pal->bits = bits;
    }
    return 1;
fail:
    palette_free(pal);
    return 0;
}

r3d_status r3d_dcm_pixinfo_get(const r3d_dcm_file *f, r3d_dcm_pixinfo *p, r3d_error *err)
{
    const char *path = r3d_dcm_path(f);
    const r3d_dcm_item *root = r3d_dcm_root(f);
    memset(p, 0, sizeof *p);
    int fl;
    const r3d_dcm_el *pix = pixel_element(f, &fl);
    if (!pix)
        return r3d_fail(err, R3D_ENOTFOUND, "%s: no pixel data element (7FE0,0010)", path);

    double rows = r3d_dcm_num1(f, root, R3D_TAG(0x0028, 0x0010), -1);
    double cols = r3d_dcm_num1(f, root, R3D_TAG(0x0028, 0x0011), -1);
    double frames = r3d_dcm_num1(f, root, R3D_TAG(0x0028, 0x0008), 1);
    double samples = r3d_dcm_num1(f, root, R3D_TAG(0x0028, 0x0002), 1);
    double ba = r3d_dcm_num1(f, root, R3D_TAG(0x0028, 0x0100), fl ? fl : -1);
    double bs = r3d_dcm_num1(f, root, R3D_TAG(0x0028, 0x0101), ba);
    double hb = r3d_dcm_num1(f, root, R3D_TAG(0x0028, 0x0102), bs - 1);
    double pr = r3d_dcm_num1(f, root, R3D_TAG(0x0028, 0x0103), 0);
    double pc = r3d_dcm_num1(f, root, R3D_TAG(0x0028, 0x0006), 0);

    if (rows < 0 || cols < 0)
        return r3d_fail(err, R3D_EFORMAT, "%s: pixel data without %s", path,
                        rows < 0 ? "Rows (0028,0010)" : "Columns (0028,0011)");
    if (!(rows >= 1 && rows <= 65535) || !(cols >= 1 && cols <= 65535))
        return r3d_fail(err, R3D_EFORMAT,
                        "%s: impossible image size Rows (0028,0010) = %g, Columns (0028,0011) = "
                        "%g",
                        path, rows, cols);
    if (!(frames >= 1 && frames <= 2147483647.0) || frames != floor(frames))
        return r3d_fail(err, R3D_EFORMAT, "%s: NumberOfFrames (0028,0008) = %g is not a positive "
                        "integer", path, frames);
    if (samples != 1 && samples != 3)
        return r3d_fail(err, samples == 4 ? R3D_EUNSUPPORTED : R3D_EFORMAT,
                        "%s: SamplesPerPixel (0028,0002) = %g (only 1 and 3 are supported)", path,
                        samples);
    if (ba != 1 && ba != 8 && ba != 16 && ba != 32 && !(ba == 64 && fl == 64))
        return r3d_fail(err, ba < 0 ? R3D_EFORMAT : R3D_EUNSUPPORTED,
                        "%s: BitsAllocated (0028,0100) = %g (1, 8, 16, 32 or 64 for double "
                        "float pixel data)",
                        path, ba);
    if (fl && ba != fl)
        return r3d_fail(err, R3D_EFORMAT,
                        "%s: BitsAllocated (0028,0100) = %g contradicts %s pixel data", path, ba,
                        fl == 32 ? "float" : "double float");
    if (!(bs >= 1 && bs <= ba))
        return r3d_fail(err, R3D_EFORMAT,
                        "%s: BitsStored (0028,0101) = %g does not fit BitsAllocated %g", path, bs,
                        ba);
    if (!(hb >= bs - 1 && hb < ba))
        return r3d_fail(err, R3D_EFORMAT,
                        "%s: HighBit (0028,0102) = %g impossible with BitsStored %g and "
                        "BitsAllocated %g",
                        path, hb, bs, ba);
    if (pr != 0 && pr != 1)
        return r3d_fail(err, R3D_EFORMAT, "%s: PixelRepresentation (0028,0103) = %g is not 0 or 1",
                        path, pr);
    if (samples == 3 && pc != 0 && pc != 1)
        return r3d_fail(err, R3D_EFORMAT, "%s: PlanarConfiguration (0028,0006) = %g is not 0 or 1",
                        path, pc);
    if (ba == 1 && samples != 1)
        return r3d_fail(err, R3D_EFORMAT, "%s: 1-bit pixels with %g samples per pixel", path,
                        samples);

    p->rows = (int)rows;
    p->cols = (int)cols;
    p->frames = (int)frames;
    p->samples = (int)samples;
    p->bits_alloc = (int)ba;
    p->bits_stored = (int)bs;
    p->high_bit = (int)hb;
    p->is_signed = (int)pr;
    p->planar = samples == 3 ? (int)pc : 0;
    p->is_float = fl != 0;
    if (!r3d_dcm_str(f, root, R3D_TAG(0x0028, 0x0004), -1, p->photometric, sizeof p->photometric))
        strcpy(p->photometric, samples == 3 ? "RGB" : "MONOCHROME2");

    if (photometric_is(p, "PALETTE COLOR")) {
        palette pal;
        if (samples != 1 || ba > 16)
            return r3d_fail(err, R3D_EFORMAT,
                            "%s: PALETTE COLOR with %d samples of %d bits (1 sample of 8 or 16 "
                            "bits expected)",
                            path, p->samples, p->bits_alloc);
        if (palette_read(f, &pal))
            p->palette_bits = pal.bits;
        palette_free(&pal);
        /* else: decode_frame refuses with the reason; the header stays usable */
    }

    uint64_t fb = r3d_dcm_frame_bytes(p);
    if (fb == 0 || fb * (uint64_t)p->frames > MAX_TOTAL_BYTES)
        return r3d_fail(err, R3D_EFORMAT,
                        "%s: impossible dimensions: %d x %d x %d samples x %d frames of %d bits "
                        "(more than %llu GiB decoded)",
                        path, p->cols, p->rows, p->samples, p->frames, p->bits_alloc,
                        (unsigned long long)(MAX_TOTAL_BYTES >> 30));

    /* Native pixel data must hold every frame the header announces. */
    if (pix->len != R3D_DCM_UNDEFINED && is_native_ts(r3d_dcm_transfer_syntax(f))) {
        uint64_t need;
        if (p->bits_alloc == 1) {
            need = ((uint64_t)p->rows * (uint64_t)p->cols * (uint64_t)p->frames + 7) / 8;
        } else {
            native_frame_size(p, &need);
            need *= (uint64_t)p->frames;
        }
        if (pix->len < need)
            return r3d_fail(err, R3D_EFORMAT,
                            "%s: pixel data (%04X,%04X) at byte %llu has %u bytes but %d x %d x "
                            "%d samples x %d frames of %d bits need %llu",
                            path, pix->tag >> 16, pix->tag & 0xFFFF,
                            (unsigned long long)pix->offset, pix->len, p->cols, p->rows,
                            p->samples, p->frames, p->bits_alloc, (unsigned long long)need);
    }
    return R3D_OK;
}

/* ---- post-processing shared by native and decoded frames -------------------- */

/* Sign-extend (signed) or mask (unsigned) integers from bits_stored: the bits
 * above are padding or, in old files, overlay planes. */
static void fix_bits(const r3d_dcm_pixinfo *p, uint8_t *buf, size_t n_values)
{
    int bs = p->bits_stored, ob = out_bytes(p);
    if (p->is_float || p->bits_alloc == 1 || bs >= 8 * ob)
        return;
    /* Branch-free forms (mask, or shift up and arithmetic shift down) so
     * the compiler vectorises them: this runs over every voxel of a study. */
    uint32_t mask = (uint32_t)((1ull << bs) - 1);
    int sh = 8 * ob - bs;
    if (ob == 1) {
        if (p->is_signed)
            for (size_t i = 0; i < n_values; i++)
                buf[i] = (uint8_t)((int8_t)(uint8_t)(buf[i] << sh) >> sh);
        else
            for (size_t i = 0; i < n_values; i++)
                buf[i] &= (uint8_t)mask;
    } else if (ob == 2) {
        uint16_t *b = (uint16_t *)buf;
        if (p->is_signed)
            for (size_t i = 0; i < n_values; i++)
                b[i] = (uint16_t)((int16_t)(uint16_t)(b[i] << sh) >> sh);
        else
            for (size_t i = 0; i < n_values; i++)
                b[i] &= (uint16_t)mask;
    } else if (ob == 4) {
        uint32_t *b = (uint32_t *)buf;
        if (p->is_signed)
            for (size_t i = 0; i < n_values; i++)
                b[i] = (uint32_t)((int32_t)(b[i] << sh) >> sh);
        else
            for (size_t i = 0; i < n_values; i++)
                b[i] &= mask;
    }
}

/* YBR_FULL -> RGB (PS3.3 §C.7.6.3.1.2), rounded as pydicom's
 * convert_color_space: floor(x + 0.5), clipped. */
static void ybr_to_rgb(const r3d_dcm_pixinfo *p, uint8_t *buf, size_t n_pixels)
{
    const double kg_cb = -0.114 * 1.772 / 0.587, kg_cr = -0.299 * 1.402 / 0.587;
    int ob = out_bytes(p);
    double c = (double)(1u << (p->bits_stored - 1)), maxv = (double)((1u << p->bits_stored) - 1);
    for (size_t i = 0; i < n_pixels; i++) {
        double y, cb, cr;
        if (ob == 1) {
            y = buf[3 * i];
            cb = buf[3 * i + 1];
            cr = buf[3 * i + 2];
        } else {
            uint16_t *b = (uint16_t *)buf;
            y = b[3 * i];
            cb = b[3 * i + 1];
            cr = b[3 * i + 2];
        }
        cb -= c;
        cr -= c;
        double rgb[3] = {y + 1.402 * cr, y + kg_cb * cb + kg_cr * cr, y + 1.772 * cb};
        for (int k = 0; k < 3; k++) {
            double v = floor(rgb[k] + 0.5);
            v = v < 0 ? 0 : v > maxv ? maxv : v;
            if (ob == 1)
                buf[3 * i + k] = (uint8_t)v;
            else
                ((uint16_t *)buf)[3 * i + k] = (uint16_t)v;
        }
    }
}

static r3d_status palette_expand(const r3d_dcm_file *f, const r3d_dcm_pixinfo *p,
                                 const uint8_t *idx, size_t n_pixels, uint8_t *out,
                                 r3d_error *err)
{
    palette pal;
    if (!palette_read(f, &pal) || pal.bits != p->palette_bits) {
        palette_free(&pal);
        return r3d_fail(err, R3D_EUNSUPPORTED,
                        "%s: PALETTE COLOR without a usable lookup table (0028,1101-1103 "
                        "descriptors with 0028,1201-1203 data or 0028,1221-1223 segments)",
                        r3d_dcm_path(f));
    }
    int ib = out_bytes(p);
    for (size_t i = 0; i < n_pixels; i++) {
        int64_t v = ib == 1 ? (p->is_signed ? (int8_t)idx[i] : idx[i])
                            : (p->is_signed ? ((const int16_t *)idx)[i]
                                            : ((const uint16_t *)idx)[i]);
        int64_t k = v - pal.first;
        if (k < 0)
            k = 0;
        if (k > (int64_t)pal.entries - 1)
            k = (int64_t)pal.entries - 1;
        for (int ch = 0; ch < 3; ch++) {
            if (pal.owned[ch]) {
                if (pal.bits == 8)
                    out[3 * i + ch] = (uint8_t)pal.owned[ch][k];
                else
                    ((uint16_t *)out)[3 * i + ch] = pal.owned[ch][k];
            } else if (pal.bits == 8) {
                out[3 * i + ch] = pal.data[ch][k];
            } else {
                const uint8_t *d = pal.data[ch] + 2 * k;
                uint16_t w = pal.big ? (uint16_t)(d[0] << 8 | d[1]) : (uint16_t)(d[1] << 8 | d[0]);
                ((uint16_t *)out)[3 * i + ch] = w;
            }
        }
    }
    palette_free(&pal);
    return R3D_OK;
}

/* Everything after the values are in host order and interleaved. `vals` is
 * the frame as rows*cols*samples values (palette indices for PALETTE COLOR);
 * out is the caller's buffer (may be vals when not palette). */
static r3d_status finish_frame(const r3d_dcm_file *f, const r3d_dcm_pixinfo *p, uint8_t *vals,
                               uint8_t *out, int convert_ybr, r3d_error *err)
{
    size_t n_pixels = (size_t)p->rows * (size_t)p->cols;
    fix_bits(p, vals, n_pixels * (size_t)p->samples);
    if (p->palette_bits)
        return palette_expand(f, p, vals, n_pixels, out, err);
    if (convert_ybr && p->samples == 3 && !p->is_float && p->bits_alloc <= 16 &&
        strncmp(p->photometric, "YBR_FULL", 8) == 0)
        ybr_to_rgb(p, vals, n_pixels);
    return R3D_OK;
}

/* ---- native frames ---------------------------------------------------------- */

/* Native frame `frame` of src (src_len bytes) into vals (rows*cols*samples
 * values of out_bytes each, host order, interleaved). */
static r3d_status native_frame(const r3d_dcm_file *f, const r3d_dcm_pixinfo *p,
                               const uint8_t *src, uint64_t src_len, uint64_t frame, int big,
                               int ow_swap, uint8_t *vals, const char *what, r3d_error *err)
{
    /* ow_swap: 8- or 1-bit values in an OW element of a big-endian file are
     * stored as byte-swapped 16-bit words (PS3.5 §8.1.1), so byte i is at i^1. */
    const size_t sx = ow_swap ? 1 : 0;
    const char *path = r3d_dcm_path(f);
    uint64_t npix = (uint64_t)p->rows * (uint64_t)p->cols;
    if (p->bits_alloc == 1) {
        uint64_t bit0 = frame * npix;
        if ((bit0 + npix + 7) / 8 + sx > src_len)
            return r3d_fail(err, R3D_EFORMAT,
                            "%s: %s holds %llu bytes, too few for 1-bit frame %llu", path, what,
                            (unsigned long long)src_len, (unsigned long long)frame);
        for (uint64_t i = 0; i < npix; i++) {
            uint64_t b = bit0 + i;
            vals[i] = (uint8_t)((src[(b >> 3) ^ sx] >> (b & 7)) & 1);
        }
        return R3D_OK;
    }
    uint64_t fsz;
    native_frame_size(p, &fsz);
    uint64_t end_byte = frame * fsz + fsz;
    if (sx)
        end_byte = (end_byte + 1) & ~(uint64_t)1;
    if (end_byte > src_len)
        return r3d_fail(err, R3D_EFORMAT,
                        "%s: %s holds %llu bytes, too few for frame %llu of %llu bytes", path,
                        what, (unsigned long long)src_len, (unsigned long long)frame,
                        (unsigned long long)fsz);
    const uint8_t *s = src + frame * fsz;
    int w = p->bits_alloc / 8;
    size_t nval = (size_t)(fsz / (uint64_t)w);
    int planar = p->samples == 3 && p->planar == 1;
    int is422 = p->samples == 3 && photometric_is(p, "YBR_FULL_422");
    if (is422 && (w != 1 || p->cols % 2))
        return r3d_fail(err, R3D_EUNSUPPORTED,
                        "%s: native YBR_FULL_422 with %d-bit samples or an odd width %d", path,
                        p->bits_alloc, p->cols);
    size_t base = (size_t)(s - src);
    if (is422) {
        /* Y0 Y1 Cb Cr per pixel pair -> two full pixels (pydicom's expansion). */
        for (uint64_t i = 0; i < npix / 2; i++) {
            size_t q = base + 4 * (size_t)i;
            uint8_t *o = vals + 6 * i;
            o[0] = src[q ^ sx];
            o[1] = src[(q + 2) ^ sx];
            o[2] = src[(q + 3) ^ sx];
            o[3] = src[(q + 1) ^ sx];
            o[4] = o[1];
            o[5] = o[2];
        }
        return R3D_OK;
    }
    for (size_t i = 0; i < nval; i++) {
        /* interleaved position of stored value i */
        size_t o = planar ? (i % (size_t)npix) * 3 + i / (size_t)npix : i;
        const uint8_t *q = s + i * (size_t)w;
        switch (w) {
        case 1:
            vals[o] = src[(base + i) ^ sx];
            break;
        case 2: {
            uint16_t v = big ? (uint16_t)(q[0] << 8 | q[1]) : (uint16_t)(q[1] << 8 | q[0]);
            memcpy(vals + 2 * o, &v, 2);
            break;
        }
        case 4: {
            uint32_t v = big ? (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3]
                             : (uint32_t)q[3] << 24 | (uint32_t)q[2] << 16 | (uint32_t)q[1] << 8 | q[0];
            memcpy(vals + 4 * o, &v, 4);
            break;
        }
        case 8: {
            uint64_t v = 0;
            for (int k = 0; k < 8; k++)
                v |= (uint64_t)q[big ? k : 7 - k] << (8 * (7 - k));
            memcpy(vals + 8 * o, &v, 8);
            break;
        }
        }
    }
    return R3D_OK;
}

/* ---- encapsulated frames ------------------------------------------------------ */

static int frag_starts_frame(const uint8_t *d, uint32_t n)
{
    if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF)
        return 1; /* JPEG / JPEG-LS SOI */
    if (n >= 4 && d[0] == 0xFF && d[1] == 0x4F && d[2] == 0xFF && d[3] == 0x51)
        return 1; /* JPEG 2000 codestream SOC + SIZ */
    if (n >= 8 && !memcmp(d, "\0\0\0\x0CjP  ", 8))
        return 1; /* JP2 file signature box */
    return 0;
}

static uint64_t rd_le(const uint8_t *p, int w)
{
    uint64_t v = 0;
    for (int i = w - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Index of the fragment whose item starts `off` bytes after the first
 * fragment's item, or -1. Fragments are in one buffer, in order. */
static int64_t frag_at(const r3d_dcm_el *el, uint64_t off)
{
    uint32_t lo = 0, hi = el->n_frag;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint64_t o = (uint64_t)(el->frag[mid] - el->frag[0]);
        if (o < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < el->n_frag && (uint64_t)(el->frag[lo] - el->frag[0]) == off ? (int64_t)lo : -1;
}

/* Which fragments [*first, *first + *count) hold frame `frame`. */
static r3d_status frame_fragments(const r3d_dcm_file *f, const r3d_dcm_el *el, int frames,
                                  int frame, uint32_t *first, uint32_t *count, r3d_error *err)
{
    const char *path = r3d_dcm_path(f);
    uint32_t n = el->n_frag;
    if (n == 0)
        return r3d_fail(err, R3D_EFORMAT, "%s: encapsulated pixel data at byte %llu has no "
                        "fragments", path, (unsigned long long)el->offset);

    /* Extended Offset Table: 64-bit offsets and lengths, one fragment per frame. */
    const r3d_dcm_el *eot = r3d_dcm_find(r3d_dcm_root(f), R3D_TAG(0x7FE0, 0x0001));
    if (eot && eot->val && eot->len == 8u * (uint32_t)frames) {
        int64_t i = frag_at(el, rd_le(eot->val + 8 * frame, 8));
        if (i >= 0) {
            *first = (uint32_t)i;
            *count = 1;
            return R3D_OK;
        }
    }
    /* Basic Offset Table: valid when it has one increasing offset per frame,
     * each the start of a fragment; otherwise fall back (some writers fill
     * it wrongly). */
    if (el->bot && el->bot_len >= 4u * (uint32_t)frames && frames > 0) {
        int ok = rd_le(el->bot, 4) == 0;
        int64_t a = -1, b = n;
        for (int k = 0; ok && k < frames; k++) {
            uint64_t o = rd_le(el->bot + 4 * k, 4);
            if (k > 0 && o <= rd_le(el->bot + 4 * (k - 1), 4)) {
                ok = 0;
                break;
            }
            if (k == frame || k == frame + 1) {
                int64_t i = frag_at(el, o);
                if (i < 0)
                    ok = 0;
                else if (k == frame)
                    a = i;
                else
                    b = i;
            }
        }
        if (ok && a >= 0 && b > a) {
            *first = (uint32_t)a;
            *count = (uint32_t)(b - a);
            return R3D_OK;
        }
    }
    if (frames == 1) {
        *first = 0;
        *count = n;
        return R3D_OK;
    }
    if (n == (uint32_t)frames) {
        *first = (uint32_t)frame;
        *count = 1;
        return R3D_OK;
    }
    if (n > (uint32_t)frames) {
        uint32_t k = 0, a = 0, b = n;
        for (uint32_t i = 0; i < n; i++) {
            if (i > 0 && !frag_starts_frame(el->frag[i], el->frag_len[i]))
                continue;
            if (k == (uint32_t)frame)
                a = i;
            else if (k == (uint32_t)frame + 1)
                b = i;
            k++;
        }
        if (k == (uint32_t)frames) {
            *first = a;
            *count = b - a;
            return R3D_OK;
        }
    }
    return r3d_fail(err, R3D_EFORMAT,
                    "%s: cannot tell which of the %u pixel data fragments belong to frame %d of "
                    "%d (no usable offset table and no marker at each frame start)",
                    path, n, frame, frames);
}

static r3d_status inflate_frame(const char *path, const uint8_t *in, size_t n, uint8_t *out,
                                size_t want, r3d_error *err)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        if (inflateInit2(&zs, attempt == 0 ? -15 : 15 + 32) != Z_OK)
            return r3d_fail(err, R3D_ENOMEM, "%s: cannot start inflating a frame", path);
        zs.next_in = (Bytef *)in;
        zs.avail_in = (uInt)(n > 0xFFFFFFFFu ? 0xFFFFFFFFu : n);
        zs.next_out = out;
        zs.avail_out = (uInt)(want > 0xFFFFFFFFu ? 0xFFFFFFFFu : want);
        int zr = inflate(&zs, Z_FINISH);
        size_t got = zs.total_out;
        inflateEnd(&zs);
        if ((zr == Z_STREAM_END || zr == Z_BUF_ERROR) && got == want)
            return R3D_OK;
    }
    return r3d_fail(err, R3D_EFORMAT, "%s: deflated frame does not inflate to %zu bytes", path,
                    want);
}

r3d_status r3d_dcm_decode_frame(const r3d_dcm_file *f, const r3d_dcm_pixinfo *p, int frame,
                                void *out, size_t out_size, r3d_error *err)
{
    const char *path = r3d_dcm_path(f);
    if (!p || !out)
        return r3d_fail(err, R3D_EARG, "%s: decode_frame needs pixinfo and a buffer", path);
    if (frame < 0 || frame >= p->frames)
        return r3d_fail(err, R3D_EARG, "%s: frame %d out of range (0..%d)", path, frame,
                        p->frames - 1);
    size_t need = r3d_dcm_frame_bytes(p);
    if (need == 0 || out_size < need)
        return r3d_fail(err, R3D_EARG, "%s: output buffer has %zu bytes, frame needs %zu", path,
                        out_size, need);
    if (photometric_is(p, "PALETTE COLOR") && !p->palette_bits)
        return r3d_fail(err, R3D_EUNSUPPORTED,
                        "%s: PALETTE COLOR without a usable lookup table (0028,1101-1103 "
                        "descriptors with 0028,1201-1203 data or 0028,1221-1223 segments)",
                        path);
    int fl;
    const r3d_dcm_el *el = pixel_element(f, &fl);
    if (!el)
        return r3d_fail(err, R3D_ENOTFOUND, "%s: no pixel data element (7FE0,0010)", path);
    if (!el->val && !el->n_frag && el->len != 0)
        return r3d_fail(err, R3D_EARG,
                        "%s: pixel data was not read (file opened with R3D_DCM_HEADER_ONLY)",
                        path);
    const char *ts = r3d_dcm_transfer_syntax(f);
    size_t npix = (size_t)p->rows * (size_t)p->cols;
    size_t nval = npix * (size_t)p->samples;
    /* Values land in out directly, except palette indices, which need a
     * buffer of their own before expansion. */
    uint8_t *vals = out, *tmp = NULL;
    if (p->palette_bits) {
        tmp = malloc(nval * (size_t)out_bytes(p));
        if (!tmp)
            return r3d_fail(err, R3D_ENOMEM, "%s: out of memory for frame %d", path, frame);
        vals = tmp;
    }
    r3d_status st;
    char where[600];
    snprintf(where, sizeof where, "%s: frame %d", path, frame);

    if (el->len != R3D_DCM_UNDEFINED) {
        if (!is_native_ts(ts)) {
            if (r3d_codec_for_ts(ts) == R3D_CODEC_UNKNOWN && !r3d_dcm_ts_name(ts))
                st = r3d_fail(err, R3D_EUNSUPPORTED,
                              "%s: unknown transfer syntax UID %s: cannot decode pixel data",
                              path, ts);
            else
                st = r3d_fail(err, R3D_EUNSUPPORTED,
                              "%s: transfer syntax %s (%s) needs encapsulated pixel data but "
                              "(%04X,%04X) at byte %llu has a defined length",
                              path, ts, r3d_dcm_ts_name(ts) ? r3d_dcm_ts_name(ts) : "unknown",
                              el->tag >> 16, el->tag & 0xFFFF, (unsigned long long)el->offset);
            goto done;
        }
        int big = r3d_dcm_big_endian(f);
        st = native_frame(f, p, el->val, el->len, (uint64_t)frame, big,
                          big && el->vr == R3D_VR('O', 'W') && p->bits_alloc <= 8, vals,
                          "pixel data", err);
        if (st == R3D_OK)
            st = finish_frame(f, p, vals, out, 1, err);
        goto done;
    }

    /* Encapsulated. */
    int uncompressed = strcmp(ts, "1.2.840.10008.1.2.1.98") == 0;
    int deflated = strcmp(ts, "1.2.840.10008.1.2.8.1") == 0;
    r3d_codec_kind kind = r3d_codec_for_ts(ts);
    if (!uncompressed && !deflated &&
        (kind == R3D_CODEC_UNKNOWN || kind == R3D_CODEC_NONE || kind == R3D_CODEC_DEFLATE)) {
        const char *name = r3d_dcm_ts_name(ts);
        st = r3d_fail(err, R3D_EUNSUPPORTED,
                      "%s: cannot decode pixel data in transfer syntax %s (%s)", path,
                      ts[0] ? ts : "(none)",
                      kind == R3D_CODEC_UNKNOWN ? (name ? name : "unknown UID")
                                                : "native syntax but encapsulated pixel data");
        goto done;
    }
    uint32_t first = 0, count = 0;
    st = frame_fragments(f, el, p->frames, frame, &first, &count, err);
    if (st != R3D_OK)
        goto done;
    const uint8_t *src = el->frag[first];
    size_t src_n = el->frag_len[first];
    uint8_t *joined = NULL;
    if (count > 1) {
        size_t total = 0;
        for (uint32_t i = 0; i < count; i++)
            total += el->frag_len[first + i];
        joined = malloc(total ? total : 1);
        if (!joined) {
            st = r3d_fail(err, R3D_ENOMEM, "%s: out of memory joining %u fragments", where,
                          count);
            goto done;
        }
        size_t o = 0;
        for (uint32_t i = 0; i < count; i++) {
            memcpy(joined + o, el->frag[first + i], el->frag_len[first + i]);
            o += el->frag_len[first + i];
        }
        src = joined;
        src_n = total;
    }
    if (uncompressed || deflated) {
        uint64_t fsz;
        if (p->bits_alloc == 1)
            fsz = (npix + 7) / 8;
        else
            native_frame_size(p, &fsz);
        uint8_t *raw = NULL;
        if (deflated) {
            raw = malloc((size_t)fsz ? (size_t)fsz : 1);
            if (!raw)
                st = r3d_fail(err, R3D_ENOMEM, "%s: out of memory", where);
            else
                st = inflate_frame(where, src, src_n, raw, (size_t)fsz, err);
        } else {
            st = R3D_OK;
        }
        if (st == R3D_OK)
            st = native_frame(f, p, raw ? raw : src, raw ? fsz : src_n, 0, 0, 0, vals,
                              "the frame's fragment", err);
        free(raw);
        if (st == R3D_OK)
            st = finish_frame(f, p, vals, out, 1, err);
        free(joined);
        goto done;
    }
    r3d_codec_frame fr = {p->rows, p->cols, p->samples, p->bits_alloc, p->bits_stored,
                          p->is_signed, p->planar, p->photometric};
    st = r3d_codec_decode(kind, src, src_n, &fr, vals, nval * (size_t)out_bytes(p), where, err);
    free(joined);
    if (st == R3D_OK)
        st = finish_frame(f, p, vals, out, !r3d_codec_outputs_rgb(kind, &fr), err);
done:
    free(tmp);
    return st;
}

/* jpeg_dct.c - our own ITU-T T.81 Huffman DCT decoder, 8- and 12-bit:
 * baseline (SOF0), extended sequential (SOF1, processes 2 and 4: DICOM
 * 1.2.840.10008.1.2.4.51) and progressive (SOF2, spectral selection and
 * successive approximation: the retired .53 and .55). libjpeg-turbo 2.1 as
 * packaged decodes only 8-bit samples, and most DICOM extended-process files
 * are 12-bit CT; codec_jpeg.c sends 12-bit streams here and falls back here
 * when libjpeg rejects an 8-bit one.
 *
 * Algorithm: every scan adds to a per-component array of quantised DCT
 * coefficients (T.81 F.2 sequential, G.2 progressive: DC first/refine, AC
 * first with end-of-band runs, AC refinement); when all scans are read each
 * 8x8 block is dequantised and inverse transformed with libjpeg's "islow"
 * integer IDCT (jidctint.c: Loeffler, Ligtenberg & Moschytz 1989, 13-bit
 * constants, PASS1_BITS 2 for 8-bit and 1 for 12-bit samples), so the samples
 * equal libjpeg's and dcmtk's. Subsampled chroma is upsampled as
 * libjpeg-turbo's default "fancy" (triangle) filter does for 2:1 factors and
 * by replication otherwise, then YCbCr is turned into RGB (jdcolor.c
 * constants) when r3d__jpeg_color_is_ycbcr says the stream is YCbCr.
 *
 * Invariants: the frame must match the DICOM header before anything is
 * allocated for pixels; coefficient indices come from a padded zig-zag table
 * and are checked against 63; dequantised coefficients are clamped to
 * +-2^20 (valid 12-bit data stays below 2^16) and the IDCT runs in 64-bit, so
 * hostile data can make wrong pixels but not overflow or stray writes.
 *
 * Cost: O(pixels) time; memory one int32 per coefficient of every component
 * (4 bytes per sample) plus a 16-bit plane per component.
 * References: ITU-T T.81 Annexes A, F, G; IJG libjpeg 6b jidctint.c,
 * jdphuff.c; libjpeg-turbo jdsample.c, jdcolor.c.
 */
#include "jpeg_stream.h"

#include <stdlib.h>
#include <string.h>

typedef struct dct_comp {
    int bw, bh;       /* blocks allocated per row / column */
    int cw, ch;       /* samples of the component: ceil(X*h/hmax), ceil(Y*v/vmax) */
    int32_t *coef;    /* bw*bh blocks of 64, natural order */
    int32_t dc_pred;
    uint16_t q[64];
    int q_set;
    uint16_t *plane;  /* bw*8 x bh*8 samples after the IDCT */
} dct_comp;

typedef struct dct_state {
    r3d_jpeg js;
    dct_comp c[4];
    int mcus_x, mcus_y;
    uint32_t eobrun;
} dct_state;

/* ---- entropy decoding of one block (T.81 F.2.2, G.2) ------------------------ */

#define CORRUPT (-1)

static int block_sequential(r3d_jpeg_bits *b, const r3d_jpeg_huff *dc, const r3d_jpeg_huff *ac,
                            int32_t *pred, int32_t *coef)
{
    int t = jb_huff(b, dc);
    if (t < 0 || t > 15)
        return CORRUPT;
    int32_t diff = jb_extend(jb_get(b, t), t);
    *pred = (int32_t)((uint32_t)*pred + (uint32_t)diff); /* wraps on hostile data, no UB */
    coef[0] = *pred;
    for (int k = 1; k < 64; k++) {
        int rs = jb_huff(b, ac);
        if (rs < 0)
            return CORRUPT;
        int r = rs >> 4, s = rs & 15;
        if (s == 0) {
            if (r != 15)
                break; /* EOB */
            k += 15;
            continue;
        }
        k += r;
        if (k > 63)
            return CORRUPT;
        coef[r3d__jpeg_zigzag[k]] = jb_extend(jb_get(b, s), s);
    }
    return 0;
}

static int block_dc_first(r3d_jpeg_bits *b, const r3d_jpeg_huff *dc, int al, int32_t *pred,
                          int32_t *coef)
{
    int t = jb_huff(b, dc);
    if (t < 0 || t > 15)
        return CORRUPT;
    int32_t diff = jb_extend(jb_get(b, t), t);
    *pred = (int32_t)((uint32_t)*pred + (uint32_t)diff);
    coef[0] = (int32_t)((uint32_t)*pred << al);
    return 0;
}

static int block_dc_refine(r3d_jpeg_bits *b, int al, int32_t *coef)
{
    if (jb_get(b, 1))
        coef[0] |= (int32_t)1 << al;
    return 0;
}

static int block_ac_first(dct_state *s, const r3d_jpeg_huff *ac, int32_t *coef)
{
    r3d_jpeg *js = &s->js;
    r3d_jpeg_bits *b = &js->bits;
    if (s->eobrun > 0) {
        s->eobrun--;
        return 0;
    }
    for (int k = js->ss; k <= js->se; k++) {
        int rs = jb_huff(b, ac);
        if (rs < 0)
            return CORRUPT;
        int r = rs >> 4, sz = rs & 15;
        if (sz) {
            k += r;
            if (k > 63)
                return CORRUPT;
            coef[r3d__jpeg_zigzag[k]] = (int32_t)((uint32_t)jb_extend(jb_get(b, sz), sz) << js->al);
        } else if (r == 15) {
            k += 15;
        } else {
            s->eobrun = (1u << r) - 1u;
            if (r)
                s->eobrun += jb_get(b, r);
            break;
        }
    }
    return 0;
}

/* Successive approximation refinement of AC coefficients (T.81 G.1.2.3),
 * in libjpeg's jdphuff.c decode_mcu_AC_refine form. */
static int block_ac_refine(dct_state *s, const r3d_jpeg_huff *ac, int32_t *coef)
{
    r3d_jpeg *js = &s->js;
    r3d_jpeg_bits *b = &js->bits;
    const int32_t p1 = (int32_t)1 << js->al, m1 = -p1;
    int k = js->ss;
    if (s->eobrun == 0) {
        for (; k <= js->se; k++) {
            int rs = jb_huff(b, ac);
            if (rs < 0)
                return CORRUPT;
            int r = rs >> 4, sz = rs & 15;
            int32_t val = 0;
            if (sz) {
                if (sz != 1)
                    return CORRUPT;
                val = jb_get(b, 1) ? p1 : m1;
            } else if (r != 15) {
                s->eobrun = 1u << r;
                if (r)
                    s->eobrun += jb_get(b, r);
                break;
            }
            /* Walk over r zero-history coefficients, refining the non-zero
             * ones on the way. */
            while (k <= js->se) {
                int32_t *c = &coef[r3d__jpeg_zigzag[k]];
                if (*c != 0) {
                    if (jb_get(b, 1) && (*c & p1) == 0)
                        *c += *c >= 0 ? p1 : m1;
                } else {
                    if (--r < 0)
                        break;
                }
                k++;
            }
            if (val && k <= js->se)
                coef[r3d__jpeg_zigzag[k]] = val;
        }
    }
    if (s->eobrun > 0) {
        for (; k <= js->se; k++) {
            int32_t *c = &coef[r3d__jpeg_zigzag[k]];
            if (*c != 0 && jb_get(b, 1) && (*c & p1) == 0)
                *c += *c >= 0 ? p1 : m1;
        }
        s->eobrun--;
    }
    return 0;
}

/* ---- one scan ---------------------------------------------------------------- */

static r3d_status decode_scan(dct_state *s)
{
    r3d_jpeg *js = &s->js;
    const int progressive = js->sof == 0xC2;
    const char *where = js->where;

    if (!progressive) {
        /* T.81 wants Ss=0, Se=63, Ah=Al=0 here; some encoders write other
         * values (pydicom's JPEG-lossy.dcm has Se=0) and libjpeg only warns,
         * decoding the full block, so do we. */
        js->ss = 0;
        js->se = 63;
        js->ah = js->al = 0;
    }
    if (progressive) {
        if (js->ss > js->se || js->se > 63 || (js->ss == 0 && js->se != 0) ||
            (js->ss > 0 && js->ns != 1) || js->ah > 13 || js->al > 13)
            return r3d_fail(js->err, R3D_EFORMAT, "%s: JPEG progressive scan parameters out of "
                            "range (Ss %d, Se %d, Ah %d, Al %d)", where, js->ss, js->se,
                            js->ah, js->al);
    }
    const int need_dc = js->ss == 0 && js->ah == 0, need_ac = js->se > 0;
    for (int i = 0; i < js->ns; i++) {
        dct_comp *c = &s->c[js->scomp[i]];
        int tq = js->comp[js->scomp[i]].tq;
        if (need_dc && !js->dc[js->td[i]].present)
            return r3d_fail(js->err, R3D_EFORMAT, "%s: JPEG scan uses DC Huffman table %d, "
                            "which is not defined", where, js->td[i]);
        if (need_ac && !js->ac[js->ta[i]].present)
            return r3d_fail(js->err, R3D_EFORMAT, "%s: JPEG scan uses AC Huffman table %d, "
                            "which is not defined", where, js->ta[i]);
        if (!c->q_set) {
            /* T.81 B.2.4.1: the table in force when the component's first
             * scan starts is the one that applies. */
            if (!js->qt_present[tq])
                return r3d_fail(js->err, R3D_EFORMAT, "%s: JPEG component uses quantisation "
                                "table %d, which is not defined", where, tq);
            memcpy(c->q, js->qt[tq], sizeof c->q);
            c->q_set = 1;
        }
        c->dc_pred = 0;
    }
    s->eobrun = 0;

    r3d_jpeg_bits *b = &js->bits;
    const long ri = js->restart_interval;
    int next_rst = 0;
    long mcu = 0;
    int single = js->ns == 1;
    dct_comp *c0 = &s->c[js->scomp[0]];
    int units_x = single ? (c0->cw + 7) / 8 : s->mcus_x;
    int units_y = single ? (c0->ch + 7) / 8 : s->mcus_y;

    for (int uy = 0; uy < units_y; uy++) {
        for (int ux = 0; ux < units_x; ux++, mcu++) {
            if (ri > 0 && mcu > 0 && mcu % ri == 0) {
                if (jb_overrun(b))
                    goto truncated;
                r3d_status st = r3d__jpeg_restart(js, &next_rst);
                if (st != R3D_OK)
                    return st;
                for (int i = 0; i < js->ns; i++)
                    s->c[js->scomp[i]].dc_pred = 0;
                s->eobrun = 0;
            }
            for (int i = 0; i < js->ns; i++) {
                const int ci = js->scomp[i];
                dct_comp *c = &s->c[ci];
                const int nh = single ? 1 : js->comp[ci].h, nv = single ? 1 : js->comp[ci].v;
                const r3d_jpeg_huff *dc = &js->dc[js->td[i]], *ac = &js->ac[js->ta[i]];
                for (int v = 0; v < nv; v++) {
                    for (int h = 0; h < nh; h++) {
                        size_t bx = (size_t)ux * (size_t)nh + (size_t)h;
                        size_t by = (size_t)uy * (size_t)nv + (size_t)v;
                        int32_t *coef = c->coef + (by * (size_t)c->bw + bx) * 64;
                        int r;
                        if (!progressive)
                            r = block_sequential(b, dc, ac, &c->dc_pred, coef);
                        else if (js->ss == 0 && js->ah == 0)
                            r = block_dc_first(b, dc, js->al, &c->dc_pred, coef);
                        else if (js->ss == 0)
                            r = block_dc_refine(b, js->al, coef);
                        else if (js->ah == 0)
                            r = block_ac_first(s, ac, coef);
                        else
                            r = block_ac_refine(s, ac, coef);
                        if (r == CORRUPT)
                            return r3d_fail(js->err, R3D_EFORMAT, "%s: JPEG data corrupt (bad "
                                            "Huffman code in block %zu,%zu)", where, bx, by);
                    }
                }
            }
        }
        if (jb_overrun(b))
            goto truncated;
    }
    return R3D_OK;
truncated:
    return r3d_fail(js->err, R3D_EFORMAT, "%s: JPEG data ends early (truncated or corrupt)",
                    where);
}

/* ---- inverse DCT: libjpeg's jpeg_idct_islow ------------------------------------ */

#define CONST_BITS 13
#define FIX_0_298631336 2446
#define FIX_0_390180644 3196
#define FIX_0_541196100 4433
#define FIX_0_765366865 6270
#define FIX_0_899976223 7373
#define FIX_1_175875602 9633
#define FIX_1_501321110 12299
#define FIX_1_847759065 15137
#define FIX_1_961570560 16069
#define FIX_2_053119869 16819
#define FIX_2_562915447 20995
#define FIX_3_072711026 25172
#define DESCALE(x, n) (((x) + ((int64_t)1 << ((n) - 1))) >> (n))

/* One 8-point 1-D pass of the islow butterfly: in[0], in[s], .., in[7s] ->
 * out[0], out[d], .., out[7d], descaled by 2^sh. Columns and rows differ only
 * in strides and descale, so both passes call this (inlined, constant
 * strides). */
static inline void idct8(const int64_t *in, int s, int64_t *out, int d, int sh)
{
    int64_t z2 = in[2 * s], z3 = in[6 * s];
    int64_t z1 = (z2 + z3) * FIX_0_541196100;
    int64_t tmp2 = z1 + z3 * -FIX_1_847759065;
    int64_t tmp3 = z1 + z2 * FIX_0_765366865;
    int64_t tmp0 = (in[0] + in[4 * s]) * (1 << CONST_BITS);
    int64_t tmp1 = (in[0] - in[4 * s]) * (1 << CONST_BITS);
    int64_t tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3;
    int64_t tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;
    tmp0 = in[7 * s];
    tmp1 = in[5 * s];
    tmp2 = in[3 * s];
    tmp3 = in[s];
    z1 = tmp0 + tmp3;
    z2 = tmp1 + tmp2;
    z3 = tmp0 + tmp2;
    int64_t z4 = tmp1 + tmp3;
    int64_t z5 = (z3 + z4) * FIX_1_175875602;
    tmp0 *= FIX_0_298631336;
    tmp1 *= FIX_2_053119869;
    tmp2 *= FIX_3_072711026;
    tmp3 *= FIX_1_501321110;
    z1 *= -FIX_0_899976223;
    z2 *= -FIX_2_562915447;
    z3 *= -FIX_1_961570560;
    z4 *= -FIX_0_390180644;
    z3 += z5;
    z4 += z5;
    tmp0 += z1 + z3;
    tmp1 += z2 + z4;
    tmp2 += z2 + z3;
    tmp3 += z1 + z4;
    out[0] = DESCALE(tmp10 + tmp3, sh);
    out[7 * d] = DESCALE(tmp10 - tmp3, sh);
    out[d] = DESCALE(tmp11 + tmp2, sh);
    out[6 * d] = DESCALE(tmp11 - tmp2, sh);
    out[2 * d] = DESCALE(tmp12 + tmp1, sh);
    out[5 * d] = DESCALE(tmp12 - tmp1, sh);
    out[3 * d] = DESCALE(tmp13 + tmp0, sh);
    out[4 * d] = DESCALE(tmp13 - tmp0, sh);
}

static void idct_islow(const int32_t *coef, const uint16_t *q, int precision, uint16_t *out,
                       size_t stride)
{
    const int pass1 = precision <= 8 ? 2 : 1;
    const int64_t center = (int64_t)1 << (precision - 1), maxv = ((int64_t)1 << precision) - 1;
    int64_t ws[64];
    int64_t in[64];
    for (int i = 0; i < 64; i++) {
        int64_t v = (int64_t)coef[i] * q[i];
        in[i] = v > (1 << 20) ? (1 << 20) : v < -(1 << 20) ? -(1 << 20) : v;
    }
    /* Pass 1: columns, into ws scaled up by 2^pass1. */
    for (int col = 0; col < 8; col++) {
        const int64_t *ip = in + col;
        int64_t *wp = ws + col;
        if (!ip[8] && !ip[16] && !ip[24] && !ip[32] && !ip[40] && !ip[48] && !ip[56]) {
            int64_t dc = ip[0] * (1 << pass1);
            for (int r = 0; r < 8; r++)
                wp[8 * r] = dc;
            continue;
        }
        idct8(ip, 8, wp, 8, CONST_BITS - pass1);
    }
    /* Pass 2: rows, descaled by 2^(CONST_BITS + pass1 + 3), level-shifted. */
    for (int row = 0; row < 8; row++) {
        int64_t o[8];
        idct8(ws + 8 * row, 1, o, 1, CONST_BITS + pass1 + 3);
        uint16_t *op = out + (size_t)row * stride;
        for (int i = 0; i < 8; i++) {
            int64_t v = o[i] + center;
            op[i] = (uint16_t)(v < 0 ? 0 : v > maxv ? maxv : v);
        }
    }
}

/* ---- upsampling (libjpeg-turbo jdsample.c) -------------------------------------- */

/* Component plane c (cw x ch, stride sp) -> full-resolution plane dst
 * (W x H). Fancy triangle filters for 2:1 factors on components wider than
 * two samples, as libjpeg-turbo; replication for every other ratio. */
static void upsample(const dct_comp *c, int fh, int fv, uint16_t *dst, int W, int H,
                     uint16_t *tmp)
{
    const size_t sp = (size_t)c->bw * 8, W_ = (size_t)W;
    const int cw = c->cw, ch = c->ch;
    const uint16_t *src = c->plane;
    if (fh == 1 && fv == 1) {
        for (int y = 0; y < H; y++)
            memcpy(dst + (size_t)y * W_, src + (size_t)y * sp, W_ * 2);
        return;
    }
    /* The filters libjpeg-turbo's jinit_upsampler picks: h2v1 and h2v2 only
     * for components wider than two samples, h1v2 always. */
    const int h2v1 = fh == 2 && fv == 1 && cw > 2;
    const int fancy_v = fv == 2 && (fh == 1 || (fh == 2 && cw > 2));
    /* Horizontal first, into rows of tmp (cw*fh wide). */
    const size_t tw = (size_t)cw * (size_t)fh;
    for (int y = 0; y < ch; y++) {
        const uint16_t *in = src + (size_t)y * sp;
        uint16_t *o = tmp + (size_t)y * tw;
        if (h2v1) {
            o[0] = in[0];
            o[1] = (uint16_t)((in[0] * 3 + in[1] + 2) >> 2);
            for (int x = 1; x < cw - 1; x++) {
                int v = in[x] * 3;
                o[2 * x] = (uint16_t)((v + in[x - 1] + 1) >> 2);
                o[2 * x + 1] = (uint16_t)((v + in[x + 1] + 2) >> 2);
            }
            o[2 * cw - 2] = (uint16_t)((in[cw - 1] * 3 + in[cw - 2] + 1) >> 2);
            o[2 * cw - 1] = in[cw - 1];
        } else if (!fancy_v) {
            for (size_t x = 0; x < tw; x++)
                o[x] = in[x / (size_t)fh];
        } else {
            memcpy(o, in, (size_t)cw * 2); /* the vertical filter below does both axes */
        }
    }
    for (int y = 0; y < H; y++) {
        uint16_t *o = dst + (size_t)y * W_;
        int sy = y / fv;
        if (sy >= ch)
            sy = ch - 1;
        if (!fancy_v) {
            memcpy(o, tmp + (size_t)sy * tw, W_ * 2);
            continue;
        }
        /* Nearer row weighs 3, the other neighbour 1 (edges replicate). */
        int ny = (y & 1) ? (sy + 1 < ch ? sy + 1 : ch - 1) : (sy > 0 ? sy - 1 : 0);
        const uint16_t *i0 = tmp + (size_t)sy * tw, *i1 = tmp + (size_t)ny * tw;
        if (fh == 1) {
            int bias = (y & 1) ? 2 : 1; /* h1v2_fancy_upsample */
            for (int x = 0; x < W; x++)
                o[x] = (uint16_t)((i0[x] * 3 + i1[x] + bias) >> 2);
            continue;
        }
        /* h2v2_fancy_upsample, written to a full output row then cropped. */
        int32_t this_s = i0[0] * 3 + i1[0], next_s = i0[1] * 3 + i1[1], last_s;
        uint16_t *row = tmp + (size_t)ch * tw; /* scratch row of 2*cw */
        row[0] = (uint16_t)((this_s * 4 + 8) >> 4);
        row[1] = (uint16_t)((this_s * 3 + next_s + 7) >> 4);
        last_s = this_s;
        this_s = next_s;
        for (int x = 1; x < cw - 1; x++) {
            next_s = i0[x + 1] * 3 + i1[x + 1];
            row[2 * x] = (uint16_t)((this_s * 3 + last_s + 8) >> 4);
            row[2 * x + 1] = (uint16_t)((this_s * 3 + next_s + 7) >> 4);
            last_s = this_s;
            this_s = next_s;
        }
        row[2 * cw - 2] = (uint16_t)((this_s * 3 + last_s + 8) >> 4);
        row[2 * cw - 1] = (uint16_t)((this_s * 4 + 7) >> 4);
        memcpy(o, row, W_ * 2);
    }
}

/* ---- frame --------------------------------------------------------------------- */

static r3d_status setup_frame(dct_state *s, const r3d_codec_frame *fr, int out_bytes)
{
    r3d_jpeg *js = &s->js;
    const char *where = js->where;
    if (js->sof >= 0xC9 && js->sof <= 0xCB)
        return r3d_fail(js->err, R3D_EUNSUPPORTED, "%s: JPEG with arithmetic coding (SOF%d) "
                        "at %d bits is not supported", where, js->sof - 0xC0, js->precision);
    if (js->sof != 0xC0 && js->sof != 0xC1 && js->sof != 0xC2)
        return r3d_fail(js->err, R3D_EUNSUPPORTED, "%s: JPEG frame type SOF%d is not a Huffman "
                        "DCT process", where, js->sof - 0xC0);
    if (js->width != fr->cols || js->height != fr->rows)
        return r3d_fail(js->err, R3D_EFORMAT, "%s: JPEG stream is %dx%d but the header says "
                        "%dx%d", where, js->width, js->height, fr->cols, fr->rows);
    if (js->ncomp != fr->samples)
        return r3d_fail(js->err, R3D_EFORMAT, "%s: JPEG stream has %d components but the "
                        "header says %d samples per pixel", where, js->ncomp, fr->samples);
    if ((js->precision != 8 && js->precision != 12) || js->precision > 8 * out_bytes)
        return r3d_fail(js->err, R3D_EFORMAT, "%s: JPEG DCT stream has %d-bit samples (8 or 12 "
                        "allowed, fitting BitsAllocated %d)", where, js->precision,
                        fr->bits_alloc);
    s->mcus_x = (js->width + 8 * js->hmax - 1) / (8 * js->hmax);
    s->mcus_y = (js->height + 8 * js->vmax - 1) / (8 * js->vmax);
    for (int i = 0; i < js->ncomp; i++) {
        dct_comp *c = &s->c[i];
        const r3d_jpeg_comp *jc = &js->comp[i];
        c->bw = s->mcus_x * jc->h;
        c->bh = s->mcus_y * jc->v;
        c->cw = (js->width * jc->h + js->hmax - 1) / js->hmax;
        c->ch = (js->height * jc->v + js->vmax - 1) / js->vmax;
        size_t f[3] = {(size_t)c->bw, (size_t)c->bh, 64}, n;
        if (!r3d_mul_sizes(f, 3, &n) || n > SIZE_MAX / sizeof(int32_t))
            return r3d_fail(js->err, R3D_ENOMEM, "%s: JPEG frame too large", where);
        c->coef = calloc(n, sizeof(int32_t));
        c->plane = malloc(n * sizeof(uint16_t));
        if (!c->coef || !c->plane)
            return r3d_fail(js->err, R3D_ENOMEM, "%s: no memory for JPEG coefficients", where);
    }
    return R3D_OK;
}

static r3d_status finish_frame(dct_state *s, const r3d_codec_frame *fr, uint8_t *out,
                               int out_bytes)
{
    r3d_jpeg *js = &s->js;
    const int W = js->width, H = js->height, nc = js->ncomp;
    for (int i = 0; i < nc; i++) {
        dct_comp *c = &s->c[i];
        if (!c->q_set)
            return r3d_fail(js->err, R3D_EFORMAT, "%s: JPEG stream has no scan for component "
                            "%d", js->where, i + 1);
        const size_t stride = (size_t)c->bw * 8;
        for (int by = 0; by < c->bh; by++)
            for (int bx = 0; bx < c->bw; bx++)
                idct_islow(c->coef + ((size_t)by * (size_t)c->bw + (size_t)bx) * 64, c->q,
                           js->precision, c->plane + (size_t)by * 8 * stride + (size_t)bx * 8,
                           stride);
    }
    const size_t npix = (size_t)W * (size_t)H;
    if (nc == 1) {
        const dct_comp *c = &s->c[0];
        for (int y = 0; y < H; y++) {
            const uint16_t *in = c->plane + (size_t)y * (size_t)c->bw * 8;
            if (out_bytes == 1)
                for (int x = 0; x < W; x++)
                    out[(size_t)y * (size_t)W + (size_t)x] = (uint8_t)in[x];
            else
                memcpy(out + (size_t)y * (size_t)W * 2, in, (size_t)W * 2);
        }
        return R3D_OK;
    }

    /* Colour: upsample each component to full size, then convert. */
    uint16_t *full = malloc(npix * 3 * sizeof(uint16_t));
    size_t tmp_n = 0;
    for (int i = 0; i < 3; i++) {
        size_t t = ((size_t)s->c[i].ch + 1) * (size_t)s->c[i].cw * 4;
        if (t > tmp_n)
            tmp_n = t;
    }
    uint16_t *tmp = malloc(tmp_n * sizeof(uint16_t));
    if (!full || !tmp) {
        free(full);
        free(tmp);
        return r3d_fail(js->err, R3D_ENOMEM, "%s: no memory for JPEG colour planes", js->where);
    }
    for (int i = 0; i < 3; i++) {
        const r3d_jpeg_comp *jc = &js->comp[i];
        int fh = js->hmax / jc->h, fv = js->vmax / jc->v;
        if (js->hmax % jc->h || js->vmax % jc->v) {
            free(full);
            free(tmp);
            return r3d_fail(js->err, R3D_EUNSUPPORTED, "%s: JPEG sampling factors %dx%d of "
                            "%dx%d are not a whole ratio", js->where, jc->h, jc->v, js->hmax,
                            js->vmax);
        }
        upsample(&s->c[i], fh, fv, full + (size_t)i * npix, W, H, tmp);
    }
    int ids[3] = {js->comp[0].id, js->comp[1].id, js->comp[2].id};
    const int ycc = r3d__jpeg_color_is_ycbcr(js->jfif, js->adobe, js->adobe_transform, ids,
                                             fr->photometric);
    for (size_t p = 0; p < npix; p++) {
        for (int i = 0; i < 3; i++) {
            uint16_t v = full[(size_t)i * npix + p];
            if (out_bytes == 1)
                out[3 * p + (size_t)i] = (uint8_t)v;
            else
                memcpy(out + 2 * (3 * p + (size_t)i), &v, 2);
        }
    }
    free(full);
    free(tmp);
    if (ycc)
        r3d__ybr_full_to_rgb(out, npix, out_bytes, js->precision);
    return R3D_OK;
}

r3d_status r3d__jpeg_dct_decode(const uint8_t *in, size_t n, const r3d_codec_frame *fr,
                                uint8_t *out, size_t out_size, const char *where,
                                r3d_error *err)
{
    size_t n_values;
    r3d_status st = r3d__codec_check_frame(fr, out_size, where, &n_values, err);
    if (st != R3D_OK)
        return st;
    const int out_bytes = r3d__codec_out_bytes(fr);
    if (out_bytes > 2)
        return r3d_fail(err, R3D_EFORMAT, "%s: JPEG DCT data with BitsAllocated %d", where,
                        fr->bits_alloc);
    dct_state *s = calloc(1, sizeof *s);
    if (!s)
        return r3d_fail(err, R3D_ENOMEM, "%s: no memory for a JPEG decoder", where);
    st = r3d__jpeg_open(&s->js, in, n, where, err);
    int r = 0, scans = 0;
    while (st == R3D_OK && (r = r3d__jpeg_next_scan(&s->js, &st)) == 1) {
        if (scans++ == 0)
            st = setup_frame(s, fr, out_bytes);
        if (st == R3D_OK)
            st = decode_scan(s);
        if (st == R3D_OK)
            r3d__jpeg_end_scan(&s->js);
    }
    if (st == R3D_OK && scans == 0)
        st = r3d_fail(err, R3D_EFORMAT, "%s: JPEG stream has no scan", where);
    if (st == R3D_OK)
        st = finish_frame(s, fr, out, out_bytes);
    for (int i = 0; i < 4; i++) {
        free(s->c[i].coef);
        free(s->c[i].plane);
    }
    free(s);
    return st;
}

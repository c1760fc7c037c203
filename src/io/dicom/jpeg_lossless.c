/* jpeg_lossless.c - JPEG lossless, ITU-T T.81 process 14 (SOF3, Huffman):
 * DICOM transfer syntaxes 1.2.840.10008.1.2.4.57 (any predictor) and .70
 * (predictor 1, "SV1"). libjpeg-turbo 2.1 has no lossless mode, so this is
 * ours.
 *
 * Algorithm (T.81 Annex H): each sample is predicted from its reconstructed
 * neighbours Ra (left), Rb (above), Rc (above-left) by the scan's predictor
 * Ss: 1 Ra, 2 Rb, 3 Rc, 4 Ra+Rb-Rc, 5 Ra+((Rb-Rc)>>1), 6 Rb+((Ra-Rc)>>1),
 * 7 (Ra+Rb)>>1. The first sample of the image and of each restart interval is
 * predicted by 2^(P-Pt-1), the rest of that first line by Ra, and the first
 * sample of every other line by Rb (H.1.2.1). The Huffman-coded difference
 * category SSSS (0..16) is followed by SSSS extra bits, except SSSS=16 which
 * means 32768 with no extra bits (H.1.2.2); sums are modulo 2^16. The output
 * sample is the reconstruction shifted left by the point transform Pt.
 *
 * Scans may interleave the components (one sample of each per MCU) or carry
 * one component each; all components must be sampled 1x1, as DICOM's
 * lossless syntaxes use them. Only two lines per component are kept.
 *
 * Quirk: a few old encoders write 16 extra bits after SSSS=16 (against
 * H.1.2.2). If a stream that used SSSS=16 fails to decode the standard way, it
 * is decoded again assuming those bits, and kept if that succeeds.
 *
 * Invariants: the frame must match the DICOM header before anything is
 * written; a Huffman code the table lacks, a category above 16, a missing
 * restart marker or data that ends early is R3D_EFORMAT.
 * Cost: O(pixels * components), one Huffman decode per sample.
 */
#include "jpeg_stream.h"

#include <stdlib.h>
#include <string.h>

typedef struct ll_state {
    r3d_jpeg js;
    int ssss16_extra_bits; /* the quirk mode above */
    int saw_ssss16;
} ll_state;

static void put_value(uint8_t *out, size_t idx, int out_bytes, uint32_t v)
{
    if (out_bytes == 1) {
        out[idx] = (uint8_t)v;
    } else if (out_bytes == 2) {
        uint16_t w = (uint16_t)v;
        memcpy(out + 2 * idx, &w, 2);
    } else {
        memcpy(out + 4 * idx, &v, 4);
    }
}

static r3d_status decode_scan(ll_state *s, const r3d_codec_frame *fr, uint8_t *out,
                              int out_bytes, uint16_t *lines)
{
    r3d_jpeg *js = &s->js;
    const int W = js->width, H = js->height, ns = js->ns, P = js->precision;
    const int pred_sel = js->ss, pt = js->al;
    const size_t W_ = (size_t)W, nsamp = (size_t)fr->samples;
    const r3d_jpeg_huff *tab[4];

    if (pred_sel < 1 || pred_sel > 7)
        return r3d_fail(js->err, R3D_EFORMAT, "%s: JPEG lossless predictor %d (1..7 allowed)",
                        js->where, pred_sel);
    if (pt >= P)
        return r3d_fail(js->err, R3D_EFORMAT, "%s: JPEG lossless point transform %d for %d-bit "
                        "samples", js->where, pt, P);
    for (int i = 0; i < ns; i++) {
        tab[i] = &js->dc[js->td[i]];
        if (!tab[i]->present)
            return r3d_fail(js->err, R3D_EFORMAT, "%s: JPEG scan uses Huffman table %d, which "
                            "is not defined", js->where, js->td[i]);
    }

    const int32_t initial = (int32_t)1 << (P - pt - 1);
    const long ri = js->restart_interval;
    long mcu = 0;
    int next_rst = 0, iy = 0, ix = 0; /* where the current restart interval began */
    r3d_jpeg_bits *b = &js->bits;

    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++, mcu++) {
            if (ri > 0 && mcu > 0 && mcu % ri == 0) {
                if (jb_overrun(b))
                    goto truncated;
                r3d_status st = r3d__jpeg_restart(js, &next_rst);
                if (st != R3D_OK)
                    return st;
                iy = y;
                ix = x;
            }
            for (int i = 0; i < ns; i++) {
                uint16_t *cur = lines + ((size_t)i * 2 + (size_t)(y & 1)) * W_;
                const uint16_t *prev = lines + ((size_t)i * 2 + (size_t)((y + 1) & 1)) * W_;
                int32_t pred;
                if (y == iy && x == ix) {
                    pred = initial;
                } else if (y == iy || (y == iy + 1 && x < ix && x > 0)) {
                    pred = cur[x - 1];
                } else if (x == 0) {
                    pred = prev[0];
                } else {
                    int32_t ra = cur[x - 1], rb = prev[x], rc = prev[x - 1];
                    switch (pred_sel) {
                    case 1: pred = ra; break;
                    case 2: pred = rb; break;
                    case 3: pred = rc; break;
                    case 4: pred = ra + rb - rc; break;
                    case 5: pred = ra + ((rb - rc) >> 1); break;
                    case 6: pred = rb + ((ra - rc) >> 1); break;
                    default: pred = (ra + rb) >> 1; break;
                    }
                }
                int t = jb_huff(b, tab[i]);
                int32_t diff;
                if (t < 0 || t > 16)
                    return r3d_fail(js->err, R3D_EFORMAT, "%s: JPEG lossless data corrupt "
                                    "(bad Huffman code at row %d, column %d)", js->where, y, x);
                if (t == 16) {
                    s->saw_ssss16 = 1;
                    if (s->ssss16_extra_bits)
                        jb_get(b, 16);
                    diff = 32768;
                } else {
                    diff = jb_extend(jb_get(b, t), t);
                }
                uint16_t v = (uint16_t)((uint32_t)(pred + diff) & 0xFFFFu);
                cur[x] = v;
                int c = js->scomp[i];
                put_value(out, ((size_t)y * W_ + (size_t)x) * nsamp + (size_t)c, out_bytes,
                          (uint32_t)v << pt);
            }
        }
        if (jb_overrun(b))
            goto truncated;
    }
    return R3D_OK;
truncated:
    return r3d_fail(js->err, R3D_EFORMAT, "%s: JPEG lossless data ends early (truncated or "
                    "corrupt)", js->where);
}

static r3d_status lossless_run(ll_state *s, const uint8_t *in, size_t n,
                               const r3d_codec_frame *fr, uint8_t *out, const char *where,
                               r3d_error *err)
{
    r3d_jpeg *js = &s->js;
    r3d_status st = r3d__jpeg_open(js, in, n, where, err);
    if (st != R3D_OK)
        return st;
    const int out_bytes = r3d__codec_out_bytes(fr);
    uint16_t *lines = NULL;
    unsigned done_mask = 0;
    int r;
    while ((r = r3d__jpeg_next_scan(js, &st)) == 1) {
        if (!lines) {
            if (js->sof != 0xC3) {
                st = r3d_fail(err, R3D_EUNSUPPORTED, "%s: JPEG frame type FF%02X is not "
                              "lossless process 14", where, js->sof);
                goto done;
            }
            if (js->width != fr->cols || js->height != fr->rows) {
                st = r3d_fail(err, R3D_EFORMAT, "%s: JPEG lossless stream is %dx%d but the "
                              "header says %dx%d", where, js->width, js->height, fr->cols,
                              fr->rows);
                goto done;
            }
            if (js->ncomp != fr->samples) {
                st = r3d_fail(err, R3D_EFORMAT, "%s: JPEG lossless stream has %d components "
                              "but the header says %d samples per pixel", where, js->ncomp,
                              fr->samples);
                goto done;
            }
            if (js->precision < 2 || js->precision > 16 || js->precision > 8 * out_bytes) {
                st = r3d_fail(err, R3D_EFORMAT, "%s: JPEG lossless stream has %d-bit samples, "
                              "which do not fit BitsAllocated %d", where, js->precision,
                              fr->bits_alloc);
                goto done;
            }
            for (int c = 0; c < js->ncomp; c++)
                if (js->comp[c].h != 1 || js->comp[c].v != 1) {
                    st = r3d_fail(err, R3D_EUNSUPPORTED, "%s: JPEG lossless with subsampled "
                                  "components is not supported", where);
                    goto done;
                }
            lines = calloc((size_t)js->ncomp * 2 * (size_t)js->width, sizeof *lines);
            if (!lines) {
                st = r3d_fail(err, R3D_ENOMEM, "%s: no memory for JPEG lossless lines", where);
                goto done;
            }
        }
        st = decode_scan(s, fr, out, out_bytes, lines);
        if (st != R3D_OK)
            goto done;
        for (int i = 0; i < js->ns; i++)
            done_mask |= 1u << js->scomp[i];
        r3d__jpeg_end_scan(js);
        if (done_mask == (1u << js->ncomp) - 1)
            break; /* every component decoded: what follows cannot change the pixels */
    }
    if (r < 0)
        goto done;
    if (!lines || done_mask != (1u << js->ncomp) - 1) {
        st = r3d_fail(err, R3D_EFORMAT, "%s: JPEG lossless stream ends before every component "
                      "was decoded", where);
        goto done;
    }
    st = R3D_OK;
done:
    free(lines);
    return st;
}

r3d_status r3d__jpeg_lossless_decode(const uint8_t *in, size_t n, const r3d_codec_frame *fr,
                                     uint8_t *out, size_t out_size, const char *where,
                                     r3d_error *err)
{
    size_t n_values;
    r3d_status st = r3d__codec_check_frame(fr, out_size, where, &n_values, err);
    if (st != R3D_OK)
        return st;
    ll_state *s = calloc(1, sizeof *s);
    if (!s)
        return r3d_fail(err, R3D_ENOMEM, "%s: no memory for a JPEG decoder", where);
    /* Errors go to a local report first so that a quirk retry that succeeds
     * leaves the caller's report untouched. */
    r3d_error first = R3D_ERROR_INIT, second = R3D_ERROR_INIT;
    st = lossless_run(s, in, n, fr, out, where, &first);
    if (st == R3D_EFORMAT && s->saw_ssss16) {
        s->ssss16_extra_bits = 1;
        if (lossless_run(s, in, n, fr, out, where, &second) == R3D_OK)
            st = R3D_OK;
    }
    free(s);
    if (st != R3D_OK && err)
        *err = first;
    return st;
}

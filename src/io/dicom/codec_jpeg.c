/* codec_jpeg.c - JPEG (ITU-T T.81) frames of every process DICOM uses, routed
 * by the stream's own frame marker rather than by the transfer syntax,
 * because mislabelled files are common (a 12-bit stream under "baseline", a
 * JPEG-LS stream under a JPEG UID):
 *
 *   SOF0/SOF1/SOF2 8-bit, SOF9/SOF10 8-bit  libjpeg-turbo (SIMD, lenient); if
 *                                    it gives up on a Huffman stream, our own
 *                                    decoder (jpeg_dct.c) gets a try
 *   SOF1/SOF2 12-bit (and SOF0)      our own DCT decoder (jpeg_dct.c): the
 *                                    packaged libjpeg-turbo 2.1 is 8-bit only
 *   SOF3                             our own lossless decoder (jpeg_lossless.c),
 *                                    processes 14 and 14 SV1 (.57, .70)
 *   SOF55 (JPEG-LS), J2K signature   handed to codec_jpegls.c / codec_j2k.c
 *   hierarchical, arithmetic >8-bit  R3D_EUNSUPPORTED, naming the process
 *
 * Colour: 3-component DCT streams come back as RGB. Whether the stream holds
 * YCbCr is decided as libjpeg does (JFIF, Adobe transform flag, component ids)
 * with DICOM's photometric interpretation as the tie-breaker
 * (r3d__jpeg_color_is_ycbcr). Lossless streams are never colour transformed
 * by the encoder; if the header says YBR_FULL the samples are converted here,
 * so that JPEG always yields RGB (r3d_codec_outputs_rgb).
 *
 * libjpeg errors longjmp back here with the library's message; its warnings
 * are counted, never printed.
 *
 * References: ITU-T T.81 Annex B (markers), Table B.1 (SOFn kinds); DICOM
 * PS3.5 A.4.1 and 8.2.1; libjpeg.txt (IJG) for the error manager contract.
 * Cost: one marker walk up to the frame header, then the decoder's.
 */
#include "codec_internal.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

/* ---- libjpeg-turbo path (8-bit) ----------------------------------------------- */

typedef struct lj_error {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} lj_error;

static void lj_error_exit(j_common_ptr c)
{
    lj_error *e = (lj_error *)c->err;
    (*c->err->format_message)(c, e->msg);
    longjmp(e->jump, 1);
}

static void lj_output_message(j_common_ptr c)
{
    (void)c;
}

static void lj_emit_message(j_common_ptr c, int level)
{
    if (level < 0)
        c->err->num_warnings++;
}

static r3d_status decode_libjpeg(const uint8_t *in, size_t n, const r3d_codec_frame *fr,
                                 uint8_t *out, int out_bytes, const char *where, r3d_error *err)
{
    struct jpeg_decompress_struct cinfo;
    lj_error je;
    uint8_t *volatile row = NULL;
    volatile r3d_status st = R3D_OK;

    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = lj_error_exit;
    je.pub.output_message = lj_output_message;
    je.pub.emit_message = lj_emit_message;
    je.msg[0] = 0;
    if (setjmp(je.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(row);
        return r3d_fail(err, R3D_EFORMAT, "%s: JPEG data corrupt: %s", where, je.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, in, (unsigned long)n);
    jpeg_read_header(&cinfo, TRUE);

    if ((int64_t)cinfo.image_width != fr->cols || (int64_t)cinfo.image_height != fr->rows) {
        st = r3d_fail(err, R3D_EFORMAT, "%s: JPEG stream is %ux%u but the header says %dx%d",
                      where, (unsigned)cinfo.image_width, (unsigned)cinfo.image_height, fr->cols,
                      fr->rows);
        goto done;
    }
    if (cinfo.num_components != fr->samples) {
        st = r3d_fail(err, R3D_EFORMAT, "%s: JPEG stream has %d components but the header says "
                      "%d samples per pixel", where, cinfo.num_components, fr->samples);
        goto done;
    }
    if (fr->samples == 3) {
        int ids[3];
        for (int i = 0; i < 3; i++)
            ids[i] = cinfo.comp_info[i].component_id;
        int ycc = r3d__jpeg_color_is_ycbcr(cinfo.saw_JFIF_marker, cinfo.saw_Adobe_marker,
                                           cinfo.Adobe_transform, ids, fr->photometric);
        cinfo.jpeg_color_space = ycc ? JCS_YCbCr : JCS_RGB;
        cinfo.out_color_space = JCS_RGB;
    } else {
        cinfo.out_color_space = JCS_GRAYSCALE;
    }
    cinfo.dct_method = JDCT_ISLOW; /* the accurate IDCT, equal to dcmtk's */
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != fr->samples) {
        st = r3d_fail(err, R3D_EFORMAT, "%s: JPEG decodes to %d components, expected %d", where,
                      cinfo.output_components, fr->samples);
        goto done;
    }
    const size_t stride = (size_t)fr->cols * (size_t)fr->samples;
    if (out_bytes != 1) {
        row = malloc(stride);
        if (!row) {
            st = r3d_fail(err, R3D_ENOMEM, "%s: no memory for a JPEG row", where);
            goto done;
        }
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        size_t y = cinfo.output_scanline;
        JSAMPROW rp = out_bytes == 1 ? out + y * stride : row;
        if (jpeg_read_scanlines(&cinfo, &rp, 1) != 1)
            break;
        if (out_bytes != 1) {
            for (size_t i = 0; i < stride; i++) {
                uint16_t v = row[i];
                memcpy(out + 2 * (y * stride + i), &v, 2);
            }
        }
    }
    if (cinfo.output_scanline < cinfo.output_height)
        st = r3d_fail(err, R3D_EFORMAT, "%s: JPEG stream stopped after %u of %u rows", where,
                      (unsigned)cinfo.output_scanline, (unsigned)cinfo.output_height);
done:
    /* No jpeg_finish_decompress: the pixels are out, and what trails the
     * last scan (a missing EOI, padding) must not turn success into failure. */
    jpeg_destroy_decompress(&cinfo);
    free(row);
    return st;
}

/* ---- routing ---------------------------------------------------------------------- */

typedef struct jpeg_frame_kind {
    int marker;    /* SOFn marker (0xC0..0xCF), 0xF7 for JPEG-LS, 0 if none */
    int precision;
} jpeg_frame_kind;

/* Walk marker segments from SOI to the first frame header. */
static int find_frame(const uint8_t *b, size_t n, jpeg_frame_kind *k)
{
    size_t pos = 2;
    k->marker = 0;
    k->precision = 0;
    while (pos + 4 <= n) {
        if (b[pos] != 0xFF) {
            pos++;
            continue;
        }
        int m = b[pos + 1];
        if (m == 0xFF || m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD8)) {
            pos += m == 0xFF ? 1 : 2;
            continue;
        }
        if (m == 0xD9 || m == 0xDA)
            return 0; /* EOI or a scan before any frame header */
        size_t len = (size_t)b[pos + 2] << 8 | b[pos + 3];
        if ((m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) || m == 0xF7) {
            k->marker = m;
            k->precision = pos + 4 < n ? b[pos + 4] : 0;
            return 1;
        }
        if (len < 2)
            return 0;
        pos += 2 + len;
    }
    return 0;
}

r3d_status r3d_decode_jpeg(const uint8_t *in, size_t n, const r3d_codec_frame *fr, uint8_t *out,
                           size_t out_size, const char *where, r3d_error *err)
{
    size_t n_values;
    r3d_status st = r3d__codec_check_frame(fr, out_size, where, &n_values, err);
    if (st != R3D_OK)
        return st;
    if (in && n >= 4 && in[0] == 0xFF && in[1] == 0x4F && in[2] == 0xFF && in[3] == 0x51)
        return r3d_decode_j2k(in, n, fr, out, out_size, where, err);
    if (!in || n < 4 || in[0] != 0xFF || in[1] != 0xD8)
        return r3d_fail(err, R3D_EFORMAT, "%s: not a JPEG stream (no SOI marker)", where);

    jpeg_frame_kind k;
    if (!find_frame(in, n, &k))
        return r3d_fail(err, R3D_EFORMAT, "%s: JPEG stream has no frame header (SOFn)", where);
    const int out_bytes = r3d__codec_out_bytes(fr);
    const int sof = k.marker - 0xC0;

    switch (k.marker) {
    case 0xF7:
        return r3d_decode_jpegls(in, n, fr, out, out_size, where, err);
    case 0xC3:
        st = r3d__jpeg_lossless_decode(in, n, fr, out, out_size, where, err);
        if (st == R3D_OK && fr->samples == 3 && out_bytes <= 2 && r3d__photometric_is_ybr_full(fr))
            r3d__ybr_full_to_rgb(out, n_values / 3, out_bytes, fr->bits_stored);
        return st;
    case 0xC0:
    case 0xC1:
    case 0xC2:
        if (k.precision == 8 && out_bytes <= 2) {
            r3d_error first = R3D_ERROR_INIT;
            st = decode_libjpeg(in, n, fr, out, out_bytes, where, &first);
            if (st == R3D_EFORMAT &&
                r3d__jpeg_dct_decode(in, n, fr, out, out_size, where, NULL) == R3D_OK)
                st = R3D_OK;
            if (st != R3D_OK && err)
                *err = first;
            return st;
        }
        return r3d__jpeg_dct_decode(in, n, fr, out, out_size, where, err);
    case 0xC9:
    case 0xCA:
        if (k.precision == 8 && out_bytes <= 2)
            return decode_libjpeg(in, n, fr, out, out_bytes, where, err);
        return r3d_fail(err, R3D_EUNSUPPORTED, "%s: JPEG with arithmetic coding at %d bits "
                        "(SOF%d) is not supported", where, k.precision, sof);
    case 0xCB:
        return r3d_fail(err, R3D_EUNSUPPORTED, "%s: lossless JPEG with arithmetic coding "
                        "(SOF11) is not supported", where);
    default:
        /* SOF5-7 and SOF13-15: differential frames of the hierarchical
         * processes, DICOM's retired 1.2.840.10008.1.2.4.59 to .66. */
        return r3d_fail(err, R3D_EUNSUPPORTED, "%s: hierarchical JPEG (SOF%d, retired transfer "
                        "syntaxes 1.2.840.10008.1.2.4.59-.66) is not supported", where, sof);
    }
}

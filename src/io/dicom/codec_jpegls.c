/* codec_jpegls.c - JPEG-LS lossless and near-lossless (transfer syntaxes
 * 1.2.840.10008.1.2.4.80 and .81) through CharLS's C API.
 *
 * How: charls_jpegls_decoder reads the SOF55 header; we check its width,
 * height, component count and precision against the DICOM header before any
 * pixel is decoded (so a hostile stream cannot make CharLS allocate or write
 * more than the frame), then decode. CharLS writes 1 byte per sample up to 8
 * bits and 2 bytes (host order) above; with interleave mode NONE (ILV 0) the
 * components come out as planes, with LINE and SAMPLE (ILV 1, 2) as pixels.
 * We decode straight into `out` when that layout and width already match the
 * DICOM frame (the common grey case), else into a scratch buffer that is
 * re-laid as interleaved samples of the frame's width.
 *
 * Colour: JPEG-LS carries samples as DICOM's photometric interpretation says
 * (no colour transform unless the stream has the HP extension, which CharLS
 * undoes itself), so YBR_FULL is left for the caller (r3d_codec_outputs_rgb).
 *
 * References: ITU-T T.87 (ISO/IEC 14495-1); DICOM PS3.5 A.4.3 and 8.2.3.
 * Cost: CharLS's, ~O(pixels); one scratch frame only for planar or widened data.
 */
#include "codec_internal.h"

#include <charls/charls.h>
#include <stdlib.h>
#include <string.h>

/* Copy n_pix pixels of `comps` samples each from src (1 or 2 bytes per
 * sample, planar or interleaved) to interleaved dst of dst_bytes per sample. */
static void relayout(const uint8_t *src, int src_bytes, int planar, size_t n_pix, int comps,
                     uint8_t *dst, int dst_bytes)
{
    for (int c = 0; c < comps; c++) {
        for (size_t p = 0; p < n_pix; p++) {
            size_t si = planar ? (size_t)c * n_pix + p : p * (size_t)comps + (size_t)c;
            size_t di = p * (size_t)comps + (size_t)c;
            uint32_t v;
            if (src_bytes == 1) {
                v = src[si];
            } else {
                uint16_t w;
                memcpy(&w, src + 2 * si, 2);
                v = w;
            }
            if (dst_bytes == 1) {
                dst[di] = (uint8_t)v;
            } else if (dst_bytes == 2) {
                uint16_t w = (uint16_t)v;
                memcpy(dst + 2 * di, &w, 2);
            } else {
                memcpy(dst + 4 * di, &v, 4);
            }
        }
    }
}

r3d_status r3d_decode_jpegls(const uint8_t *in, size_t n, const r3d_codec_frame *fr,
                             uint8_t *out, size_t out_size, const char *where, r3d_error *err)
{
    size_t n_values;
    r3d_status st = r3d__codec_check_frame(fr, out_size, where, &n_values, err);
    if (st != R3D_OK)
        return st;
    if (!in || n < 4)
        return r3d_fail(err, R3D_EFORMAT, "%s: JPEG-LS stream of %zu bytes is too short", where,
                        n);

    /* CharLS 2.4.1 (Debian 12) never returns from a scan whose data simply
     * stops, which is what a truncated fragment looks like (fixed upstream
     * in CharLS PR #334, 2024). With an EOI marker after the data it fails
     * cleanly instead, so a stream that does not end in EOI (DICOM may pad
     * one zero byte after it) is decoded from a copy with EOI appended. */
    uint8_t *with_eoi = NULL;
    size_t m = n;
    while (m > 0 && n - m < 2 && in[m - 1] == 0x00)
        m--;
    if (!(m >= 2 && in[m - 2] == 0xFF && in[m - 1] == 0xD9)) {
        with_eoi = malloc(n + 2);
        if (!with_eoi)
            return r3d_fail(err, R3D_ENOMEM, "%s: no memory for a JPEG-LS stream copy", where);
        memcpy(with_eoi, in, n);
        with_eoi[n] = 0xFF;
        with_eoi[n + 1] = 0xD9;
        in = with_eoi;
        n += 2;
    }

    charls_jpegls_decoder *dec = charls_jpegls_decoder_create();
    if (!dec) {
        free(with_eoi);
        return r3d_fail(err, R3D_ENOMEM, "%s: cannot create a JPEG-LS decoder", where);
    }
    uint8_t *scratch = NULL;
    charls_frame_info fi;
    charls_interleave_mode ilv = CHARLS_INTERLEAVE_MODE_NONE;
    charls_jpegls_errc e = charls_jpegls_decoder_set_source_buffer(dec, in, n);
    if (!e)
        e = charls_jpegls_decoder_read_header(dec);
    if (!e)
        e = charls_jpegls_decoder_get_frame_info(dec, &fi);
    if (!e)
        e = charls_jpegls_decoder_get_interleave_mode(dec, &ilv);
    if (e) {
        st = r3d_fail(err, R3D_EFORMAT, "%s: JPEG-LS header unreadable: %s", where,
                      charls_get_error_message(e));
        goto done;
    }

    if ((int64_t)fi.width != fr->cols || (int64_t)fi.height != fr->rows) {
        st = r3d_fail(err, R3D_EFORMAT, "%s: JPEG-LS stream is %ux%u but the header says %dx%d",
                      where, (unsigned)fi.width, (unsigned)fi.height, fr->cols, fr->rows);
        goto done;
    }
    if (fi.component_count != fr->samples) {
        st = r3d_fail(err, R3D_EFORMAT, "%s: JPEG-LS stream has %d components but the header "
                      "says %d samples per pixel", where, (int)fi.component_count, fr->samples);
        goto done;
    }
    const int out_bytes = r3d__codec_out_bytes(fr);
    if (fi.bits_per_sample < 2 || fi.bits_per_sample > 16 ||
        fi.bits_per_sample > 8 * out_bytes) {
        st = r3d_fail(err, R3D_EFORMAT, "%s: JPEG-LS stream has %d-bit samples, which do not "
                      "fit BitsAllocated %d", where, (int)fi.bits_per_sample, fr->bits_alloc);
        goto done;
    }

    const int src_bytes = fi.bits_per_sample <= 8 ? 1 : 2;
    const int planar = fr->samples > 1 && ilv == CHARLS_INTERLEAVE_MODE_NONE;
    const size_t n_pix = (size_t)fr->rows * (size_t)fr->cols;
    const size_t src_size = n_values * (size_t)src_bytes; /* no overflow: <= out_size */
    uint8_t *dst = out;
    if (planar || src_bytes != out_bytes) {
        scratch = malloc(src_size);
        if (!scratch) {
            st = r3d_fail(err, R3D_ENOMEM, "%s: no memory for a %zu-byte JPEG-LS frame", where,
                          src_size);
            goto done;
        }
        dst = scratch;
    }
    e = charls_jpegls_decoder_decode_to_buffer(dec, dst, src_size, 0);
    if (e) {
        st = r3d_fail(err, R3D_EFORMAT, "%s: JPEG-LS data corrupt: %s", where,
                      charls_get_error_message(e));
        goto done;
    }
    if (dst != out)
        relayout(scratch, src_bytes, planar, n_pix, fr->samples, out, out_bytes);
    st = R3D_OK;
done:
    free(scratch);
    free(with_eoi);
    charls_jpegls_decoder_destroy(dec);
    return st;
}

/* codec_j2k.c - JPEG 2000 (transfer syntaxes 1.2.840.10008.1.2.4.90/.91/.92/
 * .93) and High-Throughput JPEG 2000 (.201/.202/.203) through OpenJPEG.
 *
 * How: the frame is read from memory through an opj_stream whose read, skip
 * and seek callbacks walk our buffer (never a temp file). The first bytes say
 * which container it is: FF 4F FF 51 (SOC then SIZ) is a bare codestream, as
 * PS3.5 A.4.4 requires; 00 00 00 0C 'jP  ' is a JP2 file, which some writers
 * put in DICOM anyway. OpenJPEG 2.5 decodes HT code-blocks (ITU-T T.814) in
 * the same codestream syntax, so HTJ2K needs nothing else. The header is
 * checked against the DICOM frame (size, components, precision) before any
 * code-block is decoded, so a hostile stream cannot make us write more than
 * the frame; then the decoded components (one int32 plane each, possibly
 * subsampled) are interleaved into `out` at the frame's width.
 *
 * Colour: OpenJPEG undoes the codestream's own multi-component transform
 * (RCT or ICT, PS3.3 YBR_RCT / YBR_ICT), giving RGB. If the DICOM header says
 * YBR_FULL(_422) and the codestream has no MCT, the samples really are YCbCr
 * and we convert them here, so JPEG 2000 always hands back RGB.
 *
 * Sign: values are written as the codestream holds them, truncated to the
 * output width (two's complement for signed codestreams). When the header says
 * signed (PixelRepresentation 1) but the codestream says unsigned, the
 * samples are two's complement patterns of the codestream's own precision
 * (seen from several encoders, e.g. pydicom's J2K_pixelrep_mismatch.dcm); we
 * sign-extend them from that precision so the caller's sign extension from
 * BitsStored gives the right value even when precision and BitsStored differ
 * (the correction pydicom applies).
 *
 * Messages: OpenJPEG's error handler writes into a per-call buffer that goes
 * into the r3d_error; info and warnings are dropped; nothing reaches stderr.
 * Threads: opj_codec_set_threads with r3d_threads() (one when called inside
 * r3d_parallel_for, where frames already decode in parallel) for frames of 256x256 or
 * more, when the library was built with thread support.
 *
 * References: ITU-T T.800 (ISO/IEC 15444-1) Annex A (codestream syntax),
 * Annex G (colour transforms); ITU-T T.814 (HTJ2K); DICOM PS3.5 A.4.4, A.4.6.
 * Cost: OpenJPEG's decode, plus one pass over the pixels to interleave.
 */
#include "codec_internal.h"

#include <openjpeg.h>
#include <stdio.h>
#include <string.h>

/* ---- memory stream ------------------------------------------------------------ */

typedef struct mem_src {
    const uint8_t *data;
    size_t size, pos;
} mem_src;

static OPJ_SIZE_T mem_read(void *buf, OPJ_SIZE_T nb, void *user)
{
    mem_src *m = user;
    if (m->pos >= m->size)
        return (OPJ_SIZE_T)-1; /* OpenJPEG's end-of-stream signal */
    size_t k = m->size - m->pos;
    if (k > nb)
        k = nb;
    memcpy(buf, m->data + m->pos, k);
    m->pos += k;
    return k;
}

static OPJ_OFF_T mem_skip(OPJ_OFF_T nb, void *user)
{
    mem_src *m = user;
    if (nb < 0) {
        if ((OPJ_OFF_T)m->pos < -nb)
            return -1;
        m->pos -= (size_t)(-nb);
        return nb;
    }
    /* Skipping past the end is allowed (OpenJPEG then reads nothing). */
    m->pos += (size_t)nb;
    if (m->pos > m->size)
        m->pos = m->size;
    return nb;
}

static OPJ_BOOL mem_seek(OPJ_OFF_T pos, void *user)
{
    mem_src *m = user;
    if (pos < 0 || (uint64_t)pos > m->size)
        return OPJ_FALSE;
    m->pos = (size_t)pos;
    return OPJ_TRUE;
}

/* ---- messages ------------------------------------------------------------------ */

typedef struct opj_msgs {
    char text[256];
} opj_msgs;

static void on_error(const char *msg, void *user)
{
    opj_msgs *m = user;
    if (m->text[0])
        return; /* the first error is the cause; later ones are consequences */
    snprintf(m->text, sizeof m->text, "%s", msg);
    size_t k = strlen(m->text);
    while (k > 0 && (m->text[k - 1] == '\n' || m->text[k - 1] == ' '))
        m->text[--k] = 0;
}

static void on_quiet(const char *msg, void *user)
{
    (void)msg;
    (void)user;
}

/* ---- decode ------------------------------------------------------------------------ */

static const uint8_t J2K_SOC_SIZ[4] = {0xFF, 0x4F, 0xFF, 0x51};
static const uint8_t JP2_SIGNATURE[12] = {0x00, 0x00, 0x00, 0x0C, 0x6A, 0x50,
                                          0x20, 0x20, 0x0D, 0x0A, 0x87, 0x0A};

r3d_status r3d_decode_j2k(const uint8_t *in, size_t n, const r3d_codec_frame *fr, uint8_t *out,
                          size_t out_size, const char *where, r3d_error *err)
{
    size_t n_values;
    r3d_status st = r3d__codec_check_frame(fr, out_size, where, &n_values, err);
    if (st != R3D_OK)
        return st;

    OPJ_CODEC_FORMAT format;
    if (in && n >= 4 && memcmp(in, J2K_SOC_SIZ, 4) == 0)
        format = OPJ_CODEC_J2K;
    else if (in && n >= 12 && memcmp(in, JP2_SIGNATURE, 12) == 0)
        format = OPJ_CODEC_JP2;
    else
        return r3d_fail(err, R3D_EFORMAT, "%s: neither a JPEG 2000 codestream (FF4FFF51) nor "
                        "a JP2 file", where);

    opj_msgs msgs = {{0}};
    mem_src src = {in, n, 0};
    opj_image_t *img = NULL;
    opj_codestream_info_v2_t *info = NULL;
    opj_stream_t *stream = NULL;
    opj_codec_t *codec = opj_create_decompress(format);
    if (!codec)
        return r3d_fail(err, R3D_ENOMEM, "%s: cannot create a JPEG 2000 decoder", where);
    opj_set_info_handler(codec, on_quiet, &msgs);
    opj_set_warning_handler(codec, on_quiet, &msgs);
    opj_set_error_handler(codec, on_error, &msgs);

    opj_dparameters_t par;
    opj_set_default_decoder_parameters(&par);
    if (!opj_setup_decoder(codec, &par)) {
        st = r3d_fail(err, R3D_EFORMAT, "%s: JPEG 2000 decoder setup failed: %s", where,
                      msgs.text);
        goto done;
    }
    if ((size_t)fr->rows * (size_t)fr->cols >= 256 * 256 && r3d_threads() > 1 &&
        !r3d_in_parallel() &&
        opj_has_thread_support())
        opj_codec_set_threads(codec, r3d_threads());

    stream = opj_stream_create(n < 65536 ? n : 65536, OPJ_TRUE);
    if (!stream) {
        st = r3d_fail(err, R3D_ENOMEM, "%s: cannot create a JPEG 2000 stream", where);
        goto done;
    }
    opj_stream_set_user_data(stream, &src, NULL);
    opj_stream_set_user_data_length(stream, n);
    opj_stream_set_read_function(stream, mem_read);
    opj_stream_set_skip_function(stream, mem_skip);
    opj_stream_set_seek_function(stream, mem_seek);

    if (!opj_read_header(stream, codec, &img) || !img) {
        st = r3d_fail(err, R3D_EFORMAT, "%s: JPEG 2000 header unreadable: %s", where,
                      msgs.text[0] ? msgs.text : "no detail");
        goto done;
    }

    /* Check the header against the DICOM frame before any decoding work. */
    uint32_t w = img->x1 - img->x0, h = img->y1 - img->y0;
    if (img->x1 < img->x0 || img->y1 < img->y0 || w != (uint32_t)fr->cols ||
        h != (uint32_t)fr->rows) {
        st = r3d_fail(err, R3D_EFORMAT, "%s: JPEG 2000 stream is %ux%u but the header says "
                      "%dx%d", where, (unsigned)w, (unsigned)h, fr->cols, fr->rows);
        goto done;
    }
    if (img->numcomps != (uint32_t)fr->samples) {
        st = r3d_fail(err, R3D_EFORMAT, "%s: JPEG 2000 stream has %u components but the "
                      "header says %d samples per pixel", where, (unsigned)img->numcomps,
                      fr->samples);
        goto done;
    }
    const int out_bytes = r3d__codec_out_bytes(fr);
    for (uint32_t c = 0; c < img->numcomps; c++) {
        const opj_image_comp_t *cp = &img->comps[c];
        if (cp->prec < 1 || cp->prec > (uint32_t)(8 * out_bytes) || cp->prec > 31) {
            st = r3d_fail(err, R3D_EFORMAT, "%s: JPEG 2000 component %u has %u-bit samples, "
                          "which do not fit BitsAllocated %d", where, (unsigned)c,
                          (unsigned)cp->prec, fr->bits_alloc);
            goto done;
        }
        if (cp->dx < 1 || cp->dy < 1 || cp->dx > 4 || cp->dy > 4) {
            st = r3d_fail(err, R3D_EUNSUPPORTED, "%s: JPEG 2000 component %u is subsampled "
                          "%ux%u", where, (unsigned)c, (unsigned)cp->dx, (unsigned)cp->dy);
            goto done;
        }
    }
    info = opj_get_cstr_info(codec);
    const int has_mct = info && info->m_default_tile_info.mct != 0;

    if (!opj_decode(codec, stream, img) || !opj_end_decompress(codec, stream)) {
        st = r3d_fail(err, R3D_EFORMAT, "%s: JPEG 2000 data corrupt or truncated: %s", where,
                      msgs.text[0] ? msgs.text : "no detail");
        goto done;
    }

    const size_t cols = (size_t)fr->cols, rows = (size_t)fr->rows, ns = (size_t)fr->samples;
    for (uint32_t c = 0; c < img->numcomps; c++) {
        const opj_image_comp_t *cp = &img->comps[c];
        if (!cp->data || cp->w == 0 || cp->h == 0 || cp->factor != 0) {
            st = r3d_fail(err, R3D_EFORMAT, "%s: JPEG 2000 component %u was not decoded", where,
                          (unsigned)c);
            goto done;
        }
        /* Sign-extend unsigned codestream samples from their own precision
         * when the header says signed (see the file comment). */
        const int extend = fr->is_signed && !cp->sgnd && cp->prec < 32;
        const uint32_t sign_bit = 1u << (cp->prec - 1);
        for (size_t y = 0; y < rows; y++) {
            /* Component sample i sits at reference x = i*dx (T.800 B.2): take the
             * one at or left of x, replicating edges for subsampled data. */
            size_t cy = ((size_t)img->y0 + y) / cp->dy;
            cy = cy >= cp->y0 ? cy - cp->y0 : 0;
            if (cy >= cp->h)
                cy = cp->h - 1;
            const OPJ_INT32 *line = cp->data + cy * cp->w;
            uint8_t *o = out + (y * cols * ns + c) * (size_t)out_bytes;
            for (size_t x = 0; x < cols; x++, o += ns * (size_t)out_bytes) {
                size_t cx = ((size_t)img->x0 + x) / cp->dx;
                cx = cx >= cp->x0 ? cx - cp->x0 : 0;
                if (cx >= cp->w)
                    cx = cp->w - 1;
                uint32_t v = (uint32_t)line[cx];
                if (extend)
                    v = ((v & (2 * sign_bit - 1)) ^ sign_bit) - sign_bit;
                if (out_bytes == 1) {
                    *o = (uint8_t)v;
                } else if (out_bytes == 2) {
                    uint16_t v16 = (uint16_t)v;
                    memcpy(o, &v16, 2);
                } else {
                    memcpy(o, &v, 4);
                }
            }
        }
    }
    if (fr->samples == 3 && !has_mct && out_bytes <= 2 && r3d__photometric_is_ybr_full(fr))
        r3d__ybr_full_to_rgb(out, rows * cols, out_bytes, (int)img->comps[0].prec);
    st = R3D_OK;
done:
    if (info)
        opj_destroy_cstr_info(&info);
    if (stream)
        opj_stream_destroy(stream);
    if (img)
        opj_image_destroy(img);
    opj_destroy_codec(codec);
    return st;
}

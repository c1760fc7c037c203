/* codec.c - transfer syntax -> codec, and the one entry point the DICOM pixel
 * layer calls to decode a compressed frame.
 *
 * What: r3d_codec_for_ts classifies a transfer syntax UID (PS3.5 Section 10
 * and Annex A.4; PS3.6 Table A-1 for the list), r3d_codec_decode dispatches
 * to codec_rle.c / codec_jpeg.c / codec_jpegls.c / codec_j2k.c, and the small
 * helpers of codec_internal.h live here.
 *
 * Colour contract (r3d_codec_outputs_rgb): the JPEG and JPEG 2000 decoders
 * always hand back RGB for 3-sample frames, because only they can see what the
 * stream really holds (JFIF / Adobe markers, component ids, the J2K MCT flag).
 * RLE and JPEG-LS store samples exactly as the photometric interpretation says,
 * so their YBR_FULL output is converted by the caller, like native pixels.
 *
 * Cost: a string compare per known UID; the rest is the codecs'.
 */
#include "codec_internal.h"

#include <string.h>

/* ---- transfer syntaxes ----------------------------------------------------- */

typedef struct ts_entry {
    const char *uid;
    r3d_codec_kind kind;
} ts_entry;

static const ts_entry TS_TABLE[] = {
    {"1.2.840.10008.1.2", R3D_CODEC_NONE},        /* Implicit VR Little Endian */
    {"1.2.840.10008.1.2.1", R3D_CODEC_NONE},      /* Explicit VR Little Endian */
    {"1.2.840.10008.1.2.2", R3D_CODEC_NONE},      /* Explicit VR Big Endian (retired) */
    {"1.2.840.10008.1.2.1.99", R3D_CODEC_DEFLATE}, /* Deflated Explicit VR Little Endian */
    {"1.2.840.10008.1.2.5", R3D_CODEC_RLE},       /* RLE Lossless */
    {"1.2.840.10008.1.2.4.50", R3D_CODEC_JPEG},   /* Baseline, process 1 */
    {"1.2.840.10008.1.2.4.51", R3D_CODEC_JPEG},   /* Extended, processes 2 & 4 */
    {"1.2.840.10008.1.2.4.52", R3D_CODEC_JPEG},   /* retired: processes 3 & 5 */
    {"1.2.840.10008.1.2.4.53", R3D_CODEC_JPEG},   /* retired: spectral selection 6 & 8 */
    {"1.2.840.10008.1.2.4.54", R3D_CODEC_JPEG},   /* retired: 7 & 9 */
    {"1.2.840.10008.1.2.4.55", R3D_CODEC_JPEG},   /* retired: full progression 10 & 12 */
    {"1.2.840.10008.1.2.4.56", R3D_CODEC_JPEG},   /* retired: 11 & 13 */
    {"1.2.840.10008.1.2.4.57", R3D_CODEC_JPEG},   /* Lossless, process 14 */
    {"1.2.840.10008.1.2.4.58", R3D_CODEC_JPEG},   /* retired: lossless process 15 */
    {"1.2.840.10008.1.2.4.59", R3D_CODEC_JPEG},   /* retired: hierarchical 16..29 */
    {"1.2.840.10008.1.2.4.60", R3D_CODEC_JPEG},
    {"1.2.840.10008.1.2.4.61", R3D_CODEC_JPEG},
    {"1.2.840.10008.1.2.4.62", R3D_CODEC_JPEG},
    {"1.2.840.10008.1.2.4.63", R3D_CODEC_JPEG},
    {"1.2.840.10008.1.2.4.64", R3D_CODEC_JPEG},
    {"1.2.840.10008.1.2.4.65", R3D_CODEC_JPEG},
    {"1.2.840.10008.1.2.4.66", R3D_CODEC_JPEG},
    {"1.2.840.10008.1.2.4.70", R3D_CODEC_JPEG},   /* Lossless, process 14, SV1 */
    {"1.2.840.10008.1.2.4.80", R3D_CODEC_JPEGLS}, /* JPEG-LS Lossless */
    {"1.2.840.10008.1.2.4.81", R3D_CODEC_JPEGLS}, /* JPEG-LS Near-Lossless */
    {"1.2.840.10008.1.2.4.90", R3D_CODEC_J2K},    /* JPEG 2000 Lossless Only */
    {"1.2.840.10008.1.2.4.91", R3D_CODEC_J2K},    /* JPEG 2000 */
    {"1.2.840.10008.1.2.4.92", R3D_CODEC_J2K},    /* JPEG 2000 Part 2 Multi-component LL */
    {"1.2.840.10008.1.2.4.93", R3D_CODEC_J2K},    /* JPEG 2000 Part 2 Multi-component */
    {"1.2.840.10008.1.2.4.201", R3D_CODEC_J2K},   /* HTJ2K Lossless */
    {"1.2.840.10008.1.2.4.202", R3D_CODEC_J2K},   /* HTJ2K Lossless RPCL */
    {"1.2.840.10008.1.2.4.203", R3D_CODEC_J2K},   /* HTJ2K */
};

r3d_codec_kind r3d_codec_for_ts(const char *ts_uid)
{
    /* No transfer syntax (no file meta): PS3.5 makes Implicit VR Little Endian
     * the default, so the pixels are native. */
    if (!ts_uid || !ts_uid[0])
        return R3D_CODEC_NONE;
    /* UIDs are padded to even length with NUL, and some writers pad with a
     * space; compare the meaningful part only. */
    size_t n = strlen(ts_uid);
    while (n > 0 && (ts_uid[n - 1] == ' ' || ts_uid[n - 1] == '\0'))
        n--;
    for (size_t i = 0; i < sizeof TS_TABLE / sizeof TS_TABLE[0]; i++) {
        if (strlen(TS_TABLE[i].uid) == n && memcmp(TS_TABLE[i].uid, ts_uid, n) == 0)
            return TS_TABLE[i].kind;
    }
    /* MPEG/HEVC video, JPIP referenced pixels, Encapsulated Uncompressed
     * (1.2.840.10008.1.2.1.98), Deflated Image Frame Compression
     * (1.2.840.10008.1.2.8.1) and private syntaxes: no kind in
     * r3d_codec_kind describes them yet. */
    return R3D_CODEC_UNKNOWN;
}

int r3d_codec_outputs_rgb(r3d_codec_kind k, const r3d_codec_frame *fr)
{
    if (!fr || fr->samples != 3)
        return 0;
    return k == R3D_CODEC_JPEG || k == R3D_CODEC_J2K;
}

/* ---- shared helpers --------------------------------------------------------- */

r3d_status r3d__codec_check_frame(const r3d_codec_frame *fr, size_t out_size, const char *where,
                                  size_t *n_values, r3d_error *err)
{
    if (!fr)
        return r3d_fail(err, R3D_EARG, "%s: no frame description", where);
    if (fr->rows <= 0 || fr->cols <= 0 || fr->rows > 65535 || fr->cols > 65535)
        return r3d_fail(err, R3D_EARG, "%s: frame size %dx%d is out of range", where, fr->cols,
                        fr->rows);
    if (fr->samples != 1 && fr->samples != 3)
        return r3d_fail(err, R3D_EUNSUPPORTED, "%s: %d samples per pixel (only 1 or 3 decode)",
                        where, fr->samples);
    if (r3d__codec_out_bytes(fr) == 0)
        return r3d_fail(err, R3D_EUNSUPPORTED, "%s: BitsAllocated %d is not 1..32", where,
                        fr->bits_alloc);
    if (fr->bits_stored <= 0 || fr->bits_stored > fr->bits_alloc)
        return r3d_fail(err, R3D_EARG, "%s: BitsStored %d does not fit BitsAllocated %d", where,
                        fr->bits_stored, fr->bits_alloc);
    size_t f[3] = {(size_t)fr->rows, (size_t)fr->cols, (size_t)fr->samples}, n, bytes;
    if (!r3d_mul_sizes(f, 3, &n) || !r3d_mul_size(n, (size_t)r3d__codec_out_bytes(fr), &bytes))
        return r3d_fail(err, R3D_EARG, "%s: frame size overflows", where);
    if (out_size < bytes)
        return r3d_fail(err, R3D_EARG, "%s: output buffer has %zu bytes, the frame needs %zu",
                        where, out_size, bytes);
    *n_values = n;
    return R3D_OK;
}

int r3d__photometric_is_ybr_full(const r3d_codec_frame *fr)
{
    return fr && fr->photometric && strncmp(fr->photometric, "YBR_FULL", 8) == 0;
}

void r3d__ybr_full_to_rgb(uint8_t *buf, size_t n_pixels, int bytes_per, int bits)
{
    /* PS3.3 C.7.6.3.1.2 (YBR_FULL): R = Y + 1.402 (Cr - c), G = Y - 0.344136
     * (Cb - c) - 0.714136 (Cr - c), B = Y + 1.772 (Cb - c), c = 2^(bits-1).
     * Fixed point with 16 fractional bits, as libjpeg's jdcolor.c does, so an
     * 8-bit result equals libjpeg's for the same YCbCr input. */
    const int32_t c = (int32_t)1 << (bits - 1), maxv = (int32_t)((1u << bits) - 1);
    const int32_t k_cr_r = 91881, k_cb_g = 22554, k_cr_g = 46802, k_cb_b = 116130;
    for (size_t i = 0; i < n_pixels; i++) {
        int32_t y, cb, cr;
        if (bytes_per == 1) {
            y = buf[3 * i];
            cb = buf[3 * i + 1];
            cr = buf[3 * i + 2];
        } else {
            uint16_t v[3];
            memcpy(v, buf + 6 * i, 6);
            y = v[0];
            cb = v[1];
            cr = v[2];
        }
        cb -= c;
        cr -= c;
        int64_t r = y + (((int64_t)k_cr_r * cr + 32768) >> 16);
        int64_t g = y + ((-(int64_t)k_cb_g * cb - (int64_t)k_cr_g * cr + 32768) >> 16);
        int64_t b = y + (((int64_t)k_cb_b * cb + 32768) >> 16);
        r = r < 0 ? 0 : r > maxv ? maxv : r;
        g = g < 0 ? 0 : g > maxv ? maxv : g;
        b = b < 0 ? 0 : b > maxv ? maxv : b;
        if (bytes_per == 1) {
            buf[3 * i] = (uint8_t)r;
            buf[3 * i + 1] = (uint8_t)g;
            buf[3 * i + 2] = (uint8_t)b;
        } else {
            uint16_t v[3] = {(uint16_t)r, (uint16_t)g, (uint16_t)b};
            memcpy(buf + 6 * i, v, 6);
        }
    }
}

/* ---- dispatch ---------------------------------------------------------------- */

r3d_status r3d_codec_decode(r3d_codec_kind k, const uint8_t *in, size_t n,
                            const r3d_codec_frame *fr, uint8_t *out, size_t out_size,
                            const char *where, r3d_error *err)
{
    if (!where)
        where = "pixel data";
    if (!in && n > 0)
        return r3d_fail(err, R3D_EARG, "%s: no input bytes", where);
    switch (k) {
    case R3D_CODEC_RLE:
        return r3d_decode_rle(in, n, fr, out, out_size, where, err);
    case R3D_CODEC_JPEG:
        return r3d_decode_jpeg(in, n, fr, out, out_size, where, err);
    case R3D_CODEC_JPEGLS:
        return r3d_decode_jpegls(in, n, fr, out, out_size, where, err);
    case R3D_CODEC_J2K:
        return r3d_decode_j2k(in, n, fr, out, out_size, where, err);
    case R3D_CODEC_NONE:
    case R3D_CODEC_DEFLATE:
        return r3d_fail(err, R3D_EARG, "%s: native pixel data needs no codec", where);
    case R3D_CODEC_UNKNOWN:
    default:
        break;
    }
    return r3d_fail(err, R3D_EUNSUPPORTED, "%s: no decoder for this transfer syntax", where);
}

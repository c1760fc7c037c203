/* codec_internal.h - helpers the pixel codecs share (not part of codec.h,
 * which is what the DICOM pixel layer calls).
 *
 *   r3d__codec_check_frame  the r3d_codec_frame is sane and out is big enough
 *   r3d__codec_out_bytes    bytes per output value (1, 2 or 4)
 *   r3d__ybr_full_to_rgb    ITU-R BT.601 full-range YCbCr -> RGB in place,
 *                           the transform PS3.3 C.7.6.3.1.2 gives for YBR_FULL
 *   r3d__jpeg_dct_decode    our own T.81 DCT decoder (jpeg_dct.c)
 *   r3d__jpeg_lossless_decode  our own T.81 process-14 decoder (jpeg_lossless.c)
 *
 * The two JPEG entry points are here rather than static so the unit tests can
 * compare our DCT decoder with libjpeg-turbo on the same 8-bit stream.
 */
#ifndef R3D_CODEC_INTERNAL_H
#define R3D_CODEC_INTERNAL_H

#include "codec.h"

/* 1 for bits_alloc <= 8 (incl. 1-bit), 2 for <= 16, 4 for <= 32; 0 if invalid. */
static inline int r3d__codec_out_bytes(const r3d_codec_frame *fr)
{
    if (fr->bits_alloc <= 0)
        return 0;
    if (fr->bits_alloc <= 8)
        return 1;
    if (fr->bits_alloc <= 16)
        return 2;
    if (fr->bits_alloc <= 32)
        return 4;
    return 0;
}

/* Checks the frame description (positive sizes, 1 or 3 samples, bits in
 * range) and that out_size holds rows*cols*samples values; stores that value
 * count in *n_values. R3D_EARG with a message naming `where` otherwise. */
r3d_status r3d__codec_check_frame(const r3d_codec_frame *fr, size_t out_size, const char *where,
                                  size_t *n_values, r3d_error *err);

/* Photometric interpretation starts with "YBR_FULL" (YBR_FULL, YBR_FULL_422). */
int r3d__photometric_is_ybr_full(const r3d_codec_frame *fr);

/* Interleaved Y,Cb,Cr triples of `bits`-bit unsigned samples (1 or 2 bytes
 * each per bytes_per) converted in place to R,G,B, rounded and clamped. */
void r3d__ybr_full_to_rgb(uint8_t *buf, size_t n_pixels, int bytes_per, int bits);

/* Is a 3-component DCT stream YCbCr (to be converted) rather than RGB?
 * Markers first, as libjpeg decides (Adobe transform flag, JFIF, component
 * ids 'R','G','B'), then the DICOM photometric interpretation: with no marker
 * saying otherwise, RGB with ids other than 1,2,3 is taken at its word. */
int r3d__jpeg_color_is_ycbcr(int jfif, int adobe, int adobe_transform, const int ids[3],
                             const char *photometric);

/* Our own JPEG decoders; r3d_decode_jpeg picks one by the SOF marker. */
r3d_status r3d__jpeg_dct_decode(const uint8_t *in, size_t n, const r3d_codec_frame *fr,
                                uint8_t *out, size_t out_size, const char *where,
                                r3d_error *err);
r3d_status r3d__jpeg_lossless_decode(const uint8_t *in, size_t n, const r3d_codec_frame *fr,
                                     uint8_t *out, size_t out_size, const char *where,
                                     r3d_error *err);

#endif

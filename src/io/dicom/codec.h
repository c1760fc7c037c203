/* codec.h - compressed pixel data codecs behind r3d_dcm_decode_frame.
 *
 * Each decoder takes the bytes of one frame (its fragments already joined)
 * and writes rows*cols*samples values into out: 1 byte per value when
 * bits_alloc <= 8, else 2 bytes (host order), samples interleaved
 * (R,G,B,R,G,B... whatever the stream's own layout). Values are written as
 * the codestream holds them; sign extension from bits_stored is the caller's
 * job, and so is YBR->RGB for codecs that do not convert (RLE).
 * `where` names the file (and frame) for messages.
 *
 *   codec_rle.c      DICOM RLE (PS3.5 Annex G), own code
 *   codec_jpeg.c     JPEG: baseline 8-bit via libjpeg-turbo; extended 12-bit
 *                    (process 2/4) and lossless (process 14, SV1) own code
 *   codec_jpegls.c   JPEG-LS lossless and near-lossless via CharLS
 *   codec_j2k.c      JPEG 2000 and HTJ2K via OpenJPEG
 */
#ifndef R3D_CODEC_H
#define R3D_CODEC_H

#include "r3d/dicom.h"

typedef struct r3d_codec_frame {
    int rows, cols, samples;
    int bits_alloc, bits_stored;
    int is_signed;
    int planar;           /* PlanarConfiguration from the header (RLE is always planar by segment) */
    const char *photometric;
} r3d_codec_frame;

typedef enum r3d_codec_kind {
    R3D_CODEC_NONE = 0, /* native (uncompressed) */
    R3D_CODEC_DEFLATE,  /* deflated data set, pixels native once inflated */
    R3D_CODEC_RLE,
    R3D_CODEC_JPEG,     /* any ITU T.81 process: baseline, extended, lossless */
    R3D_CODEC_JPEGLS,
    R3D_CODEC_J2K,      /* JPEG 2000 and HTJ2K */
    R3D_CODEC_UNKNOWN,
} r3d_codec_kind;

/* Classify a transfer syntax UID. */
r3d_codec_kind r3d_codec_for_ts(const char *ts_uid);

/* Does the decoder convert YBR to RGB itself (so the caller must not)? */
int r3d_codec_outputs_rgb(r3d_codec_kind k, const r3d_codec_frame *fr);

r3d_status r3d_decode_rle(const uint8_t *in, size_t n, const r3d_codec_frame *fr,
                          uint8_t *out, size_t out_size, const char *where, r3d_error *err);
r3d_status r3d_decode_jpeg(const uint8_t *in, size_t n, const r3d_codec_frame *fr,
                           uint8_t *out, size_t out_size, const char *where, r3d_error *err);
r3d_status r3d_decode_jpegls(const uint8_t *in, size_t n, const r3d_codec_frame *fr,
                             uint8_t *out, size_t out_size, const char *where, r3d_error *err);
r3d_status r3d_decode_j2k(const uint8_t *in, size_t n, const r3d_codec_frame *fr,
                          uint8_t *out, size_t out_size, const char *where, r3d_error *err);

/* Dispatch on kind. */
r3d_status r3d_codec_decode(r3d_codec_kind k, const uint8_t *in, size_t n,
                            const r3d_codec_frame *fr, uint8_t *out, size_t out_size,
                            const char *where, r3d_error *err);

#endif

/* codec.h - compressed pixel data codecs behind r3d_dcm_decode_frame.
 *
 * Each decoder takes the bytes of one frame (its fragments already joined)
 * and writes rows*cols*samples values into out: 1 byte per value when
 * bits_alloc <= 8 (a 1-bit frame is unpacked to one 0/1 byte per pixel),
 * 2 bytes (host order) when <= 16, 4 bytes when 32 (RLE, rare J2K);
 * samples interleaved (R,G,B,R,G,B... whatever the stream's own layout).
 * Values are written as the codestream holds them; sign extension from
 * bits_stored is the caller's job. YBR->RGB is the caller's job exactly when
 * r3d_codec_outputs_rgb says so (RLE, JPEG-LS); JPEG and JPEG 2000 always
 * hand back RGB for 3-sample frames.
 * Before writing anything each decoder checks the stream's size, component
 * count and precision against the frame: a mismatch is R3D_EFORMAT with a
 * message that starts with `where` ("x.dcm frame 3: JPEG-LS stream is
 * 256x256 but the header says 512x512"); an unsupported process is
 * R3D_EUNSUPPORTED; an output buffer smaller than the frame is R3D_EARG.
 * `where` names the file (and frame) for messages.
 *
 *   codec.c          transfer syntax table, dispatch, shared helpers
 *   codec_rle.c      DICOM RLE (PS3.5 Annex G), own code
 *   codec_jpeg.c     JPEG, routed by the stream's SOF marker: 8-bit DCT via
 *                    libjpeg-turbo; 12-bit DCT incl. progressive
 *                    (jpeg_dct.c) and lossless process 14 / SV1
 *                    (jpeg_lossless.c) own code; jpeg_stream.c is the
 *                    marker and entropy-data reader those two share
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

/* Classify a transfer syntax UID ("" or NULL: native, the PS3.5 default).
 * Encapsulated Uncompressed (1.2.840.10008.1.2.1.98) and Deflated Image
 * Frame Compression (1.2.840.10008.1.2.8.1) have no kind here: UNKNOWN. */
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

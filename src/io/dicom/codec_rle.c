/* codec_rle.c - DICOM RLE Lossless (transfer syntax 1.2.840.10008.1.2.5).
 *
 * Algorithm (DICOM PS3.5 Annex G): a frame is a 64-byte header of sixteen
 * little-endian uint32 (segment count 1..15, then the offset of each segment
 * from the start of the frame) followed by the segments. Each segment is one
 * byte plane PackBits-coded: a control byte n in 0..127 copies the next n+1
 * bytes, n in -127..-1 repeats the next byte 1-n times, -128 does nothing.
 * Segments run sample by sample and, within a sample, from the most
 * significant byte of the value to the least (G.2): a 16-bit RGB frame has
 * six segments R-hi, R-lo, G-hi, G-lo, B-hi, B-lo. Each segment decodes to
 * rows*cols bytes, which we scatter into the interleaved host-order output.
 * 1-bit frames (BitsAllocated 1, e.g. SEG masks) are one segment of the
 * bit-packed frame (ceil(rows*cols/8) bytes, least significant bit first,
 * PS3.5 8.1.1), unpacked here to one byte (0 or 1) per pixel.
 *
 * Invariants: every write is bounded by the segment's rows*cols budget and
 * every read by the segment's end, so truncated, overrunning or overlapping
 * segments give an error or a trailing-byte skip, never an access out of
 * bounds. A segment that decodes to more than its budget is accepted (some
 * encoders pad to an even length and the pad byte decodes to garbage); one
 * that decodes to less is an error, as in pydicom and dcmtk.
 *
 * Cost: O(n + rows*cols*samples*bytes); no allocation except for 1-bit frames.
 */
#include "codec_internal.h"

#include <stdlib.h>
#include <string.h>

static uint32_t rd_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* PackBits-decode src[0..n) into dst[k*stride] for k < budget; returns the
 * number of bytes produced (at most budget). */
static size_t packbits_decode(const uint8_t *src, size_t n, uint8_t *dst, size_t stride,
                              size_t budget)
{
    size_t i = 0, k = 0;
    while (i < n && k < budget) {
        int c = (int8_t)src[i++];
        if (c >= 0) {
            size_t run = (size_t)c + 1;
            if (run > n - i)
                run = n - i; /* truncated literal: keep what is there */
            if (run > budget - k)
                run = budget - k;
            if (stride == 1)
                memcpy(dst + k, src + i, run);
            else
                for (size_t j = 0; j < run; j++)
                    dst[(k + j) * stride] = src[i + j];
            i += (size_t)c + 1;
            k += run;
        } else if (c != -128) {
            if (i >= n)
                break;
            size_t run = (size_t)(1 - c);
            uint8_t v = src[i++];
            if (run > budget - k)
                run = budget - k;
            if (stride == 1)
                memset(dst + k, v, run);
            else
                for (size_t j = 0; j < run; j++)
                    dst[(k + j) * stride] = v;
            k += run;
        }
    }
    return k;
}

r3d_status r3d_decode_rle(const uint8_t *in, size_t n, const r3d_codec_frame *fr, uint8_t *out,
                          size_t out_size, const char *where, r3d_error *err)
{
    size_t n_values;
    r3d_status st = r3d__codec_check_frame(fr, out_size, where, &n_values, err);
    if (st != R3D_OK)
        return st;
    if (n < 64)
        return r3d_fail(err, R3D_EFORMAT, "%s: RLE frame has %zu bytes, shorter than its "
                        "64-byte header", where, n);

    const size_t pixels = (size_t)fr->rows * (size_t)fr->cols;
    const int one_bit = fr->bits_alloc == 1;
    if (!one_bit && fr->bits_alloc != 8 && fr->bits_alloc != 16 && fr->bits_alloc != 32)
        return r3d_fail(err, R3D_EUNSUPPORTED, "%s: RLE with BitsAllocated %d (only 1, 8, 16, "
                        "32 are defined)", where, fr->bits_alloc);
    if (one_bit && fr->samples != 1)
        return r3d_fail(err, R3D_EUNSUPPORTED, "%s: 1-bit RLE with %d samples", where,
                        fr->samples);
    const int bytes = one_bit ? 1 : fr->bits_alloc / 8;
    const int want_segments = fr->samples * bytes;

    uint32_t n_seg = rd_le32(in);
    if (n_seg < 1 || n_seg > 15)
        return r3d_fail(err, R3D_EFORMAT, "%s: RLE header declares %u segments (1..15 allowed)",
                        where, (unsigned)n_seg);
    if ((int)n_seg != want_segments)
        return r3d_fail(err, R3D_EFORMAT, "%s: RLE frame has %u segments but %d samples of "
                        "%d bits need %d", where, (unsigned)n_seg, fr->samples,
                        fr->bits_alloc, want_segments);
    uint32_t off[16];
    for (uint32_t s = 0; s < n_seg; s++) {
        off[s] = rd_le32(in + 4 + 4 * s);
        if (off[s] < 64 || off[s] > n)
            return r3d_fail(err, R3D_EFORMAT, "%s: RLE segment %u starts at byte %u, outside "
                            "the %zu-byte frame", where, (unsigned)s + 1, (unsigned)off[s], n);
        if (s > 0 && off[s] < off[s - 1])
            return r3d_fail(err, R3D_EFORMAT, "%s: RLE segment %u starts before segment %u",
                            where, (unsigned)s + 1, (unsigned)s);
    }

    if (one_bit) {
        size_t packed_n = (pixels + 7) / 8;
        uint8_t *packed = malloc(packed_n);
        if (!packed)
            return r3d_fail(err, R3D_ENOMEM, "%s: no memory for a %zu-byte RLE plane", where,
                            packed_n);
        size_t got = packbits_decode(in + off[0], n - off[0], packed, 1, packed_n);
        if (got < packed_n) {
            free(packed);
            return r3d_fail(err, R3D_EFORMAT, "%s: RLE segment 1 decodes to %zu bytes, the "
                            "1-bit frame needs %zu", where, got, packed_n);
        }
        for (size_t p = 0; p < pixels; p++)
            out[p] = (uint8_t)((packed[p >> 3] >> (p & 7)) & 1);
        free(packed);
        return R3D_OK;
    }

    const int le = host_is_little_endian();
    const size_t stride = (size_t)fr->samples * (size_t)bytes;
    for (uint32_t s = 0; s < n_seg; s++) {
        int sample = (int)s / bytes, byte_of_value = (int)s % bytes; /* 0 = most significant */
        size_t pos = le ? (size_t)(bytes - 1 - byte_of_value) : (size_t)byte_of_value;
        size_t end = (s + 1 < n_seg && off[s + 1] > off[s]) ? off[s + 1] : n;
        size_t got = packbits_decode(in + off[s], end - off[s],
                                     out + (size_t)sample * (size_t)bytes + pos, stride, pixels);
        if (got < pixels)
            return r3d_fail(err, R3D_EFORMAT, "%s: RLE segment %u decodes to %zu bytes, the "
                            "%dx%d frame needs %zu", where, (unsigned)s + 1, got, fr->cols,
                            fr->rows, pixels);
    }
    return R3D_OK;
}

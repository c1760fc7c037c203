/* jpeg_stream.h - the parts of an ITU-T T.81 stream our own JPEG decoders
 * share: marker segments (jpeg_stream.c), the entropy-coded-data bit reader
 * and Huffman decoding (inline here, they are the inner loop).
 *
 * Bit reader (T.81 F.2.2.5): bytes enter a 64-bit accumulator; 0xFF 0x00 is a
 * stuffed 0xFF; any other 0xFF xx is a marker, where reading stops and zero
 * bits are fed instead (counted in `fake`). A decoder that consumed one of
 * those zeros (fake > nbits) has run past the data: the stream is truncated
 * or corrupt, and the scan fails instead of inventing pixels.
 *
 * Huffman (T.81 C.2 and F.2.2.3): a 9-bit look-up table gives most symbols in
 * one step; longer codes walk MAXCODE/VALPTR. A code the table does not know
 * returns -1.
 */
#ifndef R3D_JPEG_STREAM_H
#define R3D_JPEG_STREAM_H

#include "codec_internal.h"

#define JPEG_LUT_BITS 9

typedef struct r3d_jpeg_huff {
    int present;
    uint8_t lut_len[1 << JPEG_LUT_BITS]; /* 0: code longer than JPEG_LUT_BITS */
    uint8_t lut_sym[1 << JPEG_LUT_BITS];
    int32_t maxcode[18];                 /* by length 1..16; -1 when none; [17] sentinel */
    int32_t valoff[17];                  /* huffval index of code c of length l: c + valoff[l] */
    uint8_t huffval[256];
} r3d_jpeg_huff;

typedef struct r3d_jpeg_comp {
    int id, h, v, tq;
} r3d_jpeg_comp;

typedef struct r3d_jpeg_bits {
    const uint8_t *p, *end;
    uint64_t acc; /* the low nbits bits are unread */
    int nbits;
    int fake;     /* zero bits fed past a marker or the end */
} r3d_jpeg_bits;

typedef struct r3d_jpeg {
    const uint8_t *buf;
    size_t n, pos;        /* pos: next byte the marker parser reads */
    const char *where;
    r3d_error *err;

    int sof;              /* 0xC0..0xCF once a frame header was read, else 0 */
    int precision, width, height, ncomp;
    r3d_jpeg_comp comp[4];
    int hmax, vmax;
    uint16_t qt[4][64];   /* natural (row-major) order */
    int qt_present[4];
    r3d_jpeg_huff dc[4], ac[4];
    int restart_interval;
    int jfif, adobe, adobe_transform;

    /* the scan whose header was read last */
    int ns, scomp[4], td[4], ta[4];
    int ss, se, ah, al;

    r3d_jpeg_bits bits;
} r3d_jpeg;

/* T.81 Figure A.6: zig-zag index -> natural index, padded so a corrupt run
 * past 63 lands on a harmless slot. */
extern const uint8_t r3d__jpeg_zigzag[64 + 16];

/* Start at SOI. R3D_EFORMAT if the bytes are not a JPEG stream. */
r3d_status r3d__jpeg_open(r3d_jpeg *js, const uint8_t *in, size_t n, const char *where,
                          r3d_error *err);
/* Read marker segments up to and including the next SOS (tables, frame
 * header, restart interval, APPn), validating each. Returns 1 with the scan
 * header in js and the bit reader at its data, 0 at EOI or the end of the
 * bytes, or -1 with *st set. */
int r3d__jpeg_next_scan(r3d_jpeg *js, r3d_status *st);
/* After a scan: move past the rest of its entropy-coded data. */
void r3d__jpeg_end_scan(r3d_jpeg *js);
/* At a restart boundary: expect RSTn (n = *next_rst, then advanced mod 8) and
 * restart the bit reader after it. R3D_OK or R3D_EFORMAT. */
r3d_status r3d__jpeg_restart(r3d_jpeg *js, int *next_rst);

/* ---- inline bit reader and Huffman decoder -------------------------------- */

static inline void jb_init(r3d_jpeg_bits *b, const uint8_t *p, const uint8_t *end)
{
    b->p = p;
    b->end = end;
    b->acc = 0;
    b->nbits = 0;
    b->fake = 0;
}

static inline void jb_fill(r3d_jpeg_bits *b)
{
    while (b->nbits <= 56) {
        unsigned byte = 0;
        if (b->p < b->end) {
            byte = *b->p;
            if (byte == 0xFF) {
                if (b->p + 1 < b->end && b->p[1] == 0x00) {
                    b->p += 2;
                } else {
                    byte = 0; /* a marker: stay on it */
                    b->fake += 8;
                }
            } else {
                b->p++;
            }
        } else {
            b->fake += 8;
        }
        b->acc = (b->acc << 8) | byte;
        b->nbits += 8;
    }
}

/* n in 1..16 */
static inline unsigned jb_peek(r3d_jpeg_bits *b, int n)
{
    if (b->nbits < n)
        jb_fill(b);
    return (unsigned)(b->acc >> (b->nbits - n)) & ((1u << n) - 1u);
}

static inline void jb_skip(r3d_jpeg_bits *b, int n)
{
    b->nbits -= n;
}

static inline unsigned jb_get(r3d_jpeg_bits *b, int n)
{
    if (n == 0)
        return 0;
    unsigned v = jb_peek(b, n);
    b->nbits -= n;
    return v;
}

/* Did the decoder use bits that were not in the stream? */
static inline int jb_overrun(const r3d_jpeg_bits *b)
{
    return b->fake > b->nbits;
}

/* T.81 F.2.2.1 EXTEND: s bits read as an unsigned value -> signed difference. */
static inline int32_t jb_extend(unsigned v, int s)
{
    if (s == 0)
        return 0;
    return v < (1u << (s - 1)) ? (int32_t)v - (int32_t)((1u << s) - 1u) : (int32_t)v;
}

static inline int jb_huff(r3d_jpeg_bits *b, const r3d_jpeg_huff *h)
{
    unsigned look = jb_peek(b, 16);
    unsigned top = look >> (16 - JPEG_LUT_BITS);
    int len = h->lut_len[top];
    if (len) {
        b->nbits -= len;
        return h->lut_sym[top];
    }
    for (int l = JPEG_LUT_BITS + 1; l <= 16; l++) {
        int32_t code = (int32_t)(look >> (16 - l));
        if (code <= h->maxcode[l]) {
            int idx = code + h->valoff[l];
            if (idx < 0 || idx > 255)
                return -1;
            b->nbits -= l;
            return h->huffval[idx];
        }
    }
    return -1;
}

#endif

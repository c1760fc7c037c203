/* dcm_build.h - build DICOM byte streams in memory for the reader's tests:
 * element headers in every encoding (explicit/implicit VR, little/big
 * endian, 2- and 4-byte lengths), sequences and items of defined or
 * undefined length, Part 10 preamble and meta, raw deflate with zlib.
 * Header-only helpers shared by test_dicom_parse.c and test_dicom_pixels.c
 * (and the seed/bad-file writers in them). */
#ifndef R3D_DCM_BUILD_H
#define R3D_DCM_BUILD_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef struct dbuf {
    uint8_t *b;
    size_t n, cap;
    int big;      /* big-endian numbers and tags */
    int explicit_vr;
} dbuf;

static inline void db_init(dbuf *d, int explicit_vr, int big)
{
    memset(d, 0, sizeof *d);
    d->explicit_vr = explicit_vr;
    d->big = big;
}

static inline void db_put(dbuf *d, const void *p, size_t n)
{
    if (d->n + n > d->cap) {
        size_t cap = d->cap ? d->cap : 256;
        while (cap < d->n + n)
            cap *= 2;
        d->b = realloc(d->b, cap);
        d->cap = cap;
    }
    if (n)
        memcpy(d->b + d->n, p, n);
    d->n += n;
}

static inline void db_u16(dbuf *d, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(d->big ? v >> 8 : v), (uint8_t)(d->big ? v : v >> 8)};
    db_put(d, b, 2);
}

static inline void db_u32(dbuf *d, uint32_t v)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++)
        b[d->big ? 3 - i : i] = (uint8_t)(v >> (8 * i));
    db_put(d, b, 4);
}

static inline int db_long_vr(const char *vr)
{
    static const char *l[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV",
                              "UC", "UN", "UR", "UT", "UV"};
    for (size_t i = 0; i < sizeof l / sizeof l[0]; i++)
        if (!strcmp(vr, l[i]))
            return 1;
    return 0;
}

/* Element header; len may be 0xFFFFFFFF. Item tags (FFFE) never carry a VR. */
static inline void db_hdr(dbuf *d, uint16_t g, uint16_t e, const char *vr, uint32_t len)
{
    db_u16(d, g);
    db_u16(d, e);
    if (g == 0xFFFE || !d->explicit_vr || !vr) {
        db_u32(d, len);
        return;
    }
    db_put(d, vr, 2);
    if (db_long_vr(vr)) {
        db_u16(d, 0);
        db_u32(d, len);
    } else {
        db_u16(d, (uint16_t)len);
    }
}

static inline void db_el(dbuf *d, uint16_t g, uint16_t e, const char *vr, const void *val, uint32_t len)
{
    db_hdr(d, g, e, vr, len);
    db_put(d, val, len);
}

/* Text value padded to even length (NUL for UI, space otherwise). */
static inline void db_str(dbuf *d, uint16_t g, uint16_t e, const char *vr, const char *s)
{
    size_t n = strlen(s);
    db_hdr(d, g, e, vr, (uint32_t)(n + (n & 1)));
    db_put(d, s, n);
    if (n & 1)
        db_put(d, vr && !strcmp(vr, "UI") ? "\0" : " ", 1);
}

static inline void db_us(dbuf *d, uint16_t g, uint16_t e, uint16_t v)
{
    db_hdr(d, g, e, "US", 2);
    db_u16(d, v);
}

static inline void db_item(dbuf *d, uint32_t len) { db_hdr(d, 0xFFFE, 0xE000, NULL, len); }
static inline void db_item_end(dbuf *d) { db_hdr(d, 0xFFFE, 0xE00D, NULL, 0); }
static inline void db_seq_end(dbuf *d) { db_hdr(d, 0xFFFE, 0xE0DD, NULL, 0); }

/* Part 10 file: preamble, DICM, meta (explicit LE) with group length and the
 * transfer syntax, then the body bytes as given. */
static inline void db_part10(dbuf *out, const char *ts, const uint8_t *body, size_t n)
{
    dbuf m;
    db_init(&m, 1, 0);
    static const uint8_t ver[2] = {0, 1};
    db_el(&m, 0x0002, 0x0001, "OB", ver, 2);
    db_str(&m, 0x0002, 0x0002, "UI", "1.2.840.10008.5.1.4.1.1.7");
    db_str(&m, 0x0002, 0x0003, "UI", "1.2.3.4.5.6.7");
    if (ts)
        db_str(&m, 0x0002, 0x0010, "UI", ts);
    db_init(out, 1, 0);
    uint8_t pre[128] = {0};
    db_put(out, pre, 128);
    db_put(out, "DICM", 4);
    db_hdr(out, 0x0002, 0x0000, "UL", 4);
    db_u32(out, (uint32_t)m.n);
    db_put(out, m.b, m.n);
    db_put(out, body, n);
    free(m.b);
}

/* Raw deflate (no zlib header), as PS3.5 §A.5 wants. */
static inline size_t db_deflate(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    deflateInit2(&zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    deflate(&zs, Z_FINISH);
    size_t got = zs.total_out;
    deflateEnd(&zs);
    return got;
}

/* Image pixel module for a monochrome or colour image. */
static inline void db_image(dbuf *d, int rows, int cols, int samples, int ba, int bs, int pr,
                     const char *photometric, int frames)
{
    char s[32];
    db_us(d, 0x0028, 0x0002, (uint16_t)samples);
    db_str(d, 0x0028, 0x0004, "CS", photometric);
    if (frames > 0) {
        snprintf(s, sizeof s, "%d", frames);
        db_str(d, 0x0028, 0x0008, "IS", s);
    }
    db_us(d, 0x0028, 0x0010, (uint16_t)rows);
    db_us(d, 0x0028, 0x0011, (uint16_t)cols);
    db_us(d, 0x0028, 0x0100, (uint16_t)ba);
    db_us(d, 0x0028, 0x0101, (uint16_t)bs);
    db_us(d, 0x0028, 0x0102, (uint16_t)(bs - 1));
    db_us(d, 0x0028, 0x0103, (uint16_t)pr);
}

static inline int db_write(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    size_t w = fwrite(b, 1, n, f);
    fclose(f);
    return w == n;
}

#endif

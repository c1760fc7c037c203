/* dcm_mini.h - a test-local DICOM reader just big enough for the codec tests:
 * Part 10 files in Explicit or Implicit VR Little Endian (the meta group is
 * always explicit), the (0028,xxxx) pixel attributes, Rescale, and the pixel
 * data: native bytes or the encapsulated fragments split into frames.
 *
 * It is deliberately independent of src/io/dicom/parse.c, so the codec tests
 * check the codecs alone. Frames come from fragments as PS3.5 A.4 allows:
 * one frame joins all fragments; as many fragments as frames map one to one;
 * else the Basic Offset Table; else a new frame starts at each fragment that
 * begins with a codestream signature (JPEG SOI, J2K SOC).
 */
#ifndef R3D_TEST_DCM_MINI_H
#define R3D_TEST_DCM_MINI_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "r3d/core.h"

#define DCM_MAX_FRAG 4096

typedef struct dcm_mini {
    uint8_t *buf;
    size_t n;
    char ts[65];
    int rows, cols, samples, bits_alloc, bits_stored, is_signed, planar, frames;
    char photometric[17];
    double slope, intercept;
    /* native pixels */
    const uint8_t *native;
    size_t native_len;
    /* encapsulated */
    int encapsulated;
    const uint8_t *frag[DCM_MAX_FRAG];
    uint32_t frag_len[DCM_MAX_FRAG];
    int n_frag;
    const uint8_t *bot;
    uint32_t bot_len;
} dcm_mini;

static uint16_t dm_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t dm_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void dm_str(const uint8_t *v, uint32_t len, char *out, size_t cap)
{
    size_t k = len < cap - 1 ? len : cap - 1;
    memcpy(out, v, k);
    out[k] = 0;
    while (k > 0 && (out[k - 1] == ' ' || out[k - 1] == 0))
        out[--k] = 0;
    size_t s = 0;
    while (out[s] == ' ')
        s++;
    memmove(out, out + s, strlen(out + s) + 1);
}

static int dm_long_vr(const uint8_t *vr)
{
    static const char *L[] = {"OB", "OW", "OF", "SQ", "UT", "UN", "UC", "UR", "OD", "OL", "OV", "SV", "UV"};
    for (size_t i = 0; i < sizeof L / sizeof L[0]; i++)
        if (vr[0] == L[i][0] && vr[1] == L[i][1])
            return 1;
    return 0;
}

/* Parse elements in [*pos, end); stop at an item/sequence delimiter when
 * nested. Returns 0 on a structural error. */
static int dm_walk(dcm_mini *d, size_t *pos, size_t end, int explicit_vr, int depth);

static int dm_skip_sq(dcm_mini *d, size_t *pos, size_t end, uint32_t len, int explicit_vr,
                      int depth)
{
    if (len != 0xFFFFFFFFu) {
        if (len > end - *pos)
            return 0;
        *pos += len;
        return 1;
    }
    while (*pos + 8 <= end) {
        uint16_t g = dm_u16(d->buf + *pos), e = dm_u16(d->buf + *pos + 2);
        uint32_t il = dm_u32(d->buf + *pos + 4);
        *pos += 8;
        if (g == 0xFFFE && e == 0xE0DD)
            return 1;
        if (g != 0xFFFE || e != 0xE000)
            return 0;
        if (il != 0xFFFFFFFFu) {
            if (il > end - *pos)
                return 0;
            *pos += il;
        } else if (!dm_walk(d, pos, end, explicit_vr, depth + 1)) {
            return 0;
        }
    }
    return 0;
}

static int dm_walk(dcm_mini *d, size_t *pos, size_t end, int explicit_vr, int depth)
{
    while (*pos + 8 <= end) {
        const uint8_t *p = d->buf + *pos;
        uint16_t g = dm_u16(p), e = dm_u16(p + 2);
        if (g == 0xFFFE && e == 0xE00D) {
            *pos += 8;
            return 1;
        }
        uint32_t len;
        int is_sq = 0;
        size_t hdr;
        if (explicit_vr && g != 0xFFFE) {
            if (dm_long_vr(p + 4)) {
                if (*pos + 12 > end)
                    return 0;
                len = dm_u32(p + 8);
                hdr = 12;
            } else {
                len = dm_u16(p + 6);
                hdr = 8;
            }
            is_sq = p[4] == 'S' && p[5] == 'Q';
        } else {
            len = dm_u32(p + 4);
            hdr = 8;
        }
        *pos += hdr;
        uint32_t tag = (uint32_t)g << 16 | e;
        if (tag == 0x7FE00010u && depth == 0) {
            if (len == 0xFFFFFFFFu) {
                d->encapsulated = 1;
                int first = 1;
                while (*pos + 8 <= end) {
                    uint16_t ig = dm_u16(d->buf + *pos), ie = dm_u16(d->buf + *pos + 2);
                    uint32_t il = dm_u32(d->buf + *pos + 4);
                    *pos += 8;
                    if (ig == 0xFFFE && ie == 0xE0DD)
                        break;
                    if (ig != 0xFFFE || ie != 0xE000)
                        return 0;
                    if (il > end - *pos)
                        il = (uint32_t)(end - *pos); /* truncated file: keep what is there */
                    if (first) {
                        d->bot = il ? d->buf + *pos : NULL;
                        d->bot_len = il;
                        first = 0;
                    } else if (d->n_frag < DCM_MAX_FRAG) {
                        d->frag[d->n_frag] = d->buf + *pos;
                        d->frag_len[d->n_frag++] = il;
                    }
                    *pos += il;
                }
            } else {
                if (len > end - *pos)
                    len = (uint32_t)(end - *pos);
                d->native = d->buf + *pos;
                d->native_len = len;
                *pos += len;
            }
            return 1;
        }
        if (is_sq || len == 0xFFFFFFFFu) {
            if (!dm_skip_sq(d, pos, end, len, explicit_vr, depth))
                return 0;
            continue;
        }
        if (len > end - *pos)
            return 0;
        const uint8_t *v = d->buf + *pos;
        char s[80];
        if (depth == 0) {
            switch (tag) {
            case 0x00020010u: dm_str(v, len, d->ts, sizeof d->ts); break;
            case 0x00280002u: d->samples = dm_u16(v); break;
            case 0x00280004u: dm_str(v, len, d->photometric, sizeof d->photometric); break;
            case 0x00280006u: d->planar = dm_u16(v); break;
            case 0x00280008u: dm_str(v, len, s, sizeof s); d->frames = atoi(s); break;
            case 0x00280010u: d->rows = dm_u16(v); break;
            case 0x00280011u: d->cols = dm_u16(v); break;
            case 0x00280100u: d->bits_alloc = dm_u16(v); break;
            case 0x00280101u: d->bits_stored = dm_u16(v); break;
            case 0x00280103u: d->is_signed = dm_u16(v); break;
            case 0x00281052u: dm_str(v, len, s, sizeof s); d->intercept = atof(s); break;
            case 0x00281053u: dm_str(v, len, s, sizeof s); d->slope = atof(s); break;
            default: break;
            }
        }
        *pos += len;
    }
    return 1;
}

static void dm_free(dcm_mini *d)
{
    if (d) {
        free(d->buf);
        free(d);
    }
}

/* Read path; NULL if unreadable or not Part 10 Little Endian. */
static dcm_mini *dm_open(const char *path)
{
    dcm_mini *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    if (r3d_file_read_all(path, &d->buf, &d->n, NULL) != R3D_OK || d->n < 132) {
        dm_free(d);
        return NULL;
    }
    d->slope = 1.0;
    d->frames = 1;
    size_t pos = 132;
    /* Some test files have no 128-byte preamble: the meta group (or, with no
     * meta at all, the data set in implicit VR) starts at byte 0. */
    if (memcmp(d->buf + 128, "DICM", 4) != 0) {
        if (dm_u16(d->buf) == 0x0002)
            pos = 0;
        else if (dm_u16(d->buf) == 0x0008) {
            pos = 0;
            strcpy(d->ts, "1.2.840.10008.1.2");
        } else {
            dm_free(d);
            return NULL;
        }
    }
    /* File meta: explicit VR LE, group 0002 only. */
    while (pos + 8 <= d->n && dm_u16(d->buf + pos) == 0x0002) {
        const uint8_t *p = d->buf + pos;
        uint32_t len;
        size_t hdr;
        if (dm_long_vr(p + 4)) {
            len = dm_u32(p + 8);
            hdr = 12;
        } else {
            len = dm_u16(p + 6);
            hdr = 8;
        }
        if (len > d->n - pos - hdr)
            break;
        if (dm_u16(p + 2) == 0x0010)
            dm_str(p + hdr, len, d->ts, sizeof d->ts);
        pos += hdr + len;
    }
    if (strcmp(d->ts, "1.2.840.10008.1.2.2") == 0 || strcmp(d->ts, "1.2.840.10008.1.2.1.99") == 0) {
        dm_free(d);
        return NULL;
    }
    int explicit_vr = strcmp(d->ts, "1.2.840.10008.1.2") != 0;
    /* Trust the bytes over the meta group: some writers (pydicom's
     * SC_rgb_jpeg.dcm) say explicit and write implicit. */
    if (pos + 6 <= d->n) {
        const uint8_t *v = d->buf + pos + 4;
        explicit_vr = v[0] >= 'A' && v[0] <= 'Z' && v[1] >= 'A' && v[1] <= 'Z';
    }
    if (!dm_walk(d, &pos, d->n, explicit_vr, 0) && !d->native && !d->n_frag) {
        dm_free(d);
        return NULL;
    }
    if (d->frames < 1)
        d->frames = 1;
    return d;
}

/* Frame k's bytes (joined fragments; malloc'ed into *owned when joining). */
static const uint8_t *dm_frame(const dcm_mini *d, int k, size_t *len, uint8_t **owned)
{
    *owned = NULL;
    *len = 0;
    if (!d->encapsulated || d->n_frag == 0 || k < 0 || k >= d->frames)
        return NULL;
    int first = -1, last = -1; /* fragment range [first, last] */
    if (d->frames == 1) {
        first = 0;
        last = d->n_frag - 1;
    } else if (d->n_frag == d->frames) {
        first = last = k;
    } else if (d->bot && d->bot_len >= 4u * (uint32_t)d->frames) {
        uint32_t start = dm_u32(d->bot + 4 * k);
        uint32_t stop = k + 1 < d->frames ? dm_u32(d->bot + 4 * (k + 1)) : UINT32_MAX;
        uint32_t off = 0;
        for (int i = 0; i < d->n_frag; i++) {
            if (off >= start && off < stop) {
                if (first < 0)
                    first = i;
                last = i;
            }
            off += 8 + d->frag_len[i];
        }
    } else {
        int frame = -1;
        for (int i = 0; i < d->n_frag; i++) {
            const uint8_t *f = d->frag[i];
            int starts = d->frag_len[i] >= 4 && ((f[0] == 0xFF && f[1] == 0xD8) ||
                                                (f[0] == 0xFF && f[1] == 0x4F && f[2] == 0xFF));
            if (starts || frame < 0)
                frame++;
            if (frame == k) {
                if (first < 0)
                    first = i;
                last = i;
            }
        }
    }
    if (first < 0)
        return NULL;
    if (first == last) {
        *len = d->frag_len[first];
        return d->frag[first];
    }
    size_t total = 0;
    for (int i = first; i <= last; i++)
        total += d->frag_len[i];
    uint8_t *b = malloc(total ? total : 1);
    if (!b)
        return NULL;
    size_t o = 0;
    for (int i = first; i <= last; i++) {
        memcpy(b + o, d->frag[i], d->frag_len[i]);
        o += d->frag_len[i];
    }
    *owned = b;
    *len = total;
    return b;
}

#endif

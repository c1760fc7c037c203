/* jpeg_stream.c - ITU-T T.81 marker segments for our own JPEG decoders
 * (jpeg_dct.c, jpeg_lossless.c): SOI, DHT, DQT, SOFn, DRI, SOS, APP0 (JFIF),
 * APP14 (Adobe), restart markers and the end of a scan's entropy data.
 *
 * Every length and index in a segment is checked against the segment and the
 * buffer before use (T.81 Annex B gives the allowed ranges), so a decoder
 * that gets a scan from r3d__jpeg_next_scan can trust the frame geometry,
 * the table numbers and the component indices it is given.
 *
 * References: ITU-T T.81 Annex B (syntax), C (Huffman tables), F.2.2
 * (decoding procedures); JFIF 1.02; Adobe TN 5116 (APP14).
 * Cost: linear in the marker segments; table builds are O(256) each.
 */
#include "jpeg_stream.h"

#include <string.h>

const uint8_t r3d__jpeg_zigzag[64 + 16] = {
    0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,  12, 19, 26, 33,
    40, 48, 41, 34, 27, 20, 13, 6,  7,  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36,
    29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54,
    47, 55, 62, 63,
    /* a corrupt run can step up to 15 past 63 before the decoder notices */
    63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63};

static unsigned be16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

r3d_status r3d__jpeg_open(r3d_jpeg *js, const uint8_t *in, size_t n, const char *where,
                          r3d_error *err)
{
    memset(js, 0, sizeof *js);
    js->buf = in;
    js->n = n;
    js->where = where;
    js->err = err;
    if (!in || n < 4 || in[0] != 0xFF || in[1] != 0xD8)
        return r3d_fail(err, R3D_EFORMAT, "%s: not a JPEG stream (no SOI marker)", where);
    js->pos = 2;
    return R3D_OK;
}

/* T.81 C.2: BITS and HUFFVAL -> decoding tables. 0 if the counts are not a
 * prefix code (more codes of a length than the length allows). */
static int build_huff(r3d_jpeg_huff *h, const uint8_t bits[16], const uint8_t *vals, int nvals)
{
    memset(h, 0, sizeof *h);
    memcpy(h->huffval, vals, (size_t)nvals);
    int32_t code = 0;
    int k = 0;
    for (int l = 1; l <= 16; l++) {
        int cnt = bits[l - 1];
        if (cnt == 0) {
            h->maxcode[l] = -1;
        } else {
            h->valoff[l] = k - code;
            for (int i = 0; i < cnt; i++, k++, code++) {
                if (code >= (1 << l))
                    return 0;
                if (l <= JPEG_LUT_BITS) {
                    int shift = JPEG_LUT_BITS - l;
                    for (int j = 0; j < (1 << shift); j++) {
                        h->lut_len[(code << shift) | j] = (uint8_t)l;
                        h->lut_sym[(code << shift) | j] = vals[k];
                    }
                }
            }
            h->maxcode[l] = code - 1;
        }
        code <<= 1;
    }
    h->maxcode[17] = INT32_MAX;
    h->present = 1;
    return 1;
}

static int fail(r3d_jpeg *js, r3d_status *st, r3d_status code, const char *what)
{
    *st = r3d_fail(js->err, code, "%s: %s", js->where, what);
    return -1;
}

static int parse_dht(r3d_jpeg *js, const uint8_t *p, size_t len, r3d_status *st)
{
    while (len > 0) {
        if (len < 17)
            return fail(js, st, R3D_EFORMAT, "JPEG DHT segment is truncated");
        int tc = p[0] >> 4, th = p[0] & 15, total = 0;
        for (int i = 0; i < 16; i++)
            total += p[1 + i];
        if (tc > 1 || th > 3)
            return fail(js, st, R3D_EFORMAT, "JPEG DHT has a table class or number out of range");
        if (total > 256 || (size_t)(17 + total) > len)
            return fail(js, st, R3D_EFORMAT, "JPEG DHT declares more codes than it holds");
        r3d_jpeg_huff *h = tc == 0 ? &js->dc[th] : &js->ac[th];
        if (!build_huff(h, p + 1, p + 17, total))
            return fail(js, st, R3D_EFORMAT, "JPEG DHT code lengths are not a prefix code");
        p += 17 + total;
        len -= (size_t)(17 + total);
    }
    return 0;
}

static int parse_dqt(r3d_jpeg *js, const uint8_t *p, size_t len, r3d_status *st)
{
    while (len > 0) {
        int pq = p[0] >> 4, tq = p[0] & 15;
        size_t need = 1 + (pq ? 128 : 64);
        if (pq > 1 || tq > 3)
            return fail(js, st, R3D_EFORMAT, "JPEG DQT has a precision or table number out of "
                        "range");
        if (len < need)
            return fail(js, st, R3D_EFORMAT, "JPEG DQT segment is truncated");
        for (int k = 0; k < 64; k++) {
            unsigned q = pq ? be16(p + 1 + 2 * k) : p[1 + k];
            js->qt[tq][r3d__jpeg_zigzag[k]] = (uint16_t)q;
        }
        js->qt_present[tq] = 1;
        p += need;
        len -= need;
    }
    return 0;
}

static int parse_sof(r3d_jpeg *js, int marker, const uint8_t *p, size_t len, r3d_status *st)
{
    if (js->sof)
        return fail(js, st, R3D_EUNSUPPORTED, "JPEG stream has more than one frame "
                    "(hierarchical process)");
    if (len < 6)
        return fail(js, st, R3D_EFORMAT, "JPEG SOF segment is truncated");
    js->precision = p[0];
    js->height = (int)be16(p + 1);
    js->width = (int)be16(p + 3);
    js->ncomp = p[5];
    if (js->ncomp < 1 || js->ncomp > 4 || len < (size_t)(6 + 3 * js->ncomp))
        return fail(js, st, R3D_EFORMAT, "JPEG SOF has a bad component count");
    if (js->height == 0)
        return fail(js, st, R3D_EUNSUPPORTED, "JPEG frame height is given by a DNL marker");
    if (js->width == 0)
        return fail(js, st, R3D_EFORMAT, "JPEG frame width is 0");
    js->hmax = js->vmax = 1;
    for (int c = 0; c < js->ncomp; c++) {
        const uint8_t *q = p + 6 + 3 * c;
        r3d_jpeg_comp *cp = &js->comp[c];
        cp->id = q[0];
        cp->h = q[1] >> 4;
        cp->v = q[1] & 15;
        cp->tq = q[2];
        if (cp->h < 1 || cp->h > 4 || cp->v < 1 || cp->v > 4 || cp->tq > 3)
            return fail(js, st, R3D_EFORMAT, "JPEG SOF has sampling factors or a table number "
                        "out of range");
        for (int d = 0; d < c; d++)
            if (js->comp[d].id == cp->id)
                return fail(js, st, R3D_EFORMAT, "JPEG SOF repeats a component id");
        if (cp->h > js->hmax)
            js->hmax = cp->h;
        if (cp->v > js->vmax)
            js->vmax = cp->v;
    }
    js->sof = marker;
    return 0;
}

static int parse_sos(r3d_jpeg *js, const uint8_t *p, size_t len, r3d_status *st)
{
    if (!js->sof)
        return fail(js, st, R3D_EFORMAT, "JPEG scan before the frame header");
    if (len < 1)
        return fail(js, st, R3D_EFORMAT, "JPEG SOS segment is truncated");
    int ns = p[0];
    if (ns < 1 || ns > 4 || len < (size_t)(1 + 2 * ns + 3))
        return fail(js, st, R3D_EFORMAT, "JPEG SOS has a bad component count");
    js->ns = ns;
    for (int i = 0; i < ns; i++) {
        int id = p[1 + 2 * i], k;
        for (k = 0; k < js->ncomp; k++)
            if (js->comp[k].id == id)
                break;
        if (k == js->ncomp)
            return fail(js, st, R3D_EFORMAT, "JPEG scan names a component the frame lacks");
        for (int d = 0; d < i; d++)
            if (js->scomp[d] == k)
                return fail(js, st, R3D_EFORMAT, "JPEG scan repeats a component");
        js->scomp[i] = k;
        js->td[i] = p[2 + 2 * i] >> 4;
        js->ta[i] = p[2 + 2 * i] & 15;
        if (js->td[i] > 3 || js->ta[i] > 3)
            return fail(js, st, R3D_EFORMAT, "JPEG scan selects a Huffman table out of range");
    }
    const uint8_t *q = p + 1 + 2 * ns;
    js->ss = q[0];
    js->se = q[1];
    js->ah = q[2] >> 4;
    js->al = q[2] & 15;
    return 0;
}

int r3d__jpeg_next_scan(r3d_jpeg *js, r3d_status *st)
{
    const uint8_t *b = js->buf;
    for (;;) {
        /* Bytes that are not a marker between segments are skipped, as
         * libjpeg does (it warns of "extraneous bytes"). */
        while (js->pos < js->n && b[js->pos] != 0xFF)
            js->pos++;
        while (js->pos + 1 < js->n && b[js->pos + 1] == 0xFF)
            js->pos++; /* fill bytes */
        if (js->pos + 1 >= js->n)
            return 0;
        int m = b[js->pos + 1];
        js->pos += 2;
        if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD8))
            continue; /* stuffed byte, TEM, stray RSTn or SOI: no segment */
        if (m == 0xD9)
            return 0; /* EOI */
        if (js->pos + 2 > js->n)
            return fail(js, st, R3D_EFORMAT, "JPEG marker segment is truncated");
        size_t len = be16(b + js->pos);
        if (len < 2 || js->pos + len > js->n)
            return fail(js, st, R3D_EFORMAT, "JPEG marker segment runs past the end of the data");
        const uint8_t *p = b + js->pos + 2;
        size_t plen = len - 2;
        js->pos += len;
        switch (m) {
        case 0xC4:
            if (parse_dht(js, p, plen, st))
                return -1;
            break;
        case 0xDB:
            if (parse_dqt(js, p, plen, st))
                return -1;
            break;
        case 0xDD:
            if (plen < 2)
                return fail(js, st, R3D_EFORMAT, "JPEG DRI segment is truncated");
            js->restart_interval = (int)be16(p);
            break;
        case 0xDA:
            if (parse_sos(js, p, plen, st))
                return -1;
            jb_init(&js->bits, b + js->pos, b + js->n);
            return 1;
        case 0xDC:
            return fail(js, st, R3D_EUNSUPPORTED, "JPEG DNL marker is not supported");
        case 0xE0:
            if (plen >= 5 && memcmp(p, "JFIF\0", 5) == 0)
                js->jfif = 1;
            break;
        case 0xEE:
            if (plen >= 12 && memcmp(p, "Adobe", 5) == 0) {
                js->adobe = 1;
                js->adobe_transform = p[11];
            }
            break;
        default:
            if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
                if (parse_sof(js, m, p, plen, st))
                    return -1;
            }
            break; /* APPn, COM, DAC, JPG and reserved markers carry nothing we need */
        }
    }
}

void r3d__jpeg_end_scan(r3d_jpeg *js)
{
    const uint8_t *p = js->bits.p, *end = js->buf + js->n;
    while (p + 1 < end) {
        if (p[0] == 0xFF && p[1] != 0x00 && p[1] != 0xFF && !(p[1] >= 0xD0 && p[1] <= 0xD7))
            break;
        p++;
    }
    js->pos = (size_t)(p - js->buf);
}

r3d_status r3d__jpeg_restart(r3d_jpeg *js, int *next_rst)
{
    const uint8_t *p = js->bits.p, *end = js->buf + js->n;
    /* Skip what is left of the interval's data up to the next marker. */
    while (p + 1 < end && !(p[0] == 0xFF && p[1] != 0x00 && p[1] != 0xFF))
        p++;
    if (p + 1 >= end)
        return r3d_fail(js->err, R3D_EFORMAT, "%s: JPEG data ends where restart marker RST%d "
                        "was due", js->where, *next_rst);
    if (p[1] != 0xD0 + *next_rst)
        return r3d_fail(js->err, R3D_EFORMAT, "%s: JPEG restart marker RST%d expected, found "
                        "marker FF%02X", js->where, *next_rst, p[1]);
    *next_rst = (*next_rst + 1) & 7;
    jb_init(&js->bits, p + 2, end);
    return R3D_OK;
}

int r3d__jpeg_color_is_ycbcr(int jfif, int adobe, int adobe_transform, const int ids[3],
                             const char *photometric)
{
    if (jfif)
        return 1;
    if (adobe)
        return adobe_transform != 0;
    if (ids[0] == 'R' && ids[1] == 'G' && ids[2] == 'B')
        return 0;
    if (photometric && strncmp(photometric, "YBR", 3) == 0)
        return 1;
    /* libjpeg would guess YCbCr here too; DICOM says RGB means untransformed
     * RGB (PS3.5 8.2.1), and encoders that transform anyway use ids 1,2,3. */
    if (photometric && strcmp(photometric, "RGB") == 0 &&
        !(ids[0] == 1 && ids[1] == 2 && ids[2] == 3))
        return 0;
    return 1;
}

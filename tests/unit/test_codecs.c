/* test_codecs.c - the pixel codecs (src/io/dicom/codec*.c, jpeg_*.c).
 *
 * Synthetic round trips (no data needed): RLE through a tiny PackBits encoder
 * written here; JPEG lossless through a tiny process-14 encoder written here
 * (every predictor, point transform, restarts, SSSS=16); JPEG-LS through
 * CharLS's encoder; JPEG 2000 through OpenJPEG's encoder; 8-bit JPEG through
 * libjpeg-turbo's encoder, decoded both by libjpeg and by our own DCT
 * decoder, which must agree within 1 grey level. Hostile inputs (truncation,
 * byte flips, lying headers) must give an error with a message, never a
 * crash (the sanitizer build and fuzz/fuzz_codecs_replay cover the rest).
 *
 * Real files (skipped when ../shared/data is absent): compressed DICOM
 * files compared with their uncompressed twins from the same source, read
 * with the test-local dcm_mini.h (not the library's parser): lossless
 * syntaxes must match bit for bit, lossy ones within a stated bound in
 * modality units. Decode times of the 512x512 CT slice in each syntax are
 * printed.
 */
#include "check.h"
#include "dcm_mini.h"
#include "io/dicom/codec.h"
#include "io/dicom/codec_internal.h"

#include <charls/charls.h>
#include <jpeglib.h>
#include <openjpeg.h>
#include <stdint.h>
#include <time.h>

#define DATA(rel) "dicom/" rel
#define CW DATA("cornerstone_wado/testImages/")
#define PD DATA("pydicom_data/data_store/data/")
#define DP DATA("deb_pydicom/")

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static uint32_t rng_state = 12345u;
static uint32_t rng(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}

static r3d_codec_frame frame_of(int rows, int cols, int samples, int bits_alloc, int bits_stored,
                                int is_signed, const char *photometric)
{
    r3d_codec_frame f = {rows, cols, samples, bits_alloc, bits_stored, is_signed, 0,
                         photometric};
    return f;
}

static uint32_t get_raw(const uint8_t *buf, size_t i, int bytes)
{
    if (bytes == 1)
        return buf[i];
    if (bytes == 2) {
        uint16_t w;
        memcpy(&w, buf + 2 * i, 2);
        return w;
    }
    uint32_t w;
    memcpy(&w, buf + 4 * i, 4);
    return w;
}

/* ======================================================================== */
/* Transfer syntax table                                                    */
/* ======================================================================== */

static void test_codec_for_ts_classifies_every_dicom_syntax(void)
{
    CHECK_INT(r3d_codec_for_ts("1.2.840.10008.1.2"), R3D_CODEC_NONE);
    CHECK_INT(r3d_codec_for_ts("1.2.840.10008.1.2.1"), R3D_CODEC_NONE);
    CHECK_INT(r3d_codec_for_ts("1.2.840.10008.1.2.2"), R3D_CODEC_NONE);
    CHECK_INT(r3d_codec_for_ts(""), R3D_CODEC_NONE);
    CHECK_INT(r3d_codec_for_ts(NULL), R3D_CODEC_NONE);
    CHECK_INT(r3d_codec_for_ts("1.2.840.10008.1.2.1.99"), R3D_CODEC_DEFLATE);
    CHECK_INT(r3d_codec_for_ts("1.2.840.10008.1.2.5"), R3D_CODEC_RLE);
    const char *jpeg[] = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",
                          "1.2.840.10008.1.2.4.53", "1.2.840.10008.1.2.4.55",
                          "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"};
    for (size_t i = 0; i < sizeof jpeg / sizeof jpeg[0]; i++)
        CHECK_INT(r3d_codec_for_ts(jpeg[i]), R3D_CODEC_JPEG);
    CHECK_INT(r3d_codec_for_ts("1.2.840.10008.1.2.4.80"), R3D_CODEC_JPEGLS);
    CHECK_INT(r3d_codec_for_ts("1.2.840.10008.1.2.4.81"), R3D_CODEC_JPEGLS);
    const char *j2k[] = {"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
                         "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",
                         "1.2.840.10008.1.2.4.203"};
    for (size_t i = 0; i < sizeof j2k / sizeof j2k[0]; i++)
        CHECK_INT(r3d_codec_for_ts(j2k[i]), R3D_CODEC_J2K);
    /* UID padding (NUL or space to even length) does not matter */
    CHECK_INT(r3d_codec_for_ts("1.2.840.10008.1.2.4.70 "), R3D_CODEC_JPEG);
    CHECK_INT(r3d_codec_for_ts("1.2.840.10008.1.2.4.100"), R3D_CODEC_UNKNOWN); /* MPEG2 */
    CHECK_INT(r3d_codec_for_ts("1.2.840.10008.1.2.4.5"), R3D_CODEC_UNKNOWN);   /* prefix only */
    CHECK_INT(r3d_codec_for_ts("1.2.840.10008.1.2.8.1"), R3D_CODEC_UNKNOWN);

    r3d_codec_frame grey = frame_of(4, 4, 1, 8, 8, 0, "MONOCHROME2");
    r3d_codec_frame ybr = frame_of(4, 4, 3, 8, 8, 0, "YBR_FULL");
    CHECK(!r3d_codec_outputs_rgb(R3D_CODEC_JPEG, &grey));
    CHECK(r3d_codec_outputs_rgb(R3D_CODEC_JPEG, &ybr));
    CHECK(r3d_codec_outputs_rgb(R3D_CODEC_J2K, &ybr));
    CHECK(!r3d_codec_outputs_rgb(R3D_CODEC_RLE, &ybr));
    CHECK(!r3d_codec_outputs_rgb(R3D_CODEC_JPEGLS, &ybr));
}

static void test_codec_decode_rejects_native_and_unknown_with_message(void)
{
    uint8_t in[8] = {0}, out[16];
    r3d_codec_frame fr = frame_of(4, 4, 1, 8, 8, 0, "MONOCHROME2");
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d_codec_decode(R3D_CODEC_UNKNOWN, in, 8, &fr, out, 16, "u.dcm", &err),
              R3D_EUNSUPPORTED);
    CHECK_CONTAINS(err.msg, "u.dcm");
    CHECK_INT(r3d_codec_decode(R3D_CODEC_NONE, in, 8, &fr, out, 16, "n.dcm", &err), R3D_EARG);
    /* an output buffer one byte short */
    CHECK_INT(r3d_codec_decode(R3D_CODEC_RLE, in, 8, &fr, out, 15, "s.dcm frame 2", &err),
              R3D_EARG);
    CHECK_CONTAINS(err.msg, "s.dcm frame 2");
    CHECK_CONTAINS(err.msg, "needs 16");
}

/* ======================================================================== */
/* Test images and a growing byte buffer                                    */
/* ======================================================================== */

typedef struct bytes {
    uint8_t *p;
    size_t n, cap, pos;
} bytes;

static void put(bytes *b, const void *src, size_t n)
{
    if (b->pos + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->pos + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        memset(b->p + b->cap, 0, cap - b->cap);
        b->cap = cap;
    }
    memcpy(b->p + b->pos, src, n);
    b->pos += n;
    if (b->pos > b->n)
        b->n = b->pos;
}

static void put8(bytes *b, unsigned v)
{
    uint8_t c = (uint8_t)v;
    put(b, &c, 1);
}

static void put16be(bytes *b, unsigned v)
{
    put8(b, v >> 8);
    put8(b, v & 255);
}

/* A smooth image with edges, noise and flat runs, values in [0, 2^bits). */
static uint32_t *test_image(int w, int h, int samples, int bits, uint32_t seed)
{
    uint32_t *img = malloc((size_t)w * h * samples * sizeof *img);
    const uint32_t maxv = bits >= 32 ? 0xFFFFFFFFu : (1u << bits) - 1u;
    rng_state = seed;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < samples; c++) {
                double v = 0.5 + 0.35 * sin(x * 0.11 + c) * cos(y * 0.07);
                if (x > w / 2 && y < h / 3)
                    v = 0.9; /* flat block: long runs */
                if ((x / 8 + y / 8) % 5 == 0)
                    v += 0.05 * ((rng() % 1000) / 1000.0 - 0.5); /* noisy patches */
                if (v < 0)
                    v = 0;
                if (v > 1)
                    v = 1;
                img[((size_t)y * w + x) * samples + c] = (uint32_t)(v * maxv);
            }
    return img;
}

static void store(uint8_t *buf, size_t i, int bytes_per, uint32_t v)
{
    if (bytes_per == 1)
        buf[i] = (uint8_t)v;
    else if (bytes_per == 2) {
        uint16_t w = (uint16_t)v;
        memcpy(buf + 2 * i, &w, 2);
    } else
        memcpy(buf + 4 * i, &v, 4);
}

/* Largest |decoded - expected| over n values of the given width. */
static uint32_t max_abs_diff(const uint8_t *out, const uint32_t *ref, size_t n, int bytes_per)
{
    uint32_t m = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = get_raw(out, i, bytes_per);
        uint32_t d = v > ref[i] ? v - ref[i] : ref[i] - v;
        if (d > m)
            m = d;
    }
    return m;
}

/* Every truncation point in a spread plus byte flips: the decoder must
 * return (any status) without touching memory it does not own; ASan and
 * UBSan builds turn a stray access into a failure. Returns how many
 * mutants decoded successfully (a few can, e.g. flips in padding). */
static int hostile_variants_do_not_crash(r3d_codec_kind k, const uint8_t *in, size_t n,
                                         const r3d_codec_frame *fr, size_t out_size)
{
    uint8_t *m = malloc(n + 1), *out = malloc(out_size);
    int ok = 0;
    uint32_t seed = 99;
    for (int t = 0; t < 24; t++) {
        size_t cut = n * (size_t)t / 24;
        memcpy(m, in, cut);
        r3d_error err = R3D_ERROR_INIT;
        r3d_status st = r3d_codec_decode(k, m, cut, fr, out, out_size, "cut", &err);
        if (st == R3D_OK)
            ok++;
        else if (!err.msg[0] || !strstr(err.msg, "cut")) {
            fprintf(stderr, "  status %s with message \"%s\" after truncation to %zu\n",
                    r3d_status_name(st), err.msg, cut);
            check_failures_in_test++;
        }
    }
    for (int t = 0; t < 48; t++) {
        memcpy(m, in, n);
        for (int j = 0; j < 3; j++) {
            seed = seed * 1664525u + 1013904223u;
            m[(seed >> 8) % n] ^= (uint8_t)(1u << (seed >> 29));
        }
        r3d_error err = R3D_ERROR_INIT;
        if (r3d_codec_decode(k, m, n, fr, out, out_size, "flip", &err) == R3D_OK)
            ok++;
    }
    free(m);
    free(out);
    return ok;
}

/* ======================================================================== */
/* RLE                                                                      */
/* ======================================================================== */

/* PackBits as DICOM PS3.5 G.3.1 describes: replicate runs of 3..128,
 * literals of up to 128 otherwise. */
static void packbits(bytes *b, const uint8_t *src, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t run = 1;
        while (i + run < n && run < 128 && src[i + run] == src[i])
            run++;
        if (run >= 3) {
            put8(b, (unsigned)(257 - run)); /* -(run-1) as a byte */
            put8(b, src[i]);
            i += run;
            continue;
        }
        size_t lit = 0;
        while (i + lit < n && lit < 128) {
            if (i + lit + 2 < n && src[i + lit] == src[i + lit + 1] &&
                src[i + lit] == src[i + lit + 2])
                break;
            lit++;
        }
        put8(b, (unsigned)(lit - 1));
        put(b, src + i, lit);
        i += lit;
    }
}

/* Annex G frame: header, then one segment per byte plane (MSB first). The
 * odd-length segments get the pad byte real encoders add. */
static bytes rle_encode(const uint32_t *img, int w, int h, int samples, int bits_alloc)
{
    bytes b = {0};
    const int nbytes = bits_alloc / 8, nseg = samples * nbytes;
    const size_t np = (size_t)w * h;
    uint32_t hdr[16] = {(uint32_t)nseg};
    put(&b, hdr, 64);
    uint8_t *plane = malloc(np);
    for (int s = 0; s < nseg; s++) {
        int sample = s / nbytes, shift = 8 * (nbytes - 1 - s % nbytes);
        for (size_t p = 0; p < np; p++)
            plane[p] = (uint8_t)(img[p * samples + sample] >> shift);
        hdr[1 + s] = (uint32_t)b.pos;
        packbits(&b, plane, np);
        if (b.pos & 1)
            put8(&b, 0x80); /* no-op control byte as padding */
    }
    free(plane);
    memcpy(b.p, hdr, 64); /* host is little-endian in every build we run */
    return b;
}

static void test_rle_roundtrip_8_16_32_bit_grey_and_rgb_bitexact(void)
{
    const int cfg[][3] = {{1, 8, 8}, {1, 16, 12}, {1, 16, 16}, {3, 8, 8}, {3, 16, 16}, {1, 32, 32},
                          {3, 32, 32}};
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        const int samples = cfg[c][0], ba = cfg[c][1], bs = cfg[c][2], w = 67, h = 41;
        uint32_t *img = test_image(w, h, samples, bs, (uint32_t)c + 1);
        bytes enc = rle_encode(img, w, h, samples, ba);
        r3d_codec_frame fr = frame_of(h, w, samples, ba, bs, 0, samples == 3 ? "RGB" : "MONOCHROME2");
        const int bp = ba / 8;
        const size_t n = (size_t)w * h * samples;
        uint8_t *out = malloc(n * bp);
        r3d_error err = R3D_ERROR_INIT;
        CHECK_INT(r3d_decode_rle(enc.p, enc.n, &fr, out, n * bp, "rle", &err), R3D_OK);
        CHECK_INT(max_abs_diff(out, img, n, bp), 0);
        hostile_variants_do_not_crash(R3D_CODEC_RLE, enc.p, enc.n, &fr, n * bp);
        free(out);
        free(enc.p);
        free(img);
    }
}

static void test_rle_1bit_frame_unpacks_lsb_first(void)
{
    /* 3x5 = 15 pixels -> 2 packed bytes, least significant bit first */
    const uint8_t packed[2] = {0xA5, 0x3C};
    bytes b = {0};
    uint32_t hdr[16] = {1, 64};
    put(&b, hdr, 64);
    packbits(&b, packed, 2);
    r3d_codec_frame fr = frame_of(3, 5, 1, 1, 1, 0, "MONOCHROME2");
    uint8_t out[15];
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d_decode_rle(b.p, b.n, &fr, out, sizeof out, "seg", &err), R3D_OK);
    for (int i = 0; i < 15; i++)
        CHECK_INT(out[i], (packed[i / 8] >> (i % 8)) & 1);
    free(b.p);
}

static void test_rle_broken_headers_and_short_segments_are_eformat_with_reason(void)
{
    const int w = 16, h = 8;
    uint32_t *img = test_image(w, h, 1, 16, 7);
    bytes enc = rle_encode(img, w, h, 1, 16);
    r3d_codec_frame fr = frame_of(h, w, 1, 16, 16, 0, "MONOCHROME2");
    uint8_t out[16 * 8 * 2];
    r3d_error err = R3D_ERROR_INIT;

    /* header alone */
    CHECK_INT(r3d_decode_rle(enc.p, 40, &fr, out, sizeof out, "a.dcm frame 1", &err),
              R3D_EFORMAT);
    CHECK_CONTAINS(err.msg, "a.dcm frame 1: RLE frame has 40 bytes");
    /* the frame claims 8-bit data: 1 segment for a 16-bit frame */
    uint8_t *m = malloc(enc.n);
    memcpy(m, enc.p, enc.n);
    m[0] = 1;
    CHECK_INT(r3d_decode_rle(m, enc.n, &fr, out, sizeof out, "b", &err), R3D_EFORMAT);
    CHECK_CONTAINS(err.msg, "has 1 segments but 1 samples of 16 bits need 2");
    /* 16 segments */
    m[0] = 16;
    CHECK_INT(r3d_decode_rle(m, enc.n, &fr, out, sizeof out, "c", &err), R3D_EFORMAT);
    /* segment 2 starts past the end */
    memcpy(m, enc.p, enc.n);
    m[8] = 0xFF;
    m[9] = 0xFF;
    CHECK_INT(r3d_decode_rle(m, enc.n, &fr, out, sizeof out, "d", &err), R3D_EFORMAT);
    CHECK_CONTAINS(err.msg, "segment 2 starts at byte");
    /* cut inside the last segment */
    CHECK_INT(r3d_decode_rle(enc.p, enc.n - 20, &fr, out, sizeof out, "e", &err), R3D_EFORMAT);
    CHECK_CONTAINS(err.msg, "segment 2 decodes to");
    /* 24-bit is not an RLE layout DICOM defines */
    r3d_codec_frame f24 = frame_of(h, w, 1, 24, 24, 0, "MONOCHROME2");
    uint8_t big[16 * 8 * 4];
    CHECK_INT(r3d_decode_rle(enc.p, enc.n, &f24, big, sizeof big, "f", &err), R3D_EUNSUPPORTED);
    free(m);
    free(enc.p);
    free(img);
}

/* ======================================================================== */
/* JPEG lossless (process 14) through an encoder written here               */
/* ======================================================================== */

typedef struct bitw {
    bytes *b;
    uint32_t acc;
    int n;
} bitw;

static void bw_put(bitw *w, uint32_t v, int nbits)
{
    for (int i = nbits - 1; i >= 0; i--) {
        w->acc = (w->acc << 1) | ((v >> i) & 1u);
        if (++w->n == 8) {
            put8(w->b, w->acc & 255);
            if ((w->acc & 255) == 0xFF)
                put8(w->b, 0x00); /* T.81 F.1.2.3 byte stuffing */
            w->acc = 0;
            w->n = 0;
        }
    }
}

static void bw_flush(bitw *w)
{
    while (w->n)
        bw_put(w, 1, 1); /* pad with 1-bits */
}

typedef struct ll_opts {
    int pred, pt, restart, separate_scans, ssss16_extra_bits;
} ll_opts;

/* SOF3 stream of img (nc interleaved components, P bits). Huffman table:
 * the 17 categories as 5-bit codes 0..16. */
static bytes ljpeg_encode(const uint32_t *img, int w, int h, int nc, int P, ll_opts o)
{
    bytes b = {0};
    put16be(&b, 0xFFD8);
    put16be(&b, 0xFFC4);
    put16be(&b, 2 + 1 + 16 + 17);
    put8(&b, 0x00);
    for (int l = 1; l <= 16; l++)
        put8(&b, l == 5 ? 17 : 0);
    for (int v = 0; v <= 16; v++)
        put8(&b, (unsigned)v);
    put16be(&b, 0xFFC3);
    put16be(&b, 8 + 3 * nc);
    put8(&b, (unsigned)P);
    put16be(&b, (unsigned)h);
    put16be(&b, (unsigned)w);
    put8(&b, (unsigned)nc);
    for (int c = 0; c < nc; c++) {
        put8(&b, (unsigned)c + 1);
        put8(&b, 0x11);
        put8(&b, 0);
    }
    if (o.restart) {
        put16be(&b, 0xFFDD);
        put16be(&b, 4);
        put16be(&b, (unsigned)o.restart);
    }
    const size_t W = (size_t)w;
    uint32_t *rec = malloc(W * h * nc * sizeof *rec);
    for (size_t i = 0; i < W * h * nc; i++)
        rec[i] = img[i] >> o.pt;
    const int n_scans = o.separate_scans ? nc : 1;
    for (int sc = 0; sc < n_scans; sc++) {
        const int ns = o.separate_scans ? 1 : nc;
        put16be(&b, 0xFFDA);
        put16be(&b, 6 + 2 * ns);
        put8(&b, (unsigned)ns);
        for (int i = 0; i < ns; i++) {
            put8(&b, (unsigned)(o.separate_scans ? sc : i) + 1);
            put8(&b, 0x00);
        }
        put8(&b, (unsigned)o.pred);
        put8(&b, 0);
        put8(&b, (unsigned)o.pt);
        bitw bw = {&b, 0, 0};
        long mcu = 0;
        int rst = 0, iy = 0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++, mcu++) {
                if (o.restart && mcu > 0 && mcu % o.restart == 0) {
                    bw_flush(&bw);
                    put16be(&b, 0xFFD0 + rst);
                    rst = (rst + 1) & 7;
                    iy = y; /* intervals here always start a row */
                }
                for (int i = 0; i < ns; i++) {
                    int c = o.separate_scans ? sc : i;
                    const uint32_t *R = rec + c;
#define AT(yy, xx) ((int32_t)R[((size_t)(yy) * W + (size_t)(xx)) * (size_t)nc])
                    int32_t pred;
                    if (y == iy && x == 0)
                        pred = 1 << (P - o.pt - 1);
                    else if (y == iy)
                        pred = AT(y, x - 1);
                    else if (x == 0)
                        pred = AT(y - 1, 0);
                    else {
                        int32_t ra = AT(y, x - 1), rb = AT(y - 1, x), rc = AT(y - 1, x - 1);
                        switch (o.pred) {
                        case 1: pred = ra; break;
                        case 2: pred = rb; break;
                        case 3: pred = rc; break;
                        case 4: pred = ra + rb - rc; break;
                        case 5: pred = ra + ((rb - rc) >> 1); break;
                        case 6: pred = rb + ((ra - rc) >> 1); break;
                        default: pred = (ra + rb) >> 1; break;
                        }
                    }
                    int32_t d = (int32_t)(((uint32_t)AT(y, x) - (uint32_t)pred) & 0xFFFFu);
#undef AT
                    if (d >= 32768)
                        d -= 65536;
                    if (d == -32768) {
                        bw_put(&bw, 16, 5);
                        if (o.ssss16_extra_bits)
                            bw_put(&bw, 0, 16);
                        continue;
                    }
                    int ssss = 0;
                    for (uint32_t a = (uint32_t)(d < 0 ? -d : d); a; a >>= 1)
                        ssss++;
                    bw_put(&bw, (uint32_t)ssss, 5);
                    if (ssss)
                        bw_put(&bw, (uint32_t)(d > 0 ? d : d - 1) & ((1u << ssss) - 1u), ssss);
                }
            }
        bw_flush(&bw);
    }
    put16be(&b, 0xFFD9);
    free(rec);
    return b;
}

static void test_jpeg_lossless_every_predictor_bits_pt_restart_bitexact(void)
{
    const int cfg[][3] = {{1, 8, 8}, {1, 12, 16}, {1, 16, 16}, {3, 8, 8}, {1, 2, 8}};
    int cases = 0;
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        const int nc = cfg[c][0], P = cfg[c][1], ba = cfg[c][2], w = 37, h = 23;
        uint32_t *img = test_image(w, h, nc, P, (uint32_t)c + 11);
        if (P == 16) {
            img[1] = img[0] ^ 0x8000u; /* a difference of exactly 32768: SSSS=16 */
            img[w * 5 + 9] ^= 0x8000u;
        }
        const int bp = ba / 8;
        const size_t n = (size_t)w * h * nc;
        uint8_t *out = malloc(n * bp);
        r3d_codec_frame fr = frame_of(h, w, nc, ba, P, 0, nc == 3 ? "RGB" : "MONOCHROME2");
        for (int pred = 1; pred <= 7; pred++)
            for (int variant = 0; variant < 4; variant++) {
                ll_opts o = {pred, variant == 1 && P > 4 ? 2 : 0, variant == 2 ? w * 3 : 0,
                             variant == 3 && nc == 3, 0};
                bytes enc = ljpeg_encode(img, w, h, nc, P, o);
                uint32_t *ref = malloc(n * sizeof *ref);
                for (size_t i = 0; i < n; i++)
                    ref[i] = (img[i] >> o.pt) << o.pt;
                r3d_error err = R3D_ERROR_INIT;
                r3d_status st = r3d_decode_jpeg(enc.p, enc.n, &fr, out, n * bp, "ll", &err);
                if (st != R3D_OK)
                    fprintf(stderr, "  P=%d nc=%d pred %d variant %d: %s\n", P, nc, pred,
                            variant, err.msg);
                CHECK_INT(st, R3D_OK);
                uint32_t md = max_abs_diff(out, ref, n, bp);
                if (md)
                    fprintf(stderr, "  P=%d nc=%d pred %d variant %d: max diff %u\n", P, nc,
                            pred, variant, md);
                CHECK_INT(md, 0);
                cases++;
                free(ref);
                free(enc.p);
            }
        free(out);
        free(img);
    }
    CHECK_INT(cases, 5 * 7 * 4);
}

static void test_jpeg_lossless_ssss16_with_extra_bits_quirk_still_decodes(void)
{
    const int w = 32, h = 16;
    uint32_t *img = test_image(w, h, 1, 16, 5);
    for (int i = 1; i < w * h; i += 7)
        img[i] = img[i - 1] ^ 0x8000u; /* many SSSS=16 differences */
    ll_opts o = {1, 0, 0, 0, 1};
    bytes enc = ljpeg_encode(img, w, h, 1, 16, o);
    r3d_codec_frame fr = frame_of(h, w, 1, 16, 16, 0, "MONOCHROME2");
    uint8_t out[32 * 16 * 2];
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d_decode_jpeg(enc.p, enc.n, &fr, out, sizeof out, "q", &err), R3D_OK);
    CHECK_INT(max_abs_diff(out, img, (size_t)w * h, 2), 0);
    CHECK_INT(err.code, R3D_OK); /* the failed standard attempt leaves no trace */
    free(enc.p);
    free(img);
}

static void test_jpeg_lossless_hostile_streams_fail_cleanly(void)
{
    const int w = 40, h = 30;
    uint32_t *img = test_image(w, h, 3, 12, 9);
    ll_opts o = {4, 0, w * 2, 0, 0};
    bytes enc = ljpeg_encode(img, w, h, 3, 12, o);
    r3d_codec_frame fr = frame_of(h, w, 3, 16, 12, 0, "RGB");
    const size_t sz = (size_t)w * h * 3 * 2;
    uint8_t *out = malloc(sz);
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d_decode_jpeg(enc.p, enc.n, &fr, out, sz, "ok", &err), R3D_OK);
    CHECK_INT(max_abs_diff(out, img, (size_t)w * h * 3, 2), 0);
    hostile_variants_do_not_crash(R3D_CODEC_JPEG, enc.p, enc.n, &fr, sz);
    /* the header says 41 columns */
    r3d_codec_frame wide = frame_of(h, w + 1, 3, 16, 12, 0, "RGB");
    uint8_t *big = malloc((size_t)(w + 1) * h * 3 * 2);
    CHECK_INT(r3d_decode_jpeg(enc.p, enc.n, &wide, big, (size_t)(w + 1) * h * 6, "x.dcm frame 3",
                              &err), R3D_EFORMAT);
    CHECK_CONTAINS(err.msg, "x.dcm frame 3: JPEG lossless stream is 40x30 but the header says 41x30");
    /* 12-bit samples do not fit BitsAllocated 8 */
    r3d_codec_frame narrow = frame_of(h, w, 3, 8, 8, 0, "RGB");
    CHECK_INT(r3d_decode_jpeg(enc.p, enc.n, &narrow, out, sz, "n", &err), R3D_EFORMAT);
    CHECK_CONTAINS(err.msg, "12-bit samples");
    /* truncated: the data ends in the middle of the scan */
    CHECK_INT(r3d_decode_jpeg(enc.p, enc.n / 2, &fr, out, sz, "t", &err), R3D_EFORMAT);
    CHECK_CONTAINS(err.msg, "t: ");
    free(big);
    free(out);
    free(enc.p);
    free(img);
}

/* ======================================================================== */
/* JPEG 8-bit DCT: libjpeg-turbo encoder, both decoders                     */
/* ======================================================================== */

typedef struct lj_opts {
    int nc, quality, hs, vs, restart, progressive, rgb_no_transform, w, h;
} lj_opts;

static bytes libjpeg_encode(const uint32_t *img, lj_opts o)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    unsigned char *mem = NULL;
    unsigned long memsize = 0;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &mem, &memsize);
    c.image_width = (JDIMENSION)o.w;
    c.image_height = (JDIMENSION)o.h;
    c.input_components = o.nc;
    c.in_color_space = o.nc == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, o.quality, TRUE);
    if (o.nc == 3 && o.rgb_no_transform)
        jpeg_set_colorspace(&c, JCS_RGB);
    if (o.nc == 3) {
        c.comp_info[0].h_samp_factor = o.hs;
        c.comp_info[0].v_samp_factor = o.vs;
    }
    c.restart_interval = (unsigned)o.restart;
    if (o.progressive)
        jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    uint8_t *row = malloc((size_t)o.w * o.nc);
    while (c.next_scanline < c.image_height) {
        for (int i = 0; i < o.w * o.nc; i++)
            row[i] = (uint8_t)img[(size_t)c.next_scanline * o.w * o.nc + i];
        JSAMPROW rp = row;
        jpeg_write_scanlines(&c, &rp, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    bytes b = {0};
    put(&b, mem, memsize);
    free(mem);
    return b;
}

static void test_jpeg_8bit_own_dct_decoder_matches_libjpeg_within_1(void)
{
    const lj_opts cfg[] = {
        {1, 90, 1, 1, 0, 0, 0, 61, 45},   {1, 75, 1, 1, 5, 0, 0, 64, 64},
        {1, 90, 1, 1, 0, 1, 0, 50, 33},   {3, 90, 1, 1, 0, 0, 0, 61, 45},
        {3, 85, 2, 1, 0, 0, 0, 61, 45},   {3, 85, 2, 2, 0, 0, 0, 61, 45},
        {3, 85, 1, 2, 0, 0, 0, 40, 31},   {3, 90, 2, 2, 3, 0, 0, 77, 53},
        {3, 90, 2, 2, 0, 1, 0, 77, 53},   {3, 95, 1, 1, 0, 0, 1, 33, 20},
        {3, 80, 2, 2, 0, 1, 0, 2, 2},     {3, 80, 2, 1, 0, 0, 0, 3, 9},
    };
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        const lj_opts o = cfg[i];
        uint32_t *img = test_image(o.w, o.h, o.nc, 8, (uint32_t)i + 40);
        bytes enc = libjpeg_encode(img, o);
        r3d_codec_frame fr = frame_of(o.h, o.w, o.nc, 8, 8, 0, o.nc == 3 ? "RGB" : "MONOCHROME2");
        const size_t n = (size_t)o.w * o.h * o.nc;
        uint8_t *a = malloc(n), *b = malloc(n);
        r3d_error err = R3D_ERROR_INIT;
        CHECK_INT(r3d_decode_jpeg(enc.p, enc.n, &fr, a, n, "lib", &err), R3D_OK);
        r3d_status st = r3d__jpeg_dct_decode(enc.p, enc.n, &fr, b, n, "own", &err);
        if (st != R3D_OK)
            fprintf(stderr, "  case %zu: %s\n", i, err.msg);
        CHECK_INT(st, R3D_OK);
        int maxd = 0, vs_src = 0;
        for (size_t k = 0; k < n; k++) {
            int d = abs((int)a[k] - (int)b[k]), e = abs((int)a[k] - (int)img[k]);
            if (d > maxd)
                maxd = d;
            if (e > vs_src)
                vs_src = e;
        }
        if (maxd > 0 || i == 0)
            fprintf(stderr, "  case %zu (%d comp, %dx%d sampling%s%s): own vs libjpeg max %d, "
                    "libjpeg vs source max %d\n", i, o.nc, o.hs, o.vs,
                    o.progressive ? ", progressive" : "", o.restart ? ", restarts" : "", maxd,
                    vs_src);
        CHECK(maxd <= 1);
        CHECK(vs_src <= 64);
        hostile_variants_do_not_crash(R3D_CODEC_JPEG, enc.p, enc.n, &fr, n);
        /* our decoder alone on the same hostile inputs (libjpeg is lenient
         * and would answer most of them first) */
        uint8_t *m = malloc(enc.n);
        for (size_t cut = 0; cut < enc.n; cut += enc.n / 13 + 1) {
            memcpy(m, enc.p, cut);
            r3d__jpeg_dct_decode(m, cut, &fr, b, n, "cut", NULL);
        }
        free(m);
        free(a);
        free(b);
        free(enc.p);
        free(img);
    }
}

static void test_jpeg_header_mismatch_names_file_and_sizes(void)
{
    lj_opts o = {1, 90, 1, 1, 0, 0, 0, 64, 48};
    uint32_t *img = test_image(o.w, o.h, 1, 8, 3);
    bytes enc = libjpeg_encode(img, o);
    r3d_codec_frame fr = frame_of(48, 32, 1, 8, 8, 0, "MONOCHROME2");
    uint8_t out[64 * 48 * 3];
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d_decode_jpeg(enc.p, enc.n, &fr, out, sizeof out, "x.dcm frame 3", &err),
              R3D_EFORMAT);
    CHECK_CONTAINS(err.msg, "x.dcm frame 3: JPEG stream is 64x48 but the header says 32x48");
    r3d_codec_frame rgb = frame_of(48, 64, 3, 8, 8, 0, "RGB");
    CHECK_INT(r3d_decode_jpeg(enc.p, enc.n, &rgb, out, sizeof out, "y", &err), R3D_EFORMAT);
    CHECK_CONTAINS(err.msg, "1 components but the header says 3 samples");
    CHECK_INT(r3d__jpeg_dct_decode(enc.p, enc.n, &rgb, out, sizeof out, "z", &err), R3D_EFORMAT);
    CHECK_CONTAINS(err.msg, "1 components but the header says 3 samples");
    /* not JPEG at all */
    CHECK_INT(r3d_decode_jpeg((const uint8_t *)"hello world", 11, &fr, out, sizeof out, "w",
                              &err), R3D_EFORMAT);
    CHECK_CONTAINS(err.msg, "no SOI");
    /* a hierarchical frame header (SOF5) is refused by name */
    uint8_t *m = malloc(enc.n);
    memcpy(m, enc.p, enc.n);
    for (size_t i = 0; i + 1 < enc.n; i++)
        if (m[i] == 0xFF && m[i + 1] == 0xC0) {
            m[i + 1] = 0xC5;
            break;
        }
    CHECK_INT(r3d_decode_jpeg(m, enc.n, &fr, out, sizeof out, "h", &err), R3D_EUNSUPPORTED);
    CHECK_CONTAINS(err.msg, "hierarchical");
    free(m);
    free(enc.p);
    free(img);
}

/* ======================================================================== */
/* JPEG-LS through CharLS's encoder                                          */
/* ======================================================================== */

static bytes charls_encode(const uint32_t *img, int w, int h, int nc, int bits, int ilv,
                           int near)
{
    bytes b = {0};
    const int bp = bits <= 8 ? 1 : 2;
    const size_t np = (size_t)w * h;
    uint8_t *src = malloc(np * nc * bp);
    for (size_t p = 0; p < np; p++)
        for (int c = 0; c < nc; c++) {
            /* CharLS wants planes for ILV none, pixels otherwise */
            size_t i = ilv == 0 ? (size_t)c * np + p : p * nc + c;
            store(src, i, bp, img[p * nc + c]);
        }
    charls_jpegls_encoder *enc = charls_jpegls_encoder_create();
    charls_frame_info fi = {(uint32_t)w, (uint32_t)h, bits, nc};
    size_t cap = 0, written = 0;
    if (charls_jpegls_encoder_set_frame_info(enc, &fi) ||
        charls_jpegls_encoder_set_interleave_mode(enc, (charls_interleave_mode)ilv) ||
        charls_jpegls_encoder_set_near_lossless(enc, near) ||
        charls_jpegls_encoder_get_estimated_destination_size(enc, &cap))
        goto out;
    b.p = malloc(cap);
    b.cap = cap;
    if (charls_jpegls_encoder_set_destination_buffer(enc, b.p, cap) ||
        charls_jpegls_encoder_encode_from_buffer(enc, src, np * nc * bp, 0) ||
        charls_jpegls_encoder_get_bytes_written(enc, &written))
        goto out;
    b.n = b.pos = written;
out:
    charls_jpegls_encoder_destroy(enc);
    free(src);
    return b;
}

static void test_jpegls_charls_roundtrip_8_12_16_bit_every_interleave(void)
{
    const int cfg[][5] = {/* nc, bits, bits_alloc, ilv, near */
                          {1, 8, 8, 0, 0},  {1, 12, 16, 0, 0}, {1, 16, 16, 0, 0},
                          {3, 8, 8, 0, 0},  {3, 8, 8, 1, 0},   {3, 8, 8, 2, 0},
                          {3, 12, 16, 1, 0}, {1, 12, 16, 0, 3}, {3, 8, 8, 2, 2},
                          {1, 8, 16, 0, 0}};
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        const int nc = cfg[i][0], bits = cfg[i][1], ba = cfg[i][2], ilv = cfg[i][3];
        const int near = cfg[i][4], w = 53, h = 29;
        uint32_t *img = test_image(w, h, nc, bits, (uint32_t)i + 70);
        bytes enc = charls_encode(img, w, h, nc, bits, ilv, near);
        CHECK(enc.n > 0);
        r3d_codec_frame fr = frame_of(h, w, nc, ba, bits, 0, nc == 3 ? "RGB" : "MONOCHROME2");
        const int bp = ba / 8;
        const size_t n = (size_t)w * h * nc;
        uint8_t *out = malloc(n * bp);
        r3d_error err = R3D_ERROR_INIT;
        r3d_status st = r3d_decode_jpegls(enc.p, enc.n, &fr, out, n * bp, "jls", &err);
        if (st != R3D_OK)
            fprintf(stderr, "  case %zu: %s\n", i, err.msg);
        CHECK_INT(st, R3D_OK);
        CHECK(max_abs_diff(out, img, n, bp) <= (uint32_t)near);
        hostile_variants_do_not_crash(R3D_CODEC_JPEGLS, enc.p, enc.n, &fr, n * bp);
        free(out);
        free(enc.p);
        free(img);
    }
}

static void test_jpegls_header_mismatch_names_file_and_sizes(void)
{
    uint32_t *img = test_image(256, 256, 1, 12, 1);
    bytes enc = charls_encode(img, 256, 256, 1, 12, 0, 0);
    r3d_codec_frame fr = frame_of(512, 512, 1, 16, 12, 0, "MONOCHROME2");
    uint8_t *out = malloc(512 * 512 * 2);
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d_decode_jpegls(enc.p, enc.n, &fr, out, 512 * 512 * 2, "x.dcm frame 3", &err),
              R3D_EFORMAT);
    CHECK_CONTAINS(err.msg, "x.dcm frame 3: JPEG-LS stream is 256x256 but the header says 512x512");
    r3d_codec_frame f8 = frame_of(256, 256, 1, 8, 8, 0, "MONOCHROME2");
    CHECK_INT(r3d_decode_jpegls(enc.p, enc.n, &f8, out, 256 * 256, "y", &err), R3D_EFORMAT);
    CHECK_CONTAINS(err.msg, "12-bit samples");
    /* a JPEG-LS stream under a JPEG transfer syntax is still decoded */
    r3d_codec_frame ok = frame_of(256, 256, 1, 16, 12, 0, "MONOCHROME2");
    CHECK_INT(r3d_decode_jpeg(enc.p, enc.n, &ok, out, 256 * 256 * 2, "z", &err), R3D_OK);
    CHECK_INT(max_abs_diff(out, img, 256 * 256, 2), 0);
    free(out);
    free(enc.p);
    free(img);
}

/* ======================================================================== */
/* JPEG 2000 through OpenJPEG's encoder                                      */
/* ======================================================================== */

static OPJ_SIZE_T opj_w(void *buf, OPJ_SIZE_T n, void *user)
{
    put(user, buf, n);
    return n;
}

static OPJ_OFF_T opj_sk(OPJ_OFF_T n, void *user)
{
    bytes *b = user;
    b->pos += (size_t)n;
    return n;
}

static OPJ_BOOL opj_se(OPJ_OFF_T n, void *user)
{
    ((bytes *)user)->pos = (size_t)n;
    return OPJ_TRUE;
}

static void opj_quiet(const char *m, void *u)
{
    (void)m;
    (void)u;
}

/* values: signed when sgnd (stored as int32 bit patterns in img) */
static bytes openjpeg_encode(const uint32_t *img, int w, int h, int nc, int prec, int sgnd,
                             int lossy, int jp2)
{
    opj_cparameters_t p;
    opj_set_default_encoder_parameters(&p);
    p.tcp_mct = nc == 3 ? 1 : 0;
    p.numresolution = 4;
    if (lossy) {
        p.irreversible = 1;
        p.tcp_numlayers = 1;
        p.tcp_rates[0] = 8;
        p.cp_disto_alloc = 1;
    }
    opj_image_cmptparm_t cp[3];
    memset(cp, 0, sizeof cp);
    for (int c = 0; c < nc; c++) {
        cp[c].dx = cp[c].dy = 1;
        cp[c].w = (OPJ_UINT32)w;
        cp[c].h = (OPJ_UINT32)h;
        cp[c].prec = (OPJ_UINT32)prec;
        cp[c].sgnd = (OPJ_UINT32)sgnd;
    }
    opj_image_t *im = opj_image_create((OPJ_UINT32)nc, cp, nc == 3 ? OPJ_CLRSPC_SRGB : OPJ_CLRSPC_GRAY);
    im->x0 = im->y0 = 0;
    im->x1 = (OPJ_UINT32)w;
    im->y1 = (OPJ_UINT32)h;
    for (int c = 0; c < nc; c++)
        for (size_t i = 0; i < (size_t)w * h; i++)
            im->comps[c].data[i] = (OPJ_INT32)img[i * nc + c];
    opj_codec_t *codec = opj_create_compress(jp2 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K);
    opj_set_info_handler(codec, opj_quiet, NULL);
    opj_set_warning_handler(codec, opj_quiet, NULL);
    opj_set_error_handler(codec, opj_quiet, NULL);
    bytes b = {0};
    opj_stream_t *st = opj_stream_create(65536, OPJ_FALSE);
    opj_stream_set_user_data(st, &b, NULL);
    opj_stream_set_write_function(st, opj_w);
    opj_stream_set_skip_function(st, opj_sk);
    opj_stream_set_seek_function(st, opj_se);
    if (!opj_setup_encoder(codec, &p, im) || !opj_start_compress(codec, im, st) ||
        !opj_encode(codec, st) || !opj_end_compress(codec, st)) {
        free(b.p);
        memset(&b, 0, sizeof b);
    }
    opj_stream_destroy(st);
    opj_destroy_codec(codec);
    opj_image_destroy(im);
    return b;
}

static void test_j2k_openjpeg_roundtrip_lossless_16bit_signed_and_rgb_bitexact(void)
{
    const int w = 45, h = 38;
    /* 16-bit signed CT-like values: -1024..3071 as two's complement */
    uint32_t *img = test_image(w, h, 1, 12, 21);
    for (size_t i = 0; i < (size_t)w * h; i++)
        img[i] = (uint32_t)((int32_t)img[i] - 1024);
    bytes enc = openjpeg_encode(img, w, h, 1, 16, 1, 0, 0);
    CHECK(enc.n > 0);
    r3d_codec_frame fr = frame_of(h, w, 1, 16, 16, 1, "MONOCHROME2");
    uint8_t *out = malloc((size_t)w * h * 3 * 2);
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d_decode_j2k(enc.p, enc.n, &fr, out, (size_t)w * h * 2, "j2k", &err), R3D_OK);
    uint32_t *ref16 = malloc((size_t)w * h * 3 * sizeof *ref16);
    for (size_t i = 0; i < (size_t)w * h; i++)
        ref16[i] = img[i] & 0xFFFFu;
    CHECK_INT(max_abs_diff(out, ref16, (size_t)w * h, 2), 0);
    hostile_variants_do_not_crash(R3D_CODEC_J2K, enc.p, enc.n, &fr, (size_t)w * h * 2);
    free(enc.p);

    /* the same in a JP2 box file */
    enc = openjpeg_encode(img, w, h, 1, 16, 1, 0, 1);
    CHECK(enc.n > 12 && enc.p[4] == 'j');
    CHECK_INT(r3d_decode_j2k(enc.p, enc.n, &fr, out, (size_t)w * h * 2, "jp2", &err), R3D_OK);
    CHECK_INT(max_abs_diff(out, ref16, (size_t)w * h, 2), 0);
    free(enc.p);

    /* unsigned 12-bit codestream, header says signed 12-bit: sign-extended
     * from the codestream's precision, so the caller's extension agrees */
    uint32_t *u12 = test_image(w, h, 1, 12, 22);
    enc = openjpeg_encode(u12, w, h, 1, 12, 0, 0, 0);
    r3d_codec_frame fs = frame_of(h, w, 1, 16, 12, 1, "MONOCHROME2");
    CHECK_INT(r3d_decode_j2k(enc.p, enc.n, &fs, out, (size_t)w * h * 2, "mismatch", &err), R3D_OK);
    int bad = 0;
    for (size_t i = 0; i < (size_t)w * h; i++) {
        int16_t v;
        memcpy(&v, out + 2 * i, 2);
        int32_t want = u12[i] >= 2048 ? (int32_t)u12[i] - 4096 : (int32_t)u12[i];
        bad += v != want;
    }
    CHECK_INT(bad, 0);
    free(enc.p);
    free(u12);

    /* RGB with the reversible colour transform (YBR_RCT in DICOM terms) */
    uint32_t *rgb = test_image(w, h, 3, 8, 23);
    enc = openjpeg_encode(rgb, w, h, 3, 8, 0, 0, 0);
    r3d_codec_frame f3 = frame_of(h, w, 3, 8, 8, 0, "YBR_RCT");
    CHECK_INT(r3d_decode_j2k(enc.p, enc.n, &f3, out, (size_t)w * h * 3, "rgb", &err), R3D_OK);
    CHECK_INT(max_abs_diff(out, rgb, (size_t)w * h * 3, 1), 0);
    hostile_variants_do_not_crash(R3D_CODEC_J2K, enc.p, enc.n, &f3, (size_t)w * h * 3);
    free(enc.p);

    /* lossy (9/7, ICT) within a few grey levels */
    enc = openjpeg_encode(rgb, w, h, 3, 8, 0, 1, 0);
    r3d_codec_frame fi = frame_of(h, w, 3, 8, 8, 0, "YBR_ICT");
    CHECK_INT(r3d_decode_j2k(enc.p, enc.n, &fi, out, (size_t)w * h * 3, "ict", &err), R3D_OK);
    uint32_t lossy = max_abs_diff(out, rgb, (size_t)w * h * 3, 1);
    fprintf(stderr, "  lossy J2K 8:1 RGB: max abs error %u\n", lossy);
    CHECK(lossy <= 40);
    free(enc.p);
    free(rgb);
    free(ref16);
    free(out);
    free(img);
}

static void test_j2k_header_mismatch_names_file_and_sizes(void)
{
    uint32_t *img = test_image(64, 32, 1, 8, 5);
    bytes enc = openjpeg_encode(img, 64, 32, 1, 8, 0, 0, 0);
    uint8_t out[64 * 64 * 3 * 2];
    r3d_error err = R3D_ERROR_INIT;
    r3d_codec_frame fr = frame_of(64, 64, 1, 8, 8, 0, "MONOCHROME2");
    CHECK_INT(r3d_decode_j2k(enc.p, enc.n, &fr, out, sizeof out, "x.dcm frame 3", &err),
              R3D_EFORMAT);
    CHECK_CONTAINS(err.msg, "x.dcm frame 3: JPEG 2000 stream is 64x32 but the header says 64x64");
    r3d_codec_frame f3 = frame_of(32, 64, 3, 8, 8, 0, "RGB");
    CHECK_INT(r3d_decode_j2k(enc.p, enc.n, &f3, out, sizeof out, "y", &err), R3D_EFORMAT);
    CHECK_CONTAINS(err.msg, "1 components but the header says 3 samples");
    CHECK_INT(r3d_decode_j2k((const uint8_t *)"\xFF\xD8\xFF\xE0", 4, &fr, out, sizeof out, "z",
                             &err), R3D_EFORMAT);
    CHECK_CONTAINS(err.msg, "neither a JPEG 2000 codestream");
    /* truncated codestream: OpenJPEG's own words end up in the message */
    r3d_codec_frame ok = frame_of(32, 64, 1, 8, 8, 0, "MONOCHROME2");
    CHECK(r3d_decode_j2k(enc.p, 60, &ok, out, sizeof out, "cut.dcm", &err) != R3D_OK);
    CHECK_CONTAINS(err.msg, "cut.dcm: JPEG 2000");
    free(enc.p);
    free(img);
}

/* ======================================================================== */
/* Real files                                                               */
/* ======================================================================== */

typedef struct decoded {
    int ok;
    double *v; /* values in modality units (grey) or raw (colour), interleaved */
    size_t n;
    int rows, cols, samples, frames;
    char why[1100];
} decoded;

static void decoded_free(decoded *d)
{
    free(d->v);
    d->v = NULL;
}

/* Sign-extend / mask a raw value as the pixel layer does, then rescale. */
static double to_value(uint32_t raw, const dcm_mini *d, int rescale)
{
    int bs = d->bits_stored > 0 ? d->bits_stored : d->bits_alloc;
    int64_t v;
    if (bs >= 32) {
        v = d->is_signed ? (int64_t)(int32_t)raw : (int64_t)raw;
    } else {
        uint32_t m = (1u << bs) - 1u;
        raw &= m;
        v = (d->is_signed && (raw >> (bs - 1)) & 1u) ? (int64_t)raw - ((int64_t)1 << bs)
                                                     : (int64_t)raw;
    }
    return rescale && d->samples == 1 ? v * d->slope + d->intercept : (double)v;
}


/* Decode every frame of a file (native or through the codecs) to values. */
static decoded load_values(const char *rel, int rescale, double *ms_per_frame)
{
    decoded out = {0};
    char path[1024];
    if (!test_data(rel, path, sizeof path)) {
        snprintf(out.why, sizeof out.why, "missing");
        return out;
    }
    dcm_mini *d = dm_open(path);
    if (!d) {
        snprintf(out.why, sizeof out.why, "test reader cannot parse it");
        return out;
    }
    r3d_codec_frame fr = frame_of(d->rows, d->cols, d->samples, d->bits_alloc, d->bits_stored,
                                  d->is_signed, d->photometric);
    fr.planar = d->planar;
    const int bytes = d->bits_alloc <= 8 ? 1 : d->bits_alloc <= 16 ? 2 : 4;
    const size_t per_frame = (size_t)d->rows * d->cols * d->samples;
    out.rows = d->rows;
    out.cols = d->cols;
    out.samples = d->samples;
    out.frames = d->frames;
    out.n = per_frame * (size_t)d->frames;
    out.v = malloc(out.n * sizeof(double));
    uint8_t *buf = malloc(per_frame * (size_t)bytes);
    r3d_codec_kind kind = r3d_codec_for_ts(d->ts);
    double t_total = 0;
    for (int k = 0; k < d->frames && out.v && buf; k++) {
        if (kind == R3D_CODEC_NONE) {
            if (!d->native) {
                snprintf(out.why, sizeof out.why, "no native pixel data");
                goto fail;
            }
            if (d->bits_alloc == 1) {
                size_t bit0 = (size_t)k * per_frame;
                if ((bit0 + per_frame + 7) / 8 > d->native_len) {
                    snprintf(out.why, sizeof out.why, "native data short");
                    goto fail;
                }
                for (size_t i = 0; i < per_frame; i++)
                    buf[i] = (d->native[(bit0 + i) >> 3] >> ((bit0 + i) & 7)) & 1;
            } else {
                size_t fb = per_frame * (size_t)bytes;
                if ((size_t)(k + 1) * fb > d->native_len) {
                    snprintf(out.why, sizeof out.why, "native data short");
                    goto fail;
                }
                const uint8_t *src = d->native + (size_t)k * fb;
                if (d->samples == 3 && d->planar) {
                    size_t np = (size_t)d->rows * d->cols;
                    for (size_t p = 0; p < np; p++)
                        for (int c = 0; c < 3; c++)
                            memcpy(buf + (p * 3 + c) * bytes, src + ((size_t)c * np + p) * bytes,
                                   bytes);
                } else {
                    memcpy(buf, src, fb);
                }
            }
        } else {
            size_t len;
            uint8_t *owned;
            const uint8_t *f = dm_frame(d, k, &len, &owned);
            if (!f) {
                snprintf(out.why, sizeof out.why, "frame %d not found in fragments", k + 1);
                goto fail;
            }
            char where[600];
            snprintf(where, sizeof where, "%s frame %d", rel, k + 1);
            r3d_error err = R3D_ERROR_INIT;
            double t0 = now_ms();
            r3d_status st = r3d_codec_decode(kind, f, len, &fr, buf, per_frame * bytes, where,
                                             &err);
            t_total += now_ms() - t0;
            free(owned);
            if (st != R3D_OK) {
                snprintf(out.why, sizeof out.why, "%s: %s", r3d_status_name(st), err.msg);
                goto fail;
            }
            /* Colour from RLE / JPEG-LS in YBR_FULL is the caller's to convert. */
            if (d->samples == 3 && !r3d_codec_outputs_rgb(kind, &fr) &&
                r3d__photometric_is_ybr_full(&fr))
                r3d__ybr_full_to_rgb(buf, (size_t)d->rows * d->cols, bytes, d->bits_stored);
        }
        for (size_t i = 0; i < per_frame; i++)
            out.v[(size_t)k * per_frame + i] = to_value(get_raw(buf, i, bytes), d, rescale);
    }
    if (ms_per_frame)
        *ms_per_frame = d->frames ? t_total / d->frames : 0;
    out.ok = out.v && buf;
    free(buf);
    dm_free(d);
    return out;
fail:
    free(buf);
    dm_free(d);
    decoded_free(&out);
    return out;
}

typedef struct real_case {
    const char *file, *twin; /* twin NULL: only decode */
    double max_err;          /* 0: bit-exact */
    int rescale;             /* compare in modality units (lossy re-encodings of CT) */
} real_case;

static const real_case REAL_CASES[] = {
    /* the same CT slice in every syntax (dcmtk / gdcm encoders) */
    {CW "CTImage.dcm_RLELosslessTransferSyntax_1.2.840.10008.1.2.5.dcm",
     CW "CTImage.dcm_LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1.dcm", 0, 0},
    {CW "CTImage.dcm_JPEGProcess14TransferSyntax_1.2.840.10008.1.2.4.57.dcm",
     CW "CTImage.dcm_LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1.dcm", 0, 0},
    {CW "CTImage.dcm_JPEGProcess14SV1TransferSyntax_1.2.840.10008.1.2.4.70.dcm",
     CW "CTImage.dcm_LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1.dcm", 0, 0},
    {CW "CTImage.dcm_JPEGLSLosslessTransferSyntax_1.2.840.10008.1.2.4.80.dcm",
     CW "CTImage.dcm_LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1.dcm", 0, 0},
    {CW "CTImage.dcm_JPEG2000LosslessOnlyTransferSyntax_1.2.840.10008.1.2.4.90.dcm",
     CW "CTImage.dcm_LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1.dcm", 0, 0},
    {CW "CTImage.dcm_JPEGLSLossyTransferSyntax_1.2.840.10008.1.2.4.81.dcm",
     CW "CTImage.dcm_LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1.dcm", 1, 1},
    {CW "CTImage.dcm_JPEG2000TransferSyntax_1.2.840.10008.1.2.4.91.dcm",
     CW "CTImage.dcm_LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1.dcm", 8, 1},
    {CW "CTImage.dcm_JPEGProcess2_4TransferSyntax_1.2.840.10008.1.2.4.51.dcm",
     CW "CTImage.dcm_LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1.dcm", 40, 1},
    {CW "CTImage.dcm_JPEGProcess6_8TransferSyntax_1.2.840.10008.1.2.4.53.dcm",
     CW "CTImage.dcm_LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1.dcm", 40, 1},
    {CW "CTImage.dcm_JPEGProcess10_12TransferSyntax_1.2.840.10008.1.2.4.55.dcm",
     CW "CTImage.dcm_LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1.dcm", 40, 1},
    {CW "CTImage.dcm_JPEGProcess1TransferSyntax_1.2.840.10008.1.2.4.50.dcm", NULL, 0, 0},
    {CW "CT0012.fragmented_no_bot_jpeg_baseline.51.dcm", NULL, 0, 0},
    {CW "CT1_J2KR", NULL, 0, 0},
    {CW "CT2_J2KR", NULL, 0, 0},
    /* the same MR mosaic in nine syntaxes (dcm_qa_ts) */
    {DATA("dcm_qa_ts/In/4.dcm"), DATA("dcm_qa_ts/In/1.dcm"), 0, 0},
    {DATA("dcm_qa_ts/In/5.dcm"), DATA("dcm_qa_ts/In/1.dcm"), 0, 0},
    {DATA("dcm_qa_ts/In/6.dcm"), DATA("dcm_qa_ts/In/1.dcm"), 0, 0},
    {DATA("dcm_qa_ts/In/7.dcm"), DATA("dcm_qa_ts/In/1.dcm"), 0, 0},
    {DATA("dcm_qa_ts/In/8.dcm"), DATA("dcm_qa_ts/In/1.dcm"), 0, 0},
    {DATA("dcm_qa_ts/In/9.dcm"), DATA("dcm_qa_ts/In/1.dcm"), 0, 0},
    /* pydicom-data pairs */
    {PD "emri_small_RLE.dcm", PD "emri_small.dcm", 0, 0},
    {PD "emri_small_jpeg_2k_lossless.dcm", PD "emri_small.dcm", 0, 0},
    {PD "emri_small_jpeg_ls_lossless.dcm", PD "emri_small.dcm", 0, 0},
    /* only the sequence delimiter is missing: every frame is whole */
    {PD "emri_small_jpeg_2k_lossless_too_short.dcm", PD "emri_small.dcm", 0, 0},
    {PD "693_J2KR.dcm", PD "693_UNCR.dcm", 0, 0},
    {DP "693_J2KI.dcm", PD "693_UNCI.dcm", 0, 0},
    {PD "MR2_J2KR.dcm", PD "MR2_UNCR.dcm", 0, 0},
    {PD "MR2_J2KI.dcm", PD "MR2_UNCI.dcm", 0, 0},
    {PD "US1_J2KR.dcm", PD "US1_UNCR.dcm", 0, 0},
    {PD "US1_J2KI.dcm", PD "US1_UNCI.dcm", 0, 0},
    {PD "JPEG-LL.dcm", NULL, 0, 0}, /* JPEG2000_UNC.dcm is the lossy J2K's twin, not this */
    {PD "OBXXXX1A_rle.dcm", PD "OBXXXX1A.dcm", 0, 0},
    {PD "OBXXXX1A_rle_2frame.dcm", PD "OBXXXX1A_2frame.dcm", 0, 0},
    {PD "liver_rle.dcm", PD "liver.dcm", 0, 0},
    {PD "liver_j2k.dcm", PD "liver.dcm", 0, 0},
    {PD "liver_nonbyte_aligned_rle.dcm", PD "liver_nonbyte_aligned.dcm", 0, 0},
    {PD "liver_nonbyte_aligned_j2k.dcm", PD "liver_nonbyte_aligned.dcm", 0, 0},
    {PD "JLSL_RGB_ILV0.dcm", PD "JLSL_RGB_ILV1.dcm", 0, 0},
    {PD "JLSL_RGB_ILV2.dcm", PD "JLSL_RGB_ILV1.dcm", 0, 0},
    {PD "JLSN_RGB_ILV0.dcm", PD "JLSL_RGB_ILV1.dcm", 8, 0},
    {PD "JLSL_08_07_0_1F.dcm", NULL, 0, 0},
    {PD "JLSL_16_15_1_1F.dcm", NULL, 0, 0},
    {PD "JPGLosslessP14SV1_1s_1f_8b.dcm", NULL, 0, 0},
    {PD "HTJ2KLossless_08_RGB.dcm", NULL, 0, 0},
    {PD "HTJ2K_08_RGB.dcm", PD "HTJ2KLossless_08_RGB.dcm", 16, 0},
    {PD "RG1_J2KI.dcm", NULL, 0, 0},
    {PD "RG3_J2KI.dcm", PD "RG3_J2KR.dcm", 64, 0},
    {PD "explicit_VR-UN.dcm", NULL, 0, 0},
    {PD "bad_sequence.dcm", NULL, 0, 0},
    /* deb_pydicom */
    {DP "MR_small_RLE.dcm", DP "MR_small.dcm", 0, 0},
    {DP "MR_small_jp2klossless.dcm", DP "MR_small.dcm", 0, 0},
    {DP "MR_small_jpeg_ls_lossless.dcm", DP "MR_small.dcm", 0, 0},
    {DP "SC_rgb_rle.dcm", PD "SC_rgb.dcm", 0, 0},
    {DP "SC_rgb_rle_2frame.dcm", PD "SC_rgb_2frame.dcm", 0, 0},
    {DP "SC_rgb_rle_16bit.dcm", PD "SC_rgb_16bit.dcm", 0, 0},
    {DP "SC_rgb_rle_16bit_2frame.dcm", PD "SC_rgb_16bit_2frame.dcm", 0, 0},
    {DP "SC_rgb_rle_32bit.dcm", PD "SC_rgb_32bit.dcm", 0, 0},
    {DP "SC_rgb_rle_32bit_2frame.dcm", PD "SC_rgb_32bit_2frame.dcm", 0, 0},
    {DP "rtdose_rle.dcm", DP "rtdose.dcm", 0, 0},
    {DP "rtdose_rle_1frame.dcm", DP "rtdose_1frame.dcm", 0, 0},
    {DP "SC_rgb_jpeg_gdcm.dcm", PD "SC_rgb.dcm", 0, 0},
    {DP "SC_rgb_gdcm_KY.dcm", PD "SC_rgb.dcm", 16, 0},
    {DP "GDCMJ2K_TextGBR.dcm", NULL, 0, 0},
    {DP "J2K_pixelrep_mismatch.dcm", NULL, 0, 0},
    {DP "JPEG2000.dcm", PD "JPEG2000_UNC.dcm", 64, 0},
    {DP "JPGExtended.dcm", NULL, 0, 0},
    {DP "JPEG-lossy.dcm", NULL, 0, 0},
    /* 8-bit colour baseline against dcmtk's own decompression (dcmd): libjpeg
     * islow + fancy upsampling on both sides, so within 1 */
    {DP "SC_rgb_dcmtk_+eb+cr.dcm", PD "SC_rgb_dcmtk_ebcr_dcmd.dcm", 1, 0},
    {DP "SC_rgb_dcmtk_+eb+cy+n1.dcm", PD "SC_rgb_dcmtk_ebcyn1_dcmd.dcm", 1, 0},
    {DP "SC_rgb_dcmtk_+eb+cy+n2.dcm", PD "SC_rgb_dcmtk_ebcyn2_dcmd.dcm", 1, 0},
    {DP "SC_rgb_dcmtk_+eb+cy+np.dcm", PD "SC_rgb_dcmtk_ebcynp_dcmd.dcm", 1, 0},
    {DP "SC_rgb_dcmtk_+eb+cy+s2.dcm", PD "SC_rgb_dcmtk_ebcys2_dcmd.dcm", 1, 0},
    {DP "SC_rgb_dcmtk_+eb+cy+s4.dcm", PD "SC_rgb_dcmtk_ebcys4_dcmd.dcm", 1, 0},
    {DP "SC_rgb_jpeg_dcmtk.dcm", PD "SC_rgb.dcm", 16, 0},
    /* 4:2:0 chroma smears the sharp colour-bar edges of SC_rgb */
    {DP "SC_rgb_jpeg_lossy_gdcm.dcm", PD "SC_rgb.dcm", 80, 0},
    {DP "SC_rgb_jpeg.dcm", DP "SC_rgb_jpeg_dcmd.dcm", 1, 0},
    /* RGB (Adobe transform 0) at a lower quality than the reference's
     * source: no chroma decorrelation, so colour edges ring hard */
    {DP "SC_rgb_jpeg_app14_dcmd.dcm", DP "SC_rgb_jpeg_dcmd.dcm", 120, 0},
    {DP "SC_jpeg_no_color_transform.dcm", DP "SC_rgb_jpeg_dcmd.dcm", 16, 0},
    {DP "SC_jpeg_no_color_transform_2.dcm", DP "SC_rgb_jpeg_dcmd.dcm", 120, 0},
    {DP "SC_rgb_small_odd_jpeg.dcm", DP "SC_rgb_small_odd.dcm", 24, 0},
    /* dicom2nifti: one MR series in four lossless syntaxes */
    {DATA("dicom2nifti/generic/compressed_j2k/001/IM-0001-0001-0001.dcm"),
     DATA("dicom2nifti/generic/compressed_rle/001/IM-0001-0001-0001.dcm"), 0, 0},
    {DATA("dicom2nifti/generic/compressed_jpeg/001/IM-0001-0001-0001.dcm"),
     DATA("dicom2nifti/generic/compressed_rle/001/IM-0001-0001-0001.dcm"), 0, 0},
    {DATA("dicom2nifti/generic/compressed_jpegls/001/IM-0001-0001-0001.dcm"),
     DATA("dicom2nifti/generic/compressed_rle/001/IM-0001-0001-0001.dcm"), 0, 0},
    {DATA("dicom2nifti/generic/compressed/001/IM-0001-0004-0001.dcm"),
     DATA("dicom2nifti/generic/compressed_rle/001/IM-0001-0004-0001.dcm"), 0, 0},
};

static void test_real_files_lossless_bitexact_lossy_within_bound(void)
{
    char probe[1024];
    if (!test_data("dicom", probe, sizeof probe))
        SKIP("no %s/dicom (shared test data absent)", R3D_TEST_DATA);
    int n_exact = 0, n_exact_cases = 0, n_lossy = 0, n_decode_only = 0, n_missing = 0;
    int n_failed = 0;
    for (size_t i = 0; i < sizeof REAL_CASES / sizeof REAL_CASES[0]; i++) {
        const real_case *c = &REAL_CASES[i];
        decoded a = load_values(c->file, c->rescale, NULL);
        if (!a.ok && strcmp(a.why, "missing") == 0) {
            fprintf(stderr, "  absent: %s\n", c->file);
            n_missing++;
            continue;
        }
        if (!a.ok) {
            fprintf(stderr, "  CANNOT DECODE %s: %s\n", c->file, a.why);
            n_failed++;
            check_failures_in_test++;
            continue;
        }
        if (!c->twin) {
            fprintf(stderr, "  decoded %s (%dx%dx%d, %d frame%s)\n", c->file, a.cols, a.rows,
                    a.samples, a.frames, a.frames > 1 ? "s" : "");
            n_decode_only++;
            decoded_free(&a);
            continue;
        }
        decoded b = load_values(c->twin, c->rescale, NULL);
        if (!b.ok) {
            fprintf(stderr, "  twin of %s unusable (%s): %s\n", c->file, c->twin, b.why);
            decoded_free(&a);
            n_missing++;
            continue;
        }
        if (a.n != b.n) {
            fprintf(stderr, "  %s: %zu values, twin has %zu\n", c->file, a.n, b.n);
            check_failures_in_test++;
        } else {
            double maxe = 0, sum = 0;
            size_t n_diff = 0;
            for (size_t k = 0; k < a.n; k++) {
                double e = fabs(a.v[k] - b.v[k]);
                if (e > maxe)
                    maxe = e;
                sum += e;
                n_diff += e != 0;
            }
            if (c->max_err == 0) {
                n_exact_cases++;
                if (maxe == 0)
                    n_exact++;
                else
                    fprintf(stderr, "  NOT BIT-EXACT %s: %zu of %zu values differ, max %g\n",
                            c->file, n_diff, a.n, maxe);
                CHECK(maxe == 0);
            } else {
                n_lossy++;
                fprintf(stderr, "  lossy %s: max abs error %g, mean %.3f (bound %g)\n", c->file,
                        maxe, sum / (double)a.n, c->max_err);
                CHECK(maxe <= c->max_err);
            }
        }
        decoded_free(&a);
        decoded_free(&b);
    }
    fprintf(stderr, "  real files: %d/%d bit-exact, %d lossy within bound checks, %d decoded "
            "without twin, %d cannot decode, %d absent\n", n_exact, n_exact_cases, n_lossy,
            n_decode_only, n_failed, n_missing);
}



/* Files whose streams are broken by design: decoding must fail with a
 * message naming the file, and the test output lists why. */
static void test_real_broken_files_fail_with_reason(void)
{
    static const char *files[] = {
        DP "JPEG2000-embedded-sequence-delimiter.dcm", /* 250-byte fake codestream */
    };
    char probe[1024];
    if (!test_data("dicom", probe, sizeof probe))
        SKIP("no %s/dicom (shared test data absent)", R3D_TEST_DATA);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        decoded d = load_values(files[i], 0, NULL);
        if (!d.ok && strcmp(d.why, "missing") == 0)
            continue;
        CHECK(!d.ok);
        fprintf(stderr, "  cannot decode (expected) %s: %s\n", files[i], d.why);
        CHECK_CONTAINS(d.why, files[i]);
        decoded_free(&d);
    }
}

/* Our DCT decoder against libjpeg-turbo on every real 8-bit JPEG we have:
 * same islow IDCT, same upsampling, same colour constants. */
static void test_real_8bit_jpeg_own_decoder_equals_libjpeg(void)
{
    static const char *files[] = {
        CW "CTImage.dcm_JPEGProcess1TransferSyntax_1.2.840.10008.1.2.4.50.dcm",
        DP "SC_rgb_dcmtk_+eb+cr.dcm", DP "SC_rgb_dcmtk_+eb+cy+n1.dcm",
        DP "SC_rgb_dcmtk_+eb+cy+n2.dcm", DP "SC_rgb_dcmtk_+eb+cy+np.dcm",
        DP "SC_rgb_dcmtk_+eb+cy+s2.dcm", DP "SC_rgb_dcmtk_+eb+cy+s4.dcm",
        DP "SC_rgb_jpeg_dcmtk.dcm", DP "SC_rgb_jpeg_lossy_gdcm.dcm", DP "SC_rgb_jpeg.dcm",
        DP "SC_jpeg_no_color_transform.dcm", DP "SC_jpeg_no_color_transform_2.dcm",
        DP "SC_rgb_small_odd_jpeg.dcm"};
    char probe[1024];
    if (!test_data("dicom", probe, sizeof probe))
        SKIP("no %s/dicom (shared test data absent)", R3D_TEST_DATA);
    int compared = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[1024];
        dcm_mini *d = test_data(files[i], path, sizeof path) ? dm_open(path) : NULL;
        if (!d)
            continue;
        size_t len;
        uint8_t *owned;
        const uint8_t *f = dm_frame(d, 0, &len, &owned);
        r3d_codec_frame fr = frame_of(d->rows, d->cols, d->samples, d->bits_alloc, d->bits_stored,
                                      d->is_signed, d->photometric);
        size_t n = (size_t)d->rows * d->cols * d->samples;
        uint8_t *a = malloc(n), *b = malloc(n);
        r3d_error err = R3D_ERROR_INIT;
        CHECK(f != NULL);
        if (f && r3d_decode_jpeg(f, len, &fr, a, n, files[i], &err) == R3D_OK &&
            r3d__jpeg_dct_decode(f, len, &fr, b, n, files[i], &err) == R3D_OK) {
            int maxd = 0;
            for (size_t k = 0; k < n; k++)
                if (abs(a[k] - b[k]) > maxd)
                    maxd = abs(a[k] - b[k]);
            if (maxd)
                fprintf(stderr, "  %s: own vs libjpeg max %d\n", files[i], maxd);
            CHECK(maxd <= 1);
            compared++;
        } else {
            fprintf(stderr, "  %s: %s\n", files[i], err.msg);
            check_failures_in_test++;
        }
        free(owned);
        free(a);
        free(b);
        dm_free(d);
    }
    fprintf(stderr, "  %d real 8-bit JPEG files: own decoder equals libjpeg-turbo\n", compared);
}

/* dcmtk wrote the 12-bit CT with the same quantisation as sequential (.51),
 * spectral selection (.53) and full progression (.55): the three decodes
 * must be identical, which checks the progressive paths of our decoder. */
static void test_real_12bit_jpeg_sequential_and_progressive_decode_identically(void)
{
    decoded a = load_values(CW "CTImage.dcm_JPEGProcess2_4TransferSyntax_1.2.840.10008.1.2.4.51.dcm", 0, NULL);
    if (!a.ok && strcmp(a.why, "missing") == 0)
        SKIP("no cornerstone CT slice (shared test data absent)");
    decoded b = load_values(CW "CTImage.dcm_JPEGProcess6_8TransferSyntax_1.2.840.10008.1.2.4.53.dcm", 0, NULL);
    decoded c = load_values(CW "CTImage.dcm_JPEGProcess10_12TransferSyntax_1.2.840.10008.1.2.4.55.dcm", 0, NULL);
    CHECK(a.ok && b.ok && c.ok);
    if (a.ok && b.ok && c.ok && a.n == b.n && a.n == c.n) {
        size_t diff_b = 0, diff_c = 0;
        for (size_t i = 0; i < a.n; i++) {
            diff_b += a.v[i] != b.v[i];
            diff_c += a.v[i] != c.v[i];
        }
        CHECK_INT(diff_b, 0);
        CHECK_INT(diff_c, 0);
    }
    decoded_free(&a);
    decoded_free(&b);
    decoded_free(&c);
}

/* Not a pass/fail test: how long one 512x512 CT frame takes in each syntax
 * (best of 5, this machine, one thread unless the codec threads itself). */
static void test_real_ct_slice_decode_time_per_syntax(void)
{
    static const char *ts[] = {
        "RLELosslessTransferSyntax_1.2.840.10008.1.2.5",
        "JPEGProcess1TransferSyntax_1.2.840.10008.1.2.4.50",
        "JPEGProcess2_4TransferSyntax_1.2.840.10008.1.2.4.51",
        "JPEGProcess6_8TransferSyntax_1.2.840.10008.1.2.4.53",
        "JPEGProcess10_12TransferSyntax_1.2.840.10008.1.2.4.55",
        "JPEGProcess14TransferSyntax_1.2.840.10008.1.2.4.57",
        "JPEGProcess14SV1TransferSyntax_1.2.840.10008.1.2.4.70",
        "JPEGLSLosslessTransferSyntax_1.2.840.10008.1.2.4.80",
        "JPEGLSLossyTransferSyntax_1.2.840.10008.1.2.4.81",
        "JPEG2000LosslessOnlyTransferSyntax_1.2.840.10008.1.2.4.90",
        "JPEG2000TransferSyntax_1.2.840.10008.1.2.4.91"};
    char probe[1024];
    if (!test_data(CW "CTImage.dcm", probe, sizeof probe))
        SKIP("no cornerstone CT slice (shared test data absent)");
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        char rel[512];
        snprintf(rel, sizeof rel, CW "CTImage.dcm_%s.dcm", ts[i]);
        double best = 1e9;
        for (int rep = 0; rep < 5; rep++) {
            double ms = 0;
            decoded d = load_values(rel, 0, &ms);
            if (!d.ok) {
                best = -1;
                break;
            }
            if (ms < best)
                best = ms;
            decoded_free(&d);
        }
        fprintf(stderr, "  512x512 CT %-56s %7.2f ms\n", ts[i], best);
        CHECK(best >= 0);
    }
}


/* ======================================================================== */
/* Fuzz seeds: test_codecs --write-seeds DIR                                 */
/* ======================================================================== */

/* Header layout documented in tests/fuzz/fuzz_codecs.c. */
static int write_seed(const char *dir, const char *name, int codec, int flags, int rows, int cols,
                      const bytes *b)
{
    char path[1024];
    uint8_t hdr[6] = {(uint8_t)codec, (uint8_t)flags, (uint8_t)((rows - 1) >> 8),
                      (uint8_t)(rows - 1), (uint8_t)((cols - 1) >> 8), (uint8_t)(cols - 1)};
    snprintf(path, sizeof path, "%s/%s", dir, name);
    bytes all = {0};
    put(&all, hdr, 6);
    put(&all, b->p, b->n);
    r3d_status st = r3d_file_write_atomic(path, all.p, all.n, NULL);
    free(all.p);
    return st == R3D_OK ? 0 : 1;
}

/* An 8-bit libjpeg stream with its frame header relabelled as 12-bit: a
 * valid extended-process stream (the same Huffman categories fit), so the
 * fuzzer starts inside our 12-bit paths. */
static void relabel_12bit(bytes *b)
{
    for (size_t i = 0; i + 4 < b->n; i++)
        if (b->p[i] == 0xFF && (b->p[i + 1] == 0xC0 || b->p[i + 1] == 0xC2)) {
            if (b->p[i + 1] == 0xC0)
                b->p[i + 1] = 0xC1;
            b->p[i + 4] = 12;
            return;
        }
}

static int write_seeds(const char *dir)
{
    int bad = 0;
    bytes b;
    uint32_t *img;
    /* RLE: flags = samples bit | bits class << 1 | signed << 3 | photometric << 4 */
    img = test_image(24, 17, 1, 8, 1);
    b = rle_encode(img, 24, 17, 1, 8);
    bad += write_seed(dir, "rle_grey8_24x17", 0, 0x00, 17, 24, &b);
    free(b.p), free(img);
    img = test_image(16, 12, 3, 16, 2);
    b = rle_encode(img, 16, 12, 3, 16);
    bad += write_seed(dir, "rle_rgb16_16x12", 0, 0x01 | 2 << 1 | 1 << 4, 12, 16, &b);
    free(b.p), free(img);
    img = test_image(8, 8, 1, 32, 3);
    b = rle_encode(img, 8, 8, 1, 32);
    bad += write_seed(dir, "rle_grey32_8x8", 0, 3 << 1 | 0x40, 8, 8, &b);
    free(b.p), free(img);
    {
        const uint8_t packed[17] = {0xA5, 0x3C, 0, 0, 0, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4, 5, 6, 7, 8, 9};
        uint32_t hdr[16] = {1, 64};
        b = (bytes){0};
        put(&b, hdr, 64);
        packbits(&b, packed, 17);
        bad += write_seed(dir, "rle_1bit_15x9", 0, 3 << 1, 9, 15, &b);
        free(b.p);
    }
    /* lossless JPEG */
    img = test_image(20, 13, 1, 12, 4);
    b = ljpeg_encode(img, 20, 13, 1, 12, (ll_opts){4, 0, 40, 0, 0});
    bad += write_seed(dir, "ljpeg_p12_pred4_restart_20x13", 1, 1 << 1, 13, 20, &b);
    free(b.p), free(img);
    img = test_image(16, 8, 1, 16, 5);
    img[1] = img[0] ^ 0x8000u;
    b = ljpeg_encode(img, 16, 8, 1, 16, (ll_opts){1, 0, 0, 0, 0});
    bad += write_seed(dir, "ljpeg_p16_sv1_ssss16_16x8", 1, 2 << 1 | 1 << 3, 8, 16, &b);
    free(b.p), free(img);
    img = test_image(12, 10, 3, 8, 6);
    b = ljpeg_encode(img, 12, 10, 3, 8, (ll_opts){7, 1, 0, 1, 0});
    bad += write_seed(dir, "ljpeg_rgb8_pred7_pt1_scans_12x10", 1, 0x01 | 1 << 4, 10, 12, &b);
    free(b.p), free(img);
    /* DCT */
    const struct {
        const char *name;
        lj_opts o;
        int twelve;
    } dct[] = {
        {"jpeg_grey8_baseline_32x24", {1, 80, 1, 1, 0, 0, 0, 32, 24}, 0},
        {"jpeg_rgb8_420_jfif_33x21", {3, 80, 2, 2, 0, 0, 0, 33, 21}, 0},
        {"jpeg_rgb8_422_progressive_40x24", {3, 80, 2, 1, 0, 1, 0, 40, 24}, 0},
        {"jpeg_rgb8_adobe_rgb_restart_24x16", {3, 80, 1, 1, 2, 0, 1, 24, 16}, 0},
        {"jpeg_grey12_extended_32x24", {1, 80, 1, 1, 3, 0, 0, 32, 24}, 1},
        {"jpeg_grey12_progressive_32x24", {1, 80, 1, 1, 0, 1, 0, 32, 24}, 1},
    };
    for (size_t i = 0; i < sizeof dct / sizeof dct[0]; i++) {
        img = test_image(dct[i].o.w, dct[i].o.h, dct[i].o.nc, 8, 7 + (uint32_t)i);
        b = libjpeg_encode(img, dct[i].o);
        if (dct[i].twelve)
            relabel_12bit(&b);
        int flags = (dct[i].o.nc == 3 ? 0x01 | 1 << 4 : 0) | (dct[i].twelve ? 1 << 1 : 0);
        bad += write_seed(dir, dct[i].name, 1, flags, dct[i].o.h, dct[i].o.w, &b);
        free(b.p), free(img);
    }
    /* JPEG-LS */
    img = test_image(20, 14, 1, 12, 20);
    b = charls_encode(img, 20, 14, 1, 12, 0, 0);
    bad += write_seed(dir, "jls_grey12_20x14", 2, 1 << 1, 14, 20, &b);
    free(b.p), free(img);
    img = test_image(16, 16, 3, 8, 21);
    b = charls_encode(img, 16, 16, 3, 8, 2, 0);
    bad += write_seed(dir, "jls_rgb8_ilv2_16x16", 2, 0x01 | 1 << 4, 16, 16, &b);
    free(b.p);
    b = charls_encode(img, 16, 16, 3, 8, 0, 2);
    bad += write_seed(dir, "jls_rgb8_ilv0_near2_16x16", 2, 0x01 | 1 << 4, 16, 16, &b);
    free(b.p), free(img);
    /* JPEG 2000 */
    img = test_image(20, 15, 1, 12, 30);
    for (int i = 0; i < 20 * 15; i++)
        img[i] = (uint32_t)((int32_t)img[i] - 1024);
    b = openjpeg_encode(img, 20, 15, 1, 16, 1, 0, 0);
    bad += write_seed(dir, "j2k_grey16_signed_20x15", 3, 2 << 1 | 1 << 3, 15, 20, &b);
    free(b.p);
    b = openjpeg_encode(img, 20, 15, 1, 16, 1, 0, 1);
    bad += write_seed(dir, "jp2_grey16_signed_20x15", 3, 2 << 1 | 1 << 3, 15, 20, &b);
    free(b.p), free(img);
    img = test_image(16, 16, 3, 8, 31);
    b = openjpeg_encode(img, 16, 16, 3, 8, 0, 0, 0);
    bad += write_seed(dir, "j2k_rgb8_rct_16x16", 3, 0x01 | 1 << 4, 16, 16, &b);
    free(b.p);
    b = openjpeg_encode(img, 16, 16, 3, 8, 0, 1, 0);
    bad += write_seed(dir, "j2k_rgb8_ict_lossy_16x16", 3, 0x01 | 1 << 4, 16, 16, &b);
    free(b.p), free(img);
    return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0)
        return write_seeds(argv[2]);
    RUN(test_codec_for_ts_classifies_every_dicom_syntax);
    RUN(test_codec_decode_rejects_native_and_unknown_with_message);
    RUN(test_rle_roundtrip_8_16_32_bit_grey_and_rgb_bitexact);
    RUN(test_rle_1bit_frame_unpacks_lsb_first);
    RUN(test_rle_broken_headers_and_short_segments_are_eformat_with_reason);
    RUN(test_jpeg_lossless_every_predictor_bits_pt_restart_bitexact);
    RUN(test_jpeg_lossless_ssss16_with_extra_bits_quirk_still_decodes);
    RUN(test_jpeg_lossless_hostile_streams_fail_cleanly);
    RUN(test_jpeg_8bit_own_dct_decoder_matches_libjpeg_within_1);
    RUN(test_jpeg_header_mismatch_names_file_and_sizes);
    RUN(test_jpegls_charls_roundtrip_8_12_16_bit_every_interleave);
    RUN(test_jpegls_header_mismatch_names_file_and_sizes);
    RUN(test_j2k_openjpeg_roundtrip_lossless_16bit_signed_and_rgb_bitexact);
    RUN(test_j2k_header_mismatch_names_file_and_sizes);
    RUN(test_real_files_lossless_bitexact_lossy_within_bound);
    RUN(test_real_broken_files_fail_with_reason);
    RUN(test_real_8bit_jpeg_own_decoder_equals_libjpeg);
    RUN(test_real_12bit_jpeg_sequential_and_progressive_decode_identically);
    RUN(test_real_ct_slice_decode_time_per_syntax);
    return CHECK_DONE("test_codecs");
}

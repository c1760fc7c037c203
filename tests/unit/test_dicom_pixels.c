/* test_dicom_pixels.c - pixel description and frame decoding
 * (src/io/dicom/pixels.c): the output contract of dicom.h on synthetic
 * images (sign extension and masking from BitsStored, big endian, 1-bit
 * frames that are not byte aligned, planar colour, YBR, palette, float,
 * encapsulated frames with and without offset tables, deflated frames),
 * impossible headers, concurrent decoding, and real files whose transfer
 * syntaxes must agree with their uncompressed twin. The exhaustive
 * comparison with pydicom is tests/e2e/dicom_pixels_golden.py.
 */
#include "check.h"
#include "dcm_build.h"
#include "r3d/dicom.h"

#include <pthread.h>

#define T(g, e) R3D_TAG(g, e)

static r3d_dcm_file *open_body(dbuf *b, const char *ts, r3d_error *err)
{
    dbuf f;
    db_part10(&f, ts, b->b, b->n);
    free(b->b);
    b->b = NULL;
    return r3d_dcm_parse(f.b, f.n, 1, "pix.dcm", 0, err);
}

/* pixinfo + decode of frame k into a fresh buffer (caller frees). */
static void *decode(r3d_dcm_file *f, r3d_dcm_pixinfo *p, int k, r3d_status *st, r3d_error *err)
{
    *st = r3d_dcm_pixinfo_get(f, p, err);
    if (*st != R3D_OK)
        return NULL;
    size_t n = r3d_dcm_frame_bytes(p);
    void *buf = calloc(1, n);
    *st = r3d_dcm_decode_frame(f, p, k, buf, n, err);
    return buf;
}

static void test_signed_12_bit_is_sign_extended_past_junk_high_bits(void)
{
    dbuf b;
    db_init(&b, 1, 0);
    db_image(&b, 1, 4, 1, 16, 12, 1, "MONOCHROME2", 0);
    /* 0x0FFF = -1, 0x0800 = -2048, 0xF7FF (junk above bit 11) = 2047, 0x1001 = 1 */
    uint16_t px[4] = {0x0FFF, 0x0800, 0xF7FF, 0x1001};
    db_el(&b, 0x7FE0, 0x0010, "OW", px, 8);
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *f = open_body(&b, "1.2.840.10008.1.2.1", &err);
    r3d_dcm_pixinfo p;
    r3d_status st;
    int16_t *v = decode(f, &p, 0, &st, &err);
    CHECK_INT(st, R3D_OK);
    CHECK_INT(v[0], -1);
    CHECK_INT(v[1], -2048);
    CHECK_INT(v[2], 2047);
    CHECK_INT(v[3], 1);
    free(v);
    r3d_dcm_close(f);
}

static void test_unsigned_values_are_masked_to_bits_stored(void)
{
    dbuf b;
    db_init(&b, 1, 0);
    db_image(&b, 1, 3, 1, 16, 10, 0, "MONOCHROME2", 0);
    uint16_t px[3] = {0x83FF, 0x0400, 0x0123}; /* overlay bit 15, bit 10 */
    db_el(&b, 0x7FE0, 0x0010, "OW", px, 6);
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *f = open_body(&b, "1.2.840.10008.1.2.1", &err);
    r3d_dcm_pixinfo p;
    r3d_status st;
    uint16_t *v = decode(f, &p, 0, &st, &err);
    CHECK_INT(st, R3D_OK);
    CHECK_INT(v[0], 0x3FF);
    CHECK_INT(v[1], 0);
    CHECK_INT(v[2], 0x123);
    free(v);
    r3d_dcm_close(f);
}

static void test_big_endian_16_and_32_bit_are_swapped(void)
{
    for (int ba = 16; ba <= 32; ba += 16) {
        dbuf b;
        db_init(&b, 1, 1);
        db_image(&b, 1, 2, 1, ba, ba, 1, "MONOCHROME2", 0);
        uint8_t px16[4] = {0x12, 0x34, 0xFF, 0xFE};
        uint8_t px32[8] = {0x12, 0x34, 0x56, 0x78, 0xFF, 0xFF, 0xFF, 0xFE};
        db_el(&b, 0x7FE0, 0x0010, ba == 16 ? "OW" : "OL", ba == 16 ? px16 : px32,
              ba == 16 ? 4 : 8);
        r3d_error err = R3D_ERROR_INIT;
        r3d_dcm_file *f = open_body(&b, "1.2.840.10008.1.2.2", &err);
        r3d_dcm_pixinfo p;
        r3d_status st;
        void *v = decode(f, &p, 0, &st, &err);
        CHECK_INT(st, R3D_OK);
        if (ba == 16) {
            CHECK_INT(((int16_t *)v)[0], 0x1234);
            CHECK_INT(((int16_t *)v)[1], -2);
        } else {
            CHECK_INT(((int32_t *)v)[0], 0x12345678);
            CHECK_INT(((int32_t *)v)[1], -2);
        }
        free(v);
        r3d_dcm_close(f);
    }
}

static void test_8_bit_ow_in_big_endian_is_word_swapped(void)
{
    dbuf b;
    db_init(&b, 1, 1);
    db_image(&b, 1, 4, 1, 8, 8, 0, "MONOCHROME2", 0);
    db_el(&b, 0x7FE0, 0x0010, "OW", "\x02\x01\x04\x03", 4);
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *f = open_body(&b, "1.2.840.10008.1.2.2", &err);
    r3d_dcm_pixinfo p;
    r3d_status st;
    uint8_t *v = decode(f, &p, 0, &st, &err);
    CHECK_INT(st, R3D_OK);
    CHECK(v && v[0] == 1 && v[1] == 2 && v[2] == 3 && v[3] == 4);
    free(v);
    r3d_dcm_close(f);
}

/* 3 frames of 3x3 1-bit: frame k starts at bit 9k, not at a byte. */
static void test_1_bit_frames_are_not_byte_aligned(void)
{
    uint8_t bits[27];
    uint8_t packed[4] = {0};
    for (int i = 0; i < 27; i++) {
        bits[i] = (uint8_t)((i * 7 + i / 3) % 3 == 0);
        if (bits[i])
            packed[i / 8] |= (uint8_t)(1u << (i % 8));
    }
    dbuf b;
    db_init(&b, 1, 0);
    db_image(&b, 3, 3, 1, 1, 1, 0, "MONOCHROME2", 3);
    db_el(&b, 0x7FE0, 0x0010, "OB", packed, 4);
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *f = open_body(&b, "1.2.840.10008.1.2.1", &err);
    for (int k = 0; k < 3; k++) {
        r3d_dcm_pixinfo p;
        r3d_status st;
        uint8_t *v = decode(f, &p, k, &st, &err);
        CHECK_INT(st, R3D_OK);
        CHECK_INT(r3d_dcm_frame_bytes(&p), 9);
        for (int i = 0; i < 9; i++)
            CHECK_INT(v[i], bits[9 * k + i]);
        free(v);
    }
    r3d_dcm_close(f);
}

static void test_planar_rgb_is_interleaved(void)
{
    dbuf b;
    db_init(&b, 1, 0);
    db_image(&b, 1, 2, 3, 8, 8, 0, "RGB", 0);
    db_us(&b, 0x0028, 0x0006, 1);
    db_el(&b, 0x7FE0, 0x0010, "OB", "\x01\x02\x03\x04\x05\x06", 6); /* R1 R2 G1 G2 B1 B2 */
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *f = open_body(&b, "1.2.840.10008.1.2.1", &err);
    r3d_dcm_pixinfo p;
    r3d_status st;
    uint8_t *v = decode(f, &p, 0, &st, &err);
    CHECK_INT(st, R3D_OK);
    CHECK_INT(p.planar, 1);
    static const uint8_t want[6] = {1, 3, 5, 2, 4, 6};
    for (int i = 0; i < 6; i++)
        CHECK_INT(v[i], want[i]);
    free(v);
    r3d_dcm_close(f);
}

static void test_ybr_full_and_422_become_rgb(void)
{
    /* Y=76 Cb=85 Cr=255 is pure red; Y=128 Cb=Cr=128 is mid grey. */
    for (int sub = 0; sub <= 1; sub++) {
        dbuf b;
        db_init(&b, 1, 0);
        db_image(&b, 1, 2, 3, 8, 8, 0, sub ? "YBR_FULL_422" : "YBR_FULL", 0);
        if (sub)
            db_el(&b, 0x7FE0, 0x0010, "OB", "\x4c\x4c\x55\xff", 4);
        else
            db_el(&b, 0x7FE0, 0x0010, "OB", "\x4c\x55\xff\x80\x80\x80", 6);
        r3d_error err = R3D_ERROR_INIT;
        r3d_dcm_file *f = open_body(&b, "1.2.840.10008.1.2.1", &err);
        r3d_dcm_pixinfo p;
        r3d_status st;
        uint8_t *v = decode(f, &p, 0, &st, &err);
        CHECK_INT(st, R3D_OK);
        CHECK(v[0] >= 253 && v[1] <= 1 && v[2] <= 1);
        if (sub)
            CHECK(v[3] >= 253 && v[4] <= 1 && v[5] <= 1);
        else
            CHECK(v[3] == 128 && v[4] == 128 && v[5] == 128);
        free(v);
        r3d_dcm_close(f);
    }
}

static void test_palette_color_expands_to_rgb(void)
{
    dbuf b;
    db_init(&b, 1, 0);
    db_image(&b, 1, 3, 1, 8, 8, 0, "PALETTE COLOR", 0);
    uint16_t desc[3] = {4, 10, 16}; /* 4 entries, first mapped value 10 */
    uint16_t red[4] = {100, 200, 300, 400}, green[4] = {1, 2, 3, 4}, blue[4] = {0, 0, 0, 65535};
    db_el(&b, 0x0028, 0x1101, "US", desc, 6);
    db_el(&b, 0x0028, 0x1102, "US", desc, 6);
    db_el(&b, 0x0028, 0x1103, "US", desc, 6);
    db_el(&b, 0x0028, 0x1201, "OW", red, 8);
    db_el(&b, 0x0028, 0x1202, "OW", green, 8);
    db_el(&b, 0x0028, 0x1203, "OW", blue, 8);
    db_el(&b, 0x7FE0, 0x0010, "OB", "\x05\x0b\x63\x00", 4); /* below, inside, above */
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *f = open_body(&b, "1.2.840.10008.1.2.1", &err);
    r3d_dcm_pixinfo p;
    r3d_status st;
    uint16_t *v = decode(f, &p, 0, &st, &err);
    CHECK_INT(st, R3D_OK);
    CHECK_INT(p.palette_bits, 16);
    CHECK_INT(r3d_dcm_frame_bytes(&p), 3 * 3 * 2);
    CHECK_INT(v[0], 100);
    CHECK_INT(v[3], 200);
    CHECK_INT(v[4], 2);
    CHECK_INT(v[6], 400);
    CHECK_INT(v[8], 65535);
    free(v);
    r3d_dcm_close(f);
}

/* Segmented LUT (PS3.3 §C.7.9.2): discrete 10,20; linear to 50 in 3 steps;
 * indirect copy of the first segment -> 10 20 30 40 50 10 20. */
static void test_segmented_palette_expands(void)
{
    dbuf b;
    db_init(&b, 1, 0);
    db_image(&b, 1, 4, 1, 8, 8, 0, "PALETTE COLOR", 0);
    uint16_t desc[3] = {8, 0, 16};
    uint16_t seg[] = {0, 2, 10, 20, 1, 3, 50, 2, 1, 0, 0};
    for (int ch = 0; ch < 3; ch++)
        db_el(&b, 0x0028, (uint16_t)(0x1101 + ch), "US", desc, 6);
    for (int ch = 0; ch < 3; ch++)
        db_el(&b, 0x0028, (uint16_t)(0x1221 + ch), "OW", seg, sizeof seg);
    db_el(&b, 0x7FE0, 0x0010, "OB", "\x00\x04\x06\x07", 4);
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *f = open_body(&b, "1.2.840.10008.1.2.1", &err);
    r3d_dcm_pixinfo p;
    r3d_status st;
    uint16_t *v = decode(f, &p, 0, &st, &err);
    CHECK_INT(st, R3D_OK);
    static const int want[4] = {10, 50, 20, 20};
    for (int i = 0; v && i < 4; i++) {
        CHECK_INT(v[3 * i], want[i]);
        CHECK_INT(v[3 * i + 2], want[i]);
    }
    free(v);
    r3d_dcm_close(f);
}

static void test_float_and_double_pixel_data(void)
{
    float fl[2] = {1.5f, -3.25f};
    double db[2] = {1e-300, -2.5};
    for (int k = 0; k < 2; k++) {
        dbuf b;
        db_init(&b, 1, 0);
        db_us(&b, 0x0028, 0x0002, 1);
        db_str(&b, 0x0028, 0x0004, "CS", "MONOCHROME2");
        db_us(&b, 0x0028, 0x0010, 1);
        db_us(&b, 0x0028, 0x0011, 2);
        db_us(&b, 0x0028, 0x0100, k ? 64 : 32);
        if (k)
            db_el(&b, 0x7FE0, 0x0009, "OD", db, 16);
        else
            db_el(&b, 0x7FE0, 0x0008, "OF", fl, 8);
        r3d_error err = R3D_ERROR_INIT;
        r3d_dcm_file *f = open_body(&b, "1.2.840.10008.1.2.1", &err);
        r3d_dcm_pixinfo p;
        r3d_status st;
        void *v = decode(f, &p, 0, &st, &err);
        CHECK_INT(st, R3D_OK);
        CHECK_INT(p.is_float, 1);
        if (k) {
            CHECK_INT(r3d_dcm_frame_bytes(&p), 16);
            CHECK(((double *)v)[0] == 1e-300 && ((double *)v)[1] == -2.5);
        } else {
            CHECK(((float *)v)[0] == 1.5f && ((float *)v)[1] == -3.25f);
        }
        free(v);
        r3d_dcm_close(f);
    }
}

/* Two 2x2 8-bit frames in Encapsulated Uncompressed, split into fragments
 * in three layouts: with a BOT, one fragment per frame, and frame 0 in two
 * fragments with a BOT saying so. */
static void test_encapsulated_frames_map_to_fragments(void)
{
    for (int layout = 0; layout < 3; layout++) {
        dbuf b;
        db_init(&b, 1, 0);
        db_image(&b, 2, 2, 1, 8, 8, 0, "MONOCHROME2", 2);
        db_hdr(&b, 0x7FE0, 0x0010, "OB", 0xFFFFFFFF);
        if (layout == 1) {
            db_item(&b, 0);
        } else {
            db_item(&b, 8);
            db_u32(&b, 0);
            db_u32(&b, layout == 0 ? 12 : 20);
        }
        if (layout == 2) {
            db_item(&b, 2);
            db_put(&b, "\x01\x02", 2);
            db_item(&b, 2);
            db_put(&b, "\x03\x04", 2);
        } else {
            db_item(&b, 4);
            db_put(&b, "\x01\x02\x03\x04", 4);
        }
        db_item(&b, 4);
        db_put(&b, "\x05\x06\x07\x08", 4);
        db_seq_end(&b);
        r3d_error err = R3D_ERROR_INIT;
        r3d_dcm_file *f = open_body(&b, "1.2.840.10008.1.2.1.98", &err);
        CHECK(f != NULL);
        for (int k = 0; f && k < 2; k++) {
            r3d_dcm_pixinfo p;
            r3d_status st;
            uint8_t *v = decode(f, &p, k, &st, &err);
            if (st != R3D_OK)
                fprintf(stderr, "  layout %d: %s\n", layout, err.msg);
            CHECK_INT(st, R3D_OK);
            CHECK_INT(v[0], 1 + 4 * k);
            CHECK_INT(v[3], 4 + 4 * k);
            free(v);
        }
        r3d_dcm_close(f);
    }
}

/* Extended Offset Table (7FE0,0001/0002): the only way to find frame 1 when a
 * stray fragment sits between the frames and there is no BOT. */
static void test_extended_offset_table_is_used(void)
{
    dbuf b;
    db_init(&b, 1, 0);
    db_image(&b, 2, 2, 1, 8, 8, 0, "MONOCHROME2", 2);
    uint64_t off[2] = {0, 24}, len[2] = {4, 4};
    db_el(&b, 0x7FE0, 0x0001, "OV", off, 16);
    db_el(&b, 0x7FE0, 0x0002, "OV", len, 16);
    db_hdr(&b, 0x7FE0, 0x0010, "OB", 0xFFFFFFFF);
    db_item(&b, 0);
    db_item(&b, 4);
    db_put(&b, "\x01\x02\x03\x04", 4);
    db_item(&b, 4);
    db_put(&b, "\xee\xee\xee\xee", 4);
    db_item(&b, 4);
    db_put(&b, "\x05\x06\x07\x08", 4);
    db_seq_end(&b);
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *f = open_body(&b, "1.2.840.10008.1.2.1.98", &err);
    r3d_dcm_pixinfo p;
    r3d_status st;
    uint8_t *v = decode(f, &p, 1, &st, &err);
    CHECK_INT(st, R3D_OK);
    CHECK(v && v[0] == 5 && v[3] == 8);
    free(v);
    r3d_dcm_close(f);
}

static void test_more_fragments_than_frames_without_markers_is_refused(void)
{
    dbuf b;
    db_init(&b, 1, 0);
    db_image(&b, 2, 2, 1, 8, 8, 0, "MONOCHROME2", 2);
    db_hdr(&b, 0x7FE0, 0x0010, "OB", 0xFFFFFFFF);
    db_item(&b, 0);
    for (int i = 0; i < 3; i++) {
        db_item(&b, 2);
        db_put(&b, "\x01\x02", 2);
    }
    db_seq_end(&b);
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *f = open_body(&b, "1.2.840.10008.1.2.5", &err);
    r3d_dcm_pixinfo p;
    r3d_status st;
    free(decode(f, &p, 1, &st, &err));
    CHECK_INT(st, R3D_EFORMAT);
    CHECK_CONTAINS(err.msg, "cannot tell which of the 3 pixel data fragments belong to frame 1");
    r3d_dcm_close(f);
}

static void test_deflated_image_frames_inflate(void)
{
    uint8_t raw[2][8] = {{1, 0, 2, 0, 3, 0, 4, 0}, {5, 0, 6, 0, 7, 0, 8, 1}};
    uint8_t z[2][64];
    size_t zn[2];
    for (int k = 0; k < 2; k++)
        zn[k] = db_deflate(raw[k], 8, z[k], sizeof z[k]);
    dbuf b;
    db_init(&b, 1, 0);
    db_image(&b, 2, 2, 1, 16, 16, 0, "MONOCHROME2", 2);
    db_hdr(&b, 0x7FE0, 0x0010, "OB", 0xFFFFFFFF);
    db_item(&b, 0);
    for (int k = 0; k < 2; k++) {
        size_t n = zn[k] + (zn[k] & 1);
        db_item(&b, (uint32_t)n);
        db_put(&b, z[k], zn[k]);
        if (zn[k] & 1)
            db_put(&b, "\0", 1);
    }
    db_seq_end(&b);
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *f = open_body(&b, "1.2.840.10008.1.2.8.1", &err);
    r3d_dcm_pixinfo p;
    r3d_status st;
    uint16_t *v = decode(f, &p, 1, &st, &err);
    CHECK_INT(st, R3D_OK);
    CHECK_INT(v[0], 5);
    CHECK_INT(v[3], 0x108);
    free(v);
    r3d_dcm_close(f);
}

static void test_impossible_headers_give_clear_errors(void)
{
    struct {
        int rows, cols, samples, ba, bs, pr, frames;
        const char *photo;
        const char *msg;
    } c[] = {
        {0, 4, 1, 16, 16, 0, 0, "MONOCHROME2", "impossible image size Rows (0028,0010) = 0"},
        {65535, 65535, 1, 16, 16, 0, 99999, "MONOCHROME2", "impossible dimensions"},
        {4, 4, 2, 8, 8, 0, 0, "MONOCHROME2", "SamplesPerPixel (0028,0002) = 2"},
        {4, 4, 1, 12, 12, 0, 0, "MONOCHROME2", "BitsAllocated (0028,0100) = 12"},
        {4, 4, 1, 8, 9, 0, 0, "MONOCHROME2", "BitsStored (0028,0101) = 9 does not fit"},
        {4, 4, 1, 8, 8, 2, 0, "MONOCHROME2", "PixelRepresentation (0028,0103) = 2"},
        {4, 4, 3, 1, 1, 0, 0, "RGB", "1-bit pixels with 3 samples"},
        {4, 4, 1, 16, 16, 0, 3, "MONOCHROME2", "has 32 bytes but 4 x 4 x 1 samples x 3 frames of 16 bits need 96"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        dbuf b;
        db_init(&b, 1, 0);
        db_image(&b, c[i].rows, c[i].cols, c[i].samples, c[i].ba, c[i].bs, c[i].pr, c[i].photo,
                 c[i].frames);
        uint8_t z[32] = {0};
        db_el(&b, 0x7FE0, 0x0010, "OW", z, 32);
        r3d_error err = R3D_ERROR_INIT;
        r3d_dcm_file *f = open_body(&b, "1.2.840.10008.1.2.1", &err);
        r3d_dcm_pixinfo p;
        r3d_status st = r3d_dcm_pixinfo_get(f, &p, &err);
        CHECK(st != R3D_OK);
        CHECK_CONTAINS(err.msg, c[i].msg);
        CHECK_CONTAINS(err.msg, "pix.dcm: ");
        r3d_dcm_close(f);
    }
}

static void test_decode_arguments_are_checked(void)
{
    dbuf b;
    db_init(&b, 1, 0);
    db_image(&b, 2, 2, 1, 8, 8, 0, "MONOCHROME2", 0);
    db_el(&b, 0x7FE0, 0x0010, "OB", "\x01\x02\x03\x04", 4);
    dbuf f;
    db_part10(&f, "1.2.840.10008.1.2.1", b.b, b.n);
    free(b.b);
    r3d_error err = R3D_ERROR_INIT;
    uint8_t *copy = malloc(f.n);
    memcpy(copy, f.b, f.n);
    r3d_dcm_file *d = r3d_dcm_parse(copy, f.n, 1, "hdr.dcm", R3D_DCM_HEADER_ONLY, &err);
    r3d_dcm_pixinfo p;
    CHECK_INT(r3d_dcm_pixinfo_get(d, &p, &err), R3D_OK);
    uint8_t out[4];
    CHECK_INT(r3d_dcm_decode_frame(d, &p, 0, out, 4, &err), R3D_EARG);
    CHECK_CONTAINS(err.msg, "R3D_DCM_HEADER_ONLY");
    r3d_dcm_close(d);
    d = r3d_dcm_parse(f.b, f.n, 1, "full.dcm", 0, &err);
    CHECK_INT(r3d_dcm_pixinfo_get(d, &p, &err), R3D_OK);
    CHECK_INT(r3d_dcm_decode_frame(d, &p, 1, out, 4, &err), R3D_EARG);
    CHECK_CONTAINS(err.msg, "frame 1 out of range");
    CHECK_INT(r3d_dcm_decode_frame(d, &p, 0, out, 3, &err), R3D_EARG);
    CHECK_INT(r3d_dcm_decode_frame(d, &p, 0, out, 4, &err), R3D_OK);
    CHECK_INT(out[3], 4);
    r3d_dcm_close(d);
}

/* ---- concurrency ------------------------------------------------------------- */

typedef struct job {
    r3d_dcm_file *f;
    r3d_dcm_pixinfo *p;
    int first, step;
    uint8_t *out;
    int errors;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    size_t fb = r3d_dcm_frame_bytes(j->p);
    for (int k = j->first; k < j->p->frames; k += j->step) {
        r3d_error err = R3D_ERROR_INIT;
        if (r3d_dcm_decode_frame(j->f, j->p, k, j->out + (size_t)k * fb, fb, &err) != R3D_OK)
            j->errors++;
    }
    return NULL;
}

static void test_concurrent_decoding_matches_serial(void)
{
    char path[1024];
    if (!test_data("dicom/pydicom_data/data_store/data/emri_small_RLE.dcm", path, sizeof path))
        SKIP("no emri_small_RLE.dcm");
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *f = r3d_dcm_open(path, 0, &err);
    CHECK(f != NULL);
    if (!f)
        return;
    r3d_dcm_pixinfo p;
    CHECK_INT(r3d_dcm_pixinfo_get(f, &p, &err), R3D_OK);
    size_t fb = r3d_dcm_frame_bytes(&p), all = fb * (size_t)p.frames;
    uint8_t *serial = malloc(all), *par = malloc(all);
    job s = {f, &p, 0, 1, serial, 0};
    run_job(&s);
    CHECK_INT(s.errors, 0);
    pthread_t th[4];
    job j[4];
    for (int t = 0; t < 4; t++) {
        j[t] = (job){f, &p, t, 4, par, 0};
        pthread_create(&th[t], NULL, run_job, &j[t]);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        CHECK_INT(j[t].errors, 0);
    }
    CHECK(memcmp(serial, par, all) == 0);
    free(serial);
    free(par);
    r3d_dcm_close(f);
}

/* ---- real files: every transfer syntax of one image agrees ------------------------ */

static uint8_t *decode_file(const char *rel, r3d_dcm_pixinfo *p, size_t *n, r3d_error *err)
{
    char path[1024];
    if (!test_data(rel, path, sizeof path))
        return NULL;
    r3d_dcm_file *f = r3d_dcm_open(path, 0, err);
    if (!f)
        return NULL;
    uint8_t *out = NULL;
    if (r3d_dcm_pixinfo_get(f, p, err) == R3D_OK) {
        size_t fb = r3d_dcm_frame_bytes(p);
        *n = fb * (size_t)p->frames;
        out = malloc(*n);
        for (int k = 0; k < p->frames; k++)
            if (r3d_dcm_decode_frame(f, p, k, out + (size_t)k * fb, fb, err) != R3D_OK) {
                free(out);
                out = NULL;
                break;
            }
    }
    r3d_dcm_close(f);
    return out;
}

static void test_lossless_syntaxes_equal_uncompressed_twin(void)
{
    static const char *ct = "dicom/cornerstone_wado/testImages/CTImage.dcm_";
    static const char *ct_ts[] = {
        "LittleEndianImplicitTransferSyntax_1.2.840.10008.1.2.dcm",
        "BigEndianExplicitTransferSyntax_1.2.840.10008.1.2.2.dcm",
        "DeflatedExplicitVRLittleEndianTransferSyntax_1.2.840.10008.1.2.1.99.dcm",
        "RLELosslessTransferSyntax_1.2.840.10008.1.2.5.dcm",
        "JPEGProcess14TransferSyntax_1.2.840.10008.1.2.4.57.dcm",
        "JPEGProcess14SV1TransferSyntax_1.2.840.10008.1.2.4.70.dcm",
        "JPEGLSLosslessTransferSyntax_1.2.840.10008.1.2.4.80.dcm",
        "JPEG2000LosslessOnlyTransferSyntax_1.2.840.10008.1.2.4.90.dcm",
    };
    struct {
        const char *ref, *other;
    } pairs[16];
    int n = 0;
    static char names[8][256];
    for (int i = 0; i < 8; i++) {
        snprintf(names[i], sizeof names[i], "%s%s", ct, ct_ts[i]);
        pairs[n].ref = "dicom/cornerstone_wado/testImages/CTImage.dcm_LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1.dcm";
        pairs[n++].other = names[i];
    }
    pairs[n].ref = "dicom/pydicom_data/data_store/data/liver.dcm";
    pairs[n++].other = "dicom/pydicom_data/data_store/data/liver_expb.dcm";
    pairs[n].ref = "dicom/pydicom_data/data_store/data/liver.dcm";
    pairs[n++].other = "dicom/pydicom_data/data_store/data/liver_deflate.dcm";
    pairs[n].ref = "dicom/pydicom_data/data_store/data/liver_nonbyte_aligned.dcm";
    pairs[n++].other = "dicom/pydicom_data/data_store/data/liver_nonbyte_aligned_deflate.dcm";
    pairs[n].ref = "dicom/pydicom_data/data_store/data/OBXXXX1A.dcm";
    pairs[n++].other = "dicom/pydicom_data/data_store/data/OBXXXX1A_expb.dcm";
    pairs[n].ref = "dicom/pydicom_data/data_store/data/SC_rgb_32bit_2frame.dcm";
    pairs[n++].other = "dicom/pydicom_data/data_store/data/SC_rgb_expb_32bit_2frame.dcm";
    int compared = 0;
    for (int i = 0; i < n; i++) {
        r3d_dcm_pixinfo pa, pb;
        size_t na = 0, nb = 0;
        r3d_error ea = R3D_ERROR_INIT, eb = R3D_ERROR_INIT;
        uint8_t *a = decode_file(pairs[i].ref, &pa, &na, &ea);
        uint8_t *b = decode_file(pairs[i].other, &pb, &nb, &eb);
        if (!a || !b) {
            if (eb.code == R3D_EUNSUPPORTED) {
                fprintf(stderr, "  skip %s: %s\n", pairs[i].other, eb.msg);
            } else if (ea.code || eb.code) {
                fprintf(stderr, "  %s: %s%s\n", pairs[i].other, ea.msg, eb.msg);
                CHECK(0);
            }
        } else {
            compared++;
            CHECK_INT(na, nb);
            if (na != nb || memcmp(a, b, na) != 0) {
                fprintf(stderr, "  differs: %s\n", pairs[i].other);
                CHECK(0);
            }
        }
        free(a);
        free(b);
    }
    if (compared == 0)
        SKIP("no twin files in ../shared/data/dicom");
}

/* One frame split over several fragments without an offset table. */
static void test_fragmented_jpeg_without_bot(void)
{
    r3d_dcm_pixinfo p;
    size_t n = 0;
    r3d_error err = R3D_ERROR_INIT;
    char path[1024];
    if (!test_data("dicom/cornerstone_wado/testImages/CT0012.fragmented_no_bot_jpeg_baseline.51.dcm",
                   path, sizeof path))
        SKIP("no CT0012.fragmented_no_bot_jpeg_baseline.51.dcm");
    uint8_t *v = decode_file("dicom/cornerstone_wado/testImages/"
                             "CT0012.fragmented_no_bot_jpeg_baseline.51.dcm",
                             &p, &n, &err);
    if (!v && err.code == R3D_EUNSUPPORTED)
        SKIP("codec: %s", err.msg);
    CHECK(v != NULL);
    if (!v)
        fprintf(stderr, "  %s\n", err.msg);
    free(v);
}

int main(void)
{
    RUN(test_signed_12_bit_is_sign_extended_past_junk_high_bits);
    RUN(test_unsigned_values_are_masked_to_bits_stored);
    RUN(test_big_endian_16_and_32_bit_are_swapped);
    RUN(test_8_bit_ow_in_big_endian_is_word_swapped);
    RUN(test_1_bit_frames_are_not_byte_aligned);
    RUN(test_planar_rgb_is_interleaved);
    RUN(test_ybr_full_and_422_become_rgb);
    RUN(test_palette_color_expands_to_rgb);
    RUN(test_segmented_palette_expands);
    RUN(test_float_and_double_pixel_data);
    RUN(test_encapsulated_frames_map_to_fragments);
    RUN(test_extended_offset_table_is_used);
    RUN(test_more_fragments_than_frames_without_markers_is_refused);
    RUN(test_deflated_image_frames_inflate);
    RUN(test_impossible_headers_give_clear_errors);
    RUN(test_decode_arguments_are_checked);
    RUN(test_concurrent_decoding_matches_serial);
    RUN(test_lossless_syntaxes_equal_uncompressed_twin);
    RUN(test_fragmented_jpeg_without_bot);
    return CHECK_DONE("test_dicom_pixels");
}

/* test_dicom_parse.c - the DICOM reader (src/io/dicom/parse.c, dict.c).
 *
 * Synthetic data sets built byte by byte (dcm_build.h) cover every encoding
 * and length form, nested and undefined-length sequences, UN sequences,
 * private elements, deflate, files without meta, truncation at every byte;
 * the broken files in tests/data/bad/dicom_* each check their code and
 * message; then every file under ../shared/data/dicom is parsed (DICOM files
 * must parse or fail with a clear message; the failures are listed), and the
 * 141-file chest CT is timed header-only and in full.
 *
 *   test_dicom_parse --write-seeds DIR   rewrites the fuzz corpus seeds
 *   test_dicom_parse --write-bad DIR     rewrites tests/data/bad/dicom_*
 */
#include "check.h"
#include "dcm_build.h"
#include "r3d/dicom.h"

#include <dirent.h>
#include <sys/stat.h>
#include <time.h>

#define T(g, e) R3D_TAG(g, e)

static r3d_dcm_file *parse_copy(const dbuf *d, unsigned flags, r3d_error *err)
{
    uint8_t *c = malloc(d->n ? d->n : 1);
    memcpy(c, d->b, d->n);
    return r3d_dcm_parse(c, d->n, 1, "test.dcm", flags, err);
}

/* A small CT-like body in the given encoding, ending in 4x4 16-bit pixels. */
static void ct_body(dbuf *d)
{
    db_str(d, 0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.2");
    db_str(d, 0x0008, 0x0060, "CS", "CT");
    db_str(d, 0x0018, 0x0050, "DS", "1.25");
    db_str(d, 0x0020, 0x0032, "DS", "-1.0\\0\\ 12.5 ");
    db_str(d, 0x0020, 0x0037, "DS", "1\\0\\0\\0\\1\\0");
    db_image(d, 4, 4, 1, 16, 12, 1, "MONOCHROME2", 0);
    db_str(d, 0x0028, 0x1052, "DS", "-1024");
    db_str(d, 0x0028, 0x1053, "DS", "1");
    uint8_t px[32];
    for (int i = 0; i < 16; i++) {
        px[2 * i + (d->big ? 1 : 0)] = (uint8_t)i;
        px[2 * i + (d->big ? 0 : 1)] = 0;
    }
    db_el(d, 0x7FE0, 0x0010, "OW", px, 32);
}

static void check_ct(const r3d_dcm_file *f)
{
    const r3d_dcm_item *r = r3d_dcm_root(f);
    char s[64];
    double v[8];
    CHECK(r3d_dcm_str(f, r, T(0x0008, 0x0060), -1, s, sizeof s));
    CHECK_STR(s, "CT");
    CHECK_INT(r3d_dcm_num(f, r, T(0x0020, 0x0032), v, 8), 3);
    CHECK_NEAR(v[0], -1.0, 0);
    CHECK_NEAR(v[2], 12.5, 0);
    CHECK(r3d_dcm_str(f, r, T(0x0020, 0x0032), 2, s, sizeof s));
    CHECK_STR(s, "12.5");
    CHECK(!r3d_dcm_str(f, r, T(0x0020, 0x0032), 3, s, sizeof s));
    CHECK_NEAR(r3d_dcm_num1(f, r, T(0x0028, 0x0010), -1), 4, 0);
    CHECK_NEAR(r3d_dcm_num1(f, r, T(0x0028, 0x0101), -1), 12, 0);
    CHECK_NEAR(r3d_dcm_num1(f, r, T(0x0028, 0x1052), 0), -1024, 0);
    CHECK_NEAR(r3d_dcm_num1(f, r, T(0x0028, 0x9999), 7), 7, 0);
    CHECK(r3d_dcm_str(f, r, T(0x0028, 0x0011), -1, s, sizeof s));
    CHECK_STR(s, "4");
    const r3d_dcm_el *px = r3d_dcm_find(r, T(0x7FE0, 0x0010));
    CHECK(px && px->len == 32 && px->val);
}

static void test_explicit_le_part10_values(void)
{
    dbuf b, f;
    db_init(&b, 1, 0);
    ct_body(&b);
    db_part10(&f, "1.2.840.10008.1.2.1", b.b, b.n);
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *d = parse_copy(&f, 0, &err);
    CHECK(d != NULL);
    if (d) {
        CHECK_STR(r3d_dcm_transfer_syntax(d), "1.2.840.10008.1.2.1");
        CHECK_INT(r3d_dcm_big_endian(d), 0);
        CHECK(r3d_dcm_find(r3d_dcm_meta(d), T(0x0002, 0x0010)) != NULL);
        check_ct(d);
        r3d_dcm_close(d);
    } else {
        fprintf(stderr, "  %s\n", err.msg);
    }
    free(b.b);
    free(f.b);
}

static void test_implicit_le_without_meta_is_guessed(void)
{
    dbuf b;
    db_init(&b, 0, 0);
    ct_body(&b);
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *d = parse_copy(&b, 0, &err);
    CHECK(d != NULL);
    if (d) {
        CHECK_STR(r3d_dcm_transfer_syntax(d), "");
        check_ct(d);
        /* VR comes from the dictionary in implicit files */
        CHECK_INT(r3d_dcm_find(r3d_dcm_root(d), T(0x0028, 0x0010))->vr, R3D_VR('U', 'S'));
        r3d_dcm_close(d);
    }
    free(b.b);
}

static void test_explicit_le_and_be_without_meta_are_guessed(void)
{
    for (int big = 0; big <= 1; big++) {
        dbuf b;
        db_init(&b, 1, big);
        ct_body(&b);
        r3d_error err = R3D_ERROR_INIT;
        r3d_dcm_file *d = parse_copy(&b, 0, &err);
        CHECK(d != NULL);
        if (d) {
            CHECK_INT(r3d_dcm_big_endian(d), big);
            check_ct(d);
            r3d_dcm_close(d);
        }
        free(b.b);
    }
}

static void test_big_endian_binary_values_are_swapped(void)
{
    dbuf b, f;
    db_init(&b, 1, 1);
    ct_body(&b);
    db_part10(&f, "1.2.840.10008.1.2.2", b.b, b.n);
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *d = parse_copy(&f, 0, &err);
    CHECK(d != NULL);
    if (d) {
        CHECK_INT(r3d_dcm_big_endian(d), 1);
        check_ct(d);
        /* meta stays little endian */
        CHECK_NEAR(r3d_dcm_num1(d, r3d_dcm_meta(d), T(0x0002, 0x0000), 0), 98, 0);
        r3d_dcm_close(d);
    }
    free(b.b);
    free(f.b);
}

static void test_every_vr_and_length_form(void)
{
    dbuf b;
    db_init(&b, 1, 0);
    float fl[2] = {1.5f, -2.25f};
    double fd = 3.125;
    int16_t ss = -7;
    int32_t sl = -100000;
    uint32_t ul = 4000000000u;
    int64_t sv = -5000000000LL;
    uint64_t uv = 9000000000ULL;
    uint16_t at[2] = {0x0028, 0x0010};
    db_str(&b, 0x0008, 0x0005, "CS", "ISO_IR 100");
    db_el(&b, 0x0018, 0x1310, "US", "\x01\x00\x02\x00\x03\x00\x04\x00", 8);
    db_el(&b, 0x0018, 0x9087, "FD", &fd, 8);
    db_el(&b, 0x0018, 0x9089, "FL", fl, 8); /* VR from file wins over dictionary */
    db_el(&b, 0x0020, 0x9157, "UL", &ul, 4);
    db_el(&b, 0x0028, 0x0009, "AT", at, 4);
    db_el(&b, 0x0028, 0x0106, "SS", &ss, 2);
    db_el(&b, 0x0028, 0x0107, "SL", &sl, 4);
    db_el(&b, 0x0029, 0x0010, "LO", "SIEMENS CSA HEADER", 18);
    db_el(&b, 0x0029, 0x1010, "OB", "\x01\x02\x03", 3); /* odd length tolerated */
    db_el(&b, 0x0029, 0x1011, "UT", "long text\\with backslash ", 24);
    db_el(&b, 0x0029, 0x1012, "UC", "abc\\def ", 8);
    db_el(&b, 0x0029, 0x1013, "UR", "http://x ", 9);
    db_el(&b, 0x0029, 0x1014, "OF", fl, 8);
    db_el(&b, 0x0029, 0x1015, "OD", &fd, 8);
    db_el(&b, 0x0029, 0x1016, "OL", &ul, 4);
    db_el(&b, 0x0029, 0x1017, "SV", &sv, 8);
    db_el(&b, 0x0029, 0x1018, "UV", &uv, 8);
    db_el(&b, 0x0029, 0x1019, "OV", &uv, 8);
    db_el(&b, 0x0029, 0x101A, "UN", "\x05\x00", 2);
    db_u16(&b, 0x0029), db_u16(&b, 0x101B); /* unknown VR: reserved 0 then 4-byte length */
    db_put(&b, "XZ\0\0\x04\0\0\0abcd", 12);
    db_el(&b, 0x0029, 0x101C, "ST", "short", 5);
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *d = parse_copy(&b, 0, &err);
    CHECK(d != NULL);
    if (!d) {
        fprintf(stderr, "  %s\n", err.msg);
        free(b.b);
        return;
    }
    const r3d_dcm_item *r = r3d_dcm_root(d);
    double v[8];
    char s[64];
    CHECK_INT(r3d_dcm_num(d, r, T(0x0018, 0x1310), v, 8), 4);
    CHECK_NEAR(v[3], 4, 0);
    CHECK_NEAR(r3d_dcm_num1(d, r, T(0x0018, 0x9087), 0), 3.125, 0);
    CHECK_INT(r3d_dcm_num(d, r, T(0x0018, 0x9089), v, 8), 2);
    CHECK_NEAR(v[1], -2.25, 0);
    CHECK_NEAR(r3d_dcm_num1(d, r, T(0x0020, 0x9157), 0), 4000000000.0, 0);
    CHECK_NEAR(r3d_dcm_num1(d, r, T(0x0028, 0x0009), 0), (double)T(0x0028, 0x0010), 0);
    CHECK_NEAR(r3d_dcm_num1(d, r, T(0x0028, 0x0106), 0), -7, 0);
    CHECK_NEAR(r3d_dcm_num1(d, r, T(0x0028, 0x0107), 0), -100000, 0);
    CHECK_INT(r3d_dcm_find(r, T(0x0029, 0x1010))->len, 3);
    CHECK(r3d_dcm_str(d, r, T(0x0029, 0x1011), -1, s, sizeof s));
    CHECK_STR(s, "long text\\with backslash");
    CHECK(r3d_dcm_str(d, r, T(0x0029, 0x1012), 1, s, sizeof s));
    CHECK_STR(s, "def");
    CHECK_NEAR(r3d_dcm_num1(d, r, T(0x0029, 0x1014), 0), 1.5, 0);
    CHECK_NEAR(r3d_dcm_num1(d, r, T(0x0029, 0x1015), 0), 3.125, 0);
    CHECK_NEAR(r3d_dcm_num1(d, r, T(0x0029, 0x1017), 0), -5000000000.0, 0);
    CHECK_NEAR(r3d_dcm_num1(d, r, T(0x0029, 0x1018), 0), 9000000000.0, 0);
    CHECK_INT(r3d_dcm_find(r, T(0x0029, 0x101B))->len, 4);
    CHECK(r3d_dcm_str(d, r, T(0x0029, 0x101C), -1, s, sizeof s));
    CHECK_STR(s, "short");
    CHECK(r3d_dcm_str(d, r, T(0x0029, 0x0010), -1, s, 8)); /* truncates, terminates */
    CHECK_STR(s, "SIEMENS");
    r3d_dcm_close(d);
    free(b.b);
}

/* SQ (defined) > item (defined) > SQ (undefined) > item (undefined) > US. */
static void nested(dbuf *d)
{
    dbuf in;
    db_init(&in, d->explicit_vr, d->big);
    db_hdr(&in, 0x0020, 0x9113, "SQ", 0xFFFFFFFF); /* PlanePositionSequence */
    db_item(&in, 0xFFFFFFFF);
    db_str(&in, 0x0020, 0x0032, "DS", "1\\2\\3");
    db_item_end(&in);
    db_item(&in, 0xFFFFFFFF);
    db_str(&in, 0x0020, 0x0032, "DS", "4\\5\\6");
    db_item_end(&in);
    db_seq_end(&in);
    db_hdr(d, 0x5200, 0x9230, "SQ", (uint32_t)(in.n + 8)); /* PerFrameFunctionalGroups */
    db_item(d, (uint32_t)in.n);
    db_put(d, in.b, in.n);
    free(in.b);
}

static void test_nested_sequences_defined_and_undefined(void)
{
    for (int mode = 0; mode < 3; mode++) {
        dbuf b;
        db_init(&b, mode != 1, mode == 2);
        db_str(&b, 0x0008, 0x0060, "CS", "MR");
        nested(&b);
        db_str(&b, 0x5200, 0x9231, "CS", "AFTER"); /* not a real tag: after the SQ */
        r3d_error err = R3D_ERROR_INIT;
        r3d_dcm_file *d = parse_copy(&b, 0, &err);
        CHECK(d != NULL);
        if (d) {
            const r3d_dcm_item *r = r3d_dcm_root(d);
            const r3d_dcm_item *fg = r3d_dcm_seq_item(r, T(0x5200, 0x9230), 0);
            CHECK(fg != NULL);
            const r3d_dcm_item *pp1 = r3d_dcm_seq_item(fg, T(0x0020, 0x9113), 1);
            CHECK(pp1 != NULL);
            double v[3] = {0};
            CHECK_INT(r3d_dcm_num(d, pp1, T(0x0020, 0x0032), v, 3), 3);
            CHECK_NEAR(v[2], 6, 0);
            CHECK(r3d_dcm_seq_item(fg, T(0x0020, 0x9113), 2) == NULL);
            CHECK(r3d_dcm_find(r, T(0x5200, 0x9231)) != NULL);
            CHECK_INT(r3d_dcm_find(r, T(0x5200, 0x9230))->vr, R3D_VR('S', 'Q'));
            r3d_dcm_close(d);
        } else {
            fprintf(stderr, "  mode %d: %s\n", mode, err.msg);
        }
        free(b.b);
    }
}

static void deep(dbuf *b, int levels)
{
    db_str(b, 0x0008, 0x0060, "CS", "MR");
    for (int i = 0; i < levels; i++) {
        db_hdr(b, 0x0040, 0x0275, "SQ", 0xFFFFFFFF);
        db_item(b, 0xFFFFFFFF);
    }
    for (int i = 0; i < levels; i++) {
        db_item_end(b);
        db_seq_end(b);
    }
}

static void test_nesting_depth_is_limited(void)
{
    dbuf b;
    db_init(&b, 1, 0);
    deep(&b, 64);
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *d = parse_copy(&b, 0, &err);
    CHECK(d != NULL);
    r3d_dcm_close(d);
    free(b.b);
    db_init(&b, 1, 0);
    deep(&b, 200);
    d = parse_copy(&b, 0, &err);
    CHECK(d == NULL);
    CHECK_INT(err.code, R3D_EFORMAT);
    CHECK_CONTAINS(err.msg, "nested deeper than 64 levels");
    free(b.b);
}

static void test_un_undefined_length_is_an_implicit_sequence(void)
{
    dbuf b, in;
    db_init(&b, 1, 0);
    db_init(&in, 0, 0); /* CP-246: content implicit VR LE */
    db_item(&in, 0xFFFFFFFF);
    db_str(&in, 0x0008, 0x0100, NULL, "T-12345");
    db_item_end(&in);
    db_seq_end(&in);
    db_str(&b, 0x0008, 0x0060, "CS", "MR");
    db_hdr(&b, 0x0008, 0x2218, "UN", 0xFFFFFFFF); /* AnatomicRegionSequence */
    db_put(&b, in.b, in.n);
    /* UN with a defined length whose dictionary VR is SQ */
    db_hdr(&b, 0x0008, 0x2228, "UN", (uint32_t)in.n);
    db_put(&b, in.b, in.n);
    db_str(&b, 0x0010, 0x0040, "CS", "O");
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *d = parse_copy(&b, 0, &err);
    CHECK(d != NULL);
    if (d) {
        const r3d_dcm_item *r = r3d_dcm_root(d);
        char s[32];
        for (int k = 0; k < 2; k++) {
            const r3d_dcm_item *it = r3d_dcm_seq_item(r, k ? T(0x0008, 0x2228) : T(0x0008, 0x2218), 0);
            CHECK(it != NULL);
            CHECK(it && r3d_dcm_str(d, it, T(0x0008, 0x0100), -1, s, sizeof s));
            CHECK_STR(s, "T-12345");
        }
        CHECK(r3d_dcm_find(r, T(0x0010, 0x0040)) != NULL);
        r3d_dcm_close(d);
    } else {
        fprintf(stderr, "  %s\n", err.msg);
    }
    free(b.b);
    free(in.b);
}

static void test_private_elements_opaque_or_sequences(void)
{
    dbuf b;
    db_init(&b, 0, 0); /* implicit: private VRs unknown */
    db_str(&b, 0x0008, 0x0060, NULL, "MR");
    db_str(&b, 0x0009, 0x0010, NULL, "ACME 1.0");
    db_el(&b, 0x0009, 0x1001, NULL, "\xff\xfe\x00\x01", 4);   /* opaque bytes */
    db_hdr(&b, 0x0009, 0x1002, NULL, 0xFFFFFFFF);            /* undefined: a sequence */
    db_item(&b, 0xFFFFFFFF);
    db_str(&b, 0x0009, 0x1003, NULL, "inner");
    db_item_end(&b);
    db_seq_end(&b);
    dbuf it;
    db_init(&it, 0, 0);
    db_item(&it, 12);
    db_str(&it, 0x0009, 0x1005, NULL, "abcd");
    db_el(&b, 0x0009, 0x1004, NULL, it.b, (uint32_t)it.n);   /* defined, starts with an item */
    db_str(&b, 0x0010, 0x0040, NULL, "O");
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *d = parse_copy(&b, 0, &err);
    CHECK(d != NULL);
    if (d) {
        const r3d_dcm_item *r = r3d_dcm_root(d);
        CHECK_INT(r3d_dcm_find(r, T(0x0009, 0x1001))->len, 4);
        CHECK_INT(r3d_dcm_find(r, T(0x0009, 0x1002))->n_items, 1);
        CHECK_INT(r3d_dcm_find(r, T(0x0009, 0x1004))->n_items, 1);
        char s[16];
        CHECK(r3d_dcm_str(d, r3d_dcm_seq_item(r, T(0x0009, 0x1004), 0), T(0x0009, 0x1005), -1, s,
                          sizeof s));
        CHECK_STR(s, "abcd");
        CHECK(r3d_dcm_find(r, T(0x0010, 0x0040)) != NULL);
        r3d_dcm_close(d);
    } else {
        fprintf(stderr, "  %s\n", err.msg);
    }
    free(b.b);
    free(it.b);
}

static void test_deflated_body_is_inflated(void)
{
    dbuf b, f;
    db_init(&b, 1, 0);
    ct_body(&b);
    uint8_t z[4096];
    size_t zn = db_deflate(b.b, b.n, z, sizeof z);
    db_part10(&f, "1.2.840.10008.1.2.1.99", z, zn);
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *d = parse_copy(&f, 0, &err);
    CHECK(d != NULL);
    if (d) {
        check_ct(d);
        r3d_dcm_close(d);
    } else {
        fprintf(stderr, "  %s\n", err.msg);
    }
    /* Garbage instead of deflate data: a clear error. */
    memset(f.b + f.n - zn, 0xFF, zn);
    d = parse_copy(&f, 0, &err);
    CHECK(d == NULL);
    CHECK_CONTAINS(err.msg, "deflate");
    free(b.b);
    free(f.b);
}

static void test_declared_explicit_but_written_implicit(void)
{
    dbuf b, f;
    db_init(&b, 0, 0);
    ct_body(&b);
    db_part10(&f, "1.2.840.10008.1.2.1", b.b, b.n);
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *d = parse_copy(&f, 0, &err);
    CHECK(d != NULL);
    if (d) {
        check_ct(d);
        r3d_dcm_close(d);
    }
    free(b.b);
    free(f.b);
}

static void test_header_only_stops_at_pixel_data(void)
{
    dbuf b, f;
    db_init(&b, 1, 0);
    ct_body(&b);
    db_str(&b, 0xFFFC, 0xFFFC, "OB", "pad!"); /* after the pixels */
    db_part10(&f, "1.2.840.10008.1.2.1", b.b, b.n);
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *d = parse_copy(&f, R3D_DCM_HEADER_ONLY, &err);
    CHECK(d != NULL);
    if (d) {
        const r3d_dcm_el *px = r3d_dcm_find(r3d_dcm_root(d), T(0x7FE0, 0x0010));
        CHECK(px && px->val == NULL && px->len == 32);
        CHECK(r3d_dcm_find(r3d_dcm_root(d), T(0xFFFC, 0xFFFC)) == NULL);
        r3d_dcm_close(d);
    }
    d = parse_copy(&f, 0, &err);
    CHECK(d && r3d_dcm_find(r3d_dcm_root(d), T(0xFFFC, 0xFFFC)) != NULL);
    r3d_dcm_close(d);
    free(b.b);
    free(f.b);
}

static void test_encapsulated_fragments_and_bot(void)
{
    dbuf b, f;
    db_init(&b, 1, 0);
    db_image(&b, 2, 2, 1, 8, 8, 0, "MONOCHROME2", 2);
    db_hdr(&b, 0x7FE0, 0x0010, "OB", 0xFFFFFFFF);
    db_item(&b, 8);
    db_u32(&b, 0);
    db_u32(&b, 12);
    db_item(&b, 4);
    db_put(&b, "\x01\x02\x03\x04", 4);
    db_item(&b, 6);
    db_put(&b, "\x05\x06\x07\x08\x09\x0a", 6);
    db_seq_end(&b);
    db_part10(&f, "1.2.840.10008.1.2.1.98", b.b, b.n);
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *d = parse_copy(&f, 0, &err);
    CHECK(d != NULL);
    if (d) {
        const r3d_dcm_el *px = r3d_dcm_find(r3d_dcm_root(d), T(0x7FE0, 0x0010));
        CHECK_INT(px->len, R3D_DCM_UNDEFINED);
        CHECK_INT(px->n_frag, 2);
        CHECK_INT(px->bot_len, 8);
        CHECK_INT(px->frag_len[1], 6);
        CHECK_INT(px->frag[1][0], 5);
        r3d_dcm_close(d);
    } else {
        fprintf(stderr, "  %s\n", err.msg);
    }
    free(b.b);
    free(f.b);
}

static void test_out_of_order_tags_are_sorted(void)
{
    dbuf b;
    db_init(&b, 1, 0);
    db_str(&b, 0x0008, 0x0060, "CS", "CT");
    db_str(&b, 0x0020, 0x0013, "IS", "7");
    db_str(&b, 0x0010, 0x0040, "CS", "F");
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *d = parse_copy(&b, 0, &err);
    CHECK(d != NULL);
    if (d) {
        CHECK_NEAR(r3d_dcm_num1(d, r3d_dcm_root(d), T(0x0020, 0x0013), 0), 7, 0);
        CHECK(r3d_dcm_find(r3d_dcm_root(d), T(0x0010, 0x0040)) != NULL);
        r3d_dcm_close(d);
    }
    free(b.b);
}

static void test_num_tolerates_spaces_and_garbage(void)
{
    dbuf b;
    db_init(&b, 1, 0);
    db_str(&b, 0x0018, 0x0050, "DS", " 2.5 ");
    db_str(&b, 0x0020, 0x0032, "DS", "-1.0\\0\\0");
    db_str(&b, 0x0020, 0x0037, "DS", "1\\\\x\\4");
    db_str(&b, 0x0028, 0x0008, "IS", "1A");
    db_str(&b, 0x0028, 0x0030, "DS", "");
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *d = parse_copy(&b, 0, &err);
    CHECK(d != NULL);
    if (!d)
        return;
    const r3d_dcm_item *r = r3d_dcm_root(d);
    double v[6];
    CHECK_NEAR(r3d_dcm_num1(d, r, T(0x0018, 0x0050), 0), 2.5, 0);
    CHECK_INT(r3d_dcm_num(d, r, T(0x0020, 0x0032), v, 6), 3);
    CHECK_NEAR(v[0], -1, 0);
    CHECK_INT(r3d_dcm_num(d, r, T(0x0020, 0x0037), v, 6), 4); /* empty and "x" keep places */
    CHECK(isnan(v[1]) && isnan(v[2]));
    CHECK_NEAR(v[3], 4, 0);
    CHECK_NEAR(r3d_dcm_num1(d, r, T(0x0028, 0x0008), 0), 1, 0);
    CHECK_INT(r3d_dcm_num(d, r, T(0x0028, 0x0030), v, 6), 0);
    CHECK_INT(r3d_dcm_num(d, r, T(0x0028, 0x0030), v, 0), 0);
    r3d_dcm_close(d);
    free(b.b);
}

static void test_not_dicom_is_recognised(void)
{
    const char *texts[] = {"hello, world: this is plainly a text file\n", "\x5c\x01\x00\x00nifti",
                           "\xff\xd8\xff\xe0 jpeg"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(texts[i]);
        uint8_t *c = malloc(n);
        memcpy(c, texts[i], n);
        r3d_error err = R3D_ERROR_INIT;
        r3d_dcm_file *d = r3d_dcm_parse(c, n, 1, "x.txt", 0, &err);
        CHECK(d == NULL);
        CHECK(r3d_dcm_error_is_not_dicom(&err));
        CHECK_CONTAINS(err.msg, "x.txt: not a DICOM file");
    }
    r3d_error err = R3D_ERROR_INIT;
    CHECK(r3d_dcm_parse(NULL, 0, 0, "empty", 0, &err) == NULL);
    CHECK(r3d_dcm_error_is_not_dicom(&err));
    /* a DICOM file cut short is not "not DICOM" */
    dbuf b;
    db_init(&b, 1, 0);
    ct_body(&b);
    uint8_t *c = malloc(b.n);
    memcpy(c, b.b, b.n - 5);
    CHECK(r3d_dcm_parse(c, b.n - 5, 1, "cut.dcm", 0, &err) == NULL);
    CHECK(!r3d_dcm_error_is_not_dicom(&err));
    free(b.b);
}

static void test_truncated_value_message_names_element_and_offset(void)
{
    dbuf b;
    db_init(&b, 1, 0);
    db_str(&b, 0x0008, 0x0060, "CS", "CT");
    db_hdr(&b, 0x0028, 0x0010, "OB", 4000);
    db_put(&b, "0123456789AB", 12);
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *d = parse_copy(&b, 0, &err);
    CHECK(d == NULL);
    CHECK_INT(err.code, R3D_EFORMAT);
    CHECK_CONTAINS(err.msg, "test.dcm: element (0028,0010) at byte 10 has length 4000 but only 12 "
                            "bytes remain");
    free(b.b);
}

/* Every prefix of a small file: an error or a data set, never a crash (the
 * sanitizer build turns any overread into a failure). */
static void test_truncation_at_every_byte_never_crashes(void)
{
    dbuf b, f;
    db_init(&b, 1, 0);
    ct_body(&b);
    nested(&b);
    db_part10(&f, "1.2.840.10008.1.2.1", b.b, b.n);
    int ok = 0, failed = 0;
    for (size_t cut = 0; cut < f.n; cut++) {
        uint8_t *c = malloc(cut ? cut : 1);
        memcpy(c, f.b, cut);
        r3d_error err = R3D_ERROR_INIT;
        r3d_dcm_file *d = r3d_dcm_parse(c, cut, 1, "cut.dcm", 0, &err);
        if (d) {
            ok++;
            r3d_dcm_close(d);
        } else {
            failed++;
            if (err.code != R3D_EFORMAT || !strstr(err.msg, "cut.dcm: "))
                CHECK_CONTAINS(err.msg, "cut.dcm: ");
        }
    }
    CHECK(failed > (int)f.n / 2);
    free(b.b);
    free(f.b);
}

/* ---- broken files in tests/data/bad ------------------------------------------- */

typedef struct bad_case {
    const char *name;
    r3d_status code;
    const char *msg;
    int decode; /* error expected from pixinfo/decode rather than parse */
} bad_case;

static const bad_case BAD[] = {
    {"dicom_truncated_element_header.dcm", R3D_EFORMAT, "needs at least 8 bytes but only 5 remain", 0},
    {"dicom_length_beyond_file.dcm", R3D_EFORMAT, "element (0028,0010) at byte 252 has length 4000 but only 12 bytes remain", 0},
    {"dicom_bad_item_delimiter.dcm", R3D_EFORMAT, "expected an item tag (FFFE,E000)", 0},
    {"dicom_missing_item_delimiter.dcm", R3D_EFORMAT, "has no item delimiter (FFFE,E00D)", 0},
    {"dicom_missing_sequence_delimiter.dcm", R3D_EFORMAT, "without a sequence delimiter (FFFE,E0DD)", 0},
    {"dicom_nesting_too_deep.dcm", R3D_EFORMAT, "nested deeper than 64 levels", 0},
    {"dicom_fragment_beyond_file.dcm", R3D_EFORMAT, "pixel data fragment at byte", 0},
    {"dicom_deflate_garbage.dcm", R3D_EFORMAT, "is not valid deflate data", 0},
    {"dicom_not_dicom.dcm", R3D_EFORMAT, "not a DICOM file", 0},
    {"dicom_rows_zero.dcm", R3D_EFORMAT, "impossible image size Rows (0028,0010) = 0", 1},
    {"dicom_huge_dimensions.dcm", R3D_EFORMAT, "impossible dimensions: 65535 x 65535", 1},
    {"dicom_bits_stored_above_allocated.dcm", R3D_EFORMAT, "BitsStored (0028,0101) = 20 does not fit BitsAllocated 16", 1},
    {"dicom_pixel_data_too_short.dcm", R3D_EFORMAT, "has 100 bytes but 16 x 16 x 1 samples x 1 frames of 16 bits need 512", 1},
    {"dicom_unknown_transfer_syntax.dcm", R3D_EUNSUPPORTED, "unknown transfer syntax UID 1.2.3.4.5", 1},
};

static void write_bad(const char *dir)
{
    char p[1024];
    dbuf b, f;
#define OUT(name, buf, len)                                                   \
    do {                                                                      \
        snprintf(p, sizeof p, "%s/%s", dir, name);                            \
        if (!db_write(p, buf, len))                                           \
            fprintf(stderr, "cannot write %s\n", p);                          \
    } while (0)
    /* element header cut after 5 bytes */
    db_init(&b, 1, 0);
    db_str(&b, 0x0008, 0x0060, "CS", "CT");
    db_put(&b, "\x28\x00\x10\x00U", 5);
    db_part10(&f, "1.2.840.10008.1.2.1", b.b, b.n);
    OUT("dicom_truncated_element_header.dcm", f.b, f.n);
    free(b.b), free(f.b);
    /* value length beyond the end of the file */
    db_init(&b, 1, 0);
    db_str(&b, 0x0008, 0x0060, "CS", "CT");
    db_hdr(&b, 0x0028, 0x0010, "OB", 4000);
    db_put(&b, "0123456789AB", 12);
    db_part10(&f, "1.2.840.10008.1.2.1", b.b, b.n);
    OUT("dicom_length_beyond_file.dcm", f.b, f.n);
    free(b.b), free(f.b);
    /* a sequence whose second entry is not an item */
    db_init(&b, 1, 0);
    db_hdr(&b, 0x0008, 0x1140, "SQ", 0xFFFFFFFF);
    db_item(&b, 0);
    db_hdr(&b, 0xFFFE, 0xE00D + 0x100, NULL, 0);
    db_seq_end(&b);
    db_part10(&f, "1.2.840.10008.1.2.1", b.b, b.n);
    OUT("dicom_bad_item_delimiter.dcm", f.b, f.n);
    free(b.b), free(f.b);
    /* an undefined-length item that runs to the end of a defined sequence */
    db_init(&b, 1, 0);
    {
        dbuf in;
        db_init(&in, 1, 0);
        db_item(&in, 0xFFFFFFFF);
        db_str(&in, 0x0008, 0x1150, "UI", "1.2.3");
        db_hdr(&b, 0x0008, 0x1140, "SQ", (uint32_t)in.n);
        db_put(&b, in.b, in.n);
        free(in.b);
    }
    db_str(&b, 0x0008, 0x1160, "IS", "1");
    db_part10(&f, "1.2.840.10008.1.2.1", b.b, b.n);
    OUT("dicom_missing_item_delimiter.dcm", f.b, f.n);
    free(b.b), free(f.b);
    /* undefined-length sequence running to the end of the file */
    db_init(&b, 1, 0);
    db_hdr(&b, 0x0008, 0x1140, "SQ", 0xFFFFFFFF);
    db_item(&b, 0);
    db_part10(&f, "1.2.840.10008.1.2.1", b.b, b.n);
    OUT("dicom_missing_sequence_delimiter.dcm", f.b, f.n);
    free(b.b), free(f.b);
    /* sequences nested 100 deep */
    db_init(&b, 1, 0);
    deep(&b, 100);
    db_part10(&f, "1.2.840.10008.1.2.1", b.b, b.n);
    OUT("dicom_nesting_too_deep.dcm", f.b, f.n);
    free(b.b), free(f.b);
    /* encapsulated fragment longer than the file */
    db_init(&b, 1, 0);
    db_image(&b, 8, 8, 1, 8, 8, 0, "MONOCHROME2", 0);
    db_hdr(&b, 0x7FE0, 0x0010, "OB", 0xFFFFFFFF);
    db_item(&b, 0);
    db_item(&b, 1000);
    db_put(&b, "\xff\xd8\xff\xdb", 4);
    db_part10(&f, "1.2.840.10008.1.2.4.50", b.b, b.n);
    OUT("dicom_fragment_beyond_file.dcm", f.b, f.n);
    free(b.b), free(f.b);
    /* deflated transfer syntax, body not deflate */
    db_part10(&f, "1.2.840.10008.1.2.1.99", (const uint8_t *)"\xff\xff\xff\xff\xff\xff\xff\xff", 8);
    OUT("dicom_deflate_garbage.dcm", f.b, f.n);
    free(f.b);
    OUT("dicom_not_dicom.dcm", (const uint8_t *)"This is a text file, not DICOM.\n", 32);
    /* image headers with impossible values */
    struct {
        const char *name;
        int rows, cols, ba, bs, frames;
        uint32_t px;
        const char *ts;
    } img[] = {
        {"dicom_rows_zero.dcm", 0, 16, 16, 16, 0, 512, "1.2.840.10008.1.2.1"},
        {"dicom_huge_dimensions.dcm", 65535, 65535, 16, 16, 99999, 64, "1.2.840.10008.1.2.1"},
        {"dicom_bits_stored_above_allocated.dcm", 16, 16, 16, 20, 0, 512, "1.2.840.10008.1.2.1"},
        {"dicom_pixel_data_too_short.dcm", 16, 16, 16, 16, 0, 100, "1.2.840.10008.1.2.1"},
        {"dicom_unknown_transfer_syntax.dcm", 16, 16, 16, 16, 0, 512, "1.2.3.4.5"},
    };
    for (size_t i = 0; i < sizeof img / sizeof img[0]; i++) {
        db_init(&b, 1, 0);
        db_image(&b, img[i].rows, img[i].cols, 1, img[i].ba, img[i].bs, 0, "MONOCHROME2",
                 img[i].frames);
        uint8_t *z = calloc(1, img[i].px);
        db_el(&b, 0x7FE0, 0x0010, "OW", z, img[i].px);
        free(z);
        db_part10(&f, img[i].ts, b.b, b.n);
        OUT(img[i].name, f.b, f.n);
        free(b.b), free(f.b);
    }
#undef OUT
}

static void test_bad_files_give_code_and_message(void)
{
    char p[1024];
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        snprintf(p, sizeof p, "%s/data/bad/%s", R3D_TEST_SRC, BAD[i].name);
        r3d_error err = R3D_ERROR_INIT;
        r3d_dcm_file *d = r3d_dcm_open(p, 0, &err);
        r3d_status st = d ? R3D_OK : err.code;
        if (d && BAD[i].decode) {
            r3d_dcm_pixinfo pi;
            st = r3d_dcm_pixinfo_get(d, &pi, &err);
            if (st == R3D_OK) {
                size_t fb = r3d_dcm_frame_bytes(&pi);
                void *buf = malloc(fb);
                st = r3d_dcm_decode_frame(d, &pi, 0, buf, fb, &err);
                free(buf);
            }
        }
        r3d_dcm_close(d);
        if (st != BAD[i].code)
            fprintf(stderr, "  %s\n", BAD[i].name);
        CHECK_INT(st, BAD[i].code);
        CHECK_CONTAINS(err.msg, BAD[i].msg);
        CHECK_CONTAINS(err.msg, BAD[i].name); /* the file is named */
    }
}

/* ---- real files ------------------------------------------------------------------ */

typedef struct walk {
    int n, parsed, not_dicom, failed;
    char failures[8192];
    size_t used;
} walk;

static void walk_dir(const char *dir, walk *w)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d)
        return;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[2048];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (stat(p, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            walk_dir(p, w);
            continue;
        }
        w->n++;
        r3d_error err = R3D_ERROR_INIT;
        r3d_dcm_file *f = r3d_dcm_open(p, 0, &err);
        if (f) {
            w->parsed++;
            r3d_dcm_close(f);
        } else if (r3d_dcm_error_is_not_dicom(&err)) {
            w->not_dicom++;
        } else {
            w->failed++;
            /* the message must name the file and be an R3D code */
            CHECK(strstr(err.msg, p) == err.msg);
            CHECK(err.code == R3D_EFORMAT || err.code == R3D_EUNSUPPORTED);
            int k = snprintf(w->failures + w->used, sizeof w->failures - w->used, "    %s %s\n",
                             r3d_status_name(err.code), err.msg);
            if (k > 0 && (size_t)k < sizeof w->failures - w->used)
                w->used += (size_t)k;
        }
    }
    closedir(d);
}

/* Files that must parse (or be refused) exactly as listed. */
static void test_real_files_parse_or_fail_clearly(void)
{
    char dir[1024];
    if (!test_data("dicom", dir, sizeof dir))
        SKIP("no ../shared/data/dicom");
    walk w;
    memset(&w, 0, sizeof w);
    walk_dir(dir, &w);
    fprintf(stderr, "  %d files: %d parsed, %d not DICOM, %d failed%s\n%s", w.n, w.parsed,
            w.not_dicom, w.failed, w.failed ? ":" : "", w.failures);
    CHECK(w.parsed >= 410);
    /* the broken ones we know: truncated pydicom samples only */
    CHECK(w.failed <= 4);
}

static void test_known_files_are_read_as_pydicom_reads_them(void)
{
    char p[1024];
    struct {
        const char *rel;
        uint32_t tag;
        const char *value;
    } cases[] = {
        {"dicom/deb_pydicom/ExplVR_BigEndNoMeta.dcm", T(0x0008, 0x0016), "1.2.840.10008.5.1.4.1.1.481.8"},
        {"dicom/deb_pydicom/ExplVR_LitEndNoMeta.dcm", T(0x0008, 0x0016), "1.2.840.10008.5.1.4.1.1.481.8"},
        {"dicom/deb_pydicom/no_meta_group_length.dcm", T(0x0008, 0x0012), "20111130"},
        {"dicom/deb_pydicom/MR_small_bigendian.dcm", T(0x0028, 0x0011), "64"},
        {"dicom/deb_pydicom/image_dfl.dcm", T(0x0028, 0x0010), "512"},
        {"dicom/deb_pydicom/badVR.dcm", T(0x0028, 0x0010), "10"},
        {"dicom/deb_pydicom/ExplVR_BigEndNoMeta.dcm", T(0x0008, 0x0012), "20150529"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (!test_data(cases[i].rel, p, sizeof p))
            SKIP("no %s", cases[i].rel);
        r3d_error err = R3D_ERROR_INIT;
        r3d_dcm_file *f = r3d_dcm_open(p, 0, &err);
        CHECK(f != NULL);
        if (!f) {
            fprintf(stderr, "  %s\n", err.msg);
            continue;
        }
        char v[80];
        r3d_dcm_str(f, r3d_dcm_root(f), cases[i].tag, -1, v, sizeof v);
        CHECK_STR(v, cases[i].value);
        r3d_dcm_close(f);
    }
    /* UN_sequence: an undefined-length UN read as a sequence */
    if (test_data("dicom/deb_pydicom/UN_sequence.dcm", p, sizeof p)) {
        r3d_error err = R3D_ERROR_INIT;
        r3d_dcm_file *f = r3d_dcm_open(p, 0, &err);
        CHECK(f != NULL);
        if (f) {
            int seqs = 0;
            const r3d_dcm_item *r = r3d_dcm_root(f);
            for (uint32_t k = 0; k < r->n; k++)
                seqs += r->el[k].n_items > 0;
            CHECK(seqs >= 1);
            r3d_dcm_close(f);
        }
    }
    /* an enhanced multi-frame: functional groups reachable */
    if (test_data("dicom/pydicom_data/data_store/data/eCT_Supplemental.dcm", p, sizeof p)) {
        r3d_error err = R3D_ERROR_INIT;
        r3d_dcm_file *f = r3d_dcm_open(p, R3D_DCM_HEADER_ONLY, &err);
        CHECK(f != NULL);
        if (f) {
            const r3d_dcm_item *fg = r3d_dcm_seq_item(r3d_dcm_root(f), T(0x5200, 0x9230), 1);
            const r3d_dcm_item *pp = fg ? r3d_dcm_seq_item(fg, T(0x0020, 0x9113), 0) : NULL;
            double ipp[3];
            CHECK(pp && r3d_dcm_num(f, pp, T(0x0020, 0x0032), ipp, 3) == 3);
            r3d_dcm_close(f);
        }
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void test_chest_ct_series_parses_fast(void)
{
    char dir[1024];
    if (!test_data("ct/chest_ct_itkelastix/00", dir, sizeof dir))
        SKIP("no ../shared/data/ct/chest_ct_itkelastix");
    for (int pass = 0; pass < 2; pass++) {
        unsigned flags = pass == 0 ? R3D_DCM_HEADER_ONLY : 0;
        DIR *d = opendir(dir);
        struct dirent *e;
        int n = 0, ok = 0;
        double t0 = now_s();
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char p[2048];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            r3d_error err = R3D_ERROR_INIT;
            r3d_dcm_file *f = r3d_dcm_open(p, flags, &err);
            n++;
            if (f) {
                ok += r3d_dcm_num1(f, r3d_dcm_root(f), T(0x0028, 0x0010), 0) == 512;
                r3d_dcm_close(f);
            }
        }
        closedir(d);
        double dt = now_s() - t0;
        fprintf(stderr, "  %s: %d files in %.1f ms (%.3f ms/file)\n",
                pass == 0 ? "header only" : "full", n, dt * 1e3, dt * 1e3 / (n ? n : 1));
        CHECK_INT(ok, 141);
        CHECK(dt < 5.0);
    }
}

/* ---- seeds ------------------------------------------------------------------------ */

static void write_seeds(const char *dir)
{
    char p[1024];
    dbuf b, f;
    for (int mode = 0; mode < 4; mode++) { /* ELE, ILE, EBE, deflated */
        db_init(&b, mode != 1, mode == 2);
        ct_body(&b);
        const char *ts[] = {"1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.2",
                            "1.2.840.10008.1.2.1.99"};
        if (mode == 3) {
            uint8_t z[4096];
            size_t zn = db_deflate(b.b, b.n, z, sizeof z);
            db_part10(&f, ts[mode], z, zn);
        } else {
            db_part10(&f, ts[mode], b.b, b.n);
        }
        snprintf(p, sizeof p, "%s/ct_%s.dcm", dir, (const char *[]){"ele", "ile", "ebe", "deflate"}[mode]);
        db_write(p, f.b, f.n);
        free(b.b), free(f.b);
    }
    db_init(&b, 0, 0);
    ct_body(&b);
    snprintf(p, sizeof p, "%s/ct_ile_nometa.dcm", dir);
    db_write(p, b.b, b.n);
    free(b.b);
    db_init(&b, 1, 0);
    nested(&b);
    db_part10(&f, "1.2.840.10008.1.2.1", b.b, b.n);
    snprintf(p, sizeof p, "%s/nested_sq.dcm", dir);
    db_write(p, f.b, f.n);
    free(b.b), free(f.b);
    /* encapsulated, 2 frames, BOT, uncompressed fragments */
    db_init(&b, 1, 0);
    db_image(&b, 2, 2, 1, 8, 8, 0, "MONOCHROME2", 2);
    db_hdr(&b, 0x7FE0, 0x0010, "OB", 0xFFFFFFFF);
    db_item(&b, 8);
    db_u32(&b, 0);
    db_u32(&b, 12);
    db_item(&b, 4);
    db_put(&b, "\x01\x02\x03\x04", 4);
    db_item(&b, 4);
    db_put(&b, "\x05\x06\x07\x08", 4);
    db_seq_end(&b);
    db_part10(&f, "1.2.840.10008.1.2.1.98", b.b, b.n);
    snprintf(p, sizeof p, "%s/encapsulated_bot.dcm", dir);
    db_write(p, f.b, f.n);
    free(b.b), free(f.b);
    /* 1-bit, 3 frames of 3x3, RGB planar, palette */
    db_init(&b, 1, 0);
    db_image(&b, 3, 3, 1, 1, 1, 0, "MONOCHROME2", 3);
    db_el(&b, 0x7FE0, 0x0010, "OB", "\xa5\x5a\x0f\xf0", 4);
    db_part10(&f, "1.2.840.10008.1.2.1", b.b, b.n);
    snprintf(p, sizeof p, "%s/seg_1bit.dcm", dir);
    db_write(p, f.b, f.n);
    free(b.b), free(f.b);
    db_init(&b, 1, 0);
    db_image(&b, 2, 2, 3, 8, 8, 0, "YBR_FULL", 0);
    db_us(&b, 0x0028, 0x0006, 1);
    db_el(&b, 0x7FE0, 0x0010, "OB", "\x10\x20\x30\x40\x80\x80\x80\x80\x80\x90\xa0\xb0", 12);
    db_part10(&f, "1.2.840.10008.1.2.1", b.b, b.n);
    snprintf(p, sizeof p, "%s/ybr_planar.dcm", dir);
    db_write(p, f.b, f.n);
    free(b.b), free(f.b);
    /* UN sequence */
    db_init(&b, 1, 0);
    db_hdr(&b, 0x0008, 0x2218, "UN", 0xFFFFFFFF);
    b.explicit_vr = 0;
    db_item(&b, 0xFFFFFFFF);
    db_str(&b, 0x0008, 0x0100, NULL, "T-1");
    db_item_end(&b);
    db_seq_end(&b);
    b.explicit_vr = 1;
    db_part10(&f, "1.2.840.10008.1.2.1", b.b, b.n);
    snprintf(p, sizeof p, "%s/un_sequence.dcm", dir);
    db_write(p, f.b, f.n);
    free(b.b), free(f.b);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--write-seeds")) {
        write_seeds(argv[2]);
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "--write-bad")) {
        write_bad(argv[2]);
        return 0;
    }
    RUN(test_explicit_le_part10_values);
    RUN(test_implicit_le_without_meta_is_guessed);
    RUN(test_explicit_le_and_be_without_meta_are_guessed);
    RUN(test_big_endian_binary_values_are_swapped);
    RUN(test_every_vr_and_length_form);
    RUN(test_nested_sequences_defined_and_undefined);
    RUN(test_nesting_depth_is_limited);
    RUN(test_un_undefined_length_is_an_implicit_sequence);
    RUN(test_private_elements_opaque_or_sequences);
    RUN(test_deflated_body_is_inflated);
    RUN(test_declared_explicit_but_written_implicit);
    RUN(test_header_only_stops_at_pixel_data);
    RUN(test_encapsulated_fragments_and_bot);
    RUN(test_out_of_order_tags_are_sorted);
    RUN(test_num_tolerates_spaces_and_garbage);
    RUN(test_not_dicom_is_recognised);
    RUN(test_truncated_value_message_names_element_and_offset);
    RUN(test_truncation_at_every_byte_never_crashes);
    RUN(test_bad_files_give_code_and_message);
    RUN(test_real_files_parse_or_fail_clearly);
    RUN(test_known_files_are_read_as_pydicom_reads_them);
    RUN(test_chest_ct_series_parses_fast);
    return CHECK_DONE("test_dicom_parse");
}

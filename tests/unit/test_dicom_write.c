/* test_dicom_write.c - the Part 10 writer and UID generation: what we write
 * reads back through our reader with the same values, byte-level layout
 * (preamble, meta group length, padding, defined lengths, encapsulated
 * items) is as PS3.5/PS3.10 want, and bad requests fail with a message.
 * (dciodvfy/dcmdump/pydicom check written files in e2e/deidentify.) */
#include "check.h"

#include "r3d/dicom_write.h"

#include <ctype.h>
#include <unistd.h>

#define T(g, e) R3D_TAG(g, e)

static uint32_t rd32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Reference vectors of SipHash-2-4 (key 00..0f, empty message), from the
 * reference implementation's vectors.h (64-bit and 128-bit output). */
static void test_siphash_reference_vectors(void)
{
    uint8_t key[16], out[16];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
    static const uint8_t v64[8] = {0x31, 0x0e, 0x0e, 0xdd, 0x47, 0xdb, 0x6f, 0x72};
    static const uint8_t v128[16] = {0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6,
                                     0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55, 0x02, 0x93};
    r3d_siphash(key, "", 0, out, 8);
    CHECK(memcmp(out, v64, 8) == 0);
    r3d_siphash(key, "", 0, out, 16);
    CHECK(memcmp(out, v128, 16) == 0);
    /* Different messages, different hashes; same message, same hash. */
    uint8_t a[16], b[16], c[16];
    r3d_siphash(key, "1.2.3.4", 7, a, 16);
    r3d_siphash(key, "1.2.3.5", 7, b, 16);
    r3d_siphash(key, "1.2.3.4", 7, c, 16);
    CHECK(memcmp(a, b, 16) != 0);
    CHECK(memcmp(a, c, 16) == 0);
}

static int uid_valid(const char *u)
{
    size_t n = strlen(u);
    if (n == 0 || n > 64 || u[0] == '.' || u[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (u[i] == '.') {
            if (u[i + 1] == '.' || (u[i + 1] == '0' && isdigit((unsigned char)u[i + 2])))
                return 0; /* empty component or leading zero */
        } else if (!isdigit((unsigned char)u[i])) {
            return 0;
        }
    }
    return 1;
}

static void test_uid_from_128_is_decimal_uuid_under_2_25(void)
{
    uint8_t zero[16] = {0}, ff[16];
    memset(ff, 0xFF, 16);
    char u[65];
    /* Expected decimals from Python: int("00000000000040008000000000000000", 16)
     * (all-zero bytes, version 4, variant 10) and
     * int("ffffffffffff8fffbfffffffffffffff", 16) (all-one bytes, version 8). */
    r3d_uid_from_128(zero, 4, u);
    CHECK_STR(u, "2.25.302240678275694148452352");
    r3d_uid_from_128(ff, 8, u);
    CHECK_STR(u, "2.25.340282366920937934553716840013076889599");
    CHECK(uid_valid(u));
    char a[65], b[65];
    CHECK_INT(r3d_uid_new(a, NULL), R3D_OK);
    CHECK_INT(r3d_uid_new(b, NULL), R3D_OK);
    CHECK(strncmp(a, "2.25.", 5) == 0);
    CHECK(uid_valid(a) && uid_valid(b));
    CHECK(strcmp(a, b) != 0);
}

/* A small data set with the cases that matter for encoding. */
static r3d_dcm_ds *sample(void)
{
    r3d_dcm_ds *ds = r3d_dcm_ds_new();
    double spacing[2] = {0.5, 0.75}, rows = 2;
    CHECK_INT(r3d_dcm_ds_put_str(ds, T(0x0008, 0x0016), 0, "1.2.840.10008.5.1.4.1.1.7", NULL), R3D_OK);
    CHECK_INT(r3d_dcm_ds_put_str(ds, T(0x0008, 0x0018), 0, "2.25.1234", NULL), R3D_OK); /* odd: NUL pad */
    CHECK_INT(r3d_dcm_ds_put_str(ds, T(0x0008, 0x0060), 0, "OT", NULL), R3D_OK);
    CHECK_INT(r3d_dcm_ds_put_str(ds, T(0x0010, 0x0010), 0, "Wang^Xiaodong=\xe7\x8e\x8b^\xe5\xb0\x8f\xe4\xb8\x9c", NULL), R3D_OK);
    CHECK_INT(r3d_dcm_ds_put_str(ds, T(0x0010, 0x0020), 0, "ABC", NULL), R3D_OK); /* odd: space pad */
    CHECK_INT(r3d_dcm_ds_put_nums(ds, T(0x0028, 0x0030), 0, spacing, 2, NULL), R3D_OK);
    CHECK_INT(r3d_dcm_ds_put_nums(ds, T(0x0028, 0x0010), 0, &rows, 1, NULL), R3D_OK);
    CHECK_INT(r3d_dcm_ds_put_u16(ds, T(0x0028, 0x0011), 3, NULL), R3D_OK);
    r3d_dcm_ds *it1 = r3d_dcm_ds_add_item(ds, T(0x0008, 0x1140), NULL);
    r3d_dcm_ds *it2 = r3d_dcm_ds_add_item(ds, T(0x0008, 0x1140), NULL);
    CHECK(it1 && it2);
    CHECK_INT(r3d_dcm_ds_put_str(it1, T(0x0008, 0x1155), 0, "1.2.3", NULL), R3D_OK);
    CHECK_INT(r3d_dcm_ds_put_str(it2, T(0x0008, 0x1155), 0, "1.2.34", NULL), R3D_OK);
    r3d_dcm_ds *nested = r3d_dcm_ds_add_item(it2, T(0x0040, 0xA730), NULL);
    CHECK_INT(r3d_dcm_ds_put_str(nested, T(0x0040, 0xA040), 0, "TEXT", NULL), R3D_OK);
    /* A group length in the data set is dropped (retired, and stale). */
    CHECK_INT(r3d_dcm_ds_put_bytes(ds, T(0x0010, 0x0000), R3D_VR('U', 'L'), "\4\0\0\0", 4, NULL), R3D_OK);
    return ds;
}

static void test_written_file_reads_back_with_same_values(void)
{
    r3d_dcm_ds *ds = sample();
    uint8_t *buf;
    size_t n;
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d_dcm_write_mem(ds, NULL, &buf, &n, &err), R3D_OK);
    r3d_dcm_ds_free(ds);
    CHECK(n > 132);
    for (int i = 0; i < 128; i++)
        CHECK_INT(buf[i], 0);
    CHECK(memcmp(buf + 128, "DICM", 4) == 0);
    r3d_dcm_file *f = r3d_dcm_parse(buf, n, 1, "written", 0, &err);
    CHECK(f != NULL);
    if (!f) {
        fprintf(stderr, "  %s\n", err.msg);
        return;
    }
    char s[256];
    const r3d_dcm_item *root = r3d_dcm_root(f), *meta = r3d_dcm_meta(f);
    CHECK_STR(r3d_dcm_transfer_syntax(f), R3D_TS_EXPLICIT_LE);
    r3d_dcm_str(f, meta, T(0x0002, 0x0002), -1, s, sizeof s);
    CHECK_STR(s, "1.2.840.10008.5.1.4.1.1.7");
    r3d_dcm_str(f, meta, T(0x0002, 0x0003), -1, s, sizeof s);
    CHECK_STR(s, "2.25.1234");
    r3d_dcm_str(f, meta, T(0x0002, 0x0012), -1, s, sizeof s);
    CHECK_STR(s, R3D_IMPLEMENTATION_CLASS_UID);
    r3d_dcm_str(f, meta, T(0x0002, 0x0013), -1, s, sizeof s);
    CHECK_STR(s, R3D_IMPLEMENTATION_VERSION_NAME);
    /* (0002,0000) = bytes from the end of its own element to the data set. */
    const r3d_dcm_el *gl = r3d_dcm_find(meta, T(0x0002, 0x0000));
    const r3d_dcm_el *first = &root->el[0];
    CHECK(gl && gl->len == 4);
    if (gl)
        CHECK_INT(rd32le(gl->val), first->offset - (gl->offset + 12));
    /* Padding: UI with NUL, text with a space; the value reads back trimmed. */
    const r3d_dcm_el *uid = r3d_dcm_find(root, T(0x0008, 0x0018));
    CHECK(uid && uid->len == 10 && uid->val[9] == 0);
    const r3d_dcm_el *pid = r3d_dcm_find(root, T(0x0010, 0x0020));
    CHECK(pid && pid->len == 4 && pid->val[3] == ' ');
    r3d_dcm_str(f, root, T(0x0010, 0x0010), -1, s, sizeof s);
    CHECK_STR(s, "Wang^Xiaodong=\xe7\x8e\x8b^\xe5\xb0\x8f\xe4\xb8\x9c");
    r3d_dcm_str(f, root, T(0x0008, 0x0005), -1, s, sizeof s);
    CHECK_STR(s, "ISO_IR 192"); /* added: the name is not ASCII */
    CHECK(r3d_dcm_find(root, T(0x0010, 0x0000)) == NULL);
    double v[2];
    CHECK_INT(r3d_dcm_num(f, root, T(0x0028, 0x0030), v, 2), 2);
    CHECK_NEAR(v[0], 0.5, 0);
    CHECK_NEAR(v[1], 0.75, 0);
    CHECK_NEAR(r3d_dcm_num1(f, root, T(0x0028, 0x0010), -1), 2, 0);
    CHECK_NEAR(r3d_dcm_num1(f, root, T(0x0028, 0x0011), -1), 3, 0);
    const r3d_dcm_el *sq = r3d_dcm_find(root, T(0x0008, 0x1140));
    CHECK(sq && sq->n_items == 2 && sq->len != R3D_DCM_UNDEFINED);
    const r3d_dcm_item *i2 = r3d_dcm_seq_item(root, T(0x0008, 0x1140), 1);
    r3d_dcm_str(f, i2, T(0x0008, 0x1155), -1, s, sizeof s);
    CHECK_STR(s, "1.2.34");
    const r3d_dcm_item *in = r3d_dcm_seq_item(i2, T(0x0040, 0xA730), 0);
    r3d_dcm_str(f, in, T(0x0040, 0xA040), -1, s, sizeof s);
    CHECK_STR(s, "TEXT");
    /* Tags ascend in the written data set. */
    for (uint32_t i = 1; i < root->n; i++)
        CHECK(root->el[i].offset > root->el[i - 1].offset);
    r3d_dcm_close(f);
}

static void test_ascii_text_gets_no_character_set(void)
{
    r3d_dcm_ds *ds = r3d_dcm_ds_new();
    r3d_dcm_ds_put_str(ds, T(0x0008, 0x0016), 0, "1.2.840.10008.5.1.4.1.1.7", NULL);
    r3d_dcm_ds_put_str(ds, T(0x0008, 0x0018), 0, "2.25.1", NULL);
    r3d_dcm_ds_put_str(ds, T(0x0010, 0x0010), 0, "Doe^John", NULL);
    uint8_t *buf;
    size_t n;
    CHECK_INT(r3d_dcm_write_mem(ds, NULL, &buf, &n, NULL), R3D_OK);
    r3d_dcm_file *f = r3d_dcm_parse(buf, n, 1, "ascii", 0, NULL);
    CHECK(f && r3d_dcm_find(r3d_dcm_root(f), T(0x0008, 0x0005)) == NULL);
    r3d_dcm_close(f);
    /* A character set given by the caller is kept, even with non-ASCII. */
    r3d_dcm_ds_put_str(ds, T(0x0008, 0x0005), 0, "ISO_IR 100", NULL);
    r3d_dcm_ds_put_text(ds, T(0x0010, 0x0010), 0, "M\xfcller", 6, NULL);
    CHECK_INT(r3d_dcm_write_mem(ds, NULL, &buf, &n, NULL), R3D_OK);
    f = r3d_dcm_parse(buf, n, 1, "latin1", 0, NULL);
    char s[64];
    r3d_dcm_str(f, r3d_dcm_root(f), T(0x0008, 0x0005), -1, s, sizeof s);
    CHECK_STR(s, "ISO_IR 100");
    r3d_dcm_close(f);
    r3d_dcm_ds_free(ds);
}

static void test_encapsulated_pixels_keep_fragments_and_syntax(void)
{
    r3d_dcm_ds *ds = r3d_dcm_ds_new();
    r3d_dcm_ds_put_str(ds, T(0x0008, 0x0016), 0, "1.2.840.10008.5.1.4.1.1.7", NULL);
    r3d_dcm_ds_put_str(ds, T(0x0008, 0x0018), 0, "2.25.2", NULL);
    static const uint8_t f1[6] = {0xFF, 0xD8, 1, 2, 3, 4}, f2[4] = {5, 6, 0xFF, 0xD9};
    static const uint8_t bot[8] = {0, 0, 0, 0, 14, 0, 0, 0};
    const uint8_t *frags[2] = {f1, f2};
    uint32_t lens[2] = {6, 4};
    CHECK_INT(r3d_dcm_ds_put_encapsulated(ds, T(0x7FE0, 0x0010), bot, 8, frags, lens, 2, NULL), R3D_OK);
    uint8_t *buf;
    size_t n;
    r3d_error err = R3D_ERROR_INIT;
    /* Explicit VR LE cannot carry fragments. */
    CHECK_INT(r3d_dcm_write_mem(ds, NULL, &buf, &n, &err), R3D_EARG);
    CHECK_CONTAINS(err.msg, "encapsulated transfer syntax");
    r3d_dcm_write_opts o = R3D_DCM_WRITE_OPTS_INIT;
    o.transfer_syntax = "1.2.840.10008.1.2.4.50";
    CHECK_INT(r3d_dcm_write_mem(ds, &o, &buf, &n, &err), R3D_OK);
    r3d_dcm_ds_free(ds);
    /* Ends with the sequence delimiter (FFFE,E0DD) of length 0. */
    static const uint8_t delim[8] = {0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0};
    CHECK(memcmp(buf + n - 8, delim, 8) == 0);
    r3d_dcm_file *f = r3d_dcm_parse(buf, n, 1, "jpeg", 0, &err);
    CHECK(f != NULL);
    if (!f)
        return;
    CHECK_STR(r3d_dcm_transfer_syntax(f), "1.2.840.10008.1.2.4.50");
    const r3d_dcm_el *px = r3d_dcm_find(r3d_dcm_root(f), T(0x7FE0, 0x0010));
    CHECK(px && px->len == R3D_DCM_UNDEFINED && px->n_frag == 2 && px->bot_len == 8);
    if (px && px->n_frag == 2) {
        CHECK(px->frag_len[0] == 6 && memcmp(px->frag[0], f1, 6) == 0);
        CHECK(px->frag_len[1] == 4 && memcmp(px->frag[1], f2, 4) == 0);
        CHECK(memcmp(px->bot, bot, 8) == 0);
    }
    r3d_dcm_close(f);
}

/* Binary numbers little endian in their VR's width; DS/IS as text. */
static void test_numbers_encode_per_vr(void)
{
    r3d_dcm_ds *ds = r3d_dcm_ds_new();
    r3d_dcm_ds_put_str(ds, T(0x0008, 0x0016), 0, "1.2.840.10008.5.1.4.1.1.7", NULL);
    r3d_dcm_ds_put_str(ds, T(0x0008, 0x0018), 0, "2.25.4", NULL);
    double ss = -2, fl = 0.25, fd[2] = {-1.5, 1e-300}, at = T(0x0028, 0x0010), is = 42, ds_ = 1.0 / 3;
    CHECK_INT(r3d_dcm_ds_put_nums(ds, T(0x0028, 0x0106), R3D_VR('S', 'S'), &ss, 1, NULL), R3D_OK);
    CHECK_INT(r3d_dcm_ds_put_nums(ds, T(0x0018, 0x9306), R3D_VR('F', 'D'), fd, 2, NULL), R3D_OK);
    CHECK_INT(r3d_dcm_ds_put_nums(ds, T(0x0018, 0x9305), R3D_VR('F', 'L'), &fl, 1, NULL), R3D_OK);
    CHECK_INT(r3d_dcm_ds_put_nums(ds, T(0x0028, 0x0009), 0, &at, 1, NULL), R3D_OK); /* AT */
    CHECK_INT(r3d_dcm_ds_put_nums(ds, T(0x0020, 0x0013), 0, &is, 1, NULL), R3D_OK); /* IS */
    CHECK_INT(r3d_dcm_ds_put_nums(ds, T(0x0018, 0x0050), 0, &ds_, 1, NULL), R3D_OK); /* DS */
    CHECK_INT(r3d_dcm_ds_put_nums(ds, T(0x0010, 0x0010), 0, &is, 1, NULL), R3D_EARG); /* PN */
    double wide[2] = {-1.23456789012e-300, 123456789012345.0}; /* each needs trimming to 16 */
    CHECK_INT(r3d_dcm_ds_put_nums(ds, T(0x0028, 0x0030), 0, wide, 2, NULL), R3D_OK);
    uint8_t *buf;
    size_t n;
    CHECK_INT(r3d_dcm_write_mem(ds, NULL, &buf, &n, NULL), R3D_OK);
    r3d_dcm_ds_free(ds);
    r3d_dcm_file *f = r3d_dcm_parse(buf, n, 1, "nums", 0, NULL);
    const r3d_dcm_item *r = r3d_dcm_root(f);
    double v[2];
    CHECK_NEAR(r3d_dcm_num1(f, r, T(0x0028, 0x0106), 0), -2, 0);
    CHECK_INT(r3d_dcm_num(f, r, T(0x0018, 0x9306), v, 2), 2);
    CHECK(v[0] == -1.5 && v[1] == 1e-300);
    CHECK_NEAR(r3d_dcm_num1(f, r, T(0x0018, 0x9305), 0), 0.25, 0);
    CHECK_NEAR(r3d_dcm_num1(f, r, T(0x0028, 0x0009), 0), (double)T(0x0028, 0x0010), 0);
    const r3d_dcm_el *e = r3d_dcm_find(r, T(0x0028, 0x0009));
    static const uint8_t at_bytes[4] = {0x28, 0x00, 0x10, 0x00}; /* group, then element */
    CHECK(e && e->len == 4 && memcmp(e->val, at_bytes, 4) == 0);
    char s[64];
    r3d_dcm_str(f, r, T(0x0020, 0x0013), -1, s, sizeof s);
    CHECK_STR(s, "42");
    e = r3d_dcm_find(r, T(0x0018, 0x0050));
    CHECK(e && e->len <= 16); /* DS holds at most 16 characters */
    CHECK_NEAR(r3d_dcm_num1(f, r, T(0x0018, 0x0050), 0), 1.0 / 3, 1e-9);
    e = r3d_dcm_find(r, T(0x0028, 0x0030));
    CHECK(e && e->len <= 2 * 16 + 1 + 1);
    CHECK_INT(r3d_dcm_num(f, r, T(0x0028, 0x0030), v, 2), 2);
    CHECK_NEAR(v[0], -1.23456789012e-300, 1e-307);
    CHECK_NEAR(v[1], 123456789012345.0, 0); /* 15 digits fit exactly */
    r3d_dcm_close(f);
}

static void test_bad_requests_fail_with_a_message(void)
{
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_ds *ds = r3d_dcm_ds_new();
    uint8_t *buf;
    size_t n;
    CHECK_INT(r3d_dcm_write_mem(ds, NULL, &buf, &n, &err), R3D_EARG);
    CHECK_CONTAINS(err.msg, "SOPClassUID (0008,0016)");
    /* A private tag has no dictionary VR. */
    CHECK_INT(r3d_dcm_ds_put_str(ds, T(0x0031, 0x1234), 0, "x", &err), R3D_EARG);
    CHECK_CONTAINS(err.msg, "(0031,1234) is not in the dictionary");
    /* A short-length VR cannot hold 70000 bytes. */
    char *big = malloc(70001);
    memset(big, 'A', 70000);
    big[70000] = 0;
    CHECK_INT(r3d_dcm_ds_put_str(ds, T(0x0010, 0x0010), 0, big, &err), R3D_EARG);
    CHECK_CONTAINS(err.msg, "too long for VR PN");
    free(big);
    /* Native transfer syntaxes other than explicit LE are not written. */
    r3d_dcm_ds_put_str(ds, T(0x0008, 0x0016), 0, "1.2.840.10008.5.1.4.1.1.7", NULL);
    r3d_dcm_ds_put_str(ds, T(0x0008, 0x0018), 0, "2.25.3", NULL);
    r3d_dcm_write_opts o = {"1.2.840.10008.1.2.2"};
    CHECK_INT(r3d_dcm_write_mem(ds, &o, &buf, &n, &err), R3D_EUNSUPPORTED);
    CHECK_CONTAINS(err.msg, "1.2.840.10008.1.2.2");
    /* Replacing and removing keep one element per tag. */
    r3d_dcm_ds_put_str(ds, T(0x0010, 0x0020), 0, "A", NULL);
    r3d_dcm_ds_put_str(ds, T(0x0010, 0x0020), 0, "B", NULL);
    CHECK_INT(r3d_dcm_ds_count(ds), 3);
    CHECK_INT(r3d_dcm_ds_remove(ds, T(0x0010, 0x0020)), 1);
    CHECK_INT(r3d_dcm_ds_remove(ds, T(0x0010, 0x0020)), 0);
    r3d_dcm_ds_free(ds);
}

static void test_write_file_is_atomic_and_complete(void)
{
    char dir[] = "/tmp/r3d_test_write_XXXXXX";
    if (!mkdtemp(dir))
        SKIP("cannot create a temporary folder");
    char path[256];
    snprintf(path, sizeof path, "%s/out.dcm", dir);
    r3d_dcm_ds *ds = sample();
    r3d_error err = R3D_ERROR_INIT;
    CHECK_INT(r3d_dcm_write_file(ds, path, NULL, &err), R3D_OK);
    r3d_dcm_file *f = r3d_dcm_open(path, 0, &err);
    CHECK(f != NULL);
    r3d_dcm_close(f);
    /* A folder that does not exist: an error naming the path, no file. */
    char bad[300];
    snprintf(bad, sizeof bad, "%s/no/such/out.dcm", dir);
    CHECK(r3d_dcm_write_file(ds, bad, NULL, &err) != R3D_OK);
    CHECK_CONTAINS(err.msg, "no/such");
    r3d_dcm_ds_free(ds);
    remove(path);
    rmdir(dir);
}

/* merge copies deeply (sequences, encapsulated fragments) and replaces
 * same-tag elements; value returns the stored bytes; the source can be
 * freed afterwards. */
static void test_merge_copies_deeply_and_value_reads_back(void)
{
    r3d_error e = R3D_ERROR_INIT;
    r3d_dcm_ds *a = r3d_dcm_ds_new(), *b = r3d_dcm_ds_new();
    r3d_dcm_ds_put_str(a, T(0x0010, 0x0010), 0, "Doe^Jane", &e);
    r3d_dcm_ds_put_str(a, T(0x0020, 0x000D), 0, "1.2.3", &e);
    r3d_dcm_ds *it = r3d_dcm_ds_add_item(a, T(0x0008, 0x1115), &e);
    r3d_dcm_ds_put_str(it, T(0x0020, 0x000E), 0, "1.2.3.4", &e);
    static const uint8_t f0[4] = {1, 2, 3, 4};
    const uint8_t *frag[1] = {f0};
    uint32_t fl[1] = {4};
    r3d_dcm_ds_put_encapsulated(a, T(0x7FE0, 0x0010), NULL, 0, frag, fl, 1, &e);
    r3d_dcm_ds_put_str(b, T(0x0010, 0x0010), 0, "Other^Name", &e);
    r3d_dcm_ds_put_str(b, T(0x0008, 0x0016), 0, "1.2.840.10008.5.1.4.1.1.2", &e);
    r3d_dcm_ds_put_str(b, T(0x0008, 0x0018), 0, "1.2.3.9", &e);
    CHECK_INT(r3d_dcm_ds_merge(b, a, &e), R3D_OK);
    r3d_dcm_ds_free(a);
    uint32_t n = 0;
    uint16_t vr = 0;
    const uint8_t *v = r3d_dcm_ds_value(b, T(0x0010, 0x0010), &n, &vr);
    CHECK(v && n == 8 && !memcmp(v, "Doe^Jane", 8) && vr == R3D_VR('P', 'N'));
    v = r3d_dcm_ds_value(b, T(0x0020, 0x000D), &n, &vr);
    CHECK(v && n == 6 && !memcmp(v, "1.2.3\0", 6)); /* UI padded with NUL */
    CHECK(r3d_dcm_ds_value(b, T(0x0008, 0x1115), NULL, NULL) == NULL); /* a sequence */
    CHECK(r3d_dcm_ds_value(b, T(0x0010, 0x0020), NULL, NULL) == NULL); /* absent */
    uint8_t *buf = NULL;
    size_t nb = 0;
    r3d_dcm_write_opts o = {"1.2.840.10008.1.2.4.50"};
    CHECK_INT(r3d_dcm_write_mem(b, &o, &buf, &nb, &e), R3D_OK);
    r3d_dcm_file *f = buf ? r3d_dcm_parse(buf, nb, 1, "merged.dcm", 0, &e) : NULL;
    CHECK(f != NULL);
    if (f) {
        const r3d_dcm_item *ri = r3d_dcm_seq_item(r3d_dcm_root(f), T(0x0008, 0x1115), 0);
        char s[64];
        CHECK(ri && r3d_dcm_str(f, ri, T(0x0020, 0x000E), -1, s, sizeof s) && !strcmp(s, "1.2.3.4"));
        const r3d_dcm_el *px = r3d_dcm_find(r3d_dcm_root(f), T(0x7FE0, 0x0010));
        CHECK(px && px->n_frag == 1 && px->frag_len[0] == 4 && !memcmp(px->frag[0], f0, 4));
        r3d_dcm_close(f);
    }
    r3d_dcm_ds_free(b);
}

int main(void)
{
    RUN(test_siphash_reference_vectors);
    RUN(test_uid_from_128_is_decimal_uuid_under_2_25);
    RUN(test_written_file_reads_back_with_same_values);
    RUN(test_ascii_text_gets_no_character_set);
    RUN(test_encapsulated_pixels_keep_fragments_and_syntax);
    RUN(test_numbers_encode_per_vr);
    RUN(test_bad_requests_fail_with_a_message);
    RUN(test_write_file_is_atomic_and_complete);
    RUN(test_merge_copies_deeply_and_value_reads_back);
    return CHECK_DONE("test_dicom_write");
}

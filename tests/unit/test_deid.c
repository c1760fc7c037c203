/* test_deid.c - de-identification (PS3.15 Annex E basic profile) on files
 * built byte by byte: each action of the table, the options, consistent UID
 * replacement across files, private/overlay removal, burned-in refusal,
 * re-encoding of implicit and big-endian inputs, encapsulated pixel data
 * kept with its syntax, and a report that names tags but never values. */
#include "check.h"
#include "dcm_build.h"

#include "r3d/dicom_write.h"

#define T(g, e) R3D_TAG(g, e)

typedef struct spec {
    int explicit_vr, big;
    const char *sop, *ref;
    const char *burned;
    int encapsulated;
} spec;

/* A small CT image with identifying attributes of every kind. */
static r3d_dcm_file *build(const spec *s)
{
    dbuf b;
    db_init(&b, s->explicit_vr, s->big);
    db_str(&b, 0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.2");
    db_str(&b, 0x0008, 0x0018, "UI", s->sop);
    db_str(&b, 0x0008, 0x0020, "DA", "20240102");
    db_str(&b, 0x0008, 0x0030, "TM", "101010");
    db_str(&b, 0x0008, 0x0050, "SH", "ACC123");
    db_str(&b, 0x0008, 0x0060, "CS", "CT");
    db_str(&b, 0x0008, 0x0080, "LO", "General Hospital");
    db_str(&b, 0x0008, 0x0090, "PN", "Dr^Who");
    db_str(&b, 0x0008, 0x103E, "LO", "CHEST 2mm");
    if (s->ref) {
        dbuf it;
        db_init(&it, s->explicit_vr, s->big);
        db_str(&it, 0x0008, 0x1150, "UI", "1.2.840.10008.5.1.4.1.1.2");
        db_str(&it, 0x0008, 0x1155, "UI", s->ref);
        db_hdr(&b, 0x0008, 0x1140, "SQ", (uint32_t)it.n + 8);
        db_item(&b, (uint32_t)it.n);
        db_put(&b, it.b, it.n);
        free(it.b);
    }
    db_str(&b, 0x0009, 0x0010, "LO", "ACME 1.0");
    db_str(&b, 0x0009, 0x1001, "LO", "secret note");
    db_str(&b, 0x0010, 0x0010, "PN", "Doe^Jane");
    db_str(&b, 0x0010, 0x0020, "LO", "PID12345");
    db_str(&b, 0x0010, 0x0030, "DA", "19700101");
    db_str(&b, 0x0010, 0x1010, "AS", "054Y");
    db_str(&b, 0x0018, 0x0050, "DS", "2.5");
    db_str(&b, 0x0018, 0x1030, "LO", "brain protocol Doe");
    db_str(&b, 0x0020, 0x000D, "UI", "1.2.3.4.100");
    db_str(&b, 0x0020, 0x000E, "UI", "1.2.3.4.200");
    db_str(&b, 0x0020, 0x0052, "UI", "1.2.840.10008.1.4.1.1"); /* well known: kept */
    db_image(&b, 2, 2, 1, 16, 12, 0, "MONOCHROME2", 0);
    if (s->burned)
        db_str(&b, 0x0028, 0x0301, "CS", s->burned);
    db_us(&b, 0x6000, 0x0010, 2); /* an overlay group */
    if (s->encapsulated) {
        static const uint8_t frag[6] = {0xFF, 0xD8, 9, 8, 0xFF, 0xD9};
        db_hdr(&b, 0x7FE0, 0x0010, "OB", R3D_DCM_UNDEFINED);
        db_item(&b, 0);
        db_item(&b, 6);
        db_put(&b, frag, 6);
        db_seq_end(&b);
    } else {
        /* 16-bit pixels 100..400 in the file's byte order */
        db_hdr(&b, 0x7FE0, 0x0010, "OW", 8);
        for (int i = 1; i <= 4; i++)
            db_u16(&b, (uint16_t)(i * 100));
    }
    const char *ts = s->encapsulated ? "1.2.840.10008.1.2.4.50"
                     : !s->explicit_vr ? "1.2.840.10008.1.2"
                     : s->big ? "1.2.840.10008.1.2.2"
                              : "1.2.840.10008.1.2.1";
    dbuf f;
    db_part10(&f, ts, b.b, b.n);
    free(b.b);
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *file = r3d_dcm_parse(f.b, f.n, 1, "built.dcm", 0, &err);
    if (!file)
        fprintf(stderr, "  build: %s\n", err.msg);
    return file;
}

static const uint8_t KEY[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

/* De-identify and read the result back through our reader. */
static r3d_dcm_file *deid(r3d_deid *d, r3d_dcm_file *in, r3d_status *st_out, r3d_error *err)
{
    r3d_dcm_ds *ds;
    char ts[65];
    r3d_status st = r3d_deid_dataset(d, in, "built.dcm", &ds, ts, err);
    if (st_out)
        *st_out = st;
    if (st != R3D_OK)
        return NULL;
    r3d_dcm_write_opts o = {ts};
    uint8_t *buf;
    size_t n;
    st = r3d_dcm_write_mem(ds, &o, &buf, &n, err);
    r3d_dcm_ds_free(ds);
    if (st != R3D_OK) {
        if (st_out)
            *st_out = st;
        return NULL;
    }
    return r3d_dcm_parse(buf, n, 1, "out.dcm", 0, err);
}

static const char *str(const r3d_dcm_file *f, uint32_t tag, char *buf)
{
    if (!r3d_dcm_find(r3d_dcm_root(f), tag))
        return "(absent)";
    r3d_dcm_str(f, r3d_dcm_root(f), tag, -1, buf, 128);
    return buf;
}

static void test_deid_basic_profile_actions_on_a_ct(void)
{
    spec s = {1, 0, "1.2.3.4.300", "1.2.3.4.299", "NO", 0};
    r3d_dcm_file *in = build(&s);
    r3d_deid *d = r3d_deid_new_keyed(NULL, KEY, NULL);
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *out = deid(d, in, NULL, &err);
    CHECK(out != NULL);
    if (!out) {
        fprintf(stderr, "  %s\n", err.msg);
        goto done;
    }
    char b[128], u[65];
    CHECK_STR(r3d_dcm_transfer_syntax(out), R3D_TS_EXPLICIT_LE);
    CHECK_STR(str(out, T(0x0010, 0x0010), b), "");         /* Z */
    CHECK_STR(str(out, T(0x0010, 0x0020), b), "");         /* Z */
    CHECK_STR(str(out, T(0x0010, 0x0030), b), "");         /* Z */
    CHECK_STR(str(out, T(0x0008, 0x0020), b), "");         /* Z */
    CHECK_STR(str(out, T(0x0008, 0x0050), b), "");         /* Z */
    CHECK_STR(str(out, T(0x0008, 0x0090), b), "");         /* Z */
    CHECK_STR(str(out, T(0x0010, 0x1010), b), "(absent)"); /* X */
    CHECK_STR(str(out, T(0x0008, 0x103E), b), "(absent)"); /* X */
    CHECK_STR(str(out, T(0x0008, 0x0080), b), "ANONYMIZED"); /* X/Z/D with a value */
    CHECK_STR(str(out, T(0x0018, 0x1030), b), "ANONYMIZED"); /* X/D with a value */
    CHECK_STR(str(out, T(0x0009, 0x0010), b), "(absent)"); /* private */
    CHECK_STR(str(out, T(0x0009, 0x1001), b), "(absent)");
    CHECK_STR(str(out, T(0x6000, 0x0010), b), "(absent)"); /* overlay group */
    CHECK_STR(str(out, T(0x0018, 0x0050), b), "2.5");      /* not in the table: kept */
    CHECK_STR(str(out, T(0x0008, 0x0060), b), "CT");
    r3d_deid_uid(d, "1.2.3.4.300", u);
    CHECK_STR(str(out, T(0x0008, 0x0018), b), u);
    CHECK(strncmp(u, "2.25.", 5) == 0);
    r3d_deid_uid(d, "1.2.3.4.100", u);
    CHECK_STR(str(out, T(0x0020, 0x000D), b), u);
    CHECK_STR(str(out, T(0x0020, 0x0052), b), "1.2.840.10008.1.4.1.1");
    /* X/Z/U* sequence: items kept, the UID inside replaced. */
    const r3d_dcm_item *it = r3d_dcm_seq_item(r3d_dcm_root(out), T(0x0008, 0x1140), 0);
    CHECK(it != NULL);
    r3d_dcm_str(out, it, T(0x0008, 0x1155), -1, b, sizeof b);
    r3d_deid_uid(d, "1.2.3.4.299", u);
    CHECK_STR(b, u);
    CHECK_STR(str(out, T(0x0012, 0x0062), b), "YES");
    const r3d_dcm_item *code = r3d_dcm_seq_item(r3d_dcm_root(out), T(0x0012, 0x0064), 0);
    r3d_dcm_str(out, code, T(0x0008, 0x0100), -1, b, sizeof b);
    CHECK_STR(b, "113100");
    CHECK(r3d_dcm_seq_item(r3d_dcm_root(out), T(0x0012, 0x0064), 1) == NULL);
    /* Pixels byte for byte. */
    const r3d_dcm_el *pa = r3d_dcm_find(r3d_dcm_root(in), T(0x7FE0, 0x0010));
    const r3d_dcm_el *pb = r3d_dcm_find(r3d_dcm_root(out), T(0x7FE0, 0x0010));
    CHECK(pa && pb && pa->len == pb->len && memcmp(pa->val, pb->val, pa->len) == 0);
    CHECK(pb && pb->vr == R3D_VR('O', 'W'));
done:
    r3d_dcm_close(out);
    r3d_dcm_close(in);
    r3d_deid_free(d);
}

static void test_deid_uids_consistent_across_files_of_a_run(void)
{
    spec sa = {1, 0, "1.2.3.4.500", NULL, NULL, 0}, sb = {1, 0, "1.2.3.4.501", "1.2.3.4.500", NULL, 0};
    r3d_dcm_file *a = build(&sa), *bf = build(&sb);
    r3d_deid *d = r3d_deid_new(NULL, NULL);
    r3d_dcm_file *oa = deid(d, a, NULL, NULL), *ob = deid(d, bf, NULL, NULL);
    CHECK(oa && ob);
    char x[128], y[128];
    if (oa && ob) {
        str(oa, T(0x0008, 0x0018), x);
        const r3d_dcm_item *it = r3d_dcm_seq_item(r3d_dcm_root(ob), T(0x0008, 0x1140), 0);
        r3d_dcm_str(ob, it, T(0x0008, 0x1155), -1, y, sizeof y);
        CHECK_STR(y, x); /* B still references A */
        CHECK_STR(str(oa, T(0x0020, 0x000E), x), str(ob, T(0x0020, 0x000E), y)); /* one series */
        CHECK(strcmp(x, "1.2.3.4.200") != 0);
    }
    /* Another run (another random key) gives other UIDs. */
    r3d_deid *d2 = r3d_deid_new(NULL, NULL);
    char u1[65], u2[65];
    r3d_deid_uid(d, "1.2.3.4.500", u1);
    r3d_deid_uid(d2, "1.2.3.4.500", u2);
    CHECK(strcmp(u1, u2) != 0);
    r3d_deid_free(d2);
    r3d_dcm_close(oa);
    r3d_dcm_close(ob);
    r3d_dcm_close(a);
    r3d_dcm_close(bf);
    r3d_deid_free(d);
}

static void test_deid_options_retain_dates_and_remove_descriptors(void)
{
    spec s = {1, 0, "1.2.3.4.600", NULL, NULL, 0};
    r3d_dcm_file *in = build(&s);
    r3d_deid_opts o = R3D_DEID_OPTS_INIT;
    o.retain_dates = 1;
    o.clean_descriptors = 1;
    r3d_deid *d = r3d_deid_new_keyed(&o, KEY, NULL);
    r3d_dcm_file *out = deid(d, in, NULL, NULL);
    CHECK(out != NULL);
    char b[128];
    if (out) {
        CHECK_STR(str(out, T(0x0008, 0x0020), b), "20240102"); /* kept by the option */
        CHECK_STR(str(out, T(0x0008, 0x0030), b), "101010");
        CHECK_STR(str(out, T(0x0010, 0x0030), b), "");         /* birth date is no study date */
        CHECK_STR(str(out, T(0x0018, 0x1030), b), "(absent)"); /* descriptor removed */
        CHECK_STR(str(out, T(0x0028, 0x0303), b), "UNMODIFIED");
        const r3d_dcm_item *code = r3d_dcm_seq_item(r3d_dcm_root(out), T(0x0012, 0x0064), 1);
        r3d_dcm_str(out, code, T(0x0008, 0x0100), -1, b, sizeof b);
        CHECK_STR(b, "113106");
    }
    r3d_dcm_close(out);
    r3d_dcm_close(in);
    r3d_deid_free(d);
}

static void test_deid_burned_in_annotation_refused_unless_allowed(void)
{
    spec s = {1, 0, "1.2.3.4.700", NULL, "YES", 0};
    r3d_dcm_file *in = build(&s);
    r3d_deid *d = r3d_deid_new_keyed(NULL, KEY, NULL);
    r3d_error err = R3D_ERROR_INIT;
    r3d_status st;
    CHECK(deid(d, in, &st, &err) == NULL);
    CHECK_INT(st, R3D_EUNSUPPORTED);
    CHECK_CONTAINS(err.msg, "built.dcm: BurnedInAnnotation (0028,0301) is YES");
    r3d_deid_free(d);
    r3d_deid_opts o = R3D_DEID_OPTS_INIT;
    o.allow_burned_in = 1;
    d = r3d_deid_new_keyed(&o, KEY, NULL);
    char dir[] = "/tmp/r3d_test_deid_XXXXXX", path[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/o.dcm", dir);
    CHECK_INT(r3d_deid_file(d, in, "burned.dcm", path, &err), R3D_OK);
    char *json = r3d_deid_report_json(d);
    CHECK_CONTAINS(json, "BurnedInAnnotation is YES");
    free(json);
    remove(path);
    remove(dir);
    r3d_dcm_close(in);
    r3d_deid_free(d);
}

static void test_deid_big_endian_and_implicit_inputs_become_explicit_le(void)
{
    for (int k = 0; k < 2; k++) {
        spec s = {k == 0, k == 0, "1.2.3.4.800", NULL, NULL, 0}; /* BE explicit, then implicit LE */
        r3d_dcm_file *in = build(&s);
        CHECK(in != NULL);
        if (!in)
            continue;
        CHECK_INT(r3d_dcm_big_endian(in), k == 0);
        r3d_deid *d = r3d_deid_new_keyed(NULL, KEY, NULL);
        r3d_error err = R3D_ERROR_INIT;
        r3d_dcm_file *out = deid(d, in, NULL, &err);
        CHECK(out != NULL);
        if (out) {
            char b[128];
            CHECK_STR(r3d_dcm_transfer_syntax(out), R3D_TS_EXPLICIT_LE);
            CHECK_INT(r3d_dcm_big_endian(out), 0);
            CHECK_NEAR(r3d_dcm_num1(out, r3d_dcm_root(out), T(0x0028, 0x0010), 0), 2, 0);
            CHECK_STR(str(out, T(0x0010, 0x0010), b), "");
            const r3d_dcm_el *px = r3d_dcm_find(r3d_dcm_root(out), T(0x7FE0, 0x0010));
            CHECK(px && px->len == 8 && px->vr == R3D_VR('O', 'W'));
            for (int i = 0; px && i < 4; i++)
                CHECK_INT(px->val[2 * i] | px->val[2 * i + 1] << 8, (i + 1) * 100);
            const r3d_dcm_el *us = r3d_dcm_find(r3d_dcm_root(out), T(0x0028, 0x0100));
            CHECK(us && us->vr == R3D_VR('U', 'S'));
        } else {
            fprintf(stderr, "  %s\n", err.msg);
        }
        r3d_dcm_close(out);
        r3d_dcm_close(in);
        r3d_deid_free(d);
    }
}

static void test_deid_encapsulated_keeps_fragments_and_syntax(void)
{
    spec s = {1, 0, "1.2.3.4.900", NULL, NULL, 1};
    r3d_dcm_file *in = build(&s);
    r3d_deid *d = r3d_deid_new_keyed(NULL, KEY, NULL);
    r3d_dcm_file *out = deid(d, in, NULL, NULL);
    CHECK(out != NULL);
    if (out) {
        CHECK_STR(r3d_dcm_transfer_syntax(out), "1.2.840.10008.1.2.4.50");
        const r3d_dcm_el *pa = r3d_dcm_find(r3d_dcm_root(in), T(0x7FE0, 0x0010));
        const r3d_dcm_el *pb = r3d_dcm_find(r3d_dcm_root(out), T(0x7FE0, 0x0010));
        CHECK(pb && pb->n_frag == 1 && pb->frag_len[0] == pa->frag_len[0] &&
              memcmp(pb->frag[0], pa->frag[0], pa->frag_len[0]) == 0);
    }
    r3d_dcm_close(out);
    r3d_dcm_close(in);
    r3d_deid_free(d);
}

static void test_deid_report_names_tags_never_values(void)
{
    spec s = {1, 0, "1.2.3.4.1000", NULL, NULL, 0};
    r3d_dcm_file *in = build(&s);
    r3d_deid *d = r3d_deid_new_keyed(NULL, KEY, NULL);
    char dir[] = "/tmp/r3d_test_deid_XXXXXX", path[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/o.dcm", dir);
    CHECK_INT(r3d_deid_file(d, in, "a/b.dcm", path, NULL), R3D_OK);
    r3d_error e = R3D_ERROR_INIT;
    r3d_fail(&e, R3D_EFORMAT, "x.dcm: broken");
    r3d_deid_note_failure(d, "x.dcm", &e);
    r3d_deid_note_skipped(d, "notes.txt", "not DICOM");
    int w, f, k;
    r3d_deid_counts(d, &w, &f, &k);
    CHECK(w == 1 && f == 1 && k == 1);
    char *json = r3d_deid_report_json(d);
    CHECK_CONTAINS(json, "\"(0010,0010)\"");
    CHECK_CONTAINS(json, "PatientName");
    CHECK_CONTAINS(json, "\"private attributes\"");
    CHECK_CONTAINS(json, "x.dcm: broken");
    const char *values[] = {"Doe^Jane", "PID12345", "General Hospital", "19700101", "secret",
                            "1.2.3.4.1000", "CHEST"};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        if (json && strstr(json, values[i])) {
            fprintf(stderr, "  report holds the value \"%s\"\n", values[i]);
            check_failures_in_test++;
        }
    free(json);
    remove(path);
    remove(dir);
    r3d_dcm_close(in);
    r3d_deid_free(d);
}

/* Retain Safe Private: only the listed creators' listed elements survive
 * (by creator, or at the vendor's usual block when the creator element was
 * stripped and Manufacturer names the vendor); an implicit-VR private
 * sequence stays a sequence; an empty SpecificCharacterSet is dropped. */
static r3d_dcm_file *build_private(int explicit_vr, const char *manufacturer, int with_creator)
{
    dbuf b;
    db_init(&b, explicit_vr, 0);
    db_str(&b, 0x0008, 0x0005, "CS", "");
    db_str(&b, 0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.4");
    db_str(&b, 0x0008, 0x0018, "UI", "1.2.3.4.9");
    db_str(&b, 0x0008, 0x0060, "CS", "MR");
    db_str(&b, 0x0008, 0x0070, "LO", manufacturer);
    db_str(&b, 0x0010, 0x0010, "PN", "Doe^Jane");
    if (with_creator) {
        db_str(&b, 0x0029, 0x0010, "LO", "SIEMENS CSA HEADER");
        db_str(&b, 0x0029, 0x0011, "LO", "SIEMENS MEDCOM HEADER2");
    }
    static const uint8_t csa[8] = {'S', 'V', '1', '0', 4, 3, 2, 1};
    db_el(&b, 0x0029, 0x1010, "OB", csa, 8);     /* CSA image header: safe */
    db_str(&b, 0x0029, 0x1020, "OB", "PROTOCOL Doe"); /* CSA series header: not kept */
    db_str(&b, 0x0029, 0x1160, "LO", "Doe");       /* other creator's block: not kept */
    if (with_creator) {
        db_str(&b, 0x2005, 0x0014, "LO", "Philips MR Imaging DD 005");
        /* (2005,140F) private sequence with one item holding a scale slope */
        dbuf it;
        db_init(&it, explicit_vr, 0);
        db_str(&it, 0x2005, 0x0010, "LO", "Philips MR Imaging DD 001");
        float ss = 0.5f;
        db_el(&it, 0x2005, 0x100E, "FL", &ss, 4);
        db_str(&it, 0x2005, 0x1011, "LO", "Doe"); /* not in the list */
        db_hdr(&b, 0x2005, 0x140F, "SQ", R3D_DCM_UNDEFINED);
        db_item(&b, R3D_DCM_UNDEFINED);
        db_put(&b, it.b, it.n);
        db_item_end(&b);
        db_seq_end(&b);
        free(it.b);
    }
    db_image(&b, 2, 2, 1, 16, 12, 0, "MONOCHROME2", 0);
    db_hdr(&b, 0x7FE0, 0x0010, "OW", 8);
    for (int i = 1; i <= 4; i++)
        db_u16(&b, (uint16_t)i);
    dbuf f;
    db_part10(&f, explicit_vr ? "1.2.840.10008.1.2.1" : "1.2.840.10008.1.2", b.b, b.n);
    free(b.b);
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *file = r3d_dcm_parse(f.b, f.n, 1, "private.dcm", 0, &err);
    if (!file)
        fprintf(stderr, "  build: %s\n", err.msg);
    return file;
}

static void test_deid_retain_safe_private(void)
{
    r3d_error err = R3D_ERROR_INIT;
    r3d_deid_opts o = R3D_DEID_OPTS_INIT;
    o.retain_safe_private = 1;
    for (int ev = 0; ev <= 1; ev++) {
        r3d_dcm_file *in = build_private(ev, "SIEMENS", 1);
        CHECK(in != NULL);
        if (!in)
            return;
        r3d_deid *d = r3d_deid_new_keyed(&o, KEY, &err);
        r3d_dcm_file *out = deid(d, in, NULL, &err);
        CHECK(out != NULL);
        if (out) {
            const r3d_dcm_item *r = r3d_dcm_root(out);
            const r3d_dcm_el *e = r3d_dcm_find(r, T(0x0029, 0x1010));
            CHECK(e && e->len == 8 && !memcmp(e->val, "SV10", 4));
            CHECK(r3d_dcm_find(r, T(0x0029, 0x0010)) != NULL); /* its creator */
            CHECK(r3d_dcm_find(r, T(0x0029, 0x1020)) == NULL);
            CHECK(r3d_dcm_find(r, T(0x0029, 0x1160)) == NULL);
            CHECK(r3d_dcm_find(r, T(0x0029, 0x0011)) == NULL);
            CHECK(r3d_dcm_find(r, T(0x0008, 0x0005)) == NULL); /* empty charset dropped */
            const r3d_dcm_el *sq = r3d_dcm_find(r, T(0x2005, 0x140F));
            CHECK(sq && sq->vr == R3D_VR('S', 'Q') && sq->n_items == 1);
            if (sq && sq->n_items == 1) {
                const r3d_dcm_item *it = &sq->items[0];
                CHECK_NEAR(r3d_dcm_num1(out, it, T(0x2005, 0x100E), 0), 0.5, 1e-9);
                CHECK(r3d_dcm_find(it, T(0x2005, 0x1011)) == NULL);
            }
            char buf[128];
            CHECK_STR(str(out, T(0x0010, 0x0010), buf), ""); /* Z: emptied */
            const r3d_dcm_item *m = r3d_dcm_seq_item(r, T(0x0012, 0x0064), 1);
            CHECK(m != NULL);
            if (m) {
                r3d_dcm_str(out, m, T(0x0008, 0x0100), -1, buf, sizeof buf);
                CHECK_STR(buf, "113111");
            }
            r3d_dcm_close(out);
        }
        r3d_deid_free(d);
        r3d_dcm_close(in);
    }
    /* creator stripped: kept at the usual block only for the named vendor */
    for (int vendor = 0; vendor <= 1; vendor++) {
        r3d_dcm_file *in = build_private(1, vendor ? "SIEMENS" : "ACME", 0);
        r3d_deid *d = r3d_deid_new_keyed(&o, KEY, &err);
        r3d_dcm_file *out = in ? deid(d, in, NULL, &err) : NULL;
        CHECK(out != NULL);
        if (out) {
            CHECK((r3d_dcm_find(r3d_dcm_root(out), T(0x0029, 0x1010)) != NULL) == vendor);
            CHECK(r3d_dcm_find(r3d_dcm_root(out), T(0x0029, 0x1020)) == NULL);
            r3d_dcm_close(out);
        }
        r3d_deid_free(d);
        r3d_dcm_close(in);
    }
    /* without the option: nothing private at all */
    r3d_deid_opts basic = R3D_DEID_OPTS_INIT;
    r3d_dcm_file *in = build_private(1, "SIEMENS", 1);
    r3d_deid *d = r3d_deid_new_keyed(&basic, KEY, &err);
    r3d_dcm_file *out = in ? deid(d, in, NULL, &err) : NULL;
    CHECK(out != NULL);
    if (out) {
        const r3d_dcm_item *r = r3d_dcm_root(out);
        for (uint32_t i = 0; i < r->n; i++)
            CHECK(!((r->el[i].tag >> 16) & 1));
        r3d_dcm_close(out);
    }
    r3d_deid_free(d);
    r3d_dcm_close(in);
}

int main(void)
{
    RUN(test_deid_basic_profile_actions_on_a_ct);
    RUN(test_deid_uids_consistent_across_files_of_a_run);
    RUN(test_deid_options_retain_dates_and_remove_descriptors);
    RUN(test_deid_burned_in_annotation_refused_unless_allowed);
    RUN(test_deid_big_endian_and_implicit_inputs_become_explicit_le);
    RUN(test_deid_encapsulated_keeps_fragments_and_syntax);
    RUN(test_deid_report_names_tags_never_values);
    RUN(test_deid_retain_safe_private);
    return CHECK_DONE("test_deid");
}

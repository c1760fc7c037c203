/* test_structures.c - the anatomical structure registry: TotalSegmentator v2
 * numbering, unique names / values / colours / Chinese names, complete codes
 * whose SNOMED CT identifiers pass their Verhoeff check digit, laterality
 * that agrees with the name, lookups both ways, aliases, and the 1000 nodule
 * entries (also built from several threads at once). */
#include "check.h"

#include <pthread.h>

#include "r3d/seg.h"

/* SNOMED CT identifiers end in a Verhoeff check digit and have the
 * partition "00" (concept) before it: a mistyped code fails this. */
static int sctid_valid(const char *s)
{
    static const int d[10][10] = {
        {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 2, 3, 4, 0, 6, 7, 8, 9, 5},
        {2, 3, 4, 0, 1, 7, 8, 9, 5, 6}, {3, 4, 0, 1, 2, 8, 9, 5, 6, 7},
        {4, 0, 1, 2, 3, 9, 5, 6, 7, 8}, {5, 9, 8, 7, 6, 0, 4, 3, 2, 1},
        {6, 5, 9, 8, 7, 1, 0, 4, 3, 2}, {7, 6, 5, 9, 8, 2, 1, 0, 4, 3},
        {8, 7, 6, 5, 9, 3, 2, 1, 0, 4}, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0}};
    static const int p[8][10] = {
        {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 5, 7, 6, 2, 8, 3, 0, 9, 4},
        {5, 8, 0, 3, 7, 9, 6, 1, 4, 2}, {8, 9, 1, 6, 0, 4, 3, 5, 2, 7},
        {9, 4, 5, 3, 1, 2, 6, 8, 7, 0}, {4, 2, 8, 6, 5, 7, 3, 9, 0, 1},
        {2, 7, 9, 3, 8, 0, 6, 4, 1, 5}, {7, 0, 4, 6, 9, 1, 3, 2, 5, 8}};
    size_t n = strlen(s);
    if (n < 6 || n > 18 || s[0] == '0')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    if (s[n - 3] != '0' || s[n - 2] != '0') /* partition: concept */
        return 0;
    int c = 0;
    for (size_t i = 0; i < n; i++)
        c = d[c][p[i % 8][s[n - 1 - i] - '0']];
    return c == 0;
}

static int code_complete(const r3d_code *c)
{
    return c->value && c->scheme && c->meaning && c->value[0] && c->scheme[0] && c->meaning[0];
}
static int code_empty(const r3d_code *c)
{
    return c->value && c->scheme && c->meaning && !c->value[0] && !c->scheme[0] && !c->meaning[0];
}
static int code_ok(const r3d_code *c, int required)
{
    if (code_empty(c))
        return !required;
    return code_complete(c) && (strcmp(c->scheme, "SCT") || sctid_valid(c->value));
}

/* Valid UTF-8 with at least one CJK character. */
static int chinese(const char *s)
{
    int cjk = 0;
    const unsigned char *u = (const unsigned char *)s;
    while (*u) {
        unsigned cp;
        int n;
        if (*u < 0x80)
            cp = *u, n = 0;
        else if ((*u & 0xE0) == 0xC0)
            cp = *u & 0x1F, n = 1;
        else if ((*u & 0xF0) == 0xE0)
            cp = *u & 0x0F, n = 2;
        else if ((*u & 0xF8) == 0xF0)
            cp = *u & 0x07, n = 3;
        else
            return 0;
        u++;
        for (int i = 0; i < n; i++, u++) {
            if ((*u & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (*u & 0x3F);
        }
        if (cp >= 0x4E00 && cp <= 0x9FFF)
            cjk = 1;
    }
    return cjk;
}

static int all_count(void)
{
    return r3d_structure_count() + (R3D_LABEL_NODULE_MAX - R3D_LABEL_NODULE_FIRST + 1);
}
static const r3d_structure *all_at(int i)
{
    int n = r3d_structure_count();
    return i < n ? r3d_structure_at(i)
                 : r3d_structure_by_value((uint16_t)(R3D_LABEL_NODULE_FIRST + i - n));
}

static void test_structures_totalsegmentator_v2_numbering(void)
{
    /* class_map["total"] of TotalSegmentator v2, spot checks across it. */
    static const struct {
        int v;
        const char *name;
    } ts[] = {{1, "spleen"},           {5, "liver"},
              {10, "lung_upper_lobe_left"}, {13, "lung_middle_lobe_right"},
              {14, "lung_lower_lobe_right"}, {16, "trachea"},
              {23, "kidney_cyst_left"}, {26, "vertebrae_S1"},
              {31, "vertebrae_L1"},    {43, "vertebrae_T1"},
              {50, "vertebrae_C1"},    {51, "heart"},
              {53, "pulmonary_vein"},  {64, "portal_vein_and_splenic_vein"},
              {77, "hip_left"},        {79, "spinal_cord"},
              {90, "brain"},           {91, "skull"},
              {92, "rib_left_1"},      {103, "rib_left_12"},
              {104, "rib_right_1"},    {115, "rib_right_12"},
              {116, "sternum"},        {117, "costal_cartilages"}};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        const r3d_structure *s = r3d_structure_by_value((uint16_t)ts[i].v);
        CHECK(s != NULL);
        if (s)
            CHECK_STR(s->name, ts[i].name);
    }
    /* 1..117 all present, nothing in 118..199, ours from 200. */
    for (int v = 1; v <= 117; v++)
        CHECK(r3d_structure_by_value((uint16_t)v) != NULL);
    for (int v = 118; v < 200; v++)
        CHECK(r3d_structure_by_value((uint16_t)v) == NULL);
    CHECK(r3d_structure_by_value(0) == NULL);
    CHECK(r3d_structure_by_value(R3D_LABEL_NODULE_MAX + 1) == NULL);
    CHECK(r3d_structure_by_value(65535) == NULL);
    for (int i = 117; i < r3d_structure_count(); i++)
        CHECK(r3d_structure_at(i)->value >= 200 &&
              r3d_structure_at(i)->value < R3D_LABEL_NODULE_FIRST);
    CHECK(r3d_structure_at(-1) == NULL);
    CHECK(r3d_structure_at(r3d_structure_count()) == NULL);
}

static void test_structures_ours_exist(void)
{
    static const char *ours[] = {"body", "skin", "lung_left", "lung_right", "airway", "bronchi",
                                 "pulmonary_artery", "pulmonary_vessels", "mandible", "ribs",
                                 "lung_segment_right_s1", "lung_segment_left_s1_2",
                                 "lung_segment_right_s10", "lung_segment_left_s7_8"};
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++) {
        const r3d_structure *s = r3d_structure_find(ours[i]);
        CHECK(s != NULL);
        if (s)
            CHECK(s->value >= 200);
    }
    /* TotalSegmentator's names for two of them. */
    CHECK(r3d_structure_find("lung_trachea_bronchia") == r3d_structure_find("airway"));
    CHECK(r3d_structure_find("lung_vessels") == r3d_structure_find("pulmonary_vessels"));
    CHECK(r3d_structure_find("no_such_organ") == NULL);
    CHECK(r3d_structure_find("") == NULL);
    CHECK(r3d_structure_find(NULL) == NULL);
    CHECK(r3d_structure_find("Liver") == NULL); /* names are exact */
    /* 18 bronchopulmonary segments, each in its lobe */
    int nseg = 0;
    for (int i = 0; i < r3d_structure_count(); i++)
        if (!strncmp(r3d_structure_at(i)->name, "lung_segment_", 13)) {
            const r3d_structure *s = r3d_structure_at(i);
            nseg++;
            CHECK(s->region.value[0] || strstr(s->type.meaning, "segment of"));
        }
    CHECK_INT(nseg, 18);
}

static void test_structures_unique_and_ordered(void)
{
    int n = all_count();
    for (int i = 0; i < n; i++) {
        const r3d_structure *a = all_at(i);
        CHECK(a != NULL);
        if (!a)
            return;
        if (i > 0)
            CHECK(all_at(i - 1)->value < a->value); /* value order */
        for (int j = i + 1; j < n; j++) {
            const r3d_structure *b = all_at(j);
            if (a->value == b->value || !strcmp(a->name, b->name) ||
                !strcmp(a->name_zh, b->name_zh) || !memcmp(a->rgb, b->rgb, 3)) {
                fprintf(stderr, "  clash: %s / %s\n", a->name, b->name);
                check_failures_in_test++;
            }
        }
    }
}

static void test_structures_names_and_codes(void)
{
    int n = all_count();
    for (int i = 0; i < n; i++) {
        const r3d_structure *s = all_at(i);
        int ok = 1;
        /* names: lower-case identifiers (vertebra levels upper-case) < 64 bytes */
        ok &= strlen(s->name) > 0 && strlen(s->name) < 64 && strlen(s->name_zh) < 64;
        for (const char *c = s->name; *c; c++)
            ok &= (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' ||
                  (*c >= 'A' && *c <= 'Z' && !strncmp(s->name, "vertebrae_", 10));
        ok &= chinese(s->name_zh);
        ok &= code_ok(&s->category, 1) && code_ok(&s->type, 1) && code_ok(&s->modifier, 0) &&
              code_ok(&s->region, 0) && code_ok(&s->region_modifier, 0);
        /* DICOM CID 7150 categories we use */
        ok &= !strcmp(s->category.value, "123037004") || !strcmp(s->category.value, "49755003");
        /* laterality in the name <-> a Left / Right modifier (of the type,
         * or of the region for a finding such as a kidney cyst) */
        const char *lat = s->modifier.value[0] ? s->modifier.value : s->region_modifier.value;
        int left = strstr(s->name, "_left") != NULL, right = strstr(s->name, "_right") != NULL;
        /* ... or in the type itself ("Middle lobe of right lung") */
        int type_left = strstr(s->type.meaning, "left") != NULL;
        int type_right = strstr(s->type.meaning, "right") != NULL;
        ok &= left == (!strcmp(lat, "7771000") || type_left) &&
              right == (!strcmp(lat, "24028007") || type_right);
        ok &= !(lat[0] && (type_left || type_right)); /* not both */
        /* a region modifier needs a region */
        ok &= !s->region_modifier.value[0] || s->region.value[0];
        if (!ok) {
            fprintf(stderr, "  bad entry: %s\n", s->name);
            check_failures_in_test++;
        }
    }
    /* the check itself rejects a typo */
    CHECK(sctid_valid("39607008"));
    CHECK(!sctid_valid("39607009"));
    CHECK(!sctid_valid("39670008"));
}

static void test_structures_lookup_round_trip(void)
{
    for (int i = 0; i < all_count(); i++) {
        const r3d_structure *s = all_at(i);
        CHECK(r3d_structure_find(s->name) == s);
        CHECK(r3d_structure_by_value(s->value) == s);
    }
    const r3d_structure *lul = r3d_structure_find("lung_upper_lobe_left");
    CHECK(lul && lul->value == 10);
    if (lul) {
        CHECK_STR(lul->name_zh, "左肺上叶");
        CHECK_STR(lul->type.value, "45653009");
        CHECK_STR(lul->modifier.meaning, "Left");
        r3d_label l;
        r3d_structure_label(lul, &l);
        CHECK_INT(l.value, 10);
        CHECK_STR(l.name, "lung_upper_lobe_left");
        CHECK_STR(l.name_zh, "左肺上叶");
        CHECK(!memcmp(l.rgb, lul->rgb, 3));
    }
    r3d_label z;
    memset(&z, 0x55, sizeof z);
    r3d_structure_label(NULL, &z);
    CHECK_INT(z.value, 0);
    CHECK_STR(z.name, "");
}

static void test_structures_nodules(void)
{
    const r3d_structure *a = r3d_structure_by_value(R3D_LABEL_NODULE_FIRST);
    const r3d_structure *b = r3d_structure_find("lung_nodule_1000");
    CHECK(a && b);
    if (!a || !b)
        return;
    CHECK_STR(a->name, "lung_nodule_1");
    CHECK_STR(a->name_zh, "肺结节1");
    CHECK_INT(b->value, R3D_LABEL_NODULE_MAX);
    CHECK_STR(a->category.value, "49755003");
    CHECK_STR(a->type.value, "27925004");
    CHECK_STR(a->region.value, "39607008");
    CHECK(r3d_structure_find("lung_nodule_7") ==
          r3d_structure_by_value(R3D_LABEL_NODULE_FIRST + 6));
    static const char *bad[] = {"lung_nodule_", "lung_nodule_0", "lung_nodule_01",
                                "lung_nodule_1001",
                                "lung_nodule_7x", "lung_nodule_-1", "lung_nodule_99999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(r3d_structure_find(bad[i]) == NULL);
}

static void *nodule_thread(void *arg)
{
    (void)arg;
    return (void *)r3d_structure_by_value(R3D_LABEL_NODULE_FIRST + 41);
}

int main(void)
{
    /* First use from several threads at once: all see the same entry. */
    pthread_t t[4];
    void *r[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, nodule_thread, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], &r[i]);
    int same = r[0] && r[0] == r[1] && r[1] == r[2] && r[2] == r[3];

    RUN(test_structures_totalsegmentator_v2_numbering);
    RUN(test_structures_ours_exist);
    RUN(test_structures_unique_and_ordered);
    RUN(test_structures_names_and_codes);
    RUN(test_structures_lookup_round_trip);
    RUN(test_structures_nodules);
    if (!same) {
        fprintf(stderr, "FAILED: concurrent first use\n");
        check_failed++;
    }
    return CHECK_DONE("test_structures");
}

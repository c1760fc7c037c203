/* test_store_inject.c - hostile input: SQL metacharacters and path
 * traversal in every name field, oversized values, malformed JSON. Each is
 * refused with a clear error and changes nothing: the database's change
 * counter, the audit trail and the blob folder are the same afterwards. */
#define _XOPEN_SOURCE 700
#include "check.h"
#include "test_store_fixture.h"

#include <dirent.h>
#include <sqlite3.h>

static const char *const bad_names[] = {
    "carl'; DROP TABLE users; --",
    "x\" OR \"1\"=\"1",
    "../../etc/passwd",
    "..",
    "a/b",
    "a\\b",
    "",
    "-rf",
    ".hidden",
    "name with spaces",
    "tab\tname",
    "new\nline",
    "名字",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "%s%s%n",
    "NUL\x01",
};
#define N_BAD ((int)(sizeof bad_names / sizeof bad_names[0]))

typedef struct snapshot {
    int64_t users, audit, versions, meshes, docs, jobs, cases, blobs_rows, settings;
    int blob_files;
} snapshot;

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char sub[1024];
        snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
        DIR *d2 = opendir(sub);
        if (d2) {
            closedir(d2);
            n += count_files(sub);
        } else {
            n++;
        }
    }
    closedir(d);
    return n;
}

static int64_t q1(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *q = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return v;
}

static void snap(fx_store *f, snapshot *s)
{
    char path[700];
    snprintf(path, sizeof path, "%s/store.db", f->store);
    sqlite3 *db = NULL;
    sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
    s->users = q1(db, "SELECT count(*) FROM users");
    s->audit = q1(db, "SELECT count(*) FROM audit");
    s->versions = q1(db, "SELECT count(*) FROM label_versions");
    s->meshes = q1(db, "SELECT count(*) FROM meshes");
    s->docs = q1(db, "SELECT count(*) FROM case_docs");
    s->jobs = q1(db, "SELECT count(*) FROM jobs");
    s->cases = q1(db, "SELECT count(*) FROM cases");
    s->blobs_rows = q1(db, "SELECT count(*) FROM blobs");
    s->settings = q1(db, "SELECT count(*) FROM settings");
    sqlite3_close(db);
    snprintf(path, sizeof path, "%s/blobs", f->store);
    s->blob_files = count_files(path);
}

static int same(const snapshot *a, const snapshot *b)
{
    return a->users == b->users && a->audit == b->audit && a->versions == b->versions &&
           a->meshes == b->meshes && a->docs == b->docs && a->jobs == b->jobs &&
           a->cases == b->cases && a->blobs_rows == b->blobs_rows &&
           a->settings == b->settings && a->blob_files == b->blob_files;
}

/* The call must fail with `want` and a message, and change nothing. */
#define REFUSED(fx, call, want)                                                          \
    do {                                                                                 \
        snapshot b_, a_;                                                                 \
        snap(fx, &b_);                                                                   \
        r3d_error e_ = R3D_ERROR_INIT;                                                   \
        r3d_status st_ = (call);                                                         \
        (void)e;                                                                         \
        if (st_ != (want) || !e_.msg[0])                                                 \
            fprintf(stderr, "  %s:%d: %s gave %s (\"%s\")\n", __FILE__, __LINE__, #call, \
                    r3d_status_name(st_), e_.msg);                                       \
        CHECK_INT(st_, want);                                                            \
        CHECK(e_.msg[0] != 0);                                                           \
        snap(fx, &a_);                                                                   \
        CHECK(same(&b_, &a_));                                                           \
    } while (0)

static void test_names(void)
{
    fx_store f;
    CHECK(fx_open(&f, NULL));
    r3d_id c = fx_import(&f);
    r3d_labelmap *m = fx_labels(f.s, &f.clin, c, 10);
    r3d_id v = 0;
    r3d_error e = R3D_ERROR_INIT;
    CHECK_INT(r3d_labels_commit(f.s, &f.clin, c, m, "", NULL, &v, &e), R3D_OK);
    r3d_actor a;
    char tok[65];
    uint8_t *b = NULL;
    size_t n = 0;
    char *json = NULL;
    for (int i = 0; i < N_BAD; i++) {
        const char *x = bad_names[i];
        REFUSED(&f, r3d_user_create(f.s, &f.admin, x, FX_PASSWORD, R3D_ROLE_REVIEWER, &e_),
                R3D_EARG);
        REFUSED(&f, r3d_user_set_password(f.s, &f.admin, x, FX_PASSWORD, &e_), R3D_EARG);
        REFUSED(&f, r3d_user_set_role(f.s, &f.admin, x, R3D_ROLE_ADMIN, &e_), R3D_EARG);
        REFUSED(&f, r3d_mesh_put(f.s, &f.clin, c, v, 1, x, NULL, "abc", 3, &e_), R3D_EARG);
        REFUSED(&f, r3d_mesh_get(f.s, &f.clin, c, v, 1, x, NULL, &b, &n, &e_), R3D_EARG);
        REFUSED(&f, r3d_case_doc_put(f.s, &f.clin, c, x, "{}", &e_), R3D_EARG);
        REFUSED(&f, r3d_case_doc_get(f.s, &f.clin, c, x, &json, &e_), R3D_EARG);
        REFUSED(&f, r3d_job_submit(f.s, &f.clin, c, x, NULL, NULL, &e_), R3D_EARG);
        r3d_provenance p = {x, NULL};
        REFUSED(&f, r3d_labels_commit(f.s, &f.clin, c, m, "", &p, NULL, &e_), R3D_EARG);
        REFUSED(&f, r3d_trace(f.s, &f.clin, x, &json, &e_), R3D_EARG);
        REFUSED(&f, r3d_setting_set(f.s, &f.admin, x, 10, &e_), R3D_ENOTFOUND);
        REFUSED(&f, r3d_case_import(f.s, &f.clin, "/nonexistent", x, NULL, &e_), R3D_EARG);
        /* a failed log-in is recorded (that is its purpose); it never matches */
        r3d_status st = r3d_login(f.s, x, FX_PASSWORD, "t", tok, &a, &e);
        CHECK_INT(st, R3D_EPERM);
    }
    CHECK_INT(r3d_setting_set(f.s, &f.admin, "login.origin_failures_per_minute", 20, &e),
              R3D_OK);
    /* the tables are intact and the real users still log in */
    CHECK_INT(r3d_login(f.s, "carl", FX_PASSWORD, "t2", tok, &a, &e), R3D_OK);
    r3d_user_info *u = NULL;
    int nu = 0;
    CHECK_INT(r3d_user_list(f.s, &f.admin, &u, &nu, &e), R3D_OK);
    CHECK_INT(nu, 4);
    free(u);
    r3d_labelmap_free(m);
    fx_close(&f);
}

static void test_sizes_and_json(void)
{
    fx_store f;
    CHECK(fx_open(&f, NULL));
    r3d_id c = fx_import(&f);
    r3d_labelmap *m = fx_labels(f.s, &f.clin, c, 10);
    r3d_id v = 0;
    r3d_error e = R3D_ERROR_INIT;
    CHECK_INT(r3d_labels_commit(f.s, &f.clin, c, m, "", NULL, &v, &e), R3D_OK);
    static const char *const bad_json[] = {
        "{", "{\"a\":}", "[1,2", "nul", "{\"a\":1}}", "\"just a string\"", "42", "",
        "{\"a\":\"\x01\"", "{'single':1}",
    };
    for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++) {
        const char *j = bad_json[i];
        r3d_provenance p = {"segment", j};
        REFUSED(&f, r3d_labels_commit(f.s, &f.clin, c, m, "", &p, NULL, &e_), R3D_EARG);
        REFUSED(&f, r3d_mesh_put(f.s, &f.clin, c, v, 1, "stl", j, "abc", 3, &e_), R3D_EARG);
        REFUSED(&f, r3d_case_doc_put(f.s, &f.clin, c, "display", j, &e_), R3D_EARG);
        REFUSED(&f, r3d_job_submit(f.s, &f.clin, c, "segment", j, NULL, &e_), R3D_EARG);
    }
    /* oversized: note, parameters, documents, passwords */
    size_t big = 5 * 1024 * 1024;
    char *huge = malloc(big + 1);
    memset(huge, 'a', big);
    huge[big] = 0;
    REFUSED(&f, r3d_labels_commit(f.s, &f.clin, c, m, huge, NULL, NULL, &e_), R3D_EARG);
    char *doc = malloc(big + 16);
    snprintf(doc, big + 16, "{\"x\":\"%s\"}", huge);
    REFUSED(&f, r3d_case_doc_put(f.s, &f.clin, c, "display", doc, &e_), R3D_EARG);
    r3d_provenance p = {"segment", doc};
    REFUSED(&f, r3d_labels_commit(f.s, &f.clin, c, m, "", &p, NULL, &e_), R3D_EARG);
    REFUSED(&f, r3d_job_submit(f.s, &f.clin, c, "segment", doc, NULL, &e_), R3D_EARG);
    REFUSED(&f, r3d_user_create(f.s, &f.admin, "bigpw", huge, R3D_ROLE_REVIEWER, &e_),
            R3D_EARG);
    REFUSED(&f, r3d_case_import(f.s, &f.clin, huge, NULL, NULL, &e_), R3D_EARG);
    REFUSED(&f, r3d_mesh_put(f.s, &f.clin, c, v, 70000, "stl", NULL, "abc", 3, &e_), R3D_EARG);
    REFUSED(&f, r3d_mesh_put(f.s, &f.clin, c, v, -1, "stl", NULL, "abc", 3, &e_), R3D_EARG);
    free(doc);
    free(huge);
    /* control characters in a note */
    REFUSED(&f, r3d_labels_commit(f.s, &f.clin, c, m, "line\nbreak", NULL, NULL, &e_), R3D_EARG);
    /* not a uint16 label map */
    r3d_volume *img = NULL;
    r3d_case_image(f.s, &f.clin, c, &img, &e);
    r3d_labelmap wrong = {img, {0}};
    REFUSED(&f, r3d_labels_commit(f.s, &f.clin, c, &wrong, "", NULL, NULL, &e_), R3D_EARG);
    r3d_volume_free(img);
    /* ids that do not exist or belong elsewhere */
    REFUSED(&f, r3d_labels_set_head(f.s, &f.clin, c, v + 1000, &e_), R3D_ENOTFOUND);
    REFUSED(&f, r3d_labels_set_head(f.s, &f.clin, c + 1000, v, &e_), R3D_ENOTFOUND);
    REFUSED(&f, r3d_mesh_put(f.s, &f.clin, c, v + 1000, 1, "stl", NULL, "a", 1, &e_),
            R3D_ENOTFOUND);
    REFUSED(&f, r3d_case_delete(f.s, &f.clin, -5, &e_), R3D_ENOTFOUND);
    /* traversal and non-images as import input */
    REFUSED(&f, r3d_case_import(f.s, &f.clin, "../../../../etc/hostname", NULL, NULL, &e_),
            R3D_ENOTFOUND); /* "no DICOM images found" */
    char path[700];
    snprintf(path, sizeof path, "%s/store/../store/store.db", f.dir);
    snapshot b1, a1;
    snap(&f, &b1);
    CHECK(r3d_case_import(f.s, &f.clin, path, NULL, NULL, &e) != R3D_OK);
    snap(&f, &a1);
    CHECK(same(&b1, &a1));
    char *rep = NULL;
    CHECK_INT(r3d_store_check(f.s, &rep, &e), R3D_OK);
    free(rep);
    r3d_labelmap_free(m);
    fx_close(&f);
}

int main(void)
{
    RUN(test_names);
    RUN(test_sizes_and_json);
    return CHECK_DONE("test_store_inject");
}

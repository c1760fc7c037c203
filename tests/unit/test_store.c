/* test_store.c - the case store end to end through its API: import, label
 * versions with undo, meshes, documents, jobs (and their recovery after a
 * crash), trace, check, backup, reopen, encryption at rest. */
#define _GNU_SOURCE
#include "check.h"
#include "test_store_fixture.h"

#include <cjson/cJSON.h>
#include <sodium.h>
#include <sqlite3.h>
#include <pthread.h>
#include <sys/wait.h>

static void test_import_and_view(void)
{
    fx_store f;
    CHECK(fx_open(&f, NULL));
    r3d_id c = fx_import(&f);
    CHECK(c > 0);
    r3d_case_info info;
    r3d_error e = R3D_ERROR_INIT;
    CHECK_INT(r3d_case_get(f.s, &f.rev, c, &info, &e), R3D_OK);
    CHECK_INT(info.dim[0], 24);
    CHECK_INT(info.dim[2], 12);
    CHECK_NEAR(info.spacing_mm[2], 2.5, 1e-6);
    CHECK_INT(info.head_version, 0);
    CHECK(strlen(info.study_uid) > 5);
    r3d_volume *v = NULL;
    CHECK_INT(r3d_case_image(f.s, &f.rev, c, &v, &e), R3D_OK);
    if (v) {
        CHECK_INT(v->dtype, R3D_I16);
        CHECK_INT(((int16_t *)v->voxels)[(6 * 20 + 10) * 24 + 12], 700);
        CHECK_INT(((int16_t *)v->voxels)[0], -1000);
        CHECK_NEAR(v->ijk_to_lps[0][3], -10, 1e-5);
        r3d_volume_free(v);
    }
    uint8_t *b = NULL;
    size_t n = 0;
    CHECK_INT(r3d_case_image_nifti(f.s, &f.rev, c, &b, &n, &e), R3D_OK);
    CHECK(n > 100 && r3d_is_gzip(b, n));
    free(b);
    r3d_case_info *all = NULL;
    int na = 0;
    CHECK_INT(r3d_case_list(f.s, &f.clin, &all, &na, &e), R3D_OK);
    CHECK_INT(na, 1);
    free(all);
    /* engineers see no patient data */
    CHECK_INT(r3d_case_list(f.s, &f.eng, &all, &na, &e), R3D_EPERM);
    CHECK_INT(r3d_case_image(f.s, &f.eng, c, &v, &e), R3D_EPERM);
    /* a missing case */
    CHECK_INT(r3d_case_get(f.s, &f.rev, c + 100, &info, &e), R3D_ENOTFOUND);
    r3d_id last = 0;
    CHECK_INT(r3d_user_last_case(f.s, &f.rev, &last, &e), R3D_OK);
    CHECK_INT(last, c);
    fx_close(&f);
}

static void test_versions_undo(void)
{
    fx_store f;
    CHECK(fx_open(&f, NULL));
    r3d_id c = fx_import(&f);
    r3d_error e = R3D_ERROR_INIT;
    r3d_labelmap *m1 = fx_labels(f.s, &f.clin, c, 10), *m2 = fx_labels(f.s, &f.clin, c, 16);
    CHECK(m1 && m2);
    if (!m1 || !m2)
        return;
    r3d_provenance p1 = {"segment", "{\"structures\":\"all\"}"}, p2 = {"edit.brush", NULL};
    r3d_id v1 = 0, v2 = 0;
    CHECK_INT(r3d_labels_commit(f.s, &f.clin, c, m1, "automatic", &p1, &v1, &e), R3D_OK);
    CHECK_INT(r3d_labels_commit(f.s, &f.clin, c, m2, "surgeon's correction", &p2, &v2, &e),
              R3D_OK);
    CHECK(v2 > v1 && v1 > 0);
    /* reviewers may not edit */
    r3d_id v3 = 0;
    CHECK_INT(r3d_labels_commit(f.s, &f.rev, c, m2, "", &p2, &v3, &e), R3D_EPERM);
    CHECK_INT(v3, 0);
    r3d_version_info *vs = NULL;
    int nv = 0;
    CHECK_INT(r3d_labels_versions(f.s, &f.rev, c, &vs, &nv, &e), R3D_OK);
    CHECK_INT(nv, 2);
    if (nv == 2) {
        CHECK_INT(vs[0].parent, 0);
        CHECK_INT(vs[1].parent, v1);
        CHECK_STR(vs[1].algorithm, "edit.brush");
        CHECK_STR(vs[1].author, "carl");
        CHECK_STR(vs[1].note, "surgeon's correction");
        CHECK_INT(strlen(vs[0].sha256), 64);
    }
    free(vs);
    /* head is v2; "before the correction" = v1, then undo the undo */
    r3d_labelmap *got = NULL;
    CHECK_INT(r3d_labels_load(f.s, &f.rev, c, 0, &got, &e), R3D_OK);
    if (got) {
        CHECK(memcmp(got->vol->voxels, m2->vol->voxels, r3d_volume_bytes(m2->vol)) == 0);
        CHECK_INT(got->table.n, 2);
        CHECK_STR(r3d_label_table_find(&got->table, 2)->name_zh, "脾脏");
        CHECK_INT(r3d_label_table_find(&got->table, 1)->rgb[0], 200);
        r3d_labelmap_free(got);
    }
    CHECK_INT(r3d_labels_set_head(f.s, &f.clin, c, v1, &e), R3D_OK);
    CHECK_INT(r3d_labels_load(f.s, &f.rev, c, 0, &got, &e), R3D_OK);
    if (got) {
        CHECK(memcmp(got->vol->voxels, m1->vol->voxels, r3d_volume_bytes(m1->vol)) == 0);
        r3d_labelmap_free(got);
    }
    CHECK_INT(r3d_labels_load(f.s, &f.rev, c, v2, &got, &e), R3D_OK);
    if (got) {
        CHECK(memcmp(got->vol->voxels, m2->vol->voxels, r3d_volume_bytes(m2->vol)) == 0);
        r3d_labelmap_free(got);
    }
    /* the head as .nii.gz bytes for the browser, with its table */
    uint8_t *nb = NULL;
    size_t nn = 0;
    char *tj = NULL;
    CHECK_INT(r3d_labels_nifti(f.s, &f.rev, c, 0, &nb, &nn, &tj, &e), R3D_OK);
    if (nb) {
        r3d_volume *lv = r3d_nifti_read_mem(nb, nn, "labels", &e);
        CHECK(lv && lv->dtype == R3D_U16 &&
              memcmp(lv->voxels, m1->vol->voxels, r3d_volume_bytes(m1->vol)) == 0);
        r3d_volume_free(lv);
    }
    CHECK_CONTAINS(tj, "\"name_zh\":\"肝脏\"");
    free(nb);
    free(tj);
    CHECK_INT(r3d_labels_nifti(f.s, &f.eng, c, 0, &nb, &nn, NULL, &e), R3D_EPERM);
    r3d_case_info info;
    CHECK_INT(r3d_case_get(f.s, &f.rev, c, &info, &e), R3D_OK);
    CHECK_INT(info.head_version, v1);
    CHECK_INT(info.n_versions, 2);
    /* a version of another case, a wrong grid */
    r3d_id c2 = fx_import(&f);
    CHECK_INT(r3d_labels_set_head(f.s, &f.clin, c2, v1, &e), R3D_ENOTFOUND);
    int64_t dim[4] = {5, 5, 5, 1};
    r3d_volume *small = r3d_volume_new(dim, R3D_I16, NULL);
    r3d_labelmap *bad = r3d_labelmap_new(small, NULL);
    CHECK_INT(r3d_labels_commit(f.s, &f.clin, c, bad, "", &p2, &v3, &e), R3D_EARG);
    CHECK_CONTAINS(e.msg, "does not match");
    r3d_labelmap_free(bad);
    r3d_volume_free(small);
    r3d_labelmap_free(m1);
    r3d_labelmap_free(m2);
    fx_close(&f);
}

static void test_meshes_docs_trace(void)
{
    fx_store f;
    CHECK(fx_open(&f, NULL));
    r3d_id c = fx_import(&f);
    r3d_error e = R3D_ERROR_INIT;
    r3d_labelmap *m = fx_labels(f.s, &f.clin, c, 10);
    r3d_provenance p = {"segment", "{\"threshold\":300}"};
    r3d_id v = 0;
    CHECK_INT(r3d_labels_commit(f.s, &f.clin, c, m, "", &p, &v, &e), R3D_OK);
    r3d_labelmap_free(m);
    const char mesh1[] = "solid a\nendsolid a\n", mesh2[] = "solid b\nendsolid b\n";
    CHECK_INT(r3d_mesh_put(f.s, &f.clin, c, v, 1, "stl", "{\"smooth\": 5}", mesh1,
                           sizeof mesh1 - 1, &e), R3D_OK);
    CHECK_INT(r3d_mesh_put(f.s, &f.clin, c, v, 1, "stl", "{\"smooth\":5}", mesh2,
                           sizeof mesh2 - 1, &e), R3D_OK); /* same key: replaces */
    uint8_t *b = NULL;
    size_t n = 0;
    CHECK_INT(r3d_mesh_get(f.s, &f.rev, c, v, 1, "stl", "{ \"smooth\":5 }", &b, &n, &e), R3D_OK);
    CHECK(n == sizeof mesh2 - 1 && b && memcmp(b, mesh2, n) == 0);
    free(b);
    CHECK_INT(r3d_mesh_get(f.s, &f.rev, c, v, 2, "stl", "{\"smooth\":5}", &b, &n, &e),
              R3D_ENOTFOUND);
    CHECK_INT(r3d_mesh_put(f.s, &f.rev, c, v, 1, "stl", "{}", mesh1, 3, &e), R3D_EPERM);

    char *json = NULL;
    CHECK_INT(r3d_case_doc_get(f.s, &f.rev, c, "display", &json, &e), R3D_OK);
    CHECK_STR(json, "{}");
    free(json);
    CHECK_INT(r3d_case_doc_put(f.s, &f.clin, c, "display", "{\"liver\":{\"opacity\":0.5}}", &e),
              R3D_OK);
    CHECK_INT(r3d_case_doc_put(f.s, &f.clin, c, "display", "{\"liver\":{\"opacity\":0.7}}", &e),
              R3D_OK);
    CHECK_INT(r3d_case_doc_get(f.s, &f.rev, c, "display", &json, &e), R3D_OK);
    CHECK_CONTAINS(json, "0.7");
    free(json);

    /* trace the mesh file by its hash back to the input file */
    char sha[65];
    {
        uint8_t h[32];
        crypto_hash_sha256(h, (const uint8_t *)mesh2, sizeof mesh2 - 1);
        for (int i = 0; i < 32; i++)
            sprintf(sha + 2 * i, "%02x", h[i]);
    }
    CHECK_INT(r3d_trace(f.s, &f.rev, sha, &json, &e), R3D_OK);
    cJSON *t = json ? cJSON_Parse(json) : NULL;
    CHECK(t != NULL);
    if (t) {
        cJSON *r = cJSON_GetObjectItem(t, "result");
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(r, "kind")), "mesh");
        cJSON *vs = cJSON_GetObjectItem(t, "versions");
        CHECK_INT(cJSON_GetArraySize(vs), 1);
        cJSON *v0 = cJSON_GetArrayItem(vs, 0);
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(v0, "algorithm")), "segment");
        CHECK_INT(cJSON_GetObjectItem(cJSON_GetObjectItem(v0, "parameters"), "threshold")->valueint,
                  300);
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(v0, "software")), r3d_version());
        cJSON *in = cJSON_GetObjectItem(t, "inputs");
        CHECK_INT(cJSON_GetArraySize(in), 1);
        /* reviewers do not see input file names */
        CHECK(cJSON_GetObjectItem(cJSON_GetArrayItem(in, 0), "file") == NULL);
        CHECK_INT(strlen(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(in, 0),
                                                                  "sha256"))), 64);
        cJSON_Delete(t);
    }
    free(json);
    CHECK_INT(r3d_trace(f.s, &f.clin, "case:1/version:1", &json, &e), R3D_OK);
    CHECK_CONTAINS(json, "\"file\"");
    free(json);
    CHECK_INT(r3d_trace(f.s, &f.rev, "case:1/version:99", &json, &e), R3D_ENOTFOUND);
    CHECK_INT(r3d_trace(f.s, &f.rev, "case:1; DROP TABLE cases", &json, &e), R3D_EARG);
    CHECK_INT(r3d_trace(f.s, &f.eng, "case:1", &json, &e), R3D_EPERM);
    fx_close(&f);
}

static void test_jobs_and_recovery(void)
{
    fx_store f;
    CHECK(fx_open(&f, NULL));
    r3d_id c = fx_import(&f);
    r3d_error e = R3D_ERROR_INIT;
    r3d_id j1 = 0, j2 = 0;
    CHECK_INT(r3d_job_submit(f.s, &f.clin, c, "segment", "{\"structures\":\"all\"}", &j1, &e),
              R3D_OK);
    CHECK_INT(r3d_job_submit(f.s, &f.clin, c, "mesh", NULL, &j2, &e), R3D_OK);
    CHECK_INT(r3d_job_submit(f.s, &f.rev, c, "mesh", NULL, NULL, &e), R3D_EPERM);
    CHECK_INT(r3d_job_submit(f.s, &f.clin, c, "mesh", "{not json", NULL, &e), R3D_EARG);
    r3d_job j;
    CHECK_INT(r3d_job_claim(f.s, &j, &e), R3D_OK);
    CHECK_INT(j.id, j1);
    CHECK_INT(j.state, R3D_JOB_RUNNING);
    CHECK_STR(j.params_json, "{\"structures\":\"all\"}");
    r3d_job_clear(&j);
    CHECK_INT(r3d_job_progress(f.s, j1, 0.5, "lungs", &e), R3D_OK);
    CHECK_INT(r3d_job_get(f.s, &f.rev, j1, &j, &e), R3D_OK);
    CHECK_NEAR(j.progress, 0.5, 1e-9);
    CHECK_STR(j.stage, "lungs");
    r3d_job_clear(&j);
    CHECK_INT(r3d_job_finish(f.s, j1, NULL, "{\"version\":3}", &e), R3D_OK);
    CHECK_INT(r3d_job_finish(f.s, j1, NULL, NULL, &e), R3D_ECONFLICT);
    CHECK_INT(r3d_job_get(f.s, &f.rev, j1, &j, &e), R3D_OK);
    CHECK_INT(j.state, R3D_JOB_DONE);
    CHECK_STR(j.result_json, "{\"version\":3}");
    r3d_job_clear(&j);

    /* a worker process claims j2 and dies: reopening re-queues it */
    r3d_store_close(f.s);
    f.s = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        r3d_store *s = NULL;
        if (r3d_store_open(f.store, NULL, &s, NULL))
            _exit(2);
        r3d_job jj;
        if (r3d_job_claim(s, &jj, NULL))
            _exit(3);
        _exit(jj.id == j2 ? 0 : 4); /* no finish, no close: a crash */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_INT(r3d_store_open(f.store, NULL, &f.s, &e), R3D_OK);
    CHECK(fx_login(f.s, "rita", f.tok_rev, &f.rev));
    CHECK_INT(r3d_job_get(f.s, &f.rev, j2, &j, &e), R3D_OK);
    CHECK_INT(j.state, R3D_JOB_QUEUED);
    r3d_job_clear(&j);
    /* three crashed attempts: failed, with a sentence */
    for (int round = 0; round < 3; round++) {
        r3d_store_close(f.s);
        pid = fork();
        if (pid == 0) {
            r3d_store *s = NULL;
            r3d_job jj;
            if (r3d_store_open(f.store, NULL, &s, NULL) || r3d_job_claim(s, &jj, NULL))
                _exit(3);
            _exit(0);
        }
        waitpid(pid, &status, 0);
        CHECK_INT(r3d_store_open(f.store, NULL, &f.s, &e), R3D_OK);
    }
    CHECK(fx_login(f.s, "rita", f.tok_rev, &f.rev));
    CHECK_INT(r3d_job_get(f.s, &f.rev, j2, &j, &e), R3D_OK);
    CHECK_INT(j.state, R3D_JOB_FAILED);
    CHECK_CONTAINS(j.message, "interrupted");
    r3d_job_clear(&j);
    char *rep = NULL;
    CHECK_INT(r3d_store_check(f.s, &rep, &e), R3D_OK);
    free(rep);
    fx_close(&f);
}

static void test_check_backup_reopen(void)
{
    fx_store f;
    CHECK(fx_open(&f, NULL));
    r3d_id c = fx_import(&f);
    r3d_error e = R3D_ERROR_INIT;
    r3d_labelmap *m = fx_labels(f.s, &f.clin, c, 10);
    r3d_id v = 0;
    CHECK_INT(r3d_labels_commit(f.s, &f.clin, c, m, "", NULL, &v, &e), R3D_OK);
    char *rep = NULL;
    CHECK_INT(r3d_store_check(f.s, &rep, &e), R3D_OK);
    CHECK_CONTAINS(rep, "\"ok\":\ttrue");
    free(rep);
    char dest[700];
    snprintf(dest, sizeof dest, "%s/copy", f.dir);
    CHECK_INT(r3d_store_backup(f.s, &f.clin, dest, &e), R3D_EPERM);
    CHECK_INT(r3d_store_backup(f.s, &f.admin, dest, &e), R3D_OK);
    CHECK_INT(r3d_store_backup(f.s, &f.admin, dest, &e), R3D_ECONFLICT);
    r3d_store *b = NULL;
    CHECK_INT(r3d_store_open(dest, NULL, &b, &e), R3D_OK);
    if (b) {
        r3d_actor a;
        char tok[65];
        CHECK_INT(r3d_login(b, "rita", FX_PASSWORD, "test", tok, &a, &e), R3D_OK);
        r3d_labelmap *got = NULL;
        CHECK_INT(r3d_labels_load(b, &a, c, v, &got, &e), R3D_OK);
        CHECK(got && memcmp(got->vol->voxels, m->vol->voxels, r3d_volume_bytes(m->vol)) == 0);
        r3d_labelmap_free(got);
        int64_t bad = -1;
        CHECK_INT(r3d_audit_verify(b, &bad, &e), R3D_OK);
        r3d_store_close(b);
    }
    /* damage a blob: check names it */
    char path[1200];
    {
        sqlite3 *db = NULL;
        snprintf(path, sizeof path, "%s/store.db", f.store);
        sqlite3_open(path, &db);
        sqlite3_stmt *q = NULL;
        sqlite3_prepare_v2(db, "SELECT blob FROM label_versions LIMIT 1", -1, &q, NULL);
        char h[65] = "";
        if (sqlite3_step(q) == SQLITE_ROW)
            snprintf(h, sizeof h, "%s", sqlite3_column_text(q, 0));
        sqlite3_finalize(q);
        sqlite3_close(db);
        snprintf(path, sizeof path, "%s/blobs/%.2s/%s", f.store, h, h);
    }
    FILE *fp = fopen(path, "r+b");
    CHECK(fp != NULL);
    if (fp) {
        fseek(fp, 20, SEEK_SET);
        fputc(0x55, fp);
        fclose(fp);
    }
    CHECK_INT(r3d_store_check(f.s, &rep, &e), R3D_EDATA);
    CHECK_CONTAINS(rep, "does not match its hash");
    free(rep);
    r3d_labelmap *got = NULL;
    CHECK_INT(r3d_labels_load(f.s, &f.rev, c, v, &got, &e), R3D_EDATA);
    r3d_labelmap_free(m);
    fx_close(&f);
}

static void test_encrypted(void)
{
    char tmp[512], key[600], key2[600];
    CHECK(fx_tmpdir(tmp, sizeof tmp));
    snprintf(key, sizeof key, "%s/store.key", tmp);
    snprintf(key2, sizeof key2, "%s/other.key", tmp);
    r3d_error e = R3D_ERROR_INIT;
    CHECK_INT(r3d_store_key_generate(key, &e), R3D_OK);
    CHECK_INT(r3d_store_key_generate(key2, &e), R3D_OK);
    CHECK_INT(r3d_store_key_generate(key, &e), R3D_EIO); /* never overwrites a key */
    fx_store f;
    CHECK(fx_open(&f, key));
    r3d_id c = fx_import(&f);
    CHECK(c > 0);
    r3d_volume *v = NULL;
    CHECK_INT(r3d_case_image(f.s, &f.rev, c, &v, &e), R3D_OK);
    CHECK(v && ((int16_t *)v->voxels)[(6 * 20 + 10) * 24 + 12] == 700);
    r3d_volume_free(v);
    /* the blob on disk is sealed */
    char path[1200];
    {
        sqlite3 *db = NULL;
        snprintf(path, sizeof path, "%s/store.db", f.store);
        sqlite3_open(path, &db);
        sqlite3_stmt *q = NULL;
        sqlite3_prepare_v2(db, "SELECT image_blob FROM series LIMIT 1", -1, &q, NULL);
        char h[65] = "";
        if (sqlite3_step(q) == SQLITE_ROW)
            snprintf(h, sizeof h, "%s", sqlite3_column_text(q, 0));
        sqlite3_finalize(q);
        sqlite3_close(db);
        snprintf(path, sizeof path, "%s/blobs/%.2s/%s", f.store, h, h);
    }
    uint8_t *b = NULL;
    size_t n = 0;
    CHECK_INT(r3d_file_read_all(path, &b, &n, &e), R3D_OK);
    CHECK(n > 4 && memcmp(b, "R3DS", 4) == 0 && !r3d_is_gzip(b, n));
    free(b);
    /* patient identity is sealed in the database too */
    char named[512];
    if (test_data("dicom/deb_pydicom/CT_small.dcm", named, sizeof named)) {
        r3d_id c2 = 0;
        CHECK_INT(r3d_case_import(f.s, &f.clin, named, NULL, &c2, &e), R3D_OK);
        r3d_case_info info;
        CHECK_INT(r3d_case_get(f.s, &f.clin, c2, &info, &e), R3D_OK);
        CHECK_STR(info.patient_name, "CompressedSamples^CT1");
        const char *files[] = {"store.db", "store.db-wal"};
        for (int i = 0; i < 2; i++) {
            char p2[1200];
            snprintf(p2, sizeof p2, "%s/%s", f.store, files[i]);
            uint8_t *db = NULL;
            size_t dn = 0;
            if (r3d_file_read_all(p2, &db, &dn, NULL) == R3D_OK) {
                CHECK(!memmem(db, dn, "CompressedSamples", 17));
                free(db);
            }
        }
    }
    char *rep = NULL;
    CHECK_INT(r3d_store_check(f.s, &rep, &e), R3D_OK);
    free(rep);
    /* a backup stays encrypted with the same key */
    char copy[700];
    snprintf(copy, sizeof copy, "%s/copy", f.dir);
    CHECK_INT(r3d_store_backup(f.s, &f.admin, copy, &e), R3D_OK);
    r3d_store *bs = NULL;
    CHECK_INT(r3d_store_open(copy, NULL, &bs, &e), R3D_EPERM);
    r3d_store_opts ko = {0, key};
    CHECK_INT(r3d_store_open(copy, &ko, &bs, &e), R3D_OK);
    if (bs) {
        CHECK_INT(r3d_store_check(bs, &rep, &e), R3D_OK);
        free(rep);
        r3d_store_close(bs);
    }
    r3d_store_close(f.s);
    f.s = NULL;
    r3d_store *s = NULL;
    CHECK_INT(r3d_store_open(f.store, NULL, &s, &e), R3D_EPERM);
    CHECK_CONTAINS(e.msg, "encrypted");
    r3d_store_opts o = {0, key2};
    CHECK_INT(r3d_store_open(f.store, &o, &s, &e), R3D_EPERM);
    CHECK_CONTAINS(e.msg, "not the store's key");
    o.key_file = key;
    CHECK_INT(r3d_store_open(f.store, &o, &s, &e), R3D_OK);
    r3d_store_close(s);
    fx_close(&f);
    fx_rmtree(tmp);
}

/* Many threads on one handle and a second process on the same store at
 * once: every call succeeds, nothing is lost, the audit chain stays whole. */
typedef struct th_arg {
    fx_store *f;
    r3d_id c;
    int id, ok, fail;
    r3d_labelmap *m;
} th_arg;

static void *worker(void *p)
{
    th_arg *t = p;
    for (int i = 0; i < 12; i++) {
        r3d_error e = R3D_ERROR_INIT;
        char json[64];
        snprintf(json, sizeof json, "{\"thread\":%d,\"i\":%d}", t->id, i);
        r3d_case_info info;
        r3d_status st = i % 3 == 0 ? r3d_labels_commit(t->f->s, &t->f->clin, t->c, t->m, "", NULL,
                                                       NULL, &e)
                        : i % 3 == 1 ? r3d_case_doc_put(t->f->s, &t->f->clin, t->c, "measurements",
                                                        json, &e)
                                     : r3d_case_get(t->f->s, &t->f->rev, t->c, &info, &e);
        if (st) {
            fprintf(stderr, "  thread %d: %s\n", t->id, e.msg);
            t->fail++;
        } else {
            t->ok++;
        }
    }
    return NULL;
}

static void test_concurrent(void)
{
    fx_store f;
    CHECK(fx_open(&f, NULL));
    r3d_id c = fx_import(&f);
    r3d_labelmap *m = fx_labels(f.s, &f.clin, c, 10);
    pid_t pid = fork();
    if (pid == 0) { /* another process: the CLI next to the server */
        r3d_store *s = NULL;
        r3d_actor a;
        if (r3d_store_open(f.store, NULL, &s, NULL) ||
            r3d_session_check(s, f.tok_clin, "other process", &a, NULL))
            _exit(2);
        for (int i = 0; i < 20; i++)
            if (r3d_case_doc_put(s, &a, c, "display", "{\"from\":\"process\"}", NULL))
                _exit(3);
        r3d_store_close(s);
        _exit(0);
    }
    pthread_t th[4];
    th_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (th_arg){&f, c, i, 0, 0, m};
        pthread_create(&th[i], NULL, worker, &args[i]);
    }
    int ok = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ok += args[i].ok;
        CHECK_INT(args[i].fail, 0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_INT(ok, 48);
    r3d_case_info info;
    r3d_error e = R3D_ERROR_INIT;
    CHECK_INT(r3d_case_get(f.s, &f.rev, c, &info, &e), R3D_OK);
    CHECK_INT(info.n_versions, 16);
    char *rep = NULL;
    CHECK_INT(r3d_store_check(f.s, &rep, &e), R3D_OK);
    free(rep);
    r3d_labelmap_free(m);
    fx_close(&f);
}

/* An InVesalius project: its masks become the first label-map version. */
static void test_inv3_masks(void)
{
    const char *inv3 = "/usr/share/doc/invesalius-examples/examples/Cranium.inv3";
    if (access(inv3, R_OK) != 0)
        SKIP("no %s (Debian package invesalius-examples)", inv3);
    fx_store f;
    CHECK(fx_open(&f, NULL));
    r3d_id c = 0;
    r3d_error e = R3D_ERROR_INIT;
    CHECK_INT(r3d_case_import(f.s, &f.clin, inv3, NULL, &c, &e), R3D_OK);
    r3d_case_info info;
    CHECK_INT(r3d_case_get(f.s, &f.clin, c, &info, &e), R3D_OK);
    CHECK_INT(info.n_versions, 1);
    CHECK(info.head_version > 0);
    r3d_labelmap *m = NULL;
    CHECK_INT(r3d_labels_load(f.s, &f.clin, c, 0, &m, &e), R3D_OK);
    if (m) {
        CHECK_INT(m->vol->dim[0], info.dim[0]);
        int64_t nz = 0;
        for (int64_t i = 0; i < r3d_volume_nvox(m->vol); i++)
            nz += ((uint16_t *)m->vol->voxels)[i] != 0;
        CHECK(nz > 1000);
        r3d_labelmap_free(m);
    }
    fx_close(&f);
}

int main(void)
{
    RUN(test_import_and_view);
    RUN(test_versions_undo);
    RUN(test_meshes_docs_trace);
    RUN(test_jobs_and_recovery);
    RUN(test_check_backup_reopen);
    RUN(test_encrypted);
    RUN(test_concurrent);
    RUN(test_inv3_masks);
    return CHECK_DONE("test_store");
}

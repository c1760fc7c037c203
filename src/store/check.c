/* check.c - `recon3d store check`: is the store whole?
 *
 * Errors (the store is damaged): SQLite's integrity_check and
 * foreign_key_check; a blob a row names that is missing, has the wrong hash
 * or (sealed) fails authentication or whose plain bytes do not match
 * plain_sha256; a version whose parent is in another case or that starts a
 * loop; a case whose head is not one of its versions; a broken audit chain.
 * Warnings (harmless leftovers of a crash): blob files no row names (written
 * just before a crash, never committed), temporary files. The report is
 * JSON without any patient data, so a maintenance engineer may read it. */
#include "store/store_internal.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add(cJSON *arr, int *count, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void add(cJSON *arr, int *count, const char *fmt, ...)
{
    (*count)++;
    if (cJSON_GetArraySize(arr) >= 100)
        return; /* the count says how many; the list stays readable */
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON_AddItemToArray(arr, cJSON_CreateString(msg));
}

static int known_blob(r3d_store *s, const char *name)
{
    sqlite3_stmt *q = NULL;
    int k = 0;
    if (!st_prepare(s, "SELECT 1 FROM blobs WHERE sha256 = ?", &q, NULL)) {
        sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
        k = sqlite3_step(q) == SQLITE_ROW;
        sqlite3_finalize(q);
    }
    return k;
}

static void scan_orphans(r3d_store *s, cJSON *warn, int *nw)
{
    char top[4200];
    snprintf(top, sizeof top, "%s/blobs", s->dir);
    DIR *d = opendir(top);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || strlen(e->d_name) != 2)
            continue;
        char sub[4300];
        snprintf(sub, sizeof sub, "%s/%s", top, e->d_name);
        DIR *d2 = opendir(sub);
        if (!d2)
            continue;
        struct dirent *f;
        while ((f = readdir(d2))) {
            if (f->d_name[0] == '.')
                continue;
            if (strstr(f->d_name, ".tmp-"))
                add(warn, nw, "blobs/%s/%s: temporary file left by an interrupted write",
                    e->d_name, f->d_name);
            else if (!known_blob(s, f->d_name))
                add(warn, nw, "blobs/%s/%.16s...: no row names this blob (written just before a "
                    "crash; harmless)", e->d_name, f->d_name);
        }
        closedir(d2);
    }
    closedir(d);
}

r3d_status r3d_store_check(r3d_store *s, char **report_json, r3d_error *err)
{
    if (report_json)
        *report_json = NULL;
    if (!s)
        return r3d_fail(err, R3D_EARG, "check: no store");
    ST_LOCK(s);
    cJSON *root = cJSON_CreateObject();
    cJSON *errs = cJSON_CreateArray(), *warn = cJSON_CreateArray();
    int ne = 0, nw = 0;
    sqlite3_stmt *q = NULL;

    /* read everything from one snapshot */
    sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL);
    if (!st_prepare(s, "PRAGMA integrity_check", &q, NULL)) {
        while (sqlite3_step(q) == SQLITE_ROW) {
            const char *t = (const char *)sqlite3_column_text(q, 0);
            if (t && strcmp(t, "ok") != 0)
                add(errs, &ne, "sqlite integrity: %s", t);
        }
        sqlite3_finalize(q);
    } else {
        add(errs, &ne, "sqlite integrity_check could not run: %s", sqlite3_errmsg(s->db));
    }
    if (!st_prepare(s, "PRAGMA foreign_key_check", &q, NULL)) {
        while (sqlite3_step(q) == SQLITE_ROW)
            add(errs, &ne, "table %s row %lld: refers to a missing row in %s",
                sqlite3_column_text(q, 0), (long long)sqlite3_column_int64(q, 1),
                sqlite3_column_text(q, 2));
        sqlite3_finalize(q);
    }

    int64_t nblobs = 0, bytes = 0;
    if (!st_prepare(s, "SELECT sha256, plain_sha256, size FROM blobs", &q, NULL)) {
        while (sqlite3_step(q) == SQLITE_ROW) {
            char h[65], ph[65];
            st_col_copy(q, 0, h, sizeof h);
            st_col_copy(q, 1, ph, sizeof ph);
            nblobs++;
            bytes += sqlite3_column_int64(q, 2);
            uint8_t *b = NULL;
            size_t n = 0;
            r3d_error e = R3D_ERROR_INIT;
            if (st_blob_get(s, h, &b, &n, &e)) {
                add(errs, &ne, "%s", e.msg);
                continue;
            }
            char calc[65];
            st_sha256_hex(b, n, calc);
            free(b);
            if (strcmp(calc, ph) != 0)
                add(errs, &ne, "blob %.12s...: plain content does not match its record", h);
        }
        sqlite3_finalize(q);
    }

    /* version chains: parents in the same case, strictly older, no loops */
    if (!st_prepare(s, "SELECT v.id, v.case_id, p.case_id FROM label_versions v JOIN "
                       "label_versions p ON p.id = v.parent WHERE p.case_id != v.case_id OR "
                       "v.parent >= v.id", &q, NULL)) {
        while (sqlite3_step(q) == SQLITE_ROW)
            add(errs, &ne, "version %lld (case %lld): parent is in case %lld or not older",
                (long long)sqlite3_column_int64(q, 0), (long long)sqlite3_column_int64(q, 1),
                (long long)sqlite3_column_int64(q, 2));
        sqlite3_finalize(q);
    }
    if (!st_prepare(s, "SELECT c.id, c.head_version FROM cases c LEFT JOIN label_versions v ON "
                       "v.id = c.head_version WHERE c.head_version IS NOT NULL AND "
                       "(v.id IS NULL OR v.case_id != c.id)", &q, NULL)) {
        while (sqlite3_step(q) == SQLITE_ROW)
            add(errs, &ne, "case %lld: head version %lld is not one of its versions",
                (long long)sqlite3_column_int64(q, 0), (long long)sqlite3_column_int64(q, 1));
        sqlite3_finalize(q);
    }
    if (!st_prepare(s, "SELECT m.id FROM meshes m JOIN label_versions v ON v.id = m.version_id "
                       "WHERE v.case_id != m.case_id", &q, NULL)) {
        while (sqlite3_step(q) == SQLITE_ROW)
            add(errs, &ne, "mesh %lld: its version belongs to another case",
                (long long)sqlite3_column_int64(q, 0));
        sqlite3_finalize(q);
    }

    int64_t first_bad = 0, entries = 0;
    r3d_error ae = R3D_ERROR_INIT;
    if (st_audit_verify(s, &first_bad, &entries, &ae))
        add(errs, &ne, "%s", ae.msg);
    sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);

    scan_orphans(s, warn, &nw);
    int64_t running = st_query_int(s, "SELECT count(*) FROM jobs WHERE state = 1", 0, 0);

    cJSON_AddBoolToObject(root, "ok", ne == 0);
    cJSON_AddNumberToObject(root, "errors_total", ne);
    cJSON_AddItemToObject(root, "errors", errs);
    cJSON_AddNumberToObject(root, "warnings_total", nw);
    cJSON_AddItemToObject(root, "warnings", warn);
    cJSON *c = cJSON_AddObjectToObject(root, "counts");
    cJSON_AddNumberToObject(c, "users", (double)st_query_int(s, "SELECT count(*) FROM users", 0, 0));
    cJSON_AddNumberToObject(c, "cases", (double)st_query_int(s, "SELECT count(*) FROM cases "
                                                               "WHERE deleted = 0", 0, 0));
    cJSON_AddNumberToObject(c, "label_versions",
                            (double)st_query_int(s, "SELECT count(*) FROM label_versions", 0, 0));
    cJSON_AddNumberToObject(c, "meshes", (double)st_query_int(s, "SELECT count(*) FROM meshes",
                                                              0, 0));
    cJSON_AddNumberToObject(c, "blobs", (double)nblobs);
    cJSON_AddNumberToObject(c, "blob_bytes", (double)bytes);
    cJSON_AddNumberToObject(c, "jobs_running", (double)running);
    cJSON_AddNumberToObject(c, "audit_entries", (double)entries);
    cJSON_AddBoolToObject(root, "encrypted", s->sealed);
    if (report_json)
        *report_json = cJSON_Print(root);
    cJSON_Delete(root);
    ST_UNLOCK(s);
    if (ne)
        return r3d_fail(err, R3D_EDATA, "%s: store check found %d problem%s", s->dir, ne,
                        ne == 1 ? "" : "s");
    return R3D_OK;
}

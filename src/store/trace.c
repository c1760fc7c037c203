/* trace.c - the chain from a result back to the files it came from
 * (clause 4.7.1): mesh -> label-map version -> its parents -> the image ->
 * the DICOM files (SOP Instance UID + SHA-256 of each).
 *
 * A result is named "case:N", "case:N/version:M", or by the SHA-256 of a
 * file we produced (a mesh or label map as stored), which is how a file
 * found on a USB stick or in a print shop is traced. Every link carries what
 * made it: algorithm, parameters, user, software version and build,
 * machine, time. Input file names are shown only to roles that may see
 * identity (folder names often carry patient names). */
#include "store/store_internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add_text(cJSON *o, const char *key, sqlite3_stmt *q, int col)
{
    const unsigned char *t = sqlite3_column_text(q, col);
    cJSON_AddStringToObject(o, key, t ? (const char *)t : "");
}

static void add_json(cJSON *o, const char *key, sqlite3_stmt *q, int col)
{
    const unsigned char *t = sqlite3_column_text(q, col);
    cJSON *j = t ? cJSON_Parse((const char *)t) : NULL;
    cJSON_AddItemToObject(o, key, j ? j : cJSON_CreateNull());
}

/* The version chain from v back to the first version. */
static r3d_status add_versions(r3d_store *s, cJSON *root, r3d_id case_id, r3d_id v, r3d_error *err)
{
    cJSON *arr = cJSON_AddArrayToObject(root, "versions");
    sqlite3_stmt *q = NULL;
    r3d_status st = st_prepare(s, "SELECT id, parent, algorithm, params_json, author, created, "
                                  "software, machine, origin, note, plain_sha256, case_id "
                                  "FROM label_versions WHERE id = ?", &q, err);
    if (st)
        return st;
    for (int guard = 0; v && guard < 1000000; guard++) {
        sqlite3_reset(q);
        sqlite3_bind_int64(q, 1, v);
        if (sqlite3_step(q) != SQLITE_ROW || sqlite3_column_int64(q, 11) != case_id) {
            st = r3d_fail(err, R3D_EDATA, "case %lld: version %lld missing from its chain",
                          (long long)case_id, (long long)v);
            break;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "version", (double)v);
        r3d_id parent = sqlite3_column_int64(q, 1);
        if (parent)
            cJSON_AddNumberToObject(o, "parent", (double)parent);
        else
            cJSON_AddNullToObject(o, "parent");
        add_text(o, "algorithm", q, 2);
        add_json(o, "parameters", q, 3);
        add_text(o, "user", q, 4);
        add_text(o, "created", q, 5);
        add_text(o, "software", q, 6);
        add_text(o, "machine", q, 7);
        add_text(o, "origin", q, 8);
        add_text(o, "note", q, 9);
        add_text(o, "sha256", q, 10);
        cJSON_AddItemToArray(arr, o);
        if (parent >= v) {
            st = r3d_fail(err, R3D_EDATA, "case %lld: version chain loops at %lld",
                          (long long)case_id, (long long)v);
            break;
        }
        v = parent;
    }
    sqlite3_finalize(q);
    return st;
}

static r3d_status add_image(r3d_store *s, cJSON *root, r3d_id case_id, int names, r3d_error *err)
{
    sqlite3_stmt *q = NULL;
    r3d_status st = st_prepare(s, "SELECT se.id, st.study_uid, se.series_uid, se.modality, "
                                  "se.input_kind, se.imported, se.imported_by, se.software, "
                                  "se.machine, se.acq_json, b.plain_sha256, c.title "
                                  "FROM cases c JOIN series se ON se.id = c.series_id "
                                  "JOIN studies st ON st.id = se.study_id "
                                  "JOIN blobs b ON b.sha256 = se.image_blob WHERE c.id = ?",
                               &q, err);
    if (st)
        return st;
    sqlite3_bind_int64(q, 1, case_id);
    r3d_id series = 0;
    if (sqlite3_step(q) == SQLITE_ROW) {
        cJSON *o = cJSON_AddObjectToObject(root, "image");
        series = sqlite3_column_int64(q, 0);
        cJSON_AddNumberToObject(o, "case", (double)case_id);
        add_text(o, "title", q, 11);
        add_text(o, "study_instance_uid", q, 1);
        add_text(o, "series_instance_uid", q, 2);
        add_text(o, "modality", q, 3);
        add_text(o, "input_format", q, 4);
        add_text(o, "imported", q, 5);
        add_text(o, "imported_by", q, 6);
        add_text(o, "software", q, 7);
        add_text(o, "machine", q, 8);
        add_json(o, "acquisition", q, 9);
        add_text(o, "nifti_sha256", q, 10);
    } else {
        st = r3d_fail(err, R3D_EDATA, "case %lld: image record missing", (long long)case_id);
    }
    sqlite3_finalize(q);
    if (st)
        return st;
    if ((st = st_prepare(s, "SELECT sop_uid, sha256, size, name FROM inputs WHERE series_id = ? "
                            "ORDER BY id", &q, err)))
        return st;
    sqlite3_bind_int64(q, 1, series);
    cJSON *arr = cJSON_AddArrayToObject(root, "inputs");
    while (sqlite3_step(q) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        const unsigned char *sop = sqlite3_column_text(q, 0);
        if (sop && *sop)
            cJSON_AddStringToObject(o, "sop_instance_uid", (const char *)sop);
        add_text(o, "sha256", q, 1);
        cJSON_AddNumberToObject(o, "size", (double)sqlite3_column_int64(q, 2));
        if (names)
            add_text(o, "file", q, 3);
        cJSON_AddItemToArray(arr, o);
    }
    sqlite3_finalize(q);
    return R3D_OK;
}

r3d_status r3d_trace(r3d_store *s, const r3d_actor *a, const char *what, char **json,
                     r3d_error *err)
{
    if (!s || !what || !json)
        return r3d_fail(err, R3D_EARG, "trace: no store, no result named or no output");
    *json = NULL;
    r3d_id case_id = 0, version = 0;
    int mesh_row = 0;
    char sha[65] = "";
    if (strncmp(what, "case:", 5) == 0) {
        long long c = 0, v = 0;
        int used = 0;
        if (sscanf(what, "case:%lld%n", &c, &used) == 1 && what[used] == 0)
            case_id = c;
        else if (sscanf(what, "case:%lld/version:%lld%n", &c, &v, &used) == 2 && what[used] == 0 &&
                 v > 0)
            case_id = c, version = v;
        if (case_id <= 0)
            return r3d_fail(err, R3D_EARG, "trace: give case:N, case:N/version:M or a SHA-256");
    } else if (st_is_hex(what, 64)) {
        memcpy(sha, what, 65);
    } else {
        return r3d_fail(err, R3D_EARG, "trace: give case:N, case:N/version:M or a SHA-256");
    }
    ST_LOCK(s);
    r3d_status st = st_permit(s, a, R3D_ACT_CASE_VIEW, err);
    int names = !st && st_allowed(s, a, R3D_ACT_VIEW_IDENTITY);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "query", what);
    sqlite3_stmt *q = NULL;
    if (!st && sha[0]) {
        /* a mesh first, then a label-map version */
        if (!(st = st_prepare(s, "SELECT id, case_id, version_id, label, format, params_json, "
                                 "author, created, software, machine, size FROM meshes "
                                 "WHERE plain_sha256 = ? ORDER BY id DESC LIMIT 1", &q, err))) {
            sqlite3_bind_text(q, 1, sha, -1, SQLITE_STATIC);
            if (sqlite3_step(q) == SQLITE_ROW) {
                mesh_row = 1;
                case_id = sqlite3_column_int64(q, 1);
                version = sqlite3_column_int64(q, 2);
                cJSON *o = cJSON_AddObjectToObject(root, "result");
                cJSON_AddStringToObject(o, "kind", "mesh");
                cJSON_AddStringToObject(o, "sha256", sha);
                cJSON_AddNumberToObject(o, "case", (double)case_id);
                cJSON_AddNumberToObject(o, "version", (double)version);
                cJSON_AddNumberToObject(o, "label", sqlite3_column_int(q, 3));
                add_text(o, "format", q, 4);
                add_json(o, "parameters", q, 5);
                add_text(o, "user", q, 6);
                add_text(o, "created", q, 7);
                add_text(o, "software", q, 8);
                add_text(o, "machine", q, 9);
                cJSON_AddNumberToObject(o, "size", (double)sqlite3_column_int64(q, 10));
            }
            sqlite3_finalize(q);
        }
        if (!st && !mesh_row &&
            !(st = st_prepare(s, "SELECT case_id, version_id, kind, deidentified, author, "
                                 "created, software, machine FROM exports WHERE sha256 = ? "
                                 "ORDER BY id DESC LIMIT 1", &q, err))) {
            sqlite3_bind_text(q, 1, sha, -1, SQLITE_STATIC);
            if (sqlite3_step(q) == SQLITE_ROW) {
                mesh_row = 1; /* found: a file exported from a case */
                case_id = sqlite3_column_int64(q, 0);
                version = sqlite3_column_int64(q, 1);
                cJSON *o = cJSON_AddObjectToObject(root, "result");
                cJSON_AddStringToObject(o, "kind", "export");
                cJSON_AddStringToObject(o, "sha256", sha);
                cJSON_AddNumberToObject(o, "case", (double)case_id);
                cJSON_AddNumberToObject(o, "version", (double)version);
                add_text(o, "format", q, 2);
                cJSON_AddBoolToObject(o, "deidentified", sqlite3_column_int(q, 3));
                add_text(o, "user", q, 4);
                add_text(o, "created", q, 5);
                add_text(o, "software", q, 6);
                add_text(o, "machine", q, 7);
            }
            sqlite3_finalize(q);
        }
        if (!st && !mesh_row &&
            !(st = st_prepare(s, "SELECT id, case_id FROM label_versions WHERE plain_sha256 = ? "
                                 "ORDER BY id LIMIT 1", &q, err))) {
            sqlite3_bind_text(q, 1, sha, -1, SQLITE_STATIC);
            if (sqlite3_step(q) == SQLITE_ROW) {
                version = sqlite3_column_int64(q, 0);
                case_id = sqlite3_column_int64(q, 1);
            }
            sqlite3_finalize(q);
        }
        if (!st && !case_id) {
            /* an input file, or the stored image: which cases used it */
            if (!(st = st_prepare(s, "SELECT DISTINCT c.id FROM cases c JOIN series se ON se.id "
                                     "= c.series_id LEFT JOIN inputs i ON i.series_id = se.id "
                                     "JOIN blobs b ON b.sha256 = se.image_blob WHERE (i.sha256 "
                                     "= ?1 OR b.plain_sha256 = ?1) AND c.deleted = 0 ORDER BY "
                                     "c.id LIMIT 1", &q, err))) {
                sqlite3_bind_text(q, 1, sha, -1, SQLITE_STATIC);
                if (sqlite3_step(q) == SQLITE_ROW)
                    case_id = sqlite3_column_int64(q, 0);
                sqlite3_finalize(q);
            }
            if (!st && case_id) {
                cJSON *o = cJSON_AddObjectToObject(root, "result");
                cJSON_AddStringToObject(o, "kind", "input or image");
                cJSON_AddStringToObject(o, "sha256", sha);
                cJSON_AddNumberToObject(o, "case", (double)case_id);
            }
        }
        if (!st && !case_id)
            st = r3d_fail(err, R3D_ENOTFOUND, "trace: no result with SHA-256 %.16s... in this "
                          "store", sha);
    } else if (!st) {
        if (st_query_int(s, "SELECT count(*) FROM cases WHERE id = ?", case_id, 0) != 1)
            st = r3d_fail(err, R3D_ENOTFOUND, "case %lld: no such case", (long long)case_id);
        if (!st && version &&
            st_query_int(s, "SELECT case_id FROM label_versions WHERE id = ?", version, 0) !=
                case_id)
            st = r3d_fail(err, R3D_ENOTFOUND, "case %lld: no version %lld", (long long)case_id,
                          (long long)version);
        if (!st && !version)
            version = st_query_int(s, "SELECT head_version FROM cases WHERE id = ?", case_id, 0);
    }
    if (!st && !cJSON_GetObjectItemCaseSensitive(root, "result")) {
        cJSON *o = cJSON_AddObjectToObject(root, "result");
        cJSON_AddStringToObject(o, "kind", version ? "label map" : "case");
        cJSON_AddNumberToObject(o, "case", (double)case_id);
        if (version)
            cJSON_AddNumberToObject(o, "version", (double)version);
    }
    if (!st)
        st = add_versions(s, root, case_id, version, err);
    if (!st)
        st = add_image(s, root, case_id, names, err);
    if (!st) {
        cJSON_AddStringToObject(root, "traced_by", r3d_version());
        *json = cJSON_Print(root);
        if (!*json)
            st = r3d_fail(err, R3D_ENOMEM, "trace: out of memory");
    }
    cJSON_Delete(root);
    if (!st) {
        char obj[96];
        snprintf(obj, sizeof obj, "case %lld version %lld", (long long)case_id, (long long)version);
        st = st_audit(s, a, "trace", obj, "ok", err);
        if (st) {
            free(*json);
            *json = NULL;
        }
    }
    ST_UNLOCK(s);
    return st;
}

r3d_status r3d_export_record(r3d_store *s, const r3d_actor *a, r3d_id case_id, r3d_id version,
                             const char *sha256_hex, const char *kind, int deidentified,
                             r3d_error *err)
{
    if (!s || !sha256_hex || !kind)
        return r3d_fail(err, R3D_EARG, "export record: no store, SHA-256 or kind");
    if (!st_is_hex(sha256_hex, 64))
        return r3d_fail(err, R3D_EARG, "export record: the SHA-256 must be 64 hex digits");
    size_t kn = strlen(kind);
    if (kn == 0 || kn > 32 || strspn(kind, "abcdefghijklmnopqrstuvwxyz0123456789-.") != kn)
        return r3d_fail(err, R3D_EARG, "export record: kind must be 1..32 of a-z 0-9 - .");
    ST_LOCK(s);
    r3d_status st = st_permit(s, a, R3D_ACT_EXPORT, err);
    if (!st)
        st = st_case_exists(s, case_id, err);
    if (!st && !version)
        version = st_query_int(s, "SELECT head_version FROM cases WHERE id = ?", case_id, 0);
    if (!st && version &&
        st_query_int(s, "SELECT case_id FROM label_versions WHERE id = ?", version, 0) != case_id)
        st = r3d_fail(err, R3D_ENOTFOUND, "case %lld: no version %lld", (long long)case_id,
                      (long long)version);
    if (!st)
        st = st_begin(s, err);
    sqlite3_stmt *q = NULL;
    if (!st && !(st = st_prepare(s, "INSERT INTO exports(case_id, version_id, sha256, kind, "
                                    "deidentified, author, created, software, machine) "
                                    "VALUES(?,?,?,?,?,?,strftime('%Y-%m-%dT%H:%M:%fZ','now'),?,?)",
                                 &q, err))) {
        sqlite3_bind_int64(q, 1, case_id);
        if (version)
            sqlite3_bind_int64(q, 2, version);
        else
            sqlite3_bind_null(q, 2);
        sqlite3_bind_text(q, 3, sha256_hex, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 4, kind, -1, SQLITE_STATIC);
        sqlite3_bind_int(q, 5, deidentified != 0);
        sqlite3_bind_text(q, 6, a->user, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 7, r3d_version(), -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 8, s->machine, -1, SQLITE_STATIC);
        st = st_step(s, q, "cannot record the export", err);
    }
    if (!st) {
        char obj[96], out[128];
        snprintf(obj, sizeof obj, "case %lld version %lld", (long long)case_id, (long long)version);
        snprintf(out, sizeof out, "ok %s %s sha256 %s", kind,
                 deidentified ? "de-identified" : "identified", sha256_hex);
        st = st_audit(s, a, "export.file", obj, out, err);
    }
    st = st_end(s, st, err);
    ST_UNLOCK(s);
    return st;
}

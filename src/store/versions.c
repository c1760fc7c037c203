/* versions.c - label-map versions, meshes and case documents.
 *
 * Every edit is a new row; nothing is overwritten. A label-map version is a
 * .nii.gz blob (uint16, the case's grid) plus its label table as JSON and
 * its provenance (algorithm, parameters, author, software, machine, time,
 * parent version). The case's head_version says which one is shown; undo,
 * redo and "show me before the surgeon's correction" move the head
 * (r3d_labels_set_head), and each move is recorded in head_changes and the
 * audit trail. Case documents (measurements, display state) are versioned
 * the same way: a put adds a row, a get reads the newest. */
#include "store/store_internal.h"

#include "r3d/nifti.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOTE_MAX 255
#define PARAMS_MAX (64 * 1024)
#define DOC_MAX (4 * 1024 * 1024)

/* With the store lock held and the blob file already written (outside the
 * lock): begins the write transaction, checks the case was not deleted
 * meanwhile and records the blob. st: the status so far, nothing is done
 * when it is an error. The caller ends it with st_end (a rollback is a
 * no-op when the transaction never began). */
static r3d_status begin_blob_txn(r3d_store *s, r3d_status st, r3d_id case_id, const char *blob,
                                 const char *plain, size_t n, r3d_error *err)
{
    if (!st)
        st = st_begin(s, err);
    if (!st)
        st = st_case_exists(s, case_id, err);
    if (!st)
        st = st_blob_record(s, blob, plain, n, err);
    return st;
}

/* The version belongs to the case (0 = the head, which must exist). */
static r3d_status resolve_version(r3d_store *s, r3d_id case_id, r3d_id *version, r3d_error *err)
{
    if (*version == 0) {
        *version = st_query_int(s, "SELECT head_version FROM cases WHERE id = ?", case_id, 0);
        if (!*version)
            return r3d_fail(err, R3D_ENOTFOUND, "case %lld: no label map yet",
                            (long long)case_id);
        return R3D_OK;
    }
    sqlite3_stmt *q = NULL;
    r3d_status st = st_prepare(s, "SELECT 1 FROM label_versions WHERE id = ? AND case_id = ?", &q,
                               err);
    if (st)
        return st;
    sqlite3_bind_int64(q, 1, *version);
    sqlite3_bind_int64(q, 2, case_id);
    int found = sqlite3_step(q) == SQLITE_ROW;
    sqlite3_finalize(q);
    if (!found)
        return r3d_fail(err, R3D_ENOTFOUND, "case %lld: no version %lld", (long long)case_id,
                        (long long)*version);
    return R3D_OK;
}

/* May the actor do act on the case (which must exist), and which version
 * (resolve_version)? With the store lock held. */
static r3d_status permit_version(r3d_store *s, const r3d_actor *a, r3d_action act,
                                 r3d_id case_id, r3d_id *version, r3d_error *err)
{
    r3d_status st = st_permit(s, a, act, err);
    if (!st)
        st = st_case_exists(s, case_id, err);
    if (!st)
        st = resolve_version(s, case_id, version, err);
    return st;
}

/* ---- label table <-> JSON ----------------------------------------------------------------- */

static char *table_to_json(const r3d_label_table *t)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < t->n; i++) {
        const r3d_label *l = &t->v[i];
        cJSON *o = cJSON_CreateObject();
        char name[sizeof l->name + 1], zh[sizeof l->name_zh + 1];
        snprintf(name, sizeof name, "%.*s", (int)sizeof l->name, l->name);
        snprintf(zh, sizeof zh, "%.*s", (int)sizeof l->name_zh, l->name_zh);
        cJSON_AddNumberToObject(o, "value", l->value);
        cJSON_AddStringToObject(o, "name", name);
        cJSON_AddStringToObject(o, "name_zh", zh);
        cJSON *rgb = cJSON_AddArrayToObject(o, "rgb");
        for (int k = 0; k < 3; k++)
            cJSON_AddItemToArray(rgb, cJSON_CreateNumber(l->rgb[k]));
        cJSON_AddItemToArray(arr, o);
    }
    char *t_ = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    return t_;
}

static r3d_status table_from_json(const char *json, r3d_label_table *t, r3d_error *err)
{
    cJSON *arr = cJSON_Parse(json ? json : "[]");
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        return r3d_fail(err, R3D_EDATA, "label table: stored JSON is not an array");
    }
    r3d_status st = R3D_OK;
    const cJSON *o;
    cJSON_ArrayForEach(o, arr)
    {
        r3d_label l;
        memset(&l, 0, sizeof l);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "value");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, "name");
        const cJSON *z = cJSON_GetObjectItemCaseSensitive(o, "name_zh");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "rgb");
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 65535) {
            st = r3d_fail(err, R3D_EDATA, "label table: entry without a valid value");
            break;
        }
        l.value = (uint16_t)v->valuedouble;
        if (cJSON_IsString(n))
            snprintf(l.name, sizeof l.name, "%s", n->valuestring);
        if (cJSON_IsString(z))
            snprintf(l.name_zh, sizeof l.name_zh, "%s", z->valuestring);
        for (int k = 0; k < 3 && cJSON_IsArray(c); k++) {
            const cJSON *x = cJSON_GetArrayItem(c, k);
            l.rgb[k] = cJSON_IsNumber(x) ? (uint8_t)x->valueint : 0;
        }
        if ((st = r3d_label_table_add(t, &l, err)))
            break;
    }
    cJSON_Delete(arr);
    return st;
}

/* ---- provenance checks ---------------------------------------------------------------------- */

static r3d_status check_prov(const r3d_provenance *prov, const char **alg, const char **params,
                             r3d_error *err)
{
    *alg = prov && prov->algorithm ? prov->algorithm : "unspecified";
    *params = prov && prov->params_json ? prov->params_json : "{}";
    if (!st_name_ok(*alg) || strlen(*alg) > 31)
        return r3d_fail(err, R3D_EARG, "provenance: algorithm must be 1 to 31 letters, digits, "
                        "'.', '_' or '-'");
    return st_json_ok(*params, PARAMS_MAX, 1, "provenance parameters", err);
}

static r3d_status check_note(const char *note, r3d_error *err)
{
    if (note && strnlen(note, NOTE_MAX + 1) > NOTE_MAX)
        return r3d_fail(err, R3D_EARG, "note: longer than %d bytes", NOTE_MAX);
    for (const char *p = note; p && *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t')
            return r3d_fail(err, R3D_EARG, "note: control characters are not allowed");
    return R3D_OK;
}

/* ---- label maps ----------------------------------------------------------------------------- */

static r3d_status set_head(r3d_store *s, const r3d_actor *a, r3d_id case_id, r3d_id to,
                           r3d_error *err)
{
    r3d_id from = st_query_int(s, "SELECT head_version FROM cases WHERE id = ?", case_id, 0);
    sqlite3_stmt *q = NULL;
    r3d_status st = st_prepare(s, "UPDATE cases SET head_version = ? WHERE id = ?", &q, err);
    if (st)
        return st;
    sqlite3_bind_int64(q, 1, to);
    sqlite3_bind_int64(q, 2, case_id);
    if ((st = st_step(s, q, "cannot move the head version", err)))
        return st;
    if ((st = st_prepare(s, "INSERT INTO head_changes(case_id, from_version, to_version, author, "
                            "at) VALUES(?,?,?,?,strftime('%Y-%m-%dT%H:%M:%fZ','now'))", &q, err)))
        return st;
    sqlite3_bind_int64(q, 1, case_id);
    if (from)
        sqlite3_bind_int64(q, 2, from);
    else
        sqlite3_bind_null(q, 2);
    sqlite3_bind_int64(q, 3, to);
    sqlite3_bind_text(q, 4, a->user, -1, SQLITE_TRANSIENT);
    return st_step(s, q, "cannot record the head change", err);
}

r3d_status r3d_labels_commit(r3d_store *s, const r3d_actor *a, r3d_id case_id, const r3d_labelmap *m,
                             const char *note, const r3d_provenance *prov, r3d_id *version,
                             r3d_error *err)
{
    if (version)
        *version = 0;
    if (!s || !m || !m->vol || !m->vol->voxels)
        return r3d_fail(err, R3D_EARG, "labels: no store or no label map");
    if (m->vol->dtype != R3D_U16)
        return r3d_fail(err, R3D_EARG, "labels: a label map must be uint16, not %s",
                        r3d_dtype_name(m->vol->dtype));
    const char *alg, *params;
    r3d_status st = check_prov(prov, &alg, &params, err);
    if (!st)
        st = check_note(note, err);
    if (st)
        return st;
    ST_LOCK(s);
    st = st_permit(s, a, R3D_ACT_CASE_EDIT, err);
    if (!st)
        st = st_case_exists(s, case_id, err);
    if (!st) {
        sqlite3_stmt *q = NULL;
        if (!(st = st_prepare(s, "SELECT se.dim0, se.dim1, se.dim2 FROM cases c JOIN series se "
                                 "ON se.id = c.series_id WHERE c.id = ?", &q, err))) {
            sqlite3_bind_int64(q, 1, case_id);
            if (sqlite3_step(q) == SQLITE_ROW)
                for (int i = 0; i < 3 && !st; i++)
                    if (sqlite3_column_int64(q, i) != m->vol->dim[i])
                        st = r3d_fail(err, R3D_EARG, "labels: grid %lldx%lldx%lld does not match "
                                      "the case's image %lldx%lldx%lld",
                                      (long long)m->vol->dim[0], (long long)m->vol->dim[1],
                                      (long long)m->vol->dim[2],
                                      (long long)sqlite3_column_int64(q, 0),
                                      (long long)sqlite3_column_int64(q, 1),
                                      (long long)sqlite3_column_int64(q, 2));
            sqlite3_finalize(q);
        }
        if (!st && m->vol->dim[3] > 1)
            st = r3d_fail(err, R3D_EARG, "labels: a label map has one time point");
    }
    ST_UNLOCK(s);
    if (st)
        return st;
    char *table = table_to_json(&m->table);
    uint8_t *nii = NULL;
    size_t nii_n = 0;
    if (!table)
        st = r3d_fail(err, R3D_ENOMEM, "labels: out of memory");
    if (!st)
        st = st_volume_to_niigz(s, m->vol, &nii, &nii_n, err);
    char blob[65], plain[65], created[32];
    if (!st)
        st = st_blob_write(s, nii, nii_n, blob, plain, err);
    ST_LOCK(s);
    st_iso_now(created);
    r3d_id vid = 0;
    st = begin_blob_txn(s, st, case_id, blob, plain, nii_n, err);
    sqlite3_stmt *q = NULL;
    if (!st && !(st = st_prepare(s, "INSERT INTO label_versions(case_id, parent, blob, "
                                    "plain_sha256, table_json, author, algorithm, params_json, "
                                    "note, created, software, machine, origin) "
                                    "VALUES(?,(SELECT head_version FROM cases WHERE id = ?),"
                                    "?,?,?,?,?,?,?,?,?,?,?)", &q, err))) {
        sqlite3_bind_int64(q, 1, case_id);
        sqlite3_bind_int64(q, 2, case_id);
        sqlite3_bind_text(q, 3, blob, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 4, plain, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 5, table, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 6, a->user, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 7, alg, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 8, params, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 9, note ? note : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 10, created, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 11, r3d_version(), -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 12, s->machine, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 13, a->origin, -1, SQLITE_TRANSIENT);
        st = st_step(s, q, "cannot add the version", err);
        vid = st_last_id(s);
    }
    if (!st)
        st = set_head(s, a, case_id, vid, err);
    if (!st) {
        char obj[96];
        snprintf(obj, sizeof obj, "case %lld version %lld", (long long)case_id, (long long)vid);
        st = st_audit(s, a, "labels.commit", obj, alg, err);
    }
    if (!st)
        st_touch_case(s, a, case_id);
    st = st_end(s, st, err);
    ST_UNLOCK(s);
    free(table);
    free(nii);
    if (!st && version)
        *version = vid;
    return st;
}

/* The stored bytes (r3d_labels_nifti: permission, audit) decoded. */
r3d_status r3d_labels_load(r3d_store *s, const r3d_actor *a, r3d_id case_id, r3d_id version,
                           r3d_labelmap **out, r3d_error *err)
{
    if (!s || !out)
        return r3d_fail(err, R3D_EARG, "labels: no store or no output");
    *out = NULL;
    uint8_t *b = NULL;
    size_t n = 0;
    char *table = NULL;
    r3d_status st = r3d_labels_nifti(s, a, case_id, version, &b, &n, &table, err);
    if (st)
        return st;
    char name[64];
    if (version)
        snprintf(name, sizeof name, "case %lld version %lld", (long long)case_id, (long long)version);
    else
        snprintf(name, sizeof name, "case %lld (current version)", (long long)case_id);
    r3d_labelmap *m = NULL;
    r3d_volume *v = r3d_nifti_read_mem(b, n, name, err);
    if (!v)
        st = err ? err->code : R3D_EDATA;
    else if (v->dtype != R3D_U16) {
        r3d_volume_free(v);
        st = r3d_fail(err, R3D_EDATA, "%s: stored label map is not uint16", name);
    } else if (!(m = calloc(1, sizeof *m))) {
        r3d_volume_free(v);
        st = r3d_fail(err, R3D_ENOMEM, "labels: out of memory");
    } else {
        m->vol = v;
        st = table_from_json(table, &m->table, err);
    }
    free(b);
    free(table);
    if (st) {
        r3d_labelmap_free(m);
        return st;
    }
    *out = m;
    return R3D_OK;
}

r3d_status r3d_labels_nifti(r3d_store *s, const r3d_actor *a, r3d_id case_id, r3d_id version,
                            uint8_t **bytes, size_t *n, char **table_json, r3d_error *err)
{
    if (!s || !bytes || !n)
        return r3d_fail(err, R3D_EARG, "labels: no store or no output");
    *bytes = NULL;
    *n = 0;
    if (table_json)
        *table_json = NULL;
    ST_LOCK(s);
    r3d_status st = permit_version(s, a, R3D_ACT_CASE_VIEW, case_id, &version, err);
    char blob[65] = "";
    char *table = NULL;
    sqlite3_stmt *q = NULL;
    if (!st && !(st = st_prepare(s, "SELECT blob, table_json FROM label_versions WHERE id = ?", &q,
                                 err))) {
        sqlite3_bind_int64(q, 1, version);
        if (sqlite3_step(q) == SQLITE_ROW) {
            st_col_copy(q, 0, blob, sizeof blob);
            table = st_col_dup(q, 1);
        }
        sqlite3_finalize(q);
    }
    if (!st)
        st = st_blob_get(s, blob, bytes, n, err);
    if (!st) {
        char obj[96];
        snprintf(obj, sizeof obj, "case %lld version %lld", (long long)case_id, (long long)version);
        if (!(st = st_begin(s, err))) {
            st = st_audit(s, a, "labels.view", obj, "ok", err);
            st_touch_case(s, a, case_id);
            st = st_end(s, st, err);
        }
    }
    ST_UNLOCK(s);
    if (st) {
        free(*bytes);
        *bytes = NULL;
        *n = 0;
        free(table);
        return st;
    }
    if (table_json)
        *table_json = table;
    else
        free(table);
    return R3D_OK;
}

r3d_status r3d_labels_versions(r3d_store *s, const r3d_actor *a, r3d_id case_id,
                               r3d_version_info **v, int *n, r3d_error *err)
{
    if (!s || !v || !n)
        return r3d_fail(err, R3D_EARG, "versions: no store or no output");
    *v = NULL;
    *n = 0;
    ST_LOCK(s);
    r3d_status st = st_permit(s, a, R3D_ACT_CASE_VIEW, err);
    if (!st)
        st = st_case_exists(s, case_id, err);
    sqlite3_stmt *q = NULL;
    if (!st && !(st = st_prepare(s, "SELECT id, parent, author, algorithm, note, created, "
                                    "plain_sha256 FROM label_versions WHERE case_id = ? ORDER BY "
                                    "id", &q, err))) {
        sqlite3_bind_int64(q, 1, case_id);
        int64_t cap = 0;
        while (sqlite3_step(q) == SQLITE_ROW) {
            if (!r3d_grow((void **)v, &cap, *n + 1, sizeof **v)) {
                st = r3d_fail(err, R3D_ENOMEM, "versions: out of memory");
                break;
            }
            r3d_version_info *x = &(*v)[(*n)++];
            memset(x, 0, sizeof *x);
            x->id = sqlite3_column_int64(q, 0);
            x->parent = sqlite3_column_int64(q, 1);
            st_col_copy(q, 2, x->author, sizeof x->author);
            st_col_copy(q, 3, x->algorithm, sizeof x->algorithm);
            st_col_copy(q, 4, x->note, sizeof x->note);
            st_col_copy(q, 5, x->created, sizeof x->created);
            st_col_copy(q, 6, x->sha256, sizeof x->sha256);
        }
        sqlite3_finalize(q);
    }
    if (st) {
        free(*v);
        *v = NULL;
        *n = 0;
    }
    ST_UNLOCK(s);
    return st;
}

r3d_status r3d_labels_set_head(r3d_store *s, const r3d_actor *a, r3d_id case_id, r3d_id version,
                               r3d_error *err)
{
    if (!s)
        return r3d_fail(err, R3D_EARG, "labels: no store");
    if (version <= 0)
        return r3d_fail(err, R3D_EARG, "labels: name the version to show");
    ST_LOCK(s);
    r3d_status st = permit_version(s, a, R3D_ACT_CASE_EDIT, case_id, &version, err);
    if (!st && !(st = st_begin(s, err))) {
        st = set_head(s, a, case_id, version, err);
        if (!st) {
            char obj[96];
            snprintf(obj, sizeof obj, "case %lld version %lld", (long long)case_id,
                     (long long)version);
            st = st_audit(s, a, "labels.set_head", obj, "ok", err);
        }
        if (!st)
            st_touch_case(s, a, case_id);
        st = st_end(s, st, err);
    }
    ST_UNLOCK(s);
    return st;
}

/* ---- meshes ----------------------------------------------------------------------------------- */

static r3d_status mesh_key(const char *format, const char *params_json, int label, char **canon,
                           r3d_error *err)
{
    *canon = NULL;
    if (!st_name_ok(format) || strlen(format) > 15)
        return r3d_fail(err, R3D_EARG, "mesh: format must be a short name like \"glb\"");
    if (label < 0 || label > 65535)
        return r3d_fail(err, R3D_EARG, "mesh: label %d is outside 0..65535", label);
    const char *p = params_json ? params_json : "{}";
    r3d_status st = st_json_ok(p, PARAMS_MAX, 1, "mesh parameters", err);
    if (st)
        return st;
    cJSON *j = cJSON_Parse(p);
    *canon = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    return *canon ? R3D_OK : r3d_fail(err, R3D_ENOMEM, "mesh: out of memory");
}

r3d_status r3d_mesh_put(r3d_store *s, const r3d_actor *a, r3d_id case_id, r3d_id version,
                        int label, const char *format, const char *params_json, const void *bytes,
                        size_t n, r3d_error *err)
{
    if (!s || (!bytes && n))
        return r3d_fail(err, R3D_EARG, "mesh: no store or no bytes");
    char *params = NULL;
    r3d_status st = mesh_key(format, params_json, label, &params, err);
    if (st)
        return st;
    ST_LOCK(s);
    st = permit_version(s, a, R3D_ACT_RECONSTRUCT, case_id, &version, err);
    ST_UNLOCK(s);
    char blob[65], plain[65];
    if (!st)
        st = st_blob_write(s, bytes, n, blob, plain, err);
    ST_LOCK(s);
    st = begin_blob_txn(s, st, case_id, blob, plain, n, err);
    sqlite3_stmt *q = NULL;
    if (!st && !(st = st_prepare(s, "INSERT INTO meshes(case_id, version_id, label, format, "
                                    "params_json, blob, plain_sha256, size, author, created, "
                                    "software, machine) VALUES(?,?,?,?,?,?,?,?,?,"
                                    "strftime('%Y-%m-%dT%H:%M:%fZ','now'),?,?) "
                                    "ON CONFLICT(version_id, label, format, params_json) DO "
                                    "UPDATE SET blob = excluded.blob, plain_sha256 = "
                                    "excluded.plain_sha256, size = excluded.size, author = "
                                    "excluded.author, created = excluded.created, software = "
                                    "excluded.software, machine = excluded.machine", &q, err))) {
        sqlite3_bind_int64(q, 1, case_id);
        sqlite3_bind_int64(q, 2, version);
        sqlite3_bind_int(q, 3, label);
        sqlite3_bind_text(q, 4, format, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 5, params, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 6, blob, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 7, plain, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 8, (int64_t)n);
        sqlite3_bind_text(q, 9, a->user, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 10, r3d_version(), -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 11, s->machine, -1, SQLITE_STATIC);
        st = st_step(s, q, "cannot record the mesh", err);
    }
    if (!st) {
        char obj[128];
        snprintf(obj, sizeof obj, "case %lld version %lld label %d %s", (long long)case_id,
                 (long long)version, label, format);
        st = st_audit(s, a, "mesh.put", obj, "ok", err);
    }
    st = st_end(s, st, err);
    ST_UNLOCK(s);
    free(params);
    return st;
}

r3d_status r3d_mesh_get(r3d_store *s, const r3d_actor *a, r3d_id case_id, r3d_id version, int label,
                        const char *format, const char *params_json, uint8_t **bytes, size_t *n,
                        r3d_error *err)
{
    if (!s || !bytes || !n)
        return r3d_fail(err, R3D_EARG, "mesh: no store or no output");
    *bytes = NULL;
    *n = 0;
    char *params = NULL;
    r3d_status st = mesh_key(format, params_json, label, &params, err);
    if (st)
        return st;
    ST_LOCK(s);
    st = permit_version(s, a, R3D_ACT_CASE_VIEW, case_id, &version, err);
    char blob[65] = "";
    sqlite3_stmt *q = NULL;
    if (!st && !(st = st_prepare(s, "SELECT blob FROM meshes WHERE version_id = ? AND label = ? "
                                    "AND format = ? AND params_json = ?", &q, err))) {
        sqlite3_bind_int64(q, 1, version);
        sqlite3_bind_int(q, 2, label);
        sqlite3_bind_text(q, 3, format, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 4, params, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW)
            st_col_copy(q, 0, blob, sizeof blob);
        else
            st = r3d_fail(err, R3D_ENOTFOUND, "case %lld version %lld: no %s mesh of label %d "
                          "with these parameters", (long long)case_id, (long long)version,
                          format, label);
        sqlite3_finalize(q);
    }
    if (!st)
        st = st_blob_get(s, blob, bytes, n, err);
    if (!st) {
        char obj[128];
        snprintf(obj, sizeof obj, "case %lld version %lld label %d %s", (long long)case_id,
                 (long long)version, label, format);
        st = st_audit(s, a, "mesh.view", obj, "ok", err);
        if (st) {
            free(*bytes);
            *bytes = NULL;
            *n = 0;
        }
    }
    ST_UNLOCK(s);
    free(params);
    return st;
}

/* ---- case documents ---------------------------------------------------------------------------- */

static r3d_status check_kind(const char *kind, r3d_error *err)
{
    if (!st_name_ok(kind) || strlen(kind) > 31)
        return r3d_fail(err, R3D_EARG, "document kind must be a short name like "
                        "\"measurements\" or \"display\"");
    return R3D_OK;
}

r3d_status r3d_case_doc_put(r3d_store *s, const r3d_actor *a, r3d_id case_id, const char *kind,
                            const char *json, r3d_error *err)
{
    if (!s)
        return r3d_fail(err, R3D_EARG, "document: no store");
    r3d_status st = check_kind(kind, err);
    if (!st)
        st = st_json_ok(json, DOC_MAX, 0, kind, err);
    if (st)
        return st;
    ST_LOCK(s);
    st = st_permit(s, a, R3D_ACT_CASE_EDIT, err);
    if (!st)
        st = st_case_exists(s, case_id, err);
    sqlite3_stmt *q = NULL;
    if (!st && !(st = st_begin(s, err))) {
        if (!(st = st_prepare(s, "INSERT INTO case_docs(case_id, kind, json, author, created) "
                                 "VALUES(?,?,?,?,strftime('%Y-%m-%dT%H:%M:%fZ','now'))", &q,
                              err))) {
            sqlite3_bind_int64(q, 1, case_id);
            sqlite3_bind_text(q, 2, kind, -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 3, json, -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 4, a->user, -1, SQLITE_TRANSIENT);
            st = st_step(s, q, "cannot save the document", err);
        }
        if (!st) {
            char obj[96];
            snprintf(obj, sizeof obj, "case %lld %s %lld", (long long)case_id, kind,
                     (long long)st_last_id(s));
            st = st_audit(s, a, "doc.put", obj, "ok", err);
        }
        if (!st)
            st_touch_case(s, a, case_id);
        st = st_end(s, st, err);
    }
    ST_UNLOCK(s);
    return st;
}

r3d_status r3d_case_doc_get(r3d_store *s, const r3d_actor *a, r3d_id case_id, const char *kind,
                            char **json, r3d_error *err)
{
    if (!s || !json)
        return r3d_fail(err, R3D_EARG, "document: no store or no output");
    *json = NULL;
    r3d_status st = check_kind(kind, err);
    if (st)
        return st;
    ST_LOCK(s);
    st = st_permit(s, a, R3D_ACT_CASE_VIEW, err);
    if (!st)
        st = st_case_exists(s, case_id, err);
    sqlite3_stmt *q = NULL;
    if (!st && !(st = st_prepare(s, "SELECT json FROM case_docs WHERE case_id = ? AND kind = ? "
                                    "ORDER BY id DESC LIMIT 1", &q, err))) {
        sqlite3_bind_int64(q, 1, case_id);
        sqlite3_bind_text(q, 2, kind, -1, SQLITE_STATIC);
        *json = sqlite3_step(q) == SQLITE_ROW ? st_col_dup(q, 0) : strdup("{}");
        sqlite3_finalize(q);
        if (!*json)
            st = r3d_fail(err, R3D_ENOMEM, "document: out of memory");
    }
    ST_UNLOCK(s);
    return st;
}

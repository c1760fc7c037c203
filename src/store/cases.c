/* cases.c - importing studies into cases; listing, viewing and deleting
 * cases; the image of a case as a volume or as .nii.gz bytes.
 *
 * Import keeps what traceability needs (clause 4.7.1): for DICOM every file
 * of the chosen series with its SOP Instance UID and SHA-256 (the scan's own
 * file list, so exactly the files the volume was built from); for other
 * formats the input file's SHA-256. The image itself is stored once as a
 * .nii.gz blob (exact voxels and geometry; the acquisition record beside it
 * as JSON), so the browser gets it without conversion.
 *
 * Identity: patient name and ID are read from the first file of the series
 * and kept only in the patients table (sealed when the store has a key);
 * they appear in r3d_case_info only for roles that may see identity, and
 * never in titles, messages or the audit trail. Deleting a case hides it
 * (deleted = 1); its versions and blobs stay for traceability. */
#include "store/store_internal.h"

#include "io/dicom/series.h"
#include "r3d/dicom_write.h"
#include "r3d/input.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- volume <-> .nii.gz bytes ----------------------------------------------------------- */

r3d_status st_volume_to_niigz(r3d_store *s, const r3d_volume *v, uint8_t **bytes, size_t *n,
                              r3d_error *err)
{
    (void)s; /* in memory: the image never touches a file outside the blobs */
    r3d_nifti_write_opts o = R3D_NIFTI_WRITE_OPTS_INIT;
    o.gzip_level = 6;
    return r3d_nifti_write_mem(v, 1, &o, bytes, n, err);
}

/* ---- small helpers ----------------------------------------------------------------------- */

r3d_status st_case_exists(r3d_store *s, r3d_id case_id, r3d_error *err)
{
    if (case_id <= 0 ||
        st_query_int(s, "SELECT count(*) FROM cases WHERE id = ? AND deleted = 0", case_id, 0) != 1)
        return r3d_fail(err, R3D_ENOTFOUND, "case %lld: no such case", (long long)case_id);
    return R3D_OK;
}

/* A DICOM UID (or a series number): digits separated by single dots. */
static int uid_ok(const char *u)
{
    size_t n = strlen(u);
    if (n == 0 || n > 64 || u[0] == '.' || u[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (u[i] == '.' && u[i + 1] == '.')
            return 0;
        if (!((u[i] >= '0' && u[i] <= '9') || u[i] == '.'))
            return 0;
    }
    return 1;
}

/* ---- DICOM inputs: SOP UIDs, hashes, identity ----------------------------------------------- */

typedef struct input_rec {
    char sop[65];
    char sha[65];
    int64_t size;
    char name[256];
} input_rec;

typedef struct import_info {
    input_rec *in;
    int n_in;
    int64_t cap_in;
    char patient_name[128];
    char patient_id[65];
} import_info;

static const char *rel_name(const char *path, const char *root)
{
    size_t n = strlen(root);
    if (strncmp(path, root, n) == 0 && (path[n] == '/' || path[n] == ':'))
        return path + n + 1;
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static r3d_status dicom_inputs(const r3d_dicom_scan *scan, int series, const char *root,
                               import_info *ii, r3d_error *err)
{
    const r3d_series *g = &scan->series[series];
    char *seen = calloc((size_t)scan->n_src + 1, 1);
    if (!seen)
        return r3d_fail(err, R3D_ENOMEM, "import: out of memory");
    r3d_status st = R3D_OK;
    int first_src = -1;
    for (int k = g->first; k < g->first + g->n && !st; k++) {
        const r3d_frame_rec *fr = &scan->frames[k];
        if (fr->src < 0 || fr->src >= scan->n_src || seen[fr->src])
            continue;
        seen[fr->src] = 1;
        const r3d_src *src = &scan->src[fr->src];
        if (first_src < 0)
            first_src = fr->src;
        if (!r3d_grow((void **)&ii->in, &ii->cap_in, ii->n_in + 1, sizeof *ii->in)) {
            st = r3d_fail(err, R3D_ENOMEM, "import: out of memory");
            break;
        }
        input_rec *r = &ii->in[ii->n_in++];
        memset(r, 0, sizeof *r);
        snprintf(r->sop, sizeof r->sop, "%s", fr->sop_uid);
        snprintf(r->name, sizeof r->name, "%s", rel_name(src->path, root));
        if (!r->sop[0]) {
            /* some writers leave (0008,0018) empty and put the UID only in
             * the file meta's MediaStorageSOPInstanceUID (0002,0003) */
            r3d_dcm_file *f = src->mem ? r3d_dcm_parse(src->mem, src->mem_n, 0, "input",
                                                       R3D_DCM_HEADER_ONLY, NULL)
                                       : r3d_dcm_open(src->path, R3D_DCM_HEADER_ONLY, NULL);
            if (f) {
                r3d_dcm_str(f, r3d_dcm_meta(f), 0x00020003, -1, r->sop, sizeof r->sop);
                r3d_dcm_close(f);
            }
        }
        if (src->mem) {
            st_sha256_hex(src->mem, src->mem_n, r->sha);
            r->size = (int64_t)src->mem_n;
        } else {
            uint8_t *b = NULL;
            size_t bn = 0;
            if ((st = r3d_file_read_all(src->path, &b, &bn, err)))
                break;
            st_sha256_hex(b, bn, r->sha);
            r->size = (int64_t)bn;
            free(b);
        }
    }
    free(seen);
    if (st || first_src < 0)
        return st;
    const r3d_src *src = &scan->src[first_src];
    r3d_error e2 = R3D_ERROR_INIT;
    r3d_dcm_file *f = src->mem ? r3d_dcm_parse(src->mem, src->mem_n, 0, "input",
                                               R3D_DCM_HEADER_ONLY, &e2)
                               : r3d_dcm_open(src->path, R3D_DCM_HEADER_ONLY, &e2);
    if (f) {
        r3d_dcm_str(f, r3d_dcm_root(f), 0x00100010, -1, ii->patient_name,
                    sizeof ii->patient_name);
        r3d_dcm_str(f, r3d_dcm_root(f), 0x00100020, -1, ii->patient_id, sizeof ii->patient_id);
        r3d_dcm_close(f);
    }
    return R3D_OK;
}

static r3d_status file_input(const char *path, import_info *ii, r3d_error *err)
{
    uint8_t *b = NULL;
    size_t bn = 0;
    r3d_status st = r3d_file_read_all(path, &b, &bn, err);
    if (st)
        return st;
    if (!r3d_grow((void **)&ii->in, &ii->cap_in, 1, sizeof *ii->in)) {
        free(b);
        return r3d_fail(err, R3D_ENOMEM, "import: out of memory");
    }
    input_rec *r = &ii->in[0];
    memset(r, 0, sizeof *r);
    st_sha256_hex(b, bn, r->sha);
    r->size = (int64_t)bn;
    snprintf(r->name, sizeof r->name, "%s", rel_name(path, ""));
    ii->n_in = 1;
    free(b);
    return R3D_OK;
}

/* ---- import ------------------------------------------------------------------------------ */

r3d_status r3d_case_import(r3d_store *s, const r3d_actor *a, const char *input, const char *series,
                           r3d_id *case_id, r3d_error *err)
{
    if (case_id)
        *case_id = 0;
    if (!s || !input || !*input)
        return r3d_fail(err, R3D_EARG, "import: no store or no input");
    if (strlen(input) > 4000)
        return r3d_fail(err, R3D_EARG, "import: input path longer than 4000 bytes");
    if (series && (strlen(series) > 64 || !uid_ok(series)))
        return r3d_fail(err, R3D_EARG, "import: series must be a UID or a 1-based number");
    ST_LOCK(s);
    r3d_status st = st_permit(s, a, R3D_ACT_CASE_IMPORT, err);
    ST_UNLOCK(s);
    if (st)
        return st;

    /* the heavy part without the lock */
    import_info ii;
    memset(&ii, 0, sizeof ii);
    r3d_volume *v = NULL;
    r3d_labelmap *masks = NULL; /* an InVesalius project's masks */
    r3d_input_kind kind = r3d_input_detect(input);
    if (kind == R3D_INPUT_UNKNOWN) {
        struct stat sb;
        return r3d_fail(err, stat(input, &sb) ? R3D_EIO : R3D_EFORMAT, "%s: %s", input,
                        stat(input, &sb) ? "no such file or folder" : "unrecognised input");
    }
    if (kind == R3D_INPUT_DICOM) {
        r3d_scan_opts so = R3D_SCAN_OPTS_INIT;
        so.quiet = 1;
        r3d_dicom_scan *scan = r3d_dicom_scan_path(input, &so, err);
        if (!scan)
            return err ? err->code : R3D_EFORMAT;
        int i = r3d_dicom_scan_count(scan) > 0 ? r3d_dicom_scan_pick(scan, series, err) : -1;
        if (i < 0) {
            if (r3d_dicom_scan_count(scan) == 0)
                r3d_fail(err, R3D_ENOTFOUND, "%s: no DICOM images found", input);
            r3d_dicom_scan_free(scan);
            return err && err->code ? err->code : R3D_ENOTFOUND;
        }
        v = r3d_dicom_series_load(scan, i, &so, err);
        if (v)
            st = dicom_inputs(scan, i, input, &ii, err);
        r3d_dicom_scan_free(scan);
        if (!v)
            return err ? err->code : R3D_EFORMAT;
    } else {
        r3d_input_opts io = R3D_INPUT_OPTS_INIT;
        v = r3d_input_load(input, &io, &masks, NULL, err);
        if (!v)
            return err ? err->code : R3D_EFORMAT;
        st = file_input(input, &ii, err);
    }
    uint8_t *nii = NULL;
    size_t nii_n = 0;
    if (!st)
        st = st_volume_to_niigz(s, v, &nii, &nii_n, err);
    if (st) {
        r3d_volume_free(v);
        r3d_labelmap_free(masks);
        free(ii.in);
        free(nii);
        return st;
    }
    /* UIDs: from DICOM, or made for inputs without them */
    char study_uid[65], series_uid[65];
    snprintf(study_uid, sizeof study_uid, "%s", v->acq.study_uid);
    snprintf(series_uid, sizeof series_uid, "%s", v->acq.series_uid);
    if (!uid_ok(study_uid) && (st = r3d_uid_new(study_uid, err)) == R3D_OK)
        snprintf(v->acq.study_uid, sizeof v->acq.study_uid, "%s", study_uid);
    if (!st && !uid_ok(series_uid) && (st = r3d_uid_new(series_uid, err)) == R3D_OK)
        snprintf(v->acq.series_uid, sizeof v->acq.series_uid, "%s", series_uid);
    char *acq = st ? NULL : st_acq_to_json(&v->acq);
    if (!st && !acq)
        st = r3d_fail(err, R3D_ENOMEM, "import: out of memory");

    char title[128], modality[17];
    snprintf(modality, sizeof modality, "%s", v->acq.modality[0] ? v->acq.modality : "OT");
    for (char *p = modality; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            *p = '_';
    {
        char part[17] = "", date[16] = "";
        for (size_t i = 0, j = 0; v->acq.body_part[i] && j + 1 < sizeof part; i++) {
            char c = v->acq.body_part[i];
            if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                c == ' ' || c == '_') {
                part[j++] = c;
                part[j] = 0;
            }
        }
        const char *d = v->acq.acquisition_date;
        if (strlen(d) == 8)
            snprintf(date, sizeof date, "%.4s-%.2s-%.2s", d, d + 4, d + 6);
        snprintf(title, sizeof title, "%s%s%s%s%s %lldx%lldx%lld", modality, part[0] ? " " : "",
                 part, date[0] ? " " : "", date, (long long)v->dim[0], (long long)v->dim[1],
                 (long long)v->dim[2]);
    }

    char blob[65], blob_plain[65], created[32];
    if (!st)
        st = st_blob_write(s, nii, nii_n, blob, blob_plain, err);
    ST_LOCK(s);
    st_iso_now(created);
    sqlite3_stmt *q = NULL;
    r3d_id pid = 0, study = 0, ser = 0, cid = 0;
    if (!st)
        st = st_begin(s, err);
    if (!st)
        st = st_blob_record(s, blob, blob_plain, nii_n, err);
    /* patient: found again by a (keyed, when sealed) hash of ID and name */
    if (!st) {
        char keytext[256], pkey[65];
        if (ii.patient_id[0] || ii.patient_name[0])
            snprintf(keytext, sizeof keytext, "patient\n%s\n%s", ii.patient_id,
                     ii.patient_name);
        else
            snprintf(keytext, sizeof keytext, "unknown patient of study\n%s", study_uid);
        uint8_t h[32];
        crypto_generichash(h, sizeof h, (const uint8_t *)keytext, strlen(keytext),
                           s->sealed ? s->key : NULL, s->sealed ? 32 : 0);
        st_hex(h, 32, pkey);
        sodium_memzero(keytext, sizeof keytext);
        if (!(st = st_prepare(s, "SELECT id FROM patients WHERE patient_key = ?", &q, err))) {
            sqlite3_bind_text(q, 1, pkey, -1, SQLITE_TRANSIENT);
            if (sqlite3_step(q) == SQLITE_ROW)
                pid = sqlite3_column_int64(q, 0);
            sqlite3_finalize(q);
        }
        if (!st && !pid) {
            char *name = st_seal_text(s, ii.patient_name), *id = st_seal_text(s, ii.patient_id);
            if (!name || !id)
                st = r3d_fail(err, R3D_ENOMEM, "import: out of memory");
            if (!st && !(st = st_prepare(s, "INSERT INTO patients(patient_key, name, pid) "
                                            "VALUES(?,?,?)", &q, err))) {
                sqlite3_bind_text(q, 1, pkey, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(q, 2, name, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(q, 3, id, -1, SQLITE_TRANSIENT);
                st = st_step(s, q, "cannot add the patient", err);
                pid = st_last_id(s);
            }
            free(name);
            free(id);
        }
    }
    if (!st && !(st = st_prepare(s, "INSERT OR IGNORE INTO studies(patient_id, study_uid) "
                                    "VALUES(?,?)", &q, err))) {
        sqlite3_bind_int64(q, 1, pid);
        sqlite3_bind_text(q, 2, study_uid, -1, SQLITE_STATIC);
        if (!(st = st_step(s, q, "cannot add the study", err)) &&
            !(st = st_prepare(s, "SELECT id FROM studies WHERE study_uid = ?", &q, err))) {
            sqlite3_bind_text(q, 1, study_uid, -1, SQLITE_STATIC);
            if (sqlite3_step(q) == SQLITE_ROW)
                study = sqlite3_column_int64(q, 0);
            sqlite3_finalize(q);
        }
    }
    if (!st && !(st = st_prepare(s, "INSERT INTO series(study_id, series_uid, modality, "
                                    "input_kind, acq_json, image_blob, dim0, dim1, dim2, sp0, "
                                    "sp1, sp2, imported, imported_by, software, machine) "
                                    "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", &q, err))) {
        sqlite3_bind_int64(q, 1, study);
        sqlite3_bind_text(q, 2, series_uid, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, modality, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 4, r3d_input_kind_name(kind), -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 5, acq, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 6, blob, -1, SQLITE_STATIC);
        for (int i = 0; i < 3; i++) {
            sqlite3_bind_int64(q, 7 + i, v->dim[i]);
            sqlite3_bind_double(q, 10 + i, v->spacing_mm[i]);
        }
        sqlite3_bind_text(q, 13, created, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 14, a->user, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 15, r3d_version(), -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 16, s->machine, -1, SQLITE_STATIC);
        st = st_step(s, q, "cannot add the series", err);
        ser = st_last_id(s);
    }
    for (int i = 0; i < ii.n_in && !st; i++) {
        if ((st = st_prepare(s, "INSERT INTO inputs(series_id, sop_uid, sha256, size, name) "
                                "VALUES(?,?,?,?,?)", &q, err)))
            break;
        sqlite3_bind_int64(q, 1, ser);
        sqlite3_bind_text(q, 2, ii.in[i].sop, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, ii.in[i].sha, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 4, ii.in[i].size);
        sqlite3_bind_text(q, 5, ii.in[i].name, -1, SQLITE_STATIC);
        st = st_step(s, q, "cannot record an input file", err);
    }
    if (!st && !(st = st_prepare(s, "INSERT INTO cases(series_id, title, created, created_by) "
                                    "VALUES(?,?,?,?)", &q, err))) {
        sqlite3_bind_int64(q, 1, ser);
        sqlite3_bind_text(q, 2, title, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, created, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 4, a->user, -1, SQLITE_TRANSIENT);
        st = st_step(s, q, "cannot add the case", err);
        cid = st_last_id(s);
    }
    if (!st) {
        char obj[64], out[96];
        snprintf(obj, sizeof obj, "case %lld", (long long)cid);
        snprintf(out, sizeof out, "ok: %s, %d input files", r3d_input_kind_name(kind), ii.n_in);
        st = st_audit(s, a, "case.import", obj, out, err);
    }
    if (!st)
        st_touch_case(s, a, cid);
    st = st_end(s, st, err);
    int committed = !st;
    ST_UNLOCK(s);
    sodium_memzero(&ii.patient_name, sizeof ii.patient_name);
    sodium_memzero(&ii.patient_id, sizeof ii.patient_id);
    free(ii.in);
    free(nii);
    free(acq);
    r3d_volume_free(v);
    /* a project's own masks become the case's first label-map version */
    if (!st && masks && masks->vol && masks->vol->dtype == R3D_U16) {
        r3d_provenance p = {"import", "{\"source\":\"InVesalius project masks\"}"};
        r3d_status ms = r3d_labels_commit(s, a, cid, masks, "masks of the imported project", &p,
                                          NULL, err);
        if (ms)
            r3d_error_prefix(err, "case %lld imported, its masks not: ", (long long)cid);
        st = ms;
    }
    r3d_labelmap_free(masks);
    if (committed && case_id)
        *case_id = cid; /* even if its masks failed: the case is there */
    return st;
}

/* ---- list / get / delete ------------------------------------------------------------------- */

static const char CASE_SELECT[] =
    "SELECT c.id, c.title, se.modality, st.study_uid, se.series_uid, c.created, se.dim0, "
    "se.dim1, se.dim2, se.sp0, se.sp1, se.sp2, c.head_version, "
    "(SELECT count(*) FROM label_versions v WHERE v.case_id = c.id), p.name, p.pid "
    "FROM cases c JOIN series se ON se.id = c.series_id JOIN studies st ON st.id = se.study_id "
    "JOIN patients p ON p.id = st.patient_id WHERE c.deleted = 0";

static void fill_info(r3d_store *s, sqlite3_stmt *q, int identity, r3d_case_info *c)
{
    memset(c, 0, sizeof *c);
    c->id = sqlite3_column_int64(q, 0);
    st_col_copy(q, 1, c->title, sizeof c->title);
    st_col_copy(q, 2, c->modality, sizeof c->modality);
    st_col_copy(q, 3, c->study_uid, sizeof c->study_uid);
    st_col_copy(q, 4, c->series_uid, sizeof c->series_uid);
    st_col_copy(q, 5, c->created, sizeof c->created);
    for (int i = 0; i < 3; i++) {
        c->dim[i] = sqlite3_column_int(q, 6 + i);
        c->spacing_mm[i] = sqlite3_column_double(q, 9 + i);
    }
    c->head_version = sqlite3_column_int64(q, 12);
    c->n_versions = sqlite3_column_int(q, 13);
    if (identity) {
        char *n = st_unseal_text(s, (const char *)sqlite3_column_text(q, 14));
        char *p = st_unseal_text(s, (const char *)sqlite3_column_text(q, 15));
        snprintf(c->patient_name, sizeof c->patient_name, "%s", n ? n : "");
        snprintf(c->patient_id, sizeof c->patient_id, "%s", p ? p : "");
        free(n);
        free(p);
    }
}

r3d_status r3d_case_list(r3d_store *s, const r3d_actor *a, r3d_case_info **cases, int *n,
                         r3d_error *err)
{
    if (!s || !cases || !n)
        return r3d_fail(err, R3D_EARG, "case list: no store or no output");
    *cases = NULL;
    *n = 0;
    ST_LOCK(s);
    r3d_status st = st_permit(s, a, R3D_ACT_CASE_LIST, err);
    int identity = !st && st_allowed(s, a, R3D_ACT_VIEW_IDENTITY);
    sqlite3_stmt *q = NULL;
    char sql[1024];
    snprintf(sql, sizeof sql, "%s ORDER BY c.id", CASE_SELECT);
    if (!st && !(st = st_prepare(s, sql, &q, err))) {
        int64_t cap = 0;
        while (sqlite3_step(q) == SQLITE_ROW) {
            if (!r3d_grow((void **)cases, &cap, *n + 1, sizeof **cases)) {
                st = r3d_fail(err, R3D_ENOMEM, "case list: out of memory");
                break;
            }
            fill_info(s, q, identity, &(*cases)[(*n)++]);
        }
        sqlite3_finalize(q);
    }
    if (!st)
        st = st_audit(s, a, "case.list", "cases", identity ? "ok, with identity" : "ok", err);
    if (st) {
        free(*cases);
        *cases = NULL;
        *n = 0;
    }
    ST_UNLOCK(s);
    return st;
}

r3d_status r3d_case_get(r3d_store *s, const r3d_actor *a, r3d_id case_id, r3d_case_info *out,
                        r3d_error *err)
{
    if (!s || !out)
        return r3d_fail(err, R3D_EARG, "case: no store or no output");
    memset(out, 0, sizeof *out);
    ST_LOCK(s);
    r3d_status st = st_permit(s, a, R3D_ACT_CASE_VIEW, err);
    int identity = !st && st_allowed(s, a, R3D_ACT_VIEW_IDENTITY);
    sqlite3_stmt *q = NULL;
    char sql[1024];
    snprintf(sql, sizeof sql, "%s AND c.id = ?", CASE_SELECT);
    if (!st && !(st = st_prepare(s, sql, &q, err))) {
        sqlite3_bind_int64(q, 1, case_id);
        if (sqlite3_step(q) == SQLITE_ROW)
            fill_info(s, q, identity, out);
        else
            st = r3d_fail(err, R3D_ENOTFOUND, "case %lld: no such case", (long long)case_id);
        sqlite3_finalize(q);
    }
    if (!st) {
        char obj[64];
        snprintf(obj, sizeof obj, "case %lld", (long long)case_id);
        if (!(st = st_begin(s, err))) {
            st = st_audit(s, a, "case.view", obj, identity ? "ok, with identity" : "ok", err);
            st_touch_case(s, a, case_id);
            st = st_end(s, st, err);
        }
    }
    ST_UNLOCK(s);
    return st;
}

r3d_status r3d_case_delete(r3d_store *s, const r3d_actor *a, r3d_id case_id, r3d_error *err)
{
    if (!s)
        return r3d_fail(err, R3D_EARG, "case: no store");
    ST_LOCK(s);
    r3d_status st = st_permit(s, a, R3D_ACT_CASE_DELETE, err);
    if (!st)
        st = st_case_exists(s, case_id, err);
    sqlite3_stmt *q = NULL;
    if (!st && !(st = st_begin(s, err))) {
        if (!(st = st_prepare(s, "UPDATE cases SET deleted = 1 WHERE id = ?", &q, err))) {
            sqlite3_bind_int64(q, 1, case_id);
            st = st_step(s, q, "cannot delete the case", err);
        }
        if (!st && !(st = st_prepare(s, "UPDATE jobs SET state = 3, message = 'case deleted', "
                                        "finished = strftime('%Y-%m-%dT%H:%M:%fZ','now') "
                                        "WHERE case_id = ? AND state = 0", &q, err))) {
            sqlite3_bind_int64(q, 1, case_id);
            st = st_step(s, q, "cannot cancel the case's jobs", err);
        }
        char obj[64];
        snprintf(obj, sizeof obj, "case %lld", (long long)case_id);
        if (!st)
            st = st_audit(s, a, "case.delete", obj, "ok", err);
        st = st_end(s, st, err);
    }
    ST_UNLOCK(s);
    return st;
}

/* ---- the image ------------------------------------------------------------------------------ */

static r3d_status image_blob(r3d_store *s, const r3d_actor *a, r3d_id case_id, uint8_t **bytes,
                             size_t *n, char **acq, r3d_error *err)
{
    r3d_status st = st_permit(s, a, R3D_ACT_CASE_VIEW, err);
    if (!st)
        st = st_case_exists(s, case_id, err);
    sqlite3_stmt *q = NULL;
    char blob[65] = "";
    if (!st && !(st = st_prepare(s, "SELECT se.image_blob, se.acq_json FROM cases c JOIN series "
                                    "se ON se.id = c.series_id WHERE c.id = ?", &q, err))) {
        sqlite3_bind_int64(q, 1, case_id);
        if (sqlite3_step(q) == SQLITE_ROW) {
            st_col_copy(q, 0, blob, sizeof blob);
            if (acq)
                *acq = st_col_dup(q, 1);
        }
        sqlite3_finalize(q);
    }
    if (!st)
        st = st_blob_get(s, blob, bytes, n, err);
    if (!st) {
        char obj[64];
        snprintf(obj, sizeof obj, "case %lld image", (long long)case_id);
        if (!(st = st_begin(s, err))) {
            st = st_audit(s, a, "case.view", obj, "ok", err);
            st_touch_case(s, a, case_id);
            st = st_end(s, st, err);
        }
        if (st) { /* no view without its audit entry */
            free(*bytes);
            *bytes = NULL;
            *n = 0;
        }
    }
    return st;
}

r3d_status r3d_case_image_nifti(r3d_store *s, const r3d_actor *a, r3d_id case_id, uint8_t **bytes,
                                size_t *n, r3d_error *err)
{
    if (!s || !bytes || !n)
        return r3d_fail(err, R3D_EARG, "case image: no store or no output");
    *bytes = NULL;
    *n = 0;
    ST_LOCK(s);
    r3d_status st = image_blob(s, a, case_id, bytes, n, NULL, err);
    ST_UNLOCK(s);
    return st;
}

r3d_status r3d_case_image(r3d_store *s, const r3d_actor *a, r3d_id case_id, r3d_volume **out,
                          r3d_error *err)
{
    if (!s || !out)
        return r3d_fail(err, R3D_EARG, "case image: no store or no output");
    *out = NULL;
    uint8_t *b = NULL;
    size_t n = 0;
    char *acq = NULL;
    ST_LOCK(s);
    r3d_status st = image_blob(s, a, case_id, &b, &n, &acq, err);
    ST_UNLOCK(s);
    if (st) {
        free(acq);
        return st;
    }
    char name[64];
    snprintf(name, sizeof name, "case %lld image", (long long)case_id);
    r3d_volume *v = r3d_nifti_read_mem(b, n, name, err);
    free(b);
    if (!v) {
        free(acq);
        return err ? err->code : R3D_EDATA;
    }
    st_acq_from_json(acq, &v->acq);
    free(acq);
    *out = v;
    return R3D_OK;
}

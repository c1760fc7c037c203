/* routes_cases.c - cases: import (a zip upload or a server-side folder),
 * list, get, delete, the image as NIfTI, label-map versions and the head
 * (undo/redo), the documents kept with a case (measurements, display state),
 * automatic reconstruction (a job) and export. */
#include "server_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static cJSON *case_json(const r3d_case_info *c)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "id", (double)c->id);
    cJSON_AddStringToObject(j, "title", c->title);
    cJSON_AddStringToObject(j, "modality", c->modality);
    cJSON_AddStringToObject(j, "created", c->created);
    cJSON_AddItemToObject(j, "dim", cJSON_CreateIntArray(c->dim, 3));
    cJSON_AddItemToObject(j, "spacing_mm", cJSON_CreateDoubleArray(c->spacing_mm, 3));
    cJSON_AddNumberToObject(j, "head_version", (double)c->head_version);
    cJSON_AddNumberToObject(j, "n_versions", c->n_versions);
    if (c->patient_name[0] || c->patient_id[0]) {
        cJSON_AddStringToObject(j, "patient_name", c->patient_name);
        cJSON_AddStringToObject(j, "patient_id", c->patient_id);
    }
    return j;
}

static int import_route(srv_req *q, srv_resp *r)
{
    if (!require(q, r, R3D_ACT_CASE_IMPORT))
        return 1;
    r3d_server *s = q->srv;
    r3d_error err = R3D_ERROR_INIT;
    const char *ct = req_header(q, "Content-Type");
    char path[4096] = "";
    char *series = NULL;
    int uploaded = 0;
    if (ct && !strncmp(ct, "application/json", 16)) {
        cJSON *j = req_json(q, r);
        if (!j)
            return 1;
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "path");
        const cJSON *se = cJSON_GetObjectItemCaseSensitive(j, "series");
        if (!cJSON_IsString(p) || !p->valuestring[0]) {
            cJSON_Delete(j);
            resp_error(r, 400, "bad_request", "give \"path\": a folder or file on the server");
            return 1;
        }
        char *real = realpath(p->valuestring, NULL);
        if (!real) {
            resp_error(r, 404, "not_found", "%s: no such file or folder on the server",
                       p->valuestring);
            cJSON_Delete(j);
            return 1;
        }
        size_t rl = s->import_root ? strlen(s->import_root) : 0;
        if (s->import_root && (strncmp(real, s->import_root, rl) || (real[rl] && real[rl] != '/'))) {
            free(real);
            cJSON_Delete(j);
            resp_error(r, 403, "forbidden", "imports are allowed only from below %s",
                       s->import_root);
            return 1;
        }
        snprintf(path, sizeof path, "%s", real);
        free(real);
        if (cJSON_IsString(se))
            series = strdup(se->valuestring);
        else if (cJSON_IsNumber(se))
            series = dup_printf("%d", se->valueint);
        cJSON_Delete(j);
    } else {
        if (q->body_n < 4 || memcmp(q->body, "PK\3\4", 4)) {
            resp_error(r, 415, "bad_format",
                       "upload a .zip of the study (Content-Type application/zip) or send JSON "
                       "{\"path\": ...}");
            return 1;
        }
        static unsigned long seq;
        snprintf(path, sizeof path, "%s/upload-%lu.zip", s->tmp_dir,
                 __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
        if (r3d_file_write_atomic(path, q->body, q->body_n, &err) != R3D_OK) {
            resp_fail(r, &err);
            return 1;
        }
        uploaded = 1;
        const char *se = req_arg(q, "series");
        if (se)
            series = strdup(se);
    }
    r3d_id id = 0;
    r3d_status st = r3d_case_import(s->store, &q->actor, path, series, &id, &err);
    if (uploaded)
        unlink(path);
    free(series);
    if (st != R3D_OK) {
        /* the store names its temporary upload path; the user knows it as the upload */
        resp_fail(r, &err);
        return 1;
    }
    r3d_case_info ci;
    if (r3d_case_get(s->store, &q->actor, id, &ci, &err) != R3D_OK) {
        resp_fail(r, &err);
        return 1;
    }
    resp_json(r, 201, case_json(&ci));
    return 1;
}

static int reconstruct_route(srv_req *q, srv_resp *r, r3d_id case_id)
{
    if (!require(q, r, R3D_ACT_RECONSTRUCT))
        return 1;
    r3d_error err = R3D_ERROR_INIT;
    r3d_case_info ci;
    if (r3d_case_get(q->srv->store, &q->actor, case_id, &ci, &err) != R3D_OK) {
        resp_fail(r, &err);
        return 1;
    }
    cJSON *body = q->body_n ? req_json(q, r) : cJSON_CreateObject();
    if (!body)
        return 1;
    const cJSON *structs = cJSON_GetObjectItemCaseSensitive(body, "structures");
    const cJSON *smooth = cJSON_GetObjectItemCaseSensitive(body, "smooth");
    if ((structs && !cJSON_IsString(structs)) ||
        (smooth && (!cJSON_IsNumber(smooth) || smooth->valuedouble < 0 ||
                    smooth->valuedouble > 10))) {
        cJSON_Delete(body);
        resp_error(r, 400, "bad_request",
                   "\"structures\" is a comma-separated string and \"smooth\" a number 0..10");
        return 1;
    }
    cJSON *p = job_params_new(&q->actor);
    cJSON_AddStringToObject(p, "structures", structs ? structs->valuestring : "all");
    cJSON_AddNumberToObject(p, "smooth", smooth ? smooth->valuedouble : 5);
    cJSON_Delete(body);
    jobs_submit_resp(q, r, case_id, "segment", p);
    return 1;
}

static int doc_route(srv_req *q, srv_resp *r, r3d_id id, const char *kind)
{
    if (strcmp(kind, "measurements") && strcmp(kind, "display")) {
        resp_error(r, 404, "not_found", "documents are \"measurements\" or \"display\"");
        return 1;
    }
    r3d_error err = R3D_ERROR_INIT;
    if (!strcmp(q->method, "GET")) {
        if (!require(q, r, R3D_ACT_CASE_VIEW))
            return 1;
        char *json = NULL;
        if (r3d_case_doc_get(q->srv->store, &q->actor, id, kind, &json, &err) != R3D_OK)
            resp_fail(r, &err);
        else
            resp_bytes(r, 200, "application/json; charset=utf-8", (uint8_t *)json, strlen(json));
        return 1;
    }
    if (!strcmp(q->method, "PUT")) {
        if (!require(q, r, R3D_ACT_CASE_EDIT))
            return 1;
        cJSON *j = req_json(q, r);
        if (!j)
            return 1;
        char *s = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        if (!s || r3d_case_doc_put(q->srv->store, &q->actor, id, kind, s, &err) != R3D_OK)
            resp_fail(r, &err);
        else
            resp_json(r, 200, cJSON_CreateObject());
        free(s);
        return 1;
    }
    resp_error(r, 405, "method", "use GET or PUT");
    return 1;
}

static int versions_route(srv_req *q, srv_resp *r, r3d_id id)
{
    if (!require(q, r, R3D_ACT_CASE_VIEW))
        return 1;
    r3d_error err = R3D_ERROR_INIT;
    r3d_version_info *v = NULL;
    int n = 0;
    r3d_case_info ci;
    if (r3d_case_get(q->srv->store, &q->actor, id, &ci, &err) != R3D_OK ||
        r3d_labels_versions(q->srv->store, &q->actor, id, &v, &n, &err) != R3D_OK) {
        resp_fail(r, &err);
        return 1;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "head", (double)ci.head_version);
    cJSON *a = cJSON_AddArrayToObject(j, "versions");
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "id", (double)v[i].id);
        cJSON_AddNumberToObject(e, "parent", (double)v[i].parent);
        cJSON_AddStringToObject(e, "author", v[i].author);
        cJSON_AddStringToObject(e, "algorithm", v[i].algorithm);
        cJSON_AddStringToObject(e, "note", v[i].note);
        cJSON_AddStringToObject(e, "created", v[i].created);
        cJSON_AddStringToObject(e, "sha256", v[i].sha256);
        cJSON_AddItemToArray(a, e);
    }
    free(v);
    resp_json(r, 200, j);
    return 1;
}

static int head_route(srv_req *q, srv_resp *r, r3d_id id)
{
    if (!require(q, r, R3D_ACT_CASE_EDIT))
        return 1;
    cJSON *j = req_json(q, r);
    if (!j)
        return 1;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "version");
    if (!cJSON_IsNumber(v) || v->valuedouble < 1) {
        cJSON_Delete(j);
        resp_error(r, 400, "bad_request", "give \"version\": an existing version id");
        return 1;
    }
    r3d_error err = R3D_ERROR_INIT;
    pthread_mutex_lock(&q->srv->edit_mu);
    r3d_status st = r3d_labels_set_head(q->srv->store, &q->actor, id, (r3d_id)v->valuedouble, &err);
    pthread_mutex_unlock(&q->srv->edit_mu);
    if (st != R3D_OK)
        resp_fail(r, &err);
    else {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "head", v->valuedouble);
        resp_json(r, 200, o);
    }
    cJSON_Delete(j);
    return 1;
}

static int image_route(srv_req *q, srv_resp *r, r3d_id id, int gz)
{
    if (!require(q, r, R3D_ACT_CASE_VIEW))
        return 1;
    r3d_error err = R3D_ERROR_INIT;
    r3d_volume *v = NULL, *c = NULL;
    uint8_t *bytes = NULL;
    size_t n = 0;
    r3d_case_info ci;
    /* case_get checks the case exists and audits the view even on a cache hit */
    if (r3d_case_get(q->srv->store, &q->actor, id, &ci, &err) != R3D_OK) {
        resp_fail(r, &err);
        return 1;
    }
    const char *ctype = gz ? "application/gzip" : "application/octet-stream";
    if (nifti_cache_get(q->srv, 'i', id, 0, gz, &bytes, &n)) {
        resp_bytes(r, 200, ctype, bytes, n);
        return 1;
    }
    if (r3d_case_image(q->srv->store, &q->actor, id, &v, &err) != R3D_OK ||
        !(c = grid_canonical(v, &err)) ||
        volume_to_nifti_bytes(q->srv, c, gz, &bytes, &n, &err) != R3D_OK)
        resp_fail(r, &err);
    else {
        nifti_cache_put(q->srv, 'i', id, 0, gz, bytes, n);
        resp_bytes(r, 200, ctype, bytes, n);
    }
    r3d_volume_free(v);
    r3d_volume_free(c);
    return 1;
}

/* Export: meshes in any of the library's formats, or the label map. */
static int export_route(srv_req *q, srv_resp *r, r3d_id id)
{
    if (!require(q, r, R3D_ACT_EXPORT))
        return 1;
    cJSON *j = req_json(q, r);
    if (!j)
        return 1;
    r3d_error err = R3D_ERROR_INIT;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "format");
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(j, "labels");
    const cJSON *sm = cJSON_GetObjectItemCaseSensitive(j, "smooth");
    const cJSON *fr = cJSON_GetObjectItemCaseSensitive(j, "frame");
    double smooth = cJSON_IsNumber(sm) ? sm->valuedouble : 5;
    r3d_frame frame = cJSON_IsString(fr) && !strcmp(fr->valuestring, "ras") ? R3D_FRAME_RAS
                                                                             : R3D_FRAME_LPS;
    if (!cJSON_IsString(f) || (labels && !cJSON_IsArray(labels)) || !(smooth >= 0 && smooth <= 10)) {
        cJSON_Delete(j);
        resp_error(r, 400, "bad_request",
                   "give \"format\" (stl, obj, ply, 3mf, amf, wrl, 3ds, glb or nii.gz), "
                   "optionally \"labels\": [values] and \"smooth\": 0..10");
        return 1;
    }
    const char *fmt = f->valuestring;
    int nifti = !strcmp(fmt, "nii.gz") || !strcmp(fmt, "nii");
    char name[32];
    snprintf(name, sizeof name, "x.%s", fmt);
    r3d_mesh_format mf = nifti ? R3D_MESH_UNKNOWN : r3d_mesh_format_from_name(name);
    if (!nifti && (mf == R3D_MESH_UNKNOWN || mf == R3D_MESH_OBJ)) {
        resp_error(r, 400, "bad_request",
                   "%.32s: cannot export to this format (stl, ply, 3mf, amf, wrl, 3ds, glb, "
                   "nii.gz)", fmt);
        cJSON_Delete(j);
        return 1;
    }
    r3d_labelmap *m = NULL;
    if (r3d_labels_load(q->srv->store, &q->actor, id, 0, &m, &err) != R3D_OK) {
        cJSON_Delete(j);
        resp_fail(r, &err);
        return 1;
    }
    char path[4096];
    static unsigned long seq;
    snprintf(path, sizeof path, "%s/export-%lu.%s", q->srv->tmp_dir,
             __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED), fmt);
    r3d_status st = R3D_OK;
    if (nifti) {
        st = r3d_nifti_write(m->vol, path, NULL, &err);
    } else {
        r3d_scene sc = {0};
        for (int i = 0; i < m->table.n && st == R3D_OK; i++) {
            const r3d_label *l = &m->table.v[i];
            if (labels) {
                int want = 0;
                const cJSON *e;
                cJSON_ArrayForEach(e, labels) want |= cJSON_IsNumber(e) && e->valueint == l->value;
                if (!want)
                    continue;
            }
            if (!count_label(m->vol, l->value))
                continue;
            r3d_mesh *me = mesh_build(m->vol, l->value, smooth, frame, &err);
            if (!me) {
                st = err.code;
                break;
            }
            snprintf(me->name, sizeof me->name, "%s", l->name);
            snprintf(me->name_zh, sizeof me->name_zh, "%s", l->name_zh);
            memcpy(me->rgb, l->rgb, 3);
            me->label = l->value;
            st = r3d_scene_add(&sc, me, &err);
        }
        if (st == R3D_OK && sc.n == 0)
            st = r3d_fail(&err, R3D_ENOTFOUND, "case %lld: no labelled voxels to export",
                          (long long)id);
        if (st == R3D_OK)
            st = r3d_scene_write(&sc, path, mf, &err);
        r3d_scene_clear(&sc);
    }
    uint8_t *bytes = NULL;
    size_t n = 0;
    if (st == R3D_OK)
        st = r3d_file_read_all(path, &bytes, &n, &err);
    unlink(path);
    if (st != R3D_OK)
        resp_fail(r, &err);
    else {
        resp_bytes(r, 200, "application/octet-stream", bytes, n);
        snprintf(r->disposition, sizeof r->disposition, "attachment; filename=\"case%lld.%s\"",
                 (long long)id, fmt);
        r3d_audit(q->srv->store, &q->actor, "case.export", name + 2, "ok", NULL);
    }
    r3d_labelmap_free(m);
    cJSON_Delete(j);
    return 1;
}

int routes_cases(srv_req *q, srv_resp *r)
{
    r3d_store *st = q->srv->store;
    r3d_error err = R3D_ERROR_INIT;
    int64_t id[2];
    char s[2][64];
    if (!strcmp(q->path, "/api/cases")) {
        if (!strcmp(q->method, "POST"))
            return import_route(q, r);
        if (strcmp(q->method, "GET")) {
            resp_error(r, 405, "method", "use GET or POST");
            return 1;
        }
        if (!require(q, r, R3D_ACT_CASE_LIST))
            return 1;
        r3d_case_info *c = NULL;
        int n = 0;
        if (r3d_case_list(st, &q->actor, &c, &n, &err) != R3D_OK) {
            resp_fail(r, &err);
            return 1;
        }
        cJSON *a = cJSON_CreateArray();
        for (int i = 0; i < n; i++)
            cJSON_AddItemToArray(a, case_json(&c[i]));
        free(c);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddItemToObject(j, "cases", a);
        resp_json(r, 200, j);
        return 1;
    }
    if (path_match(q->path, "/api/cases/*", id, NULL)) {
        r3d_case_info ci;
        if (!strcmp(q->method, "GET")) {
            if (!require(q, r, R3D_ACT_CASE_VIEW))
                return 1;
            if (r3d_case_get(st, &q->actor, id[0], &ci, &err) != R3D_OK)
                resp_fail(r, &err);
            else
                resp_json(r, 200, case_json(&ci));
        } else if (!strcmp(q->method, "DELETE")) {
            if (!require(q, r, R3D_ACT_CASE_DELETE))
                return 1;
            if (r3d_case_delete(st, &q->actor, id[0], &err) != R3D_OK)
                resp_fail(r, &err);
            else {
                nifti_cache_drop(q->srv, id[0]);
                mcache_drop_case(q->srv, id[0]);
                resp_json(r, 200, cJSON_CreateObject());
            }
        } else
            resp_error(r, 405, "method", "use GET or DELETE");
        return 1;
    }
    int gz = path_match(q->path, "/api/cases/*/image.nii.gz", id, NULL);
    if (gz || path_match(q->path, "/api/cases/*/image.nii", id, NULL))
        return !strcmp(q->method, "GET") ? image_route(q, r, id[0], gz)
                                         : (resp_error(r, 405, "method", "use GET"), 1);
    if (path_match(q->path, "/api/cases/*/versions", id, NULL))
        return !strcmp(q->method, "GET") ? versions_route(q, r, id[0])
                                         : (resp_error(r, 405, "method", "use GET"), 1);
    if (path_match(q->path, "/api/cases/*/head", id, NULL))
        return !strcmp(q->method, "POST") ? head_route(q, r, id[0])
                                          : (resp_error(r, 405, "method", "use POST"), 1);
    if (path_match(q->path, "/api/cases/*/reconstruct", id, NULL))
        return !strcmp(q->method, "POST") ? reconstruct_route(q, r, id[0])
                                          : (resp_error(r, 405, "method", "use POST"), 1);
    if (path_match(q->path, "/api/cases/*/export", id, NULL))
        return !strcmp(q->method, "POST") ? export_route(q, r, id[0])
                                          : (resp_error(r, 405, "method", "use POST"), 1);
    if (path_match(q->path, "/api/cases/*/docs/$", id, s))
        return doc_route(q, r, id[0], s[0]);
    return 0;
}

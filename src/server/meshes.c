/* meshes.c - the meshes the workstation shows and serves.
 *
 * Each label of each version has one "display" mesh in the store (params
 * {"role":"display"}), plus the same bytes keyed by the smoothness that made
 * it ({"smooth":S}, for traceability; the blob store keeps one copy). The
 * display format is NiiVue's MZ3 (indexed float32 vertices + uint32 faces,
 * 16-byte header) in NIfTI's RAS millimetres, the frame NiiVue draws in, so
 * the browser loads it without conversion; GLB in DICOM's LPS frame is made
 * from it on request. Building a mesh = extract (marching cubes on the
 * label), label-aware smoothing, clean-up, outward orientation: the same steps
 * as `recon3d mesh`. */
#include "server_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MESH_MAX_TRIANGLES 60000
#define MCACHE_MAX_BYTES ((size_t)512 << 20)

/* ---- the mesh cache (see server_internal.h) ---------------------------------- */

static struct mesh_cached *mcache_find(r3d_server *s, r3d_id c, r3d_id v, int label,
                                       const char *params)
{
    for (int i = 0; i < s->mcache_n; i++) {
        struct mesh_cached *e = &s->mcache[i];
        if (e->case_id == c && e->version == v && e->label == label && !strcmp(e->params, params))
            return e;
    }
    return NULL;
}

int mcache_get(r3d_server *s, r3d_id case_id, r3d_id version, int label, const char *params,
               uint8_t **bytes, size_t *n)
{
    int hit = 0;
    pthread_mutex_lock(&s->mcache_mu);
    struct mesh_cached *e = mcache_find(s, case_id, version, label, params);
    if (e && (*bytes = malloc(e->n ? e->n : 1))) {
        memcpy(*bytes, e->bytes, e->n);
        *n = e->n;
        e->used = ++s->mcache_clock;
        hit = 1;
    }
    pthread_mutex_unlock(&s->mcache_mu);
    return hit;
}

static void mcache_remove_at(r3d_server *s, int i)
{
    s->mcache_bytes -= s->mcache[i].n;
    free(s->mcache[i].bytes);
    s->mcache[i] = s->mcache[--s->mcache_n];
}

void mcache_put(r3d_server *s, r3d_id case_id, r3d_id version, int label, const char *params,
                const uint8_t *bytes, size_t n)
{
    if (strlen(params) >= sizeof s->mcache[0].params || n > MCACHE_MAX_BYTES / 4)
        return;
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy)
        return;
    memcpy(copy, bytes, n);
    pthread_mutex_lock(&s->mcache_mu);
    struct mesh_cached *e = mcache_find(s, case_id, version, label, params);
    if (e)
        mcache_remove_at(s, (int)(e - s->mcache));
    while (s->mcache_n && s->mcache_bytes + n > MCACHE_MAX_BYTES) {
        int old = 0;
        for (int i = 1; i < s->mcache_n; i++)
            if (s->mcache[i].used < s->mcache[old].used)
                old = i;
        mcache_remove_at(s, old);
    }
    if (s->mcache_n == s->mcache_cap) {
        int cap = s->mcache_cap ? 2 * s->mcache_cap : 64;
        struct mesh_cached *nc = realloc(s->mcache, (size_t)cap * sizeof *nc);
        if (!nc) {
            pthread_mutex_unlock(&s->mcache_mu);
            free(copy);
            return;
        }
        s->mcache = nc;
        s->mcache_cap = cap;
    }
    e = &s->mcache[s->mcache_n++];
    memset(e, 0, sizeof *e);
    e->case_id = case_id;
    e->version = version;
    e->label = label;
    snprintf(e->params, sizeof e->params, "%s", params);
    e->bytes = copy;
    e->n = n;
    e->used = ++s->mcache_clock;
    s->mcache_bytes += n;
    pthread_mutex_unlock(&s->mcache_mu);
}

void mcache_drop_case(r3d_server *s, r3d_id case_id)
{
    pthread_mutex_lock(&s->mcache_mu);
    for (int i = s->mcache_n - 1; i >= 0; i--)
        if (s->mcache[i].case_id == case_id)
            mcache_remove_at(s, i);
    pthread_mutex_unlock(&s->mcache_mu);
}

void mcache_free(r3d_server *s)
{
    for (int i = 0; i < s->mcache_n; i++)
        free(s->mcache[i].bytes);
    free(s->mcache);
}

r3d_status mesh_display_get(r3d_server *s, const r3d_actor *a, r3d_id case_id, r3d_id version,
                            int label, uint8_t **bytes, size_t *n, r3d_error *err)
{
    if (mcache_get(s, case_id, version, label, MESH_DISPLAY_PARAMS, bytes, n))
        return R3D_OK;
    r3d_status st = r3d_mesh_get(s->store, a, case_id, version, label, "mz3", MESH_DISPLAY_PARAMS,
                                 bytes, n, err);
    if (st == R3D_OK)
        mcache_put(s, case_id, version, label, MESH_DISPLAY_PARAMS, *bytes, *n);
    return st;
}

r3d_mesh *mesh_build(const r3d_volume *labels, uint16_t label, double smooth, r3d_frame frame,
                     r3d_error *err)
{
    r3d_extract_opts eo = R3D_EXTRACT_OPTS_INIT;
    eo.frame = frame;
    r3d_mesh *m = r3d_mesh_from_label(labels, label, &eo, err);
    if (!m)
        return NULL;
    /* the label-aware smoothing: rounds the terraces of thick slices
     * without shrinking the object (src/mesh/surface.c) */
    if (r3d_mesh_smooth_label(m, labels, label, smooth, err) != R3D_OK ||
        r3d_mesh_remove_degenerate(m, err) != R3D_OK ||
        r3d_mesh_orient_outward(m, err) != R3D_OK) {
        r3d_mesh_free(m);
        return NULL;
    }
    /* Twenty structures must load in a browser in seconds, on integrated
     * graphics too: 60k triangles per object (quadric error, Garland &
     * Heckbert) keep an organ's shape to about a voxel and bound the
     * download and the page's mesh set-up; exports are full resolution. */
    if (m->nt > MESH_MAX_TRIANGLES) {
        r3d_decimate_opts d = R3D_DECIMATE_OPTS_INIT;
        d.max_triangles = MESH_MAX_TRIANGLES;
        if (r3d_mesh_decimate(m, &d, err) != R3D_OK) {
            r3d_mesh_free(m);
            return NULL;
        }
    }
    m->label = label;
    return m;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

r3d_status mesh_to_mz3(const r3d_mesh *m, uint8_t **bytes, size_t *n, r3d_error *err)
{
    if (m->nv > UINT32_MAX || m->nt > UINT32_MAX / 3)
        return r3d_fail(err, R3D_EARG, "mesh: too large for MZ3");
    size_t sz = 16 + (size_t)m->nt * 12 + (size_t)m->nv * 12;
    uint8_t *b = malloc(sz);
    if (!b)
        return r3d_fail(err, R3D_ENOMEM, "mesh: out of memory");
    b[0] = 0x4D, b[1] = 0x5A; /* 23117 little endian */
    b[2] = 3, b[3] = 0;       /* faces + vertices */
    put32(b + 4, (uint32_t)m->nt);
    put32(b + 8, (uint32_t)m->nv);
    put32(b + 12, 0);
    uint8_t *p = b + 16;
    for (int64_t i = 0; i < m->nt * 3; i++, p += 4)
        put32(p, m->t[i]);
    for (int64_t i = 0; i < m->nv * 3; i++, p += 4) {
        uint32_t u;
        memcpy(&u, &m->v[i], 4);
        put32(p, u);
    }
    *bytes = b;
    *n = sz;
    return R3D_OK;
}

r3d_mesh *mesh_from_mz3(const uint8_t *b, size_t n, r3d_error *err)
{
    if (n < 16 || b[0] != 0x4D || b[1] != 0x5A || b[2] != 3)
        return r3d_fail(err, R3D_EFORMAT, "mesh: not an MZ3 made here"), NULL;
    uint32_t nt = get32(b + 4), nv = get32(b + 8);
    if ((uint64_t)16 + (uint64_t)nt * 12 + (uint64_t)nv * 12 != n)
        return r3d_fail(err, R3D_EFORMAT, "mesh: MZ3 size does not match its counts"), NULL;
    r3d_mesh *m = r3d_mesh_new(err);
    if (!m || r3d_mesh_reserve(m, nv, nt, err) != R3D_OK) {
        r3d_mesh_free(m);
        return NULL;
    }
    const uint8_t *p = b + 16;
    for (uint64_t i = 0; i < (uint64_t)nt * 3; i++, p += 4) {
        m->t[i] = get32(p);
        if (m->t[i] >= nv) {
            r3d_mesh_free(m);
            return r3d_fail(err, R3D_EFORMAT, "mesh: MZ3 face index out of range"), NULL;
        }
    }
    for (uint64_t i = 0; i < (uint64_t)nv * 3; i++, p += 4) {
        uint32_t u = get32(p);
        memcpy(&m->v[i], &u, 4);
    }
    m->nt = nt;
    m->nv = nv;
    m->frame = R3D_FRAME_RAS;
    return m;
}

r3d_status mesh_store_label(r3d_server *s, const r3d_actor *a, r3d_id case_id, r3d_id version,
                            const r3d_labelmap *lm, uint16_t label, double smooth, r3d_error *err)
{
    r3d_mesh *m = mesh_build(lm->vol, label, smooth, R3D_FRAME_RAS, err);
    if (!m)
        return err->code;
    uint8_t *b = NULL;
    size_t n = 0;
    r3d_status st = mesh_to_mz3(m, &b, &n, err);
    r3d_mesh_free(m);
    if (st != R3D_OK)
        return st;
    char params[64];
    snprintf(params, sizeof params, "{\"smooth\":%g}", smooth);
    st = r3d_mesh_put(s->store, a, case_id, version, label, "mz3", params, b, n, err);
    if (st == R3D_OK)
        st = r3d_mesh_put(s->store, a, case_id, version, label, "mz3", MESH_DISPLAY_PARAMS, b, n,
                          err);
    if (st == R3D_OK) {
        mcache_put(s, case_id, version, label, params, b, n);
        mcache_put(s, case_id, version, label, MESH_DISPLAY_PARAMS, b, n);
    }
    free(b);
    return st;
}

void mesh_carry_over(r3d_server *s, const r3d_actor *a, r3d_id case_id, r3d_id from, r3d_id to,
                     const r3d_labelmap *m, uint16_t skip)
{
    for (int i = 0; i < m->table.n; i++) {
        uint16_t L = m->table.v[i].value;
        if (L == skip)
            continue;
        uint8_t *b = NULL;
        size_t n = 0;
        if (mesh_display_get(s, a, case_id, from, L, &b, &n, NULL) == R3D_OK &&
            r3d_mesh_put(s->store, a, case_id, to, L, "mz3", MESH_DISPLAY_PARAMS, b, n, NULL) ==
                R3D_OK)
            mcache_put(s, case_id, to, L, MESH_DISPLAY_PARAMS, b, n);
        free(b);
    }
}

/* The label table of a version as JSON (with voxel counts and volumes when
 * asked), from the cache or by loading the label map once. */
cJSON *labels_json_cached(r3d_server *s, const r3d_actor *a, r3d_id case_id, r3d_id version,
                          int with_counts, r3d_error *err)
{
    const char *key = with_counts ? "table+counts" : "table";
    uint8_t *b = NULL;
    size_t n = 0;
    if (mcache_get(s, case_id, version, -1, key, &b, &n)) {
        cJSON *j = cJSON_ParseWithLength((const char *)b, n);
        free(b);
        if (j)
            return j;
    }
    r3d_labelmap *m = NULL;
    if (r3d_labels_load(s->store, a, case_id, version, &m, err) != R3D_OK)
        return NULL;
    cJSON *j = label_table_json(m, with_counts);
    r3d_labelmap_free(m);
    char *txt = j ? cJSON_PrintUnformatted(j) : NULL;
    if (txt)
        mcache_put(s, case_id, version, -1, key, (const uint8_t *)txt, strlen(txt));
    free(txt);
    return j;
}

/* GET .../meshes: the head's labels and whether each has a display mesh. */
static void list_route(srv_req *q, srv_resp *r, r3d_id id)
{
    r3d_error err = R3D_ERROR_INIT;
    r3d_case_info ci;
    if (r3d_case_get(q->srv->store, &q->actor, id, &ci, &err) != R3D_OK) {
        resp_fail(r, &err);
        return;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "version", (double)ci.head_version);
    cJSON *a = cJSON_AddArrayToObject(j, "meshes");
    if (ci.head_version) {
        cJSON *tab = labels_json_cached(q->srv, &q->actor, id, ci.head_version, 0, &err);
        if (!tab) {
            cJSON_Delete(j);
            resp_fail(r, &err);
            return;
        }
        const cJSON *l;
        cJSON_ArrayForEach(l, tab)
        {
            int value = cJSON_GetObjectItem(l, "value")->valueint;
            uint8_t *b = NULL;
            size_t n = 0;
            if (mesh_display_get(q->srv, &q->actor, id, ci.head_version, value, &b, &n, NULL) !=
                R3D_OK)
                continue;
            free(b);
            cJSON *e = cJSON_Duplicate(l, 1);
            cJSON_DeleteItemFromObject(e, "value");
            cJSON_AddNumberToObject(e, "label", value);
            cJSON_AddNumberToObject(e, "bytes", (double)n);
            char url[96];
            snprintf(url, sizeof url, "/api/cases/%lld/meshes/%d.mz3?version=%lld", (long long)id,
                     value, (long long)ci.head_version);
            cJSON_AddStringToObject(e, "url", url);
            cJSON_AddItemToArray(a, e);
        }
        cJSON_Delete(tab);
    }
    resp_json(r, 200, j);
}

static void get_route(srv_req *q, srv_resp *r, r3d_id id, int64_t label, const char *fmt)
{
    r3d_error err = R3D_ERROR_INIT;
    const char *vs = req_arg(q, "version");
    const char *sm = req_arg(q, "smooth");
    r3d_id v = vs ? strtoll(vs, NULL, 10) : 0;
    if (!v) {
        r3d_case_info ci;
        if (r3d_case_get(q->srv->store, &q->actor, id, &ci, &err) != R3D_OK) {
            resp_fail(r, &err);
            return;
        }
        v = ci.head_version;
    }
    char params[64];
    if (sm)
        snprintf(params, sizeof params, "{\"smooth\":%g}", atof(sm));
    uint8_t *b = NULL;
    size_t n = 0;
    r3d_status got;
    if (!sm && mcache_get(q->srv, id, v, (int)label, MESH_DISPLAY_PARAMS, &b, &n)) {
        /* the store audits what it hands out; a cached copy is audited here */
        char obj[96];
        snprintf(obj, sizeof obj, "case %lld version %lld label %lld", (long long)id,
                 (long long)v, (long long)label);
        r3d_audit(q->srv->store, &q->actor, "mesh.view", obj, "ok", NULL);
        got = R3D_OK;
    } else if (!sm)
        got = mesh_display_get(q->srv, &q->actor, id, v, (int)label, &b, &n, &err);
    else
        got = r3d_mesh_get(q->srv->store, &q->actor, id, v, (int)label, "mz3", params, &b, &n,
                           &err);
    if (got != R3D_OK) {
        if (err.code == R3D_ENOTFOUND)
            resp_error(r, 404, "not_found",
                       "label %lld of version %lld has no mesh yet; reconstruct it first",
                       (long long)label, (long long)v);
        else
            resp_fail(r, &err);
        return;
    }
    if (!strcmp(fmt, "mz3")) {
        resp_bytes(r, 200, "application/octet-stream", b, n);
        return;
    }
    /* GLB: patient LPS millimetres, as every file we export */
    r3d_mesh *m = mesh_from_mz3(b, n, &err);
    free(b);
    if (!m) {
        resp_fail(r, &err);
        return;
    }
    r3d_mesh_set_frame(m, R3D_FRAME_LPS);
    m->label = (uint16_t)label;
    snprintf(m->name, sizeof m->name, "label_%lld", (long long)label);
    r3d_scene sc = {0};
    char path[4096];
    static unsigned long seq;
    snprintf(path, sizeof path, "%s/mesh-%lu.glb", q->srv->tmp_dir,
             __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
    r3d_status st = r3d_scene_add(&sc, m, &err);
    if (st != R3D_OK)
        r3d_mesh_free(m);
    if (st == R3D_OK)
        st = r3d_scene_write(&sc, path, R3D_MESH_GLB, &err);
    r3d_scene_clear(&sc);
    if (st == R3D_OK)
        st = r3d_file_read_all(path, &b, &n, &err);
    unlink(path);
    if (st != R3D_OK)
        resp_fail(r, &err);
    else
        resp_bytes(r, 200, "model/gltf-binary", b, n);
}

/* GET .../meshes.bin?version=V: every display mesh of a version in one
 * answer, [uint32 label][uint32 n][n bytes of MZ3] each, little endian; one
 * request and one audit entry instead of one per structure. */
static void bundle_route(srv_req *q, srv_resp *r, r3d_id id)
{
    r3d_error err = R3D_ERROR_INIT;
    const char *vs = req_arg(q, "version");
    r3d_id v = vs ? strtoll(vs, NULL, 10) : 0;
    r3d_case_info ci;
    if (r3d_case_get(q->srv->store, &q->actor, id, &ci, &err) != R3D_OK) {
        resp_fail(r, &err);
        return;
    }
    if (v <= 0)
        v = ci.head_version;
    if (v <= 0) {
        resp_error(r, 404, "not_found", "this case has no labels yet");
        return;
    }
    cJSON *tab = labels_json_cached(q->srv, &q->actor, id, v, 0, &err);
    if (!tab) {
        resp_fail(r, &err);
        return;
    }
    uint8_t *out = NULL;
    size_t on = 0, cap = 0;
    int count = 0;
    const cJSON *l;
    cJSON_ArrayForEach(l, tab)
    {
        int value = cJSON_GetObjectItem(l, "value")->valueint;
        uint8_t *b = NULL;
        size_t n = 0;
        if (mesh_display_get(q->srv, &q->actor, id, v, value, &b, &n, NULL) != R3D_OK)
            continue;
        if (on + n + 8 > cap) {
            size_t nc = (on + n + 8) * 2;
            uint8_t *nb = realloc(out, nc);
            if (!nb) {
                free(b);
                free(out);
                cJSON_Delete(tab);
                resp_error(r, 503, "busy", "out of memory");
                return;
            }
            out = nb, cap = nc;
        }
        put32(out + on, (uint32_t)value);
        put32(out + on + 4, (uint32_t)n);
        memcpy(out + on + 8, b, n);
        on += n + 8;
        count++;
        free(b);
    }
    cJSON_Delete(tab);
    char obj[96];
    snprintf(obj, sizeof obj, "case %lld version %lld: %d meshes", (long long)id, (long long)v,
             count);
    r3d_audit(q->srv->store, &q->actor, "mesh.view", obj, "ok", NULL);
    resp_bytes(r, 200, "application/octet-stream", out ? out : (uint8_t *)calloc(1, 1), on);
}

/* POST .../labels/{L}/mesh {"smooth":S}: regenerate (a job). */
static void regen_route(srv_req *q, srv_resp *r, r3d_id id, int64_t label)
{
    cJSON *j = q->body_n ? req_json(q, r) : cJSON_CreateObject();
    if (!j)
        return;
    const cJSON *sm = cJSON_GetObjectItemCaseSensitive(j, "smooth");
    if (sm && (!cJSON_IsNumber(sm) || !(sm->valuedouble >= 0 && sm->valuedouble <= 10))) {
        cJSON_Delete(j);
        resp_error(r, 400, "bad_request", "\"smooth\" is a number 0..10");
        return;
    }
    double smooth = sm ? sm->valuedouble : 5;
    cJSON_Delete(j);
    r3d_error err = R3D_ERROR_INIT;
    r3d_case_info ci;
    if (r3d_case_get(q->srv->store, &q->actor, id, &ci, &err) != R3D_OK) {
        resp_fail(r, &err);
        return;
    }
    if (!ci.head_version) {
        resp_error(r, 404, "not_found", "this case has no labels yet");
        return;
    }
    cJSON *p = job_params_new(&q->actor);
    cJSON_AddNumberToObject(p, "label", (double)label);
    cJSON_AddNumberToObject(p, "version", (double)ci.head_version);
    cJSON_AddNumberToObject(p, "smooth", smooth);
    jobs_submit_resp(q, r, id, "mesh", p);
}

int routes_meshes(srv_req *q, srv_resp *r)
{
    int64_t id[2];
    char s[1][64];
    if (path_match(q->path, "/api/cases/*/meshes", id, NULL)) {
        if (strcmp(q->method, "GET"))
            return resp_error(r, 405, "method", "use GET"), 1;
        if (require(q, r, R3D_ACT_CASE_VIEW))
            list_route(q, r, id[0]);
        return 1;
    }
    if (path_match(q->path, "/api/cases/*/meshes.bin", id, NULL)) {
        if (strcmp(q->method, "GET"))
            return resp_error(r, 405, "method", "use GET"), 1;
        if (require(q, r, R3D_ACT_CASE_VIEW))
            bundle_route(q, r, id[0]);
        return 1;
    }
    if (path_match(q->path, "/api/cases/*/meshes/$", id, s)) {
        char *dot = strchr(s[0], '.');
        char *end = NULL;
        long long L = dot ? strtoll(s[0], &end, 10) : -1;
        if (!dot || end != dot || L < 1 || L > 65535 || (strcmp(dot, ".mz3") && strcmp(dot, ".glb")))
            return resp_error(r, 404, "not_found", "meshes are /meshes/<label>.mz3 or .glb"), 1;
        if (strcmp(q->method, "GET"))
            return resp_error(r, 405, "method", "use GET"), 1;
        if (require(q, r, R3D_ACT_CASE_VIEW))
            get_route(q, r, id[0], L, dot + 1);
        return 1;
    }
    if (path_match(q->path, "/api/cases/*/labels/*/mesh", id, NULL)) {
        if (strcmp(q->method, "POST"))
            return resp_error(r, 405, "method", "use POST"), 1;
        if (id[1] < 1 || id[1] > 65535)
            return resp_error(r, 400, "bad_request", "label values are 1..65535"), 1;
        if (require(q, r, R3D_ACT_RECONSTRUCT))
            regen_route(q, r, id[0], id[1]);
        return 1;
    }
    return 0;
}

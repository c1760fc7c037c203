/* server_internal.h - what the parts of the server share: the server object,
 * one request and its response as the route handlers see them, JSON and
 * error helpers, the grid mapping between the store's voxel order and the
 * RAS-ordered grid the browser works in, and the job kinds. */
#ifndef R3D_SERVER_INTERNAL_H
#define R3D_SERVER_INTERNAL_H

#include "r3d/r3d.h"
#include "r3d/seg.h"
#include "r3d/server.h"
#include "r3d/store.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct MHD_Connection;
struct MHD_Daemon;

struct r3d_server {
    struct MHD_Daemon *daemon;
    r3d_store *store;
    r3d_server_opts opts;
    char *web_dir, *import_root, *tmp_dir;
    int tls;
    int port;
    unsigned char secret[32]; /* keys the CSRF tokens; fresh per start */
    /* job workers */
    pthread_t *workers;
    int n_workers;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    int stopping;
    /* label-map edits of one case are serialised so two edits cannot both
     * start from the same head (the second would silently drop the first) */
    pthread_mutex_t edit_mu;
    /* the last few NIfTI answers (image of a case, label map of a version):
     * opening a case twice, or several tabs, re-encode nothing */
    pthread_mutex_t cache_mu;
    struct nifti_cached {
        char kind;
        int gz;
        r3d_id case_id, version;
        uint8_t *bytes;
        size_t n;
        uint64_t used;
    } cache[3];
    uint64_t cache_clock;
    /* meshes and label tables by (case, version, label, params): versions
     * never change, so these are always right; display meshes are replaced
     * only through mesh_store_label, which updates the cache too. The store
     * audits every mesh it hands out (one fsync each); the bundle route
     * serves a version's meshes from here with one audit entry. */
    pthread_mutex_t mcache_mu;
    struct mesh_cached *mcache;
    int mcache_n, mcache_cap;
    size_t mcache_bytes;
    uint64_t mcache_clock;
};

struct mesh_cached {
    r3d_id case_id, version;
    int label; /* -1: a label table (JSON) rather than a mesh */
    char params[48];
    uint8_t *bytes;
    size_t n;
    uint64_t used;
};

/* One request as a route sees it. */
typedef struct srv_req {
    r3d_server *srv;
    struct MHD_Connection *conn;
    const char *method;
    const char *path;       /* without the query */
    const uint8_t *body;
    size_t body_n;
    r3d_actor actor;        /* valid when authed */
    int authed;
    char token[65];
    char origin[64];
} srv_req;

typedef struct srv_resp {
    int status;
    const char *ctype;
    uint8_t *data; /* owned (malloc) */
    size_t n;
    char cookie[256];      /* Set-Cookie value, "" = none */
    char disposition[128]; /* Content-Disposition, "" = none */
    int no_store;          /* Cache-Control: no-store */
    char *file_path;       /* static file to send instead of data (owned) */
} srv_resp;

/* ---- responses (http.c) ---- */
void resp_json(srv_resp *r, int status, cJSON *j); /* takes j */
void resp_error(srv_resp *r, int status, const char *code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* Status code and a human sentence for a library failure. */
void resp_fail(srv_resp *r, const r3d_error *err);
void resp_bytes(srv_resp *r, int status, const char *ctype, uint8_t *data, size_t n);

const char *req_arg(const srv_req *q, const char *name); /* query argument or NULL */
const char *req_header(const srv_req *q, const char *name);
cJSON *req_json(const srv_req *q, srv_resp *r); /* NULL (and a 400 in r) if not JSON */

/* ---- sessions (session.c) ---- */
void session_csrf(const r3d_server *s, const char *token, char out[65]);
int session_load(srv_req *q);                     /* 1 if the cookie names a live session */
int session_csrf_ok(const srv_req *q);
/* Answers 403 (and returns 1) when the request lacks the CSRF token. */
int session_csrf_refuse(const srv_req *q, srv_resp *r);
/* Sends 401/403 and returns 0 unless the request is authed and permitted. */
int require(srv_req *q, srv_resp *r, r3d_action act);

/* ---- routes ---- */
void routes_dispatch(srv_req *q, srv_resp *r);
int routes_auth(srv_req *q, srv_resp *r);     /* 1 if it handled the path */
int routes_cases(srv_req *q, srv_resp *r);
int routes_labels(srv_req *q, srv_resp *r);
int routes_meshes(srv_req *q, srv_resp *r);
int routes_jobs(srv_req *q, srv_resp *r);
void static_serve(srv_req *q, srv_resp *r);

/* Path matching: "/api/cases/12/labels/5/mask" against a pattern with '*'
 * for an integer segment and '$' for any segment; ints/strs filled in order. */
int path_match(const char *path, const char *pattern, int64_t *ints, char strs[][64]);

/* ---- grid mapping (grid.c) ----
 * The browser sees every volume reoriented to the closest RAS voxel order
 * (what NiiVue does internally), so the painting it sends back indexes
 * that grid. view index (x, y, z) -> store index off + x*step[0] + ... */
typedef struct grid_map {
    int64_t dim[3];  /* view dims */
    int64_t off;
    int64_t step[3];
} grid_map;
r3d_status grid_map_make(const r3d_volume *native, grid_map *g, r3d_error *err);
/* The canonical copy of a volume and its map. */
r3d_volume *grid_canonical(const r3d_volume *native, r3d_error *err);

/* Encode a volume as .nii or .nii.gz bytes (through a private temporary
 * file). On localhost plain .nii loads faster than the browser inflates. */
r3d_status volume_to_nifti_bytes(r3d_server *s, const r3d_volume *v, int gz, uint8_t **bytes,
                                 size_t *n, r3d_error *err);

/* A copy of a cached answer (1) or 0; put takes a copy too. */
int nifti_cache_get(r3d_server *s, char kind, r3d_id case_id, r3d_id version, int gz,
                    uint8_t **bytes, size_t *n);
void nifti_cache_put(r3d_server *s, char kind, r3d_id case_id, r3d_id version, int gz,
                     const uint8_t *bytes, size_t n);
void nifti_cache_drop(r3d_server *s, r3d_id case_id); /* a deleted case */
void nifti_cache_free(r3d_server *s);

/* ---- label tables as JSON, meshes (labels.c, meshes.c) ---- */
cJSON *label_table_json(const r3d_labelmap *m, int with_counts);
void label_defaults(uint16_t value, r3d_label *out);
/* Mesh of one label, smoothed, cleaned, in the given frame. */
r3d_mesh *mesh_build(const r3d_volume *labels, uint16_t label, double smooth, r3d_frame frame,
                     r3d_error *err);
/* NiiVue's MZ3 (faces + vertices, gzip'ed) and back. */
r3d_status mesh_to_mz3(const r3d_mesh *m, uint8_t **bytes, size_t *n, r3d_error *err);
r3d_mesh *mesh_from_mz3(const uint8_t *bytes, size_t n, r3d_error *err);
/* Build and store the display mesh (and its smooth-keyed copy) of a label. */
r3d_status mesh_store_label(r3d_server *s, const r3d_actor *a, r3d_id case_id, r3d_id version,
                            const r3d_labelmap *m, uint16_t label, double smooth,
                            r3d_error *err);
/* After a new version: carry the display meshes of labels the edit did not
 * touch over from the previous version (same bytes, same blobs). */
void mesh_carry_over(r3d_server *s, const r3d_actor *a, r3d_id case_id, r3d_id from,
                     r3d_id to, const r3d_labelmap *m, uint16_t skip);
#define MESH_DISPLAY_PARAMS "{\"role\":\"display\"}"
int mcache_get(r3d_server *s, r3d_id case_id, r3d_id version, int label, const char *params,
               uint8_t **bytes, size_t *n); /* 1 = a malloc'ed copy in *bytes */
void mcache_put(r3d_server *s, r3d_id case_id, r3d_id version, int label, const char *params,
                const uint8_t *bytes, size_t n);
void mcache_drop_case(r3d_server *s, r3d_id case_id);
void mcache_free(r3d_server *s);
cJSON *labels_json_cached(r3d_server *s, const r3d_actor *a, r3d_id case_id, r3d_id version,
                          int with_counts, r3d_error *err);
/* A display mesh from the cache or the store (then cached). */
r3d_status mesh_display_get(r3d_server *s, const r3d_actor *a, r3d_id case_id, r3d_id version,
                            int label, uint8_t **bytes, size_t *n, r3d_error *err);

/* ---- jobs (jobs.c) ---- */
r3d_status jobs_start(r3d_server *s, r3d_error *err);
void jobs_stop(r3d_server *s);
void jobs_kick(r3d_server *s);
/* Job params carry the submitting user so the worker acts as them. */
cJSON *job_params_new(const r3d_actor *a);
/* Queues a job of `kind` on the case with params p (from job_params_new;
 * taken) and wakes the workers: the job's id, or 0 and err. */
r3d_id jobs_submit(srv_req *q, r3d_id case_id, const char *kind, cJSON *p, r3d_error *err);
/* The same, answering 202 {"job": id}, or the store's error. */
void jobs_submit_resp(srv_req *q, srv_resp *r, r3d_id case_id, const char *kind, cJSON *p);
cJSON *job_json(const r3d_job *j);

/* ---- small helpers ---- */
int64_t count_label(const r3d_volume *labels, uint16_t value);
char *dup_printf(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

#endif

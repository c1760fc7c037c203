/* jobs.c - the job queue's workers: automatic reconstruction ("segment"),
 * mesh regeneration ("mesh") and threshold segmentation ("threshold").
 *
 * The queue lives in the store (r3d_job_submit / claim / progress / finish),
 * so a job survives a restart of the server and its state can be polled by
 * any request thread (GET /api/jobs/{id}). Workers sleep on a condition
 * variable that submissions signal, with a one-second timeout as a safety net.
 * A job acts as the user who submitted it: params carry that user ("_by"),
 * so the store's permission checks and audit trail name the right person.
 * A failure ends the job with the library's message, which is a sentence. */
#include "server_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

cJSON *job_params_new(const r3d_actor *a)
{
    cJSON *p = cJSON_CreateObject();
    cJSON *by = cJSON_AddObjectToObject(p, "_by");
    cJSON_AddNumberToObject(by, "id", (double)a->user_id);
    cJSON_AddStringToObject(by, "user", a->user);
    cJSON_AddNumberToObject(by, "role", a->role);
    return p;
}

static const char *state_name(r3d_job_state s)
{
    switch (s) {
    case R3D_JOB_QUEUED: return "queued";
    case R3D_JOB_RUNNING: return "running";
    case R3D_JOB_DONE: return "done";
    default: return "failed";
    }
}

cJSON *job_json(const r3d_job *j)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)j->id);
    cJSON_AddNumberToObject(o, "case", (double)j->case_id);
    cJSON_AddStringToObject(o, "kind", j->kind);
    cJSON_AddStringToObject(o, "state", state_name(j->state));
    cJSON_AddNumberToObject(o, "progress", j->progress);
    cJSON_AddStringToObject(o, "stage", j->stage);
    if (j->state == R3D_JOB_FAILED)
        cJSON_AddStringToObject(o, "message", j->message);
    cJSON *res = j->result_json ? cJSON_Parse(j->result_json) : NULL;
    if (res)
        cJSON_AddItemToObject(o, "result", res);
    return o;
}

/* ---- progress ------------------------------------------------------------- */

typedef struct prog {
    r3d_server *s;
    r3d_id job;
    double lo, hi; /* this step's share of the whole job */
    double last;
    double shown;  /* progress never goes back: the segmentation restarts its
                      count at each stage */
} prog;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void prog_set(prog *p, double f, const char *stage)
{
    double t = now_s(), x = p->lo + (p->hi - p->lo) * f;
    if ((t - p->last < 0.25 && f < 1) || x < p->shown)
        return;
    p->last = t;
    p->shown = x;
    r3d_job_progress(p->s->store, p->job, x, stage, NULL);
}

static void prog_cb(void *ctx, const char *stage, int64_t done, int64_t total)
{
    prog_set(ctx, total > 0 ? (double)done / (double)total : 0, stage);
}

/* ---- the kinds --------------------------------------------------------------- */

static double num(const cJSON *p, const char *k, double def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, k);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static r3d_status meshes_for_all(r3d_server *s, const r3d_actor *a, r3d_id case_id, r3d_id v,
                                 const r3d_labelmap *m, double smooth, prog *pr, r3d_error *err)
{
    for (int i = 0; i < m->table.n; i++) {
        uint16_t L = m->table.v[i].value;
        prog_set(pr, (double)i / (m->table.n ? m->table.n : 1), "mesh");
        if (!count_label(m->vol, L))
            continue;
        if (mesh_store_label(s, a, case_id, v, m, L, smooth, err) != R3D_OK)
            return err->code;
    }
    return R3D_OK;
}

static r3d_status run_segment(r3d_server *s, const r3d_actor *a, const r3d_job *j,
                              const cJSON *p, cJSON *res, r3d_error *err)
{
    prog pr = {s, j->id, 0, 0.05, 0, 0};
    prog_set(&pr, 0, "load");
    r3d_volume *img = NULL;
    if (r3d_case_image(s->store, a, j->case_id, &img, err) != R3D_OK)
        return err->code;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(p, "structures");
    r3d_seg_opts so = {0};
    so.structures = cJSON_IsString(st) && strcmp(st->valuestring, "all") ? st->valuestring : NULL;
    so.progress = prog_cb;
    pr.lo = 0.05, pr.hi = 0.75;
    so.progress_ctx = &pr;
    r3d_seg_result sr = {0};
    r3d_status rc = r3d_segment_ct(img, &so, &sr, err);
    r3d_volume_free(img);
    if (rc != R3D_OK)
        return rc;
    r3d_provenance pv = {"segment", cJSON_IsString(st) ? "{\"structures\":\"given\"}" : "{}"};
    char params[256];
    snprintf(params, sizeof params, "{\"structures\":\"%.200s\"}",
             so.structures ? so.structures : "all");
    pv.params_json = params;
    r3d_id v = 0;
    pthread_mutex_lock(&s->edit_mu);
    rc = r3d_labels_commit(s->store, a, j->case_id, sr.labels, "automatic reconstruction", &pv, &v,
                           err);
    pthread_mutex_unlock(&s->edit_mu);
    if (rc == R3D_OK) {
        pr.lo = 0.75, pr.hi = 1.0;
        rc = meshes_for_all(s, a, j->case_id, v, sr.labels, num(p, "smooth", 5), &pr, err);
    }
    if (rc == R3D_OK) {
        cJSON_AddNumberToObject(res, "version", (double)v);
        cJSON_AddNumberToObject(res, "labels", sr.labels->table.n);
        if (sr.report_json) {
            cJSON *rep = cJSON_Parse(sr.report_json);
            if (rep)
                cJSON_AddItemToObject(res, "report", rep);
        }
    }
    r3d_seg_result_free(&sr);
    return rc;
}

static r3d_status run_mesh(r3d_server *s, const r3d_actor *a, const r3d_job *j, const cJSON *p,
                           cJSON *res, r3d_error *err)
{
    prog pr = {s, j->id, 0, 1, 0, 0};
    prog_set(&pr, 0, "load");
    r3d_id v = (r3d_id)num(p, "version", 0);
    int L = (int)num(p, "label", 0);
    double smooth = num(p, "smooth", 5);
    r3d_labelmap *m = NULL;
    if (r3d_labels_load(s->store, a, j->case_id, v, &m, err) != R3D_OK)
        return err->code;
    r3d_status rc = R3D_OK;
    if (L < 1 || L > 65535 || !count_label(m->vol, (uint16_t)L))
        rc = r3d_fail(err, R3D_ENOTFOUND, "label %d has no voxels in version %lld", L,
                      (long long)v);
    else {
        prog_set(&pr, 0.1, "mesh");
        rc = mesh_store_label(s, a, j->case_id, v, m, (uint16_t)L, smooth, err);
    }
    if (rc == R3D_OK) {
        cJSON_AddNumberToObject(res, "version", (double)v);
        cJSON_AddNumberToObject(res, "label", L);
        cJSON_AddNumberToObject(res, "smooth", smooth);
    }
    r3d_labelmap_free(m);
    return rc;
}

static r3d_status run_threshold(r3d_server *s, const r3d_actor *a, const r3d_job *j,
                                const cJSON *p, cJSON *res, r3d_error *err)
{
    prog pr = {s, j->id, 0, 1, 0, 0};
    prog_set(&pr, 0, "load");
    double lo = num(p, "lo", 0), hi = num(p, "hi", 0), smooth = num(p, "smooth", 5);
    r3d_volume *img = NULL, *mask = NULL;
    r3d_labelmap *m = NULL;
    r3d_case_info ci;
    r3d_status rc = R3D_OK;
    pthread_mutex_lock(&s->edit_mu);
    if (r3d_case_image(s->store, a, j->case_id, &img, err) != R3D_OK ||
        r3d_case_get(s->store, a, j->case_id, &ci, err) != R3D_OK) {
        rc = err->code;
        goto done;
    }
    prog_set(&pr, 0.2, "threshold");
    if (!(mask = r3d_image_threshold(img, lo, hi, err))) {
        rc = err->code;
        goto done;
    }
    if (ci.head_version) {
        if (r3d_labels_load(s->store, a, j->case_id, 0, &m, err) != R3D_OK) {
            rc = err->code;
            goto done;
        }
    } else if (!(m = r3d_labelmap_new(img, err))) {
        rc = err->code;
        goto done;
    } else {
        memcpy(m->vol->ijk_to_lps, img->ijk_to_lps, sizeof img->ijk_to_lps);
        r3d_volume_update_spacing(m->vol);
    }
    int L = (int)num(p, "label", 0);
    if (L == 0) { /* the first value no label uses, above the registry's range */
        L = 2001;
        while (L < 65535 && r3d_label_table_find(&m->table, (uint16_t)L))
            L++;
    }
    uint16_t *lab = m->vol->voxels;
    const uint8_t *mk = mask->voxels;
    int64_t n = r3d_volume_nvox(m->vol), set = 0;
    for (int64_t i = 0; i < n; i++)
        if (mk[i] && lab[i] == 0)
            lab[i] = (uint16_t)L, set++;
    if (!set) {
        rc = r3d_fail(err, R3D_ENOTFOUND,
                      "no unlabelled voxel lies between %g and %g; widen the range", lo, hi);
        goto done;
    }
    if (!r3d_label_table_find(&m->table, (uint16_t)L)) {
        r3d_label l;
        label_defaults((uint16_t)L, &l);
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(p, "name");
        if (cJSON_IsString(nm) && nm->valuestring[0]) {
            snprintf(l.name, sizeof l.name, "%s", nm->valuestring);
            snprintf(l.name_zh, sizeof l.name_zh, "%s", nm->valuestring);
        } else {
            snprintf(l.name, sizeof l.name, "threshold_%g_%g", lo, hi);
            snprintf(l.name_zh, sizeof l.name_zh, "阈值%g~%g", lo, hi);
        }
        if (r3d_label_table_add(&m->table, &l, err) != R3D_OK) {
            rc = err->code;
            goto done;
        }
    }
    char params[128], note[96];
    snprintf(params, sizeof params, "{\"lo\":%g,\"hi\":%g,\"label\":%d}", lo, hi, L);
    snprintf(note, sizeof note, "threshold %g..%g into label %d (%lld voxels)", lo, hi, L,
             (long long)set);
    r3d_provenance pv = {"threshold", params};
    r3d_id v = 0;
    prog_set(&pr, 0.4, "save");
    if (r3d_labels_commit(s->store, a, j->case_id, m, note, &pv, &v, err) != R3D_OK) {
        rc = err->code;
        goto done;
    }
    if (ci.head_version)
        mesh_carry_over(s, a, j->case_id, ci.head_version, v, m, (uint16_t)L);
    pthread_mutex_unlock(&s->edit_mu);
    prog_set(&pr, 0.5, "mesh");
    rc = mesh_store_label(s, a, j->case_id, v, m, (uint16_t)L, smooth, err);
    if (rc == R3D_OK) {
        cJSON_AddNumberToObject(res, "version", (double)v);
        cJSON_AddNumberToObject(res, "label", L);
        cJSON_AddNumberToObject(res, "voxels", (double)set);
    }
    r3d_volume_free(img);
    r3d_volume_free(mask);
    r3d_labelmap_free(m);
    return rc;
done:
    pthread_mutex_unlock(&s->edit_mu);
    r3d_volume_free(img);
    r3d_volume_free(mask);
    r3d_labelmap_free(m);
    return rc;
}

static void run_job(r3d_server *s, r3d_job *j)
{
    r3d_error err = R3D_ERROR_INIT;
    cJSON *p = j->params_json ? cJSON_Parse(j->params_json) : NULL;
    const cJSON *by = cJSON_GetObjectItemCaseSensitive(p, "_by");
    r3d_actor a;
    memset(&a, 0, sizeof a);
    a.user_id = (r3d_id)num(by, "id", 0);
    a.role = (r3d_role)(int)num(by, "role", 0);
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(by, "user");
    snprintf(a.user, sizeof a.user, "%s", cJSON_IsString(u) ? u->valuestring : "");
    snprintf(a.origin, sizeof a.origin, "job %lld", (long long)j->id);
    cJSON *res = cJSON_CreateObject();
    r3d_status rc;
    if (!p || !a.user[0])
        rc = r3d_fail(&err, R3D_EARG, "job %lld: its parameters are unreadable",
                      (long long)j->id);
    else if (!strcmp(j->kind, "segment"))
        rc = run_segment(s, &a, j, p, res, &err);
    else if (!strcmp(j->kind, "mesh"))
        rc = run_mesh(s, &a, j, p, res, &err);
    else if (!strcmp(j->kind, "threshold"))
        rc = run_threshold(s, &a, j, p, res, &err);
    else
        rc = r3d_fail(&err, R3D_EUNSUPPORTED, "job kind \"%s\" is not known to this server",
                      j->kind);
    char *rs = rc == R3D_OK ? cJSON_PrintUnformatted(res) : NULL;
    r3d_job_finish(s->store, j->id, rc == R3D_OK ? NULL : &err, rs, NULL);
    free(rs);
    cJSON_Delete(res);
    cJSON_Delete(p);
}

static void *worker(void *arg)
{
    r3d_server *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int stop = s->stopping;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            break;
        r3d_job j;
        memset(&j, 0, sizeof j);
        if (r3d_job_claim(s->store, &j, NULL) == R3D_OK) {
            run_job(s, &j);
            r3d_job_clear(&j);
            continue;
        }
        pthread_mutex_lock(&s->mu);
        if (!s->stopping) {
            struct timespec t;
            clock_gettime(CLOCK_REALTIME, &t);
            t.tv_sec += 1;
            pthread_cond_timedwait(&s->wake, &s->mu, &t);
        }
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

r3d_status jobs_start(r3d_server *s, r3d_error *err)
{
    int n = s->opts.workers > 0 ? s->opts.workers : 1;
    s->workers = calloc((size_t)n, sizeof *s->workers);
    if (!s->workers)
        return r3d_fail(err, R3D_ENOMEM, "server: out of memory");
    for (int i = 0; i < n; i++) {
        if (pthread_create(&s->workers[i], NULL, worker, s) != 0) {
            jobs_stop(s);
            return r3d_fail(err, R3D_EIO, "server: cannot start a job worker");
        }
        s->n_workers++;
    }
    return R3D_OK;
}

void jobs_kick(r3d_server *s)
{
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->mu);
}

r3d_id jobs_submit(srv_req *q, r3d_id case_id, const char *kind, cJSON *p, r3d_error *err)
{
    char *ps = cJSON_PrintUnformatted(p);
    cJSON_Delete(p);
    r3d_id job = 0;
    if (!ps)
        r3d_fail(err, R3D_ENOMEM, "%s job: out of memory", kind);
    else if (r3d_job_submit(q->srv->store, &q->actor, case_id, kind, ps, &job, err) == R3D_OK)
        jobs_kick(q->srv);
    free(ps);
    return job;
}

void jobs_submit_resp(srv_req *q, srv_resp *r, r3d_id case_id, const char *kind, cJSON *p)
{
    r3d_error err = R3D_ERROR_INIT;
    r3d_id job = jobs_submit(q, case_id, kind, p, &err);
    if (!job) {
        resp_fail(r, &err);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "job", (double)job);
    resp_json(r, 202, o);
}

void jobs_stop(r3d_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->n_workers; i++)
        pthread_join(s->workers[i], NULL);
    free(s->workers);
    s->workers = NULL;
    s->n_workers = 0;
}

int routes_jobs(srv_req *q, srv_resp *r)
{
    int64_t id[1];
    if (!path_match(q->path, "/api/jobs/*", id, NULL))
        return 0;
    if (strcmp(q->method, "GET"))
        return resp_error(r, 405, "method", "use GET"), 1;
    if (!require(q, r, R3D_ACT_CASE_VIEW))
        return 1;
    r3d_error err = R3D_ERROR_INIT;
    r3d_job j;
    memset(&j, 0, sizeof j);
    if (r3d_job_get(q->srv->store, &q->actor, id[0], &j, &err) != R3D_OK)
        resp_fail(r, &err);
    else
        resp_json(r, 200, job_json(&j));
    r3d_job_clear(&j);
    return 1;
}

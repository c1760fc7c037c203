/* jobs.c - the job queue in the store: submitted by users, claimed by
 * workers (server threads or other processes), finished or failed.
 *
 * States: 0 queued, 1 running, 2 done, 3 failed (r3d_job_state). A claim
 * records its owner ("host:pid:starttime"); r3d_store_open re-queues jobs
 * whose owner died (a crash or power cut) up to three attempts and then
 * fails them with a sentence saying so (db.c), so no job stays "running"
 * forever and none runs twice at once. */
#include "store/store_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOB_JSON_MAX (1024 * 1024)

void r3d_job_clear(r3d_job *j)
{
    if (!j)
        return;
    free(j->params_json);
    free(j->result_json);
    memset(j, 0, sizeof *j);
}

static void fill_job(sqlite3_stmt *q, r3d_job *j)
{
    memset(j, 0, sizeof *j);
    j->id = sqlite3_column_int64(q, 0);
    j->case_id = sqlite3_column_int64(q, 1);
    st_col_copy(q, 2, j->kind, sizeof j->kind);
    j->params_json = st_col_dup(q, 3);
    j->state = (r3d_job_state)sqlite3_column_int(q, 4);
    j->progress = sqlite3_column_double(q, 5);
    st_col_copy(q, 6, j->stage, sizeof j->stage);
    st_col_copy(q, 7, j->message, sizeof j->message);
    j->result_json = sqlite3_column_type(q, 8) == SQLITE_NULL ? NULL : st_col_dup(q, 8);
}

#define JOB_COLS "id, case_id, kind, params_json, state, progress, stage, message, result_json"

r3d_status r3d_job_submit(r3d_store *s, const r3d_actor *a, r3d_id case_id, const char *kind,
                          const char *params_json, r3d_id *job, r3d_error *err)
{
    if (job)
        *job = 0;
    if (!s)
        return r3d_fail(err, R3D_EARG, "job: no store");
    if (!st_name_ok(kind) || strlen(kind) > 31)
        return r3d_fail(err, R3D_EARG, "job: kind must be a short name like \"segment\"");
    const char *params = params_json ? params_json : "{}";
    r3d_status st = st_json_ok(params, JOB_JSON_MAX, 1, "job parameters", err);
    if (st)
        return st;
    r3d_action act = strncmp(kind, "export", 6) == 0 ? R3D_ACT_EXPORT : R3D_ACT_RECONSTRUCT;
    ST_LOCK(s);
    st = st_permit(s, a, act, err);
    if (!st && case_id)
        st = st_case_exists(s, case_id, err);
    sqlite3_stmt *q = NULL;
    r3d_id id = 0;
    if (!st && !(st = st_begin(s, err))) {
        if (!(st = st_prepare(s, "INSERT INTO jobs(case_id, kind, params_json, state, "
                                 "submitted_by, created) VALUES(?,?,?,0,?,"
                                 "strftime('%Y-%m-%dT%H:%M:%fZ','now'))", &q, err))) {
            if (case_id)
                sqlite3_bind_int64(q, 1, case_id);
            else
                sqlite3_bind_null(q, 1);
            sqlite3_bind_text(q, 2, kind, -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 3, params, -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 4, a->user, -1, SQLITE_TRANSIENT);
            st = st_step(s, q, "cannot queue the job", err);
            id = st_last_id(s);
        }
        if (!st) {
            char obj[96];
            snprintf(obj, sizeof obj, "job %lld case %lld", (long long)id, (long long)case_id);
            st = st_audit(s, a, "job.submit", obj, kind, err);
        }
        st = st_end(s, st, err);
    }
    ST_UNLOCK(s);
    if (!st && job)
        *job = id;
    return st;
}

r3d_status r3d_job_claim(r3d_store *s, r3d_job *out, r3d_error *err)
{
    if (!s || !out)
        return r3d_fail(err, R3D_EARG, "job: no store or no output");
    memset(out, 0, sizeof *out);
    char owner[256];
    st_job_owner(s, owner, sizeof owner);
    ST_LOCK(s);
    r3d_status st = st_begin(s, err);
    sqlite3_stmt *q = NULL;
    r3d_id id = 0;
    if (!st) {
        id = st_query_int(s, "SELECT id FROM jobs WHERE state = 0 ORDER BY id LIMIT 1", 0, 0);
        if (!id)
            st = r3d_fail(err, R3D_ENOTFOUND, "job: none queued");
    }
    if (!st && !(st = st_prepare(s, "UPDATE jobs SET state = 1, owner = ?, attempts = attempts + "
                                    "1, started = strftime('%Y-%m-%dT%H:%M:%fZ','now'), "
                                    "progress = 0 WHERE id = ?", &q, err))) {
        sqlite3_bind_text(q, 1, owner, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, id);
        st = st_step(s, q, "cannot claim the job", err);
    }
    if (!st && !(st = st_prepare(s, "SELECT " JOB_COLS " FROM jobs WHERE id = ?", &q, err))) {
        sqlite3_bind_int64(q, 1, id);
        if (sqlite3_step(q) == SQLITE_ROW)
            fill_job(q, out);
        sqlite3_finalize(q);
    }
    st = st_end(s, st, err);
    ST_UNLOCK(s);
    if (st)
        r3d_job_clear(out);
    return st;
}

r3d_status r3d_job_progress(r3d_store *s, r3d_id job, double fraction, const char *stage,
                            r3d_error *err)
{
    if (!s)
        return r3d_fail(err, R3D_EARG, "job: no store");
    if (!(fraction >= 0))
        fraction = 0;
    if (fraction > 1)
        fraction = 1;
    char st_[64];
    size_t j = 0;
    for (const char *p = stage ? stage : ""; *p && j + 1 < sizeof st_; p++)
        st_[j++] = (unsigned char)*p < 0x20 ? ' ' : *p;
    st_[j] = 0;
    ST_LOCK(s);
    sqlite3_stmt *q = NULL;
    r3d_status st = st_prepare(s, "UPDATE jobs SET progress = ?, stage = ? WHERE id = ? AND "
                                  "state = 1", &q, err);
    if (!st) {
        sqlite3_bind_double(q, 1, fraction);
        sqlite3_bind_text(q, 2, st_, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 3, job);
        if (!(st = st_step(s, q, "cannot record progress", err)) && sqlite3_changes(s->db) == 0)
            st = r3d_fail(err, R3D_ECONFLICT, "job %lld: not running", (long long)job);
    }
    ST_UNLOCK(s);
    return st;
}

r3d_status r3d_job_finish(r3d_store *s, r3d_id job, const r3d_error *failure,
                          const char *result_json, r3d_error *err)
{
    if (!s)
        return r3d_fail(err, R3D_EARG, "job: no store");
    if (result_json) {
        r3d_status st = st_json_ok(result_json, JOB_JSON_MAX, 0, "job result", err);
        if (st)
            return st;
    }
    char msg[256] = "";
    if (failure) {
        size_t j = 0;
        for (const char *p = failure->msg; *p && j + 1 < sizeof msg; p++)
            msg[j++] = (unsigned char)*p < 0x20 ? ' ' : *p;
        msg[j] = 0;
        if (!msg[0])
            snprintf(msg, sizeof msg, "%s", r3d_status_text(failure->code));
    }
    ST_LOCK(s);
    r3d_status st = st_begin(s, err);
    sqlite3_stmt *q = NULL;
    if (!st && !(st = st_prepare(s, "UPDATE jobs SET state = ?, message = ?, result_json = ?, "
                                    "progress = CASE WHEN ? = 2 THEN 1 ELSE progress END, "
                                    "finished = strftime('%Y-%m-%dT%H:%M:%fZ','now'), owner = "
                                    "NULL WHERE id = ? AND state = 1", &q, err))) {
        int state = failure ? R3D_JOB_FAILED : R3D_JOB_DONE;
        sqlite3_bind_int(q, 1, state);
        sqlite3_bind_text(q, 2, msg, -1, SQLITE_STATIC);
        if (result_json)
            sqlite3_bind_text(q, 3, result_json, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(q, 3);
        sqlite3_bind_int(q, 4, state);
        sqlite3_bind_int64(q, 5, job);
        if (!(st = st_step(s, q, "cannot finish the job", err)) && sqlite3_changes(s->db) == 0)
            st = r3d_fail(err, R3D_ECONFLICT, "job %lld: not running", (long long)job);
    }
    if (!st) {
        char obj[64];
        snprintf(obj, sizeof obj, "job %lld", (long long)job);
        r3d_actor worker = {0, "worker", R3D_ROLE_NONE, ""};
        st_job_owner(s, worker.origin, sizeof worker.origin);
        st = st_audit(s, &worker, failure ? "job.failed" : "job.done", obj,
                      failure ? r3d_status_name(failure->code) : "ok", err);
    }
    st = st_end(s, st, err);
    ST_UNLOCK(s);
    return st;
}

r3d_status r3d_job_get(r3d_store *s, const r3d_actor *a, r3d_id job, r3d_job *out, r3d_error *err)
{
    if (!s || !out)
        return r3d_fail(err, R3D_EARG, "job: no store or no output");
    memset(out, 0, sizeof *out);
    ST_LOCK(s);
    r3d_status st = st_permit(s, a, R3D_ACT_CASE_VIEW, err);
    sqlite3_stmt *q = NULL;
    if (!st && !(st = st_prepare(s, "SELECT " JOB_COLS " FROM jobs WHERE id = ?", &q, err))) {
        sqlite3_bind_int64(q, 1, job);
        if (sqlite3_step(q) == SQLITE_ROW)
            fill_job(q, out);
        else
            st = r3d_fail(err, R3D_ENOTFOUND, "job %lld: no such job", (long long)job);
        sqlite3_finalize(q);
    }
    ST_UNLOCK(s);
    return st;
}

/* routes.c - the API's entry: dispatch to the route families, and the
 * session routes (first-run set-up, login, logout, who am I, users).
 * docs/api.md lists every route with its body, answers and status codes. */
#include "server_internal.h"

#include <stdio.h>
#include <string.h>

void routes_dispatch(srv_req *q, srv_resp *r)
{
    r->no_store = 1; /* patient data must not linger in browser caches */
    if (routes_auth(q, r) || routes_cases(q, r) || routes_labels(q, r) || routes_meshes(q, r) ||
        routes_jobs(q, r))
        return;
    resp_error(r, 404, "not_found", "no such API route: %s %s", q->method, q->path);
}

static cJSON *who_json(const srv_req *q)
{
    cJSON *j = cJSON_CreateObject();
    char csrf[65];
    session_csrf(q->srv, q->token, csrf);
    cJSON_AddStringToObject(j, "user", q->actor.user);
    cJSON_AddStringToObject(j, "role", r3d_role_name(q->actor.role));
    cJSON_AddStringToObject(j, "csrf", csrf);
    return j;
}

static const char *json_str(const cJSON *j, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int is(const srv_req *q, const char *method, const char *path)
{
    return !strcmp(q->method, method) && !strcmp(q->path, path);
}

int routes_auth(srv_req *q, srv_resp *r)
{
    r3d_store *st = q->srv->store;
    r3d_error err = R3D_ERROR_INIT;
    if (is(q, "GET", "/api/health")) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "version", r3d_version());
        cJSON_AddBoolToObject(j, "needs_setup", !r3d_store_has_users(st));
        cJSON_AddBoolToObject(j, "tls", q->srv->tls);
        resp_json(r, 200, j);
        return 1;
    }
    if (is(q, "POST", "/api/setup")) {
        /* The first administrator, once, and only from this machine: after
         * that users are made by an administrator (POST /api/users). */
        if (r3d_store_has_users(st)) {
            resp_error(r, 409, "conflict", "this server is already set up; sign in instead");
            return 1;
        }
        if (strncmp(q->origin, "http 127.", 9) && strncmp(q->origin, "https 127.", 10)) {
            resp_error(r, 403, "forbidden", "first-run set-up is allowed from this machine only");
            return 1;
        }
        cJSON *j = req_json(q, r);
        if (!j)
            return 1;
        const char *u = json_str(j, "user"), *p = json_str(j, "password");
        if (!u || !p)
            resp_error(r, 400, "bad_request", "give \"user\" and \"password\"");
        else if (r3d_user_create(st, NULL, u, p, R3D_ROLE_ADMIN, &err) != R3D_OK)
            resp_fail(r, &err);
        else
            resp_json(r, 201, cJSON_CreateObject());
        cJSON_Delete(j);
        return 1;
    }
    if (is(q, "POST", "/api/login")) {
        cJSON *j = req_json(q, r);
        if (!j)
            return 1;
        const char *u = json_str(j, "user"), *p = json_str(j, "password");
        if (!u || !p) {
            resp_error(r, 400, "bad_request", "give \"user\" and \"password\"");
        } else if (r3d_login(st, u, p, q->origin, q->token, &q->actor, &err) != R3D_OK) {
            if (err.code == R3D_EPERM || err.code == R3D_ENOTFOUND)
                resp_error(r, 401, "login_failed", "%s", err.msg);
            else
                resp_fail(r, &err);
        } else {
            q->authed = 1;
            snprintf(r->cookie, sizeof r->cookie,
                     "r3d_session=%s; Path=/; HttpOnly; SameSite=Strict%s", q->token,
                     q->srv->tls ? "; Secure" : "");
            resp_json(r, 200, who_json(q));
        }
        cJSON_Delete(j);
        return 1;
    }
    if (is(q, "POST", "/api/logout")) {
        if (!session_load(q)) {
            resp_error(r, 401, "unauthenticated", "not signed in");
            return 1;
        }
        if (session_csrf_refuse(q, r)) /* as require() answers every other route */
            return 1;
        r3d_logout(st, q->token);
        snprintf(r->cookie, sizeof r->cookie,
                 "r3d_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0%s",
                 q->srv->tls ? "; Secure" : "");
        resp_json(r, 200, cJSON_CreateObject());
        return 1;
    }
    if (is(q, "GET", "/api/session")) {
        if (!session_load(q))
            resp_error(r, 401, "unauthenticated", "please sign in");
        else
            resp_json(r, 200, who_json(q));
        return 1;
    }
    if (is(q, "POST", "/api/users")) {
        if (!require(q, r, R3D_ACT_USER_ADMIN))
            return 1;
        cJSON *j = req_json(q, r);
        if (!j)
            return 1;
        const char *u = json_str(j, "user"), *p = json_str(j, "password"),
                   *ro = json_str(j, "role");
        r3d_role role = ro ? r3d_role_parse(ro) : R3D_ROLE_NONE;
        if (!u || !p || role == R3D_ROLE_NONE)
            resp_error(r, 400, "bad_request",
                       "give \"user\", \"password\" and a \"role\" (admin, clinician, "
                       "reviewer, engineer)");
        else if (r3d_user_create(st, &q->actor, u, p, role, &err) != R3D_OK)
            resp_fail(r, &err);
        else
            resp_json(r, 201, cJSON_CreateObject());
        cJSON_Delete(j);
        return 1;
    }
    return 0;
}

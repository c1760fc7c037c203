/* session.c - who is asking: the session cookie the login set, the CSRF
 * token that must accompany every state-changing request, and the one gate
 * every route passes (authenticated, then r3d_permit for its action).
 *
 * The CSRF token is a keyed hash (BLAKE2b, libsodium) of the session token
 * under a secret made fresh at each start: the page gets it from the login
 * answer or GET /api/session and sends it back as X-CSRF-Token. A page of
 * another origin can make the browser send the cookie (SameSite=Strict
 * already stops most of that) but can never read the token. */
#include "server_internal.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

void session_csrf(const r3d_server *s, const char *token, char out[65])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)token, strlen(token), s->secret,
                       sizeof s->secret);
    sodium_bin2hex(out, 65, h, sizeof h);
}

/* The value of cookie name in a Cookie header, copied to out. */
static int cookie_value(const char *hdr, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = hdr;
    while (p && *p) {
        while (*p == ' ' || *p == ';')
            p++;
        if (!strncmp(p, name, nl) && p[nl] == '=') {
            p += nl + 1;
            size_t k = 0;
            while (p[k] && p[k] != ';' && p[k] != ' ' && k + 1 < cap) {
                out[k] = p[k];
                k++;
            }
            out[k] = 0;
            return k > 0;
        }
        p = strchr(p, ';');
    }
    return 0;
}

int session_load(srv_req *q)
{
    const char *ck = req_header(q, "Cookie");
    char tok[80];
    if (!ck || !cookie_value(ck, "r3d_session", tok, sizeof tok) || strlen(tok) != 64)
        return 0;
    r3d_error err = R3D_ERROR_INIT;
    if (r3d_session_check(q->srv->store, tok, q->origin, &q->actor, &err) != R3D_OK)
        return 0;
    snprintf(q->actor.origin, sizeof q->actor.origin, "%s", q->origin);
    memcpy(q->token, tok, 65);
    q->authed = 1;
    return 1;
}

int session_csrf_ok(const srv_req *q)
{
    if (!q->authed)
        return 0;
    const char *h = req_header(q, "X-CSRF-Token");
    char want[65];
    session_csrf(q->srv, q->token, want);
    return h && strlen(h) == 64 && sodium_memcmp(h, want, 64) == 0;
}

int session_csrf_refuse(const srv_req *q, srv_resp *r)
{
    if (session_csrf_ok(q))
        return 0;
    resp_error(r, 403, "csrf", "the request lacks the page's security token; reload the page");
    return 1;
}

int require(srv_req *q, srv_resp *r, r3d_action act)
{
    if (!q->authed && !session_load(q)) {
        resp_error(r, 401, "unauthenticated", "please sign in");
        return 0;
    }
    int safe = !strcmp(q->method, "GET") || !strcmp(q->method, "HEAD");
    if (!safe && session_csrf_refuse(q, r))
        return 0;
    r3d_error err = R3D_ERROR_INIT;
    if (r3d_permit(q->srv->store, &q->actor, act, &err) != R3D_OK) {
        resp_fail(r, &err);
        return 0;
    }
    return 1;
}

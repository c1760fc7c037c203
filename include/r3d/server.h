/* r3d/server.h - the workstation server: an HTTP(S) server on libmicrohttpd
 * that serves the JSON API (docs/api.md) and the web front end (web/dist),
 * on top of the case store (store.h). Long work (automatic reconstruction,
 * mesh regeneration, threshold segmentation) goes to a job queue kept in the
 * store and run by worker threads; request threads never compute for long.
 *
 * Security (clause 4.8.4): binds to 127.0.0.1 unless told otherwise, and
 * refuses a non-loopback address without TLS unless insecure_bind is set;
 * every /api route but login checks the session cookie (HttpOnly,
 * SameSite=Strict, Secure under TLS), every state-changing request carries
 * the CSRF token the login returned, and every route asks r3d_permit() for
 * its action. */
#ifndef R3D_SERVER_H
#define R3D_SERVER_H

#include "core.h"
#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct r3d_server_opts {
    const char *bind;        /* address to listen on; NULL = "127.0.0.1" */
    int port;                /* 0 = any free port (see r3d_server_port) */
    const char *web_dir;     /* built front end (web/dist); NULL = API only */
    const char *cert_file;   /* PEM certificate + key: serve HTTPS */
    const char *key_file;
    int insecure_bind;       /* allow plain HTTP on a non-loopback address */
    int request_threads;     /* 0 = 4 */
    int workers;             /* job worker threads; 0 = 1 */
    const char *import_root; /* server-side folders may be imported only below
                                this folder; NULL = anywhere readable */
    size_t max_upload;       /* bytes; 0 = 4 GiB */
} r3d_server_opts;
#define R3D_SERVER_OPTS_INIT {NULL, 8080, NULL, NULL, NULL, 0, 0, 0, NULL, 0}

typedef struct r3d_server r3d_server;

/* Starts listening and the workers; the store stays owned by the caller and
 * must outlive the server. */
r3d_status r3d_server_start(r3d_store *store, const r3d_server_opts *opts, r3d_server **out,
                            r3d_error *err);
int r3d_server_port(const r3d_server *s); /* the port actually bound */
/* Stops accepting, lets running requests and the current job step finish,
 * frees everything. */
void r3d_server_stop(r3d_server *s);

#ifdef __cplusplus
}
#endif
#endif

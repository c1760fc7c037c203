/* http.c - the HTTP layer of `recon3d serve`: libmicrohttpd with a pool of
 * request threads (internal polling), TLS through the library's GnuTLS
 * support when a certificate and key are given, request bodies gathered in
 * memory up to a limit, and one dispatch into the routes (api) or the static
 * front end (everything else).
 *
 * Why the bind check lives here: clause 4.8.4 wants encrypted transport for
 * anything reachable over a network, so a non-loopback address without TLS
 * is refused unless the operator says --insecure-bind explicitly. */
#include "server_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- response helpers ---------------------------------------------------- */

void resp_bytes(srv_resp *r, int status, const char *ctype, uint8_t *data, size_t n)
{
    free(r->data);
    r->status = status;
    r->ctype = ctype;
    r->data = data;
    r->n = n;
}

void resp_json(srv_resp *r, int status, cJSON *j)
{
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!s) {
        resp_bytes(r, 500, "application/json",
                   (uint8_t *)strdup("{\"error\":\"nomem\",\"message\":\"out of memory\"}"), 43);
        return;
    }
    resp_bytes(r, status, "application/json; charset=utf-8", (uint8_t *)s, strlen(s));
}

void resp_error(srv_resp *r, int status, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "error", code);
    cJSON_AddStringToObject(j, "message", msg);
    resp_json(r, status, j);
}

void resp_fail(srv_resp *r, const r3d_error *err)
{
    int st;
    const char *code;
    switch (err->code) {
    case R3D_EARG: st = 400, code = "bad_request"; break;
    case R3D_EFORMAT: st = 415, code = "bad_format"; break;
    case R3D_EUNSUPPORTED: st = 415, code = "unsupported"; break;
    case R3D_EDATA: st = 422, code = "bad_data"; break;
    case R3D_ENOTFOUND: st = 404, code = "not_found"; break;
    case R3D_EPERM: st = 403, code = "forbidden"; break;
    case R3D_ECONFLICT: st = 409, code = "conflict"; break;
    case R3D_ENOMEM: st = 503, code = "busy"; break;
    default: st = 500, code = "internal"; break;
    }
    resp_error(r, st, code, "%s", err->msg[0] ? err->msg : r3d_status_text(err->code));
}

const char *req_arg(const srv_req *q, const char *name)
{
    return MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *req_header(const srv_req *q, const char *name)
{
    return MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, name);
}

cJSON *req_json(const srv_req *q, srv_resp *r)
{
    if (!q->body_n) {
        resp_error(r, 400, "bad_request", "the request needs a JSON body");
        return NULL;
    }
    cJSON *j = cJSON_ParseWithLength((const char *)q->body, q->body_n);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        resp_error(r, 400, "bad_json", "the request body is not a JSON object");
        return NULL;
    }
    return j;
}

char *dup_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

int path_match(const char *path, const char *pattern, int64_t *ints, char strs[][64])
{
    int ni = 0, ns = 0;
    const char *p = path, *t = pattern;
    while (*t) {
        if (*t == '*' || *t == '$') {
            const char *e = p;
            while (*e && *e != '/')
                e++;
            size_t len = (size_t)(e - p);
            if (len == 0 || len >= 64)
                return 0;
            if (*t == '*') {
                int64_t v = 0;
                for (const char *c = p; c < e; c++) {
                    if (*c < '0' || *c > '9' || v > INT64_MAX / 20)
                        return 0;
                    v = v * 10 + (*c - '0');
                }
                if (ints)
                    ints[ni] = v;
                ni++;
            } else {
                if (strs) {
                    memcpy(strs[ns], p, len);
                    strs[ns][len] = 0;
                }
                ns++;
            }
            p = e;
            t++;
        } else if (*t++ != *p++)
            return 0;
    }
    return *p == 0;
}

/* ---- connection handling --------------------------------------------------- */

typedef struct conn_ctx {
    uint8_t *body;
    size_t n, cap;
    int too_big;
} conn_ctx;

static enum MHD_Result send_resp(struct MHD_Connection *c, r3d_server *s, srv_resp *r)
{
    struct MHD_Response *mr = NULL;
    if (r->file_path) {
        int fd = open(r->file_path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
            mr = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
        else {
            if (fd >= 0)
                close(fd);
            resp_error(r, 404, "not_found", "no such file");
        }
    }
    if (!mr) {
        mr = MHD_create_response_from_buffer_with_free_callback(r->n, r->data, free);
        if (!mr)
            return MHD_NO;
        r->data = NULL;
    }
    if (r->ctype)
        MHD_add_response_header(mr, "Content-Type", r->ctype);
    if (r->cookie[0])
        MHD_add_response_header(mr, "Set-Cookie", r->cookie);
    if (r->disposition[0])
        MHD_add_response_header(mr, "Content-Disposition", r->disposition);
    MHD_add_response_header(mr, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(mr, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(mr, "X-Frame-Options", "DENY");
    /* NiiVue compiles shaders and loads workers from blobs; no inline code */
    MHD_add_response_header(mr, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data: blob:; "
                            "worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; "
                            "connect-src 'self' blob: data:; frame-ancestors 'none'");
    if (r->no_store)
        MHD_add_response_header(mr, "Cache-Control", "no-store");
    if (s->tls)
        MHD_add_response_header(mr, "Strict-Transport-Security", "max-age=31536000");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)r->status, mr);
    MHD_destroy_response(mr);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    r3d_server *s = cls;
    conn_ctx *ctx = *con_cls;
    if (!ctx) {
        ctx = calloc(1, sizeof *ctx);
        if (!ctx)
            return MHD_NO;
        *con_cls = ctx;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t max = s->opts.max_upload ? s->opts.max_upload : ((size_t)4 << 30);
        if (ctx->too_big || ctx->n + *upload_size > max) {
            ctx->too_big = 1;
        } else {
            if (ctx->n + *upload_size + 1 > ctx->cap) {
                size_t cap = ctx->cap ? ctx->cap : 65536;
                while (cap < ctx->n + *upload_size + 1)
                    cap *= 2;
                uint8_t *nb = realloc(ctx->body, cap);
                if (!nb)
                    ctx->too_big = 1;
                else
                    ctx->body = nb, ctx->cap = cap;
            }
            if (!ctx->too_big) {
                memcpy(ctx->body + ctx->n, upload_data, *upload_size);
                ctx->n += *upload_size;
                ctx->body[ctx->n] = 0;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }

    srv_req q;
    memset(&q, 0, sizeof q);
    q.srv = s;
    q.conn = c;
    q.method = method;
    q.path = url;
    q.body = ctx->body;
    q.body_n = ctx->n;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char addr[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ci->client_addr;
        inet_ntop(AF_INET, &in->sin_addr, addr, sizeof addr);
        port = ntohs(in->sin_port);
    }
    snprintf(q.origin, sizeof q.origin, "http%s %s:%d", s->tls ? "s" : "", addr, port);

    srv_resp r;
    memset(&r, 0, sizeof r);
    if (ctx->too_big)
        resp_error(&r, 413, "too_large", "the upload is larger than this server accepts");
    else if (!strncmp(url, "/api/", 5) || !strcmp(url, "/api"))
        routes_dispatch(&q, &r);
    else
        static_serve(&q, &r);
    if (!r.status)
        resp_error(&r, 500, "internal", "the server produced no answer");
    enum MHD_Result ret = send_resp(c, s, &r);
    free(r.data);
    free(r.file_path);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    conn_ctx *ctx = *con_cls;
    if (ctx) {
        free(ctx->body);
        free(ctx);
        *con_cls = NULL;
    }
}

/* ---- start / stop ------------------------------------------------------------ */

static int is_loopback(const struct in_addr *a)
{
    return (ntohl(a->s_addr) >> 24) == 127;
}

r3d_status r3d_server_start(r3d_store *store, const r3d_server_opts *opts, r3d_server **out,
                            r3d_error *err)
{
    *out = NULL;
    if (sodium_init() < 0)
        return r3d_fail(err, R3D_EIO, "server: libsodium could not start");
    r3d_server_opts o = *opts;
    const char *bind = o.bind ? o.bind : "127.0.0.1";
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)o.port);
    if (o.port < 0 || o.port > 65535)
        return r3d_fail(err, R3D_EARG, "server: port %d is out of range", o.port);
    if (!strcmp(bind, "localhost"))
        bind = "127.0.0.1";
    if (inet_pton(AF_INET, bind, &sa.sin_addr) != 1)
        return r3d_fail(err, R3D_EARG, "server: %s is not an IPv4 address", bind);
    int tls = o.cert_file && o.key_file;
    if ((o.cert_file != NULL) != (o.key_file != NULL))
        return r3d_fail(err, R3D_EARG, "server: TLS needs both a certificate and a key");
    if (!is_loopback(&sa.sin_addr) && !tls && !o.insecure_bind)
        return r3d_fail(err, R3D_EPERM,
                        "server: refusing plain HTTP on %s, which other machines can reach: "
                        "give --cert and --key for HTTPS (or --insecure-bind on a trusted network)",
                        bind);

    r3d_server *s = calloc(1, sizeof *s);
    if (!s)
        return r3d_fail(err, R3D_ENOMEM, "server: out of memory");
    s->store = store;
    s->opts = o;
    s->tls = tls;
    s->web_dir = o.web_dir ? strdup(o.web_dir) : NULL;
    s->import_root = o.import_root ? realpath(o.import_root, NULL) : NULL;
    s->opts.web_dir = s->opts.import_root = NULL;
    randombytes_buf(s->secret, sizeof s->secret);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->wake, NULL);
    pthread_mutex_init(&s->edit_mu, NULL);
    pthread_mutex_init(&s->cache_mu, NULL);
    pthread_mutex_init(&s->mcache_mu, NULL);
    if (o.import_root && !s->import_root) {
        r3d_fail(err, R3D_ENOTFOUND, "server: import root %s does not exist", o.import_root);
        goto fail;
    }
    /* private scratch folder for uploads and encoders that need a file */
    const char *tmp = getenv("TMPDIR");
    s->tmp_dir = dup_printf("%s/r3d-serve-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!s->tmp_dir || !mkdtemp(s->tmp_dir)) {
        r3d_fail(err, R3D_EIO, "server: cannot make a scratch folder: %s", strerror(errno));
        free(s->tmp_dir);
        s->tmp_dir = NULL;
        goto fail;
    }

    uint8_t *cert = NULL, *key = NULL;
    size_t cn, kn;
    if (tls) {
        if (r3d_file_read_all(o.cert_file, &cert, &cn, err) != R3D_OK)
            goto fail;
        if (r3d_file_read_all(o.key_file, &key, &kn, err) != R3D_OK) {
            free(cert);
            goto fail;
        }
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (tls)
        flags |= MHD_USE_TLS;
    int threads = o.request_threads > 0 ? o.request_threads : 4;
    if (tls)
        s->daemon = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads, MHD_OPTION_NOTIFY_COMPLETED,
            on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
            MHD_OPTION_HTTPS_MEM_CERT, (const char *)cert, MHD_OPTION_HTTPS_MEM_KEY,
            (const char *)key, MHD_OPTION_END);
    else
        s->daemon = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads, MHD_OPTION_NOTIFY_COMPLETED,
            on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_END);
    if (key)
        sodium_memzero(key, kn);
    free(cert);
    free(key);
    if (!s->daemon) {
        r3d_fail(err, R3D_EIO,
                 "server: cannot listen on %s:%d (address in use, or the certificate/key "
                 "could not be loaded)",
                 bind, o.port);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : o.port;
    if (jobs_start(s, err) != R3D_OK)
        goto fail;
    *out = s;
    return R3D_OK;
fail:
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    if (s->tmp_dir)
        rmdir(s->tmp_dir);
    free(s->tmp_dir);
    free(s->web_dir);
    free(s->import_root);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->edit_mu);
    pthread_mutex_destroy(&s->cache_mu);
    pthread_mutex_destroy(&s->mcache_mu);
    free(s);
    return err ? err->code : R3D_EIO;
}

int r3d_server_port(const r3d_server *s)
{
    return s ? s->port : 0;
}

void r3d_server_stop(r3d_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->daemon);
    jobs_stop(s);
    rmdir(s->tmp_dir);
    free(s->tmp_dir);
    free(s->web_dir);
    free(s->import_root);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->edit_mu);
    pthread_mutex_destroy(&s->cache_mu);
    nifti_cache_free(s);
    mcache_free(s);
    pthread_mutex_destroy(&s->mcache_mu);
    free(s);
}

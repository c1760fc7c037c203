/* static.c - the built web front end (web/dist): plain files, sent straight
 * from disk by libmicrohttpd. Paths with ".." or hidden segments are
 * refused; "/" and unknown extension-less paths get index.html. */
#include "server_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *mime(const char *p)
{
    static const char *t[][2] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
        {".json", "application/json"}, {".svg", "image/svg+xml"}, {".png", "image/png"},
        {".ico", "image/x-icon"}, {".wasm", "application/wasm"}, {".woff2", "font/woff2"},
        {".map", "application/json"}, {".txt", "text/plain; charset=utf-8"}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (r3d_has_suffix(p, t[i][0]))
            return t[i][1];
    return "application/octet-stream";
}

void static_serve(srv_req *q, srv_resp *r)
{
    if (strcmp(q->method, "GET") && strcmp(q->method, "HEAD")) {
        resp_error(r, 405, "method", "use GET");
        return;
    }
    if (!q->srv->web_dir) {
        resp_error(r, 404, "not_found", "this server has no web front end (give --web DIR)");
        return;
    }
    const char *p = q->path;
    if (strstr(p, "/.") || strchr(p, '\\') || p[0] != '/') {
        resp_error(r, 404, "not_found", "no such file");
        return;
    }
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s%s", q->srv->web_dir, p);
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        const char *last = strrchr(p, '/');
        if (last && strchr(last, '.')) {
            resp_error(r, 404, "not_found", "no such file");
            return;
        }
        snprintf(path, sizeof path, "%s/index.html", q->srv->web_dir);
    }
    r->status = 200;
    r->ctype = mime(path);
    r->file_path = strdup(path);
    /* the hashed assets may be cached; index.html must not be */
    r->no_store = r3d_has_suffix(path, ".html");
}

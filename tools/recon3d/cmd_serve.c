/* cmd_serve.c - recon3d serve --store DIR: the workstation (HTTP API + web UI).
 *
 * Listens on 127.0.0.1:8080 by default; HTTPS with --cert/--key; a
 * non-loopback --bind needs TLS or --insecure-bind. The web front end is
 * looked for in --web DIR, else beside the executable (web/, ../web/dist,
 * ../share/recon3d/web). Runs until SIGINT or SIGTERM. */
#include "cli.h"
#include "r3d/server.h"
#include "r3d/store.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: recon3d serve --store DIR [--bind ADDR] [--port N] [--web DIR]\n"
            "         [--cert PEM --key PEM] [--insecure-bind] [--threads N] [--workers N]\n"
            "         [--import-root DIR] [--key-file KEY] [--port-file FILE] [--quiet]\n"
            "  --store        the case store folder (created if missing)\n"
            "  --bind         address to listen on (default 127.0.0.1)\n"
            "  --port         TCP port (default 8080; 0 = any free port)\n"
            "  --web          the built front end (web/dist); default: found beside recon3d\n"
            "  --cert, --key  PEM certificate and private key: serve HTTPS\n"
            "  --insecure-bind  allow plain HTTP on a non-loopback address\n"
            "  --threads      request threads (default 4); --workers job threads (default 1)\n"
            "  --import-root  server-side imports only from below this folder\n"
            "  --key-file     the store's encryption key (32 bytes)\n"
            "  --port-file    write the bound port to FILE once listening\n");
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* web/dist beside the executable: build tree or installed layout */
static char *find_web(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return NULL;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash)
        return NULL;
    *slash = 0;
    const char *rel[] = {"/web", "/../web/dist", "/../share/recon3d/web"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        char p[PATH_MAX + 32];
        snprintf(p, sizeof p, "%s%s/index.html", exe, rel[i]);
        if (access(p, R_OK) == 0) {
            p[strlen(p) - strlen("/index.html")] = 0;
            return realpath(p, NULL);
        }
    }
    return NULL;
}

R3D_COMMAND(80, serve, "the workstation: HTTP(S) API and web interface over a case store")

int cmd_serve(int argc, char **argv)
{
    r3d_server_opts o = R3D_SERVER_OPTS_INIT;
    const char *store_dir = NULL, *key_file = NULL, *port_file = NULL;
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(s, "--store") && more)
            store_dir = argv[++i];
        else if (!strcmp(s, "--bind") && more)
            o.bind = argv[++i];
        else if (!strcmp(s, "--port") && more) {
            char *end;
            long p = strtol(argv[++i], &end, 10);
            if (*end || p < 0 || p > 65535)
                return cli_usage("serve: --port is 0..65535");
            o.port = (int)p;
        } else if (!strcmp(s, "--web") && more)
            o.web_dir = argv[++i];
        else if (!strcmp(s, "--cert") && more)
            o.cert_file = argv[++i];
        else if (!strcmp(s, "--key") && more)
            o.key_file = argv[++i];
        else if (!strcmp(s, "--insecure-bind"))
            o.insecure_bind = 1;
        else if (!strcmp(s, "--threads") && more)
            o.request_threads = atoi(argv[++i]);
        else if (!strcmp(s, "--workers") && more)
            o.workers = atoi(argv[++i]);
        else if (!strcmp(s, "--import-root") && more)
            o.import_root = argv[++i];
        else if (!strcmp(s, "--key-file") && more)
            key_file = argv[++i];
        else if (!strcmp(s, "--port-file") && more)
            port_file = argv[++i];
        else if (!strcmp(s, "--quiet") || !strcmp(s, "-q"))
            quiet = 1;
        else
            return cli_other_arg("serve", usage, s, NULL, NULL);
    }
    if (!store_dir)
        return usage(stderr), cli_usage("serve: --store DIR is required");
    char *web = NULL;
    if (o.web_dir && !is_dir(o.web_dir))
        return cli_usage("serve: --web %s is not a folder", o.web_dir);
    if (!o.web_dir && (web = find_web()))
        o.web_dir = web;

    /* SIGINT/SIGTERM are waited for, not handled: block them before any
     * thread starts so every thread inherits the mask */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    r3d_error err = R3D_ERROR_INIT;
    r3d_store *st = NULL;
    r3d_store_opts so = {1, key_file};
    if (r3d_store_open(store_dir, &so, &st, &err) != R3D_OK) {
        free(web);
        return cli_fail(&err);
    }
    r3d_server *srv = NULL;
    if (r3d_server_start(st, &o, &srv, &err) != R3D_OK) {
        r3d_store_close(st);
        free(web);
        return cli_fail(&err);
    }
    int port = r3d_server_port(srv);
    int tls = o.cert_file != NULL;
    if (port_file) {
        char b[16];
        int n = snprintf(b, sizeof b, "%d\n", port);
        if (r3d_file_write_atomic(port_file, b, (size_t)n, &err) != R3D_OK) {
            r3d_server_stop(srv);
            r3d_store_close(st);
            free(web);
            return cli_fail(&err);
        }
    }
    if (!quiet) {
        fprintf(stderr, "recon3d: serving on %s://%s:%d/%s\n", tls ? "https" : "http",
                o.bind ? o.bind : "127.0.0.1", port,
                o.web_dir ? "" : " (API only: no web front end found; give --web DIR)");
        if (!r3d_store_has_users(st))
            fprintf(stderr, "recon3d: no users yet: open the page on this machine to create "
                            "the administrator\n");
    }
    int sig = 0;
    sigwait(&sigs, &sig);
    if (!quiet)
        fprintf(stderr, "recon3d: stopping\n");
    r3d_server_stop(srv);
    r3d_store_close(st);
    free(web);
    return EXIT_OK;
}

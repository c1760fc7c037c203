/* cmd_login.c - recon3d login: how a command-line user authenticates, and
 * the helpers every store command (store, user, audit, trace, update)
 * shares to open the store and find out who is acting.
 *
 * The store: --store DIR, else $R3D_STORE. Its key (encrypted stores):
 * --key-file FILE, else $R3D_KEY_FILE.
 * Who: $R3D_TOKEN (a session from `recon3d login`, which expires like a
 * browser's), else --user NAME / $R3D_USER with the password from
 * $R3D_PASSWORD (scripts) or asked on the terminal without echo. Every
 * command logs in through r3d_login, so lock-out, rate limits and the audit
 * trail apply to the command line exactly as to the web interface. */
#include "cli.h"

#include "r3d/store.h"

#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* ---- shared with cmd_store.c, cmd_user.c, cmd_audit.c, cmd_trace.c, cmd_update.c ---- */

typedef struct cli_store_args {
    const char *store;    /* --store */
    const char *key_file; /* --key-file */
    const char *user;     /* --user */
} cli_store_args;

int cli_store_option(cli_store_args *o, int argc, char **argv, int *i);
int cli_store_open(const cli_store_args *o, int create, r3d_store **s);
int cli_store_auth(r3d_store *s, const cli_store_args *o, r3d_actor *a);
int cli_read_secret(const char *prompt, const char *env, char *out, size_t cap);

/* Consumes --store/--key-file/--user at argv[*i]; 1 if it did. */
int cli_store_option(cli_store_args *o, int argc, char **argv, int *i)
{
    const char *s = argv[*i];
    if (*i + 1 >= argc)
        return 0;
    if (!strcmp(s, "--store"))
        o->store = argv[++*i];
    else if (!strcmp(s, "--key-file"))
        o->key_file = argv[++*i];
    else if (!strcmp(s, "--user"))
        o->user = argv[++*i];
    else
        return 0;
    return 1;
}

int cli_store_open(const cli_store_args *o, int create, r3d_store **s)
{
    const char *dir = o->store ? o->store : getenv("R3D_STORE");
    if (!dir || !*dir)
        return cli_usage("no store: give --store DIR or set R3D_STORE");
    r3d_store_opts so = {create, o->key_file ? o->key_file : getenv("R3D_KEY_FILE")};
    if (so.key_file && !*so.key_file)
        so.key_file = NULL;
    r3d_error e = R3D_ERROR_INIT;
    if (r3d_store_open(dir, &so, s, &e))
        return cli_fail(&e);
    return EXIT_OK;
}

/* A secret from the environment, or typed on the terminal without echo. */
int cli_read_secret(const char *prompt, const char *env, char *out, size_t cap)
{
    const char *v = env ? getenv(env) : NULL;
    if (v) {
        if (strlen(v) >= cap)
            return 0;
        snprintf(out, cap, "%s", v);
        return 1;
    }
    FILE *tty = fopen("/dev/tty", "r+");
    if (!tty)
        return 0;
    struct termios old, quiet;
    int fd = fileno(tty), have = tcgetattr(fd, &old) == 0;
    if (have) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    fprintf(tty, "%s", prompt);
    fflush(tty);
    int ok = fgets(out, (int)cap, tty) != NULL;
    if (have)
        tcsetattr(fd, TCSAFLUSH, &old);
    fprintf(tty, "\n");
    fclose(tty);
    if (ok)
        out[strcspn(out, "\r\n")] = 0;
    return ok;
}

int cli_store_auth(r3d_store *s, const cli_store_args *o, r3d_actor *a)
{
    r3d_error e = R3D_ERROR_INIT;
    const char *tok = getenv("R3D_TOKEN");
    if (tok && *tok && !o->user) {
        if (r3d_session_check(s, tok, "cli", a, &e))
            return cli_fail(&e);
        return EXIT_OK;
    }
    const char *user = o->user ? o->user : getenv("R3D_USER");
    if (!user || !*user)
        return cli_usage("who are you? give --user NAME (or R3D_USER), or R3D_TOKEN from "
                         "`recon3d login`");
    char pw[1100], prompt[128], token[65];
    snprintf(prompt, sizeof prompt, "password for %.64s: ", user);
    if (!cli_read_secret(prompt, "R3D_PASSWORD", pw, sizeof pw))
        return cli_usage("no password: set R3D_PASSWORD or run on a terminal");
    r3d_status st = r3d_login(s, user, pw, "cli", token, a, &e);
    memset(pw, 0, sizeof pw);
    if (st)
        return cli_fail(&e);
    /* a one-command log-in: the session ends with the command */
    r3d_logout(s, token);
    return EXIT_OK;
}

/* ---- recon3d login -------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: recon3d login --user NAME [--store DIR] [--key-file FILE]\n"
               "       recon3d login --logout        (ends the session in R3D_TOKEN)\n"
               "  prints a session token; `export R3D_TOKEN=...` lets later commands act as\n"
               "  NAME until the session expires (idle or maximum age, `store settings`).\n"
               "  password: R3D_PASSWORD, else asked on the terminal.\n");
}

R3D_COMMAND(72, login, "log in to a case store and print a session token for R3D_TOKEN")
int cmd_login(int argc, char **argv)
{
    cli_store_args o = {0};
    int logout = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_store_option(&o, argc, argv, &i))
            continue;
        if (!strcmp(argv[i], "--logout"))
            logout = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return usage(stdout), EXIT_OK;
        else
            return usage(stderr), cli_usage("login: unknown or incomplete option %s", argv[i]);
    }
    r3d_store *s = NULL;
    int rc = cli_store_open(&o, 0, &s);
    if (rc)
        return rc;
    r3d_error e = R3D_ERROR_INIT;
    if (logout) {
        const char *tok = getenv("R3D_TOKEN");
        r3d_actor a;
        if (!tok || r3d_session_check(s, tok, "cli", &a, &e)) {
            r3d_store_close(s);
            return tok ? cli_fail(&e) : cli_usage("login --logout: R3D_TOKEN is not set");
        }
        r3d_logout(s, tok);
        r3d_store_close(s);
        return EXIT_OK;
    }
    const char *user = o.user ? o.user : getenv("R3D_USER");
    if (!user) {
        r3d_store_close(s);
        return usage(stderr), cli_usage("login: --user NAME is required");
    }
    char pw[1100], prompt[128], token[65];
    snprintf(prompt, sizeof prompt, "password for %.64s: ", user);
    if (!cli_read_secret(prompt, "R3D_PASSWORD", pw, sizeof pw)) {
        r3d_store_close(s);
        return cli_usage("login: no password: set R3D_PASSWORD or run on a terminal");
    }
    r3d_actor a;
    r3d_status st = r3d_login(s, user, pw, "cli", token, &a, &e);
    memset(pw, 0, sizeof pw);
    r3d_store_close(s);
    if (st)
        return cli_fail(&e);
    printf("%s\n", token);
    return EXIT_OK;
}

/* cli_store.c - what every command acting on the case store shares: the
 * --store / --key-file / --user options, opening the store, and finding out
 * who is acting.
 *
 * The store: --store DIR, else $R3D_STORE. Its key (encrypted stores):
 * --key-file FILE, else $R3D_KEY_FILE.
 * Who: $R3D_TOKEN (a session from `recon3d login`, which expires like a
 * browser's), else --user NAME / $R3D_USER with the password from
 * $R3D_PASSWORD (scripts) or asked on the terminal without echo. Every
 * command logs in through r3d_login, so lock-out, rate limits and the audit
 * trail apply to the command line exactly as to the web interface. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

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

/* Logs in (token, or user + password) and fills *a; an exit code. */
static int cli_store_auth(r3d_store *s, const cli_store_args *o, r3d_actor *a)
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

int cli_store_login(const cli_store_args *o, r3d_store **s, r3d_actor *a)
{
    int rc = cli_store_open(o, 0, s);
    if (rc)
        return rc;
    if ((rc = cli_store_auth(*s, o, a))) {
        r3d_store_close(*s);
        *s = NULL;
    }
    return rc;
}

/* ---- recon3d login -------------------------------------------------------------------- */

/* cmd_login.c - recon3d login: a session token for the command line (how a
 * command authenticates is in cli_store.c). */
#include "cli.h"

#include "r3d/store.h"

#include <stdlib.h>
#include <string.h>

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
        else
            return cli_other_arg("login", usage, argv[i], NULL, NULL);
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

/* cmd_user.c - recon3d user add|passwd|role|list: accounts and roles. */
#include "cli.h"

#include "r3d/store.h"

#include <stdlib.h>
#include <string.h>


static void usage(FILE *f)
{
    fprintf(f, "usage: recon3d user add NAME --role ROLE   (administrator)\n"
               "       recon3d user passwd NAME           (one's own, or anyone's as administrator)\n"
               "       recon3d user role NAME ROLE        (administrator)\n"
               "       recon3d user list [--json]         (administrator)\n"
               "  ROLE: admin, clinician, reviewer (read-only) or engineer (maintenance,\n"
               "  no patient data). The new password comes from R3D_NEW_PASSWORD or is asked\n"
               "  twice; it must pass the store's policy (`recon3d store settings`).\n"
               "  common: --store DIR, --user NAME (acting user), --key-file FILE\n");
}

static int new_password(const char *who, char *pw, size_t cap)
{
    char again[1100], prompt[160];
    snprintf(prompt, sizeof prompt, "new password for %.64s: ", who);
    if (!cli_read_secret(prompt, "R3D_NEW_PASSWORD", pw, cap))
        return 0;
    if (getenv("R3D_NEW_PASSWORD"))
        return 1;
    if (!cli_read_secret("again: ", NULL, again, sizeof again) || strcmp(again, pw) != 0) {
        fprintf(stderr, "recon3d: the two passwords differ\n");
        return 0;
    }
    memset(again, 0, sizeof again);
    return 1;
}

R3D_COMMAND(71, user, "users and roles of a case store: add, passwd, role, list")
int cmd_user(int argc, char **argv)
{
    int rc = cli_action("user", usage, argc, argv);
    if (rc != CLI_ARG_TAKEN)
        return rc;
    const char *action = argv[1];
    cli_store_args o = {0};
    const char *role = NULL, *pos[8];
    int npos = 0, json = 0;
    for (int i = 2; i < argc; i++) {
        if (cli_store_option(&o, argc, argv, &i))
            continue;
        if (!strcmp(argv[i], "--role") && i + 1 < argc)
            role = argv[++i];
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (argv[i][0] == '-')
            return cli_other_arg("user", usage, argv[i], NULL, NULL);
        else if (npos < 8)
            pos[npos++] = argv[i];
        else
            return cli_usage("user: too many arguments");
    }
    int want = !strcmp(action, "add") || !strcmp(action, "passwd") ? 1
               : !strcmp(action, "role")                          ? 2
               : !strcmp(action, "list")                          ? 0
                                                                  : -1;
    if (want < 0)
        return usage(stderr), cli_usage("user: unknown action \"%s\"", action);
    if (npos != want)
        return usage(stderr), cli_usage("user %s: expected %d argument%s", action, want,
                                        want == 1 ? "" : "s");
    r3d_role r = R3D_ROLE_NONE;
    if (!strcmp(action, "add")) {
        if (!role || (r = r3d_role_parse(role)) == R3D_ROLE_NONE)
            return cli_usage("user add: --role admin|clinician|reviewer|engineer is required");
    }
    if (!strcmp(action, "role") && (r = r3d_role_parse(pos[1])) == R3D_ROLE_NONE)
        return cli_usage("user role: ROLE is admin, clinician, reviewer or engineer");

    r3d_store *s = NULL;
    r3d_actor a;
    r3d_error e = R3D_ERROR_INIT;
    if ((rc = cli_store_login(&o, &s, &a)))
        return rc;
    r3d_status st = R3D_OK;
    if (!strcmp(action, "add") || !strcmp(action, "passwd")) {
        /* refuse before asking for a password the user may not set */
        if (strcmp(action, "passwd") || strcmp(a.user, pos[0]))
            st = r3d_permit(s, &a, R3D_ACT_USER_ADMIN, &e);
        char pw[1100];
        if (!st && !new_password(pos[0], pw, sizeof pw)) {
            r3d_store_close(s);
            return cli_usage("user %s: no password: set R3D_NEW_PASSWORD or run on a terminal",
                             action);
        }
        if (!st)
            st = !strcmp(action, "add") ? r3d_user_create(s, &a, pos[0], pw, r, &e)
                                        : r3d_user_set_password(s, &a, pos[0], pw, &e);
        memset(pw, 0, sizeof pw);
    } else if (!strcmp(action, "role")) {
        st = r3d_user_set_role(s, &a, pos[0], r, &e);
    } else {
        r3d_user_info *u = NULL;
        int n = 0;
        if (!(st = r3d_user_list(s, &a, &u, &n, &e))) {
            if (json)
                printf("[");
            for (int i = 0; i < n; i++) {
                if (json)
                    printf("%s\n  {\"name\": \"%s\", \"role\": \"%s\", \"failures\": %d, "
                           "\"locked_until\": %lld, \"created\": \"%s\"}",
                           i ? "," : "", u[i].name, r3d_role_name(u[i].role), u[i].failures,
                           (long long)u[i].locked_until, u[i].created);
                else
                    printf("%-24s %-10s %s%s\n", u[i].name, r3d_role_name(u[i].role),
                           u[i].created, u[i].locked_until ? "  LOCKED" : "");
            }
            if (json)
                printf("\n]\n");
            free(u);
        }
    }
    r3d_store_close(s);
    return st ? cli_fail(&e) : EXIT_OK;
}

/* cmd_update.c - recon3d update verify|apply PACKAGE: software updates are
 * accepted only when signed with the vendor's Ed25519 key (built into
 * libr3d; this command has no way to name another) and applied by an
 * administrator. docs/security.md describes the package. */
#include "cli.h"

#include "r3d/store.h"

#include <stdlib.h>
#include <string.h>


static void usage(FILE *f)
{
    fprintf(f, "usage: recon3d update verify PACKAGE   (administrator, engineer)\n"
               "       recon3d update apply  PACKAGE   (administrator)\n"
               "  common: --store DIR, --user NAME, --key-file FILE\n"
               "  An unsigned, damaged or wrongly signed package is refused (exit 7) and the\n"
               "  refusal is audited.\n");
}

R3D_COMMAND(75, update, "check the vendor signature of a software update and apply it")
int cmd_update(int argc, char **argv)
{
    int rc = cli_action("update", usage, argc, argv);
    if (rc != CLI_ARG_TAKEN)
        return rc;
    const char *action = argv[1];
    if (strcmp(action, "verify") && strcmp(action, "apply"))
        return usage(stderr), cli_usage("update: unknown action \"%s\"", action);
    cli_store_args o = {0};
    const char *pkg = NULL;
    for (int i = 2; i < argc; i++) {
        if (cli_store_option(&o, argc, argv, &i))
            continue;
        if (argv[i][0] == '-' || pkg)
            return cli_other_arg("update", usage, argv[i], NULL,
                                 "unknown option or second PACKAGE:");
        pkg = argv[i];
    }
    if (!pkg)
        return usage(stderr), cli_usage("update %s: name a PACKAGE", action);
    r3d_store *s = NULL;
    r3d_actor a;
    r3d_error e = R3D_ERROR_INIT;
    if ((rc = cli_store_login(&o, &s, &a)))
        return rc;
    uint8_t *b = NULL;
    size_t n = 0;
    r3d_update_info info;
    r3d_status st;
    if (!strcmp(action, "verify")) {
        st = r3d_permit(s, &a, R3D_ACT_SYSTEM_HEALTH, &e);
        if (!st)
            st = r3d_file_read_all(pkg, &b, &n, &e);
        if (!st) {
            st = r3d_update_verify(b, n, NULL, &info, &e);
            r3d_audit(s, &a, st ? "update.refused" : "update.verify", "update package",
                      st ? r3d_status_name(st) : "signature ok", NULL);
        }
        if (!st)
            printf("signed by the vendor: %s %s (%zu bytes, sha256 %s)\n", info.name,
                   info.version, info.payload_size, info.payload_sha256);
    } else {
        st = r3d_permit(s, &a, R3D_ACT_UPDATE, &e);
        if (!st)
            st = r3d_file_read_all(pkg, &b, &n, &e);
        if (!st)
            st = r3d_update_apply(s, &a, b, n, NULL, &info, &e);
        if (!st)
            printf("applied %s %s\n", info.name, info.version);
    }
    free(b);
    r3d_store_close(s);
    return st ? cli_fail(&e) : EXIT_OK;
}

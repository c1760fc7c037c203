/* cmd_audit.c - recon3d audit verify|list: the hash-chained audit trail. */
#include "cli.h"

#include "r3d/store.h"

#include <stdlib.h>
#include <string.h>


static void usage(FILE *f)
{
    fprintf(f, "usage: recon3d audit verify [--expect SEQ:HASH]   (administrator, engineer)\n"
               "       recon3d audit list [--from SEQ] [--max N]   (administrator; JSON)\n"
               "  verify exits 0 when the chain is intact, 2 naming the first entry that was\n"
               "  changed, removed or moved. It prints the head (SEQ:HASH of the last entry):\n"
               "  keep it elsewhere; --expect SEQ:HASH later checks that entry SEQ still has\n"
               "  that hash, which catches even a rewrite of the whole chain.\n"
               "  common: --store DIR, --user NAME, --key-file FILE\n");
}

R3D_COMMAND(73, audit, "verify or list the tamper-evident audit trail of a case store")
int cmd_audit(int argc, char **argv)
{
    int rc = cli_action("audit", usage, argc, argv);
    if (rc != CLI_ARG_TAKEN)
        return rc;
    const char *action = argv[1];
    if (strcmp(action, "verify") && strcmp(action, "list"))
        return usage(stderr), cli_usage("audit: unknown action \"%s\"", action);
    cli_store_args o = {0};
    long long from = 1, max = 1000;
    const char *expect = NULL;
    for (int i = 2; i < argc; i++) {
        char *end = NULL;
        if (cli_store_option(&o, argc, argv, &i))
            continue;
        if (!strcmp(argv[i], "--from") && i + 1 < argc) {
            from = strtoll(argv[++i], &end, 10);
            if (*end || from < 1)
                return cli_usage("audit: --from is a sequence number >= 1");
        } else if (!strcmp(argv[i], "--max") && i + 1 < argc) {
            max = strtoll(argv[++i], &end, 10);
            if (*end || max < 1 || max > 100000)
                return cli_usage("audit: --max is 1..100000");
        } else if (!strcmp(argv[i], "--expect") && i + 1 < argc) {
            expect = argv[++i];
        } else {
            return cli_other_arg("audit", usage, argv[i], NULL, NULL);
        }
    }
    r3d_store *s = NULL;
    r3d_actor a;
    r3d_error e = R3D_ERROR_INIT;
    if ((rc = cli_store_login(&o, &s, &a)))
        return rc;
    r3d_status st;
    long long exp_seq = 0;
    char exp_hash[65] = "";
    if (expect && (sscanf(expect, "%lld:%64s", &exp_seq, exp_hash) != 2 || exp_seq < 1 ||
                   strlen(exp_hash) != 64)) {
        r3d_store_close(s);
        return cli_usage("audit verify: --expect SEQ:HASH (as printed by audit verify)");
    }
    if (!strcmp(action, "verify")) {
        int64_t bad = 0;
        if (!(st = r3d_permit(s, &a, R3D_ACT_SYSTEM_HEALTH, &e))) {
            st = r3d_audit_verify(s, &bad, &e);
            char have[65] = "";
            if (!st && expect && (r3d_audit_hash_at(s, exp_seq, have, &e) ||
                                  strcmp(have, exp_hash) != 0)) {
                if (!e.msg[0] || have[0])
                    r3d_fail(&e, R3D_EDATA, "audit entry %lld: not the entry recorded earlier "
                             "(the trail was rewritten)", exp_seq);
                st = R3D_EDATA;
                bad = exp_seq;
            }
            if (!st) {
                int64_t head = 0;
                char hash[65] = "";
                r3d_audit_head(s, &head, hash, NULL);
                r3d_audit(s, &a, "audit.verify", "audit", "intact", NULL);
                printf("audit trail intact; head %lld:%s\n", (long long)head, hash);
            } else if (bad) {
                printf("first bad entry: %lld\n", (long long)bad);
            }
        }
    } else {
        char *json = NULL;
        if (!(st = r3d_audit_list(s, &a, from, (int)max, &json, &e)))
            printf("%s\n", json);
        free(json);
    }
    r3d_store_close(s);
    return st ? cli_fail(&e) : EXIT_OK;
}

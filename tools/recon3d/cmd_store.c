/* cmd_store.c - recon3d store init|check|backup|restore|settings. */
#include "cli.h"

#include "r3d/store.h"

#include <stdlib.h>
#include <string.h>


static void usage(FILE *f)
{
    fprintf(f,
            "usage: recon3d store init     --store DIR --admin NAME [--new-key FILE | --key-file FILE]\n"
            "       recon3d store check    --store DIR [--json]\n"
            "       recon3d store backup   DEST   --store DIR\n"
            "       recon3d store restore  BACKUP --store DIR   (DIR must hold no store yet)\n"
            "       recon3d store settings [KEY=VALUE ...] --store DIR\n"
            "  common: --user NAME (or R3D_USER + R3D_PASSWORD, or R3D_TOKEN), --key-file FILE\n"
            "  init creates the store and its first administrator (password: R3D_NEW_PASSWORD\n"
            "  or asked twice); --new-key FILE writes a fresh key and encrypts the store with it.\n"
            "  check exits 2 when the store is damaged; backup/restore copy a checked snapshot.\n");
}

static const char *const setting_keys[] = {
    "password.min_length", "password.refuse_common", "login.max_failures",
    "login.lockout_seconds", "login.origin_failures_per_minute", "session.idle_seconds",
    "session.max_seconds",
};

static int new_password(const char *who, char *pw, size_t cap)
{
    char again[1100], prompt[160];
    snprintf(prompt, sizeof prompt, "new password for %.64s: ", who);
    if (!cli_read_secret(prompt, "R3D_NEW_PASSWORD", pw, cap))
        return 0;
    if (getenv("R3D_NEW_PASSWORD"))
        return 1;
    snprintf(prompt, sizeof prompt, "again: ");
    if (!cli_read_secret(prompt, NULL, again, sizeof again) || strcmp(again, pw) != 0) {
        fprintf(stderr, "recon3d: the two passwords differ\n");
        return 0;
    }
    memset(again, 0, sizeof again);
    return 1;
}

static int do_init(cli_store_args *o, const char *admin, const char *new_key)
{
    if (!admin)
        return usage(stderr), cli_usage("store init: --admin NAME is required");
    r3d_error e = R3D_ERROR_INIT;
    if (new_key) {
        if (o->key_file)
            return cli_usage("store init: --new-key or --key-file, not both");
        if (r3d_store_key_generate(new_key, &e))
            return cli_fail(&e);
        o->key_file = new_key;
    }
    r3d_store *s = NULL;
    int rc = cli_store_open(o, 1, &s);
    if (rc)
        return rc;
    if (r3d_store_has_users(s)) {
        r3d_store_close(s);
        fprintf(stderr, "recon3d: error: the store has users already; add more with `recon3d "
                        "user add`\n");
        return EXIT_CONFLICT;
    }
    char pw[1100];
    if (!new_password(admin, pw, sizeof pw)) {
        r3d_store_close(s);
        return cli_usage("store init: no password: set R3D_NEW_PASSWORD or run on a terminal");
    }
    r3d_status st = r3d_user_create(s, NULL, admin, pw, R3D_ROLE_ADMIN, &e);
    memset(pw, 0, sizeof pw);
    r3d_store_close(s);
    if (st)
        return cli_fail(&e);
    printf("store created with administrator %s%s\n", admin,
           o->key_file ? " (encrypted at rest; keep the key file apart from the store)" : "");
    return EXIT_OK;
}

R3D_COMMAND(70, store, "case store: init, check, backup, restore, settings")
int cmd_store(int argc, char **argv)
{
    int rc = cli_action("store", usage, argc, argv);
    if (rc != CLI_ARG_TAKEN)
        return rc;
    const char *action = argv[1];
    cli_store_args o = {0};
    const char *admin = NULL, *new_key = NULL, *pos[64];
    int npos = 0, json = 0;
    for (int i = 2; i < argc; i++) {
        if (cli_store_option(&o, argc, argv, &i))
            continue;
        if (!strcmp(argv[i], "--admin") && i + 1 < argc)
            admin = argv[++i];
        else if (!strcmp(argv[i], "--new-key") && i + 1 < argc)
            new_key = argv[++i];
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (argv[i][0] == '-')
            return cli_other_arg("store", usage, argv[i], NULL, NULL);
        else if (npos < 64)
            pos[npos++] = argv[i];
        else
            return cli_usage("store: too many arguments");
    }
    if (!strcmp(action, "init")) {
        if (npos)
            return usage(stderr), cli_usage("store init: unexpected argument %s", pos[0]);
        return do_init(&o, admin, new_key);
    }
    int known = !strcmp(action, "check") || !strcmp(action, "backup") ||
                !strcmp(action, "restore") || !strcmp(action, "settings");
    if (!known)
        return usage(stderr), cli_usage("store: unknown action \"%s\"", action);
    if ((!strcmp(action, "backup") || !strcmp(action, "restore")) && npos != 1)
        return usage(stderr), cli_usage("store %s: give one folder", action);
    if (!strcmp(action, "check") && npos)
        return usage(stderr), cli_usage("store check: unexpected argument %s", pos[0]);

    r3d_store *s = NULL;
    r3d_actor a;
    r3d_error e = R3D_ERROR_INIT;
    if (!strcmp(action, "restore")) {
        /* the backup is a store: log in there, copy it to --store */
        cli_store_args b = o;
        b.store = pos[0];
        const char *dest = o.store ? o.store : getenv("R3D_STORE");
        if (!dest)
            return cli_usage("store restore: give --store DIR (where to restore to)");
        if ((rc = cli_store_login(&b, &s, &a)))
            return rc;
        r3d_status st = r3d_store_backup(s, &a, dest, &e);
        r3d_store_close(s);
        if (st)
            return cli_fail(&e);
        printf("restored into %s and checked\n", dest);
        return EXIT_OK;
    }
    if ((rc = cli_store_login(&o, &s, &a)))
        return rc;
    r3d_status st = R3D_OK;
    if (!strcmp(action, "check")) {
        char *rep = NULL;
        if (!(st = r3d_permit(s, &a, R3D_ACT_SYSTEM_HEALTH, &e))) {
            st = r3d_store_check(s, &rep, &e);
            r3d_audit(s, &a, "store.check", "store", st ? "problems" : "ok", NULL);
            if (json && rep)
                printf("%s\n", rep);
            else if (!st)
                printf("store ok\n");
            else if (rep)
                fprintf(stderr, "%s\n", rep);
            free(rep);
        }
    } else if (!strcmp(action, "backup")) {
        if (!(st = r3d_store_backup(s, &a, pos[0], &e)))
            printf("backed up to %s and checked\n", pos[0]);
    } else { /* settings */
        for (int i = 0; i < npos && !st; i++) {
            const char *eq = strchr(pos[i], '=');
            if (!eq || eq == pos[i] || eq - pos[i] > 63) {
                r3d_store_close(s);
                return cli_usage("store settings: give KEY=VALUE, e.g. password.min_length=14");
            }
            char key[64], *end = NULL;
            snprintf(key, sizeof key, "%.*s", (int)(eq - pos[i]), pos[i]);
            long long v = strtoll(eq + 1, &end, 10);
            if (!*(eq + 1) || *end) {
                r3d_store_close(s);
                return cli_usage("store settings: %s: the value must be a whole number", key);
            }
            st = r3d_setting_set(s, &a, key, v, &e);
        }
        if (!st && !npos && !(st = r3d_permit(s, &a, R3D_ACT_USER_ADMIN, &e)))
            for (size_t i = 0; i < sizeof setting_keys / sizeof setting_keys[0]; i++) {
                int64_t v = 0;
                r3d_setting_get(s, setting_keys[i], &v, NULL);
                printf("%s=%lld\n", setting_keys[i], (long long)v);
            }
    }
    r3d_store_close(s);
    return st ? cli_fail(&e) : EXIT_OK;
}

/* cmd_trace.c - recon3d trace RESULT: from a mesh file or label version
 * back to the DICOM files it was made from (clause 4.7.1). */
#include "cli.h"

#include "r3d/store.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


static void usage(FILE *f)
{
    fprintf(f, "usage: recon3d trace RESULT [--store DIR] [--user NAME]\n"
               "  RESULT: a file (a mesh or label map the store made: found by its SHA-256),\n"
               "  case:N (its current label map), case:N/version:M, or a SHA-256 in hex.\n"
               "  Prints JSON: the result, every version back to the first with algorithm,\n"
               "  parameters, user, software, machine and time, the image and its input\n"
               "  files (SOP Instance UID and SHA-256).\n");
}

R3D_COMMAND(74, trace, "where a result came from: versions, algorithms, users, input DICOM files")
int cmd_trace(int argc, char **argv)
{
    cli_store_args o = {0};
    const char *what = NULL;
    for (int i = 1; i < argc; i++) {
        if (cli_store_option(&o, argc, argv, &i))
            continue;
        if (argv[i][0] == '-' || what)
            return cli_other_arg("trace", usage, argv[i], NULL,
                                 "unknown option or second RESULT:");
        what = argv[i];
    }
    if (!what)
        return usage(stderr), cli_usage("trace: name a RESULT");
    char sha[65];
    struct stat sb;
    const char *query = what;
    if (strncmp(what, "case:", 5) != 0 && stat(what, &sb) == 0 && S_ISREG(sb.st_mode)) {
        uint8_t *b = NULL;
        size_t n = 0;
        r3d_error e = R3D_ERROR_INIT;
        if (r3d_file_read_all(what, &b, &n, &e))
            return cli_fail(&e);
        uint8_t h[32];
        crypto_hash_sha256(h, b, n);
        free(b);
        for (int i = 0; i < 32; i++)
            snprintf(sha + 2 * i, 3, "%02x", h[i]);
        query = sha;
    }
    r3d_store *s = NULL;
    r3d_actor a;
    r3d_error e = R3D_ERROR_INIT;
    int rc = cli_store_login(&o, &s, &a);
    if (rc)
        return rc;
    char *json = NULL;
    r3d_status st = r3d_trace(s, &a, query, &json, &e);
    r3d_store_close(s);
    if (st)
        return cli_fail(&e);
    printf("%s\n", json);
    free(json);
    return EXIT_OK;
}

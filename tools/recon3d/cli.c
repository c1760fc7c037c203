/* cli.c - what the option loops of the recon3d commands share: error lines,
 * exit codes, and the tail of every loop (--help, an unknown option, the one
 * INPUT argument, INPUT and -o both given).
 *
 * Each command parses its own options in a plain loop over argv, because the
 * options differ too much for a table to be clearer; only the arguments no
 * option of the command took end here, so that --help, the usage text and
 * the messages of docs/EXIT_CODES.md read the same in every command. */
#include "cli.h"

#include <stdarg.h>
#include <string.h>

int cli_exit_code(r3d_status s)
{
    switch (s) {
    case R3D_OK: return EXIT_OK;
    case R3D_EARG: return EXIT_USAGE;
    case R3D_EUNSUPPORTED: return EXIT_UNSUPPORTED;
    case R3D_ENOMEM: return EXIT_NOMEM;
    case R3D_ENOTFOUND: return EXIT_NOTFOUND;
    case R3D_EPERM: return EXIT_PERM;
    case R3D_ECONFLICT: return EXIT_CONFLICT;
    default: return EXIT_INPUT;
    }
}

int cli_fail(const r3d_error *err)
{
    fprintf(stderr, "recon3d: error: %s\n", err->msg[0] ? err->msg : r3d_status_text(err->code));
    return cli_exit_code(err->code);
}

int cli_usage(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "recon3d: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    return EXIT_USAGE;
}

int cli_other_arg(const char *cmd, void (*usage)(FILE *f), const char *a, const char **input,
                  const char *unknown)
{
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!input || (a[0] == '-' && a[1])) {
        usage(stderr);
        return cli_usage("%s: %s %s", cmd, unknown ? unknown : "unknown or incomplete option", a);
    }
    if (*input) {
        usage(stderr);
        return cli_usage("%s: one INPUT only", cmd);
    }
    *input = a;
    return CLI_ARG_TAKEN;
}

int cli_action(const char *cmd, void (*usage)(FILE *f), int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return cli_usage("%s: which action?", cmd);
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return EXIT_OK;
    }
    return CLI_ARG_TAKEN;
}

int cli_need_input_out(const char *cmd, void (*usage)(FILE *f), const char *input,
                       const char *out, const char *out_name)
{
    if (input && out)
        return EXIT_OK;
    usage(stderr);
    return cli_usage("%s: INPUT and -o %s are required", cmd, out_name);
}

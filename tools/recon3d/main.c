/* main.c - recon3d: the command-line front end of libr3d.
 * Each subcommand is a file cmd_<name>.c; this file only dispatches. */
#include "cli.h"

#include <stdarg.h>
#include <string.h>

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *summary;
} commands[] = {
    {"info", cmd_info, "list the series in a study: geometry, acquisition, anything unusual"},
    {"convert", cmd_convert, "one series (or a NIfTI/NRRD/InVesalius file) to NIfTI + JSON"},
    {"mesh", cmd_mesh, "3D-printable surfaces of labels or of a threshold (STL OBJ PLY 3MF AMF ...)"},
    {"deidentify", cmd_deidentify, "DICOM files without patient identity (PS3.15 Annex E basic profile)"},
};

static void help(FILE *f)
{
    fprintf(f, "recon3d %s - automatic 3D reconstruction from CT / MRI / CBCT\n\n", r3d_version());
    fprintf(f, "usage: recon3d COMMAND [options]   (recon3d COMMAND --help for details)\n\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nexit codes: 0 ok, 1 usage, 2 bad input, 3 unsupported, 4 output failed,\n"
               "            5 out of memory, 6 nothing found (docs/EXIT_CODES.md)\n");
}

int cli_exit_code(r3d_status s)
{
    switch (s) {
    case R3D_OK: return EXIT_OK;
    case R3D_EARG: return EXIT_USAGE;
    case R3D_EUNSUPPORTED: return EXIT_UNSUPPORTED;
    case R3D_ENOMEM: return EXIT_NOMEM;
    case R3D_ENOTFOUND: return EXIT_NOTFOUND;
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

int main(int argc, char **argv)
{
    if (argc < 2) {
        help(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        help(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("recon3d %s\n", r3d_version());
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    help(stderr);
    return cli_usage("unknown command \"%s\"", argv[1]);
}

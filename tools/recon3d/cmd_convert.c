/* cmd_convert.c - recon3d convert INPUT -o OUT.nii[.gz]: one series to
 * NIfTI plus a JSON sidecar with the acquisition record (clause 4.2.2). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: recon3d convert INPUT -o OUT.nii[.gz] [--series UID|N] [--nifti2]\n"
            "                       [--level 1..12] [--allow-institution] [--quiet]\n"
            "  INPUT    a DICOM folder, zip or file; NIfTI, NRRD or InVesalius .inv3\n"
            "  --series which DICOM series (UID or the number `recon3d info` shows);\n"
            "           default: the largest\n"
            "  writes OUT.nii[.gz] and OUT.json (acquisition record)\n");
}

/* OUT.nii.gz -> OUT.json */
static char *sidecar_name(const char *out)
{
    size_t n = strlen(out);
    char *s = malloc(n + 6);
    if (!s)
        return NULL;
    memcpy(s, out, n + 1);
    if (r3d_has_suffix(s, ".nii.gz"))
        s[n - 7] = 0;
    else if (r3d_has_suffix(s, ".nii"))
        s[n - 4] = 0;
    strcat(s, ".json");
    return s;
}

R3D_COMMAND(20, convert, "one series (or a NIfTI/NRRD/InVesalius file) to NIfTI + JSON")

int cmd_convert(int argc, char **argv)
{
    const char *input = NULL, *out = NULL;
    r3d_input_opts io = R3D_INPUT_OPTS_INIT;
    r3d_nifti_write_opts wo = R3D_NIFTI_WRITE_OPTS_INIT;
    int quiet = 0;
    int rc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && i + 1 < argc)
            out = argv[++i];
        else if (!strcmp(a, "--series") && i + 1 < argc)
            io.series = argv[++i];
        else if (!strcmp(a, "--nifti2"))
            wo.version = 2;
        else if (!strcmp(a, "--level") && i + 1 < argc)
            wo.gzip_level = atoi(argv[++i]);
        else if (!strcmp(a, "--allow-institution"))
            io.scan.allow_institution = 1;
        else if (!strcmp(a, "--quiet") || !strcmp(a, "-q"))
            quiet = 1;
        else if ((rc = cli_other_arg("convert", usage, a, &input, NULL)) != CLI_ARG_TAKEN)
            return rc;
    }
    if ((rc = cli_need_input_out("convert", usage, input, out, "OUT")))
        return rc;
    if (!r3d_has_suffix(out, ".nii") && !r3d_has_suffix(out, ".nii.gz"))
        return cli_usage("convert: %s: the output must end in .nii or .nii.gz", out);
    if (wo.gzip_level < 0 || wo.gzip_level > 12)
        return cli_usage("convert: --level must be 1..12");

    cli_progress pr;
    cli_progress_init(&pr, quiet);
    io.scan.progress = cli_progress_cb;
    io.scan.progress_ctx = &pr;
    r3d_error err = R3D_ERROR_INIT;
    int chosen = 0;
    r3d_volume *v = r3d_input_load(input, &io, NULL, &chosen, &err);
    cli_progress_end(&pr);
    if (!v)
        return cli_fail(&err);

    char *side = sidecar_name(out);
    char *json = r3d_acq_to_json(&v->acq, v);
    rc = EXIT_OK;
    if (!side || !json) {
        fprintf(stderr, "recon3d: error: out of memory\n");
        rc = EXIT_NOMEM;
    } else if (r3d_nifti_write(v, out, &wo, &err) != R3D_OK) {
        rc = cli_fail(&err) == EXIT_NOMEM ? EXIT_NOMEM : EXIT_OUTPUT;
    } else if (r3d_file_write_atomic(side, json, strlen(json), &err) != R3D_OK) {
        rc = cli_fail(&err) == EXIT_NOMEM ? EXIT_NOMEM : EXIT_OUTPUT;
    } else if (!quiet) {
        fprintf(stderr, "%s: %lldx%lldx%lld%s %s, %.4gx%.4gx%.4g mm -> %s (+ %s) in %.2f s\n",
                chosen ? "series" : "volume", (long long)v->dim[0], (long long)v->dim[1],
                (long long)v->dim[2], v->dim[3] > 1 ? "x4D" : "", r3d_dtype_name(v->dtype),
                v->spacing_mm[0], v->spacing_mm[1], v->spacing_mm[2], out, side,
                cli_now() - pr.t0);
    }
    free(side);
    free(json);
    r3d_volume_free(v);
    return rc;
}

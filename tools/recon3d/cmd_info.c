/* cmd_info.c - recon3d info INPUT [--json]: what is in a study. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: recon3d info INPUT [--json] [--quiet]\n"
               "  INPUT  a DICOM folder, zip or file; a NIfTI, NRRD or InVesalius .inv3\n"
               "  --json machine-readable output on stdout\n");
}

static cJSON *affine_json(const double m[4][4])
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < 4; i++) {
        cJSON *row = cJSON_CreateArray();
        for (int j = 0; j < 4; j++)
            cJSON_AddItemToArray(row, cJSON_CreateNumber(fabs(m[i][j]) < 5e-13 ? 0 : m[i][j]));
        cJSON_AddItemToArray(a, row);
    }
    return a;
}

static cJSON *lines_json(const char *text)
{
    cJSON *a = cJSON_CreateArray();
    const char *p = text;
    while (p && *p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char *line = strndup(p, n);
        if (line && *line)
            cJSON_AddItemToArray(a, cJSON_CreateString(line));
        free(line);
        p = e ? e + 1 : NULL;
    }
    return a;
}

static cJSON *acq_json(const r3d_acq *a)
{
    char *t = r3d_acq_to_json(a, NULL);
    cJSON *o = t ? cJSON_Parse(t) : NULL;
    free(t);
    if (o) {
        cJSON_DeleteItemFromObject(o, "ConversionSoftware");
        cJSON_DeleteItemFromObject(o, "ConversionSoftwareVersion");
    }
    return o ? o : cJSON_CreateObject();
}

static void lps_to_ras(const double lps[4][4], double ras[4][4])
{
    memcpy(ras, lps, sizeof(double) * 16);
    for (int k = 0; k < 4; k++) {
        ras[0][k] = -ras[0][k];
        ras[1][k] = -ras[1][k];
    }
}

static void print_affine(const double m[4][4])
{
    for (int i = 0; i < 3; i++)
        printf("    [%10.5f %10.5f %10.5f %10.4f]\n", m[i][0], m[i][1], m[i][2], m[i][3]);
}

static void print_acq(const r3d_acq *a)
{
    printf("  acquisition: %s", a->modality[0] ? a->modality : "?");
    if (a->manufacturer[0])
        printf(", %s", a->manufacturer);
    if (a->model[0])
        printf(" %s", a->model);
    if (!isnan(a->kvp))
        printf(", %g kV", a->kvp);
    if (!isnan(a->exposure_mas))
        printf(", %g mAs", a->exposure_mas);
    if (a->kernel[0])
        printf(", kernel %s", a->kernel);
    if (!isnan(a->slice_thickness_mm))
        printf(", thickness %g mm", a->slice_thickness_mm);
    if (a->sequence_name[0])
        printf(", sequence %s", a->sequence_name);
    if (!isnan(a->repetition_time_ms))
        printf(", TR %g ms", a->repetition_time_ms);
    if (!isnan(a->echo_time_ms))
        printf(", TE %g ms", a->echo_time_ms);
    if (!isnan(a->flip_angle_deg))
        printf(", flip %g deg", a->flip_angle_deg);
    if (a->contrast_agent[0])
        printf(", contrast %s", a->contrast_agent);
    if (a->acquisition_date[0])
        printf(", acquired %s", a->acquisition_date);
    printf("\n");
}

static int info_dicom(const char *path, int json, cli_progress *pr)
{
    r3d_error err = R3D_ERROR_INIT;
    r3d_scan_opts so = R3D_SCAN_OPTS_INIT;
    so.progress = cli_progress_cb;
    so.progress_ctx = pr;
    r3d_dicom_scan *s = r3d_dicom_scan_path(path, &so, &err);
    cli_progress_end(pr);
    if (!s)
        return cli_fail(&err);
    int n = r3d_dicom_scan_count(s);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "input", path);
        cJSON_AddStringToObject(o, "format", "DICOM");
        cJSON *arr = cJSON_AddArrayToObject(o, "series");
        for (int i = 0; i < n; i++) {
            const r3d_series_info *in = r3d_dicom_scan_info(s, i);
            cJSON *x = cJSON_CreateObject();
            cJSON_AddNumberToObject(x, "index", i + 1);
            cJSON_AddStringToObject(x, "uid", in->uid);
            cJSON_AddStringToObject(x, "modality", in->modality);
            cJSON_AddStringToObject(x, "description", in->description);
            cJSON_AddNumberToObject(x, "series_number", in->series_number);
            cJSON_AddNumberToObject(x, "files", in->n_files);
            cJSON *d = cJSON_AddArrayToObject(x, "dimensions");
            cJSON_AddItemToArray(d, cJSON_CreateNumber(in->cols));
            cJSON_AddItemToArray(d, cJSON_CreateNumber(in->rows));
            cJSON_AddItemToArray(d, cJSON_CreateNumber(in->n_slices));
            if (in->n_volumes > 1)
                cJSON_AddItemToArray(d, cJSON_CreateNumber(in->n_volumes));
            cJSON *sp = cJSON_AddArrayToObject(x, "spacing_mm");
            for (int k = 0; k < 3; k++)
                cJSON_AddItemToArray(sp, cJSON_CreateNumber(in->spacing_mm[k]));
            double ras[4][4];
            lps_to_ras(in->ijk_to_lps, ras);
            cJSON_AddItemToObject(x, "affine_ras", affine_json(ras));
            cJSON_AddBoolToObject(x, "multiframe", in->multiframe);
            cJSON_AddBoolToObject(x, "mosaic", in->mosaic);
            cJSON_AddNumberToObject(x, "gantry_tilt_deg", in->gantry_tilt_deg);
            cJSON_AddBoolToObject(x, "uneven_spacing", in->uneven_spacing);
            cJSON_AddBoolToObject(x, "missing_slices", in->missing_slices);
            cJSON_AddItemToObject(x, "warnings", lines_json(in->warnings));
            cJSON_AddItemToObject(x, "acquisition", acq_json(&in->acq));
            cJSON_AddItemToArray(arr, x);
        }
        cJSON_AddItemToObject(o, "file_warnings", lines_json(r3d_dicom_scan_warnings(s)));
        cJSON_AddNumberToObject(o, "segmentation_objects", r3d_dicom_scan_segmentations(s));
        char *t = cJSON_Print(o);
        printf("%s\n", t);
        free(t);
        cJSON_Delete(o);
    } else {
        printf("%s: DICOM, %d series\n", path, n);
        for (int i = 0; i < n; i++) {
            const r3d_series_info *in = r3d_dicom_scan_info(s, i);
            printf("\nseries %d: %s #%d \"%s\"\n  uid %s\n", i + 1, in->modality,
                   in->series_number, in->description, in->uid);
            char vols[32] = "";
            if (in->n_volumes > 1)
                snprintf(vols, sizeof vols, " x %d", in->n_volumes);
            printf("  %d x %d x %d%s voxels, %.4g x %.4g x %.4g mm, %d file%s%s%s\n", in->cols,
                   in->rows, in->n_slices, vols, in->spacing_mm[0], in->spacing_mm[1],
                   in->spacing_mm[2], in->n_files, in->n_files == 1 ? "" : "s",
                   in->multiframe ? ", enhanced multi-frame" : "",
                   in->mosaic ? ", Siemens mosaic" : "");
            double ras[4][4];
            lps_to_ras(in->ijk_to_lps, ras);
            printf("  voxel -> RAS mm:\n");
            print_affine(ras);
            print_acq(&in->acq);
            if (in->warnings[0]) {
                const char *p = in->warnings;
                while (p && *p) {
                    const char *e = strchr(p, '\n');
                    printf("  ! %.*s\n", (int)(e ? e - p : (long)strlen(p)), p);
                    p = e ? e + 1 : NULL;
                }
            }
        }
        if (r3d_dicom_scan_segmentations(s))
            printf("\n%d segmentation object(s) (DICOM SEG): not image series\n",
                   r3d_dicom_scan_segmentations(s));
        const char *w = r3d_dicom_scan_warnings(s);
        if (*w)
            printf("\nfiles that could not be read:\n%s", w);
    }
    r3d_dicom_scan_free(s);
    return EXIT_OK;
}

static int info_volume(const char *path, int json)
{
    r3d_error err = R3D_ERROR_INIT;
    r3d_labelmap *masks = NULL;
    r3d_volume *v = r3d_input_load(path, NULL, &masks, NULL, &err);
    if (!v)
        return cli_fail(&err);
    double ras[4][4];
    r3d_volume_ijk_to_ras(v, ras);
    const char *kind = r3d_input_kind_name(r3d_input_detect(path));
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "input", path);
        cJSON_AddStringToObject(o, "format", kind);
        cJSON *d = cJSON_AddArrayToObject(o, "dimensions");
        for (int k = 0; k < 4 && (k < 3 || v->dim[3] > 1); k++)
            cJSON_AddItemToArray(d, cJSON_CreateNumber((double)v->dim[k]));
        cJSON *sp = cJSON_AddArrayToObject(o, "spacing_mm");
        for (int k = 0; k < 3; k++)
            cJSON_AddItemToArray(sp, cJSON_CreateNumber(v->spacing_mm[k]));
        cJSON_AddStringToObject(o, "datatype", r3d_dtype_name(v->dtype));
        cJSON_AddItemToObject(o, "affine_ras", affine_json(ras));
        if (masks)
            cJSON_AddNumberToObject(o, "masks", masks->table.n);
        char *t = cJSON_Print(o);
        printf("%s\n", t);
        free(t);
        cJSON_Delete(o);
    } else {
        printf("%s: %s\n  %lld x %lld x %lld", path, kind, (long long)v->dim[0],
               (long long)v->dim[1], (long long)v->dim[2]);
        if (v->dim[3] > 1)
            printf(" x %lld", (long long)v->dim[3]);
        printf(" voxels, %.4g x %.4g x %.4g mm, %s\n  voxel -> RAS mm:\n", v->spacing_mm[0],
               v->spacing_mm[1], v->spacing_mm[2], r3d_dtype_name(v->dtype));
        print_affine(ras);
        if (masks)
            for (int i = 0; i < masks->table.n; i++)
                printf("  mask %u: %s\n", masks->table.v[i].value, masks->table.v[i].name);
    }
    r3d_labelmap_free(masks);
    r3d_volume_free(v);
    return EXIT_OK;
}

R3D_COMMAND(10, info, "list the series in a study: geometry, acquisition, anything unusual")

int cmd_info(int argc, char **argv)
{
    const char *input = NULL;
    int json = 0, quiet = 0;
    int rc;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q"))
            quiet = 1;
        else if ((rc = cli_other_arg("info", usage, argv[i], &input, "unknown option")) !=
                 CLI_ARG_TAKEN)
            return rc;
    }
    if (!input)
        return usage(stderr), cli_usage("info: INPUT is missing");
    cli_progress pr;
    cli_progress_init(&pr, quiet || json);
    if (r3d_input_detect(input) == R3D_INPUT_DICOM)
        return info_dicom(input, json, &pr);
    return info_volume(input, json);
}

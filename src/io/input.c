/* input.c - one entry point for every input format (r3d/input.h). */
#include "r3d/input.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

r3d_input_kind r3d_input_detect(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return R3D_INPUT_UNKNOWN;
    if (S_ISDIR(st.st_mode) || r3d_has_suffix(path, ".zip"))
        return R3D_INPUT_DICOM;
    if (r3d_has_suffix(path, ".nii") || r3d_has_suffix(path, ".nii.gz") ||
        r3d_has_suffix(path, ".hdr"))
        return R3D_INPUT_NIFTI;
    if (r3d_has_suffix(path, ".nrrd") || r3d_has_suffix(path, ".nhdr"))
        return R3D_INPUT_NRRD;
    if (r3d_has_suffix(path, ".inv3"))
        return R3D_INPUT_INV3;
    /* By content: DICOM files often have no extension at all. */
    unsigned char b[352] = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return R3D_INPUT_UNKNOWN;
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    if (n >= 132 && memcmp(b + 128, "DICM", 4) == 0)
        return R3D_INPUT_DICOM;
    if (n >= 4 && memcmp(b, "NRRD", 4) == 0)
        return R3D_INPUT_NRRD;
    if (n >= 348 && ((b[0] == 0x5c && b[1] == 0x01) || (b[3] == 0x5c && b[2] == 0x01) ||
                     (b[0] == 0x1c && b[1] == 0x02) || (b[3] == 0x1c && b[2] == 0x02)))
        return R3D_INPUT_NIFTI;
    if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b)
        return R3D_INPUT_NIFTI; /* a gzip'ed NIfTI under another name */
    return R3D_INPUT_DICOM; /* a bare data set without preamble; the parser decides */
}

const char *r3d_input_kind_name(r3d_input_kind k)
{
    switch (k) {
    case R3D_INPUT_DICOM: return "DICOM";
    case R3D_INPUT_NIFTI: return "NIfTI";
    case R3D_INPUT_NRRD: return "NRRD";
    case R3D_INPUT_INV3: return "InVesalius project";
    default: return "unknown";
    }
}

int r3d_dicom_scan_pick(const r3d_dicom_scan *s, const char *which, r3d_error *err)
{
    int n = r3d_dicom_scan_count(s);
    if (which && *which) {
        int i = r3d_dicom_scan_find(s, which);
        if (i >= 0)
            return i;
        char *end;
        long k = strtol(which, &end, 10);
        if (*end == 0 && k >= 1 && k <= n)
            return (int)k - 1;
        r3d_fail(err, R3D_ENOTFOUND, "no series \"%s\" here (%d series; give a UID or 1..%d)",
                 which, n, n);
        return -1;
    }
    int best = -1;
    double best_vox = -1;
    for (int i = 0; i < n; i++) {
        const r3d_series_info *in = r3d_dicom_scan_info(s, i);
        double vox = (double)in->rows * in->cols * in->n_slices;
        if (vox > best_vox) {
            best_vox = vox;
            best = i;
        }
    }
    return best;
}

r3d_volume *r3d_input_load(const char *path, const r3d_input_opts *opts_in, r3d_labelmap **masks,
                           int *chosen, r3d_error *err)
{
    r3d_input_opts defaults = R3D_INPUT_OPTS_INIT;
    const r3d_input_opts *o = opts_in ? opts_in : &defaults;
    if (masks)
        *masks = NULL;
    if (chosen)
        *chosen = 0;
    struct stat st;
    if (stat(path, &st) != 0)
        return r3d_fail(err, R3D_EIO, "%s: no such file or folder", path), NULL;
    switch (r3d_input_detect(path)) {
    case R3D_INPUT_NIFTI:
        return r3d_nifti_read(path, err);
    case R3D_INPUT_NRRD:
        return r3d_nrrd_read(path, err);
    case R3D_INPUT_INV3:
        return r3d_inv3_read(path, masks, err);
    case R3D_INPUT_DICOM: {
        r3d_dicom_scan *s = r3d_dicom_scan_path(path, &o->scan, err);
        if (!s)
            return NULL;
        int i = r3d_dicom_scan_pick(s, o->series, err);
        r3d_volume *v = i >= 0 ? r3d_dicom_series_load(s, i, &o->scan, err) : NULL;
        if (chosen)
            *chosen = i + 1;
        r3d_dicom_scan_free(s);
        return v;
    }
    default:
        return r3d_fail(err, R3D_EFORMAT, "%s: unrecognised input format", path), NULL;
    }
}

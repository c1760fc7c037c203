/* r3d/input.h - open whatever the user points at: a DICOM folder, zip or
 * file, a NIfTI, an NRRD or an InVesalius project, and get one volume. */
#ifndef R3D_INPUT_H
#define R3D_INPUT_H

#include "dicom.h"
#include "nifti.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum r3d_input_kind {
    R3D_INPUT_UNKNOWN = 0,
    R3D_INPUT_DICOM,
    R3D_INPUT_NIFTI,
    R3D_INPUT_NRRD,
    R3D_INPUT_INV3,
} r3d_input_kind;

typedef struct r3d_input_opts {
    const char *series; /* DICOM: SeriesInstanceUID or 1-based index; NULL = the largest */
    r3d_scan_opts scan;
} r3d_input_opts;
#define R3D_INPUT_OPTS_INIT {NULL, R3D_SCAN_OPTS_INIT}

/* By name, then by content. */
r3d_input_kind r3d_input_detect(const char *path);
const char *r3d_input_kind_name(r3d_input_kind k);

/* Load one volume. masks (may be NULL) receives an InVesalius project's
 * masks. For DICOM with several series and no choice made, the series with
 * the most voxels is taken and *chosen (if not NULL) says which (1-based). */
r3d_volume *r3d_input_load(const char *path, const r3d_input_opts *opts, r3d_labelmap **masks,
                           int *chosen, r3d_error *err);

/* Pick a series in a scan by UID or 1-based index ("3"); NULL = largest. */
int r3d_dicom_scan_pick(const r3d_dicom_scan *s, const char *which, r3d_error *err);

#ifdef __cplusplus
}
#endif
#endif

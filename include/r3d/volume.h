/* r3d/volume.h - the image volume and label-map types every module shares.
 *
 * A volume is voxels plus geometry plus the acquisition record. Geometry is a
 * 4x4 affine from voxel index (i, j, k) to patient millimetres in DICOM's LPS
 * frame; the NIfTI (RAS) affine is derived from it by negating the first two
 * rows, never stored separately, so the two cannot drift apart.
 * Voxels are stored i fastest, then j, then k, then t.
 */
#ifndef R3D_VOLUME_H
#define R3D_VOLUME_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum r3d_dtype {
    R3D_DT_NONE = 0,
    R3D_U8,
    R3D_I8,
    R3D_I16,
    R3D_U16,
    R3D_I32,
    R3D_U32,
    R3D_F32,
    R3D_F64,
    R3D_RGB24, /* 3 x uint8 per voxel, interleaved */
} r3d_dtype;

size_t r3d_dtype_size(r3d_dtype t);     /* bytes per voxel, 0 for NONE */
const char *r3d_dtype_name(r3d_dtype t); /* "int16" ... */

/* Acquisition record (clause 4.2.2): where the voxels came from.
 * Strings are empty when unknown; numbers are NaN when unknown. */
typedef struct r3d_acq {
    char modality[17];
    char manufacturer[65];
    char model[65];
    char station[65];
    char institution[65]; /* filled only if the caller permits (privacy) */
    char series_uid[65];
    char study_uid[65];
    char frame_of_reference_uid[65];
    char series_description[65];
    char protocol_name[65];
    char body_part[17];
    char kernel[65];           /* ConvolutionKernel */
    char contrast_agent[65];   /* ContrastBolusAgent */
    char sequence_name[65];    /* MR SequenceName */
    char scanning_sequence[65];
    char acquisition_date[9];  /* YYYYMMDD */
    char acquisition_time[17]; /* HHMMSS.frac */
    char transfer_syntax[65];
    char image_type[129];
    char mr_acquisition_type[3]; /* "2D" / "3D" (MR) */
    int series_number;         /* -1 if unknown */
    double kvp;
    double tube_current_ma;
    double exposure_mas;
    double exposure_time_ms;
    double slice_thickness_mm;
    double spacing_between_slices_mm;
    double pixel_spacing_mm[2]; /* row spacing, column spacing */
    double magnetic_field_t;
    double repetition_time_ms;
    double echo_time_ms;
    double inversion_time_ms;
    double flip_angle_deg;
    double gantry_tilt_deg;
    double rescale_slope, rescale_intercept;
    int n_files; /* files the series was built from */
} r3d_acq;

void r3d_acq_init(r3d_acq *a); /* empty strings, NaN numbers */

typedef struct r3d_volume {
    int64_t dim[4];         /* i, j, k, t voxel counts; t = 1 for 3D */
    double spacing_mm[3];   /* column lengths of ijk_to_lps (kept in step) */
    double ijk_to_lps[4][4];
    r3d_dtype dtype;
    void *voxels;           /* owned */
    /* Real value = stored * scl_slope + scl_inter. (1, 0) when the voxels
     * already hold real units; kept otherwise so raw data stays exact. */
    double scl_slope, scl_inter;
    double t_spacing;       /* seconds between volumes (t), 0 if unknown */
    r3d_acq acq;
    char description[81];
} r3d_volume;

/* Geometry of a fresh volume: identity affine, spacing 1. */
r3d_volume *r3d_volume_new(const int64_t dim[4], r3d_dtype dtype, r3d_error *err);
/* A zeroed 3D volume of dtype on like's grid (dim 0..2, affine, spacing)
 * with like's acquisition record; t = 1. */
r3d_volume *r3d_volume_new_like(const r3d_volume *like, r3d_dtype dtype, r3d_error *err);
void r3d_volume_free(r3d_volume *v);
r3d_volume *r3d_volume_copy(const r3d_volume *v, r3d_error *err);

int64_t r3d_volume_nvox(const r3d_volume *v); /* dim[0]*dim[1]*dim[2]*dim[3] */
size_t r3d_volume_bytes(const r3d_volume *v);

/* Set spacing_mm from the affine's column norms. */
void r3d_volume_update_spacing(r3d_volume *v);
/* The NIfTI RAS affine: diag(-1,-1,1,1) * ijk_to_lps. */
void r3d_volume_ijk_to_ras(const r3d_volume *v, double out[4][4]);
void r3d_volume_set_ijk_to_ras(r3d_volume *v, const double ras[4][4]);

/* A new volume with axes permuted and flipped so that the voxel axes run
 * as close as possible to R, A, S (nibabel's as_closest_canonical; dcm2niix
 * does the same to 3D MR acquisitions). Same voxels, same world positions. */
r3d_volume *r3d_volume_reorient_ras(const r3d_volume *v, r3d_error *err);
/* The pairing that reorientation uses: world axis w (R, A, S) is fed by
 * voxel axis perm[w], reversed when flip[w]. 0, or -1 for a degenerate
 * affine. */
int r3d_volume_ras_axes(const r3d_volume *v, int perm[3], int flip[3]);

/* Read voxel n as double (real units: slope/intercept applied). */
double r3d_volume_get(const r3d_volume *v, int64_t n);

/* ---- label maps --------------------------------------------------------- */

typedef struct r3d_label {
    uint16_t value;
    char name[64];    /* TotalSegmentator-style: "lung_upper_lobe_left" */
    char name_zh[64]; /* UTF-8 Chinese name */
    uint8_t rgb[3];
} r3d_label;

typedef struct r3d_label_table {
    r3d_label *v;
    int n, cap;
} r3d_label_table;

typedef struct r3d_labelmap {
    r3d_volume *vol; /* dtype R3D_U16, owned */
    r3d_label_table table;
} r3d_labelmap;

r3d_labelmap *r3d_labelmap_new(const r3d_volume *geometry, r3d_error *err); /* zeros, same grid */
void r3d_labelmap_free(r3d_labelmap *m);
r3d_status r3d_label_table_add(r3d_label_table *t, const r3d_label *l, r3d_error *err);
const r3d_label *r3d_label_table_find(const r3d_label_table *t, uint16_t value);
const r3d_label *r3d_label_table_find_name(const r3d_label_table *t, const char *name);
void r3d_label_table_clear(r3d_label_table *t);

#ifdef __cplusplus
}
#endif
#endif

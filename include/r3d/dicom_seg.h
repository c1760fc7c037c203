/* r3d/dicom_seg.h - results back into DICOM: Segmentation objects from label
 * maps (and back), and 3D models encapsulated as STL / OBJ / MTL instances.
 *
 * Source series: a SEG or a model belongs to the study of the images it was
 * made from, shares their frame of reference and names them. r3d_dcm_source
 * is that series read header-only: per image its SOP class and instance UID
 * and its plane (position, orientation, spacing), plus the patient and study
 * attributes the new objects copy.
 *
 * SEG (PS3.3 A.51, C.8.20): BINARY, one segment per label value present,
 * with the registry's name, CIELab colour and SNOMED CT codes (include/r3d/
 * seg.h). One frame per (segment, source image) where the segment has at
 * least one pixel, on the source image's own plane, grouped by segment and
 * ordered along the slice normal; shared functional groups carry the
 * orientation and pixel measures, per-frame groups the position, the
 * segment and the derivation image (the source instance). Labels are put on
 * the source planes by nearest neighbour, so a label map on the series' own
 * grid (what r3d_dicom_series_load gives) is transferred exactly.
 *
 * Encapsulated models (PS3.3 A.85 STL, A.86 OBJ, A.87 MTL): the mesh file
 * bytes from the mesh writers, with the frame of reference of the source,
 * the Manufacturing 3D Model module (units mm, no modification, no
 * mirroring, usage) and a reference to the source series.
 */
#ifndef R3D_DICOM_SEG_H
#define R3D_DICOM_SEG_H

#include "dicom_write.h"
#include "mesh.h"
#include "seg.h"

#ifdef __cplusplus
extern "C" {
#endif

#define R3D_SOP_SEG "1.2.840.10008.5.1.4.1.1.66.4"
/* Label Map Segmentation (2024: SegmentationType LABELMAP), read only */
#define R3D_SOP_LABELMAP_SEG "1.2.840.10008.5.1.4.1.1.66.7"
#define R3D_SOP_ENCAPSULATED_STL "1.2.840.10008.5.1.4.1.1.104.3"
#define R3D_SOP_ENCAPSULATED_OBJ "1.2.840.10008.5.1.4.1.1.104.4"
#define R3D_SOP_ENCAPSULATED_MTL "1.2.840.10008.5.1.4.1.1.104.5"

/* ---- the source series ------------------------------------------------------ */

typedef struct r3d_dcm_source_image {
    char sop_class[65];
    char sop_uid[65];
    double ipp[3]; /* ImagePositionPatient of the image (its first pixel's centre) */
    int src_index; /* the scanner's file record (internal) */
} r3d_dcm_source_image;

typedef struct r3d_dcm_source {
    char study_uid[65], series_uid[65], frame_of_reference_uid[65];
    char modality[17];
    int rows, cols;
    double iop[6];           /* row cosines, then column cosines */
    double pixel_spacing[2]; /* between rows, between columns (mm) */
    double slice_thickness;  /* NaN if unknown */
    r3d_dcm_source_image *img; /* ordered along the normal iop[0..2] x iop[3..5] */
    int n_img;
    /* Patient, study and frame-of-reference attributes copied into the new
     * objects (values as in the first image's file, character set included). */
    r3d_dcm_ds *header;
    /* Where the series was found (for r3d_dicom_series_load). */
    r3d_dicom_scan *scan;
    int scan_index;
} r3d_dcm_source;

/* The series with series_uid (NULL: the image series with most slices) under
 * path (folder, .zip or file). Only single-plane image series qualify (no
 * multi-frame or mosaic source, no tilted stacks: R3D_EUNSUPPORTED). */
r3d_dcm_source *r3d_dcm_source_open(const char *path, const char *series_uid, r3d_error *err);
void r3d_dcm_source_free(r3d_dcm_source *s);
/* The source's voxels and geometry (r3d_dicom_series_load). */
r3d_volume *r3d_dcm_source_load(const r3d_dcm_source *s, r3d_error *err);
/* Image k's file, parsed in full (to copy or de-identify it). */
r3d_dcm_file *r3d_dcm_source_open_image(const r3d_dcm_source *s, int k, r3d_error *err);

/* ---- SEG writer ----------------------------------------------------------------- */

typedef struct r3d_seg_write_opts {
    const char *series_description; /* NULL: "recon3d segmentation" */
    int series_number;               /* 0: 901 */
    const char *algorithm_name;      /* NULL: "recon3d" */
    const char *algorithm_version;   /* NULL: the library version */
    const char *series_uid;          /* NULL: a new one */
    const char *sop_uid;             /* NULL: a new one */
} r3d_seg_write_opts;
#define R3D_SEG_WRITE_OPTS_INIT {NULL, 0, NULL, NULL, NULL, NULL}

typedef struct r3d_seg_write_info {
    char sop_uid[65], series_uid[65];
    int n_segments, n_frames;
    int64_t n_outside; /* labelled voxels no source pixel samples (off the source planes) */
} r3d_seg_write_info;

/* A SEG data set for every non-zero label of labels (names, colours and
 * codes from the structure registry by value; labels the registry does not
 * know keep the label table's name, colour and a generic code, and their
 * value in SegmentDescription "recon3d label <v>"). R3D_ENOTFOUND when no
 * label has a voxel on a source plane. */
r3d_status r3d_seg_build(const r3d_labelmap *labels, const r3d_dcm_source *src,
                         const r3d_seg_write_opts *opts, r3d_dcm_ds **out,
                         r3d_seg_write_info *info, r3d_error *err);
/* r3d_seg_build + r3d_dcm_write_file (atomic). */
r3d_status r3d_seg_write(const r3d_labelmap *labels, const r3d_dcm_source *src,
                         const r3d_seg_write_opts *opts, const char *path,
                         r3d_seg_write_info *info, r3d_error *err);

/* sRGB (8 bit) <-> DICOM's scaled CIELab (PS3.3 C.10.7.1.1: L* 0..100 ->
 * 0..65535, a*, b* -128..127 -> 0..65535), via XYZ, chromatically adapted
 * from sRGB's D65 to the ICC profile connection space's D50 (Bradford). */
void r3d_srgb_to_dicom_lab(const uint8_t rgb[3], uint16_t lab[3]);
void r3d_dicom_lab_to_srgb(const uint16_t lab[3], uint8_t rgb[3]);

/* ---- SEG reader ------------------------------------------------------------------ */

typedef struct r3d_seg_segment {
    int number;       /* SegmentNumber */
    uint16_t value;   /* label value it was given in the label map */
    char label[64];   /* SegmentLabel (LO: at most 64 characters) */
    char type_code[2][65]; /* SegmentedPropertyType (value, scheme) */
    uint8_t rgb[3];   /* from RecommendedDisplayCIELabValue, else the registry's */
    int64_t voxels;   /* voxels set in the label map (after overlaps) */
} r3d_seg_segment;

typedef struct r3d_seg_read_info {
    char sop_uid[65], series_uid[65], frame_of_reference_uid[65];
    char referenced_series_uid[65];
    int fractional;     /* FRACTIONAL: thresholded at half the maximum */
    int n_frames;
    r3d_seg_segment *seg;
    int n_seg;
    int64_t n_overlap;  /* voxels claimed by more than one segment (later segment won) */
    int64_t n_outside;  /* set pixels that fall outside the reference grid */
} r3d_seg_read_info;
void r3d_seg_read_info_free(r3d_seg_read_info *info);

/* A DICOM SEG (BINARY or FRACTIONAL, any transfer syntax the reader
 * decodes, byte-aligned frames or not) into a label map.
 * Values: a segment whose SegmentLabel is a registry name (or whose
 * SegmentDescription is ours, "recon3d label <v>") gets that value; any
 * other segment its SegmentNumber. Overlapping segments: the later segment
 * (higher SegmentNumber) wins and the overlap is counted.
 * Grid: ref != NULL -> on ref's grid (voxel centres matched to the frames'
 * pixel centres by nearest neighbour); ref == NULL -> a grid from the SEG's
 * own frames: its planes, from the lowest to the highest frame position
 * along the normal, with the smallest distance between frame positions
 * (or SpacingBetweenSlices) as the slice step, rows flipped like
 * r3d_dicom_series_load does. The label table is filled from the registry
 * (or the segment's label and colour). */
r3d_status r3d_seg_read(const char *path, const r3d_volume *ref, r3d_labelmap **out,
                        r3d_seg_read_info *info, r3d_error *err);
r3d_status r3d_seg_read_file(const r3d_dcm_file *f, const r3d_volume *ref, r3d_labelmap **out,
                             r3d_seg_read_info *info, r3d_error *err);

/* ---- encapsulated 3D models ------------------------------------------------------- */

typedef enum r3d_model_kind { R3D_MODEL_STL = 0, R3D_MODEL_OBJ, R3D_MODEL_MTL } r3d_model_kind;

typedef struct r3d_model_opts {
    const char *series_uid;         /* NULL: a new one (share it across models of one export) */
    int series_number;              /* 0: 902 */
    int instance_number;            /* 0: 1 */
    const char *series_description; /* NULL: "recon3d 3D models" */
    const char *sop_uid;            /* NULL: a new one */
    /* OBJ: the SOP Instance UID of its MTL instance (referenced from the OBJ). */
    const char *mtl_sop_uid;
} r3d_model_opts;
#define R3D_MODEL_OPTS_INIT {NULL, 0, 0, NULL, NULL, NULL}

/* One encapsulated model instance of kind from the mesh file bytes doc (as
 * r3d_scene_write produced them; the frame of the mesh must be LPS, the
 * DICOM patient frame). title: the document title (structure name). */
r3d_status r3d_model_build(r3d_model_kind kind, const uint8_t *doc, size_t n, const char *title,
                           const r3d_dcm_source *src, const r3d_model_opts *opts,
                           r3d_dcm_ds **out, char sop_uid[65], r3d_error *err);

/* The mesh written by the mesh writers (STL binary, or OBJ + its MTL) and
 * returned as bytes: for STL, *doc; for OBJ, *doc and *mtl (caller frees). */
r3d_status r3d_mesh_file_bytes(const r3d_mesh *m, r3d_model_kind kind, uint8_t **doc, size_t *n,
                               uint8_t **mtl, size_t *mtl_n, r3d_error *err);


/* ---- one call: "export to DICOM" ----------------------------------------------------- */

/* SHA-256 (64 hex + NUL) of the bytes of source image k's file as read
 * (a store compares it with the hash it kept at import). */
r3d_status r3d_dcm_source_image_sha256(const r3d_dcm_source *s, int k, char hex[65],
                                       r3d_error *err);

typedef struct r3d_dicom_export_file {
    char rel[200];     /* <StudyUID>/<SeriesUID>/<SOPInstanceUID>.dcm under the output folder */
    char what[96];     /* "SEG", "model liver", "source image 3" */
    char sha256[65];   /* of the file's bytes */
    int64_t size;
} r3d_dicom_export_file;

typedef struct r3d_dicom_export_opts {
    int models;         /* 0 none, 1 Encapsulated STL (default), 2 Encapsulated OBJ + MTL */
    int deidentify;     /* everything (source series written beside) through one run */
    r3d_deid_opts deid;
    /* called after each file is written (e.g. to print or record it) */
    void (*on_file)(void *ctx, const r3d_dicom_export_file *f);
    void *ctx;
} r3d_dicom_export_opts;
#define R3D_DICOM_EXPORT_OPTS_INIT {1, 0, R3D_DEID_OPTS_INIT, NULL, NULL}

typedef struct r3d_dicom_export_result {
    r3d_seg_write_info seg;
    int n_models;                 /* meshes written (an OBJ and its MTL count once) */
    r3d_dicom_export_file *files; /* every file written, in order */
    int n_files;
} r3d_dicom_export_result;
void r3d_dicom_export_result_free(r3d_dicom_export_result *r);

/* labels (on a grid whose voxel centres the source pixels hit) and their
 * meshes (NULL: the surfaces of every label of labels' table, shared
 * boundaries, smoothing 5; meshes in LPS mm) into outdir as
 *   outdir/<StudyUID>/<SeriesUID>/<SOPInstanceUID>.dcm
 * one SEG and one encapsulated model per non-empty mesh, atomically. With
 * deidentify, the SEG, the models and every source image go through one
 * PS3.15 basic-profile run (the SEG and models name the de-identified
 * source, which is written beside) and outdir/deidentification.json says
 * what was done. Nothing is printed. On failure files already written stay
 * (each complete) and *res is emptied. */
r3d_status r3d_dicom_export(const r3d_labelmap *labels, const r3d_dcm_source *src,
                            const r3d_scene *meshes, const char *outdir,
                            const r3d_dicom_export_opts *opts, r3d_dicom_export_result *res,
                            r3d_error *err);

#ifdef __cplusplus
}
#endif
#endif

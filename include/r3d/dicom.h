/* r3d/dicom.h - reading DICOM: one file's data set, its pixels, and whole
 * series assembled into volumes with the geometry dcm2niix gives.
 *
 * Layers, bottom up:
 *   r3d_dcm_file    one Part 10 file (or bare data set) parsed into a tree of
 *                   elements; values point into the file's bytes.
 *   pixels          r3d_dcm_decode_frame: native or encapsulated frames
 *                   through the codecs (RLE, JPEG, JPEG-LS, JPEG 2000).
 *   r3d_dicom_scan  a folder, zip or file scanned and grouped into series.
 *   series load     slices ordered along the normal, checked, tilt-corrected,
 *                   rescaled: an r3d_volume with its acquisition record.
 */
#ifndef R3D_DICOM_H
#define R3D_DICOM_H

#include "volume.h"

#ifdef __cplusplus
extern "C" {
#endif

#define R3D_TAG(g, e) ((uint32_t)(((uint32_t)(g) << 16) | (uint32_t)(e)))
#define R3D_DCM_UNDEFINED 0xFFFFFFFFu
/* VR packed as two ASCII characters: R3D_VR('O','B') */
#define R3D_VR(a, b) ((uint16_t)(((uint16_t)(a) << 8) | (uint16_t)(b)))

typedef struct r3d_dcm_item r3d_dcm_item;

typedef struct r3d_dcm_el {
    uint32_t tag;
    uint16_t vr;          /* explicit VR from the file, else from the dictionary, else 0;
                             SQ for a UN/private element that was read as a sequence */
    uint32_t len;         /* value length; R3D_DCM_UNDEFINED for undefined-length SQ / pixels */
    const uint8_t *val;   /* value bytes in the file's byte order; NULL for SQ */
    uint64_t offset;      /* byte offset of the element header in the (inflated) stream */
    r3d_dcm_item *items;  /* SQ items */
    uint32_t n_items;
    /* Encapsulated pixel data: fragments in order, the Basic Offset Table
     * (first item, possibly empty) excluded and kept apart. */
    const uint8_t **frag;
    uint32_t *frag_len;
    uint32_t n_frag;
    const uint8_t *bot;   /* Basic Offset Table bytes, NULL if empty */
    uint32_t bot_len;
} r3d_dcm_el;

struct r3d_dcm_item {
    r3d_dcm_el *el; /* ascending tags (file order in a valid file; a file whose
                       tags are out of order is sorted, equal tags keep their
                       file order) */
    uint32_t n;
};

typedef struct r3d_dcm_file r3d_dcm_file; /* opaque; fields via accessors */

enum {
    /* Stop at the pixel data (7FE0,0010/0008/0009) without touching its
     * bytes: the element is present with tag, vr, len and offset (its length
     * checked against the file size) but val, frag and bot are NULL. */
    R3D_DCM_HEADER_ONLY = 1 << 0,
};

/* Parse a file (memory-mapped or read). The path is copied for messages.
 * Errors: R3D_EIO (cannot open), R3D_EFORMAT with a message naming the
 * element and byte offset, R3D_ENOMEM. A file that is not DICOM at all (no
 * DICM marker and no plausible first element, or empty) fails with
 * R3D_EFORMAT and the message "<path>: not a DICOM file (...)";
 * r3d_dcm_error_is_not_dicom() recognises that case (the scanner skips such
 * files quietly). */
r3d_dcm_file *r3d_dcm_open(const char *path, unsigned flags, r3d_error *err);
/* Parse bytes; takes ownership of buf (malloc'ed) when own != 0. */
r3d_dcm_file *r3d_dcm_parse(uint8_t *buf, size_t n, int own, const char *name,
                            unsigned flags, r3d_error *err);
void r3d_dcm_close(r3d_dcm_file *f);
/* Did r3d_dcm_open/parse fail because the input is not DICOM at all? */
int r3d_dcm_error_is_not_dicom(const r3d_error *err);

const char *r3d_dcm_path(const r3d_dcm_file *f);
const char *r3d_dcm_transfer_syntax(const r3d_dcm_file *f); /* UID, "" if none */
int r3d_dcm_big_endian(const r3d_dcm_file *f);
const r3d_dcm_item *r3d_dcm_root(const r3d_dcm_file *f);     /* the data set */
const r3d_dcm_item *r3d_dcm_meta(const r3d_dcm_file *f);     /* group 0002, may be empty */

/* Element lookup in one item (not recursive). NULL if absent. */
const r3d_dcm_el *r3d_dcm_find(const r3d_dcm_item *it, uint32_t tag);
/* Item k of sequence tag in it, or NULL. */
const r3d_dcm_item *r3d_dcm_seq_item(const r3d_dcm_item *it, uint32_t tag, uint32_t k);

/* String value, padding (spaces, NUL) trimmed both ends; index selects one of
 * backslash-separated values (-1 = whole value). Returns 1 if present and
 * non-empty, else 0 and out = "". Always NUL-terminates (truncates). */
int r3d_dcm_str(const r3d_dcm_file *f, const r3d_dcm_item *it, uint32_t tag, int index,
                char *out, size_t cap);
/* Numeric values: text VRs (DS, IS) parsed, binary VRs (US SS UL SL FL FD
 * and OB/OW/UN read per the dictionary VR) converted; up to max values.
 * Returns the number stored (0 if absent or unparsable). */
int r3d_dcm_num(const r3d_dcm_file *f, const r3d_dcm_item *it, uint32_t tag, double *out, int max);
/* Convenience: first value, or def if absent. */
double r3d_dcm_num1(const r3d_dcm_file *f, const r3d_dcm_item *it, uint32_t tag, double def);

/* Dictionary (the subset we use, plus VRs for implicit-VR parsing). */
uint16_t r3d_dcm_dict_vr(uint32_t tag);
const char *r3d_dcm_dict_name(uint32_t tag); /* keyword or NULL */
const char *r3d_dcm_ts_name(const char *uid);  /* "JPEG 2000 Lossless", or NULL if unknown */

/* ---- pixels ---------------------------------------------------------------- */

typedef struct r3d_dcm_pixinfo {
    int rows, cols, frames, samples;
    int bits_alloc, bits_stored, high_bit;
    int is_signed;     /* PixelRepresentation */
    int planar;        /* PlanarConfiguration (as stored) */
    int is_float;      /* Float (bits_alloc 32) / Double Float (64) Pixel Data */
    char photometric[17];
    int palette_bits;  /* PALETTE COLOR: 8 or 16 = bits of the LUT entries; the
                          decoded frame is RGB of that width. 0 otherwise. */
} r3d_dcm_pixinfo;

r3d_status r3d_dcm_pixinfo_get(const r3d_dcm_file *f, r3d_dcm_pixinfo *p, r3d_error *err);
/* Bytes one decoded frame needs: rows*cols*samples*out_bytes, where out_bytes
 * is 1 for bits_alloc <= 8 (incl. 1-bit), 2 for <= 16, 4 for 32, 8 for 64
 * (double); for PALETTE COLOR rows*cols*3*(palette_bits/8). 0 on overflow. */
size_t r3d_dcm_frame_bytes(const r3d_dcm_pixinfo *p);
/* Decode one frame: host byte order, samples interleaved (RGB for colour,
 * YBR converted to RGB, PALETTE COLOR expanded through its LUT), signed
 * values sign-extended from bits_stored, unsigned values masked to
 * bits_stored, 1-bit data one 0/1 byte per pixel, float data as stored.
 * Safe to call concurrently on different frames of the same file. */
r3d_status r3d_dcm_decode_frame(const r3d_dcm_file *f, const r3d_dcm_pixinfo *p, int frame,
                                void *out, size_t out_size, r3d_error *err);

/* ---- series ----------------------------------------------------------------- */

typedef struct r3d_scan_opts {
    int recursive;          /* descend into sub-folders (default 1) */
    int allow_institution;  /* copy InstitutionName into the record */
    int quiet;
    /* progress: called with (done, total) while scanning / loading */
    void (*progress)(void *ctx, const char *stage, int64_t done, int64_t total);
    void *progress_ctx;
} r3d_scan_opts;
#define R3D_SCAN_OPTS_INIT {1, 0, 0, NULL, NULL}

typedef struct r3d_series_info {
    char uid[65];
    char description[65];
    char modality[17];
    int series_number;
    int n_files;
    int n_slices;           /* after grouping; frames for multi-frame */
    int n_volumes;          /* time points / repeats (4D), 1 for a plain volume */
    int rows, cols;
    int multiframe;         /* enhanced multi-frame object */
    int mosaic;             /* Siemens mosaic */
    double spacing_mm[3];
    double ijk_to_lps[4][4];
    double gantry_tilt_deg;     /* 0 if none */
    int uneven_spacing;
    int missing_slices;
    char warnings[1024];    /* what is unusual, one sentence per line */
    r3d_acq acq;            /* acquisition record of the first image */
} r3d_series_info;

typedef struct r3d_dicom_scan r3d_dicom_scan;

/* path: a folder (tree), a .zip, or one file. Files that are not DICOM are
 * skipped and counted; unreadable DICOM files are reported in warnings. */
r3d_dicom_scan *r3d_dicom_scan_path(const char *path, const r3d_scan_opts *opts, r3d_error *err);
void r3d_dicom_scan_free(r3d_dicom_scan *s);
int r3d_dicom_scan_count(const r3d_dicom_scan *s);
const r3d_series_info *r3d_dicom_scan_info(const r3d_dicom_scan *s, int i);
const char *r3d_dicom_scan_warnings(const r3d_dicom_scan *s); /* about files, not series */
int r3d_dicom_scan_segmentations(const r3d_dicom_scan *s);   /* SEG objects seen (not series) */
int r3d_dicom_scan_find(const r3d_dicom_scan *s, const char *uid); /* index or -1 */

/* Build the volume of series i: voxels in real units when exact (CT in HU as
 * int16), geometry as dcm2niix's NIfTI, acquisition record filled. */
r3d_volume *r3d_dicom_series_load(const r3d_dicom_scan *s, int i, const r3d_scan_opts *opts,
                                  r3d_error *err);

/* Acquisition record as JSON text (malloc'ed), keys as dcm2niix's BIDS
 * sidecar where it has them. */
char *r3d_acq_to_json(const r3d_acq *a, const r3d_volume *v);

#ifdef __cplusplus
}
#endif
#endif

/* series.h - internals shared by scan.c (finding and grouping images) and
 * series.c (ordering, checking, geometry and loading a series). */
#ifndef R3D_SERIES_H
#define R3D_SERIES_H

#include "r3d/dicom.h"

/* One image frame: a single-frame file, one frame of an enhanced multi-frame
 * object, or one mosaic file (unpacked into slices at load time). */
typedef struct r3d_frame_rec {
    int src;    /* index into r3d_dicom_scan.src */
    int frame;  /* frame within that file (0 for single-frame) */
    char series_uid[65];
    char sop_uid[65];       /* SOPInstanceUID: copies of one image are dropped */
    int series_number;
    int is_signed, is_float;
    int rows, cols, samples, bits_alloc;
    int echo;               /* EchoNumbers (MR), 0 if none */
    char complex;           /* 'M'agnitude, 'P'hase, 'R'eal, 'I'maginary (ImageType) */
    int instance;           /* InstanceNumber, 0 if none */
    int temporal;           /* TemporalPositionIndex / AcquisitionNumber, 0 if none */
    int has_orient, has_pos;
    double iop[6];          /* row direction cosines, then column */
    double ipp[3];          /* ImagePositionPatient, LPS mm */
    double pixel_spacing[2];/* between rows, between columns */
    double slope, inter;
    double acq_time;        /* seconds since midnight, NaN if none */
    int multiframe;         /* frames in the enhanced object this frame is from, else 0 */
    int classic_frames;     /* classic multi-frame: frames this one record covers, else 1 */
    int mosaic;             /* number of slices in a Siemens mosaic, else 0 */
    int has_mosaic_normal;
    double mosaic_normal[3];
    double spacing_between; /* SpacingBetweenSlices, NaN if none */
    double thickness;       /* SliceThickness, NaN if none */
} r3d_frame_rec;

typedef struct r3d_src {
    char *path;             /* file path, or "archive.zip:entry" */
    uint8_t *mem;           /* zip entries live in memory */
    size_t mem_n;
    int not_dicom;
    int is_seg;             /* a segmentation or other derived object, not an image */
    char error[1024];       /* why a DICOM file could not be read */
    r3d_frame_rec *frames;
    int n_frames;
    r3d_acq acq;
} r3d_src;

typedef struct r3d_series {
    r3d_series_info info;
    int first, n;           /* frames[first .. first+n) in scan order, then sorted */
    int nz, nt;             /* slices per volume, volumes */
    int loadable;           /* 0 when the checks found it cannot form a volume */
    char error[512];        /* why not */
    double slice_step[3];   /* LPS vector from slice k to k+1, after ordering */
    double normal[3];
    int mosaic_descending;  /* CSA slice normal points against row x column */
    int rows, cols;         /* of one decoded slice (a tile for mosaics) */
    double raw_ijk_to_lps[4][4]; /* geometry of the decoded stack, before tilt correction */
} r3d_series;

struct r3d_dicom_scan {
    char *path;
    r3d_src *src;
    int n_src;
    int64_t cap_src;
    r3d_frame_rec *frames;
    int n_frames;
    int64_t cap_frames;
    r3d_series *series;
    int n_series;
    int64_t cap_series;
    char *warnings;
    int n_warnings;
    int n_not_dicom, n_bad, n_no_image, n_seg;
};

/* series.c */
void r3d_series_extract(const r3d_dcm_file *d, r3d_src *f, const r3d_scan_opts *opts);
void r3d_series_analyse(r3d_dicom_scan *s, r3d_series *g);
void r3d_series_warn(r3d_series *g, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif

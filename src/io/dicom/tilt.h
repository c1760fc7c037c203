/* tilt.h - gantry-tilt correction (tilt.c). */
#ifndef R3D_TILT_H
#define R3D_TILT_H
#include "series.h"

/* The in-plane shift per slice of a tilted stack, in rows (beta), and the
 * rows the corrected grid gains: ceil(|beta| * (nz-1)). col1 is the
 * volume's j column (LPS mm per row). */
int r3d_tilt_extra_rows(const r3d_series *g, const r3d_frame_rec *fr, const double col1[3],
                        double *beta, double *step_mm);

/* Resample a tilted stack onto an orthogonal grid; v has the sheared
 * geometry of series g (slice step not along the normal). New volume. */
r3d_volume *r3d_tilt_correct(const r3d_volume *v, const r3d_dicom_scan *s, const r3d_series *g,
                             r3d_error *err);
#endif

/* tilt.h - gantry-tilt correction (tilt.c). */
#ifndef R3D_TILT_H
#define R3D_TILT_H
#include "series.h"

/* Resample a tilted stack onto an orthogonal grid; v has the sheared
 * geometry of series g (slice step not along the normal). New volume. */
r3d_volume *r3d_tilt_correct(const r3d_volume *v, const r3d_dicom_scan *s, const r3d_series *g,
                             r3d_error *err);
#endif

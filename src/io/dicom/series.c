/* series.c - from grouped image frames to a volume with dcm2niix's geometry.
 *
 * Ordering: frames are sorted by their position along the slice normal
 * n = row x column (the cross product of ImageOrientationPatient's two
 * cosines), never by InstanceNumber: scanners renumber reconstructed series
 * and some count downwards. Frames sharing a position are time points (4D);
 * they are ordered by temporal index, acquisition time, then instance.
 *
 * Geometry, as dcm2niix writes it (its default: no reorientation, rows
 * flipped so the NIfTI is close to RAS):
 *   voxel (i, j, k) = column i, row (rows-1-j) of the k-th slice along n
 *   column 0 = row cosine * column spacing
 *   column 1 = -(column cosine) * row spacing
 *   column 2 = n * dz, dz = distance between the first two slices
 *   origin   = IPP(first) + (rows-1) * row spacing * column cosine
 * in LPS; the NIfTI writer turns it into RAS.
 *
 * Checks: uneven spacing (any gap off the median by more than 1 %), missing
 * slices (a gap over 1.5x the median), and gantry tilt (the line through the
 * slice positions is not along n). Tilted series are resampled onto an
 * orthogonal grid (tilt.c), as dcm2niix does.
 *
 * Siemens mosaics hold a whole volume in one image: tiles are unpacked, the
 * position of the first tile is corrected from the mosaic's corner, and the
 * slice normal comes from the CSA header.
 */
#include "series.h"
#include "tilt.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define T(g, e) R3D_TAG(0x##g, 0x##e)

void r3d_series_warn(r3d_series *g, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    size_t n = strlen(g->info.warnings);
    if (n + strlen(line) + 2 < sizeof g->info.warnings)
        snprintf(g->info.warnings + n, sizeof g->info.warnings - n, "%s%s", n ? "\n" : "",
                 line);
}

static void cross(const double a[3], const double b[3], double out[3])
{
    out[0] = a[1] * b[2] - a[2] * b[1];
    out[1] = a[2] * b[0] - a[0] * b[2];
    out[2] = a[0] * b[1] - a[1] * b[0];
}

static double dot(const double a[3], const double b[3])
{
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

static double norm3(const double a[3])
{
    return sqrt(dot(a, a));
}

/* "HHMMSS.frac" -> seconds since midnight. */
static double dicom_time(const char *t)
{
    if (strlen(t) < 2)
        return NAN;
    double h = 0, m = 0, s = 0;
    char buf[3] = {0};
    memcpy(buf, t, 2);
    h = atof(buf);
    if (strlen(t) >= 4) {
        memcpy(buf, t + 2, 2);
        m = atof(buf);
    }
    if (strlen(t) >= 6)
        s = atof(t + 4);
    return h * 3600 + m * 60 + s;
}

/* ---- Siemens CSA header: just what mosaics need ---------------------------------- */

/* Parse the SV10 CSA image header; returns 1 and fills what it finds. */
static int csa_read(const uint8_t *p, size_t n, int *n_mosaic, double normal[3], int *has_normal)
{
    if (n < 16 || memcmp(p, "SV10", 4) != 0)
        return 0;
    uint32_t ntags;
    memcpy(&ntags, p + 8, 4);
    size_t off = 16;
    for (uint32_t t = 0; t < ntags && t < 1000; t++) {
        if (off + 84 > n)
            return 1;
        char name[65];
        memcpy(name, p + off, 64);
        name[64] = 0;
        int32_t nitems;
        memcpy(&nitems, p + off + 76, 4);
        off += 84;
        for (int32_t k = 0; k < nitems && k < 1000; k++) {
            if (off + 16 > n)
                return 1;
            int32_t len;
            memcpy(&len, p + off + 4, 4); /* item length is stored in the 2nd int */
            off += 16;
            if (len < 0 || off + (size_t)len > n)
                return 1;
            char val[64] = {0};
            memcpy(val, p + off, (size_t)len < sizeof val - 1 ? (size_t)len : sizeof val - 1);
            if (len > 0) {
                if (strcmp(name, "NumberOfImagesInMosaic") == 0 && k == 0)
                    *n_mosaic = atoi(val);
                else if (strcmp(name, "SliceNormalVector") == 0 && k < 3) {
                    normal[k] = atof(val);
                    if (k == 2)
                        *has_normal = 1;
                }
            }
            off += ((size_t)len + 3) & ~(size_t)3;
        }
    }
    return 1;
}

static void find_csa(const r3d_dcm_file *d, const r3d_dcm_item *root, int *n_mosaic,
                     double normal[3], int *has_normal)
{
    /* The CSA image header is (0029,xx10) under the "SIEMENS CSA HEADER"
     * private creator; xx is 10 in practice but look the creator up. */
    for (uint32_t blk = 0x10; blk <= 0xFF; blk++) {
        char creator[65];
        if (!r3d_dcm_str(d, root, R3D_TAG(0x0029, blk), -1, creator, sizeof creator))
            continue;
        if (strcmp(creator, "SIEMENS CSA HEADER") != 0)
            continue;
        const r3d_dcm_el *e = r3d_dcm_find(root, R3D_TAG(0x0029, (blk << 8) | 0x10));
        if (e && e->val && e->len != R3D_DCM_UNDEFINED)
            csa_read(e->val, e->len, n_mosaic, normal, has_normal);
        return;
    }
}

/* ---- header pass --------------------------------------------------------------- */

static void str_into(const r3d_dcm_file *d, const r3d_dcm_item *it, uint32_t tag, char *out,
                     size_t cap)
{
    r3d_dcm_str(d, it, tag, -1, out, cap);
}

static void fill_acq(const r3d_dcm_file *d, const r3d_dcm_item *r, r3d_acq *a,
                     const r3d_scan_opts *opts)
{
    r3d_acq_init(a);
    str_into(d, r, T(0008, 0060), a->modality, sizeof a->modality);
    str_into(d, r, T(0008, 0070), a->manufacturer, sizeof a->manufacturer);
    str_into(d, r, T(0008, 1090), a->model, sizeof a->model);
    str_into(d, r, T(0008, 1010), a->station, sizeof a->station);
    if (opts && opts->allow_institution)
        str_into(d, r, T(0008, 0080), a->institution, sizeof a->institution);
    str_into(d, r, T(0020, 000E), a->series_uid, sizeof a->series_uid);
    str_into(d, r, T(0020, 000D), a->study_uid, sizeof a->study_uid);
    str_into(d, r, T(0020, 0052), a->frame_of_reference_uid, sizeof a->frame_of_reference_uid);
    str_into(d, r, T(0008, 103E), a->series_description, sizeof a->series_description);
    str_into(d, r, T(0018, 1030), a->protocol_name, sizeof a->protocol_name);
    str_into(d, r, T(0018, 0015), a->body_part, sizeof a->body_part);
    str_into(d, r, T(0018, 1210), a->kernel, sizeof a->kernel);
    str_into(d, r, T(0018, 0010), a->contrast_agent, sizeof a->contrast_agent);
    str_into(d, r, T(0018, 0024), a->sequence_name, sizeof a->sequence_name);
    str_into(d, r, T(0018, 0020), a->scanning_sequence, sizeof a->scanning_sequence);
    if (!r3d_dcm_str(d, r, T(0008, 0022), -1, a->acquisition_date, sizeof a->acquisition_date))
        if (!r3d_dcm_str(d, r, T(0008, 0021), -1, a->acquisition_date,
                         sizeof a->acquisition_date))
            str_into(d, r, T(0008, 0023), a->acquisition_date, sizeof a->acquisition_date);
    if (!r3d_dcm_str(d, r, T(0008, 0032), -1, a->acquisition_time, sizeof a->acquisition_time))
        str_into(d, r, T(0008, 0033), a->acquisition_time, sizeof a->acquisition_time);
    snprintf(a->transfer_syntax, sizeof a->transfer_syntax, "%s", r3d_dcm_transfer_syntax(d));
    str_into(d, r, T(0008, 0008), a->image_type, sizeof a->image_type);
    str_into(d, r, T(0018, 0023), a->mr_acquisition_type, sizeof a->mr_acquisition_type);
    a->series_number = (int)r3d_dcm_num1(d, r, T(0020, 0011), -1);
    a->kvp = r3d_dcm_num1(d, r, T(0018, 0060), NAN);
    a->tube_current_ma = r3d_dcm_num1(d, r, T(0018, 1151), NAN);
    a->exposure_mas = r3d_dcm_num1(d, r, T(0018, 1152), NAN);
    a->exposure_time_ms = r3d_dcm_num1(d, r, T(0018, 1150), NAN);
    a->slice_thickness_mm = r3d_dcm_num1(d, r, T(0018, 0050), NAN);
    a->spacing_between_slices_mm = r3d_dcm_num1(d, r, T(0018, 0088), NAN);
    r3d_dcm_num(d, r, T(0028, 0030), a->pixel_spacing_mm, 2);
    a->magnetic_field_t = r3d_dcm_num1(d, r, T(0018, 0087), NAN);
    a->repetition_time_ms = r3d_dcm_num1(d, r, T(0018, 0080), NAN);
    a->echo_time_ms = r3d_dcm_num1(d, r, T(0018, 0081), NAN);
    a->inversion_time_ms = r3d_dcm_num1(d, r, T(0018, 0082), NAN);
    a->flip_angle_deg = r3d_dcm_num1(d, r, T(0018, 1314), NAN);
    a->gantry_tilt_deg = r3d_dcm_num1(d, r, T(0018, 1120), NAN);
    a->rescale_slope = r3d_dcm_num1(d, r, T(0028, 1053), NAN);
    a->rescale_intercept = r3d_dcm_num1(d, r, T(0028, 1052), NAN);
}

/* In an enhanced object, an attribute of a functional group lives in the
 * frame's own item or, if constant, in the shared item. */
static const r3d_dcm_item *fg_item(const r3d_dcm_item *frame, const r3d_dcm_item *shared,
                                   uint32_t seq)
{
    const r3d_dcm_item *it = frame ? r3d_dcm_seq_item(frame, seq, 0) : NULL;
    if (!it && shared)
        it = r3d_dcm_seq_item(shared, seq, 0);
    return it;
}

/* Enhanced objects keep acquisition parameters in functional groups; copy
 * the ones the record needs where the top level lacks them. */
static void fill_acq_enhanced(const r3d_dcm_file *d, const r3d_dcm_item *shared,
                              const r3d_dcm_item *frame0, r3d_acq *a)
{
    const r3d_dcm_item *it;
    if ((it = fg_item(frame0, shared, T(0018, 9112)))) { /* MR timing */
        if (isnan(a->repetition_time_ms))
            a->repetition_time_ms = r3d_dcm_num1(d, it, T(0018, 0080), NAN);
        if (isnan(a->flip_angle_deg))
            a->flip_angle_deg = r3d_dcm_num1(d, it, T(0018, 1314), NAN);
    }
    if ((it = fg_item(frame0, shared, T(0018, 9114))) && isnan(a->echo_time_ms))
        a->echo_time_ms = r3d_dcm_num1(d, it, T(0018, 9082), NAN);
    if ((it = fg_item(frame0, shared, T(0028, 9110)))) {
        if (isnan(a->slice_thickness_mm))
            a->slice_thickness_mm = r3d_dcm_num1(d, it, T(0018, 0050), NAN);
        if (isnan(a->spacing_between_slices_mm))
            a->spacing_between_slices_mm = r3d_dcm_num1(d, it, T(0018, 0088), NAN);
        if (isnan(a->pixel_spacing_mm[0]))
            r3d_dcm_num(d, it, T(0028, 0030), a->pixel_spacing_mm, 2);
    }
    if ((it = fg_item(frame0, shared, T(0018, 9325))) && isnan(a->exposure_time_ms))
        a->exposure_time_ms = r3d_dcm_num1(d, it, T(0018, 1150), NAN);
    if ((it = fg_item(frame0, shared, T(0018, 9321)))) { /* CT exposure */
        if (isnan(a->exposure_mas))
            a->exposure_mas = r3d_dcm_num1(d, it, T(0018, 9332), NAN);
        if (isnan(a->tube_current_ma))
            a->tube_current_ma = r3d_dcm_num1(d, it, T(0018, 9330), NAN);
    }
    if ((it = fg_item(frame0, shared, T(0018, 9304))) && isnan(a->kvp))
        a->kvp = r3d_dcm_num1(d, it, T(0018, 0060), NAN);
    if ((it = fg_item(frame0, shared, T(0018, 9314))) && !a->kernel[0])
        r3d_dcm_str(d, it, T(0018, 1210), -1, a->kernel, sizeof a->kernel);
    if ((it = fg_item(frame0, shared, T(0028, 9145))) && isnan(a->rescale_slope)) {
        a->rescale_slope = r3d_dcm_num1(d, it, T(0028, 1053), NAN);
        a->rescale_intercept = r3d_dcm_num1(d, it, T(0028, 1052), NAN);
    }
}

/* Which part of a complex MR signal an image holds, from ImageType. Vendors
 * spell it "P", "PHASE", "SW_P" or "SW_P_FFE" (Philips); magnitude and phase
 * share positions and SeriesInstanceUID, yet are different volumes. */
static char complex_part(const r3d_dcm_file *d, const r3d_dcm_item *r)
{
    char tok[65];
    for (int i = 2; i < 8; i++) {
        if (!r3d_dcm_str(d, r, R3D_TAG(0x0008, 0x0008), i, tok, sizeof tok))
            continue;
        if (!strcmp(tok, "P") || !strcmp(tok, "PHASE") || strstr(tok, "_P_") ||
            (strlen(tok) > 2 && !strcmp(tok + strlen(tok) - 2, "_P")))
            return 'P';
        if (!strcmp(tok, "R") || !strcmp(tok, "REAL"))
            return 'R';
        if (!strcmp(tok, "I") || !strcmp(tok, "IMAGINARY"))
            return 'I';
    }
    return 'M';
}

/* Philips MR stores a private scale slope (2005,100E) on top of the rescale:
 * the "floating point" value FP = (SV*RS + RI) / (RS*SS) is proportional to
 * the MR signal, while the rescaled display value is not comparable between
 * scans. dcm2niix writes FP by default (its "Philips precise"), so do we:
 * slope 1/SS, intercept RI/(RS*SS). Returns the scale slope or 0. */
static double philips_scale_slope(const r3d_dcm_file *d, const r3d_dcm_item *it)
{
    const r3d_dcm_el *e = it ? r3d_dcm_find(it, R3D_TAG(0x2005, 0x100E)) : NULL;
    if (!e || !e->val || e->len != 4)
        return 0;
    uint8_t b[4];
    memcpy(b, e->val, 4);
    if (r3d_dcm_big_endian(d)) {
        uint8_t t = b[0]; b[0] = b[3]; b[3] = t;
        t = b[1]; b[1] = b[2]; b[2] = t;
    }
    float f;
    memcpy(&f, b, 4);
    return isfinite(f) && f != 0 ? f : 0;
}

static void philips_precise(r3d_frame_rec *x, double ss)
{
    if (ss == 0 || x->slope == 0)
        return;
    x->inter = x->inter / (x->slope * ss);
    x->slope = 1.0 / ss;
}

static int is_philips_mr(const r3d_dcm_file *d, const r3d_dcm_item *r)
{
    char m[65], mod[17];
    r3d_dcm_str(d, r, T(0008, 0070), -1, m, sizeof m);
    r3d_dcm_str(d, r, T(0008, 0060), -1, mod, sizeof mod);
    return strncasecmp(m, "Philips", 7) == 0 && strcmp(mod, "MR") == 0;
}

static void rec_common(const r3d_dcm_file *d, const r3d_dcm_item *r, r3d_frame_rec *x,
                       const r3d_dcm_pixinfo *p)
{
    memset(x, 0, sizeof *x);
    r3d_dcm_str(d, r, T(0020, 000E), -1, x->series_uid, sizeof x->series_uid);
    x->series_number = (int)r3d_dcm_num1(d, r, T(0020, 0011), 0);
    r3d_dcm_str(d, r, T(0008, 0018), -1, x->sop_uid, sizeof x->sop_uid);
    x->rows = p->rows;
    x->cols = p->cols;
    x->is_signed = p->is_signed;
    x->is_float = p->is_float;
    x->samples = p->samples;
    x->bits_alloc = p->bits_alloc;
    x->echo = (int)r3d_dcm_num1(d, r, T(0018, 0086), 0);
    x->complex = complex_part(d, r);
    x->instance = (int)r3d_dcm_num1(d, r, T(0020, 0013), 0);
    x->temporal = (int)r3d_dcm_num1(d, r, T(0020, 0012), 0);
    x->has_orient = r3d_dcm_num(d, r, T(0020, 0037), x->iop, 6) == 6;
    x->has_pos = r3d_dcm_num(d, r, T(0020, 0032), x->ipp, 3) == 3;
    x->pixel_spacing[0] = x->pixel_spacing[1] = NAN;
    if (r3d_dcm_num(d, r, T(0028, 0030), x->pixel_spacing, 2) < 2)
        /* Projection images carry ImagerPixelSpacing instead. */
        if (r3d_dcm_num(d, r, T(0018, 1164), x->pixel_spacing, 2) < 2)
            x->pixel_spacing[0] = x->pixel_spacing[1] = NAN;
    x->slope = r3d_dcm_num1(d, r, T(0028, 1053), 1.0);
    x->inter = r3d_dcm_num1(d, r, T(0028, 1052), 0.0);
    if (x->slope == 0)
        x->slope = 1.0; /* a zero slope is an encoder bug, not a black image */
    char t[32];
    x->acq_time = NAN;
    if (r3d_dcm_str(d, r, T(0008, 0032), -1, t, sizeof t) ||
        r3d_dcm_str(d, r, T(0008, 0033), -1, t, sizeof t))
        x->acq_time = dicom_time(t);
    x->spacing_between = r3d_dcm_num1(d, r, T(0018, 0088), NAN);
    x->thickness = r3d_dcm_num1(d, r, T(0018, 0050), NAN);
}

void r3d_series_extract(const r3d_dcm_file *d, r3d_src *f, const r3d_scan_opts *opts)
{
    const r3d_dcm_item *r = r3d_dcm_root(d);
    r3d_dcm_pixinfo p;
    r3d_error err = R3D_ERROR_INIT;
    fill_acq(d, r, &f->acq, opts);
    int has_pixels = r3d_dcm_find(r, T(7FE0, 0010)) || r3d_dcm_find(r, T(7FE0, 0008)) ||
                     r3d_dcm_find(r, T(7FE0, 0009));
    if (!has_pixels) {
        /* An image header without pixels is a cut file, not an RT plan. */
        if (r3d_dcm_find(r, T(0028, 0010)) && r3d_dcm_find(r, T(0028, 0011)))
            snprintf(f->error, sizeof f->error,
                     "%s: image attributes but no pixel data (file truncated?)",
                     r3d_dcm_path(d));
        return; /* no image: RT structure set, SR, ... */
    }
    if (r3d_dcm_pixinfo_get(d, &p, &err) != R3D_OK) {
        snprintf(f->error, sizeof f->error, "%s", err.msg);
        return;
    }
    char sop[65] = "";
    r3d_dcm_str(d, r, T(0008, 0016), -1, sop, sizeof sop);
    /* Segmentations (SEG, label-map SEG) and other 1.1.66.x objects are
     * results about images, not images of the patient. */
    char mod[17] = "";
    r3d_dcm_str(d, r, T(0008, 0060), -1, mod, sizeof mod);
    if (strncmp(sop, "1.2.840.10008.5.1.4.1.1.66", 26) == 0 || strcmp(mod, "SEG") == 0) {
        f->is_seg = 1;
        return;
    }

    const r3d_dcm_item *pf0 = r3d_dcm_seq_item(r, T(5200, 9230), 0);
    const r3d_dcm_item *shared = r3d_dcm_seq_item(r, T(5200, 9229), 0);
    int enhanced = p.frames > 1 && pf0 != NULL;
    int n = enhanced ? p.frames : 1;
    f->frames = calloc((size_t)n, sizeof *f->frames);
    if (!f->frames) {
        snprintf(f->error, sizeof f->error, "%s: out of memory", r3d_dcm_path(d));
        return;
    }
    f->n_frames = n;
    if (!enhanced) {
        r3d_frame_rec *x = &f->frames[0];
        rec_common(d, r, x, &p);
        if (is_philips_mr(d, r))
            philips_precise(x, philips_scale_slope(d, r));
        /* Classic multi-frame (ultrasound cine, NM): frames without
         * per-frame geometry. One record; the loader stacks them along k. */
        x->classic_frames = p.frames > 1 ? p.frames : 1;
        char itype[129];
        r3d_dcm_str(d, r, T(0008, 0008), -1, itype, sizeof itype);
        if (strstr(itype, "MOSAIC")) {
            int nm = 0, hn = 0;
            double nv[3] = {0, 0, 0};
            find_csa(d, r, &nm, nv, &hn);
            if (nm > 1) {
                x->mosaic = nm;
                x->has_mosaic_normal = hn;
                memcpy(x->mosaic_normal, nv, sizeof nv);
            }
        }
        return;
    }
    fill_acq_enhanced(d, shared, pf0, &f->acq);
    int philips = is_philips_mr(d, r);
    for (int k = 0; k < n; k++) {
        r3d_frame_rec *x = &f->frames[k];
        const r3d_dcm_item *pf = r3d_dcm_seq_item(r, T(5200, 9230), (uint32_t)k);
        const r3d_dcm_item *it;
        rec_common(d, r, x, &p);
        x->classic_frames = 1;
        x->frame = k;
        x->multiframe = n;
        if ((it = fg_item(pf, shared, T(0020, 9116))))
            x->has_orient = r3d_dcm_num(d, it, T(0020, 0037), x->iop, 6) == 6;
        if ((it = fg_item(pf, shared, T(0020, 9113))))
            x->has_pos = r3d_dcm_num(d, it, T(0020, 0032), x->ipp, 3) == 3;
        if ((it = fg_item(pf, shared, T(0028, 9110)))) {
            r3d_dcm_num(d, it, T(0028, 0030), x->pixel_spacing, 2);
            x->thickness = r3d_dcm_num1(d, it, T(0018, 0050), x->thickness);
            x->spacing_between = r3d_dcm_num1(d, it, T(0018, 0088), x->spacing_between);
        }
        if ((it = fg_item(pf, shared, T(0028, 9145)))) {
            x->slope = r3d_dcm_num1(d, it, T(0028, 1053), 1.0);
            x->inter = r3d_dcm_num1(d, it, T(0028, 1052), 0.0);
            if (x->slope == 0)
                x->slope = 1.0;
        }
        if (philips && (it = fg_item(pf, shared, T(2005, 140F))))
            philips_precise(x, philips_scale_slope(d, it));
        if ((it = fg_item(pf, NULL, T(0020, 9111)))) {
            double tpi = r3d_dcm_num1(d, it, T(0020, 9128), 0);
            x->temporal = (int)tpi;
            char dt[32];
            if (r3d_dcm_str(d, it, T(0018, 9074), -1, dt, sizeof dt) && strlen(dt) > 8)
                x->acq_time = dicom_time(dt + 8);
            /* Stack position breaks ties when positions repeat. */
            x->instance = (int)r3d_dcm_num1(d, it, T(0020, 9057), k + 1);
        } else {
            x->instance = k + 1;
        }
        if ((it = fg_item(pf, shared, T(0018, 9114))))
            x->echo = (int)lround(1000 * r3d_dcm_num1(d, it, T(0018, 9082), 0));
    }
}

/* ---- ordering and checks ---------------------------------------------------------- */

typedef struct sort_key {
    double d;
    r3d_frame_rec rec;
} sort_key;

static int cmp_pos(const void *pa, const void *pb)
{
    const sort_key *a = pa, *b = pb;
    if (fabs(a->d - b->d) > 1e-4)
        return a->d < b->d ? -1 : 1;
    if (a->rec.temporal != b->rec.temporal)
        return a->rec.temporal < b->rec.temporal ? -1 : 1;
    if (!isnan(a->rec.acq_time) && !isnan(b->rec.acq_time) && a->rec.acq_time != b->rec.acq_time)
        return a->rec.acq_time < b->rec.acq_time ? -1 : 1;
    if (a->rec.instance != b->rec.instance)
        return a->rec.instance < b->rec.instance ? -1 : 1;
    if (a->rec.src != b->rec.src)
        return a->rec.src < b->rec.src ? -1 : 1;
    return a->rec.frame - b->rec.frame;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void fail_series(r3d_series *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->error, sizeof g->error, fmt, ap);
    va_end(ap);
    g->loadable = 0;
}

void r3d_series_analyse(r3d_dicom_scan *s, r3d_series *g)
{
    r3d_frame_rec *fr = s->frames + g->first;
    r3d_frame_rec *f0 = &fr[0];
    r3d_src *src0 = &s->src[f0->src];
    r3d_series_info *in = &g->info;
    g->loadable = 1;
    snprintf(in->uid, sizeof in->uid, "%s", f0->series_uid);
    snprintf(in->description, sizeof in->description, "%s", src0->acq.series_description);
    snprintf(in->modality, sizeof in->modality, "%s", src0->acq.modality);
    in->series_number = f0->series_number;
    in->acq = src0->acq;
    in->acq.n_files = 0;
    in->rows = f0->rows;
    in->cols = f0->cols;
    in->mosaic = f0->mosaic > 1;
    in->multiframe = f0->multiframe > 1;
    {
        int nf = 0, last = -1;
        for (int i = 0; i < g->n; i++)
            if (fr[i].src != last) {
                nf++;
                last = fr[i].src;
            }
        in->n_files = nf;
        in->acq.n_files = nf;
    }

    double row[3] = {1, 0, 0}, col[3] = {0, 1, 0}, nrm[3];
    if (f0->has_orient) {
        memcpy(row, f0->iop, sizeof row);
        memcpy(col, f0->iop + 3, sizeof col);
    } else {
        r3d_series_warn(g, "no ImageOrientationPatient: geometry assumed axial");
    }
    double rn = norm3(row), cn = norm3(col);
    if (rn < 1e-3 || cn < 1e-3) {
        fail_series(g, "series %s: ImageOrientationPatient is not a pair of unit vectors",
                    in->uid);
        return;
    }
    for (int i = 0; i < 3; i++) {
        row[i] /= rn;
        col[i] /= cn;
    }
    cross(row, col, nrm);
    if (fabs(dot(row, col)) > 0.01)
        r3d_series_warn(g, "row and column directions are not perpendicular (cos = %.3f)",
                        dot(row, col));
    double dy = f0->pixel_spacing[0], dx = f0->pixel_spacing[1];
    if (!(dx > 0) || !(dy > 0)) {
        r3d_series_warn(g, "no PixelSpacing: 1 mm assumed");
        dx = dy = 1.0;
    }

    /* Order frames along the normal. */
    sort_key *k = malloc((size_t)g->n * sizeof *k);
    if (!k) {
        fail_series(g, "out of memory");
        return;
    }
    for (int i = 0; i < g->n; i++) {
        k[i].rec = fr[i];
        k[i].d = fr[i].has_pos ? dot(fr[i].ipp, nrm) : (double)fr[i].instance;
    }
    qsort(k, (size_t)g->n, sizeof *k, cmp_pos);
    /* The same image twice (a study exported into two folders, a file
     * copied): copies sort next to each other; keep one. */
    int kept = 0, dups = 0;
    for (int i = 0; i < g->n; i++) {
        if (kept > 0 && k[i].rec.sop_uid[0] &&
            strcmp(k[i].rec.sop_uid, k[kept - 1].rec.sop_uid) == 0 &&
            k[i].rec.frame == k[kept - 1].rec.frame) {
            dups++;
            continue;
        }
        k[kept++] = k[i];
    }
    if (dups) {
        r3d_series_warn(g, "%d duplicate image%s (same SOPInstanceUID) ignored", dups,
                        dups == 1 ? "" : "s");
        g->n = kept;
    }
    for (int i = 0; i < g->n; i++)
        fr[i] = k[i].rec;

    /* Positions repeating = time points. */
    int npos = 1;
    for (int i = 1; i < g->n; i++)
        if (fabs(k[i].d - k[i - 1].d) > 1e-4)
            npos++;
    g->nz = npos;
    g->nt = g->n / npos;
    if (npos > 1 && g->n % npos != 0) {
        fail_series(g,
                    "series %s: %d images at %d positions: some positions have more images "
                    "than others (incomplete acquisition or mixed series)",
                    in->uid, g->n, npos);
        free(k);
        return;
    }
    if (g->nt > 1) {
        /* Time-major order: volume t holds the t-th image at each position. */
        int ok = 1;
        for (int z = 0; z < npos && ok; z++)
            for (int t = 1; t < g->nt; t++)
                if (fabs(k[z * g->nt + t].d - k[z * g->nt].d) > 1e-4)
                    ok = 0;
        if (!ok) {
            fail_series(g, "series %s: images do not repeat evenly over %d positions", in->uid,
                        npos);
            free(k);
            return;
        }
        for (int z = 0; z < npos; z++)
            for (int t = 0; t < g->nt; t++)
                fr[t * npos + z] = k[z * g->nt + t].rec;
    }
    if (!f0->has_pos && g->n > 1)
        r3d_series_warn(g, "no ImagePositionPatient: slices ordered by InstanceNumber");

    double dz = NAN;
    memcpy(g->normal, nrm, sizeof nrm);
    if (f0->mosaic > 1) {
        g->nz = f0->mosaic;
        g->nt = g->n;
        dz = !isnan(f0->spacing_between) && f0->spacing_between > 0 ? f0->spacing_between
                                                                    : f0->thickness;
        if (!(dz > 0))
            dz = 1.0;
        if (f0->has_mosaic_normal && norm3(f0->mosaic_normal) > 0.5) {
            /* The CSA normal can point against row x column: then the tiles
             * are in descending order; the loader reverses them. */
            if (dot(f0->mosaic_normal, nrm) < 0)
                g->mosaic_descending = 1;
        }
        for (int i = 0; i < 3; i++)
            g->slice_step[i] = nrm[i] * dz;
    } else if (npos > 1) {
        /* dcm2niix: dz is the distance between the first two slices. */
        double *gaps = malloc((size_t)(npos - 1) * sizeof *gaps);
        int z = 0;
        for (int i = 1; i < g->n && gaps; i++)
            if (fabs(k[i].d - k[i - 1].d) > 1e-4)
                gaps[z++] = k[i].d - k[i - 1].d;
        if (gaps) {
            dz = gaps[0];
            double *sorted = malloc((size_t)z * sizeof *sorted);
            if (sorted) {
                memcpy(sorted, gaps, (size_t)z * sizeof *sorted);
                qsort(sorted, (size_t)z, sizeof *sorted, cmp_double);
                double med = sorted[z / 2], lo = sorted[0], hi = sorted[z - 1];
                if (hi > 1.5 * med) {
                    in->missing_slices = 1;
                    r3d_series_warn(g,
                                    "slice missing: a gap of %.3f mm where slices are %.3f mm "
                                    "apart",
                                    hi, med);
                }
                if (hi - lo > 0.01 * med + 1e-3) {
                    in->uneven_spacing = 1;
                    r3d_series_warn(g, "uneven slice spacing: %.3f to %.3f mm (median %.3f)", lo,
                                    hi, med);
                }
                free(sorted);
            }
            free(gaps);
        }
        /* Slice direction from the first to the last position. */
        const r3d_frame_rec *a = &fr[0], *b = &fr[(npos - 1)];
        double v[3] = {b->ipp[0] - a->ipp[0], b->ipp[1] - a->ipp[1], b->ipp[2] - a->ipp[2]};
        double vn = norm3(v);
        double c = vn > 0 ? dot(v, nrm) / vn : 1.0;
        double tilt = acos(c > 1 ? 1 : c) * 180.0 / M_PI;
        if (a->has_pos && tilt > 0.1) {
            in->gantry_tilt_deg = tilt;
            r3d_series_warn(g, "gantry tilt of %.2f degrees: resampled onto an orthogonal grid",
                            tilt);
        }
        for (int i = 0; i < 3; i++)
            g->slice_step[i] = nrm[i] * dz;
    } else {
        dz = !isnan(f0->spacing_between) && f0->spacing_between > 0 ? f0->spacing_between
                                                                    : f0->thickness;
        if (!(dz > 0))
            dz = 1.0;
        for (int i = 0; i < 3; i++)
            g->slice_step[i] = nrm[i] * dz;
    }
    free(k);
    if (f0->classic_frames > 1) {
        /* Classic multi-frame objects: one file is one stack of slices;
         * several such files are time points. */
        g->nz = f0->classic_frames;
        g->nt = g->n;
        for (int i = 1; i < g->n; i++)
            if (fr[i].classic_frames != f0->classic_frames) {
                fail_series(g, "series %s: multi-frame files with different frame counts",
                            in->uid);
                return;
            }
        r3d_series_warn(g, "multi-frame image without per-frame geometry: frames stacked %s",
                        f0->has_pos ? "along the slice normal" : "with 1 mm spacing");
    }

    /* The affine (LPS), rows flipped as dcm2niix does. */
    int rows = f0->rows, cols = f0->cols;
    double ipp0[3] = {0, 0, 0};
    if (f0->has_pos)
        memcpy(ipp0, fr[0].ipp, sizeof ipp0);
    if (f0->mosaic > 1) {
        int tiles = (int)ceil(sqrt((double)f0->mosaic));
        rows = f0->rows / tiles;
        cols = f0->cols / tiles;
        for (int i = 0; i < 3; i++) {
            ipp0[i] += row[i] * dx * (f0->cols - cols) / 2.0 + col[i] * dy * (f0->rows - rows) / 2.0;
            /* Reversed tiles: the first slice is the last tile. */
            if (g->mosaic_descending)
                ipp0[i] -= g->slice_step[i] * (g->nz - 1);
        }
        in->rows = rows;
        in->cols = cols;
    }
    double (*m)[4] = in->ijk_to_lps;
    memset(m, 0, sizeof in->ijk_to_lps);
    for (int i = 0; i < 3; i++) {
        m[i][0] = row[i] * dx;
        m[i][1] = -col[i] * dy;
        m[i][2] = g->slice_step[i];
        m[i][3] = ipp0[i] + col[i] * dy * (rows - 1);
    }
    m[3][3] = 1;
    in->spacing_mm[0] = dx;
    in->spacing_mm[1] = dy;
    in->spacing_mm[2] = dz;
    in->n_slices = g->nz;
    in->n_volumes = g->nt;
    if (g->nz == 1 && g->nt > 1 && f0->mosaic <= 1)
        r3d_series_warn(g, "all %d images lie at one position: not a 3D volume (kept as %d "
                           "time points of one slice)", g->nt, g->nt);
    else if (g->nz == 2)
        r3d_series_warn(g, "only 2 slices: too thin for a 3D reconstruction");
    g->rows = rows;
    g->cols = cols;
    memcpy(g->raw_ijk_to_lps, in->ijk_to_lps, sizeof g->raw_ijk_to_lps);
    if (in->gantry_tilt_deg > 0) {
        /* Report the grid the correction will produce. */
        double col1[3] = {m[0][1], m[1][1], m[2][1]}, beta, step;
        int extra = r3d_tilt_extra_rows(g, fr, col1, &beta, &step);
        in->rows += extra;
        if (beta < 0)
            for (int i = 0; i < 3; i++)
                m[i][3] -= col1[i] * extra;
    }
}

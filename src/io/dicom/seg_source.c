/* seg_source.c - the source series of a SEG or an encapsulated model, read
 * header-only: per image its SOP class / instance UID and plane, and the
 * patient, study and frame-of-reference attributes the derived objects copy.
 *
 * The series is found by the scanner (scan.c / series.c), which has already
 * ordered its images along the slice normal; we only re-read each image's
 * header for its SOP Class UID (the scanner does not keep it) and take the
 * rest from the scanner's frame records. Zip entries and .gz files are read
 * from the memory the scanner keeps.
 */
#include "series.h"
#include "r3d/dicom_seg.h"
#include "r3d/input.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T(g, e) R3D_TAG(0x##g, 0x##e)

static r3d_dcm_file *open_src(const r3d_src *f, unsigned flags, r3d_error *err)
{
    if (f->mem)
        return r3d_dcm_parse(f->mem, f->mem_n, 0, f->path, flags, err);
    return r3d_dcm_open(f->path, flags, err);
}

/* Attributes of the Patient, General Study, Patient Study and Frame of
 * Reference modules a derived object in the same study repeats; the Type 2
 * ones are written empty when the source lacks them. */
static const struct {
    uint32_t tag;
    int type2;
} k_copied[] = {
    {T(0008, 0005), 0}, /* SpecificCharacterSet: the copied bytes are in it */
    {T(0008, 0020), 1}, /* StudyDate */
    {T(0008, 0030), 1}, /* StudyTime */
    {T(0008, 0050), 1}, /* AccessionNumber */
    {T(0008, 0090), 1}, /* ReferringPhysicianName */
    {T(0008, 1030), 0}, /* StudyDescription */
    {T(0010, 0010), 1}, /* PatientName */
    {T(0010, 0020), 1}, /* PatientID */
    {T(0010, 0021), 0}, /* IssuerOfPatientID */
    {T(0010, 0030), 1}, /* PatientBirthDate */
    {T(0010, 0040), 1}, /* PatientSex */
    {T(0010, 1010), 0}, /* PatientAge */
    {T(0010, 1020), 0}, /* PatientSize */
    {T(0010, 1030), 0}, /* PatientWeight */
    {T(0012, 0062), 0}, /* PatientIdentityRemoved (a de-identified source stays so) */
    {T(0012, 0063), 0}, /* DeidentificationMethod */
    {T(0020, 000D), 0}, /* StudyInstanceUID (checked below) */
    {T(0020, 0010), 1}, /* StudyID */
    {T(0020, 0052), 0}, /* FrameOfReferenceUID (checked below) */
    {T(0020, 1040), 1}, /* PositionReferenceIndicator */
};

static r3d_status copy_header(const r3d_dcm_file *f, r3d_dcm_ds *h, r3d_error *err)
{
    const r3d_dcm_item *root = r3d_dcm_root(f);
    for (size_t i = 0; i < sizeof k_copied / sizeof k_copied[0]; i++) {
        const r3d_dcm_el *e = r3d_dcm_find(root, k_copied[i].tag);
        r3d_status st = R3D_OK;
        uint16_t vr = r3d_dcm_dict_vr(k_copied[i].tag);
        int empty = !e || !e->val || e->len == 0;
        if (k_copied[i].tag == T(0008, 0005) && empty)
            continue; /* an empty character set is a Type 1C error: leave it out */
        if (!empty && e->len != R3D_DCM_UNDEFINED && e->vr != R3D_VR('S', 'Q')) {
            /* Text values are byte-order free: copied as they are (the
             * character set comes along in (0008,0005)). Trailing padding
             * is dropped; the writer pads again. */
            size_t n = e->len;
            while (n && (e->val[n - 1] == ' ' || e->val[n - 1] == 0))
                n--;
            st = r3d_dcm_ds_put_text(h, k_copied[i].tag, vr, e->val, n, err);
        } else if (k_copied[i].type2) {
            st = r3d_dcm_ds_put_str(h, k_copied[i].tag, vr, "", err);
        }
        if (st != R3D_OK)
            return st;
    }
    /* DeidentificationMethodCodeSequence goes with the two above; a
     * sequence is not copied, so neither is the method text. */
    r3d_dcm_ds_remove(h, T(0012, 0063));
    return R3D_OK;
}

r3d_dcm_source *r3d_dcm_source_open(const char *path, const char *series_uid, r3d_error *err)
{
    r3d_scan_opts so = R3D_SCAN_OPTS_INIT;
    so.quiet = 1;
    r3d_dicom_scan *scan = r3d_dicom_scan_path(path, &so, err);
    if (!scan)
        return NULL;
    r3d_dcm_source *s = calloc(1, sizeof *s);
    if (!s) {
        r3d_dicom_scan_free(scan);
        return r3d_fail(err, R3D_ENOMEM, "%s: out of memory", path), NULL;
    }
    s->scan = scan;
    s->slice_thickness = NAN;
    if (scan->n_series == 0) {
        r3d_fail(err, R3D_ENOTFOUND, "%s: no image series", path);
        goto fail;
    }
    int gi = r3d_dicom_scan_pick(scan, series_uid, err);
    if (gi < 0)
        goto fail;
    s->scan_index = gi;
    const r3d_series *g = &scan->series[gi];
    const r3d_series_info *in = &g->info;
    if (!g->loadable) {
        r3d_fail(err, R3D_EDATA, "%s: series %s is not a volume (%s)", path, in->uid, g->error);
        goto fail;
    }
    if (in->multiframe || in->mosaic || g->nt != 1) {
        r3d_fail(err, R3D_EUNSUPPORTED,
                 "%s: series %s: multi-frame, mosaic or 4D sources are not supported for "
                 "derived objects", path, in->uid);
        goto fail;
    }
    const r3d_frame_rec *fr = &scan->frames[g->first];
    if (!fr[0].has_orient || !fr[0].has_pos) {
        r3d_fail(err, R3D_EDATA, "%s: series %s: images without position or orientation",
                 path, in->uid);
        goto fail;
    }
    s->img = calloc((size_t)g->n, sizeof *s->img);
    s->header = r3d_dcm_ds_new();
    if (!s->img || !s->header) {
        r3d_fail(err, R3D_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    s->n_img = g->n;
    s->rows = fr[0].rows;
    s->cols = fr[0].cols;
    memcpy(s->iop, fr[0].iop, sizeof s->iop);
    memcpy(s->pixel_spacing, fr[0].pixel_spacing, sizeof s->pixel_spacing);
    s->slice_thickness = fr[0].thickness;
    snprintf(s->series_uid, sizeof s->series_uid, "%s", in->uid);
    snprintf(s->modality, sizeof s->modality, "%s", in->modality);
    for (int i = 0; i < g->n; i++) {
        const r3d_src *f = &scan->src[fr[i].src];
        r3d_dcm_file *d = open_src(f, R3D_DCM_HEADER_ONLY, err);
        if (!d)
            goto fail;
        const r3d_dcm_item *root = r3d_dcm_root(d);
        r3d_dcm_str(d, root, T(0008, 0016), -1, s->img[i].sop_class, sizeof s->img[i].sop_class);
        if (!s->img[i].sop_class[0]) /* only in the meta, as some writers leave it */
            r3d_dcm_str(d, r3d_dcm_meta(d), T(0002, 0002), -1, s->img[i].sop_class,
                        sizeof s->img[i].sop_class);
        snprintf(s->img[i].sop_uid, sizeof s->img[i].sop_uid, "%s", fr[i].sop_uid);
        memcpy(s->img[i].ipp, fr[i].ipp, sizeof s->img[i].ipp);
        s->img[i].src_index = fr[i].src;
        if (i == 0) {
            r3d_dcm_str(d, root, T(0020, 000D), -1, s->study_uid, sizeof s->study_uid);
            r3d_dcm_str(d, root, T(0020, 0052), -1, s->frame_of_reference_uid,
                        sizeof s->frame_of_reference_uid);
            r3d_status st = copy_header(d, s->header, err);
            if (st != R3D_OK) {
                r3d_dcm_close(d);
                goto fail;
            }
        }
        if (!s->img[i].sop_uid[0])
            r3d_dcm_str(d, r3d_dcm_meta(d), T(0002, 0003), -1, s->img[i].sop_uid,
                        sizeof s->img[i].sop_uid);
        r3d_dcm_close(d);
        if (!s->img[i].sop_class[0] || !s->img[i].sop_uid[0]) {
            r3d_fail(err, R3D_EDATA, "%s: image %d of series %s has no SOP class or instance UID",
                     path, i + 1, in->uid);
            goto fail;
        }
        if (fr[i].rows != s->rows || fr[i].cols != s->cols ||
            fabs(fr[i].pixel_spacing[0] - s->pixel_spacing[0]) > 1e-4 ||
            fabs(fr[i].pixel_spacing[1] - s->pixel_spacing[1]) > 1e-4) {
            r3d_fail(err, R3D_EDATA, "%s: series %s: images differ in size or pixel spacing",
                     path, in->uid);
            goto fail;
        }
    }
    if (!s->study_uid[0] || !s->series_uid[0]) {
        r3d_fail(err, R3D_EDATA,
                 "%s: the source images have no StudyInstanceUID or SeriesInstanceUID: a "
                 "derived object could not name its study and series", path);
        goto fail;
    }
    if (!s->frame_of_reference_uid[0]) {
        /* A derived object must share the source's frame of reference; one
         * we invented would claim a registration nobody made. */
        r3d_fail(err, R3D_EDATA, "%s: series %s has no FrameOfReferenceUID", path, in->uid);
        goto fail;
    }
    return s;
fail:
    r3d_dcm_source_free(s);
    return NULL;
}

void r3d_dcm_source_free(r3d_dcm_source *s)
{
    if (!s)
        return;
    free(s->img);
    r3d_dcm_ds_free(s->header);
    r3d_dicom_scan_free(s->scan);
    free(s);
}

r3d_volume *r3d_dcm_source_load(const r3d_dcm_source *s, r3d_error *err)
{
    r3d_scan_opts so = R3D_SCAN_OPTS_INIT;
    so.quiet = 1;
    return r3d_dicom_series_load(s->scan, s->scan_index, &so, err);
}

r3d_dcm_file *r3d_dcm_source_open_image(const r3d_dcm_source *s, int k, r3d_error *err)
{
    if (!s || k < 0 || k >= s->n_img)
        return r3d_fail(err, R3D_EARG, "source image %d does not exist", k + 1), NULL;
    return open_src(&s->scan->src[s->img[k].src_index], 0, err);
}

/* acq_json.c - the acquisition record (clause 4.2.2) as a JSON sidecar.
 * Keys follow dcm2niix's BIDS sidecar where it has one, so tools that read
 * those files read ours; keys it lacks use the DICOM keyword. Unknown values
 * are left out, never written as 0 or "". No patient identity is written.
 */
#include "r3d/dicom.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add_str(cJSON *o, const char *k, const char *v)
{
    if (v && *v)
        cJSON_AddStringToObject(o, k, v);
}

static void add_num(cJSON *o, const char *k, double v)
{
    if (!isnan(v))
        cJSON_AddNumberToObject(o, k, v);
}

/* "HHMMSS.ffffff" -> "HH:MM:SS.ffffff" as BIDS writes times. */
static void add_time(cJSON *o, const char *k, const char *t)
{
    char out[32];
    size_t n = strlen(t);
    if (n < 6) {
        add_str(o, k, t);
        return;
    }
    snprintf(out, sizeof out, "%.2s:%.2s:%s", t, t + 2, t + 4);
    cJSON_AddStringToObject(o, k, out);
}

char *r3d_acq_to_json(const r3d_acq *a, const r3d_volume *v)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    add_str(o, "Modality", a->modality);
    add_str(o, "Manufacturer", a->manufacturer);
    add_str(o, "ManufacturersModelName", a->model);
    add_str(o, "StationName", a->station);
    add_str(o, "InstitutionName", a->institution);
    add_str(o, "BodyPartExamined", a->body_part);
    add_str(o, "SeriesDescription", a->series_description);
    add_str(o, "ProtocolName", a->protocol_name);
    if (a->series_number >= 0)
        cJSON_AddNumberToObject(o, "SeriesNumber", a->series_number);
    add_str(o, "SeriesInstanceUID", a->series_uid);
    add_str(o, "StudyInstanceUID", a->study_uid);
    add_str(o, "FrameOfReferenceUID", a->frame_of_reference_uid);
    if (a->image_type[0]) {
        cJSON *arr = cJSON_AddArrayToObject(o, "ImageType");
        char buf[sizeof a->image_type];
        snprintf(buf, sizeof buf, "%s", a->image_type);
        for (char *tok = strtok(buf, "\\"); tok; tok = strtok(NULL, "\\"))
            cJSON_AddItemToArray(arr, cJSON_CreateString(tok));
    }
    add_str(o, "AcquisitionDate", a->acquisition_date);
    if (a->acquisition_time[0])
        add_time(o, "AcquisitionTime", a->acquisition_time);
    add_str(o, "ConvolutionKernel", a->kernel);
    add_num(o, "KVP", a->kvp);
    add_num(o, "XRayTubeCurrent", a->tube_current_ma);
    add_num(o, "XRayExposure", a->exposure_mas);
    if (!isnan(a->exposure_time_ms))
        cJSON_AddNumberToObject(o, "ExposureTime", a->exposure_time_ms / 1000.0);
    add_str(o, "ContrastBolusAgent", a->contrast_agent);
    add_num(o, "MagneticFieldStrength", a->magnetic_field_t);
    add_str(o, "SequenceName", a->sequence_name);
    add_str(o, "ScanningSequence", a->scanning_sequence);
    add_str(o, "MRAcquisitionType", a->mr_acquisition_type);
    /* BIDS states times in seconds. */
    if (!isnan(a->repetition_time_ms))
        cJSON_AddNumberToObject(o, "RepetitionTime", a->repetition_time_ms / 1000.0);
    if (!isnan(a->echo_time_ms))
        cJSON_AddNumberToObject(o, "EchoTime", a->echo_time_ms / 1000.0);
    if (!isnan(a->inversion_time_ms))
        cJSON_AddNumberToObject(o, "InversionTime", a->inversion_time_ms / 1000.0);
    add_num(o, "FlipAngle", a->flip_angle_deg);
    add_num(o, "SliceThickness", a->slice_thickness_mm);
    add_num(o, "SpacingBetweenSlices", a->spacing_between_slices_mm);
    if (!isnan(a->pixel_spacing_mm[0])) {
        cJSON *arr = cJSON_AddArrayToObject(o, "PixelSpacing");
        cJSON_AddItemToArray(arr, cJSON_CreateNumber(a->pixel_spacing_mm[0]));
        cJSON_AddItemToArray(arr, cJSON_CreateNumber(a->pixel_spacing_mm[1]));
    }
    add_num(o, "GantryDetectorTilt", a->gantry_tilt_deg);
    add_num(o, "RescaleSlope", a->rescale_slope);
    add_num(o, "RescaleIntercept", a->rescale_intercept);
    add_str(o, "TransferSyntaxUID", a->transfer_syntax);
    if (a->n_files > 0)
        cJSON_AddNumberToObject(o, "NumberOfFiles", a->n_files);
    if (v) {
        cJSON *g = cJSON_AddObjectToObject(o, "Geometry");
        cJSON *d = cJSON_AddArrayToObject(g, "Dimensions");
        for (int i = 0; i < 4 && (i < 3 || v->dim[3] > 1); i++)
            cJSON_AddItemToArray(d, cJSON_CreateNumber((double)v->dim[i]));
        cJSON *s = cJSON_AddArrayToObject(g, "VoxelSizeMM");
        for (int i = 0; i < 3; i++)
            cJSON_AddItemToArray(s, cJSON_CreateNumber(v->spacing_mm[i]));
        double ras[4][4];
        r3d_volume_ijk_to_ras(v, ras);
        cJSON *m = cJSON_AddArrayToObject(g, "AffineRAS");
        for (int i = 0; i < 4; i++) {
            cJSON *row = cJSON_CreateArray();
            for (int j = 0; j < 4; j++)
                cJSON_AddItemToArray(row, cJSON_CreateNumber(ras[i][j]));
            cJSON_AddItemToArray(m, row);
        }
        cJSON_AddStringToObject(g, "DataType", r3d_dtype_name(v->dtype));
    }
    cJSON_AddStringToObject(o, "ConversionSoftware", "recon3d");
    cJSON_AddStringToObject(o, "ConversionSoftwareVersion", r3d_version());
    char *txt = cJSON_Print(o);
    cJSON_Delete(o);
    return txt;
}

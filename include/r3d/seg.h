/* r3d/seg.h - anatomy: the structure registry (names, Chinese names,
 * colours, label values, SNOMED CT codes) and automatic segmentation.
 *
 * The registry (src/seg/structures.c) is the only place structure names,
 * colours and codes live; label maps, meshes, DICOM SEG, reports and the web
 * UI all take them from here. Names follow TotalSegmentator where it has the
 * structure ("lung_upper_lobe_left", "vertebrae_T7", "rib_left_5"), and so do
 * label values (its "total" task numbering), so our label maps and its are
 * directly comparable. Structures it lacks (body, skin, lung_left, airway
 * generations, pulmonary vessels, nodules) have values from 200 up (200..217
 * body/lungs/airway/vessels/bones, 220..237 the bronchopulmonary segments
 * "lung_segment_right_s1".."lung_segment_left_s10"); the k-th lung nodule of
 * a study is R3D_LABEL_NODULE_FIRST + k - 1, "lung_nodule_<k>". Where the
 * codes come from: src/seg/structures.c and docs/dicom-output.md. */
#ifndef R3D_SEG_H
#define R3D_SEG_H

#include "core.h"
#include "volume.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A coded concept as DICOM writes it: (CodeValue, CodingSchemeDesignator,
 * CodeMeaning), e.g. {"39607008", "SCT", "Lung"}. Empty strings = none. */
typedef struct r3d_code {
    const char *value;
    const char *scheme;
    const char *meaning;
} r3d_code;

typedef struct r3d_structure {
    uint16_t value;       /* label value */
    const char *name;     /* "lung_upper_lobe_left" */
    const char *name_zh;  /* "左肺上叶" */
    uint8_t rgb[3];
    r3d_code category;    /* SEG SegmentedPropertyCategoryCodeSequence */
    r3d_code type;        /* SEG SegmentedPropertyTypeCodeSequence */
    r3d_code modifier;    /* laterality etc. (SCT 7771000 left, 24028007 right) */
    /* Where a finding is (SEG AnatomicRegionSequence and its modifier), for
     * structures whose type is not itself anatomy: a kidney cyst's kidney,
     * a nodule's lung, the lung of the pulmonary vessels. Empty otherwise. */
    r3d_code region;
    r3d_code region_modifier;
} r3d_structure;

#define R3D_LABEL_NODULE_FIRST 1000
#define R3D_LABEL_NODULE_MAX 1999

/* The fixed structures (TotalSegmentator's 117, then ours from 200), in
 * value order; nodules are not among them. */
int r3d_structure_count(void);
const r3d_structure *r3d_structure_at(int i);
/* By name; also TotalSegmentator's names of our merged structures
 * ("lung_trachea_bronchia" = airway, "lung_vessels" = pulmonary_vessels)
 * and "lung_nodule_<k>" for k = 1..1000. NULL if unknown. */
const r3d_structure *r3d_structure_find(const char *name);
/* By label value; a nodule value v gives the entry of nodule
 * k = v - R3D_LABEL_NODULE_FIRST + 1 (name "lung_nodule_<k>", Chinese
 * "肺结节<k>", its own colour, the nodule codes). NULL if unknown. */
const r3d_structure *r3d_structure_by_value(uint16_t value);
/* The label-table entry (value, name, Chinese name, colour) of a structure. */
void r3d_structure_label(const r3d_structure *s, r3d_label *out);

/* ---- automatic segmentation ---------------------------------------------- */

typedef struct r3d_seg_opts {
    const char *structures; /* comma-separated names or groups ("lungs", "airway",
                               "bones", "vessels", "nodules", "body"); NULL = all;
                               "segments" (not in all) puts the lung segments in
                               place of their lobe's label */
    void (*progress)(void *ctx, const char *stage, int64_t done, int64_t total);
    void *progress_ctx;
} r3d_seg_opts;

typedef struct r3d_seg_result {
    r3d_labelmap *labels; /* on the input's grid */
    char *report_json;    /* structures found/absent with volumes, trees'
                             per-generation branch counts, nodules with their
                             measurements, timings, parameters */
} r3d_seg_result;

/* A CT volume in HU (any orientation) -> labels. Structures not in the field
 * of view are reported absent, never invented. */
r3d_status r3d_segment_ct(const r3d_volume *ct, const r3d_seg_opts *opts, r3d_seg_result *out,
                          r3d_error *err);
void r3d_seg_result_free(r3d_seg_result *r);

#ifdef __cplusplus
}
#endif
#endif

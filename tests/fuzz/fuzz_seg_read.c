/* fuzz_seg_read.c - fuzz target for the DICOM SEG reader: r3d_dcm_parse on a
 * copy of the input, then r3d_seg_read_file twice, on the SEG's own grid
 * (built from its frame positions) and on a small fixed reference grid (as
 * `export-dicom --seg-to-labels --source` does). Every allocation is
 * released on every path, so LeakSanitizer flags a leak in the reader.
 *
 * Corpus: tests/fuzz/corpus/fuzz_seg_read/, SEGs of a few KB made from a
 * synthetic 3-slice 16x12 CT series (no patient data) by `recon3d
 * export-dicom` (BINARY; two and three segments, one overlapping, one sparse,
 * one with an unknown label), plus variants edited with pydicom: FRACTIONAL,
 * byte-aligned frames, deflated transfer syntax, LABELMAP SOP class; the
 * replay runner adds tests/data/bad.
 */
#include "r3d/dicom_seg.h"

#include <stdlib.h>
#include <string.h>

static r3d_volume *reference(void)
{
    /* 16 x 12 x 3 at 0.8 mm in-plane, 2.5 mm slices, axial, origin at the
     * corpus series' first pixel (rows flipped like r3d_dicom_series_load) */
    int64_t dim[4] = {16, 12, 3, 1};
    r3d_volume *v = r3d_volume_new(dim, R3D_U8, NULL);
    if (!v)
        return NULL;
    double m[4][4] = {{0.8, 0, 0, -6.0}, {0, -0.8, 0, 4.4}, {0, 0, 2.5, -100}, {0, 0, 0, 1}};
    memcpy(v->ijk_to_lps, m, sizeof m);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *f = r3d_dcm_parse(copy, size, 1, "fuzz.dcm", 0, &err);
    if (!f)
        return 0;
    r3d_volume *ref = reference();
    for (int pass = 0; pass < 2; pass++) {
        r3d_labelmap *lm = NULL;
        r3d_seg_read_info info;
        memset(&info, 0, sizeof info);
        if (r3d_seg_read_file(f, pass ? ref : NULL, &lm, &info, &err) == R3D_OK) {
            r3d_labelmap_free(lm);
            r3d_seg_read_info_free(&info);
        }
    }
    r3d_volume_free(ref);
    r3d_dcm_close(f);
    return 0;
}

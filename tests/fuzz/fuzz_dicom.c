/* fuzz_dicom.c - fuzz target for the DICOM reader: r3d_dcm_parse on a copy
 * of the input, then the pixel description and, when a frame is small
 * (<= 4 MiB), the decoding of frame 0 and of the last frame, through the
 * codecs for encapsulated data. Every allocation is released on every path,
 * so LeakSanitizer flags a leak in the reader.
 *
 * Corpus: tests/fuzz/corpus/fuzz_dicom/, tiny files in every encoding
 * (ELE, ILE, EBE, deflated, no meta, nested SQ, UN SQ, encapsulated with a
 * BOT, 1-bit, YBR planar) written by `test_dicom_parse --write-seeds DIR`;
 * the replay runner adds tests/data/bad (the dicom_* broken files).
 */
#include "r3d/dicom.h"

#include <stdlib.h>
#include <string.h>

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
    char s[80];
    double v[16];
    const r3d_dcm_item *root = r3d_dcm_root(f);
    r3d_dcm_str(f, root, R3D_TAG(0x0020, 0x0032), 1, s, sizeof s);
    r3d_dcm_num(f, root, R3D_TAG(0x0020, 0x0037), v, 16);
    r3d_dcm_seq_item(root, R3D_TAG(0x5200, 0x9230), 0);
    r3d_dcm_pixinfo p;
    if (r3d_dcm_pixinfo_get(f, &p, &err) == R3D_OK) {
        size_t fb = r3d_dcm_frame_bytes(&p);
        if (fb > 0 && fb <= ((size_t)4 << 20)) {
            void *out = malloc(fb);
            if (out) {
                r3d_dcm_decode_frame(f, &p, 0, out, fb, &err);
                if (p.frames > 1)
                    r3d_dcm_decode_frame(f, &p, p.frames - 1, out, fb, &err);
                free(out);
            }
        }
    }
    r3d_dcm_close(f);
    return 0;
}

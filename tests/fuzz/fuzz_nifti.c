/* fuzz_nifti.c - libFuzzer target for the NIfTI reader (r3d_nifti_read_mem),
 * gunzip included: any bytes must give a volume or an error, never a crash,
 * a leak or an allocation the input does not justify. CTest replays the
 * corpus (tests/fuzz/corpus/fuzz_nifti: tiny valid NIfTI-1/2, big-endian,
 * gzip, RGB, int64 files) and tests/data/bad through it with replay_main.c.
 */
#include "r3d/nifti.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    r3d_error err = R3D_ERROR_INIT;
    r3d_volume *v = r3d_nifti_read_mem(data, size, "fuzz.nii", &err);
    if (v) {
        /* touch the geometry and every voxel byte, so a wrong size shows */
        volatile double sink = v->ijk_to_lps[0][0] + v->spacing_mm[2];
        volatile uint8_t acc = 0;
        const uint8_t *p = v->voxels;
        for (size_t i = 0, n = r3d_volume_bytes(v); i < n; i++)
            acc ^= p[i];
        (void)sink;
        (void)acc;
        r3d_volume_free(v);
    } else if (err.code == R3D_OK || !err.msg[0]) {
        __builtin_trap(); /* a failure must always say why */
    }
    return 0;
}

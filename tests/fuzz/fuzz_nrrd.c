/* fuzz_nrrd.c - libFuzzer target for the NRRD reader (r3d_nrrd_read_mem),
 * gzip and ASCII data included: any bytes must give a volume or an error,
 * never a crash, a leak or an allocation the input does not justify. CTest
 * replays the corpus (tests/fuzz/corpus/fuzz_nrrd: tiny raw, gzip, ASCII,
 * big-endian, 2-D, RGB and 4-D files) and tests/data/bad through it with
 * replay_main.c.
 */
#include "r3d/nifti.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    r3d_error err = R3D_ERROR_INIT;
    r3d_volume *v = r3d_nrrd_read_mem(data, size, "fuzz.nrrd", &err);
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

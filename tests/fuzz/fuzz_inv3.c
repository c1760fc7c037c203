/* fuzz_inv3.c - libFuzzer target for the InVesalius project reader
 * (r3d_inv3_read_mem: gzip, tar, plist, raw matrices): any bytes give a
 * volume (and maybe masks) or an error that says why - never a crash, a
 * leak or an allocation the input does not justify. Seeds are written by
 * `test_inv3 --write-seeds tests/fuzz/corpus/fuzz_inv3`. */
#include "r3d/nifti.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    r3d_error err = R3D_ERROR_INIT;
    r3d_labelmap *masks = NULL;
    r3d_volume *v = r3d_inv3_read_mem(data, size, "fuzz.inv3", &masks, &err);
    if (v) {
        volatile uint8_t acc = 0;
        const uint8_t *p = v->voxels;
        for (size_t i = 0, n = r3d_volume_bytes(v); i < n; i++)
            acc ^= p[i];
        (void)acc;
        r3d_volume_free(v);
        r3d_labelmap_free(masks);
    } else if (err.code == R3D_OK || !err.msg[0]) {
        __builtin_trap(); /* a failure must always say why */
    }
    return 0;
}

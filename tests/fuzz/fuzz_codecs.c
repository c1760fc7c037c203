/* fuzz_codecs.c - fuzz target for the pixel codecs (RLE, JPEG in all its
 * processes, JPEG-LS, JPEG 2000/HTJ2K) behind r3d_codec_decode.
 *
 * Input layout: a 6-byte header picks the codec and the frame the DICOM
 * header would describe, the rest is the compressed frame:
 *   byte 0     codec: 0 RLE, 1 JPEG, 2 JPEG-LS, 3 JPEG 2000 (mod 4)
 *   byte 1     bit 0: 3 samples (else 1); bits 1-2: BitsAllocated/Stored
 *              8/8, 16/12, 16/16, and 1/1 or (bit 6 set) 32/32; bit 3:
 *              signed; bits 4-5: photometric MONOCHROME2, RGB, YBR_FULL,
 *              YBR_FULL_422
 *   bytes 2-3  rows - 1, big-endian, mod 1024
 *   bytes 4-5  columns - 1, big-endian, mod 1024
 * so the fuzzer explores both hostile streams and streams that disagree
 * with their header. The output buffer is exactly the frame's size, so
 * AddressSanitizer catches any write past it.
 *
 * Corpus: tests/fuzz/corpus/fuzz_codecs/, small streams from the unit
 * tests' encoders (`test_codecs --write-seeds DIR`): RLE 1/8/16/32-bit,
 * lossless JPEG with restarts and SSSS=16, baseline/progressive/12-bit
 * DCT, JPEG-LS in each interleave mode, J2K and JP2.
 */
/* codec.h is internal to the library (src/), which fuzz targets do not get
 * on their include path; reach it relative to this file. */
#include "../../src/io/dicom/codec.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const r3d_codec_kind kinds[4] = {R3D_CODEC_RLE, R3D_CODEC_JPEG, R3D_CODEC_JPEGLS,
                                            R3D_CODEC_J2K};
    static const char *photometric[4] = {"MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422"};
    static const int bits[4][2] = {{8, 8}, {16, 12}, {16, 16}, {1, 1}};
    if (size < 6)
        return 0;
    const uint8_t f = data[1];
    r3d_codec_frame fr;
    fr.samples = (f & 1) ? 3 : 1;
    fr.bits_alloc = bits[(f >> 1) & 3][0];
    fr.bits_stored = bits[(f >> 1) & 3][1];
    if (((f >> 1) & 3) == 3 && (f & 0x40))
        fr.bits_alloc = fr.bits_stored = 32;
    fr.is_signed = (f >> 3) & 1;
    fr.planar = 0;
    fr.photometric = photometric[(f >> 4) & 3];
    fr.rows = 1 + (((int)data[2] << 8 | data[3]) % 1024);
    fr.cols = 1 + (((int)data[4] << 8 | data[5]) % 1024);
    const size_t bytes = fr.bits_alloc <= 8 ? 1 : fr.bits_alloc <= 16 ? 2 : 4;
    const size_t out_size = (size_t)fr.rows * (size_t)fr.cols * (size_t)fr.samples * bytes;
    uint8_t *out = malloc(out_size);
    if (!out)
        return 0;
    r3d_error err = R3D_ERROR_INIT;
    r3d_codec_decode(kinds[data[0] & 3], data + 6, size - 6, &fr, out, out_size, "fuzz", &err);
    free(out);
    return 0;
}

/* dcmpix.c - test tool: decode every frame of one DICOM file.
 *
 *   dcmpix FILE [OUT.raw]
 *
 * Prints the pixel description as one line of JSON on stdout
 * ({"rows":..,"cols":..,"frames":..,...,"ts":"..","frame_bytes":..}) and, if
 * OUT is given, writes all frames back to back as decoded by
 * r3d_dcm_decode_frame (host order = little endian on our machines).
 * On failure prints {"error":"R3D_E...","message":"..."} and exits 1.
 * The golden test tests/e2e/dicom_pixels_golden.py compares OUT with pydicom.
 */
#include "r3d/dicom.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static int fail(const r3d_error *e)
{
    printf("{\"error\":\"%s\",\"message\":", r3d_status_name(e->code));
    json_str(e->msg);
    printf("}\n");
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: dcmpix FILE [OUT.raw]\n");
        return 2;
    }
    r3d_error err = R3D_ERROR_INIT;
    r3d_dcm_file *f = r3d_dcm_open(argv[1], 0, &err);
    if (!f)
        return fail(&err);
    r3d_dcm_pixinfo p;
    if (r3d_dcm_pixinfo_get(f, &p, &err) != R3D_OK) {
        r3d_dcm_close(f);
        return fail(&err);
    }
    size_t fb = r3d_dcm_frame_bytes(&p);
    FILE *o = NULL;
    uint8_t *buf = NULL;
    if (argc == 3) {
        buf = malloc(fb);
        o = fopen(argv[2], "wb");
        if (!buf || !o) {
            fprintf(stderr, "dcmpix: cannot write %s\n", argv[2]);
            return 2;
        }
        for (int k = 0; k < p.frames; k++) {
            if (r3d_dcm_decode_frame(f, &p, k, buf, fb, &err) != R3D_OK) {
                fclose(o);
                free(buf);
                r3d_dcm_close(f);
                return fail(&err);
            }
            fwrite(buf, 1, fb, o);
        }
        fclose(o);
        free(buf);
    }
    const char *ts = r3d_dcm_transfer_syntax(f);
    printf("{\"rows\":%d,\"cols\":%d,\"frames\":%d,\"samples\":%d,\"bits_alloc\":%d,"
           "\"bits_stored\":%d,\"high_bit\":%d,\"is_signed\":%d,\"planar\":%d,\"is_float\":%d,"
           "\"palette_bits\":%d,\"photometric\":",
           p.rows, p.cols, p.frames, p.samples, p.bits_alloc, p.bits_stored, p.high_bit,
           p.is_signed, p.planar, p.is_float, p.palette_bits);
    json_str(p.photometric);
    printf(",\"ts\":");
    json_str(ts);
    printf(",\"big_endian\":%d,\"frame_bytes\":%zu}\n", r3d_dcm_big_endian(f), fb);
    r3d_dcm_close(f);
    return 0;
}

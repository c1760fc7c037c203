/* imgtool.c - runs one libr3d image operation on a NIfTI for the scipy
 * golden test (tests/e2e/image_scipy.py):
 *   imgtool distance|fill IN OUT
 *   imgtool dilate|erode|open|close IN OUT RADIUS_MM
 *   imgtool label IN OUT CONNECTIVITY      (uint32 labels)
 *   imgtool gaussian IN OUT SIGMA_MM
 *   imgtool resample IN TARGET OUT nearest|linear|bspline FILL
 *   imgtool frangi IN OUT BRIGHT C SIGMA_MM...   (C <= 0: automatic)
 *   imgtool median IN OUT RX RY RZ
 *   imgtool grey_dilate|grey_erode IN OUT RADIUS_MM
 *   imgtool skeleton IN OUT */
#include "r3d/r3d.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const r3d_error *e)
{
    fprintf(stderr, "imgtool: %s\n", e->msg);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: imgtool OP IN [TARGET] OUT [ARGS]\n");
        return 2;
    }
    const char *op = argv[1];
    r3d_error e = R3D_ERROR_INIT;
    r3d_volume *in = r3d_nifti_read(argv[2], &e), *out = NULL;
    if (!in)
        return fail(&e);
    const char *dst = argv[3];
    double a = argc > 4 ? atof(argv[4]) : 0;
    if (!strcmp(op, "distance"))
        out = r3d_image_distance(in, &e);
    else if (!strcmp(op, "fill"))
        out = r3d_image_fill_holes(in, &e);
    else if (!strcmp(op, "dilate"))
        out = r3d_image_dilate(in, a, &e);
    else if (!strcmp(op, "erode"))
        out = r3d_image_erode(in, a, &e);
    else if (!strcmp(op, "open"))
        out = r3d_image_open(in, a, &e);
    else if (!strcmp(op, "close"))
        out = r3d_image_close(in, a, &e);
    else if (!strcmp(op, "label"))
        out = r3d_image_components(in, (int)a, NULL, NULL, &e);
    else if (!strcmp(op, "gaussian"))
        out = r3d_image_gaussian(in, a, &e);
    else if (!strcmp(op, "frangi") && argc >= 7) {
        double sig[16];
        int ns = 0;
        for (int i = 6; i < argc && ns < 16; i++)
            sig[ns++] = atof(argv[i]);
        out = r3d_image_frangi_c(in, sig, ns, atoi(argv[4]), atof(argv[5]), &e);
    } else if (!strcmp(op, "median") && argc == 7) {
        int r[3] = {atoi(argv[4]), atoi(argv[5]), atoi(argv[6])};
        out = r3d_image_median(in, r, &e);
    } else if (!strcmp(op, "grey_dilate"))
        out = r3d_image_grey_dilate(in, a, &e);
    else if (!strcmp(op, "grey_erode"))
        out = r3d_image_grey_erode(in, a, &e);
    else if (!strcmp(op, "skeleton"))
        out = r3d_image_skeleton(in, &e);
    else if (!strcmp(op, "resample") && argc == 7) {
        r3d_volume *t = r3d_nifti_read(argv[3], &e);
        if (!t)
            return fail(&e);
        dst = argv[4];
        out = r3d_image_resample(in, t,
                                 !strcmp(argv[5], "linear")    ? R3D_INTERP_LINEAR
                                 : !strcmp(argv[5], "bspline") ? R3D_INTERP_BSPLINE
                                                               : R3D_INTERP_NEAREST,
                                 atof(argv[6]), &e);
        r3d_volume_free(t);
    } else {
        fprintf(stderr, "imgtool: unknown operation %s\n", op);
        return 2;
    }
    if (!out || r3d_nifti_write(out, dst, NULL, &e) != R3D_OK)
        return fail(&e);
    r3d_volume_free(out);
    r3d_volume_free(in);
    return 0;
}

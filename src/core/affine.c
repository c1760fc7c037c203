/* affine.c - the inverse of a voxel -> patient affine.
 *
 * Closed form (cofactors of the 3x3 part, then the translation) rather than
 * a general 4x4 elimination: the matrices are affine by construction, and
 * this is the one form the callers used before it was shared, so results are
 * bit-identical to theirs. */
#include "core/affine.h"

#include <math.h>
#include <string.h>

int r3d__affine_invert(const double m[4][4], double inv[4][4])
{
    double a = m[0][0], b = m[0][1], c = m[0][2], d = m[1][0], e = m[1][1], f = m[1][2],
           g = m[2][0], h = m[2][1], i = m[2][2];
    double det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g);
    if (!(fabs(det) > 1e-12))
        return 0;
    double r[3][3] = {{(e * i - f * h) / det, (c * h - b * i) / det, (b * f - c * e) / det},
                      {(f * g - d * i) / det, (a * i - c * g) / det, (c * d - a * f) / det},
                      {(d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det}};
    memset(inv, 0, 16 * sizeof(double));
    for (int k = 0; k < 3; k++) {
        for (int l = 0; l < 3; l++)
            inv[k][l] = r[k][l];
        inv[k][3] = -(r[k][0] * m[0][3] + r[k][1] * m[1][3] + r[k][2] * m[2][3]);
    }
    inv[3][3] = 1;
    return 1;
}

/* eig3.h - eigenvalues of a symmetric 3x3 matrix, shared by the
 * vesselness of image/hessian.c and the fissure plate filter of
 * seg/fissures.c.
 *
 * The trigonometric solution (Smith, CACM 4:168, 1961): with q the mean of
 * the diagonal and p the matrix's spread about q, the eigenvalues are
 * q + 2 p cos(phi + 2 pi m / 3), phi = acos(det((H - q I) / p) / 2) / 3. No
 * iteration and no branches but the diagonal case, which is what a per-voxel
 * filter wants. The values come unsorted (largest, middle, smallest; the
 * diagonal as it is when the matrix is diagonal): each caller orders them
 * its own way (by value, or by magnitude). Static inline because both call
 * it once per voxel in their innermost loop. */
#ifndef R3D_CORE_EIG3_H
#define R3D_CORE_EIG3_H

#include <math.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* H = (xx, yy, zz, xy, xz, yz). */
static inline void r3d__eig_sym3(const double H[6], double l[3])
{
    double a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5];
    double p1 = d * d + e * e + f * f;
    if (p1 == 0) {
        l[0] = a, l[1] = b, l[2] = c;
        return;
    }
    double q = (a + b + c) / 3;
    double p2 = (a - q) * (a - q) + (b - q) * (b - q) + (c - q) * (c - q) + 2 * p1;
    double p = sqrt(p2 / 6);
    double A = (a - q) / p, B = (b - q) / p, C = (c - q) / p, D = d / p, E = e / p, F = f / p;
    double r = 0.5 * (A * (B * C - F * F) - D * (D * C - F * E) + E * (D * F - B * E));
    double phi = r <= -1 ? M_PI / 3 : r >= 1 ? 0 : acos(r) / 3;
    l[0] = q + 2 * p * cos(phi);
    l[2] = q + 2 * p * cos(phi + 2 * M_PI / 3);
    l[1] = 3 * q - l[0] - l[2];
}

#endif

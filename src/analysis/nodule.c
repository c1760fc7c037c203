/* nodule.c - measurements of one lung nodule: centre, volume, equivalent
 * diameter, long and short axis on the axial slice where it is largest
 * (the longest chord, and the nodule's extent perpendicular to it), mean
 * density and solid / sub-solid, and the distance from its surface to the
 * nearest airway and vessel voxel (exact distance transform in a box of
 * +-60 mm around it). */
#include "r3d/analysis.h"
#include "r3d/image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NOD_SEARCH_MM 60.0

static int is(const r3d_volume *m, int64_t p, int value)
{
    if (m->dtype == R3D_U8)
        return ((const uint8_t *)m->voxels)[p] == value;
    if (m->dtype == R3D_U16)
        return ((const uint16_t *)m->voxels)[p] == value;
    return r3d_volume_get(m, p) == value;
}

/* Distance (mm) from the nodule's voxels to the nearest non-zero voxel of
 * other that is not part of the nodule, within the search box. */
static double nearest(const r3d_volume *mask, int value, const r3d_volume *other,
                      const int64_t lo[3], const int64_t hi[3], r3d_error *err, int *fail)
{
    int64_t nx = mask->dim[0], ny = mask->dim[1];
    int64_t dim[4] = {hi[0] - lo[0] + 1, hi[1] - lo[1] + 1, hi[2] - lo[2] + 1, 1};
    r3d_volume *b = r3d_volume_new(dim, R3D_U8, err);
    if (!b) {
        *fail = 1;
        return -1;
    }
    memcpy(b->spacing_mm, mask->spacing_mm, sizeof b->spacing_mm);
    for (int a = 0; a < 3; a++)
        b->ijk_to_lps[a][a] = mask->spacing_mm[a];
    uint8_t *bv = b->voxels;
    const uint8_t *ov = other->voxels;
    int any = 0;
    for (int64_t k = 0; k < dim[2]; k++)
        for (int64_t j = 0; j < dim[1]; j++)
            for (int64_t i = 0; i < dim[0]; i++) {
                int64_t g = (i + lo[0]) + nx * ((j + lo[1]) + ny * (k + lo[2]));
                int site = ov[g] && !is(mask, g, value);
                bv[i + dim[0] * (j + dim[1] * k)] = !site;
                any |= site;
            }
    if (!any) {
        r3d_volume_free(b);
        return NOD_SEARCH_MM;
    }
    r3d_volume *d = r3d_image_distance(b, err);
    if (!d) {
        r3d_volume_free(b);
        *fail = 1;
        return -1;
    }
    const float *dv = d->voxels;
    double best = NOD_SEARCH_MM;
    for (int64_t k = 0; k < dim[2]; k++)
        for (int64_t j = 0; j < dim[1]; j++)
            for (int64_t i = 0; i < dim[0]; i++) {
                int64_t g = (i + lo[0]) + nx * ((j + lo[1]) + ny * (k + lo[2]));
                if (is(mask, g, value)) {
                    double x = dv[i + dim[0] * (j + dim[1] * k)];
                    if (x < best)
                        best = x;
                }
            }
    r3d_volume_free(b), r3d_volume_free(d);
    return best;
}

r3d_status r3d_nodule_measure(const r3d_volume *ct, const r3d_volume *mask, int value,
                              const r3d_volume *airway, const r3d_volume *vessels,
                              r3d_nodule *out, r3d_error *err)
{
    memset(out, 0, sizeof *out);
    out->dist_bronchus_mm = out->dist_vessel_mm = -1;
    if (!ct || !mask || mask->dim[0] != ct->dim[0] || mask->dim[1] != ct->dim[1] ||
        mask->dim[2] != ct->dim[2])
        return r3d_fail(err, R3D_EARG, "nodule: mask and CT grids differ");
    if ((airway && (airway->dtype != R3D_U8 || r3d_volume_nvox(airway) != r3d_volume_nvox(ct))) ||
        (vessels && (vessels->dtype != R3D_U8 || r3d_volume_nvox(vessels) != r3d_volume_nvox(ct))))
        return r3d_fail(err, R3D_EARG, "nodule: airway/vessel masks must be uint8 on the CT grid");
    int64_t nx = ct->dim[0], ny = ct->dim[1], nz = ct->dim[2], ns = nx * ny;
    const double *sp = ct->spacing_mm;
    int64_t lo[3] = {nx, ny, nz}, hi[3] = {-1, -1, -1}, cnt = 0;
    double s[3] = {0, 0, 0}, hsum = 0;
    int64_t *area = calloc((size_t)nz, sizeof *area);
    if (!area)
        return r3d_fail(err, R3D_ENOMEM, "nodule: out of memory");
    for (int64_t k = 0; k < nz; k++)
        for (int64_t j = 0; j < ny; j++)
            for (int64_t i = 0; i < nx; i++) {
                int64_t p = i + nx * (j + ny * k);
                if (!is(mask, p, value))
                    continue;
                cnt++, area[k]++;
                s[0] += i, s[1] += j, s[2] += k;
                hsum += r3d_volume_get(ct, p);
                int64_t ijk[3] = {i, j, k};
                for (int a = 0; a < 3; a++) {
                    if (ijk[a] < lo[a]) lo[a] = ijk[a];
                    if (ijk[a] > hi[a]) hi[a] = ijk[a];
                }
            }
    if (!cnt) {
        free(area);
        return r3d_fail(err, R3D_ENOTFOUND, "nodule: label %d is empty", value);
    }
    for (int r = 0; r < 3; r++) {
        out->centre[r] = ct->ijk_to_lps[r][3];
        for (int a = 0; a < 3; a++)
            out->centre[r] += ct->ijk_to_lps[r][a] * s[a] / cnt;
    }
    out->volume_mm3 = cnt * sp[0] * sp[1] * sp[2];
    out->diameter_mm = cbrt(out->volume_mm3 * 6 / M_PI);
    out->mean_hu = hsum / cnt;
    out->solid = out->mean_hu >= -300;
    /* Axial slice of largest area: longest chord, extent perpendicular. */
    int64_t kb = lo[2];
    for (int64_t k = lo[2]; k <= hi[2]; k++)
        if (area[k] > area[kb])
            kb = k;
    free(area);
    int64_t m = 0;
    double *pt = malloc((size_t)(hi[0] - lo[0] + 1) * (size_t)(hi[1] - lo[1] + 1) * 2 * sizeof *pt);
    if (!pt)
        return r3d_fail(err, R3D_ENOMEM, "nodule: out of memory");
    for (int64_t j = lo[1]; j <= hi[1]; j++)
        for (int64_t i = lo[0]; i <= hi[0]; i++)
            if (is(mask, i + nx * j + ns * kb, value)) {
                pt[2 * m] = i * sp[0], pt[2 * m + 1] = j * sp[1];
                m++;
            }
    double best = 0, ux = 1, uy = 0;
    for (int64_t a = 0; a < m; a++)
        for (int64_t b = a + 1; b < m; b++) {
            double dx = pt[2 * b] - pt[2 * a], dy = pt[2 * b + 1] - pt[2 * a + 1];
            double d2 = dx * dx + dy * dy;
            if (d2 > best)
                best = d2, ux = dx, uy = dy;
        }
    double ul = sqrt(ux * ux + uy * uy);
    ux /= ul, uy /= ul;
    double pmin = 1e18, pmax = -1e18;
    for (int64_t a = 0; a < m; a++) {
        double v = -uy * pt[2 * a] + ux * pt[2 * a + 1];
        if (v < pmin) pmin = v;
        if (v > pmax) pmax = v;
    }
    free(pt);
    /* Voxel centres: add one voxel for the extent of the end voxels. */
    out->long_axis_mm = sqrt(best) + fmin(sp[0], sp[1]);
    out->short_axis_mm = (pmax - pmin) + fmin(sp[0], sp[1]);
    /* Distances, within a box around the nodule. */
    int64_t blo[3], bhi[3], dims[3] = {nx, ny, nz};
    for (int a = 0; a < 3; a++) {
        int64_t r = (int64_t)ceil(NOD_SEARCH_MM / sp[a]);
        blo[a] = lo[a] - r < 0 ? 0 : lo[a] - r;
        bhi[a] = hi[a] + r >= dims[a] ? dims[a] - 1 : hi[a] + r;
    }
    int fail = 0;
    if (airway)
        out->dist_bronchus_mm = nearest(mask, value, airway, blo, bhi, err, &fail);
    if (!fail && vessels)
        out->dist_vessel_mm = nearest(mask, value, vessels, blo, bhi, err, &fail);
    return fail ? (err ? err->code : R3D_ENOMEM) : R3D_OK;
}

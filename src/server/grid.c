/* grid.c - the voxel grid the browser works in, and NIfTI bytes for it.
 *
 * NiiVue shows (and paints into) every volume reordered to the voxel axes
 * closest to R, A, S. The server sends images and label maps already in that
 * order (r3d_volume_reorient_ras), so NiiVue's own reordering is the identity
 * and a painted bitmap indexes the same grid; grid_map gives, for a voxel of
 * that grid, its index in the store's (native) order: a signed permutation of
 * the axes, computed with the same greedy pairing as r3d_volume_reorient_ras
 * so the two can never disagree. */
#include "server_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

r3d_status grid_map_make(const r3d_volume *v, grid_map *g, r3d_error *err)
{
    double ras[4][4], m[3][3];
    int perm[3] = {-1, -1, -1}, flip[3] = {0, 0, 0};
    r3d_volume_ijk_to_ras(v, ras);
    for (int j = 0; j < 3; j++) {
        double n = 0;
        for (int i = 0; i < 3; i++)
            n += ras[i][j] * ras[i][j];
        n = n > 0 ? sqrt(n) : 1;
        for (int i = 0; i < 3; i++)
            m[i][j] = ras[i][j] / n;
    }
    for (int step = 0; step < 3; step++) {
        int bw = 0, bi = 0;
        double best = -1;
        for (int w = 0; w < 3; w++)
            for (int i = 0; i < 3; i++)
                if (fabs(m[w][i]) > best) {
                    best = fabs(m[w][i]);
                    bw = w;
                    bi = i;
                }
        perm[bw] = bi;
        flip[bw] = m[bw][bi] < 0;
        for (int k = 0; k < 3; k++)
            m[bw][k] = m[k][bi] = 0;
    }
    if (perm[0] < 0 || perm[1] < 0 || perm[2] < 0)
        return r3d_fail(err, R3D_EDATA, "volume: its affine has no three independent axes");
    int64_t ostride[3] = {1, v->dim[0], v->dim[0] * v->dim[1]};
    g->off = 0;
    for (int w = 0; w < 3; w++) {
        g->dim[w] = v->dim[perm[w]];
        g->step[w] = flip[w] ? -ostride[perm[w]] : ostride[perm[w]];
        if (flip[w])
            g->off += (v->dim[perm[w]] - 1) * ostride[perm[w]];
    }
    return R3D_OK;
}

r3d_volume *grid_canonical(const r3d_volume *native, r3d_error *err)
{
    return r3d_volume_reorient_ras(native, err);
}

r3d_status volume_to_nifti_bytes(r3d_server *s, const r3d_volume *v, int gz, uint8_t **bytes,
                                 size_t *n, r3d_error *err)
{
    char path[4096];
    static unsigned long seq;
    unsigned long k = __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);
    snprintf(path, sizeof path, "%s/vol-%lu.nii%s", s->tmp_dir, k, gz ? ".gz" : "");
    r3d_nifti_write_opts o = R3D_NIFTI_WRITE_OPTS_INIT;
    o.gzip_level = 1; /* speed over size */
    o.threads = 1;    /* one gzip member: browsers' inflaters stop after the first */
    r3d_status st = r3d_nifti_write(v, path, &o, err);
    if (st == R3D_OK)
        st = r3d_file_read_all(path, bytes, n, err);
    unlink(path);
    return st;
}

int64_t count_label(const r3d_volume *labels, uint16_t value)
{
    const uint16_t *p = labels->voxels;
    int64_t n = r3d_volume_nvox(labels), c = 0;
    for (int64_t i = 0; i < n; i++)
        c += p[i] == value;
    return c;
}

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

/* NIfTI-1 in memory: 348-byte header, 4 bytes of no extension, voxels.
 * The RAS affine goes in the sform (code 1, scanner); NiiVue and nibabel
 * both take the sform when its code is set. Written here rather than
 * through r3d_nifti_write because that one writes a file atomically (fsync
 * and all): for a 150 MB answer the fsync alone costs seconds. */
static int nifti_code(r3d_dtype t)
{
    switch (t) {
    case R3D_U8: return 2;
    case R3D_I16: return 4;
    case R3D_I32: return 8;
    case R3D_F32: return 16;
    case R3D_F64: return 64;
    case R3D_I8: return 256;
    case R3D_U16: return 512;
    case R3D_U32: return 768;
    default: return 0;
    }
}

r3d_status volume_to_nifti_bytes(r3d_server *s, const r3d_volume *v, int gz, uint8_t **bytes,
                                 size_t *n, r3d_error *err)
{
    (void)s;
    int code = nifti_code(v->dtype);
    if (!code || v->dim[3] != 1)
        return r3d_fail(err, R3D_EUNSUPPORTED, "volume: %s or 4D volumes are not served",
                        r3d_dtype_name(v->dtype));
    for (int k = 0; k < 3; k++)
        if (v->dim[k] > 32767)
            return r3d_fail(err, R3D_EUNSUPPORTED, "volume: a dimension exceeds NIfTI-1's 32767");
    size_t vb = r3d_volume_bytes(v), total = 352 + vb;
    uint8_t *b = calloc(1, total);
    if (!b)
        return r3d_fail(err, R3D_ENOMEM, "volume: out of memory for %zu bytes", total);
    int32_t i32 = 348;
    memcpy(b, &i32, 4);
    int16_t dim[8] = {3, (int16_t)v->dim[0], (int16_t)v->dim[1], (int16_t)v->dim[2], 1, 1, 1, 1};
    memcpy(b + 40, dim, sizeof dim);
    int16_t dt = (int16_t)code, bp = (int16_t)(8 * r3d_dtype_size(v->dtype));
    memcpy(b + 70, &dt, 2);
    memcpy(b + 72, &bp, 2);
    float pix[8] = {1, (float)v->spacing_mm[0], (float)v->spacing_mm[1], (float)v->spacing_mm[2],
                    1, 1, 1, 1};
    memcpy(b + 76, pix, sizeof pix);
    float f = 352;
    memcpy(b + 108, &f, 4);
    f = (float)v->scl_slope;
    memcpy(b + 112, &f, 4);
    f = (float)v->scl_inter;
    memcpy(b + 116, &f, 4);
    b[123] = 2; /* millimetres */
    int16_t qc = 0, sc = 1;
    memcpy(b + 252, &qc, 2);
    memcpy(b + 254, &sc, 2);
    double ras[4][4];
    r3d_volume_ijk_to_ras(v, ras);
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++) {
            f = (float)ras[r][c];
            memcpy(b + 280 + 16 * r + 4 * c, &f, 4);
        }
    memcpy(b + 344, "n+1\0", 4);
    memcpy(b + 352, v->voxels, vb);
    if (!gz) {
        *bytes = b;
        *n = total;
        return R3D_OK;
    }
    /* one gzip member: browsers' inflaters stop after the first */
    r3d_status st = r3d_gzip_compress(b, total, 1, 1, bytes, n, err);
    free(b);
    return st;
}

int nifti_cache_get(r3d_server *s, char kind, r3d_id case_id, r3d_id version, int gz,
                    uint8_t **bytes, size_t *n)
{
    int hit = 0;
    pthread_mutex_lock(&s->cache_mu);
    for (int i = 0; i < 3; i++) {
        struct nifti_cached *c = &s->cache[i];
        if (c->bytes && c->kind == kind && c->case_id == case_id && c->version == version &&
            c->gz == gz && (*bytes = malloc(c->n))) {
            memcpy(*bytes, c->bytes, c->n);
            *n = c->n;
            c->used = ++s->cache_clock;
            hit = 1;
            break;
        }
    }
    pthread_mutex_unlock(&s->cache_mu);
    return hit;
}

void nifti_cache_put(r3d_server *s, char kind, r3d_id case_id, r3d_id version, int gz,
                     const uint8_t *bytes, size_t n)
{
    uint8_t *copy = malloc(n);
    if (!copy)
        return;
    memcpy(copy, bytes, n);
    pthread_mutex_lock(&s->cache_mu);
    int k = 0;
    for (int i = 1; i < 3; i++)
        if (s->cache[i].used < s->cache[k].used)
            k = i;
    free(s->cache[k].bytes);
    s->cache[k] = (struct nifti_cached){kind, gz, case_id, version, copy, n, ++s->cache_clock};
    pthread_mutex_unlock(&s->cache_mu);
}

void nifti_cache_drop(r3d_server *s, r3d_id case_id)
{
    pthread_mutex_lock(&s->cache_mu);
    for (int i = 0; i < 3; i++)
        if (s->cache[i].case_id == case_id) {
            free(s->cache[i].bytes);
            memset(&s->cache[i], 0, sizeof s->cache[i]);
        }
    pthread_mutex_unlock(&s->cache_mu);
}

void nifti_cache_free(r3d_server *s)
{
    for (int i = 0; i < 3; i++)
        free(s->cache[i].bytes);
}

int64_t count_label(const r3d_volume *labels, uint16_t value)
{
    const uint16_t *p = labels->voxels;
    int64_t n = r3d_volume_nvox(labels), c = 0;
    for (int64_t i = 0; i < n; i++)
        c += p[i] == value;
    return c;
}

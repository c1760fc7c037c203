/* grid.c - the voxel grid the browser works in, and NIfTI bytes for it.
 *
 * NiiVue shows (and paints into) every volume reordered to the voxel axes
 * closest to R, A, S. The server sends images and label maps already in that
 * order (r3d_volume_reorient_ras), so NiiVue's own reordering is the identity
 * and a painted bitmap indexes the same grid; grid_map gives, for a voxel of
 * that grid, its index in the store's (native) order: a signed permutation of
 * the axes, from the pairing r3d_volume_reorient_ras itself uses
 * (r3d_volume_ras_axes), so the two can never disagree. */
#include "server_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

r3d_status grid_map_make(const r3d_volume *v, grid_map *g, r3d_error *err)
{
    int perm[3], flip[3];
    if (r3d_volume_ras_axes(v, perm, flip))
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

/* NIfTI-1 in memory for the browser: gzip'ed as one member (browsers'
 * inflaters stop after the first), at the fastest level, on one thread. */
r3d_status volume_to_nifti_bytes(r3d_server *s, const r3d_volume *v, int gz, uint8_t **bytes,
                                 size_t *n, r3d_error *err)
{
    (void)s;
    r3d_nifti_write_opts o = {1, 1, 1};
    return r3d_nifti_write_mem(v, gz, &o, bytes, n, err);
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

/* components.c - connected components of a mask (6, 18 or 26 neighbours).
 *
 * Two passes with union-find (core/uf.h; Rosenfeld & Pfaltz): the first
 * scans in memory order linking each voxel to its already-visited
 * neighbours (half the neighbourhood), the second assigns final labels in
 * order of each component's first voxel, so the numbering is deterministic
 * and matches scipy.ndimage.label. Memory: one uint32 per voxel for the
 * provisional labels plus the parent table. Labels are uint32 (up to 4e9
 * components).
 */
#include "image_internal.h"
#include "core/uf.h"

#include <stdlib.h>
#include <string.h>

r3d_volume *r3d_image_components(const r3d_volume *mask, int connectivity, int64_t *n_out,
                                 int64_t **sizes_out, r3d_error *err)
{
    if (n_out)
        *n_out = 0;
    if (sizes_out)
        *sizes_out = NULL;
    if (r3d_image_check_3d(mask, "components", err) != R3D_OK)
        return NULL;
    if (connectivity != 6 && connectivity != 18 && connectivity != 26)
        return r3d_fail(err, R3D_EARG, "components: connectivity must be 6, 18 or 26, not %d",
                        connectivity),
               NULL;
    int64_t nx = mask->dim[0], ny = mask->dim[1], nz = mask->dim[2], n = nx * ny * nz;
    r3d_volume *o = r3d_volume_new_like(mask, R3D_U32, err);
    if (!o)
        return NULL;
    uint32_t *lab = o->voxels;
    size_t cap = 1024;
    uint32_t *parent = malloc(cap * sizeof *parent);
    if (!parent) {
        r3d_volume_free(o);
        return r3d_fail(err, R3D_ENOMEM, "components: out of memory"), NULL;
    }
    /* Earlier neighbours (dz, dy, dx) in scan order for each connectivity. */
    int off[13][3];
    int noff = 0;
    for (int dz = -1; dz <= 0; dz++)
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) {
                if (dz == 0 && (dy > 0 || (dy == 0 && dx >= 0)))
                    continue;
                int manh = abs(dx) + abs(dy) + abs(dz);
                if ((connectivity == 6 && manh > 1) || (connectivity == 18 && manh > 2))
                    continue;
                off[noff][0] = dz;
                off[noff][1] = dy;
                off[noff][2] = dx;
                noff++;
            }
    uint32_t next = 1;
    parent[0] = 0;
    for (int64_t z = 0; z < nz; z++)
        for (int64_t y = 0; y < ny; y++)
            for (int64_t x = 0; x < nx; x++) {
                int64_t i = (z * ny + y) * nx + x;
                if (!r3d_image_on(mask, i)) {
                    lab[i] = 0;
                    continue;
                }
                uint32_t l = 0;
                for (int k = 0; k < noff; k++) {
                    int64_t zz = z + off[k][0], yy = y + off[k][1], xx = x + off[k][2];
                    if (zz < 0 || yy < 0 || yy >= ny || xx < 0 || xx >= nx)
                        continue;
                    uint32_t m = lab[(zz * ny + yy) * nx + xx];
                    if (!m)
                        continue;
                    if (!l)
                        l = m;
                    else if (m != l)
                        r3d__uf_union(parent, l, m);
                }
                if (!l) {
                    if (next == UINT32_MAX) {
                        free(parent);
                        r3d_volume_free(o);
                        return r3d_fail(err, R3D_EDATA, "components: more than 4e9 components"),
                               NULL;
                    }
                    if (next >= cap) {
                        uint32_t *p = realloc(parent, 2 * cap * sizeof *p);
                        if (!p) {
                            free(parent);
                            r3d_volume_free(o);
                            return r3d_fail(err, R3D_ENOMEM, "components: out of memory"), NULL;
                        }
                        parent = p;
                        cap *= 2;
                    }
                    parent[next] = next;
                    l = next++;
                }
                lab[i] = l;
            }
    /* Final numbering: roots in order of first appearance. */
    uint32_t *final = calloc(next, sizeof *final);
    if (!final) {
        free(parent);
        r3d_volume_free(o);
        return r3d_fail(err, R3D_ENOMEM, "components: out of memory"), NULL;
    }
    int64_t count = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!lab[i])
            continue;
        uint32_t r = r3d__uf_find(parent, lab[i]);
        if (!final[r])
            final[r] = (uint32_t)++count;
        lab[i] = final[r];
    }
    free(final);
    free(parent);
    if (sizes_out) {
        int64_t *sz = calloc((size_t)count + 1, sizeof *sz);
        if (!sz) {
            r3d_volume_free(o);
            return r3d_fail(err, R3D_ENOMEM, "components: out of memory"), NULL;
        }
        for (int64_t i = 0; i < n; i++)
            sz[lab[i]]++;
        sz[0] = 0;
        *sizes_out = sz;
    }
    if (n_out)
        *n_out = count;
    return o;
}

r3d_volume *r3d_image_largest_component(const r3d_volume *mask, int connectivity,
                                        r3d_error *err)
{
    int64_t n, *sz;
    r3d_volume *lab = r3d_image_components(mask, connectivity, &n, &sz, err);
    if (!lab)
        return NULL;
    r3d_volume *o = r3d_volume_new_like(mask, R3D_U8, err);
    if (o) {
        int64_t best = 0;
        for (int64_t k = 1; k <= n; k++)
            if (sz[k] > sz[best])
                best = k; /* ties: the earlier component */
        const uint32_t *l = lab->voxels;
        uint8_t *out = o->voxels;
        for (int64_t i = 0, m = r3d_volume_nvox(o); i < m; i++)
            out[i] = best && l[i] == (uint32_t)best;
    }
    free(sz);
    r3d_volume_free(lab);
    return o;
}

/* labels.c - the surfaces of several labels of one label map with shared
 * boundaries (r3d_mesh_from_labels).
 *
 * Where label A touches label B, a grid edge joins an A voxel to a B voxel,
 * and both labels' marching cubes put a vertex at its middle: the same
 * point, computed the same way, so the raw meshes already share those
 * vertices bit for bit; and the case table triangulates a cube and its
 * complement alike (extract.c), so the shared sheet has the same triangles
 * in both, reversed (except on ambiguous faces, where each label keeps its
 * own 6-connectivity; measured below). Smoothing each label on its own
 * would then move the shared vertices apart, opening gaps and overlaps.
 * So the vertices are grouped by their raw position before smoothing
 * (hash of the coordinates' bits) and the labels are smoothed together
 * (surface.c): every group leaves in one place, the same in every mesh
 * that has it.
 *
 * Memory: the meshes, plus 24 bytes per vertex and a hash table of two
 * slots per vertex while welding. Cost: linear in the surfaces (and one
 * pass over the volume per label, as for r3d_mesh_from_label).
 */
#include "surface_internal.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash3(const uint32_t *k)
{
    uint64_t h = k[0] * 0x9E3779B97F4A7C15ull;
    h ^= (h >> 29) + k[1] * 0xBF58476D1CE4E5B9ull;
    h ^= (h >> 31) + k[2] * 0x94D049BB133111EBull;
    return h ^ (h >> 32);
}

r3d_status r3d_mesh_from_labels(const r3d_volume *labels, const uint16_t *values, int n,
                                const r3d_extract_opts *o, double strength, r3d_scene *out,
                                r3d_error *err)
{
    if (!labels || !out || n < 0 || (n > 0 && !values))
        return r3d_fail(err, R3D_EARG, "mesh_from_labels: no label map, values or scene");
    if (!(strength >= 0 && strength <= 10))
        return r3d_fail(err, R3D_EARG, "mesh_from_labels: strength %g is outside 0..10",
                        strength);
    int first = out->n;
    r3d_status st = R3D_OK;
    uint32_t *key = NULL;
    int64_t *grp = NULL, *slot = NULL;
    for (int i = 0; i < n; i++) {
        r3d_mesh *m = r3d_mesh_from_label(labels, values[i], o, err);
        if (!m) {
            st = err ? err->code : R3D_ENOMEM;
            goto fail;
        }
        if ((st = r3d_scene_add(out, m, err)) != R3D_OK) {
            r3d_mesh_free(m);
            goto fail;
        }
    }
    int64_t N = 0;
    for (int i = first; i < out->n; i++)
        N += out->m[i]->nv;
    if (N == 0 || strength == 0)
        return R3D_OK;
    /* group the raw vertices by position */
    int64_t cap = 1;
    while (cap < 2 * N)
        cap <<= 1;
    key = malloc((size_t)N * 3 * sizeof *key);
    grp = malloc((size_t)N * sizeof *grp);
    slot = malloc((size_t)cap * sizeof *slot);
    if (!key || !grp || !slot)
        goto oom;
    memset(slot, 0xff, (size_t)cap * sizeof *slot);
    int64_t e = 0, ng = 0;
    for (int i = first; i < out->n; i++) {
        const r3d_mesh *m = out->m[i];
        if (m->nv) /* an absent label's mesh has no array at all */
            memcpy(key + 3 * e, m->v, (size_t)m->nv * 3 * sizeof *key);
        for (int64_t v = 0; v < m->nv; v++, e++) {
            const uint32_t *k = key + 3 * e;
            uint64_t h = hash3(k) & (uint64_t)(cap - 1);
            for (;; h = (h + 1) & (uint64_t)(cap - 1)) {
                int64_t s = slot[h];
                if (s < 0) {
                    slot[h] = e;
                    grp[e] = ng++;
                    break;
                }
                if (!memcmp(key + 3 * s, k, 3 * sizeof *k)) {
                    grp[e] = grp[s];
                    break;
                }
            }
        }
    }
    free(slot);
    slot = NULL;
    free(key);
    key = NULL;
    st = r3d__smooth_labels(out->m + first, values, n, grp, ng, labels, strength, err);
    if (st != R3D_OK)
        goto fail;
    free(grp);
    return R3D_OK;
oom:
    st = r3d_fail(err, R3D_ENOMEM, "mesh_from_labels: out of memory for %d surfaces", n);
fail:
    free(key);
    free(grp);
    free(slot);
    while (out->n > first)
        r3d_mesh_free(out->m[--out->n]);
    return st;
}

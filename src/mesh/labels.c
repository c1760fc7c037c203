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

r3d_status r3d_scene_decimate(r3d_scene *s, const r3d_decimate_opts *o, r3d_error *err)
{
    if (!s || !o)
        return r3d_fail(err, R3D_EARG, "scene_decimate: no scene or no options");
    int64_t N = 0;
    for (int i = 0; i < s->n; i++)
        N += s->m[i]->nv;
    int64_t cap = 1;
    while (cap < 2 * N)
        cap <<= 1;
    /* Every vertex of every mesh is an entry e (mesh by mesh). first[e] is
     * the first entry at the same position; shared[f] says whether a second
     * mesh has that position. All masks are made before any mesh changes. */
    int64_t *slot = malloc((size_t)cap * sizeof *slot);
    int64_t *first = malloc(((size_t)N + 1) * sizeof *first);
    int32_t *mesh = malloc(((size_t)N + 1) * sizeof *mesh);
    uint8_t *lock = calloc((size_t)N + 1, 1);
    const float **pos = malloc(((size_t)N + 1) * sizeof *pos);
    r3d_status st = R3D_OK;
    if (!slot || !first || !mesh || !lock || !pos) {
        st = r3d_fail(err, R3D_ENOMEM, "scene_decimate: out of memory");
        goto out;
    }
    memset(slot, 0xff, (size_t)cap * sizeof *slot);
    int64_t e = 0;
    for (int i = 0; i < s->n; i++) {
        const r3d_mesh *m = s->m[i];
        for (int64_t v = 0; v < m->nv; v++, e++) {
            uint32_t k[3];
            memcpy(k, m->v + 3 * v, sizeof k);
            pos[e] = m->v + 3 * v;
            mesh[e] = i;
            first[e] = e;
            for (uint64_t h = hash3(k) & (uint64_t)(cap - 1);; h = (h + 1) & (uint64_t)(cap - 1)) {
                int64_t q = slot[h];
                if (q < 0) {
                    slot[h] = e;
                    break;
                }
                if (!memcmp(pos[q], k, sizeof k)) {
                    first[e] = q;
                    if (mesh[q] != i)
                        lock[q] = 1;
                    break;
                }
            }
        }
    }
    for (e = 0; e < N; e++)
        lock[e] = lock[first[e]];
    e = 0;
    for (int i = 0; i < s->n && st == R3D_OK; i++) {
        r3d_mesh *m = s->m[i];
        int any = 0;
        for (int64_t v = 0; v < m->nv; v++)
            any |= lock[e + v];
        r3d_decimate_opts d = *o;
        d.locked = any ? lock + e : NULL;
        if (any && m->nt) {
            /* faces among locked vertices cannot go: the fraction applies
             * to the others, or it would all be taken from them */
            int64_t fixed = 0;
            for (int64_t t = 0; t < m->nt; t++) {
                const uint32_t *q = m->t + 3 * t;
                fixed += q[0] < m->nv && q[1] < m->nv && q[2] < m->nv && lock[e + q[0]] &&
                         lock[e + q[1]] && lock[e + q[2]];
            }
            if (o->target_fraction > 0)
                d.target_fraction =
                    ((double)fixed + o->target_fraction * (double)(m->nt - fixed)) / (double)m->nt;
            if (o->max_triangles > 0 && o->max_triangles < fixed)
                d.max_triangles = fixed;
        }
        e += m->nv;
        if (m->nt)
            st = r3d_mesh_decimate(m, &d, err);
    }
out:
    free(slot);
    free(first);
    free(mesh);
    free(lock);
    free(pos);
    return st;
}

/* mesh.c - the r3d_mesh container and scenes: allocation, growth, frames.
 * Growth doubles capacity, so building a mesh of n triangles costs O(n)
 * amortised and a handful of reallocations. */
#include "r3d/mesh.h"

#include <stdlib.h>
#include <string.h>

r3d_mesh *r3d_mesh_new(r3d_error *err)
{
    r3d_mesh *m = calloc(1, sizeof *m);
    if (!m)
        r3d_fail(err, R3D_ENOMEM, "mesh: out of memory");
    return m;
}

void r3d_mesh_free(r3d_mesh *m)
{
    if (!m)
        return;
    free(m->v);
    free(m->t);
    free(m);
}

r3d_mesh *r3d_mesh_copy(const r3d_mesh *m, r3d_error *err)
{
    r3d_mesh *c = r3d_mesh_new(err);
    if (!c)
        return NULL;
    *c = *m;
    c->v = NULL;
    c->t = NULL;
    c->cap_v = c->cap_t = 0;
    c->nv = c->nt = 0;
    if (r3d_mesh_reserve(c, m->nv, m->nt, err) != R3D_OK) {
        r3d_mesh_free(c);
        return NULL;
    }
    if (m->nv) /* an empty mesh has no arrays: memcpy(NULL, ...) is undefined */
        memcpy(c->v, m->v, (size_t)m->nv * 3 * sizeof *m->v);
    if (m->nt)
        memcpy(c->t, m->t, (size_t)m->nt * 3 * sizeof *m->t);
    c->nv = m->nv;
    c->nt = m->nt;
    return c;
}

r3d_status r3d_mesh_reserve(r3d_mesh *m, int64_t nv, int64_t nt, r3d_error *err)
{
    if (nv > UINT32_MAX)
        return r3d_fail(err, R3D_EARG, "mesh: %lld vertices exceed 32-bit indices",
                        (long long)nv);
    if (!r3d_grow((void **)&m->v, &m->cap_v, nv, 3 * sizeof *m->v) ||
        !r3d_grow((void **)&m->t, &m->cap_t, nt, 3 * sizeof *m->t))
        return r3d_fail(err, R3D_ENOMEM, "mesh: out of memory for %lld vertices, %lld triangles",
                        (long long)nv, (long long)nt);
    return R3D_OK;
}

int64_t r3d_mesh_add_vertex(r3d_mesh *m, float x, float y, float z)
{
    if (m->nv >= (int64_t)UINT32_MAX ||
        !r3d_grow((void **)&m->v, &m->cap_v, m->nv + 1, 3 * sizeof *m->v))
        return -1;
    float *p = m->v + 3 * m->nv;
    p[0] = x;
    p[1] = y;
    p[2] = z;
    return m->nv++;
}

int r3d_mesh_add_triangle(r3d_mesh *m, uint32_t a, uint32_t b, uint32_t c)
{
    if (!r3d_grow((void **)&m->t, &m->cap_t, m->nt + 1, 3 * sizeof *m->t))
        return 0;
    uint32_t *p = m->t + 3 * m->nt++;
    p[0] = a;
    p[1] = b;
    p[2] = c;
    return 1;
}

void r3d_mesh_set_frame(r3d_mesh *m, r3d_frame f)
{
    if (m->frame == f)
        return;
    /* LPS <-> RAS: x and y change sign. A reflection of two axes is a
     * rotation, so the winding (and outward normals) stay correct. */
    for (int64_t i = 0; i < m->nv; i++) {
        m->v[3 * i] = -m->v[3 * i];
        m->v[3 * i + 1] = -m->v[3 * i + 1];
    }
    m->frame = f;
}

r3d_status r3d_scene_add(r3d_scene *s, r3d_mesh *m, r3d_error *err)
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 8;
        r3d_mesh **n = realloc(s->m, (size_t)cap * sizeof *n);
        if (!n)
            return r3d_fail(err, R3D_ENOMEM, "scene: out of memory");
        s->m = n;
        s->cap = cap;
    }
    s->m[s->n++] = m;
    return R3D_OK;
}

void r3d_scene_clear(r3d_scene *s)
{
    for (int i = 0; i < s->n; i++)
        r3d_mesh_free(s->m[i]);
    free(s->m);
    s->m = NULL;
    s->n = s->cap = 0;
}

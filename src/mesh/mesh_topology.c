/* mesh_topology.c - vertex->triangle lists, the edge table and boundary
 * loops (see mesh_topology.h). All three are built in linear time: a
 * counting pass then a filling pass for the lists, per-vertex grouping of a
 * handful of neighbours for the edges, and one walk over the boundary
 * edges for the loops.
 */
#include "mesh_topology.h"

#include <stdlib.h>
#include <string.h>

r3d_status r3d__vtri_build(const r3d_mesh *m, r3d__vtri *out, r3d_error *err)
{
    out->start = calloc((size_t)m->nv + 1, sizeof *out->start);
    out->tri = malloc(((size_t)m->nt * 3 + 1) * sizeof *out->tri);
    if (!out->start || !out->tri) {
        r3d__vtri_free(out);
        return r3d_fail(err, R3D_ENOMEM, "mesh: out of memory for vertex adjacency");
    }
    for (int64_t i = 0; i < m->nt; i++) {
        const uint32_t *t = m->t + 3 * i;
        if (!r3d__tri_valid(t, m->nv))
            continue;
        for (int c = 0; c < 3; c++)
            out->start[t[c] + 1]++;
    }
    for (int64_t v = 0; v < m->nv; v++)
        out->start[v + 1] += out->start[v];
    /* Fill with a moving cursor per vertex, then shift the starts back. */
    for (int64_t i = 0; i < m->nt; i++) {
        const uint32_t *t = m->t + 3 * i;
        if (!r3d__tri_valid(t, m->nv))
            continue;
        for (int c = 0; c < 3; c++)
            out->tri[out->start[t[c]]++] = (uint32_t)i;
    }
    for (int64_t v = m->nv; v > 0; v--)
        out->start[v] = out->start[v - 1];
    out->start[0] = 0;
    return R3D_OK;
}

void r3d__vtri_free(r3d__vtri *vt)
{
    free(vt->start);
    free(vt->tri);
    vt->start = NULL;
    vt->tri = NULL;
}

typedef struct nb {
    uint32_t w, tri;
    uint32_t fwd; /* the face goes v -> w */
} nb;

r3d_status r3d__edges_build(const r3d_mesh *m, const r3d__vtri *vt, r3d__edge **out,
                            int64_t *n_out, r3d_error *err)
{
    int64_t maxdeg = 0, cap = 0;
    for (int64_t v = 0; v < m->nv; v++) {
        int64_t d = vt->start[v + 1] - vt->start[v];
        if (d > maxdeg)
            maxdeg = d;
    }
    /* Each face has three edges, each seen from its smaller end only. */
    for (int64_t i = 0; i < m->nt; i++)
        cap += r3d__tri_valid(m->t + 3 * i, m->nv) ? 3 : 0;
    r3d__edge *e = malloc(((size_t)cap + 1) * sizeof *e);
    nb *l = malloc(((size_t)maxdeg * 2 + 1) * sizeof *l);
    if (!e || !l) {
        free(e);
        free(l);
        return r3d_fail(err, R3D_ENOMEM, "mesh: out of memory for the edge table");
    }
    int64_t ne = 0;
    for (int64_t v = 0; v < m->nv; v++) {
        int64_t n = 0;
        for (int64_t k = vt->start[v]; k < vt->start[v + 1]; k++) {
            uint32_t ti = vt->tri[k];
            const uint32_t *t = m->t + 3 * (size_t)ti;
            int c = t[0] == v ? 0 : t[1] == v ? 1 : 2;
            uint32_t next = t[(c + 1) % 3], prev = t[(c + 2) % 3];
            if (next > v)
                l[n++] = (nb){next, ti, 1};
            if (prev > v)
                l[n++] = (nb){prev, ti, 0};
        }
        /* Insertion sort by neighbour then triangle: lists are tiny, and the
         * triangle order keeps t[] deterministic. */
        for (int64_t i = 1; i < n; i++) {
            nb x = l[i];
            int64_t j = i;
            while (j > 0 && (l[j - 1].w > x.w || (l[j - 1].w == x.w && l[j - 1].tri > x.tri))) {
                l[j] = l[j - 1];
                j--;
            }
            l[j] = x;
        }
        for (int64_t i = 0; i < n;) {
            r3d__edge *d = &e[ne++];
            d->a = (uint32_t)v;
            d->b = l[i].w;
            d->nfaces = d->nfwd = 0;
            d->t[0] = d->t[1] = UINT32_MAX;
            int64_t j = i;
            for (; j < n && l[j].w == l[i].w; j++) {
                if (d->nfaces < 2)
                    d->t[d->nfaces] = l[j].tri;
                d->nfaces++;
                d->nfwd += l[j].fwd;
            }
            i = j;
        }
    }
    free(l);
    *out = e;
    *n_out = ne;
    return R3D_OK;
}

r3d_status r3d__loops_build(const r3d_mesh *m, const r3d__edge *e, int64_t ne,
                            r3d__loops *out, r3d_error *err)
{
    memset(out, 0, sizeof *out);
    int64_t nb_edges = 0;
    for (int64_t i = 0; i < ne; i++)
        nb_edges += e[i].nfaces == 1;
    /* Directed loop edges s->t, grouped by s (CSR). */
    int64_t *first = calloc((size_t)m->nv + 1, sizeof *first);
    uint32_t *to = malloc(((size_t)nb_edges + 1) * sizeof *to);
    uint8_t *used = calloc((size_t)nb_edges + 1, 1);
    int64_t *pos = malloc(((size_t)m->nv + 1) * sizeof *pos);
    uint32_t *walk = malloc(((size_t)nb_edges + 1) * sizeof *walk);
    out->vert = malloc(((size_t)nb_edges + 1) * sizeof *out->vert);
    out->start = malloc(((size_t)nb_edges + 2) * sizeof *out->start);
    if (!first || !to || !used || !pos || !walk || !out->vert || !out->start) {
        free(first), free(to), free(used), free(pos), free(walk);
        r3d__loops_free(out);
        return r3d_fail(err, R3D_ENOMEM, "mesh: out of memory for boundary loops");
    }
    for (int64_t i = 0; i < ne; i++)
        if (e[i].nfaces == 1)
            first[(e[i].nfwd ? e[i].b : e[i].a) + 1]++;
    for (int64_t v = 0; v < m->nv; v++)
        first[v + 1] += first[v];
    for (int64_t i = 0; i < ne; i++)
        if (e[i].nfaces == 1) {
            /* The face runs a->b, so the hole runs b->a (and vice versa). */
            uint32_t s = e[i].nfwd ? e[i].b : e[i].a, t = e[i].nfwd ? e[i].a : e[i].b;
            to[first[s]++] = t;
        }
    for (int64_t v = m->nv; v > 0; v--)
        first[v] = first[v - 1];
    first[0] = 0;
    for (int64_t v = 0; v < m->nv; v++)
        pos[v] = -1;

    int64_t nvert = 0;
    out->start[0] = 0;
    for (int64_t v0 = 0; v0 < m->nv; v0++) {
        for (int64_t k0 = first[v0]; k0 < first[v0 + 1]; k0++) {
            if (used[k0])
                continue;
            int64_t n = 0;
            walk[n] = (uint32_t)v0;
            pos[v0] = n++;
            used[k0] = 1;
            uint32_t cur = to[k0];
            for (;;) {
                if (pos[cur] >= 0) {
                    /* Back at a vertex of this walk: walk[p..n) is a simple
                     * cycle. Emit it and go on from cur with what precedes. */
                    int64_t p = pos[cur];
                    for (int64_t i = p; i < n; i++) {
                        out->vert[nvert++] = walk[i];
                        pos[walk[i]] = -1;
                    }
                    out->start[++out->n] = nvert;
                    n = p;
                    if (n == 0)
                        break;
                }
                walk[n] = cur;
                pos[cur] = n++;
                int64_t k = first[cur];
                while (k < first[cur + 1] && used[k])
                    k++;
                if (k == first[cur + 1]) {
                    out->open_chains++;
                    for (int64_t i = 0; i < n; i++)
                        pos[walk[i]] = -1;
                    break;
                }
                used[k] = 1;
                cur = to[k];
            }
        }
    }
    free(first), free(to), free(used), free(pos), free(walk);
    return R3D_OK;
}

void r3d__loops_free(r3d__loops *l)
{
    free(l->vert);
    free(l->start);
    l->vert = NULL;
    l->start = NULL;
    l->n = 0;
}

int r3d__compact_vertices(r3d_mesh *m)
{
    int64_t *map = malloc(((size_t)m->nv + 1) * sizeof *map);
    if (!map)
        return 0;
    for (int64_t v = 0; v < m->nv; v++)
        map[v] = -1;
    for (int64_t i = 0; i < 3 * m->nt; i++)
        map[m->t[i]] = 0;
    int64_t n = 0;
    for (int64_t v = 0; v < m->nv; v++)
        if (map[v] == 0) {
            memmove(m->v + 3 * n, m->v + 3 * v, 3 * sizeof *m->v);
            map[v] = n++;
        }
    for (int64_t i = 0; i < 3 * m->nt; i++)
        m->t[i] = (uint32_t)map[m->t[i]];
    m->nv = n;
    free(map);
    return 1;
}

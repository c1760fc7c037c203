/* uf.h - union-find over uint32 ids, shared by the voxel labelling of
 * image/components.c and the vertex components of mesh/repair.c and
 * mesh/metrics.c.
 *
 * The caller owns the parent table (parent[x] == x for a root) and grows it
 * as it likes; find halves paths (Tarjan & van Leeuwen), and union makes the
 * smaller root the parent, so a set is named by its smallest id whatever the
 * order of the unions: labels stay deterministic and match scipy's. Static
 * inline because the callers (also mesh/metrics.c's Euler count) run it once per voxel or face in their
 * innermost loop. */
#ifndef R3D_CORE_UF_H
#define R3D_CORE_UF_H

#include <stdint.h>

static inline uint32_t r3d__uf_find(uint32_t *parent, uint32_t x)
{
    while (parent[x] != x) {
        parent[x] = parent[parent[x]]; /* path halving */
        x = parent[x];
    }
    return x;
}

static inline void r3d__uf_union(uint32_t *parent, uint32_t a, uint32_t b)
{
    a = r3d__uf_find(parent, a);
    b = r3d__uf_find(parent, b);
    if (a < b)
        parent[b] = a;
    else if (b < a)
        parent[a] = b;
}

#endif

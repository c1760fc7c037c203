/* mesh_topology.h - internal adjacency helpers shared by decimation and
 * repair: vertex->triangle lists (CSR), the undirected edge table with face
 * counts and windings, and boundary loops.
 *
 * Every builder skips "invalid" triangles (an index >= nv, or a repeated
 * index), so callers can run them on damaged input and count those apart.
 * Costs are linear in the mesh (edges are grouped per vertex, not sorted
 * globally: O(sum of degree^2), degree ~6 on real surfaces).
 */
#ifndef R3D_MESH_TOPOLOGY_H
#define R3D_MESH_TOPOLOGY_H

#include "r3d/mesh.h"

/* Is triangle i usable for topology (indices in range, three distinct)? */
static inline int r3d__tri_valid(const uint32_t *t, int64_t nv)
{
    return t[0] < (uint64_t)nv && t[1] < (uint64_t)nv && t[2] < (uint64_t)nv &&
           t[0] != t[1] && t[1] != t[2] && t[0] != t[2];
}

/* Triangles around each vertex: those of vertex v are tri[start[v] ..
 * start[v+1]), in increasing triangle order. */
typedef struct r3d__vtri {
    int64_t *start; /* nv + 1 */
    uint32_t *tri;
} r3d__vtri;

r3d_status r3d__vtri_build(const r3d_mesh *m, r3d__vtri *out, r3d_error *err);
void r3d__vtri_free(r3d__vtri *vt);

/* One undirected edge a < b. nfwd counts the faces that traverse it a->b,
 * so a consistently wound interior edge has nfaces 2 and nfwd 1. t[] holds
 * the first two faces (UINT32_MAX when absent). Edges are ordered by
 * (a, b). */
typedef struct r3d__edge {
    uint32_t a, b;
    uint32_t nfaces, nfwd;
    uint32_t t[2];
} r3d__edge;

r3d_status r3d__edges_build(const r3d_mesh *m, const r3d__vtri *vt, r3d__edge **out,
                            int64_t *n_out, r3d_error *err);

/* Boundary loops (edges with exactly one face), each walked in the
 * direction opposite to its face, so a triangle (v[i], v[i+1], x) of the
 * filling has the winding of the surrounding surface. Loops that pass a
 * vertex twice are split there, so each loop is a simple cycle of vertices.
 * Loop k is vert[start[k] .. start[k+1]). open_chains counts boundary paths
 * that do not close (only possible around non-manifold edges). */
typedef struct r3d__loops {
    uint32_t *vert;
    int64_t *start; /* n + 1 */
    int64_t n;
    int64_t open_chains;
} r3d__loops;

r3d_status r3d__loops_build(const r3d_mesh *m, const r3d__edge *e, int64_t ne,
                            r3d__loops *out, r3d_error *err);
void r3d__loops_free(r3d__loops *l);

/* Remove unused vertices and keep the order of the rest; triangles must be
 * valid. Returns 0 on out of memory (mesh unchanged). */
int r3d__compact_vertices(r3d_mesh *m);

#endif

/* mesh_fixture.h - the synthetic scene the mesh format tests write and read
 * back (test_mesh_io.c, tests/tools/meshtool.c): an icosphere of radius 20
 * mm at the origin (2 subdivisions: 162 vertices, 320 triangles) named
 * "skull", and a box from (30,-10,-5) to (50,10,25) mm (8 vertices, 12
 * triangles) named in Chinese ("肝脏", liver), each with its own colour.
 * Both closed and outward-oriented, in LPS. The scene's bounds differ on
 * every axis ((-20,-20,-20) to (50,20,25)), so a reader that swaps or
 * flips axes shows in the bounds.
 */
#ifndef R3D_MESH_FIXTURE_H
#define R3D_MESH_FIXTURE_H

#include "r3d/mesh.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { FIX_SPHERE_NV = 162, FIX_SPHERE_NT = 320, FIX_CUBE_NV = 8, FIX_CUBE_NT = 12 };

static uint32_t fix_midpoint(r3d_mesh *m, uint32_t (*edges)[3], int *ne, uint32_t a, uint32_t b,
                             double r)
{
    uint32_t lo = a < b ? a : b, hi = a < b ? b : a;
    for (int i = 0; i < *ne; i++)
        if (edges[i][0] == lo && edges[i][1] == hi)
            return edges[i][2];
    const float *p = m->v + 3 * lo, *q = m->v + 3 * hi;
    double x = (p[0] + q[0]) / 2, y = (p[1] + q[1]) / 2, z = (p[2] + q[2]) / 2;
    double l = sqrt(x * x + y * y + z * z);
    uint32_t idx = (uint32_t)r3d_mesh_add_vertex(m, (float)(x * r / l), (float)(y * r / l),
                                                 (float)(z * r / l));
    edges[*ne][0] = lo;
    edges[*ne][1] = hi;
    edges[*ne][2] = idx;
    (*ne)++;
    return idx;
}

static r3d_mesh *fix_icosphere(double r)
{
    r3d_mesh *m = r3d_mesh_new(NULL);
    const double t = (1 + sqrt(5.0)) / 2;
    const double v[12][3] = {{-1, t, 0}, {1, t, 0}, {-1, -t, 0}, {1, -t, 0},
                             {0, -1, t}, {0, 1, t}, {0, -1, -t}, {0, 1, -t},
                             {t, 0, -1}, {t, 0, 1}, {-t, 0, -1}, {-t, 0, 1}};
    static const uint32_t f[20][3] = {{0, 11, 5}, {0, 5, 1},  {0, 1, 7},   {0, 7, 10}, {0, 10, 11},
                                      {1, 5, 9},  {5, 11, 4}, {11, 10, 2}, {10, 7, 6}, {7, 1, 8},
                                      {3, 9, 4},  {3, 4, 2},  {3, 2, 6},   {3, 6, 8},  {3, 8, 9},
                                      {4, 9, 5},  {2, 4, 11}, {6, 2, 10},  {8, 6, 7},  {9, 8, 1}};
    double l = sqrt(1 + t * t);
    for (int i = 0; i < 12; i++)
        r3d_mesh_add_vertex(m, (float)(v[i][0] * r / l), (float)(v[i][1] * r / l),
                            (float)(v[i][2] * r / l));
    for (int i = 0; i < 20; i++)
        r3d_mesh_add_triangle(m, f[i][0], f[i][1], f[i][2]);
    for (int level = 0; level < 2; level++) {
        int64_t nt = m->nt;
        uint32_t *old = malloc((size_t)nt * 3 * sizeof *old);
        uint32_t(*edges)[3] = malloc((size_t)nt * 3 * sizeof *edges);
        int ne = 0;
        memcpy(old, m->t, (size_t)nt * 3 * sizeof *old);
        m->nt = 0;
        for (int64_t k = 0; k < nt; k++) {
            uint32_t a = old[3 * k], b = old[3 * k + 1], c = old[3 * k + 2];
            uint32_t ab = fix_midpoint(m, edges, &ne, a, b, r);
            uint32_t bc = fix_midpoint(m, edges, &ne, b, c, r);
            uint32_t ca = fix_midpoint(m, edges, &ne, c, a, r);
            r3d_mesh_add_triangle(m, a, ab, ca);
            r3d_mesh_add_triangle(m, b, bc, ab);
            r3d_mesh_add_triangle(m, c, ca, bc);
            r3d_mesh_add_triangle(m, ab, bc, ca);
        }
        free(old);
        free(edges);
    }
    return m;
}

static r3d_mesh *fix_cube(const float lo[3], const float hi[3])
{
    r3d_mesh *m = r3d_mesh_new(NULL);
    for (int i = 0; i < 8; i++)
        r3d_mesh_add_vertex(m, (i & 1) ? hi[0] : lo[0], (i & 2) ? hi[1] : lo[1],
                            (i & 4) ? hi[2] : lo[2]);
    /* outward, counter-clockwise seen from outside */
    static const uint32_t f[12][3] = {{0, 2, 1}, {1, 2, 3}, {4, 5, 6}, {5, 7, 6},
                                      {0, 1, 4}, {1, 5, 4}, {2, 6, 3}, {3, 6, 7},
                                      {0, 4, 2}, {2, 4, 6}, {1, 3, 5}, {3, 7, 5}};
    for (int i = 0; i < 12; i++)
        r3d_mesh_add_triangle(m, f[i][0], f[i][1], f[i][2]);
    return m;
}

static void fix_scene(r3d_scene *s)
{
    r3d_mesh *a = fix_icosphere(20.0);
    strcpy(a->name, "skull");
    strcpy(a->name_zh, "颅骨");
    a->rgb[0] = 230, a->rgb[1] = 220, a->rgb[2] = 200;
    a->label = 1;
    const float lo[3] = {30, -10, -5}, hi[3] = {50, 10, 25};
    r3d_mesh *b = fix_cube(lo, hi);
    strcpy(b->name, "肝脏");
    strcpy(b->name_zh, "肝脏");
    b->rgb[0] = 180, b->rgb[1] = 60, b->rgb[2] = 40;
    b->label = 2;
    r3d_scene_add(s, a, NULL);
    r3d_scene_add(s, b, NULL);
}

#endif

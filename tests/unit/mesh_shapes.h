/* mesh_shapes.h - analytic test meshes (icosphere, torus, height-field
 * patch, cube) and an independent topology census for the mesh tests.
 * The census sorts every directed edge globally (qsort), a different method
 * from the library's per-vertex grouping, so the two check each other.
 */
#ifndef R3D_MESH_SHAPES_H
#define R3D_MESH_SHAPES_H

#include "r3d/mesh.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double shapes_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- icosphere: icosahedron, each level splits every face in four -------- */
typedef struct shapes_mid {
    uint64_t key;
    uint32_t v;
} shapes_mid;

static inline uint32_t shapes_midpoint(r3d_mesh *m, shapes_mid *tab, size_t cap, uint32_t a,
                                       uint32_t b, double radius)
{
    if (a > b) {
        uint32_t t = a;
        a = b;
        b = t;
    }
    uint64_t key = ((uint64_t)a << 32 | b) + 1;
    size_t h = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & (cap - 1);
    while (tab[h].key && tab[h].key != key)
        h = (h + 1) & (cap - 1);
    if (tab[h].key)
        return tab[h].v;
    const float *pa = m->v + 3 * (size_t)a, *pb = m->v + 3 * (size_t)b;
    double x = (double)pa[0] + pb[0], y = (double)pa[1] + pb[1], z = (double)pa[2] + pb[2];
    double s = radius / sqrt(x * x + y * y + z * z);
    tab[h].key = key;
    tab[h].v = (uint32_t)r3d_mesh_add_vertex(m, (float)(x * s), (float)(y * s), (float)(z * s));
    return tab[h].v;
}

/* 20 * 4^level triangles on a sphere of the radius, centred at c. */
static inline r3d_mesh *shapes_icosphere(int level, double radius, const double c[3])
{
    r3d_mesh *m = r3d_mesh_new(NULL);
    const double g = (1 + sqrt(5.0)) / 2;
    const double P[12][3] = {{-1, g, 0}, {1, g, 0}, {-1, -g, 0}, {1, -g, 0},
                             {0, -1, g}, {0, 1, g}, {0, -1, -g}, {0, 1, -g},
                             {g, 0, -1}, {g, 0, 1}, {-g, 0, -1}, {-g, 0, 1}};
    const uint32_t F[20][3] = {{0, 11, 5}, {0, 5, 1},  {0, 1, 7},   {0, 7, 10}, {0, 10, 11},
                               {1, 5, 9},  {5, 11, 4}, {11, 10, 2}, {10, 7, 6}, {7, 1, 8},
                               {3, 9, 4},  {3, 4, 2},  {3, 2, 6},   {3, 6, 8},  {3, 8, 9},
                               {4, 9, 5},  {2, 4, 11}, {6, 2, 10},  {8, 6, 7},  {9, 8, 1}};
    for (int i = 0; i < 12; i++) {
        double s = radius / sqrt(P[i][0] * P[i][0] + P[i][1] * P[i][1] + P[i][2] * P[i][2]);
        r3d_mesh_add_vertex(m, (float)(P[i][0] * s), (float)(P[i][1] * s), (float)(P[i][2] * s));
    }
    for (int i = 0; i < 20; i++)
        r3d_mesh_add_triangle(m, F[i][0], F[i][1], F[i][2]);
    for (int l = 0; l < level; l++) {
        size_t cap = 1;
        while (cap < (size_t)m->nt * 4)
            cap <<= 1;
        shapes_mid *tab = calloc(cap, sizeof *tab);
        int64_t nt = m->nt;
        uint32_t *old = malloc((size_t)nt * 3 * sizeof *old);
        memcpy(old, m->t, (size_t)nt * 3 * sizeof *old);
        m->nt = 0;
        for (int64_t i = 0; i < nt; i++) {
            uint32_t a = old[3 * i], b = old[3 * i + 1], cc = old[3 * i + 2];
            uint32_t ab = shapes_midpoint(m, tab, cap, a, b, radius);
            uint32_t bc = shapes_midpoint(m, tab, cap, b, cc, radius);
            uint32_t ca = shapes_midpoint(m, tab, cap, cc, a, radius);
            r3d_mesh_add_triangle(m, a, ab, ca);
            r3d_mesh_add_triangle(m, b, bc, ab);
            r3d_mesh_add_triangle(m, cc, ca, bc);
            r3d_mesh_add_triangle(m, ab, bc, ca);
        }
        free(old);
        free(tab);
    }
    for (int64_t i = 0; i < m->nv; i++)
        for (int k = 0; k < 3; k++)
            m->v[3 * i + k] += (float)c[k];
    return m;
}

/* Torus around z: major radius R, minor r, nu x nv quads split in two. */
static inline r3d_mesh *shapes_torus(double R, double r, int nu, int nv)
{
    r3d_mesh *m = r3d_mesh_new(NULL);
    for (int i = 0; i < nu; i++)
        for (int j = 0; j < nv; j++) {
            double u = 2 * M_PI * i / nu, v = 2 * M_PI * j / nv;
            r3d_mesh_add_vertex(m, (float)((R + r * cos(v)) * cos(u)),
                                (float)((R + r * cos(v)) * sin(u)), (float)(r * sin(v)));
        }
    for (int i = 0; i < nu; i++)
        for (int j = 0; j < nv; j++) {
            uint32_t a = (uint32_t)(i * nv + j), b = (uint32_t)(((i + 1) % nu) * nv + j);
            uint32_t c = (uint32_t)(((i + 1) % nu) * nv + (j + 1) % nv);
            uint32_t d = (uint32_t)(i * nv + (j + 1) % nv);
            r3d_mesh_add_triangle(m, a, b, c);
            r3d_mesh_add_triangle(m, a, c, d);
        }
    return m;
}

/* Open patch: n x n quads over [0, size]^2 with z = amp*sin*cos bumps,
 * normals up (+z). */
static inline r3d_mesh *shapes_patch(int n, double size, double amp)
{
    r3d_mesh *m = r3d_mesh_new(NULL);
    for (int i = 0; i <= n; i++)
        for (int j = 0; j <= n; j++) {
            double x = size * i / n, y = size * j / n;
            r3d_mesh_add_vertex(m, (float)x, (float)y,
                                (float)(amp * sin(6.0 * x / size) * cos(5.0 * y / size)));
        }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            uint32_t a = (uint32_t)(i * (n + 1) + j), b = a + (uint32_t)(n + 1);
            r3d_mesh_add_triangle(m, a, b, b + 1);
            r3d_mesh_add_triangle(m, a, b + 1, a + 1);
        }
    return m;
}

/* Axis-aligned cube [0,s]^3 made of 12 triangles, outward. */
static inline r3d_mesh *shapes_cube(double s)
{
    r3d_mesh *m = r3d_mesh_new(NULL);
    for (int i = 0; i < 8; i++)
        r3d_mesh_add_vertex(m, (float)(s * (i & 1)), (float)(s * ((i >> 1) & 1)),
                            (float)(s * ((i >> 2) & 1)));
    const uint32_t F[12][3] = {{0, 2, 3}, {0, 3, 1}, {4, 5, 7}, {4, 7, 6}, {0, 1, 5}, {0, 5, 4},
                               {2, 6, 7}, {2, 7, 3}, {0, 4, 6}, {0, 6, 2}, {1, 3, 7}, {1, 7, 5}};
    for (int i = 0; i < 12; i++)
        r3d_mesh_add_triangle(m, F[i][0], F[i][1], F[i][2]);
    return m;
}

/* Append b's vertices and triangles to a. */
static inline void shapes_append(r3d_mesh *a, const r3d_mesh *b)
{
    uint32_t off = (uint32_t)a->nv;
    for (int64_t i = 0; i < b->nv; i++)
        r3d_mesh_add_vertex(a, b->v[3 * i], b->v[3 * i + 1], b->v[3 * i + 2]);
    for (int64_t i = 0; i < b->nt; i++)
        r3d_mesh_add_triangle(a, b->t[3 * i] + off, b->t[3 * i + 1] + off, b->t[3 * i + 2] + off);
}

/* ---- independent census ------------------------------------------------------ */
typedef struct shapes_census {
    int64_t edges, boundary, nonmanifold, inconsistent, unused_vertices, degenerate;
    int64_t euler; /* V - E + F over used vertices */
    double volume, area;
} shapes_census;

typedef struct shapes_he {
    uint32_t a, b; /* a < b */
    int fwd;
} shapes_he;

static inline int shapes_he_cmp(const void *x, const void *y)
{
    const shapes_he *p = x, *q = y;
    if (p->a != q->a)
        return p->a < q->a ? -1 : 1;
    if (p->b != q->b)
        return p->b < q->b ? -1 : 1;
    return p->fwd - q->fwd;
}

static inline shapes_census shapes_count(const r3d_mesh *m)
{
    shapes_census c = {0};
    shapes_he *h = malloc(((size_t)m->nt * 3 + 1) * sizeof *h);
    uint8_t *used = calloc((size_t)m->nv + 1, 1);
    size_t n = 0;
    for (int64_t i = 0; i < m->nt; i++) {
        const uint32_t *t = m->t + 3 * i;
        const float *p0 = m->v + 3 * (size_t)t[0], *p1 = m->v + 3 * (size_t)t[1],
                    *p2 = m->v + 3 * (size_t)t[2];
        double u[3] = {p1[0] - p0[0], p1[1] - p0[1], p1[2] - p0[2]};
        double v[3] = {p2[0] - p0[0], p2[1] - p0[1], p2[2] - p0[2]};
        double x[3] = {u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2],
                       u[0] * v[1] - u[1] * v[0]};
        double a2 = sqrt(x[0] * x[0] + x[1] * x[1] + x[2] * x[2]);
        c.area += a2 / 2;
        c.volume += (p0[0] * ((double)p1[1] * p2[2] - (double)p1[2] * p2[1]) -
                     p0[1] * ((double)p1[0] * p2[2] - (double)p1[2] * p2[0]) +
                     p0[2] * ((double)p1[0] * p2[1] - (double)p1[1] * p2[0])) /
                    6;
        if (t[0] == t[1] || t[1] == t[2] || t[0] == t[2] || a2 == 0)
            c.degenerate++;
        for (int k = 0; k < 3; k++) {
            uint32_t a = t[k], b = t[(k + 1) % 3];
            used[a] = 1;
            if (a == b)
                continue;
            h[n++] = a < b ? (shapes_he){a, b, 1} : (shapes_he){b, a, 0};
        }
    }
    qsort(h, n, sizeof *h, shapes_he_cmp);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        int fwd = 0;
        while (j < n && h[j].a == h[i].a && h[j].b == h[i].b)
            fwd += h[j++].fwd;
        size_t k = j - i;
        c.edges++;
        if (k == 1)
            c.boundary++;
        else if (k > 2)
            c.nonmanifold++;
        else if (fwd != 1)
            c.inconsistent++;
        i = j;
    }
    int64_t nused = 0;
    for (int64_t v = 0; v < m->nv; v++)
        nused += used[v];
    c.unused_vertices = m->nv - nused;
    c.euler = nused - c.edges + m->nt;
    free(h);
    free(used);
    return c;
}

#endif

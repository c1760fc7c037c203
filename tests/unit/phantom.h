/* phantom.h - analytic shapes as label volumes, and the surface checks the
 * mesh tests share: how far a mesh lies from the true shape, and whether
 * it is closed, manifold and consistently wound (a test-local edge count,
 * independent of the library's own r3d_mesh_check_run).
 *
 * A phantom voxel is labelled 1 when its centre, mapped through the
 * volume's ijk_to_lps, lies inside the shape: the binary sampling a
 * segmentation would give, with no partial-volume help.
 */
#ifndef R3D_TEST_PHANTOM_H
#define R3D_TEST_PHANTOM_H

#include "r3d/mesh.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct phantom {
    const char *name;
    /* inside test and unsigned distance to the true surface, in LPS mm */
    int (*inside)(const struct phantom *p, const double x[3]);
    double (*dist)(const struct phantom *p, const double x[3]);
    double a, b, c;      /* shape parameters (radii, half lengths) */
    double volume_mm3;   /* analytic enclosed volume */
    int64_t euler;       /* expected V - E + F */
} phantom;

/* ---- shapes, centred on the origin ---------------------------------------------- */

static inline double ph_len(const double x[3]) { return sqrt(x[0] * x[0] + x[1] * x[1] + x[2] * x[2]); }

static int sphere_in(const phantom *p, const double x[3]) { return ph_len(x) <= p->a; }
static double sphere_dist(const phantom *p, const double x[3]) { return fabs(ph_len(x) - p->a); }

/* Hollow shell between radii b < a: two surfaces, one inside the other. */
static int shell_in(const phantom *p, const double x[3])
{
    double r = ph_len(x);
    return r <= p->a && r >= p->b;
}
static double shell_dist(const phantom *p, const double x[3])
{
    double r = ph_len(x);
    return fmin(fabs(r - p->a), fabs(r - p->b));
}

/* Torus about z: major radius a, minor radius b. */
static int torus_in(const phantom *p, const double x[3])
{
    double q = sqrt(x[0] * x[0] + x[1] * x[1]) - p->a;
    return q * q + x[2] * x[2] <= p->b * p->b;
}
static double torus_dist(const phantom *p, const double x[3])
{
    double q = sqrt(x[0] * x[0] + x[1] * x[1]) - p->a;
    return fabs(sqrt(q * q + x[2] * x[2]) - p->b);
}

/* Cylinder about z: radius a, half length c. Distance to its solid's
 * boundary (side, caps, rims). */
static int cyl_in(const phantom *p, const double x[3])
{
    return x[0] * x[0] + x[1] * x[1] <= p->a * p->a && fabs(x[2]) <= p->c;
}
static double cyl_dist(const phantom *p, const double x[3])
{
    double dr = sqrt(x[0] * x[0] + x[1] * x[1]) - p->a, dz = fabs(x[2]) - p->c;
    if (dr > 0 && dz > 0)
        return sqrt(dr * dr + dz * dz);
    if (dr <= 0 && dz <= 0)
        return fmin(-dr, -dz);
    return fmax(dr, dz);
}

/* Box of half sizes a, b, c (the thin plate). */
static int box_in(const phantom *p, const double x[3])
{
    return fabs(x[0]) <= p->a && fabs(x[1]) <= p->b && fabs(x[2]) <= p->c;
}
static double box_dist(const phantom *p, const double x[3])
{
    double q[3] = {fabs(x[0]) - p->a, fabs(x[1]) - p->b, fabs(x[2]) - p->c};
    double out = 0, in = fmax(q[0], fmax(q[1], q[2]));
    for (int k = 0; k < 3; k++)
        out += q[k] > 0 ? q[k] * q[k] : 0;
    return in > 0 ? sqrt(out) : -in;
}

static inline phantom ph_sphere(double r)
{
    phantom p = {"sphere", sphere_in, sphere_dist, r, 0, 0, 4.0 / 3.0 * M_PI * r * r * r, 2};
    return p;
}
static inline phantom ph_shell(double ro, double ri)
{
    phantom p = {"shell", shell_in, shell_dist, ro, ri, 0,
                 4.0 / 3.0 * M_PI * (ro * ro * ro - ri * ri * ri), 4};
    return p;
}
static inline phantom ph_torus(double R, double r)
{
    phantom p = {"torus", torus_in, torus_dist, R, r, 0, 2 * M_PI * M_PI * R * r * r, 0};
    return p;
}
static inline phantom ph_cylinder(double r, double half_len)
{
    phantom p = {"cylinder", cyl_in, cyl_dist, r, 0, half_len, M_PI * r * r * 2 * half_len, 2};
    return p;
}
static inline phantom ph_box(double hx, double hy, double hz)
{
    phantom p = {"box", box_in, box_dist, hx, hy, hz, 8 * hx * hy * hz, 2};
    return p;
}

/* ---- volumes ------------------------------------------------------------------------ */

/* A uint16 label volume of the phantom (label 1) on a grid with the given
 * 3x3 direction/spacing matrix (columns = voxel axes in LPS mm), sized to
 * hold extent_mm around the origin plus a margin, centred on the origin. */
static inline r3d_volume *phantom_volume(const phantom *p, const double axes[3][3],
                                         double extent_mm)
{
    int64_t dim[4] = {1, 1, 1, 1};
    for (int c = 0; c < 3; c++) {
        double len = sqrt(axes[0][c] * axes[0][c] + axes[1][c] * axes[1][c] + axes[2][c] * axes[2][c]);
        /* odd, so a voxel centre sits on the origin (the thin plate) */
        dim[c] = 2 * (int64_t)ceil(extent_mm / len) + 7;
    }
    r3d_volume *v = r3d_volume_new(dim, R3D_U16, NULL);
    if (!v)
        return NULL;
    for (int r = 0; r < 3; r++) {
        double o = 0;
        for (int c = 0; c < 3; c++) {
            v->ijk_to_lps[r][c] = axes[r][c];
            o -= axes[r][c] * (dim[c] - 1) / 2.0;
        }
        v->ijk_to_lps[r][3] = o;
    }
    r3d_volume_update_spacing(v);
    uint16_t *vox = v->voxels;
    for (int64_t k = 0; k < dim[2]; k++)
        for (int64_t j = 0; j < dim[1]; j++)
            for (int64_t i = 0; i < dim[0]; i++) {
                double x[3];
                for (int r = 0; r < 3; r++)
                    x[r] = v->ijk_to_lps[r][0] * i + v->ijk_to_lps[r][1] * j +
                           v->ijk_to_lps[r][2] * k + v->ijk_to_lps[r][3];
                vox[(k * dim[1] + j) * dim[0] + i] = (uint16_t)p->inside(p, x);
            }
    return v;
}

static inline void axes_diag(double axes[3][3], double sx, double sy, double sz)
{
    memset(axes, 0, 9 * sizeof(double));
    axes[0][0] = sx;
    axes[1][1] = sy;
    axes[2][2] = sz;
}

/* ---- checks --------------------------------------------------------------------------- */

typedef struct ph_err {
    double mean, p95, max;
} ph_err;

static int ph_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Distance of every vertex to the analytic surface (mesh in LPS). */
static inline ph_err phantom_error(const phantom *p, const r3d_mesh *m)
{
    ph_err e = {0, 0, 0};
    if (m->nv == 0)
        return e;
    double *d = malloc((size_t)m->nv * sizeof *d);
    for (int64_t i = 0; i < m->nv; i++) {
        double x[3] = {m->v[3 * i], m->v[3 * i + 1], m->v[3 * i + 2]};
        d[i] = p->dist(p, x);
        e.mean += d[i];
    }
    e.mean /= (double)m->nv;
    qsort(d, (size_t)m->nv, sizeof *d, ph_cmp_double);
    e.p95 = d[(int64_t)ceil(0.95 * (double)m->nv) - 1];
    e.max = d[m->nv - 1];
    free(d);
    return e;
}

static int ph_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Closed, manifold on edges and consistently wound: every directed side
 * (a, b) occurs exactly once and its reverse (b, a) exactly once, i.e.
 * every edge lies in exactly two triangles that traverse it oppositely.
 * Also no triangle repeats a vertex. Returns the number of violations. */
static inline int64_t mesh_edge_defects(const r3d_mesh *m)
{
    int64_t n = 3 * m->nt, bad = 0;
    uint64_t *k = malloc((size_t)(n + 1) * sizeof *k);
    for (int64_t t = 0; t < m->nt; t++)
        for (int c = 0; c < 3; c++) {
            uint64_t a = m->t[3 * t + c], b = m->t[3 * t + (c + 1) % 3];
            if (a == b || a >= (uint64_t)m->nv)
                bad++;
            k[3 * t + c] = a << 32 | b;
        }
    qsort(k, (size_t)n, sizeof *k, ph_cmp_u64);
    for (int64_t i = 0; i < n; i++) {
        if (i + 1 < n && k[i + 1] == k[i])
            bad++;
        uint64_t r = (k[i] & 0xffffffffu) << 32 | k[i] >> 32;
        if (!bsearch(&r, k, (size_t)n, sizeof *k, ph_cmp_u64))
            bad++;
    }
    free(k);
    return bad;
}

/* Every vertex's triangles form one disc (closed fan): walking around the
 * vertex from one triangle through shared edges visits all of them. */
static inline int64_t mesh_vertex_defects(const r3d_mesh *m)
{
    int64_t *start = calloc((size_t)m->nv + 1, sizeof *start), bad = 0;
    int64_t *list = malloc((size_t)(3 * m->nt + 1) * sizeof *list);
    for (int64_t i = 0; i < 3 * m->nt; i++)
        start[m->t[i] + 1]++;
    for (int64_t v = 0; v < m->nv; v++)
        start[v + 1] += start[v];
    int64_t *fill = malloc((size_t)(m->nv + 1) * sizeof *fill);
    memcpy(fill, start, (size_t)m->nv * sizeof *fill);
    for (int64_t i = 0; i < 3 * m->nt; i++)
        list[fill[m->t[i]]++] = i; /* corner index: triangle i / 3 */
    for (int64_t v = 0; v < m->nv; v++) {
        int64_t b = start[v], n = start[v + 1] - b;
        if (n == 0)
            continue;
        /* from the first corner, follow "the next vertex after v" to the
         * triangle whose "previous vertex before v" equals it */
        int64_t cur = list[b], steps = 0;
        do {
            int64_t t = cur / 3, c = cur % 3;
            uint32_t nxt = m->t[3 * t + (c + 1) % 3];
            int64_t found = -1;
            for (int64_t i = 0; i < n; i++) {
                int64_t q = list[b + i], tq = q / 3, cq = q % 3;
                if (m->t[3 * tq + (cq + 2) % 3] == nxt) {
                    found = q;
                    break;
                }
            }
            if (found < 0)
                break;
            cur = found;
            steps++;
        } while (cur != list[b] && steps <= n);
        if (steps != n || cur != list[b])
            bad++;
    }
    free(start);
    free(list);
    free(fill);
    return bad;
}

#endif

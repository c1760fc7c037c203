/* metrics.c - what a surface measures: enclosed volume, area, bounding box,
 * Euler characteristic and genus; and the distance between two surfaces.
 *
 * Volume is the sum of signed tetrahedra (origin, a, b, c) / 6 (divergence
 * theorem), positive when the triangles wind counter-clockwise from outside;
 * points are taken relative to the first vertex so large patient offsets do
 * not cost precision. Edges for V - E + F are counted by radix-sorting the
 * 64-bit keys (min << 32 | max) of the 3F directed sides: O(F). V counts
 * vertices used by a triangle. Genus is (2C - chi) / 2 for a closed mesh
 * (every edge in exactly two triangles) of C components - for one component
 * the usual (2 - chi) / 2 - and -1 when the mesh is not closed.
 *
 * r3d_mesh_distance: every vertex of A to the nearest triangle of B and
 * every vertex of B to A (exact point-triangle distance, Ericson 2005,
 * "Real-Time Collision Detection" 5.1.5), pooled; mean, 95th percentile
 * (nearest rank) and max. Triangles are binned in a uniform grid of about
 * one triangle per cell; a query searches rings of cells around its cell
 * until the best distance is below the ring's lower bound, so a query
 * costs O(1) triangles on surfaces and the whole is O((nA + nB) log) for the
 * final sort. Queries run in parallel, each writing its own slot.
 */
#include "r3d/mesh.h"
#include "core/uf.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ---- volume, area, bbox, Euler ------------------------------------------------ */

static void radix_sort_u64(uint64_t *a, uint64_t *tmp, int64_t n)
{
    /* LSD, 16-bit digits: 4 passes of O(n + 65536). */
    int64_t *cnt = malloc(65537 * sizeof *cnt);
    if (!cnt) {
        /* insertion fallback is O(n^2); never reached in practice, and
         * still correct */
        for (int64_t i = 1; i < n; i++) {
            uint64_t x = a[i];
            int64_t j = i;
            while (j > 0 && a[j - 1] > x) {
                a[j] = a[j - 1];
                j--;
            }
            a[j] = x;
        }
        return;
    }
    for (int pass = 0; pass < 4; pass++) {
        int sh = 16 * pass;
        memset(cnt, 0, 65537 * sizeof *cnt);
        for (int64_t i = 0; i < n; i++)
            cnt[((a[i] >> sh) & 0xffff) + 1]++;
        for (int d = 0; d < 65536; d++)
            cnt[d + 1] += cnt[d];
        for (int64_t i = 0; i < n; i++)
            tmp[cnt[(a[i] >> sh) & 0xffff]++] = a[i];
        memcpy(a, tmp, (size_t)n * sizeof *a);
    }
    free(cnt);
}


void r3d_mesh_metrics_run(const r3d_mesh *m, r3d_mesh_metrics *out)
{
    memset(out, 0, sizeof *out);
    out->genus = -1;
    if (!m || m->nt == 0 || m->nv == 0)
        return;
    for (int k = 0; k < 3; k++) {
        out->bbox_min[k] = INFINITY;
        out->bbox_max[k] = -INFINITY;
    }
    const float *o = m->v;
    double vol = 0, area = 0;
    for (int64_t t = 0; t < m->nt; t++) {
        const uint32_t *f = m->t + 3 * t;
        if (f[0] >= m->nv || f[1] >= m->nv || f[2] >= m->nv)
            continue;
        double p[3][3];
        for (int i = 0; i < 3; i++)
            for (int k = 0; k < 3; k++) {
                double x = m->v[3 * (int64_t)f[i] + k];
                p[i][k] = x - o[k];
                if (x < out->bbox_min[k])
                    out->bbox_min[k] = x;
                if (x > out->bbox_max[k])
                    out->bbox_max[k] = x;
            }
        double c[3] = {p[1][1] * p[2][2] - p[1][2] * p[2][1], p[1][2] * p[2][0] - p[1][0] * p[2][2],
                       p[1][0] * p[2][1] - p[1][1] * p[2][0]};
        vol += p[0][0] * c[0] + p[0][1] * c[1] + p[0][2] * c[2];
        double u[3], w[3];
        for (int k = 0; k < 3; k++) {
            u[k] = p[1][k] - p[0][k];
            w[k] = p[2][k] - p[0][k];
        }
        double n[3] = {u[1] * w[2] - u[2] * w[1], u[2] * w[0] - u[0] * w[2],
                       u[0] * w[1] - u[1] * w[0]};
        area += 0.5 * sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
    }
    out->volume_mm3 = vol / 6.0;
    out->area_mm2 = area;

    /* Topology: a failed allocation leaves euler 0 and genus -1. */
    int64_t ne = 3 * m->nt;
    uint64_t *key = malloc((size_t)ne * sizeof *key);
    uint64_t *tmp = malloc((size_t)ne * sizeof *tmp);
    uint8_t *used = calloc((size_t)m->nv, 1);
    uint32_t *par = malloc((size_t)m->nv * sizeof *par);
    if (!key || !tmp || !used || !par)
        goto done;
    for (int64_t v = 0; v < m->nv; v++)
        par[v] = (uint32_t)v;
    int64_t n = 0, F = 0;
    for (int64_t t = 0; t < m->nt; t++) {
        const uint32_t *f = m->t + 3 * t;
        if (f[0] >= m->nv || f[1] >= m->nv || f[2] >= m->nv)
            continue;
        F++;
        for (int k = 0; k < 3; k++) {
            uint32_t a = f[k], b = f[(k + 1) % 3];
            used[a] = 1;
            key[n++] = a < b ? (uint64_t)a << 32 | b : (uint64_t)b << 32 | a;
            r3d__uf_union(par, a, b);
        }
    }
    radix_sort_u64(key, tmp, n);
    int64_t E = 0, V = 0, C = 0;
    int closed = 1;
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        while (j < n && key[j] == key[i])
            j++;
        if (j - i != 2)
            closed = 0;
        E++;
        i = j;
    }
    for (int64_t v = 0; v < m->nv; v++)
        if (used[v]) {
            V++;
            if (r3d__uf_find(par, (uint32_t)v) == (uint32_t)v)
                C++;
        }
    out->euler = V - E + F;
    if (closed && (2 * C - out->euler) % 2 == 0)
        out->genus = (2 * C - out->euler) / 2;
done:
    free(key);
    free(tmp);
    free(used);
    free(par);
}

/* ---- distance ------------------------------------------------------------------ */

/* Squared distance from p to triangle abc (Ericson 2005, 5.1.5). */
static double point_tri_dist2(const double p[3], const double a[3], const double b[3],
                              const double c[3])
{
    double ab[3], ac[3], ap[3], q[3];
    for (int k = 0; k < 3; k++) {
        ab[k] = b[k] - a[k];
        ac[k] = c[k] - a[k];
        ap[k] = p[k] - a[k];
    }
#define DOT(u, w) ((u)[0] * (w)[0] + (u)[1] * (w)[1] + (u)[2] * (w)[2])
    double d1 = DOT(ab, ap), d2 = DOT(ac, ap);
    if (d1 <= 0 && d2 <= 0) {
        memcpy(q, a, sizeof q);
        goto out;
    }
    double bp[3];
    for (int k = 0; k < 3; k++)
        bp[k] = p[k] - b[k];
    double d3 = DOT(ab, bp), d4 = DOT(ac, bp);
    if (d3 >= 0 && d4 <= d3) {
        memcpy(q, b, sizeof q);
        goto out;
    }
    double vc = d1 * d4 - d3 * d2;
    if (vc <= 0 && d1 >= 0 && d3 <= 0) {
        double v = d1 / (d1 - d3);
        for (int k = 0; k < 3; k++)
            q[k] = a[k] + v * ab[k];
        goto out;
    }
    double cp[3];
    for (int k = 0; k < 3; k++)
        cp[k] = p[k] - c[k];
    double d5 = DOT(ab, cp), d6 = DOT(ac, cp);
    if (d6 >= 0 && d5 <= d6) {
        memcpy(q, c, sizeof q);
        goto out;
    }
    double vb = d5 * d2 - d1 * d6;
    if (vb <= 0 && d2 >= 0 && d6 <= 0) {
        double w = d2 / (d2 - d6);
        for (int k = 0; k < 3; k++)
            q[k] = a[k] + w * ac[k];
        goto out;
    }
    double va = d3 * d6 - d5 * d4;
    if (va <= 0 && (d4 - d3) >= 0 && (d5 - d6) >= 0) {
        double w = (d4 - d3) / ((d4 - d3) + (d5 - d6));
        for (int k = 0; k < 3; k++)
            q[k] = b[k] + w * (c[k] - b[k]);
        goto out;
    }
    {
        double den = va + vb + vc;
        if (den == 0) { /* zero-area triangle: its vertices were handled */
            memcpy(q, a, sizeof q);
            goto out;
        }
        double v = vb / den, w = vc / den;
        for (int k = 0; k < 3; k++)
            q[k] = a[k] + ab[k] * v + ac[k] * w;
    }
out:
    for (int k = 0; k < 3; k++)
        q[k] -= p[k];
    return DOT(q, q);
#undef DOT
}

typedef struct grid {
    const r3d_mesh *m;
    double lo[3], h;
    int64_t n[3];
    int64_t *start; /* cells + 1 */
    uint32_t *tri;
} grid;

static void grid_free(grid *g)
{
    free(g->start);
    free(g->tri);
}

static void tri_cells(const grid *g, int64_t t, int64_t c0[3], int64_t c1[3])
{
    for (int k = 0; k < 3; k++) {
        double lo = INFINITY, hi = -INFINITY;
        for (int i = 0; i < 3; i++) {
            double x = g->m->v[3 * (int64_t)g->m->t[3 * t + i] + k];
            lo = x < lo ? x : lo;
            hi = x > hi ? x : hi;
        }
        c0[k] = (int64_t)((lo - g->lo[k]) / g->h);
        c1[k] = (int64_t)((hi - g->lo[k]) / g->h);
        if (c0[k] < 0)
            c0[k] = 0;
        if (c1[k] >= g->n[k])
            c1[k] = g->n[k] - 1;
    }
}

static int grid_build(const r3d_mesh *m, grid *g)
{
    memset(g, 0, sizeof *g);
    g->m = m;
    double hi[3];
    for (int k = 0; k < 3; k++) {
        g->lo[k] = INFINITY;
        hi[k] = -INFINITY;
    }
    for (int64_t i = 0; i < m->nv; i++)
        for (int k = 0; k < 3; k++) {
            double x = m->v[3 * i + k];
            g->lo[k] = x < g->lo[k] ? x : g->lo[k];
            hi[k] = x > hi[k] ? x : hi[k];
        }
    /* Cells of about the mean triangle size: for a surface of F triangles
     * spread over a box, h = sqrt(area / F) puts O(1) triangles per cell. */
    double area = 0;
    for (int64_t t = 0; t < m->nt; t++) {
        const float *a = m->v + 3 * (int64_t)m->t[3 * t], *b = m->v + 3 * (int64_t)m->t[3 * t + 1],
                    *c = m->v + 3 * (int64_t)m->t[3 * t + 2];
        double u[3], w[3];
        for (int k = 0; k < 3; k++) {
            u[k] = b[k] - a[k];
            w[k] = c[k] - a[k];
        }
        double n0 = u[1] * w[2] - u[2] * w[1], n1 = u[2] * w[0] - u[0] * w[2],
               n2 = u[0] * w[1] - u[1] * w[0];
        area += 0.5 * sqrt(n0 * n0 + n1 * n1 + n2 * n2);
    }
    double ext = 0;
    for (int k = 0; k < 3; k++)
        ext = fmax(ext, hi[k] - g->lo[k]);
    g->h = sqrt(2 * area / (double)m->nt);
    if (!(g->h > ext / 512))
        g->h = ext > 0 ? ext / 512 : 1;
    int64_t cells = 1;
    for (int k = 0; k < 3; k++) {
        g->n[k] = (int64_t)((hi[k] - g->lo[k]) / g->h) + 1;
        cells *= g->n[k];
    }
    if (cells > 64 * m->nt + 4096) { /* flat, spread meshes: coarser cells */
        double s = cbrt((double)cells / (double)(64 * m->nt + 4096));
        g->h *= s;
        cells = 1;
        for (int k = 0; k < 3; k++) {
            g->n[k] = (int64_t)((hi[k] - g->lo[k]) / g->h) + 1;
            cells *= g->n[k];
        }
    }
    g->start = calloc((size_t)cells + 1, sizeof *g->start);
    if (!g->start)
        return 0;
    int64_t c0[3], c1[3];
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t t = 0; t < m->nt; t++) {
            tri_cells(g, t, c0, c1);
            for (int64_t z = c0[2]; z <= c1[2]; z++)
                for (int64_t y = c0[1]; y <= c1[1]; y++)
                    for (int64_t x = c0[0]; x <= c1[0]; x++) {
                        int64_t c = (z * g->n[1] + y) * g->n[0] + x;
                        if (pass == 0)
                            g->start[c + 1]++;
                        else
                            g->tri[g->start[c]++] = (uint32_t)t;
                    }
        }
        if (pass == 0) {
            for (int64_t c = 0; c < cells; c++)
                g->start[c + 1] += g->start[c];
            g->tri = malloc((size_t)g->start[cells] * sizeof *g->tri + 1);
            if (!g->tri)
                return 0;
        } else {
            for (int64_t c = cells; c > 0; c--)
                g->start[c] = g->start[c - 1];
            g->start[0] = 0;
        }
    }
    return 1;
}

static double grid_query(const grid *g, const double p[3], uint32_t *stamp, uint32_t mark)
{
    int64_t c[3];
    for (int k = 0; k < 3; k++) {
        double x = (p[k] - g->lo[k]) / g->h;
        c[k] = x < 0 ? 0 : (x >= g->n[k] ? g->n[k] - 1 : (int64_t)x);
    }
    int64_t rmax = g->n[0];
    if (g->n[1] > rmax)
        rmax = g->n[1];
    if (g->n[2] > rmax)
        rmax = g->n[2];
    double best = INFINITY;
    const r3d_mesh *m = g->m;
    for (int64_t r = 0; r <= rmax; r++) {
        for (int64_t z = c[2] - r; z <= c[2] + r; z++) {
            if (z < 0 || z >= g->n[2])
                continue;
            for (int64_t y = c[1] - r; y <= c[1] + r; y++) {
                if (y < 0 || y >= g->n[1])
                    continue;
                int edge_zy = (z == c[2] - r || z == c[2] + r || y == c[1] - r || y == c[1] + r);
                for (int64_t x = c[0] - r; x <= c[0] + r; x += (edge_zy || r == 0) ? 1 : 2 * r) {
                    if (x < 0 || x >= g->n[0])
                        continue;
                    int64_t cell = (z * g->n[1] + y) * g->n[0] + x;
                    for (int64_t i = g->start[cell]; i < g->start[cell + 1]; i++) {
                        uint32_t t = g->tri[i];
                        if (stamp[t] == mark)
                            continue;
                        stamp[t] = mark;
                        double a[3], b[3], cc[3];
                        for (int k = 0; k < 3; k++) {
                            a[k] = m->v[3 * (int64_t)m->t[3 * t] + k];
                            b[k] = m->v[3 * (int64_t)m->t[3 * t + 1] + k];
                            cc[k] = m->v[3 * (int64_t)m->t[3 * t + 2] + k];
                        }
                        double d = point_tri_dist2(p, a, b, cc);
                        if (d < best)
                            best = d;
                    }
                }
            }
        }
        /* Everything outside rings 0..r is at least r cells from the
         * (clamped) query cell; projection onto the grid box only brings
         * points closer, so the bound holds for queries outside it too. */
        double bound = (double)r * g->h;
        if (best <= bound * bound)
            break;
    }
    return sqrt(best);
}

typedef struct dist_ctx {
    const r3d_mesh *from;
    const grid *g;
    float *out;
    atomic_int oom;
} dist_ctx;

static void dist_range(void *ctx, int64_t b, int64_t e)
{
    dist_ctx *d = ctx;
    uint32_t *stamp = calloc((size_t)d->g->m->nt + 1, sizeof *stamp);
    if (!stamp) {
        atomic_store(&d->oom, 1);
        return;
    }
    uint32_t mark = 0;
    for (int64_t v = b; v < e; v++) {
        if (++mark == 0) {
            memset(stamp, 0, ((size_t)d->g->m->nt + 1) * sizeof *stamp);
            mark = 1;
        }
        double p[3] = {d->from->v[3 * v], d->from->v[3 * v + 1], d->from->v[3 * v + 2]};
        d->out[v] = (float)grid_query(d->g, p, stamp, mark);
    }
    free(stamp);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* 0 when a triangle names a missing vertex, -1 when a coordinate is not
 * finite (it would be binned into no grid cell), 1 when usable. */
static int mesh_valid(const r3d_mesh *m)
{
    for (int64_t i = 0; i < 3 * m->nt; i++)
        if (m->t[i] >= m->nv)
            return 0;
    for (int64_t i = 0; i < 3 * m->nv; i++)
        if (!isfinite(m->v[i]))
            return -1;
    return 1;
}

r3d_status r3d_mesh_distance(const r3d_mesh *a, const r3d_mesh *b, r3d_surface_distance *out,
                             r3d_error *err)
{
    memset(out, 0, sizeof *out);
    if (!a || !b || a->nt == 0 || b->nt == 0)
        return r3d_fail(err, R3D_EARG, "mesh_distance: both meshes need triangles");
    int va = mesh_valid(a), vb = mesh_valid(b);
    if (va == 0 || vb == 0)
        return r3d_fail(err, R3D_EDATA, "mesh_distance: a triangle uses a vertex that does not exist");
    if (va < 0 || vb < 0)
        return r3d_fail(err, R3D_EDATA, "mesh_distance: a vertex coordinate is not a finite number");
    int64_t n = a->nv + b->nv;
    float *d = malloc((size_t)n * sizeof *d);
    grid ga, gb;
    memset(&ga, 0, sizeof ga);
    memset(&gb, 0, sizeof gb);
    int ok = d && grid_build(b, &gb);
    ok = grid_build(a, &ga) && ok;
    if (ok) {
        dist_ctx ca = {a, &gb, d, 0}, cb = {b, &ga, d + a->nv, 0};
        r3d_parallel_for(a->nv, dist_range, &ca);
        r3d_parallel_for(b->nv, dist_range, &cb);
        ok = !atomic_load(&ca.oom) && !atomic_load(&cb.oom);
    }
    grid_free(&ga);
    grid_free(&gb);
    if (!ok) {
        free(d);
        return r3d_fail(err, R3D_ENOMEM, "mesh_distance: out of memory for %lld vertices",
                        (long long)n);
    }
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += d[i];
    qsort(d, (size_t)n, sizeof *d, cmp_float);
    int64_t r95 = (int64_t)ceil(0.95 * (double)n) - 1;
    out->mean_mm = sum / (double)n;
    out->p95_mm = d[r95 < 0 ? 0 : r95];
    out->max_mm = d[n - 1];
    free(d);
    return R3D_OK;
}

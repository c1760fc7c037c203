/* repair.c - mesh clean-up and the manifold/watertight check.
 *
 *   r3d_mesh_remove_degenerate  merge vertices with bit-identical coordinates
 *       (epsilon 0: -0 equals +0, nothing else is snapped, so distinct
 *       vertices of a fine mesh are never fused), then drop faces with an
 *       index out of range, a repeated index, zero area (twice the area at
 *       most 1e-12 x the longest edge squared, i.e. collinear up to double
 *       rounding) or the same three vertices as an earlier face (either
 *       winding; the first is kept), then unused vertices. Hash tables,
 *       O(n). A collinear face is simply removed, so a T-junction it hid
 *       shows up as boundary edges in r3d_mesh_check_run.
 *   r3d_mesh_keep_largest_component / r3d_mesh_drop_small_components
 *       components are sets of faces joined through shared vertices (union-
 *       find, O(n alpha(n))). "Largest" is the largest |enclosed volume|,
 *       then the largest area (open sheets enclose ~nothing). The volume is
 *       the signed-tetrahedra sum about the component's centroid, so it does
 *       not depend on where the mesh sits for open pieces either.
 *   r3d_mesh_fill_holes  every boundary loop is closed, including the
 *       outline of an open sheet: a loop is projected on the plane of its
 *       Newell normal and ear-clipped (O(k^2) for k loop vertices); when the
 *       projection is not a simple polygon (a strongly curved or twisted
 *       hole), or k > 5000, a fan to a new vertex at the loop's centroid is
 *       used instead. No new interior vertices are inserted and the patch is
 *       not faired: large holes get long thin triangles, and a diagonal that
 *       already exists elsewhere in the mesh can make a non-manifold edge.
 *       Loops are walked along the winding of the faces around them, so
 *       run r3d_mesh_orient_outward first: around a wrongly wound face the
 *       boundary path does not close and that hole is left open.
 *   r3d_mesh_orient_outward  breadth-first over faces joined by manifold
 *       edges (not across edges with more than two faces), flipping each
 *       neighbour to the winding of the face it was reached from; then every
 *       such component whose signed volume is negative is flipped whole.
 *       Limit: a closed cavity surface (inner wall of a hollow shell stored
 *       as its own component) is also turned to positive volume.
 *   r3d_mesh_check_run  counts every defect with the helpers of
 *       mesh_topology.c; "oriented" means consistent winding and no
 *       closed component with negative signed volume (inside out).
 */
#include "core/uf.h"
#include "mesh_topology.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small shared pieces ----------------------------------------------------- */

/* Is the area zero relative to the face's size (collinear up to double rounding)? */
static int tri_zero_area(const float *a, const float *b, const float *c)
{
    double u[3] = {(double)b[0] - a[0], (double)b[1] - a[1], (double)b[2] - a[2]};
    double v[3] = {(double)c[0] - a[0], (double)c[1] - a[1], (double)c[2] - a[2]};
    double w[3] = {(double)c[0] - b[0], (double)c[1] - b[1], (double)c[2] - b[2]};
    double x[3] = {u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]};
    double l = sqrt(x[0] * x[0] + x[1] * x[1] + x[2] * x[2]);
    double lu = u[0] * u[0] + u[1] * u[1] + u[2] * u[2];
    double lv = v[0] * v[0] + v[1] * v[1] + v[2] * v[2];
    double L = fmax(fmax(lu, lv), w[0] * w[0] + w[1] * w[1] + w[2] * w[2]);
    return !(l > 1e-12 * L);
}

static int tri_degenerate(const r3d_mesh *m, const uint32_t *t)
{
    if (!r3d__tri_valid(t, m->nv))
        return 1;
    return tri_zero_area(m->v + 3 * (size_t)t[0], m->v + 3 * (size_t)t[1], m->v + 3 * (size_t)t[2]);
}

static double tet_volume(const double *o, const float *a, const float *b, const float *c)
{
    double p[3] = {a[0] - o[0], a[1] - o[1], a[2] - o[2]};
    double q[3] = {b[0] - o[0], b[1] - o[1], b[2] - o[2]};
    double r[3] = {c[0] - o[0], c[1] - o[1], c[2] - o[2]};
    return (p[0] * (q[1] * r[2] - q[2] * r[1]) - p[1] * (q[0] * r[2] - q[2] * r[0]) +
            p[2] * (q[0] * r[1] - q[1] * r[0])) /
           6;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

/* ---- remove_degenerate ------------------------------------------------------------- */

static uint32_t float_key(float f)
{
    uint32_t u;
    if (f == 0)
        f = 0; /* -0 and +0 are one point */
    memcpy(&u, &f, sizeof u);
    return u;
}

r3d_status r3d_mesh_remove_degenerate(r3d_mesh *m, r3d_error *err)
{
    if (!m)
        return r3d_fail(err, R3D_EARG, "remove_degenerate: no mesh");
    size_t vcap = pow2_at_least(2 * (size_t)m->nv + 1), tcap = pow2_at_least(2 * (size_t)m->nt + 1);
    uint32_t *vtab = malloc(vcap * sizeof *vtab);
    uint32_t *map = malloc(((size_t)m->nv + 1) * sizeof *map);
    int64_t *ttab = malloc(tcap * sizeof *ttab);
    if (!vtab || !map || !ttab) {
        free(vtab), free(map), free(ttab);
        return r3d_fail(err, R3D_ENOMEM, "remove_degenerate: out of memory for %lld vertices",
                        (long long)m->nv);
    }
    /* Coincident vertices: open addressing on the coordinate bits; each
     * vertex maps to the first one with the same position. */
    memset(vtab, 0xff, vcap * sizeof *vtab);
    for (int64_t v = 0; v < m->nv; v++) {
        const float *p = m->v + 3 * v;
        uint32_t k[3] = {float_key(p[0]), float_key(p[1]), float_key(p[2])};
        uint64_t h = mix64(((uint64_t)k[0] << 32 | k[1]) ^ mix64(k[2]));
        size_t i = (size_t)h & (vcap - 1);
        for (;; i = (i + 1) & (vcap - 1)) {
            uint32_t o = vtab[i];
            if (o == UINT32_MAX) {
                vtab[i] = (uint32_t)v;
                map[v] = (uint32_t)v;
                break;
            }
            const float *q = m->v + 3 * (size_t)o;
            if (float_key(q[0]) == k[0] && float_key(q[1]) == k[1] && float_key(q[2]) == k[2]) {
                map[v] = o;
                break;
            }
        }
    }
    /* Faces: remap, drop degenerate ones and repeats of a vertex set. */
    for (size_t i = 0; i < tcap; i++)
        ttab[i] = -1;
    int64_t nt = 0;
    for (int64_t i = 0; i < m->nt; i++) {
        uint32_t *t = m->t + 3 * i;
        if (t[0] >= (uint64_t)m->nv || t[1] >= (uint64_t)m->nv || t[2] >= (uint64_t)m->nv)
            continue;
        uint32_t a = map[t[0]], b = map[t[1]], c = map[t[2]];
        uint32_t r[3] = {a, b, c};
        if (a == b || b == c || a == c || tri_degenerate(m, r))
            continue;
        uint32_t s[3] = {a, b, c}, x;
        if (s[0] > s[1]) x = s[0], s[0] = s[1], s[1] = x;
        if (s[1] > s[2]) x = s[1], s[1] = s[2], s[2] = x;
        if (s[0] > s[1]) x = s[0], s[0] = s[1], s[1] = x;
        uint64_t h = mix64(((uint64_t)s[0] << 32 | s[1]) ^ mix64(s[2]));
        size_t j = (size_t)h & (tcap - 1);
        int dup = 0;
        for (; ttab[j] >= 0; j = (j + 1) & (tcap - 1)) {
            const uint32_t *o = m->t + 3 * ttab[j];
            uint32_t q[3] = {o[0], o[1], o[2]};
            if (q[0] > q[1]) x = q[0], q[0] = q[1], q[1] = x;
            if (q[1] > q[2]) x = q[1], q[1] = q[2], q[2] = x;
            if (q[0] > q[1]) x = q[0], q[0] = q[1], q[1] = x;
            if (q[0] == s[0] && q[1] == s[1] && q[2] == s[2]) {
                dup = 1;
                break;
            }
        }
        if (dup)
            continue;
        /* Kept faces are written over the front of the array, which the
         * table indexes, so a kept face never moves after insertion. */
        uint32_t *d = m->t + 3 * nt;
        d[0] = a, d[1] = b, d[2] = c;
        ttab[j] = nt++;
    }
    m->nt = nt;
    free(vtab), free(map), free(ttab);
    if (!r3d__compact_vertices(m))
        return r3d_fail(err, R3D_ENOMEM, "remove_degenerate: out of memory");
    return R3D_OK;
}

/* ---- components ------------------------------------------------------------------- */

typedef struct comp_stats {
    uint32_t *label; /* per face: component index 0..n-1 in order of first face */
    double *volume, *area;
    int64_t n;
} comp_stats;

static void comp_free(comp_stats *c)
{
    free(c->label), free(c->volume), free(c->area);
}

/* Faces joined through shared vertices; invalid faces get UINT32_MAX. */
static r3d_status components(const r3d_mesh *m, comp_stats *c, r3d_error *err)
{
    memset(c, 0, sizeof *c);
    uint32_t *p = malloc(((size_t)m->nv + 1) * sizeof *p);
    uint32_t *idx = malloc(((size_t)m->nv + 1) * sizeof *idx);
    c->label = malloc(((size_t)m->nt + 1) * sizeof *c->label);
    if (!p || !idx || !c->label) {
        free(p), free(idx), comp_free(c);
        return r3d_fail(err, R3D_ENOMEM, "mesh: out of memory for components");
    }
    for (int64_t v = 0; v < m->nv; v++)
        p[v] = (uint32_t)v, idx[v] = UINT32_MAX;
    for (int64_t i = 0; i < m->nt; i++) {
        const uint32_t *t = m->t + 3 * i;
        if (!r3d__tri_valid(t, m->nv))
            continue;
        r3d__uf_union(p, t[0], t[1]);
        r3d__uf_union(p, t[0], t[2]);
    }
    for (int64_t i = 0; i < m->nt; i++) {
        const uint32_t *t = m->t + 3 * i;
        if (!r3d__tri_valid(t, m->nv)) {
            c->label[i] = UINT32_MAX;
            continue;
        }
        uint32_t r = r3d__uf_find(p, t[0]);
        if (idx[r] == UINT32_MAX)
            idx[r] = (uint32_t)c->n++;
        c->label[i] = idx[r];
    }
    free(p), free(idx);
    double *cen = calloc((size_t)c->n * 4 + 1, sizeof *cen);
    c->volume = calloc((size_t)c->n + 1, sizeof *c->volume);
    c->area = calloc((size_t)c->n + 1, sizeof *c->area);
    if (!cen || !c->volume || !c->area) {
        free(cen), comp_free(c);
        return r3d_fail(err, R3D_ENOMEM, "mesh: out of memory for components");
    }
    for (int64_t i = 0; i < m->nt; i++) {
        if (c->label[i] == UINT32_MAX)
            continue;
        double *q = cen + 4 * (size_t)c->label[i];
        for (int k = 0; k < 3; k++)
            for (int j = 0; j < 3; j++)
                q[j] += m->v[3 * (size_t)m->t[3 * i + k] + j];
        q[3] += 3;
    }
    for (int64_t k = 0; k < c->n; k++)
        for (int j = 0; j < 3; j++)
            cen[4 * k + j] /= cen[4 * k + 3];
    for (int64_t i = 0; i < m->nt; i++) {
        if (c->label[i] == UINT32_MAX)
            continue;
        const uint32_t *t = m->t + 3 * i;
        const float *a = m->v + 3 * (size_t)t[0], *b = m->v + 3 * (size_t)t[1],
                    *d = m->v + 3 * (size_t)t[2];
        c->volume[c->label[i]] += tet_volume(cen + 4 * (size_t)c->label[i], a, b, d);
        double u[3] = {(double)b[0] - a[0], (double)b[1] - a[1], (double)b[2] - a[2]};
        double v[3] = {(double)d[0] - a[0], (double)d[1] - a[1], (double)d[2] - a[2]};
        double x[3] = {u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2],
                       u[0] * v[1] - u[1] * v[0]};
        c->area[c->label[i]] += sqrt(x[0] * x[0] + x[1] * x[1] + x[2] * x[2]) / 2;
    }
    free(cen);
    return R3D_OK;
}

/* Keep the faces whose component is flagged, then drop unused vertices. */
static r3d_status keep_components(r3d_mesh *m, const comp_stats *c, const uint8_t *keep,
                                  r3d_error *err)
{
    int64_t n = 0;
    for (int64_t i = 0; i < m->nt; i++)
        if (c->label[i] != UINT32_MAX && keep[c->label[i]]) {
            memmove(m->t + 3 * n, m->t + 3 * i, 3 * sizeof *m->t);
            n++;
        }
    m->nt = n;
    if (!r3d__compact_vertices(m))
        return r3d_fail(err, R3D_ENOMEM, "mesh: out of memory");
    return R3D_OK;
}

r3d_status r3d_mesh_keep_largest_component(r3d_mesh *m, r3d_error *err)
{
    if (!m)
        return r3d_fail(err, R3D_EARG, "keep_largest_component: no mesh");
    comp_stats c;
    r3d_status st = components(m, &c, err);
    if (st != R3D_OK)
        return st;
    uint8_t *keep = calloc((size_t)c.n + 1, 1);
    if (!keep) {
        comp_free(&c);
        return r3d_fail(err, R3D_ENOMEM, "keep_largest_component: out of memory");
    }
    int64_t best = -1;
    for (int64_t k = 0; k < c.n; k++) {
        double v = fabs(c.volume[k]);
        if (best < 0 || v > fabs(c.volume[best]) ||
            (v == fabs(c.volume[best]) && c.area[k] > c.area[best]))
            best = k;
    }
    if (best >= 0)
        keep[best] = 1;
    st = keep_components(m, &c, keep, err);
    free(keep);
    comp_free(&c);
    return st;
}

r3d_status r3d_mesh_drop_small_components(r3d_mesh *m, double min_volume_mm3, r3d_error *err)
{
    if (!m)
        return r3d_fail(err, R3D_EARG, "drop_small_components: no mesh");
    if (!(min_volume_mm3 >= 0))
        return r3d_fail(err, R3D_EARG, "drop_small_components: min_volume_mm3 %g is negative",
                        min_volume_mm3);
    comp_stats c;
    r3d_status st = components(m, &c, err);
    if (st != R3D_OK)
        return st;
    uint8_t *keep = calloc((size_t)c.n + 1, 1);
    if (!keep) {
        comp_free(&c);
        return r3d_fail(err, R3D_ENOMEM, "drop_small_components: out of memory");
    }
    for (int64_t k = 0; k < c.n; k++)
        keep[k] = fabs(c.volume[k]) >= min_volume_mm3;
    st = keep_components(m, &c, keep, err);
    free(keep);
    comp_free(&c);
    return st;
}

/* ---- fill_holes ------------------------------------------------------------------- */

enum { EAR_MAX_LOOP = 5000 };

/* Ear-clip loop v[0..k) projected on (u, w); appends faces to m. Returns 1
 * on success, 0 when no ear is found (not a simple polygon), -1 on OOM. The
 * faces are only appended once the whole loop is clipped. */
static int ear_clip(r3d_mesh *m, const uint32_t *v, int64_t k, const double n[3])
{
    /* Plane basis with u x w = n, so the loop (counter-clockwise about its
     * Newell normal) is counter-clockwise in (u, w). */
    double a[3] = {fabs(n[0]) < 0.9 ? 1 : 0, fabs(n[0]) < 0.9 ? 0 : 1, 0};
    double u[3] = {a[1] * n[2] - a[2] * n[1], a[2] * n[0] - a[0] * n[2], a[0] * n[1] - a[1] * n[0]};
    double lu = sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2]);
    u[0] /= lu, u[1] /= lu, u[2] /= lu;
    double w[3] = {n[1] * u[2] - n[2] * u[1], n[2] * u[0] - n[0] * u[2], n[0] * u[1] - n[1] * u[0]};
    double *xy = malloc((size_t)k * 2 * sizeof *xy);
    int64_t *nx = malloc((size_t)k * sizeof *nx), *pv = malloc((size_t)k * sizeof *pv);
    uint32_t *out = malloc((size_t)(k - 2) * 3 * sizeof *out);
    if (!xy || !nx || !pv || !out) {
        free(xy), free(nx), free(pv), free(out);
        return -1;
    }
    for (int64_t i = 0; i < k; i++) {
        const float *p = m->v + 3 * (size_t)v[i];
        xy[2 * i] = p[0] * u[0] + p[1] * u[1] + p[2] * u[2];
        xy[2 * i + 1] = p[0] * w[0] + p[1] * w[1] + p[2] * w[2];
        nx[i] = (i + 1) % k;
        pv[i] = (i + k - 1) % k;
    }
    int64_t left = k, nout = 0, cur = 0, tried = 0;
    while (left > 3) {
        int64_t i = cur, a0 = pv[i], b0 = nx[i];
        const double *P = xy + 2 * a0, *Q = xy + 2 * i, *R = xy + 2 * b0;
        double cr = (Q[0] - P[0]) * (R[1] - P[1]) - (Q[1] - P[1]) * (R[0] - P[0]);
        int ear = cr > 0;
        for (int64_t j = nx[b0]; ear && j != a0; j = nx[j]) {
            const double *S = xy + 2 * j;
            /* Inside or on the triangle: all three edge tests >= 0. */
            double d0 = (Q[0] - P[0]) * (S[1] - P[1]) - (Q[1] - P[1]) * (S[0] - P[0]);
            double d1 = (R[0] - Q[0]) * (S[1] - Q[1]) - (R[1] - Q[1]) * (S[0] - Q[0]);
            double d2 = (P[0] - R[0]) * (S[1] - R[1]) - (P[1] - R[1]) * (S[0] - R[0]);
            if (d0 >= 0 && d1 >= 0 && d2 >= 0)
                ear = 0;
        }
        if (ear) {
            out[3 * nout] = v[a0], out[3 * nout + 1] = v[i], out[3 * nout + 2] = v[b0];
            nout++;
            nx[a0] = b0;
            pv[b0] = a0;
            left--;
            cur = b0; /* moving on spreads the ears instead of fanning */
            tried = 0;
        } else {
            cur = nx[i];
            if (++tried > left)
                break;
        }
    }
    int ok = left == 3;
    if (ok) {
        out[3 * nout] = v[pv[cur]], out[3 * nout + 1] = v[cur], out[3 * nout + 2] = v[nx[cur]];
        nout++;
        if (r3d_mesh_reserve(m, m->nv, m->nt + nout, NULL) != R3D_OK)
            ok = -1;
        else
            for (int64_t t = 0; t < nout; t++)
                r3d_mesh_add_triangle(m, out[3 * t], out[3 * t + 1], out[3 * t + 2]);
    }
    free(xy), free(nx), free(pv), free(out);
    return ok;
}

static int centroid_fan(r3d_mesh *m, const uint32_t *v, int64_t k)
{
    double c[3] = {0, 0, 0};
    for (int64_t i = 0; i < k; i++)
        for (int j = 0; j < 3; j++)
            c[j] += m->v[3 * (size_t)v[i] + j];
    if (r3d_mesh_reserve(m, m->nv + 1, m->nt + k, NULL) != R3D_OK)
        return -1;
    int64_t cv = r3d_mesh_add_vertex(m, (float)(c[0] / k), (float)(c[1] / k), (float)(c[2] / k));
    for (int64_t i = 0; i < k; i++)
        r3d_mesh_add_triangle(m, v[i], v[(i + 1) % k], (uint32_t)cv);
    return 1;
}

r3d_status r3d_mesh_fill_holes(r3d_mesh *m, r3d_error *err)
{
    if (!m)
        return r3d_fail(err, R3D_EARG, "fill_holes: no mesh");
    r3d__vtri vt = {0};
    r3d__edge *e = NULL;
    int64_t ne = 0;
    r3d__loops L = {0};
    r3d_status st;
    if ((st = r3d__vtri_build(m, &vt, err)) != R3D_OK)
        return st;
    st = r3d__edges_build(m, &vt, &e, &ne, err);
    r3d__vtri_free(&vt);
    if (st != R3D_OK)
        return st;
    st = r3d__loops_build(m, e, ne, &L, err);
    free(e);
    if (st != R3D_OK)
        return st;
    for (int64_t l = 0; l < L.n && st == R3D_OK; l++) {
        const uint32_t *v = L.vert + L.start[l];
        int64_t k = L.start[l + 1] - L.start[l];
        if (k < 3)
            continue;
        int r = 0;
        if (k == 3) {
            r = r3d_mesh_add_triangle(m, v[0], v[1], v[2]) ? 1 : -1;
        } else {
            /* Newell normal: robust for non-planar loops, its direction
             * makes the loop counter-clockwise. */
            double n[3] = {0, 0, 0};
            for (int64_t i = 0; i < k; i++) {
                const float *p = m->v + 3 * (size_t)v[i], *q = m->v + 3 * (size_t)v[(i + 1) % k];
                n[0] += ((double)p[1] - q[1]) * ((double)p[2] + q[2]);
                n[1] += ((double)p[2] - q[2]) * ((double)p[0] + q[0]);
                n[2] += ((double)p[0] - q[0]) * ((double)p[1] + q[1]);
            }
            double ln = sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
            if (ln > 0 && k <= EAR_MAX_LOOP) {
                n[0] /= ln, n[1] /= ln, n[2] /= ln;
                r = ear_clip(m, v, k, n);
            }
            if (r == 0)
                r = centroid_fan(m, v, k);
        }
        if (r < 0)
            st = r3d_fail(err, R3D_ENOMEM, "fill_holes: out of memory filling hole %lld of %lld",
                          (long long)l + 1, (long long)L.n);
    }
    r3d__loops_free(&L);
    return st;
}

/* ---- orient_outward ------------------------------------------------------------------ */

/* The face other than ti holding edge (x, y), if exactly one; else -1. */
static int64_t across(const r3d_mesh *m, const r3d__vtri *vt, uint32_t ti, uint32_t x, uint32_t y)
{
    int64_t found = -1;
    for (int64_t k = vt->start[x]; k < vt->start[x + 1]; k++) {
        uint32_t o = vt->tri[k];
        if (o == ti)
            continue;
        const uint32_t *t = m->t + 3 * (size_t)o;
        if (t[0] == y || t[1] == y || t[2] == y) {
            if (found >= 0)
                return -1; /* non-manifold edge: do not propagate across it */
            found = o;
        }
    }
    return found;
}

r3d_status r3d_mesh_orient_outward(r3d_mesh *m, r3d_error *err)
{
    if (!m)
        return r3d_fail(err, R3D_EARG, "orient_outward: no mesh");
    r3d__vtri vt = {0};
    r3d_status st = r3d__vtri_build(m, &vt, err);
    if (st != R3D_OK)
        return st;
    uint32_t *comp = malloc(((size_t)m->nt + 1) * sizeof *comp);
    uint32_t *queue = malloc(((size_t)m->nt + 1) * sizeof *queue);
    if (!comp || !queue) {
        free(comp), free(queue), r3d__vtri_free(&vt);
        return r3d_fail(err, R3D_ENOMEM, "orient_outward: out of memory for %lld faces",
                        (long long)m->nt);
    }
    for (int64_t i = 0; i < m->nt; i++)
        comp[i] = UINT32_MAX;
    uint32_t nc = 0;
    for (int64_t seed = 0; seed < m->nt; seed++) {
        if (comp[seed] != UINT32_MAX || !r3d__tri_valid(m->t + 3 * seed, m->nv))
            continue;
        size_t qh = 0, qt = 0;
        queue[qt++] = (uint32_t)seed;
        comp[seed] = nc;
        while (qh < qt) {
            uint32_t ti = queue[qh++];
            const uint32_t *t = m->t + 3 * (size_t)ti;
            for (int c = 0; c < 3; c++) {
                uint32_t x = t[c], y = t[(c + 1) % 3];
                int64_t o = across(m, &vt, ti, x, y);
                if (o < 0 || comp[o] != UINT32_MAX)
                    continue;
                uint32_t *n = m->t + 3 * (size_t)o;
                /* Consistent neighbours traverse the shared edge y -> x. */
                int same = (n[0] == x && n[1] == y) || (n[1] == x && n[2] == y) ||
                           (n[2] == x && n[0] == y);
                if (same) {
                    uint32_t s = n[1];
                    n[1] = n[2];
                    n[2] = s;
                }
                comp[o] = nc;
                queue[qt++] = (uint32_t)o;
            }
        }
        nc++;
    }
    free(queue);
    r3d__vtri_free(&vt);
    double *acc = calloc((size_t)nc * 5 + 1, sizeof *acc); /* centroid sum, count, volume */
    if (!acc) {
        free(comp);
        return r3d_fail(err, R3D_ENOMEM, "orient_outward: out of memory");
    }
    for (int64_t i = 0; i < m->nt; i++)
        if (comp[i] != UINT32_MAX)
            for (int k = 0; k < 3; k++) {
                for (int j = 0; j < 3; j++)
                    acc[5 * comp[i] + j] += m->v[3 * (size_t)m->t[3 * i + k] + j];
                acc[5 * comp[i] + 3] += 1;
            }
    for (uint32_t k = 0; k < nc; k++)
        for (int j = 0; j < 3; j++)
            acc[5 * k + j] /= acc[5 * k + 3];
    for (int64_t i = 0; i < m->nt; i++)
        if (comp[i] != UINT32_MAX) {
            const uint32_t *t = m->t + 3 * i;
            acc[5 * comp[i] + 4] += tet_volume(acc + 5 * comp[i], m->v + 3 * (size_t)t[0],
                                               m->v + 3 * (size_t)t[1], m->v + 3 * (size_t)t[2]);
        }
    for (int64_t i = 0; i < m->nt; i++)
        if (comp[i] != UINT32_MAX && acc[5 * comp[i] + 4] < 0) {
            uint32_t *t = m->t + 3 * i, s = t[1];
            t[1] = t[2];
            t[2] = s;
        }
    free(acc);
    free(comp);
    return R3D_OK;
}

/* ---- check ---------------------------------------------------------------------------- */

typedef struct wt {
    uint32_t w, slot;
} wt;

static int wt_cmp(const void *a, const void *b)
{
    const wt *x = a, *y = b;
    return x->w < y->w ? -1 : x->w > y->w ? 1 : (x->slot > y->slot) - (x->slot < y->slot);
}

/* Does the fan of faces around v fall apart into more than one piece
 * (faces joined through shared edges at v)? */
static int fan_split(const r3d_mesh *m, const r3d__vtri *vt, uint32_t v, wt *buf, uint32_t *par)
{
    int64_t s = vt->start[v], d = vt->start[v + 1] - s;
    if (d < 2)
        return 0;
    for (int64_t i = 0; i < d; i++) {
        const uint32_t *t = m->t + 3 * (size_t)vt->tri[s + i];
        int c = t[0] == v ? 0 : t[1] == v ? 1 : 2;
        buf[2 * i] = (wt){t[(c + 1) % 3], (uint32_t)i};
        buf[2 * i + 1] = (wt){t[(c + 2) % 3], (uint32_t)i};
        par[i] = (uint32_t)i;
    }
    qsort(buf, (size_t)(2 * d), sizeof *buf, wt_cmp);
    for (int64_t i = 1; i < 2 * d; i++)
        if (buf[i].w == buf[i - 1].w)
            r3d__uf_union(par, buf[i].slot, buf[i - 1].slot);
    for (int64_t i = 0; i < d; i++)
        if (r3d__uf_find(par, (uint32_t)i) != 0)
            return 1;
    return 0;
}

/* Append "n things" to the report, comma separated. */
static void report_add(char *r, size_t cap, long long n, const char *one, const char *many)
{
    size_t l = strlen(r);
    if (l >= cap - 1)
        return;
    snprintf(r + l, cap - l, "%s%lld %s", l ? ", " : "", n, n == 1 ? one : many);
}

void r3d_mesh_check_run(const r3d_mesh *m, r3d_mesh_check *c)
{
    memset(c, 0, sizeof *c);
    if (!m || m->nt == 0) {
        c->manifold = c->oriented = 1;
        snprintf(c->report, sizeof c->report, "no triangles");
        return;
    }
    r3d__vtri vt = {0};
    r3d__edge *e = NULL;
    int64_t ne = 0;
    r3d__loops L = {0};
    comp_stats cs = {0};
    wt *buf = NULL;
    uint32_t *par = NULL;
    if (r3d__vtri_build(m, &vt, NULL) != R3D_OK ||
        r3d__edges_build(m, &vt, &e, &ne, NULL) != R3D_OK ||
        r3d__loops_build(m, e, ne, &L, NULL) != R3D_OK || components(m, &cs, NULL) != R3D_OK)
        goto oom;
    int64_t maxdeg = 0;
    for (int64_t v = 0; v < m->nv; v++)
        if (vt.start[v + 1] - vt.start[v] > maxdeg)
            maxdeg = vt.start[v + 1] - vt.start[v];
    buf = malloc(((size_t)maxdeg * 2 + 1) * sizeof *buf);
    par = malloc(((size_t)maxdeg + 1) * sizeof *par);
    if (!buf || !par)
        goto oom;

    for (int64_t i = 0; i < m->nt; i++)
        c->degenerate_triangles += tri_degenerate(m, m->t + 3 * i);
    for (int64_t i = 0; i < ne; i++) {
        c->boundary_edges += e[i].nfaces == 1;
        c->nonmanifold_edges += e[i].nfaces > 2;
        c->inconsistent_edges += e[i].nfaces == 2 && e[i].nfwd != 1;
    }
    for (int64_t v = 0; v < m->nv; v++)
        c->nonmanifold_vertices += fan_split(m, &vt, (uint32_t)v, buf, par);
    c->components = cs.n;
    /* Inside out is only meaningful for closed pieces: an open sheet's
     * "volume" about its centroid has no outward side. */
    uint8_t *open = calloc((size_t)cs.n + 1, 1);
    if (!open)
        goto oom;
    for (int64_t i = 0; i < ne; i++)
        if (e[i].nfaces == 1)
            open[cs.label[e[i].t[0]]] = 1;
    int64_t inside_out = 0;
    for (int64_t k = 0; k < cs.n; k++)
        inside_out += !open[k] && cs.volume[k] < 0;
    free(open);
    c->closed = c->boundary_edges == 0;
    c->manifold = c->nonmanifold_edges == 0 && c->nonmanifold_vertices == 0;
    c->oriented = c->inconsistent_edges == 0 && inside_out == 0;

    char *r = c->report;
    size_t cap = sizeof c->report;
    if (L.n)
        report_add(r, cap, (long long)L.n, "hole (boundary loop)",
                   "holes (boundary loops)");
    if (c->boundary_edges && !L.n)
        report_add(r, cap, (long long)c->boundary_edges, "boundary edge",
                   "boundary edges");
    if (c->nonmanifold_edges)
        report_add(r, cap, (long long)c->nonmanifold_edges, "non-manifold edge",
                   "non-manifold edges");
    if (c->nonmanifold_vertices)
        report_add(r, cap, (long long)c->nonmanifold_vertices,
                   "non-manifold vertex", "non-manifold vertices");
    if (c->degenerate_triangles)
        report_add(r, cap, (long long)c->degenerate_triangles,
                   "degenerate triangle", "degenerate triangles");
    if (c->inconsistent_edges)
        report_add(r, cap, (long long)c->inconsistent_edges,
                   "edge with inconsistent winding", "edges with inconsistent winding");
    if (inside_out)
        report_add(r, cap, (long long)inside_out,
                   "component inside out (negative volume)",
                   "components inside out (negative volume)");
    goto done;
oom:
    memset(c, 0, sizeof *c);
    c->boundary_edges = c->nonmanifold_edges = c->nonmanifold_vertices = -1;
    c->degenerate_triangles = c->inconsistent_edges = c->components = -1;
    snprintf(c->report, sizeof c->report, "check could not run: out of memory");
done:
    free(buf), free(par);
    r3d__vtri_free(&vt);
    free(e);
    r3d__loops_free(&L);
    comp_free(&cs);
}

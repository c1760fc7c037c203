/* decimate.c - mesh simplification by quadric error metrics
 * (Garland & Heckbert 1997, "Surface simplification using quadric error
 * metrics").
 *
 * Each vertex carries the sum of the squared-distance quadrics of the planes
 * of its original triangles, weighted by triangle area, so flat regions with
 * many small triangles do not outweigh a few large ones. Edges wait in a
 * (4-ary) min-heap ordered by the cost of collapsing them to the point that
 * minimises Qa+Qb (solved as a 3x3 system; when it is singular or the point
 * lands far from the edge, the best of the two ends and the midpoint). The
 * cost is Q(p) / W, the mean squared distance to the merged planes, rather
 * than G&H's Q(p): Q(p) grows with the area a vertex has absorbed, so large
 * merged vertices wait while small ones go, and the error ends up uneven
 * (on the lung vessel tree of bench/mesh_vs_vtk, 95th percentile distance
 * to the original 0.196 mm with Q(p), 0.183 with Q(p) / W, mean unchanged).
 * A collapse that is done moves its vertex on to keep the volume enclosed
 * by its fan (place_volume: the quadric's point cuts inside convex
 * surfaces). Heap entries are never updated in place: each vertex has a
 * version stamp, set when it moves, and an entry older than either end's
 * stamp is stale and skipped when popped (lazy deletion).
 *
 * A collapse is refused when it would
 *   - change the topology: the link condition (the vertices adjacent to both
 *     ends must be exactly the apexes of the edge's faces), an interior edge
 *     between two boundary vertices (it would pinch the surface), or a
 *     result vertex with fewer than three neighbours (tetrahedron -> sheet);
 *   - flip or crush a face: any surviving face around the edge whose normal
 *     turns by more than ~78 degrees (cosine < 0.2) or whose area vanishes;
 *   - move the boundary, with preserve_boundary (the default): boundary
 *     vertices are then locked (a collapse onto a locked vertex keeps its
 *     position; between two locked vertices it is refused). Without it,
 *     each boundary edge adds a heavily weighted plane through the edge,
 *     perpendicular to its face (G&H section 6), so the outline stays put
 *     but may be simplified.
 * Vertices on non-manifold edges (more than two faces) are always locked.
 *
 * The error checked against max_error_mm is sqrt(Q(v) / W), the square
 * root of the order's cost: Q(v) the quadric at the new point, W the total
 * weight (area, mm^2) of the planes in Q, i.e. the area-weighted RMS
 * distance in mm from the new vertex to the original triangles' planes
 * merged into it. A collapse above the limit is not done (others may be).
 *
 * It stops when the target count is reached or no candidate is left that
 * passes these tests (and max_error_mm). Invalid input triangles (index out
 * of range, repeated index) are dropped; duplicate faces should be removed
 * first (r3d_mesh_remove_degenerate), they look non-manifold here.
 * Output: triangles in their original order, vertices compacted in their
 * original order, so the result is deterministic. Cost: O(n log n) time for
 * n triangles (each collapse touches ~a dozen faces and pushes ~6 entries),
 * O(n) memory.
 */
#include "mesh_topology.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The collapse order follows cost, not space, so on a million-face mesh
 * most accesses land on a different page: r3d_advise_huge (core) on the big
 * arrays. The gain is within this machine's timing noise; the hint costs
 * nothing. */

/* ---- quadrics --------------------------------------------------------------
 * Symmetric 4x4 stored as its upper triangle:
 *   q[0]=aa q[1]=ab q[2]=ac q[3]=ad q[4]=bb q[5]=bc q[6]=bd q[7]=cc q[8]=cd q[9]=dd
 * plus w, the total plane weight (mm^2), which turns cost into millimetres. */
typedef struct quadric {
    double q[10];
    double w;
} quadric;

static void quadric_add_plane(quadric *Q, const double n[3], double d, double w)
{
    double a = n[0], b = n[1], c = n[2];
    Q->q[0] += w * a * a, Q->q[1] += w * a * b, Q->q[2] += w * a * c, Q->q[3] += w * a * d;
    Q->q[4] += w * b * b, Q->q[5] += w * b * c, Q->q[6] += w * b * d;
    Q->q[7] += w * c * c, Q->q[8] += w * c * d, Q->q[9] += w * d * d;
    Q->w += w;
}

static void quadric_sum(quadric *r, const quadric *a, const quadric *b)
{
    for (int i = 0; i < 10; i++)
        r->q[i] = a->q[i] + b->q[i];
    r->w = a->w + b->w;
}

static double quadric_eval(const quadric *Q, const double p[3])
{
    const double *q = Q->q;
    double x = p[0], y = p[1], z = p[2];
    double e = q[0] * x * x + 2 * q[1] * x * y + 2 * q[2] * x * z + 2 * q[3] * x + q[4] * y * y +
               2 * q[5] * y * z + 2 * q[6] * y + q[7] * z * z + 2 * q[8] * z + q[9];
    return e > 0 ? e : 0; /* rounding can make a perfect fit slightly negative */
}

/* Minimiser of Q, if the 3x3 part is well conditioned. */
static int quadric_optimum(const quadric *Q, double out[3])
{
    const double *q = Q->q;
    double a00 = q[0], a01 = q[1], a02 = q[2], a11 = q[4], a12 = q[5], a22 = q[7];
    double c00 = a11 * a22 - a12 * a12, c01 = a02 * a12 - a01 * a22, c02 = a01 * a12 - a02 * a11;
    double det = a00 * c00 + a01 * c01 + a02 * c02;
    double tr = (a00 + a11 + a22) / 3;
    /* Relative test: a flat or cylindrical neighbourhood has a rank-1 or
     * rank-2 matrix whose "optimum" is anywhere along a line or plane. */
    if (!(fabs(det) > 1e-15 * tr * tr * tr))
        return 0;
    double c11 = a00 * a22 - a02 * a02, c12 = a01 * a02 - a00 * a12, c22 = a00 * a11 - a01 * a01;
    double b0 = -q[3], b1 = -q[6], b2 = -q[8];
    out[0] = (c00 * b0 + c01 * b1 + c02 * b2) / det;
    out[1] = (c01 * b0 + c11 * b1 + c12 * b2) / det;
    out[2] = (c02 * b0 + c12 * b1 + c22 * b2) / det;
    return isfinite(out[0]) && isfinite(out[1]) && isfinite(out[2]);
}

/* ---- the heap of candidate collapses -----------------------------------------
 * A 4-ary min-heap of 16-byte entries: the four children of a node share one
 * 64-byte cache line (the array is aligned and offset by 3), which halves
 * the cache misses of a binary heap on million-face meshes.
 *
 * Version stamps: stamp is the collapse counter when the entry was pushed,
 * ver[v] the counter when v last moved. An entry is current while neither
 * end moved after it was pushed (ver[a] <= stamp && ver[b] <= stamp); one
 * word per entry, exact, no wrap-around (at most nv collapses). */
typedef struct cand {
    uint64_t key;   /* the cost's float bits << 32 | a: costs are >= 0, whose
                     * bits order like their values, so one integer compare
                     * orders by cost, then a */
    uint32_t b;     /* the edge's ends are a (key's low half) and b */
    uint32_t stamp;
} cand;

static inline cand cand_make(double cost, uint32_t a, uint32_t b, uint32_t stamp)
{
    float f = (float)cost;
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return (cand){(uint64_t)bits << 32 | a, b, stamp};
}

static inline uint32_t cand_a(const cand *c)
{
    return (uint32_t)c->key;
}

typedef struct heap {
    cand *base; /* aligned allocation; h = base + 3 */
    cand *h;
    size_t n, cap;
} heap;

static inline int cand_less(const cand *x, const cand *y)
{
    if (x->key != y->key)
        return x->key < y->key;
    return x->b < y->b;
}

static int heap_reserve(heap *H, size_t need)
{
    if (need <= H->cap)
        return 1;
    size_t cap = H->cap ? H->cap : 1024;
    while (cap < need)
        cap *= 2;
    size_t bytes = ((cap + 3) * sizeof(cand) + 63) / 64 * 64;
    cand *nb = aligned_alloc(64, bytes);
    if (!nb)
        return 0;
    if (H->n)
        memcpy(nb + 3, H->h, H->n * sizeof *nb);
    free(H->base);
    r3d_advise_huge(nb, bytes);
    H->base = nb;
    H->h = nb + 3;
    H->cap = cap;
    return 1;
}

static void heap_down(heap *H, size_t i, cand x)
{
    cand *h = H->h;
    size_t n = H->n;
    for (;;) {
        size_t c = 4 * i + 1;
        if (c >= n)
            break;
        size_t e = c + 4 < n ? c + 4 : n, s = c;
#if defined(__GNUC__)
        /* The grandchildren's lines, before we know which child wins: one of
         * the four is the next level's load, and its miss overlaps this
         * level's compares instead of following them. */
        for (size_t j = c; j < e && 4 * j + 1 < n; j++)
            __builtin_prefetch(&h[4 * j + 1]);
#endif
        for (size_t j = c + 1; j < e; j++)
            if (cand_less(&h[j], &h[s]))
                s = j;
        if (!cand_less(&h[s], &x))
            break;
        h[i] = h[s];
        i = s;
    }
    h[i] = x;
}

static int heap_push(heap *H, cand c)
{
    if (!heap_reserve(H, H->n + 1))
        return 0;
    size_t i = H->n++;
    while (i > 0) {
        size_t p = (i - 1) / 4;
        if (!cand_less(&c, &H->h[p]))
            break;
        H->h[i] = H->h[p];
        i = p;
    }
    H->h[i] = c;
    return 1;
}

static cand heap_pop(heap *H)
{
    cand top = H->h[0];
    cand last = H->h[--H->n];
    if (H->n)
        heap_down(H, 0, last);
    return top;
}

/* Bottom-up construction, O(n), for the initial edges and after a purge. */
static void heap_make(heap *H)
{
    if (H->n < 2)
        return;
    for (size_t i = (H->n - 2) / 4 + 1; i-- > 0;)
        heap_down(H, i, H->h[i]);
}

/* ---- state -------------------------------------------------------------------- */
enum { V_DEAD = 1, V_BORDER = 2, V_LOCKED = 4 };
#define DEAD_TRI UINT32_MAX

/* Everything a cost evaluation reads about a vertex, in two cache lines. */
typedef struct vdata {
    quadric Q;   /* 88 bytes */
    double p[3]; /* position, mm */
    double pad[2];
} vdata;

typedef struct vstate {
    uint32_t ver;  /* collapse counter when the vertex last moved */
    uint32_t flag; /* V_* */
    uint32_t mark; /* neighbour-set stamp (next_stamp), read with the rest */
    uint32_t nlive; /* live faces around the vertex (its list may hold dead
                     * ones): the valence bound costs no walk of the fan */
} vstate;

typedef struct dec {
    int64_t nv, nt;
    vdata *V;        /* nv 128-byte records, 64-byte aligned */
    vstate *vs;      /* nv: stamps, flags, marks side by side (read together) */
    uint32_t now;    /* collapse counter */
    uint32_t *t;     /* 3 * nt, the mesh's own array; t[3i] = DEAD_TRI once
                      * face i collapsed (no separate flag array: the face
                      * is loaded anyway, one cache miss fewer per visit) */
    /* Triangles of vertex v: refs[vstart[v] .. vstart[v] + vcount[v]), may
     * include dead ones. A collapse appends the merged list at the end of
     * refs; when refs is full, all lists are rebuilt from the live faces. */
    int64_t *vstart;
    uint32_t *vcount;
    uint32_t *refs;
    int64_t nrefs, caprefs;
    uint32_t stamp;
    heap H;
} dec;

static void relist(dec *D)
{
    memset(D->vcount, 0, (size_t)D->nv * sizeof *D->vcount);
    for (int64_t i = 0; i < D->nt; i++)
        if (D->t[3 * (size_t)i] != DEAD_TRI)
            for (int c = 0; c < 3; c++)
                D->vcount[D->t[3 * i + c]]++;
    int64_t s = 0;
    for (int64_t v = 0; v < D->nv; v++) {
        D->vstart[v] = s;
        D->vs[v].nlive = D->vcount[v];
        s += D->vcount[v];
        D->vcount[v] = 0;
    }
    for (int64_t i = 0; i < D->nt; i++)
        if (D->t[3 * (size_t)i] != DEAD_TRI)
            for (int c = 0; c < 3; c++) {
                uint32_t v = D->t[3 * i + c];
                D->refs[D->vstart[v] + D->vcount[v]++] = (uint32_t)i;
            }
    D->nrefs = s;
}

static uint32_t next_stamp(dec *D)
{
    if (++D->stamp == 0) { /* wrapped: old stamps could alias */
        for (int64_t v = 0; v < D->nv; v++)
            D->vs[v].mark = 0;
        D->stamp = 1;
    }
    return D->stamp;
}

/* Where collapsing (a, b) puts the vertex, and its cost: the mean squared
 * distance (mm^2) from there to the planes merged into Qa+Qb, Q(p) / W (see
 * the header comment for why per area and not the plain Q(p)). Returns 0
 * when the edge may not collapse at all (both ends locked). */
static int plan(const dec *D, uint32_t a, uint32_t b, double p[3], double *msd)
{
    quadric Q;
    quadric_sum(&Q, &D->V[a].Q, &D->V[b].Q);
    const double *pa = D->V[a].p, *pb = D->V[b].p;
    int la = D->vs[a].flag & V_LOCKED, lb = D->vs[b].flag & V_LOCKED;
    if (la && lb)
        return 0;
    if (la || lb) {
        memcpy(p, la ? pa : pb, 3 * sizeof *p);
    } else {
        double mid[3] = {(pa[0] + pb[0]) / 2, (pa[1] + pb[1]) / 2, (pa[2] + pb[2]) / 2};
        double L2 = (pa[0] - pb[0]) * (pa[0] - pb[0]) + (pa[1] - pb[1]) * (pa[1] - pb[1]) +
                    (pa[2] - pb[2]) * (pa[2] - pb[2]);
        int ok = quadric_optimum(&Q, p);
        if (ok) {
            /* A nearly singular system can put the optimum far off the
             * surface; further than the edge's length from its middle is
             * never what we want. */
            double d2 = (p[0] - mid[0]) * (p[0] - mid[0]) + (p[1] - mid[1]) * (p[1] - mid[1]) +
                        (p[2] - mid[2]) * (p[2] - mid[2]);
            ok = d2 <= L2;
        }
        if (!ok) {
            double ca = quadric_eval(&Q, pa), cb = quadric_eval(&Q, pb), cm = quadric_eval(&Q, mid);
            const double *best = mid;
            if (ca < cm && ca <= cb)
                best = pa;
            else if (cb < cm && cb < ca)
                best = pb;
            memcpy(p, best, 3 * sizeof *p);
        }
    }
    *msd = Q.w > 0 ? quadric_eval(&Q, p) / Q.w : 0;
    return 1;
}

static int push_edge(dec *D, uint32_t a, uint32_t b)
{
    double p[3], msd;
    if (!plan(D, a, b, p, &msd))
        return 1;
    return heap_push(&D->H, cand_make(msd, a, b, D->now));
}

static void cross_tri(const double *a, const double *b, const double *c, double n[3])
{
    double u[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]};
    double v[3] = {c[0] - a[0], c[1] - a[1], c[2] - a[2]};
    n[0] = u[1] * v[2] - u[2] * v[1];
    n[1] = u[2] * v[0] - u[0] * v[2];
    n[2] = u[0] * v[1] - u[1] * v[0];
}

static double dist2(const double *a, const double *b)
{
    return (a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) +
           (a[2] - b[2]) * (a[2] - b[2]);
}

/* Would the faces around vertex x (other end y) keep their orientation and
 * area when x moves to p? Faces holding both x and y disappear; skip them. */
static int faces_survive(const dec *D, uint32_t x, uint32_t y, const double p[3])
{
    for (int64_t k = D->vstart[x]; k < D->vstart[x] + D->vcount[x]; k++) {
        uint32_t ti = D->refs[k];
        if (D->t[3 * (size_t)ti] == DEAD_TRI)
            continue;
        const uint32_t *t = D->t + 3 * (size_t)ti;
        if (t[0] == y || t[1] == y || t[2] == y)
            continue;
        const double *q[3], *r[3];
        for (int c = 0; c < 3; c++) {
            q[c] = D->V[t[c]].p;
            r[c] = t[c] == x ? p : q[c];
        }
        double n0[3], n1[3];
        cross_tri(q[0], q[1], q[2], n0);
        cross_tri(r[0], r[1], r[2], n1);
        /* squared lengths: no square roots on this hot path */
        double l0 = n0[0] * n0[0] + n0[1] * n0[1] + n0[2] * n0[2];
        double l1 = n1[0] * n1[0] + n1[1] * n1[1] + n1[2] * n1[2];
        double L2 = dist2(r[0], r[1]);
        double e = dist2(r[1], r[2]);
        if (e > L2)
            L2 = e;
        e = dist2(r[2], r[0]);
        if (e > L2)
            L2 = e;
        /* |cross| is twice the area; relative to the longest edge squared it
         * measures how thin the face would be (a needle or a point). */
        if (!(l1 > 1e-16 * L2 * L2))
            return 0;
        double dot = n0[0] * n1[0] + n0[1] * n1[1] + n0[2] * n1[2];
        if (l0 > 0 && (dot < 0 || dot * dot < 0.04 * l0 * l1)) /* cos < 0.2 */
            return 0;
    }
    return 1;
}

enum { MAX_VALENCE = 32 };

/* Topology checks of collapsing edge (k, u), see the header comment. */
static int link_ok(dec *D, uint32_t k, uint32_t u)
{
#if defined(__GNUC__)
    /* Both fans' faces are about to be read: start all their loads now. */
    for (int64_t i = D->vstart[k]; i < D->vstart[k] + D->vcount[k]; i++)
        __builtin_prefetch(D->t + 3 * (size_t)D->refs[i]);
    for (int64_t i = D->vstart[u]; i < D->vstart[u] + D->vcount[u]; i++)
        __builtin_prefetch(D->t + 3 * (size_t)D->refs[i]);
#endif
    uint32_t sk = next_stamp(D);
    int64_t shared = 0, deg_k = 0;
    for (int64_t i = D->vstart[k]; i < D->vstart[k] + D->vcount[k]; i++) {
        uint32_t ti = D->refs[i];
        if (D->t[3 * (size_t)ti] == DEAD_TRI)
            continue;
        const uint32_t *t = D->t + 3 * (size_t)ti;
        int has_u = t[0] == u || t[1] == u || t[2] == u;
        shared += has_u;
        for (int c = 0; c < 3; c++)
            if (t[c] != k && t[c] != u && D->vs[t[c]].mark != sk) {
                D->vs[t[c]].mark = sk;
                deg_k++;
#if defined(__GNUC__)
                __builtin_prefetch(D->V[t[c]].p); /* for faces_survive */
#endif
            }
    }
    if (shared == 0 || shared > 2)
        return 0;
    if ((D->vs[k].flag & V_BORDER) && (D->vs[u].flag & V_BORDER) && shared == 2)
        return 0;
    uint32_t su = next_stamp(D);
    int64_t common = 0, extra = 0;
    for (int64_t i = D->vstart[u]; i < D->vstart[u] + D->vcount[u]; i++) {
        uint32_t ti = D->refs[i];
        if (D->t[3 * (size_t)ti] == DEAD_TRI)
            continue;
        const uint32_t *t = D->t + 3 * (size_t)ti;
        for (int c = 0; c < 3; c++) {
            uint32_t w = t[c];
            if (w == k || w == u)
                continue;
            if (D->vs[w].mark == sk) {
                D->vs[w].mark = su; /* count each common neighbour once */
                common++;
            } else if (D->vs[w].mark != su) {
                D->vs[w].mark = su;
                extra++;
            }
        }
    }
    if (common != shared)
        return 0;
    int border = (D->vs[k].flag | D->vs[u].flag) & V_BORDER;
    return deg_k + extra >= (border ? 2 : 3);
}

/* The volume-keeping placement (Lindstrom & Turk 1998 use the same
 * constraint): the quadric's point p makes the merged fan cut the chord of
 * a convex surface (a vessel's cross-section shrinks to its inscribed
 * polygon), so every collapse there removes a little volume and the
 * decimated surface ends up inside the original: on the lung vessel tree
 * 96 % of the original vertices farthest from the result were outside it.
 * Here p moves to the point q nearest to p in the quadric's metric
 * (A + eps I) on the plane where the fans around a and b and the merged
 * fan enclose the same volume: with g the sum over the surviving faces of
 * the cross product of the two other corners, that volume is g.q / 6 plus
 * a constant, so q = p + mu M^-1 g, one 3x3 solve.
 * VOLUME_SHARE_PCT < 100 goes that share of the way: the full correction
 * compounds over a vertex's successive collapses and overshoots (the 1.3M
 * icosphere's vertices end up 0.0043 mm outside it at 100 %, 0.0037 mm at
 * 80 %; the vessel tree's 95th percentile error is 0.162 mm at 100 %,
 * 0.164 at 80 %, 0.183 without the correction). Returns 0 when the constraint is degenerate, q lands further
 * than the edge's length from its middle, or q's error is above lim2
 * (mm^2); the caller then keeps p. */
enum { VOLUME_SHARE_PCT = 80 };

static int place_volume(const dec *D, uint32_t a, uint32_t b, const double p[3], double q[3],
                        double lim2)
{
    const double *pa = D->V[a].p, *pb = D->V[b].p;
    double o[3] = {(pa[0] + pb[0]) / 2, (pa[1] + pb[1]) / 2, (pa[2] + pb[2]) / 2};
    /* 6 x volume of the fans seen from o, old (c) and new (g.q) */
    double g[3] = {0, 0, 0}, c = 0;
    for (int s = 0; s < 2; s++) {
        uint32_t x = s ? b : a, y = s ? a : b;
        for (int64_t k = D->vstart[x]; k < D->vstart[x] + D->vcount[x]; k++) {
            uint32_t ti = D->refs[k];
            if (D->t[3 * (size_t)ti] == DEAD_TRI)
                continue;
            const uint32_t *t = D->t + 3 * (size_t)ti;
            int both = t[0] == y || t[1] == y || t[2] == y;
            if (both && s)
                continue; /* a face of the edge: counted once, from a */
            /* r0 = x's corner, r1 and r2 the next two in the face's order */
            uint32_t i1 = t[0] == x ? t[1] : t[1] == x ? t[2] : t[0];
            uint32_t i2 = t[0] == x ? t[2] : t[1] == x ? t[0] : t[1];
            const double *r0 = D->V[x].p, *r1 = D->V[i1].p, *r2 = D->V[i2].p;
            double u[3] = {r1[0] - o[0], r1[1] - o[1], r1[2] - o[2]};
            double v[3] = {r2[0] - o[0], r2[1] - o[1], r2[2] - o[2]};
            double cr[3] = {u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2],
                            u[0] * v[1] - u[1] * v[0]};
            c += (r0[0] - o[0]) * cr[0] + (r0[1] - o[1]) * cr[1] + (r0[2] - o[2]) * cr[2];
            if (!both)
                g[0] += cr[0], g[1] += cr[1], g[2] += cr[2];
        }
    }
    quadric Q;
    quadric_sum(&Q, &D->V[a].Q, &D->V[b].Q);
    const double *m = Q.q;
    /* eps keeps M invertible along a tube's axis, where A is ~rank 2 */
    double eps = 1e-2 * (m[0] + m[4] + m[7]) / 3;
    double a00 = m[0] + eps, a01 = m[1], a02 = m[2], a11 = m[4] + eps, a12 = m[5], a22 = m[7] + eps;
    double c00 = a11 * a22 - a12 * a12, c01 = a02 * a12 - a01 * a22, c02 = a01 * a12 - a02 * a11;
    double c11 = a00 * a22 - a02 * a02, c12 = a01 * a02 - a00 * a12, c22 = a00 * a11 - a01 * a01;
    double det = a00 * c00 + a01 * c01 + a02 * c02;
    if (!(det > 0))
        return 0;
    double h[3] = {c00 * g[0] + c01 * g[1] + c02 * g[2], c01 * g[0] + c11 * g[1] + c12 * g[2],
                   c02 * g[0] + c12 * g[1] + c22 * g[2]}; /* det M^-1 g */
    double gh = g[0] * h[0] + g[1] * h[1] + g[2] * h[2];
    if (!(gh > 0))
        return 0;
    double y[3] = {p[0] - o[0], p[1] - o[1], p[2] - o[2]};
    double mu = VOLUME_SHARE_PCT / 100.0 * (c - (g[0] * y[0] + g[1] * y[1] + g[2] * y[2])) / gh;
    for (int j = 0; j < 3; j++)
        q[j] = p[j] + mu * h[j];
    if (!isfinite(mu) || dist2(q, o) > dist2(pa, pb))
        return 0;
    return !(Q.w > 0) || quadric_eval(&Q, q) / Q.w <= lim2;
}

/* Collapse u into k at p; the lists have room (checked by the caller). */
static int64_t collapse(dec *D, uint32_t k, uint32_t u, const double p[3])
{
    int64_t removed = 0, s = D->nrefs;
    for (int64_t i = D->vstart[k]; i < D->vstart[k] + D->vcount[k]; i++) {
        uint32_t ti = D->refs[i];
        if (D->t[3 * (size_t)ti] == DEAD_TRI)
            continue;
        const uint32_t *t = D->t + 3 * (size_t)ti;
        if (t[0] == u || t[1] == u || t[2] == u) {
            D->vs[t[0] ^ t[1] ^ t[2] ^ k ^ u].nlive--; /* the face's third corner */
            D->t[3 * (size_t)ti] = DEAD_TRI;
            removed++;
        } else {
            D->refs[D->nrefs++] = ti;
        }
    }
    for (int64_t i = D->vstart[u]; i < D->vstart[u] + D->vcount[u]; i++) {
        uint32_t ti = D->refs[i];
        if (D->t[3 * (size_t)ti] == DEAD_TRI)
            continue;
        uint32_t *t = D->t + 3 * (size_t)ti;
        for (int c = 0; c < 3; c++)
            if (t[c] == u)
                t[c] = k;
        D->refs[D->nrefs++] = ti;
    }
    D->vstart[k] = s;
    D->vcount[k] = D->vs[k].nlive = (uint32_t)(D->nrefs - s);
    D->vs[u].nlive = 0;
    memcpy(D->V[k].p, p, 3 * sizeof *p);
    quadric_sum(&D->V[k].Q, &D->V[k].Q, &D->V[u].Q);
    D->vs[k].flag |= D->vs[u].flag & (V_BORDER | V_LOCKED);
    D->vs[u].flag |= V_DEAD;
    D->vcount[u] = 0;
    D->vs[k].ver = D->vs[u].ver = ++D->now;
    return removed;
}

static int push_around(dec *D, uint32_t k)
{
    /* Gather the ring first and prefetch its quadrics and positions, so the
     * neighbours' cache misses overlap instead of following one another. */
    uint32_t ring[64];
    int n = 0;
    uint32_t s = next_stamp(D);
    D->vs[k].mark = s;
    for (int64_t i = D->vstart[k]; i < D->vstart[k] + D->vcount[k]; i++) {
        const uint32_t *t = D->t + 3 * (size_t)D->refs[i];
        for (int c = 0; c < 3; c++)
            if (D->vs[t[c]].mark != s) {
                D->vs[t[c]].mark = s;
                if (n == 64) { /* a rare hub: push what we have, go on */
                    for (int j = 0; j < n; j++)
                        if (!push_edge(D, k, ring[j]))
                            return 0;
                    n = 0;
                }
                ring[n++] = t[c];
#if defined(__GNUC__)
                __builtin_prefetch(&D->V[t[c]]);
                __builtin_prefetch((const char *)&D->V[t[c]] + 64);
#endif
            }
    }
    for (int j = 0; j < n; j++)
        if (!push_edge(D, k, ring[j]))
            return 0;
    return 1;
}

/* Drop stale entries and rebuild the heap. Popping a stale entry costs a
 * sift-down through memory the cache lost long ago (~0.5 us on a 1M-face
 * mesh, where ~90 % of pops would be stale); a sequential filter costs a few
 * ns per entry. Called when the heap holds over twice the live edges, so
 * the amortised cost per collapse is O(1). The order of the surviving
 * entries, hence the result, does not depend on when purges happen: the
 * heap's minimum is the same set's minimum either way. */
static void purge(dec *D)
{
    heap *H = &D->H;
    size_t w = 0;
    for (size_t i = 0; i < H->n; i++) {
        cand c = H->h[i];
        uint32_t a = cand_a(&c);
        if (!((D->vs[a].flag | D->vs[c.b].flag) & V_DEAD) && D->vs[a].ver <= c.stamp &&
            D->vs[c.b].ver <= c.stamp)
            H->h[w++] = c;
    }
    H->n = w;
    heap_make(H);
}

static void dec_free(dec *D)
{
    free(D->V), free(D->vs);
    free(D->vstart), free(D->vcount), free(D->refs), free(D->H.base);
}

/* ---- the operation ------------------------------------------------------------- */
r3d_status r3d_mesh_decimate(r3d_mesh *m, const r3d_decimate_opts *o, r3d_error *err)
{
    if (!m || !o)
        return r3d_fail(err, R3D_EARG, "decimate: no mesh or no options");
    if (!(o->target_fraction >= 0 && o->target_fraction <= 1))
        return r3d_fail(err, R3D_EARG, "decimate: target_fraction %g is not in [0, 1]",
                        o->target_fraction);
    if (o->max_triangles < 0 || !(o->max_error_mm >= 0))
        return r3d_fail(err, R3D_EARG, "decimate: negative max_triangles or max_error_mm");
    if (o->target_fraction == 0 && o->max_triangles == 0 && o->max_error_mm == 0)
        return r3d_fail(err, R3D_EARG,
                        "decimate: set target_fraction, max_triangles or max_error_mm");

    /* Drop invalid faces first; they have no plane and no edges. */
    int64_t nt = 0;
    for (int64_t i = 0; i < m->nt; i++)
        if (r3d__tri_valid(m->t + 3 * i, m->nv)) {
            memmove(m->t + 3 * nt, m->t + 3 * i, 3 * sizeof *m->t);
            nt++;
        }
    m->nt = nt;

    int64_t target = nt;
    if (o->target_fraction > 0) {
        int64_t f = (int64_t)llround(o->target_fraction * (double)nt);
        if (f < target)
            target = f;
    }
    if (o->max_triangles > 0 && o->max_triangles < target)
        target = o->max_triangles;
    if (o->target_fraction == 0 && o->max_triangles == 0)
        target = 0; /* error-bounded only */
    if (target >= nt)
        return r3d__compact_vertices(m) ? R3D_OK
                                        : r3d_fail(err, R3D_ENOMEM, "decimate: out of memory");

    dec D = {0};
    D.nv = m->nv;
    D.nt = nt;
    D.t = m->t;
    size_t nv = (size_t)m->nv + 1, ntt = (size_t)nt + 1;
    D.V = aligned_alloc(64, nv * sizeof *D.V);
    D.vs = calloc(nv, sizeof *D.vs);
    D.vstart = malloc(nv * sizeof *D.vstart);
    D.vcount = malloc(nv * sizeof *D.vcount);
    /* Twice what the lists need, so rebuilding (O(n)) happens every ~n/4
     * collapses at worst: amortised O(1) per collapse. */
    D.caprefs = 6 * (int64_t)ntt + 64;
    D.refs = malloc((size_t)D.caprefs * sizeof *D.refs);
    r3d__edge *e = NULL;
    int64_t ne = 0;
    r3d_status st = R3D_OK;
    if (!D.V || !D.vs || !D.vstart || !D.vcount || !D.refs) {
        st = r3d_fail(err, R3D_ENOMEM, "decimate: out of memory for %lld triangles",
                      (long long)nt);
        goto done;
    }
    r3d_advise_huge(D.V, nv * sizeof *D.V);
    memset(D.V, 0, nv * sizeof *D.V);
    r3d_advise_huge(D.refs, (size_t)D.caprefs * sizeof *D.refs);
    for (size_t i = 0; i < (size_t)m->nv; i++)
        for (int c = 0; c < 3; c++)
            D.V[i].p[c] = m->v[3 * i + c];

    /* The face lists double as the vertex->face lists the edge table needs
     * (same layout: contiguous, faces in increasing order), so one CSR is
     * built, not two. */
    relist(&D);
    D.vstart[m->nv] = D.nrefs;
    r3d__vtri view = {D.vstart, D.refs};
    if ((st = r3d__edges_build(m, &view, &e, &ne, err)) != R3D_OK)
        goto done;

    for (int64_t i = 0; i < nt; i++) {
        const uint32_t *t = m->t + 3 * i;
        double n[3];
        cross_tri(D.V[t[0]].p, D.V[t[1]].p, D.V[t[2]].p, n);
        double len = sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
        if (!(len > 0))
            continue;
        n[0] /= len, n[1] /= len, n[2] /= len;
        const double *p0 = D.V[t[0]].p;
        double d = -(n[0] * p0[0] + n[1] * p0[1] + n[2] * p0[2]);
        for (int c = 0; c < 3; c++)
            quadric_add_plane(&D.V[t[c]].Q, n, d, len / 2);
    }
    for (int64_t i = 0; i < ne; i++) {
        if (e[i].nfaces == 2)
            continue;
        uint32_t a = e[i].a, b = e[i].b;
        if (e[i].nfaces > 2) {
            D.vs[a].flag |= V_LOCKED | V_BORDER;
            D.vs[b].flag |= V_LOCKED | V_BORDER;
            continue;
        }
        D.vs[a].flag |= V_BORDER;
        D.vs[b].flag |= V_BORDER;
        if (o->preserve_boundary) {
            D.vs[a].flag |= V_LOCKED;
            D.vs[b].flag |= V_LOCKED;
            continue;
        }
        /* Constraint plane through the edge, perpendicular to its face,
         * weighted like a large face (G&H section 6) so boundary vertices
         * slide along the outline rather than off it. */
        const uint32_t *t = m->t + 3 * (size_t)e[i].t[0];
        double fn[3];
        cross_tri(D.V[t[0]].p, D.V[t[1]].p, D.V[t[2]].p, fn);
        const double *pa = D.V[a].p, *pb = D.V[b].p;
        double ed[3] = {pb[0] - pa[0], pb[1] - pa[1], pb[2] - pa[2]};
        double n[3] = {ed[1] * fn[2] - ed[2] * fn[1], ed[2] * fn[0] - ed[0] * fn[2],
                       ed[0] * fn[1] - ed[1] * fn[0]};
        double len = sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
        if (!(len > 0))
            continue;
        n[0] /= len, n[1] /= len, n[2] /= len;
        double d = -(n[0] * pa[0] + n[1] * pa[1] + n[2] * pa[2]);
        double w = 10 * (ed[0] * ed[0] + ed[1] * ed[1] + ed[2] * ed[2]);
        quadric_add_plane(&D.V[a].Q, n, d, w);
        quadric_add_plane(&D.V[b].Q, n, d, w);
    }
    /* Vertices the caller keeps (e.g. shared with a touching structure):
     * locked like boundary vertices, so nothing moves or removes them and
     * faces among them stay as they are. */
    if (o->locked)
        for (int64_t v = 0; v < m->nv; v++)
            if (o->locked[v])
                D.vs[v].flag |= V_LOCKED;
    /* Room for the most the heap holds before a purge (see below), so it
     * never regrows: a regrowth copies tens of MB and faults every page
     * again. Unused capacity costs nothing (pages are touched on use). */
    size_t most = (size_t)ne > 2 * (size_t)nt + 4096 ? (size_t)ne : 2 * (size_t)nt + 4096;
    if (!heap_reserve(&D.H, most + 1024)) {
        st = r3d_fail(err, R3D_ENOMEM, "decimate: out of memory for the edge heap");
        goto done;
    }
    for (int64_t i = 0; i < ne; i++) {
        double p[3], msd;
        if (e[i].nfaces <= 2 && plan(&D, e[i].a, e[i].b, p, &msd))
            D.H.h[D.H.n++] = cand_make(msd, e[i].a, e[i].b, 0);
    }
    heap_make(&D.H);
    free(e);
    e = NULL;

    int64_t alive = nt;
    while (alive > target && D.H.n > 0) {
        cand c = heap_pop(&D.H);
        uint32_t a = cand_a(&c), b = c.b;
        if ((D.vs[a].flag | D.vs[b].flag) & V_DEAD || D.vs[a].ver > c.stamp ||
            D.vs[b].ver > c.stamp)
            continue; /* stale: an end moved since this entry was pushed */
        double p[3], msd;
        if (!plan(&D, a, b, p, &msd))
            continue;
        double lim2 = o->max_error_mm * o->max_error_mm;
        if (o->max_error_mm > 0 && msd > lim2)
            continue;
        /* Keep the locked end (plan put p there); otherwise keep a. */
        uint32_t k = (D.vs[b].flag & V_LOCKED) ? b : a, u = k == a ? b : a;
        /* On flat areas every collapse costs nothing, and without a bound
         * one vertex swallows its neighbours until it has thousands of
         * faces; every later check on it is then O(valence) and the whole
         * run quadratic (the capped border of a 1.9 M-face body outline took
         * 100 s). A bound of MAX_VALENCE faces keeps fans small and the
         * triangulation even. */
        if (D.vs[k].nlive + D.vs[u].nlive > MAX_VALENCE + 2)
            continue;
        if (!link_ok(&D, k, u))
            continue;
        /* The volume-keeping point when it is allowed and passes the face
         * tests, else the quadric's own. */
        double pv[3];
        if (!((D.vs[a].flag | D.vs[b].flag) & (V_BORDER | V_LOCKED)) &&
            place_volume(&D, a, b, p, pv, o->max_error_mm > 0 ? lim2 : INFINITY) &&
            faces_survive(&D, k, u, pv) && faces_survive(&D, u, k, pv))
            memcpy(p, pv, sizeof pv);
        else if (!faces_survive(&D, k, u, p) || !faces_survive(&D, u, k, p))
            continue;
        if (D.nrefs + (int64_t)D.vcount[k] + D.vcount[u] > D.caprefs)
            relist(&D);
        alive -= collapse(&D, k, u, p);
        if (D.H.n > (size_t)(2 * alive) + 4096)
            purge(&D);
        if (!push_around(&D, k)) {
            /* Stop here but still write back: the mesh is valid, only less
             * decimated than asked, and the status says so. */
            st = r3d_fail(err, R3D_ENOMEM,
                          "decimate: out of memory for the edge heap after %lld collapses; "
                          "the mesh is valid but has %lld triangles",
                          (long long)(nt - alive), (long long)alive);
            break;
        }
    }

    /* Write back: live faces in order, moved vertices, then compact. */
    int64_t w = 0;
    for (int64_t i = 0; i < nt; i++)
        if (m->t[3 * i] != DEAD_TRI) {
            memmove(m->t + 3 * w, m->t + 3 * i, 3 * sizeof *m->t);
            w++;
        }
    m->nt = w;
    for (size_t i = 0; i < (size_t)m->nv; i++)
        for (int c = 0; c < 3; c++)
            m->v[3 * i + c] = (float)D.V[i].p[c];
    if (!r3d__compact_vertices(m) && st == R3D_OK)
        st = r3d_fail(err, R3D_ENOMEM, "decimate: out of memory");
done:
    free(e);
    dec_free(&D);
    return st;
}

/* surface.c - the default smoothing of a label surface, which knows the
 * label map it came from (r3d_mesh_smooth_label).
 *
 * A binary mask says only that the boundary crosses each grid edge between
 * an inside and an outside voxel centre somewhere along it; marching cubes
 * puts the vertex at the middle. Two regimes:
 *
 * Near-isotropic voxels (largest spacing < 1.5 x the smallest): Taubin
 * (r3d_mesh_smooth) alone leaves the low-frequency error of the binary
 * digitisation: a cylinder of radius 14.3 voxels has flat runs of voxels
 * along the axes where the data put the surface 0.15 mm out, and sits
 * 0.12 mm in near 20 degrees (mean 0.101, p95 0.202 mm). A least-area
 * flow with one pressure rounds that side but bulges flat caps and rounds
 * sharp rims. So: (1) Taubin smooths a copy; (2) its umbrella curvature
 * (the Laplacian's normal part) at every vertex is the target, smoothed
 * along the surface by an edge-preserving (bilateral) average - 30
 * passes, weight exp(-(dc / tau)^2), tau = 0.0286 x the smallest spacing -
 * so a side's curvature is evened out but a rim's stays apart from the
 * flat cap next to it; (3) the original vertices flow along their grid
 * edges (as below) to that curvature: step = lambda (L.n - c) + pressure;
 * (4) one uniform offset along the normals brings the enclosed volume to
 * the mask's (voxel count x voxel volume, the unbiased estimate; marching
 * cubes' chamfers cost thin structures several per cent: a plate one
 * voxel thick -3.4 % raw), held to a quarter voxel. Distance to the true
 * surface at 0.7 mm voxels, mean / p95 mm, Taubin + offset -> this:
 * sphere r 20 0.045 / 0.125 -> 0.021 / 0.051, torus 0.051 / 0.125 ->
 * 0.041 / 0.096, nested shells 0.048 / 0.126 -> 0.022 / 0.055, cylinder
 * 0.101 / 0.202 -> 0.073 / 0.131, one-voxel plate 0.040 / 0.102 -> 0.075
 * / 0.164 (its rims, one voxel apart, are rounded more).
 *
 * Thick slices (anisotropic voxels, e.g. 0.7 x 0.7 x 2.5 mm): near the
 * poles of a structure the surface between two slices is undetermined by
 * up to a slice, marching cubes makes terraces there, and Taubin keeps
 * them (they are a low frequency). Instead each vertex moves only along
 * its grid edge, between the two voxel centres (so the surface stays
 * consistent with the mask: every inside centre inside, every outside
 * centre outside), under a volume-preserving mean-curvature flow: an
 * umbrella-Laplacian step along the normal plus one uniform pressure that
 * holds the volume at the mask's. Its rest state is the least-area surface
 * of that volume consistent with the mask, so terraces become round caps.
 * The umbrella's normal part is about H |e|^2 / 2, so with edges of 0.7
 * and 2.5 mm side by side a constant umbrella is no constant curvature
 * (and the flow flattens equators and sharpens poles the longer it runs):
 * it is divided by the vertex's mean squared edge (above 2 x the smallest
 * spacing squared), and the flow runs 45 steps at strength 5. Measured at
 * 0.7 x 0.7 x 2.5 mm (distance to the true surface, mean / p95 mm; Taubin
 * -> plain umbrella, 30 steps -> this): sphere r 20 with poles on slices
 * 0.181 / 0.625 -> 0.069 / 0.157 -> 0.042 / 0.132; r 18, poles between
 * slices, 0.190 / 0.762 -> 0.113 / 0.236 -> 0.058 / 0.126; r 20 shifted
 * 0.9 mm 0.174 / 0.671 -> 0.108 / 0.309 -> 0.058 / 0.162. On isotropic grids its one pressure for the whole surface
 * would round sharp rims and bulge flat faces (a one-voxel plate 0.19 mm
 * mean error): there the flow goes to the target curvature above.
 *
 * Each vertex's edge is recovered from its position: a fresh vertex of
 * r3d_mesh_from_label lies at the middle of a grid edge (two index
 * coordinates whole, one half-way), so the mesh must not be changed in
 * between. Cost: O(voxels) once to count the mask, then O(iterations x
 * triangles), parallel over vertices; the result does not depend on the
 * thread count (sums are taken in fixed blocks, in order).
 *
 * Several labels (r3d_mesh_from_labels, labels.c) share the vertices
 * where they touch; the caller groups them (grp). One joint flow: a
 * shared vertex has one position and one grid edge, and moves by the
 * average of its labels' pulls (each label with its own pressure and, on
 * isotropic grids, its own target curvature), like the films of a foam;
 * the final volume offset moves it by the average of its labels' offsets.
 */
#include "mesh_topology.h"
#include "surface_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FLOW_LAMBDA 0.5      /* umbrella step */
#ifndef FLOW_PER_STRENGTH
#define FLOW_PER_STRENGTH 9 /* iterations per unit of strength (5 -> 45) */
#endif
#ifndef FLOW_MOMENTUM
#define FLOW_MOMENTUM 0.7 /* heavy-ball momentum: 30 steps do what 80 plain ones did */
#endif
#define FLOW_MARGIN 0.02     /* keep off the voxel centres by 2 % of the edge */
#define ANISO_RATIO 1.5      /* largest / smallest spacing that counts as thick slices */
#ifndef TARGET_PASSES
#define TARGET_PASSES 30 /* edge-preserving smoothing passes of the target curvature */
#endif
#ifndef TARGET_TAU
#define TARGET_TAU 0.0286 /* its range (x smallest spacing): keeps rims apart from sides */
#endif
#ifndef ISO_PER_STRENGTH
#define ISO_PER_STRENGTH 6 /* isotropic flow: iterations per unit of strength (5 -> 30) */
#endif
#define FLOW_EDGE2 2.0 /* thick slices: reference squared edge, x smallest spacing^2 */
#define WTAB 2048
#define NBLK 256             /* fixed blocks for the volume sums */

/* One label's mesh in the flow. Its vertex v is group g[v]. */
typedef struct part {
    r3d_mesh *m;
    r3d__vtri vt;
    const int64_t *g;
    double *nrm;       /* 3 per vertex: sum of the incident faces' cross products */
    double *fn;        /* 3 per triangle: its cross product */
    int64_t *nstart, *nb; /* thick slices: unique neighbours (groups), CSR */
    double *c;         /* isotropic: per vertex, the target umbrella curvature */
    double V0, delta;  /* the mask's volume; this step's pressure (mm) */
    double bv[NBLK], ba[NBLK];
} part;

typedef struct flow {
    part *P;
    int np, cur;       /* parts; the one a pass works on */
    int64_t ng;
    double *p0, *d;    /* per group: inside centre (of its first label), to the other centre */
    double *t;         /* per group: position along the edge, 0 .. 1 */
    double *vel;       /* per group: the last step (momentum) */
    double *pos;       /* per group, 3 */
    double *acc;       /* per group: summed moves along the edge */
    int32_t *k;        /* per group: how many labels moved it */
    double *cg;        /* isotropic: per group, target curvature (scratch) */
    double wt[WTAB + 1]; /* exp(-r^2) for r^2 in 0..16, to 1e-5 */
    double tau;        /* range of the edge-preserving average, mm */
    double smin;       /* smallest voxel spacing, mm */
} flow;

static int is_in(const r3d_volume *v, uint16_t label, int64_t i, int64_t j, int64_t k)
{
    if (i < 0 || j < 0 || k < 0 || i >= v->dim[0] || j >= v->dim[1] || k >= v->dim[2])
        return 0;
    return r3d_volume_get(v, (k * v->dim[1] + j) * v->dim[0] + i) == label;
}

static int64_t count_label(const r3d_volume *v, uint16_t label)
{
    int64_t n = v->dim[0] * v->dim[1] * v->dim[2], c = 0;
    int raw = v->scl_slope == 1 && v->scl_inter == 0;
    if (raw && v->dtype == R3D_U16) {
        const uint16_t *p = v->voxels;
        for (int64_t i = 0; i < n; i++)
            c += p[i] == label;
    } else if (raw && v->dtype == R3D_I16) {
        const int16_t *p = v->voxels;
        for (int64_t i = 0; i < n; i++)
            c += p[i] == (int)label;
    } else if (raw && v->dtype == R3D_U8) {
        const uint8_t *p = v->voxels;
        for (int64_t i = 0; i < n; i++)
            c += p[i] == (int)label;
    } else
        for (int64_t i = 0; i < n; i++)
            c += r3d_volume_get(v, i) == label;
    return c;
}

static const double *gpos(const flow *f, const part *p, uint32_t v)
{
    return f->pos + 3 * p->g[v];
}

/* Block k of the current part's triangles: each face's cross product
 * (kept for the vertex normals) and the block's signed volume, relative
 * to one vertex for precision far from the origin. */
static void face_pass(void *ctx, int64_t b, int64_t e)
{
    flow *f = ctx;
    part *p = &f->P[f->cur];
    const r3d_mesh *m = p->m;
    const double *o = gpos(f, p, m->t[0]);
    for (int64_t k = b; k < e; k++) {
        int64_t t0 = m->nt * k / NBLK, t1 = m->nt * (k + 1) / NBLK;
        double vol = 0;
        for (int64_t i = t0; i < t1; i++) {
            const uint32_t *t = m->t + 3 * i;
            const double *a = gpos(f, p, t[0]), *bb = gpos(f, p, t[1]), *cc = gpos(f, p, t[2]);
            double u[3] = {bb[0] - a[0], bb[1] - a[1], bb[2] - a[2]};
            double w[3] = {cc[0] - a[0], cc[1] - a[1], cc[2] - a[2]};
            double *n = p->fn + 3 * i;
            n[0] = u[1] * w[2] - u[2] * w[1];
            n[1] = u[2] * w[0] - u[0] * w[2];
            n[2] = u[0] * w[1] - u[1] * w[0];
            vol += (a[0] - o[0]) * n[0] + (a[1] - o[1]) * n[1] + (a[2] - o[2]) * n[2];
        }
        p->bv[k] = vol / 6;
    }
}

/* Block k of the current part's vertices: normals (sum of the incident
 * faces' cross products) and the area they sweep when pushed along the
 * normal but held to their edges (area x cos^2; plain area when there are
 * no edges, d NULL). */
static void vertex_pass(void *ctx, int64_t b, int64_t e)
{
    flow *f = ctx;
    part *p = &f->P[f->cur];
    const r3d_mesh *m = p->m;
    for (int64_t k = b; k < e; k++) {
        int64_t v0 = m->nv * k / NBLK, v1 = m->nv * (k + 1) / NBLK;
        double wa = 0;
        for (int64_t v = v0; v < v1; v++) {
            double n[3] = {0, 0, 0};
            for (int64_t s = p->vt.start[v]; s < p->vt.start[v + 1]; s++) {
                const double *q = p->fn + 3 * (int64_t)p->vt.tri[s];
                n[0] += q[0];
                n[1] += q[1];
                n[2] += q[2];
            }
            memcpy(p->nrm + 3 * v, n, sizeof n);
            double ln = sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
            if (!f->d) {
                wa += ln / 6;
                continue;
            }
            const double *d = f->d + 3 * p->g[v];
            double ld = sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
            if (ln > 0 && ld > 0) {
                double cth = (n[0] * d[0] + n[1] * d[1] + n[2] * d[2]) / (ln * ld);
                wa += ln / 6 * cth * cth;
            }
        }
        p->ba[k] = wa;
    }
}

/* Normals, volume and swept area of part i. */
static void part_state(flow *f, int i, double *V, double *A)
{
    f->cur = i;
    r3d_parallel_for(NBLK, face_pass, f);
    r3d_parallel_for(NBLK, vertex_pass, f);
    *V = *A = 0;
    for (int k = 0; k < NBLK; k++) {
        *V += f->P[i].bv[k];
        *A += f->P[i].ba[k];
    }
}

/* Unique neighbours of every vertex of a part, as groups (CSR), from its
 * vertex->triangle lists: the umbrella then reads each neighbour once. */
static r3d_status part_neighbours(flow *f, part *p, r3d_error *err)
{
    const r3d_mesh *m = p->m;
    p->nstart = malloc(((size_t)m->nv + 1) * sizeof *p->nstart);
    p->nb = malloc(((size_t)2 * (size_t)(p->vt.start[m->nv]) + 1) * sizeof *p->nb);
    if (!p->nstart || !p->nb)
        return r3d_fail(err, R3D_ENOMEM, "mesh_smooth_label: out of memory for adjacency");
    int64_t w = 0;
    for (int64_t v = 0; v < m->nv; v++) {
        p->nstart[v] = w;
        for (int64_t s = p->vt.start[v]; s < p->vt.start[v + 1]; s++) {
            const uint32_t *t = m->t + 3 * (int64_t)p->vt.tri[s];
            for (int c = 0; c < 3; c++) {
                if (t[c] == (uint32_t)v)
                    continue;
                int64_t g = p->g[t[c]], i = p->nstart[v];
                while (i < w && p->nb[i] != g)
                    i++;
                if (i == w)
                    p->nb[w++] = g;
            }
        }
    }
    p->nstart[m->nv] = w;
    (void)f;
    return R3D_OK;
}

/* One step of the current part: the umbrella Laplacian's normal part plus
 * its pressure, as a move along each vertex's edge, added to its group. A
 * group occurs once per part, so the threads never write the same slot. */
static void move_pass(void *ctx, int64_t b, int64_t e)
{
    flow *f = ctx;
    part *p = &f->P[f->cur];
    for (int64_t v = b; v < e; v++) {
        int64_t g = p->g[v];
        const double *x = f->pos + 3 * g, *n = p->nrm + 3 * v, *d = f->d + 3 * g;
        double q[3] = {0, 0, 0}, rr = 0; /* sums of the neighbours and of |r|^2 */
        int64_t s0 = p->nstart[v], cnt = p->nstart[v + 1] - s0;
        for (int64_t i = 0; i < cnt; i++) {
            const double *r = f->pos + 3 * p->nb[s0 + i];
            q[0] += r[0];
            q[1] += r[1];
            q[2] += r[2];
            rr += r[0] * r[0] + r[1] * r[1] + r[2] * r[2];
        }
        double ln = sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
        double dd = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
        if (!cnt || !(ln > 0) || !(dd > 0))
            continue;
        double L[3] = {q[0] / (double)cnt - x[0], q[1] / (double)cnt - x[1],
                       q[2] / (double)cnt - x[2]};
        double u[3] = {n[0] / ln, n[1] / ln, n[2] / ln};
        double st;
        if (p->c) {
            st = FLOW_LAMBDA * (u[0] * L[0] + u[1] * L[1] + u[2] * L[2] - p->c[v]) + p->delta;
        } else {
            /* the umbrella's normal part is about H |e|^2 / 2: divided by
             * the mean squared edge, so long edges across thick slices do
             * not flatten the equator and sharpen the poles (at rest H,
             * not the umbrella, is the same everywhere) */
            double m2 = rr / (double)cnt - 2 * (x[0] * q[0] + x[1] * q[1] + x[2] * q[2]) /
                        (double)cnt + x[0] * x[0] + x[1] * x[1] + x[2] * x[2];
            double ref = FLOW_EDGE2 * f->smin * f->smin, sc = m2 > ref ? ref / m2 : 1;
            st = FLOW_LAMBDA * sc * (u[0] * L[0] + u[1] * L[1] + u[2] * L[2]) + p->delta;
        }
        f->acc[g] += st * (u[0] * d[0] + u[1] * d[1] + u[2] * d[2]) / dd;
        f->k[g]++;
    }
}

static void update_pass(void *ctx, int64_t b, int64_t e)
{
    flow *f = ctx;
    for (int64_t g = b; g < e; g++) {
        if (f->k[g]) {
            double t0 = f->t[g];
            double t = t0 + f->acc[g] / f->k[g] +
                       FLOW_MOMENTUM * f->vel[g];
            t = t < FLOW_MARGIN ? FLOW_MARGIN : t > 1 - FLOW_MARGIN ? 1 - FLOW_MARGIN : t;
            f->vel[g] = t - t0;
            f->t[g] = t;
        }
        f->acc[g] = 0;
        f->k[g] = 0;
        for (int c = 0; c < 3; c++)
            f->pos[3 * g + c] = f->p0[3 * g + c] + f->t[g] * f->d[3 * g + c];
    }
}

/* The grid edge of every group, from the first vertex that has it: p0 the
 * centre of the voxel of that vertex's label, d to the other centre. */
static r3d_status find_edges(flow *f, const r3d_volume *lab, const uint16_t *values,
                             const double inv[3][3], r3d_error *err)
{
    const double(*M)[4] = lab->ijk_to_lps;
    for (int64_t g = 0; g < f->ng; g++)
        f->t[g] = -1;
    for (int i = 0; i < f->np; i++) {
        const r3d_mesh *m = f->P[i].m;
        double sg = m->frame == R3D_FRAME_RAS ? -1 : 1;
        for (int64_t v = 0; v < m->nv; v++) {
            int64_t g = f->P[i].g[v];
            if (f->t[g] >= 0)
                continue;
            double x[3] = {sg * m->v[3 * v] - M[0][3], sg * m->v[3 * v + 1] - M[1][3],
                           m->v[3 * v + 2] - M[2][3]};
            double ijk[3];
            for (int r = 0; r < 3; r++)
                ijk[r] = inv[r][0] * x[0] + inv[r][1] * x[1] + inv[r][2] * x[2];
            int a = 0;
            double best = 1;
            for (int k = 0; k < 3; k++) {
                double h = fabs(ijk[k] - floor(ijk[k]) - 0.5);
                if (h < best) {
                    best = h;
                    a = k;
                }
            }
            int64_t q0[3], q1[3];
            for (int k = 0; k < 3; k++) {
                q0[k] = q1[k] = k == a ? (int64_t)floor(ijk[k]) : (int64_t)llround(ijk[k]);
                if (k != a && fabs(ijk[k] - (double)q0[k]) > 0.01)
                    best = 1;
            }
            q1[a]++;
            int in0 = is_in(lab, values[i], q0[0], q0[1], q0[2]);
            int in1 = is_in(lab, values[i], q1[0], q1[1], q1[2]);
            if (best > 0.01 || in0 == in1)
                return r3d_fail(err, R3D_EARG,
                                "mesh_smooth_label: vertex %lld is not on a boundary edge of "
                                "label %u (the mesh must come unchanged from "
                                "r3d_mesh_from_label)",
                                (long long)v, (unsigned)values[i]);
            const int64_t *pi = in0 ? q0 : q1, *po = in0 ? q1 : q0;
            for (int r = 0; r < 3; r++) {
                double ci = M[r][0] * pi[0] + M[r][1] * pi[1] + M[r][2] * pi[2] + M[r][3];
                double co = M[r][0] * po[0] + M[r][1] * po[1] + M[r][2] * po[2] + M[r][3];
                double s = r < 2 ? sg : 1;
                f->p0[3 * g + r] = s * ci;
                f->d[3 * g + r] = s * (co - ci);
            }
            f->t[g] = 0.5;
        }
    }
    return R3D_OK;
}

/* Isotropic: the target curvature of part i, from a Taubin-smoothed copy. */
/* Block of the current part's vertices: the umbrella curvature (the
 * Laplacian's normal part) of the Taubin copy held in pos. */
static void curv_pass(void *ctx, int64_t b, int64_t e)
{
    flow *f = ctx;
    part *p = &f->P[f->cur];
    for (int64_t v = b; v < e; v++) {
        const double *x = f->pos + 3 * p->g[v], *n = p->nrm + 3 * v;
        double q[3] = {0, 0, 0};
        int64_t s0 = p->nstart[v], cnt = p->nstart[v + 1] - s0;
        for (int64_t k = 0; k < cnt; k++)
            for (int c = 0; c < 3; c++)
                q[c] += f->pos[3 * p->nb[s0 + k] + c];
        double ln = sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
        p->c[v] = 0;
        if (cnt && ln > 0)
            for (int c = 0; c < 3; c++)
                p->c[v] += (q[c] / (double)cnt - x[c]) * n[c] / ln;
    }
}

/* Block of the current part's vertices: one pass of the edge-preserving
 * average of the target curvature, from cg (per group) into c. */
static void even_pass(void *ctx, int64_t b, int64_t e)
{
    flow *f = ctx;
    part *p = &f->P[f->cur];
    const double *cg = f->cg, *wt = f->wt;
    double itau = 1 / f->tau;
    for (int64_t v = b; v < e; v++) {
        int64_t s0 = p->nstart[v], cnt = p->nstart[v + 1] - s0;
        double c0 = cg[p->g[v]], sum = c0, ws = 1;
        for (int64_t k = 0; k < cnt; k++) {
            double cn = cg[p->nb[s0 + k]], r = (cn - c0) * itau;
            double w = 0, x = r * r * (WTAB / 16.0); /* exp(-r^2) from the table */
            if (x < WTAB) {
                int ix = (int)x;
                w = wt[ix] + (x - ix) * (wt[ix + 1] - wt[ix]);
            }
            sum += w * cn;
            ws += w;
        }
        p->c[v] = sum / ws;
    }
}

/* Isotropic: the target curvature of part i, from a Taubin-smoothed copy,
 * evened out along the surface (not across rims). Uses pos as scratch. */
static r3d_status part_target(flow *f, int i, double strength, r3d_error *err)
{
    part *p = &f->P[i];
    const r3d_mesh *m = p->m;
    r3d_mesh *cp = r3d_mesh_copy(m, err);
    if (!cp)
        return R3D_ENOMEM;
    r3d_status st = r3d_mesh_smooth(cp, strength, err);
    p->c = malloc((size_t)m->nv * sizeof *p->c + 1);
    if (st != R3D_OK || !p->c) {
        r3d_mesh_free(cp);
        return st != R3D_OK ? st : r3d_fail(err, R3D_ENOMEM, "mesh_smooth_label: out of memory");
    }
    for (int64_t v = 0; v < m->nv; v++)
        for (int c = 0; c < 3; c++)
            f->pos[3 * p->g[v] + c] = cp->v[3 * v + c];
    r3d_mesh_free(cp);
    double V, A;
    part_state(f, i, &V, &A);
    r3d_parallel_for(m->nv, curv_pass, f);
    for (int rep = 0; rep < TARGET_PASSES; rep++) {
        for (int64_t v = 0; v < m->nv; v++)
            f->cg[p->g[v]] = p->c[v];
        r3d_parallel_for(m->nv, even_pass, f);
    }
    return R3D_OK;
}

/* Every part to its mask's volume by one uniform offset along its
 * normals (twice: the first is exact to first order), held to a quarter
 * voxel; a shared group moves by the average of its parts' offsets. */
static r3d_status offset_to_volume(flow *f, r3d_error *err)
{
    double *mv = calloc((size_t)f->ng * 3 + 1, sizeof *mv);
    if (!mv)
        return r3d_fail(err, R3D_ENOMEM, "mesh_smooth_label: out of memory");
    for (int rep = 0; rep < 2; rep++) {
        for (int i = 0; i < f->np; i++) {
            part *p = &f->P[i];
            if (!p->m->nt)
                continue;
            double V, A;
            part_state(f, i, &V, &A);
            double delta = A > 0 ? (p->V0 - V) / A : 0;
            delta = fmax(-0.25 * f->smin, fmin(0.25 * f->smin, delta));
            for (int64_t v = 0; v < p->m->nv; v++) {
                const double *n = p->nrm + 3 * v;
                double ln = sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
                f->k[p->g[v]]++;
                if (ln > 0)
                    for (int c = 0; c < 3; c++)
                        mv[3 * p->g[v] + c] += delta * n[c] / ln;
            }
        }
        for (int64_t g = 0; g < f->ng; g++) {
            for (int c = 0; c < 3; c++)
                if (f->k[g])
                    f->pos[3 * g + c] += mv[3 * g + c] / f->k[g];
            mv[3 * g] = mv[3 * g + 1] = mv[3 * g + 2] = 0;
            f->k[g] = 0;
        }
    }
    free(mv);
    return R3D_OK;
}

r3d_status r3d__smooth_labels(r3d_mesh **meshes, const uint16_t *values, int n,
                              const int64_t *grp, int64_t ng, const r3d_volume *labels,
                              double strength, r3d_error *err)
{
    if (!labels || !labels->voxels)
        return r3d_fail(err, R3D_EARG, "mesh_smooth_label: no label map");
    if (!(strength >= 0 && strength <= 10))
        return r3d_fail(err, R3D_EARG, "mesh_smooth_label: strength %g is outside 0..10",
                        strength);
    const double(*M)[4] = labels->ijk_to_lps;
    double det = M[0][0] * (M[1][1] * M[2][2] - M[1][2] * M[2][1]) -
                 M[0][1] * (M[1][0] * M[2][2] - M[1][2] * M[2][0]) +
                 M[0][2] * (M[1][0] * M[2][1] - M[1][1] * M[2][0]);
    if (!(det != 0) || !isfinite(det))
        return r3d_fail(err, R3D_EARG, "mesh_smooth_label: the voxel-to-patient matrix is singular");
    for (int i = 0; i < n; i++)
        for (int64_t j = 0; j < 3 * meshes[i]->nt; j++)
            if (meshes[i]->t[j] >= meshes[i]->nv)
                return r3d_fail(err, R3D_EDATA,
                                "mesh_smooth_label: triangle %lld uses vertex %u of %lld",
                                (long long)(j / 3), meshes[i]->t[j], (long long)meshes[i]->nv);
    if (strength == 0)
        return R3D_OK;
    double inv[3][3];
    for (int r = 0; r < 3; r++)
        for (int k = 0; k < 3; k++) {
            int r1 = (k + 1) % 3, r2 = (k + 2) % 3, c1 = (r + 1) % 3, c2 = (r + 2) % 3;
            inv[r][k] = (M[r1][c1] * M[r2][c2] - M[r1][c2] * M[r2][c1]) / det;
        }
    double sp[3];
    for (int k = 0; k < 3; k++)
        sp[k] = sqrt(M[0][k] * M[0][k] + M[1][k] * M[1][k] + M[2][k] * M[2][k]);
    double smin = fmin(sp[0], fmin(sp[1], sp[2])), smax = fmax(sp[0], fmax(sp[1], sp[2]));
    /* isotropic: the flow to the curvature of a Taubin-smoothed copy */
    int iso = smax <= ANISO_RATIO * smin;

    flow f;
    memset(&f, 0, sizeof f);
    f.np = n;
    f.ng = ng;
    f.smin = smin;
    r3d_status st = R3D_OK;
    f.P = calloc((size_t)n + 1, sizeof *f.P);
    f.pos = malloc((size_t)ng * 3 * sizeof *f.pos + 1);
    if (!f.P || !f.pos)
        goto oom;
    {
        f.p0 = malloc((size_t)ng * 3 * sizeof *f.p0 + 1);
        f.d = malloc((size_t)ng * 3 * sizeof *f.d + 1);
        f.t = malloc((size_t)ng * sizeof *f.t + 1);
        f.acc = calloc((size_t)ng + 1, sizeof *f.acc);
        f.k = calloc((size_t)ng + 1, sizeof *f.k);
        f.vel = calloc((size_t)ng + 1, sizeof *f.vel);
        if (!f.p0 || !f.d || !f.t || !f.acc || !f.k || !f.vel)
            goto oom;
    }
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        part *p = &f.P[i];
        p->m = meshes[i];
        p->g = grp + off;
        off += meshes[i]->nv;
        p->nrm = malloc((size_t)meshes[i]->nv * 3 * sizeof *p->nrm + 1);
        p->fn = malloc((size_t)meshes[i]->nt * 3 * sizeof *p->fn + 1);
        if (!p->nrm || !p->fn)
            goto oom;
        if ((st = r3d__vtri_build(p->m, &p->vt, err)) != R3D_OK)
            goto out;
        if ((st = part_neighbours(&f, p, err)) != R3D_OK)
            goto out;
        p->V0 = meshes[i]->nt ? (double)count_label(labels, values[i]) * fabs(det) : 0;
    }
    if ((st = find_edges(&f, labels, values, inv, err)) != R3D_OK)
        goto out;
    if (iso) {
        f.cg = malloc((size_t)ng * sizeof *f.cg + 1);
        if (!f.cg)
            goto oom;
        f.tau = TARGET_TAU * smin;
        for (int i = 0; i <= WTAB; i++)
            f.wt[i] = exp(-16.0 * i / WTAB);
    }
    if (iso)
        for (int i = 0; i < n; i++)
            if (meshes[i]->nt && (st = part_target(&f, i, strength, err)) != R3D_OK)
                goto out;
    r3d_parallel_for(ng, update_pass, &f);
    int iters = (int)((iso ? ISO_PER_STRENGTH : FLOW_PER_STRENGTH) * strength + 0.5);
    for (int it = 0; it < iters; it++) {
        for (int i = 0; i < n; i++) {
            if (!meshes[i]->nt)
                continue;
            double V, A;
            part_state(&f, i, &V, &A);
            f.P[i].delta = A > 0 ? (f.P[i].V0 - V) / A : 0;
        }
        for (int i = 0; i < n; i++) {
            f.cur = i;
            r3d_parallel_for(meshes[i]->nv, move_pass, &f);
        }
        r3d_parallel_for(ng, update_pass, &f);
    }
    if (iso && (st = offset_to_volume(&f, err)) != R3D_OK)
        goto out;
    for (int i = 0; i < n; i++)
        for (int64_t v = 0; v < meshes[i]->nv; v++)
            for (int c = 0; c < 3; c++)
                meshes[i]->v[3 * v + c] = (float)f.pos[3 * f.P[i].g[v] + c];
    goto out;
oom:
    st = r3d_fail(err, R3D_ENOMEM, "mesh_smooth_label: out of memory");
out:
    if (f.P)
        for (int i = 0; i < n; i++) {
            r3d__vtri_free(&f.P[i].vt);
            free(f.P[i].nrm);
            free(f.P[i].fn);
            free(f.P[i].nstart);
            free(f.P[i].nb);
            free(f.P[i].c);
        }
    free(f.P);
    free(f.pos);
    free(f.p0);
    free(f.d);
    free(f.t);
    free(f.acc);
    free(f.k);
    free(f.vel);
    free(f.cg);
    return st;
}

r3d_status r3d_mesh_smooth_label(r3d_mesh *m, const r3d_volume *labels, uint16_t label,
                                 double strength, r3d_error *err)
{
    if (!m)
        return r3d_fail(err, R3D_EARG, "mesh_smooth_label: no mesh");
    if (m->nv == 0 || m->nt == 0) {
        if (!(strength >= 0 && strength <= 10))
            return r3d_fail(err, R3D_EARG, "mesh_smooth_label: strength %g is outside 0..10",
                            strength);
        return R3D_OK;
    }
    int64_t *g = malloc((size_t)m->nv * sizeof *g);
    if (!g)
        return r3d_fail(err, R3D_ENOMEM, "mesh_smooth_label: out of memory");
    for (int64_t v = 0; v < m->nv; v++)
        g[v] = v;
    r3d_status st = r3d__smooth_labels(&m, &label, 1, g, m->nv, labels, strength, err);
    free(g);
    return st;
}

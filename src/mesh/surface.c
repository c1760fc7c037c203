/* surface.c - the default smoothing of a label surface, which knows the
 * label map it came from (r3d_mesh_smooth_label).
 *
 * A binary mask says only that the boundary crosses each grid edge between
 * an inside and an outside voxel centre somewhere along it; marching cubes
 * puts the vertex at the middle. Two regimes:
 *
 * Near-isotropic voxels (largest spacing < 1.5 x the smallest): a plain
 * low-pass filter (Taubin lambda/mu, as r3d_mesh_smooth used before its
 * windowed sinc) alone leaves the low-frequency error of the binary
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
 * edges (as below) to that curvature: step = lambda (L.n - c) + pressure,
 * 15 steps of lambda 0.7 with momentum 0.7 (20 of 0.5 at 0.75 before:
 * the figures below within 0.005 mm, at 4/3 the cost);
 * (4) one uniform offset along the normals brings the enclosed volume to
 * the mask's (voxel count x voxel volume, the unbiased estimate; marching
 * cubes' chamfers cost thin structures several per cent: a plate one
 * voxel thick -3.4 % raw), held to a quarter voxel. Distance to the true
 * surface at 0.7 mm voxels, mean / p95 mm, Taubin + offset -> this:
 * sphere r 20 0.045 / 0.125 -> 0.023 / 0.057, torus 0.051 / 0.125 ->
 * 0.039 / 0.095, nested shells 0.048 / 0.126 -> 0.025 / 0.061, cylinder
 * 0.101 / 0.202 -> 0.073 / 0.134, one-voxel plate 0.040 / 0.102 -> 0.075
 * / 0.170 (its rims, one voxel apart, are rounded more). The Taubin copy
 * and the 30 averaging passes are what the figures hang on: the copy is
 * 15 lambda/mu pairs of lambda 0.6, pass band 0.12 (with the flow's 20
 * steps of 0.5: 20 pairs of 0.5, 0.1 gave sphere 0.023 / 0.056, cylinder
 * 0.075 / 0.131, plate 0.075 / 0.165, these 0.022 / 0.054, 0.072 / 0.130,
 * 0.075 / 0.167; 15 pairs of 0.5 cost the cylinder p95 0.19, a pass band
 * of 0.1 at 0.6 the plate p95 0.170, of 0.15 the cylinder's 0.143); 20
 * (25) averaging passes cost the cylinder p95 0.17 (0.139), a wider tau
 * (0.035) the plate p95 0.25, and a windowed-sinc copy (as smooth.c) the
 * plate p95 0.24.
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
 * spacing squared). The pressure brings the volume to the mask's after
 * the step, to first order (it foresees the step's own change; against
 * the volume before the step a thin vessel on 5 mm slices ended -2.3 %),
 * so the flow can take long steps: 20 of lambda 1.4 at momentum 0.7 at
 * strength 5 (it was 45 of 0.5; 2 x 1.4 < 2 (1 + 0.7) keeps the heavy
 * ball stable for the umbrella's eigenvalues up to 2). Measured at
 * 0.7 x 0.7 x 2.5 mm (distance to the true surface, mean / p95 mm; Taubin
 * -> plain umbrella, 30 steps -> divided, 45 steps -> this): sphere r 20
 * with poles on slices 0.181 / 0.625 -> 0.069 / 0.157 -> 0.042 / 0.132 ->
 * 0.044 / 0.107; r 18, poles between slices, 0.190 / 0.762 -> 0.113 /
 * 0.236 -> 0.058 / 0.126 -> 0.064 / 0.159; r 20 shifted 0.9 mm 0.174 /
 * 0.671 -> 0.108 / 0.309 -> 0.058 / 0.162 -> 0.063 / 0.158 (25 steps of
 * 1.2 at 0.75: 0.041 / 0.104, 0.064 / 0.154, 0.062 / 0.147; 20 of 1.2 at
 * 0.75 without the foresight left the hepatic vein on 5 mm slices -0.9 %
 * of its voxels). On isotropic grids its one pressure for the whole surface
 * would round sharp rims and bulge flat faces (a one-voxel plate 0.19 mm
 * mean error): there the flow goes to the target curvature above.
 *
 * Each vertex's edge is recovered from its position: a fresh vertex of
 * r3d_mesh_from_label lies at the middle of a grid edge (two index
 * coordinates whole, one half-way), so the mesh must not be changed in
 * between. Cost: O(voxels in the surface's box) once to count the mask,
 * then O(iterations x triangles), parallel over vertices (every pass, the
 * one-rings' build and the copies; only a counting sort of the face
 * corners is serial), all arrays in one block (an arena, see below);
 * each pass reads the previous array and writes a fresh one, so the
 * result does not depend on the thread count (sums are taken in fixed
 * blocks, in order; test_mesh_extract and test_mesh_labels compare 1, 2,
 * 4 and 7 threads byte for byte). Each step is
 * two passes: one sweep over every vertex's one-ring (kept in winding
 * order, so it gives the normal as well as the umbrella, and the volume as
 * sum (x - o).n / 18 - no per-face pass), then the moves; a grid edge is
 * stored as one byte (its axis and sense: there are only 6 per frame).
 * (A step in one pass - the moves made in the sweep, into a second
 * position buffer, the pressure foreseen from the pass before - changed
 * the figures by 0.001 mm but was no faster: liver 1.742 vs 1.755 G
 * instructions, cachegrind, and the same time within the noise.)
 * Where the processor has AVX2 the ring sweep and the Taubin copy hold a
 * point in one 4-wide register (ring_pass_avx2, taubin_pass_avx2): the
 * same operations in the same order, so the same bytes (test_mesh_extract
 * compares both paths). Lung vessels (712 k triangles, 0.55 x 0.55 x 0.7
 * mm), meshbench --smooth 5 --threads 1: 5.8 -> 4.6 G instructions in the
 * smoothing (cachegrind: sweeps 2.33 -> 1.43, averaging 1.41 -> 1.24,
 * Taubin 1.06 -> 0.78); the passes now stream memory as much as they
 * compute (the Taubin copy takes as long as the averaging with 60 % of
 * its instructions). CPU seconds on the loaded 2-core VM, medians of 9
 * runs interleaved with VTK's vtkWindowedSincPolyDataFilter (20
 * iterations, as bench/mesh_vs_vtk --one-thread): vessels 0.81 ->
 * 0.63 s (VTK 0.39: 2.07 -> 1.61 x); liver (5 runs) 0.203 -> 0.193 s
 * (VTK 0.187).
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
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifndef FLOW_LAMBDA
#define FLOW_LAMBDA 0.7 /* isotropic: umbrella step (0.5 took 20 steps at momentum 0.75) */
#endif
#ifndef ANISO_LAMBDA
#define ANISO_LAMBDA 1.4 /* thick slices: umbrella step (0.5 took 45 steps at 0.7) */
#endif
#ifndef FLOW_PER_STRENGTH
#define FLOW_PER_STRENGTH 4 /* thick slices: iterations per unit of strength (5 -> 20) */
#endif
#ifndef FLOW_MOMENTUM
#define FLOW_MOMENTUM 0.7 /* heavy-ball momentum: 20 steps do what 80 plain ones did */
#endif
#ifndef ISO_MOMENTUM
#define ISO_MOMENTUM 0.7 /* the isotropic flow's */
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
#define ISO_PER_STRENGTH 3 /* isotropic flow: iterations per unit of strength (5 -> 15) */
#endif
#define FLOW_EDGE2 2.0 /* thick slices: reference squared edge, x smallest spacing^2 */
#ifndef TAUBIN_LAMBDA
#define TAUBIN_LAMBDA 0.6 /* the target's Taubin copy (lambda/mu, kept here) */
#endif
#ifndef TAUBIN_KPB
#define TAUBIN_KPB 0.12
#endif
#ifndef TAUBIN_PER_STRENGTH
#define TAUBIN_PER_STRENGTH 3 /* the target's Taubin copy: lambda/mu pairs per unit (5 -> 15) */
#endif
#define WTAB 2048
#define NBLK 256             /* fixed blocks for the volume sums */
#define INVTAB 64            /* 1 / k from a table below this */

/* Every array of one smoothing comes from one block (an arena), sized
 * up front and given the hint for huge pages: the arrays (~25 MB for a
 * liver of 260 k triangles, ~80 MB for a vessel tree of 700 k) are fresh
 * pages, each faulted in once, and a page fault is dear on a virtual
 * machine (a 4 KiB fault cost ~10 us here: the liver's one-rings took 42
 * ms, most of it faulting in their 11 MB). Nothing in it is freed alone
 * but the one-rings' scratch, over which the flow's arrays are taken. */
typedef struct arena {
    char *base;
    size_t cap, used;
} arena;

#define ARENA_ALIGN 64
static size_t arena_round(size_t bytes)
{
    return (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
}

/* bytes from a (NULL when it is full: the sizes below are all counted) */
static void *take(arena *a, size_t bytes)
{
    if (a->used + arena_round(bytes) > a->cap)
        return NULL;
    void *p = a->base + a->used;
    a->used += arena_round(bytes);
    return p;
}

static void *take0(arena *a, size_t bytes)
{
    void *p = take(a, bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

/* One label's mesh in the flow. Its vertex v is group g[v]. The one-ring
 * of v is nb[rs[v] .. rs[v] + nn[v]): its unique neighbours, as groups.
 * When that is all of v's list (rs[v + 1] - rs[v] == nn[v]) they go round
 * v's fan in winding order, so the faces at v are (v, r_i, r_i+1) and one
 * sweep over the ring gives both the umbrella and the normal; otherwise
 * (a pinched or open fan, not seen from marching cubes but allowed) the
 * faces at v follow as pairs (b, c). */
typedef struct part {
    r3d_mesh *m;
    const int64_t *g;
    int ident;         /* g[v] == v for every v (one label alone): not read */
    int64_t *rs;       /* nv + 1 */
    uint32_t *nn;      /* nv: unique neighbours */
    uint32_t *nb;      /* groups */
    uint32_t *nb_own;  /* nb when malloc'ed apart (some ring does not close) */
    double *c;         /* isotropic: per vertex, the target umbrella curvature */
    double *ab;        /* 2 per vertex: this step without the pressure, and the
                        * factor from a move along the normal to one along the edge */
    double *un;        /* 3 per vertex: unit normal (volume offset only; in pos2) */
    uint8_t *ok;       /* the vertex moves this step */
    uint8_t *fixed;    /* isotropic: on a boundary edge or alone (Taubin keeps it) */
    double V0, delta;  /* the mask's volume; this step's pressure (mm) */
    double o[3];       /* origin of the volume sums */
    /* per block: volume, swept area, and the volume changes of the
     * curvature's step and of the momentum */
    double bv[NBLK], ba[NBLK], bs[NBLK], bm[NBLK];
} part;

/* Vertex v's group: the hot passes read no g when it is v (a vessel
 * tree's g is 2.8 MB of the ~29 MB each Taubin pass streams; the passes
 * are bound by memory) */
static inline int64_t grp_of(const part *p, int64_t v)
{
    return p->ident ? v : p->g[v];
}

/* What ring_pass stores per vertex besides the volume and swept area. */
enum { ST_STEP, ST_CURV, ST_NORMAL };

typedef struct flow {
    part *P;
    int np, cur, mode; /* parts; the one a pass works on; ST_* */
    int64_t ng;
    double *p0;        /* per group: inside centre (of its first label), 3 */
    uint8_t *dc;       /* per group: its edge, from p0 to the other centre, as dtab[dc] */
    double dtab[12][4]; /* the 12 edge vectors (3 axes x 2 senses x LPS/RAS), and |d|^-2 */
    double *t;         /* per group: position along the edge, 0 .. 1 */
    double *vel;       /* per group: the last step (momentum) */
    double *pos;       /* per group, 3 */
    double *acc;       /* per group: summed moves along the edge (several parts) */
    int32_t *k;        /* per group: how many labels moved it (several parts) */
    double *cg, *cg2;  /* isotropic: per group, target curvature (in pos2) */
    double *pos2;      /* isotropic: per group, 3: the Taubin copy's other buffer */
    double w;          /* isotropic: this Taubin pass's weight */
    /* exp(-r^2) for r^2 in 0..16, to 1e-5: per step of r^2, the line
     * through its ends (intercept wa, slope wb); step WTAB is 0 */
    double wa[WTAB + 1], wb[WTAB + 1];
    double inv[INVTAB]; /* 1 / k */
    double tau;        /* range of the edge-preserving average, mm */
    double smin;       /* smallest voxel spacing, mm */
    arena *A;          /* where every array comes from */
    double mom;        /* the flow's momentum */
} flow;

static int is_in(const r3d_volume *v, uint16_t label, int64_t i, int64_t j, int64_t k)
{
    if (i < 0 || j < 0 || k < 0 || i >= v->dim[0] || j >= v->dim[1] || k >= v->dim[2])
        return 0;
    int64_t n = (k * v->dim[1] + j) * v->dim[0] + i;
    if (v->scl_slope == 1 && v->scl_inter == 0) { /* the raw values are the labels */
        if (v->dtype == R3D_U16)
            return ((const uint16_t *)v->voxels)[n] == label;
        if (v->dtype == R3D_I16)
            return ((const int16_t *)v->voxels)[n] == (int)label;
        if (v->dtype == R3D_U8)
            return ((const uint8_t *)v->voxels)[n] == (int)label;
    }
    return r3d_volume_get(v, n) == label;
}

/* The mask's voxel count inside the index box lo..hi (inclusive), in
 * fixed blocks of its rows summed in order (integers, so any split gives
 * the same count; the blocks only let threads share it). */
typedef struct count_ctx {
    const r3d_volume *v;
    uint16_t label;
    int64_t lo[3], hi[3], rows, c[NBLK];
} count_ctx;

/* How many of the n values at p equal x, in runs of 32 that the compiler
 * turns into SIMD compares (the plain loop took 8 instructions a voxel:
 * 0.33 G of the lung vessels' smoothing). */
static int64_t count_u16(const uint16_t *p, int64_t n, uint16_t x)
{
    int64_t c = 0, i = 0;
    for (; i + 32 <= n; i += 32) {
        unsigned s = 0;
        for (int j = 0; j < 32; j++)
            s += p[i + j] == x;
        c += s;
    }
    for (; i < n; i++)
        c += p[i] == x;
    return c;
}

static void count_pass(void *ctx, int64_t b, int64_t e)
{
    count_ctx *x = ctx;
    const r3d_volume *v = x->v;
    uint16_t label = x->label;
    int raw = v->scl_slope == 1 && v->scl_inter == 0;
    int64_t nj = x->hi[1] - x->lo[1] + 1;
    for (int64_t k = b; k < e; k++) {
        int64_t c = 0;
        for (int64_t row = x->rows * k / NBLK; row < x->rows * (k + 1) / NBLK; row++) {
            int64_t j = x->lo[1] + row % nj, kk = x->lo[2] + row / nj;
            int64_t i0 = (kk * v->dim[1] + j) * v->dim[0] + x->lo[0];
            int64_t i1 = i0 + (x->hi[0] - x->lo[0] + 1);
            if (raw && v->dtype == R3D_U16) {
                c += count_u16((const uint16_t *)v->voxels + i0, i1 - i0, label);
            } else if (raw && v->dtype == R3D_I16) {
                /* an int16 equals label (0..65535) iff its bits do */
                if (label <= INT16_MAX)
                    c += count_u16((const uint16_t *)v->voxels + i0, i1 - i0, label);
            } else if (raw && v->dtype == R3D_U8) {
                const uint8_t *p = v->voxels;
                for (int64_t i = i0; i < i1; i++)
                    c += p[i] == (int)label;
            } else
                for (int64_t i = i0; i < i1; i++)
                    c += r3d_volume_get(v, i) == label;
        }
        x->c[k] = c;
    }
}

/* The index box of a mesh's vertices, per fixed block of them (min and
 * max are exact in any order). */
typedef struct box_ctx {
    const r3d_mesh *m;
    const double (*inv)[3];
    const double (*M)[4];
    double lo[NBLK][3], hi[NBLK][3];
} box_ctx;

static void box_pass(void *ctx, int64_t b, int64_t e)
{
    box_ctx *x = ctx;
    const r3d_mesh *m = x->m;
    double sg = m->frame == R3D_FRAME_RAS ? -1 : 1;
    for (int64_t k = b; k < e; k++) {
        double lo[3] = {HUGE_VAL, HUGE_VAL, HUGE_VAL}, hi[3] = {-HUGE_VAL, -HUGE_VAL, -HUGE_VAL};
        for (int64_t v = m->nv * k / NBLK; v < m->nv * (k + 1) / NBLK; v++) {
            double xx[3] = {sg * m->v[3 * v] - x->M[0][3], sg * m->v[3 * v + 1] - x->M[1][3],
                            m->v[3 * v + 2] - x->M[2][3]};
            for (int r = 0; r < 3; r++) {
                double q = x->inv[r][0] * xx[0] + x->inv[r][1] * xx[1] + x->inv[r][2] * xx[2];
                lo[r] = fmin(lo[r], q);
                hi[r] = fmax(hi[r], q);
            }
        }
        for (int r = 0; r < 3; r++) {
            x->lo[k][r] = lo[r];
            x->hi[k][r] = hi[r];
        }
    }
}

/* The label's voxel count. A closed surface from r3d_mesh_from_label
 * (closed at the volume border too) has a vertex half a voxel beyond
 * every label voxel along each axis, so the voxels all lie in the index
 * box of its vertices: only that box is read (a vessel tree's is half of
 * its 170 MB map, a liver's a third). -1 when out of memory. */
static int64_t count_label(const r3d_volume *v, uint16_t label, const r3d_mesh *m,
                           const double inv[3][3])
{
    struct both {
        box_ctx b;
        count_ctx x;
    } *bx = malloc(sizeof *bx);
    if (!bx)
        return -1;
    box_ctx *b = &bx->b;
    count_ctx *x = &bx->x;
    int64_t c = 0;
    b->m = m;
    b->inv = inv;
    b->M = v->ijk_to_lps;
    r3d_parallel_for(NBLK, box_pass, b);
    double lo[3] = {HUGE_VAL, HUGE_VAL, HUGE_VAL}, hi[3] = {-HUGE_VAL, -HUGE_VAL, -HUGE_VAL};
    for (int k = 0; k < NBLK; k++)
        for (int r = 0; r < 3; r++) {
            lo[r] = fmin(lo[r], b->lo[k][r]);
            hi[r] = fmax(hi[r], b->hi[k][r]);
        }
    x->v = v;
    x->label = label;
    for (int r = 0; r < 3; r++) { /* a voxel of margin; the whole map if unsure */
        double l = floor(lo[r]) - 1, h = ceil(hi[r]) + 1;
        x->lo[r] = isfinite(l) && l > 0 ? (int64_t)l : 0;
        x->hi[r] = isfinite(h) && h < (double)v->dim[r] - 1 ? (int64_t)h : v->dim[r] - 1;
        if (!(lo[r] <= hi[r]) || x->hi[r] < x->lo[r]) { /* no vertex, not a number: all */
            x->lo[r] = 0;
            x->hi[r] = v->dim[r] - 1;
        }
    }
    x->rows = (x->hi[1] - x->lo[1] + 1) * (x->hi[2] - x->lo[2] + 1);
    r3d_parallel_for(NBLK, count_pass, x);
    for (int k = 0; k < NBLK; k++)
        c += x->c[k];
    free(bx);
    return c;
}

/* Clamp t to the edge, keeping off the voxel centres. */
static double clamp_t(double t)
{
    return t < FLOW_MARGIN ? FLOW_MARGIN : t > 1 - FLOW_MARGIN ? 1 - FLOW_MARGIN : t;
}

/* Group g moves by dt along its edge (plus momentum), its position into
 * pos. */
static inline void move_to(flow *f, int64_t g, double dt, double *pos)
{
    double t0 = f->t[g];
    double t = clamp_t(t0 + dt + f->mom * f->vel[g]);
    f->vel[g] = t - t0;
    f->t[g] = t;
    const double *d = f->dtab[f->dc[g]];
    for (int c = 0; c < 3; c++)
        pos[3 * g + c] = f->p0[3 * g + c] + t * d[c];
}

/* Two doubles in one register (GCC and Clang vector extension; scalar
 * code where there is no such register): x and y of a point. */
typedef double v2d __attribute__((vector_size(16)));

static v2d load2(const double *p)
{
    v2d v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The sums over a fan that closes (ring r of cnt around x): q = sum of
 * the edges e_i = r_i - x, n = sum of e_(i-1) x e_i; returns the sum of
 * |e_i|^2. x and y go together in one register: the cross product's x
 * and y parts are [a_y, a_z] [e_z, e_x] - [a_z, a_x] [e_y, e_z], its z
 * part the difference of a_xy [e_y, e_x]'s two lanes (~22 instead of ~38
 * instructions per neighbour; the flow's sweeps are most of its time). */
static inline __attribute__((always_inline)) double
sweep_fan(const double *pos, const uint32_t *r, int64_t cnt, const double *x, double q[3],
          double n[3], int want_rr)
{
    v2d xxy = load2(x), zero = {0, 0};
    double xz = x[2];
    const double *y = pos + 3 * (int64_t)r[cnt - 1];
    v2d axy = load2(y) - xxy;
    double az = y[2] - xz;
    v2d ayz = {axy[1], az}, azx = {az, axy[0]};
    v2d qxy = zero, rxy = zero, nxy = zero, nz2 = zero;
    double qz = 0, rz = 0;
    for (int64_t i = 0; i < cnt; i++) {
        y = pos + 3 * (int64_t)r[i];
        v2d exy = load2(y) - xxy;
        double ez = y[2] - xz;
        qxy += exy;
        qz += ez;
        if (want_rr) {
            rxy += exy * exy;
            rz += ez * ez;
        }
        v2d eyz = {exy[1], ez}, ezx = {ez, exy[0]}, eyx = {exy[1], exy[0]};
        nxy += ayz * ezx - azx * eyz;
        nz2 += axy * eyx;
        axy = exy;
        ayz = eyz;
        azx = ezx;
    }
    q[0] = qxy[0];
    q[1] = qxy[1];
    q[2] = qz;
    n[0] = nxy[0];
    n[1] = nxy[1];
    n[2] = nz2[0] - nz2[1];
    return rxy[0] + rxy[1] + rz;
}

/* sweep_fan with a point's x, y, z (and the next point's x, unused: pos
 * ends with a spare double) in one 4-wide vector (GCC's vector extension:
 * ymm registers where the function is built for AVX2). The cross product
 * is [a_y, a_z, a_x] [e_z, e_x, e_y] - [a_z, a_x, a_y] [e_y, e_z, e_x],
 * and each shuffle of e is the next neighbour's shuffle of a. The same
 * operations in the same order per component as sweep_fan (its z part too,
 * as two sums subtracted at the end), so the same bits. ~14 instead of
 * ~27 instructions per neighbour: lung vessels ring_pass 1.96 -> 1.44 G
 * (cachegrind). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(R3D_NO_AVX2)
#define SWEEP4 1
typedef double v4d __attribute__((vector_size(32)));
typedef double v4du __attribute__((vector_size(32), aligned(8), may_alias));
typedef long long v4i __attribute__((vector_size(32)));
#define load4(p) (*(const v4du *)(p))

static inline __attribute__((always_inline)) double
sweep_fan4(const double *pos, const uint32_t *r, int64_t cnt, const double *x, double q[3],
           double n[3], int want_rr)
{
    const v4i yzx = {1, 2, 0, 3}, zxy = {2, 0, 1, 3};
    v4d X = load4(x), zero = {0, 0, 0, 0};
    v4d A = load4(pos + 3 * (int64_t)r[cnt - 1]) - X;
    v4d A1 = __builtin_shuffle(A, yzx), A2 = __builtin_shuffle(A, zxy);
    v4d Q = zero, R = zero, D = zero, P = zero, N = zero;
    for (int64_t i = 0; i < cnt; i++) {
        v4d E = load4(pos + 3 * (int64_t)r[i]) - X;
        Q += E;
        if (want_rr)
            R += E * E;
        v4d E1 = __builtin_shuffle(E, zxy), E2 = __builtin_shuffle(E, yzx);
        v4d T1 = A1 * E1, T2 = A2 * E2;
        D += T1 - T2;
        P += T1;
        N += T2;
        A1 = E2;
        A2 = E1;
    }
    q[0] = Q[0];
    q[1] = Q[1];
    q[2] = Q[2];
    n[0] = D[0];
    n[1] = D[1];
    n[2] = P[2] - N[2];
    return R[0] + R[1] + R[2];
}
#endif

/* Block k of the current part's vertices, in one sweep over each one-ring:
 * the normal n (sum of the incident faces' cross products), the umbrella
 * L = mean(r) - x and the mean squared edge; the block's volume (the sum
 * of (x - o).n over the vertices is 3 x the sum of (a - o).n_f over the
 * faces, i.e. 18 x the volume) and the area the vertices sweep when pushed
 * along the normal but held to their edges (area x cos^2); and per vertex
 * what the mode asks for. */
static inline __attribute__((always_inline)) void ring_body(flow *f, int64_t b, int64_t e,
                                                            const int mode, const int iso,
                                                            const int wide)
{
    part *p = &f->P[f->cur];
    const double *pos = f->pos, *o = p->o;
    int64_t nv = p->m->nv;
    double ref = FLOW_EDGE2 * f->smin * f->smin;
#ifndef SWEEP4
    (void)wide; /* no 4-wide sweep with this compiler */
#endif
    for (int64_t kb = b; kb < e; kb++) {
        int64_t v0 = nv * kb / NBLK, v1 = nv * (kb + 1) / NBLK;
        double vol = 0, wa = 0, sv = 0, mv = 0;
        for (int64_t v = v0; v < v1; v++) {
            int64_t g = grp_of(p, v), s0 = p->rs[v], tot = p->rs[v + 1] - s0;
            const uint32_t *r = p->nb + s0;
            int64_t cnt = p->nn[v];
            const double *x = pos + 3 * g;
            double q[3] = {0, 0, 0}, n[3] = {0, 0, 0}, rr = 0;
            if (tot == cnt && cnt > 0) {
#ifdef SWEEP4
                if (wide)
                    rr = sweep_fan4(pos, r, cnt, x, q, n, mode == ST_STEP && !iso);
                else
#endif
                    rr = sweep_fan(pos, r, cnt, x, q, n, mode == ST_STEP && !iso);
            } else {
                for (int64_t i = 0; i < cnt; i++) {
                    const double *y = pos + 3 * (int64_t)r[i];
                    double e0 = y[0] - x[0], e1 = y[1] - x[1], e2 = y[2] - x[2];
                    q[0] += e0;
                    q[1] += e1;
                    q[2] += e2;
                    rr += e0 * e0 + e1 * e1 + e2 * e2;
                }
                for (int64_t i = cnt; i + 1 < tot; i += 2) {
                    const double *y = pos + 3 * (int64_t)r[i], *z = pos + 3 * (int64_t)r[i + 1];
                    double a0 = y[0] - x[0], a1 = y[1] - x[1], a2 = y[2] - x[2];
                    double e0 = z[0] - x[0], e1 = z[1] - x[1], e2 = z[2] - x[2];
                    n[0] += a1 * e2 - a2 * e1;
                    n[1] += a2 * e0 - a0 * e2;
                    n[2] += a0 * e1 - a1 * e0;
                }
            }
            /* one square root and no division per vertex: 1 / |n| once,
             * 1 / count from a table */
            double n2 = n[0] * n[0] + n[1] * n[1] + n[2] * n[2];
            vol += (x[0] - o[0]) * n[0] + (x[1] - o[1]) * n[1] + (x[2] - o[2]) * n[2];
            const double *d = f->dtab[f->dc[g]];
            double idd = d[3];
            double nd = n[0] * d[0] + n[1] * d[1] + n[2] * d[2];
            int good = cnt > 0 && n2 > 0;
            double il = n2 > 0 ? 1 / sqrt(n2) : 0;
            double ic = cnt < INVTAB ? f->inv[cnt] : 1 / (double)cnt;
            double wv = (nd * nd) * idd * il * (1.0 / 6);
            wa += wv;
            double uL = (n[0] * q[0] + n[1] * q[1] + n[2] * q[2]) * il * ic;
            if (mode == ST_CURV) {
                p->c[v] = good ? uL : 0;
            } else if (mode == ST_NORMAL) {
                for (int c = 0; c < 3; c++)
                    p->un[3 * v + c] = n[c] * il;
            } else {
                p->ok[v] = (uint8_t)good;
                double st = 0, ab1 = nd * il * idd;
                if (good && iso) {
                    st = FLOW_LAMBDA * (uL - p->c[v]);
                } else if (good) {
                    /* the umbrella's normal part is about H |e|^2 / 2: divided
                     * by the mean squared edge, so long edges across thick
                     * slices do not flatten the equator and sharpen the poles
                     * (at rest H, not the umbrella, is the same everywhere) */
                    double m2 = rr * ic, sc = m2 > ref ? ref / m2 : 1;
                    st = ANISO_LAMBDA * sc * uL;
                }
                if (good) {
                    sv += st * wv;
                    mv += f->vel[g] * nd * (1.0 / 6);
                }
                p->ab[2 * v] = st;
                p->ab[2 * v + 1] = ab1;
            }
        }
        p->bv[kb] = vol / 18;
        p->ba[kb] = wa;
        p->bs[kb] = sv;
        p->bm[kb] = mv;
    }
}

/* ring_body made once per mode (and per regime for the step), so each
 * leaves out what it does not use: the step on isotropic grids, 15 of the
 * 18 sweeps, has no squared edges (lung vessels 2.33 -> 2.0 G instructions,
 * cachegrind). */
#define RING_MODES(W)                                                                      \
    do {                                                                                   \
        if (f->mode == ST_STEP && f->P[f->cur].c)                                          \
            ring_body(f, b, e, ST_STEP, 1, W);                                             \
        else if (f->mode == ST_STEP)                                                       \
            ring_body(f, b, e, ST_STEP, 0, W);                                             \
        else if (f->mode == ST_CURV)                                                       \
            ring_body(f, b, e, ST_CURV, 0, W);                                             \
        else                                                                               \
            ring_body(f, b, e, ST_NORMAL, 0, W);                                           \
    } while (0)

static void ring_pass(void *ctx, int64_t b, int64_t e)
{
    flow *f = ctx;
    RING_MODES(0);
}

#ifdef SWEEP4
/* ring_pass for AVX2: sweep_fan4 in ymm registers (same bits) */
__attribute__((target("avx2"))) static void ring_pass_avx2(void *ctx, int64_t b, int64_t e)
{
    flow *f = ctx;
    RING_MODES(1);
}
#endif

static int wide_on = 1; /* r3d__smooth_wide */

int r3d__smooth_wide(int on)
{
    wide_on = on;
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && !defined(R3D_NO_AVX2)
    return __builtin_cpu_supports("avx2");
#else
    return 0;
#endif
}

/* ring_pass, or its AVX2 form where the processor has it */
static void (*ring_pass_for_cpu(void))(void *, int64_t, int64_t)
{
#ifdef SWEEP4
    if (wide_on && __builtin_cpu_supports("avx2"))
        return ring_pass_avx2;
#endif
    return ring_pass;
}

/* A part's sums over its vertices (ring_pass, in fixed blocks): the
 * volume, the area swept by a unit push along the normals, the volume
 * change of this step but its pressure, and of the moves made (ST_MOVE). */
typedef struct sums {
    double V, A, S, M;
} sums;

/* Part i's sums, and per vertex what mode asks for. */
static sums part_state(flow *f, int i, int mode)
{
    part *p = &f->P[i];
    f->cur = i;
    f->mode = mode;
    memcpy(p->o, f->pos + 3 * p->g[0], sizeof p->o);
    r3d_parallel_for(NBLK, ring_pass_for_cpu(), f);
    sums s = {0, 0, 0, 0};
    for (int k = 0; k < NBLK; k++) {
        s.M += p->bm[k];
        s.V += p->bv[k];
        s.A += p->ba[k];
        s.S += p->bs[k];
    }
    s.M *= f->mom;
    return s;
}

/* Building the one-rings: vertex v's face pairs are pr[2 ps[v] ..
 * 2 ps[v + 1]). A vertex whose k pairs close one cycle (all of them, on
 * a mesh from marching cubes) has a ring of k, written at ps[v] of a
 * dense array the size of the final one; if every vertex does, that array
 * is the ring list. Otherwise the list is laid out again by a prefix sum
 * of the lengths and the other vertices' rings are made once more there. */
typedef struct ring_ctx {
    part *p;
    const int64_t *ps;
    const uint32_t *pr;
    uint32_t *dense;   /* ps[nv]: the simple rings at ps[v] */
    int64_t maxk;
    atomic_int oom;
} ring_ctx;

/* Vertex v's ring into o (room for 4k), as vertex indices: the cycle
 * b0 c0=b1 c1=b2 ... back to b0 through distinct neighbours if its pairs
 * q close one (returns k), else its cnt unique neighbours followed by its
 * pairs (returns cnt + 2k). Sets nn[v] and fixed[v]. */
static int64_t one_ring(part *p, int64_t v, const uint32_t *q, int64_t k, uint32_t *o,
                        uint8_t *used)
{
    int simple = k >= 3;
    if (simple) {
        memset(used, 0, (size_t)k);
        used[0] = 1;
        o[0] = q[0];
        uint32_t cur = q[1];
        for (int64_t s = 1; s < k && simple; s++) {
            int64_t j = 0;
            while (j < k && (used[j] || q[2 * j] != cur))
                j++;
            if (j == k) {
                simple = 0;
                break;
            }
            for (int64_t i = 0; i < s; i++)
                if (o[i] == cur)
                    simple = 0;
            used[j] = 1;
            o[s] = cur;
            cur = q[2 * j + 1];
        }
        simple = simple && cur == q[0];
    }
    int64_t cnt = 0;
    p->fixed[v] = k == 0;
    if (simple)
        cnt = k;
    else {
        for (int64_t i = 0; i < 2 * k; i++) {
            int64_t j = 0;
            while (j < cnt && o[j] != q[i])
                j++;
            if (j == cnt)
                o[cnt++] = q[i];
        }
        /* a neighbour seen in one face only: v is on a boundary */
        for (int64_t j = 0; j < cnt; j++) {
            int64_t seen = 0;
            for (int64_t i = 0; i < 2 * k; i++)
                seen += q[i] == o[j];
            if (seen == 1)
                p->fixed[v] = 1;
        }
        memcpy(o + cnt, q, (size_t)(2 * k) * sizeof *q);
    }
    p->nn[v] = (uint32_t)cnt;
    return simple ? k : cnt + 2 * k;
}

/* One worker's scratch for one_ring (a flag per ring slot, the ordered
 * ring); 0, with x->oom set, when out of memory. */
static int ring_scratch(ring_ctx *x, uint8_t **used, uint32_t **o)
{
    *used = malloc((size_t)x->maxk + 1);
    *o = malloc(((size_t)x->maxk * 4 + 1) * sizeof **o);
    if (*used && *o)
        return 1;
    atomic_store(&x->oom, 1);
    free(*used);
    free(*o);
    return 0;
}

/* Vertices [b, e): the rings that close, as groups, at ps[v] of dense;
 * every vertex's ring length into rs[v + 1]. */
static void ring_build(void *ctx, int64_t b, int64_t e)
{
    ring_ctx *x = ctx;
    part *p = x->p;
    uint8_t *used;
    uint32_t *o;
    if (!ring_scratch(x, &used, &o))
        return;
    for (int64_t v = b; v < e; v++) {
        int64_t k = x->ps[v + 1] - x->ps[v];
        int64_t n = one_ring(p, v, x->pr + 2 * x->ps[v], k, o, used);
        p->rs[v + 1] = n;
        if (n == k && (int64_t)p->nn[v] == k)
            for (int64_t i = 0; i < k; i++)
                x->dense[x->ps[v] + i] = (uint32_t)p->g[o[i]];
    }
    free(used);
    free(o);
}

/* Vertices [b, e), when some ring does not close: each ring to its place
 * in nb (laid out by rs), from dense or made again. */
static void ring_place(void *ctx, int64_t b, int64_t e)
{
    ring_ctx *x = ctx;
    part *p = x->p;
    uint8_t *used;
    uint32_t *o;
    if (!ring_scratch(x, &used, &o))
        return;
    for (int64_t v = b; v < e; v++) {
        int64_t k = x->ps[v + 1] - x->ps[v], n = p->rs[v + 1] - p->rs[v];
        uint32_t *d = p->nb + p->rs[v];
        if (n == k && (int64_t)p->nn[v] == k)
            memcpy(d, x->dense + x->ps[v], (size_t)k * sizeof *d);
        else {
            one_ring(p, v, x->pr + 2 * x->ps[v], k, o, used);
            for (int64_t i = 0; i < n; i++)
                d[i] = (uint32_t)p->g[o[i]];
        }
    }
    free(used);
    free(o);
}

/* Arena bytes of part_rings' scratch (ps, pr), given back when it returns,
 * so the largest label's is all the arena needs. */
static size_t ring_scratch_bytes(size_t nv, size_t nt)
{
    return arena_round((nv + 2) * sizeof(int64_t)) + arena_round((nt * 6 + 1) * sizeof(uint32_t));
}

/* The one-rings of a part (see struct part), from its faces: each corner
 * of a face gives its vertex the pair (next, previous) (serial, a
 * counting sort); then each vertex's ring, in parallel. */
static r3d_status part_rings(part *p, arena *A, r3d_error *err)
{
    const r3d_mesh *m = p->m;
    int64_t nv = m->nv, nt = m->nt;
    uint32_t *dense = take(A, ((size_t)nt * 3 + 1) * sizeof *dense);
    p->rs = take(A, ((size_t)nv + 1) * sizeof *p->rs);
    p->nn = take(A, ((size_t)nv + 1) * sizeof *p->nn);
    p->fixed = take(A, (size_t)nv + 1);
    size_t mark = A->used; /* the scratch below is given back on return */
    int64_t *ps = take0(A, ((size_t)nv + 2) * sizeof *ps);
    uint32_t *pr = take(A, ((size_t)nt * 6 + 1) * sizeof *pr);
    if (!ps || !pr || !dense || !p->rs || !p->nn || !p->fixed)
        goto oom;
    for (int64_t i = 0; i < nt; i++) {
        const uint32_t *t = m->t + 3 * i;
        if (r3d__tri_valid(t, nv))
            for (int c = 0; c < 3; c++)
                ps[t[c] + 2]++;
    }
    int64_t maxk = 0;
    for (int64_t v = 0; v < nv; v++) {
        maxk = ps[v + 2] > maxk ? ps[v + 2] : maxk;
        ps[v + 2] += ps[v + 1];
    }
    for (int64_t i = 0; i < nt; i++) {
        const uint32_t *t = m->t + 3 * i;
        if (!r3d__tri_valid(t, nv))
            continue;
        for (int c = 0; c < 3; c++) {
            int64_t s = ps[t[c] + 1]++;
            pr[2 * s] = t[(c + 1) % 3];
            pr[2 * s + 1] = t[(c + 2) % 3];
        }
    }
    ring_ctx x = {p, ps, pr, dense, maxk, 0};
    atomic_init(&x.oom, 0);
    r3d_parallel_for(nv, ring_build, &x);
    if (atomic_load(&x.oom))
        goto oom;
    p->rs[0] = 0;
    for (int64_t v = 0; v < nv; v++)
        p->rs[v + 1] += p->rs[v];
    if (p->rs[nv] == ps[nv]) { /* every ring closed: rs is ps */
        p->nb = dense;
    } else {
        if (!(p->nb = p->nb_own = malloc(((size_t)p->rs[nv] + 1) * sizeof *p->nb)))
            goto oom;
        r3d_parallel_for(nv, ring_place, &x);
        if (atomic_load(&x.oom))
            goto oom;
    }
    A->used = mark;
    return R3D_OK;
oom:
    A->used = mark;
    return r3d_fail(err, R3D_ENOMEM, "mesh_smooth_label: out of memory for adjacency");
}

/* The pressure (mm along the normals) that brings part p to its mask's
 * volume after this step, to first order: z.S is what the step takes
 * without it. (Against the volume before the step only, as before, 25
 * steps left the hepatic vein on 5 mm slices -0.86 % of its voxels.) */
static double pressure(const part *p, sums z)
{
    return z.A > 0 ? (p->V0 - z.V - z.S - z.M) / z.A : 0;
}

/* One label alone (each group one vertex): the step of every vertex that
 * moves, straight into its group. No pass reads a neighbour here, so the
 * threads never meet. */
static void step_one(void *ctx, int64_t b, int64_t e)
{
    flow *f = ctx;
    part *p = &f->P[0];
    for (int64_t v = b; v < e; v++)
        if (p->ok[v])
            move_to(f, grp_of(p, v), (p->ab[2 * v] + p->delta) * p->ab[2 * v + 1], f->pos);
}

/* Several labels: the current part's moves, added to their groups (a group
 * occurs once per part, so the threads never write the same slot). */
static void move_pass(void *ctx, int64_t b, int64_t e)
{
    flow *f = ctx;
    part *p = &f->P[f->cur];
    for (int64_t v = b; v < e; v++) {
        if (!p->ok[v])
            continue;
        int64_t g = p->g[v];
        f->acc[g] += (p->ab[2 * v] + p->delta) * p->ab[2 * v + 1];
        f->k[g]++;
    }
}

static void update_pass(void *ctx, int64_t b, int64_t e)
{
    flow *f = ctx;
    for (int64_t g = b; g < e; g++) {
        if (f->k && f->k[g]) {
            move_to(f, g, f->acc[g] / f->k[g], f->pos);
            f->acc[g] = 0;
            f->k[g] = 0;
            continue;
        }
        const double *d = f->dtab[f->dc[g]];
        for (int c = 0; c < 3; c++)
            f->pos[3 * g + c] = f->p0[3 * g + c] + f->t[g] * d[c];
    }
}

typedef struct edge_ctx {
    flow *f;
    const r3d_volume *lab;
    uint16_t value;
    const double (*inv)[3];
    int part;
    atomic_int bad; /* some vertex is not on a boundary edge */
} edge_ctx;

/* Vertices [b, e) of one part whose group has no edge yet (an earlier
 * part's vertex may have given it one; within a part groups differ, so
 * the threads never meet). */
static void edge_pass(void *ctx, int64_t b, int64_t e)
{
    edge_ctx *x = ctx;
    flow *f = x->f;
    const r3d_volume *lab = x->lab;
    const double(*M)[4] = lab->ijk_to_lps;
    const double(*inv)[3] = x->inv;
    const r3d_mesh *m = f->P[x->part].m;
    const int64_t *gp = f->P[x->part].g;
    double sg = m->frame == R3D_FRAME_RAS ? -1 : 1;
    for (int64_t v = b; v < e; v++) {
        int64_t g = gp[v];
        if (f->t[g] >= 0)
            continue;
        double xx[3] = {sg * m->v[3 * v] - M[0][3], sg * m->v[3 * v + 1] - M[1][3],
                        m->v[3 * v + 2] - M[2][3]};
        double ijk[3];
        for (int r = 0; r < 3; r++)
            ijk[r] = inv[r][0] * xx[0] + inv[r][1] * xx[1] + inv[r][2] * xx[2];
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
        int in0 = is_in(lab, x->value, q0[0], q0[1], q0[2]);
        int in1 = is_in(lab, x->value, q1[0], q1[1], q1[2]);
        if (best > 0.01 || in0 == in1) {
            atomic_store(&x->bad, 1);
            continue;
        }
        const int64_t *pi = in0 ? q0 : q1;
        for (int r = 0; r < 3; r++) {
            double ci = M[r][0] * pi[0] + M[r][1] * pi[1] + M[r][2] * pi[2] + M[r][3];
            f->p0[3 * g + r] = (r < 2 ? sg : 1) * ci;
        }
        f->dc[g] = (uint8_t)(2 * a + in1 + 6 * (sg < 0));
        f->t[g] = 0.5;
    }
}

/* The grid edge of every group, from the first vertex that has it (parts
 * in order): p0 the centre of the voxel of that vertex's label, d to the
 * other centre. */
static r3d_status find_edges(flow *f, const r3d_volume *lab, const uint16_t *values,
                             const double inv[3][3], r3d_error *err)
{
    const double(*M)[4] = lab->ijk_to_lps;
    for (int c = 0; c < 12; c++) {
        int a = c % 6 / 2;
        double s = c % 2 ? -1 : 1, dd = 0; /* in1: the outside centre is at -1 */
        for (int r = 0; r < 3; r++) {
            f->dtab[c][r] = s * M[r][a] * (r < 2 && c >= 6 ? -1 : 1);
            dd += M[r][a] * M[r][a];
        }
        f->dtab[c][3] = 1 / dd;
    }
    for (int64_t g = 0; g < f->ng; g++)
        f->t[g] = -1;
    for (int i = 0; i < f->np; i++) {
        edge_ctx x = {f, lab, values[i], inv, i, 0};
        atomic_init(&x.bad, 0);
        r3d_parallel_for(f->P[i].m->nv, edge_pass, &x);
        if (atomic_load(&x.bad)) {
            int64_t v = 0; /* the first one, for the message */
            while (v < f->P[i].m->nv && f->t[f->P[i].g[v]] >= 0)
                v++;
            return r3d_fail(err, R3D_EARG,
                            "mesh_smooth_label: vertex %lld is not on a boundary edge of "
                            "label %u (the mesh must come unchanged from "
                            "r3d_mesh_from_label)",
                            (long long)v, (unsigned)values[i]);
        }
    }
    return R3D_OK;
}

/* x < lim ? x : lim, NaN -> lim, without a branch (GCC makes the ternary
 * one, taken or not as the rims come: unpredictable) */
static inline double min_or(double x, double lim)
{
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
    __asm__("minsd %1, %0" : "+x"(x) : "x"(lim));
    return x;
#else
    return x < lim ? x : lim;
#endif
}

/* Block of the current part's vertices: one pass of the edge-preserving
 * average of the target curvature, from cg into cg2 (per group). */
static void even_pass(void *ctx, int64_t b, int64_t e)
{
    flow *f = ctx;
    part *p = &f->P[f->cur];
    const double *cg = f->cg, *wa = f->wa, *wb = f->wb;
    double sx = WTAB / 16.0 / (f->tau * f->tau); /* (dc / tau)^2 in table steps */
    for (int64_t v = b; v < e; v++) {
        int64_t s0 = p->rs[v], cnt = p->nn[v];
        const uint32_t *r = p->nb + s0;
        int64_t gv = grp_of(p, v);
        double c0 = cg[gv], sum = c0, ws = 1;
        for (int64_t k = 0; k < cnt; k++) {
            /* exp(-(d / tau)^2) from the table; beyond its end (or not a
             * number) the step WTAB, whose line is 0: no branch, which
             * the rims made unpredictable */
            double cn = cg[r[k]], d = cn - c0;
            double x = min_or(d * d * sx, WTAB);
            int64_t ix = (int64_t)x;
            double w = wa[ix] + x * wb[ix];
            sum += w * cn;
            ws += w;
        }
        f->cg2[gv] = sum / ws;
    }
}

/* A fixed vertex, or one without neighbours, stays where it is (x copied
 * to o): 1; else 0. */
static inline int taubin_kept(const part *p, int64_t v, const double *x, double *o)
{
    if (!p->fixed[v] && p->nn[v] > 0)
        return 0;
    o[0] = x[0];
    o[1] = x[1];
    o[2] = x[2];
    return 1;
}

/* Block of the current part's vertices: one Jacobi pass of Taubin's
 * lambda/mu filter (on the one-rings at hand), pos into pos2. */
static void taubin_pass(void *ctx, int64_t b, int64_t e)
{
    flow *f = ctx;
    part *p = &f->P[f->cur];
    const double *src = f->pos;
    for (int64_t v = b; v < e; v++) {
        int64_t g = grp_of(p, v), cnt = p->nn[v];
        const double *x = src + 3 * g;
        double *o = f->pos2 + 3 * g;
        if (taubin_kept(p, v, x, o))
            continue;
        const uint32_t *r = p->nb + p->rs[v];
        v2d qxy = {0, 0};
        double qz = 0;
        for (int64_t i = 0; i < cnt; i++) {
            const double *y = src + 3 * (int64_t)r[i];
            qxy += load2(y);
            qz += y[2];
        }
        double ic = cnt < INVTAB ? f->inv[cnt] : 1 / (double)cnt; /* no division */
        o[0] = x[0] + f->w * (qxy[0] * ic - x[0]);
        o[1] = x[1] + f->w * (qxy[1] * ic - x[1]);
        o[2] = x[2] + f->w * (qz * ic - x[2]);
    }
}

/* The same pass with a point's x, y and z (and the next one's x, unused:
 * pos and pos2 end with a spare double) in one AVX2 register: one load
 * and one add per neighbour instead of four instructions. The same sums
 * in the same order, and no fused multiply-add, so the same bytes as
 * above (tests: meshbench's STL with and without -DR3D_NO_AVX2).
 * Lung vessels 1.06 -> 0.72 G instructions (cachegrind). */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && !defined(R3D_NO_AVX2)
#include <immintrin.h>
#define TAUBIN_AVX2 1
__attribute__((target("avx2"))) static void taubin_pass_avx2(void *ctx, int64_t b, int64_t e)
{
    flow *f = ctx;
    part *p = &f->P[f->cur];
    const double *src = f->pos;
    for (int64_t v = b; v < e; v++) {
        int64_t g = grp_of(p, v), cnt = p->nn[v];
        const double *x = src + 3 * g;
        double *o = f->pos2 + 3 * g;
        if (taubin_kept(p, v, x, o))
            continue;
        const uint32_t *r = p->nb + p->rs[v];
        __m256d q = _mm256_setzero_pd();
        for (int64_t i = 0; i < cnt; i++)
            q = _mm256_add_pd(q, _mm256_loadu_pd(src + 3 * (int64_t)r[i]));
        double qq[4];
        _mm256_storeu_pd(qq, q);
        double ic = cnt < INVTAB ? f->inv[cnt] : 1 / (double)cnt;
        o[0] = x[0] + f->w * (qq[0] * ic - x[0]);
        o[1] = x[1] + f->w * (qq[1] * ic - x[1]);
        o[2] = x[2] + f->w * (qq[2] * ic - x[2]);
    }
}
#endif

/* Block of the current part's vertices: its mesh into pos (the Taubin
 * copy's start); cg from p->c; cg back to p->c. */
static void copy_in(void *ctx, int64_t b, int64_t e)
{
    flow *f = ctx;
    part *p = &f->P[f->cur];
    for (int64_t v = b; v < e; v++)
        for (int c = 0; c < 3; c++)
            f->pos[3 * p->g[v] + c] = p->m->v[3 * v + c];
}

/* Block of the current part's vertices: the result into its mesh. */
static void copy_out(void *ctx, int64_t b, int64_t e)
{
    flow *f = ctx;
    part *p = &f->P[f->cur];
    for (int64_t v = b; v < e; v++)
        for (int c = 0; c < 3; c++)
            p->m->v[3 * v + c] = (float)f->pos[3 * p->g[v] + c];
}

static void target_in(void *ctx, int64_t b, int64_t e)
{
    flow *f = ctx;
    part *p = &f->P[f->cur];
    for (int64_t v = b; v < e; v++)
        f->cg[p->g[v]] = p->c[v];
}

static void target_out(void *ctx, int64_t b, int64_t e)
{
    flow *f = ctx;
    part *p = &f->P[f->cur];
    for (int64_t v = b; v < e; v++)
        p->c[v] = f->cg[p->g[v]];
}

/* Isotropic: the target curvature of part i, from a Taubin-smoothed copy
 * (lambda/mu at TAUBIN_PER_STRENGTH passes per unit, run here on the rings
 * already built), evened out along the surface (not across rims). Uses
 * pos and pos2 as scratch. (A single-precision copy was tried: no faster
 * - the pass is bound by its index gathers - and 0.12 mm off at one
 * vertex of the lung vessels.) */
static r3d_status part_target(flow *f, int i, double strength, r3d_error *err)
{
    part *p = &f->P[i];
    const r3d_mesh *m = p->m;
    p->c = take(f->A, (size_t)m->nv * sizeof *p->c + 1);
    if (!p->c)
        return r3d_fail(err, R3D_ENOMEM, "mesh_smooth_label: out of memory");
    f->cur = i;
    r3d_parallel_for(m->nv, copy_in, f);
    int iters = (int)(TAUBIN_PER_STRENGTH * strength + 0.5);
    void (*pass)(void *, int64_t, int64_t) = taubin_pass;
#ifdef TAUBIN_AVX2
    if (wide_on && __builtin_cpu_supports("avx2"))
        pass = taubin_pass_avx2;
#endif
    double mu = 1.0 / (TAUBIN_KPB - 1.0 / TAUBIN_LAMBDA);
    for (int it = 0; it < 2 * iters; it++) {
        f->w = it % 2 ? mu : TAUBIN_LAMBDA;
        r3d_parallel_for(m->nv, pass, f);
        double *tmp = f->pos;
        f->pos = f->pos2;
        f->pos2 = tmp;
    }
    part_state(f, i, ST_CURV);
    /* pos2 is free now (the passes came in pairs): the averaging's two
     * buffers are its first thirds */
    f->cg = f->pos2;
    f->cg2 = f->pos2 + f->ng;
    f->cur = i;
    r3d_parallel_for(m->nv, target_in, f);
    for (int rep = 0; rep < TARGET_PASSES; rep++) {
        r3d_parallel_for(m->nv, even_pass, f);
        double *tmp = f->cg;
        f->cg = f->cg2;
        f->cg2 = tmp;
    }
    r3d_parallel_for(m->nv, target_out, f);
    return R3D_OK;
}

/* Every part to its mask's volume by one uniform offset along its
 * normals (twice: the first is exact to first order), held to a quarter
 * voxel; a shared group moves by the average of its parts' offsets. */
static r3d_status offset_to_volume(flow *f, r3d_error *err)
{
    /* one label alone (each group one vertex): straight into pos */
    int one = f->np == 1 && f->ng == f->P[0].m->nv;
    double *mv = one ? NULL : calloc((size_t)f->ng * 3 + 1, sizeof *mv);
    int32_t *k = one ? NULL : calloc((size_t)f->ng + 1, sizeof *k);
    if (!one && (!mv || !k)) {
        free(mv);
        free(k);
        return r3d_fail(err, R3D_ENOMEM, "mesh_smooth_label: out of memory");
    }
    for (int rep = 0; rep < 2; rep++) {
        for (int i = 0; i < f->np; i++) {
            part *p = &f->P[i];
            if (!p->m->nt)
                continue;
            /* the normals go into pos2, scratch by now: a label's vertices
             * are distinct groups, so it is large enough for any one */
            p->un = f->pos2;
            sums z = part_state(f, i, ST_NORMAL);
            double delta = z.A > 0 ? (p->V0 - z.V) / z.A : 0;
            delta = fmax(-0.25 * f->smin, fmin(0.25 * f->smin, delta));
            for (int64_t v = 0; v < p->m->nv; v++) {
                const double *n = p->un + 3 * v;
                double *o = one ? f->pos + 3 * p->g[v] : mv + 3 * p->g[v];
                for (int c = 0; c < 3; c++)
                    o[c] += delta * n[c];
                if (!one)
                    k[p->g[v]]++;
            }
            p->un = NULL;
        }
        for (int64_t g = 0; !one && g < f->ng; g++) {
            for (int c = 0; c < 3; c++)
                if (k[g])
                    f->pos[3 * g + c] += mv[3 * g + c] / k[g];
            mv[3 * g] = mv[3 * g + 1] = mv[3 * g + 2] = 0;
            k[g] = 0;
        }
    }
    free(mv);
    free(k);
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
    f.mom = iso ? ISO_MOMENTUM : FLOW_MOMENTUM;
    f.inv[0] = 0;
    for (int k = 1; k < INVTAB; k++)
        f.inv[k] = 1 / (double)k;
    r3d_status st = R3D_OK;
    if (ng > (int64_t)UINT32_MAX)
        return r3d_fail(err, R3D_EUNSUPPORTED, "mesh_smooth_label: more than 2^32 - 1 vertices");
    /* one label alone: every group is one vertex, and a step goes straight
     * into it; several: the steps are averaged per group first */
    int one = n == 1 && ng == meshes[0]->nv;
    /* the arena: the one-rings, then every other array over the rings'
     * scratch (given back), counted as they are taken: the vessel tree
     * faults in 54 MB instead of 79 */
    size_t rings = 0, scratch = 0, rest = 0, sng = (size_t)ng;
    for (int i = 0; i < n; i++) {
        size_t nv = (size_t)meshes[i]->nv, nt = (size_t)meshes[i]->nt;
        size_t sb = ring_scratch_bytes(nv, nt);
        scratch = sb > scratch ? sb : scratch;
        rings += arena_round((nt * 3 + 1) * 4) + arena_round((nv + 1) * 8) +
                 arena_round((nv + 1) * 4) + arena_round(nv + 1); /* part_rings */
        rest += arena_round(nv * 2 * 8 + 1) + arena_round(nv + 1) +  /* ab, ok */
                (iso ? arena_round(nv * 8 + 1) : 0);                 /* c */
    }
    rest += arena_round(sng * 3 * 8 + 8) + arena_round(sng * 3 * 8 + 1) + arena_round(sng + 1) +
            2 * arena_round(sng * 8 + 1);
    if (!one)
        rest += arena_round(sng * 8 + 1) + arena_round(sng * 4 + 1);
    if (iso)
        rest += arena_round(sng * 3 * 8 + 8); /* pos2 (and the target's scratch) */
    size_t need = rings + (scratch > rest ? scratch : rest);
    arena A = {malloc(need + ARENA_ALIGN), need, 0};
    if (!A.base)
        return r3d_fail(err, R3D_ENOMEM, "mesh_smooth_label: out of memory for %zu bytes", need);
    /* start on a 64-byte line */
    A.used = arena_round((uintptr_t)A.base) - (uintptr_t)A.base;
    A.cap = need + A.used;
    r3d_advise_huge(A.base, A.cap);
    f.A = &A;
    f.P = calloc((size_t)n + 1, sizeof *f.P);
    if (!f.P)
        goto oom;
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        part *p = &f.P[i];
        p->m = meshes[i];
        p->g = grp + off;
        off += meshes[i]->nv;
        p->ident = 1;
        for (int64_t v = 0; v < meshes[i]->nv && p->ident; v++)
            p->ident = p->g[v] == v;
        if ((st = part_rings(p, &A, err)) != R3D_OK)
            goto out;
        int64_t cnt = meshes[i]->nt ? count_label(labels, values[i], meshes[i],
                                                  (const double(*)[3])inv)
                                    : 0;
        if (cnt < 0)
            goto oom;
        p->V0 = (double)cnt * fabs(det);
    }
    f.pos = take(&A, sng * 3 * 8 + 8); /* a spare double: taubin_pass_avx2 */
    f.p0 = take(&A, sng * 3 * 8 + 1);
    f.dc = take(&A, sng + 1);
    f.t = take(&A, sng * 8 + 1);
    f.vel = take0(&A, sng * 8 + 1);
    if (iso)
        f.pos2 = take(&A, sng * 3 * 8 + 8);
    if (!f.pos || !f.p0 || !f.dc || !f.t || !f.vel || (iso && !f.pos2))
        goto oom;
    if (!one) {
        f.acc = take0(&A, sng * 8 + 1);
        f.k = take0(&A, sng * 4 + 1);
        if (!f.acc || !f.k)
            goto oom;
    }
    for (int i = 0; i < n; i++) {
        part *p = &f.P[i];
        p->ab = take(&A, (size_t)meshes[i]->nv * 2 * sizeof *p->ab + 1);
        p->ok = take(&A, (size_t)meshes[i]->nv + 1);
        if (!p->ab || !p->ok)
            goto oom;
    }
    if ((st = find_edges(&f, labels, values, inv, err)) != R3D_OK)
        goto out;
    if (iso) {
        f.tau = TARGET_TAU * smin;
        for (int i = 0; i < WTAB; i++) {
            double w0 = exp(-16.0 * i / WTAB), w1 = exp(-16.0 * (i + 1) / WTAB);
            f.wa[i] = w0 - i * (w1 - w0);
            f.wb[i] = w1 - w0;
        }
        for (int i = 0; i < n; i++)
            if (meshes[i]->nt && (st = part_target(&f, i, strength, err)) != R3D_OK)
                goto out;
    }
    r3d_parallel_for(ng, update_pass, &f);
    int iters = (int)((iso ? ISO_PER_STRENGTH : FLOW_PER_STRENGTH) * strength + 0.5);
    for (int it = 0; it < iters; it++) {
        for (int i = 0; i < n; i++) {
            if (!meshes[i]->nt)
                continue;
            sums z = part_state(&f, i, ST_STEP);
            f.P[i].delta = pressure(&f.P[i], z);
        }
        if (one) {
            if (meshes[0]->nt)
                r3d_parallel_for(meshes[0]->nv, step_one, &f);
            continue;
        }
        for (int i = 0; i < n; i++) {
            if (!meshes[i]->nt)
                continue;
            f.cur = i;
            r3d_parallel_for(meshes[i]->nv, move_pass, &f);
        }
        r3d_parallel_for(ng, update_pass, &f);
    }
    if (iso && (st = offset_to_volume(&f, err)) != R3D_OK)
        goto out;
    for (int i = 0; i < n; i++) {
        f.cur = i;
        r3d_parallel_for(meshes[i]->nv, copy_out, &f);
    }
    goto out;
oom:
    st = r3d_fail(err, R3D_ENOMEM, "mesh_smooth_label: out of memory");
out:
    if (f.P)
        for (int i = 0; i < n; i++)
            free(f.P[i].nb_own);
    free(f.P);
    free(A.base);
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

/* extract.c - iso-surfaces of grey volumes and label maps: marching cubes
 * (Lorensen & Cline 1987) with a case table generated from face rules, so
 * it is consistent by construction instead of copied from a list.
 *
 * Case table. For each of the 256 corner configurations, every cube face is
 * walked counter-clockwise as seen from outside the cube; the walk "enters"
 * the object at one sign change and "exits" at the next, and each enter is
 * joined to the following exit by a segment. On an ambiguous face (two
 * diagonal corners inside) this separates the inside corners, i.e. the
 * object is taken 6-connected - the same decision from both cubes sharing
 * the face, because the rule depends on the face's four corners only and
 * the neighbour walks the face in the opposite direction. Every crossed cube
 * edge is then the end of one segment and the start of another, so the
 * segments close into loops; each loop becomes a triangle fan from a start
 * chosen so that no diagonal joins two points of one face (such a diagonal
 * could coincide with the neighbour's and make an edge of four triangles;
 * every one of the 256 cases has such a start, and test_mesh_extract
 * checks each case's surface for manifoldness). Hence
 * the surface is closed, every edge lies in exactly two triangles with
 * opposite directions, and its orientation is fixed once (from the
 * one-corner case) so that normals point away from the inside.
 *
 * Border: the volume is padded virtually by one outside voxel on every
 * side, so surfaces touching the border are capped half a voxel outside.
 *
 * Sharing and threads: a vertex lives on a crossed grid edge. Layer K (the
 * cubes between padded planes K and K+1) owns the x/y edges of plane K and
 * the z edges between K and K+1. Pass A (parallel over layers) lists each
 * layer's crossings (as edge keys) in scan order and its active cubes,
 * only between the first and last inside voxel of the rows at hand (as
 * flying edges trims its rows) and skipping eight agreeing inside flags at
 * a time, and for grey images where iso crosses each listed edge (its two
 * voxels are still in the cache then); a prefix sum gives every
 * layer its first vertex and triangle in the mesh; pass B (parallel) puts
 * the vertices there, builds per thread a map from edge to index for the
 * two planes at hand (in pass A's scratch memory) and writes the
 * triangles after them - nothing is copied. Outputs are
 * per layer at fixed offsets, so the mesh is bit-identical for any thread
 * count. Memory: lists linear in the surface (4 bytes per vertex, 8 more
 * for grey images, 8 per active cube; one set per thread's run of
 * layers), plus a few slice-sized buffers per thread - never per voxel of
 * the volume. The
 * large arrays are whole huge pages: writing fresh memory is most of
 * what the passes cost otherwise (a fault per 4 KiB page). Cost:
 * O(voxels) to classify, mostly a word at a time, O(surface) for the rest.
 *
 * Vertex placement: linear interpolation of the grey values along the edge;
 * for labels, of the 0/1 indicator, i.e. edge midpoints, and r3d_mesh_smooth_label
 * then recovers sub-voxel accuracy on curved surfaces. A Gaussian
 * pre-filter of the mask was measured against analytic phantoms at 0.7 mm
 * (distance to the true surface after Taubin strength 5, mean / p95 mm):
 * sphere r 20: none 0.045/0.125, sigma 0.5 voxel 0.042/0.115, 0.7 voxel
 * 0.039/0.100; torus: none 0.051/0.125, 0.7 voxel 0.039/0.100 - a small
 * gain - but a plate one voxel thick loses 21 % of its volume at sigma 0.5
 * voxel, 68 % at 0.7 and vanishes at 1.0, and volumes shrink 0.3-0.5 %.
 * Thin structures (vessel walls, airways, cortical bone) matter more here,
 * so labels are extracted unfiltered.
 * 4D volumes: the first frame (t = 0) is used.
 * Coordinates go through ijk_to_lps; when its 3x3 part has a negative
 * determinant (left-handed voxel axes) the winding is flipped so that
 * triangles stay counter-clockwise from outside in patient space.
 */
#include "r3d/mesh.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ---- case table ------------------------------------------------------------ */

/* Corner c of a cube: x = c & 1, y = (c >> 1) & 1, z = (c >> 2) & 1.
 * Edge e: axis a = e / 4, and the two other coordinates (in increasing axis
 * order) as bits of e % 4. Triangle entries are edges 0..11. */
typedef struct mc_case {
    uint8_t ntri;
    uint16_t used; /* the edges its triangles use, as bits */
    uint8_t tri[3 * 12];
} mc_case;

static int corner_bit(int c, int axis) { return (c >> axis) & 1; }

static int edge_between(int c0, int c1)
{
    int d = c0 ^ c1, a = d == 1 ? 0 : (d == 2 ? 1 : 2);
    int lo = c0 & c1;
    int o1 = a == 0 ? 1 : 0, o2 = a == 2 ? 1 : 2;
    return 4 * a + (corner_bit(lo, o1) | corner_bit(lo, o2) << 1);
}

/* Faces (axis * 2 + side) containing edge e, as a 6-bit mask. */
static int edge_faces(int e)
{
    int a = e / 4, r = e % 4;
    int o1 = a == 0 ? 1 : 0, o2 = a == 2 ? 1 : 2;
    return 1 << (o1 * 2 + (r & 1)) | 1 << (o2 * 2 + (r >> 1));
}

static void edge_mid(int e, double p[3])
{
    int a = e / 4, r = e % 4;
    int o1 = a == 0 ? 1 : 0, o2 = a == 2 ? 1 : 2;
    p[a] = 0.5;
    p[o1] = r & 1;
    p[o2] = r >> 1;
}

static void build_case(int cs, mc_case *out)
{
    int next[12];
    for (int e = 0; e < 12; e++)
        next[e] = -1;
    for (int a = 0; a < 3; a++) {
        int b = (a + 1) % 3, c = (a + 2) % 3;
        for (int s = 0; s < 2; s++) {
            /* (0,0),(1,0),(1,1),(0,1) in (b,c) is counter-clockwise about +a
             * because b x c = a; reversed on the -a side. */
            static const int uv[4][2] = {{0, 0}, {1, 0}, {1, 1}, {0, 1}};
            int q[4];
            for (int k = 0; k < 4; k++) {
                int kk = s ? k : 3 - k;
                q[k] = s << a | uv[kk][0] << b | uv[kk][1] << c;
            }
            int ce[4], enter[4], n = 0;
            for (int k = 0; k < 4; k++) {
                int i0 = (cs >> q[k]) & 1, i1 = (cs >> q[(k + 1) % 4]) & 1;
                if (i0 != i1) {
                    ce[n] = edge_between(q[k], q[(k + 1) % 4]);
                    enter[n] = !i0;
                    n++;
                }
            }
            for (int k = 0; k < n; k++)
                if (enter[k])
                    next[ce[k]] = ce[(k + 1) % n]; /* crossings alternate */
        }
    }
    memset(out, 0, sizeof *out);
    int seen[12] = {0};
    for (int e0 = 0; e0 < 12; e0++) {
        if (next[e0] < 0 || seen[e0])
            continue;
        int loop[12], n = 0;
        for (int e = e0; !seen[e]; e = next[e]) {
            seen[e] = 1;
            loop[n++] = e;
        }
        /* A fan from loop[s] is safe when none of its diagonals joins two
         * points of one face: only such a diagonal could also be drawn by
         * the neighbouring cube, making an edge of four triangles. */
        /* Of the safe starts, the lowest edge number: the complementary
         * case walks the same loop backwards and so picks the same start,
         * giving the same triangles reversed - where two labels touch,
         * both surfaces are then triangulated alike (ambiguous faces
         * aside, which each label resolves its own way). */
        int start = -1;
        for (int s = 0; s < n; s++) {
            int ok = 1;
            for (int i = 2; i <= n - 2; i++)
                if (edge_faces(loop[s]) & edge_faces(loop[(s + i) % n]))
                    ok = 0;
            if (ok && (start < 0 || loop[s] < loop[start]))
                start = s;
        }
        if (start < 0)
            start = 0; /* not reached: see the header */
        for (int i = 0; i < n; i++)
            out->used |= (uint16_t)(1u << loop[i]);
        for (int i = 1; i + 1 < n; i++) {
            uint8_t *t = out->tri + 3 * out->ntri++;
            t[0] = (uint8_t)loop[start];
            t[1] = (uint8_t)loop[(start + i) % n];
            t[2] = (uint8_t)loop[(start + i + 1) % n];
        }
    }
}

static void build_table(mc_case *tab)
{
    for (int cs = 0; cs < 256; cs++)
        build_case(cs, &tab[cs]);
    /* Orientation: in case 1 (corner 0 inside) the normal must point away
     * from corner 0, towards (1,1,1). Consistency carries it to all cases. */
    double p[3][3], u[3], w[3];
    for (int k = 0; k < 3; k++)
        edge_mid(tab[1].tri[k], p[k]);
    for (int k = 0; k < 3; k++) {
        u[k] = p[1][k] - p[0][k];
        w[k] = p[2][k] - p[0][k];
    }
    double nx = u[1] * w[2] - u[2] * w[1], ny = u[2] * w[0] - u[0] * w[2],
           nz = u[0] * w[1] - u[1] * w[0];
    if (nx + ny + nz < 0)
        for (int cs = 0; cs < 256; cs++)
            for (int t = 0; t < tab[cs].ntri; t++) {
                uint8_t x = tab[cs].tri[3 * t + 1];
                tab[cs].tri[3 * t + 1] = tab[cs].tri[3 * t + 2];
                tab[cs].tri[3 * t + 2] = x;
            }
}

/* ---- per-layer outputs -------------------------------------------------------- */

/* Pass A finds each layer's crossings and active cubes; then every layer
 * knows where its vertices and triangles go in the mesh (a prefix sum),
 * and pass B writes them there directly - no per-layer copies. A run of
 * layers (one chunk of r3d_parallel_for) appends to one pair of lists, so
 * a volume makes a few large allocations per thread, not two small
 * growing ones per layer. */
typedef struct lists {
    uint32_t *key;         /* edge keys (see layer.key) */
    int64_t nkey, capkey;
    uint32_t *act;         /* 2 words per active cube */
    int64_t nact, capact;  /* in cubes */
    double *t;             /* grey images: each key's crossing (see edge_t) */
    int64_t capt;
    void *scratch;         /* pass A's planes, then pass B's maps */
} lists;

typedef struct layer {
    const uint32_t *key; /* the grid edge of each vertex: x/y edges of plane K
                          * (2 n, 2 n + 1), then z edges (n); n = J * W + I */
    int64_t nv, nplane;
    const double *t;     /* grey images: the crossing along each key's edge */
    const uint32_t *act; /* active cubes: 2 per cube, (J * W + I), case */
    int64_t nact;
    int64_t nt;          /* triangles */
    int64_t vbase, tbase;
    int64_t chunk, koff, aoff; /* pass A's lists: x->ls[chunk], from these */
} layer;

/* How the inside flags of a plane are made, decided once per volume. */
typedef enum src_mode {
    SRC_NONE,   /* nothing is inside (a label the type cannot hold, or a
                 * threshold above every int16 value) */
    SRC_ALL,    /* every voxel is inside (int16 threshold at the bottom) */
    SRC_GE_I16, /* int16 image: raw >= thr16 */
    SRC_EQ_I16, /* label maps: raw == label */
    SRC_EQ_U16,
    SRC_EQ_U8,
    SRC_EQ_GET, /* label maps through r3d_volume_get (scaled or other types) */
    SRC_FLOAT   /* grey images: a float plane against iso */
} src_mode;

typedef struct ext {
    const r3d_volume *vol;
    int is_label;
    uint16_t label;
    double iso;
    int64_t nx, ny, nz, W, H; /* W = nx + 2, H = ny + 2 (padded) */
    double A[3][4];           /* ijk -> output frame */
    int flip;
    mc_case tab[256];
    int8_t esel[12];          /* pass B: edge e of a cube is map esel[e] */
    int32_t edel[12];         /* at the cube's index there plus edel[e] */
    layer *L;                 /* nz + 1 layers */
    lists *ls;                /* per layer; used at each chunk's first one */
    int64_t nchunks;
    atomic_int oom;
    r3d_mesh *m;              /* pass B's output */
    src_mode mode;
    /* int16 images (CT): inside is raw >= thr16, exactly when the float
     * path's (float)(raw * slope + inter) >= (float)iso; values are made
     * only where an edge is crossed, never a whole float plane */
    int32_t thr16;
    double sl, in;            /* scl_slope (0 meaning 1) and scl_inter */
} ext;

/* Large arrays (the mesh, pass A's lists and planes, pass B's maps):
 * whole 2 MiB pages, aligned, with the huge-page hint. They are written
 * once, and every new 4 KiB page costs a fault (on a virtual machine
 * several microseconds): on the chest CT (> 300 HU, one thread) the 4 KiB
 * pages were 7000 faults and two thirds of the 0.14 s extraction. A 2 MiB
 * page costs what 75-160 faults of 4 KiB do (first touch of 64 MiB on the
 * test VM: 2.2-4.7 GB/s in huge pages, 0.65 GB/s in small ones), so from
 * 256 KiB on an array takes one: the liver's vertices (1.6 MB) were 380
 * faults of a cold extraction's 560. *bytes grows to what was given. */
static void *alloc_big(size_t *bytes)
{
    const size_t huge = (size_t)2 << 20;
    if (*bytes < (size_t)256 << 10)
        return malloc(*bytes ? *bytes : 1);
    if (*bytes > SIZE_MAX - huge)
        return NULL;
    size_t r = (*bytes + huge - 1) & ~(huge - 1);
    void *p = aligned_alloc(huge, r);
    if (p) {
        r3d_advise_huge(p, r);
        *bytes = r;
    }
    return p;
}

/* *p (used elements of elem bytes in use) holds at least need. A list
 * starts small (a small surface stays cheap), then goes straight to a
 * huge page rather than through nine doublings of faulting 4 KiB pages,
 * then doubles. */
static int reserve(void *pp, int64_t *cap, int64_t used, int64_t need, size_t elem)
{
    void *p; /* *pp, a pointer to any type */
    memcpy(&p, pp, sizeof p);
    if (need <= *cap)
        return 1;
    int64_t c = *cap > 0 ? *cap : 4096;
    while (c < need)
        c *= 2;
    size_t bytes;
    if (!r3d_mul_size((size_t)c, elem, &bytes))
        return 0;
    if (*cap && bytes < (size_t)2 << 20)
        bytes = (size_t)2 << 20;
    void *n = alloc_big(&bytes);
    if (!n)
        return 0;
    if (used)
        memcpy(n, p, (size_t)used * elem);
    free(p);
    memcpy(pp, &n, sizeof n);
    *cap = (int64_t)(bytes / elem);
    return 1;
}

/* The grey value at padded (I, J, K), exactly as load_plane makes it (NaN
 * on the virtual border). Pass B reads only the two ends of each crossed
 * edge, so no plane of floats is ever made for it. */
static float grey_value(const ext *x, int64_t K, int64_t I, int64_t J)
{
    if (K < 1 || K > x->nz || I < 1 || I > x->nx || J < 1 || J > x->ny)
        return NAN;
    const r3d_volume *v = x->vol;
    int64_t i = ((K - 1) * x->ny + (J - 1)) * x->nx + (I - 1);
    double sl = x->sl, in = x->in;
    switch (v->dtype) {
    case R3D_I16:
        return (float)(((const int16_t *)v->voxels)[i] * sl + in);
    case R3D_U16:
        return (float)(((const uint16_t *)v->voxels)[i] * sl + in);
    case R3D_U8:
        return (float)(((const uint8_t *)v->voxels)[i] * sl + in);
    case R3D_F32:
        return (float)(((const float *)v->voxels)[i] * sl + in);
    default:
        return (float)r3d_volume_get(v, i);
    }
}

/* Sixteen inside flags at a time: fixed-length loops over restrict
 * pointers, which the compiler turns into vector compares. */
static void ge_i16x16(const int16_t *restrict p, uint8_t *restrict o, int16_t thr)
{
    for (int k = 0; k < 16; k++)
        o[k] = (uint8_t)(p[k] >= thr);
}

static void eq_i16x16(const int16_t *restrict p, uint8_t *restrict o, int16_t lab)
{
    for (int k = 0; k < 16; k++)
        o[k] = (uint8_t)(p[k] == lab);
}

static void eq_u16x16(const uint16_t *restrict p, uint8_t *restrict o, uint16_t lab)
{
    for (int k = 0; k < 16; k++)
        o[k] = (uint8_t)(p[k] == lab);
}

static void eq_u8x16(const uint8_t *restrict p, uint8_t *restrict o, uint8_t lab)
{
    for (int k = 0; k < 16; k++)
        o[k] = (uint8_t)(p[k] == lab);
}

/* Padded plane K (0 and nz+1 are outside) as floats, NaN meaning "outside,
 * place the vertex half-way": the virtual border voxels. */
static void load_plane(const ext *x, int64_t K, float *buf)
{
    int64_t W = x->W, H = x->H, nx = x->nx;
    for (int64_t n = 0; n < W * H; n++)
        buf[n] = NAN;
    if (K < 1 || K > x->nz)
        return;
    const r3d_volume *v = x->vol;
    int64_t base = (K - 1) * nx * x->ny;
    double sl = x->sl, in = x->in;
    for (int64_t j = 0; j < x->ny; j++) {
        float *o = buf + (j + 1) * W + 1;
        int64_t r = base + j * nx;
        switch (v->dtype) {
        case R3D_I16: {
            const int16_t *p = (const int16_t *)v->voxels + r;
            for (int64_t i = 0; i < nx; i++)
                o[i] = (float)(p[i] * sl + in);
            break;
        }
        case R3D_U16: {
            const uint16_t *p = (const uint16_t *)v->voxels + r;
            for (int64_t i = 0; i < nx; i++)
                o[i] = (float)(p[i] * sl + in);
            break;
        }
        case R3D_U8: {
            const uint8_t *p = (const uint8_t *)v->voxels + r;
            for (int64_t i = 0; i < nx; i++)
                o[i] = (float)(p[i] * sl + in);
            break;
        }
        case R3D_F32: {
            const float *p = (const float *)v->voxels + r;
            for (int64_t i = 0; i < nx; i++)
                o[i] = (float)(p[i] * sl + in);
            break;
        }
        default:
            for (int64_t i = 0; i < nx; i++)
                o[i] = (float)r3d_volume_get(v, r + i);
        }
    }
}

/* Inside flags of a float plane (row flags as in load_flags). */
static void classify(const float *f, float iso, int64_t W, int64_t H, uint8_t *in, uint8_t *row)
{
    for (int64_t J = 0; J < H; J++) {
        unsigned any = 0;
        for (int64_t I = 0; I < W; I++) {
            unsigned v = f[J * W + I] >= iso;
            in[J * W + I] = (uint8_t)v;
            any |= v;
        }
        row[J] = (uint8_t)any;
    }
}

/* Inside flags of padded plane K, and per row whether it may hold an
 * inside voxel (row_spans looks only there). Labels and int16 images are
 * compared raw, sixteen voxels at a time: the 0/1 indicator of a label
 * always crosses 0.5 half-way, and an int16 image's exact raw threshold
 * gives the float path's flags, so neither needs a plane of floats. */
static void load_flags(const ext *x, int64_t K, float *f, uint8_t *in, uint8_t *row)
{
    int64_t W = x->W, H = x->H, nx = x->nx;
    if (x->mode == SRC_FLOAT) {
        load_plane(x, K, f);
        classify(f, (float)x->iso, W, H, in, row);
        return;
    }
    memset(row, 0, (size_t)H);
    if (K < 1 || K > x->nz || x->mode == SRC_NONE) {
        memset(in, 0, (size_t)(W * H));
        return;
    }
    memset(in, 0, (size_t)W); /* the virtual border rows; columns below */
    memset(in + (H - 1) * W, 0, (size_t)W);
    const r3d_volume *v = x->vol;
    int64_t base = (K - 1) * nx * x->ny;
    for (int64_t j = 0; j < x->ny; j++) {
        uint8_t *o = in + (j + 1) * W + 1;
        int64_t r = base + j * nx, i = 0;
        o[-1] = 0;
        o[nx] = 0;
        row[j + 1] = 1; /* row_spans finds what is there */
        switch (x->mode) {
        case SRC_ALL:
            memset(o, 1, (size_t)nx);
            break;
        case SRC_GE_I16: {
            const int16_t *p = (const int16_t *)v->voxels + r;
            int16_t thr = (int16_t)x->thr16;
            for (; i + 16 <= nx; i += 16)
                ge_i16x16(p + i, o + i, thr);
            for (; i < nx; i++)
                o[i] = (uint8_t)(p[i] >= thr);
            break;
        }
        case SRC_EQ_I16: {
            const int16_t *p = (const int16_t *)v->voxels + r;
            int16_t lab = (int16_t)x->label;
            for (; i + 16 <= nx; i += 16)
                eq_i16x16(p + i, o + i, lab);
            for (; i < nx; i++)
                o[i] = (uint8_t)(p[i] == lab);
            break;
        }
        case SRC_EQ_U16: {
            const uint16_t *p = (const uint16_t *)v->voxels + r;
            uint16_t lab = x->label;
            for (; i + 16 <= nx; i += 16)
                eq_u16x16(p + i, o + i, lab);
            for (; i < nx; i++)
                o[i] = (uint8_t)(p[i] == lab);
            break;
        }
        case SRC_EQ_U8: {
            const uint8_t *p = (const uint8_t *)v->voxels + r;
            uint8_t lab = (uint8_t)x->label;
            for (; i + 16 <= nx; i += 16)
                eq_u8x16(p + i, o + i, lab);
            for (; i < nx; i++)
                o[i] = (uint8_t)(p[i] == lab);
            break;
        }
        default: { /* SRC_EQ_GET */
            unsigned any = 0;
            for (; i < nx; i++) {
                unsigned b = r3d_volume_get(v, r + i) == x->label;
                o[i] = (uint8_t)b;
                any |= b;
            }
            row[j + 1] = (uint8_t)any;
        }
        }
    }
}

/* Eight bytes from p, any alignment. */
static uint64_t ld8(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

/* Per row of a padded plane, the first and last inside column (lo > hi:
 * none): crossings and active cubes lie between them, or one column
 * before. Rows flagged all outside are not read. The border columns are
 * outside, so a span lies within 1 .. W - 2. */
static void row_spans(const uint8_t *in, const uint8_t *row, int64_t W, int64_t H, int32_t *lo,
                      int32_t *hi)
{
    for (int64_t J = 0; J < H; J++) {
        const uint8_t *a = in + J * W;
        int64_t l = W, h = -1;
        if (row[J]) {
            l = 0;
            while (l + 8 <= W && !ld8(a + l))
                l += 8;
            while (l < W && !a[l])
                l++;
            h = W - 1;
            while (h - 7 > l && !ld8(a + h - 7))
                h -= 8;
            while (h >= l && !a[h])
                h--;
        }
        lo[J] = (int32_t)l;
        hi[J] = (int32_t)h;
    }
}

/* The grid edge of layer K's key i: its axis and padded (I, J) (K is the
 * layer's). */
static void key_edge(const ext *x, const layer *l, int64_t i, int *axis, int64_t *I, int64_t *J)
{
    uint32_t key = l->key[i];
    int64_t n = i < l->nplane ? key >> 1 : key;
    *axis = i < l->nplane ? (int)(key & 1) : 2;
    *I = n % x->W;
    *J = n / x->W;
}

/* Where the grey values cross iso along the edge from padded (I, J, K)
 * along axis, as a fraction of the edge; half-way at the virtual border. */
static double edge_t(const ext *x, int64_t K, int axis, int64_t I, int64_t J)
{
    float fa = grey_value(x, K, I, J);
    float fb = grey_value(x, K + (axis == 2), I + (axis == 0), J + (axis == 1));
    if (isnan(fa) || isnan(fb))
        return 0.5;
    double t = (x->iso - fa) / ((double)fb - fa);
    /* Keep vertices off the grid points: a value exactly at iso would
     * otherwise put several vertices at one place (zero-area faces). */
    return t < 1e-3 ? 1e-3 : (t > 1 - 1e-3 ? 1 - 1e-3 : t);
}

/* Grey images: the crossing of each key of layer K that pass A just
 * listed, while planes K and K + 1 are still in the cache. Pass B made
 * them before, from voxels long evicted by then: the reads missed, and
 * grey_value was a fifth of the body outline's extraction. */
static int put_crossings(const ext *x, lists *ls, const layer *l, int64_t K)
{
    if (!reserve(&ls->t, &ls->capt, l->koff, ls->nkey, sizeof *ls->t))
        return 0;
    layer at = *l; /* its keys, from the chunk's list as it is now */
    at.key = ls->key + l->koff;
    double *t = ls->t + l->koff;
    for (int64_t i = 0; i < ls->nkey - l->koff; i++) {
        int axis;
        int64_t I, J;
        key_edge(x, &at, i, &axis, &I, &J);
        t[i] = edge_t(x, K, axis, I, J);
    }
    return 1;
}

/* A chunk's scratch: pass A's float plane (grey images), row spans of two
 * planes, two planes of inside flags and row flags; then pass B's maps of
 * the same layers (see pass_b), in the same memory - whose first pages
 * pass A has already faulted in: one 2 MiB page fewer to clear per chunk
 * (of 3 for pass B's maps of a 512 x 512 slice). */
static size_t scratch_bytes(const ext *x)
{
    size_t WH = (size_t)(x->W * x->H), fb = x->mode == SRC_FLOAT ? WH * sizeof(float) : 0;
    size_t a = fb + (size_t)(4 * x->H) * sizeof(int32_t) + 2 * WH + (size_t)x->H;
    size_t b = 5 * WH * sizeof(uint32_t);
    return a > b ? a : b;
}

/* Pass A over layers [b, e): crossings and active cubes, appended to the
 * chunk's lists x->ls[b]. Runs of eight bytes of inside flags that agree
 * (no crossing, no active cube) are skipped a word at a time: most of a
 * volume is far from the surface. Each row first makes room for all it
 * could add, so the inner loops store every candidate and advance by the
 * test (no branch on the data). */
static void pass_a(void *ctx, int64_t b, int64_t e)
{
    ext *x = ctx;
    int64_t W = x->W, H = x->H, WH = W * H;
    lists *ls = &x->ls[b];
    size_t fb = x->mode == SRC_FLOAT ? (size_t)WH * sizeof(float) : 0;
    size_t nb = scratch_bytes(x);
    char *buf = ls->scratch = alloc_big(&nb);
    if (!buf) {
        atomic_store(&x->oom, 1);
        return;
    }
    float *f = (float *)buf;
    int32_t *sp = (int32_t *)(buf + fb);
    uint8_t *in0 = (uint8_t *)(sp + 4 * H), *in1 = in0 + WH, *row = in1 + WH;
    int32_t *lo0 = sp, *hi0 = sp + H, *lo1 = sp + 2 * H, *hi1 = sp + 3 * H;
    const uint64_t ones = 0x0101010101010101ull;
    uint8_t ntri[256];
    for (int c = 0; c < 256; c++)
        ntri[c] = x->tab[c].ntri; /* 0 exactly for cases 0 and 255 */
    for (int64_t K = b - 1; K < e; K++) {
        uint8_t *ti = in0;
        in0 = in1;
        in1 = ti;
        int32_t *t0 = lo0, *t1 = hi0;
        lo0 = lo1;
        hi0 = hi1;
        lo1 = t0;
        hi1 = t1;
        load_flags(x, K + 1, f, in1, row);
        row_spans(in1, row, W, H, lo1, hi1);
        if (K < b)
            continue;
        layer *l = &x->L[K];
        l->chunk = b;
        l->koff = ls->nkey;
        l->aoff = ls->nact;
        /* x/y edges of plane K: in rows J and J + 1's span, or one before */
        for (int64_t J = 0; J + 1 < H; J++) {
            int64_t s0 = lo0[J] < lo0[J + 1] ? lo0[J] : lo0[J + 1];
            int64_t s1 = hi0[J] > hi0[J + 1] ? hi0[J] : hi0[J + 1];
            if (s1 < s0)
                continue;
            int64_t i0 = s0 - 1; /* s0 >= 1, s1 <= W - 2 */
            if (!reserve(&ls->key, &ls->capkey, ls->nkey, ls->nkey + 2 * (s1 - i0 + 1),
                         sizeof *ls->key))
                goto oom;
            uint32_t *kp = ls->key;
            int64_t nk = ls->nkey;
            const uint8_t *a = in0 + J * W;
            for (int64_t I0 = i0; I0 <= s1; I0 += 8) {
                int64_t I1 = I0 + 8 <= s1 + 1 ? I0 + 8 : s1 + 1;
                if (I0 + 9 <= W) {
                    uint64_t w = ld8(a + I0);
                    if (w == ld8(a + I0 + 1) && w == ld8(a + I0 + W))
                        continue;
                }
                for (int64_t I = I0; I < I1; I++) {
                    uint32_t n2 = (uint32_t)(2 * (J * W + I));
                    kp[nk] = n2;
                    nk += a[I] != a[I + 1];
                    kp[nk] = n2 + 1;
                    nk += a[I] != a[I + W];
                }
            }
            ls->nkey = nk;
        }
        l->nplane = ls->nkey - l->koff;
        /* z edges between K and K+1, and the cubes' cases: in the span of
         * rows J and J + 1 of both planes, or one before (the last row is
         * the virtual border: nothing) */
        int64_t nt = 0;
        for (int64_t J = 0; J + 1 < H; J++) {
            int64_t s0 = lo0[J], s1 = hi0[J];
            s0 = lo0[J + 1] < s0 ? lo0[J + 1] : s0;
            s0 = lo1[J] < s0 ? lo1[J] : s0;
            s0 = lo1[J + 1] < s0 ? lo1[J + 1] : s0;
            s1 = hi0[J + 1] > s1 ? hi0[J + 1] : s1;
            s1 = hi1[J] > s1 ? hi1[J] : s1;
            s1 = hi1[J + 1] > s1 ? hi1[J + 1] : s1;
            if (s1 < s0)
                continue;
            int64_t i0 = s0 - 1;
            if (!reserve(&ls->key, &ls->capkey, ls->nkey, ls->nkey + (s1 - i0 + 1),
                         sizeof *ls->key) ||
                !reserve(&ls->act, &ls->capact, ls->nact, ls->nact + (s1 - i0 + 1),
                         2 * sizeof *ls->act))
                goto oom;
            uint32_t *kp = ls->key, *ap = ls->act;
            int64_t nk = ls->nkey, na = ls->nact;
            const uint8_t *a0 = in0 + J * W, *a1 = in1 + J * W;
            for (int64_t I0 = i0; I0 <= s1; I0 += 8) {
                int64_t I1 = I0 + 8 <= s1 + 1 ? I0 + 8 : s1 + 1;
                if (I0 + 9 <= W) {
                    uint64_t p0 = ld8(a0 + I0), p1 = ld8(a0 + I0 + 1), p2 = ld8(a0 + I0 + W),
                             p3 = ld8(a0 + I0 + W + 1), p4 = ld8(a1 + I0), p5 = ld8(a1 + I0 + 1),
                             p6 = ld8(a1 + I0 + W), p7 = ld8(a1 + I0 + W + 1);
                    uint64_t o = p0 | p1 | p2 | p3 | p4 | p5 | p6 | p7;
                    uint64_t c = p0 & p1 & p2 & p3 & p4 & p5 & p6 & p7;
                    if (o == 0 || c == ones)
                        continue;
                }
                /* a cube's x-side corners are the last one's x+1 side */
                unsigned lo = a0[I0] | a0[I0 + W] << 2 | a1[I0] << 4 | a1[I0 + W] << 6;
                for (int64_t I = I0; I < I1; I++) {
                    uint32_t n = (uint32_t)(J * W + I);
                    kp[nk] = n;
                    nk += ((lo >> 4) ^ lo) & 1; /* in0[n] != in1[n] */
                    unsigned hi = a0[I + 1] << 1 | a0[I + W + 1] << 3 | a1[I + 1] << 5 |
                                  a1[I + W + 1] << 7;
                    unsigned cs = lo | hi;
                    lo = hi >> 1;
                    ap[2 * na] = n;
                    ap[2 * na + 1] = cs;
                    na += ntri[cs] != 0;
                    nt += ntri[cs];
                }
            }
            ls->nkey = nk;
            ls->nact = na;
        }
        l->nv = ls->nkey - l->koff;
        l->nact = ls->nact - l->aoff;
        l->nt = nt;
        if (!x->is_label && !put_crossings(x, ls, l, K))
            goto oom;
    }
    return;
oom:
    atomic_store(&x->oom, 1);
}

/* Layer K's vertices, into the mesh at its vbase: the crossing of each
 * key's grid edge (padded ijk), by linear interpolation of the grey
 * values (pass A's put_crossings), or half-way for labels. */
static void put_vertices(const ext *x, const layer *l, int64_t K, float *out)
{
    for (int64_t i = 0; i < l->nv; i++) {
        int axis;
        int64_t I, J;
        key_edge(x, l, i, &axis, &I, &J);
        double p[3] = {(double)I - 1, (double)J - 1, (double)K - 1};
        p[axis] += x->is_label ? 0.5 : l->t[i];
        float *o = out + 3 * i;
        for (int r = 0; r < 3; r++)
            o[r] = (float)(x->A[r][0] * p[0] + x->A[r][1] * p[1] + x->A[r][2] * p[2] +
                           x->A[r][3]);
    }
}

/* Pass B over layers [b, e): vertices and triangles, straight into the
 * mesh. A cube's edge e is a vertex index in map esel[e] (x/y edges of
 * its lower and upper plane, z edges) at the cube's place there plus
 * edel[e]. */
static void pass_b(void *ctx, int64_t b, int64_t e)
{
    ext *x = ctx;
    r3d_mesh *m = x->m;
    int64_t W = x->W, H = x->H;
    /* Only crossed edges are ever looked up, and those are always set for
     * the layer at hand, so the maps need no clearing between layers. */
    uint32_t *maps = x->ls[b].scratch; /* pass A's, for the same layers */
    uint32_t *m0 = maps, *m1 = maps + 2 * W * H, *mz = maps + 4 * W * H;
    int f1 = x->flip ? 2 : 1, f2 = x->flip ? 1 : 2;
    for (int64_t K = b; K < e; K++) {
        layer *l = &x->L[K];
        if (l->nv) /* the mesh has no arrays at all when it is empty */
            put_vertices(x, l, K, m->v + 3 * l->vbase);
        if (K == b)
            for (int64_t i = 0; i < l->nplane; i++)
                m0[l->key[i]] = (uint32_t)(l->vbase + i);
        else {
            uint32_t *tm = m0;
            m0 = m1;
            m1 = tm;
        }
        for (int64_t i = l->nplane; i < l->nv; i++)
            mz[l->key[i]] = (uint32_t)(l->vbase + i);
        if (K + 1 <= x->nz) {
            layer *u = &x->L[K + 1];
            for (int64_t i = 0; i < u->nplane; i++)
                m1[u->key[i]] = (uint32_t)(u->vbase + i);
        }
        uint32_t *o = l->nact ? m->t + 3 * l->tbase : NULL;
        for (int64_t c = 0; c < l->nact; c++) {
            int64_t n = l->act[2 * c];
            const mc_case *mc = &x->tab[l->act[2 * c + 1]];
            const uint32_t *P[3] = {m0 + 2 * n, m1 + 2 * n, mz + n};
            for (int t = 0; t < mc->ntri; t++, o += 3) {
                int e0 = mc->tri[3 * t], e1 = mc->tri[3 * t + f1], e2 = mc->tri[3 * t + f2];
                o[0] = P[x->esel[e0]][x->edel[e0]];
                o[1] = P[x->esel[e1]][x->edel[e1]];
                o[2] = P[x->esel[e2]][x->edel[e2]];
            }
        }
    }
}

/* r3d_parallel_for makes one chunk per worker; handing it x->nchunks items,
 * each a run of whole layers, caps the workers at the caller's o->threads.
 * Results are per layer, so the split never changes the output. */
typedef struct chunk_wrap {
    r3d_range_fn fn;
    void *ctx;
    int64_t n, k;
} chunk_wrap;

static void run_chunk(void *ctx, int64_t b, int64_t e)
{
    chunk_wrap *w = ctx;
    for (int64_t c = b; c < e; c++)
        w->fn(w->ctx, w->n * c / w->k, w->n * (c + 1) / w->k);
}

static void run_chunks(ext *x, r3d_range_fn fn, void *ctx)
{
    int64_t n = x->nz + 1;
    chunk_wrap w = {fn, ctx, n, x->nchunks < n ? x->nchunks : n};
    r3d_parallel_for(w.k, run_chunk, &w);
}

/* Where pass B finds a cube's edge e (see pass_b). */
static void edge_maps(ext *x)
{
    for (int ee = 0; ee < 12; ee++) {
        int a = ee / 4, u = ee & 1, w = (ee >> 1) & 1;
        if (a == 0) { /* x edge at y + u, z + w */
            x->esel[ee] = (int8_t)w;
            x->edel[ee] = (int32_t)(2 * u * x->W);
        } else if (a == 1) { /* y edge at x + u, z + w */
            x->esel[ee] = (int8_t)w;
            x->edel[ee] = 2 * u + 1;
        } else { /* z edge at x + u, y + w */
            x->esel[ee] = 2;
            x->edel[ee] = (int32_t)(u + w * x->W);
        }
    }
}

static r3d_mesh *extract(ext *x, const r3d_extract_opts *o, const char *what, r3d_error *err)
{
    const r3d_volume *v = x->vol;
    r3d_mesh *m = NULL;
    if (!v || !v->voxels || v->dim[0] < 1 || v->dim[1] < 1 || v->dim[2] < 1) {
        r3d_fail(err, R3D_EARG, "%s: empty volume", what);
        return NULL;
    }
    x->nx = v->dim[0];
    x->ny = v->dim[1];
    x->nz = v->dim[2];
    x->W = x->nx + 2;
    x->H = x->ny + 2;
    /* Edge keys are 2 * W * H + 1 at most and must fit in 32 bits. */
    if (x->W > (int64_t)1 << 20 || x->H > (int64_t)1 << 20 || 2 * x->W * x->H >= (int64_t)UINT32_MAX) {
        r3d_fail(err, R3D_EUNSUPPORTED, "%s: slices of %lld x %lld voxels are too large", what,
                 (long long)x->nx, (long long)x->ny);
        return NULL;
    }
    r3d_frame frame = o ? o->frame : R3D_FRAME_LPS;
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++)
            x->A[r][c] = v->ijk_to_lps[r][c] * (frame == R3D_FRAME_RAS && r < 2 ? -1 : 1);
    const double(*M)[4] = v->ijk_to_lps;
    double det = M[0][0] * (M[1][1] * M[2][2] - M[1][2] * M[2][1]) -
                 M[0][1] * (M[1][0] * M[2][2] - M[1][2] * M[2][0]) +
                 M[0][2] * (M[1][0] * M[2][1] - M[1][1] * M[2][0]);
    if (!(det != 0) || !isfinite(det)) {
        r3d_fail(err, R3D_EARG, "%s: the voxel-to-patient matrix is singular", what);
        return NULL;
    }
    x->flip = det < 0;
    x->sl = v->scl_slope == 0 ? 1 : v->scl_slope;
    x->in = v->scl_inter;
    build_table(x->tab);
    edge_maps(x);
    int threads = o && o->threads > 0 ? o->threads : r3d_threads();
    x->nchunks = threads;
    atomic_init(&x->oom, 0);
    int64_t nl = x->nz + 1;
    x->L = calloc((size_t)nl, sizeof *x->L);
    x->ls = calloc((size_t)nl, sizeof *x->ls);
    if (!x->L || !x->ls)
        goto oom;
    run_chunks(x, pass_a, x);
    if (atomic_load(&x->oom))
        goto oom;
    int64_t nreg = 0, nt = 0;
    for (int64_t K = 0; K < nl; K++) {
        layer *l = &x->L[K];
        const lists *s = &x->ls[l->chunk];
        l->key = l->nv ? s->key + l->koff : NULL;
        l->t = l->nv && s->t ? s->t + l->koff : NULL;
        l->act = l->nact ? s->act + 2 * l->aoff : NULL;
        l->vbase = nreg;
        nreg += l->nv;
        l->tbase = nt;
        nt += l->nt;
    }
    if (nreg > (int64_t)UINT32_MAX) {
        r3d_fail(err, R3D_EUNSUPPORTED, "%s: the surface has more than 2^32 - 1 vertices", what);
        goto fail;
    }
    m = r3d_mesh_new(err);
    if (!m)
        goto fail;
    m->frame = frame;
    /* the mesh's arrays, exactly filled by pass B (an empty mesh has none) */
    if (nreg) {
        size_t bv = (size_t)nreg * 3 * sizeof *m->v, bt;
        if (!r3d_mul_size((size_t)nt, 3 * sizeof *m->t, &bt))
            goto oom;
        m->v = alloc_big(&bv);
        m->t = alloc_big(&bt);
        if (!m->v || !m->t)
            goto oom;
        m->cap_v = (int64_t)(bv / (3 * sizeof *m->v));
        m->cap_t = (int64_t)(bt / (3 * sizeof *m->t));
    }
    x->m = m;
    run_chunks(x, pass_b, x);
    if (atomic_load(&x->oom))
        goto oom;
    m->nv = nreg;
    m->nt = nt;
    goto out;
oom:
    r3d_fail(err, R3D_ENOMEM, "%s: out of memory", what);
fail:
    r3d_mesh_free(m);
    m = NULL;
out:
    if (x->ls)
        for (int64_t K = 0; K < nl; K++) {
            free(x->ls[K].key);
            free(x->ls[K].act);
            free(x->ls[K].t);
            free(x->ls[K].scratch);
        }
    free(x->ls);
    free(x->L);
    return m;
}

r3d_mesh *r3d_mesh_from_image(const r3d_volume *v, const r3d_extract_opts *o, r3d_error *err)
{
    ext *x = calloc(1, sizeof *x);
    if (!x) {
        r3d_fail(err, R3D_ENOMEM, "mesh_from_image: out of memory");
        return NULL;
    }
    x->vol = v;
    x->iso = o ? o->iso : 0.5;
    x->mode = SRC_FLOAT;
    r3d_mesh *m = NULL;
    if (!isfinite(x->iso))
        r3d_fail(err, R3D_EARG, "mesh_from_image: iso value is not a finite number");
    else if (v && v->dtype == R3D_RGB24)
        r3d_fail(err, R3D_EUNSUPPORTED, "mesh_from_image: colour volumes have no grey level");
    else {
        if (v && v->voxels && v->dtype == R3D_I16 && v->scl_slope > 0 &&
            isfinite(v->scl_slope) && isfinite(v->scl_inter)) {
            /* the smallest raw value the float path calls inside */
            double sl = v->scl_slope, in = v->scl_inter;
            float iso = (float)x->iso;
            double t = ceil((x->iso - in) / sl) - 2;
            if (t < -32769)
                t = -32769;
            if (t > 32768)
                t = 32768;
            int32_t r = (int32_t)t;
            while (r <= 32767 && !((float)(r * sl + in) >= iso))
                r++;
            while (r > -32768 && (float)((r - 1) * sl + in) >= iso)
                r--;
            x->thr16 = r;
            x->mode = r > INT16_MAX ? SRC_NONE : (r <= INT16_MIN ? SRC_ALL : SRC_GE_I16);
        }
        m = extract(x, o, "mesh_from_image", err);
    }
    free(x);
    return m;
}

r3d_mesh *r3d_mesh_from_label(const r3d_volume *labels, uint16_t label,
                              const r3d_extract_opts *o, r3d_error *err)
{
    ext *x = calloc(1, sizeof *x);
    if (!x) {
        r3d_fail(err, R3D_ENOMEM, "mesh_from_label: out of memory");
        return NULL;
    }
    x->vol = labels;
    x->is_label = 1;
    x->label = label;
    x->iso = 0.5;
    r3d_mesh *m = NULL;
    if (labels && (labels->dtype == R3D_F32 || labels->dtype == R3D_F64 ||
                   labels->dtype == R3D_RGB24 || labels->dtype == R3D_DT_NONE))
        r3d_fail(err, R3D_EARG, "mesh_from_label: a label map needs integer voxels, not %s",
                 r3d_dtype_name(labels->dtype));
    else {
        /* Label maps come as uint8, int16 or uint16 in practice (NIfTI
         * masks are often int16); raw values are compared when they are
         * the real ones, else r3d_volume_get. A label the type cannot
         * hold is nowhere. */
        int raw = labels && labels->scl_slope == 1 && labels->scl_inter == 0;
        x->mode = SRC_EQ_GET;
        if (raw && labels->dtype == R3D_U16)
            x->mode = SRC_EQ_U16;
        else if (raw && labels->dtype == R3D_I16)
            x->mode = label <= INT16_MAX ? SRC_EQ_I16 : SRC_NONE;
        else if (raw && labels->dtype == R3D_U8)
            x->mode = label <= UINT8_MAX ? SRC_EQ_U8 : SRC_NONE;
        m = extract(x, o, "mesh_from_label", err);
    }
    if (m)
        m->label = label;
    free(x);
    return m;
}

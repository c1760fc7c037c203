/* skeleton.c - 3D thinning to a curve skeleton (Lee, Kashyap & Chu 1994),
 * and the skeleton as a graph of branch points, end points and branches.
 *
 * The thinning follows Arganda-Carreras' Skeletonize3D (the ImageJ plugin,
 * and scikit-image's skeletonize_3d) step for step, so results are the same
 * voxel for voxel: for each of the six border directions in turn, collect
 * the object voxels that are border voxels in that direction, are not end
 * points, keep the Euler characteristic (Lee's table) and are simple (their
 * 26-neighbours form one 26-connected component); then recheck the
 * candidates one by one in scan order and delete those still simple.
 * Repeat until six directions in a row delete nothing.
 *
 * Only object voxels are visited: they are kept in scan order in a list
 * that is compacted as voxels go, and the work is done in the mask's
 * bounding box padded by one voxel, so a thin tree in a large CT costs
 * what the tree costs. */
#include "image_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the neighbourhood ---------------------------------------------------- */

/* Index of neighbour (dz, dy, dx) in Lee's numbering, centre = 13:
 * 9 * (dz + 1) + 3 * (dx + 1) + (dy + 1) — note x before y, as in the
 * reference (p, r, c) = (z, y, x) layout where r varies fastest within c. */
typedef struct box {
    uint8_t *m;          /* the padded crop, 1 = object */
    int64_t nx, ny, nz;  /* padded sizes */
    int64_t off[27];     /* index offsets of the 27 neighbours */
} box;

static void neighbourhood(const box *b, int64_t p, uint8_t nb[27])
{
    for (int i = 0; i < 27; i++)
        nb[i] = b->m[p + b->off[i]];
}

static const int euler_lut_odd[128] = {
    1,  -1, -1, 1,  -3, -1, -1, 1,  -1, 1,  1,  -1, 3,  1,  1,  -1, -3, -1, 3,  1,  1,  -1,
    3,  1,  -1, 1,  1,  -1, 3,  1,  1,  -1, -3, 3,  -1, 1,  1,  3,  -1, 1,  -1, 1,  1,  -1,
    3,  1,  1,  -1, 1,  3,  3,  1,  5,  3,  3,  1,  -1, 1,  1,  -1, 3,  1,  1,  -1, -7, -1,
    -1, 1,  -3, -1, -1, 1,  -1, 1,  1,  -1, 3,  1,  1,  -1, -3, -1, 3,  1,  1,  -1, 3,  1,
    -1, 1,  1,  -1, 3,  1,  1,  -1, -3, 3,  -1, 1,  1,  3,  -1, 1,  -1, 1,  1,  -1, 3,  1,
    1,  -1, 1,  3,  3,  1,  5,  3,  3,  1,  -1, 1,  1,  -1, 3,  1,  1,  -1};

/* The seven neighbours of each octant, bit 128 down to bit 2 (Lee's
 * Table 2 ordering, as in the reference implementation). */
static const int octant_bits[8][7] = {
    {2, 1, 11, 10, 5, 4, 14},     {0, 9, 3, 12, 1, 10, 4},      {8, 7, 17, 16, 5, 4, 14},
    {6, 15, 7, 16, 3, 12, 4},     {20, 23, 19, 22, 11, 14, 10}, {18, 21, 9, 12, 19, 22, 10},
    {26, 23, 17, 14, 25, 22, 16}, {24, 25, 15, 16, 21, 22, 12}};

static int euler_invariant(const uint8_t nb[27])
{
    int e = 0;
    for (int o = 0; o < 8; o++) {
        int n = 1;
        for (int k = 0; k < 7; k++)
            if (nb[octant_bits[o][k]] == 1)
                n |= 128 >> k;
        e += euler_lut_odd[n >> 1];
    }
    return e == 0;
}

static int end_point(const uint8_t nb[27])
{
    int s = 0;
    for (int i = 0; i < 27; i++)
        s += nb[i];
    return s == 2;
}

/* adjacency[i]: bit j set when neighbours i and j (centre excluded) are
 * 26-adjacent; built once. */
static uint32_t adjacency[27];
static void adjacency_init(void)
{
    for (int i = 0; i < 27; i++) {
        adjacency[i] = 0;
        if (i == 13)
            continue;
        int zi = i / 9 - 1, xi = (i / 3) % 3 - 1, yi = i % 3 - 1;
        for (int j = 0; j < 27; j++) {
            int zj = j / 9 - 1, xj = (j / 3) % 3 - 1, yj = j % 3 - 1;
            if (j != i && j != 13 && abs(zi - zj) <= 1 && abs(xi - xj) <= 1 && abs(yi - yj) <= 1)
                adjacency[i] |= 1u << j;
        }
    }
}

/* Simple: the object neighbours form at most one 26-connected component
 * (Lee's "N(v) labelling"; the octree recursion of the reference does the
 * same with shared octants, since two neighbours are 26-adjacent exactly
 * when some octant holds both). */
static int simple_point(const uint8_t nb[27])
{
    uint32_t obj = 0;
    for (int i = 0; i < 27; i++)
        if (i != 13 && nb[i] == 1)
            obj |= 1u << i;
    if (!obj)
        return 1;
    uint32_t seen = obj & -obj, frontier = seen;
    while (frontier) {
        uint32_t next = 0;
        for (uint32_t f = frontier; f; f &= f - 1)
            next |= adjacency[__builtin_ctz(f)];
        next &= obj & ~seen;
        seen |= next;
        frontier = next;
    }
    return seen == obj;
}

static int border_in(const box *b, int64_t p, int dir)
{
    switch (dir) { /* Lee's six directions, in the reference's order */
    case 1: return b->m[p - 1] == 0;                  /* N: x - 1 */
    case 2: return b->m[p + 1] == 0;                  /* S: x + 1 */
    case 3: return b->m[p + b->nx] == 0;              /* E: y + 1 */
    case 4: return b->m[p - b->nx] == 0;              /* W: y - 1 */
    case 5: return b->m[p + b->nx * b->ny] == 0;      /* U: z + 1 */
    default: return b->m[p - b->nx * b->ny] == 0;     /* B: z - 1 */
    }
}

static void thin(box *b, int64_t *obj, int64_t n_obj, int64_t *cand, int n_dirs)
{
    static const int order[6] = {4, 3, 2, 1, 5, 6};
    int unchanged = 0;
    uint8_t nb[27];
    while (unchanged < n_dirs) {
        unchanged = 0;
        for (int d = 0; d < n_dirs; d++) {
            int64_t nc = 0;
            for (int64_t i = 0; i < n_obj; i++) {
                int64_t p = obj[i];
                if (!border_in(b, p, order[d]))
                    continue;
                neighbourhood(b, p, nb);
                if (end_point(nb) || !euler_invariant(nb) || !simple_point(nb))
                    continue;
                cand[nc++] = p;
            }
            int changed = 0;
            for (int64_t i = 0; i < nc; i++) {
                neighbourhood(b, cand[i], nb);
                if (simple_point(nb)) {
                    b->m[cand[i]] = 0;
                    changed = 1;
                }
            }
            if (changed) { /* compact the object list, keeping scan order */
                int64_t k = 0;
                for (int64_t i = 0; i < n_obj; i++)
                    if (b->m[obj[i]])
                        obj[k++] = obj[i];
                n_obj = k;
            } else {
                unchanged++;
            }
        }
    }
}

r3d_volume *r3d_image_skeleton(const r3d_volume *mask, r3d_error *err)
{
    if (r3d_image_check_3d(mask, "skeleton", err) != R3D_OK)
        return NULL;
    static int ready;
    if (!ready) { /* idempotent; a race only writes the same table twice */
        adjacency_init();
        ready = 1;
    }
    int64_t nx = mask->dim[0], ny = mask->dim[1], nz = mask->dim[2];
    r3d_volume *out = r3d_volume_new_like(mask, R3D_U8, err);
    if (!out)
        return NULL;
    int64_t lo[3] = {nx, ny, nz}, hi[3] = {-1, -1, -1};
    for (int64_t z = 0; z < nz; z++)
        for (int64_t y = 0; y < ny; y++)
            for (int64_t x = 0; x < nx; x++)
                if (r3d_image_on(mask, (z * ny + y) * nx + x)) {
                    int64_t c[3] = {x, y, z};
                    for (int a = 0; a < 3; a++) {
                        lo[a] = c[a] < lo[a] ? c[a] : lo[a];
                        hi[a] = c[a] > hi[a] ? c[a] : hi[a];
                    }
                }
    if (hi[0] < 0)
        return out; /* empty mask, empty skeleton */
    box b;
    b.nx = hi[0] - lo[0] + 3, b.ny = hi[1] - lo[1] + 3, b.nz = hi[2] - lo[2] + 3;
    int64_t bn = b.nx * b.ny * b.nz, n_obj = 0;
    b.m = calloc((size_t)bn, 1);
    int64_t *obj = NULL, *cand = NULL;
    if (!b.m)
        goto nomem;
    for (int64_t z = lo[2]; z <= hi[2]; z++)
        for (int64_t y = lo[1]; y <= hi[1]; y++)
            for (int64_t x = lo[0]; x <= hi[0]; x++)
                if (r3d_image_on(mask, (z * ny + y) * nx + x)) {
                    b.m[((z - lo[2] + 1) * b.ny + (y - lo[1] + 1)) * b.nx + (x - lo[0] + 1)] = 1;
                    n_obj++;
                }
    obj = malloc((size_t)n_obj * sizeof *obj);
    cand = malloc((size_t)n_obj * sizeof *cand);
    if (!obj || !cand)
        goto nomem;
    n_obj = 0;
    for (int64_t p = 0; p < bn; p++)
        if (b.m[p])
            obj[n_obj++] = p;
    for (int dz = -1, i = 0; dz <= 1; dz++)
        for (int dx = -1; dx <= 1; dx++)
            for (int dy = -1; dy <= 1; dy++, i++)
                b.off[i] = (dz * b.ny + dy) * b.nx + dx;
    thin(&b, obj, n_obj, cand, nz == 1 ? 4 : 6); /* one slice: no up/down borders */
    uint8_t *o = out->voxels;
    for (int64_t z = lo[2]; z <= hi[2]; z++)
        for (int64_t y = lo[1]; y <= hi[1]; y++)
            for (int64_t x = lo[0]; x <= hi[0]; x++)
                o[(z * ny + y) * nx + x] =
                    b.m[((z - lo[2] + 1) * b.ny + (y - lo[1] + 1)) * b.nx + (x - lo[0] + 1)];
    free(b.m);
    free(obj);
    free(cand);
    return out;
nomem:
    free(b.m);
    free(obj);
    free(cand);
    r3d_volume_free(out);
    return r3d_fail(err, R3D_ENOMEM, "skeleton: out of memory"), NULL;
}

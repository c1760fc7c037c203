/* skeleton_graph.c - a curve skeleton as a graph.
 *
 * A skeleton voxel with one 26-neighbour is an end point, with three or
 * more a branch point; touching branch points (a junction often thins to a
 * small clump) are one node, placed at the clump's centroid. Edges are the
 * chains of two-neighbour voxels between nodes, traced from every node;
 * each is recorded once, with its voxels in order, its length in mm
 * (along the path in patient space, lightly smoothed) and its mean radius: the mean over
 * its voxels of the distance from the voxel centre to the nearest voxel
 * outside the mask it came from. A closed loop with no node gets one at
 * its first voxel so that it is not lost. */
#include "image_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct gb {
    const r3d_volume *sk;
    const uint8_t *on;     /* skeleton, 0/1 */
    int64_t nx, ny, nz;
    int32_t *node_of;      /* voxel -> node index + 1 for node voxels, else 0 */
    uint8_t *used;         /* chain voxels already put into an edge */
    const float *dist;     /* distance transform of the mask, or NULL */
    r3d_skel_graph *g;
    int cap_nodes, cap_edges;
} gb;

/* The 26-neighbours of p on the skeleton; returns how many. */
static int neighbours(const gb *b, int64_t p, int64_t out[26])
{
    int64_t x = p % b->nx, y = (p / b->nx) % b->ny, z = p / (b->nx * b->ny);
    int n = 0;
    for (int dz = -1; dz <= 1; dz++)
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) {
                if (!dx && !dy && !dz)
                    continue;
                int64_t a = x + dx, c = y + dy, d = z + dz;
                if (a < 0 || c < 0 || d < 0 || a >= b->nx || c >= b->ny || d >= b->nz)
                    continue;
                int64_t q = (d * b->ny + c) * b->nx + a;
                if (b->on[q])
                    out[n++] = q;
            }
    return n;
}

static void voxel_lps(const r3d_volume *v, int64_t p, double lps[3])
{
    double ijk[3] = {(double)(p % v->dim[0]), (double)((p / v->dim[0]) % v->dim[1]),
                     (double)(p / (v->dim[0] * v->dim[1]))};
    for (int r = 0; r < 3; r++)
        lps[r] = v->ijk_to_lps[r][0] * ijk[0] + v->ijk_to_lps[r][1] * ijk[1] +
                 v->ijk_to_lps[r][2] * ijk[2] + v->ijk_to_lps[r][3];
}

static int add_node(gb *b, int64_t voxel, const double lps[3], int degree)
{
    r3d_skel_graph *g = b->g;
    if (g->n_nodes == b->cap_nodes) {
        int cap = b->cap_nodes ? 2 * b->cap_nodes : 64;
        void *p = realloc(g->nodes, (size_t)cap * sizeof *g->nodes);
        if (!p)
            return -1;
        g->nodes = p, b->cap_nodes = cap;
    }
    r3d_skel_node *n = &g->nodes[g->n_nodes];
    n->voxel = voxel;
    memcpy(n->lps, lps, sizeof n->lps);
    n->degree = degree;
    return g->n_nodes++;
}

static int add_edge(gb *b, int a, int c, int64_t *vox, int nv)
{
    r3d_skel_graph *g = b->g;
    if (g->n_edges == b->cap_edges) {
        int cap = b->cap_edges ? 2 * b->cap_edges : 64;
        void *p = realloc(g->edges, (size_t)cap * sizeof *g->edges);
        if (!p)
            return -1;
        g->edges = p, b->cap_edges = cap;
    }
    r3d_skel_edge *e = &g->edges[g->n_edges];
    e->a = a, e->b = c;
    e->voxels = malloc((size_t)nv * sizeof *vox);
    if (!e->voxels)
        return -1;
    memcpy(e->voxels, vox, (size_t)nv * sizeof *vox);
    e->n_voxels = nv;
    /* length along the path smoothed over +-2 voxels (ends fixed): a
     * digital path's staircase is up to 8 % longer than the curve it
     * follows, the moving average takes most of that out */
    double len = 0, rad = 0, prev[3] = {0, 0, 0};
    for (int i = 0; i < nv; i++) {
        int lo = i - 2 < 0 ? 0 : i - 2, hi = i + 2 >= nv ? nv - 1 : i + 2;
        int w = i - lo < hi - i ? i - lo : hi - i; /* symmetric window */
        double cur[3] = {0, 0, 0}, q[3];
        for (int k = i - w; k <= i + w; k++) {
            voxel_lps(b->sk, vox[k], q);
            for (int a = 0; a < 3; a++)
                cur[a] += q[a] / (2 * w + 1);
        }
        if (i)
            len += sqrt((cur[0] - prev[0]) * (cur[0] - prev[0]) + (cur[1] - prev[1]) * (cur[1] - prev[1]) +
                        (cur[2] - prev[2]) * (cur[2] - prev[2]));
        memcpy(prev, cur, sizeof cur);
        if (b->dist)
            rad += b->dist[vox[i]];
    }
    e->length_mm = len;
    e->radius_mm = b->dist ? rad / nv : 0;
    g->n_edges++;
    return 0;
}

/* Follow a chain of two-neighbour voxels from node voxel p through q until
 * a node voxel (or a voxel already used: a loop closing on itself). */
static int trace(gb *b, int64_t p, int64_t q, int64_t **path, int64_t *cap)
{
    int na = b->node_of[p] - 1;
    int64_t n = 0, prev = p, cur = q;
    (*path)[n++] = p;
    for (;;) {
        if (!r3d_grow((void **)path, cap, n + 1, sizeof **path))
            return -1;
        (*path)[n++] = cur;
        if (b->node_of[cur])
            return add_edge(b, na, b->node_of[cur] - 1, *path, (int)n);
        b->used[cur] = 1;
        int64_t nb[26], next = -1;
        int k = neighbours(b, cur, nb);
        for (int i = 0; i < k; i++)
            if (nb[i] != prev && (b->node_of[nb[i]] || !b->used[nb[i]])) {
                next = nb[i];
                if (b->node_of[nb[i]] && b->node_of[nb[i]] - 1 != na)
                    break; /* prefer reaching a node */
            }
        if (next < 0) /* cannot happen on a two-neighbour voxel; be safe */
            return add_edge(b, na, na, *path, (int)n);
        prev = cur, cur = next;
    }
}

void r3d_skel_graph_free(r3d_skel_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_edges; i++)
        free(g->edges[i].voxels);
    free(g->edges);
    free(g->nodes);
    memset(g, 0, sizeof *g);
}

r3d_status r3d_skeleton_graph(const r3d_volume *skeleton, const r3d_volume *mask,
                              r3d_skel_graph *out, r3d_error *err)
{
    memset(out, 0, sizeof *out);
    if (r3d_image_check_3d(skeleton, "skeleton graph", err) != R3D_OK)
        return err ? err->code : R3D_EARG;
    if (mask && (mask->dim[0] != skeleton->dim[0] || mask->dim[1] != skeleton->dim[1] ||
                 mask->dim[2] != skeleton->dim[2]))
        return r3d_fail(err, R3D_EARG, "skeleton graph: mask and skeleton grids differ");
    gb b = {.sk = skeleton, .nx = skeleton->dim[0], .ny = skeleton->dim[1], .nz = skeleton->dim[2]};
    b.g = out;
    int64_t n = b.nx * b.ny * b.nz;
    uint8_t *on = calloc((size_t)n, 1);
    b.node_of = calloc((size_t)n, sizeof *b.node_of);
    b.used = calloc((size_t)n, 1);
    int64_t pcap = 256, *path = malloc((size_t)pcap * sizeof *path), *stack = NULL;
    r3d_volume *dist = NULL;
    if (!on || !b.node_of || !b.used || !path)
        goto nomem;
    b.on = on;
    for (int64_t i = 0; i < n; i++)
        on[i] = r3d_image_on(skeleton, i);
    if (mask) {
        dist = r3d_image_distance(mask, err);
        if (!dist)
            goto fail;
        b.dist = dist->voxels;
    }
    /* nodes: end points and isolated voxels alone, branch clumps together */
    int64_t nb[26], scap = 256, ns;
    stack = malloc((size_t)scap * sizeof *stack);
    if (!stack)
        goto nomem;
    for (int64_t p = 0; p < n; p++) {
        if (!on[p] || b.node_of[p])
            continue;
        int d = neighbours(&b, p, nb);
        if (d == 2)
            continue;
        double sum[3] = {0, 0, 0}, lps[3];
        int64_t members = 0;
        ns = 0;
        stack[ns++] = p;
        b.node_of[p] = -1; /* in this clump, index not known yet */
        int64_t first = p;
        for (int64_t s = 0; s < ns; s++) {
            int64_t q = stack[s];
            voxel_lps(skeleton, q, lps);
            for (int a = 0; a < 3; a++)
                sum[a] += lps[a];
            members++;
            if (d < 3)
                break; /* end points and isolated voxels are nodes alone */
            int k = neighbours(&b, q, nb);
            for (int i = 0; i < k; i++) {
                int64_t r = nb[i];
                if (b.node_of[r])
                    continue;
                int64_t tmp[26];
                if (neighbours(&b, r, tmp) < 3)
                    continue;
                if (!r3d_grow((void **)&stack, &scap, ns + 1, sizeof *stack))
                    goto nomem;
                b.node_of[r] = -1;
                stack[ns++] = r;
            }
        }
        for (int a = 0; a < 3; a++)
            sum[a] /= (double)members;
        int64_t best = first;
        double best_d = INFINITY;
        for (int64_t s = 0; s < (d < 3 ? 1 : ns); s++) {
            voxel_lps(skeleton, stack[s], lps);
            double dd = (lps[0] - sum[0]) * (lps[0] - sum[0]) + (lps[1] - sum[1]) * (lps[1] - sum[1]) +
                        (lps[2] - sum[2]) * (lps[2] - sum[2]);
            if (dd < best_d)
                best_d = dd, best = stack[s];
        }
        int id = add_node(&b, best, sum, 0);
        if (id < 0)
            goto nomem;
        for (int64_t s = 0; s < (d < 3 ? 1 : ns); s++)
            b.node_of[stack[s]] = id + 1;
    }
    /* edges from every node voxel */
    for (int64_t p = 0; p < n; p++) {
        if (!on[p] || !b.node_of[p])
            continue;
        int a = b.node_of[p] - 1;
        int k = neighbours(&b, p, nb);
        for (int i = 0; i < k; i++) {
            int64_t q = nb[i];
            if (b.node_of[q]) {
                int c = b.node_of[q] - 1;
                if (c <= a)
                    continue; /* same clump, or recorded from the other side */
                int dup = 0;
                for (int e = 0; e < out->n_edges && !dup; e++)
                    dup = out->edges[e].n_voxels == 2 && ((out->edges[e].a == a && out->edges[e].b == c) ||
                                                          (out->edges[e].a == c && out->edges[e].b == a));
                int64_t two[2] = {p, q};
                if (!dup && add_edge(&b, a, c, two, 2) < 0)
                    goto nomem;
            } else if (!b.used[q] && trace(&b, p, q, &path, &pcap) < 0) {
                goto nomem;
            }
        }
    }
    /* closed loops without a node: one node at the first voxel */
    for (int64_t p = 0; p < n; p++) {
        if (!on[p] || b.node_of[p] || b.used[p])
            continue;
        double lps[3];
        voxel_lps(skeleton, p, lps);
        int id = add_node(&b, p, lps, 0);
        if (id < 0)
            goto nomem;
        b.node_of[p] = id + 1;
        int k = neighbours(&b, p, nb);
        if (k > 0 && trace(&b, p, nb[0], &path, &pcap) < 0)
            goto nomem;
    }
    for (int e = 0; e < out->n_edges; e++) {
        out->nodes[out->edges[e].a].degree++;
        out->nodes[out->edges[e].b].degree++;
    }
    free(on);
    free(b.node_of);
    free(b.used);
    free(path);
    free(stack);
    r3d_volume_free(dist);
    return R3D_OK;
nomem:
    r3d_fail(err, R3D_ENOMEM, "skeleton graph: out of memory");
fail:
    free(on);
    free(b.node_of);
    free(b.used);
    free(path);
    free(stack);
    r3d_volume_free(dist);
    r3d_skel_graph_free(out);
    return err ? err->code : R3D_ENOMEM;
}

/* airway_tree.c - an airway mask cut into branches and generations.
 *
 * Wave-front propagation (after Schlathoelter et al. 2002 and Mori et al.
 * 2000): geodesic distance from the trachea's top is computed through the
 * mask (Dijkstra, 26 neighbours, true mm steps); the distance is cut into
 * bands of band_mm, and each band into connected cross-sections. Each
 * section's parent is the section of the band before that it touches most.
 * Where a section has two or more children whose subtrees last at least
 * min_branch_mm, the airway bifurcates; shorter offshoots (wall bumps, the
 * stubs a threshold leaves) stay part of the branch they sit on, and
 * their far ends are listed as tips. No
 * skeleton is needed, and the result does not depend on thinning
 * artefacts at bifurcations. */
#include "r3d/analysis.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct heap {
    float *key;
    int32_t *id;
    int64_t n;
} heap;

static void heap_push(heap *h, float k, int32_t id)
{
    int64_t i = h->n++;
    while (i > 0) {
        int64_t p = (i - 1) / 2;
        if (h->key[p] <= k)
            break;
        h->key[i] = h->key[p], h->id[i] = h->id[p];
        i = p;
    }
    h->key[i] = k, h->id[i] = id;
}

static int32_t heap_pop(heap *h, float *k)
{
    int32_t top = h->id[0];
    *k = h->key[0];
    float lk = h->key[--h->n];
    int32_t lid = h->id[h->n];
    int64_t i = 0;
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->key[c + 1] < h->key[c])
            c++;
        if (h->key[c] >= lk)
            break;
        h->key[i] = h->key[c], h->id[i] = h->id[c];
        i = c;
    }
    if (h->n > 0)
        h->key[i] = lk, h->id[i] = lid;
    return top;
}

static int32_t uf_find(int32_t *p, int32_t x)
{
    while (p[x] != x) {
        p[x] = p[p[x]];
        x = p[x];
    }
    return x;
}

#define MAXPAR 6

typedef struct node {
    int band;
    int64_t nvox;
    double s[3];     /* sum of voxel (i, j, k) */
    int parent;
    int par[MAXPAR]; /* candidate parents and contact counts */
    int cnt[MAXPAR];
    int npar;
    int depth;       /* bands in the subtree including this one */
    int branch;
    int first_child, next_sibling;
} node;

/* Tips of the folded offshoots: a terminal section that is not on its
 * branch's own path (up from it, some ancestor has a child whose subtree
 * lasts longer). The mask ends at such a tip where a segmental bronchus
 * narrows and its lumen, on 2 mm slices, is brighter than the threshold;
 * the tube beyond is reached only from there (src/seg/airway.c grows from
 * the tips: from points on the branch's axis, 6-7 mm away on the chest
 * CT, the offshoot is wall). */
static r3d_status collect_tips(const node *nd, int nn, const r3d_volume *mask, double w,
                               r3d_airway_tree *out, r3d_error *err)
{
    int cap = 0;
    for (int a = 0; a < nn; a++) {
        const node *q = &nd[a];
        if (q->first_child >= 0 || q->branch < 0 || q->parent < 0)
            continue;
        /* Up the offshoot to j, where a sibling lasts longer than it (the
         * branch's own path); reaching the branch's first section means
         * this is that path's end. */
        int x = a, j = -1;
        while (j < 0 && nd[x].parent >= 0 && nd[nd[x].parent].branch == q->branch) {
            int p = nd[x].parent;
            for (int y = nd[p].first_child; y >= 0 && j < 0; y = nd[y].next_sibling)
                if (y != x && nd[y].depth > nd[x].depth)
                    j = p;
            x = p;
        }
        if (j < 0)
            continue;
        if (out->n_tips == cap) {
            cap = cap ? 2 * cap : 16;
            r3d_airway_tip *t2 = realloc(out->tips, (size_t)cap * sizeof *t2);
            if (!t2)
                return r3d_fail(err, R3D_ENOMEM, "airway tree: out of memory");
            out->tips = t2;
        }
        r3d_airway_tip *t = &out->tips[out->n_tips++];
        t->branch = q->branch;
        t->length_mm = (q->band - nd[j].band) * w;
        double ijk[3] = {q->s[0] / q->nvox, q->s[1] / q->nvox, q->s[2] / q->nvox};
        for (int r = 0; r < 3; r++) {
            t->pos[r] = mask->ijk_to_lps[r][3];
            for (int c = 0; c < 3; c++)
                t->pos[r] += mask->ijk_to_lps[r][c] * ijk[c];
        }
    }
    return R3D_OK;
}

void r3d_airway_tree_free(r3d_airway_tree *t)
{
    if (!t)
        return;
    free(t->b);
    free(t->tips);
    memset(t, 0, sizeof *t);
    t->max_generation = -1;
}

r3d_status r3d_airway_tree_build(const r3d_volume *mask, const int64_t *seeds, int n_seeds,
                                 const r3d_airway_tree_opts *opts, r3d_airway_tree *out,
                                 r3d_volume **branch_of, r3d_error *err)
{
    memset(out, 0, sizeof *out);
    out->max_generation = -1;
    if (branch_of)
        *branch_of = NULL;
    if (!mask || mask->dtype != R3D_U8 || mask->dim[3] > 1)
        return r3d_fail(err, R3D_EARG, "airway tree: a 3D uint8 mask is needed");
    int64_t nx = mask->dim[0], ny = mask->dim[1], nz = mask->dim[2], n = nx * ny * nz;
    const uint8_t *m = mask->voxels;
    double sp[3] = {mask->spacing_mm[0], mask->spacing_mm[1], mask->spacing_mm[2]};
    double smax = fmax(sp[0], fmax(sp[1], sp[2]));
    double w = opts && opts->band_mm > 0 ? opts->band_mm : fmax(2.0 * smax, 3.0);
    double min_len = opts && opts->min_branch_mm > 0 ? opts->min_branch_mm : 2.0 * w;

    /* Bounding box and local ids. */
    int64_t lo[3] = {nx, ny, nz}, hi[3] = {-1, -1, -1}, nm = 0;
    for (int64_t k = 0; k < nz; k++)
        for (int64_t j = 0; j < ny; j++)
            for (int64_t i = 0; i < nx; i++)
                if (m[i + nx * (j + ny * k)]) {
                    nm++;
                    if (i < lo[0]) lo[0] = i;
                    if (i > hi[0]) hi[0] = i;
                    if (j < lo[1]) lo[1] = j;
                    if (j > hi[1]) hi[1] = j;
                    if (k < lo[2]) lo[2] = k;
                    if (k > hi[2]) hi[2] = k;
                }
    if (branch_of) {
        *branch_of = r3d_volume_new_like(mask, R3D_I32, err);
        if (!*branch_of)
            return err ? err->code : R3D_ENOMEM;
    }
    if (nm == 0 || n_seeds <= 0)
        return R3D_OK;
    if (nm > INT32_MAX / 2) {
        r3d_volume_free(branch_of ? *branch_of : NULL);
        if (branch_of)
            *branch_of = NULL;
        return r3d_fail(err, R3D_EARG, "airway tree: mask too large (%lld voxels)", (long long)nm);
    }
    int64_t bx = hi[0] - lo[0] + 1, by = hi[1] - lo[1] + 1, bz = hi[2] - lo[2] + 1;
    int64_t bn = bx * by * bz;
    int32_t *id = malloc((size_t)bn * sizeof *id);
    int64_t *pos = malloc((size_t)nm * sizeof *pos);
    float *dist = malloc((size_t)nm * sizeof *dist);
    int32_t *uf = malloc((size_t)nm * sizeof *uf);
    heap h = {malloc((size_t)nm * 26 * sizeof(float) / 4 + 64 * sizeof(float)),
              malloc((size_t)nm * 26 * sizeof(int32_t) / 4 + 64 * sizeof(int32_t)), 0};
    int64_t hcap = nm * 26 / 4 + 64;
    node *nd = NULL;
    r3d_airway_branch *br = NULL;
    int *stack = NULL;
    r3d_status st = R3D_OK;
    if (!id || !pos || !dist || !uf || !h.key || !h.id) {
        st = r3d_fail(err, R3D_ENOMEM, "airway tree: out of memory");
        goto done;
    }
    nm = 0;
    for (int64_t k = 0; k < bz; k++)
        for (int64_t j = 0; j < by; j++)
            for (int64_t i = 0; i < bx; i++) {
                int64_t g = (i + lo[0]) + nx * ((j + lo[1]) + ny * (k + lo[2]));
                int64_t l = i + bx * (j + by * k);
                if (m[g]) {
                    id[l] = (int32_t)nm;
                    pos[nm] = l;
                    dist[nm] = FLT_MAX;
                    nm++;
                } else
                    id[l] = -1;
            }
    int off[26][3], noff = 0;
    float wt[26];
    for (int dk = -1; dk <= 1; dk++)
        for (int dj = -1; dj <= 1; dj++)
            for (int di = -1; di <= 1; di++) {
                if (!di && !dj && !dk)
                    continue;
                off[noff][0] = di, off[noff][1] = dj, off[noff][2] = dk;
                wt[noff] = (float)sqrt(di * di * sp[0] * sp[0] + dj * dj * sp[1] * sp[1] +
                                       dk * dk * sp[2] * sp[2]);
                noff++;
            }
#define NEIGH(l, o, out_l)                                                                   \
    do {                                                                                     \
        int64_t i_ = (l) % bx, j_ = ((l) / bx) % by, k_ = (l) / (bx * by);                   \
        int64_t a_ = i_ + off[o][0], b_ = j_ + off[o][1], c_ = k_ + off[o][2];               \
        out_l = (a_ < 0 || b_ < 0 || c_ < 0 || a_ >= bx || b_ >= by || c_ >= bz)             \
                    ? -1                                                                     \
                    : a_ + bx * (b_ + by * c_);                                              \
    } while (0)

    /* Dijkstra from the seeds. */
    for (int s = 0; s < n_seeds; s++) {
        int64_t g = seeds[s];
        if (g < 0 || g >= n || !m[g])
            continue;
        int64_t i = g % nx - lo[0], j = (g / nx) % ny - lo[1], k = g / (nx * ny) - lo[2];
        int32_t v = id[i + bx * (j + by * k)];
        if (dist[v] > 0) {
            dist[v] = 0;
            heap_push(&h, 0, v);
        }
    }
    while (h.n > 0) {
        float d;
        int32_t v = heap_pop(&h, &d);
        if (d > dist[v])
            continue;
        for (int o = 0; o < noff; o++) {
            int64_t l;
            NEIGH(pos[v], o, l);
            if (l < 0 || id[l] < 0)
                continue;
            int32_t u = id[l];
            float nd_ = d + wt[o];
            if (nd_ < dist[u]) {
                dist[u] = nd_;
                if (h.n == hcap) {
                    int64_t nc = hcap * 2;
                    float *k2 = realloc(h.key, (size_t)nc * sizeof *k2);
                    if (k2)
                        h.key = k2;
                    int32_t *i2 = k2 ? realloc(h.id, (size_t)nc * sizeof *i2) : NULL;
                    if (!k2 || !i2) {
                        st = r3d_fail(err, R3D_ENOMEM, "airway tree: out of memory");
                        goto done;
                    }
                    h.id = i2, hcap = nc;
                }
                heap_push(&h, nd_, u);
            }
        }
    }

    /* Sections: union of same-band neighbours. */
    for (int32_t v = 0; v < nm; v++)
        uf[v] = v;
    for (int32_t v = 0; v < nm; v++) {
        if (dist[v] == FLT_MAX)
            continue;
        int bv = (int)(dist[v] / w);
        for (int o = 0; o < noff / 2; o++) { /* half the offsets: each pair once */
            int64_t l;
            NEIGH(pos[v], o, l);
            if (l < 0 || id[l] < 0)
                continue;
            int32_t u = id[l];
            if (dist[u] == FLT_MAX || (int)(dist[u] / w) != bv)
                continue;
            int32_t a = uf_find(uf, v), b = uf_find(uf, u);
            if (a != b)
                uf[a < b ? b : a] = a < b ? a : b;
        }
    }
    int nn = 0;
    /* Number the sections: uf roots get consecutive ids. */
    int32_t *nid = malloc((size_t)nm * sizeof *nid);
    if (!nid) {
        st = r3d_fail(err, R3D_ENOMEM, "airway tree: out of memory");
        goto done;
    }
    for (int32_t v = 0; v < nm; v++)
        nid[v] = -1;
    for (int32_t v = 0; v < nm; v++) {
        if (dist[v] == FLT_MAX)
            continue;
        int32_t r = uf_find(uf, v);
        if (nid[r] < 0)
            nid[r] = nn++;
    }
    nd = calloc((size_t)(nn ? nn : 1), sizeof *nd);
    if (!nd) {
        free(nid);
        st = r3d_fail(err, R3D_ENOMEM, "airway tree: out of memory");
        goto done;
    }
    for (int i = 0; i < nn; i++)
        nd[i].parent = -1, nd[i].branch = -1, nd[i].first_child = nd[i].next_sibling = -1;
    for (int32_t v = 0; v < nm; v++)
        if (dist[v] != FLT_MAX)
            uf[v] = uf_find(uf, v); /* flatten: every uf[v] is now its root */
    for (int32_t v = 0; v < nm; v++) {
        if (dist[v] == FLT_MAX)
            continue;
        int a = nid[uf[v]];
        uf[v] = a; /* from here on uf[v] = section of v (roots were flattened first) */
        node *q = &nd[a];
        q->band = (int)(dist[v] / w);
        q->nvox++;
        int64_t l = pos[v];
        q->s[0] += l % bx + lo[0], q->s[1] += (l / bx) % by + lo[1], q->s[2] += l / (bx * by) + lo[2];
    }
    free(nid);
    /* Contacts with the band before. */
    for (int32_t v = 0; v < nm; v++) {
        if (dist[v] == FLT_MAX)
            continue;
        int a = uf[v];
        int ba = nd[a].band;
        if (ba == 0)
            continue;
        for (int o = 0; o < noff; o++) {
            int64_t l;
            NEIGH(pos[v], o, l);
            if (l < 0 || id[l] < 0 || dist[id[l]] == FLT_MAX)
                continue;
            int b = uf[id[l]];
            if (nd[b].band != ba - 1)
                continue;
            node *q = &nd[a];
            int x;
            for (x = 0; x < q->npar && q->par[x] != b; x++)
                ;
            if (x == q->npar) {
                if (q->npar == MAXPAR)
                    continue;
                q->par[q->npar] = b, q->cnt[q->npar] = 0, q->npar++;
            }
            q->cnt[x]++;
        }
    }
    int maxband = 0;
    for (int a = 0; a < nn; a++) {
        node *q = &nd[a];
        int best = -1, bc = 0;
        for (int x = 0; x < q->npar; x++)
            if (q->cnt[x] > bc)
                bc = q->cnt[x], best = q->par[x];
        q->parent = best;
        if (best >= 0) {
            q->next_sibling = nd[best].first_child;
            nd[best].first_child = a;
        }
        if (q->band > maxband)
            maxband = q->band;
    }
    /* Subtree depth, children before parents: by decreasing band. */
    {
        int *order = malloc((size_t)(nn > 0 ? nn : 1) * sizeof *order);
        int *cnt = calloc((size_t)maxband + 2, sizeof *cnt);
        if (!order || !cnt) {
            free(order), free(cnt);
            st = r3d_fail(err, R3D_ENOMEM, "airway tree: out of memory");
            goto done;
        }
        for (int a = 0; a < nn; a++)
            cnt[nd[a].band + 1]++;
        for (int b = 0; b <= maxband; b++)
            cnt[b + 1] += cnt[b];
        for (int a = 0; a < nn; a++)
            order[cnt[nd[a].band]++] = a;
        for (int x = nn - 1; x >= 0; x--) {
            node *q = &nd[order[x]];
            int d = 0;
            for (int c = q->first_child; c >= 0; c = nd[c].next_sibling)
                if (nd[c].depth > d)
                    d = nd[c].depth;
            q->depth = d + 1;
        }
        free(order), free(cnt);
    }
    /* Branches: depth-first from the roots. */
    int nb = 0, capb = 64;
    br = calloc((size_t)capb, sizeof *br);
    stack = malloc((size_t)(nn ? nn : 1) * 2 * sizeof *stack);
    if (!br || !stack) {
        st = r3d_fail(err, R3D_ENOMEM, "airway tree: out of memory");
        goto done;
    }
    int min_bands = (int)ceil(min_len / w);
    if (min_bands < 1)
        min_bands = 1;
    for (int r = 0; r < nn; r++) {
        if (nd[r].parent >= 0 || nd[r].nvox < 1)
            continue;
        if (nd[r].band > 0 && nd[r].depth < min_bands)
            continue; /* a stray piece: left out */
        int sp_ = 0;
        if (nb == capb) {
            capb *= 2;
            r3d_airway_branch *b2 = realloc(br, (size_t)capb * sizeof *b2);
            if (!b2) {
                st = r3d_fail(err, R3D_ENOMEM, "airway tree: out of memory");
                goto done;
            }
            br = b2;
        }
        memset(&br[nb], 0, sizeof br[nb]);
        br[nb].parent = -1;
        br[nb].generation = 0;
        stack[sp_++] = r, stack[sp_++] = nb;
        nb++;
        while (sp_ > 0) {
            int b = stack[--sp_], a = stack[--sp_];
            nd[a].branch = b;
            int nsig = 0;
            for (int c = nd[a].first_child; c >= 0; c = nd[c].next_sibling)
                nsig += nd[c].depth >= min_bands;
            for (int c = nd[a].first_child; c >= 0; c = nd[c].next_sibling) {
                int cb = b;
                if (nsig >= 2 && nd[c].depth >= min_bands) {
                    if (nb == capb) {
                        capb *= 2;
                        r3d_airway_branch *b2 = realloc(br, (size_t)capb * sizeof *b2);
                        if (!b2) {
                            st = r3d_fail(err, R3D_ENOMEM, "airway tree: out of memory");
                            goto done;
                        }
                        br = b2;
                    }
                    memset(&br[nb], 0, sizeof br[nb]);
                    br[nb].parent = b;
                    br[nb].generation = br[b].generation + 1;
                    cb = nb++;
                }
                stack[sp_++] = c, stack[sp_++] = cb;
            }
        }
    }
    /* Branch geometry: per branch, the lowest and highest band sections. */
    {
        int *bmin = malloc((size_t)(nb ? nb : 1) * sizeof *bmin);
        int *bmax = malloc((size_t)(nb ? nb : 1) * sizeof *bmax);
        double *s0 = calloc((size_t)(nb ? nb : 1) * 8, sizeof *s0);
        double *bands = calloc((size_t)(nb ? nb : 1), sizeof *bands);
        if (!bmin || !bmax || !s0 || !bands) {
            free(bmin), free(bmax), free(s0), free(bands);
            st = r3d_fail(err, R3D_ENOMEM, "airway tree: out of memory");
            goto done;
        }
        for (int b = 0; b < nb; b++)
            bmin[b] = INT32_MAX, bmax[b] = -1;
        for (int a = 0; a < nn; a++) {
            int b = nd[a].branch;
            if (b < 0)
                continue;
            br[b].n_voxels += nd[a].nvox;
            if (nd[a].band < bmin[b])
                bmin[b] = nd[a].band;
            if (nd[a].band > bmax[b])
                bmax[b] = nd[a].band;
        }
        for (int a = 0; a < nn; a++) {
            int b = nd[a].branch;
            if (b < 0)
                continue;
            double *q = s0 + 8 * b;
            if (nd[a].band == bmin[b])
                q[0] += nd[a].s[0], q[1] += nd[a].s[1], q[2] += nd[a].s[2], q[3] += nd[a].nvox;
            if (nd[a].band == bmax[b])
                q[4] += nd[a].s[0], q[5] += nd[a].s[1], q[6] += nd[a].s[2], q[7] += nd[a].nvox;
        }
        double vv = sp[0] * sp[1] * sp[2];
        for (int b = 0; b < nb; b++) {
            double *q = s0 + 8 * b;
            double ijk0[3] = {q[0] / q[3], q[1] / q[3], q[2] / q[3]};
            double ijk1[3] = {q[4] / q[7], q[5] / q[7], q[6] / q[7]};
            for (int r = 0; r < 3; r++) {
                br[b].start[r] = mask->ijk_to_lps[r][3];
                br[b].end[r] = mask->ijk_to_lps[r][3];
                for (int c2 = 0; c2 < 3; c2++) {
                    br[b].start[r] += mask->ijk_to_lps[r][c2] * ijk0[c2];
                    br[b].end[r] += mask->ijk_to_lps[r][c2] * ijk1[c2];
                }
            }
            int nband = bmax[b] - bmin[b] + 1;
            br[b].length_mm = nband * w;
            double area = br[b].n_voxels * vv / (nband * w);
            br[b].radius_mm = sqrt(area / M_PI);
        }
        free(bmin), free(bmax), free(s0), free(bands);
    }
    st = collect_tips(nd, nn, mask, w, out, err);
    if (st != R3D_OK)
        goto done;
    if (branch_of) {
        int32_t *bo = (*branch_of)->voxels;
        for (int32_t v = 0; v < nm; v++) {
            if (dist[v] == FLT_MAX || nd[uf[v]].branch < 0)
                continue;
            int64_t l = pos[v];
            int64_t g = (l % bx + lo[0]) + nx * (((l / bx) % by + lo[1]) + ny * (l / (bx * by) + lo[2]));
            bo[g] = nd[uf[v]].branch + 1;
        }
    }
    out->b = br;
    out->n = nb;
    br = NULL;
    for (int b = 0; b < nb; b++) {
        int g = out->b[b].generation;
        if (g > out->max_generation)
            out->max_generation = g;
        if (g <= R3D_AIRWAY_MAX_GEN)
            out->per_generation[g]++;
    }
    r3d_airway_tree_name(out);
done:
#undef NEIGH
    free(id), free(pos), free(dist), free(uf), free(h.key), free(h.id), free(nd), free(br);
    free(stack);
    if (st != R3D_OK) {
        free(out->tips);
        out->tips = NULL, out->n_tips = 0;
    }
    if (st != R3D_OK && branch_of) {
        r3d_volume_free(*branch_of);
        *branch_of = NULL;
    }
    return st;
}

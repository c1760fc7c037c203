/* airway_names.c - anatomical names of the main, lobar and segmental
 * bronchi, from the branches' directions in the patient frame (LPS: +x the
 * patient's left, +y posterior, +z superior).
 *
 * Main and lobar: trachea -> two main bronchi (the more leftward is the
 * left one); the right main bronchus -> the upper-lobe bronchus (the most
 * upward child) and the bronchus intermedius; the intermedius -> the
 * middle-lobe bronchus (the most anterior child), the lower-lobe bronchus
 * and, where it leaves the intermedius itself, the superior segmental
 * bronchus RB6; the left main bronchus -> upper (the most upward) and
 * lower lobe bronchi.
 *
 * Segmental (the Boyden / Jackson-Huber names surgeons use): each lobar
 * bronchus - or the division of it that carries the segments (the left
 * upper lobe's upper division and lingula, the lower lobes' basal trunk
 * after the superior segment RB6 / LB6 has left it) - is a group with a
 * few expected segments, each with a typical direction (apical up,
 * posterior, anterior, lateral, medial, the basal ones down and around).
 * A candidate's direction runs from the group's bifurcation to the mean of
 * the ends of the candidate's subtree (where its territory lies), and is
 * compared with the expected ones *relative to the group's own axis*
 * (both projected onto the plane across it), as one reads them on a
 * bronchoscopy or a CT. Candidates are the group's children, or - since
 * the wave-front tree resolves a trifurcation as two close bifurcations,
 * and the basal trunk splits in a chain - the children of a child, when
 * every one of them then matches a segment of its own. The cut and the
 * one-to-one assignment with the most confident names win (all cuts and
 * assignments are tried: at most a handful of branches each). A name is
 * given only when the direction is within ~53 degrees of its segment's
 * (cos >= NAME_COS) and clearly nearer it than any other segment of the
 * group (NAME_MARGIN), and never to a branch within 20 degrees of the
 * group's axis (ACROSS_MIN: its direction across the axis is noise, e.g.
 * a basal branch running on in the line of the basal trunk); anything
 * else stays unnamed rather than guessed. */
#include "r3d/analysis.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define NAME_COS 0.6     /* cos of the largest angle to the segment's direction */
#define NAME_MARGIN 0.15 /* cos lead over the group's next-nearest segment */
#define ACROSS_MIN 0.34  /* sin of the least angle to the group axis (20 deg) */
#define MAXC 16          /* candidates per group */
#define MAXP 4           /* segments per group */

static void unit(double d[3])
{
    double n = sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
    for (int r = 0; r < 3; r++)
        d[r] = n > 0 ? d[r] / n : 0;
}

static double dot(const double a[3], const double b[3])
{
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

static void dir(const r3d_airway_tree *t, int b, double d[3])
{
    const r3d_airway_branch *x = &t->b[b];
    const double *from = x->start;
    if (x->parent >= 0)
        from = t->b[x->parent].end;
    for (int r = 0; r < 3; r++)
        d[r] = x->end[r] - from[r];
    unit(d);
}

static int children(const r3d_airway_tree *t, int b, int *out, int cap)
{
    int n = 0;
    for (int i = 0; i < t->n && n < cap; i++)
        if (t->b[i].parent == b)
            out[n++] = i;
    return n;
}

/* The child with the largest s . direction. */
static int extreme(const r3d_airway_tree *t, const int *c, int n, const double s[3])
{
    int best = -1;
    double bv = -1e9;
    for (int i = 0; i < n; i++) {
        double d[3];
        dir(t, c[i], d);
        double v = dot(s, d);
        if (v > bv)
            bv = v, best = c[i];
    }
    return best;
}

static int64_t subtree_voxels(const r3d_airway_tree *t, int b)
{
    int64_t s = t->b[b].n_voxels;
    for (int i = 0; i < t->n; i++)
        if (t->b[i].parent == b)
            s += subtree_voxels(t, i);
    return s;
}

/* Sum and count of the end points of b's subtree (branches are numbered
 * parents first, so one pass over the later ones finds the descendants). */
static void subtree_ends(const r3d_airway_tree *t, int b, double s[3], int *n)
{
    s[0] = s[1] = s[2] = 0;
    *n = 0;
    for (int i = b; i < t->n; i++) {
        int in = 0;
        for (int x = i; x >= 0 && x >= b; x = t->b[x].parent)
            if (x == b) {
                in = 1;
                break;
            }
        if (!in)
            continue;
        for (int r = 0; r < 3; r++)
            s[r] += t->b[i].end[r];
        (*n)++;
    }
}

/* The direction from origin to the mean of the ends of b's subtree (where
 * its territory lies), unit length. */
static void ends_dir(const r3d_airway_tree *t, int b, const double origin[3], double v[3])
{
    double s[3];
    int n = 0;
    subtree_ends(t, b, s, &n);
    for (int r = 0; r < 3; r++)
        v[r] = s[r] / (n ? n : 1) - origin[r];
    unit(v);
}

static void name(r3d_airway_tree *t, int b, const char *s)
{
    if (b >= 0)
        snprintf(t->b[b].name, sizeof t->b[b].name, "%s", s);
}

/* Expected segments of a group: name and typical direction for the right
 * lung (LPS); the left lung's are given as they are (no mirroring). */
typedef struct seg_proto {
    const char *name;
    double d[3];
} seg_proto;

/* Unit v projected onto the plane across axis a, unit length; 0 when v is
 * closer to the axis than sin^-1(min) for its direction across to mean
 * anything. */
static int across(const double v_[3], const double a[3], double min, double out[3])
{
    double v[3] = {v_[0], v_[1], v_[2]};
    unit(v);
    double k = dot(v, a);
    for (int r = 0; r < 3; r++)
        out[r] = v[r] - k * a[r];
    double n = sqrt(dot(out, out));
    if (n < min || n < 1e-6)
        return 0;
    for (int r = 0; r < 3; r++)
        out[r] /= n;
    return 1;
}

typedef struct group {
    const r3d_airway_tree *t;
    double origin[3], axis[3];
    const seg_proto *p;
    int np;
    int maxdepth;
    /* the cut being tried */
    int cand[MAXC], depth[MAXC], nc;
    double cs[MAXC][MAXP]; /* cos of each candidate to each segment, -2 unusable */
    /* best so far */
    int best_n;
    double best_s;
    int best_nc, best_cand[MAXC], best_as[MAXC];
} group;

static void candidate_cos(group *g, int i)
{
    double v[3], va[3];
    ends_dir(g->t, g->cand[i], g->origin, v);
    int ok = across(v, g->axis, ACROSS_MIN, va);
    for (int q = 0; q < g->np; q++) {
        /* a segment's typical direction may lie near the axis (the left
         * lateral basal along a basal trunk that leans lateral): its
         * direction across is still the one to compare with */
        double pa[3];
        g->cs[i][q] = ok && across(g->p[q].d, g->axis, 0, pa) ? dot(va, pa) : -2;
    }
}

/* Confident: within NAME_COS of segment q and NAME_MARGIN nearer it than
 * any other segment of the group. */
static int confident(const group *g, int i, int q)
{
    if (g->cs[i][q] < NAME_COS)
        return 0;
    for (int o = 0; o < g->np; o++)
        if (o != q && g->cs[i][o] > g->cs[i][q] - NAME_MARGIN)
            return 0;
    return 1;
}

/* Every one-to-one assignment of the current cut's candidates to segments
 * (or to none); candidates that came from expanding a branch must all be
 * named, but for one running on along the axis (an expansion is only
 * believed when each piece that leaves the axis is a segment). */
static void assign(group *g, int i, int *as, int used, int n, double s)
{
    if (i == g->nc) {
        if (n > g->best_n || (n == g->best_n && s > g->best_s + 1e-9) ||
            (n == g->best_n && fabs(s - g->best_s) <= 1e-9 && g->nc < g->best_nc)) {
            g->best_n = n, g->best_s = s, g->best_nc = g->nc;
            memcpy(g->best_cand, g->cand, sizeof g->cand);
            memcpy(g->best_as, as, sizeof g->best_as);
        }
        return;
    }
    for (int q = 0; q < g->np; q++)
        if (!(used & (1 << q)) && confident(g, i, q)) {
            as[i] = q;
            assign(g, i + 1, as, used | (1 << q), n + 1, s + g->cs[i][q]);
        }
    /* unnamed: a candidate of the group's own cut, or a piece of an
     * expanded branch that runs on along the group's axis (no direction
     * across it to tell; the trunk's continuation) */
    if (g->depth[i] == 0 || g->cs[i][0] == -2) {
        as[i] = -1;
        assign(g, i + 1, as, used, n, s);
    }
}

/* Every cut: from candidate i on, keep it or replace it by its children. */
static void cuts(group *g, int i)
{
    if (i == g->nc) {
        if (g->nc > MAXC)
            return;
        for (int k = 0; k < g->nc; k++)
            candidate_cos(g, k);
        int as[MAXC];
        assign(g, 0, as, 0, 0, 0);
        return;
    }
    cuts(g, i + 1);
    if (g->depth[i] >= g->maxdepth)
        return;
    int c[MAXC], n = children(g->t, g->cand[i], c, MAXC);
    if (n < 2 || g->nc - 1 + n > MAXC || g->nc - 1 + n > g->np)
        return;
    group saved = *g;
    int d = g->depth[i];
    /* replace candidate i by the children, in place and at the end */
    g->cand[i] = c[0], g->depth[i] = d + 1;
    for (int k = 1; k < n; k++)
        g->cand[g->nc] = c[k], g->depth[g->nc] = d + 1, g->nc++;
    cuts(g, i);
    int bn = g->best_n, bnc = g->best_nc, bc[MAXC], ba[MAXC];
    double bs = g->best_s;
    memcpy(bc, g->best_cand, sizeof bc), memcpy(ba, g->best_as, sizeof ba);
    *g = saved;
    g->best_n = bn, g->best_s = bs, g->best_nc = bnc;
    memcpy(g->best_cand, bc, sizeof bc), memcpy(g->best_as, ba, sizeof ba);
}

/* The one segment left over: when the chosen cut has as many branches
 * as the group has segments and all but one carry a confident name, the
 * last branch is the last segment - the division has exactly its
 * expected bronchi, so the name follows by elimination, not from the
 * branch's own direction (across the axis it may have none: the inferior
 * lingular and the middle lobe's medial bronchus often run on in the line
 * of their parent). Still withheld unless the branch's own 3D direction
 * is nearer that segment's typical one than any named segment's (a
 * duplicate of a named segment is not renamed). */
static void complete(group *g)
{
    if (g->best_n != g->np - 1 || g->best_nc != g->np)
        return;
    /* np - 1 of the np branches carry distinct names (assign names one
     * to one): exactly one branch, left, and one segment, q, remain */
    int left = -1, used = 0;
    for (int i = 0; i < g->best_nc; i++) {
        if (g->best_as[i] >= 0)
            used |= 1 << g->best_as[i];
        else
            left = i;
    }
    int q = -1;
    for (int o = 0; o < g->np; o++)
        if (!(used & (1 << o)))
            q = o;
    double v[3];
    ends_dir(g->t, g->best_cand[left], g->origin, v);
    double c[MAXP];
    for (int o = 0; o < g->np; o++) {
        double p[3] = {g->p[o].d[0], g->p[o].d[1], g->p[o].d[2]};
        unit(p);
        c[o] = dot(v, p);
    }
    for (int o = 0; o < g->np; o++)
        if (o != q && c[o] >= c[q])
            return;
    g->best_as[left] = q;
    g->best_n++;
}

/* Name the segmental bronchi below branch root (whose end is the group's
 * bifurcation), leaving out branch skip (-1: none). */
static void name_group(r3d_airway_tree *t, int root, int skip, const seg_proto *p, int np,
                       int maxdepth)
{
    if (root < 0)
        return;
    group g;
    memset(&g, 0, sizeof g);
    g.t = t, g.p = p, g.np = np, g.maxdepth = maxdepth;
    memcpy(g.origin, t->b[root].end, sizeof g.origin);
    dir(t, root, g.axis);
    int c[MAXC], n = children(t, root, c, MAXC);
    for (int i = 0; i < n; i++)
        if (c[i] != skip && g.nc < MAXC)
            g.cand[g.nc] = c[i], g.depth[g.nc] = 0, g.nc++;
    if (g.nc == 0)
        return;
    g.best_n = -1;
    cuts(&g, 0);
    complete(&g);
    for (int i = 0; i < g.best_nc && g.best_n > 0; i++)
        if (g.best_as[i] >= 0)
            name(t, g.best_cand[i], p[g.best_as[i]].name);
}

/* Typical directions (LPS unit-ish vectors; normalised where used). */
static const seg_proto k_rul[] = {{"RB1", {0, 0, 1}},
                                  {"RB2", {-0.3, 0.9, 0.3}},
                                  {"RB3", {-0.3, -0.9, -0.1}}};
static const seg_proto k_rml[] = {{"RB4", {-0.9, -0.3, -0.3}}, {"RB5", {0.3, -0.7, -0.6}}};
static const seg_proto k_rbasal[] = {{"RB7", {0.6, -0.1, -0.8}},
                                     {"RB8", {-0.3, -0.6, -0.75}},
                                     {"RB9", {-0.6, 0.2, -0.75}},
                                     {"RB10", {-0.1, 0.6, -0.8}}};
static const seg_proto k_lupper[] = {{"LB1+2", {0.1, 0.5, 0.85}}, {"LB3", {0.2, -0.95, 0.1}}};
static const seg_proto k_lingula[] = {{"LB4", {0.7, -0.6, 0.1}}, {"LB5", {-0.1, -0.5, -0.85}}};
static const seg_proto k_lul[] = {{"LB1+2", {0.1, 0.5, 0.85}},
                                  {"LB3", {0.2, -0.95, 0.1}},
                                  {"LB4", {0.7, -0.6, 0.1}},
                                  {"LB5", {-0.1, -0.5, -0.85}}};
static const seg_proto k_lbasal[] = {{"LB7+8", {-0.3, -0.6, -0.75}},
                                     {"LB9", {0.6, 0.2, -0.75}},
                                     {"LB10", {0.1, 0.6, -0.8}}};
#define NP(a) ((int)(sizeof a / sizeof a[0]))

/* The superior segmental bronchus among a lower-lobe bronchus's (or the
 * intermedius's) children: the one running posterior across the parent's
 * axis, clearly more than any sibling; -1 when none does. */
static int superior_segment(const r3d_airway_tree *t, int parent, const int *c, int n, int skip)
{
    static const double post[3] = {0, 0.95, 0.3};
    double a[3], pa[3];
    dir(t, parent, a);
    if (!across(post, a, 0, pa))
        return -1;
    int best = -1;
    double bv = -2, second = -2;
    for (int i = 0; i < n; i++) {
        if (c[i] == skip)
            continue;
        double v[3], va[3];
        ends_dir(t, c[i], t->b[parent].end, v);
        double cv = across(v, a, ACROSS_MIN, va) ? dot(va, pa) : -2;
        /* the superior segment runs backwards, not down like the basal trunk */
        if (v[2] < -0.6)
            cv = -2;
        if (cv > bv)
            second = bv, bv = cv, best = c[i];
        else if (cv > second)
            second = cv;
    }
    return bv >= NAME_COS && bv - second >= NAME_MARGIN ? best : -1;
}

/* A lower lobe: its superior segment, then the basal segments from the
 * basal trunk (the one other child) or, with several others, from the
 * lobar bronchus itself. */
static void name_lower(r3d_airway_tree *t, int lobe, const char *b6, const seg_proto *basal,
                       int nbasal, int have_b6)
{
    if (lobe < 0)
        return;
    int c[MAXC] = {0}, n = children(t, lobe, c, MAXC);
    int s6 = have_b6 >= 0 ? -1 : superior_segment(t, lobe, c, n, -1);
    name(t, s6, b6);
    int rest[MAXC], nr = 0;
    for (int i = 0; i < n; i++)
        if (c[i] != s6)
            rest[nr++] = c[i];
    if (nr == 1) /* the basal trunk */
        name_group(t, rest[0], -1, basal, nbasal, 3);
    else if (nr >= 2)
        name_group(t, lobe, s6, basal, nbasal, 3);
}

void r3d_airway_tree_name(r3d_airway_tree *t)
{
    if (!t || t->n == 0)
        return;
    for (int i = 0; i < t->n; i++)
        t->b[i].name[0] = 0;
    int root = 0;
    name(t, root, "trachea");
    int c[16], n = children(t, root, c, 16);
    if (n < 2)
        return;
    const double UP[3] = {0, 0, 1}, ANT[3] = {0, -1, 0};
    /* Main bronchi: by where they end, left-most and right-most. */
    int lmb = -1, rmb = -1;
    double xl = -1e9, xr = 1e9;
    for (int i = 0; i < n; i++) {
        double x = t->b[c[i]].end[0];
        if (x > xl)
            xl = x, lmb = c[i];
        if (x < xr)
            xr = x, rmb = c[i];
    }
    if (lmb == rmb)
        return;
    name(t, lmb, "LMB");
    name(t, rmb, "RMB");

    int rc[16], nr = children(t, rmb, rc, 16);
    if (nr >= 2) {
        int rul = extreme(t, rc, nr, UP);
        name(t, rul, "RUL");
        name_group(t, rul, -1, k_rul, NP(k_rul), 2);
        int bi = -1;
        int64_t bv = -1;
        for (int i = 0; i < nr; i++)
            if (rc[i] != rul && subtree_voxels(t, rc[i]) > bv)
                bv = subtree_voxels(t, rc[i]), bi = rc[i];
        if (nr == 2) {
            name(t, bi, "BI");
            int ic[16], ni = children(t, bi, ic, 16);
            if (ni >= 2) {
                int rml = extreme(t, ic, ni, ANT);
                name(t, rml, "RML");
                name_group(t, rml, -1, k_rml, NP(k_rml), 2);
                int b6 = -1;
                if (ni == 3) /* RB6 leaving the intermedius beside the middle lobe */
                    name(t, b6 = superior_segment(t, bi, ic, ni, rml), "RB6");
                if (ni == 2 || (ni == 3 && b6 >= 0)) {
                    int rll = -1;
                    for (int i = 0; i < ni; i++)
                        if (ic[i] != rml && ic[i] != b6)
                            rll = ic[i];
                    name(t, rll, "RLL");
                    name_lower(t, rll, "RB6", k_rbasal, NP(k_rbasal), b6);
                }
            }
        }
    }
    int lc[16], nl = children(t, lmb, lc, 16);
    if (nl == 2) {
        int lul = extreme(t, lc, 2, UP);
        int lll = lc[0] == lul ? lc[1] : lc[0];
        name(t, lul, "LUL");
        name(t, lll, "LLL");
        /* Upper lobe: an upper division (upwards) and the lingula (lower),
         * or the four segments at once. */
        int uc[16], nu = children(t, lul, uc, 16);
        if (nu == 2) {
            double d0[3], d1[3];
            dir(t, uc[0], d0), dir(t, uc[1], d1);
            int up = d0[2] >= d1[2] ? uc[0] : uc[1], ling = up == uc[0] ? uc[1] : uc[0];
            double du[3], dl[3];
            dir(t, up, du), dir(t, ling, dl);
            if (du[2] - dl[2] > 0.3) {
                name_group(t, up, -1, k_lupper, NP(k_lupper), 2);
                name_group(t, ling, -1, k_lingula, NP(k_lingula), 2);
            }
        } else if (nu > 2)
            name_group(t, lul, -1, k_lul, NP(k_lul), 1);
        name_lower(t, lll, "LB6", k_lbasal, NP(k_lbasal), -1);
    }
}

/* airway_names.c - anatomical names of the main, lobar and (where the
 * directions tell) segmental bronchi, from the branches' directions in the
 * patient frame (LPS: +x the patient's left, +y posterior, +z superior).
 *
 * trachea -> two main bronchi (the more leftward is the left one); the
 * right main bronchus -> the upper-lobe bronchus (the most upward child)
 * and the bronchus intermedius; the intermedius -> the middle-lobe bronchus
 * (the most anterior child) and the lower-lobe bronchus; the left main
 * bronchus -> upper (the most upward) and lower lobe bronchi. Segmental
 * names are given only where a lobar bronchus has exactly the children the
 * anatomy expects (right upper: apical RB1 up, posterior RB2, anterior RB3;
 * middle: lateral RB4, medial RB5). Anything else stays unnamed rather
 * than guessed. */
#include "r3d/analysis.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void dir(const r3d_airway_tree *t, int b, double d[3])
{
    const r3d_airway_branch *x = &t->b[b];
    const double *from = x->start;
    if (x->parent >= 0)
        from = t->b[x->parent].end;
    double n = 0;
    for (int r = 0; r < 3; r++) {
        d[r] = x->end[r] - from[r];
        n += d[r] * d[r];
    }
    n = sqrt(n);
    for (int r = 0; r < 3; r++)
        d[r] = n > 0 ? d[r] / n : 0;
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
        double v = s[0] * d[0] + s[1] * d[1] + s[2] * d[2];
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

static void name(r3d_airway_tree *t, int b, const char *s)
{
    if (b >= 0)
        snprintf(t->b[b].name, sizeof t->b[b].name, "%s", s);
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
    const double LEFT[3] = {1, 0, 0}, RIGHT[3] = {-1, 0, 0}, UP[3] = {0, 0, 1},
                 ANT[3] = {0, -1, 0}, POST[3] = {0, 1, 0};
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
                if (ni == 2)
                    name(t, ic[0] == rml ? ic[1] : ic[0], "RLL");
                int mc[16], nm = children(t, rml, mc, 16);
                if (nm == 2) {
                    int b4 = extreme(t, mc, 2, RIGHT);
                    name(t, b4, "RB4");
                    name(t, mc[0] == b4 ? mc[1] : mc[0], "RB5");
                }
            }
        }
        int uc[16], nu = children(t, rul, uc, 16);
        if (nu == 3) {
            int b1 = extreme(t, uc, 3, UP);
            int rest[2], k = 0;
            for (int i = 0; i < 3; i++)
                if (uc[i] != b1)
                    rest[k++] = uc[i];
            int b2 = extreme(t, rest, 2, POST);
            name(t, b1, "RB1");
            name(t, b2, "RB2");
            name(t, rest[0] == b2 ? rest[1] : rest[0], "RB3");
        }
    }
    int lc[16], nl = children(t, lmb, lc, 16);
    if (nl == 2) {
        int lul = extreme(t, lc, 2, UP);
        name(t, lul, "LUL");
        name(t, lc[0] == lul ? lc[1] : lc[0], "LLL");
    }
    (void)LEFT;
}

/* obj_load.c - Wavefront OBJ reader (geometry, objects, material colours).
 *
 * Read: "v x y z" (extra values such as vertex colours ignored), "f" with
 * any of the forms i, i/t, i//n, i/t/n, negative (relative) indices, and
 * polygons of any size, fan-triangulated from their first corner. "o" and
 * "g" name objects: a new mesh starts when the name changes after faces
 * were read (our files say "o X" then "g X" for the same object). Each mesh
 * gets only the vertices its faces use, renumbered in first-use order.
 * "usemtl" gives the current mesh the Kd colour of a material from the
 * "mtllib" files, looked up in the OBJ's folder or below it (absolute
 * names and ".." are skipped, as a missing library is: no colours). Everything else (vt, vn, s, l, curves) is
 * skipped, except a comment saying "frame RAS" (our header), which sets
 * the frame of every mesh (LPS otherwise). Lines are split in place (the buffer is ours), so number parsing
 * can never run into the next line.
 */
#include "mesh_io.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct material {
    char name[64];
    uint8_t rgb[3];
} material;

typedef struct obj_state {
    const char *name;
    const char *dir;
    float *v; /* global vertices */
    int64_t nv, cap_v;
    uint32_t *local; /* global vertex -> index in the current mesh */
    int32_t *owner;  /* which mesh local[] belongs to, -1 none */
    int64_t cap_map;
    int cur_id;
    r3d_frame frame; /* RAS when a comment says "frame RAS", as ours do */
    r3d_mesh *cur;
    r3d_scene tmp;
    material *mat;
    int nmat, cap_mat;
    int64_t *poly;
    size_t cap_poly;
    r3d_error *err;
} obj_state;

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = 0;
    return s;
}

static void set_name(char dst[64], const char *src)
{
    snprintf(dst, 64, "%s", src);
}

static r3d_status push_current(obj_state *S)
{
    if (!S->cur)
        return R3D_OK;
    r3d_mesh *m = S->cur;
    S->cur = NULL;
    m->frame = S->frame;
    if (m->nt == 0) {
        r3d_mesh_free(m);
        return R3D_OK;
    }
    r3d_status st = r3d_scene_add(&S->tmp, m, S->err);
    if (st != R3D_OK)
        r3d_mesh_free(m);
    return st;
}

static r3d_status new_mesh(obj_state *S, const char *name)
{
    r3d_status st = push_current(S);
    if (st != R3D_OK)
        return st;
    if (!(S->cur = r3d_mesh_new(S->err)))
        return R3D_ENOMEM;
    set_name(S->cur->name, name);
    S->cur->rgb[0] = S->cur->rgb[1] = S->cur->rgb[2] = 200;
    S->cur_id++;
    return R3D_OK;
}

static r3d_status parse_mtl(obj_state *S, char *buf, size_t size, const char *lib)
{
    for (size_t i = 0; i < size; i++)
        if (buf[i] == '\n')
            buf[i] = 0;
        else if (buf[i] == '\r')
            buf[i] = ' '; /* CRLF files: trim() drops it, lines still count once */
    material *cur = NULL;
    for (char *p = buf; p < buf + size; p += strlen(p) + 1) {
        char *line = trim(p);
        if (strncmp(line, "newmtl", 6) == 0 && (line[6] == ' ' || line[6] == '\t')) {
            if (S->nmat == S->cap_mat) {
                int cap = S->cap_mat ? 2 * S->cap_mat : 16;
                material *n = realloc(S->mat, (size_t)cap * sizeof *n);
                if (!n)
                    return r3d_fail(S->err, R3D_ENOMEM, "%s: out of memory", lib);
                S->mat = n;
                S->cap_mat = cap;
            }
            cur = &S->mat[S->nmat++];
            set_name(cur->name, trim(line + 7));
            cur->rgb[0] = cur->rgb[1] = cur->rgb[2] = 200;
        } else if (cur && line[0] == 'K' && line[1] == 'd' && (line[2] == ' ' || line[2] == '\t')) {
            char *q = line + 3;
            for (int j = 0; j < 3; j++) {
                char *e;
                double d = strtod(q, &e);
                if (e == q || !isfinite(d))
                    return r3d_fail(S->err, R3D_EFORMAT, "%s: Kd of material '%s' needs 3 numbers",
                                    lib, cur->name);
                d = d < 0 ? 0 : d > 1 ? 1 : d;
                cur->rgb[j] = (uint8_t)lround(d * 255.0);
                q = e;
            }
        }
    }
    return R3D_OK;
}

static r3d_status load_mtllib(obj_state *S, char *names)
{
    if (!S->dir)
        return R3D_OK;
    char *save = NULL;
    for (char *tok = strtok_r(names, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        /* only below the OBJ's folder: an absolute or ".." name is skipped
         * like a missing library (the model loads without its colours) */
        if (tok[0] == '/' || strstr(tok, ".."))
            continue;
        char path[4352];
        snprintf(path, sizeof path, "%s/%s", S->dir, tok);
        uint8_t *b;
        size_t n;
        r3d_error e2 = R3D_ERROR_INIT;
        /* a missing library only costs the colours, as in every viewer */
        if (r3d_file_read_all(path, &b, &n, &e2) != R3D_OK)
            continue;
        r3d_status st = parse_mtl(S, (char *)b, n, path);
        free(b);
        if (st != R3D_OK)
            return st;
    }
    return R3D_OK;
}

static r3d_status add_vertex(obj_state *S, char *q, int line)
{
    float p[3];
    for (int j = 0; j < 3; j++) {
        char *e;
        double d = strtod(q, &e);
        if (e == q || !isfinite(d) || fabs(d) > 3.4e38)
            return r3d_fail(S->err, R3D_EFORMAT, "%s:%d: 'v' needs 3 finite numbers", S->name,
                            line);
        p[j] = (float)d;
        q = e;
    }
    if (S->nv >= (int64_t)UINT32_MAX)
        return r3d_fail(S->err, R3D_EUNSUPPORTED, "%s:%d: more than 2^32 vertices", S->name,
                        line);
    if (S->nv == S->cap_v) {
        int64_t cap = S->cap_v ? 2 * S->cap_v : 4096;
        float *n = realloc(S->v, (size_t)cap * 3 * sizeof *n);
        if (!n)
            return r3d_fail(S->err, R3D_ENOMEM, "%s: out of memory", S->name);
        S->v = n;
        S->cap_v = cap;
    }
    memcpy(S->v + 3 * S->nv++, p, sizeof p);
    return R3D_OK;
}

/* Index of global vertex g in the current mesh, adding it on first use. */
static int64_t use_vertex(obj_state *S, int64_t g)
{
    if (g >= S->cap_map) {
        int64_t cap = S->cap_map ? S->cap_map : 4096;
        while (cap <= g)
            cap *= 2;
        uint32_t *l = realloc(S->local, (size_t)cap * sizeof *l);
        if (!l)
            return -1;
        S->local = l;
        int32_t *o = realloc(S->owner, (size_t)cap * sizeof *o);
        if (!o)
            return -1;
        S->owner = o;
        for (int64_t i = S->cap_map; i < cap; i++)
            o[i] = -1;
        S->cap_map = cap;
    }
    if (S->owner[g] == S->cur_id)
        return S->local[g];
    const float *p = S->v + 3 * g;
    int64_t idx = r3d_mesh_add_vertex(S->cur, p[0], p[1], p[2]);
    if (idx < 0)
        return -1;
    S->owner[g] = S->cur_id;
    S->local[g] = (uint32_t)idx;
    return idx;
}

static r3d_status add_face(obj_state *S, char *q, int line)
{
    size_t n = 0;
    for (;;) {
        while (*q == ' ' || *q == '\t')
            q++;
        if (!*q)
            break;
        char *e;
        errno = 0;
        long long i = strtoll(q, &e, 10);
        if (e == q || errno)
            return r3d_fail(S->err, R3D_EFORMAT, "%s:%d: face corner '%.20s' is not an index",
                            S->name, line, q);
        int64_t g = i > 0 ? i - 1 : S->nv + i;
        if (i == 0 || g < 0 || g >= S->nv)
            return r3d_fail(S->err, R3D_EFORMAT,
                            "%s:%d: face index %lld out of range (%lld vertices so far)",
                            S->name, line, i, (long long)S->nv);
        while (*e && *e != ' ' && *e != '\t') /* /t/n parts */
            e++;
        q = e;
        if (n == S->cap_poly) {
            size_t cap = S->cap_poly ? 2 * S->cap_poly : 16;
            int64_t *p = realloc(S->poly, cap * sizeof *p);
            if (!p)
                return r3d_fail(S->err, R3D_ENOMEM, "%s: out of memory", S->name);
            S->poly = p;
            S->cap_poly = cap;
        }
        S->poly[n++] = g;
    }
    if (n < 3)
        return r3d_fail(S->err, R3D_EFORMAT, "%s:%d: face with %zu corners, needs 3", S->name,
                        line, n);
    if (!S->cur) {
        r3d_status st = new_mesh(S, "");
        if (st != R3D_OK)
            return st;
    }
    int64_t first = use_vertex(S, S->poly[0]), prev = use_vertex(S, S->poly[1]);
    for (size_t k = 2; k < n && first >= 0 && prev >= 0; k++) {
        int64_t c = use_vertex(S, S->poly[k]);
        if (c < 0 || !r3d_mesh_add_triangle(S->cur, (uint32_t)first, (uint32_t)prev, (uint32_t)c))
            return r3d_fail(S->err, R3D_ENOMEM, "%s: out of memory", S->name);
        prev = c;
    }
    if (first < 0 || prev < 0)
        return r3d_fail(S->err, R3D_ENOMEM, "%s: out of memory", S->name);
    return R3D_OK;
}

static int keyword(const char *line, const char *kw)
{
    size_t n = strlen(kw);
    return strncmp(line, kw, n) == 0 && (line[n] == ' ' || line[n] == '\t' || !line[n]);
}

r3d_status r3d__obj_load_mem(char *buf, size_t size, const char *name, const char *dir,
                             r3d_scene *out, r3d_error *err)
{
    obj_state S = {0};
    S.name = name;
    S.dir = dir;
    S.err = err;
    for (size_t i = 0; i < size; i++)
        if (buf[i] == '\n')
            buf[i] = 0;
        else if (buf[i] == '\r')
            buf[i] = ' '; /* CRLF files: trim() drops it, lines still count once */
    r3d_status st = R3D_OK;
    int line = 0;
    /* lines end at a NUL (ours or one in the file); count only real ends */
    for (char *p = buf; p < buf + size && st == R3D_OK; p += strlen(p) + 1) {
        line++;
        char *l = trim(p);
        if (l[0] == 'v' && (l[1] == ' ' || l[1] == '\t'))
            st = add_vertex(&S, l + 2, line);
        else if (l[0] == 'f' && (l[1] == ' ' || l[1] == '\t'))
            st = add_face(&S, l + 2, line);
        else if (l[0] == '#' && strstr(l, "frame RAS"))
            S.frame = R3D_FRAME_RAS;
        else if (keyword(l, "o") || keyword(l, "g")) {
            const char *nm = trim(l + 1);
            if (!S.cur)
                st = new_mesh(&S, nm);
            else if (S.cur->nt == 0)
                set_name(S.cur->name, nm);
            else if (strncmp(S.cur->name, nm, sizeof S.cur->name - 1) != 0)
                st = new_mesh(&S, nm);
        } else if (keyword(l, "usemtl")) {
            const char *mn = trim(l + 6);
            if (!S.cur)
                st = new_mesh(&S, "");
            for (int i = 0; st == R3D_OK && i < S.nmat; i++)
                if (strncmp(S.mat[i].name, mn, sizeof S.mat[i].name - 1) == 0) {
                    memcpy(S.cur->rgb, S.mat[i].rgb, 3);
                    break;
                }
        } else if (keyword(l, "mtllib")) {
            st = load_mtllib(&S, l + 6);
        }
    }
    if (st == R3D_OK)
        st = push_current(&S);
    if (st == R3D_OK && S.tmp.n == 0)
        st = r3d_fail(err, R3D_EDATA, "%s: OBJ with no faces (%lld vertices)", name,
                      (long long)S.nv);
    r3d_mesh_free(S.cur);
    free(S.v);
    free(S.local);
    free(S.owner);
    free(S.mat);
    free(S.poly);
    if (st != R3D_OK) {
        r3d_scene_clear(&S.tmp);
        return st;
    }
    int added = 0;
    for (; added < S.tmp.n; added++)
        if (r3d_scene_add(out, S.tmp.m[added], err) != R3D_OK)
            break;
    if (added < S.tmp.n) {
        out->n -= added; /* out as it was; tmp still owns every mesh */
        r3d_scene_clear(&S.tmp);
        return R3D_ENOMEM;
    }
    free(S.tmp.m);
    return R3D_OK;
}

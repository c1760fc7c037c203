/* ply_load.c - PLY reader: ascii, binary little and big endian.
 *
 * The header is parsed into elements and properties of any of the eight
 * PLY types; every element is then read record by record (unknown elements
 * and properties are read and dropped, which is the only way to step over
 * them). From "vertex" we take x y z (float or double) and red green blue
 * (uchar, or float 0..1); from "face" the list "vertex_indices" (or
 * "vertex_index"), polygons fan-triangulated. Before allocating, every
 * count is checked against the bytes left (a record needs at least its
 * fixed-size bytes in binary, one character per value in ascii).
 *
 * One mesh per file, its colour that of its first vertex, unless the header
 * lists our "comment r3d_object <triangles> <name>" lines that add up to the
 * face count: then the faces are split back into the named objects.
 */
#include "mesh_io.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T_NONE, T_I8, T_U8, T_I16, T_U16, T_I32, T_U32, T_F32, T_F64 };
static const int k_size[] = {0, 1, 1, 2, 2, 4, 4, 4, 8};

enum { MAX_ELEM = 16, MAX_PROP = 64, MAX_OBJ = 4096 };

typedef struct prop {
    char name[64];
    int type;       /* value type */
    int count_type; /* list count type, T_NONE for scalars */
} prop;

typedef struct elem {
    char name[64];
    int64_t count;
    prop p[MAX_PROP];
    int np;
} elem;

typedef struct reader {
    const unsigned char *p, *end;
    int format; /* 0 ascii, 1 little, 2 big endian */
    const char *name;
    r3d_error *err;
} reader;

static int type_of(const char *s)
{
    static const struct {
        const char *n;
        int t;
    } k[] = {{"char", T_I8},     {"int8", T_I8},     {"uchar", T_U8},   {"uint8", T_U8},
             {"short", T_I16},   {"int16", T_I16},   {"ushort", T_U16}, {"uint16", T_U16},
             {"int", T_I32},     {"int32", T_I32},   {"uint", T_U32},   {"uint32", T_U32},
             {"float", T_F32},   {"float32", T_F32}, {"double", T_F64}, {"float64", T_F64}};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (strcmp(s, k[i].n) == 0)
            return k[i].t;
    return T_NONE;
}

/* One value; 0 on truncation or a malformed ascii number. */
static int read_value(reader *R, int type, double *out)
{
    if (R->format == 0) {
        const char *q = (const char *)R->p;
        while (q < (const char *)R->end && isspace((unsigned char)*q))
            q++;
        if (q >= (const char *)R->end)
            return 0;
        char *e;
        double d = strtod(q, &e);
        if (e == q || (const unsigned char *)e > R->end)
            return 0;
        R->p = (const unsigned char *)e;
        *out = d;
        return 1;
    }
    int n = k_size[type];
    if (R->end - R->p < n)
        return 0;
    unsigned char b[8];
    for (int i = 0; i < n; i++)
        b[i] = R->format == 1 ? R->p[i] : R->p[n - 1 - i];
    R->p += n;
    uint64_t u = 0;
    for (int i = n - 1; i >= 0; i--)
        u = u << 8 | b[i];
    switch (type) {
    case T_I8: *out = (int8_t)u; break;
    case T_U8: *out = (uint8_t)u; break;
    case T_I16: *out = (int16_t)u; break;
    case T_U16: *out = (uint16_t)u; break;
    case T_I32: *out = (int32_t)u; break;
    case T_U32: *out = (uint32_t)u; break;
    case T_F32: {
        uint32_t w = (uint32_t)u;
        float f;
        memcpy(&f, &w, 4);
        *out = f;
        break;
    }
    default: {
        double d;
        memcpy(&d, &u, 8);
        *out = d;
    }
    }
    return 1;
}

typedef struct objinfo {
    int64_t nt;
    char name[64];
} objinfo;

static r3d_status parse_header(char *buf, size_t size, const char *name, elem *el, int *nel,
                               int *format, size_t *body, r3d_mesh *m, objinfo *obj, int *nobj)
{
    char *endh = NULL;
    for (char *q = buf; q + 10 <= buf + size; q++) {
        q = memchr(q, 'e', (size_t)(buf + size - q));
        if (!q)
            break;
        if ((q == buf || q[-1] == '\n') && strncmp(q, "end_header", 10) == 0) {
            endh = q;
            break;
        }
    }
    if (!endh)
        return R3D_EFORMAT;
    char *after = endh + 10;
    if (after < buf + size && *after == '\r')
        after++;
    if (after < buf + size && *after == '\n')
        after++;
    else if (after < buf + size)
        return R3D_EFORMAT;
    *body = (size_t)(after - buf);
    *endh = 0;
    *format = -1;
    *nel = 0;
    *nobj = 0;
    int bad = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line && !bad; line = strtok_r(NULL, "\n", &save)) {
        size_t n = strlen(line);
        if (n && line[n - 1] == '\r')
            line[--n] = 0;
        char w[5][64];
        int nw = 0;
        const char *q = line;
        while (nw < 5) {
            int used = 0;
            if (sscanf(q, "%63s%n", w[nw], &used) != 1)
                break;
            q += used;
            nw++;
        }
        if (nw == 0 || strcmp(w[0], "ply") == 0 || strcmp(w[0], "obj_info") == 0)
            continue;
        if (strcmp(w[0], "comment") == 0) {
            long long cnt;
            int used = 0;
            if (strstr(line, "frame RAS"))
                m->frame = R3D_FRAME_RAS;
            if (nw >= 3 && strcmp(w[1], "r3d_object") == 0 && *nobj < MAX_OBJ &&
                sscanf(line, " comment r3d_object %lld %n", &cnt, &used) == 1 && used > 0 &&
                cnt >= 0) {
                obj[*nobj].nt = cnt;
                snprintf(obj[*nobj].name, sizeof obj[*nobj].name, "%s", line + used);
                (*nobj)++;
            }
        } else if (strcmp(w[0], "format") == 0 && nw >= 2) {
            *format = strcmp(w[1], "ascii") == 0                  ? 0
                      : strcmp(w[1], "binary_little_endian") == 0 ? 1
                      : strcmp(w[1], "binary_big_endian") == 0    ? 2
                                                                   : -2;
        } else if (strcmp(w[0], "element") == 0 && nw >= 3) {
            if (*nel == MAX_ELEM)
                return R3D_EUNSUPPORTED;
            elem *e = &el[(*nel)++];
            memset(e, 0, sizeof *e);
            snprintf(e->name, sizeof e->name, "%s", w[1]);
            char *end;
            errno = 0;
            long long c = strtoll(w[2], &end, 10);
            if (*end || errno || c < 0)
                bad = 1;
            e->count = c;
        } else if (strcmp(w[0], "property") == 0 && nw >= 3 && *nel > 0) {
            elem *e = &el[*nel - 1];
            if (e->np == MAX_PROP)
                return R3D_EUNSUPPORTED;
            prop *p = &e->p[e->np++];
            if (strcmp(w[1], "list") == 0) {
                if (nw < 5)
                    bad = 1;
                else {
                    p->count_type = type_of(w[2]);
                    p->type = type_of(w[3]);
                    snprintf(p->name, sizeof p->name, "%s", w[4]);
                    if (!p->count_type || !p->type || p->count_type == T_F32 ||
                        p->count_type == T_F64)
                        bad = 1;
                }
            } else {
                p->type = type_of(w[1]);
                snprintf(p->name, sizeof p->name, "%s", w[2]);
                if (!p->type)
                    bad = 1;
            }
        } else {
            bad = 1;
        }
    }
    if (bad || *format < 0)
        return R3D_EFORMAT;
    return R3D_OK;
}

static r3d_status fail_at(reader *R, const char *what, int64_t rec)
{
    return r3d_fail(R->err, R3D_EFORMAT, "%s: PLY data ends or is malformed in %s %lld",
                    R->name, what, (long long)rec);
}

r3d_status r3d__ply_load_mem(char *buf, size_t size, const char *name, r3d_scene *out,
                             r3d_error *err)
{
    elem *el = calloc(MAX_ELEM, sizeof *el);
    objinfo *obj = calloc(MAX_OBJ, sizeof *obj);
    r3d_mesh *m = r3d_mesh_new(err);
    double *list = NULL;
    uint8_t *vrgb = NULL; /* per-vertex colours, when the file has them */
    r3d_status st = R3D_OK;
    if (!el || !obj || !m) {
        st = r3d_fail(err, R3D_ENOMEM, "%s: out of memory", name);
        goto done;
    }
    int nel, format, nobj;
    size_t body;
    if (size < 4 || memcmp(buf, "ply", 3) != 0) {
        st = r3d_fail(err, R3D_EFORMAT, "%s: not a PLY file (no 'ply' magic)", name);
        goto done;
    }
    st = parse_header(buf, size, name, el, &nel, &format, &body, m, obj, &nobj);
    if (st != R3D_OK) {
        st = r3d_fail(err, st, "%s: PLY header %s", name,
                      st == R3D_EUNSUPPORTED ? "has too many elements or properties"
                                             : "is malformed or has no end_header");
        goto done;
    }
    reader R = {(const unsigned char *)buf + body, (const unsigned char *)buf + size, format,
                name, err};
    int have_v = 0, have_f = 0;
    int64_t nv = 0;
    for (int e = 0; e < nel && st == R3D_OK; e++) {
        elem *E = &el[e];
        int is_v = strcmp(E->name, "vertex") == 0, is_f = strcmp(E->name, "face") == 0;
        /* the least bytes a record can take: distrust the count */
        size_t minrec = 0;
        for (int k = 0; k < E->np; k++)
            minrec += format == 0 ? 1 : (size_t)k_size[E->p[k].count_type ? E->p[k].count_type
                                                                          : E->p[k].type];
        size_t left = (size_t)(R.end - R.p);
        if (E->count > 0 && (minrec == 0 || (uint64_t)E->count > left / minrec)) {
            st = r3d_fail(err, R3D_EFORMAT,
                          "%s: PLY element '%s' counts %lld records but only %zu bytes follow",
                          name, E->name, (long long)E->count, left);
            break;
        }
        int ix[6] = {-1, -1, -1, -1, -1, -1}, fi = -1;
        if (is_v) {
            if (have_v || E->count > (int64_t)UINT32_MAX) {
                st = r3d_fail(err, R3D_EFORMAT, "%s: PLY has two vertex elements or too many",
                              name);
                break;
            }
            static const char *nm[6] = {"x", "y", "z", "red", "green", "blue"};
            for (int k = 0; k < E->np; k++)
                for (int j = 0; j < 6; j++)
                    if (!E->p[k].count_type && strcmp(E->p[k].name, nm[j]) == 0)
                        ix[j] = k;
            if (ix[0] < 0 || ix[1] < 0 || ix[2] < 0) {
                st = r3d_fail(err, R3D_EFORMAT, "%s: PLY vertex element lacks x, y or z", name);
                break;
            }
            if ((st = r3d_mesh_reserve(m, E->count, 0, err)) != R3D_OK)
                break;
            if (ix[3] >= 0 && ix[4] >= 0 && ix[5] >= 0 &&
                !(vrgb = malloc(3 * (size_t)E->count + 3))) {
                st = r3d_fail(err, R3D_ENOMEM, "%s: out of memory", name);
                break;
            }
            have_v = 1;
            nv = E->count;
        }
        if (is_f) {
            for (int k = 0; k < E->np; k++)
                if (E->p[k].count_type && (strcmp(E->p[k].name, "vertex_indices") == 0 ||
                                           strcmp(E->p[k].name, "vertex_index") == 0))
                    fi = k;
            if (fi < 0 || !have_v) {
                st = r3d_fail(err, R3D_EFORMAT, "%s: PLY face element %s", name,
                              fi < 0 ? "has no vertex_indices list"
                                     : "comes before the vertex element");
                break;
            }
            have_f = 1;
        }
        int rgb_scale = ix[3] >= 0 && (E->p[ix[3]].type == T_F32 || E->p[ix[3]].type == T_F64);
        size_t cap_list = 0;
        for (int64_t r = 0; r < E->count && st == R3D_OK; r++) {
            double val[6] = {0, 0, 0, 0, 0, 0};
            for (int k = 0; k < E->np && st == R3D_OK; k++) {
                prop *P = &E->p[k];
                double d;
                if (!P->count_type) {
                    if (!read_value(&R, P->type, &d)) {
                        st = fail_at(&R, E->name, r);
                        break;
                    }
                    for (int j = 0; j < 6; j++)
                        if (ix[j] == k)
                            val[j] = d;
                    continue;
                }
                if (!read_value(&R, P->count_type, &d) || d < 0 || d != floor(d) ||
                    d > (double)(size_t)(R.end - R.p)) {
                    st = fail_at(&R, E->name, r);
                    break;
                }
                size_t cnt = (size_t)d;
                if (k == fi && cnt > cap_list) {
                    double *nl = realloc(list, cnt * sizeof *nl);
                    if (!nl) {
                        st = r3d_fail(err, R3D_ENOMEM, "%s: out of memory", name);
                        break;
                    }
                    list = nl;
                    cap_list = cnt;
                }
                for (size_t c = 0; c < cnt; c++) {
                    if (!read_value(&R, P->type, &d)) {
                        st = fail_at(&R, E->name, r);
                        break;
                    }
                    if (k == fi)
                        list[c] = d;
                }
                if (st != R3D_OK || k != fi)
                    continue;
                if (cnt < 3) {
                    st = r3d_fail(err, R3D_EFORMAT, "%s: PLY face %lld has %zu corners, needs 3",
                                  name, (long long)r, cnt);
                    break;
                }
                for (size_t c = 0; c < cnt; c++)
                    if (!(list[c] >= 0 && list[c] < (double)nv) || list[c] != floor(list[c])) {
                        st = r3d_fail(err, R3D_EFORMAT,
                                      "%s: PLY face %lld uses vertex %.0f of %lld", name,
                                      (long long)r, list[c], (long long)nv);
                        break;
                    }
                for (size_t c = 2; c < cnt && st == R3D_OK; c++)
                    if (!r3d_mesh_add_triangle(m, (uint32_t)list[0], (uint32_t)list[c - 1],
                                               (uint32_t)list[c]))
                        st = r3d_fail(err, R3D_ENOMEM, "%s: out of memory", name);
            }
            if (st != R3D_OK || !is_v)
                continue;
            for (int j = 0; j < 3; j++)
                if (!isfinite(val[j]) || fabs(val[j]) > 3.4e38)
                    st = r3d_fail(err, R3D_EDATA, "%s: PLY vertex %lld has a non-finite coordinate",
                                  name, (long long)r);
            r3d_mesh_add_vertex(m, (float)val[0], (float)val[1], (float)val[2]); /* reserved */
            if (vrgb)
                for (int j = 0; j < 3; j++) {
                    double c = rgb_scale ? val[3 + j] * 255.0 : val[3 + j];
                    vrgb[3 * r + j] = (uint8_t)(c >= 0 && c <= 255 ? lround(c) : c > 255 ? 255 : 0);
                }
        }
    }
    if (st == R3D_OK && (!have_f || m->nt == 0))
        st = r3d_fail(err, R3D_EDATA, "%s: PLY with no faces (%lld vertices)", name,
                      (long long)m->nv);
    if (st != R3D_OK)
        goto done;
    if (vrgb)
        memcpy(m->rgb, vrgb + 3 * (size_t)m->t[0], 3);
    else
        m->rgb[0] = m->rgb[1] = m->rgb[2] = 200;

    /* Our own files list their objects: split the faces back. */
    int64_t sum = 0;
    for (int i = 0; i < nobj; i++)
        sum += obj[i].nt;
    if (nobj >= 1 && sum == m->nt) {
        r3d_scene tmp = {0};
        int64_t t0 = 0;
        uint32_t *map = malloc((size_t)m->nv * sizeof *map);
        if (!map) {
            st = r3d_fail(err, R3D_ENOMEM, "%s: out of memory", name);
            goto done;
        }
        for (int i = 0; i < nobj && st == R3D_OK; i++) {
            r3d_mesh *o = r3d_mesh_new(err);
            if (!o || r3d_scene_add(&tmp, o, err) != R3D_OK) {
                r3d_mesh_free(o);
                st = R3D_ENOMEM;
                break;
            }
            o->frame = m->frame;
            snprintf(o->name, sizeof o->name, "%s", obj[i].name);
            memcpy(o->rgb, m->rgb, 3);
            if (vrgb && obj[i].nt > 0)
                memcpy(o->rgb, vrgb + 3 * (size_t)m->t[3 * t0], 3);
            memset(map, 0xff, (size_t)m->nv * sizeof *map);
            for (int64_t k = 3 * t0; k < 3 * (t0 + obj[i].nt) && st == R3D_OK; k += 3) {
                uint32_t c[3];
                for (int j = 0; j < 3; j++) {
                    uint32_t g = m->t[k + j];
                    if (map[g] == UINT32_MAX) {
                        const float *p = m->v + 3 * (size_t)g;
                        map[g] = (uint32_t)r3d_mesh_add_vertex(o, p[0], p[1], p[2]);
                    }
                    c[j] = map[g];
                }
                if (!r3d_mesh_add_triangle(o, c[0], c[1], c[2]))
                    st = r3d_fail(err, R3D_ENOMEM, "%s: out of memory", name);
            }
            t0 += obj[i].nt;
        }
        free(map);
        if (st != R3D_OK) {
            r3d_scene_clear(&tmp);
            goto done;
        }
        int added = 0;
        for (; added < tmp.n; added++)
            if (r3d_scene_add(out, tmp.m[added], err) != R3D_OK)
                break;
        if (added < tmp.n) {
            out->n -= added;
            r3d_scene_clear(&tmp);
            st = R3D_ENOMEM;
            goto done;
        }
        free(tmp.m);
        r3d_mesh_free(m);
        m = NULL;
        goto done;
    }
    if ((st = r3d_scene_add(out, m, err)) == R3D_OK)
        m = NULL;
done:
    r3d_mesh_free(m);
    free(el);
    free(obj);
    free(list);
    free(vrgb);
    return st;
}

/* stl_load.c - STL reader, binary and ASCII.
 *
 * Which of the two a file is cannot be read from its first word: many
 * binary writers start the 80-byte header with "solid". So a file is
 * binary when its size is exactly 84 + 50 * (the count at byte 80), else
 * ASCII when it starts with "solid" and holds a "facet" keyword, else
 * binary again, and then a size that does not match the count is an error
 * that says both numbers.
 *
 * STL repeats every corner in every facet; corners with bit-identical
 * coordinates are welded into one vertex (hash on the float bits, O(n)),
 * so a closed surface comes back closed. Facet normals are ignored: the
 * winding is the orientation. Binary STL is one object; ASCII gives one
 * mesh per "solid" block, named after it. A header saying "frame RAS" (as
 * ours do) sets the frame; otherwise it is LPS, the library default.
 */
#define _GNU_SOURCE /* memmem */
#include "mesh_io.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint32_t rd_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static float rd_f32(const unsigned char *p)
{
    uint32_t u = rd_u32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static r3d_status finish(r3d_scene *tmp, r3d_scene *out, const char *name, r3d_error *err)
{
    for (int i = 0; i < tmp->n; i++) {
        if (r3d_scene_add(out, tmp->m[i], err) != R3D_OK) {
            /* give back what we added, so out is as it was */
            for (int j = 0; j < i; j++)
                out->m[--out->n] = NULL;
            r3d_scene_clear(tmp);
            return r3d_fail(err, R3D_ENOMEM, "%s: out of memory", name);
        }
    }
    free(tmp->m);
    return R3D_OK;
}

static r3d_status load_binary(const unsigned char *b, size_t size, const char *name,
                              r3d_scene *out, r3d_error *err)
{
    if (size < 84)
        return r3d_fail(err, R3D_EFORMAT,
                        "%s: %zu bytes is too short for a binary STL (84-byte header) and it is "
                        "not ASCII STL",
                        name, size);
    uint32_t n = rd_u32(b + 80);
    if ((uint64_t)n * 50 > size - 84)
        return r3d_fail(err, R3D_EFORMAT,
                        "%s: binary STL header counts %u triangles but the file holds only %zu",
                        name, n, (size - 84) / 50);
    if (n == 0)
        return r3d_fail(err, R3D_EDATA, "%s: binary STL with no triangles", name);
    r3d_mesh *m = r3d_mesh_new(err);
    if (!m)
        return R3D_ENOMEM;
    m->rgb[0] = m->rgb[1] = m->rgb[2] = 200; /* STL has no colour: neutral grey */
    if (memmem(b, 80, "frame RAS", 9))
        m->frame = R3D_FRAME_RAS;
    r3d_status st = r3d_mesh_reserve(m, 0, n, err);
    mio_weld w = {0};
    for (uint32_t k = 0; k < n && st == R3D_OK; k++) {
        const unsigned char *f = b + 84 + 50 * (size_t)k;
        uint32_t idx[3];
        for (int c = 0; c < 3 && st == R3D_OK; c++) {
            float p[3];
            for (int j = 0; j < 3; j++)
                p[j] = rd_f32(f + 12 + 12 * c + 4 * j);
            if (!isfinite(p[0]) || !isfinite(p[1]) || !isfinite(p[2])) {
                st = r3d_fail(err, R3D_EDATA, "%s: triangle %u has a non-finite coordinate",
                              name, k);
                break;
            }
            int64_t v = mio_weld_add(&w, m, p[0], p[1], p[2]);
            if (v < 0)
                st = r3d_fail(err, R3D_ENOMEM, "%s: out of memory at triangle %u", name, k);
            idx[c] = (uint32_t)v;
        }
        if (st == R3D_OK && !r3d_mesh_add_triangle(m, idx[0], idx[1], idx[2]))
            st = r3d_fail(err, R3D_ENOMEM, "%s: out of memory at triangle %u", name, k);
    }
    mio_weld_free(&w);
    if (st == R3D_OK)
        st = r3d_scene_add(out, m, err);
    if (st != R3D_OK)
        r3d_mesh_free(m);
    return st;
}

/* ---- ASCII ------------------------------------------------------------------------ */

typedef struct lexer {
    const char *p, *end;
    const char *name;
    int line;
} lexer;

static void skip_ws(lexer *L)
{
    while (L->p < L->end && isspace((unsigned char)*L->p)) {
        if (*L->p == '\n')
            L->line++;
        L->p++;
    }
}

/* Next token into tok (truncated to cap-1); returns its length, 0 at end. */
static size_t next_token(lexer *L, char *tok, size_t cap)
{
    skip_ws(L);
    size_t n = 0;
    while (L->p < L->end && !isspace((unsigned char)*L->p) && *L->p) {
        if (n + 1 < cap)
            tok[n] = *L->p;
        n++;
        L->p++;
    }
    if (L->p < L->end && !*L->p) /* a NUL byte ends the text */
        L->end = L->p;
    tok[n < cap ? n : cap - 1] = 0;
    return n;
}

static void rest_of_line(lexer *L, char *out, size_t cap)
{
    while (L->p < L->end && (*L->p == ' ' || *L->p == '\t'))
        L->p++;
    size_t n = 0;
    while (L->p < L->end && *L->p != '\n' && *L->p != '\r' && *L->p) {
        if (n + 1 < cap)
            out[n++] = *L->p;
        L->p++;
    }
    while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\t'))
        n--;
    out[n] = 0;
}

static r3d_status load_ascii(const char *buf, size_t size, const char *name, r3d_scene *out,
                             r3d_error *err)
{
    lexer L = {buf, buf + size, name, 1};
    r3d_scene tmp = {0};
    r3d_mesh *m = NULL;
    mio_weld w = {0};
    r3d_status st = R3D_OK;
    char tok[64];
    uint32_t corner[3];
    int ncorner = -1; /* -1: not inside a facet */
    while (st == R3D_OK && next_token(&L, tok, sizeof tok)) {
        if (strcmp(tok, "solid") == 0) {
            if (m) {
                st = r3d_fail(err, R3D_EFORMAT, "%s:%d: 'solid' inside a solid (no endsolid)",
                              name, L.line);
                break;
            }
            if (!(m = r3d_mesh_new(err))) {
                st = R3D_ENOMEM;
                break;
            }
            rest_of_line(&L, m->name, sizeof m->name);
            m->rgb[0] = m->rgb[1] = m->rgb[2] = 200;
            mio_weld_free(&w);
        } else if (!m) {
            st = r3d_fail(err, R3D_EFORMAT, "%s:%d: '%s' outside a solid block", name, L.line,
                          tok);
        } else if (strcmp(tok, "facet") == 0) {
            if (ncorner >= 0)
                st = r3d_fail(err, R3D_EFORMAT, "%s:%d: facet inside a facet", name, L.line);
            ncorner = 0;
            rest_of_line(&L, tok, sizeof tok); /* the normal is not needed */
        } else if (strcmp(tok, "vertex") == 0) {
            float p[3];
            for (int j = 0; j < 3 && st == R3D_OK; j++) {
                char num[64];
                size_t len = next_token(&L, num, sizeof num);
                char *e;
                double d = len && len < sizeof num ? strtod(num, &e) : 0;
                if (!len || len >= sizeof num || *e || !isfinite(d) || fabs(d) > 3.4e38)
                    st = r3d_fail(err, R3D_EFORMAT, "%s:%d: vertex needs 3 finite numbers",
                                  name, L.line);
                p[j] = (float)d;
            }
            if (st != R3D_OK)
                break;
            if (ncorner < 0 || ncorner >= 3) {
                st = r3d_fail(err, R3D_EFORMAT, "%s:%d: %s", name, L.line,
                              ncorner < 0 ? "vertex outside a facet"
                                          : "facet with more than 3 vertices");
                break;
            }
            int64_t v = mio_weld_add(&w, m, p[0], p[1], p[2]);
            if (v < 0)
                st = r3d_fail(err, R3D_ENOMEM, "%s: out of memory", name);
            corner[ncorner++] = (uint32_t)v;
        } else if (strcmp(tok, "endfacet") == 0) {
            if (ncorner != 3) {
                st = r3d_fail(err, R3D_EFORMAT, "%s:%d: facet with %d vertices, expected 3",
                              name, L.line, ncorner < 0 ? 0 : ncorner);
                break;
            }
            if (!r3d_mesh_add_triangle(m, corner[0], corner[1], corner[2]))
                st = r3d_fail(err, R3D_ENOMEM, "%s: out of memory", name);
            ncorner = -1;
        } else if (strcmp(tok, "endsolid") == 0) {
            char ignore[128];
            rest_of_line(&L, ignore, sizeof ignore);
            if (ncorner >= 0) {
                st = r3d_fail(err, R3D_EFORMAT, "%s:%d: endsolid inside a facet", name, L.line);
                break;
            }
            st = r3d_scene_add(&tmp, m, err);
            if (st != R3D_OK)
                break;
            m = NULL;
        } else if (strcmp(tok, "outer") == 0 || strcmp(tok, "loop") == 0 ||
                   strcmp(tok, "endloop") == 0) {
            /* structure only */
        } else {
            st = r3d_fail(err, R3D_EFORMAT, "%s:%d: unexpected word '%s' in ASCII STL", name,
                          L.line, tok);
        }
    }
    mio_weld_free(&w);
    if (st == R3D_OK && m)
        st = r3d_fail(err, R3D_EFORMAT, "%s: ASCII STL ends inside solid '%s' (no endsolid)",
                      name, m->name);
    if (st == R3D_OK && tmp.n == 0)
        st = r3d_fail(err, R3D_EFORMAT, "%s: ASCII STL without any solid", name);
    int64_t nt = 0;
    for (int i = 0; i < tmp.n; i++)
        nt += tmp.m[i]->nt;
    if (st == R3D_OK && nt == 0)
        st = r3d_fail(err, R3D_EDATA, "%s: ASCII STL with no triangles", name);
    r3d_mesh_free(m);
    if (st != R3D_OK) {
        r3d_scene_clear(&tmp);
        return st;
    }
    return finish(&tmp, out, name, err);
}

r3d_status r3d__stl_load_mem(const char *buf, size_t size, const char *name, r3d_scene *out,
                             r3d_error *err)
{
    const unsigned char *b = (const unsigned char *)buf;
    if (size >= 84 && (uint64_t)rd_u32(b + 80) * 50 + 84 == size)
        return load_binary(b, size, name, out, err);
    const char *p = buf;
    while (p < buf + size && isspace((unsigned char)*p))
        p++;
    if ((size_t)(buf + size - p) >= 5 && strncmp(p, "solid", 5) == 0 &&
        memmem(buf, size, "facet", 5))
        return load_ascii(buf, size, name, out, err);
    if ((size_t)(buf + size - p) >= 5 && strncmp(p, "solid", 5) == 0 && size < 84)
        return load_ascii(buf, size, name, out, err);
    return load_binary(b, size, name, out, err);
}

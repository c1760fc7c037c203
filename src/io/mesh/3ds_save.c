/* 3ds_save.c - 3D Studio (.3ds) writer.
 *
 * A 3DS file is a tree of chunks, each a uint16 id and a uint32 length
 * that includes its 6-byte header, little endian:
 *   MAIN 0x4D4D > VERSION 0x0002, EDIT 0x3D3D >
 *     MESH_VERSION 0x3D3E, MATERIAL 0xAFFF (one per object) >
 *       MAT_NAME 0xA000, DIFFUSE 0xA020 > COLOR_24 0x0011
 *     MASTER_SCALE 0x0100 (1.0: one unit = one mm, as we write it)
 *     OBJECT 0x4000 (name) > TRI_MESH 0x4100 >
 *       VERTEX_LIST 0x4110, FACE_LIST 0x4120 > FACE_MAT_GROUP 0x4130
 * The chunks are built in memory (lengths patched once their content is
 * known) and written atomically.
 *
 * Limits of the format: vertex and face counts are uint16, so an object
 * with more than 65535 of either is split into parts, triangles kept in
 * order and each part holding only the vertices its faces use; object names
 * are at most 10 characters (plus NUL) and material names 16: names become
 * "<object number>_<name>" (or "<object>.<part>_<name>") with non-ASCII
 * bytes as '_', cut to fit, so they stay unique. 3DS has no units or frame
 * field; both are what the scene says (mm, LPS or RAS).
 */
#include "mesh_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX16 = 65535 };

static size_t chunk_begin(mio_out *o, uint16_t id)
{
    size_t at = o->n;
    mio_u16le(o, id);
    mio_u32le(o, 0);
    return at;
}

static void chunk_end(mio_out *o, size_t at)
{
    if (o->st != R3D_OK)
        return;
    uint32_t len = (uint32_t)(o->n - at);
    unsigned char *p = (unsigned char *)o->buf + at + 2;
    p[0] = (unsigned char)len, p[1] = (unsigned char)(len >> 8), p[2] = (unsigned char)(len >> 16),
    p[3] = (unsigned char)(len >> 24);
}

static void ascii_name(char *dst, size_t cap, const char *prefix, const char *name)
{
    /* cut to cap-1 characters on purpose: the format's limit */
    size_t n = 0;
    for (const char *parts[2] = {prefix, name}, **p = parts; p < parts + 2; p++)
        for (const char *c = *p; *c && n + 1 < cap; c++)
            dst[n++] = ((unsigned char)*c >= 0x80 || (unsigned char)*c < 0x20) ? '_' : *c;
    dst[n] = 0;
}

/* "m<object>_<name>", at most 16 characters */
static void material_name(const r3d_mesh *m, int i, char mname[17])
{
    char name[80], prefix[16];
    snprintf(prefix, sizeof prefix, "m%d_", i + 1);
    ascii_name(mname, 17, prefix, mio_object_name(m, i, name, sizeof name));
}

static void cstr(mio_out *o, const char *s) { mio_put(o, s, strlen(s) + 1); }

/* One OBJECT chunk for triangles [t0, t1) of m, vertices renumbered. */
static void write_part(mio_out *o, const r3d_mesh *m, int64_t t0, int64_t t1, const char *oname,
                       const char *mname, uint32_t *map, uint32_t *used)
{
    uint32_t nv = 0;
    for (int64_t k = 3 * t0; k < 3 * t1; k++)
        if (map[m->t[k]] == UINT32_MAX) {
            map[m->t[k]] = nv;
            used[nv++] = m->t[k];
        }
    size_t obj = chunk_begin(o, 0x4000);
    cstr(o, oname);
    size_t tri = chunk_begin(o, 0x4100);
    size_t vl = chunk_begin(o, 0x4110);
    mio_u16le(o, (uint16_t)nv);
    for (uint32_t i = 0; i < nv; i++)
        for (int j = 0; j < 3; j++)
            mio_f32le(o, m->v[3 * (size_t)used[i] + j]);
    chunk_end(o, vl);
    size_t fl = chunk_begin(o, 0x4120);
    mio_u16le(o, (uint16_t)(t1 - t0));
    for (int64_t k = t0; k < t1; k++) {
        for (int j = 0; j < 3; j++)
            mio_u16le(o, (uint16_t)map[m->t[3 * k + j]]);
        mio_u16le(o, 0x0007); /* edge visibility flags AB BC CA */
    }
    size_t mg = chunk_begin(o, 0x4130);
    cstr(o, mname);
    mio_u16le(o, (uint16_t)(t1 - t0));
    for (int64_t k = 0; k < t1 - t0; k++)
        mio_u16le(o, (uint16_t)k);
    chunk_end(o, mg);
    chunk_end(o, fl);
    chunk_end(o, tri);
    chunk_end(o, obj);
    for (uint32_t i = 0; i < nv; i++)
        map[used[i]] = UINT32_MAX;
}

r3d_status r3d__3ds_save(const r3d_scene *s, const char *path, r3d_error *err)
{
    mio_out o;
    mio_open_mem(&o, path, err);
    size_t main_ = chunk_begin(&o, 0x4D4D);
    size_t ver = chunk_begin(&o, 0x0002);
    mio_u32le(&o, 3);
    chunk_end(&o, ver);
    size_t edit = chunk_begin(&o, 0x3D3D);
    size_t mver = chunk_begin(&o, 0x3D3E);
    mio_u32le(&o, 3);
    chunk_end(&o, mver);
    for (int i = 0; i < s->n; i++) {
        char mname[17];
        material_name(s->m[i], i, mname);
        size_t mat = chunk_begin(&o, 0xAFFF);
        size_t mn = chunk_begin(&o, 0xA000);
        cstr(&o, mname);
        chunk_end(&o, mn);
        size_t dif = chunk_begin(&o, 0xA020);
        size_t c24 = chunk_begin(&o, 0x0011);
        mio_put(&o, s->m[i]->rgb, 3);
        chunk_end(&o, c24);
        chunk_end(&o, dif);
        chunk_end(&o, mat);
    }
    size_t ms = chunk_begin(&o, 0x0100);
    mio_f32le(&o, 1.0f);
    chunk_end(&o, ms);

    int64_t maxnv = 0;
    for (int i = 0; i < s->n; i++)
        maxnv = s->m[i]->nv > maxnv ? s->m[i]->nv : maxnv;
    uint32_t *map = malloc(((size_t)maxnv + 1) * sizeof *map);
    uint32_t *used = malloc(3 * (MAX16 + 1) * sizeof *used);
    if (!map || !used) {
        free(map);
        free(used);
        free(o.buf);
        return r3d_fail(err, R3D_ENOMEM, "%s: out of memory", path);
    }
    memset(map, 0xff, ((size_t)maxnv + 1) * sizeof *map);
    for (int i = 0; i < s->n && o.st == R3D_OK; i++) {
        const r3d_mesh *m = s->m[i];
        char name[80], mname[17];
        mio_object_name(m, i, name, sizeof name);
        material_name(m, i, mname);
        /* cut into parts of at most 65535 faces and 65535 vertices */
        int64_t t0 = 0;
        int part = 0;
        while (t0 < m->nt) { /* an object without triangles gets no chunk */
            int64_t t1 = t0;
            uint32_t nv = 0;
            while (t1 < m->nt && t1 - t0 < MAX16) {
                uint32_t fresh = 0;
                for (int j = 0; j < 3; j++) {
                    uint32_t v = m->t[3 * t1 + j];
                    if (map[v] == UINT32_MAX) {
                        int dup = 0;
                        for (int q = 0; q < j; q++)
                            dup |= m->t[3 * t1 + q] == v;
                        fresh += !dup;
                    }
                }
                if (nv + fresh > MAX16)
                    break;
                for (int j = 0; j < 3; j++) {
                    uint32_t v = m->t[3 * t1 + j];
                    if (map[v] == UINT32_MAX) {
                        map[v] = 0;
                        used[nv++] = v;
                    }
                }
                t1++;
            }
            for (uint32_t q = 0; q < nv; q++)
                map[used[q]] = UINT32_MAX;
            part++;
            char oname[11], prefix[24];
            int parts_needed = t1 < m->nt || part > 1;
            if (parts_needed)
                snprintf(prefix, sizeof prefix, "%d.%d_", i + 1, part);
            else
                snprintf(prefix, sizeof prefix, "%d_", i + 1);
            ascii_name(oname, sizeof oname, prefix, name);
            write_part(&o, m, t0, t1, oname, mname, map, used);
            t0 = t1;
        }
    }
    free(map);
    free(used);
    chunk_end(&o, edit);
    chunk_end(&o, main_);
    if (o.st == R3D_OK && o.n > UINT32_MAX) {
        free(o.buf);
        return r3d_fail(err, R3D_EARG, "%s: scene too large for 3DS's 32-bit chunk lengths",
                        path);
    }
    r3d_status st = mio_close(&o);
    if (st != R3D_OK)
        return st;
    st = r3d_file_write_atomic(path, o.buf, o.n, err);
    free(o.buf);
    return st;
}

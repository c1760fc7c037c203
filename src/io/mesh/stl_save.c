/* stl_save.c - STL writers.
 *
 * Binary STL: an 80-byte header, a uint32 triangle count, then 50 bytes
 * per triangle (normal, three corners, all float32 little endian, and a
 * zero attribute word). The header states the units (mm) and the frame;
 * it never starts with "solid", so readers do not mistake it for ASCII.
 * Binary STL has no objects, so a scene is merged and the names are lost.
 *
 * ASCII STL: one "solid NAME ... endsolid NAME" block per object, so a
 * multi-structure scene keeps its names (colours have no place in STL,
 * and neither have units or the frame: ASCII STL has no comment syntax).
 * Coordinates are printed with %.9g, which round-trips every float32.
 *
 * Facet normals are recomputed from the corners (right-hand rule); a
 * degenerate triangle gets a zero normal, which the format allows.
 */
#include "mesh_io.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void facet_normal(const r3d_mesh *m, const uint32_t *t, float n[3])
{
    const float *a = m->v + 3 * (size_t)t[0], *b = m->v + 3 * (size_t)t[1],
                *c = m->v + 3 * (size_t)t[2];
    double u[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]};
    double v[3] = {c[0] - a[0], c[1] - a[1], c[2] - a[2]};
    double x = u[1] * v[2] - u[2] * v[1], y = u[2] * v[0] - u[0] * v[2],
           z = u[0] * v[1] - u[1] * v[0];
    double len = sqrt(x * x + y * y + z * z);
    if (len > 0 && isfinite(len)) {
        n[0] = (float)(x / len);
        n[1] = (float)(y / len);
        n[2] = (float)(z / len);
    } else {
        n[0] = n[1] = n[2] = 0;
    }
}

static r3d_status save_binary(const r3d_scene *s, const char *path, r3d_error *err)
{
    int64_t total = 0;
    for (int i = 0; i < s->n; i++)
        total += s->m[i]->nt;
    if (total > UINT32_MAX)
        return r3d_fail(err, R3D_EARG, "%s: %lld triangles exceed binary STL's 32-bit count",
                        path, (long long)total);
    mio_out o;
    if (mio_open(&o, path, err) != R3D_OK)
        return o.st;
    char header[80];
    memset(header, ' ', sizeof header);
    int len = snprintf(header, sizeof header,
                       "recon3d binary STL, units mm, frame %s, %d objects merged",
                       mio_frame_name(s->m[0]->frame), s->n);
    if (len > 0 && len < (int)sizeof header)
        header[len] = ' ';
    mio_put(&o, header, sizeof header);
    mio_u32le(&o, (uint32_t)total);
    for (int i = 0; i < s->n; i++) {
        const r3d_mesh *m = s->m[i];
        for (int64_t k = 0; k < m->nt; k++) {
            const uint32_t *t = m->t + 3 * k;
            float n[3];
            facet_normal(m, t, n);
            for (int j = 0; j < 3; j++)
                mio_f32le(&o, n[j]);
            for (int c = 0; c < 3; c++)
                for (int j = 0; j < 3; j++)
                    mio_f32le(&o, m->v[3 * (size_t)t[c] + j]);
            mio_u16le(&o, 0);
        }
    }
    return mio_close(&o);
}

/* "solid" names run to the end of the line: keep them on one line. */
static void line_safe(char *s)
{
    for (; *s; s++)
        if (*s == '\n' || *s == '\r')
            *s = ' ';
}

static r3d_status save_ascii(const r3d_scene *s, const char *path, r3d_error *err)
{
    mio_out o;
    if (mio_open(&o, path, err) != R3D_OK)
        return o.st;
    for (int i = 0; i < s->n; i++) {
        const r3d_mesh *m = s->m[i];
        char name[80];
        mio_object_name(m, i, name, sizeof name);
        line_safe(name);
        mio_printf(&o, "solid %s\n", name);
        for (int64_t k = 0; k < m->nt; k++) {
            const uint32_t *t = m->t + 3 * k;
            float n[3];
            facet_normal(m, t, n);
            mio_printf(&o, "  facet normal %.9g %.9g %.9g\n    outer loop\n", n[0], n[1], n[2]);
            for (int c = 0; c < 3; c++) {
                const float *p = m->v + 3 * (size_t)t[c];
                mio_printf(&o, "      vertex %.9g %.9g %.9g\n", p[0], p[1], p[2]);
            }
            mio_printf(&o, "    endloop\n  endfacet\n");
        }
        mio_printf(&o, "endsolid %s\n", name);
    }
    return mio_close(&o);
}

r3d_status r3d__stl_save(const r3d_scene *s, const char *path, int ascii, r3d_error *err)
{
    return ascii ? save_ascii(s, path, err) : save_binary(s, path, err);
}

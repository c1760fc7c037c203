/* ply_save.c - PLY writer: binary little endian, per-vertex colours.
 *
 * PLY holds one mesh, so the scene is merged: each object's vertices carry
 * its colour (uchar red green blue), and its triangles follow those of the
 * objects before it. Comments state units and frame, and list the objects
 * in order ("comment r3d_object <triangles> <name>") so our reader can split
 * the scene again; other readers see one coloured mesh. Faces are
 * "list uchar int" (the common layout), so at most 2^31-1 vertices.
 */
#include "mesh_io.h"

#include <stdio.h>
#include <string.h>

r3d_status r3d__ply_save(const r3d_scene *s, const char *path, r3d_error *err)
{
    int64_t nv = 0, nt = 0;
    for (int i = 0; i < s->n; i++) {
        nv += s->m[i]->nv;
        nt += s->m[i]->nt;
    }
    if (nv > INT32_MAX || nt > INT32_MAX)
        return r3d_fail(err, R3D_EARG, "%s: %lld vertices / %lld triangles exceed PLY's int",
                        path, (long long)nv, (long long)nt);
    mio_out o;
    if (mio_open(&o, path, err) != R3D_OK)
        return o.st;
    mio_printf(&o, "ply\nformat binary_little_endian 1.0\n"
                   "comment recon3d PLY: units mm (1:1), frame %s\n",
               mio_frame_name(s->m[0]->frame));
    for (int i = 0; i < s->n; i++) {
        char name[80];
        mio_object_name(s->m[i], i, name, sizeof name);
        for (char *c = name; *c; c++)
            if (*c == '\n' || *c == '\r')
                *c = ' ';
        mio_printf(&o, "comment r3d_object %lld %s\n", (long long)s->m[i]->nt, name);
    }
    mio_printf(&o,
               "element vertex %lld\nproperty float x\nproperty float y\nproperty float z\n"
               "property uchar red\nproperty uchar green\nproperty uchar blue\n"
               "element face %lld\nproperty list uchar int vertex_indices\nend_header\n",
               (long long)nv, (long long)nt);
    for (int i = 0; i < s->n; i++) {
        const r3d_mesh *m = s->m[i];
        for (int64_t k = 0; k < m->nv; k++) {
            for (int j = 0; j < 3; j++)
                mio_f32le(&o, m->v[3 * k + j]);
            mio_put(&o, m->rgb, 3);
        }
    }
    uint32_t base = 0;
    for (int i = 0; i < s->n; i++) {
        const r3d_mesh *m = s->m[i];
        for (int64_t k = 0; k < 3 * m->nt; k += 3) {
            mio_u8(&o, 3);
            for (int j = 0; j < 3; j++)
                mio_u32le(&o, base + m->t[k + j]);
        }
        base += (uint32_t)m->nv;
    }
    return mio_close(&o);
}

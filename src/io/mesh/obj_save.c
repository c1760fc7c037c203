/* obj_save.c - Wavefront OBJ + MTL writer.
 *
 * One "o NAME" / "g NAME" block per mesh with "usemtl" naming a material
 * whose Kd is the mesh colour; the materials go to NAME.mtl beside the OBJ
 * (same stem), named by "mtllib". Both files are written atomically, the
 * MTL first, so an OBJ never names a library that is not there.
 *
 * Vertex indices are global and 1-based in OBJ, so each mesh's indices are
 * offset by the vertices written before it. Coordinates use %.9g, which
 * round-trips float32 exactly; the header comment states units and frame.
 * Names are UTF-8 (e.g. Chinese structure names) and kept as they are,
 * with whitespace replaced by '_' because OBJ names are one word for many
 * readers.
 */
#include "mesh_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void one_word(char *s)
{
    for (; *s; s++)
        if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
            *s = '_';
}

r3d_status r3d__obj_save(const r3d_scene *s, const char *path, r3d_error *err)
{
    /* NAME.mtl beside NAME.obj */
    size_t len = strlen(path);
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    size_t stem = (dot && (!slash || dot > slash)) ? (size_t)(dot - path) : len;
    char *mtl = malloc(stem + 5);
    if (!mtl)
        return r3d_fail(err, R3D_ENOMEM, "%s: out of memory", path);
    memcpy(mtl, path, stem);
    memcpy(mtl + stem, ".mtl", 5);
    const char *mtl_base = strrchr(mtl, '/') ? strrchr(mtl, '/') + 1 : mtl;

    mio_out o;
    if (mio_open(&o, mtl, err) != R3D_OK) {
        free(mtl);
        return o.st;
    }
    mio_printf(&o, "# recon3d materials for %s: one per object, Kd = its colour\n",
               slash ? slash + 1 : path);
    for (int i = 0; i < s->n; i++) {
        const r3d_mesh *m = s->m[i];
        mio_printf(&o, "\nnewmtl material_%d\nKa 0 0 0\nKd %.6g %.6g %.6g\nKs 0 0 0\nd 1\nillum 1\n",
                   i + 1, m->rgb[0] / 255.0, m->rgb[1] / 255.0, m->rgb[2] / 255.0);
    }
    r3d_status st = mio_close(&o);
    if (st != R3D_OK) {
        free(mtl);
        return st;
    }

    if (mio_open(&o, path, err) != R3D_OK) {
        free(mtl);
        return o.st;
    }
    mio_printf(&o, "# recon3d OBJ: units mm (1:1), frame %s, %d objects\nmtllib %s\n",
               mio_frame_name(s->m[0]->frame), s->n, mtl_base);
    free(mtl);
    uint64_t base = 1;
    for (int i = 0; i < s->n; i++) {
        const r3d_mesh *m = s->m[i];
        char name[80];
        mio_object_name(m, i, name, sizeof name);
        one_word(name);
        mio_printf(&o, "\no %s\ng %s\nusemtl material_%d\n", name, name, i + 1);
        if (m->name_zh[0]) {
            char zh[80];
            snprintf(zh, sizeof zh, "%.*s", (int)sizeof m->name_zh, m->name_zh);
            one_word(zh);
            mio_printf(&o, "# name_zh %s\n", zh);
        }
        for (int64_t k = 0; k < m->nv; k++) {
            const float *p = m->v + 3 * k;
            mio_printf(&o, "v %.9g %.9g %.9g\n", p[0], p[1], p[2]);
        }
        for (int64_t k = 0; k < m->nt; k++) {
            const uint32_t *t = m->t + 3 * k;
            mio_printf(&o, "f %llu %llu %llu\n", (unsigned long long)(base + t[0]),
                       (unsigned long long)(base + t[1]), (unsigned long long)(base + t[2]));
        }
        base += (uint64_t)m->nv;
    }
    return mio_close(&o);
}

/* vrml_save.c - VRML 97 writer (ISO/IEC 14772-1, "#VRML V2.0 utf8").
 *
 * One Shape per mesh: an Appearance whose Material diffuseColor is the mesh
 * colour, and an IndexedFaceSet (ccw TRUE, solid TRUE) with the mesh's own
 * Coordinate points and a coordIndex list of triangles ended by -1. Shapes
 * are DEF-named after the structure (letters, digits and '_' only, which
 * every VRML reader accepts; the UTF-8 name goes into a comment and the
 * WorldInfo). The WorldInfo and a header comment state units (mm, 1:1 -
 * VRML's nominal unit is the metre, so viewers show the model 1000x large
 * but undistorted) and the frame.
 */
#include "mesh_io.h"

#include <stdio.h>
#include <string.h>

static void quoted(mio_out *o, const char *s)
{
    mio_put(o, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            mio_put(o, "\\", 1);
        mio_put(o, (unsigned char)*s < 0x20 ? " " : s, 1);
    }
    mio_put(o, "\"", 1);
}

r3d_status r3d__vrml_save(const r3d_scene *s, const char *path, r3d_error *err)
{
    mio_out o;
    if (mio_open(&o, path, err) != R3D_OK)
        return o.st;
    const char *frame = mio_frame_name(s->m[0]->frame);
    mio_printf(&o, "#VRML V2.0 utf8\n# recon3d: units mm (1:1), frame %s, %d objects\n"
                   "WorldInfo {\n  title \"recon3d surfaces\"\n  info [ \"units: millimetre\", "
                   "\"frame: %s\"",
               frame, s->n, frame);
    for (int i = 0; i < s->n; i++) {
        char name[80];
        mio_printf(&o, ", ");
        quoted(&o, mio_object_name(s->m[i], i, name, sizeof name));
    }
    mio_printf(&o, " ]\n}\n");
    for (int i = 0; i < s->n; i++) {
        const r3d_mesh *m = s->m[i];
        char name[80], id[96];
        mio_object_name(m, i, name, sizeof name);
        snprintf(id, sizeof id, "object_%d_", i + 1);
        size_t n = strlen(id);
        for (const char *c = name; *c && n + 1 < sizeof id; c++) {
            unsigned char u = (unsigned char)*c;
            id[n++] = (u < 0x80 && ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
                                    (u >= '0' && u <= '9')))
                          ? (char)u
                          : '_';
        }
        id[n] = 0;
        mio_printf(&o, "# ");
        quoted(&o, name);
        mio_printf(&o,
                   "\nDEF %s Shape {\n  appearance Appearance {\n    material Material { "
                   "diffuseColor %.6g %.6g %.6g }\n  }\n  geometry IndexedFaceSet {\n"
                   "    ccw TRUE\n    solid TRUE\n    coord Coordinate {\n      point [\n",
                   id, m->rgb[0] / 255.0, m->rgb[1] / 255.0, m->rgb[2] / 255.0);
        for (int64_t k = 0; k < m->nv; k++) {
            const float *p = m->v + 3 * k;
            mio_printf(&o, "        %.9g %.9g %.9g,\n", p[0], p[1], p[2]);
        }
        mio_printf(&o, "      ]\n    }\n    coordIndex [\n");
        for (int64_t k = 0; k < m->nt; k++) {
            const uint32_t *t = m->t + 3 * k;
            mio_printf(&o, "      %u, %u, %u, -1,\n", t[0], t[1], t[2]);
        }
        mio_printf(&o, "    ]\n  }\n}\n");
    }
    return mio_close(&o);
}

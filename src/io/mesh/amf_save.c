/* amf_save.c - AMF writer (ISO/ASTM 52915 Additive Manufacturing File),
 * plain XML or zip compressed.
 *
 * <amf unit="millimeter" version="1.1">, one <material> per object with its
 * <color> (r g b in 0..1), one <object> per mesh with a "name" metadata,
 * its <vertices> and one <volume materialid> of triangles. The frame is
 * stated in a "cad" metadata line. Coordinates are patient millimetres.
 *
 * Compressed AMF (R3D_MESH_AMF_ZIP): the standard's compressed form is a
 * zip archive holding the one .amf document; we write it to the name the
 * caller gives (r3d_mesh_format_from_name maps "x.amf.zip" to it, and slicers
 * such as PrusaSlicer also accept that archive renamed to "x.amf"). The
 * entry is the file's own name without ".zip" (ending in .amf), so
 * "unzip x.amf.zip" gives "x.amf".
 */
#include "mesh_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void color(mio_out *o, const uint8_t rgb[3])
{
    mio_printf(o, "<color><r>%.6g</r><g>%.6g</g><b>%.6g</b></color>", rgb[0] / 255.0,
               rgb[1] / 255.0, rgb[2] / 255.0);
}

static void amf_document(const r3d_scene *s, mio_out *o)
{
    mio_printf(o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<amf unit=\"millimeter\" version=\"1.1\">\n"
                  " <metadata type=\"producer\">recon3d</metadata>\n"
                  " <metadata type=\"cad\">patient coordinates in millimetres (1:1), frame "
                  "%s</metadata>\n",
                  mio_frame_name(s->m[0]->frame));
    for (int i = 0; i < s->n; i++) {
        char name[80];
        mio_printf(o, " <material id=\"%d\">\n  <metadata type=\"name\">", i + 1);
        mio_xml(o, mio_object_name(s->m[i], i, name, sizeof name));
        mio_printf(o, "</metadata>\n  ");
        color(o, s->m[i]->rgb);
        mio_printf(o, "\n </material>\n");
    }
    for (int i = 0; i < s->n; i++) {
        const r3d_mesh *m = s->m[i];
        char name[80];
        mio_printf(o, " <object id=\"%d\">\n  <metadata type=\"name\">", i);
        mio_xml(o, mio_object_name(m, i, name, sizeof name));
        mio_printf(o, "</metadata>\n  ");
        color(o, m->rgb);
        mio_printf(o, "\n  <mesh>\n   <vertices>\n");
        for (int64_t k = 0; k < m->nv; k++) {
            const float *p = m->v + 3 * k;
            mio_printf(o,
                       "    <vertex><coordinates><x>%.9g</x><y>%.9g</y><z>%.9g</z>"
                       "</coordinates></vertex>\n",
                       p[0], p[1], p[2]);
        }
        mio_printf(o, "   </vertices>\n   <volume materialid=\"%d\">\n", i + 1);
        for (int64_t k = 0; k < m->nt; k++) {
            const uint32_t *t = m->t + 3 * k;
            mio_printf(o, "    <triangle><v1>%u</v1><v2>%u</v2><v3>%u</v3></triangle>\n", t[0],
                       t[1], t[2]);
        }
        mio_printf(o, "   </volume>\n  </mesh>\n </object>\n");
    }
    mio_printf(o, "</amf>\n");
}

r3d_status r3d__amf_save(const r3d_scene *s, const char *path, int zipped, r3d_error *err)
{
    mio_out o;
    if (!zipped) {
        if (mio_open(&o, path, err) != R3D_OK)
            return o.st;
        amf_document(s, &o);
        return mio_close(&o);
    }
    mio_open_mem(&o, path, err);
    amf_document(s, &o);
    r3d_status st = mio_close(&o);
    if (st != R3D_OK)
        return st;
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char entry[256];
    size_t n = strlen(base);
    if (r3d_has_suffix(base, ".zip"))
        n -= 4;
    snprintf(entry, sizeof entry - 4, "%.*s", (int)n, base);
    if (!r3d_has_suffix(entry, ".amf"))
        strcat(entry, ".amf");
    mio_zip_entry e = {entry, o.buf, o.n};
    st = mio_zip_write(path, &e, 1, err);
    free(o.buf);
    return st;
}

/* 3mf_save.c - 3MF writer: a core-specification 3D Manufacturing Format
 * package (3MF Consortium, core spec 1.x).
 *
 * The package is a zip (OPC) with three parts: [Content_Types].xml,
 * _rels/.rels pointing at the model, and 3D/3dmodel.model, which has
 * unit="millimeter", one <basematerials> group with one colour per object
 * (displaycolor #RRGGBB), one <object type="model"> per mesh carrying its
 * name and pid/pindex, and a <build> item per object. Coordinates are the
 * patient millimetres as they are (no placement on a build plate, which
 * would lose the registration to the images); the frame is stated in the
 * Description metadata. The spec forbids triangles that repeat a vertex,
 * so those (degenerate) triangles are left out, and objects without
 * triangles are skipped. The archive is built in memory and written
 * atomically (temporary name, fsync, rename).
 */
#include "mesh_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char k_content_types[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\n"
    " <Default Extension=\"rels\" "
    "ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>\n"
    " <Default Extension=\"model\" "
    "ContentType=\"application/vnd.ms-package.3dmanufacturing-3dmodel+xml\"/>\n"
    "</Types>\n";

static const char k_rels[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\n"
    " <Relationship Target=\"/3D/3dmodel.model\" Id=\"rel0\" "
    "Type=\"http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel\"/>\n"
    "</Relationships>\n";

static int degenerate(const uint32_t *t) { return t[0] == t[1] || t[1] == t[2] || t[0] == t[2]; }

r3d_status r3d__3mf_save(const r3d_scene *s, const char *path, r3d_error *err)
{
    mio_out o;
    mio_open_mem(&o, path, err);
    mio_printf(&o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                   "<model unit=\"millimeter\" xml:lang=\"en-US\" "
                   "xmlns=\"http://schemas.microsoft.com/3dmanufacturing/core/2015/02\">\n"
                   " <metadata name=\"Application\">recon3d</metadata>\n"
                   " <metadata name=\"Description\">Patient coordinates in millimetres (1:1), "
                   "frame %s</metadata>\n"
                   " <resources>\n  <basematerials id=\"1\">\n",
               mio_frame_name(s->m[0]->frame));
    for (int i = 0; i < s->n; i++) {
        const r3d_mesh *m = s->m[i];
        char name[80];
        mio_printf(&o, "   <base name=\"");
        mio_xml(&o, mio_object_name(m, i, name, sizeof name));
        mio_printf(&o, "\" displaycolor=\"#%02X%02X%02X\"/>\n", m->rgb[0], m->rgb[1], m->rgb[2]);
    }
    mio_printf(&o, "  </basematerials>\n");
    int written = 0;
    for (int i = 0; i < s->n; i++) {
        const r3d_mesh *m = s->m[i];
        int64_t kept = 0;
        for (int64_t k = 0; k < m->nt; k++)
            kept += !degenerate(m->t + 3 * k);
        if (kept == 0)
            continue;
        char name[80];
        mio_printf(&o, "  <object id=\"%d\" type=\"model\" name=\"", i + 2);
        mio_xml(&o, mio_object_name(m, i, name, sizeof name));
        mio_printf(&o, "\" pid=\"1\" pindex=\"%d\">\n   <mesh>\n    <vertices>\n", i);
        for (int64_t k = 0; k < m->nv; k++) {
            const float *p = m->v + 3 * k;
            mio_printf(&o, "     <vertex x=\"%.9g\" y=\"%.9g\" z=\"%.9g\"/>\n", p[0], p[1], p[2]);
        }
        mio_printf(&o, "    </vertices>\n    <triangles>\n");
        for (int64_t k = 0; k < m->nt; k++) {
            const uint32_t *t = m->t + 3 * k;
            if (!degenerate(t))
                mio_printf(&o, "     <triangle v1=\"%u\" v2=\"%u\" v3=\"%u\"/>\n", t[0], t[1],
                           t[2]);
        }
        mio_printf(&o, "    </triangles>\n   </mesh>\n  </object>\n");
        written++;
    }
    mio_printf(&o, " </resources>\n <build>\n");
    for (int i = 0; i < s->n; i++) {
        const r3d_mesh *m = s->m[i];
        int64_t kept = 0;
        for (int64_t k = 0; k < m->nt && !kept; k++)
            kept += !degenerate(m->t + 3 * k);
        if (kept)
            mio_printf(&o, "  <item objectid=\"%d\"/>\n", i + 2);
    }
    mio_printf(&o, " </build>\n</model>\n");
    r3d_status st = mio_close(&o);
    if (st != R3D_OK)
        return st;
    if (!written) {
        free(o.buf);
        return r3d_fail(err, R3D_EARG, "%s: no object has a non-degenerate triangle", path);
    }
    mio_zip_entry e[3] = {{"[Content_Types].xml", k_content_types, sizeof k_content_types - 1},
                          {"_rels/.rels", k_rels, sizeof k_rels - 1},
                          {"3D/3dmodel.model", o.buf, o.n}};
    st = mio_zip_write(path, e, 3, err);
    free(o.buf);
    return st;
}

/* meshtool.c - test tool for the mesh formats (tests/e2e/mesh_readers.py).
 *
 *   meshtool write OUT [stl-ascii|amf-zip]  write the synthetic scene of
 *                                            tests/unit/mesh_fixture.h
 *   meshtool roundtrip IN OUT [stl-ascii|amf-zip]   read IN, write OUT
 *   meshtool info IN                         one line per object:
 *       object NAME nv NV nt NT rgb R G B min X Y Z max X Y Z
 * The format is chosen by OUT's extension unless named. Errors go to stderr
 * with the library's message; the exit status is the r3d_status.
 */
#include "r3d/mesh.h"
#include "../unit/mesh_fixture.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static r3d_mesh_format format_arg(const char *out, const char *name)
{
    if (name && strcmp(name, "stl-ascii") == 0)
        return R3D_MESH_STL_ASCII;
    if (name && strcmp(name, "amf-zip") == 0)
        return R3D_MESH_AMF_ZIP;
    return r3d_mesh_format_from_name(out);
}

static int report(r3d_status st, const r3d_error *err)
{
    if (st != R3D_OK)
        fprintf(stderr, "meshtool: %s: %s\n", r3d_status_name(st), err->msg);
    return (int)st;
}

int main(int argc, char **argv)
{
    r3d_error err = R3D_ERROR_INIT;
    r3d_scene s = {0};
    r3d_status st;
    if (argc >= 3 && strcmp(argv[1], "write") == 0) {
        fix_scene(&s);
        st = r3d_scene_write(&s, argv[2], format_arg(argv[2], argc > 3 ? argv[3] : NULL), &err);
    } else if (argc >= 4 && strcmp(argv[1], "roundtrip") == 0) {
        st = r3d_scene_read(argv[2], &s, &err);
        if (st == R3D_OK)
            st = r3d_scene_write(&s, argv[3], format_arg(argv[3], argc > 4 ? argv[4] : NULL),
                                 &err);
    } else if (argc == 3 && strcmp(argv[1], "info") == 0) {
        st = r3d_scene_read(argv[2], &s, &err);
        for (int i = 0; st == R3D_OK && i < s.n; i++) {
            const r3d_mesh *m = s.m[i];
            double lo[3] = {DBL_MAX, DBL_MAX, DBL_MAX}, hi[3] = {-DBL_MAX, -DBL_MAX, -DBL_MAX};
            for (int64_t k = 0; k < m->nv; k++)
                for (int j = 0; j < 3; j++) {
                    double c = m->v[3 * k + j];
                    lo[j] = c < lo[j] ? c : lo[j];
                    hi[j] = c > hi[j] ? c : hi[j];
                }
            printf("object %s nv %lld nt %lld rgb %d %d %d min %.9g %.9g %.9g max %.9g %.9g %.9g\n",
                   m->name[0] ? m->name : "-", (long long)m->nv, (long long)m->nt, m->rgb[0],
                   m->rgb[1], m->rgb[2], lo[0], lo[1], lo[2], hi[0], hi[1], hi[2]);
        }
    } else {
        fprintf(stderr, "usage: meshtool write OUT [stl-ascii|amf-zip]\n"
                        "       meshtool roundtrip IN OUT [stl-ascii|amf-zip]\n"
                        "       meshtool info IN\n");
        return 6;
    }
    r3d_scene_clear(&s);
    return report(st, &err);
}

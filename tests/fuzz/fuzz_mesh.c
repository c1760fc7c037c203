/* fuzz_mesh.c - libFuzzer target for the mesh readers (STL binary and
 * ASCII, OBJ, PLY ascii/binary) through the in-memory entry that
 * r3d_scene_read uses: each input is read as .stl, .obj, .ply and with no
 * extension (content detection). Any bytes must give a scene or an error
 * with a message, never a crash, a leak or an allocation the input does not
 * justify. CTest replays tests/fuzz/corpus/fuzz_mesh (tiny valid files of
 * each kind) and tests/data/bad through it with replay_main.c.
 */
#include "../../src/io/mesh/mesh_io.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *names[] = {"fuzz.stl", "fuzz.obj", "fuzz.ply", "fuzz"};
    for (int i = 0; i < 4; i++) {
        r3d_error err = R3D_ERROR_INIT;
        r3d_scene s = {0};
        r3d_status st = r3d__scene_read_mem(data, size, names[i], NULL, &s, &err);
        if (st == R3D_OK) {
            /* every index must address a vertex: touch them all */
            volatile float acc = 0;
            for (int k = 0; k < s.n; k++) {
                const r3d_mesh *m = s.m[k];
                for (int64_t j = 0; j < 3 * m->nt; j++) {
                    if ((int64_t)m->t[j] >= m->nv)
                        __builtin_trap();
                    acc += m->v[3 * (size_t)m->t[j]];
                }
            }
            (void)acc;
        } else if (!err.msg[0] || s.n != 0) {
            __builtin_trap(); /* a failure must say why and leave the scene empty */
        }
        r3d_scene_clear(&s);
    }
    return 0;
}

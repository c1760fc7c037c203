/* meshdec.c - analytic test meshes and timed decimation, for
 * bench/decimate_vs_vtk (which feeds the same files to vtkQuadricDecimation).
 *
 *   meshdec sphere LEVEL RADIUS OUT     icosphere, 20 * 4^LEVEL faces
 *   meshdec torus NU NV R r OUT         torus around z, 2 * NU * NV faces
 *   meshdec decimate IN FRACTION OUT [--cpu]
 *                                       r3d_mesh_decimate; prints the
 *                                       seconds spent inside it, nothing else
 *                                       (--cpu: CPU seconds of the process
 *                                       instead of wall-clock, which stays
 *                                       meaningful on a loaded machine; the
 *                                       decimation runs on one thread)
 * Files are raw little-endian: int64 nv, int64 nt, float xyz[nv][3],
 * uint32 tri[nt][3] (numpy reads them with two fromfile calls).
 * Exit status 0 on success, 1 on a library or file error, 2 on bad usage.
 */
#include "../unit/mesh_shapes.h"
#include "r3d/r3d.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int save(const r3d_mesh *m, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    int ok = fwrite(&m->nv, 8, 1, f) == 1 && fwrite(&m->nt, 8, 1, f) == 1 &&
             fwrite(m->v, sizeof(float), (size_t)m->nv * 3, f) == (size_t)m->nv * 3 &&
             fwrite(m->t, sizeof(uint32_t), (size_t)m->nt * 3, f) == (size_t)m->nt * 3;
    return fclose(f) == 0 && ok;
}

static r3d_mesh *load(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    int64_t nv, nt;
    r3d_mesh *m = NULL;
    if (fread(&nv, 8, 1, f) == 1 && fread(&nt, 8, 1, f) == 1 && nv >= 0 && nt >= 0 &&
        nv < ((int64_t)1 << 32) && nt < ((int64_t)1 << 34) && (m = r3d_mesh_new(NULL)) &&
        r3d_mesh_reserve(m, nv, nt, NULL) == R3D_OK &&
        fread(m->v, sizeof(float), (size_t)nv * 3, f) == (size_t)nv * 3 &&
        fread(m->t, sizeof(uint32_t), (size_t)nt * 3, f) == (size_t)nt * 3) {
        m->nv = nv;
        m->nt = nt;
    } else {
        r3d_mesh_free(m);
        m = NULL;
    }
    fclose(f);
    return m;
}

int main(int argc, char **argv)
{
    static const double origin[3] = {0, 0, 0};
    r3d_mesh *m = NULL;
    const char *out = NULL;
    if (argc == 5 && !strcmp(argv[1], "sphere")) {
        m = shapes_icosphere(atoi(argv[2]), atof(argv[3]), origin);
        out = argv[4];
    } else if (argc == 7 && !strcmp(argv[1], "torus")) {
        m = shapes_torus(atof(argv[4]), atof(argv[5]), atoi(argv[2]), atoi(argv[3]));
        out = argv[6];
    } else if ((argc == 5 || (argc == 6 && !strcmp(argv[5], "--cpu"))) &&
               !strcmp(argv[1], "decimate")) {
        double (*now)(void) = argc == 6 ? cpu_now : shapes_now;
        m = load(argv[2]);
        if (!m) {
            fprintf(stderr, "meshdec: cannot read %s\n", argv[2]);
            return 1;
        }
        r3d_decimate_opts o = R3D_DECIMATE_OPTS_INIT;
        o.target_fraction = atof(argv[3]);
        r3d_error e = R3D_ERROR_INIT;
        double t0 = now();
        if (r3d_mesh_decimate(m, &o, &e) != R3D_OK) {
            fprintf(stderr, "meshdec: %s\n", e.msg);
            r3d_mesh_free(m);
            return 1;
        }
        printf("%.6f\n", now() - t0);
        out = argv[4];
    } else {
        fprintf(stderr, "usage: meshdec sphere LEVEL RADIUS OUT | torus NU NV R r OUT |"
                        " decimate IN FRACTION OUT [--cpu]\n");
        return 2;
    }
    if (!save(m, out)) {
        fprintf(stderr, "meshdec: cannot write %s\n", out);
        r3d_mesh_free(m);
        return 1;
    }
    r3d_mesh_free(m);
    return 0;
}

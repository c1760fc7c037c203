/* meshbench.c - times the mesh stages for bench/mesh_vs_vtk and measures
 * surface distances between mesh files.
 *   meshbench MASK [--label V | --threshold X] [--smooth S] [--decimate F]
 *             [--pre OUT.stl] [--post OUT.stl] [--threads N] [--cpu] [--warm]
 *                                                   -> one JSON line of timings
 *   (--cpu: process CPU seconds instead of wall-clock, for a loaded machine;
 *   --warm: run extraction, smoothing and decimation once untimed first, so
 *   the timed run finds a warm heap, as VTK's second and later runs in one
 *   Python process do - a fresh process pays the kernel for every new page)
 *   meshbench --distance A.stl B.stl                -> one JSON line (mm)
 * MASK: any input recon3d reads; without --label every non-zero voxel is the
 * structure. Times are wall-clock seconds of each library call alone; the
 * smoothing is what recon3d mesh does by default (r3d_mesh_smooth_label for
 * masks, Taubin for thresholds). */
#include "r3d/r3d.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int cpu_clock; /* --cpu: process CPU time instead of wall-clock */

static double now(void)
{
    struct timespec ts;
    clock_gettime(cpu_clock ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int die(const r3d_error *e)
{
    fprintf(stderr, "meshbench: %s\n", e->msg);
    return 1;
}

static r3d_mesh *merged(const char *path, r3d_error *e)
{
    r3d_scene s = {0};
    if (r3d_scene_read(path, &s, e) != R3D_OK)
        return NULL;
    r3d_mesh *m = r3d_mesh_new(e);
    for (int i = 0; m && i < s.n; i++) {
        uint32_t base = (uint32_t)m->nv;
        for (int64_t v = 0; v < s.m[i]->nv; v++)
            r3d_mesh_add_vertex(m, s.m[i]->v[3 * v], s.m[i]->v[3 * v + 1], s.m[i]->v[3 * v + 2]);
        for (int64_t t = 0; t < s.m[i]->nt; t++)
            r3d_mesh_add_triangle(m, base + s.m[i]->t[3 * t], base + s.m[i]->t[3 * t + 1],
                                  base + s.m[i]->t[3 * t + 2]);
    }
    r3d_scene_clear(&s);
    return m;
}

static int write_one(const r3d_mesh *m, const char *path, r3d_error *e)
{
    r3d_error ce = R3D_ERROR_INIT;
    r3d_mesh *c = r3d_mesh_copy(m, &ce);
    r3d_scene s = {0};
    if (!c || r3d_scene_add(&s, c, e) != R3D_OK)
        return 0;
    int ok = r3d_scene_write(&s, path, r3d_mesh_format_from_name(path), e) == R3D_OK;
    r3d_scene_clear(&s);
    return ok;
}

typedef struct pipe_opts {
    const r3d_volume *v;
    const r3d_extract_opts *eo;
    int label, has_thr;
    double thr, smooth, dec;
    const char *pre, *post; /* meshes to write before / after decimation */
} pipe_opts;

typedef struct pipe_times {
    double extract, smooth, decimate;
    int64_t before; /* triangles before decimation */
} pipe_times;

/* Extraction, the default smoothing recon3d mesh applies (label-aware for
 * masks) and decimation, each timed; the mesh, or NULL and e. */
static r3d_mesh *pipeline(const pipe_opts *o, pipe_times *t, r3d_error *e)
{
    r3d_extract_opts eo = *o->eo;
    r3d_mesh *m;
    r3d_volume *l = NULL;
    double t0 = now();
    if (o->has_thr) {
        eo.iso = o->thr;
        m = r3d_mesh_from_image(o->v, &eo, e);
    } else {
        /* the structure as label 1 of a uint16 map (untimed) */
        if (!(l = r3d_volume_new_like(o->v, R3D_U16, e)))
            return NULL;
        uint16_t *d = l->voxels;
        for (int64_t i = 0, n = r3d_volume_nvox(o->v); i < n; i++) {
            double x = r3d_volume_get(o->v, i);
            d[i] = o->label >= 0 ? (x == o->label) : (x != 0);
        }
        t0 = now();
        m = r3d_mesh_from_label(l, 1, &eo, e);
    }
    double t1 = now();
    if (!m || (l ? r3d_mesh_smooth_label(m, l, 1, o->smooth, e)
                 : r3d_mesh_smooth(m, o->smooth, e)) != R3D_OK) {
        r3d_mesh_free(m);
        r3d_volume_free(l);
        return NULL;
    }
    r3d_volume_free(l);
    double t2 = now();
    t->before = m->nt;
    if (o->pre && !write_one(m, o->pre, e)) {
        r3d_mesh_free(m);
        return NULL;
    }
    double t3 = now(), t4 = t3;
    if (o->dec > 0) {
        r3d_decimate_opts d = R3D_DECIMATE_OPTS_INIT;
        d.target_fraction = o->dec;
        if (r3d_mesh_decimate(m, &d, e) != R3D_OK) {
            r3d_mesh_free(m);
            return NULL;
        }
        t4 = now();
    }
    if (o->post && !write_one(m, o->post, e)) {
        r3d_mesh_free(m);
        return NULL;
    }
    t->extract = t1 - t0, t->smooth = t2 - t1, t->decimate = t4 - t3;
    return m;
}

int main(int argc, char **argv)
{
    r3d_error e = R3D_ERROR_INIT;
    if (argc == 4 && !strcmp(argv[1], "--distance")) {
        r3d_mesh *a = merged(argv[2], &e), *b = a ? merged(argv[3], &e) : NULL;
        r3d_surface_distance d;
        if (!a || !b || r3d_mesh_distance(a, b, &d, &e) != R3D_OK)
            return die(&e);
        printf("{\"mean_mm\": %.6f, \"p95_mm\": %.6f, \"max_mm\": %.6f}\n", d.mean_mm, d.p95_mm,
               d.max_mm);
        r3d_mesh_free(a);
        r3d_mesh_free(b);
        return 0;
    }
    const char *in = NULL, *pre = NULL, *post = NULL;
    int label = -1, has_thr = 0, threads = 0, warm = 0;
    double thr = 0, smooth = 5, dec = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--label") && i + 1 < argc)
            label = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threshold") && i + 1 < argc)
            has_thr = 1, thr = atof(argv[++i]);
        else if (!strcmp(argv[i], "--smooth") && i + 1 < argc)
            smooth = atof(argv[++i]);
        else if (!strcmp(argv[i], "--decimate") && i + 1 < argc)
            dec = atof(argv[++i]);
        else if (!strcmp(argv[i], "--pre") && i + 1 < argc)
            pre = argv[++i];
        else if (!strcmp(argv[i], "--post") && i + 1 < argc)
            post = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--cpu"))
            cpu_clock = 1;
        else if (!strcmp(argv[i], "--warm"))
            warm = 1;
        else
            in = argv[i];
    }
    if (!in) {
        fprintf(stderr, "usage: meshbench MASK [--label V|--threshold X] [--smooth S] "
                        "[--decimate F] [--pre A.stl] [--post B.stl] [--threads N] [--cpu] [--warm]\n");
        return 2;
    }
    r3d_volume *v = r3d_input_load(in, NULL, NULL, NULL, &e);
    if (!v)
        return die(&e);
    r3d_set_threads(threads);
    r3d_extract_opts eo = R3D_EXTRACT_OPTS_INIT;
    eo.threads = threads;
    /* --warm: the whole pipeline once untimed first, so the timed run
     * meets warm caches and allocator, as VTK's median run does */
    pipe_opts po = {v, &eo, label, has_thr, thr, smooth, dec, NULL, NULL};
    pipe_times t;
    for (int w = 0; w < warm; w++) {
        r3d_mesh *m = pipeline(&po, &t, &e);
        if (!m)
            return die(&e);
        r3d_mesh_free(m);
    }
    po.pre = pre, po.post = post;
    r3d_mesh *m = pipeline(&po, &t, &e);
    if (!m)
        return die(&e);
    printf("{\"extract_s\": %.4f, \"smooth_s\": %.4f, \"decimate_s\": %.4f, "
           "\"triangles\": %lld, \"triangles_after\": %lld}\n",
           t.extract, t.smooth, t.decimate, (long long)t.before, (long long)m->nt);
    r3d_mesh_free(m);
    r3d_volume_free(v);
    return 0;
}

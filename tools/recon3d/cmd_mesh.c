/* cmd_mesh.c - recon3d mesh INPUT -o OUT.{stl,obj,ply,3mf,amf,wrl,3ds,glb}
 *
 * INPUT is a label map (one closed surface per label) or, with
 * --threshold, a grey-level image (the surface at that value, e.g. bone at
 * 300 HU). Each surface is extracted, smoothed without shrinkage, cleaned
 * (degenerate faces, orientation), optionally decimated, checked, and all go
 * into one file; formats that hold several objects keep each label's name
 * and colour. */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: recon3d mesh INPUT -o OUT.{stl,obj,ply,3mf,amf,wrl,3ds,glb}\n"
            "         [--label NAME|VALUE ...] [--threshold VALUE] [--smooth 0..10]\n"
            "         [--decimate FRACTION | --max-triangles N] [--keep-largest]\n"
            "         [--frame lps|ras] [--series UID|N] [--quiet]\n"
            "  INPUT          a label map (NIfTI, NRRD, InVesalius masks) or, with\n"
            "                 --threshold, any image (DICOM too)\n"
            "  --label        only these labels (repeatable; names need a label table)\n"
            "  --threshold    grey-level surface at VALUE in real units (HU for CT)\n"
            "  --smooth       0 = none, 10 = strongest; default 5 (volume-preserving)\n"
            "  --decimate     keep this fraction of the triangles (0..1)\n"
            "  --keep-largest keep only the largest connected part of each surface\n"
            "  --frame        coordinates in patient LPS (DICOM, default) or RAS (NIfTI)\n");
}

/* A distinct, saturated colour per label for maps without a table. */
static void label_colour(uint16_t v, uint8_t rgb[3])
{
    double h = fmod(v * 0.618033988749895, 1.0) * 6.0;
    int i = (int)h;
    double f = h - i, q = 1 - f;
    double r[6] = {1, q, 0, 0, f, 1}, g[6] = {f, 1, 1, q, 0, 0}, b[6] = {0, 0, f, 1, 1, q};
    rgb[0] = (uint8_t)(40 + 200 * r[i]);
    rgb[1] = (uint8_t)(40 + 200 * g[i]);
    rgb[2] = (uint8_t)(40 + 200 * b[i]);
}

typedef struct mesh_args {
    const char *input, *out, *series;
    const char *labels[64];
    int n_labels;
    int has_threshold;
    double threshold;
    double smooth;
    double decimate;
    int64_t max_triangles;
    int keep_largest;
    r3d_frame frame;
    int quiet;
} mesh_args;

/* The finishing steps every surface gets after smoothing. Label surfaces
 * are smoothed together by r3d_mesh_from_labels (the label-aware default:
 * Taubin held to the mask's volume, or on thick slices a flow that stays
 * consistent with the mask; shared boundaries kept shared); a threshold
 * surface by the windowed-sinc filter. Decimation goes through r3d_scene_decimate, which
 * keeps the vertices two structures share, so touching structures still
 * meet exactly after it. */
static r3d_status clean_mesh(r3d_mesh *m, const mesh_args *a, r3d_error *err)
{
    r3d_status st = r3d_mesh_remove_degenerate(m, err);
    if (st == R3D_OK && a->keep_largest)
        st = r3d_mesh_keep_largest_component(m, err);
    return st;
}

static r3d_status finish_scene(r3d_scene *s, const mesh_args *a, r3d_error *err)
{
    r3d_status st = R3D_OK;
    for (int i = 0; i < s->n && st == R3D_OK; i++)
        st = clean_mesh(s->m[i], a, err);
    if (st == R3D_OK && (a->decimate > 0 || a->max_triangles > 0)) {
        r3d_decimate_opts d = R3D_DECIMATE_OPTS_INIT;
        d.target_fraction = a->decimate;
        d.max_triangles = a->max_triangles;
        st = r3d_scene_decimate(s, &d, err);
    }
    for (int i = 0; i < s->n && st == R3D_OK; i++)
        st = r3d_mesh_orient_outward(s->m[i], err);
    return st;
}

static void report(const r3d_mesh *m, int quiet)
{
    if (quiet)
        return;
    r3d_mesh_metrics mm;
    r3d_mesh_check c;
    r3d_mesh_metrics_run(m, &mm);
    r3d_mesh_check_run(m, &c);
    fprintf(stderr, "  %-24s %9lld triangles  %10.2f mL  %s%s%s\n", m->name, (long long)m->nt,
            mm.volume_mm3 / 1000.0, c.closed && c.manifold ? "closed, manifold" : "NOT CLOSED",
            c.report[0] ? ": " : "", c.report);
}

/* Label values present in a label volume, ascending. */
static int labels_present(const r3d_volume *lab, uint16_t *out, int cap)
{
    static uint8_t seen[65536];
    memset(seen, 0, sizeof seen);
    const uint16_t *p = lab->voxels;
    int64_t n = r3d_volume_nvox(lab);
    for (int64_t i = 0; i < n; i++)
        seen[p[i]] = 1;
    int k = 0;
    for (int v = 1; v < 65536 && k < cap; v++)
        if (seen[v])
            out[k++] = (uint16_t)v;
    return k;
}

/* Any integer-valued volume to uint16 labels; refuses grey images. */
static r3d_volume *as_labels(const r3d_volume *v, r3d_error *err)
{
    r3d_volume *l = r3d_volume_new_like(v, R3D_U16, err);
    if (!l)
        return NULL;
    uint16_t *o = l->voxels;
    int64_t n = v->dim[0] * v->dim[1] * v->dim[2];
    for (int64_t i = 0; i < n; i++) {
        double x = r3d_volume_get(v, i);
        if (x < 0 || x > 65535 || x != floor(x)) {
            r3d_volume_free(l);
            r3d_fail(err, R3D_EARG,
                     "the input holds non-label values (e.g. %g): give --threshold VALUE to "
                     "reconstruct a grey-level image",
                     x);
            return NULL;
        }
        o[i] = (uint16_t)x;
    }
    return l;
}

static int wanted(const mesh_args *a, uint16_t value, const char *name)
{
    if (a->n_labels == 0)
        return 1;
    for (int i = 0; i < a->n_labels; i++) {
        char *end;
        long k = strtol(a->labels[i], &end, 10);
        if ((*end == 0 && k == value) || (name && !strcmp(a->labels[i], name)))
            return 1;
    }
    return 0;
}

R3D_COMMAND(40, mesh, "3D-printable surfaces of labels or of a threshold (STL OBJ PLY 3MF AMF ...)")

int cmd_mesh(int argc, char **argv)
{
    mesh_args a = {0};
    a.smooth = 5;
    a.frame = R3D_FRAME_LPS;
    int rc;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int more = i + 1 < argc;
        if ((!strcmp(s, "-o") || !strcmp(s, "--output")) && more)
            a.out = argv[++i];
        else if (!strcmp(s, "--label") && more) {
            if (a.n_labels == 64)
                return cli_usage("mesh: at most 64 --label options");
            a.labels[a.n_labels++] = argv[++i];
        } else if (!strcmp(s, "--threshold") && more) {
            a.has_threshold = 1;
            a.threshold = atof(argv[++i]);
        } else if (!strcmp(s, "--smooth") && more)
            a.smooth = atof(argv[++i]);
        else if (!strcmp(s, "--decimate") && more)
            a.decimate = atof(argv[++i]);
        else if (!strcmp(s, "--max-triangles") && more)
            a.max_triangles = atoll(argv[++i]);
        else if (!strcmp(s, "--keep-largest"))
            a.keep_largest = 1;
        else if (!strcmp(s, "--series") && more)
            a.series = argv[++i];
        else if (!strcmp(s, "--frame") && more) {
            const char *f = argv[++i];
            if (!strcmp(f, "lps"))
                a.frame = R3D_FRAME_LPS;
            else if (!strcmp(f, "ras"))
                a.frame = R3D_FRAME_RAS;
            else
                return cli_usage("mesh: --frame is lps or ras");
        } else if (!strcmp(s, "--quiet") || !strcmp(s, "-q"))
            a.quiet = 1;
        else if ((rc = cli_other_arg("mesh", usage, s, &a.input, NULL)) != CLI_ARG_TAKEN)
            return rc;
    }
    if ((rc = cli_need_input_out("mesh", usage, a.input, a.out, "OUT")))
        return rc;
    r3d_mesh_format fmt = r3d_mesh_format_from_name(a.out);
    if (fmt == R3D_MESH_UNKNOWN)
        return cli_usage("mesh: %s: unknown mesh format (use .stl .obj .ply .3mf .amf .wrl .3ds "
                         ".glb)",
                         a.out);
    if (!(a.smooth >= 0 && a.smooth <= 10))
        return cli_usage("mesh: --smooth must be 0..10");
    if (a.decimate < 0 || a.decimate > 1)
        return cli_usage("mesh: --decimate is a fraction 0..1");

    cli_progress pr;
    cli_progress_init(&pr, a.quiet);
    r3d_input_opts io = R3D_INPUT_OPTS_INIT;
    io.series = a.series;
    io.scan.progress = cli_progress_cb;
    io.scan.progress_ctx = &pr;
    r3d_error err = R3D_ERROR_INIT;
    r3d_labelmap *masks = NULL;
    r3d_volume *v = r3d_input_load(a.input, &io, &masks, NULL, &err);
    cli_progress_end(&pr);
    if (!v)
        return cli_fail(&err);

    r3d_scene scene = {0};
    r3d_extract_opts eo = R3D_EXTRACT_OPTS_INIT;
    eo.frame = a.frame;
    rc = EXIT_OK;
    if (a.has_threshold) {
        eo.iso = a.threshold;
        r3d_mesh *m = r3d_mesh_from_image(v, &eo, &err);
        if (!m || r3d_mesh_smooth(m, a.smooth, &err) != R3D_OK ||
            (snprintf(m->name, sizeof m->name, "threshold_%g", a.threshold),
             r3d_scene_add(&scene, m, &err)) != R3D_OK) {
            r3d_mesh_free(m);
            rc = cli_fail(&err);
        } else {
            m->rgb[0] = 230, m->rgb[1] = 220, m->rgb[2] = 200; /* bone white */
        }
    } else {
        /* InVesalius masks are the labels; otherwise the input itself. */
        r3d_volume *lab = masks ? masks->vol : as_labels(v, &err);
        const r3d_label_table *tab = masks ? &masks->table : NULL;
        if (!lab) {
            rc = cli_fail(&err);
        } else {
            uint16_t vals[4096];
            int n = labels_present(lab, vals, 4096);
            if (n == 0) {
                r3d_fail(&err, R3D_ENOTFOUND, "%s: the label map is empty", a.input);
                rc = cli_fail(&err);
            }
            /* every wanted label at once, so touching structures share
             * their boundary vertices (no gap, no overlap) */
            uint16_t want[4096];
            int nw = 0;
            for (int i = 0; i < n; i++) {
                const r3d_label *l = tab ? r3d_label_table_find(tab, vals[i]) : NULL;
                if (wanted(&a, vals[i], l ? l->name : NULL))
                    want[nw++] = vals[i];
            }
            if (rc == EXIT_OK && nw > 0 &&
                r3d_mesh_from_labels(lab, want, nw, &eo, a.smooth, &scene, &err) != R3D_OK)
                rc = cli_fail(&err);
            for (int i = 0; i < scene.n && rc == EXIT_OK; i++) {
                r3d_mesh *m = scene.m[i];
                const r3d_label *l = tab ? r3d_label_table_find(tab, m->label) : NULL;
                if (l) {
                    snprintf(m->name, sizeof m->name, "%s", l->name);
                    snprintf(m->name_zh, sizeof m->name_zh, "%s", l->name_zh);
                    memcpy(m->rgb, l->rgb, 3);
                } else {
                    snprintf(m->name, sizeof m->name, "label_%u", (unsigned)m->label);
                    label_colour(m->label, m->rgb);
                }
            }
            if (rc == EXIT_OK && scene.n == 0) {
                r3d_fail(&err, R3D_ENOTFOUND, "%s: none of the requested labels is present",
                         a.input);
                rc = cli_fail(&err);
            }
            if (!masks)
                r3d_volume_free(lab);
        }
    }
    if (rc == EXIT_OK && finish_scene(&scene, &a, &err) != R3D_OK)
        rc = cli_fail(&err);
    for (int i = 0; i < scene.n && rc == EXIT_OK; i++)
        report(scene.m[i], a.quiet);
    if (rc == EXIT_OK && r3d_scene_write(&scene, a.out, fmt, &err) != R3D_OK)
        rc = cli_fail(&err) == EXIT_NOMEM ? EXIT_NOMEM : EXIT_OUTPUT;
    else if (rc == EXIT_OK && !a.quiet)
        fprintf(stderr, "%d surface%s -> %s (%s, %s mm) in %.2f s\n", scene.n,
                scene.n == 1 ? "" : "s", a.out, r3d_mesh_format_name(fmt),
                a.frame == R3D_FRAME_LPS ? "LPS" : "RAS", cli_now() - pr.t0);
    r3d_scene_clear(&scene);
    r3d_labelmap_free(masks);
    r3d_volume_free(v);
    return rc;
}

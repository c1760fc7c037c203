/* cmd_segment.c - recon3d segment INPUT -o DIR [--structures a,b,...]
 *                                     [--formats stl,3mf,...]
 *
 * Segments a chest CT without interaction (body, skin, lungs and lobes,
 * airway tree by generation, pulmonary vessels, nodules, bones) and writes
 *   DIR/labels.nii.gz   label map on the input's grid
 *   DIR/labels.json     value, name, Chinese name, colour, volume, voxels;
 *                       the airway's branch counts per generation
 *   DIR/meshes/<name>.<format>  one closed surface per structure, smoothed
 *                       as `recon3d mesh` smooths a label (strength 5, held
 *                       to the mask's volume; the plain low pass shrank thin
 *                       and small structures: on the chest CT nodules of
 *                       5 mm -41 %, bronchi -28 %, skin -16 %, vessels -15 %,
 *                       now -1..-4 %), over 300 000 triangles decimated
 *   DIR/report.json     acquisition, structures found and absent, airway
 *                       tree, nodules, timings, version and parameters. */
#include "cli.h"
#include "r3d/seg.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: recon3d segment INPUT -o DIR [--structures LIST] [--formats LIST]\n"
            "         [--series UID|N] [--no-meshes] [--quiet]\n"
            "  INPUT         a CT: DICOM folder, zip or file, NIfTI, NRRD\n"
            "  -o DIR        labels.nii.gz, labels.json, report.json, meshes/<name>.<fmt>\n"
            "  --structures  comma-separated names or groups: body, lungs, lobes, airway,\n"
            "                bones, vessels, nodules (default: all), segments (lung\n"
            "                segments in place of their lobe; not in all: all,segments),\n"
            "                vertebrae (numbered vertebrae in place of spine when an\n"
            "                anchor - sacrum, T12 - is in view; not in all)\n"
            "  --formats     mesh formats, comma-separated: stl obj ply 3mf amf wrl 3ds glb\n"
            "                (default: stl)\n");
}

typedef struct seg_args {
    const char *input, *out, *structures, *formats, *series;
    int quiet, no_meshes;
} seg_args;

static void seg_progress(void *ctx, const char *stage, int64_t done, int64_t total)
{
    cli_progress *p = ctx;
    if (p->quiet)
        return;
    if (strcmp(stage, p->stage) != 0) {
        fprintf(stderr, "segment: %-10s (%.1f s)\n", stage, cli_now() - p->t0);
        snprintf(p->stage, sizeof p->stage, "%s", stage);
    }
    (void)done, (void)total;
}

static int make_dir(const char *path, r3d_error *err)
{
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
        r3d_fail(err, R3D_EIO, "%s: cannot create folder: %s", path, strerror(errno));
        return 0;
    }
    return 1;
}

static r3d_status write_text(const char *path, const char *text, r3d_error *err)
{
    return r3d_file_write_atomic(path, text, strlen(text), err);
}

/* labels.json from the table and the report's volumes. */
static char *labels_json(const r3d_labelmap *lm, cJSON *report)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "labels");
    cJSON *structs = cJSON_GetObjectItem(report, "structures");
    for (int i = 0; i < lm->table.n; i++) {
        const r3d_label *l = &lm->table.v[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "value", l->value);
        cJSON_AddStringToObject(o, "name", l->name);
        cJSON_AddStringToObject(o, "name_zh", l->name_zh);
        cJSON *c = cJSON_AddArrayToObject(o, "color");
        for (int k = 0; k < 3; k++)
            cJSON_AddItemToArray(c, cJSON_CreateNumber(l->rgb[k]));
        cJSON *s;
        cJSON_ArrayForEach(s, structs)
        {
            cJSON *v = cJSON_GetObjectItem(s, "value");
            if (cJSON_IsNumber(v) && v->valuedouble == l->value) {
                cJSON_AddItemToObject(o, "volume_ml",
                                      cJSON_Duplicate(cJSON_GetObjectItem(s, "volume_ml"), 1));
                cJSON_AddItemToObject(o, "voxels",
                                      cJSON_Duplicate(cJSON_GetObjectItem(s, "voxels"), 1));
            }
        }
        cJSON_AddItemToArray(arr, o);
    }
    cJSON *aw = cJSON_GetObjectItem(report, "airway");
    if (aw) {
        cJSON *t = cJSON_AddObjectToObject(root, "airway_tree");
        cJSON_AddItemToObject(t, "max_generation",
                              cJSON_Duplicate(cJSON_GetObjectItem(aw, "max_generation"), 1));
        cJSON_AddItemToObject(t, "branches_per_generation",
                              cJSON_Duplicate(cJSON_GetObjectItem(aw, "branches_per_generation"), 1));
    }
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    return s;
}

static int write_meshes(const seg_args *a, const r3d_labelmap *lm, cJSON *report, r3d_error *err)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/meshes", a->out);
    if (!make_dir(dir, err))
        return 0;
    cJSON *list = cJSON_AddArrayToObject(report, "meshes");
    const char *fl = a->formats ? a->formats : "stl";
    for (int i = 0; i < lm->table.n; i++) {
        const r3d_label *l = &lm->table.v[i];
        r3d_extract_opts eo = R3D_EXTRACT_OPTS_INIT;
        r3d_mesh *m = r3d_mesh_from_label(lm->vol, l->value, &eo, err);
        if (!m)
            return 0;
        r3d_status st = r3d_mesh_smooth_label(m, lm->vol, l->value, 5, err);
        if (st == R3D_OK)
            st = r3d_mesh_remove_degenerate(m, err);
        if (st == R3D_OK && m->nt > 300000) {
            r3d_decimate_opts d = R3D_DECIMATE_OPTS_INIT;
            d.max_triangles = 300000;
            st = r3d_mesh_decimate(m, &d, err);
        }
        if (st == R3D_OK)
            st = r3d_mesh_orient_outward(m, err);
        if (st != R3D_OK) {
            r3d_mesh_free(m);
            return 0;
        }
        m->label = l->value;
        snprintf(m->name, sizeof m->name, "%s", l->name);
        snprintf(m->name_zh, sizeof m->name_zh, "%s", l->name_zh);
        memcpy(m->rgb, l->rgb, 3);
        r3d_scene sc = {0};
        if (r3d_scene_add(&sc, m, err) != R3D_OK) {
            r3d_mesh_free(m);
            return 0;
        }
        const char *p = fl;
        while (*p) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            char ext[16], path[4200];
            snprintf(ext, sizeof ext, "%.*s", (int)(len < 15 ? len : 15), p);
            snprintf(path, sizeof path, "%s/%s.%s", dir, l->name, ext);
            r3d_mesh_format f = r3d_mesh_format_from_name(path);
            if (f == R3D_MESH_UNKNOWN) {
                r3d_scene_clear(&sc);
                r3d_fail(err, R3D_EARG, "--formats: unknown mesh format \"%s\"", ext);
                return 0;
            }
            if (r3d_scene_write(&sc, path, f, err) != R3D_OK) {
                r3d_scene_clear(&sc);
                return 0;
            }
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "structure", l->name);
            snprintf(path, sizeof path, "meshes/%s.%s", l->name, ext);
            cJSON_AddStringToObject(o, "file", path);
            cJSON_AddNumberToObject(o, "triangles", (double)m->nt);
            cJSON_AddItemToArray(list, o);
            if (!e)
                break;
            p = e + 1;
        }
        if (!a->quiet)
            fprintf(stderr, "  mesh %-28s %8lld triangles\n", l->name, (long long)m->nt);
        r3d_scene_clear(&sc);
    }
    return 1;
}

R3D_COMMAND(45, segment, "automatic chest CT segmentation: labels, meshes, airway tree, nodules, report")

int cmd_segment(int argc, char **argv)
{
    seg_args a = {0};
    int rc;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int more = i + 1 < argc;
        if ((!strcmp(s, "-o") || !strcmp(s, "--output")) && more)
            a.out = argv[++i];
        else if (!strcmp(s, "--structures") && more)
            a.structures = argv[++i];
        else if (!strcmp(s, "--formats") && more)
            a.formats = argv[++i];
        else if (!strcmp(s, "--series") && more)
            a.series = argv[++i];
        else if (!strcmp(s, "--no-meshes"))
            a.no_meshes = 1;
        else if (!strcmp(s, "--quiet") || !strcmp(s, "-q"))
            a.quiet = 1;
        else if ((rc = cli_other_arg("segment", usage, s, &a.input, NULL)) != CLI_ARG_TAKEN)
            return rc;
    }
    if ((rc = cli_need_input_out("segment", usage, a.input, a.out, "DIR")))
        return rc;
    if (a.formats) {
        const char *p = a.formats;
        while (*p) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            char path[32];
            snprintf(path, sizeof path, "x.%.*s", (int)(len < 20 ? len : 20), p);
            if (r3d_mesh_format_from_name(path) == R3D_MESH_UNKNOWN)
                return cli_usage("segment: --formats: unknown mesh format \"%.*s\"",
                                 (int)(len < 20 ? len : 20), p);
            if (!e)
                break;
            p = e + 1;
        }
    }
    cli_progress pr;
    cli_progress_init(&pr, a.quiet);
    r3d_input_opts io = R3D_INPUT_OPTS_INIT;
    io.series = a.series;
    io.scan.progress = cli_progress_cb;
    io.scan.progress_ctx = &pr;
    r3d_error err = R3D_ERROR_INIT;
    r3d_volume *v = r3d_input_load(a.input, &io, NULL, NULL, &err);
    cli_progress_end(&pr);
    if (!v)
        return cli_fail(&err);
    if (v->acq.modality[0] && strcmp(v->acq.modality, "CT") != 0) {
        r3d_fail(&err, R3D_EUNSUPPORTED, "%s: segmentation needs a CT, this is %s", a.input,
                 v->acq.modality);
        r3d_volume_free(v);
        return cli_fail(&err);
    }
    if (!make_dir(a.out, &err)) {
        r3d_volume_free(v);
        return cli_fail(&err), EXIT_OUTPUT;
    }
    r3d_seg_opts so = {a.structures, seg_progress, &pr};
    snprintf(pr.stage, sizeof pr.stage, "%s", "");
    pr.t0 = cli_now();
    r3d_seg_result res = {0};
    if (r3d_segment_ct(v, &so, &res, &err) != R3D_OK) {
        r3d_volume_free(v);
        return cli_fail(&err);
    }
    double t_seg = cli_now() - pr.t0;
    cJSON *report = cJSON_Parse(res.report_json);
    rc = EXIT_OK;
    char path[4200];
    if (!report) {
        r3d_fail(&err, R3D_EDATA, "segment: the report is not valid JSON");
        rc = cli_fail(&err);
    }
    if (rc == EXIT_OK) {
        snprintf(path, sizeof path, "%s/labels.nii.gz", a.out);
        if (r3d_nifti_write(res.labels->vol, path, NULL, &err) != R3D_OK)
            rc = EXIT_OUTPUT, cli_fail(&err);
    }
    if (rc == EXIT_OK) {
        char *lj = labels_json(res.labels, report);
        snprintf(path, sizeof path, "%s/labels.json", a.out);
        if (!lj || write_text(path, lj, &err) != R3D_OK)
            rc = EXIT_OUTPUT, cli_fail(&err);
        free(lj);
    }
    double t_mesh0 = cli_now();
    if (rc == EXIT_OK && !a.no_meshes) {
        if (!a.quiet)
            fprintf(stderr, "segment: meshes     (%.1f s)\n", cli_now() - pr.t0);
        if (!write_meshes(&a, res.labels, report, &err))
            rc = cli_fail(&err) == EXIT_NOMEM ? EXIT_NOMEM : EXIT_OUTPUT;
    }
    if (rc == EXIT_OK) {
        cJSON *ti = cJSON_GetObjectItem(report, "timings_s");
        if (ti && !a.no_meshes)
            cJSON_AddNumberToObject(ti, "meshes", round((cli_now() - t_mesh0) * 1000) / 1000);
        char *rj = cJSON_Print(report);
        snprintf(path, sizeof path, "%s/report.json", a.out);
        if (!rj || write_text(path, rj, &err) != R3D_OK)
            rc = EXIT_OUTPUT, cli_fail(&err);
        free(rj);
    }
    if (rc == EXIT_OK && !a.quiet) {
        cJSON *s;
        fprintf(stderr, "segmented in %.1f s:\n", t_seg);
        cJSON_ArrayForEach(s, cJSON_GetObjectItem(report, "structures"))
        {
            fprintf(stderr, "  %-28s %10.2f mL\n", cJSON_GetObjectItem(s, "name")->valuestring,
                    cJSON_GetObjectItem(s, "volume_ml")->valuedouble);
        }
        cJSON_ArrayForEach(s, cJSON_GetObjectItem(report, "absent"))
        fprintf(stderr, "  %-28s absent\n", s->valuestring);
        cJSON *aw = cJSON_GetObjectItem(report, "airway");
        if (aw) {
            fprintf(stderr, "  airway: generations 0..%d, branches per generation:",
                    (int)cJSON_GetObjectItem(aw, "max_generation")->valuedouble);
            cJSON_ArrayForEach(s, cJSON_GetObjectItem(aw, "branches_per_generation"))
            fprintf(stderr, " %d", (int)s->valuedouble);
            fputc('\n', stderr);
        }
        cJSON_ArrayForEach(s, cJSON_GetObjectItem(report, "nodules"))
        {
            fprintf(stderr, "  %s: %s lung %s, %.1f x %.1f mm, %.2f mL, %s\n",
                    cJSON_GetObjectItem(s, "name")->valuestring,
                    cJSON_GetObjectItem(s, "lung")->valuestring,
                    cJSON_GetObjectItem(s, "lobe")->valuestring,
                    cJSON_GetObjectItem(s, "long_axis_mm")->valuedouble,
                    cJSON_GetObjectItem(s, "short_axis_mm")->valuedouble,
                    cJSON_GetObjectItem(s, "volume_ml")->valuedouble,
                    cJSON_GetObjectItem(s, "type")->valuestring);
        }
        fprintf(stderr, "-> %s\n", a.out);
    }
    cJSON_Delete(report);
    r3d_seg_result_free(&res);
    r3d_volume_free(v);
    return rc;
}

/* cmd_export_dicom.c - recon3d export-dicom INPUT --source DICOM -o OUTDIR:
 * the results back into the hospital's DICOM world (clause 4.2.1).
 *
 * INPUT is the folder `recon3d segment` writes (labels.nii.gz, labels.json,
 * meshes/<name>.stl|obj) or one label map (NIfTI / NRRD), whose meshes are
 * then extracted here. --source is the DICOM series the labels were made
 * from (folder, zip or file; --series picks one). Written:
 *   OUTDIR/<StudyUID>/<SeriesUID>/<SOPInstanceUID>.dcm
 * one SEG (every label, registry names, colours and SNOMED CT codes) and
 * one Encapsulated STL per mesh (or OBJ + MTL with --models obj), all in
 * the source's study and frame of reference. Names come from UIDs, never
 * from input names. With --deidentify the whole set goes through one
 * de-identification run (PS3.15 basic profile): the source series is
 * written de-identified too, and the SEG and models refer to its new UIDs;
 * OUTDIR/deidentification.json says what was done. */
#include "cli.h"

#include <math.h>

#include "r3d/dicom_seg.h"
#include "r3d/store.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


static void usage(FILE *f)
{
    fprintf(f,
            "usage: recon3d export-dicom INPUT --source DICOM -o OUTDIR [--series UID|N]\n"
            "         [--models stl|obj|none] [--deidentify [--retain-dates]\n"
            "         [--clean-descriptors] [--retain-safe-private]] [--quiet]\n"
            "  INPUT        a `recon3d segment` output folder (labels.nii.gz, labels.json,\n"
            "               meshes/) or one label map (NIfTI, NRRD; names and colours from\n"
            "               INPUT.json or labels.json beside it, else the registry)\n"
            "  --source     the DICOM series the labels were made from (a folder with\n"
            "               several series: the one on the label map's grid, or --series)\n"
            "  -o OUTDIR    OUTDIR/<StudyUID>/<SeriesUID>/<SOPInstanceUID>.dcm: one SEG and\n"
            "               one encapsulated model per mesh\n"
            "  --models     stl (default): Encapsulated STL; obj: Encapsulated OBJ + MTL;\n"
            "               none: the SEG only\n"
            "  --deidentify write everything, the source series included, de-identified\n"
            "               by the PS3.15 basic profile in one run (references kept)\n"
            "   or: recon3d export-dicom CASE --source DICOM -o OUTDIR [--version N]\n"
            "         [--identified] [--models stl|obj|none] [--store DIR] [--user NAME]\n"
            "  CASE         case:N or --case N of the store (--store DIR or R3D_STORE; log-in\n"
            "               by --user/R3D_USER + R3D_PASSWORD, or R3D_TOKEN): its label map\n"
            "               (head, or --version N) and its surfaces. --source: the series it\n"
            "               was imported from, checked file by file against the SHA-256s the\n"
            "               store kept. De-identified by default (permission export);\n"
            "               --identified keeps identity (permission export.identified)\n"
            "   or: recon3d export-dicom --seg-to-labels SEG.dcm [--source DICOM] -o OUT.nii.gz\n"
            "               a DICOM SEG back into a label map (+ OUT.nii.gz.json), on the\n"
            "               source series' grid when given, else on the SEG's own\n");
}

typedef struct exp_args {
    const char *input, *source, *series, *out;
    int models; /* 0 none, 1 stl, 2 obj */
    int deid;
    r3d_deid_opts dopts;
    int quiet;
} exp_args;

/* ---- inputs ------------------------------------------------------------------------ */

static r3d_labelmap *load_labels(const char *path, r3d_error *err)
{
    r3d_input_opts io = R3D_INPUT_OPTS_INIT;
    io.scan.quiet = 1;
    r3d_volume *v = r3d_input_load(path, &io, NULL, NULL, err);
    if (!v)
        return NULL;
    if (v->dim[3] != 1) {
        r3d_volume_free(v);
        return r3d_fail(err, R3D_EARG, "%s: a label map has one volume, not %lld", path,
                        (long long)v->dim[3]), NULL;
    }
    r3d_labelmap *lm = r3d_labelmap_new(v, err);
    if (!lm) {
        r3d_volume_free(v);
        return NULL;
    }
    uint16_t *o = lm->vol->voxels;
    int64_t n = r3d_volume_nvox(v);
    for (int64_t i = 0; i < n; i++) {
        double x = r3d_volume_get(v, i);
        if (x < 0 || x > 65535 || x != floor(x)) {
            r3d_volume_free(v);
            r3d_labelmap_free(lm);
            return r3d_fail(err, R3D_EARG, "%s: not a label map (holds the value %g)", path, x),
                   NULL;
        }
        o[i] = (uint16_t)x;
    }
    r3d_volume_free(v);
    return lm;
}

/* The label table: labels.json beside the map when there is one, then the
 * registry for any value still without an entry. */
static r3d_status fill_table(r3d_labelmap *lm, const char *json_path, r3d_error *err)
{
    uint8_t *buf;
    size_t n;
    if (json_path && r3d_file_read_all(json_path, &buf, &n, NULL) == R3D_OK) {
        cJSON *root = cJSON_ParseWithLength((const char *)buf, n);
        free(buf);
        if (!root)
            return r3d_fail(err, R3D_EFORMAT, "%s: not valid JSON", json_path);
        cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(root, "labels"))
        {
            cJSON *v = cJSON_GetObjectItem(it, "value"), *nm = cJSON_GetObjectItem(it, "name"),
                  *zh = cJSON_GetObjectItem(it, "name_zh"), *c = cJSON_GetObjectItem(it, "color");
            if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 65535)
                continue;
            r3d_label l;
            memset(&l, 0, sizeof l);
            l.value = (uint16_t)v->valuedouble;
            if (cJSON_IsString(nm))
                snprintf(l.name, sizeof l.name, "%s", nm->valuestring);
            if (cJSON_IsString(zh))
                snprintf(l.name_zh, sizeof l.name_zh, "%s", zh->valuestring);
            for (int k = 0; k < 3 && cJSON_GetArraySize(c) == 3; k++) {
                cJSON *ck = cJSON_GetArrayItem(c, k);
                double x = cJSON_IsNumber(ck) ? ck->valuedouble : 0;
                l.rgb[k] = (uint8_t)(x < 0 ? 0 : x > 255 ? 255 : x);
            }
            if (!r3d_label_table_find(&lm->table, l.value) &&
                r3d_label_table_add(&lm->table, &l, err) != R3D_OK) {
                cJSON_Delete(root);
                return R3D_ENOMEM;
            }
        }
        cJSON_Delete(root);
    }
    static uint8_t seen[65536];
    memset(seen, 0, sizeof seen);
    const uint16_t *L = lm->vol->voxels;
    int64_t nv = r3d_volume_nvox(lm->vol);
    for (int64_t i = 0; i < nv; i++)
        seen[L[i]] = 1;
    for (int v = 1; v < 65536; v++) {
        if (!seen[v] || r3d_label_table_find(&lm->table, (uint16_t)v))
            continue;
        const r3d_structure *s = r3d_structure_by_value((uint16_t)v);
        r3d_label l;
        memset(&l, 0, sizeof l);
        if (s)
            r3d_structure_label(s, &l);
        else {
            l.value = (uint16_t)v;
            snprintf(l.name, sizeof l.name, "label_%d", v);
            l.rgb[0] = l.rgb[1] = l.rgb[2] = 200;
        }
        if (r3d_label_table_add(&lm->table, &l, err) != R3D_OK)
            return R3D_ENOMEM;
    }
    return R3D_OK;
}

/* Meshes: DIR/meshes/<name>.stl|obj|ply when INPUT is a folder, else the
 * surfaces of the label map (shared boundaries, default smoothing). */
static r3d_status collect_meshes(const exp_args *a, int is_dir, const r3d_labelmap *lm,
                                 r3d_scene *sc, r3d_error *err)
{
    if (is_dir) {
        char mdir[PATH_MAX];
        snprintf(mdir, sizeof mdir, "%s/meshes", a->input);
        DIR *d = opendir(mdir);
        if (!d)
            return R3D_OK; /* no meshes: the SEG alone */
        struct dirent *de;
        char **names = NULL;
        int nn = 0;
        while ((de = readdir(d))) {
            if (!r3d_has_suffix(de->d_name, ".stl") && !r3d_has_suffix(de->d_name, ".obj") &&
                !r3d_has_suffix(de->d_name, ".ply"))
                continue;
            char **nv = realloc(names, (size_t)(nn + 1) * sizeof *nv);
            if (!nv || !(nv[nn] = strdup(de->d_name))) {
                free(nv ? nv : names);
                closedir(d);
                return r3d_fail(err, R3D_ENOMEM, "out of memory");
            }
            names = nv;
            nn++;
        }
        closedir(d);
        qsort(names, (size_t)nn, sizeof *names, (int (*)(const void *, const void *))strcmp);
        r3d_status st = R3D_OK;
        for (int i = 0; i < nn; i++) {
            char path[PATH_MAX];
            if (snprintf(path, sizeof path, "%s/%s", mdir, names[i]) >= (int)sizeof path) {
                free(names[i]);
                continue;
            }
            r3d_scene one = {0};
            if (st == R3D_OK)
                st = r3d_scene_read(path, &one, err);
            /* the structure is the file's name: meshes/<name>.<ext> */
            char base[256];
            snprintf(base, sizeof base, "%s", names[i]);
            char *dot = strrchr(base, '.');
            if (dot)
                *dot = 0;
            for (int k = 0; k < one.n && st == R3D_OK; k++) {
                r3d_mesh *m = one.m[k];
                if (one.n == 1 || !m->name[0])
                    snprintf(m->name, sizeof m->name, "%.63s", base);
                const r3d_label *l = r3d_label_table_find_name(&lm->table, m->name);
                if (l) {
                    m->label = l->value;
                    snprintf(m->name_zh, sizeof m->name_zh, "%s", l->name_zh);
                    memcpy(m->rgb, l->rgb, 3);
                }
                one.m[k] = NULL;
                if ((st = r3d_scene_add(sc, m, err)) != R3D_OK)
                    r3d_mesh_free(m);
            }
            r3d_scene_clear(&one);
            free(names[i]);
        }
        free(names);
        return st;
    }
    (void)lm;
    (void)sc;
    return R3D_OK; /* a label map alone: r3d_dicom_export extracts its surfaces */
}

/* Do the two grids have the same voxel centres (axes possibly permuted or
 * flipped, as a NRRD or a reoriented NIfTI of the same series has)? Each
 * series grid corner must land on a label-map corner, and each axis step on
 * one label axis step. */
static int same_voxels(const double m[4][4], const int64_t dim[3], const r3d_volume *lab)
{
    const double (*l)[4] = lab->ijk_to_lps;
    double a = l[0][0], b = l[0][1], c = l[0][2], d = l[1][0], e = l[1][1], f = l[1][2],
           g = l[2][0], h = l[2][1], i = l[2][2];
    double det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g);
    if (!(fabs(det) > 1e-12))
        return 0;
    double inv[3][3] = {{(e * i - f * h) / det, (c * h - b * i) / det, (b * f - c * e) / det},
                        {(f * g - d * i) / det, (a * i - c * g) / det, (c * d - a * f) / det},
                        {(d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det}};
    /* series voxel (x,y,z) -> label index: A * (x,y,z) + t */
    for (int col = 0; col < 4; col++) {
        double v[3];
        for (int r = 0; r < 3; r++)
            v[r] = m[r][col] - (col == 3 ? l[r][3] : 0);
        for (int r = 0; r < 3; r++) {
            double x = inv[r][0] * v[0] + inv[r][1] * v[1] + inv[r][2] * v[2];
            if (fabs(x - floor(x + 0.5)) > 1e-3)
                return 0; /* not onto voxel centres */
            if (col < 3 && fabs(x) > 1e-3 && fabs(fabs(x) - 1) > 1e-3)
                return 0; /* not a unit step along one label axis */
            if (col == 3 && (x < -1e-3 || x > lab->dim[r] - 1 + 1e-3))
                return 0;
        }
    }
    (void)dim;
    return 1;
}

/* Without --series: the series of the source whose grid is the label map's
 * (the one it was segmented from). Returns how many match; uid is set when
 * exactly one does. */
static int pick_series(const char *source, const r3d_volume *lab, char uid[65])
{
    r3d_scan_opts so = R3D_SCAN_OPTS_INIT;
    so.quiet = 1;
    r3d_dicom_scan *s = r3d_dicom_scan_path(source, &so, NULL);
    if (!s)
        return 0;
    int found = -1, n = 0;
    for (int i = 0; i < r3d_dicom_scan_count(s); i++) {
        const r3d_series_info *in = r3d_dicom_scan_info(s, i);
        int64_t nv = (int64_t)in->cols * in->rows * in->n_slices;
        if (nv != lab->dim[0] * lab->dim[1] * lab->dim[2] || in->multiframe || in->mosaic ||
            in->n_volumes != 1)
            continue; /* not this grid, or a source derived objects cannot refer to */
        if (same_voxels(in->ijk_to_lps, (const int64_t[3]){in->cols, in->rows, in->n_slices},
                        lab)) {
            found = i;
            n++;
        }
    }
    if (n == 1)
        snprintf(uid, 65, "%s", r3d_dicom_scan_info(s, found)->uid);
    r3d_dicom_scan_free(s);
    return n;
}

/* --seg-to-labels SEG [--source DICOM] -o OUT.nii[.gz]: the other way, a
 * DICOM SEG into a label map (on the source series' grid when given, else
 * on the SEG's own), with OUT's labels.json-style table beside it. */
static int seg_to_labels(const char *seg, const char *source, const char *series,
                         const char *out, int quiet)
{
    r3d_error err = R3D_ERROR_INIT;
    r3d_volume *ref = NULL;
    if (source) {
        r3d_dcm_source *src = r3d_dcm_source_open(source, series, &err);
        ref = src ? r3d_dcm_source_load(src, &err) : NULL;
        r3d_dcm_source_free(src);
        if (!ref)
            return cli_fail(&err);
    }
    r3d_labelmap *lm = NULL;
    r3d_seg_read_info ri;
    r3d_status st = r3d_seg_read(seg, ref, &lm, &ri, &err);
    r3d_volume_free(ref);
    if (st != R3D_OK)
        return cli_fail(&err);
    int rc = EXIT_OK;
    if (r3d_nifti_write(lm->vol, out, NULL, &err) != R3D_OK) {
        rc = cli_fail(&err);
    } else {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "segmentation_type", ri.fractional ? "FRACTIONAL" : "BINARY");
        cJSON_AddNumberToObject(root, "frames", ri.n_frames);
        cJSON_AddNumberToObject(root, "overlap_voxels", (double)ri.n_overlap);
        cJSON_AddNumberToObject(root, "outside_voxels", (double)ri.n_outside);
        cJSON *arr = cJSON_AddArrayToObject(root, "labels");
        for (int i = 0; i < ri.n_seg; i++) {
            cJSON *o = cJSON_CreateObject();
            const r3d_label *l = r3d_label_table_find(&lm->table, ri.seg[i].value);
            cJSON_AddNumberToObject(o, "segment_number", ri.seg[i].number);
            cJSON_AddNumberToObject(o, "value", ri.seg[i].value);
            cJSON_AddStringToObject(o, "segment_label", ri.seg[i].label);
            cJSON_AddStringToObject(o, "name", l ? l->name : ri.seg[i].label);
            cJSON_AddStringToObject(o, "name_zh", l ? l->name_zh : "");
            cJSON *c = cJSON_AddArrayToObject(o, "color");
            for (int k = 0; k < 3; k++)
                cJSON_AddItemToArray(c, cJSON_CreateNumber(ri.seg[i].rgb[k]));
            cJSON_AddNumberToObject(o, "voxels", (double)ri.seg[i].voxels);
            cJSON_AddItemToArray(arr, o);
        }
        char *txt = cJSON_Print(root);
        cJSON_Delete(root);
        char jp[PATH_MAX];
        snprintf(jp, sizeof jp, "%s.json", out);
        if (!txt || r3d_file_write_atomic(jp, txt, strlen(txt), &err) != R3D_OK)
            rc = txt ? cli_fail(&err) : EXIT_NOMEM;
        free(txt);
        if (rc == EXIT_OK && !quiet)
            fprintf(stderr,
                    "export-dicom: %d segments, %d frames -> %s (+ .json)%s\n", ri.n_seg,
                    ri.n_frames, out,
                    ri.n_overlap ? "; overlapping segments: the later segment won" : "");
    }
    r3d_seg_read_info_free(&ri);
    r3d_labelmap_free(lm);
    return rc;
}

/* ---- the export (library) and what the terminal shows ------------------------------ */

typedef struct file_log {
    int quiet;
} file_log;

static void print_file(void *ctx, const r3d_dicom_export_file *f)
{
    const file_log *l = ctx;
    if (!l->quiet)
        fprintf(stderr, "ok: %s -> %s\n", f->what, f->rel);
}

/* r3d_dicom_export with the options of the command line; res (when not
 * NULL) keeps the list of files written. */
static int run_export(const exp_args *a, const r3d_labelmap *lm, const r3d_dcm_source *src,
                      const r3d_scene *meshes, r3d_dicom_export_result *keep, double t0)
{
    r3d_error err = R3D_ERROR_INIT;
    file_log fl = {a->quiet};
    r3d_dicom_export_opts eo = R3D_DICOM_EXPORT_OPTS_INIT;
    eo.models = a->models;
    eo.deidentify = a->deid;
    eo.deid = a->dopts;
    eo.on_file = print_file;
    eo.ctx = &fl;
    r3d_dicom_export_result res;
    if (r3d_dicom_export(lm, src, meshes, a->out, &eo, &res, &err) != R3D_OK)
        return err.code == R3D_EIO ? (cli_fail(&err), EXIT_OUTPUT) : cli_fail(&err);
    if (!a->quiet)
        fprintf(stderr, "export-dicom: SEG with %d segments, %d frames%s\n", res.seg.n_segments,
                res.seg.n_frames,
                res.seg.n_outside ? "" : " (every labelled voxel on a source plane)");
    if (res.seg.n_outside)
        fprintf(stderr,
                "export-dicom: warning: %lld labelled voxels lie off the source series' planes "
                "and are not in the SEG (label map on another grid?)\n",
                (long long)res.seg.n_outside);
    if (!a->quiet)
        fprintf(stderr, "export-dicom: %d files -> %s in %.2f s\n", res.n_files, a->out,
                cli_now() - t0);
    if (keep)
        *keep = res;
    else
        r3d_dicom_export_result_free(&res);
    return EXIT_OK;
}

/* ---- a case of the store ------------------------------------------------------------ */

/* Does the source hold exactly the files imported into the case (same SOP
 * Instance UIDs, same bytes)? The store keeps each input's SOP Instance UID
 * and SHA-256, not the files: they are read again from --source. */
static r3d_status check_source(r3d_store *s, const r3d_actor *act, r3d_id case_id,
                               const r3d_dcm_source *src, r3d_error *err)
{
    char what[48], *json = NULL;
    snprintf(what, sizeof what, "case:%lld", (long long)case_id);
    r3d_status st = r3d_trace(s, act, what, &json, err);
    if (st)
        return st;
    cJSON *root = cJSON_Parse(json);
    free(json);
    cJSON *inputs = root ? cJSON_GetObjectItem(root, "inputs") : NULL;
    int n = cJSON_GetArraySize(inputs);
    if (!cJSON_IsArray(inputs) || n == 0) {
        cJSON_Delete(root);
        return r3d_fail(err, R3D_EARG, "case %lld: not imported from DICOM files; it has no "
                        "source series to refer to", (long long)case_id);
    }
    char *matched = calloc((size_t)n, 1);
    if (!matched) {
        cJSON_Delete(root);
        return r3d_fail(err, R3D_ENOMEM, "out of memory");
    }
    for (int k = 0; k < src->n_img && !st; k++) {
        int found = -1;
        for (int i = 0; i < n && found < 0; i++) {
            cJSON *sop = cJSON_GetObjectItem(cJSON_GetArrayItem(inputs, i), "sop_instance_uid");
            if (cJSON_IsString(sop) && !strcmp(sop->valuestring, src->img[k].sop_uid))
                found = i;
        }
        if (found < 0) {
            st = r3d_fail(err, R3D_EDATA, "%s: source image %d is not one of the files "
                          "imported into case %lld", "--source", k + 1, (long long)case_id);
            break;
        }
        char hex[65];
        if ((st = r3d_dcm_source_image_sha256(src, k, hex, err)))
            break;
        cJSON *h = cJSON_GetObjectItem(cJSON_GetArrayItem(inputs, found), "sha256");
        if (!cJSON_IsString(h) || strcmp(h->valuestring, hex) != 0) {
            st = r3d_fail(err, R3D_EDATA, "%s: source image %d has changed since it was "
                          "imported into case %lld (SHA-256 %.12s... now, %.12s... then); "
                          "refusing to export against it", "--source", k + 1,
                          (long long)case_id, hex, cJSON_IsString(h) ? h->valuestring : "?");
            break;
        }
        matched[found] = 1;
    }
    int missing = 0;
    for (int i = 0; i < n; i++)
        missing += !matched[i];
    if (!st && missing)
        st = r3d_fail(err, R3D_EDATA, "%s: %d of the %d files imported into case %lld are "
                      "missing (gone or moved); refusing to export against a partial series",
                      "--source", missing, n, (long long)case_id);
    free(matched);
    cJSON_Delete(root);
    return st;
}

static int parse_case(const char *s, r3d_id *id)
{
    char *end;
    if (!strncmp(s, "case:", 5))
        s += 5;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v <= 0)
        return 0;
    *id = v;
    return 1;
}

/* export-dicom CASE: the case's label map (head or --version) and its
 * surfaces, against the series it was imported from, de-identified unless
 * --identified; refused (EXIT_PERM, audited by the store) without the
 * permission; every file written is audited with its SHA-256. */
static int export_case(exp_args *a, const cli_store_args *so, r3d_id case_id, r3d_id version,
                       int identified)
{
    r3d_error err = R3D_ERROR_INIT;
    r3d_store *s = NULL;
    r3d_actor act;
    int rc = cli_store_login(so, &s, &act);
    if (rc)
        return rc;
    double t0 = cli_now();
    r3d_labelmap *lm = NULL;
    r3d_dcm_source *src = NULL;
    r3d_dicom_export_result res = {0};
    r3d_case_info ci;
    char obj[96];
    a->deid = !identified;
    if (r3d_permit(s, &act, identified ? R3D_ACT_EXPORT_IDENTIFIED : R3D_ACT_EXPORT, &err) ||
        r3d_case_get(s, &act, case_id, &ci, &err) ||
        r3d_labels_load(s, &act, case_id, version, &lm, &err)) {
        rc = cli_fail(&err);
        goto done;
    }
    if (!version)
        version = ci.head_version;
    snprintf(obj, sizeof obj, "case %lld version %lld", (long long)case_id, (long long)version);
    if (!(src = r3d_dcm_source_open(a->source, ci.series_uid, &err)) ||
        check_source(s, &act, case_id, src, &err)) {
        rc = cli_fail(&err);
        r3d_audit(s, &act, "export.dicom", obj, "refused: source differs from the import", NULL);
        goto done;
    }
    if ((rc = run_export(a, lm, src, NULL, &res, t0))) {
        r3d_audit(s, &act, "export.dicom", obj, "failed", NULL);
        goto done;
    }
    /* Every file, with its SHA-256, into the store's export table (and the
     * audit trail), so `recon3d trace FILE` leads from it back to the case. */
    for (int i = 0; i < res.n_files && !rc; i++) {
        const char *w = res.files[i].what;
        const char *kind = !strncmp(w, "SEG", 3)              ? "dicom-seg"
                           : !strncmp(w, "model", 5)          ? "dicom-model"
                           : !strncmp(w, "source image", 12)  ? "dicom-image"
                                                              : "dicom";
        if (r3d_export_record(s, &act, case_id, version, res.files[i].sha256, kind, !identified,
                              &err))
            rc = cli_fail(&err);
    }
    if (!rc) {
        char out[96];
        snprintf(out, sizeof out, "ok %d files %s", res.n_files,
                 identified ? "identified" : "de-identified");
        if (r3d_audit(s, &act, "export.dicom", obj, out, &err))
            rc = cli_fail(&err);
    }
done:
    r3d_dicom_export_result_free(&res);
    r3d_dcm_source_free(src);
    r3d_labelmap_free(lm);
    r3d_store_close(s);
    return rc;
}

R3D_COMMAND(62, export_dicom, "labels and meshes as DICOM SEG and encapsulated STL/OBJ models")

int cmd_export_dicom(int argc, char **argv)
{
    exp_args a;
    const char *seg_in = NULL;
    memset(&a, 0, sizeof a);
    a.models = 1;
    a.dopts = (r3d_deid_opts)R3D_DEID_OPTS_INIT;
    cli_store_args so = {0};
    const char *case_arg = NULL, *version_arg = NULL;
    int identified = 0;
    int rc;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int more = i + 1 < argc;
        if (cli_store_option(&so, argc, argv, &i))
            continue;
        if (!strcmp(s, "--case") && more)
            case_arg = argv[++i];
        else if (!strcmp(s, "--version") && more)
            version_arg = argv[++i];
        else if (!strcmp(s, "--identified"))
            identified = 1;
        else if ((!strcmp(s, "-o") || !strcmp(s, "--output")) && more)
            a.out = argv[++i];
        else if (!strcmp(s, "--seg-to-labels") && more)
            seg_in = argv[++i];
        else if (!strcmp(s, "--source") && more)
            a.source = argv[++i];
        else if (!strcmp(s, "--series") && more)
            a.series = argv[++i];
        else if (!strcmp(s, "--models") && more) {
            const char *m = argv[++i];
            a.models = !strcmp(m, "stl") ? 1 : !strcmp(m, "obj") ? 2 : !strcmp(m, "none") ? 0 : -1;
            if (a.models < 0)
                return usage(stderr), cli_usage("export-dicom: --models is stl, obj or none");
        } else if (!strcmp(s, "--deidentify"))
            a.deid = 1;
        else if (!strcmp(s, "--retain-dates"))
            a.dopts.retain_dates = 1;
        else if (!strcmp(s, "--clean-descriptors"))
            a.dopts.clean_descriptors = 1;
        else if (!strcmp(s, "--retain-safe-private"))
            a.dopts.retain_safe_private = 1;
        else if (!strcmp(s, "--quiet") || !strcmp(s, "-q"))
            a.quiet = 1;
        else if ((rc = cli_other_arg("export-dicom", usage, s, &a.input, NULL)) != CLI_ARG_TAKEN)
            return rc;
    }
    if (seg_in) {
        if (!a.out || a.input)
            return usage(stderr), cli_usage("export-dicom: --seg-to-labels SEG -o OUT.nii.gz");
        return seg_to_labels(seg_in, a.source, a.series, a.out, a.quiet);
    }
    if (!case_arg && a.input && !strncmp(a.input, "case:", 5))
        case_arg = a.input, a.input = NULL;
    if (case_arg) {
        r3d_id cid = 0, ver = 0;
        if (a.input || !parse_case(case_arg, &cid))
            return usage(stderr), cli_usage("export-dicom: a case is case:N or --case N");
        if (version_arg && !parse_case(version_arg, &ver))
            return usage(stderr), cli_usage("export-dicom: --version is a version number");
        if (!a.out || !a.source)
            return usage(stderr), cli_usage("export-dicom: CASE needs --source (the DICOM "
                                            "series it was imported from) and -o OUTDIR");
        if (identified && a.deid)
            return usage(stderr), cli_usage("export-dicom: --identified or --deidentify");
        if (a.series)
            return usage(stderr), cli_usage("export-dicom: CASE: the case names its series");
        return export_case(&a, &so, cid, ver, identified);
    }
    if (identified || version_arg)
        return usage(stderr), cli_usage("export-dicom: --identified and --version go with CASE");
    if (!a.input || !a.out || !a.source)
        return usage(stderr), cli_usage("export-dicom: INPUT, --source and -o are required");

    r3d_error err = R3D_ERROR_INIT;
    struct stat st_in;
    if (stat(a.input, &st_in) != 0) {
        r3d_fail(&err, R3D_EIO, "%s: cannot open: %s", a.input, strerror(errno));
        return cli_fail(&err);
    }
    int is_dir = S_ISDIR(st_in.st_mode);
    char lpath[PATH_MAX], jpath[PATH_MAX];
    if (is_dir) {
        snprintf(lpath, sizeof lpath, "%s/labels.nii.gz", a.input);
        snprintf(jpath, sizeof jpath, "%s/labels.json", a.input);
    } else {
        /* A label table beside the file: <file>.json (what --seg-to-labels
         * writes) or labels.json in its folder (a segment folder's). */
        snprintf(lpath, sizeof lpath, "%s", a.input);
        struct stat sj;
        snprintf(jpath, sizeof jpath, "%s.json", a.input);
        if (stat(jpath, &sj) != 0) {
            const char *sl = strrchr(a.input, '/');
            int dl = sl ? (int)(sl - a.input) : 1;
            snprintf(jpath, sizeof jpath, "%.*s/labels.json", dl, sl ? a.input : ".");
            if (stat(jpath, &sj) != 0)
                jpath[0] = 0;
        }
    }
    double t0 = cli_now();
    r3d_labelmap *lm = load_labels(lpath, &err);
    if (!lm)
        return cli_fail(&err);
    rc = EXIT_OK;
    r3d_dcm_source *src = NULL;
    r3d_scene sc = {0};
    if (fill_table(lm, jpath[0] ? jpath : NULL, &err) != R3D_OK) {
        rc = cli_fail(&err);
        goto done;
    }
    char picked[65] = "";
    int matches = a.series ? 0 : pick_series(a.source, lm->vol, picked);
    if (matches == 1) {
        a.series = picked;
    } else if (matches > 1) {
        r3d_fail(&err, R3D_EARG,
                 "%s: %d series are on the label map's grid: choose one with --series UID|N",
                 a.source, matches);
        rc = cli_fail(&err);
        goto done;
    }
    src = r3d_dcm_source_open(a.source, a.series, &err);
    if (!src) {
        rc = cli_fail(&err);
        goto done;
    }
    if (a.models && is_dir && collect_meshes(&a, is_dir, lm, &sc, &err) != R3D_OK) {
        rc = cli_fail(&err);
        goto done;
    }
    rc = run_export(&a, lm, src, is_dir ? &sc : NULL, NULL, t0);
done:
    r3d_scene_clear(&sc);
    r3d_dcm_source_free(src);
    r3d_labelmap_free(lm);
    return rc;
}

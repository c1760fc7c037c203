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

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define T(g, e) R3D_TAG(0x##g, 0x##e)

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

/* ---- writing one object ---------------------------------------------------------- */

typedef struct writer {
    const char *outdir;
    r3d_deid *d; /* NULL: not de-identifying */
    int written, failed;
    int quiet;
    r3d_deid *note; /* the run whose report lists what was written (already de-identified) */
} writer;

static void ds_uid(const r3d_dcm_ds *ds, uint32_t tag, char out[65])
{
    uint32_t n = 0;
    const uint8_t *v = r3d_dcm_ds_value(ds, tag, &n, NULL);
    size_t m = v ? (n < 64 ? n : 64) : 0;
    memcpy(out, v ? (const char *)v : "", m);
    while (m && (out[m - 1] == 0 || out[m - 1] == ' '))
        m--;
    out[m] = 0;
}

static int mkdirs(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
                return 0;
            *p = c;
            if (!c)
                break;
        }
    }
    return 1;
}

/* Write ds (de-identified first when w->d) at OUTDIR/<study>/<series>/<sop>.dcm;
 * what names the object in messages and the report ("SEG", "model liver"). */
static r3d_status emit(writer *w, r3d_dcm_ds *ds, const r3d_dcm_write_opts *wo, const char *what,
                       char sop_out[65], r3d_error *err)
{
    r3d_dcm_ds *final = ds;
    r3d_dcm_ds *owned = NULL;
    char ts[65] = "";
    r3d_dcm_write_opts o = wo ? *wo : (r3d_dcm_write_opts)R3D_DCM_WRITE_OPTS_INIT;
    r3d_status st;
    char study[65], series[65], sop[65];
    if (w->d) {
        /* Through the same de-identification as every other file of the
         * run: same key, so its references follow the source's new UIDs. */
        uint8_t *buf;
        size_t n;
        if ((st = r3d_dcm_write_mem(ds, wo, &buf, &n, err)) != R3D_OK)
            return st;
        r3d_dcm_file *f = r3d_dcm_parse(buf, n, 1, what, 0, err);
        if (!f)
            return err->code;
        ds_uid(ds, T(0020, 000D), study);
        ds_uid(ds, T(0020, 000E), series);
        ds_uid(ds, T(0008, 0018), sop);
        char s2[65], r2[65], o2[65], label[256];
        r3d_deid_uid(w->d, study, s2);
        r3d_deid_uid(w->d, series, r2);
        r3d_deid_uid(w->d, sop, o2);
        snprintf(label, sizeof label, "%s/%s/%s.dcm", s2, r2, o2);
        st = r3d_deid_dataset(w->d, f, label, &owned, ts, err);
        r3d_dcm_close(f);
        if (st != R3D_OK)
            return st;
        final = owned;
        o.transfer_syntax = ts[0] ? ts : NULL;
    }
    ds_uid(final, T(0020, 000D), study);
    ds_uid(final, T(0020, 000E), series);
    ds_uid(final, T(0008, 0018), sop);
    char dir[PATH_MAX], path[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%s/%s", w->outdir, study, series);
    if (snprintf(path, sizeof path, "%s/%s.dcm", dir, sop) >= (int)sizeof path) {
        r3d_dcm_ds_free(owned);
        return r3d_fail(err, R3D_EARG, "%s: output path too long", w->outdir);
    }
    if (!mkdirs(dir)) {
        r3d_dcm_ds_free(owned);
        return r3d_fail(err, R3D_EIO, "%s: cannot create: %s", dir, strerror(errno));
    }
    st = r3d_dcm_write_file(final, path, &o, err);
    r3d_dcm_ds_free(owned);
    if (st == R3D_OK && (w->d || w->note)) {
        char rel[256];
        snprintf(rel, sizeof rel, "%s/%s/%s.dcm", study, series, sop);
        r3d_deid_note_written(w->d ? w->d : w->note, rel, o.transfer_syntax);
    }
    if (st == R3D_OK) {
        w->written++;
        if (sop_out)
            snprintf(sop_out, 65, "%s", sop);
        if (!w->quiet)
            fprintf(stderr, "ok: %s -> %s/%s/%s.dcm\n", what, study, series, sop);
    }
    return st;
}

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
    uint16_t *vals = malloc((size_t)lm->table.n * sizeof *vals);
    if (!vals && lm->table.n)
        return r3d_fail(err, R3D_ENOMEM, "out of memory");
    for (int i = 0; i < lm->table.n; i++)
        vals[i] = lm->table.v[i].value;
    r3d_extract_opts eo = R3D_EXTRACT_OPTS_INIT;
    int first = sc->n;
    r3d_status st = r3d_mesh_from_labels(lm->vol, vals, lm->table.n, &eo, 5, sc, err);
    for (int i = first; st == R3D_OK && i < sc->n; i++) {
        const r3d_label *l = &lm->table.v[i - first];
        r3d_mesh *m = sc->m[i];
        m->label = l->value;
        snprintf(m->name, sizeof m->name, "%s", l->name);
        snprintf(m->name_zh, sizeof m->name_zh, "%s", l->name_zh);
        memcpy(m->rgb, l->rgb, 3);
        if ((st = r3d_mesh_remove_degenerate(m, err)) == R3D_OK)
            st = r3d_mesh_orient_outward(m, err);
    }
    free(vals);
    return st;
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

R3D_COMMAND(62, export_dicom, "labels and meshes as DICOM SEG and encapsulated STL/OBJ models")

int cmd_export_dicom(int argc, char **argv)
{
    exp_args a;
    const char *seg_in = NULL;
    memset(&a, 0, sizeof a);
    a.models = 1;
    a.dopts = (r3d_deid_opts)R3D_DEID_OPTS_INIT;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int more = i + 1 < argc;
        if ((!strcmp(s, "-o") || !strcmp(s, "--output")) && more)
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
        else if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            usage(stdout);
            return EXIT_OK;
        } else if (s[0] == '-' && s[1])
            return usage(stderr), cli_usage("export-dicom: unknown or incomplete option %s", s);
        else if (!a.input)
            a.input = s;
        else
            return usage(stderr), cli_usage("export-dicom: one INPUT only");
    }
    if (seg_in) {
        if (!a.out || a.input)
            return usage(stderr), cli_usage("export-dicom: --seg-to-labels SEG -o OUT.nii.gz");
        return seg_to_labels(seg_in, a.source, a.series, a.out, a.quiet);
    }
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
    int rc = EXIT_OK;
    r3d_dcm_source *src = NULL;
    r3d_deid *d = NULL;
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
    if (mkdir(a.out, 0777) != 0 && errno != EEXIST) {
        r3d_fail(&err, R3D_EIO, "%s: cannot create: %s", a.out, strerror(errno));
        rc = EXIT_OUTPUT;
        cli_fail(&err);
        goto done;
    }
    if (a.deid && !(d = r3d_deid_new(&a.dopts, &err))) {
        rc = cli_fail(&err);
        goto done;
    }
    writer w = {a.out, d, 0, 0, a.quiet, NULL};

    /* The SEG. */
    r3d_dcm_ds *ds = NULL;
    r3d_seg_write_info wi;
    if (r3d_seg_build(lm, src, NULL, &ds, &wi, &err) != R3D_OK ||
        emit(&w, ds, NULL, "SEG", NULL, &err) != R3D_OK) {
        r3d_dcm_ds_free(ds);
        rc = cli_fail(&err);
        goto done;
    }
    r3d_dcm_ds_free(ds);
    if (!a.quiet)
        fprintf(stderr, "export-dicom: SEG with %d segments, %d frames%s\n", wi.n_segments,
                wi.n_frames, wi.n_outside ? "" : " (every labelled voxel on a source plane)");
    if (wi.n_outside)
        fprintf(stderr,
                "export-dicom: warning: %lld labelled voxels lie off the source series' planes "
                "and are not in the SEG (label map on another grid?)\n",
                (long long)wi.n_outside);

    /* The models. */
    if (a.models) {
        if (collect_meshes(&a, is_dir, lm, &sc, &err) != R3D_OK) {
            rc = cli_fail(&err);
            goto done;
        }
        char series_uid[65];
        if (r3d_uid_new(series_uid, &err) != R3D_OK) {
            rc = cli_fail(&err);
            goto done;
        }
        int inst = 0;
        for (int i = 0; i < sc.n; i++) {
            r3d_mesh *m = sc.m[i];
            if (m->nt == 0)
                continue;
            uint8_t *doc = NULL, *mtl = NULL;
            size_t n = 0, mn = 0;
            r3d_model_opts mo = R3D_MODEL_OPTS_INIT;
            mo.series_uid = series_uid;
            char what[160];
            r3d_status st = r3d_mesh_file_bytes(m, a.models == 1 ? R3D_MODEL_STL : R3D_MODEL_OBJ,
                                                &doc, &n, a.models == 2 ? &mtl : NULL,
                                                a.models == 2 ? &mn : NULL, &err);
            char mtl_uid[65] = "";
            if (st == R3D_OK && a.models == 2) {
                mo.instance_number = ++inst;
                snprintf(what, sizeof what, "model %s (MTL)", m->name);
                st = r3d_model_build(R3D_MODEL_MTL, mtl, mn, m->name, src, &mo, &ds, mtl_uid,
                                     &err);
                if (st == R3D_OK)
                    st = emit(&w, ds, NULL, what, NULL, &err);
                r3d_dcm_ds_free(ds);
                ds = NULL;
                mo.mtl_sop_uid = mtl_uid;
            }
            if (st == R3D_OK) {
                mo.instance_number = ++inst;
                snprintf(what, sizeof what, "model %s", m->name);
                st = r3d_model_build(a.models == 1 ? R3D_MODEL_STL : R3D_MODEL_OBJ, doc, n,
                                     m->name, src, &mo, &ds, NULL, &err);
                if (st == R3D_OK)
                    st = emit(&w, ds, NULL, what, NULL, &err);
                r3d_dcm_ds_free(ds);
                ds = NULL;
            }
            free(doc);
            free(mtl);
            if (st != R3D_OK) {
                rc = cli_fail(&err);
                goto done;
            }
        }
    }

    /* De-identified source: written beside, with the UIDs the SEG names. */
    if (d) {
        for (int k = 0; k < src->n_img; k++) {
            r3d_dcm_file *f = r3d_dcm_source_open_image(src, k, &err);
            r3d_dcm_ds *out = NULL;
            char ts[65] = "", lab[64];
            snprintf(lab, sizeof lab, "source image %d", k + 1);
            r3d_status st = f ? r3d_deid_dataset(d, f, lab, &out, ts, &err) : err.code;
            r3d_dcm_close(f);
            if (st == R3D_OK) {
                /* already de-identified: write it as is */
                writer plain = {a.out, NULL, 0, 0, 1, d};
                r3d_dcm_write_opts wo = R3D_DCM_WRITE_OPTS_INIT;
                wo.transfer_syntax = ts[0] ? ts : NULL;
                st = emit(&plain, out, &wo, lab, NULL, &err);
                w.written += plain.written;
            }
            r3d_dcm_ds_free(out);
            if (st != R3D_OK) {
                rc = cli_fail(&err);
                goto done;
            }
        }
        char *json = r3d_deid_report_json(d);
        char rep[PATH_MAX];
        snprintf(rep, sizeof rep, "%s/deidentification.json", a.out);
        if (!json || r3d_file_write_atomic(rep, json, strlen(json), &err) != R3D_OK) {
            free(json);
            rc = json ? cli_fail(&err) : EXIT_NOMEM;
            goto done;
        }
        free(json);
    }
    if (!a.quiet)
        fprintf(stderr, "export-dicom: %d files -> %s in %.2f s\n", w.written, a.out,
                cli_now() - t0);
done:
    r3d_scene_clear(&sc);
    r3d_deid_free(d);
    r3d_dcm_source_free(src);
    r3d_labelmap_free(lm);
    return rc;
}

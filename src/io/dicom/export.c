/* export.c - one call for "export to DICOM": a label map (+ meshes) and its
 * source series into OUTDIR/<Study>/<Series>/<SOP>.dcm as one SEG and one
 * encapsulated model per mesh, optionally de-identified in one run with the
 * source series written beside. Used by `recon3d export-dicom` (folders,
 * label maps and store cases alike) and meant for the server. */
#include "series.h"
#include "r3d/dicom_seg.h"

#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define T(g, e) R3D_TAG(0x##g, 0x##e)

static void hex32(const uint8_t h[32], char out[65])
{
    static const char k[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = k[h[i] >> 4];
        out[2 * i + 1] = k[h[i] & 15];
    }
    out[64] = 0;
}

r3d_status r3d_dcm_source_image_sha256(const r3d_dcm_source *s, int k, char hex[65],
                                       r3d_error *err)
{
    if (!s || k < 0 || k >= s->n_img)
        return r3d_fail(err, R3D_EARG, "source image %d does not exist", k + 1);
    const r3d_src *f = &s->scan->src[s->img[k].src_index];
    uint8_t h[32];
    if (f->mem) {
        crypto_hash_sha256(h, f->mem, (unsigned long long)f->mem_n);
    } else {
        uint8_t *b = NULL;
        size_t n = 0;
        r3d_status st = r3d_file_read_all(f->path, &b, &n, err);
        if (st != R3D_OK)
            return st;
        crypto_hash_sha256(h, b, (unsigned long long)n);
        free(b);
    }
    hex32(h, hex);
    return R3D_OK;
}

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
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return 0;
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

typedef struct exporter {
    const char *outdir;
    r3d_deid *d;
    const r3d_dicom_export_opts *o;
    r3d_dicom_export_result *res;
} exporter;

/* Write ds (through the run's de-identification when deid != NULL) at
 * OUTDIR/<study>/<series>/<sop>.dcm, atomically; record path and SHA-256. */
static r3d_status emit(exporter *x, r3d_deid *deid, r3d_dcm_ds *ds, const char *ts_in,
                       const char *what, char sop_out[65], r3d_error *err)
{
    r3d_dcm_ds *final = ds, *owned = NULL;
    char ts[65] = "";
    r3d_dcm_write_opts o = R3D_DCM_WRITE_OPTS_INIT;
    o.transfer_syntax = ts_in && ts_in[0] ? ts_in : NULL;
    r3d_status st;
    char study[65], series[65], sop[65];
    if (deid) {
        /* Same key as every other file of the run: references follow. */
        uint8_t *buf;
        size_t n;
        if ((st = r3d_dcm_write_mem(ds, &o, &buf, &n, err)) != R3D_OK)
            return st;
        r3d_dcm_file *f = r3d_dcm_parse(buf, n, 1, what, 0, err);
        if (!f)
            return err->code;
        ds_uid(ds, T(0020, 000D), study);
        ds_uid(ds, T(0020, 000E), series);
        ds_uid(ds, T(0008, 0018), sop);
        char s2[65], r2[65], o2[65], label[256];
        r3d_deid_uid(deid, study, s2);
        r3d_deid_uid(deid, series, r2);
        r3d_deid_uid(deid, sop, o2);
        snprintf(label, sizeof label, "%s/%s/%s.dcm", s2, r2, o2);
        st = r3d_deid_dataset(deid, f, label, &owned, ts, err);
        r3d_dcm_close(f);
        if (st != R3D_OK)
            return st;
        final = owned;
        o.transfer_syntax = ts[0] ? ts : NULL;
    }
    ds_uid(final, T(0020, 000D), study);
    ds_uid(final, T(0020, 000E), series);
    ds_uid(final, T(0008, 0018), sop);
    char dir[PATH_MAX], path[PATH_MAX], rel[200];
    snprintf(rel, sizeof rel, "%s/%s/%s.dcm", study, series, sop);
    snprintf(dir, sizeof dir, "%s/%s/%s", x->outdir, study, series);
    if (snprintf(path, sizeof path, "%s/%s", x->outdir, rel) >= (int)sizeof path) {
        r3d_dcm_ds_free(owned);
        return r3d_fail(err, R3D_EARG, "%s: output path too long", x->outdir);
    }
    if (!mkdirs(dir)) {
        r3d_dcm_ds_free(owned);
        return r3d_fail(err, R3D_EIO, "%s: cannot create: %s", dir, strerror(errno));
    }
    uint8_t *buf = NULL;
    size_t n = 0;
    st = r3d_dcm_write_mem(final, &o, &buf, &n, err);
    r3d_dcm_ds_free(owned);
    if (st == R3D_OK)
        st = r3d_file_write_atomic(path, buf, n, err);
    if (st == R3D_OK) {
        r3d_dicom_export_result *r = x->res;
        r3d_dicom_export_file *nf = realloc(r->files, (size_t)(r->n_files + 1) * sizeof *nf);
        if (!nf) {
            free(buf);
            return r3d_fail(err, R3D_ENOMEM, "export: out of memory");
        }
        r->files = nf;
        r3d_dicom_export_file *e = &nf[r->n_files++];
        memset(e, 0, sizeof *e);
        snprintf(e->rel, sizeof e->rel, "%s", rel);
        snprintf(e->what, sizeof e->what, "%s", what);
        uint8_t h[32];
        crypto_hash_sha256(h, buf, (unsigned long long)n);
        hex32(h, e->sha256);
        e->size = (int64_t)n;
        if (x->d)
            r3d_deid_note_written(x->d, rel, o.transfer_syntax);
        if (sop_out)
            snprintf(sop_out, 65, "%s", sop);
        if (x->o->on_file)
            x->o->on_file(x->o->ctx, e);
    }
    free(buf);
    return st;
}

/* The surfaces of every label value present (shared boundaries, smoothing
 * 5, outward), named and coloured from the table, else the registry. */
static r3d_status extract_meshes(const r3d_labelmap *lm, r3d_scene *sc, r3d_error *err)
{
    uint8_t *seen = calloc(65536, 1);
    uint16_t *vals = malloc(65536 * sizeof *vals);
    if (!seen || !vals) {
        free(seen);
        free(vals);
        return r3d_fail(err, R3D_ENOMEM, "export: out of memory");
    }
    const uint16_t *L = lm->vol->voxels;
    int64_t nv = r3d_volume_nvox(lm->vol);
    for (int64_t i = 0; i < nv; i++)
        seen[L[i]] = 1;
    int n = 0;
    for (int v = 1; v < 65536; v++)
        if (seen[v])
            vals[n++] = (uint16_t)v;
    free(seen);
    r3d_extract_opts eo = R3D_EXTRACT_OPTS_INIT;
    int first = sc->n;
    r3d_status st = n ? r3d_mesh_from_labels(lm->vol, vals, n, &eo, 5, sc, err) : R3D_OK;
    for (int i = first; st == R3D_OK && i < sc->n; i++) {
        uint16_t v = vals[i - first];
        r3d_label l;
        const r3d_label *t = r3d_label_table_find(&lm->table, v);
        const r3d_structure *rs = t ? NULL : r3d_structure_by_value(v);
        memset(&l, 0, sizeof l);
        if (t)
            l = *t;
        else if (rs)
            r3d_structure_label(rs, &l);
        else {
            snprintf(l.name, sizeof l.name, "label_%d", v);
            l.rgb[0] = l.rgb[1] = l.rgb[2] = 200;
        }
        r3d_mesh *m = sc->m[i];
        m->label = v;
        snprintf(m->name, sizeof m->name, "%s", l.name);
        snprintf(m->name_zh, sizeof m->name_zh, "%s", l.name_zh);
        memcpy(m->rgb, l.rgb, 3);
        if ((st = r3d_mesh_remove_degenerate(m, err)) == R3D_OK)
            st = r3d_mesh_orient_outward(m, err);
    }
    free(vals);
    return st;
}

void r3d_dicom_export_result_free(r3d_dicom_export_result *r)
{
    if (!r)
        return;
    free(r->files);
    r->files = NULL;
    r->n_files = 0;
}

r3d_status r3d_dicom_export(const r3d_labelmap *lm, const r3d_dcm_source *src,
                            const r3d_scene *meshes, const char *outdir,
                            const r3d_dicom_export_opts *opts, r3d_dicom_export_result *res,
                            r3d_error *err)
{
    r3d_dicom_export_opts dflt = R3D_DICOM_EXPORT_OPTS_INIT;
    const r3d_dicom_export_opts *o = opts ? opts : &dflt;
    if (!res)
        return r3d_fail(err, R3D_EARG, "export: no result");
    memset(res, 0, sizeof *res);
    if (!lm || !src || !outdir)
        return r3d_fail(err, R3D_EARG, "export: no label map, source or output folder");
    if (o->models < 0 || o->models > 2)
        return r3d_fail(err, R3D_EARG, "export: models is 0 (none), 1 (STL) or 2 (OBJ)");
    if (!mkdirs(outdir))
        return r3d_fail(err, R3D_EIO, "%s: cannot create: %s", outdir, strerror(errno));
    r3d_deid *d = NULL;
    if (o->deidentify && !(d = r3d_deid_new(&o->deid, err)))
        return err->code;
    exporter x = {outdir, d, o, res};
    r3d_scene own = {0};
    r3d_status st;

    /* The SEG. */
    r3d_dcm_ds *ds = NULL;
    st = r3d_seg_build(lm, src, NULL, &ds, &res->seg, err);
    if (st == R3D_OK)
        st = emit(&x, d, ds, NULL, "SEG", NULL, err);
    r3d_dcm_ds_free(ds);
    ds = NULL;

    /* The models, one series. */
    if (st == R3D_OK && o->models) {
        if (!meshes) {
            st = extract_meshes(lm, &own, err);
            meshes = &own;
        }
        char series_uid[65];
        if (st == R3D_OK)
            st = r3d_uid_new(series_uid, err);
        int inst = 0;
        r3d_model_kind kind = o->models == 1 ? R3D_MODEL_STL : R3D_MODEL_OBJ;
        for (int i = 0; st == R3D_OK && i < meshes->n; i++) {
            const r3d_mesh *m = meshes->m[i];
            if (m->nt == 0)
                continue;
            uint8_t *doc = NULL, *mtl = NULL;
            size_t n = 0, mn = 0;
            r3d_model_opts mo = R3D_MODEL_OPTS_INIT;
            mo.series_uid = series_uid;
            char what[160], mtl_uid[65] = "";
            st = r3d_mesh_file_bytes(m, kind, &doc, &n, kind == R3D_MODEL_OBJ ? &mtl : NULL,
                                     kind == R3D_MODEL_OBJ ? &mn : NULL, err);
            if (st == R3D_OK && kind == R3D_MODEL_OBJ) {
                mo.instance_number = ++inst;
                snprintf(what, sizeof what, "model %s (MTL)", m->name);
                st = r3d_model_build(R3D_MODEL_MTL, mtl, mn, m->name, src, &mo, &ds, mtl_uid,
                                     err);
                if (st == R3D_OK)
                    st = emit(&x, d, ds, NULL, what, NULL, err);
                r3d_dcm_ds_free(ds);
                ds = NULL;
                mo.mtl_sop_uid = mtl_uid;
            }
            if (st == R3D_OK) {
                mo.instance_number = ++inst;
                snprintf(what, sizeof what, "model %s", m->name);
                st = r3d_model_build(kind, doc, n, m->name, src, &mo, &ds, NULL, err);
                if (st == R3D_OK)
                    st = emit(&x, d, ds, NULL, what, NULL, err);
                r3d_dcm_ds_free(ds);
                ds = NULL;
            }
            if (st == R3D_OK)
                res->n_models++;
            free(doc);
            free(mtl);
        }
    }

    /* De-identified: the source series beside, with the UIDs the SEG names. */
    for (int k = 0; d && st == R3D_OK && k < src->n_img; k++) {
        r3d_dcm_file *f = r3d_dcm_source_open_image(src, k, err);
        r3d_dcm_ds *out = NULL;
        char ts[65] = "", lab[64];
        snprintf(lab, sizeof lab, "source image %d", k + 1);
        st = f ? r3d_deid_dataset(d, f, lab, &out, ts, err) : err->code;
        r3d_dcm_close(f);
        if (st == R3D_OK) /* already de-identified: written as it is */
            st = emit(&x, NULL, out, ts, lab, NULL, err);
        r3d_dcm_ds_free(out);
    }
    if (d && st == R3D_OK) {
        char *json = r3d_deid_report_json(d);
        char rep[PATH_MAX];
        snprintf(rep, sizeof rep, "%s/deidentification.json", outdir);
        st = json ? r3d_file_write_atomic(rep, json, strlen(json), err)
                  : r3d_fail(err, R3D_ENOMEM, "export: out of memory");
        free(json);
    }
    r3d_scene_clear(&own);
    r3d_deid_free(d);
    if (st != R3D_OK)
        r3d_dicom_export_result_free(res);
    return st;
}

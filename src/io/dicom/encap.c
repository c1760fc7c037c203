/* encap.c - 3D models as DICOM instances: Encapsulated STL, OBJ and MTL
 * (PS3.3 A.85, A.86, A.87; SOP classes 1.2.840.10008.5.1.4.1.1.104.3/4/5).
 *
 * What: the mesh file exactly as the mesh writers produce it (src/io/mesh:
 * binary STL; OBJ with its MTL), in EncapsulatedDocument with its true
 * length in EncapsulatedDocumentLength (the element itself is padded to even
 * length), in the study and frame of reference of the source series, with
 * the Manufacturing 3D Model module: units millimetre (UCUM "mm"), model
 * neither modified nor mirrored, usage Planning Intent (CID 7064), and the
 * OBJ and its MTL tied together by one ModelGroupUID. The source images are
 * listed in SourceInstanceSequence. Coordinates are the mesh's LPS patient
 * millimetres, which is what the shared frame of reference means.
 *
 * Bytes: the writers only write files, so r3d_mesh_file_bytes writes the
 * mesh into a private temporary folder and reads it back; nothing of the
 * format is re-implemented here.
 */
#include "r3d/dicom_seg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define T(g, e) R3D_TAG(0x##g, 0x##e)

r3d_status r3d_mesh_file_bytes(const r3d_mesh *m, r3d_model_kind kind, uint8_t **doc, size_t *n,
                               uint8_t **mtl, size_t *mtl_n, r3d_error *err)
{
    *doc = NULL;
    *n = 0;
    if (mtl)
        *mtl = NULL;
    if (mtl_n)
        *mtl_n = 0;
    if (kind == R3D_MODEL_MTL || (kind == R3D_MODEL_OBJ && (!mtl || !mtl_n)))
        return r3d_fail(err, R3D_EARG, "model bytes: ask for STL, or OBJ with its MTL");
    const char *tmp = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/r3d_model_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return r3d_fail(err, R3D_EIO, "%s: cannot create a temporary folder: %s", dir,
                        strerror(errno));
    char path[4200], mpath[4200];
    snprintf(path, sizeof path, "%s/model.%s", dir, kind == R3D_MODEL_STL ? "stl" : "obj");
    snprintf(mpath, sizeof mpath, "%s/model.mtl", dir);
    r3d_scene sc = {0};
    r3d_status st;
    r3d_mesh *c = r3d_mesh_copy(m, err);
    if (!c) {
        st = err ? err->code : R3D_ENOMEM;
        goto done;
    }
    r3d_mesh_set_frame(c, R3D_FRAME_LPS);
    if ((st = r3d_scene_add(&sc, c, err)) != R3D_OK) {
        r3d_mesh_free(c);
        goto done;
    }
    st = r3d_scene_write(&sc, path, kind == R3D_MODEL_STL ? R3D_MESH_STL : R3D_MESH_OBJ, err);
    if (st != R3D_OK)
        goto done;
    if ((st = r3d_file_read_all(path, doc, n, err)) != R3D_OK)
        goto done;
    if (kind == R3D_MODEL_OBJ && (st = r3d_file_read_all(mpath, mtl, mtl_n, err)) != R3D_OK) {
        free(*doc);
        *doc = NULL;
        goto done;
    }
done:
    r3d_scene_clear(&sc);
    unlink(path);
    unlink(mpath);
    rmdir(dir);
    return st;
}

#define CHECK(x)                                                                           \
    do {                                                                                   \
        if ((st = (x)) != R3D_OK)                                                          \
            goto done;                                                                     \
    } while (0)

static r3d_status code_item(r3d_dcm_ds *ds, uint32_t seq, const char *v, const char *s,
                            const char *m, r3d_error *err)
{
    r3d_dcm_ds *it = r3d_dcm_ds_add_item(ds, seq, err);
    if (!it)
        return R3D_ENOMEM;
    r3d_status st;
    if ((st = r3d_dcm_ds_put_str(it, T(0008, 0100), 0, v, err)) != R3D_OK ||
        (st = r3d_dcm_ds_put_str(it, T(0008, 0102), 0, s, err)) != R3D_OK ||
        (st = r3d_dcm_ds_put_str(it, T(0008, 0104), 0, m, err)) != R3D_OK)
        return st;
    return R3D_OK;
}

/* Meshes of the body surface show the face. */
static int recognisable(const char *title)
{
    static const char *const k[] = {"body", "skin", "skull", "face", "head"};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (title && strstr(title, k[i]))
            return 1;
    return 0;
}

r3d_status r3d_model_build(r3d_model_kind kind, const uint8_t *doc, size_t n, const char *title,
                           const r3d_dcm_source *src, const r3d_model_opts *opts_in,
                           r3d_dcm_ds **out, char sop_uid[65], r3d_error *err)
{
    static const char *const cls[] = {R3D_SOP_ENCAPSULATED_STL, R3D_SOP_ENCAPSULATED_OBJ,
                                      R3D_SOP_ENCAPSULATED_MTL};
    static const char *const mime[] = {"model/stl", "model/obj", "model/mtl"};
    r3d_model_opts o = R3D_MODEL_OPTS_INIT;
    if (opts_in)
        o = *opts_in;
    *out = NULL;
    if ((unsigned)kind > R3D_MODEL_MTL || !doc || !n || !src)
        return r3d_fail(err, R3D_EARG, "encapsulated model: nothing to encapsulate");
    if (n > 0xFFFFFFF0u)
        return r3d_fail(err, R3D_EUNSUPPORTED, "encapsulated model: %zu bytes exceed 4 GiB", n);
    r3d_status st = R3D_OK;
    r3d_dcm_ds *ds = r3d_dcm_ds_new();
    if (!ds)
        return r3d_fail(err, R3D_ENOMEM, "encapsulated model: out of memory");
    char uid[65], series[65], date[9], tim[16];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(date, sizeof date, "%Y%m%d", &tm);
    strftime(tim, sizeof tim, "%H%M%S", &tm);
    if (o.sop_uid)
        snprintf(uid, sizeof uid, "%s", o.sop_uid);
    else
        CHECK(r3d_uid_new(uid, err));
    if (o.series_uid)
        snprintf(series, sizeof series, "%s", o.series_uid);
    else
        CHECK(r3d_uid_new(series, err));

    CHECK(r3d_dcm_ds_merge(ds, src->header, err));
    /* SOP common, series, equipment */
    CHECK(r3d_dcm_ds_put_str(ds, T(0008, 0012), 0, date, err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0008, 0013), 0, tim, err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0008, 0016), 0, cls[kind], err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0008, 0018), 0, uid, err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0008, 0023), 0, date, err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0008, 0033), 0, tim, err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0008, 002A), 0, "", err)); /* AcquisitionDateTime, Type 2 */
    CHECK(r3d_dcm_ds_put_str(ds, T(0008, 0060), 0, "M3D", err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0008, 0070), 0, "recon3d", err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0008, 103E), 0,
                             o.series_description ? o.series_description : "recon3d 3D models",
                             err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0008, 1090), 0, "recon3d", err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0018, 1000), 0, "1", err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0018, 1020), 0, r3d_version(), err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0020, 000D), 0, src->study_uid, err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0020, 000E), 0, series, err));
    {
        double sn = o.series_number ? o.series_number : 902;
        double in = o.instance_number ? o.instance_number : 1;
        CHECK(r3d_dcm_ds_put_nums(ds, T(0020, 0011), 0, &sn, 1, err));
        CHECK(r3d_dcm_ds_put_nums(ds, T(0020, 0013), 0, &in, 1, err));
    }
    CHECK(r3d_dcm_ds_put_str(ds, T(0020, 0052), 0, src->frame_of_reference_uid, err));
    /* Encapsulated Document */
    CHECK(r3d_dcm_ds_put_str(ds, T(0028, 0301), 0, "NO", err)); /* BurnedInAnnotation */
    CHECK(r3d_dcm_ds_put_str(ds, T(0028, 0302), 0, recognisable(title) ? "YES" : "NO", err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0042, 0010), 0, title ? title : "", err));
    CHECK(r3d_dcm_ds_put_seq(ds, T(0040, A043), err)); /* ConceptNameCodeSequence, Type 2 */
    if (!strcmp(src->modality, "CT"))
        CHECK(code_item(ds, T(0040, A043), "85040-4", "LN", "CT 3D CAM model", err));
    else if (!strcmp(src->modality, "MR"))
        CHECK(code_item(ds, T(0040, A043), "85041-2", "LN", "MR 3D CAM model", err));
    for (int k = 0; k < src->n_img; k++) {
        r3d_dcm_ds *it = r3d_dcm_ds_add_item(ds, T(0042, 0013), err);
        if (!it) {
            st = R3D_ENOMEM;
            goto done;
        }
        CHECK(r3d_dcm_ds_put_str(it, T(0008, 1150), 0, src->img[k].sop_class, err));
        CHECK(r3d_dcm_ds_put_str(it, T(0008, 1155), 0, src->img[k].sop_uid, err));
    }
    {
        /* Common Instance Reference: the series of the source instances. */
        r3d_dcm_ds *rs = r3d_dcm_ds_add_item(ds, T(0008, 1115), err);
        if (!rs) {
            st = R3D_ENOMEM;
            goto done;
        }
        for (int k = 0; k < src->n_img; k++) {
            r3d_dcm_ds *it = r3d_dcm_ds_add_item(rs, T(0008, 114A), err);
            if (!it) {
                st = R3D_ENOMEM;
                goto done;
            }
            CHECK(r3d_dcm_ds_put_str(it, T(0008, 1150), 0, src->img[k].sop_class, err));
            CHECK(r3d_dcm_ds_put_str(it, T(0008, 1155), 0, src->img[k].sop_uid, err));
        }
        CHECK(r3d_dcm_ds_put_str(rs, T(0020, 000E), 0, src->series_uid, err));
    }
    CHECK(r3d_dcm_ds_put_str(ds, T(0042, 0012), 0, mime[kind], err));
    CHECK(r3d_dcm_ds_put_bytes(ds, T(0042, 0011), R3D_VR('O', 'B'), doc, n, err));
    {
        double len = (double)n;
        CHECK(r3d_dcm_ds_put_nums(ds, T(0042, 0015), R3D_VR('U', 'L'), &len, 1, err));
    }
    /* Manufacturing 3D Model */
    CHECK(code_item(ds, T(0040, 08EA), "mm", "UCUM", "mm", err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0068, 7001), 0, "NO", err));
    CHECK(r3d_dcm_ds_put_str(ds, T(0068, 7002), 0, "NO", err));
    CHECK(code_item(ds, T(0068, 7003), "129013", "DCM", "Planning Intent", err));
    if (kind != R3D_MODEL_STL) {
        /* OBJ and MTL of one model share a group UID: the MTL's instance UID
         * (known to both sides before either is written). */
        const char *group = kind == R3D_MODEL_MTL ? uid : o.mtl_sop_uid;
        if (!group)
            return r3d_dcm_ds_free(ds),
                   r3d_fail(err, R3D_EARG, "encapsulated OBJ: the MTL instance UID is needed");
        CHECK(r3d_dcm_ds_put_str(ds, T(0068, 7004), 0, group, err));
    }
done:
    if (st != R3D_OK) {
        r3d_dcm_ds_free(ds);
        return st;
    }
    if (sop_uid)
        snprintf(sop_uid, 65, "%s", uid);
    *out = ds;
    return R3D_OK;
}

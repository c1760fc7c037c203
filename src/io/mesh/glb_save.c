/* glb_save.c - glTF 2.0 binary (GLB) writer, for the web viewer.
 *
 * One glTF mesh + node per object: POSITION (float32, with the min/max the
 * spec requires), NORMAL (per vertex: the area-weighted sum of the faces
 * around it, normalised; (0,0,1) where that sum vanishes), indices uint32,
 * and a material whose baseColorFactor is the object's colour converted
 * from sRGB to linear (glTF factors are linear). Objects without triangles
 * are left out (a glTF accessor cannot be empty).
 *
 * Units and axes - the decision: glTF is metres and +Y up, +Z forward
 * (front of the asset), +X left, by specification, and three.js (hence
 * most web viewers' glTF path) follows it. (NiiVue, the viewer of web/,
 * reads no glTF at all: see docs/mesh-formats.md.) We keep the
 * vertex data in patient millimetres, exactly as in every other format
 * (so a tool that reads the accessors gets the same numbers as from
 * STL/OBJ and the images), and put every object node under one root node
 * "patient_mm_<frame>" whose matrix turns patient mm into glTF metres:
 * scale 0.001 and the rotation superior -> +Y, anterior -> +Z, patient's
 * left -> +X (a proper rotation for both LPS and RAS). A spec-following
 * viewer therefore shows the anatomy upright, facing the default camera,
 * at its true size in metres. asset.extras states all of this.
 *
 * Layout: 12-byte header, JSON chunk (padded with spaces), BIN chunk
 * (padded with zeros), all 4-byte aligned; written atomically.
 */
#include "mesh_io.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "glb_save.c copies host floats and uint32 as little endian"
#endif

static double srgb_to_linear(uint8_t c)
{
    double v = c / 255.0;
    return v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4);
}

static cJSON *num_array(const double *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n && a; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

static void add_view(cJSON *views, size_t offset, size_t len, int target)
{
    cJSON *v = cJSON_CreateObject();
    cJSON_AddNumberToObject(v, "buffer", 0);
    cJSON_AddNumberToObject(v, "byteOffset", (double)offset);
    cJSON_AddNumberToObject(v, "byteLength", (double)len);
    cJSON_AddNumberToObject(v, "target", target);
    cJSON_AddItemToArray(views, v);
}

static cJSON *add_accessor(cJSON *accs, int view, int ctype, int64_t count, const char *type)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddNumberToObject(a, "bufferView", view);
    cJSON_AddNumberToObject(a, "componentType", ctype);
    cJSON_AddNumberToObject(a, "count", (double)count);
    cJSON_AddStringToObject(a, "type", type);
    cJSON_AddItemToArray(accs, a);
    return a;
}

static void vertex_normals(const r3d_mesh *m, float *n)
{
    memset(n, 0, (size_t)m->nv * 3 * sizeof *n);
    for (int64_t k = 0; k < m->nt; k++) {
        const uint32_t *t = m->t + 3 * k;
        const float *a = m->v + 3 * (size_t)t[0], *b = m->v + 3 * (size_t)t[1],
                    *c = m->v + 3 * (size_t)t[2];
        double u[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]};
        double w[3] = {c[0] - a[0], c[1] - a[1], c[2] - a[2]};
        double f[3] = {u[1] * w[2] - u[2] * w[1], u[2] * w[0] - u[0] * w[2],
                       u[0] * w[1] - u[1] * w[0]}; /* length = 2 x area: area weighting */
        for (int j = 0; j < 3; j++)
            for (int q = 0; q < 3; q++)
                n[3 * (size_t)t[j] + q] += (float)f[q];
    }
    for (int64_t i = 0; i < m->nv; i++) {
        float *p = n + 3 * i;
        double l = sqrt((double)p[0] * p[0] + (double)p[1] * p[1] + (double)p[2] * p[2]);
        if (l > 0 && isfinite(l))
            p[0] = (float)(p[0] / l), p[1] = (float)(p[1] / l), p[2] = (float)(p[2] / l);
        else
            p[0] = 0, p[1] = 0, p[2] = 1;
    }
}

r3d_status r3d__glb_save(const r3d_scene *s, const char *path, r3d_error *err)
{
    /* BIN chunk: per object positions, normals, indices (all 4-byte units) */
    size_t bin = 0;
    int nobj = 0;
    for (int i = 0; i < s->n; i++) {
        const r3d_mesh *m = s->m[i];
        if (m->nt == 0)
            continue;
        nobj++;
        size_t a = (size_t)m->nv * 24, b = (size_t)m->nt * 12;
        if ((uint64_t)m->nv > UINT32_MAX || (uint64_t)m->nt > UINT32_MAX || bin > UINT32_MAX)
            return r3d_fail(err, R3D_EARG, "%s: scene too large for GLB", path);
        bin += a + b;
    }
    if (nobj == 0)
        return r3d_fail(err, R3D_EARG, "%s: no object has triangles", path);
    if (bin > UINT32_MAX - (1u << 24))
        return r3d_fail(err, R3D_EARG, "%s: %zu bytes of geometry exceed GLB's 4 GiB", path, bin);
    uint8_t *data = malloc(bin);
    if (!data)
        return r3d_fail(err, R3D_ENOMEM, "%s: out of memory for %zu bytes", path, bin);

    cJSON *root = cJSON_CreateObject();
    cJSON *asset = cJSON_AddObjectToObject(root, "asset");
    cJSON_AddStringToObject(asset, "version", "2.0");
    cJSON_AddStringToObject(asset, "generator", "recon3d");
    const char *frame = mio_frame_name(s->m[0]->frame);
    cJSON *ex = cJSON_AddObjectToObject(asset, "extras");
    cJSON_AddStringToObject(ex, "units", "accessors in millimetres; the root node scales to metres");
    cJSON_AddStringToObject(ex, "frame", frame);
    cJSON_AddStringToObject(ex, "axes", "root node: patient left -> +X, superior -> +Y, "
                                        "anterior -> +Z (glTF), scale 0.001");
    cJSON_AddNumberToObject(root, "scene", 0);
    cJSON *scenes = cJSON_AddArrayToObject(root, "scenes");
    cJSON *sc = cJSON_CreateObject();
    cJSON_AddItemToArray(scenes, sc);
    cJSON *sc_nodes = cJSON_AddArrayToObject(sc, "nodes");
    cJSON_AddItemToArray(sc_nodes, cJSON_CreateNumber(0));
    cJSON *nodes = cJSON_AddArrayToObject(root, "nodes");
    cJSON *meshes = cJSON_AddArrayToObject(root, "meshes");
    cJSON *mats = cJSON_AddArrayToObject(root, "materials");
    cJSON *accs = cJSON_AddArrayToObject(root, "accessors");
    cJSON *views = cJSON_AddArrayToObject(root, "bufferViews");
    cJSON *bufs = cJSON_AddArrayToObject(root, "buffers");

    cJSON *top = cJSON_CreateObject();
    char topname[32];
    snprintf(topname, sizeof topname, "patient_mm_%s", frame);
    cJSON_AddStringToObject(top, "name", topname);
    const double k = 0.001;
    /* column-major; columns are the images of patient x, y, z */
    double lps[16] = {k, 0, 0, 0, 0, 0, -k, 0, 0, k, 0, 0, 0, 0, 0, 1};
    double ras[16] = {-k, 0, 0, 0, 0, 0, k, 0, 0, k, 0, 0, 0, 0, 0, 1};
    cJSON_AddItemToObject(top, "matrix",
                          num_array(s->m[0]->frame == R3D_FRAME_RAS ? ras : lps, 16));
    cJSON *children = cJSON_AddArrayToObject(top, "children");
    cJSON_AddItemToArray(nodes, top);

    size_t off = 0;
    int obj = 0;
    float *normals = NULL;
    int64_t maxnv = 0;
    for (int i = 0; i < s->n; i++)
        maxnv = s->m[i]->nv > maxnv ? s->m[i]->nv : maxnv;
    normals = malloc(((size_t)maxnv + 1) * 3 * sizeof *normals);
    r3d_status st = normals ? R3D_OK : r3d_fail(err, R3D_ENOMEM, "%s: out of memory", path);
    for (int i = 0; i < s->n && st == R3D_OK; i++) {
        const r3d_mesh *m = s->m[i];
        if (m->nt == 0)
            continue;
        char name[80];
        mio_object_name(m, i, name, sizeof name);
        double lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY};
        for (int64_t q = 0; q < m->nv; q++)
            for (int j = 0; j < 3; j++) {
                double c = m->v[3 * q + j];
                lo[j] = c < lo[j] ? c : lo[j];
                hi[j] = c > hi[j] ? c : hi[j];
            }
        vertex_normals(m, normals);
        size_t pbytes = (size_t)m->nv * 12, ibytes = (size_t)m->nt * 12;
        /* little endian on disk, as the host is (checked at compile time) */
        memcpy(data + off, m->v, pbytes);
        memcpy(data + off + pbytes, normals, pbytes);
        memcpy(data + off + 2 * pbytes, m->t, ibytes);
        int view = cJSON_GetArraySize(views);
        add_view(views, off, pbytes, 34962);
        add_view(views, off + pbytes, pbytes, 34962);
        add_view(views, off + 2 * pbytes, ibytes, 34963);
        off += 2 * pbytes + ibytes;
        int acc = cJSON_GetArraySize(accs);
        cJSON *pa = add_accessor(accs, view, 5126, m->nv, "VEC3");
        cJSON_AddItemToObject(pa, "min", num_array(lo, 3));
        cJSON_AddItemToObject(pa, "max", num_array(hi, 3));
        add_accessor(accs, view + 1, 5126, m->nv, "VEC3");
        add_accessor(accs, view + 2, 5125, 3 * m->nt, "SCALAR");

        cJSON *mat = cJSON_CreateObject();
        cJSON_AddStringToObject(mat, "name", name);
        cJSON *pbr = cJSON_AddObjectToObject(mat, "pbrMetallicRoughness");
        double bc[4] = {srgb_to_linear(m->rgb[0]), srgb_to_linear(m->rgb[1]),
                        srgb_to_linear(m->rgb[2]), 1.0};
        cJSON_AddItemToObject(pbr, "baseColorFactor", num_array(bc, 4));
        cJSON_AddNumberToObject(pbr, "metallicFactor", 0.0);
        cJSON_AddNumberToObject(pbr, "roughnessFactor", 0.7);
        cJSON_AddItemToArray(mats, mat);

        cJSON *mesh = cJSON_CreateObject();
        cJSON_AddStringToObject(mesh, "name", name);
        cJSON *prims = cJSON_AddArrayToObject(mesh, "primitives");
        cJSON *prim = cJSON_CreateObject();
        cJSON *attr = cJSON_AddObjectToObject(prim, "attributes");
        cJSON_AddNumberToObject(attr, "POSITION", acc);
        cJSON_AddNumberToObject(attr, "NORMAL", acc + 1);
        cJSON_AddNumberToObject(prim, "indices", acc + 2);
        cJSON_AddNumberToObject(prim, "material", obj);
        cJSON_AddNumberToObject(prim, "mode", 4);
        cJSON_AddItemToArray(prims, prim);
        cJSON_AddItemToArray(meshes, mesh);

        cJSON *node = cJSON_CreateObject();
        cJSON_AddStringToObject(node, "name", name);
        cJSON_AddNumberToObject(node, "mesh", obj);
        cJSON_AddItemToArray(nodes, node);
        cJSON_AddItemToArray(children, cJSON_CreateNumber(obj + 1));
        obj++;
    }
    free(normals);
    cJSON *buf = cJSON_CreateObject();
    cJSON_AddNumberToObject(buf, "byteLength", (double)bin);
    cJSON_AddItemToArray(bufs, buf);
    char *json = st == R3D_OK ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (st == R3D_OK && !json)
        st = r3d_fail(err, R3D_ENOMEM, "%s: out of memory for the glTF JSON", path);
    if (st != R3D_OK) {
        free(data);
        free(json);
        return st;
    }
    size_t jlen = strlen(json), jpad = (4 - jlen % 4) % 4, bpad = (4 - bin % 4) % 4;
    uint64_t total = 12 + 8 + jlen + jpad + 8 + bin + bpad;
    mio_out o;
    if (mio_open(&o, path, err) == R3D_OK) {
        mio_put(&o, "glTF", 4);
        mio_u32le(&o, 2);
        mio_u32le(&o, (uint32_t)total);
        mio_u32le(&o, (uint32_t)(jlen + jpad));
        mio_u32le(&o, 0x4E4F534A); /* "JSON" */
        mio_put(&o, json, jlen);
        mio_put(&o, "   ", jpad);
        mio_u32le(&o, (uint32_t)(bin + bpad));
        mio_u32le(&o, 0x004E4942); /* "BIN\0" */
        mio_put(&o, data, bin);
        mio_put(&o, "\0\0\0", bpad);
    }
    st = mio_close(&o);
    free(data);
    free(json);
    return st;
}

/* mesh_io.c - mesh file formats: names, dispatch, and the shared plumbing
 * of the savers and loaders (buffered atomic output, zip packages, vertex
 * welding).
 *
 * Which format a path means is decided by its extension alone when
 * writing; when reading, the extension chooses first and the content
 * decides when the extension is unknown ("ply\n" magic, "solid" text,
 * otherwise binary STL). Readers are strict about sizes: every count in a
 * header is checked against the bytes that are really there before
 * anything is allocated.
 */
#include "mesh_io.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

/* ---- names -------------------------------------------------------------------- */

static const struct {
    const char *suffix;
    r3d_mesh_format f;
} k_suffixes[] = {
    /* longest first: ".amf.zip" must win over ".zip" readers might add */
    {".amf.zip", R3D_MESH_AMF_ZIP}, {".stl", R3D_MESH_STL},   {".obj", R3D_MESH_OBJ},
    {".ply", R3D_MESH_PLY},         {".3mf", R3D_MESH_3MF},   {".amf", R3D_MESH_AMF},
    {".wrl", R3D_MESH_VRML},        {".vrml", R3D_MESH_VRML}, {".3ds", R3D_MESH_3DS},
    {".glb", R3D_MESH_GLB},
};

r3d_mesh_format r3d_mesh_format_from_name(const char *path)
{
    if (!path)
        return R3D_MESH_UNKNOWN;
    for (size_t i = 0; i < sizeof k_suffixes / sizeof k_suffixes[0]; i++)
        if (r3d_has_suffix(path, k_suffixes[i].suffix))
            return k_suffixes[i].f;
    return R3D_MESH_UNKNOWN;
}

const char *r3d_mesh_format_name(r3d_mesh_format f)
{
    switch (f) {
    case R3D_MESH_STL: return "STL (binary)";
    case R3D_MESH_STL_ASCII: return "STL (ASCII)";
    case R3D_MESH_OBJ: return "Wavefront OBJ";
    case R3D_MESH_PLY: return "PLY (binary little endian)";
    case R3D_MESH_3MF: return "3MF";
    case R3D_MESH_AMF: return "AMF";
    case R3D_MESH_AMF_ZIP: return "AMF (zip compressed)";
    case R3D_MESH_VRML: return "VRML 97";
    case R3D_MESH_3DS: return "3DS";
    case R3D_MESH_GLB: return "glTF 2.0 binary (GLB)";
    default: return "unknown";
    }
}

/* ---- dispatch ----------------------------------------------------------------- */

r3d_status r3d_scene_write(const r3d_scene *s, const char *path, r3d_mesh_format f,
                           r3d_error *err)
{
    if (!s || !path)
        return r3d_fail(err, R3D_EARG, "mesh write: no scene or no path");
    if (f == R3D_MESH_UNKNOWN)
        f = r3d_mesh_format_from_name(path);
    r3d_status st = mio_check_scene(s, path, err);
    if (st != R3D_OK)
        return st;
    switch (f) {
    case R3D_MESH_STL: return r3d__stl_save(s, path, 0, err);
    case R3D_MESH_STL_ASCII: return r3d__stl_save(s, path, 1, err);
    case R3D_MESH_OBJ: return r3d__obj_save(s, path, err);
    case R3D_MESH_PLY: return r3d__ply_save(s, path, err);
    case R3D_MESH_3MF: return r3d__3mf_save(s, path, err);
    case R3D_MESH_AMF: return r3d__amf_save(s, path, 0, err);
    case R3D_MESH_AMF_ZIP: return r3d__amf_save(s, path, 1, err);
    case R3D_MESH_VRML: return r3d__vrml_save(s, path, err);
    case R3D_MESH_3DS: return r3d__3ds_save(s, path, err);
    case R3D_MESH_GLB: return r3d__glb_save(s, path, err);
    default:
        return r3d_fail(err, R3D_EARG,
                        "%s: unknown mesh format (use .stl .obj .ply .3mf .amf .amf.zip .wrl "
                        ".3ds .glb)",
                        path);
    }
}

static const char *skip_space(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

r3d_status r3d__scene_read_mem(const void *data, size_t size, const char *name, const char *dir,
                               r3d_scene *out, r3d_error *err)
{
    char *buf = malloc(size + 1);
    if (!buf)
        return r3d_fail(err, R3D_ENOMEM, "%s: cannot allocate %zu bytes", name, size);
    if (size)
        memcpy(buf, data, size);
    buf[size] = 0;
    r3d_mesh_format f = r3d_mesh_format_from_name(name);
    r3d_status st;
    if (f == R3D_MESH_STL) {
        st = r3d__stl_load_mem(buf, size, name, out, err);
    } else if (f == R3D_MESH_OBJ) {
        st = r3d__obj_load_mem(buf, size, name, dir, out, err);
    } else if (f == R3D_MESH_PLY || (size >= 4 && memcmp(buf, "ply", 3) == 0 &&
                                     (buf[3] == '\n' || buf[3] == '\r'))) {
        st = r3d__ply_load_mem(buf, size, name, out, err);
    } else if (f == R3D_MESH_UNKNOWN) {
        /* No telling extension: STL is the only other binary we read, and
         * an OBJ is text whose lines start with a keyword. */
        const char *p = skip_space(buf, buf + size);
        if ((size_t)(buf + size - p) >= 5 && strncmp(p, "solid", 5) == 0)
            st = r3d__stl_load_mem(buf, size, name, out, err);
        else if ((size_t)(buf + size - p) >= 2 &&
                 (p[0] == 'v' || p[0] == '#' || p[0] == 'o' || p[0] == 'g' ||
                  strncmp(p, "mtllib", 6) == 0) && memchr(buf, 0, size) == NULL)
            st = r3d__obj_load_mem(buf, size, name, dir, out, err);
        else
            st = r3d__stl_load_mem(buf, size, name, out, err);
    } else {
        st = r3d_fail(err, R3D_EUNSUPPORTED,
                      "%s: %s files can be written but not read (read STL, OBJ or PLY)", name,
                      r3d_mesh_format_name(f));
    }
    free(buf);
    return st;
}

r3d_status r3d_scene_read(const char *path, r3d_scene *out, r3d_error *err)
{
    if (!path || !out)
        return r3d_fail(err, R3D_EARG, "mesh read: no path or no scene");
    uint8_t *data;
    size_t size;
    r3d_status st = r3d_file_read_all(path, &data, &size, err);
    if (st != R3D_OK)
        return st;
    /* the folder, for the material library an OBJ names */
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (slash && (size_t)(slash - path) < sizeof dir) {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = 0;
        if (!dir[0])
            strcpy(dir, "/");
    } else {
        strcpy(dir, ".");
    }
    st = r3d__scene_read_mem(data, size, path, dir, out, err);
    free(data);
    return st;
}

/* ---- buffered output ------------------------------------------------------------ */

enum { MIO_FLUSH = 1 << 16 };

r3d_status mio_open(mio_out *o, const char *path, r3d_error *err)
{
    memset(o, 0, sizeof *o);
    o->err = err;
    o->path = path;
    o->f = r3d_atomic_open(path, err);
    if (!o->f)
        return o->st = err ? err->code : R3D_EIO;
    return R3D_OK;
}

void mio_open_mem(mio_out *o, const char *path, r3d_error *err)
{
    memset(o, 0, sizeof *o);
    o->err = err;
    o->path = path;
}

static void flush(mio_out *o)
{
    if (o->st == R3D_OK && o->f && o->n) {
        o->st = r3d_atomic_write(o->f, o->buf, o->n, o->err);
        o->n = 0;
    }
}

static int reserve(mio_out *o, size_t n)
{
    if (o->st != R3D_OK)
        return 0;
    if (o->f && o->n + n > MIO_FLUSH)
        flush(o);
    if (o->n + n <= o->cap)
        return 1;
    size_t cap = o->cap ? o->cap : 4096;
    while (cap < o->n + n) {
        if (cap > SIZE_MAX / 2) {
            o->st = r3d_fail(o->err, R3D_ENOMEM, "%s: output too large", o->path);
            return 0;
        }
        cap *= 2;
    }
    char *b = realloc(o->buf, cap);
    if (!b) {
        o->st = r3d_fail(o->err, R3D_ENOMEM, "%s: out of memory for the output", o->path);
        return 0;
    }
    o->buf = b;
    o->cap = cap;
    return 1;
}

void mio_put(mio_out *o, const void *p, size_t n)
{
    if (!n || !reserve(o, n))
        return;
    memcpy(o->buf + o->n, p, n);
    o->n += n;
}

void mio_printf(mio_out *o, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (len < 0)
        return;
    if ((size_t)len < sizeof small) {
        mio_put(o, small, (size_t)len);
        return;
    }
    if (!reserve(o, (size_t)len + 1))
        return;
    va_start(ap, fmt);
    vsnprintf(o->buf + o->n, (size_t)len + 1, fmt, ap);
    va_end(ap);
    o->n += (size_t)len;
}

void mio_u8(mio_out *o, uint8_t v) { mio_put(o, &v, 1); }

void mio_u16le(mio_out *o, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    mio_put(o, b, 2);
}

void mio_u32le(mio_out *o, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    mio_put(o, b, 4);
}

void mio_f32le(mio_out *o, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    mio_u32le(o, u);
}

void mio_xml(mio_out *o, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': mio_put(o, "&lt;", 4); break;
        case '>': mio_put(o, "&gt;", 4); break;
        case '&': mio_put(o, "&amp;", 5); break;
        case '"': mio_put(o, "&quot;", 6); break;
        case '\'': mio_put(o, "&apos;", 6); break;
        default:
            /* control characters are not allowed in XML 1.0 */
            mio_put(o, (unsigned char)*s < 0x20 ? " " : s, 1);
        }
    }
}

r3d_status mio_close(mio_out *o)
{
    if (!o->f) {
        if (o->st != R3D_OK) {
            free(o->buf);
            o->buf = NULL;
        }
        return o->st;
    }
    flush(o);
    free(o->buf);
    o->buf = NULL;
    if (o->st != R3D_OK) {
        r3d_atomic_abort(o->f);
        o->f = NULL;
        return o->st;
    }
    o->st = r3d_atomic_commit(o->f, o->err);
    o->f = NULL;
    return o->st;
}

/* ---- scene checks --------------------------------------------------------------- */

r3d_status mio_check_scene(const r3d_scene *s, const char *path, r3d_error *err)
{
    if (s->n <= 0)
        return r3d_fail(err, R3D_EARG, "%s: the scene has no meshes to write", path);
    for (int i = 0; i < s->n; i++) {
        const r3d_mesh *m = s->m[i];
        if (!m || m->nv < 0 || m->nt < 0 || (m->nt && (!m->t || !m->v)))
            return r3d_fail(err, R3D_EARG, "%s: mesh %d is empty or inconsistent", path, i + 1);
        if (m->frame != s->m[0]->frame)
            return r3d_fail(err, R3D_EARG,
                            "%s: mesh %d is in %s but mesh 1 in %s; convert one frame first",
                            path, i + 1, mio_frame_name(m->frame),
                            mio_frame_name(s->m[0]->frame));
        for (int64_t k = 0; k < 3 * m->nt; k++)
            if ((int64_t)m->t[k] >= m->nv)
                return r3d_fail(err, R3D_EARG,
                                "%s: mesh %d triangle %lld uses vertex %u of %lld", path, i + 1,
                                (long long)(k / 3), m->t[k], (long long)m->nv);
    }
    return R3D_OK;
}

const char *mio_frame_name(r3d_frame f) { return f == R3D_FRAME_RAS ? "RAS" : "LPS"; }

const char *mio_object_name(const r3d_mesh *m, int i, char *buf, size_t cap)
{
    if (m->name[0]) {
        snprintf(buf, cap, "%.*s", (int)sizeof m->name, m->name);
        return buf;
    }
    snprintf(buf, cap, "object_%d", i + 1);
    return buf;
}

/* ---- zip packages ---------------------------------------------------------------- */

r3d_status mio_zip_write(const char *path, const mio_zip_entry *e, int n, r3d_error *err)
{
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
    if (!src) {
        zip_error_fini(&ze);
        return r3d_fail(err, R3D_ENOMEM, "%s: cannot start a zip archive", path);
    }
    zip_t *z = zip_open_from_source(src, ZIP_TRUNCATE, &ze);
    if (!z) {
        zip_source_free(src);
        zip_error_fini(&ze);
        return r3d_fail(err, R3D_ENOMEM, "%s: cannot start a zip archive", path);
    }
    zip_error_fini(&ze);
    zip_source_keep(src); /* we read the archive back from it after zip_close */
    r3d_status st = R3D_OK;
    for (int i = 0; i < n && st == R3D_OK; i++) {
        zip_source_t *es = zip_source_buffer(z, e[i].data, e[i].size, 0);
        zip_int64_t idx = es ? zip_file_add(z, e[i].name, es, ZIP_FL_ENC_UTF_8) : -1;
        if (idx < 0) {
            if (es)
                zip_source_free(es);
            st = r3d_fail(err, R3D_ENOMEM, "%s: cannot add %s to the zip archive: %s", path,
                          e[i].name, zip_strerror(z));
        } else {
            zip_set_file_compression(z, (zip_uint64_t)idx, ZIP_CM_DEFLATE, 6);
            /* a fixed time, so the same scene gives the same bytes */
            zip_file_set_mtime(z, (zip_uint64_t)idx, 315532800 + 86400 * 366 * 10, 0);
        }
    }
    if (st != R3D_OK) {
        zip_discard(z);
        zip_source_free(src);
        return st;
    }
    if (zip_close(z) != 0) {
        st = r3d_fail(err, R3D_EIO, "%s: cannot build the zip archive: %s", path,
                      zip_strerror(z));
        zip_discard(z);
        zip_source_free(src);
        return st;
    }
    zip_stat_t zs;
    void *bytes = NULL;
    if (zip_source_stat(src, &zs) != 0 || zip_source_open(src) != 0) {
        zip_source_free(src);
        return r3d_fail(err, R3D_EIO, "%s: cannot read the zip archive back", path);
    }
    bytes = malloc(zs.size ? zs.size : 1);
    if (!bytes || zip_source_read(src, bytes, zs.size) != (zip_int64_t)zs.size) {
        zip_source_close(src);
        zip_source_free(src);
        free(bytes);
        return r3d_fail(err, R3D_ENOMEM, "%s: cannot read the zip archive back", path);
    }
    zip_source_close(src);
    zip_source_free(src);
    st = r3d_file_write_atomic(path, bytes, zs.size, err);
    free(bytes);
    return st;
}

/* ---- welding --------------------------------------------------------------------- */

static uint32_t hash3(const float *p)
{
    uint32_t u[3], h = 2166136261u;
    memcpy(u, p, sizeof u);
    for (int i = 0; i < 3; i++) {
        h ^= u[i];
        h *= 16777619u;
        h ^= h >> 15;
    }
    return h;
}

int64_t mio_weld_add(mio_weld *w, r3d_mesh *m, float x, float y, float z)
{
    /* keep the load factor under 1/2 */
    if ((size_t)(m->nv + 1) * 2 > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 1024;
        while ((size_t)(m->nv + 1) * 2 > cap)
            cap *= 2;
        uint32_t *slot = calloc(cap, sizeof *slot);
        if (!slot)
            return -1;
        for (int64_t i = 0; i < m->nv; i++) {
            size_t k = hash3(m->v + 3 * i) & (cap - 1);
            while (slot[k])
                k = (k + 1) & (cap - 1);
            slot[k] = (uint32_t)(i + 1);
        }
        free(w->slot);
        w->slot = slot;
        w->cap = cap;
    }
    float p[3] = {x, y, z};
    size_t k = hash3(p) & (w->cap - 1);
    while (w->slot[k]) {
        const float *q = m->v + 3 * (size_t)(w->slot[k] - 1);
        if (memcmp(q, p, sizeof p) == 0)
            return w->slot[k] - 1;
        k = (k + 1) & (w->cap - 1);
    }
    int64_t idx = r3d_mesh_add_vertex(m, x, y, z);
    if (idx >= 0)
        w->slot[k] = (uint32_t)(idx + 1);
    return idx;
}

void mio_weld_free(mio_weld *w)
{
    free(w->slot);
    w->slot = NULL;
    w->cap = 0;
}

/* mesh_io.h - internal plumbing shared by the mesh format files in
 * src/io/mesh/: one saver or loader per file (stl_save.c, obj_load.c, ...),
 * dispatched by mesh_io.c.
 *
 * Savers stream through mio_out, a buffered writer over r3d_atomic_* (or a
 * growing memory buffer when the bytes go into a zip package), whose first
 * error sticks so a saver can write everything and check once at the end.
 * Loaders parse a NUL-terminated copy of the whole file in memory
 * (r3d__scene_read_mem), so the fuzz target reaches them without files.
 */
#ifndef R3D_MESH_IO_H
#define R3D_MESH_IO_H

#include "r3d/mesh.h"

#include <stdarg.h>

/* ---- buffered output ------------------------------------------------------- */

typedef struct mio_out {
    r3d_atomic_file *f; /* NULL: memory mode, bytes stay in buf */
    char *buf;
    size_t n, cap;
    r3d_status st; /* first error; later writes are ignored */
    r3d_error *err;
    const char *path; /* for messages */
} mio_out;

r3d_status mio_open(mio_out *o, const char *path, r3d_error *err);
void mio_open_mem(mio_out *o, const char *path, r3d_error *err);
void mio_put(mio_out *o, const void *p, size_t n);
void mio_printf(mio_out *o, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void mio_u8(mio_out *o, uint8_t v);
void mio_u16le(mio_out *o, uint16_t v);
void mio_u32le(mio_out *o, uint32_t v);
void mio_f32le(mio_out *o, float v);
/* Puts s with the XML special characters escaped. */
void mio_xml(mio_out *o, const char *s);
/* File mode: flush and commit (or abort after an error). Memory mode: keep
 * buf for the caller on success (caller frees o->buf), free it on error. */
r3d_status mio_close(mio_out *o);

/* ---- scene checks and helpers for savers ------------------------------------ */

/* Every saver starts here: a non-empty scene, one frame, indices in range. */
r3d_status mio_check_scene(const r3d_scene *s, const char *path, r3d_error *err);
const char *mio_frame_name(r3d_frame f); /* "LPS" / "RAS" */
/* Object name for files: name, else "object_<i+1>". */
const char *mio_object_name(const r3d_mesh *m, int i, char *buf, size_t cap);

/* Pack files into a zip archive in memory (deflate) and write it
 * atomically to path: a reader never sees half a package. */
typedef struct mio_zip_entry {
    const char *name;
    const void *data;
    size_t size;
} mio_zip_entry;
r3d_status mio_zip_write(const char *path, const mio_zip_entry *e, int n, r3d_error *err);

/* ---- vertex welding for loaders of unindexed formats (STL) ------------------- */

typedef struct mio_weld {
    uint32_t *slot; /* hash of exact coordinate bits -> vertex index + 1 */
    size_t cap;
} mio_weld;
/* Index of (x,y,z) in m, adding it if new; -1 on out of memory. */
int64_t mio_weld_add(mio_weld *w, r3d_mesh *m, float x, float y, float z);
void mio_weld_free(mio_weld *w);

/* ---- savers ----------------------------------------------------------------- */

r3d_status r3d__stl_save(const r3d_scene *s, const char *path, int ascii, r3d_error *err);
r3d_status r3d__obj_save(const r3d_scene *s, const char *path, r3d_error *err);
r3d_status r3d__ply_save(const r3d_scene *s, const char *path, r3d_error *err);
r3d_status r3d__3mf_save(const r3d_scene *s, const char *path, r3d_error *err);
/* zipped: the standard's compressed AMF, a zip holding the .amf document */
r3d_status r3d__amf_save(const r3d_scene *s, const char *path, int zipped, r3d_error *err);
r3d_status r3d__vrml_save(const r3d_scene *s, const char *path, r3d_error *err);
r3d_status r3d__3ds_save(const r3d_scene *s, const char *path, r3d_error *err);
r3d_status r3d__glb_save(const r3d_scene *s, const char *path, r3d_error *err);

/* ---- loaders: buf holds size bytes and a NUL at buf[size]; name is for
 * messages; they append to out only on success. ------------------------------ */

r3d_status r3d__stl_load_mem(const char *buf, size_t size, const char *name, r3d_scene *out,
                             r3d_error *err);
/* dir: folder to resolve mtllib in, NULL to ignore material libraries. */
r3d_status r3d__obj_load_mem(char *buf, size_t size, const char *name, const char *dir,
                             r3d_scene *out, r3d_error *err);
r3d_status r3d__ply_load_mem(char *buf, size_t size, const char *name, r3d_scene *out,
                             r3d_error *err);

/* Read from memory: format by the name's extension, else by content.
 * data need not be NUL-terminated (it is copied). The fuzz target's entry. */
r3d_status r3d__scene_read_mem(const void *data, size_t size, const char *name, const char *dir,
                               r3d_scene *out, r3d_error *err);

#endif

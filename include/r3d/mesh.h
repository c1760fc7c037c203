/* r3d/mesh.h - triangle meshes: extraction from label maps and images,
 * smoothing, decimation, repair, metrics, and the 3D-printing formats.
 *
 * A mesh is an indexed triangle list in patient millimetres. The frame is
 * stated, never implied: R3D_FRAME_LPS (DICOM) or R3D_FRAME_RAS (NIfTI);
 * extraction writes LPS (the volume's ijk_to_lps) unless asked otherwise.
 * Triangles are counter-clockwise seen from outside (normals point out).
 * A scene is several named, coloured meshes (one per structure) written
 * together to the multi-object formats (OBJ, 3MF, AMF, GLB, VRML, 3DS, PLY).
 */
#ifndef R3D_MESH_H
#define R3D_MESH_H

#include "volume.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum r3d_frame { R3D_FRAME_LPS = 0, R3D_FRAME_RAS = 1 } r3d_frame;

typedef struct r3d_mesh {
    float *v;          /* 3 * nv coordinates, mm */
    uint32_t *t;       /* 3 * nt vertex indices, counter-clockwise from outside */
    int64_t nv, nt;
    int64_t cap_v, cap_t;
    r3d_frame frame;
    char name[64];     /* structure name, e.g. "liver" */
    char name_zh[64];
    uint8_t rgb[3];
    uint16_t label;    /* label value it came from, 0 if none */
} r3d_mesh;

r3d_mesh *r3d_mesh_new(r3d_error *err);
void r3d_mesh_free(r3d_mesh *m);
r3d_mesh *r3d_mesh_copy(const r3d_mesh *m, r3d_error *err);
/* Grow to hold at least nv vertices / nt triangles (amortised doubling). */
r3d_status r3d_mesh_reserve(r3d_mesh *m, int64_t nv, int64_t nt, r3d_error *err);
/* Append; return the new vertex index or -1 on out of memory. */
int64_t r3d_mesh_add_vertex(r3d_mesh *m, float x, float y, float z);
int r3d_mesh_add_triangle(r3d_mesh *m, uint32_t a, uint32_t b, uint32_t c); /* 0 on OOM */
/* Change frame in place (negates x and y). */
void r3d_mesh_set_frame(r3d_mesh *m, r3d_frame f);

typedef struct r3d_scene {
    r3d_mesh **m;
    int n, cap;
} r3d_scene;

r3d_status r3d_scene_add(r3d_scene *s, r3d_mesh *m, r3d_error *err); /* takes ownership */
void r3d_scene_clear(r3d_scene *s);                                   /* frees the meshes */

/* ---- extraction ------------------------------------------------------------- */

typedef struct r3d_extract_opts {
    double iso;          /* grey-level threshold (image extraction) */
    int threads;         /* 0 = r3d_threads() */
    r3d_frame frame;     /* frame of the output coordinates */
} r3d_extract_opts;
#define R3D_EXTRACT_OPTS_INIT {0.5, 0, R3D_FRAME_LPS}

/* Surface of the voxels whose value is >= iso (real units), e.g. bone at
 * 300 HU; closed at the volume border. */
r3d_mesh *r3d_mesh_from_image(const r3d_volume *v, const r3d_extract_opts *o, r3d_error *err);
/* Surface of the voxels equal to label (uint16 label map); closed. */
r3d_mesh *r3d_mesh_from_label(const r3d_volume *labels, uint16_t label,
                              const r3d_extract_opts *o, r3d_error *err);

/* The surfaces of several labels of one map, each smoothed by
 * r3d_mesh_smooth_label at strength, with shared boundaries: where two
 * labels touch, both meshes have the same vertices at the same positions,
 * so adjacent structures neither gap nor overlap (src/mesh/labels.c).
 * Appends one mesh per value, in order (empty if the label is absent;
 * label set, name and colour left to the caller). On failure nothing is
 * appended. */
r3d_status r3d_mesh_from_labels(const r3d_volume *labels, const uint16_t *values, int n,
                                const r3d_extract_opts *o, double strength, r3d_scene *out,
                                r3d_error *err);

/* ---- processing ------------------------------------------------------------- */

/* Smoothing without shrinkage (windowed-sinc low pass, pass band 0.1).
 * strength 0..10 maps to the number of passes (20 at the default 5); 0
 * leaves the mesh unchanged. */
r3d_status r3d_mesh_smooth(r3d_mesh *m, double strength, r3d_error *err);
/* The default smoothing of a label surface, given the label map it came
 * from: m must be unchanged since r3d_mesh_from_label(labels, label).
 * Each vertex moves only along its grid edge between the voxel centres:
 * near-isotropic voxels, to the curvature of a Taubin-smoothed copy
 * (evened out along the surface, not across rims), then an offset to the
 * mask's volume; thick slices (largest spacing > 1.5 x smallest), under a
 * volume-preserving curvature flow, so terraced poles become round
 * (src/mesh/surface.c).
 * Same strength scale; 0 leaves the mesh unchanged. */
r3d_status r3d_mesh_smooth_label(r3d_mesh *m, const r3d_volume *labels, uint16_t label,
                                 double strength, r3d_error *err);

typedef struct r3d_decimate_opts {
    double target_fraction;  /* keep this share of triangles (0..1], 0 = unused */
    int64_t max_triangles;   /* or at most this many, 0 = unused */
    double max_error_mm;     /* stop before any collapse would move the surface more */
    int preserve_boundary;   /* never move boundary edges (open meshes) */
    const uint8_t *locked;   /* m->nv flags: non-zero vertices are never moved or
                                removed (faces among them stay); NULL = none */
} r3d_decimate_opts;
#define R3D_DECIMATE_OPTS_INIT {0, 0, 0, 1, NULL}
r3d_status r3d_mesh_decimate(r3d_mesh *m, const r3d_decimate_opts *o, r3d_error *err);
/* Decimate every mesh of a scene, each vertex that another mesh has at
 * exactly the same place locked (o->locked is ignored): the shared
 * boundaries of r3d_mesh_from_labels stay vertex for vertex and triangle
 * for triangle, and the rest of each surface is thinned; target_fraction
 * applies to the faces that can go (not those among locked vertices), and
 * max_triangles is raised to those when below (labels.c). */
r3d_status r3d_scene_decimate(r3d_scene *s, const r3d_decimate_opts *o, r3d_error *err);

/* Clean-up. */
r3d_status r3d_mesh_remove_degenerate(r3d_mesh *m, r3d_error *err); /* zero-area, duplicate faces, unused/duplicate vertices */
r3d_status r3d_mesh_keep_largest_component(r3d_mesh *m, r3d_error *err);
r3d_status r3d_mesh_drop_small_components(r3d_mesh *m, double min_volume_mm3, r3d_error *err);
r3d_status r3d_mesh_fill_holes(r3d_mesh *m, r3d_error *err);
r3d_status r3d_mesh_orient_outward(r3d_mesh *m, r3d_error *err);

typedef struct r3d_mesh_check {
    int64_t boundary_edges;      /* edges with one triangle (holes) */
    int64_t nonmanifold_edges;   /* edges with more than two triangles */
    int64_t nonmanifold_vertices;/* vertices whose fan is not one disc */
    int64_t degenerate_triangles;
    int64_t inconsistent_edges;  /* neighbours with opposite winding */
    int64_t components;
    int closed, manifold, oriented;
    char report[512];            /* what is wrong, in words; "" when nothing */
} r3d_mesh_check;
void r3d_mesh_check_run(const r3d_mesh *m, r3d_mesh_check *c);

/* ---- metrics ---------------------------------------------------------------- */

typedef struct r3d_mesh_metrics {
    double volume_mm3;   /* signed-tetrahedra volume (positive when outward) */
    double area_mm2;
    double bbox_min[3], bbox_max[3];
    int64_t euler;       /* V - E + F */
    int64_t genus;       /* for a closed orientable single component */
} r3d_mesh_metrics;
void r3d_mesh_metrics_run(const r3d_mesh *m, r3d_mesh_metrics *out);

typedef struct r3d_surface_distance {
    double mean_mm, p95_mm, max_mm;
} r3d_surface_distance;
/* Symmetric distance between two meshes (vertices to nearest triangle). */
r3d_status r3d_mesh_distance(const r3d_mesh *a, const r3d_mesh *b, r3d_surface_distance *out,
                             r3d_error *err);

/* ---- files (src/io/mesh/, one file per format) -------------------------------- */

typedef enum r3d_mesh_format {
    R3D_MESH_UNKNOWN = 0,
    R3D_MESH_STL,        /* binary */
    R3D_MESH_STL_ASCII,
    R3D_MESH_OBJ,        /* + .mtl beside it */
    R3D_MESH_PLY,        /* binary little endian, vertex colours */
    R3D_MESH_3MF,
    R3D_MESH_AMF,
    R3D_MESH_AMF_ZIP,
    R3D_MESH_VRML,
    R3D_MESH_3DS,
    R3D_MESH_GLB,
} r3d_mesh_format;

r3d_mesh_format r3d_mesh_format_from_name(const char *path); /* by extension */
const char *r3d_mesh_format_name(r3d_mesh_format f);

/* Write every mesh of the scene (single-object formats merge them; STL
 * keeps per-object names in ASCII "solid" blocks). Atomic: nothing half
 * written. Coordinates in mm at 1:1; the frame is stated in the file where
 * the format has a place for it. */
r3d_status r3d_scene_write(const r3d_scene *s, const char *path, r3d_mesh_format f,
                           r3d_error *err);
/* Read STL (binary or ASCII), OBJ, PLY into a scene (one mesh per object). */
r3d_status r3d_scene_read(const char *path, r3d_scene *out, r3d_error *err);

#ifdef __cplusplus
}
#endif
#endif

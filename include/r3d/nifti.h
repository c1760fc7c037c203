/* r3d/nifti.h - NIfTI-1 / NIfTI-2 (.nii, .nii.gz) and other volume formats
 * that users bring: NRRD (.nrrd, .nhdr) and InVesalius projects (.inv3).
 *
 * Readers fill ijk_to_lps from the sform when sform_code > 0, else from the
 * qform when qform_code > 0, else from pixdim (as nibabel does). Writers put
 * the same affine in both sform and qform (codes 1 = scanner) whenever it is
 * a rotation (qform can express it); a sheared affine goes in sform only.
 */
#ifndef R3D_NIFTI_H
#define R3D_NIFTI_H

#include "volume.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct r3d_nifti_write_opts {
    int version;        /* 1 or 2; 0 = 1 unless a dimension exceeds int16 */
    int gzip_level;     /* 1..12 (libdeflate levels); 0 = default (6) */
    int threads;        /* gzip threads; 0 = r3d_threads() */
} r3d_nifti_write_opts;
#define R3D_NIFTI_WRITE_OPTS_INIT {0, 0, 0}

/* Format chosen from the name: ".nii.gz" compresses. Written atomically. */
r3d_status r3d_nifti_write(const r3d_volume *v, const char *path,
                           const r3d_nifti_write_opts *opts, r3d_error *err);
/* The same file's bytes in memory (gz: compressed), for a database or a
 * network answer; free(*bytes). */
r3d_status r3d_nifti_write_mem(const r3d_volume *v, int gz, const r3d_nifti_write_opts *opts,
                               uint8_t **bytes, size_t *n, r3d_error *err);
r3d_volume *r3d_nifti_read(const char *path, r3d_error *err);
/* Parse from memory (the fuzz target's entry): name is used in messages. */
r3d_volume *r3d_nifti_read_mem(const uint8_t *buf, size_t n, const char *name, r3d_error *err);

r3d_volume *r3d_nrrd_read(const char *path, r3d_error *err);
r3d_volume *r3d_nrrd_read_mem(const uint8_t *buf, size_t n, const char *name, r3d_error *err);

/* InVesalius project: the image as int16 HU with its geometry; masks (if
 * any) go into *masks as a label map (value k = k-th mask), may be NULL. */
r3d_volume *r3d_inv3_read(const char *path, r3d_labelmap **masks, r3d_error *err);
/* The same from a project held in memory (gzip'ed or plain tar). */
r3d_volume *r3d_inv3_read_mem(const uint8_t *buf, size_t n, const char *name,
                              r3d_labelmap **masks, r3d_error *err);

/* gzip helpers shared by readers and writers (libdeflate).
 * Decompression accepts multi-member files (we write those when threaded). */
r3d_status r3d_gzip_compress(const uint8_t *in, size_t n, int level, int threads,
                             uint8_t **out, size_t *out_n, r3d_error *err);
r3d_status r3d_gzip_decompress(const uint8_t *in, size_t n, const char *name,
                               uint8_t **out, size_t *out_n, r3d_error *err);
int r3d_is_gzip(const uint8_t *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif

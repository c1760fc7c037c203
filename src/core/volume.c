/* volume.c - allocation, geometry helpers and label tables for r3d_volume. */
#include "r3d/volume.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t r3d_dtype_size(r3d_dtype t)
{
    switch (t) {
    case R3D_U8: case R3D_I8: return 1;
    case R3D_I16: case R3D_U16: return 2;
    case R3D_I32: case R3D_U32: case R3D_F32: return 4;
    case R3D_F64: return 8;
    case R3D_RGB24: return 3;
    default: return 0;
    }
}

const char *r3d_dtype_name(r3d_dtype t)
{
    switch (t) {
    case R3D_U8: return "uint8";
    case R3D_I8: return "int8";
    case R3D_I16: return "int16";
    case R3D_U16: return "uint16";
    case R3D_I32: return "int32";
    case R3D_U32: return "uint32";
    case R3D_F32: return "float32";
    case R3D_F64: return "float64";
    case R3D_RGB24: return "rgb24";
    default: return "none";
    }
}

void r3d_acq_init(r3d_acq *a)
{
    memset(a, 0, sizeof *a);
    a->series_number = -1;
    a->kvp = a->tube_current_ma = a->exposure_mas = a->exposure_time_ms = NAN;
    a->slice_thickness_mm = a->spacing_between_slices_mm = NAN;
    a->pixel_spacing_mm[0] = a->pixel_spacing_mm[1] = NAN;
    a->magnetic_field_t = a->repetition_time_ms = a->echo_time_ms = NAN;
    a->inversion_time_ms = a->flip_angle_deg = a->gantry_tilt_deg = NAN;
    a->rescale_slope = a->rescale_intercept = NAN;
}

static void set_identity(double m[4][4])
{
    memset(m, 0, sizeof(double) * 16);
    for (int i = 0; i < 4; i++)
        m[i][i] = 1.0;
}

r3d_volume *r3d_volume_new(const int64_t dim[4], r3d_dtype dtype, r3d_error *err)
{
    size_t f[5], bytes;
    for (int i = 0; i < 4; i++) {
        int64_t d = (i == 3 && dim[3] == 0) ? 1 : dim[i];
        if (d <= 0 || d > (1 << 24))
            return r3d_fail(err, R3D_EARG, "volume: impossible dimension %lld on axis %d",
                            (long long)dim[i], i),
                   NULL;
        f[i] = (size_t)d;
    }
    f[4] = r3d_dtype_size(dtype);
    if (f[4] == 0)
        return r3d_fail(err, R3D_EARG, "volume: no data type"), NULL;
    if (!r3d_mul_sizes(f, 5, &bytes) || bytes > ((size_t)1 << 40))
        return r3d_fail(err, R3D_EARG, "volume: %zux%zux%zux%zu voxels is too large",
                        f[0], f[1], f[2], f[3]),
               NULL;
    r3d_volume *v = calloc(1, sizeof *v);
    if (!v || !(v->voxels = calloc(1, bytes ? bytes : 1))) {
        free(v);
        return r3d_fail(err, R3D_ENOMEM, "volume: cannot allocate %zu bytes", bytes), NULL;
    }
    /* Volumes are touched once each by a decoder or filter. */
    r3d_advise_huge(v->voxels, bytes);
    for (int i = 0; i < 4; i++)
        v->dim[i] = (int64_t)f[i];
    v->dtype = dtype;
    set_identity(v->ijk_to_lps);
    v->spacing_mm[0] = v->spacing_mm[1] = v->spacing_mm[2] = 1.0;
    v->scl_slope = 1.0;
    v->scl_inter = 0.0;
    r3d_acq_init(&v->acq);
    return v;
}

void r3d_volume_free(r3d_volume *v)
{
    if (!v)
        return;
    free(v->voxels);
    free(v);
}

int64_t r3d_volume_nvox(const r3d_volume *v)
{
    return v->dim[0] * v->dim[1] * v->dim[2] * (v->dim[3] > 0 ? v->dim[3] : 1);
}

size_t r3d_volume_bytes(const r3d_volume *v)
{
    return (size_t)r3d_volume_nvox(v) * r3d_dtype_size(v->dtype);
}

r3d_volume *r3d_volume_copy(const r3d_volume *v, r3d_error *err)
{
    r3d_volume *c = r3d_volume_new(v->dim, v->dtype, err);
    if (!c)
        return NULL;
    void *vox = c->voxels;
    *c = *v;
    c->voxels = vox;
    memcpy(c->voxels, v->voxels, r3d_volume_bytes(v));
    return c;
}

void r3d_volume_update_spacing(r3d_volume *v)
{
    for (int j = 0; j < 3; j++) {
        double s = 0;
        for (int i = 0; i < 3; i++)
            s += v->ijk_to_lps[i][j] * v->ijk_to_lps[i][j];
        v->spacing_mm[j] = sqrt(s);
    }
}

void r3d_volume_ijk_to_ras(const r3d_volume *v, double out[4][4])
{
    memcpy(out, v->ijk_to_lps, sizeof(double) * 16);
    for (int j = 0; j < 4; j++) {
        out[0][j] = -out[0][j];
        out[1][j] = -out[1][j];
    }
}

void r3d_volume_set_ijk_to_ras(r3d_volume *v, const double ras[4][4])
{
    memcpy(v->ijk_to_lps, ras, sizeof(double) * 16);
    for (int j = 0; j < 4; j++) {
        v->ijk_to_lps[0][j] = -v->ijk_to_lps[0][j];
        v->ijk_to_lps[1][j] = -v->ijk_to_lps[1][j];
    }
    r3d_volume_update_spacing(v);
}

double r3d_volume_get(const r3d_volume *v, int64_t n)
{
    double x;
    const void *p = v->voxels;
    switch (v->dtype) {
    case R3D_U8: x = ((const uint8_t *)p)[n]; break;
    case R3D_I8: x = ((const int8_t *)p)[n]; break;
    case R3D_I16: x = ((const int16_t *)p)[n]; break;
    case R3D_U16: x = ((const uint16_t *)p)[n]; break;
    case R3D_I32: x = ((const int32_t *)p)[n]; break;
    case R3D_U32: x = ((const uint32_t *)p)[n]; break;
    case R3D_F32: x = ((const float *)p)[n]; break;
    case R3D_F64: x = ((const double *)p)[n]; break;
    case R3D_RGB24: {
        const uint8_t *q = (const uint8_t *)p + 3 * n;
        x = 0.299 * q[0] + 0.587 * q[1] + 0.114 * q[2];
        break;
    }
    default: return NAN;
    }
    return x * v->scl_slope + v->scl_inter;
}

r3d_volume *r3d_volume_new_like(const r3d_volume *like, r3d_dtype dtype, r3d_error *err)
{
    int64_t dim[4] = {like->dim[0], like->dim[1], like->dim[2], 1};
    r3d_volume *v = r3d_volume_new(dim, dtype, err);
    if (!v)
        return NULL;
    memcpy(v->ijk_to_lps, like->ijk_to_lps, sizeof v->ijk_to_lps);
    memcpy(v->spacing_mm, like->spacing_mm, sizeof v->spacing_mm);
    v->acq = like->acq;
    return v;
}

int r3d_volume_ras_axes(const r3d_volume *v, int perm[3], int flip[3])
{
    double ras[4][4], m[3][3];
    r3d_volume_ijk_to_ras(v, ras);
    for (int j = 0; j < 3; j++) {
        double n = 0;
        for (int i = 0; i < 3; i++)
            n += ras[i][j] * ras[i][j];
        n = n > 0 ? sqrt(n) : 1;
        for (int i = 0; i < 3; i++)
            m[i][j] = ras[i][j] / n;
        perm[j] = -1, flip[j] = 0;
    }
    /* Greedy: the largest |cosine| decides one pairing at a time. */
    for (int step = 0; step < 3; step++) {
        int bw = 0, bi = 0;
        double best = -1;
        for (int w = 0; w < 3; w++)
            for (int i = 0; i < 3; i++)
                if (fabs(m[w][i]) > best) {
                    best = fabs(m[w][i]);
                    bw = w;
                    bi = i;
                }
        perm[bw] = bi;
        flip[bw] = m[bw][bi] < 0;
        for (int k = 0; k < 3; k++)
            m[bw][k] = m[k][bi] = 0;
    }
    return perm[0] >= 0 && perm[1] >= 0 && perm[2] >= 0 && perm[0] != perm[1] &&
                   perm[1] != perm[2] && perm[0] != perm[2]
               ? 0
               : -1;
}

r3d_volume *r3d_volume_reorient_ras(const r3d_volume *v, r3d_error *err)
{
    int perm[3], flip[3]; /* perm[w] = old voxel axis feeding world axis w */
    if (r3d_volume_ras_axes(v, perm, flip))
        return r3d_fail(err, R3D_EDATA, "volume: its affine has no three independent axes"), NULL;
    int64_t dim[4] = {v->dim[perm[0]], v->dim[perm[1]], v->dim[perm[2]], v->dim[3]};
    r3d_volume *o = r3d_volume_new(dim, v->dtype, err);
    if (!o)
        return NULL;
    void *vox = o->voxels;
    *o = *v;
    o->voxels = vox;
    for (int k = 0; k < 4; k++)
        o->dim[k] = dim[k];
    /* Old strides for each new axis, with flips folded into start + sign. */
    int64_t ostride[3] = {1, v->dim[0], v->dim[0] * v->dim[1]};
    int64_t st[3], start = 0;
    for (int w = 0; w < 3; w++) {
        st[w] = flip[w] ? -ostride[perm[w]] : ostride[perm[w]];
        if (flip[w])
            start += (v->dim[perm[w]] - 1) * ostride[perm[w]];
    }
    size_t es = r3d_dtype_size(v->dtype);
    int64_t vol = v->dim[0] * v->dim[1] * v->dim[2];
    const uint8_t *src = v->voxels;
    uint8_t *dst = o->voxels;
    for (int64_t t = 0; t < v->dim[3]; t++)
        for (int64_t c = 0; c < dim[2]; c++)
            for (int64_t b = 0; b < dim[1]; b++) {
                int64_t so = t * vol + start + c * st[2] + b * st[1];
                int64_t d0 = ((t * dim[2] + c) * dim[1] + b) * dim[0];
                for (int64_t a = 0; a < dim[0]; a++)
                    memcpy(dst + (size_t)(d0 + a) * es, src + (size_t)(so + a * st[0]) * es, es);
            }
    /* New columns: old column perm[w], negated when flipped; origin moves
     * to the old voxel that is now first. */
    for (int i = 0; i < 3; i++) {
        double org = v->ijk_to_lps[i][3];
        for (int w = 0; w < 3; w++) {
            double col = v->ijk_to_lps[i][perm[w]];
            o->ijk_to_lps[i][w] = flip[w] ? -col : col;
            if (flip[w])
                org += col * (double)(v->dim[perm[w]] - 1);
        }
        o->ijk_to_lps[i][3] = org;
    }
    r3d_volume_update_spacing(o);
    return o;
}

/* ---- label maps --------------------------------------------------------- */

r3d_labelmap *r3d_labelmap_new(const r3d_volume *geometry, r3d_error *err)
{
    int64_t dim[4] = {geometry->dim[0], geometry->dim[1], geometry->dim[2], 1};
    r3d_labelmap *m = calloc(1, sizeof *m);
    if (!m)
        return r3d_fail(err, R3D_ENOMEM, "label map: out of memory"), NULL;
    m->vol = r3d_volume_new(dim, R3D_U16, err);
    if (!m->vol) {
        free(m);
        return NULL;
    }
    memcpy(m->vol->ijk_to_lps, geometry->ijk_to_lps, sizeof geometry->ijk_to_lps);
    memcpy(m->vol->spacing_mm, geometry->spacing_mm, sizeof geometry->spacing_mm);
    m->vol->acq = geometry->acq;
    return m;
}

void r3d_labelmap_free(r3d_labelmap *m)
{
    if (!m)
        return;
    r3d_volume_free(m->vol);
    r3d_label_table_clear(&m->table);
    free(m);
}

r3d_status r3d_label_table_add(r3d_label_table *t, const r3d_label *l, r3d_error *err)
{
    if (r3d_label_table_find(t, l->value))
        return r3d_fail(err, R3D_EARG, "label table: value %u already used", (unsigned)l->value);
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 16;
        r3d_label *v = realloc(t->v, (size_t)cap * sizeof *v);
        if (!v)
            return r3d_fail(err, R3D_ENOMEM, "label table: out of memory");
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++] = *l;
    return R3D_OK;
}

const r3d_label *r3d_label_table_find(const r3d_label_table *t, uint16_t value)
{
    for (int i = 0; i < t->n; i++)
        if (t->v[i].value == value)
            return &t->v[i];
    return NULL;
}

const r3d_label *r3d_label_table_find_name(const r3d_label_table *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->v[i].name, name) == 0)
            return &t->v[i];
    return NULL;
}

void r3d_label_table_clear(r3d_label_table *t)
{
    free(t->v);
    t->v = NULL;
    t->n = t->cap = 0;
}

/* series_load.c - decode the frames of an analysed series into a volume.
 *
 * Work is split by source file (one file may hold many frames, and opening
 * it is the expensive part), files decoded in parallel, each frame written
 * straight into its slot with rows flipped (see series.c for the geometry).
 *
 * Real units: DICOM stores raw values and a rescale (slope, intercept) per
 * image. When every image has the same rescale we keep the raw values and
 * the rescale (NIfTI scl_slope/scl_inter) unless the rescaled values are
 * integers that fit int16 - the CT case - where we store HU directly, which
 * every downstream tool reads the same way. When the rescale varies between
 * images (Philips MR, some PET) we store float32 real values, because no
 * single scl pair can represent them.
 */
#include "series.h"
#include "tilt.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct job_frame {
    int src, frame;  /* where it comes from */
    int rec;         /* index of the frame record within the series */
    int64_t slot;    /* first destination slice (t * nz + z) */
    int n_slices;    /* slices this record fills (mosaic tiles, classic frames) */
} job_frame;

typedef struct load_ctx {
    const r3d_dicom_scan *s;
    const r3d_series *g;
    r3d_volume *v;
    r3d_dcm_pixinfo p0;
    job_frame *jf;
    int n_jf;
    int *job_start; /* job j covers jf[job_start[j] .. job_start[j+1]) */
    int n_jobs;
    size_t vox_bytes;  /* bytes per voxel of the decoded frames */
    int rows, cols; /* of one slice (a mosaic tile) */
    /* Fast path: uniform slope 1 and integer intercept whose result fits
     * int16 for every value bits_stored allows: convert while copying. */
    int to_int16;
    int inter16;
    r3d_dtype raw;
    pthread_mutex_t lock;
    r3d_error err;
    int failed;
    double *slope, *inter; /* per slice slot */
} load_ctx;

static void set_error(load_ctx *c, const r3d_error *e)
{
    pthread_mutex_lock(&c->lock);
    if (!c->failed) {
        c->err = *e;
        c->failed = 1;
    }
    pthread_mutex_unlock(&c->lock);
}

static int cmp_jf(const void *pa, const void *pb)
{
    const job_frame *a = pa, *b = pb;
    if (a->src != b->src)
        return a->src < b->src ? -1 : 1;
    return a->frame - b->frame;
}

/* Copy one decoded image (rows x cols, es bytes per voxel) into slice slot,
 * flipping rows. For mosaics, tile `tile` of the image is the source. */
static void put_slice(load_ctx *c, const uint8_t *img, int img_cols, int tile, int tiles,
                      int64_t slot)
{
    size_t es = c->vox_bytes, os = c->to_int16 ? 2 : es;
    int rows = c->rows, cols = c->cols;
    int ty = tiles ? tile / tiles : 0, tx = tiles ? tile % tiles : 0;
    uint8_t *dst = (uint8_t *)c->v->voxels + (size_t)slot * (size_t)rows * (size_t)cols * os;
    for (int r = 0; r < rows; r++) {
        const uint8_t *src =
            img + (((size_t)(ty * rows + r)) * (size_t)img_cols + (size_t)(tx * cols)) * es;
        uint8_t *d = dst + (size_t)(rows - 1 - r) * (size_t)cols * os;
        if (!c->to_int16) {
            memcpy(d, src, (size_t)cols * es);
            continue;
        }
        int16_t *o = (int16_t *)d;
        int b = c->inter16;
        switch (c->raw) {
        case R3D_U8: for (int i = 0; i < cols; i++) o[i] = (int16_t)(src[i] + b); break;
        case R3D_I8: for (int i = 0; i < cols; i++) o[i] = (int16_t)((int8_t)src[i] + b); break;
        case R3D_U16: {
            const uint16_t *q = (const uint16_t *)src;
            for (int i = 0; i < cols; i++)
                o[i] = (int16_t)(q[i] + b);
            break;
        }
        default: {
            const int16_t *q = (const int16_t *)src;
            for (int i = 0; i < cols; i++)
                o[i] = (int16_t)(q[i] + b);
            break;
        }
        }
    }
}

/* The common case - uncompressed 16-bit grey little-endian frames, as
 * nearly every CT arrives - fused into one pass from the file's mapped bytes
 * to the volume: mask or sign-extend from bits_stored, add the intercept,
 * flip rows. Everything else goes through r3d_dcm_decode_frame and
 * put_slice. Returns 0 when the fast path does not apply. */
static int native_put(load_ctx *c, const r3d_dcm_file *d, const r3d_dcm_pixinfo *p, int fno,
                      int64_t slot)
{
    const char *ts = r3d_dcm_transfer_syntax(d);
    if (p->bits_alloc != 16 || p->samples != 1 || p->is_float || p->palette_bits ||
        r3d_dcm_big_endian(d) || c->raw == R3D_DT_NONE ||
        !(strcmp(ts, "1.2.840.10008.1.2") == 0 || strcmp(ts, "1.2.840.10008.1.2.1") == 0 ||
          strcmp(ts, "1.2.840.10008.1.2.1.99") == 0))
        return 0;
    const r3d_dcm_el *e = r3d_dcm_find(r3d_dcm_root(d), R3D_TAG(0x7FE0, 0x0010));
    size_t frame = (size_t)p->rows * (size_t)p->cols * 2;
    if (!e || !e->val || e->len == R3D_DCM_UNDEFINED || e->n_frag ||
        (size_t)e->len < frame * (size_t)(fno + 1))
        return 0; /* short or odd: the general path says what is wrong */
    const uint8_t *src = e->val + frame * (size_t)fno;
    int bs = p->bits_stored > 0 && p->bits_stored < 16 ? p->bits_stored : 16;
    int sh = 16 - bs, add = c->to_int16 ? c->inter16 : 0;
    uint16_t mask = (uint16_t)((1u << bs) - 1);
    int rows = c->rows, cols = c->cols;
    int16_t *dst = (int16_t *)c->v->voxels + (size_t)slot * (size_t)rows * (size_t)cols;
    for (int r = 0; r < rows; r++) {
        const uint16_t *in = (const uint16_t *)(const void *)(src + (size_t)r * (size_t)cols * 2);
        int16_t *o = dst + (size_t)(rows - 1 - r) * (size_t)cols;
        if (p->is_signed)
            for (int i = 0; i < cols; i++)
                o[i] = (int16_t)(((int16_t)(uint16_t)(in[i] << sh) >> sh) + add);
        else
            for (int i = 0; i < cols; i++)
                o[i] = (int16_t)((in[i] & mask) + add);
    }
    return 1;
}

static void load_range(void *arg, int64_t b, int64_t e)
{
    load_ctx *c = arg;
    uint8_t *scratch = NULL;
    size_t scratch_n = 0;
    for (int64_t j = b; j < e && !c->failed; j++) {
        int first = c->job_start[j], last = c->job_start[j + 1];
        const r3d_src *src = &c->s->src[c->jf[first].src];
        r3d_error err = R3D_ERROR_INIT;
        r3d_dcm_file *d = src->mem ? r3d_dcm_parse(src->mem, src->mem_n, 0, src->path, 0, &err)
                                   : r3d_dcm_open(src->path, 0, &err);
        if (!d) {
            set_error(c, &err);
            break;
        }
        r3d_dcm_pixinfo p;
        if (r3d_dcm_pixinfo_get(d, &p, &err) != R3D_OK) {
            set_error(c, &err);
            r3d_dcm_close(d);
            break;
        }
        if (p.rows != c->p0.rows || p.cols != c->p0.cols || p.samples != c->p0.samples ||
            p.bits_alloc != c->p0.bits_alloc || p.is_signed != c->p0.is_signed ||
            p.is_float != c->p0.is_float) {
            r3d_fail(&err, R3D_EDATA,
                     "%s: pixel format (%dx%d, %d-bit %s, %d samples) differs from the rest "
                     "of the series (%dx%d, %d-bit %s, %d samples)",
                     src->path, p.cols, p.rows, p.bits_alloc, p.is_signed ? "signed" : "unsigned",
                     p.samples, c->p0.cols, c->p0.rows, c->p0.bits_alloc,
                     c->p0.is_signed ? "signed" : "unsigned", c->p0.samples);
            set_error(c, &err);
            r3d_dcm_close(d);
            break;
        }
        size_t need = r3d_dcm_frame_bytes(&p);
        if (need > scratch_n) {
            free(scratch);
            scratch = malloc(need);
            scratch_n = scratch ? need : 0;
            if (!scratch) {
                r3d_fail(&err, R3D_ENOMEM, "%s: out of memory for a frame", src->path);
                set_error(c, &err);
                r3d_dcm_close(d);
                break;
            }
        }
        for (int k = first; k < last && !c->failed; k++) {
            const job_frame *jf = &c->jf[k];
            int nframes = jf->n_slices > 1 && !c->g->info.mosaic ? jf->n_slices : 1;
            for (int q = 0; q < nframes; q++) {
                int fno = jf->frame + q;
                if (!c->g->info.mosaic && native_put(c, d, &p, fno, jf->slot + q))
                    continue;
                if (r3d_dcm_decode_frame(d, &p, fno, scratch, need, &err) != R3D_OK) {
                    set_error(c, &err);
                    break;
                }
                if (c->g->info.mosaic) {
                    int tiles = (int)ceil(sqrt((double)jf->n_slices));
                    for (int t = 0; t < jf->n_slices; t++) {
                        /* Descending mosaics are reversed to ascend along n. */
                        int z = c->g->mosaic_descending ? jf->n_slices - 1 - t : t;
                        put_slice(c, scratch, p.cols, t, tiles, jf->slot + z);
                    }
                } else {
                    put_slice(c, scratch, p.cols, 0, 0, jf->slot + q);
                }
            }
        }
        r3d_dcm_close(d);
    }
    free(scratch);
}

static r3d_dtype raw_dtype(const r3d_dcm_pixinfo *p)
{
    if (p->samples == 3)
        return p->bits_alloc == 8 ? R3D_RGB24 : R3D_DT_NONE;
    if (p->samples != 1)
        return R3D_DT_NONE;
    if (p->is_float)
        return p->bits_alloc == 64 ? R3D_F64 : R3D_F32;
    if (p->bits_alloc <= 8)
        return p->is_signed ? R3D_I8 : R3D_U8;
    if (p->bits_alloc <= 16)
        return p->is_signed ? R3D_I16 : R3D_U16;
    if (p->bits_alloc == 32)
        return p->is_signed ? R3D_I32 : R3D_U32;
    return R3D_DT_NONE;
}

/* Apply the rescale: see the header comment for the policy. */
static r3d_status apply_rescale(r3d_volume **pv, const double *slope, const double *inter,
                                int64_t nslices, r3d_error *err)
{
    r3d_volume *v = *pv;
    int uniform = 1;
    for (int64_t z = 1; z < nslices; z++)
        if (slope[z] != slope[0] || inter[z] != inter[0])
            uniform = 0;
    if (v->dtype == R3D_RGB24 || v->dtype == R3D_F32 || v->dtype == R3D_F64) {
        if (uniform) {
            v->scl_slope = slope[0];
            v->scl_inter = inter[0];
        }
        if (uniform || v->dtype == R3D_RGB24)
            return R3D_OK;
    }
    int64_t n = r3d_volume_nvox(v), per = n / nslices;
    if (uniform) {
        if (slope[0] == 1.0 && inter[0] == 0.0)
            return R3D_OK;
        double lo = INFINITY, hi = -INFINITY;
        for (int64_t i = 0; i < n; i++) {
            double x = r3d_volume_get(v, i);
            lo = x < lo ? x : lo;
            hi = x > hi ? x : hi;
        }
        double rlo = lo * slope[0] + inter[0], rhi = hi * slope[0] + inter[0];
        if (slope[0] == 1.0 && inter[0] == floor(inter[0]) && rlo >= -32768 && rhi <= 32767 &&
            v->dtype != R3D_I32 && v->dtype != R3D_U32) {
            int16_t *out = malloc((size_t)n * sizeof *out);
            if (!out)
                return r3d_fail(err, R3D_ENOMEM, "out of memory converting to HU");
            int ic = (int)inter[0];
            for (int64_t i = 0; i < n; i++)
                out[i] = (int16_t)((int)r3d_volume_get(v, i) + ic);
            free(v->voxels);
            v->voxels = out;
            v->dtype = R3D_I16;
            return R3D_OK;
        }
        v->scl_slope = slope[0];
        v->scl_inter = inter[0];
        return R3D_OK;
    }
    float *out = malloc((size_t)n * sizeof *out);
    if (!out)
        return r3d_fail(err, R3D_ENOMEM, "out of memory converting to real values");
    for (int64_t i = 0; i < n; i++) {
        int64_t z = i / per;
        out[i] = (float)(r3d_volume_get(v, i) * slope[z] + inter[z]);
    }
    free(v->voxels);
    v->voxels = out;
    v->dtype = R3D_F32;
    v->scl_slope = 1;
    v->scl_inter = 0;
    return R3D_OK;
}

r3d_volume *r3d_dicom_series_load(const r3d_dicom_scan *s, int idx, const r3d_scan_opts *opts,
                                  r3d_error *err)
{
    if (idx < 0 || idx >= s->n_series)
        return r3d_fail(err, R3D_EARG, "%s: no series number %d", s->path, idx), NULL;
    const r3d_series *g = &s->series[idx];
    if (!g->loadable)
        return r3d_fail(err, R3D_EDATA, "%s: %s", s->path, g->error), NULL;
    const r3d_frame_rec *fr = s->frames + g->first;
    const r3d_src *src0 = &s->src[fr[0].src];
    load_ctx c;
    memset(&c, 0, sizeof c);
    c.s = s;
    c.g = g;

    /* Pixel format from the first file. */
    {
        r3d_dcm_file *d = src0->mem ? r3d_dcm_parse(src0->mem, src0->mem_n, 0, src0->path,
                                                    R3D_DCM_HEADER_ONLY, err)
                                    : r3d_dcm_open(src0->path, R3D_DCM_HEADER_ONLY, err);
        if (!d)
            return NULL;
        r3d_status st = r3d_dcm_pixinfo_get(d, &c.p0, err);
        r3d_dcm_close(d);
        if (st != R3D_OK)
            return NULL;
    }
    r3d_dtype dt = raw_dtype(&c.p0);
    if (dt == R3D_DT_NONE)
        return r3d_fail(err, R3D_EUNSUPPORTED,
                        "%s: %d samples of %d bits per pixel cannot form a volume", src0->path,
                        c.p0.samples, c.p0.bits_alloc),
               NULL;
    c.rows = g->rows;
    c.cols = g->cols;
    c.raw = dt;
    c.vox_bytes = r3d_dtype_size(dt);
    {
        /* CT: every value bits_stored allows, rescaled, fits int16? */
        int uniform = 1;
        for (int i = 1; i < g->n; i++)
            if (fr[i].slope != fr[0].slope || fr[i].inter != fr[0].inter)
                uniform = 0;
        int bs = c.p0.bits_stored > 0 && c.p0.bits_stored <= c.p0.bits_alloc ? c.p0.bits_stored
                                                                            : c.p0.bits_alloc;
        double lo = c.p0.is_signed ? -ldexp(1, bs - 1) : 0;
        double hi = c.p0.is_signed ? ldexp(1, bs - 1) - 1 : ldexp(1, bs) - 1;
        double inter = fr[0].inter;
        if (uniform && fr[0].slope == 1.0 && inter == floor(inter) && inter != 0 &&
            (dt == R3D_U8 || dt == R3D_I8 || dt == R3D_I16 || dt == R3D_U16) &&
            lo + inter >= -32768 && hi + inter <= 32767) {
            c.to_int16 = 1;
            c.inter16 = (int)inter;
        }
    }
    int64_t dim[4] = {c.cols, c.rows, g->nz, g->nt};
    r3d_volume *v = r3d_volume_new(dim, c.to_int16 ? R3D_I16 : dt, err);
    if (!v)
        return NULL;
    c.v = v;
    int64_t nslices = g->nz * g->nt;
    c.slope = malloc((size_t)nslices * sizeof *c.slope);
    c.inter = malloc((size_t)nslices * sizeof *c.inter);
    c.jf = malloc((size_t)g->n * sizeof *c.jf);
    c.job_start = malloc(((size_t)g->n + 1) * sizeof *c.job_start);
    if (!c.slope || !c.inter || !c.jf || !c.job_start) {
        r3d_fail(err, R3D_ENOMEM, "%s: out of memory", s->path);
        goto fail;
    }
    int per_rec = g->info.mosaic ? g->nz : fr[0].classic_frames;
    for (int i = 0; i < g->n; i++) {
        c.jf[i].src = fr[i].src;
        c.jf[i].frame = fr[i].frame;
        c.jf[i].rec = i;
        c.jf[i].n_slices = per_rec;
        c.jf[i].slot = (int64_t)i * per_rec;
        for (int q = 0; q < per_rec; q++) {
            c.slope[(int64_t)i * per_rec + q] = fr[i].slope;
            c.inter[(int64_t)i * per_rec + q] = fr[i].inter;
        }
    }
    c.n_jf = g->n;
    qsort(c.jf, (size_t)c.n_jf, sizeof *c.jf, cmp_jf);
    for (int i = 0; i < c.n_jf; i++)
        if (i == 0 || c.jf[i].src != c.jf[i - 1].src)
            c.job_start[c.n_jobs++] = i;
    c.job_start[c.n_jobs] = c.n_jf;
    pthread_mutex_init(&c.lock, NULL);
    /* Batches between progress reports; parallel within a batch. */
    for (int b = 0; b < c.n_jobs && !c.failed; b += 32) {
        int e = b + 32 < c.n_jobs ? b + 32 : c.n_jobs;
        int *saved = c.job_start;
        c.job_start = saved + b;
        r3d_parallel_for(e - b, load_range, &c);
        c.job_start = saved;
        if (opts && opts->progress)
            opts->progress(opts->progress_ctx, "decoding", e, c.n_jobs);
    }
    pthread_mutex_destroy(&c.lock);
    if (c.failed) {
        if (err)
            *err = c.err;
        goto fail;
    }

    memcpy(v->ijk_to_lps, g->raw_ijk_to_lps, sizeof v->ijk_to_lps);
    r3d_volume_update_spacing(v);
    v->acq = src0->acq;
    v->acq.n_files = g->info.n_files;
    snprintf(v->description, sizeof v->description, "%s", g->info.description);
    if (!c.to_int16 && apply_rescale(&v, c.slope, c.inter, nslices, err) != R3D_OK)
        goto fail;
    if (g->info.gantry_tilt_deg > 0) {
        r3d_volume *t = r3d_tilt_correct(v, s, g, err);
        if (!t)
            goto fail;
        r3d_volume_free(v);
        v = t;
    }
    if (!strcmp(v->acq.mr_acquisition_type, "3D") && v->dim[3] == 1 && v->dim[2] > 1) {
        /* dcm2niix turns 3D acquisitions to the nearest canonical orientation
         * (its nii_setOrtho); matching it keeps our volumes interchangeable. */
        r3d_volume *o = r3d_volume_reorient_ras(v, err);
        if (!o)
            goto fail;
        r3d_volume_free(v);
        v = o;
    }
    free(c.slope);
    free(c.inter);
    free(c.jf);
    free(c.job_start);
    return v;
fail:
    free(c.slope);
    free(c.inter);
    free(c.jf);
    free(c.job_start);
    r3d_volume_free(v);
    return NULL;
}

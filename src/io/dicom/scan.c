/* scan.c - find DICOM images under a path and group them into series.
 *
 * Input is a folder tree, a .zip archive or one file. Every candidate file is
 * parsed header-only (in parallel; a 141-slice CT takes milliseconds) and
 * reduced to one record per image frame: the few attributes that decide
 * grouping, ordering and geometry. Records are grouped by SeriesInstanceUID,
 * then split where a "series" mixes image sizes, orientations or MR echoes,
 * because one volume needs one grid (dcm2niix splits on the same keys).
 * Each group is then ordered and checked by series.c.
 *
 * Files that are not DICOM (README, DICOMDIR, thumbnails) are skipped and
 * counted; DICOM files that cannot be parsed are listed in the warnings by
 * name and reason, never silently dropped.
 */
#include "series.h"
#include "r3d/nifti.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

static void warn_add(r3d_dicom_scan *s, const char *fmt, ...)
{
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    size_t n = s->warnings ? strlen(s->warnings) : 0, m = strlen(line);
    /* Keep the list bounded: a folder of 10 000 broken files needs no 10 000 lines. */
    if (s->n_warnings == 50) {
        line[0] = 0;
        snprintf(line, sizeof line, "(further file warnings omitted)");
        m = strlen(line);
    } else if (s->n_warnings > 50) {
        s->n_warnings++;
        return;
    }
    char *w = realloc(s->warnings, n + m + 2);
    if (!w)
        return;
    memcpy(w + n, line, m);
    w[n + m] = '\n';
    w[n + m + 1] = 0;
    s->warnings = w;
    s->n_warnings++;
}

/* ---- collecting candidate files ---------------------------------------------- */

static int add_source(r3d_dicom_scan *s, const char *path, uint8_t *mem, size_t mem_n)
{
    if (!r3d_grow((void **)&s->src, &s->cap_src, s->n_src + 1, sizeof *s->src))
        return 0;
    r3d_src *f = &s->src[s->n_src];
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    if (!f->path)
        return 0;
    f->mem = mem;
    f->mem_n = mem_n;
    s->n_src++;
    return 1;
}

static int skip_name(const char *name)
{
    /* Hidden files, and files that are never images, whatever they contain. */
    return name[0] == '.' || r3d_has_suffix(name, ".json") || r3d_has_suffix(name, ".txt") ||
           r3d_has_suffix(name, ".nii") || r3d_has_suffix(name, ".nii.gz") ||
           r3d_has_suffix(name, ".md") || r3d_has_suffix(name, ".zip") ||
           r3d_has_suffix(name, ".py") || r3d_has_suffix(name, ".sh") ||
           r3d_has_suffix(name, ".xml") || r3d_has_suffix(name, ".html");
}

static r3d_status walk(r3d_dicom_scan *s, const char *dir, int depth, int recursive,
                       r3d_error *err)
{
    if (depth > 32)
        return R3D_OK; /* symlink loops or absurd trees: stop descending */
    DIR *d = opendir(dir);
    if (!d)
        return r3d_fail(err, R3D_EIO, "%s: cannot open folder: %s", dir, strerror(errno));
    struct dirent *e;
    char **names = NULL;
    int n = 0;
    int64_t cap = 0;
    while ((e = readdir(d))) {
        if (skip_name(e->d_name))
            continue;
        if (!r3d_grow((void **)&names, &cap, n + 1, sizeof *names)) {
            closedir(d);
            return r3d_fail(err, R3D_ENOMEM, "%s: out of memory listing folder", dir);
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    /* Sorted names: the same folder always gives the same warnings order. */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && names[j] && names[j - 1] && strcmp(names[j - 1], names[j]) > 0;
             j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    r3d_status st = R3D_OK;
    for (int i = 0; i < n && st == R3D_OK; i++) {
        char path[4096];
        struct stat sb;
        if (!names[i])
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            if (recursive)
                st = walk(s, path, depth + 1, recursive, err);
        } else if (S_ISREG(sb.st_mode) && sb.st_size >= 132) {
            if (!add_source(s, path, NULL, 0))
                st = r3d_fail(err, R3D_ENOMEM, "%s: out of memory", path);
        }
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return st;
}

static r3d_status read_zip(r3d_dicom_scan *s, const char *path, r3d_error *err)
{
    int zerr = 0;
    zip_t *z = zip_open(path, ZIP_RDONLY, &zerr);
    if (!z) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, zerr);
        r3d_status st = r3d_fail(err, R3D_EFORMAT, "%s: not a readable zip archive: %s", path,
                                 zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return st;
    }
    zip_int64_t n = zip_get_num_entries(z, 0);
    uint64_t total = 0;
    for (zip_int64_t i = 0; i < n; i++) {
        zip_stat_t zs;
        if (zip_stat_index(z, (zip_uint64_t)i, 0, &zs) != 0 || !(zs.valid & ZIP_STAT_SIZE))
            continue;
        const char *name = zs.name, *base = strrchr(name, '/');
        base = base ? base + 1 : name;
        if (!*base || skip_name(base) || zs.size < 132)
            continue;
        /* A zip bomb must not exhaust memory: 64 GiB of images is beyond any study. */
        total += zs.size;
        if (zs.size > ((uint64_t)1 << 32) || total > ((uint64_t)64 << 30)) {
            zip_close(z);
            return r3d_fail(err, R3D_EDATA, "%s: entry %s is implausibly large (%llu bytes)",
                            path, name, (unsigned long long)zs.size);
        }
        uint8_t *buf = malloc(zs.size + 1);
        zip_file_t *zf = buf ? zip_fopen_index(z, (zip_uint64_t)i, 0) : NULL;
        if (!zf) {
            free(buf);
            warn_add(s, "%s: entry %s cannot be read: %s", path, name, zip_strerror(z));
            continue;
        }
        zip_int64_t got = zip_fread(zf, buf, zs.size);
        zip_fclose(zf);
        if (got < 0 || (zip_uint64_t)got != zs.size) {
            free(buf);
            warn_add(s, "%s: entry %s is damaged (read %lld of %llu bytes)", path, name,
                     (long long)got, (unsigned long long)zs.size);
            continue;
        }
        char label[4096];
        snprintf(label, sizeof label, "%s:%s", path, name);
        if (!add_source(s, label, buf, zs.size)) {
            free(buf);
            zip_close(z);
            return r3d_fail(err, R3D_ENOMEM, "%s: out of memory", path);
        }
    }
    zip_close(z);
    return R3D_OK;
}

/* ---- header pass: one record per frame ------------------------------------------ */

typedef struct parse_ctx {
    r3d_dicom_scan *s;
    const r3d_scan_opts *opts;
    int64_t offset; /* first source of this batch */
} parse_ctx;

static void parse_range(void *arg, int64_t b, int64_t e)
{
    parse_ctx *c = arg;
    for (int64_t i = b + c->offset; i < e + c->offset; i++) {
        r3d_src *f = &c->s->src[i];
        r3d_error err = R3D_ERROR_INIT;
        r3d_dcm_file *d;
        if (!f->mem && r3d_has_suffix(f->path, ".gz")) {
            /* Gzip'ed DICOM (nibabel and pydicom ship some): inflate once
             * and keep the bytes, the loader reads them again. */
            uint8_t *z = NULL, *raw = NULL;
            size_t zn = 0, rn = 0;
            if (r3d_file_read_all(f->path, &z, &zn, &err) == R3D_OK && r3d_is_gzip(z, zn) &&
                r3d_gzip_decompress(z, zn, f->path, &raw, &rn, &err) == R3D_OK) {
                f->mem = raw;
                f->mem_n = rn;
            }
            free(z);
            if (!f->mem) {
                f->not_dicom = 1;
                continue;
            }
        }
        if (f->mem) {
            d = r3d_dcm_parse(f->mem, f->mem_n, 0, f->path, R3D_DCM_HEADER_ONLY, &err);
        } else {
            d = r3d_dcm_open(f->path, R3D_DCM_HEADER_ONLY, &err);
        }
        if (!d) {
            f->not_dicom = r3d_dcm_error_is_not_dicom(&err);
            if (!f->not_dicom)
                snprintf(f->error, sizeof f->error, "%s", err.msg);
            continue;
        }
        r3d_series_extract(d, f, c->opts);
        r3d_dcm_close(d);
    }
}

static int cmp_str(const char *a, const char *b)
{
    return strcmp(a, b);
}

/* Orientation equal within 1e-4 (text rounding differs between slices). */
static int same_orient(const double a[6], const double b[6])
{
    for (int i = 0; i < 6; i++)
        if (fabs(a[i] - b[i]) > 1e-4)
            return 0;
    return 1;
}

static int same_group(const r3d_frame_rec *a, const r3d_frame_rec *b)
{
    return cmp_str(a->series_uid, b->series_uid) == 0 && a->rows == b->rows &&
           a->cols == b->cols && a->samples == b->samples && a->echo == b->echo &&
           a->complex == b->complex && a->is_signed == b->is_signed &&
           a->is_float == b->is_float &&
           a->has_orient == b->has_orient && (!a->has_orient || same_orient(a->iop, b->iop)) &&
           a->mosaic == b->mosaic && a->bits_alloc == b->bits_alloc;
}

static int cmp_frame_key(const void *pa, const void *pb)
{
    const r3d_frame_rec *a = pa, *b = pb;
    int c = strcmp(a->series_uid, b->series_uid);
    if (c)
        return c;
    if (a->series_number != b->series_number)
        return a->series_number < b->series_number ? -1 : 1;
    if (a->rows != b->rows)
        return a->rows < b->rows ? -1 : 1;
    if (a->cols != b->cols)
        return a->cols < b->cols ? -1 : 1;
    if (a->echo != b->echo)
        return a->echo < b->echo ? -1 : 1;
    if (a->complex != b->complex)
        return a->complex < b->complex ? -1 : 1;
    if (a->is_signed != b->is_signed)
        return a->is_signed < b->is_signed ? -1 : 1;
    if (a->bits_alloc != b->bits_alloc)
        return a->bits_alloc < b->bits_alloc ? -1 : 1;
    if (a->samples != b->samples)
        return a->samples < b->samples ? -1 : 1;
    if (a->is_float != b->is_float)
        return a->is_float < b->is_float ? -1 : 1;
    if (a->mosaic != b->mosaic)
        return a->mosaic < b->mosaic ? -1 : 1;
    if (a->has_orient != b->has_orient)
        return a->has_orient < b->has_orient ? -1 : 1;
    for (int i = 0; i < 6; i++)
        if (fabs(a->iop[i] - b->iop[i]) > 1e-4)
            return a->iop[i] < b->iop[i] ? -1 : 1;
    if (a->src != b->src)
        return a->src < b->src ? -1 : 1;
    return a->frame < b->frame ? -1 : (a->frame > b->frame);
}

r3d_dicom_scan *r3d_dicom_scan_path(const char *path, const r3d_scan_opts *opts_in,
                                    r3d_error *err)
{
    r3d_scan_opts defaults = R3D_SCAN_OPTS_INIT;
    const r3d_scan_opts *opts = opts_in ? opts_in : &defaults;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return r3d_fail(err, R3D_EIO, "%s: %s", path, strerror(errno)), NULL;
    r3d_dicom_scan *s = calloc(1, sizeof *s);
    if (!s)
        return r3d_fail(err, R3D_ENOMEM, "%s: out of memory", path), NULL;
    s->path = strdup(path);
    r3d_status st;
    if (S_ISDIR(sb.st_mode))
        st = walk(s, path, 0, opts->recursive, err);
    else if (r3d_has_suffix(path, ".zip"))
        st = read_zip(s, path, err);
    else
        st = add_source(s, path, NULL, 0) ? R3D_OK
                                          : r3d_fail(err, R3D_ENOMEM, "%s: out of memory", path);
    if (st != R3D_OK) {
        r3d_dicom_scan_free(s);
        return NULL;
    }
    if (s->n_src == 0) {
        r3d_fail(err, R3D_ENOTFOUND, "%s: no files to read", path);
        r3d_dicom_scan_free(s);
        return NULL;
    }

    /* Batches of 64 files between progress reports; within a batch the
     * files are parsed in parallel. */
    for (int b = 0; b < s->n_src; b += 64) {
        int e = b + 64 < s->n_src ? b + 64 : s->n_src;
        parse_ctx pc = {s, opts, b};
        r3d_parallel_for(e - b, parse_range, &pc);
        if (opts->progress)
            opts->progress(opts->progress_ctx, "scanning", e, s->n_src);
    }

    /* Gather frame records from all sources, report the unreadable. */
    int n_dicom = 0;
    for (int i = 0; i < s->n_src; i++) {
        r3d_src *f = &s->src[i];
        if (f->not_dicom) {
            s->n_not_dicom++;
            continue;
        }
        if (f->error[0]) {
            warn_add(s, "%s", f->error);
            s->n_bad++;
            continue;
        }
        if (f->is_seg) {
            s->n_seg++;
            continue;
        }
        if (f->n_frames == 0) {
            /* DICOM without pixels: RT structures, SR, presentation states. */
            s->n_no_image++;
            continue;
        }
        n_dicom++;
        if (!r3d_grow((void **)&s->frames, &s->cap_frames, s->n_frames + f->n_frames,
                  sizeof *s->frames)) {
            r3d_fail(err, R3D_ENOMEM, "%s: out of memory", path);
            r3d_dicom_scan_free(s);
            return NULL;
        }
        for (int k = 0; k < f->n_frames; k++) {
            s->frames[s->n_frames] = f->frames[k];
            s->frames[s->n_frames].src = i;
            s->n_frames++;
        }
    }
    if (s->n_frames == 0 && s->n_src == 1 && s->src[0].error[0]) {
        /* One file given and it is broken: its own message says it all. */
        r3d_fail(err, R3D_EFORMAT, "%s", s->src[0].error);
        r3d_dicom_scan_free(s);
        return NULL;
    }
    if (s->n_frames == 0) {
        /* Unreadable files are bad input; a folder of other things is
         * simply not a study. */
        r3d_fail(err, s->n_bad ? R3D_EFORMAT : R3D_ENOTFOUND,
                 "%s: no DICOM images found (%d files: %d not DICOM, %d unreadable, %d without "
                 "pixel data)%s%s",
                 path, s->n_src, s->n_not_dicom, s->n_bad, s->n_no_image,
                 s->warnings ? "; first problem: " : "",
                 s->warnings ? s->warnings : "");
        /* drop a trailing newline from the quoted warning */
        size_t n = err ? strlen(err->msg) : 0;
        if (n && err->msg[n - 1] == '\n')
            err->msg[n - 1] = 0;
        r3d_dicom_scan_free(s);
        return NULL;
    }

    qsort(s->frames, (size_t)s->n_frames, sizeof *s->frames, cmp_frame_key);
    for (int i = 0; i < s->n_frames;) {
        int j = i + 1;
        while (j < s->n_frames && same_group(&s->frames[i], &s->frames[j]))
            j++;
        if (!r3d_grow((void **)&s->series, &s->cap_series, s->n_series + 1, sizeof *s->series)) {
            r3d_fail(err, R3D_ENOMEM, "%s: out of memory", path);
            r3d_dicom_scan_free(s);
            return NULL;
        }
        r3d_series *g = &s->series[s->n_series++];
        memset(g, 0, sizeof *g);
        g->first = i;
        g->n = j - i;
        i = j;
    }
    for (int k = 0; k < s->n_series; k++)
        r3d_series_analyse(s, &s->series[k]);
    /* Where one SeriesInstanceUID was split, say so on each part. */
    for (int k = 0; k < s->n_series; k++) {
        int parts = 0;
        for (int m = 0; m < s->n_series; m++)
            parts += strcmp(s->series[m].info.uid, s->series[k].info.uid) == 0;
        if (parts > 1)
            r3d_series_warn(&s->series[k],
                            "one SeriesInstanceUID holds %d image stacks of different size, "
                            "orientation, echo or complex part; each is a series here",
                            parts);
    }
    return s;
}

void r3d_dicom_scan_free(r3d_dicom_scan *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_src; i++) {
        free(s->src[i].path);
        free(s->src[i].mem);
        free(s->src[i].frames);
    }
    free(s->src);
    free(s->frames);
    free(s->series);
    free(s->warnings);
    free(s->path);
    free(s);
}

int r3d_dicom_scan_count(const r3d_dicom_scan *s)
{
    return s->n_series;
}

const r3d_series_info *r3d_dicom_scan_info(const r3d_dicom_scan *s, int i)
{
    return i >= 0 && i < s->n_series ? &s->series[i].info : NULL;
}

int r3d_dicom_scan_segmentations(const r3d_dicom_scan *s)
{
    return s->n_seg;
}

const char *r3d_dicom_scan_warnings(const r3d_dicom_scan *s)
{
    return s->warnings ? s->warnings : "";
}

int r3d_dicom_scan_find(const r3d_dicom_scan *s, const char *uid)
{
    for (int i = 0; i < s->n_series; i++)
        if (strcmp(s->series[i].info.uid, uid) == 0)
            return i;
    return -1;
}

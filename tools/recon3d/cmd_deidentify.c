/* cmd_deidentify.c - recon3d deidentify INPUT -o OUTDIR: every DICOM file
 * of a file, folder tree or zip archive (zips inside the tree too)
 * de-identified by the PS3.15 Annex E basic profile (clause 4.8.1).
 *
 * Output names come only from the new UIDs:
 *     OUTDIR/<StudyUID>/<SeriesUID>/<SOPInstanceUID>.dcm
 * never from input names, which are often patient names or IDs (folders
 * named after the patient, files named after the accession number). For
 * the same reason OUTDIR/deidentification.json names files by their output
 * name, and inputs that failed or were skipped by their position ("input
 * 17"); messages naming the input path go to the terminal only, and --map
 * FILE (which must lie outside OUTDIR) keeps the input -> output list for
 * whoever holds the originals anyway.
 *
 * One run shares one UID key, so everything de-identified together keeps
 * its references (series, study, frame of reference, referenced images).
 * Files that are not DICOM are skipped; files that fail are reported and
 * the others still go through (exit 2 when any failed). */
#include "cli.h"

#include "r3d/dicom_write.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: recon3d deidentify INPUT -o OUTDIR [--profile basic] [--retain-dates]\n"
            "                          [--clean-descriptors] [--retain-safe-private]\n"
            "                          [--allow-burned-in] [--map FILE] [--quiet]\n"
            "  INPUT              a DICOM file, a folder (searched recursively) or a .zip\n"
            "  -o OUTDIR          OUTDIR/<StudyUID>/<SeriesUID>/<SOPInstanceUID>.dcm from the\n"
            "                     new UIDs (never input names), plus\n"
            "                     OUTDIR/deidentification.json (what was removed/replaced)\n"
            "  --profile basic    PS3.15 Annex E Basic Application Level Confidentiality\n"
            "                     Profile (the default and the only base profile)\n"
            "  --retain-safe-private  keep the private attributes known to be safe and\n"
            "                     needed for conversion (Siemens CSA image header and\n"
            "                     mosaic fields, Philips scale slope): Retain Safe Private\n"
            "  --map FILE         write status, input and output names (tab-separated) to\n"
            "                     FILE, which must be outside OUTDIR: it links the outputs\n"
            "                     to the originals\n"
            "  --retain-dates     Retain Longitudinal Temporal Information (full dates)\n"
            "  --clean-descriptors  remove descriptions and labels outright (we remove\n"
            "                     rather than clean free text)\n"
            "  --allow-burned-in  de-identify files flagged BurnedInAnnotation=YES with a\n"
            "                     warning instead of refusing them\n");
}

typedef struct flist {
    char **rel;
    size_t n, cap;
} flist;

static int flist_add(flist *l, const char *rel)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        char **nr = realloc(l->rel, cap * sizeof *nr);
        if (!nr)
            return 0;
        l->rel = nr;
        l->cap = cap;
    }
    if (!(l->rel[l->n] = strdup(rel)))
        return 0;
    l->n++;
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Files under root/rel, sorted, skipping the output folder (skip_real). */
static int walk(const char *root, const char *rel, const char *skip_real, flist *l, int depth)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s%s%s", root, rel[0] ? "/" : "", rel);
    if (skip_real) {
        char real[PATH_MAX];
        if (realpath(dir, real) && !strcmp(real, skip_real))
            return 1;
    }
    if (depth > 64)
        return 1;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *de;
    int ok = 1;
    while (ok && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char sub[PATH_MAX], full[PATH_MAX];
        if (snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) >=
                (int)sizeof sub ||
            snprintf(full, sizeof full, "%s/%s", root, sub) >= (int)sizeof full)
            continue; /* a path longer than PATH_MAX cannot be opened anyway */
        struct stat st;
        if (stat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            ok = walk(root, sub, skip_real, l, depth + 1);
        else if (S_ISREG(st.st_mode))
            ok = flist_add(l, sub);
    }
    closedir(d);
    return ok;
}

/* A DICOM file, or a gzip'ed one (*.gz, as the scanner reads them), whose
 * de-identified copy is written uncompressed without the ".gz". */
static r3d_dcm_file *open_input(const char *path, int *gz, r3d_error *e)
{
    *gz = 0;
    if (!r3d_has_suffix(path, ".gz"))
        return r3d_dcm_open(path, 0, e);
    uint8_t *buf, *raw;
    size_t n, rn;
    if (r3d_file_read_all(path, &buf, &n, e) != R3D_OK)
        return NULL;
    if (!r3d_is_gzip(buf, n)) {
        free(buf);
        return r3d_dcm_open(path, 0, e);
    }
    r3d_status st = r3d_gzip_decompress(buf, n, path, &raw, &rn, e);
    free(buf);
    if (st != R3D_OK)
        return NULL;
    *gz = 1;
    return r3d_dcm_parse(raw, rn, 1, path, 0, e);
}

/* ---- one input --------------------------------------------------------------------- */

typedef struct run {
    r3d_deid *d;
    const char *outdir;
    FILE *map;
    int quiet;
    int n_input;      /* inputs seen, for "input <n>" labels */
    int write_failed;
} run;

static void ds_uid(const r3d_dcm_ds *ds, uint32_t tag, char *out, size_t cap)
{
    uint32_t n = 0;
    const uint8_t *v = r3d_dcm_ds_value(ds, tag, &n, NULL);
    size_t m = v ? (n < cap - 1 ? n : cap - 1) : 0;
    memcpy(out, v ? (const char *)v : "", m);
    while (m && (out[m - 1] == 0 || out[m - 1] == ' '))
        m--;
    out[m] = 0;
    /* a UID is digits and dots; anything else (a broken file) is not a name */
    for (size_t i = 0; i < m; i++)
        if (!((out[i] >= '0' && out[i] <= '9') || out[i] == '.')) {
            out[0] = 0;
            return;
        }
}

static int mkdirs(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
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

/* The message without the input's name (it may be the patient's): every
 * occurrence of name is replaced by label. */
static void scrub(r3d_error *e, const char *name, const char *label)
{
    if (!name || !*name)
        return;
    char out[sizeof e->msg];
    size_t o = 0, n = strlen(name), L = strlen(label);
    for (const char *p = e->msg; *p && o + 1 < sizeof out;) {
        if (!strncmp(p, name, n)) {
            size_t k = L < sizeof out - 1 - o ? L : sizeof out - 1 - o;
            memcpy(out + o, label, k);
            o += k;
            p += n;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = 0;
    memcpy(e->msg, out, o + 1);
}

static void map_line(run *r, const char *status, const char *in, const char *out)
{
    if (r->map)
        fprintf(r->map, "%s\t%s\t%s\n", status, in, out ? out : "");
}

static void skipped(run *r, const char *name, const char *why)
{
    char label[32];
    snprintf(label, sizeof label, "input %d", r->n_input);
    r3d_deid_note_skipped(r->d, label, why);
    map_line(r, "skipped", name, NULL);
    if (!r->quiet)
        fprintf(stderr, "skip: %s (%s)\n", name, why);
}

static void failed(run *r, const char *name, const char *rel, r3d_error *e)
{
    char label[32];
    snprintf(label, sizeof label, "input %d", r->n_input);
    fprintf(stderr, "recon3d: error: %s\n", e->msg); /* the operator sees the path */
    scrub(e, name, label);
    if (rel)
        scrub(e, rel, label);
    r3d_deid_note_failure(r->d, label, e);
    map_line(r, "failed", name, NULL);
}

/* De-identify one parsed input (name: its path, or "archive.zip:entry"). */
static void one(run *r, r3d_dcm_file *f, const char *name, const char *rel, const char *in_path)
{
    char cls[65];
    if (r3d_dcm_str(f, r3d_dcm_meta(f), R3D_TAG(0x0002, 0x0002), -1, cls, sizeof cls) &&
        !strcmp(cls, "1.2.840.10008.1.3.10")) {
        /* A DICOMDIR indexes the original files by name and patient; it is
         * not carried over (rebuild one from the outputs). */
        skipped(r, name, "DICOMDIR (media directory) not carried over");
        return;
    }
    r3d_error e = R3D_ERROR_INIT;
    r3d_dcm_ds *ds = NULL;
    char ts[65];
    if (r3d_deid_dataset(r->d, f, "", &ds, ts, &e) != R3D_OK) {
        failed(r, name, rel, &e);
        return;
    }
    char study[65], series[65], sop[65], dir[PATH_MAX], path[PATH_MAX], relout[256];
    ds_uid(ds, R3D_TAG(0x0020, 0x000D), study, sizeof study);
    ds_uid(ds, R3D_TAG(0x0020, 0x000E), series, sizeof series);
    ds_uid(ds, R3D_TAG(0x0008, 0x0018), sop, sizeof sop);
    snprintf(dir, sizeof dir, "%s/%s/%s", r->outdir, study[0] ? study : "no_study",
             series[0] ? series : "no_series");
    /* the same instance twice in the input (copies): keep both, numbered */
    for (int k = 1;; k++) {
        char suffix[16] = "";
        if (k > 1)
            snprintf(suffix, sizeof suffix, "_%d", k);
        snprintf(relout, sizeof relout, "%s/%s/%s%s.dcm", study[0] ? study : "no_study",
                 series[0] ? series : "no_series", sop[0] ? sop : "no_instance", suffix);
        if (snprintf(path, sizeof path, "%s/%s", r->outdir, relout) >= (int)sizeof path) {
            r3d_fail(&e, R3D_EARG, "%s: output path too long", r->outdir);
            r3d_dcm_ds_free(ds);
            failed(r, name, rel, &e);
            return;
        }
        struct stat so;
        if (stat(path, &so) != 0)
            break;
        if (in_path) {
            struct stat si;
            if (stat(in_path, &si) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino) {
                /* -o pointing at the input's own folder: never replace an original. */
                r3d_fail(&e, R3D_EARG, "%s: the output would replace this input file", name);
                r3d_dcm_ds_free(ds);
                failed(r, name, rel, &e);
                return;
            }
        }
    }
    r3d_status st;
    if (!mkdirs(dir)) {
        st = r3d_fail(&e, R3D_EIO, "%s: cannot create: %s", dir, strerror(errno));
    } else {
        r3d_dcm_write_opts wo = R3D_DCM_WRITE_OPTS_INIT;
        wo.transfer_syntax = ts;
        st = r3d_dcm_write_file(ds, path, &wo, &e);
    }
    r3d_dcm_ds_free(ds);
    if (st != R3D_OK) {
        if (st == R3D_EIO)
            r->write_failed = 1;
        failed(r, name, rel, &e);
        return;
    }
    r3d_deid_note_written(r->d, relout, ts);
    map_line(r, "written", name, relout);
    if (!r->quiet)
        fprintf(stderr, "ok: %s -> %s\n", name, relout);
}

/* Every entry of a zip archive, from memory (limits as the scanner's). */
static void one_zip(run *r, const char *path, const char *rel)
{
    int zerr = 0;
    zip_t *z = zip_open(path, ZIP_RDONLY, &zerr);
    r3d_error e = R3D_ERROR_INIT;
    r->n_input++;
    if (!z) {
        r3d_fail(&e, R3D_EFORMAT, "%s: not a readable zip archive", path);
        failed(r, path, rel, &e);
        return;
    }
    zip_int64_t n = zip_get_num_entries(z, 0);
    uint64_t total = 0;
    for (zip_int64_t i = 0; i < n; i++) {
        zip_stat_t zs;
        if (zip_stat_index(z, (zip_uint64_t)i, 0, &zs) != 0 || !(zs.valid & ZIP_STAT_SIZE) ||
            !(zs.valid & ZIP_STAT_NAME))
            continue;
        size_t nl = strlen(zs.name);
        if (nl == 0 || zs.name[nl - 1] == '/')
            continue; /* a folder */
        char name[PATH_MAX];
        if (snprintf(name, sizeof name, "%s:%s", path, zs.name) >= (int)sizeof name)
            continue;
        r->n_input++;
        total += zs.size;
        /* A zip bomb must not exhaust memory: 64 GiB of images is beyond any study. */
        if (zs.size > ((uint64_t)1 << 32) || total > ((uint64_t)64 << 30)) {
            r3d_fail(&e, R3D_EDATA, "%s: implausibly large (%llu bytes)", name,
                     (unsigned long long)zs.size);
            failed(r, name, rel, &e);
            break;
        }
        uint8_t *buf = malloc(zs.size ? zs.size : 1);
        zip_file_t *zf = buf ? zip_fopen_index(z, (zip_uint64_t)i, 0) : NULL;
        zip_int64_t got = zf ? zip_fread(zf, buf, zs.size) : -1;
        if (zf)
            zip_fclose(zf);
        if (got < 0 || (zip_uint64_t)got != zs.size) {
            free(buf);
            r3d_fail(&e, R3D_EFORMAT, "%s: damaged entry", name);
            failed(r, name, rel, &e);
            continue;
        }
        uint8_t *raw = buf;
        size_t rn = zs.size;
        if (r3d_is_gzip(buf, rn)) {
            if (r3d_gzip_decompress(buf, zs.size, name, &raw, &rn, &e) != R3D_OK) {
                free(buf);
                failed(r, name, rel, &e);
                continue;
            }
            free(buf);
        }
        r3d_dcm_file *f = r3d_dcm_parse(raw, rn, 1, name, 0, &e);
        if (!f) {
            if (r3d_dcm_error_is_not_dicom(&e))
                skipped(r, name, "not DICOM");
            else
                failed(r, name, rel, &e);
            continue;
        }
        one(r, f, name, rel, NULL);
        r3d_dcm_close(f);
    }
    zip_close(z);
}

R3D_COMMAND(60, deidentify, "DICOM files without patient identity (PS3.15 Annex E basic profile)")

int cmd_deidentify(int argc, char **argv)
{
    const char *input = NULL, *outdir = NULL, *map_path = NULL;
    r3d_deid_opts o = R3D_DEID_OPTS_INIT;
    int quiet = 0;
    int rc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && i + 1 < argc)
            outdir = argv[++i];
        else if (!strcmp(a, "--profile") && i + 1 < argc) {
            if (strcmp(argv[++i], "basic") != 0)
                return usage(stderr),
                       cli_usage("deidentify: unknown profile \"%s\" (\"basic\"; options add "
                                 "to it)", argv[i]);
        } else if (!strcmp(a, "--retain-dates"))
            o.retain_dates = 1;
        else if (!strcmp(a, "--clean-descriptors"))
            o.clean_descriptors = 1;
        else if (!strcmp(a, "--retain-safe-private"))
            o.retain_safe_private = 1;
        else if (!strcmp(a, "--allow-burned-in"))
            o.allow_burned_in = 1;
        else if (!strcmp(a, "--map") && i + 1 < argc)
            map_path = argv[++i];
        else if (!strcmp(a, "--quiet") || !strcmp(a, "-q"))
            quiet = 1;
        else if ((rc = cli_other_arg("deidentify", usage, a, &input, NULL)) != CLI_ARG_TAKEN)
            return rc;
    }
    if ((rc = cli_need_input_out("deidentify", usage, input, outdir, "OUTDIR")))
        return rc;

    struct stat st;
    if (stat(input, &st) != 0) {
        fprintf(stderr, "recon3d: error: %s: cannot open: %s\n", input, strerror(errno));
        return EXIT_INPUT;
    }
    if (mkdir(outdir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "recon3d: error: %s: cannot create: %s\n", outdir, strerror(errno));
        return EXIT_OUTPUT;
    }
    char out_real[PATH_MAX];
    if (!realpath(outdir, out_real)) {
        fprintf(stderr, "recon3d: error: %s: %s\n", outdir, strerror(errno));
        return EXIT_OUTPUT;
    }
    FILE *map = NULL;
    if (map_path) {
        /* The map links outputs to originals: it must not travel with them. */
        char mdir[PATH_MAX], mreal[PATH_MAX];
        snprintf(mdir, sizeof mdir, "%s", map_path);
        char *sl = strrchr(mdir, '/');
        if (sl)
            *sl = 0;
        else
            snprintf(mdir, sizeof mdir, ".");
        size_t ol = strlen(out_real);
        if (!realpath(mdir, mreal) ||
            (!strncmp(mreal, out_real, ol) && (mreal[ol] == 0 || mreal[ol] == '/'))) {
            fprintf(stderr, "recon3d: error: --map %s: must be an existing folder outside %s\n",
                    map_path, outdir);
            return EXIT_USAGE;
        }
        if (!(map = fopen(map_path, "w"))) {
            fprintf(stderr, "recon3d: error: %s: cannot create: %s\n", map_path, strerror(errno));
            return EXIT_OUTPUT;
        }
        fprintf(map, "status\tinput\toutput\n");
    }

    flist files = {0};
    char root[PATH_MAX];
    int ok;
    if (S_ISDIR(st.st_mode)) {
        snprintf(root, sizeof root, "%s", input);
        ok = walk(root, "", out_real, &files, 0);
        qsort(files.rel, files.n, sizeof *files.rel, cmp_str);
    } else {
        snprintf(root, sizeof root, "%s", input);
        char *slash = strrchr(root, '/');
        const char *name = slash ? slash + 1 : input;
        ok = flist_add(&files, name);
        if (slash)
            *slash = 0;
        else
            snprintf(root, sizeof root, ".");
    }
    if (!ok) {
        fprintf(stderr, "recon3d: error: %s: cannot list the files\n", input);
        for (size_t i = 0; i < files.n; i++)
            free(files.rel[i]);
        free(files.rel);
        if (map)
            fclose(map);
        return EXIT_INPUT;
    }

    r3d_error err = R3D_ERROR_INIT;
    r3d_deid *d = r3d_deid_new(&o, &err);
    if (!d) {
        for (size_t i = 0; i < files.n; i++)
            free(files.rel[i]);
        free(files.rel);
        if (map)
            fclose(map);
        return cli_fail(&err);
    }
    run r = {d, outdir, map, quiet, 0, 0};
    for (size_t i = 0; i < files.n; i++) {
        const char *rel = files.rel[i];
        char in_path[PATH_MAX];
        r3d_error e = R3D_ERROR_INIT;
        if (snprintf(in_path, sizeof in_path, "%s/%s", root, rel) >= (int)sizeof in_path) {
            r.n_input++;
            r3d_fail(&e, R3D_EARG, "%s: path too long", rel);
            failed(&r, rel, rel, &e);
            continue;
        }
        if (r3d_has_suffix(rel, ".zip")) {
            one_zip(&r, in_path, rel);
            continue;
        }
        r.n_input++;
        int gz;
        r3d_dcm_file *f = open_input(in_path, &gz, &e);
        if (!f) {
            if (r3d_dcm_error_is_not_dicom(&e))
                skipped(&r, in_path, "not DICOM");
            else
                failed(&r, in_path, rel, &e);
            continue;
        }
        one(&r, f, in_path, rel, in_path);
        r3d_dcm_close(f);
    }

    int written, nfailed, nskipped;
    r3d_deid_counts(d, &written, &nfailed, &nskipped);
    char *json = r3d_deid_report_json(d);
    char rep[PATH_MAX];
    snprintf(rep, sizeof rep, "%s/deidentification.json", outdir);
    rc = EXIT_OK;
    if (!json) {
        fprintf(stderr, "recon3d: error: out of memory for the report\n");
        rc = EXIT_NOMEM;
    } else if (r3d_file_write_atomic(rep, json, strlen(json), &err) != R3D_OK) {
        cli_fail(&err);
        rc = EXIT_OUTPUT;
    }
    free(json);
    r3d_deid_free(d);
    for (size_t i = 0; i < files.n; i++)
        free(files.rel[i]);
    free(files.rel);
    if (map && fclose(map) != 0 && rc == EXIT_OK) {
        fprintf(stderr, "recon3d: error: %s: cannot write\n", map_path);
        rc = EXIT_OUTPUT;
    }
    fprintf(stderr, "deidentify: %d written, %d failed, %d skipped -> %s\n", written, nfailed,
            nskipped, outdir);
    if (rc != EXIT_OK)
        return rc;
    if (r.write_failed)
        return EXIT_OUTPUT;
    if (nfailed)
        return EXIT_INPUT;
    if (!written)
        return EXIT_NOTFOUND;
    return EXIT_OK;
}

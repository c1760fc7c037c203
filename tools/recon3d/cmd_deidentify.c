/* cmd_deidentify.c - recon3d deidentify INPUT -o OUTDIR: every DICOM file
 * of a file or folder tree de-identified by the PS3.15 Annex E basic profile
 * (clause 4.8.1), written under OUTDIR at the same relative path, with a
 * report OUTDIR/deidentification.json of what was removed or replaced.
 *
 * One run shares one UID key, so everything de-identified together keeps
 * its references (series, study, frame of reference, referenced images).
 * Files that are not DICOM are skipped; files that fail are named with the
 * reason and the others still go through (exit 2 when any failed). */
#include "cli.h"

#include "r3d/dicom_write.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: recon3d deidentify INPUT -o OUTDIR [--profile basic] [--retain-dates]\n"
            "                          [--clean-descriptors] [--allow-burned-in] [--quiet]\n"
            "  INPUT              a DICOM file or a folder (searched recursively)\n"
            "  -o OUTDIR          outputs at the inputs' relative paths, plus\n"
            "                     OUTDIR/deidentification.json (what was removed/replaced)\n"
            "  --profile basic    PS3.15 Annex E Basic Application Level Confidentiality\n"
            "                     Profile (the only one so far)\n"
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

/* mkdir -p for the folders of path. */
static int make_parents(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
            return 0;
        *p = '/';
    }
    return 1;
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

R3D_COMMAND(60, deidentify, "DICOM files without patient identity (PS3.15 Annex E basic profile)")

int cmd_deidentify(int argc, char **argv)
{
    const char *input = NULL, *outdir = NULL;
    r3d_deid_opts o = R3D_DEID_OPTS_INIT;
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && i + 1 < argc)
            outdir = argv[++i];
        else if (!strcmp(a, "--profile") && i + 1 < argc) {
            if (strcmp(argv[++i], "basic") != 0)
                return usage(stderr),
                       cli_usage("deidentify: unknown profile \"%s\" (only \"basic\")", argv[i]);
        } else if (!strcmp(a, "--retain-dates"))
            o.retain_dates = 1;
        else if (!strcmp(a, "--clean-descriptors"))
            o.clean_descriptors = 1;
        else if (!strcmp(a, "--allow-burned-in"))
            o.allow_burned_in = 1;
        else if (!strcmp(a, "--quiet") || !strcmp(a, "-q"))
            quiet = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return EXIT_OK;
        } else if (a[0] == '-' && a[1])
            return usage(stderr), cli_usage("deidentify: unknown or incomplete option %s", a);
        else if (!input)
            input = a;
        else
            return usage(stderr), cli_usage("deidentify: one INPUT only");
    }
    if (!input || !outdir)
        return usage(stderr), cli_usage("deidentify: INPUT and -o OUTDIR are required");

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

    flist files = {0};
    char root[PATH_MAX];
    int ok;
    if (S_ISDIR(st.st_mode)) {
        snprintf(root, sizeof root, "%s", input);
        ok = walk(root, "", out_real, &files, 0);
        qsort(files.rel, files.n, sizeof *files.rel, cmp_str);
    } else {
        /* One file: written as OUTDIR/<its name>. */
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
        return EXIT_INPUT;
    }

    r3d_error err = R3D_ERROR_INIT;
    r3d_deid *d = r3d_deid_new(&o, &err);
    if (!d) {
        for (size_t i = 0; i < files.n; i++)
            free(files.rel[i]);
        free(files.rel);
        return cli_fail(&err);
    }
    int write_failed = 0;
    for (size_t i = 0; i < files.n; i++) {
        const char *rel = files.rel[i];
        char in_path[PATH_MAX], out_path[PATH_MAX];
        r3d_error e = R3D_ERROR_INIT;
        if (snprintf(in_path, sizeof in_path, "%s/%s", root, rel) >= (int)sizeof in_path ||
            snprintf(out_path, sizeof out_path, "%s/%s", outdir, rel) >= (int)sizeof out_path) {
            r3d_fail(&e, R3D_EARG, "%s: path too long", rel);
            r3d_deid_note_failure(d, rel, &e);
            fprintf(stderr, "recon3d: error: %s\n", e.msg);
            continue;
        }
        if (r3d_has_suffix(rel, ".zip")) {
            /* Not read here (yet): nothing of it reaches OUTDIR. */
            r3d_deid_note_skipped(d, rel, "zip archive, not de-identified or copied");
            if (!quiet)
                fprintf(stderr, "skip: %s (zip archive; not de-identified)\n", rel);
            continue;
        }
        int gz;
        r3d_dcm_file *f = open_input(in_path, &gz, &e);
        if (f && gz)
            out_path[strlen(out_path) - 3] = 0; /* written uncompressed */
        if (!f) {
            if (r3d_dcm_error_is_not_dicom(&e)) {
                r3d_deid_note_skipped(d, rel, "not DICOM");
                if (!quiet)
                    fprintf(stderr, "skip: %s (not DICOM)\n", rel);
            } else {
                r3d_deid_note_failure(d, rel, &e);
                fprintf(stderr, "recon3d: error: %s\n", e.msg);
            }
            continue;
        }
        char cls[65];
        if (r3d_dcm_str(f, r3d_dcm_meta(f), R3D_TAG(0x0002, 0x0002), -1, cls, sizeof cls) &&
            !strcmp(cls, "1.2.840.10008.1.3.10")) {
            /* A DICOMDIR indexes the original files by name and patient;
             * it is not carried over (rebuild one from the outputs). */
            r3d_deid_note_skipped(d, rel, "DICOMDIR (media directory) not carried over");
            if (!quiet)
                fprintf(stderr, "skip: %s (DICOMDIR)\n", rel);
            r3d_dcm_close(f);
            continue;
        }
        r3d_status s;
        struct stat si, so;
        if (stat(in_path, &si) == 0 && stat(out_path, &so) == 0 && si.st_dev == so.st_dev &&
            si.st_ino == so.st_ino) {
            /* -o pointing at the input's own folder: never replace an original. */
            s = r3d_fail(&e, R3D_EARG, "%s: the output would replace this input file", in_path);
            r3d_deid_note_failure(d, rel, &e);
        } else if (!make_parents(out_path)) {
            s = r3d_fail(&e, R3D_EIO, "%s: cannot create its folder: %s", out_path, strerror(errno));
            r3d_deid_note_failure(d, rel, &e);
        } else {
            s = r3d_deid_file(d, f, rel, out_path, &e);
        }
        if (s != R3D_OK) {
            fprintf(stderr, "recon3d: error: %s\n", e.msg);
            if (s == R3D_EIO)
                write_failed = 1;
        } else if (!quiet) {
            fprintf(stderr, "ok: %s\n", rel);
        }
        r3d_dcm_close(f);
    }

    int written, failed, skipped;
    r3d_deid_counts(d, &written, &failed, &skipped);
    char *json = r3d_deid_report_json(d);
    char rep[PATH_MAX];
    snprintf(rep, sizeof rep, "%s/deidentification.json", outdir);
    int rc = EXIT_OK;
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
    fprintf(stderr, "deidentify: %d written, %d failed, %d skipped -> %s\n", written, failed,
            skipped, outdir);
    if (rc != EXIT_OK)
        return rc;
    if (write_failed)
        return EXIT_OUTPUT;
    if (failed)
        return EXIT_INPUT;
    if (!written)
        return EXIT_NOTFOUND;
    return EXIT_OK;
}

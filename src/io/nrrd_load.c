/* nrrd_load.c - read NRRD volumes (.nrrd with attached data, .nhdr with a
 * detached data file) as written by 3D Slicer, ITK, teem and pynrrd.
 *
 * How: the text header (magic "NRRD000n", then "field: value" lines up to a
 * blank line or, for .nhdr, the end of the file) is parsed into a small
 * struct; key:=value pairs and comments are skipped. The data are raw, gzip
 * or ASCII ("line skip" counts lines of the data file, "byte skip" counts
 * bytes of the raw file or, for gzip, of the decompressed stream, as teem
 * does; "byte skip: -1" means "the last bytes of the file").
 *
 * Geometry: the voxel axes are the axes whose kind is spatial (domain,
 * space) or, without kinds, those whose space direction is not "none".
 * ijk_to_lps columns are the space directions and the translation the space
 * origin, converted from the header's space: left-posterior-superior / LPS
 * as is, right-anterior-superior / RAS with x and y negated,
 * left-anterior-superior / LAS with y negated. Other spaces (scanner-xyz,
 * 3D-right-handed, ...) name no patient axes and are refused. A header with
 * "space dimension" but no "space" (ITK's 2-D files) is taken as LPS, as ITK
 * does; so is a header with only "spacings" (diagonal affine, origin from
 * "axis mins" or 0). A 2-D image becomes one slice whose third axis is the
 * unit normal (0,0,1 for a 2-D space). Space units other than mm are
 * refused rather than guessed.
 *
 * Supported layouts: 2-D or 3-D scalar images; 4-D with a trailing
 * non-spatial axis (time, list: becomes t); an RGB image whose first axis is
 * a 3-sample colour/vector axis of unsigned char (becomes RGB24). Other
 * vector or tensor layouts are refused with the axis named.
 *
 * Cost: one read of the header and data, one gunzip, one copy of the voxels.
 *
 * References: teem NRRD format definition (teem.sourceforge.net/nrrd/
 * format.html), ITK NrrdImageIO (spaces without a name -> LPS).
 */
#include "r3d/nifti.h"

#include "io/nifti_priv.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NRRD_MAX_DIM 16

enum { ENC_RAW = 1, ENC_GZIP, ENC_ASCII };
enum { SP_NONE = 0, SP_LPS, SP_RAS, SP_LAS, SP_UNNAMED };

typedef struct nrrd_hdr {
    char type_name[32];   /* as written, for messages */
    r3d_dtype dtype;
    int int64;            /* 0, or 1 signed / 2 unsigned 64-bit integers */
    size_t type_size;
    int dimension;
    int64_t sizes[NRRD_MAX_DIM];
    int encoding;
    int endian;           /* 0 unknown, 1 little, 2 big */
    int space;
    int space_dim;
    int have_dirs, have_origin, have_spacings, have_kinds, have_mins;
    double dirs[NRRD_MAX_DIM][3];
    int dir_none[NRRD_MAX_DIM];
    double origin[3];
    double spacings[NRRD_MAX_DIM];
    double mins[NRRD_MAX_DIM];
    char kinds[NRRD_MAX_DIM][32];
    char data_file[1024];
    long long line_skip, byte_skip;
    char content[81];
    size_t data_start;    /* attached data: offset of the first data byte */
    int blank;            /* the header ended with a blank line */
} nrrd_hdr;

/* ---- small text helpers ----------------------------------------------------- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = 0;
    return s;
}

/* Split "a b c" into up to max words (in place); returns the count, or
 * max + 1 when there are more (w[max] is then not set). */
static int split_words(char *s, char **w, int max)
{
    int n = 0;
    for (;;) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            return n;
        if (n == max)
            return max + 1; /* too many */
        if (*s == '"') { /* quoted word: "mm" */
            char *e = strchr(s + 1, '"');
            w[n++] = s + 1;
            if (!e)
                return n;
            *e = 0;
            s = e + 1;
            continue;
        }
        w[n++] = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        if (*s)
            *s++ = 0;
    }
}

/* Parse "(x,y,z)" with n components, or "none" (returns 2). 1 = ok, 0 = bad. */
static int parse_vector(const char *s, double *v, int n)
{
    while (*s == ' ')
        s++;
    if (strncmp(s, "none", 4) == 0)
        return 2;
    if (*s++ != '(')
        return 0;
    for (int i = 0; i < n; i++) {
        char *e;
        errno = 0;
        v[i] = strtod(s, &e);
        if (e == s || errno == ERANGE || !isfinite(v[i]))
            return 0;
        s = e;
        while (*s == ' ')
            s++;
        if (*s != (i == n - 1 ? ')' : ','))
            return 0;
        s++;
    }
    return 1;
}

/* Words of a vector list "(a,b,c) (d,e,f) none": split on ')' / "none". */
static int split_vectors(char *s, char **w, int max)
{
    int n = 0;
    for (;;) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            return n;
        if (n == max)
            return max + 1;
        w[n++] = s;
        if (strncmp(s, "none", 4) == 0) {
            s += 4;
        } else {
            char *e = strchr(s, ')');
            if (!e)
                return n;
            s = e + 1;
        }
        if (*s)
            *s++ = 0;
    }
}

static int type_from_name(const char *t, nrrd_hdr *h)
{
    static const struct { const char *name; r3d_dtype dt; int int64; } T[] = {
        {"signed char", R3D_I8, 0}, {"int8", R3D_I8, 0}, {"int8_t", R3D_I8, 0},
        {"uchar", R3D_U8, 0}, {"unsigned char", R3D_U8, 0}, {"uint8", R3D_U8, 0},
        {"uint8_t", R3D_U8, 0},
        {"short", R3D_I16, 0}, {"short int", R3D_I16, 0}, {"signed short", R3D_I16, 0},
        {"signed short int", R3D_I16, 0}, {"int16", R3D_I16, 0}, {"int16_t", R3D_I16, 0},
        {"ushort", R3D_U16, 0}, {"unsigned short", R3D_U16, 0},
        {"unsigned short int", R3D_U16, 0}, {"uint16", R3D_U16, 0}, {"uint16_t", R3D_U16, 0},
        {"int", R3D_I32, 0}, {"signed int", R3D_I32, 0}, {"int32", R3D_I32, 0},
        {"int32_t", R3D_I32, 0},
        {"uint", R3D_U32, 0}, {"unsigned int", R3D_U32, 0}, {"uint32", R3D_U32, 0},
        {"uint32_t", R3D_U32, 0},
        {"longlong", R3D_F64, 1}, {"long long", R3D_F64, 1}, {"long long int", R3D_F64, 1},
        {"signed long long", R3D_F64, 1}, {"signed long long int", R3D_F64, 1},
        {"int64", R3D_F64, 1}, {"int64_t", R3D_F64, 1},
        {"ulonglong", R3D_F64, 2}, {"unsigned long long", R3D_F64, 2},
        {"unsigned long long int", R3D_F64, 2}, {"uint64", R3D_F64, 2},
        {"uint64_t", R3D_F64, 2},
        {"float", R3D_F32, 0}, {"double", R3D_F64, 0},
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
        if (strcmp(t, T[i].name) == 0) {
            snprintf(h->type_name, sizeof h->type_name, "%s", t);
            h->dtype = T[i].dt;
            h->int64 = T[i].int64;
            h->type_size = T[i].int64 ? 8 : r3d_dtype_size(T[i].dt);
            return 1;
        }
    return 0;
}

/* 1 spatial, 0 not, -1 unknown ("none" and "???" are teem's "no kind") */
static int kind_is_spatial(const char *k)
{
    if (!k[0] || strcmp(k, "none") == 0)
        return -1;
    return strcmp(k, "domain") == 0 || strcmp(k, "space") == 0;
}

/* ---- header ---------------------------------------------------------------- */

/* One "field: value" line. */
static r3d_status parse_field(nrrd_hdr *h, const char *key, char *val, const char *name,
                              int line, r3d_error *err)
{
    char *w[NRRD_MAX_DIM + 1];
#define BAD(...) return r3d_fail(err, R3D_EFORMAT, __VA_ARGS__)
    if (strcmp(key, "type") == 0) {
        if (!type_from_name(val, h)) {
            if (strcmp(val, "block") == 0 || strstr(val, "long double"))
                return r3d_fail(err, R3D_EUNSUPPORTED, "%s: line %d: type \"%s\" is not "
                                "supported", name, line, val);
            BAD("%s: line %d: unknown type \"%s\"", name, line, val);
        }
    } else if (strcmp(key, "dimension") == 0) {
        char *e;
        long d = strtol(val, &e, 10);
        if (e == val || *trim(e) || d < 1 || d > NRRD_MAX_DIM)
            BAD("%s: line %d: dimension \"%s\" is not 1..%d", name, line, val, NRRD_MAX_DIM);
        h->dimension = (int)d;
    } else if (strcmp(key, "sizes") == 0) {
        int n = split_words(val, w, NRRD_MAX_DIM);
        if (h->dimension == 0 || n != h->dimension)
            BAD("%s: line %d: sizes has %d values for dimension %d (dimension must come "
                "first)", name, line, n, h->dimension);
        for (int i = 0; i < n; i++) {
            char *e;
            errno = 0;
            long long v = strtoll(w[i], &e, 10);
            if (e == w[i] || *e || errno || v < 1)
                BAD("%s: line %d: size \"%s\" of axis %d is not a positive integer", name,
                    line, w[i], i);
            h->sizes[i] = v;
        }
    } else if (strcmp(key, "encoding") == 0) {
        if (strcmp(val, "raw") == 0)
            h->encoding = ENC_RAW;
        else if (strcmp(val, "gzip") == 0 || strcmp(val, "gz") == 0)
            h->encoding = ENC_GZIP;
        else if (strcmp(val, "ascii") == 0 || strcmp(val, "text") == 0 ||
                 strcmp(val, "txt") == 0)
            h->encoding = ENC_ASCII;
        else
            return r3d_fail(err, R3D_EUNSUPPORTED, "%s: line %d: encoding \"%s\" is not "
                            "supported (raw, gzip and ascii are)", name, line, val);
    } else if (strcmp(key, "endian") == 0) {
        if (strcmp(val, "little") == 0)
            h->endian = 1;
        else if (strcmp(val, "big") == 0)
            h->endian = 2;
        else
            BAD("%s: line %d: endian \"%s\" is neither little nor big", name, line, val);
    } else if (strcmp(key, "space") == 0) {
        if (!strcmp(val, "left-posterior-superior") || !strcmp(val, "LPS"))
            h->space = SP_LPS;
        else if (!strcmp(val, "right-anterior-superior") || !strcmp(val, "RAS"))
            h->space = SP_RAS;
        else if (!strcmp(val, "left-anterior-superior") || !strcmp(val, "LAS"))
            h->space = SP_LAS;
        else
            return r3d_fail(err, R3D_EUNSUPPORTED, "%s: line %d: space \"%s\" names no "
                            "patient axes (LPS, RAS and LAS do)", name, line, val);
        h->space_dim = 3;
    } else if (strcmp(key, "space dimension") == 0) {
        char *e;
        long d = strtol(val, &e, 10);
        if (e == val || *trim(e) || (d != 2 && d != 3))
            return r3d_fail(err, R3D_EUNSUPPORTED, "%s: line %d: space dimension \"%s\" is "
                            "not 2 or 3", name, line, val);
        if (h->space && d != 3)
            BAD("%s: line %d: space dimension %ld contradicts the 3-D space", name, line, d);
        h->space_dim = (int)d;
        if (!h->space)
            h->space = SP_UNNAMED;
    } else if (strcmp(key, "space directions") == 0) {
        if (!h->space_dim || !h->dimension)
            BAD("%s: line %d: space directions before space and dimension", name, line);
        int n = split_vectors(val, w, NRRD_MAX_DIM);
        if (n != h->dimension)
            BAD("%s: line %d: %d space directions for dimension %d", name, line, n,
                h->dimension);
        for (int i = 0; i < n; i++) {
            double v[3] = {0, 0, 0};
            int r = parse_vector(w[i], v, h->space_dim);
            if (r == 0)
                BAD("%s: line %d: space direction %d \"%s\" is not a %d-vector or none", name,
                    line, i, w[i], h->space_dim);
            h->dir_none[i] = (r == 2);
            memcpy(h->dirs[i], v, sizeof v);
        }
        h->have_dirs = 1;
    } else if (strcmp(key, "space origin") == 0) {
        if (!h->space_dim)
            BAD("%s: line %d: space origin before space", name, line);
        double v[3] = {0, 0, 0};
        if (parse_vector(val, v, h->space_dim) != 1)
            BAD("%s: line %d: space origin \"%s\" is not a %d-vector", name, line, val,
                h->space_dim);
        memcpy(h->origin, v, sizeof v);
        h->have_origin = 1;
    } else if (strcmp(key, "spacings") == 0 || strcmp(key, "axis mins") == 0 ||
               strcmp(key, "axismins") == 0) {
        int mins = key[0] == 'a';
        int n = split_words(val, w, NRRD_MAX_DIM);
        if (n != h->dimension)
            BAD("%s: line %d: %s has %d values for dimension %d", name, line, key, n,
                h->dimension);
        for (int i = 0; i < n; i++) {
            double d = strtod(w[i], NULL); /* "nan" is allowed: non-spatial axis */
            if (mins)
                h->mins[i] = d;
            else
                h->spacings[i] = d;
        }
        if (mins)
            h->have_mins = 1;
        else
            h->have_spacings = 1;
    } else if (strcmp(key, "kinds") == 0) {
        int n = split_words(val, w, NRRD_MAX_DIM);
        if (n != h->dimension)
            BAD("%s: line %d: kinds has %d values for dimension %d", name, line, n,
                h->dimension);
        for (int i = 0; i < n; i++)
            snprintf(h->kinds[i], sizeof h->kinds[i], "%s", strcmp(w[i], "???") ? w[i] : "");
        h->have_kinds = 1;
    } else if (strcmp(key, "space units") == 0) {
        int n = split_words(val, w, NRRD_MAX_DIM);
        if (n > NRRD_MAX_DIM)
            BAD("%s: line %d: more than %d space units", name, line, NRRD_MAX_DIM);
        for (int i = 0; i < n; i++)
            if (w[i][0] && strcmp(w[i], "mm") != 0 && strcmp(w[i], "millimeter") != 0 &&
                strcmp(w[i], "millimeters") != 0)
                return r3d_fail(err, R3D_EUNSUPPORTED, "%s: line %d: space unit \"%s\" is "
                                "not mm", name, line, w[i]);
    } else if (strcmp(key, "data file") == 0 || strcmp(key, "datafile") == 0) {
        if (strchr(val, ' ') || strcmp(val, "LIST") == 0)
            return r3d_fail(err, R3D_EUNSUPPORTED, "%s: line %d: data split over several "
                            "files (\"%s\") is not supported", name, line, val);
        if (strlen(val) >= sizeof h->data_file)
            BAD("%s: line %d: data file name is too long", name, line);
        strcpy(h->data_file, val);
    } else if (strcmp(key, "line skip") == 0 || strcmp(key, "lineskip") == 0 ||
               strcmp(key, "byte skip") == 0 || strcmp(key, "byteskip") == 0) {
        char *e;
        errno = 0;
        long long v = strtoll(val, &e, 10);
        int is_byte = key[0] == 'b';
        if (e == val || *trim(e) || errno || v < (is_byte ? -1 : 0))
            BAD("%s: line %d: %s \"%s\" is not valid", name, line, key, val);
        if (is_byte)
            h->byte_skip = v;
        else
            h->line_skip = v;
    } else if (strcmp(key, "content") == 0) {
        snprintf(h->content, sizeof h->content, "%s", val);
    }
    /* Everything else (centerings, labels, units, thicknesses, measurement
     * frame, old min/max, sample units...) does not change voxels or
     * geometry. The measurement frame only rotates vector values. */
    return R3D_OK;
#undef BAD
}

static r3d_status nrrd_parse(const uint8_t *buf, size_t n, const char *name, nrrd_hdr *h,
                             r3d_error *err)
{
    memset(h, 0, sizeof *h);
    if (n < 8 || memcmp(buf, "NRRD000", 7) != 0 || buf[7] < '1' || buf[7] > '9')
        return r3d_fail(err, R3D_EFORMAT, "%s: not a NRRD file (no \"NRRD000n\" magic)", name);
    size_t pos = 0;
    int line = 0;
    char text[8192];
    while (pos < n) {
        const uint8_t *nl = memchr(buf + pos, '\n', n - pos);
        size_t e = nl ? (size_t)(nl - buf) : n, len = e - pos;
        const uint8_t *l = buf + pos;
        pos = nl ? e + 1 : n;
        line++;
        if (len > 0 && l[len - 1] == '\r')
            len--;
        if (len == 0) { /* blank line: the header ends, data follow */
            h->blank = 1;
            break;
        }
        if (line == 1 || l[0] == '#')
            continue;
        if (len >= sizeof text)
            return r3d_fail(err, R3D_EFORMAT, "%s: line %d is longer than %zu bytes", name,
                            line, sizeof text - 1);
        if (memchr(l, 0, len))
            return r3d_fail(err, R3D_EFORMAT, "%s: line %d of the header holds a NUL byte",
                            name, line);
        memcpy(text, l, len);
        text[len] = 0;
        if (strstr(text, ":=")) /* key/value pair: metadata only */
            continue;
        char *sep = strstr(text, ": ");
        if (!sep) {
            if (text[len - 1] != ':')
                return r3d_fail(err, R3D_EFORMAT, "%s: line %d \"%.60s\" is not "
                                "\"field: value\"", name, line, text);
            sep = text + len - 1; /* "field:" with an empty value */
        }
        *sep = 0;
        char *key = trim(text), *val = trim(sep + (sep[1] ? 2 : 1));
        for (char *k = key; *k; k++)
            *k = (char)tolower((unsigned char)*k);
        r3d_status s = parse_field(h, key, val, name, line, err);
        if (s)
            return s;
    }
    h->data_start = pos;

    if (!h->dimension || !h->sizes[0])
        return r3d_fail(err, R3D_EFORMAT, "%s: header lacks %s", name,
                        !h->dimension ? "dimension" : "sizes");
    if (!h->type_size)
        return r3d_fail(err, R3D_EFORMAT, "%s: header lacks type", name);
    if (!h->encoding)
        return r3d_fail(err, R3D_EFORMAT, "%s: header lacks encoding", name);
    if (h->type_size > 1 && h->encoding != ENC_ASCII && !h->endian)
        return r3d_fail(err, R3D_EFORMAT, "%s: header lacks endian, needed for %zu-byte "
                        "samples", name, h->type_size);
    if (h->byte_skip == -1 && h->encoding != ENC_RAW)
        return r3d_fail(err, R3D_EFORMAT, "%s: byte skip -1 only works with raw encoding",
                        name);
    return R3D_OK;
}

/* ---- layout and geometry ------------------------------------------------------ */

typedef struct layout {
    int ax[3];      /* NRRD axis index of i, j, k (-1: none) */
    int nsp;        /* spatial axes */
    int t_axis;     /* -1 or the trailing non-spatial axis */
    int rgb;        /* first axis is 3 colour samples */
    int64_t dim[4];
} layout;

static int axis_is_spatial(const nrrd_hdr *h, int a)
{
    int k = h->have_kinds ? kind_is_spatial(h->kinds[a]) : -1;
    if (k >= 0)
        return k;
    if (h->have_dirs)
        return !h->dir_none[a];
    return 1;
}

static r3d_status nrrd_layout(const nrrd_hdr *h, const char *name, layout *L, r3d_error *err)
{
    memset(L, 0, sizeof *L);
    L->ax[0] = L->ax[1] = L->ax[2] = -1;
    L->t_axis = -1;
    for (int i = 0; i < 4; i++)
        L->dim[i] = 1;
    for (int a = 0; a < h->dimension; a++) {
        if (axis_is_spatial(h, a)) {
            if (L->nsp == 3)
                return r3d_fail(err, R3D_EUNSUPPORTED, "%s: more than 3 spatial axes", name);
            L->ax[L->nsp] = a;
            L->dim[L->nsp++] = h->sizes[a];
            continue;
        }
        const char *k = h->kinds[a];
        if (a == 0 && h->sizes[0] == 3 && h->dtype == R3D_U8 && !h->int64 &&
            (!strcmp(k, "RGB-color") || !strcmp(k, "3-color") || !strcmp(k, "vector") ||
             !strcmp(k, "3-vector") || !k[0])) {
            L->rgb = 1;
            continue;
        }
        if (a == h->dimension - 1 && L->nsp >= 2 && a > 0) {
            L->t_axis = a;
            L->dim[3] = h->sizes[a];
            continue;
        }
        return r3d_fail(err, R3D_EUNSUPPORTED, "%s: axis %d (kind \"%s\", size %lld) is not "
                        "spatial; only scalar, RGB and trailing time/list axes are supported",
                        name, a, k[0] ? k : "none", (long long)h->sizes[a]);
    }
    if (L->nsp < 2)
        return r3d_fail(err, R3D_EUNSUPPORTED, "%s: %d spatial axes; an image needs 2 or 3",
                        name, L->nsp);
    for (int i = 0; i < 4; i++)
        if (L->dim[i] > (1 << 24))
            return r3d_fail(err, R3D_EUNSUPPORTED, "%s: axis of %lld samples is over the "
                            "16777216 this library handles", name, (long long)L->dim[i]);
    return R3D_OK;
}

static r3d_status nrrd_geometry(const nrrd_hdr *h, const layout *L, const char *name,
                                double lps[4][4], r3d_error *err)
{
    memset(lps, 0, sizeof(double) * 16);
    lps[3][3] = 1.0;
    double col[3][3] = {{0}};
    for (int c = 0; c < L->nsp; c++) {
        int a = L->ax[c];
        if (h->have_dirs) {
            if (h->dir_none[a])
                return r3d_fail(err, R3D_EFORMAT, "%s: spatial axis %d has space direction "
                                "none", name, a);
            for (int r = 0; r < 3; r++)
                col[c][r] = h->dirs[a][r];
        } else {
            double s = h->have_spacings ? h->spacings[a] : 1.0;
            col[c][c] = isfinite(s) && s != 0 ? s : 1.0;
        }
    }
    double org[3] = {0, 0, 0};
    if (h->have_origin)
        memcpy(org, h->origin, sizeof org);
    else if (!h->have_dirs && h->have_mins)
        for (int c = 0; c < L->nsp; c++)
            org[c] = isfinite(h->mins[L->ax[c]]) ? h->mins[L->ax[c]] : 0.0;

    /* Into LPS: RAS and LAS flip axes; unnamed spaces are ITK's LPS. */
    double sx = h->space == SP_RAS ? -1 : 1, sy = (h->space == SP_RAS || h->space == SP_LAS) ? -1 : 1;
    for (int c = 0; c < L->nsp; c++) {
        col[c][0] *= sx;
        col[c][1] *= sy;
    }
    org[0] *= sx;
    org[1] *= sy;

    if (L->nsp == 2) {
        /* One slice: the third column is the unit normal of the plane. */
        double *u = col[0], *v = col[1], nrm[3] = {u[1] * v[2] - u[2] * v[1],
                                                   u[2] * v[0] - u[0] * v[2],
                                                   u[0] * v[1] - u[1] * v[0]};
        double len = sqrt(nrm[0] * nrm[0] + nrm[1] * nrm[1] + nrm[2] * nrm[2]);
        if (len == 0)
            return r3d_fail(err, R3D_EFORMAT, "%s: the two space directions are parallel",
                            name);
        for (int r = 0; r < 3; r++)
            col[2][r] = nrm[r] / len;
    }
    for (int c = 0; c < 3; c++) {
        for (int r = 0; r < 3; r++)
            lps[r][c] = col[c][r];
    }
    for (int r = 0; r < 3; r++)
        lps[r][3] = org[r];
    return R3D_OK;
}

/* ---- data ---------------------------------------------------------------------- */

/* Clamp a double into the range of the destination type before casting:
 * out-of-range float-to-int conversion is undefined behaviour. */
static double clamp(double d, double lo, double hi)
{
    return d != d ? 0 : d < lo ? lo : d > hi ? hi : d;
}

/* Parse ASCII samples into dst (host order, type of h). */
static r3d_status parse_ascii(const nrrd_hdr *h, const uint8_t *p, size_t n, size_t count,
                              uint8_t *dst, const char *name, r3d_error *err)
{
    /* strtod needs a terminated string: copy (ASCII data are small). */
    char *s = malloc(n + 1);
    if (!s)
        return r3d_fail(err, R3D_ENOMEM, "%s: out of memory", name);
    memcpy(s, p, n);
    s[n] = 0;
    char *c = s;
    for (size_t i = 0; i < count; i++) {
        while (*c && (isspace((unsigned char)*c) || *c == ','))
            c++;
        char *e;
        double d = strtod(c, &e);
        if (e == c) {
            free(s);
            return r3d_fail(err, R3D_EFORMAT, "%s: ASCII data hold %zu samples, %zu needed",
                            name, i, count);
        }
        c = e;
        switch (h->int64 ? R3D_DT_NONE : h->dtype) {
        case R3D_U8: dst[i] = (uint8_t)clamp(d, 0, 255); break;
        case R3D_I8: ((int8_t *)dst)[i] = (int8_t)clamp(d, -128, 127); break;
        case R3D_I16: ((int16_t *)dst)[i] = (int16_t)clamp(d, -32768, 32767); break;
        case R3D_U16: ((uint16_t *)dst)[i] = (uint16_t)clamp(d, 0, 65535); break;
        case R3D_I32: ((int32_t *)dst)[i] = (int32_t)clamp(d, -2147483648.0, 2147483647.0); break;
        case R3D_U32: ((uint32_t *)dst)[i] = (uint32_t)clamp(d, 0, 4294967295.0); break;
        case R3D_F32: ((float *)dst)[i] = (float)clamp(d, -FLT_MAX, FLT_MAX); break;
        case R3D_F64: ((double *)dst)[i] = d; break;
        default:
            /* any bound inside the type works: values past 2^53 are
             * refused when the samples are converted */
            if (h->int64 == 2)
                ((uint64_t *)dst)[i] = (uint64_t)clamp(d, 0, 0x1p62);
            else
                ((int64_t *)dst)[i] = (int64_t)clamp(d, -0x1p62, 0x1p62);
        }
    }
    free(s);
    return R3D_OK;
}

static r3d_volume *nrrd_volume(const nrrd_hdr *h, const uint8_t *file, size_t file_n,
                               const char *name, r3d_error *err)
{
    layout L;
    double lps[4][4];
    if (nrrd_layout(h, name, &L, err) || nrrd_geometry(h, &L, name, lps, err))
        return NULL;

    size_t f[NRRD_MAX_DIM + 1], count, bytes;
    for (int a = 0; a < h->dimension; a++)
        f[a] = (size_t)h->sizes[a];
    if (!r3d_mul_sizes(f, h->dimension, &count) || !r3d_mul_size(count, h->type_size, &bytes))
        return r3d_fail(err, R3D_EFORMAT, "%s: sizes multiply beyond addressable memory",
                        name), NULL;

    /* line skip: whole lines of the data file, before any decoding */
    const uint8_t *p = file;
    size_t n = file_n;
    for (long long l = 0; l < h->line_skip; l++) {
        const uint8_t *nl = memchr(p, '\n', n);
        if (!nl)
            return r3d_fail(err, R3D_EFORMAT, "%s: line skip %lld passes the end of the data",
                            name, h->line_skip), NULL;
        n -= (size_t)(nl + 1 - p);
        p = nl + 1;
    }

    uint8_t *raw = NULL;
    const uint8_t *src = NULL;
    size_t avail = 0;
    if (h->encoding == ENC_GZIP) {
        if (r3d_gzip_decompress(p, n, name, &raw, &avail, err) != R3D_OK)
            return NULL;
        src = raw;
    } else if (h->encoding == ENC_RAW) {
        src = p;
        avail = n;
    }
    if (h->encoding != ENC_ASCII) {
        size_t skip = 0;
        if (h->byte_skip == -1) /* data are the last bytes of the file */
            skip = avail >= bytes ? avail - bytes : 0;
        else if ((unsigned long long)h->byte_skip > avail) {
            free(raw);
            return r3d_fail(err, R3D_EFORMAT, "%s: byte skip %lld passes the end of the data "
                            "(%zu bytes)", name, h->byte_skip, avail), NULL;
        } else
            skip = (size_t)h->byte_skip;
        src += skip;
        avail -= skip;
        if (avail < bytes) {
            char shape[256] = "";
            for (int a = 0; a < h->dimension; a++)
                snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld",
                         a ? "x" : "", (long long)h->sizes[a]);
            free(raw);
            return r3d_fail(err, R3D_EFORMAT, "%s: header says %s %s samples (%zu bytes) but "
                            "only %zu bytes of %sdata are present", name, shape, h->type_name,
                            bytes, avail, h->encoding == ENC_GZIP ? "decompressed " : ""),
                   NULL;
        }
    }

    /* Every ASCII sample takes at least two characters ("0 "): refuse a
     * header whose sizes the text cannot hold before allocating for it. */
    if (h->encoding == ENC_ASCII && count > n / 2 + 1)
        return r3d_fail(err, R3D_EFORMAT, "%s: header says %zu samples but %zu bytes of "
                        "ASCII data cannot hold them", name, count, n), NULL;
    r3d_volume *v = r3d_volume_new(L.dim, L.rgb ? R3D_RGB24 : h->dtype, err);
    if (!v) {
        free(raw);
        r3d_error_prefix(err, "%s: ", name);
        return NULL;
    }
    /* 64-bit integers need 8 bytes per sample while converting; the volume
     * holds 8 (F64) already, so convert in its storage. */
    if (h->encoding == ENC_ASCII) {
        if (parse_ascii(h, p, n, count, v->voxels, name, err)) {
            r3d_volume_free(v);
            return NULL;
        }
    } else {
        memcpy(v->voxels, src, bytes);
        int file_big = h->endian == 2;
        if (h->type_size > 1 && file_big == r3d__host_is_little())
            r3d__swap_bytes(v->voxels, count, h->type_size);
    }
    free(raw);
    if (h->int64) {
        r3d_dtype dt = r3d__convert_int64(v->voxels, h->int64 == 2, count, v->voxels);
        if (dt == R3D_DT_NONE) {
            r3d_volume_free(v);
            return r3d_fail(err, R3D_EUNSUPPORTED, "%s: 64-bit integer samples exceed 2^53 "
                            "and cannot be held exactly", name), NULL;
        }
        v->dtype = dt;
    }
    memcpy(v->ijk_to_lps, lps, sizeof lps);
    r3d_volume_update_spacing(v);
    memcpy(v->description, h->content, sizeof v->description);
    return v;
}

/* ---- entry points -------------------------------------------------------------- */

r3d_volume *r3d_nrrd_read_mem(const uint8_t *buf, size_t n, const char *name, r3d_error *err)
{
    nrrd_hdr h;
    if (!name)
        name = "(memory)";
    if (!buf)
        return r3d_fail(err, R3D_EARG, "%s: no data", name), NULL;
    if (nrrd_parse(buf, n, name, &h, err))
        return NULL;
    if (h.data_file[0])
        return r3d_fail(err, R3D_EUNSUPPORTED, "%s: detached data file \"%s\" cannot be read "
                        "from memory", name, h.data_file), NULL;
    if (!h.blank)
        return r3d_fail(err, R3D_EFORMAT, "%s: no blank line ends the header, so no data "
                        "follow it", name), NULL;
    return nrrd_volume(&h, buf + h.data_start, n - h.data_start, name, err);
}

r3d_volume *r3d_nrrd_read(const char *path, r3d_error *err)
{
    uint8_t *buf;
    size_t n;
    nrrd_hdr h;
    if (r3d_file_read_all(path, &buf, &n, err))
        return NULL;
    if (nrrd_parse(buf, n, path, &h, err)) {
        free(buf);
        return NULL;
    }
    if (!h.data_file[0]) {
        if (!h.blank) {
            free(buf);
            return r3d_fail(err, R3D_EFORMAT, "%s: neither a data file field nor a blank "
                            "line followed by data", path), NULL;
        }
        r3d_volume *v = nrrd_volume(&h, buf + h.data_start, n - h.data_start, path, err);
        free(buf);
        return v;
    }
    free(buf);
    /* The data file is relative to the header's folder unless absolute. */
    char data_path[4096];
    const char *slash = strrchr(path, '/');
    if (h.data_file[0] == '/' || !slash)
        snprintf(data_path, sizeof data_path, "%s", h.data_file);
    else
        snprintf(data_path, sizeof data_path, "%.*s/%s", (int)(slash - path), path,
                 h.data_file);
    uint8_t *data;
    size_t dn;
    if (r3d_file_read_all(data_path, &data, &dn, err)) {
        r3d_error_prefix(err, "%s: data file: ", path);
        return NULL;
    }
    r3d_volume *v = nrrd_volume(&h, data, dn, data_path, err);
    free(data);
    return v;
}

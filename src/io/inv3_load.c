/* inv3_load.c - read an InVesalius 3 project (.inv3): the CT/MR image as an
 * int16 volume and its masks as one label map.
 *
 * The file: a tar archive, gzip-compressed unless the project was saved
 * uncompressed, of one folder holding
 *   main.plist   XML property list: "matrix" {filename, shape [nz, ny, nx],
 *                dtype "int16"}, "spacing" [sx, sy, sz] (x = column first),
 *                "orientation" (1 axial, 2 coronal, 3 sagittal, or the name),
 *                "modality", "masks" {"0": "mask_0.plist", ...};
 *   matrix.dat   the voxels, raw numpy C order (x fastest), little-endian;
 *   mask_N.plist "name", "colour" [r, g, b] in 0..1, "mask_shape"
 *                [nz+1, ny+1, nx+1], "mask_file", "threshold_range";
 *   mask_N.dat   uint8, one extra leading slice, row and column that
 *                InVesalius uses for bookkeeping; voxel values >= 127 are in
 *                the mask (255 thresholded, 254 drawn in; 1 and 2 mean erased).
 * We carry our own tar reader (ustar, GNU long names 'L', pax 'path') and a
 * plist parser for the subset plistlib writes (dict, key, string, integer,
 * real, array, true, false; date and data kept as text).
 *
 * Geometry (assumptions, since the format stores no patient position):
 * InVesalius builds matrix.dat from DICOM slices sorted by gdcm's IPPSorter
 * (ascending along the slice normal) and flips every slice vertically,
 * im[::-1], because VTK's image origin is bottom-left
 * (invesalius/data/imagedata_utils.py dcm2memmap). Assuming the usual
 * orientations (axial IOP 1\0\0\0\1\0, coronal 1\0\0\0\0\-1, sagittal
 * 0\1\0\0\0\-1) this gives, in LPS:
 *   axial:    i = column +x, j = flipped row -y, k = slice +z;
 *   coronal:  the slice axis is stored reversed, i = +x, j = -y, k = +z;
 *   sagittal: i = slice -x, j = column +y, k = flipped row +z;
 * spacing from "spacing" in i, j, k order. The origin is unknown; we put
 * the first voxel of the first DICOM slice (row 0, column 0) at LPS (0,0,0),
 * so distances, orientation and handedness equal the original series' and
 * only a translation is missing. Checked on Debian's Cranium.inv3: the CT
 * table lies at j = 0 (posterior), the skull vertex at the highest k.
 * Newer projects may carry an "affine" key; it is a navigation transform
 * without scaling, not a voxel-to-patient matrix, and is not used.
 *
 * Masks: mask k (in the order of the "masks" keys) becomes label k + 1;
 * where masks overlap the lower-numbered one wins. An axial slice whose
 * mask bytes are all 0 was never thresholded in the session (InVesalius
 * thresholds lazily, slice by slice); as InVesalius would, we fill it from
 * the mask's threshold_range applied to the image.
 *
 * Cost: one gunzip of the whole project and one pass over image and masks.
 *
 * References: InVesalius 3 sources (invesalius/project.py SavePlistProject,
 * data/mask.py, data/imagedata_utils.py), POSIX.1-1988 ustar and
 * POSIX.1-2001 pax formats, Apple's PropertyList-1.0 DTD.
 */
#include "r3d/nifti.h"

#include "io/nifti_priv.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==== tar ==================================================================== */

typedef struct tar_entry {
    char name[256]; /* base name: the project's files sit in one folder */
    size_t off, size;
} tar_entry;

typedef struct tar_index {
    tar_entry *e;
    int n, cap;
} tar_index;

static int tar_octal(const uint8_t *p, size_t w, size_t *out)
{
    /* GNU base-256 for sizes over 8 GiB: high bit of the first byte. */
    if (p[0] & 0x80) {
        uint64_t v = p[0] & 0x7f;
        for (size_t i = 1; i < w; i++) {
            if (v >> 55)
                return 0;
            v = v << 8 | p[i];
        }
        if (v > SIZE_MAX)
            return 0;
        *out = (size_t)v;
        return 1;
    }
    size_t i = 0, v = 0;
    while (i < w && (p[i] == ' ' || p[i] == 0))
        i++;
    if (i == w) {
        *out = 0;
        return 1;
    }
    for (; i < w && p[i] >= '0' && p[i] <= '7'; i++) {
        if (v > (SIZE_MAX >> 3))
            return 0;
        v = v * 8 + (size_t)(p[i] - '0');
    }
    if (i < w && p[i] != ' ' && p[i] != 0)
        return 0;
    *out = v;
    return 1;
}

static void base_name(char *dst, size_t cap, const char *full, size_t len)
{
    while (len > 0 && full[len - 1] == '/')
        len--;
    size_t start = len;
    while (start > 0 && full[start - 1] != '/')
        start--;
    size_t k = len - start < cap - 1 ? len - start : cap - 1;
    memcpy(dst, full + start, k);
    dst[k] = 0;
}

static r3d_status tar_scan(const uint8_t *t, size_t n, const char *path, tar_index *ix,
                           r3d_error *err)
{
    char longname[4096] = "";
    size_t pos = 0;
    while (pos + 512 <= n) {
        const uint8_t *h = t + pos;
        int zero = 1;
        for (int i = 0; i < 512 && zero; i++)
            zero = h[i] == 0;
        if (zero)
            break; /* end-of-archive blocks */
        size_t chk, sum = 0, size;
        for (int i = 0; i < 512; i++)
            sum += (i >= 148 && i < 156) ? ' ' : h[i];
        if (!tar_octal(h + 148, 8, &chk) || chk != sum)
            return r3d_fail(err, R3D_EFORMAT, "%s: tar header at byte %zu has a bad checksum",
                            path, pos);
        if (!tar_octal(h + 124, 12, &size))
            return r3d_fail(err, R3D_EFORMAT, "%s: tar header at byte %zu has a bad size",
                            path, pos);
        size_t data = pos + 512;
        if (size > n - data)
            return r3d_fail(err, R3D_EFORMAT, "%s: tar member at byte %zu claims %zu bytes "
                            "but the archive ends %zu bytes later", path, pos, size, n - data);
        size_t padded = size + (512 - size % 512) % 512;
        size_t next = padded > n - data ? n : data + padded;
        char type = (char)h[156];

        if (type == 'L' || type == 'x') {
            if (type == 'L') {
                size_t k = size < sizeof longname ? size : sizeof longname - 1;
                memcpy(longname, t + data, k);
                longname[k] = 0;
            } else {
                /* pax records: "<len> <key>=<value>\n" */
                size_t p = 0;
                while (p < size) {
                    size_t len = 0, q = p;
                    while (q < size && t[data + q] >= '0' && t[data + q] <= '9' && len < size)
                        len = len * 10 + (size_t)(t[data + q++] - '0');
                    if (len == 0 || len > size - p)
                        break;
                    const char *rec = (const char *)t + data + q + 1;
                    size_t rlen = p + len - q - 1;
                    if (rlen > 5 && memcmp(rec, "path=", 5) == 0) {
                        size_t k = rlen - 6 < sizeof longname - 1 ? rlen - 6 : sizeof longname - 1;
                        memcpy(longname, rec + 5, k);
                        longname[k] = 0;
                    }
                    p += len;
                }
            }
            pos = next;
            continue;
        }
        if (type == '0' || type == 0 || type == '7') {
            char full[sizeof longname + 160];
            if (longname[0]) {
                snprintf(full, sizeof full, "%s", longname);
            } else {
                size_t nl = strnlen((const char *)h, 100);
                size_t pl = memcmp(h + 257, "ustar", 5) == 0 ? strnlen((const char *)h + 345, 155) : 0;
                snprintf(full, sizeof full, "%.*s%s%.*s", (int)pl, (const char *)h + 345,
                         pl ? "/" : "", (int)nl, (const char *)h);
            }
            if (ix->n == ix->cap) {
                int cap = ix->cap ? ix->cap * 2 : 16;
                tar_entry *e = realloc(ix->e, (size_t)cap * sizeof *e);
                if (!e)
                    return r3d_fail(err, R3D_ENOMEM, "%s: out of memory", path);
                ix->e = e;
                ix->cap = cap;
            }
            tar_entry *e = &ix->e[ix->n++];
            base_name(e->name, sizeof e->name, full, strlen(full));
            e->off = data;
            e->size = size;
        }
        longname[0] = 0;
        pos = next;
    }
    if (ix->n == 0)
        return r3d_fail(err, R3D_EFORMAT, "%s: no files in the tar archive", path);
    return R3D_OK;
}

static const tar_entry *tar_find(const tar_index *ix, const char *name)
{
    char base[256];
    base_name(base, sizeof base, name, strlen(name));
    for (int i = 0; i < ix->n; i++)
        if (strcmp(ix->e[i].name, base) == 0)
            return &ix->e[i];
    return NULL;
}

/* ==== plist ================================================================== */

typedef enum { PL_DICT, PL_ARRAY, PL_STRING, PL_NUMBER, PL_BOOL } pl_type;

typedef struct pl_node {
    pl_type type;
    char *key;  /* key in the parent dict, or NULL */
    char *str;  /* PL_STRING: decoded text (also date, data) */
    double num; /* PL_NUMBER, PL_BOOL */
    struct pl_node *child, *next;
} pl_node;

typedef struct pl_parser {
    const char *start, *p, *end;
    const char *name; /* for messages: "x.inv3: main.plist" */
    int depth, nodes;
    r3d_error *err;
    int failed;
} pl_parser;

static void pl_free(pl_node *n)
{
    while (n) {
        pl_node *next = n->next;
        pl_free(n->child);
        free(n->key);
        free(n->str);
        free(n);
        n = next;
    }
}

static void *pl_fail(pl_parser *ps, const char *what)
{
    if (!ps->failed)
        r3d_fail(ps->err, R3D_EFORMAT, "%s: %s at byte %ld", ps->name, what,
                 (long)(ps->p - ps->start));
    ps->failed = 1;
    return NULL;
}

static void pl_skip_ws(pl_parser *ps)
{
    for (;;) {
        while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' ||
                                   *ps->p == '\r'))
            ps->p++;
        /* declarations, DOCTYPE and comments carry no data */
        size_t left = (size_t)(ps->end - ps->p);
        const char *close = NULL;
        if (left >= 4 && memcmp(ps->p, "<!--", 4) == 0)
            close = "-->";
        else if (left >= 2 && (memcmp(ps->p, "<?", 2) == 0 || memcmp(ps->p, "<!", 2) == 0))
            close = ps->p[1] == '?' ? "?>" : ">";
        if (!close)
            return;
        size_t cl = strlen(close);
        const char *q = ps->p + 2;
        while (q + cl <= ps->end && memcmp(q, close, cl) != 0)
            q++;
        ps->p = q + cl <= ps->end ? q + cl : ps->end;
    }
}

/* Read "<name ...>" or "<name/>"; returns 1 open, 2 self-closed, 0 none. */
static int pl_tag(pl_parser *ps, char *name, size_t cap)
{
    pl_skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != '<' || ps->p + 1 >= ps->end || ps->p[1] == '/')
        return 0;
    const char *q = ps->p + 1;
    size_t k = 0;
    while (q < ps->end && *q != '>' && *q != '/' && *q != ' ' && k + 1 < cap)
        name[k++] = *q++;
    name[k] = 0;
    while (q < ps->end && *q != '>')
        q++;
    if (q >= ps->end)
        return 0;
    int self = q[-1] == '/';
    ps->p = q + 1;
    return self ? 2 : 1;
}

static int pl_close(pl_parser *ps, const char *name)
{
    pl_skip_ws(ps);
    size_t n = strlen(name);
    if ((size_t)(ps->end - ps->p) < n + 3 || memcmp(ps->p, "</", 2) != 0 ||
        memcmp(ps->p + 2, name, n) != 0 || ps->p[2 + n] != '>')
        return 0;
    ps->p += n + 3;
    return 1;
}

/* Text up to the next '<', with the five XML entities and &#N; decoded. */
static char *pl_text(pl_parser *ps)
{
    const char *s = ps->p;
    while (ps->p < ps->end && *ps->p != '<')
        ps->p++;
    size_t n = (size_t)(ps->p - s);
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return pl_fail(ps, "out of memory");
    for (size_t i = 0; i < n;) {
        if (s[i] != '&') {
            *o++ = s[i++];
            continue;
        }
        static const struct { const char *ent; char c; } E[] = {
            {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
        int done = 0;
        for (size_t k = 0; k < 5 && !done; k++) {
            size_t el = strlen(E[k].ent);
            if (n - i >= el && memcmp(s + i, E[k].ent, el) == 0) {
                *o++ = E[k].c;
                i += el;
                done = 1;
            }
        }
        if (!done && n - i > 3 && s[i + 1] == '#') {
            size_t j = i + 2;
            int hex = s[j] == 'x';
            unsigned long cp = 0;
            j += hex;
            while (j < n && s[j] != ';' && cp < 0x110000) {
                char c = s[j++];
                int d = (c >= '0' && c <= '9') ? c - '0'
                        : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
                if (d < 0)
                    break;
                cp = cp * (hex ? 16 : 10) + (unsigned long)d;
            }
            if (j < n && s[j] == ';' && cp > 0 && cp < 0x110000) {
                /* UTF-8 encode */
                if (cp < 0x80) {
                    *o++ = (char)cp;
                } else if (cp < 0x800) {
                    *o++ = (char)(0xc0 | cp >> 6);
                    *o++ = (char)(0x80 | (cp & 0x3f));
                } else if (cp < 0x10000) {
                    *o++ = (char)(0xe0 | cp >> 12);
                    *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
                    *o++ = (char)(0x80 | (cp & 0x3f));
                } else {
                    *o++ = (char)(0xf0 | cp >> 18);
                    *o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
                    *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
                    *o++ = (char)(0x80 | (cp & 0x3f));
                }
                i = j + 1;
                done = 1;
            }
        }
        if (!done)
            *o++ = s[i++]; /* a stray '&': keep it */
    }
    *o = 0;
    return out;
}

static pl_node *pl_value(pl_parser *ps);

static pl_node *pl_new(pl_parser *ps, pl_type t)
{
    if (++ps->nodes > 1000000)
        return pl_fail(ps, "more than a million plist values");
    pl_node *n = calloc(1, sizeof *n);
    if (!n)
        return pl_fail(ps, "out of memory");
    n->type = t;
    return n;
}

static pl_node *pl_value(pl_parser *ps)
{
    char tag[32];
    int t = pl_tag(ps, tag, sizeof tag);
    if (!t)
        return pl_fail(ps, "expected a plist value");
    if (!strcmp(tag, "plist")) {
        if (t == 2)
            return pl_fail(ps, "empty plist");
        pl_node *v = pl_value(ps);
        if (v && !pl_close(ps, "plist")) {
            pl_free(v);
            return pl_fail(ps, "expected </plist>");
        }
        return v;
    }
    if (!strcmp(tag, "dict") || !strcmp(tag, "array")) {
        int dict = tag[0] == 'd';
        if (++ps->depth > 64)
            return pl_fail(ps, "plist nested more than 64 deep");
        pl_node *n = pl_new(ps, dict ? PL_DICT : PL_ARRAY), **tail;
        if (!n)
            return NULL;
        tail = &n->child;
        while (t == 1 && !pl_close(ps, tag)) {
            char *key = NULL;
            if (dict) {
                char kt[8];
                int r = pl_tag(ps, kt, sizeof kt);
                if (r == 1 && !strcmp(kt, "key")) {
                    key = pl_text(ps);
                    if (key && !pl_close(ps, "key")) {
                        free(key);
                        key = NULL;
                        pl_fail(ps, "expected </key>");
                    }
                } else {
                    pl_fail(ps, "expected <key> in a dict");
                }
                if (!key) {
                    pl_free(n);
                    return NULL;
                }
            }
            pl_node *c = pl_value(ps);
            if (!c) {
                free(key);
                pl_free(n);
                return NULL;
            }
            c->key = key;
            *tail = c;
            tail = &c->next;
        }
        ps->depth--;
        return n;
    }
    if (!strcmp(tag, "true") || !strcmp(tag, "false")) {
        pl_node *n = pl_new(ps, PL_BOOL);
        if (n)
            n->num = tag[0] == 't';
        if (n && t == 1 && !pl_close(ps, tag)) {
            pl_free(n);
            return pl_fail(ps, "expected a closing boolean tag");
        }
        return n;
    }
    int number = !strcmp(tag, "integer") || !strcmp(tag, "real");
    if (!number && strcmp(tag, "string") && strcmp(tag, "date") && strcmp(tag, "data"))
        return pl_fail(ps, "unknown plist element");
    pl_node *n = pl_new(ps, number ? PL_NUMBER : PL_STRING);
    if (!n)
        return NULL;
    n->str = t == 2 ? calloc(1, 1) : pl_text(ps);
    if (!n->str || (t == 1 && !pl_close(ps, tag))) {
        pl_free(n);
        return pl_fail(ps, "expected a closing tag");
    }
    if (number) {
        char *e;
        errno = 0;
        n->num = strtod(n->str, &e);
        while (*e == ' ' || *e == '\n' || *e == '\t' || *e == '\r')
            e++;
        if (e == n->str || *e) {
            pl_free(n);
            return pl_fail(ps, "malformed number");
        }
    }
    return n;
}

static pl_node *pl_parse(const uint8_t *buf, size_t n, const char *name, r3d_error *err)
{
    pl_parser ps = {(const char *)buf, (const char *)buf, (const char *)buf + n, name, 0, 0,
                    err, 0};
    pl_node *root = pl_value(&ps);
    if (root && root->type != PL_DICT) {
        pl_free(root);
        r3d_fail(err, R3D_EFORMAT, "%s: the top-level value is not a dict", name);
        return NULL;
    }
    return root;
}

static const pl_node *pl_get(const pl_node *dict, const char *key)
{
    if (!dict || dict->type != PL_DICT)
        return NULL;
    for (const pl_node *c = dict->child; c; c = c->next)
        if (c->key && strcmp(c->key, key) == 0)
            return c;
    return NULL;
}

/* Up to max numbers of an array; returns how many there are. */
static int pl_numbers(const pl_node *arr, double *v, int max)
{
    if (!arr || arr->type != PL_ARRAY)
        return -1;
    int n = 0;
    for (const pl_node *c = arr->child; c; c = c->next, n++) {
        if (c->type != PL_NUMBER && c->type != PL_BOOL)
            return -1;
        if (n < max)
            v[n] = c->num;
    }
    return n;
}

static const char *pl_str(const pl_node *n)
{
    return n && n->type == PL_STRING ? n->str : NULL;
}

/* ==== project ================================================================ */

typedef struct inv3 {
    const char *path;
    uint8_t *tar;
    size_t tar_n;
    tar_index ix;
    pl_node *main;
} inv3;

/* Parse the plist member called name. */
static pl_node *member_plist(inv3 *p, const char *name, r3d_error *err)
{
    const tar_entry *e = tar_find(&p->ix, name);
    char where[512];
    snprintf(where, sizeof where, "%s: %s", p->path, name);
    if (!e)
        return r3d_fail(err, R3D_EFORMAT, "%s: missing from the project", where), NULL;
    return pl_parse(p->tar + e->off, e->size, where, err);
}

static int orientation_of(const pl_node *o)
{
    if (!o)
        return 1; /* format 1 projects always say; absent means axial */
    if (o->type == PL_NUMBER)
        return (int)o->num;
    const char *s = pl_str(o);
    if (!s)
        return 0;
    if (!strcmp(s, "AXIAL"))
        return 1;
    if (!strcmp(s, "CORONAL"))
        return 2;
    if (!strcmp(s, "SAGITTAL") || !strcmp(s, "SAGITAL"))
        return 3;
    return 0;
}

/* The LPS geometry described in the file header. */
static void inv3_geometry(int orient, const int64_t dim[3], const double sp[3],
                          double lps[4][4])
{
    /* signed unit axis (0 x, 1 y, 2 z) of i, j, k, and the stored index of
     * the first DICOM voxel */
    static const int axis[4][3] = {{0}, {0, 1, 2}, {0, 1, 2}, {0, 1, 2}};
    static const double sign[4][3] = {{0}, {1, -1, 1}, {1, -1, 1}, {-1, 1, 1}};
    int64_t first[3] = {0, 0, 0};
    if (orient == 1)
        first[1] = dim[1] - 1;
    else if (orient == 2) {
        first[1] = dim[1] - 1;
        first[2] = dim[2] - 1;
    } else
        first[2] = dim[2] - 1;
    memset(lps, 0, sizeof(double) * 16);
    lps[3][3] = 1.0;
    for (int c = 0; c < 3; c++) {
        lps[axis[orient][c]][c] = sign[orient][c] * sp[c];
        lps[axis[orient][c]][3] -= (double)first[c] * sign[orient][c] * sp[c];
    }
}

static r3d_status inv3_image(inv3 *p, r3d_volume **out, r3d_error *err)
{
    const pl_node *m = pl_get(p->main, "matrix");
    const char *file = pl_str(pl_get(m, "filename"));
    const char *dtype = pl_str(pl_get(m, "dtype"));
    double shape[3], sp[3];
    if (!file || pl_numbers(pl_get(m, "shape"), shape, 3) != 3)
        return r3d_fail(err, R3D_EFORMAT, "%s: main.plist lacks matrix filename or a 3-value "
                        "shape", p->path);
    if (pl_numbers(pl_get(p->main, "spacing"), sp, 3) != 3)
        return r3d_fail(err, R3D_EFORMAT, "%s: main.plist lacks a 3-value spacing", p->path);
    if (dtype && strcmp(dtype, "int16") != 0)
        return r3d_fail(err, R3D_EUNSUPPORTED, "%s: image dtype \"%s\" (only int16 is "
                        "written by InVesalius)", p->path, dtype);
    int orient = orientation_of(pl_get(p->main, "orientation"));
    if (orient < 1 || orient > 3)
        return r3d_fail(err, R3D_EFORMAT, "%s: unknown orientation in main.plist", p->path);
    int64_t dim[4] = {0, 0, 0, 1};
    for (int i = 0; i < 3; i++) {
        if (!(shape[2 - i] >= 1 && shape[2 - i] <= (1 << 24)) ||
            shape[2 - i] != floor(shape[2 - i]))
            return r3d_fail(err, R3D_EFORMAT, "%s: matrix shape value %g is not a size",
                            p->path, shape[2 - i]);
        dim[i] = (int64_t)shape[2 - i]; /* numpy (z, y, x) -> (i, j, k) */
        if (!(sp[i] > 0) || !isfinite(sp[i]))
            return r3d_fail(err, R3D_EFORMAT, "%s: spacing %g is not positive", p->path, sp[i]);
    }
    const tar_entry *e = tar_find(&p->ix, file);
    if (!e)
        return r3d_fail(err, R3D_EFORMAT, "%s: image file %s is missing from the project",
                        p->path, file);
    size_t f[3] = {(size_t)dim[0], (size_t)dim[1], (size_t)dim[2]}, nvox = 0, bytes = 0;
    if (!r3d_mul_sizes(f, 3, &nvox) || !r3d_mul_size(nvox, 2, &bytes) || bytes > e->size)
        return r3d_fail(err, R3D_EFORMAT, "%s: %s holds %zu bytes, but shape %lldx%lldx%lld "
                        "int16 needs %zu", p->path, file, e->size, (long long)dim[0],
                        (long long)dim[1], (long long)dim[2], bytes);
    r3d_volume *v = r3d_volume_new(dim, R3D_I16, err);
    if (!v)
        return err ? err->code : R3D_ENOMEM;
    memcpy(v->voxels, p->tar + e->off, bytes);
    if (!r3d__host_is_little()) /* numpy wrote it little-endian */
        r3d__swap_bytes(v->voxels, nvox, 2);
    inv3_geometry(orient, dim, sp, v->ijk_to_lps);
    r3d_volume_update_spacing(v);
    const char *mod = pl_str(pl_get(p->main, "modality"));
    if (mod)
        snprintf(v->acq.modality, sizeof v->acq.modality, "%s", mod);
    /* "name" is the patient's name: deliberately not copied anywhere. */
    *out = v;
    return R3D_OK;
}

/* Copy at most cap-1 bytes of UTF-8 without cutting a character. */
static void utf8_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = 0;
}

static r3d_status inv3_mask(inv3 *p, const r3d_volume *img, const char *plist_name,
                            uint16_t value, r3d_labelmap *lm, r3d_error *err)
{
    pl_node *mp = member_plist(p, plist_name, err);
    if (!mp)
        return err ? err->code : R3D_EFORMAT;
    r3d_status s = R3D_OK;
    const char *file = pl_str(pl_get(mp, "mask_file"));
    double shape[3], col[3] = {1, 1, 1}, thr[2] = {0, -1};
    const tar_entry *e = file ? tar_find(&p->ix, file) : NULL;
    int64_t nx = img->dim[0], ny = img->dim[1], nz = img->dim[2];
    if (!file || !e || pl_numbers(pl_get(mp, "mask_shape"), shape, 3) != 3) {
        s = r3d_fail(err, R3D_EFORMAT, "%s: %s lacks its mask file or a 3-value mask_shape",
                     p->path, plist_name);
        goto done;
    }
    if (shape[0] != nz + 1 || shape[1] != ny + 1 || shape[2] != nx + 1) {
        s = r3d_fail(err, R3D_EFORMAT, "%s: %s: mask shape %gx%gx%g does not match the image "
                     "%lldx%lldx%lld plus its border", p->path, plist_name, shape[0], shape[1],
                     shape[2], (long long)nz, (long long)ny, (long long)nx);
        goto done;
    }
    size_t mx = (size_t)nx + 1, my = (size_t)ny + 1, mz = (size_t)nz + 1;
    if (e->size / mx / my < mz) {
        s = r3d_fail(err, R3D_EFORMAT, "%s: %s holds %zu bytes, %zu needed", p->path, file,
                     e->size, mx * my * mz);
        goto done;
    }
    pl_numbers(pl_get(mp, "colour"), col, 3);
    int have_thr = pl_numbers(pl_get(mp, "threshold_range"), thr, 2) == 2;

    r3d_label lab;
    memset(&lab, 0, sizeof lab);
    lab.value = value;
    const char *nm = pl_str(pl_get(mp, "name"));
    if (nm && nm[0])
        utf8_copy(lab.name, sizeof lab.name, nm);
    else
        snprintf(lab.name, sizeof lab.name, "mask_%u", (unsigned)value);
    for (int c = 0; c < 3; c++) {
        double x = isfinite(col[c]) ? col[c] : 0;
        lab.rgb[c] = (uint8_t)lround(255.0 * (x < 0 ? 0 : x > 1 ? 1 : x));
    }
    if ((s = r3d_label_table_add(&lm->table, &lab, err)))
        goto done;

    const uint8_t *m = p->tar + e->off;
    const int16_t *im = img->voxels;
    uint16_t *out = lm->vol->voxels;
    for (size_t z = 0; z < (size_t)nz; z++) {
        /* the leading border slice, row and column are bookkeeping */
        const uint8_t *ms = m + (z + 1) * mx * my;
        int any = 0;
        for (size_t y = 1; y < my && !any; y++)
            for (size_t x = 1; x < mx; x++)
                if (ms[y * mx + x]) {
                    any = 1;
                    break;
                }
        size_t base = z * (size_t)nx * (size_t)ny;
        for (size_t y = 0; y < (size_t)ny; y++)
            for (size_t x = 0; x < (size_t)nx; x++) {
                size_t o = base + y * (size_t)nx + x;
                int in = any ? ms[(y + 1) * mx + x + 1] >= 127
                             : have_thr && im[o] >= thr[0] && im[o] <= thr[1];
                if (in && !out[o])
                    out[o] = value;
            }
    }
done:
    pl_free(mp);
    return s;
}

static r3d_status inv3_masks(inv3 *p, const r3d_volume *img, r3d_labelmap **out,
                             r3d_error *err)
{
    const pl_node *masks = pl_get(p->main, "masks");
    *out = NULL;
    if (!masks || masks->type != PL_DICT || !masks->child)
        return R3D_OK;
    /* Order by the numeric key, as InVesalius does (sorted(..., key=int)). */
    int n = 0;
    for (const pl_node *c = masks->child; c; c = c->next)
        n++;
    if (n > 65535)
        return r3d_fail(err, R3D_EUNSUPPORTED, "%s: %d masks, over the label limit", p->path, n);
    const pl_node **order = malloc((size_t)n * sizeof *order);
    if (!order)
        return r3d_fail(err, R3D_ENOMEM, "%s: out of memory", p->path);
    int k = 0;
    for (const pl_node *c = masks->child; c; c = c->next)
        order[k++] = c;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && atol(order[j - 1]->key) > atol(order[j]->key); j--) {
            const pl_node *t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    r3d_labelmap *lm = r3d_labelmap_new(img, err);
    r3d_status s = lm ? R3D_OK : (err ? err->code : R3D_ENOMEM);
    for (int i = 0; i < n && !s; i++) {
        const char *pl = pl_str(order[i]);
        if (!pl)
            s = r3d_fail(err, R3D_EFORMAT, "%s: mask entry \"%s\" is not a file name",
                         p->path, order[i]->key);
        else
            s = inv3_mask(p, img, pl, (uint16_t)(i + 1), lm, err);
    }
    free(order);
    if (s) {
        r3d_labelmap_free(lm);
        return s;
    }
    *out = lm;
    return R3D_OK;
}

/* Takes over tar (a malloc'ed plain tar archive). */
static r3d_volume *inv3_from_tar(uint8_t *tar, size_t n, const char *path,
                                 r3d_labelmap **masks, r3d_error *err)
{
    inv3 p;
    memset(&p, 0, sizeof p);
    p.path = path;
    p.tar = tar;
    p.tar_n = n;
    r3d_volume *v = NULL;
    r3d_labelmap *lm = NULL;
    if (tar_scan(p.tar, p.tar_n, path, &p.ix, err) == R3D_OK &&
        (p.main = member_plist(&p, "main.plist", err)) != NULL &&
        inv3_image(&p, &v, err) == R3D_OK &&
        (!masks || inv3_masks(&p, v, &lm, err) == R3D_OK)) {
        if (masks)
            *masks = lm;
    } else {
        r3d_volume_free(v);
        v = NULL;
    }
    pl_free(p.main);
    free(p.ix.e);
    free(p.tar);
    return v;
}

r3d_volume *r3d_inv3_read_mem(const uint8_t *buf, size_t n, const char *name,
                              r3d_labelmap **masks, r3d_error *err)
{
    if (masks)
        *masks = NULL;
    if (!name)
        name = "(memory)";
    if (!buf)
        return r3d_fail(err, R3D_EARG, "%s: no data", name), NULL;
    uint8_t *tar;
    size_t tn;
    if (r3d_is_gzip(buf, n)) {
        if (r3d_gzip_decompress(buf, n, name, &tar, &tn, err))
            return NULL;
    } else {
        /* saved with compression off: a plain tar */
        if (!(tar = malloc(n ? n : 1)))
            return r3d_fail(err, R3D_ENOMEM, "%s: out of memory", name), NULL;
        memcpy(tar, buf, n);
        tn = n;
    }
    return inv3_from_tar(tar, tn, name, masks, err);
}

r3d_volume *r3d_inv3_read(const char *path, r3d_labelmap **masks, r3d_error *err)
{
    if (masks)
        *masks = NULL;
    uint8_t *file, *tar;
    size_t n, tn;
    if (r3d_file_read_all(path, &file, &n, err))
        return NULL;
    if (r3d_is_gzip(file, n)) {
        r3d_status s = r3d_gzip_decompress(file, n, path, &tar, &tn, err);
        free(file);
        if (s)
            return NULL;
    } else {
        tar = file; /* saved with compression off: a plain tar */
        tn = n;
    }
    return inv3_from_tar(tar, tn, path, masks, err);
}

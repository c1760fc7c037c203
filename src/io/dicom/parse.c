/* parse.c - one DICOM file (Part 10 or a bare data set) parsed into a tree
 * of elements whose values point into the file's bytes.
 *
 * What: the 128-byte preamble + "DICM" + group 0002 meta (explicit VR LE),
 * or no preamble/meta at all (the encoding is guessed from the first
 * element); transfer syntaxes implicit VR LE, explicit VR LE and BE,
 * deflated explicit LE (the body inflated with zlib, raw deflate), and every
 * encapsulated syntax (explicit LE, pixel data as fragments). Defined and
 * undefined lengths, sequences nested to R3D_DCM_MAX_DEPTH, items ended by
 * (FFFE,E00D), sequences by (FFFE,E0DD), UN of undefined length read as an
 * implicit-VR LE sequence (CP-246), private elements kept opaque unless they
 * are evidently sequences.
 *
 * How: a recursive descent over the bytes. Each nesting depth has a scratch
 * vector of elements (and one of items) reused across the whole file; when a
 * data set or sequence is complete its entries are copied into an arena, so a
 * file costs a handful of mallocs whatever its size. Values are not copied:
 * r3d_dcm_el.val points into the mapped file (or the inflated body) and stays
 * in the file's byte order; the accessors swap. Every length is checked
 * against the bytes that remain before it is used.
 *
 * Cost: one pass over the header bytes; the pixel data is skipped by its
 * length (never touched) unless it is encapsulated, when only the 8-byte item
 * headers of the fragments are read. R3D_DCM_HEADER_ONLY stops at the pixel
 * data element, so with mmap a 512x512 CT slice costs the header's pages.
 *
 * References: DICOM PS3.10 §7.1 (file meta), PS3.5 §7.1 (data elements),
 * §7.5 (sequences, items, delimiters), §A.4 (encapsulation), §A.5
 * (deflate), §6.2 (VRs, 4-byte-length VRs), CP-246 (UN sequences);
 * pydicom's filereader for the tolerance of broken files.
 */
#include "r3d/dicom.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define TAG_ITEM R3D_TAG(0xFFFE, 0xE000)
#define TAG_ITEM_DELIM R3D_TAG(0xFFFE, 0xE00D)
#define TAG_SEQ_DELIM R3D_TAG(0xFFFE, 0xE0DD)
#define TAG_PIXEL_DATA R3D_TAG(0x7FE0, 0x0010)
#define TAG_TS_UID R3D_TAG(0x0002, 0x0010)

/* The longest inflated body we accept: deflate cannot expand by more than
 * about 1032:1, and no real data set is near 4 GiB. */
#define INFLATE_MAX ((size_t)1 << 32)

/* ---- arena: element and item arrays of one file ---------------------------- */

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} arena_block;

typedef struct arena {
    arena_block *head;
} arena;

static void *arena_alloc(arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        arena_block *b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    return p;
}

static void arena_free(arena *a)
{
    arena_block *b = a->head;
    while (b) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}

/* ---- the file --------------------------------------------------------------- */

struct r3d_dcm_file {
    char *path;
    uint8_t *buf;      /* the file's bytes */
    size_t n;
    int own;           /* free(buf) on close */
    int mapped;        /* munmap(buf, n) on close */
    uint8_t *inflated; /* deflated TS: the inflated body (owned) */
    char ts[65];
    int big_endian;
    int explicit_vr;
    r3d_dcm_item meta, root;
    arena mem;
};

/* ---- byte reading ------------------------------------------------------------ */

static uint16_t rd16(const uint8_t *p, int big)
{
    return big ? (uint16_t)(p[0] << 8 | p[1]) : (uint16_t)(p[1] << 8 | p[0]);
}

static uint32_t rd32(const uint8_t *p, int big)
{
    return big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
               : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static uint32_t rdtag(const uint8_t *p, int big)
{
    return R3D_TAG(rd16(p, big), rd16(p + 2, big));
}

static int is_vr_chars(const uint8_t *p)
{
    return p[0] >= 'A' && p[0] <= 'Z' && p[1] >= 'A' && p[1] <= 'Z';
}

/* VRs of PS3.5 table 6.2-1; anything else is unknown. */
static int vr_known(uint16_t vr)
{
    static const char list[] = "AEASATCSDADSDTFLFDISLOLTOBODOFOLOVOWPNSHSLSQSSSTSVTMUCUIULUNURUSUTUV";
    for (size_t i = 0; i + 1 < sizeof list; i += 2)
        if (R3D_VR(list[i], list[i + 1]) == vr)
            return 1;
    return 0;
}

/* VRs whose explicit header is VR, 2 reserved bytes, 4-byte length. */
static int vr_long(uint16_t vr)
{
    switch (vr) {
    case R3D_VR('O', 'B'): case R3D_VR('O', 'D'): case R3D_VR('O', 'F'):
    case R3D_VR('O', 'L'): case R3D_VR('O', 'V'): case R3D_VR('O', 'W'):
    case R3D_VR('S', 'Q'): case R3D_VR('S', 'V'): case R3D_VR('U', 'C'):
    case R3D_VR('U', 'N'): case R3D_VR('U', 'R'): case R3D_VR('U', 'T'):
    case R3D_VR('U', 'V'):
        return 1;
    }
    return 0;
}

static int is_pixel_tag(uint32_t tag)
{
    return tag == TAG_PIXEL_DATA || tag == R3D_TAG(0x7FE0, 0x0008) ||
           tag == R3D_TAG(0x7FE0, 0x0009);
}

/* ---- parser state -------------------------------------------------------------- */

typedef struct mode {
    int explicit_vr, big;
} mode;

typedef struct el_vec {
    r3d_dcm_el *v;
    size_t n;
    int64_t cap; /* r3d_grow's */
} el_vec;

typedef struct item_vec {
    r3d_dcm_item *v;
    size_t n;
    int64_t cap;
} item_vec;

#define R3D_DCM_MAX_DEPTH 64

typedef struct pctx {
    r3d_dcm_file *f;
    const uint8_t *base; /* start of the stream being parsed */
    uint64_t base_off;   /* its offset in the reported byte positions */
    unsigned flags;
    r3d_error *err;
    el_vec els[R3D_DCM_MAX_DEPTH + 2];
    item_vec items[R3D_DCM_MAX_DEPTH + 2];
    const uint8_t **frag;
    uint32_t *frag_len;
    size_t n_frag, cap_frag;
} pctx;

static unsigned long long at(const pctx *c, const uint8_t *p)
{
    return (unsigned long long)(c->base_off + (uint64_t)(p - c->base));
}

static r3d_status oom(pctx *c)
{
    return r3d_fail(c->err, R3D_ENOMEM, "%s: out of memory while parsing", c->f->path);
}

static r3d_dcm_el *el_push(pctx *c, int depth)
{
    el_vec *v = &c->els[depth];
    if (v->n == (size_t)v->cap && !r3d_grow((void **)&v->v, &v->cap, v->cap + 1, sizeof *v->v))
        return NULL;
    r3d_dcm_el *e = &v->v[v->n++];
    memset(e, 0, sizeof *e);
    return e;
}

static r3d_dcm_item *item_push(pctx *c, int depth)
{
    item_vec *v = &c->items[depth];
    if (v->n == (size_t)v->cap && !r3d_grow((void **)&v->v, &v->cap, v->cap + 1, sizeof *v->v))
        return NULL;
    r3d_dcm_item *it = &v->v[v->n++];
    memset(it, 0, sizeof *it);
    return it;
}

static void pctx_free(pctx *c)
{
    for (int d = 0; d < R3D_DCM_MAX_DEPTH + 2; d++) {
        free(c->els[d].v);
        free(c->items[d].v);
    }
    free(c->frag);
    free(c->frag_len);
}

static int el_cmp(const void *a, const void *b)
{
    const r3d_dcm_el *x = a, *y = b;
    if (x->tag != y->tag)
        return x->tag < y->tag ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* ---- recursive descent ---------------------------------------------------------- */

static r3d_status parse_dataset(pctx *c, const uint8_t *p, const uint8_t *end, int depth, mode m,
                                int undef_item, int meta_only, const uint8_t **pend,
                                r3d_dcm_item *out);

/* Items of a sequence whose value starts at p. Items land in items[depth]
 * and their data sets in els[depth] (depth = nesting of the items). */
static r3d_status parse_sequence(pctx *c, const uint8_t *p, const uint8_t *end, int depth, mode m,
                                 int undefined, uint32_t sq_tag, uint64_t sq_off,
                                 const uint8_t **pend, r3d_dcm_item **items_out, uint32_t *n_out)
{
    r3d_status st = R3D_OK;
    size_t base = c->items[depth].n;
    const char *path = c->f->path;
    if (depth > R3D_DCM_MAX_DEPTH)
        return r3d_fail(c->err, R3D_EFORMAT,
                        "%s: sequence (%04X,%04X) at byte %llu is nested deeper than %d levels",
                        path, sq_tag >> 16, sq_tag & 0xFFFF, (unsigned long long)sq_off,
                        R3D_DCM_MAX_DEPTH);
    for (;;) {
        if (p >= end) {
            if (undefined) {
                st = r3d_fail(c->err, R3D_EFORMAT,
                              "%s: sequence (%04X,%04X) at byte %llu ends at byte %llu without "
                              "a sequence delimiter (FFFE,E0DD)",
                              path, sq_tag >> 16, sq_tag & 0xFFFF, (unsigned long long)sq_off,
                              at(c, p));
                goto out;
            }
            break;
        }
        if (end - p < 8) {
            st = r3d_fail(c->err, R3D_EFORMAT,
                          "%s: item header at byte %llu in sequence (%04X,%04X) needs 8 bytes "
                          "but only %zu remain",
                          path, at(c, p), sq_tag >> 16, sq_tag & 0xFFFF, (size_t)(end - p));
            goto out;
        }
        uint32_t tag = rdtag(p, m.big), len = rd32(p + 4, m.big);
        if (tag == TAG_SEQ_DELIM) {
            p += 8;
            if (undefined)
                break;
            continue; /* stray delimiter in a defined-length sequence: harmless */
        }
        if (tag != TAG_ITEM) {
            st = r3d_fail(c->err, R3D_EFORMAT,
                          "%s: sequence (%04X,%04X) at byte %llu: expected an item tag "
                          "(FFFE,E000) at byte %llu but found (%04X,%04X)",
                          path, sq_tag >> 16, sq_tag & 0xFFFF, (unsigned long long)sq_off,
                          at(c, p), tag >> 16, tag & 0xFFFF);
            goto out;
        }
        const uint8_t *item_at = p;
        p += 8;
        r3d_dcm_item *it = item_push(c, depth);
        if (!it) {
            st = oom(c);
            goto out;
        }
        r3d_dcm_item tmp;
        if (len == R3D_DCM_UNDEFINED) {
            st = parse_dataset(c, p, end, depth, m, 1, 0, &p, &tmp);
        } else {
            if (len > (size_t)(end - p)) {
                st = r3d_fail(c->err, R3D_EFORMAT,
                              "%s: item at byte %llu in sequence (%04X,%04X) has length %u but "
                              "only %zu bytes remain",
                              path, at(c, item_at), sq_tag >> 16, sq_tag & 0xFFFF, len,
                              (size_t)(end - p));
                goto out;
            }
            const uint8_t *dummy;
            st = parse_dataset(c, p, p + len, depth, m, 0, 0, &dummy, &tmp);
            p += len;
        }
        if (st != R3D_OK)
            goto out;
        /* parse_dataset may have grown items[depth] (never: nested items
         * use depth+1), so index, not the pointer, is the safe reference. */
        c->items[depth].v[c->items[depth].n - 1] = tmp;
    }
    {
        size_t n = c->items[depth].n - base;
        r3d_dcm_item *arr = NULL;
        if (n) {
            arr = arena_alloc(&c->f->mem, n * sizeof *arr);
            if (!arr) {
                st = oom(c);
                goto out;
            }
            memcpy(arr, c->items[depth].v + base, n * sizeof *arr);
        }
        *items_out = arr;
        *n_out = (uint32_t)n;
        *pend = p;
    }
out:
    c->items[depth].n = base;
    return st;
}

/* Encapsulated pixel data (PS3.5 §A.4): items until (FFFE,E0DD); the first
 * is the Basic Offset Table, the rest are fragments. Always little endian. */
static r3d_status parse_encapsulated(pctx *c, const uint8_t *p, const uint8_t *end,
                                     r3d_dcm_el *el, const uint8_t **pend)
{
    const char *path = c->f->path;
    int first = 1;
    c->n_frag = 0;
    for (;;) {
        if (end - p < 8)
            return r3d_fail(c->err, R3D_EFORMAT,
                            "%s: encapsulated pixel data (%04X,%04X) at byte %llu ends at byte "
                            "%llu without a sequence delimiter (FFFE,E0DD)",
                            path, el->tag >> 16, el->tag & 0xFFFF,
                            (unsigned long long)el->offset, at(c, p));
        uint32_t tag = rdtag(p, 0), len = rd32(p + 4, 0);
        if (tag == TAG_SEQ_DELIM) {
            p += 8;
            break;
        }
        if (tag != TAG_ITEM)
            return r3d_fail(c->err, R3D_EFORMAT,
                            "%s: encapsulated pixel data at byte %llu: expected a fragment item "
                            "(FFFE,E000) at byte %llu but found (%04X,%04X)",
                            path, (unsigned long long)el->offset, at(c, p), tag >> 16,
                            tag & 0xFFFF);
        if (len == R3D_DCM_UNDEFINED || len > (size_t)(end - p) - 8)
            return r3d_fail(c->err, R3D_EFORMAT,
                            "%s: pixel data fragment at byte %llu has length %u but only %zu "
                            "bytes remain",
                            path, at(c, p), len, (size_t)(end - p) - 8);
        p += 8;
        if (first) {
            el->bot = len ? p : NULL;
            el->bot_len = len;
            first = 0;
        } else {
            if (c->n_frag == c->cap_frag) {
                size_t cap = c->cap_frag ? c->cap_frag * 2 : 64;
                const uint8_t **nf = realloc(c->frag, cap * sizeof *nf);
                if (!nf)
                    return oom(c);
                c->frag = nf;
                uint32_t *nl = realloc(c->frag_len, cap * sizeof *nl);
                if (!nl)
                    return oom(c);
                c->frag_len = nl;
                c->cap_frag = cap;
            }
            c->frag[c->n_frag] = p;
            c->frag_len[c->n_frag] = len;
            c->n_frag++;
        }
        p += len;
    }
    if (c->n_frag) {
        el->frag = arena_alloc(&c->f->mem, c->n_frag * sizeof *el->frag);
        el->frag_len = arena_alloc(&c->f->mem, c->n_frag * sizeof *el->frag_len);
        if (!el->frag || !el->frag_len)
            return oom(c);
        memcpy(el->frag, c->frag, c->n_frag * sizeof *el->frag);
        memcpy(el->frag_len, c->frag_len, c->n_frag * sizeof *el->frag_len);
    }
    el->n_frag = (uint32_t)c->n_frag;
    *pend = p;
    return R3D_OK;
}

/* Try to read a defined-length value as a sequence (an element whose VR we
 * do not know but whose value starts with an item tag, or UN whose dictionary
 * VR is SQ). On failure the element stays opaque; nothing is reported. */
static int try_sequence(pctx *c, const uint8_t *p, uint32_t len, int depth, mode m,
                        uint32_t tag, uint64_t off, r3d_dcm_item **items, uint32_t *n)
{
    r3d_error quiet = R3D_ERROR_INIT;
    r3d_error *saved = c->err;
    const uint8_t *pend;
    c->err = &quiet;
    r3d_status st = parse_sequence(c, p, p + len, depth + 1, m, 0, tag, off, &pend, items, n);
    c->err = saved;
    return st == R3D_OK;
}

static r3d_status parse_dataset(pctx *c, const uint8_t *p, const uint8_t *end, int depth, mode m,
                                int undef_item, int meta_only, const uint8_t **pend,
                                r3d_dcm_item *out)
{
    const char *path = c->f->path;
    size_t base = c->els[depth].n;
    const uint8_t *item_start = p;
    int delimited = 0;
    r3d_status st = R3D_OK;
    while (p < end) {
        if (end - p < 8) {
            /* Zero padding after the last element is common; anything else
             * is a cut element header. */
            const uint8_t *q = p;
            while (q < end && *q == 0)
                q++;
            if (q == end && depth == 0) {
                p = end;
                break;
            }
            st = r3d_fail(c->err, R3D_EFORMAT,
                          "%s: element header at byte %llu needs at least 8 bytes but only %zu "
                          "remain",
                          path, at(c, p), (size_t)(end - p));
            goto out;
        }
        const uint8_t *el_at = p;
        uint32_t tag = rdtag(p, m.big);
        if (meta_only && (tag >> 16) != 0x0002)
            break;
        if ((tag >> 16) == 0xFFFE) {
            if (tag == TAG_ITEM_DELIM && undef_item) {
                p += 8;
                delimited = 1;
                break;
            }
            if (tag == TAG_SEQ_DELIM && undef_item) {
                /* The item lost its delimiter; leave the sequence delimiter
                 * to the sequence. */
                delimited = 1;
                break;
            }
            if (tag == TAG_ITEM_DELIM || tag == TAG_SEQ_DELIM) {
                p += 8; /* stray delimiter outside an undefined item */
                continue;
            }
            st = r3d_fail(c->err, R3D_EFORMAT,
                          "%s: unexpected item tag (%04X,%04X) at byte %llu outside a sequence",
                          path, tag >> 16, tag & 0xFFFF, at(c, p));
            goto out;
        }
        uint16_t vr;
        uint32_t len;
        size_t hdr;
        uint16_t dict_vr = r3d_dcm_dict_vr(tag);
        if (m.explicit_vr && is_vr_chars(p + 4)) {
            vr = R3D_VR(p[4], p[5]);
            if (vr_long(vr) || (!vr_known(vr) && p[6] == 0 && p[7] == 0)) {
                if (end - p < 12) {
                    st = r3d_fail(c->err, R3D_EFORMAT,
                                  "%s: element (%04X,%04X) at byte %llu: header needs 12 bytes "
                                  "but only %zu remain",
                                  path, tag >> 16, tag & 0xFFFF, at(c, p), (size_t)(end - p));
                    goto out;
                }
                len = rd32(p + 8, m.big);
                hdr = 12;
            } else {
                len = rd16(p + 6, m.big);
                hdr = 8;
            }
        } else {
            /* Implicit VR, or an explicit-VR file whose VR bytes are not
             * letters: read this element as implicit (what pydicom does
             * when the declared syntax disagrees with the bytes). */
            vr = dict_vr;
            len = rd32(p + 4, m.big);
            hdr = 8;
        }
        p += hdr;
        if (c->flags & R3D_DCM_HEADER_ONLY && depth == 0 && is_pixel_tag(tag)) {
            /* The length is still checked (it costs no pixel byte). */
            if (len != R3D_DCM_UNDEFINED && len > (size_t)(end - p)) {
                st = r3d_fail(c->err, R3D_EFORMAT,
                              "%s: element (%04X,%04X) at byte %llu has length %u but only %zu "
                              "bytes remain",
                              path, tag >> 16, tag & 0xFFFF, at(c, el_at), len,
                              (size_t)(end - p));
                goto out;
            }
            r3d_dcm_el *e = el_push(c, depth);
            if (!e) {
                st = oom(c);
                goto out;
            }
            e->tag = tag;
            e->vr = vr;
            e->len = len;
            e->offset = at(c, el_at);
            p = end;
            break;
        }
        r3d_dcm_el *e = el_push(c, depth);
        if (!e) {
            st = oom(c);
            goto out;
        }
        size_t ei = c->els[depth].n - 1;
        e->tag = tag;
        e->vr = vr;
        e->len = len;
        e->offset = at(c, el_at);
        r3d_dcm_item *items = NULL;
        uint32_t n_items = 0;
        int is_sq = vr == R3D_VR('S', 'Q') || (vr == 0 && dict_vr == R3D_VR('S', 'Q'));
        if (len == R3D_DCM_UNDEFINED) {
            if (is_pixel_tag(tag) ||
                ((vr == R3D_VR('O', 'B') || vr == R3D_VR('O', 'W')) && !is_sq)) {
                r3d_dcm_el tmp = *e;
                st = parse_encapsulated(c, p, end, &tmp, &p);
                if (st != R3D_OK)
                    goto out;
                c->els[depth].v[ei] = tmp;
                continue;
            }
            if (!is_sq && vr != R3D_VR('U', 'N') && vr != 0 && vr_known(vr)) {
                st = r3d_fail(c->err, R3D_EFORMAT,
                              "%s: element (%04X,%04X) at byte %llu has undefined length but "
                              "VR %c%c cannot have one",
                              path, tag >> 16, tag & 0xFFFF, at(c, el_at), vr >> 8, vr & 0xFF);
                goto out;
            }
            /* SQ, or UN / unknown with undefined length: a sequence; UN's
             * content is implicit VR little endian (CP-246). */
            mode sm = m;
            if (vr == R3D_VR('U', 'N')) {
                sm.explicit_vr = 0;
                sm.big = 0;
            }
            st = parse_sequence(c, p, end, depth + 1, sm, 1, tag, e->offset, &p, &items,
                                &n_items);
            if (st != R3D_OK)
                goto out;
            e = &c->els[depth].v[ei];
            e->items = items;
            e->n_items = n_items;
            if (vr == R3D_VR('U', 'N'))
                e->vr = R3D_VR('S', 'Q');
            continue;
        }
        if (len > (size_t)(end - p)) {
            st = r3d_fail(c->err, R3D_EFORMAT,
                          "%s: element (%04X,%04X) at byte %llu has length %u but only %zu bytes "
                          "remain",
                          path, tag >> 16, tag & 0xFFFF, at(c, el_at), len, (size_t)(end - p));
            goto out;
        }
        if (is_sq) {
            const uint8_t *q;
            st = parse_sequence(c, p, p + len, depth + 1, m, 0, tag, e->offset, &q, &items,
                                &n_items);
            if (st != R3D_OK)
                goto out;
            e = &c->els[depth].v[ei];
            e->items = items;
            e->n_items = n_items;
            e->vr = R3D_VR('S', 'Q');
        } else if (len >= 8 && (tag >> 16) != 0x7FE0 &&
                   ((vr == R3D_VR('U', 'N') && dict_vr == R3D_VR('S', 'Q')) ||
                    ((vr == 0 || vr == R3D_VR('U', 'N')) && rdtag(p, m.big) == TAG_ITEM &&
                     (rd32(p + 4, m.big) == R3D_DCM_UNDEFINED ||
                      rd32(p + 4, m.big) <= len - 8)) ||
                    (vr == R3D_VR('U', 'N') && rdtag(p, 0) == TAG_ITEM))) {
            mode sm = m;
            if (vr == R3D_VR('U', 'N')) {
                sm.explicit_vr = 0;
                sm.big = 0;
            }
            if (try_sequence(c, p, len, depth, sm, tag, e->offset, &items, &n_items)) {
                e = &c->els[depth].v[ei];
                e->items = items;
                e->n_items = n_items;
                e->vr = R3D_VR('S', 'Q');
            } else {
                e = &c->els[depth].v[ei];
                e->val = p;
            }
        } else {
            e->val = p;
        }
        p += len;
    }
    if (undef_item && !delimited) {
        st = r3d_fail(c->err, R3D_EFORMAT,
                      "%s: item starting at byte %llu has no item delimiter (FFFE,E00D) before "
                      "byte %llu",
                      path, at(c, item_start) - 8, at(c, end));
        goto out;
    }
    {
        size_t n = c->els[depth].n - base;
        r3d_dcm_el *arr = NULL;
        if (n) {
            arr = arena_alloc(&c->f->mem, n * sizeof *arr);
            if (!arr) {
                st = oom(c);
                goto out;
            }
            memcpy(arr, c->els[depth].v + base, n * sizeof *arr);
            for (size_t i = 1; i < n; i++)
                if (arr[i].tag < arr[i - 1].tag) {
                    /* Out of order (broken writers): sort so lookups can
                     * bisect; equal tags keep their file order. */
                    qsort(arr, n, sizeof *arr, el_cmp);
                    break;
                }
        }
        out->el = arr;
        out->n = (uint32_t)n;
        *pend = p;
    }
out:
    c->els[depth].n = base;
    return st;
}

/* ---- syntax detection ------------------------------------------------------- */

static int ts_is(const char *ts, const char *uid)
{
    return strcmp(ts, uid) == 0;
}

/* Can a data set plausibly start at p with this encoding? Used to guess the
 * encoding of files without meta, and to catch files whose data set
 * contradicts their declared transfer syntax. */
static int plausible_first(const uint8_t *p, size_t n, mode m, int strict)
{
    if (n < 8)
        return 0;
    uint32_t tag = rdtag(p, m.big);
    uint16_t g = (uint16_t)(tag >> 16);
    /* Without a DICM marker only the groups a data set starts with count,
     * so that other files are recognised as "not DICOM"; after a marker
     * any group up to the pixel data may come first. */
    if (strict ? ((g & 1) || g < 0x0002 || g > 0x0030) : (g == 0 || g > 0x7FE0))
        return 0;
    if (m.explicit_vr) {
        if (!is_vr_chars(p + 4) || !vr_known(R3D_VR(p[4], p[5])))
            return 0;
        return 1;
    }
    uint32_t len = rd32(p + 4, m.big);
    return len == R3D_DCM_UNDEFINED || len <= n - 8;
}

static int guess_mode(const uint8_t *p, size_t n, mode *m, int strict)
{
    static const mode order[] = {{1, 0}, {0, 0}, {1, 1}, {0, 1}};
    for (int i = 0; i < 4; i++)
        if (plausible_first(p, n, order[i], strict)) {
            *m = order[i];
            return 1;
        }
    return 0;
}

/* The declared syntax disagrees with the bytes in some real files (explicit
 * declared, implicit written and the reverse): trust the bytes, as pydicom
 * does, when the first element says so unambiguously. */
static void check_mode(const uint8_t *p, size_t n, mode *m)
{
    if (n < 8)
        return;
    uint32_t tag = rdtag(p, m->big);
    if (m->explicit_vr && !is_vr_chars(p + 4)) {
        mode im = {0, m->big};
        if (plausible_first(p, n, im, 0))
            *m = im;
    } else if (!m->explicit_vr && is_vr_chars(p + 4)) {
        uint16_t dv = r3d_dcm_dict_vr(tag);
        if (dv && dv == R3D_VR(p[4], p[5]))
            m->explicit_vr = 1;
    }
}

/* Raw deflate (PS3.5 §A.5), with a fallback to zlib/gzip framing that some
 * writers use by mistake. Bounded by INFLATE_MAX. */
static r3d_status inflate_body(r3d_dcm_file *f, const uint8_t *in, size_t n, uint64_t off,
                               uint8_t **out, size_t *out_n, r3d_error *err)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        if (inflateInit2(&zs, attempt == 0 ? -15 : 15 + 32) != Z_OK)
            return r3d_fail(err, R3D_ENOMEM, "%s: cannot start inflating the deflated data set",
                            f->path);
        size_t cap = n < ((size_t)1 << 20) ? ((size_t)1 << 22) : n * 4, len = 0;
        if (cap > INFLATE_MAX)
            cap = INFLATE_MAX;
        uint8_t *buf = malloc(cap + 1);
        if (!buf) {
            inflateEnd(&zs);
            return r3d_fail(err, R3D_ENOMEM, "%s: out of memory inflating the data set",
                            f->path);
        }
        size_t in_left = n;
        const uint8_t *ip = in;
        int zr = Z_OK;
        for (;;) {
            if (len == cap) {
                if (cap >= INFLATE_MAX) {
                    zr = Z_MEM_ERROR;
                    break;
                }
                size_t nc = cap * 2 > INFLATE_MAX ? INFLATE_MAX : cap * 2;
                uint8_t *nb = realloc(buf, nc + 1);
                if (!nb) {
                    zr = Z_MEM_ERROR;
                    break;
                }
                buf = nb;
                cap = nc;
            }
            uInt chunk_in = in_left > 0x40000000u ? 0x40000000u : (uInt)in_left;
            uInt chunk_out = cap - len > 0x40000000u ? 0x40000000u : (uInt)(cap - len);
            zs.next_in = (Bytef *)ip;
            zs.avail_in = chunk_in;
            zs.next_out = buf + len;
            zs.avail_out = chunk_out;
            zr = inflate(&zs, Z_NO_FLUSH);
            ip += chunk_in - zs.avail_in;
            in_left -= chunk_in - zs.avail_in;
            len += chunk_out - zs.avail_out;
            if (zr == Z_STREAM_END)
                break;
            if (zr == Z_BUF_ERROR && in_left == 0)
                break; /* stream cut short: take what inflated */
            if (zr != Z_OK)
                break;
        }
        inflateEnd(&zs);
        if (zr == Z_STREAM_END || (zr == Z_BUF_ERROR && len > 0)) {
            *out = buf;
            *out_n = len;
            return R3D_OK;
        }
        free(buf);
        if (zr == Z_MEM_ERROR)
            return r3d_fail(err, R3D_EFORMAT,
                            "%s: deflated data set at byte %llu inflates beyond %zu bytes",
                            f->path, (unsigned long long)off, INFLATE_MAX);
    }
    return r3d_fail(err, R3D_EFORMAT, "%s: deflated data set at byte %llu is not valid deflate data",
                    f->path, (unsigned long long)off);
}

/* ---- open / parse / close ------------------------------------------------------ */

void r3d_dcm_close(r3d_dcm_file *f)
{
    if (!f)
        return;
    if (f->mapped)
        munmap(f->buf, f->n);
    else if (f->own)
        free(f->buf);
    free(f->inflated);
    arena_free(&f->mem);
    free(f->path);
    free(f);
}

static void trim_copy(char *dst, size_t cap, const uint8_t *s, size_t n)
{
    while (n && (s[n - 1] == ' ' || s[n - 1] == 0))
        n--;
    while (n && (s[0] == ' ' || s[0] == 0)) {
        s++;
        n--;
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = 0;
}

static r3d_status parse_all(r3d_dcm_file *f, unsigned flags, r3d_error *err)
{
    const uint8_t *buf = f->buf;
    size_t n = f->n, pos = 0;
    int magic = 0;
    pctx *c = calloc(1, sizeof *c);
    if (!c)
        return r3d_fail(err, R3D_ENOMEM, "%s: out of memory", f->path);
    c->f = f;
    c->err = err;
    c->flags = flags;
    c->base = buf;
    r3d_status st = R3D_OK;

    if (n >= 132 && memcmp(buf + 128, "DICM", 4) == 0) {
        pos = 132;
        magic = 1;
    } else if (n >= 4 && memcmp(buf, "DICM", 4) == 0) {
        pos = 4; /* preamble missing, marker kept: seen from some writers */
        magic = 1;
    }

    /* File meta: group 0002, explicit VR LE by the standard; parsed with
     * the same code, stopping at the first element of another group. */
    if (n - pos >= 8 && rd16(buf + pos, 0) == 0x0002 && (magic || is_vr_chars(buf + pos + 4))) {
        mode mm = {is_vr_chars(buf + pos + 4), 0};
        const uint8_t *q;
        st = parse_dataset(c, buf + pos, buf + n, 0, mm, 0, 1, &q, &f->meta);
        if (st != R3D_OK)
            goto out;
        pos = (size_t)(q - buf);
        magic = 1;
    }
    const r3d_dcm_el *ts_el = r3d_dcm_find(&f->meta, TAG_TS_UID);
    if (ts_el && ts_el->val)
        trim_copy(f->ts, sizeof f->ts, ts_el->val, ts_el->len);

    mode m = {1, 0};
    int known = 1;
    if (ts_is(f->ts, "1.2.840.10008.1.2"))
        m.explicit_vr = 0;
    else if (ts_is(f->ts, "1.2.840.10008.1.2.2"))
        m.big = 1;
    else if (!f->ts[0] || !r3d_dcm_ts_name(f->ts))
        known = 0; /* missing or private syntax: go by the bytes */

    const uint8_t *body = buf + pos, *body_end = buf + n;
    if (ts_is(f->ts, "1.2.840.10008.1.2.1.99") && pos < n) {
        size_t in_n = 0;
        st = inflate_body(f, body, n - pos, pos, &f->inflated, &in_n, err);
        if (st != R3D_OK)
            goto out;
        c->base = f->inflated;
        c->base_off = pos;
        body = f->inflated;
        body_end = f->inflated + in_n;
    }
    size_t body_n = (size_t)(body_end - body);
    if (!known) {
        if (!guess_mode(body, body_n, &m, !magic)) {
            if (!magic) {
                st = r3d_fail(err, R3D_EFORMAT,
                              "%s: not a DICOM file (no DICM marker and the first bytes are "
                              "not a data element)",
                              f->path);
                goto out;
            }
            m.explicit_vr = 1; /* a meta-only file, or garbage reported below */
            m.big = 0;
        }
    } else {
        check_mode(body, body_n, &m);
    }
    f->big_endian = m.big;
    f->explicit_vr = m.explicit_vr;
    {
        const uint8_t *q;
        st = parse_dataset(c, body, body_end, 0, m, 0, 0, &q, &f->root);
    }
out:
    pctx_free(c);
    free(c);
    return st;
}

r3d_dcm_file *r3d_dcm_parse(uint8_t *buf, size_t n, int own, const char *name, unsigned flags,
                            r3d_error *err)
{
    r3d_dcm_file *f = calloc(1, sizeof *f);
    const char *nm = name ? name : "(memory)";
    if (!f || !(f->path = strdup(nm))) {
        free(f);
        if (own)
            free(buf);
        r3d_fail(err, R3D_ENOMEM, "%s: out of memory", nm);
        return NULL;
    }
    f->buf = buf;
    f->n = buf ? n : 0;
    f->own = own;
    if (f->n == 0) {
        r3d_fail(err, R3D_EFORMAT, "%s: not a DICOM file (empty)", f->path);
        r3d_dcm_close(f);
        return NULL;
    }
    if (parse_all(f, flags, err) != R3D_OK) {
        r3d_dcm_close(f);
        return NULL;
    }
    return f;
}

r3d_dcm_file *r3d_dcm_open(const char *path, unsigned flags, r3d_error *err)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        r3d_fail(err, R3D_EIO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        r3d_fail(err, R3D_EIO, "%s: not a regular file", path);
        return NULL;
    }
    if (st.st_size == 0) {
        close(fd);
        r3d_fail(err, R3D_EFORMAT, "%s: not a DICOM file (empty)", path);
        return NULL;
    }
    /* mmap: header-only scans touch just the header's pages. */
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map != MAP_FAILED) {
        r3d_dcm_file *f = calloc(1, sizeof *f);
        if (!f || !(f->path = strdup(path))) {
            free(f);
            munmap(map, (size_t)st.st_size);
            r3d_fail(err, R3D_ENOMEM, "%s: out of memory", path);
            return NULL;
        }
        f->buf = map;
        f->n = (size_t)st.st_size;
        f->mapped = 1;
        if (parse_all(f, flags, err) != R3D_OK) {
            r3d_dcm_close(f);
            return NULL;
        }
        return f;
    }
    uint8_t *buf;
    size_t n;
    if (r3d_file_read_all(path, &buf, &n, err) != R3D_OK)
        return NULL;
    return r3d_dcm_parse(buf, n, 1, path, flags, err);
}

int r3d_dcm_error_is_not_dicom(const r3d_error *err)
{
    return err && err->code == R3D_EFORMAT && strstr(err->msg, ": not a DICOM file") != NULL;
}

/* ---- accessors -------------------------------------------------------------------- */

const char *r3d_dcm_path(const r3d_dcm_file *f) { return f->path; }
const char *r3d_dcm_transfer_syntax(const r3d_dcm_file *f) { return f->ts; }
int r3d_dcm_big_endian(const r3d_dcm_file *f) { return f->big_endian; }
const r3d_dcm_item *r3d_dcm_root(const r3d_dcm_file *f) { return &f->root; }
const r3d_dcm_item *r3d_dcm_meta(const r3d_dcm_file *f) { return &f->meta; }

const r3d_dcm_el *r3d_dcm_find(const r3d_dcm_item *it, uint32_t tag)
{
    if (!it || !it->n)
        return NULL;
    size_t lo = 0, hi = it->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (it->el[mid].tag < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < it->n && it->el[lo].tag == tag ? &it->el[lo] : NULL;
}

const r3d_dcm_item *r3d_dcm_seq_item(const r3d_dcm_item *it, uint32_t tag, uint32_t k)
{
    const r3d_dcm_el *e = r3d_dcm_find(it, tag);
    if (!e || k >= e->n_items)
        return NULL;
    return &e->items[k];
}

/* The VR to interpret a value with: the file's, unless it is UN or absent. */
static uint16_t effective_vr(const r3d_dcm_el *e)
{
    if (e->vr && e->vr != R3D_VR('U', 'N'))
        return e->vr;
    uint16_t d = r3d_dcm_dict_vr(e->tag);
    return d ? d : e->vr;
}

static int el_big(const r3d_dcm_file *f, const r3d_dcm_el *e)
{
    return f && f->big_endian && (e->tag >> 16) != 0x0002;
}

static int binary_width(uint16_t vr)
{
    switch (vr) {
    case R3D_VR('O', 'B'): return 1;
    case R3D_VR('U', 'S'): case R3D_VR('S', 'S'): case R3D_VR('O', 'W'): return 2;
    case R3D_VR('U', 'L'): case R3D_VR('S', 'L'): case R3D_VR('F', 'L'):
    case R3D_VR('O', 'F'): case R3D_VR('O', 'L'): case R3D_VR('A', 'T'): return 4;
    case R3D_VR('F', 'D'): case R3D_VR('O', 'D'): case R3D_VR('S', 'V'):
    case R3D_VR('U', 'V'): case R3D_VR('O', 'V'): return 8;
    }
    return 0;
}

static double binary_value(const uint8_t *p, uint16_t vr, int big)
{
    uint64_t u = 0;
    int w = binary_width(vr);
    for (int i = 0; i < w; i++)
        u |= (uint64_t)p[big ? w - 1 - i : i] << (8 * i);
    switch (vr) {
    case R3D_VR('S', 'S'): return (double)(int16_t)u;
    case R3D_VR('S', 'L'): return (double)(int32_t)u;
    case R3D_VR('S', 'V'): return (double)(int64_t)u;
    case R3D_VR('F', 'L'): case R3D_VR('O', 'F'): {
        uint32_t v = (uint32_t)u;
        float x;
        memcpy(&x, &v, 4);
        return x;
    }
    case R3D_VR('F', 'D'): case R3D_VR('O', 'D'): {
        double x;
        memcpy(&x, &u, 8);
        return x;
    }
    case R3D_VR('A', 'T'): /* tag: group word then element word */
        return (double)((u & 0xFFFF) << 16 | (u >> 16));
    }
    return (double)u;
}

/* Text values: backslash-separated, each padded with spaces. An unparsable
 * value is stored as NaN so later values keep their position.
 * strtod follows LC_NUMERIC; the library never changes the locale, and
 * programs that do must keep LC_NUMERIC "C". */
static int parse_text_numbers(const uint8_t *s, size_t n, double *out, int max)
{
    int k = 0, any = 0;
    size_t i = 0;
    while (k < max) {
        size_t j = i;
        while (j < n && s[j] != '\\')
            j++;
        size_t a = i, b = j;
        while (a < b && (s[a] == ' ' || s[a] == 0))
            a++;
        while (b > a && (s[b - 1] == ' ' || s[b - 1] == 0))
            b--;
        char tmp[72];
        size_t len = b - a < sizeof tmp - 1 ? b - a : sizeof tmp - 1;
        memcpy(tmp, s + a, len);
        tmp[len] = 0;
        char *endp = tmp;
        double v = len ? strtod(tmp, &endp) : NAN;
        if (endp == tmp)
            v = NAN;
        if (!isnan(v))
            any = 1;
        out[k++] = v;
        if (j >= n)
            break;
        i = j + 1;
    }
    return any ? k : 0;
}

int r3d_dcm_num(const r3d_dcm_file *f, const r3d_dcm_item *it, uint32_t tag, double *out, int max)
{
    const r3d_dcm_el *e = r3d_dcm_find(it, tag);
    if (!e || !e->val || e->len == 0 || max <= 0 || e->len == R3D_DCM_UNDEFINED)
        return 0;
    uint16_t vr = effective_vr(e);
    int w = binary_width(vr);
    if (w) {
        int big = el_big(f, e), k = 0;
        for (size_t o = 0; o + (size_t)w <= e->len && k < max; o += (size_t)w)
            out[k++] = binary_value(e->val + o, vr, big);
        return k;
    }
    return parse_text_numbers(e->val, e->len, out, max);
}

double r3d_dcm_num1(const r3d_dcm_file *f, const r3d_dcm_item *it, uint32_t tag, double def)
{
    double v;
    return r3d_dcm_num(f, it, tag, &v, 1) == 1 && !isnan(v) ? v : def;
}

/* VRs whose value is one text, where a backslash is just a character. */
static int single_text(uint16_t vr)
{
    return vr == R3D_VR('L', 'T') || vr == R3D_VR('S', 'T') || vr == R3D_VR('U', 'T') ||
           vr == R3D_VR('U', 'R');
}

int r3d_dcm_str(const r3d_dcm_file *f, const r3d_dcm_item *it, uint32_t tag, int index, char *out,
                size_t cap)
{
    if (!out || cap == 0)
        return 0;
    out[0] = 0;
    const r3d_dcm_el *e = r3d_dcm_find(it, tag);
    if (!e || !e->val || e->len == 0 || e->len == R3D_DCM_UNDEFINED)
        return 0;
    uint16_t vr = effective_vr(e);
    if (binary_width(vr) && vr != R3D_VR('O', 'B')) {
        /* Numbers as text ("512", "0.5\1"), so callers can print any value. */
        double v[64];
        int k = r3d_dcm_num(f, it, tag, v, 64);
        size_t used = 0;
        for (int i = 0; i < k; i++) {
            if (index >= 0 && i != index)
                continue;
            int w = snprintf(out + used, cap - used, "%s%.17g", used ? "\\" : "", v[i]);
            if (w < 0 || (size_t)w >= cap - used) {
                out[cap - 1] = 0;
                break;
            }
            used += (size_t)w;
        }
        return out[0] != 0;
    }
    const uint8_t *s = e->val;
    size_t n = e->len;
    if (index >= 0 && !single_text(vr)) {
        for (int k = 0; k < index; k++) {
            const uint8_t *bs = memchr(s, '\\', n);
            if (!bs)
                return 0;
            n -= (size_t)(bs + 1 - s);
            s = bs + 1;
        }
        const uint8_t *bs = memchr(s, '\\', n);
        if (bs)
            n = (size_t)(bs - s);
    } else if (index > 0) {
        return 0;
    }
    trim_copy(out, cap, s, n);
    return out[0] != 0;
}

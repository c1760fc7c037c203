/* writer.c - DICOM Part 10 files from an in-memory data set, and the UIDs
 * recon3d creates.
 *
 * What: r3d_dcm_ds is one data set (or sequence item): a vector of elements
 * kept sorted by tag, each owning its value bytes (already little endian and
 * padded to even length), its sequence items, or its encapsulated fragments.
 * r3d_dcm_write_mem serialises it as PS3.10 §7.1 wants: 128 zero bytes,
 * "DICM", group 0002 in explicit VR little endian headed by its group length
 * (0002,0000), then the data set in explicit VR little endian (PS3.5 §7.1.2;
 * 2-byte lengths for the short VRs, 4-byte for OB OD OF OL OV OW SQ SV UC UN
 * UR UT UV). Sequences and items get defined lengths, computed bottom-up
 * before anything is written; encapsulated pixel data (PS3.5 §A.4) is the one
 * undefined-length element: an item for the Basic Offset Table, one per
 * fragment, and a sequence delimiter.
 *
 * Character set: strings are UTF-8; when any text element of the tree holds a
 * byte >= 0x80 and the top data set has no SpecificCharacterSet, "ISO_IR 192"
 * is written (PS3.5 §6.1.2.3). A caller copying bytes from a file in another
 * character set copies its (0008,0005) too, and the writer leaves it alone.
 *
 * UIDs: "2.25.<decimal of a 128-bit UUID>" (PS3.5 §B.2), version 4 from
 * /dev/urandom for new objects, version 8 for keyed-hash replacements.
 *
 * Cost: one pass to size the tree, one to write into a single buffer.
 */
#include "r3d/dicom_write.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TAG_ITEM R3D_TAG(0xFFFE, 0xE000)
#define TAG_ITEM_DELIM R3D_TAG(0xFFFE, 0xE00D)
#define TAG_SEQ_DELIM R3D_TAG(0xFFFE, 0xE0DD)

/* ---- UIDs ------------------------------------------------------------------ */

r3d_status r3d_random_bytes(void *out, size_t n, r3d_error *err)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return r3d_fail(err, R3D_EIO, "/dev/urandom: cannot open: %s", strerror(errno));
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (uint8_t *)out + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            close(fd);
            return r3d_fail(err, R3D_EIO, "/dev/urandom: short read");
        }
        got += (size_t)r;
    }
    close(fd);
    return R3D_OK;
}

void r3d_uid_from_128(const uint8_t v[16], int version, char out[65])
{
    uint8_t b[16];
    memcpy(b, v, 16);
    b[6] = (uint8_t)((b[6] & 0x0F) | (version << 4)); /* RFC 9562 version nibble */
    b[8] = (uint8_t)((b[8] & 0x3F) | 0x80);           /* variant 10 */
    /* Decimal of a big-endian 128-bit integer: repeated division of four
     * 32-bit limbs by 10 (at most 39 digits). */
    uint32_t limb[4];
    for (int i = 0; i < 4; i++)
        limb[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 |
                  (uint32_t)b[4 * i + 2] << 8 | b[4 * i + 3];
    char digits[48];
    int nd = 0;
    for (;;) {
        uint64_t rem = 0;
        int zero = 1;
        for (int i = 0; i < 4; i++) {
            uint64_t cur = rem << 32 | limb[i];
            limb[i] = (uint32_t)(cur / 10);
            rem = cur % 10;
            if (limb[i])
                zero = 0;
        }
        digits[nd++] = (char)('0' + rem);
        if (zero)
            break;
    }
    int k = snprintf(out, 65, "%s.", R3D_UID_ROOT);
    while (nd > 0)
        out[k++] = digits[--nd];
    out[k] = 0;
}

r3d_status r3d_uid_new(char out[65], r3d_error *err)
{
    uint8_t b[16];
    r3d_status st = r3d_random_bytes(b, sizeof b, err);
    if (st != R3D_OK)
        return st;
    r3d_uid_from_128(b, 4, out);
    return R3D_OK;
}

/* SipHash-2-4 as in the reference implementation (github: veorq/SipHash),
 * including its 128-bit output variant. */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                   \
    do {                                                                           \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);                  \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                     \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                     \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);                  \
    } while (0)

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void r3d_siphash(const uint8_t key[16], const void *msg, size_t n, uint8_t *out, int outlen)
{
    const uint8_t *in = msg;
    uint64_t k0 = le64(key), k1 = le64(key + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    if (outlen == 16)
        v1 ^= 0xee;
    size_t full = n - (n % 8);
    for (size_t i = 0; i < full; i += 8) {
        uint64_t m = le64(in + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)n << 56;
    for (size_t i = 0; i < n % 8; i++)
        b |= (uint64_t)in[full + i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= outlen == 16 ? 0xee : 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    put_le64(out, v0 ^ v1 ^ v2 ^ v3);
    if (outlen != 16)
        return;
    v1 ^= 0xdd;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    put_le64(out + 8, v0 ^ v1 ^ v2 ^ v3);
}

/* ---- the data set --------------------------------------------------------------- */

typedef struct wel {
    uint32_t tag;
    uint16_t vr;
    uint8_t *val; /* owned, even length */
    uint32_t len;
    r3d_dcm_ds **items; /* SQ */
    uint32_t n_items;
    int encapsulated;   /* val = BOT; frags below */
    uint8_t **frag;
    uint32_t *frag_len;
    uint32_t n_frag;
} wel;

struct r3d_dcm_ds {
    wel *el;
    size_t n, cap;
};

r3d_dcm_ds *r3d_dcm_ds_new(void) { return calloc(1, sizeof(r3d_dcm_ds)); }

static void wel_clear(wel *e)
{
    free(e->val);
    for (uint32_t i = 0; i < e->n_items; i++)
        r3d_dcm_ds_free(e->items[i]);
    free(e->items);
    for (uint32_t i = 0; i < e->n_frag; i++)
        free(e->frag[i]);
    free(e->frag);
    free(e->frag_len);
    memset(e, 0, sizeof *e);
}

void r3d_dcm_ds_free(r3d_dcm_ds *ds)
{
    if (!ds)
        return;
    for (size_t i = 0; i < ds->n; i++)
        wel_clear(&ds->el[i]);
    free(ds->el);
    free(ds);
}

static size_t find_pos(const r3d_dcm_ds *ds, uint32_t tag)
{
    size_t lo = 0, hi = ds->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ds->el[mid].tag < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int r3d_dcm_ds_has(const r3d_dcm_ds *ds, uint32_t tag)
{
    size_t p = find_pos(ds, tag);
    return p < ds->n && ds->el[p].tag == tag;
}

size_t r3d_dcm_ds_count(const r3d_dcm_ds *ds) { return ds->n; }

int r3d_dcm_ds_remove(r3d_dcm_ds *ds, uint32_t tag)
{
    size_t p = find_pos(ds, tag);
    if (p >= ds->n || ds->el[p].tag != tag)
        return 0;
    wel_clear(&ds->el[p]);
    memmove(&ds->el[p], &ds->el[p + 1], (ds->n - p - 1) * sizeof *ds->el);
    ds->n--;
    return 1;
}

/* The element for tag, emptied (new or replaced), or NULL when out of memory. */
static wel *slot(r3d_dcm_ds *ds, uint32_t tag)
{
    size_t p = find_pos(ds, tag);
    if (p < ds->n && ds->el[p].tag == tag) {
        wel_clear(&ds->el[p]);
        ds->el[p].tag = tag;
        return &ds->el[p];
    }
    if (ds->n == ds->cap) {
        size_t cap = ds->cap ? ds->cap * 2 : 32;
        wel *nv = realloc(ds->el, cap * sizeof *nv);
        if (!nv)
            return NULL;
        ds->el = nv;
        ds->cap = cap;
    }
    memmove(&ds->el[p + 1], &ds->el[p], (ds->n - p) * sizeof *ds->el);
    ds->n++;
    memset(&ds->el[p], 0, sizeof ds->el[p]);
    ds->el[p].tag = tag;
    return &ds->el[p];
}

/* Text VRs that may carry characters of the specific character set. */
static int vr_charset(uint16_t vr)
{
    return vr == R3D_VR('S', 'H') || vr == R3D_VR('L', 'O') || vr == R3D_VR('S', 'T') ||
           vr == R3D_VR('L', 'T') || vr == R3D_VR('U', 'T') || vr == R3D_VR('P', 'N') ||
           vr == R3D_VR('U', 'C');
}

static int vr_long_len(uint16_t vr)
{
    switch (vr) {
    case R3D_VR('O', 'B'): case R3D_VR('O', 'D'): case R3D_VR('O', 'F'): case R3D_VR('O', 'L'):
    case R3D_VR('O', 'V'): case R3D_VR('O', 'W'): case R3D_VR('S', 'Q'): case R3D_VR('S', 'V'):
    case R3D_VR('U', 'C'): case R3D_VR('U', 'N'): case R3D_VR('U', 'R'): case R3D_VR('U', 'T'):
    case R3D_VR('U', 'V'):
        return 1;
    }
    return 0;
}

static r3d_status pick_vr(uint32_t tag, uint16_t *vr, r3d_error *err)
{
    if (*vr)
        return R3D_OK;
    *vr = r3d_dcm_dict_vr(tag);
    if (!*vr)
        return r3d_fail(err, R3D_EARG,
                        "DICOM writer: (%04X,%04X) is not in the dictionary; give its VR",
                        tag >> 16, tag & 0xFFFF);
    return R3D_OK;
}

static r3d_status put_raw(r3d_dcm_ds *ds, uint32_t tag, uint16_t vr, const void *b, size_t n,
                          uint8_t pad, r3d_error *err)
{
    size_t padded = n + (n & 1);
    if (padded > 0xFFFFFFFEu || (!vr_long_len(vr) && padded > 0xFFFE))
        return r3d_fail(err, R3D_EARG,
                        "DICOM writer: (%04X,%04X) value of %zu bytes is too long for VR %c%c",
                        tag >> 16, tag & 0xFFFF, n, vr >> 8, vr & 0xFF);
    uint8_t *v = NULL;
    if (padded) {
        v = malloc(padded);
        if (!v)
            return r3d_fail(err, R3D_ENOMEM, "DICOM writer: out of memory");
        memcpy(v, b, n);
        if (n & 1)
            v[n] = pad;
    }
    wel *e = slot(ds, tag);
    if (!e) {
        free(v);
        return r3d_fail(err, R3D_ENOMEM, "DICOM writer: out of memory");
    }
    e->vr = vr;
    e->val = v;
    e->len = (uint32_t)padded;
    return R3D_OK;
}

r3d_status r3d_dcm_ds_put_text(r3d_dcm_ds *ds, uint32_t tag, uint16_t vr, const void *s, size_t n,
                               r3d_error *err)
{
    r3d_status st = pick_vr(tag, &vr, err);
    if (st != R3D_OK)
        return st;
    return put_raw(ds, tag, vr, s, n, vr == R3D_VR('U', 'I') ? 0 : ' ', err);
}

r3d_status r3d_dcm_ds_put_str(r3d_dcm_ds *ds, uint32_t tag, uint16_t vr, const char *s,
                              r3d_error *err)
{
    return r3d_dcm_ds_put_text(ds, tag, vr, s ? s : "", s ? strlen(s) : 0, err);
}

r3d_status r3d_dcm_ds_put_bytes(r3d_dcm_ds *ds, uint32_t tag, uint16_t vr, const void *b, size_t n,
                                r3d_error *err)
{
    r3d_status st = pick_vr(tag, &vr, err);
    if (st != R3D_OK)
        return st;
    return put_raw(ds, tag, vr, b, n, 0, err);
}

r3d_status r3d_dcm_ds_put_nums(r3d_dcm_ds *ds, uint32_t tag, uint16_t vr, const double *v, int n,
                               r3d_error *err)
{
    r3d_status st = pick_vr(tag, &vr, err);
    if (st != R3D_OK)
        return st;
    if (n < 0 || n > 4096)
        return r3d_fail(err, R3D_EARG, "DICOM writer: (%04X,%04X): %d values", tag >> 16,
                        tag & 0xFFFF, n);
    if (vr == R3D_VR('D', 'S') || vr == R3D_VR('I', 'S')) {
        char *s = malloc((size_t)n * 24 + 1);
        if (!s)
            return r3d_fail(err, R3D_ENOMEM, "DICOM writer: out of memory");
        size_t used = 0;
        s[0] = 0;
        for (int i = 0; i < n; i++) {
            if (i)
                s[used++] = '\\';
            /* DS holds at most 16 characters: the most digits that fit
             * ("-1.23456789e-300" needs the precision cut to 9). */
            int w = 0;
            if (vr == R3D_VR('I', 'S'))
                w = snprintf(s + used, 24, "%.0f", v[i]);
            else
                for (int prec = 17; prec >= 1; prec--)
                    if ((w = snprintf(s + used, 24, "%.*g", prec, v[i])) <= 16)
                        break;
            if (w < 0 || w >= 24)
                w = 0; /* cannot happen for finite doubles */
            used += (size_t)w;
        }
        st = put_raw(ds, tag, vr, s, used, ' ', err);
        free(s);
        return st;
    }
    int w;
    switch (vr) {
    case R3D_VR('U', 'S'): case R3D_VR('S', 'S'): w = 2; break;
    case R3D_VR('U', 'L'): case R3D_VR('S', 'L'): case R3D_VR('F', 'L'): case R3D_VR('A', 'T'): w = 4; break;
    case R3D_VR('F', 'D'): case R3D_VR('S', 'V'): case R3D_VR('U', 'V'): w = 8; break;
    default:
        return r3d_fail(err, R3D_EARG, "DICOM writer: (%04X,%04X): VR %c%c is not numeric",
                        tag >> 16, tag & 0xFFFF, vr >> 8, vr & 0xFF);
    }
    uint8_t *b = malloc((size_t)n * (size_t)w + 1);
    if (!b)
        return r3d_fail(err, R3D_ENOMEM, "DICOM writer: out of memory");
    for (int i = 0; i < n; i++) {
        uint64_t u;
        switch (vr) {
        case R3D_VR('F', 'L'): {
            float f = (float)v[i];
            uint32_t x;
            memcpy(&x, &f, 4);
            u = x;
            break;
        }
        case R3D_VR('F', 'D'): memcpy(&u, &v[i], 8); break;
        case R3D_VR('A', 'T'): {
            uint32_t t = (uint32_t)v[i];
            u = (uint64_t)(t >> 16) | (uint64_t)(t & 0xFFFF) << 16; /* group word first */
            break;
        }
        case R3D_VR('S', 'S'): case R3D_VR('S', 'L'): case R3D_VR('S', 'V'):
            u = (uint64_t)(int64_t)v[i];
            break;
        default: u = (uint64_t)v[i]; break;
        }
        for (int k = 0; k < w; k++)
            b[(size_t)i * (size_t)w + (size_t)k] = (uint8_t)(u >> (8 * k));
    }
    st = put_raw(ds, tag, vr, b, (size_t)n * (size_t)w, 0, err);
    free(b);
    return st;
}

r3d_status r3d_dcm_ds_put_u16(r3d_dcm_ds *ds, uint32_t tag, uint16_t v, r3d_error *err)
{
    double d = v;
    return r3d_dcm_ds_put_nums(ds, tag, R3D_VR('U', 'S'), &d, 1, err);
}

r3d_status r3d_dcm_ds_put_encapsulated(r3d_dcm_ds *ds, uint32_t tag, const uint8_t *bot,
                                       uint32_t bot_len, const uint8_t *const *frag,
                                       const uint32_t *frag_len, uint32_t n_frag, r3d_error *err)
{
    wel tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.tag = tag;
    tmp.vr = R3D_VR('O', 'B');
    tmp.encapsulated = 1;
    tmp.len = R3D_DCM_UNDEFINED;
    if ((bot_len & 1) || bot_len > 0xFFFFFFF0u)
        return r3d_fail(err, R3D_EARG, "DICOM writer: Basic Offset Table of odd length %u",
                        bot_len);
    if (bot_len) {
        tmp.val = malloc(bot_len);
        if (!tmp.val)
            goto oom;
        memcpy(tmp.val, bot, bot_len);
    }
    tmp.frag = calloc(n_frag ? n_frag : 1, sizeof *tmp.frag);
    tmp.frag_len = calloc(n_frag ? n_frag : 1, sizeof *tmp.frag_len);
    if (!tmp.frag || !tmp.frag_len)
        goto oom;
    for (uint32_t i = 0; i < n_frag; i++) {
        /* Fragments have even length (PS3.5 §A.4); an odd one is padded. */
        uint32_t L = frag_len[i] + (frag_len[i] & 1);
        if (L < frag_len[i])
            goto oom;
        tmp.frag[i] = malloc(L ? L : 1);
        if (!tmp.frag[i])
            goto oom;
        memcpy(tmp.frag[i], frag[i], frag_len[i]);
        if (frag_len[i] & 1)
            tmp.frag[i][frag_len[i]] = 0;
        tmp.frag_len[i] = L;
        tmp.n_frag = i + 1;
    }
    tmp.n_frag = n_frag;
    {
        wel *e = slot(ds, tag);
        if (!e)
            goto oom;
        *e = tmp;
        /* slot() set tag only; tmp already has it. */
        e->len = bot_len;
    }
    return R3D_OK;
oom:
    wel_clear(&tmp);
    return r3d_fail(err, R3D_ENOMEM, "DICOM writer: out of memory copying pixel fragments");
}

r3d_status r3d_dcm_ds_put_seq(r3d_dcm_ds *ds, uint32_t tag, r3d_error *err)
{
    wel *e = slot(ds, tag);
    if (!e)
        return r3d_fail(err, R3D_ENOMEM, "DICOM writer: out of memory");
    e->vr = R3D_VR('S', 'Q');
    return R3D_OK;
}

r3d_dcm_ds *r3d_dcm_ds_add_item(r3d_dcm_ds *ds, uint32_t tag, r3d_error *err)
{
    size_t p = find_pos(ds, tag);
    wel *e;
    if (p < ds->n && ds->el[p].tag == tag && ds->el[p].vr == R3D_VR('S', 'Q')) {
        e = &ds->el[p];
    } else {
        if (r3d_dcm_ds_put_seq(ds, tag, err) != R3D_OK)
            return NULL;
        e = &ds->el[find_pos(ds, tag)];
    }
    r3d_dcm_ds **ni = realloc(e->items, (e->n_items + 1) * sizeof *ni);
    r3d_dcm_ds *item = r3d_dcm_ds_new();
    if (!ni || !item) {
        if (ni)
            e->items = ni;
        free(item);
        r3d_fail(err, R3D_ENOMEM, "DICOM writer: out of memory");
        return NULL;
    }
    e->items = ni;
    e->items[e->n_items++] = item;
    return item;
}

static r3d_status copy_wel(wel *d, const wel *s, r3d_error *err)
{
    memset(d, 0, sizeof *d);
    d->tag = s->tag;
    d->vr = s->vr;
    d->len = s->len;
    d->encapsulated = s->encapsulated;
    size_t vlen = s->encapsulated ? s->len : (s->val ? s->len : 0);
    if (s->val && vlen) {
        if (!(d->val = malloc(vlen)))
            goto oom;
        memcpy(d->val, s->val, vlen);
    }
    if (s->n_items) {
        if (!(d->items = calloc(s->n_items, sizeof *d->items)))
            goto oom;
        for (uint32_t i = 0; i < s->n_items; i++) {
            if (!(d->items[i] = r3d_dcm_ds_new()))
                goto oom;
            d->n_items = i + 1;
            if (r3d_dcm_ds_merge(d->items[i], s->items[i], err) != R3D_OK) {
                wel_clear(d);
                return R3D_ENOMEM;
            }
        }
    }
    if (s->n_frag) {
        d->frag = calloc(s->n_frag, sizeof *d->frag);
        d->frag_len = calloc(s->n_frag, sizeof *d->frag_len);
        if (!d->frag || !d->frag_len)
            goto oom;
        for (uint32_t i = 0; i < s->n_frag; i++) {
            if (!(d->frag[i] = malloc(s->frag_len[i] ? s->frag_len[i] : 1)))
                goto oom;
            memcpy(d->frag[i], s->frag[i], s->frag_len[i]);
            d->frag_len[i] = s->frag_len[i];
            d->n_frag = i + 1;
        }
    }
    return R3D_OK;
oom:
    wel_clear(d);
    return r3d_fail(err, R3D_ENOMEM, "DICOM writer: out of memory copying a data set");
}

r3d_status r3d_dcm_ds_merge(r3d_dcm_ds *dst, const r3d_dcm_ds *src, r3d_error *err)
{
    for (size_t i = 0; i < src->n; i++) {
        wel tmp;
        r3d_status st = copy_wel(&tmp, &src->el[i], err);
        if (st != R3D_OK)
            return st;
        wel *e = slot(dst, tmp.tag);
        if (!e) {
            wel_clear(&tmp);
            return r3d_fail(err, R3D_ENOMEM, "DICOM writer: out of memory");
        }
        *e = tmp;
    }
    return R3D_OK;
}

const uint8_t *r3d_dcm_ds_value(const r3d_dcm_ds *ds, uint32_t tag, uint32_t *len, uint16_t *vr)
{
    size_t p = find_pos(ds, tag);
    if (p >= ds->n || ds->el[p].tag != tag || ds->el[p].vr == R3D_VR('S', 'Q') ||
        ds->el[p].encapsulated)
        return NULL;
    if (len)
        *len = ds->el[p].len;
    if (vr)
        *vr = ds->el[p].vr;
    return ds->el[p].val ? ds->el[p].val : (const uint8_t *)"";
}

/* ---- sizing and writing --------------------------------------------------------------- */

static int skip_el(uint32_t tag, int top)
{
    /* The meta is ours; group lengths are retired outside group 0002 and
     * would be wrong after any edit. */
    return (top && (tag >> 16) == 0x0002) || (tag & 0xFFFF) == 0;
}

/* Encoded size of a data set's elements (not counting an item header).
 * Returns 0 and sets *overflow past 4 GiB. */
static uint64_t ds_size(const r3d_dcm_ds *ds, int top, int *non_ascii);

static uint64_t el_size(const wel *e, int *non_ascii)
{
    uint64_t hdr = vr_long_len(e->vr) ? 12 : 8;
    if (e->vr == R3D_VR('S', 'Q')) {
        uint64_t s = 0;
        for (uint32_t i = 0; i < e->n_items; i++)
            s += 8 + ds_size(e->items[i], 0, non_ascii);
        return hdr + s;
    }
    if (e->encapsulated) {
        uint64_t s = 8 + (uint64_t)e->len; /* BOT item */
        for (uint32_t i = 0; i < e->n_frag; i++)
            s += 8 + (uint64_t)e->frag_len[i];
        return hdr + s + 8;                /* + sequence delimiter */
    }
    if (non_ascii && vr_charset(e->vr))
        for (uint32_t i = 0; i < e->len; i++)
            if (e->val[i] >= 0x80) {
                *non_ascii = 1;
                break;
            }
    return hdr + e->len;
}

static uint64_t ds_size(const r3d_dcm_ds *ds, int top, int *non_ascii)
{
    uint64_t s = 0;
    for (size_t i = 0; i < ds->n; i++)
        if (!skip_el(ds->el[i].tag, top))
            s += el_size(&ds->el[i], non_ascii);
    return s;
}

typedef struct wbuf {
    uint8_t *b;
    size_t n, cap;
} wbuf;

static void w_put(wbuf *w, const void *p, size_t n)
{
    /* The buffer was sized exactly beforehand; this is a guard. */
    if (w->n + n > w->cap)
        return;
    if (n)
        memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void w_u16(wbuf *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    w_put(w, b, 2);
}

static void w_u32(wbuf *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    w_put(w, b, 4);
}

static void w_hdr(wbuf *w, uint32_t tag, uint16_t vr, uint32_t len)
{
    w_u16(w, (uint16_t)(tag >> 16));
    w_u16(w, (uint16_t)tag);
    uint8_t v[2] = {(uint8_t)(vr >> 8), (uint8_t)vr};
    w_put(w, v, 2);
    if (vr_long_len(vr)) {
        w_u16(w, 0);
        w_u32(w, len);
    } else {
        w_u16(w, (uint16_t)len);
    }
}

static void w_ds(wbuf *w, const r3d_dcm_ds *ds, int top);

static void w_el(wbuf *w, const wel *e)
{
    if (e->vr == R3D_VR('S', 'Q')) {
        uint64_t body = el_size(e, NULL) - 12;
        w_hdr(w, e->tag, e->vr, (uint32_t)body);
        for (uint32_t i = 0; i < e->n_items; i++) {
            w_u16(w, 0xFFFE);
            w_u16(w, 0xE000);
            w_u32(w, (uint32_t)ds_size(e->items[i], 0, NULL));
            w_ds(w, e->items[i], 0);
        }
        return;
    }
    if (e->encapsulated) {
        w_hdr(w, e->tag, R3D_VR('O', 'B'), R3D_DCM_UNDEFINED);
        w_u16(w, 0xFFFE);
        w_u16(w, 0xE000);
        w_u32(w, e->len);
        w_put(w, e->val, e->len);
        for (uint32_t i = 0; i < e->n_frag; i++) {
            w_u16(w, 0xFFFE);
            w_u16(w, 0xE000);
            w_u32(w, e->frag_len[i]);
            w_put(w, e->frag[i], e->frag_len[i]);
        }
        w_u16(w, 0xFFFE);
        w_u16(w, 0xE0DD);
        w_u32(w, 0);
        return;
    }
    w_hdr(w, e->tag, e->vr, e->len);
    w_put(w, e->val, e->len);
}

static void w_ds(wbuf *w, const r3d_dcm_ds *ds, int top)
{
    for (size_t i = 0; i < ds->n; i++)
        if (!skip_el(ds->el[i].tag, top))
            w_el(w, &ds->el[i]);
}

static const wel *find_el(const r3d_dcm_ds *ds, uint32_t tag)
{
    size_t p = find_pos(ds, tag);
    return p < ds->n && ds->el[p].tag == tag ? &ds->el[p] : NULL;
}

/* A UI value without its NUL padding, or NULL when absent/empty/too long. */
static int get_uid(const r3d_dcm_ds *ds, uint32_t tag, char out[65])
{
    const wel *e = find_el(ds, tag);
    if (!e || !e->val || e->len == 0 || e->len > 64)
        return 0;
    size_t n = e->len;
    while (n && (e->val[n - 1] == 0 || e->val[n - 1] == ' '))
        n--;
    memcpy(out, e->val, n);
    out[n] = 0;
    return n > 0;
}

static int has_encapsulated(const r3d_dcm_ds *ds)
{
    for (size_t i = 0; i < ds->n; i++)
        if (ds->el[i].encapsulated)
            return 1;
    return 0;
}

r3d_status r3d_dcm_write_mem(const r3d_dcm_ds *ds, const r3d_dcm_write_opts *opts, uint8_t **buf,
                             size_t *n, r3d_error *err)
{
    const char *ts = opts && opts->transfer_syntax ? opts->transfer_syntax : R3D_TS_EXPLICIT_LE;
    char sop_class[65], sop_inst[65];
    *buf = NULL;
    *n = 0;
    if (!get_uid(ds, R3D_TAG(0x0008, 0x0016), sop_class) ||
        !get_uid(ds, R3D_TAG(0x0008, 0x0018), sop_inst))
        return r3d_fail(err, R3D_EARG,
                        "DICOM writer: the data set needs SOPClassUID (0008,0016) and "
                        "SOPInstanceUID (0008,0018)");
    int explicit_le = strcmp(ts, R3D_TS_EXPLICIT_LE) == 0;
    if (explicit_le && has_encapsulated(ds))
        return r3d_fail(err, R3D_EARG,
                        "DICOM writer: encapsulated pixel data needs an encapsulated transfer "
                        "syntax, not explicit VR little endian");
    if (!explicit_le && (!strcmp(ts, "1.2.840.10008.1.2") || !strcmp(ts, "1.2.840.10008.1.2.2") ||
                         !strcmp(ts, "1.2.840.10008.1.2.1.99")))
        return r3d_fail(err, R3D_EUNSUPPORTED,
                        "DICOM writer: transfer syntax %s is not written; the data set is "
                        "always explicit VR little endian",
                        ts);

    /* The meta group, built like any data set. */
    r3d_status st = R3D_OK;
    r3d_dcm_ds *meta = r3d_dcm_ds_new();
    if (!meta)
        return r3d_fail(err, R3D_ENOMEM, "DICOM writer: out of memory");
    static const uint8_t version[2] = {0x00, 0x01};
    if ((st = r3d_dcm_ds_put_bytes(meta, R3D_TAG(0x0002, 0x0001), R3D_VR('O', 'B'), version, 2, err)) ||
        (st = r3d_dcm_ds_put_str(meta, R3D_TAG(0x0002, 0x0002), R3D_VR('U', 'I'), sop_class, err)) ||
        (st = r3d_dcm_ds_put_str(meta, R3D_TAG(0x0002, 0x0003), R3D_VR('U', 'I'), sop_inst, err)) ||
        (st = r3d_dcm_ds_put_str(meta, R3D_TAG(0x0002, 0x0010), R3D_VR('U', 'I'), ts, err)) ||
        (st = r3d_dcm_ds_put_str(meta, R3D_TAG(0x0002, 0x0012), R3D_VR('U', 'I'),
                                 R3D_IMPLEMENTATION_CLASS_UID, err)) ||
        (st = r3d_dcm_ds_put_str(meta, R3D_TAG(0x0002, 0x0013), R3D_VR('S', 'H'),
                                 R3D_IMPLEMENTATION_VERSION_NAME, err))) {
        r3d_dcm_ds_free(meta);
        return st;
    }

    int non_ascii = 0;
    uint64_t meta_n = ds_size(meta, 0, NULL);
    uint64_t body_n = ds_size(ds, 1, &non_ascii);
    const wel *cs = find_el(ds, R3D_TAG(0x0008, 0x0005));
    int add_cs = non_ascii && !cs;
    static const char utf8_cs[] = "ISO_IR 192";
    uint64_t cs_n = add_cs ? 8 + 10 : 0;
    uint64_t total = 128 + 4 + 12 + meta_n + body_n + cs_n;
    if (total > ((uint64_t)1 << 32) - 16 || (size_t)total != total) {
        r3d_dcm_ds_free(meta);
        return r3d_fail(err, R3D_EUNSUPPORTED,
                        "DICOM writer: the file would be %llu bytes; values past 4 GiB cannot be "
                        "encoded",
                        (unsigned long long)total);
    }
    wbuf w = {malloc((size_t)total), 0, (size_t)total};
    if (!w.b) {
        r3d_dcm_ds_free(meta);
        return r3d_fail(err, R3D_ENOMEM, "DICOM writer: out of memory for %llu bytes",
                        (unsigned long long)total);
    }
    memset(w.b, 0, 128);
    w.n = 128;
    w_put(&w, "DICM", 4);
    w_hdr(&w, R3D_TAG(0x0002, 0x0000), R3D_VR('U', 'L'), 4);
    w_u32(&w, (uint32_t)meta_n);
    w_ds(&w, meta, 0);
    r3d_dcm_ds_free(meta);
    /* The data set, with SpecificCharacterSet slotted in at its place when
     * we add it (tags must ascend). */
    for (size_t i = 0; i < ds->n; i++) {
        const wel *e = &ds->el[i];
        if (add_cs && e->tag > R3D_TAG(0x0008, 0x0005)) {
            w_hdr(&w, R3D_TAG(0x0008, 0x0005), R3D_VR('C', 'S'), 10);
            w_put(&w, utf8_cs, 10);
            add_cs = 0;
        }
        if (!skip_el(e->tag, 1))
            w_el(&w, e);
    }
    if (add_cs) {
        w_hdr(&w, R3D_TAG(0x0008, 0x0005), R3D_VR('C', 'S'), 10);
        w_put(&w, utf8_cs, 10);
    }
    if (w.n != total) {
        free(w.b);
        return r3d_fail(err, R3D_EDATA, "DICOM writer: internal size mismatch (%zu != %llu)",
                        w.n, (unsigned long long)total);
    }
    *buf = w.b;
    *n = w.n;
    return R3D_OK;
}

r3d_status r3d_dcm_write_file(const r3d_dcm_ds *ds, const char *path,
                              const r3d_dcm_write_opts *opts, r3d_error *err)
{
    uint8_t *buf;
    size_t n;
    r3d_status st = r3d_dcm_write_mem(ds, opts, &buf, &n, err);
    if (st != R3D_OK) {
        r3d_error_prefix(err, "%s: ", path);
        return st;
    }
    st = r3d_file_write_atomic(path, buf, n, err);
    free(buf);
    return st;
}

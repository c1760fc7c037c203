/* gzip.c - gzip compression and decompression for the volume readers and
 * writers (.nii.gz, NRRD "encoding: gzip", .inv3 projects).
 *
 * Compression writes ONE gzip member, whatever the thread count: readers
 * that stop after the first member exist (fflate's gunzipSync, which NiiVue
 * and other web viewers use, returns wrong bytes for a multi-member file),
 * so concatenated members are not an option even though RFC 1952 section
 * 2.2 allows them. libdeflate compresses the whole buffer on one thread
 * (2-3x faster than zlib at equal ratio). It cannot write a deflate stream
 * that continues in another buffer - its output always ends in a final
 * block - so parallel compression goes through zlib, and pays off only
 * with many threads: on the chest CT (74 MB of int16) libdeflate level 6
 * takes 1.2 s of CPU, zlib level 6 over 4 MiB chunks 4.2 s, so below
 * R3D_GZIP_ZLIB_THREADS threads the single libdeflate call is the faster
 * one. From there on the input is cut into fixed 4 MiB chunks compressed
 * independently as raw deflate by zlib, each but the last ending in a sync
 * flush (an empty stored block: byte-aligned, not final), the last
 * finished; the chunks are joined behind one header and the trailer
 * carries the CRC-32 of the whole, combined from the chunks' CRCs
 * (crc32_combine) - the way pigz does it. The chunk layout depends only on
 * the input size, so any thread count from R3D_GZIP_ZLIB_THREADS up writes
 * the same bytes. Workers take chunks from an atomic counter, which
 * balances slabs that compress at different speeds (air vs. bone).
 *
 * Decompression walks the members with libdeflate_gzip_decompress_ex. The
 * output buffer is sized from the ISIZE trailer of the last member (the
 * uncompressed size mod 2^32, exact for ordinary single-member files) and
 * grows when a later member needs room. When a member does not fit the
 * hint (ISIZE lies, or the member is over 4 GiB), libdeflate stops when the
 * buffer is full and that member is inflated again with zlib's streaming
 * inflate, which needs no size in advance and grows the buffer as it goes:
 * never more than one retry per member, instead of a guess-and-double loop.
 * Corrupt or truncated data is re-run through zlib too, for an error that
 * says which of the two it is.
 *
 * Decompression bombs: deflate cannot expand more than 1032:1, so a
 * claimed size beyond that is a lie and never allocated, and no output may
 * exceed R3D_GZIP_MAX_OUT (16 GiB) whatever the input.
 *
 * References: RFC 1951 (DEFLATE), RFC 1952 (gzip), libdeflate's libdeflate.h,
 * pigz (Mark Adler) for the idea of parallel compression of independent
 * chunks.
 */
#include "r3d/nifti.h"

#include <libdeflate.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define R3D_GZIP_MAX_OUT ((size_t)16 << 30)
#define R3D_GZIP_CHUNK ((size_t)4 << 20)
/* threads from which zlib's chunks beat one libdeflate call (see above) */
#define R3D_GZIP_ZLIB_THREADS 6
/* Deflate's best case is a 258-byte match coded in 2 bits: 1032:1. */
#define R3D_GZIP_MAX_RATIO 1032

int r3d_is_gzip(const uint8_t *buf, size_t n)
{
    return buf && n >= 3 && buf[0] == 0x1f && buf[1] == 0x8b && buf[2] == 8;
}

/* ---- compression ----------------------------------------------------------- */

typedef struct gz_job {
    const uint8_t *in;
    size_t n;
    int level;
    size_t nchunks;
    size_t slot;          /* bytes reserved per chunk in out */
    uint8_t *out;         /* nchunks slots */
    size_t *out_n;        /* compressed size per chunk, 0 = failed */
    uLong *crc;           /* CRC-32 per chunk */
    atomic_size_t next;   /* next chunk to take */
    atomic_int failed;
} gz_job;

static void gz_worker(void *ctx, int64_t begin, int64_t end)
{
    gz_job *j = ctx;
    /* begin/end only say how many workers exist; the chunks are shared. */
    (void)begin;
    (void)end;
    /* one compressor per worker, reset per chunk: a reset stream writes
     * exactly what a fresh one would (raw deflate: the file has one header;
     * zlib's levels end at 9) */
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, j->level < 9 ? j->level : 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        atomic_store(&j->failed, 1);
        return;
    }
    for (;;) {
        size_t k = atomic_fetch_add(&j->next, 1);
        if (k >= j->nchunks || atomic_load(&j->failed))
            break;
        size_t off = k * R3D_GZIP_CHUNK;
        size_t len = j->n - off < R3D_GZIP_CHUNK ? j->n - off : R3D_GZIP_CHUNK;
        int last = k + 1 == j->nchunks;
        deflateReset(&z);
        z.next_in = (Bytef *)(j->in + off);
        z.avail_in = (uInt)len;
        z.next_out = j->out + k * j->slot;
        z.avail_out = (uInt)j->slot;
        int rc = deflate(&z, last ? Z_FINISH : Z_SYNC_FLUSH);
        int ok = last ? rc == Z_STREAM_END : rc == Z_OK && z.avail_in == 0 && z.avail_out > 0;
        j->out_n[k] = ok ? j->slot - z.avail_out : 0;
        j->crc[k] = crc32(0, j->in + off, (uInt)len);
        if (!ok)
            atomic_store(&j->failed, 1);
    }
    deflateEnd(&z);
}

r3d_status r3d_gzip_compress(const uint8_t *in, size_t n, int level, int threads,
                             uint8_t **out, size_t *out_n, r3d_error *err)
{
    *out = NULL;
    *out_n = 0;
    if (level == 0)
        level = 6;
    if (level < 1 || level > 12)
        return r3d_fail(err, R3D_EARG, "gzip: compression level %d is outside 1..12", level);
    if (threads <= 0)
        threads = r3d_threads();

    size_t nchunks = n / R3D_GZIP_CHUNK + (n % R3D_GZIP_CHUNK != 0);
    if (threads < R3D_GZIP_ZLIB_THREADS || nchunks < 2) {
        struct libdeflate_compressor *c = libdeflate_alloc_compressor(level);
        if (!c)
            return r3d_fail(err, R3D_ENOMEM, "gzip: cannot allocate a compressor");
        size_t cap = libdeflate_gzip_compress_bound(c, n);
        uint8_t *buf = malloc(cap);
        if (!buf) {
            libdeflate_free_compressor(c);
            return r3d_fail(err, R3D_ENOMEM, "gzip: cannot allocate %zu bytes", cap);
        }
        size_t got = libdeflate_gzip_compress(c, in, n, buf, cap);
        libdeflate_free_compressor(c);
        if (got == 0) {
            free(buf);
            return r3d_fail(err, R3D_EIO, "gzip: compression of %zu bytes failed", n);
        }
        uint8_t *shrunk = realloc(buf, got);
        *out = shrunk ? shrunk : buf;
        *out_n = got;
        return R3D_OK;
    }

    gz_job j;
    memset(&j, 0, sizeof j);
    j.in = in;
    j.n = n;
    j.level = level;
    j.nchunks = nchunks;
    /* deflateBound without a stream is zlib's bound for any settings; a
     * sync flush instead of a finish adds at most an empty stored block
     * (5 bytes) and the bits before it */
    j.slot = deflateBound(Z_NULL, R3D_GZIP_CHUNK) + 16;
    size_t total;
    if (!r3d_mul_size(j.slot, nchunks, &total) || total > SIZE_MAX - 18)
        return r3d_fail(err, R3D_ENOMEM, "gzip: %zu bytes is too large", n);
    /* header and trailer around the chunks */
    j.out = malloc(total + 18);
    j.out_n = calloc(nchunks, sizeof *j.out_n);
    j.crc = calloc(nchunks, sizeof *j.crc);
    if (!j.out || !j.out_n || !j.crc) {
        free(j.out);
        free(j.out_n);
        free(j.crc);
        return r3d_fail(err, R3D_ENOMEM, "gzip: cannot allocate %zu bytes", total);
    }
    atomic_init(&j.next, 0);
    atomic_init(&j.failed, 0);
    /* One worker per requested thread; r3d_parallel_for runs at most
     * r3d_threads() of them at once, the library-wide ceiling. */
    r3d_parallel_for(threads < (int64_t)nchunks ? threads : (int64_t)nchunks, gz_worker, &j);
    if (atomic_load(&j.failed)) {
        free(j.out);
        free(j.out_n);
        free(j.crc);
        return r3d_fail(err, R3D_ENOMEM, "gzip: compression of %zu bytes failed", n);
    }
    /* Shift the chunks together behind the 10-byte header (slot k starts at
     * or after where chunk k goes), combining their CRCs in order. */
    static const uint8_t head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3 /* Unix */};
    size_t pos = sizeof head;
    uLong crc = crc32(0, Z_NULL, 0);
    for (size_t k = 0; k < nchunks; k++) {
        memmove(j.out + pos, j.out + k * j.slot, j.out_n[k]);
        pos += j.out_n[k];
        size_t len = k + 1 < nchunks ? R3D_GZIP_CHUNK : n - k * R3D_GZIP_CHUNK;
        crc = crc32_combine(crc, j.crc[k], (z_off_t)len);
    }
    memcpy(j.out, head, sizeof head);
    for (int b = 0; b < 4; b++) {
        j.out[pos + b] = (uint8_t)(crc >> (8 * b));
        j.out[pos + 4 + b] = (uint8_t)((uint64_t)n >> (8 * b)); /* ISIZE: n mod 2^32 */
    }
    pos += 8;
    free(j.out_n);
    free(j.crc);
    uint8_t *shrunk = realloc(j.out, pos);
    *out = shrunk ? shrunk : j.out;
    *out_n = pos;
    return R3D_OK;
}

/* ---- decompression --------------------------------------------------------- */

typedef struct gz_out {
    uint8_t *buf;
    size_t n, cap, max;
    const char *name;
} gz_out;

/* Set the capacity to want bytes, capped at o->max. */
static r3d_status gz_resize(gz_out *o, size_t want, r3d_error *err)
{
    if (want > o->max)
        want = o->max;
    if (want < 65536)
        want = 65536;
    if (want <= o->cap)
        return R3D_OK;
    uint8_t *b = realloc(o->buf, want);
    if (!b)
        return r3d_fail(err, R3D_ENOMEM, "%s: cannot allocate %zu bytes to decompress",
                        o->name, want);
    o->buf = b;
    o->cap = want;
    return R3D_OK;
}

/* Double the capacity, or fail when the output may not grow further. */
static r3d_status gz_grow(gz_out *o, r3d_error *err)
{
    if (o->cap >= o->max)
        return o->max == R3D_GZIP_MAX_OUT
                   ? r3d_fail(err, R3D_EUNSUPPORTED,
                              "%s: gzip data expands beyond 16 GiB; refusing it as a "
                              "decompression bomb", o->name)
                   : r3d_fail(err, R3D_EFORMAT,
                              "%s: gzip data would expand more than %dx, which deflate "
                              "cannot do: the file is corrupt", o->name, R3D_GZIP_MAX_RATIO);
    return gz_resize(o, o->cap > o->max / 2 ? o->max : 2 * o->cap, err);
}

/* Inflate one gzip member at in with zlib, streaming into o; *used = bytes
 * of input the member took. Used when the size hint was wrong and to name
 * the defect of a member libdeflate rejected. */
static r3d_status gz_member_zlib(const uint8_t *in, size_t n, size_t at, gz_out *o,
                                 size_t *used, r3d_error *err)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        return r3d_fail(err, R3D_ENOMEM, "%s: cannot start zlib inflate", o->name);
    size_t pos = 0;
    int rc = Z_OK;
    r3d_status s = R3D_OK;
    for (;;) {
        if (o->cap == o->n && (s = gz_grow(o, err)))
            break;
        /* zlib counts in 32 bits: feed at most 1 GiB at a time. */
        size_t in_left = n - pos, out_left = o->cap - o->n;
        zs.next_in = (Bytef *)(uintptr_t)(in + pos);
        zs.avail_in = (uInt)(in_left < ((size_t)1 << 30) ? in_left : ((size_t)1 << 30));
        zs.next_out = o->buf + o->n;
        zs.avail_out = (uInt)(out_left < ((size_t)1 << 30) ? out_left : ((size_t)1 << 30));
        uInt ai = zs.avail_in, ao = zs.avail_out;
        rc = inflate(&zs, Z_NO_FLUSH);
        pos += ai - zs.avail_in;
        o->n += ao - zs.avail_out;
        if (rc == Z_STREAM_END)
            break;
        if (rc == Z_BUF_ERROR && pos == n) {
            s = r3d_fail(err, R3D_EFORMAT, "%s: gzip data is truncated (ends after %zu "
                         "compressed bytes, in the member that starts at byte %zu)",
                         o->name, at + n, at);
            break;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            const char *why = zs.msg ? zs.msg : "inflate failed";
            /* zlib's words for the two trailer checks, made plainer */
            if (!strcmp(why, "incorrect data check"))
                why = "CRC-32 mismatch, the data are damaged";
            else if (!strcmp(why, "incorrect length check"))
                why = "stored length (ISIZE) does not match the data";
            s = r3d_fail(err, R3D_EFORMAT, "%s: gzip data is corrupt near byte %zu: %s",
                         o->name, at + pos, why);
            break;
        }
    }
    inflateEnd(&zs);
    *used = pos;
    return s;
}

r3d_status r3d_gzip_decompress(const uint8_t *in, size_t n, const char *name,
                               uint8_t **out, size_t *out_n, r3d_error *err)
{
    *out = NULL;
    *out_n = 0;
    if (!name)
        name = "gzip";
    if (!r3d_is_gzip(in, n))
        return r3d_fail(err, R3D_EFORMAT, "%s: not gzip data (no 1f 8b 08 signature)", name);
    if (n < 18)
        return r3d_fail(err, R3D_EFORMAT, "%s: gzip data is truncated (%zu bytes, a member "
                        "needs at least 18)", name, n);

    gz_out o = {NULL, 0, 0, R3D_GZIP_MAX_OUT, name};
    if (n <= R3D_GZIP_MAX_OUT / R3D_GZIP_MAX_RATIO)
        o.max = n * R3D_GZIP_MAX_RATIO;
    /* ISIZE of the last member: exact for a single member under 4 GiB. */
    size_t hint = (size_t)in[n - 4] | (size_t)in[n - 3] << 8 | (size_t)in[n - 2] << 16 |
                  (size_t)in[n - 1] << 24;
    r3d_status s = gz_resize(&o, hint, err);
    if (s)
        return s;

    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    if (!d) {
        free(o.buf);
        return r3d_fail(err, R3D_ENOMEM, "%s: cannot allocate a decompressor", name);
    }
    size_t pos = 0;
    int members = 0;
    while (pos < n) {
        /* Bytes after the last member that are not a gzip header (tar
         * padding, zero fill) are ignored, as gzip -d does. */
        if (members > 0 && !r3d_is_gzip(in + pos, n - pos))
            break;
        size_t used = 0, got = 0;
        enum libdeflate_result r = libdeflate_gzip_decompress_ex(
            d, in + pos, n - pos, o.buf + o.n, o.cap - o.n, &used, &got);
        if (r == LIBDEFLATE_SUCCESS) {
            pos += used;
            o.n += got;
            members++;
            /* Another member follows (our threaded writer's 4 MiB chunks):
             * make sure it has at least as much room as this one took. */
            if (pos < n && o.cap - o.n < got && (s = gz_resize(&o, o.n + (o.n > got ? o.n : got), err)))
                break;
            continue;
        }
        /* Wrong size hint, oversized member, or damage: zlib streams this
         * member in one pass and names the defect if there is one. */
        if ((s = gz_member_zlib(in + pos, n - pos, pos, &o, &used, err)))
            break;
        pos += used;
        members++;
    }
    libdeflate_free_decompressor(d);
    if (s) {
        free(o.buf);
        return s;
    }
    uint8_t *shrunk = realloc(o.buf, o.n ? o.n : 1);
    *out = shrunk ? shrunk : o.buf;
    *out_n = o.n;
    return R3D_OK;
}

/* blobs.c - content-addressed files under DIR/blobs and sealing (encryption
 * at rest).
 *
 * A blob is named by the SHA-256 of the bytes on disk (sealed bytes when the
 * store has a key), in a two-hex-digit fan-out folder: blobs/ab/abcdef....
 * Writing: temporary name in the same folder, fsync, rename, fsync of the
 * folder (r3d_file_write_atomic), and of blobs/ when a fan-out folder is
 * new, so a blob a committed row names exists after any crash. Reading
 * re-hashes the bytes, so a damaged blob is an error, never silent garbage.
 *
 * Sealing: crypto_secretbox (XSalsa20-Poly1305) with a random nonce per
 * blob: "R3DS" + nonce(24) + box. Sealed blobs of equal plain bytes get
 * different names; plain_sha256 in the blobs table still links them. */
#include "store/store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEAL_MAGIC "R3DS"

r3d_status st_seal(r3d_store *s, const uint8_t *plain, size_t n, uint8_t **out, size_t *out_n,
                   r3d_error *err)
{
    size_t hdr = 4 + crypto_secretbox_NONCEBYTES;
    size_t total = s->sealed ? hdr + crypto_secretbox_MACBYTES + n : n;
    if (total < n)
        return r3d_fail(err, R3D_ENOMEM, "blob: size overflow");
    uint8_t *b = malloc(total ? total : 1);
    if (!b)
        return r3d_fail(err, R3D_ENOMEM, "blob: cannot allocate %zu bytes", total);
    if (!s->sealed) {
        if (n)
            memcpy(b, plain, n);
    } else {
        memcpy(b, SEAL_MAGIC, 4);
        randombytes_buf(b + 4, crypto_secretbox_NONCEBYTES);
        crypto_secretbox_easy(b + hdr, plain, n, b + 4, s->key);
    }
    *out = b;
    *out_n = total;
    return R3D_OK;
}

r3d_status st_unseal(r3d_store *s, const uint8_t *in, size_t n, uint8_t **out, size_t *out_n,
                     const char *what, r3d_error *err)
{
    size_t hdr = 4 + crypto_secretbox_NONCEBYTES;
    if (!s->sealed) {
        uint8_t *b = malloc(n + 1);
        if (!b)
            return r3d_fail(err, R3D_ENOMEM, "%s: cannot allocate %zu bytes", what, n);
        memcpy(b, in, n);
        b[n] = 0;
        *out = b;
        *out_n = n;
        return R3D_OK;
    }
    if (n < hdr + crypto_secretbox_MACBYTES || memcmp(in, SEAL_MAGIC, 4) != 0)
        return r3d_fail(err, R3D_EDATA, "%s: not a sealed blob", what);
    size_t pn = n - hdr - crypto_secretbox_MACBYTES;
    uint8_t *b = malloc(pn + 1);
    if (!b)
        return r3d_fail(err, R3D_ENOMEM, "%s: cannot allocate %zu bytes", what, pn);
    if (crypto_secretbox_open_easy(b, in + hdr, n - hdr, in + 4, s->key) != 0) {
        free(b);
        return r3d_fail(err, R3D_EDATA, "%s: sealed blob fails authentication (damaged or "
                        "another key)", what);
    }
    b[pn] = 0;
    *out = b;
    *out_n = pn;
    return R3D_OK;
}

char *st_seal_text(r3d_store *s, const char *plain)
{
    if (!s->sealed)
        return strdup(plain ? plain : "");
    uint8_t *b = NULL;
    size_t n = 0;
    if (st_seal(s, (const uint8_t *)plain, strlen(plain), &b, &n, NULL))
        return NULL;
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    char *t = malloc(cap + 1);
    if (t) {
        t[0] = '~'; /* marks a sealed field */
        sodium_bin2base64(t + 1, cap, b, n, sodium_base64_VARIANT_ORIGINAL);
    }
    free(b);
    return t;
}

char *st_unseal_text(r3d_store *s, const char *stored)
{
    if (!stored)
        return strdup("");
    if (stored[0] != '~' || !s->sealed)
        return strdup(stored[0] == '~' ? "" : stored);
    size_t len = strlen(stored + 1), bn = 0;
    uint8_t *b = malloc(len + 1);
    if (!b)
        return NULL;
    char *t = NULL;
    if (sodium_base642bin(b, len, stored + 1, len, NULL, &bn, NULL,
                          sodium_base64_VARIANT_ORIGINAL) == 0) {
        uint8_t *p = NULL;
        size_t pn = 0;
        if (!st_unseal(s, b, bn, &p, &pn, "identity field", NULL))
            t = (char *)p;
    }
    free(b);
    return t ? t : strdup("");
}

void st_blob_path(r3d_store *s, const char *hash, char *out, size_t cap)
{
    snprintf(out, cap, "%s/blobs/%.2s/%s", s->dir, hash, hash);
}

static void fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

r3d_status st_blob_write(r3d_store *s, const void *plain, size_t n, char hash_out[65],
                         char plain_out[65], r3d_error *err)
{
    char plain_hash[65];
    st_sha256_hex(plain, n, plain_hash);
    if (plain_out)
        memcpy(plain_out, plain_hash, 65);
    uint8_t *stored = NULL;
    size_t sn = 0;
    r3d_status st = st_seal(s, plain, n, &stored, &sn, err);
    if (st)
        return st;
    st_sha256_hex(stored, sn, hash_out);
    char dir[4200], path[4200];
    snprintf(dir, sizeof dir, "%s/blobs/%.2s", s->dir, hash_out);
    if (mkdir(dir, 0700) == 0) {
        char top[4200];
        snprintf(top, sizeof top, "%s/blobs", s->dir);
        fsync_dir(top);
    } else if (errno != EEXIST) {
        free(stored);
        return r3d_fail(err, R3D_EIO, "%s: cannot create the folder: %s", dir, strerror(errno));
    }
    /* Always written, even when a blob of that name exists: the rename
     * replaces a damaged copy instead of trusting it. */
    st_blob_path(s, hash_out, path, sizeof path);
    st = r3d_file_write_atomic(path, stored, sn, err);
    free(stored);
    return st;
}

r3d_status st_blob_record(r3d_store *s, const char *hash, const char *plain_hash, size_t n,
                          r3d_error *err)
{
    sqlite3_stmt *q = NULL;
    r3d_status st = st_prepare(s, "INSERT OR IGNORE INTO blobs(sha256, plain_sha256, size, "
                                  "created) VALUES(?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
                               &q, err);
    if (st)
        return st;
    size_t stored = s->sealed ? n + 4 + crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES
                              : n;
    sqlite3_bind_text(q, 1, hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 2, plain_hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(q, 3, (int64_t)stored);
    return st_step(s, q, "cannot record a blob", err);
}

r3d_status st_blob_get(r3d_store *s, const char *hash, uint8_t **plain, size_t *n,
                       r3d_error *err)
{
    *plain = NULL;
    *n = 0;
    if (!st_is_hex(hash, 64))
        return r3d_fail(err, R3D_EDATA, "store: a row names a blob with a malformed hash");
    char path[4200];
    st_blob_path(s, hash, path, sizeof path);
    uint8_t *b = NULL;
    size_t bn = 0;
    r3d_status st = r3d_file_read_all(path, &b, &bn, err);
    if (st) {
        r3d_fail(err, R3D_EDATA, "blob %.12s...: missing from %s/blobs", hash, s->dir);
        return R3D_EDATA;
    }
    char h[65];
    st_sha256_hex(b, bn, h);
    if (strcmp(h, hash) != 0) {
        free(b);
        return r3d_fail(err, R3D_EDATA, "blob %.12s...: content does not match its hash "
                        "(damaged on disk)", hash);
    }
    char what[32];
    snprintf(what, sizeof what, "blob %.12s", hash);
    st = st_unseal(s, b, bn, plain, n, what, err);
    free(b);
    return st;
}

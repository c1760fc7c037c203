/* update.c - software update packages: accepted only when signed with the
 * vendor's Ed25519 key and applied by an administrator (clause 4.8.3).
 *
 * Package layout (all integers little-endian):
 *     "R3DUPD01"                 8 bytes
 *     manifest length            4 bytes
 *     manifest                   JSON {"name","version","payload_sha256","payload_size"}
 *     payload                    payload_size bytes
 *     signature                  64 bytes: Ed25519 (crypto_sign_detached) over
 *                                every byte before it
 * The signature is checked before the manifest is even parsed, so an
 * unsigned package never reaches the JSON parser. The vendor public key is
 * compiled in below; the secret key never enters the repository. Tests and
 * vendor tooling pass their own key through the library API (pubkey
 * argument); the CLI has no option to do so, so a product installation
 * trusts the vendor key and nothing else (docs/security.md). */
#include "store/store_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAGIC "R3DUPD01"
#define MANIFEST_MAX (64 * 1024)

/* The vendor's Ed25519 public key (hex
 * 3d7471540682344cf86e064e5743870eec9667d5a97dc3b64cff7494812e5062). */
static const uint8_t vendor_key[32] = {
    0x3d, 0x74, 0x71, 0x54, 0x06, 0x82, 0x34, 0x4c, 0xf8, 0x6e, 0x06, 0x4e, 0x57, 0x43, 0x87, 0x0e,
    0xec, 0x96, 0x67, 0xd5, 0xa9, 0x7d, 0xc3, 0xb6, 0x4c, 0xff, 0x74, 0x94, 0x81, 0x2e, 0x50, 0x62,
};

const uint8_t *r3d_update_vendor_key(void)
{
    return vendor_key;
}

static int version_ok(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > 31)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '.' || c == '-' || c == '+'))
            return 0;
    }
    return 1;
}

r3d_status r3d_update_pack(const char *name, const char *version, const uint8_t *payload,
                           size_t n, const uint8_t secret_key[64], uint8_t **pkg, size_t *pkg_n,
                           r3d_error *err)
{
    if (!pkg || !pkg_n || !secret_key || (!payload && n))
        return r3d_fail(err, R3D_EARG, "update: nothing to pack");
    *pkg = NULL;
    *pkg_n = 0;
    if (!st_name_ok(name) || !version_ok(version ? version : ""))
        return r3d_fail(err, R3D_EARG, "update: name or version malformed");
    if (sodium_init() < 0)
        return r3d_fail(err, R3D_EIO, "libsodium could not initialise");
    char sha[65];
    st_sha256_hex(payload ? (const void *)payload : "", n, sha);
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "name", name);
    cJSON_AddStringToObject(m, "version", version);
    cJSON_AddStringToObject(m, "payload_sha256", sha);
    cJSON_AddNumberToObject(m, "payload_size", (double)n);
    char *mt = cJSON_PrintUnformatted(m);
    cJSON_Delete(m);
    if (!mt)
        return r3d_fail(err, R3D_ENOMEM, "update: out of memory");
    size_t ml = strlen(mt), total = 8 + 4 + ml + n + crypto_sign_BYTES;
    uint8_t *b = malloc(total);
    if (!b) {
        free(mt);
        return r3d_fail(err, R3D_ENOMEM, "update: out of memory");
    }
    memcpy(b, MAGIC, 8);
    for (int i = 0; i < 4; i++)
        b[8 + i] = (uint8_t)(ml >> (8 * i));
    memcpy(b + 12, mt, ml);
    if (n)
        memcpy(b + 12 + ml, payload, n);
    crypto_sign_detached(b + total - crypto_sign_BYTES, NULL, b, total - crypto_sign_BYTES,
                         secret_key);
    free(mt);
    *pkg = b;
    *pkg_n = total;
    return R3D_OK;
}

r3d_status r3d_update_verify(const uint8_t *pkg, size_t n, const uint8_t *pubkey,
                             r3d_update_info *info, r3d_error *err)
{
    r3d_update_info tmp;
    if (!info)
        info = &tmp;
    memset(info, 0, sizeof *info);
    if (sodium_init() < 0)
        return r3d_fail(err, R3D_EIO, "libsodium could not initialise");
    if (!pkg || n < 8 + 4 + crypto_sign_BYTES || memcmp(pkg, MAGIC, 8) != 0)
        return r3d_fail(err, R3D_EFORMAT, "update: not a recon3d update package");
    const uint8_t *key = pubkey ? pubkey : vendor_key;
    size_t body = n - crypto_sign_BYTES;
    if (crypto_sign_verify_detached(pkg + body, pkg, body, key) != 0)
        return r3d_fail(err, R3D_EPERM, "update: signature does not verify with the %s key "
                        "(unsigned, damaged or signed by someone else); refused",
                        pubkey ? "given" : "vendor");
    size_t ml = (size_t)pkg[8] | (size_t)pkg[9] << 8 | (size_t)pkg[10] << 16 |
                (size_t)pkg[11] << 24;
    if (ml > MANIFEST_MAX || ml > body - 12)
        return r3d_fail(err, R3D_EFORMAT, "update: manifest length beyond the package");
    cJSON *m = cJSON_ParseWithLength((const char *)pkg + 12, ml);
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(m, "name");
    const cJSON *vr = cJSON_GetObjectItemCaseSensitive(m, "version");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(m, "payload_sha256");
    const cJSON *sz = cJSON_GetObjectItemCaseSensitive(m, "payload_size");
    r3d_status st = R3D_OK;
    if (!cJSON_IsString(nm) || !cJSON_IsString(vr) || !cJSON_IsString(sh) ||
        !cJSON_IsNumber(sz) || !st_name_ok(nm->valuestring) || !version_ok(vr->valuestring) ||
        !st_is_hex(sh->valuestring, 64) || sz->valuedouble != (double)(body - 12 - ml))
        st = r3d_fail(err, R3D_EFORMAT, "update: manifest malformed");
    if (!st) {
        char calc[65];
        st_sha256_hex(pkg + 12 + ml, body - 12 - ml, calc);
        if (strcmp(calc, sh->valuestring) != 0)
            st = r3d_fail(err, R3D_EDATA, "update: payload does not match its hash");
    }
    if (!st) {
        snprintf(info->name, sizeof info->name, "%s", nm->valuestring);
        snprintf(info->version, sizeof info->version, "%s", vr->valuestring);
        snprintf(info->payload_sha256, sizeof info->payload_sha256, "%s", sh->valuestring);
        info->payload_size = body - 12 - ml;
    }
    cJSON_Delete(m);
    return st;
}

r3d_status r3d_update_apply(r3d_store *s, const r3d_actor *a, const uint8_t *pkg, size_t n,
                            const uint8_t *pubkey, r3d_update_info *info, r3d_error *err)
{
    r3d_update_info tmp;
    if (!info)
        info = &tmp;
    memset(info, 0, sizeof *info);
    if (!s)
        return r3d_fail(err, R3D_EARG, "update: no store");
    ST_LOCK(s);
    r3d_status st = st_permit(s, a, R3D_ACT_UPDATE, err);
    if (!st) {
        st = r3d_update_verify(pkg, n, pubkey, info, err);
        if (st)
            st_audit(s, a, "update.refused", "update package", r3d_status_name(st), NULL);
    }
    sqlite3_stmt *q = NULL;
    if (!st && !(st = st_prepare(s, "SELECT 1 FROM updates WHERE name = ? AND version = ?", &q,
                                 err))) {
        sqlite3_bind_text(q, 1, info->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, info->version, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW)
            st = r3d_fail(err, R3D_ECONFLICT, "update %s %s: applied already", info->name,
                          info->version);
        sqlite3_finalize(q);
    }
    if (!st) {
        char dir[4200], path[4400];
        snprintf(dir, sizeof dir, "%s/updates", s->dir);
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            st = r3d_fail(err, R3D_EIO, "%s: cannot create the folder: %s", dir,
                          strerror(errno));
        snprintf(path, sizeof path, "%s/%s-%s.pkg", dir, info->name, info->version);
        if (!st)
            st = r3d_file_write_atomic(path, pkg, n, err);
    }
    if (!st && !(st = st_begin(s, err))) {
        if (!(st = st_prepare(s, "INSERT INTO updates(name, version, payload_sha256, applied_by, "
                                 "at) VALUES(?,?,?,?,strftime('%Y-%m-%dT%H:%M:%fZ','now'))", &q,
                              err))) {
            sqlite3_bind_text(q, 1, info->name, -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 2, info->version, -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 3, info->payload_sha256, -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 4, a->user, -1, SQLITE_TRANSIENT);
            st = st_step(s, q, "cannot record the update", err);
        }
        char obj[128];
        snprintf(obj, sizeof obj, "update %s %s", info->name, info->version);
        if (!st)
            st = st_audit(s, a, "update.apply", obj, "ok", err);
        st = st_end(s, st, err);
    }
    ST_UNLOCK(s);
    return st;
}

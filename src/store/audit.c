/* audit.c - the audit trail: an append-only table whose entries are chained
 * by hash, so changing, deleting or reordering any entry is detected.
 *
 * Entry n stores prev = hash of entry n-1 (64 zeros for the first) and
 * hash = SHA-256(prev || len|seq || len|at || len|user || len|role ||
 * len|origin || len|what || len|object || len|outcome), each field prefixed
 * with its 4-byte length so no two field lists hash alike. meta.audit_head
 * holds "seq hash" of the last entry, written in the same transaction, so
 * cutting entries off the end is detected too. Triggers refuse UPDATE and
 * DELETE on the table (db.c); the chain is what catches whoever drops them.
 *
 * What an entry may say: an action ("case.view"), an object ("case 12",
 * "user bob"), an outcome - never a patient name; callers only pass ids. */
#include "store/store_internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_field(crypto_hash_sha256_state *h, const char *t)
{
    uint32_t n = (uint32_t)strlen(t);
    uint8_t len[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    crypto_hash_sha256_update(h, len, 4);
    crypto_hash_sha256_update(h, (const uint8_t *)t, n);
}

static void entry_hash(const char *prev, int64_t seq, const char *const f[7], char out[65])
{
    crypto_hash_sha256_state h;
    crypto_hash_sha256_init(&h);
    crypto_hash_sha256_update(&h, (const uint8_t *)prev, strlen(prev));
    char sq[32];
    snprintf(sq, sizeof sq, "%lld", (long long)seq);
    put_field(&h, sq);
    for (int i = 0; i < 7; i++)
        put_field(&h, f[i] ? f[i] : "");
    uint8_t d[32];
    crypto_hash_sha256_final(&h, d);
    st_hex(d, 32, out);
}

/* Control characters out, length bounded: the log stays one line per entry. */
static void clean(const char *in, char *out, size_t cap)
{
    size_t j = 0;
    for (const char *p = in ? in : ""; *p && j + 1 < cap; p++)
        out[j++] = (unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p;
    out[j] = 0;
}

static const char ZERO_HASH[] =
    "0000000000000000000000000000000000000000000000000000000000000000";

r3d_status st_audit(r3d_store *s, const r3d_actor *a, const char *what, const char *object,
                    const char *outcome, r3d_error *err)
{
    int own = sqlite3_get_autocommit(s->db);
    r3d_status st = R3D_OK;
    if (own && (st = st_begin(s, err)))
        return st;
    char at[32], user[64], role[16], origin[64], w[64], obj[256], out[256];
    st_iso_now(at);
    clean(a ? a->user : "system", user, sizeof user);
    clean(a ? r3d_role_name(a->role) : "none", role, sizeof role);
    clean(a ? a->origin : "", origin, sizeof origin);
    clean(what, w, sizeof w);
    clean(object, obj, sizeof obj);
    clean(outcome, out, sizeof out);

    char prev[65] = {0};
    int64_t seq = 1;
    sqlite3_stmt *q = NULL;
    if (!(st = st_prepare(s, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &q, err))) {
        if (sqlite3_step(q) == SQLITE_ROW) {
            seq = sqlite3_column_int64(q, 0) + 1;
            st_col_copy(q, 1, prev, sizeof prev);
        } else {
            memcpy(prev, ZERO_HASH, 65);
        }
        sqlite3_finalize(q);
    }
    char hash[65];
    const char *f[7] = {at, user, role, origin, w, obj, out};
    entry_hash(prev, seq, f, hash);
    if (!st && !(st = st_prepare(s, "INSERT INTO audit(seq, at, user, role, origin, what, object,"
                                    " outcome, prev, hash) VALUES(?,?,?,?,?,?,?,?,?,?)",
                                 &q, err))) {
        sqlite3_bind_int64(q, 1, seq);
        for (int i = 0; i < 7; i++)
            sqlite3_bind_text(q, 2 + i, f[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 9, prev, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 10, hash, -1, SQLITE_STATIC);
        st = st_step(s, q, "cannot append to the audit trail", err);
    }
    if (!st && !(st = st_prepare(s, "INSERT OR REPLACE INTO meta(key, value) "
                                    "VALUES('audit_head', ?)", &q, err))) {
        char head[100];
        snprintf(head, sizeof head, "%lld %s", (long long)seq, hash);
        sqlite3_bind_text(q, 1, head, -1, SQLITE_TRANSIENT);
        st = st_step(s, q, "cannot record the audit head", err);
    }
    if (own)
        st = st_end(s, st, err);
    return st;
}

r3d_status r3d_audit(r3d_store *s, const r3d_actor *a, const char *what, const char *object,
                     const char *outcome, r3d_error *err)
{
    if (!s || !what || !*what)
        return r3d_fail(err, R3D_EARG, "audit: no store or no action");
    ST_LOCK(s);
    r3d_status st = st_audit(s, a, what, object ? object : "", outcome ? outcome : "ok", err);
    ST_UNLOCK(s);
    return st;
}

r3d_status st_audit_verify(r3d_store *s, int64_t *first_bad, int64_t *entries, r3d_error *err)
{
    *first_bad = 0;
    if (entries)
        *entries = 0;
    sqlite3_stmt *q = NULL;
    r3d_status st = st_prepare(s, "SELECT seq, at, user, role, origin, what, object, outcome, "
                                  "prev, hash FROM audit ORDER BY seq", &q, err);
    if (st)
        return st;
    char prev[65];
    memcpy(prev, ZERO_HASH, 65);
    int64_t expect = 1, bad = 0, n = 0;
    const char *why = "";
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(q, 0);
        const char *f[7];
        for (int i = 0; i < 7; i++)
            f[i] = (const char *)sqlite3_column_text(q, 1 + i);
        const char *p = (const char *)sqlite3_column_text(q, 8);
        const char *h = (const char *)sqlite3_column_text(q, 9);
        n++;
        if (seq != expect) {
            bad = expect;
            why = "missing (deleted or renumbered)";
            break;
        }
        char calc[65];
        entry_hash(prev, seq, f, calc);
        if (!p || strcmp(p, prev) != 0) {
            bad = seq;
            why = "does not follow the entry before it (removed, inserted or moved)";
            break;
        }
        if (!h || strcmp(h, calc) != 0) {
            bad = seq;
            why = "content changed";
            break;
        }
        snprintf(prev, sizeof prev, "%s", h);
        expect++;
    }
    sqlite3_finalize(q);
    if (!bad && rc != SQLITE_DONE)
        return st_sqlfail(s, err, rc, "cannot read the audit trail");
    if (!bad) {
        /* the head written with the last append: entries cut off the end */
        char head[128] = "";
        if (st_prepare(s, "SELECT value FROM meta WHERE key = 'audit_head'", &q, NULL) == R3D_OK) {
            if (sqlite3_step(q) == SQLITE_ROW)
                st_col_copy(q, 0, head, sizeof head);
            sqlite3_finalize(q);
        }
        long long hseq = 0;
        char hhash[65] = "";
        if (head[0] && sscanf(head, "%lld %64s", &hseq, hhash) == 2) {
            if (hseq > expect - 1) {
                bad = expect;
                why = "missing (entries removed from the end)";
            } else if (hseq == expect - 1 && strcmp(hhash, prev) != 0) {
                bad = hseq;
                why = "content changed";
            } else if (hseq < expect - 1) {
                bad = hseq + 1;
                why = "appended without the store (head does not know it)";
            }
        } else if (expect > 1) {
            bad = 1;
            why = "audit head record missing";
        }
    }
    if (entries)
        *entries = n;
    if (bad) {
        *first_bad = bad;
        return r3d_fail(err, R3D_EDATA, "%s/store.db: audit entry %lld %s", s->dir,
                        (long long)bad, why);
    }
    return R3D_OK;
}

r3d_status r3d_audit_verify(r3d_store *s, int64_t *first_bad, r3d_error *err)
{
    int64_t dummy = 0;
    if (!first_bad)
        first_bad = &dummy;
    if (!s)
        return r3d_fail(err, R3D_EARG, "audit: no store");
    ST_LOCK(s);
    r3d_status st = st_audit_verify(s, first_bad, NULL, err);
    ST_UNLOCK(s);
    return st;
}

r3d_status r3d_audit_list(r3d_store *s, const r3d_actor *a, int64_t from, int max, char **json,
                          r3d_error *err)
{
    if (!s || !json)
        return r3d_fail(err, R3D_EARG, "audit: no store or no output");
    *json = NULL;
    if (max <= 0 || max > 100000)
        max = 100000;
    ST_LOCK(s);
    r3d_status st = st_permit(s, a, R3D_ACT_AUDIT_READ, err);
    sqlite3_stmt *q = NULL;
    if (!st)
        st = st_prepare(s, "SELECT seq, at, user, role, origin, what, object, outcome FROM audit "
                           "WHERE seq >= ? ORDER BY seq LIMIT ?", &q, err);
    if (!st) {
        sqlite3_bind_int64(q, 1, from);
        sqlite3_bind_int(q, 2, max);
        cJSON *arr = cJSON_CreateArray();
        static const char *const keys[] = {"at", "user", "role", "origin", "what", "object",
                                           "outcome"};
        while (sqlite3_step(q) == SQLITE_ROW) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "seq", (double)sqlite3_column_int64(q, 0));
            for (int i = 0; i < 7; i++)
                cJSON_AddStringToObject(e, keys[i], (const char *)sqlite3_column_text(q, 1 + i));
            cJSON_AddItemToArray(arr, e);
        }
        sqlite3_finalize(q);
        *json = cJSON_Print(arr);
        cJSON_Delete(arr);
        if (!*json)
            st = r3d_fail(err, R3D_ENOMEM, "audit: out of memory");
        else
            st = st_audit(s, a, "audit.read", "audit", "ok", err);
    }
    ST_UNLOCK(s);
    return st;
}

r3d_status r3d_audit_hash_at(r3d_store *s, int64_t seq, char hash[65], r3d_error *err)
{
    if (!s || !hash)
        return r3d_fail(err, R3D_EARG, "audit: no store or no output");
    hash[0] = 0;
    ST_LOCK(s);
    sqlite3_stmt *q = NULL;
    r3d_status st = st_prepare(s, "SELECT hash FROM audit WHERE seq = ?", &q, err);
    if (!st) {
        sqlite3_bind_int64(q, 1, seq);
        if (sqlite3_step(q) == SQLITE_ROW)
            st_col_copy(q, 0, hash, 65);
        else
            st = r3d_fail(err, R3D_ENOTFOUND, "audit entry %lld: not in the trail",
                          (long long)seq);
        sqlite3_finalize(q);
    }
    ST_UNLOCK(s);
    return st;
}

r3d_status r3d_audit_head(r3d_store *s, int64_t *seq, char hash[65], r3d_error *err)
{
    if (!s || !seq || !hash)
        return r3d_fail(err, R3D_EARG, "audit: no store or no output");
    ST_LOCK(s);
    *seq = st_query_int(s, "SELECT max(seq) FROM audit", 0, 0);
    ST_UNLOCK(s);
    if (!*seq) {
        hash[0] = 0;
        return R3D_OK;
    }
    return r3d_audit_hash_at(s, *seq, hash, err);
}

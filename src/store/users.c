/* users.c - users, passwords, log-in with lock-out and rate limits,
 * sessions (clauses 4.8.2, 4.8.3).
 *
 * Passwords: Argon2id (libsodium crypto_pwhash_str, "interactive" limits:
 * 64 MiB, 2 passes), never stored or logged otherwise. Policy: at least
 * password.min_length characters, not one of the 3546 common passwords in
 * data/common-passwords.txt (case-insensitively), not containing the user
 * name. The hash is computed with the store lock released, so one log-in
 * does not stall every other request.
 *
 * Lock-out: login.max_failures consecutive failures lock the account for
 * login.lockout_seconds (an administrator resetting the password unlocks
 * it); independently, an origin (client address) with more than
 * login.origin_failures_per_minute failures in the last minute is refused
 * before any password is checked - the server's rate limit on log-in.
 * Unknown user names cost the same time as wrong passwords and get the same
 * message, so the answer does not tell which names exist.
 *
 * Sessions: 32 random bytes as 64 hex digits; the store keeps only their
 * SHA-256, so reading the database does not give anyone a session. A
 * session ends session.idle_seconds after its last use or
 * session.max_seconds after log-in, whichever comes first. */
#include "store/store_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PW_MAX 1024

/* ---- policy -------------------------------------------------------------------------------- */

static int is_common(const char *pw)
{
    size_t n = strlen(pw);
    const char *p = r3d__common_passwords;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n) {
            size_t i = 0;
            while (i < n && tolower((unsigned char)p[i]) == tolower((unsigned char)pw[i]))
                i++;
            if (i == n)
                return 1;
        }
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

static int contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle), h = strlen(hay);
    for (size_t i = 0; n && i + n <= h; i++) {
        size_t k = 0;
        while (k < n && tolower((unsigned char)hay[i + k]) == tolower((unsigned char)needle[k]))
            k++;
        if (k == n)
            return 1;
    }
    return 0;
}

static r3d_status policy(r3d_store *s, const char *name, const char *pw, r3d_error *err)
{
    if (!pw)
        return r3d_fail(err, R3D_EARG, "password: none given");
    size_t n = strnlen(pw, PW_MAX + 1);
    if (n > PW_MAX)
        return r3d_fail(err, R3D_EARG, "password: longer than %d bytes", PW_MAX);
    /* characters, not bytes: UTF-8 continuation bytes do not count */
    int64_t chars = 0;
    for (size_t i = 0; i < n; i++)
        chars += ((unsigned char)pw[i] & 0xc0) != 0x80;
    int64_t min = st_setting(s, "password.min_length");
    if (chars < min)
        return r3d_fail(err, R3D_EARG, "password: too short (%lld characters; the policy asks "
                        "for at least %lld)", (long long)chars, (long long)min);
    if (st_setting(s, "password.refuse_common") && is_common(pw))
        return r3d_fail(err, R3D_EARG, "password: one of the commonly used passwords; choose "
                        "another");
    if (name && strlen(name) >= 3 && contains_ci(pw, name))
        return r3d_fail(err, R3D_EARG, "password: must not contain the user name");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)pw[i] < 0x20 || pw[i] == 0x7f)
            return r3d_fail(err, R3D_EARG, "password: control characters are not allowed");
    return R3D_OK;
}

r3d_status r3d_password_check(r3d_store *s, const char *name, const char *password,
                              r3d_error *err)
{
    if (!s)
        return r3d_fail(err, R3D_EARG, "password: no store");
    ST_LOCK(s);
    r3d_status st = policy(s, name, password, err);
    ST_UNLOCK(s);
    return st;
}

static r3d_status hash_password(const char *pw, char out[crypto_pwhash_STRBYTES], r3d_error *err)
{
    if (crypto_pwhash_str_alg(out, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE,
                              crypto_pwhash_ALG_ARGON2ID13) != 0)
        return r3d_fail(err, R3D_ENOMEM, "password: Argon2id ran out of memory");
    return R3D_OK;
}

/* ---- users ----------------------------------------------------------------------------- */

int r3d_store_has_users(r3d_store *s)
{
    if (!s)
        return 0;
    ST_LOCK(s);
    int n = (int)st_query_int(s, "SELECT count(*) FROM users", 0, 0);
    ST_UNLOCK(s);
    return n > 0;
}

static r3d_status check_name(const char *name, r3d_error *err)
{
    if (!st_name_ok(name))
        return r3d_fail(err, R3D_EARG, "user name: 1 to 63 letters, digits, '.', '_' or '-', "
                        "not starting with '.' or '-'");
    return R3D_OK;
}

r3d_status r3d_user_create(r3d_store *s, const r3d_actor *by, const char *name,
                           const char *password, r3d_role role, r3d_error *err)
{
    if (!s)
        return r3d_fail(err, R3D_EARG, "user: no store");
    r3d_status st = check_name(name, err);
    if (st)
        return st;
    if (role < R3D_ROLE_ADMIN || role > R3D_ROLE_ENGINEER)
        return r3d_fail(err, R3D_EARG, "user %s: unknown role %d", name, (int)role);
    ST_LOCK(s);
    r3d_actor first = {0, "setup", R3D_ROLE_NONE, "first run"};
    if (!by) {
        if (st_query_int(s, "SELECT count(*) FROM users", 0, 0) > 0)
            st = st_permit(s, NULL, R3D_ACT_USER_ADMIN, err);
        else if (role != R3D_ROLE_ADMIN)
            st = r3d_fail(err, R3D_EARG, "first-run set-up: the first user must be an "
                          "administrator");
        by = &first;
    } else {
        st = st_permit(s, by, R3D_ACT_USER_ADMIN, err);
    }
    if (!st)
        st = policy(s, name, password, err);
    if (st) {
        ST_UNLOCK(s);
        return st;
    }
    char hash[crypto_pwhash_STRBYTES];
    ST_UNLOCK(s);
    st = hash_password(password, hash, err);
    if (st)
        return st;
    ST_LOCK(s);
    sqlite3_stmt *q = NULL;
    char obj[96];
    snprintf(obj, sizeof obj, "user %s", name);
    if (!(st = st_begin(s, err))) {
        /* re-check first run inside the transaction: two set-ups racing */
        if (by == &first && st_query_int(s, "SELECT count(*) FROM users", 0, 0) > 0)
            st = r3d_fail(err, R3D_ECONFLICT, "first-run set-up: an administrator exists "
                          "already");
        if (!st && !(st = st_prepare(s, "SELECT 1 FROM users WHERE name = ? COLLATE NOCASE", &q,
                                     err))) {
            sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
            if (sqlite3_step(q) == SQLITE_ROW)
                st = r3d_fail(err, R3D_ECONFLICT, "user %s: exists already", name);
            sqlite3_finalize(q);
        }
        if (!st && !(st = st_prepare(s, "INSERT INTO users(name, role, pwhash, created) VALUES("
                                        "?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
                                     &q, err))) {
            sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
            sqlite3_bind_int(q, 2, role);
            sqlite3_bind_text(q, 3, hash, -1, SQLITE_STATIC);
            st = st_step(s, q, "cannot add the user", err);
        }
        if (!st)
            st = st_audit(s, by, "user.create", obj, r3d_role_name(role), err);
        st = st_end(s, st, err);
    }
    ST_UNLOCK(s);
    sodium_memzero(hash, sizeof hash);
    return st;
}

static r3d_id user_id(r3d_store *s, const char *name, r3d_role *role)
{
    sqlite3_stmt *q = NULL;
    r3d_id id = 0;
    if (st_prepare(s, "SELECT id, role FROM users WHERE name = ?", &q, NULL))
        return 0;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW) {
        id = sqlite3_column_int64(q, 0);
        if (role)
            *role = (r3d_role)sqlite3_column_int(q, 1);
    }
    sqlite3_finalize(q);
    return id;
}

r3d_status r3d_user_set_password(r3d_store *s, const r3d_actor *by, const char *name,
                                 const char *password, r3d_error *err)
{
    if (!s)
        return r3d_fail(err, R3D_EARG, "user: no store");
    r3d_status st = check_name(name, err);
    if (st)
        return st;
    ST_LOCK(s);
    /* one's own password, or anyone's as administrator */
    int self = by && by->user_id > 0 && strncmp(by->user, name, sizeof by->user) == 0 &&
               user_id(s, name, NULL) == by->user_id;
    if (self) {
        /* still a real, enabled user: any permitted action proves it */
        st = st_query_int(s, "SELECT count(*) FROM users WHERE id = ? AND disabled = 0",
                          by->user_id, 0) == 1
                 ? R3D_OK
                 : st_permit(s, by, R3D_ACT_USER_ADMIN, err);
    } else {
        st = st_permit(s, by, R3D_ACT_USER_ADMIN, err);
    }
    r3d_id id = st ? 0 : user_id(s, name, NULL);
    if (!st && !id)
        st = r3d_fail(err, R3D_ENOTFOUND, "user %s: no such user", name);
    if (!st)
        st = policy(s, name, password, err);
    ST_UNLOCK(s);
    if (st)
        return st;
    char hash[crypto_pwhash_STRBYTES];
    if ((st = hash_password(password, hash, err)))
        return st;
    ST_LOCK(s);
    sqlite3_stmt *q = NULL;
    if (!(st = st_begin(s, err))) {
        if (!(st = st_prepare(s, "UPDATE users SET pwhash = ?, failures = 0, locked_until = 0 "
                                 "WHERE id = ?", &q, err))) {
            sqlite3_bind_text(q, 1, hash, -1, SQLITE_STATIC);
            sqlite3_bind_int64(q, 2, id);
            st = st_step(s, q, "cannot change the password", err);
        }
        /* a new password ends every session of the old one */
        if (!st && !(st = st_prepare(s, "DELETE FROM sessions WHERE user_id = ?", &q, err))) {
            sqlite3_bind_int64(q, 1, id);
            sqlite3_step(q);
            sqlite3_finalize(q);
        }
        char obj[96];
        snprintf(obj, sizeof obj, "user %s", name);
        if (!st)
            st = st_audit(s, by, "user.password", obj, self ? "own" : "reset", err);
        st = st_end(s, st, err);
    }
    ST_UNLOCK(s);
    sodium_memzero(hash, sizeof hash);
    return st;
}

r3d_status r3d_user_set_role(r3d_store *s, const r3d_actor *by, const char *name, r3d_role role,
                             r3d_error *err)
{
    if (!s)
        return r3d_fail(err, R3D_EARG, "user: no store");
    r3d_status st = check_name(name, err);
    if (st)
        return st;
    if (role < R3D_ROLE_ADMIN || role > R3D_ROLE_ENGINEER)
        return r3d_fail(err, R3D_EARG, "user %s: unknown role %d", name, (int)role);
    ST_LOCK(s);
    st = st_permit(s, by, R3D_ACT_USER_ADMIN, err);
    r3d_role old = R3D_ROLE_NONE;
    r3d_id id = st ? 0 : user_id(s, name, &old);
    if (!st && !id)
        st = r3d_fail(err, R3D_ENOTFOUND, "user %s: no such user", name);
    sqlite3_stmt *q = NULL;
    if (!st && !(st = st_begin(s, err))) {
        if (old == R3D_ROLE_ADMIN && role != R3D_ROLE_ADMIN &&
            st_query_int(s, "SELECT count(*) FROM users WHERE role = 1 AND disabled = 0", 0, 0) <=
                1)
            st = r3d_fail(err, R3D_ECONFLICT, "user %s: the last administrator cannot lose the "
                          "role; make another administrator first", name);
        if (!st && !(st = st_prepare(s, "UPDATE users SET role = ? WHERE id = ?", &q, err))) {
            sqlite3_bind_int(q, 1, role);
            sqlite3_bind_int64(q, 2, id);
            st = st_step(s, q, "cannot change the role", err);
        }
        char obj[96], out[64];
        snprintf(obj, sizeof obj, "user %s", name);
        snprintf(out, sizeof out, "%s -> %s", r3d_role_name(old), r3d_role_name(role));
        if (!st)
            st = st_audit(s, by, "user.role", obj, out, err);
        st = st_end(s, st, err);
    }
    ST_UNLOCK(s);
    return st;
}

r3d_status r3d_user_list(r3d_store *s, const r3d_actor *by, r3d_user_info **users, int *n,
                         r3d_error *err)
{
    if (!s || !users || !n)
        return r3d_fail(err, R3D_EARG, "user list: no store or no output");
    *users = NULL;
    *n = 0;
    ST_LOCK(s);
    r3d_status st = st_permit(s, by, R3D_ACT_USER_ADMIN, err);
    sqlite3_stmt *q = NULL;
    if (!st)
        st = st_prepare(s, "SELECT id, name, role, failures, locked_until, created FROM users "
                           "ORDER BY id", &q, err);
    if (!st) {
        int64_t cap = 0;
        while (sqlite3_step(q) == SQLITE_ROW) {
            if (!r3d_grow((void **)users, &cap, *n + 1, sizeof **users)) {
                st = r3d_fail(err, R3D_ENOMEM, "user list: out of memory");
                break;
            }
            r3d_user_info *u = &(*users)[*n];
            memset(u, 0, sizeof *u);
            u->id = sqlite3_column_int64(q, 0);
            st_col_copy(q, 1, u->name, sizeof u->name);
            u->role = (r3d_role)sqlite3_column_int(q, 2);
            u->failures = sqlite3_column_int(q, 3);
            u->locked_until = sqlite3_column_int64(q, 4);
            if (u->locked_until <= st_now())
                u->locked_until = 0;
            st_col_copy(q, 5, u->created, sizeof u->created);
            (*n)++;
        }
        sqlite3_finalize(q);
        if (!st)
            st = st_audit(s, by, "user.list", "users", "ok", err);
    }
    if (st) {
        free(*users);
        *users = NULL;
        *n = 0;
    }
    ST_UNLOCK(s);
    return st;
}

/* ---- log-in --------------------------------------------------------------------------- */

static void record_origin_failure(r3d_store *s, const char *origin)
{
    sqlite3_stmt *q = NULL;
    if (st_prepare(s, "INSERT INTO login_failures(origin, at) VALUES(?, ?)", &q, NULL) == R3D_OK) {
        sqlite3_bind_text(q, 1, origin, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, st_now());
        sqlite3_step(q);
        sqlite3_finalize(q);
    }
    if (st_prepare(s, "DELETE FROM login_failures WHERE at < ?", &q, NULL) == R3D_OK) {
        sqlite3_bind_int64(q, 1, st_now() - 3600);
        sqlite3_step(q);
        sqlite3_finalize(q);
    }
}

/* The origin without its port: "http 10.0.0.7:53312" -> "http 10.0.0.7" (a
 * client gets a new port per connection; the limit is per address). */
static void origin_host(const char *origin, char *out, size_t cap)
{
    snprintf(out, cap, "%s", origin);
    char *colon = strrchr(out, ':');
    if (colon && !strchr(colon, ']')) {
        char *p = colon + 1;
        while (*p >= '0' && *p <= '9')
            p++;
        if (*p == 0 && p > colon + 1)
            *colon = 0;
    }
}

static r3d_status login_fail(r3d_store *s, const char *origin_key, r3d_actor *who,
                             const char *why, r3d_error *err, r3d_status code, const char *msg)
{
    if (!st_begin(s, NULL)) {
        record_origin_failure(s, origin_key);
        char obj[96];
        snprintf(obj, sizeof obj, "user %s", who->user[0] ? who->user : "?");
        st_audit(s, who, "login", obj, why, NULL);
        if (st_commit(s, NULL))
            st_rollback(s);
    }
    return r3d_fail(err, code, "%s", msg);
}

/* A hash of a random password, made once, for unknown user names. */
static char dummy_hash[crypto_pwhash_STRBYTES];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static void make_dummy(void)
{
    uint8_t r[16];
    char pw[33];
    randombytes_buf(r, sizeof r);
    st_hex(r, sizeof r, pw);
    hash_password(pw, dummy_hash, NULL);
}

static const char WRONG[] = "log-in refused: user name or password wrong";

r3d_status r3d_login(r3d_store *s, const char *name, const char *password, const char *origin,
                     char token[65], r3d_actor *out, r3d_error *err)
{
    if (!s || !token || !out)
        return r3d_fail(err, R3D_EARG, "log-in: no store or no output");
    token[0] = 0;
    memset(out, 0, sizeof *out);
    char okey[64];
    char orig[64];
    snprintf(orig, sizeof orig, "%s", origin && *origin ? origin : "unknown");
    for (char *p = orig; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    origin_host(orig, okey, sizeof okey);
    r3d_actor who = {0, "", R3D_ROLE_NONE, ""};
    snprintf(who.origin, sizeof who.origin, "%s", orig);
    int name_ok = st_name_ok(name);
    if (name_ok)
        snprintf(who.user, sizeof who.user, "%s", name);
    int pw_ok = password && strnlen(password, PW_MAX + 1) <= PW_MAX;

    ST_LOCK(s);
    /* rate limit per origin, before any password work */
    sqlite3_stmt *q = NULL;
    int64_t recent = 0;
    if (st_prepare(s, "SELECT count(*) FROM login_failures WHERE origin = ? AND at > ?", &q,
                   NULL) == R3D_OK) {
        sqlite3_bind_text(q, 1, okey, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, st_now() - 60);
        if (sqlite3_step(q) == SQLITE_ROW)
            recent = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    if (recent >= st_setting(s, "login.origin_failures_per_minute")) {
        r3d_status st = login_fail(s, okey, &who, "refused: rate limit", err, R3D_EPERM,
                                   "log-in refused: too many failed attempts from this place; "
                                   "wait a minute");
        ST_UNLOCK(s);
        return st;
    }
    char hash[crypto_pwhash_STRBYTES] = "";
    r3d_id id = 0;
    r3d_role role = R3D_ROLE_NONE;
    int64_t locked_until = 0;
    int disabled = 0;
    if (name_ok && st_prepare(s, "SELECT id, role, pwhash, locked_until, disabled FROM users "
                                 "WHERE name = ?", &q, NULL) == R3D_OK) {
        sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW) {
            id = sqlite3_column_int64(q, 0);
            role = (r3d_role)sqlite3_column_int(q, 1);
            st_col_copy(q, 2, hash, sizeof hash);
            locked_until = sqlite3_column_int64(q, 3);
            disabled = sqlite3_column_int(q, 4);
        }
        sqlite3_finalize(q);
    }
    if (id && locked_until > st_now()) {
        char msg[160];
        snprintf(msg, sizeof msg, "log-in refused: account %s is locked after repeated failures "
                 "for %lld more seconds (or until an administrator resets it)", name,
                 (long long)(locked_until - st_now()));
        r3d_status st = login_fail(s, okey, &who, "refused: locked", err, R3D_EPERM, msg);
        ST_UNLOCK(s);
        return st;
    }
    ST_UNLOCK(s);

    /* The slow part, without the lock. Unknown users verify against a
     * throw-away hash so that both answers take the same time. */
    if (!hash[0]) {
        pthread_once(&dummy_once, make_dummy);
        memcpy(hash, dummy_hash, sizeof hash);
    }
    int good = pw_ok && id && !disabled &&
               crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
    if (!id && pw_ok && crypto_pwhash_str_verify(hash, password, strlen(password)) == 0)
        good = 0; /* cannot match a random password; only spends the same time */

    ST_LOCK(s);
    r3d_status st = R3D_OK;
    if (!good) {
        who.user_id = 0;
        if (id && !st_begin(s, NULL)) {
            int64_t maxf = st_setting(s, "login.max_failures");
            int64_t lock = st_setting(s, "login.lockout_seconds");
            if (!st_prepare(s, "UPDATE users SET failures = failures + 1, locked_until = CASE "
                               "WHEN failures + 1 >= ? THEN ? ELSE locked_until END WHERE id = ?",
                            &q, NULL)) {
                sqlite3_bind_int64(q, 1, maxf);
                sqlite3_bind_int64(q, 2, st_now() + lock);
                sqlite3_bind_int64(q, 3, id);
                sqlite3_step(q);
                sqlite3_finalize(q);
            }
            int locked = st_query_int(s, "SELECT locked_until > strftime('%s','now') FROM users "
                                         "WHERE id = ?", id, 0) == 1;
            if (st_commit(s, NULL))
                st_rollback(s);
            st = login_fail(s, okey, &who, locked ? "failed: account now locked" : "failed", err,
                            R3D_EPERM, WRONG);
        } else {
            st = login_fail(s, okey, &who, "failed", err, R3D_EPERM, WRONG);
        }
        ST_UNLOCK(s);
        sodium_memzero(hash, sizeof hash);
        return st;
    }
    uint8_t raw[32];
    randombytes_buf(raw, sizeof raw);
    char tok[65], th[65];
    st_hex(raw, 32, tok);
    st_sha256_hex(tok, 64, th);
    sodium_memzero(raw, sizeof raw);
    int64_t now = st_now();
    if (!(st = st_begin(s, err))) {
        if (!(st = st_prepare(s, "UPDATE users SET failures = 0, locked_until = 0 WHERE id = ?",
                              &q, err))) {
            sqlite3_bind_int64(q, 1, id);
            sqlite3_step(q);
            sqlite3_finalize(q);
        }
        if (!st && !(st = st_prepare(s, "INSERT INTO sessions(token_hash, user_id, origin, "
                                        "created, last_seen, expires) VALUES(?,?,?,?,?,?)",
                                     &q, err))) {
            sqlite3_bind_text(q, 1, th, -1, SQLITE_STATIC);
            sqlite3_bind_int64(q, 2, id);
            sqlite3_bind_text(q, 3, orig, -1, SQLITE_STATIC);
            sqlite3_bind_int64(q, 4, now);
            sqlite3_bind_int64(q, 5, now);
            sqlite3_bind_int64(q, 6, now + st_setting(s, "session.max_seconds"));
            st = st_step(s, q, "cannot open a session", err);
        }
        if (!st && !(st = st_prepare(s, "DELETE FROM sessions WHERE expires < ?", &q, err))) {
            sqlite3_bind_int64(q, 1, now);
            sqlite3_step(q);
            sqlite3_finalize(q);
        }
        who.user_id = id;
        who.role = role;
        char obj[96];
        snprintf(obj, sizeof obj, "user %s", name);
        if (!st)
            st = st_audit(s, &who, "login", obj, "ok", err);
        st = st_end(s, st, err);
    }
    ST_UNLOCK(s);
    sodium_memzero(hash, sizeof hash);
    if (st)
        return st;
    memcpy(token, tok, 65);
    *out = who;
    return R3D_OK;
}

r3d_status r3d_session_check(r3d_store *s, const char *token, const char *origin, r3d_actor *out,
                             r3d_error *err)
{
    if (!s || !out)
        return r3d_fail(err, R3D_EARG, "session: no store or no output");
    memset(out, 0, sizeof *out);
    if (!st_is_hex(token, 64))
        return r3d_fail(err, R3D_EPERM, "session: not logged in (no valid session token)");
    char th[65];
    st_sha256_hex(token, 64, th);
    ST_LOCK(s);
    sqlite3_stmt *q = NULL;
    r3d_status st = st_prepare(s, "SELECT s.user_id, s.last_seen, s.expires, u.name, u.role, "
                                  "u.disabled FROM sessions s JOIN users u ON u.id = s.user_id "
                                  "WHERE s.token_hash = ?", &q, err);
    int found = 0, disabled = 0;
    int64_t last = 0, expires = 0, now = st_now();
    if (!st) {
        sqlite3_bind_text(q, 1, th, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW) {
            found = 1;
            out->user_id = sqlite3_column_int64(q, 0);
            last = sqlite3_column_int64(q, 1);
            expires = sqlite3_column_int64(q, 2);
            st_col_copy(q, 3, out->user, sizeof out->user);
            out->role = (r3d_role)sqlite3_column_int(q, 4);
            disabled = sqlite3_column_int(q, 5);
        }
        sqlite3_finalize(q);
    }
    int64_t idle = st_setting(s, "session.idle_seconds");
    if (!st && (!found || disabled || now > expires || now > last + idle)) {
        if (found && !st_prepare(s, "DELETE FROM sessions WHERE token_hash = ?", &q, NULL)) {
            sqlite3_bind_text(q, 1, th, -1, SQLITE_STATIC);
            sqlite3_step(q);
            sqlite3_finalize(q);
        }
        st = r3d_fail(err, R3D_EPERM, "session: %s; log in again",
                      found ? "expired" : "not logged in (unknown session)");
        memset(out, 0, sizeof *out);
    } else if (!st && now - last >= 15) {
        /* refresh the idle clock, but not a write per request */
        if (!st_prepare(s, "UPDATE sessions SET last_seen = ? WHERE token_hash = ?", &q, NULL)) {
            sqlite3_bind_int64(q, 1, now);
            sqlite3_bind_text(q, 2, th, -1, SQLITE_STATIC);
            sqlite3_step(q);
            sqlite3_finalize(q);
        }
    }
    ST_UNLOCK(s);
    if (!st) {
        snprintf(out->origin, sizeof out->origin, "%s", origin && *origin ? origin : "unknown");
        for (char *p = out->origin; *p; p++)
            if ((unsigned char)*p < 0x20)
                *p = ' ';
    }
    return st;
}

void r3d_logout(r3d_store *s, const char *token)
{
    if (!s || !st_is_hex(token, 64))
        return;
    char th[65];
    st_sha256_hex(token, 64, th);
    ST_LOCK(s);
    sqlite3_stmt *q = NULL;
    r3d_actor who = {0, "", R3D_ROLE_NONE, ""};
    if (!st_prepare(s, "SELECT u.id, u.name, u.role, s.origin FROM sessions s JOIN users u ON "
                       "u.id = s.user_id WHERE s.token_hash = ?", &q, NULL)) {
        sqlite3_bind_text(q, 1, th, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW) {
            who.user_id = sqlite3_column_int64(q, 0);
            st_col_copy(q, 1, who.user, sizeof who.user);
            who.role = (r3d_role)sqlite3_column_int(q, 2);
            st_col_copy(q, 3, who.origin, sizeof who.origin);
        }
        sqlite3_finalize(q);
    }
    if (who.user_id && !st_begin(s, NULL)) {
        if (!st_prepare(s, "DELETE FROM sessions WHERE token_hash = ?", &q, NULL)) {
            sqlite3_bind_text(q, 1, th, -1, SQLITE_STATIC);
            sqlite3_step(q);
            sqlite3_finalize(q);
        }
        char obj[96];
        snprintf(obj, sizeof obj, "user %s", who.user);
        st_audit(s, &who, "logout", obj, "ok", NULL);
        if (st_commit(s, NULL))
            st_rollback(s);
    }
    ST_UNLOCK(s);
}

/* ---- where the user was ------------------------------------------------------------ */

void st_touch_case(r3d_store *s, const r3d_actor *a, r3d_id case_id)
{
    if (!a || a->user_id <= 0)
        return;
    sqlite3_stmt *q = NULL;
    if (!st_prepare(s, "INSERT OR REPLACE INTO user_state(user_id, case_id, at) VALUES(?, ?, "
                       "strftime('%Y-%m-%dT%H:%M:%fZ','now'))", &q, NULL)) {
        sqlite3_bind_int64(q, 1, a->user_id);
        sqlite3_bind_int64(q, 2, case_id);
        sqlite3_step(q);
        sqlite3_finalize(q);
    }
}

r3d_status r3d_user_last_case(r3d_store *s, const r3d_actor *a, r3d_id *case_id, r3d_error *err)
{
    if (!s || !case_id)
        return r3d_fail(err, R3D_EARG, "last case: no store or no output");
    *case_id = 0;
    ST_LOCK(s);
    r3d_status st = st_permit(s, a, R3D_ACT_CASE_LIST, err);
    if (!st)
        *case_id = st_query_int(s, "SELECT u.case_id FROM user_state u JOIN cases c ON c.id = "
                                   "u.case_id WHERE u.user_id = ? AND c.deleted = 0",
                                a->user_id, 0);
    ST_UNLOCK(s);
    return st;
}

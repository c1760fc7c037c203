/* db.c - opening the store: folder layout, SQLite settings, the schema and
 * its migrations, recovery of jobs a crash interrupted, and the SQL helpers
 * the other files share.
 *
 * Durability: journal_mode=WAL with synchronous=FULL makes every COMMIT
 * fsync the log before it returns, so an acknowledged change survives kill -9
 * and power loss; blobs are written (temp name, fsync, rename, folder fsync)
 * before the row that names them is committed, so a committed row never
 * points at a missing file - a crash in between leaves at most an orphan
 * blob, which `store check` reports and ignores.
 *
 * Schema version lives in PRAGMA user_version; migrate() applies each step
 * in its own transaction, so a crash during a migration leaves the previous
 * version intact. */
#include "store/store_internal.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- SQL helpers ------------------------------------------------------------------ */

r3d_status st_sqlfail(r3d_store *s, r3d_error *err, int rc, const char *what)
{
    int prim = rc & 0xff;
    r3d_status code = R3D_EIO;
    if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED)
        code = R3D_ECONFLICT;
    else if (prim == SQLITE_CORRUPT || prim == SQLITE_NOTADB)
        code = R3D_EDATA;
    else if (prim == SQLITE_NOMEM)
        code = R3D_ENOMEM;
    else if (prim == SQLITE_CONSTRAINT)
        code = R3D_ECONFLICT;
    const char *detail = s && s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
    return r3d_fail(err, code, "%s/store.db: %s: %s%s", s && s->dir ? s->dir : "store", what,
                    detail, code == R3D_ECONFLICT && prim != SQLITE_CONSTRAINT
                                ? " (another process holds the store; try again)"
                                : "");
}

r3d_status st_exec(r3d_store *s, const char *sql, r3d_error *err)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? R3D_OK : st_sqlfail(s, err, rc, "statement failed");
}

r3d_status st_prepare(r3d_store *s, const char *sql, sqlite3_stmt **st, r3d_error *err)
{
    int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? R3D_OK : st_sqlfail(s, err, rc, "cannot prepare a query");
}

r3d_status st_begin(r3d_store *s, r3d_error *err)
{
    int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    return rc == SQLITE_OK ? R3D_OK : st_sqlfail(s, err, rc, "cannot start a transaction");
}

r3d_status st_commit(r3d_store *s, r3d_error *err)
{
    int rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        return R3D_OK;
    r3d_status st = st_sqlfail(s, err, rc, "cannot commit");
    st_rollback(s);
    return st;
}

void st_rollback(r3d_store *s)
{
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

r3d_status st_step(r3d_store *s, sqlite3_stmt *q, const char *what, r3d_error *err)
{
    /* a row is success too: a statement that returns rows (SELECT, or DML
     * with RETURNING, whose changes all happen on the first step) */
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? R3D_OK : st_sqlfail(s, err, rc, what);
}

r3d_status st_end(r3d_store *s, r3d_status st, r3d_error *err)
{
    if (!st)
        return st_commit(s, err);
    st_rollback(s);
    return st;
}

int64_t st_query_int(r3d_store *s, const char *sql, int64_t bind1, int64_t def)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return def;
    if (sqlite3_bind_parameter_count(st) >= 1)
        sqlite3_bind_int64(st, 1, bind1);
    int64_t v = def;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

int64_t st_last_id(r3d_store *s)
{
    return sqlite3_last_insert_rowid(s->db);
}

void st_col_copy(sqlite3_stmt *st, int col, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

char *st_col_dup(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return strdup(t ? (const char *)t : "");
}

/* ---- time, hashing, names ------------------------------------------------------------ */

int64_t st_now(void)
{
    return (int64_t)time(NULL);
}

void st_iso_now(char out[32])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char buf[96];
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ts.tv_nsec / 1000000));
    snprintf(out, 32, "%.31s", buf);
}

void st_hex(const uint8_t *b, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * n] = 0;
}

void st_sha256_hex(const void *data, size_t n, char out[65])
{
    uint8_t h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, data, n);
    st_hex(h, sizeof h, out);
}

int st_is_hex(const char *t, size_t n)
{
    if (!t || strlen(t) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f')))
            return 0;
    return 1;
}

int st_name_ok(const char *name)
{
    if (!name || !*name || name[0] == '.' || name[0] == '-')
        return 0;
    size_t n = 0;
    for (const char *p = name; *p; p++, n++) {
        char c = *p;
        if (n >= 63)
            return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

r3d_status st_json_ok(const char *json, size_t max, int want_object, const char *what,
                      r3d_error *err)
{
    if (!json)
        return r3d_fail(err, R3D_EARG, "%s: no JSON given", what);
    size_t n = strnlen(json, max + 1);
    if (n > max)
        return r3d_fail(err, R3D_EARG, "%s: JSON longer than %zu bytes", what, max);
    /* the whole text must be one value: trailing bytes are refused */
    cJSON *j = cJSON_ParseWithLengthOpts(json, n + 1, NULL, 1);
    if (!j)
        return r3d_fail(err, R3D_EARG, "%s: malformed JSON", what);
    int ok = want_object ? cJSON_IsObject(j) : (cJSON_IsObject(j) || cJSON_IsArray(j));
    cJSON_Delete(j);
    if (!ok)
        return r3d_fail(err, R3D_EARG, "%s: JSON must be an object", what);
    return R3D_OK;
}

/* ---- settings --------------------------------------------------------------------- */

static const struct {
    const char *key;
    int64_t def, min, max;
} settings_table[] = {
    {"password.min_length", 12, 8, 128},
    {"password.refuse_common", 1, 0, 1},
    {"login.max_failures", 5, 1, 100},
    {"login.lockout_seconds", 900, 10, 86400 * 30},
    {"login.origin_failures_per_minute", 20, 1, 10000},
    {"session.idle_seconds", 1800, 60, 86400 * 7},
    {"session.max_seconds", 43200, 60, 86400 * 30},
};

static int setting_index(const char *key)
{
    for (size_t i = 0; i < sizeof settings_table / sizeof settings_table[0]; i++)
        if (key && strcmp(key, settings_table[i].key) == 0)
            return (int)i;
    return -1;
}

int64_t st_setting(r3d_store *s, const char *key)
{
    int i = setting_index(key);
    if (i < 0)
        return 0;
    int64_t v = settings_table[i].def;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM settings WHERE key = ?", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    return v;
}

r3d_status r3d_setting_get(r3d_store *s, const char *key, int64_t *value, r3d_error *err)
{
    if (!s || !value)
        return r3d_fail(err, R3D_EARG, "setting: no store or no output");
    if (setting_index(key) < 0)
        return r3d_fail(err, R3D_ENOTFOUND, "setting \"%.64s\": no such setting",
                        st_name_ok(key) ? key : "?");
    ST_LOCK(s);
    *value = st_setting(s, key);
    ST_UNLOCK(s);
    return R3D_OK;
}

r3d_status r3d_setting_set(r3d_store *s, const r3d_actor *by, const char *key, int64_t value,
                           r3d_error *err)
{
    if (!s)
        return r3d_fail(err, R3D_EARG, "setting: no store");
    int i = setting_index(key);
    if (i < 0)
        return r3d_fail(err, R3D_ENOTFOUND, "setting \"%.64s\": no such setting",
                        st_name_ok(key) ? key : "?");
    if (value < settings_table[i].min || value > settings_table[i].max)
        return r3d_fail(err, R3D_EARG, "setting %s: %lld is outside %lld..%lld", key,
                        (long long)value, (long long)settings_table[i].min,
                        (long long)settings_table[i].max);
    ST_LOCK(s);
    r3d_status st = st_permit(s, by, R3D_ACT_USER_ADMIN, err);
    sqlite3_stmt *q = NULL;
    if (!st)
        st = st_begin(s, err);
    if (!st && !(st = st_prepare(s, "INSERT OR REPLACE INTO settings(key, value) VALUES(?, ?)",
                                 &q, err))) {
        sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, value);
        st = st_step(s, q, "cannot save a setting", err);
        char obj[128];
        snprintf(obj, sizeof obj, "setting %s=%lld", key, (long long)value);
        if (!st)
            st = st_audit(s, by, "setting.set", obj, "ok", err);
        st = st_end(s, st, err);
    }
    ST_UNLOCK(s);
    return st;
}

/* ---- schema ---------------------------------------------------------------------------- */

/* Each step moves user_version from i to i+1. Never edit a step that has
 * shipped; add one. */
static const char *const migrations[] = {
    /* 0 -> 1: everything */
    "CREATE TABLE settings(key TEXT PRIMARY KEY, value NOT NULL);"
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    "  role INTEGER NOT NULL CHECK(role BETWEEN 1 AND 4), pwhash TEXT NOT NULL,"
    "  failures INTEGER NOT NULL DEFAULT 0, locked_until INTEGER NOT NULL DEFAULT 0,"
    "  created TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE sessions(token_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL"
    "  REFERENCES users(id), origin TEXT NOT NULL, created INTEGER NOT NULL,"
    "  last_seen INTEGER NOT NULL, expires INTEGER NOT NULL);"
    "CREATE TABLE login_failures(id INTEGER PRIMARY KEY, origin TEXT NOT NULL,"
    "  at INTEGER NOT NULL);"
    "CREATE INDEX login_failures_origin ON login_failures(origin, at);"
    "CREATE TABLE blobs(sha256 TEXT PRIMARY KEY, plain_sha256 TEXT NOT NULL,"
    "  size INTEGER NOT NULL, created TEXT NOT NULL);"
    "CREATE INDEX blobs_plain ON blobs(plain_sha256);"
    "CREATE TABLE patients(id INTEGER PRIMARY KEY, patient_key TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL, pid TEXT NOT NULL);"
    "CREATE TABLE studies(id INTEGER PRIMARY KEY, patient_id INTEGER NOT NULL"
    "  REFERENCES patients(id), study_uid TEXT NOT NULL UNIQUE);"
    "CREATE TABLE series(id INTEGER PRIMARY KEY, study_id INTEGER NOT NULL"
    "  REFERENCES studies(id), series_uid TEXT NOT NULL, modality TEXT NOT NULL,"
    "  input_kind TEXT NOT NULL, acq_json TEXT NOT NULL,"
    "  image_blob TEXT NOT NULL REFERENCES blobs(sha256),"
    "  dim0 INTEGER, dim1 INTEGER, dim2 INTEGER, sp0 REAL, sp1 REAL, sp2 REAL,"
    "  imported TEXT NOT NULL, imported_by TEXT NOT NULL, software TEXT NOT NULL,"
    "  machine TEXT NOT NULL);"
    "CREATE TABLE inputs(id INTEGER PRIMARY KEY, series_id INTEGER NOT NULL"
    "  REFERENCES series(id), sop_uid TEXT NOT NULL, sha256 TEXT NOT NULL,"
    "  size INTEGER NOT NULL, name TEXT NOT NULL);"
    "CREATE INDEX inputs_series ON inputs(series_id);"
    "CREATE TABLE cases(id INTEGER PRIMARY KEY, series_id INTEGER NOT NULL"
    "  REFERENCES series(id), title TEXT NOT NULL, created TEXT NOT NULL,"
    "  created_by TEXT NOT NULL, head_version INTEGER REFERENCES label_versions(id),"
    "  deleted INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE label_versions(id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL"
    "  REFERENCES cases(id), parent INTEGER REFERENCES label_versions(id),"
    "  blob TEXT NOT NULL REFERENCES blobs(sha256), plain_sha256 TEXT NOT NULL,"
    "  table_json TEXT NOT NULL, author TEXT NOT NULL, algorithm TEXT NOT NULL,"
    "  params_json TEXT NOT NULL, note TEXT NOT NULL, created TEXT NOT NULL,"
    "  software TEXT NOT NULL, machine TEXT NOT NULL, origin TEXT NOT NULL);"
    "CREATE INDEX label_versions_case ON label_versions(case_id);"
    "CREATE TABLE head_changes(id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL"
    "  REFERENCES cases(id), from_version INTEGER, to_version INTEGER,"
    "  author TEXT NOT NULL, at TEXT NOT NULL);"
    "CREATE TABLE meshes(id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL REFERENCES cases(id),"
    "  version_id INTEGER NOT NULL REFERENCES label_versions(id), label INTEGER NOT NULL,"
    "  format TEXT NOT NULL, params_json TEXT NOT NULL,"
    "  blob TEXT NOT NULL REFERENCES blobs(sha256), plain_sha256 TEXT NOT NULL,"
    "  size INTEGER NOT NULL, author TEXT NOT NULL, created TEXT NOT NULL,"
    "  software TEXT NOT NULL, machine TEXT NOT NULL,"
    "  UNIQUE(version_id, label, format, params_json));"
    "CREATE INDEX meshes_plain ON meshes(plain_sha256);"
    "CREATE TABLE case_docs(id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL"
    "  REFERENCES cases(id), kind TEXT NOT NULL, json TEXT NOT NULL, author TEXT NOT NULL,"
    "  created TEXT NOT NULL);"
    "CREATE INDEX case_docs_kind ON case_docs(case_id, kind);"
    "CREATE TABLE jobs(id INTEGER PRIMARY KEY, case_id INTEGER REFERENCES cases(id),"
    "  kind TEXT NOT NULL, params_json TEXT NOT NULL, state INTEGER NOT NULL,"
    "  progress REAL NOT NULL DEFAULT 0, stage TEXT NOT NULL DEFAULT '',"
    "  message TEXT NOT NULL DEFAULT '', result_json TEXT, submitted_by TEXT NOT NULL,"
    "  created TEXT NOT NULL, started TEXT, finished TEXT, owner TEXT,"
    "  attempts INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX jobs_state ON jobs(state, id);"
    "CREATE TABLE user_state(user_id INTEGER PRIMARY KEY REFERENCES users(id),"
    "  case_id INTEGER REFERENCES cases(id), at TEXT NOT NULL);"
    "CREATE TABLE updates(id INTEGER PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL,"
    "  payload_sha256 TEXT NOT NULL, applied_by TEXT NOT NULL, at TEXT NOT NULL);"
    "CREATE TABLE audit(seq INTEGER PRIMARY KEY, at TEXT NOT NULL, user TEXT NOT NULL,"
    "  role TEXT NOT NULL, origin TEXT NOT NULL, what TEXT NOT NULL, object TEXT NOT NULL,"
    "  outcome TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL);"
    /* Entries are append-only for ordinary SQL: an accident or a careless
     * tool cannot rewrite them; a determined attacker can drop the triggers,
     * and then the hash chain (and its head in meta) tells. */
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN"
    "  SELECT RAISE(ABORT, 'audit entries cannot be changed'); END;"
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN"
    "  SELECT RAISE(ABORT, 'audit entries cannot be deleted'); END;",
    /* 1 -> 2: files exported from a case (DICOM SEG, models, ...), so that
     * `recon3d trace` finds an exported file by its SHA-256 */
    "CREATE TABLE exports(id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL REFERENCES cases(id),"
    "  version_id INTEGER REFERENCES label_versions(id), sha256 TEXT NOT NULL,"
    "  kind TEXT NOT NULL, deidentified INTEGER NOT NULL, author TEXT NOT NULL,"
    "  created TEXT NOT NULL, software TEXT NOT NULL, machine TEXT NOT NULL);"
    "CREATE INDEX exports_sha ON exports(sha256);",
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

static r3d_status migrate(r3d_store *s, r3d_error *err)
{
    for (;;) {
        r3d_status st = st_begin(s, err);
        if (st)
            return st;
        int v = (int)st_query_int(s, "PRAGMA user_version", 0, 0);
        if (v > N_MIGRATIONS) {
            st_rollback(s);
            return r3d_fail(err, R3D_EUNSUPPORTED,
                            "%s/store.db: schema version %d is newer than this recon3d knows "
                            "(%d); update recon3d",
                            s->dir, v, N_MIGRATIONS);
        }
        if (v == N_MIGRATIONS) {
            st_rollback(s);
            return R3D_OK;
        }
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v + 1);
        if ((st = st_exec(s, migrations[v], err)) || (st = st_exec(s, pragma, err))) {
            st_rollback(s);
            r3d_error_prefix(err, "migration %d -> %d: ", v, v + 1);
            return st;
        }
        if ((st = st_commit(s, err)))
            return st;
    }
}

/* ---- key (encryption at rest) --------------------------------------------------------- */

static r3d_status read_key(const char *path, uint8_t key[32], r3d_error *err)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    r3d_status st = r3d_file_read_all(path, &buf, &n, err);
    if (st)
        return st;
    /* 32 raw bytes, or 64 hex digits (optionally followed by a newline) */
    if (n == 32) {
        memcpy(key, buf, 32);
    } else if (n >= 64 && n <= 65) {
        size_t bin_len = 0;
        if (sodium_hex2bin(key, 32, (const char *)buf, 64, NULL, &bin_len, NULL) != 0 ||
            bin_len != 32) {
            sodium_memzero(buf, n);
            free(buf);
            return r3d_fail(err, R3D_EFORMAT, "%s: key file is not 64 hex digits", path);
        }
    } else {
        sodium_memzero(buf, n);
        free(buf);
        return r3d_fail(err, R3D_EFORMAT, "%s: a key file holds 32 bytes or 64 hex digits, not "
                        "%zu bytes", path, n);
    }
    sodium_memzero(buf, n);
    free(buf);
    return R3D_OK;
}

r3d_status r3d_store_key_generate(const char *path, r3d_error *err)
{
    if (sodium_init() < 0)
        return r3d_fail(err, R3D_EIO, "libsodium could not initialise");
    uint8_t key[32];
    char hex[65];
    crypto_secretbox_keygen(key);
    st_hex(key, 32, hex);
    hex[64] = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return r3d_fail(err, R3D_EIO, "%s: cannot create the key file: %s", path,
                        strerror(errno));
    char line[66];
    memcpy(line, hex, 64);
    line[64] = '\n';
    ssize_t w = write(fd, line, 65);
    int ok = w == 65 && fsync(fd) == 0;
    close(fd);
    sodium_memzero(key, sizeof key);
    sodium_memzero(hex, sizeof hex);
    sodium_memzero(line, sizeof line);
    if (!ok) {
        unlink(path);
        return r3d_fail(err, R3D_EIO, "%s: cannot write the key file", path);
    }
    return R3D_OK;
}

/* The store remembers a check value of its key (a keyed hash of a fixed
 * text), never the key, so a wrong or missing key is a clear error. */
static void key_check_value(const uint8_t key[32], char out[65])
{
    uint8_t h[32];
    static const char what[] = "recon3d store key check v1";
    crypto_generichash(h, sizeof h, (const uint8_t *)what, sizeof what - 1, key, 32);
    st_hex(h, 32, out);
}

static r3d_status meta_get(r3d_store *s, const char *key, char *out, size_t cap)
{
    sqlite3_stmt *st = NULL;
    out[0] = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = ?", -1, &st, NULL))
        return R3D_EIO;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    r3d_status r = R3D_ENOTFOUND;
    if (sqlite3_step(st) == SQLITE_ROW) {
        st_col_copy(st, 0, out, cap);
        r = R3D_OK;
    }
    sqlite3_finalize(st);
    return r;
}

static r3d_status setup_key(r3d_store *s, const char *key_file, const uint8_t *key_bytes,
                            r3d_error *err)
{
    char stored[80];
    int has = meta_get(s, "key_check", stored, sizeof stored) == R3D_OK;
    int64_t rows = st_query_int(s, "SELECT (SELECT count(*) FROM blobs) + (SELECT count(*) FROM "
                                   "users)", 0, 0);
    if (!key_file && !key_bytes) {
        if (has)
            return r3d_fail(err, R3D_EPERM, "%s: the store is encrypted; give its key file "
                            "(--key-file or R3D_KEY_FILE)", s->dir);
        return R3D_OK;
    }
    r3d_status st = R3D_OK;
    if (key_bytes)
        memcpy(s->key, key_bytes, 32);
    else if ((st = read_key(key_file, s->key, err)))
        return st;
    if (!key_file)
        key_file = "the key";
    char cv[65];
    key_check_value(s->key, cv);
    if (has) {
        if (strcmp(cv, stored) != 0)
            return r3d_fail(err, R3D_EPERM, "%s: this is not the store's key", key_file);
    } else {
        if (rows > 0)
            return r3d_fail(err, R3D_ECONFLICT, "%s: the store was created without a key; "
                            "encryption is chosen when a store is created", s->dir);
        sqlite3_stmt *q = NULL;
        if ((st = st_prepare(s, "INSERT INTO meta(key, value) VALUES('key_check', ?)", &q, err)))
            return st;
        sqlite3_bind_text(q, 1, cv, -1, SQLITE_STATIC);
        if ((st = st_step(s, q, "cannot record the key check", err)))
            return st;
    }
    s->sealed = 1;
    return R3D_OK;
}

/* ---- jobs a crash interrupted -------------------------------------------------------- */

/* A job's owner is "host:pid:starttime"; it is alive if that process still
 * runs here with the same start time (pids are reused). */
static void process_token(int pid, char *out, size_t cap)
{
    char path[64], buf[1024];
    unsigned long long start = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
        char *p = strrchr(buf, ')');
        /* fields after the command: state is field 3, starttime field 22 */
        for (int field = 2; p && *p && field < 22; p++)
            if (*p == ' ')
                field++;
        if (p)
            start = strtoull(p, NULL, 10);
    }
    snprintf(out, cap, "%d:%llu", pid, start);
}

void st_job_owner(r3d_store *s, char *out, size_t cap)
{
    char tok[64];
    process_token((int)getpid(), tok, sizeof tok);
    snprintf(out, cap, "%s:%s", s->machine, tok);
}

static int owner_alive(r3d_store *s, const char *owner)
{
    size_t m = strlen(s->machine);
    if (!owner || strncmp(owner, s->machine, m) != 0 || owner[m] != ':')
        return 1; /* another machine's worker: not ours to judge */
    int pid = atoi(owner + m + 1);
    if (pid <= 0)
        return 0;
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return 0;
    char now[64];
    process_token(pid, now, sizeof now);
    return strcmp(now, owner + m + 1) == 0;
}

/* Jobs left running by a dead process: re-queued up to 3 attempts, then
 * failed with a clear message. */
static r3d_status recover_jobs(r3d_store *s, r3d_error *err)
{
    sqlite3_stmt *q = NULL;
    r3d_status st = st_begin(s, err);
    if (st)
        return st;
    if ((st = st_prepare(s, "SELECT id, owner, attempts FROM jobs WHERE state = 1", &q, err))) {
        st_rollback(s);
        return st;
    }
    int64_t ids[256];
    int requeue[256], n = 0;
    while (n < 256 && sqlite3_step(q) == SQLITE_ROW) {
        const char *owner = (const char *)sqlite3_column_text(q, 1);
        if (owner_alive(s, owner))
            continue;
        ids[n] = sqlite3_column_int64(q, 0);
        requeue[n] = sqlite3_column_int(q, 2) < 3;
        n++;
    }
    sqlite3_finalize(q);
    for (int i = 0; i < n && !st; i++) {
        const char *sql =
            requeue[i]
                ? "UPDATE jobs SET state = 0, owner = NULL, progress = 0, stage = 'requeued "
                  "after a crash' WHERE id = ?"
                : "UPDATE jobs SET state = 3, owner = NULL, finished = strftime('%Y-%m-%dT%H:%M:"
                  "%fZ','now'), message = 'interrupted: the process running it stopped three "
                  "times (crash or power cut); submit it again' WHERE id = ?";
        if (!(st = st_prepare(s, sql, &q, err))) {
            sqlite3_bind_int64(q, 1, ids[i]);
            st = st_step(s, q, "cannot recover a job", err);
        }
        if (!st) {
            char obj[64];
            snprintf(obj, sizeof obj, "job %lld", (long long)ids[i]);
            r3d_actor sys = {0, "system", R3D_ROLE_NONE, "store open"};
            st = st_audit(s, &sys, "job.recover", obj, requeue[i] ? "requeued" : "failed", err);
        }
    }
    return st_end(s, st, err);
}

/* ---- leftovers of a crash ------------------------------------------------------------ */

/* Temporary blob files (".tmp-" in blobs/ab/) an hour old are remnants of
 * an interrupted write (a live writer renames within seconds). Images are
 * encoded in memory (r3d_nifti_write_mem), so nothing else is left. */
static void remove_leftovers(r3d_store *s)
{
    char dir[4200], path[4800];
    DIR *d;
    struct dirent *e;
    time_t now = time(NULL);
    snprintf(dir, sizeof dir, "%s/blobs", s->dir);
    d = opendir(dir);
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.' || strlen(e->d_name) != 2)
            continue;
        char sub[4400];
        snprintf(sub, sizeof sub, "%s/%.2s", dir, e->d_name);
        DIR *d2 = opendir(sub);
        struct dirent *f;
        while (d2 && (f = readdir(d2))) {
            if (!strstr(f->d_name, ".tmp-"))
                continue;
            snprintf(path, sizeof path, "%s/%.255s", sub, f->d_name);
            struct stat sb;
            if (stat(path, &sb) == 0 && now - sb.st_mtime > 3600)
                unlink(path);
        }
        if (d2)
            closedir(d2);
    }
    if (d)
        closedir(d);
}

/* ---- open / close ----------------------------------------------------------------------- */

/* mkdir -p, each new folder owner-only */
static r3d_status mkdir_p(const char *path, r3d_error *err)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return r3d_fail(err, R3D_EIO, "%s: cannot create the folder: %s", buf,
                            strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0700) == 0 || errno == EEXIST)
        return R3D_OK;
    return r3d_fail(err, R3D_EIO, "%s: cannot create the folder: %s", path, strerror(errno));
}

r3d_status st_open(const char *dir, const r3d_store_opts *opts, const uint8_t *key_bytes,
                   r3d_store **out, r3d_error *err)
{
    if (out)
        *out = NULL;
    if (!dir || !*dir || !out)
        return r3d_fail(err, R3D_EARG, "store: no folder given");
    if (strlen(dir) > 3000)
        return r3d_fail(err, R3D_EARG, "store: folder name too long");
    if (sodium_init() < 0)
        return r3d_fail(err, R3D_EIO, "libsodium could not initialise");
    r3d_store_opts def = {0, NULL};
    if (!opts)
        opts = &def;
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof path, "%s/store.db", dir);
    if (stat(path, &sb) != 0) {
        if (!opts->create)
            return r3d_fail(err, R3D_ENOTFOUND, "%s: no store here (create one with `recon3d "
                            "store init`)", dir);
        r3d_status st = mkdir_p(dir, err);
        if (st)
            return st;
    }
    snprintf(path, sizeof path, "%s/blobs", dir);
    if (opts->create || stat(path, &sb) != 0) {
        r3d_status st = mkdir_p(path, err);
        if (st)
            return st;
    }

    r3d_store *s = calloc(1, sizeof *s);
    if (!s)
        return r3d_fail(err, R3D_ENOMEM, "store: out of memory");
    s->dir = strdup(dir);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&s->mu, &ma);
    pthread_mutexattr_destroy(&ma);
    if (gethostname(s->machine, sizeof s->machine - 1) != 0)
        snprintf(s->machine, sizeof s->machine, "unknown");
    for (char *p = s->machine; *p; p++)
        if (*p == ':')
            *p = '_';

    snprintf(path, sizeof path, "%s/store.db", dir);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX |
                (opts->create ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path, &s->db, flags, NULL);
    r3d_status st = R3D_OK;
    if (rc != SQLITE_OK) {
        st = st_sqlfail(s, err, rc, "cannot open");
        goto fail;
    }
    /* patient data: owner only (SQLite gives its WAL and shm files the
     * database file's mode) */
    chmod(path, 0600);
    sqlite3_busy_timeout(s->db, 10000);
    sqlite3_extended_result_codes(s->db, 1);
    /* journal_mode must be set outside a transaction; it is persistent. */
    if ((st = st_exec(s, "PRAGMA journal_mode = WAL", err)) ||
        (st = st_exec(s, "PRAGMA synchronous = FULL", err)) ||
        (st = st_exec(s, "PRAGMA foreign_keys = ON", err)) ||
        (st = st_exec(s, "PRAGMA secure_delete = ON", err)) ||
        (st = st_exec(s, "PRAGMA trusted_schema = OFF", err)))
        goto fail;
    if (st_query_int(s, "PRAGMA foreign_keys", 0, 0) != 1) {
        st = r3d_fail(err, R3D_EUNSUPPORTED, "%s: this SQLite has no foreign keys", dir);
        goto fail;
    }
    if ((st = migrate(s, err)))
        goto fail;
    if ((st = st_begin(s, err)))
        goto fail;
    if ((st = setup_key(s, opts->key_file, key_bytes, err))) {
        st_rollback(s);
        goto fail;
    }
    if ((st = st_commit(s, err)))
        goto fail;
    if ((st = recover_jobs(s, err)))
        goto fail;
    remove_leftovers(s);
    *out = s;
    return R3D_OK;
fail:
    r3d_store_close(s);
    return st;
}

r3d_status r3d_store_open(const char *dir, const r3d_store_opts *opts, r3d_store **out,
                          r3d_error *err)
{
    return st_open(dir, opts, NULL, out, err);
}

void r3d_store_close(r3d_store *s)
{
    if (!s)
        return;
    if (s->db)
        sqlite3_close_v2(s->db);
    sodium_memzero(s->key, sizeof s->key);
    pthread_mutex_destroy(&s->mu);
    free(s->dir);
    free(s);
}

/* ---- acquisition record <-> JSON ------------------------------------------------------- */

#define ACQ_STR(X)                                                                         \
    X(modality) X(manufacturer) X(model) X(station) X(institution) X(series_uid)           \
    X(study_uid) X(frame_of_reference_uid) X(series_description) X(protocol_name)          \
    X(body_part) X(kernel) X(contrast_agent) X(sequence_name) X(scanning_sequence)         \
    X(acquisition_date) X(acquisition_time) X(transfer_syntax) X(image_type)               \
    X(mr_acquisition_type)
#define ACQ_NUM(X)                                                                         \
    X(kvp) X(tube_current_ma) X(exposure_mas) X(exposure_time_ms) X(slice_thickness_mm)   \
    X(spacing_between_slices_mm) X(magnetic_field_t) X(repetition_time_ms)               \
    X(echo_time_ms) X(inversion_time_ms) X(flip_angle_deg) X(gantry_tilt_deg)            \
    X(rescale_slope) X(rescale_intercept)

char *st_acq_to_json(const r3d_acq *a)
{
    cJSON *o = cJSON_CreateObject();
#define S_(f) if (a->f[0]) cJSON_AddStringToObject(o, #f, a->f);
#define N_(f) if (!isnan(a->f)) cJSON_AddNumberToObject(o, #f, a->f);
    ACQ_STR(S_)
    ACQ_NUM(N_)
#undef S_
#undef N_
    if (!isnan(a->pixel_spacing_mm[0]) && !isnan(a->pixel_spacing_mm[1])) {
        cJSON *p = cJSON_AddArrayToObject(o, "pixel_spacing_mm");
        cJSON_AddItemToArray(p, cJSON_CreateNumber(a->pixel_spacing_mm[0]));
        cJSON_AddItemToArray(p, cJSON_CreateNumber(a->pixel_spacing_mm[1]));
    }
    cJSON_AddNumberToObject(o, "series_number", a->series_number);
    cJSON_AddNumberToObject(o, "n_files", a->n_files);
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return t;
}

void st_acq_from_json(const char *json, r3d_acq *a)
{
    r3d_acq_init(a);
    cJSON *o = json ? cJSON_Parse(json) : NULL;
    if (!o)
        return;
    const cJSON *it;
#define S_(f)                                                                              \
    if ((it = cJSON_GetObjectItemCaseSensitive(o, #f)) && cJSON_IsString(it))              \
        snprintf(a->f, sizeof a->f, "%s", it->valuestring);
#define N_(f)                                                                              \
    if ((it = cJSON_GetObjectItemCaseSensitive(o, #f)) && cJSON_IsNumber(it))              \
        a->f = it->valuedouble;
    ACQ_STR(S_)
    ACQ_NUM(N_)
#undef S_
#undef N_
    if ((it = cJSON_GetObjectItemCaseSensitive(o, "pixel_spacing_mm")) && cJSON_IsArray(it) &&
        cJSON_GetArraySize(it) == 2) {
        a->pixel_spacing_mm[0] = cJSON_GetArrayItem(it, 0)->valuedouble;
        a->pixel_spacing_mm[1] = cJSON_GetArrayItem(it, 1)->valuedouble;
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(o, "series_number")) && cJSON_IsNumber(it))
        a->series_number = it->valueint;
    if ((it = cJSON_GetObjectItemCaseSensitive(o, "n_files")) && cJSON_IsNumber(it))
        a->n_files = it->valueint;
    cJSON_Delete(o);
}

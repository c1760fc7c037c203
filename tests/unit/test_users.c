/* test_users.c - accounts: first-run set-up, password policy (length,
 * common passwords, user name), Argon2id hashes, lock-out after repeated
 * failures, per-origin rate limit, sessions that expire and end, and
 * software updates refused unless signed with the trusted key. */
#define _GNU_SOURCE
#include "check.h"
#include "test_store_fixture.h"

#include <sodium.h>
#include <sqlite3.h>

extern const char r3d__common_passwords[];

static void db_exec(fx_store *f, const char *sql)
{
    char path[700];
    snprintf(path, sizeof path, "%s/store.db", f->store);
    sqlite3 *db = NULL;
    sqlite3_open(path, &db);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fprintf(stderr, "  sql: %s\n", msg);
    sqlite3_free(msg);
    sqlite3_close(db);
}

static void test_first_run(void)
{
    char dir[512], store[600];
    CHECK(fx_tmpdir(dir, sizeof dir));
    snprintf(store, sizeof store, "%s/s", dir);
    r3d_store *s = NULL;
    r3d_store_opts o = {1, NULL};
    r3d_error e = R3D_ERROR_INIT;
    CHECK_INT(r3d_store_open(store, &o, &s, &e), R3D_OK);
    CHECK_INT(r3d_store_has_users(s), 0);
    CHECK_INT(r3d_user_create(s, NULL, "carl", FX_PASSWORD, R3D_ROLE_CLINICIAN, &e), R3D_EARG);
    CHECK_CONTAINS(e.msg, "administrator");
    CHECK_INT(r3d_user_create(s, NULL, "ada", FX_PASSWORD, R3D_ROLE_ADMIN, &e), R3D_OK);
    CHECK_INT(r3d_store_has_users(s), 1);
    /* set-up is over: nobody may create users without logging in */
    CHECK_INT(r3d_user_create(s, NULL, "eve", FX_PASSWORD, R3D_ROLE_ADMIN, &e), R3D_EPERM);
    /* the hash is Argon2id, and the password is nowhere in the file */
    r3d_store_close(s);
    char path[700];
    snprintf(path, sizeof path, "%s/store.db", store);
    sqlite3 *db = NULL;
    sqlite3_open(path, &db);
    sqlite3_stmt *q = NULL;
    sqlite3_prepare_v2(db, "SELECT pwhash FROM users WHERE name = 'ada'", -1, &q, NULL);
    CHECK(sqlite3_step(q) == SQLITE_ROW);
    CHECK(strncmp((const char *)sqlite3_column_text(q, 0), "$argon2id$", 10) == 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    uint8_t *b = NULL;
    size_t n = 0;
    r3d_file_read_all(path, &b, &n, NULL);
    CHECK(b && !memmem(b, n, FX_PASSWORD, strlen(FX_PASSWORD)));
    free(b);
    fx_rmtree(dir);
}

static void test_policy(void)
{
    fx_store f;
    CHECK(fx_open(&f, NULL));
    r3d_error e = R3D_ERROR_INIT;
    CHECK_INT(r3d_password_check(f.s, "bob", "short1", &e), R3D_EARG);
    CHECK_CONTAINS(e.msg, "too short");
    CHECK_INT(r3d_password_check(f.s, "bob", "winniethepooh", &e), R3D_EARG);
    CHECK_CONTAINS(e.msg, "common");
    CHECK_INT(r3d_password_check(f.s, "bob", "WinnieThePooh", &e), R3D_EARG);
    CHECK_INT(r3d_password_check(f.s, "roberta", "my name is Roberta!!", &e), R3D_EARG);
    CHECK_CONTAINS(e.msg, "user name");
    CHECK_INT(r3d_password_check(f.s, "bob", "tab\there is fine?", &e), R3D_EARG);
    CHECK_INT(r3d_password_check(f.s, "bob", "plenty long enough 9", &e), R3D_OK);
    /* twelve characters, not bytes: 12 Chinese characters pass */
    CHECK_INT(r3d_password_check(f.s, "bob", "一二三四五六七八九十百千", &e), R3D_OK);
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    CHECK_INT(r3d_password_check(f.s, "bob", big, &e), R3D_EARG);
    CHECK(!strstr(e.msg, "xxxx")); /* never echoes the password */
    /* the administrator tunes the policy; others may not */
    CHECK_INT(r3d_setting_set(f.s, &f.clin, "password.min_length", 8, &e), R3D_EPERM);
    CHECK_INT(r3d_setting_set(f.s, &f.admin, "password.min_length", 8, &e), R3D_OK);
    CHECK_INT(r3d_password_check(f.s, "bob", "Zq7!vR2k", &e), R3D_OK);
    CHECK_INT(r3d_setting_set(f.s, &f.admin, "password.min_length", 4, &e), R3D_EARG);
    CHECK_INT(r3d_setting_set(f.s, &f.admin, "password.refuse_common", 0, &e), R3D_OK);
    CHECK_INT(r3d_password_check(f.s, "bob", "winniethepooh", &e), R3D_OK);
    CHECK_INT(r3d_setting_set(f.s, &f.admin, "no.such.key", 1, &e), R3D_ENOTFOUND);
    int64_t v = 0;
    CHECK_INT(r3d_setting_get(f.s, "password.min_length", &v, &e), R3D_OK);
    CHECK_INT(v, 8);
    /* the policy applies to creation and changes */
    CHECK_INT(r3d_user_create(f.s, &f.admin, "bob", "bob", R3D_ROLE_REVIEWER, &e), R3D_EARG);
    CHECK_INT(r3d_user_create(f.s, &f.admin, "bob", "plenty long enough 9", R3D_ROLE_REVIEWER,
                              &e), R3D_OK);
    CHECK_INT(r3d_user_create(f.s, &f.admin, "BOB", "plenty long enough 9", R3D_ROLE_REVIEWER,
                              &e), R3D_ECONFLICT);
    CHECK_INT(r3d_user_set_password(f.s, &f.admin, "bob", "123", &e), R3D_EARG);
    /* one's own password, not another's */
    CHECK_INT(r3d_user_set_password(f.s, &f.rev, "rita", "a new long passphrase", &e), R3D_OK);
    CHECK_INT(r3d_user_set_password(f.s, &f.rev, "carl", "a new long passphrase", &e),
              R3D_EPERM);
    r3d_actor a;
    char tok[65];
    CHECK_INT(r3d_login(f.s, "rita", FX_PASSWORD, "t", tok, &a, &e), R3D_EPERM);
    CHECK_INT(r3d_login(f.s, "rita", "a new long passphrase", "t", tok, &a, &e), R3D_OK);
    /* a password change ended rita's other sessions */
    CHECK_INT(r3d_session_check(f.s, f.tok_rev, "t", &a, &e), R3D_EPERM);
    fx_close(&f);
}

static void test_common_list_matches_data(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/../data/common-passwords.txt", R3D_TEST_SRC);
    uint8_t *b = NULL;
    size_t n = 0;
    CHECK_INT(r3d_file_read_all(path, &b, &n, NULL), R3D_OK);
    if (!b)
        return;
    /* the data file without comments == the compiled-in list */
    size_t cap = n + 1, j = 0;
    char *plain = malloc(cap);
    int lines = 0;
    for (char *line = (char *)b; line && *line;) {
        char *e = strchr(line, '\n');
        size_t len = e ? (size_t)(e - line) : strlen(line);
        if (line[0] != '#') {
            memcpy(plain + j, line, len);
            j += len;
            plain[j++] = '\n';
            lines++;
        }
        line = e ? e + 1 : NULL;
    }
    plain[j] = 0;
    CHECK_STR(plain, r3d__common_passwords);
    CHECK(lines > 3000);
    free(plain);
    free(b);
}

static void test_lockout(void)
{
    fx_store f;
    CHECK(fx_open(&f, NULL));
    r3d_error e = R3D_ERROR_INIT;
    r3d_actor a;
    char tok[65];
    /* unknown user and wrong password: the same answer */
    CHECK_INT(r3d_login(f.s, "nobody", FX_PASSWORD, "http 10.1.1.1:1", tok, &a, &e), R3D_EPERM);
    char unknown[1024];
    snprintf(unknown, sizeof unknown, "%s", e.msg);
    CHECK_INT(r3d_login(f.s, "carl", "wrong password 1", "http 10.1.1.1:2", tok, &a, &e),
              R3D_EPERM);
    CHECK_STR(e.msg, unknown);
    CHECK_STR(tok, "");
    CHECK_INT(a.user_id, 0);
    for (int i = 0; i < 4; i++)
        r3d_login(f.s, "carl", "wrong password 1", "http 10.1.1.2:3", tok, &a, &e);
    /* five failures: locked, even with the right password */
    CHECK_INT(r3d_login(f.s, "carl", FX_PASSWORD, "http 10.1.1.3:4", tok, &a, &e), R3D_EPERM);
    CHECK_CONTAINS(e.msg, "locked");
    r3d_user_info *u = NULL;
    int n = 0;
    CHECK_INT(r3d_user_list(f.s, &f.admin, &u, &n, &e), R3D_OK);
    for (int i = 0; i < n; i++)
        if (!strcmp(u[i].name, "carl"))
            CHECK(u[i].locked_until > 0);
    free(u);
    /* the lock-out ends by itself ... */
    db_exec(&f, "UPDATE users SET locked_until = 1 WHERE name = 'carl'");
    CHECK_INT(r3d_login(f.s, "carl", FX_PASSWORD, "http 10.1.1.3:5", tok, &a, &e), R3D_OK);
    /* ... or when the administrator resets the password */
    for (int i = 0; i < 5; i++)
        r3d_login(f.s, "carl", "wrong password 2", "http 10.1.1.4:6", tok, &a, &e);
    CHECK_INT(r3d_login(f.s, "carl", FX_PASSWORD, "http 10.1.1.5:7", tok, &a, &e), R3D_EPERM);
    CHECK_INT(r3d_user_set_password(f.s, &f.admin, "carl", "reset by the admin 1", &e), R3D_OK);
    CHECK_INT(r3d_login(f.s, "carl", "reset by the admin 1", "http 10.1.1.5:8", tok, &a, &e),
              R3D_OK);
    /* every attempt is in the audit trail */
    char *json = NULL;
    CHECK_INT(r3d_audit_list(f.s, &f.admin, 1, 0, &json, &e), R3D_OK);
    CHECK_CONTAINS(json, "failed: account now locked");
    CHECK_CONTAINS(json, "refused: locked");
    free(json);
    fx_close(&f);
}

static void test_rate_limit(void)
{
    fx_store f;
    CHECK(fx_open(&f, NULL));
    r3d_error e = R3D_ERROR_INIT;
    r3d_actor a;
    char tok[65];
    CHECK_INT(r3d_setting_set(f.s, &f.admin, "login.origin_failures_per_minute", 3, &e), R3D_OK);
    /* three failures from one address (new port each time), different users */
    r3d_login(f.s, "carl", "wrong password 1", "http 192.0.2.7:1000", tok, &a, &e);
    r3d_login(f.s, "rita", "wrong password 1", "http 192.0.2.7:1001", tok, &a, &e);
    r3d_login(f.s, "ghost", "wrong password 1", "http 192.0.2.7:1002", tok, &a, &e);
    CHECK_INT(r3d_login(f.s, "emil", FX_PASSWORD, "http 192.0.2.7:1003", tok, &a, &e), R3D_EPERM);
    CHECK_CONTAINS(e.msg, "too many");
    /* another address is not affected, nor are the accounts locked */
    CHECK_INT(r3d_login(f.s, "emil", FX_PASSWORD, "http 192.0.2.8:1003", tok, &a, &e), R3D_OK);
    /* a minute later the address may try again */
    db_exec(&f, "UPDATE login_failures SET at = at - 120");
    CHECK_INT(r3d_login(f.s, "emil", FX_PASSWORD, "http 192.0.2.7:1004", tok, &a, &e), R3D_OK);
    fx_close(&f);
}

static void test_sessions(void)
{
    fx_store f;
    CHECK(fx_open(&f, NULL));
    r3d_error e = R3D_ERROR_INIT;
    r3d_actor a;
    CHECK_INT(r3d_session_check(f.s, f.tok_clin, "http 127.0.0.1:5", &a, &e), R3D_OK);
    CHECK_STR(a.user, "carl");
    CHECK_INT(a.role, R3D_ROLE_CLINICIAN);
    CHECK_STR(a.origin, "http 127.0.0.1:5");
    CHECK_INT(strlen(f.tok_clin), 64);
    /* made-up, malformed and logged-out tokens */
    char fake[65];
    memset(fake, 'a', 64);
    fake[64] = 0;
    CHECK_INT(r3d_session_check(f.s, fake, "t", &a, &e), R3D_EPERM);
    CHECK_INT(r3d_session_check(f.s, "' OR 1=1 --", "t", &a, &e), R3D_EPERM);
    CHECK_INT(r3d_session_check(f.s, NULL, "t", &a, &e), R3D_EPERM);
    r3d_logout(f.s, f.tok_eng);
    CHECK_INT(r3d_session_check(f.s, f.tok_eng, "t", &a, &e), R3D_EPERM);
    /* the store keeps only a hash of each token */
    char path[700];
    snprintf(path, sizeof path, "%s/store.db", f.store);
    uint8_t *b = NULL;
    size_t n = 0;
    r3d_file_read_all(path, &b, &n, NULL);
    CHECK(b && !memmem(b, n, f.tok_clin, 64));
    free(b);
    snprintf(path, sizeof path, "%s/store.db-wal", f.store);
    if (r3d_file_read_all(path, &b, &n, NULL) == R3D_OK) {
        CHECK(!memmem(b, n, f.tok_clin, 64));
        free(b);
    }
    /* idle too long, and too old */
    db_exec(&f, "UPDATE sessions SET last_seen = last_seen - 7200 WHERE user_id = "
                "(SELECT id FROM users WHERE name = 'carl')");
    CHECK_INT(r3d_session_check(f.s, f.tok_clin, "t", &a, &e), R3D_EPERM);
    CHECK_CONTAINS(e.msg, "expired");
    CHECK_INT(r3d_session_check(f.s, f.tok_rev, "t", &a, &e), R3D_OK);
    db_exec(&f, "UPDATE sessions SET expires = 1 WHERE user_id = "
                "(SELECT id FROM users WHERE name = 'rita')");
    CHECK_INT(r3d_session_check(f.s, f.tok_rev, "t", &a, &e), R3D_EPERM);
    /* a user whose role was removed from the session's store copy */
    CHECK_INT(r3d_session_check(f.s, f.tok_admin, "t", &a, &e), R3D_OK);
    fx_close(&f);
}

static void test_update_signature(void)
{
    fx_store f;
    CHECK(fx_open(&f, NULL));
    CHECK(sodium_init() >= 0);
    uint8_t pk[32], sk[64], pk2[32], sk2[64];
    crypto_sign_keypair(pk, sk);
    crypto_sign_keypair(pk2, sk2);
    const char payload[] = "new recon3d build";
    uint8_t *pkg = NULL;
    size_t n = 0;
    r3d_error e = R3D_ERROR_INIT;
    CHECK_INT(r3d_update_pack("recon3d", "0.2.0", (const uint8_t *)payload, sizeof payload, sk,
                              &pkg, &n, &e), R3D_OK);
    r3d_update_info info;
    CHECK_INT(r3d_update_verify(pkg, n, pk, &info, &e), R3D_OK);
    CHECK_STR(info.name, "recon3d");
    CHECK_STR(info.version, "0.2.0");
    CHECK_INT(info.payload_size, sizeof payload);
    /* another key, the vendor key (a test key is not the vendor's) */
    CHECK_INT(r3d_update_verify(pkg, n, pk2, &info, &e), R3D_EPERM);
    CHECK_INT(r3d_update_verify(pkg, n, NULL, &info, &e), R3D_EPERM);
    CHECK_CONTAINS(e.msg, "vendor");
    /* one flipped bit anywhere */
    for (size_t i = 0; i < n; i += 7) {
        pkg[i] ^= 0x10;
        r3d_status st = r3d_update_verify(pkg, n, pk, &info, &e);
        CHECK(st == R3D_EPERM || st == R3D_EFORMAT);
        pkg[i] ^= 0x10;
    }
    /* unsigned (no signature), truncated, empty */
    CHECK_INT(r3d_update_verify(pkg, n - 64, pk, &info, &e), R3D_EPERM);
    CHECK_INT(r3d_update_verify(pkg, 20, pk, &info, &e), R3D_EFORMAT);
    CHECK_INT(r3d_update_verify(NULL, 0, pk, &info, &e), R3D_EFORMAT);
    /* applied by an administrator only, once */
    CHECK_INT(r3d_update_apply(f.s, &f.eng, pkg, n, pk, &info, &e), R3D_EPERM);
    CHECK_INT(r3d_update_apply(f.s, &f.clin, pkg, n, pk, &info, &e), R3D_EPERM);
    CHECK_INT(r3d_update_apply(f.s, &f.admin, pkg, n, NULL, &info, &e), R3D_EPERM);
    CHECK_INT(r3d_update_apply(f.s, &f.admin, pkg, n, pk, &info, &e), R3D_OK);
    CHECK_INT(r3d_update_apply(f.s, &f.admin, pkg, n, pk, &info, &e), R3D_ECONFLICT);
    char *json = NULL;
    CHECK_INT(r3d_audit_list(f.s, &f.admin, 1, 0, &json, &e), R3D_OK);
    CHECK_CONTAINS(json, "update.apply");
    CHECK_CONTAINS(json, "update.refused");
    free(json);
    char path[700];
    snprintf(path, sizeof path, "%s/updates/recon3d-0.2.0.pkg", f.store);
    CHECK(access(path, R_OK) == 0);
    /* the built-in vendor key is a real Ed25519 point */
    CHECK(r3d_update_vendor_key() != NULL);
    free(pkg);
    fx_close(&f);
}

int main(void)
{
    RUN(test_first_run);
    RUN(test_policy);
    RUN(test_common_list_matches_data);
    RUN(test_lockout);
    RUN(test_rate_limit);
    RUN(test_sessions);
    RUN(test_update_signature);
    return CHECK_DONE("test_users");
}

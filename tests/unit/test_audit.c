/* test_audit.c - the audit trail is tamper-evident: changing, deleting,
 * reordering or cutting off any entry is detected by r3d_audit_verify,
 * which names the first bad entry; entries never carry patient names. */
#define _XOPEN_SOURCE 700
#include "check.h"
#include "test_store_fixture.h"

#include <sodium.h>
#include <sqlite3.h>

/* Tamper with the store's database directly, as an attacker with file
 * access would: drop the append-only triggers first. */
static void tamper(fx_store *f, const char *sql)
{
    char path[700];
    snprintf(path, sizeof path, "%s/store.db", f->store);
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db, "DROP TRIGGER IF EXISTS audit_no_update;"
                              "DROP TRIGGER IF EXISTS audit_no_delete;", NULL, NULL, &msg);
    CHECK_INT(rc, SQLITE_OK);
    rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "  tamper: %s\n", msg ? msg : "?");
    CHECK_INT(rc, SQLITE_OK);
    sqlite3_free(msg);
    sqlite3_close(db);
}

/* One store with a few dozen entries, made once (users cost Argon2id
 * hashes); each test tampers with its own copy (r3d_store_backup). */
static fx_store tmpl;
static int tmpl_ready, copies;

static void copy_close(fx_store *f)
{
    r3d_store_close(f->s);
    f->s = NULL;
    fx_rmtree(f->store);
}

/* A fresh copy in f (actors as in the template); returns its entry count. */
static int64_t fresh(fx_store *f)
{
    if (!tmpl_ready) {
        CHECK(fx_open(&tmpl, NULL));
        r3d_id c = fx_import(&tmpl);
        r3d_case_info info;
        for (int i = 0; i < 5; i++)
            r3d_case_get(tmpl.s, &tmpl.rev, c, &info, NULL);
        r3d_case_info *all = NULL;
        int na = 0;
        r3d_case_list(tmpl.s, &tmpl.eng, &all, &na, NULL); /* a refusal */
        free(all);
        tmpl_ready = 1;
    }
    *f = tmpl;
    snprintf(f->store, sizeof f->store, "%s/copy-%d", tmpl.dir, ++copies);
    r3d_error e = R3D_ERROR_INIT;
    CHECK_INT(r3d_store_backup(tmpl.s, &tmpl.admin, f->store, &e), R3D_OK);
    f->s = NULL;
    CHECK_INT(r3d_store_open(f->store, NULL, &f->s, &e), R3D_OK);
    char path[700];
    snprintf(path, sizeof path, "%s/store.db", f->store);
    sqlite3 *db = NULL;
    sqlite3_open(path, &db);
    sqlite3_stmt *q = NULL;
    sqlite3_prepare_v2(db, "SELECT max(seq) FROM audit", -1, &q, NULL);
    int64_t n = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
    sqlite3_finalize(q);
    sqlite3_close(db);
    int64_t bad = -1;
    CHECK_INT(r3d_audit_verify(f->s, &bad, NULL), R3D_OK);
    CHECK_INT(bad, 0);
    return n;
}

static void expect_bad(const char *sql, int64_t want)
{
    fx_store f;
    int64_t n = fresh(&f);
    CHECK(n >= 15);
    char buf[512];
    snprintf(buf, sizeof buf, sql, (long long)(want > 0 ? want : n + want));
    tamper(&f, buf);
    int64_t bad = -1;
    r3d_error e = R3D_ERROR_INIT;
    CHECK_INT(r3d_audit_verify(f.s, &bad, &e), R3D_EDATA);
    CHECK_INT(bad, want > 0 ? want : n + want);
    CHECK_CONTAINS(e.msg, "audit entry");
    /* store check reports it too */
    char *rep = NULL;
    CHECK_INT(r3d_store_check(f.s, &rep, &e), R3D_EDATA);
    CHECK_CONTAINS(rep, "audit entry");
    free(rep);
    copy_close(&f);
}

static void test_change(void)
{
    expect_bad("UPDATE audit SET object = 'case 99' WHERE seq = %lld", 7);
    expect_bad("UPDATE audit SET outcome = 'ok' WHERE seq = %lld", 1);
    expect_bad("UPDATE audit SET at = '2020-01-01T00:00:00.000Z' WHERE seq = %lld", 0);
}

static void test_delete(void)
{
    expect_bad("DELETE FROM audit WHERE seq = %lld", 5);
    expect_bad("DELETE FROM audit WHERE seq = %lld", 1);
    /* the last entry: caught by the head record */
    expect_bad("DELETE FROM audit WHERE seq = %lld", 0);
}

static void test_reorder(void)
{
    /* swap the contents of entries 4 and 5 (hashes move with them) */
    expect_bad("UPDATE audit SET seq = -1 WHERE seq = %lld; UPDATE audit SET seq = 4 WHERE seq "
               "= 5; UPDATE audit SET seq = 5 WHERE seq = -1;", 4);
    /* renumber an entry into a gap */
    expect_bad("DELETE FROM audit WHERE seq = %lld; UPDATE audit SET seq = 9 WHERE seq = 10", 9);
}

static void test_triggers_and_names(void)
{
    fx_store f;
    fresh(&f);
    char path[700];
    snprintf(path, sizeof path, "%s/store.db", f.store);
    sqlite3 *db = NULL;
    sqlite3_open(path, &db);
    CHECK(sqlite3_exec(db, "UPDATE audit SET object = 'x' WHERE seq = 2", NULL, NULL, NULL) !=
          SQLITE_OK);
    CHECK(sqlite3_exec(db, "DELETE FROM audit WHERE seq = 2", NULL, NULL, NULL) != SQLITE_OK);
    sqlite3_close(db);
    int64_t bad = -1;
    CHECK_INT(r3d_audit_verify(f.s, &bad, NULL), R3D_OK);
    /* what goes in: control characters out, no patient fields at all */
    r3d_error e = R3D_ERROR_INIT;
    CHECK_INT(r3d_audit(f.s, &f.clin, "export", "case 1\nforged line", "ok", &e), R3D_OK);
    char *json = NULL;
    CHECK_INT(r3d_audit_list(f.s, &f.admin, 1, 0, &json, &e), R3D_OK);
    CHECK(json && !strstr(json, "case 1\\nforged"));
    CHECK_CONTAINS(json, "case 1 forged line");
    CHECK_CONTAINS(json, "\"case.import\"");
    CHECK_CONTAINS(json, "\"perm.refused\"");
    free(json);
    CHECK_INT(r3d_audit_verify(f.s, &bad, &e), R3D_OK);
    copy_close(&f);
}

/* Someone who rewrites the whole chain consistently (knowing the hash
 * recipe) passes r3d_audit_verify; a head recorded earlier catches it. */
static void field(crypto_hash_sha256_state *h, const char *t)
{
    uint32_t n = (uint32_t)strlen(t);
    uint8_t len[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    crypto_hash_sha256_update(h, len, 4);
    crypto_hash_sha256_update(h, (const uint8_t *)t, n);
}

static void test_rewritten_chain_vs_anchor(void)
{
    fx_store f;
    fresh(&f);
    int64_t head = 0;
    char anchor[65];
    r3d_error e = R3D_ERROR_INIT;
    CHECK_INT(r3d_audit_head(f.s, &head, anchor, &e), R3D_OK);
    CHECK(head > 5 && strlen(anchor) == 64);
    /* change entry 3, then recompute every hash after it */
    tamper(&f, "UPDATE audit SET object = 'user nobody' WHERE seq = 3");
    char path[700];
    snprintf(path, sizeof path, "%s/store.db", f.store);
    sqlite3 *db = NULL;
    sqlite3_open(path, &db);
    sqlite3_stmt *q = NULL, *u = NULL;
    sqlite3_prepare_v2(db, "SELECT seq, at, user, role, origin, what, object, outcome FROM audit "
                           "ORDER BY seq", -1, &q, NULL);
    sqlite3_prepare_v2(db, "UPDATE audit SET prev = ?, hash = ? WHERE seq = ?", -1, &u, NULL);
    char prev[65], hex[65];
    memset(prev, '0', 64);
    prev[64] = 0;
    int64_t last = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        crypto_hash_sha256_state h;
        crypto_hash_sha256_init(&h);
        crypto_hash_sha256_update(&h, (const uint8_t *)prev, 64);
        for (int i = 0; i < 8; i++)
            field(&h, (const char *)sqlite3_column_text(q, i));
        uint8_t d[32];
        crypto_hash_sha256_final(&h, d);
        for (int i = 0; i < 32; i++)
            sprintf(hex + 2 * i, "%02x", d[i]);
        last = sqlite3_column_int64(q, 0);
        sqlite3_bind_text(u, 1, prev, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(u, 2, hex, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(u, 3, last);
        sqlite3_step(u);
        sqlite3_reset(u);
        memcpy(prev, hex, 65);
    }
    sqlite3_finalize(q);
    sqlite3_finalize(u);
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE meta SET value = '%lld %s' WHERE key = 'audit_head'",
             (long long)last, prev);
    sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    int64_t bad = -1;
    CHECK_INT(r3d_audit_verify(f.s, &bad, &e), R3D_OK); /* the chain alone cannot tell */
    char now[65];
    CHECK_INT(r3d_audit_hash_at(f.s, head, now, &e), R3D_OK);
    CHECK(strcmp(now, anchor) != 0); /* the recorded head does */
    copy_close(&f);
}

/* A DICOM import: the patient's name is in the store, never in the trail. */
static void test_no_patient_names(void)
{
    char dir[512];
    /* pydicom's CT_small.dcm carries a (made-up) patient name and ID */
    const char *dcm = test_data("dicom/deb_pydicom/CT_small.dcm", dir, sizeof dir);
    if (!dcm)
        SKIP("no ../shared/data/dicom/deb_pydicom/CT_small.dcm");
    fx_store f;
    CHECK(fx_open(&f, NULL));
    r3d_id c = 0;
    r3d_error e = R3D_ERROR_INIT;
    CHECK_INT(r3d_case_import(f.s, &f.clin, dcm, NULL, &c, &e), R3D_OK);
    r3d_case_info info;
    CHECK_INT(r3d_case_get(f.s, &f.clin, c, &info, &e), R3D_OK);
    CHECK(info.patient_name[0] != 0 && info.patient_id[0] != 0); /* the clinician sees them */
    char *json = NULL;
    CHECK_INT(r3d_audit_list(f.s, &f.admin, 1, 0, &json, &e), R3D_OK);
    if (info.patient_name[0])
        CHECK(json && !strstr(json, info.patient_name));
    if (info.patient_id[0])
        CHECK(json && !strstr(json, info.patient_id));
    free(json);
    /* the reviewer sees no identity */
    CHECK_INT(r3d_case_get(f.s, &f.rev, c, &info, &e), R3D_OK);
    CHECK_STR(info.patient_name, "");
    CHECK_STR(info.patient_id, "");
    fx_close(&f);
}

int main(void)
{
    RUN(test_change);
    RUN(test_delete);
    RUN(test_reorder);
    RUN(test_triggers_and_names);
    RUN(test_rewritten_chain_vs_anchor);
    RUN(test_no_patient_names);
    if (tmpl_ready)
        fx_close(&tmpl);
    return CHECK_DONE("test_audit");
}

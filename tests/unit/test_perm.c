/* test_perm.c - the permission matrix: every role x every action gives
 * what the specification table says, every refusal is audited, and the
 * library's own entry points (the ones the CLI and every server route call)
 * refuse exactly where the table does. The expected table is written out
 * here again, by hand, from the requirement - not copied from perm.c. */
#define _XOPEN_SOURCE 700
#include "check.h"
#include "test_store_fixture.h"

#include <sqlite3.h>

/* A = admin, C = clinician, R = reviewer (read-only), E = engineer
 * (system health and updates, no patient data). */
static const struct {
    r3d_action act;
    const char *allowed; /* roles allowed, as letters */
} spec[] = {
    {R3D_ACT_CASE_LIST, "ACR"},       {R3D_ACT_CASE_VIEW, "ACR"},
    {R3D_ACT_CASE_IMPORT, "AC"},      {R3D_ACT_CASE_EDIT, "AC"},
    {R3D_ACT_CASE_DELETE, "AC"},      {R3D_ACT_RECONSTRUCT, "AC"},
    {R3D_ACT_EXPORT, "ACR"},          {R3D_ACT_EXPORT_IDENTIFIED, "AC"},
    {R3D_ACT_VIEW_IDENTITY, "AC"},    {R3D_ACT_USER_ADMIN, "A"},
    {R3D_ACT_AUDIT_READ, "A"},        {R3D_ACT_SYSTEM_HEALTH, "AE"},
    {R3D_ACT_UPDATE, "A"},            {R3D_ACT_STORE_ADMIN, "A"},
};

static int64_t refusals(fx_store *f)
{
    char path[700];
    snprintf(path, sizeof path, "%s/store.db", f->store);
    sqlite3 *db = NULL;
    int64_t n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *q = NULL;
        sqlite3_prepare_v2(db, "SELECT count(*) FROM audit WHERE what = 'perm.refused'", -1, &q,
                           NULL);
        if (sqlite3_step(q) == SQLITE_ROW)
            n = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    sqlite3_close(db);
    return n;
}

static void test_matrix(void)
{
    fx_store f;
    CHECK(fx_open(&f, NULL));
    CHECK_INT(sizeof spec / sizeof spec[0], R3D_ACT_COUNT);
    const r3d_actor *who[4] = {&f.admin, &f.clin, &f.rev, &f.eng};
    const char letters[] = "ACRE";
    int checked = 0;
    for (size_t i = 0; i < sizeof spec / sizeof spec[0]; i++)
        for (int r = 0; r < 4; r++) {
            int want = strchr(spec[i].allowed, letters[r]) != NULL;
            int64_t before = refusals(&f);
            r3d_error e = R3D_ERROR_INIT;
            r3d_status st = r3d_permit(f.s, who[r], spec[i].act, &e);
            if ((st == R3D_OK) != want)
                fprintf(stderr, "  %s as %s: got %s\n", r3d_action_name(spec[i].act),
                        r3d_role_name(who[r]->role), r3d_status_name(st));
            CHECK_INT(st, want ? R3D_OK : R3D_EPERM);
            CHECK_INT(refusals(&f) - before, want ? 0 : 1);
            if (!want) {
                CHECK_CONTAINS(e.msg, r3d_action_name(spec[i].act));
                CHECK_CONTAINS(e.msg, r3d_role_name(who[r]->role));
            }
            checked++;
        }
    CHECK_INT(checked, 4 * R3D_ACT_COUNT);
    /* nobody and made-up actors */
    r3d_error e = R3D_ERROR_INIT;
    CHECK_INT(r3d_permit(f.s, NULL, R3D_ACT_CASE_LIST, &e), R3D_EPERM);
    r3d_actor forged = f.rev;
    forged.role = R3D_ROLE_ADMIN; /* the role in the struct is not believed */
    CHECK_INT(r3d_permit(f.s, &forged, R3D_ACT_USER_ADMIN, &e), R3D_EPERM);
    forged = f.admin;
    snprintf(forged.user, sizeof forged.user, "mallory");
    CHECK_INT(r3d_permit(f.s, &forged, R3D_ACT_CASE_LIST, &e), R3D_EPERM);
    CHECK_INT(r3d_permit(f.s, &f.admin, R3D_ACT_COUNT, &e), R3D_EARG);
    /* a role change takes effect at the next action */
    CHECK_INT(r3d_user_set_role(f.s, &f.admin, "rita", R3D_ROLE_CLINICIAN, &e), R3D_OK);
    CHECK_INT(r3d_permit(f.s, &f.rev, R3D_ACT_CASE_EDIT, &e), R3D_OK);
    CHECK_INT(r3d_user_set_role(f.s, &f.admin, "rita", R3D_ROLE_REVIEWER, &e), R3D_OK);
    CHECK_INT(r3d_permit(f.s, &f.rev, R3D_ACT_CASE_EDIT, &e), R3D_EPERM);
    /* the last administrator keeps the role */
    CHECK_INT(r3d_user_set_role(f.s, &f.admin, "ada", R3D_ROLE_CLINICIAN, &e), R3D_ECONFLICT);
    /* names and role codes */
    CHECK_INT(r3d_role_parse("reviewer"), R3D_ROLE_REVIEWER);
    CHECK_INT(r3d_role_parse("Administrator"), R3D_ROLE_ADMIN);
    CHECK_INT(r3d_role_parse("root"), R3D_ROLE_NONE);
    CHECK_STR(r3d_role_name(R3D_ROLE_ENGINEER), "engineer");
    fx_close(&f);
}

/* The entry points the CLI and server call refuse where the table says. */
static void test_entry_points(void)
{
    fx_store f;
    CHECK(fx_open(&f, NULL));
    r3d_id c = fx_import(&f);
    char vol[700];
    snprintf(vol, sizeof vol, "%s/ct.nii.gz", f.dir);
    const r3d_actor *who[4] = {&f.admin, &f.clin, &f.rev, &f.eng};
    r3d_labelmap *m = fx_labels(f.s, &f.clin, c, 10);
    r3d_id v = 0;
    r3d_error e = R3D_ERROR_INIT;
    CHECK_INT(r3d_labels_commit(f.s, &f.clin, c, m, "", NULL, &v, &e), R3D_OK);
    for (int r = 0; r < 4; r++) {
        const r3d_actor *a = who[r];
        int admin = r == 0, clin = r <= 1, view = r <= 2;
        r3d_case_info *cs = NULL, info;
        int n = 0;
        CHECK_INT(r3d_case_list(f.s, a, &cs, &n, &e), view ? R3D_OK : R3D_EPERM);
        free(cs);
        CHECK_INT(r3d_case_get(f.s, a, c, &info, &e), view ? R3D_OK : R3D_EPERM);
        r3d_id nc = 0;
        CHECK_INT(r3d_case_import(f.s, a, vol, NULL, &nc, &e), clin ? R3D_OK : R3D_EPERM);
        CHECK_INT(r3d_labels_commit(f.s, a, c, m, "", NULL, NULL, &e), clin ? R3D_OK : R3D_EPERM);
        CHECK_INT(r3d_labels_set_head(f.s, a, c, v, &e), clin ? R3D_OK : R3D_EPERM);
        r3d_labelmap *got = NULL;
        CHECK_INT(r3d_labels_load(f.s, a, c, v, &got, &e), view ? R3D_OK : R3D_EPERM);
        r3d_labelmap_free(got);
        CHECK_INT(r3d_mesh_put(f.s, a, c, v, 1, "stl", NULL, "x", 1, &e),
                  clin ? R3D_OK : R3D_EPERM);
        CHECK_INT(r3d_case_doc_put(f.s, a, c, "display", "{}", &e), clin ? R3D_OK : R3D_EPERM);
        CHECK_INT(r3d_job_submit(f.s, a, c, "segment", NULL, NULL, &e),
                  clin ? R3D_OK : R3D_EPERM);
        char *json = NULL;
        CHECK_INT(r3d_trace(f.s, a, "case:1", &json, &e), view ? R3D_OK : R3D_EPERM);
        free(json);
        CHECK_INT(r3d_audit_list(f.s, a, 1, 10, &json, &e), admin ? R3D_OK : R3D_EPERM);
        free(json);
        r3d_user_info *u = NULL;
        CHECK_INT(r3d_user_list(f.s, a, &u, &n, &e), admin ? R3D_OK : R3D_EPERM);
        free(u);
        CHECK_INT(r3d_setting_set(f.s, a, "login.max_failures", 6, &e),
                  admin ? R3D_OK : R3D_EPERM);
        char dest[700];
        snprintf(dest, sizeof dest, "%s/backup-%d", f.dir, r);
        CHECK_INT(r3d_store_backup(f.s, a, dest, &e), admin ? R3D_OK : R3D_EPERM);
        CHECK_INT(r3d_case_delete(f.s, a, nc ? nc : c + 1000, &e),
                  clin ? R3D_OK : R3D_EPERM);
        /* identity only for those who may see it */
        CHECK_INT(r3d_user_create(f.s, a, r ? "x-user" : "new-user", FX_PASSWORD,
                                  R3D_ROLE_REVIEWER, &e), admin ? R3D_OK : R3D_EPERM);
    }
    r3d_labelmap_free(m);
    fx_close(&f);
}

int main(void)
{
    RUN(test_matrix);
    RUN(test_entry_points);
    return CHECK_DONE("test_perm");
}

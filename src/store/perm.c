/* perm.c - the permission table: which role may take which action. This is
 * the ONE place the rule lives; the CLI and every server route ask
 * r3d_permit() and nothing else.
 *
 * The role is never taken from the caller's r3d_actor alone: r3d_permit
 * reads the user's current role from the store, so a role change or a
 * disabled account takes effect at the next action, and an actor struct
 * made up by a caller grants nothing. Every refusal is audited. */
#include "store/store_internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/*                                 admin clin. review engineer */
static const struct {
    const char *name;
    unsigned char allow[5]; /* indexed by r3d_role; [0] = NONE, always refused */
} table[R3D_ACT_COUNT] = {
    [R3D_ACT_CASE_LIST] = {"case.list", {0, 1, 1, 1, 0}},
    [R3D_ACT_CASE_VIEW] = {"case.view", {0, 1, 1, 1, 0}},
    [R3D_ACT_CASE_IMPORT] = {"case.import", {0, 1, 1, 0, 0}},
    [R3D_ACT_CASE_EDIT] = {"case.edit", {0, 1, 1, 0, 0}},
    [R3D_ACT_CASE_DELETE] = {"case.delete", {0, 1, 1, 0, 0}},
    [R3D_ACT_RECONSTRUCT] = {"reconstruct", {0, 1, 1, 0, 0}},
    [R3D_ACT_EXPORT] = {"export", {0, 1, 1, 1, 0}},
    [R3D_ACT_EXPORT_IDENTIFIED] = {"export.identified", {0, 1, 1, 0, 0}},
    [R3D_ACT_VIEW_IDENTITY] = {"identity.view", {0, 1, 1, 0, 0}},
    [R3D_ACT_USER_ADMIN] = {"user.admin", {0, 1, 0, 0, 0}},
    [R3D_ACT_AUDIT_READ] = {"audit.read", {0, 1, 0, 0, 0}},
    [R3D_ACT_SYSTEM_HEALTH] = {"system.health", {0, 1, 0, 0, 1}},
    [R3D_ACT_UPDATE] = {"update.apply", {0, 1, 0, 0, 0}},
    [R3D_ACT_STORE_ADMIN] = {"store.admin", {0, 1, 0, 0, 0}},
};

static const char *const role_names[] = {"none", "admin", "clinician", "reviewer", "engineer"};

const char *r3d_role_name(r3d_role r)
{
    return (unsigned)r <= R3D_ROLE_ENGINEER ? role_names[r] : "none";
}

r3d_role r3d_role_parse(const char *name)
{
    if (!name)
        return R3D_ROLE_NONE;
    for (int r = R3D_ROLE_ADMIN; r <= R3D_ROLE_ENGINEER; r++)
        if (strcasecmp(name, role_names[r]) == 0)
            return (r3d_role)r;
    if (strcasecmp(name, "administrator") == 0)
        return R3D_ROLE_ADMIN;
    if (strcasecmp(name, "maintenance") == 0)
        return R3D_ROLE_ENGINEER;
    return R3D_ROLE_NONE;
}

const char *r3d_action_name(r3d_action a)
{
    return (unsigned)a < R3D_ACT_COUNT ? table[a].name : "unknown";
}

static r3d_status refuse(r3d_store *s, const r3d_actor *a, r3d_action act, r3d_role role,
                         const char *why, r3d_error *err)
{
    r3d_actor who = {0, "unknown", R3D_ROLE_NONE, "?"};
    if (a) {
        who = *a;
        who.user[sizeof who.user - 1] = 0;
        who.origin[sizeof who.origin - 1] = 0;
        who.role = role;
    }
    st_audit(s, &who, "perm.refused", r3d_action_name(act), why, NULL);
    int by_role = strcmp(why, "role") == 0;
    return r3d_fail(err, R3D_EPERM, "user %s (%s) may not %s%s%s", a ? who.user : "nobody",
                    r3d_role_name(role), r3d_action_name(act), by_role ? "" : ": ",
                    by_role ? "" : why);
}

static r3d_role current_role(r3d_store *s, const r3d_actor *a)
{
    sqlite3_stmt *q = NULL;
    r3d_role role = R3D_ROLE_NONE;
    if (!a || a->user_id <= 0)
        return role;
    if (st_prepare(s, "SELECT role, name, disabled FROM users WHERE id = ?", &q, NULL) == R3D_OK) {
        sqlite3_bind_int64(q, 1, a->user_id);
        if (sqlite3_step(q) == SQLITE_ROW) {
            const char *name = (const char *)sqlite3_column_text(q, 1);
            if (name && strncmp(name, a->user, sizeof a->user) == 0 &&
                sqlite3_column_int(q, 2) == 0)
                role = (r3d_role)sqlite3_column_int(q, 0);
        }
        sqlite3_finalize(q);
    }
    return (unsigned)role <= R3D_ROLE_ENGINEER ? role : R3D_ROLE_NONE;
}

int st_allowed(r3d_store *s, const r3d_actor *a, r3d_action act)
{
    if ((unsigned)act >= R3D_ACT_COUNT)
        return 0;
    return table[act].allow[current_role(s, a)];
}

r3d_status st_permit(r3d_store *s, const r3d_actor *a, r3d_action act, r3d_error *err)
{
    if ((unsigned)act >= R3D_ACT_COUNT)
        return r3d_fail(err, R3D_EARG, "permission: unknown action %d", (int)act);
    if (!a || a->user_id <= 0)
        return refuse(s, a, act, R3D_ROLE_NONE, "not logged in", err);
    r3d_role role = current_role(s, a);
    if (role == R3D_ROLE_NONE)
        return refuse(s, a, act, R3D_ROLE_NONE, "unknown or disabled user", err);
    if (!table[act].allow[role])
        return refuse(s, a, act, role, "role", err);
    return R3D_OK;
}

r3d_status r3d_permit(r3d_store *s, const r3d_actor *a, r3d_action act, r3d_error *err)
{
    if (!s)
        return r3d_fail(err, R3D_EARG, "permission: no store");
    ST_LOCK(s);
    r3d_status st = st_permit(s, a, act, err);
    ST_UNLOCK(s);
    return st;
}

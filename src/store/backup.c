/* backup.c - `recon3d store backup|restore`.
 *
 * A backup is a store: a consistent snapshot of store.db (SQLite's online
 * backup API, so the server may keep writing meanwhile) and every blob the
 * snapshot names, copied with the same temp-fsync-rename as any blob. The
 * copy keeps the source's key check, so an encrypted store's backup needs
 * the same key. Restore opens the backup as a store and copies it the same
 * way into a folder that holds no store yet; either way the copy is checked
 * (r3d_store_check) before success is reported. */
#include "store/store_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static r3d_status copy_db(r3d_store *s, const char *dest_db, r3d_error *err)
{
    sqlite3 *d = NULL;
    int rc = sqlite3_open_v2(dest_db, &d, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_close(d);
        return r3d_fail(err, R3D_EIO, "%s: cannot create: %s", dest_db, sqlite3_errstr(rc));
    }
    sqlite3_backup *b = sqlite3_backup_init(d, "main", s->db, "main");
    if (!b) {
        r3d_status st = r3d_fail(err, R3D_EIO, "%s: cannot start the backup: %s", dest_db,
                                 sqlite3_errmsg(d));
        sqlite3_close(d);
        return st;
    }
    do
        rc = sqlite3_backup_step(b, -1);
    while (rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
    sqlite3_backup_finish(b);
    r3d_status st = R3D_OK;
    if (rc != SQLITE_DONE)
        st = r3d_fail(err, R3D_EIO, "%s: backup failed: %s", dest_db, sqlite3_errstr(rc));
    if (!st && sqlite3_exec(d, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;", NULL,
                            NULL, NULL) != SQLITE_OK)
        st = r3d_fail(err, R3D_EIO, "%s: cannot set the journal mode", dest_db);
    sqlite3_close(d);
    return st;
}

static r3d_status copy_blobs(r3d_store *src, r3d_store *dst, r3d_error *err)
{
    sqlite3_stmt *q = NULL;
    r3d_status st = st_prepare(dst, "SELECT sha256 FROM blobs", &q, err);
    if (st)
        return st;
    while (!st && sqlite3_step(q) == SQLITE_ROW) {
        char h[65], from[4200], to[4200], dir[4200];
        st_col_copy(q, 0, h, sizeof h);
        if (!st_is_hex(h, 64)) {
            st = r3d_fail(err, R3D_EDATA, "backup: a blob row has a malformed name");
            break;
        }
        st_blob_path(src, h, from, sizeof from);
        st_blob_path(dst, h, to, sizeof to);
        snprintf(dir, sizeof dir, "%s/blobs/%.2s", dst->dir, h);
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            st = r3d_fail(err, R3D_EIO, "%s: cannot create the folder: %s", dir, strerror(errno));
            break;
        }
        uint8_t *b = NULL;
        size_t n = 0;
        if ((st = r3d_file_read_all(from, &b, &n, err)))
            break;
        char calc[65];
        st_sha256_hex(b, n, calc);
        if (strcmp(calc, h) != 0)
            st = r3d_fail(err, R3D_EDATA, "blob %.12s...: damaged in the source store; run "
                          "`recon3d store check`", h);
        if (!st)
            st = r3d_file_write_atomic(to, b, n, err);
        free(b);
    }
    sqlite3_finalize(q);
    return st;
}

r3d_status r3d_store_backup(r3d_store *s, const r3d_actor *a, const char *dest_dir,
                            r3d_error *err)
{
    if (!s || !dest_dir || !*dest_dir)
        return r3d_fail(err, R3D_EARG, "backup: no store or no destination");
    if (strlen(dest_dir) > 3000)
        return r3d_fail(err, R3D_EARG, "backup: destination name too long");
    char db[4200];
    struct stat sb;
    snprintf(db, sizeof db, "%s/store.db", dest_dir);
    ST_LOCK(s);
    r3d_status st = st_permit(s, a, R3D_ACT_STORE_ADMIN, err);
    if (!st && stat(db, &sb) == 0)
        st = r3d_fail(err, R3D_ECONFLICT, "%s: holds a store already; choose an empty folder",
                      dest_dir);
    if (!st && strcmp(dest_dir, s->dir) == 0)
        st = r3d_fail(err, R3D_EARG, "backup: destination is the store itself");
    if (!st && mkdir(dest_dir, 0700) != 0 && errno != EEXIST)
        st = r3d_fail(err, R3D_EIO, "%s: cannot create the folder: %s", dest_dir,
                      strerror(errno));
    char blobs[4200];
    snprintf(blobs, sizeof blobs, "%s/blobs", dest_dir);
    if (!st && mkdir(blobs, 0700) != 0 && errno != EEXIST)
        st = r3d_fail(err, R3D_EIO, "%s: cannot create the folder: %s", blobs, strerror(errno));
    /* the database goes to a temporary name and is renamed last: a crash
     * mid-way leaves no folder that looks like a complete store */
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s/store.db.partial", dest_dir);
    if (!st) {
        unlink(tmp);
        st = copy_db(s, tmp, err);
    }
    r3d_store *d = NULL;
    if (!st) {
        /* open the copy under its temporary name through a bare handle */
        d = calloc(1, sizeof *d);
        if (!d)
            st = r3d_fail(err, R3D_ENOMEM, "backup: out of memory");
    }
    if (!st) {
        d->dir = strdup(dest_dir);
        pthread_mutex_init(&d->mu, NULL);
        if (sqlite3_open_v2(tmp, &d->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
            st = r3d_fail(err, R3D_EIO, "%s: cannot read the copy", tmp);
        if (!st)
            st = copy_blobs(s, d, err);
        sqlite3_close_v2(d->db);
        pthread_mutex_destroy(&d->mu);
        free(d->dir);
        free(d);
    }
    if (!st && rename(tmp, db) != 0)
        st = r3d_fail(err, R3D_EIO, "%s: cannot rename the copy: %s", db, strerror(errno));
    if (!st) {
        r3d_store *c = NULL;
        r3d_store_opts o = {0, NULL};
        st = st_open(dest_dir, &o, s->sealed ? s->key : NULL, &c, err);
        if (!st) {
            char *rep = NULL;
            st = r3d_store_check(c, &rep, err);
            free(rep);
            if (st)
                r3d_error_prefix(err, "backup copy: ");
            r3d_store_close(c);
        }
    }
    char obj[64];
    snprintf(obj, sizeof obj, "store copy");
    st_audit(s, a, "store.backup", obj, st ? r3d_status_name(st) : "ok", NULL);
    ST_UNLOCK(s);
    return st;
}

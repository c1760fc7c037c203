/* store_internal.h - what the files of src/store share: the store handle,
 * SQL helpers, blobs, sealing (encryption at rest), the audit append used
 * inside other transactions, and small text/time helpers.
 *
 * Locking: every public function takes s->mu (recursive) for its whole
 * body, so one handle is safe from many threads; between processes SQLite's
 * own locks apply (busy timeout 10 s; BEGIN IMMEDIATE for every write, so
 * two writers queue instead of failing half way). */
#ifndef R3D_STORE_INTERNAL_H
#define R3D_STORE_INTERNAL_H

#include "r3d/store.h"

#include <pthread.h>
#include <sqlite3.h>
#include <sodium.h>

struct r3d_store {
    sqlite3 *db;
    char *dir;
    pthread_mutex_t mu;
    int sealed;                 /* a key was given (and matches the store's) */
    uint8_t key[32];            /* secretbox key for blobs and identity fields */
    char machine[128];          /* hostname, for provenance */
};

#define ST_LOCK(s) pthread_mutex_lock(&(s)->mu)
#define ST_UNLOCK(s) pthread_mutex_unlock(&(s)->mu)

/* r3d_store_open with the key given as bytes (backup copies use the
 * source's key). */
r3d_status st_open(const char *dir, const r3d_store_opts *opts, const uint8_t *key_bytes,
                   r3d_store **out, r3d_error *err);

/* ---- SQL --------------------------------------------------------------------- */

/* Status for a failed SQLite call: BUSY/LOCKED -> R3D_ECONFLICT, FULL/IOERR ->
 * R3D_EIO, CORRUPT/NOTADB -> R3D_EDATA; the message names the store and what
 * we were doing, plus SQLite's text (never bound values). */
r3d_status st_sqlfail(r3d_store *s, r3d_error *err, int rc, const char *what);
r3d_status st_exec(r3d_store *s, const char *sql, r3d_error *err);
r3d_status st_prepare(r3d_store *s, const char *sql, sqlite3_stmt **st, r3d_error *err);
/* Runs a prepared statement once, for its effect (INSERT, UPDATE, ...), and
 * finalizes it; st_sqlfail(what) unless it finished or gave a row. */
r3d_status st_step(r3d_store *s, sqlite3_stmt *q, const char *what, r3d_error *err);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. Commit with synchronous=FULL in WAL
 * mode fsyncs the log: when it returns, the change is durable. */
r3d_status st_begin(r3d_store *s, r3d_error *err);
r3d_status st_commit(r3d_store *s, r3d_error *err);
void st_rollback(r3d_store *s);
/* The end of a transaction: commit when st is R3D_OK, else roll back; the
 * status (the commit's failure, if it fails). */
r3d_status st_end(r3d_store *s, r3d_status st, r3d_error *err);
/* Single-value queries; 0 / NULL when no row. */
int64_t st_query_int(r3d_store *s, const char *sql, int64_t bind1, int64_t def);
int64_t st_last_id(r3d_store *s);
/* sqlite3_column_text copied into a fixed buffer (truncated, NUL-terminated). */
void st_col_copy(sqlite3_stmt *st, int col, char *out, size_t cap);
/* malloc'ed copy of a text column ("" for NULL); NULL only if out of memory. */
char *st_col_dup(sqlite3_stmt *st, int col);

/* ---- time, hashing, text ---------------------------------------------------------- */

int64_t st_now(void);                /* Unix seconds */
void st_iso_now(char out[32]);       /* 2026-11-24T16:40:00.123Z */
void st_sha256_hex(const void *data, size_t n, char out[65]);
void st_hex(const uint8_t *b, size_t n, char *out); /* 2n chars + NUL */
int st_is_hex(const char *t, size_t n);
/* A name users type (user names, kinds, formats): 1..63 bytes of
 * [A-Za-z0-9._-], not starting with '.' or '-'. Refuses SQL and path
 * metacharacters outright instead of escaping them. */
int st_name_ok(const char *name);
/* JSON text small enough and well formed (cJSON parses it to an object
 * or array when want_object is 0/1 respectively any/object). */
r3d_status st_json_ok(const char *json, size_t max, int want_object, const char *what,
                      r3d_error *err);

/* ---- sealing (encryption at rest) -------------------------------------------------- */

/* With a key: "R3DS" + 24-byte nonce + secretbox(plain); without: a copy. */
r3d_status st_seal(r3d_store *s, const uint8_t *plain, size_t n, uint8_t **out, size_t *out_n,
                   r3d_error *err);
r3d_status st_unseal(r3d_store *s, const uint8_t *in, size_t n, uint8_t **out, size_t *out_n,
                     const char *what, r3d_error *err);
/* Text fields (patient name and ID): sealed and base64'd with a key. */
char *st_seal_text(r3d_store *s, const char *plain);
char *st_unseal_text(r3d_store *s, const char *stored);

/* ---- blobs -------------------------------------------------------------------------- */

/* Store bytes (sealed when the store has a key) under blobs/ab/<sha256 of the
 * stored bytes>: temporary name, fsync, rename, folder fsync. Needs no SQL
 * and no lock (call it before taking the store lock: big images then do
 * not stall other threads). hash_out: the stored bytes' hash (the blob's
 * name); plain_out (may be NULL): SHA-256 of the plain bytes. */
r3d_status st_blob_write(r3d_store *s, const void *plain, size_t n, char hash_out[65],
                         char plain_out[65], r3d_error *err);
/* The row naming a written blob, inside the caller's transaction (so a
 * committed row never names a missing file). n: the plain size. */
r3d_status st_blob_record(r3d_store *s, const char *hash, const char *plain_hash, size_t n,
                          r3d_error *err);
/* Read, check the hash, unseal. */
r3d_status st_blob_get(r3d_store *s, const char *hash, uint8_t **plain, size_t *n,
                       r3d_error *err);
void st_blob_path(r3d_store *s, const char *hash, char *out, size_t cap);

/* ---- audit, permissions ------------------------------------------------------------ */

/* Append one chained entry inside the current transaction (or its own when
 * none is open). */
r3d_status st_audit(r3d_store *s, const r3d_actor *a, const char *what, const char *object,
                    const char *outcome, r3d_error *err);
/* r3d_permit without taking the lock again (callers hold it). */
r3d_status st_permit(r3d_store *s, const r3d_actor *a, r3d_action act, r3d_error *err);
/* Does the role allow it? No audit: used to decide what to show, not to
 * refuse (a reviewer listing cases is not refused anything). */
int st_allowed(r3d_store *s, const r3d_actor *a, r3d_action act);
r3d_status st_audit_verify(r3d_store *s, int64_t *first_bad, int64_t *entries, r3d_error *err);

/* "host:pid:starttime" of this process, for jobs it claims. */
void st_job_owner(r3d_store *s, char *out, size_t cap);
/* A volume as .nii.gz bytes (through a private temporary file in DIR/tmp). */
r3d_status st_volume_to_niigz(r3d_store *s, const r3d_volume *v, uint8_t **bytes, size_t *n,
                              r3d_error *err);

/* Remember the user's current case (resume after a crash). */
void st_touch_case(r3d_store *s, const r3d_actor *a, r3d_id case_id);
/* The case exists and is not deleted. */
r3d_status st_case_exists(r3d_store *s, r3d_id case_id, r3d_error *err);

/* Settings with defaults (see store.h). */
int64_t st_setting(r3d_store *s, const char *key);

/* Acquisition record <-> JSON (every field, for exact round trips). */
char *st_acq_to_json(const r3d_acq *a);
void st_acq_from_json(const char *json, r3d_acq *a);

extern const char r3d__common_passwords[];

#endif

/* r3d/store.h - the case store: patients' studies, cases, every version of
 * every label map, meshes, measurements, display state, jobs, users, roles
 * and the audit trail, in one SQLite database plus content-addressed blobs.
 *
 * This header is the contract between the store (src/store/) and its users
 * (the CLI, src/server/). Layout on disk, for a store folder DIR:
 *     DIR/store.db             SQLite, WAL, synchronous=FULL, foreign keys on
 *     DIR/blobs/ab/abcdef...   content-addressed by SHA-256 of the stored
 *                              bytes (optionally sealed with libsodium when
 *                              the store was created with a key), written to
 *                              a temporary name, fsynced, renamed, dir fsynced
 *
 * Rules every function keeps:
 *  - a function that returns R3D_OK after a change has made it durable
 *    (an acknowledged edit survives kill -9 and power loss);
 *  - every function that touches patient data takes the acting user and
 *    checks r3d_permit() first; refusals are R3D_EPERM and are audited;
 *  - every change and every view of patient data appends an audit entry;
 *  - nothing here prints; messages in r3d_error never contain patient names.
 *
 * Thread safety: one r3d_store may be used from several threads (the server's
 * request threads and job workers); calls are serialised inside. */
#ifndef R3D_STORE_H
#define R3D_STORE_H

#include "core.h"
#include "volume.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct r3d_store r3d_store;
typedef int64_t r3d_id; /* row ids; 0 = none */

/* ---- opening ------------------------------------------------------------ */

typedef struct r3d_store_opts {
    int create;             /* create DIR and an empty store if missing */
    const char *key_file;   /* 32-byte key for encryption at rest, or NULL */
} r3d_store_opts;

/* Opens (and on first open migrates) the store; jobs left "running" by a
 * crash are marked failed ("interrupted") or re-queued. */
r3d_status r3d_store_open(const char *dir, const r3d_store_opts *opts, r3d_store **out, r3d_error *err);
void r3d_store_close(r3d_store *s);
/* Full consistency check: SQLite integrity, every referenced blob present
 * with the right hash, version chains acyclic, audit chain intact. */
r3d_status r3d_store_check(r3d_store *s, char **report_json, r3d_error *err);

/* ---- users, roles, sessions (clauses 4.8.2, 4.8.3) ----------------------- */

typedef enum r3d_role {
    R3D_ROLE_NONE = 0,
    R3D_ROLE_ADMIN = 1,     /* users, roles, settings, updates; all cases */
    R3D_ROLE_CLINICIAN = 2, /* import, reconstruct, edit, export, see identity */
    R3D_ROLE_REVIEWER = 3,  /* read-only: view cases and results */
    R3D_ROLE_ENGINEER = 4,  /* maintenance: system health, updates; no patient data */
} r3d_role;

typedef struct r3d_actor {
    r3d_id user_id;
    char user[64];
    r3d_role role;
    char origin[64]; /* "cli", "http 127.0.0.1:53312" - for the audit trail */
} r3d_actor;

/* Every action the CLI or a server route can take; the permission table in
 * src/store/ maps (role, action) to allowed or refused, in one place. */
typedef enum r3d_action {
    R3D_ACT_CASE_LIST, R3D_ACT_CASE_VIEW, R3D_ACT_CASE_IMPORT, R3D_ACT_CASE_EDIT,
    R3D_ACT_CASE_DELETE, R3D_ACT_RECONSTRUCT, R3D_ACT_EXPORT, R3D_ACT_EXPORT_IDENTIFIED,
    R3D_ACT_VIEW_IDENTITY, R3D_ACT_USER_ADMIN, R3D_ACT_AUDIT_READ, R3D_ACT_SYSTEM_HEALTH,
    R3D_ACT_UPDATE, R3D_ACT_STORE_ADMIN,
    R3D_ACT_COUNT
} r3d_action;

const char *r3d_role_name(r3d_role r);      /* "clinician" */
r3d_role r3d_role_parse(const char *name);  /* R3D_ROLE_NONE if unknown */
const char *r3d_action_name(r3d_action a);  /* "case.edit" */
/* R3D_OK or R3D_EPERM (audited, with a message naming role and action). */
r3d_status r3d_permit(r3d_store *s, const r3d_actor *a, r3d_action act, r3d_error *err);

int r3d_store_has_users(r3d_store *s); /* 0 before first-run set-up */
/* by == NULL only while the store has no users (first run: must be admin). */
r3d_status r3d_user_create(r3d_store *s, const r3d_actor *by, const char *name,
                           const char *password, r3d_role role, r3d_error *err);
r3d_status r3d_user_set_password(r3d_store *s, const r3d_actor *by, const char *name,
                                 const char *password, r3d_error *err);
r3d_status r3d_user_set_role(r3d_store *s, const r3d_actor *by, const char *name, r3d_role role,
                             r3d_error *err);
/* Checks the password (Argon2id), lock-out and rate limits; on success fills
 * *out and a fresh session token (64 hex chars + NUL) that expires. */
r3d_status r3d_login(r3d_store *s, const char *name, const char *password, const char *origin,
                     char token[65], r3d_actor *out, r3d_error *err);
r3d_status r3d_session_check(r3d_store *s, const char *token, const char *origin, r3d_actor *out,
                             r3d_error *err);
void r3d_logout(r3d_store *s, const char *token);

/* ---- cases and images ---------------------------------------------------- */

typedef struct r3d_case_info {
    r3d_id id;
    char title[128];        /* no patient name: modality, body part, date */
    char modality[16];
    char study_uid[65];
    char series_uid[65];
    char created[32];       /* ISO 8601 UTC */
    int dim[3];
    double spacing_mm[3];
    r3d_id head_version;    /* label-map version shown now; 0 = none yet */
    int n_versions;
    char patient_name[128]; /* empty unless the actor may see identity */
    char patient_id[65];    /* idem */
} r3d_case_info;

/* Loads INPUT (DICOM folder/zip/file, NIfTI, NRRD, .inv3) with r3d_input_load,
 * stores the image, its acquisition record and, for DICOM, every input file's
 * SOP Instance UID and SHA-256 (for r3d_trace). series: UID or 1-based index
 * as "2", or NULL for the only/first series. */
r3d_status r3d_case_import(r3d_store *s, const r3d_actor *a, const char *input, const char *series,
                           r3d_id *case_id, r3d_error *err);
r3d_status r3d_case_list(r3d_store *s, const r3d_actor *a, r3d_case_info **cases, int *n,
                         r3d_error *err); /* free(*cases) */
r3d_status r3d_case_get(r3d_store *s, const r3d_actor *a, r3d_id case_id, r3d_case_info *out,
                        r3d_error *err);
r3d_status r3d_case_delete(r3d_store *s, const r3d_actor *a, r3d_id case_id, r3d_error *err);
/* The image as a volume, or as the bytes of a .nii.gz (for the browser). */
r3d_status r3d_case_image(r3d_store *s, const r3d_actor *a, r3d_id case_id, r3d_volume **out,
                          r3d_error *err);
r3d_status r3d_case_image_nifti(r3d_store *s, const r3d_actor *a, r3d_id case_id, uint8_t **bytes,
                                size_t *n, r3d_error *err); /* free(*bytes) */

/* ---- label-map versions -------------------------------------------------- */

/* Provenance of a result (clause 4.7.1): what made it. JSON objects/strings;
 * the store adds software version/build, user, machine and times itself. */
typedef struct r3d_provenance {
    const char *algorithm;   /* "segment", "edit.brush", "threshold", "import" */
    const char *params_json; /* e.g. {"structures":"all","threshold":300} */
} r3d_provenance;

typedef struct r3d_version_info {
    r3d_id id;
    r3d_id parent;          /* 0 for the first */
    char author[64];
    char algorithm[32];
    char note[256];
    char created[32];
    char sha256[65];        /* of the stored label-map bytes */
} r3d_version_info;

/* A new version (labels + label table) on top of the case's head; it becomes
 * the head. Durable on return. */
r3d_status r3d_labels_commit(r3d_store *s, const r3d_actor *a, r3d_id case_id, const r3d_labelmap *m,
                             const char *note, const r3d_provenance *prov, r3d_id *version,
                             r3d_error *err);
/* version 0 = the head. */
r3d_status r3d_labels_load(r3d_store *s, const r3d_actor *a, r3d_id case_id, r3d_id version,
                           r3d_labelmap **out, r3d_error *err);
r3d_status r3d_labels_versions(r3d_store *s, const r3d_actor *a, r3d_id case_id,
                               r3d_version_info **v, int *n, r3d_error *err); /* oldest first */
/* Undo/redo/"show me before the correction": make an existing version the
 * head (recorded, audited; nothing is ever deleted). */
r3d_status r3d_labels_set_head(r3d_store *s, const r3d_actor *a, r3d_id case_id, r3d_id version,
                               r3d_error *err);

/* ---- meshes, measurements, display state ----------------------------------- */

/* A mesh file (format "glb", "stl", ...) made from one label of one version
 * with given parameters (JSON, e.g. {"smooth":5}); replaces an earlier one
 * with the same (version, label, format, params). */
r3d_status r3d_mesh_put(r3d_store *s, const r3d_actor *a, r3d_id case_id, r3d_id version,
                        int label, const char *format, const char *params_json, const void *bytes,
                        size_t n, r3d_error *err);
r3d_status r3d_mesh_get(r3d_store *s, const r3d_actor *a, r3d_id case_id, r3d_id version, int label,
                        const char *format, const char *params_json, uint8_t **bytes, size_t *n,
                        r3d_error *err); /* R3D_ENOTFOUND if never made */

/* Small JSON documents kept with a case: kind "measurements" or "display"
 * (per-object visibility, opacity, colour, transform). Put replaces; each
 * put is kept as a version like label maps are. */
r3d_status r3d_case_doc_put(r3d_store *s, const r3d_actor *a, r3d_id case_id, const char *kind,
                            const char *json, r3d_error *err);
r3d_status r3d_case_doc_get(r3d_store *s, const r3d_actor *a, r3d_id case_id, const char *kind,
                            char **json, r3d_error *err); /* "{}"-like default if none */

/* ---- jobs ------------------------------------------------------------------ */

typedef enum r3d_job_state {
    R3D_JOB_QUEUED, R3D_JOB_RUNNING, R3D_JOB_DONE, R3D_JOB_FAILED
} r3d_job_state;

typedef struct r3d_job {
    r3d_id id, case_id;
    char kind[32];          /* "segment", "mesh", "threshold", "export" */
    char *params_json;      /* owned; free with r3d_job_clear */
    r3d_job_state state;
    double progress;        /* 0..1 */
    char stage[64];
    char message[256];      /* on failure: a human sentence */
    char *result_json;      /* owned */
} r3d_job;

void r3d_job_clear(r3d_job *j);
r3d_status r3d_job_submit(r3d_store *s, const r3d_actor *a, r3d_id case_id, const char *kind,
                          const char *params_json, r3d_id *job, r3d_error *err);
/* Oldest queued job becomes running; R3D_ENOTFOUND when none. */
r3d_status r3d_job_claim(r3d_store *s, r3d_job *out, r3d_error *err);
r3d_status r3d_job_progress(r3d_store *s, r3d_id job, double fraction, const char *stage,
                            r3d_error *err);
r3d_status r3d_job_finish(r3d_store *s, r3d_id job, const r3d_error *failure /* NULL = done */,
                          const char *result_json, r3d_error *err);
r3d_status r3d_job_get(r3d_store *s, const r3d_actor *a, r3d_id job, r3d_job *out, r3d_error *err);

/* ---- audit trail and traceability (clauses 4.7.1, 4.8.2) ------------------ */

/* Appends one hash-chained entry. what: "case.view", "labels.commit", ...;
 * object: "case 12", "user bob" - never a patient name. */
r3d_status r3d_audit(r3d_store *s, const r3d_actor *a, const char *what, const char *object,
                     const char *outcome, r3d_error *err);
/* R3D_OK if the chain is intact; else R3D_EDATA with *first_bad set to the
 * sequence number of the first entry that was changed, removed or moved. */
r3d_status r3d_audit_verify(r3d_store *s, int64_t *first_bad, r3d_error *err);

/* Record a file exported from a case (its SHA-256 in hex, what it is:
 * "dicom-seg", "dicom-stl", "stl", ...), so that r3d_trace finds it.
 * Needs R3D_ACT_EXPORT; audited. version 0 = the head. */
r3d_status r3d_export_record(r3d_store *s, const r3d_actor *a, r3d_id case_id, r3d_id version,
                             const char *sha256_hex, const char *kind, int deidentified,
                             r3d_error *err);

/* The chain from a result back to its inputs as JSON: for a mesh or label
 * file we exported (found by its SHA-256) or "case:N[/version:M]". */
r3d_status r3d_trace(r3d_store *s, const r3d_actor *a, const char *what, char **json,
                     r3d_error *err);

/* ---- additions beyond the first contract (all additive) ------------------ */

/* Users as the administrator sees them (no password material). */
typedef struct r3d_user_info {
    r3d_id id;
    char name[64];
    r3d_role role;
    int failures;            /* consecutive failed logins */
    int64_t locked_until;    /* Unix time; 0 = not locked */
    char created[32];
} r3d_user_info;
r3d_status r3d_user_list(r3d_store *s, const r3d_actor *by, r3d_user_info **users, int *n,
                         r3d_error *err); /* free(*users) */
/* Would this password be accepted for this user name under the store's
 * policy? R3D_EARG with the reason (never echoing the password) if not. */
r3d_status r3d_password_check(r3d_store *s, const char *name, const char *password,
                              r3d_error *err);

/* Settings the administrator may change (audited). Keys and defaults:
 *   password.min_length 12, password.refuse_common 1,
 *   login.max_failures 5, login.lockout_seconds 900,
 *   login.origin_failures_per_minute 20,
 *   session.idle_seconds 1800, session.max_seconds 43200 */
r3d_status r3d_setting_get(r3d_store *s, const char *key, int64_t *value, r3d_error *err);
r3d_status r3d_setting_set(r3d_store *s, const r3d_actor *by, const char *key, int64_t value,
                           r3d_error *err);

/* The case the user last opened or edited ("resume where I was"); 0 if none. */
r3d_status r3d_user_last_case(r3d_store *s, const r3d_actor *a, r3d_id *case_id, r3d_error *err);

/* The last entry's sequence number and hash (the chain's head), and the
 * stored hash of entry seq. Whoever can rewrite the whole database can
 * rebuild a consistent chain; a head recorded elsewhere (a log server,
 * paper) and compared later with r3d_audit_hash_at catches that too. */
r3d_status r3d_audit_head(r3d_store *s, int64_t *seq, char hash[65], r3d_error *err);
r3d_status r3d_audit_hash_at(r3d_store *s, int64_t seq, char hash[65], r3d_error *err);

/* Audit entries seq >= from (at most max) as a JSON array. */
r3d_status r3d_audit_list(r3d_store *s, const r3d_actor *a, int64_t from, int max, char **json,
                          r3d_error *err);

/* Copy the whole store (a consistent snapshot of the database, every blob)
 * into dest, which must not hold a store yet; the copy is checked before
 * this returns. Restore = open the backup as a store and copy it back. */
r3d_status r3d_store_backup(r3d_store *s, const r3d_actor *a, const char *dest_dir,
                            r3d_error *err);
/* A label-map version (0 = the head) as the stored .nii.gz bytes, for the
 * browser (like r3d_case_image_nifti); its label table as JSON text
 * [{"value":1,"name":"liver","name_zh":"肝脏","rgb":[r,g,b]},...] if
 * table_json is not NULL. free() both. */
r3d_status r3d_labels_nifti(r3d_store *s, const r3d_actor *a, r3d_id case_id, r3d_id version,
                            uint8_t **bytes, size_t *n, char **table_json, r3d_error *err);

/* Write a fresh random 32-byte key for encryption at rest (mode 0600). */
r3d_status r3d_store_key_generate(const char *path, r3d_error *err);

/* Software updates: a package is signed with the vendor's Ed25519 key
 * (docs/security.md gives the format). pubkey NULL = the vendor key built
 * into the library; the CLI never passes another. */
typedef struct r3d_update_info {
    char name[64];
    char version[32];
    char payload_sha256[65];
    size_t payload_size;
} r3d_update_info;
const uint8_t *r3d_update_vendor_key(void); /* 32 bytes */
r3d_status r3d_update_verify(const uint8_t *pkg, size_t n, const uint8_t *pubkey,
                             r3d_update_info *info, r3d_error *err);
/* Verify, then record and keep the payload under DIR/updates/ (admin only). */
r3d_status r3d_update_apply(r3d_store *s, const r3d_actor *a, const uint8_t *pkg, size_t n,
                            const uint8_t *pubkey, r3d_update_info *info, r3d_error *err);
/* Build a package (vendor tooling and tests): sign name/version/payload with
 * a 64-byte libsodium Ed25519 secret key. */
r3d_status r3d_update_pack(const char *name, const char *version, const uint8_t *payload,
                           size_t n, const uint8_t secret_key[64], uint8_t **pkg, size_t *pkg_n,
                           r3d_error *err); /* free(*pkg) */

#ifdef __cplusplus
}
#endif
#endif

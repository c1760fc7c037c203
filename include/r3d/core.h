/* r3d/core.h - status codes, error reports, small utilities shared by every module.
 *
 * Errors are values: a function that can fail returns r3d_status and fills an
 * optional r3d_error (last argument, may be NULL) through r3d_fail(), which
 * records the source line too, so status and message can never disagree.
 * Messages name the file and the place and the problem; they never carry a
 * patient value (names, IDs, dates of birth).
 */
#ifndef R3D_CORE_H
#define R3D_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One table generates the codes, their names and their default texts. */
#define R3D_STATUS_TABLE(X)                                              \
    X(R3D_OK, 0, "ok")                                                   \
    X(R3D_EIO, 1, "input/output error")                                  \
    X(R3D_EFORMAT, 2, "malformed or unrecognised file")                  \
    X(R3D_EUNSUPPORTED, 3, "valid but unsupported encoding or feature")  \
    X(R3D_EDATA, 4, "inconsistent data")                                 \
    X(R3D_ENOMEM, 5, "out of memory")                                    \
    X(R3D_EARG, 6, "invalid argument")                                   \
    X(R3D_ENOTFOUND, 7, "not found")                                     \
    X(R3D_EPERM, 8, "not permitted")                                     \
    X(R3D_ECONFLICT, 9, "conflicts with the current state")

typedef enum r3d_status {
#define R3D__ENUM(name, value, text) name = value,
    R3D_STATUS_TABLE(R3D__ENUM)
#undef R3D__ENUM
} r3d_status;

typedef struct r3d_error {
    r3d_status code;
    const char *src_file; /* where in our code the failure was raised */
    int src_line;
    char msg[1024];
} r3d_error;

#define R3D_ERROR_INIT {R3D_OK, NULL, 0, {0}}

const char *r3d_status_name(r3d_status s); /* "R3D_EFORMAT" */
const char *r3d_status_text(r3d_status s); /* "malformed or unrecognised file" */

/* Fill err (if not NULL) and return code. printf-style message. */
r3d_status r3d_fail_at(r3d_error *err, const char *src_file, int src_line,
                       r3d_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
#define r3d_fail(err, code, ...) r3d_fail_at((err), __FILE__, __LINE__, (code), __VA_ARGS__)

/* Prefix an existing message with more context ("series 3: " + msg). */
void r3d_error_prefix(r3d_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- overflow-checked sizes: distrust every size in a header ------------- */

/* *out = a*b; returns 0 on overflow (and leaves *out = 0). */
int r3d_mul_size(size_t a, size_t b, size_t *out);
/* product of n factors, each must be > 0 */
int r3d_mul_sizes(const size_t *f, int n, size_t *out);

/* ---- memory ----------------------------------------------------------------- */

/* Grow the array *p (capacity *cap elements of elem bytes) to hold at least
 * need elements, doubling (start 64); overflow-checked. 1 on success, 0 on
 * out of memory (then *p and *cap are unchanged). */
int r3d_grow(void **p, int64_t *cap, int64_t need, size_t elem);

/* Ask for transparent huge pages on the whole 2 MiB pages inside [p, p+n)
 * (the kernel's "madvise" mode needs the hint): big arrays touched once or
 * in random order then fault and miss the TLB 512 times less. A no-op for
 * small buffers or where unsupported. */
void r3d_advise_huge(void *p, size_t bytes);

/* ---- files ---------------------------------------------------------------- */

/* Read a whole file into a malloc'ed buffer (NUL-terminated beyond size). */
r3d_status r3d_file_read_all(const char *path, uint8_t **buf, size_t *size, r3d_error *err);

/* Write atomically: data goes to "<path>.tmp-XXXXXX" in the same folder,
 * is fsynced, then renamed over path; on failure nothing is left behind. */
typedef struct r3d_atomic_file r3d_atomic_file;
r3d_atomic_file *r3d_atomic_open(const char *path, r3d_error *err);
r3d_status r3d_atomic_write(r3d_atomic_file *f, const void *data, size_t n, r3d_error *err);
r3d_status r3d_atomic_commit(r3d_atomic_file *f, r3d_error *err); /* frees f */
void r3d_atomic_abort(r3d_atomic_file *f);                          /* frees f, removes temp */
r3d_status r3d_file_write_atomic(const char *path, const void *data, size_t n, r3d_error *err);

/* Does the name end with suffix (case-insensitive)? */
int r3d_has_suffix(const char *name, const char *suffix);

/* ---- threads --------------------------------------------------------------- */

/* Number of worker threads the library uses (default: online CPUs; set 0 to
 * restore the default). With r3d_parallel_for's persistent workers, the
 * only global state in the library. */
void r3d_set_threads(int n);
int r3d_threads(void);

/* Run fn(ctx, begin, end) over [0, n) split into contiguous chunks, one per
 * thread, and wait. Chunks are disjoint, so outputs written per index are
 * identical whatever the thread count. Any thread may run any chunk (the
 * caller runs those of workers that have not started yet), possibly
 * several in turn: state kept per chunk must be found from begin, not from
 * the thread. */
typedef void (*r3d_range_fn)(void *ctx, int64_t begin, int64_t end);
void r3d_parallel_for(int64_t n, r3d_range_fn fn, void *ctx);
/* Is the calling thread running a chunk of r3d_parallel_for? Libraries with
 * thread pools of their own (OpenJPEG) then use one thread, so two levels of
 * parallelism do not multiply. */
int r3d_in_parallel(void);

/* ---- version --------------------------------------------------------------- */
const char *r3d_version(void);

#ifdef __cplusplus
}
#endif
#endif

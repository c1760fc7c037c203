/* file.c - whole-file reads and atomic writes.
 *
 * Every output the library writes goes through r3d_atomic_*: a temporary
 * file in the destination folder, fsync, rename, fsync of the folder. A
 * crash or an error at any point leaves either the old file or the new one,
 * never half of one, and no temporary behind on the error paths.
 */
#define _GNU_SOURCE
#include "r3d/core.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

r3d_status r3d_file_read_all(const char *path, uint8_t **buf, size_t *size, r3d_error *err)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    *buf = NULL;
    *size = 0;
    if (fd < 0)
        return r3d_fail(err, R3D_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return r3d_fail(err, R3D_EIO, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    uint8_t *b = malloc(n + 1);
    if (!b) {
        close(fd);
        return r3d_fail(err, R3D_ENOMEM, "%s: cannot allocate %zu bytes", path, n);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(b);
            close(fd);
            return r3d_fail(err, R3D_EIO, "%s: read failed at byte %zu: %s", path, got,
                            r < 0 ? strerror(errno) : "file shrank while reading");
        }
        got += (size_t)r;
    }
    close(fd);
    b[n] = 0;
    *buf = b;
    *size = n;
    return R3D_OK;
}

struct r3d_atomic_file {
    int fd;
    char *path;
    char *tmp;
};

r3d_atomic_file *r3d_atomic_open(const char *path, r3d_error *err)
{
    r3d_atomic_file *f = calloc(1, sizeof *f);
    size_t n = strlen(path);
    if (!f || !(f->path = strdup(path)) || !(f->tmp = malloc(n + 16))) {
        if (f) {
            free(f->path);
            free(f);
        }
        r3d_fail(err, R3D_ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    snprintf(f->tmp, n + 16, "%s.tmp-XXXXXX", path);
    f->fd = mkostemp(f->tmp, O_CLOEXEC);
    if (f->fd < 0) {
        r3d_fail(err, R3D_EIO, "%s: cannot create: %s", path, strerror(errno));
        free(f->tmp);
        free(f->path);
        free(f);
        return NULL;
    }
    /* mkstemp makes 0600; outputs are ordinary files the user shares. */
    mode_t um = umask(0);
    umask(um);
    fchmod(f->fd, 0666 & ~um);
    return f;
}

r3d_status r3d_atomic_write(r3d_atomic_file *f, const void *data, size_t n, r3d_error *err)
{
    const uint8_t *p = data;
    while (n > 0) {
        ssize_t w = write(f->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return r3d_fail(err, R3D_EIO, "%s: write failed: %s", f->path,
                            w < 0 ? strerror(errno) : "no space");
        p += w;
        n -= (size_t)w;
    }
    return R3D_OK;
}

static void atomic_free(r3d_atomic_file *f)
{
    free(f->tmp);
    free(f->path);
    free(f);
}

void r3d_atomic_abort(r3d_atomic_file *f)
{
    if (!f)
        return;
    close(f->fd);
    unlink(f->tmp);
    atomic_free(f);
}

r3d_status r3d_atomic_commit(r3d_atomic_file *f, r3d_error *err)
{
    if (fsync(f->fd) != 0) {
        r3d_status s = r3d_fail(err, R3D_EIO, "%s: fsync failed: %s", f->path, strerror(errno));
        r3d_atomic_abort(f);
        return s;
    }
    if (close(f->fd) != 0) {
        r3d_status s = r3d_fail(err, R3D_EIO, "%s: close failed: %s", f->path, strerror(errno));
        unlink(f->tmp);
        atomic_free(f);
        return s;
    }
    if (rename(f->tmp, f->path) != 0) {
        r3d_status s = r3d_fail(err, R3D_EIO, "%s: rename failed: %s", f->path, strerror(errno));
        unlink(f->tmp);
        atomic_free(f);
        return s;
    }
    /* Make the rename itself durable. */
    char *dup = strdup(f->path);
    if (dup) {
        int dfd = open(dirname(dup), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dup);
    }
    atomic_free(f);
    return R3D_OK;
}

r3d_status r3d_file_write_atomic(const char *path, const void *data, size_t n, r3d_error *err)
{
    r3d_atomic_file *f = r3d_atomic_open(path, err);
    if (!f)
        return err ? err->code : R3D_EIO;
    r3d_status s = r3d_atomic_write(f, data, n, err);
    if (s != R3D_OK) {
        r3d_atomic_abort(f);
        return s;
    }
    return r3d_atomic_commit(f, err);
}

int r3d_has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), m = strlen(suffix);
    return n >= m && strcasecmp(name + n - m, suffix) == 0;
}

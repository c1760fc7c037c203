/* error.c - the status table and the one way errors are raised (r3d_fail). */
#include "r3d/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *r3d_status_name(r3d_status s)
{
    switch (s) {
#define R3D__NAME(name, value, text) case name: return #name;
        R3D_STATUS_TABLE(R3D__NAME)
#undef R3D__NAME
    }
    return "R3D_E?";
}

const char *r3d_status_text(r3d_status s)
{
    switch (s) {
#define R3D__TEXT(name, value, text) case name: return text;
        R3D_STATUS_TABLE(R3D__TEXT)
#undef R3D__TEXT
    }
    return "unknown status";
}

r3d_status r3d_fail_at(r3d_error *err, const char *src_file, int src_line, r3d_status code,
                       const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        err->src_file = src_file;
        err->src_line = src_line;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void r3d_error_prefix(r3d_error *err, const char *fmt, ...)
{
    char pre[512], old[sizeof err->msg];
    va_list ap;
    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t n = strlen(pre);
    if (n >= sizeof err->msg)
        n = sizeof err->msg - 1;
    memcpy(err->msg, pre, n);
    size_t m = strnlen(old, sizeof old);
    if (m > sizeof err->msg - 1 - n)
        m = sizeof err->msg - 1 - n;
    memcpy(err->msg + n, old, m);
    err->msg[n + m] = 0;
}

int r3d_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) {
        *out = 0;
        return 0;
    }
    *out = a * b;
    return 1;
}

int r3d_mul_sizes(const size_t *f, int n, size_t *out)
{
    size_t acc = 1;
    for (int i = 0; i < n; i++) {
        if (f[i] == 0 || !r3d_mul_size(acc, f[i], &acc)) {
            *out = 0;
            return 0;
        }
    }
    *out = acc;
    return 1;
}

/* check.h - the unit-test harness: CHECK macros that print both values on
 * failure, a runner that counts, and the closing line CTest output shows:
 *   test_nifti: 14 passed, 0 failed
 * Each test is a function; RUN(test_fn) runs it and counts its checks'
 * verdict (a test passes when none of its checks failed).
 */
#ifndef R3D_CHECK_H
#define R3D_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int check_failures_in_test;
static int check_passed, check_failed, check_skipped;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
            check_failures_in_test++;                                                    \
        }                                                                                \
    } while (0)

#define CHECK_INT(a, b)                                                                  \
    do {                                                                                 \
        long long va_ = (long long)(a), vb_ = (long long)(b);                            \
        if (va_ != vb_) {                                                                \
            fprintf(stderr, "  %s:%d: %s == %s: got %lld, expected %lld\n", __FILE__,    \
                    __LINE__, #a, #b, va_, vb_);                                         \
            check_failures_in_test++;                                                    \
        }                                                                                \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                            \
    do {                                                                                 \
        double va_ = (double)(a), vb_ = (double)(b);                                     \
        if (!(fabs(va_ - vb_) <= (tol))) {                                               \
            fprintf(stderr, "  %s:%d: %s ~ %s: got %.9g, expected %.9g (tol %g)\n",      \
                    __FILE__, __LINE__, #a, #b, va_, vb_, (double)(tol));                \
            check_failures_in_test++;                                                    \
        }                                                                                \
    } while (0)

#define CHECK_STR(a, b)                                                                  \
    do {                                                                                 \
        const char *va_ = (a), *vb_ = (b);                                               \
        if (!va_ || !vb_ || strcmp(va_, vb_) != 0) {                                     \
            fprintf(stderr, "  %s:%d: %s == %s: got \"%s\", expected \"%s\"\n", __FILE__, \
                    __LINE__, #a, #b, va_ ? va_ : "(null)", vb_ ? vb_ : "(null)");       \
            check_failures_in_test++;                                                    \
        }                                                                                \
    } while (0)

/* The message contains the substring. */
#define CHECK_CONTAINS(hay, needle)                                                      \
    do {                                                                                 \
        const char *h_ = (hay), *n_ = (needle);                                          \
        if (!h_ || !strstr(h_, n_)) {                                                    \
            fprintf(stderr, "  %s:%d: \"%s\" does not contain \"%s\"\n", __FILE__,       \
                    __LINE__, h_ ? h_ : "(null)", n_);                                   \
            check_failures_in_test++;                                                    \
        }                                                                                \
    } while (0)

/* Skip the current test with a one-line reason (e.g. no ../shared/data). */
#define SKIP(...)                                                                        \
    do {                                                                                 \
        fprintf(stderr, "  skip: ");                                                     \
        fprintf(stderr, __VA_ARGS__);                                                    \
        fprintf(stderr, "\n");                                                           \
        check_failures_in_test = -1;                                                     \
        return;                                                                          \
    } while (0)

#define RUN(fn)                                                                          \
    do {                                                                                 \
        check_failures_in_test = 0;                                                      \
        fprintf(stderr, "%s\n", #fn);                                                    \
        fn();                                                                            \
        if (check_failures_in_test < 0)                                                  \
            check_skipped++;                                                             \
        else if (check_failures_in_test == 0)                                            \
            check_passed++;                                                              \
        else {                                                                           \
            check_failed++;                                                              \
            fprintf(stderr, "FAILED: %s\n", #fn);                                        \
        }                                                                                \
    } while (0)

#define CHECK_DONE(name)                                                                 \
    (check_skipped ? printf("%s: %d passed, %d failed, %d skipped\n", (name), check_passed, \
                            check_failed, check_skipped)                                 \
                   : printf("%s: %d passed, %d failed\n", (name), check_passed,            \
                            check_failed),                                               \
     check_failed ? 1 : 0)

/* Path under ../shared/data, or NULL (with the reason printed) when absent. */
static inline const char *test_data(const char *rel, char *buf, size_t cap)
{
    struct stat st;
    snprintf(buf, cap, "%s/%s", R3D_TEST_DATA, rel);
    if (stat(buf, &st) != 0)
        return NULL;
    return buf;
}

#endif

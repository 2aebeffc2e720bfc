// harness: a minimal test runner for lorascope's C tests.
//
// A test file defines `static void test_xxx(void)` functions and a table
//   static const ls_test tests[] = { LS_TEST(test_xxx), ... };
//   int main(int argc, char **argv) { return ls_test_main(argc, argv, tests, LS_COUNT(tests)); }
// Run with no argument: every test; with names: just those (meson registers
// one meson test per name so that `meson test` counts each behaviour).
// Exit code 77 from a test means "skipped" (meson's convention), with a reason.
//
// The CHECK macros print the numbers that differ, the file and the line, and
// mark the test failed; the test continues so that one run shows every miss.
#ifndef LS_HARNESS_H
#define LS_HARNESS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    void (*fn)(void);
} ls_test;

#define LS_TEST(fn) { #fn, fn }
#define LS_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

extern int ls_test_failures;
extern const char *ls_test_skip_reason;

#define CHECK(cond) \
    do { if (!(cond)) { ls_test_failures++; \
        fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)

#define CHECK_MSG(cond, ...) \
    do { if (!(cond)) { ls_test_failures++; \
        fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
        fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

// |a - b| <= tol (absolute); NaN never passes.
#define CHECK_NEAR(a, b, tol) \
    do { double _a = (a), _b = (b), _t = (tol); \
        if (!(fabs(_a - _b) <= _t)) { ls_test_failures++; \
            fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.17g, %s = %.17g, |diff| = %.3g > tol %.3g\n", \
                __FILE__, __LINE__, #a, _a, #b, _b, fabs(_a - _b), _t); } } while (0)

// |a - b| <= rtol * max(|a|, |b|) + atol.
#define CHECK_CLOSE(a, b, rtol, atol) \
    do { double _a = (a), _b = (b); \
        double _t = (rtol) * fmax(fabs(_a), fabs(_b)) + (atol); \
        if (!(fabs(_a - _b) <= _t)) { ls_test_failures++; \
            fprintf(stderr, "%s:%d: CHECK_CLOSE failed: %s = %.10g, %s = %.10g, |diff| = %.3g > %.3g\n", \
                __FILE__, __LINE__, #a, _a, #b, _b, fabs(_a - _b), _t); } } while (0)

#define CHECK_INT(a, b) \
    do { long long _a = (long long)(a), _b = (long long)(b); \
        if (_a != _b) { ls_test_failures++; \
            fprintf(stderr, "%s:%d: CHECK_INT failed: %s = %lld, expected %s = %lld\n", \
                __FILE__, __LINE__, #a, _a, #b, _b); } } while (0)

#define CHECK_STR_CONTAINS(hay, needle) \
    do { const char *_h = (hay), *_n = (needle); \
        if (!_h || !strstr(_h, _n)) { ls_test_failures++; \
            fprintf(stderr, "%s:%d: CHECK_STR_CONTAINS failed: \"%s\" does not contain \"%s\"\n", \
                __FILE__, __LINE__, _h ? _h : "(null)", _n); } } while (0)

// Marks the current test skipped (exit 77 when it is the only test run).
#define SKIP(...) \
    do { static char _why[512]; snprintf(_why, sizeof _why, __VA_ARGS__); \
        ls_test_skip_reason = _why; return; } while (0)

int ls_test_main(int argc, char **argv, const ls_test *tests, int n);

// Path of a shared asset (../shared/assets/<rel> from the source root, or
// $LORASCOPE_ASSETS/<rel>); NULL if it does not exist. Static buffer.
const char *ls_test_asset(const char *rel);
// Path of a file under tests/ in the source tree. Static buffer.
const char *ls_test_source(const char *rel);
// A fresh empty directory for this test's outputs (under the build dir);
// each call returns its own string, owned by the harness and freed at exit.
const char *ls_test_tmpdir(const char *name);

// Runs the lorascope binary ($LORASCOPE_BIN; exits the test if unset) with
// `args`, a shell fragment, from tests/ in the source tree: its stdout into
// out and its stderr into err (each NUL-terminated and cut to its size; NULL
// discards it). Returns the exit code, or 128 + the signal that ended it.
int ls_test_lorascope(const char *args, char *out, size_t out_size, char *err, size_t err_size);

// Regular files under dir (recursively); -1 if it cannot be listed.
int ls_test_count_files(const char *dir);

// The number in column `col` (0-based, tab-separated) of the first row of the
// TSV file that starts with `key`; NAN if there is none.
double ls_test_tsv_value(const char *path, const char *key, int col);

#endif

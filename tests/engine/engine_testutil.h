// engine_testutil: helpers shared by the engine tests (test_ops_grad.c,
// test_encoder.c, test_reference.c): seeded inputs, finite differences, and
// reading reference files and checkpoints.
#ifndef LS_TESTS_ENGINE_TESTUTIL_H
#define LS_TESTS_ENGINE_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/model.h"
#include "io/safetensors.h"

// n values ~ N(0, scale^2) from seed (malloc'd; at least one element).
float *et_randn(int n, uint64_t seed, float scale);

// sum w[i] x[i] in double.
double et_dot(const float *w, const float *x, size_t n);

// The scalar objective of one op: runs the forward with the current inputs.
typedef double (*et_objective)(void *ctx);

// Compares g (analytic gradient of the objective w.r.t. x, n values) with
// central differences of step h; x is perturbed in place and restored. A value
// is off when |fd - g| > rtol max(|fd|, |g|) + atol. Returns the number of
// mismatches (the first 5 printed; a summary with LS_FD_VERBOSE or any off).
int et_fd_check(const char *what, et_objective f, void *ctx, float *x, const float *g, int n, float h, double rtol,
                double atol);

// A reference tensor stored as floats, as ints (malloc'd): *B its first dim, *T
// (when not NULL; the tensor must then be 2-D) its second. NULL (a failed
// check) when it is missing.
int *et_load_ints(const st_file *f, const char *name, int *B, int *T);

// Builds *m on be from the checkpoint at path; 0, or -1 after a failed check.
int et_load_model(ls_model *m, const char *path, const ls_backend *be);

#endif

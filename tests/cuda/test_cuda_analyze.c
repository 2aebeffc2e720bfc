// Tests for `lorascope analyze --backend cuda`: the five analyses of
// src/analyze with every SVD and QR on cuSOLVER (an_set_linalg_backend)
// against the same analyses on LAPACKE, number by number.
//
// Built twice from this one file (tests/cuda/meson.build):
//   test_cuda_analyze      suite 'cuda': cuSOLVER through the CUDA module,
//                          found and loaded as `analyze --backend cuda` does
//                          (ls_linalg_by_name); skips without a usable GPU;
//   test_cuda_analyze_emu  suite 'cuda_emu': kernels/cuda_analysis.cu on the
//                          CPU emulator (its cuSOLVER is LAPACK's other
//                          drivers), linked in; runs everywhere.
//
// Inputs: the PEFT-made GPT-2 adapters of tests/data/peft_generic/gpt2 (two
// layers, d = 32, LoRA on the fused c_attn, so q and v are row blocks) and
// their base. Tolerance: 1e-6 of each array's largest magnitude (the promise
// of kernels/cuda_analysis.h for singular vectors), on φ grids, projected
// norms, spectra and cosines; the φ chance bands are drawn on the CPU either
// way and must agree to the bit.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "analysis.h"
#include "analyze/analyze.h"
#include "analyze/inputs.h"
#include "analyze/results.h"
#include "base/util.h"
#include "harness.h"

#ifdef LS_CUDA_EMULATE
#include "cuda_analysis.h"
#else
#include "engine/backend_registry.h"
#endif

#define TOL 1e-6

// cuSOLVER's QR and SVDs as analyze_run installs them; NULL with ls_error() if none.
static const an_linalg_backend *gpu_linalg(void) {
#ifdef LS_CUDA_EMULATE
    static const an_linalg_backend emu = {"cuda-emu", an_cuda_qr_thin, an_cuda_svd_thin, an_cuda_delta_svd, NULL};
    return &emu;
#else
    const an_linalg_backend *lb = NULL;
    return ls_linalg_by_name("cuda", &lb) ? NULL : lb;
#endif
}

#define NEED_GPU() \
    const an_linalg_backend *gpu = gpu_linalg(); \
    if (!gpu) SKIP("%s", ls_error())

// ----------------------------------------------------------------------------
// inputs and comparisons

static char base_dir[4096], adapter_dir[4096], adapter2_dir[4096];

// A request of `kind` over the GPT-2 adapters (both for subspace), q and v, every layer.
static analyze_request gpt2_request(const char *kind) {
    snprintf(base_dir, sizeof base_dir, "%s", ls_test_source("data/peft_generic/gpt2/base"));
    snprintf(adapter_dir, sizeof adapter_dir, "%s", ls_test_source("data/peft_generic/gpt2/adapter"));
    snprintf(adapter2_dir, sizeof adapter2_dir, "%s", ls_test_source("data/peft_generic/gpt2/adapter2"));
    analyze_request req;
    analyze_request_defaults(&req);
    req.kind = kind;
    req.out = "unused";
    req.seed = 7;
    req.adapters[req.n_adapters++] = adapter_dir;
    if (!strcmp(kind, "subspace")) req.adapter2 = adapter2_dir;
    else req.adapters[req.n_adapters++] = adapter2_dir;
    if (strcmp(kind, "subspace")) req.base = base_dir;
    return req;
}

// max |a - b| <= tol * max |a| over n values (NaN only where both are NaN).
static void check_array(const char *what, int cell, const double *a, const double *b, size_t n, double tol) {
    double scale = 0.0, worst = 0.0;
    int nan_mismatch = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i])) {
            nan_mismatch += isnan(a[i]) != isnan(b[i]);
            continue;
        }
        scale = fmax(scale, fabs(a[i]));
        worst = fmax(worst, fabs(a[i] - b[i]));
    }
    CHECK_MSG(!nan_mismatch && worst <= tol * fmax(scale, 1e-300),
              "%s, cell %d: max |cuSOLVER - LAPACKE| = %.3g, %.3g of max |LAPACKE| %.6g (tol %g), %d NaN mismatches",
              what, cell, worst, worst / fmax(scale, 1e-300), scale, tol, nan_mismatch);
}

static void check_value(const char *what, int cell, double a, double b) { check_array(what, cell, &a, &b, 1, TOL); }

static analyze_inputs *load_inputs(const analyze_request *req) {
    analyze_inputs *in = NULL;
    int rc = analyze_inputs_load(req, &in);
    CHECK_MSG(rc == 0, "analyze_inputs_load: %s", ls_error());
    if (rc) {
        analyze_inputs_free(in);
        return NULL;
    }
    return in;
}

// ----------------------------------------------------------------------------
// one test per analysis kind

static void test_analyses_through_cusolver_subspace_matches_lapacke(void) {
    NEED_GPU();
    analyze_request req = gpt2_request("subspace");
    analyze_inputs *in = load_inputs(&req);
    if (!in) return;
    subspace_result c, g;
    CHECK_MSG(subspace_compute(&req, in, &c) == 0, "cpu: %s", ls_error());
    an_set_linalg_backend(gpu);
    CHECK_MSG(subspace_compute(&req, in, &g) == 0, "%s: %s", gpu->name, ls_error());
    an_set_linalg_backend(NULL);
    CHECK_INT(g.n_cells, c.n_cells);
    for (int i = 0; i < c.n_cells && i < g.n_cells; i++) {
        const subspace_cell *x = &c.cells[i], *y = &g.cells[i];
        CHECK(x->imax == y->imax && x->jmax == y->jmax && x->n == y->n);
        size_t n = (size_t)x->imax * (size_t)x->jmax;
        check_array("φ", i, x->phi, y->phi, n, TOL);
        check_array("φ of the random matrices", i, x->phi_random, y->phi_random, n, TOL);
        check_value("mean φ", i, x->mean, y->mean);
    }
    CHECK_INT(g.n_chance, c.n_chance);
    for (int b = 0; b < c.n_chance && b < g.n_chance; b++) // drawn on the CPU either way: the same bits
        CHECK(!memcmp(&c.chance[b].grid_mean, &g.chance[b].grid_mean, sizeof c.chance[b].grid_mean));
    subspace_result_free(&c);
    subspace_result_free(&g);
    analyze_inputs_free(in);
}

static void test_analyses_through_cusolver_amplify_matches_lapacke(void) {
    NEED_GPU();
    analyze_request req = gpt2_request("amplify");
    analyze_inputs *in = load_inputs(&req);
    if (!in) return;
    amplify_result c, g;
    CHECK_MSG(amplify_compute(&req, in, &c) == 0, "cpu: %s", ls_error());
    an_set_linalg_backend(gpu);
    CHECK_MSG(amplify_compute(&req, in, &g) == 0, "%s: %s", gpu->name, ls_error());
    an_set_linalg_backend(NULL);
    int n = c.n_series * (c.layers.layer1 - c.layers.layer0) * c.n_modules;
    CHECK(n > 0 && g.n_series == c.n_series && g.n_modules == c.n_modules);
    for (int i = 0; i < n; i++) {
        const an_amplification *x = &c.cells[i], *y = &g.cells[i];
        CHECK_INT(y->r, x->r);
        check_value("‖U_ΔWᵀ W V_ΔW‖_F", i, x->proj_dw, y->proj_dw);
        check_value("‖U_Wᵀ W V_W‖_F", i, x->proj_w, y->proj_w);
        check_value("‖U_Gᵀ W V_G‖_F", i, x->proj_random, y->proj_random);
        check_value("‖W‖_F", i, x->w_norm, y->w_norm);
        check_value("‖ΔW‖_F", i, x->dw_norm, y->dw_norm);
        check_value("amplification factor", i, x->factor, y->factor);
        // the band's draws meet W through its σ, which come from the backend's SVD
        check_value("chance mean of ‖UᵀWV‖_F", i, c.chance[i].mean, g.chance[i].mean);
        check_value("chance p95 of ‖UᵀWV‖_F", i, c.chance[i].p95, g.chance[i].p95);
    }
    amplify_result_free(&c);
    amplify_result_free(&g);
    analyze_inputs_free(in);
}

static void test_analyses_through_cusolver_w_vs_dw_matches_lapacke(void) {
    NEED_GPU();
    analyze_request req = gpt2_request("w-vs-dw");
    analyze_inputs *in = load_inputs(&req);
    if (!in) return;
    w_vs_dw_result c, g;
    CHECK_MSG(w_vs_dw_compute(&req, in, &c) == 0, "cpu: %s", ls_error());
    an_set_linalg_backend(gpu);
    CHECK_MSG(w_vs_dw_compute(&req, in, &g) == 0, "%s: %s", gpu->name, ls_error());
    an_set_linalg_backend(NULL);
    CHECK_INT(g.n_cells, c.n_cells);
    for (int i = 0; i < c.n_cells && i < g.n_cells; i++) {
        const w_vs_dw_cell *x = &c.cells[i], *y = &g.cells[i];
        CHECK(x->imax == y->imax && x->r == y->r && x->series == y->series);
        check_array("φ(W, ΔW)", i, x->phi, y->phi, (size_t)x->imax * (size_t)x->r, TOL);
        check_value("φ(r, r)", i, x->phi_rr, y->phi_rr);
    }
    w_vs_dw_result_free(&c);
    w_vs_dw_result_free(&g);
    analyze_inputs_free(in);
}

static void test_analyses_through_cusolver_spectrum_and_intruders_match_lapacke(void) {
    NEED_GPU();
    analyze_request req = gpt2_request("spectrum");
    analyze_inputs *in = load_inputs(&req);
    if (!in) return;
    spectrum_result c, g;
    CHECK_MSG(spectrum_compute(&req, in, &c) == 0, "cpu: %s", ls_error());
    an_set_linalg_backend(gpu);
    CHECK_MSG(spectrum_compute(&req, in, &g) == 0, "%s: %s", gpu->name, ls_error());
    an_set_linalg_backend(NULL);
    CHECK_INT(g.n_cells, c.n_cells);
    for (int i = 0; i < c.n_cells && i < g.n_cells; i++) {
        CHECK_INT(g.cells[i].n, c.cells[i].n);
        check_array("σ(ΔW)", i, c.cells[i].sigma, g.cells[i].sigma, (size_t)c.cells[i].n, TOL);
        check_value("effective rank", i, c.cells[i].sum.effective_rank, g.cells[i].sum.effective_rank);
        CHECK_INT(g.cells[i].sum.energy_rank, c.cells[i].sum.energy_rank);
    }
    spectrum_result_free(&c);
    spectrum_result_free(&g);

    req.kind = "intruders";
    intruders_result ic, ig;
    CHECK_MSG(intruders_compute(&req, in, &ic) == 0, "cpu: %s", ls_error());
    an_set_linalg_backend(gpu);
    CHECK_MSG(intruders_compute(&req, in, &ig) == 0, "%s: %s", gpu->name, ls_error());
    an_set_linalg_backend(NULL);
    CHECK_INT(ig.n_cells, ic.n_cells);
    for (int i = 0; i < ic.n_cells && i < ig.n_cells; i++) {
        const an_intruders *x = &ic.cells[i].found, *y = &ig.cells[i].found;
        CHECK_INT(y->k, x->k);
        CHECK_INT(y->count, x->count);
        for (int j = 0; j < x->k && j < y->k; j++) {
            check_value("σ(W0 + ΔW)", i, x->items[j].sigma, y->items[j].sigma);
            check_value("max |cos|", i, x->items[j].max_cos, y->items[j].max_cos);
        }
    }
    intruders_result_free(&ic);
    intruders_result_free(&ig);
    analyze_inputs_free(in);
}

// Bad input through cuSOLVER: the same one-line messages as LAPACKE's (the
// checks run before the backend is called), and the backend set back off.
static void test_analyses_through_cusolver_reject_bad_input_like_lapacke(void) {
    NEED_GPU();
    an_set_linalg_backend(gpu);
    an_mat E = {0, 0, NULL}, Q, R;
    an_svd s;
    CHECK(an_qr_thin(&E, &Q, &R) == -1);
    CHECK_STR_CONTAINS(an_error(), "an_qr_thin: empty matrix 0 x 0");
    an_mat X = an_mat_alloc(3, 2);
    AN_AT(&X, 1, 1) = NAN;
    CHECK(an_svd_thin(&X, &s) == -1);
    CHECK_STR_CONTAINS(an_error(), "an_svd_thin: entry (1, 1) of the 3 x 2 matrix is nan");
    an_mat B = an_mat_alloc(4, 2), A = an_mat_alloc(3, 5);
    CHECK(an_delta_svd(&B, &A, 1.0, &s) == -1);
    CHECK_STR_CONTAINS(an_error(), "an_delta_svd: B is 4 x 2 but A is 3 x 5");
    CHECK(an_set_linalg_backend(NULL) == gpu);
    an_mat_free(&X);
    an_mat_free(&B);
    an_mat_free(&A);
}

int main(int argc, char **argv) {
    static const ls_test tests[] = {
        LS_TEST(test_analyses_through_cusolver_subspace_matches_lapacke),
        LS_TEST(test_analyses_through_cusolver_amplify_matches_lapacke),
        LS_TEST(test_analyses_through_cusolver_w_vs_dw_matches_lapacke),
        LS_TEST(test_analyses_through_cusolver_spectrum_and_intruders_match_lapacke),
        LS_TEST(test_analyses_through_cusolver_reject_bad_input_like_lapacke),
    };
    return ls_test_main(argc, argv, tests, LS_COUNT(tests));
}

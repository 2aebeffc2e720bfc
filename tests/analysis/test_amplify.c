// Tests for analysis/amplify: Table 7 of Hu et al. 2021 (App. H.4) on
// matrices whose answer is known by construction.
#include <stdint.h>

#include "an_testutil.h"
#include "analysis.h"
#include "harness.h"

static void test_projection_on_own_directions_is_top_r_energy(void) {
    // U, V = W's own top-r singular vectors: U^T W V = diag(σ_1..σ_r), so
    // ‖U^T W V‖_F = sqrt(Σ_{i<=r} σ_i²).
    int d = 30, k = 20;
    an_mat W = an_mat_gaussian(d, k, 1), dW = an_mat_gaussian(d, k, 2);
    an_svd ws;
    CHECK_INT(an_svd_thin(&W, &ws), 0);
    double energy = 0.0;
    for (int r = 1; r <= 6; r++) {
        energy += ws.S[r - 1] * ws.S[r - 1];
        an_mat U = an_mat_first_cols(&ws.U, r), V = an_mat_first_cols(&ws.V, r);
        double direct;
        CHECK_INT(an_projected_norm(&W, &U, &V, &direct), 0);
        CHECK_CLOSE(direct, sqrt(energy), 1e-12, 0.0);
        an_amplification am;
        CHECK_INT(an_amplification_dense(&W, &dW, r, 5, &am), 0);
        CHECK_CLOSE(am.proj_w, sqrt(energy), 1e-12, 0.0);
        CHECK_CLOSE(am.w_norm, an_frobenius_norm(&W), 1e-14, 0.0);
        CHECK_CLOSE(am.dw_norm, an_frobenius_norm(&dW), 1e-12, 0.0);
        // Ky Fan: no r-dimensional pair of bases captures more of W than its own.
        CHECK(am.proj_dw <= am.proj_w * (1 + 1e-12));
        CHECK(am.proj_random <= am.proj_w * (1 + 1e-12));
        an_mat_free(&U), an_mat_free(&V);
    }
    an_mat_free(&W), an_mat_free(&dW), an_svd_free(&ws);
}

static void test_amplification_factor_of_update_along_weak_direction(void) {
    // W = Qd diag(10, 7, 5, 3, 1, 0.5) Qk^T. A rank-1 update along W's σ=1
    // direction, ΔW = s·B·A with B = c·u_5, A = v_5^T: U_ΔW^T W V_ΔW = ±1,
    // ‖ΔW‖_F = s·c, factor = s·c / 1. A rank-2 update along (u_5, u_6) with
    // weights (c1, c2): ‖U^T W V‖_F = sqrt(1² + 0.5²), ‖ΔW‖_F = s·sqrt(c1² + c2²).
    int d = 8, k = 6;
    double sw[6] = { 10, 7, 5, 3, 1, 0.5 }, s = 2.0, c = 3.0, c1 = 4.0, c2 = 1.5;
    an_mat Qd = tu_random_orthogonal(d, 11), Qk = tu_random_orthogonal(k, 12);
    an_mat W = tu_from_svd(&Qd, sw, 6, &Qk);
    an_mat B1 = an_mat_alloc(d, 1), A1 = an_mat_alloc(1, k);
    an_mat B2 = an_mat_alloc(d, 2), A2 = an_mat_alloc(2, k);
    for (int i = 0; i < d; i++) {
        AN_AT(&B1, i, 0) = c * AN_AT(&Qd, i, 4);
        AN_AT(&B2, i, 0) = c1 * AN_AT(&Qd, i, 4);
        AN_AT(&B2, i, 1) = c2 * AN_AT(&Qd, i, 5);
    }
    for (int j = 0; j < k; j++) {
        AN_AT(&A1, 0, j) = AN_AT(&Qk, j, 4);
        AN_AT(&A2, 0, j) = AN_AT(&Qk, j, 4);
        AN_AT(&A2, 1, j) = AN_AT(&Qk, j, 5);
    }
    an_amplification am;
    CHECK_INT(an_amplification_lowrank(&W, &B1, &A1, s, 1, 77, &am), 0);
    CHECK_INT(am.r, 1);
    CHECK_NEAR(am.proj_dw, 1.0, 1e-12);
    CHECK_NEAR(am.dw_norm, s * c, 1e-12);
    CHECK_NEAR(am.factor, s * c / 1.0, 1e-11);
    CHECK_NEAR(am.proj_w, 10.0, 1e-12);
    CHECK_NEAR(am.w_norm, sqrt(100 + 49 + 25 + 9 + 1 + 0.25), 1e-12);
    CHECK(am.proj_random > 0.0 && am.proj_random <= 10.0);

    CHECK_INT(an_amplification_lowrank(&W, &B2, &A2, s, 2, 77, &am), 0);
    CHECK_NEAR(am.proj_dw, sqrt(1.0 + 0.25), 1e-12);
    CHECK_NEAR(am.dw_norm, s * sqrt(c1 * c1 + c2 * c2), 1e-12);
    CHECK_NEAR(am.factor, s * sqrt(c1 * c1 + c2 * c2) / sqrt(1.25), 1e-11);
    CHECK_NEAR(am.proj_w, sqrt(100.0 + 49.0), 1e-12);
    an_mat_free(&Qd), an_mat_free(&Qk), an_mat_free(&W);
    an_mat_free(&B1), an_mat_free(&A1), an_mat_free(&B2), an_mat_free(&A2);
}

static void test_amplification_lowrank_and_dense_routes_agree(void) {
    int d = 36, k = 28, r = 6;
    an_mat W = an_mat_gaussian(d, k, 21), B = an_mat_gaussian(d, r, 22), A = an_mat_gaussian(r, k, 23), dW;
    CHECK_INT(an_delta_dense(&B, &A, 0.25, &dW), 0);
    for (int rr = 1; rr <= r; rr++) {
        an_amplification lo, de;
        CHECK_INT(an_amplification_lowrank(&W, &B, &A, 0.25, rr, 9, &lo), 0);
        CHECK_INT(an_amplification_dense(&W, &dW, rr, 9, &de), 0);
        CHECK_CLOSE(lo.proj_dw, de.proj_dw, 1e-10, 0.0);
        CHECK_CLOSE(lo.proj_w, de.proj_w, 1e-12, 0.0);
        CHECK_CLOSE(lo.proj_random, de.proj_random, 1e-12, 0.0);  // same seed, same G
        CHECK_CLOSE(lo.dw_norm, de.dw_norm, 1e-12, 0.0);
        CHECK_CLOSE(lo.factor, de.factor, 1e-10, 0.0);
    }
    an_mat_free(&W), an_mat_free(&B), an_mat_free(&A), an_mat_free(&dW);
}

static void test_amplification_random_baseline_matches_expected_energy(void) {
    // U, V from a Gaussian matrix are independent Haar bases, so
    // E‖U^T W V‖²_F = Σ_ab E(u_a^T W v_b)² = r² ‖W‖²_F / (d k); its square
    // root for the paper's Wq, 4 · 61.95 / 12288 = 0.020, is Table 7's 0.02.
    // Mean over 300 seeds, within 5 standard errors estimated from the samples.
    int d = 48, k = 40, r = 3, n = 300;
    an_mat W = an_mat_gaussian(d, k, 31), B = an_mat_gaussian(d, r, 32), A = an_mat_gaussian(r, k, 33);
    an_svd ws, ds;
    CHECK_INT(an_svd_thin(&W, &ws), 0);
    CHECK_INT(an_delta_svd(&B, &A, 1.0, &ds), 0);
    double sum = 0.0, sq = 0.0, wn = an_frobenius_norm(&W);
    for (int s = 0; s < n; s++) {
        an_amplification am;
        CHECK_INT(an_amplification_from_svd(&W, &ws, &ds, r, 100 + s, &am), 0);
        double e = am.proj_random * am.proj_random;
        sum += e;
        sq += e * e;
    }
    double mean = sum / n, se = sqrt(fmax(sq / n - mean * mean, 0.0) / (n - 1));
    double want = (double)r * r * wn * wn / ((double)d * k);
    CHECK_MSG(fabs(mean - want) <= 5.0 * se, "mean ‖U^T W V‖² %.5f, expected r²‖W‖²/(dk) = %.5f, "
              "5 s.e. %.5f", mean, want, 5.0 * se);
    an_mat_free(&W), an_mat_free(&B), an_mat_free(&A), an_svd_free(&ws), an_svd_free(&ds);
}

static void test_amplification_rejects_bad_r_and_shapes(void) {
    an_mat W = an_mat_gaussian(10, 8, 41), B = an_mat_gaussian(10, 2, 42), A = an_mat_gaussian(2, 8, 43);
    an_mat A9 = an_mat_gaussian(2, 9, 44);
    an_amplification am;
    CHECK_INT(an_amplification_lowrank(&W, &B, &A, 1.0, 3, 1, &am), -1);
    CHECK_STR_CONTAINS(an_error(), "r is 3, expected 1..2");
    CHECK_INT(an_amplification_lowrank(&W, &B, &A, 1.0, 0, 1, &am), -1);
    CHECK_INT(an_amplification_lowrank(&W, &B, &A9, 1.0, 1, 1, &am), -1);
    CHECK_STR_CONTAINS(an_error(), "W is 10 x 8 but ΔW is 10 x 9");
    an_mat_free(&W), an_mat_free(&B), an_mat_free(&A), an_mat_free(&A9);
}

static void test_amplification_zero_update_has_zero_factor(void) {
    // LoRA at initialization (B = 0): ‖ΔW‖_F = 0, so the factor is 0, not NaN.
    an_mat W = an_mat_gaussian(12, 10, 51), B = an_mat_alloc(12, 2), A = an_mat_gaussian(2, 10, 52);
    an_amplification am;
    CHECK_INT(an_amplification_lowrank(&W, &B, &A, 2.0, 2, 1, &am), 0);
    CHECK(am.dw_norm == 0.0);
    CHECK(am.factor == 0.0);
    an_mat_free(&W), an_mat_free(&B), an_mat_free(&A);
}


// Table 7 from W's singular values alone (an_svd_top's) is Table 7 from W's full SVD.
static void test_amplification_from_sigma_matches_full_svd_route(void) {
    an_mat W = an_mat_gaussian(60, 40, 11), dW = an_mat_gaussian(60, 40, 12);
    an_svd ws, ds, top;
    double sigma[40];
    CHECK_INT(an_svd_thin(&W, &ws), 0);
    CHECK_INT(an_svd_thin(&dW, &ds), 0);
    CHECK_INT(an_svd_top(&W, 1, &top, sigma), 0);
    for (int r = 1; r <= 8; r += 7) {
        an_amplification a, b;
        CHECK_INT(an_amplification_from_svd(&W, &ws, &ds, r, 3, &a), 0);
        CHECK_INT(an_amplification_from_sigma(&W, sigma, 40, &ds, r, 3, &b), 0);
        CHECK_CLOSE(b.proj_w, a.proj_w, 1e-12, 0.0);
        CHECK_CLOSE(b.factor, a.factor, 1e-14, 0.0);
        CHECK(a.proj_dw == b.proj_dw && a.proj_random == b.proj_random && a.dw_norm == b.dw_norm);
    }
    an_amplification c;
    CHECK_INT(an_amplification_from_sigma(&W, sigma, 39, &ds, 2, 3, &c), -1);
    CHECK_STR_CONTAINS(an_error(), "39 singular values");
    an_mat_free(&W), an_mat_free(&dW), an_svd_free(&ws), an_svd_free(&ds), an_svd_free(&top);
}

static const ls_test tests[] = {
    LS_TEST(test_projection_on_own_directions_is_top_r_energy),
    LS_TEST(test_amplification_factor_of_update_along_weak_direction),
    LS_TEST(test_amplification_lowrank_and_dense_routes_agree),
    LS_TEST(test_amplification_random_baseline_matches_expected_energy),
    LS_TEST(test_amplification_rejects_bad_r_and_shapes),
    LS_TEST(test_amplification_zero_update_has_zero_factor),
    LS_TEST(test_amplification_from_sigma_matches_full_svd_route),
};

int main(int argc, char **argv) { return ls_test_main(argc, argv, tests, LS_COUNT(tests)); }

// Tests for analysis/spectrum (effective rank, energy rank) and
// analysis/intruders (Shuttleworth et al. 2024) on hand-computable cases.
#include <stdint.h>

#include "an_testutil.h"
#include "analysis.h"
#include "harness.h"

// ----------------------------------------------------------------------------
// Spectrum

static void test_effective_rank_of_equal_values_is_their_count(void) {
    // p_i = 1/m for m equal values: entropy log m, erank m. Trailing zeros add nothing.
    double sigma[16];
    for (int m = 1; m <= 12; m++) {
        for (int i = 0; i < 16; i++) sigma[i] = i < m ? 2.5 : 0.0;
        double er;
        CHECK_INT(an_effective_rank(sigma, 16, &er), 0);
        CHECK_NEAR(er, (double)m, 1e-12 * m);
    }
}

static void test_effective_rank_of_hand_example(void) {
    // σ = (2, 1, 1): p = (1/2, 1/4, 1/4), H = ½ ln 2 + ½ ln 4 = 1.5 ln 2, erank = 2^1.5.
    double sigma[3] = { 2.0, 1.0, 1.0 }, er;
    CHECK_INT(an_effective_rank(sigma, 3, &er), 0);
    CHECK_NEAR(er, pow(2.0, 1.5), 1e-14);
    double zero[4] = { 0, 0, 0, 0 };
    CHECK_INT(an_effective_rank(zero, 4, &er), 0);
    CHECK(er == 0.0);
    double neg[2] = { 1.0, -0.5 };
    CHECK_INT(an_effective_rank(neg, 2, &er), -1);
    CHECK_STR_CONTAINS(an_error(), "singular value 1 is -0.5");
}

static void test_energy_rank_of_known_spectrum(void) {
    // σ = (3, 2, 1, 1, 0, 0): energies 9, 4, 1, 1 of 15; cumulative 0.6, 0.867, 0.933, 1.
    double sigma[6] = { 3, 2, 1, 1, 0, 0 };
    struct { double f; int want; } cases[] = { { 0.5, 1 }, { 0.8, 2 }, { 0.9, 3 }, { 0.95, 4 }, { 1.0, 4 } };
    for (int t = 0; t < 5; t++) {
        int m = -1;
        CHECK_INT(an_energy_rank(sigma, 6, cases[t].f, &m), 0);
        CHECK_MSG(m == cases[t].want, "fraction %g: rank %d, expected %d", cases[t].f, m, cases[t].want);
    }
    int m;
    CHECK_INT(an_energy_rank(sigma, 6, 0.0, &m), -1);
    CHECK_INT(an_energy_rank(sigma, 6, 1.5, &m), -1);
    double unsorted[3] = { 1, 2, 0.5 };
    CHECK_INT(an_energy_rank(unsorted, 3, 0.9, &m), -1);
    CHECK_STR_CONTAINS(an_error(), "not sorted");
}

static void test_spectrum_summary_of_constructed_lora_update(void) {
    // ΔW = Qd diag(4, 2, 1) Qk^T through B, A (r = 3): ‖ΔW‖_F = √21,
    // nuclear 7, spectral 4, stable rank 21/16, 90% energy at rank 2 (20/21).
    int d = 20, k = 15;
    double sig[3] = { 4, 2, 1 };
    an_mat Qd = tu_random_orthogonal(d, 1), Qk = tu_random_orthogonal(k, 2);
    an_mat B = an_mat_first_cols(&Qd, 3), At = an_mat_first_cols(&Qk, 3), A = an_mat_transpose(&At);
    for (int i = 0; i < d; i++)
        for (int j = 0; j < 3; j++) AN_AT(&B, i, j) *= sig[j];
    an_svd ds;
    CHECK_INT(an_delta_svd(&B, &A, 1.0, &ds), 0);
    an_spectrum_summary sm;
    CHECK_INT(an_spectrum_summarize(ds.S, ds.nsv, 0.9, &sm), 0);
    CHECK_NEAR(sm.frobenius, sqrt(21.0), 1e-12);
    CHECK_NEAR(sm.nuclear, 7.0, 1e-12);
    CHECK_NEAR(sm.spectral, 4.0, 1e-12);
    CHECK_NEAR(sm.stable_rank, 21.0 / 16.0, 1e-12);
    CHECK_INT(sm.energy_rank, 2);
    double p[3] = { 4.0 / 7, 2.0 / 7, 1.0 / 7 }, h = 0.0;
    for (int i = 0; i < 3; i++) h -= p[i] * log(p[i]);
    CHECK_NEAR(sm.effective_rank, exp(h), 1e-12);
    an_mat_free(&Qd), an_mat_free(&Qk), an_mat_free(&B), an_mat_free(&At), an_mat_free(&A);
    an_svd_free(&ds);
}

// ----------------------------------------------------------------------------
// Intruder dimensions

static void test_intruders_zero_update_has_none(void) {
    // W0 + 0 = W0: each top-k vector matches itself (|cos| = 1).
    an_mat W0 = an_mat_gaussian(20, 16, 11), dW = an_mat_alloc(20, 16);
    an_intruders in;
    CHECK_INT(an_intruder_dimensions(&W0, &dW, AN_INTRUDER_DEFAULT_K, AN_INTRUDER_DEFAULT_EPS, &in), 0);
    CHECK_INT(in.count, 0);
    CHECK_INT(in.k, 10);
    for (int i = 0; i < in.k; i++) {
        CHECK_NEAR(in.items[i].max_cos, 1.0, 1e-12);
        CHECK_INT(in.items[i].best_match, i);
        CHECK(!in.items[i].is_intruder);
    }
    an_intruders_free(&in);
    an_mat_free(&W0), an_mat_free(&dW);
}

// W0 = Qd [diag(10, 9, ..., 1); 0] Qk^T (d = 14 > k = 10): its 10 left
// singular vectors are Qd's first 10 columns, and Qd's column 10 lies outside
// W0's column space. ΔW = 100 · q_10 p_9^T (p_9 = Qk's column 9, W0's σ = 1
// input direction) turns W0's column for σ = 1 into 1·q_9 + 100·q_10: a new
// top direction with σ = √(1 + 100²) whose largest |cos| with W0's vectors is
// 1/√(1 + 100²) (with q_9). The other nine keep W0's vectors exactly.
static void build_one_intruder_case(an_mat *W0, an_mat *B, an_mat *A) {
    int d = 14, k = 10;
    double sig[10];
    for (int i = 0; i < k; i++) sig[i] = 10.0 - i;
    an_mat Qd = tu_random_orthogonal(d, 21), Qk = tu_random_orthogonal(k, 22);
    *W0 = tu_from_svd(&Qd, sig, k, &Qk);
    *B = an_mat_alloc(d, 1);
    *A = an_mat_alloc(1, k);
    for (int i = 0; i < d; i++) AN_AT(B, i, 0) = 100.0 * AN_AT(&Qd, i, 10);
    for (int j = 0; j < k; j++) AN_AT(A, 0, j) = AN_AT(&Qk, j, 9);
    an_mat_free(&Qd), an_mat_free(&Qk);
}

static void test_intruders_orthogonal_spike_is_the_only_intruder(void) {
    an_mat W0, B, A;
    build_one_intruder_case(&W0, &B, &A);
    an_intruders in;
    CHECK_INT(an_intruder_dimensions_lowrank(&W0, &B, &A, 1.0, 10, 0.5, &in), 0);
    CHECK_INT(in.count, 1);
    CHECK(in.items[0].is_intruder);
    CHECK_NEAR(in.items[0].sigma, sqrt(1.0 + 1e4), 1e-10);
    CHECK_NEAR(in.items[0].max_cos, 1.0 / sqrt(1.0 + 1e4), 1e-12);
    CHECK_INT(in.items[0].best_match, 9);
    for (int i = 1; i < 10; i++) {
        CHECK_MSG(!in.items[i].is_intruder, "vector %d flagged (max |cos| %g)", i, in.items[i].max_cos);
        CHECK_NEAR(in.items[i].sigma, 11.0 - i, 1e-10);   // W0's σ = 10, 9, ..., 2
        CHECK_NEAR(in.items[i].max_cos, 1.0, 1e-10);
        CHECK_INT(in.items[i].best_match, i - 1);
    }
    // The same through the dense entry point (full fine-tuning form).
    an_mat dW;
    an_intruders in2;
    CHECK_INT(an_delta_dense(&B, &A, 1.0, &dW), 0);
    CHECK_INT(an_intruder_dimensions(&W0, &dW, 10, 0.5, &in2), 0);
    CHECK_INT(in2.count, 1);
    CHECK_NEAR(in2.items[0].max_cos, in.items[0].max_cos, 1e-14);
    an_intruders_free(&in), an_intruders_free(&in2);
    an_mat_free(&W0), an_mat_free(&B), an_mat_free(&A), an_mat_free(&dW);
}

static void test_intruders_respect_k_and_eps(void) {
    an_mat W0, B, A;
    build_one_intruder_case(&W0, &B, &A);
    an_intruders in;
    // ε below the spike's max |cos| ≈ 0.0099999: no intruder.
    CHECK_INT(an_intruder_dimensions_lowrank(&W0, &B, &A, 1.0, 10, 0.005, &in), 0);
    CHECK_INT(in.count, 0);
    an_intruders_free(&in);
    // k = 1 looks at the spike only; k = 10 on a 14 x 10 matrix is the maximum.
    CHECK_INT(an_intruder_dimensions_lowrank(&W0, &B, &A, 1.0, 1, 0.5, &in), 0);
    CHECK_INT(in.k, 1);
    CHECK_INT(in.count, 1);
    an_intruders_free(&in);
    CHECK_INT(an_intruder_dimensions_lowrank(&W0, &B, &A, 1.0, 11, 0.5, &in), -1);
    CHECK_STR_CONTAINS(an_error(), "k is 11, expected 1..10");
    CHECK_INT(an_intruder_dimensions_lowrank(&W0, &B, &A, 1.0, 5, 0.0, &in), -1);
    CHECK_STR_CONTAINS(an_error(), "eps");
    an_mat_free(&W0), an_mat_free(&B), an_mat_free(&A);
}

static const ls_test tests[] = {
    LS_TEST(test_effective_rank_of_equal_values_is_their_count),
    LS_TEST(test_effective_rank_of_hand_example),
    LS_TEST(test_energy_rank_of_known_spectrum),
    LS_TEST(test_spectrum_summary_of_constructed_lora_update),
    LS_TEST(test_intruders_zero_update_has_none),
    LS_TEST(test_intruders_orthogonal_spike_is_the_only_intruder),
    LS_TEST(test_intruders_respect_k_and_eps),
};

int main(int argc, char **argv) { return ls_test_main(argc, argv, tests, LS_COUNT(tests)); }

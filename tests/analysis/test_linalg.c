// Tests for analysis/linalg, random and lowrank: the SVDs everything else
// stands on, the seeded generator of the random baselines, and the QR route
// to the SVD of ΔW = s·B·A against the dense route.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "an_testutil.h"
#include "analysis.h"
#include "harness.h"

// ----------------------------------------------------------------------------
// Random generator

static void test_rng_matches_reference_xoshiro256starstar(void) {
    // First outputs of splitmix64-seeded xoshiro256**, computed with an
    // independent Python big-integer transcription of Blackman & Vigna's code.
    static const uint64_t want0[4] = { 0x99ec5f36cb75f2b4ULL, 0xbf6e1f784956452aULL,
                                       0x1a5f849d4933e6e0ULL, 0x6aa594f1262d2d2cULL };
    static const uint64_t want42[4] = { 0x15780b2e0c2ec716ULL, 0x6104d9866d113a7eULL,
                                        0xae17533239e499a1ULL, 0xecb8ad4703b360a1ULL };
    an_rng a, b;
    an_rng_seed(&a, 0);
    an_rng_seed(&b, 42);
    for (int i = 0; i < 4; i++) {
        uint64_t x = an_rng_next(&a), y = an_rng_next(&b);
        CHECK_MSG(x == want0[i], "seed 0 output %d: got 0x%016llx, want 0x%016llx",
                  i, (unsigned long long)x, (unsigned long long)want0[i]);
        CHECK_MSG(y == want42[i], "seed 42 output %d: got 0x%016llx, want 0x%016llx",
                  i, (unsigned long long)y, (unsigned long long)want42[i]);
    }
}

static void test_gaussian_matrix_same_seed_same_bits(void) {
    an_mat X = an_mat_gaussian(17, 13, 1234), Y = an_mat_gaussian(17, 13, 1234);
    an_mat Z = an_mat_gaussian(17, 13, 1235);
    size_t bytes = (size_t)17 * 13 * sizeof(double);
    CHECK_MSG(memcmp(X.data, Y.data, bytes) == 0, "same seed gave different matrices");
    int same = 0;
    for (int i = 0; i < 17 * 13; i++) same += X.data[i] == Z.data[i];
    CHECK_MSG(same == 0, "seeds 1234 and 1235 share %d of %d entries", same, 17 * 13);
    an_mat_free(&X);
    an_mat_free(&Y);
    an_mat_free(&Z);
}

static void test_rng_normal_has_standard_moments(void) {
    // N(0,1): mean 0, var 1, E x^4 = 3, Var x^2 = 2, Var x^4 = 105 - 9 = 96.
    // Tolerances are 5 standard errors of each sample moment.
    const int n = 200000;
    an_rng rng;
    an_rng_seed(&rng, 7);
    double s1 = 0, s2 = 0, s4 = 0;
    for (int i = 0; i < n; i++) {
        double x = an_rng_normal(&rng);
        s1 += x;
        s2 += x * x;
        s4 += x * x * x * x;
    }
    CHECK_NEAR(s1 / n, 0.0, 5.0 * sqrt(1.0 / n));
    CHECK_NEAR(s2 / n, 1.0, 5.0 * sqrt(2.0 / n));
    CHECK_NEAR(s4 / n, 3.0, 5.0 * sqrt(96.0 / n));
}

// ----------------------------------------------------------------------------
// QR and SVD

static void test_qr_thin_reconstructs_with_orthonormal_q(void) {
    int shapes[][2] = { { 9, 4 }, { 4, 9 }, { 6, 6 }, { 5, 1 } };
    for (int t = 0; t < 4; t++) {
        int m = shapes[t][0], n = shapes[t][1];
        an_mat X = an_mat_gaussian(m, n, 100 + t), Q, R, QR;
        CHECK_INT(an_qr_thin(&X, &Q, &R), 0);
        int p = m < n ? m : n;
        CHECK_INT(Q.cols, p);
        CHECK_INT(R.rows, p);
        CHECK(an_matmul(&Q, 0, &R, 0, 1.0, &QR) == 0);
        CHECK_NEAR(an_max_abs_diff(&QR, &X), 0.0, 1e-13 * an_frobenius_norm(&X));
        CHECK_NEAR(tu_orthonormality_error(&Q), 0.0, 1e-13);
        for (int i = 0; i < R.rows; i++)
            for (int j = 0; j < i && j < R.cols; j++) CHECK(AN_AT(&R, i, j) == 0.0);
        an_mat_free(&X), an_mat_free(&Q), an_mat_free(&R), an_mat_free(&QR);
    }
}

static void test_svd_thin_reconstructs_sorted_with_sign_convention(void) {
    int shapes[][2] = { { 7, 5 }, { 5, 7 }, { 6, 6 }, { 1, 4 }, { 30, 3 } };
    for (int t = 0; t < 5; t++) {
        int m = shapes[t][0], n = shapes[t][1];
        an_mat X = an_mat_gaussian(m, n, 200 + t);
        an_svd s;
        CHECK_INT(an_svd_thin(&X, &s), 0);
        CHECK_INT(s.nsv, m < n ? m : n);
        CHECK_NEAR(tu_orthonormality_error(&s.U), 0.0, 1e-13);
        CHECK_NEAR(tu_orthonormality_error(&s.V), 0.0, 1e-13);
        an_mat US = an_mat_copy(&s.U), R;
        for (int i = 0; i < US.rows; i++)
            for (int j = 0; j < s.nsv; j++) AN_AT(&US, i, j) *= s.S[j];
        CHECK(an_matmul(&US, 0, &s.V, 1, 1.0, &R) == 0);
        CHECK_NEAR(an_max_abs_diff(&R, &X), 0.0, 1e-13 * an_frobenius_norm(&X));
        for (int j = 0; j < s.nsv; j++) {
            CHECK(s.S[j] >= 0.0);
            if (j > 0) CHECK(s.S[j] <= s.S[j - 1]);
            double big = 0.0, signed_big = 0.0;
            for (int i = 0; i < m; i++)
                if (fabs(AN_AT(&s.U, i, j)) > big) big = fabs(signed_big = AN_AT(&s.U, i, j));
            CHECK_MSG(signed_big > 0.0, "shape %dx%d vector %d: largest entry %g is negative",
                      m, n, j, signed_big);
        }
        an_mat_free(&X), an_mat_free(&US), an_mat_free(&R), an_svd_free(&s);
    }
}

static void test_svd_recovers_constructed_singular_values(void) {
    double sigma[4] = { 5.0, 3.0, 1.0, 0.25 };
    an_mat Qd = tu_random_orthogonal(9, 1), Qk = tu_random_orthogonal(6, 2);
    an_mat X = tu_from_svd(&Qd, sigma, 4, &Qk);
    an_svd s;
    CHECK_INT(an_svd_thin(&X, &s), 0);
    for (int i = 0; i < 4; i++) CHECK_NEAR(s.S[i], sigma[i], 1e-13);
    for (int i = 4; i < s.nsv; i++) CHECK_NEAR(s.S[i], 0.0, 1e-13);
    an_mat V2;  // the top-2 right singular vectors are ±Qk's first two columns
    CHECK_INT(an_right_singular_vectors(&X, 2, &V2), 0);
    for (int j = 0; j < 2; j++) {
        double dot = 0.0;
        for (int i = 0; i < 6; i++) dot += AN_AT(&V2, i, j) * AN_AT(&Qk, i, j);
        CHECK_NEAR(fabs(dot), 1.0, 1e-12);
    }
    CHECK_INT(an_right_singular_vectors(&X, 7, &V2), -1);
    CHECK_STR_CONTAINS(an_error(), "1..6");
    an_mat_free(&Qd), an_mat_free(&Qk), an_mat_free(&X), an_mat_free(&V2), an_svd_free(&s);
}

static void test_svd_rejects_non_finite_entry(void) {
    an_mat X = an_mat_gaussian(3, 3, 5);
    AN_AT(&X, 1, 2) = NAN;
    an_svd s;
    CHECK_INT(an_svd_thin(&X, &s), -1);
    CHECK_STR_CONTAINS(an_error(), "entry (1, 2)");
    an_mat_free(&X);
}

// ----------------------------------------------------------------------------
// SVD of ΔW = s·B·A: QR route vs dense route

// Compares the QR-route SVD of s·B·A with the dense SVD at 1e-10: singular
// values relative to σ_1, per-vector |cos| (distinct σ's here, seeds fixed),
// top-i projectors for every i, and the reconstruction of ΔW.
static void check_delta_routes_agree(int d, int k, int r, double scale, uint64_t seed) {
    an_mat B = an_mat_gaussian(d, r, seed), A = an_mat_gaussian(r, k, seed + 1000), dW, R;
    an_svd lr, dn;
    CHECK_INT(an_delta_svd(&B, &A, scale, &lr), 0);
    CHECK_INT(an_delta_dense(&B, &A, scale, &dW), 0);
    CHECK_INT(an_svd_thin(&dW, &dn), 0);
    int q = d < k ? d : k;
    q = q < r ? q : r;
    CHECK_INT(lr.nsv, q);
    CHECK_INT(lr.rows, d);
    CHECK_INT(lr.cols, k);
    double s1 = dn.S[0];
    for (int i = 0; i < q; i++)
        CHECK_MSG(fabs(lr.S[i] - dn.S[i]) <= 1e-10 * s1,
                  "%dx%d r=%d: σ_%d QR %.17g dense %.17g", d, k, r, i, lr.S[i], dn.S[i]);
    for (int i = q; i < dn.nsv; i++)
        CHECK_MSG(dn.S[i] <= 1e-12 * s1, "%dx%d r=%d: dense σ_%d = %g beyond the rank", d, k, r, i, dn.S[i]);
    CHECK_NEAR(tu_orthonormality_error(&lr.U), 0.0, 1e-12);
    CHECK_NEAR(tu_orthonormality_error(&lr.V), 0.0, 1e-12);
    for (int j = 0; j < q; j++) {
        double du = 0.0, dv = 0.0;
        for (int i = 0; i < d; i++) du += AN_AT(&lr.U, i, j) * AN_AT(&dn.U, i, j);
        for (int i = 0; i < k; i++) dv += AN_AT(&lr.V, i, j) * AN_AT(&dn.V, i, j);
        CHECK_MSG(fabs(fabs(du) - 1.0) <= 1e-10 && fabs(fabs(dv) - 1.0) <= 1e-10,
                  "%dx%d r=%d vector %d: |u.u'| = %.17g, |v.v'| = %.17g", d, k, r, j, du, dv);
    }
    for (int m = 1; m <= q; m++) {
        an_mat P1 = tu_projector(&lr.U, m), P2 = tu_projector(&dn.U, m);
        an_mat Q1 = tu_projector(&lr.V, m), Q2 = tu_projector(&dn.V, m);
        double eu = an_max_abs_diff(&P1, &P2), ev = an_max_abs_diff(&Q1, &Q2);
        CHECK_MSG(eu <= 1e-10 && ev <= 1e-10, "%dx%d r=%d top-%d projectors differ: U %g V %g",
                  d, k, r, m, eu, ev);
        an_mat_free(&P1), an_mat_free(&P2), an_mat_free(&Q1), an_mat_free(&Q2);
    }
    an_mat US = an_mat_copy(&lr.U);
    for (int i = 0; i < d; i++)
        for (int j = 0; j < q; j++) AN_AT(&US, i, j) *= lr.S[j];
    CHECK(an_matmul(&US, 0, &lr.V, 1, 1.0, &R) == 0);
    CHECK_MSG(an_max_abs_diff(&R, &dW) <= 1e-10 * s1, "%dx%d r=%d: U S V^T misses ΔW by %g",
              d, k, r, an_max_abs_diff(&R, &dW));
    CHECK_CLOSE(an_frobenius_from_sigma(lr.S, lr.nsv), an_frobenius_norm(&dW), 1e-12, 0.0);
    an_mat_free(&B), an_mat_free(&A), an_mat_free(&dW), an_mat_free(&R), an_mat_free(&US);
    an_svd_free(&lr), an_svd_free(&dn);
}

static void test_delta_svd_qr_route_matches_dense_svd(void) {
    check_delta_routes_agree(32, 32, 4, 2.0, 11);    // square, the usual LoRA case
    check_delta_routes_agree(48, 20, 1, 0.5, 12);    // r = 1, d > k
    check_delta_routes_agree(20, 48, 5, -1.5, 13);   // d < k, negative scale
    check_delta_routes_agree(16, 24, 16, 1.0, 14);   // r = min(d, k): full rank
    check_delta_routes_agree(10, 12, 15, 1.0, 15);   // r > min(d, k): rank capped at d
    check_delta_routes_agree(64, 40, 8, 16.0 / 8, 16);
}

static void test_delta_svd_repeated_singular_values_agree_on_projectors(void) {
    // ΔW = Qd diag(3, 3, 1) Qk^T given through non-orthogonal factors. The top
    // singular value is double: single vectors are not defined, the top-2
    // subspace is (span of Qd's first two columns), and so is the top-3 one.
    int d = 14, k = 11;
    double sigma[3] = { 6.0, 6.0, 2.0 }, s = 0.5;  // s·σ = (3, 3, 1)
    an_mat Qd = tu_random_orthogonal(d, 21), Qk = tu_random_orthogonal(k, 22);
    an_mat Rot = tu_random_orthogonal(3, 23);
    an_mat B0 = an_mat_first_cols(&Qd, 3), A0t = an_mat_first_cols(&Qk, 3), B, A;
    for (int i = 0; i < d; i++)
        for (int j = 0; j < 3; j++) AN_AT(&B0, i, j) *= sigma[j];
    CHECK(an_matmul(&B0, 0, &Rot, 0, 1.0, &B) == 0);     // B = Qd3 diag(σ) R
    CHECK(an_matmul(&Rot, 1, &A0t, 1, 1.0, &A) == 0);    // A = R^T Qk3^T
    an_svd lr, dn;
    an_mat dW;
    CHECK_INT(an_delta_svd(&B, &A, s, &lr), 0);
    CHECK_INT(an_delta_dense(&B, &A, s, &dW), 0);
    CHECK_INT(an_svd_thin(&dW, &dn), 0);
    CHECK_NEAR(lr.S[0], 3.0, 1e-12);
    CHECK_NEAR(lr.S[1], 3.0, 1e-12);
    CHECK_NEAR(lr.S[2], 1.0, 1e-12);
    for (int m = 2; m <= 3; m++) {
        an_mat P1 = tu_projector(&lr.U, m), P2 = tu_projector(&dn.U, m), Pt = tu_projector(&Qd, m);
        an_mat Q1 = tu_projector(&lr.V, m), Q2 = tu_projector(&dn.V, m), Qt = tu_projector(&Qk, m);
        CHECK_NEAR(an_max_abs_diff(&P1, &P2), 0.0, 1e-10);
        CHECK_NEAR(an_max_abs_diff(&P1, &Pt), 0.0, 1e-10);
        CHECK_NEAR(an_max_abs_diff(&Q1, &Q2), 0.0, 1e-10);
        CHECK_NEAR(an_max_abs_diff(&Q1, &Qt), 0.0, 1e-10);
        an_mat_free(&P1), an_mat_free(&P2), an_mat_free(&Pt);
        an_mat_free(&Q1), an_mat_free(&Q2), an_mat_free(&Qt);
    }
    an_mat_free(&Qd), an_mat_free(&Qk), an_mat_free(&Rot), an_mat_free(&B0), an_mat_free(&A0t);
    an_mat_free(&B), an_mat_free(&A), an_mat_free(&dW), an_svd_free(&lr), an_svd_free(&dn);
}

static void test_delta_svd_rejects_mismatched_lora_rank(void) {
    an_mat B = an_mat_gaussian(5, 3, 1), A = an_mat_gaussian(4, 6, 2), dW;
    an_svd s;
    CHECK_INT(an_delta_svd(&B, &A, 1.0, &s), -1);
    CHECK_STR_CONTAINS(an_error(), "LoRA rank");
    CHECK_INT(an_delta_dense(&B, &A, 1.0, &dW), -1);
    CHECK_INT(an_delta_svd(&B, &B, NAN, &s), -1);
    an_mat_free(&B), an_mat_free(&A);
}

static void test_delta_svd_of_zero_update_is_zero(void) {
    // LoRA at initialization: B = 0, so ΔW = 0 and every σ is 0.
    an_mat B = an_mat_alloc(12, 4), A = an_mat_gaussian(4, 9, 3);
    an_svd s;
    CHECK_INT(an_delta_svd(&B, &A, 2.0, &s), 0);
    for (int i = 0; i < s.nsv; i++) CHECK(s.S[i] == 0.0);
    CHECK(an_frobenius_from_sigma(s.S, s.nsv) == 0.0);
    an_mat_free(&B), an_mat_free(&A), an_svd_free(&s);
}


// A W like a pretrained one: a Gaussian bulk plus a decaying low-rank part.
static an_mat weight_like(int d, int k, uint64_t seed) {
    an_mat W = an_mat_gaussian(d, k, seed), L = an_mat_gaussian(d, 24, seed + 1), R = an_mat_gaussian(k, 24, seed + 2);
    for (int a = 0; a < 24; a++)
        for (int i = 0; i < d; i++) AN_AT(&L, i, a) *= 4.0 * exp(-a / 6.0) / sqrt((double)k);
    an_mat LR;
    if (an_matmul(&L, 0, &R, 1, 1.0, &LR) != 0) abort();
    for (size_t i = 0; i < (size_t)d * k; i++) W.data[i] = 0.05 * W.data[i] + LR.data[i];
    an_mat_free(&L), an_mat_free(&R), an_mat_free(&LR);
    return W;
}

// Largest distance between matching columns of X and Y, each up to sign.
static double column_distance_up_to_sign(const an_mat *X, const an_mat *Y, int cols) {
    double worst = 0.0;
    for (int c = 0; c < cols; c++) {
        double dot = 0.0, dd = 0.0;
        for (int i = 0; i < X->rows; i++) dot += AN_AT(X, i, c) * AN_AT(Y, i, c);
        for (int i = 0; i < X->rows; i++) {
            double x = AN_AT(X, i, c) - (dot < 0 ? -1.0 : 1.0) * AN_AT(Y, i, c);
            dd += x * x;
        }
        worst = fmax(worst, sqrt(dd));
    }
    return worst;
}

static void check_top_matches_dense(const an_mat *X, int k) {
    an_svd full, top;
    int p = X->rows < X->cols ? X->rows : X->cols;
    double *all = malloc(sizeof(double) * p);
    CHECK_INT(an_svd_thin(X, &full), 0);
    CHECK_INT(an_svd_top(X, k, &top, all), 0);
    CHECK_INT(top.nsv, k);
    CHECK_INT(top.U.rows, X->rows);
    CHECK_INT(top.V.rows, X->cols);
    for (int i = 0; i < k; i++) CHECK_NEAR(top.S[i] / full.S[0], full.S[i] / full.S[0], 1e-12);
    for (int i = 0; i < p; i++) CHECK_NEAR(all[i] / full.S[0], full.S[i] / full.S[0], 1e-10);
    CHECK_MSG(column_distance_up_to_sign(&top.U, &full.U, k) < 1e-10, "U: %g", column_distance_up_to_sign(&top.U, &full.U, k));
    CHECK_MSG(column_distance_up_to_sign(&top.V, &full.V, k) < 1e-10, "V: %g", column_distance_up_to_sign(&top.V, &full.V, k));
    printf("  %d x %d, k = %d: top directions within %.1e (U), %.1e (V) of the dense SVD's\n", X->rows, X->cols, k,
           column_distance_up_to_sign(&top.U, &full.U, k), column_distance_up_to_sign(&top.V, &full.V, k));
    an_svd_free(&full), an_svd_free(&top), free(all);
}

static void test_svd_top_matches_dense_svd_on_the_directions_used(void) {
    an_mat W = weight_like(768, 768, 5), T = weight_like(300, 180, 6), Wd = weight_like(180, 300, 7);
    check_top_matches_dense(&W, 64);
    check_top_matches_dense(&W, 8);
    check_top_matches_dense(&T, 40);
    check_top_matches_dense(&Wd, 40);
    // Rank 3: k = 5 reaches the numerical rank and falls back to the dense SVD.
    double sigma[3] = {4.0, 2.0, 1.0};
    an_mat Qd = tu_random_orthogonal(20, 8), Qk = tu_random_orthogonal(12, 9);
    an_mat X = tu_from_svd(&Qd, sigma, 3, &Qk);
    check_top_matches_dense(&X, 5);
    an_svd top;
    CHECK_INT(an_svd_top(&X, 13, &top, NULL), -1);
    CHECK_STR_CONTAINS(an_error(), "1..12");
    an_mat_free(&W), an_mat_free(&T), an_mat_free(&Wd), an_mat_free(&Qd), an_mat_free(&Qk), an_mat_free(&X);
}

static const ls_test tests[] = {
    LS_TEST(test_rng_matches_reference_xoshiro256starstar),
    LS_TEST(test_gaussian_matrix_same_seed_same_bits),
    LS_TEST(test_rng_normal_has_standard_moments),
    LS_TEST(test_qr_thin_reconstructs_with_orthonormal_q),
    LS_TEST(test_svd_thin_reconstructs_sorted_with_sign_convention),
    LS_TEST(test_svd_recovers_constructed_singular_values),
    LS_TEST(test_svd_rejects_non_finite_entry),
    LS_TEST(test_delta_svd_qr_route_matches_dense_svd),
    LS_TEST(test_delta_svd_repeated_singular_values_agree_on_projectors),
    LS_TEST(test_delta_svd_rejects_mismatched_lora_rank),
    LS_TEST(test_delta_svd_of_zero_update_is_zero),
    LS_TEST(test_svd_top_matches_dense_svd_on_the_directions_used),
};

int main(int argc, char **argv) { return ls_test_main(argc, argv, tests, LS_COUNT(tests)); }

// Tests for analysis/subspace: φ of Eq. 4 (Sec. 7.2), its grids, the random
// baseline E[φ] = max(i, j)/n, and the W vs ΔW grid of Fig. 8.
#include <stdint.h>

#include "an_testutil.h"
#include "analysis.h"
#include "harness.h"

#define G(grid, jmax, i, j) ((grid)[(size_t)((i) - 1) * (jmax) + ((j) - 1)])

// An r x k matrix with known distinct singular values (so that each singular
// vector is defined up to sign) and random singular bases.
static an_mat matrix_with_spectrum(int rows, int cols, uint64_t seed) {
    int p = rows < cols ? rows : cols;
    double *sigma = malloc((size_t)p * sizeof(double));
    for (int i = 0; i < p; i++) sigma[i] = 4.0 - 3.0 * i / p;
    an_mat Qd = tu_random_orthogonal(rows, seed), Qk = tu_random_orthogonal(cols, seed + 1);
    an_mat X = tu_from_svd(&Qd, sigma, p, &Qk);
    free(sigma);
    an_mat_free(&Qd), an_mat_free(&Qk);
    return X;
}

// ----------------------------------------------------------------------------
// φ on constructed subspaces

static void test_phi_same_row_space_is_one_where_a_full_space_enters(void) {
    // A (r x k) and M·A (M invertible) share their whole row space, so the
    // top-r right singular vectors of each span it: for every i, j <= r,
    // φ(i, r) = i / min(i, r) = 1 and φ(r, j) = 1. For i, j < r the top
    // directions differ (M reweights them) and φ need not be 1.
    int r = 6, k = 40;
    an_mat A = an_mat_gaussian(r, k, 1), MA;
    // M = Q1 diag(1..2) Q2: condition number 2.
    an_mat Q1 = tu_random_orthogonal(r, 2), Q2 = tu_random_orthogonal(r, 3);
    double sig[6] = { 2.0, 1.8, 1.6, 1.4, 1.2, 1.0 };
    an_mat M = tu_from_svd(&Q1, sig, r, &Q2);
    CHECK(an_matmul(&M, 0, &A, 0, 1.0, &MA) == 0);
    double grid[36];
    CHECK_INT(an_subspace_similarity_grid(&A, &MA, AN_SIDE_RIGHT, r, r, grid), 0);
    for (int i = 1; i <= r; i++) {
        CHECK_NEAR(G(grid, r, i, r), 1.0, 1e-10);
        CHECK_NEAR(G(grid, r, r, i), 1.0, 1e-10);
    }
    an_mat_free(&A), an_mat_free(&MA), an_mat_free(&Q1), an_mat_free(&Q2), an_mat_free(&M);
}

static void test_phi_identical_subspaces_is_one_everywhere(void) {
    // Q·A with Q orthogonal (times 3) has A's right singular vectors exactly
    // (distinct σ's): φ(i, j) = min(i, j)/min(i, j) = 1 over the whole grid.
    int r = 8, k = 30;
    an_mat A = matrix_with_spectrum(r, k, 10), Q = tu_random_orthogonal(r, 12), QA;
    CHECK(an_matmul(&Q, 0, &A, 0, 3.0, &QA) == 0);
    double grid[64];
    CHECK_INT(an_subspace_similarity_grid(&A, &QA, AN_SIDE_RIGHT, r, r, grid), 0);
    for (int i = 1; i <= r; i++)
        for (int j = 1; j <= r; j++)
            CHECK_MSG(fabs(G(grid, r, i, j) - 1.0) <= 1e-10, "φ(%d, %d) = %.17g", i, j,
                      G(grid, r, i, j));
    an_mat_free(&A), an_mat_free(&Q), an_mat_free(&QA);
}

static void test_phi_orthogonal_row_spaces_is_zero(void) {
    // A1 = G1 [I 0 0] Q and A2 = G2 [0 I 0] Q: row spaces spanned by disjoint
    // columns of an orthogonal Q, hence orthogonal.
    int r1 = 4, r2 = 6, k = 25;
    an_mat Q = tu_random_orthogonal(k, 31);
    an_mat G1 = an_mat_gaussian(r1, r1, 32), G2 = an_mat_gaussian(r2, r2, 33);
    an_mat E1 = an_mat_alloc(r1, k), E2 = an_mat_alloc(r2, k), T1, T2, A1, A2;
    for (int i = 0; i < r1; i++) AN_AT(&E1, i, i) = 1.0;
    for (int i = 0; i < r2; i++) AN_AT(&E2, i, r1 + i) = 1.0;
    CHECK(an_matmul(&G1, 0, &E1, 0, 1.0, &T1) == 0 && an_matmul(&T1, 0, &Q, 1, 1.0, &A1) == 0);
    CHECK(an_matmul(&G2, 0, &E2, 0, 1.0, &T2) == 0 && an_matmul(&T2, 0, &Q, 1, 1.0, &A2) == 0);
    double grid[24];
    CHECK_INT(an_subspace_similarity_grid(&A1, &A2, AN_SIDE_RIGHT, r1, r2, grid), 0);
    for (int i = 1; i <= r1; i++)
        for (int j = 1; j <= r2; j++) CHECK_NEAR(G(grid, r2, i, j), 0.0, 1e-12);
    an_mat_free(&Q), an_mat_free(&G1), an_mat_free(&G2), an_mat_free(&E1), an_mat_free(&E2);
    an_mat_free(&T1), an_mat_free(&T2), an_mat_free(&A1), an_mat_free(&A2);
}

static void test_phi_grid_matches_direct_definition(void) {
    // The prefix-sum grid against Eq. 4 evaluated term by term:
    // ‖U1^i^T U2^j‖²_F / min(i, j) from explicit products.
    int k = 50, r1 = 8, r2 = 16;
    an_mat A1 = an_mat_gaussian(r1, k, 41), A2 = an_mat_gaussian(r2, k, 42);
    double grid[8 * 16];
    CHECK_INT(an_subspace_similarity_grid(&A1, &A2, AN_SIDE_RIGHT, r1, r2, grid), 0);
    int probes[][2] = { { 1, 1 }, { 1, 16 }, { 8, 1 }, { 3, 7 }, { 8, 16 }, { 5, 5 } };
    for (int t = 0; t < 6; t++) {
        int i = probes[t][0], j = probes[t][1];
        an_mat U1, U2, M;
        CHECK_INT(an_right_singular_vectors(&A1, i, &U1), 0);
        CHECK_INT(an_right_singular_vectors(&A2, j, &U2), 0);
        CHECK(an_matmul(&U1, 1, &U2, 0, 1.0, &M) == 0);
        double f = an_frobenius_norm(&M);
        double want = f * f / (i < j ? i : j);
        CHECK_MSG(fabs(G(grid, r2, i, j) - want) <= 1e-12, "φ(%d, %d): grid %.17g, direct %.17g",
                  i, j, G(grid, r2, i, j), want);
        double one;
        CHECK_INT(an_phi(&U1, &U2, i, j, &one), 0);
        CHECK_NEAR(one, want, 1e-12);
        an_mat_free(&U1), an_mat_free(&U2), an_mat_free(&M);
    }
    an_mat_free(&A1), an_mat_free(&A2);
}

static void test_phi_in_unit_interval_and_symmetric(void) {
    int k = 64, r1 = 8, r2 = 32;
    an_mat A1 = an_mat_gaussian(r1, k, 51), A2 = an_mat_gaussian(r2, k, 52);
    double g12[8 * 32], g21[32 * 8];
    CHECK_INT(an_subspace_similarity_grid(&A1, &A2, AN_SIDE_RIGHT, r1, r2, g12), 0);
    CHECK_INT(an_subspace_similarity_grid(&A2, &A1, AN_SIDE_RIGHT, r2, r1, g21), 0);
    for (int i = 1; i <= r1; i++)
        for (int j = 1; j <= r2; j++) {
            double a = G(g12, r2, i, j), b = G(g21, r1, j, i);
            CHECK_MSG(a >= 0.0 && a <= 1.0, "φ(%d, %d) = %.17g outside [0, 1]", i, j, a);
            CHECK_MSG(fabs(a - b) <= 1e-14, "φ(A1, A2, %d, %d) = %.17g but φ(A2, A1, %d, %d) = %.17g",
                      i, j, a, j, i, b);
        }
    an_mat_free(&A1), an_mat_free(&A2);
}

static void test_phi_of_b_matrices_uses_left_singular_vectors(void) {
    // B (d x r) and B·M (M invertible) share their column space (the B side of Fig. 3),
    // so φ(r, r) = 1 on the left side; a random B2 does not come near 1; and
    // the right side of two B's with different ranks is refused (their row
    // spaces live in R^5 and R^3).
    int d = 40, r = 5;
    an_mat B = an_mat_gaussian(d, r, 61), M = an_mat_gaussian(r, r, 62), BM;
    CHECK(an_matmul(&B, 0, &M, 0, 1.0, &BM) == 0);
    double grid[25];
    CHECK_INT(an_subspace_similarity_grid(&B, &BM, AN_SIDE_LEFT, r, r, grid), 0);
    CHECK_NEAR(G(grid, r, r, r), 1.0, 1e-10);
    an_mat B2 = an_mat_gaussian(d, 3, 63);
    CHECK_INT(an_subspace_similarity_grid(&B, &B2, AN_SIDE_LEFT, r, 3, grid), 0);
    CHECK(G(grid, 3, r, 3) < 0.9);  // random 5- and 3-dim subspaces of R^40: E φ = 5/40
    CHECK_INT(an_subspace_similarity_grid(&B, &B2, AN_SIDE_RIGHT, r, 3, grid), -1);
    CHECK_STR_CONTAINS(an_error(), "column count");
    an_mat_free(&B), an_mat_free(&M), an_mat_free(&BM), an_mat_free(&B2);
}

static void test_phi_rejects_out_of_range_grid(void) {
    an_mat A1 = an_mat_gaussian(4, 20, 71), A2 = an_mat_gaussian(6, 20, 72), A3 = an_mat_gaussian(4, 21, 73);
    double grid[64];
    CHECK_INT(an_subspace_similarity_grid(&A1, &A2, AN_SIDE_RIGHT, 5, 6, grid), -1);
    CHECK_STR_CONTAINS(an_error(), "imax is 5");
    CHECK_INT(an_subspace_similarity_grid(&A1, &A2, AN_SIDE_RIGHT, 4, 0, grid), -1);
    CHECK_STR_CONTAINS(an_error(), "jmax is 0");
    CHECK_INT(an_subspace_similarity_grid(&A1, &A3, AN_SIDE_RIGHT, 4, 4, grid), -1);
    an_mat_free(&A1), an_mat_free(&A2), an_mat_free(&A3);
}

// ----------------------------------------------------------------------------
// Random baseline

// Averages the random grid over `n` seeds and checks each cell against
// max(i, j)/dim. For random subspaces E‖U1^T U2‖² = i j / dim exactly, so the
// tolerance is statistical only: 5 standard errors of the cell's sample mean
// (estimated from the samples), a false alarm of ~1e-6 per cell.
static void check_random_baseline_mean(int rows1, int cols1, int rows2, int cols2, an_side side,
                                       int imax, int jmax, int n, uint64_t seed0) {
    int dim = side == AN_SIDE_LEFT ? rows1 : cols1;
    size_t cells = (size_t)imax * jmax;
    double *sum = calloc(cells, sizeof(double)), *sq = calloc(cells, sizeof(double));
    double *grid = malloc(cells * sizeof(double));
    for (int s = 0; s < n; s++) {
        CHECK_INT(an_subspace_similarity_random_grid(rows1, cols1, rows2, cols2, side,
                                                     seed0 + s, imax, jmax, grid), 0);
        for (size_t c = 0; c < cells; c++) {
            sum[c] += grid[c];
            sq[c] += grid[c] * grid[c];
        }
    }
    for (int i = 1; i <= imax; i++)
        for (int j = 1; j <= jmax; j++) {
            size_t c = (size_t)(i - 1) * jmax + (j - 1);
            double mean = sum[c] / n, var = sq[c] / n - mean * mean;
            double se = sqrt(fmax(var, 0.0) / (n - 1));
            double want = (double)(i > j ? i : j) / dim;
            CHECK_MSG(fabs(mean - want) <= 5.0 * se + 1e-12,
                      "cell (%d, %d): mean φ %.5f over %d seeds, expected max(i,j)/%d = %.5f, "
                      "5 s.e. = %.5f", i, j, mean, n, dim, want, 5.0 * se);
        }
    free(sum), free(sq), free(grid);
}

static void test_random_baseline_mean_is_max_ij_over_k(void) {
    check_random_baseline_mean(8, 64, 8, 64, AN_SIDE_RIGHT, 8, 8, 400, 1000);   // A matrices
    check_random_baseline_mean(48, 4, 48, 6, AN_SIDE_LEFT, 4, 6, 400, 5000);    // B matrices
}

static void test_random_baseline_same_seed_same_bits(void) {
    double g1[6 * 6], g2[6 * 6], g3[6 * 6];
    CHECK_INT(an_subspace_similarity_random_grid(6, 30, 8, 30, AN_SIDE_RIGHT, 99, 6, 6, g1), 0);
    CHECK_INT(an_subspace_similarity_random_grid(6, 30, 8, 30, AN_SIDE_RIGHT, 99, 6, 6, g2), 0);
    CHECK_INT(an_subspace_similarity_random_grid(6, 30, 8, 30, AN_SIDE_RIGHT, 100, 6, 6, g3), 0);
    CHECK_MSG(memcmp(g1, g2, sizeof g1) == 0, "seed 99 twice gave different grids");
    int same = 0;
    for (int c = 0; c < 36; c++) same += g1[c] == g3[c];
    CHECK_MSG(same == 0, "seeds 99 and 100 agree on %d of 36 cells", same);
}

// ----------------------------------------------------------------------------
// W vs ΔW (Fig. 8)

static void test_w_vs_dw_aligned_with_top_directions_is_one(void) {
    // ΔW = Qd[:, :2] diag(2, 1) Qk[:, :2]^T lies in W's top-2 singular
    // subspaces, with its own top-1 direction = W's top-1: φ(i, j) = 1 for
    // every i and j <= 2.
    int d = 12, k = 9;
    double sw[9] = { 10, 8, 6, 4, 2, 1, 0.5, 0.25, 0.125 };
    an_mat Qd = tu_random_orthogonal(d, 81), Qk = tu_random_orthogonal(k, 82);
    an_mat W = tu_from_svd(&Qd, sw, 9, &Qk);
    an_mat B = an_mat_first_cols(&Qd, 2), At = an_mat_first_cols(&Qk, 2), A = an_mat_transpose(&At);
    for (int i = 0; i < d; i++) AN_AT(&B, i, 0) *= 2.0;
    an_svd ws, ds;
    CHECK_INT(an_svd_thin(&W, &ws), 0);
    CHECK_INT(an_delta_svd(&B, &A, 1.0, &ds), 0);
    double grid[9 * 2];
    for (int side = 0; side < 2; side++) {
        CHECK_INT(an_w_vs_dw_grid(&ws, &ds, (an_side)side, 9, 2, grid), 0);
        for (int i = 1; i <= 9; i++)
            for (int j = 1; j <= 2; j++)
                CHECK_MSG(fabs(G(grid, 2, i, j) - 1.0) <= 1e-10, "side %d φ(%d, %d) = %.17g",
                          side, i, j, G(grid, 2, i, j));
    }
    CHECK_INT(an_w_vs_dw_grid(&ws, &ds, AN_SIDE_LEFT, 9, 3, grid), -1);  // ΔW has 2 directions
    CHECK_STR_CONTAINS(an_error(), "jmax is 3");
    an_mat_free(&Qd), an_mat_free(&Qk), an_mat_free(&W), an_mat_free(&B), an_mat_free(&At);
    an_mat_free(&A), an_svd_free(&ws), an_svd_free(&ds);
}

static void test_w_vs_dw_along_weakest_direction_is_zero_until_last(void) {
    // ΔW = 5 u_n v_n^T along W's smallest singular direction (square W, n = 10):
    // orthogonal to W's top-i directions for i < n, contained at i = n.
    int n = 10;
    double sw[10] = { 10, 9, 8, 7, 6, 5, 4, 3, 2, 1 };
    an_mat Qd = tu_random_orthogonal(n, 91), Qk = tu_random_orthogonal(n, 92);
    an_mat W = tu_from_svd(&Qd, sw, n, &Qk);
    an_mat B = an_mat_alloc(n, 1), A = an_mat_alloc(1, n);
    for (int i = 0; i < n; i++) {
        AN_AT(&B, i, 0) = AN_AT(&Qd, i, n - 1);
        AN_AT(&A, 0, i) = AN_AT(&Qk, i, n - 1);
    }
    an_svd ws, ds;
    CHECK_INT(an_svd_thin(&W, &ws), 0);
    CHECK_INT(an_delta_svd(&B, &A, 5.0, &ds), 0);
    double grid[10];
    for (int side = 0; side < 2; side++) {
        CHECK_INT(an_w_vs_dw_grid(&ws, &ds, (an_side)side, n, 1, grid), 0);
        for (int i = 1; i < n; i++) CHECK_NEAR(grid[i - 1], 0.0, 1e-12);
        CHECK_NEAR(grid[n - 1], 1.0, 1e-12);
    }
    an_mat_free(&Qd), an_mat_free(&Qk), an_mat_free(&W), an_mat_free(&B), an_mat_free(&A);
    an_svd_free(&ws), an_svd_free(&ds);
}

static void test_w_vs_random_baseline_mean_is_max_ij_over_d(void) {
    // Left singular subspaces of a Gaussian d x k matrix are uniformly random,
    // so against any fixed W, E φ(i, j) = max(i, j)/d. Tolerance as above.
    int d = 40, k = 30, imax = 5, jmax = 5, n = 300;
    an_mat W = an_mat_gaussian(d, k, 7);
    an_svd ws;
    CHECK_INT(an_svd_thin(&W, &ws), 0);
    double sum[25] = { 0 }, sq[25] = { 0 }, grid[25], first[25];
    for (int s = 0; s < n; s++) {
        CHECK_INT(an_w_vs_random_grid(&ws, AN_SIDE_LEFT, 3000 + s, imax, jmax, grid), 0);
        if (s == 0) memcpy(first, grid, sizeof grid);
        for (int c = 0; c < 25; c++) sum[c] += grid[c], sq[c] += grid[c] * grid[c];
    }
    for (int i = 1; i <= imax; i++)
        for (int j = 1; j <= jmax; j++) {
            int c = (i - 1) * jmax + (j - 1);
            double mean = sum[c] / n, se = sqrt(fmax(sq[c] / n - mean * mean, 0.0) / (n - 1));
            double want = (double)(i > j ? i : j) / d;
            CHECK_MSG(fabs(mean - want) <= 5.0 * se, "cell (%d, %d): mean %.5f, expected %.5f, 5 s.e. %.5f",
                      i, j, mean, want, 5.0 * se);
        }
    CHECK_INT(an_w_vs_random_grid(&ws, AN_SIDE_LEFT, 3000, imax, jmax, grid), 0);
    CHECK_MSG(memcmp(grid, first, sizeof grid) == 0, "seed 3000 twice gave different grids");
    an_mat_free(&W), an_svd_free(&ws);
}

static const ls_test tests[] = {
    LS_TEST(test_phi_same_row_space_is_one_where_a_full_space_enters),
    LS_TEST(test_phi_identical_subspaces_is_one_everywhere),
    LS_TEST(test_phi_orthogonal_row_spaces_is_zero),
    LS_TEST(test_phi_grid_matches_direct_definition),
    LS_TEST(test_phi_in_unit_interval_and_symmetric),
    LS_TEST(test_phi_of_b_matrices_uses_left_singular_vectors),
    LS_TEST(test_phi_rejects_out_of_range_grid),
    LS_TEST(test_random_baseline_mean_is_max_ij_over_k),
    LS_TEST(test_random_baseline_same_seed_same_bits),
    LS_TEST(test_w_vs_dw_aligned_with_top_directions_is_one),
    LS_TEST(test_w_vs_dw_along_weakest_direction_is_zero_until_last),
    LS_TEST(test_w_vs_random_baseline_mean_is_max_ij_over_d),
};

int main(int argc, char **argv) { return ls_test_main(argc, argv, tests, LS_COUNT(tests)); }

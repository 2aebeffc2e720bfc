#include "subspace.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "chance.h"
#include "random.h"

static const char *side_name(an_side side) { return side == AN_SIDE_LEFT ? "left" : "right"; }

// ----------------------------------------------------------------------------
// φ from orthonormal bases (Eq. 4)

// M (imax x jmax, M_ab = u_a · v_b) -> grid (imax x jmax)
void an_phi_grid_from_product(const double *M, int imax, int jmax, double *grid) {
    // P(i, j) = Σ_{a<i, b<j} M_ab², built row by row: P(i,j) = P(i-1,j) + rowsum_i(j).
    double *prev = an_calloc((size_t)jmax, sizeof(double));
    for (int i = 0; i < imax; i++) {
        double row = 0.0;
        for (int j = 0; j < jmax; j++) {
            double m = M[(size_t)i * jmax + j];
            row += m * m;
            prev[j] += row;
            int mn = i < j ? i + 1 : j + 1;
            double phi = prev[j] / (double)mn;
            // Rounding can push a containment case a hair above 1; a larger
            // excess means a non-orthonormal basis and is left visible.
            if (phi > 1.0 && phi < 1.0 + 1e-9) phi = 1.0;
            grid[(size_t)i * jmax + j] = phi;
        }
    }
    free(prev);
}

// U1 (n x p1), U2 (n x p2) -> grid (imax x jmax)
int an_phi_grid(const an_mat *U1, const an_mat *U2, int imax, int jmax, double *grid) {
    if (U1->rows != U2->rows)
        return an_fail("an_phi_grid: the bases live in different spaces: U1 is %d x %d, "
                       "U2 is %d x %d (rows must match)", U1->rows, U1->cols, U2->rows, U2->cols);
    if (imax < 1 || imax > U1->cols)
        return an_fail("an_phi_grid: imax is %d, expected 1..%d (U1's columns)", imax, U1->cols);
    if (jmax < 1 || jmax > U2->cols)
        return an_fail("an_phi_grid: jmax is %d, expected 1..%d (U2's columns)", jmax, U2->cols);
    int n = U1->rows;
    // M = U1[:, :imax]^T U2[:, :jmax]; row-major leading dimensions stay the full widths.
    double *M = an_malloc((size_t)imax * (size_t)jmax * sizeof(double));
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, imax, jmax, n, 1.0,
                U1->data, U1->cols, U2->data, U2->cols, 0.0, M, jmax);
    an_phi_grid_from_product(M, imax, jmax, grid);
    free(M);
    return 0;
}

int an_phi(const an_mat *U1, const an_mat *U2, int i, int j, double *phi) {
    if (i < 1 || j < 1) return an_fail("an_phi: i = %d, j = %d, expected both >= 1", i, j);
    double *grid = an_malloc((size_t)i * (size_t)j * sizeof(double));
    int rc = an_phi_grid(U1, U2, i, j, grid);
    if (rc == 0) *phi = grid[(size_t)i * j - 1];
    free(grid);
    return rc;
}

// ----------------------------------------------------------------------------
// φ between A matrices (right) or B matrices (left)

static int grid_from_matrices(const an_mat *X1, const an_mat *X2, an_side side,
                              int imax, int jmax, double *grid, const char *who) {
    int shared1 = side == AN_SIDE_LEFT ? X1->rows : X1->cols;
    int shared2 = side == AN_SIDE_LEFT ? X2->rows : X2->cols;
    if (shared1 != shared2)
        return an_fail("%s: %s singular vectors need the same %s: X1 is %d x %d, X2 is %d x %d",
                       who, side_name(side), side == AN_SIDE_LEFT ? "row count" : "column count",
                       X1->rows, X1->cols, X2->rows, X2->cols);
    an_svd s1 = {0}, s2 = {0};
    int rc = -1;
    if (an_svd_thin(X1, &s1) != 0 || an_svd_thin(X2, &s2) != 0) goto done;
    if (imax < 1 || imax > s1.nsv) {
        an_fail("%s: imax is %d, expected 1..%d (min of X1's shape %d x %d)",
                who, imax, s1.nsv, X1->rows, X1->cols);
        goto done;
    }
    if (jmax < 1 || jmax > s2.nsv) {
        an_fail("%s: jmax is %d, expected 1..%d (min of X2's shape %d x %d)",
                who, jmax, s2.nsv, X2->rows, X2->cols);
        goto done;
    }
    const an_mat *U1 = side == AN_SIDE_LEFT ? &s1.U : &s1.V;
    const an_mat *U2 = side == AN_SIDE_LEFT ? &s2.U : &s2.V;
    rc = an_phi_grid(U1, U2, imax, jmax, grid);
done:
    an_svd_free(&s1);
    an_svd_free(&s2);
    return rc;
}

int an_subspace_similarity_grid(const an_mat *X1, const an_mat *X2, an_side side,
                                int imax, int jmax, double *grid) {
    return grid_from_matrices(X1, X2, side, imax, jmax, grid, "an_subspace_similarity_grid");
}

int an_subspace_similarity_random_grid(int rows1, int cols1, int rows2, int cols2,
                                       an_side side, uint64_t seed,
                                       int imax, int jmax, double *grid) {
    if (rows1 < 1 || cols1 < 1 || rows2 < 1 || cols2 < 1)
        return an_fail("an_subspace_similarity_random_grid: shapes %d x %d and %d x %d, "
                       "expected positive sizes", rows1, cols1, rows2, cols2);
    int n1 = side == AN_SIDE_LEFT ? rows1 : cols1, n2 = side == AN_SIDE_LEFT ? rows2 : cols2;
    int p1 = rows1 < cols1 ? rows1 : cols1, p2 = rows2 < cols2 ? rows2 : cols2;
    if (n1 != n2)
        return an_fail("an_subspace_similarity_random_grid: %s singular vectors need the same %s: %d x %d and %d x %d",
                       side_name(side), side == AN_SIDE_LEFT ? "row count" : "column count", rows1, cols1, rows2,
                       cols2);
    if (imax < 1 || imax > p1 || jmax < 1 || jmax > p2)
        return an_fail("an_subspace_similarity_random_grid: grid %d x %d, expected 1..%d x 1..%d (min of the shapes "
                       "%d x %d and %d x %d)", imax, jmax, p1, p2, rows1, cols1, rows2, cols2);
    an_rng rng;
    an_rng_seed(&rng, seed);
    an_mat F1 = an_mat_alloc(n1, imax), F2 = an_mat_alloc(n2, jmax);
    int rc = an_haar_frame(&F1, &rng);
    if (rc == 0) rc = an_haar_frame(&F2, &rng);
    if (rc == 0) rc = an_phi_grid(&F1, &F2, imax, jmax, grid);
    an_mat_free(&F1);
    an_mat_free(&F2);
    return rc;
}

// ----------------------------------------------------------------------------
// W vs ΔW directions (Fig. 8)

int an_w_vs_dw_grid(const an_svd *W_svd, const an_svd *dW_svd, an_side side,
                    int imax, int jmax, double *grid) {
    if (W_svd->rows != dW_svd->rows || W_svd->cols != dW_svd->cols)
        return an_fail("an_w_vs_dw_grid: W is %d x %d but ΔW is %d x %d",
                       W_svd->rows, W_svd->cols, dW_svd->rows, dW_svd->cols);
    const an_mat *U1 = side == AN_SIDE_LEFT ? &W_svd->U : &W_svd->V;
    const an_mat *U2 = side == AN_SIDE_LEFT ? &dW_svd->U : &dW_svd->V;
    if (an_phi_grid(U1, U2, imax, jmax, grid) != 0) {
        char why[768];
        snprintf(why, sizeof why, "%s", an_error());
        return an_fail("an_w_vs_dw_grid (W's directions are i, ΔW's are j): %s", why);
    }
    return 0;
}

int an_w_vs_random_grid(const an_svd *W_svd, an_side side, uint64_t seed,
                        int imax, int jmax, double *grid) {
    // The top-jmax singular vectors of a Gaussian matrix of W's shape are a Haar frame.
    int n = side == AN_SIDE_LEFT ? W_svd->rows : W_svd->cols;
    if (jmax < 1 || jmax > (W_svd->rows < W_svd->cols ? W_svd->rows : W_svd->cols))
        return an_fail("an_w_vs_random_grid: jmax is %d, expected 1..%d (min of W's shape %d x %d)", jmax,
                       W_svd->rows < W_svd->cols ? W_svd->rows : W_svd->cols, W_svd->rows, W_svd->cols);
    an_mat F = an_mat_alloc(n, jmax);
    an_rng rng;
    an_rng_seed(&rng, seed);
    int rc = an_haar_frame(&F, &rng);
    if (rc == 0) {
        rc = an_phi_grid(side == AN_SIDE_LEFT ? &W_svd->U : &W_svd->V, &F, imax, jmax, grid);
        if (rc != 0) {
            char why[768];
            snprintf(why, sizeof why, "%s", an_error());
            rc = an_fail("an_w_vs_random_grid (W's directions are i, random ones are j): %s", why);
        }
    }
    an_mat_free(&F);
    return rc;
}

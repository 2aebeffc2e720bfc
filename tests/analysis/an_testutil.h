// Helpers shared by the analysis tests: matrices with a known SVD, projectors.
#ifndef AN_TESTUTIL_H
#define AN_TESTUTIL_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "analysis.h"

// An n x n orthogonal matrix: the Q of a Gaussian matrix's QR.
static inline an_mat tu_random_orthogonal(int n, uint64_t seed) {
    an_mat G = an_mat_gaussian(n, n, seed), Q, R;
    if (an_qr_thin(&G, &Q, &R) != 0) abort();
    an_mat_free(&G);
    an_mat_free(&R);
    return Q;
}

// Qd[:, :p] diag(sigma) Qk[:, :p]^T (d x k): a matrix whose SVD is known.
static inline an_mat tu_from_svd(const an_mat *Qd, const double *sigma, int p, const an_mat *Qk) {
    an_mat M = an_mat_alloc(Qd->rows, Qk->rows);
    for (int i = 0; i < Qd->rows; i++)
        for (int j = 0; j < Qk->rows; j++) {
            double acc = 0.0;
            for (int t = 0; t < p; t++) acc += AN_AT(Qd, i, t) * sigma[t] * AN_AT(Qk, j, t);
            AN_AT(&M, i, j) = acc;
        }
    return M;
}

// The orthogonal projector U[:, :m] U[:, :m]^T (n x n).
static inline an_mat tu_projector(const an_mat *U, int m) {
    an_mat Um = an_mat_first_cols(U, m), P;
    if (an_matmul(&Um, 0, &Um, 1, 1.0, &P) != 0) abort();
    an_mat_free(&Um);
    return P;
}

// max |(U^T U - I)_ij|: how far U's columns are from orthonormal.
static inline double tu_orthonormality_error(const an_mat *U) {
    an_mat G;
    if (an_matmul(U, 1, U, 0, 1.0, &G) != 0) abort();
    double worst = 0.0;
    for (int i = 0; i < G.rows; i++)
        for (int j = 0; j < G.cols; j++) {
            double e = fabs(AN_AT(&G, i, j) - (i == j ? 1.0 : 0.0));
            if (e > worst) worst = e;
        }
    an_mat_free(&G);
    return worst;
}

#endif

// subspace: normalized subspace similarity φ (Hu et al. 2021, Eq. 4, Sec. 7.2).
//
//   φ(A1, A2, i, j) = ‖U1^i^T U2^j‖²_F / min(i, j)  ∈ [0, 1]
//
// where U1^i holds the top-i singular vectors of A1 (columns). φ = 1 when one
// subspace contains the other, 0 when they are orthogonal. For two uniformly
// random subspaces of dimensions i and j in R^n, E‖U1^i^T U2^j‖² = i j / n,
// hence E[φ] = max(i, j) / n: the random baseline of Fig. 4/6/8.
//
// All grids are imax x jmax, row-major, grid[(i-1)*jmax + (j-1)] = φ(i, j),
// i = 1..imax (first argument's dimension), j = 1..jmax. They are computed
// from one product M = U1^T U2 (imax x jmax) and a 2D prefix sum of M², so a
// full grid costs one GEMM plus O(imax jmax).
#ifndef AN_SUBSPACE_H
#define AN_SUBSPACE_H

#include <stdint.h>

#include "linalg.h"

// U1 (n x p1), U2 (n x p2) with orthonormal columns, ordered by importance ->
// grid (imax x jmax) of φ(i, j) over their leading columns. The caller owns
// grid. Returns 0, or -1 if the row counts differ or imax/jmax are not in
// [1, p1] / [1, p2]. Orthonormality is the caller's promise (not checked).
int an_phi_grid(const an_mat *U1, const an_mat *U2, int imax, int jmax, double *grid);

// The same grid from the product M = U1[:, :imax]^T U2[:, :jmax] (imax x
// jmax, row-major) the caller formed: the 2D prefix sum of M², divided by
// min(i, j). Also used by the chance bands (chance.h), whose M is drawn.
void an_phi_grid_from_product(const double *M, int imax, int jmax, double *grid);

// One value φ(i, j) of the grid above. Returns 0 and sets *phi, or -1.
int an_phi(const an_mat *U1, const an_mat *U2, int i, int j, double *phi);

// φ between the singular subspaces of two matrices of the paper's kind:
// side AN_SIDE_RIGHT for A matrices (r x k, shared k, right singular vectors,
// Sec. 7.2), AN_SIDE_LEFT for B matrices (d x r, shared d, left singular
// vectors; the paper tests A only). imax <= min(shape of X1), jmax <= min(shape of X2).
// If X1 has rank below imax, its trailing singular vectors are an arbitrary
// basis of part of the null space, and so are the grid's values for those i.
// Returns 0, or -1 on mismatched shapes, out-of-range imax/jmax, or an SVD failure.
int an_subspace_similarity_grid(const an_mat *X1, const an_mat *X2, an_side side,
                                int imax, int jmax, double *grid);

// The random baseline: the same grid for two i.i.d. N(0, 1) matrices of
// shapes rows1 x cols1 and rows2 x cols2. Their singular vectors on `side`
// are Haar frames, so they are drawn as such (an_haar_frame: imax then jmax
// columns in R^n, n the shared dimension, from one an_rng seeded with `seed`;
// same seed, same bits) instead of factorising the matrices. side and
// imax/jmax as in an_subspace_similarity_grid (imax <= min(rows1, cols1),
// jmax <= min(rows2, cols2)). E[φ(i, j)] = max(i, j)/n.
int an_subspace_similarity_random_grid(int rows1, int cols1, int rows2, int cols2,
                                       an_side side, uint64_t seed,
                                       int imax, int jmax, double *grid);

// Fig. 8 (App. H.4): φ between the top-i singular directions of W (rows of the
// grid) and the top-j of ΔW (columns), from SVDs the caller computed once
// (an_svd_thin of W; an_delta_svd or an_svd_thin of ΔW). The paper compares
// left singular vectors (the output/column space): pass AN_SIDE_LEFT; the
// right side compares input directions. Returns 0, or -1 on mismatched
// shapes or out-of-range imax/jmax.
int an_w_vs_dw_grid(const an_svd *W_svd, const an_svd *dW_svd, an_side side,
                    int imax, int jmax, double *grid);

// Fig. 8's random baseline: as an_w_vs_dw_grid with ΔW replaced by an i.i.d.
// N(0, 1) matrix of W's shape, whose top-jmax singular vectors are a Haar
// frame: drawn as one (an_haar_frame, seeded with `seed`; O(n jmax²), no SVD).
int an_w_vs_random_grid(const an_svd *W_svd, an_side side, uint64_t seed,
                        int imax, int jmax, double *grid);

#endif

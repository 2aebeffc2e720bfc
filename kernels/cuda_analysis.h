// cuda_analysis: the analysis library's QR and SVD on the GPU (cuSOLVER, fp64).
//
// Same inputs, outputs, ownership and sign convention as analysis/linalg.h
// and analysis/lowrank.h, so that a caller can switch by backend:
//   an_cuda_qr_thin    <-> an_qr_thin     (geqrf + orgqr)
//   an_cuda_svd_thin   <-> an_svd_thin    (gesvdj, Jacobi; gesvd if it does
//                                          not converge)
//   an_cuda_delta_svd  <-> an_delta_svd   (QR of B and A^T on the GPU, the
//                                          r x r core SVD on the GPU, the two
//                                          thin products on the host)
// Singular vectors get an_svd_fix_signs' convention, so results equal the
// LAPACKE path to rounding (the tests ask for 1e-6) wherever the singular
// values are distinct; Householder QR has LAPACK's sign convention in both.
//
// Errors: -1 with an_error() set, as the CPU functions (a missing device
// reads "no CUDA device: ..."). Allocation failure on the device exits, as
// an_malloc does on the host. Matrices are returned in host memory.
#ifndef LS_KERNELS_CUDA_ANALYSIS_H
#define LS_KERNELS_CUDA_ANALYSIS_H

#ifdef __cplusplus
extern "C" { // linalg.h has no C++ guard of its own
#endif

#include "linalg.h"

#ifdef LS_CUDA_EMULATE
#define an_cuda_qr_thin an_cuda_emu_qr_thin
#define an_cuda_svd_thin an_cuda_emu_svd_thin
#define an_cuda_delta_svd an_cuda_emu_delta_svd
#endif

// X (m x n) -> Q (m x p), R (p x n), p = min(m, n). Allocates *Q and *R.
int an_cuda_qr_thin(const an_mat *X, an_mat *Q, an_mat *R);

// X (m x n) -> U (m x p), S (p) descending, V (n x p). Fills *out (free with
// an_svd_free). -1 on an empty matrix, a non-finite entry, no device or a
// cuSOLVER failure.
int an_cuda_svd_thin(const an_mat *X, an_svd *out);

// B (d x r), A (r x k), s -> SVD of ΔW = s·B·A without forming ΔW:
// U (d x q), S (q), V (k x q), q = min(d, k, r), as an_delta_svd.
int an_cuda_delta_svd(const an_mat *B, const an_mat *A, double s, an_svd *out);

#ifdef __cplusplus
}
#endif

#endif

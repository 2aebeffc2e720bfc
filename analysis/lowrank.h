// lowrank: the SVD of a LoRA update ΔW = s·B·A without forming ΔW.
//
// B is d x r (output side), A is r x k (input side), s the LoRA scale (α/r,
// or α/√r for rsLoRA). With thin QRs B = Qb Rb and A^T = Qa Ra, the update is
//   ΔW = Qb (s Rb Ra^T) Qa^T,
// so the SVD of the small core s Rb Ra^T = Uc Σ Vc^T gives
//   ΔW = (Qb Uc) Σ (Qa Vc)^T
// in O((d + k) r²) time and memory, where the dense route costs O(d k min(d, k))
// (ARCHITECTURE.md, "SVD of ΔW"). The dense route is kept for tests and for full
// fine-tuning, where ΔW = W_ft - W0 arrives dense.
#ifndef AN_LOWRANK_H
#define AN_LOWRANK_H

#include "linalg.h"

// B (d x r), A (r x k), s -> SVD of ΔW = s·B·A: U (d x q), S (q), V (k x q),
// q = min(d, k, r), signs fixed as in linalg.h. out->rows = d, out->cols = k.
// Singular values past rank(ΔW) are ~0 and their vectors arbitrary within the
// complement. Fills *out (free with an_svd_free). Returns 0, or -1 if the
// shapes do not chain (B->cols != A->rows), s is not finite, or LAPACK fails.
int an_delta_svd(const an_mat *B, const an_mat *A, double s, an_svd *out);

// B (d x r), A (r x k), s -> ΔW = s·B·A (d x k), dense. Allocates *dW.
// Returns 0, or -1 if B->cols != A->rows.
int an_delta_dense(const an_mat *B, const an_mat *A, double s, an_mat *dW);

// sqrt(Σ σ_i²): the Frobenius norm of a matrix from its singular values (for
// ΔW = s·B·A this is ‖ΔW‖_F at O(r) cost once an_delta_svd has run).
double an_frobenius_from_sigma(const double *sigma, int n);

#endif

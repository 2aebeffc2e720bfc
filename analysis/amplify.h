// amplify: how ΔW relates to W (Hu et al. 2021, Sec. 7.3, Table 7, App. H.4).
//
// Project W onto the r-dimensional subspaces of ΔW: U^T W V with U, V the top-r
// left/right singular vectors of ΔW, and compare with the same projection
// onto W's own top-r directions and onto those of a random Gaussian matrix.
// The amplification factor ‖ΔW‖_F / ‖U_ΔW^T W V_ΔW‖_F says how much ΔW
// amplifies directions that W already has but does not emphasize. The paper
// (GPT-3 175B, layer 48, Wq, r = 4): 0.32 / 21.67 / 0.02 for ΔW / W / random,
// ‖Wq‖_F = 61.95, ‖ΔWq‖_F = 6.91, factor 6.91 / 0.32 ≈ 21.5.
//
// For U, V of a Gaussian matrix (independent Haar-distributed bases),
// E‖U^T W V‖²_F = r² ‖W‖²_F / (d k): 4 · 61.95 / 12288 ≈ 0.02 in the paper.
// The baseline draws such U, V directly as Haar r-frames (an_haar_frame,
// chance.h: the same law, without a d x k SVD); chance.h also gives its
// band (percentiles) and that of the factor of a random ΔW.
#ifndef AN_AMPLIFY_H
#define AN_AMPLIFY_H

#include <stdint.h>

#include "linalg.h"

// One column block of Table 7 (one weight matrix, one r).
typedef struct {
    int r;               // number of singular directions projected on
    double proj_dw;      // ‖U_ΔW^T W V_ΔW‖_F
    double proj_w;       // ‖U_W^T W V_W‖_F (= sqrt(Σ_{i<=r} σ_i(W)²))
    double proj_random;  // ‖U_G^T W V_G‖_F, U_G, V_G the top-r singular vectors of an N(0, 1)
                         // matrix of W's shape, i.e. independent Haar r-frames (drawn as such)
    double w_norm;       // ‖W‖_F
    double dw_norm;      // ‖ΔW‖_F (from ΔW's singular values)
    double factor;       // dw_norm / proj_dw; +inf if proj_dw is 0 and ΔW is not
} an_amplification;

// W (d x k), U (d x r), V (k x r) -> ‖U^T W V‖_F. Returns 0, or -1 on shapes.
int an_projected_norm(const an_mat *W, const an_mat *U, const an_mat *V, double *out);

// Table 7 for W (d x k, the pretrained weight) and the SVD of ΔW (d x k) the
// caller computed (an_delta_svd for a LoRA adapter, an_svd_thin for a dense
// full fine-tuning ΔW, which must keep all its singular values for dw_norm).
// W_svd may be NULL (computed here) or W's SVD from an_svd_thin, or its top
// directions from an_svd_top (at least r of them), to reuse it across r.
// The random baseline draws its frames (U then V) from an an_rng seeded
// with `seed`.
// Returns 0, or -1 if shapes differ or r is not in [1, dW_svd->nsv].
int an_amplification_from_svd(const an_mat *W, const an_svd *W_svd, const an_svd *dW_svd,
                              int r, uint64_t seed, an_amplification *out);

// The same from W's singular values alone (W_sigma: its p = min(d, k)
// values, descending, e.g. an_svd_top's sigma_all): ‖U_Wᵀ W V_W‖_F with W's
// own top-r directions is ‖diag(σ_1..σ_r)‖_F, so W's singular vectors are
// not needed (Table 7's middle column).
int an_amplification_from_sigma(const an_mat *W, const double *W_sigma, int p, const an_svd *dW_svd, int r,
                                uint64_t seed, an_amplification *out);

// The same for a LoRA update ΔW = s·B·A (B d x r_lora, A r_lora x k), via
// an_delta_svd (ΔW never formed). r <= min(d, k, r_lora).
int an_amplification_lowrank(const an_mat *W, const an_mat *B, const an_mat *A, double s,
                             int r, uint64_t seed, an_amplification *out);

// The same for a dense ΔW (d x k), e.g. full fine-tuning W_ft - W0.
int an_amplification_dense(const an_mat *W, const an_mat *dW, int r, uint64_t seed,
                           an_amplification *out);

#endif

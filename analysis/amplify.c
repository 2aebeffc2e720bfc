#include "amplify.h"

#include <math.h>
#include <string.h>

#include "chance.h"
#include "lowrank.h"
#include "random.h"

// ----------------------------------------------------------------------------
// ‖U^T W V‖_F

// W (d x k), U (d x r), V (k x r) -> scalar
int an_projected_norm(const an_mat *W, const an_mat *U, const an_mat *V, double *out) {
    if (U->rows != W->rows || V->rows != W->cols || U->cols != V->cols)
        return an_fail("an_projected_norm: W is %d x %d, U is %d x %d, V is %d x %d: "
                       "expected U d x r and V k x r", W->rows, W->cols,
                       U->rows, U->cols, V->rows, V->cols);
    an_mat UtW = {0}, P = {0};
    int rc = an_matmul(U, 1, W, 0, 1.0, &UtW);   // r x k
    if (rc == 0) rc = an_matmul(&UtW, 0, V, 0, 1.0, &P);  // r x r
    if (rc == 0) *out = an_frobenius_norm(&P);
    an_mat_free(&UtW);
    an_mat_free(&P);
    return rc;
}

// Projection of W onto the top-r singular directions of one decomposition.
static int project_on_top(const an_mat *W, const an_svd *s, int r, double *out) {
    an_mat U = an_mat_first_cols(&s->U, r), V = an_mat_first_cols(&s->V, r);
    int rc = an_projected_norm(W, &U, &V, out);
    an_mat_free(&U);
    an_mat_free(&V);
    return rc;
}

// ----------------------------------------------------------------------------
// Table 7

// Table 7 given ‖U_Wᵀ W V_W‖_F (proj_w): ΔW's projection, the random baseline, the norms.
static int amplification_with(const an_mat *W, double proj_w, const an_svd *dW_svd, int r, uint64_t seed,
                              an_amplification *out) {
    int d = W->rows, k = W->cols;
    an_mat Ug = an_mat_alloc(d, r), Vg = an_mat_alloc(k, r);
    an_rng rng;
    an_rng_seed(&rng, seed);
    int rc = -1;
    // A Gaussian matrix's top-r singular vectors are Haar r-frames: drawn as such
    // (O((d + k) r²)), not by factorising a d x k random matrix (O(d k min(d, k))).
    if (an_haar_frame(&Ug, &rng) != 0 || an_haar_frame(&Vg, &rng) != 0) goto done;
    if (project_on_top(W, dW_svd, r, &out->proj_dw) != 0) goto done;
    if (an_projected_norm(W, &Ug, &Vg, &out->proj_random) != 0) goto done;
    out->proj_w = proj_w;
    out->r = r;
    out->w_norm = an_frobenius_norm(W);
    out->dw_norm = an_frobenius_from_sigma(dW_svd->S, dW_svd->nsv);
    if (out->proj_dw > 0.0) out->factor = out->dw_norm / out->proj_dw;
    else out->factor = out->dw_norm > 0.0 ? INFINITY : 0.0;
    rc = 0;
done:
    an_mat_free(&Ug);
    an_mat_free(&Vg);
    return rc;
}

static int check_amplification_shapes(const an_mat *W, const an_svd *dW_svd, int r) {
    if (dW_svd->rows != W->rows || dW_svd->cols != W->cols)
        return an_fail("an_amplification_from_svd: W is %d x %d but ΔW is %d x %d",
                       W->rows, W->cols, dW_svd->rows, dW_svd->cols);
    if (r < 1 || r > dW_svd->nsv)
        return an_fail("an_amplification_from_svd: r is %d, expected 1..%d (singular directions "
                       "of ΔW available)", r, dW_svd->nsv);
    return 0;
}

int an_amplification_from_svd(const an_mat *W, const an_svd *W_svd, const an_svd *dW_svd,
                              int r, uint64_t seed, an_amplification *out) {
    memset(out, 0, sizeof *out);
    if (check_amplification_shapes(W, dW_svd, r) != 0) return -1;
    if (W_svd && (W_svd->rows != W->rows || W_svd->cols != W->cols))
        return an_fail("an_amplification_from_svd: W is %d x %d but the SVD given for it is of a "
                       "%d x %d matrix", W->rows, W->cols, W_svd->rows, W_svd->cols);
    if (W_svd && W_svd->nsv < r)
        return an_fail("an_amplification_from_svd: r is %d but the SVD given for W keeps %d directions", r,
                       W_svd->nsv);
    an_svd own = {0};
    double proj_w = 0.0;
    int rc = -1;
    if (!W_svd && an_svd_thin(W, &own) != 0) goto done;
    if (project_on_top(W, W_svd ? W_svd : &own, r, &proj_w) != 0) goto done;
    rc = amplification_with(W, proj_w, dW_svd, r, seed, out);
done:
    an_svd_free(&own);
    return rc;
}

int an_amplification_from_sigma(const an_mat *W, const double *W_sigma, int p, const an_svd *dW_svd, int r,
                                uint64_t seed, an_amplification *out) {
    memset(out, 0, sizeof *out);
    if (check_amplification_shapes(W, dW_svd, r) != 0) return -1;
    if (p != (W->rows < W->cols ? W->rows : W->cols) || r > p)
        return an_fail("an_amplification_from_sigma: %d singular values given for a %d x %d W (r %d)", p, W->rows,
                       W->cols, r);
    return amplification_with(W, an_frobenius_from_sigma(W_sigma, r), dW_svd, r, seed, out);
}

int an_amplification_lowrank(const an_mat *W, const an_mat *B, const an_mat *A, double s,
                             int r, uint64_t seed, an_amplification *out) {
    an_svd ds;
    if (an_delta_svd(B, A, s, &ds) != 0) return -1;
    int rc = an_amplification_from_svd(W, NULL, &ds, r, seed, out);
    an_svd_free(&ds);
    return rc;
}

int an_amplification_dense(const an_mat *W, const an_mat *dW, int r, uint64_t seed,
                           an_amplification *out) {
    an_svd ds;
    if (an_svd_thin(dW, &ds) != 0) return -1;
    int rc = an_amplification_from_svd(W, NULL, &ds, r, seed, out);
    an_svd_free(&ds);
    return rc;
}

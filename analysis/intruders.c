#include "intruders.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lowrank.h"

// ----------------------------------------------------------------------------
// Intruder test on two decompositions

int an_intruders_from_svd(const an_svd *W0_svd, const an_svd *ft_svd, an_side side,
                          int k, double eps, an_intruders *out) {
    memset(out, 0, sizeof *out);
    if (W0_svd->rows != ft_svd->rows || W0_svd->cols != ft_svd->cols)
        return an_fail("an_intruders_from_svd: W0 is %d x %d but W0 + ΔW is %d x %d",
                       W0_svd->rows, W0_svd->cols, ft_svd->rows, ft_svd->cols);
    if (k < 1 || k > ft_svd->nsv)
        return an_fail("an_intruders_from_svd: k is %d, expected 1..%d (singular vectors "
                       "of the %d x %d matrix)", k, ft_svd->nsv, ft_svd->rows, ft_svd->cols);
    if (!(eps > 0.0 && eps <= 1.0))
        return an_fail("an_intruders_from_svd: eps is %g, expected in (0, 1]", eps);
    const an_mat *U0 = side == AN_SIDE_LEFT ? &W0_svd->U : &W0_svd->V;
    an_mat Uk = an_mat_first_cols(side == AN_SIDE_LEFT ? &ft_svd->U : &ft_svd->V, k);
    an_mat C = {0};  // k x nsv0: cosines between fine-tuned and pretrained vectors
    int rc = an_matmul(&Uk, 1, U0, 0, 1.0, &C);
    an_mat_free(&Uk);
    if (rc != 0) return -1;
    out->k = k;
    out->eps = eps;
    out->items = an_calloc((size_t)k, sizeof(an_intruder));
    for (int i = 0; i < k; i++) {
        an_intruder *it = &out->items[i];
        it->index = i;
        it->sigma = ft_svd->S[i];
        it->max_cos = -1.0;
        for (int j = 0; j < C.cols; j++) {
            double c = fabs(AN_AT(&C, i, j));
            if (c > it->max_cos) {
                it->max_cos = c;
                it->best_match = j;
            }
        }
        it->is_intruder = it->max_cos < eps;
        out->count += it->is_intruder;
    }
    an_mat_free(&C);
    return 0;
}

// ----------------------------------------------------------------------------
// From matrices

static int intruders_of_sum(const an_mat *W0, an_mat *ft, int k, double eps,
                            an_intruders *out) {
    an_svd s0 = {0}, sf = {0};
    int rc = -1;
    if (an_svd_thin(W0, &s0) == 0 && an_svd_thin(ft, &sf) == 0)
        rc = an_intruders_from_svd(&s0, &sf, AN_SIDE_LEFT, k, eps, out);
    an_svd_free(&s0);
    an_svd_free(&sf);
    return rc;
}

int an_intruder_dimensions(const an_mat *W0, const an_mat *dW, int k, double eps,
                           an_intruders *out) {
    memset(out, 0, sizeof *out);
    if (W0->rows != dW->rows || W0->cols != dW->cols)
        return an_fail("an_intruder_dimensions: W0 is %d x %d but ΔW is %d x %d",
                       W0->rows, W0->cols, dW->rows, dW->cols);
    an_mat ft = an_mat_copy(W0);
    size_t n = (size_t)ft.rows * (size_t)ft.cols;
    for (size_t i = 0; i < n; i++) ft.data[i] += dW->data[i];
    int rc = intruders_of_sum(W0, &ft, k, eps, out);
    an_mat_free(&ft);
    return rc;
}

int an_intruder_dimensions_lowrank(const an_mat *W0, const an_mat *B, const an_mat *A,
                                   double s, int k, double eps, an_intruders *out) {
    memset(out, 0, sizeof *out);
    an_mat dW;
    if (an_delta_dense(B, A, s, &dW) != 0) return -1;
    int rc = an_intruder_dimensions(W0, &dW, k, eps, out);
    an_mat_free(&dW);
    return rc;
}

void an_intruders_free(an_intruders *out) {
    free(out->items);
    memset(out, 0, sizeof *out);
}

#include "lowrank.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// SVD of ΔW = s·B·A through two thin QRs and an r x r core

// B (d x r), A (r x k) -> U (d x q), S (q), V (k x q)
int an_delta_svd(const an_mat *B, const an_mat *A, double s, an_svd *out) {
    memset(out, 0, sizeof *out);
    if (B->cols != A->rows)
        return an_fail("an_delta_svd: B is %d x %d but A is %d x %d: B's columns must equal "
                       "A's rows (the LoRA rank r)", B->rows, B->cols, A->rows, A->cols);
    if (!isfinite(s)) return an_fail("an_delta_svd: scale s is %g, expected a finite number", s);
    const an_linalg_backend *be = an_linalg_backend_current();
    if (be) {
        // the backend's own route (QRs and the core on the GPU), one caller at a time (linalg.h)
        int rc;
#pragma omp critical(an_linalg_backend)
        {
            rc = be->delta_svd(B, A, s, out);
            if (rc != 0 && be->error) an_fail("%s", be->error());
        }
        return rc;
    }
    int d = B->rows, k = A->cols;
    an_mat Qb = {0}, Rb = {0}, Qa = {0}, Ra = {0}, core = {0};
    an_mat At = an_mat_transpose(A);
    an_svd cs = {0};
    int rc = -1;
    if (an_qr_thin(B, &Qb, &Rb) != 0) goto done;     // Qb d x pb, Rb pb x r
    if (an_qr_thin(&At, &Qa, &Ra) != 0) goto done;   // Qa k x pa, Ra pa x r
    if (an_matmul(&Rb, 0, &Ra, 1, s, &core) != 0) goto done;  // pb x pa
    if (an_svd_thin(&core, &cs) != 0) goto done;     // Uc pb x q, Vc pa x q
    out->rows = d;
    out->cols = k;
    out->nsv = cs.nsv;
    out->S = an_malloc((size_t)cs.nsv * sizeof(double));
    memcpy(out->S, cs.S, (size_t)cs.nsv * sizeof(double));
    if (an_matmul(&Qb, 0, &cs.U, 0, 1.0, &out->U) != 0) goto done;
    if (an_matmul(&Qa, 0, &cs.V, 0, 1.0, &out->V) != 0) goto done;
    an_svd_fix_signs(out);
    rc = 0;
done:
    if (rc != 0) {
        an_svd_free(out);
        memset(out, 0, sizeof *out);
    }
    an_mat_free(&At);
    an_mat_free(&Qb);
    an_mat_free(&Rb);
    an_mat_free(&Qa);
    an_mat_free(&Ra);
    an_mat_free(&core);
    an_svd_free(&cs);
    return rc;
}

// B (d x r), A (r x k) -> ΔW (d x k)
int an_delta_dense(const an_mat *B, const an_mat *A, double s, an_mat *dW) {
    if (B->cols != A->rows)
        return an_fail("an_delta_dense: B is %d x %d but A is %d x %d: B's columns must equal "
                       "A's rows (the LoRA rank r)", B->rows, B->cols, A->rows, A->cols);
    return an_matmul(B, 0, A, 0, s, dW);
}

double an_frobenius_from_sigma(const double *sigma, int n) {
    // Singular values arrive sorted descending: sigma[0] is the natural scale.
    double scale = 0.0;
    for (int i = 0; i < n; i++) scale = fmax(scale, fabs(sigma[i]));
    if (scale == 0.0) return 0.0;
    double ssq = 0.0;
    for (int i = 0; i < n; i++) ssq += (sigma[i] / scale) * (sigma[i] / scale);
    return scale * sqrt(ssq);
}

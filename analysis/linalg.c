#include "linalg.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// Errors and allocation

static _Thread_local char an_err_buf[1024];

int an_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(an_err_buf, sizeof an_err_buf, fmt, ap);
    va_end(ap);
    return -1;
}

const char *an_error(void) { return an_err_buf; }

void *an_malloc_check(size_t size, const char *file, int line) {
    void *p = malloc(size ? size : 1);
    if (!p) {
        fprintf(stderr, "%s:%d: out of memory allocating %zu bytes\n", file, line, size);
        exit(1);
    }
    return p;
}

void *an_calloc_check(size_t n, size_t size, const char *file, int line) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "%s:%d: out of memory allocating %zu x %zu bytes\n", file, line, n, size);
        exit(1);
    }
    return p;
}

// ----------------------------------------------------------------------------
// Matrices

an_mat an_mat_alloc(int rows, int cols) {
    an_mat m = { rows, cols, NULL };
    m.data = an_calloc((size_t)rows * (size_t)cols, sizeof(double));
    return m;
}

void an_mat_free(an_mat *m) {
    free(m->data);
    m->data = NULL;
    m->rows = m->cols = 0;
}

an_mat an_mat_from_float(const float *data, int rows, int cols) {
    an_mat m = an_mat_alloc(rows, cols);
    size_t n = (size_t)rows * (size_t)cols;
    for (size_t i = 0; i < n; i++) m.data[i] = (double)data[i];
    return m;
}

an_mat an_mat_from_double(const double *data, int rows, int cols) {
    an_mat m = an_mat_alloc(rows, cols);
    memcpy(m.data, data, (size_t)rows * (size_t)cols * sizeof(double));
    return m;
}

an_mat an_mat_copy(const an_mat *m) { return an_mat_from_double(m->data, m->rows, m->cols); }

an_mat an_mat_transpose(const an_mat *m) {
    an_mat t = an_mat_alloc(m->cols, m->rows);
    for (int i = 0; i < m->rows; i++)
        for (int j = 0; j < m->cols; j++) AN_AT(&t, j, i) = AN_AT(m, i, j);
    return t;
}

an_mat an_mat_first_cols(const an_mat *m, int ncols) {
    an_mat out = an_mat_alloc(m->rows, ncols);
    for (int i = 0; i < m->rows; i++)
        memcpy(&AN_AT(&out, i, 0), &AN_AT(m, i, 0), (size_t)ncols * sizeof(double));
    return out;
}

// X (m x n or n x m), Y (n x p or p x n) -> C (m x p)
int an_matmul(const an_mat *X, int trans_x, const an_mat *Y, int trans_y,
              double alpha, an_mat *C) {
    int m = trans_x ? X->cols : X->rows, n = trans_x ? X->rows : X->cols;
    int n2 = trans_y ? Y->cols : Y->rows, p = trans_y ? Y->rows : Y->cols;
    if (n != n2)
        return an_fail("an_matmul: inner dimensions differ: %d x %d times %d x %d",
                       m, n, n2, p);
    *C = an_mat_alloc(m, p);
    if (m == 0 || p == 0 || n == 0) return 0;
    cblas_dgemm(CblasRowMajor, trans_x ? CblasTrans : CblasNoTrans,
                trans_y ? CblasTrans : CblasNoTrans, m, p, n, alpha,
                X->data, X->cols, Y->data, Y->cols, 0.0, C->data, C->cols);
    return 0;
}

double an_frobenius_norm(const an_mat *m) {
    // LAPACK's dlassq idea: sum of (x/scale)^2 with a running scale.
    double scale = 0.0, ssq = 1.0;
    size_t n = (size_t)m->rows * (size_t)m->cols;
    for (size_t i = 0; i < n; i++) {
        double a = fabs(m->data[i]);
        if (a == 0.0) continue;
        if (scale < a) {
            ssq = 1.0 + ssq * (scale / a) * (scale / a);
            scale = a;
        } else {
            ssq += (a / scale) * (a / scale);
        }
    }
    return scale * sqrt(ssq);
}

double an_max_abs_diff(const an_mat *X, const an_mat *Y) {
    if (X->rows != Y->rows || X->cols != Y->cols) return INFINITY;
    double worst = 0.0;
    size_t n = (size_t)X->rows * (size_t)X->cols;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(X->data[i] - Y->data[i]);
        if (!(d <= worst)) worst = d;  // NaN propagates
    }
    return worst;
}

// ----------------------------------------------------------------------------
// Another implementation of the factorisations (linalg.h; lowrank.c routes ΔW's)

static const an_linalg_backend *linalg_backend;

const an_linalg_backend *an_set_linalg_backend(const an_linalg_backend *be) {
    const an_linalg_backend *old = linalg_backend;
    linalg_backend = be;
    return old;
}

const an_linalg_backend *an_linalg_backend_current(void) { return linalg_backend; }

// The backend's QR and SVD, one caller at a time; a failure's message becomes
// this library's an_error().
static int routed_qr_thin(const an_linalg_backend *be, const an_mat *X, an_mat *Q, an_mat *R) {
    int rc;
#pragma omp critical(an_linalg_backend)
    {
        rc = be->qr_thin(X, Q, R);
        if (rc != 0 && be->error) an_fail("%s", be->error());
    }
    return rc;
}

static int routed_svd_thin(const an_linalg_backend *be, const an_mat *X, an_svd *out) {
    int rc;
#pragma omp critical(an_linalg_backend)
    {
        rc = be->svd_thin(X, out);
        if (rc != 0 && be->error) an_fail("%s", be->error());
    }
    return rc;
}

// ----------------------------------------------------------------------------
// QR

// X (m x n) -> Q (m x p), R (p x n), p = min(m, n)
int an_qr_thin(const an_mat *X, an_mat *Q, an_mat *R) {
    int m = X->rows, n = X->cols, p = m < n ? m : n;
    if (m <= 0 || n <= 0) return an_fail("an_qr_thin: empty matrix %d x %d", m, n);
    if (linalg_backend) return routed_qr_thin(linalg_backend, X, Q, R);
    an_mat a = an_mat_copy(X);
    double *tau = an_malloc((size_t)p * sizeof(double));
    lapack_int info = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, m, n, a.data, n, tau);
    if (info != 0) {
        free(tau);
        an_mat_free(&a);
        return an_fail("an_qr_thin: dgeqrf failed (info %d) on %d x %d", (int)info, m, n);
    }
    *R = an_mat_alloc(p, n);
    for (int i = 0; i < p; i++)
        for (int j = i; j < n; j++) AN_AT(R, i, j) = AN_AT(&a, i, j);
    // The reflectors sit in the first p columns of a (leading dimension n).
    info = LAPACKE_dorgqr(LAPACK_ROW_MAJOR, m, p, p, a.data, n, tau);
    free(tau);
    if (info != 0) {
        an_mat_free(&a);
        an_mat_free(R);
        return an_fail("an_qr_thin: dorgqr failed (info %d) on %d x %d", (int)info, m, n);
    }
    *Q = an_mat_first_cols(&a, p);
    an_mat_free(&a);
    return 0;
}

// ----------------------------------------------------------------------------
// SVD

void an_svd_free(an_svd *s) {
    an_mat_free(&s->U);
    an_mat_free(&s->V);
    free(s->S);
    s->S = NULL;
    s->rows = s->cols = s->nsv = 0;
}

void an_svd_fix_signs(an_svd *s) {
    for (int j = 0; j < s->nsv; j++) {
        int best = 0;
        double best_abs = -1.0;
        for (int i = 0; i < s->U.rows; i++) {
            double a = fabs(AN_AT(&s->U, i, j));
            if (a > best_abs) { best_abs = a; best = i; }
        }
        if (AN_AT(&s->U, best, j) >= 0.0) continue;
        for (int i = 0; i < s->U.rows; i++) AN_AT(&s->U, i, j) = -AN_AT(&s->U, i, j);
        for (int i = 0; i < s->V.rows; i++) AN_AT(&s->V, i, j) = -AN_AT(&s->V, i, j);
    }
}

// X (m x n) -> U (m x p), S (p), V (n x p), p = min(m, n)
int an_svd_thin(const an_mat *X, an_svd *out) {
    int m = X->rows, n = X->cols, p = m < n ? m : n;
    memset(out, 0, sizeof *out);
    if (m <= 0 || n <= 0) return an_fail("an_svd_thin: empty matrix %d x %d", m, n);
    size_t total = (size_t)m * (size_t)n;
    for (size_t i = 0; i < total; i++)
        if (!isfinite(X->data[i]))
            return an_fail("an_svd_thin: entry (%zu, %zu) of the %d x %d matrix is %g",
                           i / (size_t)n, i % (size_t)n, m, n, X->data[i]);
    if (linalg_backend) return routed_svd_thin(linalg_backend, X, out);
    an_mat a = an_mat_copy(X);
    an_mat U = an_mat_alloc(m, p), Vt = an_mat_alloc(p, n);
    double *S = an_malloc((size_t)p * sizeof(double));
    lapack_int info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', m, n, a.data, n, S,
                                     U.data, p, Vt.data, n);
    if (info > 0) {
        // dgesdd did not converge (rare); the QR-iteration driver is slower but sturdier.
        memcpy(a.data, X->data, total * sizeof(double));
        double *superb = an_malloc((size_t)(p > 1 ? p - 1 : 1) * sizeof(double));
        info = LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'S', 'S', m, n, a.data, n, S,
                              U.data, p, Vt.data, n, superb);
        free(superb);
    }
    an_mat_free(&a);
    if (info != 0) {
        an_mat_free(&U);
        an_mat_free(&Vt);
        free(S);
        return an_fail("an_svd_thin: LAPACK SVD failed (info %d) on %d x %d", (int)info, m, n);
    }
    out->rows = m;
    out->cols = n;
    out->nsv = p;
    out->U = U;
    out->S = S;
    out->V = an_mat_transpose(&Vt);
    an_mat_free(&Vt);
    an_svd_fix_signs(out);
    return 0;
}

int an_svd_vectors(const an_svd *s, an_side side, int count, an_mat *out) {
    if (count < 1 || count > s->nsv)
        return an_fail("an_svd_vectors: asked for %d %s singular vectors, expected 1..%d "
                       "(min of %d x %d)", count, side == AN_SIDE_LEFT ? "left" : "right",
                       s->nsv, s->rows, s->cols);
    *out = an_mat_first_cols(side == AN_SIDE_LEFT ? &s->U : &s->V, count);
    return 0;
}

static int singular_vectors(const an_mat *X, an_side side, int count, an_mat *out) {
    an_svd s;
    if (an_svd_thin(X, &s) != 0) return -1;
    int rc = an_svd_vectors(&s, side, count, out);
    an_svd_free(&s);
    return rc;
}

// A (r x k) -> V (k x i)
int an_right_singular_vectors(const an_mat *A, int i, an_mat *V) {
    return singular_vectors(A, AN_SIDE_RIGHT, i, V);
}

// B (d x r) -> U (d x j)
int an_left_singular_vectors(const an_mat *B, int j, an_mat *U) {
    return singular_vectors(B, AN_SIDE_LEFT, j, U);
}

// ----------------------------------------------------------------------------
// Top-k SVD through the Gram matrix (W in Table 7 and Fig. 8)

// The dense SVD's first k triplets, and all its singular values.
static int svd_top_dense(const an_mat *X, int k, an_svd *out, double *sigma_all) {
    an_svd full;
    if (an_svd_thin(X, &full) != 0) return -1;
    if (sigma_all) memcpy(sigma_all, full.S, (size_t)full.nsv * sizeof(double));
    out->rows = full.rows;
    out->cols = full.cols;
    out->nsv = k;
    out->U = an_mat_first_cols(&full.U, k);
    out->V = an_mat_first_cols(&full.V, k);
    out->S = an_malloc((size_t)k * sizeof(double));
    memcpy(out->S, full.S, (size_t)k * sizeof(double));
    an_svd_free(&full);
    return 0;
}

// G (p x p, column-major, lower triangle set) -> lam (p, ascending), Z (p x k,
// column-major: the eigenvectors of the k largest eigenvalues, ascending). G is overwritten.
static int gram_top_eigen(double *G, int p, int k, double *lam, double *Z) {
    double *d = an_malloc((size_t)p * sizeof(double)), *e = an_calloc((size_t)p, sizeof(double));
    double *tau = an_calloc((size_t)p, sizeof(double)), *e2 = an_calloc((size_t)p, sizeof(double));
    double *w = an_malloc((size_t)p * sizeof(double));
    lapack_int *isuppz = an_malloc((size_t)2 * k * sizeof(lapack_int)), found = 0;
    lapack_logical tryrac = 1;
    lapack_int info = LAPACKE_dsytrd(LAPACK_COL_MAJOR, 'L', p, G, p, d, e, tau);
    if (info == 0) {
        memcpy(lam, d, (size_t)p * sizeof(double));
        memcpy(e2, e, (size_t)p * sizeof(double));
        info = LAPACKE_dsterf(p, lam, e2);
    }
    if (info == 0)
        info = LAPACKE_dstemr(LAPACK_COL_MAJOR, 'V', 'I', p, d, e, 0.0, 0.0, p - k + 1, p, &found, w, Z, p, k,
                              isuppz, &tryrac);
    if (info == 0 && found != k) info = -1000;
    if (info == 0) info = LAPACKE_dormtr(LAPACK_COL_MAJOR, 'L', 'L', 'N', p, k, G, p, tau, Z, p);
    free(d), free(e), free(tau), free(e2), free(w), free(isuppz);
    if (info != 0) return an_fail("an_svd_top: LAPACK eigensolver failed (info %d) on a %d x %d Gram matrix", (int)info, p, p);
    return 0;
}

// X (m x n) -> U (m x k), S (k), V (n x k); sigma_all (p) if not NULL
int an_svd_top(const an_mat *X, int k, an_svd *out, double *sigma_all) {
    int m = X->rows, n = X->cols, p = m < n ? m : n;
    memset(out, 0, sizeof *out);
    if (m <= 0 || n <= 0) return an_fail("an_svd_top: empty matrix %d x %d", m, n);
    if (k < 1 || k > p) return an_fail("an_svd_top: k is %d, expected 1..%d (min of %d x %d)", k, p, m, n);
    size_t total = (size_t)m * (size_t)n;
    for (size_t i = 0; i < total; i++)
        if (!isfinite(X->data[i]))
            return an_fail("an_svd_top: entry (%zu, %zu) of the %d x %d matrix is %g", i / (size_t)n, i % (size_t)n, m,
                           n, X->data[i]);
    if (linalg_backend) return svd_top_dense(X, k, out, sigma_all); // its SVD, truncated
    // Row-major X is column-major Xᵀ (n x m, leading dimension n): the Gram
    // matrix of the short side is XᵀX = Xᵀ(Xᵀ)ᵀ when n <= m, else XXᵀ.
    int right = n <= m;
    double *G = an_malloc((size_t)p * p * sizeof(double)), *lam = an_malloc((size_t)p * sizeof(double));
    double *Z = an_malloc((size_t)p * k * sizeof(double));
    cblas_dsyrk(CblasColMajor, CblasLower, right ? CblasNoTrans : CblasTrans, p, right ? m : n, 1.0, X->data, n, 0.0,
                G, p);
    int rc = gram_top_eigen(G, p, k, lam, Z);
    if (rc == 0) {
        an_mat known = an_mat_alloc(p, k), other;  // V (right) or U, descending
        for (int c = 0; c < k; c++)
            for (int i = 0; i < p; i++) AN_AT(&known, i, c) = Z[(size_t)(k - 1 - c) * p + i];
        rc = an_matmul(X, !right, &known, 0, 1.0, &other);  // X V (m x k) or Xᵀ U (n x k)
        out->S = an_malloc((size_t)k * sizeof(double));
        for (int c = 0; c < k && rc == 0; c++) {
            double ss = 0.0;
            for (int i = 0; i < other.rows; i++) ss += AN_AT(&other, i, c) * AN_AT(&other, i, c);
            out->S[c] = sqrt(ss);
        }
        if (rc == 0 && out->S[k - 1] >= 1e-6 * out->S[0] && out->S[0] > 0.0) {
            for (int i = 0; i < other.rows; i++)
                for (int c = 0; c < k; c++) AN_AT(&other, i, c) /= out->S[c];
            *out = (an_svd){m, n, k, right ? other : known, out->S, right ? known : other};
            if (sigma_all)
                for (int i = 0; i < p; i++)
                    sigma_all[i] = i < k ? out->S[i] : sqrt(lam[p - 1 - i] > 0.0 ? lam[p - 1 - i] : 0.0);
            an_svd_fix_signs(out);
        } else if (rc != 0) {
            free(out->S);
            an_mat_free(&known);
            memset(out, 0, sizeof *out);
        } else {
            // k reaches the numerical rank: the Gram route cannot resolve those directions.
            free(out->S);
            an_mat_free(&known);
            an_mat_free(&other);
            rc = svd_top_dense(X, k, out, sigma_all);
        }
    }
    free(G), free(lam), free(Z);
    return rc;
}

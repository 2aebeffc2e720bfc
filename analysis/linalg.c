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
// QR

// X (m x n) -> Q (m x p), R (p x n), p = min(m, n)
int an_qr_thin(const an_mat *X, an_mat *Q, an_mat *R) {
    int m = X->rows, n = X->cols, p = m < n ? m : n;
    if (m <= 0 || n <= 0) return an_fail("an_qr_thin: empty matrix %d x %d", m, n);
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

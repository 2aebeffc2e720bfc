// linalg: dense double-precision matrices, thin QR and SVD (LAPACKE), errors.
//
// The analysis library is pure math: no file I/O, no dependency on src/.
// Every matrix is row-major double (an_mat). Singular vectors are returned as
// COLUMNS: an SVD of an m x n matrix gives U (m x p), S (p), V (n x p) with
// p = min(m, n), so that "the top-i right singular vectors of A" (U_A^i in
// Sec. 7.2 of Hu et al. 2021) are the first i columns of V.
//
// Errors: a function that can fail on its input returns -1 (or NULL) and sets
// a one-line message readable with an_error(); callers in src/ forward it
// with ls_fail("%s", an_error()). Allocation failure is not an input error:
// it prints where and exits, like ls_malloc.
//
// Determinism: singular vectors are defined up to sign; every SVD here fixes
// the sign so that the entry of largest magnitude of each left singular
// vector is positive (first such entry on ties), and flips the matching right
// vector. The same input and thread count therefore give the same bits.
#ifndef AN_LINALG_H
#define AN_LINALG_H

#include <stddef.h>

// ----------------------------------------------------------------------------
// Errors and allocation

// Sets the message (printf-style, one line) and returns -1.
int an_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// The message of the last failure in this thread ("" if none).
const char *an_error(void);

// malloc/calloc that never return NULL (print file:line and exit(1) on OOM).
void *an_malloc_check(size_t size, const char *file, int line);
void *an_calloc_check(size_t n, size_t size, const char *file, int line);
#define an_malloc(size) an_malloc_check((size), __FILE__, __LINE__)
#define an_calloc(n, size) an_calloc_check((n), (size), __FILE__, __LINE__)

// ----------------------------------------------------------------------------
// Matrices

// A row-major matrix: element (i, j) is data[i * cols + j]. Owns data.
typedef struct {
    int rows, cols;
    double *data;
} an_mat;

#define AN_AT(m, i, j) ((m)->data[(size_t)(i) * (size_t)(m)->cols + (size_t)(j)])

// A zero-filled rows x cols matrix (rows, cols >= 0). Free with an_mat_free.
an_mat an_mat_alloc(int rows, int cols);
// Frees data and zeroes the struct; safe on a zeroed or already-freed matrix.
void an_mat_free(an_mat *m);
// A copy of rows x cols float data (row-major), widened to double.
an_mat an_mat_from_float(const float *data, int rows, int cols);
// A copy of rows x cols double data (row-major).
an_mat an_mat_from_double(const double *data, int rows, int cols);
an_mat an_mat_copy(const an_mat *m);
// m^T (cols x rows), freshly allocated.
an_mat an_mat_transpose(const an_mat *m);
// The first `ncols` columns of m (m->rows x ncols), freshly allocated.
// Requires 0 <= ncols <= m->cols.
an_mat an_mat_first_cols(const an_mat *m, int ncols);

// C = alpha * op(X) * op(Y), op(X) = X or X^T. Allocates *C (the caller frees).
// Returns 0, or -1 if the inner dimensions differ.
int an_matmul(const an_mat *X, int trans_x, const an_mat *Y, int trans_y,
              double alpha, an_mat *C);

// ‖m‖_F, accumulated with scaling so that huge or tiny entries do not overflow.
double an_frobenius_norm(const an_mat *m);
// max_ij |X_ij - Y_ij|; the shapes must match (else returns INFINITY).
double an_max_abs_diff(const an_mat *X, const an_mat *Y);

// ----------------------------------------------------------------------------
// QR and SVD

// Thin QR (dgeqrf + dorgqr): X (m x n) = Q (m x p) R (p x n), p = min(m, n),
// Q with orthonormal columns, R upper trapezoidal. Allocates *Q and *R.
// Returns 0, or -1 on an empty matrix or a LAPACK failure.
int an_qr_thin(const an_mat *X, an_mat *Q, an_mat *R);

// Thin SVD X = U diag(S) V^T of an m x n matrix, p = min(m, n).
typedef struct {
    int rows, cols;  // m, n of the decomposed matrix
    int nsv;         // p: number of singular values / vectors kept
    an_mat U;        // m x nsv, orthonormal columns (left singular vectors)
    double *S;       // nsv singular values, descending, >= 0
    an_mat V;        // n x nsv, orthonormal columns (right singular vectors)
} an_svd;

// Thin SVD by dgesdd (divide and conquer), falling back to dgesvd if dgesdd
// does not converge. Signs fixed as described at the top of this file.
// Fills *out (free with an_svd_free). Returns 0, or -1 on an empty matrix,
// a non-finite entry or a LAPACK failure.
int an_svd_thin(const an_mat *X, an_svd *out);
void an_svd_free(an_svd *s);

// The top-k singular triplets of X (m x n) and, if sigma_all is not NULL,
// all p = min(m, n) singular values (sigma_all[p], descending): what the
// analyses of W need (Table 7 and Fig. 8 use W's top r or top imax <= 64
// directions; the chance bands use every singular value). Computed from the
// p x p Gram matrix (XᵀX or XXᵀ, BLAS 3): its tridiagonal form gives every
// eigenvalue (dsterf) and the top k eigenvectors (dstemr, MRRR, then dormtr),
// the other side is X v / ‖X v‖, and the top σ are those norms; about 4-6x
// less work than a dense SVD at k <= 64 of 768. Accuracy: a top direction's
// angle to the dense SVD's is about ε σ₁² / (σ_i² - σ_{i+1}²) (1e-12 on
// GPT-2-like spectra; tests/analysis/test_linalg.c checks 1e-10), and
// sigma_all[i] has absolute error about ε σ₁² / σ_i (relative error grows for
// σ_i far below σ₁; the bands use σ only through sums of σ² and σ⁴). Falls
// back to the dense SVD (an_svd_thin, truncated) when σ_k < 1e-6 σ₁ (k at or
// beyond the numerical rank). Signs fixed as an_svd_thin's. Fills *out with
// nsv = k. Returns 0, or -1 on k outside [1, p], a non-finite entry or a
// LAPACK failure.
int an_svd_top(const an_mat *X, int k, an_svd *out, double *sigma_all);

// Makes the largest-magnitude entry of each column of U positive, flipping the
// matching column of V (the sign convention of every SVD in this library).
void an_svd_fix_signs(an_svd *s);

// ----------------------------------------------------------------------------
// Another implementation of the factorisations (the GPU's)

// QR, SVD and ΔW's SVD with the same contracts as an_qr_thin, an_svd_thin and
// an_delta_svd (kernels/cuda_analysis.h has cuSOLVER's). `error` returns the
// message of its last failure where the implementation keeps its own (a
// separately loaded module: kernels/cuda_module.h), NULL where it shares
// this library's an_error().
typedef struct {
    const char *name;  // "cuda"
    int (*qr_thin)(const an_mat *X, an_mat *Q, an_mat *R);
    int (*svd_thin)(const an_mat *X, an_svd *out);
    int (*delta_svd)(const an_mat *B, const an_mat *A, double s, an_svd *out);
    const char *(*error)(void);
} an_linalg_backend;

// Routes an_qr_thin, an_svd_thin, an_delta_svd and an_svd_top (the dense SVD,
// truncated: a GPU has no Gram route) through `be` from now on, in every
// thread; NULL restores LAPACKE. Inputs are checked here first, so bad input
// gives the same messages either way. Calls into `be` are serialised (one
// OpenMP critical section: the GPU's handle and scratch are shared), so
// analyses may keep running their cells on many threads. Set it between
// parallel regions, not inside one. Returns the previous one (NULL: LAPACKE).
const an_linalg_backend *an_set_linalg_backend(const an_linalg_backend *be);
// The one set (NULL: LAPACKE).
const an_linalg_backend *an_linalg_backend_current(void);

// Which side's singular vectors: right (columns of V, row space; the paper's
// choice for A, Sec. 7.2) or left (columns of U, column space; for B, H.2,
// and for W vs ΔW, Fig. 8).
typedef enum { AN_SIDE_RIGHT = 0, AN_SIDE_LEFT = 1 } an_side;

// The first `count` columns of s->V (AN_SIDE_RIGHT) or s->U (AN_SIDE_LEFT),
// freshly allocated. Returns 0, or -1 if count is not in [1, s->nsv].
int an_svd_vectors(const an_svd *s, an_side side, int count, an_mat *out);

// The top-i right singular vectors of A (r x k) as a k x i matrix: U_A^i of
// Sec. 7.2. Allocates *V. Returns 0, or -1 if i is not in [1, min(r, k)].
int an_right_singular_vectors(const an_mat *A, int i, an_mat *V);
// The top-j left singular vectors of B (d x r) as a d x j matrix (App. H.2).
int an_left_singular_vectors(const an_mat *B, int j, an_mat *U);

#endif

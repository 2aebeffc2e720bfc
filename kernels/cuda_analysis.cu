// cuda_analysis: thin QR and SVD through cuSOLVER in fp64, behind the analysis
// library's API (see cuda_analysis.h).
//
// Layouts: cuSOLVER is column-major and an_mat row-major. The row-major
// m x n data of X read column-major is X^T (n x m), so a matrix with at
// least as many columns as rows goes to the SVD as is (X^T = U' S V'^T gives
// U = V', V = U'); a taller one is transposed on the host first. Either way
// the solver sees rows >= columns, which gesvd (the fallback) requires.
#include "cuda_common.cuh"

extern "C" {
#include "linalg.h"
}
#include "cuda_analysis.h"

#ifdef LS_CUDA_EMULATE
#include "emu/cuda_emu.h"
#else
#include <cusolverDn.h>
#endif

static cusolverDnHandle_t solver;

static int solver_init(const char *who) {
    if (solver) return 0;
    if (lsc_init() != 0) return an_fail("%s: %s", who, ls_error());
    if (cusolverDnCreate(&solver) != CUSOLVER_STATUS_SUCCESS)
        return an_fail("%s: cusolverDnCreate failed", who);
    return 0;
}

// Device buffers of one call, freed together.
typedef struct {
    void *p[16];
    int n;
} dev_bufs;

static double *dev_doubles(dev_bufs *b, size_t n) {
    void *p = lsc_device_alloc((n ? n : 1) * sizeof(double));
    b->p[b->n++] = p;
    return (double *)p;
}

static int *dev_int(dev_bufs *b) {
    void *p = lsc_device_alloc(sizeof(int));
    b->p[b->n++] = p;
    return (int *)p;
}

static void dev_free_all(dev_bufs *b) {
    for (int i = 0; i < b->n; i++) lsc_device_free(b->p[i]);
    b->n = 0;
}

static void upload_d(double *dst, const double *src, size_t n) {
    LSC_CUDA(cudaMemcpy(dst, src, n * sizeof(double), cudaMemcpyHostToDevice));
}

static void download_d(double *dst, const double *src, size_t n) {
    LSC_CUDA(cudaMemcpy(dst, src, n * sizeof(double), cudaMemcpyDeviceToHost));
}

static int download_info(const int *d_info) {
    int info = 0;
    LSC_CUDA(cudaMemcpy(&info, d_info, sizeof(int), cudaMemcpyDeviceToHost));
    return info;
}

// column-major (rows x cols, leading dimension ld) -> a fresh row-major an_mat
static an_mat from_col_major(const double *c, int rows, int cols, int ld) {
    an_mat m = an_mat_alloc(rows, cols);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) AN_AT(&m, i, j) = c[i + (size_t)j * ld];
    return m;
}

// ----------------------------------------------------------------------------
// QR

// X (m x n) -> Q (m x p), R (p x n), p = min(m, n)
extern "C" int an_cuda_qr_thin(const an_mat *X, an_mat *Q, an_mat *R) {
    int m = X->rows, n = X->cols, p = m < n ? m : n;
    if (m <= 0 || n <= 0) return an_fail("an_cuda_qr_thin: empty matrix %d x %d", m, n);
    if (solver_init("an_cuda_qr_thin") != 0) return -1;
    size_t mn = (size_t)m * n;
    double *h = (double *)an_malloc(mn * sizeof(double));
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) h[i + (size_t)j * m] = AN_AT(X, i, j);
    dev_bufs b = {{0}, 0};
    double *dA = dev_doubles(&b, mn), *dtau = dev_doubles(&b, (size_t)p);
    int *dinfo = dev_int(&b);
    upload_d(dA, h, mn);
    int lw1 = 0, lw2 = 0, rc = -1, info = 0;
    if (cusolverDnDgeqrf_bufferSize(solver, m, n, dA, m, &lw1) != CUSOLVER_STATUS_SUCCESS ||
        cusolverDnDorgqr_bufferSize(solver, m, p, p, dA, m, dtau, &lw2) != CUSOLVER_STATUS_SUCCESS) {
        an_fail("an_cuda_qr_thin: workspace query failed on %d x %d", m, n);
        goto done;
    }
    {
        int lw = lw1 > lw2 ? lw1 : lw2;
        double *work = dev_doubles(&b, (size_t)lw);
        if (cusolverDnDgeqrf(solver, m, n, dA, m, dtau, work, lw, dinfo) != CUSOLVER_STATUS_SUCCESS ||
            (info = download_info(dinfo)) != 0) {
            an_fail("an_cuda_qr_thin: geqrf failed (info %d) on %d x %d", info, m, n);
            goto done;
        }
        download_d(h, dA, mn);
        *R = an_mat_alloc(p, n);
        for (int i = 0; i < p; i++)
            for (int j = i; j < n; j++) AN_AT(R, i, j) = h[i + (size_t)j * m];
        // the reflectors sit in the first p columns (leading dimension m)
        if (cusolverDnDorgqr(solver, m, p, p, dA, m, dtau, work, lw, dinfo) != CUSOLVER_STATUS_SUCCESS ||
            (info = download_info(dinfo)) != 0) {
            an_mat_free(R);
            an_fail("an_cuda_qr_thin: orgqr failed (info %d) on %d x %d", info, m, n);
            goto done;
        }
        download_d(h, dA, (size_t)m * p);
        *Q = from_col_major(h, m, p, m);
        rc = 0;
    }
done:
    dev_free_all(&b);
    free(h);
    return rc;
}

// ----------------------------------------------------------------------------
// SVD

// Column-major A (rows x cols, rows >= cols, on the device, destroyed) ->
// U (rows x cols), S (cols), V (cols x cols) on the host, column-major.
static int svd_tall(double *dA, int rows, int cols, double *U, double *S, double *V,
                    dev_bufs *b) {
    int p = cols, lwork = 0, info = 0;
    double *dU = dev_doubles(b, (size_t)rows * p), *dS = dev_doubles(b, (size_t)p);
    double *dV = dev_doubles(b, (size_t)cols * p), *dcopy = dev_doubles(b, (size_t)rows * cols);
    int *dinfo = dev_int(b);
    // gesvdj overwrites A; keep a copy for the fallback
    LSC_CUDA(cudaMemcpy(dcopy, dA, (size_t)rows * cols * sizeof(double), cudaMemcpyDeviceToDevice));
    gesvdjInfo_t params = NULL;
    if (cusolverDnCreateGesvdjInfo(&params) != CUSOLVER_STATUS_SUCCESS)
        return an_fail("an_cuda_svd_thin: cusolverDnCreateGesvdjInfo failed");
    cusolverStatus_t st = cusolverDnDgesvdj_bufferSize(solver, CUSOLVER_EIG_MODE_VECTOR, 1, rows,
                                                       cols, dA, rows, dS, dU, rows, dV, cols,
                                                       &lwork, params);
    if (st == CUSOLVER_STATUS_SUCCESS) {
        double *work = dev_doubles(b, (size_t)lwork);
        st = cusolverDnDgesvdj(solver, CUSOLVER_EIG_MODE_VECTOR, 1, rows, cols, dA, rows, dS, dU,
                               rows, dV, cols, work, lwork, dinfo, params);
    }
    cusolverDnDestroyGesvdjInfo(params);
    if (st != CUSOLVER_STATUS_SUCCESS)
        return an_fail("an_cuda_svd_thin: gesvdj failed (status %d) on %d x %d", (int)st, rows,
                       cols);
    info = download_info(dinfo);
    if (info != 0) {
        // Jacobi did not converge (info = p + 1) or failed: QR iteration, as the
        // CPU path falls back from dgesdd to dgesvd.
        double *dVT = dev_doubles(b, (size_t)p * cols);
        if (cusolverDnDgesvd_bufferSize(solver, rows, cols, &lwork) != CUSOLVER_STATUS_SUCCESS)
            return an_fail("an_cuda_svd_thin: gesvd workspace query failed");
        double *work = dev_doubles(b, (size_t)lwork);
        st = cusolverDnDgesvd(solver, 'S', 'S', rows, cols, dcopy, rows, dS, dU, rows, dVT, p,
                              work, lwork, NULL, dinfo);
        if (st != CUSOLVER_STATUS_SUCCESS || (info = download_info(dinfo)) != 0)
            return an_fail("an_cuda_svd_thin: cuSOLVER SVD failed (info %d) on %d x %d", info,
                           rows, cols);
        double *vt = (double *)an_malloc((size_t)p * cols * sizeof(double));
        download_d(vt, dVT, (size_t)p * cols);
        for (int i = 0; i < cols; i++)
            for (int j = 0; j < p; j++) V[i + (size_t)j * cols] = vt[j + (size_t)i * p];
        free(vt);
    } else {
        download_d(V, dV, (size_t)cols * p);
    }
    download_d(U, dU, (size_t)rows * p);
    download_d(S, dS, (size_t)p);
    return 0;
}

// X (m x n) -> U (m x p), S (p), V (n x p)
extern "C" int an_cuda_svd_thin(const an_mat *X, an_svd *out) {
    int m = X->rows, n = X->cols, p = m < n ? m : n;
    memset(out, 0, sizeof *out);
    if (m <= 0 || n <= 0) return an_fail("an_cuda_svd_thin: empty matrix %d x %d", m, n);
    size_t total = (size_t)m * n;
    for (size_t i = 0; i < total; i++)
        if (!isfinite(X->data[i]))
            return an_fail("an_cuda_svd_thin: entry (%zu, %zu) of the %d x %d matrix is %g",
                           i / (size_t)n, i % (size_t)n, m, n, X->data[i]);
    if (solver_init("an_cuda_svd_thin") != 0) return -1;
    int wide = n >= m; // then the solver sees X^T (n x m): no transpose needed
    int rows = wide ? n : m, cols = wide ? m : n;
    double *h = (double *)an_malloc(total * sizeof(double));
    if (wide) {
        memcpy(h, X->data, total * sizeof(double));
    } else {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) h[i + (size_t)j * m] = AN_AT(X, i, j);
    }
    double *U = (double *)an_malloc((size_t)rows * p * sizeof(double));
    double *V = (double *)an_malloc((size_t)cols * p * sizeof(double));
    double *S = (double *)an_malloc((size_t)p * sizeof(double));
    dev_bufs b = {{0}, 0};
    double *dA = dev_doubles(&b, total);
    upload_d(dA, h, total);
    int rc = svd_tall(dA, rows, cols, U, S, V, &b);
    dev_free_all(&b);
    free(h);
    if (rc != 0) {
        free(U);
        free(V);
        free(S);
        return -1;
    }
    out->rows = m;
    out->cols = n;
    out->nsv = p;
    out->S = S;
    if (wide) { // X^T = U' S V'^T: X's left vectors are V', its right vectors U'
        out->U = from_col_major(V, m, p, cols);
        out->V = from_col_major(U, n, p, rows);
    } else {
        out->U = from_col_major(U, m, p, rows);
        out->V = from_col_major(V, n, p, cols);
    }
    free(U);
    free(V);
    an_svd_fix_signs(out);
    return 0;
}

// ----------------------------------------------------------------------------
// SVD of ΔW = s·B·A through two thin QRs and an r x r core (lowrank.h)

// B (d x r), A (r x k) -> U (d x q), S (q), V (k x q)
extern "C" int an_cuda_delta_svd(const an_mat *B, const an_mat *A, double s, an_svd *out) {
    memset(out, 0, sizeof *out);
    if (B->cols != A->rows)
        return an_fail("an_cuda_delta_svd: B is %d x %d but A is %d x %d: B's columns must equal "
                       "A's rows (the LoRA rank r)", B->rows, B->cols, A->rows, A->cols);
    if (!isfinite(s))
        return an_fail("an_cuda_delta_svd: scale s is %g, expected a finite number", s);
    int d = B->rows, k = A->cols;
    an_mat Qb = {0, 0, NULL}, Rb = {0, 0, NULL}, Qa = {0, 0, NULL}, Ra = {0, 0, NULL};
    an_mat core = {0, 0, NULL};
    an_mat At = an_mat_transpose(A);
    an_svd cs;
    memset(&cs, 0, sizeof cs);
    int rc = -1;
    if (an_cuda_qr_thin(B, &Qb, &Rb) != 0) goto done;    // Qb d x pb, Rb pb x r
    if (an_cuda_qr_thin(&At, &Qa, &Ra) != 0) goto done;  // Qa k x pa, Ra pa x r
    if (an_matmul(&Rb, 0, &Ra, 1, s, &core) != 0) goto done; // pb x pa
    if (an_cuda_svd_thin(&core, &cs) != 0) goto done;    // Uc pb x q, Vc pa x q
    out->rows = d;
    out->cols = k;
    out->nsv = cs.nsv;
    out->S = (double *)an_malloc((size_t)cs.nsv * sizeof(double));
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

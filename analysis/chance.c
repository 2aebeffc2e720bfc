#include "chance.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subspace.h"

// ----------------------------------------------------------------------------
// Seeds, Haar frames, percentiles

uint64_t an_chance_trial_seed(uint64_t seed, int t) {
    // splitmix64 of seed, then of (that ^ t): draws are independent streams.
    uint64_t z = seed + 0x9e3779b97f4a7c15ULL * ((uint64_t)t + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// Q (n x k) <- Q of Q's own thin QR with R's diagonal positive (Householder).
static int householder_orthonormalize(an_mat *Q) {
    int n = Q->rows, k = Q->cols;
    double *tau = an_malloc((size_t)k * sizeof(double));
    double *sign = an_malloc((size_t)k * sizeof(double));
    lapack_int info = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, n, k, Q->data, k, tau);
    if (info == 0) {
        for (int j = 0; j < k; j++) sign[j] = AN_AT(Q, j, j) < 0.0 ? -1.0 : 1.0;
        info = LAPACKE_dorgqr(LAPACK_ROW_MAJOR, n, k, k, Q->data, k, tau);
    }
    if (info == 0)
        for (int i = 0; i < n; i++)
            for (int j = 0; j < k; j++) AN_AT(Q, i, j) *= sign[j];
    free(tau);
    free(sign);
    if (info != 0) return an_fail("an_haar_frame: LAPACK failed (info %d) on %d x %d", (int)info, n, k);
    return 0;
}

// One Cholesky-QR pass: Q <- Q R^{-1}, RᵀR = QᵀQ (R upper, positive diagonal).
// Returns -1 (Q untouched) if QᵀQ is not numerically positive definite.
static int cholesky_qr_pass(an_mat *Q, double *A) {
    int n = Q->rows, k = Q->cols;
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, k, n, 1.0, Q->data, k, 0.0, A, k);
    if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', k, A, k) != 0) return -1;
    cblas_dtrsm(CblasRowMajor, CblasRight, CblasUpper, CblasNoTrans, CblasNonUnit, n, k, 1.0, A, k, Q->data, k);
    return 0;
}

// Q (n x k) <- Haar frame (Mezzadri 2007: QR of a Gaussian matrix, R's diagonal made positive)
int an_haar_frame(an_mat *Q, an_rng *rng) {
    int n = Q->rows, k = Q->cols;
    if (k < 1 || k > n) return an_fail("an_haar_frame: a %d x %d frame needs 1 <= columns <= rows", n, k);
    // Column by column: the first c columns of G, hence of Q (Q[:, :c] R[:c, :c] = G[:, :c]),
    // do not depend on how many columns are drawn.
    for (int j = 0; j < k; j++)
        for (int i = 0; i < n; i++) AN_AT(Q, i, j) = an_rng_normal(rng);
    // A tall Gaussian matrix (n >= 4k) is well conditioned (κ about 3), so two
    // Cholesky-QR passes (BLAS 3) give the same Q as Householder to rounding,
    // faster; both keep R's diagonal positive. Otherwise, or if a pass fails, Householder.
    if (n >= 4 * k) {
        double *A = an_malloc((size_t)k * k * sizeof(double));
        int rc = cholesky_qr_pass(Q, A);
        if (rc == 0) rc = cholesky_qr_pass(Q, A);
        free(A);
        if (rc == 0) return 0;
    }
    return householder_orthonormalize(Q);
}

// Gamma(a, 1) for a > 0 (Marsaglia & Tsang 2000; a < 1 through Gamma(a + 1) U^(1/a)).
static double gamma_variate(an_rng *rng, double a) {
    if (a < 1.0) {
        double u = 1.0 - an_rng_uniform(rng);  // (0, 1]
        return gamma_variate(rng, a + 1.0) * pow(u, 1.0 / a);
    }
    double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = an_rng_normal(rng), v = 1.0 + c * x;
        if (v <= 0.0) continue;
        v = v * v * v;
        double u = 1.0 - an_rng_uniform(rng);
        if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
        if (log(u) < 0.5 * x * x + d * (1.0 - v + log(v))) return d * v;
    }
}

// out (m x k) <- the first m rows of a Haar n x k frame. With n - m >= k the
// other n - m rows are never drawn: Q = G R^{-1} with RᵀR = GᵀG = G1ᵀG1 + G2ᵀG2,
// and G2ᵀG2 (k x k, Wishart with n - m degrees of freedom) is drawn by
// Bartlett's decomposition L Lᵀ (L lower triangular, L_jj² ~ χ²(n - m - j),
// L_ij ~ N(0, 1) below the diagonal), so a draw costs O(m k + k²) numbers and
// O(m k² + k³) flops instead of O(n k) and O(n k²). Column j of G1 and row j
// of L are drawn together, so the frames stay nested in k. Otherwise the full
// frame is drawn (an_haar_frame) and its top rows kept.
int an_haar_frame_rows(int n, int m, an_mat *out, an_rng *rng) {
    int k = out->cols;
    if (k < 1 || k > n || m < 1 || m > n || out->rows != m)
        return an_fail("an_haar_frame_rows: %d rows of a %d x %d frame into a %d x %d matrix", m, n, k, out->rows,
                       out->cols);
    if (n - m < k) {
        an_mat Q = an_mat_alloc(n, k);
        int rc = an_haar_frame(&Q, rng);
        if (rc == 0) memcpy(out->data, Q.data, (size_t)m * k * sizeof(double));
        an_mat_free(&Q);
        return rc;
    }
    double *L = an_calloc((size_t)k * k, sizeof(double)), *A = an_malloc((size_t)k * k * sizeof(double));
    for (int j = 0; j < k; j++) {
        for (int i = 0; i < m; i++) AN_AT(out, i, j) = an_rng_normal(rng);
        for (int i = 0; i < j; i++) L[(size_t)j * k + i] = an_rng_normal(rng);
        L[(size_t)j * k + j] = sqrt(2.0 * gamma_variate(rng, 0.5 * (double)(n - m - j)));
    }
    // A = G1ᵀG1 + L Lᵀ, then A = RᵀR (R upper, positive diagonal) and out = G1 R^{-1}.
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, k, k, k, 1.0, L, k, L, k, 0.0, A, k);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, k, m, 1.0, out->data, k, out->data, k, 1.0, A, k);
    lapack_int info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', k, A, k);
    if (info == 0)
        cblas_dtrsm(CblasRowMajor, CblasRight, CblasUpper, CblasNoTrans, CblasNonUnit, m, k, 1.0, A, k, out->data, k);
    free(L);
    free(A);
    if (info != 0) return an_fail("an_haar_frame_rows: Cholesky failed (info %d) for a %d x %d frame", (int)info, n, k);
    return 0;
}

static void swap(double *a, double *b) {
    double t = *a;
    *a = *b;
    *b = t;
}

// Rearranges x[0..n-1] so that x[k] is the k-th smallest, smaller (or equal)
// values before it and larger (or equal) after (Hoare's selection, middle pivot).
static void select_kth(double *x, int n, int k) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        double pivot = x[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (x[i] < pivot) i++;
            while (x[j] > pivot) j--;
            if (i <= j) swap(&x[i++], &x[j--]);
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return;
    }
}

double an_quantile(double *x, int n, double q) {
    double h = q * (double)(n - 1);
    int lo = (int)floor(h);
    if (lo < 0) lo = 0;
    if (lo > n - 1) lo = n - 1;
    select_kth(x, n, lo);
    double v = x[lo], frac = h - lo;
    if (frac <= 0.0 || lo == n - 1) return v;
    double next = x[lo + 1];  // the smallest value above position lo
    for (int i = lo + 2; i < n; i++) next = x[i] < next ? x[i] : next;
    return v + frac * (next - v);
}

double an_t975(int df) {
    static const double t[30] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                 2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                                 2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
    if (df < 1) return NAN;
    if (df <= 30) return t[df - 1];
    double z = 1.959963984540054, z2 = z * z, v = df;
    double g1 = z * (z2 + 1) / 4, g2 = z * ((5 * z2 + 16) * z2 + 3) / 96,
           g3 = z * (((3 * z2 + 19) * z2 + 17) * z2 - 15) / 384;
    return z + g1 / v + g2 / (v * v) + g3 / (v * v * v);
}

// The continued fraction of I_x(a, b) after its front factor:
// 1 / (1 + d1 / (1 + d2 / (1 + ...))), d_{2m+1} = −(a+m)(a+b+m) x / ((a+2m)(a+2m+1)),
// d_{2m} = m (b−m) x / ((a+2m−1)(a+2m)); fast for x < (a+1)/(a+b+2).
static double beta_fraction(double a, double b, double x) {
    const double tiny = 1e-300;
    double f = 1, C = 1, D = 0;
    for (int j = 1; j <= 1000; j++) {
        int m = j / 2;
        double d = j % 2 ? -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
                         : m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
        D = 1 + d * D;
        C = 1 + d / C;
        if (fabs(D) < tiny) D = tiny;
        if (fabs(C) < tiny) C = tiny;
        D = 1 / D;
        f *= C * D;
        if (fabs(C * D - 1) < 1e-15) break;
    }
    return 1 / f;
}

double an_incomplete_beta(double a, double b, double x) {
    if (!(a > 0) || !(b > 0) || !(x >= 0) || !(x <= 1)) return NAN;
    if (x == 0 || x == 1) return x;
    double front = exp(a * log(x) + b * log1p(-x) - log(a) - (lgamma(a) + lgamma(b) - lgamma(a + b)));
    if (x < (a + 1) / (a + b + 2)) return front * beta_fraction(a, b, x);
    return 1 - an_incomplete_beta(b, a, 1 - x);
}

double an_student_t_p2(double t, double df) {
    if (!(df > 0) || isnan(t)) return NAN;
    if (isinf(t)) return 0;
    return an_incomplete_beta(df / 2, 0.5, df / (df + t * t));
}

double an_welch(double m1, double s1, int n1, double m2, double s2, int n2, double *t, double *df) {
    *t = *df = NAN;
    if (n1 < 2 || n2 < 2) return NAN;
    double v1 = s1 * s1 / n1, v2 = s2 * s2 / n2;
    if (!(v1 + v2 > 0)) return NAN;
    *t = (m1 - m2) / sqrt(v1 + v2);
    *df = (v1 + v2) * (v1 + v2) / (v1 * v1 / (n1 - 1) + v2 * v2 / (n2 - 1));
    return an_student_t_p2(*t, *df);
}

void an_band_from_samples(double *x, int n, an_band *band) {
    band->trials = n;
    double sum = 0.0, sq = 0.0;
    for (int i = 0; i < n; i++) sum += x[i];
    double mean = sum / n;
    for (int i = 0; i < n; i++) sq += (x[i] - mean) * (x[i] - mean);
    band->mc_mean = mean;
    band->mc_sd = sqrt(sq / (n - 1));
    band->p01 = an_quantile(x, n, 0.01);
    band->p05 = an_quantile(x, n, 0.05);
    band->p95 = an_quantile(x, n, 0.95);
    band->p99 = an_quantile(x, n, 0.99);
}

// ----------------------------------------------------------------------------
// Moments of a Haar rank-r projector P in R^n:
// E[P_ab P_cd] = α δ_ab δ_cd + β (δ_ac δ_bd + δ_ad δ_bc).

static void projector_moments(int n, int r, double *alpha, double *beta) {
    if (r == n) {  // P = I
        *alpha = 1.0;
        *beta = 0.0;
        return;
    }
    double nn = n, rr = r, den = nn * (nn + 2.0) * (nn - 1.0);
    *alpha = rr * (rr * (nn + 1.0) - 2.0) / den;
    *beta = rr * (nn - rr) / den;
}

// ----------------------------------------------------------------------------
// φ of random subspaces

double an_phi_chance_mean(int i, int j, int n) { return (double)(i > j ? i : j) / (double)n; }

double an_phi_chance_var(int i, int j, int n) {
    if (n < 2) return 0.0;
    double a, b, mn = i < j ? i : j;
    projector_moments(n, i, &a, &b);
    // E[X²] = α j² + 2 β j (tr P_V = tr P_V² = j), which equals the closed form in chance.h.
    double ex = (double)i * j / n, ex2 = a * j * j + 2.0 * b * j;
    double var = ex2 - ex * ex;
    return (var > 0.0 ? var : 0.0) / (mn * mn);
}

const an_band *an_phi_chance_at(const an_phi_chance *c, int i, int j) {
    return &c->cells[(size_t)(i - 1) * c->jmax + (j - 1)];
}

// One draw of the grid: M (imax x jmax) = U^T V with one side a Haar frame
// of min(imax, jmax) columns, of which only the first max(imax, jmax) rows are
// drawn (H), and the other side the first coordinate vectors.
static int phi_draw(int imax, int jmax, int n, an_mat *H, uint64_t seed, double *M, double *grid) {
    an_rng rng;
    an_rng_seed(&rng, seed);
    if (an_haar_frame_rows(n, H->rows, H, &rng) != 0) return -1;
    for (int a = 0; a < imax; a++)
        for (int b = 0; b < jmax; b++)
            M[(size_t)a * jmax + b] = imax <= jmax ? AN_AT(H, b, a) : AN_AT(H, a, b);
    an_phi_grid_from_product(M, imax, jmax, grid);
    return 0;
}

// Samples held at once by an_phi_chance_compute (2^25 doubles, 256 MiB).
#define PHI_CHANCE_MAX_SAMPLES ((size_t)1 << 25)

// Draws t of one block of grid rows [i0, i1) into samples ([cell in block][trial])
// and, for the first block, each draw's grid mean into means. Draws run in
// parallel (OpenMP); each has its own generator, so the bits do not depend on
// the thread count. Returns 0, or -1 with the first failure's message.
static int phi_draws(int imax, int jmax, int n, int trials, uint64_t seed, int i0, int i1, double *samples,
                     double *means) {
    size_t cells = (size_t)imax * jmax, T = (size_t)trials;
    size_t first = (size_t)i0 * jmax, count = (size_t)(i1 - i0) * jmax;
    int failed = 0;
    char why[512] = "";
#pragma omp parallel reduction(| : failed)
    {
        double *M = an_malloc(cells * sizeof(double)), *grid = an_malloc(cells * sizeof(double));
        an_mat H = an_mat_alloc(imax > jmax ? imax : jmax, imax < jmax ? imax : jmax);
#pragma omp for schedule(static)
        for (int t = 0; t < trials; t++) {
            if (failed) continue;
            if (phi_draw(imax, jmax, n, &H, an_chance_trial_seed(seed, t), M, grid) != 0) {
#pragma omp critical(an_phi_chance_error)
                snprintf(why, sizeof why, "%s", an_error());
                failed = 1;
                continue;
            }
            for (size_t c = 0; c < count; c++) samples[c * T + (size_t)t] = grid[first + c];
            if (i0 > 0) continue;
            double sum = 0.0;
            for (size_t c = 0; c < cells; c++) sum += grid[c];
            means[t] = sum / (double)cells;
        }
        an_mat_free(&H);
        free(M), free(grid);
    }
    return failed ? an_fail("%s", why) : 0;
}

int an_phi_chance_compute(int imax, int jmax, int n, int trials, uint64_t seed, an_phi_chance *out) {
    memset(out, 0, sizeof *out);
    if (n < 1 || imax < 1 || jmax < 1 || imax > n || jmax > n)
        return an_fail("an_phi_chance_compute: grid %d x %d in R^%d: expected 1 <= imax, jmax <= n",
                       imax, jmax, n);
    if (trials < 2) return an_fail("an_phi_chance_compute: %d trials, expected at least 2", trials);
    size_t cells = (size_t)imax * jmax, T = (size_t)trials;
    // Rows i of the grid in blocks whose samples fit the cap; every block redraws
    // the same draws (per-draw seeds), so blocks change the time, not the bits.
    size_t block = PHI_CHANCE_MAX_SAMPLES / (T * (size_t)jmax);
    int rows = block < 1 ? 1 : block > (size_t)imax ? imax : (int)block;
    double *samples = an_malloc((size_t)rows * jmax * T * sizeof(double));  // [cell in block][trial]
    double *means = an_malloc(T * sizeof(double));
    *out = (an_phi_chance){imax, jmax, n, trials, seed, an_calloc(cells, sizeof(an_band)), {0, 0, 0, 0, 0, 0, 0, 0}};
    int rc = 0;
    for (int i0 = 0; i0 < imax && rc == 0; i0 += rows) {
        int i1 = i0 + rows < imax ? i0 + rows : imax;
        size_t first = (size_t)i0 * jmax, count = (size_t)(i1 - i0) * jmax;
        rc = phi_draws(imax, jmax, n, trials, seed, i0, i1, samples, means);
        if (rc != 0) break;
#pragma omp parallel for schedule(static)
        for (size_t c = 0; c < count; c++) {
            an_band *b = &out->cells[first + c];
            an_band_from_samples(&samples[c * T], trials, b);
            b->mean = an_phi_chance_mean((int)((first + c) / jmax) + 1, (int)((first + c) % jmax) + 1, n);
        }
    }
    if (rc == 0) {
        double exact_mean = 0.0;
        for (size_t c = 0; c < cells; c++) exact_mean += out->cells[c].mean;
        an_band_from_samples(means, trials, &out->grid_mean);
        out->grid_mean.mean = exact_mean / (double)cells;
    } else {
        an_phi_chance_free(out);
    }
    free(samples), free(means);
    return rc;
}

void an_phi_chance_free(an_phi_chance *c) {
    free(c->cells);
    memset(c, 0, sizeof *c);
}

// ----------------------------------------------------------------------------
// ‖UᵀWV‖_F for random U, V

static int check_projection_shapes(const char *who, int m, int d, int k, int r) {
    int p = d < k ? d : k;
    if (d < 1 || k < 1 || r < 1 || r > p)
        return an_fail("%s: W is %d x %d and r is %d: expected 1 <= r <= %d", who, d, k, r, p);
    if (m < 1 || m > p)
        return an_fail("%s: %d singular values given for a %d x %d matrix (expected 1..%d)", who, m, d, k, p);
    return 0;
}

int an_projected_norm_chance_moments(const double *sigma, int m, int d, int k, int r,
                                     double *mean_sq, double *var_sq) {
    if (check_projection_shapes("an_projected_norm_chance_moments", m, d, k, r) != 0) return -1;
    double s2 = 0.0, s4 = 0.0;
    for (int a = 0; a < m; a++) {
        double q = sigma[a] * sigma[a];
        s2 += q;
        s4 += q * q;
    }
    double ad, bd, ak, bk;
    projector_moments(d, r, &ad, &bd);
    projector_moments(k, r, &ak, &bk);
    double ey = (double)r * r * s2 / ((double)d * k);
    double ey2 = ad * (ak * s2 * s2 + 2.0 * bk * s4) + 2.0 * bd * (ak * s4 + bk * (s2 * s2 + s4));
    *mean_sq = ey;
    *var_sq = ey2 - ey * ey > 0.0 ? ey2 - ey * ey : 0.0;
    return 0;
}

// Workspace of one thread's draws of ‖UᵀWV‖_F.
typedef struct {
    int d, k, r;
    int mv;          // rows of V drawn: max(r, the most singular values given)
    an_mat V;        // mv x r: the first mv rows of a Haar k x r frame
    an_mat X;        // mv x r: diag(σ) V
    an_mat U;        // r x r: the first r rows of a Haar d x r frame
    double *S, *C;   // r x r each
} projection_work;

static projection_work projection_work_alloc(int d, int k, int r, int mv) {
    return (projection_work){d, k, r, mv, an_mat_alloc(mv, r), an_mat_alloc(mv, r), an_mat_alloc(r, r),
                             an_malloc((size_t)r * r * sizeof(double)), an_malloc((size_t)r * r * sizeof(double))};
}

static void projection_work_free(projection_work *w) {
    an_mat_free(&w->V), an_mat_free(&w->X), an_mat_free(&w->U);
    free(w->S), free(w->C);
}

// One draw's frames: V's first mv rows, then U's first r rows, from one generator.
static int projection_frames(projection_work *w, uint64_t seed) {
    an_rng rng;
    an_rng_seed(&rng, seed);
    if (an_haar_frame_rows(w->k, w->mv, &w->V, &rng) != 0) return -1;
    return an_haar_frame_rows(w->d, w->r, &w->U, &rng);
}

// ‖UᵀWV‖_F for this draw's frames and one W's singular values sigma (mv,
// zero-padded) = ‖U[:mv]ᵀ X‖_F, X = diag(σ) V[:mv] (W = its SVD's diag(σ) in
// rotated coordinates). U is Haar, so its law is unchanged by a rotation of
// R^d taking X's column space to the first r coordinates: with X = Q X̃ (X̃
// r x r upper triangular, X̃ᵀX̃ = XᵀX: the Cholesky factor, or R of X's QR
// when W has rank < r), ‖UᵀX‖_F has the law of ‖U[:r]ᵀ X̃‖_F.
static int projection_value(const double *sigma, projection_work *w, double *out) {
    int r = w->r, mv = w->mv;
    for (int a = 0; a < mv; a++)
        for (int b = 0; b < r; b++) AN_AT(&w->X, a, b) = sigma[a] * AN_AT(&w->V, a, b);
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, r, mv, 1.0, w->X.data, r, 0.0, w->S, r);
    if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', r, w->S, r) != 0) {
        double *tau = an_malloc((size_t)r * sizeof(double));
        lapack_int info = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, mv, r, w->X.data, r, tau);
        free(tau);
        if (info != 0) return an_fail("an_projected_norm_chance: QR failed (info %d)", (int)info);
        memcpy(w->S, w->X.data, (size_t)r * r * sizeof(double));
    }
    for (int i = 1; i < r; i++)
        for (int j = 0; j < i; j++) w->S[(size_t)i * r + j] = 0.0;
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, r, r, 1.0, w->U.data, r, w->S, r, 0.0, w->C, r);
    double sq = 0.0;
    for (int c = 0; c < r * r; c++) sq += w->C[c] * w->C[c];
    *out = sqrt(sq);
    return 0;
}

int an_projected_norm_chance_batch(const double *const *sigma, const int *m, int n_mat, int d, int k, int r,
                                   int trials, uint64_t seed, an_band *out) {
    if (n_mat < 1) return an_fail("an_projected_norm_chance_batch: %d matrices, expected at least 1", n_mat);
    int mv = r;
    for (int i = 0; i < n_mat; i++) {
        memset(&out[i], 0, sizeof out[i]);
        if (check_projection_shapes("an_projected_norm_chance", m[i], d, k, r) != 0) return -1;
        mv = m[i] > mv ? m[i] : mv;
    }
    if (trials < 2) return an_fail("an_projected_norm_chance: %d trials, expected at least 2", trials);
    // V's rows past a matrix's m meet σ = 0; at least r rows are drawn so that X̃ is r x r.
    double *sig = an_calloc((size_t)n_mat * mv, sizeof(double));
    double *x = an_malloc((size_t)n_mat * trials * sizeof(double));  // [matrix][draw]
    for (int i = 0; i < n_mat; i++) memcpy(&sig[(size_t)i * mv], sigma[i], (size_t)m[i] * sizeof(double));
    int failed = 0;
    char why[512] = "";
    // Every matrix meets the same draws (common random numbers); each draw has
    // its own generator, so the bits do not depend on the number of threads.
#pragma omp parallel reduction(| : failed)
    {
        projection_work w = projection_work_alloc(d, k, r, mv);
#pragma omp for schedule(static)
        for (int t = 0; t < trials; t++) {
            int rc = failed ? -1 : projection_frames(&w, an_chance_trial_seed(seed, t));
            for (int i = 0; i < n_mat && rc == 0; i++)
                rc = projection_value(&sig[(size_t)i * mv], &w, &x[(size_t)i * trials + t]);
            if (rc != 0 && !failed) {
#pragma omp critical(an_projection_error)
                snprintf(why, sizeof why, "%s", an_error());
                failed = 1;
            }
        }
        projection_work_free(&w);
    }
    for (int i = 0; i < n_mat && !failed; i++) {
        double mean_sq = 0.0, var_sq = 0.0;
        if (an_projected_norm_chance_moments(sigma[i], m[i], d, k, r, &mean_sq, &var_sq) != 0) {
            failed = 1;
            snprintf(why, sizeof why, "%s", an_error());
            break;
        }
        an_band_from_samples(&x[(size_t)i * trials], trials, &out[i]);
        out[i].mean = sqrt(mean_sq);
    }
    free(sig), free(x);
    return failed ? an_fail("%s", why) : 0;
}

int an_projected_norm_chance(const double *sigma, int m, int d, int k, int r, int trials,
                             uint64_t seed, an_band *out) {
    return an_projected_norm_chance_batch(&sigma, &m, 1, d, k, r, trials, seed, out);
}

int an_projected_norm_chance_trials(int d, int k, int r) {
    (void)d;  // U's r rows cost O(r³), independent of d
    double per_draw = 6.0 * k * (double)r * r + 20.0 * k * (double)r;
    double t = AN_CHANCE_FLOP_BUDGET / per_draw;
    return t >= AN_CHANCE_TRIALS ? AN_CHANCE_TRIALS : t <= AN_CHANCE_MIN_TRIALS ? AN_CHANCE_MIN_TRIALS : (int)t;
}

an_band an_factor_chance(double dw_norm, const an_band *proj) {
    an_band f;
    f.mean = proj->mean > 0.0 ? dw_norm / proj->mean : INFINITY;
    f.mc_mean = NAN;
    f.mc_sd = NAN;
    f.p01 = dw_norm / proj->p99;
    f.p05 = dw_norm / proj->p95;
    f.p95 = dw_norm / proj->p05;
    f.p99 = dw_norm / proj->p01;
    f.trials = proj->trials;
    return f;
}

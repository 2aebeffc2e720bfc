#include "chance.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
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

// Q (n x k) <- Haar frame (Mezzadri 2007: QR of a Gaussian matrix, R's diagonal made positive)
int an_haar_frame(an_mat *Q, an_rng *rng) {
    int n = Q->rows, k = Q->cols;
    if (k < 1 || k > n) return an_fail("an_haar_frame: a %d x %d frame needs 1 <= columns <= rows", n, k);
    // Column by column: the first c columns of G, hence of Q (Q[:, :c] R[:c, :c] = G[:, :c]),
    // do not depend on how many columns are drawn.
    for (int j = 0; j < k; j++)
        for (int i = 0; i < n; i++) AN_AT(Q, i, j) = an_rng_normal(rng);
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

void an_band_from_samples(double *x, int n, an_band *band) {
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

// One draw of the grid: M (imax x jmax) = U^T V with one side a Haar frame H
// of min(imax, jmax) columns and the other the first coordinate vectors.
static int phi_draw(int imax, int jmax, an_mat *H, uint64_t seed, double *M, double *grid) {
    an_rng rng;
    an_rng_seed(&rng, seed);
    if (an_haar_frame(H, &rng) != 0) return -1;
    for (int a = 0; a < imax; a++)
        for (int b = 0; b < jmax; b++)
            M[(size_t)a * jmax + b] = imax <= jmax ? AN_AT(H, b, a) : AN_AT(H, a, b);
    an_phi_grid_from_product(M, imax, jmax, grid);
    return 0;
}

int an_phi_chance_compute(int imax, int jmax, int n, int trials, uint64_t seed, an_phi_chance *out) {
    memset(out, 0, sizeof *out);
    if (n < 1 || imax < 1 || jmax < 1 || imax > n || jmax > n)
        return an_fail("an_phi_chance_compute: grid %d x %d in R^%d: expected 1 <= imax, jmax <= n",
                       imax, jmax, n);
    if (trials < 2) return an_fail("an_phi_chance_compute: %d trials, expected at least 2", trials);
    size_t cells = (size_t)imax * jmax, T = (size_t)trials;
    double *samples = an_malloc(cells * T * sizeof(double));  // [cell][trial]
    double *means = an_malloc(T * sizeof(double));
    double *M = an_malloc(cells * sizeof(double)), *grid = an_malloc(cells * sizeof(double));
    an_mat H = an_mat_alloc(n, imax < jmax ? imax : jmax);
    int rc = 0;
    for (int t = 0; t < trials && rc == 0; t++) {
        rc = phi_draw(imax, jmax, &H, an_chance_trial_seed(seed, t), M, grid);
        double sum = 0.0;
        for (size_t c = 0; c < cells; c++) {
            samples[c * T + (size_t)t] = grid[c];
            sum += grid[c];
        }
        means[t] = sum / (double)cells;
    }
    if (rc == 0) {
        *out = (an_phi_chance){imax, jmax, n, trials, seed, an_calloc(cells, sizeof(an_band)), {0, 0, 0, 0, 0, 0, 0}};
        double exact_mean = 0.0;
        for (int i = 1; i <= imax; i++)
            for (int j = 1; j <= jmax; j++) {
                an_band *b = &out->cells[(size_t)(i - 1) * jmax + (j - 1)];
                an_band_from_samples(&samples[((size_t)(i - 1) * jmax + (j - 1)) * T], trials, b);
                b->mean = an_phi_chance_mean(i, j, n);
                exact_mean += b->mean;
            }
        an_band_from_samples(means, trials, &out->grid_mean);
        out->grid_mean.mean = exact_mean / (double)cells;
    }
    an_mat_free(&H);
    free(samples), free(means), free(M), free(grid);
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

// One draw: U (d x r), V (k x r) Haar -> ‖U[:m]ᵀ diag(σ) V[:m]‖_F.
static int projection_draw(const double *sigma, int m, an_mat *U, an_mat *V, an_mat *Us, double *C,
                           uint64_t seed, double *out) {
    an_rng rng;
    an_rng_seed(&rng, seed);
    if (an_haar_frame(U, &rng) != 0 || an_haar_frame(V, &rng) != 0) return -1;
    int r = U->cols;
    for (int a = 0; a < m; a++)
        for (int b = 0; b < r; b++) AN_AT(Us, a, b) = sigma[a] * AN_AT(U, a, b);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, r, m, 1.0, Us->data, r, V->data, r, 0.0, C, r);
    double sq = 0.0;
    for (int c = 0; c < r * r; c++) sq += C[c] * C[c];
    *out = sqrt(sq);
    return 0;
}

int an_projected_norm_chance(const double *sigma, int m, int d, int k, int r, int trials,
                             uint64_t seed, an_band *out) {
    memset(out, 0, sizeof *out);
    if (check_projection_shapes("an_projected_norm_chance", m, d, k, r) != 0) return -1;
    if (trials < 2) return an_fail("an_projected_norm_chance: %d trials, expected at least 2", trials);
    an_mat U = an_mat_alloc(d, r), V = an_mat_alloc(k, r), Us = an_mat_alloc(m, r);
    double *C = an_malloc((size_t)r * r * sizeof(double)), *x = an_malloc((size_t)trials * sizeof(double));
    int rc = 0;
    for (int t = 0; t < trials && rc == 0; t++)
        rc = projection_draw(sigma, m, &U, &V, &Us, C, an_chance_trial_seed(seed, t), &x[t]);
    double mean_sq = 0.0, var_sq = 0.0;
    if (rc == 0) rc = an_projected_norm_chance_moments(sigma, m, d, k, r, &mean_sq, &var_sq);
    if (rc == 0) {
        an_band_from_samples(x, trials, out);
        out->mean = sqrt(mean_sq);
    }
    an_mat_free(&U), an_mat_free(&V), an_mat_free(&Us);
    free(C), free(x);
    return rc;
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
    return f;
}

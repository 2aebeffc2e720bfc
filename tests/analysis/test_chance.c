// Tests for analysis/chance: the chance bands of φ and of ‖UᵀWV‖_F.
//
// Every statistical check states its tolerance in standard errors (s.e.) of
// the quantity compared; seeds are fixed, so a test gives the same verdict on
// every run. Three independent routes meet here: the exact formulas of
// chance.h, the library's Monte Carlo (Haar frames by QR), and brute force
// (Gaussian matrices -> full SVD, as the random baselines of subspace.h and
// amplify.h draw them), plus exact Beta quantiles by numerical integration.
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "an_testutil.h"
#include "analysis.h"
#include "harness.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// ----------------------------------------------------------------------------
// Building blocks

static void test_quantile_interpolates_like_numpy(void) {
    // Sorted: 1 1 2 3 4 5 6 9. q = 0.5 -> position 3.5 -> 3.5; q = 0.95 ->
    // position 6.65 -> 6 + 0.65 (9 - 6) = 7.95 (numpy.percentile's default).
    double base[8] = { 3, 1, 4, 1, 5, 9, 2, 6 }, x[8];
    double q[5] = { 0.0, 0.5, 0.95, 1.0, 0.01 }, want[5] = { 1.0, 3.5, 7.95, 9.0, 1.0 };
    for (int c = 0; c < 5; c++) {
        memcpy(x, base, sizeof x);
        CHECK_NEAR(an_quantile(x, 8, q[c]), want[c], 1e-12);
    }
    // Against sorting, on 1001 Gaussian values with ties.
    an_mat g = an_mat_gaussian(1, 1001, 7);
    for (int i = 0; i < 1001; i += 10) g.data[i] = 0.5;
    double *sorted = malloc(sizeof(double) * 1001), *work = malloc(sizeof(double) * 1001);
    memcpy(sorted, g.data, sizeof(double) * 1001);
    qsort(sorted, 1001, sizeof(double), cmp_double);
    for (int c = 0; c <= 100; c++) {
        double qq = c / 100.0, h = qq * 1000.0;
        int lo = (int)floor(h);
        double expect = lo >= 1000 ? sorted[1000] : sorted[lo] + (h - lo) * (sorted[lo + 1] - sorted[lo]);
        memcpy(work, g.data, sizeof(double) * 1001);
        CHECK_CLOSE(an_quantile(work, 1001, qq), expect, 1e-14, 1e-15);
    }
    free(sorted), free(work), an_mat_free(&g);
}

// Student's t CDF at x >= 0 by Simpson's rule on the density (an independent
// route to the quantile): 1/2 + ∫₀ˣ Γ((ν+1)/2) / (√(νπ) Γ(ν/2)) (1 + u²/ν)^(−(ν+1)/2) du.
static double student_t_cdf(double x, int df) {
    double v = df, c = exp(lgamma((v + 1) / 2) - lgamma(v / 2)) / sqrt(v * M_PI), s = 0;
    int n = 20000; // even
    double h = x / n;
    for (int i = 0; i <= n; i++) {
        double u = i * h, f = c * pow(1 + u * u / v, -(v + 1) / 2);
        s += (i == 0 || i == n ? 1 : i % 2 ? 4 : 2) * f;
    }
    return 0.5 + s * h / 3;
}

// The 95% interval factor: P(T ≤ an_t975(ν)) = 0.975 for the table's ν
// (3 decimals: within 5e-5 in probability) and the expansion's beyond 30
// (within 1e-5, i.e. about 1e-4 in t); t(1) = 12.706, t(∞) → 1.96.
static void test_t975_is_the_student_t_quantile(void) {
    int dfs[] = {1, 2, 3, 4, 5, 9, 10, 19, 29, 30, 31, 35, 40, 60, 120, 1000};
    for (size_t i = 0; i < LS_COUNT(dfs); i++) {
        double t = an_t975(dfs[i]), p = student_t_cdf(t, dfs[i]);
        CHECK_MSG(fabs(p - 0.975) <= (dfs[i] <= 30 ? 5e-5 : 1e-5), "df %d: t %.5f has P = %.7f", dfs[i], t, p);
    }
    CHECK_NEAR(an_t975(1), 12.706, 1e-9);
    CHECK_NEAR(an_t975(1000000), 1.959964, 1e-5);
    CHECK(isnan(an_t975(0)));
}

// The two-sided p of Student's t against the density integrated
// (student_t_cdf, real df through lgamma), at integer and fractional df (a
// Welch df is fractional); the 95% factor gives 0.05; Welch's test against
// its formulas on a hand example.
static void test_student_t_p_value_and_welch_test(void) {
    double dfs[] = {1, 2.5, 4, 9.7, 30, 100}, ts[] = {0, 0.5, 2, 4.2};
    for (size_t i = 0; i < LS_COUNT(dfs); i++)
        for (size_t k = 0; k < LS_COUNT(ts); k++) {
            double v = dfs[i], c = exp(lgamma((v + 1) / 2) - lgamma(v / 2)) / sqrt(v * M_PI), sum = 0;
            int n = 20000;
            double h = ts[k] / n;
            for (int j = 0; j <= n; j++)
                sum += (j == 0 || j == n ? 1 : j % 2 ? 4 : 2) * c * pow(1 + (j * h) * (j * h) / v, -(v + 1) / 2);
            double want = 1 - 2 * sum * h / 3; // 2 (1 − CDF(t))
            CHECK_MSG(fabs(an_student_t_p2(ts[k], v) - want) < 1e-9 && fabs(an_student_t_p2(-ts[k], v) - want) < 1e-9,
                      "df %g, t %g: p %.12f, integrated %.12f", v, ts[k], an_student_t_p2(ts[k], v), want);
        }
    for (int df = 1; df <= 40; df += 3) CHECK_NEAR(an_student_t_p2(an_t975(df), df), 0.05, 2e-4);
    CHECK(isnan(an_student_t_p2(1, 0)));
    CHECK_NEAR(an_incomplete_beta(2, 3, 0.4), 0.5248, 1e-12); // 1 − (1−x)⁴ − 4x(1−x)³ = 0.5248
    // Welch: means 3 and 1, stds 1 and 2, n 4 and 5: t = 2 / √(1/4 + 4/5) = 1.95180,
    // df = 1.05² / ((1/4)²/3 + (4/5)²/4) = 6.08448.
    double t, df, p = an_welch(3, 1, 4, 1, 2, 5, &t, &df);
    CHECK_NEAR(t, 2 / sqrt(1.05), 1e-12);
    CHECK_NEAR(df, 1.05 * 1.05 / (0.0625 / 3 + 0.64 / 4), 1e-12);
    CHECK_NEAR(p, an_student_t_p2(t, df), 0);
    CHECK(isnan(an_welch(3, 1, 1, 1, 2, 5, &t, &df)) && isnan(t) && isnan(df));
    CHECK(isnan(an_welch(3, 0, 3, 1, 0, 3, &t, &df)));
}

static void test_haar_frame_is_orthonormal_and_sign_unbiased(void) {
    // Without the sign fix, Householder QR makes Q[0][0] = -|g_00| / ‖g_0‖
    // (mean about -0.25 at n = 10). A Haar frame's entries have mean 0 and
    // variance 1/n: checked over 4000 draws within 4 s.e. (s.e. of the mean
    // sqrt(1/(n T)); of the mean square, from the samples). n = 10 takes the
    // Householder route, n = 40 (>= 4k) the Cholesky-QR one.
    int ns[2] = { 10, 40 }, k = 3, T = 4000;
    for (int c = 0; c < 2; c++) {
        int n = ns[c];
        an_mat H = an_mat_alloc(n, k);
        double sum[3] = { 0 }, sq[3] = { 0 }, sq2[3] = { 0 }, worst = 0.0;
        for (int t = 0; t < T; t++) {
            an_rng rng;
            an_rng_seed(&rng, an_chance_trial_seed(5, t));
            CHECK_INT(an_haar_frame(&H, &rng), 0);
            double e = tu_orthonormality_error(&H);
            worst = e > worst ? e : worst;
            for (int j = 0; j < k; j++) {
                double h = AN_AT(&H, 0, j);
                sum[j] += h, sq[j] += h * h, sq2[j] += h * h * h * h;
            }
        }
        CHECK_MSG(worst < 1e-13, "n %d: worst orthonormality error %.3g", n, worst);
        for (int j = 0; j < k; j++) {
            double mean = sum[j] / T, ms = sq[j] / T, se_ms = sqrt((sq2[j] / T - ms * ms) / T);
            double se = sqrt(1.0 / (n * (double)T));
            CHECK_MSG(fabs(mean) <= 4.0 * se, "n %d column %d: mean of Q[0][%d] = %.4f, expected 0 within %.4f", n, j,
                      j, mean, 4.0 * se);
            CHECK_MSG(fabs(ms - 1.0 / n) <= 4.0 * se_ms, "n %d column %d: mean square %.5f, expected 1/n = %.5f "
                      "within %.5f", n, j, ms, 1.0 / n, 4.0 * se_ms);
        }
        an_mat_free(&H);
    }
    an_mat H0 = an_mat_alloc(3, 4);
    an_rng rng;
    an_rng_seed(&rng, 1);
    CHECK_INT(an_haar_frame(&H0, &rng), -1);
    an_mat_free(&H0);
}

static void test_haar_frame_rows_have_the_law_of_a_frames_top_rows(void) {
    // The first m rows of a Haar n x k frame: ‖column j‖² ~ Beta(m/2, (n-m)/2)
    // (mean m/n, variance 2 m (n-m) / (n² (n+2))), distinct columns orthogonal
    // in the full frame, so E[c_0 · c_1] over the top rows is 0 (its variance
    // from the samples). 4000 draws through Bartlett's route (n - m >= k) and
    // 4000 through the full frame (n - m < k): means within 4 s.e., the
    // variance within 15% (about 5 s.e. of a sample variance at T = 4000).
    int n = 40, k = 3, ms[2] = { 6, 38 }, T = 4000;
    for (int c = 0; c < 2; c++) {
        int m = ms[c];
        an_mat out = an_mat_alloc(m, k);
        an_rng rng;
        an_rng_seed(&rng, 77 + c);
        double sum = 0, sq = 0, dot = 0, dot2 = 0;
        for (int t = 0; t < T; t++) {
            CHECK_INT(an_haar_frame_rows(n, m, &out, &rng), 0);
            double c0 = 0, d01 = 0;
            for (int i = 0; i < m; i++) c0 += AN_AT(&out, i, 2) * AN_AT(&out, i, 2), d01 += AN_AT(&out, i, 0) * AN_AT(&out, i, 1);
            sum += c0, sq += c0 * c0, dot += d01, dot2 += d01 * d01;
        }
        double mean = sum / T, var = sq / T - mean * mean, want = (double)m / n;
        double want_var = 2.0 * m * (n - m) / ((double)n * n * (n + 2));
        double se_dot = sqrt(dot2 / T / T);
        printf("m = %d of n = %d: mean ‖col‖² %.5f (exact %.5f), variance %.6f (exact %.6f), mean c0·c1 %.5f\n", m, n,
               mean, want, var, want_var, dot / T);
        CHECK_MSG(fabs(mean - want) <= 4.0 * sqrt(want_var / T), "m %d: mean %.5f, exact %.5f", m, mean, want);
        CHECK_MSG(fabs(var - want_var) <= 0.15 * want_var, "m %d: variance %.6f, exact %.6f (15%%)", m, var, want_var);
        CHECK_MSG(fabs(dot / T) <= 4.0 * se_dot, "m %d: mean c0·c1 %.5f, 4 s.e. %.5f", m, dot / T, 4.0 * se_dot);
        an_mat_free(&out);
    }
    an_mat bad = an_mat_alloc(5, 3);
    an_rng rng;
    an_rng_seed(&rng, 1);
    CHECK_INT(an_haar_frame_rows(40, 6, &bad, &rng), -1);
    an_mat_free(&bad);
}

// ----------------------------------------------------------------------------
// φ of random subspaces

static void test_phi_chance_mean_matches_exact_expectation(void) {
    // E[φ(i, j)] = max(i, j)/n exactly; the Monte Carlo mean of every cell
    // (T = 2000 draws) must sit within 4 s.e. = 4 sqrt(Var[φ]/T) of it,
    // Var[φ] from the exact formula. Grids of the paper's kind at d = 64
    // (A: n = 64; B of Wv: n = 32) and a tiny full one (n = 5, where
    // φ(i, 5) = 1 with variance 0).
    int shapes[3][3] = { { 2, 16, 64 }, { 16, 16, 32 }, { 5, 5, 5 } };
    for (int s = 0; s < 3; s++) {
        int imax = shapes[s][0], jmax = shapes[s][1], n = shapes[s][2];
        an_phi_chance c;
        CHECK_INT(an_phi_chance_compute(imax, jmax, n, AN_CHANCE_TRIALS, 11 + s, &c), 0);
        double worst_z = 0.0;
        for (int i = 1; i <= imax; i++)
            for (int j = 1; j <= jmax; j++) {
                const an_band *b = an_phi_chance_at(&c, i, j);
                double se = sqrt(an_phi_chance_var(i, j, n) / AN_CHANCE_TRIALS);
                CHECK_NEAR(b->mean, (double)(i > j ? i : j) / n, 1e-15);
                CHECK_MSG(fabs(b->mc_mean - b->mean) <= 4.0 * se + 1e-12, "n %d cell (%d, %d): Monte Carlo "
                          "mean %.5f, exact %.5f, 4 s.e. %.5f", n, i, j, b->mc_mean, b->mean, 4.0 * se);
                if (se > 0) worst_z = fmax(worst_z, fabs(b->mc_mean - b->mean) / se);
                CHECK(b->p01 <= b->p05 && b->p05 <= b->p95 && b->p95 <= b->p99);
            }
        printf("n = %d, grid %d x %d: worst |MC mean - exact| = %.2f s.e.\n", n, imax, jmax, worst_z);
        an_phi_chance_free(&c);
    }
}

static void test_phi_chance_variance_matches_exact_formula(void) {
    // Var‖U_iᵀV_j‖²_F = 2 i j (n-i)(n-j) / (n² (n-1)(n+2)), checked against
    // 4000 independent draws of two Haar frames (both random, unlike the
    // library's one-frame shortcut) within 4 s.e. of the sample variance,
    // s.e. = sqrt((m4 - s⁴) / T) from the samples' fourth central moment.
    int n = 20, i = 3, j = 5, T = 4000;
    an_mat U = an_mat_alloc(n, i), V = an_mat_alloc(n, j);
    double *x = malloc(sizeof(double) * T), grid[15];
    an_rng rng;
    an_rng_seed(&rng, 99);
    for (int t = 0; t < T; t++) {
        CHECK_INT(an_haar_frame(&U, &rng), 0);
        CHECK_INT(an_haar_frame(&V, &rng), 0);
        CHECK_INT(an_phi_grid(&U, &V, i, j, grid), 0);
        x[t] = grid[i * j - 1] * (i < j ? i : j);  // ‖UᵀV‖²_F
    }
    double mean = 0, m2 = 0, m4 = 0;
    for (int t = 0; t < T; t++) mean += x[t] / T;
    for (int t = 0; t < T; t++) {
        double e = (x[t] - mean) * (x[t] - mean);
        m2 += e / T, m4 += e * e / T;
    }
    double exact = 2.0 * i * j * (n - i) * (n - j) / ((double)n * n * (n - 1) * (n + 2));
    double lib = an_phi_chance_var(i, j, n) * (i < j ? i : j) * (i < j ? i : j);
    CHECK_CLOSE(lib, exact, 1e-12, 0.0);
    double se = sqrt((m4 - m2 * m2) / T);
    printf("Var‖UᵀV‖² = %.5f (exact %.5f, %.2f s.e.); mean %.5f (exact i j/n = %.5f)\n", m2, exact,
           fabs(m2 - exact) / se, mean, (double)i * j / n);
    CHECK_MSG(fabs(m2 - exact) <= 4.0 * se, "sample variance %.5f, exact %.5f, 4 s.e. %.5f", m2, exact, 4.0 * se);
    CHECK_MSG(fabs(mean - (double)i * j / n) <= 4.0 * sqrt(exact / T), "mean %.5f, exact %.5f", mean,
              (double)i * j / n);
    free(x), an_mat_free(&U), an_mat_free(&V);
}

// ln of the Beta(a, b) density at x in (0, 1).
static double log_beta_pdf(double x, double a, double b) {
    return lgamma(a + b) - lgamma(a) - lgamma(b) + (a - 1) * log(x) + (b - 1) * log1p(-x);
}

// The q-quantile of Beta(a, b) (a, b >= 1) by Simpson's rule on a fine grid and
// linear interpolation of the CDF; its density there in *pdf.
static double beta_quantile(double a, double b, double q, double *pdf) {
    int m = 200000;  // even
    double h = 1.0 / m, cdf = 0.0, prev = 0.0;
    for (int s = 0; s < m; s += 2) {
        double x0 = s * h, x1 = x0 + h, x2 = x0 + 2 * h;
        double f0 = x0 > 0 ? exp(log_beta_pdf(x0, a, b)) : (a == 1 ? exp(lgamma(a + b) - lgamma(b)) : 0.0);
        double f2 = x2 < 1 ? exp(log_beta_pdf(x2, a, b)) : 0.0;
        cdf += h / 3 * (f0 + 4 * exp(log_beta_pdf(x1, a, b)) + f2);
        if (cdf >= q) {
            double x = x0 + 2 * h * (q - prev) / (cdf - prev);
            *pdf = exp(log_beta_pdf(x, a, b));
            return x;
        }
        prev = cdf;
    }
    *pdf = 0;
    return 1.0;
}

static void test_phi_chance_percentiles_match_exact_beta_quantiles(void) {
    // φ(1, j) in R^n is Beta(j/2, (n-j)/2). The Monte Carlo p95 and p99
    // (T = 2000) must lie within 4 s.e. of the exact quantiles, s.e. of a
    // sample quantile = sqrt(q (1-q) / T) / f(x_q). n = 64, φ(1, 16): mean
    // 0.25, p95 0.380, p99 0.446 (the levels quoted in issue 12).
    int cells[3][2] = { { 16, 64 }, { 2, 64 }, { 16, 32 } };
    for (int c = 0; c < 3; c++) {
        int j = cells[c][0], n = cells[c][1];
        an_phi_chance ch;
        CHECK_INT(an_phi_chance_compute(1, j, n, AN_CHANCE_TRIALS, 21 + c, &ch), 0);
        const an_band *b = an_phi_chance_at(&ch, 1, j);
        double q[2] = { 0.95, 0.99 }, got[2] = { b->p95, b->p99 };
        for (int t = 0; t < 2; t++) {
            double f, x = beta_quantile(j / 2.0, (n - j) / 2.0, q[t], &f);
            double se = sqrt(q[t] * (1 - q[t]) / AN_CHANCE_TRIALS) / f;
            printf("n = %d, φ(1, %d): p%.0f Monte Carlo %.4f, exact %.4f (%.2f s.e.)\n", n, j, 100 * q[t], got[t], x,
                   fabs(got[t] - x) / se);
            CHECK_MSG(fabs(got[t] - x) <= 4.0 * se, "n %d φ(1, %d) p%.0f: Monte Carlo %.4f, exact %.4f, 4 s.e. %.4f",
                      n, j, 100 * q[t], got[t], x, 4.0 * se);
        }
        an_phi_chance_free(&ch);
    }
}

// Fraction of samples above `level`.
static double fraction_above(const double *x, int n, double level) {
    int c = 0;
    for (int t = 0; t < n; t++) c += x[t] > level;
    return (double)c / n;
}

// Checks that the brute-force samples exceed the band's p95 / p99 at rates
// 0.05 / 0.01 within 4 s.e., s.e. = sqrt(q (1-q) (1/T_brute + 1/T_band))
// (both the band's percentile and the brute fraction are estimates).
static void check_exceedance(const char *what, const double *x, int tb, const an_band *b, int tc) {
    double q[2] = { 0.05, 0.01 }, level[2] = { b->p95, b->p99 };
    for (int t = 0; t < 2; t++) {
        double frac = fraction_above(x, tb, level[t]);
        double se = sqrt(q[t] * (1 - q[t]) * (1.0 / tb + 1.0 / tc));
        CHECK_MSG(fabs(frac - q[t]) <= 4.0 * se, "%s: %.4f of %d brute-force samples above the band's p%.0f "
                  "(%.4f), expected %.2f within %.4f", what, frac, tb, 100 * (1 - q[t]), level[t], q[t], 4.0 * se);
    }
}

static void test_phi_chance_percentiles_match_brute_force_svd(void) {
    // The slow independent route: two Gaussian matrices of an adapter's shape,
    // full SVD each (an_subspace_similarity_random_grid), 1500 seeds. A side
    // (2 x 64 vs 16 x 64, right vectors, n = 64) and B side of Wv (32 x 2 vs
    // 32 x 16, left vectors, n = 32); every cell of the 2 x 16 grid.
    int tb = 1500;
    for (int side = 0; side < 2; side++) {
        int n = side ? 32 : 64, imax = 2, jmax = 16;
        an_phi_chance ch;
        CHECK_INT(an_phi_chance_compute(imax, jmax, n, AN_CHANCE_TRIALS, 31 + side, &ch), 0);
        double *brute = malloc(sizeof(double) * (size_t)tb * imax * jmax), grid[32];
        for (int s = 0; s < tb; s++) {
            int rc = side ? an_subspace_similarity_random_grid(n, imax, n, jmax, AN_SIDE_LEFT, 5000 + s, imax, jmax, grid)
                          : an_subspace_similarity_random_grid(imax, n, jmax, n, AN_SIDE_RIGHT, 5000 + s, imax, jmax, grid);
            CHECK_INT(rc, 0);
            for (int c = 0; c < imax * jmax; c++) brute[(size_t)c * tb + s] = grid[c];
        }
        for (int i = 1; i <= imax; i++)
            for (int j = 1; j <= jmax; j++) {
                char what[96];
                snprintf(what, sizeof what, "%s side, n = %d, φ(%d, %d)", side ? "B" : "A", n, i, j);
                int c = (i - 1) * jmax + (j - 1);
                check_exceedance(what, &brute[(size_t)c * tb], tb, an_phi_chance_at(&ch, i, j), AN_CHANCE_TRIALS);
            }
        const an_band *b = an_phi_chance_at(&ch, 1, 16);
        printf("%s side n = %d: φ(1, 16) chance mean %.4f, p95 %.4f, p99 %.4f; brute force above p95: %.4f, "
               "above p99: %.4f\n", side ? "B" : "A", n, b->mean, b->p95, b->p99,
               fraction_above(&brute[15 * (size_t)tb], tb, b->p95), fraction_above(&brute[15 * (size_t)tb], tb, b->p99));
        free(brute);
        an_phi_chance_free(&ch);
    }
}

static void test_phi_chance_same_seed_same_bits(void) {
    an_phi_chance a, b, c;
    CHECK_INT(an_phi_chance_compute(3, 4, 24, 300, 7, &a), 0);
    CHECK_INT(an_phi_chance_compute(3, 4, 24, 300, 7, &b), 0);
    CHECK_INT(an_phi_chance_compute(3, 4, 24, 300, 8, &c), 0);
    CHECK_MSG(memcmp(a.cells, b.cells, 12 * sizeof(an_band)) == 0, "seed 7 twice gave different bands");
    CHECK(memcmp(&a.grid_mean, &b.grid_mean, sizeof(an_band)) == 0);
    int same = 0;
    for (int k = 0; k < 12; k++) same += a.cells[k].p95 == c.cells[k].p95;
    CHECK_MSG(same == 0, "seeds 7 and 8 agree on the p95 of %d of 12 cells", same);
    // The grid-mean band: exact mean of max(i, j)/n over the grid.
    double want = 0;
    for (int i = 1; i <= 3; i++)
        for (int j = 1; j <= 4; j++) want += (i > j ? i : j) / 24.0 / 12.0;
    CHECK_NEAR(a.grid_mean.mean, want, 1e-15);
    an_phi_chance_free(&a), an_phi_chance_free(&b), an_phi_chance_free(&c);
}

static void test_phi_chance_cells_agree_across_grid_shapes(void) {
    // One seed and n: φ(1, 16) gets the same draws in a 2 x 16, a 16 x 16 and
    // (as φ(16, 1)) a 16 x 2 grid, so a table's rows of one n show one band.
    an_phi_chance a, b, c;
    CHECK_INT(an_phi_chance_compute(2, 16, 64, 500, 5, &a), 0);
    CHECK_INT(an_phi_chance_compute(16, 16, 64, 500, 5, &b), 0);
    CHECK_INT(an_phi_chance_compute(16, 2, 64, 500, 5, &c), 0);
    const an_band *x = an_phi_chance_at(&a, 1, 16), *y = an_phi_chance_at(&b, 1, 16), *z = an_phi_chance_at(&c, 16, 1);
    CHECK_CLOSE(y->p95, x->p95, 1e-12, 0.0);
    CHECK_CLOSE(z->p95, x->p95, 1e-12, 0.0);
    CHECK_CLOSE(y->p99, x->p99, 1e-12, 0.0);
    CHECK_CLOSE(z->mc_mean, x->mc_mean, 1e-12, 0.0);
    CHECK_CLOSE(an_phi_chance_at(&b, 2, 9)->p95, an_phi_chance_at(&a, 2, 9)->p95, 1e-12, 0.0);
    an_phi_chance_free(&a), an_phi_chance_free(&b), an_phi_chance_free(&c);
}

static void test_phi_chance_rejects_bad_sizes(void) {
    an_phi_chance c;
    CHECK_INT(an_phi_chance_compute(0, 4, 24, 100, 1, &c), -1);
    CHECK_INT(an_phi_chance_compute(3, 25, 24, 100, 1, &c), -1);
    CHECK_STR_CONTAINS(an_error(), "grid 3 x 25 in R^24");
    CHECK_INT(an_phi_chance_compute(3, 4, 24, 1, 1, &c), -1);
    CHECK_STR_CONTAINS(an_error(), "1 trials");
}

// ----------------------------------------------------------------------------
// ‖UᵀWV‖_F and the amplification factor

// A d x k matrix with a spread spectrum σ_a = 8 / (a + 1) (as a trained W's falls).
static an_mat spread_matrix(int d, int k, uint64_t seed, double *sigma) {
    int p = d < k ? d : k;
    for (int a = 0; a < p; a++) sigma[a] = 8.0 / (a + 1);
    an_mat Qd = tu_random_orthogonal(d, seed), Qk = tu_random_orthogonal(k, seed + 1);
    an_mat W = tu_from_svd(&Qd, sigma, p, &Qk);
    an_mat_free(&Qd), an_mat_free(&Qk);
    return W;
}

static void test_projected_norm_chance_moments_match_monte_carlo(void) {
    // E‖UᵀWV‖²_F = r² ‖W‖²_F / (d k) and Var from S2, S4 (chance.h), against
    // 4000 draws of U, V (Haar frames) with UᵀWV formed directly from W (not
    // through σ), within 4 s.e. of the sample mean and variance.
    int d = 24, k = 16, r = 3, T = 4000;
    double sigma[16];
    an_mat W = spread_matrix(d, k, 41, sigma), U = an_mat_alloc(d, r), V = an_mat_alloc(k, r);
    double *y = malloc(sizeof(double) * T);
    an_rng rng;
    an_rng_seed(&rng, 42);
    for (int t = 0; t < T; t++) {
        double norm;
        CHECK_INT(an_haar_frame(&U, &rng), 0);
        CHECK_INT(an_haar_frame(&V, &rng), 0);
        CHECK_INT(an_projected_norm(&W, &U, &V, &norm), 0);
        y[t] = norm * norm;
    }
    double mean = 0, m2 = 0, m4 = 0;
    for (int t = 0; t < T; t++) mean += y[t] / T;
    for (int t = 0; t < T; t++) {
        double e = (y[t] - mean) * (y[t] - mean);
        m2 += e / T, m4 += e * e / T;
    }
    double ey, vy, wn = an_frobenius_norm(&W);
    CHECK_INT(an_projected_norm_chance_moments(sigma, k, d, k, r, &ey, &vy), 0);
    CHECK_CLOSE(ey, r * r * wn * wn / (d * k), 1e-12, 0.0);
    double se_mean = sqrt(vy / T), se_var = sqrt((m4 - m2 * m2) / T);
    printf("E‖UᵀWV‖² = %.5f, Monte Carlo %.5f (%.2f s.e.); Var exact %.5f, Monte Carlo %.5f (%.2f s.e.)\n", ey, mean,
           fabs(mean - ey) / se_mean, vy, m2, fabs(m2 - vy) / se_var);
    CHECK_MSG(fabs(mean - ey) <= 4.0 * se_mean, "mean %.5f, exact %.5f, 4 s.e. %.5f", mean, ey, 4.0 * se_mean);
    CHECK_MSG(fabs(m2 - vy) <= 4.0 * se_var, "variance %.5f, exact %.5f, 4 s.e. %.5f", m2, vy, 4.0 * se_var);
    // r = min(d, k): V spans R^k, so ‖UᵀW‖²_F has E = (r/d) S2 and the formula still holds.
    CHECK_INT(an_projected_norm_chance_moments(sigma, k, d, k, k, &ey, &vy), 0);
    CHECK_CLOSE(ey, (double)k / d * wn * wn, 1e-12, 0.0);
    CHECK_INT(an_projected_norm_chance_moments(sigma, k, d, k, 17, &ey, &vy), -1);
    free(y), an_mat_free(&W), an_mat_free(&U), an_mat_free(&V);
}

static void test_projected_norm_band_matches_brute_force_and_random_dw(void) {
    // The band of ‖UᵀWV‖_F (σ route, T = 2000) against brute force, 1500
    // draws each: (1) U, V from the full SVD of a Gaussian d x k matrix, W
    // multiplied directly; (2) Table 7's random baseline (proj_random, Haar
    // frames); (3) the factor of random rank-r updates ΔW = B·A of
    // Gaussian B, A, rescaled to one norm ν, against an_factor_chance(ν, band).
    // Exceedance rates of p95 / p99 within 4 s.e. (check_exceedance), and
    // of the lower percentiles p05 / p01 that the factor's p95 / p99 use.
    int d = 24, k = 16, r = 2, tb = 1500;
    double sigma[16], nu = 0.7;
    an_mat W = spread_matrix(d, k, 51, sigma);
    an_svd ws;
    CHECK_INT(an_svd_thin(&W, &ws), 0);
    an_band band;
    CHECK_INT(an_projected_norm_chance(ws.S, ws.nsv, d, k, r, AN_CHANCE_TRIALS, 52, &band), 0);
    CHECK_CLOSE(band.mean, r * an_frobenius_norm(&W) / sqrt((double)d * k), 1e-12, 0.0);
    CHECK(band.mc_mean < band.mean);  // Jensen: E‖·‖ < sqrt(E‖·‖²)
    an_band fb = an_factor_chance(nu, &band);
    double *proj = malloc(sizeof(double) * tb), *factor = malloc(sizeof(double) * tb);
    double *table7 = malloc(sizeof(double) * tb);
    for (int s = 0; s < tb; s++) {
        an_amplification am;
        an_mat G = an_mat_gaussian(d, k, 7000 + s), U, V;
        an_svd gs;
        CHECK_INT(an_svd_thin(&G, &gs), 0);
        U = an_mat_first_cols(&gs.U, r), V = an_mat_first_cols(&gs.V, r);
        CHECK_INT(an_projected_norm(&W, &U, &V, &proj[s]), 0);
        an_mat_free(&G), an_mat_free(&U), an_mat_free(&V), an_svd_free(&gs);
        an_mat B = an_mat_gaussian(d, r, 6000 + 2 * s), A = an_mat_gaussian(r, k, 6001 + 2 * s), dW;
        CHECK_INT(an_delta_dense(&B, &A, 1.0, &dW), 0);
        double scale = nu / an_frobenius_norm(&dW);
        CHECK_INT(an_amplification_lowrank(&W, &B, &A, scale, r, 9000 + s, &am), 0);
        table7[s] = am.proj_random;
        factor[s] = am.factor;
        CHECK_CLOSE(am.dw_norm, nu, 1e-12, 0.0);
        an_mat_free(&B), an_mat_free(&A), an_mat_free(&dW);
    }
    check_exceedance("‖UᵀWV‖_F of a Gaussian matrix's SVD", proj, tb, &band, AN_CHANCE_TRIALS);
    check_exceedance("Table 7's random baseline (Haar frames)", table7, tb, &band, AN_CHANCE_TRIALS);
    check_exceedance("factor of a random ΔW of norm ν", factor, tb, &fb, AN_CHANCE_TRIALS);
    // The lower tail of the norm (p05, p01) is what the factor's p95, p99 use.
    double below5 = 1.0 - fraction_above(proj, tb, band.p05), below1 = 1.0 - fraction_above(proj, tb, band.p01);
    printf("‖UᵀWV‖_F: RMS chance %.4f, MC mean %.4f, p01 %.4f p05 %.4f p95 %.4f p99 %.4f; brute force below p05 "
           "%.4f, below p01 %.4f, above p95 %.4f; random-ΔW factor above p95 %.4f\n", band.mean, band.mc_mean,
           band.p01, band.p05, band.p95, band.p99, below5, below1, fraction_above(proj, tb, band.p95),
           fraction_above(factor, tb, fb.p95));
    CHECK(fabs(below5 - 0.05) <= 4.0 * sqrt(0.05 * 0.95 * (1.0 / tb + 1.0 / AN_CHANCE_TRIALS)));
    CHECK(fabs(below1 - 0.01) <= 4.0 * sqrt(0.01 * 0.99 * (1.0 / tb + 1.0 / AN_CHANCE_TRIALS)));
    CHECK_CLOSE(fb.mean, nu / band.mean, 1e-15, 0.0);
    CHECK_CLOSE(fb.p99, nu / band.p01, 1e-15, 0.0);
    free(proj), free(factor), free(table7), an_svd_free(&ws), an_mat_free(&W);
}

static void test_projected_norm_chance_same_seed_same_bits(void) {
    double sigma[16];
    an_mat W = spread_matrix(20, 16, 61, sigma);
    an_band a, b, c;
    CHECK_INT(an_projected_norm_chance(sigma, 16, 20, 16, 4, 500, 3, &a), 0);
    CHECK_INT(an_projected_norm_chance(sigma, 16, 20, 16, 4, 500, 3, &b), 0);
    CHECK_INT(an_projected_norm_chance(sigma, 16, 20, 16, 4, 500, 4, &c), 0);
    CHECK(memcmp(&a, &b, sizeof a) == 0);
    CHECK(a.p95 != c.p95 && a.p99 != c.p99 && a.mean == c.mean);
    CHECK_INT(an_projected_norm_chance(sigma, 17, 20, 16, 4, 500, 3, &a), -1);
    CHECK_STR_CONTAINS(an_error(), "17 singular values given for a 20 x 16 matrix");
    an_mat_free(&W);
}

static void test_projected_norm_chance_trials_follow_the_flop_budget(void) {
    // 2,000 draws at the repro's shapes (d = 64, r <= 16); the budget's share
    // (4e8 flops over 6 k r² + 20 k r per draw) in between; never below 300.
    CHECK_INT(an_projected_norm_chance_trials(64, 64, 16), AN_CHANCE_TRIALS);
    CHECK_INT(an_projected_norm_chance_trials(64, 64, 2), AN_CHANCE_TRIALS);
    CHECK_INT(an_projected_norm_chance_trials(768, 768, 64), AN_CHANCE_MIN_TRIALS);
    int mid = an_projected_norm_chance_trials(768, 768, 8);
    CHECK_INT(mid, (int)(4e8 / (6.0 * 768 * 64 + 20.0 * 768 * 8)));
    CHECK(mid > AN_CHANCE_MIN_TRIALS && mid < AN_CHANCE_TRIALS);
    double sigma[8] = { 4, 3, 2, 1, 1, 1, 0.5, 0.5 };
    an_band b;
    CHECK_INT(an_projected_norm_chance(sigma, 8, 8, 8, 2, 321, 1, &b), 0);
    CHECK_INT(b.trials, 321);
}


// Layers share the draws of their shape: one batch gives each matrix the band
// its own call gives, with the same bits at 1 and 2 threads.
static void test_projected_norm_chance_batch_equals_single_at_any_thread_count(void) {
    double s1[16], s2[16], s3[16];
    for (int a = 0; a < 16; a++) s1[a] = 8.0 / (a + 1), s2[a] = 1.0, s3[a] = 16.0 - a;
    const double *sig[3] = {s1, s2, s3};
    int m[3] = {16, 16, 16};
    an_band one[3], batch1[3], batch2[3];
    for (int i = 0; i < 3; i++) CHECK_INT(an_projected_norm_chance(sig[i], 16, 20, 16, 4, 400, 9, &one[i]), 0);
    omp_set_num_threads(1);
    CHECK_INT(an_projected_norm_chance_batch(sig, m, 3, 20, 16, 4, 400, 9, batch1), 0);
    omp_set_num_threads(2);
    CHECK_INT(an_projected_norm_chance_batch(sig, m, 3, 20, 16, 4, 400, 9, batch2), 0);
    for (int i = 0; i < 3; i++) {
        CHECK(memcmp(&one[i], &batch1[i], sizeof one[i]) == 0);
        CHECK(memcmp(&batch1[i], &batch2[i], sizeof one[i]) == 0);
    }
    CHECK(one[0].p95 != one[1].p95);
}

static const ls_test tests[] = {
    LS_TEST(test_quantile_interpolates_like_numpy),
    LS_TEST(test_t975_is_the_student_t_quantile),
    LS_TEST(test_student_t_p_value_and_welch_test),
    LS_TEST(test_haar_frame_is_orthonormal_and_sign_unbiased),
    LS_TEST(test_haar_frame_rows_have_the_law_of_a_frames_top_rows),
    LS_TEST(test_phi_chance_mean_matches_exact_expectation),
    LS_TEST(test_phi_chance_variance_matches_exact_formula),
    LS_TEST(test_phi_chance_percentiles_match_exact_beta_quantiles),
    LS_TEST(test_phi_chance_percentiles_match_brute_force_svd),
    LS_TEST(test_phi_chance_same_seed_same_bits),
    LS_TEST(test_phi_chance_cells_agree_across_grid_shapes),
    LS_TEST(test_phi_chance_rejects_bad_sizes),
    LS_TEST(test_projected_norm_chance_moments_match_monte_carlo),
    LS_TEST(test_projected_norm_band_matches_brute_force_and_random_dw),
    LS_TEST(test_projected_norm_chance_same_seed_same_bits),
    LS_TEST(test_projected_norm_chance_batch_equals_single_at_any_thread_count),
    LS_TEST(test_projected_norm_chance_trials_follow_the_flop_budget),
};

int main(int argc, char **argv) { return ls_test_main(argc, argv, tests, LS_COUNT(tests)); }

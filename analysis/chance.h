// chance: what random matrices of the same shapes give for every statistic
// of Sec. 7 (Hu et al. 2021) — the level a measured value must clear before
// it says anything about what LoRA learned (DESIGN.md, "Chance levels").
//
// Random subspaces are uniformly (Haar) distributed: an i-dimensional
// subspace of R^n spanned by the top-i singular vectors of a Gaussian matrix
// is one, and so is the span of the first i columns of Q in the QR of an
// n x k Gaussian matrix once the signs are fixed (R with a positive
// diagonal; Mezzadri 2007). The Monte Carlo below draws such frames directly
// (O(n k²) per draw), never factorising an n x n or d x k Gaussian matrix.
//
// ----------------------------------------------------------------------------
// φ of two random subspaces (Eq. 4; Fig. 3, 4, 6, 7, 8)
//
// U_i (n x i), V_j (n x j) independent Haar frames, X = ‖U_iᵀ V_j‖²_F =
// tr(P_U P_V) (P the orthogonal projectors) and φ(i, j) = X / min(i, j).
// With E[P_U] = (i/n) I:
//   E[X] = i j / n,  so  E[φ(i, j)] = max(i, j) / n                    (exact)
// and from the second moments of a Haar projector (below, α and β):
//   Var[X] = 2 i j (n - i)(n - j) / (n² (n - 1)(n + 2)),
//   Var[φ(i, j)] = Var[X] / min(i, j)²                                   (exact)
// For i = 1, X ~ Beta(j/2, (n - j)/2). Example: n = 64, φ(1, 16) has mean
// 0.25, sd 0.106. Percentiles have no closed form: they come from Monte Carlo.
//
// Only one frame need be random: (U, V) has the law of (HᵀU, HᵀV) for any
// orthogonal H, so UᵀV has the law of the first j rows of a Haar n x i frame
// (V = the first j coordinate vectors), and the nested frames of one draw give
// the whole grid (i <= imax, j <= jmax) at once; only its first max(imax, jmax)
// rows are drawn (an_haar_frame_rows). The frame has min(imax, jmax)
// columns; for imax <= jmax it is the i side and φ(i, j) sums its first i
// columns over the first j rows (the transposed grid sums the same numbers).
// Frames are nested (an_haar_frame), so one seed gives φ(i, j) the same draws,
// hence the same band to rounding, in every grid of the same n that holds it.
//
// ----------------------------------------------------------------------------
// ‖UᵀWV‖_F for random directions (Table 7, App. H.4)
//
// W (d x k) with singular values σ, U (d x r) and V (k x r) independent Haar
// frames, Y = ‖UᵀWV‖²_F. With S2 = Σσ² = ‖W‖²_F and S4 = Σσ⁴ = ‖WᵀW‖²_F:
//   E[Y] = r² S2 / (d k)                                                 (exact)
// so the chance level of ‖UᵀWV‖_F is its root mean square r ‖W‖_F / √(d k)
// (E‖UᵀWV‖_F itself is a little lower, by Jensen; the Monte Carlo mean is
// reported beside it). For a Haar rank-r projector P in R^n and a symmetric A,
//   E[(tr PA)²] = α_n (tr A)² + 2 β_n tr(A²),
//   E[tr(PAPA)] = α_n tr(A²) + β_n ((tr A)² + tr(A²)),
//   α_n = r (r (n + 1) - 2) / (n (n + 2)(n - 1)),  β_n = r (n - r) / (n (n + 2)(n - 1))
// (α = 1, β = 0 when r = n), and conditioning on V:
//   E[Y²] = α_d (α_k S2² + 2 β_k S4) + 2 β_d (α_k S4 + β_k (S2² + S4))  (exact)
// Y depends on W only through σ (UᵀWV has the law of U[:p]ᵀ diag(σ) V[:p],
// p = min(d, k)). A draw takes the first p rows of V (k x r), X = diag(σ) V[:p],
// and, U being Haar, only the first r rows of U against the r x r Cholesky
// factor of XᵀX (a rotation of R^d moves X's columns onto the first r
// coordinates): O(k r² + p r² + r³) flops and k r + r² numbers per draw.
//
// A random ΔW of rank r and norm ‖ΔW‖_F (Gaussian factors B, A) has Haar
// U_ΔW, V_ΔW, so the amplification factor "any ΔW of that norm" shows is
// ‖ΔW‖_F / ‖UᵀWV‖_F with U, V as above: its chance level is
// ‖ΔW‖_F √(d k) / (r ‖W‖_F), and its percentiles are ‖ΔW‖_F over the lower
// percentiles of ‖UᵀWV‖_F (a decreasing map: p95 of the factor = ‖ΔW‖_F / p05
// of the norm). The measured factor over its chance level, equal to
// (r ‖W‖_F / √(d k)) / ‖U_ΔWᵀ W V_ΔW‖_F, is the scale-free amplification:
// 1 for a ΔW whose directions are random with respect to W.
//
// ----------------------------------------------------------------------------
// Monte Carlo: sizes, seeds, percentiles
//
// Draw t (0-based) uses its own generator, an_rng seeded with
// an_chance_trial_seed(seed, t), so a band is a function of (shape, trials,
// seed) alone: the same bits on every machine and however the draws are
// scheduled. Percentiles interpolate linearly between order statistics
// (numpy's default: position q (T - 1) in the sorted sample). With
// T = AN_CHANCE_TRIALS = 2000 draws the percentile *levels* are known to
// ±√(q (1 - q) / T): ±0.5 points at p95, ±0.22 at p99.
#ifndef AN_CHANCE_H
#define AN_CHANCE_H

#include <stdint.h>

#include "linalg.h"
#include "random.h"

#define AN_CHANCE_TRIALS 2000

// The chance band of one statistic.
typedef struct {
    double mean;     // the exact chance level: E[φ], or the RMS r‖W‖_F/√(dk) of ‖UᵀWV‖_F
    double mc_mean;  // the Monte Carlo mean of the statistic
    double mc_sd;    // its Monte Carlo standard deviation (divisor T - 1)
    double p01, p05, p95, p99;  // Monte Carlo percentiles
    int trials;      // the draws behind them
} an_band;

// ----------------------------------------------------------------------------
// Building blocks

// The generator seed of draw t of a band seeded with `seed` (splitmix64 of both).
uint64_t an_chance_trial_seed(uint64_t seed, int t);

// Q (n x k, allocated by the caller, 1 <= k <= n) <- a Haar-distributed frame:
// Q of the thin QR of an n x k N(0, 1) matrix drawn from rng column by
// column, each column multiplied by the sign of R's diagonal entry (for
// n >= 4k by two Cholesky-QR passes, BLAS 3, which give the same Q to
// rounding; else Householder). The first
// c columns depend only on the first c columns drawn, so frames of different
// widths from one seed are nested (to rounding). Returns 0, or -1 on shapes
// or a LAPACK failure.
int an_haar_frame(an_mat *Q, an_rng *rng);

// out (m x k, allocated by the caller) <- the first m rows of a Haar n x k
// frame (1 <= k <= n, 1 <= m <= n), drawn from rng. With n - m >= k the other
// n - m rows are never drawn: their Gram matrix is a Wishart matrix with
// n - m degrees of freedom, drawn by Bartlett's decomposition (χ² variates by
// Marsaglia-Tsang), and out = G1 R^{-1} with RᵀR = G1ᵀG1 + that matrix; O(m k
// + k²) numbers per draw instead of O(n k). Nested in k like an_haar_frame.
// Returns 0, or -1 on shapes or a LAPACK failure.
int an_haar_frame_rows(int n, int m, an_mat *out, an_rng *rng);

// The q-quantile (0 <= q <= 1) of x[0..n-1], n >= 1, by linear interpolation
// at position q (n - 1) of the sorted values (numpy's default). Reorders x
// (selection, O(n) expected; deterministic).
double an_quantile(double *x, int n, double q);

// Student's t with df degrees of freedom, its 97.5th percentile: the factor of
// a two-sided 95% interval for a mean, mean ± t·s/√n with df = n − 1. df 1..30
// from the table (3 decimals); beyond, the Cornish-Fisher expansion in 1/df
// around the normal's 1.959964 (within 1e-4). NAN for df < 1.
double an_t975(int df);

// The regularized incomplete beta function I_x(a, b), a, b > 0, 0 <= x <= 1,
// by its continued fraction (modified Lentz; the symmetric form beyond the
// mean); NAN outside the domain.
double an_incomplete_beta(double a, double b, double x);

// Two-sided p-value of Student's t with df > 0 (real) degrees of freedom:
// P(|T| >= |t|) = I_{df/(df+t²)}(df/2, 1/2). NAN for df <= 0 or t NAN.
double an_student_t_p2(double t, double df);

// Welch's unequal-variance t-test of two means (m, s: sample std, n >= 2
// each): t = (m1 − m2) / √(s1²/n1 + s2²/n2), *df by Welch–Satterthwaite;
// returns the two-sided p. NAN (and *t, *df NAN) where it is undefined: a
// group under 2, or both stds 0.
double an_welch(double m1, double s1, int n1, double m2, double s2, int n2, double *t, double *df);

// Fills band's Monte Carlo fields from n >= 2 samples (reordered); leaves mean.
void an_band_from_samples(double *x, int n, an_band *band);

// ----------------------------------------------------------------------------
// φ of random subspaces

// E[φ(i, j)] = max(i, j)/n and Var[φ(i, j)] (formulas above); 1 <= i, j <= n.
// The variance needs n >= 2 (it is 0 for n = 1).
double an_phi_chance_mean(int i, int j, int n);
double an_phi_chance_var(int i, int j, int n);

// The bands of a whole φ grid and of its mean over the grid.
typedef struct {
    int imax, jmax, n, trials;
    uint64_t seed;
    an_band *cells;      // imax x jmax, the band of φ(i, j) at [(i-1) * jmax + j-1] (owned)
    an_band grid_mean;   // the band of (1 / (imax jmax)) Σ_ij φ(i, j)
} an_phi_chance;

// The bands of φ(i, j) for an i-dimensional and a j-dimensional random
// subspace of R^n, for every i <= imax, j <= jmax (imax, jmax <= n), from
// `trials` >= 2 Monte Carlo draws seeded with `seed`. Memory: trials x imax x
// jmax doubles while it runs, at most 256 MiB: a larger grid is done in blocks
// of rows, each redrawing the same draws (more time, the same bits). Fills *out (free with an_phi_chance_free).
// Returns 0, or -1 on out-of-range sizes or a LAPACK failure.
int an_phi_chance_compute(int imax, int jmax, int n, int trials, uint64_t seed, an_phi_chance *out);
void an_phi_chance_free(an_phi_chance *c);
// The band of φ(i, j), 1 <= i <= imax, 1 <= j <= jmax.
const an_band *an_phi_chance_at(const an_phi_chance *c, int i, int j);

// ----------------------------------------------------------------------------
// ‖UᵀWV‖_F for random U, V; the amplification factor of a random ΔW

// E[Y] and Var[Y] of Y = ‖UᵀWV‖²_F (formulas above) for W (d x k) with the
// m <= min(d, k) nonzero singular values sigma, U, V random r-frames. Returns
// 0, or -1 if r is not in [1, min(d, k)] or m is out of range.
int an_projected_norm_chance_moments(const double *sigma, int m, int d, int k, int r,
                                     double *mean_sq, double *var_sq);

// The band of ‖UᵀWV‖_F (mean = r ‖W‖_F / √(d k)) from `trials` >= 2 draws
// seeded with `seed`. sigma, m, d, k, r as above. Returns 0, or -1.
int an_projected_norm_chance(const double *sigma, int m, int d, int k, int r, int trials,
                             uint64_t seed, an_band *out);

// The bands of n_mat matrices of one shape at once (sigma[i], m[i] as above,
// out[i] for each), every matrix meeting the same draws: an analysis's
// layers and modules share the draws of their shape, so a draw's frames are
// made once (the expensive part at d = 768) and bands of different layers
// differ only through W (common random numbers, as the φ bands share theirs
// by n). out[i] equals an_projected_norm_chance(sigma[i], m[i], ...) when
// every m[i] is the same (else V's rows drawn follow the largest m).
// Draws run in parallel (OpenMP); the bits do not depend on the thread
// count. Returns 0, or -1.
int an_projected_norm_chance_batch(const double *const *sigma, const int *m, int n_mat, int d, int k, int r,
                                   int trials, uint64_t seed, an_band *out);

// How many draws an analysis spends on one band of ‖UᵀWV‖_F: AN_CHANCE_TRIALS
// while a band costs at most AN_CHANCE_FLOP_BUDGET flops (about 6 k r² + 20 k r
// per draw), fewer for wide matrices and ranks, never below
// AN_CHANCE_MIN_TRIALS. Every layer has its own band, so at d = 768, r = 64 the
// full 2,000 draws would cost minutes; the exact mean does not depend on it and
// the percentiles' levels are known to ±√(q (1 - q) / trials) (±0.6 points
// at p99 with 300 draws).
#define AN_CHANCE_FLOP_BUDGET 4e8
#define AN_CHANCE_MIN_TRIALS 300
int an_projected_norm_chance_trials(int d, int k, int r);

// The band of the amplification factor ‖ΔW‖_F / ‖UᵀWV‖_F of a random ΔW of
// norm dw_norm, from the band of ‖UᵀWV‖_F: mean = dw_norm / proj->mean,
// p95 = dw_norm / proj->p05, p99 = dw_norm / proj->p01 (and p05, p01 from
// p95, p99). mc_mean and mc_sd are not defined by the map: set to NAN.
an_band an_factor_chance(double dw_norm, const an_band *proj);

#endif

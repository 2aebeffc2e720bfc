#include "spectrum.h"

#include <math.h>
#include <string.h>

#include "linalg.h"
#include "lowrank.h"

// ----------------------------------------------------------------------------
// Checks shared by every measure

static int check_spectrum(const double *sigma, int n, const char *who) {
    if (n < 1) return an_fail("%s: %d singular values, expected at least 1", who, n);
    for (int i = 0; i < n; i++) {
        if (!isfinite(sigma[i]) || sigma[i] < 0.0)
            return an_fail("%s: singular value %d is %g, expected finite and >= 0", who, i, sigma[i]);
        if (i > 0 && sigma[i] > sigma[i - 1])
            return an_fail("%s: singular values not sorted descending: σ_%d = %g > σ_%d = %g",
                           who, i, sigma[i], i - 1, sigma[i - 1]);
    }
    return 0;
}

// ----------------------------------------------------------------------------
// Effective rank and energy rank

int an_effective_rank(const double *sigma, int n, double *erank) {
    if (check_spectrum(sigma, n, "an_effective_rank") != 0) return -1;
    double total = 0.0;
    for (int i = 0; i < n; i++) total += sigma[i];
    if (total == 0.0) {
        *erank = 0.0;
        return 0;
    }
    double entropy = 0.0;
    for (int i = 0; i < n; i++) {
        double p = sigma[i] / total;
        if (p > 0.0) entropy -= p * log(p);
    }
    *erank = exp(entropy);
    return 0;
}

int an_energy_rank(const double *sigma, int n, double fraction, int *rank) {
    if (!(fraction > 0.0 && fraction <= 1.0))
        return an_fail("an_energy_rank: fraction is %g, expected in (0, 1]", fraction);
    if (check_spectrum(sigma, n, "an_energy_rank") != 0) return -1;
    // Scaled by σ_1 so that squares neither overflow nor underflow.
    double scale = sigma[0];
    if (scale == 0.0) {
        *rank = 0;
        return 0;
    }
    double total = 0.0;
    for (int i = 0; i < n; i++) total += (sigma[i] / scale) * (sigma[i] / scale);
    // Same summation order as total, so the last partial sum equals total exactly.
    double cum = 0.0;
    for (int i = 0; i < n; i++) {
        cum += (sigma[i] / scale) * (sigma[i] / scale);
        if (cum >= fraction * total) {
            *rank = i + 1;
            return 0;
        }
    }
    *rank = n;
    return 0;
}

int an_spectrum_summarize(const double *sigma, int n, double fraction,
                          an_spectrum_summary *out) {
    memset(out, 0, sizeof *out);
    if (an_energy_rank(sigma, n, fraction, &out->energy_rank) != 0) return -1;
    if (an_effective_rank(sigma, n, &out->effective_rank) != 0) return -1;
    out->n = n;
    out->energy_fraction = fraction;
    out->spectral = sigma[0];
    out->frobenius = an_frobenius_from_sigma(sigma, n);
    for (int i = 0; i < n; i++) out->nuclear += sigma[i];
    if (sigma[0] > 0.0)
        out->stable_rank = (out->frobenius / sigma[0]) * (out->frobenius / sigma[0]);
    return 0;
}

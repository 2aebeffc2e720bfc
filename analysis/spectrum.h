// spectrum: the singular spectrum of ΔW and its rank measures (beyond the
// paper: how low-rank is a LoRA or full fine-tuning update in practice?).
//
// All functions take singular values sorted descending and >= 0, as every
// SVD in this library returns them (an_svd.S).
#ifndef AN_SPECTRUM_H
#define AN_SPECTRUM_H

// Effective rank (Roy & Vetterli 2007): p_i = σ_i / Σ_j σ_j,
// erank = exp(-Σ_i p_i log p_i), with 0 log 0 = 0. It is k for k equal
// nonzero singular values, 1 for rank one, and 0 for the zero matrix.
// Returns 0 and sets *erank, or -1 if n < 1 or a value is negative or not finite.
int an_effective_rank(const double *sigma, int n, double *erank);

// The smallest m such that the top-m singular values hold at least `fraction`
// of the energy: Σ_{i<m} σ_i² >= fraction · Σ_i σ_i² (fraction 0.9 for "the
// rank holding 90% of ‖ΔW‖²_F"). 0 for the zero matrix.
// Returns 0 and sets *rank, or -1 if fraction is not in (0, 1], the values
// are not sorted descending, or one is negative or not finite.
int an_energy_rank(const double *sigma, int n, double fraction, int *rank);

// The usual summaries of one spectrum, for a table row.
typedef struct {
    int n;                  // number of singular values given
    double spectral;        // σ_1 = ‖ΔW‖_2
    double frobenius;       // sqrt(Σ σ_i²) = ‖ΔW‖_F
    double nuclear;         // Σ σ_i = ‖ΔW‖_*
    double stable_rank;     // ‖ΔW‖²_F / ‖ΔW‖²_2 (0 for the zero matrix)
    double effective_rank;  // as an_effective_rank
    double energy_fraction; // the fraction asked for
    int energy_rank;        // as an_energy_rank at energy_fraction
} an_spectrum_summary;

// Fills *out from sigma (n values). Returns 0, or -1 as an_energy_rank.
int an_spectrum_summarize(const double *sigma, int n, double fraction,
                          an_spectrum_summary *out);

#endif

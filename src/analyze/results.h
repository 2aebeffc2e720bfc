// results: what each analysis computes (analyses.c) and the renderer turns
// into tables, data files and figures (render.c). Cells are kept in the order
// the tables list them; a result owns its arrays (free with *_result_free).
#ifndef LS_ANALYZE_RESULTS_H
#define LS_ANALYZE_RESULTS_H

#include "analysis.h"
#include "analyze/analyze.h"
#include "analyze/inputs.h"
#include "report/report.h"

// The layers an analysis covers: [layer0, layer1).
typedef struct {
    int layer0, layer1;
} analyze_layers;

analyze_layers analyze_layer_range(const analyze_request *req, const analyze_inputs *in);

// ----------------------------------------------------------------------------
// subspace (Fig. 3, 4, 6, 7; App. H.2): per layer, then module

typedef struct {
    int layer, module;      // module: index into req->modules
    int imax, jmax;
    double *phi;            // imax x jmax, φ(X1, X2, i, j) at [(i-1) * jmax + j-1]
    double *phi_random;     // the same for two Gaussian matrices of the same shapes
    double mean, mean_random;
    int n;                  // the dimension the subspaces live in (k for A, d_out for B)
    int chance;             // index into subspace_result.chance: the bands of this grid
    double *phi_delta;      // φ(X1 − X1⁰, X2 − X2⁰, i, j) when both runs saved X⁰ (else NULL)
    double *phi_init;       // φ(X1⁰, X2⁰, i, j): the at-initialisation baseline (NaN where an X⁰ is 0: B₀)
} subspace_cell;

typedef struct {
    analyze_series a1, a2;
    analyze_layers layers;
    int n_cells;
    subspace_cell *cells;
    int n_chance;           // distinct (imax, jmax, n) among the cells
    an_phi_chance *chance;  // their chance bands (analysis/chance.h), seeded from req->seed
} subspace_result;

// The chance bands of φ for an imax x jmax grid in R^n: looked up in cache
// (*n_cache entries, room for one more) or computed with AN_CHANCE_TRIALS draws
// seeded by analyze_chance_seed. Returns the index, or -1 with ls_error() set.
int analyze_phi_chance(an_phi_chance *cache, int *n_cache, int imax, int jmax, int n, unsigned long long seed);
// The seed of the bands of one shape: a function of the request's seed and of
// the shape alone, so that every grid of that shape gets the same band.
uint64_t analyze_chance_seed(unsigned long long seed, int a, int b, int c);

int subspace_compute(const analyze_request *req, const analyze_inputs *in, subspace_result *res);
// The same for series s1 against s2 (subspace_compute is the pair 0, 1).
int subspace_compute_pair(const analyze_request *req, const analyze_inputs *in, int s1, int s2,
                          subspace_result *res);

// seeds.c: A − A₀, the at-initialisation baseline, φ(2, 2), and pairs of runs (issue 12).
// Fills x->phi_delta and x->phi_init when both series saved their initial factors.
int subspace_init_cell(const analyze_request *req, const analyze_inputs *in, int s1, int s2, const char *mod,
                       subspace_cell *x);
// Columns appended to subspace.tsv (header, then one row's), and the Markdown section.
void subspace_extra_tsv_header(strbuf *tsv);
void subspace_extra_tsv_row(const subspace_result *res, const subspace_cell *x, strbuf *tsv);
void subspace_extra_md(const subspace_result *res, const analyze_request *req, strbuf *md);
// <stem>_pairs.tsv (every pair) and <stem>_summary.tsv / .md (mean and 95% t-interval over the n pairs).
int subspace_pairs_render(const analyze_request *req, const subspace_result *res, int n);
int subspace_render(const analyze_request *req, const subspace_result *res, const char *data_dir);
void subspace_result_free(subspace_result *res);

// ----------------------------------------------------------------------------
// amplify (Table 7, App. H.4): per series, layer and module

typedef struct {
    analyze_layers layers;
    int n_series, n_modules;
    analyze_series *series;
    an_amplification *cells; // [(series * n_layers + layer - layer0) * n_modules + module]
    an_band *chance;         // the same index: band of ‖UᵀWV‖_F for random r-frames (chance.h);
                             // the factor's band is an_factor_chance(cell->dw_norm, chance)
} amplify_result;

an_amplification *amplify_at(const amplify_result *res, int series, int layer, int module);
an_band *amplify_chance_at(const amplify_result *res, int series, int layer, int module);
int amplify_compute(const analyze_request *req, const analyze_inputs *in, amplify_result *res);
int amplify_render(const analyze_request *req, const amplify_result *res, const char *data_dir);
void amplify_result_free(amplify_result *res);

// ----------------------------------------------------------------------------
// w-vs-dw (Fig. 8): per layer, module, then series (-1: the random baseline)

typedef struct {
    int layer, module, series;
    int imax, r;            // grid: W's top-imax directions x ΔW's (or random's) top-r
    double *phi;            // imax x r
    double mean, max, phi_rr;  // φ(min(r, imax), r): the grid's corner at the ΔW's rank
    int n;                  // d: the space of W's and ΔW's left singular vectors
    int chance;             // index into w_vs_dw_result.chance
} w_vs_dw_cell;

typedef struct {
    int n_series;
    analyze_series *series;
    int n_cells;
    w_vs_dw_cell *cells;
    int ncols;              // figure columns: (series + 1) x modules
    int n_chance;           // distinct (imax, r, d) among the cells
    an_phi_chance *chance;  // their chance bands (a random ΔW's top-r directions against W's top-imax)
} w_vs_dw_result;

int w_vs_dw_compute(const analyze_request *req, const analyze_inputs *in, w_vs_dw_result *res);
int w_vs_dw_render(const analyze_request *req, const w_vs_dw_result *res, const char *data_dir);
void w_vs_dw_result_free(w_vs_dw_result *res);

// ----------------------------------------------------------------------------
// spectrum: per series (or W), module, then layer

typedef struct {
    int series, module, layer;
    an_spectrum_summary sum;
    int n;
    double *sigma;          // n singular values, descending
} spectrum_cell;

typedef struct {
    int of_w;               // the spectra of W (no ΔW given)
    int n_series;           // 1 for W
    analyze_series *series;
    analyze_layers layers;
    int n_cells;
    spectrum_cell *cells;
} spectrum_result;

int spectrum_compute(const analyze_request *req, const analyze_inputs *in, spectrum_result *res);
int spectrum_render(const analyze_request *req, const spectrum_result *res, const char *data_dir);
void spectrum_result_free(spectrum_result *res);

// ----------------------------------------------------------------------------
// intruders (Shuttleworth et al. 2024): per series, module, then layer

typedef struct {
    int series, module, layer;
    an_intruders found;
    double min_cos;         // smallest max-cos of the k vectors (1 if none)
} intruders_cell;

typedef struct {
    int n_series;
    analyze_series *series;
    analyze_layers layers;
    int n_cells;
    intruders_cell *cells;
} intruders_result;

int intruders_compute(const analyze_request *req, const analyze_inputs *in, intruders_result *res);
int intruders_render(const analyze_request *req, const intruders_result *res, const char *data_dir);
void intruders_result_free(intruders_result *res);

#endif

// The five analyses over layers, modules and series: inputs -> result structs.
// The math of each cell is analysis/'s; errors name the flag to change.
#include <stdlib.h>
#include <string.h>

#include "analyze/results.h"
#include "base/util.h"

analyze_layers analyze_layer_range(const analyze_request *req, const analyze_inputs *in) {
    analyze_layers r = {req->layer < 0 ? analyze_inputs_first_layer(in) : req->layer,
                        req->layer < 0 ? analyze_inputs_n_layers(in) : req->layer + 1};
    return r;
}

static int n_layers_of(analyze_layers l) { return l.layer1 - l.layer0; }

// Every series' table entry (at least one element, so that callers may index 0).
static analyze_series *series_table(const analyze_inputs *in, int *n) {
    *n = analyze_inputs_n_series(in);
    analyze_series *s = ls_calloc((size_t)*n + 1, sizeof *s);
    for (int i = 0; i < *n; i++) analyze_inputs_series(in, i, &s[i]);
    return s;
}

static double grid_mean(const double *g, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += g[i];
    return s / n;
}

// ----------------------------------------------------------------------------
// Chance bands (analysis/chance.h), shared by every grid of one shape

uint64_t analyze_chance_seed(unsigned long long seed, int a, int b, int c) {
    return an_chance_trial_seed(an_chance_trial_seed(an_chance_trial_seed(seed, a), b), c);
}

int analyze_phi_chance(an_phi_chance *cache, int *n_cache, int imax, int jmax, int n, unsigned long long seed) {
    for (int c = 0; c < *n_cache; c++)
        if (cache[c].imax == imax && cache[c].jmax == jmax && cache[c].n == n) return c;
    an_phi_chance band;
    // Seeded by n alone: grids of one n share the draws of their common cells (chance.h).
    if (analyze_check(an_phi_chance_compute(imax, jmax, n, AN_CHANCE_TRIALS, analyze_chance_seed(seed, 0, 0, n),
                                            &band),
                      "chance band of φ"))
        return -1;
    cache[*n_cache] = band;
    return (*n_cache)++;
}

// ----------------------------------------------------------------------------
// subspace (Fig. 3, 4, 6, 7; App. H.2)

int subspace_compute(const analyze_request *req, const analyze_inputs *in, subspace_result *res) {
    return subspace_compute_pair(req, in, 0, 1, res);
}

int subspace_compute_pair(const analyze_request *req, const analyze_inputs *in, int s1, int s2,
                          subspace_result *res) {
    memset(res, 0, sizeof *res);
    analyze_inputs_series(in, s1, &res->a1);
    analyze_inputs_series(in, s2, &res->a2);
    res->layers = analyze_layer_range(req, in);
    res->cells = ls_calloc((size_t)n_layers_of(res->layers) * req->n_modules + 1, sizeof *res->cells);
    res->chance = ls_calloc((size_t)n_layers_of(res->layers) * req->n_modules + 1, sizeof *res->chance);
    an_side side = req->side_b ? AN_SIDE_LEFT : AN_SIDE_RIGHT;
    int rc = 0;
    for (int l = res->layers.layer0; l < res->layers.layer1 && !rc; l++)
        for (int mi = 0; mi < req->n_modules && !rc; mi++) {
            const char *mod = req->modules[mi];
            analyze_factors f1 = {0}, f2 = {0};
            rc = analyze_inputs_factors(in, s1, l, mod, &f1);
            if (!rc) rc = analyze_inputs_factors(in, s2, l, mod, &f2);
            const an_mat *x1 = req->side_b ? &f1.B : &f1.A, *x2 = req->side_b ? &f2.B : &f2.A;
            int shared = req->side_b ? x1->rows : x1->cols;
            int imax = f1.r < shared ? f1.r : shared, jmax = f2.r < shared ? f2.r : shared;
            double *g = NULL, *rg = NULL;
            if (!rc) {
                g = ls_malloc(sizeof(double) * imax * jmax);
                rg = ls_malloc(sizeof(double) * imax * jmax);
                rc = analyze_check(an_subspace_similarity_grid(x1, x2, side, imax, jmax, g), "subspace similarity");
            }
            if (!rc)
                rc = analyze_check(an_subspace_similarity_random_grid(x1->rows, x1->cols, x2->rows, x2->cols, side,
                                                                      req->seed + 1000003ull * l + mi, imax, jmax, rg),
                                   "random baseline");
            // The band lives in the side's own space: k for A, d_out of this module for B.
            int chance = rc ? -1 : analyze_phi_chance(res->chance, &res->n_chance, imax, jmax, shared, req->seed);
            if (chance < 0) rc = -1;
            if (!rc) {
                res->cells[res->n_cells++] = (subspace_cell){
                    l, mi, imax, jmax, g, rg, grid_mean(g, imax * jmax), grid_mean(rg, imax * jmax), shared, chance, NULL, NULL};
                rc = subspace_init_cell(req, in, s1, s2, mod, &res->cells[res->n_cells - 1]);
            } else {
                free(g);
                free(rg);
            }
            analyze_factors_free(&f1);
            analyze_factors_free(&f2);
        }
    return rc;
}

void subspace_result_free(subspace_result *res) {
    for (int i = 0; i < res->n_cells; i++) {
        free(res->cells[i].phi);
        free(res->cells[i].phi_random);
        free(res->cells[i].phi_delta);
        free(res->cells[i].phi_init);
    }
    for (int c = 0; c < res->n_chance; c++) an_phi_chance_free(&res->chance[c]);
    free(res->chance);
    free(res->cells);
    memset(res, 0, sizeof *res);
}

// ----------------------------------------------------------------------------
// amplify (Table 7, App. H.4)

static size_t amplify_index(const amplify_result *res, int series, int layer, int module) {
    size_t nl = (size_t)n_layers_of(res->layers);
    return ((size_t)series * nl + (size_t)(layer - res->layers.layer0)) * res->n_modules + module;
}

an_amplification *amplify_at(const amplify_result *res, int series, int layer, int module) {
    return &res->cells[amplify_index(res, series, layer, module)];
}

an_band *amplify_chance_at(const amplify_result *res, int series, int layer, int module) {
    return &res->chance[amplify_index(res, series, layer, module)];
}

// Table 7 for every series at one (layer, module), sharing W's SVD, and the
// chance band of ‖UᵀWV‖_F per rank (series of one rank share it).
static int amplify_layer_module(const analyze_request *req, const analyze_inputs *in, amplify_result *res, int l,
                                int mi) {
    const char *mod = req->modules[mi];
    an_mat W = {0};
    an_svd ws = {0};
    int rc = analyze_inputs_weight(in, l, mod, &W) || analyze_check(an_svd_thin(&W, &ws), "SVD of W") ? -1 : 0;
    for (int ai = 0; ai < res->n_series && !rc; ai++) {
        an_svd ds = {0};
        int lora_r = 0;
        rc = analyze_inputs_delta_svd(in, ai, l, mod, &ds, &lora_r);
        // Full fine-tuning has no rank of its own: project on --rank (default 8) directions.
        int r = req->rank ? req->rank : lora_r ? lora_r : 8;
        int have = lora_r ? lora_r : ds.nsv;
        an_amplification *cell = amplify_at(res, ai, l, mi);
        if (!rc && r > have) rc = ls_fail("--rank %d exceeds the rank %d of %s at layer %d", r, have, res->series[ai].dir, l);
        if (!rc)
            rc = analyze_check(an_amplification_from_svd(&W, &ws, &ds, r, req->seed + l, cell), "amplification");
        an_band *band = amplify_chance_at(res, ai, l, mi);
        int shared = -1;
        for (int bi = 0; bi < ai && !rc; bi++)
            if (amplify_at(res, bi, l, mi)->r == r) shared = bi;
        if (!rc && shared >= 0) *band = *amplify_chance_at(res, shared, l, mi);
        else if (!rc)
            rc = analyze_check(an_projected_norm_chance(ws.S, ws.nsv, W.rows, W.cols, r,
                                                        an_projected_norm_chance_trials(W.rows, W.cols, r),
                                                        analyze_chance_seed(req->seed, l, mi, r), band),
                               "chance band of ‖UᵀWV‖_F");
        an_svd_free(&ds);
    }
    an_svd_free(&ws);
    an_mat_free(&W);
    return rc;
}

int amplify_compute(const analyze_request *req, const analyze_inputs *in, amplify_result *res) {
    memset(res, 0, sizeof *res);
    res->series = series_table(in, &res->n_series);
    res->layers = analyze_layer_range(req, in);
    res->n_modules = req->n_modules;
    size_t n = (size_t)res->n_series * n_layers_of(res->layers) * req->n_modules + 1;
    res->cells = ls_calloc(n, sizeof *res->cells);
    res->chance = ls_calloc(n, sizeof *res->chance);
    int rc = 0;
    for (int l = res->layers.layer0; l < res->layers.layer1 && !rc; l++)
        for (int mi = 0; mi < req->n_modules && !rc; mi++) rc = amplify_layer_module(req, in, res, l, mi);
    return rc;
}

void amplify_result_free(amplify_result *res) {
    free(res->series);
    free(res->cells);
    free(res->chance);
    memset(res, 0, sizeof *res);
}

// ----------------------------------------------------------------------------
// w-vs-dw (Fig. 8)

// One grid: W's top-imax left directions against series ai's top-r (ai = -1:
// a Gaussian random matrix of W's shape).
static int w_vs_dw_cell_compute(const analyze_request *req, const analyze_inputs *in, const an_svd *ws, int l,
                                int mi, int ai, int imax, int r, w_vs_dw_cell *cell) {
    double *g = ls_malloc(sizeof(double) * imax * r);
    int rc;
    if (ai < 0) {
        rc = analyze_check(an_w_vs_random_grid(ws, AN_SIDE_LEFT, req->seed + l, imax, r, g), "W vs random");
    } else {
        an_svd ds = {0};
        rc = analyze_inputs_delta_svd(in, ai, l, req->modules[mi], &ds, NULL);
        if (!rc && r > ds.nsv) rc = ls_fail("--rank %d exceeds the rank %d of ΔW", r, ds.nsv);
        if (!rc) rc = analyze_check(an_w_vs_dw_grid(ws, &ds, AN_SIDE_LEFT, imax, r, g), "W vs ΔW");
        an_svd_free(&ds);
    }
    if (rc) {
        free(g);
        return rc;
    }
    double mx = 0;
    for (int k = 0; k < imax * r; k++) mx = g[k] > mx ? g[k] : mx;
    int rr = r < imax ? r : imax;
    *cell = (w_vs_dw_cell){l, mi, ai, imax, r, g, grid_mean(g, imax * r), mx, g[(rr - 1) * r + (r - 1)], ws->rows, 0};
    return 0;
}

int w_vs_dw_compute(const analyze_request *req, const analyze_inputs *in, w_vs_dw_result *res) {
    memset(res, 0, sizeof *res);
    res->series = series_table(in, &res->n_series);
    analyze_layers layers = analyze_layer_range(req, in);
    int ns = res->n_series;
    res->cells = ls_calloc((size_t)n_layers_of(layers) * req->n_modules * (ns + 1) + 1, sizeof *res->cells);
    res->chance = ls_calloc((size_t)n_layers_of(layers) * req->n_modules * (ns + 1) + 1, sizeof *res->chance);
    int rc = 0;
    for (int l = layers.layer0; l < layers.layer1 && !rc; l++)
        for (int mi = 0; mi < req->n_modules && !rc; mi++) {
            const char *mod = req->modules[mi];
            an_mat W = {0};
            an_svd ws = {0};
            if (analyze_inputs_weight(in, l, mod, &W) || analyze_check(an_svd_thin(&W, &ws), "SVD of W")) {
                an_mat_free(&W);
                rc = -1;
                break;
            }
            int imax = req->imax ? req->imax : (ws.nsv < 64 ? ws.nsv : 64);
            if (imax > ws.nsv) rc = ls_fail("--imax %d exceeds the rank %d of W%s", imax, ws.nsv, mod);
            res->ncols = (ns + 1) * req->n_modules;
            for (int ai = -1; ai < ns && !rc; ai++) {
                // ai = -1: the random baseline; its j range follows the first adapter's r.
                const analyze_series *s = &res->series[ai < 0 ? 0 : ai];
                // The module's own rank (rank_pattern), not the adapter's default r.
                int site_r = ns > 0 && s->is_lora ? analyze_inputs_site_rank(in, ai < 0 ? 0 : ai, l, mod) : 0;
                int r = req->rank ? req->rank : site_r > 0 ? site_r : 8;
                w_vs_dw_cell *cell = &res->cells[res->n_cells];
                rc = w_vs_dw_cell_compute(req, in, &ws, l, mi, ai, imax, r, cell);
                if (!rc) {
                    res->n_cells++;
                    cell->chance = analyze_phi_chance(res->chance, &res->n_chance, imax, r, cell->n, req->seed);
                    if (cell->chance < 0) rc = -1;
                }
            }
            an_svd_free(&ws);
            an_mat_free(&W);
        }
    return rc;
}

void w_vs_dw_result_free(w_vs_dw_result *res) {
    for (int i = 0; i < res->n_cells; i++) free(res->cells[i].phi);
    for (int c = 0; c < res->n_chance; c++) an_phi_chance_free(&res->chance[c]);
    free(res->chance);
    free(res->cells);
    free(res->series);
    memset(res, 0, sizeof *res);
}

// ----------------------------------------------------------------------------
// spectrum (beyond the paper)

int spectrum_compute(const analyze_request *req, const analyze_inputs *in, spectrum_result *res) {
    memset(res, 0, sizeof *res);
    res->series = series_table(in, &res->n_series);
    res->of_w = res->n_series == 0;
    if (res->of_w) res->n_series = 1;
    res->layers = analyze_layer_range(req, in);
    res->cells = ls_calloc((size_t)res->n_series * req->n_modules * n_layers_of(res->layers) + 1, sizeof *res->cells);
    int rc = 0;
    for (int si = 0; si < res->n_series && !rc; si++)
        for (int mi = 0; mi < req->n_modules && !rc; mi++)
            for (int l = res->layers.layer0; l < res->layers.layer1 && !rc; l++) {
                const char *mod = req->modules[mi];
                an_svd s = {0};
                if (res->of_w) {
                    an_mat W = {0};
                    rc = analyze_inputs_weight(in, l, mod, &W);
                    if (!rc) rc = analyze_check(an_svd_thin(&W, &s), "SVD of W");
                    an_mat_free(&W);
                } else {
                    rc = analyze_inputs_delta_svd(in, si, l, mod, &s, NULL);
                }
                an_spectrum_summary sum;
                if (!rc) rc = analyze_check(an_spectrum_summarize(s.S, s.nsv, req->energy, &sum), "spectrum");
                if (!rc) {
                    double *sigma = ls_malloc(sizeof(double) * (s.nsv + 1));
                    memcpy(sigma, s.S, sizeof(double) * s.nsv);
                    res->cells[res->n_cells++] = (spectrum_cell){si, mi, l, sum, s.nsv, sigma};
                }
                an_svd_free(&s);
            }
    return rc;
}

void spectrum_result_free(spectrum_result *res) {
    for (int i = 0; i < res->n_cells; i++) free(res->cells[i].sigma);
    free(res->cells);
    free(res->series);
    memset(res, 0, sizeof *res);
}

// ----------------------------------------------------------------------------
// intruders (Shuttleworth et al. 2024)

int intruders_compute(const analyze_request *req, const analyze_inputs *in, intruders_result *res) {
    memset(res, 0, sizeof *res);
    res->series = series_table(in, &res->n_series);
    res->layers = analyze_layer_range(req, in);
    res->cells = ls_calloc((size_t)res->n_series * req->n_modules * n_layers_of(res->layers) + 1, sizeof *res->cells);
    int rc = 0;
    for (int ai = 0; ai < res->n_series && !rc; ai++)
        for (int mi = 0; mi < req->n_modules && !rc; mi++)
            for (int l = res->layers.layer0; l < res->layers.layer1 && !rc; l++) {
                const char *mod = req->modules[mi];
                an_mat W = {0}, dW = {0};
                an_intruders found = {0};
                rc = analyze_inputs_delta_dense(in, ai, l, mod, &dW);
                if (!rc) rc = analyze_inputs_weight(in, l, mod, &W);
                if (!rc) {
                    int p = W.rows < W.cols ? W.rows : W.cols;
                    if (req->top_k > p) rc = ls_fail("--top-k %d exceeds the rank %d of W%s", req->top_k, p, mod);
                }
                if (!rc)
                    rc = analyze_check(an_intruder_dimensions(&W, &dW, req->top_k, req->eps, &found),
                                       "intruder dimensions");
                if (!rc) {
                    double minc = 1;
                    for (int k = 0; k < found.k; k++) minc = found.items[k].max_cos < minc ? found.items[k].max_cos : minc;
                    res->cells[res->n_cells++] = (intruders_cell){ai, mi, l, found, minc};
                } else {
                    an_intruders_free(&found);
                }
                an_mat_free(&W);
                an_mat_free(&dW);
            }
    return rc;
}

void intruders_result_free(intruders_result *res) {
    for (int i = 0; i < res->n_cells; i++) an_intruders_free(&res->cells[i].found);
    free(res->cells);
    free(res->series);
    memset(res, 0, sizeof *res);
}

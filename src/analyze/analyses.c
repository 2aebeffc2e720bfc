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
// Layers in parallel

// Runs fn(ctx, t) for t = 0..n-1 on OpenMP's threads. Each task writes only
// its own cells and its math is sequential (BLAS single-threaded, analyze.c),
// so the results are the same bits at any thread count. ls_error() belongs to
// the thread that failed: its message is kept, and the first failure in task
// order is returned, as the sequential loop would report it.
typedef int (*analyze_task_fn)(void *ctx, int t);

static int run_tasks(analyze_task_fn fn, void *ctx, int n) {
    char **why = ls_calloc((size_t)n + 1, sizeof *why);
#pragma omp parallel for schedule(dynamic, 1)
    for (int t = 0; t < n; t++)
        if (fn(ctx, t)) why[t] = ls_strdup(ls_error());
    int rc = 0;
    for (int t = 0; t < n; t++) {
        if (why[t] && !rc) rc = ls_fail("%s", why[t]);
        free(why[t]);
    }
    free(why);
    return rc;
}

// W at one (layer, module) with its top-k singular triplets and all its
// singular values (an_svd_top): one factorisation shared by every series.
typedef struct {
    an_mat W;
    an_svd top;
    double *sigma;  // all min(d, k) singular values, descending
} w_factor;

// k is clipped to W's rank bound min(d, k).
static int w_factor_compute(const analyze_inputs *in, int l, const char *mod, int k, w_factor *f) {
    memset(f, 0, sizeof *f);
    if (analyze_inputs_weight(in, l, mod, &f->W)) return -1;
    int p = f->W.rows < f->W.cols ? f->W.rows : f->W.cols;
    f->sigma = ls_malloc(sizeof(double) * p);
    return analyze_check(an_svd_top(&f->W, k < p ? k : p, &f->top, f->sigma), "SVD of W");
}

static void w_factor_free(w_factor *f) {
    an_mat_free(&f->W);
    an_svd_free(&f->top);
    free(f->sigma);
    memset(f, 0, sizeof *f);
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

typedef struct {
    const analyze_request *req;
    const analyze_inputs *in;
    subspace_result *res;
    int s1, s2;  // the pair of series compared
} subspace_ctx;

// The grid and its random baseline at one (layer, module): cell t.
static int subspace_task(void *vctx, int t) {
    subspace_ctx *c = vctx;
    const analyze_request *req = c->req;
    int l = c->res->layers.layer0 + t / req->n_modules, mi = t % req->n_modules;
    const char *mod = req->modules[mi];
    analyze_factors f1 = {0}, f2 = {0};
    int rc = analyze_inputs_factors(c->in, c->s1, l, mod, &f1);
    if (!rc) rc = analyze_inputs_factors(c->in, c->s2, l, mod, &f2);
    const an_mat *x1 = req->side_b ? &f1.B : &f1.A, *x2 = req->side_b ? &f2.B : &f2.A;
    an_side side = req->side_b ? AN_SIDE_LEFT : AN_SIDE_RIGHT;
    // The side's own space: k for A, d_out of this module for B.
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
    if (!rc) {
        c->res->cells[t] = (subspace_cell){l, mi, imax, jmax, g, rg, grid_mean(g, imax * jmax),
                                           grid_mean(rg, imax * jmax), shared, -1, NULL, NULL};
        // φ of A − A₀ and of A₀ where the runs saved A₀ (seeds.c)
        rc = subspace_init_cell(req, c->in, c->s1, c->s2, mod, &c->res->cells[t]);
    } else {
        free(g);
        free(rg);
    }
    analyze_factors_free(&f1);
    analyze_factors_free(&f2);
    return rc;
}

int subspace_compute(const analyze_request *req, const analyze_inputs *in, subspace_result *res) {
    return subspace_compute_pair(req, in, 0, 1, res);
}

int subspace_compute_pair(const analyze_request *req, const analyze_inputs *in, int s1, int s2,
                          subspace_result *res) {
    memset(res, 0, sizeof *res);
    analyze_inputs_series(in, s1, &res->a1);
    analyze_inputs_series(in, s2, &res->a2);
    res->layers = analyze_layer_range(req, in);
    int n_tasks = n_layers_of(res->layers) * req->n_modules;
    res->cells = ls_calloc((size_t)n_tasks + 1, sizeof *res->cells);
    res->chance = ls_calloc((size_t)n_tasks + 1, sizeof *res->chance);
    subspace_ctx ctx = {req, in, res, s1, s2};
    int rc = run_tasks(subspace_task, &ctx, n_tasks);
    if (rc) {
        for (int t = 0; t < n_tasks; t++) {
            free(res->cells[t].phi);
            free(res->cells[t].phi_random);
            free(res->cells[t].phi_delta);
            free(res->cells[t].phi_init);
        }
        memset(res->cells, 0, sizeof *res->cells * n_tasks);
        return rc;
    }
    res->n_cells = n_tasks;
    for (int t = 0; t < n_tasks && !rc; t++) {
        subspace_cell *x = &res->cells[t];
        x->chance = analyze_phi_chance(res->chance, &res->n_chance, x->imax, x->jmax, x->n, req->seed);
        if (x->chance < 0) rc = -1;
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

typedef struct {
    const analyze_request *req;
    const analyze_inputs *in;
    amplify_result *res;
    w_factor *w;  // per (layer, module): kept for the chance bands
} amplify_ctx;

// Table 7 for every series at one (layer, module), sharing W's singular values.
static int amplify_task(void *vctx, int t) {
    amplify_ctx *c = vctx;
    const analyze_request *req = c->req;
    amplify_result *res = c->res;
    int l = res->layers.layer0 + t / req->n_modules, mi = t % req->n_modules;
    const char *mod = req->modules[mi];
    an_svd *ds = ls_calloc((size_t)res->n_series + 1, sizeof *ds);
    int *rs = ls_calloc((size_t)res->n_series + 1, sizeof *rs), rc = 0;
    for (int ai = 0; ai < res->n_series && !rc; ai++) {
        int lora_r = 0;
        rc = analyze_inputs_delta_svd(c->in, ai, l, mod, &ds[ai], &lora_r);
        // Full fine-tuning has no rank of its own: project on --rank (default 8) directions.
        rs[ai] = req->rank ? req->rank : lora_r ? lora_r : 8;
        int have = lora_r ? lora_r : ds[ai].nsv;
        if (!rc && rs[ai] > have)
            rc = ls_fail("--rank %d exceeds the rank %d of %s at layer %d", rs[ai], have, res->series[ai].dir, l);
    }
    // W's own top-r projection needs only its singular values (amplify.h).
    if (!rc) rc = w_factor_compute(c->in, l, mod, 1, &c->w[t]);
    const w_factor *w = &c->w[t];
    int p = w->W.rows < w->W.cols ? w->W.rows : w->W.cols;
    for (int ai = 0; ai < res->n_series && !rc; ai++) {
        if (rs[ai] > p) rc = ls_fail("--rank %d exceeds the rank %d of W%s", rs[ai], p, mod);
        if (!rc)
            rc = analyze_check(an_amplification_from_sigma(&w->W, w->sigma, p, &ds[ai], rs[ai], req->seed + l,
                                                           amplify_at(res, ai, l, mi)),
                               "amplification");
    }
    for (int ai = 0; ai < res->n_series; ai++) an_svd_free(&ds[ai]);
    free(ds);
    free(rs);
    return rc;
}

// The chance bands of ‖UᵀWV‖_F: one batch per (d, k, r), every layer and
// module of that shape meeting the same draws, seeded by the shape alone
// (analysis/chance.h); series of one rank share their (layer, module)'s band.
static int amplify_bands(const analyze_request *req, amplify_result *res, const w_factor *w, int n_tasks) {
    int n = res->n_series * n_tasks, rc = 0;
    char *done = ls_calloc((size_t)n + 1, 1);
    const double **sig = ls_calloc((size_t)n_tasks + 1, sizeof *sig);
    int *m = ls_calloc((size_t)n_tasks + 1, sizeof *m), *task = ls_calloc((size_t)n_tasks + 1, sizeof *task);
    an_band *bands = ls_calloc((size_t)n_tasks + 1, sizeof *bands);
    for (int first = 0; first < n && !rc; first++) {
        if (done[first]) continue;
        // Cells are [series][layer][module]: first = series * n_tasks + task.
        int r = res->cells[first].r, nb = 0;
        const an_mat *W0 = &w[first % n_tasks].W;
        for (int t = 0; t < n_tasks; t++)  // the (layer, module)s of this shape with a series of rank r
            for (int ai = 0; ai < res->n_series; ai++) {
                const an_amplification *x =
                    amplify_at(res, ai, res->layers.layer0 + t / req->n_modules, t % req->n_modules);
                if (x->r != r || w[t].W.rows != W0->rows || w[t].W.cols != W0->cols) continue;
                if (nb == 0 || task[nb - 1] != t) {
                    task[nb] = t;
                    sig[nb] = w[t].sigma;
                    m[nb++] = w[t].W.rows < w[t].W.cols ? w[t].W.rows : w[t].W.cols;
                }
            }
        int d = W0->rows, k = W0->cols;
        rc = analyze_check(an_projected_norm_chance_batch(sig, m, nb, d, k, r, an_projected_norm_chance_trials(d, k, r),
                                                          analyze_chance_seed(req->seed, d, k, r), bands),
                           "chance band of ‖UᵀWV‖_F");
        for (int b = 0; b < nb && !rc; b++)
            for (int ai = 0; ai < res->n_series; ai++) {
                int l = res->layers.layer0 + task[b] / req->n_modules, mi = task[b] % req->n_modules;
                if (amplify_at(res, ai, l, mi)->r != r) continue;
                *amplify_chance_at(res, ai, l, mi) = bands[b];
                done[ai * n_tasks + task[b]] = 1;
            }
    }
    free(done), free(sig), free(m), free(task), free(bands);
    return rc;
}

int amplify_compute(const analyze_request *req, const analyze_inputs *in, amplify_result *res) {
    memset(res, 0, sizeof *res);
    res->series = series_table(in, &res->n_series);
    res->layers = analyze_layer_range(req, in);
    res->n_modules = req->n_modules;
    int n_tasks = n_layers_of(res->layers) * req->n_modules;
    size_t n = (size_t)res->n_series * n_tasks + 1;
    res->cells = ls_calloc(n, sizeof *res->cells);
    res->chance = ls_calloc(n, sizeof *res->chance);
    amplify_ctx ctx = {req, in, res, ls_calloc((size_t)n_tasks + 1, sizeof(w_factor))};
    int rc = run_tasks(amplify_task, &ctx, n_tasks);
    if (!rc) rc = amplify_bands(req, res, ctx.w, n_tasks);
    for (int t = 0; t < n_tasks; t++) w_factor_free(&ctx.w[t]);
    free(ctx.w);
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

typedef struct {
    const analyze_request *req;
    const analyze_inputs *in;
    w_vs_dw_result *res;
    int n_modules, layer0, r_random;
} w_vs_dw_ctx;

// The grids of one (layer, module): W's top-imax directions (one top-imax
// factorisation) against every series and the random baseline.
static int w_vs_dw_task(void *vctx, int t) {
    w_vs_dw_ctx *c = vctx;
    const analyze_request *req = c->req;
    int l = c->layer0 + t / c->n_modules, mi = t % c->n_modules, ns = c->res->n_series;
    // imax defaults to min(64, rank bound of W); w_factor_compute clips k to that bound.
    w_factor w;
    int rc = w_factor_compute(c->in, l, req->modules[mi], req->imax ? req->imax : 64, &w);
    int p = w.W.rows < w.W.cols ? w.W.rows : w.W.cols, imax = w.top.nsv;
    if (!rc && req->imax > p) rc = ls_fail("--imax %d exceeds the rank %d of W%s", req->imax, p, req->modules[mi]);
    for (int ai = -1; ai < ns && !rc; ai++) {
        const analyze_series *s = &c->res->series[ai < 0 ? 0 : ai];
        // a series' module's own rank (rank_pattern), not the adapter's default r
        int site_r = ai >= 0 && s->is_lora ? analyze_inputs_site_rank(c->in, ai, l, req->modules[mi]) : 0;
        int r = ai < 0 ? c->r_random : req->rank ? req->rank : site_r > 0 ? site_r : 8;
        rc = w_vs_dw_cell_compute(req, c->in, &w.top, l, mi, ai, imax, r, &c->res->cells[(size_t)t * (ns + 1) + ai + 1]);
    }
    w_factor_free(&w);
    return rc;
}

int w_vs_dw_compute(const analyze_request *req, const analyze_inputs *in, w_vs_dw_result *res) {
    memset(res, 0, sizeof *res);
    res->series = series_table(in, &res->n_series);
    analyze_layers layers = analyze_layer_range(req, in);
    int ns = res->n_series, n_tasks = n_layers_of(layers) * req->n_modules;
    res->cells = ls_calloc((size_t)n_tasks * (ns + 1) + 1, sizeof *res->cells);
    res->chance = ls_calloc((size_t)n_tasks * (ns + 1) + 1, sizeof *res->chance);
    res->ncols = (ns + 1) * req->n_modules;
    // The random baseline's j range covers every series' (the largest r), so
    // that its panel can stand beside each of theirs.
    int r_random = req->rank ? req->rank : ns > 0 ? 1 : 8;
    for (int ai = 0; ai < ns && !req->rank; ai++) {
        int r = res->series[ai].is_lora ? res->series[ai].r : 8;
        r_random = r > r_random ? r : r_random;
    }
    w_vs_dw_ctx ctx = {req, in, res, req->n_modules, layers.layer0, r_random};
    int rc = run_tasks(w_vs_dw_task, &ctx, n_tasks);
    if (rc) {
        for (int c = 0; c < n_tasks * (ns + 1); c++) free(res->cells[c].phi);
        return rc;
    }
    res->n_cells = n_tasks * (ns + 1);
    for (int c = 0; c < res->n_cells && !rc; c++) {
        w_vs_dw_cell *cell = &res->cells[c];
        cell->chance = analyze_phi_chance(res->chance, &res->n_chance, cell->imax, cell->r, cell->n, req->seed);
        if (cell->chance < 0) rc = -1;
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

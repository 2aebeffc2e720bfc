// Seeds, pairs and initialisation in the subspace analysis (issue 12):
// φ of A − A₀ beside φ of A (after a short run A's row space still overlaps
// its random initialisation, which φ of A alone cannot tell from learning),
// the at-initialisation baseline φ(A₀¹, A₀², ...), φ(2, 2) beside φ(1, 1)
// (near-equal singular values swap the top direction), and the statistics of
// several pairs of runs — every pair's values, their mean and a 95%
// t-interval over pairs — beside the chance band of random subspaces.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/results.h"
#include "base/util.h"

// ----------------------------------------------------------------------------
// A − A₀ and A₀ for one cell

static int all_zero(const an_mat *m) {
    for (size_t i = 0; i < (size_t)m->rows * m->cols; i++)
        if (m->data[i] != 0.0) return 0;
    return 1;
}

// X − X₀ into a fresh matrix (same shapes: the initial factors are the adapter's).
static an_mat minus(const an_mat *x, const an_mat *x0) {
    an_mat d = an_mat_copy(x);
    for (size_t i = 0; i < (size_t)d.rows * d.cols; i++) d.data[i] -= x0->data[i];
    return d;
}

int subspace_init_cell(const analyze_request *req, const analyze_inputs *in, int s1, int s2, const char *mod,
                       subspace_cell *x) {
    if (!analyze_inputs_has_init(in, s1) || !analyze_inputs_has_init(in, s2)) return 0;
    analyze_factors f1 = {0}, f2 = {0}, i1 = {0}, i2 = {0};
    int l = x->layer, n = x->imax * x->jmax;
    int rc = analyze_inputs_factors(in, s1, l, mod, &f1) || analyze_inputs_factors(in, s2, l, mod, &f2) ||
             analyze_inputs_init_factors(in, s1, l, mod, &i1) || analyze_inputs_init_factors(in, s2, l, mod, &i2);
    an_side side = req->side_b ? AN_SIDE_LEFT : AN_SIDE_RIGHT;
    if (!rc) {
        const an_mat *x1 = req->side_b ? &f1.B : &f1.A, *x2 = req->side_b ? &f2.B : &f2.A;
        const an_mat *o1 = req->side_b ? &i1.B : &i1.A, *o2 = req->side_b ? &i2.B : &i2.A;
        an_mat d1 = minus(x1, o1), d2 = minus(x2, o2);
        x->phi_delta = ls_malloc(sizeof(double) * n);
        x->phi_init = ls_malloc(sizeof(double) * n);
        rc = analyze_check(an_subspace_similarity_grid(&d1, &d2, side, x->imax, x->jmax, x->phi_delta),
                           "subspace similarity of X − X0");
        if (!rc && (all_zero(o1) || all_zero(o2))) // B₀ = 0 has no subspace to compare
            for (int k = 0; k < n; k++) x->phi_init[k] = NAN;
        else if (!rc)
            rc = analyze_check(an_subspace_similarity_grid(o1, o2, side, x->imax, x->jmax, x->phi_init),
                               "subspace similarity at initialisation");
        an_mat_free(&d1);
        an_mat_free(&d2);
    }
    analyze_factors_free(&f1);
    analyze_factors_free(&f2);
    analyze_factors_free(&i1);
    analyze_factors_free(&i2);
    return rc ? -1 : 0;
}

// ----------------------------------------------------------------------------
// The statistics of one grid

enum { ST_11, ST_22, ST_1R, ST_MEAN, N_ST };
static const char *const st_name[N_ST] = {"1_1", "2_2", "1_r2", "mean"};

// φ(1, 1), φ(2, 2) (NaN when a rank is 1), φ(1, r2) and the grid's mean; all NaN without a grid.
static void grid_stats(const double *g, int imax, int jmax, double v[N_ST]) {
    if (!g) {
        for (int k = 0; k < N_ST; k++) v[k] = NAN;
        return;
    }
    double s = 0;
    for (int k = 0; k < imax * jmax; k++) s += g[k];
    v[ST_11] = g[0];
    v[ST_22] = imax >= 2 && jmax >= 2 ? g[jmax + 1] : NAN;
    v[ST_1R] = g[jmax - 1];
    v[ST_MEAN] = s / (imax * jmax);
}

// The chance band of statistic k for the cell's shape (NULL for φ(2, 2) of a rank-1 grid).
static const an_band *stat_band(const subspace_result *res, const subspace_cell *x, int k) {
    const an_phi_chance *ch = &res->chance[x->chance];
    switch (k) {
    case ST_11: return an_phi_chance_at(ch, 1, 1);
    case ST_22: return x->imax >= 2 && x->jmax >= 2 ? an_phi_chance_at(ch, 2, 2) : NULL;
    case ST_1R: return an_phi_chance_at(ch, 1, x->jmax);
    default: return &ch->grid_mean;
    }
}

// ----------------------------------------------------------------------------
// Columns of subspace.tsv and the Markdown section

void subspace_extra_tsv_header(strbuf *tsv) {
    sb_printf(tsv, "\tphi_2_2\tphi_2_2_chance\tphi_2_2_p99");
    for (int k = 0; k < N_ST; k++) sb_printf(tsv, "\tdphi_%s", st_name[k]);
    for (int k = 0; k < N_ST; k++) sb_printf(tsv, "\tinit_phi_%s", st_name[k]);
}

void subspace_extra_tsv_row(const subspace_result *res, const subspace_cell *x, strbuf *tsv) {
    double v[N_ST], d[N_ST], o[N_ST];
    grid_stats(x->phi, x->imax, x->jmax, v);
    grid_stats(x->phi_delta, x->imax, x->jmax, d);
    grid_stats(x->phi_init, x->imax, x->jmax, o);
    const an_band *b = stat_band(res, x, ST_22);
    sb_printf(tsv, "\t%.6f\t%.6f\t%.6f", v[ST_22], b ? b->mean : NAN, b ? b->p99 : NAN);
    for (int k = 0; k < N_ST; k++) sb_printf(tsv, "\t%.6f", d[k]);
    for (int k = 0; k < N_ST; k++) sb_printf(tsv, "\t%.6f", o[k]);
}

// "0.123", in bold above p99; "–" for NaN.
static void md_value(strbuf *md, double v, const an_band *b) {
    if (isnan(v)) sb_printf(md, " – |");
    else if (b && v > b->p99) sb_printf(md, " **%.3f** |", v);
    else sb_printf(md, " %.3f |", v);
}

void subspace_extra_md(const subspace_result *res, const analyze_request *req, strbuf *md) {
    char X = req->side_b ? 'B' : 'A';
    int have = res->n_cells > 0 && res->cells[0].phi_delta;
    sb_printf(md, "\n## φ(2, 2), what training moved (%c − %c₀) and the at-initialisation baseline (%c₀)\n\n", X, X,
              X);
    if (!have)
        sb_printf(md, "The runs saved no initial factors (adapter_init.safetensors beside adapter/): φ of %c − %c₀ "
                      "and of %c₀ are not available.\n\n", X, X, X);
    else
        sb_printf(md, "%c − %c₀ is what training added to the initial factor; %c₀ vs %c₀ is the similarity before "
                      "any training (independent draws: at chance; B₀ = 0 has none: –). Bold: above the chance "
                      "99th percentile of random subspaces of the same dimensions.\n\n", X, X, X, X);
    sb_printf(md, "| layer | module | φ(1,1) | φ(2,2) | φ(2,2) p99 | φ(1,1) of %c−%c₀ | φ(2,2) of %c−%c₀ | "
                  "φ(1,r2) of %c−%c₀ | mean φ of %c−%c₀ | φ(1,1) of %c₀ | φ(1,r2) of %c₀ |\n"
                  "|---:|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n", X, X, X, X, X, X, X, X, X, X);
    for (int c = 0; c < res->n_cells; c++) {
        const subspace_cell *x = &res->cells[c];
        double v[N_ST], d[N_ST], o[N_ST];
        grid_stats(x->phi, x->imax, x->jmax, v);
        grid_stats(x->phi_delta, x->imax, x->jmax, d);
        grid_stats(x->phi_init, x->imax, x->jmax, o);
        const an_band *b22 = stat_band(res, x, ST_22);
        sb_printf(md, "| %d | %s |", x->layer, req->modules[x->module]);
        md_value(md, v[ST_11], stat_band(res, x, ST_11));
        md_value(md, v[ST_22], b22);
        md_value(md, b22 ? b22->p99 : NAN, NULL);
        for (int k = 0; k < N_ST; k++) md_value(md, d[k], stat_band(res, x, k));
        md_value(md, o[ST_11], stat_band(res, x, ST_11));
        md_value(md, o[ST_1R], stat_band(res, x, ST_1R));
        sb_printf(md, "\n");
    }
}

// ----------------------------------------------------------------------------
// Several pairs: every pair, then mean and 95% t-interval over pairs

// The statistics a pair contributes: φ(1,1), φ(2,2), φ(1,r2), mean φ; the same of X − X₀; φ(1,1), φ(1,r2) of X₀.
#define N_PAIR_ST 10
static const char *const pair_st[N_PAIR_ST] = {"phi_1_1",  "phi_2_2",  "phi_1_r2",     "mean_phi",     "dphi_1_1",
                                               "dphi_2_2", "dphi_1_r2", "dmean_phi",   "init_phi_1_1", "init_phi_1_r2"};

static void pair_stats(const subspace_cell *x, double v[N_PAIR_ST]) {
    double o[N_ST];
    grid_stats(x->phi, x->imax, x->jmax, v);
    grid_stats(x->phi_delta, x->imax, x->jmax, v + N_ST);
    grid_stats(x->phi_init, x->imax, x->jmax, o);
    v[8] = o[ST_11];
    v[9] = o[ST_1R];
}

// Mean, 95% t-interval half-width, min and max of the finite values of x[0..n).
typedef struct {
    int n;
    double mean, half, min, max;
} pair_summary;

static pair_summary summarize(const double *x, int n) {
    pair_summary s = {0, 0, NAN, INFINITY, -INFINITY};
    for (int i = 0; i < n; i++)
        if (!isnan(x[i])) {
            s.n++;
            s.mean += x[i];
            s.min = fmin(s.min, x[i]);
            s.max = fmax(s.max, x[i]);
        }
    if (!s.n) return (pair_summary){0, NAN, NAN, NAN, NAN};
    s.mean /= s.n;
    double ss = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(x[i])) ss += (x[i] - s.mean) * (x[i] - s.mean);
    if (s.n > 1) s.half = an_t975(s.n - 1) * sqrt(ss / (s.n - 1)) / sqrt(s.n);
    return s;
}

// <stem>_pairs.tsv: one row per pair, layer and module.
static int write_pairs(const analyze_request *req, const subspace_result *res, int n, const char *stem) {
    strbuf b = {0};
    sb_printf(&b, "pair\tadapter1\tadapter2\tr1\tr2\tlayer\tmodule");
    for (int k = 0; k < N_PAIR_ST; k++) sb_printf(&b, "\t%s", pair_st[k]);
    sb_printf(&b, "\tphi_1_1_p99\tphi_2_2_p99\tphi_1_r2_p99\tmean_phi_p99\n");
    for (int p = 0; p < n; p++)
        for (int c = 0; c < res[p].n_cells; c++) {
            const subspace_cell *x = &res[p].cells[c];
            double v[N_PAIR_ST];
            pair_stats(x, v);
            sb_printf(&b, "%d\t%s\t%s\t%d\t%d\t%d\t%s", p + 1, res[p].a1.dir, res[p].a2.dir, res[p].a1.r, res[p].a2.r,
                      x->layer, req->modules[x->module]);
            for (int k = 0; k < N_PAIR_ST; k++) sb_printf(&b, "\t%.6f", v[k]);
            for (int k = 0; k < N_ST; k++) {
                const an_band *band = stat_band(&res[p], x, k);
                sb_printf(&b, "\t%.6f", band ? band->p99 : NAN);
            }
            sb_printf(&b, "\n");
        }
    char name[256];
    snprintf(name, sizeof name, "%s_pairs.tsv", stem);
    int rc = report_write(req->out, name, &b);
    sb_free(&b);
    return rc;
}

// One summary row (layer, or -1 for the mean over layers) of module mi: TSV and Markdown.
static void summary_row(const analyze_request *req, const subspace_result *res, int n, int layer, int mi, strbuf *tsv,
                        strbuf *md) {
    double *vals = ls_calloc((size_t)n * N_PAIR_ST + 1, sizeof(double));
    int above[2] = {0, 0};
    const subspace_cell *ref = NULL;
    for (int p = 0; p < n; p++) {
        int cnt = 0;
        for (int c = 0; c < res[p].n_cells; c++) {
            const subspace_cell *x = &res[p].cells[c];
            if (x->module != mi || (layer >= 0 && x->layer != layer)) continue;
            double v[N_PAIR_ST];
            pair_stats(x, v);
            for (int k = 0; k < N_PAIR_ST; k++) vals[(size_t)k * n + p] += v[k];
            above[0] += v[0] > stat_band(&res[p], x, ST_11)->p99;
            above[1] += v[2] > stat_band(&res[p], x, ST_1R)->p99;
            cnt++;
            ref = x;
        }
        for (int k = 0; k < N_PAIR_ST && cnt; k++) vals[(size_t)k * n + p] /= cnt;
    }
    const char *mod = req->modules[mi];
    char where[16];
    snprintf(where, sizeof where, layer >= 0 ? "%d" : "all", layer);
    sb_printf(tsv, "%s\t%s\t%d", where, mod, n);
    sb_printf(md, "| %s | %s |", where, mod);
    for (int k = 0; k < N_PAIR_ST; k++) {
        pair_summary s = summarize(vals + (size_t)k * n, n);
        sb_printf(tsv, "\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f", s.mean, s.mean - s.half, s.mean + s.half, s.min, s.max);
        if (k == 1 || k == 3 || k == 7) continue; // the Markdown keeps the headline ones
        if (isnan(s.mean)) sb_printf(md, " – |");
        else if (isnan(s.half)) sb_printf(md, " %.3f |", s.mean); // one pair: no interval
        else sb_printf(md, " %.3f ± %.3f |", s.mean, s.half);
    }
    const an_band *b11 = ref ? stat_band(&res[0], ref, ST_11) : NULL, *b1r = ref ? stat_band(&res[0], ref, ST_1R) : NULL;
    // the mean over layers of values has a narrower chance band than one cell: its p99 is not the cell's
    double p11 = b11 ? b11->p99 : NAN, p1r = b1r ? b1r->p99 : NAN;
    sb_printf(tsv, "\t%.6f\t%.6f\t%.6f\t%.6f\t%d\t%d\n", b11 ? b11->mean : NAN, p11, b1r ? b1r->mean : NAN, p1r,
              above[0], above[1]);
    sb_printf(md, " %.3f / %.3f | %.3f / %.3f | %d / %d |\n", b11 ? b11->mean : NAN, p11, b1r ? b1r->mean : NAN, p1r,
              above[0], above[1]);
    free(vals);
}

int subspace_pairs_render(const analyze_request *req, const subspace_result *res, int n) {
    const char *stem = req->name ? req->name : "subspace";
    char X = req->side_b ? 'B' : 'A';
    int rc = write_pairs(req, res, n, stem);
    strbuf tsv = {0}, md = {0};
    sb_printf(&tsv, "layer\tmodule\tn_pairs");
    for (int k = 0; k < N_PAIR_ST; k++)
        sb_printf(&tsv, "\t%s_mean\t%s_ci_lo\t%s_ci_hi\t%s_min\t%s_max", pair_st[k], pair_st[k], pair_st[k], pair_st[k],
                  pair_st[k]);
    sb_printf(&tsv, "\tphi_1_1_chance\tphi_1_1_p99\tphi_1_r2_chance\tphi_1_r2_p99\tpairs_phi_1_1_above_p99"
                    "\tpairs_phi_1_r2_above_p99\n");
    sb_printf(&md, "# φ(%c1, %c2, i, j) over %d pairs of runs: mean ± 95%% interval\n\n", X, X, n);
    for (int p = 0; p < n; p++)
        sb_printf(&md, "- pair %d: `%s` (r = %d) vs `%s` (r = %d)\n", p + 1, res[p].a1.dir, res[p].a1.r, res[p].a2.dir,
                  res[p].a2.r);
    sb_printf(&md, "\nMean over the pairs ± the half-width of a 95%% Student-t interval (t with n − 1 degrees of "
                   "freedom, the pairs taken as independent: pairs that share a run are not, so the interval is "
                   "an indication, not a test). Row \"all\": each pair's mean over layers first. %c − %c₀: what "
                   "training moved; %c₀: at initialisation (– where the runs saved no %c₀, or %c₀ = 0). Chance: "
                   "mean / 99th percentile of φ for random subspaces of one cell (a mean over layers has a "
                   "narrower band). Last column: pairs × layers above the p99, of φ(1,1) / φ(1,r2). Every "
                   "pair's values: %s_pairs.tsv.%s\n\n", X, X, X, X, X, stem,
              n < 2 ? " One pair: its values, without an interval." : "");
    sb_printf(&md, "| layer | module | φ(1,1) | φ(1,r2) | φ(1,1) of %c−%c₀ | φ(2,2) of %c−%c₀ | φ(1,r2) of %c−%c₀ | "
                   "φ(1,1) of %c₀ | φ(1,r2) of %c₀ | chance φ(1,1) mean / p99 | chance φ(1,r2) mean / p99 | "
                   "above p99 |\n|---:|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
              X, X, X, X, X, X, X, X);
    int layer0 = res[0].layers.layer0, layer1 = res[0].layers.layer1;
    for (int mi = 0; mi < req->n_modules; mi++) {
        for (int l = layer0; l < layer1; l++) summary_row(req, res, n, l, mi, &tsv, &md);
        if (layer1 - layer0 > 1) summary_row(req, res, n, -1, mi, &tsv, &md);
    }
    char name[256];
    snprintf(name, sizeof name, "%s_summary.tsv", stem);
    if (!rc) rc = report_write(req->out, name, &tsv);
    snprintf(name, sizeof name, "%s_summary.md", stem);
    if (!rc) rc = report_write(req->out, name, &md);
    sb_free(&tsv);
    sb_free(&md);
    return rc;
}

// Rendering: result structs -> <out>/<name>.tsv and .md, one data file per
// grid or spectrum under <out>/data/, and figures through plots/*.gp.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/results.h"
#include "base/util.h"
#include "report/report.h"

// Writes one φ grid as "i j phi" blocks (gnuplot `with image` layout).
// What W is when the base is a GGUF file: its dequantized weight (the
// quantization error is part of W's spectrum).
static const char *base_note(const char *base) {
    size_t n = base ? strlen(base) : 0;
    return n >= 5 && !strcmp(base + n - 5, ".gguf")
               ? " W is the base's dequantized weight (GGUF; its quantization error is part of W)."
               : "";
}

static int write_grid(const char *dir, const char *name, const double *grid, int imax, int jmax, const char *what) {
    strbuf b = {0};
    sb_printf(&b, "# %s\n# i\tj\tphi\n", what);
    for (int i = 0; i < imax; i++) {
        for (int j = 0; j < jmax; j++) sb_printf(&b, "%d\t%d\t%.6f\n", i + 1, j + 1, grid[i * jmax + j]);
        sb_printf(&b, "\n");
    }
    int rc = report_write(dir, name, &b);
    sb_free(&b);
    return rc;
}

// The seed of the run that trained an adapter when lorascope trained it (the
// run directory's config.ini beside adapter/: "seed = N"); -1 when unknown
// (a PEFT adapter from elsewhere).
static long adapter_seed(const char *dir) {
    char *parent = ls_path_join(dir, "../config.ini");
    FILE *f = fopen(parent, "r");
    free(parent);
    if (!f) return -1;
    char line[256];
    long seed = -1;
    while (seed < 0 && fgets(line, sizeof line, f)) {
        long v;
        if (sscanf(line, " seed = %ld", &v) == 1) seed = v;
    }
    fclose(f);
    return seed;
}

// "r = 16, seed 2" (the seed when known), for figure titles.
static void series_caption(const analyze_series *s, char *buf, size_t n) {
    long seed = s->is_lora ? adapter_seed(s->dir) : -1;
    if (!s->is_lora) snprintf(buf, n, "%s", s->label);
    else if (seed >= 0) snprintf(buf, n, "r = %d, seed %ld", s->r, seed);
    else snprintf(buf, n, "r = %d", s->r);
}

// The top-left rows x cols corner of an imax x jmax grid, as write_grid writes it.
static int write_corner(const char *dir, const char *name, const double *grid, int jmax, int rows, int cols,
                        const char *what) {
    double *c = ls_malloc(sizeof(double) * rows * cols);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) c[i * cols + j] = grid[i * jmax + j];
    int rc = write_grid(dir, name, c, rows, cols, what);
    free(c);
    return rc;
}

// Unless rc, writes the tables and draws the figure (unless no_plot). Frees
// them either way; returns rc or the first failure.
// A request that names its output renames every file: names[0]'s stem
// ("table7" of "table7.tsv") becomes req->name, and so does the figure's.
static int finish(int rc, const analyze_request *req, strbuf *tables, const char *const *names, int n,
                  const char *stem, const char *script, report_figure *fig, const char *extra) {
    size_t own = strcspn(names[0], ".");
    char name[256];
    for (int i = 0; i < n && !rc; i++) {
        if (req->name) snprintf(name, sizeof name, "%s%s", req->name, names[i] + own);
        else snprintf(name, sizeof name, "%s", names[i]);
        rc = report_write(req->out, name, &tables[i]);
    }
    if (!rc && !req->no_plot) rc = report_plot_figure(req->out, req->name ? req->name : stem, script, fig, extra);
    for (int i = 0; i < n; i++) sb_free(&tables[i]);
    fig_free(fig);
    return rc;
}

// ----------------------------------------------------------------------------
// Chance bands (analysis/chance.h) beside the measured values

// value / chance level (a chance level of 0 leaves the ratio undefined: NaN).
static double chance_ratio(double value, const an_band *b) { return b->mean > 0 ? value / b->mean : NAN; }

// TSV: <chance level> <p95> <p99> <value / chance level>.
static void tsv_band(strbuf *b, double value, const an_band *band) {
    sb_printf(b, "\t%.6f\t%.6f\t%.6f\t%.4f", band->mean, band->p95, band->p99, chance_ratio(value, band));
}

// Markdown: "mean / p95 / p99 | ratio×" (two cells), the value in bold when above p99.
static void md_band(strbuf *b, double value, const an_band *band) {
    const char *em = value > band->p99 ? "**" : "";
    sb_printf(b, " %.3f / %.3f / %.3f | %s%.2f×%s |", band->mean, band->p95, band->p99, em,
              chance_ratio(value, band), em);
}

// Writes one chance grid: "i j mean p95 p99" blocks, as write_grid lays out φ.
static int write_chance_grid(const char *dir, const char *name, const an_phi_chance *c, char side) {
    strbuf b = {0};
    sb_printf(&b, "# chance band of phi(%c1, %c2, i, j) for random subspaces of R^%d: exact mean max(i,j)/n, "
                  "Monte Carlo p95, p99 (%d draws, seed %llu)\n# i\tj\tmean\tp95\tp99\n",
              side, side, c->n, c->trials, (unsigned long long)c->seed);
    for (int i = 1; i <= c->imax; i++) {
        for (int j = 1; j <= c->jmax; j++) {
            const an_band *x = an_phi_chance_at(c, i, j);
            sb_printf(&b, "%d\t%d\t%.6f\t%.6f\t%.6f\n", i, j, x->mean, x->p95, x->p99);
        }
        sb_printf(&b, "\n");
    }
    int rc = report_write(dir, name, &b);
    sb_free(&b);
    return rc;
}

// ----------------------------------------------------------------------------
// subspace (Fig. 3, 4, 6, 7; App. H.2)

// One row of subspace.tsv and of both Markdown tables (values; chance bands).
static void subspace_row(const analyze_request *req, const subspace_result *res, const subspace_cell *x, char side,
                         strbuf *tsv, strbuf *md, strbuf *bands) {
    const char *mod = req->modules[x->module];
    const double *g = x->phi;
    int imax = x->imax, jmax = x->jmax, l = x->layer;
    const an_phi_chance *ch = &res->chance[x->chance];
    double v[4] = {g[0], g[jmax - 1], g[imax * jmax - 1], x->mean};
    const an_band *b[4] = {an_phi_chance_at(ch, 1, 1), an_phi_chance_at(ch, 1, jmax), an_phi_chance_at(ch, imax, jmax),
                           &ch->grid_mean};
    sb_printf(tsv, "%d\t%s\t%c\t%d\t%d\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%d", l, mod, side, imax, jmax, v[0], v[1],
              v[2], v[3], x->mean_random, x->n);
    for (int k = 0; k < 4; k++) tsv_band(tsv, v[k], b[k]);
    subspace_extra_tsv_row(res, x, tsv); // seeds.c: φ(2,2), X − X₀, X₀
    sb_printf(tsv, "\n");
    sb_printf(md, "| %d | %s | %.4f | %.4f | %.4f | %.4f | %.4f |\n", l, mod, v[0], v[1], v[2], v[3], x->mean_random);
    sb_printf(bands, "| %d | %s | %d |", l, mod, x->n);
    for (int k = 0; k < 4; k++) md_band(bands, v[k], b[k]);
    sb_printf(bands, "\n");
}

// Fig. 3, 4 (one layer) and 6, 7 (every layer) as the paper lays them out:
// a row per layer with a column per module and a random baseline per space
// (A: d_in, shared; B: each module's own d_out, so Wq and Wv may need one
// each), titled by module, layer and space. One layer with r > 16 gets a
// second row zoomed on the top-left 8 x 8 corner (Fig. 3's right panels).
static int subspace_figure(const analyze_request *req, const subspace_result *res, const char *data_dir, char side,
                           report_figure *fig, int *ncols) {
    int nm = req->n_modules, nl = res->layers.layer1 - res->layers.layer0, rc = 0;
    int rnd[ANALYZE_MAX_MODULES], n_rnd = 0;  // for each random column, the first module of its space
    for (int mi = 0; mi < nm; mi++) {
        int seen = 0;
        for (int k = 0; k < n_rnd; k++) seen |= res->cells[rnd[k]].n == res->cells[mi].n;
        if (!seen) rnd[n_rnd++] = mi;
    }
    int zoom = nl == 1 && (res->cells[0].imax > 16 || res->cells[0].jmax > 16);
    *ncols = nm + n_rnd;
    for (int pass = 0; pass < 1 + zoom && !rc; pass++)
        for (int l = res->layers.layer0; l < res->layers.layer1 && !rc; l++)
            for (int col = 0; col < nm + n_rnd && !rc; col++) {
                int mi = col < nm ? col : rnd[col - nm], random = col >= nm;
                const subspace_cell *x = &res->cells[(l - res->layers.layer0) * nm + mi];
                const char *mod = req->modules[mi];
                char name[128], panel[160];
                snprintf(name, sizeof name, "subspace_%c_%s_L%d%s.tsv", side, mod, l, random ? "_random" : "");
                if (random && n_rnd > 1) snprintf(panel, sizeof panel, "random, n = %d (as W_{%s})", x->n, mod);
                else if (random) snprintf(panel, sizeof panel, "random, n = %d", x->n);
                else snprintf(panel, sizeof panel, "ΔW_{%s}, layer %d", mod, l);
                if (pass == 1) {  // the zoomed copy of this panel
                    int zi = x->imax < 8 ? x->imax : 8, zj = x->jmax < 8 ? x->jmax : 8;
                    snprintf(name, sizeof name, "subspace_%c_%s_L%d%s_zoom.tsv", side, mod, l, random ? "_random" : "");
                    rc = write_corner(data_dir, name, random ? x->phi_random : x->phi, x->jmax, zi, zj,
                                      "top-left corner of the grid of the same name without _zoom");
                    size_t len = strlen(panel);
                    snprintf(panel + len, sizeof panel - len, " (i, j <= 8)");
                }
                char *path = ls_path_join(data_dir, name);
                fig_add(fig, path, 0, "%s", panel);
                free(path);
            }
    return rc;
}

// The summary of Fig. 6 / 7 across layers: φ(1, 1), φ(1, r2), φ(r1, r2) and
// the grid's mean per layer, a line per module, each over its chance band
// (random subspaces of the same n: chance mean to p99, shaded). <stem>_per_layer.png.
static int subspace_layers_figure(const analyze_request *req, const subspace_result *res, const char *data_dir,
                                  char side) {
    static const char *const stat[4] = {"φ(1, 1)", "φ(1, r_2)", "φ(r_1, r_2)", "mean φ over the grid"};
    static const char *const tag[4] = {"phi_1_1", "phi_1_r2", "phi_r1_r2", "mean_phi"};
    report_figure fig = {0};
    int rc = 0;
    for (int k = 0; k < 4 && !rc; k++) {
        fig_panel(&fig, "%s", stat[k]);
        for (int mi = 0; mi < req->n_modules && !rc; mi++) {
            strbuf d = {0};
            sb_printf(&d, "# layer\t%s\tchance_mean\tchance_p99 (%c side, module %s)\n", tag[k], side, req->modules[mi]);
            for (int c = 0; c < res->n_cells; c++) {
                const subspace_cell *x = &res->cells[c];
                if (x->module != mi) continue;
                const an_phi_chance *ch = &res->chance[x->chance];
                const an_band *b = k == 0   ? an_phi_chance_at(ch, 1, 1)
                                   : k == 1 ? an_phi_chance_at(ch, 1, x->jmax)
                                   : k == 2 ? an_phi_chance_at(ch, x->imax, x->jmax)
                                            : &ch->grid_mean;
                double v = k == 0   ? x->phi[0]
                           : k == 1 ? x->phi[x->jmax - 1]
                           : k == 2 ? x->phi[(size_t)(x->imax - 1) * x->jmax + x->jmax - 1]
                                    : x->mean;
                sb_printf(&d, "%d\t%.6f\t%.6f\t%.6f\n", x->layer, v, b->mean, b->p99);
            }
            char name[128];
            snprintf(name, sizeof name, "subspace_%c_%s_%s_layers.tsv", side, tag[k], req->modules[mi]);
            rc = report_write(data_dir, name, &d);
            sb_free(&d);
            char *path = ls_path_join(data_dir, name);
            fig_add(&fig, path, k + 1, "ΔW_{%s}", req->modules[mi]);
            free(path);
        }
    }
    char stem[160];
    snprintf(stem, sizeof stem, "%s_per_layer", req->name ? req->name : "subspace");
    if (!rc)
        rc = report_plot_figure(req->out, stem, "lines.gp", &fig,
                                "xlabel='layer'; xstep=1; ylabel='φ'; ymin=0; ymax=1; ncols=2; bandlo=3; bandhi=4; "
                                "band_title='random subspaces: chance mean to p99'");
    fig_free(&fig);
    return rc;
}

int subspace_render(const analyze_request *req, const subspace_result *res, const char *data_dir) {
    const analyze_series *a1 = &res->a1, *a2 = &res->a2;
    char side = req->side_b ? 'B' : 'A';
    strbuf t[2] = {{0}}, *tsv = &t[0], *md = &t[1], bands = {0};
    report_figure fig = {0};
    sb_printf(tsv, "layer\tmodule\tside\tr1\tr2\tphi_1_1\tphi_1_r2\tphi_r1_r2\tmean_phi\tmean_phi_random\tn");
    static const char *const stat[4] = {"phi_1_1", "phi_1_r2", "phi_r1_r2", "mean_phi"};
    for (int k = 0; k < 4; k++) sb_printf(tsv, "\t%s_chance\t%s_p95\t%s_p99\t%s_ratio", stat[k], stat[k], stat[k], stat[k]);
    subspace_extra_tsv_header(tsv);
    sb_printf(tsv, "\n");
    sb_printf(md, "# Subspace similarity φ(%c1, %c2, i, j) (Hu et al. 2021, Eq. 4%s)\n\n"
                  "%c1: `%s` (r = %d), %c2: `%s` (r = %d). φ(1, r2): how much of %c1's top direction lies in "
                  "%c2's span. Random: two Gaussian matrices of the same shapes (seed %llu); E[φ] = max(i, j)/n.\n\n"
                  "| layer | module | φ(1,1) | φ(1,r2) | φ(r1,r2) | mean φ | mean φ, random |\n"
                  "|---:|:---|---:|---:|---:|---:|---:|\n",
              side, side, req->side_b ? "; Fig. 3, 4 for B" : "; Fig. 3, 4", side, a1->dir, a1->r, side, a2->dir, a2->r, side,
              side, req->seed);
    sb_printf(&bands, "\n## Chance bands\n\nφ of random subspaces of R^n (n = %s): "
                      "exact mean max(i, j)/n, and the 95th and 99th percentiles of %d Monte Carlo draws "
                      "(analysis/chance.h; seed from %llu). Ratio = measured / chance mean, in bold when the "
                      "measured value is above the 99th percentile.\n\n"
                      "| layer | module | n | φ(1,1) chance / p95 / p99 | ratio | φ(1,r2) chance / p95 / p99 | ratio "
                      "| φ(r1,r2) chance / p95 / p99 | ratio | mean φ chance / p95 / p99 | ratio |\n"
                      "|---:|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
              req->side_b ? "d_out, the space of B's columns" : "d_in, the space of A's rows", AN_CHANCE_TRIALS, req->seed);
    int rc = 0;
    for (int c = 0; c < res->n_cells && !rc; c++) {
        const subspace_cell *x = &res->cells[c];
        const char *mod = req->modules[x->module];
        int imax = x->imax, jmax = x->jmax, l = x->layer;
        char name[128], what[256];
        snprintf(name, sizeof name, "subspace_%c_%s_L%d.tsv", side, mod, l);
        snprintf(what, sizeof what, "phi(%c1, %c2, i, j), module %s, layer %d", side, side, mod, l);
        rc = write_grid(data_dir, name, x->phi, imax, jmax, what);
        if (!rc) {
            snprintf(name, sizeof name, "subspace_%c_%s_L%d_random.tsv", side, mod, l);
            snprintf(what, sizeof what, "random baseline for phi(%c1, %c2, i, j), module %s, layer %d", side, side,
                     mod, l);
            rc = write_grid(data_dir, name, x->phi_random, imax, jmax, what);
        }
        if (!rc) subspace_row(req, res, x, side, tsv, md, &bands);
    }
    for (int c = 0; c < res->n_chance && !rc; c++) {
        char name[128];
        const an_phi_chance *ch = &res->chance[c];
        snprintf(name, sizeof name, "subspace_%c_chance_n%d_%dx%d.tsv", side, ch->n, ch->imax, ch->jmax);
        rc = write_chance_grid(data_dir, name, ch, side);
    }
    sb_printf(md, "%s", bands.s ? bands.s : "");
    sb_free(&bands);
    subspace_extra_md(res, req, md);
    int ncols = 0;
    if (!rc) rc = subspace_figure(req, res, data_dir, side, &fig, &ncols);
    char c1[64], c2[64];
    series_caption(a1, c1, sizeof c1);
    series_caption(a2, c2, sizeof c2);
    strbuf extra = {0}, title = {0};
    sb_printf(&extra, "ncols=%d", ncols);
    sb_printf(&title, "j (%c2: %s)", side, c2);
    sb_gp_assign(&extra, "xlabel", title.s);
    title.len = 0;
    sb_printf(&title, "i (%c1: %s)", side, c1);
    sb_gp_assign(&extra, "ylabel", title.s);
    title.len = 0;
    sb_printf(&title, "φ(%c1, %c2, i, j), %s singular vectors (%s): %c1 %s vs %c2 %s", side, side,
              req->side_b ? "left" : "right", req->side_b ? "App. H.2" : "Eq. 4", side, c1, side, c2);
    sb_gp_assign(&extra, "suptitle", title.s);
    sb_free(&title);
    static const char *const names[] = {"subspace.tsv", "subspace.md"};
    rc = finish(rc, req, t, names, 2, "subspace", "heatmap.gp", &fig, extra.s);
    sb_free(&extra);
    if (!rc && !req->no_plot && res->layers.layer1 - res->layers.layer0 > 1)
        rc = subspace_layers_figure(req, res, data_dir, side);
    return rc;
}

// ----------------------------------------------------------------------------
// amplify (Table 7, App. H.4)

// The paper's ΔWq against its chance level r‖W‖_F/√(dk) (its "random" column):
// 0.32 / (4 · 61.95 / 12288) at r = 4, 1.90 / (64 · 61.95 / 12288) at r = 64.
#define PAPER_ALIGN_R4 (0.32 / (4.0 * 61.95 / 12288.0))
#define PAPER_ALIGN_R64 (1.90 / (64.0 * 61.95 / 12288.0))

// The Markdown table of one (layer, module): three columns per series.
static void amplify_md_table(const analyze_request *req, const amplify_result *res, int l, int mi, strbuf *md,
                             strbuf *tsv) {
    const char *mod = req->modules[mi];
    int ns = res->n_series;
    sb_printf(md, "## layer %d, W%s\n\n|  |", l, mod);
    for (int ai = 0; ai < ns; ai++) {
        char caption[64]; // "r = 8, seed 2" where the adapter's run says its seed: columns of equal r apart
        series_caption(&res->series[ai], caption, sizeof caption);
        if (res->series[ai].is_lora) sb_printf(md, " %s: ΔW%s | W%s | Random |", caption, mod, mod);
        else sb_printf(md, " full FT (top %d): ΔW%s | W%s | Random |", amplify_at(res, ai, l, mi)->r, mod, mod);
    }
    sb_printf(md, "\n|:---|");
    for (int ai = 0; ai < ns; ai++) sb_printf(md, "---:|---:|---:|");
    sb_printf(md, "\n| ‖UᵀW%sV‖_F |", mod);
    for (int ai = 0; ai < ns; ai++) {
        const an_amplification *x = amplify_at(res, ai, l, mi);
        sb_printf(md, " %.4f | %.4f | %.4f |", x->proj_dw, x->proj_w, x->proj_random);
        const an_band *pb = amplify_chance_at(res, ai, l, mi);
        an_band fb = an_factor_chance(x->dw_norm, pb);
        sb_printf(tsv, "%s\t%d\t%d\t%s\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f", res->series[ai].dir, x->r, l, mod,
                  x->proj_dw, x->proj_w, x->proj_random, x->w_norm, x->dw_norm, x->factor);
        sb_printf(tsv, "\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%.4f\t%.6f\t%.6f\t%.6f\t%.4f\t%d\t%.6f\t%.6f\n", pb->mean,
                  pb->p01, pb->p05, pb->p95, pb->p99, chance_ratio(x->proj_dw, pb), fb.mean, fb.p95, fb.p99,
                  chance_ratio(x->factor, &fb), pb->trials, fb.p05, fb.p01);
    }
    sb_printf(md, "\n| ‖W%s‖_F |", mod);
    for (int ai = 0; ai < ns; ai++) sb_printf(md, " %.4f | | |", amplify_at(res, ai, l, mi)->w_norm);
    sb_printf(md, "\n| ‖ΔW%s‖_F |", mod);
    for (int ai = 0; ai < ns; ai++) sb_printf(md, " %.4f | | |", amplify_at(res, ai, l, mi)->dw_norm);
    sb_printf(md, "\n| amplification |");
    for (int ai = 0; ai < ns; ai++) sb_printf(md, " %.2f | | |", amplify_at(res, ai, l, mi)->factor);
    // Chance (chance.h): random r-frames U, V; a random ΔW of the same norm and rank.
    sb_printf(md, "\n| ‖UᵀW%sV‖_F, random U, V: r‖W‖_F/√(dk) [p05, p95] |", mod);
    for (int ai = 0; ai < ns; ai++) {
        const an_band *pb = amplify_chance_at(res, ai, l, mi);
        sb_printf(md, " %.4f [%.4f, %.4f] | | |", pb->mean, pb->p05, pb->p95);
    }
    // The paper's claim is the lower tail of the factor: ΔW's directions more
    // aligned with W than random ones (its GPT-3 ΔWq: 16x chance at r = 4).
    sb_printf(md, "\n| ‖U_ΔWᵀW%sV_ΔW‖_F ÷ chance (paper: 15.8×, r = 4; 5.9×, r = 64) |", mod);
    for (int ai = 0; ai < ns; ai++) {
        const an_amplification *x = amplify_at(res, ai, l, mi);
        const an_band *pb = amplify_chance_at(res, ai, l, mi);
        const char *em = x->proj_dw > pb->p99 ? "**" : "";
        sb_printf(md, " %s%.2f×%s | | |", em, chance_ratio(x->proj_dw, pb), em);
    }
    sb_printf(md, "\n| amplification of a random ΔW of this norm: chance [p01, p99] |");
    for (int ai = 0; ai < ns; ai++) {
        const an_amplification *x = amplify_at(res, ai, l, mi);
        an_band fb = an_factor_chance(x->dw_norm, amplify_chance_at(res, ai, l, mi));
        const char *em = x->factor < fb.p01 ? "**" : "";
        sb_printf(md, " %.2f [%.2f, %.2f]; measured ÷ chance %s%.2f×%s | | |", fb.mean, fb.p01, fb.p99, em,
                  chance_ratio(x->factor, &fb), em);
    }
    sb_printf(md, "\n\n");
}

int amplify_render(const analyze_request *req, const amplify_result *res, const char *data_dir) {
    strbuf t[2] = {{0}}, *tsv = &t[0], *md = &t[1];
    report_figure fig = {0};
    sb_printf(tsv, "adapter\tr\tlayer\tmodule\tproj_dW\tproj_W\tproj_random\tnorm_W\tnorm_dW\tamplification"
                   "\tproj_chance\tproj_chance_p01\tproj_chance_p05\tproj_chance_p95\tproj_chance_p99\tproj_dW_ratio"
                   "\tfactor_chance\tfactor_chance_p95\tfactor_chance_p99\tfactor_ratio\tchance_trials"
                   "\tfactor_chance_p05\tfactor_chance_p01\n");
    sb_printf(md, "# Amplification (Hu et al. 2021, Table 7, App. H.4)\n\n"
                  "‖UᵀWV‖_F with U, V the top-r singular vectors of ΔW, of W, or of a Gaussian random matrix "
                  "(seed %llu); amplification factor = ‖ΔW‖_F / ‖U_ΔWᵀ W V_ΔW‖_F. Base: `%s`.%s\n"
                  "Paper (GPT-3, layer 48, Wq): r = 4: 0.32 / 21.67 / 0.02, ‖Wq‖_F = 61.95, ‖ΔWq‖_F = 6.91, "
                  "factor ≈ 21.5; r = 64: 1.90 / 37.71 / 0.33, ‖ΔWq‖_F = 3.57, factor ≈ 1.9.\n\n"
                  "Chance (analysis/chance.h): for random r-frames U, V (Haar), E‖UᵀWV‖²_F = r²‖W‖²_F/(d k) exactly; "
                  "p05, p95 from up to %d Monte Carlo draws (fewer for wide matrices: table7.tsv's chance_trials). "
                  "A random ΔW of the same norm and rank has such U, V, so its "
                  "amplification factor is ‖ΔW‖_F / ‖UᵀWV‖_F: chance level ‖ΔW‖_F √(d k) / (r ‖W‖_F), p95 and p99 = "
                  "‖ΔW‖_F over the norm's p05 and p01 (its p01 = ‖ΔW‖_F over the norm's p99). Measured ÷ chance "
                  "is 1 for directions random with respect to W. The paper's claim that ΔW amplifies features "
                  "already in W is the lower tail of the factor: its random column is this chance level "
                  "(4 · 61.95 / 12288 = 0.0202 at r = 4), so its ΔWq projects 0.32 / 0.0202 = 15.8× (r = 4) and "
                  "1.90 / 0.323 = 5.9× (r = 64) more onto W than random directions do, and its factor 21.5 is "
                  "0.06× a random ΔW's (6.91 / 0.0202 = 342). Bold: ‖U_ΔWᵀWV_ΔW‖_F above its chance p99, "
                  "equivalently the factor below the random ΔW's p01 (aligned with W beyond chance).\n\n",
              req->seed, req->base, base_note(req->base), AN_CHANCE_TRIALS);
    for (int l = res->layers.layer0; l < res->layers.layer1; l++)
        for (int mi = 0; mi < req->n_modules; mi++) amplify_md_table(req, res, l, mi, md, tsv);
    // Amplification factor per layer: one panel per module, one line per adapter,
    // each with the band a random ΔW of its norm gives (p05-p95), factor = 1
    // marked, every panel on one y range.
    int rc = 0;
    double lo = INFINITY, hi = 0;
    for (int mi = 0; mi < req->n_modules && !rc; mi++) {
        fig_panel(&fig, "ΔW_{%s}", req->modules[mi]);
        for (int ai = 0; ai < res->n_series && !rc; ai++) {
            const analyze_series *s = &res->series[ai];
            strbuf d = {0};
            sb_printf(&d, "# layer\tamplification\tproj_dW\tnorm_dW\trandom_dW_factor_p05\trandom_dW_factor_p95"
                          "\trandom_dW_factor_chance\tpaper_aligned_factor (%s, module %s)\n", s->dir, req->modules[mi]);
            for (int l = res->layers.layer0; l < res->layers.layer1; l++) {
                const an_amplification *x = amplify_at(res, ai, l, mi);
                an_band fb = an_factor_chance(x->dw_norm, amplify_chance_at(res, ai, l, mi));
                // the factor of a ΔW of this norm as aligned with W as the paper's ΔWq at the nearer of
                // its two ranks (15.8x chance at r = 4, 5.9x at r = 64; the geometric middle is 16)
                double paper = fb.mean / (x->r <= 16 ? PAPER_ALIGN_R4 : PAPER_ALIGN_R64);
                sb_printf(&d, "%d\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\n", l, x->factor, x->proj_dw, x->dw_norm,
                          fb.p05, fb.p95, fb.mean, paper);
                double v[4] = {x->factor, fb.p05, fb.p95, paper};
                for (int k = 0; k < 4; k++)
                    if (isfinite(v[k]) && v[k] > 0) lo = fmin(lo, v[k]), hi = fmax(hi, v[k]);
            }
            char name[128];
            snprintf(name, sizeof name, "amplify_%s_%s.tsv", s->label, req->modules[mi]);
            rc = report_write(data_dir, name, &d);
            sb_free(&d);
            char *path = ls_path_join(data_dir, name);
            char caption[64];
            series_caption(s, caption, sizeof caption);
            if (s->is_lora) fig_add(&fig, path, mi + 1, "LoRA %s", caption);
            else fig_add(&fig, path, mi + 1, "full FT (%s)", s->label);
            free(path);
        }
    }
    if (!(hi > 0)) lo = 0.5, hi = 2;
    lo = fmin(lo, 1.0), hi = fmax(hi, 1.0);
    strbuf extra = {0};
    sb_printf(&extra, "xlabel='layer'; xstep=1; ylabel='‖ΔW‖_F / ‖U_{ΔW}^T W V_{ΔW}‖_F'; logy=1; ymin=%g; ymax=%g; "
                      "bandlo=5; bandhi=6; hline=1; hline_title='factor = 1'; "
                      "band_title='random ΔW, same norm (p05-p95)'; refcol=8; "
                      "ref_title='ΔW as aligned with W as the paper''s (15.8× chance, r ≤ 16; 5.9×, r > 16)'",
              lo / 1.25, hi * 1.25);
    static const char *const names[] = {"table7.tsv", "table7.md"};
    rc = finish(rc, req, t, names, 2, "amplification", "lines.gp", &fig, extra.s);
    sb_free(&extra);
    return rc;
}

// ----------------------------------------------------------------------------
// w-vs-dw (Fig. 8)

int w_vs_dw_render(const analyze_request *req, const w_vs_dw_result *res, const char *data_dir) {
    strbuf t[2] = {{0}}, *tsv = &t[0], *md = &t[1];
    report_figure fig = {0};
    sb_printf(tsv, "what\tr\tlayer\tmodule\timax\tjmax\tmean_phi\tmax_phi\tphi_r_r\tn\tphi_r_r_chance\tphi_r_r_p95"
                   "\tphi_r_r_p99\tphi_r_r_ratio\tmean_phi_chance\tmean_phi_p95\tmean_phi_p99\tmean_phi_ratio\n");
    sb_printf(md, "# W vs ΔW (Hu et al. 2021, Fig. 8, App. H.4)\n\n"
                  "φ between the top-i left singular vectors of W and the top-j of ΔW (or of a Gaussian random "
                  "matrix of W's shape, seed %llu). Base: `%s`.%s\n\n"
                  "Chance: φ for a random r-dimensional subspace of R^d against W's top i (analysis/chance.h): exact "
                  "mean max(i, j)/d, p95 and p99 of %d Monte Carlo draws; ratio = measured / chance mean, in bold "
                  "above p99.\n\n"
                  "| ΔW | r | layer | module | mean φ | max φ | φ(r, r) | φ(r, r) chance / p95 / p99 | ratio "
                  "| mean φ chance / p95 / p99 | ratio |\n|:---|---:|---:|:---|---:|---:|---:|---:|---:|---:|---:|\n",
              req->seed, req->base, base_note(req->base), AN_CHANCE_TRIALS);
    int rc = 0;
    for (int c = 0; c < res->n_cells && !rc; c++) {
        const w_vs_dw_cell *x = &res->cells[c];
        const char *mod = req->modules[x->module];
        int random = x->series < 0, l = x->layer, r = x->r;
        const char *label = random ? "random" : res->series[x->series].label;
        char name[128], what[256];
        snprintf(name, sizeof name, "w_vs_dw_%s_%s_L%d.tsv", label, mod, l);
        snprintf(what, sizeof what, "phi(top-i of W, top-j of %s), module %s, layer %d", random ? "random" : "dW",
                 mod, l);
        rc = write_grid(data_dir, name, x->phi, x->imax, r, what);
        const an_phi_chance *ch = &res->chance[x->chance];
        const an_band *brr = an_phi_chance_at(ch, r < x->imax ? r : x->imax, r);
        sb_printf(tsv, "%s\t%d\t%d\t%s\t%d\t%d\t%.6f\t%.6f\t%.6f\t%d", random ? "random" : res->series[x->series].dir, r,
                  l, mod, x->imax, r, x->mean, x->max, x->phi_rr, x->n);
        tsv_band(tsv, x->phi_rr, brr);
        tsv_band(tsv, x->mean, &ch->grid_mean);
        sb_printf(tsv, "\n");
        sb_printf(md, "| %s | %d | %d | %s | %.4f | %.4f | %.4f |", label, r, l, mod, x->mean, x->max, x->phi_rr);
        md_band(md, x->phi_rr, brr);
        md_band(md, x->mean, &ch->grid_mean);
        sb_printf(md, "\n");
    }
    // A row per layer: W_q vs each ΔW, then random, then the same for W_v (as Fig. 8).
    int per = res->n_series + 1;
    for (int c = 0; c < res->n_cells && !rc; c++) {
        const w_vs_dw_cell *x = &res->cells[c - c % per + (c % per + 1) % per];
        const char *mod = req->modules[x->module];
        int random = x->series < 0;
        char name[128], caption[64];
        snprintf(name, sizeof name, "w_vs_dw_%s_%s_L%d.tsv", random ? "random" : res->series[x->series].label, mod,
                 x->layer);
        char *path = ls_path_join(data_dir, name);
        if (!random) series_caption(&res->series[x->series], caption, sizeof caption);
        if (random) fig_add(&fig, path, 0, "W_{%s} vs random (r = %d), layer %d", mod, x->r, x->layer);
        else fig_add(&fig, path, 0, "W_{%s} vs ΔW_{%s} (%s), layer %d", mod, mod, caption, x->layer);
        free(path);
    }
    strbuf extra = {0};
    sb_printf(&extra, "ncols=%d; xlabel='j (top-j of ΔW, or random)'; ylabel='i (top-i of W)'", res->ncols);
    sb_gp_assign(&extra, "suptitle", "φ(W, ΔW, i, j): left singular vectors, a row per layer (Fig. 8, App. H.3)");
    static const char *const names[] = {"w_vs_dw.tsv", "w_vs_dw.md"};
    rc = finish(rc, req, t, names, 2, "w_vs_dw", "heatmap.gp", &fig, extra.s);
    sb_free(&extra);
    return rc;
}

// ----------------------------------------------------------------------------
// spectrum (beyond the paper)

// <data_dir>/<name>: σ_i, σ_i/σ_1 and the cumulative energy of one spectrum.
static int write_spectrum(const char *data_dir, const char *name, const spectrum_cell *x, const char *what,
                          const char *mod) {
    strbuf d = {0};
    double total = 0, cum = 0;
    const double *S = x->sigma;
    for (int k = 0; k < x->n; k++) total += S[k] * S[k];
    double fro = sqrt(total);
    sb_printf(&d, "# i\tsigma_i\tsigma_i/sigma_1\tcumulative energy\tsigma_i/frobenius (%s, module %s, layer %d)\n",
              what, mod, x->layer);
    for (int k = 0; k < x->n; k++) {
        cum += S[k] * S[k];
        sb_printf(&d, "%d\t%.8g\t%.8g\t%.8g\t%.8g\n", k + 1, S[k], S[0] > 0 ? S[k] / S[0] : 0,
                  total > 0 ? cum / total : 0, fro > 0 ? S[k] / fro : 0);
    }
    int rc = report_write(data_dir, name, &d);
    sb_free(&d);
    return rc;
}

int spectrum_render(const analyze_request *req, const spectrum_result *res, const char *data_dir) {
    strbuf t[2] = {{0}}, *tsv = &t[0], *md = &t[1], colors = {0};
    report_figure fig = {0};
    int of_w = res->of_w, nmax = 1;
    sb_printf(tsv, "what\tlayer\tmodule\tn\tsigma_1\tfrobenius\tnuclear\tstable_rank\teffective_rank\tenergy_rank\n");
    sb_printf(md, "# Singular spectrum of %s\n\nEffective rank (Roy & Vetterli 2007), stable rank ‖·‖²_F/‖·‖²_2, and "
                  "the smallest rank holding %.0f%% of ‖·‖²_F.\n\n"
                  "| %s | layer | module | σ_1 | ‖·‖_F | effective rank | stable rank | %.0f%%-energy rank | n |\n"
                  "|:---|---:|:---|---:|---:|---:|---:|---:|---:|\n",
              of_w ? "the pretrained W"
                   : "ΔW (LoRA: s·B·A; DoRA with its base: W' - W; full fine-tuning: W_ft - W0)",
              100 * req->energy, of_w ? "W" : "adapter", 100 * req->energy);
    // One panel per module; every (series, layer) spectrum overlaid, normalised
    // by its Frobenius norm so that ranks and full fine-tuning compare; one
    // colour (and one legend entry) per series.
    for (int mi = 0; mi < req->n_modules; mi++) fig_panel(&fig, of_w ? "W_{%s}" : "ΔW_{%s}", req->modules[mi]);
    int rc = 0;
    for (int c = 0; c < res->n_cells && !rc; c++) {
        const spectrum_cell *x = &res->cells[c];
        const char *mod = req->modules[x->module];
        const analyze_series *s = &res->series[x->series];
        const an_spectrum_summary *sum = &x->sum;
        const char *what = of_w ? "W" : s->label;
        sb_printf(tsv, "%s\t%d\t%s\t%d\t%.6g\t%.6g\t%.6g\t%.4f\t%.4f\t%d\n", of_w ? "W" : s->dir, x->layer, mod, sum->n,
                  sum->spectral, sum->frobenius, sum->nuclear, sum->stable_rank, sum->effective_rank, sum->energy_rank);
        sb_printf(md, "| %s | %d | %s | %.4g | %.4g | %.2f | %.2f | %d | %d |\n", what, x->layer, mod, sum->spectral,
                  sum->frobenius, sum->effective_rank, sum->stable_rank, sum->energy_rank, sum->n);
        char name[128], caption[64];
        snprintf(name, sizeof name, "spectrum_%s_%s_L%d.tsv", what, mod, x->layer);
        rc = write_spectrum(data_dir, name, x, what, mod);
        char *path = ls_path_join(data_dir, name);
        if (of_w) snprintf(caption, sizeof caption, "W");
        else series_caption(s, caption, sizeof caption);
        if (x->layer == res->layers.layer0) fig_add(&fig, path, x->module + 1, "%s", caption);
        else fig_add(&fig, path, x->module + 1, "%s", "");
        sb_printf(&colors, "%s%d", colors.len ? " " : "", x->series + 1);
        nmax = x->n > nmax ? x->n : nmax;
        free(path);
    }
    strbuf extra = {0};
    sb_printf(&extra, "xlabel='i'; ylabel='σ_i / ‖%s‖_F'; logy=1; xfix=1; ycol=5; ncols=%d%s", of_w ? "W" : "ΔW",
              req->n_modules, nmax <= 16 ? "; xstep=1" : "");
    sb_gp_assign(&extra, "colors", colors.s ? colors.s : "");
    sb_free(&colors);
    static const char *const names[] = {"spectrum.tsv", "spectrum.md"};
    rc = finish(rc, req, t, names, 2, "spectrum", "lines.gp", &fig, extra.s);
    sb_free(&extra);
    return rc;
}

// ----------------------------------------------------------------------------
// intruders (Shuttleworth et al. 2024)

int intruders_render(const analyze_request *req, const intruders_result *res, const char *data_dir) {
    strbuf t[3] = {{0}}, *tsv = &t[0], *items = &t[1], *md = &t[2];
    report_figure fig = {0};
    sb_printf(tsv, "adapter\tlayer\tmodule\tk\teps\tintruders\n");
    sb_printf(items, "adapter\tlayer\tmodule\tindex\tsigma\tmax_cos\tbest_match\tintruder\n");
    sb_printf(md, "# Intruder dimensions (Shuttleworth et al. 2024)\n\nOf the top-%d left singular vectors of "
                  "W0 + ΔW, those whose max |cos| with every singular vector of W0 is below ε = %g. Base: `%s`.%s\n\n"
                  "| adapter | layer | module | intruders (of %d) | min max-cos |\n|:---|---:|:---|---:|---:|\n",
              req->top_k, req->eps, req->base, base_note(req->base), req->top_k);
    int rc = 0;
    for (int c = 0; c < res->n_cells && !rc; c++) {
        const intruders_cell *x = &res->cells[c];
        const char *mod = req->modules[x->module];
        const analyze_series *s = &res->series[x->series];
        int l = x->layer;
        if (l == res->layers.layer0) fig_panel(&fig, "W_{%s} + ΔW_{%s} (%s)", mod, mod, s->label);
        strbuf d = {0};
        sb_printf(&d, "# index\tmax_cos\tsigma (%s, module %s, layer %d)\n", s->label, mod, l);
        for (int k = 0; k < x->found.k; k++) {
            const an_intruder *it = &x->found.items[k];
            sb_printf(items, "%s\t%d\t%s\t%d\t%.6g\t%.6f\t%d\t%d\n", s->dir, l, mod, it->index + 1, it->sigma,
                      it->max_cos, it->best_match + 1, it->is_intruder);
            sb_printf(&d, "%d\t%.6f\t%.6g\n", it->index + 1, it->max_cos, it->sigma);
        }
        sb_printf(tsv, "%s\t%d\t%s\t%d\t%g\t%d\n", s->dir, l, mod, x->found.k, x->found.eps, x->found.count);
        sb_printf(md, "| %s | %d | %s | %d | %.4f |\n", s->label, l, mod, x->found.count, x->min_cos);
        char name[128];
        snprintf(name, sizeof name, "intruders_%s_%s_L%d.tsv", s->label, mod, l);
        rc = report_write(data_dir, name, &d);
        sb_free(&d);
        char *path = ls_path_join(data_dir, name);
        fig_add(&fig, path, x->series * req->n_modules + x->module + 1, "layer %d", l);
        free(path);
    }
    char extra[256];
    snprintf(extra, sizeof extra, "xlabel='singular vector i of W_0 + ΔW'; ylabel='max_j |cos(u_i, u^0_j)|'; "
             "hline=%g; ymin=0; ymax=1.05; ncols=%d", req->eps, req->n_modules);
    static const char *const names[] = {"intruders.tsv", "intruders_vectors.tsv", "intruders.md"};
    return finish(rc, req, t, names, 3, "intruders", "lines.gp", &fig, extra);
}

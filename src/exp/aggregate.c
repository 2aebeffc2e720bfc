// aggregate: an experiment's numbers across its runs — tables of mean ± std
// over seeds (Tables 5, 6, 18) with rank-sweep figures, and training curves.
#include "exp/aggregate.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "base/parse.h"
#include "base/util.h"
#include "report/report.h"
#include "train/train.h"

// ----------------------------------------------------------------------------
// reading a run's numbers

// The value of `metric` for a finished run:
//   val_loss       the last evaluation's validation loss (metrics.jsonl)
//   base_val_loss  the first evaluation's (step 0: the base model)
//   train_loss     the last logged training loss
//   best_KEY       the best value of KEY over the evaluations after step 0
//                  (metrics.jsonl): the largest, or the smallest for a KEY
//                  that ends in "loss". The paper takes each GLUE run's
//                  result from its best epoch (Hu et al. 2021, Sec. 5.3):
//                  with one evaluation an epoch, best_val_accuracy is that
//   anything else  a key of <run>/eval.json (task metrics: bleu, rouge_l,
//                  accuracy, ...) or else of the last metrics line that has it
// A run record (eval.json, manifest.json) as JSON: *out NULL when the file is
// absent; -1 with ls_error() when it is there but cannot be read or parsed
// (a damaged record must not read as "no value").
static int read_record(const exp_run *r, const char *name, cJSON **out) {
    *out = NULL;
    char *path = ls_path_join(r->dir, name);
    int rc = 0;
    if (ls_exists(path)) {
        char *text = ls_read_file_max(path, NULL, LS_READ_SMALL_MAX);
        if (!text || !(*out = cJSON_Parse(text)))
            rc = text ? ls_fail("%s: not valid JSON (a damaged run record)", path) : -1;
        free(text);
    }
    free(path);
    return rc;
}

// The number `key` of a record, or NAN.
static double record_number(const cJSON *root, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(root, key);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

// Which value of a key metrics.jsonl gives: the last, the first, or the
// largest / smallest of the lines after step 0 (best_KEY).
typedef enum { PICK_LAST, PICK_FIRST, PICK_MAX, PICK_MIN } metrics_pick;

// The `pick` value of `key` in metrics.jsonl into *v; NAN if none.
static int metrics_number(const exp_run *r, const char *key, metrics_pick pick, double *v) {
    *v = NAN;
    char *path = ls_path_join(r->dir, RUN_METRICS_FILE);
    char *text = ls_exists(path) ? ls_read_file_max(path, NULL, LS_READ_DATA_MAX) : NULL;
    int rc = ls_exists(path) && !text ? -1 : 0, line_no = 0;
    char *save = NULL;
    for (char *line = text ? strtok_r(text, "\n", &save) : NULL; line && !rc; line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        cJSON *o = cJSON_Parse(line);
        if (!o) rc = ls_fail("%s:%d: not valid JSON (a damaged run record)", path, line_no);
        double x = record_number(o, key);
        int best = pick == PICK_MAX || pick == PICK_MIN, counts = !isnan(x) && (!best || record_number(o, "step") > 0);
        if (counts && (pick == PICK_LAST || isnan(*v) || (pick == PICK_MAX && x > *v) || (pick == PICK_MIN && x < *v)))
            *v = x;
        cJSON_Delete(o);
    }
    free(text);
    free(path);
    return rc;
}

// The value of `metric` for a finished run (see above) into *v (NAN: the run
// has none). Returns 0, or -1 with ls_error() when a record is damaged.
static int run_metric(const exp_run *r, const char *metric, double *v) {
    *v = NAN;
    cJSON *root;
    if (!strncmp(metric, "best_", 5) && metric[5]) { // over the evaluations, not a run record
        size_t len = strlen(metric);
        int lower = len >= 9 && !strcmp(metric + len - 4, "loss");
        return metrics_number(r, metric + 5, lower ? PICK_MIN : PICK_MAX, v);
    }
    int run_level = strcmp(metric, "val_loss") && strcmp(metric, "base_val_loss") && strcmp(metric, "train_loss");
    if (run_level) {
        if (read_record(r, RUN_EVAL_FILE, &root)) return -1;
        *v = record_number(root, metric);
        cJSON_Delete(root);
        if (!isnan(*v)) return 0;
    }
    // Run-level numbers the manifest records (trainable_params, wall_time_s, tokens_seen, ...).
    if (read_record(r, RUN_MANIFEST_FILE, &root)) return -1;
    *v = record_number(root, metric);
    cJSON_Delete(root);
    if (!isnan(*v)) return 0;
    const char *key = !strcmp(metric, "base_val_loss") ? "val_loss" : !strcmp(metric, "train_loss") ? "loss" : metric;
    return metrics_number(r, key, !strcmp(metric, "base_val_loss") ? PICK_FIRST : PICK_LAST, v);
}

// Mean and sample std of the finite values of x[0..n); returns their count.
static int mean_std(const double *x, int n, double *mean, double *std) {
    double s = 0, q = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(x[i])) s += x[i], k++;
    *mean = k ? s / k : NAN;
    for (int i = 0; i < n; i++)
        if (!isnan(x[i])) q += (x[i] - *mean) * (x[i] - *mean);
    *std = k > 1 ? sqrt(q / (k - 1)) : (k == 1 ? 0 : NAN); // sample std over seeds
    return k;
}

static int split_list(const char *text, char sep, char out[][64], int max) {
    int n = 0;
    const char *p = text;
    while (*p && n < max) {
        while (*p == ' ' || *p == sep) p++;
        if (!*p) break;
        const char *e = strchr(p, sep);
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len && p[len - 1] == ' ') len--;
        if (len >= 64) len = 63;
        memcpy(out[n], p, len);
        out[n++][len] = 0;
        p += len;
    }
    return n;
}

static int axis_index(const experiment *e, const char *name) {
    for (int i = 0; i < e->n_axes; i++)
        if (!strcmp(e->axes[i].name, name)) return i;
    return -1;
}

static const char *metric_title(const char *m) {
    if (!strcmp(m, "val_loss")) return "val. loss";
    if (!strcmp(m, "base_val_loss")) return "base val. loss";
    if (!strcmp(m, "train_loss")) return "train loss";
    if (!strcmp(m, "bleu")) return "BLEU";
    if (!strcmp(m, "rouge_l")) return "ROUGE-L";
    if (!strcmp(m, "nist")) return "NIST";
    if (!strcmp(m, "cider")) return "CIDEr";
    if (!strcmp(m, "meteor_exact_stem_synonym")) return "METEOR (exact+stem+synonym, no paraphrase)";
    if (!strcmp(m, "accuracy")) return "accuracy";
    if (!strcmp(m, "val_accuracy")) return "val. accuracy";
    if (!strcmp(m, "best_val_accuracy")) return "best val. accuracy";
    if (!strcmp(m, "best_val_loss")) return "best val. loss";
    if (!strcmp(m, "trainable_params")) return "trainable params";
    return m;
}

// ----------------------------------------------------------------------------
// kind = table

// A table's layout from its [analysis] keys: the row axes, the metrics and
// the axis averaged over.
typedef struct {
    char rows[8][64], metrics[8][64];
    int nr, nm, row_ax[8], over_ax, median;
    const char *over, *title, *stem;
} table_spec;

static int lead_of(const experiment *e, int a) { return e->axes[a].leader >= 0 ? e->axes[a].leader : a; }

static int table_spec_read(const experiment *e, const exp_analysis *an, table_spec *t) {
    memset(t, 0, sizeof *t);
    const char *rows_s = exp_analysis_get(an, "rows"), *metrics_s = exp_analysis_get(an, "metrics");
    t->over = exp_analysis_get(an, "over");
    t->title = exp_analysis_get(an, "title") ? exp_analysis_get(an, "title") : an->name;
    t->stem = exp_analysis_get(an, "output") ? exp_analysis_get(an, "output") : an->name;
    if (!metrics_s || (!rows_s && !t->over))
        return ls_fail("%s:%d: [analysis %s] kind table needs 'metrics', and 'rows' (axes) or 'over'", e->path,
                       an->line, an->name);
    t->nr = rows_s ? split_list(rows_s, ',', t->rows, 8) : 0; // none: one row, "all" of `over`
    const char *median = exp_analysis_get(an, "median");
    if (median && strcmp(median, "yes") && strcmp(median, "no"))
        return ls_fail("%s:%d: [analysis %s] median: expected yes or no, found '%s'", e->path, an->line, an->name,
                       median);
    t->median = median && !strcmp(median, "yes");
    t->nm = split_list(metrics_s, ',', t->metrics, 8);
    t->over_ax = t->over ? axis_index(e, t->over) : -1;
    for (int i = 0; i < t->nr; i++)
        if ((t->row_ax[i] = axis_index(e, t->rows[i])) < 0)
            return ls_fail("%s:%d: [analysis %s] rows: no sweep axis '%s'", e->path, an->line, an->name, t->rows[i]);
    if (t->over && t->over_ax < 0)
        return ls_fail("%s:%d: [analysis %s] over: no sweep axis '%s'", e->path, an->line, an->name, t->over);
    for (int a = 0; a < e->n_axes; a++) {
        // An axis zipped with a row (or `over`) axis varies with it.
        int lead = lead_of(e, a);
        int used = a == t->over_ax || (t->over_ax >= 0 && lead == lead_of(e, t->over_ax));
        for (int i = 0; i < t->nr; i++) used |= lead == lead_of(e, t->row_ax[i]);
        if (!used && e->axes[a].n_values > 1)
            return ls_fail("%s:%d: [analysis %s] axis '%s' has %d values but is neither in 'rows' nor 'over'", e->path,
                           an->line, an->name, e->axes[a].name, e->axes[a].n_values);
    }
    return 0;
}

// The metric `compare` names, as its index among the table's metrics; -1 if absent or not one.
static int compare_metric(const exp_analysis *an, const table_spec *t) {
    const char *c = exp_analysis_get(an, "compare");
    for (int m = 0; c && m < t->nm; m++)
        if (!strcmp(t->metrics[m], c)) return m;
    return -1;
}

// Row groups in sweep order: a run starts a new group unless an earlier run
// has the same row values (by text: a zipped axis may repeat a value, rank =
// 8 | 8 | 64 beside seed = 1 | 2 | 1). Returns the number of groups.
static int table_groups(const experiment *e, const table_spec *t, const exp_run *runs, int n, int *group_of,
                        int *group_first) {
    int n_groups = 0;
    for (int r = 0; r < n; r++) {
        int g = -1;
        for (int k = 0; k < n_groups && g < 0; k++) {
            int same = 1;
            for (int i = 0; i < t->nr; i++) {
                const exp_axis *ax = &e->axes[t->row_ax[i]];
                same &= !strcmp(ax->values[runs[group_first[k]].value_index[t->row_ax[i]]],
                                ax->values[runs[r].value_index[t->row_ax[i]]]);
            }
            if (same) g = k;
        }
        if (g < 0) {
            g = n_groups++;
            group_first[g] = r;
        }
        group_of[r] = g;
    }
    return n_groups;
}

static void table_header(const experiment *e, const table_spec *t, strbuf *tsv, strbuf *md) {
    for (int i = 0; i < t->nr; i++) sb_printf(tsv, "%s\t", t->rows[i]);
    if (!t->nr) sb_printf(tsv, "%s\t", t->over);
    for (int m = 0; m < t->nm; m++) {
        sb_printf(tsv, "%s_mean\t%s_std\t%s_ci95\t", t->metrics[m], t->metrics[m], t->metrics[m]);
        if (t->median) sb_printf(tsv, "%s_median\t", t->metrics[m]);
    }
    sb_printf(tsv, "n\n");
    sb_printf(md, "# %s\n\n", t->title);
    if (e->reproduces) sb_printf(md, "Reproduces: %s.", e->reproduces);
    if (e->differs) sb_printf(md, " Differs from the paper: %s", e->differs);
    sb_printf(md,
              "\n\nMean ± sample std over %s%s; in brackets, the mean's 95%% Student-t interval (mean ± t·std/√n, "
              "t with n − 1 degrees of freedom), where n > 1.%s\n\n|",
              t->over ? t->over : "runs", t->over ? " values" : "",
              t->median ? " Then the median over the same values (the paper's statistic for GLUE, over 5 seeds)." : "");
    for (int i = 0; i < t->nr; i++) sb_printf(md, " %s |", t->rows[i]);
    if (!t->nr) sb_printf(md, " %s |", t->over);
    for (int m = 0; m < t->nm; m++) sb_printf(md, " %s |", metric_title(t->metrics[m]));
    sb_printf(md, " n |\n|");
    for (int i = 0; i < (t->nr ? t->nr : 1); i++) sb_printf(md, ":---|");
    for (int m = 0; m < t->nm + 1; m++) sb_printf(md, "---:|");
    sb_printf(md, "\n");
}

// One row per group: mean ± std of each metric over the group's runs.
static int table_rows(const experiment *e, const exp_analysis *an, const table_spec *t, const exp_run *runs, int n,
                      const int *group_of, const int *group_first, int n_groups, double *means, double *stds,
                      int *counts, strbuf *tsv, strbuf *md) {
    double *vals = ls_calloc((size_t)n, sizeof(double));
    int rc = 0;
    for (int g = 0; g < n_groups && !rc; g++) {
        const exp_run *f = &runs[group_first[g]];
        sb_printf(md, "|");
        for (int i = 0; i < t->nr; i++) {
            const char *v = e->axes[t->row_ax[i]].values[f->value_index[t->row_ax[i]]];
            sb_printf(tsv, "%s\t", v);
            sb_printf(md, " %s |", v);
        }
        if (!t->nr) {
            sb_printf(tsv, "all\t");
            sb_printf(md, " all |");
        }
        int count = 0;
        for (int m = 0; m < t->nm && !rc; m++) {
            int k = 0;
            for (int r = 0; r < n; r++)
                if (group_of[r] == g && !rc) rc = run_metric(&runs[r], t->metrics[m], &vals[k++]);
            if (rc) break;
            count = k;
            int missing = 0;
            for (int i = 0; i < k; i++) missing += isnan(vals[i]);
            if (missing == k) {
                rc = ls_fail("%s: [analysis %s]: metric '%s' not found in any run of row %d (looked in metrics.jsonl "
                             "and eval.json of %s)", e->path, an->name, t->metrics[m], g + 1, f->dir);
                break;
            }
            int finite = mean_std(vals, k, &means[g * t->nm + m], &stds[g * t->nm + m]);
            counts[g * t->nm + m] = finite;
            double mu = means[g * t->nm + m], sd = stds[g * t->nm + m];
            double half = an_t975(finite - 1) * sd / sqrt(finite); // NAN for one run
            sb_printf(tsv, "%.6g\t%.6g\t%.6g\t", mu, sd, half);
            int big = fabs(mu) >= 100;
            if (finite > 1 && half >= (big ? 0.5 : 5e-5)) // an interval that rounds to ± 0 is not shown
                sb_printf(md, big ? " %.0f ± %.0f [%.0f, %.0f]" : " %.4f ± %.4f [%.4f, %.4f]", mu, sd, mu - half,
                          mu + half);
            else if (finite > 1) sb_printf(md, big ? " %.0f ± %.0f" : " %.4f ± %.4f", mu, sd);
            else sb_printf(md, big ? " %.0f" : " %.4f", mu);
            if (t->median) {
                int j = 0;
                for (int i = 0; i < k; i++)
                    if (!isnan(vals[i])) vals[j++] = vals[i];
                double med = an_quantile(vals, j, 0.5);
                sb_printf(tsv, "%.6g\t", med);
                sb_printf(md, big ? ", median %.0f" : ", median %.4f", med);
            }
            sb_printf(md, " |");
        }
        sb_printf(tsv, "%d\n", count);
        sb_printf(md, " %d |\n", count);
    }
    free(vals);
    return rc;
}

// Optional figure: `plot_x` (a row axis with numeric values, e.g. rank)
// against the first metric, one line per value of `plot_series`, error bars = std.
static int table_plot(const experiment *e, const exp_analysis *an, const table_spec *t, const exp_run *runs,
                      const int *group_first, int n_groups, const double *means, const double *stds,
                      const char *out_dir) {
    const char *px = exp_analysis_get(an, "plot_x"), *ps = exp_analysis_get(an, "plot_series");
    int xi = -1, si = -1, rc = 0;
    for (int i = 0; i < t->nr; i++) {
        if (!strcmp(t->rows[i], px)) xi = i;
        if (ps && !strcmp(t->rows[i], ps)) si = i;
    }
    if (xi < 0 || (ps && si < 0))
        return ls_fail("%s: [analysis %s]: plot_x/plot_series must be among the rows", e->path, an->name);
    report_figure fig = {0};
    fig_panel(&fig, "%s", t->title);
    int n_series = si < 0 ? 1 : e->axes[t->row_ax[si]].n_values;
    char name[128];
    for (int sv = 0; sv < n_series && !rc; sv++) {
        strbuf d = {0};
        sb_printf(&d, "# %s\t%s_mean\t%s_std\n", px, t->metrics[0], t->metrics[0]);
        for (int g = 0; g < n_groups; g++) {
            const exp_run *f = &runs[group_first[g]];
            if (si >= 0 && f->value_index[t->row_ax[si]] != sv) continue;
            sb_printf(&d, "%s\t%.6g\t%.6g\n", e->axes[t->row_ax[xi]].values[f->value_index[t->row_ax[xi]]],
                      means[g * t->nm], stds[g * t->nm]);
        }
        snprintf(name, sizeof name, "data/%s", t->stem);
        char *data_dir = ls_path_join(out_dir, name);
        rc = ls_mkdir_p(data_dir);
        free(data_dir);
        snprintf(name, sizeof name, "data/%s/%s%d.tsv", t->stem, ps ? ps : "all", sv);
        if (!rc) rc = report_write(out_dir, name, &d);
        sb_free(&d);
        char *full = ls_path_join(out_dir, name);
        if (si >= 0) fig_add(&fig, full, 1, "%s = %s", ps, e->axes[t->row_ax[si]].values[sv]);
        else fig_add(&fig, full, 1, "%s", metric_title(t->metrics[0]));
        free(full);
    }
    if (!rc) {
        strbuf extra = {0};
        sb_gp_assign(&extra, "xlabel", px);
        sb_gp_assign(&extra, "ylabel", metric_title(t->metrics[0]));
        sb_printf(&extra, "; errorbars=1; logx=%d; ncols=1", !strcmp(px, "rank"));
        // `plot_reference = METRIC`: that metric's mean over the runs as a line
        // across the panel (Table 6: the base model's validation loss)
        const char *ref = exp_analysis_get(an, "plot_reference");
        for (int k = 0; ref && k < t->nm; k++) {
            if (strcmp(t->metrics[k], ref)) continue;
            double sum = 0;
            for (int g = 0; g < n_groups; g++) sum += means[g * t->nm + k];
            char v[64], title[128];
            snprintf(v, sizeof v, "%.6g", n_groups ? sum / n_groups : NAN);
            snprintf(title, sizeof title, "\"%s\"", metric_title(ref));
            sb_gp_assign(&extra, "hlines", v);
            sb_gp_assign(&extra, "hline_titles", title);
        }
        rc = report_plot_figure(out_dir, t->stem, "lines.gp", &fig, extra.s);
        sb_free(&extra);
    }
    fig_free(&fig);
    return rc;
}

// ----------------------------------------------------------------------------
// checks before anything trains

// Items in a separated list, counting those split_list would drop.
static int count_list(const char *text, char sep) {
    char buf[1][64];
    int n = 0;
    for (const char *p = text; *p;) {
        while (*p == ' ' || *p == sep) p++;
        if (!*p) break;
        n += split_list(p, sep, buf, 1);
        const char *e = strchr(p, sep);
        p = e ? e : p + strlen(p);
    }
    return n;
}

// Every key of the section is one the kind reads.
static int known_keys(const experiment *e, const exp_analysis *an, const char *const *keys, const char *expected) {
    for (int k = 0; k < an->n_kv; k++) {
        int known = 0;
        for (int j = 0; keys[j]; j++) known |= !strcmp(an->kv[k].key, keys[j]);
        if (!known)
            return ls_fail("%s:%d: [analysis %s] unknown key '%s' for kind %s (expected %s)", e->path, an->kv[k].line,
                           an->name, an->kv[k].key, an->kind, expected);
    }
    return 0;
}

int exp_table_check(const experiment *e, const exp_analysis *an) {
    static const char *const keys[] = {"kind",        "rows",           "over",    "metrics", "title",  "output", "plot_x",
                                       "plot_series", "plot_reference", "compare", "median", NULL};
    if (known_keys(e, an, keys,
                   "rows, over, metrics, title, output, plot_x, plot_series, plot_reference, compare, median"))
        return -1;
    table_spec t;
    if (table_spec_read(e, an, &t)) return -1;
    if (exp_analysis_get(an, "compare") && compare_metric(an, &t) < 0)
        return ls_fail("%s:%d: [analysis %s] compare: expected one of the metrics, found '%s'", e->path, an->line,
                       an->name, exp_analysis_get(an, "compare"));
    const char *lists[2] = {"rows", "metrics"};
    for (int i = 0; i < 2; i++)
        if (exp_analysis_get(an, lists[i]) && count_list(exp_analysis_get(an, lists[i]), ',') > 8)
            return ls_fail("%s:%d: [analysis %s] %s: at most 8", e->path, an->line, an->name, lists[i]);
    const char *px = exp_analysis_get(an, "plot_x"), *ps = exp_analysis_get(an, "plot_series");
    if (ps && !px) return ls_fail("%s:%d: [analysis %s] plot_series needs plot_x", e->path, an->line, an->name);
    int xi = -1, si = -1;
    for (int i = 0; i < t.nr; i++) {
        if (px && !strcmp(t.rows[i], px)) xi = i;
        if (ps && !strcmp(t.rows[i], ps)) si = i;
    }
    if ((px && xi < 0) || (ps && si < 0))
        return ls_fail("%s:%d: [analysis %s] plot_x/plot_series must be among the rows", e->path, an->line, an->name);
    const char *ref = exp_analysis_get(an, "plot_reference");
    int found = 0;
    for (int i = 0; ref && i < t.nm; i++) found |= !strcmp(t.metrics[i], ref);
    if (ref && (!px || !found))
        return ls_fail("%s:%d: [analysis %s] plot_reference: expected one of the metrics, with plot_x, found '%s'",
                       e->path, an->line, an->name, ref);
    return 0;
}

// `from` of a curve section (the first step drawn; 0 when absent) into *from.
static int curve_from(const experiment *e, const exp_analysis *an, int *from) {
    *from = 0;
    const char *text = exp_analysis_get(an, "from");
    char who[256];
    snprintf(who, sizeof who, "%s:%d: [analysis %s] from", e->path, an->line, an->name);
    return text ? ls_parse_int(text, who, 0, 1 << 30, from) : 0;
}

int exp_curve_check(const experiment *e, const exp_analysis *an, const exp_run *runs, int n) {
    static const char *const keys[] = {"kind", "runs", "metric", "title", "from", NULL};
    int from;
    if (known_keys(e, an, keys, "runs, metric, title, from") || curve_from(e, an, &from)) return -1;
    const char *list = exp_analysis_get(an, "runs");
    if (!list) return ls_fail("%s:%d: [analysis %s] kind curve needs 'runs'", e->path, an->line, an->name);
    if (count_list(list, '|') > 16)
        return ls_fail("%s:%d: [analysis %s] runs: at most 16 selectors", e->path, an->line, an->name);
    char sels[16][64];
    int ns = split_list(list, '|', sels, 16), rc = 0;
    int *idx = ls_calloc((size_t)n + 1, sizeof(int));
    for (int s = 0; s < ns && !rc; s++) {
        int k = exp_select(e, runs, n, sels[s], idx);
        if (k < 0) rc = ls_fail_prefix("%s:%d: [analysis %s] runs", e->path, an->line, an->name);
        else if (k == 0)
            rc = ls_fail("%s:%d: [analysis %s] runs: selector '%s' picks no run", e->path, an->line, an->name, sels[s]);
    }
    free(idx);
    return rc;
}

// A group's row values joined by " / " (a value may hold commas: lora = q,v).
static void row_label(const experiment *e, const table_spec *t, const exp_run *f, char *out, size_t size) {
    out[0] = 0;
    for (int i = 0; i < t->nr; i++) {
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%s%s", i ? " / " : "", e->axes[t->row_ax[i]].values[f->value_index[t->row_ax[i]]]);
    }
}

// compare = METRIC: Welch's t-test of METRIC's means between every two rows,
// into <output>_compare.tsv and .md.
static int table_compare(const experiment *e, const table_spec *t, int m, const exp_run *runs,
                         const int *group_first, int n_groups, const double *means, const double *stds,
                         const int *counts, const char *out_dir) {
    strbuf tsv = {0}, md = {0};
    const char *metric = t->metrics[m];
    sb_printf(&tsv, "row_a\trow_b\t%s_a\t%s_b\tdifference\twelch_t\twelch_df\tp_two_sided\tn_a\tn_b\n", metric,
              metric);
    sb_printf(&md, "# %s: %s compared between rows\n\n", t->title, metric_title(metric));
    sb_printf(&md,
              "Welch's t-test (unequal variances, two-sided; degrees of freedom by Welch–Satterthwaite) of the "
              "mean %s over %s%s, for every two rows: difference a − b, t, df, p. No test (—) where a row has "
              "fewer than 2 values or both rows have a std of 0. Pairs are many and seeds few: read p as a guide, "
              "not a verdict, and not corrected for the number of pairs.\n\n",
              metric_title(metric), t->over ? t->over : "runs", t->over ? " values" : "");
    sb_printf(&md, "| a | b | a − b | t | df | p | n |\n|:---|:---|---:|---:|---:|---:|---:|\n");
    for (int a = 0; a < n_groups; a++)
        for (int b = a + 1; b < n_groups; b++) {
            char la[512], lb[512];
            row_label(e, t, &runs[group_first[a]], la, sizeof la);
            row_label(e, t, &runs[group_first[b]], lb, sizeof lb);
            int ia = a * t->nm + m, ib = b * t->nm + m;
            double tt, df, p = an_welch(means[ia], stds[ia], counts[ia], means[ib], stds[ib], counts[ib], &tt, &df);
            double diff = means[ia] - means[ib];
            sb_printf(&tsv, "%s\t%s\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g\t%d\t%d\n", la, lb, means[ia], means[ib],
                      diff, tt, df, p, counts[ia], counts[ib]);
            if (isnan(p))
                sb_printf(&md, "| %s | %s | %.4f | — | — | — | %d, %d |\n", la, lb, diff, counts[ia], counts[ib]);
            else
                sb_printf(&md, "| %s | %s | %.4f | %.2f | %.1f | %.3g | %d, %d |\n", la, lb, diff, tt, df, p,
                          counts[ia], counts[ib]);
        }
    char name[160];
    snprintf(name, sizeof name, "%s_compare.tsv", t->stem);
    int rc = report_write(out_dir, name, &tsv);
    snprintf(name, sizeof name, "%s_compare.md", t->stem);
    if (!rc) rc = report_write(out_dir, name, &md);
    sb_free(&tsv);
    sb_free(&md);
    return rc;
}

int exp_table(const experiment *e, const exp_analysis *an, const exp_run *runs, int n, const char *out_dir,
              int no_plot) {
    table_spec t;
    if (table_spec_read(e, an, &t) || ls_mkdir_p(out_dir)) return -1;
    strbuf tsv = {0}, md = {0};
    table_header(e, &t, &tsv, &md);
    int *group_of = ls_calloc((size_t)n, sizeof(int)), *group_first = ls_calloc((size_t)n, sizeof(int));
    int n_groups = table_groups(e, &t, runs, n, group_of, group_first);
    double *means = ls_calloc((size_t)n_groups * t.nm, sizeof(double));
    double *stds = ls_calloc((size_t)n_groups * t.nm, sizeof(double));
    int *counts = ls_calloc((size_t)n_groups * t.nm, sizeof(int));
    int rc = table_rows(e, an, &t, runs, n, group_of, group_first, n_groups, means, stds, counts, &tsv, &md);
    char name[128];
    snprintf(name, sizeof name, "%s.tsv", t.stem);
    if (!rc) rc = report_write(out_dir, name, &tsv);
    snprintf(name, sizeof name, "%s.md", t.stem);
    if (!rc) rc = report_write(out_dir, name, &md);
    if (!rc && exp_analysis_get(an, "plot_x") && !no_plot)
        rc = table_plot(e, an, &t, runs, group_first, n_groups, means, stds, out_dir);
    if (!rc && compare_metric(an, &t) >= 0)
        rc = table_compare(e, &t, compare_metric(an, &t), runs, group_first, n_groups, means, stds, counts, out_dir);
    free(counts);
    free(group_of);
    free(group_first);
    free(means);
    free(stds);
    sb_free(&tsv);
    sb_free(&md);
    return rc;
}

// ----------------------------------------------------------------------------
// kind = curve

// [analysis NAME] kind = curve: validation loss against step for the runs
// selected by `runs` (selectors separated by '|'), one panel.
int exp_curve(const experiment *e, const exp_analysis *an, const exp_run *runs, int n, const char *out_dir,
                      int no_plot) {
    const char *list = exp_analysis_get(an, "runs");
    const char *metric = exp_analysis_get(an, "metric");
    if (!metric) metric = "val_loss";
    if (!list) return ls_fail("%s:%d: [analysis %s] kind curve needs 'runs'", e->path, an->line, an->name);
    int from;
    if (curve_from(e, an, &from)) return -1;
    char name[256];
    snprintf(name, sizeof name, "data/%s", an->name);
    char *data_dir = ls_path_join(out_dir, name);
    int rc = ls_mkdir_p(data_dir);
    report_figure fig = {0};
    fig_panel(&fig, "%s", exp_analysis_get(an, "title") ? exp_analysis_get(an, "title") : an->name);
    char sels[16][64];
    int ns = split_list(list, '|', sels, 16);
    int *idx = ls_calloc((size_t)n + 1, sizeof(int));
    for (int s = 0; s < ns && !rc; s++) {
        int k = exp_select(e, runs, n, sels[s], idx);
        if (k < 0) {
            rc = ls_fail_prefix("%s: [analysis %s] runs", e->path, an->name);
            break;
        }
        for (int j = 0; j < k && !rc; j++) {
            const exp_run *r = &runs[idx[j]];
            char *path = ls_path_join(r->dir, RUN_METRICS_FILE);
            char *text = ls_read_file_max(path, NULL, LS_READ_DATA_MAX);
            free(path);
            if (!text) {
                rc = -1;
                break;
            }
            strbuf d = {0};
            sb_printf(&d, "# step\t%s (%s)\n", metric, r->label);
            char *save = NULL;
            for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                cJSON *o = cJSON_Parse(line);
                const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, metric);
                const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "step");
                if (cJSON_IsNumber(x) && cJSON_IsNumber(st) && st->valueint >= from)
                    sb_printf(&d, "%d\t%.6g\n", st->valueint, x->valuedouble);
                cJSON_Delete(o);
            }
            free(text);
            snprintf(name, sizeof name, "data/%s/%s.tsv", an->name, r->label);
            rc = report_write(out_dir, name, &d);
            sb_free(&d);
            char *full = ls_path_join(out_dir, name);
            fig_add(&fig, full, 1, "%s", r->label);
            free(full);
        }
    }
    free(idx);
    free(data_dir);
    if (!rc && !no_plot && fig.n_files) {
        strbuf extra = {0};
        sb_gp_assign(&extra, "ylabel", metric_title(metric));
        sb_printf(&extra, "; xlabel='step'; ncols=1");
        rc = report_plot_figure(out_dir, an->name, "lines.gp", &fig, extra.s);
        sb_free(&extra);
    }
    fig_free(&fig);
    return rc;
}


#include "cli/runs.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "report/report.h"
#include "base/util.h"

// ----------------------------------------------------------------------------
// run directories

int run_is_complete(const char *dir) {
    // The trained weights must be there too (a results tree may keep only the
    // records of a run: config, metrics, manifest).
    char *adapter = ls_path_join(dir, "adapter/adapter_model.safetensors");
    char *full = ls_path_join(dir, "full/model.safetensors");
    int weights = ls_exists(adapter) || ls_exists(full);
    free(adapter);
    free(full);
    if (!weights) return 0;
    char *path = ls_path_join(dir, "manifest.json");
    char *text = ls_exists(path) ? ls_read_file(path, NULL) : NULL;
    free(path);
    if (!text) return 0;
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(root, "status");
    int done = cJSON_IsString(status) && !strcmp(status->valuestring, "completed");
    cJSON_Delete(root);
    return done;
}

int run_mark_complete(const char *dir) {
    if (!run_is_complete(dir))
        return ls_fail("%s: training exited successfully but its manifest.json does not say completed", dir);
    return 0;
}

// The value of a flag in a run's resolved argument list, or NULL.
static const char *run_flag(const exp_run *r, const char *flag) {
    for (int i = 0; i + 1 < r->n_args; i += 2)
        if (!strcmp(r->args[i] + 2, flag)) return r->args[i + 1];
    return NULL;
}

// ----------------------------------------------------------------------------
// analyses through `lorascope analyze`

typedef struct {
    char *v[64];
    int n;
} argvec;

static void av_add(argvec *a, const char *s) {
    ls_assert(a->n < 63);
    a->v[a->n++] = ls_strdup(s);
    a->v[a->n] = NULL;
}

static void av_free(argvec *a) {
    for (int i = 0; i < a->n; i++) free(a->v[i]);
    a->n = 0;
}

// Exactly one run for a selector.
static int select_one(const experiment *e, const exp_analysis *an, const exp_run *runs, int n, const char *sel,
                      const char *key) {
    int *idx = ls_calloc((size_t)n + 1, sizeof(int));
    int k = exp_select(e, runs, n, sel, idx);
    int r = idx[0];
    free(idx);
    if (k < 0) return ls_fail_prefix("%s: [analysis %s] %s", e->path, an->name, key);
    if (k != 1)
        return ls_fail("%s: [analysis %s] %s = '%s': expected exactly one run, found %d", e->path, an->name, key, sel,
                       k);
    return r;
}

static char *adapter_dir(const exp_run *r) { return ls_path_join(r->dir, "adapter"); }

static int analyze_kind(const experiment *e, const exp_analysis *an, const exp_run *runs, int n, const char *out,
                        int no_plot) {
    argvec a = {0};
    av_add(&a, "analyze");
    av_add(&a, an->kind);
    int rc = 0;
    const exp_run *first = NULL;
    if (!strcmp(an->kind, "subspace")) {
        const char *sa = exp_analysis_get(an, "a"), *sb = exp_analysis_get(an, "b");
        if (!sa || !sb) rc = ls_fail("%s:%d: [analysis %s] needs selectors 'a' and 'b'", e->path, an->line, an->name);
        int ia = rc ? -1 : select_one(e, an, runs, n, sa, "a");
        int ib = ia < 0 ? -1 : select_one(e, an, runs, n, sb, "b");
        if (ia < 0 || ib < 0) rc = -1;
        if (!rc) {
            char *da = adapter_dir(&runs[ia]), *db = adapter_dir(&runs[ib]);
            av_add(&a, "--adapter");
            av_add(&a, da);
            av_add(&a, "--adapter2");
            av_add(&a, db);
            free(da);
            free(db);
            first = &runs[ia];
        }
    } else {
        // amplify, w-vs-dw, spectrum, intruders: `adapters = sel | sel | ...`
        const char *list = exp_analysis_get(an, "adapters");
        if (!list) rc = ls_fail("%s:%d: [analysis %s] needs 'adapters' (selectors separated by '|')", e->path,
                                an->line, an->name);
        char *copy = list ? ls_strdup(list) : NULL, *save = NULL;
        for (char *s = copy ? strtok_r(copy, "|", &save) : NULL; s && !rc; s = strtok_r(NULL, "|", &save)) {
            while (*s == ' ') s++;
            char *end = s + strlen(s);
            while (end > s && end[-1] == ' ') *--end = 0;
            int i = select_one(e, an, runs, n, s, "adapters");
            if (i < 0) {
                rc = -1;
                break;
            }
            if (!first) first = &runs[i];
            const char *full = run_flag(&runs[i], "full");
            if (full && strcmp(full, "false") && strcmp(full, "0")) {
                char *d = ls_path_join(runs[i].dir, "full/model.safetensors");
                av_add(&a, "--finetuned");
                av_add(&a, d);
                free(d);
            } else {
                char *d = adapter_dir(&runs[i]);
                av_add(&a, "--adapter");
                av_add(&a, d);
                free(d);
            }
        }
        free(copy);
    }
    if (!rc && first && strcmp(an->kind, "subspace")) {
        const char *model = run_flag(first, "model");
        if (!model) rc = ls_fail("%s: [analysis %s]: the runs have no --model", e->path, an->name);
        else {
            av_add(&a, "--base");
            av_add(&a, model);
        }
    }
    static const char *const passthrough[] = {"module", "layer", "side", "rank", "imax", "top-k", "eps", "energy",
                                              "seed"};
    for (size_t k = 0; k < sizeof passthrough / sizeof *passthrough && !rc; k++) {
        const char *v = exp_analysis_get(an, passthrough[k]);
        if (!v) continue;
        char flag[32];
        snprintf(flag, sizeof flag, "--%s", passthrough[k]);
        av_add(&a, flag);
        av_add(&a, v);
    }
    for (int k = 0; k < an->n_kv && !rc; k++) {
        const char *key = an->kv[k].key;
        int known = !strcmp(key, "kind") || !strcmp(key, "a") || !strcmp(key, "b") || !strcmp(key, "adapters");
        for (size_t j = 0; j < sizeof passthrough / sizeof *passthrough; j++) known |= !strcmp(key, passthrough[j]);
        if (!known)
            rc = ls_fail("%s:%d: [analysis %s] unknown key '%s' for kind %s", e->path, an->kv[k].line, an->name, key,
                         an->kind);
    }
    if (!rc) {
        av_add(&a, "--out");
        av_add(&a, out);
        if (no_plot) av_add(&a, "--no-plot");
        fprintf(stderr, "[analysis %s/%s] lorascope", e->name, an->name);
        for (int i = 0; i < a.n; i++) fprintf(stderr, " %s", a.v[i]);
        fprintf(stderr, "\n");
        if (cmd_analyze(a.n, a.v)) rc = ls_fail("%s: [analysis %s] failed (see above)", e->path, an->name);
    }
    av_free(&a);
    return rc;
}


// ----------------------------------------------------------------------------
// reading a run's numbers

// The value of `metric` for a finished run:
//   val_loss       the last evaluation's validation loss (metrics.jsonl)
//   base_val_loss  the first evaluation's (step 0: the base model)
//   train_loss     the last logged training loss
//   anything else  a key of <run>/eval.json (task metrics: bleu, rouge_l,
//                  accuracy, ...) or else of the last metrics line that has it
static double run_metric(const exp_run *r, const char *metric) {
    double v = NAN, first = NAN;
    char *path = ls_path_join(r->dir, "eval.json");
    if (strcmp(metric, "val_loss") && strcmp(metric, "base_val_loss") && strcmp(metric, "train_loss") &&
        ls_exists(path)) {
        char *text = ls_read_file(path, NULL);
        cJSON *root = text ? cJSON_Parse(text) : NULL;
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(root, metric);
        if (cJSON_IsNumber(x)) v = x->valuedouble;
        cJSON_Delete(root);
        free(text);
        free(path);
        if (!isnan(v)) return v;
    } else {
        free(path);
    }
    // Run-level numbers the manifest records (trainable_params, wall_time_s, tokens_seen, ...).
    path = ls_path_join(r->dir, "manifest.json");
    char *mtext = ls_exists(path) ? ls_read_file(path, NULL) : NULL;
    free(path);
    if (mtext) {
        cJSON *root = cJSON_Parse(mtext);
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(root, metric);
        if (cJSON_IsNumber(x)) v = x->valuedouble;
        cJSON_Delete(root);
        free(mtext);
        if (!isnan(v)) return v;
    }
    const char *key = !strcmp(metric, "base_val_loss") ? "val_loss" : !strcmp(metric, "train_loss") ? "loss" : metric;
    path = ls_path_join(r->dir, "metrics.jsonl");
    char *text = ls_exists(path) ? ls_read_file(path, NULL) : NULL;
    free(path);
    if (!text) return NAN;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
        if (cJSON_IsNumber(x)) {
            if (isnan(first)) first = x->valuedouble;
            v = x->valuedouble;
        }
        cJSON_Delete(o);
    }
    free(text);
    return !strcmp(metric, "base_val_loss") ? first : v;
}

static void mean_std(const double *x, int n, double *mean, double *std) {
    double s = 0, q = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(x[i])) s += x[i], k++;
    *mean = k ? s / k : NAN;
    for (int i = 0; i < n; i++)
        if (!isnan(x[i])) q += (x[i] - *mean) * (x[i] - *mean);
    *std = k > 1 ? sqrt(q / (k - 1)) : (k == 1 ? 0 : NAN); // sample std over seeds
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
    if (!strcmp(m, "accuracy")) return "accuracy";
    if (!strcmp(m, "trainable_params")) return "trainable params";
    return m;
}

// [analysis NAME] kind = table: one row per combination of the `rows` axes,
// `metrics` as mean ± std over the `over` axis (seeds); every other axis must
// have a single value. Optional figure: `plot_x` (an axis with numeric
// values, e.g. rank) against the first metric, one line per value of
// `plot_series`, error bars = std.
static int table_kind(const experiment *e, const exp_analysis *an, const exp_run *runs, int n, const char *out_dir,
                      int no_plot) {
    char rows[8][64], metrics[8][64];
    const char *rows_s = exp_analysis_get(an, "rows"), *metrics_s = exp_analysis_get(an, "metrics");
    const char *over = exp_analysis_get(an, "over"), *title = exp_analysis_get(an, "title");
    const char *output = exp_analysis_get(an, "output");
    if (!rows_s || !metrics_s)
        return ls_fail("%s:%d: [analysis %s] kind table needs 'rows' (axes) and 'metrics'", e->path, an->line,
                       an->name);
    int nr = split_list(rows_s, ',', rows, 8), nm = split_list(metrics_s, ',', metrics, 8);
    int row_ax[8], over_ax = over ? axis_index(e, over) : -1;
    for (int i = 0; i < nr; i++)
        if ((row_ax[i] = axis_index(e, rows[i])) < 0)
            return ls_fail("%s:%d: [analysis %s] rows: no sweep axis '%s'", e->path, an->line, an->name, rows[i]);
    if (over && over_ax < 0) return ls_fail("%s:%d: [analysis %s] over: no sweep axis '%s'", e->path, an->line, an->name, over);
    for (int a = 0; a < e->n_axes; a++) {
        // An axis zipped with a row (or `over`) axis varies with it.
        int lead = e->axes[a].leader >= 0 ? e->axes[a].leader : a;
        int used = a == over_ax || (over_ax >= 0 && lead == (e->axes[over_ax].leader >= 0 ? e->axes[over_ax].leader : over_ax));
        for (int i = 0; i < nr; i++)
            used |= lead == (e->axes[row_ax[i]].leader >= 0 ? e->axes[row_ax[i]].leader : row_ax[i]);
        if (!used && e->axes[a].n_values > 1)
            return ls_fail("%s:%d: [analysis %s] axis '%s' has %d values but is neither in 'rows' nor 'over'", e->path,
                           an->line, an->name, e->axes[a].name, e->axes[a].n_values);
    }
    if (ls_mkdir_p(out_dir)) return -1;
    strbuf tsv = {0}, md = {0};
    for (int i = 0; i < nr; i++) sb_printf(&tsv, "%s\t", rows[i]);
    for (int m = 0; m < nm; m++) sb_printf(&tsv, "%s_mean\t%s_std\t", metrics[m], metrics[m]);
    sb_printf(&tsv, "n\n");
    sb_printf(&md, "# %s\n\n", title ? title : an->name);
    if (e->reproduces) sb_printf(&md, "Reproduces: %s.", e->reproduces);
    if (e->differs) sb_printf(&md, " Differs from the paper: %s", e->differs);
    sb_printf(&md, "\n\nMean ± sample std over %s%s.\n\n|", over ? over : "runs", over ? " values" : "");
    for (int i = 0; i < nr; i++) sb_printf(&md, " %s |", rows[i]);
    for (int m = 0; m < nm; m++) sb_printf(&md, " %s |", metric_title(metrics[m]));
    sb_printf(&md, " n |\n|");
    for (int i = 0; i < nr; i++) sb_printf(&md, ":---|");
    for (int m = 0; m < nm + 1; m++) sb_printf(&md, "---:|");
    sb_printf(&md, "\n");
    // Row groups in sweep order: a run starts a new group unless an earlier run has the same row values.
    int *group_of = ls_calloc((size_t)n, sizeof(int));
    int n_groups = 0, *group_first = ls_calloc((size_t)n, sizeof(int));
    for (int r = 0; r < n; r++) {
        int g = -1;
        for (int k = 0; k < n_groups && g < 0; k++) {
            int same = 1;
            for (int i = 0; i < nr; i++)
                same &= runs[group_first[k]].value_index[row_ax[i]] == runs[r].value_index[row_ax[i]];
            if (same) g = k;
        }
        if (g < 0) {
            g = n_groups++;
            group_first[g] = r;
        }
        group_of[r] = g;
    }
    double *vals = ls_calloc((size_t)n, sizeof(double));
    double *means = ls_calloc((size_t)n_groups * nm, sizeof(double)), *stds = ls_calloc((size_t)n_groups * nm, sizeof(double));
    int rc = 0;
    for (int g = 0; g < n_groups && !rc; g++) {
        const exp_run *f = &runs[group_first[g]];
        sb_printf(&md, "|");
        for (int i = 0; i < nr; i++) {
            const char *v = e->axes[row_ax[i]].values[f->value_index[row_ax[i]]];
            sb_printf(&tsv, "%s\t", v);
            sb_printf(&md, " %s |", v);
        }
        int count = 0;
        for (int m = 0; m < nm; m++) {
            int k = 0;
            for (int r = 0; r < n; r++)
                if (group_of[r] == g) vals[k++] = run_metric(&runs[r], metrics[m]);
            count = k;
            int missing = 0;
            for (int i = 0; i < k; i++) missing += isnan(vals[i]);
            if (missing == k) {
                rc = ls_fail("%s: [analysis %s]: metric '%s' not found in any run of row %d (looked in metrics.jsonl "
                             "and eval.json of %s)", e->path, an->name, metrics[m], g + 1, f->dir);
                break;
            }
            mean_std(vals, k, &means[g * nm + m], &stds[g * nm + m]);
            double mu = means[g * nm + m], sd = stds[g * nm + m];
            sb_printf(&tsv, "%.6g\t%.6g\t", mu, sd);
            int big = fabs(mu) >= 100;
            if (k > 1) sb_printf(&md, big ? " %.0f ± %.0f |" : " %.4f ± %.4f |", mu, sd);
            else sb_printf(&md, big ? " %.0f |" : " %.4f |", mu);
        }
        sb_printf(&tsv, "%d\n", count);
        sb_printf(&md, " %d |\n", count);
    }
    char name[128];
    snprintf(name, sizeof name, "%s.tsv", output ? output : an->name);
    if (!rc) rc = report_write(out_dir, name, &tsv);
    snprintf(name, sizeof name, "%s.md", output ? output : an->name);
    if (!rc) rc = report_write(out_dir, name, &md);

    const char *px = exp_analysis_get(an, "plot_x"), *ps = exp_analysis_get(an, "plot_series");
    if (!rc && px && !no_plot) {
        int xi = -1, si = -1;
        for (int i = 0; i < nr; i++) {
            if (!strcmp(rows[i], px)) xi = i;
            if (ps && !strcmp(rows[i], ps)) si = i;
        }
        if (xi < 0 || (ps && si < 0))
            rc = ls_fail("%s: [analysis %s]: plot_x/plot_series must be among the rows", e->path, an->name);
        report_figure fig = {0};
        fig_panel(&fig, "%s", title ? title : an->name);
        int n_series = si < 0 ? 1 : e->axes[row_ax[si]].n_values;
        for (int sv = 0; sv < n_series && !rc; sv++) {
            strbuf d = {0};
            sb_printf(&d, "# %s\t%s_mean\t%s_std\n", px, metrics[0], metrics[0]);
            for (int g = 0; g < n_groups; g++) {
                const exp_run *f = &runs[group_first[g]];
                if (si >= 0 && f->value_index[row_ax[si]] != sv) continue;
                sb_printf(&d, "%s\t%.6g\t%.6g\n", e->axes[row_ax[xi]].values[f->value_index[row_ax[xi]]],
                          means[g * nm], stds[g * nm]);
            }
            snprintf(name, sizeof name, "data/%s_%s%d.tsv", output ? output : an->name, ps ? ps : "all", sv);
            char *data_dir = ls_path_join(out_dir, "data");
            rc = ls_mkdir_p(data_dir);
            free(data_dir);
            if (!rc) rc = report_write(out_dir, name, &d);
            sb_free(&d);
            char *full = ls_path_join(out_dir, name);
            if (si >= 0) fig_add(&fig, full, 1, "%s = %s", ps, e->axes[row_ax[si]].values[sv]);
            else fig_add(&fig, full, 1, "%s", metric_title(metrics[0]));
            free(full);
        }
        if (!rc) {
            strbuf extra = {0};
            sb_gp_assign(&extra, "xlabel", px);
            sb_gp_assign(&extra, "ylabel", metric_title(metrics[0]));
            sb_printf(&extra, "; errorbars=1; logx=%d; ncols=1", !strcmp(px, "rank"));
            snprintf(name, sizeof name, "%s", output ? output : an->name);
            rc = report_plot_figure(out_dir, name, "lines.gp", &fig, extra.s);
            sb_free(&extra);
        }
        fig_free(&fig);
    }
    free(group_of);
    free(group_first);
    free(vals);
    free(means);
    free(stds);
    sb_free(&tsv);
    sb_free(&md);
    return rc;
}

// [analysis NAME] kind = curve: validation loss against step for the runs
// selected by `runs` (selectors separated by '|'), one panel.
static int curve_kind(const experiment *e, const exp_analysis *an, const exp_run *runs, int n, const char *out_dir,
                      int no_plot) {
    const char *list = exp_analysis_get(an, "runs");
    const char *metric = exp_analysis_get(an, "metric");
    if (!metric) metric = "val_loss";
    if (!list) return ls_fail("%s:%d: [analysis %s] kind curve needs 'runs'", e->path, an->line, an->name);
    char *data_dir = ls_path_join(out_dir, "data");
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
            char *path = ls_path_join(r->dir, "metrics.jsonl");
            char *text = ls_read_file(path, NULL);
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
                if (cJSON_IsNumber(x) && cJSON_IsNumber(st)) sb_printf(&d, "%d\t%.6g\n", st->valueint, x->valuedouble);
                cJSON_Delete(o);
            }
            free(text);
            char name[256];
            snprintf(name, sizeof name, "data/curve_%s.tsv", r->label);
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

// ----------------------------------------------------------------------------

int run_analyses(const experiment *e, const exp_run *runs, int n_runs, const char *results, int no_plot) {
    for (int i = 0; i < e->n_analyses; i++) {
        const exp_analysis *an = &e->analyses[i];
        char *exp_dir = ls_path_join(results, e->name);
        char *out = ls_path_join(exp_dir, an->name);
        int rc;
        if (!strcmp(an->kind, "table")) rc = table_kind(e, an, runs, n_runs, exp_dir, no_plot);
        else if (!strcmp(an->kind, "curve")) rc = curve_kind(e, an, runs, n_runs, out, no_plot);
        else
            rc = analyze_kind(e, an, runs, n_runs, out, no_plot);
        free(out);
        free(exp_dir);
        if (rc) return -1;
    }
    return 0;
}

#include "exp/exp_analyze.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/analyze.h"
#include "base/util.h"
#include "exp/aggregate.h"
#include "io/adapter.h"
#include "report/report.h"
#include "train/train.h"

// Exactly one run for a selector: its index, or -1 with ls_error() set.
static int select_one(const experiment *e, const exp_analysis *an, const exp_run *runs, int n, const char *sel,
                      const char *key) {
    int *idx = ls_calloc((size_t)n + 1, sizeof(int));
    int k = exp_select(e, runs, n, sel, idx);
    int r = idx[0];
    free(idx);
    if (k < 0) return ls_fail_prefix("%s:%d: [analysis %s] %s", e->path, an->line, an->name, key);
    if (k != 1)
        return ls_fail("%s:%d: [analysis %s] %s = '%s': expected exactly one run, found %d", e->path, an->line,
                       an->name, key, sel, k);
    return r;
}

// The section's keys passed on as options of the request, in this order.
static const char *const options[] = {"module", "layer", "side", "rank", "imax", "top-k", "eps", "energy", "seed",
                                      "backend"};
#define N_OPTIONS (int)(sizeof options / sizeof *options)

// The inputs chosen by the selectors: per run, the option it fills
// ("adapter", "adapter2", "finetuned") and the path.
typedef struct {
    int n;
    const char **option;
    char **path;
    const char *base;
} selection;

static void selection_add(selection *s, const char *option, char *path) {
    s->option = realloc(s->option, (size_t)(s->n + 1) * sizeof *s->option);
    s->path = realloc(s->path, (size_t)(s->n + 1) * sizeof *s->path);
    ls_assert(s->option && s->path);
    s->option[s->n] = option;
    s->path[s->n++] = path;
}

static void selection_free(selection *s) {
    for (int i = 0; i < s->n; i++) free(s->path[i]);
    free(s->option);
    free(s->path);
    memset(s, 0, sizeof *s);
}

// One run's input: its full fine-tuning checkpoint if trained with --full, else its adapter.
static void select_input(selection *s, const exp_run *r, const char *adapter_option) {
    tc_method_kind k = tc_method(&r->cfg);
    if (k == TC_FULL || k == TC_FTTOP2)
        selection_add(s, "finetuned", ls_path_join(r->dir, RUN_FULL_DIR "/" RUN_PARAMS_FILE));
    else
        selection_add(s, adapter_option, ls_path_join(r->dir, RUN_ADAPTER_DIR));
}

// Subspace with `pairs = seeds`: `a` and `b` may each select several runs;
// the pairs are every (run of a, run of b) with different seeds, each
// unordered pair once, in the order a's runs then b's were selected. Adds
// the runs as --adapter (each once) and the pairs as --pair I,J.
static int select_seed_pairs(const experiment *e, const exp_analysis *an, const exp_run *runs, int n, const char *sa,
                             const char *sb, selection *s) {
    int *ia = ls_calloc((size_t)n + 1, sizeof(int)), *ib = ls_calloc((size_t)n + 1, sizeof(int));
    int *used = ls_calloc((size_t)n + 1, sizeof(int)); // run -> 1-based --adapter index, 0: not added
    int na = exp_select(e, runs, n, sa, ia), nb = na < 0 ? -1 : exp_select(e, runs, n, sb, ib), np = 0, rc = 0;
    if (na < 0 || nb < 0) rc = ls_fail_prefix("%s:%d: [analysis %s] %s", e->path, an->line, an->name, na < 0 ? "a" : "b");
    int (*pairs)[2] = ls_calloc((size_t)(na > 0 ? na : 1) * (nb > 0 ? nb : 1), sizeof *pairs);
    for (int x = 0; x < na && !rc; x++)
        for (int y = 0; y < nb; y++) {
            int p = ia[x], q = ib[y], seen = 0;
            if (runs[p].cfg.seed == runs[q].cfg.seed) continue;
            for (int k = 0; k < np; k++) seen |= pairs[k][0] == q && pairs[k][1] == p;
            if (!seen) pairs[np][0] = p, pairs[np++][1] = q;
        }
    if (!rc && np == 0)
        rc = ls_fail("%s:%d: [analysis %s] pairs = seeds: a = '%s' and b = '%s' select no two runs of different seeds",
                     e->path, an->line, an->name, sa, sb);
    if (!rc && np > ANALYZE_MAX_PAIRS)
        rc = ls_fail("%s:%d: [analysis %s] pairs = seeds: at most %d pairs, found %d", e->path, an->line, an->name,
                     ANALYZE_MAX_PAIRS, np);
    int n_adapters = 0;
    for (int k = 0; k < np && !rc; k++)
        for (int side = 0; side < 2; side++) {
            int r = pairs[k][side];
            if (used[r]) continue;
            if (n_adapters == ANALYZE_MAX_ADAPTERS) {
                rc = ls_fail("%s:%d: [analysis %s] pairs = seeds: at most %d runs", e->path, an->line, an->name,
                             ANALYZE_MAX_ADAPTERS);
                break;
            }
            used[r] = ++n_adapters;
            selection_add(s, "adapter", ls_path_join(runs[r].dir, RUN_ADAPTER_DIR));
        }
    for (int k = 0; k < np && !rc; k++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%d,%d", used[pairs[k][0]], used[pairs[k][1]]);
        selection_add(s, "pair", ls_strdup(buf));
    }
    free(pairs);
    free(ia);
    free(ib);
    free(used);
    return rc;
}

// Resolves the selectors (`a`, `b` or `adapters`) and the base; checks the keys.
static int select_inputs(const experiment *e, const exp_analysis *an, const exp_run *runs, int n, selection *s) {
    const exp_run *first = NULL;
    if (!strcmp(an->kind, "subspace")) {
        const char *sa = exp_analysis_get(an, "a"), *sb = exp_analysis_get(an, "b");
        if (!sa || !sb) return ls_fail("%s:%d: [analysis %s] needs selectors 'a' and 'b'", e->path, an->line, an->name);
        const char *pairs = exp_analysis_get(an, "pairs");
        if (pairs && strcmp(pairs, "seeds"))
            return ls_fail("%s:%d: [analysis %s] pairs: expected 'seeds', found '%s'", e->path, an->line, an->name,
                           pairs);
        if (pairs && select_seed_pairs(e, an, runs, n, sa, sb, s)) return -1;
        int ia = pairs ? 0 : select_one(e, an, runs, n, sa, "a");
        int ib = ia < 0 || pairs ? 0 : select_one(e, an, runs, n, sb, "b");
        if (ia < 0 || ib < 0) return -1;
        if (!pairs) {
            selection_add(s, "adapter", ls_path_join(runs[ia].dir, RUN_ADAPTER_DIR));
            selection_add(s, "adapter2", ls_path_join(runs[ib].dir, RUN_ADAPTER_DIR));
        }
    } else {
        const char *list = exp_analysis_get(an, "adapters");
        if (!list)
            return ls_fail("%s:%d: [analysis %s] needs 'adapters' (selectors separated by '|')", e->path, an->line,
                           an->name);
        char *copy = ls_strdup(list), *save = NULL;
        int rc = 0, n_sel = 0;
        for (const char *c = list; *c; c++) n_sel += *c == '|';
        if (n_sel + 1 > ANALYZE_MAX_ADAPTERS) {
            free(copy);
            return ls_fail("%s:%d: [analysis %s] adapters: at most %d selectors, found %d", e->path, an->line,
                           an->name, ANALYZE_MAX_ADAPTERS, n_sel + 1);
        }
        for (char *sel = strtok_r(copy, "|", &save); sel && !rc; sel = strtok_r(NULL, "|", &save)) {
            while (*sel == ' ') sel++;
            char *end = sel + strlen(sel);
            while (end > sel && end[-1] == ' ') *--end = 0;
            int i = select_one(e, an, runs, n, sel, "adapters");
            if (i < 0) rc = -1;
            else {
                if (!first) first = &runs[i];
                select_input(s, &runs[i], "adapter");
            }
        }
        free(copy);
        if (rc) return -1;
        if (first && !*(s->base = first->cfg.model))
            return ls_fail("%s: [analysis %s]: the runs have no --model", e->path, an->name);
    }
    for (int k = 0; k < an->n_kv; k++) {
        const char *key = an->kv[k].key;
        int known = !strcmp(key, "kind") || !strcmp(key, "a") || !strcmp(key, "b") || !strcmp(key, "adapters") ||
                    (!strcmp(key, "pairs") && !strcmp(an->kind, "subspace"));
        for (int j = 0; j < N_OPTIONS; j++) known |= !strcmp(key, options[j]);
        if (!known)
            return ls_fail("%s:%d: [analysis %s] unknown key '%s' for kind %s", e->path, an->kv[k].line, an->name, key,
                           an->kind);
    }
    return 0;
}

// The request: the selected inputs, then the section's options (module last,
// as `lorascope analyze` reads it), checked.
static int fill_request(const exp_analysis *an, const selection *s, const char *out, int no_plot,
                        analyze_request *req) {
    analyze_request_defaults(req);
    req->kind = an->kind;
    for (int i = 0; i < s->n; i++)
        if (analyze_request_set(req, s->option[i], s->path[i])) return -1;
    req->base = s->base;
    for (int j = 0; j < N_OPTIONS; j++) {
        const char *v = strcmp(options[j], "module") ? exp_analysis_get(an, options[j]) : NULL;
        if (v && analyze_request_set(req, options[j], v)) return -1;
    }
    req->out = out;
    req->name = an->name;
    req->no_plot = no_plot;
    const char *modules = exp_analysis_get(an, "module");
    if (modules && analyze_request_set(req, "module", modules)) return -1;
    return analyze_request_check(req);
}

// "[analysis exp/name] lorascope analyze KIND --adapter ... --out DIR": what the
// log shows, the command line that runs the same analysis by hand.
static void print_command(const experiment *e, const exp_analysis *an, const selection *s, const char *out,
                          int no_plot) {
    strbuf b = {0};
    sb_printf(&b, "[analysis %s/%s] lorascope analyze %s", e->name, an->name, an->kind);
    for (int i = 0; i < s->n; i++) sb_printf(&b, " --%s %s", s->option[i], s->path[i]);
    if (s->base) sb_printf(&b, " --base %s", s->base);
    for (int j = 0; j < N_OPTIONS; j++) {
        const char *v = exp_analysis_get(an, options[j]);
        if (v) sb_printf(&b, " --%s %s", options[j], v);
    }
    sb_printf(&b, " --out %s --name %s%s\n", out, an->name, no_plot ? " --no-plot" : "");
    fputs(b.s, stderr);
    sb_free(&b);
}

// 0 if every input in s that names weights is there (an adapter directory's
// weights file, a fine-tuned checkpoint); else -1 with ls_error() naming them.
// The other entries (--pair I,J) name no file.
static int weights_present(const selection *s) {
    strbuf missing = {0};
    int n_missing = 0;
    for (int i = 0; i < s->n; i++) {
        int finetuned = !strcmp(s->option[i], "finetuned");
        if (!finetuned && strcmp(s->option[i], "adapter") && strcmp(s->option[i], "adapter2")) continue;
        char *file = finetuned ? ls_strdup(s->path[i]) : ls_path_join(s->path[i], ADAPTER_WEIGHTS_FILE);
        if (!ls_exists(file)) sb_printf(&missing, "%s%s", n_missing++ ? ", " : "", s->path[i]);
        free(file);
    }
    int rc = n_missing ? ls_fail("needs the weights of %s (recorded runs whose weights are not here: "
                                 "`lorascope run` retrains them)", missing.s)
                       : 0;
    sb_free(&missing);
    return rc;
}

int exp_analyze_check(const experiment *e, const exp_analysis *an, const exp_run *runs, int n, int need_weights) {
    selection s = {0};
    int rc = select_inputs(e, an, runs, n, &s);
    analyze_request req;
    if (!rc && fill_request(an, &s, ".", 1, &req))
        rc = ls_fail_prefix("%s:%d: [analysis %s]", e->path, an->line, an->name);
    if (!rc && need_weights) rc = weights_present(&s);
    selection_free(&s);
    return rc;
}

int exp_analyze(const experiment *e, const exp_analysis *an, const exp_run *runs, int n, const char *out,
                int no_plot) {
    selection s = {0};
    int rc = select_inputs(e, an, runs, n, &s);
    if (!rc) {
        print_command(e, an, &s, out, no_plot);
        analyze_request req;
        if (fill_request(an, &s, out, no_plot, &req)) {
            fprintf(stderr, "lorascope analyze: %s\n", ls_error());
            rc = -1;
        } else if (analyze_run(&req)) {
            fprintf(stderr, "lorascope analyze %s: %s\n", an->kind, ls_error());
            rc = -1;
        } else {
            report_list();
        }
        if (rc) rc = ls_fail("%s: [analysis %s] failed (see above)", e->path, an->name);
    }
    selection_free(&s);
    return rc;
}

int exp_validate_analyses(const experiment *e, const exp_run *runs, int n) {
    for (int i = 0; i < e->n_analyses; i++) {
        const exp_analysis *an = &e->analyses[i];
        int rc = !strcmp(an->kind, "table")   ? exp_table_check(e, an)
                 : !strcmp(an->kind, "curve") ? exp_curve_check(e, an, runs, n)
                                              : exp_analyze_check(e, an, runs, n, 0);
        if (rc) return -1;
    }
    return 0;
}

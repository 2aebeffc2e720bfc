#include "cli/runs.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/report.h"
#include "base/util.h"
#include "exp/aggregate.h"

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

int run_analyses(const experiment *e, const exp_run *runs, int n_runs, const char *results, int no_plot) {
    for (int i = 0; i < e->n_analyses; i++) {
        const exp_analysis *an = &e->analyses[i];
        char *exp_dir = ls_path_join(results, e->name);
        char *out = ls_path_join(exp_dir, an->name);
        int rc;
        if (!strcmp(an->kind, "table")) rc = exp_table(e, an, runs, n_runs, exp_dir, no_plot);
        else if (!strcmp(an->kind, "curve")) rc = exp_curve(e, an, runs, n_runs, out, no_plot);
        else
            rc = analyze_kind(e, an, runs, n_runs, out, no_plot);
        free(out);
        free(exp_dir);
        if (rc) return -1;
    }
    return 0;
}

// The ΔW bridge: adapters and checkpoints (io/) -> an_mat factors and weights.
#include "analyze/inputs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "io/adapter.h"
#include "io/checkpoint.h"

struct analyze_inputs {
    ls_checkpoint base;
    int have_base;
    lora_adapter adapters[ANALYZE_MAX_ADAPTERS + 1];
    lora_adapter inits[ANALYZE_MAX_ADAPTERS + 1]; // A₀, B₀ where the run saved them
    int have_init[ANALYZE_MAX_ADAPTERS + 1];
    int n_adapters;
    const char *finetuned_paths[ANALYZE_MAX_ADAPTERS];
    ls_checkpoint finetuned[ANALYZE_MAX_ADAPTERS];
    int n_finetuned;
    int n_layers;
};

// ----------------------------------------------------------------------------
// loading

// The initial factors of adapter i, when its run saved them: <dir>/../adapter_init.safetensors
// (lorascope's run layout), else <dir>/adapter_init.safetensors. Absent: 0, nothing loaded.
static int load_init(analyze_inputs *in, int i, const char *dir) {
    // the parent by name, not "..": an adapter/ that is a link still means its run's directory
    char *parent = ls_strdup(dir);
    size_t n = strlen(parent);
    while (n > 1 && parent[n - 1] == '/') parent[--n] = 0;
    char *slash = strrchr(parent, '/');
    if (!slash) strcpy(parent, ".");
    else if (slash == parent) slash[1] = 0;
    else *slash = 0;
    char *paths[2] = {ls_path_join(parent, ADAPTER_INIT_FILE), ls_path_join(dir, ADAPTER_INIT_FILE)};
    int rc = 0;
    for (int k = 0; k < 2 && !in->have_init[i] && !rc; k++)
        if (ls_exists(paths[k])) {
            rc = adapter_init_load(&in->adapters[i], paths[k], &in->inits[i]);
            in->have_init[i] = rc == 0;
        }
    free(paths[0]);
    free(paths[1]);
    free(parent);
    return rc;
}

int analyze_inputs_load(const analyze_request *req, analyze_inputs **out) {
    analyze_inputs *in = ls_calloc(1, sizeof *in);
    *out = in;
    if (req->base) {
        if (ckpt_load(&in->base, req->base)) return -1;
        in->have_base = 1;
        in->n_layers = in->base.config.n_layers;
    }
    for (int i = 0; i < req->n_adapters + (req->adapter2 != NULL); i++) {
        const char *dir = i < req->n_adapters ? req->adapters[i] : req->adapter2;
        lora_adapter *a = &in->adapters[i];
        if (adapter_load(a, dir)) return -1;
        in->n_adapters++;
        if (in->have_base && adapter_check_base(a, &in->base)) return -1;
        if (load_init(in, i, dir)) return -1;
        int top = 0;
        for (int m = 0; m < a->n_modules; m++)
            if (a->modules[m].layer + 1 > top) top = a->modules[m].layer + 1;
        if (!in->have_base && top > in->n_layers) in->n_layers = top;
    }
    for (int i = 0; i < req->n_finetuned; i++) {
        if (ckpt_load_like(&in->finetuned[i], req->finetuned[i], &in->base)) return -1;
        in->finetuned_paths[i] = req->finetuned[i];
        in->n_finetuned++;
    }
    if (req->layer >= in->n_layers)
        return ls_fail("--layer %d out of range: the model has %d layers (0..%d)", req->layer, in->n_layers,
                       in->n_layers - 1);
    return 0;
}

void analyze_inputs_free(analyze_inputs *in) {
    if (!in) return;
    if (in->have_base) ckpt_free(&in->base);
    for (int i = 0; i < in->n_adapters; i++) {
        adapter_free(&in->adapters[i]);
        if (in->have_init[i]) adapter_free(&in->inits[i]);
    }
    for (int i = 0; i < in->n_finetuned; i++) ckpt_free(&in->finetuned[i]);
    free(in);
}

int analyze_inputs_n_layers(const analyze_inputs *in) { return in->n_layers; }
int analyze_inputs_n_adapters(const analyze_inputs *in) { return in->n_adapters; }
int analyze_inputs_n_series(const analyze_inputs *in) { return in->n_adapters + in->n_finetuned; }

// A short label for series i: its rank if the adapters differ in rank, else
// rank and index; "full" (and an index if several) for fine-tuned checkpoints.
void analyze_inputs_series(const analyze_inputs *in, int i, analyze_series *out) {
    memset(out, 0, sizeof *out);
    if (i >= in->n_adapters) {
        out->dir = in->finetuned_paths[i - in->n_adapters];
        if (in->n_finetuned > 1) snprintf(out->label, sizeof out->label, "full_%d", i - in->n_adapters + 1);
        else snprintf(out->label, sizeof out->label, "full");
        return;
    }
    const lora_adapter *a = &in->adapters[i];
    out->dir = a->dir;
    out->is_lora = 1;
    out->r = a->r;
    int same_r = 1;
    for (int j = 0; j < in->n_adapters; j++) same_r &= in->adapters[j].r == a->r;
    if (same_r && in->n_adapters > 1) snprintf(out->label, sizeof out->label, "r%d_%d", a->r, i + 1);
    else snprintf(out->label, sizeof out->label, "r%d", a->r);
}

// ----------------------------------------------------------------------------
// ΔW and W as doubles

int analyze_check(int rc, const char *what) {
    if (rc) return ls_fail("%s: %s", what, an_error());
    return 0;
}

static int factors_of(const lora_adapter *a, int layer, const char *module, analyze_factors *f) {
    int row0, rows;
    const adapter_site *m = adapter_resolve(a, layer, module, &row0, &rows);
    if (!m) return -1;
    f->A = an_mat_from_float(m->A, m->r, m->d_in);
    f->B = an_mat_from_float(m->B + (size_t)row0 * m->r, rows, m->r);
    f->scale = m->scale;
    f->r = m->r;
    return 0;
}

int analyze_inputs_factors(const analyze_inputs *in, int adapter, int layer, const char *module, analyze_factors *f) {
    return factors_of(&in->adapters[adapter], layer, module, f);
}

int analyze_inputs_has_init(const analyze_inputs *in, int adapter) {
    return adapter >= 0 && adapter < in->n_adapters && in->have_init[adapter];
}

int analyze_inputs_init_factors(const analyze_inputs *in, int adapter, int layer, const char *module,
                                analyze_factors *f) {
    if (!analyze_inputs_has_init(in, adapter))
        return ls_fail("%s: no %s beside the adapter", in->adapters[adapter].dir, ADAPTER_INIT_FILE);
    return factors_of(&in->inits[adapter], layer, module, f);
}

void analyze_factors_free(analyze_factors *f) {
    an_mat_free(&f->A);
    an_mat_free(&f->B);
}

int analyze_inputs_weight(const analyze_inputs *in, int layer, const char *module, an_mat *W) {
    int d_out, d_in;
    float *w = ckpt_module_weight(&in->base, layer, module, &d_out, &d_in);
    if (!w) return -1;
    *W = an_mat_from_float(w, d_out, d_in);
    free(w);
    return 0;
}

int analyze_inputs_delta_dense(const analyze_inputs *in, int si, int layer, const char *module, an_mat *dW) {
    if (si < in->n_adapters) {
        analyze_factors f = {0};
        int rc = analyze_inputs_factors(in, si, layer, module, &f);
        if (!rc) rc = analyze_check(an_delta_dense(&f.B, &f.A, f.scale, dW), "ΔW = s·B·A");
        analyze_factors_free(&f);
        return rc;
    }
    const ls_checkpoint *ft = &in->finetuned[si - in->n_adapters];
    int d0, k0, d1, k1;
    float *w0 = ckpt_module_weight(&in->base, layer, module, &d0, &k0);
    float *w1 = w0 ? ckpt_module_weight(ft, layer, module, &d1, &k1) : NULL;
    if (!w1) {
        free(w0);
        return -1;
    }
    *dW = an_mat_alloc(d0, k0);
    for (size_t i = 0; i < (size_t)d0 * k0; i++) dW->data[i] = (double)w1[i] - (double)w0[i];
    free(w0);
    free(w1);
    return 0;
}

int analyze_inputs_delta_svd(const analyze_inputs *in, int si, int layer, const char *module, an_svd *out, int *r) {
    if (si < in->n_adapters) {
        analyze_factors f = {0};
        int rc = analyze_inputs_factors(in, si, layer, module, &f);
        if (!rc) rc = analyze_check(an_delta_svd(&f.B, &f.A, f.scale, out), "SVD of ΔW");
        if (r) *r = f.r;
        analyze_factors_free(&f);
        return rc;
    }
    an_mat dW = {0};
    int rc = analyze_inputs_delta_dense(in, si, layer, module, &dW);
    if (!rc) rc = analyze_check(an_svd_thin(&dW, out), "SVD of ΔW");
    an_mat_free(&dW);
    if (r) *r = 0;
    return rc;
}

// The ΔW bridge: adapters and checkpoints (io/) -> an_mat factors and weights.
#include "analyze/inputs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/util.h"
#include "io/adapter.h"
#include "io/checkpoint.h"
#include "io/hf_weights.h"

// Two kinds of base: a checkpoint of a lorascope family (io/checkpoint.h: the
// registry's names, GGUF, llama2.c) for adapters of those families, and any
// HF safetensors checkpoint (io/hf_weights.h: W found by the adapter's module
// names) for generic adapters or a model type the registry does not know.
struct analyze_inputs {
    ls_checkpoint base;
    int have_base;
    hf_weights hf;
    int use_hf;        // the base is read through hf_weights (have_base is then 0)
    int dora_note;     // the "DoRA without --base" note was printed
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

// 1 if path is an HF directory that checkpoint.h does not read — sharded
// (model.safetensors.index.json only), or a config.json model_type that no
// lorascope family has (qwen2, phi3, t5, ...): its weights go through hf_weights.
static int base_is_foreign(const char *path) {
    if (!ls_is_dir(path)) return 0;
    char *single = ls_path_join(path, "model.safetensors"), *index = ls_path_join(path, "model.safetensors.index.json");
    int sharded = !ls_exists(single) && ls_exists(index);
    free(single);
    free(index);
    if (sharded) return 1;
    char *cfg = ls_path_join(path, "config.json");
    char *text = ls_exists(cfg) ? ls_read_file_max(cfg, NULL, 1u << 24) : NULL;
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    int foreign = cJSON_IsString(mt);
    for (int f = 0; f < LS_N_FAMILIES && foreign; f++)
        if (!strcmp(mt->valuestring, arch_family_name((ls_family)f))) foreign = 0;
    cJSON_Delete(root);
    free(text);
    free(cfg);
    return foreign;
}

// Says (stdout, one line) what of a generic adapter the per-layer analyses do
// not see: tensors saved whole (modules_to_save, a saved embedding) and
// modules outside the indexed layers (embed_tokens, lm_head).
static void note_unanalysed(const lora_adapter *a) {
    char list[512] = {0};
    int n = 0;
    for (int i = 0; i < a->n_saved + a->n_modules; i++) {
        const char *name = i < a->n_saved ? a->saved[i].name : a->modules[i - a->n_saved].name;
        if (i >= a->n_saved && a->modules[i - a->n_saved].layer >= 0) continue;
        size_t used = strlen(list);
        if (used + strlen(name) + 8 < sizeof list) snprintf(list + used, sizeof list - used, "%s%s", n ? ", " : "", name);
        n++;
    }
    if (n) printf("note: %s: %d tensor%s or module%s outside the layers, listed and not analysed: %s\n", a->dir, n,
                  n > 1 ? "s" : "", n > 1 ? "s" : "", list);
}

// The hf_weights base: opened, its heads given to every adapter, and every
// adapted module's W checked against ΔW's shape before anything is written.
static int open_hf_base(analyze_inputs *in, const char *path) {
    if (hf_weights_open(&in->hf, path)) return -1;
    in->use_hf = 1;
    for (int i = 0; i < in->n_adapters; i++) {
        lora_adapter *a = &in->adapters[i];
        adapter_set_heads(a, in->hf.n_heads, in->hf.n_kv_heads, in->hf.qkv_per_head);
        for (int m = 0; m < a->n_modules; m++) {
            float *w = hf_weights_site(&in->hf, a, &a->modules[m]);
            if (!w) return -1;
            free(w);
        }
    }
    return 0;
}

int analyze_inputs_load(const analyze_request *req, analyze_inputs **out) {
    analyze_inputs *in = ls_calloc(1, sizeof *in);
    *out = in;
    // Without adapters no module names find W: a foreign base gets checkpoint.h's message.
    int foreign = req->base && req->n_adapters + (req->adapter2 != NULL) > 0 && base_is_foreign(req->base);
    if (req->base && !foreign) {
        if (ckpt_load(&in->base, req->base)) return -1;
        in->have_base = 1;
    }
    int generic = 0;
    for (int i = 0; i < req->n_adapters + (req->adapter2 != NULL); i++) {
        const char *dir = i < req->n_adapters ? req->adapters[i] : req->adapter2;
        lora_adapter *a = &in->adapters[i];
        if (adapter_load(a, dir)) return -1;
        in->n_adapters++;
        generic |= a->generic;
        if (a->generic) note_unanalysed(a);
        if (in->have_base && !generic && adapter_check_base(a, &in->base)) return -1;
        if (load_init(in, i, dir)) return -1;
        for (int m = 0; m < a->n_modules; m++)
            if (a->modules[m].layer + 1 > in->n_layers) in->n_layers = a->modules[m].layer + 1;
    }
    if (req->base && (foreign || generic)) {
        if (in->have_base) ckpt_free(&in->base);
        in->have_base = 0;
        if (req->n_finetuned)
            return ls_fail("--finetuned: needs a base of a lorascope family (%s is read by module name only)",
                           req->base);
        if (open_hf_base(in, req->base)) return -1;
    }
    if (in->have_base) in->n_layers = in->base.config.n_layers;
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
    if (in->use_hf) hf_weights_close(&in->hf);
    for (int i = 0; i < in->n_adapters; i++) {
        adapter_free(&in->adapters[i]);
        if (in->have_init[i]) adapter_free(&in->inits[i]);
    }
    for (int i = 0; i < in->n_finetuned; i++) ckpt_free(&in->finetuned[i]);
    free(in);
}

int analyze_inputs_n_layers(const analyze_inputs *in) { return in->n_layers; }
int analyze_inputs_first_layer(const analyze_inputs *in) {
    int first = -1;
    for (int i = 0; i < in->n_adapters; i++)
        for (int m = 0; m < in->adapters[i].n_modules; m++) {
            int l = in->adapters[i].modules[m].layer;
            if (l >= 0 && (first < 0 || l < first)) first = l;
        }
    return first < 0 || in->n_finetuned ? 0 : first;
}

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

// The selected rows of a row-major (d_out x cols) matrix, as an an_mat.
static an_mat rows_of(const float *x, int cols, const adapter_rows *sel) {
    an_mat out = an_mat_alloc(sel->rows * sel->n_groups, cols);
    for (int i = 0; i < out.rows; i++)
        for (int k = 0; k < cols; k++)
            out.data[(size_t)i * cols + k] = (double)x[(size_t)adapter_row_at(sel, i) * cols + k];
    return out;
}

static int factors_of(const lora_adapter *a, int layer, const char *module, analyze_factors *f) {
    adapter_rows sel;
    const adapter_site *m = adapter_resolve_any(a, layer, module, &sel);
    if (!m) return -1;
    f->A = an_mat_from_float(m->A, m->r, m->d_in);
    f->B = rows_of(m->B, m->r, &sel);
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

int analyze_inputs_site_rank(const analyze_inputs *in, int adapter, int layer, const char *module) {
    adapter_rows sel;
    const adapter_site *m = adapter_resolve_any(&in->adapters[adapter], layer, module, &sel);
    return m ? m->r : 0;
}

void analyze_factors_free(analyze_factors *f) {
    an_mat_free(&f->A);
    an_mat_free(&f->B);
}

// W of the site that `module` names in adapter ai (the whole site, all rows).
static float *hf_site_weight(const analyze_inputs *in, int ai, int layer, const char *module,
                             const adapter_site **site, adapter_rows *sel) {
    *site = adapter_resolve_any(&in->adapters[ai], layer, module, sel);
    return *site ? hf_weights_site(&in->hf, &in->adapters[ai], *site) : NULL;
}

int analyze_inputs_weight(const analyze_inputs *in, int layer, const char *module, an_mat *W) {
    if (in->use_hf) {
        const adapter_site *m;
        adapter_rows sel;
        float *w = hf_site_weight(in, 0, layer, module, &m, &sel);
        if (!w) return -1;
        *W = rows_of(w, m->d_in, &sel);
        free(w);
        return 0;
    }
    int d_out, d_in;
    float *w = ckpt_module_weight(&in->base, layer, module, &d_out, &d_in);
    if (!w) return -1;
    *W = an_mat_from_float(w, d_out, d_in);
    free(w);
    return 0;
}

// 1 if adapter si's site for `module` is DoRA and a base gives its ΔW = W' - W;
// without a base it is analysed as s·B·A, said once in a note.
static int dora_with_base(const analyze_inputs *in, int si, int layer, const char *module) {
    adapter_rows sel;
    const adapter_site *m = adapter_resolve_any(&in->adapters[si], layer, module, &sel);
    if (!m || !m->magnitude) return 0;
    if (in->use_hf) return 1;
    if (!in->dora_note) {
        printf("note: %s: DoRA adapter without --base: ΔW is taken as s·B·A (the direction update); "
               "the DoRA ΔW = m·(W + s·B·A)/‖W + s·B·A‖ - W needs W\n", in->adapters[si].dir);
        ((analyze_inputs *)in)->dora_note = 1;
    }
    return 0;
}

static int dora_dense(const analyze_inputs *in, int si, int layer, const char *module, an_mat *dW) {
    const adapter_site *m;
    adapter_rows sel;
    float *w = hf_site_weight(in, si, layer, module, &m, &sel);
    if (!w) return -1;
    double *d = adapter_dora_delta(m, w, 0, m->d_out);
    *dW = an_mat_alloc(sel.rows * sel.n_groups, m->d_in);
    for (int i = 0; i < dW->rows; i++)
        memcpy(dW->data + (size_t)i * m->d_in, d + (size_t)adapter_row_at(&sel, i) * m->d_in,
               sizeof(double) * (size_t)m->d_in);
    free(d);
    free(w);
    return 0;
}

int analyze_inputs_delta_dense(const analyze_inputs *in, int si, int layer, const char *module, an_mat *dW) {
    if (si < in->n_adapters) {
        if (dora_with_base(in, si, layer, module)) return dora_dense(in, si, layer, module, dW);
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
    if (si < in->n_adapters && !dora_with_base(in, si, layer, module)) {
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
    if (r) {
        *r = si < in->n_adapters ? analyze_inputs_site_rank(in, si, layer, module) : 0;
    }
    return rc;
}

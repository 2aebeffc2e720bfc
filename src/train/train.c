// train: setup and checks, the loop, checkpoints, resumption, the run record.
#include "train/train.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/lock.h"
#include "base/sha256.h"
#include "base/util.h"
#include "engine/backend_registry.h"
#include "engine/adapters.h"
#include "engine/lora.h"
#include "engine/optim.h"
#include "engine/prefix.h"
#include "engine/prompt.h"
#include "engine/rng.h"
#include "io/safetensors.h"
#include "train/export.h"
#include "train/record.h"
#include "train/step.h"
#include "train/task.h"

// Streams derived from the one seed. The train/validation split and the
// evaluation subsample use a fixed seed instead, so that runs with different
// seeds are measured on the same held-out items (Tables 5, 6: mean ± std over seeds).
#define SPLIT_SEED 0x5EEDull
#define DATA_STREAM 0xDA7Aull
#define DROPOUT_STREAM 0xD0D0ull

// ----------------------------------------------------------------------------
// schedule, threads

double train_lr_at(const ls_train_config *c, long s) {
    double lr = c->lr;
    long S = c->steps, W = c->warmup;
    if (s < W) return lr * (double)s / (double)(W > 0 ? W : 1);
    if (!strcmp(c->schedule, "constant") || S <= W) return lr;
    double progress = (double)(s - W) / (double)(S - W);
    double f = !strcmp(c->schedule, "linear") ? 1.0 - progress : 0.5 * (1.0 + cos(M_PI * progress));
    return f > 0.0 ? lr * f : 0.0;
}

int train_set_threads(int n) {
    ls_backend_cpu(); // pins OpenBLAS to one thread (ops_cpu.c) before anything runs
    if (n > 0) omp_set_num_threads(n);
    return omp_get_max_threads();
}

// ----------------------------------------------------------------------------
// the trainer: everything a run holds

// The inputs a run fingerprints (INPUTS, below).
enum { IN_MODEL, IN_TOKENIZER, IN_DATA, IN_VAL, N_INPUTS };

typedef struct {
    ls_train_config cfg;
    task_kind kind;
    tokenizer *tok;
    char *tok_path;
    ls_model m;
    int have_model;
    ls_lora lo;
    int have_lora;
    ls_adapters ad;              // Adapter^H / Adapter^L
    int have_ad;
    ls_prefix pf;                // prefix-layer
    int have_pf;
    ls_prompt pr;                // prefix-embed
    int have_pr;
    float *init_params;          // PiSSA: A0, B0 (export needs them)
    float *init_factors;         // A0, B0 of every init, as lora_build drew them (adapter_init.safetensors)
    task_data data, vdata;
    int have_data, have_vdata;
    const task_data *val;        // &data or &vdata, NULL without validation
    int *train_items, n_train, *val_items, n_val;
    int Tmax;
    ds_sampler sampler;
    int have_sampler;
    ls_adamw opt;
    int have_opt;
    float *params, *grads;       // the trainable buffer (adapter or whole model)
    size_t n_trainable;
    ls_adamw hopt;               // encoder + LoRA: the head (PEFT's modules_to_save), its own AdamW
    int have_hopt;
    float *hparams, *hgrads;     // its span of the model's parameters / gradients
    size_t n_head;               // 0: no head trained beside the adapter
    ls_param_segment tsegs[LS_N_PARAM_TENSORS]; // BitFit / FT^Top2: the trained segments of the model's
    int n_tsegs;                 // buffer (params, grads), packed in the optimiser and the checkpoint
    uint64_t data_seed, dropout_seed;
    char *ckpt_dir, *ckpt_path;
    char input_sha256[N_INPUTS][65]; // the inputs' fingerprints (see INPUTS); "" where there is none
    // counters carried across resumption
    double tokens_seen, train_time;
    double base_val_loss, last_val_loss, last_train_loss;
} trainer;

static void trainer_free(trainer *t) {
    if (t->have_opt) adamw_free(&t->opt);
    if (t->have_hopt) adamw_free(&t->hopt);
    if (t->have_sampler) ds_sampler_free(&t->sampler);
    if (t->have_lora) lora_free(&t->lo, &t->m);
    if (t->have_ad) adapters_free(&t->ad, &t->m);
    if (t->have_pf) prefix_free(&t->pf, &t->m);
    if (t->have_pr) prompt_free(&t->pr, &t->m);
    if (t->have_model) model_free(&t->m);
    if (t->have_data) task_data_free(&t->data);
    if (t->have_vdata) task_data_free(&t->vdata);
    if (t->tok) tok_free(t->tok);
    free(t->tok_path);
    free(t->init_params);
    free(t->init_factors);
    free(t->train_items);
    free(t->val_items);
    free(t->ckpt_dir);
    free(t->ckpt_path);
    memset(t, 0, sizeof *t);
}

// (d_out, d_in) of a module in this model.
static void module_dims(const ls_model *m, lora_module_id mod, int *d_out, int *d_in) {
    int qd = m->NH * m->HS, kd = m->NKV * m->HS;
    *d_in = m->C;
    switch (mod) {
    case LORA_Q: *d_out = qd; break;
    case LORA_K: case LORA_V: *d_out = kd; break;
    case LORA_QKV: *d_out = m->QKV; break;
    case LORA_O: *d_out = m->C; break;
    case LORA_GATE: case LORA_UP: case LORA_FC: *d_out = m->H; break;
    default: *d_out = m->C; *d_in = m->H; break;
    }
}

static int parse_layers(const char *s, int L, ls_lora_config *lc) {
    lc->n_layers = 0;
    if (!strcmp(s, "all") || !s[0]) return 0;
    const char *p = s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v >= L)
            return ls_fail("[lora] layers (--layers): expected 'all' or layer numbers in [0, %d), found '%s'", L, s);
        if (lc->n_layers == (int)(sizeof lc->layers / sizeof lc->layers[0]))
            return ls_fail("[lora] layers (--layers): at most 256 layers");
        int dup = 0;
        for (int i = 0; i < lc->n_layers; i++) dup |= lc->layers[i] == (int)v;
        if (!dup) lc->layers[lc->n_layers++] = (int)v;
        p = end;
        if (*p == ',') p++;
        else if (*p)
            return ls_fail("[lora] layers (--layers): expected a comma-separated list, found '%s'", s);
    }
    return 0;
}

static int setup_lora(trainer *t) {
    const ls_train_config *c = &t->cfg;
    ls_model *m = &t->m;
    ls_lora_config lc;
    lora_config_default(&lc);
    if (lora_parse_modules(m->cfg.family, c->modules, &lc.modules))
        return ls_fail_prefix("[lora] modules (--lora)");
    for (int i = 0; i < LORA_N_MODULES; i++) {
        if (!(lc.modules >> i & 1)) continue;
        int d_out, d_in;
        module_dims(m, (lora_module_id)i, &d_out, &d_in);
        int cap = d_out < d_in ? d_out : d_in;
        if (c->rank > cap)
            return ls_fail("[lora] rank (--rank): expected 1..min(d_out, d_in) = %d for module %s (%d x %d), found %d",
                           cap, lora_module_name(m->cfg.family, (lora_module_id)i), d_out, d_in, c->rank);
    }
    if (parse_layers(c->layers, m->L, &lc)) return -1;
    lc.rank = c->rank;
    lc.alpha = (float)c->alpha;
    lc.rslora = c->rslora;
    lc.dropout = (float)c->lora_dropout;
    lc.init = !strcmp(c->init, "gaussian") ? LORA_INIT_GAUSSIAN
              : !strcmp(c->init, "pissa")  ? LORA_INIT_PISSA
                                           : LORA_INIT_KAIMING;
    lc.init_std = (float)c->init_std;
    lc.seed = (uint64_t)c->seed;
    if (lora_build(&t->lo, m, &lc)) return ls_fail_prefix("[lora]");
    t->have_lora = 1;
    t->params = t->lo.params;
    t->grads = t->lo.grads;
    t->n_trainable = t->lo.n_params;
    // drawn again identically when a run resumes, so A0 needs no checkpoint of its own
    t->init_factors = ls_malloc((t->n_trainable ? t->n_trainable : 1) * sizeof(float));
    m->be->download(t->init_factors, t->params, t->n_trainable);
    if (lc.init == LORA_INIT_PISSA) {
        t->init_params = ls_malloc(t->n_trainable * sizeof(float));
        memcpy(t->init_params, t->init_factors, t->n_trainable * sizeof(float));
    }
    return 0;
}

// <out>/adapter_init.safetensors: A0 (and B0 where nonzero) in the adapter's
// PEFT keys and shapes, for φ of A − A0 and the at-initialisation baseline
// (issue 12). PiSSA's adapter is exported at rank 2r as A' = [A; A0],
// B' = [B, -B0] (train/export.h); its initial factors take the same layout,
// [A0; A0] and [B0, -B0], so that A' − A0' = [A − A0; 0].
static int write_initial_factors(const trainer *t) {
    lora_adapter a;
    // PiSSA: factors and init_params both A₀, B₀ give its exported layout [A₀; A₀], [B₀, −B₀]
    if (export_lora_factors_to_adapter(&t->lo, t->init_factors, t->init_params ? t->init_factors : NULL, NULL, &a))
        return -1;
    char *path = ls_path_join(t->cfg.out, ADAPTER_INIT_FILE);
    int rc = adapter_init_save(&a, path);
    free(path);
    adapter_free(&a);
    return rc;
}

// Encoder + LoRA: the classification head trains in full beside the adapter
// (PEFT's modules_to_save) with its own AdamW state, same hyper-parameters,
// its weights decayed and its biases not.
static int setup_head(trainer *t) {
    const ls_train_config *c = &t->cfg;
    train_step_spec s;
    train_step_spec_init(&s, &t->m, NULL, NULL);
    if (strstr(c->modules_to_save, "pooler") && model_head_train_pooler(&t->m)) return -1;
    if (train_step_spec_add_head(&s, &t->hopt, (float)c->beta1, (float)c->beta2, (float)c->adam_eps,
                                 (float)c->weight_decay))
        return -1;
    t->hparams = s.head_params;
    t->hgrads = s.head_grads;
    t->n_head = s.n_head;
    t->have_hopt = 1;
    return 0;
}

static int cmp_seg(const void *a, const void *b) {
    const ls_param_segment *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

// Full fine-tuning: decay segments from the views (biases and norm weights
// excluded, as HF Trainer does), in buffer order, neighbours merged.
static void setup_full(trainer *t) {
    ls_model *m = &t->m;
    model_enable_grads(m);
    t->params = m->params_memory;
    t->grads = m->grads_memory;
    t->n_trainable = m->n_params;
    ls_param_segment *seg = ls_malloc((size_t)m->n_views * sizeof *seg);
    for (int i = 0; i < m->n_views; i++)
        seg[i] = (ls_param_segment){m->views[i].offset, m->views[i].numel, !m->views[i].no_decay};
    qsort(seg, (size_t)m->n_views, sizeof *seg, cmp_seg);
    int n = 0;
    size_t covered = 0;
    for (int i = 0; i < m->n_views; i++) {
        ls_assert(seg[i].offset == covered); // views tile the buffer
        covered += seg[i].n;
        if (n && seg[n - 1].decay == seg[i].decay) seg[n - 1].n += seg[i].n;
        else seg[n++] = seg[i];
    }
    ls_assert(covered == m->n_params);
    adamw_set_segments(&t->opt, seg, n);
    free(seg);
}

// BitFit / FT^Top2: the model's own buffer, only its biases (and an encoder's
// head) or its last two layers (and head) trainable, AdamW packed over them.
static int setup_scope(trainer *t, tc_method_kind k) {
    const ls_train_config *c = &t->cfg;
    ls_model *m = &t->m;
    if (model_enable_grads_scope(m, k == TC_BITFIT ? LS_GRADS_BIASES : LS_GRADS_TOP, 2))
        return ls_fail_prefix("[lora] method (--method): %s", c->model);
    train_step_spec s;
    train_step_spec_init(&s, m, NULL, &t->opt);
    t->n_trainable = train_step_spec_set_scope(&s, t->tsegs, (float)c->beta1, (float)c->beta2, (float)c->adam_eps,
                                               (float)c->weight_decay);
    t->have_opt = 1;
    t->n_tsegs = s.n_segs;
    t->params = m->params_memory;
    t->grads = m->grads_memory;
    return 0;
}

// --prefix-init text: prefix-layer's prefix starts as the KV cache of the
// first training example's first l_p tokens (repeated when it is shorter),
// prefix-embed's virtual tokens as their word embeddings; targets unused.
static int prefix_init_text(trainer *t) {
    int P = t->cfg.prefix_len, rc = 0;
    task_batch tb;
    task_batch_init(&tb, 1, t->Tmax);
    if (task_fill_batch(&t->data, &t->train_items[0], 1, &tb)) rc = ls_fail_prefix("[lora] prefix_init (--prefix-init)");
    int *tokens = ls_malloc((size_t)P * sizeof(int));
    for (int p = 0; p < P && !rc; p++) tokens[p] = tb.b.inputs[p % tb.b.T];
    if (!rc && t->have_pr && prompt_init_from_tokens(&t->pr, &t->m, tokens)) rc = -1;
    if (!rc && t->have_pf && P > t->m.Tcap && model_reserve(&t->m, t->m.Bcap, P)) rc = -1;
    if (!rc && t->have_pf && prefix_init_from_tokens(&t->pf, &t->m, tokens)) rc = -1;
    if (rc) ls_fail_prefix("[lora] prefix_init (--prefix-init)");
    free(tokens);
    task_batch_free(&tb);
    return rc;
}

// Prefix-layer tuning: l_p keys and values per layer (engine/prefix.h), one
// AdamW over them, decayed (HF Trainer decays PEFT's prompt embedding: it is
// neither a bias nor a LayerNorm weight).
static int setup_prefix(trainer *t) {
    const ls_train_config *c = &t->cfg;
    if (c->merged_out[0])
        return ls_fail("[run] merged_out (--merged-out): expected none with --method prefix-layer (a prefix does not "
                       "merge into W)");
    if (prefix_build(&t->pf, &t->m, c->prefix_len, (uint64_t)c->seed)) return ls_fail_prefix("[lora] %s", c->model);
    t->have_pf = 1;
    if (t->Tmax + c->prefix_len > t->m.cfg.max_seq_len)
        return ls_fail("[lora] prefix_len (--prefix-len): expected prefix + longest row <= %d positions, found %d + %d",
                       t->m.cfg.max_seq_len, c->prefix_len, t->Tmax);
    if (!strcmp(c->prefix_init, "text") && prefix_init_text(t)) return -1;
    t->params = t->pf.params;
    t->grads = t->pf.grads;
    t->n_trainable = t->pf.n_params;
    adamw_init(&t->opt, t->m.be, t->n_trainable, (float)c->beta1, (float)c->beta2, (float)c->adam_eps,
               (float)c->weight_decay);
    t->have_opt = 1;
    return 0;
}

// Prefix-embedding tuning: l_p virtual token embeddings (engine/prompt.h),
// one AdamW over them, decayed as setup_prefix's.
static int setup_prompt(trainer *t) {
    const ls_train_config *c = &t->cfg;
    if (c->merged_out[0])
        return ls_fail("[run] merged_out (--merged-out): expected none with --method prefix-embed (virtual tokens do "
                       "not merge into W)");
    if (t->Tmax + c->prefix_len > t->m.cfg.max_seq_len)
        return ls_fail("[lora] prefix_len (--prefix-len): expected virtual tokens + longest row <= %d positions, "
                       "found %d + %d", t->m.cfg.max_seq_len, c->prefix_len, t->Tmax);
    if (prompt_build(&t->pr, &t->m, c->prefix_len, (uint64_t)c->seed)) return ls_fail_prefix("[lora] %s", c->model);
    t->have_pr = 1;
    if (!strcmp(c->prefix_init, "text") && prefix_init_text(t)) return -1;
    t->params = t->pr.params;
    t->grads = t->pr.grads;
    t->n_trainable = t->pr.n_params;
    adamw_init(&t->opt, t->m.be, t->n_trainable, (float)c->beta1, (float)c->beta2, (float)c->adam_eps,
               (float)c->weight_decay);
    t->have_opt = 1;
    return 0;
}

// The trainable values to / from host (n_trainable floats): the buffer, or
// the segments one after another.
static void trainable_download(const trainer *t, float *host) {
    if (!t->n_tsegs) t->m.be->download(host, t->params, t->n_trainable);
    for (int i = 0; i < t->n_tsegs; i++) {
        t->m.be->download(host, t->params + t->tsegs[i].offset, t->tsegs[i].n);
        host += t->tsegs[i].n;
    }
}

static void trainable_upload(trainer *t, const float *host) {
    if (!t->n_tsegs) t->m.be->upload(t->params, host, t->n_trainable);
    for (int i = 0; i < t->n_tsegs; i++) {
        t->m.be->upload(t->params + t->tsegs[i].offset, host, t->tsegs[i].n);
        host += t->tsegs[i].n;
    }
}

static double trainable_sumsq(const trainer *t) {
    const ls_backend *be = t->m.be;
    double ss = t->n_head ? be->sumsq(t->hparams, t->n_head) : 0.0;
    if (!t->n_tsegs) return ss + be->sumsq(t->params, t->n_trainable);
    for (int i = 0; i < t->n_tsegs; i++) ss += be->sumsq(t->params + t->tsegs[i].offset, t->tsegs[i].n);
    return ss;
}

// Loads and checks everything; touches no file.
static int trainer_setup(trainer *t, const ls_train_config *cfg) {
    memset(t, 0, sizeof *t);
    t->cfg = *cfg;
    t->base_val_loss = t->last_val_loss = t->last_train_loss = NAN;
    const ls_train_config *c = &t->cfg;
    if (tc_validate(c)) return -1;
    if (task_parse_kind(c->task, &t->kind)) return ls_fail_prefix("[data] task (--task)");
    train_set_threads(c->threads);
    const ls_backend *be = ls_backend_by_name(c->backend);
    if (!be) return -1;
    if (ls_backend_set_precision(be, c->precision)) return ls_fail_prefix("[run] precision (--precision)");
    if (task_load_model_for(&t->m, NULL, c->model, be, t->kind)) return -1;
    t->have_model = 1;
    int encoder = arch_is_encoder(t->m.cfg.family);
    if (encoder && c->label_smoothing != 0)
        return ls_fail("[optim] label_smoothing (--label-smoothing): expected 0 for a %s encoder (its classification "
                       "loss has no smoothing), found %g", arch_family_name(t->m.cfg.family), c->label_smoothing);
    if (model_set_hidden_dropout(&t->m, (float)c->hidden_dropout))
        return ls_fail_prefix("[optim] hidden_dropout (--hidden-dropout)");
    // a classifier new to the checkpoint is drawn again from the run's seed, as HF draws it after set_seed
    if (encoder && t->m.head_initialised) model_init_head(&t->m, (uint64_t)c->seed, 0);
    if (c->seq_len > t->m.P)
        return ls_fail("[data] seq_len (--seq-len): expected at most the model's max_seq_len %d, found %d", t->m.P,
                       c->seq_len);
    t->tok = task_load_tokenizer(c->tokenizer, c->model, t->m.V, &t->tok_path);
    if (!t->tok) return ls_fail_prefix("[model] tokenizer (--tokenizer)");
    if (strlen(t->tok_path) < sizeof t->cfg.tokenizer) // config.ini records the file found
        snprintf(t->cfg.tokenizer, sizeof t->cfg.tokenizer, "%s", t->tok_path);
    if (task_data_load_for(&t->data, &t->m, t->kind, c->data, t->tok, c->seq_len, c->doc_sep)) return -1;
    t->have_data = 1;
    if (c->val_data[0]) {
        if (task_data_load_for(&t->vdata, &t->m, t->kind, c->val_data, t->tok, c->seq_len, c->doc_sep)) return -1;
        t->have_vdata = 1;
        t->val = &t->vdata;
        t->n_train = t->data.n_items;
        t->train_items = ls_malloc((size_t)t->n_train * sizeof(int));
        for (int i = 0; i < t->n_train; i++) t->train_items[i] = i;
        t->n_val = t->vdata.n_items;
        t->val_items = ls_malloc((size_t)(t->n_val ? t->n_val : 1) * sizeof(int));
        for (int i = 0; i < t->n_val; i++) t->val_items[i] = i;
    } else {
        if (task_data_split(&t->data, c->val_frac, SPLIT_SEED, &t->train_items, &t->n_train, &t->val_items,
                            &t->n_val))
            return -1;
        t->val = t->n_val ? &t->data : NULL;
    }
    if (t->n_train < 1)
        return ls_fail("%s: expected at least one training item after holding out %g for validation, found none",
                       c->data, c->val_frac);
    t->n_val = task_subsample(t->val_items, t->n_val, c->eval_max);
    if (!t->n_val) t->val = NULL;
    t->Tmax = task_max_T(&t->data);
    if (t->val && task_max_T(t->val) > t->Tmax) t->Tmax = task_max_T(t->val);
    if (model_reserve(&t->m, c->batch_size, t->Tmax)) return -1;

    tc_method_kind method = tc_method(c);
    if (method == TC_FULL) {
        adamw_init(&t->opt, be, t->m.n_params, (float)c->beta1, (float)c->beta2, (float)c->adam_eps,
                   (float)c->weight_decay);
        t->have_opt = 1;
        setup_full(t);
    } else if (method == TC_BITFIT || method == TC_FTTOP2) {
        if (setup_scope(t, method)) return -1;
    } else if (method == TC_ADAPTER_H || method == TC_ADAPTER_L) {
        if (c->merged_out[0])
            return ls_fail("[run] merged_out (--merged-out): expected none with --method %s (adapter layers do not merge "
                           "into W)", c->method);
        if (adapters_build(&t->ad, &t->m, method == TC_ADAPTER_H ? LS_ADAPTERS_HOULSBY : LS_ADAPTERS_LIN,
                           c->adapter_size, (uint64_t)c->seed))
            return ls_fail_prefix("[lora] %s", c->model);
        t->have_ad = 1;
        train_step_spec s;
        train_step_spec_init(&s, &t->m, NULL, &t->opt);
        train_step_spec_set_adapters(&s, &t->ad, (float)c->beta1, (float)c->beta2, (float)c->adam_eps,
                                     (float)c->weight_decay);
        t->params = s.params;
        t->grads = s.grads;
        t->n_trainable = s.n_trainable;
        t->have_opt = 1;
        if (encoder && setup_head(t)) return -1;
    } else if (method == TC_PREFIX_LAYER) {
        if (setup_prefix(t)) return -1;
        if (encoder && setup_head(t)) return -1; // PEFT's SEQ_CLS trains the classifier beside it
    } else if (method == TC_PREFIX_EMBED) {
        if (setup_prompt(t)) return -1;
        if (encoder && setup_head(t)) return -1; // PEFT's SEQ_CLS trains the classifier beside them
    } else {
        if (setup_lora(t)) return -1;
        adamw_init(&t->opt, be, t->n_trainable, (float)c->beta1, (float)c->beta2, (float)c->adam_eps,
                   (float)c->weight_decay);
        t->have_opt = 1;
        if (encoder && setup_head(t)) return -1;
    }
    // a frozen LM head runs in chunks, its backward fused into the forward: the
    // (N, V) logits never exist whole (model_set_loss_chunk)
    if (!model_head_trains(&t->m) && model_set_loss_chunk(&t->m, model_loss_chunk_rows(&t->m))) return -1;
    t->data_seed = ls_seed_mix((uint64_t)c->seed, DATA_STREAM);
    t->dropout_seed = ls_seed_mix((uint64_t)c->seed, DROPOUT_STREAM);
    ds_sampler_init(&t->sampler, t->train_items, t->n_train, t->data_seed);
    t->have_sampler = 1;
    t->ckpt_dir = ls_path_join(c->out, RUN_CHECKPOINT_DIR);
    t->ckpt_path = ls_path_join(t->ckpt_dir, RUN_CHECKPOINT_FILE);
    return 0;
}

// ----------------------------------------------------------------------------
// the inputs, by content

// What a run reads. Each one's fingerprint (base/sha256.h: a file's SHA-256, a
// directory's over its files) goes into every checkpoint and the manifest, so
// that --resume checks the inputs by what they hold rather than where they are:
// a run preempted on one machine continues on another that mounts the same
// files elsewhere, and a data file changed under a run is refused.
static const struct {
    const char *name, *option, *meta_key;
} INPUTS[N_INPUTS] = {
    {"model", "[model] path (--model)", "input.model.sha256"},
    {"tokenizer", "[model] tokenizer (--tokenizer)", "input.tokenizer.sha256"},
    {"data", "[data] train (--data)", "input.data.sha256"},
    {"val_data", "[data] val (--val-data)", "input.val_data.sha256"},
};

// Input i's location in config c ("" where there is none); config.ini holds the
// tokenizer file that was found (trainer_setup).
static const char *input_path(const ls_train_config *c, int i) {
    return i == IN_MODEL ? c->model : i == IN_TOKENIZER ? c->tokenizer : i == IN_DATA ? c->data : c->val_data;
}

// Fills t->input_sha256 for the inputs that are files or directories (not a
// tokenizer named "bytes", not an empty val_data). Returns 0 or -1.
static int fingerprint_inputs(trainer *t) {
    for (int i = 0; i < N_INPUTS; i++) {
        const char *p = input_path(&t->cfg, i);
        t->input_sha256[i][0] = 0;
        if (p[0] && ls_exists(p) && ls_sha256_path(p, t->input_sha256[i])) return ls_fail_prefix("%s", INPUTS[i].option);
    }
    return 0;
}

static int write_config(const ls_train_config *c, const char *path) {
    char *ini = tc_to_ini(c);
    int rc = ls_write_file_atomic(path, ini, strlen(ini));
    free(ini);
    return rc;
}

// --resume from a checkpoint: the options that decide the trained bits must be
// the run's (config.ini, `was`), and the inputs must hold what the checkpoint
// records, wherever they are now (*moved: 1 when some location differs). A
// checkpoint of a lorascope that recorded no fingerprints compares the
// locations instead. Returns 0, or -1 with ls_error() naming the option.
static int check_resume(const trainer *t, const ls_train_config *was, int *moved) {
    const ls_train_config *c = &t->cfg;
    st_file f;
    if (st_open(&f, t->ckpt_path)) return -1;
    int by_content = st_metadata(&f, INPUTS[IN_MODEL].meta_key) != NULL, rc = 0;
    *moved = 0;
    if (tc_compare_for_resume(was, c, by_content)) rc = -1;
    for (int i = 0; i < N_INPUTS && by_content && !rc; i++) {
        const char *want = st_metadata(&f, INPUTS[i].meta_key), *have = t->input_sha256[i][0] ? t->input_sha256[i] : NULL;
        const char *then = input_path(was, i), *now = input_path(c, i);
        if (!want && !have) continue;
        if (!want || !have)
            rc = ls_fail("%s: the run was started with '%s', found '%s' (only run options may change on --resume)",
                         INPUTS[i].option, then, now);
        else if (strcmp(want, have))
            rc = ls_fail("%s: '%s' does not hold what the run was trained on (sha256 %.16s..., found %.16s...; "
                         "the checkpoint records it in %s)", INPUTS[i].option, now, want, have, t->ckpt_path);
        *moved |= strcmp(then, now) != 0;
    }
    st_close(&f);
    return rc;
}

// config.ini of a resumed run whose inputs moved: the run's options, the
// inputs' new locations.
static int record_new_locations(ls_train_config *was, const ls_train_config *c, const char *cfg_path) {
    snprintf(was->model, sizeof was->model, "%s", c->model);
    snprintf(was->tokenizer, sizeof was->tokenizer, "%s", c->tokenizer);
    snprintf(was->data, sizeof was->data, "%s", c->data);
    snprintf(was->val_data, sizeof was->val_data, "%s", c->val_data);
    return write_config(was, cfg_path);
}

// ----------------------------------------------------------------------------
// checkpoints

// With a head beside the adapter: its parameters and moments as head.params,
// head.adam.m, head.adam.v and metadata n_head_params (its AdamW step is the
// adapter's: they step together).
static int save_checkpoint(trainer *t, long step) {
    const ls_backend *be = t->m.be;
    size_t n = t->n_trainable, nh = t->n_head;
    float *host = ls_malloc(3 * (n + nh) * sizeof(float)), *hh = host + 3 * n;
    trainable_download(t, host);
    be->download(host + n, t->opt.m, n);
    be->download(host + 2 * n, t->opt.v, n);
    if (nh) {
        be->download(hh, t->hparams, nh);
        be->download(hh + nh, t->hopt.m, nh);
        be->download(hh + 2 * nh, t->hopt.v, nh);
    }
    st_entry e[6] = {
        {"params", ST_F32, 1, {(int64_t)n}, host},
        {"adam.m", ST_F32, 1, {(int64_t)n}, host + n},
        {"adam.v", ST_F32, 1, {(int64_t)n}, host + 2 * n},
        {"head.params", ST_F32, 1, {(int64_t)nh}, hh},
        {"head.adam.m", ST_F32, 1, {(int64_t)nh}, hh + nh},
        {"head.adam.v", ST_F32, 1, {(int64_t)nh}, hh + 2 * nh},
    };
    char v[10][64];
    snprintf(v[0], 64, "%ld", step);
    snprintf(v[1], 64, "%ld", t->opt.step);
    snprintf(v[2], 64, "%zu", n);
    snprintf(v[3], 64, "%llu", (unsigned long long)t->data_seed);
    snprintf(v[4], 64, "%llu", (unsigned long long)t->dropout_seed);
    snprintf(v[5], 64, "%.17g", t->tokens_seen);
    snprintf(v[6], 64, "%.17g", t->train_time);
    snprintf(v[7], 64, "%.17g", t->base_val_loss);
    snprintf(v[8], 64, "%.17g", t->last_val_loss);
    snprintf(v[9], 64, "%zu", nh);
    const char *meta[2 * (12 + N_INPUTS)] = {
        "step", v[0], "adam_step", v[1], "n_params", v[2], "rng.data_seed", v[3], "rng.dropout_seed", v[4],
        "tokens_seen", v[5], "train_time_s", v[6], "base_val_loss", v[7], "last_val_loss", v[8],
        "mode", tc_method_name(tc_method(&t->cfg)), "lorascope_version", record_version()};
    int n_meta = 11;
    if (nh) meta[2 * n_meta] = "n_head_params", meta[2 * n_meta++ + 1] = v[9];
    for (int i = 0; i < N_INPUTS; i++)
        if (t->input_sha256[i][0]) meta[2 * n_meta] = INPUTS[i].meta_key, meta[2 * n_meta++ + 1] = t->input_sha256[i];
    int rc = ls_mkdir_p(t->ckpt_dir);
    if (!rc) rc = st_write(t->ckpt_path, e, nh ? 6 : 3, meta, n_meta);
    free(host);
    return rc;
}

static int meta_long(const st_file *f, const char *key, long *out) {
    const char *s = st_metadata(f, key);
    char *end;
    if (!s) return ls_fail("%s: metadata '%s': expected an integer, found none", f->path, key);
    *out = strtol(s, &end, 10);
    if (!*s || *end) return ls_fail("%s: metadata '%s': expected an integer, found '%s'", f->path, key, s);
    return 0;
}

static double meta_double(const st_file *f, const char *key) {
    const char *s = st_metadata(f, key);
    return s ? strtod(s, NULL) : NAN;
}

// One float32 tensor of the checkpoint, checked and uploaded to dst (n floats).
static int load_state_tensor(const trainer *t, const st_file *f, const char *name, float *dst, size_t n) {
    const st_tensor *x = st_find(f, name);
    if (!x || x->dtype != ST_F32 || x->numel != (int64_t)n)
        return ls_fail("%s: tensor '%s': expected %zu float32 values", t->ckpt_path, name, n);
    float *host = st_load_float(f, x);
    int rc = ckpt_check_finite(t->ckpt_path, name, host, (int64_t)n);
    if (!rc && dst == t->params) trainable_upload((trainer *)t, host); // BitFit / FT^Top2: packed segments
    else if (!rc) t->m.be->upload(dst, host, n);
    free(host);
    return rc;
}

// Restores params, moments and counters; returns the step the checkpoint
// holds, or -1.
static long load_checkpoint(trainer *t) {
    st_file f;
    if (st_open(&f, t->ckpt_path)) return -1;
    long step = -1, adam_step = 0, n = 0;
    size_t want = t->n_trainable;
    const char *mode = st_metadata(&f, "mode");
    const char *seeds[2] = {st_metadata(&f, "rng.data_seed"), st_metadata(&f, "rng.dropout_seed")};
    char s0[32], s1[32];
    snprintf(s0, sizeof s0, "%llu", (unsigned long long)t->data_seed);
    snprintf(s1, sizeof s1, "%llu", (unsigned long long)t->dropout_seed);
    if (meta_long(&f, "step", &step) || meta_long(&f, "adam_step", &adam_step) || meta_long(&f, "n_params", &n)) {
        step = -1;
    } else if (!mode || strcmp(mode, tc_method_name(tc_method(&t->cfg)))) {
        ls_fail("%s: metadata 'mode': expected '%s', found '%s'", t->ckpt_path, tc_method_name(tc_method(&t->cfg)),
                mode ? mode : "none");
        step = -1;
    } else if ((size_t)n != want) {
        ls_fail("%s: expected %zu trainable parameters, found %ld", t->ckpt_path, want, n);
        step = -1;
    } else if (!seeds[0] || !seeds[1] || strcmp(seeds[0], s0) || strcmp(seeds[1], s1)) {
        ls_fail("%s: random streams differ from this config's seed", t->ckpt_path);
        step = -1;
    } else if (step < 0 || step > t->cfg.steps) {
        ls_fail("%s: metadata 'step': expected 0..%d, found %ld", t->ckpt_path, t->cfg.steps, step);
        step = -1;
    } else {
        const char *names[6] = {"params", "adam.m", "adam.v", "head.params", "head.adam.m", "head.adam.v"};
        float *dst[6] = {t->params, t->opt.m, t->opt.v, t->hparams, t->hopt.m, t->hopt.v};
        for (int i = 0; i < (t->n_head ? 6 : 3) && step >= 0; i++)
            if (load_state_tensor(t, &f, names[i], dst[i], i < 3 ? want : t->n_head)) step = -1;
        t->opt.step = adam_step;
        t->hopt.step = adam_step;
        t->tokens_seen = meta_double(&f, "tokens_seen");
        t->train_time = meta_double(&f, "train_time_s");
        t->base_val_loss = meta_double(&f, "base_val_loss");
        t->last_val_loss = meta_double(&f, "last_val_loss");
    }
    st_close(&f);
    return step;
}

// ----------------------------------------------------------------------------
// progress and metrics

static void fmt_duration(char *buf, size_t size, double s) {
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, size, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60) snprintf(buf, size, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, size, "%lds", t);
}

static void print_progress(const trainer *t, long step, double loss, double lr, double gnorm, double tok_s,
                           double elapsed, double eta, int tty) {
    char el[32], et[32];
    fmt_duration(el, sizeof el, elapsed);
    fmt_duration(et, sizeof et, eta);
    fprintf(stderr, "%sstep %*ld/%d | loss %.4f | lr %.2e | grad norm %.3f | %.0f tok/s | %s elapsed | ETA %s%s",
            tty ? "\r" : "", (int)snprintf(NULL, 0, "%d", t->cfg.steps), step, t->cfg.steps, loss, lr, gnorm, tok_s,
            el, et, tty ? "\033[K" : "\n");
    fflush(stderr);
}

static void metrics_step(record_metrics *w, long step, double loss, double lr, double gnorm, double tokens,
                         double tok_s, double elapsed) {
    char buf[512];
    snprintf(buf, sizeof buf,
             "{\"step\":%ld,\"loss\":%.9g,\"lr\":%.9g,\"grad_norm\":%.9g,\"tokens\":%.0f,\"tok_per_s\":%.1f,"
             "\"elapsed_s\":%.3f}",
             step, loss, lr, gnorm, tokens, tok_s, elapsed);
    record_metrics_write(w, buf);
}

static int evaluate(trainer *t, record_metrics *w, long step, int tty) {
    task_eval_result r;
    double t0 = ls_now();
    if (task_evaluate(&t->m, t->val, t->val_items, t->n_val, t->cfg.batch_size, &r)) return -1;
    t->last_val_loss = r.loss;
    char buf[512], acc[64] = "";
    if (isfinite(r.accuracy)) snprintf(acc, sizeof acc, ",\"val_accuracy\":%.6f", r.accuracy);
    snprintf(buf, sizeof buf, "{\"step\":%ld,\"val_loss\":%.9g,\"val_tokens\":%ld,\"val_items\":%d%s,\"eval_s\":%.3f}",
             step, r.loss, r.n_tokens, r.n_items, acc, ls_now() - t0);
    record_metrics_write(w, buf);
    if (tty) fputc('\n', stderr);
    fprintf(stderr, "eval  step %ld | val loss %.4f (%d items, %ld tokens)", step, r.loss, r.n_items, r.n_tokens);
    if (isfinite(r.accuracy)) fprintf(stderr, " | accuracy %.4f", r.accuracy);
    fprintf(stderr, "\n");
    return 0;
}

// ----------------------------------------------------------------------------
// the run record

static int write_manifest(const trainer *t, const char *status, const char *message, long start_step,
                          long steps_done, double wall, const char *started, int argc, char **argv) {
    const ls_train_config *c = &t->cfg;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "lorascope_version", record_version());
    cJSON_AddStringToObject(root, "git_commit", record_git_commit());
    if (argv) {
        cJSON *cmd = cJSON_AddArrayToObject(root, "command");
        for (int i = 0; i < argc; i++) cJSON_AddItemToArray(cmd, cJSON_CreateString(argv[i]));
    }
    cJSON_AddStringToObject(root, "status", status);
    if (message) cJSON_AddStringToObject(root, "message", message);
    cJSON_AddStringToObject(root, "backend", t->m.be->name);
    cJSON_AddStringToObject(root, "precision", t->cfg.precision);
    cJSON_AddNumberToObject(root, "threads", omp_get_max_threads());
    cJSON_AddNumberToObject(root, "openblas_threads", openblas_get_num_threads());
    cJSON *mach = cJSON_AddObjectToObject(root, "machine");
    cJSON_AddStringToObject(mach, "uname", record_uname());
    cJSON_AddStringToObject(mach, "cpu", record_cpu_model());
    cJSON_AddNumberToObject(mach, "n_cpus", record_n_cpus());
    char host[256] = "unknown";
    gethostname(host, sizeof host - 1);
    cJSON_AddStringToObject(mach, "hostname", host);
    char now[64];
    ls_utc_iso(now, sizeof now);
    cJSON_AddStringToObject(root, "started_utc", started);
    cJSON_AddStringToObject(root, "finished_utc", now);
    cJSON_AddNumberToObject(root, "wall_time_s", wall);
    cJSON_AddNumberToObject(root, "train_time_s", t->train_time);
    cJSON_AddNumberToObject(root, "resumed_from_step", (double)start_step);
    cJSON_AddNumberToObject(root, "steps_done", (double)steps_done);
    cJSON_AddNumberToObject(root, "tokens_seen", t->tokens_seen);
    cJSON_AddStringToObject(root, "mode", tc_method_name(tc_method(c)));
    char line[256];
    size_t all = model_num_params(&t->m) + (t->have_lora ? t->lo.n_params : 0) + (t->have_ad ? t->ad.n_params : 0) +
                 (t->have_pf ? t->pf.n_params : 0) + (t->have_pr ? t->pr.n_params : 0);
    lora_format_trainable(line, sizeof line, t->n_trainable + t->n_head, all);
    cJSON_AddStringToObject(root, "trainable", line);
    cJSON_AddNumberToObject(root, "trainable_params", (double)(t->n_trainable + t->n_head));
    cJSON_AddStringToObject(root, "model", c->model);
    cJSON_AddStringToObject(root, "family", ckpt_family_name(t->m.cfg.family));
    cJSON_AddStringToObject(root, "tokenizer", t->tok_path ? t->tok_path : "");
    cJSON_AddStringToObject(root, "data", c->data);
    cJSON_AddStringToObject(root, "val_data", c->val_data);
    cJSON *inputs = cJSON_AddObjectToObject(root, "inputs");
    for (int i = 0; i < N_INPUTS; i++) {
        if (!t->input_sha256[i][0]) continue;
        cJSON *in = cJSON_AddObjectToObject(inputs, INPUTS[i].name);
        cJSON_AddStringToObject(in, "path", input_path(c, i));
        cJSON_AddStringToObject(in, "sha256", t->input_sha256[i]);
    }
    cJSON_AddNumberToObject(root, "n_train_items", t->n_train);
    cJSON_AddNumberToObject(root, "n_val_items", t->n_val);
    cJSON *res = cJSON_AddObjectToObject(root, "results");
    if (isfinite(t->base_val_loss)) cJSON_AddNumberToObject(res, "val_loss_before", t->base_val_loss);
    if (isfinite(t->last_val_loss)) cJSON_AddNumberToObject(res, "val_loss_after", t->last_val_loss);
    if (isfinite(t->last_train_loss)) cJSON_AddNumberToObject(res, "last_train_loss", t->last_train_loss);
    char *json = cJSON_Print(root);
    cJSON_Delete(root);
    char *path = ls_path_join(c->out, RUN_MANIFEST_FILE);
    int rc = ls_write_file_atomic(path, json, strlen(json));
    free(path);
    free(json);
    return rc;
}

const char *const *train_weights_files(int *n) {
    // as write_outputs names them
    static const char *const written[] = {
        RUN_ADAPTER_DIR "/" ADAPTER_WEIGHTS_FILE, RUN_FULL_DIR "/" RUN_PARAMS_FILE,
        RUN_BITFIT_DIR "/" RUN_PARAMS_FILE,       RUN_ADAPTERS_DIR "/" RUN_PARAMS_FILE,
        RUN_PREFIX_DIR "/" ADAPTER_WEIGHTS_FILE,  RUN_PROMPT_DIR "/" ADAPTER_WEIGHTS_FILE};
    *n = (int)(sizeof written / sizeof *written);
    return written;
}

// Writes the adapter (or the full parameters) and, on request, the merged weights.
// A new directory or file here belongs in train_weights_files too.
static int write_outputs(trainer *t) {
    const ls_train_config *c = &t->cfg;
    int rc = 0;
    if (t->have_lora) {
        lora_adapter a;
        rc = export_lora_to_adapter(&t->lo, t->init_params, c->model, &a);
        if (!rc && t->n_head) rc = model_head_to_adapter(&t->m, &a); // PEFT's modules_to_save
        if (!rc) {
            char *dir = ls_path_join(c->out, RUN_ADAPTER_DIR);
            rc = export_save_adapter(&a, dir);
            free(dir);
            adapter_free(&a);
        }
        if (!rc) rc = write_initial_factors(t);
    } else if (t->have_ad) { // not mergeable: lorascope's own file
        char *dir = ls_path_join(c->out, RUN_ADAPTERS_DIR);
        char *path = ls_path_join(dir, RUN_PARAMS_FILE);
        rc = ls_mkdir_p(dir);
        if (!rc) rc = adapters_save(&t->ad, arch_family_of(t->m.cfg.family)->layer_prefix,
                                    ckpt_family_name(t->m.cfg.family), path);
        free(path);
        if (!rc && t->n_head) { // an encoder's trained classifier, as BitFit saves it
            ls_param_segment hs[4];
            int nh = model_head_segments(&t->m, hs);
            path = ls_path_join(dir, "head.safetensors");
            rc = export_trained_params(&t->m, hs, nh, path);
            free(path);
        }
        free(dir);
    } else if (t->have_pf || t->have_pr) { // PEFT's PREFIX_TUNING / PROMPT_TUNING layout: PEFT loads it
        char *dir = ls_path_join(c->out, t->have_pf ? RUN_PREFIX_DIR : RUN_PROMPT_DIR);
        rc = t->have_pf ? export_prefix_peft(&t->pf, &t->m, c->model, dir)
                        : export_prompt_peft(&t->pr, &t->m, c->model, dir);
        if (!rc && t->n_head) { // an encoder's trained classifier, as the adapters' (lorascope's format)
            ls_param_segment hs[4];
            int nh = model_head_segments(&t->m, hs);
            char *path = ls_path_join(dir, "head.safetensors");
            rc = export_trained_params(&t->m, hs, nh, path);
            free(path);
        }
        free(dir);
    } else { // full fine-tuning and FT^Top2: every tensor; BitFit: the trained ones
        int bitfit = tc_method(c) == TC_BITFIT;
        char *dir = ls_path_join(c->out, bitfit ? RUN_BITFIT_DIR : RUN_FULL_DIR);
        char *path = ls_path_join(dir, RUN_PARAMS_FILE);
        rc = ls_mkdir_p(dir);
        if (!rc) rc = bitfit ? export_trained_params(&t->m, t->tsegs, t->n_tsegs, path) : export_full_params(&t->m, path);
        free(path);
        free(dir);
    }
    if (!rc && c->merged_out[0]) rc = export_merged_hf(&t->m, t->have_lora ? &t->lo : NULL, c->merged_out);
    return rc;
}

// ----------------------------------------------------------------------------
// the loop

// Empty but for the run directory's lock file (ours: we hold it).
static int dir_is_empty(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 1;
    int empty = 1;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, ".lock")) empty = 0;
    closedir(d);
    return empty;
}

// "<name>.tmp.<pid>": the temporary file of an atomic write (base/util.h).
static int is_temp_file(const char *name) {
    const char *t = strstr(name, ".tmp.");
    if (!t || t == name) return 0;
    const char *p = t + 5;
    if (!*p) return 0;
    for (; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    return 1;
}

// Removes the temporary files that writes interrupted by a kill left in the
// run directory and its subdirectories. Called under the run directory's
// lock, before this process writes anything there, so every one is stale,
// whatever its pid. A checkpoint directory left empty goes too.
static void remove_stale_temp_files(const char *out) {
    static const char *const subdirs[] = {"",           RUN_CHECKPOINT_DIR, RUN_ADAPTER_DIR,  RUN_FULL_DIR,
                                          RUN_BITFIT_DIR, RUN_ADAPTERS_DIR,   RUN_PREFIX_DIR, RUN_PROMPT_DIR};
    for (size_t i = 0; i < sizeof subdirs / sizeof *subdirs; i++) {
        char *dir = ls_path_join(out, subdirs[i]);
        DIR *d = opendir(dir);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (!is_temp_file(e->d_name)) continue;
            char *f = ls_path_join(dir, e->d_name);
            unlink(f);
            free(f);
        }
        if (d) closedir(d);
        if (!strcmp(subdirs[i], RUN_CHECKPOINT_DIR)) rmdir(dir); // fails, harmlessly, unless empty
        free(dir);
    }
}

// One training per run directory: two trainings of the same --out (a sweep
// spread over machines, a run started twice) would overwrite each other's
// files. The lock is the kernel's (base/lock.h), so a killed run leaves none.
static int lock_run_dir(const ls_train_config *c, int resume, int argc, char **argv, ls_lock *lock) {
    lock->fd = -1;
    lock->path = NULL;
    if (resume && !ls_is_dir(c->out)) return ls_fail("%s: no run to resume (the directory does not exist)", c->out);
    char what[64];
    snprintf(what, sizeof what, "lorascope %s", argc > 0 && argv ? argv[0] : "train");
    int rc = ls_lock_acquire(c->out, what, lock, NULL);
    if (rc == 1) {
        char held[1024];
        snprintf(held, sizeof held, "%s", ls_error());
        ls_fail("%s; wait for it or choose another --out", held);
    }
    if (rc) return -1;
    remove_stale_temp_files(c->out);
    return 0;
}

static int prepare_run_dir(trainer *t, int resume, long *start_step, record_metrics *w) {
    const ls_train_config *c = &t->cfg;
    char *cfg_path = ls_path_join(c->out, RUN_CONFIG_FILE);
    *start_step = 0;
    int rc = fingerprint_inputs(t);
    if (rc) {
        free(cfg_path);
        return rc;
    }
    if (resume) {
        if (!ls_exists(cfg_path)) rc = ls_fail("%s: no run to resume (" RUN_CONFIG_FILE " is missing)", c->out);
        else if (ls_exists(t->ckpt_path)) { // the checkpoint's state continues under the options it was trained with
            ls_train_config was;
            tc_defaults(&was);
            int moved = 0;
            if (tc_load_ini(&was, cfg_path) || check_resume(t, &was, &moved)) rc = ls_fail_prefix("--resume");
            else {
                long s = load_checkpoint(t);
                if (s < 0) rc = -1;
                else *start_step = s;
                if (!rc && moved) rc = record_new_locations(&was, c, cfg_path);
            }
        } else {
            // Nothing trained to continue (killed before its first checkpoint,
            // or a record kept without its weights, maybe made on another
            // machine with its own asset paths and threads): start again from
            // step 0 under the options given, recording them anew.
            ls_remove_in(c->out, RUN_METRICS_FILE);
            ls_remove_in(c->out, RUN_MANIFEST_FILE);
            rc = write_config(c, cfg_path);
        }
        if (!rc) rc = record_metrics_open(w, c->out, *start_step);
    } else {
        if (ls_exists(c->out) && !dir_is_empty(c->out))
            rc = ls_fail("%s: exists and is not empty; pass --resume to continue the run in it, or choose a new --out",
                         c->out);
        if (!rc) rc = ls_mkdir_p(c->out);
        if (!rc) rc = write_config(c, cfg_path);
        if (!rc) rc = record_metrics_open(w, c->out, -1);
    }
    free(cfg_path);
    return rc;
}

// Tokens of real input (padding excluded) in a filled batch.
static long batch_tokens(const task_data *d, const int *items, int n, const ds_batch *b) {
    if (d->kind == TASK_LM) return (long)n * b->T;
    long s = 0;
    if (d->classify) {
        for (int r = 0; r < n; r++) s += d->cls.n_tokens[items[r]];
        return s;
    }
    for (int r = 0; r < n; r++) s += d->pairs.n_tokens[items[r]] - 1;
    return s;
}

// The training data as the step's batch source: batch idx is the sampler's
// draw idx (data order of (seed, idx)), filled into tb.
typedef struct {
    trainer *t;
    int *items;
    task_batch *tb;
} batch_source;

static int next_batch(void *user, long idx, train_microbatch *mb) {
    batch_source *src = user;
    trainer *t = src->t;
    int B = t->cfg.batch_size;
    ds_sampler_batch(&t->sampler, idx, B, src->items);
    if (task_fill_batch(&t->data, src->items, B, src->tb)) return -1;
    const ds_batch *b = &src->tb->b;
    *mb = (train_microbatch){b->inputs, b->targets, b->mask, b->B, b->T,
                             (double)batch_tokens(&t->data, src->items, B, b), NULL, NULL};
    if (t->data.classify) {
        mb->keymask = src->tb->keymask;
        mb->labels = src->tb->labels;
    }
    return 0;
}

// One optimizer step (step.h) of this run's configuration. Returns 0; 1 with
// msg set when the loss or the gradient norm is not finite; -1 on errors.
static int trainer_step(trainer *t, long step, double lr, int *items, task_batch *tb, double *loss, double *tokens,
                        double *gnorm, char *msg, size_t msg_size) {
    const ls_train_config *c = &t->cfg;
    train_step_spec s;
    train_step_spec_init(&s, &t->m, t->have_lora ? &t->lo : NULL, &t->opt);
    s.grad_accum = c->grad_accum;
    s.clip = c->clip;
    s.label_smoothing = (float)c->label_smoothing;
    s.dropout_seed = t->dropout_seed;
    if (t->have_ad || t->have_pf || t->have_pr) {
        s.params = t->params;
        s.grads = t->grads;
        s.ad = t->have_ad ? &t->ad : NULL;
        s.pf = t->have_pf ? &t->pf : NULL;
        s.pr = t->have_pr ? &t->pr : NULL;
    }
    s.segs = t->tsegs;
    s.n_segs = t->n_tsegs;
    s.n_trainable = t->n_trainable;
    if (t->n_head) {
        s.head_opt = &t->hopt;
        s.head_params = t->hparams;
        s.head_grads = t->hgrads;
        s.n_head = t->n_head;
    }
    batch_source src = {t, items, tb};
    train_step_stats st = {0, 0, 0};
    int rc = train_step(&s, step, lr, next_batch, &src, &st, msg, msg_size);
    *loss = st.loss;
    *tokens = st.tokens;
    *gnorm = st.grad_norm;
    return rc;
}

// The lines a run starts with: trainable parameters as PEFT prints them, what
// trains on what, and where a resumed run continues.
static void print_banner(const trainer *t, long start) {
    const ls_train_config *c = &t->cfg;
    const ls_model *m = &t->m;
    char line[256];
    size_t all = model_num_params(m) + (t->have_lora ? t->lo.n_params : 0) + (t->have_ad ? t->ad.n_params : 0) +
                 (t->have_pf ? t->pf.n_params : 0) + (t->have_pr ? t->pr.n_params : 0);
    printf("%s\n", lora_format_trainable(line, sizeof line, t->n_trainable + t->n_head, all));
    static const char *const what[] = {"LoRA",      "full fine-tuning", "BitFit", "FT^Top2",
                                       "Adapter^H", "Adapter^L",        "prefix-layer tuning",
                                       "prefix-embedding tuning"};
    printf("%s: %s %s, %d train / %d validation items, %d threads%s\n", c->out, what[tc_method(c)],
           ckpt_family_name(m->cfg.family), t->n_train, t->n_val, omp_get_max_threads(),
           start ? " (resumed)" : "");
    if (start) printf("resuming from step %ld\n", start);
    fflush(stdout);
}

// A non-finite loss or gradient stopped the run at `step`: the message says
// where the last good checkpoint is, and metrics.jsonl records the stop.
static void stop_on_nonfinite(const trainer *t, record_metrics *w, char *message, size_t size, long step,
                              long last_ckpt) {
    char ck[1200];
    if (last_ckpt > 0) snprintf(ck, sizeof ck, "the last good checkpoint (step %ld) is in %s", last_ckpt, t->ckpt_dir);
    else snprintf(ck, sizeof ck, "no checkpoint was written");
    char full[2048];
    snprintf(full, sizeof full, "%s; stopped (%s)", message, ck);
    snprintf(message, size, "%s", full);
    char buf[700];
    snprintf(buf, sizeof buf, "{\"step\":%ld,\"loss\":null,\"error\":\"non-finite value\"}", step);
    record_metrics_write(w, buf);
}

int train_run(const ls_train_config *cfg, int resume, int argc, char **argv, train_result *res) {
    memset(res, 0, sizeof *res);
    res->base_val_loss = res->final_val_loss = res->final_train_loss = NAN;
    double wall0 = ls_now();
    char started[64];
    ls_utc_iso(started, sizeof started);
    trainer *t = ls_calloc(1, sizeof *t);
    if (trainer_setup(t, cfg)) {
        trainer_free(t);
        free(t);
        return -1;
    }
    const ls_train_config *c = &t->cfg;
    ls_model *m = &t->m;
    record_metrics w = {0};
    long start = 0;
    ls_lock lock;
    if (lock_run_dir(c, resume, argc, argv, &lock) || prepare_run_dir(t, resume, &start, &w)) {
        record_metrics_close(&w);
        ls_lock_release(&lock);
        trainer_free(t);
        free(t);
        return -1;
    }
    int tty = isatty(2);
    print_banner(t, start);

    int rc = 0;
    char message[2048] = "";
    if (start == 0 && t->val) {
        if (evaluate(t, &w, 0, 0)) rc = -1;
        t->base_val_loss = t->last_val_loss;
    }
    int *items = ls_malloc((size_t)c->batch_size * sizeof(int));
    task_batch tb;
    task_batch_init(&tb, c->batch_size, t->Tmax);
    model_set_training(m, 1);
    double run_t0 = ls_now(), run_train = 0.0, since_tokens = 0.0, since_t0 = ls_now();
    long last_ckpt = start, step;
    for (step = start + 1; step <= c->steps && !rc; step++) {
        double ts = ls_now();
        double lr = train_lr_at(c, step - 1), loss, tokens, gnorm;
        rc = trainer_step(t, step, lr, items, &tb, &loss, &tokens, &gnorm, message, sizeof message);
        if (rc) break;
        double dt = ls_now() - ts;
        run_train += dt;
        t->train_time += dt;
        since_tokens += tokens;
        t->tokens_seen += tokens;
        t->last_train_loss = loss;
        int log_now = tty || step % c->log_every == 0 || step == c->steps || step == start + 1;
        if (log_now) {
            double since = ls_now() - since_t0;
            double tok_s = since > 0 ? since_tokens / since : 0.0;
            double per_step = run_train / (double)(step - start);
            metrics_step(&w, step, loss, lr, gnorm, t->tokens_seen, tok_s, t->train_time);
            print_progress(t, step, loss, lr, gnorm, tok_s, ls_now() - run_t0, per_step * (c->steps - step), tty);
            since_tokens = 0.0;
            since_t0 = ls_now();
        }
        int eval_now = t->val && ((c->eval_every > 0 && step % c->eval_every == 0) || step == c->steps);
        if (eval_now) {
            model_set_training(m, 0);
            if (evaluate(t, &w, step, tty && step != c->steps)) rc = -1;
            model_set_training(m, 1);
            since_t0 = ls_now();
        }
        int save_now = (c->save_every > 0 && step % c->save_every == 0) || step == c->steps;
        if (!rc && save_now) {
            double ss = trainable_sumsq(t);
            if (!isfinite(ss)) {
                snprintf(message, sizeof message, "step %ld: parameters are not finite after the update", step);
                rc = 1;
                break;
            }
            if (save_checkpoint(t, step)) rc = -1;
            else last_ckpt = step;
        }
        if (c->stop_after == step) {
            // as if killed: no cleanup, no final outputs (tests of --resume)
            fflush(NULL);
            raise(SIGKILL);
        }
    }
    if (tty) fputc('\n', stderr);
    free(items);
    task_batch_free(&tb);
    long done = rc ? step - 1 : c->steps;
    if (rc == 1) {
        stop_on_nonfinite(t, &w, message, sizeof message, step, last_ckpt);
        write_manifest(t, "failed", message, start, done, ls_now() - wall0, started, argc, argv);
        ls_fail("%s", message);
    } else if (rc == 0) {
        rc = write_outputs(t);
        if (!rc) rc = write_manifest(t, "completed", NULL, start, done, ls_now() - wall0, started, argc, argv);
    }
    record_metrics_close(&w);
    ls_lock_release(&lock);
    res->status = rc == 1;
    res->steps_done = done;
    res->base_val_loss = t->base_val_loss;
    res->final_val_loss = t->last_val_loss;
    res->final_train_loss = t->last_train_loss;
    res->wall_s = ls_now() - wall0;
    trainer_free(t);
    free(t);
    return rc;
}

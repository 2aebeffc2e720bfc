// export: PEFT adapters, merged HF checkpoints, full parameters.
#include "train/export.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "engine/prefix.h"
#include "engine/prompt.h"
#include "io/safetensors.h"

// ----------------------------------------------------------------------------
// directories

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

void export_remove_tree(const char *dir) {
    if (ls_exists(dir)) nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *tmp_name(const char *dir) {
    size_t n = strlen(dir) + 32;
    char *t = ls_malloc(n);
    snprintf(t, n, "%s.tmp.%d", dir, (int)getpid());
    return t;
}

int export_replace_dir(const char *tmp, const char *dir) {
    char *old = NULL;
    if (ls_exists(dir)) {
        size_t n = strlen(dir) + 32;
        old = ls_malloc(n);
        snprintf(old, n, "%s.old.%d", dir, (int)getpid());
        if (rename(dir, old)) {
            int e = errno;
            free(old);
            return ls_fail("%s: cannot move the old directory aside: %s", dir, strerror(e));
        }
    }
    if (rename(tmp, dir)) {
        int e = errno;
        if (old) rename(old, dir);
        free(old);
        return ls_fail("%s: cannot rename %s into place: %s", dir, tmp, strerror(e));
    }
    if (old) export_remove_tree(old);
    free(old);
    return 0;
}

// ----------------------------------------------------------------------------
// PEFT adapters

// PEFT's target_modules entry of a module: llama "q_proj"; gpt2 the path,
// because "c_proj" alone would also match the MLP's c_proj.
static const char *target_name(ls_family f, const char *path) {
    if (f == LS_FAMILY_GPT2) return path;
    if (arch_is_encoder(f)) return arch_peft_target(f, arch_module_by_path(f, path)); // "query", "output.dense"
    const char *dot = strchr(path, '.');
    return dot ? dot + 1 : path;
}

// alpha' with alpha' / r' (or / sqrt(r')) = s.
static float alpha_for(float scale, int r, int rslora) {
    return rslora ? scale * sqrtf((float)r) : scale * (float)r;
}

// A site's factors as PEFT will hold them: A (r x d_in), B (d_out x r). PiSSA
// (init_params != NULL): rank 2r, A' = [A; A0], B' = [B, -B0].
// factors: a host copy of lo's parameter buffer to read A and B from, or NULL: lo's own.
static void site_factors(const ls_lora *lo, const float *factors, const ls_lora_site *s, const float *init_params,
                         float **Aout, float **Bout, int *rout) {
    size_t na = (size_t)s->rank * s->d_in, nb = (size_t)s->d_out * s->rank;
    float *A = ls_malloc(na * sizeof(float)), *B = ls_malloc(nb * sizeof(float));
    if (factors) {
        memcpy(A, factors + s->offset_A, na * sizeof(float));
        memcpy(B, factors + s->offset_B, nb * sizeof(float));
    } else {
        lora_get_site(lo, s, A, B);
    }
    if (!init_params) {
        *Aout = A;
        *Bout = B;
        *rout = s->rank;
        return;
    }
    const float *A0 = init_params + s->offset_A, *B0 = init_params + s->offset_B;
    *Aout = ls_malloc(2 * na * sizeof(float));
    memcpy(*Aout, A, na * sizeof(float));
    memcpy(*Aout + na, A0, na * sizeof(float));
    *Bout = ls_malloc(2 * nb * sizeof(float));
    for (int r = 0; r < s->d_out; r++)
        for (int k = 0; k < s->rank; k++) {
            (*Bout)[(size_t)r * 2 * s->rank + k] = B[(size_t)r * s->rank + k];
            (*Bout)[(size_t)r * 2 * s->rank + s->rank + k] = -B0[(size_t)r * s->rank + k];
        }
    *rout = 2 * s->rank;
    free(A);
    free(B);
}

// GPT-2's q, k, v row blocks of one layer's c_attn (sites[0..n), loralib's
// MergedLinear) as one PEFT c_attn module of rank R = the sum of their ranks:
// A' = [A_q; A_k; A_v] stacked, B' (3d x R) block-diagonal — block b's rows
// [row0_b, row0_b + d) hold B_b in block b's columns, zeros elsewhere — so that
// s'·B'·A' has s_b·B_b·A_b in block b's rows and 0 in an absent block's. s' is
// the first block's scale; another block's B is multiplied by s_b / s' (1 when
// the scales agree, as when trained with one rank and alpha: then exact).
static void fold_row_blocks(const ls_lora *lo, const float *factors, const ls_lora_site *sites, int n,
                            const float *init_params, adapter_site *m) {
    float *A[3], *B[3];
    int r[3], R = 0;
    for (int b = 0; b < n; b++) {
        site_factors(lo, factors, &sites[b], init_params, &A[b], &B[b], &r[b]);
        R += r[b];
    }
    const ls_lora_site *s0 = &sites[0];
    m->layer = s0->layer;
    snprintf(m->path, sizeof m->path, "%s", lora_module_path(lo->family, LORA_QKV));
    m->r = R;
    m->scale = s0->scale;
    m->alpha = alpha_for(m->scale, R, lo->cfg.rslora);
    m->d_out = s0->lin_out;
    m->d_in = s0->d_in;
    m->A = ls_malloc(sizeof(float) * (size_t)R * m->d_in);
    m->B = ls_calloc((size_t)m->d_out * R, sizeof(float));
    for (int b = 0, col = 0; b < n; col += r[b], b++) {
        memcpy(m->A + (size_t)col * m->d_in, A[b], sizeof(float) * (size_t)r[b] * m->d_in);
        float ratio = sites[b].scale == m->scale ? 1.0f : sites[b].scale / m->scale;
        for (int i = 0; i < sites[b].d_out; i++)
            for (int k = 0; k < r[b]; k++)
                m->B[(size_t)(sites[b].row0 + i) * R + col + k] = ratio * B[b][(size_t)i * r[b] + k];
        free(A[b]);
        free(B[b]);
    }
}

int export_lora_to_adapter(const ls_lora *lo, const float *init_params, const char *base_model, lora_adapter *a) {
    return export_lora_factors_to_adapter(lo, NULL, init_params, base_model, a);
}

int export_lora_factors_to_adapter(const ls_lora *lo, const float *factors, const float *init_params,
                                   const char *base_model, lora_adapter *a) {
    memset(a, 0, sizeof *a);
    int widen = init_params != NULL; // PiSSA -> LoRA of rank 2r
    a->family = lo->family;
    a->r = widen ? 2 * lo->cfg.rank : lo->cfg.rank;
    a->alpha = widen ? alpha_for(lora_scale(lo->cfg.alpha, lo->cfg.rank, lo->cfg.rslora), a->r, lo->cfg.rslora)
                     : lo->cfg.alpha;
    a->use_rslora = lo->cfg.rslora;
    a->base_model = base_model ? ls_strdup(base_model) : NULL;
    a->modules = ls_calloc((size_t)(lo->n_sites ? lo->n_sites : 1), sizeof(adapter_site));
    a->target_modules = ls_calloc(LORA_N_MODULES, sizeof(char *));
    for (int i = 0; i < lo->n_sites;) {
        const ls_lora_site *s = &lo->sites[i];
        adapter_site *m = &a->modules[a->n_modules++];
        const char *path = lora_module_path(lo->family, s->module);
        if (!path) { // q/k/v row blocks: sites are sorted by (layer, linear, row0)
            int n = 1;
            while (i + n < lo->n_sites && n < 3 && lo->sites[i + n].layer == s->layer &&
                   !lora_module_path(lo->family, lo->sites[i + n].module))
                n++;
            fold_row_blocks(lo, factors, s, n, init_params, m);
            i += n;
        } else {
            m->layer = s->layer;
            snprintf(m->path, sizeof m->path, "%s", path);
            site_factors(lo, factors, s, init_params, &m->A, &m->B, &m->r);
            m->alpha = widen ? alpha_for(s->scale, m->r, lo->cfg.rslora) : lo->cfg.alpha;
            m->scale = s->scale;
            m->d_out = s->d_out;
            m->d_in = s->d_in;
            i++;
        }
        const char *t = target_name(lo->family, m->path);
        int seen = 0;
        for (int k = 0; k < a->n_targets; k++) seen |= !strcmp(a->target_modules[k], t);
        if (!seen) a->target_modules[a->n_targets++] = ls_strdup(t);
    }
    // One rank and alpha for every module (folded c_attn included): the config's r and lora_alpha.
    int same = a->n_modules > 0;
    for (int i = 1; i < a->n_modules; i++)
        same &= a->modules[i].r == a->modules[0].r && a->modules[i].alpha == a->modules[0].alpha;
    if (same) {
        a->r = a->modules[0].r;
        a->alpha = a->modules[0].alpha;
    }
    return 0;
}

int export_save_adapter(const lora_adapter *a, const char *dir) {
    char *tmp = tmp_name(dir);
    export_remove_tree(tmp);
    int rc = adapter_save(a, tmp);
    if (!rc) rc = export_replace_dir(tmp, dir);
    if (rc) export_remove_tree(tmp);
    free(tmp);
    return rc;
}

// ----------------------------------------------------------------------------
// PEFT prefix tuning

static char *prefix_config_json(const ls_prefix *pf, const ls_model *m, const char *base_model) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNullToObject(o, "auto_mapping");
    if (base_model) cJSON_AddStringToObject(o, "base_model_name_or_path", base_model);
    else cJSON_AddNullToObject(o, "base_model_name_or_path");
    cJSON_AddNumberToObject(o, "encoder_hidden_size", m->C);
    cJSON_AddBoolToObject(o, "inference_mode", 1);
    cJSON_AddNullToObject(o, "modules_to_save");
    cJSON_AddNumberToObject(o, "num_attention_heads", pf->NKV);
    cJSON_AddNumberToObject(o, "num_layers", pf->L);
    cJSON_AddNumberToObject(o, "num_transformer_submodules", 1);
    cJSON_AddNumberToObject(o, "num_virtual_tokens", pf->P);
    cJSON_AddStringToObject(o, "peft_type", "PREFIX_TUNING");
    cJSON_AddBoolToObject(o, "prefix_projection", 0);
    cJSON_AddNullToObject(o, "revision");
    cJSON_AddStringToObject(o, "task_type", arch_is_encoder(m->cfg.family) ? "SEQ_CLS" : "CAUSAL_LM");
    cJSON_AddNumberToObject(o, "token_dim", (double)pf->NKV * pf->HS);
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}

// A PEFT prompt-learning directory, atomically: adapter_config.json (json)
// and adapter_model.safetensors holding `prompt_embeddings` (P, width), host
// memory. Prefix tuning and prompt tuning save the same two files.
static int export_prompt_dir(const char *dir, const char *json, const float *emb, int P, int64_t width) {
    char *tmp = tmp_name(dir);
    export_remove_tree(tmp);
    int rc = ls_mkdir_p(tmp);
    if (!rc) {
        char *cfg = ls_path_join(tmp, ADAPTER_CONFIG_FILE);
        rc = ls_write_file_atomic(cfg, json, strlen(json));
        free(cfg);
    }
    if (!rc) {
        st_entry e = {"prompt_embeddings", ST_F32, 2, {P, width}, (float *)emb};
        const char *meta[] = {"format", "pt"};
        char *st = ls_path_join(tmp, ADAPTER_WEIGHTS_FILE);
        rc = st_write(st, &e, 1, meta, 1);
        free(st);
    }
    if (!rc) rc = export_replace_dir(tmp, dir);
    if (rc) export_remove_tree(tmp);
    free(tmp);
    return rc;
}

int export_prefix_peft(const ls_prefix *pf, const ls_model *m, const char *base_model, const char *dir) {
    char *json = prefix_config_json(pf, m, base_model);
    float *emb = ls_malloc(pf->n_params * sizeof(float));
    prefix_peft_layout(pf, pf->params, emb, 1);
    int rc = export_prompt_dir(dir, json, emb, pf->P, (int64_t)(pf->n_params / (size_t)pf->P));
    free(emb);
    free(json);
    return rc;
}

// ----------------------------------------------------------------------------
// PEFT prompt tuning (prefix-embed)

// adapter_config.json as PEFT 0.21 writes it for PromptTuningConfig (RANDOM init).
static char *prompt_config_json(const ls_prompt *pr, const ls_model *m, const char *base_model) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNullToObject(o, "auto_mapping");
    if (base_model) cJSON_AddStringToObject(o, "base_model_name_or_path", base_model);
    else cJSON_AddNullToObject(o, "base_model_name_or_path");
    cJSON_AddBoolToObject(o, "inference_mode", 1);
    cJSON_AddNullToObject(o, "modules_to_save");
    cJSON_AddNumberToObject(o, "num_attention_heads", m->NH);
    cJSON_AddNumberToObject(o, "num_layers", m->L);
    cJSON_AddNumberToObject(o, "num_transformer_submodules", 1);
    cJSON_AddNumberToObject(o, "num_virtual_tokens", pr->P);
    cJSON_AddStringToObject(o, "peft_type", "PROMPT_TUNING");
    cJSON_AddStringToObject(o, "prompt_tuning_init", "RANDOM");
    cJSON_AddNullToObject(o, "prompt_tuning_init_text");
    cJSON_AddNullToObject(o, "revision");
    cJSON_AddStringToObject(o, "task_type", arch_is_encoder(m->cfg.family) ? "SEQ_CLS" : "CAUSAL_LM");
    cJSON_AddNumberToObject(o, "token_dim", pr->C);
    cJSON_AddNullToObject(o, "tokenizer_kwargs");
    cJSON_AddNullToObject(o, "tokenizer_name_or_path");
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}

int export_prompt_peft(const ls_prompt *pr, const ls_model *m, const char *base_model, const char *dir) {
    char *json = prompt_config_json(pr, m, base_model);
    float *emb = ls_malloc(pr->n_params * sizeof(float)); // PEFT's layout is the engine's: (l_p, C)
    pr->be->download(emb, pr->params, pr->n_params);
    int rc = export_prompt_dir(dir, json, emb, pr->P, pr->C);
    free(emb);
    free(json);
    return rc;
}

// ----------------------------------------------------------------------------
// merged Hugging Face checkpoint

// Offset (floats, into params_memory) of the weight of (layer, linear).
static size_t linear_offset(const ls_model *m, int l, ls_linear lin) {
    const ls_params *p = &m->params;
    size_t C = m->C;
    switch (lin) {
    case LS_LIN_QKV: return (size_t)(p->qkvw - m->params_memory) + (size_t)l * m->QKV * C;
    case LS_LIN_O: return (size_t)(p->attprojw - m->params_memory) + (size_t)l * C * C;
    case LS_LIN_FC: return (size_t)(p->fcw - m->params_memory) + (size_t)l * m->F * C;
    default: return (size_t)(p->fcprojw - m->params_memory) + (size_t)l * C * m->H;
    }
}

// The shortest decimal that reads back as the same float, so that config.json
// says 1e-05 rather than 9.9999997473787516e-06.
static double short_float(float f) {
    char buf[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        double d = strtod(buf, NULL);
        if ((float)d == f) return d;
    }
    return (double)f;
}

static char *hf_config_json(const ls_model *m) {
    const ls_model_config *c = &m->cfg;
    cJSON *root = cJSON_CreateObject();
    if (c->family == LS_FAMILY_GPT2) {
        cJSON *arch = cJSON_AddArrayToObject(root, "architectures");
        cJSON_AddItemToArray(arch, cJSON_CreateString("GPT2LMHeadModel"));
        cJSON_AddStringToObject(root, "model_type", "gpt2");
        cJSON_AddNumberToObject(root, "n_embd", c->dim);
        cJSON_AddNumberToObject(root, "n_layer", c->n_layers);
        cJSON_AddNumberToObject(root, "n_head", c->n_heads);
        cJSON_AddNumberToObject(root, "n_inner", c->hidden_dim);
        cJSON_AddNumberToObject(root, "n_positions", c->max_seq_len);
        cJSON_AddNumberToObject(root, "n_ctx", c->max_seq_len);
        cJSON_AddNumberToObject(root, "vocab_size", c->vocab_size);
        cJSON_AddNumberToObject(root, "layer_norm_epsilon", short_float(c->norm_eps));
        cJSON_AddStringToObject(root, "activation_function", "gelu_new");
        cJSON_AddBoolToObject(root, "tie_word_embeddings", 1);
        if (c->vocab_size == 50257) {
            cJSON_AddNumberToObject(root, "bos_token_id", 50256);
            cJSON_AddNumberToObject(root, "eos_token_id", 50256);
        }
    } else {
        cJSON *arch = cJSON_AddArrayToObject(root, "architectures");
        cJSON_AddItemToArray(arch, cJSON_CreateString("LlamaForCausalLM"));
        cJSON_AddStringToObject(root, "model_type", "llama");
        cJSON_AddNumberToObject(root, "hidden_size", c->dim);
        cJSON_AddNumberToObject(root, "intermediate_size", c->hidden_dim);
        cJSON_AddNumberToObject(root, "num_hidden_layers", c->n_layers);
        cJSON_AddNumberToObject(root, "num_attention_heads", c->n_heads);
        cJSON_AddNumberToObject(root, "num_key_value_heads", c->n_kv_heads);
        cJSON_AddNumberToObject(root, "vocab_size", c->vocab_size);
        cJSON_AddNumberToObject(root, "max_position_embeddings", c->max_seq_len);
        cJSON_AddNumberToObject(root, "rms_norm_eps", short_float(c->norm_eps));
        cJSON_AddNumberToObject(root, "rope_theta", short_float(c->rope_theta > 0 ? c->rope_theta : 10000.0f));
        cJSON_AddNullToObject(root, "rope_scaling");
        cJSON_AddBoolToObject(root, "tie_word_embeddings", c->tied_embeddings);
        cJSON_AddStringToObject(root, "hidden_act", "silu");
        cJSON_AddBoolToObject(root, "attention_bias", 0);
        cJSON_AddNumberToObject(root, "bos_token_id", 1);
        cJSON_AddNumberToObject(root, "eos_token_id", 2);
    }
    cJSON_AddStringToObject(root, "torch_dtype", "float32");
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    return s;
}

static int is_conv1d_name(const char *name) {
    return strstr(name, "c_attn.weight") || strstr(name, "c_proj.weight") || strstr(name, "c_fc.weight");
}

// Within each head of HS rows, consecutive-pair RoPE row 2i becomes split-half
// row i and row 2i+1 becomes row i + HS/2 (convert_llama_weights_to_hf.py's
// permute). rows = n_heads * HS, cols = d_in.
static void permute_rope_rows(float *dst, const float *src, int n_heads, int HS, int cols) {
    int half = HS / 2;
    for (int h = 0; h < n_heads; h++)
        for (int i = 0; i < half; i++)
            for (int par = 0; par < 2; par++) {
                const float *from = src + ((size_t)h * HS + 2 * i + par) * cols;
                float *to = dst + ((size_t)h * HS + i + par * half) * cols;
                memcpy(to, from, (size_t)cols * sizeof(float));
            }
}

static int write_hf_tensors(const ls_model *m, const float *host, const char *path) {
    int n = m->n_views;
    st_entry *e = ls_calloc((size_t)n, sizeof *e);
    float **owned = ls_calloc((size_t)n, sizeof(float *));
    char (*names)[96] = ls_calloc((size_t)n, sizeof *names);
    int llama_perm = m->cfg.family == LS_FAMILY_LLAMA && m->cfg.rope_interleaved;
    for (int i = 0; i < n; i++) {
        const ls_param_view *v = &m->views[i];
        const float *src = host + v->offset;
        snprintf(names[i], sizeof names[i], "%s", v->name);
        e[i].name = names[i];
        e[i].dtype = ST_F32;
        e[i].ndim = v->ndim;
        e[i].shape[0] = v->shape[0];
        e[i].shape[1] = v->shape[1];
        e[i].data = src;
        if (arch_family_of(m->cfg.family)->conv1d && v->ndim == 2 && is_conv1d_name(v->name)) {
            // (out, in) -> Conv1D (in, out)
            int64_t r = v->shape[0], c = v->shape[1];
            float *t = ls_malloc(v->numel * sizeof(float));
            for (int64_t a = 0; a < r; a++)
                for (int64_t b = 0; b < c; b++) t[b * r + a] = src[a * c + b];
            e[i].shape[0] = c;
            e[i].shape[1] = r;
            e[i].data = owned[i] = t;
        } else if (llama_perm && (strstr(v->name, "self_attn.q_proj.weight") ||
                                  strstr(v->name, "self_attn.k_proj.weight"))) {
            int heads = (int)(v->shape[0] / m->HS);
            float *t = ls_malloc(v->numel * sizeof(float));
            permute_rope_rows(t, src, heads, m->HS, (int)v->shape[1]);
            e[i].data = owned[i] = t;
        }
    }
    const char *meta[] = {"format", "pt"};
    int rc = st_write(path, e, n, meta, 1);
    for (int i = 0; i < n; i++) free(owned[i]);
    free(owned);
    free(names);
    free(e);
    return rc;
}

// Host copy of the parameters with ΔW of every site added (lora_merge_into).
static float *merged_params(const ls_model *m, const ls_lora *lo) {
    float *host = ls_malloc(m->n_params * sizeof(float));
    m->be->download(host, m->params_memory, m->n_params);
    if (!lo || lo->merged) return host;
    for (int i = 0; i < lo->n_sites; i++) {
        const ls_lora_site *s = &lo->sites[i];
        float *A = ls_malloc((size_t)s->rank * s->d_in * sizeof(float));
        float *B = ls_malloc((size_t)s->d_out * s->rank * sizeof(float));
        lora_get_site(lo, s, A, B);
        float *W = host + linear_offset(m, s->layer, s->linear) + (size_t)s->row0 * s->d_in;
        lora_merge_into(W, B, A, s->d_out, s->d_in, s->rank, s->scale);
        free(A);
        free(B);
    }
    return host;
}

int export_merged_hf(const ls_model *m, const ls_lora *lo, const char *dir) {
    char *tmp = tmp_name(dir);
    export_remove_tree(tmp);
    int rc = ls_mkdir_p(tmp);
    if (!rc) {
        char *json = hf_config_json(m);
        char *cfg = ls_path_join(tmp, "config.json");
        rc = ls_write_file_atomic(cfg, json, strlen(json));
        free(cfg);
        free(json);
    }
    if (!rc) {
        float *host = merged_params(m, lo);
        char *st = ls_path_join(tmp, "model.safetensors");
        rc = write_hf_tensors(m, host, st);
        free(st);
        free(host);
    }
    if (!rc) rc = export_replace_dir(tmp, dir);
    if (rc) export_remove_tree(tmp);
    free(tmp);
    return rc;
}

// ----------------------------------------------------------------------------
// full fine-tuning parameters

// The views inside one of segs (NULL: every view) as one safetensors file.
static int write_views(const ls_model *m, const ls_param_segment *segs, int n_segs, const char *path) {
    float *host = ls_malloc(m->n_params * sizeof(float));
    m->be->download(host, m->params_memory, m->n_params);
    st_entry *e = ls_calloc((size_t)m->n_views, sizeof *e);
    int n = 0;
    for (int i = 0; i < m->n_views; i++) {
        const ls_param_view *v = &m->views[i];
        int inside = !segs;
        for (int k = 0; k < n_segs && !inside; k++)
            inside = v->offset >= segs[k].offset && v->offset + v->numel <= segs[k].offset + segs[k].n;
        if (!inside) continue;
        e[n] = (st_entry){v->name, ST_F32, v->ndim, {v->shape[0], v->shape[1]}, host + v->offset};
        n++;
    }
    char ri[8];
    snprintf(ri, sizeof ri, "%d", m->cfg.rope_interleaved);
    const char *meta[] = {"format", "lorascope-canonical", "family", ckpt_family_name(m->cfg.family),
                          "rope_interleaved", ri, "layout", "(out, in) as io/checkpoint.h"};
    int rc = st_write(path, e, n, meta, 4);
    free(e);
    free(host);
    return rc;
}

int export_full_params(const ls_model *m, const char *path) { return write_views(m, NULL, 0, path); }

int export_trained_params(const ls_model *m, const ls_param_segment *segs, int n_segs, const char *path) {
    return write_views(m, segs, n_segs, path);
}

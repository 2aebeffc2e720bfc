// arch: the tables of the architecture registry and their lookups.
#include "arch/arch.h"

#include <stdio.h>
#include <string.h>

// ----------------------------------------------------------------------------
// llama (llama2.c .bin, HF LlamaForCausalLM / Mistral, GGUF "llama")

static const arch_module LLAMA_MODULES[] = {
    {ARCH_Q, "q", NULL, "self_attn.q_proj", "attn_q", ARCH_DIM_Q, ARCH_DIM_MODEL, -1, 0},
    {ARCH_K, "k", NULL, "self_attn.k_proj", "attn_k", ARCH_DIM_KV, ARCH_DIM_MODEL, -1, 0},
    {ARCH_V, "v", NULL, "self_attn.v_proj", "attn_v", ARCH_DIM_KV, ARCH_DIM_MODEL, -1, 0},
    {ARCH_O, "o", NULL, "self_attn.o_proj", "attn_output", ARCH_DIM_MODEL, ARCH_DIM_Q, -1, 0},
    {ARCH_GATE, "gate", NULL, "mlp.gate_proj", "ffn_gate", ARCH_DIM_HIDDEN, ARCH_DIM_MODEL, -1, 0},
    {ARCH_UP, "up", NULL, "mlp.up_proj", "ffn_up", ARCH_DIM_HIDDEN, ARCH_DIM_MODEL, -1, 0},
    {ARCH_DOWN, "down", NULL, "mlp.down_proj", "ffn_down", ARCH_DIM_MODEL, ARCH_DIM_HIDDEN, -1, 0},
};

static const arch_tensor LLAMA_LAYER[] = {
    {"input_layernorm.weight", ARCH_T_NORM1_W, 0},
    {"self_attn.q_proj.weight", ARCH_T_WEIGHT, ARCH_Q},
    {"self_attn.k_proj.weight", ARCH_T_WEIGHT, ARCH_K},
    {"self_attn.v_proj.weight", ARCH_T_WEIGHT, ARCH_V},
    {"self_attn.o_proj.weight", ARCH_T_WEIGHT, ARCH_O},
    {"post_attention_layernorm.weight", ARCH_T_NORM2_W, 0},
    {"mlp.gate_proj.weight", ARCH_T_WEIGHT, ARCH_GATE},
    {"mlp.up_proj.weight", ARCH_T_WEIGHT, ARCH_UP},
    {"mlp.down_proj.weight", ARCH_T_WEIGHT, ARCH_DOWN},
};

// ----------------------------------------------------------------------------
// gpt2 (HF GPT2LMHeadModel; q, k, v are row blocks of the fused c_attn, as
// loralib's MergedLinear adapts them in the paper's GPT-2 experiments)

static const arch_module GPT2_MODULES[] = {
    {ARCH_QKV, "c_attn", NULL, "attn.c_attn", "attn_qkv", ARCH_DIM_QKV, ARCH_DIM_MODEL, -1, 0},
    {ARCH_Q, "q", NULL, "attn.c_attn", NULL, ARCH_DIM_Q, ARCH_DIM_MODEL, 0, 3},
    {ARCH_K, "k", NULL, "attn.c_attn", NULL, ARCH_DIM_KV, ARCH_DIM_MODEL, 1, 3},
    {ARCH_V, "v", NULL, "attn.c_attn", NULL, ARCH_DIM_KV, ARCH_DIM_MODEL, 2, 3},
    {ARCH_O, "c_proj", "o", "attn.c_proj", "attn_output", ARCH_DIM_MODEL, ARCH_DIM_Q, -1, 0},
    {ARCH_FC, "c_fc", NULL, "mlp.c_fc", "ffn_up", ARCH_DIM_HIDDEN, ARCH_DIM_MODEL, -1, 0},
    {ARCH_DOWN, "mlp_proj", "down", "mlp.c_proj", "ffn_down", ARCH_DIM_MODEL, ARCH_DIM_HIDDEN, -1, 0},
};

static const arch_tensor GPT2_LAYER[] = {
    {"ln_1.weight", ARCH_T_NORM1_W, 0},
    {"ln_1.bias", ARCH_T_NORM1_B, 0},
    {"attn.c_attn.weight", ARCH_T_WEIGHT, ARCH_QKV},
    {"attn.c_attn.bias", ARCH_T_BIAS, ARCH_QKV},
    {"attn.c_proj.weight", ARCH_T_WEIGHT, ARCH_O},
    {"attn.c_proj.bias", ARCH_T_BIAS, ARCH_O},
    {"ln_2.weight", ARCH_T_NORM2_W, 0},
    {"ln_2.bias", ARCH_T_NORM2_B, 0},
    {"mlp.c_fc.weight", ARCH_T_WEIGHT, ARCH_FC},
    {"mlp.c_fc.bias", ARCH_T_BIAS, ARCH_FC},
    {"mlp.c_proj.weight", ARCH_T_WEIGHT, ARCH_DOWN},
    {"mlp.c_proj.bias", ARCH_T_BIAS, ARCH_DOWN},
};

// ----------------------------------------------------------------------------
// bert / roberta (HF BertModel, BertForSequenceClassification, RobertaModel,
// RobertaForSequenceClassification): post-LN blocks; q, k, v are separate HF
// tensors held fused as rows of one map (as llama's); the attention output map
// is o, the MLP's intermediate.dense and output.dense are fc and down.

static const arch_module BERT_MODULES[] = {
    {ARCH_Q, "q", "query", "attention.self.query", NULL, ARCH_DIM_Q, ARCH_DIM_MODEL, -1, 0},
    {ARCH_K, "k", "key", "attention.self.key", NULL, ARCH_DIM_KV, ARCH_DIM_MODEL, -1, 0},
    {ARCH_V, "v", "value", "attention.self.value", NULL, ARCH_DIM_KV, ARCH_DIM_MODEL, -1, 0},
    {ARCH_O, "o", "attn_out", "attention.output.dense", NULL, ARCH_DIM_MODEL, ARCH_DIM_Q, -1, 0},
    {ARCH_FC, "intermediate", "fc", "intermediate.dense", NULL, ARCH_DIM_HIDDEN, ARCH_DIM_MODEL, -1, 0},
    {ARCH_DOWN, "output", "down", "output.dense", NULL, ARCH_DIM_MODEL, ARCH_DIM_HIDDEN, -1, 0},
};

// NORM1 is the LayerNorm after attention, NORM2 the one after the MLP (post-LN).
static const arch_tensor BERT_LAYER[] = {
    {"attention.self.query.weight", ARCH_T_WEIGHT, ARCH_Q},
    {"attention.self.query.bias", ARCH_T_BIAS, ARCH_Q},
    {"attention.self.key.weight", ARCH_T_WEIGHT, ARCH_K},
    {"attention.self.key.bias", ARCH_T_BIAS, ARCH_K},
    {"attention.self.value.weight", ARCH_T_WEIGHT, ARCH_V},
    {"attention.self.value.bias", ARCH_T_BIAS, ARCH_V},
    {"attention.output.dense.weight", ARCH_T_WEIGHT, ARCH_O},
    {"attention.output.dense.bias", ARCH_T_BIAS, ARCH_O},
    {"attention.output.LayerNorm.weight", ARCH_T_NORM1_W, 0},
    {"attention.output.LayerNorm.bias", ARCH_T_NORM1_B, 0},
    {"intermediate.dense.weight", ARCH_T_WEIGHT, ARCH_FC},
    {"intermediate.dense.bias", ARCH_T_BIAS, ARCH_FC},
    {"output.dense.weight", ARCH_T_WEIGHT, ARCH_DOWN},
    {"output.dense.bias", ARCH_T_BIAS, ARCH_DOWN},
    {"output.LayerNorm.weight", ARCH_T_NORM2_W, 0},
    {"output.LayerNorm.bias", ARCH_T_NORM2_B, 0},
};

// ----------------------------------------------------------------------------
// the registry

#define COUNT(a) (int)(sizeof(a) / sizeof((a)[0]))

static const arch_family ARCH_FAMILIES[LS_N_FAMILIES] = {
    [LS_FAMILY_LLAMA] = {LS_FAMILY_LLAMA, "llama", "model.layers", "base_model.model.model.layers", 0,
                         "model.embed_tokens.weight", NULL, "model.norm.weight", NULL, "lm_head.weight",
                         COUNT(LLAMA_MODULES), LLAMA_MODULES, COUNT(LLAMA_LAYER), LLAMA_LAYER},
    [LS_FAMILY_GPT2] = {LS_FAMILY_GPT2, "gpt2", "transformer.h", "base_model.model.transformer.h", 1,
                        "transformer.wte.weight", "transformer.wpe.weight", "transformer.ln_f.weight",
                        "transformer.ln_f.bias", NULL, COUNT(GPT2_MODULES), GPT2_MODULES,
                        COUNT(GPT2_LAYER), GPT2_LAYER},
    [LS_FAMILY_BERT] = {LS_FAMILY_BERT, "bert", "bert.encoder.layer", "base_model.model.bert.encoder.layer", 0,
                        "bert.embeddings.word_embeddings.weight", "bert.embeddings.position_embeddings.weight",
                        NULL, NULL, NULL, COUNT(BERT_MODULES), BERT_MODULES, COUNT(BERT_LAYER), BERT_LAYER,
                        1, "bert.", "bert.embeddings.token_type_embeddings.weight",
                        "bert.embeddings.LayerNorm.weight", "bert.embeddings.LayerNorm.bias",
                        "bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight",
                        "classifier.bias", "classifier", 0},
    [LS_FAMILY_ROBERTA] = {LS_FAMILY_ROBERTA, "roberta", "roberta.encoder.layer",
                           "base_model.model.roberta.encoder.layer", 0,
                           "roberta.embeddings.word_embeddings.weight",
                           "roberta.embeddings.position_embeddings.weight", NULL, NULL, NULL,
                           COUNT(BERT_MODULES), BERT_MODULES, COUNT(BERT_LAYER), BERT_LAYER, 1, "roberta.",
                           "roberta.embeddings.token_type_embeddings.weight",
                           "roberta.embeddings.LayerNorm.weight", "roberta.embeddings.LayerNorm.bias",
                           "classifier.dense.weight", "classifier.dense.bias", "classifier.out_proj.weight",
                           "classifier.out_proj.bias", "classifier", 1},
};

const arch_family *arch_family_of(ls_family f) {
    if ((int)f < 0 || (int)f >= LS_N_FAMILIES) return NULL;
    return &ARCH_FAMILIES[f];
}

int arch_is_encoder(ls_family f) {
    const arch_family *a = arch_family_of(f);
    return a && a->encoder;
}

const char *arch_family_name(ls_family f) {
    const arch_family *a = arch_family_of(f);
    return a ? a->name : "unknown";
}

const arch_family *arch_family_by_peft_key(const char *key, const char **rest) {
    for (int f = 0; f < LS_N_FAMILIES; f++) {
        const char *p = ARCH_FAMILIES[f].peft_prefix;
        size_t n = strlen(p);
        if (strncmp(key, p, n) || key[n] != '.') continue;
        if (rest) *rest = key + n + 1;
        return &ARCH_FAMILIES[f];
    }
    return NULL;
}

// ----------------------------------------------------------------------------
// modules

const char *arch_peft_path(const arch_module *m) { return m->block < 0 ? m->path : NULL; }

const arch_module *arch_module_by_path(ls_family f, const char *path) {
    const arch_family *a = arch_family_of(f);
    for (int i = 0; a && i < a->n_modules; i++)
        if (a->modules[i].block < 0 && !strcmp(a->modules[i].path, path)) return &a->modules[i];
    return NULL;
}

const arch_module *arch_module_by_role(ls_family f, arch_role role) {
    const arch_family *a = arch_family_of(f);
    for (int i = 0; a && i < a->n_modules; i++)
        if (a->modules[i].role == role) return &a->modules[i];
    return NULL;
}

const arch_module *arch_module_by_name(ls_family f, const char *name) {
    const arch_family *a = arch_family_of(f);
    if (!a) return NULL;
    for (int i = 0; i < a->n_modules; i++) {
        const arch_module *m = &a->modules[i];
        if (!strcmp(m->name, name) || (m->alias && !strcmp(m->alias, name))) return m;
    }
    const arch_module *m = arch_module_by_path(f, name);
    if (m) return m;
    // "q_proj": the last component of a path, if exactly one module ends in it
    const arch_module *found = NULL;
    for (int i = 0; i < a->n_modules; i++) {
        const char *dot = strrchr(a->modules[i].path, '.');
        if (a->modules[i].block >= 0 || !dot || strcmp(dot + 1, name)) continue;
        if (found) return NULL;
        found = &a->modules[i];
    }
    return found;
}

const char *arch_peft_target(ls_family f, const arch_module *m) {
    const arch_family *a = arch_family_of(f);
    const char *leaf = strrchr(m->path, '.');
    leaf = leaf ? leaf + 1 : m->path;
    for (int i = 0; a && i < a->n_modules; i++) {
        const arch_module *o = &a->modules[i];
        const char *dot = strrchr(o->path, '.');
        if (o != m && o->block < 0 && strcmp(o->path, m->path) && !strcmp(dot ? dot + 1 : o->path, leaf))
            return m->path;
    }
    return leaf;
}

uint32_t arch_all_modules(ls_family f) {
    const arch_family *a = arch_family_of(f);
    uint32_t mask = 0;
    for (int i = 0; a && i < a->n_modules; i++)
        if (a->modules[i].block < 0) mask |= 1u << a->modules[i].role;
    return mask;
}

int64_t arch_dim_of(arch_dim d, const ls_model_config *c) {
    int64_t head_dim = c->n_heads > 0 ? c->dim / c->n_heads : 0;
    switch (d) {
    case ARCH_DIM_Q: return (int64_t)c->n_heads * head_dim;
    case ARCH_DIM_KV: return (int64_t)c->n_kv_heads * head_dim;
    case ARCH_DIM_QKV: return ((int64_t)c->n_heads + 2 * (int64_t)c->n_kv_heads) * head_dim;
    case ARCH_DIM_HIDDEN: return c->hidden_dim;
    default: return c->dim;
    }
}

void arch_module_shape(const arch_module *m, const ls_model_config *c, int *d_out, int *d_in) {
    *d_out = (int)arch_dim_of(m->d_out, c);
    *d_in = (int)arch_dim_of(m->d_in, c);
}

char *arch_module_names(ls_family f, const char *sep, const char *last_sep, char *buf, size_t size) {
    const arch_family *a = arch_family_of(f);
    size_t k = 0;
    if (size) buf[0] = '\0';
    for (int i = 0; a && i < a->n_modules && k < size; i++) {
        const char *s = i == 0 ? "" : i == a->n_modules - 1 ? last_sep : sep;
        int n = snprintf(buf + k, size - k, "%s%s", s, a->modules[i].name);
        if (n < 0) break;
        k += (size_t)n;
    }
    return buf;
}

// ----------------------------------------------------------------------------
// canonical tensors of a layer

void arch_tensor_shape(ls_family f, const arch_tensor *t, const ls_model_config *c, int *ndim,
                       int64_t *d0, int64_t *d1) {
    *ndim = 1;
    *d0 = c->dim;
    *d1 = 0;
    if (t->kind != ARCH_T_WEIGHT && t->kind != ARCH_T_BIAS) return; // norms: (dim)
    const arch_module *m = arch_module_by_role(f, t->role);
    if (!m) return;
    *d0 = arch_dim_of(m->d_out, c);
    if (t->kind == ARCH_T_WEIGHT) {
        *ndim = 2;
        *d1 = arch_dim_of(m->d_in, c);
    }
}

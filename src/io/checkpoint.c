#include "io/checkpoint.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "io/gguf.h"
#include "io/gguf_model.h"
#include "io/safetensors.h"

const char *ckpt_family_name(ls_family f) { return arch_family_name(f); }

// ----------------------------------------------------------------------------
// the expected tensors of a config, under canonical names

typedef struct {
    int n, cap;
    ls_tensor *t;
} tensor_list;

static ls_tensor *add_tensor(tensor_list *l, const char *name, int ndim, int64_t d0, int64_t d1) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        ls_tensor *grown = realloc(l->t, (size_t)l->cap * sizeof *grown);
        ls_assert(grown != NULL);
        l->t = grown;
    }
    ls_tensor *t = &l->t[l->n++];
    memset(t, 0, sizeof *t);
    t->name = ls_strdup(name);
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = ndim > 1 ? d1 : 1;
    t->numel = d0 * (ndim > 1 ? d1 : 1);
    return t;
}

// The canonical tensors of a config in the registry's order (arch/arch.h):
// embeddings, then every layer's tensors, then the final norm and the head.
static void expected_tensors(const ls_model_config *c, tensor_list *l) {
    const arch_family *a = arch_family_of(c->family);
    char name[256];
    int64_t d = c->dim, v = c->vocab_size;
    add_tensor(l, a->tok_embedding, 2, v, d);
    if (a->pos_embedding) add_tensor(l, a->pos_embedding, 2, c->max_seq_len, d);
    for (int i = 0; i < c->n_layers; i++)
        for (int k = 0; k < a->n_layer_tensors; k++) {
            int ndim;
            int64_t d0, d1;
            arch_tensor_shape(c->family, &a->layer_tensors[k], c, &ndim, &d0, &d1);
            snprintf(name, sizeof name, "%s.%d.%s", a->layer_prefix, i, a->layer_tensors[k].suffix);
            add_tensor(l, name, ndim, d0, d1);
        }
    if (a->final_norm_w) add_tensor(l, a->final_norm_w, 1, d, 0);
    if (a->final_norm_b) add_tensor(l, a->final_norm_b, 1, d, 0);
    if (a->lm_head && !c->tied_embeddings) add_tensor(l, a->lm_head, 2, v, d);
    if (!a->encoder) return;
    add_tensor(l, a->type_embedding, 2, c->type_vocab_size, d);
    add_tensor(l, a->emb_norm_w, 1, d, 0);
    add_tensor(l, a->emb_norm_b, 1, d, 0);
    add_tensor(l, a->head_dense_w, 2, d, d);
    add_tensor(l, a->head_dense_b, 1, d, 0);
    add_tensor(l, a->head_out_w, 2, c->num_labels, d);
    add_tensor(l, a->head_out_b, 1, c->num_labels, 0);
}

// The classification head's tensors: a checkpoint may lack them (a base model).
static int is_head_tensor(const arch_family *a, const char *name) {
    return a->encoder && (!strcmp(name, a->head_dense_w) || !strcmp(name, a->head_dense_b) ||
                          !strcmp(name, a->head_out_w) || !strcmp(name, a->head_out_b));
}

int ckpt_validate_config(const ls_model_config *c, const char *path) {
#define NEED(cond, field, what, val) \
    if (!(cond)) return ls_fail("%s: config field '%s': expected %s, found %lld", path, field, what, (long long)(val))
    // Limits: checkpoint.h (CKPT_MAX_*).
    NEED(c->dim > 0 && c->dim <= CKPT_MAX_DIM, "dim", "1..65536", c->dim);
    NEED(c->hidden_dim > 0 && c->hidden_dim <= CKPT_MAX_HIDDEN, "hidden_dim", "1..1048576", c->hidden_dim);
    NEED(c->n_layers > 0 && c->n_layers <= CKPT_MAX_LAYERS, "n_layers", "1..1024", c->n_layers);
    NEED(c->n_heads > 0 && c->dim % c->n_heads == 0, "n_heads", "a positive divisor of dim", c->n_heads);
    NEED(c->n_heads <= CKPT_MAX_HEADS, "n_heads", "at most 4096", c->n_heads);
    NEED(c->n_kv_heads > 0 && c->n_heads % c->n_kv_heads == 0, "n_kv_heads", "a positive divisor of n_heads",
         c->n_kv_heads);
    NEED(c->vocab_size > 0 && c->vocab_size <= CKPT_MAX_VOCAB, "vocab_size", "1..1048576", c->vocab_size);
    NEED(c->max_seq_len > 0 && c->max_seq_len <= CKPT_MAX_POSITIONS, "max_seq_len", "1..1048576", c->max_seq_len);
    NEED(c->family != LS_FAMILY_LLAMA || (c->dim / c->n_heads) % 2 == 0, "head_size", "an even number (RoPE)",
         c->dim / c->n_heads);
#undef NEED
    if (!(c->norm_eps > 0 && c->norm_eps < 1))
        return ls_fail("%s: config field 'norm_eps': expected a value in (0, 1), found %g", path, c->norm_eps);
    if (c->family == LS_FAMILY_LLAMA && !(c->rope_theta > 0 && isfinite(c->rope_theta)))
        return ls_fail("%s: config field 'rope_theta': expected a finite number > 0, found %g", path,
                       c->rope_theta);
    return 0;
}

int ckpt_check_finite(const char *file, const char *tensor, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return ls_fail("%s: tensor '%s': element %lld is %s (expected finite weights)", file, tensor,
                           (long long)i, isnan(x[i]) ? "nan" : x[i] > 0 ? "inf" : "-inf");
    return 0;
}

static void free_list(tensor_list *l) {
    for (int i = 0; i < l->n; i++) {
        free(l->t[i].name);
        free(l->t[i].data);
    }
    free(l->t);
}

// ----------------------------------------------------------------------------
// llama2.c .bin ("version 0" export of karpathy/llama2.c)
//
// Header: seven int32 — dim, hidden_dim, n_layers, n_heads, n_kv_heads,
// vocab_size, seq_len. A negative vocab_size means the classifier is NOT
// shared with the token embedding and is stored at the end. Then fp32:
//   token_embedding (vocab, dim); rms_att (L, dim); wq (L, dim, dim);
//   wk (L, kv_dim, dim); wv (L, kv_dim, dim); wo (L, dim, dim);
//   rms_ffn (L, dim); w1 (L, hidden, dim); w2 (L, dim, hidden);
//   w3 (L, hidden, dim); rms_final (dim); freq_cis_real, freq_cis_imag
//   (seq_len * head_size / 2 each, unused); [wcls (vocab, dim) if unshared].
// w1/w3/w2 are SwiGLU's gate/up/down; RoPE rotates consecutive pairs.

static int load_llama2c(ls_checkpoint *ck, const char *path) {
    size_t size;
    char *buf = ls_read_file(path, &size);
    if (!buf) return -1;
    if (size < 7 * sizeof(int32_t)) {
        free(buf);
        return ls_fail("%s: llama2.c header: expected 28 bytes (seven int32), file has %zu", path, size);
    }
    int32_t h[7];
    memcpy(h, buf, sizeof h);
    ls_model_config *c = &ck->config;
    memset(c, 0, sizeof *c);
    c->family = LS_FAMILY_LLAMA;
    c->dim = h[0];
    c->hidden_dim = h[1];
    c->n_layers = h[2];
    c->n_heads = h[3];
    c->n_kv_heads = h[4];
    c->tied_embeddings = h[5] > 0;
    int64_t vocab = h[5] > 0 ? (int64_t)h[5] : -(int64_t)h[5];
    c->vocab_size = vocab > INT_MAX ? -1 : (int)vocab; // -1: rejected by validate_config
    c->max_seq_len = h[6];
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    c->rope_interleaved = 1;
    if (ckpt_validate_config(c, path)) {
        free(buf);
        return ls_fail_prefix("llama2.c header");
    }

    int64_t d = c->dim, hd = c->hidden_dim, L = c->n_layers, v = c->vocab_size;
    int64_t kv = d / c->n_heads * c->n_kv_heads, head = d / c->n_heads;
    int64_t floats = v * d + L * (d + d * d + 2 * kv * d + d * d + d + 3 * hd * d) + d +
                     (int64_t)c->max_seq_len * head + (c->tied_embeddings ? 0 : v * d);
    size_t want = 28 + (size_t)floats * 4;
    if (size != want) {
        free(buf);
        return ls_fail("%s: llama2.c body: header (dim %d, hidden %d, layers %d, heads %d/%d, vocab %d, seq %d) "
                       "implies %zu bytes, file has %zu", path, c->dim, c->hidden_dim, c->n_layers, c->n_heads,
                       c->n_kv_heads, c->vocab_size, c->max_seq_len, want, size);
    }

    tensor_list l = {0};
    expected_tensors(c, &l);
    const float *p = (const float *)(buf + 28);
    // Copy one stacked (L, rows, cols) block into the per-layer tensors named by `suffix`.
    char name[256];
    const float *cursor = p;
#define TAKE(tname) do { ls_tensor *t_ = NULL; \
        for (int k_ = 0; k_ < l.n; k_++) if (!strcmp(l.t[k_].name, tname)) t_ = &l.t[k_]; \
        ls_assert(t_ != NULL); t_->data = ls_malloc((size_t)t_->numel * 4); \
        memcpy(t_->data, cursor, (size_t)t_->numel * 4); cursor += t_->numel; } while (0)
#define TAKE_LAYERS(suffix) for (int i = 0; i < c->n_layers; i++) { \
        snprintf(name, sizeof name, "%s.%d." suffix, arch_family_of(c->family)->layer_prefix, i); TAKE(name); }
    TAKE(arch_family_of(c->family)->tok_embedding);
    TAKE_LAYERS("input_layernorm.weight");
    TAKE_LAYERS("self_attn.q_proj.weight");
    TAKE_LAYERS("self_attn.k_proj.weight");
    TAKE_LAYERS("self_attn.v_proj.weight");
    TAKE_LAYERS("self_attn.o_proj.weight");
    TAKE_LAYERS("post_attention_layernorm.weight");
    TAKE_LAYERS("mlp.gate_proj.weight");
    TAKE_LAYERS("mlp.down_proj.weight");
    TAKE_LAYERS("mlp.up_proj.weight");
    TAKE(arch_family_of(c->family)->final_norm_w);
    cursor += (int64_t)c->max_seq_len * head; // freq_cis_real + freq_cis_imag (recomputed, unused)
    if (!c->tied_embeddings) TAKE(arch_family_of(c->family)->lm_head);
#undef TAKE_LAYERS
#undef TAKE
    free(buf);
    for (int i = 0; i < l.n; i++)
        if (ckpt_check_finite(path, l.t[i].name, l.t[i].data, l.t[i].numel)) {
            free_list(&l);
            return -1;
        }
    int kept = 0; // drop the absent head tensors (data NULL)
    for (int i = 0; i < l.n; i++) {
        if (l.t[i].data) l.t[kept++] = l.t[i];
        else free(l.t[i].name);
    }
    ck->n_tensors = kept;
    ck->tensors = l.t;
    return 0;
}

// ----------------------------------------------------------------------------
// Hugging Face: config.json + model.safetensors

// An integer field in [lo, hi]; the double is range-checked before the cast.
static int json_int(const cJSON *root, const char *key, int *out, int fallback, int required, int lo, int hi,
                    const char *path) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) {
        if (required) return ls_fail("%s: missing field '%s' (expected an integer in [%d, %d])", path, key, lo, hi);
        *out = fallback;
        return 0;
    }
    if (!cJSON_IsNumber(v)) return ls_fail("%s: field '%s': expected an integer in [%d, %d]", path, key, lo, hi);
    double x = v->valuedouble;
    if (!isfinite(x) || x < lo || x > hi || x != floor(x))
        return ls_fail("%s: field '%s': expected an integer in [%d, %d], found %g", path, key, lo, hi, x);
    *out = (int)x;
    return 0;
}

// A number field that fits a float (finite; the range check comes from the caller's validation).
static int json_float(const cJSON *root, const char *key, float *out, float fallback, const char *path) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) {
        *out = fallback;
        return 0;
    }
    if (!cJSON_IsNumber(v)) return ls_fail("%s: field '%s': expected a number", path, key);
    if (!isfinite(v->valuedouble) || fabs(v->valuedouble) > FLT_MAX)
        return ls_fail("%s: field '%s': expected a finite number within float range (|x| <= %g), found %g", path,
                       key, (double)FLT_MAX, v->valuedouble);
    *out = (float)v->valuedouble;
    return 0;
}

// A string field that, when present, must equal `want` (what this engine computes).
static int json_string_is(const cJSON *root, const char *key, const char *want, const char *path) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v)) return ls_fail("%s: field '%s': expected \"%s\" (a string)", path, key, want);
    if (strcmp(v->valuestring, want))
        return ls_fail("%s: field '%s': expected \"%s\", found \"%s\"", path, key, want, v->valuestring);
    return 0;
}

// A boolean field that, when present, must be false.
static int json_false(const cJSON *root, const char *key, const char *path) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v)) return 0;
    return ls_fail("%s: field '%s': expected false (an encoder without cross-attention)", path, key);
}

// BertConfig / RobertaConfig: sizes, exact GELU, absolute positions, labels.
static int parse_encoder_config(const cJSON *root, ls_model_config *c, const char *path) {
    int rc = json_int(root, "hidden_size", &c->dim, 0, 1, 1, CKPT_MAX_DIM, path) ||
             json_int(root, "intermediate_size", &c->hidden_dim, 0, 1, 1, CKPT_MAX_HIDDEN, path) ||
             json_int(root, "num_hidden_layers", &c->n_layers, 0, 1, 1, CKPT_MAX_LAYERS, path) ||
             json_int(root, "num_attention_heads", &c->n_heads, 0, 1, 1, CKPT_MAX_HEADS, path) ||
             json_int(root, "vocab_size", &c->vocab_size, 0, 1, 1, CKPT_MAX_VOCAB, path) ||
             json_int(root, "max_position_embeddings", &c->max_seq_len, 512, 0, 1, CKPT_MAX_POSITIONS, path) ||
             json_int(root, "type_vocab_size", &c->type_vocab_size, 2, 0, 1, CKPT_MAX_TYPES, path) ||
             json_float(root, "layer_norm_eps", &c->norm_eps, 1e-12f, path) ||
             json_float(root, "initializer_range", &c->init_range, 0.02f, path) ||
             json_string_is(root, "hidden_act", "gelu", path) ||
             json_string_is(root, "position_embedding_type", "absolute", path) ||
             json_false(root, "is_decoder", path) || json_false(root, "add_cross_attention", path);
    if (rc) return -1;
    // num_labels as HF derives it: from id2label when present, else num_labels, else 2
    const cJSON *id2label = cJSON_GetObjectItemCaseSensitive(root, "id2label");
    if (id2label && !cJSON_IsNull(id2label)) {
        int n = cJSON_IsObject(id2label) ? cJSON_GetArraySize(id2label) : -1;
        if (n < 1 || n > CKPT_MAX_LABELS)
            return ls_fail("%s: field 'id2label': expected an object of 1..%d labels", path, CKPT_MAX_LABELS);
        c->num_labels = n;
    } else if (json_int(root, "num_labels", &c->num_labels, 2, 0, 1, CKPT_MAX_LABELS, path)) {
        return -1;
    }
    // the checks validate_config makes, worded with BertConfig's keys
    if (c->dim % c->n_heads)
        return ls_fail("%s: field 'num_attention_heads': expected a divisor of hidden_size %d, found %d", path, c->dim,
                       c->n_heads);
    if (!(c->norm_eps > 0 && c->norm_eps < 1))
        return ls_fail("%s: field 'layer_norm_eps': expected a value in (0, 1), found %g", path, c->norm_eps);
    if (!(c->init_range >= 0.0f && c->init_range <= 1.0f))
        return ls_fail("%s: field 'initializer_range': expected a value in [0, 1], found %g", path, c->init_range);
    c->n_kv_heads = c->n_heads;
    c->tied_embeddings = 1; // no LM head
    c->pooling = LS_POOL_CLS;
    if (c->family == LS_FAMILY_ROBERTA) {
        // RoBERTa numbers positions from padding_idx + 1 (create_position_ids_from_input_ids)
        int pad;
        if (json_int(root, "pad_token_id", &pad, 1, 0, 0, CKPT_MAX_POSITIONS - 2, path)) return -1;
        c->position_offset = pad + 1;
        if (c->max_seq_len <= c->position_offset)
            return ls_fail("%s: field 'max_position_embeddings': expected more than pad_token_id + 1 = %d, found %d",
                           path, c->position_offset, c->max_seq_len);
    }
    return 0;
}

static int parse_hf_config(ls_model_config *c, const char *path) {
    char *text = ls_read_file(path, NULL);
    if (!text) return -1;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ls_fail("%s: invalid JSON (expected an object)", path);
    }
    memset(c, 0, sizeof *c);
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    int rc = 0;
    if (!cJSON_IsString(mt)) {
        rc = ls_fail("%s: missing field 'model_type' (expected \"gpt2\", \"llama\", \"bert\" or \"roberta\")", path);
    } else if (!strcmp(mt->valuestring, "gpt2")) {
        c->family = LS_FAMILY_GPT2;
        rc = json_int(root, "n_embd", &c->dim, 0, 1, 1, CKPT_MAX_DIM, path) ||
             json_int(root, "n_layer", &c->n_layers, 0, 1, 1, CKPT_MAX_LAYERS, path) ||
             json_int(root, "n_head", &c->n_heads, 0, 1, 1, CKPT_MAX_HEADS, path) ||
             json_int(root, "vocab_size", &c->vocab_size, 0, 1, 1, CKPT_MAX_VOCAB, path) ||
             json_int(root, "n_positions", &c->max_seq_len, 1024, 0, 1, CKPT_MAX_POSITIONS, path) ||
             json_int(root, "n_inner", &c->hidden_dim, 4 * c->dim, 0, 1, CKPT_MAX_HIDDEN, path) ||
             json_float(root, "layer_norm_epsilon", &c->norm_eps, 1e-5f, path);
        c->n_kv_heads = c->n_heads;
        c->tied_embeddings = 1;
    } else if (!strcmp(mt->valuestring, "llama") || !strcmp(mt->valuestring, "mistral")) {
        c->family = LS_FAMILY_LLAMA;
        rc = json_int(root, "hidden_size", &c->dim, 0, 1, 1, CKPT_MAX_DIM, path) ||
             json_int(root, "intermediate_size", &c->hidden_dim, 0, 1, 1, CKPT_MAX_HIDDEN, path) ||
             json_int(root, "num_hidden_layers", &c->n_layers, 0, 1, 1, CKPT_MAX_LAYERS, path) ||
             json_int(root, "num_attention_heads", &c->n_heads, 0, 1, 1, CKPT_MAX_HEADS, path) ||
             json_int(root, "vocab_size", &c->vocab_size, 0, 1, 1, CKPT_MAX_VOCAB, path) ||
             json_int(root, "max_position_embeddings", &c->max_seq_len, 2048, 0, 1, CKPT_MAX_POSITIONS, path) ||
             json_float(root, "rms_norm_eps", &c->norm_eps, 1e-6f, path) ||
             json_float(root, "rope_theta", &c->rope_theta, 10000.0f, path);
        if (!rc) rc = json_int(root, "num_key_value_heads", &c->n_kv_heads, c->n_heads, 0, 1, CKPT_MAX_HEADS, path);
        const cJSON *tie = cJSON_GetObjectItemCaseSensitive(root, "tie_word_embeddings");
        if (!rc && tie && !cJSON_IsBool(tie) && !cJSON_IsNull(tie))
            rc = ls_fail("%s: field 'tie_word_embeddings': expected true or false", path);
        c->tied_embeddings = cJSON_IsTrue(tie);
        c->rope_interleaved = 0;
        const cJSON *scaling = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
        if (!rc && scaling && !cJSON_IsNull(scaling))
            rc = ls_fail("%s: field 'rope_scaling': expected null (RoPE scaling is not supported)", path);
    } else if (!strcmp(mt->valuestring, "bert") || !strcmp(mt->valuestring, "roberta")) {
        c->family = !strcmp(mt->valuestring, "bert") ? LS_FAMILY_BERT : LS_FAMILY_ROBERTA;
        rc = parse_encoder_config(root, c, path);
    } else {
        rc = ls_fail("%s: field 'model_type': expected \"gpt2\", \"llama\", \"bert\" or \"roberta\", found \"%s\"",
                     path, mt->valuestring);
    }
    cJSON_Delete(root);
    if (rc) return -1;
    const char *eps_key = c->family == LS_FAMILY_GPT2 ? "layer_norm_epsilon" : "rms_norm_eps";
    if (!(c->norm_eps > 0 && c->norm_eps < 1))
        return ls_fail("%s: field '%s': expected a value in (0, 1), found %g", path, eps_key, c->norm_eps);
    return ckpt_validate_config(c, path);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

// File names of a canonical tensor: llama files use the canonical name; GPT-2
// files drop or keep the "transformer." prefix.
static const st_tensor *find_in_file(const st_file *f, const ls_model_config *c, const char *name) {
    const st_tensor *t = st_find(f, name);
    if (!t && c->family == LS_FAMILY_GPT2 && !strncmp(name, "transformer.", 12)) t = st_find(f, name + 12);
    const char *prefix = arch_family_of(c->family)->model_prefix; // "bert.": BertModel files drop it
    if (!t && prefix && !strncmp(name, prefix, strlen(prefix))) t = st_find(f, name + strlen(prefix));
    return t;
}

static int is_conv1d(const char *name) {
    return strstr(name, "c_attn.weight") || strstr(name, "c_proj.weight") || strstr(name, "c_fc.weight");
}

// Keys a file may hold beyond the parameters: buffers some exporters keep
// (GPT-2's causal-mask buffers, Llama's RoPE inverse frequencies).
// Encoders: the position-id buffer (I64), pre-training heads (BertForMaskedLM's
// cls.*, RobertaForMaskedLM's lm_head.*) and RoBERTa's unused pooler.
static int is_ignorable(const ls_model_config *c, const char *name) {
    if (arch_is_encoder(c->family))
        return ends_with(name, "embeddings.position_ids") || !strncmp(name, "cls.", 4) ||
               !strncmp(name, "lm_head.", 8) ||
               (c->family == LS_FAMILY_ROBERTA && strstr(name, "pooler.dense."));
    return ends_with(name, ".attn.bias") || ends_with(name, ".attn.masked_bias") ||
           ends_with(name, "rotary_emb.inv_freq");
}

static int load_hf(ls_checkpoint *ck, const char *config_path, const char *st_path) {
    ls_model_config *c = &ck->config;
    if (parse_hf_config(c, config_path)) return -1;
    st_file f;
    if (st_open(&f, st_path)) return -1;
    tensor_list l = {0};
    expected_tensors(c, &l);
    char *used = ls_calloc((size_t)f.n_tensors + 1, 1);
    int rc = 0;
    for (int i = 0; i < l.n && !rc; i++) {
        ls_tensor *t = &l.t[i];
        const st_tensor *s = find_in_file(&f, c, t->name);
        if (!s && is_head_tensor(arch_family_of(c->family), t->name)) continue; // initialised by the model
        if (!s) {
            rc = ls_fail("%s: missing tensor '%s' (expected by %s config with %d layers)", st_path, t->name,
                         ckpt_family_name(c->family), c->n_layers);
            break;
        }
        used[s - f.tensors] = 1;
        if (!st_dtype_is_float(s->dtype)) {
            rc = ls_fail("%s: tensor '%s': expected a weight of dtype F32, F16 or BF16, found %s", st_path, s->name,
                         st_dtype_name(s->dtype));
            break;
        }
        int transpose = arch_family_of(c->family)->conv1d && is_conv1d(t->name);
        int64_t want0 = transpose ? t->shape[1] : t->shape[0], want1 = transpose ? t->shape[0] : t->shape[1];
        int shape_ok = s->ndim == t->ndim && s->shape[0] == want0 && (t->ndim == 1 || s->shape[1] == want1);
        if (!shape_ok) {
            char found[96] = "";
            for (int d = 0; d < s->ndim && d < 4; d++) {
                size_t k = strlen(found);
                snprintf(found + k, sizeof found - k, "%s%lld", d ? ", " : "", (long long)s->shape[d]);
            }
            if (t->ndim == 1)
                rc = ls_fail("%s: tensor '%s': expected shape (%lld), found (%s)", st_path, s->name,
                             (long long)want0, found);
            else
                rc = ls_fail("%s: tensor '%s': expected shape (%lld, %lld), found (%s)", st_path, s->name,
                             (long long)want0, (long long)want1, found);
            break;
        }
        float *raw = st_load_float(&f, s);
        if (ckpt_check_finite(st_path, s->name, raw, s->numel)) { // index as stored in the file
            free(raw);
            rc = -1;
            break;
        }
        if (transpose) {
            // Conv1D (in, out) -> (out, in)
            t->data = ls_malloc((size_t)t->numel * 4);
            for (int64_t r = 0; r < want0; r++)
                for (int64_t q = 0; q < want1; q++) t->data[q * want0 + r] = raw[r * want1 + q];
            free(raw);
        } else {
            t->data = raw;
        }
    }
    for (int i = 0; i < f.n_tensors && !rc; i++) {
        if (used[i] || is_ignorable(c, f.tensors[i].name)) continue;
        // A tied head stored explicitly is accepted only if it equals the embedding.
        if (!strcmp(f.tensors[i].name, "lm_head.weight") && c->tied_embeddings) {
            const ls_tensor *emb = &l.t[0];
            const st_tensor *s = &f.tensors[i];
            if (s->numel == emb->numel) {
                float *head = st_load_float(&f, s);
                int same = memcmp(head, emb->data, (size_t)emb->numel * 4) == 0;
                free(head);
                if (same) continue;
            }
            rc = ls_fail("%s: tensor 'lm_head.weight' differs from the token embedding but the config ties them",
                         st_path);
            break;
        }
        rc = ls_fail("%s: unknown tensor '%s' (not part of a %s model with this config)", st_path,
                     f.tensors[i].name, ckpt_family_name(c->family));
    }
    free(used);
    st_close(&f);
    if (rc) {
        free_list(&l);
        return -1;
    }
    int kept = 0; // drop the absent head tensors (data NULL)
    for (int i = 0; i < l.n; i++) {
        if (l.t[i].data) l.t[kept++] = l.t[i];
        else free(l.t[i].name);
    }
    ck->n_tensors = kept;
    ck->tensors = l.t;
    return 0;
}

// ----------------------------------------------------------------------------

int ckpt_load(ls_checkpoint *ck, const char *path) {
    memset(ck, 0, sizeof *ck);
    int rc;
    if (ls_is_dir(path)) {
        char *cfg = ls_path_join(path, "config.json");
        char *st = ls_path_join(path, "model.safetensors");
        if (!ls_exists(cfg)) rc = ls_fail("%s: not a checkpoint directory: config.json is missing", path);
        else if (!ls_exists(st)) {
            char *index = ls_path_join(path, "model.safetensors.index.json");
            rc = ls_exists(index)
                     ? ls_fail("%s: sharded checkpoints (model.safetensors.index.json) are not supported; "
                               "merge the shards into model.safetensors", path)
                     : ls_fail("%s: not a checkpoint directory: model.safetensors is missing", path);
            free(index);
        } else rc = load_hf(ck, cfg, st);
        free(cfg);
        free(st);
    } else if (ends_with(path, ".safetensors")) {
        char *dir = ls_strdup(path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        char *cfg = ls_path_join(slash ? dir : ".", "config.json");
        rc = ls_exists(cfg) ? load_hf(ck, cfg, path)
                            : ls_fail("%s: expected config.json beside the safetensors file", path);
        free(cfg);
        free(dir);
    } else if (!ls_exists(path)) {
        rc = ls_fail("%s: no such file or directory", path);
    } else if (ends_with(path, ".gguf") || gguf_is_gguf(path)) {
        return gguf_load_checkpoint(ck, path);
    } else {
        rc = load_llama2c(ck, path);
    }
    if (rc) return -1;
    ck->path = ls_strdup(path);
    return 0;
}

int ckpt_load_like(ls_checkpoint *ck, const char *path, const ls_checkpoint *base) {
    const ls_model_config *b = &base->config;
    memset(ck, 0, sizeof *ck);
    char *cfg = NULL;
    if (ends_with(path, ".safetensors")) {
        char *dir = ls_strdup(path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        cfg = ls_path_join(slash ? dir : ".", "config.json");
        free(dir);
    }
    int plain_file = cfg && !ls_exists(cfg);
    free(cfg);
    if (!plain_file) {
        if (ckpt_load(ck, path)) return -1;
        const ls_model_config *c = &ck->config;
        if (c->family != b->family || c->dim != b->dim || c->hidden_dim != b->hidden_dim ||
            c->n_layers != b->n_layers || c->n_heads != b->n_heads || c->n_kv_heads != b->n_kv_heads ||
            c->vocab_size != b->vocab_size || c->rope_interleaved != b->rope_interleaved) {
            ckpt_free(ck);
            return ls_fail("%s: not a fine-tuned copy of %s (family, shapes or RoPE layout differ)", path,
                           base->path);
        }
        return 0;
    }
    st_file f;
    if (st_open(&f, path)) return -1;
    int rc = 0;
    const char *ri = st_metadata(&f, "rope_interleaved");
    if (ri && b->family == LS_FAMILY_LLAMA && atoi(ri) != b->rope_interleaved)
        rc = ls_fail("%s: metadata rope_interleaved = %s but the base %s has %d", path, ri, base->path,
                     b->rope_interleaved);
    ck->config = *b;
    ck->tensors = ls_calloc((size_t)base->n_tensors, sizeof *ck->tensors);
    for (int i = 0; i < base->n_tensors && !rc; i++) {
        const ls_tensor *bt = &base->tensors[i];
        const st_tensor *t = st_find(&f, bt->name);
        if (!t) {
            rc = ls_fail("%s: missing tensor '%s' (expected every tensor of the base %s)", path, bt->name,
                         base->path);
            break;
        }
        if (t->numel != bt->numel || t->ndim != bt->ndim || t->shape[0] != bt->shape[0] ||
            !st_dtype_is_float(t->dtype)) {
            rc = ls_fail("%s: tensor '%s': shape differs from the base's (%lld x %lld)", path, bt->name,
                         (long long)bt->shape[0], (long long)bt->shape[1]);
            break;
        }
        ls_tensor *x = &ck->tensors[ck->n_tensors++];
        *x = *bt;
        x->name = ls_strdup(bt->name);
        x->data = st_load_float(&f, t);
        if (ckpt_check_finite(path, t->name, x->data, x->numel)) {
            rc = -1;
            break;
        }
    }
    if (!rc && f.n_tensors != base->n_tensors) {
        for (int i = 0; i < f.n_tensors && !rc; i++)
            if (!ckpt_find(base, f.tensors[i].name))
                rc = ls_fail("%s: unknown tensor '%s' (not in the base %s)", path, f.tensors[i].name, base->path);
    }
    st_close(&f);
    if (rc) {
        ckpt_free(ck);
        return -1;
    }
    ck->path = ls_strdup(path);
    return 0;
}

void ckpt_free(ls_checkpoint *ck) {
    for (int i = 0; i < ck->n_tensors; i++) {
        free(ck->tensors[i].name);
        free(ck->tensors[i].data);
    }
    free(ck->tensors);
    free(ck->path);
    memset(ck, 0, sizeof *ck);
}

const ls_tensor *ckpt_find(const ls_checkpoint *ck, const char *name) {
    for (int i = 0; i < ck->n_tensors; i++)
        if (!strcmp(ck->tensors[i].name, name)) return &ck->tensors[i];
    return NULL;
}

// ----------------------------------------------------------------------------
// module weights for the analyses

float *ckpt_module_weight(const ls_checkpoint *ck, int layer, const char *module, int *d_out, int *d_in) {
    const ls_model_config *c = &ck->config;
    if (layer < 0 || layer >= c->n_layers) {
        ls_fail("%s: layer %d out of range (model has %d layers: 0..%d)", ck->path, layer, c->n_layers,
                c->n_layers - 1);
        return NULL;
    }
    const arch_module *md = arch_module_by_name(c->family, module);
    if (!md) {
        char names[160];
        ls_fail("%s: unknown module '%s' for a %s model (expected %s)", ck->path, module,
                arch_family_name(c->family), arch_module_names(c->family, ", ", " or ", names, sizeof names));
        return NULL;
    }
    char name[256];
    snprintf(name, sizeof name, "%s.%d.%s.weight", arch_family_of(c->family)->layer_prefix, layer, md->path);
    const ls_tensor *t = ckpt_find(ck, name);
    ls_assert(t != NULL && t->ndim == 2);
    int rows = (int)t->shape[0], row0 = 0;
    if (md->block >= 0) { // a row block of a fused tensor (GPT-2's q, k, v of c_attn)
        int cols;
        arch_module_shape(md, c, &rows, &cols);
        row0 = md->block * rows;
    }
    int cols = (int)t->shape[1];
    float *w = ls_malloc((size_t)rows * cols * sizeof(float));
    memcpy(w, t->data + (size_t)row0 * cols, (size_t)rows * cols * sizeof(float));
    *d_out = rows;
    *d_in = cols;
    return w;
}

// model: the decoder transformer (llama and gpt2 families) on an ls_backend.
#include "engine/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "engine/adapters.h"
#include "engine/prefix.h"
#include "engine/prompt.h"
#include "engine/lora.h"
#include "engine/model_internal.h"
#include "engine/rng.h"
#include "engine/sampler.h"

#define IS_GPT2(m) ((m)->cfg.family == LS_FAMILY_GPT2)
#define IS_ENC(m) arch_is_encoder((m)->cfg.family)
#define HAS_LN(m) ((m)->cfg.family != LS_FAMILY_LLAMA) // LayerNorm and biases: gpt2, encoders

// ----------------------------------------------------------------------------
// configuration

int model_config_check(const ls_model_config *c) {
    if (!arch_family_of(c->family))
        return ls_fail("model config: family: expected llama, gpt2, bert or roberta, found %d", (int)c->family);
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 ||
        c->n_kv_heads <= 0 || c->vocab_size <= 0 || c->max_seq_len <= 0)
        return ls_fail("model config: expected positive sizes, found dim %d hidden_dim %d "
                       "n_layers %d n_heads %d n_kv_heads %d vocab_size %d max_seq_len %d",
                       c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads,
                       c->vocab_size, c->max_seq_len);
    if (c->dim % c->n_heads != 0)
        return ls_fail("model config: dim: expected a multiple of n_heads %d, found %d",
                       c->n_heads, c->dim);
    if (c->n_heads % c->n_kv_heads != 0)
        return ls_fail("model config: n_kv_heads: expected a divisor of n_heads %d, found %d",
                       c->n_heads, c->n_kv_heads);
    if (c->family == LS_FAMILY_GPT2 && c->n_kv_heads != c->n_heads)
        return ls_fail("model config: gpt2: n_kv_heads: expected %d (= n_heads), found %d",
                       c->n_heads, c->n_kv_heads);
    if (arch_is_encoder(c->family) && c->n_kv_heads != c->n_heads)
        return ls_fail("model config: %s: n_kv_heads: expected %d (= n_heads), found %d",
                       arch_family_name(c->family), c->n_heads, c->n_kv_heads);
    if (arch_is_encoder(c->family) && (c->type_vocab_size <= 0 || c->num_labels <= 0 ||
                                       c->position_offset < 0 || c->position_offset >= c->max_seq_len))
        return ls_fail("model config: %s: expected type_vocab_size >= 1, num_labels >= 1 and "
                       "0 <= position_offset < max_seq_len %d, found %d, %d, %d",
                       arch_family_name(c->family), c->max_seq_len, c->type_vocab_size,
                       c->num_labels, c->position_offset);
    if (c->family == LS_FAMILY_LLAMA && (c->dim / c->n_heads) % 2 != 0)
        return ls_fail("model config: llama: head size: expected even (RoPE pairs), found %d",
                       c->dim / c->n_heads);
    if (!(c->norm_eps >= 0.0f))
        return ls_fail("model config: norm_eps: expected >= 0, found %g", c->norm_eps);
    return 0;
}

// ----------------------------------------------------------------------------
// parameters: size table, pointer assignment, named views

static float **param_ptrs(ls_params *p) {
    // ls_params is LS_N_PARAM_TENSORS float pointers in order
    return (float **)p;
}

static void param_sizes(ls_model *m) {
    size_t C = m->C, L = m->L, V = m->V, P = m->P, QKV = m->QKV, F = m->F, H = m->H;
    size_t TT = (size_t)m->cfg.type_vocab_size, NL = (size_t)m->cfg.num_labels;
    int g = HAS_LN(m), e = IS_ENC(m);
    size_t s[LS_N_PARAM_TENSORS] = {
        V * C,                       // wte
        g ? P * C : 0,               // wpe
        L * C, g ? L * C : 0,        // ln1w, ln1b
        L * QKV * C, g ? L * QKV : 0, // qkvw, qkvb
        L * C * C, g ? L * C : 0,    // attprojw, attprojb
        L * C, g ? L * C : 0,        // ln2w, ln2b
        L * F * C, g ? L * F : 0,    // fcw, fcb
        L * C * H, g ? L * C : 0,    // fcprojw, fcprojb
        e ? 0 : C, g && !e ? C : 0,  // lnfw, lnfb
        m->cfg.tied_embeddings ? 0 : V * C, // lm_head
        e ? TT * C : 0, e ? C : 0, e ? C : 0, // wtt, embw, embb
        e ? C * C : 0, e ? C : 0,    // headw, headb
        e ? NL * C : 0, e ? NL : 0,  // clsw, clsb
    };
    m->n_params = 0;
    for (int i = 0; i < LS_N_PARAM_TENSORS; i++) {
        m->param_sizes[i] = s[i];
        m->n_params += s[i];
    }
}

static void point_params(ls_model *m, ls_params *p, float *mem) {
    float **ptr = param_ptrs(p);
    for (int i = 0; i < LS_N_PARAM_TENSORS; i++) {
        ptr[i] = m->param_sizes[i] ? mem : NULL;
        mem += m->param_sizes[i];
    }
}

static void add_view(ls_model *m, int *cap, const char *name, int ndim, int64_t d0, int64_t d1,
                     const float *at, int no_decay) {
    if (m->n_views == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        ls_param_view *nv = ls_malloc((size_t)*cap * sizeof(ls_param_view));
        if (m->n_views) memcpy(nv, m->views, (size_t)m->n_views * sizeof(ls_param_view));
        free(m->views);
        m->views = nv;
    }
    ls_param_view *v = &m->views[m->n_views++];
    snprintf(v->name, sizeof v->name, "%s", name);
    v->ndim = ndim;
    v->shape[0] = d0;
    v->shape[1] = ndim == 2 ? d1 : 0;
    v->numel = (size_t)d0 * (ndim == 2 ? (size_t)d1 : 1);
    v->offset = (size_t)(at - m->params_memory);
    v->no_decay = no_decay;
}

// Where the module of `role` sits in layer l's fused maps (QKV: rows q, k, v;
// FC: rows gate, up): its weight rows and its bias entries.
static const float *role_weight(const ls_model *m, int l, arch_role role, const float **bias) {
    const ls_params *p = &m->params;
    size_t C = m->C, QKV = m->QKV, F = m->F, H = m->H, qd = (size_t)m->NH * m->HS,
           kd = (size_t)m->NKV * m->HS;
    const float *qkvb = p->qkvb ? p->qkvb + l * QKV : NULL, *fcb = p->fcb ? p->fcb + l * F : NULL;
    switch (role) {
    case ARCH_Q: case ARCH_QKV: *bias = qkvb; return p->qkvw + l * QKV * C;
    case ARCH_K: *bias = qkvb ? qkvb + qd : NULL; return p->qkvw + l * QKV * C + qd * C;
    case ARCH_V: *bias = qkvb ? qkvb + qd + kd : NULL; return p->qkvw + l * QKV * C + (qd + kd) * C;
    case ARCH_O: *bias = p->attprojb ? p->attprojb + l * C : NULL; return p->attprojw + l * C * C;
    case ARCH_GATE: case ARCH_FC: *bias = fcb; return p->fcw + l * F * C;
    case ARCH_UP: *bias = fcb ? fcb + H : NULL; return p->fcw + l * F * C + H * C;
    default: *bias = p->fcprojb ? p->fcprojb + l * C : NULL; return p->fcprojw + l * C * H;
    }
}

// The canonical tensors of io/checkpoint.h (names and order from the registry,
// arch/arch.h) as views into the parameter buffer.
static void build_views(ls_model *m) {
    const arch_family *a = arch_family_of(m->cfg.family);
    int cap = 0;
    char nm[80];
    ls_params *p = &m->params;
    size_t C = m->C;
    add_view(m, &cap, a->tok_embedding, 2, m->V, C, p->wte, 0);
    if (a->pos_embedding) add_view(m, &cap, a->pos_embedding, 2, m->P, C, p->wpe, 0);
    for (int l = 0; l < m->L; l++)
        for (int k = 0; k < a->n_layer_tensors; k++) {
            const arch_tensor *t = &a->layer_tensors[k];
            int ndim;
            int64_t d0, d1;
            arch_tensor_shape(m->cfg.family, t, &m->cfg, &ndim, &d0, &d1);
            const float *bias, *at;
            switch (t->kind) {
            case ARCH_T_NORM1_W: at = p->ln1w + l * C; break;
            case ARCH_T_NORM1_B: at = p->ln1b + l * C; break;
            case ARCH_T_NORM2_W: at = p->ln2w + l * C; break;
            case ARCH_T_NORM2_B: at = p->ln2b + l * C; break;
            case ARCH_T_WEIGHT: at = role_weight(m, l, t->role, &bias); break;
            default: role_weight(m, l, t->role, &bias); at = bias; break;
            }
            snprintf(nm, sizeof nm, "%s.%d.%s", a->layer_prefix, l, t->suffix);
            add_view(m, &cap, nm, ndim, d0, d1, at, t->kind != ARCH_T_WEIGHT);
        }
    if (a->final_norm_w) add_view(m, &cap, a->final_norm_w, 1, C, 0, p->lnfw, 1);
    if (a->final_norm_b) add_view(m, &cap, a->final_norm_b, 1, C, 0, p->lnfb, 1);
    if (p->lm_head) add_view(m, &cap, a->lm_head, 2, m->V, C, p->lm_head, 0);
    if (!a->encoder) return;
    int NL = m->cfg.num_labels;
    add_view(m, &cap, a->type_embedding, 2, m->cfg.type_vocab_size, C, p->wtt, 0);
    add_view(m, &cap, a->emb_norm_w, 1, C, 0, p->embw, 1);
    add_view(m, &cap, a->emb_norm_b, 1, C, 0, p->embb, 1);
    add_view(m, &cap, a->head_dense_w, 2, C, C, p->headw, 0);
    add_view(m, &cap, a->head_dense_b, 1, C, 0, p->headb, 1);
    add_view(m, &cap, a->head_out_w, 2, NL, C, p->clsw, 0);
    add_view(m, &cap, a->head_out_b, 1, NL, 0, p->clsb, 1);
}

// RoPE tables computed as llama2.c does (float powf/cosf/sinf), so that greedy
// decoding reproduces run.c: freq_i = theta^(-2i/HS), angle = pos * freq_i.
static void build_rope(ls_model *m) {
    int half = m->HS / 2;
    size_t n = (size_t)m->P * half;
    float *c = ls_malloc(n * sizeof(float)), *s = ls_malloc(n * sizeof(float));
    float theta = m->cfg.rope_theta > 0.0f ? m->cfg.rope_theta : 10000.0f;
    for (int pos = 0; pos < m->P; pos++) {
        for (int i = 0; i < half; i++) {
            float freq = 1.0f / powf(theta, (float)(2 * i) / (float)m->HS);
            float val = (float)pos * freq;
            c[(size_t)pos * half + i] = cosf(val);
            s[(size_t)pos * half + i] = sinf(val);
        }
    }
    m->rope_cos = m->be->alloc(n);
    m->rope_sin = m->be->alloc(n);
    m->be->upload(m->rope_cos, c, n);
    m->be->upload(m->rope_sin, s, n);
    free(c);
    free(s);
}

static int model_alloc(ls_model *m, const ls_model_config *cfg, const ls_backend *be) {
    memset(m, 0, sizeof *m);
    if (model_config_check(cfg) != 0) return -1;
    m->cfg = *cfg;
    if (cfg->family == LS_FAMILY_GPT2) {
        m->cfg.tied_embeddings = 1;
        m->cfg.n_kv_heads = cfg->n_heads;
    }
    m->be = be;
    m->C = cfg->dim;
    m->L = cfg->n_layers;
    m->NH = cfg->n_heads;
    m->NKV = m->cfg.n_kv_heads;
    m->HS = cfg->dim / cfg->n_heads;
    m->H = cfg->hidden_dim;
    m->F = cfg->family == LS_FAMILY_LLAMA ? 2 * m->H : m->H;
    m->QKV = (m->NH + 2 * m->NKV) * m->HS;
    m->V = cfg->vocab_size;
    m->P = cfg->max_seq_len;
    param_sizes(m);
    m->params_memory = be->alloc(m->n_params);
    point_params(m, &m->params, m->params_memory);
    build_views(m);
    if (cfg->family == LS_FAMILY_LLAMA) build_rope(m);
    return 0;
}

int model_build_random(ls_model *m, const ls_model_config *cfg, uint64_t seed,
                       const ls_backend *be) {
    if (model_alloc(m, cfg, be) != 0) return -1;
    float *host = ls_malloc(m->n_params * sizeof(float));
    ls_rng rng;
    ls_rng_seed(&rng, seed);
    float std = 0.02f, proj_std = 0.02f / sqrtf(2.0f * m->L);
    float *at = host;
    float **ptr = param_ptrs(&m->params);
    for (int i = 0; i < LS_N_PARAM_TENSORS; i++) {
        size_t n = m->param_sizes[i];
        float *p = ptr[i];
        const ls_params *q = &m->params;
        int is_norm_w = p && (p == q->ln1w || p == q->ln2w || p == q->lnfw || p == q->embw);
        int is_bias = p && (p == q->ln1b || p == q->ln2b || p == q->lnfb || p == q->qkvb ||
                            p == q->attprojb || p == q->fcb || p == q->fcprojb || p == q->embb ||
                            p == q->headb || p == q->clsb);
        int is_proj = p && (p == m->params.attprojw || p == m->params.fcprojw);
        for (size_t j = 0; j < n; j++) {
            if (is_norm_w) at[j] = 1.0f;
            else if (is_bias) at[j] = 0.0f;
            else at[j] = (float)ls_rng_normal(&rng) * (is_proj ? proj_std : std);
        }
        at += n;
    }
    be->upload(m->params_memory, host, m->n_params);
    free(host);
    return 0;
}

int model_build_from_checkpoint(ls_model *m, const ls_checkpoint *ck, const ls_backend *be) {
    if (model_alloc(m, &ck->config, be) != 0)
        return ls_fail_prefix("%s", ck->path ? ck->path : "checkpoint");
    const arch_family *a = arch_family_of(m->cfg.family);
    if (a->encoder && (!ckpt_find(ck, a->head_out_w) || !ckpt_find(ck, a->head_dense_w))) {
        // a base model: a new head, as HF initialises one (the pooler too if absent)
        model_init_head(m, 0, !ckpt_find(ck, a->head_dense_w));
        m->head_initialised = 1;
    }
    for (int i = 0; i < m->n_views; i++) {
        const ls_param_view *v = &m->views[i];
        const ls_tensor *t = ckpt_find(ck, v->name);
        if (!t && a->encoder && (!strcmp(v->name, a->head_dense_w) || !strcmp(v->name, a->head_dense_b) ||
                                 !strcmp(v->name, a->head_out_w) || !strcmp(v->name, a->head_out_b)))
            continue; // initialised above
        if (!t) {
            ls_fail("%s: %s: expected a tensor of %zu values, found none",
                    ck->path ? ck->path : "checkpoint", v->name, v->numel);
            model_free(m);
            return -1;
        }
        int ok = t->numel == (int64_t)v->numel && t->ndim == v->ndim && t->shape[0] == v->shape[0] &&
                 (v->ndim == 1 || t->shape[1] == v->shape[1]);
        if (!ok) {
            ls_fail("%s: %s: expected shape (%lld, %lld), found %d dims, %lld values",
                    ck->path ? ck->path : "checkpoint", v->name, (long long)v->shape[0],
                    (long long)v->shape[1], t->ndim, (long long)t->numel);
            model_free(m);
            return -1;
        }
        be->upload(m->params_memory + v->offset, t->data, v->numel);
    }
    return 0;
}

void model_free(ls_model *m) {
    const ls_backend *be = m->be;
    if (!be) return;
    if (m->lora) m->lora = NULL;
    if (m->prefix && m->owns_prefix) {
        ls_prefix *pf = m->prefix;
        prefix_free(pf, m);
        free(pf);
    }
    if (m->prompt && m->owns_prompt) {
        ls_prompt *pr = m->prompt;
        prompt_free(pr, m);
        free(pr);
    }
    if (m->adapters && m->owns_adapters) {
        ls_adapters *ad = m->adapters;
        adapters_free(ad, m);
        free(ad);
    }
    be->free(m->params_memory);
    if (m->grads_memory) be->free(m->grads_memory);
    if (m->acts_memory) be->free(m->acts_memory);
    if (m->rope_cos) be->free(m->rope_cos);
    if (m->rope_sin) be->free(m->rope_sin);
    if (m->tokens) be->free_int(m->tokens);
    if (m->targets) be->free_int(m->targets);
    if (m->types) be->free_int(m->types);
    if (m->keymask) be->free_int(m->keymask);
    free(m->host_weights);
    free(m->host_losses);
    free(m->views);
    if (m->dec.memory) be->free(m->dec.memory);
    if (m->dec.token) be->free_int(m->dec.token);
    free(m->dec.host_logits);
    memset(m, 0, sizeof *m);
}

void model_enable_grads(ls_model *m) {
    m->grad_scope = LS_GRADS_ALL;
    m->grad_top = 0;
    if (m->grads_memory) return;
    m->grads_memory = m->be->alloc(m->n_params);
    point_params(m, &m->grads, m->grads_memory);
}

int model_enable_grads_scope(ls_model *m, ls_grad_scope scope, int top_layers) {
    if (scope == LS_GRADS_BIASES && !HAS_LN(m))
        return ls_fail("bitfit: a %s model has no bias terms (expected a family with biases: gpt2, bert or roberta)",
                       arch_family_name(m->cfg.family));
    if (scope == LS_GRADS_TOP && (top_layers < 1 || top_layers > m->L))
        return ls_fail("fttop: layers: expected 1..%d (the model's layers), found %d", m->L, top_layers);
    model_enable_grads(m);
    m->grad_scope = scope;
    m->grad_top = scope == LS_GRADS_TOP ? top_layers : 0;
    return 0;
}

// Which gradients the backward passes compute (model_internal.h); layer -1:
// the tensors outside the layers (embeddings, final norm, untied LM head).
int model_trains_weights(const ls_model *m, int l) {
    if (!m->grads_memory) return 0;
    if (m->grad_scope == LS_GRADS_ALL) return 1;
    return m->grad_scope == LS_GRADS_TOP && l >= m->L - m->grad_top;
}

int model_trains_biases(const ls_model *m, int l) {
    return (m->grads_memory && m->grad_scope == LS_GRADS_BIASES) || model_trains_weights(m, l);
}

int model_backward_floor(const ls_model *m) {
    if (m->lora || !m->grads_memory || m->grad_scope != LS_GRADS_TOP) return 0;
    return m->L - m->grad_top;
}

int model_needs_dx(const ls_model *m, int l) {
    if (l > model_backward_floor(m)) return 1;
    // below layer 0: the embeddings (and an encoder's embedding LayerNorm bias), prompt tuning's virtual tokens
    if (l == 0 && m->prompt) return 1;
    return l == 0 && m->grads_memory &&
           (m->grad_scope == LS_GRADS_ALL || (m->grad_scope == LS_GRADS_BIASES && IS_ENC(m)));
}

void model_zero_grad(ls_model *m) {
    if (!m->grads_memory) return;
    if (m->grad_scope == LS_GRADS_ALL) {
        m->be->zero(m->grads_memory, m->n_params);
        return;
    }
    ls_param_segment segs[LS_N_PARAM_TENSORS]; // only the trained tensors have gradients
    int n = model_trainable_segments(m, segs);
    for (int i = 0; i < n; i++) m->be->zero(m->grads_memory + segs[i].offset, segs[i].n);
}

void model_set_training(ls_model *m, int training) { m->training = training ? 1 : 0; }

size_t model_num_params(const ls_model *m) { return m->n_params; }

static int is_no_decay(const ls_params *p, const float *t) {
    return t == p->ln1w || t == p->ln1b || t == p->ln2w || t == p->ln2b || t == p->lnfw || t == p->lnfb ||
           t == p->qkvb || t == p->attprojb || t == p->fcb || t == p->fcprojb || t == p->embw || t == p->embb ||
           t == p->headb || t == p->clsb;
}

static int is_bias(const ls_params *p, const float *t) {
    return t == p->ln1b || t == p->ln2b || t == p->lnfb || t == p->qkvb || t == p->attprojb || t == p->fcb ||
           t == p->fcprojb || t == p->embb || t == p->headb || t == p->clsb;
}

int model_decay_segments(const ls_model *m, ls_param_segment *segs) {
    const ls_params *p = &m->params;
    float *const *ptr = (float *const *)p;
    int n = 0;
    size_t off = 0;
    for (int i = 0; i < LS_N_PARAM_TENSORS; i++) {
        if (m->param_sizes[i]) segs[n++] = (ls_param_segment){off, m->param_sizes[i], !is_no_decay(p, ptr[i])};
        off += m->param_sizes[i];
    }
    return n;
}

int model_trainable_segments(const ls_model *m, ls_param_segment *segs) {
    if (!m->grads_memory) return 0;
    if (m->grad_scope == LS_GRADS_ALL) return model_decay_segments(m, segs);
    const ls_params *p = &m->params;
    float *const *ptr = (float *const *)p;
    ls_param_segment head[4];
    int nh = model_head_segments(m, head), n = 0;
    size_t off = 0;
    for (int i = 0; i < LS_N_PARAM_TENSORS; i++) {
        size_t sz = m->param_sizes[i];
        const float *t = ptr[i];
        int in_head = 0;
        for (int k = 0; k < nh; k++) in_head |= head[k].offset == off;
        int layer = i >= 2 && i <= 13; // ln1w .. fcprojb: (L, ...) per-layer tensors
        if (!sz) continue;
        if (in_head || (m->grad_scope == LS_GRADS_BIASES && is_bias(p, t)))
            segs[n++] = (ls_param_segment){off, sz, !is_no_decay(p, t)};
        else if (m->grad_scope == LS_GRADS_TOP && layer) {
            size_t per = sz / (size_t)m->L; // (L, ...) tensors: the last k layers are their tail
            segs[n++] = (ls_param_segment){off + per * (size_t)(m->L - m->grad_top), per * (size_t)m->grad_top,
                                           !is_no_decay(p, t)};
        }
        off += sz;
    }
    return n;
}

const ls_param_view *model_find_view(const ls_model *m, const char *name) {
    for (int i = 0; i < m->n_views; i++)
        if (strcmp(m->views[i].name, name) == 0) return &m->views[i];
    return NULL;
}

int model_get_tensor(const ls_model *m, const char *name, float *host_out) {
    const ls_param_view *v = model_find_view(m, name);
    if (!v) return ls_fail("model: %s: no such tensor", name);
    m->be->download(host_out, m->params_memory + v->offset, v->numel);
    return 0;
}

int model_set_tensor(ls_model *m, const char *name, const float *host_in) {
    const ls_param_view *v = model_find_view(m, name);
    if (!v) return ls_fail("model: %s: no such tensor", name);
    m->be->upload(m->params_memory + v->offset, host_in, v->numel);
    return 0;
}

int model_get_grad(const ls_model *m, const char *name, float *host_out) {
    const ls_param_view *v = model_find_view(m, name);
    if (!v) return ls_fail("model: %s: no such tensor", name);
    if (!m->grads_memory) return ls_fail("model: %s: gradients are off (frozen base)", name);
    m->be->download(host_out, m->grads_memory + v->offset, v->numel);
    return 0;
}

// ----------------------------------------------------------------------------
// activations

// Floats of one layer's att for a batch (B, T): what the backend states.
static size_t att_per_layer(const ls_model *m, int B, int T, size_t *datt) {
    size_t att, d;
    m->be->attention_sizes(B, T, m->NH, m->HS, &att, &d);
    if (datt) *datt = d;
    return att;
}

enum { LS_LEAN_ATTY = 1, LS_LEAN_LN2 = 2, LS_LEAN_ACT = 4 };

// The decoder's activations its backward will not read (model.h, lean): the
// input of a linear is read only for that linear's weight gradient (full
// fine-tuning, FT^Top2) or its LoRA sites; BitFit's bias gradients, the
// adapters (which keep their own input, the projection's output), prefixes
// and a frozen model read none of the three.
static int lean_plan(const ls_model *m) {
    if (IS_ENC(m)) return 0; // post-LN: ln2 is the layer's output
    if (m->grads_memory && (m->grad_scope == LS_GRADS_ALL || m->grad_scope == LS_GRADS_TOP)) return 0;
    static const ls_linear reader[3] = {LS_LIN_O, LS_LIN_FC, LS_LIN_DOWN}; // of atty, ln2, act
    int lean = 0;
    for (int i = 0; i < 3; i++)
        if (!m->lora || !lora_reads_input(m->lora, reader[i])) lean |= 1 << i;
    return lean;
}

// Offset of layer l in a per-layer activation of `per_layer` floats: 0 for
// all layers when `bit` of m->lean keeps one layer only.
static size_t layer_at(const ls_model *m, int bit, int l, size_t per_layer) {
    return m->lean & bit ? 0 : (size_t)l * per_layer;
}

static void act_sizes(ls_model *m, size_t *s, int B, int T) {
    size_t N = (size_t)B * T, C = m->C, L = m->L, QKV = m->QKV, F = m->F, H = m->H;
    size_t La = m->lean & LS_LEAN_ATTY ? 1 : L, Ll = m->lean & LS_LEAN_LN2 ? 1 : L, Lh = m->lean & LS_LEAN_ACT ? 1 : L;
    size_t datt, att = att_per_layer(m, B, T, &datt);
    int g = HAS_LN(m), e = IS_ENC(m);
    size_t Bz = (size_t)B, NL = (size_t)m->cfg.num_labels;
    size_t t[LS_N_ACT_TENSORS] = {
        N * C,                       // encoded
        L * N * C, g ? L * N : 0, L * N, // ln1, ln1_mean, ln1_rstd
        L * N * QKV,                 // qkv
        L * att,                     // att
        La * N * C,                  // atty
        L * N * C,                   // res2
        Ll * N * C, g ? L * N : 0, L * N, // ln2, ln2_mean, ln2_rstd
        L * N * F,                   // fc
        Lh * N * H,                  // act
        L * N * C,                   // res3
        e ? 0 : N * C, g && !e ? N : 0, e ? 0 : N, // lnf, lnf_mean, lnf_rstd
        e ? 0 : (m->loss_chunk > 0 && (size_t)m->loss_chunk < N ? (size_t)m->loss_chunk : N) * m->V, // logits
        N, N,                        // losses, dlosses
        N * C, N * C, N * C,         // dres, dln, datty
        N * QKV,                     // dqkv
        datt,                        // datt
        N * F, N * H,                // dfc, dact
        N * C,                       // tmp
        e ? N * C : 0, e ? N : 0, e ? N : 0, // emb, emb_mean, emb_rstd
        e ? Bz * C : 0, e ? Bz * C : 0, e ? Bz * C : 0, // pool_in, pool_pre, pooled
        e ? Bz * NL : 0,             // clogits
        e ? Bz * C : 0, e ? Bz * C : 0, // dpool, dpool2
        e ? Bz * C : 0,              // cls_in
    };
    memcpy(s, t, sizeof t);
}

static void point_acts(ls_model *m);

int model_reserve(ls_model *m, int B, int T) {
    if (m->prompt) T += m->prompt->P; // prompt tuning: the virtual tokens before every row (prompt.h)
    int Tmax = m->P - m->cfg.position_offset; // roberta: positions start at padding_idx + 1
    if (B <= 0 || T <= 0 || T > Tmax)
        return ls_fail("model_reserve: expected 1 <= T <= max_seq_len %d and B >= 1, found B %d T %d",
                       Tmax, B, T);
    int lean = lean_plan(m);
    // done when the slots fit (B, T) and keep every layer of what the backward will read
    if (m->acts_memory && B <= m->Bcap && T <= m->Tcap && !(m->lean & ~lean) && m->acts_loss_chunk == m->loss_chunk)
        return 0;
    int Bn = B > m->Bcap ? B : m->Bcap, Tn = T > m->Tcap ? T : m->Tcap;
    m->lean = lean;
    // Refuse before allocating what the machine cannot hold (batch_size 65536
    // would ask for ~1 TB). Every activation is linear in B: B times one row's
    // bytes, in double so that no product overflows.
    act_sizes(m, m->act_sizes, 1, Tn);
    double row_floats = 0;
    for (int i = 0; i < LS_N_ACT_TENSORS; i++) row_floats += (double)m->act_sizes[i];
    double need = (double)Bn * (row_floats * sizeof(float) + (double)Tn * (2 * sizeof(int) + 2 * sizeof(float)));
    double phys = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (phys > 0 && need > phys)
        return ls_fail("model_reserve: batch size %d x sequence length %d needs %.3g bytes of activations, more than "
                       "this machine's physical memory (%.3g bytes); lower batch_size or seq_len",
                       Bn, Tn, need, phys);
    if (m->acts_memory) m->be->free(m->acts_memory);
    if (m->tokens) m->be->free_int(m->tokens);
    if (m->targets) m->be->free_int(m->targets);
    if (m->types) m->be->free_int(m->types);
    if (m->keymask) m->be->free_int(m->keymask);
    m->types = m->keymask = NULL;
    free(m->host_weights);
    free(m->host_losses);
    act_sizes(m, m->act_sizes, Bn, Tn);
    m->n_acts = 0;
    for (int i = 0; i < LS_N_ACT_TENSORS; i++) m->n_acts += m->act_sizes[i];
    m->acts_memory = m->be->alloc(m->n_acts);
    m->acts_loss_chunk = m->loss_chunk;
    point_acts(m);
    m->Bcap = Bn;
    m->Tcap = Tn;
    size_t N = (size_t)Bn * Tn;
    m->tokens = m->be->alloc_int(N);
    m->targets = m->be->alloc_int(N);
    if (IS_ENC(m)) {
        m->types = m->be->alloc_int(N);
        m->keymask = m->be->alloc_int(N);
    }
    m->host_weights = ls_calloc(N, sizeof(float));
    m->host_losses = ls_calloc(N, sizeof(float));
    if (m->lora) lora_reserve(m->lora, (int)N);
    if (m->adapters) adapters_reserve(m->adapters, (int)N);
    if (m->prefix) prefix_reserve(m->prefix, Bn, Tn);
    if (m->prompt) prompt_reserve(m->prompt, Bn, Tn);
    return 0;
}

// Points the activation tensors at their capacity-sized slots. A batch of
// (B, T) lays out its per-layer tensors with its own N = B*T (layer l starts
// at l*N*width), which always fits the slot sized for (Bcap, Tcap).
static void point_acts(ls_model *m) {
    float **ptr = (float **)&m->acts;
    float *mem = m->acts_memory;
    for (int i = 0; i < LS_N_ACT_TENSORS; i++) {
        ptr[i] = m->act_sizes[i] ? mem : NULL;
        mem += m->act_sizes[i];
    }
}

// ----------------------------------------------------------------------------
// building blocks shared by the training and decoding paths

static void norm_forward(ls_model *m, float *out, float *mean, float *rstd, const float *inp,
                         const float *w, const float *b, int N) {
    if (HAS_LN(m))
        m->be->layernorm_forward(out, mean, rstd, inp, w, b, N, m->C, m->cfg.norm_eps);
    else
        m->be->rmsnorm_forward(out, rstd, inp, w, N, m->C, m->cfg.norm_eps);
}

static void norm_backward(ls_model *m, float *dinp, float *dw, float *db, const float *dout,
                          const float *inp, const float *w, const float *mean,
                          const float *rstd, int N) {
    if (HAS_LN(m))
        m->be->layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, m->C);
    else
        m->be->rmsnorm_backward(dinp, dw, dout, inp, w, rstd, N, m->C);
}

// Weight (OC, IC) and bias of linear `lin` in layer l, and its sizes.
static void linear_weights(const ls_model *m, const ls_params *p, int l, ls_linear lin,
                           float **w, float **b, int *IC, int *OC) {
    size_t C = m->C;
    switch (lin) {
    case LS_LIN_QKV:
        *w = p->qkvw + l * m->QKV * C; *b = p->qkvb ? p->qkvb + (size_t)l * m->QKV : NULL;
        *IC = m->C; *OC = m->QKV; break;
    case LS_LIN_O:
        *w = p->attprojw + l * C * C; *b = p->attprojb ? p->attprojb + l * C : NULL;
        *IC = m->C; *OC = m->C; break;
    case LS_LIN_FC:
        *w = p->fcw + l * m->F * C; *b = p->fcb ? p->fcb + (size_t)l * m->F : NULL;
        *IC = m->C; *OC = m->F; break;
    default:
        *w = p->fcprojw + l * C * m->H; *b = p->fcprojb ? p->fcprojb + l * C : NULL;
        *IC = m->H; *OC = m->C; break;
    }
}

// The adapter on the output of (layer, linear), or -1: O and DOWN carry them.
static int adapter_site_of(const ls_model *m, int l, ls_linear lin) {
    if (!m->adapters || (lin != LS_LIN_O && lin != LS_LIN_DOWN)) return -1;
    return adapters_site(m->adapters, l, lin == LS_LIN_DOWN);
}

// out (N, OC) = inp W^T + b, plus the LoRA update of this (layer, linear) and its adapter.
static void linear_forward(ls_model *m, int l, ls_linear lin, float *out, const float *inp, int N) {
    float *w, *b;
    int IC, OC;
    linear_weights(m, &m->params, l, lin, &w, &b, &IC, &OC);
    m->be->matmul_forward(out, inp, w, b, N, IC, OC);
    if (m->lora) lora_linear_forward(m->lora, l, lin, out, inp, N, m->training);
    int site = adapter_site_of(m, l, lin);
    if (site >= 0) adapters_site_forward(m->adapters, site, out, N); // on the sublayer's output (adapters.h)
}

// dinp (N, IC) = dout W (+ LoRA's part); base weight grads if enabled.
static void linear_backward(ls_model *m, int l, ls_linear lin, float *dinp, const float *dout,
                            const float *inp, int N) {
    float *w, *b, *dw = NULL, *db = NULL;
    int IC, OC, site = adapter_site_of(m, l, lin);
    if (site >= 0) dout = adapters_site_backward(m->adapters, site, dout, N); // d of the projection's output
    linear_weights(m, &m->params, l, lin, &w, &b, &IC, &OC);
    if (model_trains_weights(m, l) || model_trains_biases(m, l)) {
        linear_weights(m, &m->grads, l, lin, &dw, &db, &IC, &OC);
        if (!model_trains_weights(m, l)) dw = NULL;
        if (!model_trains_biases(m, l)) db = NULL;
    }
    m->be->matmul_backward(dinp, dw, db, dout, inp, w, N, IC, OC);
    if (m->lora) lora_linear_backward(m->lora, l, lin, dinp, dout, inp, N, m->training);
}

// For engine/encoder.c (model_internal.h).
void model_linear_forward(ls_model *m, int l, ls_linear lin, float *out, const float *inp, int N) {
    linear_forward(m, l, lin, out, inp, N);
}
void model_linear_backward(ls_model *m, int l, ls_linear lin, float *dinp, const float *dout,
                           const float *inp, int N) {
    linear_backward(m, l, lin, dinp, dout, inp, N);
}
size_t model_att_floats(const ls_model *m, int B, int T) { return att_per_layer(m, B, T, NULL); }

static const float *lm_head(const ls_model *m) {
    return m->params.lm_head ? m->params.lm_head : m->params.wte;
}

// ----------------------------------------------------------------------------
// forward / backward

// d loss_i / d loss_i's row weight: loss_scale w_i / sum w (0 without weight) -> dlosses (N).
static void upload_dlosses(ls_model *m, int N, float loss_scale) {
    for (int i = 0; i < N; i++)
        m->host_losses[i] = m->weight_sum > 0.0 ? (float)(loss_scale * m->host_weights[i] / m->weight_sum) : 0.0f;
    m->be->upload(m->acts.dlosses, m->host_losses, N);
}

// Rows of one chunk of the head (model_set_loss_chunk): all N when off.
static int head_rows(const ls_model *m, int N) { return m->loss_chunk > 0 && m->loss_chunk < N ? m->loss_chunk : N; }

// Rows [r0, r0 + n) of the LM head and the loss. HEAD_LOSS: their logits into
// acts.logits (n, V), then their losses. HEAD_GRAD: from those logits, the
// loss's backward in place (dlosses uploaded) and d lnf of the rows into
// acts.dln (the head's weight gradient into dhead, accumulated). HEAD_REGRAD:
// the logits again, then HEAD_GRAD's.
enum { HEAD_LOSS, HEAD_GRAD, HEAD_REGRAD };
static void head_chunk(ls_model *m, int r0, int n, float smoothing, int stage, float *dhead) {
    const ls_backend *be = m->be;
    ls_acts *a = &m->acts;
    size_t at = (size_t)r0 * m->C;
    if (stage != HEAD_GRAD) be->matmul_forward(a->logits, a->lnf + at, lm_head(m), NULL, n, m->C, m->V);
    if (stage == HEAD_LOSS) {
        be->crossentropy_forward(a->losses + r0, a->logits, m->targets + r0, n, m->V, smoothing);
        return;
    }
    be->crossentropy_backward(a->logits, a->logits, m->targets + r0, a->dlosses + r0, n, m->V, smoothing);
    be->matmul_backward(a->dln + at, dhead, NULL, a->logits, a->lnf + at, lm_head(m), n, m->C, m->V);
}

// The head and the per-row losses of a forward with targets. Chunked and in
// training with the head frozen, each chunk's backward runs right after its
// loss (d lnf for loss_scale 1; model_backward scales it): its logits are
// never needed again.
static void head_forward(ls_model *m, int N, float smoothing) {
    int R = head_rows(m, N), fused = m->loss_chunk > 0 && m->training && !model_trains_weights(m, -1);
    if (fused) upload_dlosses(m, N, 1.0f);
    for (int r0 = 0; r0 < N; r0 += R) {
        int n = N - r0 < R ? N - r0 : R;
        head_chunk(m, r0, n, smoothing, HEAD_LOSS, NULL);
        if (fused) head_chunk(m, r0, n, smoothing, HEAD_GRAD, NULL);
    }
    m->head_done = fused;
    m->head_smoothing = smoothing;
}

int model_head_trains(const ls_model *m) { return model_trains_weights(m, -1); }

int model_loss_chunk_rows(const ls_model *m) {
    if (IS_ENC(m)) return 0;
    int rows = (int)((32u << 20) / (unsigned)m->V);
    return rows < 64 ? 64 : rows;
}

int model_set_loss_chunk(ls_model *m, int rows) {
    if (rows < 0) return ls_fail("model_set_loss_chunk: rows: expected >= 0, found %d", rows);
    m->loss_chunk = rows;
    m->has_targets = 0;
    return m->acts_memory ? model_reserve(m, m->Bcap, m->Tcap - model_virtual_tokens(m)) : 0;
}

float model_forward(ls_model *m, const int *tokens, const int *targets, const float *mask,
                    int B, int T, float smoothing) {
    const ls_backend *be = m->be;
    if (IS_ENC(m)) {
        ls_fail("model_forward: a %s model is an encoder: it classifies (model_classify_forward), "
                "it has no language-model head", arch_family_name(m->cfg.family));
        return -1.0f;
    }
    // prompt tuning: the batch becomes (B, l_p + T), the virtual tokens first (prompt.h)
    if (m->prompt && prompt_extend(m->prompt, &tokens, &targets, &mask, B, &T)) return -1.0f;
    if (!m->acts_memory || B > m->Bcap || T > m->Tcap || B <= 0 || T <= 0) {
        ls_fail("model_forward: batch (%d, %d) exceeds the reservation (%d, %d); call model_reserve",
                B, T, m->Bcap, m->Tcap);
        return -1.0f;
    }
    int N = B * T;
    for (int i = 0; i < N; i++) {
        if (tokens[i] < 0 || tokens[i] >= m->V) {
            ls_fail("model_forward: tokens[%d]: expected an id in [0, %d), found %d", i, m->V,
                    tokens[i]);
            return -1.0f;
        }
        if (targets && targets[i] >= m->V) {
            ls_fail("model_forward: targets[%d]: expected an id < %d, found %d", i, m->V,
                    targets[i]);
            return -1.0f;
        }
    }
    const ls_prefix *pf = m->prefix;
    int pos0 = pf ? pf->P : 0; // the prefix occupies positions 0..P-1, as a cache of P entries does
    if (pos0 + T > m->cfg.max_seq_len) {
        ls_fail("model_forward: T: expected prefix %d + T <= max_seq_len %d, found T %d", pos0, m->cfg.max_seq_len, T);
        return -1.0f;
    }
    if (!targets && head_rows(m, B * T) < B * T) {
        ls_fail("model_forward: the logits are computed %d rows at a time (model_set_loss_chunk); a forward without "
                "targets needs all %d: set 0 first", m->loss_chunk, B * T);
        return -1.0f;
    }
    // what trains grew since the reservation (gradients enabled, LoRA attached): keep more layers
    if ((m->lean & ~lean_plan(m)) && model_reserve(m, m->Bcap, m->Tcap - model_virtual_tokens(m))) return -1.0f;
    m->B = B;
    m->T = T;
    ls_acts *a = &m->acts;
    ls_params *p = &m->params;
    size_t C = m->C, NC = (size_t)N * C, NH_ = (size_t)N * m->H, att_l = att_per_layer(m, B, T, NULL);
    be->upload_int(m->tokens, tokens, N);

    be->embedding_forward(a->encoded, m->tokens, p->wte, p->wpe, B, T, m->C, pos0);
    if (m->prompt) prompt_embed_forward(be, a->encoded, m->prompt->params, p->wpe, B, T, m->prompt->P, m->C, 0);
    const float *x = a->encoded;
    for (int l = 0; l < m->L; l++) {
        float *ln1 = a->ln1 + l * NC, *ln1m = a->ln1_mean ? a->ln1_mean + (size_t)l * N : NULL,
              *ln1r = a->ln1_rstd + (size_t)l * N, *qkv = a->qkv + (size_t)l * N * m->QKV,
              *att = a->att + l * att_l, *atty = a->atty + layer_at(m, LS_LEAN_ATTY, l, NC),
              *res2 = a->res2 + l * NC, *ln2 = a->ln2 + layer_at(m, LS_LEAN_LN2, l, NC),
              *ln2m = a->ln2_mean ? a->ln2_mean + (size_t)l * N : NULL, *ln2r = a->ln2_rstd + (size_t)l * N,
              *fc = a->fc + (size_t)l * N * m->F, *act = a->act + layer_at(m, LS_LEAN_ACT, l, NH_),
              *res3 = a->res3 + l * NC;
        norm_forward(m, ln1, ln1m, ln1r, x, p->ln1w + l * C, p->ln1b ? p->ln1b + l * C : NULL, N);
        linear_forward(m, l, LS_LIN_QKV, qkv, ln1, N);
        if (!IS_GPT2(m))
            be->rope_forward(qkv, m->rope_cos, m->rope_sin, B, T, m->NH + 2 * m->NKV,
                             m->NH + m->NKV, m->HS, pos0, m->cfg.rope_interleaved);
        if (pf) // prefix-layer tuning: the layer's P keys and values before the sequence's (prefix.h)
            prefix_layer_forward(m->prefix, l, atty, qkv, B, T);
        else be->attention_forward(atty, att, qkv, B, T, m->NH, m->NKV, m->HS);
        linear_forward(m, l, LS_LIN_O, a->tmp, atty, N);
        be->residual_forward(res2, x, a->tmp, NC);
        norm_forward(m, ln2, ln2m, ln2r, res2, p->ln2w + l * C, p->ln2b ? p->ln2b + l * C : NULL, N);
        linear_forward(m, l, LS_LIN_FC, fc, ln2, N);
        if (IS_GPT2(m)) be->gelu_forward(act, fc, (size_t)N * m->H);
        else be->swiglu_forward(act, fc, N, m->H);
        linear_forward(m, l, LS_LIN_DOWN, a->tmp, act, N);
        be->residual_forward(res3, res2, a->tmp, NC);
        x = res3;
    }
    norm_forward(m, a->lnf, a->lnf_mean, a->lnf_rstd, x, p->lnfw, p->lnfb, N);
    m->has_targets = targets != NULL;
    m->head_done = 0;
    m->loss = 0.0;
    if (!targets) {
        be->matmul_forward(a->logits, a->lnf, lm_head(m), NULL, N, m->C, m->V);
        return 0.0f;
    }
    be->upload_int(m->targets, targets, N);
    double wsum = 0.0, lsum = 0.0;
    for (int i = 0; i < N; i++) {
        float w = targets[i] >= 0 ? (mask ? mask[i] : 1.0f) : 0.0f;
        m->host_weights[i] = w;
        wsum += w;
    }
    m->weight_sum = wsum;
    head_forward(m, N, smoothing);
    be->download(m->host_losses, a->losses, N);
    for (int i = 0; i < N; i++) lsum += (double)m->host_weights[i] * m->host_losses[i];
    m->loss = wsum > 0.0 ? lsum / wsum : 0.0;
    return (float)m->loss;
}

void model_backward(ls_model *m, float loss_scale, float smoothing) {
    const ls_backend *be = m->be;
    ls_assert(m->has_targets);
    int B = m->B, T = m->T, N = B * T;
    ls_acts *a = &m->acts;
    ls_params *p = &m->params, *g = &m->grads;
    int tw = model_trains_weights(m, -1), tb = model_trains_biases(m, -1), floor = model_backward_floor(m);
    size_t C = m->C, NC = (size_t)N * C, att_l = att_per_layer(m, B, T, NULL);
    ls_prefix *pf = m->prefix;
    ls_assert(!(pf && tw)); // embedding_backward has no position offset: a prefix trains with the base frozen
    ls_assert(!(m->lean & ~lean_plan(m))); // the forward kept every layer of what this backward reads

    // d loss / d loss_i = w_i / sum w  (times the caller's scale), through the head into dln
    float *dhead = NULL;
    if (tw) dhead = g->lm_head ? g->lm_head : g->wte;
    if (m->head_done) { // the forward ran it, chunk by chunk, for loss_scale 1
        ls_assert(smoothing == m->head_smoothing && !dhead);
        if (loss_scale != 1.0f) be->scale(a->dln, NC, loss_scale);
    } else {
        upload_dlosses(m, N, loss_scale);
        int R = head_rows(m, N);
        if (R == N) head_chunk(m, 0, N, smoothing, HEAD_GRAD, dhead); // the forward's logits, whole
        else
            for (int r0 = 0; r0 < N; r0 += R) head_chunk(m, r0, N - r0 < R ? N - r0 : R, smoothing, HEAD_REGRAD, dhead);
    }
    be->zero(a->dres, NC);
    const float *xL = a->res3 + (size_t)(m->L - 1) * NC;
    norm_backward(m, a->dres, tw ? g->lnfw : NULL, tb ? g->lnfb : NULL, a->dln,
                  xL, p->lnfw, a->lnf_mean, a->lnf_rstd, N);

    for (int l = m->L - 1; l >= floor; l--) { // FT^Top-k: nothing below the floor trains
        float *gw = model_trains_weights(m, l) ? g->ln2w + l * C : NULL,
              *gb = model_trains_biases(m, l) && g->ln2b ? g->ln2b + l * C : NULL;
        const float *x = l == 0 ? a->encoded : a->res3 + (size_t)(l - 1) * NC;
        float *ln1 = a->ln1 + l * NC, *ln1m = a->ln1_mean ? a->ln1_mean + (size_t)l * N : NULL,
              *ln1r = a->ln1_rstd + (size_t)l * N, *qkv = a->qkv + (size_t)l * N * m->QKV,
              *att = a->att + l * att_l, *atty = a->atty + layer_at(m, LS_LEAN_ATTY, l, NC),
              *res2 = a->res2 + l * NC, *ln2 = a->ln2 + layer_at(m, LS_LEAN_LN2, l, NC),
              *ln2m = a->ln2_mean ? a->ln2_mean + (size_t)l * N : NULL, *ln2r = a->ln2_rstd + (size_t)l * N,
              *fc = a->fc + (size_t)l * N * m->F, *act = a->act + layer_at(m, LS_LEAN_ACT, l, (size_t)N * m->H);
        // dres holds d loss / d res3; through the skip connection it is also
        // d loss / d (down projection output) and part of d loss / d res2.
        linear_backward(m, l, LS_LIN_DOWN, a->dact, a->dres, act, N);
        if (IS_GPT2(m)) be->gelu_backward(a->dfc, fc, a->dact, (size_t)N * m->H);
        else be->swiglu_backward(a->dfc, fc, a->dact, N, m->H);
        linear_backward(m, l, LS_LIN_FC, a->dln, a->dfc, ln2, N);
        norm_backward(m, a->dres, gw, gb, a->dln, res2,
                      p->ln2w + l * C, ln2m, ln2r, N);
        // now dres = d loss / d res2, which is also d loss / d (o projection output)
        linear_backward(m, l, LS_LIN_O, a->datty, a->dres, atty, N);
        if (pf) prefix_layer_backward(pf, l, a->dqkv, a->datty, qkv, B, T);
        else be->attention_backward(a->dqkv, a->datt, a->datty, qkv, att, B, T, m->NH, m->NKV, m->HS);
        if (!IS_GPT2(m))
            be->rope_backward(a->dqkv, m->rope_cos, m->rope_sin, B, T, m->NH + 2 * m->NKV,
                              m->NH + m->NKV, m->HS, pf ? pf->P : 0, m->cfg.rope_interleaved);
        // below the floor only the embeddings may need the gradient, and only when
        // trained; LN1's own weights need d ln1 all the same
        int need_dln = model_needs_dx(m, l) || gw || gb;
        linear_backward(m, l, LS_LIN_QKV, need_dln ? a->dln : NULL, a->dqkv, ln1, N);
        if (need_dln)
            norm_backward(m, a->dres, gw ? g->ln1w + l * C : NULL, gb ? g->ln1b + l * C : NULL, a->dln, x,
                          p->ln1w + l * C, ln1m, ln1r, N);
    }
    if (tw) be->embedding_backward(g->wte, g->wpe, a->dres, m->tokens, B, T, m->C);
    if (m->prompt) prompt_embed_backward(be, m->prompt->grads, a->dres, B, T, m->prompt->P, m->C);
    m->has_targets = 0; // the logits are gone; a second backward needs a new forward
}

// ----------------------------------------------------------------------------
// generation

// Sizes the KV cache (and the attention scratch) for n_ctx positions, at most
// max_seq_len: a decode sizes it by the positions actually run, not by the
// model's maximum (a config's max_position_embeddings may be 1M). Grows by
// doubling and keeps the cached keys/values of the positions already run.
static void decoder_reserve(ls_model *m, int n_ctx, int lanes) {
    ls_decoder *d = &m->dec;
    if (d->memory && n_ctx <= d->n_ctx && lanes <= d->lanes) return;
    if (d->memory && n_ctx <= d->n_ctx) n_ctx = d->n_ctx; // more lanes only: keep the positions
    else {
        if (n_ctx < 64) n_ctx = 64;
        if (d->memory && n_ctx < 2 * d->n_ctx) n_ctx = 2 * d->n_ctx;
        if (n_ctx > m->P) n_ctx = m->P;
    }
    if (lanes < d->lanes) lanes = d->lanes;
    size_t C = m->C, kv = (size_t)m->NKV * m->HS, n = (size_t)n_ctx, nl = (size_t)lanes;
    size_t sizes[12] = {m->L * nl * n * kv, m->L * nl * n * kv, nl * C, nl * C, nl * C, nl * m->QKV,
                        (size_t)m->NH * n, nl * m->F, nl * m->H, nl * m->V, nl, nl};
    size_t total = 0;
    for (int i = 0; i < 12; i++) total += (sizes[i] + 15) & ~(size_t)15; // 64-byte aligned slots
    float *memory = m->be->alloc(total), *old = d->memory, *old_k = d->k_cache, *old_v = d->v_cache;
    float **ptr[12] = {&d->k_cache, &d->v_cache, &d->x, &d->xb, &d->xb2, &d->qkv,
                       &d->att, &d->fc, &d->act, &d->logits, &d->mean, &d->rstd};
    float *at = memory;
    for (int i = 0; i < 12; i++) {
        *ptr[i] = at;
        at += (sizes[i] + 15) & ~(size_t)15;
    }
    if (old) { // every old lane's positions into the new layout
        for (size_t l = 0; l < (size_t)m->L; l++)
            for (size_t s = 0; s < (size_t)d->lanes; s++) {
                size_t from = (l * d->lanes + s) * d->n_ctx * kv, to = (l * nl + s) * n * kv;
                m->be->copy(d->k_cache + to, old_k + from, (size_t)d->n_ctx * kv);
                m->be->copy(d->v_cache + to, old_v + from, (size_t)d->n_ctx * kv);
            }
        m->be->free(old);
    }
    d->memory = memory;
    d->n_ctx = n_ctx;
    if (d->token && lanes > d->lanes) {
        m->be->free_int(d->token);
        d->token = NULL;
    }
    if (!d->token) d->token = m->be->alloc_int(nl);
    free(d->host_logits);
    d->host_logits = ls_malloc(nl * (size_t)m->V * sizeof(float));
    d->lanes = lanes;
}

void model_kv_rows(const ls_model *m, int l, int rows, float *keys, float *values) {
    size_t kv = (size_t)m->NKV * m->HS, QKV = (size_t)m->QKV, q = (size_t)m->NH * m->HS;
    const float *qkv = m->acts.qkv + (size_t)l * m->B * m->T * QKV; // rows q (NH HS), k, v (NKV HS)
    m->be->copy_rows(keys, kv, qkv + q, QKV, rows, (int)kv, 0);
    m->be->copy_rows(values, kv, qkv + q + kv, QKV, rows, (int)kv, 0);
}

int model_cache_offset(const ls_model *m) { return m->prefix ? m->prefix->P : model_virtual_tokens(m); }

// Layer l's key (values: v) cache of lane `lane`: (n_ctx, NKV HS).
static float *lane_cache(const ls_model *m, float *cache, int l, int lane) {
    const ls_decoder *d = &m->dec;
    return cache + ((size_t)l * d->lanes + lane) * d->n_ctx * m->NKV * m->HS;
}

static int check_decode(const ls_model *m, int nb, const int *lanes, const int *tokens, int pos) {
    if (IS_ENC(m))
        return ls_fail("model_decode: a %s model is an encoder: it does not generate text",
                       arch_family_name(m->cfg.family));
    int P = model_cache_offset(m);
    if (pos < 0 || P + pos >= m->P)
        return ls_fail("model_decode: pos: expected 0 <= pos < max_seq_len %d - prefix %d, found %d", m->P, P, pos);
    if (nb < 1 || nb > 256) return ls_fail("model_decode: expected 1..256 sequences, found %d", nb);
    for (int b = 0; b < nb; b++) {
        if (tokens[b] < 0 || tokens[b] >= m->V)
            return ls_fail("model_decode: token: expected an id in [0, %d), found %d", m->V, tokens[b]);
        if (lanes[b] < 0 || lanes[b] >= 256) return ls_fail("model_decode: lane: expected 0..255, found %d", lanes[b]);
        for (int c = 0; c < b; c++)
            if (lanes[c] == lanes[b]) return ls_fail("model_decode: lane %d given twice", lanes[b]);
    }
    return 0;
}

static int max_lane(int nb, const int *lanes) {
    int mx = 0;
    for (int b = 0; b < nb; b++) mx = lanes[b] > mx ? lanes[b] : mx;
    return mx;
}

// Slots 0..P-1 of lane `lane`, layer l: a prefix's keys and values (used as
// they are, no RoPE), or prompt tuning's virtual tokens' (RoPE applied: they
// are the model's own, prompt_cache_rows).
static void fill_prefix_slots(ls_model *m, int l, int lane) {
    const ls_prefix *pf = m->prefix;
    size_t n = (size_t)model_cache_offset(m) * m->NKV * m->HS;
    m->be->copy(lane_cache(m, m->dec.k_cache, l, lane), pf ? prefix_keys(pf, l) : prompt_cache_keys(m->prompt, l), n);
    m->be->copy(lane_cache(m, m->dec.v_cache, l, lane), pf ? prefix_values(pf, l) : prompt_cache_values(m->prompt, l),
                n);
}

const float *model_decode_lanes(ls_model *m, int nb, const int *lanes, const int *tokens, int pos) {
    const ls_backend *be = m->be;
    if (check_decode(m, nb, lanes, tokens, pos)) return NULL;
    int P = model_cache_offset(m), at = P + pos; // the tokens' cache slot and position
    decoder_reserve(m, at + 1, max_lane(nb, lanes) + 1);
    if (m->lora && m->lora->Ncap < nb) lora_reserve(m->lora, nb);
    if (m->adapters && m->adapters->Ncap < nb) adapters_reserve(m->adapters, nb);
    ls_decoder *d = &m->dec;
    ls_params *p = &m->params;
    size_t C = m->C, kv = (size_t)m->NKV * m->HS, qd = (size_t)m->NH * m->HS, QKV = (size_t)m->QKV;
    // prompt tuning: the virtual tokens' keys and values, computed once per sequence (prompt.h)
    if (m->prompt && pos == 0 && prompt_cache_rows(m->prompt, m)) return NULL;
    be->upload_int(d->token, tokens, (size_t)nb);
    be->embedding_forward(d->x, d->token, p->wte, p->wpe, nb, 1, m->C, at);
    for (int l = 0; l < m->L; l++) {
        for (int b = 0; P && pos == 0 && b < nb; b++) fill_prefix_slots(m, l, lanes[b]);
        norm_forward(m, d->xb, d->mean, d->rstd, d->x, p->ln1w + l * C, p->ln1b ? p->ln1b + l * C : NULL, nb);
        linear_forward(m, l, LS_LIN_QKV, d->qkv, d->xb, nb);
        if (!IS_GPT2(m))
            be->rope_forward(d->qkv, m->rope_cos, m->rope_sin, nb, 1, m->NH + 2 * m->NKV, m->NH + m->NKV, m->HS, at,
                             m->cfg.rope_interleaved);
        for (int b = 0; b < nb; b++) {
            float *kc = lane_cache(m, d->k_cache, l, lanes[b]), *vc = lane_cache(m, d->v_cache, l, lanes[b]);
            const float *q = d->qkv + (size_t)b * QKV;
            be->copy(kc + (size_t)at * kv, q + qd, kv);
            be->copy(vc + (size_t)at * kv, q + qd + kv, kv);
            be->attention_decode(d->xb2 + (size_t)b * qd, d->att, q, kc, vc, at + 1, m->NH, m->NKV, m->HS);
        }
        linear_forward(m, l, LS_LIN_O, d->xb, d->xb2, nb);
        be->residual_forward(d->x, d->x, d->xb, (size_t)nb * C);
        norm_forward(m, d->xb, d->mean, d->rstd, d->x, p->ln2w + l * C, p->ln2b ? p->ln2b + l * C : NULL, nb);
        linear_forward(m, l, LS_LIN_FC, d->fc, d->xb, nb);
        if (IS_GPT2(m)) be->gelu_forward(d->act, d->fc, (size_t)nb * m->H);
        else be->swiglu_forward(d->act, d->fc, nb, m->H);
        linear_forward(m, l, LS_LIN_DOWN, d->xb2, d->act, nb);
        be->residual_forward(d->x, d->x, d->xb2, (size_t)nb * C);
    }
    norm_forward(m, d->xb, d->mean, d->rstd, d->x, p->lnfw, p->lnfb, nb);
    be->matmul_forward(d->logits, d->xb, lm_head(m), NULL, nb, m->C, m->V);
    be->download(d->host_logits, d->logits, (size_t)nb * m->V);
    return d->host_logits;
}

const float *model_decode(ls_model *m, int token, int pos) {
    static const int lane0 = 0;
    return model_decode_lanes(m, 1, &lane0, &token, pos);
}

const float *model_prefill(ls_model *m, const int *tokens, int n, int lane) {
    if (n < 1) {
        ls_fail("model_prefill: expected at least one token, found %d", n);
        return NULL;
    }
    // the lane and the last position; model_forward checks every token
    if (check_decode(m, 1, &lane, tokens, n - 1)) return NULL;
    int P = model_cache_offset(m), V = m->V;
    int was_training = m->training;
    model_set_training(m, 0);
    float rc = model_reserve(m, 1, n) ? -1.0f : model_forward(m, tokens, NULL, NULL, 1, n, 0.0f);
    model_set_training(m, was_training);
    if (rc < 0.0f) return NULL;
    decoder_reserve(m, P + n, lane + 1);
    ls_decoder *d = &m->dec;
    // the forward's rows: a prefix's sequence starts after its P slots; virtual
    // tokens are rows of the forward themselves (m->T = P + n)
    int first = m->prefix ? P : 0, rows = m->T;
    for (int l = 0; l < m->L; l++) {
        if (m->prefix) fill_prefix_slots(m, l, lane);
        size_t at = (size_t)first * m->NKV * m->HS;
        model_kv_rows(m, l, rows, lane_cache(m, d->k_cache, l, lane) + at, lane_cache(m, d->v_cache, l, lane) + at);
    }
    m->be->download(d->host_logits, m->acts.logits + (size_t)(rows - 1) * V, (size_t)V);
    return d->host_logits;
}

void model_copy_lane(ls_model *m, int dst, int src, int rows) {
    if (dst == src || rows <= 0) return;
    decoder_reserve(m, rows, (dst > src ? dst : src) + 1);
    size_t n = (size_t)rows * m->NKV * m->HS;
    for (int l = 0; l < m->L; l++) {
        m->be->copy(lane_cache(m, m->dec.k_cache, l, dst), lane_cache(m, m->dec.k_cache, l, src), n);
        m->be->copy(lane_cache(m, m->dec.v_cache, l, dst), lane_cache(m, m->dec.v_cache, l, src), n);
    }
}

void model_decode_reserve(ls_model *m, int n_ctx, int lanes) { decoder_reserve(m, n_ctx, lanes); }

int model_virtual_tokens(const ls_model *m) { return m->prompt ? m->prompt->P : 0; }

int model_generate(ls_model *m, const int *prompt, int n_prompt, int steps, ls_sampler *sampler,
                   int stop_token, int *out) {
    if (n_prompt < 1) return ls_fail("model_generate: expected at least one prompt token, found 0");
    int room = m->P - model_cache_offset(m);
    if (steps < 1 || steps > room)
        return ls_fail("model_generate: steps: expected 1..%d (max_seq_len less a prefix), found %d", room, steps);
    decoder_reserve(m, model_cache_offset(m) + steps, 1);
    int token = prompt[0], n_out = 0;
    out[n_out++] = token;
    for (int pos = 0; pos < steps; pos++) {
        const float *logits = model_decode(m, token, pos);
        if (!logits) return -1;
        for (int v = 0; v < m->V; v++) // a NaN logit would silently sample token 0 / <unk>
            if (!isfinite(logits[v]))
                return ls_fail("model_generate: position %d: logit %d is %s (expected finite logits; the forward "
                               "pass overflowed with these weights)", pos, v, isnan(logits[v]) ? "nan" : "inf");
        int next;
        if (pos < n_prompt - 1) next = prompt[pos + 1];
        else if (sampler) next = sampler_sample(sampler, logits);
        else next = sampler_argmax(logits, m->V);
        if (next == stop_token) break;
        out[n_out++] = next;
        token = next;
    }
    return n_out;
}

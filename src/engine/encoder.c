// encoder: the encoder family's passes (BERT, RoBERTa) on the model of
// model.c: embeddings with token types and their LayerNorm, post-LN blocks
// with bidirectional attention under a key padding mask, exact GELU, and the
// classification heads (engine/model.h, "encoder family"; ARCHITECTURE.md, Model).
//
// Activations reuse the decoder's slots (model.h, ls_acts): per layer l,
//   qkv = QKV(x), atty = attn(qkv), res2 = x + O(atty), ln1 = LN1(res2),
//   fc = FC(ln1), act = gelu(fc), res3 = ln1 + DOWN(act), ln2 = LN2(res3),
// with x = encoded (the embeddings' LayerNorm) for l = 0, else ln2 of l - 1.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "engine/model_internal.h"
#include "engine/prefix.h"
#include "engine/prompt.h"
#include "engine/rng.h"

// ----------------------------------------------------------------------------
// the head's parameters

int model_init_head(ls_model *m, uint64_t seed, int pooler_too) {
    if (!arch_is_encoder(m->cfg.family)) return ls_fail("model_init_head: not an encoder model");
    size_t C = m->C, NL = m->cfg.num_labels;
    float *w = ls_malloc(C * C * sizeof(float)), *z = ls_calloc(C > NL ? C : NL, sizeof(float));
    ls_rng rng;
    ls_rng_seed(&rng, seed ^ 0x68656164ull); // "head"
    for (size_t i = 0; i < NL * C; i++) w[i] = (float)ls_rng_normal(&rng) * m->cfg.init_range;
    m->be->upload(m->params.clsw, w, NL * C);
    m->be->upload(m->params.clsb, z, NL);
    if (pooler_too) {
        for (size_t i = 0; i < C * C; i++) w[i] = (float)ls_rng_normal(&rng) * m->cfg.init_range;
        m->be->upload(m->params.headw, w, C * C);
        m->be->upload(m->params.headb, z, C);
    }
    free(w);
    free(z);
    return 0;
}

void model_enable_head_grads(ls_model *m) {
    if (m->grads_memory) return; // full fine-tuning already trains the head
    model_enable_grads(m);
    m->grad_scope = LS_GRADS_HEAD;
}

int model_head_train_pooler(ls_model *m) {
    if (m->cfg.family != LS_FAMILY_BERT)
        return ls_fail("modules_to_save: 'pooler' expected a bert model (its pooler dense), found a %s model%s",
                       arch_family_name(m->cfg.family),
                       arch_is_encoder(m->cfg.family) ? " (its head dense is in 'classifier' already)" : "");
    m->head_pooler = 1;
    return 0;
}

// PEFT's modules_to_save of the head: the classifier (roberta: with its dense;
// bert: with the pooler under model_head_train_pooler).
static int head_dense_saved(const ls_model *m) {
    return arch_family_of(m->cfg.family)->dense_in_modules_to_save || m->head_pooler;
}

// Full fine-tuning trains the whole head (bert: the pooler too).
static int head_dense_trained(const ls_model *m) { return m->grad_scope == LS_GRADS_ALL || head_dense_saved(m); }

int model_head_segments(const ls_model *m, ls_param_segment *segs) {
    if (!arch_is_encoder(m->cfg.family)) return 0;
    const ls_params *p = &m->params;
    size_t C = m->C, NL = m->cfg.num_labels;
    int n = 0;
    if (head_dense_trained(m)) {
        segs[n++] = (ls_param_segment){(size_t)(p->headw - m->params_memory), C * C, 1};
        segs[n++] = (ls_param_segment){(size_t)(p->headb - m->params_memory), C, 0};
    }
    segs[n++] = (ls_param_segment){(size_t)(p->clsw - m->params_memory), NL * C, 1};
    segs[n++] = (ls_param_segment){(size_t)(p->clsb - m->params_memory), NL, 0};
    return n;
}

// The view names of the head's modules_to_save, in PEFT's file order.
static int saved_names(const ls_model *m, const char **names) {
    const arch_family *a = arch_family_of(m->cfg.family);
    int n = 0;
    if (head_dense_saved(m)) {
        names[n++] = a->head_dense_b;
        names[n++] = a->head_dense_w;
    }
    names[n++] = a->head_out_b;
    names[n++] = a->head_out_w;
    return n;
}

int model_head_to_adapter(const ls_model *m, lora_adapter *a) {
    if (!arch_is_encoder(m->cfg.family)) return ls_fail("model_head_to_adapter: not an encoder model");
    const char *names[4];
    int n = saved_names(m, names);
    for (int i = 0; i < n; i++) {
        const ls_param_view *v = model_find_view(m, names[i]);
        float *x = ls_malloc(v->numel * sizeof(float));
        model_get_tensor(m, names[i], x);
        adapter_add_saved(a, names[i], v->ndim, v->shape, x);
        free(x);
    }
    return 0;
}

int model_head_from_adapter(ls_model *m, const lora_adapter *a) {
    const char *dir = a->dir ? a->dir : "adapter";
    for (int i = 0; i < a->n_saved; i++) {
        const adapter_tensor *t = &a->saved[i];
        const ls_param_view *v = model_find_view(m, t->name);
        if (!v || !arch_is_encoder(m->cfg.family))
            return ls_fail("%s: saved tensor '%s': expected a tensor of the %s base model, found none", dir, t->name,
                           arch_family_name(m->cfg.family));
        if (v->ndim != t->ndim || v->shape[0] != t->shape[0] || (v->ndim == 2 && v->shape[1] != t->shape[1]))
            return ls_fail("%s: saved tensor '%s': expected shape (%lld, %lld) as the base model's (num_labels %d), "
                           "found (%lld, %lld)", dir, t->name, (long long)v->shape[0], (long long)v->shape[1],
                           m->cfg.num_labels, (long long)t->shape[0], (long long)(t->ndim == 2 ? t->shape[1] : 0));
    }
    for (int i = 0; i < a->n_saved; i++) model_set_tensor(m, a->saved[i].name, a->saved[i].data);
    if (a->n_saved) m->head_initialised = 0;
    return 0;
}

// ----------------------------------------------------------------------------
// hidden dropout (model.h)

int model_set_hidden_dropout(ls_model *m, float p) {
    if (!(p >= 0.0f && p < 1.0f)) return ls_fail("expected a probability in [0, 1), found %g", p);
    if (p > 0.0f && !arch_is_encoder(m->cfg.family))
        return ls_fail("expected 0 for a %s model (an encoder's only), found %g", arch_family_name(m->cfg.family), p);
    m->hidden_dropout = p;
    return 0;
}

void model_set_dropout_seed(ls_model *m, uint64_t seed) { m->dropout_seed = seed; }

// The places of hidden dropout, each its own mask stream.
enum { DROP_EMBEDDINGS, DROP_HEAD_IN, DROP_CLASSIFIER_IN, DROP_LAYERS };
static int drop_attention_out(int l) { return DROP_LAYERS + 2 * l; }
static int drop_mlp_out(int l) { return DROP_LAYERS + 2 * l + 1; }

static int dropping(const ls_model *m) { return m->training && m->hidden_dropout > 0.0f; }

// out = dropout(inp) at place `place` (in place when out == inp). The backward
// of a dropout is the same call on the gradient: the mask is (seed, index).
static void hidden_dropout(const ls_model *m, float *out, const float *inp, size_t n, int place) {
    uint64_t domain = ls_seed_mix(m->dropout_seed, 0x4849444445ull); // "HIDDE": not LoRA's streams
    m->be->dropout(out, inp, n, m->hidden_dropout, ls_seed_mix(domain, (uint64_t)place));
}

// ----------------------------------------------------------------------------
// forward

static int check_batch(const ls_model *m, const int *tokens, const int *types, const int *keymask,
                       const int *labels, int B, int T) {
    if (!arch_is_encoder(m->cfg.family))
        return ls_fail("model_classify_forward: a %s model is not an encoder (expected bert or roberta)",
                       arch_family_name(m->cfg.family));
    if (!m->acts_memory || B > m->Bcap || T > m->Tcap || B <= 0 || T <= 0)
        return ls_fail("model_classify_forward: batch (%d, %d) exceeds the reservation (%d, %d); "
                       "call model_reserve", B, T, m->Bcap, m->Tcap);
    for (int i = 0; i < B * T; i++) {
        if (tokens[i] < 0 || tokens[i] >= m->V)
            return ls_fail("model_classify_forward: tokens[%d]: expected an id in [0, %d), found %d", i,
                           m->V, tokens[i]);
        if (types && (types[i] < 0 || types[i] >= m->cfg.type_vocab_size))
            return ls_fail("model_classify_forward: token_types[%d]: expected a type in [0, %d), found %d",
                           i, m->cfg.type_vocab_size, types[i]);
        if (keymask && keymask[i] != 0 && keymask[i] != 1)
            return ls_fail("model_classify_forward: mask[%d]: expected 0 or 1, found %d", i, keymask[i]);
    }
    for (int b = 0; labels && b < B; b++)
        if (labels[b] >= m->cfg.num_labels)
            return ls_fail("model_classify_forward: labels[%d]: expected a class in [0, %d), found %d", b,
                           m->cfg.num_labels, labels[b]);
    return 0;
}

// The first real token's position: the family's offset (RoBERTa's padding_idx
// + 1), after a prefix's l_p entries (transformers offsets the position ids
// by the cache's length, as PEFT's prefix tuning runs it).
static int first_position(const ls_model *m) { return m->cfg.position_offset + (m->prefix ? m->prefix->P : 0); }

// Embeddings, then the L post-LN layers; the last layer's output is returned.
static const float *encode(ls_model *m, int B, int T) {
    const ls_backend *be = m->be;
    ls_acts *a = &m->acts;
    ls_params *p = &m->params;
    int N = B * T;
    size_t C = m->C, NC = (size_t)N * C, att_l = model_att_floats(m, B, T);
    // word + position (from position_offset, after a prefix's l_p) + type, then LayerNorm
    be->embedding_forward(a->emb, m->tokens, p->wte, p->wpe, B, T, m->C, first_position(m));
    if (m->prompt) // prompt tuning: the virtual tokens' rows are prompt[p] + position p (prompt.h)
        prompt_embed_forward(be, a->emb, m->prompt->params, p->wpe + (size_t)m->cfg.position_offset * C, B, T,
                             m->prompt->P, m->C, 0);
    be->embedding_forward(a->tmp, m->types, p->wtt, NULL, B, T, m->C, 0);
    be->residual_forward(a->emb, a->emb, a->tmp, NC);
    be->layernorm_forward(a->encoded, a->emb_mean, a->emb_rstd, a->emb, p->embw, p->embb, N, m->C,
                          m->cfg.norm_eps);
    int drop = dropping(m);
    if (drop) hidden_dropout(m, a->encoded, a->encoded, NC, DROP_EMBEDDINGS);
    const float *x = a->encoded;
    for (int l = 0; l < m->L; l++) {
        float *qkv = a->qkv + (size_t)l * N * m->QKV, *att = a->att + l * att_l,
              *atty = a->atty + l * NC, *res2 = a->res2 + l * NC, *ln1 = a->ln1 + l * NC,
              *fc = a->fc + (size_t)l * N * m->F, *act = a->act + (size_t)l * N * m->H,
              *res3 = a->res3 + l * NC, *ln2 = a->ln2 + l * NC;
        model_linear_forward(m, l, LS_LIN_QKV, qkv, x, N);
        if (m->prefix) prefix_layer_forward(m->prefix, l, atty, qkv, B, T); // over [prefix; sequence]
        else be->attention_bidir_forward(atty, att, qkv, m->keymask, B, T, m->NH, m->HS);
        model_linear_forward(m, l, LS_LIN_O, a->tmp, atty, N);
        if (drop) hidden_dropout(m, a->tmp, a->tmp, NC, drop_attention_out(l));
        be->residual_forward(res2, x, a->tmp, NC);
        be->layernorm_forward(ln1, a->ln1_mean + (size_t)l * N, a->ln1_rstd + (size_t)l * N, res2,
                              p->ln1w + l * C, p->ln1b + l * C, N, m->C, m->cfg.norm_eps);
        model_linear_forward(m, l, LS_LIN_FC, fc, ln1, N);
        be->gelu_erf_forward(act, fc, (size_t)N * m->H);
        model_linear_forward(m, l, LS_LIN_DOWN, a->tmp, act, N);
        if (drop) hidden_dropout(m, a->tmp, a->tmp, NC, drop_mlp_out(l));
        be->residual_forward(res3, ln1, a->tmp, NC);
        be->layernorm_forward(ln2, a->ln2_mean + (size_t)l * N, a->ln2_rstd + (size_t)l * N, res3,
                              p->ln2w + l * C, p->ln2b + l * C, N, m->C, m->cfg.norm_eps);
        x = ln2;
    }
    return x;
}

// RoBERTa's head drops its [CLS] row before the dense as well (transformers'
// RobertaClassificationHead); BERT's pooler does not.
static int drops_head_in(const ls_model *m) { return m->cfg.family == LS_FAMILY_ROBERTA; }

// The classifier's input: the pooled output, after hidden dropout while training.
static const float *classifier_in(const ls_model *m) {
    if (m->cfg.pooling == LS_POOL_MEAN) return m->acts.pool_in; // dropped in place
    return dropping(m) ? m->acts.cls_in : m->acts.pooled;
}

// The head on the last hidden states h (B,T,C) -> clogits (B,NL).
static void head_forward(ls_model *m, const float *h, int B, int T) {
    const ls_backend *be = m->be;
    ls_acts *a = &m->acts;
    ls_params *p = &m->params;
    size_t C = m->C, BC = (size_t)B * C;
    int drop = dropping(m);
    if (m->cfg.pooling == LS_POOL_MEAN) {
        be->mean_pool_forward(a->pool_in, h, m->keymask, B, T, m->C);
        if (drop) hidden_dropout(m, a->pool_in, a->pool_in, BC, DROP_CLASSIFIER_IN);
    } else {
        for (int b = 0; b < B; b++) be->copy(a->pool_in + b * C, h + (size_t)b * T * C, C);
        if (drop && drops_head_in(m)) hidden_dropout(m, a->pool_in, a->pool_in, BC, DROP_HEAD_IN);
        be->matmul_forward(a->pool_pre, a->pool_in, p->headw, p->headb, B, m->C, m->C);
        be->tanh_forward(a->pooled, a->pool_pre, BC);
        if (drop) hidden_dropout(m, a->cls_in, a->pooled, BC, DROP_CLASSIFIER_IN);
    }
    be->matmul_forward(a->clogits, classifier_in(m), p->clsw, p->clsb, B, m->C, m->cfg.num_labels);
}

float model_classify_forward(ls_model *m, const int *tokens, const int *types, const int *keymask,
                             const int *labels, int B, int T) {
    int P = m->prompt ? m->prompt->P : 0; // prompt tuning: P virtual tokens before every row (prompt.h)
    if (check_batch(m, tokens, types, keymask, labels, B, T)) return -1.0f;
    if (T + P > m->Tcap)
        return ls_fail("model_classify_forward: %d tokens and %d virtual tokens exceed the reservation's %d "
                       "positions; call model_reserve", T, P, m->Tcap), -1.0f;
    if (first_position(m) + T + P > m->cfg.max_seq_len)
        return ls_fail("model_classify_forward: %d tokens after a prefix of %d exceed the model's %d positions", T,
                       m->prefix ? m->prefix->P : 0, m->cfg.max_seq_len - m->cfg.position_offset), -1.0f;
    const ls_backend *be = m->be;
    int T0 = T, N;
    T += P;
    N = B * T;
    m->B = B;
    m->T = T;
    // the rows as the model runs them: P virtual tokens (placeholder id 0,
    // type 0, kept: PEFT's mask of ones) then the sequence; absent types and
    // mask: all 0 / all kept
    int *host = ls_malloc((size_t)N * sizeof(int));
    for (int k = 0; k < 3; k++) {
        const int *src = k == 0 ? tokens : k == 1 ? types : keymask;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
                host[(size_t)b * T + t] =
                    t < P ? k == 2 : src ? src[(size_t)b * T0 + t - P] : k == 2;
        be->upload_int(k == 0 ? m->tokens : k == 1 ? m->types : m->keymask, host, N);
    }
    free(host);
    if (m->prefix) prefix_set_keymask(m->prefix, keymask, B, T);
    head_forward(m, encode(m, B, T), B, T);

    m->has_targets = labels != NULL;
    m->loss = 0.0;
    if (!labels) return 0.0f;
    ls_acts *a = &m->acts;
    be->upload_int(m->targets, labels, B);
    be->crossentropy_forward(a->losses, a->clogits, m->targets, B, m->cfg.num_labels, 0.0f);
    be->download(m->host_losses, a->losses, B);
    double wsum = 0.0, lsum = 0.0;
    for (int b = 0; b < B; b++) {
        float w = labels[b] >= 0 ? 1.0f : 0.0f;
        m->host_weights[b] = w;
        wsum += w;
        lsum += (double)w * m->host_losses[b];
    }
    m->weight_sum = wsum;
    m->loss = wsum > 0.0 ? lsum / wsum : 0.0;
    if (!isfinite(m->loss)) {
        ls_fail("model_classify_forward: the loss is %s (expected finite; the forward pass overflowed)",
                isnan(m->loss) ? "nan" : "inf");
        return -1.0f;
    }
    return (float)m->loss;
}

int model_hidden_states(const ls_model *m, int layer, float *host_out) {
    if (!arch_is_encoder(m->cfg.family) || layer < -1 || layer >= m->L || m->B <= 0)
        return ls_fail("model_hidden_states: layer: expected -1..%d after a forward of an encoder, found %d",
                       m->L - 1, layer);
    size_t NC = (size_t)m->B * m->T * m->C;
    const float *src = layer < 0 ? m->acts.encoded : m->acts.ln2 + (size_t)layer * NC;
    m->be->download(host_out, src, NC);
    return 0;
}

void model_class_logits(const ls_model *m, float *host_out) {
    m->be->download(host_out, m->acts.clogits, (size_t)m->B * m->cfg.num_labels);
}

// ----------------------------------------------------------------------------
// backward

// dclogits (B,NL) in a->clogits -> d (last hidden states) into dh (B,T,C), overwritten.
static void head_backward(ls_model *m, float *dh, int B, int T) {
    const ls_backend *be = m->be;
    ls_acts *a = &m->acts;
    ls_params *p = &m->params, *g = &m->grads;
    int train = m->grads_memory != NULL, dense = train && head_dense_trained(m);
    int dense_b = dense || (train && m->grad_scope == LS_GRADS_BIASES); // BitFit: the pooler's bias
    size_t C = m->C, BC = (size_t)B * C;
    int NL = m->cfg.num_labels, drop = dropping(m);
    be->matmul_backward(a->dpool, train ? g->clsw : NULL, train ? g->clsb : NULL, a->clogits, classifier_in(m),
                        p->clsw, B, m->C, NL);
    if (drop) hidden_dropout(m, a->dpool, a->dpool, BC, DROP_CLASSIFIER_IN);
    if (m->cfg.pooling == LS_POOL_MEAN) {
        be->mean_pool_backward(dh, a->dpool, m->keymask, B, T, m->C);
        return;
    }
    be->tanh_backward(a->dpool2, a->pooled, a->dpool, BC);
    be->matmul_backward(a->dpool, dense ? g->headw : NULL, dense_b ? g->headb : NULL, a->dpool2, a->pool_in,
                        p->headw, B, m->C, m->C);
    if (drop && drops_head_in(m)) hidden_dropout(m, a->dpool, a->dpool, BC, DROP_HEAD_IN);
    be->zero(dh, (size_t)B * T * C);
    for (int b = 0; b < B; b++) be->copy(dh + (size_t)b * T * C, a->dpool + b * C, C);
}

// One post-LN layer backward: *dx holds d loss / d (layer output) on entry and
// d loss / d (layer input) on return (when need_dx); the two (N,C) buffers swap.
static void layer_backward(ls_model *m, int l, float **dx, float **spare, int need_dx) {
    const ls_backend *be = m->be;
    ls_acts *a = &m->acts;
    ls_params *p = &m->params, *g = &m->grads;
    int B = m->B, T = m->T, N = B * T, tw = model_trains_weights(m, l), tb = model_trains_biases(m, l);
    size_t C = m->C, NC = (size_t)N * C, att_l = model_att_floats(m, B, T);
    const float *x = l == 0 ? a->encoded : a->ln2 + (size_t)(l - 1) * NC;
    float *qkv = a->qkv + (size_t)l * N * m->QKV, *att = a->att + l * att_l, *atty = a->atty + l * NC,
          *res2 = a->res2 + l * NC, *ln1 = a->ln1 + l * NC, *fc = a->fc + (size_t)l * N * m->F,
          *act = a->act + (size_t)l * N * m->H, *res3 = a->res3 + l * NC;
    float *dy = *dx, *d = *spare;
    int drop = dropping(m);
    // through LN2: d = d res3 (= d of the MLP output and, by the skip, part of d ln1)
    be->zero(d, NC);
    be->layernorm_backward(d, tw ? g->ln2w + l * C : NULL, tb ? g->ln2b + l * C : NULL, dy, res3,
                           p->ln2w + l * C, a->ln2_mean + (size_t)l * N, a->ln2_rstd + (size_t)l * N, N, m->C);
    if (drop) hidden_dropout(m, a->tmp, d, NC, drop_mlp_out(l)); // the MLP's share of d, through its mask
    model_linear_backward(m, l, LS_LIN_DOWN, a->dact, drop ? a->tmp : d, act, N);
    be->gelu_erf_backward(a->dfc, fc, a->dact, (size_t)N * m->H);
    model_linear_backward(m, l, LS_LIN_FC, a->tmp, a->dfc, ln1, N);
    be->axpy(a->tmp, d, NC, 1.0f); // tmp = d ln1
    // through LN1: dy = d res2 (= d of the attention output and, by the skip, part of d x)
    be->zero(dy, NC);
    be->layernorm_backward(dy, tw ? g->ln1w + l * C : NULL, tb ? g->ln1b + l * C : NULL, a->tmp, res2,
                           p->ln1w + l * C, a->ln1_mean + (size_t)l * N, a->ln1_rstd + (size_t)l * N, N, m->C);
    if (drop) hidden_dropout(m, a->tmp, dy, NC, drop_attention_out(l)); // tmp (d ln1) is spent
    model_linear_backward(m, l, LS_LIN_O, a->datty, drop ? a->tmp : dy, atty, N);
    if (m->prefix) prefix_layer_backward(m->prefix, l, a->dqkv, a->datty, qkv, B, T);
    else be->attention_bidir_backward(a->dqkv, a->datt, a->datty, qkv, att, m->keymask, B, T, m->NH, m->HS);
    model_linear_backward(m, l, LS_LIN_QKV, need_dx ? d : NULL, a->dqkv, x, N);
    if (!need_dx) return;
    be->axpy(d, dy, NC, 1.0f); // d x = QKV path + skip
    *dx = d;
    *spare = dy;
}

void model_classify_backward(ls_model *m, float loss_scale) {
    const ls_backend *be = m->be;
    ls_assert(m->has_targets && arch_is_encoder(m->cfg.family));
    int B = m->B, T = m->T, N = B * T, NL = m->cfg.num_labels;
    ls_acts *a = &m->acts;
    size_t NC = (size_t)N * m->C;
    for (int b = 0; b < B; b++)
        m->host_losses[b] =
            m->weight_sum > 0.0 ? (float)(loss_scale * m->host_weights[b] / m->weight_sum) : 0.0f;
    be->upload(a->dlosses, m->host_losses, B);
    be->crossentropy_backward(a->clogits, a->clogits, m->targets, a->dlosses, B, NL, 0.0f);
    float *dx = a->dres, *spare = a->dln;
    head_backward(m, dx, B, T);
    for (int l = m->L - 1; l >= model_backward_floor(m); l--) layer_backward(m, l, &dx, &spare, model_needs_dx(m, l));
    int tw = model_trains_weights(m, -1), tb = model_trains_biases(m, -1);
    if (tw || tb || m->prompt) { // full fine-tuning, BitFit's embedding LayerNorm bias, prompt tuning
        ls_params *p = &m->params, *g = &m->grads;
        if (dropping(m)) hidden_dropout(m, dx, dx, NC, DROP_EMBEDDINGS);
        be->zero(spare, NC);
        be->layernorm_backward(spare, tw ? g->embw : NULL, tw || tb ? g->embb : NULL, dx, a->emb, p->embw,
                               a->emb_mean, a->emb_rstd, N, m->C);
    }
    if (m->prompt) prompt_embed_backward(be, m->prompt->grads, spare, B, T, m->prompt->P, m->C);
    if (tw) {
        ls_params *g = &m->grads;
        // word and position rows (positions start at position_offset), then the type rows
        be->embedding_backward(g->wte, g->wpe + (size_t)first_position(m) * m->C, spare, m->tokens, B, T, m->C);
        be->embedding_backward(g->wtt, NULL, spare, m->types, B, T, m->C);
    }
    m->has_targets = 0;
}

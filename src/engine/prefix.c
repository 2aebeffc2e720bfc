// prefix: attention with trainable prefix keys and values (prefix.h).
#include "engine/prefix.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "engine/backend_registry.h"
#include "engine/model.h"
#include "engine/rng.h"

// ----------------------------------------------------------------------------
// the op pair

// Key / value j of (b, kh) among the P prefix entries then the sequence's T.
static const float *key_at(const float *qkv, const float *pk, int b, int j, int kh, int T, int P, int NH, int NKV,
                           int HS) {
    if (j < P) return pk + ((size_t)j * NKV + kh) * HS;
    return qkv + (((size_t)b * T + (j - P)) * (NH + 2 * NKV) + NH + kh) * HS;
}

static const float *value_at(const float *qkv, const float *pv, int b, int j, int kh, int T, int P, int NH, int NKV,
                             int HS) {
    if (j < P) return pv + ((size_t)j * NKV + kh) * HS;
    return qkv + (((size_t)b * T + (j - P)) * (NH + 2 * NKV) + NH + NKV + kh) * HS;
}

void prefix_attention_forward(float *out, float *att, const float *qkv, const float *pk, const float *pv, int B,
                              int T, int P, int NH, int NKV, int HS) {
    int RH = NH + 2 * NKV, S = P + T;
    double scale = 1.0 / sqrt((double)HS);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            int kh = h / (NH / NKV);
            for (int t = 0; t < T; t++) {
                const float *q = qkv + (((size_t)b * T + t) * RH + h) * HS;
                float *p = att + (((size_t)b * NH + h) * T + t) * S;
                int n = P + t + 1; // visible: every prefix entry, then 0..t
                double mx = -INFINITY, z = 0.0;
                for (int j = 0; j < n; j++) {
                    const float *k = key_at(qkv, pk, b, j, kh, T, P, NH, NKV, HS);
                    double d = 0.0;
                    for (int i = 0; i < HS; i++) d += (double)q[i] * k[i];
                    p[j] = (float)(d * scale);
                    if (p[j] > mx) mx = p[j];
                }
                for (int j = 0; j < n; j++) z += exp((double)p[j] - mx);
                for (int j = 0; j < n; j++) p[j] = (float)(exp((double)p[j] - mx) / z);
                for (int j = n; j < S; j++) p[j] = 0.0f;
                float *o = out + (((size_t)b * T + t) * NH + h) * HS;
                for (int i = 0; i < HS; i++) {
                    double acc = 0.0;
                    for (int j = 0; j < n; j++) acc += (double)p[j] * value_at(qkv, pv, b, j, kh, T, P, NH, NKV, HS)[i];
                    o[i] = (float)acc;
                }
            }
        }
}

void prefix_attention_backward(float *dqkv, float *dpk, float *dpv, float *dp, const float *dout, const float *qkv,
                               const float *pk, const float *pv, const float *att, int B, int T, int P, int NH,
                               int NKV, int HS) {
    int RH = NH + 2 * NKV, S = P + T;
    float scale = (float)(1.0 / sqrt((double)HS));
    memset(dqkv, 0, sizeof(float) * (size_t)B * T * RH * HS);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            int kh = h / (NH / NKV);
            for (int t = 0; t < T; t++) {
                const float *q = qkv + (((size_t)b * T + t) * RH + h) * HS, *p = att + (((size_t)b * NH + h) * T + t) * S;
                const float *g = dout + (((size_t)b * T + t) * NH + h) * HS;
                float *dq = dqkv + (((size_t)b * T + t) * RH + h) * HS;
                int n = P + t + 1;
                double sum = 0.0;
                for (int j = 0; j < n; j++) { // dp_j = dout . v_j; the softmax's Jacobian needs sum_j p_j dp_j
                    const float *v = value_at(qkv, pv, b, j, kh, T, P, NH, NKV, HS);
                    double d = 0.0;
                    for (int i = 0; i < HS; i++) d += (double)g[i] * v[i];
                    dp[j] = (float)d;
                    sum += (double)p[j] * d;
                }
                for (int j = 0; j < n; j++) {
                    float ds = (float)((double)p[j] * ((double)dp[j] - sum)) * scale;
                    const float *k = key_at(qkv, pk, b, j, kh, T, P, NH, NKV, HS);
                    float *dk = j < P ? dpk + ((size_t)j * NKV + kh) * HS
                                      : dqkv + (((size_t)b * T + (j - P)) * RH + NH + kh) * HS;
                    float *dv = j < P ? dpv + ((size_t)j * NKV + kh) * HS
                                      : dqkv + (((size_t)b * T + (j - P)) * RH + NH + NKV + kh) * HS;
                    for (int i = 0; i < HS; i++) {
                        dq[i] += ds * k[i];
                        dk[i] += ds * q[i];
                        dv[i] += p[j] * g[i];
                    }
                }
            }
        }
}

// ----------------------------------------------------------------------------
// build / free

int prefix_build(ls_prefix *pf, ls_model *m, int P, uint64_t seed) {
    memset(pf, 0, sizeof *pf);
    if (P < 1 || P > 4096) return ls_fail("prefix length (--prefix-len): expected 1..4096, found %d", P);
    pf->bidir = arch_is_encoder(m->cfg.family);
    if (pf->bidir && m->NKV != m->NH)
        return ls_fail("prefix-layer: a %s model with %d key-value heads for %d query heads: expected as many",
                       arch_family_name(m->cfg.family), m->NKV, m->NH);
    pf->P = P;
    pf->L = m->L;
    pf->NH = m->NH;
    pf->NKV = m->NKV;
    pf->HS = m->HS;
    pf->be = m->be;
    pf->per_layer = 2 * (size_t)P * m->NKV * m->HS;
    pf->n_params = pf->per_layer * (size_t)m->L;
    pf->params = pf->be->alloc(pf->n_params);
    pf->grads = pf->be->alloc(pf->n_params);
    float *host = ls_malloc(pf->n_params * sizeof(float));
    ls_rng rng;
    ls_rng_seed(&rng, ls_seed_mix(seed ^ 0x707265666978ull, 0)); // "prefix"
    for (size_t i = 0; i < pf->n_params; i++) host[i] = (float)ls_rng_normal(&rng);
    pf->be->upload(pf->params, host, pf->n_params);
    free(host);
    pf->composed = pf->bidir || m->be != ls_backend_cpu(); // an encoder: the backend's masked attention
    m->prefix = pf;
    if (m->Bcap > 0) prefix_reserve(pf, m->Bcap, m->Tcap);
    return 0;
}

// The buffers of the path in use; the other path's are freed.
static void prefix_free_buffers(ls_prefix *pf) {
    free(pf->dp);
    if (pf->composed) {
        float *bufs[6] = {pf->att, pf->qkv2, pf->dqkv2, pf->out2, pf->dout2, pf->datt2};
        for (int i = 0; i < 6; i++)
            if (bufs[i]) pf->be->free(bufs[i]);
    } else {
        free(pf->att);
    }
    if (pf->keymask2) pf->be->free_int(pf->keymask2);
    pf->keymask2 = NULL;
    pf->att = pf->dp = pf->qkv2 = pf->dqkv2 = pf->out2 = pf->dout2 = pf->datt2 = NULL;
    pf->att_cap = 0;
    pf->Bcap = pf->Tcap = 0;
}

void prefix_set_composed(ls_prefix *pf, ls_model *m, int composed) {
    ls_assert(composed || (pf->be == ls_backend_cpu() && !pf->bidir));
    prefix_free_buffers(pf);
    pf->composed = composed;
    if (m->Bcap > 0) prefix_reserve(pf, m->Bcap, m->Tcap);
}

int prefix_init_from_tokens(ls_prefix *pf, ls_model *m, const int *tokens) {
    int P = pf->P, was_training = m->training;
    m->prefix = NULL;
    model_set_training(m, 0);
    float rc = pf->bidir ? model_classify_forward(m, tokens, NULL, NULL, NULL, 1, P)
                         : model_forward(m, tokens, NULL, NULL, 1, P, 0.0f);
    model_set_training(m, was_training);
    m->prefix = pf;
    if (rc < 0.0f) return ls_fail_prefix("prefix init from text");
    for (int l = 0; l < pf->L; l++) // the keys (after RoPE) and values of the text's P positions
        model_kv_rows(m, l, P, prefix_keys(pf, l), prefix_values(pf, l));
    return 0;
}

void prefix_free(ls_prefix *pf, ls_model *m) {
    if (m && m->prefix == pf) m->prefix = NULL;
    prefix_free_buffers(pf);
    if (pf->params) pf->be->free(pf->params);
    if (pf->grads) pf->be->free(pf->grads);
    memset(pf, 0, sizeof *pf);
}

void prefix_reserve(ls_prefix *pf, int B, int T) {
    if (B <= pf->Bcap && T <= pf->Tcap) return;
    if (B < pf->Bcap) B = pf->Bcap;
    if (T < pf->Tcap) T = pf->Tcap;
    int composed = pf->composed;
    prefix_free_buffers(pf);
    pf->Bcap = B;
    pf->Tcap = T;
    if (!composed) {
        pf->att_cap = (size_t)B * pf->NH * T * (pf->P + T);
        pf->att = ls_malloc(pf->att_cap * (size_t)pf->L * sizeof(float));
        pf->dp = ls_malloc((size_t)(pf->P + T) * sizeof(float));
        return;
    }
    const ls_backend *be = pf->be;
    size_t att, datt, rows = (size_t)B * (pf->P + T);
    be->attention_sizes(B, pf->P + T, pf->NH, pf->HS, &att, &datt);
    pf->att_cap = att;
    pf->att = be->alloc(att * (size_t)pf->L);
    pf->datt2 = be->alloc(datt);
    pf->qkv2 = be->alloc(rows * (pf->NH + 2 * pf->NKV) * pf->HS);
    pf->dqkv2 = be->alloc(rows * (pf->NH + 2 * pf->NKV) * pf->HS);
    pf->out2 = be->alloc(rows * pf->NH * pf->HS);
    pf->dout2 = be->alloc(rows * pf->NH * pf->HS);
    if (pf->bidir) pf->keymask2 = be->alloc_int(rows);
}

void prefix_zero_grad(ls_prefix *pf) { pf->be->zero(pf->grads, pf->n_params); }

float *prefix_keys(const ls_prefix *pf, int l) { return pf->params + (size_t)l * pf->per_layer; }
float *prefix_values(const ls_prefix *pf, int l) { return prefix_keys(pf, l) + pf->per_layer / 2; }
float *prefix_dkeys(const ls_prefix *pf, int l) { return pf->grads + (size_t)l * pf->per_layer; }
float *prefix_dvalues(const ls_prefix *pf, int l) { return prefix_dkeys(pf, l) + pf->per_layer / 2; }

void prefix_peft_layout(const ls_prefix *pf, float *buf, float *peft, int to_peft) {
    size_t kv = (size_t)pf->NKV * pf->HS, row = 2 * (size_t)pf->L * kv;
    float *host = ls_malloc(pf->n_params * sizeof(float));
    if (to_peft) pf->be->download(host, buf, pf->n_params);
    for (int p = 0; p < pf->P; p++)
        for (int l = 0; l < pf->L; l++)
            for (int s = 0; s < 2; s++) { // PEFT's entry 2l + s of row p; ours: layer l, keys (s 0) or values, row p
                float *ours = host + (size_t)l * pf->per_layer + (size_t)s * pf->per_layer / 2 + (size_t)p * kv;
                float *theirs = peft + (size_t)p * row + (2 * (size_t)l + s) * kv;
                if (to_peft) memcpy(theirs, ours, kv * sizeof(float));
                else memcpy(ours, theirs, kv * sizeof(float));
            }
    if (!to_peft) pf->be->upload(buf, host, pf->n_params);
    free(host);
}

// ----------------------------------------------------------------------------
// a layer's attention with the prefix, on the model's backend

// qkv (B,T,RH,HS) and layer l's prefix -> pf->qkv2 (B,P+T,RH,HS): per sequence
// the P prefix rows (queries 0, the prefix's keys and values), then its T rows.
static void pack_qkv(ls_prefix *pf, int l, const float *qkv, int B, int T) {
    const ls_backend *be = pf->be;
    int P = pf->P, T2 = P + T;
    size_t row = (size_t)(pf->NH + 2 * pf->NKV) * pf->HS, kv = (size_t)pf->NKV * pf->HS, q = (size_t)pf->NH * pf->HS;
    for (int b = 0; b < B; b++) {
        float *seq = pf->qkv2 + (size_t)b * T2 * row;
        be->zero(seq, (size_t)P * row);
        be->copy_rows(seq + q, row, prefix_keys(pf, l), kv, P, (int)kv, 0);
        be->copy_rows(seq + q + kv, row, prefix_values(pf, l), kv, P, (int)kv, 0);
        be->copy(seq + (size_t)P * row, qkv + (size_t)b * T * row, (size_t)T * row);
    }
}

void prefix_layer_forward(ls_prefix *pf, int l, float *out, const float *qkv, int B, int T) {
    int P = pf->P, NH = pf->NH, NKV = pf->NKV, HS = pf->HS;
    if (!pf->composed) {
        prefix_attention_forward(out, pf->att + l * pf->att_cap, qkv, prefix_keys(pf, l), prefix_values(pf, l), B, T,
                                 P, NH, NKV, HS);
        return;
    }
    const ls_backend *be = pf->be;
    int T2 = P + T;
    size_t od = (size_t)NH * HS;
    pack_qkv(pf, l, qkv, B, T);
    if (pf->bidir)
        be->attention_bidir_forward(pf->out2, pf->att + l * pf->att_cap, pf->qkv2, pf->keymask2, B, T2, NH, HS);
    else
        be->attention_forward(pf->out2, pf->att + l * pf->att_cap, pf->qkv2, B, T2, NH, NKV, HS);
    for (int b = 0; b < B; b++)
        be->copy(out + (size_t)b * T * od, pf->out2 + ((size_t)b * T2 + P) * od, (size_t)T * od);
}

void prefix_layer_backward(ls_prefix *pf, int l, float *dqkv, const float *dout, const float *qkv, int B, int T) {
    int P = pf->P, NH = pf->NH, NKV = pf->NKV, HS = pf->HS;
    if (!pf->composed) {
        prefix_attention_backward(dqkv, prefix_dkeys(pf, l), prefix_dvalues(pf, l), pf->dp, dout, qkv,
                                  prefix_keys(pf, l), prefix_values(pf, l), pf->att + l * pf->att_cap, B, T, P, NH,
                                  NKV, HS);
        return;
    }
    const ls_backend *be = pf->be;
    int T2 = P + T;
    size_t row = (size_t)(NH + 2 * NKV) * HS, kv = (size_t)NKV * HS, od = (size_t)NH * HS;
    pack_qkv(pf, l, qkv, B, T); // the forward's (another layer has used the buffer since)
    for (int b = 0; b < B; b++) {
        float *seq = pf->dout2 + (size_t)b * T2 * od;
        be->zero(seq, (size_t)P * od);
        be->copy(seq + (size_t)P * od, dout + (size_t)b * T * od, (size_t)T * od);
    }
    if (pf->bidir)
        be->attention_bidir_backward(pf->dqkv2, pf->datt2, pf->dout2, pf->qkv2, pf->att + l * pf->att_cap,
                                     pf->keymask2, B, T2, NH, HS);
    else
        be->attention_backward(pf->dqkv2, pf->datt2, pf->dout2, pf->qkv2, pf->att + l * pf->att_cap, B, T2, NH, NKV,
                               HS);
    for (int b = 0; b < B; b++) {
        const float *seq = pf->dqkv2 + (size_t)b * T2 * row;
        be->copy(dqkv + (size_t)b * T * row, seq + (size_t)P * row, (size_t)T * row);
        be->copy_rows(prefix_dkeys(pf, l), kv, seq + od, row, P, (int)kv, 1);
        be->copy_rows(prefix_dvalues(pf, l), kv, seq + od + kv, row, P, (int)kv, 1);
    }
}

void prefix_set_keymask(ls_prefix *pf, const int *keymask, int B, int T) {
    ls_assert(pf->bidir && B <= pf->Bcap && T <= pf->Tcap);
    int T2 = pf->P + T;
    int *host = ls_malloc((size_t)B * T2 * sizeof(int));
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T2; t++) host[(size_t)b * T2 + t] = t < pf->P || !keymask || keymask[(size_t)b * T + t - pf->P];
    pf->be->upload_int(pf->keymask2, host, (size_t)B * T2);
    free(host);
}

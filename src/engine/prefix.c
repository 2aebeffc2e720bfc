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
    if (arch_is_encoder(m->cfg.family))
        return ls_fail("prefix-layer: a %s model: expected a decoder (gpt2 or llama; encoders are not wired)",
                       arch_family_name(m->cfg.family));
    if (m->be != ls_backend_cpu()) return ls_fail("prefix-layer: expected the cpu backend (host memory), found another");
    pf->P = P;
    pf->L = m->L;
    pf->NH = m->NH;
    pf->NKV = m->NKV;
    pf->HS = m->HS;
    pf->per_layer = 2 * (size_t)P * m->NKV * m->HS;
    pf->n_params = pf->per_layer * (size_t)m->L;
    pf->params = ls_malloc(pf->n_params * sizeof(float));
    pf->grads = ls_calloc(pf->n_params, sizeof(float));
    ls_rng rng;
    ls_rng_seed(&rng, ls_seed_mix(seed ^ 0x707265666978ull, 0)); // "prefix"
    for (size_t i = 0; i < pf->n_params; i++) pf->params[i] = (float)ls_rng_normal(&rng);
    m->prefix = pf;
    if (m->Bcap > 0) prefix_reserve(pf, m->Bcap, m->Tcap);
    return 0;
}

int prefix_init_from_tokens(ls_prefix *pf, ls_model *m, const int *tokens) {
    int P = pf->P, was_training = m->training;
    m->prefix = NULL;
    model_set_training(m, 0);
    float rc = model_forward(m, tokens, NULL, NULL, 1, P, 0.0f);
    model_set_training(m, was_training);
    m->prefix = pf;
    if (rc < 0.0f) return ls_fail_prefix("prefix init from text");
    size_t kv = (size_t)pf->NKV * pf->HS, row = (size_t)(pf->NH + 2 * pf->NKV) * pf->HS;
    for (int l = 0; l < pf->L; l++) {
        const float *qkv = m->acts.qkv + (size_t)l * P * m->QKV; // host memory: the CPU backend
        for (int p = 0; p < P; p++) {
            memcpy(prefix_keys(pf, l) + (size_t)p * kv, qkv + (size_t)p * row + (size_t)pf->NH * pf->HS,
                   kv * sizeof(float));
            memcpy(prefix_values(pf, l) + (size_t)p * kv, qkv + (size_t)p * row + (size_t)(pf->NH + pf->NKV) * pf->HS,
                   kv * sizeof(float));
        }
    }
    return 0;
}

void prefix_free(ls_prefix *pf, ls_model *m) {
    if (m && m->prefix == pf) m->prefix = NULL;
    free(pf->params);
    free(pf->grads);
    free(pf->att);
    free(pf->dp);
    memset(pf, 0, sizeof *pf);
}

void prefix_reserve(ls_prefix *pf, int B, int T) {
    size_t need = (size_t)B * pf->NH * T * (pf->P + T);
    if (need > pf->att_cap) {
        free(pf->att);
        pf->att = ls_malloc(need * (size_t)pf->L * sizeof(float));
        pf->att_cap = need;
    }
    if (T > pf->Tcap) {
        free(pf->dp);
        pf->dp = ls_malloc((size_t)(pf->P + T) * sizeof(float));
        pf->Tcap = T;
    }
}

void prefix_zero_grad(ls_prefix *pf) { memset(pf->grads, 0, pf->n_params * sizeof(float)); }

float *prefix_keys(const ls_prefix *pf, int l) { return pf->params + (size_t)l * pf->per_layer; }
float *prefix_values(const ls_prefix *pf, int l) { return prefix_keys(pf, l) + pf->per_layer / 2; }
float *prefix_dkeys(const ls_prefix *pf, int l) { return pf->grads + (size_t)l * pf->per_layer; }
float *prefix_dvalues(const ls_prefix *pf, int l) { return prefix_dkeys(pf, l) + pf->per_layer / 2; }

void prefix_peft_layout(const ls_prefix *pf, float *buf, float *peft, int to_peft) {
    size_t kv = (size_t)pf->NKV * pf->HS, row = 2 * (size_t)pf->L * kv;
    for (int p = 0; p < pf->P; p++)
        for (int l = 0; l < pf->L; l++)
            for (int s = 0; s < 2; s++) { // PEFT's entry 2l + s of row p; ours: layer l, keys (s 0) or values, row p
                float *ours = buf + (size_t)l * pf->per_layer + (size_t)s * pf->per_layer / 2 + (size_t)p * kv;
                float *theirs = peft + (size_t)p * row + (2 * (size_t)l + s) * kv;
                if (to_peft) memcpy(theirs, ours, kv * sizeof(float));
                else memcpy(ours, theirs, kv * sizeof(float));
            }
}

// prompt: trainable virtual token embeddings before every sequence (prompt.h).
#include "engine/prompt.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "engine/backend_registry.h"
#include "engine/model.h"
#include "engine/rng.h"

// ----------------------------------------------------------------------------
// the op pair

void prompt_embed_forward(const ls_backend *be, float *out, const float *prompt, const float *wpe, int B, int T,
                          int P, int C, int pos0) {
    int rows = P - pos0 < T ? P - pos0 : T; // the virtual rows among positions pos0..pos0+T-1
    for (int b = 0; b < B && rows > 0; b++) {
        float *o = out + (size_t)b * T * C;
        be->copy_rows(o, (size_t)C, prompt + (size_t)pos0 * C, (size_t)C, rows, C, 0);
        if (wpe) be->copy_rows(o, (size_t)C, wpe + (size_t)pos0 * C, (size_t)C, rows, C, 1);
    }
}

void prompt_embed_backward(const ls_backend *be, float *dprompt, const float *dout, int B, int T, int P, int C) {
    int rows = P < T ? P : T;
    for (int b = 0; b < B; b++) // summed over the batch in batch order
        be->copy_rows(dprompt, (size_t)C, dout + (size_t)b * T * C, (size_t)C, rows, C, 1);
}

// ----------------------------------------------------------------------------
// the extended batch

int prompt_extend(ls_prompt *pr, const int **tokens, const int **targets, const float **mask, int B, int *T) {
    int P = pr->P, T0 = *T, Tp = P + T0;
    if (B <= 0 || T0 <= 0 || (size_t)B * Tp > pr->cap)
        return ls_fail("model_forward: batch (%d, %d) with %d virtual tokens exceeds the reservation (%zu cells); "
                       "call model_reserve", B, T0, P, pr->cap);
    for (int b = 0; b < B; b++) {
        int *tok = pr->tokens + (size_t)b * Tp, *tgt = pr->targets + (size_t)b * Tp;
        float *msk = pr->mask + (size_t)b * Tp;
        for (int p = 0; p < P; p++) { // placeholders: prompt_embed_forward writes their embeddings
            tok[p] = 0;
            tgt[p] = -1;
            msk[p] = 0.0f;
        }
        memcpy(tok + P, *tokens + (size_t)b * T0, (size_t)T0 * sizeof(int));
        if (*targets) memcpy(tgt + P, *targets + (size_t)b * T0, (size_t)T0 * sizeof(int));
        if (*mask) memcpy(msk + P, *mask + (size_t)b * T0, (size_t)T0 * sizeof(float));
        else for (int t = 0; t < T0; t++) msk[P + t] = 1.0f;
    }
    *tokens = pr->tokens;
    if (*targets) *targets = pr->targets;
    *mask = pr->mask;
    *T = Tp;
    return 0;
}

// ----------------------------------------------------------------------------
// build / free

int prompt_build(ls_prompt *pr, ls_model *m, int P, uint64_t seed) {
    memset(pr, 0, sizeof *pr);
    if (P < 1 || P > 4096) return ls_fail("prefix length (--prefix-len): expected 1..4096, found %d", P);
    if (m->prefix) return ls_fail("prefix-embed: expected no prefix-layer prefix attached, found one");
    if (P >= m->P)
        return ls_fail("prefix length (--prefix-len): expected fewer than the model's %d positions, found %d", m->P, P);
    pr->P = P;
    pr->C = m->C;
    pr->n_params = (size_t)P * m->C;
    pr->be = m->be;
    pr->params = pr->be->alloc(pr->n_params);
    pr->grads = pr->be->alloc(pr->n_params);
    float *host = ls_malloc(pr->n_params * sizeof(float));
    ls_rng rng;
    ls_rng_seed(&rng, ls_seed_mix(seed ^ 0x70726f6d7074ull, 0)); // "prompt"
    for (size_t i = 0; i < pr->n_params; i++) host[i] = (float)ls_rng_normal(&rng);
    pr->be->upload(pr->params, host, pr->n_params);
    free(host);
    m->prompt = pr;
    if (m->Bcap > 0 && model_reserve(m, m->Bcap, m->Tcap)) { // the same rows, P positions longer
        prompt_free(pr, m);
        return -1;
    }
    return 0;
}

int prompt_init_from_tokens(ls_prompt *pr, ls_model *m, const int *tokens) {
    for (int p = 0; p < pr->P; p++) {
        if (tokens[p] < 0 || tokens[p] >= m->V)
            return ls_fail("prefix-embed init: token %d: expected an id in [0, %d), found %d", p, m->V, tokens[p]);
        pr->be->copy(pr->params + (size_t)p * pr->C, m->params.wte + (size_t)tokens[p] * pr->C, (size_t)pr->C);
    }
    return 0;
}

void prompt_free(ls_prompt *pr, ls_model *m) {
    if (m && m->prompt == pr) m->prompt = NULL;
    if (pr->params) pr->be->free(pr->params);
    if (pr->grads) pr->be->free(pr->grads);
    free(pr->tokens);
    free(pr->targets);
    free(pr->mask);
    if (pr->kv) pr->be->free(pr->kv);
    memset(pr, 0, sizeof *pr);
}

void prompt_reserve(ls_prompt *pr, int B, int Tp) {
    size_t need = (size_t)B * Tp;
    if (need <= pr->cap) return;
    free(pr->tokens);
    free(pr->targets);
    free(pr->mask);
    pr->tokens = ls_malloc(need * sizeof(int));
    pr->targets = ls_malloc(need * sizeof(int));
    pr->mask = ls_malloc(need * sizeof(float));
    pr->cap = need;
}

void prompt_zero_grad(ls_prompt *pr) { pr->be->zero(pr->grads, pr->n_params); }

// ----------------------------------------------------------------------------
// decoding

int prompt_cache_rows(ls_prompt *pr, ls_model *m) {
    int tok = 0; // any id: the rows kept are the virtual tokens', which causal attention keeps from seeing it
    if (model_reserve(m, 1, 1) || model_forward(m, &tok, NULL, NULL, 1, 1, 0.0f) < 0.0f) return -1;
    size_t kv = (size_t)m->NKV * m->HS;
    if (!pr->kv) {
        pr->L = m->L;
        pr->KV = (int)kv;
        pr->kv = pr->be->alloc((size_t)m->L * 2 * pr->P * kv);
    }
    for (int l = 0; l < m->L; l++) // the virtual tokens' rows of the (1, P + 1) forward
        model_kv_rows(m, l, pr->P, (float *)prompt_cache_keys(pr, l), (float *)prompt_cache_values(pr, l));
    return 0;
}

const float *prompt_cache_keys(const ls_prompt *pr, int l) { return pr->kv + (size_t)l * 2 * pr->P * pr->KV; }
const float *prompt_cache_values(const ls_prompt *pr, int l) { return prompt_cache_keys(pr, l) + (size_t)pr->P * pr->KV; }

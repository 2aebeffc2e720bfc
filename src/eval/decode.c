// decode: greedy and beam search over the engine's KV-cache decode path (see decode.h).
#include "eval/decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

gen_config gen_config_paper(int eos) {
    // Table 11 (E2E): beam size 10, length penalty 0.9, no repeat n-gram size 4;
    // microsoft/LoRA's README runs gpt2_beam.py with --eval_len 64.
    return (gen_config){.max_new_tokens = 64, .eos = eos, .beam_size = 10,
                        .length_penalty = 0.9f, .no_repeat_ngram = 4};
}

gen_config gen_config_greedy(int max_new_tokens, int eos) {
    return (gen_config){.max_new_tokens = max_new_tokens, .eos = eos, .beam_size = 1,
                        .length_penalty = 1.0f, .no_repeat_ngram = 0};
}

double gen_score(double logprob, int n, float length_penalty) {
    return logprob / pow((double)n, (double)length_penalty);
}

void gen_hyp_free(gen_hyp *h) {
    free(h->tokens);
    memset(h, 0, sizeof *h);
}

void gen_result_free(gen_result *r) {
    for (int i = 0; i < r->n_hyps; i++) gen_hyp_free(&r->hyps[i]);
    free(r->hyps);
    memset(r, 0, sizeof *r);
}

// ----------------------------------------------------------------------------
// checks, n-gram ban, log-softmax

static int check_inputs(const ls_model *m, const int *prompt, int n_prompt, const gen_config *cfg,
                        int *max_new) {
    int room_all = m->P - model_cache_offset(m); // positions left after a prefix's slots
    if (n_prompt < 1 || n_prompt > room_all)
        return ls_fail("decode: prompt: expected 1..%d tokens (max_seq_len %d less a prefix of %d), found %d", room_all,
                       m->P, model_cache_offset(m), n_prompt);
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= m->V)
            return ls_fail("decode: prompt[%d]: expected a token id in [0, %d), found %d", i, m->V, prompt[i]);
    if (cfg->max_new_tokens < 1)
        return ls_fail("decode: max_new_tokens: expected >= 1, found %d", cfg->max_new_tokens);
    if (cfg->beam_size < 1) return ls_fail("decode: beam_size: expected >= 1, found %d", cfg->beam_size);
    if (cfg->no_repeat_ngram < 0)
        return ls_fail("decode: no_repeat_ngram: expected >= 0, found %d", cfg->no_repeat_ngram);
    if (cfg->eos < -1 || cfg->eos >= m->V)
        return ls_fail("decode: eos: expected -1 or a token id in [0, %d), found %d", m->V, cfg->eos);
    if (cfg->n_stop_tokens < 0 || (cfg->n_stop_tokens > 0 && !cfg->stop_tokens))
        return ls_fail("decode: stop_tokens: expected a list of n_stop_tokens >= 0 ids, found %d and %s",
                       cfg->n_stop_tokens, cfg->stop_tokens ? "a list" : "NULL");
    for (int i = 0; i < cfg->n_stop_tokens; i++)
        if (cfg->stop_tokens[i] < 0 || cfg->stop_tokens[i] >= m->V)
            return ls_fail("decode: stop_tokens[%d]: expected a token id in [0, %d), found %d", i, m->V,
                           cfg->stop_tokens[i]);
    if (!isfinite(cfg->length_penalty))
        return ls_fail("decode: length_penalty: expected a finite number, found %g", cfg->length_penalty);
    // generated token k is fed at position n_prompt + k; the last one is never fed
    int room = room_all - n_prompt + 1;
    *max_new = cfg->max_new_tokens < room ? cfg->max_new_tokens : room;
    return 0;
}

static int ends_hypothesis(const gen_config *cfg, int token) {
    if (token == cfg->eos) return 1;
    for (int i = 0; i < cfg->n_stop_tokens; i++)
        if (token == cfg->stop_tokens[i]) return 1;
    return 0;
}

// fairseq's no-repeat-n-gram rule on the generated tokens gen[0..len): bans
// (banned[t] = 1) every t such that gen[len-n+1 .. len) followed by t already
// occurred. Returns how many entries it set; their ids go to set[].
static int ban_ngrams(const int *gen, int len, int n, unsigned char *banned, int *set) {
    int ns = 0;
    if (n < 1 || len + 1 < n) return 0;
    const int *prefix = gen + len - (n - 1);
    for (int j = 0; j + n <= len; j++) {
        if (n > 1 && memcmp(gen + j, prefix, (size_t)(n - 1) * sizeof(int)) != 0) continue;
        int t = gen[j + n - 1];
        if (!banned[t]) { banned[t] = 1; set[ns++] = t; }
    }
    return ns;
}

static void unban(unsigned char *banned, const int *set, int ns) {
    for (int k = 0; k < ns; k++) banned[set[k]] = 0;
}

// logits (V) -> logp (V): log-softmax over the tokens not banned (banned
// ones are -inf, as gpt2_beam.py masks logits before its softmax). Returns 0,
// or -1 when every token is banned.
static int log_softmax_banned(const float *logits, int V, const unsigned char *banned, double *logp) {
    double mx = -INFINITY;
    for (int t = 0; t < V; t++)
        if (!banned[t] && logits[t] > mx) mx = logits[t];
    if (mx == -INFINITY) return -1;
    double sum = 0;
    for (int t = 0; t < V; t++)
        if (!banned[t]) sum += exp((double)logits[t] - mx);
    double lse = mx + log(sum);
    for (int t = 0; t < V; t++) logp[t] = banned[t] ? -INFINITY : (double)logits[t] - lse;
    return 0;
}

// Runs the prompt through the model in one forward, its keys and values into
// lane 0's cache (model_prefill); copies the logits after its last token.
static int prefill(ls_model *m, const int *prompt, int n_prompt, float *logits_out) {
    const float *logits = model_prefill(m, prompt, n_prompt, 0);
    if (!logits) return -1;
    memcpy(logits_out, logits, (size_t)m->V * sizeof(float));
    return 0;
}

// ----------------------------------------------------------------------------
// greedy

int gen_greedy(ls_model *m, const int *prompt, int n_prompt, const gen_config *cfg, gen_hyp *out,
               long *n_decoded) {
    memset(out, 0, sizeof *out);
    int max_new;
    if (check_inputs(m, prompt, n_prompt, cfg, &max_new)) return -1;
    int V = m->V;
    float *logits = ls_malloc((size_t)V * sizeof(float));
    double *logp = ls_malloc((size_t)V * sizeof(double));
    unsigned char *banned = ls_calloc((size_t)V, 1);
    int *set = ls_malloc((size_t)(max_new > 0 ? max_new : 1) * sizeof(int));
    out->tokens = ls_malloc((size_t)max_new * sizeof(int));
    long decoded = n_prompt;
    int rc = prefill(m, prompt, n_prompt, logits);
    for (int k = 0; rc == 0 && k < max_new; k++) {
        if (k > 0) {
            const float *l = model_decode(m, out->tokens[k - 1], n_prompt + k - 1);
            if (!l) { rc = -1; break; }
            memcpy(logits, l, (size_t)V * sizeof(float));
            decoded++;
        }
        int ns = ban_ngrams(out->tokens, k, cfg->no_repeat_ngram, banned, set);
        int none_left = log_softmax_banned(logits, V, banned, logp);
        unban(banned, set, ns);
        if (none_left) break;  // every token banned: nothing can follow
        int best = 0;          // the first maximum, as sampler_argmax
        for (int t = 1; t < V; t++)
            if (logp[t] > logp[best]) best = t;
        out->tokens[k] = best;
        out->n = k + 1;
        out->logprob += logp[best];
        if (ends_hypothesis(cfg, best)) { out->finished = 1; break; }
    }
    free(logits);
    free(logp);
    free(banned);
    free(set);
    if (rc) { gen_hyp_free(out); return -1; }
    out->score = out->n > 0 ? gen_score(out->logprob, out->n, cfg->length_penalty) : -INFINITY;
    if (n_decoded) *n_decoded = decoded;
    return 0;
}

// ----------------------------------------------------------------------------
// beam search

typedef struct {
    double score;
    int beam, token;
} candidate;

// Keeps cand[0..*nc) the best k candidates, best first; ties keep the
// earlier-offered one first (offers come in (beam, token) order, so this is
// the lower flat index, a deterministic stand-in for torch.topk's order).
static void offer(candidate *cand, int *nc, int k, double score, int beam, int token) {
    if (*nc == k && !(score > cand[k - 1].score)) return;
    int i = *nc < k ? (*nc)++ : k - 1;
    while (i > 0 && cand[i - 1].score < score) {
        cand[i] = cand[i - 1];
        i--;
    }
    cand[i] = (candidate){score, beam, token};
}

// Inserts a finished hypothesis into the pool (best first, at most k; a new
// one goes after equal scores, as gpt2_beam.py keeps the first best).
static void pool_add(gen_result *pool, int k, const int *tokens, int n, double logprob,
                     float length_penalty, int finished) {
    double score = gen_score(logprob, n, length_penalty);
    if (pool->n_hyps == k && !(score > pool->hyps[k - 1].score)) return;
    if (pool->n_hyps == k) gen_hyp_free(&pool->hyps[--pool->n_hyps]);
    int i = pool->n_hyps++;
    while (i > 0 && pool->hyps[i - 1].score < score) {
        pool->hyps[i] = pool->hyps[i - 1];
        i--;
    }
    gen_hyp *h = &pool->hyps[i];
    h->tokens = ls_malloc((size_t)n * sizeof(int));
    memcpy(h->tokens, tokens, (size_t)n * sizeof(int));
    h->n = n;
    h->logprob = logprob;
    h->score = score;
    h->finished = finished;
}

// Whether a live beam (log-probs summing to score[b], n_done tokens) can
// still lead to a hypothesis that enters the pool's best k: any such
// hypothesis has n in (n_done, max_new] tokens and a log-prob <= score[b]
// (decode.h).
static int pool_can_change(const gen_result *pool, int k, const double *score, int nb, int n_done, int max_new,
                           float length_penalty) {
    if (pool->n_hyps < k) return 1;
    double worst = pool->hyps[k - 1].score;
    for (int b = 0; b < nb; b++) {
        double lo = gen_score(score[b], n_done + 1, length_penalty), hi = gen_score(score[b], max_new, length_penalty);
        if ((lo > hi ? lo : hi) > worst) return 1;
    }
    return 0;
}

// The beams live in the model's decode lanes (model_decode_lanes): beam b's
// history is the cache of lane slot[b]; all live beams run one batched
// decode per step. A parent's first child keeps its lane (the rows it needs
// are there); further children copy the parent's rows into a free lane.
int gen_beam_search(ls_model *m, const int *prompt, int n_prompt, const gen_config *cfg,
                    gen_result *out) {
    memset(out, 0, sizeof *out);
    int max_new;
    if (check_inputs(m, prompt, n_prompt, cfg, &max_new)) return -1;
    int K = cfg->beam_size, V = m->V, P = model_cache_offset(m);
    model_decode_reserve(m, P + n_prompt + max_new, K);
    float *logits = ls_malloc((size_t)K * V * sizeof(float));
    if (prefill(m, prompt, n_prompt, logits)) {
        free(logits);
        return -1;
    }
    out->n_decoded = n_prompt;
    out->hyps = ls_calloc((size_t)K, sizeof(gen_hyp));

    // live beams: tokens (K, max_new), score, lane
    int *tok = ls_malloc((size_t)K * max_new * sizeof(int));
    int *tok_next = ls_malloc((size_t)K * max_new * sizeof(int));
    double *score = ls_malloc((size_t)K * sizeof(double));
    int *slot = ls_malloc((size_t)K * sizeof(int));
    int *slot_next = ls_malloc((size_t)K * sizeof(int));
    int *last = ls_malloc((size_t)K * sizeof(int));
    unsigned char *slot_used = ls_malloc((size_t)K);
    unsigned char *has_child = ls_malloc((size_t)K);
    candidate *cand = ls_malloc((size_t)K * sizeof(candidate));
    double *logp = ls_malloc((size_t)V * sizeof(double));
    unsigned char *banned = ls_calloc((size_t)V, 1);
    int *set = ls_malloc((size_t)max_new * sizeof(int));
    int nb = 1, rc = 0, need = cfg->n_best > 0 && cfg->n_best < K ? cfg->n_best : K; // hypotheses needed exactly
    score[0] = 0.0;
    slot[0] = 0;

    for (int i = 0; i < max_new && nb > 0; i++) {
        if (i > 0) { // every live beam's last token, one batched step
            for (int b = 0; b < nb; b++) last[b] = tok[(size_t)b * max_new + i - 1];
            const float *l = model_decode_lanes(m, nb, slot, last, n_prompt + i - 1);
            if (!l) { rc = -1; break; }
            memcpy(logits, l, (size_t)nb * V * sizeof(float));
            out->n_decoded += nb;
        }
        int nc = 0;
        for (int b = 0; b < nb; b++) {
            int *gen = tok + (size_t)b * max_new;
            int ns = ban_ngrams(gen, i, cfg->no_repeat_ngram, banned, set);
            int none_left = log_softmax_banned(logits + (size_t)b * V, V, banned, logp);
            unban(banned, set, ns);
            if (none_left) continue;
            for (int t = 0; t < V; t++)
                if (logp[t] > -INFINITY) offer(cand, &nc, K, score[b] + logp[t], b, t);
        }

        // The new beams' lanes: a parent's first child inherits its lane;
        // further children copy the parent's rows (its prefix, prompt and
        // generated tokens so far) into free lanes.
        memset(has_child, 0, (size_t)K);
        memset(slot_used, 0, (size_t)K);
        for (int j = 0; j < nc; j++) {
            int p = cand[j].beam;
            slot_next[j] = -1;
            if (!has_child[p]) {
                has_child[p] = 1;
                slot_next[j] = slot[p];
                slot_used[slot[p]] = 1;
            }
        }
        int free_slot = 0;
        for (int j = 0; j < nc; j++) {
            if (slot_next[j] >= 0) continue;
            while (slot_used[free_slot]) free_slot++;
            slot_next[j] = free_slot;
            slot_used[free_slot] = 1;
            model_copy_lane(m, free_slot, slot[cand[j].beam], P + n_prompt + i);
        }
        // finished beams leave; the others go on
        int live = 0;
        for (int j = 0; j < nc; j++) {
            int *gen = tok_next + (size_t)live * max_new;
            memcpy(gen, tok + (size_t)cand[j].beam * max_new, (size_t)i * sizeof(int));
            gen[i] = cand[j].token;
            if (ends_hypothesis(cfg, cand[j].token)) {
                pool_add(out, K, gen, i + 1, cand[j].score, cfg->length_penalty, 1);
                continue;
            }
            score[live] = cand[j].score;
            slot[live] = slot_next[j];
            live++;
        }
        int *swap = tok;
        tok = tok_next;
        tok_next = swap;
        nb = live;
        if (!cfg->exhaustive && nb > 0 && !pool_can_change(out, need, score, nb, i + 1, max_new, cfg->length_penalty))
            nb = 0; // what is left cannot reach the pool
    }
    // beams that reached max_new_tokens without EOS
    for (int b = 0; rc == 0 && b < nb; b++)
        pool_add(out, K, tok + (size_t)b * max_new, max_new, score[b], cfg->length_penalty, 0);

    free(tok);
    free(tok_next);
    free(score);
    free(slot);
    free(slot_next);
    free(last);
    free(slot_used);
    free(has_child);
    free(cand);
    free(logp);
    free(banned);
    free(set);
    free(logits);
    if (rc) { gen_result_free(out); return -1; }
    return 0;
}

// ----------------------------------------------------------------------------
// scoring through the training path

int gen_sequence_logprob(ls_model *m, const int *prompt, int n_prompt, const int *tokens, int n,
                         double *logprob) {
    if (n_prompt < 1 || n < 1)
        return ls_fail("gen_sequence_logprob: expected >= 1 prompt and >= 1 scored tokens, found %d and %d",
                       n_prompt, n);
    int T = n_prompt + n - 1, V = m->V;
    if (model_reserve(m, 1, T)) return -1;
    int *inputs = ls_malloc((size_t)T * sizeof(int));
    memcpy(inputs, prompt, (size_t)n_prompt * sizeof(int));
    if (n > 1) memcpy(inputs + n_prompt, tokens, (size_t)(n - 1) * sizeof(int));
    float rc = model_forward(m, inputs, NULL, NULL, 1, T, 0.0f);
    free(inputs);
    if (rc < 0) return -1;
    float *row = ls_malloc((size_t)V * sizeof(float));
    unsigned char *none = ls_calloc((size_t)V, 1);
    double *lp = ls_malloc((size_t)V * sizeof(double));
    double sum = 0;
    int bad = 0;
    for (int k = 0; k < n; k++) {
        if (tokens[k] < 0 || tokens[k] >= V) { bad = 1; break; }
        m->be->download(row, m->acts.logits + (size_t)(model_virtual_tokens(m) + n_prompt - 1 + k) * V, (size_t)V);
        log_softmax_banned(row, V, none, lp);
        sum += lp[tokens[k]];
    }
    free(row);
    free(none);
    free(lp);
    if (bad) return ls_fail("gen_sequence_logprob: tokens: expected ids in [0, %d)", V);
    *logprob = sum;
    return 0;
}

// Tests of greedy decoding and beam search (src/eval/decode.h): exact search on
// tiny random models (every sequence enumerated and scored through the
// training path), and on stories260K: agreement with model_generate, scores
// re-computed by model_forward, beam 1 = greedy, the no-repeat-n-gram ban.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "engine/lora.h"
#include "engine/rng.h"
#include "eval/decode.h"
#include "harness.h"
#include "io/checkpoint.h"
#include "text/tokenizer.h"

static const ls_backend *be;

// ----------------------------------------------------------------------------
// helpers

// A tiny model whose weights are N(0, 0.5^2) (norm weights 1 + N(0, 0.1^2)),
// so that next-token distributions are far from uniform and the search has
// real choices to make.
static int tiny_model(ls_model *m, ls_family f, uint64_t seed) {
    ls_model_config c = {0};
    c.family = f;
    c.dim = 16;
    c.hidden_dim = 24;
    c.n_layers = 2;
    c.n_heads = 2;
    c.n_kv_heads = f == LS_FAMILY_LLAMA ? 1 : 2;
    c.vocab_size = 6;
    c.max_seq_len = 16;
    c.norm_eps = 1e-5f;
    c.rope_theta = 10000.0f;
    c.rope_interleaved = 1;
    c.tied_embeddings = 1;
    if (model_build_random(m, &c, seed, be) != 0) {
        CHECK_MSG(0, "model_build_random: %s", ls_error());
        return -1;
    }
    ls_rng r;
    ls_rng_seed(&r, seed + 7);
    for (int i = 0; i < m->n_views; i++) {
        const ls_param_view *v = &m->views[i];
        float *x = malloc(v->numel * sizeof(float));
        int is_norm = strstr(v->name, "norm") || strstr(v->name, "ln_");
        for (size_t j = 0; j < v->numel; j++) x[j] = (float)(is_norm ? 1.0 + 0.1 * ls_rng_normal(&r) : 0.5 * ls_rng_normal(&r));
        model_set_tensor(m, v->name, x);
        free(x);
    }
    return 0;
}

static int load_stories(ls_model *m, tokenizer **tok) {
    const char *mp = ls_test_asset("models/stories260K/stories260K.bin");
    if (!mp) return 1;
    ls_checkpoint ck;
    if (ckpt_load(&ck, mp) != 0) {
        CHECK_MSG(0, "ckpt_load: %s", ls_error());
        return -1;
    }
    int rc = model_build_from_checkpoint(m, &ck, be);
    ckpt_free(&ck);
    if (rc) {
        CHECK_MSG(0, "model_build_from_checkpoint: %s", ls_error());
        return -1;
    }
    const char *tp = ls_test_asset("models/stories260K/tok512.bin");
    if (!tp) {
        model_free(m);
        return 1;
    }
    *tok = tok_load_llama2c(tp, m->V);
    if (!*tok) {
        CHECK_MSG(0, "tok_load_llama2c: %s", ls_error());
        model_free(m);
        return -1;
    }
    return 0;
}

#define NEED_STORIES(m, tok)                                                                 \
    do {                                                                                     \
        int _rc = load_stories(m, tok);                                                      \
        if (_rc > 0) SKIP("../shared/assets/models/stories260K/ (model or tok512.bin) is absent"); \
        if (_rc < 0) return;                                                                 \
    } while (0)

static const char *PROMPTS[] = {
    "Once upon a time",
    "Lily wanted to play with the big red ball",
    "name : Blue Spice | Type : coffee shop | area : city centre",
};
#define N_PROMPTS 3

// 1 if some n-gram occurs twice in x[0..n).
static int has_repeated_ngram(const int *x, int n, int k) {
    for (int i = 0; i + k <= n; i++)
        for (int j = i + 1; j + k <= n; j++)
            if (memcmp(x + i, x + j, (size_t)k * sizeof(int)) == 0) return 1;
    return 0;
}

// ----------------------------------------------------------------------------
// exact search on tiny models

// With beam_size >= V^(max_new - 1) no prefix is ever pruned, so beam search
// is exhaustive: its best score must equal the best, over every sequence that
// can be generated (EOS at step 1, 2 or 3, or no EOS within 3 tokens), of
// logprob / len^0.9. The log-probs here come from ONE batched model_forward
// over all 156 sequences (training path, no KV cache) and a log-softmax
// written out below, independently of decode.c.
static void exact_optimum(ls_family fam) {
    ls_model m;
    if (tiny_model(&m, fam, 11) != 0) return;
    enum { V = 6, EOS = 2, MAX_NEW = 3, NP = 3, T = NP + MAX_NEW - 1, MAXSEQ = 256 };
    const int prompt[NP] = {1, 3, 4};
    const float lp_pow = 0.9f;
    int seqs[MAXSEQ][MAX_NEW], lens[MAXSEQ], n_seq = 0;
    for (int a = 0; a < V; a++)
        for (int b = 0; b < V; b++)
            for (int c = 0; c < V; c++) {
                int n = a == EOS ? 1 : b == EOS ? 2 : 3;
                if ((n == 1 && (b || c)) || (n == 2 && c)) continue;  // count each sequence once
                seqs[n_seq][0] = a;
                seqs[n_seq][1] = b;
                seqs[n_seq][2] = c;
                lens[n_seq++] = n;
            }
    CHECK_INT(n_seq, 1 + 5 + 25 * 6);
    int *inputs = calloc((size_t)n_seq * T, sizeof(int));
    for (int s = 0; s < n_seq; s++) {
        memcpy(inputs + s * T, prompt, sizeof prompt);
        memcpy(inputs + s * T + NP, seqs[s], (MAX_NEW - 1) * sizeof(int));
    }
    CHECK(model_reserve(&m, n_seq, T) == 0);
    CHECK(model_forward(&m, inputs, NULL, NULL, n_seq, T, 0.0f) == 0.0f);
    float *logits = malloc((size_t)n_seq * T * V * sizeof(float));
    be->download(logits, m.acts.logits, (size_t)n_seq * T * V);
    double best = -INFINITY;
    int best_s = 0;
    for (int s = 0; s < n_seq; s++) {
        double lp = 0;
        for (int k = 0; k < lens[s]; k++) {
            const float *row = logits + ((size_t)s * T + NP - 1 + k) * V;
            double mx = row[0], z = 0;
            for (int v = 1; v < V; v++) mx = fmax(mx, row[v]);
            for (int v = 0; v < V; v++) z += exp(row[v] - mx);
            lp += row[seqs[s][k]] - mx - log(z);
        }
        double score = lp / pow(lens[s], lp_pow);
        if (score > best) { best = score; best_s = s; }
    }
    gen_config cfg = {.max_new_tokens = MAX_NEW, .eos = EOS, .beam_size = V * V,
                      .length_penalty = lp_pow, .no_repeat_ngram = 0};
    gen_result r;
    CHECK_MSG(gen_beam_search(&m, prompt, NP, &cfg, &r) == 0, "%s", ls_error());
    CHECK(r.n_hyps >= 1);
    if (r.n_hyps >= 1) {
        CHECK_NEAR(r.hyps[0].score, best, 1e-5);
        CHECK_INT(r.hyps[0].n, lens[best_s]);
        CHECK(memcmp(r.hyps[0].tokens, seqs[best_s], (size_t)lens[best_s] * sizeof(int)) == 0);
        printf("best of %d sequences: [%d %d %d] n=%d score %.6f; beam: score %.6f\n", n_seq, seqs[best_s][0],
               seqs[best_s][1], seqs[best_s][2], lens[best_s], best, r.hyps[0].score);
    }
    // a narrower beam can only do worse or equal
    cfg.beam_size = 2;
    gen_result r2;
    CHECK(gen_beam_search(&m, prompt, NP, &cfg, &r2) == 0);
    if (r2.n_hyps >= 1) CHECK(r2.hyps[0].score <= best + 1e-5);
    gen_result_free(&r);
    gen_result_free(&r2);
    free(inputs);
    free(logits);
    model_free(&m);
}

static void test_beam_search_with_enough_beams_finds_exact_optimum_llama(void) {
    exact_optimum(LS_FAMILY_LLAMA);
}

static void test_beam_search_with_enough_beams_finds_exact_optimum_gpt2(void) {
    exact_optimum(LS_FAMILY_GPT2);
}

// ----------------------------------------------------------------------------
// stories260K

static void test_greedy_matches_model_generate_on_stories260K(void) {
    ls_model m;
    tokenizer *tok;
    NEED_STORIES(&m, &tok);
    int eos = tok_eos(tok), max_new = 80;
    for (int p = 0; p < N_PROMPTS; p++) {
        int np;
        int *prompt = tok_encode(tok, PROMPTS[p], 1, 0, &np);
        gen_config cfg = gen_config_greedy(max_new, eos);
        gen_hyp g;
        long decoded;
        CHECK_MSG(gen_greedy(&m, prompt, np, &cfg, &g, &decoded) == 0, "%s", ls_error());
        // model_generate: out = prompt[0], the forced prompt, then argmax tokens
        int *out = malloc((size_t)(np + max_new) * sizeof(int));
        int n_out = model_generate(&m, prompt, np, np + max_new - 1, NULL, eos, out);
        int n_text = g.n - g.finished;  // model_generate does not store the stop token
        CHECK_INT(n_out - np, n_text);
        int same = n_out - np == n_text;
        for (int k = 0; same && k < n_text; k++) same = out[np + k] == g.tokens[k];
        CHECK_MSG(same, "prompt \"%s\": greedy tokens differ from model_generate's", PROMPTS[p]);
        CHECK_INT(decoded, np + g.n - 1);
        free(out);
        free(prompt);
        gen_hyp_free(&g);
    }
    tok_free(tok);
    model_free(&m);
}

static void test_greedy_logprob_matches_forward_scoring(void) {
    ls_model m;
    tokenizer *tok;
    NEED_STORIES(&m, &tok);
    for (int p = 0; p < N_PROMPTS; p++) {
        int np;
        int *prompt = tok_encode(tok, PROMPTS[p], 1, 0, &np);
        gen_config cfg = gen_config_greedy(60, tok_eos(tok));
        gen_hyp g;
        CHECK(gen_greedy(&m, prompt, np, &cfg, &g, NULL) == 0);
        double lp;
        CHECK(gen_sequence_logprob(&m, prompt, np, g.tokens, g.n, &lp) == 0);
        CHECK_CLOSE(g.logprob, lp, 1e-4, 1e-4);
        CHECK(g.logprob < 0);
        free(prompt);
        gen_hyp_free(&g);
    }
    tok_free(tok);
    model_free(&m);
}

static void test_beam_one_equals_greedy_with_ngram_ban(void) {
    ls_model m;
    tokenizer *tok;
    NEED_STORIES(&m, &tok);
    for (int p = 0; p < N_PROMPTS; p++) {
        int np;
        int *prompt = tok_encode(tok, PROMPTS[p], 1, 0, &np);
        gen_config cfg = {.max_new_tokens = 80, .eos = tok_eos(tok), .beam_size = 1,
                          .length_penalty = 0.9f, .no_repeat_ngram = 3};
        gen_hyp g;
        gen_result r;
        CHECK(gen_greedy(&m, prompt, np, &cfg, &g, NULL) == 0);
        CHECK(gen_beam_search(&m, prompt, np, &cfg, &r) == 0);
        CHECK_INT(r.n_hyps, 1);
        if (r.n_hyps == 1) {
            CHECK_INT(r.hyps[0].n, g.n);
            CHECK(r.hyps[0].n == g.n && memcmp(r.hyps[0].tokens, g.tokens, (size_t)g.n * sizeof(int)) == 0);
            CHECK_NEAR(r.hyps[0].score, g.score, 1e-9);
            CHECK_INT(r.hyps[0].finished, g.finished);
        }
        free(prompt);
        gen_hyp_free(&g);
        gen_result_free(&r);
    }
    tok_free(tok);
    model_free(&m);
}

static void test_beam_hyps_sorted_and_scores_match_forward_scoring(void) {
    // Every hypothesis' log-prob, accumulated through the per-beam KV caches
    // (slots swapped in and out of the model's cache, copied when a beam
    // forks), must equal the log-prob of its tokens from one model_forward.
    ls_model m;
    tokenizer *tok;
    NEED_STORIES(&m, &tok);
    for (int p = 0; p < N_PROMPTS; p++) {
        int np;
        int *prompt = tok_encode(tok, PROMPTS[p], 1, 0, &np);
        gen_config cfg = {.max_new_tokens = 40, .eos = tok_eos(tok), .beam_size = 5,
                          .length_penalty = 0.9f, .no_repeat_ngram = 0};
        gen_result r;
        CHECK(gen_beam_search(&m, prompt, np, &cfg, &r) == 0);
        CHECK_INT(r.n_hyps, 5);
        for (int i = 0; i < r.n_hyps; i++) {
            const gen_hyp *h = &r.hyps[i];
            if (i > 0) CHECK_MSG(h->score <= r.hyps[i - 1].score, "hyp %d score %.6f > hyp %d's %.6f", i,
                                 h->score, i - 1, r.hyps[i - 1].score);
            CHECK_NEAR(h->score, gen_score(h->logprob, h->n, cfg.length_penalty), 1e-12);
            double lp;
            CHECK(gen_sequence_logprob(&m, prompt, np, h->tokens, h->n, &lp) == 0);
            CHECK_CLOSE(h->logprob, lp, 1e-4, 1e-4);
        }
        // the hypotheses are distinct sequences
        for (int i = 0; i < r.n_hyps; i++)
            for (int j = i + 1; j < r.n_hyps; j++)
                CHECK(r.hyps[i].n != r.hyps[j].n ||
                      memcmp(r.hyps[i].tokens, r.hyps[j].tokens, (size_t)r.hyps[i].n * sizeof(int)) != 0);
        CHECK(r.n_decoded > np);
        free(prompt);
        gen_result_free(&r);
    }
    tok_free(tok);
    model_free(&m);
}

// Stopping once no live beam can reach the pool (decode.h) must leave the
// pool exactly as the full search of max_new steps leaves it, with fewer
// decoded tokens. Tiny models of both families (EOS one token in 6, so that
// pools fill), 12 seeds, beams of 2 to 4, the paper's length penalty 0.9 and
// a negative one (the bound's other end), with and without a 2-gram ban. (A
// bound that forgets the max_new end of the range fails 2 of the 96.) With
// n_best = 1 the best hypothesis must be the full search's too.
static int same_pools(const gen_result *a, const gen_result *b) {
    if (a->n_hyps != b->n_hyps) return 0;
    for (int i = 0; i < a->n_hyps; i++) {
        const gen_hyp *x = &a->hyps[i], *y = &b->hyps[i];
        if (x->n != y->n || x->finished != y->finished || x->score != y->score || x->logprob != y->logprob ||
            memcmp(x->tokens, y->tokens, (size_t)x->n * sizeof(int)) != 0)
            return 0;
    }
    return 1;
}

static void test_beam_early_stop_leaves_the_pool_of_the_full_search(void) {
    const int prompt[3] = {1, 3, 4};
    long early = 0, early1 = 0, full = 0;
    int cases = 0, same = 0, same_best = 0;
    for (int f = 0; f < 2; f++)
        for (uint64_t seed = 1; seed <= 12; seed++) {
            ls_model m;
            if (tiny_model(&m, f ? LS_FAMILY_GPT2 : LS_FAMILY_LLAMA, seed) != 0) return;
            for (int k = 0; k < 4; k++) {
                gen_config cfg = {.max_new_tokens = 12, .eos = 2, .beam_size = 2 + k % 3,
                                  .length_penalty = k % 2 ? -0.5f : 0.9f, .no_repeat_ngram = k / 2 ? 2 : 0};
                gen_result r, rx, r1;
                CHECK(gen_beam_search(&m, prompt, 3, &cfg, &r) == 0);
                cfg.n_best = 1; // only the best needed: it stops sooner, the best is the same
                CHECK(gen_beam_search(&m, prompt, 3, &cfg, &r1) == 0);
                cfg.n_best = 0;
                cfg.exhaustive = 1;
                CHECK(gen_beam_search(&m, prompt, 3, &cfg, &rx) == 0);
                same += same_pools(&r, &rx);
                gen_result best_x = {.n_hyps = rx.n_hyps > 0, .hyps = rx.hyps}, best_1 = {.n_hyps = r1.n_hyps > 0,
                                                                                          .hyps = r1.hyps};
                same_best += same_pools(&best_1, &best_x);
                cases++;
                CHECK(r.n_decoded <= rx.n_decoded && r1.n_decoded <= r.n_decoded);
                early += r.n_decoded;
                early1 += r1.n_decoded;
                full += rx.n_decoded;
                gen_result_free(&r);
                gen_result_free(&r1);
                gen_result_free(&rx);
            }
            model_free(&m);
        }
    printf("%d of %d searches give the full search's pool; %ld decoded tokens against %ld; needing the best only: "
           "%d of %d the same best, %ld decoded tokens\n", same, cases, early, full, same_best, cases, early1);
    CHECK_INT(same, cases);
    CHECK_INT(same_best, cases);
    CHECK_MSG(early < full, "the search never stopped early (%ld decoded tokens, full %ld)", early, full);
    CHECK_MSG(early1 < early, "needing the best only never stopped sooner (%ld decoded tokens, %ld)", early1, early);
}

static void test_beam_best_score_at_least_greedy_score(void) {
    ls_model m;
    tokenizer *tok;
    NEED_STORIES(&m, &tok);
    for (int p = 0; p < N_PROMPTS; p++) {
        int np;
        int *prompt = tok_encode(tok, PROMPTS[p], 1, 0, &np);
        gen_config cfg = {.max_new_tokens = 40, .eos = tok_eos(tok), .beam_size = 4,
                          .length_penalty = 0.9f, .no_repeat_ngram = 0};
        gen_hyp g;
        gen_result r;
        CHECK(gen_greedy(&m, prompt, np, &cfg, &g, NULL) == 0);
        CHECK(gen_beam_search(&m, prompt, np, &cfg, &r) == 0);
        CHECK(r.n_hyps >= 1);
        if (r.n_hyps >= 1) {
            CHECK_MSG(r.hyps[0].score >= g.score - 1e-9, "prompt \"%s\": beam %.6f < greedy %.6f", PROMPTS[p],
                      r.hyps[0].score, g.score);
            printf("\"%s\": greedy score %.4f, beam-4 score %.4f\n", PROMPTS[p], g.score, r.hyps[0].score);
        }
        free(prompt);
        gen_hyp_free(&g);
        gen_result_free(&r);
    }
    tok_free(tok);
    model_free(&m);
}

static void test_no_repeat_ngram_constraint_respected(void) {
    ls_model m;
    tokenizer *tok;
    NEED_STORIES(&m, &tok);
    int np;
    int *prompt = tok_encode(tok, PROMPTS[0], 1, 0, &np);
    for (int n = 2; n <= 4; n++) {
        // without the ban, this story model repeats n-grams within 120 tokens ...
        gen_config off = {.max_new_tokens = 120, .eos = -1, .beam_size = 3, .length_penalty = 1.0f,
                          .no_repeat_ngram = 0};
        gen_hyp g;
        gen_result r;
        CHECK(gen_greedy(&m, prompt, np, &off, &g, NULL) == 0);
        CHECK_MSG(has_repeated_ngram(g.tokens, g.n, n), "greedy output has no repeated %d-gram to ban", n);
        gen_hyp_free(&g);
        // ... with it, neither greedy nor any beam hypothesis does
        gen_config on = off;
        on.no_repeat_ngram = n;
        CHECK(gen_greedy(&m, prompt, np, &on, &g, NULL) == 0);
        CHECK_INT(g.n, 120);
        CHECK_MSG(!has_repeated_ngram(g.tokens, g.n, n), "greedy repeats a %d-gram under the ban", n);
        gen_hyp_free(&g);
        CHECK(gen_beam_search(&m, prompt, np, &on, &r) == 0);
        CHECK_INT(r.n_hyps, 3);
        for (int i = 0; i < r.n_hyps; i++)
            CHECK_MSG(!has_repeated_ngram(r.hyps[i].tokens, r.hyps[i].n, n), "beam hyp %d repeats a %d-gram", i, n);
        gen_result_free(&r);
    }
    free(prompt);
    tok_free(tok);
    model_free(&m);
}

static void test_stop_tokens_end_hypotheses_like_eos(void) {
    // gpt2_beam.py stops at any of several --eos_token_id: the first
    // occurrence of a stop token ends greedy output there (token kept, finished),
    // with the same prefix as without it; beam 1 agrees.
    ls_model m;
    tokenizer *tok;
    NEED_STORIES(&m, &tok);
    int np;
    int *prompt = tok_encode(tok, PROMPTS[1], 1, 0, &np);
    gen_config cfg = gen_config_greedy(60, tok_eos(tok));
    gen_hyp g, s;
    CHECK(gen_greedy(&m, prompt, np, &cfg, &g, NULL) == 0);
    CHECK(g.n > 10);
    int stop = g.tokens[8], k0 = 0;
    while (g.tokens[k0] != stop) k0++;
    cfg.stop_tokens = &stop;
    cfg.n_stop_tokens = 1;
    CHECK(gen_greedy(&m, prompt, np, &cfg, &s, NULL) == 0);
    CHECK_INT(s.n, k0 + 1);
    CHECK_INT(s.finished, 1);
    CHECK(s.n == k0 + 1 && memcmp(s.tokens, g.tokens, (size_t)s.n * sizeof(int)) == 0);
    gen_result r;
    CHECK(gen_beam_search(&m, prompt, np, &cfg, &r) == 0);
    CHECK(r.n_hyps == 1 && r.hyps[0].n == s.n && r.hyps[0].finished);
    gen_hyp_free(&s);
    int bad = 999;
    cfg.stop_tokens = &bad;
    CHECK(gen_greedy(&m, prompt, np, &cfg, &s, NULL) == -1);
    CHECK_STR_CONTAINS(ls_error(), "stop_tokens[0]");
    gen_hyp_free(&g);
    gen_result_free(&r);
    free(prompt);
    tok_free(tok);
    model_free(&m);
}

static void test_decoding_uses_attached_lora(void) {
    // With a non-zero adapter on q and v (B random instead of 0), greedy output
    // changes, beam scores still equal the training path's (which applies the
    // adapter the same way), and merging the adapter into W gives the same
    // tokens as applying it on the fly (Sec. 4.1: no extra inference latency).
    ls_model m;
    tokenizer *tok;
    NEED_STORIES(&m, &tok);
    int np;
    int *prompt = tok_encode(tok, PROMPTS[0], 1, 0, &np);
    gen_config cfg = {.max_new_tokens = 40, .eos = tok_eos(tok), .beam_size = 3,
                      .length_penalty = 0.9f, .no_repeat_ngram = 0};
    gen_hyp base;
    CHECK(gen_greedy(&m, prompt, np, &cfg, &base, NULL) == 0);
    ls_lora_config lc;
    lora_config_default(&lc);
    lc.rank = 4;
    CHECK(lora_parse_modules(LS_FAMILY_LLAMA, "q,v", &lc.modules) == 0);
    ls_lora lo;
    CHECK_MSG(lora_build(&lo, &m, &lc) == 0, "%s", ls_error());
    ls_rng r;
    ls_rng_seed(&r, 5);
    for (int i = 0; i < lo.n_sites; i++) {
        ls_lora_site *st = &lo.sites[i];
        float *A = malloc((size_t)st->rank * st->d_in * sizeof(float));
        float *B = malloc((size_t)st->d_out * st->rank * sizeof(float));
        lora_get_site(&lo, st, A, B);
        for (int j = 0; j < st->d_out * st->rank; j++) B[j] = (float)(0.3 * ls_rng_normal(&r));
        lora_set_site(&lo, st, A, B);
        free(A);
        free(B);
    }
    gen_hyp adapted;
    CHECK(gen_greedy(&m, prompt, np, &cfg, &adapted, NULL) == 0);
    CHECK_MSG(adapted.n != base.n || memcmp(adapted.tokens, base.tokens, (size_t)base.n * sizeof(int)) != 0,
              "the adapter did not change the greedy output");
    gen_result res;
    CHECK(gen_beam_search(&m, prompt, np, &cfg, &res) == 0);
    for (int i = 0; i < res.n_hyps; i++) {
        double lp;
        CHECK(gen_sequence_logprob(&m, prompt, np, res.hyps[i].tokens, res.hyps[i].n, &lp) == 0);
        CHECK_CLOSE(res.hyps[i].logprob, lp, 1e-4, 1e-4);
    }
    CHECK(lora_merge(&lo, &m) == 0);
    gen_hyp merged;
    CHECK(gen_greedy(&m, prompt, np, &cfg, &merged, NULL) == 0);
    CHECK(merged.n == adapted.n && memcmp(merged.tokens, adapted.tokens, (size_t)merged.n * sizeof(int)) == 0);
    gen_hyp_free(&base);
    gen_hyp_free(&adapted);
    gen_hyp_free(&merged);
    gen_result_free(&res);
    lora_free(&lo, &m);
    free(prompt);
    tok_free(tok);
    model_free(&m);
}

static void test_bad_decoding_config_fails_with_message(void) {
    ls_model m;
    if (tiny_model(&m, LS_FAMILY_LLAMA, 3) != 0) return;
    int prompt[20] = {1, 3, 4};
    gen_config cfg = gen_config_paper(2);
    gen_result r;
    gen_hyp g;
    cfg.beam_size = 0;
    CHECK(gen_beam_search(&m, prompt, 3, &cfg, &r) == -1);
    CHECK_STR_CONTAINS(ls_error(), "beam_size");
    cfg = gen_config_paper(6);  // vocab is 6
    CHECK(gen_beam_search(&m, prompt, 3, &cfg, &r) == -1);
    CHECK_STR_CONTAINS(ls_error(), "eos");
    cfg = gen_config_paper(2);
    cfg.no_repeat_ngram = -1;
    CHECK(gen_greedy(&m, prompt, 3, &cfg, &g, NULL) == -1);
    CHECK_STR_CONTAINS(ls_error(), "no_repeat_ngram");
    cfg = gen_config_paper(2);
    prompt[1] = 9;
    CHECK(gen_greedy(&m, prompt, 3, &cfg, &g, NULL) == -1);
    CHECK_STR_CONTAINS(ls_error(), "prompt[1]");
    prompt[1] = 3;
    CHECK(gen_beam_search(&m, prompt, 17, &cfg, &r) == -1);  // max_seq_len 16
    CHECK_STR_CONTAINS(ls_error(), "max_seq_len");
    // a prompt that fills the context leaves room for exactly one token
    CHECK(gen_greedy(&m, prompt, 16, &cfg, &g, NULL) == 0);
    CHECK_INT(g.n, 1);
    gen_hyp_free(&g);
    CHECK(gen_beam_search(&m, prompt, 15, &cfg, &r) == 0);
    CHECK(r.n_hyps >= 1 && r.hyps[0].n <= 2);
    gen_result_free(&r);
    model_free(&m);
}

int main(int argc, char **argv) {
    be = ls_backend_cpu();
    static const ls_test tests[] = {
        LS_TEST(test_beam_search_with_enough_beams_finds_exact_optimum_llama),
        LS_TEST(test_beam_search_with_enough_beams_finds_exact_optimum_gpt2),
        LS_TEST(test_greedy_matches_model_generate_on_stories260K),
        LS_TEST(test_greedy_logprob_matches_forward_scoring),
        LS_TEST(test_beam_one_equals_greedy_with_ngram_ban),
        LS_TEST(test_beam_hyps_sorted_and_scores_match_forward_scoring),
        LS_TEST(test_beam_early_stop_leaves_the_pool_of_the_full_search),
        LS_TEST(test_beam_best_score_at_least_greedy_score),
        LS_TEST(test_no_repeat_ngram_constraint_respected),
        LS_TEST(test_stop_tokens_end_hypotheses_like_eos),
        LS_TEST(test_decoding_uses_attached_lora),
        LS_TEST(test_bad_decoding_config_fails_with_message),
    };
    return ls_test_main(argc, argv, tests, LS_COUNT(tests));
}

// decode: greedy decoding and beam search for conditional generation (E2E NLG),
// on an ls_model with or without an attached LoRA adapter.
//
// Beam search follows microsoft/LoRA's examples/NLG/src/gpt2_beam.py, the
// decoder behind the paper's GPT-2 numbers (Table 3; settings in Table 11:
// beam 10, length penalty 0.9 for E2E, no-repeat n-gram size 4, --eval_len 64):
//   - each step, every live beam's next-token logits get the no-repeat-n-gram
//     ban (fairseq's rule: a token that would complete an n-gram already in
//     the beam's GENERATED tokens, prompt excluded, gets -inf) BEFORE the
//     softmax, so log-probs are those of the renormalised distribution;
//   - candidates beam_score + log p are ranked over all (beam, token) pairs and
//     the top beam_size become the new beams (first step: beam 0 only);
//   - a new beam whose last token is EOS (or a stop token) is finished: it is scored
//       score = sum of its log-probs / len ^ length_penalty,
//     len = generated tokens INCLUDING the EOS (gpt2_beam.py's
//     `beam_scores / cur_len ** args.length_penalty`; NOT GNMT's
//     ((5 + len) / 6) ^ lp), and its slot is dead for the rest of the search;
//   - the search runs max_new_tokens steps; the beams still alive then are
//     scored the same way with len = max_new_tokens; the best score wins
//     (the first one found on a tie).
// It stops sooner when that cannot change the result: once beam_size
// hypotheses are finished and no live beam can reach the worst of them. A
// live beam's log-prob s only falls as it grows (every log p <= 0), so any
// hypothesis it leads to, of n tokens, i < n <= max_new, scores at most
// max(s / i^lp, s / max_new^lp); when that bound is below the worst pooled
// score for every live beam, no later hypothesis enters the pool, and the
// hypotheses, their order and their scores are gpt2_beam.py's, bit for bit.
// (`exhaustive` runs every step, to show it.) A caller that needs only the
// best n_best hypotheses (E2E scores the best) sets n_best: the search stops
// once no live beam can reach the n_best-th, and those n_best are exact (the
// pool beyond them may differ from the full search's).
// Greedy decoding is beam search with one beam: argmax each step, stop at EOS.
//
// Implementation: the prompt runs once, in one forward (model_prefill), into
// the model's decode lane 0; each beam lives in a lane of its own (layout (L,
// lanes, n_ctx, NKV*HS), model.h) and every step decodes all live beams at
// once (model_decode_lanes: one pass over the weights for all of them); a
// beam's first child keeps its lane, further children copy their parent's
// rows into a free lane (model_copy_lane). A token costs one cached decode
// row, not a re-run of the prefix. Greedy uses the same prefill, so that one
// beam gives greedy's hypothesis and score bit for bit.
#ifndef LS_EVAL_DECODE_H
#define LS_EVAL_DECODE_H

#include "engine/model.h"

typedef struct {
    int max_new_tokens;    // generated tokens at most (gpt2_beam.py --eval_len)
    int eos;               // token that ends a hypothesis; -1: none
    int beam_size;         // >= 1
    float length_penalty;  // score = logprob / len^length_penalty
    int no_repeat_ngram;   // n >= 1: no n-gram of generated tokens twice; 0: off
    // Further tokens that end a hypothesis as eos does (NULL / 0: none):
    // gpt2_beam.py takes several --eos_token_id; microsoft/LoRA's README adds
    // 628 (GPT-2's "\n\n") to 50256 for E2E. Not owned.
    const int *stop_tokens;
    int n_stop_tokens;
    int exhaustive;        // 1: all max_new_tokens steps even when no live beam can enter the pool
    int n_best;            // the caller needs the best n_best hypotheses exactly (0: the whole pool): the
                           // search stops once no live beam can reach the n_best-th (E2E: 1, the best)
} gen_config;

// The paper's E2E decoding (Table 11): max_new_tokens 64, beam 10, length
// penalty 0.9, no-repeat n-gram 4; eos as given.
gen_config gen_config_paper(int eos);

// Greedy: max_new_tokens and eos as given, beam 1, length penalty 1, no ban.
gen_config gen_config_greedy(int max_new_tokens, int eos);

typedef struct {
    int *tokens;       // generated tokens; the EOS (or stop token) is the last one when finished
    int n;
    double logprob;    // sum of the tokens' log-probs (after the n-gram ban)
    double score;      // logprob / n^length_penalty
    int finished;      // 1: ends with EOS or a stop token
} gen_hyp;

typedef struct {
    int n_hyps;        // <= beam_size
    gen_hyp *hyps;     // sorted by score, best first
    long n_decoded;    // token positions run through the model (prompt + every beam's steps)
} gen_result;

// logprob / n^length_penalty (n >= 1).
double gen_score(double logprob, int n, float length_penalty);

// Beam search from prompt[0 .. n_prompt) (n_prompt >= 1; the first generated
// token is predicted after the last prompt token). max_new_tokens is cut to
// what the model's max_seq_len leaves after the prompt. Fills *out with the
// best finished (or surviving) hypotheses, best first, at most beam_size of
// them; free with gen_result_free. Overwrites the model's KV cache. Returns 0,
// or -1 with ls_error() (bad config, prompt too long, token out of range).
int gen_beam_search(ls_model *m, const int *prompt, int n_prompt, const gen_config *cfg,
                    gen_result *out);

// Greedy decoding: argmax each step (the first maximum, as sampler_argmax),
// under cfg's no-repeat n-gram ban, until EOS or max_new_tokens; beam_size is
// ignored. The same tokens as model_generate with a NULL sampler (plus the EOS
// when one is generated) and as gen_beam_search with beam_size 1. Fills *out
// (free with gen_hyp_free); *n_decoded (may be NULL) gets the positions run.
// Returns 0 or -1 with ls_error().
int gen_greedy(ls_model *m, const int *prompt, int n_prompt, const gen_config *cfg, gen_hyp *out,
               long *n_decoded);

void gen_hyp_free(gen_hyp *h);
void gen_result_free(gen_result *r);

// Sum of log p(tokens[k] | prompt, tokens[0..k)) over k < n, from ONE
// model_forward over (1, n_prompt + n - 1) tokens (the training path, no KV
// cache; no n-gram ban): an independent check of the decoders' scores.
// Reserves the model's activations for that length. Returns 0 or -1.
int gen_sequence_logprob(ls_model *m, const int *prompt, int n_prompt, const int *tokens, int n,
                         double *logprob);

#endif

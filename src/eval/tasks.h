// tasks: task metrics of a model (+ attached LoRA) on its evaluation sets.
//
// E2E NLG (the paper's GPT-2 task, Sec. 5.5 / Table 3): one generation per
// meaning representation (MR) of the test file, scored against all of that
// MR's references with BLEU and ROUGE-L as the challenge's script (metrics.h).
// The prompt is exactly the context part of the training sequence that
// ds_pairs_tokenize built for the MR (its ds_format: BOS / context /
// separator), so generation starts where training's completion started. The
// hypothesis is the generated text up to EOS, cut at the first "\n\n" and
// stripped of surrounding whitespace, as microsoft/LoRA's gpt2_decode.py
// post-processes beam outputs; the references are the completions, stripped.
//
// SST-2 (GLUE): classification by generation. For each sentence, the label
// word whose tokens have the higher log-likelihood after the prompt wins
// (sum of log-probs over the word's tokens; with one-token label words that
// is comparing their logits at the answer position). Accuracy = fraction right.
#ifndef LS_EVAL_TASKS_H
#define LS_EVAL_TASKS_H

#include "engine/model.h"
#include "eval/decode.h"
#include "eval/metrics.h"
#include "text/dataset.h"
#include "text/tokenizer.h"

// ----------------------------------------------------------------------------
// E2E

typedef struct {
    gen_config gen;   // decoding; see gen_config_paper / gen_config_greedy
    int greedy;       // 1: gen_greedy (gen.beam_size ignored); 0: gen_beam_search
    int max_mrs;      // evaluate the first max_mrs MRs (file order); 0: all
    int progress;     // progress on stderr (MRs, tokens/s, elapsed, ETA): 0 none, 1 one line rewritten
                      // in place (a terminal), 2 a line every 5% of the MRs (a log file, a Slurm task)
} eval_e2e_config;

typedef struct {
    int n;            // MRs evaluated
    char **mr;        // (n) the meaning representations
    char **hyp;       // (n) generated texts
    char ***refs;     // (n) lists of n_refs[i] references
    int *n_refs;      // (n)
    mt_scores scores; // BLEU, ROUGE-L
    long n_generated; // tokens of the chosen hypotheses (EOS included)
    long n_decoded;   // token positions run through the model (prompts and every beam)
    double seconds;   // wall time of generation (scoring excluded)
} eval_e2e_result;

// Generates one output per MR group of d (loaded with ds_load_e2e and
// tokenized with ds_pairs_tokenize for this tokenizer) and scores them. The
// model runs in eval mode (no LoRA dropout); its training flag is restored.
// Fills *out (free with eval_e2e_result_free). Returns 0, or -1 with
// ls_error() (untokenized data, a prompt longer than the model's context, bad
// decoding config).
int eval_e2e(ls_model *m, const tokenizer *tok, const ds_pairs *d, const eval_e2e_config *cfg,
             eval_e2e_result *out);

// Writes the result in the files the challenge's measure_scores.py reads:
// ref_path holds each MR's references one per line, MRs separated by an empty
// line; hyp_path one hypothesis per line (newlines inside it become spaces).
// Written atomically. Returns 0 or -1 with ls_error().
int eval_e2e_write(const eval_e2e_result *r, const char *ref_path, const char *hyp_path);

void eval_e2e_result_free(eval_e2e_result *r);

// Generated-output tokens per second and model positions per second.
double eval_e2e_tokens_per_s(const eval_e2e_result *r);
double eval_e2e_positions_per_s(const eval_e2e_result *r);

// ----------------------------------------------------------------------------
// SST-2

// The one label-word scorer (task_evaluate's accuracy and eval_sst2 both use
// it): scores[2 j + k] = the summed log-probability of label word k's tokens
// (p->label_ids[k]) after example items[j]'s context, computed as the masked
// cross-entropy of a teacher-forced row. When context + word exceed max_T + 1
// tokens, the context nearest the word is kept. p must hold two label words
// and be tokenized (ds_pairs_tokenize). Runs max(1, rows / 2) examples (two
// rows each) per model_forward, each pass at most 2 max(1, rows / 2) rows of
// T positions, T the longest row of all n examples (at most max_T); reserves
// the model's activations for that. The model runs in eval mode (no LoRA
// dropout); its training flag is restored. scores has room for 2 n values,
// owned by the caller. Returns 0, or -1 with ls_error().
int eval_label_scores(ls_model *m, const ds_pairs *p, const int *items, int n, int rows, int max_T,
                      double *scores);

typedef struct {
    int n;            // examples scored
    int correct;
    double accuracy;  // correct / n
    int *pred;        // (n) predicted label per example (0 or 1)
    double *margin;   // (n) loglik(label word 1) - loglik(label word 0)
    double seconds;
} eval_sst2_result;

// Scores the first max_examples examples of d (0: all; d loaded with
// ds_load_sst2 and tokenized) through eval_label_scores, `batch` examples
// (two rows each, one per label word) per forward pass; margin = score of
// word 1 - score of word 0, pred = margin > 0. Rows are never cut: an example
// whose prompt + label word exceeds the model's context is an error. Fills
// *out (free with eval_sst2_result_free). Returns 0, or -1 with ls_error()
// (not SST-2 data, untokenized, a row longer than the model's context).
int eval_sst2(ls_model *m, const ds_pairs *d, int max_examples, int batch, eval_sst2_result *out);

void eval_sst2_result_free(eval_sst2_result *r);

#endif

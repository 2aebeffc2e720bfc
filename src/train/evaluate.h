// evaluate: `lorascope eval` as one library call. A model (with an optional
// PEFT adapter merged into its weights) on a data file: the token-weighted
// mean cross-entropy over the completion tokens (all tokens for lm), for
// SST-2 the accuracy of classification by generation (task_evaluate; an
// encoder: the classifier's mean cross-entropy and accuracy, its head taken
// from the adapter), and for E2E optionally generation scored with BLEU and
// ROUGE-L (eval_e2e).
//
// The request is one option table (base/options.h) under the INI section
// [eval], so flags ("--seq-len 64"), an INI file ("[eval] seq_len = 64") and
// an experiment's [eval] keys (flag names: opt_set_flag) fill it with the
// same ranges and errors. evaluate_run is re-entrant: it keeps no state between calls, frees
// everything it allocates, and reports failures through ls_error().
#ifndef LS_TRAIN_EVALUATE_H
#define LS_TRAIN_EVALUATE_H

#include <stdio.h>

#include "base/options.h"

#define EVALUATE_PATH 4096
#define EVALUATE_SHORT 256

typedef struct {
    char model[EVALUATE_PATH];     // llama2.c .bin or HF dir (required)
    char tokenizer[EVALUATE_PATH]; // tokenizer.bin | dir with encoder.json + vocab.bpe | bytes | "" (beside the model)
    char adapter[EVALUATE_PATH];   // PEFT adapter dir or run dir holding adapter/; "" = none
    char data[EVALUATE_PATH];      // data file (required)
    char task[EVALUATE_SHORT];     // lm | e2e | sst2 | jsonl (required)
    int seq_len;                   // positions per row, as in training
    char doc_sep[EVALUATE_SHORT];  // lm: document separator ("" = none)
    int batch_size;                // rows per forward pass
    int max_items;                 // task_subsample's fixed subsample of this many items (0 = all)
    char backend[EVALUATE_SHORT];  // cpu | cuda | auto
    int threads;                   // OpenMP threads (0 = OpenMP's default)
    char out[EVALUATE_PATH];       // also write the result as JSON here ("" = no file)
    int generate;                  // e2e: generate for the first N MRs (0 = all); -1 = no generation
    int beam;                      // 1 = greedy; K > 1 = beam search with the paper's settings
    int max_new;                   // tokens generated per MR at most
} evaluate_request;

typedef struct {
    double loss;                 // token-weighted mean cross-entropy (nats per token)
    double perplexity;           // exp(loss)
    long tokens;                 // tokens in the loss
    int items;                   // items evaluated
    double accuracy;             // sst2: fraction classified right; NAN for other tasks
    double seconds;              // wall time of the loss (and accuracy) measurement
    int generated;               // 1 when generation ran (generate >= 0); the fields below are set
    int generated_mrs;           // MRs generated for
    double bleu, bleu_brevity_penalty, rouge_l, nist, cider; // E2E metrics (eval/metrics.h, scores.h)
    double meteor;             // METEOR (exact+stem+synonym, no paraphrase), eval/meteor.h; NAN without WordNet
    double generated_tokens_per_s;
} evaluate_report;

// The option table behind the request: every field above, [eval] in INI
// files, flags as `lorascope eval` takes them ("seq_len" / --seq-len).
const opt_table *evaluate_table(void);

// Defaults: seq_len 128, batch_size 8, max_items 0, threads 0, backend cpu,
// generate -1, beam 1, max_new 64, every path "".
void evaluate_defaults(evaluate_request *req);

// The checks that need no file: model, data and task given, task a known kind,
// generate only for e2e, numbers in the table's ranges, the backend usable
// (--backend cuda: a GPU now; auto is resolved when the evaluation starts).
// Returns 0, or -1 with ls_error() naming the flag ("--task: ...").
int evaluate_check(const evaluate_request *req);

// Loads the model (+ adapter), tokenizer and data, evaluates, and writes
// req->out (atomically) when set. Each result line of `lorascope eval` goes
// to `echo` as soon as it is measured (NULL: nothing is printed):
//   loss L | perplexity P | N tokens | I items[ | accuracy A] | S s
//   E2E generation (greedy|beam, G MRs): BLEU B | ROUGE-L R | X tokens/s
//   result: OUT
// E2E generation shows a progress line on stderr when stderr is a terminal.
// Fills *rep (plain values, nothing to free). Returns 0, or -1 with ls_error()
// (evaluate_check's errors included).
int evaluate_run(const evaluate_request *req, FILE *echo, evaluate_report *rep);

#endif
